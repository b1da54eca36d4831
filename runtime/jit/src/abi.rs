//! The boundary between compiled code and the runtime: the context block
//! compiled functions receive, and the `extern "C"` helpers they call for
//! what stays in Rust (variables and locals, which live in the runtime's
//! frames; effects; string operations that allocate; subtrees the JIT
//! leaves to the interpreter).
//!
//! Every helper takes the [`NativeCtx`] a compiled function was called
//! with. The context points at an [`Env`] on the Rust stack of the call
//! that entered compiled code, which holds the interpreter and frame of
//! that call; so helpers see exactly the state the interpreter would.
//! Helpers never unwind: the two that run interpreter code catch panics
//! and turn them into faults.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use dtc_engine::interp::{Effect, Fault, Frame, Interp, draw, extension};
use dtc_engine::slots::Slot;
use dtc_engine::value::Value;
use dtc_ir::{AssignOp, Place, Stmt, Type};

use crate::compile::Tables;

/// What a compiled function receives. `#[repr(C)]`: compiled code reads
/// the fields at the offsets below.
#[repr(C)]
pub(crate) struct NativeCtx {
    /// The current event's compact row, or null.
    pub event: *const Slot,
    /// The current query row's compact form, or null.
    pub row: *const Slot,
    /// The [`Env`] of this call.
    pub env: *mut c_void,
    /// The machine state, for transition selection.
    pub state: u64,
    /// A result: an expression's value, a selected transition.
    pub out: Slot,
}

pub(crate) const CTX_EVENT: i32 = 0;
pub(crate) const CTX_ROW: i32 = 8;
pub(crate) const CTX_STATE: i32 = 24;
pub(crate) const CTX_OUT: i32 = 32;

/// The Rust side of one entry into compiled code.
pub(crate) struct Env<'e, 'a, 'f> {
    pub interp: &'e mut Interp<'a>,
    pub frame: &'e mut Frame<'f>,
    pub tables: &'e Tables,
    /// Values whose strings compiled code holds by address: they live
    /// until the call returns.
    pub keep: Vec<Value>,
    pub fault: Option<Fault>,
}

/// Statuses compiled functions and helpers return.
pub(crate) const OK: i64 = 0;
pub(crate) const FAULT: i64 = 1;
pub(crate) const RETURNED: i64 = 2;

/// Fault codes of [`h_fault`].
pub(crate) const F_ADD: i64 = 0;
pub(crate) const F_SUB: i64 = 1;
pub(crate) const F_MUL: i64 = 2;
pub(crate) const F_DIV: i64 = 3;
pub(crate) const F_REM: i64 = 4;
pub(crate) const F_DIV_ZERO: i64 = 5;
pub(crate) const F_ABS: i64 = 6;

/// Type codes: how a slot becomes a [`Value`] again.
pub(crate) fn type_code(t: &Type) -> i64 {
    match t.inner() {
        Type::Bool => 1,
        Type::Int => 2,
        Type::Float => 3,
        Type::Str => 4,
        Type::Duration => 5,
        Type::Timestamp => 6,
        Type::Percent => 7,
        _ => 0,
    }
}

