//! The IR's text form: what `dtc inspect` shows and what IR snapshot tests
//! compare. One item per block, one statement per line, every expression
//! with the indices it resolved to.

use std::fmt::Write as _;

use crate::*;

/// The whole program as text.
pub fn print(p: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "program {:?}", p.name);
    for (i, e) in p.events.iter().enumerate() {
        let kind = if e.derived { "derived event" } else { "event" };
        let _ = writeln!(out, "{kind} e{i} {} = {:?} {{", e.name, e.wire);
        for (s, f) in e.fields.iter().enumerate() {
            let sens = match f.sensitivity {
                Some(Sensitivity::Pii) => " @pii",
                Some(Sensitivity::Secret) => " @secret",
                None => "",
            };
            let key = if f.key != f.name {
                format!(" @attr({:?})", f.key)
            } else {
                String::new()
            };
            let _ = writeln!(out, "    s{s} {}: {}{sens}{key}", f.name, f.ty);
        }
        let _ = writeln!(out, "}}");
    }
    for r in &p.shaping {
        let _ = writeln!(out, "shape {}", shape(p, r));
    }
    for (i, f) in p.functions.iter().enumerate() {
        let params: Vec<String> = f
            .params
            .iter()
            .enumerate()
            .map(|(j, t)| format!("l{j}: {t}"))
            .collect();
        let _ = writeln!(
            out,
            "fn f{i} {}({}) -> {} locals {} {{",
            f.name,
            params.join(", "),
            f.ret,
            f.n_locals
        );
        block(&mut out, &f.body, 1);
        let _ = writeln!(out, "}}");
    }
    for (i, q) in p.queries.iter().enumerate() {
        let _ = writeln!(out, "query q{i} {} from e{} {{", q.name, q.source);
        for s in &q.stages {
            let _ = writeln!(out, "    | {}", stage(s));
        }
        let _ = writeln!(out, "}}");
    }
    for (i, m) in p.machines.iter().enumerate() {
        let _ = writeln!(out, "machine m{i} {} max {} {{", m.name, m.max_instances);
        if let Some(keys) = &m.keys {
            for (e, k) in keys {
                let _ = writeln!(out, "    key on e{e} = {}", expr(k));
            }
        }
        for (s, t) in m.slots.iter().enumerate() {
            let _ = writeln!(out, "    slot v{s}: {t}");
        }
        for (j, v) in m.vars.iter().enumerate() {
            let _ = writeln!(out, "    {}", var(j, v));
        }
        for (j, s) in m.states.iter().enumerate() {
            let vars: Vec<String> = s
                .vars
                .iter()
                .map(|(slot, d)| match d {
                    Some(d) => format!("v{slot} = {}", expr(d)),
                    None => format!("v{slot}"),
                })
                .collect();
            let _ = writeln!(out, "    state S{j} {} {{{}}}", s.name, vars.join(", "));
        }
        for t in &m.transitions {
            let from = if t.from.is_empty() {
                "any".to_string()
            } else {
                t.from
                    .iter()
                    .map(|s| format!("S{s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let guard = t
                .guard
                .as_ref()
                .map_or(String::new(), |g| format!(" when {}", expr(g)));
            let _ = writeln!(
                out,
                "    on e{} in {from}{guard} -> S{} locals {} {{",
                t.event, t.target, t.n_locals
            );
            block(&mut out, &t.body, 2);
            let _ = writeln!(out, "    }}");
        }
        for t in &m.timeouts {
            let _ = writeln!(
                out,
                "    after {}ns in S{} -> S{} locals {} {{",
                t.after_ns, t.from, t.target, t.n_locals
            );
            block(&mut out, &t.body, 2);
            let _ = writeln!(out, "    }}");
        }
        let _ = writeln!(out, "}}");
    }
    for (i, pr) in p.processors.iter().enumerate() {
        let _ = writeln!(out, "processor p{i} {} {{", pr.name);
        for (j, v) in pr.vars.iter().enumerate() {
            let _ = writeln!(out, "    {}", var(j, v));
        }
        for h in &pr.handlers {
            let guard = h
                .guard
                .as_ref()
                .map_or(String::new(), |g| format!(" when {}", expr(g)));
            let _ = writeln!(out, "    on e{}{guard} locals {} {{", h.event, h.n_locals);
            block(&mut out, &h.body, 2);
            let _ = writeln!(out, "    }}");
        }
        let _ = writeln!(out, "}}");
    }
    out
}

fn var(j: usize, v: &VarDef) -> String {
    let init = v
        .init
        .as_ref()
        .map_or(String::new(), |e| format!(" = {}", expr(e)));
    let max = v.max_entries.map_or(String::new(), |n| format!(" max {n}"));
    format!("var g{j} {}: {}{init}{max}", v.name, v.ty)
}

fn budget(b: &Budget) -> String {
    format!(
        "limit {} per {}ns{}",
        b.count,
        b.per_ns,
        if b.declared { "" } else { " (default)" }
    )
}

fn shape(p: &Program, r: &ShapeRule) -> String {
    let name = |e: &u32| {
        p.events
            .get(*e as usize)
            .map_or("?".to_string(), |l| l.name.clone())
    };
    match r {
        ShapeRule::Suppress { event, when } => match when {
            Some(w) => format!("suppress e{event} {} when {}", name(event), expr(w)),
            None => format!("suppress e{event} {}", name(event)),
        },
        ShapeRule::SuppressField { event, slot, when } => match when {
            Some(w) => format!("suppress e{event}.s{slot} when {}", expr(w)),
            None => format!("suppress e{event}.s{slot}"),
        },
        ShapeRule::Redact {
            event,
            slot,
            method,
        } => format!("redact e{event}.s{slot} with {method:?}"),
        ShapeRule::RedactStd {
            event,
            field,
            method,
            when,
        } => match when {
            Some(w) => format!(
                "redact e{event}.{} with {method:?} when {}",
                field.name(),
                expr(w)
            ),
            None => format!("redact e{event}.{} with {method:?}", field.name()),
        },
        ShapeRule::Sample { event, rate } => format!("sample e{event} {rate}%"),
        ShapeRule::Limit {
            event,
            count,
            per_ns,
        } => format!("limit e{event} {count} per {per_ns}ns"),
    }
}

fn stage(s: &Stage) -> String {
    let cols = |cs: &[(String, Expr)]| {
        cs.iter()
            .map(|(n, e)| format!("{n} = {}", expr(e)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match s {
        Stage::Where(e) => format!("where {}", expr(e)),
        Stage::Extend(c) => format!("extend {}", cols(c)),
        Stage::Project(c) => format!("project {}", cols(c)),
        Stage::Summarize {
            keys,
            aggregates,
            every_ns,
            max_series,
        } => {
            let aggs: Vec<String> = aggregates
                .iter()
                .map(|a| {
                    format!(
                        "{} = {:?}({}): {}",
                        a.name,
                        a.kind,
                        a.args.iter().map(expr).collect::<Vec<_>>().join(", "),
                        a.ty
                    )
                })
                .collect();
            let max = max_series.map_or(String::new(), |n| format!(" max {n}"));
            format!(
                "summarize {} by {}{max} every {every_ns}ns",
                aggs.join(", "),
                cols(keys)
            )
        }
        Stage::Sample { rate, site } => format!("sample {rate}% #{site}"),
        Stage::Limit { count, per_ns } => format!("limit {count} per {per_ns}ns"),
        Stage::EmitLog { event, fields } => {
            let f: Vec<String> = fields
                .iter()
                .map(|(s, e)| format!("s{s} = {}", expr(e)))
                .collect();
            format!("emit log e{event} {{{}}}", f.join(", "))
        }
        Stage::EmitMetric { name } => format!("emit metric {name:?}"),
    }
}

fn place(p: &Place) -> String {
    match p {
        Place::Local(i) => format!("l{i}"),
        Place::Var(i) => format!("g{i}"),
        Place::StateVar(i) => format!("v{i}"),
        Place::Entry(b, k) => format!("{}[{}]", place(b), expr(k)),
    }
}

fn block(out: &mut String, stmts: &[Stmt], depth: usize) {
    let pad = "    ".repeat(depth);
    for s in stmts {
        match s {
            Stmt::Let(i, e) => {
                let _ = writeln!(out, "{pad}let l{i} = {}", expr(e));
            }
            Stmt::Assign {
                place: p,
                op,
                value,
            } => {
                let op = match op {
                    AssignOp::Set => "=",
                    AssignOp::Add => "+=",
                    AssignOp::Sub => "-=",
                };
                let _ = writeln!(out, "{pad}{} {op} {}", place(p), expr(value));
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let _ = writeln!(out, "{pad}if {} {{", expr(cond));
                block(out, then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(out, "{pad}}} else {{");
                    block(out, otherwise, depth + 1);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            Stmt::IfLet {
                local,
                value,
                then,
                otherwise,
            } => {
                let _ = writeln!(out, "{pad}if let l{local} = {} {{", expr(value));
                block(out, then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(out, "{pad}}} else {{");
                    block(out, otherwise, depth + 1);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            Stmt::ForRange {
                local,
                from,
                to,
                body,
            } => {
                let _ = writeln!(out, "{pad}for l{local} in {from}..{to} {{");
                block(out, body, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            Stmt::ForMap {
                map,
                key,
                value,
                body,
            } => {
                let v = value.map_or(String::new(), |v| format!(", l{v}"));
                let _ = writeln!(out, "{pad}for l{key}{v} in {} {{", place(map));
                block(out, body, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            Stmt::Emit {
                event,
                fields,
                budget: b,
                site,
            } => {
                let f: Vec<String> = fields
                    .iter()
                    .map(|(s, e)| format!("s{s} = {}", expr(e)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{pad}emit e{event} {{{}}} {} #{site}",
                    f.join(", "),
                    budget(b)
                );
            }
            Stmt::Trigger {
                action,
                args,
                budget: b,
                site,
            } => {
                let a: Vec<String> = args
                    .iter()
                    .map(|(n, e)| format!("{n}: {}", expr(e)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{pad}trigger {action}({}) {} #{site}",
                    a.join(", "),
                    budget(b)
                );
            }
            Stmt::Return(e) => {
                let _ = writeln!(out, "{pad}return {}", expr(e));
            }
            Stmt::Expr(e) => {
                let _ = writeln!(out, "{pad}{}", expr(e));
            }
        }
    }
}

/// One expression, with its type at the top.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Const(c) => match c {
            Const::Bool(b) => b.to_string(),
            Const::Int(i) => i.to_string(),
            Const::Float(f) => format!("{f:?}"),
            Const::Str(s) => format!("{s:?}"),
            Const::Duration(ns) => format!("{ns}ns"),
            Const::Percent(p) => format!("{p}%"),
            Const::None => "none".into(),
        },
        ExprKind::Field(s) => format!("event.s{s}"),
        ExprKind::Std(f) => format!("event.{}", f.name()),
        ExprKind::Local(i) => format!("l{i}"),
        ExprKind::Var(i) => format!("g{i}"),
        ExprKind::StateVar(i) => format!("v{i}"),
        ExprKind::Column(i) => format!("c{i}"),
        ExprKind::Unary(op, a) => {
            format!("{}{}", if *op == UnOp::Not { "!" } else { "-" }, expr(a))
        }
        ExprKind::Binary(op, a, b) => format!("({} {op:?} {})", expr(a), expr(b)),
        ExprKind::Coalesce(a, b) => format!("({} ?? {})", expr(a), expr(b)),
        ExprKind::Index(a, b) => format!("{}[{}]", expr(a), expr(b)),
        ExprKind::Call(n, args) => format!(
            "{n}({})",
            args.iter().map(expr).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::CallFn(i, args) => format!(
            "f{i}({})",
            args.iter().map(expr).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Sample { rate, site } => format!("sample({}) #{site}", expr(rate)),
        ExprKind::InState { machine, state } => format!("m{machine} is S{state}"),
    }
}
