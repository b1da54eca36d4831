//! Grouped tallies: the groups of a fast-lane `summarize ... by` in the
//! latest window of its query, held at hand so that an event of a known
//! group costs one hash of its key as the record holds it (no `Key` built,
//! no `Rc` cloned), one probe and its aggregates' updates: no window
//! lookup, no group map lookup.
//!
//! A group is taken out of its window ("checked out": its window keeps the
//! entry with no aggregates, so the window's group count, which `max N`
//! compares with, is unchanged) the first time an event of it reaches the
//! general rules in the tally's window, and put back ([`GroupTally::settle`])
//! before its window closes or when the tally moves on to a later window.
//! Nothing reads a window's aggregates before it closes, so no output can
//! tell. Everything else (a new group, a series overflow, a late event, an
//! event of an older window) takes `Engine::run_fast_query`'s general
//! rules, as before.
//!
//! A batch decoded ahead ([`super::Engine::decode_batch`]) also names each
//! event's group key by an ID of a dictionary of the batch's keys
//! ([`KeyIds`]: equal texts, one ID), so that a stretch hashes, probes and
//! compares a key once per distinct key and batch ([`GroupTally::places`])
//! and reads an ID in sequence for the other events of that key, instead
//! of hashing the text each record points to.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fast::{FastQuery, Read, Route};
use super::{Agg, Batch, Decoded, Engine, FAILS, NOT_ASKED, QueryState, UNHANDLED};
use crate::value::{Key, Record, Typed, Value};

/// The groups of one query's latest window that are checked out.
pub(super) struct GroupTally {
    /// The window held (`start..end`); `i64::MIN..i64::MIN`: none.
    pub start: i64,
    pub end: i64,
    /// The query has `where` stages: an event counts here only with the
    /// batch prefilter's verdict that it passes them.
    pub filtered: bool,
    keys: Vec<Read>,
    args: Vec<Vec<Read>>,
    /// The seed of [`Mix`]: the process's ([`seed`]), so that a batch's
    /// [`KeyIds`] hashes hold for every engine it is pushed into.
    seed: u64,
    /// The hash of a checked-out group's key ([`GroupTally::hash`]) to its
    /// place in `groups`. Two keys of one hash: only the first is checked
    /// out, the other stays in its window (a probe that finds another key
    /// is a miss, and a miss takes the general rules).
    index: Index,
    groups: Vec<(Vec<Key>, Vec<Agg>)>,
    /// Every aggregate is `count()`: a checked-out group is bumped in place.
    counts_only: bool,
    /// Per key ID of the batch stamped `places_of` ([`KeyIds`]), the place
    /// in `groups` of that key's group once a stretch has found it there
    /// ([`UNSET`]: not yet). Valid while `groups` keeps its places, so
    /// until [`GroupTally::settle`], which empties it.
    places: Vec<u32>,
    places_of: u64,
    /// Per place in `groups`, the events [`GroupTally::count_run`] counted
    /// that its aggregates do not hold yet: added to them when they go
    /// back to their window ([`GroupTally::settle`]), so that the run
    /// adds one to a flat array instead of reaching through the group's
    /// aggregates. Only a tally that only counts has any.
    pending: Vec<i64>,
}

/// A [`GroupTally::places`] entry not looked up yet.
const UNSET: u32 = u32::MAX;

impl std::fmt::Debug for GroupTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupTally")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// A table from a key's hash (already seeded and mixed) to a group's
/// place: open addressing with linear probing over at most half-full
/// slots, so a probe that finds the hash costs a few instructions and one
/// that does not stops at the first empty slot. Only grows (cleared, it
/// keeps its room for the next window).
#[derive(Default)]
struct Index {
    /// (hash, place + 1); a place of 0 is an empty slot.
    slots: Vec<(u64, u32)>,
    len: usize,
}

impl Index {
    /// The place of `h`, if it has one.
    #[inline]
    fn get(&self, h: u64) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = h as usize & mask;
        loop {
            let (sh, place) = *self.slots.get(i)?;
            if place == 0 {
                return None;
            }
            if sh == h {
                return Some(place - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The item of `items` at the place of `h`, if it has one.
    #[inline(always)]
    fn find<'i, T>(&self, h: u64, items: &'i mut [T]) -> Option<&'i mut T> {
        self.get(h).and_then(|p| items.get_mut(p as usize))
    }

    /// Gives `h` the place `place`, unless it has one already.
    fn insert(&mut self, h: u64, place: u32) {
        if self.get(h).is_some() || place == u32::MAX {
            return;
        }
        if 2 * (self.len + 1) > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![(0, 0); (2 * old.len()).max(16)];
            self.len = 0;
            for (h, p) in old {
                if p != 0 {
                    self.put(h, p);
                }
            }
        }
        self.put(h, place + 1);
    }

    /// Puts `(h, stored)` in the first empty slot from `h`'s (there is one:
    /// the table is at most half full).
    fn put(&mut self, h: u64, stored: u32) {
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        while self.slots[i].1 != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (h, stored);
        self.len += 1;
    }

    fn clear(&mut self) {
        if self.len > 0 {
            self.slots.iter_mut().for_each(|s| *s = (0, 0));
            self.len = 0;
        }
    }
}

