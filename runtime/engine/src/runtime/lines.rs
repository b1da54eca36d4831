//! The line lane of `Engine::push_lines`: flat lines read in place.
//!
//! Decoding a line into an [`InputEvent`] (a map of its attributes, a
//! string per key and text value) and then into a record costs far more
//! than running a simple program over it. Most events a program sees need
//! neither: one no layout matches only passes through; one that a
//! stretch of tally increments settles (`fast::bulk_layouts`) needs its
//! time, its layout and the prefilter's verdict, which reads its slot row;
//! one of a grouped count by one field needs its group key besides.
//! So this lane reads such a line in place ([`scan_flat`]): its standard
//! fields and the attributes its layout declares, borrowed from the
//! batch's text, straight into the batch's slot rows; the rest of the line
//! is skipped. An event of a layout no stretch settles (a machine's, one
//! that shaping edits, a handler's) becomes a record from what was read:
//! its values, its row in the batch's rows, and its input event as a
//! position among the batch's inputs ([`InputRef::at`]). The event stays
//! undecoded unless something asks for it: the general path or the quiet
//! lane for an event read without a record, a program reading what the
//! record does not hold (an attribute it does not declare, a standard
//! field the interpreter reads), or whoever reads the egress
//! ([`Inputs::get`]); it is then decoded from its line, the same event as
//! `decode_line` gives. A line this lane does not read (a layout with a
//! `dyn` or map field, escapes, a field of the wrong type, anything unusual) is
//! decoded as before, so the decoder stays the one definition of what a
//! line means; the differential tests run every sample, run case and
//! generated stream through `push_lines` against the general path.

use std::cell::OnceCell;
use std::rc::Rc;

use dtc_ir::{Program, Redaction, ShapeRule, Type};

use super::grouped::KeyView;
use super::{Decoded, Engine, UNHANDLED};
use crate::event::InputEvent;
use crate::event::{
    Asked, Export, ExportAt, Input, KeyIndex, Scalar, Standard, decode_line_each,
    decode_line_via_value, is_export, read_export_into, scan_flat,
};
use crate::output::{Edits, Egress, InputAt, InputRef, Inputs, Output, Produced};
use crate::slots::{Slot, push_standard};
use crate::value::{Fields, Record, Row, Typed, Value, typed};

/// What the lane reads of a line, for one program.
pub(in crate::runtime) struct Plan {
    /// The attribute keys of the declared fields of the layouts read in
    /// place, each once.
    pub(in crate::runtime) wanted: Vec<String>,
    /// Per layout read in place, each declared field's index in `wanted`
    /// and its type; `None` for a layout the lane leaves to the decoder.
    pub(in crate::runtime) fields: Vec<Option<Vec<(usize, Type)>>>,
    /// Per layout whose events are run as records (no stretch settles
    /// them), its declared fields (attribute key, type): each event gets
    /// its record from its row, with its values built from the row and
    /// its input event decoded only when asked for ([`InputRef::at`]).
    pub(in crate::runtime) records: Vec<Option<Fields>>,
    /// Per layout, whether its records' values are built as the line is
    /// read rather than from the row on first ask: where they are read
    /// anyway (a redaction that hashes or masks a field of it, or an
    /// executor that does not read rows, the interpreter), building them
    /// from the scan's values costs less.
    pub(in crate::runtime) eager: Vec<bool>,
    /// Per layout, the declared field whose value is the group of the
    /// grouped tally its events feed (`grouped::GroupTally::counts_by_field`).
    group_key: Vec<Option<u32>>,
    /// Per key of `wanted`, whether an event read in place is asked its
    /// text, and whether its standard fields (`Asked`): all of them, but
    /// where only redactions read a layout (`read::narrow`).
    pub(in crate::runtime) texts: Vec<bool>,
    pub(in crate::runtime) standard: bool,
    /// Per layout, `texts` of its declared fields, in order; and every
    /// input layout by its wire name, as bytes (`Engine::edits_found`).
    pub(in crate::runtime) field_texts: Vec<Box<[bool]>>,
    pub(in crate::runtime) names: Vec<(Box<[u8]>, u32)>,
    /// Per layout, its declared fields' keys as `Engine::edits_found`'s
    /// producer finds them (`None`: a key repeated, left to `push_read`).
    pub(in crate::runtime) field_index: Vec<Option<KeyIndex>>,
    /// The layouts whose events a producer may run itself
    /// (`Engine::removals`).
    pub(in crate::runtime) removals: Rc<[super::read::Removals]>,
    /// Batches still to decode the usual way before trying the lane again
    /// (see [`RESTS`]).
    pub(in crate::runtime) rest: u32,
}

/// Batches decoded the usual way after one in which the lane declined most
/// lines. A declined line costs its scan on top of its decoding (a third
/// more for a line of a layout the lane does not read, where the scan stops
/// at its name): a stream of such lines, such as every line of a program
/// whose events all feed a machine, tries the lane once every so many
/// batches instead of paying that on every line.
const RESTS: u32 = 15;

