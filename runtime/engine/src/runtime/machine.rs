//! Machine instances in the runtime: one instance per key, bounded (the
//! least recently used goes, counted), moved by the transitions an event
//! selects and by timeouts on event time.
//!
//! A machine event is the hot path of a keyed machine on a high-rate
//! stream, so its common case costs no allocation and no call that cannot
//! matter: the key of a plain read comes straight from the record (an
//! integer standard field from its compact row), an instance that exists
//! is found with one lookup and updated in place (unless code asks
//! `machine is State`, see [`Engine::run_machine`]), frames without locals
//! allocate nothing, an empty body is not run, and an event that selects
//! no transition or one that emits nothing hands back nothing to apply.
//! The outputs are the general path's, which `Engine::general` keeps as
//! the reference the differential tests compare with.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::rc::Rc;

use dtc_ir::{Machine, Program, State, StdField};

use super::{Engine, Machines, NoWorld, Outputs, Shared, fast};
use crate::exec::{Executor, Site};
use crate::interp::{Effect, Frame, Interp, World, std_field};
use crate::output::{Counters, Output};
use crate::value::{Key, Record, Value};

pub(super) struct Instance {
    pub state: u32,
    pub slots: Vec<Value>,
    pub vars: Vec<Value>,
    pub entered: i64,
    pub used: u64,
    pub deadline: Option<i64>,
}

#[derive(Default)]
pub(super) struct MachineState {
    pub instances: HashMap<Key, Instance, KeyHashing>,
    pub clock: u64,
}

/// How instance maps and summarize groups (`FastMap`) hash their keys,
/// once or more per event: foldhash spent most of its 44 instructions a
/// key on its 128-bit buffer, where rustc-hash's Fx hasher folds each word
/// a key writes (its variant, then an integer, or a string a word at a
/// time) with one multiply; seeded per map from std's random keys. These
/// maps are bounded (`max` instances, `max` series), so even a flood of
/// colliding keys costs a bounded probe, not unbounded growth.
#[derive(Clone)]
pub(super) struct KeyHashing(rustc_hash::FxSeededState);

impl Default for KeyHashing {
    fn default() -> KeyHashing {
        let seed = std::hash::RandomState::new().hash_one(0x6d61_6368_696e_6573u64);
        KeyHashing(rustc_hash::FxSeededState::with_seed(seed as usize))
    }
}

impl BuildHasher for KeyHashing {
    type Hasher = rustc_hash::FxHasher;

    fn build_hasher(&self) -> rustc_hash::FxHasher {
        self.0.build_hasher()
    }
}

/// Where a machine transition reports: new deadlines, counters, outputs.
struct Sinks<'a> {
    deadlines: &'a mut BTreeSet<(i64, u32, Key)>,
    counters: &'a mut Counters,
    out: &'a mut Outputs,
}

/// What a step leaves for [`Engine::apply`]: the effects its body asked
/// for and who asked (the transition, named for the outputs).
type Asked = (Vec<Effect>, Rc<str>);

/// How the instance key of a machine is read from one layout's events,
/// when it is a plain read of the event (`fast::machine_keys`), resolved
/// at load.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeyRead {
    /// Declared field `slot`.
    Field(u32),
    /// An integer standard field, at `at` in the record's compact row when
    /// it has one (the row is built by the same rules as `std_field`,
    /// without its lookup among the attributes).
    RowInt { at: u32, field: StdField },
    /// Any other standard field.
    Std(StdField),
}

/// Per machine of `p`, the layouts whose instance key is a plain read.
pub(super) fn key_reads(p: &Program) -> Vec<Vec<(u32, KeyRead)>> {
    let resolve = |read: fast::Read| match read {
        fast::Read::Field(s) => KeyRead::Field(s),
        fast::Read::Std(field @ (StdField::Severity | StdField::ThreadId)) => {
            match crate::slots::std_slot(field) {
                Some(at) => KeyRead::RowInt { at, field },
                None => KeyRead::Std(field),
            }
        }
        fast::Read::Std(f) => KeyRead::Std(f),
    };
    fast::machine_keys(p)
        .into_iter()
        .map(|m| m.into_iter().map(|(l, r)| (l, resolve(r))).collect())
        .collect()
}

