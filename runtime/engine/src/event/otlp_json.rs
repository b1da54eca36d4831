//! OTLP/JSON export lines read in place: one pass of serde visitors one
//! level down (`resourceLogs` -> `scopeLogs` -> `logRecords`), with no
//! `serde_json::Value` tree of the line.
//!
//! [`read_export`] reads an export in its plain form into an [`Export`]:
//! each record's standard fields and its attributes as `(key, value)`
//! pairs, strings borrowed from the line where they have no escapes, each
//! resource's attributes once for all its records. From it come both a
//! record's fields read in place ([`Export::standard`],
//! [`Export::wanted`]: what the line lane builds a record's slot row from)
//! and its whole event ([`Export::event`], what `decode_line` gives it).
//!
//! Anything but the plain form gives `None`, and the line is decoded the
//! usual way (`decode_otlp`, through a `Value`), which stays the one
//! definition of what an export means and says what is wrong with it: a
//! malformed record, resource or scope (anything decoding would report),
//! the proto (`snake_case`) field names, a `resourceLogs` or `scopeLogs` or
//! `logRecords` given twice, an `AnyValue` with other than one of
//! `stringValue`, `boolValue`, `intValue`, `doubleValue` (an array, a
//! key-value list, bytes, an empty value, a double as a string), serde_json's
//! private marker keys. Repeated keys elsewhere keep the last value, as
//! `Value` parsing does. A test holds this reader to the `Value` decoder
//! over generated and mutated exports.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

mod walk;

use super::{
    EVENT_NAME_ATTRIBUTE, InputEvent, KeySeed, SERVICE_NAME_ATTRIBUTE, Scalar, Skip, Standard,
    THREAD_ID_ATTRIBUTE, nanos_text, set_times, severity_number,
};

/// The start of an export line in its usual form: the lines worth trying.
const OTLP_START: &str = "{\"resourceLogs\"";

/// An OTLP/JSON export line read in its plain form.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Export<'a> {
    /// Per `resourceLogs` element, its resource's attributes in `attrs`.
    resources: Vec<(usize, usize)>,
    records: Vec<Rec<'a>>,
    /// Every attribute of the line, in order: each record's and each
    /// resource's a range of it.
    attrs: Vec<(Cow<'a, str>, Any<'a>)>,
}

/// One log record's fields, as decoding reads them.
#[derive(Debug, Default, PartialEq)]
struct Rec<'a> {
    resource: usize,
    time: Option<i64>,
    observed: Option<i64>,
    severity: i64,
    severity_text: Option<Cow<'a, str>>,
    trace_id: Option<Cow<'a, str>>,
    span_id: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    body: Option<Cow<'a, str>>,
    attrs: (usize, usize),
}

/// An `AnyValue` of the plain forms, as the JSON value decoding makes it.
#[derive(Debug, Clone, PartialEq)]
enum Any<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl Any<'_> {
    fn to_json(&self) -> Json {
        match self {
            Any::Null => Json::Null,
            Any::Bool(b) => Json::Bool(*b),
            Any::Int(i) => Json::from(*i),
            Any::Float(f) => Json::from(*f),
            Any::Str(s) => Json::String(s.to_string()),
        }
    }
}

/// Whether `line` starts as an export line usually does: the lines
/// [`read_export`] tries.
pub(crate) fn is_export(line: &str) -> bool {
    line.trim_start().starts_with(OTLP_START)
}

/// An export line read in place; `None` for any other line, and for an
/// export in any but the plain form (see the module's doc).
pub(crate) fn read_export(line: &str) -> Option<Export<'_>> {
    let mut export = Export::default();
    read_export_into(line, &mut export).then_some(export)
}

/// [`read_export`] into `export` (cleared first), whose buffers a caller
/// reading many lines keeps; whether `line` was read.
pub(crate) fn read_export_into<'a>(line: &'a str, export: &mut Export<'a>) -> bool {
    if !is_export(line) {
        return false;
    }
    export.clear();
    // The common shape by its bytes; anything else by the visitors.
    if walk::read(line, export).is_some() {
        return true;
    }
    export.clear();
    read_by_visitors(line, export).is_some()
}

/// An export read by serde's visitors (the general path) into `export`,
/// which is empty.
fn read_by_visitors<'a>(line: &'a str, export: &mut Export<'a>) -> Option<()> {
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(Top(export)).ok()?;
    de.end().ok()
}

/// The borrowed text of `s`; `None` where it had escapes.
fn borrowed<'a>(s: &Option<Cow<'a, str>>) -> Option<Option<&'a str>> {
    match s {
        None => Some(None),
        Some(Cow::Borrowed(s)) => Some(Some(s)),
        Some(Cow::Owned(_)) => None,
    }
}

impl<'a> Export<'a> {
    /// Empty, its buffers kept.
    fn clear(&mut self) {
        self.resources.clear();
        self.records.clear();
        self.attrs.clear();
    }

