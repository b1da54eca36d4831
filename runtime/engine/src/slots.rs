//! Compact slot rows: the fixed-offset form of a record that compiled code
//! reads.
//!
//! A row is an array of 16-byte [`Slot`]s: first the standard fields of
//! [`STD_SLOTS`], then one slot per declared field of the event's layout,
//! in layout order. So a field's offset is known when a program is compiled
//! (`16 * (STD_SLOTS.len() + slot)`), whatever the event. A slot holds a
//! presence tag and a payload: an `i64` (ints, durations, timestamps), the
//! bits of an `f64` (floats, percents), `0`/`1` (bools), or the address and
//! byte length of a string or bytes value. Strings are not copied: the
//! address points into the record's own values or its input event, which
//! the record keeps alive (both are reference counted and never mutated),
//! so a row is valid exactly as long as the record it was built from.
//! Maps and `dyn` values are present with no payload: compiled code reaches
//! them through the runtime's helpers, never through the row.
//!
//! This module only records addresses; reading through them is the JIT's
//! business (`dtc-jit`), which is the one crate allowed `unsafe`.

use dtc_ir::{StdField, Type};

use crate::event::Standard;
use crate::value::{Record, Typed, Value};

/// One field of a compact row. `#[repr(C)]`: compiled code reads `bits` at
/// offset 0, `len` at 8 and `tag` at 12.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub bits: u64,
    pub len: u32,
    /// [`TAG_ABSENT`] or [`TAG_PRESENT`].
    pub tag: u32,
}

pub const TAG_ABSENT: u32 = 0;
pub const TAG_PRESENT: u32 = 1;

/// Bytes per slot: the stride compiled code uses.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// The standard fields a row carries, in order, before the declared fields.
/// `attrs` and `resource` are maps and stay with the runtime.
pub const STD_SLOTS: [StdField; 9] = [
    StdField::Time,
    StdField::ObservedTime,
    StdField::Severity,
    StdField::SeverityText,
    StdField::Body,
    StdField::TraceId,
    StdField::SpanId,
    StdField::ThreadId,
    StdField::Service,
];

/// The row index of a standard field, if rows carry it.
pub fn std_slot(f: StdField) -> Option<u32> {
    STD_SLOTS.iter().position(|s| *s == f).map(|i| i as u32)
}

/// The row index of declared field `slot`.
pub fn field_slot(slot: u32) -> u32 {
    STD_SLOTS.len() as u32 + slot
}

impl Slot {
    pub const ABSENT: Slot = Slot {
        bits: 0,
        len: 0,
        tag: TAG_ABSENT,
    };

    fn present(bits: u64) -> Slot {
        Slot {
            bits,
            len: 0,
            tag: TAG_PRESENT,
        }
    }

    /// A string or bytes value by address; `None` past 4 GiB, which a row
    /// cannot describe.
    pub fn bytes(b: &[u8]) -> Option<Slot> {
        Some(Slot {
            bits: b.as_ptr() as usize as u64,
            len: u32::try_from(b.len()).ok()?,
            tag: TAG_PRESENT,
        })
    }

    /// The slot of a value. The slot borrows the value's string: it is
    /// valid while `v` (or a clone sharing its allocation) lives.
    pub fn from_value(v: &Value) -> Option<Slot> {
        match v {
            Value::None => Some(Slot::ABSENT),
            Value::Bool(b) => Slot::of(Typed::Bool(*b)),
            Value::Int(i) => Slot::of(Typed::Int(*i)),
            Value::Duration(d) => Slot::of(Typed::Duration(*d)),
            Value::Timestamp(t) => Slot::of(Typed::Timestamp(*t)),
            Value::Float(f) => Slot::of(Typed::Float(*f)),
            Value::Percent(p) => Slot::of(Typed::Percent(*p)),
            Value::Str(s) => Slot::of(Typed::Str(s)),
            Value::Bytes(b) => Slot::of(Typed::Bytes(b)),
            Value::Dyn(_) | Value::Map(_) => Some(Slot::present(0)),
        }
    }

