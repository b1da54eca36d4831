//! The analysis walk over a checked program: privacy flow (taint from
//! `@pii`/`@secret` fields to sinks), effects and steps per handler, state
//! bounds and memory, metric cardinality, action budgets, recursion, and the
//! risk contributions all of these make.
//!
//! Taint is tracked per value as a set of origins (a labelled field), each
//! with the trail of places it went through, so a leak is reported with its
//! path from the field to the sink. Persistent variables (machine and
//! processor `var`s, state variables) are flow-insensitive: a variable holds
//! the union of everything ever stored in it, found by iterating the
//! handlers to a fixed point before the reporting pass.

use std::collections::{BTreeSet, HashMap, HashSet};

use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Span};
use dtc_sema::Unit;
use dtc_stdlib::risk::{Dimension, Effect, Kind, Level, Profile, RiskVector};
use dtc_syntax::ast::{
    self, Block, Expr, ExprKind, ForIter, Item, MachineMember, ProcessorMember, ShapingKind,
    StageKind, Stmt, StmtKind,
};

use crate::Defaults;
use crate::report::{ActionUse, Contribution, HandlerInfo, MemoryItem, MetricInfo, Report};

/// What kind of sensitive data a value carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sensitivity {
    Pii,
    Secret,
    /// A function parameter, while summarising a function.
    Param(usize),
}

#[derive(Debug, Clone)]
struct Origin {
    label: Sensitivity,
    /// `Event.field`.
    field: String,
    steps: Vec<(FileId, Span, String)>,
}

const MAX_TRAIL: usize = 8;

/// The sensitive origins a value derives from.
#[derive(Debug, Clone, Default)]
struct Taint(Vec<Origin>);

impl Taint {
    fn union(&mut self, other: Taint) {
        for o in other.0 {
            if !self
                .0
                .iter()
                .any(|m| m.label == o.label && m.field == o.field)
            {
                self.0.push(o);
            }
        }
    }

    fn joined(mut self, other: Taint) -> Taint {
        self.union(other);
        self
    }

    fn step(mut self, file: FileId, span: Span, what: String) -> Taint {
        for o in &mut self.0 {
            if o.steps.len() < MAX_TRAIL && !o.steps.iter().any(|(_, s, _)| *s == span) {
                o.steps.push((file, span, what.clone()));
            }
        }
        self
    }

    fn is_clean(&self) -> bool {
        self.0
            .iter()
            .all(|o| matches!(o.label, Sensitivity::Param(_)))
    }

    fn sensitive(&self) -> impl Iterator<Item = &Origin> {
        self.0
            .iter()
            .filter(|o| !matches!(o.label, Sensitivity::Param(_)))
    }

    fn key(&self) -> Vec<(String, u8)> {
        let mut k: Vec<(String, u8)> = self
            .0
            .iter()
            .map(|o| {
                let tag = match o.label {
                    Sensitivity::Pii => 0,
                    Sensitivity::Secret => 1,
                    Sensitivity::Param(i) => 2 + i.min(250) as u8,
                };
                (o.field.clone(), tag)
            })
            .collect();
        k.sort();
        k
    }
}

#[derive(Debug, Clone)]
struct FieldSchema {
    name: String,
    span: Span,
    label: Option<Sensitivity>,
}

#[derive(Debug, Clone)]
struct EventSchema {
    file: FileId,
    fields: Vec<FieldSchema>,
}

/// What a user function does, seen from a call.
#[derive(Debug, Clone, Default)]
struct FnSummary {
    /// Which parameters flow into the result.
    flows: Vec<bool>,
    effects: BTreeSet<Effect>,
    steps: u64,
}

/// Where an expression is evaluated.
#[derive(Clone, Default)]
struct Cx {
    /// The event `event.` reads.
    event: Option<String>,
    /// Query and shaping columns with their taint.
    row: Option<Vec<(String, Taint)>>,
}

pub struct Walker<'a> {
    root: &'a Unit,
    file: FileId,
    types: HashMap<(usize, usize), &'a str>,
    defaults: &'a Defaults,
    profiles: &'a [Profile],
    events: HashMap<String, EventSchema>,
    /// Events the program reads, with where it first does.
    referenced: Vec<(String, Span)>,
    fns: HashMap<String, &'a ast::FnDecl>,
    summaries: HashMap<String, FnSummary>,
    visiting: HashSet<String>,
    scopes: Vec<HashMap<String, Taint>>,
    vars: HashMap<String, Taint>,
    /// Declared `max` of the map variables in scope.
    map_bounds: HashMap<String, u64>,
    contribution_keys: HashSet<(Dimension, Level, String, Span)>,
    referenced_names: HashSet<String>,
    effects: BTreeSet<Effect>,
    /// Steps of the user functions called by the statement being walked.
    call_steps: u64,
    /// While iterating to a fixed point, sinks are not reported.
    silent: bool,
    reported: HashSet<(usize, usize)>,
    report: Report,
    diags: Vec<Diagnostic>,
}

