//! Typing expressions: names, fields, calls against the stdlib catalog and
//! user functions, operators with no implicit conversions, and the rules for
//! optional values.

use dtc_diagnostics::{Code, Diagnostic, Label, Span};
use dtc_stdlib::{Pattern, Ty, actions, aggregates, functions};
use dtc_syntax::ast::{Arg, BinaryOp, Expr, ExprKind, Ident, Path, UnaryOp};

use crate::checker::{Checker, Cx};
use crate::suggest;

/// The parameters a call is checked against.
pub enum Params<'p> {
    Catalog(&'p [dtc_stdlib::Param]),
    User(&'p [(String, Ty)]),
}

impl Params<'_> {
    fn len(&self) -> usize {
        match self {
            Params::Catalog(p) => p.len(),
            Params::User(p) => p.len(),
        }
    }
    fn name(&self, i: usize) -> &str {
        match self {
            Params::Catalog(p) => p[i].name,
            Params::User(p) => &p[i].0,
        }
    }
    fn optional(&self, i: usize) -> bool {
        match self {
            Params::Catalog(p) => p[i].optional,
            Params::User(_) => false,
        }
    }
    fn accepts(&self, i: usize, ty: &Ty, all: &[Ty]) -> bool {
        match self {
            Params::Catalog(p) => p[i].pattern.matches(ty, all),
            Params::User(p) => p[i].1.accepts(ty),
        }
    }
    fn describe(&self, i: usize) -> String {
        match self {
            Params::Catalog(p) => p[i].pattern.describe().to_string(),
            Params::User(p) => p[i].1.to_string(),
        }
    }
    fn signature(&self, name: &str) -> String {
        let ps: Vec<String> = (0..self.len())
            .map(|i| {
                format!(
                    "{}: {}{}",
                    self.name(i),
                    self.describe(i),
                    if self.optional(i) { " = …" } else { "" }
                )
            })
            .collect();
        format!("{name}({})", ps.join(", "))
    }
}

const OPTIONAL_HELP: &str =
    "give a default with `?? value`, or test it with `if let v = ... { ... }`";

