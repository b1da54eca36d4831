//! The dtc JIT: compiles a verified IR program to native code with
//! cranelift once, at load, and runs it on `dtc-engine`'s runtime.
//!
//! The runtime (dispatch, windows, aggregates, machine instances, budgets,
//! outputs) is `dtc_engine::Engine`, shared with the interpreter; the JIT
//! plugs in through the executor seam (`dtc_engine::exec::Executor`): every
//! predicate, projection, key, aggregate argument, guard, body and machine
//! transition selector is a native function that reads event fields at
//! fixed offsets of a compact slot row (`dtc_engine::slots`). Queries whose
//! leading `where` stages read only the event get a compiled loop that
//! filters a whole batch into a selection vector
//! ([`JitEngine::push_events`], [`JitEngine::push_lines`]).
//!
//! The interpreter is the definition of the semantics: for every program
//! and input, [`JitEngine`] produces byte for byte what
//! `dtc_engine::Engine` produces; [`differential`] checks it.
//!
//! ```no_run
//! # fn demo(program: dtc_ir::Program, input: &str) -> Result<(), dtc_jit::CompileError> {
//! let mut engine = dtc_jit::JitEngine::new(program, dtc_engine::Options::default())?;
//! eprint!("{}", engine.report());
//! for line in input.lines() {
//!     engine.push_line(line);
//! }
//! engine.finish(true);
//! for out in engine.drain() {
//!     println!("{}", out.to_json());
//! }
//! # Ok(()) }
//! ```

mod abi;
mod compile;
mod exec;
mod jit;

use dtc_engine::event::{Input, InputEvent};
use dtc_engine::{Batch, Counters, Engine, Options, Output, Produced};
use dtc_ir::Program;

pub use compile::Counts;
pub use jit::{CompileError, Report};

/// A program compiled to native code, running on the shared runtime. The
/// same methods as `dtc_engine::Engine`.
pub struct JitEngine {
    engine: Engine,
    report: Report,
}

impl std::fmt::Debug for JitEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitEngine")
            .field("program", &self.engine.program().name)
            .finish_non_exhaustive()
    }
}

impl JitEngine {
    /// Compiles `program` (already verified by `dtc_ir::verify`). An error
    /// means the program cannot run under the JIT; it is never run some
    /// other way behind the caller's back.
    pub fn new(program: Program, options: Options) -> Result<JitEngine, CompileError> {
        let compiled = jit::compile(&program)?;
        let report = compiled.report.clone();
        let executor = exec::JitExecutor { compiled };
        Ok(JitEngine {
            engine: Engine::with_executor(program, options, Box::new(executor)),
            report,
        })
    }

    /// What was compiled natively, through helpers, or left to the
    /// interpreter, and how long compiling took.
    pub fn report(&self) -> &Report {
        &self.report
    }

    pub fn push_line(&mut self, line: &str) {
        self.engine.push_line(line)
    }