impl<'a> Walker<'a> {
    pub fn new(
        units: &'a [Unit],
        types: &'a [(FileId, Span, String)],
        defaults: &'a Defaults,
        profiles: &'a [Profile],
    ) -> Walker<'a> {
        let root = &units[0];
        let file = root.file;
        let types = types
            .iter()
            .filter(|(f, _, _)| *f == file)
            .map(|(_, s, t)| ((s.start, s.end), t.as_str()))
            .collect();
        let mut walker = Walker {
            root,
            file,
            types,
            defaults,
            profiles,
            events: HashMap::new(),
            referenced: Vec::new(),
            fns: HashMap::new(),
            summaries: HashMap::new(),
            visiting: HashSet::new(),
            scopes: Vec::new(),
            vars: HashMap::new(),
            map_bounds: HashMap::new(),
            contribution_keys: HashSet::new(),
            referenced_names: HashSet::new(),
            effects: BTreeSet::new(),
            call_steps: 0,
            silent: false,
            reported: HashSet::new(),
            report: Report::default(),
            diags: Vec::new(),
        };
        walker.collect_schemas(units);
        walker
    }

    /// The schemas visible in the root file: its own and the imported ones.
    fn collect_schemas(&mut self, units: &'a [Unit]) {
        let schema = |unit: &Unit, decl: &ast::EventDecl| EventSchema {
            file: unit.file,
            fields: decl
                .fields
                .iter()
                .map(|f| FieldSchema {
                    name: f.name.name.clone(),
                    span: f.name.span,
                    label: if f.has_annotation("secret") {
                        Some(Sensitivity::Secret)
                    } else if f.has_annotation("pii") {
                        Some(Sensitivity::Pii)
                    } else {
                        None
                    },
                })
                .collect(),
        };
        for (unit, decl) in dtc_sema::visible_events(units) {
            self.events
                .insert(decl.name.name.clone(), schema(unit, decl));
        }
    }

    fn contribute(
        &mut self,
        risk: RiskVector,
        construct: impl Into<String>,
        reason: &str,
        span: Span,
    ) {
        let construct = construct.into();
        for d in Dimension::ALL {
            let level = risk.get(d);
            if level > Level::None {
                self.raise(d, level, construct.clone(), reason.to_string(), span);
            }
        }
    }

    fn raise(
        &mut self,
        dimension: Dimension,
        level: Level,
        construct: String,
        reason: String,
        span: Span,
    ) {
        let c = Contribution {
            dimension,
            level,
            construct,
            reason,
            file: self.file,
            span,
        };
        // A set, not a scan of the list: programs have thousands of items.
        let key = (c.dimension, c.level, c.construct.clone(), c.span);
        if self.contribution_keys.insert(key) {
            self.report.contributions.push(c);
        }
    }

    fn profile(&self, name: &str, kind: Kind) -> Option<&'a Profile> {
        self.profiles
            .iter()
            .find(|p| p.name == name && p.kind == kind)
    }

    /// Read-only rule: a reachable catalog entry must declare an effect,
    /// and it must not be mutating.
    fn use_entry(&mut self, name: &str, kind: Kind, span: Span) -> Option<&'a Profile> {
        let Some(p) = self.profile(name, kind) else {
            if !self.silent {
                self.diags.push(
                    Diagnostic::new(Code::E0402, format!("`{name}` declares no effect or risk"), Label::new(self.file, span, "used here"))
                        .with_help("every catalog entry must have a profile in stdlib/src/risk.rs before a program can use it"),
                );
            }
            return None;
        };
        if p.effect == Effect::Mutating
            && !self.silent
            && self.reported.insert((span.start, span.end))
        {
            self.diags.push(
                Diagnostic::new(
                    Code::E0401,
                    format!("`{name}` would change the system this program observes"),
                    Label::new(self.file, span, "declared with a mutating effect"),
                )
                .with_note("the read-only rule: a telemetry program may observe, record and diagnose, never change state")
                .with_help("use a diagnostic action instead, or remove the call"),
            );
        }
        self.effects.insert(p.effect);
        Some(p)
    }

    pub fn run(&mut self) {
        self.report.program = String::new();
        for item in &self.root.ast.items {
            if let Item::Fn(f) = item {
                self.fns.insert(f.name.name.clone(), f);
            }
        }
        self.check_recursion();
        self.probes();
        let items = &self.root.ast.items;
        for item in items {
            match item {
                Item::Machine(m) => self.machine(m),
                Item::Processor(p) => self.processor(p),
                _ => {}
            }
        }
        for item in items {
            if let Item::Query(q) = item {
                self.query(q);
            }
        }
        self.shaping();
        self.finish_memory();
    }

    pub fn finish(mut self) -> (Report, Vec<Diagnostic>) {
        let mut vector = RiskVector::default();
        for c in &self.report.contributions {
            let cur = vector.get(c.dimension);
            vector.set(c.dimension, cur.max(c.level));
        }
        self.report.vector = vector;
        self.report.tier = vector.tier();
        self.report
            .contributions
            .sort_by_key(|c| (c.dimension, std::cmp::Reverse(c.level), c.span.start));
        (self.report, self.diags)
    }

    // ------------------------------------------------------------ recursion

    fn check_recursion(&mut self) {
        let mut edges: HashMap<String, Vec<(String, Span)>> = HashMap::new();
        let mut all_fns: Vec<&ast::FnDecl> = self.fns.values().copied().collect();
        for item in &self.root.ast.items {
            if let Item::Processor(p) = item {
                for m in &p.members {
                    if let ProcessorMember::Fn(f) = m {
                        all_fns.push(f);
                    }
                }
            }
        }
        all_fns.sort_by_key(|f| f.span.start);
        let names: HashSet<String> = all_fns.iter().map(|f| f.name.name.clone()).collect();
        for f in &all_fns {
            let mut calls = Vec::new();
            calls_in_block(&f.body, &mut |path: &ast::Path| {
                if path.segments.len() == 1 && names.contains(&path.segments[0].name) {
                    calls.push((path.segments[0].name.clone(), path.span));
                }
            });
            edges.insert(f.name.name.clone(), calls);
        }
        let mut reported: HashSet<String> = HashSet::new();
        for f in &all_fns {
            if reported.contains(&f.name.name) {
                continue;
            }
            if let Some(cycle) = find_cycle(&f.name.name, &edges) {
                for (n, _) in &cycle {
                    reported.insert(n.clone());
                }
                let path: Vec<String> = cycle.iter().map(|(n, _)| format!("`{n}`")).collect();
                let mut d = Diagnostic::new(
                    Code::E0501,
                    format!("function `{}` calls itself", f.name.name),
                    Label::new(self.file, f.name.span, format!("recursion: {} → `{}`", path.join(" → "), f.name.name)),
                )
                .with_help("rewrite it with a bounded `for` loop: recursion has no bound on its steps or stack");
                for (n, span) in &cycle {
                    d = d.with_label(Label::new(self.file, *span, format!("calls `{n}`")));
                }
                self.diags.push(d);
            }
        }
    }

    // --------------------------------------------------------------- probes

    fn probes(&mut self) {
        let mut uses_otel = false;
        let mut probe_kinds: HashMap<String, (String, Span)> = HashMap::new();
        for item in &self.root.ast.items {
            if let Item::Probe(p) = item {
                probe_kinds.insert(p.name.name.clone(), (p.kind.joined(), p.span));
            }
        }
        for item in &self.root.ast.items {
            if let Item::Event(e) = item
                && let Some(src) = &e.source
                && let Some((kind, span)) = probe_kinds.get(&src.name).cloned()
            {
                if let Some(p) = self.use_entry(&kind, Kind::Probe, span) {
                    self.contribute(
                        p.risk,
                        format!("probe `{}` ({kind})", src.name),
                        p.reason,
                        span,
                    );
                }
                if !self
                    .report
                    .probes
                    .iter()
                    .any(|(k, _, s)| *k == kind && *s == span)
                {
                    self.report.probes.push((kind, self.file, span));
                }
            }
        }
        // Every other event arrives as an OpenTelemetry log.
        let from_probe: HashSet<String> = self
            .root
            .ast
            .items
            .iter()
            .filter_map(|i| {
                if let Item::Event(e) = i {
                    e.source.as_ref().map(|_| e.name.name.clone())
                } else {
                    None
                }
            })
            .collect();
        let mut first_use: Option<Span> = None;
        for item in &self.root.ast.items {
            let (events, span): (Vec<&ast::Ident>, Span) = match item {
                Item::Query(q) => (vec![&q.source], q.source.span),
                Item::Machine(m) => (
                    m.members
                        .iter()
                        .filter_map(|mm| {
                            if let MachineMember::On(t) = mm {
                                Some(&t.event)
                            } else {
                                None
                            }
                        })
                        .collect(),
                    m.name.span,
                ),
                Item::Processor(p) => (
                    p.members
                        .iter()
                        .filter_map(|pm| {
                            if let ProcessorMember::Handler(h) = pm {
                                Some(&h.event)
                            } else {
                                None
                            }
                        })
                        .collect(),
                    p.name.span,
                ),
                Item::Shaping(r) => (vec![shaped_event(r)], r.span),
                _ => continue,
            };
            for e in events {
                if self.referenced_names.insert(e.name.clone()) {
                    self.referenced.push((e.name.clone(), e.span));
                }
                if !from_probe.contains(&e.name) && self.events.contains_key(&e.name) {
                    uses_otel = true;
                    first_use.get_or_insert(span);
                }
            }
        }
        if uses_otel && let Some(span) = first_use {
            if let Some(p) = self.use_entry("otel.logs", Kind::Probe, span) {
                self.contribute(
                    p.risk,
                    "OpenTelemetry logs (the default probe)",
                    p.reason,
                    span,
                );
            }
            self.report
                .probes
                .push(("otel.logs".into(), self.file, span));
        }
    }

    // ---------------------------------------------------------- expressions

    fn lookup(&self, name: &str) -> Option<Taint> {
        for scope in self.scopes.iter().rev() {
            if let Some(t) = scope.get(name) {
                return Some(t.clone());
            }
        }
        self.vars.get(name).cloned()
    }

    fn bind(&mut self, name: &str, taint: Taint) {
        if self.scopes.is_empty() {
            self.scopes.push(HashMap::new());
        }
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), taint);
        }
    }

    fn event_field(&self, event: &str, field: &str, span: Span) -> Taint {
        let Some(schema) = self.events.get(event) else {
            return Taint::default();
        };
        let Some(f) = schema.fields.iter().find(|f| f.name == field) else {
            return Taint::default();
        };
        let Some(label) = f.label else {
            return Taint::default();
        };
        let kind = if label == Sensitivity::Secret {
            "@secret"
        } else {
            "@pii"
        };
        Taint(vec![Origin {
            label,
            field: format!("{event}.{field}"),
            steps: vec![
                (schema.file, f.span, format!("`{event}.{field}` is {kind}")),
                (self.file, span, "read here".into()),
            ],
        }])
    }

    /// The taint of an expression; records effects and costs of calls.
    fn expr(&mut self, e: &Expr, cx: &Cx) -> Taint {
        match &e.kind {
            ExprKind::Name(id) => {
                if let Some(row) = &cx.row
                    && self.lookup(&id.name).is_none()
                    && let Some((_, t)) = row.iter().find(|(n, _)| *n == id.name)
                {
                    return t.clone();
                }
                self.lookup(&id.name).unwrap_or_default()
            }
            ExprKind::Field(base, field) => {
                if let ExprKind::Name(b) = &base.kind
                    && b.name == "event"
                    && let Some(ev) = &cx.event
                {
                    return self.event_field(ev, &field.name, e.span);
                }
                self.expr(base, cx)
            }
            ExprKind::Index(a, b) => self.expr(a, cx).joined(self.expr(b, cx)),
            ExprKind::Unary(_, a) => self.expr(a, cx),
            ExprKind::Binary(_, a, b) => self.expr(a, cx).joined(self.expr(b, cx)),
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, cx),
            _ => Taint::default(),
        }
    }

    fn call(&mut self, callee: &ast::Path, args: &[ast::Arg], span: Span, cx: &Cx) -> Taint {
        let name = callee.joined();
        let arg_taints: Vec<Taint> = args.iter().map(|a| self.expr(&a.value, cx)).collect();
        if callee.segments.len() == 1
            && let Some(f) = self.fns.get(&name).copied()
        {
            let summary = self.summary(f);
            self.effects.extend(summary.effects.iter().copied());
            self.call_steps = self.call_steps.saturating_add(summary.steps);
            let mut out = Taint::default();
            for (i, t) in arg_taints.into_iter().enumerate() {
                if summary.flows.get(i).copied().unwrap_or(true) {
                    out.union(t.step(self.file, span, format!("through `{name}`")));
                }
            }
            return out;
        }
        let kind = if dtc_stdlib::aggregates::get(&name).is_some()
            && dtc_stdlib::functions::get(&name).is_none()
        {
            Kind::Aggregate
        } else {
            Kind::Function
        };
        let Some(p) = self.use_entry(&name, kind, callee.span) else {
            return arg_taints.into_iter().fold(Taint::default(), Taint::joined);
        };
        if p.risk != RiskVector::default() && kind == Kind::Function && !self.silent {
            self.contribute(p.risk, format!("call `{name}`"), p.reason, callee.span);
        }
        if p.declassifies {
            // Nothing of the arguments survives, not even a parameter's
            // identity: the result does not depend on the data's content in
            // a way that identifies anyone.
            return Taint::default();
        }
        arg_taints.into_iter().fold(Taint::default(), Taint::joined)
    }

    /// Summarises a user function: which parameters reach its result, its
    /// effects and its steps.
    fn summary(&mut self, f: &'a ast::FnDecl) -> FnSummary {
        if let Some(s) = self.summaries.get(&f.name.name) {
            return s.clone();
        }
        if !self.visiting.insert(f.name.name.clone()) {
            // Recursion, reported elsewhere: assume the worst.
            return FnSummary {
                flows: vec![true; f.params.len()],
                effects: BTreeSet::new(),
                steps: 1,
            };
        }
        let saved_scopes = std::mem::take(&mut self.scopes);
        let saved_vars = std::mem::take(&mut self.vars);
        let saved_effects = std::mem::take(&mut self.effects);
        self.scopes.push(HashMap::new());
        for (i, p) in f.params.iter().enumerate() {
            let t = Taint(vec![Origin {
                label: Sensitivity::Param(i),
                field: format!("#{i}"),
                steps: vec![],
            }]);
            self.bind(&p.name.name, t);
        }
        let mut returned = Taint::default();
        let steps = self.block_collect(&f.body, &Cx::default(), &mut returned);
        let mut flows = vec![false; f.params.len()];
        for o in &returned.0 {
            if let Sensitivity::Param(i) = o.label
                && i < flows.len()
            {
                flows[i] = true;
            }
        }
        let summary = FnSummary {
            flows,
            effects: std::mem::replace(&mut self.effects, saved_effects),
            steps,
        };
        self.scopes = saved_scopes;
        self.vars = saved_vars;
        self.visiting.remove(&f.name.name);
        self.summaries.insert(f.name.name.clone(), summary.clone());
        summary
    }

    // ----------------------------------------------------------- statements

    fn block(&mut self, b: &Block, cx: &Cx) -> u64 {
        let mut ignored = Taint::default();
        self.block_collect(b, cx, &mut ignored)
    }

    /// Walks a block, adding what `return` returns to `returned`; returns
    /// the most steps the block takes.
    fn block_collect(&mut self, b: &Block, cx: &Cx, returned: &mut Taint) -> u64 {
        self.scopes.push(HashMap::new());
        let mut steps: u64 = 0;
        for s in &b.stmts {
            steps = steps.saturating_add(self.stmt(s, cx, returned));
        }
        self.scopes.pop();
        steps
    }

    fn stmt(&mut self, s: &Stmt, cx: &Cx, returned: &mut Taint) -> u64 {
        let outer_calls = std::mem::take(&mut self.call_steps);
        let steps = self.stmt_inner(s, cx, returned);
        let calls = std::mem::replace(&mut self.call_steps, outer_calls);
        steps.saturating_add(calls)
    }

    fn stmt_inner(&mut self, s: &Stmt, cx: &Cx, returned: &mut Taint) -> u64 {
        match &s.kind {
            StmtKind::Let { name, value, .. } => {
                let t = self.expr(value, cx).step(
                    self.file,
                    name.span,
                    format!("bound to `{}`", name.name),
                );
                self.bind(&name.name, t);
                1
            }
            StmtKind::Assign { target, value, .. } => {
                let mut t = self.expr(value, cx);
                let (name, key) = match &target.kind {
                    ExprKind::Name(id) => (Some(id.name.clone()), None),
                    ExprKind::Index(base, k) => match &base.kind {
                        ExprKind::Name(id) => (Some(id.name.clone()), Some(k)),
                        _ => (None, None),
                    },
                    _ => (None, None),
                };
                if let Some(k) = key {
                    t.union(self.expr(k, cx));
                }
                if let Some(name) = name {
                    let t = t.step(self.file, target.span, format!("stored in `{name}`"));
                    if let Some(scope) = self
                        .scopes
                        .iter_mut()
                        .rev()
                        .find(|sc| sc.contains_key(&name))
                    {
                        let entry = scope.entry(name).or_default();
                        entry.union(t);
                    } else {
                        self.vars.entry(name).or_default().union(t);
                    }
                }
                1
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond, cx);
                let a = self.block_collect(then, cx, returned);
                let b = otherwise
                    .as_ref()
                    .map_or(0, |o| self.block_collect(o, cx, returned));
                1 + a.max(b)
            }
            StmtKind::IfLet {
                name,
                value,
                then,
                otherwise,
            } => {
                let t = self.expr(value, cx).step(
                    self.file,
                    name.span,
                    format!("bound to `{}`", name.name),
                );
                self.scopes.push(HashMap::new());
                self.bind(&name.name, t);
                let a = self.block_collect(then, cx, returned);
                self.scopes.pop();
                let b = otherwise
                    .as_ref()
                    .map_or(0, |o| self.block_collect(o, cx, returned));
                1 + a.max(b)
            }
            StmtKind::For {
                key,
                value,
                iter,
                body,
            } => {
                let (iterations, key_taint, value_taint) = match iter {
                    ForIter::Range(a, b) => {
                        let n = match (const_int(a), const_int(b)) {
                            (Some(x), Some(y)) => y.saturating_sub(x).max(0) as u64,
                            _ => 0,
                        };
                        (n, Taint::default(), Taint::default())
                    }
                    ForIter::Expr(e) => {
                        let t = self.expr(e, cx);
                        let n = match &e.kind {
                            ExprKind::Name(id) => self.map_max(&id.name),
                            _ => self.defaults.map_max,
                        };
                        (n, t.clone(), t)
                    }
                };
                self.scopes.push(HashMap::new());
                self.bind(&key.name, key_taint);
                if let Some(v) = value {
                    self.bind(&v.name, value_taint);
                }
                let inner = self.block_collect(body, cx, returned);
                self.scopes.pop();
                1 + iterations.saturating_mul(inner)
            }
            StmtKind::EmitLog {
                name,
                fields,
                budget,
            } => {
                self.effects.insert(Effect::EmitsTelemetry);
                for f in fields {
                    let t = self.expr(&f.value, cx);
                    self.sink_log(&name.name, &f.name.name, &t, f.value.span);
                }
                if !self.silent {
                    let (b, defaulted) = match budget {
                        Some(b) => (
                            (
                                const_int(&b.count).unwrap_or(1),
                                match b.per.kind {
                                    ExprKind::Duration(ns) => ns,
                                    _ => self.defaults.emit_budget.1,
                                },
                            ),
                            false,
                        ),
                        None => (self.defaults.emit_budget, true),
                    };
                    self.report.emits.push(ActionUse {
                        name: name.name.clone(),
                        budget: b,
                        defaulted,
                        file: self.file,
                        span: name.span,
                    });
                }
                1
            }
            StmtKind::Trigger {
                action,
                args,
                budget,
            } => {
                let name = action.joined();
                let taints: Vec<Taint> = args.iter().map(|a| self.expr(&a.value, cx)).collect();
                let profile = self.use_entry(&name, Kind::Action, action.span);
                if !self.silent {
                    if let Some(p) = profile {
                        self.contribute(p.risk, format!("trigger `{name}`"), p.reason, action.span);
                        if budget.is_none() && p.risk.cost >= Level::Medium {
                            self.raise(
                                Dimension::Cost,
                                Level::High,
                                format!("trigger `{name}`"),
                                "a costly action with no `limit`: only the policy's default bounds how often it runs".into(),
                                action.span,
                            );
                        }
                    }
                    if taints.iter().any(|t| !t.is_clean()) {
                        self.raise(
                            Dimension::Privacy,
                            Level::Medium,
                            format!("trigger `{name}`"),
                            "personal data is passed to an action, whose output lands in the spool"
                                .into(),
                            action.span,
                        );
                    }
                    let (b, defaulted) = match budget {
                        Some(b) => (
                            (
                                const_int(&b.count).unwrap_or(1),
                                match b.per.kind {
                                    ExprKind::Duration(ns) => ns,
                                    _ => self.defaults.trigger_budget.1,
                                },
                            ),
                            false,
                        ),
                        None => (self.defaults.trigger_budget, true),
                    };
                    self.report.actions.push(ActionUse {
                        name,
                        budget: b,
                        defaulted,
                        file: self.file,
                        span: action.span,
                    });
                }
                1
            }
            StmtKind::Return(Some(e)) => {
                let t = self.expr(e, cx);
                returned.union(t);
                1
            }
            StmtKind::Return(None) | StmtKind::Error => 0,
            StmtKind::Expr(e) => {
                self.expr(e, cx);
                1
            }
        }
    }

    /// The effects of what was just walked; `pure` only when nothing else.
    fn observed_effects(&self) -> Vec<Effect> {
        let impure: Vec<Effect> = self
            .effects
            .iter()
            .copied()
            .filter(|e| *e != Effect::Pure)
            .collect();
        if impure.is_empty() {
            vec![Effect::Pure]
        } else {
            impure
        }
    }

    fn map_max(&self, name: &str) -> u64 {
        self.map_bounds
            .get(name)
            .copied()
            .unwrap_or(self.defaults.map_max)
    }
}

