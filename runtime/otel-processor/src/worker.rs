//! The engine thread. `dtc_engine::Engine` is not `Send` (it shares values
//! through `Rc`), while an SDK log processor must be `Send + Sync`; so the
//! engines live on one thread of their own, made when the processor is
//! built, and the application's threads ask it for each record's fate over
//! a bounded channel, waiting for the answer (the SDK expects a processor
//! to have handed the record on, or not, when `emit` returns). One thread
//! also keeps the programs' state (windows, machines, budgets) in one
//! place, whichever application thread logs.
//!
//! The thread runs the programs in the order given: a record one program
//! suppresses goes no further, and one it rewrites (redaction) is what the
//! next program sees. It builds the records for derived logs, actions and
//! faults (the caller hands them to the inner processor) and records
//! derived metrics itself. A program that panics is disabled, counted, and
//! passes its events on unchanged from then on; the thread survives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use dtc_engine::event::{InputEvent, from_flat_json};
use dtc_engine::{Engine, Options, Output};
use dtc_ir::{AggKind, Program, ShapeRule};
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry_sdk::logs::SdkLogRecord;
use serde_json::Value as Json;

use crate::mapping::{derived_log, intern, json_any_value, report_log};
use crate::metrics::{MeterRecorder, MetricPoint, MetricSink, metric_kinds};
use crate::stats::Counters;

/// What the caller asks.
pub(crate) enum Request {
    Record {
        event: InputEvent,
        reply: SyncSender<Reply>,
    },
    /// The provider's resource, given to every event from then on.
    Resource(BTreeMap<String, Json>),
    /// Answers once every request before it is done.
    Flush(SyncSender<()>),
    /// Closes every open window, answers with what that produced, and ends
    /// the thread.
    Finish(SyncSender<Vec<Derived>>),
}

/// A record to hand to the inner processor, with the index of the program
/// (and so the instrumentation scope) it comes from.
pub(crate) type Derived = (usize, SdkLogRecord);

/// What becomes of one record.
pub(crate) struct Reply {
    pub verdict: Verdict,
    /// Derived logs and reports, in the order the programs made them; they
    /// go before the record itself, as the engine's outputs do.
    pub derived: Vec<Derived>,
}

pub(crate) enum Verdict {
    /// Unchanged.
    Pass,
    Suppress,
    /// Edited by shaping: the record's event before and after.
    Rewrite {
        original: Box<InputEvent>,
        shaped: Box<InputEvent>,
    },
}

struct Loaded {
    name: String,
    engine: Engine,
    /// Durable IDs of the events a shaping rule may edit (not only drop):
    /// only their egress is read back, the rest pass or not.
    edits: HashSet<String>,
    kinds: HashMap<String, AggKind>,
    disabled: bool,
}

enum Sink {
    None,
    Meter(MeterRecorder),
    Callback(Box<dyn FnMut(&MetricPoint) + Send>),
}

pub(crate) struct Worker {
    programs: Vec<Loaded>,
    resource: BTreeMap<String, Json>,
    sink: Sink,
    counters: Arc<Counters>,
}

impl Worker {
    /// Builds the engines; runs on the engine thread, as `Engine` must.
    pub(crate) fn new(
        programs: Vec<Program>,
        options: Options,
        metrics: MetricSink,
        counters: Arc<Counters>,
    ) -> Worker {
        let programs = programs
            .into_iter()
            .map(|program| Loaded {
                name: program_name(&program),
                edits: edited_events(&program),
                kinds: metric_kinds(&program),
                engine: Engine::new(program, options.clone()),
                disabled: false,
            })
            .collect();
        let sink = match metrics {
            MetricSink::None => Sink::None,
            MetricSink::Meter(meter) => Sink::Meter(MeterRecorder::new(meter)),
            MetricSink::Callback(f) => Sink::Callback(f),
        };
        Worker {
            programs,
            resource: BTreeMap::new(),
            sink,
            counters,
        }
    }

    /// Serves requests until `Finish`, or until every sender is gone (the
    /// processor was dropped without a shutdown).
    pub(crate) fn serve(mut self, requests: Receiver<Request>) {
        while let Ok(request) = requests.recv() {
            match request {
                Request::Record { event, reply } => {
                    // The caller may have given up; nothing to do then.
                    let _ = reply.send(self.run(event));
                }
                Request::Resource(resource) => self.resource = resource,
                Request::Flush(reply) => {
                    let _ = reply.send(());
                }
                Request::Finish(reply) => {
                    let _ = reply.send(self.finish());
                    return;
                }
            }
        }
    }

