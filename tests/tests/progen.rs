//! Random well-typed programs (`dtc-progen`) through the whole pipeline:
//! each must check clean, lower and verify, and run identically under the
//! interpreter and the JIT on its generated events (`dtc_jit::differential`:
//! line by line and in batches, every output and counter).
//!
//! The same generator drives the `differential` fuzz target from a fuzzer's
//! bytes; here it runs from fixed seeds. `DTC_PROGEN_CASES=N` runs more
//! (default 64 in debug builds, 200 in release), `DTC_PROGEN_START=S` starts at another seed. A failure
//! prints the program, its events and the options, to reproduce with
//! `dtc run --engine interp|jit --seed S --lateness L --until-end --format json`
//! (`cargo run -p dtc-progen --example show -- SEED` prints a seed's case).

use std::collections::BTreeMap;

use dtc_driver::{MemoryFs, Session};
use dtc_engine::Options;
use dtc_progen::{Case, Entropy, Limits, generate};

fn cases() -> impl Iterator<Item = (u64, Case)> {
    // Compiling with cranelift dominates, three times per case (line by
    // line and two batch sizes), and an unoptimized cranelift takes about
    // 0.3 s a case: fewer cases in debug keep the test near 20 s.
    let default = if cfg!(debug_assertions) { 64 } else { 200 };
    let n: u64 = env_or("DTC_PROGEN_CASES", default);
    let start: u64 = env_or("DTC_PROGEN_START", 0);
    (start..start + n).map(|seed| {
        let mut e = Entropy::seeded(seed);
        (seed, generate(&mut e, Limits::default()))
    })
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn check(case: &Case) -> dtc_driver::CheckOutput {
    Session::new(MemoryFs::new()).check_source("fuzz.dt", &case.program)
}

fn codes(out: &dtc_driver::CheckOutput) -> Vec<String> {
    out.diagnostics
        .iter()
        .filter(|d| d.severity == dtc_diagnostics::Severity::Error)
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect()
}

#[test]
fn generated_programs_check_clean() {
    let mut total = 0;
    let mut clean = 0;
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    // One example of each code, with its seed, to find the generator bug.
    let mut examples: BTreeMap<String, String> = BTreeMap::new();
    let mut first = None;
    for (seed, case) in cases() {
        total += 1;
        let out = check(&case);
        if !out.has_errors() {
            clean += 1;
            continue;
        }
        for c in codes(&out) {
            let code = c.split(':').next().unwrap_or("").to_string();
            examples
                .entry(code.clone())
                .or_insert(format!("seed {seed}: {c}"));
            *by_code.entry(code).or_default() += 1;
        }
        if first.is_none() {
            first = Some(format!("seed {seed}:\n{}\n{case}", codes(&out).join("\n")));
        }
    }
    let rate = clean as f64 / total as f64;
    eprintln!(
        "{clean} of {total} generated programs check clean ({:.1}%); errors by code: {by_code:?}",
        rate * 100.0
    );
    for example in examples.values() {
        eprintln!("  {example}");
    }
    // Every one: a program that does not check is a generator bug (or a
    // checker bug, to report); the fuzz target treats it as a crash too.
    assert!(
        clean == total,
        "only {clean} of {total} generated programs check clean; errors by code: {by_code:?}\nfirst failure, {}",
        first.unwrap_or_default()
    );
}

#[test]
fn generated_programs_agree_under_both_engines() {
    let root = dtc_tests::workspace_root();
    // Programs that read files name them relative to the workspace.
    std::env::set_current_dir(&root).expect("the workspace root exists");
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (seed, case) in cases() {
        let out = check(&case);
        let Some(lowered) = out.lower() else {
            continue;
        };
        let program = match lowered {
            Ok(p) => p,
            Err(errors) => {
                failures.push(format!(
                    "seed {seed}: the verifier rejects the lowered program: {errors:?}\n{case}"
                ));
                continue;
            }
        };
        let options = Options {
            seed: case.seed,
            lateness_ns: case.lateness_ns,
            ..Options::default()
        };
        ran += 1;
        // What the runs exercise, from the interpreter's output.
        let interp = dtc_engine::Engine::json_lines(program.clone(), options.clone(), &case.events);
        for line in interp.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let kind = v["kind"].as_str().unwrap_or("?").to_string();
            if kind == "summary" {
                for (k, n) in v.as_object().into_iter().flatten() {
                    if n.as_u64().is_some_and(|n| n > 0) {
                        *outcomes.entry(format!("summary.{k}")).or_default() += 1;
                    }
                }
            } else {
                *outcomes.entry(kind).or_default() += 1;
            }
        }
        if let Err(d) = dtc_jit::differential(&program, &options, &case.events) {
            failures.push(format!("seed {seed}: {d}\n{case}"));
        }
    }
    eprintln!(
        "{ran} generated programs ran under both engines, {} differ",
        failures.len()
    );
    eprintln!(
        "outputs over all runs (summary.* counts runs with that counter above 0): {outcomes:?}"
    );
    assert!(ran > 0, "no generated program checked clean");
    // Agreement on runs that do nothing would prove little: the runs must
    // reach every kind of output.
    for kind in [
        "egress",
        "log",
        "metric",
        "action",
        "fault",
        "malformed",
        "schema_mismatch",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "no run produced a `{kind}` output: {outcomes:?}"
        );
    }
    // One line per failure, then the first in full.
    let summary: Vec<&str> = failures.iter().filter_map(|f| f.lines().next()).collect();
    assert!(
        failures.is_empty(),
        "{} of {ran} differ:\n{}\nfirst in full:\n{}",
        failures.len(),
        summary.join("\n"),
        failures[0]
    );
}

/// The generator reaches every construct the differential test is meant to
/// cover: each appears in some program of the run.
#[test]
fn generated_programs_cover_the_language() {
    const CONSTRUCTS: [&str; 53] = [
        "event ",
        " = \"app.",
        " from logs",
        "?,",
        "@pii",
        "@secret",
        "@attr(",
        "@unit(",
        ": float",
        ": duration",
        ": timestamp",
        ": bool",
        ": percent",
        ": bytes",
        "fn ",
        "return ",
        "machine ",
        " per ",
        "state ",
        " when ",
        "after ",
        " in S",
        "processor ",
        "var ",
        "map[",
        "let ",
        "if let ",
        "} else if ",
        "for i",
        "for k",
        "emit log ",
        "trigger ",
        " limit ",
        "remove(",
        "contains_key(",
        "query ",
        "| where ",
        "| extend ",
        "| project ",
        "| sample ",
        "| summarize ",
        " by ",
        "| emit metric ",
        "| emit log ",
        "suppress ",
        "with hash",
        "with mask",
        "with drop",
        "??",
        " is S",
        "attrs[",
        "resource[",
        "percentile(",
    ];
    let mut seen = [0usize; CONSTRUCTS.len()];
    let mut n = 0;
    for (_, case) in cases() {
        n += 1;
        for (i, c) in CONSTRUCTS.iter().enumerate() {
            if case.program.contains(c) {
                seen[i] += 1;
            }
        }
    }
    let report: Vec<String> = CONSTRUCTS
        .iter()
        .zip(seen)
        .map(|(c, k)| format!("{c:?}: {k}"))
        .collect();
    eprintln!(
        "programs (of {n}) using each construct: {}",
        report.join(", ")
    );
    let missing: Vec<&str> = CONSTRUCTS
        .iter()
        .zip(seen)
        .filter(|(_, k)| *k == 0)
        .map(|(c, _)| *c)
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}
