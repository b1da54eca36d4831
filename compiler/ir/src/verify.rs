//! The IR verifier: re-checks a program from the IR alone, so that a runtime
//! never trusts where an IR came from (a file, a network, a compiler bug).
//!
//! It checks that every index is in range (events, slots, locals,
//! variables, state slots, columns, functions, machines, states), that every
//! expression's type agrees with its operands and with what it reads, that
//! every loop, map, machine and budget is bounded, that function calls form
//! no cycle, and that every catalog entry it reaches is known and not
//! mutating (the read-only rule). A program that passes cannot index out of
//! bounds, loop without bound or change the system it observes.

use std::fmt;

use dtc_stdlib::risk::{Effect, Kind};

use crate::*;

/// The most steps a single loop may take.
pub const MAX_LOOP: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// Where in the program: `machine m, transition 2`.
    pub place: String,
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

struct Frame<'p> {
    event: Option<&'p EventLayout>,
    n_locals: u32,
    vars: &'p [VarDef],
    slots: &'p [Type],
    columns: Option<usize>,
    /// Inside a pure function: no emit, no trigger.
    pure: bool,
    ret: Option<&'p Type>,
}

impl<'p> Frame<'p> {
    /// For an expression evaluated on its own (a guard, a key, a default, a
    /// condition): no locals, variables or columns; pure.
    fn expression(event: Option<&'p EventLayout>) -> Frame<'p> {
        Frame {
            event,
            n_locals: 0,
            vars: &[],
            slots: &[],
            columns: None,
            pure: true,
            ret: None,
        }
    }
}

struct Verifier<'p> {
    p: &'p Program,
    place: String,
    errors: Vec<VerifyError>,
}

/// Verifies a program; every problem found is returned.
pub fn verify(p: &Program) -> Result<(), Vec<VerifyError>> {
    let mut v = Verifier {
        p,
        place: String::new(),
        errors: Vec::new(),
    };
    v.program();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(v.errors)
    }
}

fn numeric(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Float)
}

impl<'p> Verifier<'p> {
    fn err(&mut self, message: impl Into<String>) {
        if self.errors.len() < 100 {
            self.errors.push(VerifyError {
                place: self.place.clone(),
                message: message.into(),
            });
        }
    }

