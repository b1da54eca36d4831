//! Fault tests of the real `dtc-agent` on loopback: malformed and oversized
//! requests, the downstream down and back (senders pushed back, nothing
//! dropped), an artifact replaced mid-stream, the rip cord under load and
//! its flush of open windows, a budget tripping, refused artifacts, and bad
//! configurations.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use dtc_engine::event::InputEvent;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use serde_json::{Value as Json, json};

const NO_TELEMETRY: &str = "[telemetry]\ninterval = \"0s\"\n";

/// Welcome banners numbered `from..to`, a millisecond apart, with the
/// fields both the chatty-event and the secret samples read.
fn banners(from: u64, to: u64) -> Vec<InputEvent> {
    (from..to)
        .map(|seq| {
            let line = json!({
                "event": "LogWelcomeBanner",
                "time": 1_795_341_600_000_000_000i64 + seq as i64 * 1_000_000,
                "seq": seq, "secret": "hunter2", "version": "2.4.0",
                "attributes": { "time": "2026-11-22 10:00:00" },
            });
            dtc_engine::event::from_flat_json(line).unwrap()
        })
        .collect()
}

fn seq(record: &LogRecord) -> Option<u64> {
    attr(record, "seq").and_then(|v| v.as_u64())
}

async fn wait_status(agent: &Agent, what: &str, done: impl Fn(&Json) -> bool) -> Json {
    let start = Instant::now();
    loop {
        let status = agent.status();
        if done(&status) {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "never {what}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_refused_and_counted() {
    let dir = temp_dir("refusals");
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config_text(downstream.addr, NO_TELEMETRY));
    let http = agent.http;
    assert_eq!(
        http_post(
            http,
            b"\x0a\xff\xff".to_vec(),
            "application/x-protobuf",
            false
        )
        .await,
        400
    );
    assert_eq!(
        http_post(
            http,
            b"{\"resourceLogs\": 3}".to_vec(),
            "application/json",
            false
        )
        .await,
        400
    );
    assert_eq!(
        http_post(http, b"hello".to_vec(), "text/plain", false).await,
        400
    );
    assert_eq!(
        http_post(http, b"not gzip".to_vec(), "application/x-protobuf", true).await,
        400
    );
    let small = request(&banners(0, 1)).encode_to_vec();
    let mut huge = request(&banners(0, 1));
    huge.resource_logs[0].scope_logs[0].log_records[0].body =
        Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "x".repeat(100 * 1024),
                ),
            ),
        });
    let huge_bytes = huge.encode_to_vec();
    assert_eq!(
        http_post(http, huge_bytes.clone(), "application/x-protobuf", false).await,
        413
    );
    // Small on the wire, too large once decompressed.
    assert_eq!(
        http_post(http, huge_bytes, "application/x-protobuf", true).await,
        413
    );
    let mut client = agent.grpc_client().await;
    let status = client.export(huge).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // A good request still goes through after all that.
    assert_eq!(
        http_post(http, small, "application/x-protobuf", false).await,
        200
    );
    let status = agent.status();
    assert_eq!(status["requests_refused"]["malformed"], 4, "{status:#}");
    assert_eq!(status["requests_refused"]["oversized"], 3, "{status:#}");
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| d.forwarded().len() == 1)
            .await
    );
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_down_pushes_back_on_senders_and_loses_nothing() {
    let dir = temp_dir("down");
    let mut downstream = Downstream::down().await;
    let config = config_text(downstream.addr, NO_TELEMETRY).replace(
        "batch_interval = \"20ms\"",
        "batch_interval = \"20ms\"\nqueue_size = 50",
    );
    let agent = Agent::start(&dir, &config);
    let mut client = agent.grpc_client().await;
    // The downstream is gone, so the export queue fills; from then on the
    // agent answers UNAVAILABLE (retryable) instead of accepting records
    // it would have to drop.
    let mut refused = Vec::new();
    for i in 0..8 {
        if let Err(status) = client.export(request(&banners(i * 10, i * 10 + 10))).await {
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            assert!(status.message().contains("export queue"), "{status:?}");
            refused.push(i);
        }
    }
    let status = wait_status(&agent, "the exporter failing", |s| {
        s["counters"]["export_failures"].as_u64() > Some(0)
    })
    .await;
    assert!(!refused.is_empty(), "{status:#}");
    assert_eq!(
        status["requests_refused"]["export_queue_full"].as_u64(),
        Some(refused.len() as u64),
        "{status:#}"
    );
    assert!(
        status["queues"]["export_records"].as_u64() <= Some(50),
        "{status:#}"
    );
    assert!(status["last_export_error"].is_string());
    downstream.resume().await;
    // The senders retry what was refused, as an SDK does.
    for i in refused {
        loop {
            match client.export(request(&banners(i * 10, i * 10 + 10))).await {
                Ok(_) => break,
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(s) => panic!("{s:?}"),
            }
        }
    }
    assert!(
        downstream
            .wait(Duration::from_secs(15), |d| d.forwarded().len() >= 80)
            .await,
        "{:#}\n{}",
        agent.status(),
        agent.stderr()
    );
    // Batches in flight at once may arrive in any order; each arrives once.
    let mut seqs: Vec<u64> = downstream.forwarded().iter().filter_map(seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..80).collect::<Vec<_>>());
    // The downstream stores a batch before it answers, and the agent counts
    // it when the answer arrives: wait for the count, not only the queue.
    let status = wait_status(&agent, "queue empty and all counted", |s| {
        s["queues"]["export_records"] == 0 && s["counters"]["exported_logs"] == 80
    })
    .await;
    let dropped: u64 = status["dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    assert_eq!(dropped, 0, "{status:#}");
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_replaced_mid_stream_loses_and_repeats_nothing() {
    let dir = temp_dir("replace");
    let programs = dir.join("programs");
    install(
        &programs,
        "a.dtx",
        &compile(&root().join("samples/02-chatty-event/chatty_event.dt")),
    );
    let replacement = compile(&root().join("samples/03-secret/drop_field.dt"));
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config_text(downstream.addr, NO_TELEMETRY));
    let mut client = agent.grpc_client().await;
    let mut sent = 0u64;
    let mut replaced_at = None;
    let mut after = 0;
    while after < 20 {
        client
            .export(request(&banners(sent, sent + 20)))
            .await
            .unwrap();
        sent += 20;
        if sent == 200 {
            install(&programs, "a.dtx", &replacement);
        }
        if replaced_at.is_none() && agent.status()["counters"]["reloads"].as_u64() >= Some(2) {
            replaced_at = Some(sent);
        }
        after += u64::from(replaced_at.is_some());
        assert!(
            sent < 200_000,
            "the replacement was never loaded: {}",
            agent.stderr()
        );
    }
    agent.stop();
    // The first program suppressed banners and counted them; the second
    // lets them through without their secret.
    let forwarded: Vec<u64> = downstream.forwarded().iter().filter_map(seq).collect();
    let counted: i64 = downstream
        .metrics()
        .iter()
        .filter(|(_, m)| m.name == "app.welcome_banners")
        .flat_map(|(_, m)| metric_points(m))
        .map(|p| p["value"].as_i64().unwrap())
        .sum();
    assert!(
        !forwarded.is_empty() && counted > 0,
        "{forwarded:?} {counted}"
    );
    let unique: BTreeSet<u64> = forwarded.iter().copied().collect();
    assert_eq!(unique.len(), forwarded.len(), "an event left twice");
    let first = forwarded[0];
    assert_eq!(
        forwarded,
        (first..sent).collect::<Vec<_>>(),
        "the switch is one cut in the stream"
    );
    assert_eq!(
        counted as u64, first,
        "every banner before the cut was counted"
    );
    assert!(
        downstream
            .forwarded()
            .iter()
            .all(|r| attr(r, "secret").is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rip_cord_under_load_disables_every_program_and_reports_the_time() {
    let dir = temp_dir("ripcord");
    let programs = dir.join("programs");
    install(
        &programs,
        "a.dtx",
        &compile(&root().join("samples/02-chatty-event/chatty_event.dt")),
    );
    install(
        &programs,
        "b.dtx",
        &compile(&root().join("samples/03-secret/drop_field.dt")),
    );
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config_text(downstream.addr, NO_TELEMETRY));
    wait_status(&agent, "two programs", |s| {
        s["programs"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    let grpc = agent.grpc;
    let load = tokio::spawn(async move {
        let mut client = opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient::connect(format!("http://{grpc}")).await.unwrap();
        let mut sent = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            client
                .export(request(&banners(sent, sent + 50)))
                .await
                .unwrap();
            sent += 50;
        }
        sent
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = agent.admin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args(["ripcord", "--admin", &admin])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("rip cord pulled: 2 program(s) disabled in "),
        "{stdout}"
    );
    let sent = load.await.unwrap();
    let status = agent.status();
    assert!(
        status["ripcord"]["took_ns"].as_u64().unwrap() > 0,
        "{status:#}"
    );
    for p in status["programs"].as_array().unwrap() {
        assert_eq!(p["state"], "ripcord", "{status:#}");
    }
    let admin = agent.admin.to_string();
    let text = Command::new(bin())
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("rip cord pulled: 2 program(s) disabled in"),
        "{text}"
    );
    // Programs by name, not by the path they were compiled from.
    assert!(
        text.contains("program chatty_event (a.dtx): ripcord"),
        "{text}"
    );
    assert!(
        text.contains("program drop_field (b.dtx): ripcord"),
        "{text}"
    );
    agent.stop();
    // Before the cord: banners suppressed (counted); after: unchanged,
    // secret included. Nothing lost or repeated across the cut.
    let forwarded = downstream.forwarded();
    // Batches in flight at once may arrive in any order.
    let mut seqs: Vec<u64> = forwarded.iter().filter_map(seq).collect();
    seqs.sort_unstable();
    let first = *seqs.first().expect("banners passed after the rip cord");
    assert_eq!(seqs, (first..sent).collect::<Vec<_>>());
    assert!(
        forwarded
            .iter()
            .all(|r| attr(r, "secret") == Some(json!("hunter2")))
    );
    let ripcord_logged = downstream
        .agent_records()
        .iter()
        .any(|(_, r)| r.event_name == "dtc.ripcord");
    assert!(ripcord_logged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_pulls_the_rip_cord_and_open_windows_are_flushed() {
    let dir = temp_dir("usr1");
    install(
        &dir.join("programs"),
        "a.dtx",
        &compile(&root().join("samples/02-chatty-event/chatty_event.dt")),
    );
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config_text(downstream.addr, NO_TELEMETRY));
    wait_status(&agent, "running", |s| {
        s["programs"][0]["state"] == "running"
    })
    .await;
    // Five banners within one minute: the per-minute count stays open.
    let mut client = agent.grpc_client().await;
    client.export(request(&banners(0, 5))).await.unwrap();
    wait_status(&agent, "the banners seen", |s| {
        s["programs"][0]["events"] == 5
    })
    .await;
    assert!(downstream.metrics().is_empty());
    agent.signal("USR1");
    let status = wait_status(&agent, "pulled", |s| s["programs"][0]["state"] == "ripcord").await;
    assert_eq!(status["ripcord"]["programs_disabled"], 1);
    // The pull flushed the open window: its count went out.
    let counted = |d: &Downstream| -> Vec<i64> {
        d.metrics()
            .iter()
            .filter(|(scope, m)| scope != "dtc-agent" && m.name == "app.welcome_banners")
            .flat_map(|(_, m)| match &m.data {
                Some(metric::Data::Sum(s)) => s.data_points.clone(),
                _ => Vec::new(),
            })
            .filter_map(|p| match p.value {
                Some(number_data_point::Value::AsInt(n)) => Some(n),
                _ => None,
            })
            .collect()
    };
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| !counted(d).is_empty())
            .await,
        "{:#}",
        agent.status()
    );
    assert_eq!(counted(&downstream), [5]);
    // From now on banners pass unchanged.
    client.export(request(&banners(5, 10))).await.unwrap();
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| d.forwarded().len() == 5)
            .await
    );
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_over_its_budget_is_disabled_and_its_events_pass_unchanged() {
    let dir = temp_dir("budget");
    install(
        &dir.join("programs"),
        "a.dtx",
        &compile(&root().join("samples/02-chatty-event/chatty_event.dt")),
    );
    let downstream = Downstream::start().await;
    let agent = Agent::start(
        &dir,
        &config_text(
            downstream.addr,
            "[budgets]\ncpu_per_event = \"100ns\"\n[telemetry]\ninterval = \"50ms\"\n",
        ),
    );
    let mut client = agent.grpc_client().await;
    client.export(request(&banners(0, 20))).await.unwrap();
    let status = wait_status(&agent, "disabled", |s| {
        s["programs"][0]["state"] == "disabled"
    })
    .await;
    let reason = status["programs"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("budget cpu_per_event exceeded: "),
        "{reason}"
    );
    assert!(reason.contains("budget 100ns, over by"), "{reason}");
    client.export(request(&banners(20, 30))).await.unwrap();
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| d.forwarded().len() == 10)
            .await
    );
    let seqs: Vec<u64> = downstream.forwarded().iter().filter_map(seq).collect();
    assert_eq!(
        seqs,
        (20..30).collect::<Vec<_>>(),
        "after the trip, banners pass unchanged"
    );
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| {
                d.metrics()
                    .iter()
                    .any(|(_, m)| m.name == "dtc.agent.budget_trips")
            })
            .await
    );
    agent.stop();
    let trip = downstream
        .agent_record("dtc.budget_exceeded")
        .expect("a log record says which budget tripped");
    assert_eq!(attr(&trip, "dtc.budget"), Some(json!("cpu_per_event")));
    assert!(attr(&trip, "dtc.budget.over_by").is_some());
    let metric = downstream
        .metrics()
        .into_iter()
        .find(|(_, m)| m.name == "dtc.agent.budget_exceeded")
        .expect("a metric says which budget tripped");
    let point = &metric_points(&metric.1)[0];
    assert_eq!(point["labels"]["budget"], "cpu_per_event");
    assert_eq!(point["value"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_artifacts_are_reported_and_the_rest_run() {
    let dir = temp_dir("refused");
    let programs = dir.join("programs");
    let chatty = compile(&root().join("samples/02-chatty-event/chatty_event.dt"));
    let hashing = compile(&root().join("samples/01-file-hashing/file_hashing.dt"));
    let bound = |a: &[u8]| dtc_artifact::decode(a).unwrap().metadata.memory_bound;
    let (small, large) = (bound(&chatty), bound(&hashing));
    assert!(small < large, "{small} {large}");
    let mut corrupt = chatty.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    install(&programs, "a.dtx", &corrupt);
    install(&programs, "b.dtx", &chatty);
    install(&programs, "c.dtx", &hashing);
    std::fs::write(programs.join("notes.txt"), "not an artifact").unwrap();
    let downstream = Downstream::start().await;
    let budgets = format!(
        "[budgets]\nmemory = \"{}\"\n{NO_TELEMETRY}",
        (small + large) / 2
    );
    let agent = Agent::start(&dir, &config_text(downstream.addr, &budgets));
    let status = wait_status(&agent, "loaded", |s| {
        s["programs"].as_array().map(Vec::len) == Some(1)
    })
    .await;
    assert_eq!(status["programs"][0]["file"], "b.dtx");
    let refused = status["artifacts_refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{status:#}");
    assert_eq!(refused[0]["file"], "a.dtx");
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("checksum"),
        "{refused:?}"
    );
    assert_eq!(refused[1]["file"], "c.dtx");
    assert!(
        refused[1]["reason"]
            .as_str()
            .unwrap()
            .contains("above the agent's memory budget"),
        "{refused:?}"
    );
    // Fixing a refused file makes it run; breaking a running one keeps its
    // last good version.
    install(&programs, "a.dtx", &chatty);
    install(&programs, "b.dtx", b"DTX\0 truncated");
    let status = wait_status(&agent, "reloaded", |s| {
        s["programs"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    let reason = status["artifacts_refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "b.dtx")
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        reason.ends_with("(the previous version keeps running)"),
        "{reason}"
    );
    let stderr = agent.stop();
    assert!(stderr.contains("artifact c.dtx refused: "), "{stderr}");
}

fn check_config(dir: &std::path::Path, text: &str) -> (bool, String, String) {
    std::fs::write(dir.join("agent.toml"), text).unwrap();
    check_config_in(dir)
}

#[test]
fn bad_configurations_are_refused_with_the_key_and_the_fix() {
    let dir = temp_dir("configs");
    let good = "[artifacts]\ndir = \"programs\"\n[spool]\ndir = \"spool\"\n";
    let (ok, stdout, _) = check_config(&dir, good);
    assert!(
        ok && stdout.contains("the configuration is valid"),
        "{stdout}"
    );
    let cases = [
        (
            format!("{good}[budgets]\nmemory = \"lots\"\n"),
            "`budgets.memory` = \"lots\": expected a size",
        ),
        (
            format!("{good}[listen]\nadmin = \"0.0.0.0:1\"\n"),
            "listens on loopback only",
        ),
        (
            format!("{good}[exporter]\nendpont = \"x\"\n"),
            "unknown field `endpont`",
        ),
        (format!("{good}[artifacts]\n"), "duplicate key"),
        (
            "[spool]\ndir = \"spool\"\n".to_string(),
            "`artifacts.dir` is missing",
        ),
        (
            format!("{good}[budgets]\nemit_per_second = -1\ncpu_per_second = \"2s\"\n"),
            "2 error(s)",
        ),
        (
            good.replace("[spool]", "policy = \"missing.toml\"\n[spool]"),
            "cannot read the policy",
        ),
        (
            good.replace("[spool]", "trusted_keys = [\"nokey.pub\"]\n[spool]"),
            "`artifacts.trusted_keys[0]`: cannot use the trusted reviewer key",
        ),
    ];
    for (text, expected) in cases {
        let (ok, _, stderr) = check_config(&dir, &text);
        assert!(!ok, "{text}");
        assert!(stderr.contains(expected), "{text}\n{stderr}");
    }
    // A policy that does not parse names its own line.
    std::fs::write(dir.join("ring.toml"), "max_tier = \"extreme\"\n").unwrap();
    let (ok, _, stderr) = check_config(
        &dir,
        &good.replace("[spool]", "policy = \"ring.toml\"\n[spool]"),
    );
    assert!(
        !ok && stderr.contains("ring.toml:1:12: invalid policy setting: `extreme` is not a tier"),
        "{stderr}"
    );
    // A tier that needs a reviewer's signature is refused without one.
    std::fs::write(dir.join("ring.toml"), "[approvals]\nnone = 1\n").unwrap();
    install(
        &dir.join("programs"),
        "b.dtx",
        &compile(&root().join("samples/02-chatty-event/chatty_event.dt")),
    );
    let (ok, stdout, _) = check_config(
        &dir,
        &good.replace("[spool]", "policy = \"ring.toml\"\n[spool]"),
    );
    assert!(ok, "{stdout}");
    assert!(stdout.contains("would refuse: b.dtx: the program is no risk; the local policy requires 1 reviewer signature(s) by trusted keys"), "{stdout}");
    // The agent refuses to start where it cannot run, saying why.
    std::fs::write(
        dir.join("agent.toml"),
        good.replace("\"programs\"", "\"nowhere\""),
    )
    .unwrap();
    let stderr = run_refused(&dir);
    assert!(stderr.contains("the artifact folder"), "{stderr}");
}
