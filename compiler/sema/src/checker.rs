//! The per-unit checker: its state (visible names, scopes, diagnostics) and
//! the order in which a unit's items are checked.

use std::collections::HashMap;

use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Span};
use dtc_stdlib::{Ty, probes};
use dtc_syntax::ast::{self, Item};

use crate::Unit;
use crate::env::{self, EventInfo, Events, FieldInfo, TypePlace};
use crate::metrics::EmittedMetric;
use crate::suggest;

/// A user function's signature.
#[derive(Debug, Clone)]
pub struct FnInfo {
    pub params: Vec<(String, Ty)>,
    pub ret: Ty,
    pub span: Span,
}

/// A machine state and its variables.
#[derive(Debug, Clone)]
pub struct StateInfo {
    pub name: String,
    pub span: Span,
    /// Name, type, and whether it has a default.
    pub vars: Vec<(String, Ty, bool)>,
}

/// What other items need to know of a machine.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub span: Span,
    pub states: Vec<StateInfo>,
    pub key: Option<ast::Expr>,
}

impl MachineInfo {
    pub fn state(&self, name: &str) -> Option<&StateInfo> {
        self.states.iter().find(|s| s.name == name)
    }
}

/// A name in a local scope.
#[derive(Debug, Clone)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
    pub readable: bool,
    /// `None` when assignable; otherwise why not, for the diagnostic.
    pub read_only: Option<&'static str>,
    pub used: bool,
    /// Warn when never read.
    pub warn_unused: bool,
}

/// A column of a query row (or of the event in a shaping condition).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
}

/// Where an expression is checked.
#[derive(Debug, Clone, Default)]
pub struct Cx {
    /// The event `event` refers to, by index into the event table.
    pub event: Option<usize>,
    /// Why `event` is not available here, when it is not.
    pub no_event: &'static str,
    /// Columns readable by bare name (queries and shaping conditions).
    pub row: Option<Vec<Column>>,
    /// The event a query row comes from, for `machine is State`, when
    /// `event` itself is not in scope.
    pub source: Option<usize>,
    /// The handler's event is unknown (already reported): `event.x` reads
    /// are not reported again.
    pub unknown_event: bool,
    /// The transition names a state that is unknown (already reported), so
    /// the variables in scope are not known: unknown names are not
    /// reported.
    pub unknown_state: bool,
}

pub struct Checker<'a> {
    pub file: FileId,
    pub unit: &'a Unit,
    pub unit_index: usize,
    pub units: &'a [Unit],
    pub events: &'a mut Events,
    /// Events visible in this unit by name: its own, imported and implied.
    pub visible: HashMap<String, usize>,
    pub probes: HashMap<String, Span>,
    pub fns: HashMap<String, FnInfo>,
    pub machines: HashMap<String, MachineInfo>,
    pub scopes: Vec<Vec<Local>>,
    /// Names that exist but are out of reach here, each with why (a label)
    /// and what to do (a help): the processor's variables in its functions,
    /// the state variables of a transition that leaves several states.
    pub hidden: Vec<(String, &'static str, &'static str)>,
    /// In a transition body: the variables of the state it leaves that may
    /// still be unset at this point (the initial state's variables without a
    /// default, until an `=` on every path sets them), by name and the span
    /// of their `Local`, so a shadowing binding is not mistaken for one.
    pub maybe_unset: Vec<(String, Span)>,
    /// The metrics this unit's queries export, for `check_metric_names`.
    pub metrics: Vec<EmittedMetric>,
    pub diags: Vec<Diagnostic>,
    pub types: Vec<(FileId, Span, String)>,
    /// The same types as values, for lowering.
    pub expr_types: std::collections::HashMap<(FileId, Span), Ty>,
}

