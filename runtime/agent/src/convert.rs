//! OTLP to events and back.
//!
//! The agent's one mapping between OTLP records and dtc events.
//!
//! Inbound ([`event`]): `dtc_engine::event::otlp_proto` turns a protobuf
//! `LogRecord` into an `InputEvent` by the same rules as OTLP/JSON, with
//! only what the programs read ([`Needs`]): the declared attributes of the
//! events they receive, the resource only when they read it.
//!
//! Outbound:
//! - An event that leaves the box is the **received record, edited**
//!   ([`apply_edits`]): the engine's lazy egress (`Egress { edits }`) is
//!   applied to the record itself, moved, never cloned nor written as JSON;
//!   an unchanged record leaves as it came. Scope, flags, typed values
//!   (bytes, kvlists) and dropped counts survive untouched. A value the
//!   record cannot hold where it was (a hashed trace ID, a masked time)
//!   moves to the attribute of the field's name.
//! - A derived log (`emit log`) becomes a record with the log's name as
//!   `event_name`, its fields as attributes, the event time as its time.
//! - A metric point becomes an OTLP metric by the aggregate that made it:
//!   `count`/`count_if`/`sum` a delta `Sum` (monotonic for counts),
//!   `min`/`max`/`avg`/`percentile`/`distinct_count` a `Gauge`, `histogram`
//!   a delta `Histogram`; labels become attributes; the window gives the
//!   start and end times. Durations are exported as seconds with unit `s`.
//! - Derived telemetry carries the agent's resource (`service.name` =
//!   `dtc-agent`) and a scope named after the program.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use dtc_engine::event::{
    EVENT_NAME_ATTRIBUTE, InputEvent, SERVICE_NAME_ATTRIBUTE, THREAD_ID_ATTRIBUTE, otlp_proto,
};
use dtc_engine::output::Text;
use dtc_engine::value::Value;
use dtc_engine::{Edit, MetricValue};
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
use prost::Message;
use serde_json::Value as Json;

use crate::wire;

/// The resource of everything the agent itself produces.
pub fn agent_resource() -> Resource {
    Resource {
        attributes: vec![
            key_value(SERVICE_NAME_ATTRIBUTE, &Json::from("dtc-agent")),
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

// ------------------------------------------------------------------ inbound

/// A set of names looked up once per record and per attribute: foldhash,
/// several times faster than std's SipHash on short keys (the engine's
/// choice too); the names come from verified programs, not from senders.
pub type Names = HashSet<String, foldhash::fast::RandomState>;

/// The name in `set` that is `bytes`. A program reads a few names: a scan
/// comparing lengths first costs less than hashing the bytes (which needs
/// them as text, hence checked as UTF-8 first); a long list is hashed.
fn named<'n>(set: &'n Names, bytes: &[u8]) -> Option<&'n String> {
    const SCANNED: usize = 8;
    if set.len() <= SCANNED {
        set.iter().find(|n| n.as_bytes() == bytes)
    } else {
        std::str::from_utf8(bytes).ok().and_then(|n| set.get(n))
    }
}

/// How much of a record's resource the programs read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResourceNeed {
    #[default]
    Nothing,
    /// Only `service` (`service.name`).
    Service,
    /// `resource`, or the pid of an action's target: every attribute.
    All,
}

/// What the programs of a chain read from a record, so that ingress
/// converts only that: the attributes of the events they declare (by the
/// keys they declare), the resource when they read it, and everything when
/// one of them keeps what it saw for its flight recorder.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Durable IDs of the events some program receives.
    pub events: Names,
    /// Attribute keys some program reads (declared fields, `thread.id`).
    pub keys: Names,
    /// Some program reads `attrs` as a map: every attribute of its events.
    pub all_attributes: bool,
    pub resource: ResourceNeed,
    /// Whole events, every attribute of every record (a recording program).
    pub everything: bool,
}

