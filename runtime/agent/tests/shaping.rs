//! Shaping applied to the received records in place, where the record's
//! place is not enough: an edit of the resource (`redact E.service`), which
//! the record shares with its neighbours, gives that record a resource of
//! its own, and the next program in the chain reads the edited one.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value as Json, json};

/// The `service.name` of a resource, if it has one.
fn service(resource: &Option<Resource>) -> Option<Json> {
    let kv = resource
        .as_ref()?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")?;
    Some(
        kv.value
            .as_ref()
            .map_or(Json::Null, dtc_engine::event::otlp_proto::any_value),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_edit_gives_the_record_a_resource_of_its_own() {
    let dir = temp_dir("resource-edit");
    let programs = dir.join("programs");
    // The first program hashes the service of banners; the second one
    // suppresses the banners of the service `shop`: it must read the
    // service as the first one left it, so the banner passes.
    let first = dir.join("a.dt");
    std::fs::write(
        &first,
        "event LogWelcomeBanner {\n    secret: string,\n}\n\nredact LogWelcomeBanner.service with hash\n",
    )
    .unwrap();
    let second = dir.join("b.dt");
    std::fs::write(
        &second,
        "event LogWelcomeBanner {\n    secret: string,\n}\n\nsuppress LogWelcomeBanner when service == \"shop\"\n",
    )
    .unwrap();
    install(&programs, "a.dtx", &compile(&first));
    install(&programs, "b.dtx", &compile(&second));
    let downstream = Downstream::start().await;
    let agent = Agent::start(&dir, &config_text(downstream.addr, ""));
    let record = |name: &str, seq: i64| LogRecord {
        time_unix_nano: 1_795_341_600_000_000_000 + seq as u64,
        event_name: name.into(),
        attributes: vec![
            dtc_agent::convert::key_value("secret", &json!("hunter2")),
            dtc_agent::convert::key_value("seq", &json!(seq)),
        ],
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![dtc_agent::convert::key_value(
                    "service.name",
                    &json!("shop"),
                )],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![record("LogLaunch", 0), record("LogWelcomeBanner", 1)],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    agent.grpc_client().await.export(request).await.unwrap();
    let arrived = |d: &Downstream| d.forwarded().len() == 2;
    assert!(downstream.wait(Duration::from_secs(10), arrived).await);
    let logs = downstream.received.lock().unwrap().logs.clone();
    let by_event: Vec<(String, Option<Json>)> = logs
        .iter()
        .flat_map(|rl| {
            rl.scope_logs
                .iter()
                .flat_map(|sl| &sl.log_records)
                .map(|r| (r.event_name.clone(), service(&rl.resource)))
        })
        .filter(|(name, _)| name.starts_with("Log"))
        .collect();
    let launch = by_event.iter().find(|(n, _)| n == "LogLaunch").unwrap();
    assert_eq!(launch.1, Some(json!("shop")), "{by_event:?}");
    let banner = by_event
        .iter()
        .find(|(n, _)| n == "LogWelcomeBanner")
        .unwrap();
    let hashed = banner.1.clone().expect("a service, hashed");
    assert_ne!(hashed, json!("shop"), "{by_event:?}");
    let stderr = agent.stop();
    assert!(stderr.contains("programs: [a.dtx, b.dtx]"), "{stderr}");
}
