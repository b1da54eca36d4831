//! Runs `embedded-demo` as a user would and checks every record that
//! reached its exporter, exactly; and that in-process the sample gives what
//! `dtc run` gives for the same events (`embedded.expected.jsonl`).

use std::path::Path;
use std::process::Command;

use serde_json::{Value as Json, json};

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_embedded-demo"))
        .args(args)
        .output()
        .expect("embedded-demo runs");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(text: &str) -> Vec<Json> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn the_demo_exports_exactly_the_expected_records() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "embedded-demo failed: {stderr}");
    assert_eq!(lines(&stdout), lines(&sample("expected-output.jsonl")));
    // What must never leave, anywhere in the output.
    for secret in [
        "sk_live_",
        "alice@example.com",
        "4111111111111111",
        "203.0.113.7",
    ] {
        assert!(!stdout.contains(secret), "`{secret}` left the process");
    }
}

#[test]
fn in_process_the_sample_gives_what_dtc_run_gives() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "embedded-demo failed: {stderr}");
    let out = lines(&stdout);
    let expected = lines(&sample("../embedded.expected.jsonl"));
    // The application's records that left, as the flat events `dtc run` prints.
    let standard = ["event", "time", "severity", "severity_text", "body"];
    let egress: Vec<Json> = expected
        .iter()
        .filter(|o| o["kind"] == "egress")
        .map(|o| {
            let mut event = o["event"].as_object().cloned().unwrap_or_default();
            event.retain(|k, _| !standard.contains(&k.as_str()));
            Json::Object(event)
        })
        .collect();
    let left: Vec<Json> = out
        .iter()
        .filter(|o| o["scope"] == "shop")
        .map(|o| o["record"]["attributes"].clone())
        .collect();
    assert_eq!(left, egress);
    let metrics: Vec<&Json> = expected.iter().filter(|o| o["kind"] == "metric").collect();
    let points: Vec<&Json> = out.iter().filter(|o| o["kind"] == "metric").collect();
    assert_eq!(points, metrics);
    let derived: Vec<&Json> = out
        .iter()
        .filter(|o| o["record"]["event_name"] == "LargePaymentDeclined")
        .collect();
    assert_eq!(derived.len(), 1);
    assert_eq!(
        derived[0]["record"]["attributes"],
        json!({"amount_cents": 125000})
    );
}

#[test]
fn a_bad_artifact_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("embedded-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.dtx");
    std::fs::write(&path, b"DTX\0\x01\x00\x00\x00\x64\x00\x00\x00{}").expect("written");
    let (ok, stdout, stderr) = demo(&[path.to_str().expect("UTF-8 path")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok);
    assert_eq!(stdout, "");
    assert!(stderr.starts_with("error: the artifact `"), "{stderr}");
    assert!(
        stderr.contains("is refused: the artifact is truncated"),
        "{stderr}"
    );
}
