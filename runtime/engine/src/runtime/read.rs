//! `Engine::push_read`: one event its producer reads in place from its own
//! encoding ([`ReadInPlace`]; the agent: an OTLP log record's bytes as
//! received), without building its [`crate::event::InputEvent`].
//!
//! Building an event (a map of its attributes, a string per key and text
//! value) and then its record costs far more than most programs spend on
//! it. So the engine asks the producer for the standard fields and the
//! attributes its layouts declare, borrowed from the source, and builds
//! the record from them as the line lane does from a line
//! (`lines::push_row`: its values, and its slot row pointing into the
//! source, which the record keeps alive). The event is decoded only when
//! something reads what the record does not hold. An event of a layout the
//! lane does not read (a `dyn` or map field), one the producer does not
//! read in place, or one whose fields do not make its layout's record (a
//! field missing or of the wrong type) is decoded whole and run as
//! `Engine::push_event` runs it: decoding is the one definition of what an
//! event means, and says what is wrong with it.
//!
//! An event of a layout nothing but redactions touches (no query, machine
//! or handler reads it, and every shaping rule of it is a `redact` of a
//! declared field: [`only_redacted`]) needs no record at all: its row is
//! checked as the record's would be (a field missing or of the wrong type
//! sends it the general way, which reports the mismatch), and its egress's
//! edits are made from the values read, by the same `redact_field` the
//! general path runs. What such a program does to a received record is
//! then a few edits, as an agent running a redaction over every record
//! needs.

use std::borrow::Cow;
use std::rc::Rc;

use dtc_ir::{Redaction, ShapeRule, Type};
use smallvec::SmallVec;

use super::lines::{Batch, Plan, field, push_row};
use super::{Decoded, Engine, push_redaction, redaction_of};
use crate::event::{KeyIndex, ReadInPlace, Scalar};
use crate::output::{Edits, Egress, InputRef, Inputs, Produced, ReadAt, Text};
use crate::slots::STD_SLOTS;
use crate::value::{Record, Row, Typed, Value};

/// Attributes a layout declares, read without an allocation.
type Values<'a> = SmallVec<[Option<Scalar<'a>>; 8]>;

/// What [`Engine::edits_read`] did with an event read in place.
#[derive(Debug, PartialEq)]
pub enum ReadEgress {
    /// It was run, and leaves with these edits (none: as it came).
    Egress(Edits),
    /// It was not run: push it with [`Engine::push_read`].
    Push,
}

/// A layout whose events only redactions touch, and whose redactions
/// all drop fields ([`Engine::removals`]): what a producer that finds its
/// fields itself needs to run its events without the engine, but for
/// [`Engine::removed_found`]. Its event's edits are always the same: each
/// field `removed` removed (every attribute of its key), where every
/// declared field makes its row ([`Removals::makes_row`]); an event of it
/// that does not is run by [`Engine::edits_found`] or pushed, as any.
#[derive(Debug, Clone)]
pub struct Removals {
    /// Its wire name, as bytes.
    pub name: Box<[u8]>,
    /// Its declared fields' keys, and per field whether its text is read
    /// (as [`crate::event::Asked`]) and whether a redaction removes it.
    pub keys: KeyIndex,
    pub texts: Box<[bool]>,
    pub removed: Box<[bool]>,
    /// The same as bits, for a layout of at most 64 declared fields.
    pub bits: Option<RemovalBits>,
    types: Box<[Type]>,
}

/// A [`Removals`] as one bit per declared field, by index: enough to say
/// whether an event makes its row from where its fields are and whether
/// each is a string, without reading their values, for most events (a
/// text field found as a string, an optional one absent). Why: reading
/// every found value into a [`Scalar`] and checking it against its type
/// cost a removal about half its work per event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemovalBits {
    /// Every declared field.
    pub all: u64,
    /// Fields any string makes (their type is a text, optional or not).
    pub strings: u64,
    /// Fields an event may lack (optional).
    pub optional: u64,
    /// Fields removed.
    pub removed: u64,
    /// Fields whose text is read ([`Removals::texts`]).
    pub texts: u64,
}