/// Whether `v`, a key read's value, is the key `k` (as
/// `Key::from_value(v).unwrap_or(Key::Unit) == *k`, without building it).
#[inline(always)]
fn is_key(k: &Key, v: KeyView<'_>) -> bool {
    match (k, v) {
        (Key::Bool(a), KeyView::Bool(b)) => *a == b,
        (Key::Int(a), KeyView::Int(b)) => *a == b,
        (Key::Str(a), KeyView::Str(b)) => **a == *b,
        (Key::Unit, KeyView::Unit) => true,
        _ => false,
    }
}

/// A key read's value as a group key sees it, borrowed: from a record's
/// value, or from a line read in place (`runtime::lines`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeyView<'a> {
    Bool(bool),
    Int(i64),
    Str(&'a str),
    /// Any other value, absent included: `Key::Unit`.
    Unit,
}

impl KeyView<'_> {
    #[inline(always)]
    pub(super) fn of_value(v: &Value) -> KeyView<'_> {
        match v {
            Value::Bool(b) => KeyView::Bool(*b),
            Value::Int(i) => KeyView::Int(*i),
            Value::Str(s) => KeyView::Str(s),
            _ => KeyView::Unit,
        }
    }

    /// As [`KeyView::of_value`] of the value `v` stands for (`None`:
    /// absent).
    pub(super) fn of_typed(v: Option<Typed<'_>>) -> KeyView<'_> {
        match v {
            Some(Typed::Bool(b)) => KeyView::Bool(b),
            Some(Typed::Int(i)) => KeyView::Int(i),
            Some(Typed::Str(s)) => KeyView::Str(s),
            _ => KeyView::Unit,
        }
    }
}

/// The process's seed of [`Mix`], drawn once from std's random keys
/// (against hash flooding, as group maps' seeds are).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::hash::RandomState::new().hash_one(0x6772_6f75_7073u64))
}

/// The group keys of a batch's events as IDs of a dictionary of the batch
/// (a dictionary-encoded column, as columnar engines keep): for each event
/// of a layout whose group stretch is keyed by one declared field, the ID
/// of its key's text when it has one, the same ID for the same text. Built
/// at decoding ([`Engine::key_ids`]), where each key is hashed and
/// compared once, so that running the batch does not.
#[derive(Default)]
pub(super) struct KeyIds {
    /// Per batch position, its key's ID ([`NO_ID`]: none: another layout,
    /// a key that is not a text, or a text whose hash another text has).
    ids: Vec<u32>,
    /// Per ID, its text's hash ([`Mix`] from the process's [`seed`]).
    hashes: Vec<u64>,
    /// Per ID, its text (shared with the record it was first read from).
    texts: Vec<Rc<str>>,
    /// Which batch these are of, among the process's ([`STAMPS`]); 0: none.
    stamp: u64,
}

/// A [`KeyIds::ids`] entry for an event without a key ID.
const NO_ID: u32 = u32::MAX;

/// The last [`KeyIds::stamp`] given.
static STAMPS: AtomicU64 = AtomicU64::new(0);

