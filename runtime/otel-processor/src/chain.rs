//! Running one event through the loaded programs, in order: a record one
//! program suppresses goes no further, and one it edits (redaction) is what
//! the next program sees. Used on the engine thread (every program whole)
//! and on the application's threads (the shaping rules alone, see
//! [`crate::local`]).
//!
//! Also how a program splits for that: shaping reads nothing but the event
//! itself (a `when` reads its fields; machines, windows and variables are
//! out of its reach), so unless a rule keeps state of its own (`sample`
//! draws by sequence number, `limit` counts per time), shaping gives the
//! same answer on any thread, and only queries, machines and processors
//! need the one engine thread.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use dtc_engine::event::{InputEvent, from_flat_json};
use dtc_engine::value::decode;
use dtc_engine::{Engine, Options, Output};
use dtc_ir::{AggKind, Program, ShapeRule};
use serde_json::Value as Json;

use crate::metrics::metric_kinds;
use crate::stats::Counters;

/// One program with its engine.
pub(crate) struct Loaded {
    pub name: String,
    pub engine: Engine,
    /// Durable IDs of the events a shaping rule may edit (not only drop):
    /// only their egress is read back, the rest pass or not.
    pub edits: HashSet<String>,
    pub kinds: HashMap<String, AggKind>,
    /// Set when the engine panicked: the program is off, its events pass.
    pub disabled: bool,
    /// Only the shaping rules run here, none with state ([`crate::local`]):
    /// an event no rule names skips the engine (it would pass unchanged),
    /// and is only checked against its schema.
    pub shaping_only: bool,
    /// Durable IDs of the events some shaping rule names.
    pub shaped: HashSet<String>,
    /// Durable ID to layout index, of the events the program receives.
    pub layouts: HashMap<String, u32>,
}

impl Loaded {
    pub(crate) fn new(program: Program, options: &Options) -> Loaded {
        let shaped = program
            .shaping
            .iter()
            .filter_map(|rule| program.events.get(rule_event(rule) as usize))
            .map(|layout| layout.wire.clone())
            .collect();
        Loaded {
            name: program_name(&program),
            edits: edited_events(&program),
            kinds: metric_kinds(&program),
            shaping_only: false,
            shaped,
            layouts: layouts(&program),
            engine: Engine::new(program, options.clone()),
            disabled: false,
        }
    }

    /// For an event no shaping rule of this program names: a schema
    /// mismatch, if it has one. The event comes back unchanged.
    fn check_schema(&self, event: InputEvent) -> (InputEvent, Option<Output>) {
        let layout_index = event
            .name
            .as_ref()
            .and_then(|n| self.layouts.get(n))
            .copied();
        let Some(li) = layout_index else {
            return (event, None);
        };
        let Some(layout) = self.engine.program().events.get(li as usize) else {
            return (event, None);
        };
        let event = Rc::new(event);
        let mismatch = decode(li, layout, event.clone())
            .err()
            .map(|m| Output::Mismatch {
                event: layout.name.clone(),
                reason: m.0,
            });
        // The decoded record is gone, so the event is ours alone again.
        let event = Rc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone());
        (event, mismatch)
    }
}

/// Durable ID to layout index of the events a program receives (not those
/// it derives).
pub(crate) fn layouts(program: &Program) -> HashMap<String, u32> {
    program
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.derived)
        .map(|(i, e)| (e.wire.clone(), i as u32))
        .collect()
}

fn rule_event(rule: &ShapeRule) -> u32 {
    match rule {
        ShapeRule::Suppress { event, .. }
        | ShapeRule::SuppressField { event, .. }
        | ShapeRule::Redact { event, .. }
        | ShapeRule::RedactStd { event, .. }
        | ShapeRule::Sample { event, .. }
        | ShapeRule::Limit { event, .. } => *event,
    }
}

/// Whether a program reads the resource (`resource`, `service`): only then
/// do its events carry the provider's resource attributes, which cost a
/// copy per record. Read from the program's serialized form, where the two
/// standard fields appear by name; an event or field spelled the same only
/// makes the answer a cautious yes.
pub(crate) fn reads_resource(program: &Program) -> bool {
    serde_json::to_string(program).map_or(true, |text| {
        text.contains("\"Resource\"") || text.contains("\"Service\"")
    })
}

/// What becomes of one record.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Unchanged.
    Pass,
    Suppress,
    /// Edited by shaping: the record's event before and after.
    Rewrite {
        original: Box<InputEvent>,
        shaped: Box<InputEvent>,
    },
}

