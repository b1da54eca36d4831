//! `dtc run`: check and lower a program, then run it over events from a
//! file or standard input with the reference interpreter, printing what
//! egresses, the derived logs and metrics, and the actions, as text or JSON
//! lines.

use std::io::{BufRead, BufReader};

use dtc_engine::{Engine as Runtime, Options};

use crate::check::policy_session;
use crate::{Engine, Format, Io, Outcome, RunArgs};

pub(crate) fn run(args: &RunArgs, io: &mut Io<'_>) -> Outcome {
    if args.engine == Engine::Jit {
        let _ = writeln!(
            io.stderr,
            "error: the JIT engine is not available in this build yet; run with `--engine interp` (the default)"
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
        return match crate::artifact::load(&args.program) {
            Ok(a) => execute(a.program, args, io),
            Err(e) => {
                let _ = writeln!(io.stderr, "error: {e}");
                Outcome::Failed
            }
        };
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

fn execute(program: dtc_ir::Program, args: &RunArgs, io: &mut Io<'_>) -> Outcome {
    let mut options = Options {
        seed: args.seed,
        ..Options::default()
    };
    if let Some(l) = args.lateness {
        options.lateness_ns = l;
    }
    let mut engine = Runtime::new(program, options);
    let reader: Box<dyn BufRead + '_> = match &args.events {
        None => Box::new(BufReader::new(&mut *io.stdin)),
        Some(p) if p.as_os_str() == "-" => Box::new(BufReader::new(&mut *io.stdin)),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(BufReader::new(f)),
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
    let mut outputs = Vec::new();
    for line in reader.split(b'\n') {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(io.stderr, "error: reading events: {e}");
                return Outcome::UsageOrIo;
            }
        };
        // Bytes that are not UTF-8 are a malformed line like any other.
        engine.push_line(String::from_utf8_lossy(&line).trim_end_matches('\r'));
        outputs.extend(engine.drain());
        flush(&mut outputs, args.format, &mut *io.stdout);
    }
    engine.finish(args.until_end);
    outputs.extend(engine.drain());
    flush(&mut outputs, args.format, &mut *io.stdout);
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

fn flush(outputs: &mut Vec<dtc_engine::Output>, format: Format, stdout: &mut dyn std::io::Write) {
    for o in outputs.drain(..) {
        let _ = match format {
            Format::Human => writeln!(stdout, "{}", o.text()),
            Format::Json => writeln!(stdout, "{}", o.to_json()),
        };
    }
}