impl Needs {
    /// What `programs` read; `recording` when one of them keeps events for
    /// its flight recorder, `with_pid` when one triggers an action that
    /// targets the process that sent the event (`process.pid`).
    pub fn of<'p>(
        programs: impl IntoIterator<Item = &'p dtc_ir::Program>,
        recording: bool,
        with_pid: bool,
    ) -> Needs {
        let mut needs = Needs {
            everything: recording,
            resource: if recording || with_pid {
                ResourceNeed::All
            } else {
                ResourceNeed::Nothing
            },
            ..Needs::default()
        };
        for program in programs {
            for layout in program.events.iter().filter(|e| !e.derived) {
                needs.events.insert(layout.wire.clone());
                needs
                    .keys
                    .extend(layout.fields.iter().map(|f| f.key.clone()));
            }
            // The standard fields appear by name in the program's
            // serialized form; an event or field spelled the same only makes
            // the answer a cautious yes.
            let text = serde_json::to_string(program).unwrap_or_else(|_| "\"Attrs\"".into());
            let reads = |field: &str| text.contains(&format!("\"{field}\""));
            needs.all_attributes |= reads("Attrs");
            if reads("ThreadId") {
                needs.keys.insert(THREAD_ID_ATTRIBUTE.into());
            }
            if reads("Resource") {
                needs.resource = ResourceNeed::All;
            } else if reads("Service") && needs.resource == ResourceNeed::Nothing {
                needs.resource = ResourceNeed::Service;
            }
        }
        needs
    }

    /// The durable ID of an event some program receives, matched by its
    /// bytes (a received record's event name, checked as UTF-8 on receipt
    /// and not checked again when it matches).
    pub fn event_named(&self, name: &[u8]) -> Option<&String> {
        named(&self.events, name)
    }

    /// An attribute key some program reads, matched by its bytes.
    pub fn key_named(&self, key: &[u8]) -> Option<&String> {
        named(&self.keys, key)
    }

    /// Per `ResourceLogs` of `request`, the part of its resource the
    /// programs read (decoded only when they read some), shared by its
    /// records.
    pub fn resources(&self, request: &wire::Request) -> Vec<Rc<BTreeMap<String, Json>>> {
        (0..request.resources.len())
            .map(|ri| {
                Rc::new(match self.resource {
                    ResourceNeed::Nothing => BTreeMap::new(),
                    _ => self.resource(request.resource(ri).as_ref()),
                })
            })
            .collect()
    }

    /// The part of a resource the programs read, decoded once per
    /// `ResourceLogs` and handed to each of its records.
    pub fn resource(&self, resource: Option<&Resource>) -> BTreeMap<String, Json> {
        let attributes = resource.map_or(&[][..], |r| &r.attributes);
        match self.resource {
            ResourceNeed::Nothing => BTreeMap::new(),
            ResourceNeed::Service => attributes
                .iter()
                .filter(|kv| kv.key == SERVICE_NAME_ATTRIBUTE)
                .map(|kv| {
                    let value = kv.value.as_ref().map_or(Json::Null, otlp_proto::any_value);
                    (kv.key.clone(), value)
                })
                .collect(),
            ResourceNeed::All => otlp_proto::attributes(attributes),
        }
    }
}

/// The event a record (its bytes, checked by [`wire::Request::parse`],
/// then perhaps edited by shaping) is to the programs: the same event as
/// [`record_event`] gives of the decoded record, read in place
/// ([`wire::read_record`]): one walk over the record notes where its
/// attributes are, and only those the programs read are decoded, straight
/// into the event (`otlp_proto::decode_fields`, the engine's one mapping).
/// `scratch` is kept by the caller from record to record.
pub fn event<'a>(
    bytes: &'a [u8],
    resource: &BTreeMap<String, Json>,
    needs: &Needs,
    scratch: &mut Vec<wire::AttributeAt<'a>>,
) -> Result<InputEvent, String> {
    let view = wire::read_record(bytes, scratch)?;
    event_of(&view, resource, needs, scratch)
}

