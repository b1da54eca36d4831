//! The dtc JIT column. The cranelift JIT (`runtime/jit`, crate `dtc-jit`)
//! is being built; until it exposes an engine, every function here answers
//! `None` and the table prints "not built" in the JIT column.
//!
//! To add it: depend on `dtc-jit = { path = "../../runtime/jit" }` in this
//! crate's `Cargo.toml`, set [`STATUS`] to `None`, and make [`events`] and
//! [`lines`] run the JIT engine as `crate::dtc::interp_events` and
//! `crate::dtc::interp_lines` run the interpreter, returning the same
//! results (the benchmark checks them against the other engines).

use dtc_engine::event::InputEvent;

/// Why the JIT is not measured, or `None` when it is.
pub const STATUS: Option<&str> = Some("not built");

/// The JIT over decoded events (the kernel measure).
pub fn events(
    _workload: usize,
    _program: &dtc_ir::Program,
    _events: Vec<InputEvent>,
) -> Option<u64> {
    None
}

/// The JIT from input lines (flat JSON or OTLP/JSON), decoding included.
pub fn lines(_workload: usize, _program: &dtc_ir::Program, _lines: &[String]) -> Option<u64> {
    None
}
