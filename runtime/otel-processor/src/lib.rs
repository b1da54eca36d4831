//! Embedded mode: dtc programs run inside the application, as a log
//! processor of the OpenTelemetry Rust SDK.
//!
//! [`DtcLogProcessor`] decorates an inner processor (a `SimpleLogProcessor`
//! or `BatchLogProcessor` with the application's exporter). Every record
//! the application logs is mapped to an event ([`mapping`], the same rules
//! as the engine's OTLP mapping) and run through the loaded artifacts, in
//! order; then:
//!
//! - a record a program **suppresses** (or samples out, or rate-limits) is
//!   not passed on;
//! - a record whose fields shaping **redacts** (hash, mask, drop) is passed
//!   on edited: the inner processor never sees the clear value;
//! - any other record is passed on untouched;
//! - a **derived log** (`emit log`) is passed on as a new record, in the
//!   scope named after its program: in fed mode (below) from the engine
//!   thread as soon as it is made (a `force_flush` waits for it), in asked
//!   mode just before the record that caused it;
//! - a **derived metric** goes to the sink the builder was given: an
//!   OpenTelemetry `Meter`, or a callback ([`metrics`]);
//! - a **triggered action** is reported as a `dtc.action` record: embedded
//!   mode runs no diagnostic action (no perf, no core dump, no flight
//!   recorder file in the application's process); the agent does;
//! - a record that is not an event, or does not match its schema, is
//!   counted and passed on unchanged, never dropped ([`Stats`]); a program
//!   whose engine panics is disabled and counted, and the record it
//!   panicked on passes on.
//!
//! Artifacts are decoded and verified when the processor is built
//! ([`Builder::artifact`]): a refused artifact refuses the whole processor
//! with an error saying why, so nothing runs half-loaded.
//!
//! The engine is not `Send` (it shares values through `Rc`), and no
//! `unsafe` lets it move: an engine stays on the thread that made it.
//! Shaping reads nothing but the record, so when no program has a rule with
//! state of its own (`sample`, `limit`), each application thread shapes its
//! records on engines of its own (**fed mode**: no waiting on another
//! thread); when a program has queries, machines or processors, each
//! record also goes, without waiting, to one engine thread that keeps their
//! state (a record the program does not receive goes as its time alone,
//! which moves windows and timeouts). Otherwise (**asked mode**) every `emit` sends its event to
//! the engine thread and waits for the verdict. Windows, machines and
//! budgets use the records' own times, as everywhere in dtc. `shutdown`
//! closes the open windows so their metrics go out. `docs/performance.md`
//! ("Embedded processor") has the cost per record.
//!
//! ```no_run
//! use opentelemetry_sdk::logs::{SdkLoggerProvider, SimpleLogProcessor};
//! # fn demo(exporter: impl opentelemetry_sdk::logs::LogExporter + 'static) -> Result<(), dtc_otel::Error> {
//! let processor = dtc_otel::Builder::new()
//!     .artifact_file("redact.dtx")?
//!     .build(SimpleLogProcessor::new(exporter))?;
//! let provider = SdkLoggerProvider::builder().with_log_processor(processor).build();
//! # Ok(()) }
//! ```

mod chain;
mod local;
pub mod mapping;
pub mod metrics;
mod processor;
mod stats;
mod worker;

pub use metrics::{MetricPoint, MetricSink};
pub use processor::{Builder, DtcLogProcessor, Error, StatsHandle};
pub use stats::Stats;