/// [`event`] of record `k` of a received request, from what
/// [`wire::Request::parse`] noted of it as it checked it
/// ([`wire::Request::view`]): the record is not walked again.
pub fn received_event<'a>(
    request: &'a wire::Request,
    k: usize,
    resource: &BTreeMap<String, Json>,
    needs: &Needs,
    scratch: &mut Vec<wire::AttributeAt<'a>>,
) -> Result<InputEvent, String> {
    let view = request.view(k, scratch)?;
    event_of(&view, resource, needs, scratch)
}

fn not_utf8() -> String {
    "invalid string value: data is not UTF-8 encoded".to_string()
}

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| not_utf8())
}

/// The event of a record read in place: `view` and its `attributes`
/// (drained). Keys and the event name are matched as bytes against what
/// the programs read ([`Needs::key_named`], [`Needs::event_named`]) and
/// a matched one is the programs' own text, so a key is checked as UTF-8
/// again only when every attribute is kept, and a value only when kept.
fn event_of(
    view: &wire::RecordView<'_>,
    resource: &BTreeMap<String, Json>,
    needs: &Needs,
    attributes: &mut Vec<wire::AttributeAt<'_>>,
) -> Result<InputEvent, String> {
    static NO_RESOURCE: BTreeMap<String, Json> = BTreeMap::new();
    // As `record_event` names it: the record's event name, else the last
    // `event.name` attribute when it is text (which `decode_fields` reads
    // from the attributes itself).
    let (received, event_name) = if view.event_name.is_empty() {
        let received = needs.everything
            || match attributes
                .iter()
                .rev()
                .find(|a| a.key() == EVENT_NAME_ATTRIBUTE.as_bytes())
            {
                Some(a) => match a.value()?.and_then(|v| v.value) {
                    Some(any_value::Value::StringValue(s)) => needs.events.contains(&s),
                    _ => needs.events.contains(""),
                },
                None => needs.events.contains(""),
            };
        (received, "")
    } else {
        match needs.event_named(view.event_name) {
            Some(name) => (true, name.as_str()),
            None => (needs.everything, text(view.event_name)?),
        }
    };
    // A record of an event no program receives keeps only its name.
    let every = needs.everything || needs.all_attributes;
    let mut kept = BTreeMap::new();
    for a in attributes.drain(..) {
        let key = a.key();
        let key = if key == EVENT_NAME_ATTRIBUTE.as_bytes() {
            EVENT_NAME_ATTRIBUTE.to_owned()
        } else if !received {
            continue;
        } else if every {
            text(key)?.to_owned()
        } else {
            match needs.key_named(key) {
                Some(k) => k.clone(),
                None => continue,
            }
        };
        kept.insert(key, otlp_proto::owned_value(a.value()?));
    }
    let resource = if received { resource } else { &NO_RESOURCE };
    let fields = otlp_proto::Fields {
        time_unix_nano: view.time_unix_nano,
        observed_time_unix_nano: view.observed_time_unix_nano,
        severity_number: view.severity_number,
        severity_text: text(view.severity_text)?,
        body: view.body.as_ref(),
        trace_id: view.trace_id,
        span_id: view.span_id,
        event_name,
    };
    otlp_proto::decode_fields(&fields, kept, resource)
}