impl KeyIds {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Engine {
    /// The [`KeyIds`] of a batch's `decoded` events: empty when no layout's
    /// group stretch is keyed by one declared field, so that other
    /// programs pay nothing for them. A text's ID is the place of its
    /// first occurrence among the distinct texts, found by its hash in an
    /// [`Index`]; a text whose hash an earlier, other text has gets none
    /// (its events take the path without IDs).
    pub(super) fn key_ids(&self, decoded: &[Decoded]) -> KeyIds {
        let fields: Vec<Option<u32>> = self
            .group_runs
            .iter()
            .map(
                |q| match self.grouped.get((*q)? as usize)?.as_ref()?.keys.as_slice() {
                    &[Read::Field(s)] => Some(s),
                    _ => None,
                },
            )
            .collect();
        if fields.iter().all(Option::is_none) {
            return KeyIds::default();
        }
        let seed = seed();
        let mut index = Index::default();
        let mut texts: Vec<Rc<str>> = Vec::new();
        let mut hashes = Vec::new();
        let ids = decoded
            .iter()
            .map(|d| {
                let Some(rec) = d.record() else {
                    return NO_ID;
                };
                let Some(&Some(s)) = fields.get(rec.layout as usize) else {
                    return NO_ID;
                };
                let Some(Value::Str(t)) = rec.slots().get(s as usize) else {
                    return NO_ID;
                };
                let mut h = Mix(seed);
                h.part(KeyView::Str(t));
                let h = h.finish();
                match index.get(h) {
                    Some(id) if texts.get(id as usize).is_some_and(|u| **u == **t) => id,
                    Some(_) => NO_ID,
                    None => {
                        let Ok(id) = u32::try_from(texts.len()) else {
                            return NO_ID;
                        };
                        index.insert(h, id);
                        texts.push(t.clone());
                        hashes.push(h);
                        id
                    }
                }
            })
            .collect();
        KeyIds {
            ids,
            hashes,
            texts,
            stamp: STAMPS.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// The hash of a group key as its reads' values give it: a folded
/// multiply (the 128-bit product's halves xored, as wyhash and
/// rustc-hash's string hashing mix) per word of each value's kind and
/// length, then of its payload 8 bytes at a time, from the process's
/// [`seed`]; so a key of one short string costs a few multiplies, inline.
/// Every value that makes `Key::Unit` hashes alike. Two keys of one hash
/// only cost the later one the general rules (see [`Index`]).
#[derive(Clone, Copy)]
struct Mix(u64);

impl Mix {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    #[inline(always)]
    fn word(&mut self, w: u64) {
        let p = u128::from(self.0 ^ w) * u128::from(Mix::K);
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }

    #[inline(always)]
    fn part(&mut self, v: KeyView<'_>) {
        match v {
            KeyView::Bool(b) => self.word(1 | u64::from(b) << 8),
            KeyView::Int(i) => {
                self.word(2);
                self.word(i as u64);
            }
            KeyView::Str(s) => {
                let b = s.as_bytes();
                self.word(3 | (b.len() as u64) << 8);
                let word = |w: &[u8]| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(w);
                    u64::from_le_bytes(word)
                };
                if b.len() < 8 {
                    let mut w = 0u64;
                    for (i, &byte) in b.iter().enumerate() {
                        w |= u64::from(byte) << (8 * i);
                    }
                    self.word(w);
                    return;
                }
                let mut words = b.chunks_exact(8);
                for w in &mut words {
                    self.word(word(w));
                }
                // The last 8 bytes, overlapping the words before: the
                // length is hashed already.
                if !words.remainder().is_empty()
                    && let Some(last) = b.get(b.len() - 8..)
                {
                    self.word(word(last));
                }
            }
            KeyView::Unit => self.word(0),
        }
    }

    #[inline(always)]
    fn finish(self) -> u64 {
        self.0
    }
}

/// The aggregates of the checked-out group (of `groups`, indexed by
/// `index`, hashed from `seed`) of the one key `v`; else the key's hash.
#[inline(always)]
fn group_of<'g>(
    seed: u64,
    index: &Index,
    groups: &'g mut [(Vec<Key>, Vec<Agg>)],
    v: KeyView<'_>,
) -> Result<&'g mut Vec<Agg>, u64> {
    let mut h = Mix(seed);
    h.part(v);
    let h = h.finish();
    let Some((k, aggs)) = index.find(h, groups) else {
        return Err(h);
    };
    if !k.first().is_some_and(|k| is_key(k, v)) {
        return Err(h);
    }
    Ok(aggs)
}

/// Adds one event's arguments (plain reads of `rec`) to a group's
/// aggregates, as the general rules do.
pub(super) fn add_reads(aggs: &mut [Agg], args: &[Vec<Read>], rec: &Record) {
    for (a, args) in aggs.iter_mut().zip(args) {
        match args.as_slice() {
            [] => a.add(&[]),
            [r] => a.add(std::slice::from_ref(&r.value(rec))),
            more => a.add(&more.iter().map(|r| r.value(rec)).collect::<Vec<_>>()),
        }
    }
}

impl GroupTally {
    /// A tally for a fast query with keys; none for one without (those
    /// have [`super::fast::Tally`] when they only count).
    pub fn new(fq: &FastQuery) -> Option<GroupTally> {
        if fq.keys.is_empty() {
            return None;
        }
        Some(GroupTally {
            start: i64::MIN,
            end: i64::MIN,
            filtered: fq.si != 0,
            keys: fq.keys.clone(),
            args: fq.args.clone(),
            seed: seed(),
            index: Index::default(),
            groups: Vec::new(),
            counts_only: fq.args.iter().all(Vec::is_empty) && fq.args.len() == 1,
            places: Vec::new(),
            places_of: 0,
            pending: Vec::new(),
        })
    }

    /// Whether an event at `now` is in the window held.
    #[inline]
    pub fn holds(&self, now: i64) -> bool {
        self.start <= now && now < self.end
    }

    /// The hash of `rec`'s group key.
    pub fn hash(&self, rec: &Record) -> u64 {
        let mut h = Mix(self.seed);
        for r in &self.keys {
            h.part(KeyView::of_value(&r.view(rec)));
        }
        h.finish()
    }

    /// Adds `rec` (in the window held, past the query's `where` stages) to
    /// its group if it is checked out. Otherwise returns its key's hash,
    /// for [`GroupTally::check_out`] once the general rules have run.
    #[inline(always)]
    pub fn bump(&mut self, rec: &Record) -> Result<(), u64> {
        match self.keys.as_slice() {
            [Read::Field(s)] => self.bump_field(*s, rec),
            _ => self.bump_keys(rec),
        }
    }

    /// [`GroupTally::bump`] for a query whose one key is declared field
    /// `s` (the common case): read in place, once, and hashed inline.
    #[inline(always)]
    fn bump_field(&mut self, s: u32, rec: &Record) -> Result<(), u64> {
        let v = rec.slots().get(s as usize).unwrap_or(&Value::None);
        let aggs = group_of(
            self.seed,
            &self.index,
            &mut self.groups,
            KeyView::of_value(v),
        )?;
        match aggs.as_mut_slice() {
            [Agg::Count(n)] if self.counts_only => *n += 1,
            aggs => add_reads(aggs, &self.args, rec),
        }
        Ok(())
    }

