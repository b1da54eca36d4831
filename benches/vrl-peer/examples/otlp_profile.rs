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
use dtc_vrl_peer::profile::{self, Args};
use dtc_vrl_peer::stream::{lines, otlp_batches, program};

fn main() -> ExitCode {
    profile::exit(run())
}

fn run() -> Result<(), String> {
    let usage = "usage: otlp_profile WORKLOAD(0-3) interp|jit|vrl|baseline [EVENTS]";
    let Args {
        workload,
        engine,
        events,
    } = profile::args(usage)?;
    let prog = program(workload)?;
    let exports = otlp_batches(&lines(workload, events))?;
    let got = match engine.as_str() {
        "interp" => (run_lines(workload, &mut interp(&prog), &exports), 0),
        "jit" => (run_lines(workload, &mut jit::compile(&prog)?, &exports), 0),
        "vrl" => run_otlp(workload, &mut Vrl::compile(PROGRAMS[workload])?, &exports),
        "baseline" => (baseline_lines(workload, &exports), 0),
        _ => return Err(usage.into()),
    };
    let expected = baseline_lines(workload, &exports);
    profile::check(got, expected)
}
