//! What a run produces: egressing events, derived logs, metric points at
//! window close, actions (fired or refused by their budget), and the
//! records of input that could not be handled (malformed lines, events that
//! do not match their schema, handlers that faulted). Rendered as text for
//! people and as JSON lines for tools and `dtc test`.

use std::cell::OnceCell;
use std::rc::Rc;

use serde_json::{Map, Value as Json, json};

use crate::event::{
    InputEvent, RESERVED_KEYS, ReadInPlace, SERVICE_NAME_ATTRIBUTE, THREAD_ID_ATTRIBUTE,
    format_time, to_flat_json,
};
use crate::value::{Value, format_duration};

/// A metric point's value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
    /// Durations are exported in seconds, as OpenTelemetry prefers.
    Seconds(f64),
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
    },
    None,
}

impl MetricValue {
    fn to_json(&self) -> Json {
        match self {
            MetricValue::Int(i) => json!(i),
            MetricValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
            }
            MetricValue::Seconds(s) => json!({ "seconds": s }),
            MetricValue::Histogram {
                bounds,
                counts,
                count,
                sum,
                min,
                max,
            } => json!({
                "bounds": bounds, "counts": counts, "count": count, "sum": sum, "min": min, "max": max,
            }),
            MetricValue::None => Json::Null,
        }
    }

    fn text(&self) -> String {
        match self {
            MetricValue::Int(i) => i.to_string(),
            MetricValue::Float(f) => format!("{f}"),
            MetricValue::Seconds(s) => format!("{s}s"),
            MetricValue::Histogram {
                count,
                sum,
                min,
                max,
                ..
            } => format!("histogram(count {count}, sum {sum}, min {min}, max {max})"),
            MetricValue::None => "none".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// An event leaving the box, after shaping.
    Egress { event: Json },
    /// A line that is not an event, passed on as it was.
    Malformed { line: String, reason: String },
    /// An event that does not match its schema: passed on unchanged, and
    /// not given to any handler.
    Mismatch { event: String, reason: String },
    /// A log a handler or query emitted.
    Log {
        name: String,
        time: i64,
        fields: Vec<(String, Value)>,
    },
    Metric {
        name: String,
        labels: Vec<(String, String)>,
        value: MetricValue,
        start: i64,
        end: i64,
    },
    Action {
        action: String,
        args: Vec<(String, Value)>,
        limit: u64,
        per_ns: i64,
        default_budget: bool,
        fired: bool,
        by: String,
        time: i64,
    },
    /// A handler that stopped early.
    Fault {
        by: String,
        message: String,
        time: i64,
    },
}

impl Output {
    pub fn to_json(&self) -> Json {
        let fields = |f: &[(String, Value)]| {
            Json::Object(f.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
        };
        match self {
            Output::Egress { event } => json!({ "kind": "egress", "event": event }),
            Output::Malformed { line, reason } => {
                json!({ "kind": "malformed", "line": line, "reason": reason })
            }
            Output::Mismatch { event, reason } => {
                json!({ "kind": "schema_mismatch", "event": event, "reason": reason })
            }
            Output::Log {
                name,
                time,
                fields: f,
            } => {
                json!({ "kind": "log", "name": name, "time": format_time(*time), "fields": fields(f) })
            }
            Output::Metric {
                name,
                labels,
                value,
                start,
                end,
            } => json!({
                "kind": "metric", "name": name,
                "labels": Json::Object(labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                "value": value.to_json(), "start": format_time(*start), "end": format_time(*end),
            }),
            Output::Action {
                action,
                args,
                limit,
                per_ns,
                default_budget,
                fired,
                by,
                time,
            } => json!({
                "kind": "action", "action": action, "args": fields(args),
                "budget": { "limit": limit, "per": format_duration(*per_ns), "default": default_budget },
                "fired": fired, "by": by, "time": format_time(*time),
            }),
            Output::Fault { by, message, time } => {
                json!({ "kind": "fault", "by": by, "message": message, "time": format_time(*time) })
            }
        }
    }

    /// One line of text.
    pub fn text(&self) -> String {
        let fields = |f: &[(String, Value)]| {
            f.iter()
                .map(|(k, v)| format!("{k}: {}", v.to_json()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Output::Egress { event } => format!("egress   {event}"),
            Output::Malformed { line, reason } => format!("malformed {reason}: {line}"),
            Output::Mismatch { event, reason } => {
                format!("mismatch {event}: {reason} (passed on unchanged)")
            }
            Output::Log {
                name,
                time,
                fields: f,
            } => format!("log      {} {name} {{{}}}", format_time(*time), fields(f)),
            Output::Metric {
                name,
                labels,
                value,
                start,
                end,
            } => {
                let l = if labels.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{{{}}}",
                        labels
                            .iter()
                            .map(|(k, v)| format!("{k}={v:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                format!(
                    "metric   {name}{l} = {} [{} .. {}]",
                    value.text(),
                    format_time(*start),
                    format_time(*end)
                )
            }
            Output::Action {
                action,
                args,
                limit,
                per_ns,
                default_budget,
                fired,
                by,
                time,
            } => format!(
                "action   {} {action}({}) {} by {by} (limit {limit} per {}{})",
                format_time(*time),
                fields(args),
                if *fired { "fired" } else { "refused by budget" },
                format_duration(*per_ns),
                if *default_budget { ", default" } else { "" }
            ),
            Output::Fault { by, message, time } => {
                format!("fault    {} {by}: {message}", format_time(*time))
            }
        }
    }
}

/// The text a redaction puts in place of a value (a keyed hash, a mask):
/// held inline up to 24 bytes, so the 16 hex digits of a hash and the mask
/// of a short value cost an egress no allocation; a longer mask is on the
/// heap. Reads as a `str`; `"..".into()` makes one.
pub type Text = compact_str::CompactString;

/// One change shaping made to an egressing event, in the terms of its
/// flat JSON form (`event::to_flat_json`); applied in order. A new value
/// is always text: shaping only redacts (`with hash`, `with mask`); a
/// dropped field is a removal.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A declared field: removed from the top level, or else from the
    /// nested `attributes`.
    RemoveAttr(Rc<str>),
    /// A declared field: its value replaced by the text where it is (top
    /// level, or else nested `attributes`); nothing when it is in neither.
    ReplaceAttr(Rc<str>, Text),
    /// A standard field: removed where the flat form keeps it (its own
    /// top-level key; `thread.id` for `thread_id`, the resource's
    /// `service.name` for `service`).
    RemoveTop(&'static str),
    /// A standard field: set to the text where the flat form keeps it (as
    /// for `RemoveTop`; `thread_id` and `service` are replaced only where
    /// present).
    InsertTop(&'static str, Text),
}

/// How many edits an [`Egress`] holds without an allocation of its own:
/// the redaction of three fields, the common shape of a `redact` block,
/// fits; more spill to the heap.
pub const INLINE_EDITS: usize = 3;

/// The edits of one egressing event, in order: a slice of [`Edit`]s (it
/// dereferences to `[Edit]`), inline up to [`INLINE_EDITS`].
/// `Edits::new()`, `Edits::from_vec(..)` or `.collect()` make one.
pub type Edits = smallvec::SmallVec<[Edit; INLINE_EDITS]>;

/// An event leaving the box, not yet written as JSON: the input event it
/// came from and what shaping changed. An unchanged event is a
/// pass-through decision and costs nothing to produce; the JSON of
/// [`Output::Egress`] is built by [`Egress::to_json`], only when someone
/// prints or exports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    pub input: InputRef,
    pub edits: Edits,
}

/// An input event: decoded; the event at a position among a batch's
/// [`Inputs`] (a line the line lane read in place); or an event its
/// producer read in place ([`crate::Engine::push_read`]). The last two are
/// decoded only when someone reads them. It reads as the [`InputEvent`] it
/// stands for.
#[derive(Clone)]
pub struct InputRef(RefOf);

#[derive(Clone)]
enum RefOf {
    Event(Rc<InputEvent>),
    /// Position `k` of the inputs, which `InputRef::at` checked is there.
    At(Rc<Inputs>, usize),
    /// An event its producer read in place ([`crate::Engine::push_read`]).
    Read(Rc<dyn Lazy>),
}

/// An event decoded the first time it is asked for.
trait Lazy {
    fn event(&self) -> &Rc<InputEvent>;
    #[cfg(test)]
    fn is_decoded(&self) -> bool;
}

/// A source read in place, and its event once decoded.
pub(crate) struct ReadAt<R> {
    pub(crate) source: R,
    event: OnceCell<Rc<InputEvent>>,
}

impl<R> ReadAt<R> {
    pub(crate) fn new(source: R) -> ReadAt<R> {
        ReadAt {
            source,
            event: OnceCell::new(),
        }
    }
}

impl<R: ReadInPlace> ReadAt<R> {
    /// The event, decoded (once).
    pub(crate) fn decoded(&self) -> &Rc<InputEvent> {
        Lazy::event(self)
    }
}

impl<R: ReadInPlace> Lazy for ReadAt<R> {
    fn event(&self) -> &Rc<InputEvent> {
        self.event.get_or_init(|| Rc::new(self.source.event()))
    }

    #[cfg(test)]
    fn is_decoded(&self) -> bool {
        self.event.get().is_some()
    }
}

impl InputRef {
    /// The event at position `k` of a batch's inputs; `None` past their end.
    pub(crate) fn at(inputs: &Rc<Inputs>, k: usize) -> Option<InputRef> {
        (k < inputs.len()).then(|| InputRef(RefOf::At(inputs.clone(), k)))
    }

    /// The event read in place by its producer, `read`.
    pub(crate) fn read<R: ReadInPlace + 'static>(read: Rc<ReadAt<R>>) -> InputRef {
        InputRef(RefOf::Read(read))
    }

    /// The event, decoded from its line (or its producer's encoding) the
    /// first time it is asked for.
    pub fn event(&self) -> &Rc<InputEvent> {
        match &self.0 {
            RefOf::Event(e) => e,
            // `at` checked the position, and inputs never shrink.
            RefOf::At(inputs, k) => inputs.get(*k).expect("a position checked on creation"),
            RefOf::Read(read) => read.event(),
        }
    }

    /// The event, as [`InputRef::event`], owned.
    pub fn into_event(self) -> Rc<InputEvent> {
        match self.0 {
            RefOf::Event(e) => e,
            at => InputRef(at).event().clone(),
        }
    }

    /// The text of the batch of lines this event is at, if it is at one.
    pub(crate) fn text(&self) -> Option<&str> {
        match &self.0 {
            RefOf::At(inputs, _) => inputs.text(),
            _ => None,
        }
    }

    /// Whether this is the event at position `k` of `inputs`, without
    /// decoding it.
    #[inline]
    pub(crate) fn is_at(&self, inputs: &Rc<Inputs>, k: usize) -> bool {
        match &self.0 {
            RefOf::Event(e) => inputs.peek(k).is_some_and(|i| Rc::ptr_eq(i, e)),
            RefOf::At(mine, j) => *j == k && Rc::ptr_eq(mine, inputs),
            RefOf::Read(_) => false,
        }
    }

    /// Whether the event has been decoded (never decodes).
    #[cfg(test)]
    pub(crate) fn is_decoded(&self) -> bool {
        match &self.0 {
            RefOf::Event(_) => true,
            RefOf::At(inputs, k) => inputs.peek(*k).is_some(),
            RefOf::Read(read) => read.is_decoded(),
        }
    }
}

impl From<Rc<InputEvent>> for InputRef {
    fn from(e: Rc<InputEvent>) -> InputRef {
        InputRef(RefOf::Event(e))
    }
}

impl From<InputEvent> for InputRef {
    fn from(e: InputEvent) -> InputRef {
        InputRef(RefOf::Event(Rc::new(e)))
    }
}

impl std::ops::Deref for InputRef {
    type Target = InputEvent;

    fn deref(&self) -> &InputEvent {
        self.event()
    }
}

/// Equal when the events are (a decoded event and a position compare by
/// the event they stand for).
impl PartialEq for InputRef {
    fn eq(&self, other: &InputRef) -> bool {
        self.event() == other.event()
    }
}

impl std::fmt::Debug for InputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.event().fmt(f)
    }
}

/// The map of a flat JSON event that holds attribute `key`: the top level,
/// or the nested `attributes` for a key that is a standard field's name.
fn attr_map<'j>(obj: &'j mut Map<String, Json>, key: &str) -> Option<&'j mut Map<String, Json>> {
    if RESERVED_KEYS.contains(&key) {
        match obj.get_mut("attributes") {
            Some(Json::Object(attrs)) => Some(attrs),
            _ => None,
        }
    } else {
        Some(obj)
    }
}

/// Where the flat JSON form keeps a standard field that is not a top-level
/// key of its own (see `to_flat_json` and `interp::std_field`): `thread_id`
/// is the `thread.id` attribute (top level: not a reserved key), `service`
/// the resource's `service.name`. `None`: the field's own top-level key.
/// The map is `None` for the top level itself.
fn std_home(key: &str) -> Option<(Option<&'static str>, &'static str)> {
    match key {
        "thread_id" => Some((None, THREAD_ID_ATTRIBUTE)),
        "service" => Some((Some("resource"), SERVICE_NAME_ATTRIBUTE)),
        _ => None,
    }
}

/// The top level (`None`) or the nested object `name` of a flat JSON event.
fn nested_map<'j>(
    obj: &'j mut Map<String, Json>,
    name: Option<&str>,
) -> Option<&'j mut Map<String, Json>> {
    match name {
        None => Some(obj),
        Some(n) => match obj.get_mut(n) {
            Some(Json::Object(m)) => Some(m),
            _ => None,
        },
    }
}