impl Walker<'_> {
    // --------------------------------------------------------------- sinks

    /// Reports personal data reaching egress, with its trail.
    fn leak(
        &mut self,
        code: Code,
        message: String,
        span: Span,
        label: &str,
        taint: &Taint,
        help: &str,
    ) {
        if self.silent || !self.reported.insert((span.start, span.end)) {
            return;
        }
        let Some(origin) = taint.sensitive().next() else {
            return;
        };
        let kind = if origin.label == Sensitivity::Secret {
            "a secret"
        } else {
            "personal data"
        };
        let mut d = Diagnostic::new(
            code,
            message,
            Label::new(
                self.file,
                span,
                format!("{label}: {kind} from `{}`", origin.field),
            ),
        );
        for (file, s, what) in &origin.steps {
            d = d.with_label(Label::new(*file, *s, what.clone()));
        }
        let others: Vec<String> = taint
            .sensitive()
            .skip(1)
            .map(|o| format!("`{}`", o.field))
            .collect();
        if !others.is_empty() {
            d = d.with_note(format!("it also carries {}", others.join(", ")));
        }
        self.diags.push(d.with_help(help.to_string()));
    }

    fn sink_log(&mut self, event: &str, field: &str, t: &Taint, span: Span) {
        if t.is_clean() {
            return;
        }
        self.leak(
            Code::E0601,
            format!("field `{field}` of the emitted `{event}` carries sensitive data"),
            span,
            "leaves the box here",
            t,
            "declassify it first, e.g. `hash(...)`, `mask(...)` or `len(...)`, or leave the field out",
        );
    }

    // ---------------------------------------------------------- machines

    fn type_at(&self, span: Span) -> Option<&str> {
        self.types.get(&(span.start, span.end)).copied()
    }

    fn type_size(&self, ty: &str) -> u64 {
        let t = ty.trim_end_matches('?');
        match t {
            "string" | "bytes" | "dyn" => self.defaults.state_string_max + 24,
            "histogram" => 16 * 8 + 16,
            _ => 8,
        }
    }

    fn written_type_size(&self, t: &ast::TypeExpr) -> u64 {
        match &t.kind {
            ast::TypeExprKind::Named { name, args } if name.name == "map" && args.len() == 2 => {
                self.written_type_size(&args[0]) + self.written_type_size(&args[1]) + 32
            }
            ast::TypeExprKind::Named { name, .. } => self.type_size(&name.name),
            ast::TypeExprKind::Optional(inner) => self.written_type_size(inner) + 8,
            ast::TypeExprKind::Error => 8,
        }
    }

    /// The size of a `var`, and the entries bound for maps.
    fn var_size(&mut self, v: &ast::VarDecl) -> (u64, String) {
        let is_map = matches!(&v.ty, Some(t) if matches!(&t.kind, ast::TypeExprKind::Named { name, .. } if name.name == "map"));
        if is_map {
            let entries = v.max.as_ref().and_then(const_int).map(|n| n.max(0) as u64);
            let n = entries.unwrap_or(self.defaults.map_max);
            self.map_bounds.insert(v.name.name.clone(), n);
            let entry = v.ty.as_ref().map_or(64, |t| self.written_type_size(t));
            let how = match entries {
                Some(_) => format!("map of at most {n} entries × {entry} B"),
                None => format!("map without `max`: the default of {n} entries × {entry} B"),
            };
            (n.saturating_mul(entry), how)
        } else {
            let size = match (&v.ty, &v.init) {
                (Some(t), _) => self.written_type_size(t),
                (None, Some(e)) => self.type_at(e.span).map_or(8, |t| self.type_size(t)),
                _ => 8,
            };
            (size, format!("{size} B"))
        }
    }

    fn machine(&mut self, m: &ast::MachineDecl) {
        if let Some(p) = self.profile("machine", Kind::Processor) {
            self.contribute(
                p.risk,
                format!("machine `{}`", m.name.name),
                p.reason,
                m.name.span,
            );
        }
        self.vars.clear();
        self.map_bounds.clear();
        // Instance size: key, state tag, the largest state, machine vars.
        let mut per_instance: u64 = 64 + 8;
        if let Some(k) = &m.key {
            per_instance += self
                .type_at(k.span)
                .map_or(self.defaults.state_string_max, |t| self.type_size(t));
        }
        let mut largest_state = 0u64;
        for member in &m.members {
            match member {
                MachineMember::State(s) => {
                    let size: u64 = s.vars.iter().map(|v| self.written_type_size(&v.ty)).sum();
                    largest_state = largest_state.max(size);
                }
                MachineMember::Var(v) => per_instance += self.var_size(v).0,
                _ => {}
            }
        }
        per_instance += largest_state;
        let declared = m.max.as_ref().and_then(const_int).map(|n| n.max(0) as u64);
        let instances = if m.key.is_none() {
            1
        } else {
            declared.unwrap_or(self.defaults.machine_max)
        };
        let how = match (m.key.is_some(), declared) {
            (false, _) => format!("one instance × {per_instance} B"),
            (true, Some(n)) => format!("at most {n} instances × {per_instance} B"),
            (true, None) => {
                format!("no `max`: the default of {instances} instances × {per_instance} B")
            }
        };
        self.report.memory.push(MemoryItem {
            what: format!("machine `{}`", m.name.name),
            bytes: instances.saturating_mul(per_instance),
            how,
            file: self.file,
            span: m.name.span,
        });
        // Iterate to a fixed point of what the state variables hold, then
        // walk once more to report.
        self.silent = true;
        for _ in 0..4 {
            let before: Vec<(String, Vec<(String, u8)>)> = sorted_keys(&self.vars);
            self.machine_pass(m, false);
            if sorted_keys(&self.vars) == before {
                break;
            }
        }
        self.silent = false;
        self.machine_pass(m, true);
    }

    fn machine_pass(&mut self, m: &ast::MachineDecl, record: bool) {
        for member in &m.members {
            let (event, guard, body, span, label) = match member {
                MachineMember::On(t) => (
                    Some(t.event.name.clone()),
                    t.guard.as_ref(),
                    t.body.as_ref(),
                    t.event.span,
                    format!("on {}", t.event.name),
                ),
                MachineMember::After(t) => (
                    None,
                    None,
                    t.body.as_ref(),
                    t.from.span,
                    format!("after … in {}", t.from.name),
                ),
                _ => continue,
            };
            self.effects.clear();
            let cx = Cx { event, row: None };
            let mut steps = 1;
            if let Some(g) = guard {
                self.expr(g, &cx);
                steps += 1;
            }
            if let Some(b) = body {
                steps += self.block(b, &cx);
            }
            if record {
                let effects = self.observed_effects();
                self.report.handlers.push(HandlerInfo {
                    name: format!("{} {label}", m.name.name),
                    kind: "transition",
                    effects,
                    max_steps: steps,
                    file: self.file,
                    span,
                });
            }
        }
    }

    fn processor(&mut self, p: &'_ ast::ProcessorDecl) {
        if let Some(prof) = self.profile("processor", Kind::Processor) {
            self.contribute(
                prof.risk,
                format!("processor `{}`", p.name.name),
                prof.reason,
                p.name.span,
            );
        }
        self.vars.clear();
        self.map_bounds.clear();
        let mut total = 0u64;
        let mut hows = Vec::new();
        for member in &p.members {
            if let ProcessorMember::Var(v) = member {
                let (size, how) = self.var_size(v);
                total = total.saturating_add(size);
                hows.push(format!("`{}`: {how}", v.name.name));
            }
        }
        if !hows.is_empty() {
            self.report.memory.push(MemoryItem {
                what: format!("processor `{}` variables", p.name.name),
                bytes: total,
                how: hows.join("; "),
                file: self.file,
                span: p.name.span,
            });
        }
        self.silent = true;
        for _ in 0..4 {
            let before = sorted_keys(&self.vars);
            self.processor_pass(p, false);
            if sorted_keys(&self.vars) == before {
                break;
            }
        }
        self.silent = false;
        self.processor_pass(p, true);
    }

    fn processor_pass(&mut self, p: &ast::ProcessorDecl, record: bool) {
        for member in &p.members {
            let ProcessorMember::Handler(h) = member else {
                continue;
            };
            self.effects.clear();
            let cx = Cx {
                event: Some(h.event.name.clone()),
                row: None,
            };
            let mut steps = 1;
            // The guard may call the processor's own functions, like the body.
            if let Some(g) = &h.guard {
                self.with_local_fns(p, |w| w.expr(g, &cx));
                steps += 1;
            }
            steps += self.with_local_fns(p, |w| w.block(&h.body, &cx));
            if record {
                let effects = self.observed_effects();
                self.report.handlers.push(HandlerInfo {
                    name: format!("{} on {}", p.name.name, h.event.name),
                    kind: "handler",
                    effects,
                    max_steps: steps,
                    file: self.file,
                    span: h.event.span,
                });
            }
        }
    }

    /// Runs `f` with the processor's own functions visible.
    fn with_local_fns<R>(&mut self, p: &ast::ProcessorDecl, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.fns.clone();
        for member in &p.members {
            if let ProcessorMember::Fn(func) = member
                && let Some(decl) = self.root_fn(&p.name.name, &func.name.name)
            {
                self.fns.insert(func.name.name.clone(), decl);
                self.summaries.remove(&func.name.name);
            }
        }
        let out = f(self);
        self.fns = saved;
        out
    }
}