    /// [`GroupTally::bump`] for a query that only counts, by one key whose
    /// value is `v` (an event read in place: [`GroupTally::counts_by_field`]).
    #[inline(always)]
    pub fn bump_view(&mut self, v: KeyView<'_>) -> Result<(), u64> {
        // Every aggregate takes no arguments (`counts_by_field`).
        match group_of(self.seed, &self.index, &mut self.groups, v)?.as_mut_slice() {
            [Agg::Count(n)] => *n += 1,
            aggs => aggs.iter_mut().for_each(|a| a.add(&[])),
        }
        Ok(())
    }

    /// The declared field this tally counts by, when it only counts and
    /// by that one key: an event's group is then its value alone.
    pub fn counts_by_field(&self) -> Option<u32> {
        match self.keys.as_slice() {
            &[Read::Field(s)] if self.counts_only => Some(s),
            _ => None,
        }
    }

    /// Readies [`GroupTally::places`] for the batch of `ids`: each of its
    /// keys checked out already is looked up here, in one pass over the
    /// dictionary (its hashes and texts in sequence), rather than at its
    /// first event (a record, its slot, its text).
    fn places_for(&mut self, ids: &KeyIds) {
        if self.places_of == ids.stamp {
            return;
        }
        self.places.clear();
        self.places.resize(ids.hashes.len(), UNSET);
        self.places_of = ids.stamp;
        if self.groups.is_empty() {
            return;
        }
        for ((place, &h), text) in self.places.iter_mut().zip(&ids.hashes).zip(&ids.texts) {
            if let Some(p) = self.index.get(h)
                && let Some((k, _)) = self.groups.get(p as usize)
                && k.first().is_some_and(|k| is_key(k, KeyView::Str(text)))
            {
                *place = p;
            }
        }
    }

    /// [`GroupTally::bump_field`] for an event `d` whose key (field `s`
    /// of its record) has ID `id` in the batch's `ids`, readied by
    /// [`GroupTally::places_for`]: the group's place is the one found for
    /// that ID, else it is looked up by the key's hash (from the
    /// dictionary), the key compared with the event's, and remembered. An
    /// event of a known ID whose aggregates are one count is not read.
    #[inline(always)]
    fn bump_id(&mut self, id: u32, ids: &KeyIds, s: u32, d: &Decoded) -> bool {
        let place = match self.places.get(id as usize) {
            Some(&p) if p != UNSET => p,
            Some(_) => match d.record().and_then(|rec| self.look_up(id, ids, s, rec)) {
                Some(p) => p,
                None => return false,
            },
            None => {
                return d
                    .record()
                    .is_some_and(|rec| self.bump_field(s, rec).is_ok());
            }
        };
        let Some((_, aggs)) = self.groups.get_mut(place as usize) else {
            return false;
        };
        match aggs.as_mut_slice() {
            [Agg::Count(n)] if self.counts_only => *n += 1,
            aggs => match d.record() {
                Some(rec) => add_reads(aggs, &self.args, rec),
                None => return false,
            },
        }
        true
    }

    /// [`GroupTally::bump_id`], not inlined: a key ID not looked up yet in
    /// [`GroupTally::count_run`].
    #[inline(never)]
    fn bump_id_cold(&mut self, id: u32, ids: &KeyIds, s: u32, d: &Decoded) -> bool {
        self.bump_id(id, ids, s, d)
    }

    /// [`Span::run`] for a tally that only counts, whose query no verdicts
    /// bear on, by the key IDs of `batch` (readied by
    /// [`GroupTally::places_for`]): an event of a key whose group's place
    /// is known adds one to [`GroupTally::pending`], in a loop that holds
    /// few enough values to keep them in registers; any other goes through
    /// [`GroupTally::bump_id`]. Returns as [`Span::run`] does.
    fn count_run(
        &mut self,
        span: &Span,
        batch: &Batch,
        from: usize,
        s: u32,
        mut watermark: i64,
    ) -> (usize, u64, i64) {
        let ids = &batch.key_ids;
        let n = (batch.layouts.len())
            .min(batch.times.len())
            .min(ids.ids.len())
            .min(batch.decoded.len());
        let (layouts, times, of) = (&batch.layouts[..n], &batch.times[..n], &ids.ids[..n]);
        let (mut k, mut unhandled) = (from, 0u64);
        while let (Some(&l), Some(&now), Some(&id)) = (layouts.get(k), times.get(k), of.get(k)) {
            if now < span.lo || now >= span.hi {
                break;
            }
            if l == UNHANDLED {
                unhandled += 1;
            } else if l != span.layout {
                break;
            } else {
                let counted = match self.places.get(id as usize) {
                    Some(&p) => self.pending.get_mut(p as usize).map(|c| *c += 1),
                    None => None,
                };
                if counted.is_none()
                    && !batch
                        .decoded
                        .get(k)
                        .is_some_and(|d| self.bump_id_cold(id, ids, s, d))
                {
                    break;
                }
            }
            watermark = watermark.max(now);
            k += 1;
        }
        (k, unhandled, watermark)
    }