impl Removals {
    /// Whether `values` (of the declared fields, by index; `None`: absent,
    /// as [`ReadInPlace::read`] reads them) make the layout's row.
    #[inline]
    pub fn makes_row(&self, values: &[Option<Scalar<'_>>]) -> bool {
        values.len() == self.types.len()
            && (values.iter().zip(&self.types)).all(|(v, ty)| field(*v, ty).is_some())
    }
}

/// Per layout of a program read in place whose events only
/// redactions touch and whose redactions all drop fields, its
/// [`Removals`] (`lines::Plan::removals`).
fn removals(
    redactions: &[Option<super::RedactionPlan>],
    only_redacted: &[bool],
    plan: &Plan,
) -> Vec<Removals> {
    let mut all = Vec::new();
    for (name, l) in &plan.names {
        let l = *l as usize;
        let (Some(Some(fields)), Some(Some(keys)), Some(texts), Some(Some(redactions))) = (
            plan.fields.get(l),
            plan.field_index.get(l),
            plan.field_texts.get(l),
            redactions.get(l),
        ) else {
            continue;
        };
        if only_redacted.get(l) != Some(&true)
            || redactions.iter().any(|&(_, m)| m != Redaction::Drop)
        {
            continue;
        }
        let mut removed = vec![false; fields.len()];
        for &(slot, _) in redactions.iter() {
            if let Some(r) = removed.get_mut(slot as usize) {
                *r = true;
            }
        }
        let bits = (fields.len() <= 64).then(|| {
            let of = |f: &dyn Fn(usize) -> bool| {
                (0..fields.len())
                    .filter(|&j| f(j))
                    .fold(0, |b, j| b | 1 << j)
            };
            RemovalBits {
                all: of(&|_| true),
                strings: of(&|j| *fields[j].1.inner() == Type::Str),
                optional: of(&|j| fields[j].1.is_opt()),
                removed: of(&|j| removed[j]),
                texts: of(&|j| texts.get(j) != Some(&false)),
            }
        });
        all.push(Removals {
            name: name.clone(),
            keys: keys.clone(),
            texts: texts.clone(),
            removed: removed.into(),
            bits,
            types: fields.iter().map(|(_, ty)| ty.clone()).collect(),
        });
    }
    all
}

/// What an event read in place is run as.
enum Read {
    /// Its record (or why it has none), and its time.
    Run(Decoded, i64),
    /// An event of a layout only redactions touch: its egress's edits and
    /// its time.
    Egress(Edits, i64),
}

/// Per layout of `e`'s program, whether its events only egress, redacted
/// or not: no query, machine or handler reads them, and each shaping rule
/// of the layout is a `redact` of a declared field (`Engine::redactions`).
pub(super) fn only_redacted(e: &Engine) -> Vec<bool> {
    let p = &e.shared.program;
    (0..p.events.len())
        .map(|l| {
            let read = e.routes.get(l).is_none_or(|r| {
                !r.queries.is_empty() || !r.machines.is_empty() || !r.handlers.is_empty()
            });
            let shaped = p
                .shaping
                .iter()
                .any(|r: &ShapeRule| r.event() as usize == l);
            let redactions = e.redactions.get(l).is_some_and(Option::is_some);
            !read && (!shaped || redactions)
        })
        .collect()
}

/// Narrows what `e`'s events read in place are asked (`lines::Plan::texts`,
/// `standard`) to what the engine reads of them: where only redactions
/// read a layout ([`only_redacted`]), its events are run from their name,
/// time and declared fields alone, and of a field of a text type only its
/// kind says whether it makes the row (`value::typed`), unless a redaction
/// hashes or masks it. A key another layout declares is asked its text
/// where any of them reads it.
pub(super) fn narrow(e: &mut Engine) {
    let Some(plan) = e.lines.as_mut() else {
        return;
    };
    let mut texts = vec![false; plan.wanted.len()];
    for (l, fields) in plan.fields.iter().enumerate() {
        let Some(fields) = fields else {
            continue;
        };
        let only = e.only_redacted.get(l) == Some(&true);
        let redactions = e.redactions.get(l).and_then(Option::as_ref);
        for (slot, (i, ty)) in fields.iter().enumerate() {
            let read = redactions.is_some_and(|r| {
                r.iter()
                    .any(|&(s, method)| s as usize == slot && method != Redaction::Drop)
            });
            let kind_only = only && !read && matches!(ty.inner(), Type::Str | Type::Bytes);
            if let Some(t) = texts.get_mut(*i) {
                *t |= !kind_only;
            }
        }
    }
    plan.field_texts = plan
        .fields
        .iter()
        .map(|f| f.iter().flatten().map(|(i, _)| texts[*i]).collect())
        .collect();
    plan.texts = texts;
    plan.standard = !e.only_redacted.iter().all(|&only| only);
    plan.names = e
        .by_wire
        .iter()
        .map(|(name, &l)| (name.as_bytes().into(), l))
        .collect();
    plan.field_index = e.field_keys.iter().map(|k| KeyIndex::new(k)).collect();
    plan.removals = removals(&e.redactions, &e.only_redacted, plan).into();
}

impl Engine {
    /// Feeds one event its producer reads in place: the same outputs as
    /// [`Engine::push_event`] of its decoded event.
    pub fn push_read<R: ReadInPlace + 'static>(&mut self, source: R) {
        let read = Rc::new(ReadAt::new(source));
        let (d, now) = match self.read_record(&read) {
            Some(Read::Run(d, now)) => (d, now),
            Some(Read::Egress(edits, now)) => {
                // As `process_at` runs an event nothing reads but shaping.
                self.event_starts(now);
                self.counters.egressed += 1;
                let input = InputRef::read(read);
                self.out.0.push(Produced::Egress(Egress { input, edits }));
                self.event_ends(now);
                return;
            }
            None => {
                let d = self.decode_event(read.decoded().clone());
                let now = d.input().time;
                (d, now)
            }
        };
        self.process_at(&d, now, None);
    }