    /// The number of records.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    fn attrs(&self, (start, end): (usize, usize)) -> &[(Cow<'a, str>, Any<'a>)] {
        self.attrs.get(start..end).unwrap_or_default()
    }

    /// The last value of attribute `key` in `range` (later keys win, as in
    /// decoding's map).
    fn last(&self, range: (usize, usize), key: &str) -> Option<&Any<'a>> {
        self.attrs(range)
            .iter()
            .rev()
            .find_map(|(k, v)| (k == key).then_some(v))
    }

    /// Record `i`'s standard fields, borrowed from the line:
    /// [`InputEvent::standard`] of its event. `None` where one of its texts
    /// had escapes (and cannot be borrowed).
    pub(crate) fn standard(&self, i: usize) -> Option<Standard<'a>> {
        let r = self.records.get(i)?;
        let text = |k: &str, range| match self.last(range, k) {
            Some(Any::Str(Cow::Borrowed(s))) => Some(Some(*s)),
            Some(Any::Str(Cow::Owned(_))) => None,
            _ => Some(None),
        };
        let service = text(SERVICE_NAME_ATTRIBUTE, *self.resources.get(r.resource)?)?;
        let name = match borrowed(&r.name)? {
            Some(n) => Some(n),
            None => text(EVENT_NAME_ATTRIBUTE, r.attrs)?.filter(|n| !n.is_empty()),
        };
        let thread_id = match self.last(r.attrs, THREAD_ID_ATTRIBUTE) {
            Some(Any::Int(i)) => Some(*i),
            Some(Any::Str(s)) => s.parse().ok(),
            _ => None,
        };
        let observed_time = r.observed.unwrap_or(0);
        Some(Standard {
            name,
            time: r.time.filter(|&t| t != 0).unwrap_or(observed_time),
            observed_time,
            severity: r.severity,
            severity_text: borrowed(&r.severity_text)?,
            body: borrowed(&r.body)?,
            trace_id: borrowed(&r.trace_id)?,
            span_id: borrowed(&r.span_id)?,
            thread_id,
            service,
        })
    }

    /// Record `i`'s attributes named in `wanted`, as scalars in `values`
    /// (by their index in `wanted`; `None`: absent), as
    /// [`crate::event::ReadInPlace::read`] gives them. `None` where one of
    /// them is a text with escapes.
    pub(crate) fn wanted(
        &self,
        i: usize,
        wanted: &[&str],
        values: &mut Vec<Option<Scalar<'a>>>,
    ) -> Option<()> {
        values.clear();
        values.resize(wanted.len(), None);
        let r = self.records.get(i)?;
        for (k, v) in self.attrs(r.attrs) {
            let Some(at) = wanted.iter().position(|w| *w == k) else {
                continue;
            };
            values[at] = Some(match v {
                Any::Null => Scalar::Null,
                Any::Bool(b) => Scalar::Bool(*b),
                Any::Int(i) => Scalar::Int(*i),
                Any::Float(f) => Scalar::Float(*f),
                Any::Str(Cow::Borrowed(s)) => Scalar::Str(s),
                Any::Str(Cow::Owned(_)) => return None,
            });
        }
        Some(())
    }

    /// Record `i`'s event, as decoding gives it (an empty event past the
    /// end).
    pub(crate) fn event(&self, i: usize) -> InputEvent {
        let Some(r) = self.records.get(i) else {
            return InputEvent::default();
        };
        let resource = self.resources.get(r.resource).map(|&range| self.map(range));
        self.event_of(r, resource.unwrap_or_default())
    }

    /// Every record's event, as decoding gives it.
    pub(crate) fn events(&self) -> impl Iterator<Item = InputEvent> + '_ {
        let resources: Vec<BTreeMap<String, Json>> =
            self.resources.iter().map(|&r| self.map(r)).collect();
        self.records.iter().map(move |r| {
            let resource = resources.get(r.resource).cloned().unwrap_or_default();
            self.event_of(r, resource)
        })
    }

    fn map(&self, range: (usize, usize)) -> BTreeMap<String, Json> {
        let mut map = BTreeMap::new();
        for (k, v) in self.attrs(range) {
            map.insert(k.to_string(), v.to_json());
        }
        map
    }

    fn event_of(&self, r: &Rec<'a>, resource: BTreeMap<String, Json>) -> InputEvent {
        let owned = |s: &Option<Cow<'a, str>>| s.as_ref().map(|s| s.to_string());
        let attributes = self.map(r.attrs);
        let name = owned(&r.name).or_else(|| super::name_attribute(&attributes));
        let mut e = InputEvent {
            name,
            severity: r.severity,
            severity_text: owned(&r.severity_text),
            body: owned(&r.body),
            trace_id: owned(&r.trace_id),
            span_id: owned(&r.span_id),
            attributes,
            resource,
            ..InputEvent::default()
        };
        set_times(&mut e, r.time, r.observed);
        e
    }
}

/// The records of an export line a batch read in place
/// (`text[start..end]` of the batch's text), decoded together the first
/// time one of them is asked for.
pub(crate) struct ExportAt {
    start: usize,
    end: usize,
    events: OnceCell<Vec<Rc<InputEvent>>>,
}

impl ExportAt {
    pub(crate) fn new(start: usize, end: usize) -> ExportAt {
        ExportAt {
            start,
            end,
            events: OnceCell::new(),
        }
    }

    /// Record `i`'s event, the line (in `text`) decoded if it was not yet.
    /// The line was read in place, so it decodes to its records' events,
    /// each in its place (decoding reads it with [`read_export`] too).
    pub(crate) fn event(&self, text: &str, i: usize) -> Option<&Rc<InputEvent>> {
        let events = self.events.get_or_init(|| {
            let line = text.get(self.start..self.end).unwrap_or_default();
            let mut events = Vec::new();
            super::decode_line_each(line, |input| {
                if let super::Input::Event(e) = input {
                    events.push(Rc::new(e));
                }
            });
            events
        });
        events.get(i)
    }

