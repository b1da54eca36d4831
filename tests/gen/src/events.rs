//! Event streams for a generated program: JSON lines of its declared
//! events with values of the declared types, and everything a real stream
//! holds besides: absent and null optional fields, values of the wrong
//! type, events no schema declares, the logs the program emits arriving as
//! input, malformed lines, comments, OTLP/JSON documents, time going
//! backwards and gaps long enough to close windows and fire timeouts.

use serde_json::{Map, Value as Json, json};

use crate::entropy::Entropy;
use crate::program::{EventDecl, Program};
use crate::ty::{Base, Ty};

/// 2026-11-22T10:00:00Z, in nanoseconds since the Unix epoch.
pub const BASE_TIME: i64 = 1_795_341_600_000_000_000;

const SEC: i64 = 1_000_000_000;

const STRINGS: [&str; 10] = [
    "a",
    "b",
    "a.png",
    "/srv/x.tar.gz",
    "",
    "héllo wörld",
    "ERROR",
    "k1",
    "😀 emoji",
    "42",
];

/// Up to `max` lines of input for `program`.
pub fn events(e: &mut Entropy<'_>, program: &Program, max: usize) -> String {
    let mut lines = Vec::new();
    let mut t = BASE_TIME + e.range(0, 59) * SEC;
    while lines.len() < max && (lines.is_empty() || e.chance(15, 16)) {
        t += gap(e);
        lines.push(line(e, program, t));
    }
    lines.join("\n") + "\n"
}

/// How far the clock moves before the next line: mostly a little, often
/// past a window or a timeout, sometimes backwards.
fn gap(e: &mut Entropy<'_>) -> i64 {
    match e.weighted(&[6, 4, 3, 2, 1, 1]) {
        0 => e.range(0, 3) * SEC,
        1 => e.range(0, 999) * 1_000_000,
        2 => e.range(20, 90) * SEC,
        3 => e.range(5, 120) * 60 * SEC,
        4 => -e.range(1, 90) * SEC,
        _ => 0,
    }
}

fn line(e: &mut Entropy<'_>, program: &Program, t: i64) -> String {
    match e.weighted(&[20, 2, 2, 1, 1, 1, 1]) {
        0 => {
            let ev = &program.events[e.below(program.events.len())];
            let obj = declared(e, ev, t);
            if e.chance(1, 8) {
                otlp(&obj)
            } else {
                Json::Object(obj).to_string()
            }
        }
        1 => {
            // An event the program does not declare.
            let mut obj = standard(e, t);
            obj.insert("event".into(), json!(e.pick(&["Unknown", "ev0", "Other"])));
            obj.insert("x".into(), json!(1));
            Json::Object(obj).to_string()
        }
        2 if !program.derived.is_empty() => {
            // A log the program emits, arriving from outside.
            let d = &program.derived[e.below(program.derived.len())];
            let mut obj = standard(e, t);
            obj.insert("event".into(), json!(d.name));
            for (f, ty) in &d.fields {
                if e.chance(3, 4) {
                    obj.insert(f.clone(), value(e, *ty));
                }
            }
            Json::Object(obj).to_string()
        }
        3 => (*e.pick(&[
            "not json",
            "[1, 2, 3]",
            "{\"event\": \"Ev0\", \"time\": \"yesterday\"}",
            "{\"event\": \"Ev0\", \"severity\": 99}",
            "{\"event\": \"Ev0\", \"resource\": 5}",
            "{\"resourceLogs\": 5}",
            "\"Ev0\"",
            "{",
        ]))
        .to_string(),
        4 => (*e.pick(&["", "# a comment", "   "])).to_string(),
        5 => {
            // No durable ID at all.
            let obj = standard(e, t);
            Json::Object(obj).to_string()
        }
        _ => {
            // Only an observed time: `time` falls back to it.
            let ev = &program.events[e.below(program.events.len())];
            let mut obj = declared(e, ev, t);
            obj.remove("time");
            obj.insert("observed_time".into(), json!(t));
            Json::Object(obj).to_string()
        }
    }
}

/// The standard fields of a line at time `t`.
fn standard(e: &mut Entropy<'_>, t: i64) -> Map<String, Json> {
    let mut obj = Map::new();
    obj.insert(
        "time".into(),
        if e.chance(1, 2) {
            json!(rfc3339(t))
        } else {
            json!(t)
        },
    );
    if e.chance(1, 2) {
        let sev = match e.below(4) {
            0 => json!(e.range(0, 24)),
            1 => json!(e.pick(&["INFO", "WARN", "ERROR", "DEBUG", "FATAL"])),
            2 => json!(9),
            _ => json!(17),
        };
        obj.insert("severity".into(), sev);
    }
    if e.chance(1, 3) {
        obj.insert("thread.id".into(), json!(e.range(1, 4)));
    }
    if e.chance(1, 4) {
        obj.insert(
            "resource".into(),
            json!({"service.name": e.pick(&["svc", "web", "unknown"])}),
        );
    }
    if e.chance(1, 4) {
        obj.insert("body".into(), json!(e.pick(&STRINGS)));
    }
    if e.chance(1, 6) {
        obj.insert("trace_id".into(), json!("0af7651916cd43dd8448eb211c80319c"));
        obj.insert("span_id".into(), json!("b7ad6b7169203331"));
    }
    // Undeclared attributes, read through `attrs["k"]`.
    for key in ["k1", "k2", "count", "flag"] {
        if e.chance(1, 5) {
            let v = match e.below(5) {
                0 => json!(e.range(-2, 9)),
                1 => json!(e.pick(&STRINGS)),
                2 => json!(e.chance(1, 2)),
                3 => json!(1.5),
                _ => json!(e.pick(&["7", "true", "x"])),
            };
            obj.insert(key.into(), v);
        }
    }
    obj
}