impl Egress {
    /// Whether shaping left the event as it came in.
    pub fn is_unchanged(&self) -> bool {
        self.edits.is_empty()
    }

    /// The event's flat JSON with the edits applied: exactly the `event` of
    /// [`Output::Egress`].
    pub fn to_json(&self) -> Json {
        let mut json = to_flat_json(&self.input);
        let Some(obj) = json.as_object_mut() else {
            return json;
        };
        for edit in &self.edits {
            match edit {
                // An attribute named like a standard field lives in the
                // nested `attributes` (see `to_flat_json`); the top-level key
                // of that name is the standard field, which an attribute
                // edit must never touch (nor leave the attribute in clear).
                Edit::RemoveAttr(key) => {
                    if let Some(map) = attr_map(obj, key) {
                        map.remove(&**key);
                    }
                }
                Edit::ReplaceAttr(key, new) => {
                    if let Some(slot) = attr_map(obj, key).and_then(|m| m.get_mut(&**key)) {
                        *slot = Json::String(new.to_string());
                    }
                }
                Edit::RemoveTop(key) => match std_home(key) {
                    Some((map, inner)) => {
                        if let Some(m) = nested_map(obj, map) {
                            m.remove(inner);
                        }
                    }
                    None => {
                        obj.remove(*key);
                    }
                },
                Edit::InsertTop(key, new) => match std_home(key) {
                    // Replaced where it is; an event without it has
                    // nothing to redact.
                    Some((map, inner)) => {
                        if let Some(slot) = nested_map(obj, map).and_then(|m| m.get_mut(inner)) {
                            *slot = Json::String(new.to_string());
                        }
                    }
                    None => {
                        obj.insert((*key).to_string(), Json::String(new.to_string()));
                    }
                },
            }
        }
        json
    }