    /// Record `i`'s event if the line is decoded (never decodes).
    pub(crate) fn peek(&self, i: usize) -> Option<&Rc<InputEvent>> {
        self.events.get()?.get(i)
    }
}

// ---------------------------------------------------------------------------
// The visitors, outermost first. Each fails (the line goes to the decoder)
// on anything but the plain form.

/// Why a line is left to the decoder: never shown.
const NOT_PLAIN: &str = "not a plain export";

fn no<E: serde::de::Error>() -> E {
    E::custom(NOT_PLAIN)
}

/// The next key of an object, `None` at its end; serde_json's private
/// marker keys leave the line to the decoder (`Value` parsing reads such
/// an object differently).
fn next_key<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    match map.next_key_seed(KeySeed)? {
        Some(k) if k.starts_with("$serde_json") => Err(no()),
        k => Ok(k),
    }
}

/// The line's object: its `resourceLogs`, every other key checked and
/// skipped.
struct Top<'e, 'a>(&'e mut Export<'a>);

impl<'de> Visitor<'de> for Top<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an OTLP/JSON export")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = next_key(&mut map)? {
            match &*key {
                "resourceLogs" if !seen => {
                    seen = true;
                    map.next_value_seed(Each(ResourceLog(&mut *self.0)))?;
                }
                "resourceLogs" | "resource_logs" => return Err(no()),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        if seen { Ok(()) } else { Err(no()) }
    }
}

/// What reads one element of an array ([`Each`]).
trait Element<'de> {
    fn element<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error>;
}

/// An array of elements, each read by `E`; `null` for none when `E` allows
/// it ([`Each::NULL`]: decoding reads a `null` `resourceLogs` as malformed,
/// the lists below it as empty).
struct Each<E>(E);

impl<'de, E: Element<'de>> DeserializeSeed<'de> for Each<E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, E: Element<'de>> Visitor<'de> for Each<E> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while self.0.element(&mut seq)? {}
        Ok(())
    }
}

/// A list below `resourceLogs`: an array, or `null` for none.
struct OrNull<E>(E);

impl<'de, E: Element<'de>> DeserializeSeed<'de> for OrNull<E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, E: Element<'de>> Visitor<'de> for OrNull<E> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array or null")
    }

    fn visit_unit<Er>(self) -> Result<(), Er> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Each(self.0).visit_seq(seq)
    }
}

/// One `resourceLogs` element: its resource and its scopes' records.
struct ResourceLog<'e, 'a>(&'e mut Export<'a>);

/// A map read by a visitor: the seed that asks for an object.
struct Object<V>(V);

impl<'de, V: Visitor<'de, Value = ()>> DeserializeSeed<'de> for Object<V> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self.0)
    }
}

impl<'de> Element<'de> for ResourceLog<'_, 'de> {
    fn element<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let seed = Object(ResourceLogObject(&mut *self.0));
        Ok(seq.next_element_seed(seed)?.is_some())
    }
}

struct ResourceLogObject<'e, 'a>(&'e mut Export<'a>);

