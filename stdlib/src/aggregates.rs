//! Aggregates: only valid as the columns of a `summarize` stage.

use crate::Signature;
use crate::ty::{Pattern as P, Returns as R, req};

pub static AGGREGATES: &[Signature] = &[
    Signature {
        name: "count",
        params: &[],
        returns: R::Int,
        doc: "The number of rows in the window.",
    },
    Signature {
        name: "count_if",
        params: &[req("condition", P::Bool)],
        returns: R::Int,
        doc: "The number of rows for which the condition holds.",
    },
    Signature {
        name: "sum",
        params: &[req("value", P::Measure)],
        returns: R::SameAs(0),
        doc: "The sum of the values.",
    },
    Signature {
        name: "min",
        params: &[req("value", P::Ordered)],
        returns: R::SameAs(0),
        doc: "The smallest value.",
    },
    Signature {
        name: "max",
        params: &[req("value", P::Ordered)],
        returns: R::SameAs(0),
        doc: "The largest value.",
    },
    Signature {
        name: "avg",
        params: &[req("value", P::Measure)],
        returns: R::AverageOf(0),
        doc: "The mean of the values: a float for numbers, a duration for durations.",
    },
    Signature {
        name: "histogram",
        params: &[req("value", P::Measure)],
        returns: R::Histogram,
        doc: "The distribution of the values, exported as an OpenTelemetry histogram.",
    },
    Signature {
        name: "percentile",
        params: &[req("value", P::Measure), req("p", P::Numeric)],
        returns: R::AverageOf(0),
        doc: "The `p`-th percentile (0 to 100) of the values.",
    },
    Signature {
        name: "distinct_count",
        params: &[req("value", P::Scalar)],
        returns: R::Int,
        doc: "The number of distinct values (an estimate above 10,000).",
    },
];

pub fn get(name: &str) -> Option<&'static Signature> {
    AGGREGATES.iter().find(|f| f.name == name)
}
