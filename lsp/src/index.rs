//! The symbol index: every name in the checked files, resolved to what it
//! names.
//!
//! The checker resolves names but keeps only diagnostics and types, so the
//! server resolves again, with the same rules in a simpler form: events by
//! name across the root file and its imports; fields through the event in
//! scope (`event.f` in a handler, bare names in a query or a shaping rule,
//! the fields of an emitted log); states within their machine; variables
//! through block scopes; functions by name, user functions first, then the
//! standard library. Each name in the source becomes an [`Occurrence`] that
//! points at a [`Symbol`] (something the program declares) or a
//! [`Builtin`] (a catalog entry), which is what go to definition, find
//! references, hover and semantic tokens read.
//!
//! The walk is one pass per file after a pass that declares everything, so
//! the index is linear in the size of the program.

use std::collections::HashMap;

use dtc_diagnostics::{FileId, Span};
use dtc_driver::CheckOutput;
use dtc_syntax::ast::*;

/// What kind of thing a symbol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    Event,
    Field,
    Probe,
    Query,
    Machine,
    State,
    Processor,
    Function,
    Variable,
    Parameter,
    /// A column a query stage defines (`extend x = ...`, `summarize n = ...`).
    Column,
}

impl SymbolKind {
    pub fn describe(self) -> &'static str {
        match self {
            SymbolKind::Event => "event",
            SymbolKind::Field => "field",
            SymbolKind::Probe => "probe",
            SymbolKind::Query => "query",
            SymbolKind::Machine => "machine",
            SymbolKind::State => "state",
            SymbolKind::Processor => "processor",
            SymbolKind::Function => "function",
            SymbolKind::Variable => "variable",
            SymbolKind::Parameter => "parameter",
            SymbolKind::Column => "column",
        }
    }
}

/// Something the program declares.
#[derive(Debug, Clone)]
pub struct Symbol {
    pub kind: SymbolKind,
    pub name: String,
    pub file: FileId,
    /// The declaring name.
    pub span: Span,
    /// The whole declaration.
    pub full: Span,
    /// The event of a field, the machine of a state or state variable.
    pub container: Option<String>,
    pub doc: Option<String>,
    /// A declared or inferred type, for variables, parameters and fields.
    pub ty: Option<String>,
    /// An event that no `event` declares, made by `emit log`.
    pub implied: bool,
}