    /// The [`Output::Egress`] of this event.
    pub fn to_output(&self) -> Output {
        Output::Egress {
            event: self.to_json(),
        }
    }
}

/// What a run produced, with egress left lazy ([`crate::Engine::drain_lazy`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Produced {
    /// One event that egresses, shaped or not.
    Egress(Egress),
    /// Consecutive events of one batch that egress unchanged, in order: one
    /// item for the run instead of one [`Produced::Egress`] per event
    /// (only batches make them: [`crate::Engine::push_batch`],
    /// [`crate::Engine::push_lines`]).
    Unchanged(Unchanged),
    Output(Output),
}

impl Produced {
    /// Appends the outputs as [`crate::Engine::drain`] gives them (egress
    /// as JSON, a run of unchanged events one [`Output::Egress`] each).
    pub fn push_outputs(self, out: &mut Vec<Output>) {
        match self {
            Produced::Egress(e) => out.push(e.to_output()),
            Produced::Unchanged(run) => out.extend(run.egresses().map(|e| e.to_output())),
            Produced::Output(o) => out.push(o),
        }
    }
}

/// The input events of a batch, in order, shared by the runs of unchanged
/// egress ([`Unchanged`]) a push of the batch hands over. An event the
/// runtime read in place from its line (the line lane of
/// [`crate::Engine::push_lines`]) is decoded from that line the first time
/// it is asked for, so an event that only passes through is never decoded
/// into an [`InputEvent`] unless someone reads it.
pub struct Inputs(InputsOf);

