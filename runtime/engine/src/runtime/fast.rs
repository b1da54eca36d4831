//! The runtime's fast lanes: the same outputs as the general per-event
//! path, without its per-event allocations, for the shapes of program that
//! high-rate streams mostly run.
//!
//! - **Dispatch tables**: which queries, machines and handlers an event
//!   layout feeds, computed once at load instead of scanned per event.
//! - **Query fast lane** ([`FastQuery`]): a query that is `where` stages
//!   then a `summarize` whose keys and aggregate arguments are plain reads
//!   of the event (declared fields, standard fields) and whose aggregates
//!   are `count`, `count_if`, `sum`, `min` or `max`. Its `where` chain is
//!   the executor's batch prefilter or evaluated per event as usual; then
//!   the group is looked up by a borrowed key slice in the window of the
//!   event and its aggregates are updated in place. Anything else (a new
//!   window, a new group, a late event, `max` series overflow) goes to
//!   [`Engine::accumulate`], so those rules live in one place.
//!
//! Each lane is checked against the general path by the unit tests at the
//! end of this file and by the differential tests of both engines.

use dtc_ir::{AggKind, Expr, ExprKind, Program, Stage, StdField};

use super::{Engine, Machines, new_interp};
use crate::exec::Site;
use crate::interp::{Frame, std_field};
use crate::value::{Key, Record, Value};

/// What one event layout feeds, in the order `dispatch` runs them.
#[derive(Debug, Default, Clone)]
pub(super) struct Route {
    pub queries: Vec<usize>,
    pub machines: Vec<usize>,
    /// (processor, handler).
    pub handlers: Vec<(usize, usize)>,
}

/// The route of every layout of `p`, by layout index.
pub(super) fn routes(p: &Program) -> Vec<Route> {
    (0..p.events.len() as u32)
        .map(|layout| Route {
            queries: (0..p.queries.len())
                .filter(|&qi| p.queries[qi].source == layout)
                .collect(),
            machines: (0..p.machines.len())
                .filter(|&mi| p.machines[mi].transitions.iter().any(|t| t.event == layout))
                .collect(),
            handlers: p
                .processors
                .iter()
                .enumerate()
                .flat_map(|(pi, proc_)| {
                    proc_
                        .handlers
                        .iter()
                        .enumerate()
                        .filter(move |(_, h)| h.event == layout)
                        .map(move |(hi, _)| (pi, hi))
                })
                .collect(),
        })
        .collect()
}

/// A plain read of the current event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Read {
    Field(u32),
    Std(StdField),
}

impl Read {
    fn of(e: &Expr) -> Option<Read> {
        match &e.kind {
            ExprKind::Field(s) => Some(Read::Field(*s)),
            // Attribute maps are built per read; not a plain read.
            ExprKind::Std(StdField::Attrs | StdField::Resource) => None,
            ExprKind::Std(f) => Some(Read::Std(*f)),
            _ => None,
        }
    }

    /// The value the interpreter's `eval` gives for this read.
    fn value(self, rec: &Record) -> Value {
        match self {
            Read::Field(s) => rec.slots.get(s as usize).cloned().unwrap_or(Value::None),
            Read::Std(f) => std_field(rec, f),
        }
    }

    /// The group key of this read, as `run_query` computes it.
    fn key(self, rec: &Record) -> Key {
        match self {
            Read::Field(s) => rec
                .slots
                .get(s as usize)
                .and_then(Key::from_value)
                .unwrap_or(Key::Unit),
            Read::Std(f) => Key::from_value(&std_field(rec, f)).unwrap_or(Key::Unit),
        }
    }
}

/// A query the fast lane runs (see the module doc).
#[derive(Debug, Clone)]
pub(super) struct FastQuery {
    /// The `summarize` stage; every stage before it is a `where`.
    pub si: usize,
    pub keys: Vec<Read>,
    /// The arguments of each aggregate, in order.
    pub args: Vec<Vec<Read>>,
    pub every_ns: i64,
}

