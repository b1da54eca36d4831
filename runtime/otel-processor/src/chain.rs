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
use dtc_engine::{Edit, Edits, Egress, Engine, Options, Output, Produced};
use dtc_ir::{AggKind, Program, ShapeRule};
use serde_json::Value as Json;

use crate::metrics::metric_kinds;
use crate::stats::Counters;

/// One program with its engine.
pub(crate) struct Loaded {
    pub name: String,
    pub engine: Engine,
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
            .filter_map(|rule| program.events.get(rule.event() as usize))
            .map(|layout| layout.wire.clone())
            .collect();
        Loaded {
            name: program_name(&program),
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
        // The event goes into the engine and comes back in its egress. A
        // copy is kept only where an earlier program edited it, so that a
        // panic here can still pass it on as edited.
        let keep = original.as_ref().map(|_| event.clone());
        let run = |e: &mut Engine| {
            e.push_event(event);
            e.drain_lazy()
        };
        let Some(produced) = program.guarded(counters, "on an event", run) else {
            match keep {
                Some(before) => {
                    event = before;
                    continue;
                }
                // The record passes as the application logged it.
                None => return Verdict::Pass,
            }
        };
        let mut egress = None;
        for item in produced {
            match item {
                Produced::Egress(e) => egress = Some(e),
                // Only batches make runs; one event is a run of one.
                Produced::Unchanged(run) => egress = run.egresses().last(),
                Produced::Output(output) => other(pi, program, output),
            }
        }
        let Some(Egress { input, edits }) = egress else {
            return Verdict::Suppress;
        };
        let before = Rc::try_unwrap(input.into_event()).unwrap_or_else(|shared| (*shared).clone());
        if edits.is_empty() {
            event = before;
            continue;
        }
        let shaped = apply_edits(&before, &edits)
            .unwrap_or_else(|| read_back(&before, edits, program, counters));
        if original.is_none() {
            original = Some(before);
        }
        event = shaped;
    }
    match original {
        Some(original) if original != event => Verdict::Rewrite {
            original: Box::new(original),
            shaped: Box::new(event),
        },
        _ => Verdict::Pass,
    }
}

/// The event with shaping's edits applied, for the edits that name an
/// attribute or a standard field kept as text; `None` for any other, which
/// [`read_back`] applies through the flat JSON form.
fn apply_edits(event: &InputEvent, edits: &[Edit]) -> Option<InputEvent> {
    let mut out = event.clone();
    for edit in edits {
        match edit {
            Edit::RemoveAttr(key) => {
                out.attributes.remove(&**key);
            }
            Edit::ReplaceAttr(key, value) => {
                if let Some(slot) = out.attributes.get_mut(&**key) {
                    *slot = Json::String(value.to_string());
                }
            }
            Edit::RemoveTop(field) => *text_field(&mut out, field)? = None,
            Edit::InsertTop(field, text) => {
                *text_field(&mut out, field)? = Some(text.to_string());
            }
        }
    }
    Some(out)
}

/// A standard field the flat form writes as text.
fn text_field<'e>(event: &'e mut InputEvent, name: &str) -> Option<&'e mut Option<String>> {
    match name {
        "body" => Some(&mut event.body),
        "severity_text" => Some(&mut event.severity_text),
        "trace_id" => Some(&mut event.trace_id),
        "span_id" => Some(&mut event.span_id),
        _ => None,
    }
}

/// The event a program's egress describes, through its flat JSON form (the
/// engine's own definition of the edits).
fn read_back(
    before: &InputEvent,
    edits: Edits,
    program: &Loaded,
    counters: &Counters,
) -> InputEvent {
    let egress = Egress {
        input: Rc::new(before.clone()).into(),
        edits,
    };
    match from_flat_json(egress.to_json()) {
        Ok(shaped) => shaped,
        Err(reason) => {
            counters.problem(format!(
                "program `{}`: its egress could not be read back ({reason}); the record passed on as it came to it",
                program.name
            ));
            Counters::bump(&counters.internal_errors);
            before.clone()
        }
    }
}

impl Loaded {
    /// Runs `step` on the engine; a panic disables the program (`None`),
    /// saying `when` it happened.
    pub(crate) fn guarded<T>(
        &mut self,
        counters: &Counters,
        when: &str,
        step: impl FnOnce(&mut Engine) -> T,
    ) -> Option<T> {
        let engine = &mut self.engine;
        let run = catch_unwind(AssertUnwindSafe(|| step(engine)));
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The direct edits give what the engine's flat JSON form gives.
    #[test]
    fn edits_applied_directly_match_the_flat_json_form() {
        let mut event = InputEvent {
            name: Some("E".into()),
            time: 5_000,
            body: Some("card 4111".into()),
            severity_text: Some("INFO".into()),
            trace_id: Some("ab".repeat(16)),
            ..InputEvent::default()
        };
        for (k, v) in [
            ("email", json!("a@x")),
            ("client", json!("1.2.3.4")),
            ("n", json!(3)),
        ] {
            event.attributes.insert(k.into(), v);
        }
        let edits = vec![
            Edit::ReplaceAttr("email".into(), "e0403f0f760abdd2".into()),
            Edit::RemoveAttr("client".into()),
            Edit::ReplaceAttr("absent".into(), "1".into()),
            Edit::InsertTop("body", "*****4111".into()),
            Edit::RemoveTop("trace_id"),
        ];
        let direct = apply_edits(&event, &edits).expect("all direct");
        let egress = Egress {
            input: event.clone().into(),
            edits: Edits::from_vec(edits),
        };
        assert_eq!(Some(direct), from_flat_json(egress.to_json()).ok());
        assert_eq!(
            apply_edits(&event, &[Edit::InsertTop("severity", "h:9".into())]),
            None
        );
    }
}