enum InputsOf {
    /// A batch of events (`Engine::decode_batch`, or lines decoded whole).
    Events(Vec<Rc<InputEvent>>),
    /// A batch of lines some of which were read in place: the lines end
    /// to end, and each event.
    Lines { text: Rc<str>, items: Vec<InputAt> },
    /// A batch of events their producer read in place
    /// ([`crate::Engine::push_reads`]), each decoded when first asked for.
    Reads(Rc<dyn ReadEvents>),
}

/// The events of a batch read in place by their producer, by position.
pub(crate) trait ReadEvents {
    fn len(&self) -> usize;
    /// The event at `k`, decoded (once).
    fn get(&self, k: usize) -> Option<&Rc<InputEvent>>;
    /// The event at `k` if it is decoded already (never decodes).
    fn peek(&self, k: usize) -> Option<&Rc<InputEvent>>;
}

impl<R: ReadInPlace> ReadEvents for Vec<ReadAt<R>> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn get(&self, k: usize) -> Option<&Rc<InputEvent>> {
        self.as_slice().get(k).map(ReadAt::decoded)
    }

    fn peek(&self, k: usize) -> Option<&Rc<InputEvent>> {
        self.as_slice().get(k)?.event.get()
    }
}

/// One event of a batch of lines.
pub(crate) enum InputAt {
    Event(Rc<InputEvent>),
    /// Read in place: `text[start..end]`, and its event once decoded.
    Line {
        start: usize,
        end: usize,
        event: OnceCell<Rc<InputEvent>>,
    },
    /// Record `i` of an OTLP/JSON export line read in place: decoded with
    /// the line's other records the first time one is asked for.
    Record {
        line: Rc<crate::event::ExportAt>,
        i: usize,
    },
}

