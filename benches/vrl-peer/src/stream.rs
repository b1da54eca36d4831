//! The four workloads of `runtime/engine/benches/throughput.rs` and their
//! event streams, so that this benchmark measures the same programs on the
//! same events as the interpreter's own benchmark.
//!
//! [`lines`] is a copy of that benchmark's generator (the sample scenarios
//! of `dtc_engine::generate` have no `Request` or `Login` events, so it does
//! not fit): keep the two in step. [`otlp_batches`] writes the same events
//! as OTLP/JSON log exports, for the end-to-end measure from OTLP/JSON;
//! [`otlp_requests`] as protobuf `ExportLogsServiceRequest`s, for the
//! measure from OTLP protobuf (what the agent receives).

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value as Json, json};

/// The time of the first event, as in the engine's benchmark.
pub const START: i64 = 1_795_341_600_000_000_000;

/// One workload's dtc program, as in the engine's benchmark.
pub const SOURCES: [&str; 4] = [
    "event Request { status: int, path: string }\n\
     query errors = Request | where status >= 500 | summarize n = count() every 1m | emit metric \"errors\"",
    "event Request { status: int, path: string }\n\
     query by_path = Request | summarize n = count() by path max 1000 every 1m | emit metric \"by_path\"",
    "event LogStartingFileHash { fileName: string }\nevent LogEndFileHash { fileName: string, hashValue: string }\n\
     machine hashing per event.thread_id max 10_000 {\n state Unknown\n state HashingFile { started: timestamp }\n\
     on LogStartingFileHash in Unknown -> HashingFile { started = event.time }\n\
     on LogEndFileHash in HashingFile when event.time - started > 2s -> Unknown { emit log Slow { took: event.time - started } }\n\
     on LogEndFileHash in HashingFile -> Unknown\n}",
    "event Login { user: string @pii, email: string @pii, ip: string @pii, ok: bool }\n\
     redact Login.user with hash\nredact Login.email with mask\nredact Login.ip with drop",
];

/// The workloads' names, in the order of [`SOURCES`].
pub const NAMES: [&str; 4] = [
    "where + count",
    "summarize by string key",
    "file-hashing machine",
    "redact three fields",
];

/// Nanoseconds in a minute: the window of the two queries.
pub const MINUTE: i64 = 60_000_000_000;

/// Two seconds: the machine's "slow hash" threshold.
pub const SLOW: i64 = 2_000_000_000;

/// The checked and lowered IR of a workload's program.
pub fn program(workload: usize) -> Result<dtc_ir::Program, String> {
    let source = SOURCES
        .get(workload)
        .ok_or_else(|| format!("no workload {workload}: there are {}", SOURCES.len()))?;
    let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
    let out = session.check_source("bench.dt", source);
    if out.has_errors() {
        return Err(format!(
            "workload {workload} does not check: {:?}",
            out.diagnostics
        ));
    }
    match out.lower() {
        Some(Ok(p)) => Ok(p),
        Some(Err(e)) => Err(format!("workload {workload} does not verify: {e:?}")),
        None => Err(format!(
            "workload {workload} has errors and was not lowered"
        )),
    }
}

/// A deterministic stream of `n` flat JSON lines for a workload: the same
/// lines as the engine's benchmark, one event a millisecond.
pub fn lines(workload: usize, n: usize) -> Vec<String> {
    lines_every(workload, n, 1_000_000)
}

