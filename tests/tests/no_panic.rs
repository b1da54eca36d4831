//! The no-panic property on stable Rust: mutated programs never crash the
//! parser, the checker or the renderers.
//!
//! This is the fallback for `fuzz/` (cargo-fuzz needs nightly). Inputs are
//! the samples and ui cases, edited at random by `dtc_tests::mutate`; each
//! is parsed, checked through the driver (as bytes, and as lossily decoded
//! text), and rendered both ways. Any panic fails the test, and the input
//! is saved under the target directory's `tmp/no-panic-failures/`.
//!
//! `DTC_FUZZ_ITERS` sets the number of inputs (default 2000, a few seconds);
//! `DTC_FUZZ_SEED` the seed (iteration `i` uses `seed + i`, so one failing
//! iteration reproduces alone with `DTC_FUZZ_SEED=<seed+i> DTC_FUZZ_ITERS=1`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dtc_diagnostics::{Diagnostic, FileId, SourceMap};
use dtc_driver::{CheckOutput, MemoryFs, Session};
use dtc_tests::mutate::{Rng, mutate};
use dtc_tests::{dt_files, workspace_root};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Spans must lie inside their file and on character boundaries, or the
/// renderers and the language server will point at the wrong place.
fn check_spans(diagnostics: &[Diagnostic], sources: &SourceMap) -> Result<(), String> {
    for d in diagnostics {
        for label in std::iter::once(&d.primary).chain(&d.secondary) {
            let text = &sources.get(label.file).text;
            let (s, e) = (label.span.start, label.span.end);
            if s > e || e > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
                return Err(format!(
                    "{} has span {s}..{e} in a file of {} bytes: {d:?}",
                    d.code,
                    text.len()
                ));
            }
        }
    }
    Ok(())
}

fn render(out: &CheckOutput) -> Result<(), String> {
    check_spans(&out.diagnostics, &out.sources)?;
    let _ = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, true);
    let _ = dtc_diagnostics::render_json(&out.diagnostics, &out.sources);
    Ok(())
}

/// Everything one input goes through. An `Err` is a broken invariant that
/// is not a panic.
fn exercise(session: &Session<MemoryFs>, name: &str, input: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    let parsed = dtc_syntax::parse(FileId(0), &text);
    let mut map = SourceMap::new();
    map.add(name, text.as_ref());
    check_spans(&parsed.diagnostics, &map)?;
    render(&session.check_bytes(name, input))?;
    render(&session.check_source(name, &text))
}

#[test]
fn mutated_programs_do_not_panic() {
    let iterations = env_number("DTC_FUZZ_ITERS", 2000);
    let seed = env_number("DTC_FUZZ_SEED", 0x00D7_C0FF_EE00);
    let root = workspace_root();
    let mut files = dt_files(&root.join("samples"));
    files.extend(dt_files(&root.join("tests/ui")));
    let mut fs = MemoryFs::new();
    let mut corpus: Vec<(String, Vec<u8>)> = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        if let Ok(bytes) = std::fs::read(path) {
            fs.insert(&rel, bytes.clone());
            corpus.push((rel, bytes));
        }
    }
    assert!(!corpus.is_empty(), "no corpus under samples/ or tests/ui/");
    let material: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.clone()).collect();
    // The inputs import the corpus files by their relative paths.
    let session = Session::new(fs);

    let failure_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-panic-failures");
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, 0);
    let started = Instant::now();
    for i in 0..iterations {
        let mut rng = Rng::new(seed.wrapping_add(i));
        let Some((name, original)) = rng.pick(&corpus) else {
            break;
        };
        let input = mutate(&mut rng, original, &material);
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| exercise(&session, name, &input)));
        slowest = slowest.max((t.elapsed(), i));
        let problem = match result {
            Ok(Ok(())) => continue,
            Ok(Err(invariant)) => invariant,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                format!("panic: {}", msg.unwrap_or_default())
            }
        };
        let _ = std::fs::create_dir_all(&failure_dir);
        let saved = failure_dir.join(format!("seed-{}.dt", seed.wrapping_add(i)));
        let _ = std::fs::write(&saved, &input);
        failures.push(format!(
            "iteration {i} (mutating {name}, saved as {}): {problem}",
            saved.display()
        ));
    }
    eprintln!(
        "{iterations} inputs in {:.1?}; slowest: iteration {} in {:.1?}",
        started.elapsed(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} of {iterations} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
