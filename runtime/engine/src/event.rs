//! Input events: decoding JSON lines and OpenTelemetry OTLP/JSON log exports
//! into one neutral form, before any program sees them.
//!
//! A line that is not JSON, or not an event, is kept whole as
//! [`Input::Malformed`] so that it is counted and passed on, never dropped.
//!
//! # Decoding rules
//!
//! [`decode_line`] takes one line of input and gives zero or more inputs:
//!
//! - A blank line, or one whose first non-blank character is `#`, gives
//!   nothing.
//! - A JSON object with a `resourceLogs` key is an **OTLP/JSON log export**
//!   (the OTLP JSON encoding, one document per line) and gives one input per
//!   log record, in order. Resource attributes are copied into each record's
//!   `resource`. Scope names, flags and dropped counts are not kept.
//! - Any other JSON object is a **flat event**: the keys in
//!   [`RESERVED_KEYS`] are the standard fields, every other top-level key is
//!   an attribute, and so is every key of the `attributes` object (which wins
//!   over a top-level key of the same name).
//! - Anything else is [`Input::Malformed`], with the line as it was and the
//!   reason.
//!
//! Standard fields of a flat event:
//!
//! | key | value |
//! | --- | --- |
//! | `event` | the durable ID, a string |
//! | `time`, `observed_time` | an RFC 3339 string (`"2026-11-22T10:00:00.5Z"`, any offset; without one, UTC), or an integer of nanoseconds since the Unix epoch (also as a string of digits) |
//! | `severity` | an integer 0 to 24, or a severity text (`"INFO"`, `"WARN"`, ...; see [`severity_number`]) that also becomes `severity_text` unless that is given (an unknown text gives 0) |
//! | `severity_text`, `trace_id`, `span_id` | strings |
//! | `body` | a string; any other JSON value is kept as its compact JSON text |
//! | `resource`, `attributes` | objects |
//!
//! OTLP log records read `timeUnixNano`, `observedTimeUnixNano` (decimal
//! strings or numbers), `severityNumber` (a number, or an enum name such as
//! `"SEVERITY_NUMBER_INFO"`), `severityText`, `body`, `attributes`,
//! `traceId`, `spanId` (hex strings) and `eventName`; the proto field names
//! (`time_unix_nano`, ...) are accepted too. An `AnyValue` becomes natural
//! JSON: `stringValue` a string, `intValue` (a string or a number) an
//! integer, `doubleValue` a number (`"NaN"`, `"Infinity"` and `"-Infinity"`
//! stay strings), `boolValue` a boolean, `arrayValue` an array,
//! `kvlistValue` an object, `bytesValue` its base64 text, and an empty value
//! `null`.
//!
//! Common to both forms:
//!
//! - **Durable ID**: OTLP `eventName` or the flat `event` key, else the
//!   `event.name` attribute when it is a string (it stays an attribute too),
//!   else none. An empty string is no name.
//! - **Time**: `time` falls back to `observed_time` when it is absent or 0,
//!   which falls back to 0 (the Unix epoch). So a decoded event whose `time`
//!   is 0 also has an `observed_time` of 0.
//! - `null`, and an empty `trace_id`, `span_id` or `eventName`, mean absent.
//! - A standard field of the wrong type (a `time` that is not a time, a
//!   `severity` outside 0 to 24, a `resource` that is not an object, ...)
//!   makes the event malformed. In an OTLP document, a malformed record (or
//!   resource, or scope) gives an [`Input::Malformed`] whose `line` is that
//!   record's JSON text, and the other records are decoded as usual.
//!
//! [`to_flat_json`] writes the flat form back, and decoding it gives the same
//! event.
//!
//! # How
//!
//! A flat line is read straight into its event by a serde visitor over the
//! top-level object (`TopLevel`): standard fields are picked out by key and
//! every other key goes straight into the attributes, with no `Value` of the
//! whole line. [`decode_line_via_value`] is the same rules through a
//! `Value`; a test holds the two, and the decoder before them, to the same
//! output for generated and mutated lines, and `cargo bench -p dtc-engine
//! --bench decode` times the two.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

pub(crate) mod otlp_json;
pub(crate) use otlp_json::{Export, ExportAt, is_export, read_export, read_export_into};

/// One event as received, before it is matched to a layout.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputEvent {
    /// The durable ID: OTLP `eventName`, or the `event.name` attribute, or
    /// the `event` key of a flat JSON line.
    pub name: Option<String>,
    /// Nanoseconds since the Unix epoch; the observed time when unset.
    pub time: i64,
    pub observed_time: i64,
    pub severity: i64,
    pub severity_text: Option<String>,
    pub body: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub attributes: BTreeMap<String, Json>,
    pub resource: BTreeMap<String, Json>,
}

impl InputEvent {
    /// The standard field `thread_id`: the [`THREAD_ID_ATTRIBUTE`]
    /// attribute, an integer or a string of one; absent otherwise.
    pub fn thread_id(&self) -> Option<i64> {
        match self.attributes.get(THREAD_ID_ATTRIBUTE)? {
            Json::Number(n) => n.as_i64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The standard fields a slot row carries.
    pub fn standard(&self) -> Standard<'_> {
        Standard {
            name: self.name.as_deref(),
            time: self.time,
            observed_time: self.observed_time,
            severity: self.severity,
            severity_text: self.severity_text.as_deref(),
            body: self.body.as_deref(),
            trace_id: self.trace_id.as_deref(),
            span_id: self.span_id.as_deref(),
            thread_id: self.thread_id(),
            service: self.service(),
        }
    }

    /// The standard field `service`: the resource's
    /// [`SERVICE_NAME_ATTRIBUTE`] when it is a string.
    pub fn service(&self) -> Option<&str> {
        match self.resource.get(SERVICE_NAME_ATTRIBUTE)? {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A line of input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Event(InputEvent),
    /// Not an event: the line as it was, and why.
    Malformed {
        line: String,
        reason: String,
    },
}

/// The attribute that carries the standard field `thread_id` (as an
/// integer, or a string of one).
pub const THREAD_ID_ATTRIBUTE: &str = "thread.id";

/// The resource attribute that carries the standard field `service`.
pub const SERVICE_NAME_ATTRIBUTE: &str = "service.name";

/// The keys of a flat JSON line that are standard fields, not attributes.
pub const RESERVED_KEYS: [&str; 10] = [
    "event",
    "time",
    "observed_time",
    "severity",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "resource",
    "attributes",
];

/// The attribute that carries the durable ID when the record has no event
/// name.
pub const EVENT_NAME_ATTRIBUTE: &str = "event.name";

/// Decodes one line of input: nothing for a blank or `#` comment line, one
/// input for a flat JSON event or a malformed line, one per log record for
/// an OTLP/JSON export. Never panics. See the module docs for the rules.
///
/// A flat line is read straight into its [`InputEvent`], without a
/// `Value` of the whole line; the result is the same as
/// [`decode_line_via_value`]'s for every line, errors included.
pub fn decode_line(line: &str) -> Vec<Input> {
    let mut inputs = Vec::new();
    decode_line_each(line, |input| inputs.push(input));
    inputs
}

/// [`decode_line`] handing each input to `each` as it comes, so a caller
/// that takes them one by one (the runtime's `push_lines`) needs no `Vec`
/// per line.
pub(crate) fn decode_line_each(line: &str, mut each: impl FnMut(Input)) {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return;
    }
    let malformed = |reason: String| Input::Malformed {
        line: line.to_string(),
        reason,
    };
    // An export in its plain form is read without a `Value` of the line.
    if let Some(export) = read_export(text) {
        return export.events().map(Input::Event).for_each(each);
    }
    let top = match serde_json::from_str::<TopLevel>(text) {
        Ok(top) => top,
        Err(e) if e.is_data() && e.to_string().starts_with(PRIVATE_KEY_SEEN) => {
            return decode_line_via_value(line).into_iter().for_each(each);
        }
        Err(e) => return each(malformed(format!("not JSON: {}", json_error(&e)))),
    };
    match top {
        TopLevel::NotObject(kind) => each(malformed(format!(
            "not an event: expected a JSON object, found {kind}"
        ))),
        TopLevel::Otlp(resource_logs) => {
            decode_otlp(line, resource_logs).into_iter().for_each(each)
        }
        TopLevel::Flat(parts) => each(match parts.finish() {
            Ok(event) => Input::Event(event),
            Err(reason) => malformed(reason),
        }),
    }
}

/// [`decode_line`] through a whole `serde_json::Value` of the line: the
/// definition the direct decoder is tested against, and its fallback for a
/// line whose first key is one of serde_json's private marker keys (which
/// make `Value` parsing read the line differently).
pub fn decode_line_via_value(line: &str) -> Vec<Input> {
    via_value(line, decode_flat)
}

/// The `Value` route, with the flat event's decoder as a parameter so the
/// tests can run it with the decoder that came before [`FlatParts`].
fn via_value(line: &str, flat: fn(Map<String, Json>) -> Result<InputEvent, String>) -> Vec<Input> {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Vec::new();
    }
    let malformed = |reason: String| {
        vec![Input::Malformed {
            line: line.to_string(),
            reason,
        }]
    };
    let json: Json = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(e) => return malformed(format!("not JSON: {}", json_error(&e))),
    };
    let Json::Object(mut object) = json else {
        return malformed(format!(
            "not an event: expected a JSON object, found {}",
            kind(&json)
        ));
    };
    let otlp = ["resourceLogs", "resource_logs"]
        .into_iter()
        .find_map(|key| object.remove(key));
    if let Some(resource_logs) = otlp {
        return decode_otlp(line, resource_logs);
    }
    match flat(object) {
        Ok(event) => vec![Input::Event(event)],
        Err(reason) => malformed(reason),
    }
}

/// The flat JSON form of an event: the inverse of [`decode_line`] on a flat
/// line. Times are RFC 3339 strings; absent fields, a severity of 0 and an
/// observed time of 0 are left out; attributes are top-level keys, except
/// those named like a standard field ([`RESERVED_KEYS`]), which go under
/// `"attributes"`.
pub fn to_flat_json(e: &InputEvent) -> Json {
    let mut out = Map::new();
    if let Some(name) = &e.name {
        out.insert("event".into(), Json::from(name.as_str()));
    }
    out.insert("time".into(), Json::from(format_time(e.time)));
    if e.observed_time != 0 {
        out.insert(
            "observed_time".into(),
            Json::from(format_time(e.observed_time)),
        );
    }
    if e.severity != 0 {
        out.insert("severity".into(), Json::from(e.severity));
    }
    let strings = [
        ("severity_text", &e.severity_text),
        ("body", &e.body),
        ("trace_id", &e.trace_id),
        ("span_id", &e.span_id),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            out.insert(key.into(), Json::from(value.as_str()));
        }
    }
    let mut nested = Map::new();
    for (key, value) in &e.attributes {
        if RESERVED_KEYS.contains(&key.as_str()) {
            nested.insert(key.clone(), value.clone());
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    if !nested.is_empty() {
        out.insert("attributes".into(), Json::Object(nested));
    }
    if !e.resource.is_empty() {
        let resource = e.resource.iter().map(|(k, v)| (k.clone(), v.clone()));
        out.insert("resource".into(), Json::Object(resource.collect()));
    }
    Json::Object(out)
}

/// The OpenTelemetry severity number of a severity text, ignoring case:
/// `TRACE` 1, `DEBUG` 5, `INFO` 9, `WARN` 13, `ERROR` 17, `FATAL` 21, each
/// with the suffixes `2` to `4` for the next three numbers (`INFO2` is 10);
/// also `WARNING` 13, `NOTICE` 10, `ERR` 17, `CRITICAL` and `CRIT` 21, and
/// the OTLP enum names (`SEVERITY_NUMBER_WARN`).
pub fn severity_number(text: &str) -> Option<i64> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = upper.strip_prefix("SEVERITY_NUMBER_").unwrap_or(&upper);
    let (word, step) = match upper.as_bytes() {
        [.., d @ b'2'..=b'4'] => (&upper[..upper.len() - 1], i64::from(d - b'1')),
        _ => (upper, 0),
    };
    let base = match word {
        "UNSPECIFIED" if step == 0 => return Some(0),
        "NOTICE" if step == 0 => return Some(10),
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" | "ERR" => 17,
        "FATAL" | "CRITICAL" | "CRIT" => 21,
        _ => return None,
    };
    Some(base + step)
}

