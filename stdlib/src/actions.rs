//! Actions: diagnostic work a `trigger` starts. Every action only observes:
//! it writes file-based telemetry to the agent's spool, never changes the
//! system it watches.

use crate::Signature;
use crate::ty::{Pattern as P, Returns as R, opt, req};

pub static ACTIONS: &[Signature] = &[
    Signature {
        name: "cpu_sample",
        params: &[req("for", P::Duration)],
        returns: R::Nothing,
        doc: "Samples the target process's CPU stacks for the given time and writes a profile.",
    },
    Signature {
        name: "memory_dump",
        params: &[],
        returns: R::Nothing,
        doc: "Writes a core file of the target process.",
    },
    Signature {
        name: "verbose_logs",
        params: &[req("for", P::Duration)],
        returns: R::Nothing,
        doc: "For the given time, stops suppressing the debug-level events this program suppresses and flushes the flight recorder.",
    },
    Signature {
        name: "flight_recorder.snapshot",
        params: &[opt("events", P::Int)],
        returns: R::Nothing,
        doc: "Writes the last events this program saw (all the recorder holds, or the last `events`).",
    },
    Signature {
        name: "collect_config",
        params: &[req("path", P::String)],
        returns: R::Nothing,
        doc: "Copies a configuration file, read-only, into the spool.",
    },
];

pub fn get(name: &str) -> Option<&'static Signature> {
    ACTIONS.iter().find(|f| f.name == name)
}
