//! The one place a program's triggered actions are run and announced.
//!
//! The engine decides whether a trigger fires (the program's own `limit N
//! per D`, on event time) and reports an `Output::Action`; here it becomes
//! a `dtc_actions::ActionRequest` (with the target pid from the triggering
//! event's resource `process.pid`, else `actions.default_pid`) and
//! `dtc_actions::ActionRunner` does the work into the spool, under the
//! runner's budgets (hourly caps per action, long actions at once, the
//! spool's disk budget). Every `ActionRecord` is announced by a `dtc.action`
//! log record that says where the file is, or why it failed or was refused,
//! and counted per action.
//!
//! Long actions (`cpu_sample`, `memory_dump`) run on threads of their own;
//! their records arrive on a channel the pipeline polls between batches
//! ([`Actions::completed`]), never blocking.
//!
//! **The flight recorder.** A program that can read its recorder (its IR
//! triggers `flight_recorder.snapshot` or `verbose_logs`) keeps the events
//! it sees in a [`Tape`]: batches shared by reference count, not copied or
//! serialised per event. Only when such an action fires are the tape's
//! events (up to the triggering event) written as JSON into the
//! `dtc_actions::FlightRecorder`, which bounds them in events and bytes.
//! Programs that cannot read a recorder keep none.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::SystemTime;

use dtc_actions::{
    ActionRecord, ActionRequest, ActionRunner, Dispatch, FlightRecorder, Outcome, RunnerConfig,
    Spool,
};
use dtc_engine::Output;
use dtc_engine::event::{InputEvent, to_flat_json};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{Value as Json, json};

use crate::config;
use crate::convert::agent_log;
use crate::telemetry::{ActionCounts, Stats, lock};

/// The actions that write the program's recorded events.
pub const READS_RECORDER: [&str; 2] = ["flight_recorder.snapshot", "verbose_logs"];

/// The events of one batch as a program saw them (`None`: a record that
/// could not be decoded), shared with the pipeline.
pub type Seen = Rc<Vec<Option<InputEvent>>>;

/// A program's recent events, by reference: the batches it saw, the part
/// of the first not yet handed to the flight recorder, bounded in events.
#[derive(Debug, Default)]
pub struct Tape {
    /// Each batch, the first event not yet flushed, and its size per event
    /// (the request's encoded size spread over its records).
    batches: VecDeque<(Seen, usize, u64)>,
    events: usize,
}

impl Tape {
    /// Keeps a batch of `bytes_per_event` bytes an event (as received);
    /// drops the oldest batches the bound no longer needs.
    pub fn push(&mut self, seen: Seen, bytes_per_event: u64, max_events: usize) {
        self.events += seen.len();
        self.batches.push_back((seen, 0, bytes_per_event));
        while let Some((front, from, _)) = self.batches.front() {
            let n = front.len() - from;
            if self.events - n < max_events {
                break;
            }
            self.events -= n;
            self.batches.pop_front();
        }
    }

    /// Events held (decoded or not).
    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// About how many bytes the held events take, by their encoded size.
    pub fn bytes(&self) -> u64 {
        self.batches
            .iter()
            .map(|(b, from, per)| (b.len() - from) as u64 * per)
            .sum()
    }

    /// Hands the events up to and including `last` of the newest batch (all
    /// of it when `None`), at most `max_events` of them, to the recorder as
    /// JSON lines, oldest first; the rest of the newest batch stays.
    pub fn flush(
        &mut self,
        recorder: &FlightRecorder,
        program: &str,
        last: Option<usize>,
        max_events: usize,
    ) {
        let Some((newest, _, _)) = self.batches.back() else {
            return;
        };
        let end = last.map_or(newest.len(), |k| (k + 1).min(newest.len()));
        let newest = newest.clone();
        let mut taken: Vec<(Seen, usize, usize)> = Vec::new();
        while let Some((batch, from, per)) = self.batches.pop_front() {
            if Rc::ptr_eq(&batch, &newest) && self.batches.is_empty() {
                taken.push((batch.clone(), from, end.max(from)));
                if end < batch.len() {
                    self.batches.push_back((batch, end.max(from), per));
                }
                break;
            }
            taken.push((batch, from, usize::MAX));
        }
        self.events = self.batches.iter().map(|(b, from, _)| b.len() - from).sum();
        let mut lines: Vec<String> = Vec::new();
        for (batch, from, to) in &taken {
            let to = (*to).min(batch.len());
            lines.extend(
                batch[*from..to]
                    .iter()
                    .flatten()
                    .map(|e| to_flat_json(e).to_string()),
            );
        }
        let skip = lines.len().saturating_sub(max_events);
        recorder.record_batch(program, lines.iter().skip(skip).map(String::as_str));
    }
}

