//! The pipeline: one worker thread that owns every engine and runs the
//! received batches through the programs.
//!
//! `dtc_engine::Engine` is not `Send` (it holds `Rc`s), so engines are
//! created, run and dropped on this thread only; other threads talk to it
//! through the batch queue, the control channel and one atomic flag (the rip
//! cord).
//!
//! **Composition.** Programs form a chain in artifact file-name order: the
//! egress of one is the input of the next, so a later program sees what an
//! earlier one let through, as shaped. Every program's derived logs,
//! metrics and actions go out beside the chain's final egress. A batch goes
//! through the chain one program at a time (all its events through the
//! first program, then the survivors through the second), which keeps the
//! time measured per program exact.
//!
//! **Invariants.**
//! - A batch is processed whole by one set of programs: reloads, budget
//!   trips and the rip cord take effect between batches (the rip cord also
//!   stops a batch in flight: its remaining events leave unshaped, those
//!   already shaped stay shaped), so no event
//!   is processed twice or lost.
//! - A replaced or removed program's open windows are flushed
//!   (`finish(true)`) before it is dropped, so its metrics are exported;
//!   so are every program's when the rip cord is pulled.
//! - An event a program does not change leaves as the record that came
//!   in; a malformed record passes through unchanged and is counted.
//! - A program over a budget, or every program after the rip cord, is no
//!   longer run: its events pass through unchanged.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use dtc_actions::ActionRecord;
use dtc_engine::event::{InputEvent, KeyIndex, ReadInPlace};
use dtc_engine::runtime::Removals;
use dtc_engine::{Counters, Edit, Edits, Engine, InputRef, Options, Output, Produced};
use dtc_ir::AggKind;
use dtc_jit::JitEngine;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value as Json, json};

use crate::actions::{self, Actions, READS_RECORDER, Seen, Tape};
use crate::config::{Budgets, EngineKind};
use crate::convert::{self, Needs, agent_log, agent_resource, key_value, program_scope};
use crate::exporter::{ExportQueue, Item};
use crate::loader::Loaded;
use crate::received::{InPlace, Received};
use crate::receiver::{Batch, Work};
use crate::telemetry::{ProgramStatus, RipcordReport, Stats, lock, now_unix_ns};
use crate::wire;

/// What other threads tell the pipeline.
#[derive(Debug)]
pub enum Control {
    /// The verified programs to run from the next batch on, in order.
    Programs(Vec<Arc<Loaded>>),
    /// Pull the rip cord. `requested` is when it was asked for; the reply
    /// (if any) gets the report.
    Ripcord {
        requested: Instant,
        reply: Option<tokio::sync::oneshot::Sender<RipcordReport>>,
    },
    /// Release the rip cord: the loaded programs start again, fresh.
    Release,
}

/// OTLP's TRACE (1-4) and DEBUG (5-8) severities: what `verbose_logs`
/// lets through. 0 is "unspecified", not debug.
const DEBUG_LEVELS: std::ops::RangeInclusive<i64> = 1..=8;

/// At most this many fault, mismatch and malformed records are logged per
/// second (per program for faults and mismatches); all are counted.
const LOGGED_PER_SECOND: u64 = 10;

struct Running {
    loaded: Arc<Loaded>,
    engine: Option<Runner>,
    kinds: HashMap<String, AggKind>,
    /// The events it saw lately, for its flight recorder; only for a
    /// program that triggers an action writing it.
    tape: Option<Tape>,
    /// Whether it triggers `verbose_logs`.
    may_be_verbose: bool,
    memory: StaticMemory,
    status: ProgramStatus,
    second: Window,
    minute: Window,
}

/// What runs a program (`artifacts.engine`): its JIT-compiled code, or the
/// interpreter. Both produce the same outputs (`dtc_jit::differential`).
enum Runner {
    Jit(JitEngine),
    Interpreted(Engine),
}

impl Runner {
    /// The program's engine of `kind`, and what its status says of it. A
    /// program the JIT cannot compile runs on the interpreter, which
    /// defines what the compiled code does: the reason is in its status
    /// (`dtc-agent status`) rather than the program left out, since
    /// leaving it out would let through what it redacts.
    fn new(program: &dtc_ir::Program, options: &Options, kind: EngineKind) -> (Runner, String) {
        let interpreted = || Runner::Interpreted(Engine::new(program.clone(), options.clone()));
        match kind {
            EngineKind::Interpreter => (interpreted(), "interpreter".into()),
            EngineKind::Jit => match JitEngine::new(program.clone(), options.clone()) {
                Ok(jit) => (Runner::Jit(jit), "jit".into()),
                Err(e) => (
                    interpreted(),
                    format!("interpreter (the JIT could not compile it: {e})"),
                ),
            },
        }
    }

    fn push_read(&mut self, source: Received) {
        match self {
            Runner::Jit(e) => e.push_read(source),
            Runner::Interpreted(e) => e.push_read(source),
        }
    }

    /// Whether [`Runner::edits_found`] runs every event whose fields make
    /// its layout's row, and nothing else comes out of the program
    /// (`Engine::only_redactions`).
    fn only_redactions(&self) -> bool {
        match self {
            Runner::Jit(e) => e.only_redactions(),
            Runner::Interpreted(e) => e.only_redactions(),
        }
    }

    /// One record run borrowed, where it needs no record (`Engine::edits_read`),
    /// its fields found by its layout's keys (`Engine::edits_found`):
    /// whether it was run, its edits appended to `edits`; if not, push it.
    fn edits_found(&mut self, source: &Received, edits: &mut Edits) -> bool {
        let Some(name) = source.name() else {
            return false;
        };
        let find = |keys: &KeyIndex, texts: &[bool], values: &mut [_]| {
            source.find(keys, texts, values, |_, _| {})
        };
        match self {
            Runner::Jit(e) => e.edits_found(name, source.time(), find, edits),
            Runner::Interpreted(e) => e.edits_found(name, source.time(), find, edits),
        }
    }

    fn removals(&self) -> Rc<[Removals]> {
        match self {
            Runner::Jit(e) => e.removals(),
            Runner::Interpreted(e) => e.removals(),
        }
    }

    fn removed_found(&mut self, now: i64) {
        match self {
            Runner::Jit(e) => e.removed_found(now),
            Runner::Interpreted(e) => e.removed_found(now),
        }
    }