impl Inputs {
    /// The inputs of a batch of lines, end to end in `text`: each event
    /// decoded, or read in place from its line there.
    pub(crate) fn lines(text: Rc<str>, items: Vec<InputAt>) -> Inputs {
        Inputs(InputsOf::Lines { text, items })
    }

    /// The inputs of a batch of events read in place by their producer.
    pub(crate) fn reads(reads: Rc<dyn ReadEvents>) -> Inputs {
        Inputs(InputsOf::Reads(reads))
    }

    /// The inputs of a batch of events.
    pub(crate) fn of_events(events: impl IntoIterator<Item = Rc<InputEvent>>) -> Inputs {
        Inputs(InputsOf::Events(events.into_iter().collect()))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            InputsOf::Events(events) => events.len(),
            InputsOf::Lines { items, .. } => items.len(),
            InputsOf::Reads(reads) => reads.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event at batch position `k`, decoded from its line if it was
    /// read in place and not decoded yet.
    pub fn get(&self, k: usize) -> Option<&Rc<InputEvent>> {
        match &self.0 {
            InputsOf::Events(events) => events.get(k),
            InputsOf::Lines { text, items } => match items.get(k)? {
                InputAt::Event(e) => Some(e),
                InputAt::Line { start, end, event } => Some(event.get_or_init(|| {
                    Rc::new(crate::event::decode_in_place_line(
                        text.get(*start..*end).unwrap_or_default(),
                    ))
                })),
                InputAt::Record { line, i } => line.event(text, *i),
            },
            InputsOf::Reads(reads) => reads.get(k),
        }
    }

    /// The lines of a batch of lines, end to end.
    fn text(&self) -> Option<&str> {
        match &self.0 {
            InputsOf::Lines { text, .. } => Some(text),
            InputsOf::Events(_) | InputsOf::Reads(_) => None,
        }
    }

    /// The event at position `k` if it is decoded already (never decodes).
    #[inline]
    pub(crate) fn peek(&self, k: usize) -> Option<&Rc<InputEvent>> {
        match &self.0 {
            InputsOf::Events(events) => events.get(k),
            InputsOf::Lines { items, .. } => match items.get(k)? {
                InputAt::Event(e) => Some(e),
                InputAt::Line { event, .. } => event.get(),
                InputAt::Record { line, i } => line.peek(*i),
            },
            InputsOf::Reads(reads) => reads.peek(k),
        }
    }
}

/// A run of consecutive events of one batch that egress as they came in.
/// It shares the batch's inputs (so they live as long as any run of them).
#[derive(Clone)]
pub struct Unchanged {
    inputs: Rc<Inputs>,
    start: usize,
    end: usize,
}

impl Unchanged {
    /// The run of `inputs[start..end]`.
    pub(crate) fn span(inputs: &Rc<Inputs>, start: usize, end: usize) -> Unchanged {
        Unchanged {
            inputs: inputs.clone(),
            start,
            end: end.min(inputs.len()).max(start),
        }
    }

