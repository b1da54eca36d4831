//! The engine thread. `dtc_engine::Engine` is not `Send` (it shares values
//! through `Rc`), while an SDK log processor must be `Send + Sync`; so the
//! engines that keep state live on one thread of their own, made when the
//! processor is built. One thread also keeps each program's state
//! (windows, machines, budgets) in one place, whichever application thread
//! logs.
//!
//! It serves in one of two ways, chosen per processor (see
//! [`crate::chain`] for why shaping can run anywhere):
//!
//! - **Fed** (every program's shaping is stateless): the application's
//!   threads shape each record themselves ([`crate::local`]) and only send
//!   the events the programs' queries, machines and processors need, without
//!   waiting. This thread hands the records it derives to the inner
//!   processor itself (given to it with the first event, after the
//!   provider has set the inner processor's resource), so they leave as
//!   soon as they are made, interleaved with the application's records by
//!   timing.
//! - **Asked** (some program has `sample` or `limit`, whose answers depend
//!   on every record before): each `emit` sends its event and waits for the
//!   verdict; the whole chain runs here.
//!
//! Here the records for derived logs, actions and faults are built, and
//! derived metrics recorded. A program that panics is disabled, counted,
//! and passes its events on unchanged from then on; the thread survives.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use dtc_engine::event::InputEvent;
use dtc_engine::{Options, Output, Produced};
use dtc_ir::Program;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use serde_json::Value as Json;

use crate::chain::{Loaded, Verdict, shape};
use crate::mapping::{derived_log, intern, json_any_value, report_log};
use crate::metrics::{MeterRecorder, MetricPoint, MetricSink};
use crate::stats::Counters;

/// What the application's threads send.
pub(crate) enum Request {
    /// Asked mode: run the chain, answer with the verdict.
    Record {
        event: InputEvent,
        reply: SyncSender<Reply>,
    },
    /// Fed mode: the event as it came to program `program`.
    Feed { program: usize, event: InputEvent },
    /// Fed mode: where derived records go, and the scope of each program.
    Inner(Arc<dyn LogProcessor>, Vec<InstrumentationScope>),
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

/// The answer to [`Request::Record`].
pub(crate) struct Reply {
    pub verdict: Verdict,
    /// Derived logs and reports, in the order the programs made them; they
    /// go before the record itself, as the engine's outputs do.
    pub derived: Vec<Derived>,
}

enum Sink {
    None,
    Meter(MeterRecorder),
    Callback(Box<dyn FnMut(&MetricPoint) + Send>),
}

/// Turns outputs other than egress into records and metric points.
struct Handler {
    sink: Sink,
    counters: Arc<Counters>,
    /// Fed mode: mismatches were counted by the shaping thread.
    fed: bool,
}

/// The engines, by mode.
enum Programs {
    /// Every program, whole.
    Asked(Vec<Loaded>),
    /// The stateful part of each program that has one, by program index.
    Fed(Vec<Option<Loaded>>),
}

pub(crate) struct Worker {
    programs: Programs,
    resource: BTreeMap<String, Json>,
    handler: Handler,
    /// Fed mode: the inner processor, once the first event brings it.
    inner: Option<(Arc<dyn LogProcessor>, Vec<InstrumentationScope>)>,
    /// Fed mode: records derived before `inner` came (none in practice:
    /// the inner processor comes before the first event).
    waiting: Vec<Derived>,
}

impl Worker {
    /// Builds the engines; runs on the engine thread, as `Engine` must.
    /// `fed`: the stateful parts (`None` for a program without one), else
    /// the whole programs.
    pub(crate) fn new(
        programs: Vec<Option<Program>>,
        fed: bool,
        options: Options,
        metrics: MetricSink,
        counters: Arc<Counters>,
    ) -> Worker {
        let load = |p: Program| Loaded::new(p, &options);
        let programs = if fed {
            Programs::Fed(programs.into_iter().map(|p| p.map(load)).collect())
        } else {
            Programs::Asked(programs.into_iter().flatten().map(load).collect())
        };
        let sink = match metrics {
            MetricSink::None => Sink::None,
            MetricSink::Meter(meter) => Sink::Meter(MeterRecorder::new(meter)),
            MetricSink::Callback(f) => Sink::Callback(f),
        };
        Worker {
            programs,
            resource: BTreeMap::new(),
            handler: Handler {
                sink,
                counters,
                fed,
            },
            inner: None,
            waiting: Vec::new(),
        }
    }