/// A catalog entry a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Function(&'static str),
    Aggregate(&'static str),
    Action(&'static str),
    Probe(&'static str),
    Annotation(&'static str),
    Redaction(&'static str),
    StandardField(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Symbol(usize),
    Builtin(Builtin),
}

/// One name in the source and what it refers to.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence {
    pub file: FileId,
    pub span: Span,
    pub target: Target,
    /// Whether this is the declaration itself.
    pub def: bool,
}

#[derive(Debug, Default)]
pub struct Index {
    pub symbols: Vec<Symbol>,
    /// Sorted by file, then start.
    pub occurrences: Vec<Occurrence>,
    events: HashMap<String, usize>,
    fields: HashMap<(String, String), usize>,
    machines: HashMap<String, usize>,
    states: HashMap<(String, String), usize>,
    state_vars: HashMap<String, Vec<(String, usize)>>,
    probes: HashMap<String, usize>,
    /// Top-level functions by name.
    functions: HashMap<String, usize>,
}

impl Index {
    pub fn build(out: &CheckOutput) -> Index {
        let types: HashMap<(FileId, Span), &str> = out
            .analysis
            .types
            .iter()
            .map(|(f, s, t)| ((*f, *s), t.as_str()))
            .collect();
        let mut index = Index::default();
        for unit in &out.units {
            index.declare(unit.file, &unit.ast);
        }
        for unit in &out.units {
            let mut w = Walker {
                index: &mut index,
                file: unit.file,
                types: &types,
                scopes: Vec::new(),
                event: None,
                fields_are_names: false,
                machine: None,
                local_fns: HashMap::new(),
            };
            w.file_items(&unit.ast);
        }
        index
            .occurrences
            .sort_by_key(|o| (o.file, o.span.start, o.span.end));
        index
    }

    /// The occurrence at a byte offset of a file (the innermost, if any
    /// nest), also matching an offset just past its end, where the cursor
    /// sits after typing a name.
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let from = self
            .occurrences
            .partition_point(|o| (o.file, o.span.start) < (file, offset.saturating_sub(64)));
        self.occurrences[from..]
            .iter()
            .take_while(|o| o.file == file && o.span.start <= offset)
            .filter(|o| o.span.start <= offset && offset <= o.span.end)
            .min_by_key(|o| (o.span.end == offset, o.span.len()))
    }

    /// Every occurrence of a target.
    pub fn references(&self, target: Target) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.iter().filter(move |o| o.target == target)
    }

    pub fn event(&self, name: &str) -> Option<&Symbol> {
        self.events.get(name).map(|&i| &self.symbols[i])
    }

    /// Every event, declared or implied by an emit.
    pub fn events(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter().filter(|s| s.kind == SymbolKind::Event)
    }

    /// The fields an event declares, in order.
    pub fn fields_of(&self, event: &str) -> Vec<&Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.kind == SymbolKind::Field && s.container.as_deref() == Some(event))
            .collect()
    }

    /// The states of a machine, in order.
    pub fn states_of(&self, machine: &str) -> Vec<&Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.kind == SymbolKind::State && s.container.as_deref() == Some(machine))
            .collect()
    }

    pub fn functions(&self) -> impl Iterator<Item = &Symbol> {
        self.functions.values().map(|&i| &self.symbols[i])
    }

    fn add(&mut self, symbol: Symbol) -> usize {
        let id = self.symbols.len();
        self.occurrences.push(Occurrence {
            file: symbol.file,
            span: symbol.span,
            target: Target::Symbol(id),
            def: true,
        });
        self.symbols.push(symbol);
        id
    }

    fn symbol(kind: SymbolKind, file: FileId, name: &Ident, full: Span) -> Symbol {
        Symbol {
            kind,
            name: name.name.clone(),
            file,
            span: name.span,
            full,
            container: None,
            doc: None,
            ty: None,
            implied: false,
        }
    }

    /// The first pass: everything a file declares at the top level, with
    /// the fields of its events and the states of its machines.
    fn declare(&mut self, file: FileId, ast: &SourceFileAst) {
        for item in &ast.items {
            match item {
                Item::Event(e) => {
                    if self.events.contains_key(&e.name.name) {
                        continue;
                    }
                    let mut s = Index::symbol(SymbolKind::Event, file, &e.name, e.span);
                    s.doc = e.doc.clone();
                    let id = self.add(s);
                    self.events.insert(e.name.name.clone(), id);
                    for f in &e.fields {
                        let mut s = Index::symbol(SymbolKind::Field, file, &f.name, f.span);
                        s.doc = f.doc.clone();
                        s.container = Some(e.name.name.clone());
                        s.ty = Some(type_text(&f.ty));
                        let id = self.add(s);
                        self.fields
                            .entry((e.name.name.clone(), f.name.name.clone()))
                            .or_insert(id);
                    }
                }
                Item::Probe(p) => {
                    let mut s = Index::symbol(SymbolKind::Probe, file, &p.name, p.span);
                    s.doc = p.doc.clone();
                    let id = self.add(s);
                    self.probes.entry(p.name.name.clone()).or_insert(id);
                }
                Item::Query(q) => {
                    let mut s = Index::symbol(SymbolKind::Query, file, &q.name, q.span);
                    s.doc = q.doc.clone();
                    self.add(s);
                }
                Item::Machine(m) => {
                    let mut s = Index::symbol(SymbolKind::Machine, file, &m.name, m.span);
                    s.doc = m.doc.clone();
                    let id = self.add(s);
                    self.machines.entry(m.name.name.clone()).or_insert(id);
                    for member in &m.members {
                        if let MachineMember::State(st) = member {
                            let mut s = Index::symbol(SymbolKind::State, file, &st.name, st.span);
                            s.doc = st.doc.clone();
                            s.container = Some(m.name.name.clone());
                            let id = self.add(s);
                            self.states
                                .entry((m.name.name.clone(), st.name.name.clone()))
                                .or_insert(id);
                            for v in &st.vars {
                                let mut s =
                                    Index::symbol(SymbolKind::Variable, file, &v.name, v.span);
                                s.container = Some(format!("{}.{}", m.name.name, st.name.name));
                                s.ty = Some(type_text(&v.ty));
                                let id = self.add(s);
                                self.state_vars
                                    .entry(format!("{}.{}", m.name.name, st.name.name))
                                    .or_default()
                                    .push((v.name.name.clone(), id));
                            }
                        }
                    }
                }
                Item::Processor(p) => {
                    let mut s = Index::symbol(SymbolKind::Processor, file, &p.name, p.span);
                    s.doc = p.doc.clone();
                    self.add(s);
                }
                Item::Fn(f) => {
                    let mut s = Index::symbol(SymbolKind::Function, file, &f.name, f.span);
                    s.doc = f.doc.clone();
                    s.ty = f.ret.as_ref().map(type_text);
                    let id = self.add(s);
                    self.functions.entry(f.name.name.clone()).or_insert(id);
                }
                Item::Import(_) | Item::Shaping(_) | Item::Error(_) => {}
            }
        }
    }
}

