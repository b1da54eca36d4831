//! The ui corpus: every `tests/ui/**/*.dt` case, checked from disk (so its
//! imports are read) and snapshotted as source, rendered diagnostics and
//! JSON in `tests/snapshots/`.
//!
//! Each case declares in a `//@ expect:` header the codes it must produce
//! (`ok` for none). The harness compares that set with what the check
//! produced, so accepting a snapshot can never accept the wrong diagnostics
//! unnoticed; a case without the header fails. Update snapshots with
//! `cargo insta review` or `INSTA_UPDATE=always cargo test -p dtc-tests
//! --test ui`, then read the changed `.snap` files. A `//@ policy:
//! ui/policy/x.toml` header checks the case against that policy too.

use dtc_driver::Session;
use dtc_tests::{
    BaseDirFs, expectation, policy_directive, produced, snapshot_text, workspace_root,
};

#[test]
fn ui() {
    let tests_dir = workspace_root().join("tests");
    // insta hands out canonical paths; strip a canonical prefix from them.
    let base = tests_dir.canonicalize().unwrap_or(tests_dir);
    let session = Session::new(BaseDirFs { base: base.clone() });
    let mut problems = Vec::new();
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::glob!("../ui", "**/*.dt", |path| {
            // Relative names (`ui/syntax/x.dt`) keep snapshots machine-independent.
            let rel = path.strip_prefix(&base).unwrap_or(path);
            // A case may name a policy to be checked against.
            let source = std::fs::read_to_string(path).unwrap_or_default();
            let session = match policy_directive(&source) {
                None => session.clone(),
                Some(p) => match std::fs::read_to_string(base.join(&p)) {
                    Ok(text) => session.clone().with_policy(p, text),
                    Err(e) => {
                        problems.push(format!("{}: cannot read policy `{p}`: {e}", rel.display()));
                        return;
                    }
                },
            };
            let out = match session.check_path(rel) {
                Ok(out) => out,
                Err(e) => {
                    problems.push(format!("{}: {e}", rel.display()));
                    return;
                }
            };
            match expectation(&out.sources.get(out.root).text) {
                Ok(expected) => {
                    let got = produced(&out);
                    if got != expected {
                        problems.push(format!("{}: header expects `{expected}`, the check produced `{got}`", rel.display()));
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", rel.display())),
            }
            insta::assert_snapshot!(snapshot_text(&out));
        });
    });
    assert!(
        problems.is_empty(),
        "{} ui case(s) disagree with their headers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
