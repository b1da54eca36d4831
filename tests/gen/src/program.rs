//! Whole programs: event schemas, functions, machines, processors, queries
//! and shaping rules, written as dt source in the formatter's layout. The
//! generator keeps to what the checker accepts: names resolve, types
//! match, optional values are handled, personal data reaches egress only
//! declassified, and a machine's key can be computed for every event it
//! reads.

use crate::entropy::Entropy;
use crate::expr::{DURATIONS, FnSig, IsTarget, MapVal, Scope, Val};
use crate::stmt::Body;
use crate::ty::{Base, Ty, VALUE_BASES};

/// A declared event.
#[derive(Debug, Clone)]
pub struct EventDecl {
    pub name: String,
    /// The durable ID: what the `event` key of an input line says.
    pub id: String,
    pub fields: Vec<Field>,
}

/// A declared field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    /// The attribute it is read from.
    pub wire: String,
    pub ty: Ty,
    pub pii: bool,
    /// `@secret`: never read at all, and never masked on egress.
    pub secret: bool,
}

/// A log the program emits, which queries may read as a source.
#[derive(Debug, Clone)]
pub struct Derived {
    pub name: String,
    pub fields: Vec<(String, Ty)>,
    pub from_query: bool,
}

/// A machine, for `m is S` tests.
#[derive(Debug, Clone)]
struct MachineInfo {
    name: String,
    states: Vec<String>,
    /// The field its key reads, if any: `is` needs the event to have it.
    key_field: Option<(String, Ty)>,
}

/// The fields every event has, by the name a query uses.
pub const STANDARD: [(&str, Ty); 9] = [
    ("time", Ty::plain(Base::Timestamp)),
    ("observed_time", Ty::plain(Base::Timestamp)),
    ("severity", Ty::plain(Base::Int)),
    ("severity_text", Ty::opt(Base::Str)),
    ("body", Ty::opt(Base::Str)),
    ("trace_id", Ty::opt(Base::Str)),
    ("span_id", Ty::opt(Base::Str)),
    ("thread_id", Ty::opt(Base::Int)),
    ("service", Ty::opt(Base::Str)),
];

/// Field names, each with one type per program so that events share
/// fields (a machine's key must exist on every event it reads).
const FIELD_NAMES: [&str; 10] = [
    "id", "n", "name", "path", "size", "ok", "took", "at", "ratio", "code",
];

/// The generator's state while writing one program.
pub struct Gen<'e, 'a> {
    pub e: &'e mut Entropy<'a>,
    counter: u32,
    pub events: Vec<EventDecl>,
    pub derived: Vec<Derived>,
    fns: Vec<FnSig>,
    machines: Vec<MachineInfo>,
    field_types: Vec<Ty>,
}

/// A generated program and what the event generator needs to know of it.
#[derive(Debug, Clone)]
pub struct Program {
    pub source: String,
    pub events: Vec<EventDecl>,
    pub derived: Vec<Derived>,
}

impl<'e, 'a> Gen<'e, 'a> {
    pub fn new(e: &'e mut Entropy<'a>) -> Gen<'e, 'a> {
        Gen {
            e,
            counter: 0,
            events: Vec::new(),
            derived: Vec::new(),
            fns: Vec::new(),
            machines: Vec::new(),
            field_types: Vec::new(),
        }
    }