    /// Lines in a batch: each query's event-only `where` stages run as one
    /// compiled loop over the batch. Outputs as if pushed one by one.
    pub fn push_lines<'l>(&mut self, lines: impl IntoIterator<Item = &'l str>) {
        self.engine.push_lines(lines)
    }

    pub fn push_event(&mut self, e: InputEvent) {
        self.engine.push_event(e)
    }

    /// One event its producer reads in place (`Engine::push_read`).
    pub fn push_read<R: dtc_engine::event::ReadInPlace + 'static>(&mut self, source: R) {
        self.engine.push_read(source)
    }

    /// `Engine::only_redactions`.
    pub fn only_redactions(&self) -> bool {
        self.engine.only_redactions()
    }

    /// One event read in place, borrowed, run where it needs no record
    /// (`Engine::edits_read`): its edits, or `Push` to push it.
    pub fn edits_read<R: dtc_engine::event::ReadInPlace>(
        &mut self,
        source: &R,
    ) -> dtc_engine::runtime::ReadEgress {
        self.engine.edits_read(source)
    }

    /// One event whose producer finds its layout's fields itself
    /// (`Engine::edits_found`): whether it was run, its edits appended
    /// to `edits`; if not, push it.
    pub fn edits_found<'a>(
        &mut self,
        name: Option<&[u8]>,
        now: i64,
        find: impl FnOnce(
            &dtc_engine::event::KeyIndex,
            &[bool],
            &mut [Option<dtc_engine::event::Scalar<'a>>],
        ) -> Option<()>,
        edits: &mut dtc_engine::Edits,
    ) -> bool {
        self.engine.edits_found(name, now, find, edits)
    }

    /// The layouts whose events a producer may run itself
    /// (`Engine::removals`).
    pub fn removals(&self) -> std::rc::Rc<[dtc_engine::runtime::Removals]> {
        self.engine.removals()
    }

    /// An event run by its producer by [`JitEngine::removals`]
    /// (`Engine::removed_found`).
    pub fn removed_found(&mut self, now: i64) {
        self.engine.removed_found(now)
    }

    /// [`JitEngine::edits_found`] with the edits given by declared field
    /// (`Engine::redactions_found`).
    pub fn redactions_found<'a>(
        &mut self,
        name: Option<&[u8]>,
        now: i64,
        find: impl FnOnce(
            &dtc_engine::event::KeyIndex,
            &[bool],
            &mut [Option<dtc_engine::event::Scalar<'a>>],
        ) -> Option<()>,
        redact: impl FnMut(u32, Option<dtc_engine::output::Text>),
    ) -> bool {
        self.engine.redactions_found(name, now, find, redact)
    }

    /// Events their producer reads in place, in a batch
    /// (`Engine::push_reads`): each query's event-only `where` stages run
    /// as one compiled loop over the batch, as with [`JitEngine::push_lines`].
    pub fn push_reads<R: dtc_engine::event::ReadInPlace + 'static>(
        &mut self,
        sources: impl IntoIterator<Item = R>,
    ) {
        self.engine.push_reads(sources)
    }

    /// Events in a batch, as [`JitEngine::push_lines`].
    pub fn push_events(&mut self, events: impl IntoIterator<Item = InputEvent>) {
        self.engine.push_events(events)
    }

    /// Events decoded ahead into records with their slot rows
    /// (`dtc_engine::Engine::decode_batch`), for [`JitEngine::push_batch`].
    pub fn decode_batch(&self, events: impl IntoIterator<Item = InputEvent>) -> Batch {
        self.engine.decode_batch(events)
    }

    /// A batch decoded ahead, as [`JitEngine::push_events`].
    pub fn push_batch(&mut self, batch: &Batch) {
        self.engine.push_batch(batch)
    }

    pub fn finish(&mut self, until_end: bool) {
        self.engine.finish(until_end)
    }

    pub fn drain(&mut self) -> Vec<Output> {
        self.engine.drain()
    }

    /// What was produced, egress left lazy (`dtc_engine::Engine::drain_lazy`).
    pub fn drain_lazy(&mut self) -> Vec<Produced> {
        self.engine.drain_lazy()
    }

    /// `dtc_engine::Engine::drain_lazy_into`.
    pub fn drain_lazy_into(&mut self, into: &mut Vec<Produced>) {
        self.engine.drain_lazy_into(into)
    }

    pub fn counters(&self) -> &Counters {
        &self.engine.counters
    }

    /// The runtime underneath.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The runtime underneath, still running the compiled code: for
    /// callers that hold a `dtc_engine::Engine` whatever the engine.
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// `dtc_engine::Engine::json_lines` under the JIT: what `dtc run
    /// --format json --until-end` prints.
    pub fn json_lines(
        program: Program,
        options: Options,
        input: &str,
    ) -> Result<String, CompileError> {
        Ok(JitEngine::new(program, options)?
            .engine
            .run_json_lines(input))
    }
}

