//! The runtime around the interpreter: dispatch of events by durable ID,
//! stream shaping, query pipelines and their windows, machine instances
//! (keyed, bounded, evicted with a counter, timeouts on event time),
//! processor state, and budgets. Time is event time throughout, so a file of
//! old events gives the answers the live stream gave.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use dtc_ir::*;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use siphasher::sip::SipHasher13;

use crate::event::{Input, InputEvent, decode_line_each};
use crate::exec::{Executor, Interpreted, Site};
use crate::interp::{Effect, Frame, Interp, World, draw, keyed_hash_text, mask_text};
use crate::output::{
    Counters, Edit, Edits, Egress, InputRef, Inputs, MetricValue, Output, Produced, Text, Unchanged,
};
use crate::value::{Key, Record, Row, Value, decode};

mod fast;
mod grouped;
mod lines;
mod machine;
mod read;
pub use read::{ReadEgress, RemovalBits, Removals};

use machine::{MachineState, machine_key};

/// How a run behaves where the program does not say.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed of every sampling decision.
    pub seed: u64,
    /// Key of `hash` and of hash redaction.
    pub hash_key: (u64, u64),
    /// How long after its end a window still takes late events.
    pub lateness_ns: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 0,
            hash_key: (0x6474_6320_6861_7368, 0x6b65_7920_3030_3031),
            lateness_ns: 0,
        }
    }
}

enum Agg {
    Count(i64),
    Sum(Value),
    Min(Value),
    Max(Value),
    Avg {
        sum: f64,
        n: u64,
        duration: bool,
    },
    Histogram {
        counts: Vec<u64>,
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
    },
    Percentile {
        hist: hdrhistogram::Histogram<u64>,
        p: Option<f64>,
        kind: Type,
    },
    Distinct(Box<HyperLogLogPlus<String, BuildHasherDefault<SipHasher13>>>),
}

/// Bucket bounds of histograms: OpenTelemetry's defaults. Durations are
/// bucketed in milliseconds.
const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

type Groups = FastMap<Vec<Key>, Vec<Agg>>;

/// Maps keyed by what events carry (group keys, machine keys), looked up
/// once or more per event, hashed as instance maps are
/// ([`machine::KeyHashing`]).
type FastMap<K, V> = HashMap<K, V, machine::KeyHashing>;

/// Events decoded for one program ([`Engine::decode_batch`]).
pub struct Batch {
    decoded: Vec<Decoded>,
    /// The input event of each of `decoded`, shared by the runs of
    /// unchanged egress ([`Unchanged`]) a push of the batch hands over.
    inputs: Rc<Inputs>,
    /// The time of each of `decoded`, read at decoding: running the batch
    /// reads them in order from here instead of from each input event.
    times: Vec<i64>,
    /// The layout of each of `decoded` ([`UNHANDLED`] for an event no
    /// layout matches, [`MISMATCHED`] for one that does not match its
    /// schema): a stretch of quiet events is settled from here and `times`
    /// alone (`Engine::run_stretch`).
    layouts: Vec<u32>,
    /// Whether `times` never go back (as a stream's mostly do): a stretch
    /// then checks that a chunk of events is in its window by their first
    /// and last times alone (`fast::whole_chunk`).
    in_order: bool,
    /// Per layout the executor filters batches of, the slots its filters
    /// read of its records' compact rows, laid end to end: the batch
    /// prefilter reads them in place, in sequence.
    arenas: Vec<Arena>,
    /// The group keys of the records a group stretch feeds, as IDs of the
    /// batch's dictionary of them (`grouped::KeyIds`): empty when no
    /// layout has a stretch keyed by one declared field.
    key_ids: grouped::KeyIds,
}

/// The rows of a batch's records of one layout, one after another, each
/// the slots [`Executor::projection`] names of the record's compact row
/// (copies: string slots point into the records, which the batch owns).
struct Arena {
    layout: u32,
    width: usize,
    rows: Vec<crate::slots::Slot>,
    /// The batch position of each row.
    at: Vec<usize>,
}

/// The arenas of the records of `decoded` (see [`Arena`]): for each layout
/// the executor has a projection of ([`Executor::projection`]), those slots
/// of each record's compact row: its own, built and kept (`cached`: a batch
/// decoded ahead, whose other sites read them too), or else built into a
/// scratch row, so a record only the filter reads keeps none.
fn arenas<D: std::borrow::Borrow<Decoded>>(
    decoded: &[D],
    executor: &dyn Executor,
    cached: bool,
) -> Vec<Arena> {
    let mut arenas = Arenas::new(executor, decoded.len());
    let mut scratch: Vec<crate::slots::Slot> = Vec::new();
    for (k, d) in decoded.iter().enumerate() {
        if let Decoded::Record(r) = d.borrow() {
            arenas.add_record(k, r, cached, &mut scratch);
        }
    }
    arenas.done()
}

/// Arenas being built, row by row in batch order. A layout any of whose
/// records has no row (a value that does not fit a slot) gets none; the
/// prefilter then reads those records as usual.
struct Arenas<'e> {
    executor: &'e dyn Executor,
    /// Events in the batch: the most rows an arena takes.
    n: usize,
    arenas: Vec<Arena>,
    skipped: Vec<u32>,
}