/// Formats nanoseconds since the Unix epoch as an RFC 3339 time in UTC, with
/// the fraction of a second to nanosecond precision and trailing zeros (and
/// an empty fraction) left out: `2026-11-22T10:00:00.5Z`. Total over `i64`
/// (1677 to 2262), times before 1970 included.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let mut out = String::with_capacity(30);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, month, 2);
    out.push('-');
    push_digits(&mut out, day, 2);
    out.push('T');
    push_digits(&mut out, hour, 2);
    out.push(':');
    push_digits(&mut out, minute, 2);
    out.push(':');
    push_digits(&mut out, second, 2);
    if nanos != 0 {
        out.push('.');
        push_digits(&mut out, nanos, 9);
        out.truncate(out.trim_end_matches('0').len());
    }
    out.push('Z');
    out
}

/// Appends `n` (0 <= n < 10^width) as exactly `width` decimal digits.
fn push_digits(out: &mut String, n: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10i64.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

/// Parses an RFC 3339 time into nanoseconds since the Unix epoch:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of a second (digits past the
/// ninth are ignored), then `Z` or an offset `±HH:MM`. Also accepted: a
/// lowercase `t` or `z`, a space for the `T`, no offset at all (UTC) and a
/// leap second (`:60`, counted as the next second). `None` when the text is
/// not such a time or the time does not fit in an `i64` of nanoseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let punct = |at: usize, expected: &[u8]| b.get(at).is_some_and(|c| expected.contains(c));
    if !(punct(4, b"-")
        && punct(7, b"-")
        && punct(10, b"Tt ")
        && punct(13, b":")
        && punct(16, b":"))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if punct(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        let kept = (at - start).min(9);
        nanos *= 10i64.pow(9 - kept as u32);
    }
    let offset_secs = match b.get(at..) {
        Some([]) | Some([b'Z' | b'z']) => 0,
        Some([sign @ (b'+' | b'-'), _, _, b':', _, _]) => {
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    i64::try_from(total).ok()
}

// ---------------------------------------------------------------------------
// The top level of a line, read without a `Value` of it.

/// The error [`TopLevel`] stops with when a line's first key is one of
/// serde_json's private marker keys: with its `raw_value` (or
/// `arbitrary_precision`) feature on, `Value` parsing reads such an object as
/// a raw value (or a number) instead of a map. Such a line goes through
/// [`decode_line_via_value`], so both decoders agree on it too.
const PRIVATE_KEY_SEEN: &str = "dtc: serde_json private key";

/// serde_json's marker keys (see [`PRIVATE_KEY_SEEN`]).
const PRIVATE_KEYS: [&str; 2] = [
    "$serde_json::private::RawValue",
    "$serde_json::private::Number",
];

/// One line's top-level JSON value, as decoding needs it. An object's
/// standard fields are kept as small `Value`s (their errors quote them) and
/// its other keys go straight into the attributes: the object itself is
/// never built, and keys without escapes are borrowed from the line.
/// Repeated keys keep the last value, as `Value` parsing does.
// One per line, moved once: boxing the large variant would cost an
// allocation per line for nothing.
#[allow(clippy::large_enum_variant)]
enum TopLevel {
    Flat(FlatParts),
    /// The `resourceLogs` (else `resource_logs`) value of an OTLP/JSON line.
    Otlp(Json),
    /// Anything but an object, by kind (as [`kind`] names it).
    NotObject(&'static str),
}

/// A flat event's keys, sorted out: the standard fields by their index in
/// [`RESERVED_KEYS`], and the attributes given at the top level.
#[derive(Default)]
struct FlatParts {
    standard: [Option<Json>; RESERVED_KEYS.len()],
    attributes: BTreeMap<String, Json>,
}

impl FlatParts {
    fn put(&mut self, key: Cow<'_, str>, value: Json) {
        match RESERVED_KEYS.iter().position(|k| *k == key) {
            Some(i) => self.standard[i] = Some(value),
            None => {
                self.attributes.insert(key.into_owned(), value);
            }
        }
    }
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TopLevel, D::Error> {
        deserializer.deserialize_any(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("a number"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<TopLevel, E> {
        // `Value` keeps a float that is not finite as null.
        Ok(TopLevel::NotObject(if v.is_finite() {
            "a number"
        } else {
            "null"
        }))
    }

    fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("a string"))
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("null"))
    }

    fn visit_none<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::NotObject("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        // Read the elements as `Value` would, so a bad one fails the same way.
        while seq.next_element::<Json>()?.is_some() {}
        Ok(TopLevel::NotObject("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut parts = FlatParts::default();
        let mut otlp: [Option<Json>; 2] = [None, None];
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if first && PRIVATE_KEYS.contains(&&*key) {
                return Err(serde::de::Error::custom(PRIVATE_KEY_SEEN));
            }
            first = false;
            match &*key {
                "resourceLogs" => otlp[0] = Some(map.next_value()?),
                "resource_logs" => otlp[1] = Some(map.next_value()?),
                _ => {
                    let value = map.next_value()?;
                    parts.put(key, value);
                }
            }
        }
        let [camel, snake] = otlp;
        Ok(match camel.or(snake) {
            Some(resource_logs) => TopLevel::Otlp(resource_logs),
            None => TopLevel::Flat(parts),
        })
    }
}

/// An object key, borrowed from the line when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

// ---------------------------------------------------------------------------
// Flat events.

fn decode_flat(object: Map<String, Json>) -> Result<InputEvent, String> {
    let mut parts = FlatParts::default();
    for (key, value) in object {
        parts.put(Cow::Owned(key), value);
    }
    parts.finish()
}

/// The standard fields (indices into [`RESERVED_KEYS`]) in the order of
/// their keys, which is the order `Value`'s sorted map gave them in: when
/// several are wrong, the first in this order is the one reported.
const RESERVED_KEYS_SORTED: [usize; RESERVED_KEYS.len()] = [
    9, // attributes
    5, // body
    0, // event
    2, // observed_time
    8, // resource
    3, // severity
    4, // severity_text
    7, // span_id
    1, // time
    6, // trace_id
];

impl FlatParts {
    fn finish(self) -> Result<InputEvent, String> {
        let FlatParts {
            mut standard,
            attributes,
        } = self;
        let mut e = InputEvent {
            attributes,
            ..InputEvent::default()
        };
        let (mut time, mut observed) = (None, None);
        let mut severity_from_text = None;
        let mut explicit_attributes = None;
        for i in RESERVED_KEYS_SORTED {
            let Some(value) = standard[i].take() else {
                continue;
            };
            match RESERVED_KEYS[i] {
                "event" => e.name = opt_string(value, "event")?.filter(|s| !s.is_empty()),
                "time" => time = time_field(&value, "time")?,
                "observed_time" => observed = time_field(&value, "observed_time")?,
                "severity" => match value {
                    Json::String(text) if nanos_text(&text).is_none() => {
                        e.severity = severity_number(&text).unwrap_or(0);
                        severity_from_text = Some(text);
                    }
                    other => e.severity = severity_field(&other, "severity")?,
                },
                "severity_text" => e.severity_text = opt_string(value, "severity_text")?,
                "body" => e.body = body_text(value),
                "trace_id" => e.trace_id = opt_string(value, "trace_id")?.filter(|s| !s.is_empty()),
                "span_id" => e.span_id = opt_string(value, "span_id")?.filter(|s| !s.is_empty()),
                "resource" => e.resource = opt_object(value, "resource")?,
                _ => explicit_attributes = Some(opt_object(value, "attributes")?),
            }
        }
        if let Some(explicit) = explicit_attributes {
            e.attributes.extend(explicit);
        }
        if e.severity_text.is_none() {
            e.severity_text = severity_from_text;
        }
        if e.name.is_none() {
            e.name = name_attribute(&e.attributes);
        }
        set_times(&mut e, time, observed);
        Ok(e)
    }
}

fn set_times(e: &mut InputEvent, time: Option<i64>, observed: Option<i64>) {
    e.observed_time = observed.unwrap_or(0);
    e.time = time.filter(|&t| t != 0).unwrap_or(e.observed_time);
}

fn name_attribute(attributes: &BTreeMap<String, Json>) -> Option<String> {
    match attributes.get(EVENT_NAME_ATTRIBUTE) {
        Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn opt_string(value: Json, what: impl Display) -> Result<Option<String>, String> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s)),
        other => Err(format!(
            "{what}: expected a string, found {}",
            shown(&other)
        )),
    }
}

fn opt_object(value: Json, what: &str) -> Result<BTreeMap<String, Json>, String> {
    match value {
        Json::Null => Ok(BTreeMap::new()),
        Json::Object(map) => Ok(map.into_iter().collect()),
        other => Err(format!(
            "{what}: expected an object, found {}",
            shown(&other)
        )),
    }
}

fn body_text(value: Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A time: an RFC 3339 string, or integer nanoseconds (a number or a string
/// of digits). `null` is absent.
fn time_field(value: &Json, what: &str) -> Result<Option<i64>, String> {
    let bad = || {
        format!(
            "{what}: expected an RFC 3339 time or integer nanoseconds since the epoch, found {}",
            shown(value)
        )
    };
    match value {
        Json::Null => Ok(None),
        Json::Number(n) => n.as_i64().map(Some).ok_or_else(bad),
        Json::String(s) => time_text(s).map(Some).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A time given as text: RFC 3339, or integer nanoseconds.
fn time_text(s: &str) -> Option<i64> {
    parse_time(s).or_else(|| nanos_text(s))
}

/// A decimal integer, optionally signed: OTLP/JSON writes 64-bit integers
/// as strings. Leading zeros are allowed; past what an `i64` holds, none.
/// One pass over the digits: every OTLP/JSON time and `intValue` is one.
fn nanos_text(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    if negative {
        0i64.checked_sub_unsigned(n)
    } else {
        i64::try_from(n).ok()
    }
}

fn severity_field(value: &Json, what: impl Display) -> Result<i64, String> {
    let number = match value {
        Json::Null => return Ok(0),
        Json::Number(n) => n.as_i64(),
        Json::String(s) => nanos_text(s).or_else(|| severity_number(s)),
        _ => None,
    };
    match number {
        Some(n) if (0..=24).contains(&n) => Ok(n),
        _ => Err(format!(
            "{what}: expected a severity number from 0 to 24 or a severity text like \"INFO\", found {}",
            shown(value)
        )),
    }
}

// ---------------------------------------------------------------------------
// Flat lines read in place (the runtime's line lane).

/// A JSON scalar as a line holds it, its text borrowed from the line: what
/// a declared field is converted from ([`crate::value::typed`]), whether
/// the line was read in place or decoded into a [`Json`] first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer past `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl<'a> Scalar<'a> {
    /// A JSON value as a scalar; `None` for an array or an object.
    pub fn of(j: &'a Json) -> Option<Scalar<'a>> {
        Some(match j {
            Json::Null => Scalar::Null,
            Json::Bool(b) => Scalar::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Scalar::Int(i),
                (None, Some(u)) => Scalar::UInt(u),
                (None, None) => Scalar::Float(n.as_f64()?),
            },
            Json::String(s) => Scalar::Str(s),
            Json::Array(_) | Json::Object(_) => return None,
        })
    }

    /// As `serde_json::Number::as_i64` reads it: floats are not integers.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(i),
            _ => None,
        }
    }

    /// As `serde_json::Number::as_f64` reads it; `None` for a non-number.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::UInt(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar<'de>, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Reads a scalar; an array, an object or a string with escapes (which
/// cannot be borrowed) is an error, which sends the line to the decoder.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON scalar without escapes")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(i64::try_from(v).map_or(Scalar::UInt(v), Scalar::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        // `Value` keeps a float that is not finite as null.
        Ok(if v.is_finite() {
            Scalar::Float(v)
        } else {
            Scalar::Null
        })
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
}

/// A value skipped, but read as fully as decoding reads it: every escape
/// and number checked (serde's `IgnoredAny` lets a lone surrogate escape or
/// an out-of-range number through, which decoding calls malformed), with
/// nothing allocated.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Skip, D::Error> {
        deserializer.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// The standard fields of an event that a slot row carries, borrowed: of
/// an [`InputEvent`] ([`InputEvent::standard`]), or of a flat line read in
/// place by [`scan_flat`] (as [`decode_line`] would decode them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standard<'a> {
    pub name: Option<&'a str>,
    pub time: i64,
    pub observed_time: i64,
    pub severity: i64,
    pub severity_text: Option<&'a str>,
    pub body: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub span_id: Option<&'a str>,
    pub thread_id: Option<i64>,
    pub service: Option<&'a str>,
}

/// What the engine asks of an event read in place ([`ReadInPlace::read`]).
///
/// Why not always everything: an agent running a redaction over every
/// record needs of it only its name, its time and its declared fields'
/// kinds (whether each makes its layout's row), and checking a string's
/// text as UTF-8 to lend it as a `&str`, or making its standard fields,
/// cost a third of that agent's work per record (docs/performance.md,
/// Agent, twelfth session).
#[derive(Debug, Clone, Copy)]
pub struct Asked<'k> {
    /// The attributes, by key.
    pub keys: &'k [String],
    /// Per key, whether its text is read: where not, a string value may
    /// be given with any text (its kind, a string, is still asked).
    pub texts: &'k [bool],
    /// Whether the standard fields other than the name, the time, the
    /// observed time and the severity number are read.
    pub standard: bool,
}

impl<'k> Asked<'k> {
    /// Everything about `keys`: their texts and every standard field.
    pub fn all(keys: &'k [String]) -> Asked<'k> {
        Asked {
            keys,
            texts: &[],
            standard: true,
        }
    }

    /// Whether the text of `keys[i]` is read (keys past `texts` are).
    pub fn text(&self, i: usize) -> bool {
        self.texts.get(i).copied().unwrap_or(true)
    }
}

/// The attribute keys of a layout's declared fields, for a producer that
/// finds them among an event's attributes itself (`Engine::edits_found`):
/// an attribute's key is matched by its length first, then compared with
/// the one key of that length, where the producer would otherwise compare
/// it with each key in turn (most attributes of a record are of no
/// declared key, and most declared keys differ in length).
#[derive(Debug, Clone)]
pub struct KeyIndex {
    keys: Box<[std::rc::Rc<str>]>,
    /// Per key length (63: that or longer), the first key of it, plus
    /// one; 0: none.
    by_len: [u8; 64],
    /// Whether some keys share a length bucket: a key is then compared
    /// with every key from the bucket's first on.
    shared: bool,
    /// A bit per length bucket that holds a key.
    lengths: u64,
}

impl KeyIndex {
    /// The index of `keys`; `None` where a key is repeated (the producer
    /// would give its value to each, which `position` cannot say).
    pub fn new(keys: &[std::rc::Rc<str>]) -> Option<KeyIndex> {
        let mut by_len = [0u8; 64];
        let mut shared = false;
        let mut lengths = 0u64;
        for (j, key) in keys.iter().enumerate() {
            if keys[..j].contains(key) {
                return None;
            }
            let n = key.len().min(63);
            lengths |= 1 << n;
            match by_len[n] {
                0 => by_len[n] = u8::try_from(j + 1).unwrap_or(u8::MAX),
                _ => shared = true,
            }
        }
        // A layout of 255 declared fields or more (never seen) is
        // scanned whole.
        if keys.len() >= usize::from(u8::MAX) {
            by_len = [1; 64];
            shared = true;
        }
        Some(KeyIndex {
            keys: keys.into(),
            by_len,
            shared,
            lengths,
        })
    }

    pub fn keys(&self) -> &[std::rc::Rc<str>] {
        &self.keys
    }

    /// A bitset of the key lengths (63: that or longer): an attribute
    /// whose key's length is not in it is of no key here.
    pub fn lengths(&self) -> u64 {
        self.lengths
    }

    /// The index of `key` among the keys, if it is one.
    #[inline(always)]
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let first = usize::from(self.by_len[key.len().min(63)]).checked_sub(1)?;
        if !self.shared {
            return same_bytes(self.keys.get(first)?.as_bytes(), key).then_some(first);
        }
        let rest = self.keys.get(first..)?;
        rest.iter()
            .position(|k| k.as_bytes() == key)
            .map(|j| first + j)
    }
}

/// Whether `a` and `b` are the same bytes, for keys: compared a word at a
/// time (the first and the last, which overlap in keys of 4 to 16 bytes)
/// rather than by a call to `memcmp`, which cost a found key about a
/// third of its finding.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Both ends of each, as whole words (`n` bounds every index).
    let ends = |s: &[u8], w: usize| match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        (Some(h), Some(t)) if w == 8 => (u64::from_le_bytes(*h), u64::from_le_bytes(*t)),
        _ => match (s.first_chunk::<4>(), s.last_chunk::<4>()) {
            (Some(h), Some(t)) => (
                u64::from(u32::from_le_bytes(*h)),
                u64::from(u32::from_le_bytes(*t)),
            ),
            _ => (0, 0),
        },
    };
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => ends(a, 4) == ends(b, 4),
        8..=16 => ends(a, 8) == ends(b, 8),
        _ => a == b,
    }
}

