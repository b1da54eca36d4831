//! What the profiling examples (`examples/proto_profile.rs`,
//! `examples/otlp_profile.rs`) share: their arguments (a workload, an
//! engine, a number of events), the check of an engine's result against
//! the baseline's, and the exit.

use std::process::ExitCode;

/// An example's arguments: `WORKLOAD(0-3) ENGINE [EVENTS]`.
pub struct Args {
    pub workload: usize,
    /// As given; the example says which it knows (`usage` otherwise).
    pub engine: String,
    /// 10,000 unless given.
    pub events: usize,
}

/// The process's arguments, or `usage` with what is wrong.
pub fn args(usage: &str) -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let engine = args.get(1).cloned().unwrap_or_default();
    Ok(Args {
        workload,
        engine,
        events,
    })
}

/// Prints an engine's result and what it refused beside the baseline's,
/// and fails where they differ.
pub fn check((result, refused): (u64, u64), expected: u64) -> Result<(), String> {
    println!("result {result} with {refused} refused, expected {expected} with none");
    if (result, refused) != (expected, 0) {
        return Err("the engine disagrees with the baseline".into());
    }
    Ok(())
}

/// `run`'s outcome as the process's: an error printed, and failure.
pub fn exit(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
