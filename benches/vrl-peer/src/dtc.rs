//! The dtc side of the comparison: the reference interpreter running each
//! workload's program, and the hand-written Rust baseline of the same logic
//! (copied from the engine's benchmark, with the engine's own hash key).
//!
//! Every run returns the workload's *result* (see [`crate::Result`]) so the
//! benchmark can check that all engines did the same work.
//!
//! From OTLP protobuf ([`run_proto`]) the engines start from the bytes as
//! the agent does: `dtc_agent`'s own ingress (`wire::Request::parse`,
//! `received::Received`, `Engine::push_reads`), not a copy of it.

use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;

use bytes::Bytes;
use dtc_agent::convert::Needs;
use dtc_agent::received::Received;
use dtc_agent::wire;
use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Batch, Edit, Engine, MetricValue, Options, Output, Produced};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
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
fn tally(workload: usize, produced: impl IntoIterator<Item = Produced>) -> u64 {
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
    /// One received OTLP record, read in place (`Engine::push_read`).
    fn push_read(&mut self, record: Received);
    /// A request's received records, read in place as a batch
    /// (`Engine::push_reads`).
    fn push_reads(&mut self, records: Vec<Received>);
    fn finish(&mut self, until_end: bool);
    fn drain_lazy(&mut self) -> Vec<Produced>;
    /// What was produced, appended to `into` (the agent drains each
    /// record's into one buffer it keeps).
    fn drain_lazy_into(&mut self, into: &mut Vec<Produced>);
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
    fn push_read(&mut self, record: Received) {
        Engine::push_read(self, record)
    }
    fn push_reads(&mut self, records: Vec<Received>) {
        Engine::push_reads(self, records)
    }
    fn finish(&mut self, until_end: bool) {
        Engine::finish(self, until_end)
    }
    fn drain_lazy(&mut self) -> Vec<Produced> {
        Engine::drain_lazy(self)
    }
    fn drain_lazy_into(&mut self, into: &mut Vec<Produced>) {
        Engine::drain_lazy_into(self, into)
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

/// What the agent's ingress reads of records for `program` alone
/// (`Needs::of`, as the agent's pipeline works it out when programs are
/// loaded, so made before the timer): no flight recorder, no actions.
pub fn needs(program: &dtc_ir::Program) -> Rc<Needs> {
    Rc::new(Needs::of([program], false, false))
}

/// End to end from OTLP protobuf: each request's bytes through what the
/// agent's pipeline does with them (`dtc-agent`, `Pipeline::process`):
/// checked and indexed in place (`wire::Request::parse`), the resources
/// the program reads decoded, then each record read in place
/// (`Received::new`) and the request's records pushed as one batch
/// (`push_reads`), their outputs drained after them. The workload's
/// result and the records refused (a request that does
/// not parse counts one; the agent's receiver refuses it whole), which
/// the agent counts and passes on unchanged. The export the agent would
/// splice from the request is not made: no engine here writes its output.
pub fn run_proto(
    workload: usize,
    engine: &mut impl Runner,
    requests: &[Bytes],
    needs: &Rc<Needs>,
) -> (u64, u64) {
    let mut result = 0;
    let mut refused = 0;
    let mut produced = Vec::new();
    received_requests(requests, needs, &mut refused, |records| {
        engine.push_reads(records);
        engine.drain_lazy_into(&mut produced);
        result += tally(workload, produced.drain(..));
    });
    engine.finish(true);
    (result + tally(workload, engine.drain_lazy()), refused)
}

/// [`run_proto`] a record at a time (`push_read`, its outputs drained
/// after each), as the agent ran before `push_reads`: the measure of what
/// the batch saves, and a check that both give the same.
pub fn run_proto_each(
    workload: usize,
    engine: &mut impl Runner,
    requests: &[Bytes],
    needs: &Rc<Needs>,
) -> (u64, u64) {
    let mut result = 0;
    let mut refused = 0;
    let mut produced = Vec::new();
    received_requests(requests, needs, &mut refused, |records| {
        for received in records {
            engine.push_read(received);
            engine.drain_lazy_into(&mut produced);
            result += tally(workload, produced.drain(..));
        }
    });
    engine.finish(true);
    (result + tally(workload, engine.drain_lazy()), refused)
}

/// Each request's records read in place as the agent's pipeline reads
/// them (`wire::Request::parse`, the resources the program reads,
/// `Received::new`), given to `run` a request at a time; what the agent
/// would refuse counted in `refused` (a request that does not parse
/// counts one: the receiver refuses it whole).
fn received_requests(
    requests: &[Bytes],
    needs: &Rc<Needs>,
    refused: &mut u64,
    mut run: impl FnMut(Vec<Received>),
) {
    for bytes in requests {
        let Ok(request) = wire::Request::parse(bytes.clone()) else {
            *refused += 1;
            continue;
        };
        let request = Rc::new(request);
        let resources = needs.resources(&request);
        let mut records = Vec::with_capacity(request.records.len());
        for (k, record) in request.records.iter().enumerate() {
            match Received::new(&request, k, &resources[record.resource], needs) {
                Ok(received) => records.push(received),
                Err(_) => *refused += 1,
            }
        }
        run(records);
    }
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

/// The hand-written baseline from OTLP protobuf: prost's decode of each
/// request, then the same logic over the decoded messages. A request
/// that does not decode adds nothing (the other engines count it).
pub fn baseline_proto(workload: usize, requests: &[Bytes]) -> u64 {
    let records = requests.iter().flat_map(|b| {
        ExportLogsServiceRequest::decode(b.clone())
            .into_iter()
            .flat_map(|r| r.resource_logs)
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
    });
    baseline_of(workload, records)
}

/// The same logic by hand, on decoded events (the kernel measure).
pub fn baseline(workload: usize, events: &[InputEvent]) -> u64 {
    baseline_of(workload, events)
}

/// What the baseline reads of an event, in each decoded form it runs on
/// (the engine's `InputEvent`, prost's `LogRecord`), so that one logic
/// serves every measure.
pub trait Event {
    fn name(&self) -> Option<&str>;
    /// Event time in nanoseconds; `None` when it is past what an `i64`
    /// holds (the agent refuses such a record).
    fn time(&self) -> Option<i64>;
    fn int(&self, key: &str) -> Option<i64>;
    fn text(&self, key: &str) -> Option<&str>;
    /// Workload (4): `user` to its keyed hash, `email` masked, `ip`
    /// dropped; whether the event leaves without `ip` (always).
    fn redact(self, key: (u64, u64)) -> bool;
}

impl Event for &InputEvent {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn time(&self) -> Option<i64> {
        Some(self.time)
    }
    fn int(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key) {
            Some(Json::Number(n)) => n.as_i64(),
            _ => None,
        }
    }
    fn text(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some(Json::String(s)) => Some(s),
            _ => None,
        }
    }
    fn redact(self, key: (u64, u64)) -> bool {
        let mut j = dtc_engine::event::to_flat_json(self);
        if let Some(obj) = j.as_object_mut() {
            if let Some(Json::String(u)) = obj.get("user") {
                let h = dtc_engine::interp::keyed_hash(key, &dtc_engine::value::Value::str(u));
                obj.insert("user".into(), Json::String(h));
            }
            if let Some(Json::String(m)) = obj.get("email") {
                let masked = dtc_engine::interp::mask(m);
                obj.insert("email".into(), Json::String(masked));
            }
            obj.remove("ip");
        }
        black_box(j).is_object()
    }
}

/// An attribute's scalar, as prost decoded it.
fn attribute<'r>(record: &'r LogRecord, key: &str) -> Option<&'r any_value::Value> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

