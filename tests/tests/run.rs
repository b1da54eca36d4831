//! Every sample runs over its events (`<program>.events.jsonl` beside it)
//! and must produce exactly its expected output (`<program>.expected.jsonl`):
//! egress, derived logs, metrics at window close, actions and the summary,
//! as the JSON lines `dtc run --format json --until-end` prints. This is
//! `dtc test samples/ tests/run/`; refresh the expected files with
//! `dtc test samples/ --bless` and review the diff. A sample without events
//! fails the test: each must show what it does.

use dtc_driver::Session;
use dtc_engine::{Engine, Options};
use dtc_tests::{BaseDirFs, dt_files, workspace_root};

/// Runs a program over events, returning the JSON lines of its outputs.
pub fn run_program(root: &std::path::Path, rel: &std::path::Path, events: &str) -> String {
    let out = Session::new(BaseDirFs {
        base: root.to_path_buf(),
    })
    .check_path(rel)
    .expect("readable");
    let program = out.lower().expect("checks").expect("verifies");
    Engine::json_lines(program, Options::default(), events)
}

#[test]
fn samples_run_over_their_events() {
    let root = workspace_root();
    // Programs read files by paths relative to the workspace, as `dtc run`
    // from the workspace root does.
    std::env::set_current_dir(&root).expect("the workspace root exists");
    let mut missing = Vec::new();
    let mut failures = Vec::new();
    // The samples, and the run cases that pin down the runtime's semantics.
    let mut programs = dt_files(&root.join("samples"));
    programs.extend(dt_files(&root.join("tests/run")));
    for path in programs {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        if rel.starts_with("samples/schemas") || rel.file_name().is_some_and(|n| n == "schema.dt") {
            continue;
        }
        let events_path = path.with_extension("events.jsonl");
        let Ok(events) = std::fs::read_to_string(&events_path) else {
            missing.push(events_path.display().to_string());
            continue;
        };
        let text = run_program(&root, &rel, &events);
        let expected_path = path.with_extension("expected.jsonl");
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == text => {}
            Ok(expected) => {
                let at = expected
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                failures.push(format!(
                    "{}: line {}\n  expected: {}\n  actual:   {}",
                    rel.display(),
                    at + 1,
                    expected.lines().nth(at).unwrap_or("(end)"),
                    text.lines().nth(at).unwrap_or("(end)")
                ));
            }
            Err(_) => failures.push(format!("{}: no {}", rel.display(), expected_path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "samples differ from their expected output (`dtc test samples/ --bless` to refresh):\n{}",
        failures.join("\n")
    );
    assert!(missing.is_empty(), "samples without events: {missing:?}");
}
