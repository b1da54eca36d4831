//! Deployment policies: what a ring (dev, canary, production...) accepts.
//!
//! A policy is a TOML file. It caps the risk tier and each dimension, allows
//! or denies probe kinds and actions, bounds memory, sets the default budgets
//! and limits the analysis assumes, and says how many reviewer approvals each
//! tier needs. Checking a report against a policy gives diagnostics whose
//! primary label is on the program construct and whose secondary label is
//! the policy line it exceeds. The format is documented in `docs/risk.md`.

use serde::Deserialize;
use toml::Spanned;

use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Span};
use dtc_stdlib::risk::{Dimension, Level, Tier};

use crate::{Defaults, Report};

/// A setting with the span of its value in the policy file.
#[derive(Debug, Clone)]
pub struct At<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub file: FileId,
    pub ring: Option<String>,
    pub max_tier: Option<At<Tier>>,
    pub caps: Vec<(Dimension, At<Level>)>,
    pub allow_probes: Option<At<Vec<String>>>,
    pub deny_probes: Vec<At<String>>,
    pub allow_actions: Option<At<Vec<String>>>,
    pub deny_actions: Vec<At<String>>,
    pub max_memory: Option<At<u64>>,
    pub defaults: Defaults,
    /// Approvals needed per tier: none, limited, high.
    pub approvals: [u32; 3],
}