impl<'de> Visitor<'de> for ResourceLogObject<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resourceLogs object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ex = self.0;
        let resource = ex.resources.len();
        ex.resources.push((0, 0));
        let mut scopes = false;
        while let Some(key) = next_key(&mut map)? {
            match &*key {
                "resource" => {
                    let range = map.next_value_seed(Resource(&mut *ex))?;
                    ex.resources[resource] = range;
                }
                "scopeLogs" if !scopes => {
                    scopes = true;
                    map.next_value_seed(OrNull(Scope(&mut *ex, resource)))?;
                }
                "scopeLogs" | "scope_logs" => return Err(no()),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
}

/// A resource: its attributes' range in the export (`null`: none).
struct Resource<'e, 'a>(&'e mut Export<'a>);

impl<'de> DeserializeSeed<'de> for Resource<'_, 'de> {
    type Value = (usize, usize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(usize, usize), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Resource<'_, 'de> {
    type Value = (usize, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resource")
    }

    fn visit_unit<E>(self) -> Result<(usize, usize), E> {
        Ok((0, 0))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(usize, usize), A::Error> {
        let ex = self.0;
        let mut range = (0, 0);
        while let Some(key) = next_key(&mut map)? {
            match &*key {
                "attributes" => range = map.next_value_seed(KeyValues(&mut *ex))?,
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(range)
    }
}

/// One `scopeLogs` element of resource `.1`: its records.
struct Scope<'e, 'a>(&'e mut Export<'a>, usize);

impl<'de> Element<'de> for Scope<'_, 'de> {
    fn element<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let seed = Object(ScopeObject(&mut *self.0, self.1));
        Ok(seq.next_element_seed(seed)?.is_some())
    }
}

struct ScopeObject<'e, 'a>(&'e mut Export<'a>, usize);

impl<'de> Visitor<'de> for ScopeObject<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a scopeLogs object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut records = false;
        while let Some(key) = next_key(&mut map)? {
            match &*key {
                "logRecords" if !records => {
                    records = true;
                    map.next_value_seed(OrNull(Record(&mut *self.0, self.1)))?;
                }
                "logRecords" | "log_records" => return Err(no()),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
}

/// One log record of resource `.1`.
struct Record<'e, 'a>(&'e mut Export<'a>, usize);

impl<'de> Element<'de> for Record<'_, 'de> {
    fn element<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let seed = Object(RecordObject(&mut *self.0, self.1));
        Ok(seq.next_element_seed(seed)?.is_some())
    }
}

struct RecordObject<'e, 'a>(&'e mut Export<'a>, usize);

impl<'de> Visitor<'de> for RecordObject<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a log record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ex = self.0;
        let mut r = Rec {
            resource: self.1,
            ..Rec::default()
        };
        // Empty texts are absent, as decoding reads them.
        let text = |s: Option<Cow<'de, str>>| s.filter(|s| !s.is_empty());
        while let Some(key) = next_key(&mut map)? {
            match &*key {
                "timeUnixNano" => r.time = map.next_value_seed(Nanos)?,
                "observedTimeUnixNano" => r.observed = map.next_value_seed(Nanos)?,
                "severityNumber" => r.severity = map.next_value_seed(Severity)?,
                "severityText" => r.severity_text = text(map.next_value_seed(OptText)?),
                "traceId" => r.trace_id = text(map.next_value_seed(OptText)?),
                "spanId" => r.span_id = text(map.next_value_seed(OptText)?),
                "eventName" => r.name = text(map.next_value_seed(OptText)?),
                "body" => {
                    r.body = match map.next_value_seed(AnyValue)? {
                        Any::Null => None,
                        Any::Str(s) => Some(s),
                        // Kept as its JSON text (`body_text`).
                        other => Some(Cow::Owned(other.to_json().to_string())),
                    }
                }
                "attributes" => r.attrs = map.next_value_seed(KeyValues(&mut *ex))?,
                "time_unix_nano"
                | "observed_time_unix_nano"
                | "severity_number"
                | "severity_text"
                | "trace_id"
                | "span_id"
                | "event_name" => return Err(no()),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        ex.records.push(r);
        Ok(())
    }
}

/// A list of `KeyValue`s (`null`: none), appended to the export's
/// attributes: its range there.
struct KeyValues<'e, 'a>(&'e mut Export<'a>);

impl<'de> DeserializeSeed<'de> for KeyValues<'_, 'de> {
    type Value = (usize, usize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(usize, usize), D::Error> {
        let start = self.0.attrs.len();
        let attrs = &mut self.0.attrs;
        d.deserialize_any(OrNull(KeyValue(&mut *attrs)))?;
        Ok((start, attrs.len()))
    }
}

struct KeyValue<'e, 'a>(&'e mut Vec<(Cow<'a, str>, Any<'a>)>);

impl<'de> Element<'de> for KeyValue<'_, 'de> {
    fn element<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let seed = Object(KeyValueObject(&mut *self.0));
        Ok(seq.next_element_seed(seed)?.is_some())
    }
}

struct KeyValueObject<'e, 'a>(&'e mut Vec<(Cow<'a, str>, Any<'a>)>);

impl<'de> Visitor<'de> for KeyValueObject<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key-value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut key, mut value) = (None, Any::Null);
        while let Some(k) = next_key(&mut map)? {
            match &*k {
                "key" => key = Some(map.next_value_seed(KeySeed)?),
                "value" => value = map.next_value_seed(AnyValue)?,
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        self.0.push((key.ok_or_else(no)?, value));
        Ok(())
    }
}

/// An `AnyValue` of one of the plain forms, or `null`.
struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Any<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Any<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue {
    type Value = Any<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AnyValue")
    }

    fn visit_unit<E>(self) -> Result<Any<'de>, E> {
        Ok(Any::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any<'de>, A::Error> {
        let Some(key) = next_key(&mut map)? else {
            return Err(no());
        };
        let v = match &*key {
            "stringValue" => Any::Str(map.next_value_seed(KeySeed)?),
            "boolValue" => Any::Bool(map.next_value()?),
            "intValue" => Any::Int(map.next_value_seed(Int)?),
            "doubleValue" => Any::Float(map.next_value_seed(Double)?),
            _ => return Err(no()),
        };
        // A second key: decoding picks by kind, not by order.
        match next_key(&mut map)? {
            None => Ok(v),
            Some(_) => Err(no()),
        }
    }
}

/// An `intValue`: an integer, or a string of one (`nanos_text`).
struct Int;

impl<'de> DeserializeSeed<'de> for Int {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Int {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| no())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        nanos_text(v).ok_or_else(no)
    }
}

/// A `doubleValue` given as a number.
struct Double;

impl<'de> DeserializeSeed<'de> for Double {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Double {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        // `Value` keeps a float that is not finite as null.
        if v.is_finite() { Ok(v) } else { Err(no()) }
    }
}

/// A time in nanoseconds (`unix_nano`): an integer or a string of one;
/// `null` is absent.
struct Nanos;

impl<'de> DeserializeSeed<'de> for Nanos {
    type Value = Option<i64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Nanos {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("integer nanoseconds")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<i64>, E> {
        Ok(Some(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<i64>, E> {
        i64::try_from(v).map(Some).map_err(|_| no())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<i64>, E> {
        nanos_text(v).map(Some).ok_or_else(no)
    }
}

/// A `severityNumber` (`severity_field`): 0 to 24, as a number, a string
/// of one or a level's name; `null` is 0.
struct Severity;

impl<'de> DeserializeSeed<'de> for Severity {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Severity {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a severity")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        if (0..=24).contains(&v) {
            Ok(v)
        } else {
            Err(no())
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        self.visit_i64(i64::try_from(v).map_err(|_| no())?)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        let n = nanos_text(v)
            .or_else(|| severity_number(v))
            .ok_or_else(no)?;
        self.visit_i64(n)
    }
}

/// A text field: a string, or `null` (absent).
struct OptText;

impl<'de> DeserializeSeed<'de> for OptText {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptText {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Input, decode_line, decode_line_via_value};

    /// A small deterministic generator (xorshift), so failures repeat.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }

        pub(crate) fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
            &items[self.below(items.len())]
        }
    }

    /// AnyValues: the plain forms first (most picks), then every other.
    const ANY: [&str; 22] = [
        r#"{"stringValue":"GET /a"}"#,
        r#"{"stringValue":"/p"}"#,
        r#"{"intValue":"500"}"#,
        r#"{"intValue":503}"#,
        r#"{"boolValue":true}"#,
        r#"{"doubleValue":1.5}"#,
        r#"{"doubleValue":3}"#,
        r#"{"stringValue":""}"#,
        "null",
        r#"{"stringValue":"a\"b\u00e9"}"#,
        r#"{"intValue":"-7"}"#,
        r#"{"intValue":"x"}"#,
        r#"{"intValue":1.5}"#,
        r#"{"intValue":"18446744073709551616"}"#,
        r#"{"doubleValue":"NaN"}"#,
        r#"{"doubleValue":"2.5"}"#,
        r#"{"bytesValue":"AAE="}"#,
        r#"{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"}]}}"#,
        r#"{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":false}}]}}"#,
        r#"{}"#,
        r#"{"stringValue":"a","intValue":"1"}"#,
        r#"{"string_value":"s"}"#,
    ];

    const KEYS: [&str; 12] = [
        "status",
        "path",
        "other",
        "status",
        "path",
        "thread.id",
        "event.name",
        "service.name",
        "status",
        "pa\\u0074h",
        "",
        "other",
    ];

    fn any(rng: &mut Rng) -> &'static str {
        // Most picks are plain.
        if rng.below(25) == 0 {
            ANY[rng.below(ANY.len())]
        } else {
            ANY[rng.below(9)]
        }
    }

    fn key_values(rng: &mut Rng) -> String {
        let items: Vec<String> = (0..rng.below(5))
            .map(|_| {
                let key = rng.pick(&KEYS);
                match rng.below(80) {
                    0 => format!(r#"{{"key":"{key}"}}"#),
                    1 => format!(r#"{{"value":{}}}"#, any(rng)),
                    2 => format!(r#"{{"key":7,"value":{}}}"#, any(rng)),
                    3 => format!(r#"{{"key":"{key}","value":{},"key":"other"}}"#, any(rng)),
                    _ => format!(r#"{{"key":"{key}","value":{}}}"#, any(rng)),
                }
            })
            .collect();
        match rng.below(60) {
            0 => "null".to_string(),
            1 => "{}".to_string(),
            _ => format!("[{}]", items.join(",")),
        }
    }

    fn record(rng: &mut Rng) -> String {
        let fields: [(&str, &[&str]); 9] = [
            (
                "timeUnixNano",
                &[
                    r#""1795341600541069496""#,
                    "1795341600541069496",
                    r#""0""#,
                    "null",
                    r#""-5""#,
                    r#""12x""#,
                    "1.5",
                    r#""99999999999999999999""#,
                ],
            ),
            (
                "observedTimeUnixNano",
                &[r#""1795341601000000000""#, "7", "null", "true"],
            ),
            (
                "severityNumber",
                &[
                    "9",
                    "17",
                    r#""SEVERITY_NUMBER_WARN""#,
                    r#""13""#,
                    "null",
                    "25",
                    "-1",
                    r#""loud""#,
                    "9.0",
                ],
            ),
            (
                "severityText",
                &[r#""INFO""#, r#""""#, "null", "3", r#""W\u0041RN""#],
            ),
            (
                "traceId",
                &[
                    r#""5b8efff798038103d269b633813fc60c""#,
                    r#""""#,
                    "null",
                    "[]",
                ],
            ),
            ("spanId", &[r#""eee19b7ec3c1b174""#, r#""""#]),
            (
                "eventName",
                &[
                    r#""R""#,
                    r#""M""#,
                    r#""""#,
                    "null",
                    r#""\u0052""#,
                    "5",
                    r#""Other""#,
                ],
            ),
            ("flags", &["1", r#"{"x":[1,2]}"#, r#""\ud800""#]),
            ("droppedAttributesCount", &["0"]),
        ];
        let mut parts: Vec<String> = Vec::new();
        for (key, values) in fields {
            if rng.below(3) > 0 {
                // Plain forms most of the time: the first two.
                let v = if rng.below(40) > 0 {
                    values[rng.below(2.min(values.len()))]
                } else {
                    rng.pick(values)
                };
                parts.push(format!(r#""{key}":{v}"#));
            }
        }
        if rng.below(3) > 0 {
            parts.push(format!(r#""body":{}"#, any(rng)));
        }
        parts.push(format!(r#""attributes":{}"#, key_values(rng)));
        match rng.below(60) {
            0 => parts.push(r#""time_unix_nano":"5""#.to_string()),
            1 => parts.push(r#""attributes":[]"#.to_string()),
            2 => parts.push(r#""eventName":"M""#.to_string()),
            _ => {}
        }
        // Shuffled: decoding does not care about the order of keys.
        for i in (1..parts.len()).rev() {
            let j = rng.below(i + 1);
            parts.swap(i, j);
        }
        match rng.below(200) {
            0 => "null".to_string(),
            1 => "[]".to_string(),
            _ => format!("{{{}}}", parts.join(",")),
        }
    }

    /// An export line: resources, scopes and records, most of them plain.
    pub(crate) fn export_line(rng: &mut Rng) -> String {
        let resource_logs: Vec<String> = (0..1 + rng.below(3))
            .map(|_| {
                let scopes: Vec<String> = (0..1 + rng.below(2))
                    .map(|_| {
                        let records: Vec<String> = (0..rng.below(6)).map(|_| record(rng)).collect();
                        match rng.below(60) {
                            0 => r#"{"logRecords":7}"#.to_string(),
                            1 => r#"{"scope":{"name":"s"},"logRecords":null}"#.to_string(),
                            2 => format!(r#"{{"log_records":[{}]}}"#, records.join(",")),
                            _ => format!(
                                r#"{{"scope":{{"name":"gen","version":"1"}},"logRecords":[{}]}}"#,
                                records.join(",")
                            ),
                        }
                    })
                    .collect();
                let resource = match rng.below(40) {
                    0 => "null".to_string(),
                    1 => "5".to_string(),
                    _ => format!(
                        r#"{{"attributes":{},"droppedAttributesCount":0}}"#,
                        key_values(rng)
                    ),
                };
                let scopes = format!("[{}]", scopes.join(","));
                match rng.below(40) {
                    0 => format!(r#"{{"scopeLogs":{scopes},"resource":{resource}}}"#),
                    1 => format!(r#"{{"resource":{resource},"scope_logs":{scopes}}}"#),
                    2 => "3".to_string(),
                    _ => format!(r#"{{"resource":{resource},"scopeLogs":{scopes}}}"#),
                }
            })
            .collect();
        let logs = format!("[{}]", resource_logs.join(","));
        match rng.below(40) {
            0 => format!(r#"{{"resourceLogs":{logs},"resourceLogs":[]}}"#),
            1 => format!(r#"{{"resourceLogs":{logs},"other":{{"a":[1,"\u00e9"]}}}}"#),
            2 => r#"{"resourceLogs":null}"#.to_string(),
            _ => format!(r#"{{"resourceLogs":{logs}}}"#),
        }
    }

    /// `line` read in place gives what decoding gives: every record's
    /// event, standard fields and declared attributes. Whether it was read.
    pub(crate) fn agrees(line: &str, wanted: &[&str]) -> bool {
        let decoded = decode_line(line);
        assert_eq!(decoded, decode_line_via_value(line), "{line}");
        let Some(export) = read_export(line.trim()) else {
            return false;
        };
        let events: Vec<InputEvent> = decoded
            .into_iter()
            .map(|input| match input {
                Input::Event(e) => e,
                Input::Malformed { reason, .. } => {
                    panic!("read in place, but decoding says {reason}: {line}")
                }
            })
            .collect();
        assert_eq!(export.len(), events.len(), "{line}");
        let mut values = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if let Some(std) = export.standard(i) {
                assert_eq!(std, e.standard(), "record {i} of {line}");
            }
            if export.wanted(i, wanted, &mut values).is_some() {
                for (w, v) in wanted.iter().zip(&values) {
                    let expected = e.attributes.get(*w).map(Scalar::of);
                    assert_eq!(v.map(Some), expected, "{w} of record {i} of {line}");
                }
            }
        }
        true
    }

    /// `line` walked by its bytes (`walk`) gives what the visitors give,
    /// or is left to them. Whether it was walked.
    fn walk_agrees(line: &str) -> bool {
        let mut walked = Export::default();
        if walk::read(line, &mut walked).is_none() {
            return false;
        }
        let mut visited = Export::default();
        assert!(
            read_by_visitors(line, &mut visited).is_some(),
            "walked, but the visitors refuse it: {line}"
        );
        assert_eq!(walked, visited, "{line}");
        true
    }

    /// Generated exports, and the same mutated a character or three (which
    /// makes escapes, wrong types, truncations and garbage), read in place
    /// where they are plain, give what decoding through a `Value` gives.
    #[test]
    fn reading_exports_agrees_with_decoding() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let wanted = ["status", "path", "thread.id", "other"];
        let alphabet: Vec<char> = "{}[]\":,0123456789-.e \\nulasé".chars().collect();
        let (mut read, mut declined, mut walked) = (0, 0, 0);
        for _ in 0..6_000 {
            let line = export_line(&mut rng);
            let mut chars: Vec<char> = line.chars().collect();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 => chars.insert(at, *rng.pick(&alphabet)),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    2 => chars.truncate(at),
                    _ if at < chars.len() => chars[at] = *rng.pick(&alphabet),
                    _ => {}
                }
            }
            let mutated: String = chars.into_iter().collect();
            for l in [&line, &mutated] {
                walked += usize::from(walk_agrees(l));
                if agrees(l, &wanted) {
                    read += 1;
                } else {
                    declined += 1;
                }
            }
        }
        assert!(
            read > 1_500 && declined > 1_500 && walked > 500 && walked < read,
            "{read} read ({walked} walked), {declined} declined"
        );
    }

    /// A record of the common shape, then the same with each kind of
    /// thing the walk leaves to the visitors (or refuses with them): both
    /// readers give the same export, and decoding the same events.
    #[test]
    fn walking_agrees_with_the_visitors_on_edge_cases() {
        let export = |record: &str| {
            format!(
                r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeLogs":[{{"scope":{{"name":"s"}},"logRecords":[{record}]}}]}}]}}"#
            )
        };
        let plain = r#"{"attributes":[{"key":"email","value":{"stringValue":"u1@example.com"}},{"key":"ok","value":{"boolValue":true}},{"key":"status","value":{"intValue":"500"}}],"eventName":"Login","timeUnixNano":"1795341600000000000"}"#;
        let walked = export(plain);
        assert!(walk_agrees(&walked));
        assert!(agrees(&walked, &["email", "ok", "status"]));
        let attr = |v: &str| {
            format!(r#"{{"attributes":[{{"key":"status","value":{v}}}],"eventName":"R"}}"#)
        };
        // (record, whether the walk reads it)
        let mut cases: Vec<(String, bool)> = vec![
            // Non-ASCII texts, raw: walked.
            (attr(r#"{"stringValue":"é日本😀"}"#), true),
            (
                r#"{"eventName":"Ré","attributes":[{"key":"pâth","value":{"stringValue":""}}]}"#
                    .into(),
                true,
            ),
            // Escapes, surrogates (paired and lone), control characters.
            (attr(r#"{"stringValue":"a\"b"}"#), false),
            (attr(r#"{"stringValue":"\u00e9"}"#), false),
            (attr(r#"{"stringValue":"\ud83d\ude00"}"#), false),
            (attr(r#"{"stringValue":"\ud800"}"#), false),
            (attr("{\"stringValue\":\"a\tb\"}"), false),
            (
                r#"{"eventName":"R","attributes":[{"key":"st\u0061tus","value":{"intValue":"1"}}]}"#
                    .into(),
                false,
            ),
            // Integers at and past the bounds, as numbers and as texts.
            (attr(r#"{"intValue":999999999999999999}"#), true),
            (attr(r#"{"intValue":1000000000000000000}"#), true),
            (attr(r#"{"intValue":9223372036854775807}"#), true),
            (attr(r#"{"intValue":9223372036854775808}"#), false),
            (attr(r#"{"intValue":18446744073709551616}"#), false),
            (attr(r#"{"intValue":-9223372036854775808}"#), true),
            (attr(r#"{"intValue":-9223372036854775809}"#), false),
            (attr(r#"{"intValue":-7}"#), true),
            (attr(r#"{"intValue":"9223372036854775807"}"#), true),
            (attr(r#"{"intValue":"9223372036854775808"}"#), false),
            (attr(r#"{"intValue":"-9223372036854775808"}"#), true),
            (attr(r#"{"intValue":0}"#), true),
            (attr(r#"{"intValue":00}"#), false),
            (attr(r#"{"intValue":-0}"#), false),
            (attr(r#"{"intValue":"+5"}"#), false),
            // Floats and exponents.
            (attr(r#"{"doubleValue":3}"#), true),
            (attr(r#"{"doubleValue":1.5}"#), true),
            (attr(r#"{"doubleValue":1e3}"#), true),
            (attr(r#"{"doubleValue":1E-3}"#), true),
            (attr(r#"{"doubleValue":-2.0}"#), true),
            (attr(r#"{"doubleValue":-0}"#), true),
            (attr(r#"{"doubleValue":0.1000000000000000055511151231257827}"#), true),
            (attr(r#"{"doubleValue":18446744073709551616}"#), true),
            (attr(r#"{"doubleValue":"2.5"}"#), false),
            (attr(r#"{"doubleValue":1.}"#), false),
            (attr(r#"{"doubleValue":.5}"#), false),
            (attr(r#"{"doubleValue":1e}"#), false),
            (attr(r#"{"doubleValue":+1}"#), false),
            (attr(r#"{"doubleValue":1-2}"#), false),
            (attr(r#"{"doubleValue":1e400}"#), false),
            (attr(r#"{"intValue":1.0}"#), false),
            (
                r#"{"eventName":"R","timeUnixNano":1795341600000000000}"#.into(),
                true,
            ),
            (
                r#"{"eventName":"R","timeUnixNano":1795341600000000000.0}"#.into(),
                false,
            ),
            (r#"{"eventName":"R","timeUnixNano":-0}"#.into(), false),
            (
                r#"{"eventName":"R","timeUnixNano":179534160000000000}"#.into(),
                true,
            ),
            (
                r#"{"eventName":"R","timeUnixNano":"-5","severityNumber":"WARN"}"#.into(),
                true,
            ),
            (
                r#"{"eventName":"R","severityNumber":24,"flags":[1.5,-0,-3e-7]}"#.into(),
                true,
            ),
            (
                r#"{"eventName":"R","flags":1e999}"#.into(),
                false,
            ),
            (r#"{"eventName":"R","severityNumber":25}"#.into(), false),
            (
                r#"{"eventName":"R","severityNumber":"SEVERITY_NUMBER_ERROR2"}"#.into(),
                true,
            ),
            // Duplicate keys: the last wins, or the visitors refuse.
            (
                r#"{"eventName":"A","eventName":"B","attributes":[],"attributes":[{"key":"k","key":"status","value":{"intValue":"1"},"value":null}]}"#
                    .into(),
                true,
            ),
            (attr(r#"{"stringValue":"a","intValue":"1"}"#), false),
            (attr(r#"{"stringValue":"a","stringValue":"b"}"#), false),
            (r#"{"eventName":"R","event_name":"S"}"#.into(), false),
            // Values of other kinds, nesting and private keys.
            (attr(r#"{"arrayValue":{"values":[]}}"#), false),
            (attr("{}"), false),
            (attr("null"), true),
            (
                r#"{"eventName":"R","flags":{"a":[1,{"b":[true,false,null,"x"]}],"c":{}}}"#
                    .into(),
                true,
            ),
            (nested(30), true),
            (nested(40), false),
            (nested(200), false),
            (
                r#"{"eventName":"R","$serde_json::private::Number":"1"}"#.into(),
                false,
            ),
            (r#"{"eventName":"R","flags":{"$x":1}}"#.into(), false),
            (r#"{"eventName":"R","body":{"boolValue":true}}"#.into(), true),
            (
                r#"{"eventName":"R","body":{"intValue":"7"},"traceId":null,"spanId":""}"#.into(),
                true,
            ),
            (r#"{"eventName":5}"#.into(), false),
            ("null".into(), false),
            ("{}".into(), true),
            // JSON whitespace (walked), other whitespace (refused by both),
            // a trailing comma.
            (
                plain.replace(',', " ,\n\t\r ").replace(':', " : "),
                true,
            ),
            (plain.replace(',', "\u{a0},"), false),
            (plain.replace("}]", "},]"), false),
        ];
        cases.push((plain.replace('{', "{ "), true));
        for (record, walks) in &cases {
            let line = export(record);
            assert_eq!(walk_agrees(&line), *walks, "{line}");
            agrees(&line, &["status", "k", "pâth"]);
        }
        // Truncated anywhere: never walked, and decoded as before. Trailing
        // bytes other than whitespace: the same.
        for end in 0..walked.len() {
            if let Some(prefix) = walked.get(..end) {
                assert!(!walk_agrees(prefix), "{prefix}");
                agrees(prefix, &["status"]);
            }
        }
        for tail in [" ", "\n", " x", "{}", ","] {
            let line = format!("{walked}{tail}");
            assert_eq!(walk_agrees(&line), tail.trim().is_empty(), "{line}");
            agrees(&line, &["status"]);
        }
        // Other keys at every level are passed over; snake_case names, a
        // second list and elements of the wrong kind refuse the walk as
        // they do the visitors.
        for line in [
            r#"{"other":[1,"x"],"resourceLogs":[{"schemaUrl":"u","resource":null,"scopeLogs":null}]}"#,
            r#"{"resourceLogs":[{"resource":{"attributes":null,"droppedAttributesCount":0},"scopeLogs":[{"logRecords":null}]}]}"#,
            r#"{"resourceLogs":[]}"#,
        ] {
            assert!(walk_agrees(line), "{line}");
            agrees(line, &["status"]);
        }
        for line in [
            r#"{"resourceLogs":[],"resourceLogs":[]}"#,
            r#"{"resourceLogs":[],"resource_logs":[]}"#,
            r#"{"resourceLogs":null}"#,
            r#"{"resourceLogs":[{"scopeLogs":[],"scope_logs":[]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[],"logRecords":[]}]}]}"#,
            r#"{"resourceLogs":[{"resource":5}]}"#,
            r#"{"resourceLogs":[null]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[null]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":{}}]}]}"#,
        ] {
            assert!(!walk_agrees(line), "{line}");
            agrees(line, &["status"]);
        }
    }

    /// A record with an unknown field nested `depth` arrays deep.
    fn nested(depth: usize) -> String {
        format!(
            r#"{{"eventName":"R","flags":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    /// The forms decoding reads alike read alike here: an export in each.
    #[test]
    fn plain_forms() {
        let line = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":1795341600000000000,"severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"5"},"attributes":[{"key":"event.name","value":{"stringValue":"R"}},{"key":"status","value":{"intValue":"500"}},{"key":"thread.id","value":{"stringValue":"7"}}]},{"eventName":"M","observedTimeUnixNano":"5","body":{"intValue":"6"},"attributes":[{"key":"status","value":{"doubleValue":2}}],"attributes":[{"key":"path","value":{"stringValue":"/\u0061"}}]}]}]}]}"#;
        assert!(agrees(line, &["status", "path"]));
        let export = read_export(line).unwrap();
        let first = export.standard(0).unwrap();
        assert_eq!(
            (first.name, first.severity, first.body, first.thread_id),
            (Some("R"), 13, Some("5"), Some(7))
        );
        assert_eq!(first.service, Some("svc"));
        // The escaped path is decoded, not borrowed.
        let mut values = Vec::new();
        assert_eq!(export.wanted(1, &["path"], &mut values), None);
        // A body that is not a text is decoded: its text is its JSON.
        assert_eq!(export.standard(1), None);
        let second = export.event(1);
        assert_eq!((second.time, second.body.as_deref()), (5, Some("6")));
    }
}