    fn event(&mut self, i: u32) -> Option<&'p EventLayout> {
        let e = self.p.events.get(i as usize);
        if e.is_none() {
            self.err(format!("event {i} does not exist"));
        }
        e
    }

    fn program(&mut self) {
        for (i, e) in self.p.events.iter().enumerate() {
            self.place = format!("event {i} `{}`", e.name);
            if e.wire.is_empty() {
                self.err("empty durable ID");
            }
            for f in &e.fields {
                if matches!(f.ty.inner(), Type::Map(..) | Type::Histogram | Type::None) {
                    self.err(format!(
                        "field `{}` has type {}, which an event cannot carry",
                        f.name, f.ty
                    ));
                }
            }
        }
        self.calls_are_acyclic();
        for (i, f) in self.p.functions.iter().enumerate() {
            self.place = format!("function {i} `{}`", f.name);
            if (f.n_locals as usize) < f.params.len() {
                self.err("fewer locals than parameters");
            }
            let frame = Frame {
                event: None,
                n_locals: f.n_locals,
                vars: &[],
                slots: &[],
                columns: None,
                pure: true,
                ret: Some(&f.ret),
            };
            self.block(&f.body, &frame);
        }
        for rule in &self.p.shaping {
            self.place = "shaping".into();
            self.shape(rule);
        }
        for (qi, q) in self.p.queries.iter().enumerate() {
            self.place = format!("query {qi} `{}`", q.name);
            self.query(q);
        }
        for (mi, m) in self.p.machines.iter().enumerate() {
            self.place = format!("machine {mi} `{}`", m.name);
            self.machine(m);
        }
        for (pi, pr) in self.p.processors.iter().enumerate() {
            self.place = format!("processor {pi} `{}`", pr.name);
            self.vars(&pr.vars);
            for (hi, h) in pr.handlers.iter().enumerate() {
                self.place = format!("processor {pi} `{}`, handler {hi}", pr.name);
                let event = self.event(h.event);
                let frame = Frame {
                    event,
                    n_locals: h.n_locals,
                    vars: &pr.vars,
                    slots: &[],
                    columns: None,
                    pure: false,
                    ret: None,
                };
                if let Some(g) = &h.guard {
                    self.expect(g, &frame, &Type::Bool);
                }
                self.block(&h.body, &frame);
            }
        }
    }

    fn calls_are_acyclic(&mut self) {
        fn calls(stmts: &[Stmt], out: &mut Vec<u32>) {
            fn expr(e: &Expr, out: &mut Vec<u32>) {
                match &e.kind {
                    ExprKind::CallFn(i, args) => {
                        out.push(*i);
                        args.iter().for_each(|a| expr(a, out));
                    }
                    ExprKind::Call(_, args) => args.iter().for_each(|a| expr(a, out)),
                    ExprKind::Unary(_, a) => expr(a, out),
                    ExprKind::Binary(_, a, b)
                    | ExprKind::Coalesce(a, b)
                    | ExprKind::Index(a, b) => {
                        expr(a, out);
                        expr(b, out);
                    }
                    ExprKind::Sample { rate, .. } => expr(rate, out),
                    _ => {}
                }
            }
            for s in stmts {
                match s {
                    Stmt::Let(_, e) | Stmt::Return(e) | Stmt::Expr(e) => expr(e, out),
                    Stmt::Assign { value, .. } => expr(value, out),
                    Stmt::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        expr(cond, out);
                        calls(then, out);
                        calls(otherwise, out);
                    }
                    Stmt::IfLet {
                        value,
                        then,
                        otherwise,
                        ..
                    } => {
                        expr(value, out);
                        calls(then, out);
                        calls(otherwise, out);
                    }
                    Stmt::ForRange { body, .. } | Stmt::ForMap { body, .. } => calls(body, out),
                    Stmt::Emit { fields, .. } => fields.iter().for_each(|(_, e)| expr(e, out)),
                    Stmt::Trigger { args, .. } => args.iter().for_each(|(_, e)| expr(e, out)),
                }
            }
        }
        let n = self.p.functions.len();
        let edges: Vec<Vec<u32>> = self
            .p
            .functions
            .iter()
            .map(|f| {
                let mut v = Vec::new();
                calls(&f.body, &mut v);
                v
            })
            .collect();
        // Kahn's algorithm: whatever cannot be ordered is on a cycle.
        let mut indegree = vec![0usize; n];
        for e in &edges {
            for &t in e {
                if (t as usize) < n {
                    indegree[t as usize] += 1;
                } else {
                    self.place = "functions".into();
                    self.err(format!("call to function {t}, which does not exist"));
                }
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut seen = 0;
        while let Some(i) = ready.pop() {
            seen += 1;
            for &t in &edges[i] {
                if let Some(d) = indegree.get_mut(t as usize) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(t as usize);
                    }
                }
            }
        }
        if seen < n {
            self.place = "functions".into();
            self.err("functions call each other in a cycle: recursion is not bounded");
        }
    }

    fn vars(&mut self, vars: &[VarDef]) {
        for v in vars {
            if matches!(v.ty, Type::Map(..)) && v.max_entries.is_none_or(|n| n == 0) {
                self.err(format!("map `{}` has no maximum", v.name));
            }
            if let Some(init) = &v.init {
                let frame = Frame::expression(None);
                self.expect(init, &frame, &v.ty);
            }
        }
    }

    fn shape(&mut self, rule: &ShapeRule) {
        match rule {
            ShapeRule::Suppress { event, when } => {
                let ev = self.event(*event);
                if let Some(w) = when {
                    let frame = Frame::expression(ev);
                    self.expect(w, &frame, &Type::Bool);
                }
            }
            ShapeRule::SuppressField {
                when: Some(w),
                event,
                ..
            }
            | ShapeRule::RedactStd {
                when: Some(w),
                event,
                ..
            } if self.p.events.get(*event as usize).is_some() => {
                let ev = self.event(*event);
                let frame = Frame::expression(ev);
                self.expect(w, &frame, &Type::Bool);
                if let ShapeRule::SuppressField { slot, .. } = rule
                    && ev.is_some_and(|e| *slot as usize >= e.fields.len())
                {
                    self.err(format!("field slot {slot} out of range"));
                }
            }
            ShapeRule::SuppressField { event, slot, .. }
            | ShapeRule::Redact { event, slot, .. } => {
                if let Some(ev) = self.event(*event)
                    && *slot as usize >= ev.fields.len()
                {
                    self.err(format!("field slot {slot} out of range for `{}`", ev.name));
                }
            }
            ShapeRule::RedactStd { event, .. } => {
                self.event(*event);
            }
            ShapeRule::Sample { event, rate } => {
                self.event(*event);
                if !(0.0..=100.0).contains(rate) {
                    self.err(format!("sampling rate {rate}% out of range"));
                }
            }
            ShapeRule::Limit {
                event,
                count,
                per_ns,
            } => {
                self.event(*event);
                if *count == 0 || *per_ns <= 0 {
                    self.err("a rate limit needs a positive count and period");
                }
            }
        }
    }

    fn query(&mut self, q: &'p Query) {
        let source = self.event(q.source);
        let mut event = source;
        let mut columns = 0usize;
        let mut emitted = false;
        for (si, stage) in q.stages.iter().enumerate() {
            if emitted {
                self.err(format!("stage {si} follows an emit"));
            }
            let frame = Frame {
                columns: Some(columns),
                ..Frame::expression(event)
            };
            match stage {
                Stage::Where(e) => self.expect(e, &frame, &Type::Bool),
                Stage::Extend(cols) => {
                    for (_, e) in cols {
                        self.expr(e, &frame);
                    }
                    columns = row_after(q, si + 1).len();
                }
                Stage::Project(cols) => {
                    for (_, e) in cols {
                        self.expr(e, &frame);
                    }
                    columns = cols.len();
                    event = None;
                }
                Stage::Summarize {
                    keys,
                    aggregates,
                    every_ns,
                    max_series,
                } => {
                    for (_, e) in keys {
                        self.expr(e, &frame);
                        if !matches!(e.ty.inner(), Type::Str | Type::Int | Type::Bool) {
                            self.err(format!("group key of type {}", e.ty));
                        }
                    }
                    for a in aggregates {
                        for e in &a.args {
                            self.expr(e, &frame);
                        }
                    }
                    if *every_ns <= 0 {
                        self.err("a window must be longer than zero");
                    }
                    if max_series == &Some(0) {
                        self.err("a series maximum of zero");
                    }
                    columns = keys.len() + aggregates.len();
                    event = None;
                }
                Stage::Sample { rate, .. } => {
                    if !(0.0..=100.0).contains(rate) {
                        self.err("sampling rate out of range");
                    }
                }
                Stage::Limit { count, per_ns } => {
                    if *count == 0 || *per_ns <= 0 {
                        self.err("a limit needs a positive count and period");
                    }
                }
                Stage::EmitLog {
                    event: target,
                    fields,
                } => {
                    emitted = true;
                    self.emit_fields(*target, fields, &frame);
                }
                Stage::EmitMetric { name } => {
                    emitted = true;
                    if name.is_empty() {
                        self.err("empty metric name");
                    }
                    if !q.stages[..si]
                        .iter()
                        .any(|s| matches!(s, Stage::Summarize { .. }))
                    {
                        self.err("a metric without summarize");
                    }
                }
            }
        }
    }

    fn emit_fields(&mut self, target: u32, fields: &[(u32, Expr)], frame: &Frame<'_>) {
        let Some(layout) = self.event(target) else {
            return;
        };
        if !layout.derived {
            // Emitting a received event type is allowed (the checker matched
            // the schema); its fields are checked the same way.
        }
        for (slot, e) in fields {
            self.expr(e, frame);
            match layout.fields.get(*slot as usize) {
                None => self.err(format!("slot {slot} out of range for `{}`", layout.name)),
                Some(f) if !f.ty.accepts(&e.ty) && !f.ty.accepts(e.ty.inner()) => {
                    self.err(format!("field `{}` is {}, given {}", f.name, f.ty, e.ty))
                }
                _ => {}
            }
        }
    }

    fn machine(&mut self, m: &'p Machine) {
        if m.states.is_empty() {
            self.err("no states");
            return;
        }
        if m.max_instances == 0 {
            self.err("no instances allowed");
        }
        if m.keys.is_none() && m.max_instances != 1 {
            self.err("a machine without a key has one instance");
        }
        self.vars(&m.vars);
        for s in &m.states {
            for (slot, default) in &s.vars {
                match m.slots.get(*slot as usize) {
                    None => self.err(format!(
                        "state `{}` owns slot {slot}, which does not exist",
                        s.name
                    )),
                    Some(t) => {
                        if let Some(d) = default {
                            let frame = Frame::expression(None);
                            self.expect(d, &frame, t);
                        }
                    }
                }
            }
        }
        if let Some(keys) = &m.keys {
            for (e, k) in keys {
                let event = self.event(*e);
                let frame = Frame::expression(event);
                self.expr(k, &frame);
                if !matches!(k.ty.inner(), Type::Str | Type::Int | Type::Bool) {
                    self.err(format!("machine key of type {}", k.ty));
                }
            }
        }
        let n_states = m.states.len() as u32;
        let base = self.place.clone();
        for (ti, t) in m.transitions.iter().enumerate() {
            self.place = format!("{base}, transition {ti}");
            if t.target >= n_states || t.from.iter().any(|s| *s >= n_states) {
                self.err("state out of range");
            }
            if let Some(keys) = &m.keys
                && !keys.iter().any(|(e, _)| *e == t.event)
            {
                self.err("no key for the transition's event");
            }
            let event = self.event(t.event);
            let frame = Frame {
                event,
                n_locals: t.n_locals,
                vars: &m.vars,
                slots: &m.slots,
                columns: None,
                pure: false,
                ret: None,
            };
            if let Some(g) = &t.guard {
                self.expect(g, &frame, &Type::Bool);
            }
            self.block(&t.body, &frame);
        }
        for (ti, t) in m.timeouts.iter().enumerate() {
            self.place = format!("{base}, timeout {ti}");
            if t.target >= n_states || t.from >= n_states {
                self.err("state out of range");
            }
            if t.after_ns <= 0 {
                self.err("a timeout must be longer than zero");
            }
            let frame = Frame {
                event: None,
                n_locals: t.n_locals,
                vars: &m.vars,
                slots: &m.slots,
                columns: None,
                pure: false,
                ret: None,
            };
            self.block(&t.body, &frame);
        }
    }

    fn budget(&mut self, b: &Budget) {
        if b.count == 0 || b.per_ns <= 0 {
            self.err("a budget needs a positive count and period");
        }
    }

    fn block(&mut self, stmts: &[Stmt], f: &Frame<'_>) {
        for s in stmts {
            self.stmt(s, f);
        }
    }

    fn local(&mut self, i: u32, f: &Frame<'_>) {
        if i >= f.n_locals {
            self.err(format!("local {i} out of range ({} locals)", f.n_locals));
        }
    }

    fn place_ty(&mut self, place: &Place, f: &Frame<'_>) -> Option<Type> {
        match place {
            Place::Local(i) => {
                self.local(*i, f);
                None
            }
            Place::Var(i) => match f.vars.get(*i as usize) {
                Some(v) => Some(v.ty.clone()),
                None => {
                    self.err(format!("variable {i} out of range"));
                    None
                }
            },
            Place::StateVar(i) => match f.slots.get(*i as usize) {
                Some(t) => Some(t.clone()),
                None => {
                    self.err(format!("state slot {i} out of range"));
                    None
                }
            },
            Place::Entry(base, key) => {
                self.expr(key, f);
                match self.place_ty(base, f) {
                    Some(Type::Map(_, v)) => Some(Type::Opt(v)),
                    Some(t) => {
                        self.err(format!("indexing a {t}"));
                        None
                    }
                    None => None,
                }
            }
        }
    }

    fn stmt(&mut self, s: &Stmt, f: &Frame<'_>) {
        match s {
            Stmt::Let(i, e) => {
                self.local(*i, f);
                self.expr(e, f);
            }
            Stmt::Assign { place, op, value } => {
                self.expr(value, f);
                if let Some(t) = self.place_ty(place, f) {
                    // `t += d` keeps the place's type: a timestamp moves by
                    // a duration; everything else adds its own type.
                    let shifts_time = *op != AssignOp::Set
                        && *t.inner() == Type::Timestamp
                        && value.ty == Type::Duration;
                    if !shifts_time && !t.accepts(&value.ty) && !t.inner().accepts(&value.ty) {
                        self.err(format!("assigning {} to a {t}", value.ty));
                    }
                }
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                self.expect(cond, f, &Type::Bool);
                self.block(then, f);
                self.block(otherwise, f);
            }
            Stmt::IfLet {
                local,
                value,
                then,
                otherwise,
            } => {
                self.local(*local, f);
                self.expr(value, f);
                self.block(then, f);
                self.block(otherwise, f);
            }
            Stmt::ForRange {
                local,
                from,
                to,
                body,
            } => {
                self.local(*local, f);
                if to.saturating_sub(*from) > MAX_LOOP {
                    self.err(format!(
                        "a loop of {} steps (at most {MAX_LOOP})",
                        to.saturating_sub(*from)
                    ));
                }
                self.block(body, f);
            }
            Stmt::ForMap {
                map,
                key,
                value,
                body,
            } => {
                self.local(*key, f);
                if let Some(v) = value {
                    self.local(*v, f);
                }
                match self.place_ty(map, f) {
                    Some(Type::Map(..)) | None => {}
                    Some(t) => self.err(format!("looping over a {t}")),
                }
                self.block(body, f);
            }
            Stmt::Emit {
                event,
                fields,
                budget,
                ..
            } => {
                if f.pure {
                    self.err("an emit in a pure function");
                }
                self.budget(budget);
                self.emit_fields(*event, fields, f);
            }
            Stmt::Trigger {
                action,
                args,
                budget,
                ..
            } => {
                if f.pure {
                    self.err("a trigger in a pure function");
                }
                self.budget(budget);
                match dtc_stdlib::risk::profile(action, Kind::Action) {
                    None => self.err(format!("`{action}` is not an action of the catalog")),
                    Some(p) if p.effect == Effect::Mutating => self.err(format!(
                        "`{action}` is mutating: the read-only rule forbids it"
                    )),
                    Some(_) => {}
                }
                for (_, e) in args {
                    self.expr(e, f);
                }
            }
            Stmt::Return(e) => {
                self.expr(e, f);
                match f.ret {
                    Some(r) if !r.accepts(&e.ty) => {
                        self.err(format!("returning {} from a function of {r}", e.ty))
                    }
                    None => self.err("`return` outside a function"),
                    _ => {}
                }
            }
            Stmt::Expr(e) => {
                self.expr(e, f);
            }
        }
    }

    fn expect(&mut self, e: &Expr, f: &Frame<'_>, t: &Type) {
        self.expr(e, f);
        if !t.accepts(&e.ty) {
            self.err(format!("expected {t}, found {}", e.ty));
        }
    }

    fn expr(&mut self, e: &Expr, f: &Frame<'_>) {
        match &e.kind {
            ExprKind::Const(c) => {
                let ok = match c {
                    Const::Bool(_) => e.ty == Type::Bool,
                    Const::Int(_) => e.ty == Type::Int,
                    Const::Float(_) => e.ty == Type::Float,
                    Const::Str(_) => e.ty == Type::Str,
                    Const::Duration(_) => e.ty == Type::Duration,
                    Const::Percent(p) => e.ty == Type::Percent && (0.0..=100.0).contains(p),
                    Const::None => e.ty == Type::None || e.ty.is_opt(),
                };
                if !ok {
                    self.err(format!("constant {c:?} typed {}", e.ty));
                }
            }
            ExprKind::Field(slot) => match f.event {
                None => self.err("reads an event field where there is no event"),
                Some(ev) => match ev.fields.get(*slot as usize) {
                    None => self.err(format!("field slot {slot} out of range for `{}`", ev.name)),
                    Some(fd) if fd.ty != e.ty => {
                        self.err(format!("field `{}` is {}, typed {}", fd.name, fd.ty, e.ty))
                    }
                    _ => {}
                },
            },
            ExprKind::Std(s) => {
                if f.event.is_none() {
                    self.err("reads a standard field where there is no event");
                }
                if s.ty() != e.ty {
                    self.err(format!("standard field `{}` typed {}", s.name(), e.ty));
                }
            }
            ExprKind::Local(i) => self.local(*i, f),
            ExprKind::Var(i) => match f.vars.get(*i as usize) {
                None => self.err(format!("variable {i} out of range")),
                Some(v) if v.ty != e.ty => {
                    self.err(format!("variable `{}` is {}, typed {}", v.name, v.ty, e.ty))
                }
                _ => {}
            },
            ExprKind::StateVar(i) => match f.slots.get(*i as usize) {
                None => self.err(format!("state slot {i} out of range")),
                Some(t) if *t != e.ty => self.err(format!("state slot {i} is {t}, typed {}", e.ty)),
                _ => {}
            },
            ExprKind::Column(i) => match f.columns {
                Some(n) if (*i as usize) < n => {}
                _ => self.err(format!("column {i} out of range")),
            },
            ExprKind::Unary(op, a) => {
                self.expr(a, f);
                let ok = match op {
                    UnOp::Not => a.ty == Type::Bool && e.ty == Type::Bool,
                    UnOp::Neg => {
                        matches!(a.ty, Type::Int | Type::Float | Type::Duration) && e.ty == a.ty
                    }
                };
                if !ok {
                    self.err(format!("{op:?} on {} typed {}", a.ty, e.ty));
                }
            }
            ExprKind::Binary(op, a, b) => {
                self.expr(a, f);
                self.expr(b, f);
                if !binary_ok(*op, &a.ty, &b.ty, &e.ty) {
                    self.err(format!("{op:?} on {} and {} typed {}", a.ty, b.ty, e.ty));
                }
            }
            ExprKind::Coalesce(a, b) => {
                self.expr(a, f);
                self.expr(b, f);
                if !a.ty.is_opt() {
                    self.err("`??` on a value that is never absent");
                }
            }
            ExprKind::Index(a, b) => {
                self.expr(a, f);
                self.expr(b, f);
                match &a.ty {
                    Type::Map(k, _) if k.accepts(&b.ty) => {}
                    t => self.err(format!("indexing a {t} with a {}", b.ty)),
                }
            }
            ExprKind::Call(name, args) => {
                for a in args {
                    self.expr(a, f);
                }
                match dtc_stdlib::functions::get(name) {
                    None => self.err(format!("`{name}` is not a function of the catalog")),
                    Some(sig) => {
                        if args.len() != sig.params.len() {
                            self.err(format!(
                                "`{name}` takes {} arguments, given {}",
                                sig.params.len(),
                                args.len()
                            ));
                        }
                        match dtc_stdlib::risk::profile(name, Kind::Function) {
                            None => self.err(format!("`{name}` declares no effect")),
                            Some(p) if p.effect == Effect::Mutating => {
                                self.err(format!("`{name}` is mutating"))
                            }
                            _ => {}
                        }
                    }
                }
            }
            ExprKind::CallFn(i, args) => {
                for a in args {
                    self.expr(a, f);
                }
                match self.p.functions.get(*i as usize) {
                    None => self.err(format!("function {i} does not exist")),
                    Some(func) => {
                        if func.params.len() != args.len() {
                            self.err(format!(
                                "`{}` takes {} arguments, given {}",
                                func.name,
                                func.params.len(),
                                args.len()
                            ));
                        }
                        for (p, a) in func.params.iter().zip(args) {
                            if !p.accepts(&a.ty) {
                                self.err(format!("`{}` takes {p}, given {}", func.name, a.ty));
                            }
                        }
                    }
                }
            }
            ExprKind::Sample { rate, .. } => self.expect(rate, f, &Type::Percent),
            ExprKind::InState { machine, state } => match self.p.machines.get(*machine as usize) {
                None => self.err(format!("machine {machine} does not exist")),
                Some(m) if *state as usize >= m.states.len() => {
                    self.err(format!("state {state} out of range"))
                }
                _ => {}
            },
        }
    }
}

