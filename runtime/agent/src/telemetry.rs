//! The agent's own telemetry: counters every thread bumps without locks,
//! the programs' state the pipeline publishes, and two views of them: the
//! JSON `dtc-agent status` prints, and OTLP metrics the exporter sends
//! beside the programs' own.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use serde_json::{Value as Json, json};

use crate::convert::{agent_resource, key_value};

/// Why records were lost. Every record the agent accepted and did not
/// export is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The export queue was full (the downstream is slow or gone).
    ExportQueueFull,
    /// The downstream refused the batch with a non-retryable error.
    ExportRejected,
    /// The downstream kept failing for longer than `retry_max_elapsed`.
    ExportRetriesExhausted,
    /// Still queued when the agent stopped and the final flush failed.
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::ExportQueueFull,
        DropReason::ExportRejected,
        DropReason::ExportRetriesExhausted,
        DropReason::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::ExportQueueFull => "export_queue_full",
            DropReason::ExportRejected => "export_rejected",
            DropReason::ExportRetriesExhausted => "export_retries_exhausted",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// Why a request was refused before it reached the pipeline (the client
/// was told, so it may retry; nothing was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Oversized,
    QueueFull,
    /// The export queue was full: the agent pushes back rather than
    /// accept records it would have to drop.
    ExportQueueFull,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Malformed,
        Refusal::Oversized,
        Refusal::QueueFull,
        Refusal::ExportQueueFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Oversized => "oversized",
            Refusal::QueueFull => "queue_full",
            Refusal::ExportQueueFull => "export_queue_full",
        }
    }
}

/// What one program has done, as the pipeline last published it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramStatus {
    pub name: String,
    pub file: String,
    pub tier: String,
    /// "running", "disabled" (a budget tripped) or "ripcord".
    pub state: String,
    /// What runs it: "jit", "interpreter", or the interpreter and why the
    /// JIT could not compile it.
    pub engine: String,
    /// Which budget tripped and by how much.
    pub reason: Option<String>,
    pub events: u64,
    pub cpu_ns: u64,
    pub derived_logs: u64,
    pub metric_points: u64,
    pub actions_fired: u64,
    pub actions_refused: u64,
    /// Actions that failed on the host or were denied by the configuration.
    pub actions_failed: u64,
    pub faults: u64,
    pub suppressed: u64,
    /// Debug-level events passed on, unchanged, because `verbose_logs` lifted
    /// the program's suppression.
    pub verbose_passed: u64,
    /// The estimate of its state the memory budget is checked against.
    pub memory_bytes: u64,
}

/// What happened to one action, across programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionCounts {
    /// Fired by a program (its own budget allowed it).
    pub fired: u64,
    /// Did its work: a file in the spool, or verbose mode.
    pub written: u64,
    /// Refused by a budget: the program's, an hourly cap, the bound on long
    /// actions at once, the spool's disk.
    pub refused: u64,
    /// Failed on the host (no tool, no process, not permitted) or denied by
    /// the configuration.
    pub failed: u64,
}

/// An artifact the loader refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRefusal {
    pub file: String,
    pub reason: String,
}

/// The last pull of the rip cord.
#[derive(Debug, Clone, PartialEq)]
pub struct RipcordReport {
    /// From the request to the pipeline running no program.
    pub took_ns: u64,
    pub programs_disabled: usize,
    pub at_unix_ns: u64,
}

/// Every counter of the agent, shared by all threads.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    pub requests: AtomicU64,
    pub records_in: AtomicU64,
    /// Log records forwarded (shaped or passed through).
    pub records_out: AtomicU64,
    pub records_suppressed: AtomicU64,
    pub derived_logs: AtomicU64,
    pub metric_points: AtomicU64,
    pub records_malformed: AtomicU64,
    pub schema_mismatches: AtomicU64,
    pub faults: AtomicU64,
    pub actions_fired: AtomicU64,
    pub actions_refused: AtomicU64,
    pub actions_failed: AtomicU64,
    pub budget_trips: AtomicU64,
    refused: [AtomicU64; 4],
    dropped: [AtomicU64; 4],
    pub pipeline_queue: AtomicU64,
    /// Log records in the requests waiting for the pipeline.
    pub pipeline_records: AtomicU64,
    pub export_queue: AtomicU64,
    pub exported_logs: AtomicU64,
    pub exported_metrics: AtomicU64,
    pub export_failures: AtomicU64,
    pub reloads: AtomicU64,
    pub last_export_error: Mutex<Option<String>>,
    pub programs: Mutex<Vec<ProgramStatus>>,
    pub artifacts_refused: Mutex<Vec<ArtifactRefusal>>,
    pub ripcord: Mutex<Option<RipcordReport>>,
    /// Per action name.
    pub actions: Mutex<BTreeMap<String, ActionCounts>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            records_suppressed: AtomicU64::new(0),
            derived_logs: AtomicU64::new(0),
            metric_points: AtomicU64::new(0),
            records_malformed: AtomicU64::new(0),
            schema_mismatches: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            actions_fired: AtomicU64::new(0),
            actions_refused: AtomicU64::new(0),
            actions_failed: AtomicU64::new(0),
            budget_trips: AtomicU64::new(0),
            refused: Default::default(),
            dropped: Default::default(),
            pipeline_queue: AtomicU64::new(0),
            pipeline_records: AtomicU64::new(0),
            export_queue: AtomicU64::new(0),
            exported_logs: AtomicU64::new(0),
            exported_metrics: AtomicU64::new(0),
            export_failures: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            last_export_error: Mutex::new(None),
            programs: Mutex::new(Vec::new()),
            artifacts_refused: Mutex::new(Vec::new()),
            ripcord: Mutex::new(None),
            actions: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Locks a mutex even if a thread panicked while holding it: the data are
