//! SDK log records to engine events and back: the same mapping the engine
//! applies to OTLP/JSON and the agent to OTLP protobuf
//! (`runtime/engine/src/event.rs`), read from `SdkLogRecord` instead.
//!
//! Inbound ([`to_event`]):
//! - **Durable ID**: the record's event name, else the `event.name`
//!   attribute when it is a non-empty string (it stays an attribute too).
//! - **Time**: the timestamp, else the observed timestamp, else 0, as
//!   nanoseconds since the Unix epoch. A time past the year 2262 does not
//!   fit: the record is malformed (the caller passes it on unchanged).
//! - **Severity**: the severity number (0 when unset) and text.
//! - **Body** and **attributes**: an `AnyValue` becomes natural JSON: a
//!   string, an integer, a number (NaN and the infinities as the strings
//!   `"NaN"`, `"Infinity"`, `"-Infinity"`), a boolean, an array, an object;
//!   bytes (UTF-8 or not) become their base64 text. A body that is not a
//!   string becomes its compact JSON text. Of two attributes with one key,
//!   the later wins.
//! - **Trace and span IDs**: lowercase hex, as OTLP/JSON writes them; an
//!   invalid (all-zero) ID is absent.
//! - The resource is the provider's, filled in by the engine thread.
//!
//! Outbound, an event that leaves is **the application's record, edited**
//! ([`reshape`]): only what shaping changed is rewritten (a removed
//! attribute removed, a redacted one replaced, a changed body, severity or
//! ID set), so the target, flags and typed values (bytes, maps, doubles)
//! of everything else survive untouched. Trace and span IDs that shaping
//! turned into something that is not an ID (a hash, a mask) move to the
//! attributes `trace_id` / `span_id`, as the agent does.
//!
//! The SDK keeps event names and severity texts as `&'static str`: new
//! ones (the names of derived logs, a masked severity text) are interned
//! once each by [`intern`], up to [`MAX_INTERNED`] distinct strings.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use dtc_engine::event::{EVENT_NAME_ATTRIBUTE, InputEvent};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{Key, SpanId, TraceId};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLoggerProvider};
use serde_json::{Map, Value as Json};

/// How many distinct strings [`intern`] keeps (each is leaked once).
pub const MAX_INTERNED: usize = 4096;

/// The event of an SDK record, without its resource. `Err` says why the
/// record cannot be an event (a time out of range).
pub fn to_event(record: &SdkLogRecord) -> Result<InputEvent, String> {
    let nanos = |t: Option<SystemTime>, what: &str| {
        t.map(|t| {
            unix_nanos(t).ok_or_else(|| {
                format!("{what}: the time does not fit in i64 nanoseconds since the epoch (1677 to 2262)")
            })
        })
        .transpose()
    };
    let time = nanos(record.timestamp(), "timestamp")?;
    let observed = nanos(record.observed_timestamp(), "observed timestamp")?;
    let mut attributes = BTreeMap::new();
    for (key, value) in record.attributes_iter() {
        attributes.insert(key.as_str().to_string(), any_value_json(value));
    }
    let (trace_id, span_id) = match record.trace_context() {
        Some(cx) => (
            (cx.trace_id != TraceId::INVALID).then(|| cx.trace_id.to_string()),
            (cx.span_id != SpanId::INVALID).then(|| cx.span_id.to_string()),
        ),
        None => (None, None),
    };
    let mut name = record
        .event_name()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if name.is_none()
        && let Some(Json::String(s)) = attributes.get(EVENT_NAME_ATTRIBUTE)
        && !s.is_empty()
    {
        name = Some(s.clone());
    }
    let observed_time = observed.unwrap_or(0);
    Ok(InputEvent {
        name,
        time: time.filter(|&t| t != 0).unwrap_or(observed_time),
        observed_time,
        severity: record.severity_number().map_or(0, |s| s as i64),
        severity_text: record
            .severity_text()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        body: record.body().map(|b| match any_value_json(b) {
            Json::String(s) => s,
            other => other.to_string(),
        }),
        trace_id,
        span_id,
        attributes,
        resource: BTreeMap::new(),
    })
}

