//! OTLP to events and back.
//!
//! Inbound, one mapping: `dtc_engine::event::otlp_proto` turns a protobuf
//! `LogRecord` into an `InputEvent` by the same rules as OTLP/JSON.
//!
//! Outbound:
//! - An event that leaves the box is the **received record, edited**: only
//!   what shaping changed is rewritten (a removed attribute is removed, a
//!   redacted one replaced, a changed body or ID set), so scope, flags,
//!   typed values (bytes, kvlists) and dropped counts survive untouched.
//!   Trace and span IDs that shaping turned into something that is not an
//!   ID (a hash) move to the attributes `trace_id` / `span_id`.
//! - A derived log (`emit log`) becomes a record with the log's name as
//!   `event_name`, its fields as attributes, the event time as its time.
//! - A metric point becomes an OTLP metric by the aggregate that made it:
//!   `count`/`count_if`/`sum` a delta `Sum` (monotonic for counts),
//!   `min`/`max`/`avg`/`percentile`/`distinct_count` a `Gauge`, `histogram`
//!   a delta `Histogram`; labels become attributes; the window gives the
//!   start and end times. Durations are exported as seconds with unit `s`.
//! - Derived telemetry carries the agent's resource (`service.name` =
//!   `dtc-agent`) and a scope named after the program.

use std::collections::BTreeMap;

use dtc_engine::MetricValue;
use dtc_engine::event::InputEvent;
use dtc_engine::value::Value;
use dtc_ir::AggKind;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value as Json;

/// The resource of everything the agent itself produces.
pub fn agent_resource() -> Resource {
    Resource {
        attributes: vec![
            key_value("service.name", &Json::from("dtc-agent")),
            key_value("service.version", &Json::from(env!("CARGO_PKG_VERSION"))),
        ],
        ..Resource::default()
    }
}

/// The scope of a program's derived telemetry.
pub fn program_scope(program: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: program.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..InstrumentationScope::default()
    }
}

pub fn key_value(key: &str, value: &Json) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(any_value(value)),
        ..KeyValue::default()
    }
}

/// Natural JSON back to an `AnyValue` (the inverse of the inbound mapping,
/// except that bytes, having become base64 text, stay strings).
pub fn any_value(value: &Json) -> AnyValue {
    let value = match value {
        Json::Null => None,
        Json::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Json::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Json::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Json::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value).collect(),
        })),
        Json::Object(map) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: map.iter().map(|(k, v)| key_value(k, v)).collect(),
        })),
    };
    AnyValue { value }
}

fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn parse_hex(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..len)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The received `record`, edited where `shaped` differs from `original`
/// (both decoded from it). See the module docs.
pub fn reshape(record: &LogRecord, original: &InputEvent, shaped: &InputEvent) -> LogRecord {
    let mut out = record.clone();
    if shaped == original {
        return out;
    }
    if shaped.attributes != original.attributes {
        out.attributes
            .retain(|kv| shaped.attributes.contains_key(&kv.key));
        for kv in &mut out.attributes {
            let new = &shaped.attributes[&kv.key];
            if original.attributes.get(&kv.key) != Some(new) {
                *kv = key_value(&kv.key, new);
            }
        }
        for (k, v) in &shaped.attributes {
            if !original.attributes.contains_key(k) {
                out.attributes.push(key_value(k, v));
            }
        }
    }
    if shaped.body != original.body {
        out.body = shaped.body.as_deref().map(string_value);
    }
    if shaped.severity != original.severity {
        out.severity_number = shaped.severity as i32;
    }
    if shaped.severity_text != original.severity_text {
        out.severity_text = shaped.severity_text.clone().unwrap_or_default();
    }
    if shaped.name != original.name {
        out.event_name = shaped.name.clone().unwrap_or_default();
    }
    if shaped.time != original.time {
        out.time_unix_nano = shaped.time.max(0) as u64;
    }
    if shaped.observed_time != original.observed_time {
        out.observed_time_unix_nano = shaped.observed_time.max(0) as u64;
    }
    let ids = [
        (
            &shaped.trace_id,
            &original.trace_id,
            &mut out.trace_id,
            16,
            "trace_id",
        ),
        (
            &shaped.span_id,
            &original.span_id,
            &mut out.span_id,
            8,
            "span_id",
        ),
    ];
    for (new, old, field, len, key) in ids {
        if new == old {
            continue;
        }
        field.clear();
        match new.as_deref().map(|t| (t, parse_hex(t, len))) {
            Some((_, Some(bytes))) => *field = bytes,
            Some((text, None)) => out.attributes.push(key_value(key, &Json::from(text))),
            None => {}
        }
    }
    out
}