    /// Record `at`, named `name` (`InPlace::name`), run where it needs no
    /// record, as [`Runner::edits_found`], with its edits given by declared field
    /// (`Engine::redactions_found`): into `found`, each attribute `find`
    /// matched (field, index among the record's), and into `acts`, what
    /// the redactions do to each field, folded in rule order
    /// (`convert::fold_redaction`).
    fn redactions_found(
        &mut self,
        (at, name): (InPlace<'_>, Option<&[u8]>),
        time: i64,
        found: &mut Vec<(u32, u32)>,
        acts: &mut Vec<wire::AttributeEdit>,
    ) -> bool {
        let find = |keys: &KeyIndex, texts: &[bool], values: &mut [_]| {
            at.find(keys, texts, values, |j, a| found.push((j as u32, a as u32)))
        };
        let redact = |slot, text| convert::fold_redaction(acts, slot, text);
        match self {
            Runner::Jit(e) => e.redactions_found(name, time, find, redact),
            Runner::Interpreted(e) => e.redactions_found(name, time, find, redact),
        }
    }

    fn push_event(&mut self, event: InputEvent) {
        match self {
            Runner::Jit(e) => e.push_event(event),
            Runner::Interpreted(e) => e.push_event(event),
        }
    }

    fn drain_lazy_into(&mut self, into: &mut Vec<Produced>) {
        match self {
            Runner::Jit(e) => e.drain_lazy_into(into),
            Runner::Interpreted(e) => e.drain_lazy_into(into),
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        match self {
            Runner::Jit(e) => e.drain(),
            Runner::Interpreted(e) => e.drain(),
        }
    }

    fn finish(&mut self, until_end: bool) {
        match self {
            Runner::Jit(e) => e.finish(until_end),
            Runner::Interpreted(e) => e.finish(until_end),
        }
    }

    fn counters(&self) -> &Counters {
        match self {
            Runner::Jit(e) => e.counters(),
            Runner::Interpreted(e) => &e.counters,
        }
    }
}

/// Usage within a window of wall time (CPU time used in it, emits,
/// actions).
struct Window {
    start: Instant,
    time: Duration,
    emits: u64,
    actions: u64,
    logged: u64,
}

impl Window {
    fn new() -> Window {
        Window {
            start: Instant::now(),
            time: Duration::ZERO,
            emits: 0,
            actions: 0,
            logged: 0,
        }
    }

    fn roll(&mut self, length: Duration) {
        if self.start.elapsed() >= length {
            *self = Window::new();
        }
    }
}

impl Running {
    fn new(loaded: Arc<Loaded>, options: &Options, kind: EngineKind, ripcord: bool) -> Running {
        let mut status = ProgramStatus {
            name: loaded.program.name.clone(),
            file: loaded.file.clone(),
            tier: loaded.metadata.tier.clone(),
            state: if ripcord { "ripcord" } else { "running" }.into(),
            ..ProgramStatus::default()
        };
        let triggers = |a: &str| loaded.actions.iter().any(|x| x == a);
        let engine = (!ripcord).then(|| {
            let (runner, engine) = Runner::new(&loaded.program, options, kind);
            status.engine = engine;
            runner
        });
        Running {
            engine,
            kinds: dtc_engine::output::metric_kinds(&loaded.program),
            tape: READS_RECORDER
                .iter()
                .any(|a| triggers(a))
                .then(Tape::default),
            may_be_verbose: triggers("verbose_logs"),
            memory: StaticMemory::of(&loaded.metadata.risk),
            loaded,
            status,
            second: Window::new(),
            minute: Window::new(),
        }
    }
}

/// What a batch produced besides the egress.
#[derive(Default)]
struct Derived {
    /// Per program (by index): logs and metrics.
    logs: Vec<(String, Vec<LogRecord>)>,
    metrics: Vec<(String, Vec<Metric>)>,
    /// The agent's own records (faults, budget trips, actions, ...).
    agent: Vec<LogRecord>,
    agent_metrics: Vec<Metric>,
}

impl Derived {
    fn log(&mut self, program: &str, record: LogRecord) {
        match self.logs.iter_mut().find(|(p, _)| p == program) {
            Some((_, v)) => v.push(record),
            None => self.logs.push((program.to_string(), vec![record])),
        }
    }

    fn metric(&mut self, program: &str, metric: Metric) {
        match self.metrics.iter_mut().find(|(p, _)| p == program) {
            Some((_, v)) => v.push(metric),
            None => self.metrics.push((program.to_string(), vec![metric])),
        }
    }
}

/// The worker.
pub struct Pipeline {
    programs: Vec<Running>,
    options: Options,
    engine: EngineKind,
    budgets: Budgets,
    stats: Arc<Stats>,
    export: ExportQueue,
    ripcord: Arc<AtomicBool>,
    pulled: bool,
    actions: Actions,
    malformed_window: Window,
    /// What the programs read of a record ([`Pipeline::refresh_needs`]);
    /// shared with the records the engines read in place.
    needs: Rc<Needs>,
    /// How long an idle pipeline waits before it looks at long actions and
    /// publishes its status; control messages wake it at once.
    tick: Duration,
    /// Whether a chain of one program of redactions only takes the lean
    /// loop ([`Pipeline::redacting_alone`]); off in the tests that hold it
    /// to the general one.
    lean: bool,
}

impl Pipeline {
    /// `hash_key` is the key of `hash` and hash redaction
    /// (`redaction.hash_key_file`); `None` keeps the engine's public default.
    pub fn new(
        budgets: Budgets,
        stats: Arc<Stats>,
        export: ExportQueue,
        ripcord: Arc<AtomicBool>,
        actions: Actions,
        hash_key: Option<(u64, u64)>,
    ) -> Pipeline {
        let defaults = Options::default();
        Pipeline {
            programs: Vec::new(),
            options: Options {
                hash_key: hash_key.unwrap_or(defaults.hash_key),
                ..defaults
            },
            engine: EngineKind::default(),
            budgets,
            stats,
            export,
            ripcord,
            pulled: false,
            actions,
            malformed_window: Window::new(),
            needs: Rc::default(),
            tick: Duration::from_millis(10),
            lean: true,
        }
    }

    /// Runs the programs on `kind` of engine (the JIT by default).
    pub fn with_engine(mut self, kind: EngineKind) -> Pipeline {
        self.engine = kind;
        self
    }

    /// Runs until the batch queue closes, then flushes every program's
    /// open windows.
    pub fn run(mut self, batches: Receiver<Work>, control: Receiver<Control>) {
        let mut published = Instant::now();
        loop {
            while let Ok(c) = control.try_recv() {
                self.control(c);
            }
            if self.ripcord.load(Relaxed) && !self.pulled {
                self.pull(Instant::now(), None);
            }
            match batches.recv_timeout(self.tick) {
                // The next turn reads the control message that woke it.
                Ok(Work::Wake) => {}
                Ok(Work::Batch(batch)) => {
                    // Whatever was asked before this batch arrived applies to it.
                    while let Ok(c) = control.try_recv() {
                        self.control(c);
                    }
                    self.stats.pipeline_queue.fetch_sub(1, Relaxed);
                    self.stats
                        .pipeline_records
                        .fetch_sub(batch.records, Relaxed);
                    self.process(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.poll_actions();
            if published.elapsed() >= Duration::from_millis(100) {
                self.publish();
                published = Instant::now();
            }
        }
        while let Ok(c) = control.try_recv() {
            self.control(c);
        }
        let mut derived = Derived::default();
        for p in std::mem::take(&mut self.programs) {
            self.retire(p, &mut derived);
        }
        self.send(derived);
        // Long actions still running get a little time to report.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.actions.running() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            self.poll_actions();
        }
        self.poll_actions();
        if self.actions.running() > 0 {
            eprintln!(
                "dtc-agent: {} long action(s) still running at shutdown; their records are lost",
                self.actions.running()
            );
        }
        self.publish();
    }

    /// Announces the long actions that finished (never waits).
    fn poll_actions(&mut self) {
        let records = self.actions.completed();
        if records.is_empty() {
            return;
        }
        let mut derived = Derived::default();
        for record in records {
            let program = self
                .programs
                .iter_mut()
                .find(|p| p.status.name == record.program);
            announce_action(&self.stats, &self.actions, program, &record, &mut derived);
        }
        self.send(derived);
    }

    /// Handles one control message now (the thread calls it between
    /// batches; the wire bench loads its program through it).
    pub fn control(&mut self, c: Control) {
        match c {
            Control::Programs(list) => self.swap(list),
            Control::Ripcord { requested, reply } => {
                if self.pulled {
                    // Already pulled (by the flag): report the pull that happened.
                    let report = lock(&self.stats.ripcord).clone();
                    if let (Some(reply), Some(report)) = (reply, report) {
                        let _ = reply.send(report);
                    }
                } else {
                    self.pull(requested, reply);
                }
            }
            Control::Release => {
                self.ripcord.store(false, Relaxed);
                if self.pulled {
                    self.pulled = false;
                    let list: Vec<_> = self.programs.iter().map(|p| p.loaded.clone()).collect();
                    self.programs = list
                        .into_iter()
                        .map(|l| Running::new(l, &self.options, self.engine, false))
                        .collect();
                    self.refresh_needs();
                    let mut derived = Derived::default();
                    derived.agent.push(agent_log(
                        "dtc.ripcord.released",
                        9,
                        "the rip cord was released: programs run again, with fresh state",
                        &[],
                        now_unix_ns(),
                    ));
                    self.send(derived);
                }
            }
        }
        self.publish();
    }

    /// Installs a new list of programs between batches. A program whose file
    /// and digest are unchanged keeps its engine (its state and windows);
    /// the others are retired (windows flushed) and the new ones start.
    fn swap(&mut self, list: Vec<Arc<Loaded>>) {
        self.stats.reloads.fetch_add(1, Relaxed);
        let was_empty = self.programs.is_empty();
        let mut old: Vec<Option<Running>> = std::mem::take(&mut self.programs)
            .into_iter()
            .map(Some)
            .collect();
        let mut next = Vec::with_capacity(list.len());
        for loaded in list {
            let kept = old.iter_mut().find(|o| {
                o.as_ref().is_some_and(|r| {
                    r.loaded.file == loaded.file && r.loaded.digest == loaded.digest
                })
            });
            match kept.and_then(Option::take) {
                Some(running) => next.push(running),
                None => next.push(Running::new(
                    loaded,
                    &self.options,
                    self.engine,
                    self.pulled,
                )),
            }
        }
        let mut derived = Derived::default();
        for running in old.into_iter().flatten() {
            self.retire(running, &mut derived);
        }
        let names: Vec<String> = next.iter().map(|r| r.loaded.file.clone()).collect();
        if names.is_empty() && was_empty {
            self.programs = next;
            self.refresh_needs();
            self.send(derived);
            return;
        }
        derived.agent.push(agent_log(
            "dtc.programs.loaded",
            9,
            &format!("running {} program(s): {}", names.len(), names.join(", ")),
            &[("dtc.programs", json!(names.join(",")))],
            now_unix_ns(),
        ));
        self.programs = next;
        self.refresh_needs();
        self.send(derived);
    }

    /// Works out what ingress converts for the programs now loaded.
    fn refresh_needs(&mut self) {
        let recording = self.programs.iter().any(|p| p.tape.is_some());
        let with_pid = self.programs.iter().any(|p| !p.loaded.actions.is_empty());
        let programs = self.programs.iter().map(|p| &p.loaded.program);
        self.needs = Rc::new(Needs::of(programs, recording, with_pid));
    }

    /// Stops a program's engine, if it runs: its open windows close and
    /// what they produce (metrics, logs) goes out with `derived`. True
    /// when there was an engine.
    fn stop_engine(&mut self, running: &mut Running, derived: &mut Derived) -> bool {
        let Some(mut engine) = running.engine.take() else {
            return false;
        };
        engine.finish(true);
        for out in engine.drain() {
            side_output(&self.stats, &mut self.actions, running, out, None, derived);
        }
        true
    }

    /// Flushes a program's open windows and lets it go.
    fn retire(&mut self, mut running: Running, derived: &mut Derived) {
        self.stop_engine(&mut running, derived);
        let name = &running.status.name;
        if !self.programs.iter().any(|p| &p.status.name == name) {
            self.actions.forget(name);
        }
    }

    fn pull(
        &mut self,
        requested: Instant,
        reply: Option<tokio::sync::oneshot::Sender<RipcordReport>>,
    ) {
        self.ripcord.store(true, Relaxed);
        let mut disabled = 0;
        // Each program's open windows are flushed, so the metrics they
        // hold go out rather than being lost with the engine.
        let mut derived = Derived::default();
        let mut programs = std::mem::take(&mut self.programs);
        for p in &mut programs {
            if self.stop_engine(p, &mut derived) {
                disabled += 1;
            }
            p.status.state = "ripcord".into();
            p.status.reason = Some("the rip cord was pulled".into());
        }
        self.programs = programs;
        self.pulled = true;
        let report = RipcordReport {
            took_ns: requested.elapsed().as_nanos() as u64,
            programs_disabled: disabled,
            at_unix_ns: now_unix_ns(),
        };
        *lock(&self.stats.ripcord) = Some(report.clone());
        eprintln!(
            "dtc-agent: rip cord pulled: {disabled} program(s) disabled in {:?}",
            Duration::from_nanos(report.took_ns)
        );
        derived.agent.push(agent_log(
            "dtc.ripcord",
            13,
            &format!(
                "the rip cord was pulled: {disabled} program(s) disabled in {} ns; events pass through unchanged",
                report.took_ns
            ),
            &[
                ("dtc.ripcord.took_ns", json!(report.took_ns)),
                ("dtc.ripcord.programs_disabled", json!(disabled)),
            ],
            now_unix_ns(),
        ));
        self.send(derived);
        self.publish();
        if let Some(reply) = reply {
            let _ = reply.send(report);
        }
    }

    fn publish(&self) {
        *lock(&self.stats.programs) = self.programs.iter().map(|p| p.status.clone()).collect();
    }

    /// Runs one batch through the chain and queues what comes out.
    ///
    /// Each record is read in place by the engines ([`Received`]: from
    /// what the receiver's check noted of its received bytes; its event
    /// made only if something reads what the record does not hold), or,
    /// when a program keeps what it saw for its flight recorder, converted
    /// once into its event ([`convert::received_event`]); its lazy egress
    /// comes back. An unchanged record leaves as the bytes that came, and
    /// a later program reads it in place again; a shaped one has the edits
    /// applied to its bytes ([`convert::edit_received`]) and, when a later
    /// program runs, is converted again from the edited record, so every
    /// program sees what would leave. The export is spliced from the received request
    /// ([`wire::Request::assemble`]). Public for the wire bench, which
    /// times this thread's work per record without a network.
    pub fn process(&mut self, batch: Batch) {
        self.stats.records_in.fetch_add(batch.records, Relaxed);
        let request = Rc::new(batch.request);
        let active = self.programs.iter().any(|p| p.engine.is_some());
        if !active || self.ripcord.load(Relaxed) {
            self.forward_unchanged(&request);
            return;
        }
        let needs = &*self.needs;
        let mut derived = Derived::default();
        let n = request.len();
        // Only a recording program needs the size of what it keeps.
        let bytes_per_event = if self.programs.iter().any(|p| p.tape.is_some()) {
            request.bytes.len() as u64 / batch.records.max(1)
        } else {
            0
        };
        // Per resource: what the programs read of it (decoded only when
        // they read it), and the pid an action would target.
        let resources = needs.resources(&request);
        let resource_of = |k: usize| request.records[k].resource;
        // The records shaping edited, as they will leave.
        let mut edited = wire::Edited::with_records(n);
        let alone = self.redacting_alone();
        // The event each program is given next: `None` once suppressed, or
        // for a record that is not an event (passed on unchanged). A
        // recording program keeps every event whole, so they are made
        // once, here; otherwise the engines read the records in place. A
        // program of redactions alone reads them straight from the request.
        let mut events: Vec<Option<Next>> = Vec::new();
        let mut scratch = Vec::new();
        for k in (0..n).filter(|_| alone.is_none()) {
            let resource = &resources[resource_of(k)];
            let next = if needs.everything {
                convert::received_event(&request, k, resource, needs, &mut scratch)
                    .map(Next::event_of)
            } else {
                Received::new(&request, k, resource, &self.needs).map(Next::Read)
            };
            match next {
                Ok(next) => events.push(Some(next)),
                Err(reason) => {
                    undecodable(
                        &self.stats,
                        &mut self.malformed_window,
                        &mut derived,
                        &reason,
                    );
                    events.push(None);
                }
            }
        }
        let mut suppressed = vec![false; n];
        // Records whose resource a program edited: their own copy of it.
        let mut own_resource: Vec<(usize, Resource)> = Vec::new();
        let last = self.programs.iter().rposition(|p| p.engine.is_some());
        let mut cut = false;
        // Through the chain, one program at a time.
        for pi in 0..self.programs.len() {
            if self.programs[pi].engine.is_none() {
                continue;
            }
            let later = Some(pi) != last;
            let verbose = self.programs[pi].may_be_verbose
                && self.actions.is_verbose(&self.programs[pi].status.name);
            // What a recording program saw.
            let seen: Option<Seen> = self.programs[pi]
                .tape
                .as_ref()
                .map(|_| Rc::new(events.iter().map(|e| e.as_ref().map(Next::event)).collect()));
            let started = thread_cpu();
            let mut n_events = 0u64;
            let mut lifted = 0u64;
            let mut outputs: Vec<(usize, Output)> = Vec::new();
            let mut unreadable: Vec<String> = Vec::new();
            let mut produced: Vec<Produced> = Vec::new();
            // The edits of the record at hand, in one buffer rather than
            // moved (about 150 bytes) from the engine through this loop.
            let mut edits = Edits::new();
            {
                let engine = self.programs[pi].engine.as_mut().expect("checked above");
                // A program of redactions only is given each record
                // borrowed, and gives its edits back: nothing else comes
                // out of it, so nothing is drained.
                let borrowed = engine.only_redactions();
                // Alone, straight from the request: the loop below for one
                // program that is the last, reads in place, keeps nothing
                // and lifts nothing, without its queue of events.
                let mut found = Vec::new();
                let mut acts = Vec::new();
                // Layouts whose edits are always the same fields removed:
                // their records are cut here, by the fields found.
                let removals = engine.removals();
                let mut removed: Vec<u32> = Vec::new();
                for k in (0..n).filter(|_| alone == Some(pi)) {
                    let resource = &resources[resource_of(k)];
                    let at = InPlace::new(&request, k);
                    let times = match at.times(resource, needs) {
                        Ok(times) => times,
                        Err(reason) => {
                            let window = &mut self.malformed_window;
                            undecodable(&self.stats, window, &mut derived, &reason);
                            continue;
                        }
                    };
                    // The rest of the batch leaves as shaped so far (its
                    // malformed records still counted, as above).
                    if cut || self.ripcord.load(Relaxed) {
                        cut = true;
                        continue;
                    }
                    n_events += 1;
                    // `None`: the record is not read in place (it is run
                    // as any); `Some(None)`: it has no name.
                    let name = at.name();
                    let by = match name {
                        Some(Some(name)) => removals.iter().find(|r| *r.name == *name),
                        _ => None,
                    };
                    removed.clear();
                    if let Some(by) = by
                        && at.removed(by, &mut removed).is_some()
                    {
                        engine.removed_found(times.0);
                        let cuts = removed
                            .iter()
                            .map(|&a| (a as usize, wire::AttributeEdit::Remove));
                        if let Some(Err(reason)) = request.splice_at(k, cuts, &mut edited) {
                            unreadable.push(reason);
                            suppressed[k] = true;
                        }
                        continue;
                    }
                    found.clear();
                    acts.clear();
                    // Cut where its fields were found, or run as any.
                    let run = name.is_some_and(|name| {
                        engine.redactions_found((at, name), times.0, &mut found, &mut acts)
                    });
                    let left = if run {
                        if acts.is_empty() {
                            continue;
                        }
                        convert::splice_found(&request, k, &found, &acts, &mut edited)
                    } else {
                        edits.clear();
                        let r = Received::with_times(&request, k, resource, &self.needs, times);
                        engine.push_read(r);
                        let egress = drained(engine, k, &mut produced, &mut outputs, &mut edits);
                        if egress.is_none() {
                            suppressed[k] = true;
                            continue;
                        }
                        if edits.is_empty() {
                            continue;
                        }
                        leave_edited(&request, k, &edits, false, &mut edited, &mut own_resource)
                    };
                    if let Err(reason) = left {
                        unreadable.push(reason);
                        suppressed[k] = true;
                    }
                }
                for (k, slot) in events.iter_mut().enumerate() {
                    let Some(next) = slot.take() else {
                        continue;
                    };
                    if self.ripcord.load(Relaxed) {
                        // The rest of the batch leaves as shaped so far.
                        cut = true;
                        break;
                    }
                    n_events += 1;
                    // While verbose, a debug-level event the program keeps
                    // from leaving passes on as the program saw it.
                    let kept =
                        (verbose && DEBUG_LEVELS.contains(&next.severity())).then(|| next.clone());
                    // What leaves of it: its input (`None`: read in place),
                    // and its edits, in `edits`.
                    let mut egress: Option<Option<InputRef>> = None;
                    edits.clear();
                    // A record read in place is read in place again by the
                    // next program when this one leaves it unchanged.
                    let again = match next {
                        Next::Read(r) => match borrowed && engine.edits_found(&r, &mut edits) {
                            true => {
                                egress = Some(None);
                                later.then_some(r)
                            }
                            false => {
                                let again = later.then(|| r.clone());
                                engine.push_read(r);
                                again
                            }
                        },
                        Next::Event(e) => {
                            engine.push_event(*e);
                            None
                        }
                    };
                    if egress.is_none() {
                        egress =
                            drained(engine, k, &mut produced, &mut outputs, &mut edits).map(Some);
                    }
                    match egress {
                        Some(input) if edits.is_empty() => {
                            if later {
                                *slot = match (again, input) {
                                    (Some(r), _) => Some(Next::Read(r)),
                                    (None, Some(input)) => Some(Next::event_of(
                                        Rc::try_unwrap(input.into_event())
                                            .unwrap_or_else(|e| (*e).clone()),
                                    )),
                                    // Not met: only a record read in place
                                    // is given borrowed, and it is kept in
                                    // `again` for the next program.
                                    (None, None) => None,
                                };
                            }
                        }
                        Some(_) => {
                            if let Err(reason) = leave_edited(
                                &request,
                                k,
                                &edits,
                                later,
                                &mut edited,
                                &mut own_resource,
                            ) {
                                unreadable.push(reason);
                                suppressed[k] = true;
                                continue;
                            }
                            if later {
                                // Decoded from the record as edited (and its
                                // resource, if edited): what the next program
                                // reads is what would leave.
                                let own = own_resource.iter().find(|(j, _)| *j == k);
                                let resource_edited = own.map(|(_, r)| needs.resource(Some(r)));
                                let resource = resource_edited
                                    .as_ref()
                                    .unwrap_or(&resources[resource_of(k)]);
                                let bytes = edited.whole(k).unwrap_or_default();
                                *slot = convert::event(bytes, resource, needs, &mut Vec::new())
                                    .ok()
                                    .map(Next::event_of);
                            }
                        }
                        None if kept.is_some() => {
                            lifted += 1;
                            *slot = kept.filter(|_| later);
                        }
                        None => suppressed[k] = true,
                    }
                }
            }
            let took = thread_cpu().saturating_sub(started);
            for reason in unreadable {
                malformed(
                    &self.stats,
                    &mut self.malformed_window,
                    &mut derived,
                    &format!("a log record could not be shaped and was kept back: {reason}"),
                );
            }
            let max_recorded = self.actions.max_recorded();
            let running = &mut self.programs[pi];
            running.status.verbose_passed += lifted;
            if let (Some(tape), Some(seen)) = (running.tape.as_mut(), seen.clone()) {
                tape.push(seen, bytes_per_event, max_recorded);
            }
            let recorded = match &running.tape {
                Some(tape) => {
                    tape.bytes()
                        + self
                            .actions
                            .recorder()
                            .stats(&running.status.name)
                            .held_bytes as u64
                }
                None => 0,
            };
            for (k, out) in outputs {
                let pid = || target_pid(&resources[resource_of(k)]);
                let at = matches!(out, Output::Action { .. }).then(|| (k, pid()));
                side_output(
                    &self.stats,
                    &mut self.actions,
                    running,
                    out,
                    at,
                    &mut derived,
                );
            }
            account(
                &self.stats,
                &self.budgets,
                running,
                Usage {
                    cpu: took,
                    events: n_events,
                    recorded,
                },
                &mut derived,
            );
            if cut {
                break;
            }
        }
        // What leaves: the received request spliced, without what was
        // suppressed, with what was edited; a record with a resource of
        // its own leaves in a resource of its own.
        let n_suppressed = suppressed.iter().filter(|s| **s).count() as u64;
        let forwarded = batch.records - n_suppressed;
        self.stats.records_out.fetch_add(forwarded, Relaxed);
        self.stats
            .records_suppressed
            .fetch_add(n_suppressed, Relaxed);
        let export = &self.export;
        request.assemble(&suppressed, &edited, &mut own_resource, |bytes, n| {
            export.push_waiting(Item::RawLogs(bytes, n));
        });
        self.send(derived);
    }

    /// The one program of the chain, when it is a program of redactions
    /// only (`Engine::only_redactions`) that records nothing, reads no
    /// whole events and is not verbose: then `process` gives it each
    /// record straight from the request (`Engine::edits_found`), without
    /// a queue of events for later programs. Why: the common deployment
    /// of a redaction, where the pipeline's own work per record was
    /// about 300 instructions of the 2,140 the redaction cost.
    fn redacting_alone(&self) -> Option<usize> {
        let mut active = (self.programs.iter().enumerate()).filter(|(_, p)| p.engine.is_some());
        let (pi, p) = active.next()?;
        if !self.lean || active.next().is_some() || self.needs.everything || p.tape.is_some() {
            return None;
        }
        let verbose = p.may_be_verbose && self.actions.is_verbose(&p.status.name);
        let only = p.engine.as_ref().is_some_and(Runner::only_redactions);
        (only && !verbose).then_some(pi)
    }

    fn forward_unchanged(&mut self, request: &wire::Request) {
        self.stats
            .records_out
            .fetch_add(request.len() as u64, Relaxed);
        let export = &self.export;
        request.assemble(
            &[],
            &wire::Edited::default(),
            &mut Vec::new(),
            |bytes, n| {
                export.push_waiting(Item::RawLogs(bytes, n));
            },
        );
    }

    /// Queues derived telemetry: one resource (the agent's) with a scope
    /// per program, and the agent's own scope. Like the egress it waits for
    /// room in the export queue rather than be dropped.
    fn send(&self, derived: Derived) {
        let mut scopes: Vec<ScopeLogs> = derived
            .logs
            .into_iter()
            .map(|(program, records)| ScopeLogs {
                scope: Some(program_scope(&program)),
                log_records: records,
                schema_url: String::new(),
            })
            .collect();
        if !derived.agent.is_empty() {
            scopes.push(ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "dtc-agent".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: derived.agent,
                schema_url: String::new(),
            });
        }
        if !scopes.is_empty() {
            self.export.push_waiting(Item::logs(ResourceLogs {
                resource: Some(agent_resource()),
                scope_logs: scopes,
                schema_url: String::new(),
            }));
        }
        let mut scope_metrics: Vec<ScopeMetrics> = derived
            .metrics
            .into_iter()
            .map(|(program, metrics)| ScopeMetrics {
                scope: Some(program_scope(&program)),
                metrics,
                schema_url: String::new(),
            })
            .collect();
        if !derived.agent_metrics.is_empty() {
            scope_metrics.push(ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "dtc-agent".into(),
                    ..InstrumentationScope::default()
                }),
                metrics: derived.agent_metrics,
                schema_url: String::new(),
            });
        }
        if !scope_metrics.is_empty() {
            self.export.push_waiting(Item::metrics(ResourceMetrics {
                resource: Some(agent_resource()),
                scope_metrics,
                schema_url: String::new(),
            }));
        }
    }
}