/// A line of a declared event: mostly well-typed, sometimes not.
fn declared(e: &mut Entropy<'_>, ev: &EventDecl, t: i64) -> Map<String, Json> {
    let mut obj = standard(e, t);
    obj.insert("event".into(), json!(ev.id));
    for f in &ev.fields {
        match e.weighted(&[12, 1, 1, 1]) {
            0 => {
                obj.insert(f.wire.clone(), value(e, f.ty));
            }
            1 if f.ty.opt => {
                obj.insert(f.wire.clone(), Json::Null);
            }
            // Absent: fine for an optional field, a mismatch otherwise.
            1 | 2 => {}
            _ => {
                obj.insert(f.wire.clone(), wrong(e, f.ty.base));
            }
        }
    }
    obj
}

/// A JSON value of a type, as a producer would write it.
pub fn value(e: &mut Entropy<'_>, ty: Ty) -> Json {
    match ty.base {
        Base::Int => match e.weighted(&[8, 2, 1, 1, 1, 1]) {
            0 => json!(e.range(-3, 12)),
            1 => json!(e.range(0, 100_000)),
            2 => json!(i64::MAX),
            3 => json!(i64::MIN),
            4 => json!(0),
            _ => json!(e.range(0, 50).to_string()),
        },
        Base::Float => json!(*e.pick(&[1.5, 0.0, -0.0, 2.25, 1e300, -7.0, 3.0, 0.1])),
        Base::Str | Base::Bytes => json!(e.pick(&STRINGS)),
        Base::Bool => json!(e.chance(1, 2)),
        Base::Duration => match e.below(3) {
            0 => json!(e.range(0, 5_000) * 1_000_000),
            1 => json!(e.pick(&["1s", "250ms", "2m", "1h 5m", "0s"])),
            _ => json!(e.range(0, 90) * SEC),
        },
        Base::Timestamp => {
            let at = BASE_TIME + e.range(-100, 400) * SEC;
            if e.chance(1, 2) {
                json!(rfc3339(at))
            } else {
                json!(at)
            }
        }
        Base::Percent => json!(*e.pick(&[0.0, 1.0, 50.0, 99.5, 100.0])),
    }
}

/// A value that is not of the type (or, for some, a form it rejects).
fn wrong(e: &mut Entropy<'_>, b: Base) -> Json {
    match b {
        Base::Str | Base::Bytes => json!(e.pick(&[json!(5), json!(true), json!([1])])),
        Base::Int => json!(e.pick(&[json!("x"), json!(1.5), json!(true), json!(1e30)])),
        Base::Percent => json!(150.0),
        _ => json!(e.pick(&[json!("not a value"), json!(true), json!({"a": 1})])),
    }
}

/// An OTLP/JSON log export holding the flat event `obj`.
fn otlp(obj: &Map<String, Json>) -> String {
    let mut attrs = Vec::new();
    for (k, v) in obj {
        if [
            "event", "time", "severity", "body", "resource", "trace_id", "span_id",
        ]
        .contains(&k.as_str())
        {
            continue;
        }
        let any = match v {
            Json::String(s) => json!({"stringValue": s}),
            Json::Bool(b) => json!({"boolValue": b}),
            Json::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
            Json::Number(n) => json!({"doubleValue": n}),
            _ => continue,
        };
        attrs.push(json!({"key": k, "value": any}));
    }
    let time = match obj.get("time") {
        Some(Json::Number(n)) => n.to_string(),
        _ => BASE_TIME.to_string(),
    };
    let mut record = json!({
        "timeUnixNano": time,
        "eventName": obj.get("event").cloned().unwrap_or(Json::Null),
        "attributes": attrs,
    });
    if let Some(Json::Number(n)) = obj.get("severity") {
        record["severityNumber"] = json!(n);
    }
    if let Some(Json::String(b)) = obj.get("body") {
        record["body"] = json!({"stringValue": b});
    }
    let service = obj
        .get("resource")
        .and_then(|r| r.get("service.name"))
        .cloned()
        .unwrap_or(json!("svc"));
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": [record]}],
    }]})
    .to_string()
}

/// `t` (nanoseconds since the epoch) as RFC 3339, in UTC.
pub fn rfc3339(t: i64) -> String {
    let secs = t.div_euclid(SEC);
    let nanos = t.rem_euclid(SEC);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{nanos:09}Z")
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_time_is_the_samples_morning() {
        assert_eq!(rfc3339(BASE_TIME), "2026-11-22T10:00:00Z");
        assert_eq!(
            rfc3339(BASE_TIME + 1_500_000_000),
            "2026-11-22T10:00:01.500000000Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