    /// Adds `inputs[start..end]` to the run if they come right after its
    /// last event in the same inputs; false (nothing changed) otherwise.
    pub(crate) fn extend(&mut self, inputs: &Rc<Inputs>, start: usize, end: usize) -> bool {
        if self.end == start && Rc::ptr_eq(&self.inputs, inputs) {
            self.end = end.min(inputs.len()).max(start);
            true
        } else {
            false
        }
    }

    /// The events of the run, in order (an event read in place is decoded
    /// from its line here, once).
    pub fn events(&self) -> impl Iterator<Item = &Rc<InputEvent>> + '_ {
        (self.start..self.end).filter_map(|k| self.inputs.get(k))
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// How many events of the run are decoded already (the rest are lines
    /// read in place that nobody has asked for yet).
    #[cfg(test)]
    pub(crate) fn decoded(&self) -> usize {
        (self.start..self.end)
            .filter(|&k| self.inputs.peek(k).is_some())
            .count()
    }

    /// Each event of the run as the [`Egress`] (without edits) it stands for.
    pub fn egresses(&self) -> impl Iterator<Item = Egress> + '_ {
        (self.start..self.end).filter_map(|k| {
            Some(Egress {
                input: InputRef::at(&self.inputs, k)?,
                edits: Edits::new(),
            })
        })
    }
}

impl PartialEq for Unchanged {
    fn eq(&self, other: &Unchanged) -> bool {
        self.events().eq(other.events())
    }
}

impl std::fmt::Debug for Unchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.events()).finish()
    }
}

/// What a run counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub lines: u64,
    pub events: u64,
    pub malformed: u64,
    pub schema_mismatches: u64,
    pub unhandled: u64,
    pub egressed: u64,
    pub suppressed: u64,
    pub sampled_out: u64,
    pub rate_limited: u64,
    pub derived: u64,
    pub emits_refused: u64,
    pub actions_fired: u64,
    pub actions_refused: u64,
    pub faults: u64,
    pub late_events: u64,
    pub unkeyed: u64,
    pub evictions: u64,
    pub series_overflow: u64,
    pub open_windows: u64,
}

impl Counters {
    pub fn to_json(&self) -> Json {
        json!({
            "kind": "summary",
            "lines": self.lines, "events": self.events, "malformed": self.malformed,
            "schema_mismatches": self.schema_mismatches, "unhandled": self.unhandled,
            "egressed": self.egressed, "suppressed": self.suppressed, "sampled_out": self.sampled_out,
            "rate_limited": self.rate_limited, "derived": self.derived, "emits_refused": self.emits_refused,
            "actions_fired": self.actions_fired, "actions_refused": self.actions_refused,
            "faults": self.faults, "late_events": self.late_events, "unkeyed": self.unkeyed,
            "evictions": self.evictions, "series_overflow": self.series_overflow,
            "open_windows": self.open_windows,
        })
    }

