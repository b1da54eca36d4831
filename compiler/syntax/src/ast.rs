//! The abstract syntax tree: what the parser builds and the checker reads.
//!
//! Every node carries the byte [`Span`] of the source it came from. The tree
//! is untyped and may contain `Error` nodes where the parser recovered from a
//! mistake; later passes skip those silently, because the parser has already
//! reported them.

pub use dtc_diagnostics::Span;

/// An identifier with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal with its decoded value.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A dotted name such as `otel.logs` or `flight_recorder.snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn joined(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceFileAst {
    pub items: Vec<Item>,
    /// When the file has syntax errors: every name a declaration keyword
    /// introduces in the source, parsed or not. The checker does not report
    /// these names as unknown, since the real error is the syntax error.
    pub unparsed_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Import(Import),
    Event(EventDecl),
    Probe(ProbeDecl),
    Query(QueryDecl),
    Machine(MachineDecl),
    Processor(ProcessorDecl),
    Fn(FnDecl),
    Shaping(ShapingRule),
    /// Where the parser skipped input after a syntax error.
    Error(Span),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Import(i) => i.span,
            Item::Event(i) => i.span,
            Item::Probe(i) => i.span,
            Item::Query(i) => i.span,
            Item::Machine(i) => i.span,
            Item::Processor(i) => i.span,
            Item::Fn(i) => i.span,
            Item::Shaping(i) => i.span,
            Item::Error(span) => *span,
        }
    }

    /// The declared name, for items that declare one.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Event(i) => Some(&i.name),
            Item::Probe(i) => Some(&i.name),
            Item::Query(i) => Some(&i.name),
            Item::Machine(i) => Some(&i.name),
            Item::Processor(i) => Some(&i.name),
            Item::Fn(i) => Some(&i.name),
            _ => None,
        }
    }
}

/// `import "path.dt"` or `import { A, B } from "path.dt"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// `None` imports every event of the file.
    pub names: Option<Vec<Ident>>,
    pub path: StrLit,
    pub span: Span,
}

/// `event Name = "durable.id" from probe { fields }`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDecl {
    pub doc: Option<String>,
    pub name: Ident,
    /// The name on the wire when it differs from `name`.
    pub durable_id: Option<StrLit>,
    /// The probe the event comes from; `otel.logs` when absent.
    pub source: Option<Ident>,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

impl EventDecl {
    pub fn wire_name(&self) -> &str {
        self.durable_id
            .as_ref()
            .map_or(self.name.name.as_str(), |d| d.value.as_str())
    }
}

/// `name: type @annotation ...`
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub ty: TypeExpr,
    pub annotations: Vec<Annotation>,
    pub span: Span,
}

impl FieldDecl {
    /// Whether the field carries the annotation `@name`.
    pub fn has_annotation(&self, name: &str) -> bool {
        self.annotations.iter().any(|a| a.name.name == name)
    }
}

/// `@pii`, `@attr("http.method")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub name: Ident,
    pub args: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeExprKind {
    /// `int`, `string`, ... and generic names such as `map[K, V]`.
    Named {
        name: Ident,
        args: Vec<TypeExpr>,
    },
    /// `T?`
    Optional(Box<TypeExpr>),
    Error,
}

/// `probe name = kind(arg: value, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub kind: Path,
    pub args: Vec<Arg>,
    pub span: Span,
}

/// A call argument, positional or named.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// `query name = Source | stage | stage ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub source: Ident,
    pub stages: Vec<Stage>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub kind: StageKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    Where(Expr),
    Extend(Vec<Column>),
    Project(Vec<Column>),
    Summarize {
        aggregates: Vec<Column>,
        by: Vec<Column>,
        /// `max N`: at most N series (group key combinations); past it, new
        /// combinations are folded into one overflow series.
        max_series: Option<Expr>,
        every: Option<Expr>,
    },
    Sample(Expr),
    Limit {
        count: Expr,
        per: Expr,
    },
    EmitLog(Ident),
    EmitMetric(StrLit),
    Error,
}

/// `name = expr`, or a bare expression whose name is derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: Option<Ident>,
    pub expr: Expr,
    pub span: Span,
}

