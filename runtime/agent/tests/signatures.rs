//! Reviewer signatures in the real `dtc-agent`: an artifact approved by
//! enough trusted reviewers runs; one signed by too few, or by a key the
//! agent does not trust, is refused with the counts, and the others keep
//! running. Keys and signatures are made with `dtc-artifact`'s API, the
//! one `dtc keygen` and `dtc sign` use.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use dtc_artifact::{PrivateKey, Signed, add_signature};
use serde_json::{Value as Json, json};

const NO_TELEMETRY: &str = "[telemetry]\ninterval = \"0s\"\n";

fn sign(bytes: &[u8], key: &PrivateKey, reviewer: &str) -> Vec<u8> {
    match add_signature(bytes, key, reviewer) {
        Ok(Signed::Added(signed)) => signed,
        other => panic!("signing failed: {other:?}"),
    }
}

/// A key pair; the public half written as `NAME.pub` in `dir`.
fn reviewer(dir: &Path, name: &str) -> PrivateKey {
    let key = PrivateKey::generate().unwrap();
    std::fs::write(dir.join(format!("{name}.pub")), key.public().to_text()).unwrap();
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enough_trusted_signatures_run_and_the_rest_are_refused_with_counts() {
    let dir = temp_dir("signatures");
    let programs = dir.join("programs");
    // Every tier needs two approvals here.
    std::fs::write(
        dir.join("ring.toml"),
        "ring = \"test\"\n[approvals]\nnone = 2\nlimited = 2\nhigh = 2\n",
    )
    .unwrap();
    let (alice, bob) = (reviewer(&dir, "alice"), reviewer(&dir, "bob"));
    let mallory = reviewer(&dir, "mallory");
    let chatty = compile(&root().join("samples/02-chatty-event/chatty_event.dt"));
    let secret = compile(&root().join("samples/03-secret/drop_field.dt"));
    install(
        &programs,
        "a.dtx",
        &sign(&sign(&chatty, &alice, "alice"), &bob, "bob"),
    );
    install(
        &programs,
        "b.dtx",
        &sign(&sign(&secret, &alice, "alice"), &mallory, "mallory"),
    );
    install(&programs, "c.dtx", &sign(&secret, &bob, "bob"));
    install(&programs, "d.dtx", &secret);
    let downstream = Downstream::start().await;
    let config = config_text(downstream.addr, NO_TELEMETRY).replace(
        "reload_interval = \"50ms\"",
        "reload_interval = \"50ms\"\npolicy = \"ring.toml\"\ntrusted_keys = [\"alice.pub\", \"bob.pub\"]",
    );
    std::fs::write(dir.join("agent.toml"), &config).unwrap();

    // check-config names the keys and says what would run.
    let (ok, stdout, stderr) = check_config_in(&dir);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.matches("trusted reviewer key: SHA256:").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains(&alice.public().fingerprint()), "{stdout}");
    assert!(stdout.contains("would run: a.dtx"), "{stdout}");
    assert!(
        stdout.contains(
            "would refuse: b.dtx: the program is no risk; test requires 2 reviewer signature(s) by trusted keys for that tier; found 1 valid by trusted keys, 1 by untrusted keys, 0 invalid (2 signature(s) in all"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("would refuse: c.dtx: the program is no risk; test requires 2 reviewer signature(s) by trusted keys for that tier; found 1 valid by trusted keys, 0 by untrusted keys, 0 invalid"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would refuse: d.dtx: the program is no risk; test requires 2 reviewer signature(s) by trusted keys for that tier; found 0 valid by trusted keys, 0 by untrusted keys, 0 invalid (0 signature(s) in all"),
        "{stdout}"
    );

    let agent = Agent::start(&dir, &config);
    let start = Instant::now();
    let status = loop {
        let s = agent.status();
        if s["programs"].as_array().is_some_and(|p| !p.is_empty()) {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let running: Vec<&Json> = status["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["file"])
        .collect();
    assert_eq!(running, [&json!("a.dtx")], "{status:#}");
    let refused: Vec<&str> = status["artifacts_refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(refused, ["b.dtx", "c.dtx", "d.dtx"], "{status:#}");

    // The approved program runs: banners are suppressed, launches pass.
    let events: Vec<_> =
        sample_events(&root().join("samples/02-chatty-event/chatty_event.events.jsonl"));
    let launches = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("LogLaunch"))
        .count();
    assert!(launches > 0 && launches < events.len());
    let mut client = agent.grpc_client().await;
    client.export(request(&events)).await.unwrap();
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| d.forwarded().len() == launches)
            .await,
        "{}",
        agent.stderr()
    );

    // Bob signs c.dtx too: now it has two trusted approvals and runs.
    install(
        &programs,
        "c.dtx",
        &sign(&sign(&secret, &bob, "bob"), &alice, "alice"),
    );
    let start = Instant::now();
    loop {
        let s = agent.status();
        if s["programs"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stderr = agent.stop();
    assert!(
        stderr.contains("artifact b.dtx refused: the program is no risk; test requires 2"),
        "{stderr}"
    );
}

#[test]
fn every_unusable_trusted_key_file_is_its_own_error() {
    let dir = temp_dir("badkeys");
    let alice = reviewer(&dir, "alice");
    std::fs::write(dir.join("alice.key"), alice.to_text()).unwrap();
    std::fs::write(dir.join("junk.pub"), "hello\n").unwrap();
    std::fs::write(
        dir.join("agent.toml"),
        "[artifacts]\ndir = \"programs\"\ntrusted_keys = [\"alice.pub\", \"nokey.pub\", \"alice.key\", \"junk.pub\"]\n[spool]\ndir = \"spool\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = check_config_in(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("the configuration has 3 error(s)"),
        "{stderr}"
    );
    for (i, file, why) in [
        (1, "nokey.pub", "cannot read it"),
        (
            2,
            "alice.key",
            "this is a private key (NAME.key), but a public key (NAME.pub) is needed here",
        ),
        (3, "junk.pub", "not a dtc key file"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("`artifacts.trusted_keys[{i}]`")))
            .unwrap_or_else(|| panic!("no error for key {i}: {stderr}"));
        assert!(line.contains(file) && line.contains(why), "{line}");
    }
    // The agent does not start with them either.
    assert!(run_refused(&dir).contains("`artifacts.trusted_keys[1]`"));
}