/// An `AnyValue` as natural JSON (see the module docs).
pub fn any_value_json(value: &AnyValue) -> Json {
    match value {
        AnyValue::Int(i) => Json::from(*i),
        AnyValue::Double(f) => double_json(*f),
        AnyValue::String(s) => Json::from(s.as_str()),
        AnyValue::Boolean(b) => Json::Bool(*b),
        AnyValue::Bytes(b) => Json::from(base64::engine::general_purpose::STANDARD.encode(&**b)),
        AnyValue::ListAny(items) => Json::Array(items.iter().map(any_value_json).collect()),
        AnyValue::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), any_value_json(v)))
                .collect(),
        ),
        // A kind of value a later SDK adds: its debug text, so nothing
        // fails and the value is still visible.
        other => Json::from(format!("{other:?}")),
    }
}

/// A resource attribute value (the SDK's `Value`) as natural JSON.
pub fn value_json(value: &opentelemetry::Value) -> Json {
    use opentelemetry::{Array, Value};
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I64(i) => Json::from(*i),
        Value::F64(f) => double_json(*f),
        Value::String(s) => Json::from(s.as_str()),
        Value::Array(Array::Bool(v)) => Json::from(v.clone()),
        Value::Array(Array::I64(v)) => Json::from(v.clone()),
        Value::Array(Array::F64(v)) => Json::Array(v.iter().map(|f| double_json(*f)).collect()),
        Value::Array(Array::String(v)) => {
            Json::Array(v.iter().map(|s| Json::from(s.as_str())).collect())
        }
        other => Json::from(other.to_string()),
    }
}

fn double_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::from("NaN"),
        None if f > 0.0 => Json::from("Infinity"),
        None => Json::from("-Infinity"),
    }
}

/// Natural JSON as an `AnyValue`: the inverse of [`any_value_json`], except
/// that bytes, having become base64 text, stay strings. `null` has no
/// `AnyValue`: `None`, and a `null` inside an array or object is left out.
pub fn json_any_value(value: &Json) -> Option<AnyValue> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => AnyValue::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => AnyValue::from(s.clone()),
        Json::Array(items) => {
            AnyValue::ListAny(Box::new(items.iter().filter_map(json_any_value).collect()))
        }
        Json::Object(map) => AnyValue::Map(Box::new(
            map.iter()
                .filter_map(|(k, v)| Some((Key::from(k.clone()), json_any_value(v)?)))
                .collect(),
        )),
    })
}