    pub fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    /// A whole program.
    pub fn program(mut self) -> Program {
        self.field_types = FIELD_NAMES
            .iter()
            .map(|_| {
                let base = VALUE_BASES[self.e.weighted(&[5, 5, 3, 3, 3, 2, 1, 1])];
                Ty {
                    base,
                    opt: self.e.chance(1, 4),
                }
            })
            .collect();
        let mut items = Vec::new();
        let n_events = 1 + self.count(3, 3, 4);
        for i in 0..n_events {
            items.push(self.event(i));
        }
        for _ in 0..self.count(2, 1, 2) {
            items.push(self.function());
        }
        // Machine names first, so that processors and queries may test
        // them; their bodies may test each other too.
        let n_machines = self.count(2, 1, 2);
        let mut machine_text = Vec::new();
        for _ in 0..n_machines {
            machine_text.push(self.machine());
        }
        items.extend(machine_text);
        for _ in 0..self.count(2, 1, 2) {
            items.push(self.processor());
        }
        for _ in 0..self.count(3, 3, 5) {
            if let Some(q) = self.query() {
                items.push(q);
            }
        }
        items.extend(self.shaping());
        Program {
            source: items.join("\n"),
            events: self.events,
            derived: self.derived,
        }
    }

    /// Up to `max`, each more with probability `num / den`.
    fn count(&mut self, max: u32, num: u32, den: u32) -> u32 {
        let mut n = 0;
        while n < max && self.e.chance(num, den) {
            n += 1;
        }
        n
    }

    fn event(&mut self, i: u32) -> String {
        let name = format!("Ev{i}");
        let id = if self.e.chance(1, 4) {
            format!("app.{name}")
        } else {
            name.clone()
        };
        let mut fields = Vec::new();
        let mut used = [false; FIELD_NAMES.len()];
        for _ in 0..5 {
            if !self.e.chance(3, 4) {
                break;
            }
            let k = self.e.below(FIELD_NAMES.len());
            if used[k] {
                continue;
            }
            used[k] = true;
            let ty = self.field_types[k];
            let wire = if self.e.chance(1, 5) {
                format!("app.{}", FIELD_NAMES[k])
            } else {
                FIELD_NAMES[k].to_string()
            };
            // Personal data on a few plain strings: read only declassified,
            // and always redacted on egress.
            let pii = ty == Ty::plain(Base::Str) && self.e.chance(1, 4);
            let secret = pii && self.e.chance(1, 4);
            fields.push(Field {
                name: FIELD_NAMES[k].to_string(),
                wire,
                ty,
                pii,
                secret,
            });
        }
        let mut text = String::new();
        if self.e.chance(1, 3) {
            text.push_str(&format!("/// Event {i}.\n"));
        }
        text.push_str(&format!("event {name}"));
        if id != name {
            text.push_str(&format!(" = \"{id}\""));
        }
        if self.e.chance(1, 6) {
            text = format!("probe logs{i} = otel.logs\n\n{text} from logs{i}");
        }
        text.push_str(" {\n");
        for f in &fields {
            let mut line = format!("    {}: {}", f.name, f.ty.text());
            if f.pii {
                line.push_str(if f.secret { " @secret" } else { " @pii" });
            }
            if f.wire != f.name {
                line.push_str(&format!(" @attr(\"{}\")", f.wire));
            }
            if matches!(f.ty.base, Base::Int | Base::Float) && self.e.chance(1, 5) {
                line.push_str(" @unit(\"ms\")");
            }
            line.push_str(",\n");
            text.push_str(&line);
        }
        text.push_str("}\n");
        self.events.push(EventDecl { name, id, fields });
        text
    }

    /// Bare names of an event's fields: a query's first row, a shaping
    /// condition.
    pub fn bare_scope(&self, event: &EventDecl) -> Scope {
        self.event_scope(event, true)
    }

    /// The top-level functions.
    pub fn event_fns(&self) -> Vec<FnSig> {
        self.fns.clone()
    }

