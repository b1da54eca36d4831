//! [`DtcLogProcessor`]: the `LogProcessor` that runs artifacts over the
//! application's records, as a decorator around an inner processor, and
//! its [`Builder`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use dtc_engine::Options;
use dtc_ir::Program;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::Severity;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};

use std::collections::{BTreeMap, HashMap};

use dtc_engine::Output;
use dtc_engine::event::InputEvent;
use serde_json::Value as Json;

use crate::chain::{
    Verdict, has_state, layouts, program_name, reads_resource, shape, shaping_is_stateless,
    shaping_part, stateful_part,
};
use crate::local::{Shapers, with_engines};
use crate::mapping::{reshape, to_event, value_json};
use crate::metrics::{MetricPoint, MetricSink};
use crate::stats::{Counters, Stats};
use crate::worker::{Derived, Reply, Request, Worker};

/// How many requests may wait for the engine thread; past that, `emit`
/// waits (memory stays bounded, nothing is dropped).
const QUEUE: usize = 4096;

/// Why a processor could not be built. Nothing is half-loaded: one bad
/// artifact refuses the whole processor.
#[derive(Debug)]
pub enum Error {
    /// An artifact file could not be read.
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An artifact was refused (truncated, foreign, another version,
    /// corrupted, or its program does not verify).
    Artifact {
        name: String,
        error: dtc_artifact::Error,
    },
    /// The builder was given no artifact.
    NoArtifact,
    /// The engine thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, error } => {
                write!(f, "cannot read the artifact `{}`: {error}", path.display())
            }
            Error::Artifact { name, error } => write!(
                f,
                "the artifact `{name}` is refused: {error}; compile the program again with `dtc compile`"
            ),
            Error::NoArtifact => f.write_str(
                "no artifact to run: give the builder at least one `.dtx` (`Builder::artifact_file`)",
            ),
            Error::Thread(e) => write!(f, "cannot start the dtc engine thread: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Builds a [`DtcLogProcessor`]: the artifacts to run, in order, and where
/// derived metrics go.
pub struct Builder {
    programs: Vec<Program>,
    options: Options,
    metrics: MetricSink,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.programs.iter().map(program_name).collect();
        f.debug_struct("Builder")
            .field("programs", &names)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            programs: Vec::new(),
            options: Options::default(),
            metrics: MetricSink::None,
        }
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Adds an artifact from its bytes; `name` says which in an error. The
    /// artifact is decoded and verified (format, checksum, IR verifier).
    pub fn artifact(mut self, name: &str, bytes: &[u8]) -> Result<Builder, Error> {
        let artifact = dtc_artifact::decode(bytes).map_err(|error| Error::Artifact {
            name: name.to_string(),
            error,
        })?;
        self.programs.push(artifact.program);
        Ok(self)
    }

    /// Adds an artifact from a `.dtx` file.
    pub fn artifact_file(self, path: impl AsRef<Path>) -> Result<Builder, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| Error::Read {
            path: path.to_path_buf(),
            error,
        })?;
        self.artifact(&path.display().to_string(), &bytes)
    }

    /// The engine's options: sampling seed and the key of hash redaction
    /// (set a secret key in production, so hashed values cannot be
    /// recomputed from guesses).
    pub fn options(mut self, options: Options) -> Builder {
        self.options = options;
        self
    }

    /// Records derived metrics through `meter` (see [`crate::metrics`]).
    pub fn meter(mut self, meter: Meter) -> Builder {
        self.metrics = MetricSink::Meter(meter);
        self
    }

    /// Gives every derived metric point to `callback`, on the engine thread.
    pub fn on_metric(mut self, callback: impl FnMut(&MetricPoint) + Send + 'static) -> Builder {
        self.metrics = MetricSink::Callback(Box::new(callback));
        self
    }

    /// Starts the engine thread and wraps `inner`, which gets every record
    /// that leaves.
    pub fn build<P: LogProcessor + 'static>(self, inner: P) -> Result<DtcLogProcessor<P>, Error> {
        if self.programs.is_empty() {
            return Err(Error::NoArtifact);
        }
        let counters = Arc::new(Counters::default());
        let scopes = self
            .programs
            .iter()
            .map(|p| {
                InstrumentationScope::builder(program_name(p))
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build()
            })
            .collect();
        // Shaping on the application's threads when no rule keeps state;
        // then only programs with queries, machines or processors are fed
        // to the engine thread.
        let fed = self.programs.iter().all(shaping_is_stateless);
        let with_resource = self.programs.iter().any(reads_resource);
        let (shapers, worker_programs, feeds) = if fed {
            let shapers = Shapers {
                programs: self.programs.iter().map(shaping_part).collect(),
                options: self.options.clone(),
            };
            let feeds: Vec<Option<HashMap<String, u32>>> = self
                .programs
                .iter()
                .map(|p| has_state(p).then(|| layouts(p)))
                .collect();
            let parts = self
                .programs
                .into_iter()
                .map(|p| has_state(&p).then(|| stateful_part(p)))
                .collect();
            (Some(Arc::new(shapers)), parts, feeds)
        } else {
            (
                None,
                self.programs.into_iter().map(Some).collect(),
                Vec::new(),
            )
        };
        let (requests, receiver) = sync_channel(QUEUE);
        let (options, metrics) = (self.options, self.metrics);
        let worker_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("dtc-otel-engine".into())
            .spawn(move || {
                Worker::new(worker_programs, fed, options, metrics, worker_counters)
                    .serve(receiver, with_resource)
            })
            .map_err(Error::Thread)?;
        Ok(DtcLogProcessor {
            inner: Arc::new(inner),
            inner_given: Once::new(),
            requests,
            thread: Mutex::new(Some(thread)),
            counters,
            scopes,
            shapers,
            feeds,
            with_resource,
            resource: BTreeMap::new(),
        })
    }
}