/// The runner of actions for every program.
pub struct Actions {
    runner: ActionRunner,
    completed: Receiver<ActionRecord>,
    recorder: Arc<FlightRecorder>,
    spool: String,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("spool", &self.spool)
            .finish()
    }
}

impl Actions {
    /// Opens the spool and starts a runner with the configuration's budgets.
    pub fn new(spool: &config::Spool, actions: &config::Actions) -> Result<Actions, String> {
        let opened = Spool::open(&spool.dir, spool.max_disk).map_err(|e| {
            format!(
                "cannot open the spool folder `{}` (`spool.dir`): {e}",
                spool.dir.display()
            )
        })?;
        let recorder = Arc::new(FlightRecorder::new(
            actions.flight_recorder_events,
            actions.flight_recorder_size,
        ));
        let runner_config = RunnerConfig {
            default_pid: actions.default_pid,
            allowed_configs: actions.allowed_configs.clone(),
            max_config_bytes: actions.max_config_size,
            max_concurrent: actions.max_concurrent,
            hourly_caps: actions.hourly_caps.clone(),
            perf: actions.perf.clone(),
            gcore: actions.gcore.clone(),
            max_sample: actions.max_sample,
            max_verbose: actions.max_verbose,
            dump_timeout: actions.dump_timeout,
        };
        let (runner, completed) = ActionRunner::new(runner_config, opened, recorder.clone());
        Ok(Actions {
            runner,
            completed,
            recorder,
            spool: spool.dir.display().to_string(),
        })
    }

    pub fn recorder(&self) -> &FlightRecorder {
        &self.recorder
    }

    /// Events the recorder keeps per program.
    pub fn max_recorded(&self) -> usize {
        self.recorder.max_events()
    }

    /// The spool folder, as announced.
    pub fn spool(&self) -> &str {
        &self.spool
    }

    /// Whether `verbose_logs` made the program verbose now.
    pub fn is_verbose(&self, program: &str) -> bool {
        self.runner.is_verbose(program, SystemTime::now())
    }

    /// Long actions running now.
    pub fn running(&self) -> usize {
        self.runner.running()
    }

    /// Forgets a program's recorded events (it was unloaded).
    pub fn forget(&self, program: &str) {
        self.recorder.remove(program);
    }

    /// Runs one action output of `program`; `tape` (the program's, if it
    /// keeps one) is flushed up to the event at `index` of the newest batch
    /// first, for the actions that write it, and `pid` is the triggering
    /// event's `process.pid`. Returns the record to announce now, or `None`
    /// when the action runs on; its record then comes from
    /// [`Actions::completed`].
    pub fn run(
        &mut self,
        program: &str,
        output: &Output,
        tape: Option<(&mut Tape, Option<usize>)>,
        pid: Option<i32>,
    ) -> Option<ActionRecord> {
        let request = ActionRequest::from_output(output, program, pid)?;
        if request.fired
            && READS_RECORDER.contains(&request.action.as_str())
            && let Some((tape, index)) = tape
        {
            tape.flush(&self.recorder, program, index, self.max_recorded());
        }
        match self.runner.run(request) {
            Dispatch::Done(record) => Some(record),
            Dispatch::Started { .. } => None,
        }
    }

    /// Records of long actions that finished since the last call.
    pub fn completed(&self) -> Vec<ActionRecord> {
        self.completed.try_iter().collect()
    }
}

/// How an action ended, for counting: `written` (a file, or verbose mode
/// with its flush), `refused` (a budget said no), `failed` (the host could
/// not, or the configuration does not allow it).
pub fn outcome_class(record: &ActionRecord) -> &'static str {
    match record.outcome {
        Outcome::Written { .. } | Outcome::Verbose { .. } => "written",
        Outcome::Refused { .. } => "refused",
        Outcome::Failed { .. } | Outcome::Denied { .. } => "failed",
    }
}

