//! Actions in the real `dtc-agent`: a sample's trigger fires and the file
//! lands in the spool, announced downstream by a `dtc.action` record that
//! names it; a memory dump of a real process; refusals by the spool's disk
//! budget and an hourly cap; `verbose_logs` lifting a program's
//! suppression of debug-level events.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use dtc_engine::event::{InputEvent, format_time, to_flat_json};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{Value as Json, json};

const NO_TELEMETRY: &str = "[telemetry]\ninterval = \"0s\"\n";

/// A program that keeps a flight recorder (through `verbose_logs`).
const VERBOSE_PROGRAM: &str = r#"// Debug chatter is suppressed until something fails.
event Debugging {
    step: int,
}

event Failure {
    code: int,
}

suppress Debugging

processor watch {
    on Failure {
        trigger verbose_logs(for: 10m) limit 1 per 1h
    }
}
"#;

fn action_records(d: &Downstream) -> Vec<LogRecord> {
    d.agent_records()
        .into_iter()
        .filter(|(scope, r)| scope == "dtc-agent" && r.event_name == "dtc.action")
        .map(|(_, r)| r)
        .collect()
}

fn text(record: &LogRecord, key: &str) -> String {
    match attr(record, key) {
        Some(Json::String(s)) => s,
        other => panic!("{key} is {other:?} in {record:?}"),
    }
}

fn body(record: &LogRecord) -> String {
    record
        .body
        .as_ref()
        .map(|b| format!("{:?}", b.value))
        .unwrap_or_default()
}

/// Files in the spool, hidden partial files left out.
fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("spool"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Starts the agent on one sample program; returns it with its folder.
async fn start(
    name: &str,
    source: &str,
    config: impl Fn(String) -> String,
) -> (Agent, Downstream, PathBuf) {
    let dir = temp_dir(name);
    install(
        &dir.join("programs"),
        "a.dtx",
        &compile(&root().join(source)),
    );
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config(base_config(&dir, &downstream)));
    (agent, downstream, dir)
}

/// The base config, with a local policy that needs no reviewer approval
/// (these tests are about actions, not signatures), written into `dir`.
fn base_config(dir: &Path, downstream: &Downstream) -> String {
    std::fs::write(
        dir.join("ring.toml"),
        "[approvals]\nnone = 0\nlimited = 0\nhigh = 0\n",
    )
    .unwrap();
    config_text(downstream.addr, NO_TELEMETRY).replace(
        "reload_interval = \"50ms\"",
        "reload_interval = \"50ms\"\npolicy = \"ring.toml\"",
    )
}

/// The agent's status once `done` holds (programs are published every
/// 100 ms), or the last one after 10 s.
async fn status_when(agent: &Agent, done: impl Fn(&Json) -> bool) -> Json {
    for _ in 0..500 {
        let status = agent.status();
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.status()
}

/// A spool file of JSON lines.
fn read_jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Installs the verbose program in a fresh folder; the agent is started
/// with `config` (given the base config).
async fn start_verbose(name: &str, config: impl Fn(String) -> String) -> (Agent, Downstream) {
    let dir = temp_dir(name);
    let source = dir.join("verbose.dt");
    std::fs::write(&source, VERBOSE_PROGRAM).unwrap();
    install(&dir.join("programs"), "a.dtx", &compile(&source));
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config(base_config(&dir, &downstream)));
    (agent, downstream)
}

