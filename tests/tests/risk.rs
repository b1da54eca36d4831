//! The risk report of every sample, as a snapshot, with each example
//! policy's verdict on it: a change to a score, a bound or the analysis
//! shows up here for review. Every sample must pass the dev policy, and at
//! least one must be refused by production.

use dtc_driver::Session;
use dtc_tests::{BaseDirFs, dt_files, workspace_root};

const POLICIES: [&str; 3] = ["dev", "canary", "production"];

#[test]
fn risk_reports_of_the_samples() {
    let root = workspace_root();
    let mut refused_by_production = 0;
    for path in dt_files(&root.join("samples")) {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        let out = Session::new(BaseDirFs { base: root.clone() })
            .check_path(&rel)
            .expect("samples are readable");
        let report = out.report.as_ref().expect("samples type-check");
        let mut text = dtc_analysis::render_text(report, &out.sources);
        text.push_str("\npolicies:\n");
        for ring in POLICIES {
            let policy_path = root.join("samples/policies").join(format!("{ring}.toml"));
            let policy_text =
                std::fs::read_to_string(&policy_path).expect("example policies are readable");
            let checked = Session::new(BaseDirFs { base: root.clone() })
                .with_policy(format!("samples/policies/{ring}.toml"), policy_text)
                .check_path(&rel)
                .expect("samples are readable");
            let codes: Vec<&str> = checked
                .diagnostics
                .iter()
                .map(|d| d.code.as_str())
                .collect();
            assert!(
                ring != "dev" || codes.is_empty(),
                "{} must pass the dev policy: {codes:?}",
                rel.display()
            );
            if ring == "production" && !codes.is_empty() {
                refused_by_production += 1;
            }
            let verdict = if codes.is_empty() {
                "accepted".to_string()
            } else {
                format!("refused: {}", codes.join(", "))
            };
            text.push_str(&format!("  {ring}: {verdict}\n"));
        }
        let name = rel.to_string_lossy().replace(['/', '\\'], "__");
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false, snapshot_path => "../snapshots" }, {
            insta::assert_snapshot!("risk", text);
        });
    }
    assert!(
        refused_by_production > 0,
        "the production policy should refuse at least one sample"
    );
}