impl<'e> Arenas<'e> {
    fn new(executor: &'e dyn Executor, n: usize) -> Arenas<'e> {
        Arenas {
            executor,
            n,
            arenas: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// A decoded record at batch position `k`: its own row (`cached`) or
    /// one built in `scratch`.
    fn add_record(
        &mut self,
        k: usize,
        r: &Record,
        cached: bool,
        scratch: &mut Vec<crate::slots::Slot>,
    ) {
        if self.skipped.contains(&r.layout) {
            return;
        }
        let row = if cached {
            r.compact()
        } else {
            scratch.clear();
            crate::slots::push_event_row(r, scratch).map(|()| scratch.as_slice())
        };
        self.add(k, r.layout, row);
    }

    /// The row of the event at batch position `k`, of `layout`; `None`:
    /// it has none.
    fn add(&mut self, k: usize, layout: u32, row: Option<&[crate::slots::Slot]>) {
        if self.skipped.contains(&layout) {
            return;
        }
        let slots = self.executor.projection(layout);
        let fits = |row: &[crate::slots::Slot], slots: &[u32]| {
            slots.iter().all(|&s| (s as usize) < row.len())
        };
        let (Some(slots), Some(row)) =
            (slots, row.filter(|row| slots.is_some_and(|s| fits(row, s))))
        else {
            self.skipped.push(layout);
            self.arenas.retain(|a| a.layout != layout);
            return;
        };
        let arena = match self.arenas.iter().position(|a| a.layout == layout) {
            Some(i) => &mut self.arenas[i],
            None => {
                self.arenas.push(Arena {
                    layout,
                    width: slots.len(),
                    rows: Vec::with_capacity(self.n * slots.len()),
                    at: Vec::with_capacity(self.n),
                });
                let last = self.arenas.len() - 1;
                &mut self.arenas[last]
            }
        };
        arena.rows.extend(slots.iter().map(|&s| row[s as usize]));
        arena.at.push(k);
    }

    fn done(self) -> Vec<Arena> {
        self.arenas
    }
}

/// The records among a batch's decoded events, with their positions.
fn records_of<D: std::borrow::Borrow<Decoded>>(
    decoded: &[D],
) -> impl Iterator<Item = (usize, &Record)> {
    decoded
        .iter()
        .enumerate()
        .filter_map(|(k, d)| d.borrow().record().map(|r| (k, r)))
}

/// Builds the compact rows of a batch's records end to end in one
/// allocation ([`Row::InBatch`]): running the batch then reads them in
/// sequence (one allocation per record scattered them, and the first read
/// of each was a cache miss that perf put at a fifth of the machine's
/// kernel). A record a value of which does not fit a slot has no row, as
/// with [`Record::compact`].
fn batch_rows(decoded: &[Decoded]) {
    let mut all: Vec<crate::slots::Slot> = Vec::new();
    let mut spans: Vec<Option<(usize, usize)>> = Vec::with_capacity(decoded.len());
    for d in decoded {
        let span = match d {
            Decoded::Record(r) => {
                let start = all.len();
                match crate::slots::push_event_row(r, &mut all) {
                    Some(()) => Some((start, all.len() - start)),
                    None => {
                        all.truncate(start);
                        None
                    }
                }
            }
            _ => None,
        };
        spans.push(span);
    }
    let rows: Rc<[crate::slots::Slot]> = all.into();
    for (d, span) in decoded.iter().zip(spans) {
        if let Decoded::Record(r) = d {
            // A fresh record's row is unset: this is its first.
            let _ = r.row.set(span.map(|(start, len)| Row::InBatch {
                rows: rows.clone(),
                start,
                len,
            }));
        }
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.decoded.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decoded.is_empty()
    }
}

/// An input event after layout matching and decoding.
enum Decoded {
    Unhandled(InputRef),
    Mismatch(InputRef, u32, String),
    Record(Record),
}

/// [`Batch::layouts`] of an event no layout matches.
const UNHANDLED: u32 = u32::MAX;
/// [`Batch::layouts`] of an event that does not match its layout's schema.
const MISMATCHED: u32 = u32::MAX - 1;

impl Decoded {
    /// What [`Batch::layouts`] keeps of it.
    fn layout(&self) -> u32 {
        match self {
            Decoded::Unhandled(_) => UNHANDLED,
            Decoded::Mismatch(..) => MISMATCHED,
            Decoded::Record(r) => r.layout,
        }
    }

    fn input(&self) -> &InputRef {
        match self {
            Decoded::Unhandled(i) | Decoded::Mismatch(i, ..) => i,
            Decoded::Record(r) => &r.input,
        }
    }

    /// Its record, if it is one.
    fn record(&self) -> Option<&Record> {
        match self {
            Decoded::Record(r) => Some(r),
            _ => None,
        }
    }
}

/// A query's verdicts on the records at batch positions `at` (of a batch
/// of `n` events), as `ask` writes them (one byte per record; `false`:
/// nothing written). A batch all of the query's layout takes them in
/// place; otherwise they are scattered to their positions. `verdicts`
/// stays empty when there is nothing to ask or `ask` declines.
fn take_verdicts(
    verdicts: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    at: &[usize],
    n: usize,
    ask: impl FnOnce(&mut [u8]) -> bool,
) {
    if at.is_empty() {
        return;
    }
    if at.len() == n {
        verdicts.resize(n, NOT_ASKED);
        if !ask(verdicts) {
            verdicts.clear();
        }
        return;
    }
    scratch.clear();
    scratch.resize(at.len(), NOT_ASKED);
    if ask(scratch) {
        verdicts.resize(n, NOT_ASKED);
        for (&k, &v) in at.iter().zip(scratch.iter()) {
            verdicts[k] = v;
        }
    }
}

/// An event's contribution to a window: group keys, aggregate arguments,
/// window start, and the summarize stage.
type Pending = (Vec<Key>, Vec<Vec<Value>>, i64, usize);

#[derive(Default)]
struct QueryState {
    /// Open windows by start time.
    windows: BTreeMap<i64, Groups>,
}

/// Runs one program over a stream of events.
pub struct Engine {
    /// What the runners only read: one borrow serves them all.
    shared: Shared,
    /// Layouts by wire name, looked up once per event: a few names, hashed
    /// with Fx (one multiply per word of the name).
    by_wire: HashMap<String, u32, rustc_hash::FxBuildHasher>,
    machines: Vec<MachineState>,
    deadlines: BTreeSet<(i64, u32, Key)>,
    processor_vars: Vec<Vec<Value>>,
    queries: Vec<QueryState>,
    /// Recent fire times per budget site (emit, trigger, limit stage, shaping rule).
    budgets: HashMap<u64, VecDeque<i64>>,
    seq: u64,
    watermark: i64,
    /// The earliest end of an open window (`i64::MAX`: none open), so the
    /// windows are looked at only when one may close.
    next_close: i64,
    pub counters: Counters,
    out: Outputs,
    /// The key of every declared field of every layout, shared by the
    /// egress edits that name them.
    field_keys: Vec<Vec<Rc<str>>>,
    /// Per layout, how many shaping rules may edit its events: the edits
    /// of one event are allocated once, at their full size.
    edit_rules: Vec<usize>,
    /// Per layout, when every shaping rule of it is a `redact` of a
    /// declared field (and there is one): those (slot, method), in rule
    /// order, so its egress runs them without a look at the other rules.
    redactions: Vec<Option<RedactionPlan>>,
    /// Per layout, whether a batch runs its events in the redaction lane
    /// (`Engine::run_redactions`): it has a redaction plan, and no query,
    /// machine or handler reads it. Empty with the lanes off.
    redacting: Vec<bool>,
    /// What each event layout feeds (`fast::routes`).
    routes: Vec<fast::Route>,
    /// The fast lane of each query, if it has one (`fast::FastQuery`).
    fast: Vec<Option<fast::FastQuery>>,
    /// Group keys of the event in the fast lane, reused.
    key_buf: Vec<Key>,
    /// Per query, counts not yet added to their window (`fast::Tally`).
    tallies: Vec<Option<fast::Tally>>,
    /// Per query in the fast lane with keys, the groups of its latest
    /// window, at hand (`grouped::GroupTally`).
    grouped: Vec<Option<grouped::GroupTally>>,
    /// Per layout, the grouped query a stretch of its events feeds
    /// (`grouped::stretch_layouts`); empty when none does.
    group_runs: Vec<Option<u32>>,
    /// Per query in the fast lane, the window (start, end) of the last
    /// event it saw.
    spans: Vec<(i64, i64)>,
    /// Per machine, the layouts whose instance key is a plain read.
    machine_keys: Vec<Vec<(u32, machine::KeyRead)>>,
    /// Per layout, whether its events in a batch take the quiet lane
    /// (`fast::quiet_layouts`).
    quiet: Vec<bool>,
    /// Per layout, whether an event of it read in place only egresses,
    /// redacted or not (`read::only_redacted`).
    only_redacted: Vec<bool>,
    /// Per layout, whether a stretch of its events can be settled in bulk
    /// (`fast::bulk_layouts`); empty with the lanes off.
    bulk: Vec<bool>,
    /// Positions in the batch being run of the events the quiet lane let
    /// through and not yet handed over (`Engine::flush_quiet`).
    quiet_run: (usize, usize),
    /// Whether any code asks `machine is State` (machine instances are
    /// then taken out while they change, see `run_machine`).
    reads_states: bool,
    /// While a batch runs: its input events, the position of the event
    /// being run, and where its outputs begin (`egress` extends a run of
    /// unchanged events only within the batch).
    batch_inputs: Option<Rc<Inputs>>,
    batch_at: usize,
    batch_base: usize,
    /// Per query, the batch prefilter's verdict on each event of the
    /// batch being run (`Engine::prefilter`); reused from batch to batch.
    verdicts: Vec<Vec<u8>>,
    /// What `push_lines` reads of a line in place (`lines::Plan`); none
    /// with the lanes off.
    lines: Option<lines::Plan>,
}

/// A verdict of the batch prefilter ([`Executor::prefilter`] writes the
/// first two).
const FAILS: u8 = 0;
const PASSES: u8 = 1;
const NOT_ASKED: u8 = 2;

/// What has been produced and not yet drained, in order; egress stays lazy.
#[derive(Default)]
struct Outputs(Vec<Produced>);

impl Outputs {
    fn push(&mut self, o: Output) {
        self.0.push(Produced::Output(o));
    }
}

/// The read-only parts of an engine: the program and how it runs.
struct Shared {
    program: Program,
    options: Options,
    regexes: Regexes,
    /// Runs the program's code: the interpreter, or compiled code.
    executor: Box<dyn Executor>,
    /// Who asked for a machine transition's effects, as its outputs name
    /// it, by (machine, transition, state): made once each
    /// (`machine::provenance`).
    provenance: RefCell<Provenance>,
}

/// Machine transitions' provenance by (machine, transition, state).
type Provenance = HashMap<(u32, u32, u32), Rc<str>, rustc_hash::FxBuildHasher>;

impl Shared {
    /// An interpreter over this program for event `seq`, in `world`.
    fn interp<'a>(&'a self, world: &'a dyn World, seq: u64) -> Interp<'a> {
        new_interp(&self.program, world, &self.options, seq, &self.regexes)
    }
}

/// The world code sees: `machine is State` reads the instances.
struct Machines<'a> {
    shared: &'a Shared,
    states: &'a [MachineState],
}

impl World for Machines<'_> {
    fn in_state(&self, machine: u32, state: u32, event: &Record) -> bool {
        let sh = self.shared;
        let Some(m) = sh.program.machines.get(machine as usize) else {
            return false;
        };
        let mut i = new_interp(&sh.program, &NoWorld, &sh.options, 0, &sh.regexes);
        let key = machine_key(&*sh.executor, &mut i, machine, m, event);
        // An instance not yet seen is in the initial state.
        let current = key
            .and_then(|k| {
                self.states
                    .get(machine as usize)?
                    .instances
                    .get(&k)
                    .map(|i| i.state)
            })
            .unwrap_or(0);
        current == state
    }
}

struct NoWorld;

impl World for NoWorld {
    fn in_state(&self, _: u32, _: u32, _: &Record) -> bool {
        false
    }
}

/// A budget: at most `count` per `per_ns` of event time.
fn allow(
    budgets: &mut HashMap<u64, VecDeque<i64>>,
    site: u64,
    count: u64,
    per_ns: i64,
    now: i64,
) -> bool {
    let q = budgets.entry(site).or_default();
    while q.front().is_some_and(|t| *t <= now.saturating_sub(per_ns)) {
        q.pop_front();
    }
    if (q.len() as u64) < count {
        q.push_back(now);
        true
    } else {
        false
    }
}

fn new_agg(a: &Aggregate) -> Agg {
    match a.kind {
        AggKind::Count | AggKind::CountIf => Agg::Count(0),
        AggKind::Sum => Agg::Sum(Value::None),
        AggKind::Min => Agg::Min(Value::None),
        AggKind::Max => Agg::Max(Value::None),
        AggKind::Avg => Agg::Avg {
            sum: 0.0,
            n: 0,
            duration: a.args.first().is_some_and(|x| x.ty == Type::Duration),
        },
        AggKind::Histogram => Agg::Histogram {
            counts: vec![0; BOUNDS.len() + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        },
        AggKind::Percentile => Agg::Percentile {
            hist: hdrhistogram::Histogram::new(3).unwrap_or_else(|_| {
                hdrhistogram::Histogram::new(2).expect("2 significant digits is valid")
            }),
            p: None,
            kind: a.args.first().map_or(Type::Int, |x| x.ty.clone()),
        },
        AggKind::DistinctCount => Agg::Distinct(Box::new(
            HyperLogLogPlus::new(14, BuildHasherDefault::<SipHasher13>::default())
                .expect("precision 14 is valid"),
        )),
    }
}

/// A number as a plain float (durations in milliseconds, for histograms).
fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Duration(d) => Some(*d as f64 / 1e6),
        _ => None,
    }
}