/// As [`lines`] with events `step` nanoseconds apart. At one a millisecond
/// no hash of workload (3) is slow (each of 64 threads ends its hash within
/// about 64 ms), so tests space events further to see slow hashes.
pub fn lines_every(workload: usize, n: usize, step: i64) -> Vec<String> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let t = START + i as i64 * step;
            match workload {
                0 | 1 => format!(
                    r#"{{"event":"Request","time":{t},"status":{},"path":"/api/v1/items/{}"}}"#,
                    [200, 200, 200, 404, 500, 503][(rnd() % 6) as usize],
                    rnd() % 200
                ),
                2 => {
                    let thread = rnd() % 64;
                    let name = if rnd() % 2 == 0 { "LogStartingFileHash" } else { "LogEndFileHash" };
                    format!(r#"{{"event":"{name}","time":{t},"fileName":"/data/f{}.png","hashValue":"ab","thread.id":{thread}}}"#, rnd() % 1000)
                }
                _ => format!(
                    r#"{{"event":"Login","time":{t},"user":"user{}","email":"u{}@example.com","ip":"10.0.{}.{}","ok":true}}"#,
                    rnd() % 1000,
                    rnd() % 1000,
                    rnd() % 256,
                    rnd() % 256
                ),
            }
        })
        .collect()
}

/// Tests' spacing of events: 100 ms, so that some hashes are slow.
#[cfg(test)]
pub const TEST_STEP: i64 = 100_000_000;

/// Log records per OTLP/JSON export line.
pub const OTLP_BATCH: usize = 100;

/// The same events as [`lines`], as OTLP/JSON log exports of
/// [`OTLP_BATCH`] records each (one `resourceLogs` object a line, as an
/// OTLP/HTTP JSON body or a collector's file exporter writes them): the
/// durable ID in `eventName`, the time in `timeUnixNano`, every other key
/// as an attribute. A line that is not a JSON object is an error.
pub fn otlp_batches(flat: &[String]) -> Result<Vec<String>, String> {
    flat.chunks(OTLP_BATCH)
        .map(|chunk| {
            let records = chunk
                .iter()
                .map(|line| otlp_record(line))
                .collect::<Result<Vec<_>, _>>()?;
            let export = json!({"resourceLogs": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
                "scopeLogs": [{"logRecords": records}]
            }]});
            Ok(export.to_string())
        })
        .collect()
}

fn otlp_record(line: &str) -> Result<Json, String> {
    let json: Json = serde_json::from_str(line).map_err(|e| format!("{e} in {line}"))?;
    let Json::Object(object) = json else {
        return Err(format!("not a JSON object: {line}"));
    };
    let mut record = serde_json::Map::new();
    let mut attributes = Vec::new();
    for (key, value) in object {
        match key.as_str() {
            "event" => {
                record.insert("eventName".into(), value);
            }
            "time" => {
                record.insert("timeUnixNano".into(), Json::from(value.to_string()));
            }
            _ => attributes.push(json!({"key": key, "value": any_value(&value)?})),
        }
    }
    record.insert("attributes".into(), Json::Array(attributes));
    Ok(Json::Object(record))
}

/// An OTLP/JSON `AnyValue` of a scalar (64-bit integers as strings, as the
/// OTLP JSON mapping writes them).
fn any_value(v: &Json) -> Result<Json, String> {
    Ok(match v {
        Json::Bool(b) => json!({"boolValue": b}),
        Json::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Json::Number(n) => json!({"doubleValue": n}),
        Json::String(s) => json!({"stringValue": s}),
        other => return Err(format!("no OTLP scalar for {other}")),
    })
}

/// The same events as [`otlp_batches`], as the protobuf bodies of OTLP
/// exports (`ExportLogsServiceRequest`, as a gRPC or OTLP/HTTP protobuf
/// sender posts them) of [`OTLP_BATCH`] records each, with the resource
/// and scope layout of the JSON form. Attributes as an SDK sends them:
/// text as `string_value`, integers as `int_value`; the durable ID in
/// `event_name`, the time in `time_unix_nano`. A line that is not a JSON
/// object of scalars is an error.
pub fn otlp_requests(flat: &[String]) -> Result<Vec<Bytes>, String> {
    flat.chunks(OTLP_BATCH)
        .map(|chunk| {
            let log_records = chunk
                .iter()
                .map(|line| proto_record(line))
                .collect::<Result<Vec<_>, _>>()?;
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![key_value(
                            "service.name",
                            any_value::Value::StringValue("bench".into()),
                        )],
                        ..Resource::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records,
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            Ok(Bytes::from(request.encode_to_vec()))
        })
        .collect()
}

fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn proto_record(line: &str) -> Result<LogRecord, String> {
    let json: Json = serde_json::from_str(line).map_err(|e| format!("{e} in {line}"))?;
    let Json::Object(object) = json else {
        return Err(format!("not a JSON object: {line}"));
    };
    let mut record = LogRecord::default();
    for (key, value) in object {
        match (key.as_str(), value) {
            ("event", Json::String(name)) => record.event_name = name,
            ("time", Json::Number(t)) => {
                record.time_unix_nano = t
                    .as_u64()
                    .ok_or_else(|| format!("time {t} is not nanoseconds since 1970 in {line}"))?
            }
            (_, value) => {
                let value = match value {
                    Json::Bool(b) => any_value::Value::BoolValue(b),
                    Json::Number(n) => match n.as_i64() {
                        Some(i) => any_value::Value::IntValue(i),
                        None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    Json::String(s) => any_value::Value::StringValue(s),
                    other => return Err(format!("no OTLP scalar for {key}: {other} in {line}")),
                };
                record.attributes.push(key_value(&key, value));
            }
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtc_engine::event::{Input, decode_line};

    #[test]
    fn every_workload_checks_and_lowers() {
        for w in 0..SOURCES.len() {
            program(w).unwrap();
        }
        assert!(program(SOURCES.len()).unwrap_err().contains("no workload"));
    }

    /// Read by the agent's own mapping (every attribute kept), a request's
    /// records are the flat lines' events.
    #[test]
    fn otlp_requests_are_the_same_events_as_the_flat_lines() {
        use dtc_agent::convert::{Needs, received_event};
        use dtc_agent::wire::Request;
        let needs = Needs {
            everything: true,
            ..Needs::default()
        };
        for w in 0..SOURCES.len() {
            let flat = lines(w, 250);
            let requests = otlp_requests(&flat).unwrap();
            assert_eq!(requests.len(), 3);
            let mut from_proto = Vec::new();
            for bytes in requests {
                let request = Request::parse(bytes).unwrap();
                let resource = Default::default();
                for k in 0..request.len() {
                    from_proto.push(
                        received_event(&request, k, &resource, &needs, &mut Vec::new()).unwrap(),
                    );
                }
            }
            assert_eq!(from_proto.len(), 250);
            for (line, b) in flat.iter().zip(&from_proto) {
                let decoded = decode_line(line);
                let [Input::Event(a)] = decoded.as_slice() else {
                    panic!("not one event: {line}");
                };
                assert_eq!(
                    (&a.name, a.time, &a.attributes),
                    (&b.name, b.time, &b.attributes),
                    "{line}"
                );
            }
        }
        assert!(otlp_requests(&["[1]".to_string()]).is_err());
    }

    #[test]
    fn otlp_batches_decode_to_the_same_events_as_the_flat_lines() {
        for w in 0..SOURCES.len() {
            let flat = lines(w, 250);
            let from_flat: Vec<Input> = flat.iter().flat_map(|l| decode_line(l)).collect();
            let batches = otlp_batches(&flat).unwrap();
            assert_eq!(batches.len(), 3);
            let from_otlp: Vec<Input> = batches.iter().flat_map(|l| decode_line(l)).collect();
            assert_eq!(from_flat.len(), 250);
            assert_eq!(from_otlp.len(), 250);
            for (a, b) in from_flat.iter().zip(&from_otlp) {
                let (Input::Event(a), Input::Event(b)) = (a, b) else {
                    panic!("not events: {a:?} {b:?}");
                };
                assert_eq!(
                    (&a.name, a.time, &a.attributes),
                    (&b.name, b.time, &b.attributes)
                );
            }
        }
    }
}
