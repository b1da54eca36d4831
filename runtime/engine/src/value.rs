//! Runtime values and decoded event records.
//!
//! A record holds one value per field slot of its event's layout, decoded
//! once from the input event; the standard fields are read from the input
//! event itself. Values mirror the IR's types; `None` is the absent value of
//! an optional.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use dtc_ir::{EventLayout, Type};
use serde_json::Value as Json;

use crate::event::{InputEvent, Scalar};
use crate::output::InputRef;
use crate::slots::Slot;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Duration(i64),
    Timestamp(i64),
    Percent(f64),
    Dyn(Rc<Json>),
    Map(Box<BTreeMap<Key, Value>>),
}

/// A map or machine key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Unit,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    /// Every key of a summary's overflow series (past `max`): absent as a
    /// column value, `(overflow)` as a label, and distinct from any real
    /// key, an absent one (`Unit`) included. Sorts after the others, so the
    /// overflow series closes a window's output.
    Overflow,
}

impl Key {
    pub fn from_value(v: &Value) -> Option<Key> {
        match v {
            Value::Bool(b) => Some(Key::Bool(*b)),
            Value::Int(i) => Some(Key::Int(*i)),
            Value::Str(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Unit | Key::Overflow => Value::None,
            Key::Bool(b) => Value::Bool(*b),
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::Str(s.clone()),
        }
    }

    /// As a metric label or a JSON value.
    pub fn label(&self) -> String {
        match self {
            Key::Unit => String::new(),
            Key::Bool(b) => b.to_string(),
            Key::Int(i) => i.to_string(),
            Key::Str(s) => s.to_string(),
            Key::Overflow => "(overflow)".to_string(),
        }
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The JSON form used in outputs: durations and timestamps as text.
    pub fn to_json(&self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s.to_string()),
            Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
            Value::Duration(ns) => Json::String(format_duration(*ns)),
            Value::Timestamp(ns) => Json::String(crate::event::format_time(*ns)),
            Value::Percent(p) => Json::String(format!("{p}%")),
            Value::Dyn(j) => (**j).clone(),
            Value::Map(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.label(), v.to_json())).collect())
            }
        }
    }
}

/// `1.5s`, `250ms`, `1m5s`, `2h`: whole seconds as hours, minutes and
/// seconds; anything finer as a decimal of the largest unit, to three
/// places (as `{:.3}` writes the unit's float quotient), trailing zeros
/// dropped.
pub fn format_duration(ns: i64) -> String {
    use std::fmt::Write;
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    const S: u64 = 1_000_000_000;
    let mut out = String::with_capacity(16);
    out.push_str(sign);
    if a >= S && a.is_multiple_of(S) {
        let (h, m, s) = (a / (3600 * S), a / (60 * S) % 60, a / S % 60);
        for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
            if n > 0 {
                let _ = write!(out, "{n}{unit}");
            }
        }
        return out;
    }
    let (per, unit) = if a >= S {
        (S, "s")
    } else if a >= 1_000_000 {
        (1_000_000, "ms")
    } else if a >= 1_000 {
        (1_000, "us")
    } else {
        (1, "ns")
    };
    // Thousandths of the unit in whole numbers: what `{:.3}` makes of the
    // float quotient (about 600 instructions through the float printer),
    // rounded to nearest. The float quotient is within a ten-millionth of
    // a thousandth of the true one below 10^15 ns, so both round alike but
    // at an exact tie, where the float's own rounding decides: those, and
    // longer durations, go through the float.
    let step = per / 1000;
    let tie = step > 1 && a % step == step / 2;
    if tie || a >= 1_000_000_000_000_000 {
        let text = format!("{:.3}", a as f64 / per as f64);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        let _ = write!(out, "{text}{unit}");
        return out;
    }
    let thousandths = if step > 1 {
        (a + step / 2) / step
    } else {
        a * 1000 / per
    };
    let (whole, mut frac) = (thousandths / 1000, thousandths % 1000);
    let _ = write!(out, "{whole}");
    if frac > 0 {
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
    out.push_str(unit);
    out
}

/// An event decoded against its layout.
#[derive(Clone)]
pub struct Record {
    pub layout: u32,
    /// One value per declared field ([`Record::slots`]): decoded with the
    /// record, or, for a line read in place, built from its row on first
    /// ask (compiled code reads the row, so a record only compiled code
    /// reads never builds them).
    slots: OnceCell<Vec<Value>>,
    /// The declared fields (attribute key, type) of a record read in
    /// place, from which its values are built; `None` otherwise.
    fields: Option<Fields>,
    /// The event it was decoded from (standard fields, the attribute and
    /// resource maps): decoded, or read in place from its line and decoded
    /// only if someone reads it.
    pub input: InputRef,
    /// The compact slot row ([`crate::slots`]), built the first time an
    /// engine asks for it; the interpreter never does.
    pub row: OnceCell<Option<Row>>,
}