/// How the JIT's output differs from the interpreter's.
#[derive(Debug, Clone, PartialEq)]
pub enum Diff {
    /// The JIT refused the program.
    Compile(CompileError),
    /// First differing output line (1-based) of a run mode: `lines` (one
    /// line at a time) or `batches` (lines in batches).
    Output {
        mode: &'static str,
        line: usize,
        interp: String,
        jit: String,
    },
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diff::Compile(e) => write!(f, "{e}"),
            Diff::Output {
                mode,
                line,
                interp,
                jit,
            } => write!(
                f,
                "the JIT differs from the interpreter ({mode}) at output line {line}:\n  interp: {interp}\n  jit:    {jit}"
            ),
        }
    }
}

/// Runs `program` over `input` (JSON lines) with the interpreter (on the
/// runtime's general path, `Engine::general`) and with the JIT, line by
/// line and in batches of `batch` lines, all windows flushed at the end,
/// and compares the outputs (egress, logs, metrics,
/// actions, faults, counters). For differential tests and fuzzing.
pub fn differential(program: &Program, options: &Options, input: &str) -> Result<(), Diff> {
    // The reference: the interpreter on the runtime's general path, so the
    // runtime's fast lanes (on under the JIT) are checked too.
    let expected = Engine::new(program.clone(), options.clone())
        .general()
        .run_json_lines(input);
    let by_line =
        JitEngine::json_lines(program.clone(), options.clone(), input).map_err(Diff::Compile)?;
    compare("lines", &expected, &by_line)?;
    for batch in [7, 256] {
        let mut jit = JitEngine::new(program.clone(), options.clone()).map_err(Diff::Compile)?;
        let mut text = String::new();
        let lines: Vec<&str> = input.lines().collect();
        for chunk in lines.chunks(batch) {
            jit.push_lines(chunk.iter().copied());
            write_drained(&mut jit, &mut text);
        }
        write_finish(jit, &mut text);
        compare("batches", &expected, &text)?;
    }
    for batch in [1, 7, 256] {
        compare(
            "read in place",
            &expected,
            &read_in_place(program, options, input, batch)?,
        )?;
    }
    compare(
        "decoded batches",
        &without_lines(&expected),
        &without_lines(&decoded_batches(program, options, input)?),
    )
}

/// The run of [`differential`] with each line that is one event read in
/// place by its producer (`push_read` of a `FlatLine`, as the agent feeds
/// the OTLP records it reads; with `batch` above 1, consecutive such lines
/// in batches of up to `batch` through `push_reads`), each OTLP/JSON
/// export line by itself through `push_lines` (its records read in place),
/// every other line through `push_line`.
fn read_in_place(
    program: &Program,
    options: &Options,
    input: &str,
    batch: usize,
) -> Result<String, Diff> {
    use dtc_engine::event::FlatLine;
    let mut jit = JitEngine::new(program.clone(), options.clone()).map_err(Diff::Compile)?;
    let mut text = String::new();
    let mut reads: Vec<FlatLine> = Vec::new();
    let flush = |jit: &mut JitEngine, reads: &mut Vec<FlatLine>, text: &mut String| {
        if !reads.is_empty() {
            jit.push_reads(std::mem::take(reads));
            write_drained(jit, text);
        }
    };
    for line in input.lines() {
        if let [Input::Event(_)] = dtc_engine::event::decode_line(line).as_slice() {
            jit.engine.counters.lines += 1;
            if batch > 1 {
                reads.push(FlatLine(line.to_string()));
                if reads.len() == batch {
                    flush(&mut jit, &mut reads, &mut text);
                }
                continue;
            }
            jit.push_read(FlatLine(line.to_string()));
        } else {
            // The events before it first: outputs keep the input's order.
            flush(&mut jit, &mut reads, &mut text);
            if line.trim_start().starts_with("{\"resourceLogs\"") {
                // An OTLP/JSON export: its records read in place by the lane.
                jit.push_lines([line]);
            } else {
                jit.push_line(line);
            }
        }
        write_drained(&mut jit, &mut text);
    }
    flush(&mut jit, &mut reads, &mut text);
    write_finish(jit, &mut text);
    Ok(text)
}

/// Appends the outputs so far to `text`, a JSON line each.
fn write_drained(jit: &mut JitEngine, text: &mut String) {
    for o in jit.drain() {
        text.push_str(&o.to_json().to_string());
        text.push('\n');
    }
}