impl<'a> Walker<'a> {
    fn root_fn(&self, processor: &str, name: &str) -> Option<&'a ast::FnDecl> {
        self.root.ast.items.iter().find_map(|i| match i {
            Item::Processor(p) if p.name.name == processor => {
                p.members.iter().find_map(|m| match m {
                    ProcessorMember::Fn(f) if f.name.name == name => Some(f),
                    _ => None,
                })
            }
            _ => None,
        })
    }

    // -------------------------------------------------------------- queries

    fn query(&mut self, q: &ast::QueryDecl) {
        if let Some(p) = self.profile("query", Kind::Processor) {
            self.contribute(
                p.risk,
                format!("query `{}`", q.name.name),
                p.reason,
                q.name.span,
            );
        }
        self.vars.clear();
        self.scopes.clear();
        self.effects.clear();
        let event = q.source.name.clone();
        let mut row: Vec<(String, Taint)> = match self.events.get(&event) {
            Some(schema) => schema
                .fields
                .clone()
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        self.event_field(&event, &f.name, q.source.span),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let mut keys: Vec<(String, Option<u64>, Span)> = Vec::new();
        let mut series: Option<u64> = Some(1);
        let mut window_state = 0u64;
        let mut summarize_span = q.span;
        let mut steps = 1u64;
        for stage in &q.stages {
            steps += 1;
            let cx = Cx {
                event: None,
                row: Some(row.clone()),
            };
            match &stage.kind {
                StageKind::Where(e) | StageKind::Sample(e) => {
                    self.expr(e, &cx);
                }
                StageKind::Limit { .. } | StageKind::Error => {}
                StageKind::Extend(cols) | StageKind::Project(cols) => {
                    let mut out = Vec::new();
                    for c in cols {
                        let name = column_name(c).unwrap_or_default();
                        let t = self.expr(&c.expr, &cx).step(
                            self.file,
                            c.span,
                            format!("column `{name}`"),
                        );
                        out.push((name, t));
                    }
                    if matches!(stage.kind, StageKind::Project(_)) {
                        row = out;
                    } else {
                        for (n, t) in out {
                            row.retain(|(m, _)| *m != n);
                            row.push((n, t));
                        }
                    }
                }
                StageKind::Summarize {
                    aggregates,
                    by,
                    max_series,
                    ..
                } => {
                    summarize_span = stage.span;
                    let declared = max_series
                        .as_ref()
                        .and_then(const_int)
                        .map(|n| n.max(1) as u64);
                    let mut new_row = Vec::new();
                    keys.clear();
                    for c in by {
                        let name = column_name(c).unwrap_or_default();
                        let t = self.expr(&c.expr, &cx).step(
                            self.file,
                            c.span,
                            format!("group key `{name}`"),
                        );
                        let bound = self.key_bound(&c.expr);
                        series = match (series, bound) {
                            (Some(s), Some(b)) => Some(s.saturating_mul(b)),
                            _ => None,
                        };
                        keys.push((name.clone(), bound, c.expr.span));
                        new_row.push((name, t));
                    }
                    let mut per_series =
                        16u64 + by.len() as u64 * (self.defaults.state_string_max + 24);
                    for c in aggregates {
                        let ExprKind::Call { callee, args } = &c.expr.kind else {
                            continue;
                        };
                        let agg = callee.joined();
                        let name = c.name.as_ref().map_or(agg.clone(), |n| n.name.clone());
                        if let Some(p) = self.use_entry(&agg, Kind::Aggregate, callee.span) {
                            self.contribute(
                                p.risk,
                                format!("aggregate `{agg}`"),
                                p.reason,
                                callee.span,
                            );
                        }
                        per_series += aggregate_state_size(&agg);
                        let arg_taint = args.iter().fold(Taint::default(), |acc, a| {
                            acc.joined(self.expr(&a.value, &cx))
                        });
                        let declassified = matches!(agg.as_str(), "count" | "count_if")
                            || self
                                .profile(&agg, Kind::Aggregate)
                                .is_some_and(|p| p.declassifies);
                        let t = if declassified {
                            Taint::default()
                        } else {
                            arg_taint.step(self.file, c.span, format!("aggregated by `{agg}`"))
                        };
                        new_row.push((name, t));
                    }
                    window_state = per_series;
                    row = new_row;
                    if let Some(n) = declared {
                        // A declared maximum bounds every key: past it, new
                        // combinations fold into one overflow series.
                        series = Some(series.map_or(n, |s| s.min(n)).saturating_add(1));
                        for k in &mut keys {
                            k.1.get_or_insert(n);
                        }
                    }
                }
                StageKind::EmitLog(name) => {
                    self.effects.insert(Effect::EmitsTelemetry);
                    for (col, t) in row.clone() {
                        if dtc_stdlib::fields::get(&col).is_none() {
                            self.sink_log(&name.name, &col, &t, stage.span);
                        }
                    }
                }
                StageKind::EmitMetric(name) => {
                    self.effects.insert(Effect::EmitsTelemetry);
                    let key_names: Vec<String> = keys.iter().map(|(n, _, _)| n.clone()).collect();
                    for (col, t) in row.clone() {
                        if t.is_clean() {
                            continue;
                        }
                        let is_label = key_names.contains(&col);
                        let span = if is_label {
                            keys.iter()
                                .find(|(n, _, _)| *n == col)
                                .map_or(stage.span, |k| k.2)
                        } else {
                            stage.span
                        };
                        self.leak(
                            Code::E0602,
                            format!("{} `{col}` of metric `{}` carries sensitive data", if is_label { "label" } else { "value" }, name.value),
                            span,
                            "exported here",
                            &t,
                            if is_label {
                                "group by something that identifies no one, e.g. `extension(fileName)` or `hash(user)`"
                            } else {
                                "aggregate with `count`, `count_if` or `distinct_count`, or declassify the value first"
                            },
                        );
                    }
                    let unbounded: Vec<&(String, Option<u64>, Span)> =
                        keys.iter().filter(|k| k.1.is_none()).collect();
                    if let Some(first) = unbounded.first() {
                        self.raise(
                            Dimension::Cost,
                            Level::High,
                            format!("metric `{}`", name.value),
                            format!(
                                "label `{}` can take any number of values: one series each",
                                first.0
                            ),
                            first.2,
                        );
                        let mut d = Diagnostic::new(
                            Code::W0006,
                            format!("metric `{}` has unbounded label cardinality", name.value),
                            Label::new(self.file, first.2, format!("`{}` can take any number of values", first.0)),
                        )
                        .with_help("bound it: group by a bool or a small set (`severity`), or declassify to a bounded value");
                        for k in unbounded.iter().skip(1) {
                            d = d.with_label(Label::new(
                                self.file,
                                k.2,
                                format!("`{}` is unbounded too", k.0),
                            ));
                        }
                        self.diags.push(d);
                    }
                    self.report.metrics.push(MetricInfo {
                        name: name.value.clone(),
                        labels: key_names,
                        max_series: series,
                        file: self.file,
                        span: name.span,
                    });
                    let n = series.unwrap_or(self.defaults.unbounded_series);
                    // The open window and the one still taking late events.
                    self.report.memory.push(MemoryItem {
                        what: format!("query `{}` windows", q.name.name),
                        bytes: n.saturating_mul(window_state).saturating_mul(2),
                        how: match series {
                            Some(_) => format!("{n} series × {window_state} B × 2 windows"),
                            None => format!("unbounded labels: assumed {n} series × {window_state} B × 2 windows"),
                        },
                        file: self.file,
                        span: summarize_span,
                    });
                }
            }
        }
        let effects = self.observed_effects();
        self.report.handlers.push(HandlerInfo {
            name: q.name.name.clone(),
            kind: "query",
            effects,
            max_steps: steps,
            file: self.file,
            span: q.name.span,
        });
    }

    /// How many values a group key can take, if bounded.
    fn key_bound(&self, e: &Expr) -> Option<u64> {
        match &e.kind {
            ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Str(_) => return Some(1),
            ExprKind::Name(id) if id.name == "severity" => return Some(25),
            _ => {}
        }
        match self.type_at(e.span) {
            Some("bool") => Some(2),
            Some("bool?") => Some(3),
            _ => None,
        }
    }

    // -------------------------------------------------------------- shaping

    fn shaping(&mut self) {
        let mut whole: HashSet<String> = HashSet::new();
        let mut fields: HashSet<(String, String)> = HashSet::new();
        for item in &self.root.ast.items {
            let Item::Shaping(r) = item else { continue };
            match &r.kind {
                ShapingKind::Suppress { target, when: None } => match &target.field {
                    None => {
                        whole.insert(target.event.name.clone());
                    }
                    Some(f) => {
                        fields.insert((target.event.name.clone(), f.name.clone()));
                    }
                },
                ShapingKind::Redact { target, method } => {
                    if let Some(f) = &target.field {
                        let secret = self
                            .events
                            .get(&target.event.name)
                            .and_then(|s| s.fields.iter().find(|x| x.name == f.name))
                            .is_some_and(|x| x.label == Some(Sensitivity::Secret));
                        if secret && method.name == "mask" {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::E0604,
                                    format!(
                                        "`{}.{}` is a secret, and `mask` leaves part of it visible",
                                        target.event.name, f.name
                                    ),
                                    Label::new(
                                        self.file,
                                        method.span,
                                        "shows the last four characters",
                                    ),
                                )
                                .with_help("redact a secret `with drop` (or `with hash`)"),
                            );
                        }
                        fields.insert((target.event.name.clone(), f.name.clone()));
                    }
                }
                _ => {}
            }
        }
        for (event, used_at) in self.referenced.clone() {
            if whole.contains(&event) {
                continue;
            }
            let Some(schema) = self.events.get(&event).cloned() else {
                continue;
            };
            for f in &schema.fields {
                let Some(label) = f.label else { continue };
                if fields.contains(&(event.clone(), f.name.clone())) {
                    continue;
                }
                let kind = if label == Sensitivity::Secret {
                    "@secret"
                } else {
                    "@pii"
                };
                let fix = if label == Sensitivity::Secret {
                    "drop"
                } else {
                    "hash"
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::E0603,
                        format!("`{event}` leaves the box with its {kind} field `{}`", f.name),
                        Label::new(self.file, used_at, format!("this program handles `{event}`")),
                    )
                    .with_label(Label::new(schema.file, f.span, format!("`{}` is {kind}", f.name)))
                    .with_note("the program sees the original event, and the agent forwards it: shaping decides what leaves")
                    .with_help(format!("add `redact {event}.{} with {fix}`, or `suppress {event}`", f.name)),
                );
            }
        }
    }

    fn finish_memory(&mut self) {
        if self
            .report
            .actions
            .iter()
            .any(|a| a.name == "flight_recorder.snapshot")
        {
            let n = self.defaults.flight_recorder_events;
            let span = self
                .report
                .actions
                .iter()
                .find(|a| a.name == "flight_recorder.snapshot")
                .map_or(Span::default(), |a| a.span);
            self.report.memory.push(MemoryItem {
                what: "flight recorder".into(),
                bytes: n.saturating_mul(1024),
                how: format!("the last {n} events × 1 KiB"),
                file: self.file,
                span,
            });
        }
        let total: u64 = self
            .report
            .memory
            .iter()
            .fold(0u64, |a, m| a.saturating_add(m.bytes));
        self.report.memory_total = total;
        if total > crate::MEMORY_CEILING
            && let Some(m) = self.report.memory.iter().max_by_key(|m| m.bytes)
        {
            self.diags.push(
                Diagnostic::new(
                    Code::E0502,
                    format!(
                        "the program may hold {} of state, more than the {} any agent allows",
                        crate::render::bytes(total),
                        crate::render::bytes(crate::MEMORY_CEILING)
                    ),
                    Label::new(m.file, m.span, format!("{}: {}", m.what, m.how)),
                )
                .with_help("declare smaller `max` bounds, or bound the metric's labels"),
            );
        }
        let level = if total > 256 << 20 {
            Level::High
        } else if total > 16 << 20 {
            Level::Medium
        } else {
            Level::None
        };
        if level > Level::None {
            let biggest = self
                .report
                .memory
                .iter()
                .max_by_key(|m| m.bytes)
                .map(|m| (m.what.clone(), m.span));
            if let Some((what, span)) = biggest {
                self.raise(
                    Dimension::Reliability,
                    level,
                    what,
                    format!(
                        "the program may hold up to {} in memory",
                        crate::render::bytes(total)
                    ),
                    span,
                );
            }
        }
        for h in self.report.handlers.clone() {
            if h.max_steps > 10_000 {
                self.raise(
                    Dimension::Performance,
                    if h.max_steps > 1_000_000 {
                        Level::High
                    } else {
                        Level::Medium
                    },
                    h.name.clone(),
                    format!("up to {} steps for one event", h.max_steps),
                    h.span,
                );
            }
        }
    }
}