    /// The place of the checked-out group of key ID `id` (field `s` of
    /// `rec`), remembered in [`GroupTally::places`]; none when that key is
    /// not checked out.
    #[inline(never)]
    fn look_up(&mut self, id: u32, ids: &KeyIds, s: u32, rec: &Record) -> Option<u32> {
        let h = *ids.hashes.get(id as usize)?;
        let place = self.index.get(h)?;
        let (k, _) = self.groups.get(place as usize)?;
        let v = rec.slots().get(s as usize).unwrap_or(&Value::None);
        if !k.first().is_some_and(|k| is_key(k, KeyView::of_value(v))) {
            return None;
        }
        *self.places.get_mut(id as usize)? = place;
        Some(place)
    }

    /// [`GroupTally::bump`] for any keys.
    #[inline(never)]
    fn bump_keys(&mut self, rec: &Record) -> Result<(), u64> {
        let h = self.hash(rec);
        let Some((k, aggs)) = self.index.find(h, &mut self.groups) else {
            return Err(h);
        };
        if k.len() != self.keys.len()
            || !k
                .iter()
                .zip(&self.keys)
                .all(|(k, r)| is_key(k, KeyView::of_value(&r.view(rec))))
        {
            return Err(h);
        }
        add_reads(aggs, &self.args, rec);
        Ok(())
    }

    /// Takes group `keys` (of hash `h`) out of the window held, after the
    /// general rules have added an event to it, when it is there (not past
    /// `max N`, not late) and no other key of that hash is checked out.
    pub fn check_out(&mut self, h: u64, keys: &[Key], q: &mut QueryState) {
        if self.index.get(h).is_some() {
            return;
        }
        let Some(aggs) = q.windows.get_mut(&self.start).and_then(|w| w.get_mut(keys)) else {
            return;
        };
        let Ok(place) = u32::try_from(self.groups.len()) else {
            return;
        };
        self.index.insert(h, place);
        self.groups.push((keys.to_vec(), std::mem::take(aggs)));
        self.pending.push(0);
    }

    /// Puts every checked-out group back into its window and holds none.
    pub fn settle(&mut self, q: &mut QueryState) {
        for ((_, aggs), n) in self.groups.iter_mut().zip(self.pending.drain(..)) {
            match aggs.as_mut_slice() {
                [Agg::Count(c)] => *c += n,
                aggs => (0..n).for_each(|_| aggs.iter_mut().for_each(|a| a.add(&[]))),
            }
        }
        let window = q.windows.get_mut(&self.start);
        if let Some(window) = window {
            for (keys, aggs) in self.groups.drain(..) {
                if let Some(slot) = window.get_mut(&keys) {
                    *slot = aggs;
                }
            }
        }
        // A window held is open (it settles before it closes), so nothing
        // is left here; cleared all the same.
        self.groups.clear();
        self.index.clear();
        self.places.clear();
        self.places_of = 0;
        self.start = i64::MIN;
        self.end = i64::MIN;
    }

    /// Moves on to window `start..end`, putting back the groups of the
    /// window held.
    pub fn hold(&mut self, start: i64, end: i64, q: &mut QueryState) {
        self.settle(q);
        self.start = start;
        self.end = end;
    }
}

/// Per layout, the query whose grouped tally a stretch of its events
/// feeds in bulk ([`Engine::run_group_stretch`]): the layout is quiet and
/// that query, grouped, is the only one it feeds. Empty when no layout
/// has one, so that other programs pay nothing for it.
pub(super) fn stretch_layouts(
    quiet: &[bool],
    routes: &[Route],
    grouped: &[Option<GroupTally>],
) -> Vec<Option<u32>> {
    let runs: Vec<Option<u32>> = routes
        .iter()
        .zip(quiet)
        .map(|(r, &quiet)| match r.queries.as_slice() {
            [qi] if quiet && grouped.get(*qi).is_some_and(Option::is_some) => {
                u32::try_from(*qi).ok()
            }
            _ => None,
        })
        .collect();
    if runs.iter().any(Option::is_some) {
        runs
    } else {
        Vec::new()
    }
}

impl Engine {
    /// Runs the longest stretch of a batch from position `from` whose every
    /// event `run_quiet` would settle with a checked-out group alone: an
    /// event no layout matches, or one of a layout of [`stretch_layouts`]
    /// in its query's window held, that the prefilter failed or whose group
    /// is checked out, with no timeout due and no window to close at its
    /// time. Returns where the stretch ends: the caller runs that event the
    /// usual way.
    pub(super) fn run_group_stretch(&mut self, batch: &Batch, from: usize) -> usize {
        let (layouts, times, items) = (&batch.layouts, &batch.times, &batch.decoded);
        let ids = &batch.key_ids;
        // The key's kind chosen once for the whole stretch.
        match self.group_keys(layouts, from) {
            // Keys read by ID, in sequence: the records are read only to
            // look a key up, once per distinct key, so not warmed.
            Some(&[Read::Field(s)]) if !ids.is_empty() => {
                if let Some(g) = self.group_tally(layouts, from) {
                    g.places_for(ids);
                }
                if let Some(k) = self.count_stretch(batch, from, s) {
                    return k;
                }
                self.group_stretch(
                    (layouts, times, items),
                    from,
                    |_, _| 0,
                    |g, k, d| ids.ids.get(k).is_some_and(|&id| g.bump_id(id, ids, s, d)),
                )
            }
            Some(&[Read::Field(s)]) => self.group_stretch(
                (layouts, times, items),
                from,
                |_, d| d.record().map_or(0, |rec| warm(rec, s)),
                |g, _, d| d.record().is_some_and(|rec| g.bump_field(s, rec).is_ok()),
            ),
            _ => self.group_stretch(
                (layouts, times, items),
                from,
                |_, _| 0,
                |g, _, d| d.record().is_some_and(|rec| g.bump(rec).is_ok()),
            ),
        }
    }