impl Event for LogRecord {
    fn name(&self) -> Option<&str> {
        (!self.event_name.is_empty()).then_some(&self.event_name)
    }
    fn time(&self) -> Option<i64> {
        // As the agent reads it: no time is the observed time.
        let t = match self.time_unix_nano {
            0 => self.observed_time_unix_nano,
            t => t,
        };
        i64::try_from(t).ok()
    }
    fn int(&self, key: &str) -> Option<i64> {
        match attribute(self, key) {
            Some(any_value::Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }
    fn text(&self, key: &str) -> Option<&str> {
        match attribute(self, key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }
    fn redact(mut self, key: (u64, u64)) -> bool {
        self.attributes.retain(|kv| kv.key != "ip");
        for kv in &mut self.attributes {
            let Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) = &mut kv.value
            else {
                continue;
            };
            match kv.key.as_str() {
                "user" => {
                    *s = dtc_engine::interp::keyed_hash(key, &dtc_engine::value::Value::str(s))
                }
                "email" => *s = dtc_engine::interp::mask(s),
                _ => {}
            }
        }
        black_box(self);
        true
    }
}

/// The baseline's logic over events in any decoded form.
fn baseline_of<E: Event>(workload: usize, events: impl IntoIterator<Item = E>) -> u64 {
    let mut out = 0u64;
    match workload {
        0 => {
            let mut counts: HashMap<i64, u64> = HashMap::new();
            for e in events {
                if e.name() == Some("Request")
                    && e.int("status").is_some_and(|s| s >= 500)
                    && let Some(t) = e.time()
                {
                    *counts.entry(t.div_euclid(MINUTE)).or_default() += 1;
                }
            }
            out += counts.values().sum::<u64>();
        }
        1 => {
            let mut counts: HashMap<(i64, String), u64> = HashMap::new();
            for e in events {
                if let Some(p) = e.text("path")
                    && let Some(t) = e.time()
                {
                    *counts
                        .entry((t.div_euclid(MINUTE), p.to_string()))
                        .or_default() += 1;
                }
            }
            out += counts.len() as u64;
        }
        2 => {
            let mut started: HashMap<i64, i64> = HashMap::new();
            for e in events {
                let (Some(thread), Some(time)) = (e.int("thread.id"), e.time()) else {
                    continue;
                };
                match e.name() {
                    Some("LogStartingFileHash") => {
                        started.entry(thread).or_insert(time);
                    }
                    Some("LogEndFileHash") => {
                        if let Some(s) = started.remove(&thread)
                            && time - s > SLOW
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
                out += u64::from(e.redact(key));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{TEST_STEP, lines_every, otlp_batches, otlp_requests, program};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

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
            let proto = otlp_requests(&input).unwrap();
            assert_eq!(baseline_proto(w, &proto), expected, "workload {w}");
            assert_eq!(
                run_proto(w, &mut interp(&prog), &proto, &needs(&prog)),
                (expected, 0),
                "workload {w}"
            );
            assert_eq!(
                run_proto_each(w, &mut interp(&prog), &proto, &needs(&prog)),
                (expected, 0),
                "workload {w}"
            );
        }
    }

    #[test]
    fn refused_protobuf_is_counted_not_dropped() {
        let prog = program(0).unwrap();
        let t = crate::stream::START;
        let line = format!(r#"{{"event":"Request","time":{t},"status":500,"path":"/a"}}"#);
        let good = otlp_requests(std::slice::from_ref(&line)).unwrap();
        // A severity number outside OTLP's range: the agent's ingress
        // refuses the record (and passes it on); the other one counts.
        let mut request = ExportLogsServiceRequest::decode(good[0].clone()).unwrap();
        let mut bad = request.resource_logs[0].scope_logs[0].log_records[0].clone();
        bad.severity_number = 99;
        request.resource_logs.push(ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![bad],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        });
        let requests = [
            Bytes::from(request.encode_to_vec()),
            Bytes::from_static(b"\xff\xff not protobuf"),
        ];
        assert_eq!(
            run_proto(0, &mut interp(&prog), &requests, &needs(&prog)),
            (1, 2)
        );
        assert_eq!(
            run_proto_each(0, &mut interp(&prog), &requests, &needs(&prog)),
            (1, 2)
        );
        assert_eq!(
            run_proto(
                0,
                &mut crate::jit::compile(&prog).unwrap(),
                &requests,
                &needs(&prog)
            ),
            (1, 2)
        );
        // prost's messages hold any severity number; the baseline counts both.
        assert_eq!(baseline_proto(0, &requests), 2);
    }

    #[test]
    fn malformed_lines_are_counted() {
        let (events, malformed) = decode_all(&["{".to_string(), "[1]".to_string()]);
        assert_eq!((events.len(), malformed), (0, 2));
    }
}