/// An event its producer reads in place from its own encoding, for
/// [`crate::Engine::push_read`] (the agent: an OTLP log record's bytes as
/// received). The engine asks for its standard fields and the attributes
/// its layout declares, borrowed from the source itself (a slot row
/// points into them, and the record keeps the source alive), and for the
/// whole event only when something reads it (a handler reading an
/// attribute the layout does not declare, whoever reads the egress).
pub trait ReadInPlace {
    /// The standard fields, and in `values[i]` attribute `asked.keys[i]`
    /// as a scalar (`None`: absent; `values` is as long as the keys, all
    /// `None` on entry). `None` when the event is not one this reads in
    /// place: an asked attribute or standard field of a form other than
    /// the plain one; the engine then takes [`ReadInPlace::event`], whose
    /// decoding says what is wrong with it, if anything. What this gives
    /// of what is asked must be exactly what the event's decoding holds:
    /// [`InputEvent::standard`], and [`Scalar::of`] of each attribute.
    /// What is not asked ([`Asked`]) may be given as anything.
    fn read<'a>(
        &'a self,
        asked: &Asked<'_>,
        values: &mut [Option<Scalar<'a>>],
    ) -> Option<Standard<'a>>;

    /// The whole event, as decoding gives it.
    fn event(&self) -> InputEvent;
}

/// A flat JSON line that is one event, read in place through
/// [`ReadInPlace`] ([`scan_flat`]): the reference producer, against which
/// the engine's tests and the JIT's differential run check
/// [`crate::Engine::push_read`]. A line that decodes to no event or to
/// several (malformed, an OTLP export) is not one: feed it to
/// `push_line`.
pub struct FlatLine(pub String);

impl ReadInPlace for FlatLine {
    fn read<'a>(
        &'a self,
        asked: &Asked<'_>,
        values: &mut [Option<Scalar<'a>>],
    ) -> Option<Standard<'a>> {
        let wanted: Vec<&str> = asked.keys.iter().map(String::as_str).collect();
        let mut read = Vec::with_capacity(wanted.len());
        let (std, _) = scan_flat(&self.0, &wanted, &mut read, &|_| Some(()))?;
        // Only the attributes present, as the agent's reader writes them:
        // the engine is to hand `values` over all `None`.
        for (v, r) in values.iter_mut().zip(read) {
            if r.is_some() {
                *v = r;
            }
        }
        Some(std)
    }

    fn event(&self) -> InputEvent {
        decode_in_place_line(&self.0)
    }
}

/// Reads a flat event line in place, without building its [`InputEvent`]:
/// its standard fields, and the attributes named in `wanted` (in
/// `values`, by their index there, `None` when absent; later keys win, as
/// in decoding), every other attribute skipped. `None` when the line is
/// not one this reads: not a flat object, a key or wanted string with
/// escapes, a wanted attribute that is an array or an object, a `resource`
/// or `attributes` object, a standard field that is not of the plain form
/// (a severity that is neither a number from 0 to 24 nor a level's name, a
/// body that is not a string), an event name `takes` refuses (`None`;
/// asked as soon as the name is read, so a line of another layout costs
/// little here), or anything [`decode_line`] would call malformed. Such a
/// line is decoded the usual way, which reports what is wrong with it; a
/// line this reads gives the same event there (a test holds the two to
/// it). With the fields, what `takes` said of the event's name (`None`:
/// it has none), so the caller need not look the name up again.
pub fn scan_flat<'a, T>(
    line: &'a str,
    wanted: &[&str],
    values: &mut Vec<Option<Scalar<'a>>>,
    takes: &dyn Fn(&str) -> Option<T>,
) -> Option<(Standard<'a>, Option<T>)> {
    values.clear();
    values.resize(wanted.len(), None);
    let mut de = serde_json::Deserializer::from_str(line);
    let mut scan = Scan {
        wanted,
        values,
        takes,
        taken: None,
        out: Standard::default(),
        time: None,
        observed: None,
        event_name: None,
        severity_text: None,
    };
    de.deserialize_map(&mut scan).ok()?;
    de.end().ok()?;
    let Scan {
        mut out,
        mut taken,
        time,
        observed,
        event_name,
        severity_text,
        ..
    } = scan;
    if out.severity_text.is_none() {
        out.severity_text = severity_text;
    }
    if out.name.is_none() {
        out.name = event_name.filter(|n| !n.is_empty());
        if let Some(name) = out.name {
            taken = Some(takes(name)?);
        }
    }
    out.observed_time = observed.unwrap_or(0);
    out.time = time.filter(|&t| t != 0).unwrap_or(out.observed_time);
    Some((out, taken))
}

/// The event of a line that [`scan_flat`] read, decoded as
/// [`decode_line`] decodes it, for whoever asks for the whole event later.
/// Such a line is one flat event by construction (a test holds scanning and
/// decoding to agree on every line either reads); were it not, a release
/// build would give an empty event rather than panic (a debug build
/// asserts it, so the tests would say).
pub(crate) fn decode_in_place_line(line: &str) -> InputEvent {
    let mut event = None;
    decode_line_each(line, |input| {
        if let (Input::Event(e), None) = (input, &event) {
            event = Some(e);
        }
    });
    debug_assert!(event.is_some(), "a line read in place decodes: {line}");
    event.unwrap_or_default()
}

struct Scan<'s, 'a, T> {
    wanted: &'s [&'s str],
    values: &'s mut Vec<Option<Scalar<'a>>>,
    takes: &'s dyn Fn(&str) -> Option<T>,
    /// What `takes` said of the latest `event` name.
    taken: Option<T>,
    out: Standard<'a>,
    time: Option<i64>,
    observed: Option<i64>,
    /// The `event.name` attribute, the name when there is no `event`.
    event_name: Option<&'a str>,
    /// A `severity` given as a level's name: the `severity_text` when there
    /// is none.
    severity_text: Option<&'a str>,
}

/// A flat event's `resource`, read for its one standard field (`service`,
/// the text of its `service.name`): an object, or null (none); anything
/// else, or an escaped key or service name, leaves the line to decoding.
/// Its other values are checked as decoding checks them ([`Skip`]).
struct ServiceName;