/// What a program is given of a record: read in place from the request,
/// or its event (made from the record as an earlier program edited it, or
/// whole for a flight recorder).
#[derive(Clone)]
enum Next {
    Read(Received),
    /// Boxed: the chain moves a `Next` a few times per record, and most
    /// are `Read`, a fraction of an event's size.
    Event(Box<InputEvent>),
}

impl Next {
    fn event_of(e: InputEvent) -> Next {
        Next::Event(Box::new(e))
    }

    fn severity(&self) -> i64 {
        match self {
            Next::Read(r) => r.severity(),
            Next::Event(e) => e.severity,
        }
    }

    fn event(&self) -> InputEvent {
        match self {
            Next::Read(r) => r.event(),
            Next::Event(e) => (**e).clone(),
        }
    }
}

/// Routes one output that is not egress.
///
/// `at` is the event that produced an action (its index in the batch and
/// the pid its resource names), when it came from one rather than from
/// closing windows or timeouts.
fn side_output(
    stats: &Stats,
    actions: &mut Actions,
    p: &mut Running,
    out: Output,
    at: Option<(usize, Option<i32>)>,
    derived: &mut Derived,
) {
    let name = p.status.name.clone();
    let now = now_unix_ns();
    match out {
        Output::Egress { .. } => {}
        Output::Log {
            name: log,
            time,
            fields,
        } => {
            stats.derived_logs.fetch_add(1, Relaxed);
            p.status.derived_logs += 1;
            p.second.emits += 1;
            derived.log(&name, convert::derived_log(&log, time, &fields, now));
        }
        Output::Metric {
            name: metric,
            labels,
            value,
            start,
            end,
        } => {
            p.status.metric_points += 1;
            p.second.emits += 1;
            let kind = p.kinds.get(&metric);
            match convert::metric(&metric, &labels, &value, start, end, kind) {
                Some(m) => {
                    stats.metric_points.fetch_add(1, Relaxed);
                    derived.metric(&name, m);
                }
                None => log_limited(
                    p,
                    derived,
                    "dtc.metric.empty",
                    &format!(
                        "metric {metric} has no value for the window (an aggregate over no events) and is not exported"
                    ),
                ),
            }
        }
        Output::Action { fired, .. } => {
            if fired {
                stats.actions_fired.fetch_add(1, Relaxed);
                p.status.actions_fired += 1;
                p.minute.actions += 1;
            }
            let pid = at.and_then(|(_, pid)| pid);
            let tape = p.tape.as_mut().map(|t| (t, at.map(|(k, _)| k)));
            if let Some(record) = actions.run(&name, &out, tape, pid) {
                announce_action(stats, actions, Some(p), &record, derived);
            }
        }
        Output::Fault { by, message, .. } => {
            stats.faults.fetch_add(1, Relaxed);
            p.status.faults += 1;
            log_limited(p, derived, "dtc.fault", &format!("{by}: {message}"));
        }
        Output::Mismatch { event, reason } => {
            stats.schema_mismatches.fetch_add(1, Relaxed);
            log_limited(
                p,
                derived,
                "dtc.schema_mismatch",
                &format!("{event} does not match its schema and was passed on unchanged: {reason}"),
            );
        }
        Output::Malformed { line, reason } => {
            stats.records_malformed.fetch_add(1, Relaxed);
            log_limited(p, derived, "dtc.malformed", &format!("{reason}: {line}"));
        }
    }
}

