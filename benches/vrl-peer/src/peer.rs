//! The VRL side: each workload as a Vector Remap Language program, run by
//! the `vrl` crate's compiler and runtime the way Vector's `remap` and
//! `filter` transforms run it, plus the minimal Rust host that does what VRL
//! cannot.
//!
//! VRL maps one event to one event: it has no windows, no keyed state and
//! no memory between events. So each program does the per-event part (the
//! predicate, the group key, the transition it is, the redaction) and the
//! [`Host`] does the rest, as another Vector transform would have to:
//! counting per one-minute window of event time (Vector: `log_to_metric` +
//! `aggregate`), grouping by path, and the per-thread start/end pairing
//! (Vector: `reduce` with `group_by`, `starts_when`, `ends_when`).
//!
//! Redaction: VRL has no SipHash, the keyed hash dtc's `redact ... with
//! hash` uses. [`PROGRAMS`] uses `seahash` of a secret prefix plus the
//! value, a 64-bit non-cryptographic hash like dtc's, printed in hex: the
//! same work, not the same digits. [`REDACT_HMAC`] is the variant a Vector
//! user wanting a real keyed hash would write (`hmac`, SHA-256), measured
//! as an extra row. The mask (all but the last four characters as `*`) and
//! the drop are exact.

use std::collections::HashMap;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Program, TargetValueRef, TimeZone};
use vrl::value::{ObjectMap, Secrets, Value};

use crate::stream::{MINUTE, SLOW};

/// The VRL program of each workload of [`crate::stream::SOURCES`].
pub const PROGRAMS: [&str; 4] = [
    // (1) the predicate; the host counts per minute.
    r#".event == "Request" && (.status >= 500 ?? false)"#,
    // (2) the group key; the host counts per (minute, key).
    r#"if .event == "Request" && is_string(.path) { .path } else { null }"#,
    // (3) which transition the event is; the host keeps the per-thread state.
    r#"if .event == "LogStartingFileHash" { 1 } else if .event == "LogEndFileHash" { 2 } else { 0 }"#,
    // (4) the redaction of three fields, in place.
    r#"if .event == "Login" {
  if is_string(.user) { .user = format_int!(seahash("dtc hash key 0001" + string!(.user)), 16) }
  if is_string(.email) {
    email = string!(.email)
    n = strlen(email)
    if n > 4 { .email = replace(email, r'(?s).', "*", count: n - 4) }
  }
  del(.ip)
}
true"#,
];

/// Workload (4) with HMAC-SHA-256 (first 16 hex digits) as the keyed hash.
pub const REDACT_HMAC: &str = r#"if .event == "Login" {
  if is_string(.user) { .user = slice!(encode_base16(hmac(string!(.user), "dtc hash key 0001")), 0, 16) }
  if is_string(.email) {
    email = string!(.email)
    n = strlen(email)
    if n > 4 { .email = replace(email, r'(?s).', "*", count: n - 4) }
  }
  del(.ip)
}
true"#;

/// A compiled VRL program with its runtime, run one event at a time.
pub struct Vrl {
    program: Program,
    runtime: Runtime,
    timezone: TimeZone,
    metadata: Value,
    secrets: Secrets,
}

impl Vrl {
    /// Compiles a program against VRL's standard library. Errors (and
    /// warnings, which would mean the program is not what it seems) come
    /// back as VRL's own diagnostics.
    pub fn compile(source: &str) -> Result<Vrl, String> {
        let functions = vrl::stdlib::all();
        let compiled = vrl::compiler::compile(source, &functions)
            .map_err(|d| vrl::diagnostic::Formatter::new(source, d).to_string())?;
        if !compiled.warnings.is_empty() {
            return Err(vrl::diagnostic::Formatter::new(source, compiled.warnings).to_string());
        }
        Ok(Vrl {
            program: compiled.program,
            runtime: Runtime::default(),
            timezone: TimeZone::default(),
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        })
    }