/// A `LogProcessor` that runs dtc programs over every record before `inner`
/// sees it (see the crate docs).
pub struct DtcLogProcessor<P> {
    /// Shared with the engine thread (fed mode) from the first record on;
    /// until then, ours alone, so `set_resource` can reach it.
    inner: Arc<P>,
    inner_given: Once,
    requests: SyncSender<Request>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// One per program: the scope of the records it derives.
    scopes: Vec<InstrumentationScope>,
    /// Set when shaping runs on the application's threads (fed mode).
    shapers: Option<Arc<Shapers>>,
    /// Fed mode: for each program with queries, machines or processors,
    /// the events it receives (by durable ID).
    feeds: Vec<Option<HashMap<String, u32>>>,
    /// Whether some program reads the resource.
    with_resource: bool,
    /// The provider's resource attributes, for events shaped here.
    resource: BTreeMap<String, Json>,
}

impl<P: fmt::Debug> fmt::Debug for DtcLogProcessor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.scopes.iter().map(|s| s.name()).collect();
        f.debug_struct("DtcLogProcessor")
            .field("programs", &names)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<P> DtcLogProcessor<P> {
    /// What the processor has counted so far.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// A handle to the counters that outlives the processor being moved
    /// into a provider.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.counters.clone())
    }
}

/// Reads a processor's counters after the provider took the processor.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    pub fn stats(&self) -> Stats {
        self.0.snapshot()
    }
}

