//! Effects and risk: what each catalog entry does to the system it observes,
//! and how risky it is in each dimension of the Dynamic Telemetry risk
//! taxonomy (privacy, security, reliability, cost, performance).
//!
//! This table is what a reviewer reads to question a score. Every function,
//! aggregate, action and probe kind of the catalog has an entry here (a test
//! enforces it), so nothing reaches a program without a declared effect and
//! risk. Probe scores start from the Dynamic Telemetry documentation's own
//! (0 to 3 per dimension); the rest are this project's judgement, each with
//! its reason.

use std::fmt;

/// How much risk, in one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    #[default]
    None,
    Low,
    Medium,
    High,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::None, Level::Low, Level::Medium, Level::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }

    pub fn score(self) -> u8 {
        self as u8
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five dimensions of the taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Privacy,
    Security,
    Reliability,
    Cost,
    Performance,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Privacy,
        Dimension::Security,
        Dimension::Reliability,
        Dimension::Cost,
        Dimension::Performance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Privacy => "privacy",
            Dimension::Security => "security",
            Dimension::Reliability => "reliability",
            Dimension::Cost => "cost",
            Dimension::Performance => "performance",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RiskVector {
    pub privacy: Level,
    pub security: Level,
    pub reliability: Level,
    pub cost: Level,
    pub performance: Level,
}

impl RiskVector {
    /// From the 0–3 scores of the Dynamic Telemetry docs, in the order
    /// privacy, security, reliability, cost, performance.
    pub const fn scores(p: u8, s: u8, r: u8, c: u8, f: u8) -> RiskVector {
        const fn level(n: u8) -> Level {
            match n {
                0 => Level::None,
                1 => Level::Low,
                2 => Level::Medium,
                _ => Level::High,
            }
        }
        RiskVector {
            privacy: level(p),
            security: level(s),
            reliability: level(r),
            cost: level(c),
            performance: level(f),
        }
    }

    pub fn get(&self, d: Dimension) -> Level {
        match d {
            Dimension::Privacy => self.privacy,
            Dimension::Security => self.security,
            Dimension::Reliability => self.reliability,
            Dimension::Cost => self.cost,
            Dimension::Performance => self.performance,
        }
    }

    pub fn set(&mut self, d: Dimension, level: Level) {
        match d {
            Dimension::Privacy => self.privacy = level,
            Dimension::Security => self.security = level,
            Dimension::Reliability => self.reliability = level,
            Dimension::Cost => self.cost = level,
            Dimension::Performance => self.performance = level,
        }
    }

    /// The maximum per dimension.
    pub fn max(self, other: RiskVector) -> RiskVector {
        let mut out = self;
        for d in Dimension::ALL {
            out.set(d, self.get(d).max(other.get(d)));
        }
        out
    }

    pub fn tier(&self) -> Tier {
        let top = Dimension::ALL
            .iter()
            .map(|d| self.get(*d))
            .max()
            .unwrap_or(Level::None);
        match top {
            Level::High => Tier::High,
            Level::Medium => Tier::Limited,
            Level::None | Level::Low => Tier::None,
        }
    }
}

impl fmt::Display for RiskVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Dimension::ALL
            .iter()
            .map(|d| format!("{d} {}", self.get(*d)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// The risk tier: any high dimension makes a program high risk, any medium
/// one limited risk; otherwise it is no risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Tier {
    #[default]
    None,
    Limited,
    High,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::None, Tier::Limited, Tier::High];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::None => "no risk",
            Tier::Limited => "limited risk",
            Tier::High => "high risk",
        }
    }

    /// The name used in policy files.
    pub fn key(self) -> &'static str {
        match self {
            Tier::None => "none",
            Tier::Limited => "limited",
            Tier::High => "high",
        }
    }

    pub fn parse_key(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.key() == s)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What something does to the system it observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// Computes a value from its arguments only.
    Pure,
    /// Sends telemetry (logs, metrics) onward.
    EmitsTelemetry,
    /// Reads something outside the event: a file, process memory,
    /// configuration. Never writes it.
    Reads(Source),
    /// A diagnostic action: writes file-based telemetry into the agent's
    /// own spool, never into the observed system.
    Diagnostic,
    /// Changes the state of the observed system. Never allowed: the
    /// read-only rule rejects any program that could reach one.
    Mutating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    File,
    ProcessMemory,
    Configuration,
    Randomness,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Pure => f.write_str("pure"),
            Effect::EmitsTelemetry => f.write_str("emits telemetry"),
            Effect::Reads(Source::File) => f.write_str("reads files"),
            Effect::Reads(Source::ProcessMemory) => f.write_str("reads process memory"),
            Effect::Reads(Source::Configuration) => f.write_str("reads configuration"),
            Effect::Reads(Source::Randomness) => f.write_str("reads randomness"),
            Effect::Diagnostic => f.write_str("diagnostic action"),
            Effect::Mutating => f.write_str("mutating"),
        }
    }
}