    /// The key reads of the grouped tally a stretch from `from` would feed.
    fn group_keys(&self, layouts: &[u32], from: usize) -> Option<&[Read]> {
        let qi = (*self.group_runs.get(*layouts.get(from)? as usize)?)?;
        Some(&self.grouped.get(qi as usize)?.as_ref()?.keys)
    }

    /// The grouped tally a stretch from `from` would feed.
    fn group_tally(&mut self, layouts: &[u32], from: usize) -> Option<&mut GroupTally> {
        let qi = (*self.group_runs.get(*layouts.get(from)? as usize)?)?;
        self.grouped.get_mut(qi as usize)?.as_mut()
    }

    /// The query (its index) and the bounds of a group stretch from `from`.
    fn stretch_span(&self, layouts: &[u32], from: usize) -> Option<(usize, Span)> {
        let layout = *layouts.get(from)?;
        let qi = (*self.group_runs.get(layout as usize)?)? as usize;
        let due = self.deadlines.first().map_or(i64::MAX, |(t, ..)| *t);
        // No window closes before `next_close + lateness` (saturated, so at
        // worst a stretch ends early).
        let close = self
            .next_close
            .saturating_add(self.shared.options.lateness_ns);
        let g = self.grouped.get(qi)?.as_ref()?;
        let span = Span {
            layout,
            lo: g.start,
            hi: g.end.min(due).min(close),
            filtered: g.filtered,
        };
        Some((qi, span))
    }

    /// [`Engine::run_group_stretch`] by key IDs for a tally that only
    /// counts, of a query no verdicts bear on (no `where`, none asked):
    /// [`GroupTally::count_run`]. `None` when it does not apply.
    fn count_stretch(&mut self, batch: &Batch, from: usize, s: u32) -> Option<usize> {
        let (qi, span) = self.stretch_span(&batch.layouts, from)?;
        if span.filtered || self.verdicts.get(qi).is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let g = self.grouped.get_mut(qi)?.as_mut()?;
        if !g.counts_only {
            return None;
        }
        let (k, unhandled, watermark) = g.count_run(&span, batch, from, s, self.watermark);
        self.ran_quietly(from..k, unhandled, watermark);
        Some(k)
    }