    /// The scope of a handler of `event`: `event.f` and the standard
    /// fields (or bare names, in queries and shaping conditions).
    fn event_scope(&self, event: &EventDecl, bare: bool) -> Scope {
        let prefix = if bare { "" } else { "event." };
        let mut sc = Scope {
            attrs: Some(if bare { "attrs" } else { "event.attrs" }),
            fns: self.fns.clone(),
            ..Scope::default()
        };
        for f in event.fields.iter().filter(|f| !f.secret) {
            sc.vals.push(Val {
                text: format!("{prefix}{}", f.name),
                ty: f.ty,
                pii: f.pii,
            });
        }
        for (name, ty) in STANDARD {
            sc.vals.push(Val {
                text: format!("{prefix}{name}"),
                ty,
                pii: false,
            });
        }
        sc.is_targets = self
            .machines
            .iter()
            .filter(|m| match &m.key_field {
                None => true,
                Some((f, t)) => event.fields.iter().any(|x| &x.name == f && x.ty == *t),
            })
            .map(|m| IsTarget {
                machine: m.name.clone(),
                states: m.states.clone(),
            })
            .collect();
        sc
    }

    fn params(&mut self) -> Vec<(String, Ty)> {
        let mut params = Vec::new();
        for _ in 0..3 {
            if !self.e.chance(2, 3) {
                break;
            }
            let base = *self.e.pick(&VALUE_BASES[..6]);
            let ty = Ty {
                base,
                opt: self.e.chance(1, 5),
            };
            params.push((self.fresh("p"), ty));
        }
        params
    }

    /// A pure function: statements over its parameters, then a return.
    fn function_body(&mut self, name: &str, params: &[(String, Ty)], indent: usize) -> String {
        let mut sc = Scope {
            fns: self.fns.clone(),
            ..Scope::default()
        };
        for (p, t) in params {
            sc.vals.push(Val {
                text: p.clone(),
                ty: *t,
                pii: false,
            });
        }
        let bases: Vec<Base> = [
            Base::Int,
            Base::Str,
            Base::Bool,
            Base::Float,
            Base::Duration,
        ]
        .into_iter()
        .filter(|b| sc.can(Ty::plain(*b)))
        .collect();
        let ret = Ty::plain(*self.e.pick(&bases));
        let pad = "    ".repeat(indent);
        let args: Vec<String> = params
            .iter()
            .map(|(p, t)| format!("{p}: {}", t.text()))
            .collect();
        let mut out = format!("{pad}fn {name}({}) -> {} {{\n", args.join(", "), ret.text());
        let mut body = Body {
            scope: sc,
            assign: Vec::new(),
            unset: Vec::new(),
            maps: Vec::new(),
            emit: false,
            trigger: false,
            nest: 2,
        };
        self.block(&mut body, 4, indent + 1, &mut out);
        // Sometimes both branches of an `if` return, as the last statement.
        if self.e.chance(1, 4) {
            let c = self.x().expr(&body.scope, Ty::plain(Base::Bool), 2);
            let a = self.x().expr(&body.scope, ret, 3);
            let b = self.x().expr(&body.scope, ret, 3);
            out.push_str(&format!(
                "{pad}    if {c} {{\n{pad}        return {a}\n{pad}    }} else {{\n{pad}        return {b}\n{pad}    }}\n"
            ));
        } else {
            let r = self.x().expr(&body.scope, ret, 3);
            out.push_str(&format!("{pad}    return {r}\n"));
        }
        out.push_str(&format!("{pad}}}\n"));
        self.fns.push(FnSig {
            name: name.to_string(),
            params: params.iter().map(|(_, t)| *t).collect(),
            ret,
        });
        out
    }

    fn function(&mut self) -> String {
        let name = self.fresh("f");
        let params = self.params();
        self.function_body(&name, &params, 0)
    }

    fn var_ty(&mut self) -> Ty {
        let base = *self.e.pick(&VALUE_BASES[..6]);
        Ty {
            base,
            opt: self.e.chance(1, 5),
        }
    }