fn sorted_keys(vars: &HashMap<String, Taint>) -> Vec<(String, Vec<(String, u8)>)> {
    let mut v: Vec<(String, Vec<(String, u8)>)> =
        vars.iter().map(|(k, t)| (k.clone(), t.key())).collect();
    v.sort();
    v
}

fn aggregate_state_size(name: &str) -> u64 {
    match name {
        "histogram" => 16 * 8 + 16,
        "percentile" => 2_048,
        "distinct_count" => 4_096,
        "avg" => 16,
        "min" | "max" => 8 + 1_048,
        _ => 8,
    }
}

fn column_name(c: &ast::Column) -> Option<String> {
    if let Some(n) = &c.name {
        return Some(n.name.clone());
    }
    match &c.expr.kind {
        ExprKind::Name(id) => Some(id.name.clone()),
        ExprKind::Field(_, f) => Some(f.name.clone()),
        ExprKind::Call { callee, .. } => callee.segments.last().map(|s| s.name.clone()),
        _ => None,
    }
}

fn shaped_event(r: &ast::ShapingRule) -> &ast::Ident {
    match &r.kind {
        ShapingKind::Suppress { target, .. } | ShapingKind::Redact { target, .. } => &target.event,
        ShapingKind::Sample { event, .. } | ShapingKind::Limit { event, .. } => event,
    }
}