/// Runs `event` through `programs`. `feed(i, e)` sees the event as it
/// comes to program `i` (before it runs); `other(i, output)` gets every
/// output but egress.
pub(crate) fn shape(
    programs: &mut [Loaded],
    mut event: InputEvent,
    counters: &Counters,
    mut feed: impl FnMut(usize, &InputEvent),
    mut other: impl FnMut(usize, &Loaded, Output),
) -> Verdict {
    let mut original: Option<InputEvent> = None;
    let last = programs.iter().rposition(|p| !p.disabled);
    for (pi, program) in programs.iter_mut().enumerate() {
        if program.disabled {
            continue;
        }
        feed(pi, &event);
        if program.shaping_only
            && !event
                .name
                .as_ref()
                .is_some_and(|n| program.shaped.contains(n))
        {
            let (unchanged, mismatch) = program.check_schema(event);
            event = unchanged;
            if let Some(mismatch) = mismatch {
                other(pi, program, mismatch);
            }
            continue;
        }
        let edits = event
            .name
            .as_ref()
            .is_some_and(|n| program.edits.contains(n));
        // The event itself goes into the engine; keep a copy when the
        // reshaping or the next program needs it.
        let keep = (edits || original.is_some() || Some(pi) != last).then(|| event.clone());
        let outputs = match program.guarded(counters, "on an event", |e| e.push_event(event)) {
            Some(outputs) => outputs,
            None => {
                // The event passes this program unchanged.
                match keep {
                    Some(before) => {
                        event = before;
                        continue;
                    }
                    None => return Verdict::Pass,
                }
            }
        };
        let mut egress = None;
        for output in outputs {
            match output {
                Output::Egress { event } => egress = Some(event),
                other_output => other(pi, program, other_output),
            }
        }
        let Some(egress) = egress else {
            return Verdict::Suppress;
        };
        // No copy: the last program, nothing edited before or here.
        let Some(before) = keep else {
            return Verdict::Pass;
        };
        event = if edits {
            read_back(egress, before, &mut original, program, counters)
        } else {
            before
        };
    }
    match original {
        Some(original) if original != event => Verdict::Rewrite {
            original: Box::new(original),
            shaped: Box::new(event),
        },
        _ => Verdict::Pass,
    }
}

/// The event a program's egress describes; the first edit remembers the
/// event as the application logged it.
fn read_back(
    egress: Json,
    before: InputEvent,
    original: &mut Option<InputEvent>,
    program: &Loaded,
    counters: &Counters,
) -> InputEvent {
    match from_flat_json(egress) {
        Ok(shaped) => {
            if original.is_none() {
                *original = Some(before);
            }
            shaped
        }
        Err(reason) => {
            counters.problem(format!(
                "program `{}`: its egress could not be read back ({reason}); the record passed on as it came to it",
                program.name
            ));
            Counters::bump(&counters.internal_errors);
            before
        }
    }
}

impl Loaded {
    /// Runs `step` on the engine and takes its outputs; a panic disables
    /// the program (`None`), saying `when` it happened.
    pub(crate) fn guarded(
        &mut self,
        counters: &Counters,
        when: &str,
        step: impl FnOnce(&mut Engine),
    ) -> Option<Vec<Output>> {
        let engine = &mut self.engine;
        let run = catch_unwind(AssertUnwindSafe(|| {
            step(engine);
            engine.drain()
        }));
        match run {
            Ok(outputs) => Some(outputs),
            Err(_) => {
                disable(self, counters, &format!("it panicked {when}"));
                None
            }
        }
    }
}

fn disable(program: &mut Loaded, counters: &Counters, why: &str) {
    program.disabled = true;
    Counters::bump(&counters.programs_disabled);
    counters.problem(format!(
        "program `{}` is disabled: {why}; its events pass on unchanged",
        program.name
    ));
}

/// Whether every shaping rule gives the same answer on any thread (no
/// `sample`, no `limit`).
pub(crate) fn shaping_is_stateless(program: &Program) -> bool {
    program
        .shaping
        .iter()
        .all(|rule| !matches!(rule, ShapeRule::Sample { .. } | ShapeRule::Limit { .. }))
}

/// Whether a program has anything but shaping rules.
pub(crate) fn has_state(program: &Program) -> bool {
    !(program.queries.is_empty() && program.machines.is_empty() && program.processors.is_empty())
}

/// The program's shaping rules alone.
pub(crate) fn shaping_part(program: &Program) -> Program {
    Program {
        queries: Vec::new(),
        machines: Vec::new(),
        processors: Vec::new(),
        ..program.clone()
    }
}

/// The program without its shaping rules: its queries, machines and
/// processors.
pub(crate) fn stateful_part(program: Program) -> Program {
    Program {
        shaping: Vec::new(),
        ..program
    }
}

/// A program's name for scopes and messages: its root file's name without
/// folders or extension (`embedded` for `samples/08-embedded/embedded.dt`),
/// so it does not depend on where it was compiled.
pub(crate) fn program_name(program: &Program) -> String {
    let path = std::path::Path::new(&program.name);
    match path.file_stem() {
        Some(stem) if !stem.is_empty() => stem.to_string_lossy().into_owned(),
        _ => program.name.clone(),
    }
}

/// The durable IDs of the events whose fields a shaping rule edits.
fn edited_events(program: &Program) -> HashSet<String> {
    program
        .shaping
        .iter()
        .filter_map(|rule| match rule {
            ShapeRule::SuppressField { event, .. }
            | ShapeRule::Redact { event, .. }
            | ShapeRule::RedactStd { event, .. } => program.events.get(*event as usize),
            ShapeRule::Suppress { .. } | ShapeRule::Sample { .. } | ShapeRule::Limit { .. } => None,
        })
        .map(|layout| layout.wire.clone())
        .collect()
}
