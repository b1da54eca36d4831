//! What the processor counted. Nothing is dropped silently: every record
//! the processor did not pass on as the application logged it, and every
//! derived point it could not deliver, is counted here, and the last such
//! problem is kept as a sentence.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the processor's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records the application emitted through the processor.
    pub records: u64,
    /// Records handed on to the inner processor (changed or not).
    pub passed: u64,
    /// Records a program suppressed (sampled out, rate limited too).
    pub suppressed: u64,
    /// Passed records that shaping edited (a field hashed, masked, dropped).
    pub rewritten: u64,
    /// Records that are not events (a time past 2262): passed on unchanged.
    pub malformed: u64,
    /// Records that do not match their event's schema: passed on unchanged.
    pub schema_mismatches: u64,
    /// Records passed on unchanged because no engine ran them (after
    /// shutdown, or the engine thread is gone).
    pub unprocessed: u64,
    /// Records the programs' queries, machines and processors did not see
    /// because the engine thread had stopped (they were shaped all the same).
    pub not_fed: u64,
    /// Logs the programs emitted (`emit log`), handed on as new records.
    pub derived_logs: u64,
    /// Actions triggered (or refused by budget), reported as `dtc.action`
    /// records; the embedded processor runs none.
    pub action_reports: u64,
    /// Handlers that stopped early, reported as `dtc.fault` records.
    pub faults: u64,
    /// Metric points given to the metric sink.
    pub metric_points: u64,
    /// Metric points the sink could not take (no sink, a histogram for a
    /// `Meter`, a callback that panicked).
    pub metric_points_unrecorded: u64,
    /// Programs disabled because they panicked.
    pub programs_disabled: u64,
    /// Derived log names not kept because too many distinct names were.
    pub names_not_interned: u64,
    /// Failures of the processor itself (a shaped event it could not read
    /// back): the record passed on as it was.
    pub internal_errors: u64,
    /// The last problem, as a sentence.
    pub last_problem: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub passed: AtomicU64,
    pub suppressed: AtomicU64,
    pub rewritten: AtomicU64,
    pub malformed: AtomicU64,
    pub schema_mismatches: AtomicU64,
    pub unprocessed: AtomicU64,
    pub not_fed: AtomicU64,
    pub derived_logs: AtomicU64,
    pub action_reports: AtomicU64,
    pub faults: AtomicU64,
    pub metric_points: AtomicU64,
    pub metric_points_unrecorded: AtomicU64,
    pub programs_disabled: AtomicU64,
    pub names_not_interned: AtomicU64,
    pub internal_errors: AtomicU64,
    last_problem: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn problem(&self, text: String) {
        *self
            .last_problem
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(text);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            records: get(&self.records),
            passed: get(&self.passed),
            suppressed: get(&self.suppressed),
            rewritten: get(&self.rewritten),
            malformed: get(&self.malformed),
            schema_mismatches: get(&self.schema_mismatches),
            unprocessed: get(&self.unprocessed),
            not_fed: get(&self.not_fed),
            derived_logs: get(&self.derived_logs),
            action_reports: get(&self.action_reports),
            faults: get(&self.faults),
            metric_points: get(&self.metric_points),
            metric_points_unrecorded: get(&self.metric_points_unrecorded),
            programs_disabled: get(&self.programs_disabled),
            names_not_interned: get(&self.names_not_interned),
            internal_errors: get(&self.internal_errors),
            last_problem: self
                .last_problem
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}
