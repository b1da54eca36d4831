//! Diagnostic actions: what runs when a program's `trigger` fires.
//!
//! The engine decides *whether* an action fires (the program's own budget,
//! `limit N per D`, applied on event time) and says so in an
//! [`dtc_engine::Output::Action`]. This crate does the work on the host and
//! writes the result as file-based telemetry into a [`Spool`]:
//!
//! | action | what it does | runs |
//! |---|---|---|
//! | `cpu_sample(for: D)` | `perf record -F 99 -g -p PID -- sleep D` into `…cpu_sample.PID.perf.data` | on a thread |
//! | `memory_dump()` | `gcore` (gdb) of PID into `…memory_dump.PID.core` | on a thread |
//! | `flight_recorder.snapshot(events: N)` | the program's last events, JSON lines, into `…flight_recorder.snapshot.jsonl` | at once |
//! | `verbose_logs(for: D)` | marks the program verbose until now + D and flushes its flight recorder | at once |
//! | `collect_config(path)` | a read-only, size-capped copy of a file the config lists | at once |
//!
//! Every call gives an [`ActionRecord`]: the action, program, arguments,
//! target pid, an [`Outcome`] (`Written { path, bytes }`, `Verbose`,
//! `Failed { reason }`, `Denied { reason }`, or `Refused { budget, limit }`)
//! and timings. Nothing panics and nothing is silently dropped: a host
//! without perf or gdb, a pid that is gone, ptrace denied, a full spool,
//! each is a record saying why.
//!
//! # Integrating (the agent)
//!
//! ```no_run
//! use std::sync::Arc;
//! use dtc_actions::{ActionRequest, ActionRunner, Dispatch, FlightRecorder, RunnerConfig, Spool};
//!
//! # fn outputs() -> Vec<dtc_engine::Output> { Vec::new() }
//! # fn announce(_: &dtc_actions::ActionRecord) {}
//! let spool = Spool::open("/var/spool/dtc".as_ref(), 1 << 30).expect("spool");
//! let recorder = Arc::new(FlightRecorder::new(1000, 1 << 20));
//! let (runner, completed) = ActionRunner::new(RunnerConfig::default(), spool, recorder.clone());
//!
//! // On the hot path, per program: keep its recent events (JSON text).
//! recorder.record("slow_hash", r#"{"event":"LogEndFileHash","time":"…"}"#);
//!
//! // For each engine output of a program:
//! for output in outputs() {
//!     let pid = None; // the event's resource `process.pid`, if any
//!     if let Some(request) = ActionRequest::from_output(&output, "slow_hash", pid) {
//!         match runner.run(request) {
//!             Dispatch::Done(record) => announce(&record),
//!             Dispatch::Started { id: _ } => {} // its record comes on `completed`
//!         }
//!     }
//! }
//! // Elsewhere (a thread, or polled with try_recv each batch):
//! while let Ok(record) = completed.try_recv() {
//!     announce(&record); // a log record: record.message(), record.to_json()
//! }
//! // While a program is verbose, stop suppressing its debug-level events:
//! let _ = runner.is_verbose("slow_hash", std::time::SystemTime::now());
//! ```
//!
//! Budgets: besides the program's, the runner enforces per-action caps per
//! hour across all programs ([`RunnerConfig::hourly_caps`], wall clock), a
//! bound on long actions running at once ([`RunnerConfig::max_concurrent`])
//! and the spool's disk budget. A refused action does nothing and uses no
//! budget. The crate needs no async runtime: long actions run on their own
//! threads and report on a `std::sync::mpsc` channel.

mod recorder;
mod runner;
mod spool;
mod tools;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

pub use recorder::{FlightRecorder, RecorderStats};
pub use runner::{ActionRunner, Dispatch, RunnerConfig};
pub use spool::{Pending, Spool, SpoolError, SpoolFile};

/// An argument of an action, owned and thread-safe (the engine's values
/// are not).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Str(String),
    /// Nanoseconds.
    Duration(i64),
    /// Anything else, as the engine renders it in JSON.
    Other(Json),
}

impl Arg {
    fn to_json(&self) -> Json {
        match self {
            Arg::Int(i) => json!(i),
            Arg::Str(s) => json!(s),
            Arg::Duration(ns) => json!(dtc_engine::value::format_duration(*ns)),
            Arg::Other(j) => j.clone(),
        }
    }
}

/// The program's own budget for a trigger, as the engine applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramBudget {
    pub limit: u64,
    pub per_ns: i64,
    /// Whether the budget is the policy's default (the trigger gave none).
    pub default: bool,
}

impl fmt::Display for ProgramBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}{}",
            self.limit,
            dtc_engine::value::format_duration(self.per_ns),
            if self.default {
                " (policy default)"
            } else {
                ""
            }
        )
    }
}

/// One action to run: an engine output with the program it came from and
/// the process it targets.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// A catalog name: `cpu_sample`, `memory_dump`, `verbose_logs`,
    /// `flight_recorder.snapshot`, `collect_config`.
    pub action: String,
    pub args: Vec<(String, Arg)>,
    /// The loaded program (its name in the agent).
    pub program: String,
    /// The item whose trigger fired (machine, processor, query).
    pub by: String,
    /// The target process, from the event's resource; the runner's
    /// default pid when `None`.
    pub pid: Option<i32>,
    /// False when the program's budget refused it.
    pub fired: bool,
    pub budget: ProgramBudget,
    /// The triggering event's time, nanoseconds since the epoch.
    pub event_time: i64,
}