/// Counts a record that could not be read or shaped, and says so (at most
/// [`LOGGED_PER_SECOND`] a second).
fn malformed(stats: &Stats, window: &mut Window, derived: &mut Derived, message: &str) {
    stats.records_malformed.fetch_add(1, Relaxed);
    window.roll(Duration::from_secs(1));
    window.logged += 1;
    if window.logged <= LOGGED_PER_SECOND {
        derived
            .agent
            .push(agent_log("dtc.malformed", 13, message, &[], now_unix_ns()));
    }
}

/// Counts an action's record (per action, per program) and queues the log
/// record that announces it.
fn announce_action(
    stats: &Stats,
    actions: &Actions,
    program: Option<&mut Running>,
    record: &ActionRecord,
    derived: &mut Derived,
) {
    actions::count(stats, record);
    let class = actions::outcome_class(record);
    if let Some(p) = program {
        match class {
            "refused" => p.status.actions_refused += 1,
            "failed" => p.status.actions_failed += 1,
            _ => {}
        }
    }
    match class {
        "refused" => stats.actions_refused.fetch_add(1, Relaxed),
        "failed" => stats.actions_failed.fetch_add(1, Relaxed),
        _ => 0,
    };
    derived
        .agent
        .push(actions::announce(record, actions.spool(), now_unix_ns()));
}