/// `v` rounded to `digits` significant decimal digits.
fn round_significant(v: u64, digits: u32) -> u64 {
    let len = v.checked_ilog10().map_or(1, |l| l + 1);
    if len <= digits {
        return v;
    }
    let scale = 10u64.pow(len - digits);
    (v + scale / 2) / scale * scale
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y))
        | (Value::Duration(x), Value::Duration(y))
        | (Value::Timestamp(x), Value::Timestamp(y)) => x.partial_cmp(y),
        (Value::Float(x), Value::Float(y)) | (Value::Percent(x), Value::Percent(y)) => {
            x.partial_cmp(y)
        }
        (Value::Str(x), Value::Str(y)) => x.partial_cmp(y),
        _ => None,
    }
}

impl Agg {
    fn add(&mut self, args: &[Value]) {
        // Counting, the most common aggregate, reads its argument in place.
        if let Agg::Count(n) = self {
            if args.first().is_none_or(|v| *v == Value::Bool(true)) {
                *n += 1;
            }
            return;
        }
        let v = args.first().cloned().unwrap_or(Value::None);
        match self {
            Agg::Count(_) => {}
            Agg::Sum(s) => {
                *s = match (&*s, &v) {
                    (Value::None, _) => v,
                    (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(*b)),
                    (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
                    (Value::Duration(a), Value::Duration(b)) => {
                        Value::Duration(a.saturating_add(*b))
                    }
                    _ => s.clone(),
                }
            }
            Agg::Min(m) => {
                if m.is_none() || order(&v, m).is_some_and(|o| o.is_lt()) {
                    *m = v;
                }
            }
            Agg::Max(m) => {
                if m.is_none() || order(&v, m).is_some_and(|o| o.is_gt()) {
                    *m = v;
                }
            }
            Agg::Avg { sum, n, .. } => {
                let x = match v {
                    Value::Duration(d) => Some(d as f64),
                    ref other => as_f64(other),
                };
                if let Some(x) = x {
                    *sum += x;
                    *n += 1;
                }
            }
            Agg::Histogram {
                counts,
                count,
                sum,
                min,
                max,
            } => {
                if let Some(x) = as_f64(&v) {
                    let bucket = BOUNDS.iter().position(|b| x <= *b).unwrap_or(BOUNDS.len());
                    counts[bucket] += 1;
                    *count += 1;
                    *sum += x;
                    *min = min.min(x);
                    *max = max.max(x);
                }
            }
            Agg::Percentile { hist, p, .. } => {
                if p.is_none() {
                    *p = args.get(1).and_then(as_f64);
                }
                // Negative values are recorded as zero; floats keep three
                // decimals.
                let recorded = match v {
                    Value::Int(i) => Some(i.max(0) as u64),
                    Value::Duration(d) => Some(d.max(0) as u64),
                    Value::Float(f) if f.is_finite() => Some((f.max(0.0) * 1000.0).round() as u64),
                    _ => None,
                };
                if let Some(r) = recorded {
                    let _ = hist.record(r);
                }
            }
            Agg::Distinct(h) => {
                if !v.is_none() {
                    h.insert(&v.to_json().to_string());
                }
            }
        }
    }

    fn result(&mut self) -> Value {
        match self {
            Agg::Count(n) => Value::Int(*n),
            Agg::Sum(s) => s.clone(),
            Agg::Min(m) | Agg::Max(m) => m.clone(),
            Agg::Avg { sum, n, duration } => {
                if *n == 0 {
                    Value::None
                } else if *duration {
                    Value::Duration((*sum / *n as f64) as i64)
                } else {
                    Value::Float(*sum / *n as f64)
                }
            }
            Agg::Histogram { .. } => Value::None,
            Agg::Percentile { hist, p, kind } => {
                if hist.is_empty() {
                    return Value::None;
                }
                let q = (p.unwrap_or(50.0) / 100.0).clamp(0.0, 1.0);
                // The histogram keeps three significant digits; say no more.
                let v = round_significant(hist.value_at_quantile(q), 3);
                match kind {
                    Type::Duration => Value::Duration(v as i64),
                    Type::Float => Value::Float(v as f64 / 1000.0),
                    _ => Value::Float(v as f64),
                }
            }
            Agg::Distinct(h) => Value::Int(h.count().round() as i64),
        }
    }

    fn metric(&mut self) -> MetricValue {
        if let Agg::Histogram {
            counts,
            count,
            sum,
            min,
            max,
        } = self
        {
            return MetricValue::Histogram {
                bounds: BOUNDS.to_vec(),
                counts: counts.clone(),
                count: *count,
                sum: *sum,
                min: if *count == 0 { 0.0 } else { *min },
                max: if *count == 0 { 0.0 } else { *max },
            };
        }
        match self.result() {
            Value::Int(i) => MetricValue::Int(i),
            Value::Float(f) => MetricValue::Float(f),
            Value::Duration(d) => MetricValue::Seconds(d as f64 / 1e9),
            _ => MetricValue::None,
        }
    }
}

impl Engine {
    /// An engine that runs the program with the reference interpreter.
    pub fn new(program: Program, options: Options) -> Engine {
        Engine::with_executor(program, options, Box::new(Interpreted))
    }