impl ActionRequest {
    /// The request of an [`dtc_engine::Output::Action`]; `None` for any
    /// other output.
    pub fn from_output(
        output: &dtc_engine::Output,
        program: &str,
        pid: Option<i32>,
    ) -> Option<ActionRequest> {
        let dtc_engine::Output::Action {
            action,
            args,
            limit,
            per_ns,
            default_budget,
            fired,
            by,
            time,
        } = output
        else {
            return None;
        };
        let args = args
            .iter()
            .map(|(name, v)| {
                let arg = match v {
                    dtc_engine::value::Value::Int(i) => Arg::Int(*i),
                    dtc_engine::value::Value::Str(s) => Arg::Str(s.to_string()),
                    dtc_engine::value::Value::Duration(ns) => Arg::Duration(*ns),
                    other => Arg::Other(other.to_json()),
                };
                (name.clone(), arg)
            })
            .collect();
        Some(ActionRequest {
            action: action.clone(),
            args,
            program: program.to_string(),
            by: by.clone(),
            pid,
            fired: *fired,
            budget: ProgramBudget {
                limit: *limit,
                per_ns: *per_ns,
                default: *default_budget,
            },
            event_time: *time,
        })
    }

    fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// Which budget refused an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The program's own `limit N per D` (applied by the engine).
    Program,
    /// The runner's cap on this action across programs, per hour.
    Hourly,
    /// The bound on long actions running at once.
    Concurrency,
    /// The spool's disk budget.
    SpoolDisk,
}

impl Budget {
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Program => "program",
            Budget::Hourly => "hourly cap",
            Budget::Concurrency => "concurrency",
            Budget::SpoolDisk => "spool disk",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A file in the spool.
    Written { path: PathBuf, bytes: u64 },
    /// `verbose_logs`: the program is verbose until `until`; `flush` is the
    /// flight recorder snapshot written with it, or why it was not.
    Verbose {
        until: SystemTime,
        flush: Result<SpoolFile, String>,
    },
    /// The host could not do it (tool absent, process gone, ptrace or perf
    /// not permitted, bad argument...).
    Failed { reason: String },
    /// The runner's configuration does not allow it (a config file not in
    /// the allowed list).
    Denied { reason: String },
    /// A budget said no; nothing was done.
    Refused {
        budget: Budget,
        limit: String,
        reason: String,
    },
}

/// What one action did.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// Matches [`Dispatch::Started`]'s id for long actions.
    pub id: u64,
    pub action: String,
    pub program: String,
    pub by: String,
    pub args: Vec<(String, Arg)>,
    /// The process acted on, when the action has one.
    pub pid: Option<i32>,
    pub outcome: Outcome,
    /// When the runner got the request (wall clock).
    pub requested: SystemTime,
    /// From the request to the outcome.
    pub elapsed: Duration,
    /// The triggering event's time, nanoseconds since the epoch.
    pub event_time: i64,
}

fn epoch_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl ActionRecord {
    /// A name for the outcome: `written`, `verbose`, `failed`, `denied`,
    /// `refused`.
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Written { .. } => "written",
            Outcome::Verbose { .. } => "verbose",
            Outcome::Failed { .. } => "failed",
            Outcome::Denied { .. } => "denied",
            Outcome::Refused { .. } => "refused",
        }
    }

    /// One line for a log record.
    pub fn message(&self) -> String {
        let who = format!("{} by {} (program {})", self.action, self.by, self.program);
        let target = self
            .pid
            .map(|p| format!(" of process {p}"))
            .unwrap_or_default();
        let secs = self.elapsed.as_secs_f64();
        match &self.outcome {
            Outcome::Written { path, bytes } => {
                format!(
                    "{who}{target} wrote {} ({bytes} bytes) in {secs:.1} s",
                    path.display()
                )
            }
            Outcome::Verbose { until, flush } => {
                let until = dtc_engine::event::format_time(epoch_ns(*until));
                match flush {
                    Ok(f) => format!(
                        "{who}: verbose until {until}; flight recorder flushed to {} ({} bytes)",
                        f.path.display(),
                        f.bytes
                    ),
                    Err(e) => {
                        format!("{who}: verbose until {until}; flight recorder not flushed: {e}")
                    }
                }
            }
            Outcome::Failed { reason } => format!("{who}{target} failed: {reason}"),
            Outcome::Denied { reason } => format!("{who} denied: {reason}"),
            Outcome::Refused {
                budget,
                limit,
                reason,
            } => format!(
                "{who} refused by the {} budget ({limit}): {reason}",
                budget.as_str()
            ),
        }
    }

    /// The record as JSON, for a log record's attributes or a file.
    pub fn to_json(&self) -> Json {
        let mut j = json!({
            "id": self.id,
            "action": self.action,
            "program": self.program,
            "by": self.by,
            "args": Json::Object(self.args.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            "pid": self.pid,
            "status": self.status(),
            "requested": dtc_engine::event::format_time(epoch_ns(self.requested)),
            "elapsed_ms": self.elapsed.as_millis() as u64,
            "event_time": dtc_engine::event::format_time(self.event_time),
            "message": self.message(),
        });
        let extra = match &self.outcome {
            Outcome::Written { path, bytes } => json!({ "path": path, "bytes": bytes }),
            Outcome::Verbose { until, flush } => json!({
                "until": dtc_engine::event::format_time(epoch_ns(*until)),
                "path": flush.as_ref().ok().map(|f| &f.path),
                "bytes": flush.as_ref().ok().map(|f| f.bytes),
                "flush_error": flush.as_ref().err(),
            }),
            Outcome::Failed { reason } | Outcome::Denied { reason } => json!({ "reason": reason }),
            Outcome::Refused {
                budget,
                limit,
                reason,
            } => json!({ "budget": budget.as_str(), "limit": limit, "reason": reason }),
        };
        if let (Some(o), Json::Object(e)) = (j.as_object_mut(), extra) {
            o.extend(e);
        }
        j
    }
}
