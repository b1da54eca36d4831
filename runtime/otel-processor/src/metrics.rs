//! Derived metrics: where the points a program's queries emit at window
//! close go.
//!
//! Two sinks, chosen when the processor is built:
//!
//! - **A `Meter`** ([`MetricSink::Meter`]): each point is recorded through
//!   an instrument named after the metric, by the aggregate that made it, as
//!   the agent exports them: `count`/`count_if` add to a `u64` counter and
//!   `sum` to an `f64` up-down counter (the window's value is the delta),
//!   `min`/`max`/`avg`/`percentile`/`distinct_count` set an `f64` gauge;
//!   labels become attributes; durations are seconds with unit `s`. The
//!   SDK stamps measurements with the clock, not the window, and the
//!   instrument API cannot take a histogram's ready-made buckets, so
//!   `histogram` points and points without a value (an aggregate over
//!   nothing) are not recorded there: they are counted
//!   (`metric_points_unrecorded`) and reach a callback unchanged.
//! - **A callback** ([`MetricSink::Callback`]): gets every point whole
//!   ([`MetricPoint`]: window start and end, histogram buckets), for an
//!   application that exports them itself.
//!
//! Both run on the processor's engine thread, in window order.

use std::collections::HashMap;

use dtc_engine::MetricValue;
use dtc_ir::AggKind;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter, UpDownCounter};

/// One metric point, as the engine produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The program's name.
    pub program: String,
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: MetricValue,
    /// The window, nanoseconds since the Unix epoch (event time).
    pub start: i64,
    pub end: i64,
    /// The aggregate that made the point, when the program says.
    pub kind: Option<AggKind>,
}

/// Where derived metric points go (see the module docs).
pub enum MetricSink {
    /// Nowhere: every point is counted as unrecorded.
    None,
    Meter(Meter),
    Callback(Box<dyn FnMut(&MetricPoint) + Send>),
}

/// Shared with the agent: the aggregate behind each metric name.
pub use dtc_engine::output::metric_kinds;

enum Instrument {
    Counter(Counter<u64>),
    UpDown(UpDownCounter<f64>),
    Gauge(Gauge<f64>),
}

/// Records points through a `Meter`, one instrument per metric name and
/// kind, made on first use.
pub(crate) struct MeterRecorder {
    meter: Meter,
    instruments: HashMap<(String, u8), Instrument>,
}

impl MeterRecorder {
    pub(crate) fn new(meter: Meter) -> MeterRecorder {
        MeterRecorder {
            meter,
            instruments: HashMap::new(),
        }
    }

    /// Records one point; `false` when the point has no form an instrument
    /// takes (a histogram, no value).
    pub(crate) fn record(&mut self, point: &MetricPoint) -> bool {
        let (value, unit) = match &point.value {
            MetricValue::Int(i) => (*i as f64, ""),
            MetricValue::Float(f) => (*f, ""),
            MetricValue::Seconds(s) => (*s, "s"),
            MetricValue::Histogram { .. } | MetricValue::None => return false,
        };
        let attributes: Vec<KeyValue> = point
            .labels
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let class = match point.kind {
            Some(AggKind::Count | AggKind::CountIf) => 0,
            Some(AggKind::Sum) => 1,
            _ => 2,
        };
        let meter = &self.meter;
        let instrument = self
            .instruments
            .entry((point.name.clone(), class))
            .or_insert_with(|| {
                let name = point.name.clone();
                match class {
                    0 => Instrument::Counter(meter.u64_counter(name).with_unit(unit).build()),
                    1 => {
                        Instrument::UpDown(meter.f64_up_down_counter(name).with_unit(unit).build())
                    }
                    _ => Instrument::Gauge(meter.f64_gauge(name).with_unit(unit).build()),
                }
            });
        match instrument {
            Instrument::Counter(c) => match &point.value {
                MetricValue::Int(i) if *i >= 0 => c.add(*i as u64, &attributes),
                _ => return false,
            },
            Instrument::UpDown(c) => c.add(value, &attributes),
            Instrument::Gauge(g) => g.record(value, &attributes),
        }
        true
    }
}