/// The fast lane of each query of `p`, where it has one.
pub(super) fn fast_queries(p: &Program) -> Vec<Option<FastQuery>> {
    p.queries
        .iter()
        .map(|q| {
            let si = q
                .stages
                .iter()
                .position(|s| !matches!(s, Stage::Where(_)))?;
            let Stage::Summarize {
                keys,
                aggregates,
                every_ns,
                ..
            } = &q.stages[si]
            else {
                return None;
            };
            if *every_ns <= 0 {
                return None;
            }
            let keys = keys
                .iter()
                .map(|(_, e)| Read::of(e))
                .collect::<Option<Vec<_>>>()?;
            let args = aggregates
                .iter()
                .map(|a| match a.kind {
                    AggKind::Count
                    | AggKind::CountIf
                    | AggKind::Sum
                    | AggKind::Min
                    | AggKind::Max => a.args.iter().map(Read::of).collect::<Option<Vec<_>>>(),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some(FastQuery {
                si,
                keys,
                args,
                every_ns: *every_ns,
            })
        })
        .collect()
}

impl Engine {
    /// `run_query` for a query with a fast lane: the same effect on the
    /// windows and counters, with no allocation when the event's window and
    /// group exist. `passed` is the batch prefilter's verdict, if asked.
    pub(super) fn run_fast_query(&mut self, qi: usize, rec: &Record, passed: Option<bool>) {
        let Some(fq) = self.fast[qi].as_ref() else {
            return;
        };
        match passed {
            Some(false) => return,
            Some(true) => {}
            None if fq.si == 0 => {}
            None => {
                let program = &self.program;
                let world = Machines {
                    program,
                    states: &self.machines,
                    options: &self.options,
                    regexes: &self.regexes,
                    executor: &*self.executor,
                };
                let mut i = new_interp(program, &world, &self.options, self.seq, &self.regexes);
                let empty: [Value; 0] = [];
                for (si, stage) in program.queries[qi].stages[..fq.si].iter().enumerate() {
                    let Stage::Where(e) = stage else { return };
                    let mut f = Frame {
                        event: Some(rec),
                        row: Some(&empty),
                        locals: vec![],
                        vars: &mut [],
                        var_defs: &[],
                        slots: &mut [],
                    };
                    let site = Site::Stage {
                        query: qi as u32,
                        stage: si as u32,
                        index: 0,
                    };
                    let v = self
                        .executor
                        .eval(site, e, &mut i, &mut f)
                        .unwrap_or(Value::None);
                    if v != Value::Bool(true) {
                        return;
                    }
                }
            }
        }
        let every = fq.every_ns;
        let start = rec.input.time.div_euclid(every).saturating_mul(every);
        let mut keys = std::mem::take(&mut self.key_buf);
        keys.clear();
        keys.extend(fq.keys.iter().map(|r| r.key(rec)));
        let late =
            start.saturating_add(every) <= self.watermark.saturating_sub(self.options.lateness_ns);
        if !late
            && let Some(groups) = self.queries[qi].windows.get_mut(&start)
            && let Some(aggs) = groups.get_mut(keys.as_slice())
        {
            for (a, args) in aggs.iter_mut().zip(&fq.args) {
                match args.as_slice() {
                    [] => a.add(&[]),
                    [r] => a.add(std::slice::from_ref(&r.value(rec))),
                    more => a.add(&more.iter().map(|r| r.value(rec)).collect::<Vec<_>>()),
                }
            }
            self.key_buf = keys;
            return;
        }
        // A new window or group, a late event or an overflow: the general
        // rules, once.
        let si = fq.si;
        let args: Vec<Vec<Value>> = fq
            .args
            .iter()
            .map(|a| a.iter().map(|r| r.value(rec)).collect())
            .collect();
        let owned = keys.clone();
        self.key_buf = keys;
        self.accumulate(qi, si, owned, &args, start);
    }
}
