//! `dtc run`: check and lower a program, then run it over events from a
//! file or standard input with the reference interpreter or the JIT
//! (`--engine jit`, compiled once at load), printing what
//! egresses, the derived logs and metrics, and the actions, as text or JSON
//! lines.
//!
//! An artifact given with `--trusted-key` runs only if reviewers holding
//! those keys approved it as often as its risk tier needs under the policy
//! (`[approvals]`; without `--policy`, the defaults of an empty policy).

use std::io::{BufRead, BufReader};
use std::path::Path;

use dtc_engine::{Engine as Runtime, Options};

use crate::check::policy_session;
use crate::{Engine, Format, Io, Outcome, RunArgs};

pub(crate) fn run(args: &RunArgs, io: &mut Io<'_>) -> Outcome {
    if args.jit_report && args.engine != Engine::Jit {
        let _ = writeln!(
            io.stderr,
            "error: --jit-report describes the JIT's compilation; add `--engine jit`"
        );
        return Outcome::UsageOrIo;
    }
    let session = match policy_session(args.policy.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            let _ = writeln!(io.stderr, "error: {msg}");
            return Outcome::UsageOrIo;
        }
    };
    if args.program.extension().is_some_and(|e| e == "dtx") {
        // An artifact is never trusted: `load` verifies it first.
        let artifact = match crate::artifact::load(&args.program) {
            Ok(a) => a,
            Err(e) => {
                let _ = writeln!(io.stderr, "error: {e}");
                return Outcome::Failed;
            }
        };
        if !args.trusted_keys.is_empty()
            && let Err(outcome) = check_approvals(&artifact, args, io)
        {
            return outcome;
        }
        return execute(artifact.program, args, io);
    }
    if !args.trusted_keys.is_empty() {
        let _ = writeln!(
            io.stderr,
            "error: --trusted-key checks the signatures of an artifact, and `{}` is a source file; compile it (`dtc compile`), sign it (`dtc sign`) and run the .dtx",
            args.program.display()
        );
        return Outcome::UsageOrIo;
    }
    let out = match session.check_path(&args.program) {
        Ok(out) => out,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    let color = args.color.enabled(io.color_auto);
    if out.has_errors() {
        let text = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, color);
        let _ = io.stderr.write_all(text.as_bytes());
        let _ = writeln!(io.stderr, "error: the program has errors; nothing was run");
        return Outcome::Failed;
    }
    let program = match out.lower() {
        Some(Ok(p)) => p,
        Some(Err(errors)) => {
            let _ = writeln!(
                io.stderr,
                "error: internal compiler error: the IR of this program does not verify:"
            );
            for e in errors {
                let _ = writeln!(io.stderr, "  {e}");
            }
            return Outcome::Failed;
        }
        None => return Outcome::Failed,
    };
    execute(program, args, io)
}

/// Refuses an artifact with fewer approvals by trusted keys than its tier
/// needs under the policy.
fn check_approvals(
    artifact: &dtc_artifact::Artifact,
    args: &RunArgs,
    io: &mut Io<'_>,
) -> Result<(), Outcome> {
    let trusted = crate::sign::trusted_keys(&args.trusted_keys).map_err(|e| {
        let _ = writeln!(io.stderr, "error: {e}");
        Outcome::UsageOrIo
    })?;
    let policy = read_policy(args.policy.as_deref(), args, io)?;
    let tier = dtc_stdlib::risk::Tier::parse_key(&artifact.metadata.tier).ok_or_else(|| {
        let _ = writeln!(
            io.stderr,
            "error: refusing `{}`: its risk tier `{}` is not one of none, limited, high",
            args.program.display(),
            artifact.metadata.tier
        );
        Outcome::Failed
    })?;
    let required = policy.required_approvals(tier);
    let report = dtc_artifact::verify_signatures(artifact, &trusted);
    let under = match (&args.policy, &policy.ring) {
        (Some(p), Some(ring)) => format!("policy `{}` (ring {ring})", p.display()),
        (Some(p), None) => format!("policy `{}`", p.display()),
        (None, _) => "the default policy (give one with --policy)".to_string(),
    };
    if report.trusted_valid < required {
        let _ = writeln!(
            io.stderr,
            "error: refusing `{}`: its tier ({tier}) needs {required} reviewer approval{} under {under}, and it has {} ({}); sign it with `dtc sign --key REVIEWER.key`",
            args.program.display(),
            if required == 1 { "" } else { "s" },
            report.trusted_valid,
            report.summary()
        );
        return Err(Outcome::Failed);
    }
    let _ = writeln!(
        io.stderr,
        "approved: tier {tier} needs {required} under {under}; {}",
        report.summary()
    );
    Ok(())
}