    /// Runs one event through every program.
    fn run(&mut self, mut event: InputEvent) -> Reply {
        event.resource.clone_from(&self.resource);
        let mut derived = Vec::new();
        let mut original: Option<InputEvent> = None;
        let last = self.programs.iter().rposition(|p| !p.disabled);
        for pi in 0..self.programs.len() {
            if self.programs[pi].disabled {
                continue;
            }
            let edits = event
                .name
                .as_ref()
                .is_some_and(|n| self.programs[pi].edits.contains(n));
            // The event itself goes into the engine; keep a copy when the
            // reshaping or the next program needs it.
            let keep = (edits || original.is_some() || Some(pi) != last).then(|| event.clone());
            let program = &mut self.programs[pi];
            let pushed = event;
            let run = catch_unwind(AssertUnwindSafe(|| {
                program.engine.push_event(pushed);
                program.engine.drain()
            }));
            let egress = match run {
                Ok(outputs) => self.outputs(pi, outputs, &mut derived),
                Err(_) => {
                    self.disable(pi, "it panicked on an event");
                    // The event passes this program unchanged.
                    match keep {
                        Some(before) => {
                            event = before;
                            continue;
                        }
                        None => {
                            return Reply {
                                verdict: Verdict::Pass,
                                derived,
                            };
                        }
                    }
                }
            };
            let Some(egress) = egress else {
                return Reply {
                    verdict: Verdict::Suppress,
                    derived,
                };
            };
            // No copy: the last program, nothing edited before or here.
            let Some(before) = keep else {
                return Reply {
                    verdict: Verdict::Pass,
                    derived,
                };
            };
            event = if edits {
                match from_flat_json(egress) {
                    Ok(shaped) => {
                        if original.is_none() {
                            original = Some(before);
                        }
                        shaped
                    }
                    Err(reason) => {
                        self.counters.problem(format!(
                            "program `{}`: its egress could not be read back ({reason}); the record passed on as it came to it",
                            self.programs[pi].name
                        ));
                        Counters::bump(&self.counters.internal_errors);
                        before
                    }
                }
            } else {
                before
            };
        }
        let verdict = match original {
            Some(o) => rewrite_or_pass(o, event),
            None => Verdict::Pass,
        };
        Reply { verdict, derived }
    }

    /// Handles one program's outputs for an event: returns its egress (if
    /// the event left), collects derived records, records metrics.
    fn outputs(
        &mut self,
        pi: usize,
        outputs: Vec<Output>,
        derived: &mut Vec<Derived>,
    ) -> Option<Json> {
        let mut egress = None;
        for output in outputs {
            match output {
                Output::Egress { event } => egress = Some(event),
                other => self.other_output(pi, other, derived),
            }
        }
        egress
    }