/// The application's `record`, edited where `shaped` differs from
/// `original` (both events of it). See the module docs.
pub fn reshape(record: &SdkLogRecord, original: &InputEvent, shaped: &InputEvent) -> SdkLogRecord {
    if shaped == original {
        return record.clone();
    }
    let mut out = blank();
    if let Some(name) = record.event_name() {
        out.set_event_name(name);
    }
    if let Some(target) = record.target() {
        out.set_target(target.clone());
    }
    match (shaped.time == original.time, record.timestamp()) {
        (true, Some(t)) => out.set_timestamp(t),
        (true, None) => {}
        (false, _) => out.set_timestamp(system_time(shaped.time)),
    }
    match (
        shaped.observed_time == original.observed_time,
        record.observed_timestamp(),
    ) {
        (true, Some(t)) => out.set_observed_timestamp(t),
        (true, None) => {}
        (false, _) => out.set_observed_timestamp(system_time(shaped.observed_time)),
    }
    let severity = if shaped.severity == original.severity {
        record.severity_number()
    } else {
        severity(shaped.severity)
    };
    if let Some(s) = severity {
        out.set_severity_number(s);
    }
    let severity_text = if shaped.severity_text == original.severity_text {
        record.severity_text()
    } else {
        shaped.severity_text.as_deref().and_then(intern)
    };
    if let Some(text) = severity_text {
        out.set_severity_text(text);
    }
    let body = if shaped.body == original.body {
        record.body().cloned()
    } else {
        shaped.body.clone().map(AnyValue::from)
    };
    if let Some(body) = body {
        out.set_body(body);
    }
    // Attributes in the record's order; a key given twice keeps its one
    // place, with the value the event has.
    let mut seen = HashSet::new();
    for (key, value) in record.attributes_iter() {
        let k = key.as_str();
        let Some(new) = shaped.attributes.get(k) else {
            continue;
        };
        if original.attributes.get(k) == Some(new) {
            out.add_attribute(key.clone(), value.clone());
        } else if seen.insert(k)
            && let Some(v) = json_any_value(new)
        {
            out.add_attribute(key.clone(), v);
        }
    }
    for (k, v) in &shaped.attributes {
        if !original.attributes.contains_key(k)
            && let Some(v) = json_any_value(v)
        {
            out.add_attribute(Key::from(k.clone()), v);
        }
    }
    set_ids(&mut out, record, original, shaped);
    out
}

/// The trace context of a reshaped record: kept when shaping left the IDs
/// alone, rebuilt from new IDs that are still IDs, and otherwise left out
/// with the new texts as the attributes `trace_id` / `span_id`.
fn set_ids(
    out: &mut SdkLogRecord,
    record: &SdkLogRecord,
    original: &InputEvent,
    shaped: &InputEvent,
) {
    let context = record.trace_context();
    if shaped.trace_id == original.trace_id && shaped.span_id == original.span_id {
        if let Some(cx) = context {
            out.set_trace_context(cx.trace_id, cx.span_id, cx.trace_flags);
        }
        return;
    }
    let mut trace = TraceId::INVALID;
    if let Some(text) = &shaped.trace_id {
        match parse_id(text, 32) {
            Some(id) => trace = TraceId::from(id),
            None => out.add_attribute("trace_id", text.clone()),
        }
    }
    let mut span = SpanId::INVALID;
    if let Some(text) = &shaped.span_id {
        match parse_id(text, 16) {
            Some(id) => span = SpanId::from(id as u64),
            None => out.add_attribute("span_id", text.clone()),
        }
    }
    if trace != TraceId::INVALID || span != SpanId::INVALID {
        out.set_trace_context(trace, span, context.and_then(|cx| cx.trace_flags));
    }
}

/// A hex ID of exactly `digits` hex digits.
fn parse_id(text: &str, digits: usize) -> Option<u128> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

/// A new record for a log a program emitted: the log's name as the event
/// name, its fields as attributes (a `null` field left out), the event time
/// as its timestamp, now as its observed time.
pub fn derived_log(
    name: Option<&'static str>,
    time: i64,
    fields: &[(String, Json)],
) -> SdkLogRecord {
    let mut out = blank();
    if let Some(name) = name {
        out.set_event_name(name);
    }
    out.set_timestamp(system_time(time));
    out.set_observed_timestamp(SystemTime::now());
    for (k, v) in fields {
        if let Some(v) = json_any_value(v) {
            out.add_attribute(Key::from(k.clone()), v);
        }
    }
    out
}