/// A layout's declared fields (attribute key, type), shared by the records
/// read in place of that layout.
pub type Fields = Rc<[(String, Type)]>;

/// A record's compact row: its own, or its place among the rows of the
/// batch it was decoded in, laid end to end, so that running a batch reads
/// its rows in sequence instead of one allocation per record.
#[derive(Clone)]
pub enum Row {
    Own(Box<[Slot]>),
    InBatch {
        rows: Rc<[Slot]>,
        start: usize,
        len: usize,
    },
}

/// The record's own slots, not the whole batch's.
impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::ops::Deref for Row {
    type Target = [Slot];

    fn deref(&self) -> &[Slot] {
        match self {
            Row::Own(row) => row,
            Row::InBatch { rows, start, len } => rows.get(*start..*start + *len).unwrap_or(&[]),
        }
    }
}

impl Record {
    pub fn new(layout: u32, slots: Vec<Value>, input: impl Into<InputRef>) -> Record {
        Record {
            layout,
            slots: OnceCell::from(slots),
            fields: None,
            input: input.into(),
            row: OnceCell::new(),
        }
    }

    /// A record read in place from a line of a batch: its row (whose
    /// texts point into the batch's text, which `input` holds) and its
    /// layout's declared `fields`; its values (`slots`), if not given,
    /// are built when first asked for.
    pub(crate) fn in_place(
        layout: u32,
        fields: Fields,
        slots: Option<Vec<Value>>,
        input: InputRef,
        row: Row,
    ) -> Record {
        Record {
            layout,
            slots: slots.map_or_else(OnceCell::new, OnceCell::from),
            fields: Some(fields),
            input,
            row: OnceCell::from(Some(row)),
        }
    }

    /// Its values, one per declared field.
    #[inline]
    pub fn slots(&self) -> &[Value] {
        self.slots.get_or_init(|| self.values())
    }

    /// Its values if they are built already (never builds them).
    pub fn built_slots(&self) -> Option<&[Value]> {
        self.slots.get().map(Vec::as_slice)
    }

    /// The values of a record read in place: from its row, whose slots
    /// the line lane wrote from the same scalars (texts borrowed from the
    /// batch's text); should a slot not be found there, from its decoded
    /// event, as [`decode`] gives them.
    fn values(&self) -> Vec<Value> {
        let Some(fields) = &self.fields else {
            return Vec::new();
        };
        let from_row = || -> Option<Vec<Value>> {
            let row = self.row.get()?.as_deref()?;
            let text = self.input.text()?;
            fields
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| {
                    let slot = row.get(crate::slots::field_slot(i as u32) as usize)?;
                    crate::slots::value_of(slot, ty, text)
                })
                .collect()
        };
        from_row().unwrap_or_else(|| {
            let e = self.input.event();
            fields
                .iter()
                .map(|(key, ty)| field_value(e.attributes.get(key), ty).unwrap_or(Value::None))
                .collect()
        })
    }

    /// The record's compact row, decoded once; `None` when a value does not
    /// fit a slot.
    pub fn compact(&self) -> Option<&[Slot]> {
        self.row
            .get_or_init(|| crate::slots::event_row(self).map(Row::Own))
            .as_deref()
    }
}

/// Its values as [`Record::slots`] gives them (building them if need be).
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("layout", &self.layout)
            .field("slots", &self.slots())
            .field("input", &self.input)
            .field("row", &self.row)
            .finish()
    }
}

/// Why an event does not match its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch(pub String);

/// Decodes the declared fields of an event.
pub fn decode(
    layout_index: u32,
    layout: &EventLayout,
    input: Rc<InputEvent>,
) -> Result<Record, Mismatch> {
    let mut slots = Vec::with_capacity(layout.fields.len());
    for f in &layout.fields {
        let raw = input.attributes.get(&f.key);
        let Some(v) = field_value(raw, &f.ty) else {
            return Err(Mismatch(match raw {
                None | Some(Json::Null) => {
                    format!("field `{}` (attribute `{}`) is missing", f.name, f.key)
                }
                Some(j) => format!(
                    "field `{}` (attribute `{}`) should be {}, found {}",
                    f.name,
                    f.key,
                    f.ty.inner(),
                    describe(j)
                ),
            }));
        };
        slots.push(v);
    }
    Ok(Record::new(layout_index, slots, input))
}

/// The value of a declared field of type `ty` whose attribute is `raw`
/// (`None`: absent); `None` where the event does not match its layout (a
/// required field missing, or of another type).
fn field_value(raw: Option<&Json>, ty: &Type) -> Option<Value> {
    match (raw, ty) {
        (None | Some(Json::Null), Type::Opt(_)) => Some(Value::None),
        (None | Some(Json::Null), _) => None,
        (Some(j), t) => convert(j, t.inner()),
    }
}