    /// Everything but egress.
    fn other_output(&mut self, pi: usize, output: Output, derived: &mut Vec<Derived>) {
        let program = &self.programs[pi].name;
        let c = &self.counters;
        match output {
            Output::Egress { .. } => {}
            Output::Log { name, time, fields } => {
                let fields: Vec<(String, Json)> =
                    fields.into_iter().map(|(k, v)| (k, v.to_json())).collect();
                let name = intern(&name);
                if name.is_none() {
                    Counters::bump(&c.names_not_interned);
                }
                derived.push((pi, derived_log(name, time, &fields)));
            }
            Output::Action {
                action,
                args,
                fired,
                by,
                time,
                limit,
                per_ns,
                ..
            } => {
                let args: serde_json::Map<String, Json> =
                    args.into_iter().map(|(k, v)| (k, v.to_json())).collect();
                let message = if fired {
                    format!(
                        "{action} triggered by {by} in program `{program}` was not run: the embedded processor does not run diagnostic actions (run the program in dtc-agent for that)"
                    )
                } else {
                    format!(
                        "{action} triggered by {by} in program `{program}` was refused by its budget ({limit} per {})",
                        dtc_engine::value::format_duration(per_ns)
                    )
                };
                let attributes = vec![
                    ("dtc.program", AnyValue::from(program.clone())),
                    ("dtc.action", AnyValue::from(action)),
                    ("dtc.action.by", AnyValue::from(by)),
                    ("dtc.action.fired", AnyValue::Boolean(fired)),
                    ("dtc.action.run", AnyValue::Boolean(false)),
                ]
                .into_iter()
                .chain(json_any_value(&Json::Object(args)).map(|a| ("dtc.action.args", a)))
                .collect();
                derived.push((
                    pi,
                    report_log("dtc.action", Severity::Warn, time, message, attributes),
                ));
                Counters::bump(&c.action_reports);
            }
            Output::Fault { by, message, time } => {
                let attributes = vec![
                    ("dtc.program", AnyValue::from(program.clone())),
                    ("dtc.fault.by", AnyValue::from(by.clone())),
                ];
                let text = format!("{by} in program `{program}` stopped early: {message}");
                derived.push((
                    pi,
                    report_log("dtc.fault", Severity::Warn, time, text, attributes),
                ));
                Counters::bump(&c.faults);
            }
            Output::Mismatch { event, reason } => {
                Counters::bump(&c.schema_mismatches);
                c.problem(format!(
                    "program `{program}`: a {event} record does not match its schema ({reason}); passed on unchanged"
                ));
            }
            Output::Malformed { reason, .. } => {
                Counters::bump(&c.malformed);
                c.problem(format!("program `{program}`: {reason}"));
            }
            Output::Metric {
                name,
                labels,
                value,
                start,
                end,
            } => {
                let point = MetricPoint {
                    program: program.clone(),
                    kind: self.programs[pi].kinds.get(&name).copied(),
                    name,
                    labels,
                    value,
                    start,
                    end,
                };
                let recorded = match &mut self.sink {
                    Sink::None => false,
                    Sink::Meter(m) => m.record(&point),
                    Sink::Callback(f) => catch_unwind(AssertUnwindSafe(|| f(&point))).is_ok(),
                };
                Counters::bump(if recorded {
                    &c.metric_points
                } else {
                    &c.metric_points_unrecorded
                });
            }
        }
    }

    fn disable(&mut self, pi: usize, why: &str) {
        self.programs[pi].disabled = true;
        Counters::bump(&self.counters.programs_disabled);
        self.counters.problem(format!(
            "program `{}` is disabled: {why}; its events pass on unchanged",
            self.programs[pi].name
        ));
    }

    /// The end of the stream: every open window closes.
    fn finish(&mut self) -> Vec<Derived> {
        let mut derived = Vec::new();
        for pi in 0..self.programs.len() {
            if self.programs[pi].disabled {
                continue;
            }
            let engine = &mut self.programs[pi].engine;
            let run = catch_unwind(AssertUnwindSafe(|| {
                engine.finish(true);
                engine.drain()
            }));
            match run {
                Ok(outputs) => {
                    self.outputs(pi, outputs, &mut derived);
                }
                Err(_) => self.disable(pi, "it panicked closing its windows"),
            }
        }
        derived
    }
}

/// A record some program edited: a rewrite unless the edits changed
/// nothing (a redacted field the event did not have).
fn rewrite_or_pass(original: InputEvent, shaped: InputEvent) -> Verdict {
    if shaped == original {
        return Verdict::Pass;
    }
    Verdict::Rewrite {
        original: Box::new(original),
        shaped: Box::new(shaped),
    }
}

/// A program's name for scopes and messages: its root file's name without
/// folders or extension (`embedded` for `samples/08-embedded/embedded.dt`),
/// so it does not depend on where it was compiled.
pub(crate) fn program_name(program: &Program) -> String {
    let path = std::path::Path::new(&program.name);
    match path.file_stem() {
        Some(stem) if !stem.is_empty() => stem.to_string_lossy().into_owned(),
        _ => program.name.clone(),
    }
}

/// The durable IDs of the events whose fields a shaping rule edits.
fn edited_events(program: &Program) -> HashSet<String> {
    program
        .shaping
        .iter()
        .filter_map(|rule| match rule {
            ShapeRule::SuppressField { event, .. }
            | ShapeRule::Redact { event, .. }
            | ShapeRule::RedactStd { event, .. } => program.events.get(*event as usize),
            ShapeRule::Suppress { .. } | ShapeRule::Sample { .. } | ShapeRule::Limit { .. } => None,
        })
        .map(|layout| layout.wire.clone())
        .collect()
}