/// A record the processor writes about a program (an action it did not
/// run, a handler fault): a name, a severity, a message body, attributes.
pub fn report_log(
    name: &'static str,
    severity: Severity,
    time: i64,
    message: String,
    attributes: Vec<(&'static str, AnyValue)>,
) -> SdkLogRecord {
    let mut out = blank();
    out.set_event_name(name);
    out.set_severity_number(severity);
    out.set_severity_text(severity.name());
    out.set_timestamp(system_time(time));
    out.set_observed_timestamp(SystemTime::now());
    out.set_body(AnyValue::from(message));
    for (k, v) in attributes {
        out.add_attribute(k, v);
    }
    out
}

/// An empty record. The SDK makes records only through a logger; a
/// provider with no processors gives one, once.
fn blank() -> SdkLogRecord {
    static BLANK: OnceLock<SdkLogRecord> = OnceLock::new();
    BLANK
        .get_or_init(|| {
            let provider = SdkLoggerProvider::builder().build();
            provider.logger("dtc-otel").create_log_record()
        })
        .clone()
}

/// A string that lives as long as the process, the same one for equal
/// texts; `None` once [`MAX_INTERNED`] strings are kept (the caller leaves
/// the field out and counts it).
pub fn intern(text: &str) -> Option<&'static str> {
    static KEPT: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut kept = KEPT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(s) = kept.get(text) {
        return Some(s);
    }
    if kept.len() >= MAX_INTERNED {
        return None;
    }
    let s: &'static str = Box::leak(text.to_string().into_boxed_str());
    kept.insert(s);
    Some(s)
}

/// Nanoseconds since the Unix epoch, `None` outside 1677 to 2262.
pub fn unix_nanos(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).ok(),
        Err(before) => i64::try_from(before.duration().as_nanos()).ok().map(|n| -n),
    }
}

