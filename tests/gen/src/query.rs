//! Queries and shaping rules: pipelines over rows with bare column names,
//! and the rules that change what egresses.

use crate::expr::{DURATIONS, Scope, Val};
use crate::program::{Derived, Gen, STANDARD};
use crate::ty::{Base, Ty, VALUE_BASES};

/// The row of a query stage: its columns, and what else is readable.
#[derive(Debug, Clone)]
struct Row {
    scope: Scope,
    /// Columns of type `histogram`: only a metric can carry them.
    histograms: Vec<String>,
    /// The row still holds `@secret` fields (not readable, so not in
    /// `scope`), which no log may carry.
    secret: bool,
}

impl Row {
    fn cols(&self) -> &[Val] {
        &self.scope.vals
    }
}

impl Gen<'_, '_> {
    /// A query, or `None` when the source picked has nothing to read.
    pub fn query(&mut self) -> Option<String> {
        let name = self.fresh("q");
        // The source: a declared event, or a log some handler or earlier
        // query emits.
        let n_events = self.events.len();
        let pick = self.e.below(n_events + self.derived.len());
        let (source, mut row) = if pick < n_events {
            let ev = self.events[pick].clone();
            let sc = self.query_scope(&ev);
            let secret = ev.fields.iter().any(|f| f.secret);
            (
                ev.name.clone(),
                Row {
                    scope: sc,
                    histograms: Vec::new(),
                    secret,
                },
            )
        } else {
            let d = self.derived[pick - n_events].clone();
            let mut sc = Scope {
                attrs: Some("attrs"),
                fns: self.fn_sigs(),
                ..Scope::default()
            };
            for (f, t) in &d.fields {
                sc.vals.push(Val {
                    text: f.clone(),
                    ty: *t,
                    pii: false,
                });
            }
            for (f, t) in STANDARD {
                sc.vals.push(Val {
                    text: f.to_string(),
                    ty: t,
                    pii: false,
                });
            }
            (
                d.name.clone(),
                Row {
                    scope: sc,
                    histograms: Vec::new(),
                    secret: false,
                },
            )
        };
        let mut stages = vec![format!("query {name} =\n    {source}")];
        for _ in 0..3 {
            if !self.e.chance(1, 2) {
                break;
            }
            let stage = match self.e.below(5) {
                0 | 1 => format!(
                    "where {}",
                    self.x().expr(&row.scope, Ty::plain(Base::Bool), 3)
                ),
                2 => self.extend(&mut row),
                3 => format!("sample {}", self.x().literal(Base::Percent)),
                _ => format!(
                    "limit {} per {}",
                    self.e.range(1, 5),
                    self.e.pick(&DURATIONS[..6])
                ),
            };
            stages.push(stage);
        }
        if self.e.chance(3, 5) {
            let summarize = self.summarize(&mut row);
            stages.push(summarize);
            for _ in 0..2 {
                if !self.e.chance(1, 3) {
                    break;
                }
                let stage = if self.e.chance(1, 2) {
                    format!(
                        "where {}",
                        self.x().expr(&row.scope, Ty::plain(Base::Bool), 2)
                    )
                } else {
                    format!(
                        "limit {} per {}",
                        self.e.range(1, 5),
                        self.e.pick(&DURATIONS[..6])
                    )
                };
                stages.push(stage);
            }
            if row.histograms.is_empty() && self.e.chance(1, 3) {
                stages.push(self.emit_query_log(&row));
            } else {
                stages.push(format!("emit metric \"{name}.m\""));
            }
        } else {
            // Personal data cannot leave in a log: project it away.
            if row.secret || row.cols().iter().any(|c| c.pii) || self.e.chance(1, 4) {
                stages.push(self.project(&mut row));
            }
            stages.push(self.emit_query_log(&row));
        }
        Some(stages.join("\n    | ") + "\n")
    }

    fn fn_sigs(&self) -> Vec<crate::expr::FnSig> {
        self.event_fns()
    }

    fn query_scope(&self, ev: &crate::program::EventDecl) -> Scope {
        self.bare_scope(ev)
    }

    fn extend(&mut self, row: &mut Row) -> String {
        let mut cols = Vec::new();
        let mut added = Vec::new();
        for _ in 0..1 + self.count_up(2) {
            let bases: Vec<Base> = VALUE_BASES
                .into_iter()
                .filter(|b| *b != Base::Bytes && row.scope.can(Ty::plain(*b)))
                .collect();
            let ty = Ty::plain(*self.e.pick(&bases));
            let value = self.x().expr(&row.scope, ty, 3);
            let c = self.fresh("c");
            cols.push(format!("{c} = {value}"));
            added.push(Val {
                text: c,
                ty,
                pii: false,
            });
        }
        row.scope.vals.extend(added);
        format!("extend {}", cols.join(", "))
    }

