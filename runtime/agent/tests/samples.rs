//! The agent against the reference semantics: a sample program compiled to
//! an artifact runs in the real `dtc-agent`, the sample's events are sent
//! over OTLP (gRPC, HTTP protobuf with gzip, HTTP JSON), and what reaches a
//! fake downstream collector must be what the reference interpreter
//! (`Engine::json_lines`, i.e. `dtc run --until-end`) gives for the same
//! events: the same egress in the same order (suppressed events absent,
//! redacted fields hashed), the same derived logs, the same metric values.

mod common;

use common::*;
use dtc_engine::event::to_flat_json;
use serde_json::{Value as Json, json};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProtobufGzip,
    HttpJson,
}

async fn check_sample(name: &str, source: &str, events: &str, transport: Transport) {
    check_sample_with(name, source, events, transport, None, "jit").await;
}

/// `check_sample` with a secret hash key (`redaction.hash_key_file`) given
/// to the agent and to the reference run, and the agent's programs on
/// `engine` (`artifacts.engine`).
async fn check_sample_with(
    name: &str,
    source: &str,
    events: &str,
    transport: Transport,
    hash_key: Option<(u64, u64)>,
    engine: &str,
) -> Vec<Json> {
    let dir = temp_dir(name);
    let mut extra = "[telemetry]\ninterval = \"0s\"\n".to_string();
    let mut options = dtc_engine::Options::default();
    if let Some(key) = hash_key {
        write_secret(
            &dir.join("hash.key"),
            &format!("{:016x}{:016x}\n", key.0, key.1),
        );
        extra.push_str("[redaction]\nhash_key_file = \"hash.key\"\n");
        options.hash_key = key;
    }
    let artifact = compile(&root().join(source));
    install(&dir.join("programs"), "a.dtx", &artifact);
    let program = dtc_artifact::decode(&artifact).unwrap().program;
    let downstream = Downstream::start().await;
    let config = config_text(downstream.addr, &extra).replace(
        "[artifacts]\n",
        &format!("[artifacts]\nengine = \"{engine}\"\n"),
    );
    let agent = Agent::start(&dir, &config);
    let events = sample_events(&root().join(events));
    assert!(events.len() > 20);
    let mut client = agent.grpc_client().await;
    for chunk in events.chunks(7) {
        let request = request(chunk);
        match transport {
            Transport::Grpc => {
                client.export(request).await.unwrap();
            }
            Transport::HttpProtobufGzip => {
                use prost::Message;
                let body = request.encode_to_vec();
                let status = http_post(agent.http, body, "application/x-protobuf", true).await;
                assert_eq!(status, 200);
            }
            Transport::HttpJson => {
                let body = serde_json::to_vec(&request).unwrap();
                assert_eq!(
                    http_post(agent.http, body, "application/json", false).await,
                    200
                );
            }
        }
    }
    // Published once the program is loaded (compiled, for the JIT: slow
    // in a debug build); the events sent wait for it in the queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = agent.status();
        if !status["programs"][0].is_null() || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["programs"][0]["engine"], engine, "{status}");
    let stderr = agent.stop();
    assert!(!stderr.contains("disabled"), "{stderr}");
    assert!(stderr.contains("programs: [a.dtx]"), "{stderr}");

    // The reference run over the same events.
    let input: String = events
        .iter()
        .map(|e| to_flat_json(e).to_string() + "\n")
        .collect();
    let reference = dtc_engine::Engine::json_lines(program, options, &input);
    let (mut egress, mut logs, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
    for line in reference.lines() {
        let mut out: Json = serde_json::from_str(line).unwrap();
        match out["kind"].as_str() {
            Some("egress") => egress.push(out["event"].take()),
            Some("log") => logs
                .push(json!({"name": out["name"], "time": out["time"], "fields": out["fields"]})),
            Some("metric") => {
                out.as_object_mut().unwrap().remove("kind");
                metrics.push(out.to_string());
            }
            _ => {}
        }
    }
    let unshaped: Vec<Json> = events.iter().map(to_flat_json).collect();
    assert_ne!(egress, unshaped, "the sample shapes nothing");
    assert_eq!(
        !metrics.is_empty(),
        !source.contains("03-secret"),
        "{metrics:?}"
    );
    assert_eq!(
        !logs.is_empty(),
        source.contains("01-file-hashing"),
        "{logs:?}"
    );

    let got_egress = downstream.forwarded_flat();
    assert_eq!(got_egress.len(), egress.len(), "{transport:?}");
    for (got, want) in got_egress.iter().zip(&egress) {
        assert_eq!(got, want, "{transport:?}");
    }
    let got_logs: Vec<Json> = downstream
        .agent_records()
        .into_iter()
        .filter(|(scope, _)| scope != "dtc-agent")
        .map(|(_, r)| {
            let fields: serde_json::Map<String, Json> = r
                .attributes
                .iter()
                .map(|kv| (kv.key.clone(), attr(&r, &kv.key).unwrap()))
                .collect();
            json!({"name": r.event_name, "time": dtc_engine::event::format_time(r.time_unix_nano as i64), "fields": fields})
        })
        .collect();
    assert_eq!(got_logs, logs);
    let mut got_metrics: Vec<String> = downstream
        .metrics()
        .iter()
        .filter(|(scope, _)| scope != "dtc-agent")
        .flat_map(|(_, m)| metric_points(m))
        .map(|p| p.to_string())
        .collect();
    got_metrics.sort();
    metrics.sort();
    assert_eq!(got_metrics, metrics);
    got_egress
}