    /// Runs the program on one event, which it may change, as Vector's
    /// `remap` does: resolve, then clear the runtime's state.
    pub fn run(&mut self, event: &mut Value) -> Result<Value, Terminate> {
        let mut target = TargetValueRef {
            value: event,
            metadata: &mut self.metadata,
            secrets: &mut self.secrets,
        };
        let out = self
            .runtime
            .resolve(&mut target, &self.program, &self.timezone);
        self.runtime.clear();
        out
    }
}

/// What VRL cannot do, kept by the host: per-minute counts, per-key
/// counts, per-thread start times, and the workload's result.
pub struct Host {
    workload: usize,
    errors: HashMap<i64, u64>,
    by_path: HashMap<(i64, Bytes), u64>,
    started: HashMap<i64, i64>,
    result: u64,
    /// Events VRL failed on or that lacked what the host reads: counted,
    /// never dropped silently.
    pub failed: u64,
}

fn field<'v>(event: &'v Value, key: &str) -> Option<&'v Value> {
    match event {
        Value::Object(map) => map.get(key),
        _ => None,
    }
}

fn int_field(event: &Value, key: &str) -> Option<i64> {
    match field(event, key) {
        Some(Value::Integer(i)) => Some(*i),
        _ => None,
    }
}

impl Host {
    pub fn new(workload: usize) -> Host {
        Host {
            workload,
            errors: HashMap::new(),
            by_path: HashMap::new(),
            started: HashMap::new(),
            result: 0,
            failed: 0,
        }
    }

    /// Takes one event through the program and the host's own step.
    pub fn feed(&mut self, vrl: &mut Vrl, event: &mut Value) {
        let Ok(out) = vrl.run(event) else {
            self.failed += 1;
            return;
        };
        match (self.workload, out) {
            (0, Value::Boolean(true)) => match int_field(event, "time") {
                Some(t) => *self.errors.entry(t.div_euclid(MINUTE)).or_default() += 1,
                None => self.failed += 1,
            },
            (1, path @ (Value::Bytes(_) | Value::String(_))) => {
                match (int_field(event, "time"), path.as_bytes()) {
                    (Some(t), Some(path)) => {
                        *self
                            .by_path
                            .entry((t.div_euclid(MINUTE), path.clone()))
                            .or_default() += 1
                    }
                    _ => self.failed += 1,
                }
            }
            (2, Value::Integer(kind @ (1 | 2))) => {
                let (Some(thread), Some(t)) =
                    (int_field(event, "thread.id"), int_field(event, "time"))
                else {
                    self.failed += 1;
                    return;
                };
                if kind == 1 {
                    self.started.entry(thread).or_insert(t);
                } else if let Some(s) = self.started.remove(&thread)
                    && t - s > SLOW
                {
                    self.result += 1;
                }
            }
            (3, Value::Boolean(true)) => self.result += u64::from(field(event, "ip").is_none()),
            _ => {}
        }
    }

    /// The workload's result (as [`crate::dtc`] computes it) and the
    /// number of failed events.
    pub fn finish(self) -> (u64, u64) {
        let result = match self.workload {
            0 => self.errors.values().sum(),
            1 => self.by_path.len() as u64,
            _ => self.result,
        };
        (result, self.failed)
    }
}

/// The kernel measure: VRL on `Value`s built beforehand, each changed in
/// place as a Vector transform changes the events it owns. The events are
/// handed back, so their memory is freed after the timer, as dtc's
/// decoded batches are (the kernel measures the program, not the freeing
/// of its input).
pub fn run_values(
    workload: usize,
    vrl: &mut Vrl,
    mut events: Vec<Value>,
) -> ((u64, u64), Vec<Value>) {
    let mut host = Host::new(workload);
    for e in &mut events {
        host.feed(vrl, e);
        std::hint::black_box(&*e);
    }
    (host.finish(), events)
}

