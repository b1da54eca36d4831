//! The dtc side of the comparison: the reference interpreter running each
//! workload's program, and the hand-written Rust baseline of the same logic
//! (copied from the engine's benchmark, with the engine's own hash key).
//!
//! Every run returns the workload's *result* (see [`crate::Result`]) so the
//! benchmark can check that all engines did the same work.

use std::collections::HashMap;
use std::hint::black_box;

use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Engine, MetricValue, Options, Output};
use serde_json::Value as Json;

use crate::stream::{MINUTE, SLOW};

/// Decodes JSON lines (flat or OTLP/JSON) into events; malformed lines are
/// counted in the second value, never dropped silently.
pub fn decode_all(lines: &[String]) -> (Vec<InputEvent>, u64) {
    let mut malformed = 0;
    let mut events = Vec::with_capacity(lines.len());
    for input in lines.iter().flat_map(|l| decode_line(l)) {
        match input {
            Input::Event(e) => events.push(e),
            Input::Malformed { .. } => malformed += 1,
        }
    }
    (events, malformed)
}

/// What the interpreter's outputs add to a workload's result: the errors
/// counted (1), the (window, path) groups (2), the slow hashes (3), the
/// events that egress redacted (4).
fn tally(workload: usize, outputs: Vec<Output>) -> u64 {
    let mut n = 0;
    for o in outputs {
        n += match (workload, o) {
            (
                0,
                Output::Metric {
                    value: MetricValue::Int(c),
                    ..
                },
            ) => c.max(0) as u64,
            (1, Output::Metric { .. }) => 1,
            (2, Output::Log { name, .. }) => u64::from(name == "Slow"),
            (3, Output::Egress { event }) => u64::from(event.get("ip").is_none()),
            _ => 0,
        };
    }
    n
}

/// Events or lines a dtc engine takes at a time: the runtime's batch API,
/// under which the JIT runs each query's event-only `where` stages as one
/// compiled loop.
pub const BATCH: usize = 1024;

/// A dtc engine as the benchmark drives it: the interpreter's
/// [`Engine`] or the JIT's engine (see [`crate::jit`]).
pub trait Runner {
    fn push_events(&mut self, events: impl Iterator<Item = InputEvent>);
    fn push_lines(&mut self, lines: &[String]);
    fn finish(&mut self, until_end: bool);
    fn drain(&mut self) -> Vec<Output>;
}

impl Runner for Engine {
    fn push_events(&mut self, events: impl Iterator<Item = InputEvent>) {
        Engine::push_events(self, events)
    }
    fn push_lines(&mut self, lines: &[String]) {
        Engine::push_lines(self, lines.iter().map(String::as_str))
    }
    fn finish(&mut self, until_end: bool) {
        Engine::finish(self, until_end)
    }
    fn drain(&mut self) -> Vec<Output> {
        Engine::drain(self)
    }
}

/// Runs decoded events through an engine in batches of [`BATCH`], all
/// windows flushed at the end; the workload's result.
pub fn run_events(workload: usize, engine: &mut impl Runner, events: Vec<InputEvent>) -> u64 {
    let mut result = 0;
    let mut events = events.into_iter();
    while events.len() > 0 {
        engine.push_events(events.by_ref().take(BATCH));
        result += tally(workload, engine.drain());
    }
    engine.finish(true);
    result + tally(workload, engine.drain())
}

/// Runs input lines through an engine in batches of [`BATCH`], decoding
/// included; the workload's result.
pub fn run_lines(workload: usize, engine: &mut impl Runner, lines: &[String]) -> u64 {
    let mut result = 0;
    for chunk in lines.chunks(BATCH) {
        engine.push_lines(chunk);
        result += tally(workload, engine.drain());
    }
    engine.finish(true);
    result + tally(workload, engine.drain())
}

/// The interpreter for a workload's program.
pub fn interp(program: &dtc_ir::Program) -> Engine {
    Engine::new(program.clone(), Options::default())
}

/// The hand-written baseline from input lines, decoding included.
pub fn baseline_lines(workload: usize, lines: &[String]) -> u64 {
    let (events, _malformed) = decode_all(lines);
    baseline(workload, &events)
}

/// The same logic by hand, on decoded events (the kernel measure).
pub fn baseline(workload: usize, events: &[InputEvent]) -> u64 {
    let mut out = 0u64;
    match workload {
        0 => {
            let mut counts: HashMap<i64, u64> = HashMap::new();
            for e in events {
                if e.name.as_deref() == Some("Request")
                    && let Some(Json::Number(s)) = e.attributes.get("status")
                    && s.as_i64().is_some_and(|s| s >= 500)
                {
                    *counts.entry(e.time.div_euclid(MINUTE)).or_default() += 1;
                }
            }
            out += counts.values().sum::<u64>();
        }
        1 => {
            let mut counts: HashMap<(i64, String), u64> = HashMap::new();
            for e in events {
                if let Some(Json::String(p)) = e.attributes.get("path") {
                    *counts
                        .entry((e.time.div_euclid(MINUTE), p.clone()))
                        .or_default() += 1;
                }
            }
            out += counts.len() as u64;
        }
        2 => {
            let mut started: HashMap<i64, i64> = HashMap::new();
            for e in events {
                let Some(Json::Number(t)) = e.attributes.get("thread.id") else {
                    continue;
                };
                let Some(thread) = t.as_i64() else { continue };
                match e.name.as_deref() {
                    Some("LogStartingFileHash") => {
                        started.entry(thread).or_insert(e.time);
                    }
                    Some("LogEndFileHash") => {
                        if let Some(s) = started.remove(&thread)
                            && e.time - s > SLOW
                        {
                            out += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {
            let key = Options::default().hash_key;
            for e in events {
                let mut j = dtc_engine::event::to_flat_json(e);
                if let Some(obj) = j.as_object_mut() {
                    if let Some(Json::String(u)) = obj.get("user") {
                        let h =
                            dtc_engine::interp::keyed_hash(key, &dtc_engine::value::Value::str(u));
                        obj.insert("user".into(), Json::String(h));
                    }
                    if let Some(Json::String(m)) = obj.get("email") {
                        let masked = dtc_engine::interp::mask(m);
                        obj.insert("email".into(), Json::String(masked));
                    }
                    obj.remove("ip");
                }
                out += black_box(j).is_object() as u64;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{TEST_STEP, lines_every, otlp_batches, program};

    #[test]
    fn interpreter_and_baseline_agree_on_every_workload_and_input_form() {
        for w in 0..4 {
            let prog = program(w).unwrap();
            let input = lines_every(w, 20_000, TEST_STEP);
            let (events, malformed) = decode_all(&input);
            assert_eq!((events.len(), malformed), (20_000, 0));
            let expected = baseline(w, &events);
            assert!(expected > 0, "workload {w} does nothing on this stream");
            assert_eq!(
                run_events(w, &mut interp(&prog), events),
                expected,
                "workload {w}"
            );
            assert_eq!(
                run_lines(w, &mut interp(&prog), &input),
                expected,
                "workload {w}"
            );
            let otlp = otlp_batches(&input).unwrap();
            assert_eq!(baseline_lines(w, &otlp), expected, "workload {w}");
            assert_eq!(
                run_lines(w, &mut interp(&prog), &otlp),
                expected,
                "workload {w}"
            );
        }
    }

    #[test]
    fn malformed_lines_are_counted() {
        let (events, malformed) = decode_all(&["{".to_string(), "[1]".to_string()]);
        assert_eq!((events.len(), malformed), (0, 2));
    }
}