    fn count_up(&mut self, max: u32) -> u32 {
        let mut n = 0;
        while n < max && self.e.chance(1, 2) {
            n += 1;
        }
        n
    }

    fn project(&mut self, row: &mut Row) -> String {
        let mut cols = Vec::new();
        let mut kept = Vec::new();
        for c in row.cols() {
            if !c.pii && !is_standard(&c.text) && self.e.chance(2, 3) {
                cols.push(c.text.clone());
                kept.push(c.clone());
            }
        }
        if cols.is_empty() || self.e.chance(1, 3) {
            let ty = Ty::plain(
                *self
                    .e
                    .pick(&[Base::Int, Base::Str, Base::Bool, Base::Float]),
            );
            let value = self.x().expr(&row.scope, ty, 2);
            let c = self.fresh("c");
            cols.push(format!("{c} = {value}"));
            kept.push(Val {
                text: c,
                ty,
                pii: false,
            });
        }
        row.scope.vals = kept;
        row.secret = false;
        row.scope.attrs = None;
        row.scope.is_targets.clear();
        format!("project {}", cols.join(", "))
    }

    /// The stage; the row becomes its keys and aggregate columns.
    fn summarize(&mut self, row: &mut Row) -> String {
        let mut aggs = Vec::new();
        let mut cols = Vec::new();
        let mut hist = Vec::new();
        for _ in 0..1 + self.count_up(3) {
            let a = self.fresh("a");
            let measures: Vec<Base> = VALUE_BASES
                .into_iter()
                .filter(|b| b.measure() && row.scope.can(Ty::plain(*b)))
                .collect();
            let ordered: Vec<Base> = VALUE_BASES
                .into_iter()
                .filter(|b| b.ordered() && row.scope.can(Ty::plain(*b)))
                .collect();
            let (call, ty) = match self.e.below(9) {
                0 => ("count()".to_string(), Some(Ty::plain(Base::Int))),
                1 => {
                    let c = self.x().expr(&row.scope, Ty::plain(Base::Bool), 2);
                    (format!("count_if({c})"), Some(Ty::plain(Base::Int)))
                }
                2 | 3 => {
                    let b = *self.e.pick(&measures);
                    let v = self.x().expr(&row.scope, Ty::plain(b), 2);
                    let f = *self.e.pick(&["sum", "avg"]);
                    let ty = match (f, b) {
                        ("avg", Base::Int) => Base::Float,
                        _ => b,
                    };
                    (format!("{f}({v})"), Some(Ty::plain(ty)))
                }
                4 | 5 => {
                    let b = *self.e.pick(&ordered);
                    let v = self.x().expr(&row.scope, Ty::plain(b), 2);
                    let f = *self.e.pick(&["min", "max"]);
                    (format!("{f}({v})"), Some(Ty::plain(b)))
                }
                6 => {
                    let b = *self.e.pick(&measures);
                    let v = self.x().expr(&row.scope, Ty::plain(b), 2);
                    (format!("histogram({v})"), None)
                }
                7 => {
                    let b = *self.e.pick(&measures);
                    let v = self.x().expr(&row.scope, Ty::plain(b), 2);
                    let p = self.e.pick(&["50", "99", "0", "100", "99.9", "12.5"]);
                    let ty = if b == Base::Duration { b } else { Base::Float };
                    (format!("percentile({v}, {p})"), Some(Ty::plain(ty)))
                }
                _ => {
                    let v = self.x().scalar(&row.scope, 2);
                    (format!("distinct_count({v})"), Some(Ty::plain(Base::Int)))
                }
            };
            aggs.push(format!("{a} = {call}"));
            match ty {
                Some(ty) => cols.push(Val {
                    text: a,
                    ty,
                    pii: false,
                }),
                None => hist.push(a),
            }
        }
        let mut keys = Vec::new();
        let mut key_vals: Vec<Val> = Vec::new();
        for _ in 0..self.count_up(2) {
            let key_cols: Vec<Val> = row
                .cols()
                .iter()
                .filter(|c| c.ty.base.key() && !c.pii && !keys.contains(&c.text))
                .cloned()
                .collect();
            if !key_cols.is_empty() && self.e.chance(1, 2) {
                let c = self.e.pick(&key_cols).clone();
                keys.push(c.text.clone());
                key_vals.push(c);
            } else {
                let base = *self.e.pick(&[Base::Str, Base::Int, Base::Bool]);
                let ty = if row.scope.can(Ty::opt(base)) && self.e.chance(1, 4) {
                    Ty::opt(base)
                } else {
                    Ty::plain(base)
                };
                let v = self.x().expr(&row.scope, ty, 2);
                let k = self.fresh("k");
                keys.push(format!("{k} = {v}"));
                key_vals.push(Val {
                    text: k,
                    ty,
                    pii: false,
                });
            }
        }
        let mut text = format!("summarize {}", aggs.join(", "));
        if !keys.is_empty() {
            text.push_str(&format!(" by {}", keys.join(", ")));
        }
        let bounded = self.e.chance(2, 3);
        if bounded {
            text.push_str(&format!(" max {}", self.e.range(1, 4)));
        }
        if self.e.chance(2, 3) {
            text.push_str(&format!(
                " every {}",
                self.e.pick(&["1m", "10s", "1s", "5m", "1h"])
            ));
        }
        // The overflow series past `max` has no key values: its key
        // columns are optional in the rows that follow.
        if bounded {
            for c in &mut key_vals {
                c.ty = Ty::opt(c.ty.base);
            }
        }
        cols.extend(key_vals);
        row.scope.vals = cols;
        row.secret = false;
        row.scope.attrs = None;
        row.scope.is_targets.clear();
        row.histograms = hist;
        text
    }