/// Converts resource attributes (as an event holds them) to a `Resource`.
pub fn resource(attributes: &BTreeMap<String, Json>) -> Resource {
    Resource {
        attributes: attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
        ..Resource::default()
    }
}

/// A log a program emitted.
pub fn derived_log(name: &str, time: i64, fields: &[(String, Value)], now: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: time.max(0) as u64,
        observed_time_unix_nano: now,
        event_name: name.to_string(),
        attributes: fields
            .iter()
            .map(|(k, v)| key_value(k, &v.to_json()))
            .collect(),
        ..LogRecord::default()
    }
}

/// A record the agent writes about itself or a program: an event name, a
/// severity, a message body and attributes.
pub fn agent_log(
    event_name: &str,
    severity: i32,
    message: &str,
    attributes: &[(&str, Json)],
    now: u64,
) -> LogRecord {
    LogRecord {
        time_unix_nano: now,
        observed_time_unix_nano: now,
        event_name: event_name.to_string(),
        severity_number: severity,
        severity_text: match severity {
            17.. => "ERROR",
            13.. => "WARN",
            _ => "INFO",
        }
        .to_string(),
        body: Some(string_value(message)),
        attributes: attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
        ..LogRecord::default()
    }
}

/// A metric point as an OTLP metric, or `None` for a point without a value
/// (an aggregate over nothing), which the caller counts.
pub fn metric(
    name: &str,
    labels: &[(String, String)],
    value: &MetricValue,
    start: i64,
    end: i64,
    kind: Option<&AggKind>,
) -> Option<Metric> {
    let attributes: Vec<KeyValue> = labels
        .iter()
        .map(|(k, v)| key_value(k, &Json::from(v.as_str())))
        .collect();
    let (start, end) = (start.max(0) as u64, end.max(0) as u64);
    let number = |v: number_data_point::Value| NumberDataPoint {
        attributes: attributes.clone(),
        start_time_unix_nano: start,
        time_unix_nano: end,
        value: Some(v),
        ..NumberDataPoint::default()
    };
    let (point, unit) = match value {
        MetricValue::Int(i) => (number(number_data_point::Value::AsInt(*i)), ""),
        MetricValue::Float(f) => (number(number_data_point::Value::AsDouble(*f)), ""),
        MetricValue::Seconds(s) => (number(number_data_point::Value::AsDouble(*s)), "s"),
        MetricValue::None => return None,
        MetricValue::Histogram {
            bounds,
            counts,
            count,
            sum,
            min,
            max,
        } => {
            let finite = |f: f64| f.is_finite().then_some(f);
            let point = HistogramDataPoint {
                attributes: attributes.clone(),
                start_time_unix_nano: start,
                time_unix_nano: end,
                count: *count,
                sum: finite(*sum),
                bucket_counts: counts.clone(),
                explicit_bounds: bounds.clone(),
                min: finite(*min),
                max: finite(*max),
                ..HistogramDataPoint::default()
            };
            return Some(Metric {
                name: name.to_string(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points: vec![point],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                })),
                ..Metric::default()
            });
        }
    };
    let data = match kind {
        Some(AggKind::Count | AggKind::CountIf) => metric::Data::Sum(Sum {
            data_points: vec![point],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
        Some(AggKind::Sum) => metric::Data::Sum(Sum {
            data_points: vec![point],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: false,
        }),
        _ => metric::Data::Gauge(Gauge {
            data_points: vec![point],
        }),
    };
    Some(Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        data: Some(data),
        ..Metric::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtc_engine::event::{Input, decode_line, otlp_proto};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use serde_json::json;

    /// An OTLP/JSON export decoded by the engine's JSON path and, through
    /// the protobuf messages, by its protobuf path gives the same events.
    #[test]
    fn protobuf_and_json_paths_agree() {
        let line = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"imagesvc"}},{"key":"host.cores","value":{"intValue":"2"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[
{"timeUnixNano":"1795341600500000000","observedTimeUnixNano":"1795341600600000000","severityNumber":9,"severityText":"INFO","body":{"stringValue":"started"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","eventName":"LogStartingFileHash","attributes":[{"key":"fileName","value":{"stringValue":"a.png"}},{"key":"thread.id","value":{"intValue":"7"}},{"key":"ratio","value":{"doubleValue":0.5}},{"key":"ok","value":{"boolValue":true}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"3"}]}}},{"key":"nested","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"Infinity"}}]}}},{"key":"raw","value":{"bytesValue":"AAE="}},{"key":"empty","value":{}}]},
{"observedTimeUnixNano":"1795341601000000000","severityNumber":17,"body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}},"attributes":[{"key":"event.name","value":{"stringValue":"ErrorHashing"}}]}
]}]}]}"#.replace('\n', "");
        let from_json: Vec<InputEvent> = decode_line(&line)
            .into_iter()
            .map(|i| match i {
                Input::Event(e) => e,
                other => panic!("{other:?}"),
            })
            .collect();
        let request: ExportLogsServiceRequest = serde_json::from_str(&line).unwrap();
        let rl = &request.resource_logs[0];
        let res = otlp_proto::attributes(&rl.resource.as_ref().unwrap().attributes);
        let from_proto: Vec<InputEvent> = rl.scope_logs[0]
            .log_records
            .iter()
            .map(|r| otlp_proto::decode_record(r, &res).unwrap())
            .collect();
        assert_eq!(from_json.len(), 2);
        assert_eq!(from_proto, from_json);
    }

    fn record() -> LogRecord {
        LogRecord {
            event_name: "E".into(),
            time_unix_nano: 5,
            trace_id: vec![1; 16],
            attributes: vec![
                key_value("keep", &json!(1)),
                key_value("secret", &json!("hunter2")),
                key_value("gone", &json!(true)),
                KeyValue {
                    key: "raw".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BytesValue(vec![0, 1])),
                    }),
                    ..KeyValue::default()
                },
            ],
            flags: 1,
            ..LogRecord::default()
        }
    }

    #[test]
    fn reshape_edits_only_what_changed() {
        let r = record();
        let original = otlp_proto::decode_record(&r, &BTreeMap::new()).unwrap();
        assert_eq!(reshape(&r, &original, &original), r);
        let mut shaped = original.clone();
        shaped.attributes.remove("gone");
        shaped
            .attributes
            .insert("secret".into(), json!("h:1234abcd"));
        shaped.trace_id = Some("not-an-id".into());
        shaped.body = Some("redacted".into());
        let out = reshape(&r, &original, &shaped);
        let keys: Vec<&str> = out.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["keep", "secret", "raw", "trace_id"]);
        assert_eq!(out.attributes[1], key_value("secret", &json!("h:1234abcd")));
        assert_eq!(out.attributes[2], r.attributes[3], "bytes stay bytes");
        assert!(out.trace_id.is_empty());
        assert_eq!(out.body, Some(string_value("redacted")));
        assert_eq!(out.flags, 1);
    }

    #[test]
    fn metrics_by_aggregate() {
        let labels = [("ext".to_string(), "png".to_string())];
        let m = metric(
            "n",
            &labels,
            &MetricValue::Int(3),
            10,
            20,
            Some(&AggKind::Count),
        )
        .unwrap();
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!("{m:?}")
        };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].start_time_unix_nano, 10);
        assert_eq!(s.data_points[0].time_unix_nano, 20);
        assert_eq!(s.data_points[0].attributes[0].key, "ext");
        let m = metric(
            "n",
            &[],
            &MetricValue::Seconds(1.5),
            0,
            1,
            Some(&AggKind::Avg),
        )
        .unwrap();
        assert!(matches!(m.data, Some(metric::Data::Gauge(_))));
        assert_eq!(m.unit, "s");
        let h = MetricValue::Histogram {
            bounds: vec![1.0],
            counts: vec![1, 2],
            count: 3,
            sum: 4.0,
            min: 0.5,
            max: 2.0,
        };
        let m = metric("h", &[], &h, 0, 1, None).unwrap();
        let Some(metric::Data::Histogram(h)) = &m.data else {
            panic!()
        };
        assert_eq!(h.data_points[0].bucket_counts, [1, 2]);
        assert!(metric("n", &[], &MetricValue::None, 0, 1, None).is_none());
    }
}
