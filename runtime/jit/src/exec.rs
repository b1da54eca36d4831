//! The JIT as a `dtc_engine` executor: finds the compiled function of a
//! site, gives it the event's compact row, the query row and an [`Env`]
//! over the interpreter and frame the runtime passed, calls it, and turns
//! its result back into a value or a fault.
//!
//! A site the JIT left to the interpreter (listed in the compile report),
//! and a record whose row cannot be built (a string past 4 GiB), run on the
//! interpreter; everything else runs the compiled code.

use dtc_engine::exec::{Executor, Site, select_in_order};
use dtc_engine::interp::{Fault, Frame, Interp};
use dtc_engine::slots::Slot;
use dtc_engine::value::{Record, Value};
use dtc_ir::{Expr, Machine, Stmt};

use crate::abi::{Env, NativeCtx, OK, to_value};
use crate::jit::{BatchFilter, Code, Compiled};

pub(crate) struct JitExecutor {
    pub compiled: Compiled,
}

/// The type code of strings (`abi::type_code`).
const STR: i64 = 4;

/// The record's own string value that `slot` points at, whole.
fn shared_str(r: &Record, slot: Slot) -> Option<Value> {
    r.built_slots()?.iter().find_map(|v| match v {
        Value::Str(s)
            if s.as_ptr() as usize as u64 == slot.bits && s.len() as u64 == u64::from(slot.len) =>
        {
            Some(v.clone())
        }
        _ => None,
    })
}

/// The record's compact row: read in place when it is built already (a
/// batch decoded ahead, a line read in place), which `Record::compact`, a
/// call into another crate, is not inlined to do. `None` unless the row
/// has its layout's width (`widths`), which compiled code takes for
/// granted: its reads at fixed offsets must stay inside the row.
#[inline]
fn row_of<'r>(rec: &'r Record, widths: &[usize]) -> Option<&'r [Slot]> {
    let row = match rec.row.get() {
        Some(row) => row.as_deref(),
        None => rec.compact(),
    }?;
    (widths.get(rec.layout as usize) == Some(&row.len())).then_some(row)
}

/// The row of the frame's event, if the site expects one and it matches.
fn event_row<'r>(
    f: &Frame<'r>,
    expected: Option<u32>,
    widths: &[usize],
) -> Result<*const Slot, ()> {
    match expected {
        None => Ok(std::ptr::null()),
        Some(layout) => match f.event {
            Some(rec) if rec.layout == layout => row_of(rec, widths).map(|r| r.as_ptr()).ok_or(()),
            _ => Err(()),
        },
    }
}

impl JitExecutor {
    /// Calls compiled code, then `finish` with its status, its context
    /// (the result in `out`) and the fault a helper recorded, while the
    /// strings the call kept are still alive.
    fn enter_with<T>(
        &self,
        code: Code,
        (event, row, state): (*const Slot, *const Slot, u64),
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
        finish: impl FnOnce(i64, &NativeCtx, Option<Fault>) -> T,
    ) -> T {
        let mut env = Env {
            interp: i,
            frame: f,
            tables: &self.compiled.tables,
            keep: Vec::new(),
            fault: None,
        };
        let mut ctx = NativeCtx {
            event,
            row,
            env: (&raw mut env).cast(),
            state,
            out: Slot::ABSENT,
        };
        // SAFETY: `code` was compiled for this context layout; `event` is
        // null or the live compact row of the frame's record (of the layout
        // the code was compiled for, checked by the caller); `row` is null
        // or a live row at least as wide as the code reads; `env` lives on
        // this stack frame until the call returns, and the helpers are the
        // only ones to touch it meanwhile.
        let status = unsafe { code(&mut ctx) };
        // Taken apart rather than dropped whole, so the common case (no
        // string kept, no fault) costs two checks instead of a call that
        // drops an `Env`: a vector that never grew owns nothing to free.
        let Env { keep, fault, .. } = env;
        let result = finish(status, &ctx, fault);
        if keep.capacity() == 0 {
            std::mem::forget(keep);
        }
        result
    }

    /// Calls compiled code and reads its result with `read`; `Err`
    /// carries the fault it raised.
    fn enter(
        &self,
        code: Code,
        context: (*const Slot, *const Slot, u64),
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
        read: impl FnOnce(&NativeCtx) -> Value,
    ) -> Result<(Slot, Value), Fault> {
        self.enter_with(code, context, i, f, |status, ctx, fault| {
            let v = read(ctx);
            if status == OK {
                Ok((ctx.out, v))
            } else {
                Err(fault_or_invalid(fault))
            }
        })
    }