impl Plan {
    /// The layouts of input events whose fields are all scalars (a `dyn`
    /// field keeps its JSON): those whose stretches need no more than a row
    /// or a group key (settled in bulk, `bulk`, or by a grouped tally that
    /// counts by one declared field, `group_key`), and the others, whose
    /// events become records.
    pub(in crate::runtime) fn new(
        p: &Program,
        bulk: &[bool],
        group_key: Vec<Option<u32>>,
        reads_rows: bool,
    ) -> Plan {
        let mut wanted: Vec<String> = Vec::new();
        let stretches =
            |l: usize| bulk.get(l) == Some(&true) || group_key.get(l).is_some_and(Option::is_some);
        let records = p
            .events
            .iter()
            .enumerate()
            .map(|(l, e)| {
                let fields = e.fields.iter().map(|f| (f.key.clone(), f.ty.clone()));
                (!stretches(l)).then(|| fields.collect())
            })
            .collect();
        let eager = (0..p.events.len() as u32)
            .map(|l| {
                !reads_rows
                    || p.shaping.iter().any(|r| {
                        matches!(r, ShapeRule::Redact { event, method, .. }
                            if *event == l && *method != Redaction::Drop)
                    })
            })
            .collect();
        let fields = p
            .events
            .iter()
            .map(|e| {
                let scalar = |t: &Type| {
                    !matches!(
                        t.inner(),
                        Type::Dyn | Type::Histogram | Type::Map(..) | Type::None | Type::Opt(_)
                    )
                };
                if e.derived || !e.fields.iter().all(|f| scalar(&f.ty)) {
                    return None;
                }
                let fields = e
                    .fields
                    .iter()
                    .map(|f| {
                        let i = match wanted.iter().position(|w| *w == f.key) {
                            Some(i) => i,
                            None => {
                                wanted.push(f.key.clone());
                                wanted.len() - 1
                            }
                        };
                        (i, f.ty.clone())
                    })
                    .collect();
                Some(fields)
            })
            .collect();
        Plan {
            texts: vec![true; wanted.len()],
            standard: true,
            field_texts: Vec::new(),
            names: Vec::new(),
            field_index: Vec::new(),
            removals: Rc::from([]),
            wanted,
            fields,
            records,
            eager,
            group_key,
            rest: 0,
        }
    }

    /// What an event read in place is asked.
    pub(in crate::runtime) fn asked(&self) -> Asked<'_> {
        Asked {
            keys: &self.wanted,
            texts: &self.texts,
            standard: self.standard,
        }
    }
}

/// The slot row of a line read in place for a layout's `fields`, appended
/// to `rows`: the row `slots::event_row` builds of the decoded record;
/// each field's value goes to `value` too (`None`: absent), from which a
/// record's values are built (what `value::decode` gives), or nowhere.
/// `None` (with `rows` partly written) where decoding would not give that
/// layout's record: a field missing or of the wrong type (the decoder
/// reports it), or a text too long for a slot.
#[inline]
pub(in crate::runtime) fn push_row<'a>(
    std: &Standard<'_>,
    fields: &[(usize, Type)],
    values: &[Option<Scalar<'a>>],
    rows: &mut Vec<Slot>,
    mut value: impl FnMut(Option<Typed<'a>>),
) -> Option<()> {
    push_standard(std, rows)?;
    for (i, ty) in fields {
        let v = field(values.get(*i).copied().flatten(), ty)?;
        value(v);
        rows.push(match v {
            None => Slot::ABSENT,
            Some(v) => Slot::of(v)?,
        });
    }
    Some(())
}

/// A declared field's value of type `ty` as its record holds it, from
/// what was read of it (`None`: absent): `Some(None)` where it is
/// absent or null and may be; `None` where it does not make the record
/// (absent and may not be, or of the wrong type).
#[inline(always)]
pub(in crate::runtime) fn field<'a>(v: Option<Scalar<'a>>, ty: &Type) -> Option<Option<Typed<'a>>> {
    match (v, ty.inner()) {
        (None | Some(Scalar::Null), _) if ty.is_opt() => Some(None),
        (None | Some(Scalar::Null), _) => None,
        // What `typed` makes of it, without the call: most declared
        // fields are texts.
        (Some(Scalar::Str(s)), Type::Str) => Some(Some(Typed::Str(s))),
        (Some(s), t) => typed(s, t).map(Some),
    }
}

/// The group key of an event read in place of layout `l` (with its
/// declared fields' `values`), when its grouped tally counts by one field.
fn group_key<'a>(plan: &Plan, l: u32, values: &[Option<Scalar<'a>>]) -> Option<KeyView<'a>> {
    let s = (*plan.group_key.get(l as usize)?)?;
    let (i, ty) = plan.fields.get(l as usize)?.as_ref()?.get(s as usize)?;
    let v = values.get(*i).copied().flatten();
    Some(KeyView::of_typed(v.and_then(|v| typed(v, ty.inner()))))
}

/// An event read in place into a record, before the batch's inputs (which
/// the record points at) are built.
struct Pending {
    layout: u32,
    fields: Fields,
    /// Its values, when built as it was read (`Plan::eager`).
    slots: Option<Vec<Value>>,
    /// Its row, `rows[start..end]`.
    row: (usize, usize),
    /// Its position among the batch's inputs.
    at: usize,
}

/// An event of the batch: read in place (its row, if it has one, at
/// `rows[start..end]`; its group key, for a grouped layout), read in place
/// into a record, or decoded.
enum At<'a> {
    InPlace {
        row: Option<(usize, usize)>,
        key: KeyView<'a>,
    },
    /// The batch's `i`th record read in place.
    Record(usize),
    /// Boxed: most events of a batch the lane reads are read in place, and
    /// a decoded record is several times the size of the rest.
    Decoded(Box<Decoded>),
    /// An event of a layout only redactions touch, read by its producer
    /// (`read::only_redacted`): its egress's edits are the batch's `i`th.
    Egress(usize),
}

/// What a batch of lines (or of events read by their producer,
/// `Engine::push_reads`) has read so far, by position among its events.
pub(in crate::runtime) struct Batch<'t> {
    pub(in crate::runtime) rows: Vec<Slot>,
    /// Events read in place into records, made records once the batch's
    /// inputs are built.
    pending: Vec<Pending>,
    at: Vec<At<'t>>,
    /// The input of each event of a batch of lines (a batch read by its
    /// producer has its inputs already: none here).
    inputs: Vec<InputAt>,
    times: Vec<i64>,
    layouts: Vec<u32>,
    /// Malformed lines (and records), each before the event at its
    /// position.
    malformed: Vec<(usize, String, String)>,
    /// The edits of the egress of each [`At::Egress`] event.
    edits: Vec<Edits>,
}