    pub fn text(&self) -> String {
        let mut parts = vec![
            format!("{} events", self.events),
            format!("{} egressed", self.egressed),
            format!("{} suppressed", self.suppressed),
        ];
        for (n, what) in [
            (self.malformed, "malformed lines passed on"),
            (self.schema_mismatches, "schema mismatches passed on"),
            (self.sampled_out, "sampled out"),
            (self.rate_limited, "rate limited"),
            (self.derived, "derived logs"),
            (self.emits_refused, "emits refused by budget"),
            (self.actions_fired, "actions fired"),
            (self.actions_refused, "actions refused by budget"),
            (self.faults, "handler faults"),
            (self.late_events, "late events not aggregated"),
            (self.unkeyed, "events without a machine key"),
            (self.evictions, "machine instances evicted"),
            (self.series_overflow, "events folded into overflow series"),
            (
                self.open_windows,
                "windows still open (use --until-end to flush)",
            ),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!("summary: {}", parts.join(", "))
    }
}

/// The aggregate behind each metric name a program emits: the bare name
/// for a query with one aggregate, `name.column` for several (the names
/// `EmitMetric` gives). Exporters use it to choose the kind of metric (a
/// count is a monotonic sum, a max a gauge, ...).
pub fn metric_kinds(
    program: &dtc_ir::Program,
) -> std::collections::HashMap<String, dtc_ir::AggKind> {
    use dtc_ir::Stage;
    let mut kinds = std::collections::HashMap::new();
    for query in &program.queries {
        let mut aggregates: Vec<(&str, dtc_ir::AggKind)> = Vec::new();
        for stage in &query.stages {
            match stage {
                Stage::Summarize { aggregates: a, .. } => {
                    aggregates = a.iter().map(|a| (a.name.as_str(), a.kind)).collect();
                }
                Stage::EmitMetric { name } if aggregates.len() == 1 => {
                    kinds.insert(name.clone(), aggregates[0].1);
                }
                Stage::EmitMetric { name } => {
                    for (column, kind) in &aggregates {
                        kinds.insert(format!("{name}.{column}"), *kind);
                    }
                }
                _ => {}
            }
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{keyed_hash, mask};
    use crate::runtime::{Engine, Options};
    use crate::value::Value;

    /// Redacting three fields makes an egress whose edits and short texts
    /// are inline (no allocation an event), whose long mask is on the
    /// heap, and whose JSON holds the texts of `keyed_hash` and `mask`.
    #[test]
    fn redaction_egress_is_inline_and_writes_the_same_texts() {
        let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
        let checked = session.check_source(
            "redact.dt",
            "event Login { user: string @pii, email: string @pii, ip: string @pii }\n\
             redact Login.user with hash\nredact Login.email with mask\nredact Login.ip with drop",
        );
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let program = checked.lower().expect("checks").expect("verifies");
        let options = Options::default();
        let emails = [
            "u1@example.com",
            "ünïcödé-user@exämple.com",
            &"x".repeat(40),
        ];
        let lines: Vec<String> = emails
            .iter()
            .enumerate()
            .map(|(i, email)| {
                format!(
                    r#"{{"event":"Login","time":{i},"user":"user{i}","email":"{email}","ip":"10.0.0.{i}"}}"#
                )
            })
            .collect();
        let mut engine = Engine::new(program, options.clone());
        engine.push_lines(lines.iter().map(String::as_str));
        let egresses: Vec<Egress> = engine
            .drain_lazy()
            .into_iter()
            .filter_map(|p| match p {
                Produced::Egress(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(egresses.len(), emails.len());
        for (i, (e, email)) in egresses.iter().zip(emails).enumerate() {
            assert_eq!(e.edits.len(), 3, "{:?}", e.edits);
            assert!(!e.edits.spilled());
            let user = format!("user{i}");
            let hash = keyed_hash(options.hash_key, &Value::str(&user));
            let [
                Edit::ReplaceAttr(_, hashed),
                Edit::ReplaceAttr(_, masked),
                Edit::RemoveAttr(_),
            ] = &e.edits[..]
            else {
                panic!("unexpected edits {:?}", e.edits);
            };
            assert_eq!(*hashed, hash);
            assert!(!hashed.is_heap_allocated());
            assert_eq!(*masked, mask(email));
            assert_eq!(masked.is_heap_allocated(), masked.len() > 24, "{masked}");
            let json = e.to_json();
            assert_eq!(json["user"], Json::String(hash));
            assert_eq!(json["email"], Json::String(mask(email)));
            assert!(json.get("ip").is_none(), "{json}");
        }
    }
}