impl Checker<'_> {
    /// The type of an expression, recorded for hover.
    pub fn expr(&mut self, e: &Expr, cx: &Cx) -> Ty {
        let ty = self.expr_inner(e, cx);
        if !ty.is_error() {
            self.types.push((self.file, e.span, ty.to_string()));
            self.expr_types.insert((self.file, e.span), ty.clone());
        }
        ty
    }

    /// Checks an expression against an expected type.
    pub fn expect(&mut self, e: &Expr, cx: &Cx, expected: &Ty, what: &str) -> Ty {
        let ty = self.expr(e, cx);
        if !expected.accepts(&ty) {
            if ty.is_optional() && expected.accepts(ty.unwrap_optional()) {
                self.optional_used(e.span, &ty, what);
            } else {
                let help = mismatch_help(expected, &ty);
                self.error(
                    Code::E0301,
                    format!("{what} must be `{expected}`, found `{ty}`"),
                    e.span,
                    format!("this is `{ty}`"),
                )
                .help = help;
            }
        }
        ty
    }

    /// Checks a condition: a `bool`.
    pub fn condition(&mut self, e: &Expr, cx: &Cx, what: &str) {
        let ty = self.expr(e, cx);
        match ty {
            Ty::Bool | Ty::Error => {}
            Ty::Optional(ref inner) if **inner == Ty::Bool => self.optional_used(e.span, &ty, what),
            other => {
                let d = self.error(
                    Code::E0306,
                    format!("{what} must be `bool`, found `{other}`"),
                    e.span,
                    format!("this is `{other}`"),
                );
                d.help = Some(match other {
                    Ty::Int | Ty::Float => {
                        "compare it explicitly, e.g. `x > 0`; numbers are not truthy".into()
                    }
                    Ty::String => "compare it explicitly, e.g. `x != \"\"`".into(),
                    _ => "write a comparison".into(),
                });
            }
        }
    }

    pub fn optional_used(&mut self, span: Span, ty: &Ty, what: &str) {
        let d = self.error(
            Code::E0302,
            format!("{what} may be absent"),
            span,
            format!("this is `{ty}`, which may be `none`"),
        );
        d.help = Some(OPTIONAL_HELP.into());
    }

    fn expr_inner(&mut self, e: &Expr, cx: &Cx) -> Ty {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Size(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Str(_) => Ty::String,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::None => Ty::None,
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Percent(_) => Ty::Percent,
            ExprKind::Error => Ty::Error,
            ExprKind::Name(id) => self.name(id, cx),
            ExprKind::Field(base, field) => self.field(base, field, cx),
            ExprKind::Index(base, index) => {
                let base_ty = self.expr(base, cx);
                match base_ty {
                    Ty::Map(k, v) => {
                        self.expect(index, cx, &k, "the key");
                        Ty::optional(*v)
                    }
                    Ty::Error => {
                        self.expr(index, cx);
                        Ty::Error
                    }
                    other => {
                        self.expr(index, cx);
                        self.error(
                            Code::E0305,
                            format!("cannot index into `{other}`"),
                            base.span,
                            format!("this is `{other}`, not a map"),
                        );
                        Ty::Error
                    }
                }
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, cx),
            ExprKind::Unary(op, inner) => {
                let ty = self.expr(inner, cx);
                match (op, &ty) {
                    (_, Ty::Error) => Ty::Error,
                    (_, Ty::Optional(_)) => {
                        self.optional_used(inner.span, &ty, "the operand");
                        Ty::Error
                    }
                    (UnaryOp::Not, Ty::Bool) => Ty::Bool,
                    (UnaryOp::Neg, Ty::Int | Ty::Float | Ty::Duration) => ty,
                    (UnaryOp::Not, other) => {
                        self.error(
                            Code::E0305,
                            format!("`!` needs a `bool`, found `{other}`"),
                            inner.span,
                            format!("this is `{other}`"),
                        );
                        Ty::Error
                    }
                    (UnaryOp::Neg, other) => {
                        self.error(
                            Code::E0305,
                            format!("`-` needs a number or a duration, found `{other}`"),
                            inner.span,
                            format!("this is `{other}`"),
                        );
                        Ty::Error
                    }
                }
            }
            ExprKind::Binary(op, a, b) => {
                let lt = self.expr(a, cx);
                let rt = self.expr(b, cx);
                self.binary(*op, a, b, lt, rt, e.span)
            }
            ExprKind::Is { machine, state } => {
                self.is_state(machine, state, e.span, cx);
                Ty::Bool
            }
        }
    }

    fn name(&mut self, id: &Ident, cx: &Cx) -> Ty {
        if id.name == "event" {
            if cx.event.is_some() {
                self.error(
                    Code::E0219,
                    "`event` is not a value",
                    id.span,
                    "read one of its fields",
                )
                .help = Some("write `event.fieldName`".into());
            } else {
                self.no_event(id.span, cx, None);
            }
            return Ty::Error;
        }
        if let Some(local) = self.lookup(&id.name)
            && local.readable
        {
            local.used = true;
            return local.ty.clone();
        }
        if let Some(row) = &cx.row
            && let Some(col) = row.iter().find(|c| c.name == id.name)
        {
            return col.ty.clone();
        }
        // Not found: say why as precisely as possible.
        if cx.unknown_state {
            // It may be a variable of the state that could not be resolved.
            return Ty::Error;
        }
        if let Some(&(_, label, help)) = self.hidden.iter().find(|h| h.0 == id.name) {
            self.error(
                Code::E0203,
                format!("`{}` cannot be read here", id.name),
                id.span,
                label,
            )
            .help = Some(help.into());
            return Ty::Error;
        }
        if self.lookup(&id.name).is_some() {
            let msg = format!("`{}` cannot be read here", id.name);
            self.error(Code::E0203, msg, id.span, "only assigned in this transition")
                .help = Some("a transition can read the variables of the state it leaves; this one belongs to the state it enters".into());
            return Ty::Error;
        }
        let mut candidates = self.local_names();
        if let Some(row) = &cx.row {
            candidates.extend(row.iter().map(|c| c.name.clone()));
        }
        let mut d = Diagnostic::new(
            Code::E0203,
            format!("unknown name `{}`", id.name),
            self.label(id.span, "not found in this scope"),
        );
        if let Some(h) = suggest::help(&id.name, &candidates) {
            d = d.with_help(h);
        } else if let Some(idx) = cx.event
            && (self.event(idx).field(&id.name).is_some()
                || dtc_stdlib::fields::get(&id.name).is_some())
        {
            d = d.with_help(format!(
                "fields of the current event are read through `event`: `event.{}`",
                id.name
            ));
        } else if self.fns.contains_key(&id.name) || functions::get(&id.name).is_some() {
            d = d.with_help(format!(
                "`{}` is a function: call it with `{}(...)`",
                id.name, id.name
            ));
        } else if self.event_index(&id.name).is_some() {
            d = d.with_help(format!("`{}` is an event, not a value", id.name));
        } else if let Some(row) = &cx.row
            && row.len() <= 8
        {
            // A row made by `project` or `summarize`: say what is left.
            let names: Vec<String> = row.iter().map(|c| format!("`{}`", c.name)).collect();
            d = d.with_help(match names.len() {
                0 => "the row has no columns here".to_string(),
                _ => format!("the row's columns here are {}", names.join(", ")),
            });
        }
        self.push(d);
        Ty::Error
    }

    /// Reports `event` where there is none; `field` is the field read
    /// through it, if any, for the help.
    fn no_event(&mut self, span: Span, cx: &Cx, field: Option<&str>) {
        if cx.unknown_event {
            return;
        }
        let reason = if cx.no_event.is_empty() {
            "there is no current event here"
        } else {
            cx.no_event
        };
        let d = self.error(Code::E0218, "`event` is not available here", span, reason);
        if cx.row.is_some() {
            d.help = Some(match field {
                Some(f) => format!(
                    "in a query or a shaping condition, refer to fields by their bare name: `{f}`"
                ),
                None => {
                    "in a query or a shaping condition, refer to fields by their bare name".into()
                }
            });
        }
    }

    fn field(&mut self, base: &Expr, field: &Ident, cx: &Cx) -> Ty {
        if let ExprKind::Name(id) = &base.kind
            && id.name == "event"
        {
            let Some(idx) = cx.event else {
                self.no_event(base.span, cx, Some(&field.name));
                return Ty::Error;
            };
            let info = self.event(idx);
            if let Some(f) = info.field(&field.name) {
                return f.ty.clone();
            }
            if let Some(ty) = dtc_stdlib::fields::ty(&field.name) {
                return ty;
            }
            let name = info.name.clone();
            let mut candidates: Vec<String> = info.fields.iter().map(|f| f.name.clone()).collect();
            candidates.extend(
                dtc_stdlib::fields::STANDARD_FIELDS
                    .iter()
                    .map(|f| f.name.to_string()),
            );
            let (decl_file, decl_span) = (info.file, info.span);
            let mut d = Diagnostic::new(
                Code::E0202,
                format!("event `{name}` has no field `{}`", field.name),
                self.label(field.span, "unknown field"),
            )
            .with_label(Label::new(
                decl_file,
                decl_span,
                format!("`{name}` is declared here"),
            ));
            d = match suggest::help(&field.name, &candidates) {
                Some(h) => d.with_help(h),
                None => d.with_help(format!(
                    "declare the field in `{name}`, or read an undeclared attribute with `event.attrs[\"{}\"]`",
                    field.name
                )),
            };
            self.push(d);
            return Ty::Error;
        }
        let base_ty = self.expr(base, cx);
        if !base_ty.is_error() {
            self.error(
                Code::E0202,
                format!("`{base_ty}` has no field `{}`", field.name),
                field.span,
                "unknown field",
            )
            .help = Some("only `event` has fields".into());
        }
        Ty::Error
    }

    fn is_state(&mut self, machine: &Ident, state: &Ident, span: Span, cx: &Cx) {
        let Some(info) = self.machines.get(&machine.name).cloned() else {
            if self.unparsed(&machine.name) {
                return;
            }
            let mut d = Diagnostic::new(
                Code::E0216,
                format!("unknown machine `{}`", machine.name),
                self.label(machine.span, "no machine has this name"),
            );
            if let Some(h) = suggest::help(&machine.name, self.machines.keys()) {
                d = d.with_help(h);
            }
            self.push(d);
            return;
        };
        if info.state(&state.name).is_none() {
            self.unknown_state(&machine.name, &info, state);
        }
        match cx.event.or(cx.source) {
            None => self.no_event(span, cx, None),
            Some(idx) => {
                if let Some(key) = &info.key {
                    self.check_key_on(&machine.name, key, idx, machine.span);
                }
            }
        }
    }

    pub fn unknown_state(
        &mut self,
        machine: &str,
        info: &crate::checker::MachineInfo,
        state: &Ident,
    ) {
        if self.unparsed(&state.name) {
            return;
        }
        let mut d = Diagnostic::new(
            Code::E0207,
            format!("machine `{machine}` has no state `{}`", state.name),
            self.label(state.span, "unknown state"),
        )
        .with_label(self.label(info.span, format!("`{machine}` is declared here")));
        d = match suggest::help(&state.name, info.states.iter().map(|s| s.name.as_str())) {
            Some(h) => d.with_help(h),
            None => d.with_help(format!(
                "declare it in `{machine}` with `state {}`",
                state.name
            )),
        };
        self.push(d);
    }

    /// Checks that a machine's key can be computed from event `idx`; on
    /// failure reports one E0313 instead of the key's own errors.
    pub fn check_key_on(&mut self, machine: &str, key: &Expr, idx: usize, at: Span) {
        let before = self.diags.len();
        let types_before = self.types.len();
        let cx = Cx {
            event: Some(idx),
            ..Cx::default()
        };
        let ty = self.expr(key, &cx);
        self.types.truncate(types_before);
        if self.diags.len() > before {
            let inner: Vec<String> = self.diags.drain(before..).map(|d| d.message).collect();
            let event_name = self.event(idx).name.clone();
            let d = Diagnostic::new(
                Code::E0313,
                format!("machine `{machine}` cannot compute its key for `{event_name}`"),
                self.label(at, format!("`{event_name}` reaches `{machine}` here")),
            )
            .with_label(self.label(key.span, "the key"))
            .with_note(inner.join("; "))
            .with_help(
                "key the machine by a field every event it handles has, like `event.thread_id`",
            );
            self.push(d);
        } else if !ty.unwrap_optional().is_key() {
            let d = Diagnostic::new(
                Code::E0301,
                format!("a machine key must be string, int or bool, found `{ty}`"),
                self.label(key.span, format!("this is `{ty}`")),
            )
            .with_help("key the machine by what identifies one instance, like `event.thread_id` or a string field");
            self.push(d);
        }
    }

    fn call(&mut self, callee: &Path, args: &[Arg], span: Span, cx: &Cx) -> Ty {
        let name = callee.joined();
        if callee.segments.len() == 1
            && let Some(f) = self.fns.get(&name).cloned()
        {
            self.check_args(
                &format!("function `{name}`"),
                &Params::User(&f.params),
                args,
                span,
                cx,
            );
            return f.ret;
        }
        if let Some(sig) = functions::get(&name) {
            let tys = self.check_args(
                &format!("function `{name}`"),
                &Params::Catalog(sig.params),
                args,
                span,
                cx,
            );
            return sig.returns.resolve(&tys);
        }
        for a in args {
            self.expr(&a.value, cx);
        }
        if let Some(sig) = aggregates::get(&name) {
            let args = if sig.params.is_empty() { "" } else { "..." };
            self.error(
                Code::E0308,
                format!("aggregate `{name}` outside `summarize`"),
                callee.span,
                "aggregates need a window of rows",
            )
            .help = Some(format!(
                "use it in a query: `| summarize n = {name}({args}) every 1m`"
            ));
            return Ty::Error;
        }
        if actions::get(&name).is_some() {
            self.error(
                Code::E0219,
                format!("`{name}` is an action, not a function"),
                callee.span,
                "actions are started, not called",
            )
            .help = Some(format!(
                "start it with `trigger {name}(...) limit 1 per 1h`"
            ));
            return Ty::Error;
        }
        if self.unparsed(&name) {
            return Ty::Error;
        }
        let mut d = Diagnostic::new(
            Code::E0204,
            format!("unknown function `{name}`"),
            self.label(callee.span, "not a function"),
        );
        let mut candidates: Vec<String> = functions::FUNCTIONS
            .iter()
            .map(|f| f.name.to_string())
            .collect();
        candidates.extend(self.fns.keys().cloned());
        candidates.extend(aggregates::AGGREGATES.iter().map(|a| a.name.to_string()));
        d = match suggest::help(&name, &candidates) {
            Some(h) => d.with_help(h),
            None => d.with_help("the standard functions are listed in docs/language.md"),
        };
        self.push(d);
        Ty::Error
    }

    /// Binds arguments to parameters and checks their types. Returns the
    /// type bound to each parameter (`Ty::Error` where missing).
    pub fn check_args(
        &mut self,
        what: &str,
        params: &Params,
        args: &[Arg],
        span: Span,
        cx: &Cx,
    ) -> Vec<Ty> {
        let n = params.len();
        let mut bound: Vec<Option<usize>> = vec![None; n];
        let mut next_positional = 0;
        // An argument with an unknown name was probably meant for a missing
        // parameter: it is reported, and the parameter is not reported again.
        let mut n_unknown_names = 0;
        for (ai, arg) in args.iter().enumerate() {
            match &arg.name {
                None => {
                    while next_positional < n && bound[next_positional].is_some() {
                        next_positional += 1;
                    }
                    if next_positional < n {
                        bound[next_positional] = Some(ai);
                        next_positional += 1;
                    } else {
                        let d = Diagnostic::new(
                            Code::E0303,
                            format!(
                                "{what} takes {n} argument{}, found {}",
                                if n == 1 { "" } else { "s" },
                                args.len()
                            ),
                            self.label(arg.span, "extra argument"),
                        )
                        .with_help(format!(
                            "the signature is `{}`",
                            params.signature(what.split('`').nth(1).unwrap_or(what))
                        ));
                        self.push(d);
                    }
                }
                Some(label) => match (0..n).find(|&i| params.name(i) == label.name) {
                    Some(i) if bound[i].is_some() => {
                        let first = bound[i].map_or(label.span, |first| args[first].span);
                        let d = Diagnostic::new(
                            Code::E0215,
                            format!("argument `{}` is given twice", label.name),
                            self.label(label.span, "given again here"),
                        )
                        .with_label(self.label(first, "first given here"))
                        .with_help("remove one of them");
                        self.push(d);
                    }
                    Some(i) => bound[i] = Some(ai),
                    None => {
                        n_unknown_names += 1;
                        let names: Vec<String> =
                            (0..n).map(|i| params.name(i).to_string()).collect();
                        let mut d = Diagnostic::new(
                            Code::E0215,
                            format!("{what} has no parameter `{}`", label.name),
                            self.label(label.span, "unknown parameter"),
                        );
                        d = match suggest::help(&label.name, &names) {
                            Some(h) => d.with_help(h),
                            None => d.with_help(format!(
                                "the signature is `{}`",
                                params.signature(what.split('`').nth(1).unwrap_or(what))
                            )),
                        };
                        self.push(d);
                    }
                },
            }
        }
        let arg_tys: Vec<Ty> = args.iter().map(|a| self.expr(&a.value, cx)).collect();
        let param_tys: Vec<Ty> = bound
            .iter()
            .map(|b| b.map_or(Ty::Error, |ai| arg_tys[ai].clone()))
            .collect();
        for (i, slot) in bound.iter().enumerate() {
            match *slot {
                None if !params.optional(i) && n_unknown_names == 0 => {
                    let d = Diagnostic::new(
                        Code::E0303,
                        format!("{what} is missing argument `{}`", params.name(i)),
                        self.label(span, format!("`{}` not given", params.name(i))),
                    )
                    .with_help(format!(
                        "the signature is `{}`",
                        params.signature(what.split('`').nth(1).unwrap_or(what))
                    ));
                    self.push(d);
                }
                None => {}
                Some(ai) => {
                    let ty = &arg_tys[ai];
                    if params.accepts(i, ty, &param_tys) {
                        continue;
                    }
                    let arg_span = args[ai].value.span;
                    if ty.is_optional() && params.accepts(i, ty.unwrap_optional(), &param_tys) {
                        self.optional_used(arg_span, ty, &format!("argument `{}`", params.name(i)));
                    } else {
                        let expected = params.describe(i);
                        let d = Diagnostic::new(
                            Code::E0304,
                            format!(
                                "argument `{}` of {what} must be {expected}, found `{ty}`",
                                params.name(i)
                            ),
                            self.label(arg_span, format!("this is `{ty}`")),
                        );
                        let wanted = match expected.as_str() {
                            "float" => Ty::Float,
                            "int" => Ty::Int,
                            "string" => Ty::String,
                            "duration" => Ty::Duration,
                            "percent" => Ty::Percent,
                            _ => Ty::Error,
                        };
                        let d = match mismatch_help(&wanted, ty) {
                            Some(h) => d.with_help(h),
                            None => d,
                        };
                        self.push(d);
                    }
                }
            }
        }
        param_tys
    }

    fn binary(&mut self, op: BinaryOp, a: &Expr, b: &Expr, lt: Ty, rt: Ty, span: Span) -> Ty {
        use BinaryOp as B;
        let is_cmp = matches!(op, B::Eq | B::Ne | B::Lt | B::Le | B::Gt | B::Ge);
        if lt.is_error() || rt.is_error() {
            return if is_cmp || matches!(op, B::And | B::Or) {
                Ty::Bool
            } else if op == B::Coalesce {
                lt.unwrap_optional().clone()
            } else {
                Ty::Error
            };
        }
        match op {
            B::Coalesce => {
                if !lt.is_optional() {
                    let d = self.error(
                        Code::E0305,
                        format!("the left side of `??` is `{lt}`, which is never absent"),
                        a.span,
                        format!("this is `{lt}`"),
                    );
                    d.help = Some("remove `?? ...`".into());
                    return lt;
                }
                let inner = lt.unwrap_optional().clone();
                if inner.accepts(&rt) {
                    inner
                } else if lt.accepts(&rt) {
                    lt
                } else if inner == Ty::Dyn {
                    // The default shows the type the attribute was meant to
                    // have: one error, and no second one where it is used.
                    self.error(
                        Code::E0301,
                        format!("an attribute's value is `dyn`, and cannot default to `{rt}`"),
                        b.span,
                        format!("this is `{rt}`"),
                    )
                    .help = Some(DYN_HELP.into());
                    Ty::Error
                } else {
                    self.error(
                        Code::E0301,
                        format!("the default of `??` must be `{inner}`, found `{rt}`"),
                        b.span,
                        format!("this is `{rt}`"),
                    );
                    inner
                }
            }
            B::Eq | B::Ne => {
                let (li, ri) = (lt.unwrap_optional(), rt.unwrap_optional());
                let comparable = |t: &Ty| !matches!(t, Ty::Map(..) | Ty::Histogram | Ty::Dyn);
                if (lt == Ty::None || rt == Ty::None) && (lt.is_optional() || rt.is_optional()) {
                    return Ty::Bool;
                }
                if lt == Ty::None || rt == Ty::None {
                    let other = if lt == Ty::None {
                        (&rt, b.span)
                    } else {
                        (&lt, a.span)
                    };
                    let other = (other.0.clone(), other.1);
                    let d = self.error(
                        Code::E0305,
                        format!("`{}` is never `none`", other.0),
                        other.1,
                        format!("this is `{}`, not optional", other.0),
                    );
                    d.help = Some("only optional values (`T?`) can be compared with `none`".into());
                    return Ty::Bool;
                }
                if li != ri || !comparable(li) {
                    let d = self.error(
                        Code::E0305,
                        format!("cannot compare `{lt}` with `{rt}`"),
                        span,
                        format!("`{lt}` {} `{rt}`", op.symbol()),
                    );
                    d.help = Some(conversion_help(op, li, ri));
                }
                Ty::Bool
            }
            _ => {
                if lt.is_optional() || rt.is_optional() || lt == Ty::None || rt == Ty::None {
                    let (bad, bspan) = if lt.is_optional() || lt == Ty::None {
                        (lt.clone(), a.span)
                    } else {
                        (rt.clone(), b.span)
                    };
                    self.optional_used(bspan, &bad, &format!("an operand of `{}`", op.symbol()));
                    return if is_cmp || matches!(op, B::And | B::Or) {
                        Ty::Bool
                    } else {
                        Ty::Error
                    };
                }
                let result = arithmetic(op, &lt, &rt);
                match result {
                    Some(t) => t,
                    None => {
                        let d = self.error(
                            Code::E0305,
                            format!("`{}` cannot be applied to `{lt}` and `{rt}`", op.symbol()),
                            span,
                            format!("`{lt}` {} `{rt}`", op.symbol()),
                        );
                        d.help = Some(if matches!(op, B::And | B::Or) {
                            "`&&` and `||` take two `bool`s".to_string()
                        } else {
                            conversion_help(op, &lt, &rt)
                        });
                        if is_cmp || matches!(op, B::And | B::Or) {
                            Ty::Bool
                        } else {
                            Ty::Error
                        }
                    }
                }
            }
        }
    }
}

