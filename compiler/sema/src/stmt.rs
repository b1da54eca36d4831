//! Checking statements: bindings, assignments, control flow with bounded
//! loops, emits and triggers; and the flow facts (does every path return,
//! which variables does every path assign) that functions and transitions
//! need.

use std::collections::HashSet;

use dtc_diagnostics::{Code, Diagnostic};
use dtc_stdlib::{Ty, actions};
use dtc_syntax::ast::{AssignOp, Block, Expr, ExprKind, ForIter, Stmt, StmtKind};

use crate::checker::{Checker, Cx, FnInfo, Local, const_int};
use crate::env::TypePlace;
use crate::expr::Params;
use crate::suggest;

/// What kind of body the statements are in.
#[derive(Debug, Clone)]
pub enum Body {
    /// A pure function returning this type.
    Function(Ty),
    /// A processor handler or a machine transition: may emit and trigger.
    Handler,
}

impl Checker<'_> {
    pub fn block(&mut self, block: &Block, cx: &Cx, body: &Body) {
        self.push_scope();
        for stmt in &block.stmts {
            self.stmt(stmt, cx, body);
        }
        self.pop_scope();
    }

    fn stmt(&mut self, stmt: &Stmt, cx: &Cx, body: &Body) {
        match &stmt.kind {
            StmtKind::Error => {}
            StmtKind::Let {
                name,
                ty,
                value,
                mutable,
            } => {
                let value_ty = self.expr(value, cx);
                let ty = match ty {
                    Some(t) => {
                        let declared = self.resolve_type(t, TypePlace::Other);
                        if !declared.accepts(&value_ty) {
                            let help = crate::expr::mismatch_help(&declared, &value_ty);
                            self.error(
                                Code::E0301,
                                format!(
                                    "`{}` is declared `{declared}` but given `{value_ty}`",
                                    name.name
                                ),
                                value.span,
                                format!("this is `{value_ty}`"),
                            )
                            .help = help;
                        }
                        declared
                    }
                    None => {
                        if value_ty == Ty::None {
                            self.error(
                                Code::E0301,
                                "cannot tell the type of `none`",
                                value.span,
                                "`none` of what?",
                            )
                            .help = Some(format!(
                                "declare the type: `let {}: int? = none`",
                                name.name
                            ));
                        }
                        value_ty
                    }
                };
                self.declare(Local {
                    name: name.name.clone(),
                    ty,
                    span: name.span,
                    readable: true,
                    read_only: if *mutable {
                        None
                    } else {
                        Some("it is a `let` binding, which cannot change")
                    },
                    used: false,
                    warn_unused: true,
                });
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value, cx),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.condition(cond, cx, "the condition of `if`");
                self.branches(then, otherwise.as_ref(), cx, body);
            }
            StmtKind::IfLet {
                name,
                value,
                then,
                otherwise,
            } => {
                let ty = self.expr(value, cx);
                let inner = match &ty {
                    Ty::Optional(inner) => (**inner).clone(),
                    Ty::Error => Ty::Error,
                    other => {
                        let d = self.error(
                            Code::E0305,
                            format!("`if let` needs an optional value, found `{other}`"),
                            value.span,
                            "this is never absent",
                        );
                        d.help = Some(format!("use `let {} = ...`", name.name));
                        other.clone()
                    }
                };
                self.push_scope();
                self.declare(Local {
                    name: name.name.clone(),
                    ty: inner,
                    span: name.span,
                    readable: true,
                    read_only: Some("it is bound by `if let`, which cannot change"),
                    used: false,
                    warn_unused: true,
                });
                let before = self.maybe_unset.clone();
                self.block(then, cx, body);
                self.pop_scope();
                let after_then = std::mem::replace(&mut self.maybe_unset, before);
                if let Some(b) = otherwise {
                    self.block(b, cx, body);
                }
                self.join_unset(after_then);
            }
            StmtKind::For {
                key,
                value,
                iter,
                body: loop_body,
            } => {
                let (key_ty, value_ty) = match iter {
                    ForIter::Range(a, b) => {
                        for bound in [a, b] {
                            self.expect(bound, cx, &Ty::Int, "a range bound");
                            if const_int(bound).is_none() {
                                let d = self.error(
                                    Code::E0319,
                                    "loop bounds must be constants",
                                    bound.span,
                                    "computed at run time",
                                );
                                d.help = Some("write the bound as a literal, e.g. `for i in 0..10`, so every loop is bounded".into());
                            }
                        }
                        if let Some(v) = value {
                            self.error(
                                Code::E0315,
                                "a range gives one value per step",
                                v.span,
                                "remove this second name",
                            );
                        }
                        (Ty::Int, None)
                    }
                    ForIter::Expr(e) => match self.expr(e, cx) {
                        Ty::Map(k, v) => (*k, Some(*v)),
                        Ty::Error => (Ty::Error, Some(Ty::Error)),
                        other => {
                            let d = self.error(
                                Code::E0315,
                                format!("cannot loop over `{other}`"),
                                e.span,
                                "not a range or a map",
                            );
                            d.help =
                                Some("loop over a constant range `0..10` or a map variable".into());
                            (Ty::Error, Some(Ty::Error))
                        }
                    },
                };
                self.push_scope();
                self.declare(Local {
                    name: key.name.clone(),
                    ty: key_ty,
                    span: key.span,
                    readable: true,
                    read_only: Some("it is a loop variable"),
                    used: false,
                    warn_unused: false,
                });
                if let (Some(v), Some(vt)) = (value, value_ty) {
                    self.declare(Local {
                        name: v.name.clone(),
                        ty: vt,
                        span: v.span,
                        readable: true,
                        read_only: Some("it is a loop variable"),
                        used: false,
                        warn_unused: false,
                    });
                }
                // The loop may run zero times: what it sets may stay unset.
                let before = self.maybe_unset.clone();
                self.block(loop_body, cx, body);
                self.pop_scope();
                self.maybe_unset = before;
            }
            StmtKind::EmitLog {
                name,
                fields,
                budget,
            } => {
                if let Some(b) = budget {
                    self.budget_for(&b.count, &b.per, cx, "to never emit, remove the `emit`");
                }
                if let Body::Function(_) = body {
                    self.error(
                        Code::E0219,
                        "a function cannot emit",
                        stmt.span,
                        "`emit` in a function",
                    )
                    .help = Some(
                        "functions are pure: return a value and emit it from the handler".into(),
                    );
                }
                let mut seen: Vec<(String, Ty, dtc_diagnostics::Span)> = Vec::new();
                for f in fields {
                    let ty = self.expr(&f.value, cx);
                    if let Some(prev) = seen.iter().find(|(n, _, _)| *n == f.name.name) {
                        let d = Diagnostic::new(
                            Code::E0208,
                            format!("field `{}` is given twice", f.name.name),
                            self.label(f.name.span, "given again here"),
                        )
                        .with_label(self.label(prev.2, "first given here"))
                        .with_help("remove one of them");
                        self.push(d);
                        continue;
                    }
                    if let Some(std) = dtc_stdlib::fields::get(&f.name.name) {
                        let d = self.error(
                            Code::E0213,
                            format!("field `{}` has the name of a standard field", f.name.name),
                            f.name.span,
                            "every log already has this field",
                        );
                        d.help = Some(format!(
                            "name it differently: every log has its own `{}`",
                            std.name
                        ));
                        continue;
                    }
                    seen.push((f.name.name.clone(), ty, f.name.span));
                }
                // A handler fed by its own output would never stop.
                if let Some(idx) = cx.event
                    && self.event(idx).name == name.name
                {
                    self.error(
                        Code::E0219,
                        "this handler would read its own output",
                        name.span,
                        "the event this handler reads",
                    )
                    .help = Some("emit under another name".into());
                }
                self.emitted_log(name, seen, stmt.span);
            }
            StmtKind::Trigger {
                action,
                args,
                budget,
            } => {
                if let Body::Function(_) = body {
                    self.error(
                        Code::E0219,
                        "a function cannot trigger an action",
                        stmt.span,
                        "`trigger` in a function",
                    )
                    .help =
                        Some("functions are pure: trigger from the handler that calls it".into());
                }
                let name = action.joined();
                match actions::get(&name) {
                    Some(sig) => {
                        self.check_args(
                            &format!("action `{name}`"),
                            &Params::Catalog(sig.params),
                            args,
                            action.span,
                            cx,
                        );
                        for a in args {
                            if let Some(ns) = const_duration(&a.value)
                                && ns <= 0
                            {
                                self.error(
                                    Code::E0320,
                                    "an action runs for a time longer than zero",
                                    a.value.span,
                                    if ns == 0 { "zero" } else { "negative" },
                                )
                                .help = Some("give a positive duration, e.g. `for: 30s`".into());
                            }
                        }
                    }
                    None => {
                        for a in args {
                            self.expr(&a.value, cx);
                        }
                        let mut d = Diagnostic::new(
                            Code::E0205,
                            format!("unknown action `{name}`"),
                            self.label(action.span, "not an action"),
                        );
                        d = match suggest::did_you_mean(
                            &name,
                            actions::ACTIONS.iter().map(|a| a.name),
                        ) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help(format!(
                                "the actions are {}",
                                actions::ACTIONS
                                    .iter()
                                    .map(|a| a.name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        };
                        self.push(d);
                    }
                }
                if let Some(b) = budget {
                    self.budget(&b.count, &b.per, cx);
                }
            }
            StmtKind::Return(value) => {
                let Some(value) = value else { return };
                match body {
                    Body::Function(ret) => {
                        let ty = self.expr(value, cx);
                        if !ret.accepts(&ty) {
                            let help = crate::expr::mismatch_help(ret, &ty);
                            self.error(
                                Code::E0312,
                                format!("the function returns `{ret}`, found `{ty}`"),
                                value.span,
                                format!("this is `{ty}`"),
                            )
                            .help = help;
                        }
                    }
                    Body::Handler => {
                        self.expr(value, cx);
                        self.error(
                            Code::E0312,
                            "`return` outside a function",
                            stmt.span,
                            "handlers do not return values",
                        )
                        .help =
                            Some("a handler ends at its closing `}`; use `if` to skip work".into());
                    }
                }
            }
            StmtKind::Expr(e) => {
                if !matches!(e.kind, ExprKind::Call { .. } | ExprKind::Error) {
                    self.expr(e, cx);
                    self.error(
                        Code::E0219,
                        "this expression does nothing",
                        e.span,
                        "its value is not used",
                    )
                    .help = Some("bind it with `let`, assign it, or remove it".into());
                } else {
                    self.expr(e, cx);
                }
            }
        }
    }

    /// The two branches of an `if`: a variable may be unset after it when
    /// it may be unset after either branch.
    fn branches(&mut self, then: &Block, otherwise: Option<&Block>, cx: &Cx, body: &Body) {
        let before = self.maybe_unset.clone();
        self.block(then, cx, body);
        let after_then = std::mem::replace(&mut self.maybe_unset, before);
        if let Some(b) = otherwise {
            self.block(b, cx, body);
        }
        self.join_unset(after_then);
    }

    fn join_unset(&mut self, other: Vec<(String, dtc_diagnostics::Span)>) {
        for v in other {
            if !self.maybe_unset.contains(&v) {
                self.maybe_unset.push(v);
            }
        }
    }

    /// `limit N per D` of a trigger: a positive constant count and a
    /// positive duration.
    pub fn budget(&mut self, count: &Expr, per: &Expr, cx: &Cx) {
        self.budget_for(count, per, cx, "to never act, remove the trigger");
    }

    /// `limit N per D`; `instead` says what to write to allow nothing at all.
    pub fn budget_for(&mut self, count: &Expr, per: &Expr, cx: &Cx, instead: &str) {
        let ty = self.expect(count, cx, &Ty::Int, "the limit");
        match const_int(count) {
            // An expression already reported is not reported again.
            None if ty.is_error() || !Ty::Int.accepts(&ty) => {}
            None => {
                self.error(
                    Code::E0319,
                    "a limit must be a constant",
                    count.span,
                    "computed at run time",
                )
                .help = Some("write the number itself, e.g. `limit 1 per 1h`".into());
            }
            Some(n) if n <= 0 => {
                self.error(
                    Code::E0320,
                    format!("a limit must be at least 1, found {n}"),
                    count.span,
                    "allows nothing",
                )
                .help = Some(instead.into());
            }
            _ => {}
        }
        self.positive_duration(per, cx, "the period of a limit");
    }

    /// A duration literal greater than zero.
    pub fn positive_duration(&mut self, e: &Expr, cx: &Cx, what: &str) {
        let ty = self.expect(e, cx, &Ty::Duration, what);
        if !Ty::Duration.accepts(&ty) {
            return;
        }
        match const_duration(e) {
            Some(ns) if ns <= 0 => {
                self.error(
                    Code::E0320,
                    format!("{what} must be longer than zero"),
                    e.span,
                    if ns == 0 { "zero" } else { "negative" },
                );
            }
            Some(_) => {}
            None if matches!(e.kind, ExprKind::Error) || ty.is_error() => {}
            None => {
                self.error(
                    Code::E0319,
                    format!("{what} must be a constant"),
                    e.span,
                    "computed at run time",
                )
                .help = Some("write a duration literal such as `1m`".into());
            }
        }
    }

    fn assign(&mut self, target: &Expr, op: AssignOp, value: &Expr, cx: &Cx) {
        let value_ty = self.expr(value, cx);
        let target_ty = match &target.kind {
            ExprKind::Name(id) => {
                let local = self
                    .lookup(&id.name)
                    .map(|l| (l.ty.clone(), l.read_only, l.span));
                match local {
                    Some((ty, None, span)) => {
                        let key = (id.name.clone(), span);
                        if let Some(i) = self.maybe_unset.iter().position(|v| *v == key) {
                            self.maybe_unset.swap_remove(i);
                            if op != AssignOp::Set {
                                self.unset_compound(id, &ty, op, span);
                            }
                        }
                        ty
                    }
                    Some((_, Some(why), _)) => {
                        let d = self.error(
                            Code::E0307,
                            format!("cannot assign to `{}`", id.name),
                            id.span,
                            why,
                        );
                        d.help = Some(if why.contains("let") {
                            format!(
                                "declare it with `var {} = ...` to change it in this block, or as a `var` of the processor or machine to keep it between events",
                                id.name
                            )
                        } else {
                            "assign to a `var`, or to a variable of the state this transition enters".to_string()
                        });
                        return;
                    }
                    None => {
                        if id.name == "event" {
                            self.error(
                                Code::E0307,
                                "cannot assign to `event`",
                                id.span,
                                "events are read-only",
                            );
                            return;
                        }
                        if cx.unknown_state {
                            // Perhaps a variable of the unknown target state.
                            return;
                        }
                        let candidates = self.local_names();
                        let mut d = Diagnostic::new(
                            Code::E0203,
                            format!("unknown variable `{}`", id.name),
                            self.label(id.span, "not declared"),
                        );
                        d = match suggest::help(&id.name, &candidates) {
                            Some(h) => d.with_help(h),
                            None => d.with_help(format!(
                                "declare it with `let {} = ...` or `var {}: T = ...`",
                                id.name, id.name
                            )),
                        };
                        self.push(d);
                        return;
                    }
                }
            }
            ExprKind::Index(base, index) => {
                let base_ty = self.expr(base, cx);
                if let ExprKind::Name(id) = &base.kind
                    && let Some(local) = self.lookup(&id.name)
                    && let Some(why) = local.read_only
                {
                    let msg = format!("cannot change `{}`", id.name);
                    self.error(Code::E0307, msg, base.span, why);
                    return;
                }
                match base_ty {
                    Ty::Map(k, v) => {
                        self.expect(index, cx, &k, "the key");
                        *v
                    }
                    Ty::Error => return,
                    other => {
                        if matches!(&base.kind, ExprKind::Field(b, _) if matches!(&b.kind, ExprKind::Name(n) if n.name == "event"))
                        {
                            self.error(Code::E0307, "event attributes are read-only", target.span, "cannot assign into an event")
                                .help = Some("a program observes events; to change what leaves the box, use `redact` or `suppress`".into());
                        } else {
                            self.error(
                                Code::E0307,
                                format!("cannot assign into `{other}`"),
                                base.span,
                                "not a map variable",
                            );
                        }
                        return;
                    }
                }
            }
            ExprKind::Field(base, _) => {
                if !matches!(&base.kind, ExprKind::Name(n) if n.name == "event") {
                    self.expr(base, cx);
                }
                let d = self.error(
                    Code::E0307,
                    "cannot assign to a field",
                    target.span,
                    "event fields are read-only",
                );
                d.help = Some("a program observes events; to change what leaves the box, use `redact` or `suppress`".into());
                return;
            }
            ExprKind::Error => return,
            _ => {
                self.error(
                    Code::E0307,
                    "cannot assign to this expression",
                    target.span,
                    "not a variable",
                );
                return;
            }
        };
        match op {
            AssignOp::Set => {
                if !target_ty.accepts(&value_ty) {
                    if value_ty.is_optional() && target_ty.accepts(value_ty.unwrap_optional()) {
                        self.optional_used(value.span, &value_ty, "the assigned value");
                    } else {
                        let help = crate::expr::mismatch_help(&target_ty, &value_ty);
                        self.error(
                            Code::E0301,
                            format!(
                                "cannot assign `{value_ty}` to a variable of type `{target_ty}`"
                            ),
                            value.span,
                            format!("this is `{value_ty}`"),
                        )
                        .help = help;
                    }
                }
            }
            AssignOp::Add | AssignOp::Sub => {
                let t = target_ty.unwrap_optional();
                let numeric = matches!(t, Ty::Int | Ty::Float | Ty::Duration | Ty::Error)
                    || (op == AssignOp::Add && *t == Ty::String)
                    || (matches!(t, Ty::Timestamp) && value_ty == Ty::Duration);
                let sym = if op == AssignOp::Add { "+=" } else { "-=" };
                if !numeric {
                    self.error(
                        Code::E0305,
                        format!("`{sym}` does not apply to `{target_ty}`"),
                        target.span,
                        format!("this is `{target_ty}`"),
                    );
                } else if target_ty.is_optional() && !matches!(target.kind, ExprKind::Index(..)) {
                    self.optional_used(target.span, &target_ty, &format!("the target of `{sym}`"));
                } else if matches!(t, Ty::Timestamp) && matches!(target.kind, ExprKind::Index(..)) {
                    // An absent entry starts from the type's zero, and a
                    // timestamp has none.
                    self.error(
                        Code::E0323,
                        format!("`{sym}` on an entry of a map of timestamps, which may be absent"),
                        target.span,
                        "an absent entry has no timestamp to start from",
                    )
                    .help = Some(format!(
                        "say where an absent entry starts: `m[k] = (m[k] ?? event.time) {} d`",
                        if op == AssignOp::Add { "+" } else { "-" }
                    ));
                } else if !(t.accepts(&value_ty)
                    || (matches!(t, Ty::Timestamp) && value_ty == Ty::Duration))
                {
                    let help = crate::expr::mismatch_help(t, &value_ty);
                    self.error(
                        Code::E0301,
                        format!("`{sym}` on `{t}` needs a `{t}`, found `{value_ty}`"),
                        value.span,
                        format!("this is `{value_ty}`"),
                    )
                    .help = help;
                }
            }
        }
    }

    /// `+=` or `-=` on a variable of the initial state before anything set
    /// it: the value it would start from does not exist (and for a
    /// timestamp there is no zero to start from).
    fn unset_compound(
        &mut self,
        id: &dtc_syntax::ast::Ident,
        ty: &Ty,
        op: AssignOp,
        state: dtc_diagnostics::Span,
    ) {
        let sym = if op == AssignOp::Add { "+=" } else { "-=" };
        let d = Diagnostic::new(
            Code::E0321,
            format!("`{sym}` on `{}`, which may not be set yet", id.name),
            self.label(id.span, "may still be unset here"),
        )
        .with_label(self.label(
            state,
            format!("the initial state declares `{}` without a default", id.name),
        ))
        .with_help(format!(
            "give it a default in the state (`{}: {ty} = ...`), or set it with `{} = ...` on every path before this line",
            id.name, id.name
        ));
        self.push(d);
    }

    /// A function, top-level or inside a processor. Processor functions see
    /// no processor state: like every function they are pure.
    pub fn check_fn(&mut self, f: &dtc_syntax::ast::FnDecl, info: Option<FnInfo>) {
        let info = match info.or_else(|| self.fns.get(&f.name.name).cloned()) {
            Some(i) => i,
            None => return,
        };
        if f.ret.is_none() {
            self.error(
                Code::E0311,
                format!("function `{}` returns nothing", f.name.name),
                f.name.span,
                "no `-> Type`",
            )
            .help = Some(
                "functions are pure, so they must return a value: add `-> Type` and `return ...`"
                    .into(),
            );
        }
        let saved = std::mem::take(&mut self.scopes);
        self.push_scope();
        for (name, ty) in &info.params {
            let span = f
                .params
                .iter()
                .find(|p| p.name.name == *name)
                .map_or(f.name.span, |p| p.name.span);
            self.declare(Local {
                name: name.clone(),
                ty: ty.clone(),
                span,
                readable: true,
                read_only: Some("it is a parameter"),
                used: false,
                warn_unused: false,
            });
        }
        let cx = Cx {
            no_event: "functions are pure and see no event: pass what they need as parameters",
            ..Cx::default()
        };
        self.block(&f.body, &cx, &Body::Function(info.ret.clone()));
        self.pop_scope();
        self.scopes = saved;
        if f.ret.is_some() && !returns(&f.body) {
            let end =
                dtc_diagnostics::Span::new(f.body.span.end.saturating_sub(1), f.body.span.end);
            let d = self.error(
                Code::E0311,
                format!("function `{}` can end without returning", f.name.name),
                end,
                "a path reaches here without `return`",
            );
            d.help =
                Some("end every path with `return value`, or add an `else` that returns".into());
        }
    }
}