/// The key of a plain read for a record, as [`machine_key`] computes it.
/// `Some(None)`: the read has no key value; `None`: the key is not a
/// plain read, compute it the general way.
#[inline]
fn plain_key(reads: &[(u32, KeyRead)], rec: &Record) -> Option<Option<Key>> {
    let (_, read) = reads.iter().find(|(layout, _)| *layout == rec.layout)?;
    Some(match *read {
        KeyRead::Field(s) => rec.slots().get(s as usize).and_then(Key::from_value),
        KeyRead::RowInt { at, field } => match rec.row.get() {
            Some(Some(row)) if (at as usize) < row.len() => {
                let s = row[at as usize];
                (s.tag == crate::slots::TAG_PRESENT).then_some(Key::Int(s.bits as i64))
            }
            _ => Key::from_value(&std_field(rec, field)),
        },
        KeyRead::Std(f) => Key::from_value(&std_field(rec, f)),
    })
}

impl Engine {
    pub(super) fn run_machine(
        &mut self,
        mi: usize,
        rec: &Record,
        now: i64,
        derived: &mut Vec<Record>,
    ) {
        let key = match plain_key(&self.machine_keys[mi], rec) {
            Some(k) => k,
            None => machine_key(
                &*self.shared.executor,
                &mut self.interp(),
                mi as u32,
                &self.shared.program.machines[mi],
                rec,
            ),
        };
        let Some(key) = key else {
            self.counters.unkeyed += 1;
            return;
        };
        if !self.reads_states {
            // The common case, an instance that exists and that nothing
            // else reads: one lookup, updated in place.
            let ms = &mut self.machines[mi];
            if let Some(inst) = ms.instances.get_mut(&key) {
                ms.clock += 1;
                inst.used = ms.clock;
                let sinks = Sinks {
                    deadlines: &mut self.deadlines,
                    counters: &mut self.counters,
                    out: &mut self.out,
                };
                let asked = step_machine(
                    &self.shared,
                    &NoWorld,
                    self.seq,
                    mi,
                    (rec, now),
                    &key,
                    inst,
                    sinks,
                );
                if let Some((effects, by)) = asked {
                    self.apply(effects, &by, now, derived);
                }
                return;
            }
        }
        if !self.machines[mi].instances.contains_key(&key) {
            if self.machines[mi].instances.len() as u64
                >= self.shared.program.machines[mi].max_instances
            {
                // Full: the least recently used instance goes.
                if let Some(old) = self.machines[mi]
                    .instances
                    .iter()
                    .min_by_key(|(_, i)| i.used)
                    .map(|(k, _)| k.clone())
                {
                    self.machines[mi].instances.remove(&old);
                    self.counters.evictions += 1;
                }
            }
            let inst = self.new_instance(mi, now);
            self.machines[mi].instances.insert(key.clone(), inst);
        }
        self.machines[mi].clock += 1;
        let clock = self.machines[mi].clock;
        let code = &self.shared;
        let sinks = Sinks {
            deadlines: &mut self.deadlines,
            counters: &mut self.counters,
            out: &mut self.out,
        };
        let asked = if self.reads_states {
            // Code that asks `machine is State` reads the instances while
            // this one changes: it is taken out for the transition (so it
            // reads as not yet seen), as it always was.
            let Some(mut inst) = self.machines[mi].instances.remove(&key) else {
                return;
            };
            inst.used = clock;
            let world = Machines {
                shared: code,
                states: &self.machines,
            };
            let r = step_machine(
                code,
                &world,
                self.seq,
                mi,
                (rec, now),
                &key,
                &mut inst,
                sinks,
            );
            self.machines[mi].instances.insert(key, inst);
            r
        } else {
            // Nothing reads other instances: updated in place.
            let Some(inst) = self.machines[mi].instances.get_mut(&key) else {
                return;
            };
            inst.used = clock;
            step_machine(code, &NoWorld, self.seq, mi, (rec, now), &key, inst, sinks)
        };
        if let Some((effects, by)) = asked {
            self.apply(effects, &by, now, derived);
        }
    }