/// The process a resource names as the origin of its events
/// (`process.pid`).
fn target_pid(resource: &BTreeMap<String, Json>) -> Option<i32> {
    match resource.get("process.pid")? {
        serde_json::Value::Number(n) => n.as_i64().and_then(|p| i32::try_from(p).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn log_limited(p: &mut Running, derived: &mut Derived, event: &str, message: &str) {
    p.second.roll(Duration::from_secs(1));
    p.second.logged += 1;
    if p.second.logged <= LOGGED_PER_SECOND {
        derived.agent.push(agent_log(
            event,
            13,
            message,
            &[("dtc.program", json!(p.status.name))],
            now_unix_ns(),
        ));
    }
}

/// What a program used over one batch.
struct Usage {
    /// CPU time of the pipeline thread in its pass.
    cpu: Duration,
    events: u64,
    /// Bytes of events held for its flight recorder (tape and recorder).
    recorded: u64,
}

/// A program's state bound from the analysis (the artifact's risk report),
/// split so that what the engine and agent can observe replaces what the
/// analysis had to assume.
///
/// The engine exposes the number of open windows (`finish(false)` counts
/// them) but no count of machine instances, series per window or map
/// entries; those stay at their analysed bound, which the engine enforces
/// (instances are evicted, series overflow into one). The analysis assumes
/// two windows per query: windows beyond that add their per-window bound.
/// Its flight-recorder item (an assumed size per event) is replaced by the
/// bytes actually held for the program.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct StaticMemory {
    /// Machines, processor variables and whatever else is bounded.
    fixed: u64,
    /// The queries' windows, two per query.
    windows: u64,
    queries: u64,
    /// The largest query's bound for one window.
    per_window: u64,
}

impl StaticMemory {
    fn of(risk: &serde_json::Value) -> StaticMemory {
        let mut m = StaticMemory::default();
        for item in risk["memory"]["items"].as_array().into_iter().flatten() {
            let bytes = item["bytes"].as_u64().unwrap_or(0);
            let what = item["what"].as_str().unwrap_or("");
            if what.starts_with("query `") {
                m.windows = m.windows.saturating_add(bytes);
                m.queries += 1;
                m.per_window = m.per_window.max(bytes / 2);
            } else if what != "flight recorder" {
                m.fixed = m.fixed.saturating_add(bytes);
            }
        }
        m
    }

    fn bounded(&self) -> u64 {
        self.fixed.saturating_add(self.windows)
    }

    /// The state estimate with `open_windows` windows open and `recorded`
    /// bytes of events held for the program.
    fn estimate(&self, open_windows: u64, recorded: u64) -> u64 {
        let extra = open_windows.saturating_sub(2 * self.queries);
        self.bounded()
            .saturating_add(extra.saturating_mul(self.per_window))
            .saturating_add(recorded)
    }
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
///
/// Budgets are on CPU time, not wall time: on a busy host the pipeline
/// thread waits for a core, and wall time would charge that wait to the
/// program and disable it for the host's load. Read once before and once
/// after a program's pass over a batch (a system call each, so never per
/// event) and spread over the batch's events.
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Adds a batch's usage (CPU time of the pipeline thread) to the
/// program's and disables it when a budget tripped.
fn account(stats: &Stats, b: &Budgets, p: &mut Running, usage: Usage, derived: &mut Derived) {
    let Usage {
        cpu: took,
        events,
        recorded,
    } = usage;
    p.status.events += events;
    p.status.cpu_ns += took.as_nanos() as u64;
    let mut open_windows = 0;
    if let Some(engine) = &mut p.engine {
        // Closes nothing: only counts the open windows.
        engine.finish(false);
        open_windows = engine.counters().open_windows;
        p.status.suppressed = engine.counters().suppressed;
    }
    let memory = p.memory.estimate(open_windows, recorded);
    p.status.memory_bytes = memory;
    p.second.roll(Duration::from_secs(1));
    p.minute.roll(Duration::from_secs(60));
    p.second.time += took;
    let per_event = if events > 0 {
        took / events.min(u64::from(u32::MAX)) as u32
    } else {
        Duration::ZERO
    };
    let tripped = if per_event > b.cpu_per_event {
        Some((
            "cpu_per_event",
            format!("{per_event:?} per event on average over {events} events"),
            format!("{:?}", b.cpu_per_event),
            format!("{:?}", per_event - b.cpu_per_event),
        ))
    } else if p.second.time > b.cpu_per_second {
        Some((
            "cpu_per_second",
            format!("{:?} within one second", p.second.time),
            format!("{:?}", b.cpu_per_second),
            format!("{:?}", p.second.time - b.cpu_per_second),
        ))
    } else if p.second.emits > b.emit_per_second {
        Some((
            "emit_per_second",
            format!(
                "{} logs and metric points within one second",
                p.second.emits
            ),
            b.emit_per_second.to_string(),
            (p.second.emits - b.emit_per_second).to_string(),
        ))
    } else if memory > b.memory {
        Some((
            "memory",
            format!(
                "an estimated {memory} bytes of state ({} bytes bounded by the analysis, {open_windows} open window(s), {recorded} bytes of recorded events)",
                p.memory.bounded()
            ),
            format!("{} bytes", b.memory),
            format!("{} bytes", memory - b.memory),
        ))
    } else if p.minute.actions > b.actions_per_minute {
        Some((
            "actions_per_minute",
            format!("{} actions within one minute", p.minute.actions),
            b.actions_per_minute.to_string(),
            (p.minute.actions - b.actions_per_minute).to_string(),
        ))
    } else {
        None
    };
    let Some((budget, measured, limit, over)) = tripped else {
        return;
    };
    p.engine = None;
    // What it kept for its recorder goes too (the recorder keeps what was
    // flushed, within its own bounds).
    p.tape = None;
    p.status.state = "disabled".into();
    let reason = format!("budget {budget} exceeded: {measured}, budget {limit}, over by {over}");
    eprintln!("dtc-agent: program {} disabled: {reason}", p.status.file);
    p.status.reason = Some(reason.clone());
    stats.budget_trips.fetch_add(1, Relaxed);
    let now = now_unix_ns();
    derived.agent.push(agent_log(
        "dtc.budget_exceeded",
        17,
        &format!(
            "program {} disabled, its events pass through unchanged: {reason}",
            p.status.name
        ),
        &[
            ("dtc.program", json!(p.status.name)),
            ("dtc.budget", json!(budget)),
            ("dtc.budget.limit", json!(limit)),
            ("dtc.budget.measured", json!(measured)),
            ("dtc.budget.over_by", json!(over)),
        ],
        now,
    ));
    derived.agent_metrics.push(Metric {
        name: "dtc.agent.budget_exceeded".into(),
        description: "programs disabled because a budget tripped".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![
                    key_value("program", &json!(p.status.name)),
                    key_value("budget", &json!(budget)),
                    key_value("over_by", &json!(over)),
                ],
                start_time_unix_nano: now,
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsInt(1)),
                ..NumberDataPoint::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    });
}

/// Counts and reports a record the agent could not make an event of
/// (it is passed on unchanged).
fn undecodable(stats: &Stats, window: &mut Window, derived: &mut Derived, reason: &str) {
    let what = format!("a log record could not be decoded and was passed on unchanged: {reason}");
    malformed(stats, window, derived, &what);
}

/// What `engine` produced of the event of record `k` it was pushed: its
/// egress's input (`None`: it does not leave), its edits in `edits`, and
/// its other outputs added to `outputs`.
fn drained(
    engine: &mut Runner,
    k: usize,
    produced: &mut Vec<Produced>,
    outputs: &mut Vec<(usize, Output)>,
    edits: &mut Edits,
) -> Option<InputRef> {
    let mut egress = None;
    engine.drain_lazy_into(produced);
    for out in produced.drain(..) {
        let e = match out {
            Produced::Egress(e) => Some(e),
            // Only batches make runs; one event is a run of one.
            Produced::Unchanged(run) => run.egresses().last(),
            Produced::Output(other) => {
                outputs.push((k, other));
                continue;
            }
        };
        egress = e.map(|e| {
            *edits = e.edits;
            e.input
        });
    }
    egress
}

/// Record `k`'s `edits` made to what leaves (`edited`, and `own_resource`
/// for a record whose resource they edit): the last program's edits of a
/// record no program edited before are cuts of the received record, made
/// as the export is written; others make the record anew, as the next
/// program (`later`) reads it. An error (not expected: the record was
/// checked on receipt) says why it cannot be shaped; it must then not
/// leave unshaped (it may hold what redaction removes), and is kept back.
fn leave_edited(
    request: &wire::Request,
    k: usize,
    edits: &[Edit],
    later: bool,
    edited: &mut wire::Edited,
    own_resource: &mut Vec<(usize, Resource)>,
) -> Result<(), String> {
    let spliced = match edited.is_edited(k) || later {
        true => None,
        false => convert::splice_received(request, k, edits, edited),
    };
    let done = match spliced {
        Some(done) => done.map(|()| None)?,
        None => Some(match edited.whole(k) {
            Some(current) => convert::edit_record(current, edits)?,
            None => convert::edit_received(request, k, edits)?,
        }),
    };
    let Some((bytes, resource_edit)) = done else {
        return Ok(());
    };
    edited.set_whole(k, bytes);
    if resource_edit {
        let own = match own_resource.iter().position(|(j, _)| *j == k) {
            Some(i) => &mut own_resource[i].1,
            None => {
                let r = request
                    .resource(request.records[k].resource)
                    .unwrap_or_default();
                own_resource.push((k, r));
                &mut own_resource.last_mut().expect("pushed").1
            }
        };
        convert::edit_resource(own, edits);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::Item;
    use crate::wire::tests::{Rng, parsed_requests};
    use std::path::Path;

    /// A pipeline with the program `source` loaded (in folder `dir`), the
    /// lean loop on or off, and the far end of its export queue.
    fn loaded(
        dir: &Path,
        source: &str,
        lean: bool,
    ) -> (Pipeline, tokio::sync::mpsc::UnboundedReceiver<Item>) {
        std::fs::create_dir_all(dir).unwrap();
        let text = "[artifacts]\ndir = \"programs\"\n[spool]\ndir = \"spool\"\n";
        let config = crate::config::Config::parse(text, "test.toml", dir).unwrap();
        let session = dtc_driver::Session::new(dtc_driver::RealFs);
        let out = session.check_source("test.dt", source);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        let bytes = out.artifact("test").unwrap().unwrap();
        let policy = crate::loader::load_policy(None).unwrap();
        let (artifact, actions) =
            crate::loader::verify(&bytes, &policy, &[], &config.budgets).unwrap();
        let stats = Arc::new(Stats::default());
        let (export, exported) = crate::exporter::queue(&config.exporter, stats.clone());
        let mut budgets = config.budgets.clone();
        budgets.cpu_per_event = Duration::from_secs(1);
        budgets.cpu_per_second = Duration::from_secs(3600);
        let acts = Actions::new(&config.spool, &config.actions).unwrap();
        let ripcord = Arc::new(AtomicBool::new(false));
        let mut pipeline = Pipeline::new(budgets, stats, export, ripcord, acts, None);
        pipeline.lean = lean;
        pipeline.control(Control::Programs(vec![Arc::new(crate::loader::Loaded {
            file: "test.dtx".into(),
            digest: [0; 32],
            metadata: artifact.metadata,
            program: artifact.program,
            actions,
        })]));
        (pipeline, exported)
    }

    /// A program of redactions alone, given each record straight from
    /// the request (`Pipeline::redacting_alone`), makes what the general
    /// loop makes over generated and mutated requests: the records sent
    /// on, byte for byte, the counts, and what the engine counted.
    #[test]
    fn redactions_alone_leave_what_the_general_loop_leaves() {
        let programs = [
            "event LogWelcomeBanner { secret: string }\n\
             redact LogWelcomeBanner.secret with drop",
            "event LogWelcomeBanner { secret: string?, seq: int? }\n\
             event E { secret: string, thread: int? @attr(\"thread.id\") }\n\
             redact LogWelcomeBanner.secret with mask\n\
             redact LogWelcomeBanner.seq with hash\n\
             redact E.secret with drop",
        ];
        let dir = std::env::temp_dir().join(format!("dtc-agent-lean-{}", std::process::id()));
        let stats = |p: &Pipeline| {
            let s = &p.stats;
            [
                &s.records_in,
                &s.records_out,
                &s.records_suppressed,
                &s.records_malformed,
                &s.schema_mismatches,
            ]
            .map(|c| c.load(Relaxed))
        };
        for (i, source) in programs.iter().enumerate() {
            let (mut lean, mut lean_out) = loaded(&dir.join(format!("lean{i}")), source, true);
            let (mut general, mut general_out) =
                loaded(&dir.join(format!("general{i}")), source, false);
            assert!(lean.redacting_alone().is_some());
            assert!(general.redacting_alone().is_none());
            let raw = |out: &mut tokio::sync::mpsc::UnboundedReceiver<Item>| {
                let mut raw = Vec::new();
                while let Ok(item) = out.try_recv() {
                    if let Item::RawLogs(bytes, n) = item {
                        raw.push((bytes, n));
                    }
                }
                raw
            };
            let (mut records, mut edited) = (0, 0);
            for request in parsed_requests(Rng(13 << 32 | i as u64), 600) {
                let n = request.len() as u64;
                records += n;
                let before = request.bytes.clone();
                lean.process(Batch {
                    request: request.clone(),
                    records: n,
                });
                general.process(Batch {
                    request,
                    records: n,
                });
                let (a, b) = (raw(&mut lean_out), raw(&mut general_out));
                assert_eq!(a, b, "program {i}");
                // A resource sent on as it came is a slice of the request.
                let within = before.as_ptr_range();
                edited += a
                    .iter()
                    .filter(|(b, _)| !within.contains(&b.as_ptr()))
                    .count();
            }
            assert_eq!(stats(&lean), stats(&general), "program {i}");
            let counters = |p: &Pipeline| p.programs[0].engine.as_ref().unwrap().counters().clone();
            assert_eq!(counters(&lean), counters(&general), "program {i}");
            assert!(
                records > 500 && edited > 50,
                "{records} records, {edited} edited"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An idle pipeline handles the rip cord as soon as it is pulled, not
    /// at its next tick (here an hour away).
    #[test]
    fn the_rip_cord_wakes_an_idle_pipeline() {
        let dir = std::env::temp_dir().join(format!("dtc-agent-wake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "[artifacts]\ndir = \"programs\"\n[spool]\ndir = \"spool\"\n";
        let config = crate::config::Config::parse(text, "test.toml", &dir).unwrap();
        let stats = Arc::new(Stats::default());
        let (export, _exported) = crate::exporter::queue(&config.exporter, stats.clone());
        let actions = Actions::new(&config.spool, &config.actions).unwrap();
        let ripcord = Arc::new(AtomicBool::new(false));
        let (work, work_rx) = std::sync::mpsc::sync_channel(4);
        let (control, control_rx) = std::sync::mpsc::channel();
        let (budgets, shared, flag) = (config.budgets.clone(), stats.clone(), ripcord.clone());
        let thread = std::thread::spawn(move || {
            let mut pipeline = Pipeline::new(budgets, shared, export, flag, actions, None);
            pipeline.tick = Duration::from_secs(3600);
            pipeline.run(work_rx, control_rx)
        });
        // Let it settle into its wait.
        std::thread::sleep(Duration::from_millis(50));
        let admin = crate::admin::Admin {
            stats,
            ripcord,
            control,
            wake: work,
        };
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        admin.pull(Some(reply));
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = loop {
            match answer.try_recv() {
                Ok(report) => break report,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no answer from the pipeline: {e}"),
            }
        };
        assert_eq!(report.programs_disabled, 0);
        drop(admin);
        thread.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_memory_estimate_replaces_assumptions_with_what_is_seen() {
        let risk = json!({ "memory": { "items": [
            { "what": "machine `m`", "bytes": 1000 },
            { "what": "query `q` windows", "bytes": 400 },
            { "what": "query `r` windows", "bytes": 100 },
            { "what": "flight recorder", "bytes": 1_024_000 },
        ]}});
        let m = StaticMemory::of(&risk);
        assert_eq!(m.bounded(), 1500);
        // Up to two windows per query are in the bound.
        assert_eq!(m.estimate(4, 0), 1500);
        // Each window more counts the largest per-window bound.
        assert_eq!(m.estimate(6, 0), 1500 + 2 * 200);
        // Recorded events count as held, not as assumed.
        assert_eq!(m.estimate(1, 3000), 4500);
        assert_eq!(StaticMemory::of(&json!({})).estimate(0, 0), 0);
    }

    /// The budget clock counts the thread's work, not time spent waiting.
    #[test]
    fn thread_cpu_time_ignores_sleep_and_counts_work() {
        let before = thread_cpu();
        std::thread::sleep(Duration::from_millis(100));
        let slept = thread_cpu() - before;
        assert!(slept < Duration::from_millis(20), "{slept:?} while asleep");
        let before = thread_cpu();
        let wall = Instant::now();
        let mut x = 1u64;
        while wall.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let worked = thread_cpu() - before;
        // At least some of the 50 ms of spinning ran on a core, however
        // busy the machine.
        assert!(
            worked > Duration::from_millis(1),
            "{worked:?} while spinning"
        );
        assert!(
            worked <= wall.elapsed() + Duration::from_millis(5),
            "{worked:?}"
        );
    }
}
