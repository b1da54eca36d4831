//! Fuzz target: random well-typed programs and event streams run
//! identically under the reference interpreter and the JIT.
//!
//! The input bytes are the generator's choices (`dtc_progen::Entropy`), so
//! every input is a program that should check clean, lower, verify and
//! run; libFuzzer's mutations change one decision at a time. Any of these
//! is a crash: a generated program the checker rejects (a generator or a
//! checker bug), an IR that does not verify (a lowering bug), a program
//! the JIT refuses, a difference between the engines in any output or
//! counter (`dtc_jit::differential`, line by line and in batches), and a
//! panic anywhere. The crash message carries the program and its events.

#![no_main]

use dtc_driver::{MemoryFs, Session};
use dtc_engine::Options;
use dtc_progen::{Entropy, Limits, generate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut e = Entropy::from_bytes(data);
    let case = generate(&mut e, Limits { max_events: 40 });
    let out = Session::new(MemoryFs::new()).check_source("fuzz.dt", &case.program);
    let Some(lowered) = out.lower() else {
        let errors = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, false);
        panic!("a generated program does not check:\n{errors}\n{case}");
    };
    let program = match lowered {
        Ok(p) => p,
        Err(errors) => panic!("the IR does not verify: {errors:?}\n{case}"),
    };
    let options = Options {
        seed: case.seed,
        lateness_ns: case.lateness_ns,
        ..Options::default()
    };
    if let Err(d) = dtc_jit::differential(&program, &options, &case.events) {
        panic!("{d}\n{case}");
    }
});