impl<'de> DeserializeSeed<'de> for ServiceName {
    type Value = Option<&'de str>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<&'de str>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ServiceName {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resource object")
    }

    fn visit_unit<E>(self) -> Result<Option<&'de str>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<&'de str>, A::Error> {
        let mut service = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == SERVICE_NAME_ATTRIBUTE {
                // Later keys win, as in decoding; a name that is not a
                // text is none (`InputEvent::service`); one that is an
                // array or an object leaves the line to decoding.
                service = match map.next_value()? {
                    Scalar::Str(s) => Some(s),
                    _ => None,
                };
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(service)
    }
}

/// Why a line is left to the decoder: never shown (the decoder says what
/// is wrong, if anything is).
const NOT_IN_PLACE: &str = "not read in place";

impl<'de, T> Visitor<'de> for &mut Scan<'_, 'de, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a flat event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let no = || serde::de::Error::custom(NOT_IN_PLACE);
        let text = |v: Scalar<'de>| match v {
            Scalar::Null => Ok(None),
            Scalar::Str(s) => Ok(Some(s)),
            _ => Err(no()),
        };
        let time = |v: Scalar<'de>| match v {
            Scalar::Null => Ok(None),
            Scalar::Int(t) => Ok(Some(t)),
            Scalar::Str(s) => time_text(s).map(Some).ok_or_else(no),
            _ => Err(no()),
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event" => {
                    // An empty name is no name (the attribute may give one).
                    let name = text(map.next_value()?)?.filter(|n| !n.is_empty());
                    self.taken = match name {
                        Some(n) => Some((self.takes)(n).ok_or_else(no)?),
                        None => None,
                    };
                    self.out.name = name;
                }
                "time" => self.time = time(map.next_value()?)?,
                "observed_time" => self.observed = time(map.next_value()?)?,
                "severity" => {
                    // As decoding reads it: a text that is not a number
                    // names a level and stands in for `severity_text`.
                    let (severity, text) = match map.next_value()? {
                        Scalar::Null => (0, None),
                        Scalar::Str(s) if nanos_text(s).is_none() => {
                            (severity_number(s).unwrap_or(0), Some(s))
                        }
                        Scalar::Str(s) => (nanos_text(s).ok_or_else(no)?, None),
                        Scalar::Int(n) => (n, None),
                        _ => return Err(no()),
                    };
                    if !(0..=24).contains(&severity) {
                        return Err(no());
                    }
                    self.out.severity = severity;
                    self.severity_text = text;
                }
                "severity_text" => self.out.severity_text = text(map.next_value()?)?,
                "body" => self.out.body = text(map.next_value()?)?,
                "trace_id" => {
                    self.out.trace_id = text(map.next_value()?)?.filter(|s| !s.is_empty())
                }
                "span_id" => self.out.span_id = text(map.next_value()?)?.filter(|s| !s.is_empty()),
                "resource" => self.out.service = map.next_value_seed(ServiceName)?,
                "attributes" | "resourceLogs" | "resource_logs" => return Err(no()),
                _ if key.starts_with("$serde_json") => return Err(no()),
                _ => {
                    let at = self.wanted.iter().position(|w| *w == key);
                    let special = key == THREAD_ID_ATTRIBUTE || key == EVENT_NAME_ATTRIBUTE;
                    if at.is_none() && !special {
                        map.next_value::<Skip>()?;
                        continue;
                    }
                    let v: Scalar<'de> = map.next_value()?;
                    if let Some(slot) = at.and_then(|i| self.values.get_mut(i)) {
                        *slot = Some(v);
                    }
                    if key == THREAD_ID_ATTRIBUTE {
                        // As `InputEvent::thread_id` reads it.
                        self.out.thread_id = match v {
                            Scalar::Int(i) => Some(i),
                            Scalar::Str(s) => s.parse().ok(),
                            _ => None,
                        };
                    } else if key == EVENT_NAME_ATTRIBUTE {
                        self.event_name = match v {
                            Scalar::Str(s) => Some(s),
                            _ => None,
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// OTLP/JSON.

fn decode_otlp(line: &str, resource_logs: Json) -> Vec<Input> {
    let Json::Array(resource_logs) = resource_logs else {
        return vec![Input::Malformed {
            line: line.to_string(),
            reason: format!(
                "resourceLogs: expected an array, found {}",
                shown(&resource_logs)
            ),
        }];
    };
    let mut out = Vec::new();
    let root = Path::Root("resourceLogs");
    for (ri, resource_log) in resource_logs.iter().enumerate() {
        if let Err(reason) = decode_resource_logs(resource_log, root.index(ri), &mut out) {
            out.push(Input::Malformed {
                line: resource_log.to_string(),
                reason,
            });
        }
    }
    out
}

fn decode_resource_logs(value: &Json, path: Path<'_>, out: &mut Vec<Input>) -> Result<(), String> {
    let object = as_object(value, path)?;
    let resource = match field(object, "resource", "resource") {
        None | Some(Json::Null) => BTreeMap::new(),
        Some(resource) => {
            let resource_path = path.key("resource");
            let resource = as_object(resource, resource_path)?;
            let attributes = field(resource, "attributes", "attributes");
            key_values(attributes, resource_path.key("attributes"))?
        }
    };
    let scope_logs = array_field(object, "scopeLogs", "scope_logs", path)?;
    let scopes_path = path.key("scopeLogs");
    for (si, scope_log) in scope_logs.iter().enumerate() {
        let scope_path = scopes_path.index(si);
        let records = as_object(scope_log, scope_path)
            .and_then(|scope| array_field(scope, "logRecords", "log_records", scope_path));
        let records = match records {
            Ok(records) => records,
            Err(reason) => {
                out.push(Input::Malformed {
                    line: scope_log.to_string(),
                    reason,
                });
                continue;
            }
        };
        let records_path = scope_path.key("logRecords");
        for (li, record) in records.iter().enumerate() {
            out.push(
                match decode_record(record, &resource, records_path.index(li)) {
                    Ok(event) => Input::Event(event),
                    Err(reason) => Input::Malformed {
                        line: record.to_string(),
                        reason,
                    },
                },
            );
        }
    }
    Ok(())
}

fn decode_record(
    value: &Json,
    resource: &BTreeMap<String, Json>,
    path: Path<'_>,
) -> Result<InputEvent, String> {
    let record = as_object(value, path)?;
    let at = |what| path.key(what);
    let mut e = InputEvent {
        resource: resource.clone(),
        ..InputEvent::default()
    };
    let time = match field(record, "timeUnixNano", "time_unix_nano") {
        Some(v) => unix_nano(v, at("timeUnixNano"))?,
        None => None,
    };
    let observed = match field(record, "observedTimeUnixNano", "observed_time_unix_nano") {
        Some(v) => unix_nano(v, at("observedTimeUnixNano"))?,
        None => None,
    };
    if let Some(v) = field(record, "severityNumber", "severity_number") {
        e.severity = severity_field(v, at("severityNumber"))?;
    }
    let strings = |camel, snake| -> Result<Option<String>, String> {
        match field(record, camel, snake) {
            None => Ok(None),
            Some(v) => Ok(opt_string(v.clone(), at(camel))?.filter(|s| !s.is_empty())),
        }
    };
    e.severity_text = strings("severityText", "severity_text")?;
    e.trace_id = strings("traceId", "trace_id")?;
    e.span_id = strings("spanId", "span_id")?;
    e.name = strings("eventName", "event_name")?;
    if let Some(body) = field(record, "body", "body") {
        e.body = body_text(any_value(body, at("body"))?);
    }
    e.attributes = key_values(field(record, "attributes", "attributes"), at("attributes"))?;
    if e.name.is_none() {
        e.name = name_attribute(&e.attributes);
    }
    set_times(&mut e, time, observed);
    Ok(e)
}

/// A `fixed64` of nanoseconds: a string of digits (OTLP/JSON) or a number.
fn unix_nano(value: &Json, what: Path<'_>) -> Result<Option<i64>, String> {
    let n = match value {
        Json::Null => return Ok(None),
        Json::Number(n) => n.as_i64(),
        Json::String(s) => nanos_text(s),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        format!(
            "{what}: expected integer nanoseconds since the epoch, found {}",
            shown(value)
        )
    })
}

/// A list of OTLP `KeyValue`s as a map; a missing or `null` list is empty.
fn key_values(value: Option<&Json>, what: Path<'_>) -> Result<BTreeMap<String, Json>, String> {
    let items = match value {
        None | Some(Json::Null) => return Ok(BTreeMap::new()),
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "{what}: expected an array of key-values, found {}",
                shown(other)
            ));
        }
    };
    let mut map = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = what.index(i);
        let kv = as_object(item, item_path)?;
        let Some(Json::String(key)) = kv.get("key") else {
            return Err(format!("{item_path}: expected a string \"key\""));
        };
        let value = match kv.get("value") {
            None => Json::Null,
            Some(v) => any_value(v, item_path.key("value"))?,
        };
        map.insert(key.clone(), value);
    }
    Ok(map)
}

/// An OTLP `AnyValue` as natural JSON.
fn any_value(value: &Json, what: Path<'_>) -> Result<Json, String> {
    let object = match value {
        Json::Null => return Ok(Json::Null),
        Json::Object(object) => object,
        other => {
            return Err(format!(
                "{what}: expected an AnyValue object, found {}",
                shown(other)
            ));
        }
    };
    let bad = |kind: &str, v: &Json| format!("{what}: {kind} is not valid: {}", shown(v));
    if let Some(v) = field(object, "stringValue", "string_value") {
        return match v {
            Json::String(_) => Ok(v.clone()),
            _ => Err(bad("stringValue", v)),
        };
    }
    if let Some(v) = field(object, "boolValue", "bool_value") {
        return match v {
            Json::Bool(_) => Ok(v.clone()),
            _ => Err(bad("boolValue", v)),
        };
    }
    if let Some(v) = field(object, "intValue", "int_value") {
        let n = match v {
            Json::Number(n) => n.as_i64(),
            Json::String(s) => nanos_text(s),
            _ => None,
        };
        return n.map(Json::from).ok_or_else(|| bad("intValue", v));
    }
    if let Some(v) = field(object, "doubleValue", "double_value") {
        return match v {
            Json::Number(n) => n
                .as_f64()
                .map(Json::from)
                .ok_or_else(|| bad("doubleValue", v)),
            Json::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                Ok(v.clone())
            }
            Json::String(s) => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Json::from(f)),
                _ => Err(bad("doubleValue", v)),
            },
            _ => Err(bad("doubleValue", v)),
        };
    }
    if let Some(v) = field(object, "bytesValue", "bytes_value") {
        return match v {
            Json::String(_) => Ok(v.clone()),
            _ => Err(bad("bytesValue", v)),
        };
    }
    if let Some(v) = field(object, "arrayValue", "array_value") {
        let array_path = what.key("arrayValue");
        let values = match v {
            Json::Null => return Ok(Json::Array(Vec::new())),
            Json::Object(array) => array_field(array, "values", "values", array_path)?,
            _ => return Err(bad("arrayValue", v)),
        };
        let items = values
            .iter()
            .enumerate()
            .map(|(i, item)| any_value(item, array_path.key("values").index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Json::Array(items));
    }
    if let Some(v) = field(object, "kvlistValue", "kvlist_value") {
        let list_path = what.key("kvlistValue");
        let values = match v {
            Json::Null => None,
            Json::Object(list) => field(list, "values", "values"),
            _ => return Err(bad("kvlistValue", v)),
        };
        let map = key_values(values, list_path.key("values"))?;
        return Ok(Json::Object(map.into_iter().collect()));
    }
    Ok(Json::Null)
}

