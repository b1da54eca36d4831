//! The dtc IR ("Dir"): a small, typed, verifiable form of a checked program,
//! the one thing an artifact carries and an agent runs.
//!
//! Names are resolved to indices (event layouts, field slots, locals,
//! variables, state-variable slots, query columns), every expression carries
//! its type, loops carry their bounds and every emit and trigger its budget.
//! Nothing refers back to the source: [`verify`] re-checks types, bounds and
//! effects from the IR alone, so a runtime never trusts where an IR came
//! from. [`lower`] builds it from a checked program; [`print`] gives its
//! text form, which `dtc inspect` shows.

mod lower;
mod print;
mod verify;

pub use lower::{Defaults, lower};
pub use print::print;
pub use verify::{VerifyError, verify};

use serde::{Deserialize, Serialize};

/// The IR's types, mirroring the language's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Type {
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Duration,
    Timestamp,
    Percent,
    Dyn,
    Histogram,
    Opt(Box<Type>),
    Map(Box<Type>, Box<Type>),
    /// The type of the constant `none`.
    None,
}

impl Type {
    pub fn inner(&self) -> &Type {
        match self {
            Type::Opt(t) => t,
            t => t,
        }
    }

    pub fn is_opt(&self) -> bool {
        matches!(self, Type::Opt(_))
    }

    /// Whether a value of type `v` may be stored where `self` is expected.
    pub fn accepts(&self, v: &Type) -> bool {
        self == v
            || matches!((self, v), (Type::Opt(_), Type::None))
            || matches!(self, Type::Opt(i) if **i == *v)
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Float => f.write_str("float"),
            Type::Str => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Duration => f.write_str("duration"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Percent => f.write_str("percent"),
            Type::Dyn => f.write_str("dyn"),
            Type::Histogram => f.write_str("histogram"),
            Type::Opt(t) => write!(f, "{t}?"),
            Type::Map(k, v) => write!(f, "map[{k}, {v}]"),
            Type::None => f.write_str("none"),
        }
    }
}

/// How sensitive a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sensitivity {
    Pii,
    Secret,
}

/// A checked program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Program {
    pub name: String,
    pub events: Vec<EventLayout>,
    pub shaping: Vec<ShapeRule>,
    pub queries: Vec<Query>,
    pub machines: Vec<Machine>,
    pub processors: Vec<Processor>,
    pub functions: Vec<Function>,
}

/// The slot layout of one event type. A record of this type has one slot
/// per field, in order, beside the standard fields every event has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLayout {
    /// The name programs use.
    pub name: String,
    /// The durable ID on the wire: OTLP `event_name` or `event.name`.
    pub wire: String,
    pub fields: Vec<Field>,
    /// Produced by the program (`emit log`) rather than received.
    pub derived: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    /// The attribute key it is read from.
    pub key: String,
    /// Optional fields have an `Opt` type.
    pub ty: Type,
    pub sensitivity: Option<Sensitivity>,
}

/// The standard fields of every event (OpenTelemetry's log data model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StdField {
    Time,
    ObservedTime,
    Severity,
    SeverityText,
    Body,
    TraceId,
    SpanId,
    ThreadId,
    Service,
    Attrs,
    Resource,
}

