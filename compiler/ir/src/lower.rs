//! Lowering a checked program to the IR: names become indices, types come
//! from the checker, defaults become explicit (budgets, bounds), and derived
//! events (the logs a program emits) get layouts of their own.
//!
//! Lowering runs only on programs that type-check, so it can resolve names
//! without reporting: every name it meets is known to be well-formed. Items
//! are lowered in the order the checker checked them: machines and
//! processors (which may emit logs) before queries, and a query after the
//! query or handler that emits the log it reads.

use std::collections::HashMap;

use dtc_diagnostics::{FileId, Span};
use dtc_sema::{Ty, Unit};
use dtc_syntax::ast::{
    self, Item, MachineMember, ProcessorMember, ShapingKind, StageKind, StmtKind,
};

use crate::*;

/// The defaults lowering makes explicit.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub trigger_budget: (u64, i64),
    pub emit_budget: (u64, i64),
    pub machine_max: u64,
    pub map_max: u64,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            trigger_budget: (1, 3_600_000_000_000),
            emit_budget: (100, 1_000_000_000),
            machine_max: 10_000,
            map_max: 1_000,
        }
    }
}

/// Lowers the program rooted at `units[0]`.
pub fn lower(units: &[Unit], types: &HashMap<(FileId, Span), Ty>, defaults: &Defaults) -> Program {
    let mut l = Lowerer {
        root: &units[0],
        file: units[0].file,
        types,
        defaults,
        program: Program {
            name: String::new(),
            ..Program::default()
        },
        event_index: HashMap::new(),
        fn_index: HashMap::new(),
        machine_index: HashMap::new(),
        fn_params: HashMap::new(),
        sites: 0,
    };
    l.layouts(units);
    l.run();
    l.program
}

struct MachineNames {
    index: u32,
    states: Vec<String>,
    /// For each state, its variables' names and slots.
    state_vars: Vec<Vec<(String, u32)>>,
    key: Option<ast::Expr>,
}

struct Lowerer<'a> {
    root: &'a Unit,
    file: FileId,
    types: &'a HashMap<(FileId, Span), Ty>,
    defaults: &'a Defaults,
    program: Program,
    event_index: HashMap<String, u32>,
    fn_index: HashMap<String, u32>,
    machine_index: HashMap<String, MachineNames>,
    /// Parameter names of each program function, for named arguments.
    fn_params: HashMap<u32, Vec<String>>,
    sites: u32,
}

/// What a bare name in a query row or shaping condition refers to.
#[derive(Clone)]
enum RowRef {
    Field(u32, Type),
    Std(StdField),
    Column(u32, Type),
}

/// The context of one body: its frame and the names in scope.
#[derive(Default, Clone)]
struct Cx {
    event: Option<u32>,
    /// The event a query's row comes from, for `is`.
    source: Option<u32>,
    row: Option<Vec<(String, RowRef)>>,
    scopes: Vec<Vec<(String, u32, Type)>>,
    n_locals: u32,
    vars: Vec<(String, u32, Type)>,
    read_state: Vec<(String, u32, Type)>,
    write_state: Vec<(String, u32, Type)>,
    /// Program functions visible here (processor-local ones first).
    local_fns: Vec<(String, u32)>,
}

impl Cx {
    fn local(&mut self, name: &str, ty: Type) -> u32 {
        let idx = self.n_locals;
        self.n_locals += 1;
        if self.scopes.is_empty() {
            self.scopes.push(Vec::new());
        }
        if let Some(s) = self.scopes.last_mut() {
            s.push((name.to_string(), idx, ty));
        }
        idx
    }

    fn lookup_local(&self, name: &str) -> Option<(u32, Type)> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(n, _, _)| n == name)
            .map(|(_, i, t)| (*i, t.clone()))
    }
}

pub fn ty_of(t: &Ty) -> Type {
    match t {
        Ty::Bool => Type::Bool,
        Ty::Int => Type::Int,
        Ty::Float => Type::Float,
        Ty::String => Type::Str,
        Ty::Bytes => Type::Bytes,
        Ty::Duration => Type::Duration,
        Ty::Timestamp => Type::Timestamp,
        Ty::Percent => Type::Percent,
        Ty::Dyn => Type::Dyn,
        Ty::Histogram => Type::Histogram,
        Ty::Optional(i) => Type::Opt(Box::new(ty_of(i))),
        Ty::Map(k, v) => Type::Map(Box::new(ty_of(k)), Box::new(ty_of(v))),
        Ty::None | Ty::Error => Type::None,
    }
}

fn written_type(t: &ast::TypeExpr) -> Type {
    match &t.kind {
        ast::TypeExprKind::Optional(i) => Type::Opt(Box::new(written_type(i))),
        ast::TypeExprKind::Named { name, args } if name.name == "map" && args.len() == 2 => {
            Type::Map(
                Box::new(written_type(&args[0])),
                Box::new(written_type(&args[1])),
            )
        }
        ast::TypeExprKind::Named { name, .. } => {
            Ty::from_name(&name.name).map_or(Type::None, |t| ty_of(&t))
        }
        ast::TypeExprKind::Error => Type::None,
    }
}

fn const_int(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ast::ExprKind::Int(v) | ast::ExprKind::Size(v) => Some(*v),
        ast::ExprKind::Unary(ast::UnaryOp::Neg, inner) => {
            const_int(inner).and_then(i64::checked_neg)
        }
        _ => None,
    }
}