/// The value in nanoseconds of a duration literal, possibly negated.
pub fn const_duration(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Duration(ns) => Some(*ns),
        ExprKind::Unary(dtc_syntax::ast::UnaryOp::Neg, inner) => {
            const_duration(inner).and_then(i64::checked_neg)
        }
        _ => None,
    }
}

/// Whether every path through the block ends in `return`.
pub fn returns(block: &Block) -> bool {
    block.stmts.iter().any(|s| match &s.kind {
        StmtKind::Return(_) => true,
        StmtKind::If {
            then,
            otherwise: Some(other),
            ..
        }
        | StmtKind::IfLet {
            then,
            otherwise: Some(other),
            ..
        } => returns(then) && returns(other),
        _ => false,
    })
}

/// The variables every path through the block assigns with `=`.
pub fn assigned(block: &Block) -> HashSet<String> {
    let mut set = HashSet::new();
    for s in &block.stmts {
        match &s.kind {
            StmtKind::Assign {
                target,
                op: AssignOp::Set,
                ..
            } => {
                if let ExprKind::Name(id) = &target.kind {
                    set.insert(id.name.clone());
                }
            }
            StmtKind::If {
                then,
                otherwise: Some(other),
                ..
            }
            | StmtKind::IfLet {
                then,
                otherwise: Some(other),
                ..
            } => {
                let a = assigned(then);
                let b = assigned(other);
                set.extend(a.intersection(&b).cloned());
            }
            _ => {}
        }
    }
    set
}
