//! The dtc runtime: runs verified IR programs over streams of events.
//!
//! [`event`] decodes input (JSON lines, OTLP/JSON) into events, [`value`]
//! decodes them once against their event layout, [`interp`] is the
//! reference interpreter of the IR (the definition of the semantics), and
//! [`runtime`] holds everything around it: dispatch by durable ID, shaping,
//! query windows on event time, machine instances and timeouts, processor
//! state, budgets, and the [`output`] records a run produces.

pub mod event;
pub mod exec;
pub mod generate;
pub mod interp;
pub mod output;
pub mod runtime;
pub mod slots;
pub mod value;

pub use output::{
    Counters, Edit, Edits, Egress, InputRef, MetricValue, Output, Produced, Text, Unchanged,
};
pub use runtime::{Batch, Engine, Options};