/// `machine name per key max N { members }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub key: Option<Expr>,
    pub max: Option<Expr>,
    pub members: Vec<MachineMember>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MachineMember {
    State(StateDecl),
    Var(VarDecl),
    On(Transition),
    After(Timeout),
    Error(Span),
}

/// `state Name { var: type = default, ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub vars: Vec<StateVar>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateVar {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub span: Span,
}

/// `on Event in A, B when guard -> Target { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub event: Ident,
    /// Source states; empty means "in any state".
    pub from: Vec<Ident>,
    pub guard: Option<Expr>,
    pub target: Ident,
    pub body: Option<Block>,
    pub span: Span,
}

/// `after 60s in State -> Target { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeout {
    pub after: Expr,
    pub from: Ident,
    pub target: Ident,
    pub body: Option<Block>,
    pub span: Span,
}

/// `processor name { members }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub members: Vec<ProcessorMember>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorMember {
    Var(VarDecl),
    Fn(FnDecl),
    Handler(Handler),
    Error(Span),
}

/// `var name: type = init max N`.
#[derive(Debug, Clone, PartialEq)]
pub struct VarDecl {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub init: Option<Expr>,
    pub max: Option<Expr>,
    pub span: Span,
}

/// `on Event when guard { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Handler {
    pub event: Ident,
    pub guard: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// `fn name(params) -> type { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct FnDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

/// A top-level stream shaping rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapingRule {
    pub kind: ShapingKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShapingKind {
    /// `suppress Event when cond` or `suppress Event.field`.
    Suppress {
        target: ShapeTarget,
        when: Option<Expr>,
    },
    /// `redact Event.field with hash|mask|drop`.
    Redact { target: ShapeTarget, method: Ident },
    /// `sample Event 10%`.
    Sample { event: Ident, rate: Expr },
    /// `limit Event 100 per 1m`.
    Limit {
        event: Ident,
        count: Expr,
        per: Expr,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShapeTarget {
    pub event: Ident,
    pub field: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
    /// Nesting depth of blocks inside this one, bounded by the parser.
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `let x = e` (immutable) or `var x = e` (a local that can change).
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
        mutable: bool,
    },
    Assign {
        target: Expr,
        op: AssignOp,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    /// `if let name = optional { } else { }`.
    IfLet {
        name: Ident,
        value: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    For {
        key: Ident,
        value: Option<Ident>,
        iter: ForIter,
        body: Block,
    },
    /// `emit log Name { field: value, ... } limit N per D`.
    EmitLog {
        name: Ident,
        fields: Vec<FieldInit>,
        budget: Option<Budget>,
    },
    /// `trigger action(args) limit N per D`.
    Trigger {
        action: Path,
        args: Vec<Arg>,
        budget: Option<Budget>,
    },
    Return(Option<Expr>),
    /// A call used as a statement.
    Expr(Expr),
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ForIter {
    /// `a..b`, end excluded.
    Range(Expr, Expr),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldInit {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `limit N per D`.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub count: Expr,
    pub per: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of the expression tree, bounded by the parser so that every
    /// recursive pass has a bounded stack.
    pub depth: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Coalesce,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Coalesce => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    /// Nanoseconds.
    Duration(i64),
    /// Bytes.
    Size(i64),
    /// 0 to 100.
    Percent(f64),
    Name(Ident),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Call {
        callee: Path,
        args: Vec<Arg>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `machine is State`: the current event's machine instance is in State.
    Is {
        machine: Ident,
        state: Ident,
    },
    Error,
}

impl Expr {
    /// The dotted path this expression spells, if it is one (`a.b.c`).
    pub fn as_path(&self) -> Option<Path> {
        match &self.kind {
            ExprKind::Name(id) => Some(Path {
                segments: vec![id.clone()],
                span: self.span,
            }),
            ExprKind::Field(base, field) => {
                let mut p = base.as_path()?;
                p.segments.push(field.clone());
                p.span = self.span;
                Some(p)
            }
            _ => None,
        }
    }
}
