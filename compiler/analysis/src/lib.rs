//! Analysis of checked dt programs: what makes dtc more than a log
//! processor. Given a program that type-checks, it proves the program cannot
//! change the system it observes (read-only effects), that every handler
//! runs in bounded steps and all state has a maximum (with an upper bound of
//! the program's memory), that personal data does not reach egress without
//! being declassified (privacy flow), and that metrics and actions are
//! bounded in cost. From what the program uses and what the analysis finds,
//! it computes the program's risk vector and tier, each dimension with the
//! constructs that raised it. [`policy`] then checks the result against a
//! deployment ring's policy.
//!
//! Analysis runs only on programs with no type errors, so it can resolve
//! names simply: every name it meets is known to be well-formed. It reads the
//! AST of the root file and the event schemas of the files it imports; it
//! does no IO.

pub mod policy;
mod render;
mod report;
mod walk;

pub use render::{render_json, render_svg, render_text};
pub use report::{ActionUse, Contribution, HandlerInfo, MemoryItem, MetricInfo, Report};

use dtc_diagnostics::{Diagnostic, FileId, Span};
use dtc_sema::Unit;
use dtc_stdlib::risk::Profile;

/// The most state any program may hold, whatever the policy: an agent
/// refuses programs whose memory bound is larger.
pub const MEMORY_CEILING: u64 = 1 << 30;

/// Limits the analysis assumes where the program does not declare one. A
/// policy can override them.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Entries of a map declared without `max`.
    pub map_max: u64,
    /// Instances of a keyed machine declared without `max`.
    pub machine_max: u64,
    /// Series of a metric whose labels are not bounded, for the memory bound.
    pub unbounded_series: u64,
    /// The longest string kept in state; the runtime truncates longer ones.
    pub state_string_max: u64,
    /// Events the flight recorder keeps per program.
    pub flight_recorder_events: u64,
    /// Budget of a trigger written without `limit`: (count, period in ns).
    pub trigger_budget: (i64, i64),
    /// Budget of an `emit log` in a handler written without `limit`.
    pub emit_budget: (i64, i64),
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            map_max: 1_000,
            machine_max: 10_000,
            unbounded_series: 10_000,
            state_string_max: 1_024,
            flight_recorder_events: 1_000,
            trigger_budget: (1, 3_600_000_000_000),
            emit_budget: (100, 1_000_000_000),
        }
    }
}

/// Analyzes the program rooted at `units[0]`. `types` are the expression
/// types the checker recorded. Returns the risk report and the safety,
/// bounds, privacy and cost diagnostics.
pub fn analyze(
    units: &[Unit],
    types: &[(FileId, Span, String)],
    defaults: &Defaults,
) -> (Report, Vec<Diagnostic>) {
    analyze_with(units, types, defaults, dtc_stdlib::risk::PROFILES)
}

/// [`analyze`] with another catalog of effects and risks, as an extended
/// catalog would supply.
pub fn analyze_with(
    units: &[Unit],
    types: &[(FileId, Span, String)],
    defaults: &Defaults,
    profiles: &[Profile],
) -> (Report, Vec<Diagnostic>) {
    let Some(_) = units.first() else {
        return (Report::default(), Vec::new());
    };
    let mut walker = walk::Walker::new(units, types, defaults, profiles);
    walker.run();
    walker.finish()
}

#[cfg(test)]
mod tests;
