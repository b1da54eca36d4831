//! Lines per second of `event::decode_line`, which reads a flat line
//! straight into its `InputEvent`, against `event::decode_line_via_value`,
//! which builds a whole `serde_json::Value` of the line first (the decoder
//! before it, and its fallback), measured in the same run over the same
//! lines: each sample scenario's generated stream, wide lines of twenty
//! attributes with escapes in their values, and OTLP/JSON exports of 100
//! records a line (the secret scenario's events; a plain export is read by
//! `event::otlp_json` without a `Value` of the line).
//!
//! Run with `cargo bench -p dtc-engine --bench decode` (`DTC_BENCH_EVENTS`
//! sets the lines per scenario). Absolute numbers on a shared machine are
//! noise; the ratio is the result. End to end (decode and run) is the
//! throughput bench's `e2e` columns.

use std::hint::black_box;
use std::time::Instant;

use dtc_engine::event::{Input, InputEvent, decode_line, decode_line_via_value};
use dtc_engine::generate::{Scenario, generate};
use serde_json::{Value as Json, json};

/// Lines per second of each decoder over `lines`, best of five runs each,
/// the two taking turns so that a busy spell of a shared machine slows
/// both rather than one.
fn rates(lines: &[String], decoders: [fn(&str) -> Vec<Input>; 2]) -> [f64; 2] {
    let mut best = [f64::MAX; 2];
    for _ in 0..5 {
        for (decode, best) in decoders.iter().zip(&mut best) {
            let start = Instant::now();
            for line in lines {
                black_box(decode(black_box(line)));
            }
            *best = best.min(start.elapsed().as_secs_f64());
        }
    }
    best.map(|secs| lines.len() as f64 / secs)
}

/// Wide events: standard fields beside many attributes, some with escapes.
fn wide(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let attributes: Vec<String> = (0..20)
                .map(|k| format!(r#""attr.{k}":"value \"{i}\" {k}""#))
                .collect();
            format!(
                r#"{{"event":"Wide","time":"2026-11-22T10:00:{:02}Z","severity":"INFO","body":"line {i}","thread.id":{},{}}}"#,
                i % 60,
                i % 8,
                attributes.join(",")
            )
        })
        .collect()
}

/// An OTLP/JSON `AnyValue` of a decoded attribute (64-bit integers as
/// strings, as the OTLP JSON mapping writes them).
fn any_value(v: &Json) -> Json {
    match v {
        Json::Bool(b) => json!({"boolValue": b}),
        Json::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Json::Number(n) => json!({"doubleValue": n}),
        Json::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    }
}

fn otlp_record(e: &InputEvent) -> Json {
    let attributes: Vec<Json> = e
        .attributes
        .iter()
        .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
        .collect();
    let mut record = json!({
        "timeUnixNano": e.time.to_string(),
        "severityNumber": e.severity,
        "attributes": attributes,
    });
    if let Some(name) = &e.name {
        record["eventName"] = json!(name);
    }
    if let Some(body) = &e.body {
        record["body"] = json!({"stringValue": body});
    }
    record
}

/// The events of `flat`, 100 records an export line, under the resource of
/// each line's first.
fn exports(flat: &[String]) -> Vec<String> {
    let events: Vec<InputEvent> = flat
        .iter()
        .flat_map(|l| decode_line(l))
        .filter_map(|i| match i {
            Input::Event(e) => Some(e),
            Input::Malformed { .. } => None,
        })
        .collect();
    events
        .chunks(100)
        .map(|chunk| {
            let resource: Vec<Json> = chunk[0]
                .resource
                .iter()
                .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
                .collect();
            let records: Vec<Json> = chunk.iter().map(otlp_record).collect();
            json!({"resourceLogs": [{
                "resource": {"attributes": resource},
                "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": records}]
            }]})
            .to_string()
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("DTC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!("lines per second, best of 5 alternating runs over {n} lines (higher is better)\n");
    println!(
        "{:<16} {:>12} {:>12} {:>8}",
        "lines", "direct", "via Value", "speedup"
    );
    let mut streams: Vec<(&str, Vec<String>)> = Scenario::ALL
        .into_iter()
        .map(|s| (s.name(), generate(s, n, 1)))
        .collect();
    streams.push(("wide (20 attrs)", wide(n / 4)));
    let secret = generate(Scenario::Secret, n, 1);
    streams.push(("OTLP/JSON x100", exports(&secret)));
    for (name, lines) in &streams {
        // Both decoders must agree on what they are timed on.
        for line in lines.iter().take(1000) {
            assert_eq!(decode_line(line), decode_line_via_value(line), "{line}");
        }
        let [direct, via_value] = rates(lines, [decode_line, decode_line_via_value]);
        println!(
            "{name:<16} {direct:>12.0} {via_value:>12.0} {:>7.2}x",
            direct / via_value
        );
    }
    println!("\nspeedup = direct lines per second / via Value lines per second");
    println!("(an OTLP/JSON line holds 100 records)");
}