    /// Serves requests until `Finish`, or until every sender is gone (the
    /// processor was dropped without a shutdown).
    /// `with_resource`: some program reads the resource, so events carry it.
    pub(crate) fn serve(mut self, requests: Receiver<Request>, with_resource: bool) {
        while let Ok(request) = requests.recv() {
            match request {
                Request::Record { mut event, reply } => {
                    if with_resource {
                        event.resource.clone_from(&self.resource);
                    }
                    // The caller may have given up; nothing to do then.
                    let _ = reply.send(self.ask(event));
                }
                Request::Feed { program, mut event } => {
                    if with_resource && event.name.is_some() {
                        event.resource.clone_from(&self.resource);
                    }
                    self.feed(program, event);
                }
                Request::Inner(inner, scopes) => {
                    self.inner = Some((inner, scopes));
                    let waiting = std::mem::take(&mut self.waiting);
                    self.hand_on(waiting);
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

    /// Asked mode: the whole chain.
    fn ask(&mut self, event: InputEvent) -> Reply {
        let mut derived = Vec::new();
        let Programs::Asked(programs) = &mut self.programs else {
            // Not sent in fed mode; an answer all the same.
            return Reply {
                verdict: Verdict::Pass,
                derived,
            };
        };
        let handler = &mut self.handler;
        let counters = handler.counters.clone();
        let verdict = shape(
            programs,
            event,
            &counters,
            |_, _| {},
            |pi, p, output| handler.output(pi, p, output, &mut derived),
        );
        Reply { verdict, derived }
    }

    /// Fed mode: one program's queries, machines and processors.
    fn feed(&mut self, pi: usize, event: InputEvent) {
        let Programs::Fed(programs) = &mut self.programs else {
            return;
        };
        let Some(Some(program)) = programs.get_mut(pi) else {
            return;
        };
        if program.disabled {
            return;
        }
        let counters = self.handler.counters.clone();
        let outputs = program.guarded(&counters, "on an event", |e| {
            e.push_event(event);
            e.drain_lazy()
        });
        let mut derived = Vec::new();
        for item in outputs.into_iter().flatten() {
            // Its egress is decided on the application's thread.
            if let Produced::Output(output) = item {
                self.handler.output(pi, program, output, &mut derived);
            }
        }
        self.hand_on(derived);
    }

    /// Fed mode: derived records go straight to the inner processor.
    fn hand_on(&mut self, derived: Vec<Derived>) {
        let Some((inner, scopes)) = &self.inner else {
            self.waiting.extend(derived);
            return;
        };
        for (pi, mut record) in derived {
            if let Some(scope) = scopes.get(pi) {
                Counters::bump(&self.handler.counters.derived_logs);
                inner.emit(&mut record, scope);
            }
        }
    }

    /// The end of the stream: every open window closes.
    fn finish(&mut self) -> Vec<Derived> {
        let mut derived = std::mem::take(&mut self.waiting);
        let programs: Vec<(usize, &mut Loaded)> = match &mut self.programs {
            Programs::Asked(all) => all.iter_mut().enumerate().collect(),
            Programs::Fed(some) => some
                .iter_mut()
                .enumerate()
                .filter_map(|(pi, p)| Some((pi, p.as_mut()?)))
                .collect(),
        };
        for (pi, program) in programs {
            if program.disabled {
                continue;
            }
            let counters = self.handler.counters.clone();
            let outputs = program.guarded(&counters, "closing its windows", |e| {
                e.finish(true);
                e.drain()
            });
            for output in outputs.into_iter().flatten() {
                self.handler.output(pi, program, output, &mut derived);
            }
        }
        derived
    }
}

impl Handler {
    /// One output other than egress, of program `pi`.
    fn output(&mut self, pi: usize, program: &Loaded, output: Output, derived: &mut Vec<Derived>) {
        let c = &self.counters;
        let (program, kinds) = (&program.name, &program.kinds);
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
            // Counted where the event was shaped, on the application's thread.
            Output::Mismatch { .. } if self.fed => {}
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
                    kind: kinds.get(&name).copied(),
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
}