impl<P: LogProcessor + 'static> DtcLogProcessor<P> {
    fn emit_derived(&self, derived: Vec<Derived>) {
        for (pi, mut record) in derived {
            if let Some(scope) = self.scopes.get(pi) {
                Counters::bump(&self.counters.derived_logs);
                self.inner.emit(&mut record, scope);
            }
        }
    }

    fn pass(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        Counters::bump(&self.counters.passed);
        self.inner.emit(data, scope);
    }

    /// The engine thread's answer for one event; `None` when it is not
    /// running.
    fn ask(&self, event: InputEvent) -> Option<Reply> {
        let (reply, answer) = sync_channel(1);
        self.requests.send(Request::Record { event, reply }).ok()?;
        answer.recv().ok()
    }

    /// Fed mode: shapes the event on this thread, feeding the engine
    /// thread the events its programs need on the way.
    fn shape_here(&self, shapers: &Arc<Shapers>, mut event: InputEvent) -> Verdict {
        if self.with_resource {
            event.resource.clone_from(&self.resource);
        }
        let c = &self.counters;
        let feed = |pi: usize, e: &InputEvent| {
            if let Some(Some(receives)) = self.feeds.get(pi) {
                // An event the program does not receive only moves its
                // clock (timeouts, windows): its time is all it needs.
                let event = if e.name.as_ref().is_some_and(|n| receives.contains_key(n)) {
                    e.clone()
                } else {
                    InputEvent {
                        time: e.time,
                        observed_time: e.observed_time,
                        ..InputEvent::default()
                    }
                };
                let request = Request::Feed { program: pi, event };
                if self.requests.send(request).is_err() {
                    Counters::bump(&c.not_fed);
                }
            }
        };
        let other = |_: usize, program: &crate::chain::Loaded, output: Output| {
            if let Output::Mismatch { event, reason } = output {
                Counters::bump(&c.schema_mismatches);
                c.problem(format!(
                    "program `{}`: a {event} record does not match its schema ({reason}); passed on unchanged",
                    program.name
                ));
            }
        };
        with_engines(shapers, |engines| shape(engines, event, c, feed, other))
    }
}

impl<P: LogProcessor + 'static> LogProcessor for DtcLogProcessor<P> {
    fn emit(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let c = &self.counters;
        Counters::bump(&c.records);
        let event = match to_event(data) {
            Ok(event) => event,
            Err(reason) => {
                Counters::bump(&c.malformed);
                c.problem(format!(
                    "a record is not an event ({reason}); passed on unchanged"
                ));
                return self.pass(data, scope);
            }
        };
        let verdict = match &self.shapers {
            Some(shapers) => {
                self.inner_given.call_once(|| {
                    let inner: Arc<dyn LogProcessor> = self.inner.clone();
                    let _ = self
                        .requests
                        .send(Request::Inner(inner, self.scopes.clone()));
                });
                self.shape_here(shapers, event)
            }
            None => {
                let Some(Reply { verdict, derived }) = self.ask(event) else {
                    Counters::bump(&c.unprocessed);
                    return self.pass(data, scope);
                };
                self.emit_derived(derived);
                verdict
            }
        };
        match verdict {
            Verdict::Pass => self.pass(data, scope),
            Verdict::Suppress => Counters::bump(&c.suppressed),
            Verdict::Rewrite { original, shaped } => {
                *data = reshape(data, &original, &shaped);
                Counters::bump(&c.rewritten);
                self.pass(data, scope);
            }
        }
    }

    /// Waits until the engine thread has done every record before, then
    /// flushes the inner processor. Open windows stay open.
    fn force_flush(&self) -> OTelSdkResult {
        let (reply, answer) = sync_channel(1);
        if self.requests.send(Request::Flush(reply)).is_ok() {
            let _ = answer.recv();
        }
        self.inner.force_flush()
    }

    /// Closes every open window (their metrics and derived logs go out),
    /// stops the engine thread, then shuts the inner processor down.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(thread) = thread else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        let (reply, answer) = sync_channel(1);
        let mut result = Ok(());
        if self.requests.send(Request::Finish(reply)).is_ok() {
            match answer.recv_timeout(timeout) {
                Ok(derived) => {
                    self.emit_derived(derived);
                    let _ = thread.join();
                }
                Err(RecvTimeoutError::Timeout) => result = Err(OTelSdkError::Timeout(timeout)),
                Err(RecvTimeoutError::Disconnected) => {
                    result = Err(OTelSdkError::InternalFailure(
                        "the dtc engine thread ended before closing its windows".into(),
                    ))
                }
            }
        }
        let inner = self.inner.shutdown_with_timeout(timeout);
        result.and(inner)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.set_resource(resource),
            None => self.counters.problem(
                "the resource was set after the first record: the inner processor keeps its old one"
                    .into(),
            ),
        }
        let attributes: BTreeMap<String, Json> = resource
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), value_json(v)))
            .collect();
        self.resource.clone_from(&attributes);
        // A stopped engine has no use for it.
        let _ = self.requests.send(Request::Resource(attributes));
    }
}
