//! The runtime's fast lanes: the same outputs as the general per-event
//! path, without its per-event allocations, for the shapes of program that
//! high-rate streams mostly run.
//!
//! - **Dispatch tables**: which queries, machines and handlers an event
//!   layout feeds, computed once at load instead of scanned per event.
//! - **Query fast lane** ([`FastQuery`]): a query that is `where` stages
//!   then a `summarize` whose keys and aggregate arguments are plain reads
//!   of the event (declared fields, standard fields) and whose aggregates
//!   are `count`, `count_if`, `sum`, `min` or `max`. Its `where` chain is
//!   the executor's batch prefilter or evaluated per event as usual; then
//!   the group is looked up by a borrowed key slice in the window of the
//!   event and its aggregates are updated in place. Anything else (a new
//!   window, a new group, a late event, `max` series overflow) goes to
//!   [`Engine::accumulate`], so those rules live in one place.
//!
//!   A query with no keys and only `count()` goes further: the events that
//!   fall in the window of the event before them are tallied ([`Tally`])
//!   and added to the window before any window closes. A query with keys
//!   keeps the groups of its latest window at hand
//!   (`runtime/grouped.rs`), so an event of such a group skips the window
//!   and group lookups.
//! - **Quiet lane** ([`quiet_layouts`], [`Engine::run_quiet`]): in a
//!   batch, an event whose layout feeds only such queries (no machine,
//!   handler or shaping rule), or that no layout matches, skips
//!   `process_at`, `dispatch` and `egress`; the unchanged events join one
//!   pending run, handed over before anything else is produced.
//! - **Machines**: which reads are plain keys ([`machine_keys`]) and
//!   whether any code asks `machine is State` ([`reads_states`]); the
//!   instances themselves are `runtime/machine.rs`'s.
//!
//! Each lane is checked against the general path by the unit tests at the
//! end of this file and by the differential tests of both engines.

use dtc_ir::{AggKind, Expr, ExprKind, Program, Stage, StdField};

use super::grouped::add_reads;
use super::{Engine, Machines};
use crate::exec::Site;
use crate::interp::{Frame, std_field};
use crate::value::{Key, Record, Value};

/// What one event layout feeds, in the order `dispatch` runs them.
#[derive(Debug, Default, Clone)]
pub(super) struct Route {
    pub queries: Vec<usize>,
    pub machines: Vec<usize>,
    /// (processor, handler).
    pub handlers: Vec<(usize, usize)>,
}

/// The route of every layout of `p`, by layout index.
pub(super) fn routes(p: &Program) -> Vec<Route> {
    (0..p.events.len() as u32)
        .map(|layout| Route {
            queries: (0..p.queries.len())
                .filter(|&qi| p.queries[qi].source == layout)
                .collect(),
            machines: (0..p.machines.len())
                .filter(|&mi| p.machines[mi].transitions.iter().any(|t| t.event == layout))
                .collect(),
            handlers: p
                .processors
                .iter()
                .enumerate()
                .flat_map(|(pi, proc_)| {
                    proc_
                        .handlers
                        .iter()
                        .enumerate()
                        .filter(move |(_, h)| h.event == layout)
                        .map(move |(hi, _)| (pi, hi))
                })
                .collect(),
        })
        .collect()
}

/// Per event layout, whether its events can take the batch lane
/// ([`Engine::run_quiet`]): every query they feed has a fast lane, and no
/// machine, handler or shaping rule reads them, so such an event egresses
/// unchanged and derives nothing.
pub(super) fn quiet_layouts(
    p: &Program,
    routes: &[Route],
    fast: &[Option<FastQuery>],
) -> Vec<bool> {
    routes
        .iter()
        .enumerate()
        .map(|(layout, r)| {
            r.machines.is_empty()
                && r.handlers.is_empty()
                && r.queries
                    .iter()
                    .all(|&qi| fast.get(qi).is_some_and(Option::is_some))
                && !p.shaping.iter().any(|s| s.event() == layout as u32)
        })
        .collect()
}

/// Per layout, whether a stretch of its events can be settled in bulk
/// (`Engine::run_stretch`): it is quiet and every query it feeds is a
/// `count_only` tally, so an event in the window of the one before it costs
/// one increment per query that passes. Empty when no layout is, so that
/// other programs pay nothing for it.
pub(super) fn bulk_layouts(
    quiet: &[bool],
    routes: &[Route],
    fast: &[Option<FastQuery>],
) -> Vec<bool> {
    let bulk: Vec<bool> = routes
        .iter()
        .zip(quiet)
        .map(|(r, &quiet)| {
            quiet
                && !r.queries.is_empty()
                && r.queries.iter().all(|&qi| {
                    fast.get(qi)
                        .is_some_and(|f| f.as_ref().is_some_and(|f| f.count_only))
                })
        })
        .collect();
    if bulk.contains(&true) {
        bulk
    } else {
        Vec::new()
    }
}

/// The one-query loop of `Engine::stretch_of`: how many of `times` and
/// `layouts` (from the stretch's start) it takes, and how many of them the
/// query counts. `verdicts` from the same start, `None` when not asked.
#[allow(clippy::too_many_arguments)]
fn count_stretch(
    (times, in_order): (&[i64], bool),
    layouts: &[u32],
    verdicts: Option<&[u8]>,
    filtered: bool,
    layout: u32,
    (lo, hi): (i64, i64),
    watermark: &mut i64,
    unhandled: &mut u64,
) -> (usize, i64) {
    let verdicts = match verdicts {
        Some(v) if !v.is_empty() => v,
        // Not asked: a query with a `where` has nothing to go on.
        _ if filtered => return (0, 0),
        _ => &[],
    };
    let (mut wm, mut unh, mut n, mut k) = (*watermark, 0u64, 0i64, 0usize);
    // One event: whether the stretch takes it.
    let step = |now: i64, l: u32, v: u8, wm: &mut i64, unh: &mut u64, n: &mut i64| {
        if now < lo || now >= hi {
            return false;
        }
        if l == layout {
            if v == super::NOT_ASKED && filtered {
                return false;
            }
            *n += i64::from(v != super::FAILS);
        } else if l == super::UNHANDLED {
            *unh += 1;
        } else {
            return false;
        }
        *wm = (*wm).max(now);
        true
    };
    // Whole chunks of events of the layout, inside the window and asked,
    // are taken at once, each condition a fold without branches
    // (`whole_chunk`). A chunk that fails one (an unhandled event, the
    // stretch's end) goes event by event.
    let len = times.len().min(layouts.len());
    let len = if verdicts.is_empty() {
        len
    } else {
        len.min(verdicts.len())
    };
    'chunks: while k < len {
        let end = (k + CHUNK).min(len);
        let (t, l) = (&times[k..end], &layouts[k..end]);
        let v = verdicts.get(k..end).unwrap_or(&[]);
        if end - k == CHUNK
            && let Some(most) = whole_chunk((t, in_order), l, v, (filtered, layout), (lo, hi))
        {
            // A byte a verdict: a chunk's count of them fits in one.
            let fails = v
                .iter()
                .fold(0u8, |f, &x| f.wrapping_add(u8::from(x == super::FAILS)));
            n += CHUNK as i64 - i64::from(fails);
            wm = wm.max(most);
            k = end;
            continue;
        }
        for (j, (&now, &l)) in t.iter().zip(l).enumerate() {
            let v = v.get(j).copied().unwrap_or(super::NOT_ASKED);
            if !step(now, l, v, &mut wm, &mut unh, &mut n) {
                k += j;
                break 'chunks;
            }
        }
        k = end;
    }
    *watermark = wm;
    *unhandled += unh;
    (k, n)
}

