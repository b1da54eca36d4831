//! The dtc side of the comparison: the reference interpreter running each
//! workload's program, and the hand-written Rust baseline of the same logic
//! (copied from the engine's benchmark, with the engine's own hash key).
//!
//! Every run returns the workload's *result* (see [`crate::Result`]) so the
//! benchmark can check that all engines did the same work.

use std::collections::HashMap;
use std::hint::black_box;

use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Batch, Edit, Engine, MetricValue, Options, Output, Produced};
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

/// What one output adds to a workload's result: the errors counted (1),
/// the (window, path) groups (2), the slow hashes (3); egress is tallied
/// by [`tally`].
fn tally_output(workload: usize, o: &Output) -> u64 {
    match (workload, o) {
        (
            0,
            Output::Metric {
                value: MetricValue::Int(c),
                ..
            },
        ) => (*c).max(0) as u64,
        (1, Output::Metric { .. }) => 1,
        (2, Output::Log { name, .. }) => u64::from(name == "Slow"),
        _ => 0,
    }
}

/// Whether an event egresses without its `ip` (workload 4's redaction):
/// the shaping dropped it, or it never had one. Read from the lazy
/// egress (the input event and shaping's edits), as a consumer that
/// forwards events does, without writing their JSON: the edits first,
/// and the event (`input`, which may decode it) only when they do not say.
fn leaves_without_ip<'e>(input: impl FnOnce() -> &'e InputEvent, edits: &[Edit]) -> bool {
    edits
        .iter()
        .any(|e| matches!(e, Edit::RemoveAttr(k) if &**k == "ip"))
        || !input().attributes.contains_key("ip")
}

/// What a run's outputs add to a workload's result, egress left lazy
/// (`drain_lazy`): the events that egress redacted (4) and what
/// [`tally_output`] counts.
fn tally(workload: usize, produced: Vec<Produced>) -> u64 {
    let mut n = 0;
    for p in produced {
        n += match &p {
            Produced::Output(o) => tally_output(workload, o),
            Produced::Egress(e) if workload == 3 => {
                u64::from(leaves_without_ip(|| e.input.event(), &e.edits))
            }
            Produced::Unchanged(run) if workload == 3 => run
                .events()
                .filter(|e| leaves_without_ip(|| e, &[]))
                .count() as u64,
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
/// [`Engine`] or the JIT's engine (see [`crate::jit`]). Egress is drained
/// lazily (a pass-through decision or shaping's edits, no JSON written),
/// as the engine benchmark (`cargo bench -p dtc-engine`) and the agent do.
pub trait Runner {
    /// Events decoded into this engine's own form (records, and slot rows
    /// for the JIT), ahead of the kernel's timer.
    fn decode_batch(&self, events: &[InputEvent]) -> Batch;
    fn push_batch(&mut self, batch: &Batch);
    fn push_lines(&mut self, lines: &[String]);
    fn finish(&mut self, until_end: bool);
    fn drain_lazy(&mut self) -> Vec<Produced>;
}

impl Runner for Engine {
    fn decode_batch(&self, events: &[InputEvent]) -> Batch {
        Engine::decode_batch(self, events.iter().cloned())
    }
    fn push_batch(&mut self, batch: &Batch) {
        Engine::push_batch(self, batch)
    }
    fn push_lines(&mut self, lines: &[String]) {
        Engine::push_lines(self, lines.iter().map(String::as_str))
    }
    fn finish(&mut self, until_end: bool) {
        Engine::finish(self, until_end)
    }
    fn drain_lazy(&mut self) -> Vec<Produced> {
        Engine::drain_lazy(self)
    }
}

/// An engine with the events decoded into its own form in batches of
/// [`BATCH`]: the kernel's input, made before the timer (as VRL's
/// `Value`s are).
pub fn with_batches<R: Runner>(engine: R, events: &[InputEvent]) -> (R, Vec<Batch>) {
    let batches = events
        .chunks(BATCH)
        .map(|c| engine.decode_batch(c))
        .collect();
    (engine, batches)
}

/// The kernel: decoded batches through an engine, all windows flushed at
/// the end; the workload's result.
pub fn run_batches(workload: usize, engine: &mut impl Runner, batches: &[Batch]) -> u64 {
    let mut result = 0;
    for b in batches {
        engine.push_batch(b);
        result += tally(workload, engine.drain_lazy());
    }
    engine.finish(true);
    result + tally(workload, engine.drain_lazy())
}

/// Runs decoded events through an engine (decoded into batches, then the
/// kernel): for tests, which need no timer.
pub fn run_events(workload: usize, engine: impl Runner, events: &[InputEvent]) -> u64 {
    let (mut engine, batches) = with_batches(engine, events);
    run_batches(workload, &mut engine, &batches)
}

/// Runs input lines through an engine in batches of [`BATCH`], decoding
/// included; the workload's result.
pub fn run_lines(workload: usize, engine: &mut impl Runner, lines: &[String]) -> u64 {
    let mut result = 0;
    for chunk in lines.chunks(BATCH) {
        engine.push_lines(chunk);
        result += tally(workload, engine.drain_lazy());
    }
    engine.finish(true);
    result + tally(workload, engine.drain_lazy())
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
                run_events(w, interp(&prog), &events),
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