fn describe(j: &Json) -> String {
    match j {
        Json::Null => "null".into(),
        Json::Bool(_) => "a bool".into(),
        Json::Number(_) => format!("the number {j}"),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// A JSON attribute as a value of a type, if it is one.
pub fn convert(j: &Json, t: &Type) -> Option<Value> {
    if *t == Type::Dyn {
        return Some(Value::Dyn(Rc::new(j.clone())));
    }
    typed(Scalar::of(j)?, t).map(Typed::to_value)
}

/// A value of a scalar type with its text still borrowed from where it was
/// read: a decoded attribute, or a line read in place by the runtime's line
/// lane, which writes it straight into a slot row ([`Slot::of`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Typed<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Duration(i64),
    Timestamp(i64),
    Percent(f64),
}

impl Typed<'_> {
    pub fn to_value(self) -> Value {
        match self {
            Typed::Bool(b) => Value::Bool(b),
            Typed::Int(i) => Value::Int(i),
            Typed::Float(f) => Value::Float(f),
            Typed::Str(s) => Value::str(s),
            Typed::Bytes(b) => Value::Bytes(Rc::from(b)),
            Typed::Duration(d) => Value::Duration(d),
            Typed::Timestamp(t) => Value::Timestamp(t),
            Typed::Percent(p) => Value::Percent(p),
        }
    }
}

/// A JSON scalar as a value of a scalar type, if it is one: the one
/// mapping of attributes to declared fields (`dyn` fields keep the JSON
/// itself, see [`convert`]).
pub fn typed<'a>(s: Scalar<'a>, t: &Type) -> Option<Typed<'a>> {
    Some(match (t, s) {
        (Type::Str, Scalar::Str(s)) => Typed::Str(s),
        (Type::Bytes, Scalar::Str(s)) => Typed::Bytes(s.as_bytes()),
        (Type::Int, Scalar::Str(s)) => Typed::Int(s.parse().ok()?),
        (Type::Int, n) => Typed::Int(n.as_i64()?),
        (Type::Float, n) => Typed::Float(n.as_f64()?),
        (Type::Bool, Scalar::Bool(b)) => Typed::Bool(b),
        (Type::Duration, Scalar::Str(s)) => {
            Typed::Duration(i64::try_from(humantime::parse_duration(s).ok()?.as_nanos()).ok()?)
        }
        (Type::Duration, n) => Typed::Duration(n.as_i64()?),
        (Type::Timestamp, Scalar::Str(s)) => Typed::Timestamp(crate::event::parse_time(s)?),
        (Type::Timestamp, n) => Typed::Timestamp(n.as_i64()?),
        (Type::Percent, n) => {
            let p = n.as_f64()?;
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Typed::Percent(p)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `format_duration` wrote before it counted in whole numbers:
    /// the unit's float quotient through `{:.3}`.
    fn through_float(ns: i64) -> String {
        let sign = if ns < 0 { "-" } else { "" };
        let a = ns.unsigned_abs();
        const S: u64 = 1_000_000_000;
        if a >= S && a.is_multiple_of(S) {
            return format_duration(ns);
        }
        let (v, unit) = if a >= S {
            (a as f64 / S as f64, "s")
        } else if a >= 1_000_000 {
            (a as f64 / 1_000_000.0, "ms")
        } else if a >= 1_000 {
            (a as f64 / 1_000.0, "us")
        } else {
            (a as f64, "ns")
        };
        let text = format!("{v:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{sign}{text}{unit}")
    }

    /// Counted in whole numbers, a duration reads as it did through the
    /// float: at unit boundaries, exact ties and next to them, rounding
    /// up into the next whole, past 10^15 ns, and over a spread of random
    /// ones.
    #[test]
    fn durations_read_as_through_the_float() {
        let mut cases: Vec<i64> = vec![
            0,
            1,
            999,
            1_000,
            1_001,
            999_999,
            1_000_000,
            i64::MAX,
            i64::MIN,
        ];
        for unit in [1_000i64, 1_000_000, 1_000_000_000] {
            for k in [1i64, 2, 7, 999, 1_000, 65_536, 999_999_999] {
                let base = k * unit;
                let step = unit / 1000;
                for d in [
                    -step,
                    -step / 2 - 1,
                    -step / 2,
                    -step / 2 + 1,
                    -1,
                    0,
                    1,
                    step / 2 - 1,
                    step / 2,
                    step / 2 + 1,
                ] {
                    cases.push(base.saturating_add(d));
                }
            }
        }
        cases.extend([
            1_000_500_000,
            1_000_499_999,
            999_999_500_000,
            999_999_999_999_999,
            1_000_000_000_000_001,
            1_999_999_500,
        ]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push((x >> (i % 60)) as i64);
        }
        for ns in cases {
            for ns in [ns, ns.saturating_neg()] {
                assert_eq!(format_duration(ns), through_float(ns), "{ns} ns");
            }
        }
    }
}