/// Parses a flat JSON line into a VRL value directly (no intermediate
/// `serde_json::Value`, which Vector's JSON codec does build; so this is
/// kinder to VRL than Vector is).
pub fn parse_flat(line: &str) -> Result<Value, String> {
    serde_json::from_str::<Value>(line).map_err(|e| format!("not JSON: {e}"))
}

/// End to end from flat JSON lines: parse, then as [`run_values`].
pub fn run_lines(workload: usize, vrl: &mut Vrl, lines: &[String]) -> (u64, u64) {
    let mut host = Host::new(workload);
    for l in lines {
        match parse_flat(l) {
            Ok(mut e) => {
                host.feed(vrl, &mut e);
                std::hint::black_box(&e);
            }
            Err(_) => host.failed += 1,
        }
    }
    host.finish()
}

/// End to end from OTLP/JSON log exports: each record becomes the same flat
/// value as its flat JSON line (`eventName` as `event`, `timeUnixNano` as
/// `time`, attributes as top-level keys), as a Vector OTLP source would
/// need before these programs.
pub fn run_otlp(workload: usize, vrl: &mut Vrl, lines: &[String]) -> (u64, u64) {
    let mut host = Host::new(workload);
    for l in lines {
        match otlp_events(l) {
            Ok(events) => {
                for mut e in events {
                    host.feed(vrl, &mut e);
                    std::hint::black_box(&e);
                }
            }
            Err(_) => host.failed += 1,
        }
    }
    host.finish()
}

/// End to end from OTLP protobuf, as Vector's `opentelemetry` source
/// takes a request: prost's decode into `ExportLogsServiceRequest`, then
/// each log record made into a VRL value ([`proto_event`]) and run. A
/// request that does not decode counts one failure.
pub fn run_proto(workload: usize, vrl: &mut Vrl, requests: &[Bytes]) -> (u64, u64) {
    let mut host = Host::new(workload);
    for bytes in requests {
        let Ok(request) = ExportLogsServiceRequest::decode(bytes.clone()) else {
            host.failed += 1;
            continue;
        };
        for resource in request.resource_logs {
            for scope in resource.scope_logs {
                for record in scope.log_records {
                    let mut e = proto_event(record);
                    host.feed(vrl, &mut e);
                    std::hint::black_box(&e);
                }
            }
        }
    }
    host.finish()
}

/// A decoded log record as the same flat value as [`otlp_events`] makes
/// of its JSON form: `event_name` as `event`, the time (or, without one,
/// the observed time, as dtc reads it) as `time`, attributes as top-level
/// keys. Values are mapped as Vector's `opentelemetry` source maps an
/// `AnyValue` (a string's buffer moved into `Bytes`, not copied). Vector
/// keeps attributes under `attributes` and the time as a timestamp; the
/// flat form is what these programs read. A time past what an `i64` holds
/// is left out (the host counts the event as failed if it reads it).
pub fn proto_event(record: LogRecord) -> Value {
    let mut flat = ObjectMap::new();
    if !record.event_name.is_empty() {
        flat.insert("event".into(), Value::Bytes(record.event_name.into()));
    }
    let time = match record.time_unix_nano {
        0 => record.observed_time_unix_nano,
        t => t,
    };
    if let Ok(t) = i64::try_from(time) {
        flat.insert("time".into(), Value::Integer(t));
    }
    for kv in record.attributes {
        let value = kv
            .value
            .and_then(|v| v.value)
            .map_or(Value::Null, proto_value);
        flat.insert(kv.key.into(), value);
    }
    Value::Object(flat)
}

