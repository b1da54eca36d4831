//! The dtc JIT column: `dtc-jit`'s engine (every site of the program
//! compiled to native code with cranelift, on the same runtime as the
//! interpreter), driven exactly as [`crate::dtc`] drives the interpreter.

use dtc_agent::received::Received;
use dtc_engine::event::InputEvent;
use dtc_engine::{Batch, Options, Produced};
use dtc_jit::JitEngine;

use crate::dtc::Runner;

impl Runner for JitEngine {
    fn decode_batch(&self, events: &[InputEvent]) -> Batch {
        JitEngine::decode_batch(self, events.iter().cloned())
    }
    fn push_batch(&mut self, batch: &Batch) {
        JitEngine::push_batch(self, batch)
    }
    fn push_lines(&mut self, lines: &[String]) {
        JitEngine::push_lines(self, lines.iter().map(String::as_str))
    }
    fn push_read(&mut self, record: Received) {
        JitEngine::push_read(self, record)
    }
    fn push_reads(&mut self, records: Vec<Received>) {
        JitEngine::push_reads(self, records)
    }
    fn finish(&mut self, until_end: bool) {
        JitEngine::finish(self, until_end)
    }
    fn drain_lazy(&mut self) -> Vec<Produced> {
        JitEngine::drain_lazy(self)
    }
    fn drain_lazy_into(&mut self, into: &mut Vec<Produced>) {
        JitEngine::drain_lazy_into(self, into)
    }
}

/// Compiles a workload's program; the error says why the JIT refused it.
pub fn compile(program: &dtc_ir::Program) -> Result<JitEngine, String> {
    JitEngine::new(program.clone(), Options::default())
        .map_err(|e| format!("the JIT refused the program: {e}"))
}

/// What the JIT made of the program (native, helper and interpreted
/// nodes, compile time), as `dtc-jit` reports it.
pub fn report(program: &dtc_ir::Program) -> Result<String, String> {
    Ok(compile(program)?.report().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtc::{
        baseline, decode_all, needs, run_events, run_lines, run_proto, run_proto_each,
    };
    use crate::stream::{TEST_STEP, lines_every, otlp_batches, otlp_requests, program};

    #[test]
    fn the_jit_agrees_with_the_baseline_on_every_workload_and_input_form() {
        for w in 0..4 {
            let prog = program(w).unwrap();
            let input = lines_every(w, 20_000, TEST_STEP);
            let (events, _) = decode_all(&input);
            let expected = baseline(w, &events);
            assert_eq!(
                run_events(w, compile(&prog).unwrap(), &events),
                expected,
                "workload {w}"
            );
            assert_eq!(
                run_lines(w, &mut compile(&prog).unwrap(), &input),
                expected,
                "workload {w}"
            );
            let otlp = otlp_batches(&input).unwrap();
            assert_eq!(
                run_lines(w, &mut compile(&prog).unwrap(), &otlp),
                expected,
                "workload {w}"
            );
            let proto = otlp_requests(&input).unwrap();
            assert_eq!(
                run_proto(w, &mut compile(&prog).unwrap(), &proto, &needs(&prog)),
                (expected, 0),
                "workload {w}"
            );
            assert_eq!(
                run_proto_each(w, &mut compile(&prog).unwrap(), &proto, &needs(&prog)),
                (expected, 0),
                "workload {w}"
            );
            assert!(report(&prog).unwrap().contains("compiled in"));
        }
    }
}