/// The inverse of [`unix_nanos`]; total over `i64`.
pub fn system_time(ns: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(ns.unsigned_abs());
    let t = if ns >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// The severity of an OpenTelemetry severity number; `None` for 0 and
/// anything outside 1 to 24.
pub fn severity(n: i64) -> Option<Severity> {
    use Severity::*;
    const ALL: [Severity; 24] = [
        Trace, Trace2, Trace3, Trace4, Debug, Debug2, Debug3, Debug4, Info, Info2, Info3, Info4,
        Warn, Warn2, Warn3, Warn4, Error, Error2, Error3, Error4, Fatal, Fatal2, Fatal3, Fatal4,
    ];
    let index = usize::try_from(n.checked_sub(1)?).ok()?;
    ALL.get(index).copied()
}

/// The attributes of a record as a JSON object, for printing and tests.
pub fn attributes_json(record: &SdkLogRecord) -> Map<String, Json> {
    record
        .attributes_iter()
        .map(|(k, v)| (k.as_str().to_string(), any_value_json(v)))
        .collect()
}

/// A record as one JSON object, for printing and tests: event name,
/// RFC 3339 time, severity, body, IDs, attributes.
pub fn record_json(record: &SdkLogRecord) -> Json {
    let mut out = Map::new();
    if let Some(name) = record.event_name() {
        out.insert("event_name".into(), Json::from(name));
    }
    if let Some(t) = record.timestamp().and_then(unix_nanos) {
        out.insert("time".into(), Json::from(dtc_engine::event::format_time(t)));
    }
    if let Some(s) = record.severity_number() {
        out.insert("severity".into(), Json::from(s as i64));
    }
    if let Some(s) = record.severity_text() {
        out.insert("severity_text".into(), Json::from(s));
    }
    if let Some(b) = record.body() {
        out.insert("body".into(), any_value_json(b));
    }
    if let Some(cx) = record.trace_context() {
        out.insert("trace_id".into(), Json::from(cx.trace_id.to_string()));
        out.insert("span_id".into(), Json::from(cx.span_id.to_string()));
    }
    out.insert("attributes".into(), Json::Object(attributes_json(record)));
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn record() -> SdkLogRecord {
        blank()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_record_maps_to_the_event_the_otlp_rules_give() {
        let mut r = record();
        r.set_event_name("UserSignedIn");
        r.set_timestamp(at(1_800_000_000));
        r.set_observed_timestamp(at(1_800_000_001));
        r.set_severity_number(Severity::Warn);
        r.set_severity_text("WARN");
        r.set_body(AnyValue::from("hello"));
        r.set_trace_context(TraceId::from(0xab_u128), SpanId::from(0xcd_u64), None);
        r.add_attribute("email", "a@example.com");
        r.add_attribute("n", 3_i64);
        r.add_attribute("ratio", f64::NAN);
        r.add_attribute("raw", AnyValue::Bytes(Box::new(vec![0xff, 0x00, 0x80])));
        let mut nested = HashMap::new();
        nested.insert(
            Key::from("inner"),
            AnyValue::ListAny(Box::new(vec![AnyValue::Int(1), AnyValue::Boolean(true)])),
        );
        r.add_attribute("map", AnyValue::Map(Box::new(nested)));
        r.add_attribute("n", 4_i64);
        let e = to_event(&r).expect("an event");
        assert_eq!(e.name.as_deref(), Some("UserSignedIn"));
        assert_eq!(e.time, 1_800_000_000_000_000_000);
        assert_eq!(e.observed_time, 1_800_000_001_000_000_000);
        assert_eq!(e.severity, 13);
        assert_eq!(e.severity_text.as_deref(), Some("WARN"));
        assert_eq!(e.body.as_deref(), Some("hello"));
        assert_eq!(
            e.trace_id.as_deref(),
            Some("000000000000000000000000000000ab")
        );
        assert_eq!(e.span_id.as_deref(), Some("00000000000000cd"));
        let attributes = Json::Object(e.attributes.into_iter().collect());
        assert_eq!(
            attributes,
            json!({
                "email": "a@example.com",
                "n": 4,
                "ratio": "NaN",
                "raw": "/wCA",
                "map": {"inner": [1, true]},
            })
        );
    }

    #[test]
    fn the_name_falls_back_to_the_event_name_attribute_and_the_time_to_the_observed_time() {
        let mut r = record();
        r.add_attribute(EVENT_NAME_ATTRIBUTE, "LogLaunch");
        r.set_observed_timestamp(at(5));
        let e = to_event(&r).expect("an event");
        assert_eq!(e.name.as_deref(), Some("LogLaunch"));
        assert_eq!(e.attributes[EVENT_NAME_ATTRIBUTE], json!("LogLaunch"));
        assert_eq!((e.time, e.observed_time), (5_000_000_000, 5_000_000_000));

        let mut r = record();
        r.set_event_name("");
        r.add_attribute(EVENT_NAME_ATTRIBUTE, 7_i64);
        let e = to_event(&r).expect("an event");
        assert_eq!((e.name, e.time, e.severity), (None, 0, 0));
    }

    #[test]
    fn bodies_that_are_not_strings_become_json_text() {
        let mut r = record();
        r.set_body(AnyValue::Bytes(Box::new(vec![0xc3, 0x28, 0xff])));
        assert_eq!(
            to_event(&r).expect("an event").body.as_deref(),
            Some("wyj/")
        );
        r.set_body(AnyValue::ListAny(Box::new(vec![
            AnyValue::Int(1),
            AnyValue::from("x"),
        ])));
        assert_eq!(
            to_event(&r).expect("an event").body.as_deref(),
            Some(r#"[1,"x"]"#)
        );
        r.set_body(AnyValue::Double(f64::INFINITY));
        assert_eq!(
            to_event(&r).expect("an event").body.as_deref(),
            Some("Infinity")
        );
    }

    #[test]
    fn a_time_past_2262_is_refused_and_times_before_1970_are_kept() {
        let mut r = record();
        r.set_timestamp(at(10_000_000_000));
        let err = to_event(&r).expect_err("out of range");
        assert!(err.starts_with("timestamp: the time does not fit"), "{err}");
        let before = UNIX_EPOCH - Duration::from_nanos(1_500);
        assert_eq!(unix_nanos(before), Some(-1_500));
        assert_eq!(unix_nanos(system_time(-1_500)), Some(-1_500));
        assert_eq!(unix_nanos(system_time(i64::MAX)), Some(i64::MAX));
    }

    #[test]
    fn severity_numbers_outside_1_to_24_have_no_severity() {
        assert_eq!(severity(0), None);
        assert_eq!(severity(1), Some(Severity::Trace));
        assert_eq!(severity(9), Some(Severity::Info));
        assert_eq!(severity(24), Some(Severity::Fatal4));
        assert_eq!(severity(25), None);
        assert_eq!(severity(i64::MIN), None);
    }

    #[test]
    fn json_values_become_any_values_and_back() {
        let value = json!({"a": [1, 2.5, "x", true, null], "b": {"c": null, "d": -3}});
        let any = json_any_value(&value).expect("not null");
        assert_eq!(
            any_value_json(&any),
            json!({"a": [1, 2.5, "x", true], "b": {"d": -3}})
        );
        assert_eq!(json_any_value(&Json::Null), None);
    }

    #[test]
    fn reshaping_edits_only_what_shaping_changed() {
        let mut r = record();
        r.set_event_name("PaymentDeclined");
        r.set_target("shop::payments");
        r.set_timestamp(at(100));
        r.set_severity_number(Severity::Warn);
        r.set_body(AnyValue::from("card declined"));
        r.add_attribute("email", "a@example.com");
        r.add_attribute("card", "4111111111111111");
        r.add_attribute("raw", AnyValue::Bytes(Box::new(vec![1, 2])));
        r.add_attribute("client", "203.0.113.7");
        let original = to_event(&r).expect("an event");
        let mut shaped = original.clone();
        shaped
            .attributes
            .insert("email".into(), json!("e0403f0f760abdd2"));
        shaped
            .attributes
            .insert("card".into(), json!("************1111"));
        shaped.attributes.remove("client");
        let out = reshape(&r, &original, &shaped);
        assert_eq!(out.event_name(), Some("PaymentDeclined"));
        assert_eq!(out.target().map(|t| t.as_ref()), Some("shop::payments"));
        assert_eq!(out.timestamp(), Some(at(100)));
        assert_eq!(out.observed_timestamp(), None);
        assert_eq!(out.severity_number(), Some(Severity::Warn));
        assert_eq!(out.body(), Some(&AnyValue::from("card declined")));
        let attributes: Vec<(String, AnyValue)> = out
            .attributes_iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect();
        assert_eq!(
            attributes,
            vec![
                ("email".to_string(), AnyValue::from("e0403f0f760abdd2")),
                ("card".to_string(), AnyValue::from("************1111")),
                // Untouched, so still bytes, not the base64 text.
                ("raw".to_string(), AnyValue::Bytes(Box::new(vec![1, 2]))),
            ]
        );
        assert_eq!(reshape(&r, &original, &original), r);
    }

    #[test]
    fn ids_that_shaping_made_into_non_ids_move_to_attributes() {
        let mut r = record();
        r.set_trace_context(TraceId::from(0xab_u128), SpanId::from(0xcd_u64), None);
        let original = to_event(&r).expect("an event");
        let mut shaped = original.clone();
        shaped.trace_id = Some("d1f0a1b2c3d4e5f6".into());
        let out = reshape(&r, &original, &shaped);
        let cx = out.trace_context().expect("the span ID is still an ID");
        assert_eq!(
            (cx.trace_id, cx.span_id),
            (TraceId::INVALID, SpanId::from(0xcd_u64))
        );
        assert_eq!(
            Json::Object(attributes_json(&out)),
            json!({"trace_id": "d1f0a1b2c3d4e5f6"})
        );
        shaped.span_id = None;
        let out = reshape(&r, &original, &shaped);
        assert!(out.trace_context().is_none());
    }

    #[test]
    fn interning_keeps_one_copy_per_text() {
        let a = intern("LargePaymentDeclined").expect("room");
        let b = intern(&String::from("LargePaymentDeclined")).expect("room");
        assert!(std::ptr::eq(a, b));
    }
}
