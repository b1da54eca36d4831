//! Probe kinds: where events come from. OpenTelemetry logs are the default
//! source of every event; other kinds are declared with `probe`.

use crate::Signature;
use crate::ty::{Pattern as P, Returns as R, opt, req};

pub static PROBES: &[Signature] = &[
    Signature {
        name: "otel.logs",
        params: &[opt("service", P::String)],
        returns: R::Nothing,
        doc: "OpenTelemetry log records received over OTLP, optionally only those of one service.",
    },
    Signature {
        name: "user_events",
        params: &[req("provider", P::String), opt("event", P::String)],
        returns: R::Nothing,
        doc: "Linux user_events tracepoints written by the application.",
    },
    Signature {
        name: "uprobe",
        params: &[
            req("binary", P::String),
            req("symbol", P::String),
            opt("pid", P::Int),
        ],
        returns: R::Nothing,
        doc: "A uprobe on a function of a binary; its arguments become fields.",
    },
    Signature {
        name: "ptrace",
        params: &[req("pid", P::Int), opt("symbol", P::String)],
        returns: R::Nothing,
        doc: "Breakpoints in a process attached with ptrace.",
    },
    Signature {
        name: "ebpf",
        params: &[req("program", P::String), opt("attach", P::String)],
        returns: R::Nothing,
        doc: "An eBPF program whose output records become events.",
    },
    Signature {
        name: "etw",
        params: &[req("provider", P::String), opt("keywords", P::Int)],
        returns: R::Nothing,
        doc: "Event Tracing for Windows events of one provider.",
    },
    Signature {
        name: "dtrace",
        params: &[req("probe", P::String)],
        returns: R::Nothing,
        doc: "A DTrace probe description.",
    },
];

pub fn get(name: &str) -> Option<&'static Signature> {
    PROBES.iter().find(|f| f.name == name)
}