/// The bytes a string slot points at.
///
/// # Safety
/// `ptr` and `len` come from a slot built by `dtc_engine::slots` or by a
/// helper here, whose owner (a record, a frame value, a compiled constant
/// or `Env::keep`) outlives the current call into compiled code.
unsafe fn bytes<'x>(ptr: u64, len: u64) -> &'x [u8] {
    if len == 0 || ptr == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees that `ptr..ptr+len` is a live
    // allocation for the duration of the call (see above).
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

/// A slot back as a value of the type with code `code`.
///
/// # Safety
/// As [`bytes`], for string slots.
pub(crate) unsafe fn to_value(s: Slot, code: i64) -> Value {
    if s.tag == 0 {
        return Value::None;
    }
    match code {
        1 => Value::Bool(s.bits != 0),
        2 => Value::Int(s.bits as i64),
        3 => Value::Float(f64::from_bits(s.bits)),
        4 => {
            // SAFETY: forwarded from the caller.
            let b = unsafe { bytes(s.bits, u64::from(s.len)) };
            Value::Str(Rc::from(String::from_utf8_lossy(b).as_ref()))
        }
        5 => Value::Duration(s.bits as i64),
        6 => Value::Timestamp(s.bits as i64),
        7 => Value::Percent(f64::from_bits(s.bits)),
        _ => Value::None,
    }
}

/// # Safety
/// `ctx` is the context compiled code was called with; its `env` points at
/// a live [`Env`] that nothing else borrows while the helper runs.
unsafe fn env<'x>(ctx: *mut NativeCtx) -> &'x mut Env<'x, 'x, 'x> {
    // SAFETY: see the function's contract; the executor builds both and
    // keeps them alive across the call into compiled code.
    unsafe { &mut *((*ctx).env as *mut Env<'x, 'x, 'x>) }
}

/// Writes a value's slot to `out`, keeping the value alive for its strings.
///
/// # Safety
/// `out` points at a writable slot.
unsafe fn put(e: &mut Env<'_, '_, '_>, v: Value, out: *mut Slot) {
    let slot = match Slot::from_value(&v) {
        Some(s) => s,
        None => {
            e.fault = Some(Fault::Invalid("a string longer than 4 GiB".into()));
            Slot::ABSENT
        }
    };
    if matches!(v, Value::Str(_) | Value::Bytes(_)) {
        e.keep.push(v);
    }
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(slot) };
}

/// Reads a local (space 0), variable (1) or state slot (2).
pub(crate) extern "C" fn h_read(ctx: *mut NativeCtx, space: u64, idx: u64, out: *mut Slot) {
    // SAFETY: called from compiled code with its context and a stack slot.
    let e = unsafe { env(ctx) };
    let f = &*e.frame;
    let v = match space {
        0 => f.locals.get(idx as usize),
        1 => f.vars.get(idx as usize),
        _ => f.slots.get(idx as usize),
    };
    match v {
        // A string is held by address: kept alive until the call returns,
        // since the code may assign the place meanwhile.
        Some(v @ (Value::Str(_) | Value::Bytes(_))) => {
            let v = v.clone();
            // SAFETY: `out` is the caller's stack slot.
            unsafe { put(e, v, out) }
        }
        // Anything else is its slot: nothing to keep, nothing to clone.
        // SAFETY: `out` is the caller's stack slot.
        Some(v) => unsafe { out.write(Slot::from_value(v).unwrap_or(Slot::ABSENT)) },
        // SAFETY: as above.
        None => unsafe { out.write(Slot::ABSENT) },
    }
}

/// Records a fault raised by compiled arithmetic.
pub(crate) extern "C" fn h_fault(ctx: *mut NativeCtx, code: u64) {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    e.fault = Some(match code as i64 {
        F_ADD => Fault::Overflow("+"),
        F_SUB => Fault::Overflow("-"),
        F_MUL => Fault::Overflow("*"),
        F_DIV => Fault::Overflow("/"),
        F_REM => Fault::Overflow("%"),
        F_DIV_ZERO => Fault::DivisionByZero,
        F_ABS => Fault::Overflow("abs"),
        other => Fault::Invalid(format!("unknown fault code {other}")),
    });
}

fn caught<T>(e: &mut Env<'_, '_, '_>, f: impl FnOnce(&mut Env<'_, '_, '_>) -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(|| f(&mut *e))) {
        Ok(v) => Some(v),
        Err(_) => {
            e.fault = Some(Fault::Invalid("the interpreter panicked".into()));
            None
        }
    }
}

/// Evaluates fallback expression `id` with the interpreter.
pub(crate) extern "C" fn h_interp_expr(ctx: *mut NativeCtx, id: u64, out: *mut Slot) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    let Some(expr) = e.tables.exprs.get(id as usize) else {
        e.fault = Some(Fault::Invalid(format!("fallback expression {id}")));
        return FAULT;
    };
    let r = caught(e, |e| e.interp.eval(expr, e.frame));
    match r {
        Some(Ok(v)) => {
            // SAFETY: `out` is the caller's stack slot.
            unsafe { put(e, v, out) };
            if e.fault.is_some() { FAULT } else { OK }
        }
        Some(Err(f)) => {
            e.fault = Some(f);
            FAULT
        }
        None => FAULT,
    }
}