/// The effect and risk of one catalog entry.
#[derive(Debug)]
pub struct Profile {
    pub name: &'static str,
    pub kind: Kind,
    pub effect: Effect,
    pub risk: RiskVector,
    /// One line saying why it scores what it scores.
    pub reason: &'static str,
    /// Whether its result carries none of the personal data of its
    /// arguments (`hash`, `len`, ...). A reviewer should question each one.
    pub declassifies: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function,
    Aggregate,
    Action,
    Probe,
    Processor,
}

const fn p(
    name: &'static str,
    kind: Kind,
    effect: Effect,
    risk: RiskVector,
    reason: &'static str,
) -> Profile {
    Profile {
        name,
        kind,
        effect,
        risk,
        reason,
        declassifies: false,
    }
}

const fn declassifying(name: &'static str, reason: &'static str) -> Profile {
    Profile {
        name,
        kind: Kind::Function,
        effect: Effect::Pure,
        risk: RiskVector::scores(0, 0, 0, 0, 0),
        reason,
        declassifies: true,
    }
}

const NONE: RiskVector = RiskVector::scores(0, 0, 0, 0, 0);

use Effect as E;
use Kind as K;

pub static PROFILES: &[Profile] = &[
    // Probes: the Dynamic Telemetry documentation's scores.
    p(
        "otel.logs",
        K::Probe,
        E::Reads(Source::Configuration),
        RiskVector::scores(1, 1, 1, 1, 1),
        "logs the application already emits; in-process and well understood",
    ),
    p(
        "user_events",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(1, 1, 1, 1, 1),
        "tracepoints the application itself writes; kernel-mediated and cheap",
    ),
    p(
        "etw",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(1, 1, 2, 1, 1),
        "Event Tracing for Windows; session limits can drop events under load",
    ),
    p(
        "dtrace",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(3, 3, 2, 2, 2),
        "arbitrary probes into any process: can read any memory",
    ),
    p(
        "uprobe",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(3, 3, 2, 2, 2),
        "breakpoints in the target's code read arbitrary arguments and memory",
    ),
    p(
        "ptrace",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(3, 3, 2, 2, 3),
        "stops the target to read it: full memory access and large pauses",
    ),
    p(
        "ebpf",
        K::Probe,
        E::Reads(Source::ProcessMemory),
        RiskVector::scores(3, 3, 3, 2, 2),
        "kernel programs see every process; a bad program can destabilise the host",
    ),
    // Processor kinds: the seed's taxonomy, lowest to highest.
    p(
        "query",
        K::Processor,
        E::EmitsTelemetry,
        RiskVector::scores(0, 0, 0, 1, 1),
        "filters and aggregates; cannot act",
    ),
    p(
        "machine",
        K::Processor,
        E::EmitsTelemetry,
        RiskVector::scores(0, 0, 1, 1, 1),
        "keyed state and transitions; may act through budgeted triggers",
    ),
    p(
        "processor",
        K::Processor,
        E::EmitsTelemetry,
        RiskVector::scores(0, 1, 1, 1, 2),
        "general handler code with bounded loops and state; may act",
    ),
    // Actions.
    p(
        "cpu_sample",
        K::Action,
        E::Diagnostic,
        RiskVector::scores(1, 1, 1, 2, 2),
        "samples stacks for a while: slows the target a little and writes a profile",
    ),
    p(
        "memory_dump",
        K::Action,
        E::Diagnostic,
        RiskVector::scores(3, 3, 2, 2, 2),
        "a core file holds everything in memory, secrets included, and pauses the target",
    ),
    p(
        "verbose_logs",
        K::Action,
        E::Diagnostic,
        RiskVector::scores(2, 1, 1, 2, 1),
        "lets suppressed debug events out for a while: more data, more cost",
    ),
    p(
        "flight_recorder.snapshot",
        K::Action,
        E::Diagnostic,
        RiskVector::scores(2, 1, 0, 1, 0),
        "writes recent raw events, as they were before shaping",
    ),
    p(
        "collect_config",
        K::Action,
        E::Reads(Source::Configuration),
        RiskVector::scores(1, 2, 0, 1, 0),
        "copies a configuration file, which may hold credentials",
    ),
    // Aggregates.
    p("count", K::Aggregate, E::Pure, NONE, "a counter"),
    p("count_if", K::Aggregate, E::Pure, NONE, "a counter"),
    p("sum", K::Aggregate, E::Pure, NONE, "one number per group"),
    p("min", K::Aggregate, E::Pure, NONE, "one value per group"),
    p("max", K::Aggregate, E::Pure, NONE, "one value per group"),
    p("avg", K::Aggregate, E::Pure, NONE, "two numbers per group"),
    p(
        "histogram",
        K::Aggregate,
        E::Pure,
        RiskVector::scores(0, 0, 0, 1, 0),
        "a bucket count per group: more series downstream",
    ),
    p(
        "percentile",
        K::Aggregate,
        E::Pure,
        RiskVector::scores(0, 0, 0, 0, 1),
        "keeps a sketch per group",
    ),
    Profile {
        name: "distinct_count",
        kind: K::Aggregate,
        effect: E::Pure,
        risk: RiskVector::scores(0, 0, 0, 0, 1),
        reason: "keeps a sketch per group; its result is a count",
        declassifies: true,
    },
    // Functions.
    declassifying("len", "a length says nothing about whose data it was"),
    declassifying("extension", "a file type, not a name"),
    declassifying(
        "hash",
        "a keyed hash: equal values match, the value cannot be recovered",
    ),
    declassifying("mask", "all but the last four characters are hidden"),
    declassifying("contains", "a yes or no"),
    declassifying("starts_with", "a yes or no"),
    declassifying("ends_with", "a yes or no"),
    declassifying("file.exists", "a yes or no"),
    declassifying("contains_key", "a yes or no"),
    p("lower", K::Function, E::Pure, NONE, "string function"),
    p("upper", K::Function, E::Pure, NONE, "string function"),
    p("substring", K::Function, E::Pure, NONE, "string function"),
    p(
        "matches",
        K::Function,
        E::Pure,
        RiskVector::scores(0, 0, 0, 0, 1),
        "a regular expression per call",
    ),
    p("to_string", K::Function, E::Pure, NONE, "conversion"),
    p("to_int", K::Function, E::Pure, NONE, "conversion"),
    p("to_float", K::Function, E::Pure, NONE, "conversion"),
    p("to_bool", K::Function, E::Pure, NONE, "conversion"),
    p("abs", K::Function, E::Pure, NONE, "arithmetic"),
    p("millis", K::Function, E::Pure, NONE, "arithmetic"),
    p("seconds", K::Function, E::Pure, NONE, "arithmetic"),
    p(
        "sample",
        K::Function,
        E::Reads(Source::Randomness),
        NONE,
        "a random draw",
    ),
    p(
        "remove",
        K::Function,
        E::Pure,
        NONE,
        "changes the program's own map, not the system",
    ),
    Profile {
        name: "file.sha256",
        kind: K::Function,
        effect: E::Reads(Source::File),
        risk: RiskVector::scores(1, 1, 1, 1, 2),
        reason: "reads a whole file on the observed host per call; the result is a digest of the contents, not the path",
        declassifies: true,
    },
    p(
        "file.size",
        K::Function,
        E::Reads(Source::File),
        RiskVector::scores(0, 1, 0, 0, 1),
        "a stat call on the observed host",
    ),
];