fn proto_value(v: any_value::Value) -> Value {
    use any_value::Value as Any;
    let inner = |v: Option<any_value::Value>| v.map_or(Value::Null, proto_value);
    match v {
        Any::StringValue(s) => Value::Bytes(s.into()),
        Any::BoolValue(b) => Value::Boolean(b),
        Any::IntValue(i) => Value::Integer(i),
        // VRL holds no NaN (`Value::Float` is `NotNan`): null.
        Any::DoubleValue(d) if d.is_nan() => Value::Null,
        Any::DoubleValue(d) => Value::from_f64_or_zero(d),
        Any::BytesValue(b) => Value::Bytes(b.into()),
        // An index into a profile's string table, which logs do not have.
        Any::StringValueStrindex(_) => Value::Null,
        Any::ArrayValue(a) => Value::Array(a.values.into_iter().map(|v| inner(v.value)).collect()),
        Any::KvlistValue(kv) => Value::Object(
            kv.values
                .into_iter()
                .map(|kv| (kv.key.into(), inner(kv.value.and_then(|v| v.value))))
                .collect(),
        ),
    }
}

fn take_array(map: &mut ObjectMap, key: &str, path: &str) -> Result<Vec<Value>, String> {
    match map.remove(key) {
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!("{path}.{key}: expected an array, found {other}")),
        None => Err(format!("{path}.{key}: missing")),
    }
}

fn into_object(v: Value, path: &str) -> Result<ObjectMap, String> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!("{path}: expected an object, found {other}")),
    }
}

/// The log records of one OTLP/JSON export line as flat VRL values.
pub fn otlp_events(line: &str) -> Result<Vec<Value>, String> {
    let mut root = into_object(parse_flat(line)?, "export")?;
    let mut out = Vec::new();
    for resource in take_array(&mut root, "resourceLogs", "export")? {
        let mut resource = into_object(resource, "resourceLogs[]")?;
        for scope in take_array(&mut resource, "scopeLogs", "resourceLogs[]")? {
            let mut scope = into_object(scope, "scopeLogs[]")?;
            for record in take_array(&mut scope, "logRecords", "scopeLogs[]")? {
                out.push(flat_record(into_object(record, "logRecords[]")?)?);
            }
        }
    }
    Ok(out)
}

fn flat_record(mut record: ObjectMap) -> Result<Value, String> {
    let mut flat = ObjectMap::new();
    if let Some(name) = record.remove("eventName") {
        flat.insert("event".into(), name);
    }
    if let Some(t) = record.remove("timeUnixNano") {
        let t = match &t {
            Value::Integer(i) => Some(*i),
            other => other.to_str().and_then(|s| s.parse::<i64>().ok()),
        }
        .ok_or_else(|| format!("timeUnixNano: expected nanoseconds, found {t}"))?;
        flat.insert("time".into(), Value::Integer(t));
    }
    if record.contains_key("attributes") {
        for kv in take_array(&mut record, "attributes", "logRecords[]")? {
            let mut kv = into_object(kv, "attributes[]")?;
            let key = match kv.remove("key") {
                Some(k) if k.is_bytes() => k.to_string_lossy().into_owned(),
                other => {
                    return Err(format!(
                        "attributes[].key: expected a string, found {other:?}"
                    ));
                }
            };
            let value = into_object(
                kv.remove("value").unwrap_or(Value::Null),
                "attributes[].value",
            )?;
            flat.insert(key.into(), any_value(value)?);
        }
    }
    Ok(Value::Object(flat))
}

