//! Checking items: machines (states, transitions, timeouts, keys,
//! reachability), processors (variables, functions, handlers), stream
//! shaping rules, and query pipelines (row types through each stage).

use std::collections::{HashMap, HashSet, VecDeque};

use dtc_diagnostics::{Code, Diagnostic, Span};
use dtc_stdlib::{Ty, aggregates, redaction};
use dtc_syntax::ast::{
    self, Column as AstColumn, ExprKind, Item, MachineDecl, MachineMember, ProcessorDecl,
    ProcessorMember, QueryDecl, ShapingKind, ShapingRule, StageKind, VarDecl,
};

use crate::checker::{Checker, Column, Cx, Local, MachineInfo, StateInfo, const_int, is_literal};
use crate::env::{self, TypePlace};
use crate::expr::Params;
use crate::stmt::{Body, assigned};
use crate::suggest;

impl Checker<'_> {
    // ------------------------------------------------------------ machines

    pub fn machine_info(&mut self, m: &MachineDecl) -> MachineInfo {
        let mut states: Vec<StateInfo> = Vec::new();
        for member in &m.members {
            let MachineMember::State(s) = member else {
                continue;
            };
            if let Some(prev) = states.iter().find(|p| p.name == s.name.name) {
                let d = env::duplicate(self.file, "state", &s.name, prev.span);
                self.push(d);
                continue;
            }
            let mut vars: Vec<(String, Ty, bool)> = Vec::new();
            for v in &s.vars {
                let ty = self.resolve_type(&v.ty, TypePlace::Field);
                if vars.iter().any(|(n, _, _)| *n == v.name.name) {
                    let d = env::duplicate(self.file, "state variable", &v.name, v.name.span);
                    self.push(d);
                    continue;
                }
                vars.push((v.name.name.clone(), ty, v.default.is_some()));
            }
            states.push(StateInfo {
                name: s.name.name.clone(),
                span: s.name.span,
                vars,
            });
        }
        MachineInfo {
            span: m.name.span,
            states,
            key: m.key.clone(),
        }
    }

    /// A `var` of a machine or processor; `None` if it is a duplicate.
    fn var_decl(&mut self, v: &VarDecl, seen: &[Local]) -> Option<Local> {
        if let Some(prev) = seen.iter().find(|l| l.name == v.name.name) {
            let d = env::duplicate(self.file, "variable", &v.name, prev.span);
            self.push(d);
            return None;
        }
        let cx = Cx {
            no_event: "a variable's initial value is computed before any event arrives",
            ..Cx::default()
        };
        let declared =
            v.ty.as_ref()
                .map(|t| self.resolve_type(t, TypePlace::Variable));
        let init_ty = v.init.as_ref().map(|e| self.expr(e, &cx));
        let ty = match (declared, init_ty) {
            (Some(d), Some(i)) => {
                // A map with a value is reported once, below.
                if let Some(init) = &v.init
                    && !d.accepts(&i)
                    && !matches!(d, Ty::Map(..))
                {
                    let help = crate::expr::mismatch_help(&d, &i);
                    self.error(
                        Code::E0301,
                        format!("`{}` is declared `{d}` but starts as `{i}`", v.name.name),
                        init.span,
                        format!("this is `{i}`"),
                    )
                    .help = help;
                }
                d
            }
            (Some(d), None) => {
                if !matches!(d, Ty::Map(..) | Ty::Optional(_) | Ty::Error) {
                    self.error(
                        Code::E0301,
                        format!("variable `{}` has no initial value", v.name.name),
                        v.name.span,
                        "starts with no value",
                    )
                    .help = Some(format!(
                        "give it one, e.g. `var {}: {d} = ...`, or make it optional: `{d}?`",
                        v.name.name
                    ));
                }
                d
            }
            (None, Some(i)) => {
                if i == Ty::None {
                    self.error(
                        Code::E0301,
                        "cannot tell the type of `none`",
                        v.name.span,
                        "`none` of what?",
                    )
                    .help = Some(format!(
                        "declare the type: `var {}: int? = none`",
                        v.name.name
                    ));
                }
                i
            }
            (None, None) => {
                self.error(
                    Code::E0301,
                    format!("variable `{}` has neither a type nor a value", v.name.name),
                    v.name.span,
                    "cannot tell its type",
                )
                .help = Some(format!("write `var {}: int = 0`", v.name.name));
                Ty::Error
            }
        };
        if let (Ty::Map(..), Some(init)) = (&ty, &v.init) {
            self.error(
                Code::E0219,
                "a map starts empty",
                init.span,
                "no initial value allowed",
            )
            .help = Some("remove `= ...`".into());
        }
        if let Some(max) = &v.max {
            if !matches!(ty, Ty::Map(..) | Ty::Error) {
                self.error(
                    Code::E0219,
                    "only a map takes `max`",
                    max.span,
                    "this variable holds one value",
                )
                .help = Some("remove `max ...`".into());
            } else {
                self.positive_count(max, "the maximum number of entries");
            }
        }
        Some(Local {
            name: v.name.name.clone(),
            ty,
            span: v.name.span,
            readable: true,
            read_only: None,
            used: true,
            warn_unused: false,
        })
    }

    fn positive_count(&mut self, e: &ast::Expr, what: &str) {
        let ty = self.expect(e, &Cx::default(), &Ty::Int, what);
        match const_int(e) {
            // An expression already reported is not reported again.
            None if !matches!(e.kind, ExprKind::Error)
                && !ty.is_error()
                && Ty::Int.accepts(&ty) =>
            {
                self.error(
                    Code::E0319,
                    format!("{what} must be a constant"),
                    e.span,
                    "computed at run time",
                )
                .help = Some("write the number itself, e.g. `max 10_000`".into());
            }
            Some(n) if n <= 0 => {
                self.error(
                    Code::E0320,
                    format!("{what} must be at least 1, found {n}"),
                    e.span,
                    "too small",
                );
            }
            _ => {}
        }
    }

    pub fn check_machine(&mut self, m: &MachineDecl) {
        // A second machine of the same name (already reported) is checked
        // with its own states.
        let info = match self.machines.get(&m.name.name) {
            Some(info) if info.span == m.name.span => info.clone(),
            _ => self.machine_info(m),
        };
        if info.states.is_empty() {
            self.error(
                Code::E0220,
                format!("machine `{}` declares no states", m.name.name),
                m.name.span,
                "a machine needs states",
            )
            .help = Some("declare its initial state first, e.g. `state Idle`".into());
        }
        if let Some(max) = &m.max {
            self.positive_count(max, "the maximum number of instances");
        }
        for member in &m.members {
            if let MachineMember::State(s) = member {
                for v in &s.vars {
                    if let Some(default) = &v.default {
                        let ty = info
                            .state(&s.name.name)
                            .and_then(|st| st.vars.iter().find(|x| x.0 == v.name.name))
                            .map_or(Ty::Error, |x| x.1.clone());
                        let cx = Cx {
                            no_event: "a default is computed before any event arrives",
                            ..Cx::default()
                        };
                        self.expect(
                            default,
                            &cx,
                            &ty,
                            &format!("the default of `{}`", v.name.name),
                        );
                    }
                }
            }
        }
        let mut vars: Vec<Local> = Vec::new();
        for member in &m.members {
            if let MachineMember::Var(v) = member
                && let Some(local) = self.var_decl(v, &vars)
            {
                // A machine variable and a state variable of one name would
                // make every transition of that state ambiguous.
                if let Some(st) = info
                    .states
                    .iter()
                    .find(|st| st.vars.iter().any(|x| x.0 == v.name.name))
                {
                    let d = env::duplicate(self.file, "variable", &v.name, st.span).with_note(
                        format!("state `{}` has a variable `{}` too", st.name, v.name.name),
                    );
                    self.push(d);
                    continue;
                }
                vars.push(local);
            }
        }
        let mut covered: HashMap<(String, String), Span> = HashMap::new();
        for member in &m.members {
            match member {
                MachineMember::On(t) => {
                    let event = self.resolve_event(&t.event);
                    let mut from_ok: Vec<&StateInfo> = Vec::new();
                    for s in &t.from {
                        match info.state(&s.name) {
                            Some(st) => from_ok.push(st),
                            None => self.unknown_state(&m.name.name, &info, s),
                        }
                    }
                    let target = info.state(&t.target.name);
                    if target.is_none() {
                        self.unknown_state(&m.name.name, &info, &t.target);
                    }
                    if let (Some(idx), Some(key)) = (event, &m.key) {
                        self.check_key_on(&m.name.name, key, idx, t.event.span);
                    }
                    // Unreachable transitions: every state it leaves is
                    // already taken by an earlier unguarded transition.
                    let states: Vec<String> = if t.from.is_empty() {
                        info.states.iter().map(|s| s.name.clone()).collect()
                    } else {
                        from_ok.iter().map(|s| s.name.clone()).collect()
                    };
                    let pre_empted: Vec<Span> = states
                        .iter()
                        .filter_map(|s| covered.get(&(t.event.name.clone(), s.clone())).copied())
                        .collect();
                    if !states.is_empty() && pre_empted.len() == states.len() {
                        let d = Diagnostic::new(
                            Code::W0002,
                            format!("this transition on `{}` is never taken", t.event.name),
                            self.label(t.event.span, "never taken"),
                        )
                        .with_label(self.label(
                            pre_empted[0],
                            "this earlier transition, which has no `when`, always goes first",
                        ))
                        .with_help(
                            "move it above the earlier one, or give the earlier one a `when` guard",
                        );
                        self.push(d);
                    }
                    if t.guard.is_none() {
                        for s in &states {
                            covered
                                .entry((t.event.name.clone(), s.clone()))
                                .or_insert(t.event.span);
                        }
                    }
                    let source = if from_ok.len() == 1 && t.from.len() == 1 {
                        Some(from_ok[0].clone())
                    } else {
                        None
                    };
                    // Leaving several states, no state's variables are
                    // readable: say so when one is read.
                    let from_states: Vec<&StateInfo> = if t.from.is_empty() {
                        info.states.iter().collect()
                    } else {
                        from_ok.clone()
                    };
                    if source.is_none() {
                        for st in from_states {
                            for (name, _, _) in &st.vars {
                                self.hidden.push((
                                    name.clone(),
                                    "this transition leaves several states",
                                    "a transition reads the variables of its source state only when it leaves one: write one transition per state (`on E in S -> ...`)",
                                ));
                            }
                        }
                    }
                    let cx = Cx {
                        event,
                        unknown_event: event.is_none(),
                        unknown_state: target.is_none() || from_ok.len() != t.from.len(),
                        ..Cx::default()
                    };
                    self.transition(
                        &m.name.name,
                        &vars,
                        info.states.first().map(|st| st.name.as_str()),
                        source.as_ref(),
                        target,
                        t.from.len() != 1,
                        &t.guard,
                        &t.body,
                        &t.target,
                        &cx,
                    );
                    self.hidden.clear();
                }
                MachineMember::After(t) => {
                    self.positive_duration(&t.after, &Cx::default(), "a timeout");
                    // A shorter timeout in the same state (or an equal one
                    // written first) always fires first.
                    let this = crate::stmt::const_duration(&t.after);
                    let first = m.members.iter().find_map(|other| match other {
                        MachineMember::After(o)
                            if !std::ptr::eq(o, t)
                                && o.from.name == t.from.name
                                && let (Some(a), Some(b)) =
                                    (crate::stmt::const_duration(&o.after), this)
                                && (a < b || (a == b && o.span.start < t.span.start)) =>
                        {
                            Some(o.after.span)
                        }
                        _ => None,
                    });
                    if let Some(first) = first {
                        let d = Diagnostic::new(
                            Code::W0002,
                            format!("this timeout in `{}` never fires", t.from.name),
                            self.label(t.after.span, "never reached"),
                        )
                        .with_label(self.label(first, "this timeout fires first"))
                        .with_help("remove it, or make it shorter than the other one");
                        self.push(d);
                    }
                    let source = info.state(&t.from.name);
                    if source.is_none() {
                        self.unknown_state(&m.name.name, &info, &t.from);
                    }
                    let target = info.state(&t.target.name);
                    if target.is_none() {
                        self.unknown_state(&m.name.name, &info, &t.target);
                    }
                    let cx = Cx {
                        no_event: "a timeout fires on the passing of time, not on an event",
                        unknown_state: source.is_none() || target.is_none(),
                        ..Cx::default()
                    };
                    self.transition(
                        &m.name.name,
                        &vars,
                        info.states.first().map(|st| st.name.as_str()),
                        source,
                        target,
                        false,
                        &None,
                        &t.body,
                        &t.target,
                        &cx,
                    );
                }
                _ => {}
            }
        }
        self.reachability(m, &info);
    }

    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        machine: &str,
        vars: &[Local],
        initial: Option<&str>,
        source: Option<&StateInfo>,
        target: Option<&StateInfo>,
        many_sources: bool,
        guard: &Option<ast::Expr>,
        body: &Option<ast::Block>,
        target_name: &ast::Ident,
        cx: &Cx,
    ) {
        let saved = std::mem::take(&mut self.scopes);
        self.push_scope();
        for v in vars {
            self.declare(v.clone());
        }
        let same = matches!((source, target), (Some(s), Some(t)) if s.name == t.name);
        // An instance starts in the initial state with no transition having
        // set that state's variables: those without a default are unset
        // until this body assigns them.
        let saved_unset = std::mem::take(&mut self.maybe_unset);
        if let Some(s) = source
            && initial == Some(s.name.as_str())
        {
            self.maybe_unset = s
                .vars
                .iter()
                .filter(|(_, _, has_default)| !has_default)
                .map(|(name, _, _)| (name.clone(), s.span))
                .collect();
        }
        if let Some(s) = source {
            for (name, ty, _) in &s.vars {
                let in_target = target.is_some_and(|t| t.vars.iter().any(|(n, _, _)| n == name));
                self.declare(Local {
                    name: name.clone(),
                    ty: ty.clone(),
                    span: s.span,
                    readable: true,
                    read_only: if same || in_target {
                        None
                    } else {
                        Some("it belongs to the state this transition leaves")
                    },
                    used: true,
                    warn_unused: false,
                });
            }
        }
        if let Some(t) = target
            && !same
        {
            for (name, ty, _) in &t.vars {
                if source.is_some_and(|s| s.vars.iter().any(|(n, _, _)| n == name)) {
                    continue;
                }
                self.declare(Local {
                    name: name.clone(),
                    ty: ty.clone(),
                    span: t.span,
                    readable: false,
                    read_only: None,
                    used: true,
                    warn_unused: false,
                });
            }
        }
        if let Some(g) = guard {
            self.condition(g, cx, "a transition guard");
        }
        if let Some(b) = body {
            self.block(b, cx, &Body::Handler);
        }
        self.pop_scope();
        self.scopes = saved;
        self.maybe_unset = saved_unset;
        // Entering a state sets each of its variables that has no default.
        if let Some(t) = target
            && (!same || many_sources)
        {
            let set = body.as_ref().map(assigned).unwrap_or_default();
            let missing: Vec<String> = t
                .vars
                .iter()
                .filter(|(n, _, has_default)| !has_default && !set.contains(n))
                .filter(|(n, _, _)| {
                    !(same && source.is_some_and(|s| s.vars.iter().any(|(m, _, _)| m == n)))
                })
                .map(|(n, _, _)| format!("`{n}`"))
                .collect();
            if !missing.is_empty() {
                let d = Diagnostic::new(
                    Code::E0310,
                    format!("entering `{}` leaves {} unset", t.name, missing.join(", ")),
                    self.label(target_name.span, format!("`{}` of machine `{machine}` needs {}", t.name, missing.join(", "))),
                )
                .with_label(self.label(t.span, "its variables are declared here"))
                .with_help(format!(
                    "set them in the transition's body, e.g. `-> {} {{ {} = ... }}`, or give them defaults",
                    t.name,
                    missing[0].trim_matches('`')
                ));
                self.push(d);
            }
        }
    }

    /// Warns about states no transition leads to. Skipped when a member
    /// failed to parse or a transition names an unknown state: the graph is
    /// then incomplete, and the mistake already reported.
    fn reachability(&mut self, m: &MachineDecl, info: &MachineInfo) {
        let Some(initial) = info.states.first() else {
            return;
        };
        let known = |s: &ast::Ident| info.state(&s.name).is_some();
        let complete = m.members.iter().all(|member| match member {
            MachineMember::Error(_) => false,
            MachineMember::On(t) => t.from.iter().all(known) && known(&t.target),
            MachineMember::After(t) => known(&t.from) && known(&t.target),
            _ => true,
        });
        if !complete {
            return;
        }
        let mut edges: Vec<(Option<String>, String)> = Vec::new();
        for member in &m.members {
            match member {
                MachineMember::On(t) if t.from.is_empty() => {
                    edges.push((None, t.target.name.clone()))
                }
                MachineMember::On(t) => {
                    for f in &t.from {
                        edges.push((Some(f.name.clone()), t.target.name.clone()));
                    }
                }
                MachineMember::After(t) => {
                    edges.push((Some(t.from.name.clone()), t.target.name.clone()))
                }
                _ => {}
            }
        }
        let mut reached: HashSet<String> = HashSet::from([initial.name.clone()]);
        let mut queue: VecDeque<String> = VecDeque::from([initial.name.clone()]);
        while let Some(s) = queue.pop_front() {
            for (from, to) in &edges {
                if from.as_ref().is_none_or(|f| *f == s) && reached.insert(to.clone()) {
                    queue.push_back(to.clone());
                }
            }
        }
        for s in &info.states {
            if !reached.contains(&s.name) {
                let d = Diagnostic::new(
                    Code::W0001,
                    format!("state `{}` can never be reached", s.name),
                    self.label(s.span, "no transition leads here"),
                )
                .with_label(self.label(
                    initial.span,
                    format!(
                        "`{}` is the initial state (the first declared)",
                        initial.name
                    ),
                ))
                .with_help(format!(
                    "add a transition `-> {}`, or remove the state",
                    s.name
                ));
                self.push(d);
            }
        }
    }

    // ---------------------------------------------------------- processors

    pub fn check_processor(&mut self, p: &ProcessorDecl) {
        let mut vars: Vec<Local> = Vec::new();
        for member in &p.members {
            if let ProcessorMember::Var(v) = member
                && let Some(local) = self.var_decl(v, &vars)
            {
                vars.push(local);
            }
        }
        // The processor's functions are visible inside it only.
        let mut added: Vec<String> = Vec::new();
        let mut infos = Vec::new();
        for member in &p.members {
            if let ProcessorMember::Fn(f) = member {
                if let Some(prev) = self.fns.get(&f.name.name) {
                    let d = env::duplicate(self.file, "function", &f.name, prev.span);
                    self.push(d);
                    continue;
                }
                let info = self.fn_signature(f);
                self.fns.insert(f.name.name.clone(), info.clone());
                added.push(f.name.name.clone());
                infos.push((f, info));
            }
        }
        // Functions are pure: the processor's variables are out of their
        // reach.
        for v in &vars {
            self.hidden.push((
                v.name.clone(),
                "a variable of the processor",
                "functions are pure and do not see the processor's variables: pass the value as a parameter",
            ));
        }
        for (f, info) in infos {
            self.check_fn(f, Some(info));
        }
        self.hidden.clear();
        for member in &p.members {
            if let ProcessorMember::Handler(h) = member {
                let event = self.resolve_event(&h.event);
                let cx = Cx {
                    event,
                    unknown_event: event.is_none(),
                    ..Cx::default()
                };
                let saved = std::mem::take(&mut self.scopes);
                self.push_scope();
                for v in &vars {
                    self.declare(v.clone());
                }
                if let Some(g) = &h.guard {
                    self.condition(g, &cx, "a handler guard");
                }
                self.block(&h.body, &cx, &Body::Handler);
                self.pop_scope();
                self.scopes = saved;
            }
        }
        for name in added {
            self.fns.remove(&name);
        }
    }

    // ------------------------------------------------------------- shaping

    /// The type of a field a shaping rule names (declared or standard).
    fn shaped_field(&mut self, idx: usize, field: &ast::Ident) -> Option<Ty> {
        let info = self.event(idx);
        if let Some(f) = info.field(&field.name) {
            return Some(f.ty.clone());
        }
        if let Some(ty) = dtc_stdlib::fields::ty(&field.name) {
            return Some(ty);
        }
        let name = info.name.clone();
        let candidates: Vec<String> = info.fields.iter().map(|f| f.name.clone()).collect();
        let (f, s) = (info.file, info.span);
        let mut d = Diagnostic::new(
            Code::E0202,
            format!("event `{name}` has no field `{}`", field.name),
            self.label(field.span, "unknown field"),
        )
        .with_label(dtc_diagnostics::Label::new(
            f,
            s,
            format!("`{name}` is declared here"),
        ));
        if let Some(h) = suggest::help(&field.name, &candidates) {
            d = d.with_help(h);
        }
        self.push(d);
        None
    }

    pub fn check_shaping(&mut self, rule: &ShapingRule) {
        match &rule.kind {
            ShapingKind::Suppress { target, when } => {
                let Some(idx) = self.resolve_event(&target.event) else {
                    return;
                };
                if let Some(f) = &target.field {
                    self.shaped_field(idx, f);
                }
                if let Some(w) = when {
                    let cx = Cx {
                        row: Some(self.event_columns(idx)),
                        source: Some(idx),
                        no_event: "a shaping condition reads the event's fields by name",
                        ..Cx::default()
                    };
                    self.condition(w, &cx, "the condition of `suppress`");
                }
            }
            ShapingKind::Redact { target, method } => {
                let Some(idx) = self.resolve_event(&target.event) else {
                    return;
                };
                let method_def = redaction::get(&method.name);
                if method_def.is_none() {
                    let mut d = Diagnostic::new(
                        Code::E0214,
                        format!("unknown redaction `{}`", method.name),
                        self.label(method.span, "not a redaction method"),
                    );
                    d = match suggest::did_you_mean(
                        &method.name,
                        redaction::REDACTIONS.iter().map(|r| r.name),
                    ) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("redact with `hash`, `mask` or `drop`"),
                    };
                    self.push(d);
                }
                let Some(field) = &target.field else {
                    self.error(
                        Code::E0219,
                        "`redact` needs a field",
                        target.span,
                        "a whole event",
                    )
                    .help = Some(format!(
                        "name the field, e.g. `redact {}.field with hash`; to drop the whole event, use `suppress {}`",
                        target.event.name, target.event.name
                    ));
                    return;
                };
                let Some(ty) = self.shaped_field(idx, field) else {
                    return;
                };
                if let Some(def) = method_def
                    && def.strings_only
                    && !matches!(ty.unwrap_optional(), Ty::String | Ty::Error)
                {
                    self.error(
                        Code::E0318,
                        format!(
                            "`{}` applies to strings, and `{}` is `{ty}`",
                            def.name, field.name
                        ),
                        method.span,
                        "only for strings",
                    )
                    .help = Some("use `hash` or `drop` for this field".into());
                }
            }
            ShapingKind::Sample { event, rate } => {
                self.resolve_event(event);
                self.expect(rate, &Cx::default(), &Ty::Percent, "a sampling rate");
                if !is_literal(rate) {
                    self.error(
                        Code::E0319,
                        "a sampling rate must be a constant",
                        rate.span,
                        "computed at run time",
                    );
                }
            }
            ShapingKind::Limit { event, count, per } => {
                self.resolve_event(event);
                let instead = format!(
                    "to drop every `{}`, write `suppress {}`",
                    event.name, event.name
                );
                self.budget_for(count, per, &Cx::default(), &instead);
            }
        }
    }

    /// Rules that repeat another, or that a whole-event `suppress` makes moot.
    pub fn check_shaping_redundancy(&mut self) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut suppressed: HashMap<String, Span> = HashMap::new();
        let rules: Vec<&ShapingRule> = self
            .unit
            .ast
            .items
            .iter()
            .filter_map(|i| {
                if let Item::Shaping(r) = i {
                    Some(r)
                } else {
                    None
                }
            })
            .collect();
        for r in &rules {
            if let ShapingKind::Suppress { target, when: None } = &r.kind
                && target.field.is_none()
            {
                suppressed
                    .entry(target.event.name.clone())
                    .or_insert(r.span);
            }
        }
        for r in rules {
            let (key, event) = match &r.kind {
                ShapingKind::Suppress { when: Some(_), .. } => continue,
                ShapingKind::Suppress { target, when: None } => (
                    format!(
                        "suppress {}.{}",
                        target.event.name,
                        target.field.as_ref().map_or("", |f| f.name.as_str())
                    ),
                    &target.event.name,
                ),
                ShapingKind::Redact { target, .. } => (
                    format!(
                        "redact {}.{}",
                        target.event.name,
                        target.field.as_ref().map_or("", |f| f.name.as_str())
                    ),
                    &target.event.name,
                ),
                ShapingKind::Sample { event, .. } => {
                    (format!("sample {}", event.name), &event.name)
                }
                ShapingKind::Limit { event, .. } => (format!("limit {}", event.name), &event.name),
            };
            if let Some(prev) = seen.get(&key) {
                let target = key
                    .split_once(' ')
                    .map_or("", |(_, t)| t)
                    .trim_end_matches('.');
                let message = match &r.kind {
                    ShapingKind::Redact { .. } => format!("`{target}` is already redacted"),
                    ShapingKind::Sample { .. } => format!("`{target}` is already sampled"),
                    ShapingKind::Limit { .. } => format!("`{target}` is already rate-limited"),
                    ShapingKind::Suppress { .. } => format!("`{target}` is already suppressed"),
                };
                let d = Diagnostic::new(Code::W0004, message, self.label(r.span, "repeated"))
                    .with_label(self.label(*prev, "the earlier rule"))
                    .with_help("remove one of them; only the first applies");
                self.push(d);
                continue;
            }
            seen.insert(key.clone(), r.span);
            if let Some(sup) = suppressed.get(event)
                && *sup != r.span
            {
                let d = Diagnostic::new(
                    Code::W0004,
                    format!("`{event}` is suppressed, so this rule never applies"),
                    self.label(r.span, "no effect"),
                )
                .with_label(self.label(*sup, "the whole event is dropped here"))
                .with_help("remove this rule, or suppress only some fields");
                self.push(d);
            }
        }
    }

    // ------------------------------------------------------------- queries

    /// Queries in an order where each reads events already known: a query
    /// may read a log another query or a handler emits.
    pub fn check_queries(&mut self, queries: &[&QueryDecl]) {
        let mut pending: Vec<&QueryDecl> = queries.to_vec();
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for q in pending {
                if self.event_index(&q.source.name).is_some() {
                    self.check_query(q);
                } else {
                    rest.push(q);
                }
            }
            pending = rest;
            if pending.len() == before {
                break;
            }
        }
        for q in pending {
            self.check_query(q);
        }
    }

    fn check_query(&mut self, q: &QueryDecl) {
        let Some(idx) = self.resolve_event(&q.source) else {
            return;
        };
        let mut row: Vec<Column> = self.event_columns(idx);
        let mut source = Some(idx);
        let mut summarized = false;
        // The summary's aggregate columns (name and span), when every one of
        // them checked: they name the metrics an `emit metric` exports.
        let mut metric_columns: Option<Vec<(String, Span)>> = None;
        let mut emitted: Option<Span> = None;
        for stage in &q.stages {
            if let Some(at) = emitted {
                let d = Diagnostic::new(
                    Code::E0219,
                    "nothing can follow `emit`",
                    self.label(stage.span, "after the emit"),
                )
                .with_label(self.label(at, "the query's output"))
                .with_help("make `emit` the last stage; to emit twice, write two queries");
                self.push(d);
                break;
            }
            let cx = Cx {
                row: Some(row.clone()),
                source,
                no_event: "in a query, the row's columns are read by name",
                ..Cx::default()
            };
            match &stage.kind {
                StageKind::Error => {}
                StageKind::Where(e) => self.condition(e, &cx, "the condition of `where`"),
                StageKind::Extend(cols) => {
                    for (name, ty) in self.columns(cols, &cx, false) {
                        row.retain(|c| c.name != name);
                        row.push(Column { name, ty });
                    }
                }
                StageKind::Project(cols) => {
                    row = self
                        .columns(cols, &cx, false)
                        .into_iter()
                        .map(|(name, ty)| Column { name, ty })
                        .collect();
                    source = None;
                }
                StageKind::Summarize {
                    aggregates: aggs,
                    by,
                    max_series,
                    every,
                } => {
                    if let Some(m) = max_series {
                        self.positive_count(m, "the maximum number of series");
                    }
                    if summarized {
                        self.error(
                            Code::E0219,
                            "a query summarizes once",
                            stage.span,
                            "second `summarize`",
                        )
                        .help = Some(
                            "emit the first summary as a log and summarize it in another query"
                                .into(),
                        );
                    }
                    let keys = self.columns(by, &cx, false);
                    for (col, (name, ty)) in by.iter().zip(keys.iter()) {
                        if !ty.unwrap_optional().is_key() {
                            self.error(Code::E0301, format!("group key `{name}` must be string, int or bool, found `{ty}`"), col.expr.span, format!("this is `{ty}`"))
                                .help = Some("group by a string, an int or a bool; convert with `to_string(...)`".into());
                        }
                    }
                    let values = self.columns(aggs, &cx, true);
                    metric_columns = (values.len() == aggs.len()).then(|| {
                        values
                            .iter()
                            .zip(aggs)
                            .map(|((name, _), col)| (name.clone(), col.span))
                            .collect()
                    });
                    if let Some(e) = every {
                        self.positive_duration(e, &Cx::default(), "a window");
                    }
                    // Past `max`, rows fold into the overflow series, which
                    // has no key values: each key column may then be absent.
                    let mut new_row: Vec<Column> = keys
                        .into_iter()
                        .map(|(name, ty)| Column {
                            name,
                            ty: if max_series.is_some() {
                                Ty::optional(ty)
                            } else {
                                ty
                            },
                        })
                        .collect();
                    for (name, ty) in values {
                        if new_row.iter().any(|c| c.name == name) {
                            let span = aggs
                                .iter()
                                .find(|c| column_name(c, true).as_deref() == Some(name.as_str()))
                                .map_or(stage.span, |c| c.span);
                            self.error(
                                Code::E0208,
                                format!("column `{name}` is both a group key and an aggregate"),
                                span,
                                "name it differently",
                            )
                            .help = Some(format!(
                                "give the aggregate another name, e.g. `{name}_count = ...`"
                            ));
                            continue;
                        }
                        new_row.push(Column { name, ty });
                    }
                    row = new_row;
                    source = None;
                    summarized = true;
                }
                StageKind::Sample(rate) => {
                    self.expect(rate, &cx, &Ty::Percent, "a sampling rate");
                    if !is_literal(rate) {
                        self.error(
                            Code::E0319,
                            "a sampling rate must be a constant",
                            rate.span,
                            "computed at run time",
                        );
                    }
                }
                StageKind::Limit { count, per } => {
                    self.budget_for(count, per, &cx, "to drop every row, remove the query")
                }
                StageKind::EmitLog(name) => {
                    emitted = Some(stage.span);
                    if name.name == q.source.name {
                        self.error(
                            Code::E0219,
                            format!("query `{}` would read its own output", q.name.name),
                            name.span,
                            "the event this query reads",
                        )
                        .help = Some("emit under another name".into());
                        continue;
                    }
                    // Standard fields are the log's own (its time, severity,
                    // ...), not fields of its payload.
                    let fields = row
                        .iter()
                        .filter(|c| dtc_stdlib::fields::get(&c.name).is_none())
                        .map(|c| (c.name.clone(), c.ty.clone(), name.span))
                        .collect();
                    self.emitted_log(name, fields, stage.span);
                }
                StageKind::EmitMetric(name) => {
                    emitted = Some(stage.span);
                    if !summarized {
                        self.error(
                            Code::E0309,
                            "`emit metric` needs a `summarize` stage before it",
                            stage.span,
                            "a metric is computed over a window",
                        )
                        .help =
                            Some("add e.g. `| summarize n = count() every 1m` before it".into());
                    }
                    if name.value.is_empty()
                        || !name.value.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
                        })
                    {
                        self.error(Code::E0320, format!("`{}` is not a valid metric name", name.value), name.span, "invalid name")
                            .help = Some("use letters, digits, `.`, `_`, `-` and `/`, like `imagesvc.files_hashed`".into());
                    } else if summarized && let Some(columns) = &metric_columns {
                        self.record_metrics(q, name, columns);
                    }
                }
            }
        }
        // A stage that failed to parse may have been the emit.
        let parsed = q
            .stages
            .iter()
            .all(|st| !matches!(st.kind, StageKind::Error));
        if emitted.is_none() && parsed {
            let d = Diagnostic::new(
                Code::W0003,
                format!("query `{}` emits nothing", q.name.name),
                self.label(q.name.span, "no output"),
            )
            .with_help("end it with `| emit metric \"name\"` or `| emit log Name`");
            self.push(d);
        }
    }

    /// Checks a list of columns, returning their names and types. With
    /// `aggregate`, each must be one aggregate call.
    fn columns(&mut self, cols: &[AstColumn], cx: &Cx, aggregate: bool) -> Vec<(String, Ty)> {
        let mut out: Vec<(String, Ty, Span)> = Vec::new();
        for col in cols {
            let ty = if aggregate {
                self.aggregate(col, cx)
            } else {
                self.expr(&col.expr, cx)
            };
            if aggregate
                && !matches!(&col.expr.kind, ExprKind::Call { callee, .. } if aggregates::get(&callee.joined()).is_some())
            {
                continue;
            }
            let Some(name) = column_name(col, aggregate) else {
                self.error(
                    Code::E0221,
                    "this column needs a name",
                    col.expr.span,
                    "computed column",
                )
                .help = Some("name it: `name = expression`".into());
                continue;
            };
            if let Some(prev) = out.iter().find(|(n, _, _)| *n == name) {
                let d = Diagnostic::new(
                    Code::E0208,
                    format!("column `{name}` is defined twice"),
                    self.label(col.span, "defined again"),
                )
                .with_label(self.label(prev.2, "first defined here"))
                .with_help("give one of them another name: `other = ...`");
                self.push(d);
                continue;
            }
            out.push((name, ty, col.span));
        }
        out.into_iter().map(|(n, t, _)| (n, t)).collect()
    }

    fn aggregate(&mut self, col: &AstColumn, cx: &Cx) -> Ty {
        if let ExprKind::Call { callee, args } = &col.expr.kind {
            let name = callee.joined();
            if let Some(sig) = aggregates::get(&name) {
                let tys = self.check_args(
                    &format!("aggregate `{name}`"),
                    &Params::Catalog(sig.params),
                    args,
                    col.expr.span,
                    cx,
                );
                if name == "percentile" {
                    self.percentile_rank(args);
                }
                let ty = sig.returns.resolve(&tys);
                if !ty.is_error() {
                    self.types.push((self.file, col.expr.span, ty.to_string()));
                    self.expr_types
                        .insert((self.file, col.expr.span), ty.clone());
                }
                return ty;
            }
        }
        if matches!(col.expr.kind, ExprKind::Error) {
            return Ty::Error;
        }
        self.expr(&col.expr, cx);
        let d = self.error(
            Code::E0308,
            "a `summarize` column must be an aggregate",
            col.expr.span,
            "not an aggregate",
        );
        d.help = Some(format!(
            "use one of {}; group keys go after `by`",
            aggregates::AGGREGATES
                .iter()
                .map(|a| format!("`{}`", a.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ty::Error
    }
}

impl Checker<'_> {
    /// The `p` of `percentile(x, p)`: a constant from 0 to 100.
    fn percentile_rank(&mut self, args: &[ast::Arg]) {
        let p = args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == "p"))
            .or_else(|| args.iter().filter(|a| a.name.is_none()).nth(1));
        let Some(p) = p else { return };
        let value = match &p.value.kind {
            ExprKind::Int(v) => Some(*v as f64),
            ExprKind::Float(v) => Some(*v),
            ExprKind::Error => return,
            _ => None,
        };
        match value {
            None => {
                self.error(
                    Code::E0319,
                    "a percentile's rank must be a constant",
                    p.value.span,
                    "computed per row",
                )
                .help = Some("write the rank itself, e.g. `percentile(took, 95)`".into());
            }
            Some(v) if !(0.0..=100.0).contains(&v) => {
                self.error(
                    Code::E0320,
                    format!("a percentile's rank is from 0 to 100, found {v}"),
                    p.value.span,
                    "out of range",
                )
                .help = Some("write e.g. `percentile(took, 99)` for the 99th percentile".into());
            }
            Some(_) => {}
        }
    }
}