/// The profile of a catalog entry by name and kind.
pub fn profile(name: &str, kind: Kind) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name && p.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing enters the catalog without a declared effect and risk.
    #[test]
    fn every_catalog_entry_has_a_profile() {
        let tables: [(&[crate::Signature], Kind); 4] = [
            (crate::functions::FUNCTIONS, Kind::Function),
            (crate::aggregates::AGGREGATES, Kind::Aggregate),
            (crate::actions::ACTIONS, Kind::Action),
            (crate::probes::PROBES, Kind::Probe),
        ];
        for (table, kind) in tables {
            for sig in table {
                assert!(
                    profile(sig.name, kind).is_some(),
                    "{} ({kind:?}) has no risk profile",
                    sig.name
                );
            }
        }
        for kind in ["query", "machine", "processor"] {
            assert!(profile(kind, Kind::Processor).is_some());
        }
    }

    #[test]
    fn nothing_in_the_catalog_mutates() {
        assert!(PROFILES.iter().all(|p| p.effect != Effect::Mutating));
    }

    #[test]
    fn tiers() {
        assert_eq!(RiskVector::scores(1, 1, 1, 1, 1).tier(), Tier::None);
        assert_eq!(RiskVector::scores(1, 1, 2, 1, 1).tier(), Tier::Limited);
        assert_eq!(RiskVector::scores(3, 3, 2, 2, 3).tier(), Tier::High);
    }
}