/// The event a record is to the programs: the engine's OTLP mapping
/// (`otlp_proto`, the same rules as OTLP/JSON), with only the attributes
/// `needs` names. A record of an event no program receives keeps none of
/// its attributes: it still moves the programs' clocks (windows, timeouts).
pub fn record_event(
    mut record: LogRecord,
    resource: &BTreeMap<String, Json>,
    needs: &Needs,
) -> Result<InputEvent, String> {
    if needs.everything {
        return otlp_proto::decode_record_owned(record, resource);
    }
    let name: &str = if record.event_name.is_empty() {
        record
            .attributes
            .iter()
            .rev()
            .find(|kv| kv.key == EVENT_NAME_ATTRIBUTE)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or("")
    } else {
        &record.event_name
    };
    if !needs.events.contains(name) {
        record
            .attributes
            .retain(|kv| kv.key == EVENT_NAME_ATTRIBUTE);
        return otlp_proto::decode_record_owned(record, &BTreeMap::new());
    }
    if !needs.all_attributes {
        record
            .attributes
            .retain(|kv| kv.key == EVENT_NAME_ATTRIBUTE || needs.keys.contains(&kv.key));
    }
    otlp_proto::decode_record_owned(record, resource)
}

// ----------------------------------------------------------------- outbound

/// Applies shaping's edits (`dtc_engine::Egress`, in the terms of the
/// event's flat form) to the record itself, in order. Returns whether an
/// edit concerns the resource (`service`, `resource`), which the caller
/// applies with [`edit_resource`] to a copy of the record's resource.
///
/// - An attribute edit removes, or replaces the value of, the attribute of
///   that key (every copy of it).
/// - `body`, `severity_text`: set or cleared.
/// - `trace_id`, `span_id`: set when the new text is an ID (hex of the
///   right length), else cleared, and the text goes to the attribute of
///   that name (a hash is no ID).
/// - `time`, `observed_time`, `severity`: cleared (0) when removed; a
///   redacted value (text) clears the field and goes to the attribute of
///   that name.
/// - `thread_id` edits the attribute it is read from (`thread.id`); `attrs`
///   every attribute (all removed, or one attribute `attrs` with the
///   redacted text).
pub fn apply_edits(record: &mut LogRecord, edits: &[Edit]) -> bool {
    let mut resource = false;
    for edit in edits {
        match edit {
            Edit::RemoveAttr(key) => record.attributes.retain(|kv| kv.key != **key),
            Edit::ReplaceAttr(key, value) => {
                for kv in record.attributes.iter_mut().filter(|kv| kv.key == **key) {
                    kv.value = Some(string_value(value));
                }
            }
            Edit::RemoveTop(field) => resource |= set_field(record, field, None),
            Edit::InsertTop(field, value) => {
                resource |= set_field(record, field, Some(value.as_str()))
            }
        }
    }
    resource
}

/// Shaping's edits applied to a received record's bytes: the edited
/// record's bytes, and whether an edit concerns the resource (as
/// [`apply_edits`] says). Edits of attributes alone (`redact ... with drop`
/// or `with hash` of a declared field) splice the record's bytes
/// ([`wire::edit_attributes`]): only the attributes replaced are decoded
/// and encoded again. Any other edit decodes the record, applies
/// [`apply_edits`] and encodes it.
pub fn edit_record(bytes: &[u8], edits: &[Edit]) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    if attributes_only(edits) {
        wire::edit_attributes(bytes, &|key| attribute_edit(edits, key), &mut out)?;
        return Ok((out, false));
    }
    decoded_and_edited(bytes, edits)
}

/// [`edit_record`] of record `k` of a received request as it came:
/// attribute edits spliced by where [`wire::Request::parse`] noted the
/// attributes, without walking the record.
pub fn edit_received(
    request: &wire::Request,
    k: usize,
    edits: &[Edit],
) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    if attributes_only(edits)
        && let Some(done) = request.edit_attributes(k, &|key| attribute_edit(edits, key), &mut out)
    {
        done?;
        return Ok((out, false));
    }
    edit_record(request.record(k), edits)
}