impl StdField {
    pub const ALL: [StdField; 11] = [
        StdField::Time,
        StdField::ObservedTime,
        StdField::Severity,
        StdField::SeverityText,
        StdField::Body,
        StdField::TraceId,
        StdField::SpanId,
        StdField::ThreadId,
        StdField::Service,
        StdField::Attrs,
        StdField::Resource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StdField::Time => "time",
            StdField::ObservedTime => "observed_time",
            StdField::Severity => "severity",
            StdField::SeverityText => "severity_text",
            StdField::Body => "body",
            StdField::TraceId => "trace_id",
            StdField::SpanId => "span_id",
            StdField::ThreadId => "thread_id",
            StdField::Service => "service",
            StdField::Attrs => "attrs",
            StdField::Resource => "resource",
        }
    }

    pub fn from_name(name: &str) -> Option<StdField> {
        StdField::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn ty(self) -> Type {
        match self {
            StdField::Time | StdField::ObservedTime => Type::Timestamp,
            StdField::Severity => Type::Int,
            StdField::ThreadId => Type::Opt(Box::new(Type::Int)),
            StdField::Attrs | StdField::Resource => {
                Type::Map(Box::new(Type::Str), Box::new(Type::Dyn))
            }
            _ => Type::Opt(Box::new(Type::Str)),
        }
    }
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Const {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Duration(i64),
    Percent(f64),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A typed expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub ty: Type,
    pub kind: ExprKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Const(Const),
    /// A declared field of the current event, by slot.
    Field(u32),
    Std(StdField),
    /// A local of the current handler's frame.
    Local(u32),
    /// A variable of the processor, or of the current machine instance.
    Var(u32),
    /// A state-variable slot of the current machine instance.
    StateVar(u32),
    /// A column of the current query row.
    Column(u32),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a ?? b`.
    Coalesce(Box<Expr>, Box<Expr>),
    /// A map entry (`None` when absent).
    Index(Box<Expr>, Box<Expr>),
    /// A standard-library function, by catalog name.
    Call(String, Vec<Expr>),
    /// A program function, by index.
    CallFn(u32, Vec<Expr>),
    /// `sample(rate)`: deterministic per event, seed and call site.
    Sample {
        rate: Box<Expr>,
        site: u32,
    },
    /// `machine is State` for the current event's instance.
    InState {
        machine: u32,
        state: u32,
    },
}

/// Where an assignment stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Place {
    Local(u32),
    Var(u32),
    StateVar(u32),
    /// An entry of the map in the place.
    Entry(Box<Place>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
}

/// How often an emit or trigger may fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub count: u64,
    pub per_ns: i64,
    /// Written in the program, rather than the default.
    pub declared: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stmt {
    Let(u32, Expr),
    Assign {
        place: Place,
        op: AssignOp,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// Binds the local when the optional has a value.
    IfLet {
        local: u32,
        value: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// `for local in from..to`: at most `to - from` steps.
    ForRange {
        local: u32,
        from: i64,
        to: i64,
        body: Vec<Stmt>,
    },
    /// Over the entries of a map variable, in key order.
    ForMap {
        map: Place,
        key: u32,
        value: Option<u32>,
        body: Vec<Stmt>,
    },
    /// Emits a derived event: a value per slot of its layout.
    Emit {
        event: u32,
        fields: Vec<(u32, Expr)>,
        budget: Budget,
        site: u32,
    },
    Trigger {
        action: String,
        args: Vec<(String, Expr)>,
        budget: Budget,
        site: u32,
    },
    Return(Expr),
    Expr(Expr),
}

/// A program function: pure, with its parameters as its first locals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub params: Vec<Type>,
    pub ret: Type,
    pub n_locals: u32,
    pub body: Vec<Stmt>,
}

/// A persistent variable of a processor or machine instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarDef {
    pub name: String,
    pub ty: Type,
    /// Evaluated once, with no event, when the processor or instance starts.
    pub init: Option<Expr>,
    /// For maps: the most entries.
    pub max_entries: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handler {
    pub event: u32,
    pub guard: Option<Expr>,
    pub n_locals: u32,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    pub name: String,
    pub vars: Vec<VarDef>,
    pub handlers: Vec<Handler>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    /// The state-variable slots this state owns, with their defaults
    /// (evaluated with no event when the state is entered).
    pub vars: Vec<(u32, Option<Expr>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub event: u32,
    /// Source states; empty means any.
    pub from: Vec<u32>,
    pub target: u32,
    pub guard: Option<Expr>,
    pub n_locals: u32,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeout {
    pub after_ns: i64,
    pub from: u32,
    pub target: u32,
    pub n_locals: u32,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub name: String,
    /// The instance key for each event that reaches the machine (its own
    /// transitions and the `is` tests of queries); `None` for a machine with
    /// a single instance.
    pub keys: Option<Vec<(u32, Expr)>>,
    pub max_instances: u64,
    pub states: Vec<State>,
    /// Types of the state-variable slots.
    pub slots: Vec<Type>,
    pub vars: Vec<VarDef>,
    pub transitions: Vec<Transition>,
    pub timeouts: Vec<Timeout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShapeRule {
    Suppress {
        event: u32,
        when: Option<Expr>,
    },
    /// Removes a declared field, from every event or those `when` selects.
    SuppressField {
        event: u32,
        slot: u32,
        when: Option<Expr>,
    },
    /// `hash`, `mask` or `drop` of a declared field.
    Redact {
        event: u32,
        slot: u32,
        method: Redaction,
    },
    /// A standard field (`body`, ...), redacted the same way.
    RedactStd {
        event: u32,
        field: StdField,
        method: Redaction,
        /// For `suppress E.field when c`: only where `c` holds.
        when: Option<Expr>,
    },
    Sample {
        event: u32,
        rate: f64,
    },
    Limit {
        event: u32,
        count: u64,
        per_ns: i64,
    },
}

impl ShapeRule {
    /// The event layout the rule applies to.
    pub fn event(&self) -> u32 {
        match self {
            ShapeRule::Suppress { event, .. }
            | ShapeRule::SuppressField { event, .. }
            | ShapeRule::Redact { event, .. }
            | ShapeRule::RedactStd { event, .. }
            | ShapeRule::Sample { event, .. }
            | ShapeRule::Limit { event, .. } => *event,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redaction {
    Hash,
    Mask,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggKind {
    Count,
    CountIf,
    Sum,
    Min,
    Max,
    Avg,
    Histogram,
    Percentile,
    DistinctCount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub name: String,
    pub kind: AggKind,
    pub args: Vec<Expr>,
    pub ty: Type,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    Where(Expr),
    /// Adds columns, or replaces a column of the same name in place; the
    /// source event stays readable.
    Extend(Vec<(String, Expr)>),
    /// Replaces the row; the source event is no longer readable.
    Project(Vec<(String, Expr)>),
    Summarize {
        keys: Vec<(String, Expr)>,
        aggregates: Vec<Aggregate>,
        every_ns: i64,
        max_series: Option<u64>,
    },
    Sample {
        rate: f64,
        site: u32,
    },
    Limit {
        count: u64,
        per_ns: i64,
    },
    EmitLog {
        event: u32,
        fields: Vec<(u32, Expr)>,
    },
    /// One metric per aggregate column of the row; the key columns label it.
    EmitMetric {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub name: String,
    pub source: u32,
    pub stages: Vec<Stage>,
}

/// The row of a query after each stage: the names of its columns.
pub fn row_after(q: &Query, n_stages: usize) -> Vec<String> {
    let mut row: Vec<String> = Vec::new();
    for stage in q.stages.iter().take(n_stages) {
        match stage {
            Stage::Extend(cols) => {
                for (n, _) in cols {
                    if !row.contains(n) {
                        row.push(n.clone());
                    }
                }
            }
            Stage::Project(cols) => row = cols.iter().map(|(n, _)| n.clone()).collect(),
            Stage::Summarize {
                keys, aggregates, ..
            } => {
                row = keys
                    .iter()
                    .map(|(n, _)| n.clone())
                    .chain(aggregates.iter().map(|a| a.name.clone()))
                    .collect();
            }
            _ => {}
        }
    }
    row
}

#[cfg(test)]
mod tests;