fn conversion_help(op: BinaryOp, a: &Ty, b: &Ty) -> String {
    use BinaryOp as B;
    match (op, a, b) {
        (_, Ty::Int, Ty::Float) | (_, Ty::Float, Ty::Int) => {
            "there are no implicit conversions: convert with `to_float(...)` or `to_int(...)`".into()
        }
        (_, Ty::Dyn, _) | (_, _, Ty::Dyn) => DYN_HELP.into(),
        (B::Add | B::Sub | B::Lt | B::Le | B::Gt | B::Ge | B::Eq | B::Ne, Ty::Duration, Ty::Int)
        | (B::Add | B::Sub | B::Lt | B::Le | B::Gt | B::Ge | B::Eq | B::Ne, Ty::Int, Ty::Duration) => {
            "a number has no unit: write a duration literal such as `500ms`".into()
        }
        (B::Lt | B::Le | B::Gt | B::Ge | B::Eq | B::Ne, Ty::Timestamp, Ty::Duration)
        | (B::Lt | B::Le | B::Gt | B::Ge | B::Eq | B::Ne, Ty::Duration, Ty::Timestamp) => {
            "a timestamp is a point in time: compare the time elapsed, e.g. `event.time - started > 5s`".into()
        }
        (B::Add, Ty::Timestamp, Ty::Timestamp) => {
            "timestamps cannot be added: subtract them to get the duration between them, or add a duration".into()
        }
        (_, Ty::String, _) | (_, _, Ty::String) => "convert with `to_string(...)`: there are no implicit conversions".into(),
        _ => "both sides must have compatible types; see the operator table in docs/language.md".into(),
    }
}

