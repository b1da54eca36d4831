//! The risk report: the program's vector and tier, and the facts behind it.

use dtc_diagnostics::{FileId, Span};
use dtc_stdlib::risk::{Dimension, Effect, Level, RiskVector, Tier};

/// One construct that raised one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub dimension: Dimension,
    pub level: Level,
    /// What raised it, as written (`probe uprobe`, `trigger memory_dump`).
    pub construct: String,
    pub reason: String,
    pub file: FileId,
    pub span: Span,
}

/// A query, machine, transition or handler, with its effects and the most
/// steps it takes for one event.
#[derive(Debug, Clone)]
pub struct HandlerInfo {
    pub name: String,
    pub kind: &'static str,
    pub effects: Vec<Effect>,
    pub max_steps: u64,
    pub file: FileId,
    pub span: Span,
}

/// A piece of state and its largest size.
#[derive(Debug, Clone)]
pub struct MemoryItem {
    pub what: String,
    pub bytes: u64,
    /// How the bound was computed, including any default it assumed.
    pub how: String,
    pub file: FileId,
    pub span: Span,
}

/// A metric a query emits.
#[derive(Debug, Clone)]
pub struct MetricInfo {
    pub name: String,
    pub labels: Vec<String>,
    /// The most series it can have; `None` when its labels are unbounded.
    pub max_series: Option<u64>,
    pub file: FileId,
    pub span: Span,
}

/// An action the program can trigger, with its budget.
#[derive(Debug, Clone)]
pub struct ActionUse {
    pub name: String,
    /// (count, period in nanoseconds).
    pub budget: (i64, i64),
    /// Whether the budget is the default rather than written.
    pub defaulted: bool,
    pub file: FileId,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The root file's name.
    pub program: String,
    pub vector: RiskVector,
    pub tier: Tier,
    pub contributions: Vec<Contribution>,
    pub handlers: Vec<HandlerInfo>,
    pub memory: Vec<MemoryItem>,
    pub memory_total: u64,
    pub metrics: Vec<MetricInfo>,
    pub probes: Vec<(String, FileId, Span)>,
    pub actions: Vec<ActionUse>,
    /// The logs handlers emit, with their budgets (`name` is the event).
    pub emits: Vec<ActionUse>,
}

impl Report {
    /// The contributions to one dimension, highest first.
    pub fn raised(&self, d: Dimension) -> Vec<&Contribution> {
        let mut v: Vec<&Contribution> = self
            .contributions
            .iter()
            .filter(|c| c.dimension == d)
            .collect();
        v.sort_by(|a, b| b.level.cmp(&a.level).then(a.span.start.cmp(&b.span.start)));
        v
    }
}