/// The policy file, parsed (an empty policy's defaults when none is given),
/// with its errors rendered as diagnostics.
fn read_policy(
    path: Option<&Path>,
    args: &RunArgs,
    io: &mut Io<'_>,
) -> Result<dtc_analysis::policy::Policy, Outcome> {
    let (name, text) = match path {
        None => ("<default policy>".to_string(), String::new()),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                let _ = writeln!(
                    io.stderr,
                    "error: cannot read policy `{}`: {e}",
                    p.display()
                );
                return Err(Outcome::UsageOrIo);
            }
        },
    };
    let mut sources = dtc_diagnostics::SourceMap::new();
    let id = sources.add(name, text.clone());
    dtc_analysis::policy::parse(id, &text).map_err(|diagnostics| {
        let color = args.color.enabled(io.color_auto);
        let text = dtc_diagnostics::render_human(&diagnostics, &sources, color);
        let _ = io.stderr.write_all(text.as_bytes());
        Outcome::Failed
    })
}

fn execute(program: dtc_ir::Program, args: &RunArgs, io: &mut Io<'_>) -> Outcome {
    let mut options = Options {
        seed: args.seed,
        ..Options::default()
    };
    if let Some(l) = args.lateness {
        options.lateness_ns = l;
    }
    let mut engine = match new_engine(program, options, args.engine) {
        Ok((engine, report)) => {
            if args.jit_report
                && let Some(r) = report
            {
                let _ = write!(io.stderr, "{r}");
            }
            engine
        }
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            let _ = writeln!(
                io.stderr,
                "help: run it with the interpreter (`--engine interp`), and report the program"
            );
            return Outcome::Failed;
        }
    };
    // A file is run in batches of lines (the engine's lanes work a batch at
    // a time, with outputs exactly those of one line at a time); standard
    // input line by line, so each line's outputs come as soon as it does.
    let (reader, batch): (Box<dyn BufRead + '_>, usize) = match &args.events {
        None => (Box::new(BufReader::new(&mut *io.stdin)), 1),
        Some(p) if p.as_os_str() == "-" => (Box::new(BufReader::new(&mut *io.stdin)), 1),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => (Box::new(BufReader::new(f)), FILE_BATCH),
            Err(e) => {
                let _ = writeln!(
                    io.stderr,
                    "error: cannot read events `{}`: {e}",
                    p.display()
                );
                return Outcome::UsageOrIo;
            }
        },
    };
    let mut lines: Vec<String> = Vec::with_capacity(batch);
    let run = |engine: &mut Runtime, lines: &mut Vec<String>, stdout: &mut dyn std::io::Write| {
        engine.push_lines(lines.iter().map(String::as_str));
        lines.clear();
        flush(&mut engine.drain(), args.format, stdout);
    };
    for line in reader.split(b'\n') {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(io.stderr, "error: reading events: {e}");
                return Outcome::UsageOrIo;
            }
        };
        // Bytes that are not UTF-8 are a malformed line like any other.
        lines.push(
            String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string(),
        );
        if lines.len() >= batch {
            run(&mut engine, &mut lines, &mut *io.stdout);
        }
    }
    run(&mut engine, &mut lines, &mut *io.stdout);
    engine.finish(args.until_end);
    flush(&mut engine.drain(), args.format, &mut *io.stdout);
    match args.format {
        Format::Human => {
            let _ = writeln!(io.stderr, "{}", engine.counters.text());
        }
        Format::Json => {
            let _ = writeln!(io.stdout, "{}", engine.counters.to_json());
        }
    }
    Outcome::Clean
}

/// Lines of an events file run as one batch.
const FILE_BATCH: usize = 1024;

/// The runtime with the chosen engine, and the JIT's compile report. A
/// program the JIT cannot compile is an error, never a silent switch.
pub(crate) fn new_engine(
    program: dtc_ir::Program,
    options: Options,
    engine: Engine,
) -> Result<(Runtime, Option<dtc_jit::Report>), dtc_jit::CompileError> {
    Ok(match engine {
        Engine::Interp => (Runtime::new(program, options), None),
        Engine::Jit => {
            let jit = dtc_jit::JitEngine::new(program, options)?;
            let report = jit.report().clone();
            (jit.into_engine(), Some(report))
        }
    })
}

fn flush(outputs: &mut Vec<dtc_engine::Output>, format: Format, stdout: &mut dyn std::io::Write) {
    for o in outputs.drain(..) {
        let _ = match format {
            Format::Human => writeln!(stdout, "{}", o.text()),
            Format::Json => writeln!(stdout, "{}", o.to_json()),
        };
    }
}