/// counters and lists, still meaningful.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Relaxed)
    }

    pub fn drop_records(&self, why: DropReason, n: u64) {
        self.dropped[why as usize].fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why as usize].load(Relaxed)
    }

    /// The counters as named values, in a fixed order: what both the
    /// status JSON and the self-metrics show.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let get = |a: &AtomicU64| a.load(Relaxed);
        vec![
            ("requests", get(&self.requests)),
            ("records_in", get(&self.records_in)),
            ("records_out", get(&self.records_out)),
            ("records_suppressed", get(&self.records_suppressed)),
            ("records_malformed", get(&self.records_malformed)),
            ("schema_mismatches", get(&self.schema_mismatches)),
            ("derived_logs", get(&self.derived_logs)),
            ("metric_points", get(&self.metric_points)),
            ("faults", get(&self.faults)),
            ("actions_fired", get(&self.actions_fired)),
            ("actions_refused", get(&self.actions_refused)),
            ("actions_failed", get(&self.actions_failed)),
            ("budget_trips", get(&self.budget_trips)),
            ("exported_logs", get(&self.exported_logs)),
            ("exported_metrics", get(&self.exported_metrics)),
            ("export_failures", get(&self.export_failures)),
            ("reloads", get(&self.reloads)),
        ]
    }

    /// What `dtc-agent status` prints.
    pub fn status_json(&self) -> Json {
        let mut counters = serde_json::Map::new();
        for (k, v) in self.counters() {
            counters.insert(k.into(), json!(v));
        }
        let refused: serde_json::Map<_, _> = Refusal::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), json!(self.refused(*r))))
            .collect();
        let dropped: serde_json::Map<_, _> = DropReason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), json!(self.dropped(*r))))
            .collect();
        let programs: Vec<Json> = lock(&self.programs)
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "file": p.file, "tier": p.tier, "state": p.state, "engine": p.engine,
                    "reason": p.reason, "events": p.events, "cpu_ns": p.cpu_ns,
                    "derived_logs": p.derived_logs, "metric_points": p.metric_points,
                    "actions_fired": p.actions_fired, "actions_refused": p.actions_refused,
                    "actions_failed": p.actions_failed,
                    "faults": p.faults, "suppressed": p.suppressed, "verbose_passed": p.verbose_passed,
                    "memory_bytes": p.memory_bytes,
                })
            })
            .collect();
        let artifacts_refused: Vec<Json> = lock(&self.artifacts_refused)
            .iter()
            .map(|r| json!({ "file": r.file, "reason": r.reason }))
            .collect();
        let ripcord = lock(&self.ripcord).as_ref().map(|r| {
            json!({ "took_ns": r.took_ns, "programs_disabled": r.programs_disabled, "at_unix_ns": r.at_unix_ns })
        });
        json!({
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "counters": counters,
            "requests_refused": refused,
            "dropped": dropped,
            "queues": {
                "pipeline_requests": self.pipeline_queue.load(Relaxed),
                "export_records": self.export_queue.load(Relaxed),
            },
            "last_export_error": *lock(&self.last_export_error),
            "programs": programs,
            "artifacts_refused": artifacts_refused,
            "ripcord": ripcord,
            "actions": crate::actions::counts_json(&lock(&self.actions)),
        })
    }

    /// The agent's own metrics as OTLP: counters as cumulative monotonic
    /// sums named `dtc.agent.<counter>`, refusals and drops with a `reason`
    /// attribute, queue depths as gauges, per-program CPU time and events
    /// with a `program` attribute.
    pub fn to_metrics(&self) -> ResourceMetrics {
        let start = now_unix_ns().saturating_sub(self.started.elapsed().as_nanos() as u64);
        let now = now_unix_ns();
        let point = |value: u64, attrs: Vec<(&str, &str)>| NumberDataPoint {
            attributes: attrs
                .into_iter()
                .map(|(k, v)| key_value(k, &Json::from(v)))
                .collect(),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(value as i64)),
            ..NumberDataPoint::default()
        };
        let sum = |name: String, points: Vec<NumberDataPoint>| Metric {
            name,
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        };
        let gauge = |name: &str, value: u64| Metric {
            name: name.to_string(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point(value, Vec::new())],
            })),
            ..Metric::default()
        };
        let mut metrics: Vec<Metric> = self
            .counters()
            .into_iter()
            .map(|(k, v)| sum(format!("dtc.agent.{k}"), vec![point(v, Vec::new())]))
            .collect();
        metrics.push(sum(
            "dtc.agent.requests_refused".into(),
            Refusal::ALL
                .iter()
                .map(|r| point(self.refused(*r), vec![("reason", r.as_str())]))
                .collect(),
        ));
        metrics.push(sum(
            "dtc.agent.records_dropped".into(),
            DropReason::ALL
                .iter()
                .map(|r| point(self.dropped(*r), vec![("reason", r.as_str())]))
                .collect(),
        ));
        metrics.push(gauge(
            "dtc.agent.queue.pipeline_requests",
            self.pipeline_queue.load(Relaxed),
        ));
        metrics.push(gauge(
            "dtc.agent.queue.export_records",
            self.export_queue.load(Relaxed),
        ));
        let actions = lock(&self.actions).clone();
        if !actions.is_empty() {
            let mut points = Vec::new();
            for (action, c) in &actions {
                for (outcome, n) in [
                    ("fired", c.fired),
                    ("written", c.written),
                    ("refused", c.refused),
                    ("failed", c.failed),
                ] {
                    points.push(point(
                        n,
                        vec![("action", action.as_str()), ("outcome", outcome)],
                    ));
                }
            }
            metrics.push(sum("dtc.agent.actions".into(), points));
        }
        let programs = lock(&self.programs).clone();
        if !programs.is_empty() {
            let per = |f: fn(&ProgramStatus) -> u64| {
                programs
                    .iter()
                    .map(|p| point(f(p), vec![("program", p.name.as_str())]))
                    .collect()
            };
            metrics.push(sum("dtc.agent.program.cpu_ns".into(), per(|p| p.cpu_ns)));
            metrics.push(sum("dtc.agent.program.events".into(), per(|p| p.events)));
            metrics.push(Metric {
                name: "dtc.agent.program.memory_bytes".into(),
                unit: "By".into(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: per(|p| p.memory_bytes),
                })),
                ..Metric::default()
            });
            metrics.push(sum(
                "dtc.agent.program.actions_fired".into(),
                per(|p| p.actions_fired),
            ));
            metrics.push(sum(
                "dtc.agent.program.actions_refused".into(),
                per(|p| p.actions_refused),
            ));
            metrics.push(sum(
                "dtc.agent.program.actions_failed".into(),
                per(|p| p.actions_failed),
            ));
        }
        ResourceMetrics {
            resource: Some(agent_resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "dtc-agent".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_metrics_show_every_counter() {
        let stats = Stats::default();
        stats.records_in.fetch_add(5, Relaxed);
        stats.refuse(Refusal::Oversized);
        stats.drop_records(DropReason::ExportQueueFull, 7);
        lock(&stats.programs).push(ProgramStatus {
            name: "p".into(),
            cpu_ns: 42,
            ..ProgramStatus::default()
        });
        let status = stats.status_json();
        assert_eq!(status["counters"]["records_in"], 5);
        assert_eq!(status["requests_refused"]["oversized"], 1);
        assert_eq!(status["dropped"]["export_queue_full"], 7);
        assert_eq!(status["programs"][0]["cpu_ns"], 42);
        let metrics = stats.to_metrics();
        let all = &metrics.scope_metrics[0].metrics;
        let find = |name: &str| all.iter().find(|m| m.name == name).unwrap();
        let Some(metric::Data::Sum(s)) = &find("dtc.agent.records_dropped").data else {
            panic!("not a sum")
        };
        let full = &s.data_points[0];
        assert_eq!(full.value, Some(number_data_point::Value::AsInt(7)));
        assert_eq!(full.attributes[0].key, "reason");
        assert!(find("dtc.agent.program.cpu_ns").data.is_some());
    }
}