/// Where a value sits in an OTLP/JSON export (`resourceLogs[0].scopeLogs[1]
/// .logRecords[2].body`), for error messages: written out only when there
/// is an error, so decoding a valid export formats no paths.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'static str),
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, key: &'static str) -> Path<'a> {
        Path::Key(self, key)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }
}

impl Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// A field under its OTLP/JSON (lowerCamelCase) name or its proto name.
fn field<'a>(object: &'a Map<String, Json>, camel: &str, snake: &str) -> Option<&'a Json> {
    object.get(camel).or_else(|| object.get(snake))
}

fn array_field<'a>(
    object: &'a Map<String, Json>,
    camel: &str,
    snake: &str,
    path: Path<'_>,
) -> Result<&'a [Json], String> {
    match field(object, camel, snake) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(format!(
            "{path}.{camel}: expected an array, found {}",
            shown(other)
        )),
    }
}

fn as_object(value: &Json, what: impl Display) -> Result<&Map<String, Json>, String> {
    match value {
        Json::Object(object) => Ok(object),
        other => Err(format!(
            "{what}: expected an object, found {}",
            shown(other)
        )),
    }
}

// ---------------------------------------------------------------------------
// Helpers.

/// A serde_json error without the line number (inputs are single lines).
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) if e.line() <= 1 => format!("{} at column {}", &text[..at], e.column()),
        _ => text,
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A value for an error message: scalars as JSON, shortened; containers by
/// kind.
fn shown(value: &Json) -> String {
    match value {
        Json::Array(_) | Json::Object(_) => kind(value).to_string(),
        scalar => {
            let text = scalar.to_string();
            if text.chars().count() > 40 {
                let cut: String = text.chars().take(37).collect();
                format!("{cut}...")
            } else {
                text
            }
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Decodes a flat JSON event (the form [`to_flat_json`] writes, and the form
/// of [`crate::Output::Egress`]) back into an event; the inverse of
/// [`to_flat_json`]. The agent uses it to hand one program's egress to the
/// next and to export it.
pub fn from_flat_json(json: Json) -> Result<InputEvent, String> {
    match json {
        Json::Object(object) => decode_flat(object),
        other => Err(format!(
            "not an event: expected a JSON object, found {}",
            kind(&other)
        )),
    }
}

// ---------------------------------------------------------------------------
// OTLP protobuf (the agent's gRPC and HTTP/protobuf receivers).

/// The OTLP protobuf form of the rules above: the same mapping as OTLP/JSON,
/// read from the `opentelemetry-proto` messages instead of a JSON tree, so
/// an event is the same whichever encoding carried it. Trace and span IDs
/// (bytes on the wire) become lowercase hex, as OTLP/JSON writes them.
#[cfg(feature = "otlp")]
pub mod otlp_proto {
    use std::collections::BTreeMap;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use serde_json::Value as Json;

    use super::{EVENT_NAME_ATTRIBUTE, InputEvent};

    /// Resource (or any) attributes as a map; later keys win over earlier
    /// ones, as in the JSON path.
    pub fn attributes(list: &[KeyValue]) -> BTreeMap<String, Json> {
        list.iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map_or(Json::Null, any_value),
                )
            })
            .collect()
    }

    /// An `AnyValue` as natural JSON, by the rules of the module docs:
    /// non-finite doubles stay strings, bytes become their base64 text, an
    /// empty value is `null`, and so is a string-table index (which only
    /// profiles define).
    pub fn any_value(value: &AnyValue) -> Json {
        match &value.value {
            None | Some(any_value::Value::StringValueStrindex(_)) => Json::Null,
            Some(any_value::Value::StringValue(s)) => Json::from(s.as_str()),
            Some(any_value::Value::BoolValue(b)) => Json::from(*b),
            Some(any_value::Value::IntValue(i)) => Json::from(*i),
            Some(any_value::Value::DoubleValue(f)) => match serde_json::Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None if f.is_nan() => Json::from("NaN"),
                None if *f > 0.0 => Json::from("Infinity"),
                None => Json::from("-Infinity"),
            },
            Some(any_value::Value::BytesValue(b)) => Json::from(base64(b)),
            Some(any_value::Value::ArrayValue(a)) => {
                Json::Array(a.values.iter().map(any_value).collect())
            }
            Some(any_value::Value::KvlistValue(l)) => {
                Json::Object(attributes(&l.values).into_iter().collect())
            }
        }
    }

    /// One log record, with its resource's attributes already decoded by
    /// [`attributes`]. An error says which field is wrong; the caller keeps
    /// the record as malformed.
    pub fn decode_record(
        record: &LogRecord,
        resource: &BTreeMap<String, Json>,
    ) -> Result<InputEvent, String> {
        decode_record_only(record, resource, &|_| true)
    }

    /// [`decode_record`] keeping only the attributes `keep` accepts (and
    /// `event.name`, the durable ID's fallback), for a caller that knows
    /// which ones its programs read.
    pub fn decode_record_only(
        record: &LogRecord,
        resource: &BTreeMap<String, Json>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<InputEvent, String> {
        let attributes = (record.attributes.iter())
            .filter(|kv| kv.key == EVENT_NAME_ATTRIBUTE || keep(&kv.key))
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map_or(Json::Null, any_value),
                )
            })
            .collect();
        with_attributes(record, attributes, resource)
    }

    /// [`decode_record`] of a record the caller gives up: its attributes'
    /// keys and text move into the event instead of being copied.
    pub fn decode_record_owned(
        mut record: LogRecord,
        resource: &BTreeMap<String, Json>,
    ) -> Result<InputEvent, String> {
        // Inserted one by one (a later key wins, as in `collect`): for the
        // few attributes of a record, cheaper than `collect`'s sort.
        let mut attributes = BTreeMap::new();
        for kv in std::mem::take(&mut record.attributes) {
            attributes.insert(kv.key, owned_value(kv.value));
        }
        with_attributes(&record, attributes, resource)
    }

    /// An attribute's value given up by its caller: [`any_value`], with a
    /// string (the common case) moved instead of copied.
    pub fn owned_value(value: Option<AnyValue>) -> Json {
        match value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Json::String(s),
            other => other.as_ref().map_or(Json::Null, any_value),
        }
    }

    /// The fields of a log record other than its attributes, borrowed from
    /// wherever they were read: prost's `LogRecord`, or the received bytes
    /// read in place (the agent's wire path), so both give the event by
    /// the same rules ([`decode_fields`]).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Fields<'a> {
        pub time_unix_nano: u64,
        pub observed_time_unix_nano: u64,
        pub severity_number: i32,
        pub severity_text: &'a str,
        pub body: Option<&'a AnyValue>,
        pub trace_id: &'a [u8],
        pub span_id: &'a [u8],
        pub event_name: &'a str,
    }

    impl<'a> Fields<'a> {
        pub fn of(record: &'a LogRecord) -> Fields<'a> {
            Fields {
                time_unix_nano: record.time_unix_nano,
                observed_time_unix_nano: record.observed_time_unix_nano,
                severity_number: record.severity_number,
                severity_text: &record.severity_text,
                body: record.body.as_ref(),
                trace_id: &record.trace_id,
                span_id: &record.span_id,
                event_name: &record.event_name,
            }
        }
    }

    /// The event of `record` with `attributes` (decoded already).
    fn with_attributes(
        record: &LogRecord,
        attributes: BTreeMap<String, Json>,
        resource: &BTreeMap<String, Json>,
    ) -> Result<InputEvent, String> {
        decode_fields(&Fields::of(record), attributes, resource)
    }

    /// A record's time and observed time as the event holds them, or
    /// what makes its standard fields no event: a time past what the
    /// event's nanoseconds hold, a severity number out of OTLP's range.
    /// [`decode_fields`] fails for these and nothing else, so a producer
    /// that reads records in place checks them first.
    pub fn checked(record: &Fields<'_>) -> Result<(i64, i64), String> {
        checked_times(
            record.time_unix_nano,
            record.observed_time_unix_nano,
            record.severity_number,
        )
    }

    /// [`checked`] of a record's time, observed time and severity number
    /// alone, for a producer that holds them without the rest of its
    /// [`Fields`] (making them cost a redacted record about 50
    /// instructions).
    #[inline]
    pub fn checked_times(
        time_unix_nano: u64,
        observed_time_unix_nano: u64,
        severity_number: i32,
    ) -> Result<(i64, i64), String> {
        let nanos = |v: u64, what: &str| {
            i64::try_from(v).map_err(|_| {
                format!("{what}: {v} nanoseconds since the epoch is past the year 2262")
            })
        };
        let time = nanos(time_unix_nano, "timeUnixNano")?;
        let observed = nanos(observed_time_unix_nano, "observedTimeUnixNano")?;
        if !(0..=24).contains(&severity_number) {
            return Err(format!(
                "severityNumber: expected a severity number from 0 to 24, found {severity_number}"
            ));
        }
        // As `set_times` has it: no time is the observed time.
        Ok((if time != 0 { time } else { observed }, observed))
    }

    /// The event of a record's `fields` with its `attributes` (decoded
    /// already, by [`owned_value`] or [`any_value`]): the one place the
    /// standard fields are mapped, whichever way the record was read.
    pub fn decode_fields(
        record: &Fields<'_>,
        attributes: BTreeMap<String, Json>,
        resource: &BTreeMap<String, Json>,
    ) -> Result<InputEvent, String> {
        let (time, observed) = checked(record)?;
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let hex = |b: &[u8]| (!b.is_empty()).then(|| hex(b));
        let mut e = InputEvent {
            name: text(record.event_name),
            severity: i64::from(record.severity_number),
            severity_text: text(record.severity_text),
            body: record.body.and_then(|b| super::body_text(any_value(b))),
            trace_id: hex(record.trace_id),
            span_id: hex(record.span_id),
            attributes,
            resource: resource.clone(),
            ..InputEvent::default()
        };
        if e.name.is_none()
            && let Some(Json::String(s)) = e.attributes.get(EVENT_NAME_ATTRIBUTE)
            && !s.is_empty()
        {
            e.name = Some(s.clone());
        }
        (e.time, e.observed_time) = (time, observed);
        Ok(e)
    }

    /// A trace or span ID as the event holds it: lowercase hex.
    pub fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        out
    }

    /// Standard base64 with padding, as OTLP/JSON writes `bytesValue`.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn base64_matches_the_rfc_examples() {
            for (input, expected) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(super::base64(input.as_bytes()), expected);
            }
            assert_eq!(super::hex(&[0, 0xab, 0x10]), "00ab10");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A key index answers as a scan of its keys would, whatever the
    /// keys' lengths share: one per length, several of one length, keys
    /// of 63 bytes and longer (one bucket), 255 keys and more.
    #[test]
    fn key_index_finds_as_a_scan() {
        let long = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
        let sets: Vec<Vec<String>> = vec![
            vec![],
            vec!["secret".into(), "time".into(), "version".into()],
            vec!["a".into(), "b".into(), "ab".into(), "ba".into(), "".into()],
            vec![long(63, 'x'), long(64, 'x'), long(70, 'y'), "x".into()],
            (0..300).map(|i| format!("k{i}")).collect(),
        ];
        for keys in sets {
            let rc: Vec<std::rc::Rc<str>> = keys.iter().map(|k| k.as_str().into()).collect();
            let index = KeyIndex::new(&rc).expect("distinct");
            let mut probes: Vec<String> = keys.clone();
            probes.extend(["", "c", "abc", "secreT", "k300", "k29"].map(String::from));
            probes.extend([long(63, 'y'), long(65, 'x'), long(70, 'x')]);
            for p in &probes {
                let scan = keys.iter().position(|k| k == p);
                assert_eq!(index.position(p.as_bytes()), scan, "{p:?} in {keys:?}");
                if scan.is_some() {
                    assert_ne!(index.lengths() & 1 << p.len().min(63), 0, "{p:?}");
                }
            }
        }
        let twice: Vec<std::rc::Rc<str>> = vec!["a".into(), "b".into(), "a".into()];
        assert!(KeyIndex::new(&twice).is_none());
    }

    /// Keys compared a word at a time answer as `==`, a byte changed
    /// anywhere in keys of every length up to past 16.
    #[test]
    fn same_bytes_is_equality() {
        for n in 0..24 {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            assert!(same_bytes(&a, &a.clone()), "{n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!same_bytes(&a, &b), "{n}: byte {i}");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    fn event(line: &str) -> InputEvent {
        match decode_line(line).as_slice() {
            [Input::Event(e)] => e.clone(),
            other => panic!("expected one event from {line}, got {other:?}"),
        }
    }

    /// The one-pass digits of `nanos_text` read what the standard
    /// library's parse of a checked decimal reads, at the bounds too.
    #[test]
    fn nanos_texts_are_parsed_as_before() {
        let before = |s: &str| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<i64>().ok()
        };
        for s in [
            "",
            "-",
            "0",
            "-0",
            "00",
            "007",
            "-007",
            "1795341600000000000",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "0000000000000000000000000001",
            "+5",
            "--5",
            "5-",
            "1.5",
            "1e3",
            " 5",
            "5 ",
            "١",
            "x",
            "12x",
            "-x",
        ] {
            assert_eq!(nanos_text(s), before(s), "{s:?}");
        }
    }

    fn malformed(line: &str) -> String {
        match decode_line(line).as_slice() {
            [Input::Malformed { line: kept, reason }] => {
                assert_eq!(kept, line);
                reason.clone()
            }
            other => panic!("expected a malformed line from {line}, got {other:?}"),
        }
    }

    fn round_trips(e: &InputEvent) {
        let flat = to_flat_json(e).to_string();
        assert_eq!(&event(&flat), e, "through {flat}");
    }

    /// splitmix64, for the property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    #[test]
    fn flat_line_with_top_level_attributes() {
        let e = event(
            r#"{"event":"LogLaunch","time":"2026-11-22T10:00:00.5Z","version":"1.2","thread.id":7}"#,
        );
        assert_eq!(e.name.as_deref(), Some("LogLaunch"));
        assert_eq!(e.time, parse_time("2026-11-22T10:00:00.5Z").unwrap());
        assert_eq!(e.time % 1_000_000_000, 500_000_000);
        assert_eq!(e.observed_time, 0);
        assert_eq!(e.attributes["version"], json!("1.2"));
        assert_eq!(e.attributes["thread.id"], json!(7));
        assert_eq!(e.attributes.len(), 2);
        assert!(e.resource.is_empty());
        round_trips(&e);
    }

    #[test]
    fn flat_standard_fields() {
        let e = event(
            r#"{"event":"X","time":1700000000000000001,"observed_time":"2023-11-14T22:13:20+01:00",
                "severity":"warn","body":"hello","trace_id":"5b8efff798038103d269b633813fc60c",
                "span_id":"eee19b7ec3c1b174","resource":{"service.name":"imagesvc"},
                "attributes":{"time":"10:00","x":2},"x":1}"#,
        );
        assert_eq!(e.time, 1_700_000_000_000_000_001);
        assert_eq!(e.observed_time, 1_699_996_400_000_000_000);
        assert_eq!(e.severity, 13);
        assert_eq!(e.severity_text.as_deref(), Some("warn"));
        assert_eq!(e.body.as_deref(), Some("hello"));
        assert_eq!(
            e.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(e.span_id.as_deref(), Some("eee19b7ec3c1b174"));
        assert_eq!(e.resource["service.name"], json!("imagesvc"));
        // The `attributes` object wins over a top-level key.
        assert_eq!(e.attributes["x"], json!(2));
        assert_eq!(e.attributes["time"], json!("10:00"));
        round_trips(&e);
    }

    #[test]
    fn severity_forms() {
        assert_eq!(event(r#"{"severity":9}"#).severity, 9);
        assert_eq!(event(r#"{"severity":"9"}"#).severity, 9);
        assert_eq!(event(r#"{"severity":"9"}"#).severity_text, None);
        let e = event(r#"{"severity":"ERROR","severity_text":"E"}"#);
        assert_eq!((e.severity, e.severity_text.as_deref()), (17, Some("E")));
        let e = event(r#"{"severity":"VERBOSE"}"#);
        assert_eq!(
            (e.severity, e.severity_text.as_deref()),
            (0, Some("VERBOSE"))
        );
        for (text, n) in [
            ("TRACE", 1),
            ("trace4", 4),
            ("DEBUG", 5),
            ("INFO", 9),
            ("Info2", 10),
            ("NOTICE", 10),
            ("WARN", 13),
            ("WARNING", 13),
            ("ERROR", 17),
            ("ERROR3", 19),
            ("FATAL", 21),
            ("CRITICAL", 21),
            ("FATAL4", 24),
            ("SEVERITY_NUMBER_INFO", 9),
            ("SEVERITY_NUMBER_UNSPECIFIED", 0),
        ] {
            assert_eq!(severity_number(text), Some(n), "{text}");
        }
        for text in ["", "2", "INFO5", "INFO1", "NOTICE2", "LOUD"] {
            assert_eq!(severity_number(text), None, "{text}");
        }
        let reason = malformed(r#"{"severity":25}"#);
        assert!(
            reason.starts_with("severity: expected a severity number"),
            "{reason}"
        );
        malformed(r#"{"severity":9.0}"#);
        malformed(r#"{"severity":"-1"}"#);
    }

    #[test]
    fn time_falls_back_to_observed_time_then_zero() {
        let e = event(r#"{"event":"A","observed_time":5}"#);
        assert_eq!((e.time, e.observed_time), (5, 5));
        let e = event(r#"{"event":"A","time":0,"observed_time":"6"}"#);
        assert_eq!((e.time, e.observed_time), (6, 6));
        let e = event(r#"{"event":"A","time":null}"#);
        assert_eq!((e.time, e.observed_time), (0, 0));
        let e = event(r#"{"event":"A","time":7}"#);
        assert_eq!((e.time, e.observed_time), (7, 0));
    }

    #[test]
    fn bodies_that_are_not_text_are_kept_as_json_text() {
        assert_eq!(
            event(r#"{"body":{"a":[1, 2]}}"#).body.as_deref(),
            Some(r#"{"a":[1,2]}"#)
        );
        assert_eq!(event(r#"{"body":12}"#).body.as_deref(), Some("12"));
        assert_eq!(event(r#"{"body":null}"#).body, None);
    }

    #[test]
    fn durable_id_precedence() {
        assert_eq!(event(r#"{"event.name":"B"}"#).name.as_deref(), Some("B"));
        let e = event(r#"{"event":"A","event.name":"B"}"#);
        assert_eq!(e.name.as_deref(), Some("A"));
        assert_eq!(e.attributes["event.name"], json!("B"));
        round_trips(&e);
        assert_eq!(
            event(r#"{"event":"","event.name":"B"}"#).name.as_deref(),
            Some("B")
        );
        assert_eq!(event(r#"{"event.name":3}"#).name, None);
        assert_eq!(event(r#"{"msg":"no name"}"#).name, None);
        assert_eq!(event("{}"), InputEvent::default());
    }

    #[test]
    fn skipped_lines() {
        for line in ["", "   ", "\t\r", "# a comment", "  #{\"event\":\"A\"}"] {
            assert_eq!(decode_line(line), Vec::new(), "{line:?}");
        }
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(malformed("ab"), "not JSON: expected value at column 1");
        assert_eq!(
            malformed("{]"),
            "not JSON: key must be a string at column 2"
        );
        assert_eq!(
            malformed(r#"{"event":"A","#),
            "not JSON: EOF while parsing a value at column 13"
        );
        assert_eq!(
            malformed(r#"{"event":"A"} x"#),
            "not JSON: trailing characters at column 15"
        );
        assert_eq!(
            malformed("[1]"),
            "not an event: expected a JSON object, found an array"
        );
        assert_eq!(
            malformed("12"),
            "not an event: expected a JSON object, found a number"
        );
        assert_eq!(
            malformed(r#"{"event":1}"#),
            "event: expected a string, found 1"
        );
        assert_eq!(
            malformed(r#"{"time":"yesterday"}"#),
            "time: expected an RFC 3339 time or integer nanoseconds since the epoch, found \"yesterday\""
        );
        assert_eq!(
            malformed(r#"{"time":1.5}"#),
            "time: expected an RFC 3339 time or integer nanoseconds since the epoch, found 1.5"
        );
        malformed(r#"{"time":99999999999999999999}"#);
        malformed(r#"{"time":"2026-02-30T00:00:00Z"}"#);
        assert_eq!(
            malformed(r#"{"resource":[]}"#),
            "resource: expected an object, found an array"
        );
        assert_eq!(
            malformed(r#"{"attributes":"x"}"#),
            "attributes: expected an object, found \"x\""
        );
        malformed(r#"{"trace_id":5}"#);
        let long = format!(r#"{{"event":"{}"x}}"#, "a".repeat(100));
        assert!(malformed(&long).starts_with("not JSON: expected `,` or `}` at column 112"));
    }

    const OTLP: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"imagesvc"}},{"key":"host.cores","value":{"intValue":"2"}}]},"scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"timeUnixNano":"1795341600500000000","observedTimeUnixNano":"1795341600600000000","severityNumber":9,"severityText":"INFO","body":{"stringValue":"started"},"attributes":[{"key":"fileName","value":{"stringValue":"a.png"}},{"key":"thread.id","value":{"intValue":"7"}},{"key":"ratio","value":{"doubleValue":0.5}},{"key":"ok","value":{"boolValue":true}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":3}]}}},{"key":"nested","value":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":"Infinity"}}]}}},{"key":"raw","value":{"bytesValue":"AAE="}},{"key":"empty","value":{}},{"key":"event.name","value":{"stringValue":"Other"}}],"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","eventName":"LogStartingFileHash"},{"observedTimeUnixNano":1795341601000000000,"severityNumber":"SEVERITY_NUMBER_ERROR","body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}},"attributes":[{"key":"event.name","value":{"stringValue":"ErrorHashing"}}],"traceId":"","spanId":""}]}]},{"scopeLogs":[{"logRecords":[{"time_unix_nano":"5","event_name":"Snake"}]}]}]}"#;

    #[test]
    fn otlp_json_export() {
        let inputs = decode_line(OTLP);
        assert_eq!(inputs.len(), 3, "{inputs:?}");
        let events: Vec<InputEvent> = inputs
            .into_iter()
            .map(|input| match input {
                Input::Event(e) => e,
                other => panic!("{other:?}"),
            })
            .collect();
        let e = &events[0];
        assert_eq!(e.name.as_deref(), Some("LogStartingFileHash"));
        assert_eq!(e.time, 1_795_341_600_500_000_000);
        assert_eq!(e.observed_time, 1_795_341_600_600_000_000);
        assert_eq!(format_time(e.time), "2026-11-22T10:00:00.5Z");
        assert_eq!((e.severity, e.severity_text.as_deref()), (9, Some("INFO")));
        assert_eq!(e.body.as_deref(), Some("started"));
        assert_eq!(
            e.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(e.span_id.as_deref(), Some("eee19b7ec3c1b174"));
        assert_eq!(e.resource["service.name"], json!("imagesvc"));
        assert_eq!(e.resource["host.cores"], json!(2));
        let attrs = Json::Object(e.attributes.clone().into_iter().collect());
        assert_eq!(
            attrs,
            json!({
                "fileName": "a.png", "thread.id": 7, "ratio": 0.5, "ok": true,
                "tags": ["x", 3], "nested": {"k": "Infinity"}, "raw": "AAE=",
                "empty": null, "event.name": "Other",
            })
        );
        let e = &events[1];
        assert_eq!(e.name.as_deref(), Some("ErrorHashing"));
        assert_eq!(
            (e.time, e.observed_time),
            (1_795_341_601_000_000_000, 1_795_341_601_000_000_000)
        );
        assert_eq!(e.severity, 17);
        assert_eq!(e.body.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!((&e.trace_id, &e.span_id), (&None, &None));
        assert_eq!(e.resource["service.name"], json!("imagesvc"));
        let e = &events[2];
        assert_eq!((e.name.as_deref(), e.time), (Some("Snake"), 5));
        assert!(e.resource.is_empty());
        for e in &events {
            round_trips(e);
        }
    }

    #[test]
    fn otlp_malformed_records_do_not_spoil_the_others() {
        let line = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"A"},{"eventName":"B","attributes":[{"key":"n","value":{"intValue":"x"}}]},3]},{"logRecords":{}}]},{"resource":[]},{"scopeLogs":[{"logRecords":[{"eventName":"C","timeUnixNano":"-"}]}]}]}"#;
        let inputs = decode_line(line);
        let shape: Vec<String> = inputs
            .iter()
            .map(|input| match input {
                Input::Event(e) => format!("event {}", e.name.as_deref().unwrap_or("?")),
                Input::Malformed { line, reason } => format!("{line} | {reason}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "event A",
                r#"{"attributes":[{"key":"n","value":{"intValue":"x"}}],"eventName":"B"} | resourceLogs[0].scopeLogs[0].logRecords[1].attributes[0].value: intValue is not valid: "x""#,
                "3 | resourceLogs[0].scopeLogs[0].logRecords[2]: expected an object, found 3",
                r#"{"logRecords":{}} | resourceLogs[0].scopeLogs[1].logRecords: expected an array, found an object"#,
                r#"{"resource":[]} | resourceLogs[1].resource: expected an object, found an array"#,
                r#"{"eventName":"C","timeUnixNano":"-"} | resourceLogs[2].scopeLogs[0].logRecords[0].timeUnixNano: expected integer nanoseconds since the epoch, found "-""#,
            ]
        );
        assert_eq!(decode_line(r#"{"resourceLogs":[]}"#), Vec::new());
        assert_eq!(
            malformed(r#"{"resourceLogs":{}}"#),
            "resourceLogs: expected an array, found an object"
        );
    }

    /// Errors deep in an export name the whole path to the bad value.
    #[test]
    fn otlp_errors_name_nested_paths() {
        for (line, path) in [
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"arrayValue":{"values":[{"intValue":"1"},{"boolValue":1}]}}}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue.values[1]: boolValue is not valid: 1",
            ),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"m","value":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":"x"}}]}}}]}]}]}]}"#,
                r#"resourceLogs[0].scopeLogs[0].logRecords[0].attributes[0].value.kvlistValue.values[0].value: doubleValue is not valid: "x""#,
            ),
            (
                r#"{"resourceLogs":[{},{"resource":{"attributes":[{"key":1}]}}]}"#,
                r#"resourceLogs[1].resource.attributes[0]: expected a string "key""#,
            ),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{},{"logRecords":[{"severityNumber":"high"}]}]}]}"#,
                "resourceLogs[0].scopeLogs[1].logRecords[0].severityNumber",
            ),
        ] {
            let reasons: Vec<String> = decode_line(line)
                .into_iter()
                .filter_map(|i| match i {
                    Input::Malformed { reason, .. } => Some(reason),
                    Input::Event(_) => None,
                })
                .collect();
            assert!(
                reasons.len() == 1 && reasons[0].starts_with(path),
                "{line}: {reasons:?}"
            );
        }
    }

    #[test]
    fn reserved_attribute_names_stay_nested() {
        let mut e = event(r#"{"event":"LogWelcomeBanner","time":"2026-11-22T10:00:00Z"}"#);
        for key in RESERVED_KEYS {
            e.attributes.insert(key.to_string(), json!(key));
        }
        e.attributes.insert("plain".into(), json!([1, {"a": null}]));
        let flat = to_flat_json(&e);
        assert_eq!(flat["plain"], json!([1, {"a": null}]));
        assert_eq!(flat["attributes"]["time"], json!("time"));
        assert_eq!(flat["attributes"]["attributes"], json!("attributes"));
        assert_eq!(flat["time"], json!("2026-11-22T10:00:00Z"));
        round_trips(&e);
    }

    #[test]
    fn format_and_parse_known_times() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.000000001Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (1_795_341_600_000_000_000, "2026-11-22T10:00:00Z"),
            (1_795_341_600_120_000_000, "2026-11-22T10:00:00.12Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775807Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224192Z"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_time(ns), text);
            assert_eq!(parse_time(text), Some(ns), "{text}");
        }
        let same = [
            "2026-11-22T11:30:00.5+01:30",
            "2026-11-22t10:00:00.500z",
            "2026-11-22 10:00:00.5",
            "2026-11-22T09:00:00.5-01:00",
            "2026-11-22T10:00:00.5000000009Z",
        ];
        for text in same {
            assert_eq!(parse_time(text), Some(1_795_341_600_500_000_000), "{text}");
        }
        assert_eq!(
            parse_time("2016-12-31T23:59:60Z"),
            parse_time("2017-01-01T00:00:00Z")
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T10:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:60:00Z",
            "2026-11-22T10:00:61Z",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00+1:00",
            "2026-11-22T10:00:00+24:00",
            "2026-11-22T10:00:00ZZ",
            "2026-11-22T10:00:00 Z",
            "+026-11-22T10:00:00Z",
            "2262-04-11T23:47:16.854775808Z",
            "1677-09-21T00:12:43.145224191Z",
            "9999-12-31T23:59:59Z",
            "2026-11-22T10:00:00.5Zé",
            "é026-11-22T10:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_agree_with_humantime_and_round_trip() {
        let mut rng = Rng(1);
        for i in 0..20_000 {
            let ns = match i % 4 {
                0 => rng.next() as i64,
                1 => (rng.next() >> 2) as i64,
                2 => (rng.next() % 4_000_000_000_000_000) as i64 * 1000,
                _ => (rng.next() % 4_000_000_000) as i64 * 1_000_000_000,
            };
            let text = format_time(ns);
            assert_eq!(parse_time(&text), Some(ns), "{text}");
            if ns >= 0 {
                let system = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64);
                let oracle = humantime::format_rfc3339_nanos(system).to_string();
                assert_eq!(parse_time(&oracle), Some(ns), "{oracle}");
                assert_eq!(humantime::parse_rfc3339(&text).ok(), Some(system), "{text}");
            }
        }
    }

    fn random_json(rng: &mut Rng, depth: usize) -> Json {
        match rng.below(if depth > 2 { 5 } else { 7 }) {
            0 => Json::Null,
            1 => json!(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!((rng.next() % 1000) as f64 / 8.0),
            4 => json!(*rng.pick(&["", "x", "é\"\\\n", "INFO", "2026-11-22T10:00:00Z"])),
            5 => Json::Array(
                (0..rng.below(3))
                    .map(|_| random_json(rng, depth + 1))
                    .collect(),
            ),
            _ => Json::Object(
                (0..rng.below(3))
                    .map(|i| (format!("k{i}"), random_json(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    /// A random event of the kind decoding gives (see the module docs).
    fn random_event(rng: &mut Rng) -> InputEvent {
        let keys = [
            "a",
            "thread.id",
            "event.name",
            "time",
            "attributes",
            "resource",
            "é x",
            "",
        ];
        let mut attributes = BTreeMap::new();
        for _ in 0..rng.below(5) {
            attributes.insert(rng.pick(&keys).to_string(), random_json(rng, 0));
        }
        let name = match (rng.below(3), attributes.get("event.name")) {
            (0, Some(Json::String(s))) if !s.is_empty() => Some(s.clone()),
            (0, Some(Json::String(_))) => None,
            (0, _) => None,
            _ => Some(rng.pick(&["A", "LogEndFileHash", "é"]).to_string()),
        };
        let observed_time = [0, rng.next() as i64][rng.below(2)];
        let time = [observed_time, rng.next() as i64 | 1][rng.below(2)];
        let text = |rng: &mut Rng| {
            [None, Some(rng.pick(&["x", "{\"a\":1}", " "]).to_string())][rng.below(2)].clone()
        };
        let resource = (0..rng.below(3))
            .map(|i| (format!("r{i}"), random_json(rng, 0)))
            .collect();
        InputEvent {
            name,
            time,
            observed_time,
            severity: rng.below(25) as i64,
            severity_text: text(rng),
            body: text(rng),
            trace_id: text(rng),
            span_id: text(rng),
            attributes,
            resource,
        }
    }

    #[test]
    fn random_events_round_trip_through_the_flat_form() {
        let mut rng = Rng(7);
        for _ in 0..2_000 {
            round_trips(&random_event(&mut rng));
        }
    }

    /// The hand-written sample events beside the sample programs: small,
    /// spanning several minutes, and all decodable but for the one malformed
    /// line on purpose.
    #[test]
    fn sample_event_files() {
        use sha2::Digest;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files: Vec<_> = std::fs::read_dir(root.join("samples"))
            .unwrap()
            .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with(".events.jsonl"))
            .collect();
        files.sort();
        // Every sample folder with a program has its events beside it.
        for dir in std::fs::read_dir(root.join("samples")).unwrap() {
            let dir = dir.unwrap().path();
            let has = |suffix: &str| {
                std::fs::read_dir(&dir)
                    .map(|mut d| d.any(|e| e.unwrap().path().to_string_lossy().ends_with(suffix)))
                    .unwrap_or(false)
            };
            if has(".dt") && dir.file_name().is_some_and(|n| n != "schemas") {
                assert!(has(".events.jsonl"), "{dir:?} has a program but no events");
            }
        }
        let (mut malformed, mut otlp, mut verified, mut mismatched) = (0, 0, 0, 0);
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let lines = text.lines().count();
            // The embedded demo's events are what its application logs, not
            // a scenario of several minutes: only the scenarios need the
            // length and span that close windows and fire timeouts.
            let scenario = !path.to_string_lossy().contains("08-embedded");
            assert!(
                !scenario || (20..=60).contains(&lines),
                "{path:?}: {lines} lines"
            );
            let mut events = Vec::new();
            for line in text.lines() {
                otlp += usize::from(line.contains("resourceLogs"));
                for input in decode_line(line) {
                    match input {
                        Input::Event(e) => events.push(e),
                        Input::Malformed { .. } => malformed += 1,
                    }
                }
            }
            for pair in events.windows(2) {
                assert!(pair[0].time <= pair[1].time, "{path:?}: {pair:?}");
            }
            let span = events.last().unwrap().time - events[0].time;
            assert!(
                !scenario || span > 180_000_000_000,
                "{path:?} spans {span} ns"
            );
            for e in &events {
                assert!(e.name.is_some(), "{path:?}: {e:?}");
                round_trips(e);
                if e.name.as_deref() != Some("LogEndFileHash") {
                    continue;
                }
                let file = e.attributes["fileName"].as_str().unwrap();
                if let Some(relative) = file.strip_prefix("samples/") {
                    let bytes = std::fs::read(root.join("samples").join(relative)).unwrap();
                    let actual = format!("{:x}", sha2::Sha256::digest(&bytes));
                    if actual == e.attributes["hashValue"] {
                        verified += 1;
                    } else {
                        mismatched += 1;
                    }
                }
            }
        }
        assert_eq!((malformed, otlp), (1, 1));
        assert!(verified >= 2 && mismatched >= 2, "{verified} {mismatched}");
    }

    /// The decoder as it was before the direct one: the `Value` route (its
    /// top level is unchanged) with the flat decoder of that time, kept
    /// verbatim as the oracle.
    fn reference_decode_line(line: &str) -> Vec<Input> {
        via_value(line, reference_decode_flat)
    }

    fn reference_decode_flat(object: Map<String, Json>) -> Result<InputEvent, String> {
        let mut e = InputEvent::default();
        let (mut time, mut observed) = (None, None);
        let mut severity_from_text = None;
        let mut explicit_attributes = None;
        for (key, value) in object {
            match key.as_str() {
                "event" => e.name = opt_string(value, "event")?.filter(|s| !s.is_empty()),
                "time" => time = time_field(&value, "time")?,
                "observed_time" => observed = time_field(&value, "observed_time")?,
                "severity" => match value {
                    Json::String(text) if nanos_text(&text).is_none() => {
                        e.severity = severity_number(&text).unwrap_or(0);
                        severity_from_text = Some(text);
                    }
                    other => e.severity = severity_field(&other, "severity")?,
                },
                "severity_text" => e.severity_text = opt_string(value, "severity_text")?,
                "body" => e.body = body_text(value),
                "trace_id" => e.trace_id = opt_string(value, "trace_id")?.filter(|s| !s.is_empty()),
                "span_id" => e.span_id = opt_string(value, "span_id")?.filter(|s| !s.is_empty()),
                "resource" => e.resource = opt_object(value, "resource")?,
                "attributes" => explicit_attributes = Some(opt_object(value, "attributes")?),
                _ => {
                    e.attributes.insert(key, value);
                }
            }
        }
        if let Some(explicit) = explicit_attributes {
            e.attributes.extend(explicit);
        }
        if e.severity_text.is_none() {
            e.severity_text = severity_from_text;
        }
        if e.name.is_none() {
            e.name = name_attribute(&e.attributes);
        }
        set_times(&mut e, time, observed);
        Ok(e)
    }

    #[test]
    fn reserved_keys_sorted_is_their_key_order() {
        let named: Vec<&str> = RESERVED_KEYS_SORTED
            .iter()
            .map(|&i| RESERVED_KEYS[i])
            .collect();
        let mut sorted = RESERVED_KEYS.to_vec();
        sorted.sort_unstable();
        assert_eq!(named, sorted);
    }

    /// A line written key by key, so it can repeat keys, escape them and
    /// put numbers that `json!` cannot hold.
    fn random_line(rng: &mut Rng) -> String {
        let keys = [
            "event",
            "time",
            "observed_time",
            "severity",
            "severity_text",
            "body",
            "trace_id",
            "span_id",
            "resource",
            "attributes",
            "event.name",
            "thread.id",
            "a",
            "",
            "é x",
            "resourceLogs",
            "resource_logs",
            "$serde_json::private::RawValue",
            "$serde_json::private::Number",
        ];
        let values = [
            "null",
            "true",
            "1",
            "-0",
            "0",
            "1.5",
            "1e3",
            "-1e-7",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "99999999999999999999999999999",
            "1e308",
            "1e400",
            r#""""#,
            r#""A""#,
            r#""INFO""#,
            r#""warn""#,
            r#""25""#,
            r#""2026-11-22T10:00:00.5Z""#,
            r#""2026-02-30T00:00:00Z""#,
            r#""1795341600000000000""#,
            r#""\u00e9\n\"\\\ud83d\ude00""#,
            r#""\ud800""#,
            "[]",
            "[1,[2,{}]]",
            "{}",
            r#"{"a":{"b":{"c":[null]}}}"#,
            r#"{"service.name":"imagesvc","n":2}"#,
            r#"{"time":"x","event.name":"B"}"#,
            r#""{\"a\":1}""#,
        ];
        let mut parts = Vec::new();
        for _ in 0..rng.below(7) {
            let key = *rng.pick(&keys);
            // Sometimes the same key with an escape in it.
            let key = match (rng.below(5), key.chars().next()) {
                (0, Some(c)) => format!("\\u{:04x}{}", c as u32, &key[c.len_utf8()..]),
                _ => key.replace('\\', "\\\\"),
            };
            let value = match rng.below(4) {
                0 => random_json(rng, 0).to_string(),
                _ => rng.pick(&values).to_string(),
            };
            parts.push(format!("\"{key}\":{value}"));
        }
        match rng.below(12) {
            0 => rng.pick(&values).to_string(),
            1 => OTLP.to_string(),
            2 => format!(
                "{{\"resource_logs\":{},{}}}",
                rng.pick(&["[]", "{}", "[{}]", "7"]),
                parts.join(",")
            )
            .replace(",}", "}"),
            3 => to_flat_json(&random_event(rng)).to_string(),
            _ => format!("{{{}}}", parts.join(",")),
        }
    }

    /// The direct decoder (and the `Value` route it falls back to) gives
    /// what the decoder before it gave, line for line, errors included: for generated lines (repeated and
    /// escaped keys, standard fields of every type, several wrong at once,
    /// big and tiny numbers, nested values, OTLP/JSON exports, serde_json's
    /// private keys, values that are not objects) and mutations of them.
    #[test]
    fn direct_decoding_agrees_with_the_reference_decoder() {
        let mut rng = Rng(4);
        let mut n_events = 0;
        let mut n_malformed = 0;
        let mut compare = |line: &str| {
            let direct = decode_line(line);
            let reference = reference_decode_line(line);
            assert_eq!(direct, reference, "{line}");
            assert_eq!(decode_line_via_value(line), reference, "{line}");
            for input in &direct {
                match input {
                    Input::Event(_) => n_events += 1,
                    Input::Malformed { .. } => n_malformed += 1,
                }
            }
        };
        let alphabet: Vec<char> = "{}[]\":,0123456789-+.eE \\ntrufalsZé#\u{0}"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let line = random_line(&mut rng);
            compare(&line);
            let mut chars: Vec<char> = line.chars().collect();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(chars.len() + 1);
                match rng.below(3) {
                    0 => chars.insert(at, *rng.pick(&alphabet)),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ if at < chars.len() => chars[at] = *rng.pick(&alphabet),
                    _ => {}
                }
            }
            compare(&chars.into_iter().collect::<String>());
        }
        // Both kinds, in numbers: the comparison covered real events and
        // real errors, not one of them only.
        assert!(
            n_events > 10_000 && n_malformed > 10_000,
            "{n_events} events, {n_malformed} malformed"
        );
    }

    /// A flat line of the kind the runtime's line lane reads: standard
    /// fields and attributes of scalar values, some of the wrong type,
    /// some repeated or escaped.
    fn plain_line(rng: &mut Rng) -> String {
        // Every standard field but the `attributes` object, which the lane
        // leaves to decoding whatever it holds.
        let keys: Vec<&str> = RESERVED_KEYS
            .into_iter()
            .filter(|k| *k != "attributes")
            .chain(["thread.id", "event.name", "a", "status", "path", "other"])
            .collect();
        let values = [
            r#"{"service.name":"svc","x":[1,{"y":null}]}"#,
            r#"{"service.name":7,"service.name":"late"}"#,
            r#"{"a":"\u00e9"}"#,
            r#""warn""#,
            r#""SEVERITY_NUMBER_ERROR""#,
            "null",
            "true",
            "0",
            "7",
            "-3",
            "24",
            "25",
            "1.5",
            "1e3",
            "9223372036854775807",
            "18446744073709551615",
            "1795341600000000000",
            r#""""#,
            r#""A""#,
            r#""B""#,
            r#""INFO""#,
            r#""12""#,
            r#""2026-11-22T10:00:00.5Z""#,
            r#""1795341600000000000""#,
            r#""x\ny""#,
            "[1]",
            r#"{"k":"v"}"#,
        ];
        let mut parts = Vec::new();
        for _ in 0..rng.below(8) {
            let key = *rng.pick(&keys);
            let key = match rng.below(20) {
                0 => format!("\\u{:04x}{}", key.as_bytes()[0], &key[1..]),
                _ => key.to_string(),
            };
            parts.push(format!("\"{key}\":{}", rng.pick(&values)));
        }
        format!("{}{{{}}}", [" ", ""][rng.below(2)], parts.join(","))
    }

    /// A line read in place is one the decoder decodes into one event with
    /// the same standard fields and the same wanted attributes; the lines
    /// it declines cover every kind (the decoder handles them).
    #[test]
    fn reading_in_place_agrees_with_decoding() {
        let wanted = ["a", "status", "path", "thread.id", "é x", ""];
        let takes = |name: &str| (name != "B").then_some(name.len());
        let mut rng = Rng(11);
        let (mut read, mut declined) = (0, 0);
        // Lines read in place with a service, and with a level's name.
        let (mut services, mut levels) = (0, 0);
        let alphabet: Vec<char> = "{}[]\":,0123456789-.e \\ntrufalsé".chars().collect();
        for i in 0..40_000 {
            let mut line = if i % 4 == 0 {
                random_line(&mut rng)
            } else {
                plain_line(&mut rng)
            };
            if i % 3 == 0 {
                let mut chars: Vec<char> = line.chars().collect();
                let at = rng.below(chars.len() + 1);
                chars.insert(at, *rng.pick(&alphabet));
                line = chars.into_iter().collect();
            }
            let mut values = Vec::new();
            let Some((std, taken)) = scan_flat(&line, &wanted, &mut values, &takes) else {
                declined += 1;
                continue;
            };
            read += 1;
            let decoded = decode_line(&line);
            let [Input::Event(e)] = decoded.as_slice() else {
                panic!("read in place, but decoded as {decoded:?}: {line}");
            };
            assert_eq!(std, e.standard(), "{line}");
            services += usize::from(std.service.is_some());
            levels += usize::from(std.severity > 0 && std.severity_text.is_some());
            assert!(std.name.is_none_or(|n| n != "B"), "{line}");
            assert_eq!(taken, std.name.map(str::len), "{line}");
            for (w, v) in wanted.iter().zip(&values) {
                let attribute = e.attributes.get(*w).and_then(Scalar::of);
                assert_eq!(*v, attribute, "{w} of {line}");
            }
        }
        assert!(
            read > 5_000 && declined > 5_000,
            "{read} read, {declined} declined"
        );
        assert!(
            services > 20 && levels > 100,
            "{services} services, {levels} levels"
        );
    }

    /// Garbage, truncated and mutated lines: decoding never panics, and a
    /// line that gives nothing is blank or a comment.
    #[test]
    fn decoding_never_panics() {
        let mut rng = Rng(42);
        let mut seeds: Vec<String> = vec![OTLP.to_string()];
        for _ in 0..25 {
            seeds.push(to_flat_json(&random_event(&mut rng)).to_string());
        }
        seeds.push("[".repeat(100_000));
        seeds.push(format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000)));
        seeds.push(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"arrayValue":{"values":[{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{}}}]}}]}}]}}}]}]}]}"#.to_string());
        let alphabet: Vec<char> = "{}[]\":,0123456789-+.eE \\ntrufalsZé#\u{0}\u{7f}\u{fffd}"
            .chars()
            .collect();
        let check = |line: &str| {
            let inputs = decode_line(line);
            let trimmed = line.trim();
            if inputs.is_empty() {
                assert!(
                    trimmed.is_empty()
                        || trimmed.starts_with('#')
                        || trimmed.contains("esourceLogs")
                        || trimmed.contains("esource_logs"),
                    "{line:?}"
                );
            }
        };
        for seed in &seeds {
            let boundaries: Vec<usize> = (0..=seed.len())
                .filter(|&i| seed.is_char_boundary(i))
                .collect();
            for &cut in boundaries.iter().step_by(1 + boundaries.len() / 300) {
                check(&seed[..cut]);
                check(&seed[cut..]);
            }
            for _ in 0..100 {
                let mut chars: Vec<char> = seed.chars().take(2000).collect();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(chars.len() + 1);
                    match rng.below(3) {
                        0 => chars.insert(at, *rng.pick(&alphabet)),
                        1 if at < chars.len() => {
                            chars.remove(at);
                        }
                        _ if at < chars.len() => chars[at] = *rng.pick(&alphabet),
                        _ => {}
                    }
                }
                check(&chars.into_iter().collect::<String>());
            }
        }
        for _ in 0..20_000 {
            let len = rng.below(40);
            let line: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
            check(&line);
        }
    }
}