fn duration_of(e: &ast::Expr) -> Option<i64> {
    match e.kind {
        ast::ExprKind::Duration(ns) => Some(ns),
        _ => None,
    }
}

fn percent_of(e: &ast::Expr) -> Option<f64> {
    match e.kind {
        ast::ExprKind::Percent(p) => Some(p),
        _ => None,
    }
}

impl<'a> Lowerer<'a> {
    fn ty(&self, e: &ast::Expr) -> Type {
        self.types
            .get(&(self.file, e.span))
            .map_or(Type::None, ty_of)
    }

    fn site(&mut self) -> u32 {
        self.sites += 1;
        self.sites
    }

    /// Layouts of the events visible in the root: its own and imported ones.
    fn layouts(&mut self, units: &'a [Unit]) {
        let layout = |decl: &ast::EventDecl| EventLayout {
            name: decl.name.name.clone(),
            wire: decl.wire_name().to_string(),
            fields: decl
                .fields
                .iter()
                .map(|f| Field {
                    name: f.name.name.clone(),
                    key: f
                        .annotations
                        .iter()
                        .find(|a| a.name.name == "attr")
                        .and_then(|a| match a.args.first().map(|x| &x.kind) {
                            Some(ast::ExprKind::Str(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_else(|| f.name.name.clone()),
                    ty: written_type(&f.ty),
                    sensitivity: if f.has_annotation("secret") {
                        Some(Sensitivity::Secret)
                    } else if f.has_annotation("pii") {
                        Some(Sensitivity::Pii)
                    } else {
                        None
                    },
                })
                .collect(),
            derived: false,
        };
        let decls = dtc_sema::visible_events(units).into_iter().map(|(_, d)| d);
        for d in decls {
            if !self.event_index.contains_key(&d.name.name) {
                self.event_index
                    .insert(d.name.name.clone(), self.program.events.len() as u32);
                self.program.events.push(layout(d));
            }
        }
    }

    fn run(&mut self) {
        let items = &self.root.ast.items;
        // Function indices first: bodies may call functions declared later.
        for item in items {
            if let Item::Fn(f) = item {
                self.fn_params.insert(
                    self.program.functions.len() as u32,
                    f.params.iter().map(|p| p.name.name.clone()).collect(),
                );
                self.fn_index
                    .insert(f.name.name.clone(), self.program.functions.len() as u32);
                self.program.functions.push(Function {
                    name: f.name.name.clone(),
                    params: f.params.iter().map(|p| written_type(&p.ty)).collect(),
                    ret: f.ret.as_ref().map_or(Type::None, written_type),
                    n_locals: 0,
                    body: vec![],
                });
            }
        }
        for item in items {
            if let Item::Machine(m) = item {
                self.declare_machine(m);
            }
        }
        for item in items {
            if let Item::Fn(f) = item {
                let idx = self.fn_index[&f.name.name];
                self.function(f, idx, &[]);
            }
        }
        for item in items {
            match item {
                Item::Machine(m) => self.machine(m),
                Item::Processor(p) => self.processor(p),
                _ => {}
            }
        }
        for item in items {
            if let Item::Shaping(r) = item {
                self.shaping(r);
            }
        }
        let mut pending: Vec<&ast::QueryDecl> = items
            .iter()
            .filter_map(|i| {
                if let Item::Query(q) = i {
                    Some(q)
                } else {
                    None
                }
            })
            .collect();
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for q in pending {
                if self.event_index.contains_key(&q.source.name) {
                    self.query(q);
                } else {
                    rest.push(q);
                }
            }
            pending = rest;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
    }

    // ---------------------------------------------------------- functions

    fn function(&mut self, f: &ast::FnDecl, idx: u32, local_fns: &[(String, u32)]) {
        let mut cx = Cx {
            local_fns: local_fns.to_vec(),
            ..Cx::default()
        };
        cx.scopes.push(Vec::new());
        for p in &f.params {
            cx.local(&p.name.name, written_type(&p.ty));
        }
        let body = self.block(&f.body, &mut cx);
        let func = &mut self.program.functions[idx as usize];
        func.body = body;
        func.n_locals = cx.n_locals;
    }

    // ----------------------------------------------------------- machines

    fn declare_machine(&mut self, m: &ast::MachineDecl) {
        let index = self.program.machines.len() as u32;
        let mut states = Vec::new();
        let mut state_vars = Vec::new();
        let mut slots = Vec::new();
        let mut ir_states = Vec::new();
        for member in &m.members {
            if let MachineMember::State(s) = member {
                let mut names = Vec::new();
                let mut owned = Vec::new();
                for v in &s.vars {
                    let slot = slots.len() as u32;
                    slots.push(written_type(&v.ty));
                    names.push((v.name.name.clone(), slot));
                    owned.push((slot, None));
                }
                states.push(s.name.name.clone());
                state_vars.push(names);
                ir_states.push(State {
                    name: s.name.name.clone(),
                    vars: owned,
                });
            }
        }
        let max_instances = if m.key.is_none() {
            1
        } else {
            m.max
                .as_ref()
                .and_then(const_int)
                .map_or(self.defaults.machine_max, |n| n.max(1) as u64)
        };
        self.program.machines.push(Machine {
            name: m.name.name.clone(),
            keys: m.key.as_ref().map(|_| Vec::new()),
            max_instances,
            states: ir_states,
            slots,
            vars: vec![],
            transitions: vec![],
            timeouts: vec![],
        });
        self.machine_index.insert(
            m.name.name.clone(),
            MachineNames {
                index,
                states,
                state_vars,
                key: m.key.clone(),
            },
        );
    }

    /// Makes sure the machine can compute its key for this event.
    fn machine_key_for(&mut self, machine: &str, event: u32) {
        let Some(names) = self.machine_index.get(machine) else {
            return;
        };
        let Some(key) = names.key.clone() else { return };
        let index = names.index as usize;
        let has = self.program.machines[index]
            .keys
            .as_ref()
            .is_some_and(|k| k.iter().any(|(e, _)| *e == event));
        if !has {
            let mut cx = Cx {
                event: Some(event),
                ..Cx::default()
            };
            let expr = self.expr(&key, &mut cx);
            if let Some(keys) = self.program.machines[index].keys.as_mut() {
                keys.push((event, expr));
            }
        }
    }

    fn var_def(&mut self, v: &ast::VarDecl) -> VarDef {
        let mut cx = Cx::default();
        let init = v.init.as_ref().map(|e| self.expr(e, &mut cx));
        let ty = match (&v.ty, &init) {
            (Some(t), _) => written_type(t),
            (None, Some(e)) => e.ty.clone(),
            _ => Type::None,
        };
        let max_entries = matches!(ty, Type::Map(..)).then(|| {
            v.max
                .as_ref()
                .and_then(const_int)
                .map_or(self.defaults.map_max, |n| n.max(1) as u64)
        });
        VarDef {
            name: v.name.name.clone(),
            ty,
            init,
            max_entries,
        }
    }

    fn machine(&mut self, m: &ast::MachineDecl) {
        let Some(names) = self.machine_index.get(&m.name.name) else {
            return;
        };
        let mi = names.index as usize;
        let state_names = names.states.clone();
        let state_vars = names.state_vars.clone();
        let slot_ty = self.program.machines[mi].slots.clone();
        // State-variable defaults.
        let mut si = 0;
        for member in &m.members {
            if let MachineMember::State(s) = member {
                for (vi, v) in s.vars.iter().enumerate() {
                    if let Some(d) = &v.default {
                        let mut cx = Cx::default();
                        let e = self.expr(d, &mut cx);
                        self.program.machines[mi].states[si].vars[vi].1 = Some(e);
                    }
                }
                si += 1;
            }
        }
        let vars: Vec<VarDef> = m
            .members
            .iter()
            .filter_map(|mm| {
                if let MachineMember::Var(v) = mm {
                    Some(self.var_def(v))
                } else {
                    None
                }
            })
            .collect();
        let var_names = var_scope(&vars);
        self.program.machines[mi].vars = vars;
        let state_idx = |n: &str| state_names.iter().position(|s| s == n).map(|i| i as u32);
        let named = |si: Option<u32>| -> Vec<(String, u32, Type)> {
            si.map(|s| {
                state_vars[s as usize]
                    .iter()
                    .map(|(n, slot)| (n.clone(), *slot, slot_ty[*slot as usize].clone()))
                    .collect()
            })
            .unwrap_or_default()
        };
        for member in &m.members {
            match member {
                MachineMember::On(t) => {
                    let Some(&event) = self.event_index.get(&t.event.name) else {
                        continue;
                    };
                    self.machine_key_for(&m.name.name, event);
                    let from: Vec<u32> = t.from.iter().filter_map(|s| state_idx(&s.name)).collect();
                    let Some(target) = state_idx(&t.target.name) else {
                        continue;
                    };
                    let source = if from.len() == 1 { Some(from[0]) } else { None };
                    // The source state's variables are read, the target's
                    // assigned; a state's own transition reads and assigns
                    // the same slots.
                    let mut cx = Cx {
                        event: Some(event),
                        vars: var_names.clone(),
                        read_state: named(source),
                        write_state: named(Some(target)),
                        ..Cx::default()
                    };
                    let guard = t.guard.as_ref().map(|g| self.expr(g, &mut cx));
                    let body = t
                        .body
                        .as_ref()
                        .map(|b| self.block(b, &mut cx))
                        .unwrap_or_default();
                    self.program.machines[mi].transitions.push(Transition {
                        event,
                        from,
                        target,
                        guard,
                        n_locals: cx.n_locals,
                        body,
                    });
                }
                MachineMember::After(t) => {
                    let (Some(from), Some(target)) =
                        (state_idx(&t.from.name), state_idx(&t.target.name))
                    else {
                        continue;
                    };
                    let mut cx = Cx {
                        vars: var_names.clone(),
                        read_state: named(Some(from)),
                        write_state: named(Some(target)),
                        ..Cx::default()
                    };
                    let body = t
                        .body
                        .as_ref()
                        .map(|b| self.block(b, &mut cx))
                        .unwrap_or_default();
                    let after_ns = duration_of(&t.after).unwrap_or(0);
                    self.program.machines[mi].timeouts.push(Timeout {
                        after_ns,
                        from,
                        target,
                        n_locals: cx.n_locals,
                        body,
                    });
                }
                _ => {}
            }
        }
    }

    // --------------------------------------------------------- processors

    fn processor(&mut self, p: &ast::ProcessorDecl) {
        let vars: Vec<VarDef> = p
            .members
            .iter()
            .filter_map(|m| {
                if let ProcessorMember::Var(v) = m {
                    Some(self.var_def(v))
                } else {
                    None
                }
            })
            .collect();
        let var_names = var_scope(&vars);
        let mut local_fns = Vec::new();
        let mut fns = Vec::new();
        for m in &p.members {
            if let ProcessorMember::Fn(f) = m {
                let idx = self.program.functions.len() as u32;
                self.fn_params
                    .insert(idx, f.params.iter().map(|x| x.name.name.clone()).collect());
                self.program.functions.push(Function {
                    name: format!("{}.{}", p.name.name, f.name.name),
                    params: f.params.iter().map(|x| written_type(&x.ty)).collect(),
                    ret: f.ret.as_ref().map_or(Type::None, written_type),
                    n_locals: 0,
                    body: vec![],
                });
                local_fns.push((f.name.name.clone(), idx));
                fns.push((f, idx));
            }
        }
        for (f, idx) in fns {
            self.function(f, idx, &local_fns);
        }
        let mut handlers = Vec::new();
        for m in &p.members {
            if let ProcessorMember::Handler(h) = m {
                let Some(&event) = self.event_index.get(&h.event.name) else {
                    continue;
                };
                let mut cx = Cx {
                    event: Some(event),
                    vars: var_names.clone(),
                    local_fns: local_fns.clone(),
                    ..Cx::default()
                };
                let guard = h.guard.as_ref().map(|g| self.expr(g, &mut cx));
                let body = self.block(&h.body, &mut cx);
                handlers.push(Handler {
                    event,
                    guard,
                    n_locals: cx.n_locals,
                    body,
                });
            }
        }
        self.program.processors.push(Processor {
            name: p.name.name.clone(),
            vars,
            handlers,
        });
    }

    // ------------------------------------------------------------ shaping

    fn event_row(&self, event: u32) -> Vec<(String, RowRef)> {
        let layout = &self.program.events[event as usize];
        let mut row: Vec<(String, RowRef)> = layout
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), RowRef::Field(i as u32, f.ty.clone())))
            .collect();
        for s in StdField::ALL {
            if !row.iter().any(|(n, _)| n == s.name()) {
                row.push((s.name().to_string(), RowRef::Std(s)));
            }
        }
        row
    }

    fn shaping(&mut self, r: &ast::ShapingRule) {
        let event_of = |this: &Self, id: &ast::Ident| this.event_index.get(&id.name).copied();
        let rule = match &r.kind {
            ShapingKind::Suppress { target, when } => {
                let Some(event) = event_of(self, &target.event) else {
                    return;
                };
                match &target.field {
                    Some(f) => {
                        let mut cx = Cx {
                            row: Some(self.event_row(event)),
                            source: Some(event),
                            ..Cx::default()
                        };
                        let when = when.as_ref().map(|w| self.expr(w, &mut cx));
                        match self.program.events[event as usize]
                            .fields
                            .iter()
                            .position(|x| x.name == f.name)
                        {
                            Some(slot) => ShapeRule::SuppressField {
                                event,
                                slot: slot as u32,
                                when,
                            },
                            None => match StdField::from_name(&f.name) {
                                Some(field) => ShapeRule::RedactStd {
                                    event,
                                    field,
                                    method: Redaction::Drop,
                                    when,
                                },
                                None => return,
                            },
                        }
                    }
                    None => {
                        let mut cx = Cx {
                            row: Some(self.event_row(event)),
                            source: Some(event),
                            ..Cx::default()
                        };
                        let when = when.as_ref().map(|w| self.expr(w, &mut cx));
                        ShapeRule::Suppress { event, when }
                    }
                }
            }
            ShapingKind::Redact { target, method } => {
                let Some(event) = event_of(self, &target.event) else {
                    return;
                };
                let Some(f) = &target.field else { return };
                let method = match method.name.as_str() {
                    "hash" => Redaction::Hash,
                    "mask" => Redaction::Mask,
                    _ => Redaction::Drop,
                };
                match self.program.events[event as usize]
                    .fields
                    .iter()
                    .position(|x| x.name == f.name)
                {
                    Some(slot) => ShapeRule::Redact {
                        event,
                        slot: slot as u32,
                        method,
                    },
                    None => match StdField::from_name(&f.name) {
                        Some(field) => ShapeRule::RedactStd {
                            event,
                            field,
                            method,
                            when: None,
                        },
                        None => return,
                    },
                }
            }
            ShapingKind::Sample { event, rate } => {
                let Some(event) = event_of(self, event) else {
                    return;
                };
                ShapeRule::Sample {
                    event,
                    rate: percent_of(rate).unwrap_or(100.0),
                }
            }
            ShapingKind::Limit { event, count, per } => {
                let Some(event) = event_of(self, event) else {
                    return;
                };
                ShapeRule::Limit {
                    event,
                    count: const_int(count).map_or(1, |n| n.max(0) as u64),
                    per_ns: duration_of(per).unwrap_or(1_000_000_000),
                }
            }
        };
        self.program.shaping.push(rule);
    }

    // ------------------------------------------------------------ queries

    fn query(&mut self, q: &ast::QueryDecl) {
        let Some(&source) = self.event_index.get(&q.source.name) else {
            return;
        };
        let mut row = self.event_row(source);
        let mut n_columns: u32 = 0;
        let mut src = Some(source);
        let mut stages = Vec::new();
        for stage in &q.stages {
            let mut cx = Cx {
                row: Some(row.clone()),
                source: src,
                ..Cx::default()
            };
            match &stage.kind {
                StageKind::Error => {}
                StageKind::Where(e) => stages.push(Stage::Where(self.expr(e, &mut cx))),
                StageKind::Extend(cols) => {
                    let mut out = Vec::new();
                    for c in cols {
                        let name = column_name(c);
                        let e = self.expr(&c.expr, &mut cx);
                        let existing = row
                            .iter()
                            .position(|(n, r)| *n == name && matches!(r, RowRef::Column(..)));
                        let idx = match existing.map(|i| &row[i].1) {
                            Some(RowRef::Column(i, _)) => *i,
                            _ => {
                                n_columns += 1;
                                n_columns - 1
                            }
                        };
                        row.retain(|(n, _)| *n != name);
                        row.push((name.clone(), RowRef::Column(idx, e.ty.clone())));
                        out.push((name, e));
                    }
                    stages.push(Stage::Extend(out));
                }
                StageKind::Project(cols) => {
                    let out: Vec<(String, Expr)> = cols
                        .iter()
                        .map(|c| (column_name(c), self.expr(&c.expr, &mut cx)))
                        .collect();
                    row = out
                        .iter()
                        .enumerate()
                        .map(|(i, (n, e))| (n.clone(), RowRef::Column(i as u32, e.ty.clone())))
                        .collect();
                    n_columns = out.len() as u32;
                    src = None;
                    stages.push(Stage::Project(out));
                }
                StageKind::Summarize {
                    aggregates,
                    by,
                    max_series,
                    every,
                } => {
                    let keys: Vec<(String, Expr)> = by
                        .iter()
                        .map(|c| (column_name(c), self.expr(&c.expr, &mut cx)))
                        .collect();
                    let mut aggs = Vec::new();
                    for c in aggregates {
                        let ast::ExprKind::Call { callee, args } = &c.expr.kind else {
                            continue;
                        };
                        let fname = callee.joined();
                        let kind = match fname.as_str() {
                            "count" => AggKind::Count,
                            "count_if" => AggKind::CountIf,
                            "sum" => AggKind::Sum,
                            "min" => AggKind::Min,
                            "max" => AggKind::Max,
                            "avg" => AggKind::Avg,
                            "histogram" => AggKind::Histogram,
                            "percentile" => AggKind::Percentile,
                            _ => AggKind::DistinctCount,
                        };
                        let sig = dtc_stdlib::aggregates::get(&fname);
                        let args =
                            self.ordered_args(sig.map(|s| s.params).unwrap_or(&[]), args, &mut cx);
                        aggs.push(Aggregate {
                            name: c.name.as_ref().map_or(fname.clone(), |n| n.name.clone()),
                            kind,
                            args,
                            ty: self.ty(&c.expr),
                        });
                    }
                    // The overflow series past `max` has no key values (as
                    // in the checker, key columns are optional after it).
                    let key_ty = |t: &Type| match t {
                        Type::Opt(_) => t.clone(),
                        _ if max_series.is_some() => Type::Opt(Box::new(t.clone())),
                        _ => t.clone(),
                    };
                    row = keys
                        .iter()
                        .map(|(n, e)| (n.clone(), key_ty(&e.ty)))
                        .chain(aggs.iter().map(|a| (a.name.clone(), a.ty.clone())))
                        .enumerate()
                        .map(|(i, (n, t))| (n, RowRef::Column(i as u32, t)))
                        .collect();
                    n_columns = row.len() as u32;
                    src = None;
                    stages.push(Stage::Summarize {
                        keys,
                        aggregates: aggs,
                        every_ns: every
                            .as_ref()
                            .and_then(duration_of)
                            .unwrap_or(60_000_000_000),
                        max_series: max_series
                            .as_ref()
                            .and_then(const_int)
                            .map(|n| n.max(1) as u64),
                    });
                }
                StageKind::Sample(rate) => {
                    let site = self.site();
                    stages.push(Stage::Sample {
                        rate: percent_of(rate).unwrap_or(100.0),
                        site,
                    });
                }
                StageKind::Limit { count, per } => stages.push(Stage::Limit {
                    count: const_int(count).map_or(1, |n| n.max(0) as u64),
                    per_ns: duration_of(per).unwrap_or(1_000_000_000),
                }),
                StageKind::EmitLog(name) => {
                    // Standard fields are the log's own, not payload.
                    let payload: Vec<(String, Expr)> = row
                        .iter()
                        .filter(|(n, _)| StdField::from_name(n).is_none())
                        .map(|(n, r)| (n.clone(), row_expr(r)))
                        .collect();
                    let event = self.derived_event(
                        &name.name,
                        payload
                            .iter()
                            .map(|(n, e)| (n.clone(), e.ty.clone()))
                            .collect(),
                    );
                    let layout = &self.program.events[event as usize];
                    let fields = layout
                        .fields
                        .iter()
                        .enumerate()
                        .filter_map(|(slot, f)| {
                            payload
                                .iter()
                                .find(|(n, _)| *n == f.name)
                                .map(|(_, e)| (slot as u32, e.clone()))
                        })
                        .collect();
                    stages.push(Stage::EmitLog { event, fields });
                }
                StageKind::EmitMetric(name) => stages.push(Stage::EmitMetric {
                    name: name.value.clone(),
                }),
            }
        }
        self.program.queries.push(Query {
            name: q.name.name.clone(),
            source,
            stages,
        });
    }

    /// The layout of an emitted event, created from the first emit's fields.
    fn derived_event(&mut self, name: &str, fields: Vec<(String, Type)>) -> u32 {
        if let Some(&i) = self.event_index.get(name) {
            return i;
        }
        let i = self.program.events.len() as u32;
        self.program.events.push(EventLayout {
            name: name.to_string(),
            wire: name.to_string(),
            fields: fields
                .into_iter()
                .map(|(n, ty)| Field {
                    key: n.clone(),
                    name: n,
                    ty: if ty == Type::None {
                        Type::Opt(Box::new(Type::Str))
                    } else {
                        ty
                    },
                    sensitivity: None,
                })
                .collect(),
            derived: true,
        });
        self.event_index.insert(name.to_string(), i);
        i
    }

    // --------------------------------------------------------- statements

    fn block(&mut self, b: &ast::Block, cx: &mut Cx) -> Vec<Stmt> {
        cx.scopes.push(Vec::new());
        let out = b.stmts.iter().filter_map(|s| self.stmt(s, cx)).collect();
        cx.scopes.pop();
        out
    }

    fn budget(&self, b: &Option<ast::Budget>, default: (u64, i64)) -> Budget {
        match b {
            Some(b) => Budget {
                count: const_int(&b.count).map_or(default.0, |n| n.max(0) as u64),
                per_ns: duration_of(&b.per).unwrap_or(default.1),
                declared: true,
            },
            None => Budget {
                count: default.0,
                per_ns: default.1,
                declared: false,
            },
        }
    }

    fn stmt(&mut self, s: &ast::Stmt, cx: &mut Cx) -> Option<Stmt> {
        Some(match &s.kind {
            StmtKind::Error => return None,
            StmtKind::Let {
                name, ty, value, ..
            } => {
                let v = self.expr(value, cx);
                let t = ty.as_ref().map_or(v.ty.clone(), written_type);
                let idx = cx.local(&name.name, t);
                Stmt::Let(idx, v)
            }
            StmtKind::Assign { target, op, value } => {
                let value = self.expr(value, cx);
                let place = self.place(target, cx)?;
                let op = match op {
                    ast::AssignOp::Set => AssignOp::Set,
                    ast::AssignOp::Add => AssignOp::Add,
                    ast::AssignOp::Sub => AssignOp::Sub,
                };
                Stmt::Assign { place, op, value }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => Stmt::If {
                cond: self.expr(cond, cx),
                then: self.block(then, cx),
                otherwise: otherwise
                    .as_ref()
                    .map(|b| self.block(b, cx))
                    .unwrap_or_default(),
            },
            StmtKind::IfLet {
                name,
                value,
                then,
                otherwise,
            } => {
                let value = self.expr(value, cx);
                cx.scopes.push(Vec::new());
                let local = cx.local(&name.name, value.ty.inner().clone());
                let then = self.block(then, cx);
                cx.scopes.pop();
                let otherwise = otherwise
                    .as_ref()
                    .map(|b| self.block(b, cx))
                    .unwrap_or_default();
                Stmt::IfLet {
                    local,
                    value,
                    then,
                    otherwise,
                }
            }
            StmtKind::For {
                key,
                value,
                iter,
                body,
            } => match iter {
                ast::ForIter::Range(a, b) => {
                    cx.scopes.push(Vec::new());
                    let local = cx.local(&key.name, Type::Int);
                    let body = self.block(body, cx);
                    cx.scopes.pop();
                    Stmt::ForRange {
                        local,
                        from: const_int(a).unwrap_or(0),
                        to: const_int(b).unwrap_or(0),
                        body,
                    }
                }
                ast::ForIter::Expr(e) => {
                    let map = self.place(e, cx)?;
                    let (kt, vt) = match self.ty(e) {
                        Type::Map(k, v) => (*k, *v),
                        _ => (Type::None, Type::None),
                    };
                    cx.scopes.push(Vec::new());
                    let k = cx.local(&key.name, kt);
                    let v = value.as_ref().map(|v| cx.local(&v.name, vt));
                    let body = self.block(body, cx);
                    cx.scopes.pop();
                    Stmt::ForMap {
                        map,
                        key: k,
                        value: v,
                        body,
                    }
                }
            },
            StmtKind::EmitLog {
                name,
                fields,
                budget,
            } => {
                let values: Vec<(String, Expr)> = fields
                    .iter()
                    .map(|f| (f.name.name.clone(), self.expr(&f.value, cx)))
                    .collect();
                let event = self.derived_event(
                    &name.name,
                    values
                        .iter()
                        .map(|(n, e)| (n.clone(), e.ty.clone()))
                        .collect(),
                );
                let layout = &self.program.events[event as usize];
                let fields = values
                    .into_iter()
                    .filter_map(|(n, e)| {
                        layout
                            .fields
                            .iter()
                            .position(|f| f.name == n)
                            .map(|slot| (slot as u32, e))
                    })
                    .collect();
                let budget = self.budget(budget, self.defaults.emit_budget);
                let site = self.site();
                Stmt::Emit {
                    event,
                    fields,
                    budget,
                    site,
                }
            }
            StmtKind::Trigger {
                action,
                args,
                budget,
            } => {
                let name = action.joined();
                let params = dtc_stdlib::actions::get(&name)
                    .map(|s| s.params)
                    .unwrap_or(&[]);
                let ordered = self.ordered_args(params, args, cx);
                let args = params
                    .iter()
                    .zip(ordered)
                    .map(|(p, e)| (p.name.to_string(), e))
                    .collect();
                let budget = self.budget(budget, self.defaults.trigger_budget);
                let site = self.site();
                Stmt::Trigger {
                    action: name,
                    args,
                    budget,
                    site,
                }
            }
            StmtKind::Return(Some(e)) => Stmt::Return(self.expr(e, cx)),
            StmtKind::Return(None) => return None,
            StmtKind::Expr(e) => Stmt::Expr(self.expr(e, cx)),
        })
    }

    fn place(&mut self, target: &ast::Expr, cx: &mut Cx) -> Option<Place> {
        match &target.kind {
            ast::ExprKind::Name(id) => {
                if let Some((i, _)) = cx.lookup_local(&id.name) {
                    return Some(Place::Local(i));
                }
                if let Some((_, slot, _)) = cx.write_state.iter().find(|(n, _, _)| *n == id.name) {
                    return Some(Place::StateVar(*slot));
                }
                if let Some((_, slot, _)) = cx.read_state.iter().find(|(n, _, _)| *n == id.name) {
                    return Some(Place::StateVar(*slot));
                }
                cx.vars
                    .iter()
                    .find(|(n, _, _)| *n == id.name)
                    .map(|(_, i, _)| Place::Var(*i))
            }
            ast::ExprKind::Index(base, key) => {
                let base = self.place(base, cx)?;
                let key = self.expr(key, cx);
                Some(Place::Entry(Box::new(base), Box::new(key)))
            }
            _ => None,
        }
    }

    // -------------------------------------------------------- expressions

    /// Arguments in parameter order; a missing optional one is `none`.
    fn ordered_args(
        &mut self,
        params: &[dtc_stdlib::Param],
        args: &[ast::Arg],
        cx: &mut Cx,
    ) -> Vec<Expr> {
        let mut slots: Vec<Option<Expr>> = vec![None; params.len().max(args.len())];
        let mut next = 0;
        for a in args {
            let e = self.expr(&a.value, cx);
            let at = match &a.name {
                Some(n) => params.iter().position(|p| p.name == n.name).unwrap_or(next),
                None => {
                    while next < slots.len() && slots[next].is_some() {
                        next += 1;
                    }
                    next
                }
            };
            if at < slots.len() {
                slots[at] = Some(e);
            }
        }
        slots.truncate(params.len().max(1).min(slots.len()));
        slots
            .into_iter()
            .map(|s| {
                s.unwrap_or(Expr {
                    ty: Type::None,
                    kind: ExprKind::Const(Const::None),
                })
            })
            .collect()
    }

    fn expr(&mut self, e: &ast::Expr, cx: &mut Cx) -> Expr {
        let ty = self.ty(e);
        let kind = match &e.kind {
            ast::ExprKind::Int(v) | ast::ExprKind::Size(v) => ExprKind::Const(Const::Int(*v)),
            ast::ExprKind::Float(v) => ExprKind::Const(Const::Float(*v)),
            ast::ExprKind::Str(s) => ExprKind::Const(Const::Str(s.clone())),
            ast::ExprKind::Bool(b) => ExprKind::Const(Const::Bool(*b)),
            ast::ExprKind::None => ExprKind::Const(Const::None),
            ast::ExprKind::Duration(ns) => ExprKind::Const(Const::Duration(*ns)),
            ast::ExprKind::Percent(p) => ExprKind::Const(Const::Percent(*p)),
            ast::ExprKind::Error => ExprKind::Const(Const::None),
            ast::ExprKind::Name(id) => {
                if let Some((i, t)) = cx.lookup_local(&id.name) {
                    return Expr {
                        ty: t,
                        kind: ExprKind::Local(i),
                    };
                }
                if let Some((_, slot, t)) = cx.read_state.iter().find(|(n, _, _)| *n == id.name) {
                    return Expr {
                        ty: t.clone(),
                        kind: ExprKind::StateVar(*slot),
                    };
                }
                if let Some((_, i, t)) = cx.vars.iter().find(|(n, _, _)| *n == id.name) {
                    return Expr {
                        ty: t.clone(),
                        kind: ExprKind::Var(*i),
                    };
                }
                if let Some(row) = &cx.row
                    && let Some((_, r)) = row.iter().find(|(n, _)| *n == id.name)
                {
                    return row_expr(r);
                }
                ExprKind::Const(Const::None)
            }
            ast::ExprKind::Field(base, field) => {
                if let (ast::ExprKind::Name(b), Some(ev)) = (&base.kind, cx.event)
                    && b.name == "event"
                {
                    let layout = &self.program.events[ev as usize];
                    if let Some(slot) = layout.fields.iter().position(|f| f.name == field.name) {
                        return Expr {
                            ty: layout.fields[slot].ty.clone(),
                            kind: ExprKind::Field(slot as u32),
                        };
                    }
                    if let Some(s) = StdField::from_name(&field.name) {
                        return Expr {
                            ty: s.ty(),
                            kind: ExprKind::Std(s),
                        };
                    }
                }
                ExprKind::Const(Const::None)
            }
            ast::ExprKind::Index(a, b) => {
                ExprKind::Index(Box::new(self.expr(a, cx)), Box::new(self.expr(b, cx)))
            }
            ast::ExprKind::Unary(op, a) => ExprKind::Unary(
                match op {
                    ast::UnaryOp::Not => UnOp::Not,
                    ast::UnaryOp::Neg => UnOp::Neg,
                },
                Box::new(self.expr(a, cx)),
            ),
            ast::ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.expr(a, cx), self.expr(b, cx));
                let op = match op {
                    ast::BinaryOp::Coalesce => {
                        return Expr {
                            ty,
                            kind: ExprKind::Coalesce(Box::new(a), Box::new(b)),
                        };
                    }
                    ast::BinaryOp::Or => BinOp::Or,
                    ast::BinaryOp::And => BinOp::And,
                    ast::BinaryOp::Eq => BinOp::Eq,
                    ast::BinaryOp::Ne => BinOp::Ne,
                    ast::BinaryOp::Lt => BinOp::Lt,
                    ast::BinaryOp::Le => BinOp::Le,
                    ast::BinaryOp::Gt => BinOp::Gt,
                    ast::BinaryOp::Ge => BinOp::Ge,
                    ast::BinaryOp::Add => BinOp::Add,
                    ast::BinaryOp::Sub => BinOp::Sub,
                    ast::BinaryOp::Mul => BinOp::Mul,
                    ast::BinaryOp::Div => BinOp::Div,
                    ast::BinaryOp::Rem => BinOp::Rem,
                };
                ExprKind::Binary(op, Box::new(a), Box::new(b))
            }
            ast::ExprKind::Call { callee, args } => {
                let name = callee.joined();
                if callee.segments.len() == 1 {
                    let user = cx
                        .local_fns
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, i)| *i)
                        .or_else(|| self.fn_index.get(&name).copied());
                    if let Some(idx) = user {
                        let names = self.fn_params.get(&idx).cloned().unwrap_or_default();
                        let mut slots: Vec<Option<Expr>> = vec![None; names.len()];
                        let mut next = 0;
                        for a in args {
                            let e = self.expr(&a.value, cx);
                            let at = match &a.name {
                                Some(n) => names.iter().position(|p| *p == n.name),
                                None => {
                                    while next < slots.len() && slots[next].is_some() {
                                        next += 1;
                                    }
                                    (next < slots.len()).then_some(next)
                                }
                            };
                            if let Some(at) = at {
                                slots[at] = Some(e);
                            }
                        }
                        let lowered = slots
                            .into_iter()
                            .map(|s| {
                                s.unwrap_or(Expr {
                                    ty: Type::None,
                                    kind: ExprKind::Const(Const::None),
                                })
                            })
                            .collect();
                        return Expr {
                            ty,
                            kind: ExprKind::CallFn(idx, lowered),
                        };
                    }
                }
                if name == "sample" {
                    let rate = args
                        .first()
                        .map(|a| self.expr(&a.value, cx))
                        .unwrap_or(Expr {
                            ty: Type::Percent,
                            kind: ExprKind::Const(Const::Percent(100.0)),
                        });
                    let site = self.site();
                    return Expr {
                        ty,
                        kind: ExprKind::Sample {
                            rate: Box::new(rate),
                            site,
                        },
                    };
                }
                let params = dtc_stdlib::functions::get(&name)
                    .map(|s| s.params)
                    .unwrap_or(&[]);
                ExprKind::Call(name, self.ordered_args(params, args, cx))
            }
            ast::ExprKind::Is { machine, state } => {
                let at = cx.event.or(cx.source);
                if let Some(ev) = at {
                    self.machine_key_for(&machine.name, ev);
                }
                match self.machine_index.get(&machine.name) {
                    Some(m) => ExprKind::InState {
                        machine: m.index,
                        state: m.states.iter().position(|s| *s == state.name).unwrap_or(0) as u32,
                    },
                    None => ExprKind::Const(Const::Bool(false)),
                }
            }
        };
        Expr { ty, kind }
    }
}

/// Variables as the names a body can use: name, index, type.
fn var_scope(vars: &[VarDef]) -> Vec<(String, u32, Type)> {
    vars.iter()
        .enumerate()
        .map(|(i, v)| (v.name.clone(), i as u32, v.ty.clone()))
        .collect()
}

fn row_expr(r: &RowRef) -> Expr {
    match r {
        RowRef::Field(slot, ty) => Expr {
            ty: ty.clone(),
            kind: ExprKind::Field(*slot),
        },
        RowRef::Std(s) => Expr {
            ty: s.ty(),
            kind: ExprKind::Std(*s),
        },
        RowRef::Column(i, ty) => Expr {
            ty: ty.clone(),
            kind: ExprKind::Column(*i),
        },
    }
}

fn column_name(c: &ast::Column) -> String {
    if let Some(n) = &c.name {
        return n.name.clone();
    }
    match &c.expr.kind {
        ast::ExprKind::Name(id) => id.name.clone(),
        ast::ExprKind::Field(_, f) => f.name.clone(),
        ast::ExprKind::Call { callee, .. } => callee
            .segments
            .last()
            .map_or_else(String::new, |s| s.name.clone()),
        _ => String::new(),
    }
}