    /// An engine that runs the program's code with `executor` (the JIT
    /// passes its compiled code here); everything else is this runtime.
    pub fn with_executor(
        program: Program,
        options: Options,
        executor: Box<dyn Executor>,
    ) -> Engine {
        let by_wire = program
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.derived)
            .map(|(i, e)| (e.wire.clone(), i as u32))
            .collect();
        let mut engine = Engine {
            machines: program
                .machines
                .iter()
                .map(|_| MachineState::default())
                .collect(),
            queries: program
                .queries
                .iter()
                .map(|_| QueryState::default())
                .collect(),
            processor_vars: Vec::new(),
            by_wire,
            shared: Shared {
                program,
                options,
                regexes: RefCell::new(HashMap::new()),
                executor,
                provenance: RefCell::default(),
            },
            deadlines: BTreeSet::new(),
            budgets: HashMap::new(),
            seq: 0,
            watermark: i64::MIN,
            next_close: i64::MAX,
            counters: Counters::default(),
            out: Outputs::default(),
            field_keys: Vec::new(),
            edit_rules: Vec::new(),
            redactions: Vec::new(),
            redacting: Vec::new(),
            routes: Vec::new(),
            fast: Vec::new(),
            key_buf: Vec::new(),
            tallies: Vec::new(),
            grouped: Vec::new(),
            group_runs: Vec::new(),
            spans: Vec::new(),
            machine_keys: Vec::new(),
            quiet: Vec::new(),
            only_redacted: Vec::new(),
            bulk: Vec::new(),
            quiet_run: (0, 0),
            reads_states: true,
            batch_inputs: None,
            batch_at: 0,
            batch_base: 0,
            verdicts: Vec::new(),
            lines: None,
        };
        engine.machine_keys = machine::key_reads(&engine.shared.program);
        engine.reads_states = fast::reads_states(&engine.shared.program);
        engine.routes = fast::routes(&engine.shared.program);
        engine.fast = fast::fast_queries(&engine.shared.program);
        engine.tallies = vec![None; engine.fast.len()];
        engine.grouped = engine
            .fast
            .iter()
            .map(|f| f.as_ref().and_then(grouped::GroupTally::new))
            .collect();
        engine.spans = vec![(i64::MAX, i64::MIN); engine.fast.len()];
        engine.quiet = fast::quiet_layouts(&engine.shared.program, &engine.routes, &engine.fast);
        engine.bulk = fast::bulk_layouts(&engine.quiet, &engine.routes, &engine.fast);
        engine.group_runs =
            grouped::stretch_layouts(&engine.quiet, &engine.routes, &engine.grouped);
        let group_key = engine
            .group_runs
            .iter()
            .map(|q| {
                let g = engine.grouped.get((*q)? as usize)?.as_ref()?;
                g.counts_by_field()
            })
            .collect();
        engine.lines = Some(lines::Plan::new(
            &engine.shared.program,
            &engine.bulk,
            group_key,
            engine.shared.executor.reads_rows(),
        ));
        let inits: Vec<Vec<Value>> = engine
            .shared
            .program
            .processors
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                engine.init_vars(&p.vars, |var| Site::ProcessorVar {
                    processor: pi as u32,
                    var,
                })
            })
            .collect();
        engine.processor_vars = inits;
        engine.field_keys = engine
            .shared
            .program
            .events
            .iter()
            .map(|e| e.fields.iter().map(|f| Rc::from(f.key.as_str())).collect())
            .collect();
        let mut edit_rules = vec![0; engine.shared.program.events.len()];
        for rule in &engine.shared.program.shaping {
            if let ShapeRule::SuppressField { event, .. }
            | ShapeRule::Redact { event, .. }
            | ShapeRule::RedactStd { event, .. } = rule
                && let Some(n) = edit_rules.get_mut(*event as usize)
            {
                *n += 1;
            }
        }
        engine.edit_rules = edit_rules;
        engine.redactions = redaction_plans(&engine.shared.program);
        engine.redacting = (0..engine.redactions.len())
            .map(|l| {
                engine.redactions[l].is_some()
                    && engine.quiet.get(l) != Some(&true)
                    && engine.routes.get(l).is_none_or(|r| {
                        r.queries.is_empty() && r.machines.is_empty() && r.handlers.is_empty()
                    })
            })
            .collect();
        engine.only_redacted = read::only_redacted(&engine);
        read::narrow(&mut engine);
        engine
    }

    pub fn program(&self) -> &Program {
        &self.shared.program
    }

    /// Runs a program over a whole input with every window flushed at the
    /// end: the JSON lines `dtc run --format json --until-end` prints, with
    /// the summary last. This is what `dtc test` compares.
    pub fn json_lines(program: Program, options: Options, input: &str) -> String {
        Engine::new(program, options).run_json_lines(input)
    }

    /// [`Engine::json_lines`] on this engine, whatever its executor.
    pub fn run_json_lines(self, input: &str) -> String {
        let mut engine = self;
        let mut text = String::new();
        let write = |outputs: Vec<Output>, text: &mut String| {
            for o in outputs {
                text.push_str(&o.to_json().to_string());
                text.push('\n');
            }
        };
        for line in input.lines() {
            engine.push_line(line);
            write(engine.drain(), &mut text);
        }
        engine.finish(true);
        write(engine.drain(), &mut text);
        text.push_str(&engine.counters.to_json().to_string());
        text.push('\n');
        text
    }

    /// Takes what has been produced so far.
    /// Egress is written as JSON here ([`Egress::to_json`]).
    pub fn drain(&mut self) -> Vec<Output> {
        let produced = std::mem::take(&mut self.out.0);
        let mut outputs = Vec::with_capacity(produced.len());
        for p in produced {
            p.push_outputs(&mut outputs);
        }
        outputs
    }

    /// Takes what has been produced so far with egress left lazy: an
    /// unchanged event is the input event itself, a shaped one carries its
    /// edits, and consecutive unchanged events of a batch are one
    /// [`Produced::Unchanged`]. [`Produced::push_outputs`] gives what
    /// [`Engine::drain`] gives.
    pub fn drain_lazy(&mut self) -> Vec<Produced> {
        std::mem::take(&mut self.out.0)
    }

    /// [`Engine::drain_lazy`] appended to `into`: the engine keeps its
    /// buffer's room, so a caller draining after every event (the agent)
    /// allocates no buffer an event.
    pub fn drain_lazy_into(&mut self, into: &mut Vec<Produced>) {
        into.append(&mut self.out.0);
    }

    fn interp(&self) -> Interp<'_> {
        new_interp(
            &self.shared.program,
            &NoWorld,
            &self.shared.options,
            self.seq,
            &self.shared.regexes,
        )
    }

    fn init_vars(&self, defs: &[VarDef], site: impl Fn(u32) -> Site) -> Vec<Value> {
        let mut i = self.interp();
        defs.iter()
            .enumerate()
            .map(|(vi, d)| match (&d.init, &d.ty) {
                (Some(e), _) => self
                    .shared
                    .executor
                    .eval(
                        site(vi as u32),
                        e,
                        &mut i,
                        &mut Frame::new(None, 0, &mut [], &[], &mut []),
                    )
                    .unwrap_or(Value::None),
                (None, Type::Map(..)) => Value::Map(Box::default()),
                (None, _) => Value::None,
            })
            .collect()
    }

    /// Feeds one line of input.
    pub fn push_line(&mut self, line: &str) {
        self.counters.lines += 1;
        for input in crate::event::decode_line(line) {
            match input {
                Input::Malformed { line, reason } => {
                    self.counters.malformed += 1;
                    self.out.push(Output::Malformed { line, reason });
                }
                Input::Event(e) => self.push_event(e),
            }
        }
    }

    /// Feeds one event.
    pub fn push_event(&mut self, e: InputEvent) {
        let d = self.decode_event(Rc::new(e));
        self.process(&d);
    }

    /// Feeds a batch of events, in order. The outputs are exactly those of
    /// feeding them one at a time; an executor that can (the JIT) first
    /// runs each query's leading `where` stages over the whole batch.
    pub fn push_events(&mut self, events: impl IntoIterator<Item = InputEvent>) {
        let batch = self.decode_batch(events);
        self.push_batch(&batch);
    }

    /// Decodes a batch of events into this engine's own form, ahead of
    /// running it: each event matched to its layout and decoded once into a
    /// record, with its compact slot row when the executor reads rows (the
    /// JIT). Records share the input event (strings are read in place), so
    /// a batch can be run any number of times; the bench's kernel times
    /// [`Engine::push_batch`] over batches decoded beforehand. The group
    /// keys of a layout whose events a group stretch feeds by one declared
    /// field are also given IDs of a dictionary of the batch (equal texts,
    /// one ID: `grouped::KeyIds`), so that a stretch looks an event's group
    /// up once per distinct key and batch. A batch belongs to the program
    /// it was decoded for: push it only into engines of that same program.
    pub fn decode_batch(&self, events: impl IntoIterator<Item = InputEvent>) -> Batch {
        let rows = self.shared.executor.reads_rows();
        let decoded = events
            .into_iter()
            .map(|e| self.decode_event(Rc::new(e)))
            .collect::<Vec<_>>();
        if rows {
            batch_rows(&decoded);
        }
        let inputs = Rc::new(Inputs::of_events(
            decoded.iter().map(|d| d.input().event().clone()),
        ));
        let times: Vec<i64> = decoded.iter().map(|d| d.input().time).collect();
        let in_order = times.is_sorted();
        let layouts = decoded.iter().map(Decoded::layout).collect();
        let arenas = if rows {
            arenas(&decoded, self.shared.executor.as_ref(), true)
        } else {
            Vec::new()
        };
        let key_ids = self.key_ids(&decoded);
        Batch {
            decoded,
            inputs,
            times,
            layouts,
            in_order,
            arenas,
            key_ids,
        }
    }

    /// Feeds a decoded batch, in order: the outputs are exactly those of
    /// feeding its events one at a time.
    pub fn push_batch(&mut self, batch: &Batch) {
        self.prefilter(
            batch.decoded.len(),
            || records_of(&batch.decoded),
            &batch.arenas,
        );
        self.out.0.reserve(batch.decoded.len());
        self.batch_inputs = Some(batch.inputs.clone());
        self.batch_base = self.out.0.len();
        let mut k = 0;
        // Only a program with stretches (`fast::bulk_layouts`,
        // `grouped::stretch_layouts`) pays for looking for them.
        let stretches = !self.bulk.is_empty() || !self.group_runs.is_empty();
        // Likewise the redaction lane: looked for per event, it cost the
        // machine's kernel about 14 instructions an event.
        let redacting = self.redacting.contains(&true);
        while let (Some(d), Some(&now)) = (batch.decoded.get(k), batch.times.get(k)) {
            if stretches {
                let l = batch.layouts[k];
                let end = if l == UNHANDLED || self.bulk.get(l as usize) == Some(&true) {
                    self.run_stretch(&batch.layouts, (&batch.times, batch.in_order), k)
                } else {
                    self.run_group_stretch(batch, k)
                };
                if end > k {
                    k = end;
                    continue;
                }
            }
            if redacting
                && batch
                    .layouts
                    .get(k)
                    .and_then(|&l| self.redacting.get(l as usize))
                    == Some(&true)
            {
                let end = self.run_redactions(batch, k);
                if end > k {
                    k = end;
                    continue;
                }
            }
            self.run_batched(d, now, k);
            k += 1;
        }
        self.flush_quiet();
        self.batch_inputs = None;
    }

    /// The events of the batch from `start` on, as long as they are
    /// records of layouts in the redaction lane (`Engine::redacting`):
    /// each run as `Engine::process_at` runs it (counted, timeouts due
    /// fired, shaped, time moved on; nothing to dispatch), in one loop
    /// rather than a call of the general path each (which cost the
    /// redaction kernel about 40 instructions an event). Returns where it
    /// stopped. Not inlined: in `push_batch`'s loop it cost other
    /// layouts' events.
    #[inline(never)]
    fn run_redactions(&mut self, batch: &Batch, start: usize) -> usize {
        self.flush_quiet();
        let mut k = start;
        while let (Some(d @ Decoded::Record(rec)), Some(&now)) =
            (batch.decoded.get(k), batch.times.get(k))
        {
            if self.redacting.get(rec.layout as usize) != Some(&true) {
                break;
            }
            self.batch_at = k;
            self.event_starts(now);
            self.egress(d.input(), Some(rec), now);
            self.event_ends(now);
            k += 1;
        }
        k
    }

    /// The event at position `k` of the batch being run: the quiet lane
    /// (`Engine::run_quiet`) when its layout allows and no timeout is due,
    /// the general path otherwise.
    #[inline(always)]
    fn run_batched(&mut self, d: &Decoded, now: i64, k: usize) {
        self.batch_at = k;
        let rec = match d {
            Decoded::Record(r) if self.quiet.get(r.layout as usize) == Some(&true) => Some(r),
            // `quiet` is empty only with the lanes off (`Engine::general`).
            Decoded::Unhandled(_) if !self.quiet.is_empty() => None,
            _ => {
                self.flush_quiet();
                return self.process_at(d, now, Some(k));
            }
        };
        if self.deadlines.first().is_some_and(|(t, ..)| *t <= now) {
            self.flush_quiet();
            return self.process_at(d, now, Some(k));
        }
        self.run_quiet(rec, now, k);
    }

    /// Feeds a batch of lines, as [`Engine::push_events`] does events;
    /// malformed lines keep their place among the events.
    pub fn push_lines<'l>(&mut self, lines: impl IntoIterator<Item = &'l str>) {
        match &mut self.lines {
            Some(plan) if plan.rest == 0 => return self.push_lines_in_place(lines),
            Some(plan) => plan.rest -= 1,
            None => {}
        }
        let mut batch: Vec<Result<Decoded, (String, String)>> = Vec::new();
        for line in lines {
            self.counters.lines += 1;
            decode_line_each(line, |input| {
                batch.push(match input {
                    Input::Malformed { line, reason } => Err((line, reason)),
                    Input::Event(e) => Ok(self.decode_event(Rc::new(e))),
                })
            });
        }
        let decoded: Vec<&Decoded> = batch.iter().filter_map(|b| b.as_ref().ok()).collect();
        let times: Vec<i64> = decoded.iter().map(|d| d.input().time).collect();
        // Rows only the batch filter reads are built once, into its arenas,
        // not kept per record.
        let arenas = if self.shared.executor.reads_rows() {
            arenas(&decoded, self.shared.executor.as_ref(), false)
        } else {
            Vec::new()
        };
        self.prefilter(decoded.len(), || records_of(&decoded), &arenas);
        drop(arenas);
        self.batch_inputs = Some(Rc::new(Inputs::of_events(
            decoded.iter().map(|d| d.input().event().clone()),
        )));
        drop(decoded);
        self.out.0.reserve(batch.len());
        self.batch_base = self.out.0.len();
        let mut k = 0;
        for item in batch {
            match item {
                Err((line, reason)) => {
                    self.flush_quiet();
                    self.counters.malformed += 1;
                    self.out.push(Output::Malformed { line, reason });
                }
                Ok(d) => {
                    self.run_batched(&d, times[k], k);
                    k += 1;
                }
            }
        }
        self.flush_quiet();
        self.batch_inputs = None;
    }

    /// An input event matched to its layout and decoded, before any
    /// program code runs (so a batch can be decoded ahead).
    fn decode_event(&self, input: Rc<InputEvent>) -> Decoded {
        let layout = input
            .name
            .as_ref()
            .and_then(|n| self.by_wire.get(n))
            .copied();
        match layout {
            None => Decoded::Unhandled(input.into()),
            Some(li) => match decode(li, &self.shared.program.events[li as usize], input.clone()) {
                Err(m) => Decoded::Mismatch(input.into(), li, m.0),
                Ok(rec) => Decoded::Record(rec),
            },
        }
    }

    /// Asks the executor for each query's leading `where` stages over a
    /// batch of `n` events ([`Executor::prefilter`]). Afterwards
    /// `verdicts[qi][k]` is [`PASSES`], [`FAILS`] or [`NOT_ASKED`] for the
    /// event at batch position `k` (events only, malformed lines not
    /// counted), and `verdicts[qi]` is empty where query `qi` was not asked
    /// at all. A layout with an arena ([`Arenas`]) is read from it, with no
    /// gathering at all; otherwise its records (of `records`: the decoded
    /// ones with their positions; a line read in place has none) are
    /// gathered once for the queries that read it in a row, and a batch all
    /// of the query's layout takes the verdicts in place, without a
    /// scatter.
    fn prefilter<'r, I: Iterator<Item = (usize, &'r Record)>>(
        &mut self,
        n: usize,
        records: impl Fn() -> I,
        arenas: &[Arena],
    ) {
        let nq = self.shared.program.queries.len();
        self.verdicts.resize_with(nq, Vec::new);
        let mut gathered_records: Vec<&Record> = Vec::new();
        let mut at: Vec<usize> = Vec::new();
        let mut gathered: Option<u32> = None;
        let mut scratch: Vec<u8> = Vec::new();
        for qi in 0..nq {
            let verdicts = &mut self.verdicts[qi];
            verdicts.clear();
            if !self.shared.executor.has_prefilter(qi as u32) {
                continue;
            }
            let source = self.shared.program.queries[qi].source;
            let executor = &self.shared.executor;
            if let Some(arena) = arenas.iter().find(|a| a.layout == source) {
                take_verdicts(verdicts, &mut scratch, &arena.at, n, |out| {
                    executor.prefilter_rows(qi as u32, &arena.rows, arena.width, out)
                });
                continue;
            }
            if gathered != Some(source) {
                gathered_records.clear();
                at.clear();
                gathered_records.reserve(n);
                at.reserve(n);
                for (k, r) in records() {
                    if r.layout == source {
                        gathered_records.push(r);
                        at.push(k);
                    }
                }
                gathered = Some(source);
            }
            take_verdicts(verdicts, &mut scratch, &at, n, |out| {
                executor.prefilter(qi as u32, &gathered_records, out)
            });
        }
    }

    /// What the batch prefilter said of query `qi` for the event at batch
    /// position `at`, if it was asked.
    fn verdict(&self, qi: usize, at: Option<usize>) -> Option<bool> {
        match *self.verdicts.get(qi)?.get(at?)? {
            PASSES => Some(true),
            FAILS => Some(false),
            _ => None,
        }
    }

    /// Runs one decoded event: timeouts due, dispatch, egress, windows.
    fn process(&mut self, d: &Decoded) {
        self.process_at(d, d.input().time, None);
    }

    /// [`Engine::process`] with the event's time already read (a batch
    /// keeps its events' times in order, [`Batch`]). When no timeout is due
    /// and no window can close at `now` (the common case within a batch),
    /// the checks for both cost two comparisons.
    /// `at`: the event's position in its batch, for the prefilter's verdicts.
    fn process_at(&mut self, d: &Decoded, now: i64, at: Option<usize>) {
        self.event_starts(now);
        let input = d.input();
        match d {
            Decoded::Unhandled(_) => {
                self.counters.unhandled += 1;
                self.egress(input, None, now);
            }
            Decoded::Mismatch(_, li, reason) => {
                self.counters.schema_mismatches += 1;
                self.out.push(Output::Mismatch {
                    event: self.shared.program.events[*li as usize].name.clone(),
                    reason: reason.clone(),
                });
                self.egress(input, None, now);
            }
            Decoded::Record(rec) => {
                // A layout that feeds no query, machine or handler (one
                // only shaped, as a redaction's) skips the dispatch: its
                // call, empty loops and empty `derived` cost the redaction
                // kernel about 50 instructions an event.
                if self.routes.get(rec.layout as usize).is_some_and(|r| {
                    !(r.queries.is_empty() && r.machines.is_empty() && r.handlers.is_empty())
                }) {
                    let derived = self.dispatch(rec, now, at);
                    self.dispatch_derived(derived);
                }
                self.egress(input, Some(rec), now);
            }
        }
        self.event_ends(now);
    }

    /// An event at `now` comes: it is counted, and the machines' timeouts
    /// due by then fire first.
    #[inline(always)]
    fn event_starts(&mut self, now: i64) {
        self.seq += 1;
        self.counters.events += 1;
        if self.deadlines.first().is_some_and(|(t, ..)| *t <= now) {
            self.fire_timeouts(now);
        }
    }

    /// An event at `now` has been run: time moves on, and the windows it
    /// leaves behind close.
    #[inline(always)]
    fn event_ends(&mut self, now: i64) {
        if now > self.watermark {
            self.watermark = now;
            if now.saturating_sub(self.shared.options.lateness_ns) >= self.next_close {
                self.close_windows(now.saturating_sub(self.shared.options.lateness_ns));
            }
        }
    }

    /// The end of input: with `until_end`, every open window closes.
    pub fn finish(&mut self, until_end: bool) {
        if until_end {
            self.close_windows(i64::MAX);
        }
        self.counters.open_windows = self.queries.iter().map(|q| q.windows.len() as u64).sum();
    }

    // -------------------------------------------------------------- shaping

    /// `now`: the event's time. Inlined in `Engine::process_at`: called
    /// apart (as the inliner chose once `event_starts` and `event_ends`
    /// were split out), it cost the redaction kernel 11 instructions an
    /// event and the machine's 22.
    #[inline(always)]
    fn egress(&mut self, input: &InputRef, rec: Option<&Record>, now: i64) {
        let mut edits = Edits::new();
        if let Some(rec) = rec {
            let room = self
                .edit_rules
                .get(rec.layout as usize)
                .copied()
                .unwrap_or(0);
            // A shaped egress holds its input event, which is elsewhere on
            // the heap: cloning its `Rc` was mostly one cache miss after
            // the other. At every `WARM_INPUTS`-th event of a batch whose
            // layout shaping may edit, the reference counts of it and the
            // next ones are read first, so their misses overlap (as
            // `grouped::Span::run` warms keys). An unchanged event never
            // touches its input (`pass_unchanged`): none are read for a
            // layout no rule edits. What is read goes to `black_box`, so
            // it stays.
            if room > 0
                && self.batch_at.is_multiple_of(WARM_INPUTS)
                && let Some(inputs) = &self.batch_inputs
            {
                // Only events decoded already: warming never decodes a
                // line read in place.
                let ahead =
                    (self.batch_at..self.batch_at + WARM_INPUTS).filter_map(|k| inputs.peek(k));
                std::hint::black_box(ahead.fold(0, |t, i| t ^ Rc::strong_count(i)));
            }
            let put = |edits: &mut Edits, e: Edit| push_edit(edits, room, e);
            let keys = &self.field_keys[rec.layout as usize];
            // A layout of redactions only (it edits: `room > 0`) runs them
            // as one plan, and no rule after.
            let plan = if room > 0 {
                self.redactions
                    .get(rec.layout as usize)
                    .and_then(Option::as_deref)
            } else {
                None
            };
            let rules = if let Some(plan) = plan {
                // Its egress is pushed first and the edits made in place:
                // made apart and then moved in, the edits (and the
                // `Produced` holding them) were copied twice, two
                // `memcpy`s of about 29 instructions each an event of the
                // redaction kernel.
                self.out.0.push(Produced::Egress(Egress {
                    input: input.clone(),
                    edits: Edits::new(),
                }));
                if let Some(Produced::Egress(e)) = self.out.0.last_mut() {
                    redact_fields(
                        plan,
                        keys,
                        rec,
                        self.shared.options.hash_key,
                        (&mut e.edits, room),
                    );
                    if !e.edits.is_empty() {
                        self.counters.egressed += 1;
                        // `edits` is as new, inline and empty: it owns
                        // nothing, and its drop is a call (22
                        // instructions an event).
                        std::mem::forget(edits);
                        return;
                    }
                }
                // No edit (every field absent): egresses unchanged, as
                // below.
                self.out.0.pop();
                0
            } else {
                self.shared.program.shaping.len()
            };
            for ri in 0..rules {
                let site = 0x1_0000_0000 + ri as u64;
                match &self.shared.program.shaping[ri] {
                    ShapeRule::Suppress { event, when } if *event == rec.layout => {
                        let hit = self.selects(ri, when, rec);
                        if hit {
                            self.counters.suppressed += 1;
                            return;
                        }
                    }
                    ShapeRule::Sample { event, rate }
                        if *event == rec.layout
                            && draw(self.shared.options.seed, self.seq, u32::MAX - ri as u32)
                                * 100.0
                                >= *rate =>
                    {
                        self.counters.sampled_out += 1;
                        return;
                    }
                    ShapeRule::Limit {
                        event,
                        count,
                        per_ns,
                    } if *event == rec.layout
                        && !allow(&mut self.budgets, site, *count, *per_ns, now) =>
                    {
                        self.counters.rate_limited += 1;
                        return;
                    }
                    ShapeRule::SuppressField { event, slot, when } if *event == rec.layout => {
                        if !self.selects(ri, when, rec) {
                            continue;
                        }
                        if let Some(key) = keys.get(*slot as usize) {
                            put(&mut edits, Edit::RemoveAttr(key.clone()));
                        }
                    }
                    ShapeRule::Redact {
                        event,
                        slot,
                        method,
                    } if *event == rec.layout => {
                        let hash_key = self.shared.options.hash_key;
                        let redaction = (*slot, *method);
                        redact_field(keys, redaction, value_of(rec), hash_key, (&mut edits, room));
                    }
                    ShapeRule::RedactStd {
                        event,
                        field,
                        method,
                        when,
                    } if *event == rec.layout => {
                        if !self.selects(ri, when, rec) {
                            continue;
                        }
                        let key = field.name();
                        let v = crate::interp::std_field(rec, *field);
                        match method {
                            Redaction::Drop => put(&mut edits, Edit::RemoveTop(key)),
                            _ if !v.is_none() => put(
                                &mut edits,
                                Edit::InsertTop(
                                    key,
                                    redacted(&v, *method, self.shared.options.hash_key),
                                ),
                            ),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        self.counters.egressed += 1;
        if edits.is_empty()
            && self
                .batch_inputs
                .as_ref()
                .is_some_and(|inputs| input.is_at(inputs, self.batch_at))
        {
            self.pass_unchanged(self.batch_at, self.batch_at + 1);
            // Empty and inline, it owns nothing: forgetting it skips
            // `SmallVec`'s drop, a call that is not inlined (14
            // instructions an event on the machine's unchanged path).
            if !edits.spilled() {
                std::mem::forget(edits);
            }
            return;
        }
        self.out.0.push(Produced::Egress(Egress {
            input: input.clone(),
            edits,
        }));
    }

    /// The events at positions `start..end` of the batch being run egress
    /// as they came: they lengthen the run of unchanged events right before
    /// them, if any, so a run costs no item (and no reference count) per
    /// event.
    fn pass_unchanged(&mut self, start: usize, end: usize) {
        let Some(inputs) = &self.batch_inputs else {
            return;
        };
        if self.out.0.len() > self.batch_base
            && let Some(Produced::Unchanged(run)) = self.out.0.last_mut()
            && run.extend(inputs, start, end)
        {
            return;
        }
        self.out
            .0
            .push(Produced::Unchanged(Unchanged::span(inputs, start, end)));
    }

    /// Hands over the events the quiet lane let through since the last
    /// output (`Engine::run_quiet`): before anything else is produced, so
    /// the order of outputs is that of the general path.
    fn flush_quiet(&mut self) {
        let (start, end) = self.quiet_run;
        if start < end {
            self.pass_unchanged(start, end);
            self.quiet_run = (end, end);
        }
    }

    /// Whether a shaping rule's `when` holds for a record (no `when`: always).
    fn selects(&self, rule: usize, when: &Option<Expr>, rec: &Record) -> bool {
        let Some(w) = when else { return true };
        let mut i = self.interp();
        let mut f = Frame::new(Some(rec), 0, &mut [], &[], &mut []);
        let site = Site::ShapeWhen { rule: rule as u32 };
        self.shared
            .executor
            .eval(site, w, &mut i, &mut f)
            .unwrap_or(Value::None)
            == Value::Bool(true)
    }

    // ------------------------------------------------------------- dispatch

    /// Runs every query, machine and processor on one record; returns the
    /// derived records its emits produced. `now` is the record's time, as
    /// the batch keeps it (read from there, not from the input event, which
    /// is elsewhere in memory and often not in cache); `at`: the record's
    /// position in its batch (none for a derived record).
    fn dispatch(&mut self, rec: &Record, now: i64, at: Option<usize>) -> Vec<Record> {
        let mut derived = Vec::new();
        let Some(route) = self.routes.get(rec.layout as usize) else {
            return derived;
        };
        // Routes are fixed at load; the lists are short and copied out so
        // the runners can borrow the engine.
        let (nq, nm, nh) = (
            route.queries.len(),
            route.machines.len(),
            route.handlers.len(),
        );
        for k in 0..nq {
            let qi = self.routes[rec.layout as usize].queries[k];
            let verdict = self.verdict(qi, at);
            if self.fast[qi].is_some() {
                self.run_fast_query(qi, rec, now, verdict);
            } else {
                self.run_query(qi, rec, now, verdict, &mut derived);
            }
        }
        for k in 0..nm {
            let mi = self.routes[rec.layout as usize].machines[k];
            self.run_machine(mi, rec, now, &mut derived);
        }
        for k in 0..nh {
            let (pi, hi) = self.routes[rec.layout as usize].handlers[k];
            self.run_handler(pi, hi, rec, now, &mut derived);
        }
        derived
    }

    fn run_handler(
        &mut self,
        pi: usize,
        hi: usize,
        rec: &Record,
        now: i64,
        derived: &mut Vec<Record>,
    ) {
        let program = &self.shared.program;
        let p = &program.processors[pi];
        let h = &p.handlers[hi];
        let world = Machines {
            shared: &self.shared,
            states: &self.machines,
        };
        let mut i = self.shared.interp(&world, self.seq);
        let vars = &mut self.processor_vars[pi];
        let mut f = Frame::new(Some(rec), h.n_locals, vars, &p.vars, &mut []);
        let (processor, handler) = (pi as u32, hi as u32);
        let body = Site::HandlerBody { processor, handler };
        let result = match &h.guard {
            Some(g) => match self.shared.executor.eval(
                Site::HandlerGuard { processor, handler },
                g,
                &mut i,
                &mut f,
            ) {
                Ok(Value::Bool(true)) => self.shared.executor.run(body, &h.body, &mut i, &mut f),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
            None => self.shared.executor.run(body, &h.body, &mut i, &mut f),
        };
        let effects = std::mem::take(&mut i.effects);
        let by = if effects.is_empty() && result.is_ok() {
            String::new()
        } else {
            format!(
                "processor {} on {}",
                p.name, program.events[h.event as usize].name
            )
        };
        if let Err(fault) = result {
            self.counters.faults += 1;
            self.out.push(Output::Fault {
                by: by.clone(),
                message: fault.to_string(),
                time: now,
            });
        }
        self.apply(effects, &by, now, derived);
    }

    /// Applies budgets to what a handler asked for.
    fn apply(&mut self, effects: Vec<Effect>, by: &str, now: i64, derived: &mut Vec<Record>) {
        for e in effects {
            match e {
                Effect::Emit {
                    event,
                    slots,
                    budget,
                    site,
                } => {
                    if !allow(
                        &mut self.budgets,
                        site as u64,
                        budget.count,
                        budget.per_ns,
                        now,
                    ) {
                        self.counters.emits_refused += 1;
                        continue;
                    }
                    derived.push(self.derive(event, slots, now));
                }
                Effect::Trigger {
                    action,
                    args,
                    budget,
                    site,
                } => {
                    let fired = allow(
                        &mut self.budgets,
                        site as u64,
                        budget.count,
                        budget.per_ns,
                        now,
                    );
                    if fired {
                        self.counters.actions_fired += 1;
                    } else {
                        self.counters.actions_refused += 1;
                    }
                    self.out.push(Output::Action {
                        action,
                        args,
                        limit: budget.count,
                        per_ns: budget.per_ns,
                        default_budget: !budget.declared,
                        fired,
                        by: by.to_string(),
                        time: now,
                    });
                }
            }
        }
    }

    /// A derived log: output, and a record that queries can read.
    fn derive(&mut self, event: u32, slots: Vec<Value>, now: i64) -> Record {
        let layout = &self.shared.program.events[event as usize];
        let fields: Vec<(String, Value)> = layout
            .fields
            .iter()
            .zip(&slots)
            .map(|(f, v)| (f.name.clone(), v.clone()))
            .collect();
        let attributes = layout
            .fields
            .iter()
            .zip(&slots)
            .filter(|(_, v)| !v.is_none())
            .map(|(f, v)| (f.key.clone(), v.to_json()))
            .collect();
        self.counters.derived += 1;
        self.out.push(Output::Log {
            name: layout.name.clone(),
            time: now,
            fields,
        });
        let input = InputEvent {
            name: Some(layout.wire.clone()),
            time: now,
            observed_time: now,
            severity: 9,
            severity_text: None,
            body: None,
            trace_id: None,
            span_id: None,
            attributes,
            resource: BTreeMap::new(),
        };
        Record::new(event, slots, Rc::new(input))
    }

    // -------------------------------------------------------------- queries

    /// `passed`: what the executor's batch prefilter said of the query's
    /// leading `where` stages for this record, if it was asked.
    fn run_query(
        &mut self,
        qi: usize,
        rec: &Record,
        now: i64,
        passed: Option<bool>,
        derived: &mut Vec<Record>,
    ) {
        if passed == Some(false) {
            return;
        }
        let program = &self.shared.program;
        let q = &program.queries[qi];
        let world = Machines {
            shared: &self.shared,
            states: &self.machines,
        };
        let mut i = self.shared.interp(&world, self.seq);
        let mut row: Vec<Value> = Vec::new();
        let mut event = Some(rec);
        let mut pending: Vec<Pending> = Vec::new();
        let mut emits: Vec<(u32, Vec<Value>)> = Vec::new();
        let executor = &*self.shared.executor;
        // With a prefilter's verdict, the leading `where` stages are done.
        let skip = match passed {
            Some(true) => q
                .stages
                .iter()
                .take_while(|s| matches!(s, Stage::Where(_)))
                .count(),
            _ => 0,
        };
        for (si, stage) in q.stages.iter().enumerate().skip(skip) {
            let mut f = Frame {
                event,
                row: Some(&row),
                locals: vec![],
                vars: &mut [],
                var_defs: &[],
                slots: &mut [],
            };
            let eval = |i: &mut Interp<'_>, f: &mut Frame<'_>, index: usize, e: &Expr| {
                let site = Site::Stage {
                    query: qi as u32,
                    stage: si as u32,
                    index: index as u32,
                };
                executor.eval(site, e, i, f).unwrap_or(Value::None)
            };
            match stage {
                Stage::Where(e) => {
                    if eval(&mut i, &mut f, 0, e) != Value::Bool(true) {
                        break;
                    }
                }
                Stage::Extend(cols) => {
                    let values: Vec<(String, Value)> = cols
                        .iter()
                        .enumerate()
                        .map(|(j, (n, e))| (n.clone(), eval(&mut i, &mut f, j, e)))
                        .collect();
                    extend_row(&mut row, row_after(q, si), values);
                }
                Stage::Project(cols) => {
                    let values: Vec<Value> = cols
                        .iter()
                        .enumerate()
                        .map(|(j, (_, e))| eval(&mut i, &mut f, j, e))
                        .collect();
                    row = values;
                    event = None;
                }
                Stage::Summarize {
                    keys,
                    aggregates,
                    every_ns,
                    ..
                } => {
                    let key_values: Vec<Key> = keys
                        .iter()
                        .enumerate()
                        .map(|(j, (_, e))| {
                            Key::from_value(&eval(&mut i, &mut f, j, e)).unwrap_or(Key::Unit)
                        })
                        .collect();
                    let mut index = keys.len();
                    let args: Vec<Vec<Value>> = aggregates
                        .iter()
                        .map(|a| {
                            a.args
                                .iter()
                                .map(|e| {
                                    index += 1;
                                    eval(&mut i, &mut f, index - 1, e)
                                })
                                .collect()
                        })
                        .collect();
                    let start = now.div_euclid(*every_ns).saturating_mul(*every_ns);
                    pending.push((key_values, args, start, si));
                    break;
                }
                Stage::Sample { rate, site } => {
                    if draw(self.shared.options.seed, self.seq, *site) * 100.0 >= *rate {
                        break;
                    }
                }
                Stage::Limit { count, per_ns } => {
                    let site = 0x2_0000_0000 + ((qi as u64) << 16) + si as u64;
                    if !allow(&mut self.budgets, site, *count, *per_ns, now) {
                        break;
                    }
                }
                Stage::EmitLog {
                    event: target,
                    fields,
                } => {
                    let n = program.events[*target as usize].fields.len();
                    let mut slots = vec![Value::None; n];
                    for (j, (slot, e)) in fields.iter().enumerate() {
                        if let Some(s) = slots.get_mut(*slot as usize) {
                            *s = eval(&mut i, &mut f, j, e);
                        }
                    }
                    emits.push((*target, slots));
                    break;
                }
                Stage::EmitMetric { .. } => break,
            }
        }
        for (target, slots) in emits {
            derived.push(self.derive(target, slots, now));
        }
        for (keys, args, start, si) in pending {
            self.accumulate(qi, si, keys, &args, start);
        }
    }

    fn accumulate(
        &mut self,
        qi: usize,
        si: usize,
        mut keys: Vec<Key>,
        args: &[Vec<Value>],
        start: i64,
    ) {
        let Stage::Summarize {
            aggregates,
            max_series,
            every_ns,
            ..
        } = &self.shared.program.queries[qi].stages[si]
        else {
            return;
        };
        if start.saturating_add(*every_ns)
            <= self
                .watermark
                .saturating_sub(self.shared.options.lateness_ns)
        {
            // Its window has closed already.
            self.counters.late_events += 1;
            return;
        }
        self.next_close = self.next_close.min(start.saturating_add(*every_ns));
        let window = self.queries[qi].windows.entry(start).or_default();
        if let Some(max) = max_series
            && !window.contains_key(&keys)
            && window.len() as u64 >= *max
        {
            self.counters.series_overflow += 1;
            keys = keys.iter().map(|_| Key::Overflow).collect();
        }
        let aggs = window
            .entry(keys)
            .or_insert_with(|| aggregates.iter().map(new_agg).collect());
        for (a, v) in aggs.iter_mut().zip(args) {
            a.add(v);
        }
    }

    /// Closes the windows that end at or before `cutoff`, in time order.
    fn close_windows(&mut self, cutoff: i64) {
        if cutoff < self.next_close {
            return;
        }
        self.settle_tallies(cutoff);
        for qi in 0..self.queries.len() {
            let Some(si) = self.shared.program.queries[qi]
                .stages
                .iter()
                .position(|s| matches!(s, Stage::Summarize { .. }))
            else {
                continue;
            };
            let Stage::Summarize { every_ns, .. } = &self.shared.program.queries[qi].stages[si]
            else {
                continue;
            };
            let every = *every_ns;
            let closing: Vec<i64> = self.queries[qi]
                .windows
                .keys()
                .copied()
                .filter(|s| s.saturating_add(every) <= cutoff)
                .collect();
            for start in closing {
                let Some(groups) = self.queries[qi].windows.remove(&start) else {
                    continue;
                };
                self.close_window(qi, si, start, start.saturating_add(every), groups);
            }
        }
        self.next_close = i64::MAX;
        for qi in 0..self.queries.len() {
            let every = self.shared.program.queries[qi]
                .stages
                .iter()
                .find_map(|s| match s {
                    Stage::Summarize { every_ns, .. } => Some(*every_ns),
                    _ => None,
                });
            if let (Some(every), Some(start)) = (every, self.queries[qi].windows.keys().next()) {
                self.next_close = self.next_close.min(start.saturating_add(every));
            }
        }
    }

    fn close_window(&mut self, qi: usize, si: usize, start: i64, end: i64, groups: Groups) {
        let mut groups: Vec<(Vec<Key>, Vec<Agg>)> = groups.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        let program = &self.shared.program;
        let q = &program.queries[qi];
        let Stage::Summarize {
            keys: key_defs,
            aggregates,
            ..
        } = &q.stages[si]
        else {
            return;
        };
        let key_names: Vec<String> = key_defs.iter().map(|(n, _)| n.clone()).collect();
        let mut derived = Vec::new();
        let world = Machines {
            shared: &self.shared,
            states: &self.machines,
        };
        let mut i = self.shared.interp(&world, self.seq);
        let executor = &*self.shared.executor;
        for (keys, mut aggs) in groups {
            let mut row: Vec<Value> = keys.iter().map(Key::to_value).collect();
            let mut metrics: Vec<(String, MetricValue)> = Vec::new();
            for (a, def) in aggs.iter_mut().zip(aggregates) {
                row.push(a.result());
                metrics.push((def.name.clone(), a.metric()));
            }
            let mut alive = true;
            for (sj, stage) in q.stages.iter().enumerate().skip(si + 1) {
                if !alive {
                    break;
                }
                let mut f = Frame {
                    event: None,
                    row: Some(&row),
                    locals: vec![],
                    vars: &mut [],
                    var_defs: &[],
                    slots: &mut [],
                };
                let mut eval = |index: usize, e: &Expr| {
                    let site = Site::Stage {
                        query: qi as u32,
                        stage: sj as u32,
                        index: index as u32,
                    };
                    executor
                        .eval(site, e, &mut i, &mut f)
                        .unwrap_or(Value::None)
                };
                match stage {
                    Stage::Where(e) => alive = eval(0, e) == Value::Bool(true),
                    Stage::Extend(cols) => {
                        let values: Vec<(String, Value)> = cols
                            .iter()
                            .enumerate()
                            .map(|(j, (n, e))| (n.clone(), eval(j, e)))
                            .collect();
                        extend_row(&mut row, row_after(q, sj), values);
                    }
                    Stage::Project(cols) => {
                        row = cols
                            .iter()
                            .enumerate()
                            .map(|(j, (_, e))| eval(j, e))
                            .collect();
                    }
                    Stage::Sample { rate, site } => {
                        alive = draw(self.shared.options.seed, start as u64, *site) * 100.0 < *rate
                    }
                    Stage::Limit { .. } | Stage::Summarize { .. } => {}
                    Stage::EmitLog { event, fields } => {
                        let n = program.events[*event as usize].fields.len();
                        let mut slots = vec![Value::None; n];
                        for (j, (slot, e)) in fields.iter().enumerate() {
                            if let Some(s) = slots.get_mut(*slot as usize) {
                                *s = eval(j, e);
                            }
                        }
                        derived.push((*event, slots));
                        alive = false;
                    }
                    Stage::EmitMetric { name } => {
                        let labels: Vec<(String, String)> = key_names
                            .iter()
                            .cloned()
                            .zip(keys.iter().map(Key::label))
                            .collect();
                        let single = metrics.len() == 1;
                        for (col, value) in &metrics {
                            let metric = if single {
                                name.clone()
                            } else {
                                format!("{name}.{col}")
                            };
                            self.out.push(Output::Metric {
                                name: metric,
                                labels: labels.clone(),
                                value: value.clone(),
                                start,
                                end,
                            });
                        }
                        alive = false;
                    }
                }
            }
        }
        let mut records = Vec::new();
        for (event, slots) in derived {
            records.push(self.derive(event, slots, end));
        }
        self.dispatch_derived(records);
    }

    /// Dispatches derived records in the order they were emitted, and the
    /// records they derive in turn after them.
    /// Inlined: the common case, nothing derived, is one test here instead
    /// of a call.
    #[inline]
    fn dispatch_derived(&mut self, derived: Vec<Record>) {
        if !derived.is_empty() {
            self.dispatch_queue(derived);
        }
    }

    #[inline(never)]
    fn dispatch_queue(&mut self, derived: Vec<Record>) {
        let mut queue = VecDeque::from(derived);
        while let Some(r) = queue.pop_front() {
            let more = self.dispatch(&r, r.input.time, None);
            queue.extend(more);
        }
    }
}

type Regexes = RefCell<HashMap<String, Rc<regex::Regex>>>;

fn new_interp<'a>(
    program: &'a Program,
    world: &'a dyn World,
    options: &Options,
    seq: u64,
    regexes: &'a Regexes,
) -> Interp<'a> {
    Interp {
        program,
        world,
        seed: options.seed,
        seq,
        hash_key: options.hash_key,
        regexes,
        effects: vec![],
    }
}

/// `extend`: a column of a name already in the row (`names`, as the row was
/// before the stage) is replaced in place; a new one is appended.
fn extend_row(row: &mut Vec<Value>, mut names: Vec<String>, values: Vec<(String, Value)>) {
    for (n, v) in values {
        match names.iter().position(|x| *x == n) {
            Some(idx) if idx < row.len() => row[idx] = v,
            _ => {
                names.push(n);
                row.push(v);
            }
        }
    }
}

/// How many input events [`Engine::egress`] warms at a time.
const WARM_INPUTS: usize = 16;

/// Appends an egress's edit: inline up to `INLINE_EDITS`; past that,
/// allocated at the first edit at full size (`room`, the layout's editing
/// rules), so a suppressed or untouched event allocates nothing. Inlined:
/// as a closure it was a call an edit.
#[inline(always)]
fn push_edit(edits: &mut Edits, room: usize, e: Edit) {
    if edits.is_empty() && room > edits.inline_size() {
        edits.reserve_exact(room);
    }
    edits.push(e);
}

/// The edits of a layout's redactions (`Engine::redactions`), each as the
/// `ShapeRule::Redact` arm of `Engine::egress` makes it ([`redact_field`]).
/// Not inlined: inlined in `Engine::process_at`, it cost other layouts'
/// events (a machine's: about 20 instructions an event).
#[inline(never)]
fn redact_fields(
    plan: &[(u32, Redaction)],
    keys: &[Rc<str>],
    rec: &Record,
    hash_key: (u64, u64),
    (edits, room): (&mut Edits, usize),
) {
    for &redaction in plan {
        redact_field(
            keys,
            redaction,
            value_of(rec),
            hash_key,
            (&mut *edits, room),
        );
    }
}

/// The edit of one `redact` of a declared field (`slot`, `method`): the
/// attribute removed, or its value (`value` of the slot) replaced by its
/// redacted text (none where the value is absent).
/// The value is anything that derefs to one: a record's borrowed in
/// place (a `Cow` there cost a check for an owned value to drop, about 14
/// instructions an event of the redaction kernel), or one made from what
/// was read.
#[inline(always)]
fn redact_field<V: std::ops::Deref<Target = Value>>(
    keys: &[Rc<str>],
    redaction: (u32, Redaction),
    value: impl FnOnce(u32) -> V,
    hash_key: (u64, u64),
    (edits, room): (&mut Edits, usize),
) {
    if let Some(text) = redaction_of(redaction, value, hash_key) {
        push_redaction(keys, room, redaction.0, text, edits);
    }
}

/// What one `redact` of a declared field (`slot`, `method`) does, by the
/// field: `Some(None)`, it is removed; `Some(Some(text))`, its value is
/// replaced by its redacted text; `None`, nothing (its value is absent).
#[inline(always)]
fn redaction_of<V: std::ops::Deref<Target = Value>>(
    (slot, method): (u32, Redaction),
    value: impl FnOnce(u32) -> V,
    hash_key: (u64, u64),
) -> Option<Option<Text>> {
    // A drop does not read the value (a record read in place may not have
    // built it; one read without a record has none).
    if method == Redaction::Drop {
        return Some(None);
    }
    let v = value(slot);
    (!v.is_none()).then(|| Some(redacted(&v, method, hash_key)))
}

/// The edit of [`redaction_of`]'s answer for declared field `slot` of a
/// layout whose keys are `keys`, pushed to `edits`.
#[inline(always)]
fn push_redaction(keys: &[Rc<str>], room: usize, slot: u32, text: Option<Text>, edits: &mut Edits) {
    let Some(key) = keys.get(slot as usize) else {
        return;
    };
    let edit = match text {
        None => Edit::RemoveAttr(key.clone()),
        Some(text) => Edit::ReplaceAttr(key.clone(), text),
    };
    push_edit(edits, room, edit);
}

/// A declared field's value of `rec`, for [`redact_field`].
#[inline(always)]
fn value_of<'r>(rec: &'r Record) -> impl FnOnce(u32) -> &'r Value + 'r {
    |slot| rec.slots().get(slot as usize).unwrap_or(&Value::None)
}

/// A layout's redactions, in rule order: (declared field, method).
type RedactionPlan = Box<[(u32, Redaction)]>;

/// Per layout, its redactions when every shaping rule of the layout is a
/// `redact` of a declared field (`Engine::redactions`).
fn redaction_plans(p: &Program) -> Vec<Option<RedactionPlan>> {
    (0..p.events.len() as u32)
        .map(|layout| {
            let mut plan = Vec::new();
            for rule in p.shaping.iter().filter(|r| r.event() == layout) {
                match rule {
                    ShapeRule::Redact { slot, method, .. } => plan.push((*slot, *method)),
                    _ => return None,
                }
            }
            (!plan.is_empty()).then(|| plan.into_boxed_slice())
        })
        .collect()
}

/// The text a `hash` or `mask` redaction puts in place of `v`, inline when
/// short (`output::Text`). `drop` has no text: the caller removes the
/// field instead, and an empty text here is never written. Inlined where
/// it is called, as the hash and the short mask are in it: its frame and
/// its tail calls cost the redaction kernel 27 instructions an event.
#[inline(always)]
fn redacted(v: &Value, method: Redaction, key: (u64, u64)) -> Text {
    match method {
        Redaction::Hash => keyed_hash_text(key, v),
        Redaction::Mask => match v {
            Value::Str(s) => mask_text(s),
            other => mask_text(&other.to_json().to_string()),
        },
        Redaction::Drop => Text::default(),
    }
}