    /// [`JitExecutor::enter`] for code whose result is a plain number (a
    /// body's status, a selected transition): no value is read back, so
    /// nothing is built or dropped for it. The number comes with a fault
    /// too (a selector's transition).
    fn call(
        &self,
        code: Code,
        (event, state): (*const Slot, u64),
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<u64, (u64, Fault)> {
        let context = (event, std::ptr::null(), state);
        self.enter_with(code, context, i, f, |status, ctx, fault| {
            if status == OK {
                Ok(ctx.out.bits)
            } else {
                Err((ctx.out.bits, fault_or_invalid(fault)))
            }
        })
    }
}

/// The fault compiled code stopped with.
fn fault_or_invalid(fault: Option<Fault>) -> Fault {
    fault.unwrap_or_else(|| Fault::Invalid("compiled code failed without a fault".into()))
}

impl Executor for JitExecutor {
    fn eval(
        &self,
        site: Site,
        expr: &Expr,
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault> {
        let Some(c) = self.compiled.exprs.get(&site) else {
            return i.eval(expr, f);
        };
        let Ok(event) = event_row(f, c.event, &self.compiled.widths) else {
            return i.eval(expr, f);
        };
        let mut columns: Vec<Slot> = Vec::new();
        let row = match c.row_width {
            Some(w) if w > 0 => {
                for v in f.row.unwrap_or(&[]) {
                    match Slot::from_value(v) {
                        Some(s) => columns.push(s),
                        None => return i.eval(expr, f),
                    }
                }
                columns.resize(columns.len().max(w as usize), Slot::ABSENT);
                columns.as_ptr()
            }
            _ => std::ptr::null(),
        };
        let ty = c.ty;
        let rec = f.event;
        // SAFETY: the slot was written by the compiled code from values
        // that `Env::keep`, the record or the frame hold during `read`.
        let (_, v) = self.enter(c.code, (event, row, 0), i, f, |ctx| {
            // A string of the event itself (a field read, a key): share its
            // allocation, as the interpreter's clone does, instead of
            // copying it.
            if ctx.out.tag != 0
                && ty == STR
                && let Some(v) = rec.and_then(|r| shared_str(r, ctx.out))
            {
                return v;
            }
            // SAFETY: see above.
            unsafe { to_value(ctx.out, ty) }
        })?;
        Ok(v)
    }

    fn run(
        &self,
        site: Site,
        body: &[Stmt],
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<(), Fault> {
        let compiled = match site {
            Site::TransitionBody {
                machine,
                transition,
            } => self
                .compiled
                .transitions
                .get(machine as usize)
                .and_then(|m| m.get(transition as usize)?.as_ref()),
            _ => self.compiled.bodies.get(&site),
        };
        let Some(c) = compiled else {
            return i.run(body, f);
        };
        let Ok(event) = event_row(f, c.event, &self.compiled.widths) else {
            return i.run(body, f);
        };
        self.call(c.code, (event, 0), i, f)
            .map(|_| ())
            .map_err(|(_, fault)| fault)
    }

    fn select(
        &self,
        mi: u32,
        m: &Machine,
        rec: &Record,
        state: u32,
        i: &mut Interp<'_>,
        f: &mut Frame<'_>,
    ) -> Result<Option<usize>, (usize, Fault)> {
        let fallback =
            |i: &mut Interp<'_>, f: &mut Frame<'_>| select_in_order(self, mi, m, rec, state, i, f);
        let code = self
            .compiled
            .selects
            .get(mi as usize)
            .and_then(|m| *m.get(rec.layout as usize)?);
        let Some(code) = code else {
            return fallback(i, f);
        };
        let Some(row) = row_of(rec, &self.compiled.widths).map(|r| r.as_ptr()) else {
            return fallback(i, f);
        };
        match self.call(code, (row, u64::from(state)), i, f) {
            Ok(chosen) if chosen as i64 == -1 => Ok(None),
            Ok(chosen) => Ok(Some(chosen as usize)),
            Err((chosen, fault)) => Err((chosen as usize, fault)),
        }
    }

    fn reads_rows(&self) -> bool {
        true
    }

    fn has_prefilter(&self, query: u32) -> bool {
        self.compiled.filters.contains_key(&query)
    }

    fn prefilter(&self, query: u32, records: &[&Record], passed: &mut [u8]) -> bool {
        let Some(filter) = self.compiled.filters.get(&query) else {
            return false;
        };
        if passed.len() != records.len() {
            return false;
        }
        // The filter reads rows of its layout's projection laid end to end:
        // gathered here from each record's full row (built now if the
        // record has none yet, and kept for later sites).
        let mut rows: Vec<Slot> = Vec::with_capacity(records.len() * filter.slots.len());
        for r in records {
            let Some(row) = r.compact() else {
                return false;
            };
            for &s in &filter.slots {
                let Some(slot) = row.get(s as usize) else {
                    return false;
                };
                rows.push(*slot);
            }
        }
        // SAFETY: `rows` holds one projected row per verdict (built above);
        // string slots in it point into the records, borrowed for the call.
        unsafe { run_filter(filter, &rows, passed) };
        true
    }

    fn prefilter_rows(&self, query: u32, rows: &[Slot], width: usize, passed: &mut [u8]) -> bool {
        let Some(filter) = self.compiled.filters.get(&query) else {
            return false;
        };
        if width != filter.slots.len() {
            return false;
        }
        // SAFETY: the caller lays out rows of the layout's projection
        // (`projection`), which is this filter's; `run_filter` checks that
        // there is one per verdict.
        unsafe { run_filter(filter, rows, passed) };
        true
    }

    fn projection(&self, layout: u32) -> Option<&[u32]> {
        self.compiled
            .projections
            .get(layout as usize)
            .filter(|p| !p.is_empty())
            .map(Vec::as_slice)
    }
}

/// Runs a batch filter over `rows`, rows of its projection laid end to end,
/// one verdict byte per row into `passed` (nothing when their numbers
/// differ).
///
/// # Safety
///
/// `rows` holds rows of the slots `filter.slots` names, in that order, of
/// events of the filter's layout; string slots in them point to bytes that
/// stay alive and unchanged for the call.
unsafe fn run_filter(filter: &BatchFilter, rows: &[Slot], passed: &mut [u8]) {
    let width = filter.slots.len();
    if width == 0 || rows.len() != passed.len() * width {
        return;
    }
    // SAFETY: the rows are as the caller promises, `width` slots each (the
    // stride the loop was compiled with), and `passed` has one byte per row
    // (checked above). The loop calls no helper that needs a context.
    unsafe {
        (filter.code)(
            rows.as_ptr().cast(),
            passed.len() as u64,
            passed.as_mut_ptr(),
        )
    };
}