/// Runs fallback statement `id` with the interpreter; a `return` leaves
/// its value in the context's `out`.
pub(crate) extern "C" fn h_interp_stmt(ctx: *mut NativeCtx, id: u64) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    let Some(stmt) = e.tables.stmts.get(id as usize) else {
        e.fault = Some(Fault::Invalid(format!("fallback statement {id}")));
        return FAULT;
    };
    match caught(e, |e| e.interp.exec_stmt(stmt, e.frame)) {
        Some(Ok(None)) => OK,
        Some(Ok(Some(v))) => {
            // SAFETY: `ctx` is live; `out` is a field of it.
            unsafe { put(e, v, &raw mut (*ctx).out) };
            RETURNED
        }
        Some(Err(f)) => {
            e.fault = Some(f);
            FAULT
        }
        None => FAULT,
    }
}

/// `let` and the binding of `if let` and `for`: sets local `idx`.
pub(crate) extern "C" fn h_set_local(
    ctx: *mut NativeCtx,
    idx: u64,
    code: u64,
    slot: *const Slot,
) -> i64 {
    // SAFETY: called from compiled code with its context and a stack slot
    // holding a value it computed.
    let (e, v) = unsafe { (env(ctx), to_value(slot.read(), code as i64)) };
    match Interp::set_local(e.frame, idx as u32, v) {
        Ok(()) => OK,
        Err(f) => {
            e.fault = Some(f);
            FAULT
        }
    }
}

/// An assignment (statement `id`) of the computed value in `slot`.
pub(crate) extern "C" fn h_assign(ctx: *mut NativeCtx, id: u64, slot: *const Slot) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    let Some(Stmt::Assign { place, op, value }) = e.tables.stmts.get(id as usize) else {
        e.fault = Some(Fault::Invalid(format!("assignment {id}")));
        return FAULT;
    };
    // SAFETY: `slot` is the caller's stack slot with the value's slot.
    let v = unsafe { to_value(slot.read(), type_code(&value.ty)) };
    // A plain `=` to a local, variable or state slot (a machine's
    // `started = event.time`) is the interpreter's store without its
    // dispatch on the operator and without the panic guard: it runs no
    // interpreter code. Anything else goes through `store`.
    if *op == AssignOp::Set {
        let f = &mut *e.frame;
        let target = match place {
            Place::Local(i) => Some(f.locals.get_mut(*i as usize)),
            Place::Var(i) => Some(f.vars.get_mut(*i as usize)),
            Place::StateVar(i) => Some(f.slots.get_mut(*i as usize)),
            Place::Entry(..) => None,
        };
        match target {
            Some(Some(t)) => {
                *t = v;
                return OK;
            }
            Some(None) => {
                e.fault = Some(Fault::Invalid("place out of range".into()));
                return FAULT;
            }
            None => {}
        }
    }
    match caught(e, |e| e.interp.store(place, *op, v, e.frame)) {
        Some(Ok(())) => OK,
        Some(Err(f)) => {
            e.fault = Some(f);
            FAULT
        }
        None => FAULT,
    }
}