    /// The slot of a scalar value, its text borrowed from wherever `v`
    /// borrows it (a value, or a line the runtime reads in place).
    pub fn of(v: Typed<'_>) -> Option<Slot> {
        Some(match v {
            Typed::Bool(b) => Slot::present(u64::from(b)),
            Typed::Int(i) | Typed::Duration(i) | Typed::Timestamp(i) => Slot::present(i as u64),
            Typed::Float(f) | Typed::Percent(f) => Slot::present(f.to_bits()),
            Typed::Str(s) => Slot::bytes(s.as_bytes())?,
            Typed::Bytes(b) => Slot::bytes(b)?,
        })
    }

    /// The slot of an optional text (a standard field).
    pub fn text(s: Option<&str>) -> Option<Slot> {
        match s {
            Some(s) => Slot::bytes(s.as_bytes()),
            None => Some(Slot::ABSENT),
        }
    }

    /// The slot of an integer (a standard field).
    pub fn int(i: i64) -> Slot {
        Slot::present(i as u64)
    }
}

/// The compact row of a record; `None` when a value is too large for a
/// slot (a string past 4 GiB), so the caller runs that record another way.
pub fn event_row(rec: &Record) -> Option<Box<[Slot]>> {
    let mut row = Vec::with_capacity(STD_SLOTS.len() + rec.slots().len());
    push_event_row(rec, &mut row)?;
    Some(row.into_boxed_slice())
}

/// Appends the compact row of a record to `row` (a batch of rows laid out
/// one after the other); `None`, with `row` partly written, when a value
/// does not fit a slot.
pub fn push_event_row(rec: &Record, row: &mut Vec<Slot>) -> Option<()> {
    push_standard(&rec.input.standard(), row)?;
    for v in rec.slots() {
        row.push(Slot::from_value(v)?);
    }
    Some(())
}

/// Appends the standard slots ([`STD_SLOTS`]) of an event to `row`; `None`,
/// with `row` unchanged, when a text does not fit a slot.
pub fn push_standard(e: &Standard<'_>, row: &mut Vec<Slot>) -> Option<()> {
    // Built whole and appended at once: a push per slot, each checking the
    // capacity, cost as much as the rest of a row read in place.
    let slot = |i: usize| standard_slot(e, STD_SLOTS[i]);
    let slots = [
        slot(0)?,
        slot(1)?,
        slot(2)?,
        slot(3)?,
        slot(4)?,
        slot(5)?,
        slot(6)?,
        slot(7)?,
        slot(8)?,
    ];
    row.extend_from_slice(&slots);
    Some(())
}

/// The slot of standard field `f`; `None` when its text does not fit.
#[inline(always)]
fn standard_slot(e: &Standard<'_>, f: StdField) -> Option<Slot> {
    match f {
        StdField::Time => Some(Slot::int(e.time)),
        StdField::ObservedTime => Some(Slot::int(e.observed_time)),
        StdField::Severity => Some(Slot::int(e.severity)),
        StdField::SeverityText => Slot::text(e.severity_text),
        StdField::Body => Slot::text(e.body),
        StdField::TraceId => Slot::text(e.trace_id),
        StdField::SpanId => Slot::text(e.span_id),
        StdField::ThreadId => Some(e.thread_id.map_or(Slot::ABSENT, Slot::int)),
        StdField::Service => Slot::text(e.service),
        StdField::Attrs | StdField::Resource => Some(Slot::ABSENT),
    }
}