/// How to convert an attribute's `dyn` value.
const DYN_HELP: &str = "convert the attribute first: `to_int(attrs[\"k\"]) ?? 0` is its value as an int, or 0 when it is absent or not an int";

/// A help line for a value of type `found` where `expected` is needed, when
/// there is a usual fix.
pub fn mismatch_help(expected: &Ty, found: &Ty) -> Option<String> {
    Some(match (expected.unwrap_optional(), found) {
        (Ty::Float, Ty::Int) => "convert it with `to_float(...)`: there are no implicit conversions".into(),
        (Ty::Int, Ty::Float) => "convert it with `to_int(...)`: there are no implicit conversions".into(),
        (Ty::String, Ty::Int | Ty::Float | Ty::Bool) => {
            "convert it with `to_string(...)`: there are no implicit conversions".into()
        }
        (Ty::Int, Ty::String) => "convert it with `to_int(...)`, which gives `none` when the text is not a number".into(),
        (Ty::Float, Ty::String) => "convert it with `to_float(...)`, which gives `none` when the text is not a number".into(),
        (Ty::Duration, Ty::Int | Ty::Float) => {
            "a number has no unit: give a duration, such as a literal `30s` or a difference of timestamps".into()
        }
        (Ty::Int, Ty::Duration) => "convert it with `millis(...)` to a number of milliseconds".into(),
        (Ty::Percent, Ty::Float | Ty::Int) => "write a percentage literal such as `10%`".into(),
        (_, Ty::Dyn) => DYN_HELP.into(),
        _ => return None,
    })
}