/// Ends the run with every window flushed, and appends its last outputs
/// and its counters to `text`, as `dtc run --format json --until-end`
/// writes them.
fn write_finish(mut jit: JitEngine, text: &mut String) {
    jit.finish(true);
    write_drained(&mut jit, text);
    text.push_str(&jit.counters().to_json().to_string());
    text.push('\n');
}

/// The run of [`differential`] over batches decoded ahead
/// (`decode_batch`, `push_batch`) with egress drained lazily and written
/// afterwards, as the kernel benchmark runs; a line with a malformed part ends the
/// batch before it and goes through `push_line` whole.
fn decoded_batches(program: &Program, options: &Options, input: &str) -> Result<String, Diff> {
    let mut jit = JitEngine::new(program.clone(), options.clone()).map_err(Diff::Compile)?;
    let mut text = String::new();
    let write = |jit: &mut JitEngine, text: &mut String| {
        let mut outputs = Vec::new();
        for o in jit.drain_lazy() {
            o.push_outputs(&mut outputs);
        }
        for o in outputs {
            text.push_str(&o.to_json().to_string());
            text.push('\n');
        }
    };
    let lines: Vec<&str> = input.lines().collect();
    for chunk in lines.chunks(64) {
        let mut events = Vec::new();
        for line in chunk {
            let inputs = dtc_engine::event::decode_line(line);
            if inputs.iter().any(|i| !matches!(i, Input::Event(_))) {
                let batch = jit.decode_batch(std::mem::take(&mut events));
                jit.push_batch(&batch);
                jit.push_line(line);
                continue;
            }
            events.extend(inputs.into_iter().filter_map(|i| match i {
                Input::Event(e) => Some(e),
                Input::Malformed { .. } => None,
            }));
        }
        let batch = jit.decode_batch(events);
        jit.push_batch(&batch);
        write(&mut jit, &mut text);
    }
    jit.finish(true);
    write(&mut jit, &mut text);
    text.push_str(&jit.counters().to_json().to_string());
    text.push('\n');
    Ok(text)
}