    fn emit_query_log(&mut self, row: &Row) -> String {
        let name = self.fresh("QLog");
        let fields = row
            .cols()
            .iter()
            .filter(|c| !is_standard(&c.text))
            .map(|c| (c.text.clone(), c.ty))
            .collect();
        self.derived.push(Derived {
            name: name.clone(),
            fields,
            from_query: true,
        });
        format!("emit log {name}")
    }

    /// Shaping rules: every personal field is redacted or suppressed, then
    /// some rules of every kind.
    pub fn shaping(&mut self) -> Vec<String> {
        let mut rules = Vec::new();
        for ev in self.events.clone() {
            for f in ev.fields.iter().filter(|f| f.pii) {
                let mut how = match self.e.below(4) {
                    0 => "redact {E}.{F} with hash",
                    1 => "redact {E}.{F} with drop",
                    2 => "redact {E}.{F} with mask",
                    _ => "suppress {E}.{F}",
                };
                if f.secret && how.ends_with("mask") {
                    how = "redact {E}.{F} with drop";
                }
                rules.push(how.replace("{E}", &ev.name).replace("{F}", &f.name));
            }
        }
        for _ in 0..4 {
            if !self.e.chance(1, 2) {
                break;
            }
            let ev = self.events[self.e.below(self.events.len())].clone();
            let sc = self.bare_scope(&ev);
            let mut targets: Vec<(String, Ty)> = ev
                .fields
                .iter()
                .filter(|f| !f.secret)
                .map(|f| (f.name.clone(), f.ty))
                .collect();
            targets.extend(STANDARD[3..].iter().map(|(n, t)| (n.to_string(), *t)));
            let (field, fty) = self.e.pick(&targets).clone();
            let rule = match self.e.below(8) {
                0 => format!(
                    "suppress {} when {}",
                    ev.name,
                    self.x().expr(&sc, Ty::plain(Base::Bool), 3)
                ),
                1 => format!("suppress {}.{field}", ev.name),
                2 => format!(
                    "suppress {}.{field} when {}",
                    ev.name,
                    self.x().expr(&sc, Ty::plain(Base::Bool), 2)
                ),
                3 => {
                    let methods: &[&str] = if fty.base == Base::Str {
                        &["hash", "mask", "drop"]
                    } else {
                        &["hash", "drop"]
                    };
                    format!("redact {}.{field} with {}", ev.name, self.e.pick(methods))
                }
                4 => format!("sample {} {}", ev.name, self.x().literal(Base::Percent)),
                5 => format!(
                    "limit {} {} per {}",
                    ev.name,
                    self.e.range(1, 5),
                    self.e.pick(&DURATIONS[..6])
                ),
                6 if self.e.chance(1, 3) => format!("suppress {}", ev.name),
                _ => format!(
                    "suppress {} when {}",
                    ev.name,
                    self.x().expr(&sc, Ty::plain(Base::Bool), 2)
                ),
            };
            rules.push(rule);
        }
        if rules.is_empty() {
            Vec::new()
        } else {
            vec![rules.join("\n") + "\n"]
        }
    }
}

fn is_standard(name: &str) -> bool {
    STANDARD.iter().any(|(n, _)| *n == name) || name == "attrs" || name == "resource"
}