impl<'t> Batch<'t> {
    /// An empty batch for `n` events.
    pub(in crate::runtime) fn new(plan: &Plan, n: usize) -> Batch<'t> {
        let widest = plan.fields.iter().flatten().map(Vec::len).max();
        Batch {
            rows: Vec::with_capacity(widest.map_or(0, |w| n * (crate::slots::STD_SLOTS.len() + w))),
            pending: Vec::new(),
            at: Vec::with_capacity(n),
            inputs: Vec::new(),
            times: Vec::with_capacity(n),
            layouts: Vec::with_capacity(n),
            malformed: Vec::new(),
            edits: Vec::new(),
        }
    }

    /// Room for `more` events (the records of export lines, a hundred or
    /// so a line where a batch was made for as many lines), each with a
    /// row.
    fn reserve(&mut self, plan: &Plan, more: usize) {
        let widest = plan.fields.iter().flatten().map(Vec::len).max();
        if let Some(w) = widest {
            self.rows
                .reserve(more * (crate::slots::STD_SLOTS.len() + w));
        }
        self.at.reserve(more);
        self.inputs.reserve(more);
        self.times.reserve(more);
        self.layouts.reserve(more);
    }

    /// An event read in place (its standard fields `std`, its `layout`,
    /// the declared attributes' `values`): its row, its record when its
    /// layout's events are run as records. `false` (and the rows as they
    /// were) where its layout's record is not to be built from what was
    /// read: the event is then decoded. A batch of lines pushes its input
    /// after.
    pub(in crate::runtime) fn place(
        &mut self,
        plan: &Plan,
        std: &Standard<'_>,
        layout: Option<u32>,
        values: &[Option<Scalar<'t>>],
    ) -> bool {
        let row_at = self.rows.len();
        let record = layout.and_then(|l| plan.records.get(l as usize)?.as_ref());
        let fields = layout.and_then(|l| plan.fields.get(l as usize)?.as_ref());
        let eager = layout.is_some_and(|l| plan.eager.get(l as usize) == Some(&true));
        let mut slots = Vec::new();
        let rows = &mut self.rows;
        let row = match (layout, fields) {
            (None, _) => Some(None),
            (Some(_), None) => None,
            (Some(_), Some(fields)) if eager => push_row(std, fields, values, rows, |v| {
                slots.push(v.map_or(Value::None, Typed::to_value))
            })
            .map(|()| Some((row_at, rows.len()))),
            (Some(_), Some(fields)) => {
                push_row(std, fields, values, rows, |_| {}).map(|()| Some((row_at, rows.len())))
            }
        };
        let Some(row) = row else {
            self.rows.truncate(row_at);
            return false;
        };
        match (layout, row, record) {
            (Some(l), Some(span), Some(fields)) => {
                self.pending.push(Pending {
                    layout: l,
                    fields: fields.clone(),
                    slots: eager.then_some(slots),
                    row: span,
                    at: self.at.len(),
                });
                self.at.push(At::Record(self.pending.len() - 1));
            }
            _ => {
                let key = layout.and_then(|l| group_key(plan, l, values));
                self.at.push(At::InPlace {
                    row,
                    key: key.unwrap_or(KeyView::Unit),
                });
            }
        }
        self.times.push(std.time);
        self.layouts.push(layout.unwrap_or(UNHANDLED));
        true
    }

    /// An event of `layout` at `time` whose egress makes the edits
    /// `edit` writes and nothing else (`read::only_redacted`); `None`
    /// (the batch as it was) where `edit` says it is to be decoded.
    /// The edits are written where they stay until run: an `Edits` is
    /// large, and moving each through a growing vector cost more than
    /// the batch saved the redaction.
    pub(in crate::runtime) fn egress(
        &mut self,
        layout: u32,
        time: i64,
        edit: impl FnOnce(&mut Edits) -> Option<()>,
    ) -> Option<()> {
        if self.edits.capacity() == 0 {
            self.edits.reserve(self.at.capacity());
        }
        self.edits.push(Edits::new());
        let done = self.edits.last_mut().and_then(edit);
        if done.is_none() {
            self.edits.pop();
            return None;
        }
        self.at.push(At::Egress(self.edits.len() - 1));
        self.times.push(time);
        self.layouts.push(layout);
        Some(())
    }

    /// An input of a batch of lines decoded the usual way.
    fn decoded(&mut self, engine: &Engine, input: Input) {
        match input {
            Input::Malformed { line, reason } => self.malformed.push((self.at.len(), line, reason)),
            Input::Event(e) => {
                let e = Rc::new(e);
                self.inputs.push(InputAt::Event(e.clone()));
                self.decoded_event(engine, e);
            }
        }
    }

    /// An event decoded the usual way.
    pub(in crate::runtime) fn decoded_event(&mut self, engine: &Engine, e: Rc<InputEvent>) {
        let time = e.time;
        let d = engine.decode_event(e);
        self.times.push(time);
        self.layouts.push(d.layout());
        self.at.push(At::Decoded(Box::new(d)));
    }
}