    fn new_instance(&self, mi: usize, now: i64) -> Instance {
        let m = &self.shared.program.machines[mi];
        let mut slots = vec![Value::None; m.slots.len()];
        if let Some(first) = m.states.first() {
            enter_state(
                &*self.shared.executor,
                &mut self.interp(),
                mi as u32,
                0,
                first,
                &mut slots,
            );
        }
        let deadline = m
            .timeouts
            .iter()
            .filter(|x| x.from == 0)
            .map(|x| now.saturating_add(x.after_ns))
            .min();
        Instance {
            state: 0,
            slots,
            vars: self.init_vars(&m.vars, |var| Site::MachineVar {
                machine: mi as u32,
                var,
            }),
            entered: now,
            used: 0,
            deadline,
        }
    }

    /// Fires every timeout due by `now`, in deadline order.
    pub(super) fn fire_timeouts(&mut self, now: i64) {
        while let Some((deadline, mi, key)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let mi = mi as usize;
            let Some(mut inst) = self.machines[mi].instances.remove(&key) else {
                continue;
            };
            if inst.deadline != Some(deadline) {
                self.machines[mi].instances.insert(key, inst);
                continue;
            }
            let program = &self.shared.program;
            let m = &program.machines[mi];
            let Some((xi, t)) = m
                .timeouts
                .iter()
                .enumerate()
                .filter(|(_, t)| t.from == inst.state)
                .min_by_key(|(_, t)| t.after_ns)
            else {
                self.machines[mi].instances.insert(key, inst);
                continue;
            };
            let by = format!(
                "machine {} after {} in {} -> {}",
                m.name,
                crate::value::format_duration(t.after_ns),
                m.states[t.from as usize].name,
                m.states[t.target as usize].name
            );
            let world = Machines {
                shared: &self.shared,
                states: &self.machines,
            };
            let mut i = self.shared.interp(&world, self.seq);
            let executor = &*self.shared.executor;
            enter_if_changed(executor, &mut i, m, mi, t.target, &mut inst);
            let result = if t.body.is_empty() {
                Ok(())
            } else {
                let mut f = Frame::new(None, t.n_locals, &mut inst.vars, &m.vars, &mut inst.slots);
                let site = Site::TimeoutBody {
                    machine: mi as u32,
                    timeout: xi as u32,
                };
                executor.run(site, &t.body, &mut i, &mut f)
            };
            let effects = std::mem::take(&mut i.effects);
            settle_in(
                &mut inst,
                m,
                mi,
                t.target,
                deadline,
                &key,
                &mut self.deadlines,
            );
            if let Err(fault) = result {
                self.counters.faults += 1;
                self.out.push(Output::Fault {
                    by: by.clone(),
                    message: fault.to_string(),
                    time: deadline,
                });
            }
            self.machines[mi].instances.insert(key, inst);
            if effects.is_empty() {
                continue;
            }
            let mut derived = Vec::new();
            self.apply(effects, &by, deadline, &mut derived);
            self.dispatch_derived(derived);
        }
    }
}

