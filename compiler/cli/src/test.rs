//! `dtc test`: a program's tests are files beside it. `P.events.jsonl` is
//! the input and `P.expected.jsonl` what a run prints as JSON lines; the test
//! passes when a fresh run prints exactly that. `--bless` writes the
//! expected file from a run, for the user to review.

use std::path::{Path, PathBuf};

use crate::{Io, Outcome, TestArgs};

/// Runs a program over an events file: the JSON lines `dtc run --format
/// json --until-end` prints.
pub(crate) fn run_to_json_lines(
    program: &Path,
    events: &str,
    engine: crate::Engine,
) -> Result<String, String> {
    let session = dtc_driver::Session::new(dtc_driver::RealFs);
    let out = session.check_path(program).map_err(|e| e.to_string())?;
    if out.has_errors() {
        return Err(format!(
            "{} has errors; run `dtc check` on it",
            program.display()
        ));
    }
    let prog = match out.lower() {
        Some(Ok(p)) => p,
        _ => return Err("internal compiler error: the IR does not verify".into()),
    };
    let (runtime, _) = crate::run::new_engine(prog, dtc_engine::Options::default(), engine)
        .map_err(|e| e.to_string())?;
    Ok(runtime.run_json_lines(events))
}

fn programs(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "dt")
                && p.with_extension("events.jsonl").exists()
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

pub(crate) fn run(args: &TestArgs, io: &mut Io<'_>) -> Outcome {
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    for program in programs(&args.paths) {
        let events_path = program.with_extension("events.jsonl");
        let expected_path = program.with_extension("expected.jsonl");
        let events = match std::fs::read_to_string(&events_path) {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(
                    io.stderr,
                    "error: {}: cannot read `{}`: {e}",
                    program.display(),
                    events_path.display()
                );
                errors += 1;
                continue;
            }
        };
        let actual = match run_to_json_lines(&program, &events, args.engine) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(io.stderr, "error: {}: {e}", program.display());
                errors += 1;
                continue;
            }
        };
        if args.bless {
            if let Err(e) = std::fs::write(&expected_path, &actual) {
                let _ = writeln!(
                    io.stderr,
                    "error: cannot write `{}`: {e}",
                    expected_path.display()
                );
                errors += 1;
                continue;
            }
            let _ = writeln!(io.stderr, "blessed {}", expected_path.display());
            passed += 1;
            continue;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(t) => t,
            Err(_) => {
                let _ = writeln!(
                    io.stderr,
                    "FAIL {}: no `{}`; run `dtc test {} --bless` and review it",
                    program.display(),
                    expected_path.display(),
                    program.display()
                );
                failed += 1;
                continue;
            }
        };
        if expected == actual {
            let _ = writeln!(io.stderr, "ok   {}", program.display());
            passed += 1;
        } else {
            failed += 1;
            let _ = writeln!(io.stderr, "FAIL {}", program.display());
            let (e, a): (Vec<&str>, Vec<&str>) =
                (expected.lines().collect(), actual.lines().collect());
            let at = e
                .iter()
                .zip(&a)
                .position(|(x, y)| x != y)
                .unwrap_or(e.len().min(a.len()));
            let _ = writeln!(io.stderr, "  first difference at line {}:", at + 1);
            let _ = writeln!(
                io.stderr,
                "  expected: {}",
                e.get(at).unwrap_or(&"(end of output)")
            );
            let _ = writeln!(
                io.stderr,
                "  actual:   {}",
                a.get(at).unwrap_or(&"(end of output)")
            );
        }
    }
    let _ = writeln!(
        io.stderr,
        "{passed} passed, {failed} failed, {errors} errors"
    );
    if errors > 0 {
        Outcome::UsageOrIo
    } else if failed > 0 {
        Outcome::Failed
    } else {
        Outcome::Clean
    }
}