impl<'a> Checker<'a> {
    pub fn new(
        unit: &'a Unit,
        unit_index: usize,
        units: &'a [Unit],
        events: &'a mut Events,
    ) -> Checker<'a> {
        Checker {
            file: unit.file,
            unit,
            unit_index,
            units,
            events,
            visible: HashMap::new(),
            probes: HashMap::new(),
            fns: HashMap::new(),
            machines: HashMap::new(),
            scopes: Vec::new(),
            hidden: Vec::new(),
            maybe_unset: Vec::new(),
            metrics: Vec::new(),
            diags: Vec::new(),
            types: Vec::new(),
            expr_types: std::collections::HashMap::new(),
        }
    }

    pub fn label(&self, span: Span, message: impl Into<String>) -> Label {
        Label::new(self.file, span, message)
    }

    pub fn error(
        &mut self,
        code: Code,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(code, message, Label::new(self.file, span, label));
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// The whole unit, in dependency order.
    pub fn check_unit(&mut self) {
        self.bind_events();
        self.collect_declarations();
        let items = &self.unit.ast.items;
        for item in items {
            match item {
                Item::Event(decl) => self.check_event_source(decl),
                Item::Fn(f) => {
                    // A second function of the same name (already reported)
                    // is checked against its own signature.
                    let own = self
                        .fns
                        .get(&f.name.name)
                        .filter(|info| info.span == f.name.span)
                        .cloned();
                    let info = own.unwrap_or_else(|| self.fn_signature(f));
                    self.check_fn(f, Some(info));
                }
                _ => {}
            }
        }
        for item in items {
            match item {
                Item::Machine(m) => self.check_machine(m),
                Item::Processor(p) => self.check_processor(p),
                _ => {}
            }
        }
        for item in items {
            if let Item::Shaping(rule) = item {
                self.check_shaping(rule);
            }
        }
        self.check_shaping_redundancy();
        let queries: Vec<&ast::QueryDecl> = items
            .iter()
            .filter_map(|i| {
                if let Item::Query(q) = i {
                    Some(q)
                } else {
                    None
                }
            })
            .collect();
        self.check_queries(&queries);
        self.check_metric_names();
        self.check_feedback();
    }

    /// Makes this unit's own and imported events visible.
    fn bind_events(&mut self) {
        self.visible = self.events.declared[self.unit_index].clone();
        // Each event bound here, own ones first, with the span of the import
        // that brought it (none for own ones), for `check_imported_ids`.
        let mut own: Vec<usize> = self.visible.values().copied().collect();
        own.sort_unstable();
        let mut bound: Vec<(usize, Option<Span>)> = own.into_iter().map(|i| (i, None)).collect();
        let imports = self.unit.ast.items.iter().filter_map(|i| {
            if let Item::Import(imp) = i {
                Some(imp)
            } else {
                None
            }
        });
        for (import, target) in imports.zip(self.unit.imports.iter()) {
            let Some(target) = target else { continue };
            let Some(target_index) = self.units.iter().position(|u| u.file == *target) else {
                continue;
            };
            let theirs = self.events.declared[target_index].clone();
            let wanted: Vec<(String, Span)> = match &import.names {
                None => theirs
                    .keys()
                    .map(|k| (k.clone(), import.path.span))
                    .collect(),
                Some(names) => {
                    let mut v = Vec::new();
                    for n in names {
                        if theirs.contains_key(&n.name) {
                            v.push((n.name.clone(), n.span));
                        } else {
                            let mut d = Diagnostic::new(
                                Code::E0211,
                                format!(
                                    "`{}` does not declare an event `{}`",
                                    import.path.value, n.name
                                ),
                                self.label(n.span, "not in the imported file"),
                            );
                            if let Some(h) = suggest::help(&n.name, theirs.keys()) {
                                d = d.with_help(h);
                            } else {
                                d = d.with_help("only `event` declarations can be imported");
                            }
                            self.push(d);
                        }
                    }
                    v
                }
            };
            for (name, span) in wanted {
                let idx = theirs[&name];
                match self.visible.get(&name) {
                    Some(&existing) if existing != idx => {
                        let prev = &self.events.all[existing];
                        let d = Diagnostic::new(
                            Code::E0208,
                            format!("event `{name}` is declared twice"),
                            self.label(span, "imported here"),
                        )
                        .with_label(Label::new(prev.file, prev.span, "also declared here"))
                        .with_help("import it by name with `import { ... } from`, leaving this one out, or rename one");
                        self.push(d);
                    }
                    Some(_) => {}
                    None => {
                        self.visible.insert(name, idx);
                        bound.push((idx, Some(span)));
                    }
                }
            }
        }
        self.check_imported_ids(&bound);
    }

    /// Durable IDs must be unique among the events a unit sees. A unit's
    /// own clashes are reported once for its file by `env::collect_events`;
    /// here, those involving an imported event.
    fn check_imported_ids(&mut self, bound: &[(usize, Option<Span>)]) {
        let mut first: HashMap<String, usize> = HashMap::new();
        for &(idx, import) in bound {
            let Some((wire, _)) = self.events.all[idx].wire.clone() else {
                continue;
            };
            if wire.is_empty() {
                continue;
            }
            let Some(&prev) = first.get(&wire) else {
                first.insert(wire, idx);
                continue;
            };
            // Own events come first, so a clash between two own events (the
            // later without an import) is left to `collect_events`.
            let Some(at) = import else {
                continue;
            };
            let (this, other) = (&self.events.all[idx], &self.events.all[prev]);
            let id_label = |e: &EventInfo, what: String| {
                e.wire
                    .as_ref()
                    .map(|(_, span)| Label::new(e.file, *span, what))
            };
            let mut d = Diagnostic::new(
                Code::E0208,
                format!("two events have the durable ID `{wire}`"),
                self.label(at, format!("imports `{}`", this.name)),
            );
            d.secondary
                .extend(id_label(this, format!("`{}` has this ID", this.name)));
            d.secondary
                .extend(id_label(other, format!("`{}` has it too", other.name)));
            d = d.with_help(
                "each event needs its own durable ID: give one of them another with `= \"...\"`, or leave one out with `import { ... } from`",
            );
            self.push(d);
        }
    }

    /// Probes, functions, machines, queries and processors: names first, so
    /// that items can refer to each other in any order.
    fn collect_declarations(&mut self) {
        let mut program_names: HashMap<String, Span> = HashMap::new();
        for item in &self.unit.ast.items {
            match item {
                Item::Probe(p) => {
                    if let Some(prev) = self.probes.get(&p.name.name) {
                        let d = env::duplicate(self.file, "probe", &p.name, *prev);
                        self.push(d);
                        continue;
                    }
                    self.probes.insert(p.name.name.clone(), p.name.span);
                    self.check_probe(p);
                }
                Item::Fn(_) | Item::Machine(_) | Item::Query(_) | Item::Processor(_) => {
                    let Some(name) = item.name() else { continue };
                    if let Some(prev) = program_names.get(&name.name) {
                        let what = match item {
                            Item::Fn(_) => "function",
                            Item::Machine(_) => "machine",
                            Item::Query(_) => "query",
                            _ => "processor",
                        };
                        let d = env::duplicate(self.file, what, name, *prev);
                        self.push(d);
                        continue;
                    }
                    program_names.insert(name.name.clone(), name.span);
                    match item {
                        Item::Fn(f) => {
                            let info = self.fn_signature(f);
                            self.fns.insert(f.name.name.clone(), info);
                        }
                        Item::Machine(m) => {
                            let info = self.machine_info(m);
                            self.machines.insert(m.name.name.clone(), info);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }

    pub fn fn_signature(&mut self, f: &ast::FnDecl) -> FnInfo {
        let mut params: Vec<(String, Ty)> = Vec::new();
        for (i, p) in f.params.iter().enumerate() {
            let ty = self.resolve_type(&p.ty, TypePlace::Other);
            // A repeated parameter is reported but kept, so that calls are
            // checked against the number of parameters written.
            if let Some(prev) = f.params[..i].iter().find(|q| q.name.name == p.name.name) {
                let d = env::duplicate(self.file, "parameter", &p.name, prev.name.span);
                self.push(d);
            }
            params.push((p.name.name.clone(), ty));
        }
        let ret = match &f.ret {
            Some(t) => self.resolve_type(t, TypePlace::Other),
            None => Ty::Error,
        };
        FnInfo {
            params,
            ret,
            span: f.name.span,
        }
    }

    pub fn resolve_type(&mut self, t: &ast::TypeExpr, place: TypePlace) -> Ty {
        env::resolve_type(self.file, t, place, &mut self.diags)
    }

    fn check_probe(&mut self, p: &ast::ProbeDecl) {
        let kind = p.kind.joined();
        let Some(sig) = probes::get(&kind) else {
            let mut d = Diagnostic::new(
                Code::E0206,
                format!("unknown probe kind `{kind}`"),
                self.label(p.kind.span, "not a probe kind"),
            );
            d = match suggest::did_you_mean(&kind, probes::PROBES.iter().map(|s| s.name)) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "the probe kinds are {}",
                    probes::PROBES
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            self.push(d);
            return;
        };
        let cx = Cx {
            no_event: "a probe's arguments are fixed when it is declared",
            ..Cx::default()
        };
        self.check_args(
            &format!("probe kind `{kind}`"),
            &crate::expr::Params::Catalog(sig.params),
            &p.args,
            p.kind.span,
            &cx,
        );
        for arg in &p.args {
            if !is_literal(&arg.value) {
                let span = arg.value.span;
                self.error(
                    Code::E0319,
                    "probe arguments must be literals",
                    span,
                    "computed value",
                )
                .help = Some(
                    "write the value itself: a probe is attached before any event is seen".into(),
                );
            }
        }
    }

    fn check_event_source(&mut self, decl: &ast::EventDecl) {
        if let Some(source) = &decl.source
            && !self.probes.contains_key(&source.name)
        {
            let mut d = Diagnostic::new(
                Code::E0212,
                format!("unknown probe `{}`", source.name),
                self.label(source.span, "no probe has this name"),
            );
            d = match suggest::help(&source.name, self.probes.keys()) {
                Some(h) => d.with_help(h),
                None => d.with_help(format!(
                    "declare it, e.g. `probe {} = uprobe(binary: \"/path\", symbol: \"fn\")`, or leave out `from` to read OpenTelemetry logs",
                    source.name
                )),
            };
            self.push(d);
        }
    }

    // ------------------------------------------------------------- scopes

    pub fn push_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    /// Pops a scope, warning about `let` bindings nobody read.
    pub fn pop_scope(&mut self) {
        let Some(scope) = self.scopes.pop() else {
            return;
        };
        for local in scope {
            if local.warn_unused && !local.used && !local.name.starts_with('_') {
                let d = Diagnostic::new(
                    Code::W0005,
                    format!("unused variable `{}`", local.name),
                    self.label(local.span, "never read"),
                )
                .with_help(format!(
                    "remove it, or name it `_{}` if that is intended",
                    local.name
                ));
                self.push(d);
            }
        }
    }

    pub fn declare(&mut self, local: Local) {
        if self.scopes.is_empty() {
            self.push_scope();
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(local);
        }
    }

    /// The innermost local with this name.
    pub fn lookup(&mut self, name: &str) -> Option<&mut Local> {
        self.scopes
            .iter_mut()
            .rev()
            .flat_map(|s| s.iter_mut().rev())
            .find(|l| l.name == name)
    }

    pub fn local_names(&self) -> Vec<String> {
        self.scopes
            .iter()
            .flatten()
            .filter(|l| l.readable)
            .map(|l| l.name.clone())
            .collect()
    }

    // ------------------------------------------------------------- events

    pub fn event_index(&self, name: &str) -> Option<usize> {
        self.visible.get(name).copied()
    }

    pub fn event(&self, idx: usize) -> &EventInfo {
        &self.events.all[idx]
    }

    /// Reports an unknown event name.
    /// Whether a name belongs to a declaration the parser could not read,
    /// so its uses are not reported again.
    pub fn unparsed(&self, name: &str) -> bool {
        self.unit.ast.unparsed_names.iter().any(|n| n == name)
    }

    pub fn unknown_event(&mut self, name: &ast::Ident) {
        if self.unparsed(&name.name) {
            return;
        }
        let mut in_unlisted: Option<String> = None;
        let imports = self.unit.ast.items.iter().filter_map(|i| {
            if let Item::Import(imp) = i {
                Some(imp)
            } else {
                None
            }
        });
        for (import, target) in imports.zip(self.unit.imports.iter()) {
            let listed = import
                .names
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n.name == name.name));
            let Some(target) = target else {
                // The import that failed (already reported) may declare it.
                if listed {
                    return;
                }
                continue;
            };
            let declares = self
                .units
                .iter()
                .position(|u| u.file == *target)
                .is_some_and(|i| self.events.declared[i].contains_key(&name.name));
            if declares && !listed {
                in_unlisted = Some(import.path.value.clone());
            }
        }
        let mut d = Diagnostic::new(
            Code::E0201,
            format!("unknown event `{}`", name.name),
            self.label(name.span, "no event has this name"),
        );
        d = match (in_unlisted, suggest::help(&name.name, self.visible.keys())) {
            (Some(path), _) => d.with_help(format!(
                "`{path}` declares it, but the import leaves it out: add it to `import {{ ... }} from \"{path}\"`"
            )),
            (None, Some(h)) => d.with_help(h),
            (None, None) => d.with_help(format!(
                "declare it with `event {} {{ ... }}`, or import the schema that declares it",
                name.name
            )),
        };
        self.push(d);
    }

    /// Looks an event up by name, reporting it when unknown.
    pub fn resolve_event(&mut self, name: &ast::Ident) -> Option<usize> {
        let found = self.event_index(&name.name);
        if found.is_none() {
            self.unknown_event(name);
        }
        found
    }

    /// Records the schema an `emit log` gives an undeclared event, or checks
    /// the emit against the schema it already has.
    pub fn emitted_log(&mut self, name: &ast::Ident, fields: Vec<(String, Ty, Span)>, span: Span) {
        match self.event_index(&name.name) {
            Some(idx) => {
                let info = self.events.all[idx].clone();
                self.check_emit_against(&info, &fields, span);
            }
            None => {
                if let Some(&(ref f, _, s)) = fields
                    .iter()
                    .find(|(_, t, _)| matches!(t, Ty::Histogram | Ty::Map(..) | Ty::None))
                {
                    let f = f.clone();
                    self.error(
                        Code::E0301,
                        format!("field `{f}` cannot be part of a log"),
                        s,
                        "a log field is a single value",
                    )
                    .help = Some("emit histograms as metrics with `emit metric`".into());
                }
                let idx = self.events.all.len();
                self.events.all.push(EventInfo {
                    name: name.name.clone(),
                    file: self.file,
                    span: name.span,
                    fields: fields
                        .into_iter()
                        .map(|(name, ty, span)| FieldInfo { name, ty, span })
                        .collect(),
                    implied: true,
                    wire: None,
                });
                self.visible.insert(name.name.clone(), idx);
            }
        }
    }

    fn check_emit_against(&mut self, info: &EventInfo, fields: &[(String, Ty, Span)], span: Span) {
        let origin = if info.implied {
            "its first emit"
        } else {
            "its schema"
        };
        let missing: Vec<&FieldInfo> = info
            .fields
            .iter()
            .filter(|f| !f.ty.is_optional() && !fields.iter().any(|(n, _, _)| *n == f.name))
            .collect();
        let missing_names: Vec<String> = missing.iter().map(|f| format!("`{}`", f.name)).collect();
        let n_unknown = fields
            .iter()
            .filter(|(f, _, _)| info.field(f).is_none())
            .count();
        for (f, ty, fspan) in fields {
            match info.field(f) {
                None => {
                    let mut d = Diagnostic::new(
                        Code::E0314,
                        format!("`{}` has no field `{f}`", info.name),
                        self.label(*fspan, format!("not in {origin}")),
                    )
                    .with_label(Label::new(
                        info.file,
                        info.span,
                        format!("`{}` is defined here", info.name),
                    ));
                    if let Some(h) = suggest::help(f, info.fields.iter().map(|f| f.name.as_str())) {
                        d = d.with_help(h);
                    } else if !missing.is_empty() && n_unknown >= missing.len() {
                        // Probably a renamed field: say which ones are not
                        // given here instead of a second error.
                        d = d.with_help(format!(
                            "the fields not given are {}",
                            missing_names.join(", ")
                        ));
                    }
                    self.push(d);
                }
                Some(expected) if !expected.ty.accepts(ty) => {
                    let mut d = Diagnostic::new(
                        Code::E0301,
                        format!(
                            "field `{f}` of `{}` is `{}`, found `{ty}`",
                            info.name, expected.ty
                        ),
                        self.label(*fspan, format!("this is `{ty}`")),
                    )
                    .with_label(Label::new(
                        info.file,
                        expected.span,
                        format!("declared as `{}` here", expected.ty),
                    ));
                    if let Some(h) = crate::expr::mismatch_help(&expected.ty, ty) {
                        d = d.with_help(h);
                    }
                    self.push(d);
                }
                _ => {}
            }
        }
        // Missing fields as many as the unknown ones were reported with
        // them, as likely misspellings.
        if !missing.is_empty() && n_unknown < missing.len() {
            let names = missing_names;
            let d = Diagnostic::new(
                Code::E0314,
                format!("the emitted `{}` lacks {}", info.name, names.join(", ")),
                self.label(span, format!("missing {}", names.join(", "))),
            )
            .with_label(Label::new(info.file, info.span, format!("`{}` is defined here", info.name)))
            .with_help(if info.implied {
                "every emit of an undeclared event must give the same fields; declare the event to make some optional"
            } else {
                "give every field that is not optional (`T?`)"
            });
            self.push(d);
        }
    }

    /// The columns of an event: its fields and the standard fields.
    pub fn event_columns(&self, idx: usize) -> Vec<Column> {
        let mut cols: Vec<Column> = self.events.all[idx]
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                ty: f.ty.clone(),
            })
            .collect();
        for f in dtc_stdlib::fields::STANDARD_FIELDS {
            if !cols.iter().any(|c| c.name == f.name) {
                cols.push(Column {
                    name: f.name.to_string(),
                    ty: dtc_stdlib::fields::ty(f.name).unwrap_or(Ty::Error),
                });
            }
        }
        cols
    }
}

/// Whether an expression is a literal (a negated number counts).
pub fn is_literal(e: &ast::Expr) -> bool {
    use ast::ExprKind as K;
    match &e.kind {
        K::Int(_)
        | K::Float(_)
        | K::Str(_)
        | K::Bool(_)
        | K::Duration(_)
        | K::Size(_)
        | K::Percent(_)
        | K::Error => true,
        K::Unary(ast::UnaryOp::Neg, inner) => matches!(inner.kind, K::Int(_) | K::Float(_)),
        _ => false,
    }
}

/// The value of a constant int expression.
pub fn const_int(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ast::ExprKind::Int(v) | ast::ExprKind::Size(v) => Some(*v),
        ast::ExprKind::Unary(ast::UnaryOp::Neg, inner) => {
            const_int(inner).and_then(i64::checked_neg)
        }
        _ => None,
    }
}