/// Who asked for the effects of transition `ti` of machine `mi` taken in
/// `state`, as the outputs name it: "machine M on E in A -> B". Made once
/// for each (a `format!` per emitting transition cost the file-hashing
/// sample about 660 instructions a record in the agent).
fn provenance(code: &Shared, mi: usize, ti: usize, state: u32) -> Rc<str> {
    let key = (mi as u32, ti as u32, state);
    if let Some(by) = code.provenance.borrow().get(&key) {
        return by.clone();
    }
    let m = &code.program.machines[mi];
    let t = &m.transitions[ti];
    let name = |s: u32| m.states.get(s as usize).map_or("?", |s| s.name.as_str());
    let event = code.program.events.get(t.event as usize);
    let by: Rc<str> = format!(
        "machine {} on {} in {} -> {}",
        m.name,
        event.map_or("?", |e| e.name.as_str()),
        name(state),
        name(t.target)
    )
    .into();
    code.provenance.borrow_mut().insert(key, by.clone());
    by
}

/// One event through instance `inst` of machine `mi`: the transition it
/// takes, if any (its body run, the state entered, the deadline set, a
/// fault reported). Returns the effects to apply and who asked for them;
/// `None` when there are none (no transition, or one that emitted
/// nothing), which allocates nothing.
#[allow(clippy::too_many_arguments)]
fn step_machine(
    code: &Shared,
    world: &dyn World,
    seq: u64,
    mi: usize,
    (rec, now): (&Record, i64),
    key: &Key,
    inst: &mut Instance,
    sinks: Sinks<'_>,
) -> Option<Asked> {
    let program = &code.program;
    let m = &program.machines[mi];
    let mut i = code.interp(world, seq);
    let executor = &*code.executor;
    let chosen = {
        let mut f = Frame::new(Some(rec), 0, &mut inst.vars, &m.vars, &mut inst.slots);
        executor.select(mi as u32, m, rec, inst.state, &mut i, &mut f)
    };
    let (ti, result) = match chosen {
        Ok(None) => return None,
        Err((ti, e)) => (ti, Err(e)),
        Ok(Some(ti)) => {
            let t = &m.transitions[ti];
            enter_if_changed(executor, &mut i, m, mi, t.target, inst);
            // An empty body (`on E in A -> B`) does nothing; it is not run.
            let result = if t.body.is_empty() {
                Ok(())
            } else {
                let mut f = Frame::new(
                    Some(rec),
                    t.n_locals,
                    &mut inst.vars,
                    &m.vars,
                    &mut inst.slots,
                );
                let site = Site::TransitionBody {
                    machine: mi as u32,
                    transition: ti as u32,
                };
                executor.run(site, &t.body, &mut i, &mut f)
            };
            (ti, result)
        }
    };
    let t = &m.transitions[ti];
    let effects = std::mem::take(&mut i.effects);
    if effects.is_empty()
        && let Ok(()) = result
    {
        if t.target != inst.state {
            settle_in(inst, m, mi, t.target, now, key, sinks.deadlines);
        }
        return None;
    }
    // Named only for the outputs that carry it (most transitions have
    // none), so the common case looks nothing up.
    let by = provenance(code, mi, ti, inst.state);
    match result {
        Ok(()) => {
            if t.target != inst.state {
                settle_in(inst, m, mi, t.target, now, key, sinks.deadlines);
            }
        }
        Err(fault) => {
            sinks.counters.faults += 1;
            sinks.out.push(Output::Fault {
                by: by.to_string(),
                message: fault.to_string(),
                time: now,
            });
        }
    }
    (!effects.is_empty()).then_some((effects, by))
}

/// An instance of machine `mi` (`m`) now in state `target`, entered at
/// `at`: its earliest timeout from there, if any, is armed.
fn settle_in(
    inst: &mut Instance,
    m: &Machine,
    mi: usize,
    target: u32,
    at: i64,
    key: &Key,
    deadlines: &mut BTreeSet<(i64, u32, Key)>,
) {
    inst.state = target;
    inst.entered = at;
    inst.deadline = m
        .timeouts
        .iter()
        .filter(|x| x.from == target)
        .map(|x| at.saturating_add(x.after_ns))
        .min();
    if let Some(d) = inst.deadline {
        deadlines.insert((d, mi as u32, key.clone()));
    }
}