fn any_value(mut v: ObjectMap) -> Result<Value, String> {
    if let Some(s) = v.remove("stringValue") {
        return Ok(s);
    }
    if let Some(b) = v.remove("boolValue") {
        return Ok(b);
    }
    if let Some(d) = v.remove("doubleValue") {
        return Ok(d);
    }
    match v.remove("intValue") {
        Some(Value::Integer(i)) => Ok(Value::Integer(i)),
        Some(s) if s.is_bytes() => s
            .to_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::Integer)
            .ok_or_else(|| format!("intValue: {s} is not a 64-bit integer")),
        Some(other) => Err(format!("intValue: expected an integer, found {other}")),
        None => Err("an AnyValue with no scalar (arrays, maps and bytes are not read)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtc::{baseline, decode_all};
    use crate::stream::{TEST_STEP, lines, lines_every, otlp_batches, otlp_requests, program};
    use dtc_engine::{Engine, Options, Output};
    use serde_json::Value as Json;

    fn values(lines: &[String]) -> Vec<Value> {
        lines.iter().map(|l| parse_flat(l).unwrap()).collect()
    }

    #[test]
    fn every_program_compiles_without_warnings() {
        for source in PROGRAMS.iter().chain([&REDACT_HMAC]) {
            Vrl::compile(source).unwrap();
        }
    }

    #[test]
    fn a_bad_program_is_refused_with_vrls_diagnostic() {
        // The pitfall of TOOLCHAIN.md: a fallible comparison left unhandled.
        let err = Vrl::compile(r#".event == "Request" && .status >= 500"#)
            .err()
            .expect("refused");
        assert!(err.contains("E100"), "{err}");
    }

    #[test]
    fn vrl_and_the_host_agree_with_dtc_on_every_workload_and_input_form() {
        for (w, source) in PROGRAMS.iter().enumerate() {
            let input = lines_every(w, 20_000, TEST_STEP);
            let (events, _) = decode_all(&input);
            let expected = baseline(w, &events);
            assert!(expected > 0, "workload {w} does nothing on this stream");
            let mut vrl = Vrl::compile(source).unwrap();
            assert_eq!(
                run_values(w, &mut vrl, values(&input)).0,
                (expected, 0),
                "workload {w}"
            );
            assert_eq!(
                run_lines(w, &mut vrl, &input),
                (expected, 0),
                "workload {w}"
            );
            let otlp = otlp_batches(&input).unwrap();
            assert_eq!(run_otlp(w, &mut vrl, &otlp), (expected, 0), "workload {w}");
            let proto = otlp_requests(&input).unwrap();
            assert_eq!(
                run_proto(w, &mut vrl, &proto),
                (expected, 0),
                "workload {w}"
            );
        }
        let input = lines(3, 1_000);
        let mut hmac = Vrl::compile(REDACT_HMAC).unwrap();
        assert_eq!(run_lines(3, &mut hmac, &input), (1_000, 0));
    }

    #[test]
    fn small_hand_made_streams_give_the_expected_counts() {
        let mut vrl = Vrl::compile(PROGRAMS[0]).unwrap();
        let t = crate::stream::START;
        let stream = [
            format!(r#"{{"event":"Request","time":{t},"status":500,"path":"/a"}}"#),
            format!(r#"{{"event":"Request","time":{t},"status":"oops","path":"/a"}}"#),
            format!(r#"{{"event":"Other","time":{t},"status":503}}"#),
            format!(
                r#"{{"event":"Request","time":{},"status":499,"path":"/b"}}"#,
                t + 1
            ),
            format!(
                r#"{{"event":"Request","time":{},"status":503,"path":"/b"}}"#,
                t + MINUTE
            ),
        ];
        assert_eq!(run_lines(0, &mut vrl, &stream), (2, 0));
        let mut vrl = Vrl::compile(PROGRAMS[1]).unwrap();
        // (minute 0, /a), (minute 0, /b), (minute 1, /b); "Other" has no path.
        assert_eq!(run_lines(1, &mut vrl, &stream), (3, 0));
        let mut vrl = Vrl::compile(PROGRAMS[2]).unwrap();
        let hashes = [
            format!(r#"{{"event":"LogStartingFileHash","time":{t},"thread.id":1}}"#),
            format!(
                r#"{{"event":"LogStartingFileHash","time":{},"thread.id":1}}"#,
                t + SLOW
            ),
            format!(
                r#"{{"event":"LogEndFileHash","time":{},"thread.id":1}}"#,
                t + SLOW + 1
            ),
            format!(
                r#"{{"event":"LogEndFileHash","time":{},"thread.id":2}}"#,
                t + 3 * SLOW
            ),
            format!(r#"{{"event":"LogStartingFileHash","time":{t}}}"#),
            "not json".to_string(),
        ];
        // One slow hash (the second start is ignored); the start without a
        // thread and the line that is not JSON are counted as failed.
        assert_eq!(run_lines(2, &mut vrl, &hashes), (1, 2));
    }

    /// The redacted values themselves, against the interpreter's egress.
    #[test]
    fn redaction_matches_the_interpreter_on_the_fields_it_can_match() {
        let input = lines(3, 50);
        let mut engine = Engine::new(program(3).unwrap(), Options::default());
        let mut vrl = Vrl::compile(PROGRAMS[3]).unwrap();
        let mut hmac = Vrl::compile(REDACT_HMAC).unwrap();
        for l in &input {
            engine.push_line(l);
            let outs = engine.drain();
            let [Output::Egress { event: dtc }] = outs.as_slice() else {
                panic!("expected one egress, got {outs:?}");
            };
            for vrl in [&mut vrl, &mut hmac] {
                let mut e = parse_flat(l).unwrap();
                assert_eq!(vrl.run(&mut e).unwrap(), Value::Boolean(true));
                let original = parse_flat(l).unwrap();
                // The mask and the drop are exact.
                let email = field(&e, "email").unwrap().to_string_lossy();
                assert_eq!(Some(email.as_ref()), dtc["email"].as_str(), "{l}");
                assert!(
                    email.starts_with("***") && email.ends_with(".com"),
                    "{email}"
                );
                assert!(field(&e, "ip").is_none());
                assert!(dtc.get("ip").is_none());
                // The hash: a hex digest that hides the user, the same for
                // the same user; dtc's is SipHash, so the digits differ.
                let user = field(&e, "user").unwrap().to_string_lossy();
                let Json::String(dtc_user) = &dtc["user"] else {
                    panic!("dtc left no hashed user: {dtc}");
                };
                assert_eq!(dtc_user.len(), 16);
                assert!(!user.is_empty() && user.len() <= 17, "{user}");
                assert!(
                    user.trim_start_matches('-')
                        .chars()
                        .all(|c| c.is_ascii_hexdigit())
                );
                assert_ne!(
                    Some(&user),
                    field(&original, "user")
                        .map(|u| u.to_string_lossy())
                        .as_ref()
                );
                let mut again = original.clone();
                vrl.run(&mut again).unwrap();
                assert_eq!(field(&again, "user"), field(&e, "user"));
                // Untouched fields stay.
                assert_eq!(field(&e, "ok"), Some(&Value::Boolean(true)));
            }
        }
    }

    #[test]
    fn a_protobuf_record_is_the_same_value_as_its_flat_line() {
        for w in 0..PROGRAMS.len() {
            let input = lines(w, 150);
            let records: Vec<LogRecord> = otlp_requests(&input)
                .unwrap()
                .into_iter()
                .map(|b| ExportLogsServiceRequest::decode(b).unwrap())
                .flat_map(|r| r.resource_logs)
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records)
                .collect();
            assert_eq!(records.len(), input.len());
            for (record, line) in records.into_iter().zip(&input) {
                assert_eq!(proto_event(record), parse_flat(line).unwrap(), "{line}");
            }
        }
    }

    #[test]
    fn bad_protobuf_is_counted_not_a_panic() {
        let mut vrl = Vrl::compile(PROGRAMS[0]).unwrap();
        let bad = [Bytes::from_static(b"\xff\xff not protobuf")];
        assert_eq!(run_proto(0, &mut vrl, &bad), (0, 1));
    }

    #[test]
    fn bad_otlp_is_an_error_not_a_panic() {
        for bad in [
            "{}",
            r#"{"resourceLogs": 3}"#,
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "x"}]}]}]}"#,
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "a", "value": {}}]}]}]}]}"#,
            "[",
        ] {
            assert!(otlp_events(bad).is_err(), "{bad}");
        }
        let mut vrl = Vrl::compile(PROGRAMS[0]).unwrap();
        assert_eq!(run_otlp(0, &mut vrl, &["{}".to_string()]), (0, 1));
    }
}