/// A type as written, normalized: `map[string, int]`, `string?`.
pub fn type_text(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named { name, args } if args.is_empty() => name.name.clone(),
        TypeExprKind::Named { name, args } => format!(
            "{}[{}]",
            name.name,
            args.iter().map(type_text).collect::<Vec<_>>().join(", ")
        ),
        TypeExprKind::Optional(inner) => format!("{}?", type_text(inner)),
        TypeExprKind::Error => "?".to_string(),
    }
}

struct Walker<'a> {
    index: &'a mut Index,
    file: FileId,
    types: &'a HashMap<(FileId, Span), &'a str>,
    scopes: Vec<HashMap<String, usize>>,
    /// The event `event` refers to here.
    event: Option<String>,
    /// Whether bare names are fields of `event` (queries, shaping rules).
    fields_are_names: bool,
    machine: Option<String>,
    /// Functions declared in the processor being walked.
    local_fns: HashMap<String, usize>,
}

impl Walker<'_> {
    fn refer(&mut self, span: Span, target: Target) {
        self.index.occurrences.push(Occurrence {
            file: self.file,
            span,
            target,
            def: false,
        });
    }

    fn refer_symbol(&mut self, span: Span, id: Option<usize>) {
        if let Some(id) = id {
            self.refer(span, Target::Symbol(id));
        }
    }

    fn define(&mut self, kind: SymbolKind, name: &Ident, full: Span, ty: Option<String>) -> usize {
        let mut s = Index::symbol(kind, self.file, name, full);
        s.ty = ty;
        let id = self.index.add(s);
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.name.clone(), id);
        }
        id
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    /// A reference to an event; an emitted log no `event` declares is
    /// declared by its first emit.
    fn event_ref(&mut self, name: &Ident, emitted: bool) -> Option<usize> {
        match self.index.events.get(&name.name) {
            Some(&id) => {
                self.refer(name.span, Target::Symbol(id));
                Some(id)
            }
            None if emitted => {
                let mut s = Index::symbol(SymbolKind::Event, self.file, name, name.span);
                s.implied = true;
                let id = self.index.add(s);
                self.index.events.insert(name.name.clone(), id);
                Some(id)
            }
            None => None,
        }
    }

    fn field_ref(&mut self, event: &str, field: &Ident) {
        if let Some(&id) = self
            .index
            .fields
            .get(&(event.to_string(), field.name.clone()))
        {
            self.refer(field.span, Target::Symbol(id));
        } else if let Some(f) = dtc_stdlib::fields::get(&field.name) {
            self.refer(field.span, Target::Builtin(Builtin::StandardField(f.name)));
        }
    }

    fn file_items(&mut self, ast: &SourceFileAst) {
        for item in &ast.items {
            self.event = None;
            self.fields_are_names = false;
            self.machine = None;
            self.scopes = vec![HashMap::new()];
            self.local_fns.clear();
            self.item(item);
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Import(i) => {
                for name in i.names.iter().flatten() {
                    self.event_ref(name, false);
                }
            }
            Item::Event(e) => {
                if let Some(src) = &e.source {
                    let probe = self.index.probes.get(&src.name).copied();
                    self.refer_symbol(src.span, probe);
                }
                for f in &e.fields {
                    for a in &f.annotations {
                        if let Some(known) = dtc_stdlib::annotations::get(&a.name.name) {
                            self.refer(
                                a.name.span,
                                Target::Builtin(Builtin::Annotation(known.name)),
                            );
                        }
                        for arg in &a.args {
                            self.expr(arg);
                        }
                    }
                }
            }
            Item::Probe(p) => {
                if let Some(known) = dtc_stdlib::probes::get(&p.kind.joined()) {
                    self.refer(p.kind.span, Target::Builtin(Builtin::Probe(known.name)));
                }
                self.args(&p.args);
            }
            Item::Query(q) => {
                self.event_ref(&q.source, false);
                self.event = Some(q.source.name.clone());
                self.fields_are_names = true;
                for stage in &q.stages {
                    self.stage(stage);
                }
            }
            Item::Machine(m) => self.machine(m),
            Item::Processor(p) => {
                for member in &p.members {
                    match member {
                        ProcessorMember::Var(v) => self.var(v),
                        ProcessorMember::Fn(f) => {
                            let id = self.define(
                                SymbolKind::Function,
                                &f.name,
                                f.span,
                                f.ret.as_ref().map(type_text),
                            );
                            if let Some(s) = self.index.symbols.get_mut(id) {
                                s.doc = f.doc.clone();
                            }
                            self.local_fns.insert(f.name.name.clone(), id);
                        }
                        _ => {}
                    }
                }
                for member in &p.members {
                    match member {
                        ProcessorMember::Fn(f) => self.function(f),
                        ProcessorMember::Handler(h) => {
                            self.event_ref(&h.event, false);
                            self.event = Some(h.event.name.clone());
                            self.scopes.push(HashMap::new());
                            if let Some(g) = &h.guard {
                                self.expr(g);
                            }
                            self.block(&h.body);
                            self.scopes.pop();
                            self.event = None;
                        }
                        _ => {}
                    }
                }
            }
            Item::Fn(f) => self.function(f),
            Item::Shaping(s) => match &s.kind {
                ShapingKind::Suppress { target, when } => {
                    self.shape_target(target);
                    if let Some(w) = when {
                        self.event = Some(target.event.name.clone());
                        self.fields_are_names = true;
                        self.expr(w);
                    }
                }
                ShapingKind::Redact { target, method } => {
                    self.shape_target(target);
                    if let Some(r) = dtc_stdlib::redaction::get(&method.name) {
                        self.refer(method.span, Target::Builtin(Builtin::Redaction(r.name)));
                    }
                }
                ShapingKind::Sample { event, rate } => {
                    self.event_ref(event, false);
                    self.expr(rate);
                }
                ShapingKind::Limit { event, count, per } => {
                    self.event_ref(event, false);
                    self.expr(count);
                    self.expr(per);
                }
            },
            Item::Error(_) => {}
        }
    }

    fn shape_target(&mut self, target: &ShapeTarget) {
        self.event_ref(&target.event, false);
        if let Some(f) = &target.field {
            self.field_ref(&target.event.name.clone(), f);
        }
    }

    fn machine(&mut self, m: &MachineDecl) {
        self.machine = Some(m.name.name.clone());
        if let Some(k) = &m.key {
            self.expr(k);
        }
        if let Some(k) = &m.max {
            self.expr(k);
        }
        for member in &m.members {
            match member {
                MachineMember::State(st) => {
                    for v in &st.vars {
                        if let Some(d) = &v.default {
                            self.expr(d);
                        }
                    }
                }
                MachineMember::Var(v) => self.var(v),
                _ => {}
            }
        }
        let machine = m.name.name.clone();
        for member in &m.members {
            match member {
                MachineMember::On(t) => {
                    self.event_ref(&t.event, false);
                    let mut from: Vec<String> = Vec::new();
                    for s in &t.from {
                        let id = self
                            .index
                            .states
                            .get(&(machine.clone(), s.name.clone()))
                            .copied();
                        self.refer_symbol(s.span, id);
                        from.push(s.name.clone());
                    }
                    let id = self
                        .index
                        .states
                        .get(&(machine.clone(), t.target.name.clone()))
                        .copied();
                    self.refer_symbol(t.target.span, id);
                    self.event = Some(t.event.name.clone());
                    // The body may set the variables of the state it enters.
                    let mut visible = from.clone();
                    if !visible.is_empty() {
                        visible.push(t.target.name.clone());
                    }
                    self.scopes.push(self.state_scope(&machine, &visible));
                    if let Some(g) = &t.guard {
                        self.expr(g);
                    }
                    if let Some(b) = &t.body {
                        self.block(b);
                    }
                    self.scopes.pop();
                    self.event = None;
                }
                MachineMember::After(t) => {
                    self.expr(&t.after);
                    for s in [&t.from, &t.target] {
                        let id = self
                            .index
                            .states
                            .get(&(machine.clone(), s.name.clone()))
                            .copied();
                        self.refer_symbol(s.span, id);
                    }
                    let visible = [t.from.name.clone(), t.target.name.clone()];
                    self.scopes.push(self.state_scope(&machine, &visible));
                    if let Some(b) = &t.body {
                        self.block(b);
                    }
                    self.scopes.pop();
                }
                _ => {}
            }
        }
    }

    /// The state variables visible in a transition from these states (all
    /// states' when it leaves from any).
    fn state_scope(&self, machine: &str, from: &[String]) -> HashMap<String, usize> {
        let mut scope = HashMap::new();
        let prefix = format!("{machine}.");
        for (key, vars) in &self.index.state_vars {
            let Some(state) = key.strip_prefix(&prefix) else {
                continue;
            };
            if from.is_empty() || from.iter().any(|f| f == state) {
                for (name, id) in vars {
                    scope.entry(name.clone()).or_insert(*id);
                }
            }
        }
        scope
    }

    fn var(&mut self, v: &VarDecl) {
        if let Some(e) = &v.init {
            self.expr(e);
        }
        if let Some(e) = &v.max {
            self.expr(e);
        }
        let ty =
            v.ty.as_ref()
                .map(type_text)
                .or_else(|| v.init.as_ref().and_then(|e| self.type_of(e)));
        self.define(SymbolKind::Variable, &v.name, v.span, ty);
    }

    fn type_of(&self, e: &Expr) -> Option<String> {
        self.types.get(&(self.file, e.span)).map(|t| t.to_string())
    }

    /// A function's parameters and body; the function itself is declared
    /// by the first pass (top level) or by its processor.
    fn function(&mut self, f: &FnDecl) {
        self.scopes.push(HashMap::new());
        for p in &f.params {
            self.define(
                SymbolKind::Parameter,
                &p.name,
                p.span,
                Some(type_text(&p.ty)),
            );
        }
        self.block(&f.body);
        self.scopes.pop();
    }

    fn stage(&mut self, stage: &Stage) {
        match &stage.kind {
            StageKind::Where(e) | StageKind::Sample(e) => self.expr(e),
            StageKind::Extend(cols) | StageKind::Project(cols) => self.columns(cols),
            StageKind::Summarize {
                aggregates,
                by,
                max_series,
                every,
            } => {
                self.columns(by);
                self.columns(aggregates);
                for e in [max_series, every].into_iter().flatten() {
                    self.expr(e);
                }
            }
            StageKind::Limit { count, per } => {
                self.expr(count);
                self.expr(per);
            }
            StageKind::EmitLog(name) => {
                self.event_ref(name, true);
            }
            StageKind::EmitMetric(_) | StageKind::Error => {}
        }
    }

    fn columns(&mut self, cols: &[Column]) {
        for c in cols {
            self.expr(&c.expr);
            if let Some(name) = &c.name {
                let ty = self.type_of(&c.expr);
                self.define(SymbolKind::Column, name, c.span, ty);
            }
        }
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        for s in &block.stmts {
            self.stmt(s);
        }
        self.scopes.pop();
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Let {
                name, ty, value, ..
            } => {
                self.expr(value);
                let ty = ty.as_ref().map(type_text).or_else(|| self.type_of(value));
                self.define(SymbolKind::Variable, name, stmt.span, ty);
            }
            StmtKind::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.block(then);
                if let Some(o) = otherwise {
                    self.block(o);
                }
            }
            StmtKind::IfLet {
                name,
                value,
                then,
                otherwise,
            } => {
                self.expr(value);
                self.scopes.push(HashMap::new());
                let ty = self
                    .type_of(value)
                    .map(|t| t.strip_suffix('?').unwrap_or(&t).to_string());
                self.define(SymbolKind::Variable, name, name.span, ty);
                self.block(then);
                self.scopes.pop();
                if let Some(o) = otherwise {
                    self.block(o);
                }
            }
            StmtKind::For {
                key,
                value,
                iter,
                body,
            } => {
                match iter {
                    ForIter::Range(a, b) => {
                        self.expr(a);
                        self.expr(b);
                    }
                    ForIter::Expr(e) => self.expr(e),
                }
                self.scopes.push(HashMap::new());
                self.define(SymbolKind::Variable, key, key.span, None);
                if let Some(v) = value {
                    self.define(SymbolKind::Variable, v, v.span, None);
                }
                self.block(body);
                self.scopes.pop();
            }
            StmtKind::EmitLog {
                name,
                fields,
                budget,
            } => {
                for f in fields {
                    self.expr(&f.value);
                }
                let id = self.event_ref(name, true);
                let implied_here = id.is_some_and(|id| {
                    let s = &self.index.symbols[id];
                    s.implied && s.span == name.span
                });
                for f in fields {
                    if implied_here {
                        let mut s = Index::symbol(SymbolKind::Field, self.file, &f.name, f.span);
                        s.container = Some(name.name.clone());
                        s.ty = self.type_of(&f.value);
                        let fid = self.index.add(s);
                        self.index
                            .fields
                            .entry((name.name.clone(), f.name.name.clone()))
                            .or_insert(fid);
                    } else {
                        self.field_ref(&name.name.clone(), &f.name);
                    }
                }
                if let Some(b) = budget {
                    self.expr(&b.count);
                    self.expr(&b.per);
                }
            }
            StmtKind::Trigger {
                action,
                args,
                budget,
            } => {
                if let Some(a) = dtc_stdlib::actions::get(&action.joined()) {
                    self.refer(action.span, Target::Builtin(Builtin::Action(a.name)));
                }
                self.args(args);
                if let Some(b) = budget {
                    self.expr(&b.count);
                    self.expr(&b.per);
                }
            }
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Error => {}
        }
    }

    fn args(&mut self, args: &[Arg]) {
        for a in args {
            self.expr(&a.value);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Name(id) => {
                if id.name == "event" {
                    return;
                }
                if let Some(v) = self.lookup(&id.name) {
                    self.refer(id.span, Target::Symbol(v));
                } else if self.fields_are_names
                    && let Some(event) = self.event.clone()
                {
                    self.field_ref(&event, id);
                }
            }
            ExprKind::Field(base, field) => {
                match &base.kind {
                    ExprKind::Name(b) if b.name == "event" => {
                        if let Some(event) = self.event.clone() {
                            self.field_ref(&event, field);
                        } else if let Some(f) = dtc_stdlib::fields::get(&field.name) {
                            self.refer(field.span, Target::Builtin(Builtin::StandardField(f.name)));
                        }
                        return;
                    }
                    ExprKind::Name(b)
                        if self.lookup(&b.name).is_none()
                            && self.index.events.contains_key(&b.name) =>
                    {
                        let b = b.clone();
                        self.event_ref(&b, false);
                        self.field_ref(&b.name, field);
                        return;
                    }
                    _ => {}
                }
                self.expr(base);
            }
            ExprKind::Index(base, index) => {
                self.expr(base);
                self.expr(index);
            }
            ExprKind::Call { callee, args } => {
                let name = callee.joined();
                let user = if callee.segments.len() == 1 {
                    self.local_fns
                        .get(&name)
                        .or_else(|| self.index.functions.get(&name))
                        .copied()
                } else {
                    None
                };
                if let Some(id) = user {
                    self.refer(callee.span, Target::Symbol(id));
                } else if let Some(f) = dtc_stdlib::functions::get(&name) {
                    self.refer(callee.span, Target::Builtin(Builtin::Function(f.name)));
                } else if let Some(a) = dtc_stdlib::aggregates::get(&name) {
                    self.refer(callee.span, Target::Builtin(Builtin::Aggregate(a.name)));
                }
                self.args(args);
            }
            ExprKind::Unary(_, inner) => self.expr(inner),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Is { machine, state } => {
                let m = self.index.machines.get(&machine.name).copied();
                self.refer_symbol(machine.span, m);
                let s = self
                    .index
                    .states
                    .get(&(machine.name.clone(), state.name.clone()))
                    .copied();
                self.refer_symbol(state.span, s);
            }
            _ => {}
        }
    }
}