/// The instance an event belongs to: `Unit` for a machine with a single
/// instance, `None` when the key cannot be computed for this event.
pub(super) fn machine_key(
    executor: &dyn Executor,
    i: &mut Interp<'_>,
    mi: u32,
    m: &Machine,
    rec: &Record,
) -> Option<Key> {
    let Some(keys) = &m.keys else {
        return Some(Key::Unit);
    };
    let (index, (_, k)) = keys
        .iter()
        .enumerate()
        .find(|(_, (e, _))| *e == rec.layout)?;
    let mut f = Frame::new(Some(rec), 0, &mut [], &[], &mut []);
    let site = Site::MachineKey {
        machine: mi,
        index: index as u32,
    };
    executor
        .eval(site, k, i, &mut f)
        .ok()
        .and_then(|v| Key::from_value(&v))
}

/// Sets the variables of state `target` to their defaults when an
/// instance moves into it from another state; a transition or timeout
/// that stays in the state keeps them.
fn enter_if_changed(
    executor: &dyn Executor,
    i: &mut Interp<'_>,
    m: &Machine,
    mi: usize,
    target: u32,
    inst: &mut Instance,
) {
    if target != inst.state {
        enter_state(
            executor,
            i,
            mi as u32,
            target,
            &m.states[target as usize],
            &mut inst.slots,
        );
    }
}