    /// Whether every event this engine's program sees is of no layout or
    /// of a layout only redactions touch ([`only_redacted`]), and it reads
    /// events in place: then nothing reads an event (no query, machine or
    /// handler, so no window or timeout), and [`Engine::edits_read`] runs
    /// every event whose fields make its layout's row.
    pub fn only_redactions(&self) -> bool {
        self.lines.is_some() && self.only_redacted.iter().all(|&only| only)
    }

    /// Runs one event read in place, borrowed, where it needs no record
    /// (of no layout, or of a layout only redactions touch whose fields
    /// make its row), and gives its egress's edits (none: it leaves as it
    /// came) instead of producing its egress: the counters move, and any
    /// timeout or window its time ends is produced, as [`Engine::push_read`]
    /// moves and produces them. Any other event is not run:
    /// [`ReadEgress::Push`] says to push it with `push_read`.
    ///
    /// Why: an agent running a redaction over every record it receives
    /// then makes no `Rc` of the record, no egress item to drain, and
    /// applies the edits as it writes its export.
    pub fn edits_read<R: ReadInPlace>(&mut self, source: &R) -> ReadEgress {
        let Some(plan) = self.lines.as_ref() else {
            return ReadEgress::Push;
        };
        let mut values: Values<'_> = SmallVec::from_elem(None, plan.wanted.len());
        let Some(std) = source.read(&plan.asked(), &mut values) else {
            return ReadEgress::Push;
        };
        let now = std.time;
        let edits = match std.name.and_then(|n| self.by_wire.get(n)) {
            // As `process_at` runs an unhandled event.
            None => {
                self.event_starts(now);
                self.counters.unhandled += 1;
                Edits::new()
            }
            Some(&l) if self.only_redacted.get(l as usize) == Some(&true) => {
                let mut edits = Edits::new();
                match self.redacted_edits(
                    plan,
                    l,
                    |_, i| values.get(i).copied().flatten(),
                    &mut edits,
                ) {
                    Some(()) => {
                        self.event_starts(now);
                        edits
                    }
                    None => return ReadEgress::Push,
                }
            }
            Some(_) => return ReadEgress::Push,
        };
        self.counters.egressed += 1;
        self.event_ends(now);
        ReadEgress::Egress(edits)
    }