async fn send(agent: &Agent, events: &[InputEvent]) {
    agent
        .grpc_client()
        .await
        .export(request(events))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_recorder_snapshot_lands_in_the_spool_and_is_announced() {
    let source = "samples/06-verify-hash/verify_hash.dt";
    let (agent, downstream, dir) = start("snapshot", source, |c| c).await;
    let events = sample_events(&root().join("samples/06-verify-hash/verify_hash.events.jsonl"));
    send(&agent, &events).await;
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| !action_records(d).is_empty())
            .await,
        "{}",
        agent.stderr()
    );
    let status = status_when(&agent, |s| s["programs"][0]["actions_fired"] == 1).await;
    let stderr = agent.stop();

    // Which event triggered it, by the reference run, from where the
    // sample's relative file names resolve (as the agent ran).
    std::env::set_current_dir(root()).unwrap();
    let program = dtc_artifact::decode(&compile(&root().join(source)))
        .unwrap()
        .program;
    let input: String = events
        .iter()
        .map(|e| to_flat_json(e).to_string() + "\n")
        .collect();
    let reference = dtc_engine::Engine::json_lines(program, Default::default(), &input);
    let triggers: Vec<Json> = reference
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|o| o["kind"] == "action")
        .collect();
    assert_eq!(triggers.len(), 1, "{reference}");
    let k = events
        .iter()
        .position(|e| {
            e.name.as_deref() == Some("LogEndFileHash")
                && json!(format_time(e.time)) == triggers[0]["time"]
        })
        .unwrap();

    let records = action_records(&downstream);
    assert_eq!(records.len(), 1, "{records:?}\n{stderr}");
    let record = &records[0];
    assert_eq!(text(record, "dtc.action.name"), "flight_recorder.snapshot");
    assert_eq!(text(record, "dtc.action.status"), "written");
    assert_eq!(attr(record, "dtc.action.fired"), Some(json!(true)));
    let path = PathBuf::from(text(record, "dtc.action.path"));
    assert!(
        body(record).contains(&path.display().to_string()),
        "{record:?}"
    );
    assert_eq!(spool_files(&dir), std::slice::from_ref(&path));
    // The events the program saw, up to and including the trigger.
    let lines = read_jsonl(&path);
    let expected: Vec<Json> = events[..=k].iter().map(to_flat_json).collect();
    assert_eq!(lines, expected);
    assert_eq!(
        attr(record, "dtc.action.bytes"),
        Some(json!(std::fs::metadata(&path).unwrap().len()))
    );
    let counts = &status["actions"]["flight_recorder.snapshot"];
    assert_eq!(
        (
            &counts["fired"],
            &counts["written"],
            &counts["refused"],
            &counts["failed"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(0)),
        "{status:#}"
    );
    assert_eq!(status["programs"][0]["actions_fired"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_dump_of_the_process_the_events_name() {
    let gcore_here = Command::new("sh")
        .args(["-c", "command -v gcore"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !gcore_here {
        eprintln!("skipped: gcore (from gdb) is not installed, so memory_dump cannot run here");
        return;
    }
    let mut target = Command::new("sleep").arg("120").spawn().unwrap();
    let pid = target.id();
    let (agent, downstream, dir) =
        start("memory_dump", "samples/05-work-queue/work_queue.dt", |c| c).await;
    let mut events = sample_events(&root().join("samples/05-work-queue/work_queue.events.jsonl"));
    for e in &mut events {
        e.resource.insert("process.pid".into(), json!(pid));
    }
    send(&agent, &events).await;
    // The dump runs on a thread; its record comes when gcore is done.
    let done = downstream
        .wait(Duration::from_secs(90), |d| {
            action_records(d)
                .iter()
                .any(|r| attr(r, "dtc.action.fired") == Some(json!(true)))
        })
        .await;
    let status = agent.status();
    let stderr = agent.stop();
    let _ = target.kill();
    let _ = target.wait();
    assert!(done, "{stderr}");
    let records = action_records(&downstream);
    // The second trigger is refused by the program's own budget (1 per 1h).
    let refused: Vec<&LogRecord> = records
        .iter()
        .filter(|r| attr(r, "dtc.action.fired") == Some(json!(false)))
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    assert_eq!(text(refused[0], "dtc.action.status"), "refused");
    assert_eq!(text(refused[0], "dtc.action.budget"), "program");
    let dump = records
        .iter()
        .find(|r| attr(r, "dtc.action.fired") == Some(json!(true)))
        .unwrap();
    assert_eq!(text(dump, "dtc.action.name"), "memory_dump");
    assert_eq!(attr(dump, "dtc.action.pid"), Some(json!(pid)));
    assert_eq!(text(dump, "dtc.action.status"), "written", "{dump:?}");
    let path = PathBuf::from(text(dump, "dtc.action.path"));
    assert!(path.starts_with(dir.join("spool")), "{path:?}");
    assert!(
        path.to_string_lossy().ends_with(&format!("{pid}.core")),
        "{path:?}"
    );
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    assert!(body(dump).contains(&path.display().to_string()));
    let counts = &status["actions"]["memory_dump"];
    assert_eq!(counts["written"], 1, "{status:#}");
    assert_eq!(counts["refused"], 1, "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_over_a_budget_are_refused_and_announced() {
    let events = sample_events(&root().join("samples/06-verify-hash/verify_hash.events.jsonl"));
    type Edit<'a> = &'a dyn Fn(String) -> String;
    let cases: [(&str, Edit, &str, &str); 2] = [
        (
            "spool_budget",
            &|c: String| c.replace("dir = \"spool\"", "dir = \"spool\"\nmax_disk = \"16B\""),
            "spool disk",
            "16 bytes",
        ),
        (
            "hourly_cap",
            &|c: String| {
                format!("{c}[actions]\nhourly_caps = {{ \"flight_recorder.snapshot\" = 0 }}\n")
            },
            "hourly cap",
            "0 per 1h",
        ),
    ];
    for (name, config, budget, limit) in cases {
        let (agent, downstream, dir) =
            start(name, "samples/06-verify-hash/verify_hash.dt", config).await;
        send(&agent, &events).await;
        assert!(
            downstream
                .wait(Duration::from_secs(10), |d| !action_records(d).is_empty())
                .await
        );
        let status = status_when(&agent, |s| s["programs"][0]["actions_refused"] == 1).await;
        agent.stop();
        let record = &action_records(&downstream)[0];
        assert_eq!(text(record, "dtc.action.status"), "refused", "{record:?}");
        assert_eq!(text(record, "dtc.action.budget"), budget, "{record:?}");
        assert!(
            text(record, "dtc.action.limit").contains(limit),
            "{record:?}"
        );
        assert!(body(record).contains("refused by the"), "{record:?}");
        assert_eq!(record.severity_number, 13);
        assert!(
            spool_files(&dir).is_empty(),
            "{name}: {:?}",
            spool_files(&dir)
        );
        let counts = &status["actions"]["flight_recorder.snapshot"];
        assert_eq!(
            (&counts["fired"], &counts["refused"]),
            (&json!(1), &json!(1)),
            "{status:#}"
        );
        assert_eq!(status["counters"]["actions_refused"], 1, "{status:#}");
        assert_eq!(status["programs"][0]["state"], "running", "{status:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_lets_suppressed_debug_events_through_and_flushes_the_recorder() {
    let (agent, downstream) = start_verbose("verbose", |c| c).await;
    let event = |name: &str, step: i64, severity: i64| {
        let line = json!({
            "event": name, "time": 1_795_341_600_000_000_000i64 + step * 1_000_000,
            "severity": severity, "step": step, "code": step,
        });
        dtc_engine::event::from_flat_json(line).unwrap()
    };
    let before = [
        event("Debugging", 1, 5),
        event("Debugging", 2, 6),
        event("Failure", 3, 17),
    ];
    send(&agent, &before).await;
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| !action_records(d).is_empty())
            .await
    );
    // From the next batch on: debug (1-8) passes unchanged; INFO and
    // unspecified severities are still suppressed.
    let after = [
        event("Debugging", 4, 5),
        event("Debugging", 5, 9),
        event("Debugging", 6, 0),
        event("Debugging", 7, 1),
    ];
    send(&agent, &after).await;
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| d.forwarded().len() >= 3)
            .await
    );
    let status = status_when(&agent, |s| s["programs"][0]["verbose_passed"] == 2).await;
    agent.stop();
    let forwarded: Vec<Json> = downstream.forwarded_flat();
    let steps: Vec<&Json> = forwarded.iter().map(|e| &e["step"]).collect();
    assert_eq!(steps, [&json!(3), &json!(4), &json!(7)], "{forwarded:#?}");
    assert_eq!(forwarded[1], to_flat_json(&after[0]), "unchanged");
    assert_eq!(status["programs"][0]["verbose_passed"], 2, "{status:#}");
    let record = &action_records(&downstream)[0];
    assert_eq!(text(record, "dtc.action.status"), "verbose");
    assert!(attr(record, "dtc.action.until").is_some());
    // The recorder, flushed: what the program saw up to the failure.
    let path = PathBuf::from(text(record, "dtc.action.path"));
    let lines = read_jsonl(&path);
    let expected: Vec<Json> = before.iter().map(to_flat_json).collect();
    assert_eq!(lines, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_holding_more_than_its_memory_budget_is_disabled() {
    // The program's analysed state is tiny; the events it keeps for its
    // flight recorder are not.
    let (agent, downstream) = start_verbose("memory", |c| {
        assert!(c.contains("[budgets]\n"));
        c.replace("[budgets]\n", "[budgets]\nmemory = \"4KiB\"\n")
    })
    .await;
    let big = |step: i64| {
        dtc_engine::event::from_flat_json(json!({
            "event": "Debugging", "time": 1_795_341_600_000_000_000i64 + step,
            "severity": 5, "step": step, "body": "x".repeat(1000),
        }))
        .unwrap()
    };
    send(&agent, &[big(1), big(2)]).await;
    let status = status_when(&agent, |s| s["programs"][0]["events"] == 2).await;
    assert_eq!(status["programs"][0]["state"], "running", "{status:#}");
    send(&agent, &(3..10).map(big).collect::<Vec<_>>()).await;
    let status = status_when(&agent, |s| s["programs"][0]["state"] == "disabled").await;
    agent.stop();
    let reason = status["programs"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("budget memory exceeded: an estimated "),
        "{status:#}"
    );
    assert!(
        reason.contains("bytes of recorded events), budget 4096 bytes, over by"),
        "{reason}"
    );
    let trip = downstream
        .agent_record("dtc.budget_exceeded")
        .expect("a record says which budget tripped");
    assert_eq!(attr(&trip, "dtc.budget"), Some(json!("memory")));
}