impl Engine {
    /// `push_lines` through the line lane (the engine has one: lanes on).
    pub(in crate::runtime) fn push_lines_in_place<'l>(
        &mut self,
        lines: impl IntoIterator<Item = &'l str>,
    ) {
        let Some(mut plan) = self.lines.take() else {
            return;
        };
        // The batch's lines end to end in one allocation: what is read in
        // place (slot rows, and lines decoded later) points into it, and
        // it lives as long as the batch's unchanged egress.
        let lines: Vec<&str> = lines.into_iter().collect();
        let mut text = String::with_capacity(lines.iter().map(|l| l.len()).sum());
        let mut spans = Vec::with_capacity(lines.len());
        for line in lines {
            self.counters.lines += 1;
            let start = text.len();
            text.push_str(line);
            spans.push((start, text.len()));
        }
        let text: Rc<str> = Rc::from(text);
        let mut b = Batch::new(&plan, spans.len());
        b.inputs.reserve(spans.len());
        let mut declined = 0;
        let wanted: Vec<&str> = plan.wanted.iter().map(String::as_str).collect();
        let mut values = Vec::new();
        // One export's buffers for every export line of the batch.
        let mut export = Export::default();
        let by_wire = &self.by_wire;
        // A name's layout (`Some(None)`: none matches), if the lane reads
        // its events.
        let takes = |name: &str| match by_wire.get(name) {
            None => Some(None),
            Some(&l) => plan.fields.get(l as usize)?.as_ref().map(|_| Some(l)),
        };
        let mut reserved = false;
        let n = spans.len();
        for (k, (start, end)) in spans.into_iter().enumerate() {
            let lines_left = n - k - 1;
            let line = &text[start..end];
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some((std, taken)) = scan_flat(line, &wanted, &mut values, &takes) {
                let input = InputAt::Line {
                    start,
                    end,
                    event: OnceCell::new(),
                };
                if self.place_read(&plan, &mut b, &std, taken.flatten(), &values) {
                    b.inputs.push(input);
                    continue;
                }
            } else if read_export_into(trimmed, &mut export) {
                // An OTLP/JSON export: each record read in place as a flat
                // line is, its event decoded with the line's others when
                // one is asked for; a record this does not read (escapes,
                // a layout the lane leaves to decoding, fields that do not
                // make its record) is decoded alone.
                let shared = Rc::new(ExportAt::new(start, end));
                if !reserved {
                    // As many records a line for the batch's lines still
                    // to read, once: growing as they come cost a copy of
                    // every row so far at each doubling.
                    reserved = true;
                    b.reserve(&plan, export.len() * (lines_left + 1));
                }
                for i in 0..export.len() {
                    let read = export.wanted(i, &wanted, &mut values).and_then(|()| {
                        let std = export.standard(i)?;
                        let taken = std.name.map_or(Some(None), takes)?;
                        Some((std, taken))
                    });
                    if let Some((std, layout)) = read {
                        let input = InputAt::Record {
                            line: shared.clone(),
                            i,
                        };
                        if self.place_read(&plan, &mut b, &std, layout, &values) {
                            b.inputs.push(input);
                            continue;
                        }
                    }
                    declined += 1;
                    b.decoded(self, Input::Event(export.event(i)));
                }
                continue;
            }
            declined += 1;
            if is_export(trimmed) {
                // An export the reader declined: `decode_line` would try
                // the reader again before the `Value` route it takes.
                decode_line_via_value(line)
                    .into_iter()
                    .for_each(|input| b.decoded(self, input));
            } else {
                decode_line_each(line, |input| b.decoded(self, input));
            }
        }
        if declined * 2 > b.at.len() {
            plan.rest = RESTS;
        }
        self.lines = Some(plan);
        let items = std::mem::take(&mut b.inputs);
        let inputs = Rc::new(Inputs::lines(text.clone(), items));
        self.run_placed(b, &inputs);
    }

    /// An event read in place (its standard fields `std`, its `layout`,
    /// the declared attributes' `values`) into `b`: where only redactions
    /// touch its layout (`read::only_redacted`), its egress's edits made
    /// from what was read, with no record, as `Engine::push_reads` runs
    /// such an event; else its row and record (`Batch::place`). `false`
    /// (`b` as it was) where it is to be decoded.
    fn place_read<'t>(
        &self,
        plan: &Plan,
        b: &mut Batch<'t>,
        std: &Standard<'_>,
        layout: Option<u32>,
        values: &[Option<Scalar<'t>>],
    ) -> bool {
        if let Some(l) = layout.filter(|&l| self.only_redacted.get(l as usize) == Some(&true)) {
            let value = |_, i: usize| values.get(i).copied().flatten();
            if b.egress(l, std.time, |e| self.redacted_edits(plan, l, value, e))
                .is_some()
            {
                return true;
            }
        }
        b.place(plan, std, layout, values)
    }

    /// Runs a batch read (`b`, whose events' inputs are `inputs`): its
    /// records made, the prefilter over its rows, then each event in
    /// order, stretches settled in bulk.
    pub(in crate::runtime) fn run_placed(&mut self, b: Batch<'_>, inputs: &Rc<Inputs>) {
        let Batch {
            mut rows,
            pending,
            at,
            inputs: _,
            times,
            layouts,
            malformed,
            mut edits,
        } = b;
        let n = at.len();
        // Records point at their rows, so those are shared once there is one.
        let shared: Rc<[Slot]> = if pending.is_empty() {
            Rc::new([])
        } else {
            Rc::from(std::mem::take(&mut rows))
        };
        let rows: &[Slot] = if pending.is_empty() { &rows } else { &shared };
        let records: Vec<Decoded> = pending
            .into_iter()
            .map(|p| {
                let (start, end) = p.row;
                let input = InputRef::at(inputs, p.at).expect("every event read has its input");
                let row = Row::InBatch {
                    rows: shared.clone(),
                    start,
                    len: end - start,
                };
                Decoded::Record(Record::in_place(p.layout, p.fields, p.slots, input, row))
            })
            .collect();
        // The prefilter reads each filtered layout's rows: those read in
        // place, and those of the decoded records among them.
        let mut arenas = super::Arenas::new(self.shared.executor.as_ref(), n);
        if self.shared.executor.reads_rows() {
            let mut scratch = Vec::new();
            for (k, a) in at.iter().enumerate() {
                match a {
                    At::Decoded(d) => {
                        if let Some(r) = d.record() {
                            arenas.add_record(k, r, false, &mut scratch);
                        }
                    }
                    At::InPlace {
                        row: Some((start, end)),
                        ..
                    } => arenas.add(k, layouts[k], rows.get(*start..*end)),
                    At::Record(i) => {
                        if let Some(r) = records.get(*i).and_then(Decoded::record) {
                            arenas.add(k, r.layout, r.compact());
                        }
                    }
                    _ => {}
                }
            }
        }
        let arenas = arenas.done();
        self.prefilter(
            n,
            || {
                at.iter()
                    .enumerate()
                    .filter_map(|(k, a)| at_record(a, &records).map(|r| (k, r)))
            },
            &arenas,
        );
        drop(arenas);
        self.out.0.reserve(n + malformed.len());
        self.batch_inputs = Some(inputs.clone());
        self.batch_base = self.out.0.len();
        let mut malformed = malformed.into_iter().peekable();
        let mut k = 0;
        loop {
            while let Some((_, line, reason)) = malformed.next_if(|(pos, ..)| *pos == k) {
                self.flush_quiet();
                self.counters.malformed += 1;
                self.out.push(Output::Malformed { line, reason });
            }
            let (Some(a), Some(&now), Some(&layout)) = (at.get(k), times.get(k), layouts.get(k))
            else {
                break;
            };
            // A stretch stops at the next malformed line, which keeps its
            // place among the outputs.
            let end = malformed.peek().map_or(n, |(pos, ..)| *pos);
            let to = if layout == UNHANDLED || self.bulk.get(layout as usize) == Some(&true) {
                self.run_stretch(&layouts[..end], (&times[..end], false), k)
            } else {
                self.group_stretch(
                    (&layouts[..end], &times[..end], &at[..end]),
                    k,
                    |_, _| 0,
                    |g, _, a| match a {
                        At::InPlace { key, .. } => g.bump_view(*key).is_ok(),
                        a => at_record(a, &records).is_some_and(|r| g.bump(r).is_ok()),
                    },
                )
            };
            if to > k {
                k = to;
                continue;
            }
            match a {
                At::Decoded(d) => self.run_batched(d, now, k),
                At::Record(i) => {
                    if let Some(d) = records.get(*i) {
                        self.run_batched(d, now, k)
                    }
                }
                At::InPlace { .. } => self.run_in_place(inputs, k, now, layout),
                At::Egress(i) => {
                    let e = edits.get_mut(*i).map(std::mem::take).unwrap_or_default();
                    self.run_egress(inputs, k, now, e)
                }
            }
            k += 1;
        }
        self.flush_quiet();
        self.batch_inputs = None;
    }

    /// The event at position `k` of a layout only redactions touch
    /// (`read::only_redacted`), read without a record: as `process_at`
    /// runs an event nothing reads but shaping, whose egress makes `edits`.
    fn run_egress(&mut self, inputs: &Rc<Inputs>, k: usize, now: i64, edits: Edits) {
        self.batch_at = k;
        self.flush_quiet();
        self.event_starts(now);
        self.counters.egressed += 1;
        if edits.is_empty() {
            self.pass_unchanged(k, k + 1);
        } else if let Some(input) = InputRef::at(inputs, k) {
            self.out.0.push(Produced::Egress(Egress { input, edits }));
        }
        self.event_ends(now);
    }

    /// The event at position `k`, read in place, that no stretch settled:
    /// the quiet lane's handling of an event no layout matches, which
    /// needs nothing of it; otherwise decoded from its line and run as
    /// usual.
    fn run_in_place(&mut self, inputs: &Inputs, k: usize, now: i64, layout: u32) {
        if layout == UNHANDLED
            && !self.quiet.is_empty()
            && self.deadlines.first().is_none_or(|(t, ..)| *t > now)
        {
            self.batch_at = k;
            self.run_quiet(None, now, k);
            return;
        }
        let Some(input) = inputs.get(k) else {
            return;
        };
        let d = self.decode_event(input.clone());
        self.run_batched(&d, now, k);
    }
}

