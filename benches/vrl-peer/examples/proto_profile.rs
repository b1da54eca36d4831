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
use dtc_vrl_peer::profile::{self, Args};
use dtc_vrl_peer::stream::{lines, otlp_requests, program};

fn main() -> ExitCode {
    profile::exit(run())
}

fn run() -> Result<(), String> {
    let usage =
        "usage: proto_profile WORKLOAD(0-3) interp|jit|interp-each|jit-each|vrl|baseline [EVENTS]";
    let Args {
        workload,
        engine,
        events,
    } = profile::args(usage)?;
    let prog = program(workload)?;
    let requests = otlp_requests(&lines(workload, events))?;
    let needs = needs(&prog);
    let got = match engine.as_str() {
        "interp" => run_proto(workload, &mut interp(&prog), &requests, &needs),
        "jit" => run_proto(workload, &mut jit::compile(&prog)?, &requests, &needs),
        // A record at a time (`push_read`), as before `push_reads`.
        "interp-each" => run_proto_each(workload, &mut interp(&prog), &requests, &needs),
        "jit-each" => run_proto_each(workload, &mut jit::compile(&prog)?, &requests, &needs),
        "vrl" => peer::run_proto(workload, &mut Vrl::compile(PROGRAMS[workload])?, &requests),
        "baseline" => (baseline_proto(workload, &requests), 0),
        _ => return Err(usage.into()),
    };
    let expected = baseline_proto(workload, &requests);
    profile::check(got, expected)
}