/// [`edit_received`] without writing the record: its attribute edits kept
/// in `into` as cuts of the received bytes, made as the export is written
/// ([`wire::Request::splice_attributes`]). `None` where the edits are not
/// of attributes alone, or the request keeps no notes: then
/// [`edit_received`].
pub fn splice_received(
    request: &wire::Request,
    k: usize,
    edits: &[Edit],
    into: &mut wire::Edited,
) -> Option<Result<(), String>> {
    if !attributes_only(edits) {
        return None;
    }
    // Most attributes are not edited: a key of no edited key's length is
    // kept without comparing it.
    let lengths = edits.iter().fold(0u64, |m, e| match e {
        Edit::RemoveAttr(key) | Edit::ReplaceAttr(key, _) => m | 1 << key.len().min(63),
        _ => m,
    });
    request.splice_attributes(
        k,
        |key| match lengths & 1 << key.len().min(63) {
            0 => wire::AttributeEdit::Keep,
            _ => attribute_edit(edits, key),
        },
        into,
    )
}

/// What record `k`'s redactions (`Engine::redactions_found`) do to its
/// declared field `slot`, folded into `acts` (by slot) as
/// [`attribute_edit`] folds edits: `text` `None` removes it, and a
/// removed field stays removed; else the last replacement wins.
pub fn fold_redaction(acts: &mut Vec<wire::AttributeEdit>, slot: u32, text: Option<Text>) {
    let slot = slot as usize;
    if acts.len() <= slot {
        acts.resize(slot + 1, wire::AttributeEdit::Keep);
    }
    let act = &mut acts[slot];
    match text {
        None => *act = wire::AttributeEdit::Remove,
        Some(_) if *act == wire::AttributeEdit::Remove => {}
        Some(text) => *act = wire::AttributeEdit::Replace(Box::new(string_value(&text))),
    }
}

/// Record `k`'s redactions, folded by declared field into `acts`
/// ([`fold_redaction`]), spliced into `into` where the fields were found
/// (`found`: per attribute matched, its field and its index among the
/// record's, in order): what [`splice_received`] makes of the same edits,
/// without a key compared again. An error (not expected: the record was
/// checked on receipt) leaves `into` as it was.
pub fn splice_found(
    request: &wire::Request,
    k: usize,
    found: &[(u32, u32)],
    acts: &[wire::AttributeEdit],
    into: &mut wire::Edited,
) -> Result<(), String> {
    let cuts = found
        .iter()
        .filter_map(|&(field, a)| match acts.get(field as usize) {
            None | Some(wire::AttributeEdit::Keep) => None,
            Some(act) => Some((a as usize, act)),
        });
    match request.splice_at(k, cuts, into) {
        Some(done) => done,
        None => Err(format!(
            "record {k} was found in place but has no notes to cut"
        )),
    }
}

fn attributes_only(edits: &[Edit]) -> bool {
    edits
        .iter()
        .all(|e| matches!(e, Edit::RemoveAttr(_) | Edit::ReplaceAttr(..)))
}

/// What `edits` do to the attribute `key`, in order, as `apply_edits` runs
/// them on the record: a removed attribute stays removed, the last
/// replacement wins.
fn attribute_edit(edits: &[Edit], key: &[u8]) -> wire::AttributeEdit {
    let mut what = wire::AttributeEdit::Keep;
    for edit in edits {
        match edit {
            Edit::RemoveAttr(k) if k.as_bytes() == key => what = wire::AttributeEdit::Remove,
            Edit::ReplaceAttr(k, v)
                if k.as_bytes() == key && what != wire::AttributeEdit::Remove =>
            {
                what = wire::AttributeEdit::Replace(Box::new(string_value(v)));
            }
            _ => {}
        }
    }
    what
}

/// Any other edit: the record decoded, [`apply_edits`], encoded.
fn decoded_and_edited(bytes: &[u8], edits: &[Edit]) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    let mut record = LogRecord::decode(bytes).map_err(|e| e.to_string())?;
    let resource = apply_edits(&mut record, edits);
    record.encode(&mut out).map_err(|e| e.to_string())?;
    Ok((out, resource))
}