/// The record at a batch position, if it is one (`records`: the batch's
/// records read in place).
fn at_record<'r>(a: &'r At<'_>, records: &'r [Decoded]) -> Option<&'r Record> {
    match a {
        At::Decoded(d) => d.record(),
        At::Record(i) => records.get(*i)?.record(),
        At::InPlace { .. } | At::Egress(_) => None,
    }
}

#[cfg(test)]
pub(in crate::runtime) mod tests {
    use super::RESTS;
    use crate::event::{Input, decode_line};
    use crate::runtime::Engine;
    use crate::runtime::Options;
    use crate::runtime::fast::tests::{S, check_with_and_without_lateness, line, program};

    pub(in crate::runtime) const COUNT: &str = "event R { status: int, path: string, code: int? }\n\
                         event M { n: int }\n\
                         event G { path: string?, ok: bool }\n\
                         query errors = R | where status >= 500 | summarize n = count() every 10s | emit metric \"errors\"\n\
                         query ms = M | summarize c = count() by n every 10s | emit metric \"ms\"\n\
                         query gs = G | summarize c = count() by path max 4 every 5s | emit metric \"gs\"";

    /// Lines of every kind the lane meets: read in place (a where + count
    /// layout, events no layout matches), declined to the decoder (another
    /// layout, an escape, a field of the wrong type or missing, a standard
    /// field of another form, an OTLP export), malformed, blank and
    /// comments, out of order too.
    pub(in crate::runtime) fn stream() -> Vec<String> {
        let mut input = Vec::new();
        for k in 0..300i64 {
            let t = k * S / 3 - (k % 7) * S;
            let status = [200, 500, 503, 404][(k % 4) as usize];
            input.push(match k % 13 {
                0 => line("R", t, &format!(r#""status":"{status}","path":"/p""#)),
                1 => line("R", t, r#""status":500,"path":"/a\u0062""#),
                2 => line("R", t, r#""status":"x","path":"/p""#),
                3 => line("R", t, r#""path":"/p""#),
                4 => line("M", t, &format!(r#""n":{}"#, k % 3)),
                5 => line("Other", t, r#""x":{"y":[1,2]}"#),
                12 => line(
                    "G",
                    t,
                    [
                        r#""path":"/a","ok":true"#,
                        r#""path":"/b","ok":false"#,
                        r#""path":null,"ok":true"#,
                        r#""ok":true"#,
                        r#""path":"/\u0061","ok":true"#,
                        r#""path":7,"ok":true"#,
                        r#""path":"/c","ok":"yes""#,
                        r#""path":"/d","ok":true"#,
                        r#""path":"/e","ok":true"#,
                    ][(k / 13 % 9) as usize],
                ),
                6 => format!(
                    r#"{{"event":"R","time":{t},"severity":"WARN","status":500,"path":"/w"}}"#
                ),
                7 => "{\"event\":\"R\",\"status\":".to_string(),
                8 => "# a comment".to_string(),
                9 => "  ".to_string(),
                // The last nanosecond of a window.
                11 => line("R", (k / 13) * 10 * S - 1, r#""status":500,"path":"/edge""#),
                _ => line(
                    "R",
                    t,
                    &format!(
                        r#""status":{status},"path":"/p{}","code":{},"thread.id":{}"#,
                        k % 5,
                        if k % 2 == 0 {
                            "null".to_string()
                        } else {
                            k.to_string()
                        },
                        k % 4
                    ),
                ),
            });
        }
        input.push(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"R","timeUnixNano":"1795341700000000000","attributes":[{"key":"status","value":{"intValue":"500"}},{"key":"path","value":{"stringValue":"/o"}}]}]}]}]}"#.to_string());
        input
    }

    /// Read in place or not, in batches of every size, the outputs and
    /// counters are the general path's.
    #[test]
    fn lines_read_in_place_give_the_general_paths_outputs() {
        check_with_and_without_lateness(
            COUNT,
            &stream(),
            2 * S,
            &["malformed", "schema_mismatches", "unhandled", "late_events"],
        );
    }

    /// A grouped count read in place, dense enough that every kind of key
    /// (a text, absent, null, escaped, of the wrong type, past `max`) meets
    /// its checked-out group within a stretch.
    #[test]
    fn grouped_counts_read_in_place_give_the_general_paths_outputs() {
        let paths = [
            r#""path":"/a""#,
            r#""path":"/b""#,
            r#""path":null"#,
            r#""v":1"#,
            r#""path":"/\u0061""#,
            r#""path":7"#,
            r#""path":"/a""#,
            r#""path":"/c""#,
            r#""path":"/d""#,
            r#""path":"/e""#,
        ];
        let input: Vec<String> = (0..2000i64)
            .map(|k| {
                let t = k * S / 20 - (k % 11) * S / 4;
                let ok = if k % 17 == 0 { "\"no\"" } else { "true" };
                line(
                    "G",
                    t,
                    &format!(r#"{},"ok":{ok}"#, paths[(k * 7 % 10) as usize]),
                )
            })
            .collect();
        check_with_and_without_lateness(COUNT, &input, S, &["schema_mismatches", "late_events"]);
    }

    /// An event read in place and only passed through is not decoded until
    /// someone reads it, and is then the event decoding its line gives.
    /// (Under the interpreter, which has no batch prefilter, a count with
    /// a `where` takes its events one by one; without, a stretch settles
    /// them, all but those at a window's turn: the one that closes it and
    /// the one that opens the next window's tally.)
    #[test]
    fn events_read_in_place_are_decoded_only_when_asked() {
        let src = "event R { status: int, path: string }\n\
                   query all = R | summarize n = count() every 10s | emit metric \"all\"";
        let input: Vec<String> = (0..100i64)
            .map(|k| match k % 3 {
                0 => line("Other", k * S, r#""x":1"#),
                _ => line("R", k * S, &format!(r#""status":{},"path":"/p""#, 200 + k)),
            })
            .collect();
        let mut e = Engine::new(program(src), Options::default());
        e.push_lines(input.iter().map(String::as_str));
        let (mut passed, mut decoded) = (0, 0);
        for produced in e.drain_lazy() {
            let crate::Produced::Unchanged(run) = produced else {
                continue;
            };
            decoded += run.decoded();
            for (event, l) in run.events().zip(&input[passed..]) {
                assert_eq!(decode_line(l), vec![Input::Event((**event).clone())]);
            }
            assert_eq!(run.decoded(), run.len());
            passed += run.len();
        }
        assert_eq!(passed, input.len());
        // Two a window at most: 100 seconds of events, windows of 10
        // seconds; 66 events of `R`.
        assert!(
            decoded <= 22,
            "{decoded} decoded before they were asked for"
        );
    }

    /// Events of layouts no stretch settles (a machine keyed by a field
    /// and one by thread, shaping, a handler that reads an attribute the
    /// layout does not declare and the body) are read in place into
    /// records: outputs and counters are the general path's, with lines of
    /// every kind mixed in (escaped, a field missing, null or of the wrong
    /// type, another standard field's form, malformed, late).
    #[test]
    fn records_read_in_place_give_the_general_paths_outputs() {
        let (src, input) = records_case();
        check_with_and_without_lateness(
            src,
            &input,
            2 * S,
            &[
                "malformed",
                "schema_mismatches",
                "unhandled",
                "suppressed",
                "derived",
            ],
        );
    }

    /// A program whose events become records (no stretch settles them),
    /// and lines for it of every kind.
    pub(in crate::runtime) fn records_case() -> (&'static str, Vec<String>) {
        let src = "event Start { file: string, size: int? }\n\
                   event End { file: string, ok: bool }\n\
                   event Login { user: string, email: string, ip: string?, level: float }\n\
                   redact Login.user with hash\n\
                   redact Login.email with mask\n\
                   redact Login.ip with drop\n\
                   redact Login.body with mask\n\
                   suppress Login when level > 0.9\n\
                   machine files per event.file max 3 {\n state Idle\n state Busy { since: timestamp }\n\
                   on Start in Idle -> Busy { since = event.time }\n\
                   on End in Busy when event.ok -> Idle { emit log Done { file: event.file, took: event.time - since } }\n\
                   after 4s in Busy -> Idle { emit log Stuck { file: \"?\" } }\n}\n\
                   machine threads per event.thread_id max 8 {\n state Idle\n state Busy\n\
                   on Start in Idle -> Busy\n on End in Busy -> Idle\n}\n\
                   processor tag { on Login when to_string(event.attrs[\"tag\"]) == \"x\" { emit log Tagged { user: event.user } } }";
        let mut input = Vec::new();
        for k in 0..400i64 {
            let t = k * S / 4 - (k % 9) * S / 3;
            let f = format!("/f{}", k % 5);
            input.push(match k % 17 {
                0 => line("Start", t, &format!(r#""file":"{f}","size":{k},"thread.id":{}"#, k % 6)),
                1 => line("Start", t, &format!(r#""file":"{f}","size":null"#)),
                2 => line("End", t, &format!(r#""file":"{f}","ok":{}"#, k % 3 != 0)),
                3 => line("End", t, r#""file":"/f\u0031","ok":true"#),
                4 => line("End", t, r#""file":"/f1","ok":"yes""#),
                5 => line("Start", t, r#""size":3"#),
                6 => line(
                    "Login",
                    t,
                    &format!(
                        r#""user":"u{k}","email":"u{k}@example.com","ip":"10.0.0.{}","level":0.{},"body":"hello u{k}","tag":"{}""#,
                        k % 256,
                        k % 10,
                        if k % 2 == 0 { "x" } else { "y" }
                    ),
                ),
                7 => line("Login", t, r#""user":"a","email":"a@b","ip":null,"level":1"#),
                8 => line("Login", t, r#""user":"a","email":"a@b","level":"high""#),
                9 => format!(
                    r#"{{"event":"Login","time":{},"severity":"WARN","user":"w","email":"w@x","level":0.5,"attributes":{{"tag":"x"}}}}"#,
                    1_795_341_600_000_000_000 + t
                ),
                10 => "{\"event\":\"End\",".to_string(),
                11 => line("Other", t, r#""file":"/f1""#),
                _ => line(
                    "Login",
                    t,
                    &format!(r#""user":"é{k}","email":"{k}@ü.example","level":0.{}"#, k % 7),
                ),
            });
        }
        (src, input)
    }

    /// A record read in place whose egress only edits it is not decoded:
    /// its egress hands over the edits and a position, and the event is
    /// decoded from its line, the same as decoding the line gives, when
    /// someone reads it.
    #[test]
    fn records_read_in_place_are_decoded_only_when_asked() {
        let src = "event Login { user: string, ip: string }\n\
                   redact Login.user with hash\n\
                   redact Login.ip with drop";
        let input: Vec<String> = (0..50i64)
            .map(|k| {
                line(
                    "Login",
                    k * S,
                    &format!(r#""user":"u{k}","ip":"10.0.0.{k}""#),
                )
            })
            .collect();
        let mut e = Engine::new(program(src), Options::default());
        e.push_lines(input.iter().map(String::as_str));
        let produced = e.drain_lazy();
        assert_eq!(produced.len(), input.len());
        for (p, l) in produced.iter().zip(&input) {
            edited_and_undecoded(p, l, 2);
        }
    }

    /// `p` is an egress with `edits` edits whose event is not decoded
    /// yet, and is `line`'s event once asked for.
    pub(in crate::runtime) fn edited_and_undecoded(p: &crate::Produced, line: &str, edits: usize) {
        let crate::Produced::Egress(egress) = p else {
            panic!("expected an edited egress, got {p:?}");
        };
        assert_eq!(egress.edits.len(), edits);
        assert!(
            !egress.input.is_decoded(),
            "decoded before it was asked for"
        );
        assert_eq!(
            decode_line(line),
            vec![Input::Event((**egress.input.event()).clone())]
        );
        assert!(egress.input.is_decoded());
    }

    /// OTLP/JSON exports, generated and mutated (escapes, fields missing,
    /// null or of the wrong type, other time and severity forms, repeated
    /// keys, nested values, truncations, garbage), read in place or not,
    /// in batches of every size: the general path's outputs and counters.
    /// `R` is counted in bulk, `M` runs as records whose egress is shaped
    /// (so its events are decoded when written), the rest pass through.
    #[test]
    fn exports_read_in_place_give_the_general_paths_outputs() {
        use crate::event::otlp_json::tests::{Rng, export_line};
        let src = "event R { status: int, path: string }\n\
                   event M { status: int?, path: string? }\n\
                   query errors = R | where status >= 500 | summarize n = count() every 10s | emit metric \"errors\"\n\
                   redact M.path with mask";
        let mut rng = Rng(7);
        let mut input = Vec::new();
        for k in 0..300 {
            let line = export_line(&mut rng);
            if k % 5 == 4 {
                let mut chars: Vec<char> = line.chars().collect();
                let at = rng.below(chars.len());
                match k % 3 {
                    0 => chars.truncate(at),
                    1 => chars.insert(at, '\\'),
                    _ => chars[at] = '"',
                }
                input.push(chars.into_iter().collect());
            } else {
                input.push(line);
            }
        }
        check_with_and_without_lateness(src, &input, 2 * S, &["malformed", "unhandled"]);
    }

    /// The records of an export whose egress only edits them stay
    /// undecoded until someone reads one; then each is its record's event.
    #[test]
    fn export_records_are_decoded_only_when_asked() {
        let src = "event Login { user: string }\nredact Login.user with drop";
        let mut e = Engine::new(program(src), crate::runtime::Options::default());
        let record = |k: i64| {
            format!(
                r#"{{"eventName":"Login","timeUnixNano":"{}","attributes":[{{"key":"user","value":{{"stringValue":"u{k}"}}}}]}}"#,
                k * S
            )
        };
        let line = format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeLogs":[{{"logRecords":[{},{},{}]}}]}}]}}"#,
            record(1),
            record(2),
            record(3)
        );
        e.push_lines([line.as_str()]);
        let produced = e.drain_lazy();
        assert_eq!(produced.len(), 3);
        for p in &produced {
            let crate::Produced::Egress(egress) = p else {
                panic!("expected an edited egress, got {p:?}");
            };
            assert!(
                !egress.input.is_decoded(),
                "decoded before it was asked for"
            );
        }
        let events: Vec<Input> = produced
            .iter()
            .filter_map(|p| match p {
                crate::Produced::Egress(egress) => {
                    Some(Input::Event((**egress.input.event()).clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(events, decode_line(&line));
    }

    /// Events of a layout only redactions touch (a hash, a mask and a
    /// drop, nothing reading it) leave with their edits made from what was
    /// read, no record built, from flat lines and from OTLP/JSON export
    /// records alike: the general path's outputs and counters, with fields
    /// missing, null, of the wrong type, escaped, empty and non-ASCII, and
    /// lines of other kinds between.
    #[test]
    fn layouts_of_redactions_only_read_in_place_give_the_general_paths_outputs() {
        // `R` first: Login's fields are not at their own indices among the
        // keys read.
        let src = "event R { status: int }\n\
                   event Login { user: string, email: string, ip: string?, ok: bool }\n\
                   redact Login.user with hash\n\
                   redact Login.email with mask\n\
                   redact Login.ip with drop\n\
                   query errors = R | where status >= 500 | summarize n = count() every 10s | emit metric \"errors\"";
        // (flat fields, OTLP attributes) of each kind of Login.
        let kinds: [(&str, &str); 10] = [
            (
                r#""user":"u1","email":"u1@example.com","ip":"10.0.0.1","ok":true"#,
                r#"{"key":"user","value":{"stringValue":"u1"}},{"key":"email","value":{"stringValue":"u1@example.com"}},{"key":"ip","value":{"stringValue":"10.0.0.1"}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""user":"é日","email":"ü@ß.example","ip":"::1","ok":false"#,
                r#"{"key":"user","value":{"stringValue":"é日"}},{"key":"email","value":{"stringValue":"ü@ß.example"}},{"key":"ip","value":{"stringValue":"::1"}},{"key":"ok","value":{"boolValue":false}}"#,
            ),
            (
                r#""user":"u","email":"a","ip":null,"ok":true"#,
                r#"{"key":"user","value":{"stringValue":"u"}},{"key":"email","value":{"stringValue":"a"}},{"key":"ip","value":null},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""user":"","email":"","ok":true"#,
                r#"{"key":"user","value":{"stringValue":""}},{"key":"email","value":{"stringValue":""}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""email":"e@x","ip":"1.2.3.4","ok":true"#,
                r#"{"key":"email","value":{"stringValue":"e@x"}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""user":"u","email":"e@x","ok":"yes""#,
                r#"{"key":"user","value":{"stringValue":"u"}},{"key":"email","value":{"stringValue":"e@x"}},{"key":"ok","value":{"stringValue":"yes"}}"#,
            ),
            (
                r#""user":"u\u0031","email":"e\"@x","ok":true"#,
                r#"{"key":"user","value":{"stringValue":"u\u0031"}},{"key":"email","value":{"stringValue":"e\"@x"}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""user":5,"email":"e@x","ok":true"#,
                r#"{"key":"user","value":{"intValue":"5"}},{"key":"email","value":{"stringValue":"e@x"}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
            (
                r#""user":"u","email":"e@x","ip":"1.1.1.1","ok":true,"other":{"x":[1,2.5]}"#,
                r#"{"key":"user","value":{"stringValue":"u"}},{"key":"email","value":{"stringValue":"e@x"}},{"key":"ip","value":{"stringValue":"1.1.1.1"}},{"key":"ok","value":{"boolValue":true}},{"key":"other","value":{"doubleValue":2.5}}"#,
            ),
            (
                r#""user":"u","user":"v","email":"e@x","ok":true"#,
                r#"{"key":"user","value":{"stringValue":"u"}},{"key":"user","value":{"stringValue":"v"}},{"key":"email","value":{"stringValue":"e@x"}},{"key":"ok","value":{"boolValue":true}}"#,
            ),
        ];
        let record = |t: i64, name: &str, attrs: &str| {
            format!(
                r#"{{"timeUnixNano":"{}","eventName":"{name}","attributes":[{attrs}]}}"#,
                1_795_341_600_000_000_000 + t
            )
        };
        let mut input = Vec::new();
        for k in 0..240i64 {
            let t = k * S / 3 - (k % 5) * S;
            let (flat, attrs) = kinds[(k % 10) as usize];
            input.push(match k % 13 {
                3 => line("R", t, &format!(r#""status":{}"#, 400 + k % 200)),
                7 => "{\"event\":\"Login\",".to_string(),
                11 => line("Other", t, r#""user":"u""#),
                _ => line("Login", t, flat),
            });
            if k % 6 == 0 {
                let records: Vec<String> = (0..12i64)
                    .map(|j| {
                        let (_, attrs) = kinds[((k + j) % 10) as usize];
                        let name = if j % 5 == 4 { "R" } else { "Login" };
                        record(t + j, name, attrs)
                    })
                    .chain([record(t, "Login", attrs)])
                    .collect();
                input.push(format!(
                    r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
                    records.join(",")
                ));
            }
        }
        check_with_and_without_lateness(
            src,
            &input,
            2 * S,
            &["malformed", "schema_mismatches", "unhandled", "egressed"],
        );
    }

    /// A batch whose lines the lane mostly declines makes the next
    /// [`RESTS`] batches skip it; then it is tried again.
    #[test]
    fn the_lane_rests_after_a_batch_it_mostly_declined() {
        // Declined: an escape in a field read.
        let ms: Vec<String> = (0..10i64)
            .map(|k| line("R", k * S, r#""status":500,"path":"/\u0070""#))
            .collect();
        let rs: Vec<String> = (0..10i64)
            .map(|k| line("R", k * S, r#""status":500,"path":"/p""#))
            .collect();
        let mut e = Engine::new(program(COUNT), Options::default());
        let rest = |e: &Engine| e.lines.as_ref().map(|p| p.rest);
        e.push_lines(rs.iter().map(String::as_str));
        assert_eq!(rest(&e), Some(0));
        e.push_lines(ms.iter().map(String::as_str));
        assert_eq!(rest(&e), Some(RESTS));
        for left in (0..RESTS).rev() {
            e.push_lines(rs.iter().map(String::as_str));
            assert_eq!(rest(&e), Some(left));
        }
        e.push_lines(rs.iter().map(String::as_str));
        assert_eq!(rest(&e), Some(0));
        assert_eq!(e.counters.events, 10 * (u64::from(RESTS) + 3));
    }
}