    /// A processor or machine `var`: its declaration, and the variable
    /// (scalar or map).
    fn var_decl(&mut self, indent: usize, bounded: bool) -> (String, Result<(String, Ty), MapVal>) {
        let pad = "    ".repeat(indent);
        let name = self.fresh("v");
        if self.e.chance(1, 4) {
            let key = *self.e.pick(&[Base::Str, Base::Int, Base::Bool]);
            let val = *self.e.pick(&[
                Base::Int,
                Base::Str,
                Base::Float,
                Base::Duration,
                Base::Timestamp,
            ]);
            let max = if bounded || self.e.chance(2, 3) {
                format!(" max {}", self.e.range(1, 5))
            } else {
                String::new()
            };
            let text = format!(
                "{pad}var {name}: map[{}, {}]{max}\n",
                key.name(),
                val.name()
            );
            return (text, Err(MapVal { name, key, val }));
        }
        let ty = self.var_ty();
        let empty = Scope {
            fns: self.fns.clone(),
            ..Scope::default()
        };
        let text = if ty.opt && self.e.chance(1, 2) {
            format!("{pad}var {name}: {}\n", ty.text())
        } else if ty.base == Base::Timestamp {
            // No timestamp literal: an optional timestamp starts absent.
            let ty = Ty::opt(Base::Timestamp);
            return (format!("{pad}var {name}: {}\n", ty.text()), Ok((name, ty)));
        } else {
            let init = self.x().expr(&empty, Ty::plain(ty.base), 2);
            if ty.opt || self.e.chance(1, 2) {
                format!("{pad}var {name}: {} = {init}\n", ty.text())
            } else {
                format!("{pad}var {name} = {init}\n")
            }
        };
        (text, Ok((name, ty)))
    }

    /// Up to `max` variable declarations (each more with probability
    /// `num / 3`), written to `out`: the scalars and the maps.
    fn var_decls(
        &mut self,
        max: u32,
        num: u32,
        bounded: bool,
        out: &mut String,
    ) -> (Vec<(String, Ty)>, Vec<MapVal>) {
        let mut vars = Vec::new();
        let mut maps = Vec::new();
        for _ in 0..max {
            if !self.e.chance(num, 3) {
                break;
            }
            let (text, v) = self.var_decl(1, bounded);
            out.push_str(&text);
            match v {
                Ok(v) => vars.push(v),
                Err(m) => maps.push(m),
            }
        }
        (vars, maps)
    }