/// The result of an arithmetic, ordering or logical operator on two
/// non-optional types, or `None` if it does not apply.
fn arithmetic(op: BinaryOp, l: &Ty, r: &Ty) -> Option<Ty> {
    use BinaryOp as B;
    use Ty as T;
    Some(match (op, l, r) {
        (B::And | B::Or, T::Bool, T::Bool) => T::Bool,
        (B::Lt | B::Le | B::Gt | B::Ge, a, b) if a == b && Pattern::Ordered.matches(a, &[]) => {
            T::Bool
        }
        (B::Add, T::String, T::String) => T::String,
        (B::Add | B::Sub | B::Mul | B::Div | B::Rem, T::Int, T::Int) => T::Int,
        (B::Add | B::Sub | B::Mul | B::Div | B::Rem, T::Float, T::Float) => T::Float,
        (B::Add | B::Sub, T::Duration, T::Duration) => T::Duration,
        (B::Add, T::Timestamp, T::Duration) | (B::Add, T::Duration, T::Timestamp) => T::Timestamp,
        (B::Sub, T::Timestamp, T::Duration) => T::Timestamp,
        (B::Sub, T::Timestamp, T::Timestamp) => T::Duration,
        (B::Mul, T::Duration, T::Int) | (B::Mul, T::Int, T::Duration) => T::Duration,
        (B::Div, T::Duration, T::Int) => T::Duration,
        (B::Div, T::Duration, T::Duration) => T::Float,
        _ => return None,
    })
}