/// One standard field of `record` set to a redacted text (or removed,
/// `None`); true when the field is the resource's.
fn set_field(record: &mut LogRecord, field: &str, value: Option<&str>) -> bool {
    let text = value.map(str::to_string);
    // A number field cannot hold the text: cleared, with the text kept in
    // the attribute of the field's name.
    let number = |attributes: &mut Vec<KeyValue>| {
        if let Some(text) = value {
            set_attribute(attributes, field, text);
        }
        0
    };
    match field {
        "body" => record.body = text.as_deref().map(string_value),
        "severity_text" => record.severity_text = text.unwrap_or_default(),
        "time" => record.time_unix_nano = number(&mut record.attributes),
        "observed_time" => record.observed_time_unix_nano = number(&mut record.attributes),
        "severity" => {
            let n = number(&mut record.attributes);
            record.severity_number = i32::try_from(n).ok().filter(|n| *n <= 24).unwrap_or(0);
        }
        "trace_id" | "span_id" => {
            let len = if field == "trace_id" { 16 } else { 8 };
            let id = text.as_deref().and_then(|t| parse_hex(t, len));
            if let (Some(v), None) = (value, &id) {
                set_attribute(&mut record.attributes, field, v);
            }
            let slot = if field == "trace_id" {
                &mut record.trace_id
            } else {
                &mut record.span_id
            };
            *slot = id.unwrap_or_default();
        }
        "thread_id" => match value {
            None => record.attributes.retain(|kv| kv.key != THREAD_ID_ATTRIBUTE),
            Some(v) => {
                for kv in record
                    .attributes
                    .iter_mut()
                    .filter(|kv| kv.key == THREAD_ID_ATTRIBUTE)
                {
                    kv.value = Some(string_value(v));
                }
            }
        },
        "attrs" => {
            record.attributes.clear();
            if let Some(v) = value {
                record.attributes.push(text_key_value("attrs", v));
            }
        }
        "service" | "resource" => return true,
        // Not a standard field: an attribute, as the flat form reads it.
        other => match value {
            Some(v) => set_attribute(&mut record.attributes, other, v),
            None => record.attributes.retain(|kv| kv.key != other),
        },
    }
    false
}

/// Replaces the attribute `key` by a text, or adds it.
fn set_attribute(attributes: &mut Vec<KeyValue>, key: &str, text: &str) {
    match attributes.iter_mut().rev().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(string_value(text)),
        None => attributes.push(text_key_value(key, text)),
    }
}

/// An attribute whose value is a text.
fn text_key_value(key: &str, text: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(string_value(text)),
        ..KeyValue::default()
    }
}