    fn machine(&mut self) -> String {
        let name = self.fresh("m");
        let n_states = 1 + self.count(3, 2, 3);
        let states: Vec<String> = (0..n_states).map(|_| self.fresh("S")).collect();
        // Events it reads: at least one.
        let mut handled: Vec<usize> = Vec::new();
        for _ in 0..3 {
            let i = self.e.below(self.events.len());
            if !handled.contains(&i) {
                handled.push(i);
            }
            if !self.e.chance(1, 2) {
                break;
            }
        }
        // Fields every handled event has, with the same type: key material.
        let common: Vec<(String, Ty)> = self.events[handled[0]]
            .fields
            .iter()
            .filter(|f| {
                !f.pii
                    && f.ty.base.key()
                    && handled.iter().all(|h| {
                        self.events[*h]
                            .fields
                            .iter()
                            .any(|g| g.name == f.name && g.ty == f.ty)
                    })
            })
            .map(|f| (f.name.clone(), f.ty))
            .collect();
        let mut key_field = None;
        let key = match self.e.below(5) {
            0 => None,
            1 => Some("event.thread_id".to_string()),
            2 => Some(format!(
                "event.service ?? \"{}\"",
                self.e.pick(&["svc", "unknown"])
            )),
            3 => Some("(event.severity % 3)".to_string()),
            _ => match common.first() {
                Some((f, t)) => {
                    key_field = Some((f.clone(), *t));
                    Some(format!("event.{f}"))
                }
                None => Some("event.thread_id".to_string()),
            },
        };
        let mut out = format!("machine {name}");
        if let Some(k) = &key {
            out.push_str(&format!(" per {k}"));
            if self.e.chance(2, 3) {
                out.push_str(&format!(" max {}", self.e.range(1, 4)));
            }
        }
        out.push_str(" {\n");
        // Machine variables. Instances times entries: a machine's maps
        // are always bounded.
        let (vars, maps) = self.var_decls(3, 1, true, &mut out);
        // States, each with variables; some have defaults.
        let mut state_vars: Vec<Vec<(String, Ty, bool)>> = Vec::new();
        for s in &states {
            let mut svars = Vec::new();
            for _ in 0..3 {
                if !self.e.chance(1, 2) {
                    break;
                }
                let ty = self.var_ty();
                let default = ty.base != Base::Timestamp && self.e.chance(1, 2);
                svars.push((self.fresh("sv"), ty, default));
            }
            let decls: Vec<String> = svars
                .iter()
                .map(|(n, t, d)| {
                    if *d {
                        let v = self.x().expr(&Scope::default(), Ty::plain(t.base), 1);
                        format!("{n}: {} = {v}", t.text())
                    } else {
                        format!("{n}: {}", t.text())
                    }
                })
                .collect();
            if decls.is_empty() && self.e.chance(1, 2) {
                out.push_str(&format!("    state {s}\n"));
            } else {
                out.push_str(&format!("    state {s} {{ {} }}\n", decls.join(", ")));
            }
            state_vars.push(svars);
        }
        self.machines.push(MachineInfo {
            name: name.clone(),
            states: states.clone(),
            key_field,
        });
        // Transitions: at least one.
        let n_trans = 1 + self.count(5, 3, 4);
        for _ in 0..n_trans {
            let ev = self.events[*self.e.pick(&handled)].clone();
            let mut sc = self.event_scope(&ev, false);
            sc.sample = true;
            let sources: Vec<usize> = match self.e.below(4) {
                0 => Vec::new(),
                1 if n_states > 1 => {
                    let a = self.e.below(states.len());
                    let b = (a + 1) % states.len();
                    vec![a, b]
                }
                _ => vec![self.e.below(states.len())],
            };
            let target = self.e.below(states.len());
            let text = self.transition(
                TransitionShape {
                    trigger: Some(&ev.name),
                    sources: &sources,
                    target,
                    states: &states,
                    state_vars: &state_vars,
                },
                sc,
                &vars,
                &maps,
            );
            out.push_str(&text);
        }
        // Timeouts.
        for _ in 0..2 {
            if !self.e.chance(1, 2) {
                break;
            }
            let source = self.e.below(states.len());
            let mut target = self.e.below(states.len());
            // A timeout has no event, so no timestamp to give a state
            // variable that needs one: stay instead.
            if state_vars[target]
                .iter()
                .any(|(_, t, d)| *t == Ty::plain(Base::Timestamp) && !d)
            {
                target = source;
            }
            let sc = Scope {
                fns: self.fns.clone(),
                ..Scope::default()
            };
            let text = self.transition(
                TransitionShape {
                    trigger: None,
                    sources: &[source],
                    target,
                    states: &states,
                    state_vars: &state_vars,
                },
                sc,
                &vars,
                &maps,
            );
            out.push_str(&text);
        }
        out.push_str("}\n");
        out
    }