/// Events [`count_stretch`] takes a chunk at a time.
const CHUNK: usize = 64;
// A chunk's count of failed verdicts is kept in a byte.
const _: () = assert!(CHUNK <= u8::MAX as usize);

/// The latest time of a chunk of a stretch when it is all events of
/// `layout`, with times in `lo..hi` and, for a query with a `where`, every
/// verdict asked (`verdicts` empty: none asked, and the query has no
/// `where`); `None` otherwise. Each condition is a fold without branches
/// that the target's vector unit takes whole, though it has no 64-bit
/// comparison: the layouts by their bits that differ, the verdicts one
/// byte each. Times in order (`in_order`) are in the window when their
/// first and last are, and the last is the latest; otherwise the sign
/// bits of wrapping differences say whether one is outside ([`outside`])
/// and whether they are in order after all, and else a scalar pass finds
/// the latest. Before (a scalar least and greatest, the layouts compared
/// a byte at a time), `count_stretch` cost the where + count kernel 11.9
/// instructions an event; now 2.8.
fn whole_chunk(
    (times, in_order): (&[i64], bool),
    layouts: &[u32],
    verdicts: &[u8],
    (filtered, layout): (bool, u32),
    (lo, hi): (i64, i64),
) -> Option<i64> {
    let (&first, &last) = (times.first()?, times.last()?);
    // Eight lanes, so that the fold is one in vector code.
    let mut unlike = [0u32; 8];
    for c in layouts.chunks(8) {
        for (u, &l) in unlike.iter_mut().zip(c) {
            *u |= l ^ layout;
        }
    }
    let unasked = filtered
        && verdicts
            .iter()
            .fold(0u8, |u, &v| u | u8::from(v == super::NOT_ASKED))
            != 0;
    if unlike.iter().any(|&u| u != 0) || unasked {
        return None;
    }
    if in_order {
        return (first >= lo && last < hi).then_some(last);
    }
    // An empty window or one wider than `i64` holds: event by event.
    if hi.checked_sub(lo).is_none_or(|span| span <= 0) || outside(times, (lo, hi)) {
        return None;
    }
    // Within `lo..hi` (narrower than `i64` holds), two times' difference
    // does not overflow: its sign says their order.
    let back = times
        .iter()
        .skip(1)
        .zip(times)
        .fold(0i64, |b, (&t, &before)| b | t.wrapping_sub(before));
    if back >= 0 {
        return Some(last);
    }
    times.iter().copied().max()
}

/// Whether a time of `times` is outside `lo..hi` (`lo < hi`). For `t` in
/// the window, `t - lo` and `hi - 1 - t` are both at least 0 and (with a
/// window narrower than `i64` holds) do not overflow. For `t` below it,
/// `t - lo` is negative unless it is below `i64::MIN`, and then
/// `hi - 1 - t` is above `i64::MAX` (and below `2^64`), which wraps to a
/// negative; likewise above it. So an OR of the two wrapping differences
/// of every time has its sign bit set exactly when one is outside.
fn outside(times: &[i64], (lo, hi): (i64, i64)) -> bool {
    let last = hi.wrapping_sub(1);
    let signs = times
        .iter()
        .fold(0i64, |o, &t| o | t.wrapping_sub(lo) | last.wrapping_sub(t));
    signs < 0
}

/// A plain read of the current event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Read {
    Field(u32),
    Std(StdField),
}

impl Read {
    fn of(e: &Expr) -> Option<Read> {
        match &e.kind {
            ExprKind::Field(s) => Some(Read::Field(*s)),
            // Attribute maps are built per read; not a plain read.
            ExprKind::Std(StdField::Attrs | StdField::Resource) => None,
            ExprKind::Std(f) => Some(Read::Std(*f)),
            _ => None,
        }
    }

    /// The value the interpreter's `eval` gives for this read.
    pub(super) fn value(self, rec: &Record) -> Value {
        match self {
            Read::Field(s) => rec.slots().get(s as usize).cloned().unwrap_or(Value::None),
            Read::Std(f) => std_int(rec, f).unwrap_or_else(|| std_field(rec, f)),
        }
    }

    /// The key of this read's value, if it can be one.
    fn key_of(self, rec: &Record) -> Option<Key> {
        match self {
            Read::Field(s) => rec.slots().get(s as usize).and_then(Key::from_value),
            Read::Std(_) => Key::from_value(&self.value(rec)),
        }
    }

    /// The group key of this read, as `run_query` computes it.
    fn key(self, rec: &Record) -> Key {
        self.key_of(rec).unwrap_or(Key::Unit)
    }
}

/// An integer standard field from the record's compact row, when it has
/// one: the same value as `std_field` (the row is built by the same rules),
/// without its lookup of `thread.id` among the attributes.
fn std_int(rec: &Record, f: StdField) -> Option<Value> {
    let Some(Some(row)) = rec.row.get() else {
        return None;
    };
    let wrap: fn(i64) -> Value = match f {
        StdField::Time | StdField::ObservedTime => Value::Timestamp,
        StdField::Severity | StdField::ThreadId => Value::Int,
        _ => return None,
    };
    let slot = row.get(crate::slots::std_slot(f)? as usize)?;
    Some(if slot.tag == crate::slots::TAG_PRESENT {
        wrap(slot.bits as i64)
    } else {
        Value::None
    })
}

/// Per machine of `p`, the layouts whose instance key is a plain read.
pub(super) fn machine_keys(p: &Program) -> Vec<Vec<(u32, Read)>> {
    p.machines
        .iter()
        .map(|m| {
            m.keys
                .iter()
                .flatten()
                .filter_map(|(layout, e)| Some((*layout, Read::of(e)?)))
                .collect()
        })
        .collect()
}

/// Whether any code of `p` asks `machine is State`. Read from the IR's
/// serialised form, where an expression kind appears only as an object
/// key (names and strings of the program are values), so the answer is
/// exact and needs no walker over every IR node kind.
pub(super) fn reads_states(p: &Program) -> bool {
    fn has_key(j: &serde_json::Value, key: &str) -> bool {
        match j {
            serde_json::Value::Object(o) => {
                o.contains_key(key) || o.values().any(|v| has_key(v, key))
            }
            serde_json::Value::Array(a) => a.iter().any(|v| has_key(v, key)),
            _ => false,
        }
    }
    // A program that cannot be serialised is assumed to read states: the
    // slower path, never a wrong one.
    serde_json::to_value(p).map_or(true, |j| has_key(&j, "InState"))
}

