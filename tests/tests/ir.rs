//! Every program that checks lowers to IR the verifier accepts: the samples
//! and every clean ui case. The samples' IR text is snapshotted, so a change
//! to lowering shows up for review.

use dtc_driver::Session;
use dtc_tests::{BaseDirFs, dt_files, workspace_root};

#[test]
fn checked_programs_lower_to_verified_ir() {
    let root = workspace_root();
    let mut files = dt_files(&root.join("samples"));
    files.extend(dt_files(&root.join("tests/ui")));
    let mut failures = Vec::new();
    let mut lowered = 0;
    for path in files {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        let Ok(out) = Session::new(BaseDirFs { base: root.clone() }).check_path(&rel) else {
            continue;
        };
        match out.lower() {
            None => {}
            Some(Ok(program)) => {
                lowered += 1;
                if rel.starts_with("samples") {
                    let name = rel.to_string_lossy().replace(['/', '\\'], "__");
                    insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false, snapshot_path => "../snapshots" }, {
                        insta::assert_snapshot!("ir", dtc_ir::print(&program));
                    });
                }
            }
            Some(Err(errors)) => failures.push(format!(
                "{}:\n  {}",
                rel.display(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )),
        }
    }
    assert!(lowered > 30, "only {lowered} programs lowered");
    assert!(
        failures.is_empty(),
        "the verifier rejected lowered programs:\n{}",
        failures.join("\n")
    );
}