pub fn const_int(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(v) | ExprKind::Size(v) => Some(*v),
        ExprKind::Unary(ast::UnaryOp::Neg, inner) => const_int(inner).and_then(i64::checked_neg),
        _ => None,
    }
}

/// Calls `f` on the callee of every call in the block.
fn calls_in_block(b: &Block, f: &mut impl FnMut(&ast::Path)) {
    for s in &b.stmts {
        match &s.kind {
            StmtKind::Let { value, .. } | StmtKind::Return(Some(value)) | StmtKind::Expr(value) => {
                calls_in_expr(value, f)
            }
            StmtKind::Assign { target, value, .. } => {
                calls_in_expr(target, f);
                calls_in_expr(value, f);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                calls_in_expr(cond, f);
                calls_in_block(then, f);
                if let Some(o) = otherwise {
                    calls_in_block(o, f);
                }
            }
            StmtKind::IfLet {
                value,
                then,
                otherwise,
                ..
            } => {
                calls_in_expr(value, f);
                calls_in_block(then, f);
                if let Some(o) = otherwise {
                    calls_in_block(o, f);
                }
            }
            StmtKind::For { iter, body, .. } => {
                match iter {
                    ForIter::Range(a, b) => {
                        calls_in_expr(a, f);
                        calls_in_expr(b, f);
                    }
                    ForIter::Expr(e) => calls_in_expr(e, f),
                }
                calls_in_block(body, f);
            }
            StmtKind::EmitLog { fields, .. } => {
                fields.iter().for_each(|x| calls_in_expr(&x.value, f))
            }
            StmtKind::Trigger { args, .. } => args.iter().for_each(|a| calls_in_expr(&a.value, f)),
            StmtKind::Return(None) | StmtKind::Error => {}
        }
    }
}

fn calls_in_expr(e: &Expr, f: &mut impl FnMut(&ast::Path)) {
    match &e.kind {
        ExprKind::Call { callee, args } => {
            f(callee);
            args.iter().for_each(|a| calls_in_expr(&a.value, f));
        }
        ExprKind::Field(a, _) | ExprKind::Unary(_, a) => calls_in_expr(a, f),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            calls_in_expr(a, f);
            calls_in_expr(b, f);
        }
        _ => {}
    }
}

/// A cycle through `start` in the call graph, as (callee, call site) pairs.
fn find_cycle(
    start: &str,
    edges: &HashMap<String, Vec<(String, Span)>>,
) -> Option<Vec<(String, Span)>> {
    let mut stack: Vec<(String, usize)> = vec![(start.to_string(), 0)];
    let mut path: Vec<(String, Span)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some((node, i)) = stack.pop() {
        let out = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        if i < out.len() {
            stack.push((node.clone(), i + 1));
            let (callee, span) = &out[i];
            path.truncate(stack.len() - 1);
            path.push((callee.clone(), *span));
            if callee == start {
                return Some(path);
            }
            if seen.insert(callee.clone()) {
                stack.push((callee.clone(), 0));
            }
        }
    }
    None
}