    fn transition(
        &mut self,
        shape: TransitionShape<'_>,
        mut sc: Scope,
        vars: &[(String, Ty)],
        maps: &[MapVal],
    ) -> String {
        let TransitionShape {
            trigger,
            sources,
            target,
            states,
            state_vars,
        } = shape;
        for (n, t) in vars {
            sc.vals.push(Val {
                text: n.clone(),
                ty: *t,
                pii: false,
            });
        }
        sc.maps = maps.to_vec();
        let single = (sources.len() == 1).then(|| sources[0]);
        if let Some(s) = single {
            for (n, t, _) in &state_vars[s] {
                sc.vals.push(Val {
                    text: n.clone(),
                    ty: *t,
                    pii: false,
                });
            }
        }
        let head = match trigger {
            Some(ev) => {
                let mut h = format!("    on {ev}");
                if !sources.is_empty() {
                    let names: Vec<&str> = sources.iter().map(|s| states[*s].as_str()).collect();
                    h.push_str(&format!(" in {}", names.join(", ")));
                }
                if self.e.chance(1, 3) {
                    let g = self.x().expr(&sc, Ty::plain(Base::Bool), 3);
                    h.push_str(&format!(" when {g}"));
                }
                h
            }
            None => {
                let d = self.e.pick(&DURATIONS[..8]);
                format!("    after {d} in {}", states[sources[0]])
            }
        };
        let mut assign: Vec<(String, Ty)> = vars.to_vec();
        let stays = single == Some(target);
        let mut required = Vec::new();
        let mut unset = Vec::new();
        if stays {
            for (n, t, d) in &state_vars[target] {
                assign.push((n.clone(), *t));
                // The initial state's variables without a default may be
                // unset here: set some of them first, so `+=` on them
                // is generated too; leave the others to `=`.
                if target == 0 && !*d {
                    if sc.can(*t) && self.e.chance(1, 2) {
                        required.push((n.clone(), *t));
                    } else {
                        unset.push(n.clone());
                    }
                }
            }
        } else {
            for (n, t, d) in &state_vars[target] {
                assign.push((n.clone(), *t));
                if !*d {
                    required.push((n.clone(), *t));
                }
            }
        }
        let mut out = format!("{head} -> {}", states[target]);
        let mut text = String::new();
        for (n, t) in &required {
            let v = if sc.can(*t) {
                self.x().expr(&sc, *t, 2)
            } else if t.opt {
                "none".to_string()
            } else {
                // A timestamp with none in scope (a timeout): reachable only
                // through a variable; the generator makes such state
                // variables optional, so this is not reached.
                "none".to_string()
            };
            text.push_str(&format!("        {n} = {v}\n"));
        }
        let mut body = Body {
            scope: sc,
            assign,
            unset,
            maps: maps.to_vec(),
            emit: true,
            trigger: true,
            nest: 2,
        };
        self.block(&mut body, 4, 2, &mut text);
        if text.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!(" {{\n{text}    }}\n"));
        }
        out
    }

    fn processor(&mut self) -> String {
        let name = self.fresh("proc");
        let mut out = format!("processor {name} {{\n");
        let (vars, maps) = self.var_decls(4, 2, false, &mut out);
        let outer_fns = self.fns.clone();
        if self.e.chance(1, 3) {
            let f = self.fresh("pf");
            let params = self.params();
            out.push_str(&self.function_body(&f, &params, 1));
        }
        for _ in 0..1 + self.count(3, 2, 3) {
            let ev = self.events[self.e.below(self.events.len())].clone();
            let mut sc = self.event_scope(&ev, false);
            sc.sample = true;
            for (n, t) in &vars {
                sc.vals.push(Val {
                    text: n.clone(),
                    ty: *t,
                    pii: false,
                });
            }
            sc.maps = maps.clone();
            let mut head = format!("    on {}", ev.name);
            if self.e.chance(1, 3) {
                let g = self.x().expr(&sc, Ty::plain(Base::Bool), 3);
                head.push_str(&format!(" when {g}"));
            }
            out.push_str(&format!("{head} {{\n"));
            let mut body = Body {
                scope: sc,
                assign: vars.clone(),
                unset: Vec::new(),
                maps: maps.clone(),
                emit: true,
                trigger: true,
                nest: 2,
            };
            self.block(&mut body, 6, 2, &mut out);
            out.push_str("    }\n");
        }
        out.push_str("}\n");
        // A processor's own functions are not callable elsewhere.
        self.fns = outer_fns;
        out
    }
}

/// Where a transition goes from and to.
struct TransitionShape<'s> {
    /// The event of an `on`; `None` for a timeout.
    trigger: Option<&'s str>,
    sources: &'s [usize],
    target: usize,
    states: &'s [String],
    state_vars: &'s [Vec<(String, Ty, bool)>],
}