/// The value of a declared field of type `ty` that slot `slot` holds, its
/// text (if any) found in `text`, where the slot points: the inverse of
/// [`Slot::of`] for a row read in place from `text`. `None` when the slot
/// does not point into `text`.
pub fn value_of(slot: &Slot, ty: &Type, text: &str) -> Option<Value> {
    if slot.tag == TAG_ABSENT {
        return Some(Value::None);
    }
    let bytes = || {
        let start = (slot.bits as usize).checked_sub(text.as_ptr() as usize)?;
        Some(start..start.checked_add(slot.len as usize)?)
    };
    Some(match ty.inner() {
        Type::Str => Value::str(text.get(bytes()?)?),
        Type::Bytes => Value::Bytes(std::rc::Rc::from(text.as_bytes().get(bytes()?)?)),
        Type::Bool => Value::Bool(slot.bits != 0),
        Type::Int => Value::Int(slot.bits as i64),
        Type::Duration => Value::Duration(slot.bits as i64),
        Type::Timestamp => Value::Timestamp(slot.bits as i64),
        Type::Float => Value::Float(f64::from_bits(slot.bits)),
        Type::Percent => Value::Percent(f64::from_bits(slot.bits)),
        _ => return None,
    })
}

/// The compact row of a query row (its columns, in order).
pub fn values_row(values: &[Value]) -> Option<Vec<Slot>> {
    values.iter().map(Slot::from_value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::InputEvent;
    use serde_json::Value as Json;

    /// A slot read back against the text it points into gives the value
    /// the slot was written from, for every scalar type; a slot pointing
    /// elsewhere gives none.
    #[test]
    fn values_read_back_from_slots_are_the_values_written() {
        let text = "héllo wörld 10.0.0.1";
        let cases: Vec<(Typed<'_>, Type)> = vec![
            (Typed::Str(&text[0..6]), Type::Str),
            (Typed::Str(&text[7..13]), Type::Opt(Box::new(Type::Str))),
            (Typed::Str(&text[3..3]), Type::Str),
            (Typed::Bytes(&text.as_bytes()[14..]), Type::Bytes),
            (Typed::Bool(true), Type::Bool),
            (Typed::Bool(false), Type::Bool),
            (Typed::Int(-42), Type::Int),
            (Typed::Duration(1_500_000_000), Type::Duration),
            (Typed::Timestamp(1_795_341_600_000_000_000), Type::Timestamp),
            (Typed::Float(-0.25), Type::Float),
            (Typed::Percent(99.5), Type::Percent),
        ];
        for (typed, ty) in cases {
            let slot = Slot::of(typed).expect("fits");
            assert_eq!(
                value_of(&slot, &ty, text),
                Some(typed.to_value()),
                "{typed:?}"
            );
        }
        assert_eq!(
            value_of(&Slot::ABSENT, &Type::Opt(Box::new(Type::Str)), text),
            Some(Value::None)
        );
        let elsewhere = String::from("hello");
        let slot = Slot::of(Typed::Str(&elsewhere)).expect("fits");
        assert_eq!(value_of(&slot, &Type::Str, text), None);
    }

    #[test]
    fn rows_put_standard_fields_first_and_borrow_strings() {
        let mut input = InputEvent {
            time: 7,
            severity: 9,
            body: Some("hello".into()),
            ..InputEvent::default()
        };
        input.attributes.insert("thread.id".into(), Json::from(42));
        let rec = Record::new(
            0,
            vec![Value::Int(-3), Value::str("abc"), Value::None],
            input,
        );
        let row = event_row(&rec).expect("small values fit");
        assert_eq!(row.len(), STD_SLOTS.len() + 3);
        assert_eq!(row[0].bits, 7);
        assert_eq!(row[std_slot(StdField::ThreadId).unwrap() as usize].bits, 42);
        assert_eq!(row[field_slot(0) as usize].bits as i64, -3);
        let s = row[field_slot(1) as usize];
        assert_eq!((s.len, s.tag), (3, TAG_PRESENT));
        let Value::Str(text) = &rec.slots()[1] else {
            unreachable!("built as a string")
        };
        assert_eq!(s.bits, text.as_ptr() as usize as u64);
        assert_eq!(row[field_slot(2) as usize], Slot::ABSENT);
        assert_eq!(SLOT_BYTES, 16);
    }
}
