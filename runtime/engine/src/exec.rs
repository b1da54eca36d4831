//! The executor seam: how the runtime asks an engine to evaluate one of the
//! program's expressions or run one of its bodies.
//!
//! The runtime ([`crate::runtime`]) owns everything stateful: dispatch,
//! windows and aggregates, machine instances, budgets, outputs. Whenever it
//! needs the program's own code it calls an [`Executor`] with a [`Site`]
//! (which construct of the program this is, fixed when the program is
//! loaded) and the IR of that construct. The reference interpreter
//! ([`Interpreted`]) ignores the site and walks the IR; the JIT (`dtc-jit`)
//! looks the site up in the code it compiled at load. Both receive the same
//! [`Interp`] (seed, sequence number, world, effects) and [`Frame`] (event,
//! row, locals, variables, state slots), so effects and faults are reported
//! the same way whichever engine runs.

use dtc_ir::{Expr, Machine, Stmt};

use crate::interp::{Fault, Frame, Interp};
use crate::slots::Slot;
use crate::value::{Record, Value};

/// A construct of the program that holds code, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// The `when` of shaping rule `rule`.
    ShapeWhen {
        rule: u32,
    },
    /// Expression `index` of stage `stage` of query `query`: the predicate
    /// of a `where` (index 0), the columns of an `extend` or `project`, the
    /// keys then the aggregate arguments (flattened, in order) of a
    /// `summarize`, the fields of an `emit log`.
    Stage {
        query: u32,
        stage: u32,
        index: u32,
    },
    /// The instance key of `machine` for its `index`-th keyed event.
    MachineKey {
        machine: u32,
        index: u32,
    },
    /// The initial value of variable `var` of `machine`.
    MachineVar {
        machine: u32,
        var: u32,
    },
    /// The default of the `index`-th state variable of `state`.
    StateDefault {
        machine: u32,
        state: u32,
        index: u32,
    },
    TransitionGuard {
        machine: u32,
        transition: u32,
    },
    TransitionBody {
        machine: u32,
        transition: u32,
    },
    TimeoutBody {
        machine: u32,
        timeout: u32,
    },
    /// The initial value of variable `var` of `processor`.
    ProcessorVar {
        processor: u32,
        var: u32,
    },
    HandlerGuard {
        processor: u32,
        handler: u32,
    },
    HandlerBody {
        processor: u32,
        handler: u32,
    },
}

/// Runs the program's code for the runtime. Implementations must give
/// exactly what [`Interpreted`] gives: the same values, the same effects in
/// the same order, the same faults.
pub trait Executor {
    /// Evaluates the expression at `site` (`expr` is its IR).
    fn eval(
        &self,
        site: Site,
        expr: &Expr,
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault>;

    /// Runs the body at `site` (`body` is its IR).
    fn run(
        &self,
        site: Site,
        body: &[Stmt],
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<(), Fault>;

    /// Which transition of machine `mi` an event of the frame takes from
    /// `state`: the first, in program order, on the event's layout, from
    /// `state` (or any state), whose guard holds. A guard that faults stops
    /// the search and is reported with its transition.
    fn select(
        &self,
        mi: u32,
        m: &Machine,
        rec: &Record,
        state: u32,
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<Option<usize>, (usize, Fault)> {
        select_in_order(self, mi, m, rec, state, i, f)
    }

    /// For a batch of records of query `query`'s source, whether each
    /// passes the query's leading `where` stages, when the engine can tell
    /// without running them one event at a time (they read nothing but the
    /// event), written into `passed` (one byte per record, as long as
    /// `records`: 1 passes, 0 does not). `false`: nothing was written; ask
    /// per event, as usual.
    fn prefilter(&self, _query: u32, _records: &[&Record], _passed: &mut [u8]) -> bool {
        false
    }

    /// [`Executor::prefilter`] over rows laid end to end: `rows` holds
    /// `passed.len()` rows of `width` slots each, in the order of the
    /// verdicts: the slots [`Executor::projection`] names of the compact
    /// rows of a batch's records of one layout ([`crate::Batch`]).
    fn prefilter_rows(
        &self,
        _query: u32,
        _rows: &[Slot],
        _width: usize,
        _passed: &mut [u8],
    ) -> bool {
        false
    }

    /// Whether [`Executor::prefilter`] may answer for `query`, so the
    /// runtime gathers a batch's records for it only then.
    fn has_prefilter(&self, _query: u32) -> bool {
        false
    }

    /// The slots of a `layout` event's compact row that
    /// [`Executor::prefilter_rows`] reads, in order: a batch lays its
    /// records' rows of these slots end to end for it. `None`: it reads no
    /// rows of this layout.
    fn projection(&self, _layout: u32) -> Option<&[u32]> {
        None
    }

    /// Whether this executor reads records' compact rows, so a batch
    /// decoded ahead ([`crate::Engine::decode_batch`]) builds them too.
    fn reads_rows(&self) -> bool {
        false
    }
}

/// The search [`Executor::select`] describes, with each guard evaluated
/// through `x`: the default, and the JIT's way for a machine whose
/// selector it did not compile.
pub fn select_in_order<X: Executor + ?Sized>(
    x: &X,
    mi: u32,
    m: &Machine,
    rec: &Record,
    state: u32,
    i: &mut Interp<'_>,
    f: &mut Frame<'_>,
) -> Result<Option<usize>, (usize, Fault)> {
    for (ti, t) in m.transitions.iter().enumerate() {
        if t.event != rec.layout || !(t.from.is_empty() || t.from.contains(&state)) {
            continue;
        }
        let Some(g) = &t.guard else {
            return Ok(Some(ti));
        };
        let site = Site::TransitionGuard {
            machine: mi,
            transition: ti as u32,
        };
        match x.eval(site, g, i, f) {
            Ok(Value::Bool(true)) => return Ok(Some(ti)),
            Ok(_) => {}
            Err(e) => return Err((ti, e)),
        }
    }
    Ok(None)
}

/// The reference interpreter as an executor: walks the IR it is given.
#[derive(Debug, Default, Clone, Copy)]
pub struct Interpreted;

impl Executor for Interpreted {
    fn eval(
        &self,
        _site: Site,
        expr: &Expr,
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault> {
        i.eval(expr, f)
    }

    fn run(
        &self,
        _site: Site,
        body: &[Stmt],
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<(), Fault> {
        i.run(body, f)
    }
}