impl Policy {
    pub fn required_approvals(&self, tier: Tier) -> u32 {
        self.approvals[tier as usize]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ring: Option<String>,
    max_tier: Option<Spanned<String>>,
    max_memory: Option<Spanned<String>>,
    caps: Option<RawCaps>,
    probes: Option<RawLists>,
    actions: Option<RawLists>,
    defaults: Option<RawDefaults>,
    approvals: Option<RawApprovals>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaps {
    privacy: Option<Spanned<String>>,
    security: Option<Spanned<String>>,
    reliability: Option<Spanned<String>>,
    cost: Option<Spanned<String>>,
    performance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLists {
    allow: Option<Spanned<Vec<Spanned<String>>>>,
    deny: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    trigger_limit: Option<Spanned<i64>>,
    trigger_per: Option<Spanned<String>>,
    emit_limit: Option<Spanned<i64>>,
    emit_per: Option<Spanned<String>>,
    map_max: Option<Spanned<i64>>,
    machine_max: Option<Spanned<i64>>,
    unbounded_series: Option<Spanned<i64>>,
    flight_recorder_events: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    none: Option<u32>,
    limited: Option<u32>,
    high: Option<u32>,
}

fn span_of<T>(s: &Spanned<T>) -> Span {
    let r = s.span();
    Span::new(r.start, r.end)
}

/// Parses `64MiB`, `1GB`, `4096`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let n: u64 = s[..split].replace('_', "").parse().ok()?;
    let unit: u64 = match s[split..].trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// Parses `10s`, `5m`, `1h`, `1d` into nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: i64 = s[..split].parse().ok()?;
    let unit: i64 = match &s[split..] {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit).filter(|v| *v > 0)
}

/// Parses a policy file, or says everything wrong with it.
pub fn parse(file: FileId, text: &str) -> Result<Policy, Vec<Diagnostic>> {
    let raw: Raw = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e
                .span()
                .map_or(Span::new(0, 0), |r| Span::new(r.start, r.end));
            let message = e.message().to_string();
            return Err(vec![
                Diagnostic::new(
                    Code::E0806,
                    "invalid policy file",
                    Label::new(file, span, message),
                )
                .with_help("see docs/risk.md for the policy format"),
            ]);
        }
    };
    let mut errors = Vec::new();
    let mut bad = |span: Span, msg: String, help: String| {
        errors.push(
            Diagnostic::new(
                Code::E0806,
                "invalid policy setting",
                Label::new(file, span, msg),
            )
            .with_help(help),
        );
    };
    let mut p = Policy {
        file,
        ring: raw.ring,
        approvals: [0, 1, 2],
        ..Policy::default()
    };
    if let Some(t) = raw.max_tier {
        match Tier::parse_key(t.get_ref()) {
            Some(v) => {
                p.max_tier = Some(At {
                    value: v,
                    span: span_of(&t),
                })
            }
            None => bad(
                span_of(&t),
                format!("`{}` is not a tier", t.get_ref()),
                "use \"none\", \"limited\" or \"high\"".into(),
            ),
        }
    }
    if let Some(m) = raw.max_memory {
        match parse_size(m.get_ref()) {
            Some(v) => {
                p.max_memory = Some(At {
                    value: v,
                    span: span_of(&m),
                })
            }
            None => bad(
                span_of(&m),
                format!("`{}` is not a size", m.get_ref()),
                "write a size such as \"64MiB\"".into(),
            ),
        }
    }
    if let Some(c) = raw.caps {
        for (d, v) in [
            (Dimension::Privacy, c.privacy),
            (Dimension::Security, c.security),
            (Dimension::Reliability, c.reliability),
            (Dimension::Cost, c.cost),
            (Dimension::Performance, c.performance),
        ] {
            let Some(v) = v else { continue };
            match Level::parse(v.get_ref()) {
                Some(level) => p.caps.push((
                    d,
                    At {
                        value: level,
                        span: span_of(&v),
                    },
                )),
                None => bad(
                    span_of(&v),
                    format!("`{}` is not a level", v.get_ref()),
                    "use \"none\", \"low\", \"medium\" or \"high\"".into(),
                ),
            }
        }
    }
    let known_probes: Vec<&str> = dtc_stdlib::probes::PROBES.iter().map(|s| s.name).collect();
    let known_actions: Vec<&str> = dtc_stdlib::actions::ACTIONS
        .iter()
        .map(|s| s.name)
        .collect();
    let mut lists = |lists: Option<RawLists>,
                     known: &[&str],
                     what: &str|
     -> (Option<At<Vec<String>>>, Vec<At<String>>) {
        let Some(l) = lists else {
            return (None, vec![]);
        };
        let mut check = |s: &Spanned<String>| {
            if !known.contains(&s.get_ref().as_str()) {
                bad(
                    span_of(s),
                    format!("`{}` is not a known {what}", s.get_ref()),
                    format!("the {what}s are {}", known.join(", ")),
                );
            }
        };
        let allow = l.allow.map(|a| {
            let span = span_of(&a);
            let items: Vec<String> = a
                .into_inner()
                .into_iter()
                .map(|s| {
                    check(&s);
                    s.into_inner()
                })
                .collect();
            At { value: items, span }
        });
        let deny = l
            .deny
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                check(&s);
                At {
                    span: span_of(&s),
                    value: s.into_inner(),
                }
            })
            .collect();
        (allow, deny)
    };
    (p.allow_probes, p.deny_probes) = lists(raw.probes, &known_probes, "probe kind");
    (p.allow_actions, p.deny_actions) = lists(raw.actions, &known_actions, "action");
    if let Some(d) = raw.defaults {
        let mut positive = |v: Option<Spanned<i64>>, name: &str| -> Option<u64> {
            let v = v?;
            if *v.get_ref() <= 0 {
                bad(
                    span_of(&v),
                    format!("`{name}` must be at least 1"),
                    format!("set `{name}` to a positive number"),
                );
                return None;
            }
            Some(*v.get_ref() as u64)
        };
        if let Some(n) = positive(d.trigger_limit, "trigger_limit") {
            p.defaults.trigger_budget.0 = n as i64;
        }
        if let Some(n) = positive(d.emit_limit, "emit_limit") {
            p.defaults.emit_budget.0 = n as i64;
        }
        if let Some(n) = positive(d.map_max, "map_max") {
            p.defaults.map_max = n;
        }
        if let Some(n) = positive(d.machine_max, "machine_max") {
            p.defaults.machine_max = n;
        }
        if let Some(n) = positive(d.unbounded_series, "unbounded_series") {
            p.defaults.unbounded_series = n;
        }
        if let Some(n) = positive(d.flight_recorder_events, "flight_recorder_events") {
            p.defaults.flight_recorder_events = n;
        }
        if let Some(per) = d.emit_per {
            match parse_duration(per.get_ref()) {
                Some(ns) => p.defaults.emit_budget.1 = ns,
                None => bad(
                    span_of(&per),
                    format!("`{}` is not a duration", per.get_ref()),
                    "write a duration such as \"1s\"".into(),
                ),
            }
        }
        if let Some(per) = d.trigger_per {
            match parse_duration(per.get_ref()) {
                Some(ns) => p.defaults.trigger_budget.1 = ns,
                None => bad(
                    span_of(&per),
                    format!("`{}` is not a duration", per.get_ref()),
                    "write a duration such as \"1h\"".into(),
                ),
            }
        }
    }
    if let Some(a) = raw.approvals {
        p.approvals = [
            a.none.unwrap_or(0),
            a.limited.unwrap_or(1),
            a.high.unwrap_or(2),
        ];
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

/// What in the report exceeds the policy.
pub fn check(report: &Report, policy: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let ring = policy.ring.as_deref().unwrap_or("this ring");
    let pol = |span: Span, msg: String| Label::new(policy.file, span, msg);
    if let Some(max) = &policy.max_tier
        && report.tier > max.value
    {
        let top = report
            .contributions
            .iter()
            .filter(|c| c.level >= Level::Medium)
            .max_by_key(|c| c.level);
        let (file, span, what) = top.map_or(
            (
                report_file(report),
                Span::default(),
                "the program".to_string(),
            ),
            |c| {
                (
                    c.file,
                    c.span,
                    format!("{}: {} {}", c.construct, c.dimension, c.level),
                )
            },
        );
        out.push(
            Diagnostic::new(
                Code::E0801,
                format!("the program is {}, and {ring} accepts at most {}", report.tier, max.value),
                Label::new(file, span, what),
            )
            .with_label(pol(max.span, format!("{ring} caps the tier at {}", max.value)))
            .with_help("lower the constructs listed by `dtc risk`, or deploy to a ring that accepts this tier"),
        );
    }
    for (d, cap) in &policy.caps {
        let over: Vec<_> = report
            .raised(*d)
            .into_iter()
            .filter(|c| c.level > cap.value)
            .collect();
        let Some(first) = over.first() else { continue };
        let mut diag = Diagnostic::new(
            Code::E0802,
            format!(
                "{d} risk is {}, above the {} that {ring} allows",
                first.level, cap.value
            ),
            Label::new(
                first.file,
                first.span,
                format!("{}: {}", first.construct, first.reason),
            ),
        )
        .with_label(pol(cap.span, format!("{ring} caps {d} at {}", cap.value)));
        for c in over.iter().skip(1).take(4) {
            diag = diag.with_label(Label::new(
                c.file,
                c.span,
                format!("also {} {d}: {}", c.level, c.construct),
            ));
        }
        out.push(diag.with_help(format!(
            "remove or replace the constructs that raise {d}, or deploy to another ring"
        )));
    }
    let denied = |name: &str,
                  allow: &Option<At<Vec<String>>>,
                  deny: &[At<String>]|
     -> Option<(Span, String)> {
        if let Some(d) = deny.iter().find(|d| d.value == name) {
            return Some((d.span, format!("{ring} denies `{name}`")));
        }
        if let Some(a) = allow
            && !a.value.iter().any(|x| x == name)
        {
            return Some((a.span, format!("{ring} allows only these")));
        }
        None
    };
    for (kind, file, span) in &report.probes {
        if let Some((pspan, why)) = denied(kind, &policy.allow_probes, &policy.deny_probes) {
            out.push(
                Diagnostic::new(Code::E0803, format!("probe kind `{kind}` is not allowed in {ring}"), Label::new(*file, *span, "uses it"))
                    .with_label(pol(pspan, why))
                    .with_help("read the data another way (OpenTelemetry logs are allowed everywhere), or deploy to another ring"),
            );
        }
    }
    let mut seen_actions: Vec<&str> = Vec::new();
    for a in &report.actions {
        if let Some((pspan, why)) = denied(&a.name, &policy.allow_actions, &policy.deny_actions) {
            if seen_actions.contains(&a.name.as_str()) {
                continue;
            }
            seen_actions.push(&a.name);
            out.push(
                Diagnostic::new(
                    Code::E0804,
                    format!("action `{}` is not allowed in {ring}", a.name),
                    Label::new(a.file, a.span, "triggered here"),
                )
                .with_label(pol(pspan, why))
                .with_help("use an allowed action, or deploy to another ring"),
            );
        }
    }
    if let Some(max) = &policy.max_memory
        && report.memory_total > max.value
    {
        let biggest = report.memory.iter().max_by_key(|m| m.bytes);
        let (file, span, what) =
            biggest.map_or((report_file(report), Span::default(), String::new()), |m| {
                (
                    m.file,
                    m.span,
                    format!("{}: {}", m.what, crate::render::bytes(m.bytes)),
                )
            });
        out.push(
            Diagnostic::new(
                Code::E0805,
                format!(
                    "the program may use {}, more than the {} {ring} allows",
                    crate::render::bytes(report.memory_total),
                    crate::render::bytes(max.value)
                ),
                Label::new(file, span, what),
            )
            .with_label(pol(
                max.span,
                format!("{ring} allows {}", crate::render::bytes(max.value)),
            ))
            .with_help(
                "declare smaller `max` bounds on machines and maps, or bound the metric labels",
            ),
        );
    }
    out
}

fn report_file(report: &Report) -> FileId {
    report.contributions.first().map_or(FileId(0), |c| c.file)
}
