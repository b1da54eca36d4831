//! Statements and blocks: the bodies of functions, handlers, transitions
//! and timeouts, with the scoping rules of each (what is readable, what is
//! assignable, where `emit`, `trigger` and `return` may appear).

use crate::expr::{DURATIONS, ExprGen, MapVal, Scope, Val};
use crate::program::Gen;
use crate::ty::{Base, Ty, VALUE_BASES};

/// What a block may do, besides reading its scope.
#[derive(Debug, Clone)]
pub struct Body {
    pub scope: Scope,
    /// Scalar variables that may be assigned (and whether they may also
    /// be read: a target state's variables may not).
    pub assign: Vec<(String, Ty)>,
    /// Of those, the ones that may not be set yet (the initial state's
    /// variables without a default): only `=` may assign them, since the
    /// checker refuses `+=` on them (E0321).
    pub unset: Vec<String>,
    pub maps: Vec<MapVal>,
    pub emit: bool,
    pub trigger: bool,
    /// Nesting left for `if` and `for`.
    pub nest: u32,
}

impl<'a> Gen<'_, 'a> {
    pub fn x(&mut self) -> ExprGen<'_, 'a> {
        ExprGen { e: &mut *self.e }
    }

    /// A producible base type for a new binding.
    fn binding_ty(&mut self, sc: &Scope) -> Ty {
        let bases: Vec<Base> = VALUE_BASES
            .into_iter()
            .filter(|b| *b != Base::Bytes && sc.can(Ty::plain(*b)))
            .collect();
        Ty::plain(*self.e.pick(&bases))
    }

    /// Up to `max` statements at `indent`, appended to `out`.
    pub fn block(&mut self, body: &mut Body, max: u32, indent: usize, out: &mut String) {
        for _ in 0..max {
            if !self.e.chance(3, 4) {
                break;
            }
            self.stmt(body, indent, out);
        }
    }

    fn line(&self, indent: usize, text: &str, out: &mut String) {
        for _ in 0..indent {
            out.push_str("    ");
        }
        out.push_str(text);
        out.push('\n');
    }

    fn stmt(&mut self, body: &mut Body, indent: usize, out: &mut String) {
        // A variable of a type nothing here can produce (a timestamp in a
        // timeout) is left alone: optional ones can still be cleared.
        let assignable: Vec<(String, Ty)> = body
            .assign
            .iter()
            .filter(|(_, t)| t.opt || body.scope.can(*t))
            .cloned()
            .collect();
        let maps: Vec<MapVal> = body
            .maps
            .iter()
            .filter(|m| body.scope.can(Ty::plain(m.val)))
            .cloned()
            .collect();
        let weights = [
            3,                                         // let
            2,                                         // local var
            if assignable.is_empty() { 0 } else { 4 }, // assignment
            if maps.is_empty() { 0 } else { 3 },       // map update
            if body.nest > 0 { 3 } else { 0 },         // if
            if body.nest > 0 { 2 } else { 0 },         // if let
            if body.nest > 0 { 1 } else { 0 },         // for range
            if body.nest > 0 && !body.maps.is_empty() {
                1
            } else {
                0
            }, // for map
            if body.emit { 3 } else { 0 },             // emit
            if body.trigger { 2 } else { 0 },          // trigger
        ];
        let depth = 3;
        match self.e.weighted(&weights) {
            0 | 1 => {
                let ty = self.binding_ty(&body.scope);
                let value = self.x().expr(&body.scope, ty, depth);
                let local = self.e.weighted(&weights[..2]) == 1;
                let name = self.fresh(if local { "l" } else { "t" });
                let kw = if local { "var" } else { "let" };
                let annot = if self.e.chance(1, 4) {
                    format!(": {}", ty.text())
                } else {
                    String::new()
                };
                self.line(indent, &format!("{kw} {name}{annot} = {value}"), out);
                body.scope.vals.push(Val {
                    text: name.clone(),
                    ty,
                    pii: false,
                });
                if local {
                    body.assign.push((name, ty));
                }
            }
            2 => {
                let (name, ty) = self.e.pick(&assignable).clone();
                let compound = !body.unset.contains(&name);
                let text = self.assignment(&body.scope, &name, ty, compound);
                self.line(indent, &text, out);
            }
            3 => {
                let m = self.e.pick(&maps).clone();
                let k = self.x().expr(&body.scope, Ty::plain(m.key), 2);
                let text = match self.e.below(3) {
                    0 => {
                        let v = self.x().expr(&body.scope, Ty::plain(m.val), 2);
                        format!("{}[{k}] = {v}", m.name)
                    }
                    1 if matches!(m.val, Base::Int | Base::Float | Base::Duration | Base::Str) => {
                        let v = self.x().expr(&body.scope, Ty::plain(m.val), 2);
                        let op = if m.val == Base::Str {
                            "+="
                        } else {
                            *self.e.pick(&["+=", "-="])
                        };
                        format!("{}[{k}] {op} {v}", m.name)
                    }
                    _ => format!("remove({}, {k})", m.name),
                };
                self.line(indent, &text, out);
            }
            4 => self.if_stmt(body, indent, out),
            5 => {
                let bases: Vec<Base> = VALUE_BASES
                    .into_iter()
                    .filter(|b| body.scope.can(Ty::opt(*b)))
                    .collect();
                let b = *self.e.pick(&bases);
                let x = self.x().opt(&body.scope, b, 2);
                let name = self.fresh("o");
                self.line(indent, &format!("if let {name} = {x} {{"), out);
                let mut inner = body.clone();
                inner.nest -= 1;
                inner.scope.vals.push(Val {
                    text: name,
                    ty: Ty::plain(b),
                    pii: false,
                });
                self.block(&mut inner, 3, indent + 1, out);
                if self.e.chance(1, 2) {
                    self.line(indent, "} else {", out);
                    let mut other = body.clone();
                    other.nest -= 1;
                    self.block(&mut other, 2, indent + 1, out);
                }
                self.line(indent, "}", out);
            }
            6 => {
                let name = self.fresh("i");
                let lo = self.e.range(0, 2);
                let hi = lo + self.e.range(0, 4);
                self.line(indent, &format!("for {name} in {lo}..{hi} {{"), out);
                let mut inner = body.clone();
                inner.nest -= 1;
                inner.scope.vals.push(Val {
                    text: name,
                    ty: Ty::plain(Base::Int),
                    pii: false,
                });
                self.block(&mut inner, 3, indent + 1, out);
                self.line(indent, "}", out);
            }
            7 => {
                let m = self.e.pick(&body.maps).clone();
                let (k, v) = (self.fresh("k"), self.fresh("v"));
                self.line(indent, &format!("for {k}, {v} in {} {{", m.name), out);
                let mut inner = body.clone();
                inner.nest -= 1;
                inner.scope.vals.push(Val {
                    text: k,
                    ty: Ty::plain(m.key),
                    pii: false,
                });
                inner.scope.vals.push(Val {
                    text: v,
                    ty: Ty::plain(m.val),
                    pii: false,
                });
                self.block(&mut inner, 3, indent + 1, out);
                self.line(indent, "}", out);
            }
            8 => {
                let text = self.emit_log(&body.scope);
                self.line(indent, &text, out);
            }
            _ => {
                let text = self.trigger(&body.scope);
                self.line(indent, &text, out);
            }
        }
    }

    fn assignment(&mut self, sc: &Scope, name: &str, ty: Ty, may_compound: bool) -> String {
        let compound = match ty.base {
            _ if ty.opt || !may_compound => None,
            Base::Int | Base::Float | Base::Duration => Some((ty, *self.e.pick(&["+=", "-="]))),
            Base::Str => Some((ty, "+=")),
            Base::Timestamp => Some((Ty::plain(Base::Duration), *self.e.pick(&["+=", "-="]))),
            _ => None,
        };
        if let Some((rhs, op)) = compound
            && self.e.chance(1, 2)
        {
            let v = self.x().expr(sc, rhs, 3);
            return format!("{name} {op} {v}");
        }
        let value = if ty.opt && self.e.chance(1, 4) {
            "none".to_string()
        } else if ty.opt && sc.can(Ty::plain(ty.base)) && self.e.chance(1, 2) {
            self.x().expr(sc, Ty::plain(ty.base), 3)
        } else if !sc.can(ty) {
            "none".to_string()
        } else {
            self.x().expr(sc, ty, 3)
        };
        format!("{name} = {value}")
    }

    fn if_stmt(&mut self, body: &mut Body, indent: usize, out: &mut String) {
        let c = self.x().expr(&body.scope, Ty::plain(Base::Bool), 3);
        self.line(indent, &format!("if {c} {{"), out);
        let mut inner = body.clone();
        inner.nest -= 1;
        self.block(&mut inner, 3, indent + 1, out);
        while self.e.chance(1, 3) {
            let c = self.x().expr(&body.scope, Ty::plain(Base::Bool), 2);
            self.line(indent, &format!("}} else if {c} {{"), out);
            let mut inner = body.clone();
            inner.nest -= 1;
            self.block(&mut inner, 2, indent + 1, out);
        }
        if self.e.chance(1, 2) {
            self.line(indent, "} else {", out);
            let mut inner = body.clone();
            inner.nest -= 1;
            self.block(&mut inner, 2, indent + 1, out);
        }
        self.line(indent, "}", out);
    }

    /// `limit n per d`, or nothing (the default budget).
    pub fn budget(&mut self) -> String {
        if self.e.chance(2, 3) {
            let n = self.e.range(1, 4);
            let d = self.e.pick(&["1s", "10s", "1m", "5m", "1h"]);
            format!(" limit {n} per {d}")
        } else {
            String::new()
        }
    }

    fn emit_log(&mut self, sc: &Scope) -> String {
        // Reuse a log some handler already emits (same fields, same types)
        // or define a new one.
        let reusable: Vec<usize> = (0..self.derived.len())
            .filter(|i| {
                let d = &self.derived[*i];
                !d.from_query && d.fields.iter().all(|(_, t)| sc.can(*t))
            })
            .collect();
        let index = if !reusable.is_empty() && self.e.chance(1, 3) {
            *self.e.pick(&reusable)
        } else {
            let name = self.fresh("Log");
            let mut fields = Vec::new();
            for _ in 0..4 {
                if !self.e.chance(2, 3) {
                    break;
                }
                let ty = self.binding_ty(sc);
                fields.push((self.fresh("g"), ty));
            }
            self.derived.push(crate::program::Derived {
                name,
                fields,
                from_query: false,
            });
            self.derived.len() - 1
        };
        let d = self.derived[index].clone();
        let inits: Vec<String> = d
            .fields
            .iter()
            .map(|(f, t)| format!("{f}: {}", self.x().expr(sc, *t, 2)))
            .collect();
        let budget = self.budget();
        format!("emit log {} {{ {} }}{budget}", d.name, inits.join(", "))
    }

    fn trigger(&mut self, sc: &Scope) -> String {
        let action = match self.e.below(6) {
            0 => format!("cpu_sample(for: {})", self.e.pick(&DURATIONS)),
            1 => "memory_dump()".to_string(),
            2 => format!("verbose_logs(for: {})", self.e.pick(&DURATIONS)),
            3 => "flight_recorder.snapshot()".to_string(),
            4 => {
                let n = self.x().expr(sc, Ty::plain(Base::Int), 1);
                format!("flight_recorder.snapshot(events: {n})")
            }
            _ => "collect_config(path: \"/etc/imagesvc/config.toml\")".to_string(),
        };
        let budget = self.budget();
        format!("trigger {action}{budget}")
    }
}