/// Entering a state: its variables start from their defaults, or absent.
fn enter_state(
    executor: &dyn Executor,
    i: &mut Interp<'_>,
    mi: u32,
    si: u32,
    state: &State,
    slots: &mut [Value],
) {
    for (index, (slot, default)) in state.vars.iter().enumerate() {
        let site = Site::StateDefault {
            machine: mi,
            state: si,
            index: index as u32,
        };
        let v = match default {
            Some(d) => executor
                .eval(site, d, i, &mut Frame::new(None, 0, &mut [], &[], &mut []))
                .unwrap_or(Value::None),
            None => Value::None,
        };
        if let Some(s) = slots.get_mut(*slot as usize) {
            *s = v;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The machine lane against the general path (`fast::tests::check`
    //! runs both, line by line, in batches of lines and in decoded
    //! batches), on the cases the lane takes shortcuts around: empty
    //! bodies, steps that emit nothing, timeouts with and without bodies,
    //! evictions at `max`, faults in guards and bodies, string keys, and
    //! `is` reads.

    use super::super::fast::tests::{S, check, line, program};
    use crate::runtime::Options;

    /// Three events over three instances of `m` and now and then a new
    /// one (max 3: evictions), with gaps that let the timeout fire, ticks
    /// of zero (a guard divides by them) and ticks that overflow a body's
    /// arithmetic.
    fn stream() -> Vec<String> {
        let mut input = Vec::new();
        let mut t = 0;
        for k in 0..120i64 {
            // Now and then a pause past the 20s timeout.
            t += if k % 17 == 16 { 25 } else { 1 };
            let id = if k % 13 == 12 { 10 + k } else { k % 3 };
            let who = ["ann", "bob", "cy"][(k % 3) as usize];
            let (name, fields) = match k % 5 {
                0 | 3 => ("Start", format!(r#""id":{id},"who":"{who}""#)),
                1 => (
                    "Tick",
                    format!(r#""id":{id},"n":{}"#, [0, 1, 2][(k % 3) as usize]),
                ),
                2 => ("Tick", format!(r#""id":{id},"n":{}"#, i64::MAX / 3)),
                _ => ("End", format!(r#""id":{id}"#)),
            };
            input.push(line(name, t * S, &fields));
        }
        input.push(line("End", (t + 60) * S, r#""id":1"#));
        input
    }

    const EVENTS: &str = "event Start { id: int, who: string }\n\
                          event Tick { id: int, n: int }\n\
                          event End { id: int }\n";

    /// The machine every test runs; `extra` adds to its program.
    fn machine(extra: &str) -> String {
        format!(
            "{EVENTS}\
             machine m per event.id max 3 {{\n\
              var total: int = 0\n\
              state Idle\n\
              state Busy {{ at: timestamp, who: string, ticks: int = 0 }}\n\
              on Start in Idle -> Busy {{\n at = event.time\n who = event.who\n }}\n\
              on Tick in Busy when ticks / event.n > 100 -> Busy\n\
              on Tick in Busy -> Busy {{\n ticks += event.n\n total += event.n\n\
                let big = ticks * 4\n emit log Ticked {{ id: event.id, big: big }}\n }}\n\
              on End in Busy when event.time - at > 2s -> Idle {{\n\
                emit log Slow {{ id: event.id, who: who, total: total }}\n\
                trigger cpu_sample(for: 30s) limit 1 per 10s\n }}\n\
              on End in Busy -> Idle\n\
              after 20s in Busy -> Idle {{ emit log Late {{ total: total }} }}\n\
             }}\n{extra}"
        )
    }

    #[test]
    fn instance_keys_hash_apart() {
        use super::KeyHashing;
        use crate::value::Key;
        use std::hash::BuildHasher;
        let h = KeyHashing::default();
        let keys: Vec<Key> = (0..4096i64)
            .map(Key::Int)
            .chain((0..4096).map(|i| Key::Str(format!("thread-{i}").into())))
            .chain([
                Key::Unit,
                Key::Bool(false),
                Key::Bool(true),
                Key::Str("".into()),
            ])
            .collect();
        let hashes: std::collections::HashSet<u64> = keys.iter().map(|k| h.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        // The bits hashbrown reads (the low ones pick a bucket, the top
        // seven tag it) are spread over sequential integer keys.
        let low: std::collections::HashSet<u64> = (0..4096i64)
            .map(|i| h.hash_one(Key::Int(i)) & 1023)
            .collect();
        let top: std::collections::HashSet<u64> = (0..4096i64)
            .map(|i| h.hash_one(Key::Int(i)) >> 57)
            .collect();
        assert!(
            low.len() > 900 && top.len() == 128,
            "{} {}",
            low.len(),
            top.len()
        );
        // Another map, another seed.
        assert_ne!(
            KeyHashing::default().hash_one(Key::Int(1)),
            h.hash_one(Key::Int(1))
        );
    }

    #[test]
    fn steps_timeouts_evictions_and_faults_match_the_general_path() {
        let src = machine(
            "machine names per event.who max 2 {\n state A\n state B\n\
             on Start in A -> B\n on Start in B -> A { emit log Flip { who: event.who } }\n}",
        );
        assert!(!super::super::fast::reads_states(&program(&src)));
        let summary = check(&src, &Options::default(), &stream());
        // Each shortcut's case happened: evictions, faults (a guard's
        // division by zero, a body's overflow), emits, actions, and
        // timeouts (their `Late` logs).
        for counter in ["evictions", "faults", "derived", "actions_fired"] {
            assert!(summary[counter].as_u64() > Some(0), "{counter}: {summary}");
        }
        let outputs = crate::Engine::new(program(&src), Options::default())
            .general()
            .run_json_lines(&stream().join("\n"));
        assert!(outputs.contains(r#""Late""#), "{outputs}");
    }

    #[test]
    fn a_timeout_without_a_body_and_is_reads_match_the_general_path() {
        // `m is Busy` elsewhere: instances are taken out while they change.
        let src = machine(
            "machine seen per event.id max 4 {\n state X\n state Y\n\
             on Start in X when m is Busy -> Y { emit log Seen { id: event.id } }\n\
             on End in Y -> X\n after 3s in Y -> X\n}\n\
             query busy = Tick | where m is Busy | summarize n = count() every 10s | emit metric \"busy\"",
        );
        assert!(super::super::fast::reads_states(&program(&src)));
        let summary = check(&src, &Options::default(), &stream());
        assert!(summary["derived"].as_u64() > Some(0), "{summary}");
        assert!(summary["evictions"].as_u64() > Some(0), "{summary}");
    }
}