/// Writes a file only its owner may read, as a secret key must be.
fn write_secret(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// With a secret hash key the redacted file names are the reference's
/// under that key, and differ from the public default key's, so they
/// cannot be confirmed by hashing a guess with the default key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_hash_key_changes_every_hashed_value() {
    let sample = (
        "samples/01-file-hashing/file_hashing.dt",
        "samples/01-file-hashing/file_hashing.events.jsonl",
    );
    let secret = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
    let keyed = check_sample_with(
        "hash_key",
        sample.0,
        sample.1,
        Transport::Grpc,
        Some(secret),
        "jit",
    )
    .await;
    let public = check_sample_with(
        "no_hash_key",
        sample.0,
        sample.1,
        Transport::Grpc,
        None,
        "jit",
    )
    .await;
    assert_eq!(keyed.len(), public.len());
    let names = |events: &[Json]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e["fileName"].as_str().map(String::from))
            .collect()
    };
    let (keyed, public) = (names(&keyed), names(&public));
    assert!(!keyed.is_empty());
    for (k, p) in keyed.iter().zip(&public) {
        assert_ne!(k, p, "a hashed file name is the same under both keys");
    }
}

/// Redaction (file names hashed), a state machine's derived logs, and
/// count, count_if and percentile metrics, over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_hashing_over_grpc_matches_the_reference() {
    check_sample(
        "file_hashing",
        "samples/01-file-hashing/file_hashing.dt",
        "samples/01-file-hashing/file_hashing.events.jsonl",
        Transport::Grpc,
    )
    .await;
}

/// The same on the interpreter (`artifacts.engine = "interpreter"`): the
/// other tests run the agent's default, the JIT, so both are held to the
/// reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_hashing_on_the_interpreter_matches_the_reference() {
    check_sample_with(
        "file_hashing_interpreted",
        "samples/01-file-hashing/file_hashing.dt",
        "samples/01-file-hashing/file_hashing.events.jsonl",
        Transport::Grpc,
        None,
        "interpreter",
    )
    .await;
}

/// A suppressed event (absent downstream) turned into a per-minute count,
/// over HTTP/protobuf with a gzip body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatty_event_over_http_gzip_matches_the_reference() {
    check_sample(
        "chatty",
        "samples/02-chatty-event/chatty_event.dt",
        "samples/02-chatty-event/chatty_event.events.jsonl",
        Transport::HttpProtobufGzip,
    )
    .await;
}

/// A dropped secret field, over OTLP/JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_field_over_http_json_matches_the_reference() {
    check_sample(
        "drop_field",
        "samples/03-secret/drop_field.dt",
        "samples/03-secret/drop_field.events.jsonl",
        Transport::HttpJson,
    )
    .await;
}

/// With no program, records leave exactly as they came, typed values,
/// scopes and flags included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_programs_records_pass_through_unchanged() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let dir = temp_dir("passthrough");
    let downstream = Downstream::start().await;
    let agent = Agent::start(
        &dir,
        &config_text(downstream.addr, "[telemetry]\ninterval = \"0s\"\n"),
    );
    let sent = vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: "app".into(),
                ..InstrumentationScope::default()
            }),
            log_records: vec![LogRecord {
                event_name: "E".into(),
                flags: 1,
                dropped_attributes_count: 3,
                body: Some(AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0, 255])),
                }),
                attributes: vec![kv("n", json!(1)), kv("list", json!([1, "a"]))],
                ..LogRecord::default()
            }],
            ..ScopeLogs::default()
        }],
        ..ResourceLogs::default()
    }];
    let mut client = agent.grpc_client().await;
    client
        .export(
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
                resource_logs: sent.clone(),
            },
        )
        .await
        .unwrap();
    assert!(
        downstream
            .wait(Duration::from_secs(10), |d| !d.forwarded().is_empty())
            .await
    );
    assert_eq!(downstream.received.lock().unwrap().logs, sent);
    agent.stop();
}