/// A query the fast lane runs (see the module doc).
#[derive(Debug, Clone)]
pub(super) struct FastQuery {
    /// The `summarize` stage; every stage before it is a `where`.
    pub si: usize,
    pub keys: Vec<Read>,
    /// The arguments of each aggregate, in order.
    pub args: Vec<Vec<Read>>,
    pub every_ns: i64,
    /// No keys and only `count()`: events in the window of the last one
    /// are tallied (see [`Tally`]).
    pub count_only: bool,
}

/// Events of a `count_only` query counted in the window of the event
/// before them, not yet added to its aggregates: an increment per event
/// instead of a window and group lookup. Added (`settle_tallies`) before
/// any window closes, so no output can tell.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tally {
    pub start: i64,
    /// `start` plus the window's length (saturated): an event at a time in
    /// `start..end` is in this window, with no division to find out.
    pub end: i64,
    pub n: i64,
}

/// The fast lane of each query of `p`, where it has one.
pub(super) fn fast_queries(p: &Program) -> Vec<Option<FastQuery>> {
    p.queries
        .iter()
        .map(|q| {
            let si = q
                .stages
                .iter()
                .position(|s| !matches!(s, Stage::Where(_)))?;
            let Stage::Summarize {
                keys,
                aggregates,
                every_ns,
                ..
            } = &q.stages[si]
            else {
                return None;
            };
            if *every_ns <= 0 {
                return None;
            }
            let keys = keys
                .iter()
                .map(|(_, e)| Read::of(e))
                .collect::<Option<Vec<_>>>()?;
            let args = aggregates
                .iter()
                .map(|a| match a.kind {
                    AggKind::Count
                    | AggKind::CountIf
                    | AggKind::Sum
                    | AggKind::Min
                    | AggKind::Max => a.args.iter().map(Read::of).collect::<Option<Vec<_>>>(),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            let count_only = keys.is_empty()
                && aggregates
                    .iter()
                    .all(|a| a.kind == AggKind::Count && a.args.is_empty());
            Some(FastQuery {
                si,
                keys,
                args,
                every_ns: *every_ns,
                count_only,
            })
        })
        .collect()
}

impl Engine {
    /// This engine with its fast lanes off: every event takes the general
    /// path. The reference the lanes are tested against (the differential
    /// tests compare the JIT, lanes on, with the interpreter, lanes off).
    pub fn general(mut self) -> Engine {
        self.fast.iter_mut().for_each(|f| *f = None);
        self.machine_keys.iter_mut().for_each(Vec::clear);
        self.quiet.clear();
        self.bulk.clear();
        self.grouped.iter_mut().for_each(|g| *g = None);
        self.group_runs.clear();
        self.redactions.clear();
        self.redacting.clear();
        self.reads_states = true;
        self.lines = None;
        self
    }

    /// `run_query` for a query with a fast lane: the same effect on the
    /// windows and counters, with no allocation when the event's window and
    /// group exist. `passed` is the batch prefilter's verdict, if asked.
    /// `now`: the record's time.
    pub(super) fn run_fast_query(
        &mut self,
        qi: usize,
        rec: &Record,
        now: i64,
        passed: Option<bool>,
    ) {
        let Some(fq) = self.fast[qi].as_ref() else {
            return;
        };
        match passed {
            Some(false) => return,
            Some(true) => {}
            None if fq.si == 0 => {}
            None => {
                let program = &self.shared.program;
                let world = Machines {
                    shared: &self.shared,
                    states: &self.machines,
                };
                let mut i = self.shared.interp(&world, self.seq);
                let empty: [Value; 0] = [];
                for (si, stage) in program.queries[qi].stages[..fq.si].iter().enumerate() {
                    let Stage::Where(e) = stage else { return };
                    let mut f = Frame {
                        event: Some(rec),
                        row: Some(&empty),
                        locals: vec![],
                        vars: &mut [],
                        var_defs: &[],
                        slots: &mut [],
                    };
                    let site = Site::Stage {
                        query: qi as u32,
                        stage: si as u32,
                        index: 0,
                    };
                    let v = self
                        .shared
                        .executor
                        .eval(site, e, &mut i, &mut f)
                        .unwrap_or(Value::None);
                    if v != Value::Bool(true) {
                        return;
                    }
                }
            }
        }
        let every = fq.every_ns;
        // Consecutive events mostly share a window: its bounds are kept,
        // not divided out again.
        let (start, end) = match self.spans[qi] {
            (s, e) if s <= now && now < e => (s, e),
            _ => {
                let s = now.div_euclid(every).saturating_mul(every);
                self.spans[qi] = (s, s.saturating_add(every));
                self.spans[qi]
            }
        };
        if let Some(t) = &mut self.tallies[qi]
            && t.start == start
        {
            // The window of the last event is open (tallies settle before
            // any window closes), so this event is on time and counted.
            t.n += 1;
            return;
        }
        if fq.count_only {
            settle(&mut self.tallies[qi], &mut self.queries[qi]);
        }
        // A grouped query's latest window: its group at hand, or the hash
        // to check the group out with once the general rules below have
        // added this event to it.
        let mut check_out = None;
        if let Some(g) = &mut self.grouped[qi] {
            if g.start == start {
                match g.bump(rec) {
                    Ok(()) => return,
                    Err(h) => check_out = Some(h),
                }
            } else if start > g.start {
                g.hold(start, end, &mut self.queries[qi]);
                check_out = Some(g.hash(rec));
            }
        }
        let mut keys = std::mem::take(&mut self.key_buf);
        keys.clear();
        keys.extend(fq.keys.iter().map(|r| r.key(rec)));
        let late = end
            <= self
                .watermark
                .saturating_sub(self.shared.options.lateness_ns);
        if !late
            && let Some(groups) = self.queries[qi].windows.get_mut(&start)
            && let Some(aggs) = groups.get_mut(keys.as_slice())
        {
            add_reads(aggs, &fq.args, rec);
            if let (Some(h), Some(g)) = (check_out, &mut self.grouped[qi]) {
                g.check_out(h, &keys, &mut self.queries[qi]);
            }
            self.key_buf = keys;
            // A window whose tally was settled (another window closed)
            // starts a new one.
            if fq.count_only {
                self.tallies[qi] = Some(Tally { start, end, n: 0 });
            }
            return;
        }
        // A new window or group, a late event or an overflow: the general
        // rules, once.
        let si = fq.si;
        let args: Vec<Vec<Value>> = fq
            .args
            .iter()
            .map(|a| a.iter().map(|r| r.value(rec)).collect())
            .collect();
        let owned = keys.clone();
        let count_only = fq.count_only;
        self.accumulate(qi, si, owned, &args, start);
        if let (Some(h), Some(g)) = (check_out, &mut self.grouped[qi]) {
            g.check_out(h, &keys, &mut self.queries[qi]);
        }
        self.key_buf = keys;
        if count_only && self.queries[qi].windows.contains_key(&start) {
            self.tallies[qi] = Some(Tally { start, end, n: 0 });
        }
    }

    /// One event of a batch whose layout is quiet ([`quiet_layouts`]), or
    /// one no layout matches: what `process_at` does for it, without the
    /// general path's per-event steps that cannot apply (derived records,
    /// shaping rules, the egress item). The caller has checked that no
    /// timeout is due at `now`. `at`: the event's position in the batch.
    #[inline]
    pub(super) fn run_quiet(&mut self, rec: Option<&Record>, now: i64, at: usize) {
        self.seq += 1;
        self.counters.events += 1;
        match rec {
            None => self.counters.unhandled += 1,
            Some(rec) => {
                let layout = rec.layout as usize;
                for k in 0..self.routes[layout].queries.len() {
                    let qi = self.routes[layout].queries[k];
                    let verdict = self.verdicts[qi]
                        .get(at)
                        .copied()
                        .unwrap_or(super::NOT_ASKED);
                    if verdict == super::FAILS {
                        continue;
                    }
                    // A count in the window of the event before it: the
                    // tally's increment, inline.
                    if let Some(t) = &mut self.tallies[qi]
                        && now >= t.start
                        && now < t.end
                        && (verdict == super::PASSES
                            || self.fast[qi].as_ref().is_some_and(|f| f.si == 0))
                    {
                        t.n += 1;
                        continue;
                    }
                    // A group of the latest window of a grouped query,
                    // checked out: its aggregates, at hand.
                    if let Some(g) = &mut self.grouped[qi]
                        && g.holds(now)
                        && (verdict == super::PASSES || !g.filtered)
                        && g.bump(rec).is_ok()
                    {
                        continue;
                    }
                    let passed = match verdict {
                        super::PASSES => Some(true),
                        _ => None,
                    };
                    self.run_fast_query(qi, rec, now, passed);
                }
            }
        }
        self.counters.egressed += 1;
        // The quiet lane produces nothing else, so its events stay one
        // pending run until something is (`flush_quiet`).
        if self.quiet_run.0 == self.quiet_run.1 {
            self.quiet_run.0 = at;
        }
        self.quiet_run.1 = at + 1;
        if now > self.watermark {
            self.watermark = now;
            let cutoff = now.saturating_sub(self.shared.options.lateness_ns);
            if cutoff >= self.next_close {
                self.flush_quiet();
                self.close_windows(cutoff);
            }
        }
    }

    /// Runs the longest stretch of a batch from position `from` whose every
    /// event `run_quiet` would settle with tally increments alone: an event
    /// no layout matches, or one of a [`bulk_layouts`] layout whose every
    /// query the prefilter failed or whose tally's window holds it, with no
    /// timeout due and no window to close at its time. Their effect is
    /// `run_quiet`'s, added up: counters, tallies, the pending run of
    /// unchanged events and the watermark. Returns where the stretch ends:
    /// the caller runs that event the usual way.
    /// `in_order`: `times` never go back (`Batch::in_order`), which lets
    /// a stretch check its chunks' times by their first and last.
    pub(super) fn run_stretch(
        &mut self,
        layouts: &[u32],
        (times, in_order): (&[i64], bool),
        from: usize,
    ) -> usize {
        let due = self.deadlines.first().map_or(i64::MAX, |(t, ..)| *t);
        let mut k = from;
        let mut unhandled = 0u64;
        let mut watermark = self.watermark;
        // One layout at a time (events no layout matches go with any); a
        // stretch that stops at another layout's event goes on with it.
        loop {
            let at = k;
            let layout = match layouts.get(k) {
                None => break,
                Some(&super::UNHANDLED) => None,
                Some(&l) => Some(l),
            };
            k = self.stretch_of(
                layout,
                layouts,
                (times, in_order),
                k,
                due,
                &mut watermark,
                &mut unhandled,
            );
            if k == at {
                break;
            }
        }
        self.ran_quietly(from..k, unhandled, watermark);
        k
    }

    /// What `run_quiet` leaves of the batch's events `run` (each one that
    /// no layout matches counted in `unhandled`), run in bulk by a stretch
    /// that ends before any window closes: counters, the pending run of
    /// unchanged events, the watermark.
    pub(super) fn ran_quietly(
        &mut self,
        run: std::ops::Range<usize>,
        unhandled: u64,
        watermark: i64,
    ) {
        let n = run.len() as u64;
        if n > 0 {
            self.seq += n;
            self.counters.events += n;
            self.counters.unhandled += unhandled;
            self.counters.egressed += n;
            if self.quiet_run.0 == self.quiet_run.1 {
                self.quiet_run.0 = run.start;
            }
            self.quiet_run.1 = run.end;
            self.watermark = watermark;
        }
    }

    /// The part of [`Engine::run_stretch`] from `k` over events of one
    /// `layout` (and events no layout matches): its queries' verdicts and
    /// tally windows read once, the counts added when it ends. Returns
    /// where it ends.
    #[allow(clippy::too_many_arguments)]
    fn stretch_of(
        &mut self,
        layout: Option<u32>,
        layouts: &[u32],
        (times, in_order): (&[i64], bool),
        mut k: usize,
        due: i64,
        watermark: &mut i64,
        unhandled: &mut u64,
    ) -> usize {
        /// A query of the layout: its verdicts on the batch (empty: not
        /// asked), whether it has a `where` stage, and the events counted.
        struct Counted<'v> {
            verdicts: &'v [u8],
            filtered: bool,
            n: i64,
        }
        const MOST: usize = 4;
        let queries: &[usize] = match layout {
            Some(l) if self.bulk.get(l as usize) == Some(&true) => &self.routes[l as usize].queries,
            Some(_) => return k,
            None => &[],
        };
        if queries.len() > MOST {
            return k;
        }
        // Times the tallies of every query hold: `lo..hi`, and before any
        // timeout is due.
        let (mut lo, mut hi) = (i64::MIN, due);
        let mut counted: [Option<Counted>; MOST] = [const { None }; MOST];
        for (c, &qi) in counted.iter_mut().zip(queries) {
            let Some(t) = self.tallies[qi] else {
                return k;
            };
            lo = lo.max(t.start);
            hi = hi.min(t.end);
            *c = Some(Counted {
                verdicts: &self.verdicts[qi],
                filtered: self.fast[qi].as_ref().is_none_or(|f| f.si != 0),
                n: 0,
            });
        }
        let counted = &mut counted[..queries.len()];
        // No window closes before `next_close + lateness` (saturated, so at
        // worst a stretch ends early and its event takes the usual path).
        let lateness = self.shared.options.lateness_ns;
        hi = hi.min(self.next_close.saturating_add(lateness));
        if let (Some(layout), [Some(c)]) = (layout, &mut *counted) {
            // One query, the common case: its own loop.
            let (end, n) = count_stretch(
                (&times[k..], in_order),
                &layouts[k..],
                c.verdicts.get(k..),
                c.filtered,
                layout,
                (lo, hi),
                watermark,
                unhandled,
            );
            c.n = n;
            k += end;
        } else {
            'events: while let (Some(&now), Some(&l)) = (times.get(k), layouts.get(k)) {
                if now < lo || now >= hi {
                    break;
                }
                if l == super::UNHANDLED {
                    *unhandled += 1;
                } else if layout != Some(l) {
                    break;
                } else {
                    // All of the event's queries are checked before any is
                    // counted.
                    for c in counted.iter().flatten() {
                        let v = c.verdicts.get(k).copied().unwrap_or(super::NOT_ASKED);
                        if v == super::NOT_ASKED && c.filtered {
                            break 'events;
                        }
                    }
                    for c in counted.iter_mut().flatten() {
                        let v = c.verdicts.get(k).copied().unwrap_or(super::NOT_ASKED);
                        c.n += i64::from(v != super::FAILS);
                    }
                }
                *watermark = (*watermark).max(now);
                k += 1;
            }
        }
        let adds: [i64; MOST] =
            std::array::from_fn(|i| counted.get(i).and_then(|c| c.as_ref()).map_or(0, |c| c.n));
        for (&qi, n) in queries.iter().zip(adds) {
            if let Some(t) = &mut self.tallies[qi] {
                t.n += n;
            }
        }
        k
    }

    /// Settles every query's tally, and puts back the groups of the
    /// grouped tallies whose window closes at `cutoff`: before windows
    /// close.
    pub(super) fn settle_tallies(&mut self, cutoff: i64) {
        for (t, q) in self.tallies.iter_mut().zip(&mut self.queries) {
            settle(t, q);
        }
        for (g, q) in self.grouped.iter_mut().zip(&mut self.queries) {
            if let Some(g) = g
                && g.end <= cutoff
            {
                g.settle(q);
            }
        }
    }
}

