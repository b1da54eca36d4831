//! Every program under `samples/` is an example people copy, so each must
//! check with no errors and no warnings.

use dtc_driver::Session;
use dtc_tests::{BaseDirFs, dt_files, workspace_root};

#[test]
fn samples_are_clean() {
    let root = workspace_root();
    let files = dt_files(&root.join("samples"));
    assert!(
        !files.is_empty(),
        "no samples found under {}",
        root.join("samples").display()
    );
    let session = Session::new(BaseDirFs { base: root.clone() });
    let mut failures = String::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap_or(path);
        match session.check_path(rel) {
            Ok(out) if out.diagnostics.is_empty() => {}
            Ok(out) => failures.push_str(&dtc_diagnostics::render_human(
                &out.diagnostics,
                &out.sources,
                false,
            )),
            Err(e) => failures.push_str(&format!("{e}\n")),
        }
    }
    assert!(
        failures.is_empty(),
        "samples must check cleanly:\n{failures}"
    );
}

/// Samples are what people copy: they are in `dtc fmt`'s canonical layout.
#[test]
fn samples_are_formatted() {
    let root = workspace_root();
    let mut unformatted = Vec::new();
    let mut files = dt_files(&root.join("samples"));
    files.extend(dt_files(&root.join("tests/run")));
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        match dtc_fmt::format(&text) {
            Ok(formatted) if formatted == text => {}
            _ => unformatted.push(path.display().to_string()),
        }
    }
    assert!(unformatted.is_empty(), "run `dtc fmt` on: {unformatted:?}");
}