fn binary_ok(op: BinOp, a: &Type, b: &Type, r: &Type) -> bool {
    use BinOp as B;
    use Type as T;
    match op {
        B::Or | B::And => *a == T::Bool && *b == T::Bool && *r == T::Bool,
        B::Eq | B::Ne => {
            *r == T::Bool && (a.inner() == b.inner() || *a == T::None || *b == T::None)
        }
        B::Lt | B::Le | B::Gt | B::Ge => *r == T::Bool && a == b,
        B::Add => match (a, b) {
            (T::Str, T::Str) => *r == T::Str,
            (T::Timestamp, T::Duration) | (T::Duration, T::Timestamp) => *r == T::Timestamp,
            (x, y) if x == y && (numeric(x) || *x == T::Duration) => r == x,
            _ => false,
        },
        B::Sub => match (a, b) {
            (T::Timestamp, T::Timestamp) => *r == T::Duration,
            (T::Timestamp, T::Duration) => *r == T::Timestamp,
            (x, y) if x == y && (numeric(x) || *x == T::Duration) => r == x,
            _ => false,
        },
        B::Mul => match (a, b) {
            (T::Duration, T::Int) | (T::Int, T::Duration) => *r == T::Duration,
            (x, y) if x == y && numeric(x) => r == x,
            _ => false,
        },
        B::Div => match (a, b) {
            (T::Duration, T::Int) => *r == T::Duration,
            (T::Duration, T::Duration) => *r == T::Float,
            (x, y) if x == y && numeric(x) => r == x,
            _ => false,
        },
        B::Rem => a == b && numeric(a) && r == a,
    }
}