    /// [`Engine::run_group_stretch`] over a batch's events as `layouts`,
    /// `times` and `items` give them (up to where the stretch may go):
    /// `bump` adds an item's event (at a position) to its group (false: not
    /// settled so), `warm` reads ahead what it will read.
    pub(super) fn group_stretch<T>(
        &mut self,
        (layouts, times, items): (&[u32], &[i64], &[T]),
        from: usize,
        warm: impl Fn(usize, &T) -> u64,
        mut bump: impl FnMut(&mut GroupTally, usize, &T) -> bool,
    ) -> usize {
        let Some((qi, span)) = self.stretch_span(layouts, from) else {
            return from;
        };
        let Some(g) = self.grouped.get_mut(qi).and_then(Option::as_mut) else {
            return from;
        };
        let verdicts = self.verdicts.get(qi).map_or(&[][..], Vec::as_slice);
        let (k, unhandled, watermark) = span.run(
            (layouts, times, items),
            verdicts,
            from,
            self.watermark,
            warm,
            |k, item| bump(g, k, item),
        );
        self.ran_quietly(from..k, unhandled, watermark);
        k
    }
}

/// What bounds a stretch of [`Engine::run_group_stretch`]: the layout of
/// its events, the times it may hold (`lo..hi`), and whether its query
/// needs the prefilter's verdict.
struct Span {
    layout: u32,
    lo: i64,
    hi: i64,
    filtered: bool,
}

impl Span {
    /// Runs the stretch from `from`, each event of the layout that the
    /// prefilter did not fail through `bump` (false: not settled by it).
    /// Returns where it ends, the events no layout matches in it and the
    /// watermark after it.
    ///
    /// The records of a batch are decoded ahead, each with its slots and
    /// strings on the heap, so an event's key is mostly two cache misses,
    /// one behind the other: `warm` reads the key of each of the next
    /// [`WARM`] records first (their misses overlap), so that `bump` finds
    /// them in cache. What it reads goes to `black_box`, so it stays.
    #[inline(always)]
    fn run<T>(
        &self,
        (layouts, times, items): (&[u32], &[i64], &[T]),
        verdicts: &[u8],
        from: usize,
        mut watermark: i64,
        warm: impl Fn(usize, &T) -> u64,
        mut bump: impl FnMut(usize, &T) -> bool,
    ) -> (usize, u64, i64) {
        let (mut k, mut unhandled) = (from, 0u64);
        let (mut warmed, mut touched) = (from, 0u64);
        while let (Some(&l), Some(&now), Some(item)) = (layouts.get(k), times.get(k), items.get(k))
        {
            if k == warmed {
                warmed = (k + WARM).min(items.len());
                for (j, item) in items.get(k..warmed).unwrap_or_default().iter().enumerate() {
                    touched ^= warm(k + j, item);
                }
            }
            if now < self.lo || now >= self.hi {
                break;
            }
            if l == UNHANDLED {
                unhandled += 1;
            } else if l != self.layout {
                break;
            } else {
                let v = verdicts.get(k).copied().unwrap_or(NOT_ASKED);
                if v == NOT_ASKED && self.filtered {
                    break;
                }
                if v != FAILS && !bump(k, item) {
                    break;
                }
            }
            watermark = watermark.max(now);
            k += 1;
        }
        std::hint::black_box(touched);
        (k, unhandled, watermark)
    }
}

/// How many records [`Span::run`] warms at a time.
const WARM: usize = 16;

/// Reads what hashing field `s` of `rec` as a key reads first: the slot,
/// and a string's first bytes.
#[inline(always)]
fn warm(rec: &Record, s: u32) -> u64 {
    match rec.slots().get(s as usize) {
        Some(Value::Str(t)) => t.as_bytes().first().map_or(0, |&b| u64::from(b)),
        Some(Value::Int(i)) => *i as u64,
        _ => 0,
    }
}

impl Read {
    /// This read's value, borrowed from the record when it holds it (a
    /// declared field), as [`Read::value`] gives it.
    pub(super) fn view(self, rec: &Record) -> Cow<'_, Value> {
        match self {
            Read::Field(s) => rec
                .slots()
                .get(s as usize)
                .map_or(Cow::Owned(Value::None), Cow::Borrowed),
            Read::Std(_) => Cow::Owned(self.value(rec)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fast::tests::{S, check_with_and_without_lateness, line, program};
    use super::*;
    use crate::event::{Input, InputEvent, decode_line};
    use crate::runtime::Options;

    /// The events of `lines` (none malformed).
    fn events(lines: &[String]) -> Vec<InputEvent> {
        lines
            .iter()
            .flat_map(|l| decode_line(l))
            .filter_map(|i| match i {
                Input::Event(e) => Some(e),
                Input::Malformed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_batch_names_equal_key_texts_by_one_id() {
        // R's stretch counts by `path` (optional); Q's query has two keys,
        // so its events get no ID.
        let src = "event R { path: string? }\nevent Q { a: string, b: int }\n\
                   query a = R | summarize n = count() by path every 10s | emit metric \"a\"\n\
                   query b = Q | summarize n = count() by a, b every 10s | emit metric \"b\"";
        let lines = [
            line("R", 0, r#""path":"/a""#),
            line("R", 0, r#""path":"/b""#),
            line("Q", 0, r#""a":"/a","b":1"#),
            line("R", 0, r#""path":"/a""#),
            line("R", 0, r#""path":null"#),
            line("R", 0, r#""x":1"#),
            line("T", 0, r#""path":"/a""#),
            line("R", 0, r#""path":"/b""#),
            line("R", 0, r#""path":"/a/longer/than/eight/bytes""#),
        ];
        let e = Engine::new(program(src), Options::default());
        let batch = e.decode_batch(events(&lines));
        let ids = &batch.key_ids;
        assert_eq!(ids.ids, [0, 1, NO_ID, 0, NO_ID, NO_ID, NO_ID, 1, 2]);
        assert_eq!(ids.hashes.len(), 3);
        let hash = |t: &str| {
            let mut h = Mix(seed());
            h.part(KeyView::Str(t));
            h.finish()
        };
        assert_eq!(
            ids.hashes,
            [hash("/a"), hash("/b"), hash("/a/longer/than/eight/bytes")]
        );
        // Each batch its own stamp; no IDs without a stretch to read them.
        assert_ne!(e.decode_batch(events(&lines)).key_ids.stamp, ids.stamp);
        let e = Engine::new(program(src), Options::default()).general();
        assert!(e.decode_batch(events(&lines)).key_ids.is_empty());
    }

    #[test]
    fn batches_run_by_other_engines_and_run_twice_match_the_general_path() {
        // Batches decoded by one engine and run by others (as the bench's
        // kernel does), and each run twice in a row, so that the second
        // run finds its key IDs' places already there; windows close in
        // the middle of batches, with groups past `max` and late events.
        // R's stretches count by `path` alone (the flat per-group run);
        // Q's also sum, so they take the IDs one event at a time; Q comes
        // in runs between R's.
        let src = "event R { status: int, path: string? }\nevent Q { v: int, k: string }\n\
                   query a = R | summarize n = count() by path max 20 every 10s | emit metric \"a\"\n\
                   query b = Q | summarize n = count(), s = sum(v) by k every 10s | emit metric \"b\"";
        let mut lines = Vec::new();
        for k in 0..3000i64 {
            let t = k * S / 50 - if k % 17 == 3 { 12 * S } else { 0 };
            let path = match k % 13 {
                0 => String::new(),
                _ => format!(
                    r#","path":"/items/{}""#,
                    (k * 7) % if k < 1500 { 9 } else { 40 }
                ),
            };
            lines.push(line("R", t, &format!(r#""status":{}{path}"#, k % 3)));
            if (k / 40) % 3 == 1 {
                let v = k % 9;
                lines.push(line("Q", t, &format!(r#""v":{v},"k":"q{}""#, k % 7)));
            }
        }
        let p = program(src);
        let decoder = Engine::new(p.clone(), Options::default());
        for n in [7, 256, 1024] {
            let run = |mut e: Engine, twice: bool| {
                let mut got = Vec::new();
                for chunk in lines.chunks(n) {
                    let batch = decoder.decode_batch(events(chunk));
                    e.push_batch(&batch);
                    if twice {
                        e.push_batch(&batch);
                    }
                    got.extend(e.drain().iter().map(|o| o.to_json().to_string()));
                }
                e.finish(true);
                got.extend(e.drain().iter().map(|o| o.to_json().to_string()));
                got.push(e.counters.to_json().to_string());
                got
            };
            for twice in [false, true] {
                let expected = run(Engine::new(p.clone(), Options::default()).general(), twice);
                assert!(expected.iter().any(|l| l.contains("(overflow)")), "{n}");
                assert_eq!(
                    run(Engine::new(p.clone(), Options::default()), twice),
                    expected,
                    "batches of {n}, twice: {twice}"
                );
            }
        }
    }

    #[test]
    fn a_key_value_is_its_key_exactly_when_from_value_says_so() {
        let values = [
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(7),
            Value::Float(7.0),
            Value::str(""),
            Value::str("7"),
            Value::Duration(7),
            Value::Timestamp(7),
        ];
        let keys: Vec<Key> = values
            .iter()
            .filter_map(Key::from_value)
            .chain([Key::Unit, Key::Overflow])
            .collect();
        let hash_of = |v: &Value| {
            let mut h = Mix(7);
            h.part(KeyView::of_value(v));
            h.finish()
        };
        // Keys alike but for a digit or two, of every length up to 40,
        // all hash apart.
        let mut seen = std::collections::HashMap::new();
        for n in 0..40 {
            for i in 0..300 {
                let text = format!("{}{i}", "/api/v1/items/".repeat(3).get(..n).unwrap_or(""));
                let h = hash_of(&Value::str(&text));
                let other = seen.insert(h, text.clone());
                assert!(
                    other.as_ref().is_none_or(|o| *o == text),
                    "{text} {other:?}"
                );
            }
        }
        for v in &values {
            let key = Key::from_value(v).unwrap_or(Key::Unit);
            for k in &keys {
                assert_eq!(is_key(k, KeyView::of_value(v)), *k == key, "{k:?} {v:?}");
            }
            // Values of one key hash alike.
            for w in &values {
                if Key::from_value(w).unwrap_or(Key::Unit) == key {
                    assert_eq!(hash_of(v), hash_of(w), "{v:?} {w:?}");
                }
            }
        }
    }

    #[test]
    fn grouped_tallies_match_the_general_path() {
        // Two grouped queries on R (one filtered, one with two keys, one
        // optional), groups past `max`, absent keys, late events with and
        // without lateness, events of several windows interleaved, many
        // groups; Q counts by thread_id (a standard field) every 7s.
        let src = "event R { status: int, path: string? }\nevent Q { v: int }\n\
                   query a = R | summarize n = count() by path max 12 every 10s | emit metric \"a\"\n\
                   query b = R | where status >= 500 | summarize n = count(), s = sum(status), hi = max(status) by path, status max 40 every 4s | emit metric \"b\"\n\
                   query c = Q | summarize n = count(), lo = min(v) by thread_id every 7s | emit metric \"c\"";
        let mut input = Vec::new();
        for k in 0..600i64 {
            // Mostly in order, a tenth a few seconds back (an older window
            // still open with lateness, closed without), now and then far
            // back (late either way).
            let t = k * S / 10
                + match k % 10 {
                    3 => -4 * S,
                    7 if k % 70 == 7 => -30 * S,
                    _ => 0,
                };
            let path = match k % 11 {
                0 => String::new(),
                1 => r#","path":null"#.into(),
                _ => format!(r#","path":"/p{}""#, (k * 7) % if k < 300 { 9 } else { 30 }),
            };
            let status = [200, 500, 503, 500][k as usize % 4];
            input.push(line("R", t, &format!(r#""status":{status}{path}"#)));
            if k % 3 == 0 {
                input.push(line(
                    "Q",
                    t,
                    &format!(r#""v":{},"thread.id":{}"#, k % 13, k % 5),
                ));
            }
        }
        check_with_and_without_lateness(src, &input, 5 * S, &["late_events", "series_overflow"]);
    }
}