    /// [`Engine::edits_read`] of an event whose producer finds its
    /// declared fields itself once told its layout's: its name (`None`:
    /// it has none) and time, and `find`, which writes the value of each
    /// declared field of the layout named (`keys`, in the layout's order,
    /// and whether its text is read, as [`crate::event::Asked`] says) into
    /// `values` (`None`: absent; as [`ReadInPlace::read`] would read them),
    /// or declines (`None`). True when the event was run, its egress's
    /// edits appended to `edits`; false (`edits` as it was) where it is to
    /// be pushed with [`Engine::push_read`], as [`ReadEgress::Push`] says.
    ///
    /// Why: an agent running a redaction over every record then walks a
    /// record's attributes once, comparing their keys with its layout's
    /// few, and makes nothing else of it: no standard fields, no values
    /// of keys other layouts declare; and its edits stay in one buffer
    /// rather than move (about 150 bytes) through each caller.
    pub fn edits_found<'a>(
        &mut self,
        name: Option<&[u8]>,
        now: i64,
        find: impl FnOnce(&KeyIndex, &[bool], &mut [Option<Scalar<'a>>]) -> Option<()>,
        edits: &mut Edits,
    ) -> bool {
        self.found(name, now, find, |keys, room, slot, text| {
            push_redaction(keys, room, slot, text, edits)
        })
    }

    /// [`Engine::edits_found`] with the edits given by declared field, as
    /// `redact(slot, text)` in rule order (`None`: the field removed, else
    /// its value replaced by `text`), rather than made: the producer, who
    /// found the fields, applies them where it found them (the agent cuts
    /// a record's bytes by the attributes `find` matched) without a key
    /// cloned, compared again or dropped. `redact` is called only once the
    /// event is run (all its fields checked), so nothing is to be undone.
    pub fn redactions_found<'a>(
        &mut self,
        name: Option<&[u8]>,
        now: i64,
        find: impl FnOnce(&KeyIndex, &[bool], &mut [Option<Scalar<'a>>]) -> Option<()>,
        mut redact: impl FnMut(u32, Option<Text>),
    ) -> bool {
        self.found(name, now, find, |_, _, slot, text| redact(slot, text))
    }

    /// The layouts whose events a producer may run itself, by
    /// [`Removals`], then telling [`Engine::removed_found`]: none where
    /// the lanes are off (`Engine::general`, the reference).
    pub fn removals(&self) -> Rc<[Removals]> {
        match &self.lines {
            Some(plan) => plan.removals.clone(),
            None => Rc::from([]),
        }
    }

    /// An event of one of [`Engine::removals`]' layouts, at `now`, that
    /// its producer ran by it (every declared field makes its row, its
    /// removed fields cut): what [`Engine::edits_found`] does beside its
    /// edits, so that counters, timeouts and windows move as they would.
    pub fn removed_found(&mut self, now: i64) {
        self.event_starts(now);
        self.counters.egressed += 1;
        self.event_ends(now);
    }

    fn found<'a>(
        &mut self,
        name: Option<&[u8]>,
        now: i64,
        find: impl FnOnce(&KeyIndex, &[bool], &mut [Option<Scalar<'a>>]) -> Option<()>,
        mut redact: impl FnMut(&[Rc<str>], usize, u32, Option<Text>),
    ) -> bool {
        let Some(plan) = self.lines.as_ref() else {
            return false;
        };
        let layout = name.map(|n| plan.names.iter().find(|(w, _)| **w == *n).map(|&(_, l)| l));
        match layout {
            // As `process_at` runs an unhandled event.
            None | Some(None) => {
                self.event_starts(now);
                self.counters.unhandled += 1;
            }
            Some(Some(l)) if self.only_redacted.get(l as usize) == Some(&true) => {
                let (Some(Some(_)), Some(Some(keys)), Some(texts)) = (
                    plan.fields.get(l as usize),
                    plan.field_index.get(l as usize),
                    plan.field_texts.get(l as usize),
                ) else {
                    return false;
                };
                // On the stack where they fit (a `SmallVec` made them at
                // about 60 instructions an event).
                let mut inline: [Option<Scalar<'a>>; 8] = [None; 8];
                let mut spilled = Vec::new();
                let values = match inline.get_mut(..keys.keys().len()) {
                    Some(values) => values,
                    None => {
                        spilled.resize(keys.keys().len(), None);
                        &mut spilled[..]
                    }
                };
                if find(keys, texts, values).is_none() {
                    return false;
                }
                let value = |j: usize, _| values.get(j).copied().flatten();
                let (keys, room) = self.edit_room(l);
                let sink = |slot, text| redact(keys, room, slot, text);
                if self.redacted(plan, l, value, sink).is_none() {
                    return false;
                }
                self.event_starts(now);
            }
            Some(Some(_)) => return false,
        }
        self.counters.egressed += 1;
        self.event_ends(now);
        true
    }

    /// Feeds a batch of events their producer reads in place, in order:
    /// the same outputs as [`Engine::push_read`] of each (and so as
    /// [`Engine::push_event`] of each decoded event), run as the line lane
    /// runs a batch of lines (`lines::push_lines_in_place`): slot rows
    /// built into the batch's arena, the executor's prefilter over the
    /// batch, records only for the layouts no stretch settles, no `Rc`
    /// per event (the batch's inputs hold the sources).
    pub fn push_reads<R: ReadInPlace + 'static>(&mut self, sources: impl IntoIterator<Item = R>) {
        // Lanes off (`Engine::general`): the reference takes them one by
        // one. So does an executor without a batch prefilter (the
        // interpreter): an event of a filtered count that no stretch
        // settles would be decoded whole here, where `push_read` builds
        // its record from what was read (where + count from protobuf:
        // 10,684 instructions a record in batches, 4,917 one by one).
        if self.lines.is_none() || !self.shared.executor.reads_rows() {
            sources.into_iter().for_each(|s| self.push_read(s));
            return;
        }
        let Some(plan) = self.lines.take() else {
            return;
        };
        // The sources first, where they stay: the rows point into them.
        let reads: Rc<Vec<ReadAt<R>>> = Rc::new(sources.into_iter().map(ReadAt::new).collect());
        let inputs = Rc::new(Inputs::reads(reads.clone()));
        let mut b = Batch::new(&plan, reads.len());
        let mut values: Values<'_> = SmallVec::from_elem(None, plan.wanted.len());
        for read in reads.iter() {
            values.iter_mut().for_each(|v| *v = None);
            match self.read_into(&plan, read, &mut values, &mut b) {
                Some(()) => {}
                None => b.decoded_event(self, read.decoded().clone()),
            }
        }
        self.lines = Some(plan);
        self.run_placed(b, &inputs);
    }

    /// One event of a batch read in place, into `b`; `None` (`b` as it
    /// was) where it is to be decoded whole (see the module's doc).
    fn read_into<'a, R: ReadInPlace>(
        &self,
        plan: &Plan,
        read: &'a ReadAt<R>,
        values: &mut Values<'a>,
        b: &mut Batch<'a>,
    ) -> Option<()> {
        let std = read.source.read(&plan.asked(), values)?;
        let Some(&l) = std.name.and_then(|n| self.by_wire.get(n)) else {
            return b.place(plan, &std, None, values).then_some(());
        };
        if self.only_redacted.get(l as usize) == Some(&true) {
            return b.egress(l, std.time, |e| {
                self.redacted_edits(plan, l, |_, i| values.get(i).copied().flatten(), e)
            });
        }
        b.place(plan, &std, Some(l), values).then_some(())
    }

    /// The edits of the egress of an event of layout `l`, which only
    /// redactions touch (`only_redacted`), from what was read of it
    /// (`value` of each declared field, by its index among the layout's
    /// and in the plan's `wanted`), into `edits`: its fields checked as
    /// its record's would be (`None`: it does not make the record, or the
    /// lane does not read its layout, and is to be decoded), and not kept.
    /// Its standard fields are not checked: only a text past 4 GiB fails
    /// to make a row, and the record is then run another way with the
    /// same egress.
    fn redacted<'v>(
        &self,
        plan: &Plan,
        l: u32,
        value: impl Fn(usize, usize) -> Option<Scalar<'v>>,
        mut redact: impl FnMut(u32, Option<Text>),
    ) -> Option<()> {
        let fields = plan.fields.get(l as usize)?.as_ref()?;
        let redactions = self.redactions.get(l as usize)?.as_deref().unwrap_or(&[]);
        // The values are kept only where a redaction reads one (a drop
        // does not).
        let reads = redactions.iter().any(|&(_, m)| m != Redaction::Drop);
        let mut typed: SmallVec<[Option<Typed<'_>>; 8]> = SmallVec::new();
        for (j, (i, ty)) in fields.iter().enumerate() {
            let v = field(value(j, *i), ty)?;
            if reads {
                typed.push(v);
            }
        }
        let hash_key = self.shared.options.hash_key;
        let value = |slot: u32| {
            let v = typed.get(slot as usize).copied().flatten();
            Cow::Owned(v.map_or(Value::None, Typed::to_value))
        };
        for &redaction in redactions {
            if let Some(text) = redaction_of(redaction, value, hash_key) {
                redact(redaction.0, text);
            }
        }
        Some(())
    }

    /// [`Engine::redacted`] into `edits`, as the record path makes them.
    pub(super) fn redacted_edits<'v>(
        &self,
        plan: &Plan,
        l: u32,
        value: impl Fn(usize, usize) -> Option<Scalar<'v>>,
        edits: &mut Edits,
    ) -> Option<()> {
        let (keys, room) = self.edit_room(l);
        self.redacted(plan, l, value, |slot, text| {
            push_redaction(keys, room, slot, text, edits)
        })
    }

    /// Layout `l`'s declared fields' keys, and the room its edits take.
    fn edit_room(&self, l: u32) -> (&[Rc<str>], usize) {
        let keys = self.field_keys.get(l as usize).map_or(&[][..], |k| &k[..]);
        (keys, self.edit_rules.get(l as usize).copied().unwrap_or(0))
    }

    /// The event of `read` matched to its layout, with its record built
    /// from what the producer read (or, for a layout only redactions
    /// touch, its edits), and its time; `None` where it is to be decoded
    /// whole (see the module's doc).
    fn read_record<R: ReadInPlace + 'static>(&mut self, read: &Rc<ReadAt<R>>) -> Option<Read> {
        // Lanes off (`Engine::general`): the reference decodes every event.
        let plan = self.lines.as_ref()?;
        let mut values: Values<'_> = SmallVec::from_elem(None, plan.wanted.len());
        let std = read.source.read(&plan.asked(), &mut values)?;
        let now = std.time;
        let Some(&l) = std.name.and_then(|n| self.by_wire.get(n)) else {
            return Some(Read::Run(
                Decoded::Unhandled(InputRef::read(read.clone())),
                now,
            ));
        };
        if self.only_redacted.get(l as usize) == Some(&true) {
            let mut edits = Edits::new();
            self.redacted_edits(plan, l, |_, i| values.get(i).copied().flatten(), &mut edits)?;
            return Some(Read::Egress(edits, now));
        }
        let fields = plan.fields.get(l as usize)?.as_ref()?;
        let mut row = Vec::with_capacity(STD_SLOTS.len() + fields.len());
        // As the lane: values built now only where they are read anyway
        // (`lines::Plan::eager`); else from the event, if ever asked.
        let lazy = plan
            .records
            .get(l as usize)
            .and_then(Option::as_ref)
            .filter(|_| plan.eager.get(l as usize) == Some(&false));
        let input = InputRef::read(read.clone());
        let rec = match lazy {
            Some(declared) => {
                push_row(&std, fields, &values, &mut row, |_| {})?;
                let row = Row::Own(row.into_boxed_slice());
                Record::in_place(l, declared.clone(), None, input, row)
            }
            None => {
                let mut slots = Vec::with_capacity(fields.len());
                push_row(&std, fields, &values, &mut row, |v| {
                    slots.push(v.map_or(Value::None, Typed::to_value))
                })?;
                let rec = Record::new(l, slots, input);
                // A fresh record's row is unset: this is its first.
                let _ = rec.row.set(Some(Row::Own(row.into_boxed_slice())));
                rec
            }
        };
        Some(Read::Run(Decoded::Record(rec), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Asked, FlatLine, Input, InputEvent, Standard, decode_line};
    use crate::output::{Edit, Output};
    use crate::runtime::Options;
    use crate::runtime::fast::tests::{S, line, program};
    use crate::runtime::lines::tests::{COUNT, edited_and_undecoded, records_case, stream};

    /// The events of `input`: each line that is one event.
    fn events(input: &[String]) -> Vec<(String, InputEvent)> {
        input
            .iter()
            .filter_map(|l| match decode_line(l).as_slice() {
                [Input::Event(e)] => Some((l.clone(), e.clone())),
                _ => None,
            })
            .collect()
    }

    /// A flat line read in place that gives, of what the engine does not
    /// ask (`Asked`), something other than what its event holds: a string
    /// whose text is not asked has another text, the standard fields not
    /// asked are made up. What the engine makes of it must not change.
    struct Unasked(FlatLine);

    impl ReadInPlace for Unasked {
        fn read<'a>(
            &'a self,
            asked: &Asked<'_>,
            values: &mut [Option<Scalar<'a>>],
        ) -> Option<Standard<'a>> {
            let std = self.0.read(&Asked::all(asked.keys), values)?;
            for (i, v) in values.iter_mut().enumerate() {
                if let Some(Scalar::Str(_)) = v
                    && !asked.text(i)
                {
                    *v = Some(Scalar::Str("\u{1}not asked"));
                }
            }
            Some(if asked.standard {
                std
            } else {
                Standard {
                    severity_text: Some("not asked"),
                    body: Some("not asked"),
                    trace_id: Some("not asked"),
                    span_id: None,
                    thread_id: Some(-1),
                    service: Some("not asked"),
                    ..std
                }
            })
        }

        fn event(&self) -> InputEvent {
            self.0.event()
        }
    }

    /// Events read in place, one by one and in batches of several sizes
    /// (`push_reads`), give what their decoded events give on the general
    /// path: the outputs in order, and the counters. Read by [`Unasked`],
    /// so that nothing the engine makes depends on what it did not ask.
    fn check(src: &str, input: &[String]) {
        let p = program(src);
        for lateness_ns in [0, 2 * S] {
            let o = Options {
                lateness_ns,
                ..Options::default()
            };
            let events = events(input);
            let mut general = Engine::new(p.clone(), o.clone()).general();
            for (_, e) in &events {
                general.push_event(e.clone());
            }
            general.finish(true);
            let (expected, counters) = (general.drain(), general.counters);
            let mut read = Engine::new(p.clone(), o.clone());
            for (l, _) in &events {
                read.push_read(Unasked(FlatLine(l.clone())));
            }
            read.finish(true);
            assert_eq!(read.drain(), expected);
            assert_eq!(read.counters, counters);
            for batch in [1, 2, 7, 64, 1000] {
                let mut reads = Engine::new(p.clone(), o.clone());
                let mut got = Vec::new();
                for chunk in events.chunks(batch) {
                    reads.push_reads(chunk.iter().map(|(l, _)| Unasked(FlatLine(l.clone()))));
                    got.extend(reads.drain());
                }
                reads.finish(true);
                got.extend(reads.drain());
                assert_eq!(got, expected, "batches of {batch}");
                assert_eq!(reads.counters, counters, "batches of {batch}");
            }
            // Borrowed first (`edits_read`, or `edits_found` given what
            // the line holds of its layout's keys), pushed where it
            // declines: each egress is its edits, the outputs around it
            // (timeouts, windows) come as they would, and the counters
            // move alike.
            let (expected_egresses, expected_others): (Vec<_>, Vec<_>) = expected
                .into_iter()
                .partition(|o| matches!(o, Output::Egress { .. }));
            let mut borrowed_ran = Vec::new();
            for found in [false, true] {
                let mut borrowed = Engine::new(p.clone(), o.clone());
                let (mut egresses, mut others) = (Vec::new(), Vec::new());
                let mut ran = 0;
                for (l, _) in &events {
                    let line = Unasked(FlatLine(l.clone()));
                    let read = match found {
                        false => borrowed.edits_read(&line),
                        true => match line.0.read(&Asked::all(&[]), &mut []) {
                            Some(std) => {
                                // Left with what was there: it is appended to.
                                let mut edits = Edits::from_elem(Edit::RemoveTop("body"), 1);
                                let found = borrowed.edits_found(
                                    std.name.map(str::as_bytes),
                                    std.time,
                                    |keys, texts, values| {
                                        let keys: Vec<String> =
                                            keys.keys().iter().map(|k| k.to_string()).collect();
                                        let asked = Asked {
                                            keys: &keys,
                                            texts,
                                            standard: false,
                                        };
                                        line.read(&asked, values).map(drop)
                                    },
                                    &mut edits,
                                );
                                let first = edits.remove(0);
                                assert_eq!(first, Edit::RemoveTop("body"));
                                match found {
                                    true => ReadEgress::Egress(edits),
                                    false => {
                                        assert!(edits.is_empty(), "declined, yet edited");
                                        ReadEgress::Push
                                    }
                                }
                            }
                            None => ReadEgress::Push,
                        },
                    };
                    match read {
                        ReadEgress::Egress(edits) => {
                            ran += 1;
                            let input = InputRef::read(Rc::new(ReadAt::new(line)));
                            let egress = Produced::Egress(Egress { input, edits });
                            egress.push_outputs(&mut egresses);
                        }
                        ReadEgress::Push => borrowed.push_read(line),
                    }
                    for out in borrowed.drain() {
                        match out {
                            Output::Egress { .. } => egresses.push(out),
                            _ => others.push(out),
                        }
                    }
                }
                borrowed.finish(true);
                others.extend(borrowed.drain());
                assert_eq!(egresses, expected_egresses, "found: {found}");
                assert_eq!(others, expected_others, "found: {found}");
                assert_eq!(borrowed.counters, counters, "found: {found}");
                assert!(ran > 0 || !borrowed.only_redacted.iter().any(|&o| o));
                borrowed_ran.push(ran);
            }
            // Given what a line holds, `edits_found` declines no more.
            assert_eq!(borrowed_ran[0], borrowed_ran[1]);
        }
    }

    #[test]
    fn events_read_in_place_give_what_their_decoded_events_give() {
        check(COUNT, &stream());
        let (src, input) = records_case();
        check(src, &input);
    }

    /// Layouts only redactions touch, read without a record, beside
    /// layouts a machine (with a timeout) and a windowed query read, so
    /// that their events fire timeouts and close windows as any event
    /// does; with fields missing, null, of the wrong type, non-ASCII.
    #[test]
    fn events_only_redactions_touch_give_what_their_decoded_events_give() {
        let src = "event Start { file: string, size: int? }\n\
                   event End { file: string, ok: bool }\n\
                   event Login { user: string, email: string, ip: string?, level: float }\n\
                   event Ping { n: int }\n\
                   redact Login.user with hash\n\
                   redact Login.email with mask\n\
                   redact Login.ip with drop\n\
                   redact Login.level with hash\n\
                   machine files per event.file max 3 {\n state Idle\n state Busy\n\
                   on Start in Idle -> Busy\n\
                   on End in Busy when event.ok -> Idle { emit log Done { file: event.file } }\n\
                   after 4s in Busy -> Idle { emit log Stuck { file: \"?\" } }\n}\n\
                   query ends = End | summarize n = count() every 10s | emit metric \"ends\"";
        let p = program(src);
        let e = Engine::new(p, Options::default());
        let layout = |name: &str| {
            let events = &e.shared.program.events;
            events.iter().position(|l| l.name == name)
        };
        let (login, ping, end) = (layout("Login"), layout("Ping"), layout("End"));
        for (l, only) in [(login, true), (ping, true), (end, false)] {
            assert_eq!(e.only_redacted.get(l.expect("declared")), Some(&only));
        }
        let (_, mut input) = records_case();
        for k in 0..60i64 {
            input.push(line("Ping", k * S / 2, &format!(r#""n":{k}"#)));
            input.push(line("Ping", k * S / 2, r#""n":"one""#));
            input.push(line(
                "Login",
                30 * S + k * S,
                r#""user":"z","email":null,"level":2"#,
            ));
        }
        check(src, &input);
    }

    /// A program of redactions only: its events are asked their name,
    /// times and declared fields, the texts of only those a redaction
    /// reads (hash, mask) or whose type is not text; with fields missing,
    /// null, of the wrong type, non-ASCII, and events of no layout.
    #[test]
    fn events_of_redactions_only_are_asked_what_redactions_read() {
        let src = "event Login { user: string, ip: string?, note: string, n: int, tag: bytes }\n\
                   event Logout { ip: int, user: string }\n\
                   redact Login.user with hash\n\
                   redact Login.ip with drop\n\
                   redact Logout.user with drop";
        let e = Engine::new(program(src), Options::default());
        let plan = e.lines.as_ref().expect("lanes on");
        let asked: Vec<(&str, bool)> = plan
            .wanted
            .iter()
            .map(String::as_str)
            .zip(plan.texts.iter().copied())
            .collect();
        // `ip` is text in one layout, an int in the other: read.
        let expected = [
            ("user", true),
            ("ip", true),
            ("note", false),
            ("n", true),
            ("tag", false),
        ];
        assert_eq!(asked, expected);
        assert!(!plan.standard);
        let mut input = Vec::new();
        for k in 0..40i64 {
            let t = k * S / 3;
            input.push(line(
                "Login",
                t,
                &format!(r#""user":"u{k}","ip":"10.0.0.{k}","note":"é{k}","n":{k},"tag":"t""#),
            ));
            input.push(line(
                "Login",
                t,
                r#""user":"ü","ip":null,"note":"x","n":"12","tag":"t""#,
            ));
            input.push(line("Login", t, r#""user":"v","note":7,"n":1,"tag":"t""#));
            input.push(line("Login", t, r#""user":"v","n":1,"tag":"t""#));
            input.push(line(
                "Login",
                t,
                r#""user":"v","note":"x","n":"one","tag":"t""#,
            ));
            input.push(line("Logout", t, &format!(r#""ip":{k},"user":"u{k}""#)));
            input.push(line("Logout", t, r#""user":"u","ip":"9""#));
            input.push(line("Other", t, r#""user":"u""#));
        }
        check(src, &input);
    }

    /// An event whose egress only edits it stays undecoded until someone
    /// reads it; then it is its line's event.
    #[test]
    fn events_read_in_place_are_decoded_only_when_asked() {
        let src = "event Login { user: string, ip: string }\n\
                   redact Login.user with hash\n\
                   redact Login.ip with drop";
        let mut e = Engine::new(program(src), Options::default());
        for k in 0..20i64 {
            let l = line(
                "Login",
                k * S,
                &format!(r#""user":"u{k}","ip":"10.0.0.{k}""#),
            );
            e.push_read(FlatLine(l.clone()));
            let produced = e.drain_lazy();
            let [p] = produced.as_slice() else {
                panic!("expected one egress, got {produced:?}");
            };
            edited_and_undecoded(p, &l, 2);
        }
    }
}
