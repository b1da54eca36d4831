//! The JIT against the interpreter: every sample and every `tests/run` case
//! runs under both engines on the same events, one line at a time and in
//! batches, and must give identical output (egress, logs, metrics,
//! actions, faults, counters). Then generated streams of each sample's
//! scenario, with several seeds, through the samples that read them.
//!
//! `dtc_jit::differential` does the comparison; a difference names the run
//! mode and the first differing output line.

use std::path::{Path, PathBuf};

use dtc_driver::Session;
use dtc_engine::Options;
use dtc_engine::generate::{Scenario, generate, scenario_for};
use dtc_tests::{BaseDirFs, dt_files, workspace_root};

/// Every runnable program: samples and run cases (schemas excepted).
fn programs(root: &Path) -> Vec<PathBuf> {
    let mut programs = dt_files(&root.join("samples"));
    programs.extend(dt_files(&root.join("tests/run")));
    programs
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap_or(&p).to_path_buf())
        .filter(|rel| {
            !rel.starts_with("samples/schemas") && rel.file_name().is_none_or(|n| n != "schema.dt")
        })
        .collect()
}

fn lower(root: &Path, rel: &Path) -> dtc_ir::Program {
    let out = Session::new(BaseDirFs {
        base: root.to_path_buf(),
    })
    .check_path(rel)
    .expect("readable");
    out.lower().expect("checks").expect("verifies")
}

#[test]
fn samples_and_run_cases_give_identical_output_under_both_engines() {
    let root = workspace_root();
    // Programs read files by paths relative to the workspace.
    std::env::set_current_dir(&root).expect("the workspace root exists");
    let mut failures = Vec::new();
    let mut n = 0;
    for rel in programs(&root) {
        let events = std::fs::read_to_string(root.join(&rel).with_extension("events.jsonl"))
            .unwrap_or_else(|e| panic!("{}: no events: {e}", rel.display()));
        let program = lower(&root, &rel);
        for seed in [0, 7] {
            let options = Options {
                seed,
                ..Options::default()
            };
            if let Err(d) = dtc_jit::differential(&program, &options, &events) {
                failures.push(format!("{} (seed {seed}): {d}", rel.display()));
            }
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} runs: where are the samples?");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The scenario whose events a sample reads, from its folder name.
fn scenario_of(rel: &Path) -> Option<Scenario> {
    let dir = rel.parent()?.file_name()?.to_str()?;
    // `samples/01-file-hashing` -> `file-hashing`.
    let name = dir.split_once('-').map_or(dir, |(_, rest)| rest);
    scenario_for(name)
}

#[test]
fn generated_streams_give_identical_output_under_both_engines() {
    let root = workspace_root();
    std::env::set_current_dir(&root).expect("the workspace root exists");
    let mut failures = Vec::new();
    let mut covered = Vec::new();
    for rel in programs(&root) {
        let Some(scenario) = scenario_of(&rel) else {
            continue;
        };
        covered.push(scenario);
        let program = lower(&root, &rel);
        for seed in [1u64, 2, 3] {
            let input = generate(scenario, 3_000, seed).join("\n");
            let options = Options {
                seed,
                ..Options::default()
            };
            if let Err(d) = dtc_jit::differential(&program, &options, &input) {
                failures.push(format!(
                    "{} ({}, seed {seed}): {d}",
                    rel.display(),
                    scenario.name()
                ));
            }
        }
    }
    for s in Scenario::ALL {
        assert!(
            covered.contains(&s),
            "no sample reads scenario {}",
            s.name()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every sample compiles, and the JIT leaves nothing of the hot paths to
/// the interpreter: no construct of a sample runs interpreted as a whole.
#[test]
fn samples_compile_with_every_construct_native() {
    let root = workspace_root();
    for rel in programs(&root) {
        let program = lower(&root, &rel);
        let jit = dtc_jit::JitEngine::new(program, Options::default())
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        let r = jit.report();
        assert!(
            r.interpreted.is_empty(),
            "{}: constructs left to the interpreter:\n{r}",
            rel.display()
        );
        assert!(
            r.functions > 0 || r.nodes.total() == 0,
            "{}: {r}",
            rel.display()
        );
    }
}
