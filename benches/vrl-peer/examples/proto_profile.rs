//! One engine on one workload end to end from OTLP protobuf, once, for a
//! profiler: where dtc's instructions per record go on the agent's path
//! (`wire::Request::parse`, `Received::new`, `push_read`, the engine).
//!
//! ```text
//! cargo build --release --example proto_profile
//! valgrind --tool=callgrind --toggle-collect='*run_proto*' --toggle-collect='*baseline_proto*' \
//!     target/release/examples/proto_profile 0 jit 10000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Arguments: the workload (0 to 3), the engine (`interp`, `jit`, each
//! pushing a request's records as one batch, `push_reads`; `interp-each`,
//! `jit-each`, a record at a time, `push_read`; or `vrl` and `baseline`
//! for their instructions on the same records), the
//! number of events (default 10,000). Prints the result and the records
//! refused (VRL: failed), checked against the baseline.

use std::process::ExitCode;

use dtc_vrl_peer::dtc::{baseline_proto, interp, needs, run_proto, run_proto_each};
use dtc_vrl_peer::jit;
use dtc_vrl_peer::peer::{self, PROGRAMS, Vrl};
use dtc_vrl_peer::stream::{lines, otlp_requests, program};

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
    let usage =
        "usage: proto_profile WORKLOAD(0-3) interp|jit|interp-each|jit-each|vrl|baseline [EVENTS]";
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
    let requests = otlp_requests(&lines(workload, events))?;
    let needs = needs(&prog);
    let got = match args.get(1).map(String::as_str) {
        Some("interp") => run_proto(workload, &mut interp(&prog), &requests, &needs),
        Some("jit") => run_proto(workload, &mut jit::compile(&prog)?, &requests, &needs),
        // A record at a time (`push_read`), as before `push_reads`.
        Some("interp-each") => run_proto_each(workload, &mut interp(&prog), &requests, &needs),
        Some("jit-each") => run_proto_each(workload, &mut jit::compile(&prog)?, &requests, &needs),
        Some("vrl") => peer::run_proto(workload, &mut Vrl::compile(PROGRAMS[workload])?, &requests),
        Some("baseline") => (baseline_proto(workload, &requests), 0),
        _ => return Err(usage.into()),
    };
    let expected = baseline_proto(workload, &requests);
    println!(
        "result {} with {} refused, expected {expected} with none",
        got.0, got.1
    );
    if got != (expected, 0) {
        return Err("the engine disagrees with the baseline".into());
    }
    Ok(())
}