/// Counts an action's record under its action name in `stats`.
pub fn count(stats: &Stats, record: &ActionRecord) {
    let mut all = lock(&stats.actions);
    let counts = all.entry(record.action.clone()).or_default();
    let fired = !matches!(
        record.outcome,
        Outcome::Refused {
            budget: dtc_actions::Budget::Program,
            ..
        }
    );
    counts.fired += u64::from(fired);
    match outcome_class(record) {
        "written" => counts.written += 1,
        "refused" => counts.refused += 1,
        _ => counts.failed += 1,
    }
}

/// The `dtc.action` log record that announces an action's record: where
/// its file is, or why it failed or was refused.
pub fn announce(record: &ActionRecord, spool: &str, now: u64) -> LogRecord {
    let details = record.to_json();
    let severity = match outcome_class(record) {
        "written" => 9,
        "refused"
            if matches!(
                record.outcome,
                Outcome::Refused {
                    budget: dtc_actions::Budget::Program,
                    ..
                }
            ) =>
        {
            9
        }
        _ => 13,
    };
    let fired = !matches!(
        record.outcome,
        Outcome::Refused {
            budget: dtc_actions::Budget::Program,
            ..
        }
    );
    let mut attributes: Vec<(&str, Json)> = vec![
        ("dtc.program", json!(record.program)),
        ("dtc.action.id", json!(record.id)),
        ("dtc.action.name", json!(record.action)),
        ("dtc.action.args", json!(details["args"].to_string())),
        ("dtc.action.by", json!(record.by)),
        ("dtc.action.fired", json!(fired)),
        ("dtc.action.status", json!(record.status())),
        ("dtc.action.run", json!(outcome_class(record) == "written")),
        ("dtc.action.elapsed_ms", details["elapsed_ms"].clone()),
        ("dtc.spool.dir", json!(spool)),
    ];
    let optional = [
        ("dtc.action.pid", &details["pid"]),
        ("dtc.action.path", &details["path"]),
        ("dtc.action.bytes", &details["bytes"]),
        ("dtc.action.reason", &details["reason"]),
        ("dtc.action.budget", &details["budget"]),
        ("dtc.action.limit", &details["limit"]),
        ("dtc.action.until", &details["until"]),
        ("dtc.action.flush_error", &details["flush_error"]),
    ];
    for (key, value) in optional {
        if !value.is_null() {
            attributes.push((key, value.clone()));
        }
    }
    let mut log = agent_log("dtc.action", severity, &record.message(), &attributes, now);
    log.time_unix_nano = record.event_time.max(0) as u64;
    log
}

/// Per action name, what happened; what `status` and the self-metrics show.
pub fn counts_json(counts: &BTreeMap<String, ActionCounts>) -> Json {
    Json::Object(
        counts
            .iter()
            .map(|(action, c)| {
                (
                    action.clone(),
                    json!({ "fired": c.fired, "written": c.written, "refused": c.refused, "failed": c.failed }),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: i64, n: i64) -> Seen {
        Rc::new(
            (from..from + n)
                .map(|i| {
                    Some(InputEvent {
                        name: Some(format!("E{i}")),
                        time: i,
                        ..InputEvent::default()
                    })
                })
                .collect(),
        )
    }

    fn names(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                serde_json::from_str::<Json>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_tape_keeps_the_last_batches_and_flushes_up_to_the_trigger() {
        let recorder = FlightRecorder::new(100, 1 << 20);
        let mut tape = Tape::default();
        for b in 0..10 {
            tape.push(batch(b * 4, 4), 10, 6);
        }
        // The bound keeps whole batches: the last two (8 events) hold the
        // last 6.
        assert_eq!(tape.len(), 8);
        assert_eq!(tape.bytes(), 80);
        tape.flush(&recorder, "p", Some(1), 5);
        let got = recorder.snapshot("p", None);
        assert_eq!(names(&got), ["E33", "E34", "E35", "E36", "E37"]);
        // The rest of the newest batch stays for the next flush.
        assert_eq!(tape.len(), 2);
        tape.push(batch(40, 1), 10, 6);
        tape.flush(&recorder, "p", None, 5);
        assert_eq!(
            names(&recorder.snapshot("p", Some(3))),
            ["E38", "E39", "E40"]
        );
        assert!(tape.is_empty());
        tape.flush(&recorder, "p", None, 5);
        assert_eq!(recorder.stats("p").recorded, 8);
    }
}
