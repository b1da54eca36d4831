//! One engine on one workload end to end from OTLP/JSON log exports
//! (100 records a line), once, for a profiler: where dtc's instructions
//! per record go on the line lane (`Engine::push_lines`: the OTLP/JSON
//! reader, the records, the engine).
//!
//! ```text
//! cargo build --release --example otlp_profile
//! valgrind --tool=callgrind --toggle-collect='*run_lines*' --toggle-collect='*run_otlp*' \
//!     target/release/examples/otlp_profile 0 jit 10000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Arguments: the workload (0 to 3), the engine (`interp`, `jit`, or
//! `vrl` and `baseline` for their instructions on the same lines), the
//! number of events (default 10,000). Prints the result and the lines
//! refused (VRL: failed), checked against the baseline.

use std::process::ExitCode;

use dtc_vrl_peer::dtc::{baseline_lines, interp, run_lines};
use dtc_vrl_peer::jit;
use dtc_vrl_peer::peer::{PROGRAMS, Vrl, run_otlp};
use dtc_vrl_peer::stream::{lines, otlp_batches, program};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: otlp_profile WORKLOAD(0-3) interp|jit|vrl|baseline [EVENTS]";
    let workload: usize = args
        .first()
        .and_then(|w| w.parse().ok())
        .filter(|&w| w < 4)
        .ok_or(usage)?;
    let events: usize = match args.get(2) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("{n:?} is not a count; {usage}"))?,
        None => 10_000,
    };
    let prog = program(workload)?;
    let exports = otlp_batches(&lines(workload, events))?;
    let got = match args.get(1).map(String::as_str) {
        Some("interp") => (run_lines(workload, &mut interp(&prog), &exports), 0),
        Some("jit") => (run_lines(workload, &mut jit::compile(&prog)?, &exports), 0),
        Some("vrl") => run_otlp(workload, &mut Vrl::compile(PROGRAMS[workload])?, &exports),
        Some("baseline") => (baseline_lines(workload, &exports), 0),
        _ => return Err(usage.into()),
    };
    let expected = baseline_lines(workload, &exports);
    println!(
        "result {} with {} refused, expected {expected} with none",
        got.0, got.1
    );
    if got != (expected, 0) {
        return Err("the engine disagrees with the baseline".into());
    }
    Ok(())
}