/// The output with the summary's line count left out: a batch of decoded
/// events has no lines to count.
fn without_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(mut o))
                if o.get("kind").is_some_and(|k| k == "summary") =>
            {
                o.remove("lines");
                out.push_str(&serde_json::Value::Object(o).to_string());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn compare(mode: &'static str, expected: &str, actual: &str) -> Result<(), Diff> {
    if expected == actual {
        return Ok(());
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    Err(Diff::Output {
        mode,
        line: at + 1,
        interp: e.get(at).unwrap_or(&"(end of output)").to_string(),
        jit: a.get(at).unwrap_or(&"(end of output)").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `src` checked (without errors) and lowered to a verified program.
    fn program(file: &str, src: &str) -> Program {
        let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
        let out = session.check_source(file, src);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        out.lower().expect("checks").expect("verifies")
    }

    /// [`program`] whose every query the JIT compiles a batch filter for.
    fn program_with_batch_filters(file: &str, src: &str) -> Program {
        let program = program(file, src);
        let executor = exec::JitExecutor {
            compiled: jit::compile(&program).expect("compiles"),
        };
        let queries = program.queries.len() as u32;
        assert!(queries > 0);
        assert!((0..queries).all(|q| dtc_engine::exec::Executor::has_prefilter(&executor, q)));
        program
    }

    /// A machine's compiled selector and bodies over strings and numbers
    /// in its state: plain assignments (the helper's direct store) of
    /// state slots and variables, a string read back and assigned to
    /// itself (held while the body runs), `+=` (the interpreter's store),
    /// faults in a guard and in a body, timeouts, evictions.
    #[test]
    fn machine_selectors_and_bodies_match_the_interpreter() {
        let src = "event Open { id: int, who: string }\n\
                   event Step { id: int, n: int }\n\
                   event Close { id: int }\n\
                   machine s per event.id max 3 {\n\
                    var last: string = \"\"\n\
                    var steps: int = 0\n\
                    state Closed\n\
                    state Opened { who: string, n: int = 0 }\n\
                    on Open in Closed -> Opened {\n who = event.who\n last = event.who\n }\n\
                    on Step in Opened when n / event.n >= 0 -> Opened {\n\
                      n = n + event.n\n steps += 1\n who = who\n\
                      emit log Stepped { who: who, last: last, n: n }\n }\n\
                    on Close in Opened -> Closed { emit log Shut { who: who, steps: steps } }\n\
                    after 10s in Opened -> Closed { emit log Expired { who: who } }\n\
                   }";
        let program = program("machine.dt", src);
        let executor = exec::JitExecutor {
            compiled: jit::compile(&program).expect("compiles"),
        };
        assert!(executor.compiled.selects[0].iter().flatten().count() == 3);
        let mut input = String::new();
        let mut t = 1_795_341_600_000_000_000i64;
        for k in 0..200i64 {
            t += if k % 23 == 22 { 15 } else { 1 } * 1_000_000_000;
            let id = if k % 11 == 10 { 100 + k } else { k / 2 % 3 };
            let line = match k % 4 {
                0 => format!(
                    r#"{{"event":"Open","time":{t},"id":{id},"who":"w{}"}}"#,
                    k % 5
                ),
                1 | 2 => format!(
                    r#"{{"event":"Step","time":{t},"id":{id},"n":{}}}"#,
                    [1, 0, 7, i64::MAX / 2][(k / 4 % 4) as usize]
                ),
                _ => format!(r#"{{"event":"Close","time":{t},"id":{id}}}"#),
            };
            input.push_str(&line);
            input.push('\n');
        }
        let expected = Engine::new(program.clone(), Options::default())
            .general()
            .run_json_lines(&input);
        // Each case happened (and no count of faults or evictions is zero).
        for (what, present) in [
            ("Stepped", true),
            ("Shut", true),
            ("Expired", true),
            (r#""faults":0"#, false),
            (r#""evictions":0"#, false),
        ] {
            assert_eq!(expected.contains(what), present, "{what}: {expected}");
        }
        if let Err(d) = differential(&program, &Options::default(), &input) {
            panic!("{d}");
        }
    }

    /// Batch filters of queries over two layouts, and one layout read by
    /// two queries (one reading a string and standard fields too, so each
    /// filter of R runs over rows of more slots than it reads), over
    /// batches that mix the layouts with unknown events: the verdicts land
    /// at the right events.
    #[test]
    fn batch_filters_over_mixed_layouts_match_the_interpreter() {
        let src = "event R { status: int, path: string }\n\
                   event S { ms: int }\n\
                   query a = R | where status >= 500 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = S | where ms > 100 | summarize n = count(), m = max(ms) every 10s | emit metric \"b\"\n\
                   query c = R | where status == 200 || path == \"/p1\" | where time > observed_time - 1s | summarize n = count() by path every 10s | emit metric \"c\"";
        let program = program_with_batch_filters("mixed.dt", src);
        let mut input = String::new();
        for k in 0..300i64 {
            let t = 1_795_341_600_000_000_000 + k * 170_000_000;
            let line = match k % 5 {
                0 | 3 => format!(
                    r#"{{"event":"R","time":{t},"status":{},"path":"/p{}"}}"#,
                    [200, 500, 404, 503][(k % 4) as usize],
                    k % 3
                ),
                1 | 4 => format!(r#"{{"event":"S","time":{t},"ms":{}}}"#, (k * 37) % 250),
                _ => format!(r#"{{"event":"Other","time":{t}}}"#),
            };
            input.push_str(&line);
            input.push('\n');
        }
        if let Err(d) = differential(&program, &Options::default(), &input) {
            panic!("{d:?}");
        }
    }

    /// A batch filter takes four rows at a time, then the rest one by one:
    /// a row whose predicate faults (a division by zero) or reads an absent
    /// value rejects itself only, wherever it falls among the four, and
    /// batches of every length leave a different tail.
    #[test]
    fn unrolled_batch_filters_reject_only_the_rows_that_fail() {
        let src = "event R { v: int, w: int? }\n\
                   query a = R | where 1000 / v > 150 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = R | where (w ?? 0) > 3 | where v != 2 | summarize n = count() every 10s | emit metric \"b\"";
        let program = program_with_batch_filters("unrolled.dt", src);
        let mut input = String::new();
        for k in 0..500i64 {
            let t = 1_795_341_600_000_000_000 + k * 70_000_000;
            // `v` is 0 at positions 0..3 of a group of four in turn.
            let v = if k % 9 == k / 9 % 4 { 0 } else { k % 7 };
            let w = match k % 5 {
                0 => String::new(),
                _ => format!(r#","w":{}"#, k % 6),
            };
            input.push_str(&format!("{{\"event\":\"R\",\"time\":{t},\"v\":{v}{w}}}\n"));
        }
        for lines in [
            input.lines().take(499),
            input.lines().take(498),
            input.lines().take(497),
        ] {
            let input: String = lines.map(|l| format!("{l}\n")).collect();
            if let Err(d) = differential(&program, &Options::default(), &input) {
                panic!("{d:?}");
            }
        }
    }

    /// Stretches of events settled in bulk (tallied counts, the engine's
    /// `run_stretch`) over the batch filters' verdicts: one query with a
    /// `where` on R, a count with and one without on Q, among a machine's
    /// timeouts, unknown events, schema mismatches, malformed lines, late
    /// events and windows closing mid-batch, with and without lateness.
    #[test]
    fn stretches_of_tallied_counts_match_the_interpreter() {
        let src = "event R { status: int }\nevent Q { v: int }\nevent S { k: int }\n\
                   query a = R | where status >= 500 | summarize n = count() every 10s | emit metric \"a\"\n\
                   query b = Q | where v > 1 | summarize n = count() every 4s | emit metric \"b\"\n\
                   query c = Q | summarize n = count() every 6s | emit metric \"c\"\n\
                   machine m per event.k max 4 {\n state Idle\n state Busy\n\
                   on S in Idle -> Busy\n on S in Busy -> Idle\n after 3s in Busy -> Idle { emit log Stuck { k: 1 } }\n}";
        let program = program("stretch.dt", src);
        let mut input = String::new();
        for k in 0..600i64 {
            let t = 1_795_341_600_000_000_000 + k * 200_000_000
                - if k % 37 == 5 { 9_000_000_000 } else { 0 };
            let mut push = |line: String| {
                input.push_str(&line);
                input.push('\n');
            };
            push(format!(
                r#"{{"event":"R","time":{t},"status":{}}}"#,
                [200, 500, 503][k as usize % 3]
            ));
            if k % 3 != 0 {
                push(format!(r#"{{"event":"Q","time":{t},"v":{}}}"#, k % 4));
            }
            others(k, t, &mut push);
            if k % 61 == 11 {
                push("{not json".to_string());
            }
        }
        with_and_without_lateness(&program, &input, 2_000_000_000);
    }

    /// The lines between the lane tests' events, the `k`th at time `t`: an
    /// `S` (the machine's event) when `k` is 2 modulo 31, an unknown `T`
    /// at 3 modulo 7, an `R` that does not match its schema at 7 modulo 53.
    fn others(k: i64, t: i64, push: &mut impl FnMut(String)) {
        if k % 31 == 2 {
            push(format!(r#"{{"event":"S","time":{t},"k":{}}}"#, k % 4));
        }
        if k % 7 == 3 {
            push(format!(r#"{{"event":"T","time":{t},"x":1}}"#));
        }
        if k % 53 == 7 {
            push(format!(r#"{{"event":"R","time":{t},"status":"high"}}"#));
        }
    }

    /// Events read in place in batches (`push_reads`, run by
    /// [`differential`] in batches of 7 and 256) beside one by one and the
    /// general path: a where + count settled in bulk (its where dropping
    /// most events), a grouped count, a machine with a timeout, a layout
    /// only redactions touch, one of a `dyn` field (always decoded) and
    /// unknown events, with fields missing, null, of the wrong type,
    /// escaped and non-ASCII, late events, windows closing mid-batch.
    #[test]
    fn reads_in_batches_match_the_interpreter() {
        let src = "event R { status: int, path: string }\n\
                   event G { path: string?, ok: bool }\n\
                   event Start { file: string }\n\
                   event End { file: string, ok: bool }\n\
                   event Login { user: string, email: string, ip: string? }\n\
                   event D { v: dyn }\n\
                   redact Login.user with hash\n\
                   redact Login.email with mask\n\
                   redact Login.ip with drop\n\
                   query a = R | where status >= 500 | summarize n = count() every 5s | emit metric \"a\"\n\
                   query g = G | summarize n = count() by path max 3 every 5s | emit metric \"g\"\n\
                   query d = D | summarize n = count() every 5s | emit metric \"d\"\n\
                   machine files per event.file max 4 {\n state Idle\n state Busy { since: timestamp }\n\
                   on Start in Idle -> Busy { since = event.time }\n\
                   on End in Busy when event.ok -> Idle { emit log Done { file: event.file, took: event.time - since } }\n\
                   after 2s in Busy -> Idle { emit log Stuck { file: \"?\" } }\n}";
        let program = program("reads.dt", src);
        let mut input = String::new();
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // High bits: the low ones of consecutive draws are related.
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
        };
        for k in 0..3000i64 {
            let t = 1_795_341_600_000_000_000 + k * 40_000_000 - rnd(8) as i64 * 300_000_000;
            let f = format!("/f{}", rnd(6));
            let line = match rnd(20) {
                0..=7 => format!(
                    r#"{{"event":"R","time":{t},"status":{},"path":"/p{}"}}"#,
                    [200, 200, 404, 500, 503][rnd(5) as usize],
                    rnd(3)
                ),
                8 => format!(
                    r#"{{"event":"R","time":{t},"status":{},"path":"/p"}}"#,
                    ["\"500\"", "null", "5.5", "true"][rnd(4) as usize]
                ),
                9 => format!(r#"{{"event":"R","time":{t},"path":"/é\u0062"}}"#),
                10 | 11 => format!(
                    r#"{{"event":"G","time":{t},{}}}"#,
                    [
                        r#""path":"/a","ok":true"#,
                        r#""path":"/ü","ok":false"#,
                        r#""path":null,"ok":true"#,
                        r#""ok":true"#,
                        r#""path":"/\u0061","ok":true"#,
                        r#""path":7,"ok":true"#,
                        r#""path":"/c","ok":"yes""#,
                        r#""path":"/d","ok":true"#,
                    ][rnd(8) as usize]
                ),
                12 => format!(r#"{{"event":"Start","time":{t},"file":"{f}"}}"#),
                13 => format!(
                    r#"{{"event":"End","time":{t},"file":"{f}","ok":{}}}"#,
                    ["true", "false", "null", "\"yes\""][rnd(4) as usize]
                ),
                14 | 15 => format!(
                    r#"{{"event":"Login","time":{t},"user":"u{k}","email":"{}","ip":{}}}"#,
                    ["u@x.org", "ünï@cödé.example", "a\"b@c"][rnd(3) as usize],
                    ["\"10.0.0.1\"", "null", "3"][rnd(3) as usize]
                ),
                16 => format!(r#"{{"event":"Login","time":{t},"user":null,"email":"e"}}"#),
                17 => format!(r#"{{"event":"D","time":{t},"v":{{"x":[1,{k}]}}}}"#),
                18 => format!(r#"{{"event":"Other","time":{t},"x":1}}"#),
                _ => "{not json".to_string(),
            };
            input.push_str(&line);
            input.push('\n');
        }
        let expected = Engine::new(program.clone(), Options::default())
            .general()
            .run_json_lines(&input);
        // Each case happened (and no count of them is zero).
        for (what, present) in [
            ("Stuck", true),
            ("Done", true),
            ("Login", true),
            (r#""malformed":0"#, false),
            (r#""schema_mismatches":0"#, false),
            (r#""unhandled":0"#, false),
            (r#""late_events":0"#, false),
        ] {
            assert_eq!(expected.contains(what), present, "{what}: {expected}");
        }
        with_and_without_lateness(&program, &input, 1_000_000_000);
    }

    /// [`differential`] with the default options and with `lateness_ns`.
    fn with_and_without_lateness(program: &Program, input: &str, lateness_ns: i64) {
        let late = Options {
            lateness_ns,
            ..Options::default()
        };
        for options in [Options::default(), late] {
            if let Err(d) = differential(program, &options, input) {
                panic!("{d:?}");
            }
        }
    }

    /// Long runs of one filtered layout: the stretch takes whole chunks of
    /// events where every one is of the layout, asked and inside the
    /// window, and goes event by event where a window ends, an event is
    /// late or unknown, or a record has no verdict.
    #[test]
    fn long_stretches_take_whole_chunks_only_where_they_hold() {
        let src = "event R { status: int }\n\
                   query a = R | where status >= 500 | summarize n = count() every 5s | emit metric \"a\"";
        let program = program("chunks.dt", src);
        let mut input = String::new();
        for k in 0..3000i64 {
            let t = 1_795_341_600_000_000_000 + k * 50_000_000
                - if k % 450 == 300 { 9_000_000_000 } else { 0 };
            input.push_str(&format!(
                "{{\"event\":\"R\",\"time\":{t},\"status\":{}}}\n",
                [200, 500, 503, 404, 502][k as usize % 5]
            ));
            match k % 1000 {
                170 => input.push_str(&format!("{{\"event\":\"T\",\"time\":{t}}}\n")),
                420 => input.push_str(&format!(
                    "{{\"event\":\"R\",\"time\":{t},\"status\":\"high\"}}\n"
                )),
                _ => {}
            }
        }
        with_and_without_lateness(&program, &input, 2_000_000_000);
    }

    /// Grouped tallies (the runtime's checked-out groups and their
    /// stretches) with the JIT's batch filter: a filtered query by a
    /// string key (the verdicts decide what counts in a stretch), one by
    /// two keys, another layout by `thread_id`, groups past `max`, absent
    /// keys, events of an older window interleaved, late events, unknown
    /// events, schema mismatches, a machine's timeouts, with and without
    /// lateness.
    #[test]
    fn grouped_tallies_match_the_interpreter() {
        let src = "event R { status: int, path: string? }\nevent Q { v: int }\nevent S { k: int }\n\
                   query a = R | where status >= 500 | summarize n = count() by path max 8 every 10s | emit metric \"a\"\n\
                   query b = Q | summarize n = count(), s = sum(v) by thread_id, v max 30 every 4s | emit metric \"b\"\n\
                   machine m per event.k max 4 {\n state Idle\n state Busy\n\
                   on S in Idle -> Busy\n on S in Busy -> Idle\n after 3s in Busy -> Idle { emit log Stuck { k: 1 } }\n}";
        let program = program("grouped.dt", src);
        let mut input = String::new();
        for k in 0..900i64 {
            let t = 1_795_341_600_000_000_000 + k * 100_000_000
                - match k % 29 {
                    5 => 3_000_000_000,
                    6 => 40_000_000_000,
                    _ => 0,
                };
            let mut push = |line: String| {
                input.push_str(&line);
                input.push('\n');
            };
            let path = match k % 13 {
                0 => String::new(),
                1 => r#","path":null"#.to_string(),
                _ => format!(r#","path":"/p{}""#, (k * 7) % if k < 450 { 6 } else { 20 }),
            };
            push(format!(
                r#"{{"event":"R","time":{t},"status":{}{path}}}"#,
                [200, 500, 503][k as usize % 3]
            ));
            if k % 3 != 0 {
                push(format!(
                    r#"{{"event":"Q","time":{t},"v":{},"thread.id":{}}}"#,
                    k % 4,
                    k % 9
                ));
            }
            others(k, t, &mut push);
        }
        with_and_without_lateness(&program, &input, 5_000_000_000);
    }
}