/// An `emit` or `trigger` (statement `id`) with its computed values, one
/// slot each in `slots`, in the statement's order.
pub(crate) extern "C" fn h_effect(ctx: *mut NativeCtx, id: u64, slots: *const Slot) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    // SAFETY: `slots` holds one slot per field or argument of the
    // statement: the compiled code sized it from the same statement.
    let at = |j: usize, t: &Type| unsafe { to_value(slots.add(j).read(), type_code(t)) };
    match e.tables.stmts.get(id as usize) {
        Some(Stmt::Emit {
            event,
            fields,
            budget,
            site,
        }) => {
            let n = e
                .interp
                .program
                .events
                .get(*event as usize)
                .map_or(0, |l| l.fields.len());
            let mut values = vec![Value::None; n];
            for (j, (slot, x)) in fields.iter().enumerate() {
                let v = at(j, &x.ty);
                if let Some(s) = values.get_mut(*slot as usize) {
                    *s = v;
                }
            }
            e.interp.effects.push(Effect::Emit {
                event: *event,
                slots: values,
                budget: *budget,
                site: *site,
            });
            OK
        }
        Some(Stmt::Trigger {
            action,
            args,
            budget,
            site,
        }) => {
            let mut values = Vec::new();
            for (j, (n, x)) in args.iter().enumerate() {
                let v = at(j, &x.ty);
                if !v.is_none() {
                    values.push((n.clone(), v));
                }
            }
            e.interp.effects.push(Effect::Trigger {
                action: action.clone(),
                args: values,
                budget: *budget,
                site: *site,
            });
            OK
        }
        _ => {
            e.fault = Some(Fault::Invalid(format!("effect {id}")));
            FAULT
        }
    }
}

/// Orders two strings: -1, 0 or 1 (byte order is `str` order).
pub(crate) extern "C" fn h_str_cmp(a: u64, al: u64, b: u64, bl: u64) -> i64 {
    // SAFETY: string slots of the calling code (see `bytes`).
    let (x, y) = unsafe { (bytes(a, al), bytes(b, bl)) };
    x.cmp(y) as i64
}

/// `contains` (0), `starts_with` (1), `ends_with` (2) on bytes, which for
/// valid UTF-8 agree with the `str` methods.
pub(crate) extern "C" fn h_str_test(code: u64, a: u64, al: u64, b: u64, bl: u64) -> i64 {
    // SAFETY: string slots of the calling code (see `bytes`).
    let (x, y) = unsafe { (bytes(a, al), bytes(b, bl)) };
    i64::from(match code {
        0 => y.is_empty() || x.windows(y.len()).any(|w| w == y),
        1 => x.starts_with(y),
        _ => x.ends_with(y),
    })
}

/// `extension(path)`: a part of the same string, so no allocation.
pub(crate) extern "C" fn h_extension(a: u64, al: u64, out: *mut Slot) {
    // SAFETY: a string slot of the calling code (see `bytes`).
    let x = unsafe { bytes(a, al) };
    let ext = std::str::from_utf8(x).map(extension).unwrap_or("");
    let slot = Slot::bytes(ext.as_bytes()).unwrap_or(Slot::ABSENT);
    // SAFETY: `out` is the caller's stack slot.
    unsafe { out.write(slot) };
}

/// `a + b` on strings: a new string, kept alive by the call's `Env`.
pub(crate) extern "C" fn h_concat(
    ctx: *mut NativeCtx,
    a: u64,
    al: u64,
    b: u64,
    bl: u64,
    out: *mut Slot,
) {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    // SAFETY: string slots of the calling code (see `bytes`).
    let (x, y) = unsafe { (bytes(a, al), bytes(b, bl)) };
    let mut s = String::from_utf8_lossy(x).into_owned();
    s.push_str(&String::from_utf8_lossy(y));
    // SAFETY: `out` is the caller's stack slot.
    unsafe { put(e, Value::str(&s), out) }
}

/// `a % b` on floats, as Rust's `%`.
pub(crate) extern "C" fn h_fmod(a: f64, b: f64) -> f64 {
    a % b
}

/// `machine is State` for the current event.
pub(crate) extern "C" fn h_in_state(ctx: *mut NativeCtx, machine: u64, state: u64) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    match e.frame.event {
        Some(r) => i64::from(e.interp.world.in_state(machine as u32, state as u32, r)),
        None => 0,
    }
}

/// `sample(rate)` at call site `site`.
pub(crate) extern "C" fn h_sample(ctx: *mut NativeCtx, site: u64, tag: u64, bits: u64) -> i64 {
    // SAFETY: called from compiled code with its context.
    let e = unsafe { env(ctx) };
    let p = if tag != 0 { f64::from_bits(bits) } else { 0.0 };
    i64::from(draw(e.interp.seed, e.interp.seq, site as u32) * 100.0 < p)
}