/// Adds a query's tallied events to their window's counts.
fn settle(tally: &mut Option<Tally>, q: &mut super::QueryState) {
    let Some(t) = tally.take() else {
        return;
    };
    let group = q
        .windows
        .get_mut(&t.start)
        .and_then(|g| g.get_mut([].as_slice()));
    for a in group.into_iter().flatten() {
        if let super::Agg::Count(c) = a {
            *c += t.n;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::event::{Input, decode_line};
    use crate::runtime::Options;

    pub(in crate::runtime) fn program(src: &str) -> Program {
        let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
        let out = session.check_source("fast.dt", src);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        out.lower().expect("checks").expect("verifies")
    }

    const T0: i64 = 1_795_341_600_000_000_000;
    pub(in crate::runtime) const S: i64 = 1_000_000_000;

    /// An event line at `t` seconds after `T0`.
    pub(in crate::runtime) fn line(event: &str, t: i64, fields: &str) -> String {
        format!(r#"{{"event":"{event}","time":{},{fields}}}"#, T0 + t)
    }

    fn write(outputs: Vec<crate::Output>, text: &mut String) {
        for o in outputs {
            text.push_str(&o.to_json().to_string());
            text.push('\n');
        }
    }

    /// The general path, line by line: the reference.
    fn reference(p: &Program, o: &Options, input: &str) -> String {
        Engine::new(p.clone(), o.clone())
            .general()
            .run_json_lines(input)
    }

    /// The fast lanes in batches of `n` lines (`push_lines`), then in
    /// batches decoded ahead (`push_batch`), each compared with the
    /// reference. Returns the reference's summary, for the tests to show
    /// that the case they build happened.
    pub(in crate::runtime) fn check(src: &str, o: &Options, input: &[String]) -> serde_json::Value {
        let p = program(src);
        let text = input.join("\n");
        let expected = reference(&p, o, &text);
        assert_eq!(
            Engine::new(p.clone(), o.clone()).run_json_lines(&text),
            expected
        );
        for n in [1, 3, 64, 512] {
            let mut e = Engine::new(p.clone(), o.clone());
            let mut got = String::new();
            for chunk in input.chunks(n) {
                e.push_lines(chunk.iter().map(String::as_str));
                write(e.drain(), &mut got);
            }
            e.finish(true);
            write(e.drain(), &mut got);
            got.push_str(&e.counters.to_json().to_string());
            got.push('\n');
            assert_eq!(got, expected, "batches of {n} lines");
            let mut e = Engine::new(p.clone(), o.clone());
            let mut got = String::new();
            for chunk in input.chunks(n) {
                let events = chunk
                    .iter()
                    .flat_map(|l| decode_line(l))
                    .filter_map(|i| match i {
                        Input::Event(e) => Some(e),
                        Input::Malformed { .. } => None,
                    });
                let batch = e.decode_batch(events);
                e.push_batch(&batch);
                write(e.drain(), &mut got);
            }
            e.finish(true);
            write(e.drain(), &mut got);
            // The counters too, but for lines: decoded batches have none.
            let mut counters = e.counters.to_json();
            let mut reference = serde_json::from_str::<serde_json::Value>(
                expected.lines().last().unwrap_or_default(),
            )
            .expect("the summary is JSON");
            for c in [&mut counters, &mut reference] {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lines");
                    o.remove("malformed");
                }
            }
            assert_eq!(counters, reference, "counters of decoded batches of {n}");
            // Decoded batches have no lines: no line count, no malformed ones.
            let lines_free = |t: &str| {
                t.lines()
                    .filter(|l| !l.contains("\"summary\"") && !l.contains("\"malformed\""))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(
                lines_free(&got),
                lines_free(&expected),
                "decoded batches of {n}"
            );
        }
        let summary = expected.lines().last().unwrap_or_default();
        serde_json::from_str(summary).expect("the summary is JSON")
    }

    #[test]
    fn unchanged_egress_of_a_batch_is_handed_over_in_runs() {
        let src = "event R { status: int, path: string }\n\
                   event A { secret: string }\n\
                   event Slow { path: string }\n\
                   suppress R when status == 404\n\
                   redact A.secret with hash\n\
                   processor p { on R when event.status == 500 { emit log Slow { path: event.path } } }";
        let p = program(src);
        let mut input = Vec::new();
        for k in 0..40 {
            let status = [200, 200, 404, 200, 500, 503, 200][k % 7];
            input.push(line(
                "R",
                k as i64 * S,
                &format!(r#""status":{status},"path":"/p{k}""#),
            ));
            if k % 11 == 10 {
                input.push(line("Other", k as i64 * S, r#""x":1"#));
            }
            if k % 9 == 4 {
                input.push(line("A", k as i64 * S, r#""secret":"s""#));
            }
        }
        let check_runs = |produced: Vec<crate::Produced>, n_events: usize| -> Vec<crate::Output> {
            let mut outputs = Vec::new();
            let mut n_runs = 0;
            for item in produced {
                if let crate::Produced::Unchanged(run) = &item {
                    assert!(!run.is_empty());
                    n_runs += 1;
                }
                item.push_outputs(&mut outputs);
            }
            assert!(
                n_runs > 0 && n_runs < n_events,
                "{n_runs} runs of {n_events} events"
            );
            outputs
        };
        let events = || {
            input
                .iter()
                .flat_map(|l| decode_line(l))
                .filter_map(|i| match i {
                    Input::Event(e) => Some(e),
                    Input::Malformed { .. } => None,
                })
        };
        let mut reference = Engine::new(p.clone(), Options::default()).general();
        for e in events().chain(events()) {
            reference.push_event(e);
        }
        let expected = reference.drain();
        // The same batch twice into one engine: runs end with their push.
        let mut e = Engine::new(p.clone(), Options::default());
        let batch = e.decode_batch(events());
        e.push_batch(&batch);
        let mut got = check_runs(e.drain_lazy(), batch.len());
        e.push_batch(&batch);
        got.extend(check_runs(e.drain_lazy(), batch.len()));
        assert_eq!(got, expected);
        let mut e = Engine::new(p.clone(), Options::default());
        e.push_lines(input.iter().map(String::as_str));
        e.push_lines(input.iter().map(String::as_str));
        assert_eq!(check_runs(e.drain_lazy(), 2 * batch.len()), expected);
        // One event at a time: no runs.
        let mut e = Engine::new(p, Options::default());
        for ev in events() {
            e.push_event(ev);
        }
        assert!(
            e.drain_lazy()
                .iter()
                .all(|o| !matches!(o, crate::Produced::Unchanged(_)))
        );
    }

    #[test]
    fn eligible_queries_are_where_stages_then_a_plain_summarize() {
        let p = program(
            "event R { status: int, path: string, ms: float? }\n\
             query a = R | where status >= 500 | summarize n = count(), s = sum(status), lo = min(status) by path every 1m | emit metric \"a\"\n\
             query b = R | summarize p = percentile(status, 99) every 1m | emit metric \"b\"\n\
             query c = R | summarize n = count() by k = len(path) every 1m | emit metric \"c\"\n\
             query d = R | extend x = status | summarize n = count() every 1m | emit metric \"d\"\n\
             query e = R | summarize n = count_if(status > 1) by service every 1m | emit metric \"e\"",
        );
        let fast = fast_queries(&p);
        let a = fast[0].as_ref().expect("where + plain summarize");
        assert_eq!((a.si, a.keys.len(), a.args.len()), (1, 1, 3));
        assert!(fast[1].is_none(), "percentile takes the general path");
        assert!(fast[2].is_none(), "a computed key takes the general path");
        assert!(fast[3].is_none(), "an extend before the summarize");
        assert!(fast[4].is_none(), "a computed count_if argument");
    }

    #[test]
    fn windows_closing_mid_batch_and_late_events_match_the_general_path() {
        let src = "event R { status: int, path: string }\n\
                   query a = R | where status >= 500 | summarize n = count(), s = sum(status) by path every 10s | emit metric \"a\"";
        let mut input = Vec::new();
        for (k, t) in [0, 3, 9, 10, 11, 25, 4, 26, 19, 40, 41, 2, 55, 70]
            .iter()
            .enumerate()
        {
            let status = [500, 200, 503, 500][k % 4];
            input.push(line(
                "R",
                t * S,
                &format!(r#""status":{status},"path":"/p{}""#, k % 3),
            ));
        }
        let on_time = check(src, &Options::default(), &input);
        assert!(on_time["late_events"].as_u64() > Some(0), "{on_time}");
        let late = Options {
            lateness_ns: 10 * S,
            ..Options::default()
        };
        let with_lateness = check(src, &late, &input);
        // `count()` alone, with no keys: tallied between window changes.
        let tallied = "event R { status: int, path: string }\n\
                       query a = R | where status >= 500 | summarize n = count(), m = count() every 10s | emit metric \"a\"";
        assert!(
            fast_queries(&program(tallied))[0]
                .as_ref()
                .is_some_and(|f| f.count_only)
        );
        assert_eq!(check(tallied, &Options::default(), &input), on_time);
        assert_eq!(check(tallied, &late, &input), with_lateness);
        // Lateness takes back some of them.
        assert!(with_lateness["late_events"].as_u64() < on_time["late_events"].as_u64());
    }

    #[test]
    fn layouts_of_redactions_only_match_the_general_path() {
        // L: only redactions (run as one plan), of present, null, absent
        // and non-text values; M: a redaction beside a suppression (the
        // rule loop); R: a query, no shaping; N: only redactions, all of
        // whose fields may be absent or null (no edit: it egresses
        // unchanged), and a query that reads it (it is dispatched, where L,
        // which nothing reads, is not).
        let src = "event L { user: string? @pii, email: string? @pii, ip: string? @pii, n: int? @pii }\n\
                   event M { user: string @pii }\n\
                   event R { status: int }\n\
                   event N { a: string? @pii, b: string? @pii, c: int }\n\
                   redact L.user with hash\nredact L.email with mask\nredact L.ip with drop\n\
                   redact L.n with hash\nredact M.user with mask\nsuppress M\n\
                   redact N.a with mask\nredact N.b with hash\n\
                   query q = R | summarize n = count() every 10s | emit metric \"q\"\n\
                   query qn = N | summarize n = count() every 10s | emit metric \"qn\"";
        let mut input = Vec::new();
        for k in 0..200i64 {
            let t = k * S / 10;
            let user = match k % 5 {
                0 => String::new(),
                1 => r#""user":null,"#.into(),
                _ => format!(r#""user":"user{k}","#),
            };
            let email = if k % 7 == 3 {
                String::new()
            } else {
                format!(r#""email":"u{k}@example.com","#)
            };
            input.push(line(
                "L",
                t,
                &format!(r#"{user}{email}"ip":"10.0.0.{}","n":{k}"#, k % 256),
            ));
            if k % 3 == 0 {
                input.push(line("M", t, &format!(r#""user":"m{k}""#)));
            }
            if k % 4 == 0 {
                input.push(line("R", t, r#""status":200"#));
            }
            // Both absent, one null, one present, or both present (a
            // non-ASCII mask among them).
            let n = match k % 6 {
                0 | 1 => String::new(),
                2 => r#""a":null,"#.into(),
                3 => format!(r#""b":"n{k}","#),
                4 => format!(r#""a":"é{k}@example.com","b":null,"#),
                _ => format!(r#""a":"n{k}@example.com","b":"n{k}","#),
            };
            input.push(line("N", t, &format!(r#"{n}"c":{k}"#)));
        }
        let p = program(src);
        let plans = super::super::redaction_plans(&p);
        assert_eq!(
            plans.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, false, true]
        );
        check(src, &Options::default(), &input);
    }

    /// [`check`] with the default options and with `lateness_ns`; in each
    /// run, every one of `counters` is above zero (the case reached what it
    /// is about).
    pub(in crate::runtime) fn check_with_and_without_lateness(
        src: &str,
        input: &[String],
        lateness_ns: i64,
        counters: &[&str],
    ) {
        let late = Options {
            lateness_ns,
            ..Options::default()
        };
        for o in [Options::default(), late] {
            let summary = check(src, &o, input);
            for counter in counters {
                assert!(summary[counter].as_u64() > Some(0), "{counter}: {summary}");
            }
        }
    }

    /// The lines between a quiet layout's events in the lane tests, the
    /// `k`th at time `t`: an `S` (the machine's event) when `k` is 2 modulo
    /// `every[0]`, an unknown `T` at 3 modulo `every[1]`, an `R` that does
    /// not match its schema at 7 modulo `every[2]`, a malformed line at 11
    /// modulo `every[3]`.
    fn others(input: &mut Vec<String>, k: i64, t: i64, every: [i64; 4]) {
        if k % every[0] == 2 {
            input.push(line("S", t, &format!(r#""k":{}"#, k % 4)));
        }
        if k % every[1] == 3 {
            input.push(line("T", t, r#""x":1"#));
        }
        if k % every[2] == 7 {
            input.push(line("R", t, r#""status":"high""#));
        }
        if k % every[3] == 11 {
            input.push("{not json".into());
        }
    }

    #[test]
    fn the_quiet_lane_between_general_events_matches_the_general_path() {
        // R is quiet (only fast queries read it); S is not (a machine with
        // a timeout, a suppress rule); T is unknown to the program; some
        // lines are malformed and one R does not match its schema. Windows
        // close and timeouts fall due in the middle of quiet runs.
        let src = "event R { status: int }\nevent S { k: int }\n\
                   query a = R | where status >= 500 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = R | summarize n = count(), hi = max(status) every 7s | emit metric \"b\"\n\
                   suppress S when k == 3\n\
                   machine m per event.k max 4 {\n state Idle\n state Busy\n\
                   on S in Idle -> Busy\n on S in Busy -> Idle\n after 5s in Busy -> Idle { emit log Stuck { k: 1 } }\n}";
        let p = program(src);
        assert_eq!(
            quiet_layouts(&p, &routes(&p), &fast_queries(&p))[..2],
            [true, false]
        );
        let mut input = Vec::new();
        for k in 0..90i64 {
            let t = k * S / 2 + if k % 13 == 5 { -8 * S } else { 0 };
            input.push(line(
                "R",
                t,
                &format!(r#""status":{}"#, [200, 500, 503][k as usize % 3]),
            ));
            others(&mut input, k, t, [5, 17, 23, 29]);
        }
        let summary = check(src, &Options::default(), &input);
        for counter in [
            "late_events",
            "schema_mismatches",
            "unhandled",
            "suppressed",
            "malformed",
            "derived",
        ] {
            assert!(summary[counter].as_u64() > Some(0), "{counter}: {summary}");
        }
    }

    #[test]
    fn stretches_of_tallied_events_match_the_general_path() {
        // R feeds one count with a `where` (its own loop), Q a count with a
        // `where` and one without (the loop over several queries), P a count
        // without: all settled in bulk between window changes (R and Q only
        // when the executor filters batches, which the JIT does: dtc-jit
        // runs this case too). S is a machine with a timeout, T unknown to
        // the program; some R do not match their schema, some lines are
        // malformed, some events are late.
        let src = "event R { status: int }\nevent Q { v: int }\nevent S { k: int }\nevent P { w: int }\n\
                   query d = P | summarize n = count() every 5s | emit metric \"d\"\n\
                   query a = R | where status >= 500 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = Q | where v > 1 | summarize n = count() every 4s | emit metric \"b\"\n\
                   query c = Q | summarize n = count() every 6s | emit metric \"c\"\n\
                   machine m per event.k max 4 {\n state Idle\n state Busy\n\
                   on S in Idle -> Busy\n on S in Busy -> Idle\n after 3s in Busy -> Idle { emit log Stuck { k: 1 } }\n}";
        let p = program(src);
        let (r, f) = (routes(&p), fast_queries(&p));
        let quiet = quiet_layouts(&p, &r, &f);
        assert_eq!(bulk_layouts(&quiet, &r, &f)[..4], [true, true, false, true]);
        let mut input = Vec::new();
        for k in 0..400i64 {
            let t = k * S / 5 + if k % 37 == 5 { -9 * S } else { 0 };
            input.push(line(
                "R",
                t,
                &format!(r#""status":{}"#, [200, 500, 503][k as usize % 3]),
            ));
            if k % 3 != 0 {
                input.push(line("Q", t, &format!(r#""v":{}"#, k % 4)));
            }
            if k % 50 < 20 {
                input.push(line("P", t, r#""w":1"#));
            }
            others(&mut input, k, t, [31, 7, 53, 61]);
        }
        check_with_and_without_lateness(
            src,
            &input,
            2 * S,
            &["late_events", "schema_mismatches", "unhandled", "derived"],
        );
        // No layout settled in bulk: nothing to run stretches for.
        let p = program(
            "event R { status: int }\n\
                         query a = R | summarize n = count(), s = sum(status) every 10s | emit metric \"a\"",
        );
        let (r, f) = (routes(&p), fast_queries(&p));
        assert!(bulk_layouts(&quiet_layouts(&p, &r, &f), &r, &f).is_empty());
    }

    #[test]
    fn whole_chunks_are_those_every_event_of_which_holds() {
        // `whole_chunk` against the conditions checked one event at a
        // time: times at and around the window's ends and `i64`'s (where
        // the wrapping differences overflow), in order and not, layouts
        // and verdicts that differ in one place.
        let reference = |times: &[i64], layouts: &[u32], verdicts: &[u8], lo: i64, hi: i64| {
            let holds = times.iter().all(|&t| lo <= t && t < hi)
                && layouts.iter().all(|&l| l == 7)
                && verdicts.iter().all(|&v| v != crate::runtime::NOT_ASKED);
            holds.then(|| times.iter().copied().max()).flatten()
        };
        let windows = [
            (0, 60),
            (-5, 5),
            (i64::MIN, i64::MIN + 10),
            (i64::MAX - 10, i64::MAX),
            (i64::MIN, i64::MAX),
            (-1, i64::MAX),
            (i64::MIN, 1),
            (3, 3),
            (4, 2),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (lo, hi) in windows {
            let near = [
                lo,
                lo.wrapping_add(1),
                lo.wrapping_sub(1),
                hi,
                hi.wrapping_sub(1),
                hi.wrapping_add(1),
                i64::MIN,
                i64::MAX,
                0,
                lo.wrapping_add(i64::MAX),
                hi.wrapping_sub(i64::MAX),
            ];
            for case in 0..400 {
                // A third of the chunks all near `lo`; the rest with now
                // and then a time from `near`.
                let wild = case % 3 != 0;
                let mut times: Vec<i64> = (0..CHUNK)
                    .map(|_| {
                        if wild && next() % 16 == 0 {
                            near[(next() % near.len() as u64) as usize]
                        } else {
                            lo.saturating_add((next() % 8) as i64)
                        }
                    })
                    .collect();
                if case % 2 == 0 {
                    times.sort_unstable();
                }
                let mut layouts = vec![7u32; CHUNK];
                let mut verdicts = vec![crate::runtime::PASSES; CHUNK];
                match case % 5 {
                    1 => layouts[(next() % CHUNK as u64) as usize] = 8,
                    2 => verdicts[(next() % CHUNK as u64) as usize] = crate::runtime::NOT_ASKED,
                    _ => {}
                }
                let expected = reference(&times, &layouts, &verdicts, lo, hi);
                for in_order in [false, times.is_sorted()] {
                    let got =
                        whole_chunk((&times, in_order), &layouts, &verdicts, (true, 7), (lo, hi));
                    // A window wider than `i64` holds is left to the
                    // events one by one, unless the times are in order.
                    if got.is_none() && !in_order && hi.checked_sub(lo).is_none() {
                        continue;
                    }
                    assert_eq!(
                        got, expected,
                        "{times:?} in {lo}..{hi}, in order: {in_order}"
                    );
                }
            }
        }
    }

    #[test]
    fn long_stretches_take_whole_chunks_only_where_they_hold() {
        // Long runs of one tallied layout, so stretches take chunks of
        // events at once; windows of 5 s close every 100 events (mid-chunk),
        // and a late event, an unknown one, a schema mismatch and a
        // malformed line each break a chunk somewhere along.
        let src = "event P { w: int }\n\
                   query d = P | summarize n = count() every 5s | emit metric \"d\"";
        let mut input = Vec::new();
        for k in 0..3000i64 {
            let t = k * S / 20 - if k % 450 == 300 { 9 * S } else { 0 };
            input.push(line("P", t, r#""w":1"#));
            match k % 1000 {
                170 => input.push(line("T", t, r#""x":1"#)),
                420 => input.push(line("P", t, r#""w":"one""#)),
                777 => input.push("{not json".to_string()),
                _ => {}
            }
        }
        check_with_and_without_lateness(
            src,
            &input,
            2 * S,
            &["late_events", "schema_mismatches", "unhandled", "malformed"],
        );
    }

    #[test]
    fn series_overflow_and_absent_keys_match_the_general_path() {
        let src = "event R { status: int, path: string? }\n\
                   query a = R | summarize n = count(), hi = max(status), lo = min(status) by path max 2 every 1m | emit metric \"a\"";
        let mut input = Vec::new();
        for k in 0..30i64 {
            let path = if k % 7 == 0 {
                String::new()
            } else {
                format!(r#","path":"/p{}""#, k % 5)
            };
            input.push(line(
                "R",
                k * S,
                &format!(r#""status":{}{path}"#, 100 + k * 37 % 11),
            ));
        }
        let summary = check(src, &Options::default(), &input);
        assert!(summary["series_overflow"].as_u64() > Some(0), "{summary}");
    }

    #[test]
    fn saturating_sums_and_mixed_layouts_match_the_general_path() {
        let src = "event R { v: int }\nevent Q { v: int }\n\
                   query a = R | summarize s = sum(v), n = count() every 1m | emit metric \"a\"\n\
                   query b = Q | where v > 0 | summarize s = sum(v) by thread_id every 1m | emit metric \"b\"";
        let big = i64::MAX - 3;
        let mut input = Vec::new();
        for k in 0..20i64 {
            let v = if k % 2 == 0 { big } else { -(k * 1000) };
            input.push(line("R", k * S, &format!(r#""v":{v}"#)));
            input.push(line(
                "Q",
                k * S,
                &format!(r#""v":{v},"thread.id":{}"#, k % 3),
            ));
            input.push(line("Other", k * S, r#""v":1"#));
        }
        input.push("not json".into());
        let summary = check(src, &Options::default(), &input);
        assert!(summary["malformed"].as_u64() == Some(1), "{summary}");
    }

    #[test]
    fn machines_in_place_and_keys_from_rows_match_the_general_path() {
        // Keyed by a standard field (from the row) and by a declared one,
        // with evictions (max 3) and a guard on the instance's own slot.
        let src = "event Start { id: int }\nevent End { id: int }\n\
                   machine m per event.thread_id max 3 {\n state Idle\n state Busy { at: timestamp }\n\
                   on Start in Idle -> Busy { at = event.time }\n\
                   on End in Busy when event.time - at > 2s -> Idle { emit log Slow { id: event.id } }\n\
                   on End in Busy -> Idle\n}\n\
                   machine byid per event.id max 2 {\n state A\n state B\n\
                   on Start in A -> B\n on End in B -> A { emit log Back { id: event.id } }\n}";
        let mut input = Vec::new();
        for k in 0..60i64 {
            let name = if k % 3 == 0 { "End" } else { "Start" };
            // Three busy threads, and now and then a new one that evicts.
            let thread = if k % 10 == 9 { 3 + k } else { k % 3 };
            input.push(line(
                name,
                k * S,
                &format!(r#""id":{},"thread.id":{thread}"#, k % 2),
            ));
        }
        input.push(line("Start", 61 * S, r#""id":9"#));
        let summary = check(src, &Options::default(), &input);
        assert!(summary["evictions"].as_u64() > Some(0), "{summary}");
        assert!(summary["derived"].as_u64() > Some(0), "{summary}");
        assert_eq!(summary["unkeyed"], 1, "{summary}");
        assert!(!reads_states(&program(src)));
    }

    #[test]
    fn machines_read_by_is_keep_the_general_path() {
        // `m is Busy` in another machine's guard and in a query: instances
        // are taken out while they change, as before.
        let src = "event Start { id: int }\nevent End { id: int }\n\
                   machine m per event.id max 4 {\n state Idle\n state Busy\n\
                   on Start in Idle -> Busy\n on End in Busy -> Idle\n}\n\
                   machine n per event.id max 4 {\n state X\n state Y\n\
                   on Start in X when m is Busy -> Y { emit log Seen { id: event.id } }\n on End in Y -> X\n}\n\
                   query q = End | where m is Busy | summarize c = count() every 10s | emit metric \"q\"";
        let p = program(src);
        assert!(reads_states(&p));
        let mut input = Vec::new();
        for k in 0..40i64 {
            let name = if k % 4 == 3 { "End" } else { "Start" };
            input.push(line(name, k * S, &format!(r#""id":{}"#, k % 6)));
        }
        let summary = check(src, &Options::default(), &input);
        assert!(summary["derived"].as_u64() > Some(0), "{summary}");
    }

    #[test]
    fn a_timeout_due_mid_batch_fires_before_the_event_that_passes_it() {
        let src = "event Start { id: int }\nevent R { v: int }\n\
                   machine m per event.thread_id max 10 {\n state Idle\n state Busy\n\
                   on Start in Idle -> Busy\n\
                   after 5s in Busy -> Idle { emit log Late { n: 1 } }\n}\n\
                   query a = R | where v > 0 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = Late | summarize n = count(), s = sum(n) every 10s | emit metric \"b\"";
        let mut input = Vec::new();
        for k in 0..40i64 {
            if k % 9 == 0 {
                input.push(line(
                    "Start",
                    k * S,
                    &format!(r#""id":1,"thread.id":{}"#, k % 2),
                ));
            }
            input.push(line("R", k * S, r#""v":1"#));
        }
        let summary = check(src, &Options::default(), &input);
        assert!(summary["derived"].as_u64() > Some(2), "{summary}");
    }
}