/// The resource edits among `edits` applied to `resource`: `service`
/// edits `service.name`; `resource` every attribute (all removed, or one
/// attribute `resource` with the redacted text).
pub fn edit_resource(resource: &mut Resource, edits: &[Edit]) {
    for edit in edits {
        let (field, value) = match edit {
            Edit::RemoveTop(f) => (*f, None),
            Edit::InsertTop(f, v) => (*f, Some(v.as_str())),
            _ => continue,
        };
        match (field, value) {
            ("service", None) => resource
                .attributes
                .retain(|kv| kv.key != SERVICE_NAME_ATTRIBUTE),
            ("service", Some(v)) => {
                set_attribute(&mut resource.attributes, SERVICE_NAME_ATTRIBUTE, v)
            }
            ("resource", v) => {
                resource.attributes.clear();
                if let Some(v) = v {
                    resource.attributes.push(text_key_value("resource", v));
                }
            }
            _ => {}
        }
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

    use dtc_engine::Egress;
    use dtc_engine::event::{Input, decode_line, from_flat_json};
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
        // Moving the record's attributes in changes nothing.
        let from_owned: Vec<InputEvent> = rl.scope_logs[0]
            .log_records
            .iter()
            .map(|r| otlp_proto::decode_record_owned(r.clone(), &res).unwrap())
            .collect();
        assert_eq!(from_owned, from_json);
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

    /// Edits applied to the record give the event that the engine's own
    /// definition of them (the flat form, written and read back) gives, for
    /// every edit whose result the record holds in the same field.
    #[test]
    fn edits_on_the_record_agree_with_the_engines_flat_form() {
        let r = record();
        let original = otlp_proto::decode_record(&r, &BTreeMap::new()).unwrap();
        let cases: Vec<Vec<Edit>> = vec![
            vec![],
            vec![Edit::RemoveAttr("gone".into())],
            vec![Edit::ReplaceAttr("secret".into(), "h:1234abcd".into())],
            vec![Edit::ReplaceAttr("absent".into(), "1".into())],
            vec![
                Edit::InsertTop("body", "*****4111".into()),
                Edit::RemoveTop("trace_id"),
            ],
            vec![
                Edit::InsertTop("severity_text", "x".into()),
                Edit::InsertTop("span_id", "0102030405060708".into()),
                Edit::RemoveTop("body"),
            ],
            vec![
                Edit::RemoveAttr("keep".into()),
                Edit::ReplaceAttr("keep".into(), "2".into()),
            ],
        ];
        for edits in cases {
            let mut out = r.clone();
            assert!(!apply_edits(&mut out, &edits));
            let egress = Egress {
                input: original.clone().into(),
                edits: edits.iter().cloned().collect(),
            };
            let expected = from_flat_json(egress.to_json()).unwrap();
            let got = otlp_proto::decode_record(&out, &BTreeMap::new()).unwrap();
            assert_eq!(got, expected, "{edits:?}");
            assert_eq!(out.flags, 1);
        }
    }

    /// Edits on the record's bytes give the record the decoded path gives
    /// (attribute edits spliced, the others through the message).
    #[test]
    fn edits_on_the_bytes_agree_with_edits_on_the_message() {
        let bytes = record().encode_to_vec();
        let cases: Vec<Vec<Edit>> = vec![
            vec![Edit::RemoveAttr("secret".into())],
            vec![Edit::ReplaceAttr("secret".into(), "h:1234abcd".into())],
            vec![
                Edit::RemoveAttr("keep".into()),
                Edit::ReplaceAttr("keep".into(), "2".into()),
                Edit::ReplaceAttr("raw".into(), "h:raw".into()),
            ],
            vec![
                Edit::ReplaceAttr("gone".into(), "1".into()),
                Edit::ReplaceAttr("gone".into(), "2".into()),
            ],
            vec![
                Edit::RemoveAttr("secret".into()),
                Edit::InsertTop("body", "*****4111".into()),
                Edit::InsertTop("trace_id", "not-an-id".into()),
            ],
            vec![Edit::InsertTop("service", "h:1".into())],
        ];
        for edits in cases {
            let mut expected = record();
            let resource = apply_edits(&mut expected, &edits);
            let (out, edited_resource) = edit_record(&bytes, &edits).unwrap();
            assert_eq!(LogRecord::decode(&out[..]).unwrap(), expected, "{edits:?}");
            assert_eq!(edited_resource, resource);
        }
    }

    /// Attribute edits kept as cuts ([`splice_received`]) make the record
    /// [`edit_received`] makes, over generated and mutated requests, for
    /// keys of every length the cuts' filter sorts (empty, long ones
    /// sharing its last bucket); edits of other fields are not spliced.
    #[test]
    fn spliced_edits_make_the_records_edits_make() {
        use crate::wire::tests::{LONG_KEYS, Rng, parsed_requests};
        let cases: Vec<Vec<Edit>> = vec![
            vec![Edit::RemoveAttr("secret".into())],
            vec![
                Edit::ReplaceAttr("seq".into(), "h:1".into()),
                Edit::RemoveAttr("".into()),
            ],
            vec![
                Edit::RemoveAttr("secret".into()),
                Edit::ReplaceAttr("secret".into(), "2".into()),
                Edit::ReplaceAttr(LONG_KEYS[1].into(), "h:70".into()),
            ],
            vec![
                Edit::RemoveAttr(LONG_KEYS[0].into()),
                Edit::ReplaceAttr("k".into(), "h:1".into()),
            ],
        ];
        let mut spliced = 0;
        for request in parsed_requests(Rng(12 << 32), 1500) {
            for edits in &cases {
                let mut edited = wire::Edited::with_records(request.len());
                for k in 0..request.len() {
                    let made = edit_received(&request, k, edits).map(|(bytes, _)| bytes);
                    let cut = splice_received(&request, k, edits, &mut edited);
                    let cut = cut.expect("attribute edits of a request with notes");
                    match (made, cut) {
                        (Ok(bytes), Ok(())) => {
                            assert_eq!(edited.record(&request, k), &bytes[..], "{edits:?}");
                            spliced += usize::from(edited.is_edited(k));
                        }
                        (made, cut) => assert_eq!(made.err(), cut.err()),
                    }
                }
            }
        }
        assert!(spliced > 1000, "{spliced}");
        let other = [Edit::InsertTop("body", "x".into())];
        let request = parsed_requests(Rng(12 << 32), 10)
            .next()
            .expect("a request");
        let mut edited = wire::Edited::with_records(request.len());
        assert!(splice_received(&request, 0, &other, &mut edited).is_none());
    }

    /// What the record cannot hold where it was goes to an attribute of
    /// the field's name; typed values shaping did not touch stay as sent.
    #[test]
    fn edits_the_record_cannot_hold_in_place_move_to_attributes() {
        let mut out = record();
        let edits = [
            Edit::RemoveAttr("gone".into()),
            Edit::ReplaceAttr("secret".into(), "h:1234abcd".into()),
            Edit::InsertTop("trace_id", "not-an-id".into()),
            Edit::InsertTop("time", "h:77".into()),
        ];
        assert!(!apply_edits(&mut out, &edits));
        let keys: Vec<&str> = out.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["keep", "secret", "raw", "trace_id", "time"]);
        assert_eq!(
            out.attributes[2],
            record().attributes[3],
            "bytes stay bytes"
        );
        assert!(out.trace_id.is_empty());
        assert_eq!(out.time_unix_nano, 0);
        // The resource is the caller's to copy and edit.
        assert!(apply_edits(
            &mut out,
            &[Edit::InsertTop("service", "h:1".into())]
        ));
        let mut resource = Resource {
            attributes: vec![key_value("service.name", &json!("shop"))],
            ..Resource::default()
        };
        edit_resource(&mut resource, &[Edit::InsertTop("service", "h:1".into())]);
        assert_eq!(
            resource.attributes,
            [key_value("service.name", &json!("h:1"))]
        );
    }

    /// Ingress converts what the programs read: the declared attributes of
    /// the events they receive, nothing of the others.
    #[test]
    fn ingress_converts_what_programs_read() {
        let needs = Needs {
            events: Names::from_iter(["E".to_string()]),
            keys: Names::from_iter(["secret".to_string()]),
            ..Needs::default()
        };
        let e = record_event(record(), &BTreeMap::new(), &needs).unwrap();
        assert_eq!(e.attributes.keys().collect::<Vec<_>>(), ["secret"]);
        assert_eq!(e.time, 5);
        let other = LogRecord {
            event_name: "Other".into(),
            ..record()
        };
        let e = record_event(other, &BTreeMap::new(), &needs).unwrap();
        assert!(e.attributes.is_empty());
        assert_eq!((e.name.as_deref(), e.time), (Some("Other"), 5));
        let all = Needs {
            everything: true,
            ..needs
        };
        let full = record_event(record(), &BTreeMap::new(), &all).unwrap();
        assert_eq!(
            full,
            otlp_proto::decode_record(&record(), &BTreeMap::new()).unwrap()
        );
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