impl Checker<'_> {
    /// Logs that feed back into the events that produce them: `A` emits
    /// `B` and `B` emits `A` (through queries, handlers or transitions)
    /// would make each event produce events without end. One diagnostic per
    /// loop; a query or handler reading its own output is reported where it
    /// is checked.
    pub fn check_feedback(&mut self) {
        // (event read, log emitted, where it is emitted)
        let mut edges: Vec<(String, String, Span)> = Vec::new();
        for item in &self.unit.ast.items {
            match item {
                Item::Query(q) => {
                    for stage in &q.stages {
                        if let StageKind::EmitLog(name) = &stage.kind {
                            edges.push((q.source.name.clone(), name.name.clone(), name.span));
                        }
                    }
                }
                Item::Processor(p) => {
                    for member in &p.members {
                        if let ProcessorMember::Handler(h) = member {
                            emits(&h.body, &mut |name| {
                                edges.push((h.event.name.clone(), name.name.clone(), name.span))
                            });
                        }
                    }
                }
                Item::Machine(m) => {
                    for member in &m.members {
                        if let MachineMember::On(t) = member
                            && let Some(body) = &t.body
                        {
                            emits(body, &mut |name| {
                                edges.push((t.event.name.clone(), name.name.clone(), name.span))
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        edges.retain(|(from, to, _)| from != to);
        edges.sort_by_key(|e| e.2.start);
        let mut reported: HashSet<String> = HashSet::new();
        for (from, to, span) in &edges {
            if reported.contains(from) {
                continue;
            }
            // A path back from `to` to `from` closes a loop.
            let Some(path) = path_between(&edges, to, from) else {
                continue;
            };
            let mut chain: Vec<String> = vec![format!("`{from}`"), format!("`{to}`")];
            let mut d = Diagnostic::new(
                Code::E0219,
                String::new(),
                self.label(*span, format!("`{from}` leads to `{to}` here")),
            );
            for &i in &path {
                let (a, b, s) = &edges[i];
                chain.push(format!("`{b}`"));
                d = d.with_label(self.label(*s, format!("`{a}` leads to `{b}` here")));
            }
            d.message = format!("events feed back into themselves: {}", chain.join(" → "));
            d = d.with_help("a program's output must not reach its own input: emit under another name, or stop one of the emits");
            reported.insert(from.clone());
            for &i in &path {
                reported.insert(edges[i].0.clone());
            }
            reported.insert(to.clone());
            self.push(d);
        }
    }
}

/// Calls `f` with the name of each `emit log` in the block.
fn emits(block: &ast::Block, f: &mut impl FnMut(&ast::Ident)) {
    for stmt in &block.stmts {
        match &stmt.kind {
            ast::StmtKind::EmitLog { name, .. } => f(name),
            ast::StmtKind::If {
                then, otherwise, ..
            }
            | ast::StmtKind::IfLet {
                then, otherwise, ..
            } => {
                emits(then, f);
                if let Some(o) = otherwise {
                    emits(o, f);
                }
            }
            ast::StmtKind::For { body, .. } => emits(body, f),
            _ => {}
        }
    }
}

/// The edges of a shortest path from `start` to `goal`, by index.
fn path_between(edges: &[(String, String, Span)], start: &str, goal: &str) -> Option<Vec<usize>> {
    let mut came_from: HashMap<&str, usize> = HashMap::new();
    let mut queue: VecDeque<&str> = VecDeque::from([start]);
    let mut seen: HashSet<&str> = HashSet::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = Vec::new();
            let mut at = node;
            while at != start {
                let i = came_from[at];
                path.push(i);
                at = &edges[i].0;
            }
            path.reverse();
            return Some(path);
        }
        for (i, (a, b, _)) in edges.iter().enumerate() {
            if a == node && seen.insert(b.as_str()) {
                came_from.insert(b.as_str(), i);
                queue.push_back(b.as_str());
            }
        }
    }
    None
}

/// The name of a column: given, or derived from a name, field or aggregate.
fn column_name(col: &AstColumn, aggregate: bool) -> Option<String> {
    if let Some(n) = &col.name {
        return Some(n.name.clone());
    }
    match &col.expr.kind {
        ExprKind::Name(id) => Some(id.name.clone()),
        ExprKind::Field(_, f) => Some(f.name.clone()),
        ExprKind::Call { callee, .. } if aggregate => {
            callee.segments.last().map(|s| s.name.clone())
        }
        _ => None,
    }
}
