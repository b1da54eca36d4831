//! The processor in a real SDK pipeline: a logger provider, the dtc
//! processor around a `SimpleLogProcessor`, and an exporter that keeps what
//! reaches it. Programs are compiled from source here, encoded as `.dtx`
//! and loaded through `dtc_artifact::decode`, as an application loads them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use dtc_otel::mapping::record_json;
use dtc_otel::{Builder, DtcLogProcessor, MetricPoint, StatsHandle};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{Key, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter, SdkLogRecord, SdkLoggerProvider, SimpleLogProcessor,
};
use serde_json::{Value as Json, json};

#[derive(Debug, Clone, Default)]
struct Memory(Arc<Mutex<Vec<Json>>>);

impl LogExporter for Memory {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (record, scope) in batch.iter() {
            let mut json = record_json(record);
            json["scope"] = json!(scope.name());
            kept.push(json);
        }
        Ok(())
    }
}

impl Memory {
    fn take(&self) -> Vec<Json> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A program's artifact bytes, compiled from source.
fn artifact(name: &str, source: &str) -> Vec<u8> {
    let out = dtc_driver::Session::new(dtc_driver::MemoryFs::new()).check_source(name, source);
    assert!(
        !out.has_errors(),
        "{name} has errors: {:?}",
        out.diagnostics
    );
    out.artifact("test").expect("checked").expect("verifies")
}

const REDACT: &str = r#"
event UserSignedIn {
    email: string @pii,
    client: string @pii @attr("client.address"),
    plan: string,
}

event LogWelcomeBanner {
    secret: string @secret,
}

suppress LogWelcomeBanner
redact UserSignedIn.email with hash
redact UserSignedIn.client with drop

query sign_ins =
    UserSignedIn
    | summarize n = count() by plan max 10 every 1m
    | emit metric "shop.sign_ins"
"#;

struct Pipeline {
    provider: SdkLoggerProvider,
    memory: Memory,
    stats: StatsHandle,
}

fn pipeline(builder: Builder) -> Pipeline {
    let memory = Memory::default();
    let processor: DtcLogProcessor<_> = builder
        .build(SimpleLogProcessor::new(memory.clone()))
        .expect("builds");
    let stats = processor.stats_handle();
    let provider = SdkLoggerProvider::builder()
        .with_log_processor(processor)
        .build();
    Pipeline {
        provider,
        memory,
        stats,
    }
}

fn redact_pipeline() -> Pipeline {
    pipeline(
        Builder::new()
            .artifact("redact.dt", &artifact("redact.dt", REDACT))
            .expect("loads"),
    )
}

/// Logs one record at `secs` after the epoch, built by `fill`.
fn log(provider: &SdkLoggerProvider, secs: u64, fill: impl FnOnce(&mut SdkLogRecord)) {
    let logger = provider.logger("app");
    let mut record = logger.create_log_record();
    record.set_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
    fill(&mut record);
    logger.emit(record);
}

fn sign_in(provider: &SdkLoggerProvider, secs: u64, email: &'static str, plan: &'static str) {
    log(provider, secs, |r| {
        r.set_event_name("UserSignedIn");
        r.add_attribute("email", email);
        r.add_attribute("client.address", "203.0.113.7");
        r.add_attribute("plan", plan);
    });
}

#[test]
fn suppressed_records_are_absent_and_redacted_fields_never_reach_the_exporter() {
    let p = redact_pipeline();
    log(&p.provider, 1, |r| {
        r.set_event_name("LogWelcomeBanner");
        r.add_attribute("secret", "sk_live_1");
    });
    sign_in(&p.provider, 2, "alice@example.com", "pro");
    log(&p.provider, 3, |r| {
        r.set_event_name("LogLaunch");
        r.set_severity_number(Severity::Info);
        r.add_attribute("raw", AnyValue::Bytes(Box::new(vec![0xff, 0xfe])));
    });
    assert_eq!(
        p.memory.take(),
        vec![
            json!({"event_name": "UserSignedIn", "time": "1970-01-01T00:00:02Z", "scope": "app",
                   "attributes": {"email": "e0403f0f760abdd2", "plan": "pro"}}),
            json!({"event_name": "LogLaunch", "time": "1970-01-01T00:00:03Z", "scope": "app", "severity": 9,
                   "attributes": {"raw": "//4="}}),
        ]
    );
    let s = p.stats.stats();
    assert_eq!(
        (s.records, s.passed, s.suppressed, s.rewritten),
        (3, 2, 1, 1)
    );
}

#[test]
fn a_record_that_does_not_match_its_schema_passes_unchanged_and_is_counted() {
    let p = redact_pipeline();
    // `plan` is missing and `email` is not a string.
    log(&p.provider, 1, |r| {
        r.set_event_name("UserSignedIn");
        r.add_attribute("email", 42_i64);
    });
    assert_eq!(
        p.memory.take(),
        vec![
            json!({"event_name": "UserSignedIn", "time": "1970-01-01T00:00:01Z", "scope": "app",
                    "attributes": {"email": 42}})
        ]
    );
    let s = p.stats.stats();
    assert_eq!((s.passed, s.schema_mismatches), (1, 1));
    assert!(
        s.last_problem
            .expect("a problem")
            .contains("does not match its schema")
    );
}

#[test]
fn a_record_whose_time_is_not_an_event_time_passes_unchanged_and_is_counted() {
    let p = redact_pipeline();
    log(&p.provider, 10_000_000_000, |r| {
        r.set_event_name("LogWelcomeBanner");
    });
    let out = p.memory.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["event_name"], json!("LogWelcomeBanner"));
    let s = p.stats.stats();
    assert_eq!((s.passed, s.malformed, s.suppressed), (1, 1, 0));
}

#[test]
fn odd_records_do_not_panic() {
    let p = redact_pipeline();
    // No event name, no time, nothing.
    log(&p.provider, 0, |_| {});
    // A huge body.
    log(&p.provider, 1, |r| {
        r.set_body(AnyValue::from("x".repeat(4 << 20)))
    });
    // A body of bytes that are not UTF-8.
    log(&p.provider, 2, |r| {
        r.set_body(AnyValue::Bytes(Box::new(vec![0xc3, 0x28, 0xa0, 0xa1])))
    });
    // Nested maps and lists, a key given twice, an empty key, odd doubles.
    log(&p.provider, 3, |r| {
        r.set_event_name("UserSignedIn");
        let mut inner = std::collections::HashMap::new();
        inner.insert(
            Key::from("deep"),
            AnyValue::ListAny(Box::new(vec![AnyValue::Double(f64::NEG_INFINITY)])),
        );
        let mut outer = std::collections::HashMap::new();
        outer.insert(Key::from("inner"), AnyValue::Map(Box::new(inner)));
        r.add_attribute("map", AnyValue::Map(Box::new(outer)));
        r.add_attribute("email", "a@example.com");
        r.add_attribute("email", "b@example.com");
        r.add_attribute("", f64::NAN);
        r.add_attribute("client.address", "x");
        r.add_attribute("plan", "pro");
    });
    sign_in(&p.provider, 4, "b@example.com", "pro");
    let out = p.memory.take();
    assert_eq!(out.len(), 5);
    assert_eq!(out[1]["body"].as_str().map(str::len), Some(4 << 20));
    assert_eq!(out[2]["body"], json!("wyigoQ=="));
    // The later `email` is the event's, hashed; the map keeps its nesting.
    assert_eq!(out[3]["attributes"]["email"], out[4]["attributes"]["email"]);
    assert_ne!(out[3]["attributes"]["email"], json!("b@example.com"));
    assert_eq!(
        out[3]["attributes"]["map"],
        json!({"inner": {"deep": ["-Infinity"]}})
    );
    assert!(out[3]["attributes"].get("client.address").is_none());
    assert_eq!(p.stats.stats().passed, 5);
}

#[test]
fn artifacts_run_in_order_and_a_later_one_sees_the_earlier_ones_edits() {
    let count_hashed = r#"
event UserSignedIn { email: string @pii }
redact UserSignedIn.email with mask
query emails =
    UserSignedIn
    | summarize n = distinct_count(email) every 1m
    | emit metric "emails"
"#;
    let points = Arc::new(Mutex::new(Vec::<MetricPoint>::new()));
    let sink = points.clone();
    let builder = Builder::new()
        .artifact("redact.dt", &artifact("redact.dt", REDACT))
        .and_then(|b| b.artifact("mask.dt", &artifact("mask.dt", count_hashed)))
        .expect("loads")
        .on_metric(move |point| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(point.clone())
        });
    let p = pipeline(builder);
    sign_in(&p.provider, 1, "alice@example.com", "pro");
    p.provider.shutdown().expect("shuts down");
    let out = p.memory.take();
    // Hashed by the first, then masked by the second.
    assert_eq!(out[0]["attributes"]["email"], json!("************bdd2"));
    let points = points.lock().unwrap_or_else(|p| p.into_inner());
    let names: Vec<(&str, &str)> = points
        .iter()
        .map(|p| (p.program.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(names, vec![("redact", "shop.sign_ins"), ("mask", "emails")]);
}

#[test]
fn derived_logs_and_actions_are_new_records_in_the_programs_scope() {
    let source = r#"
event PaymentDeclined { amount_cents: int }
processor large {
    on PaymentDeclined when event.amount_cents >= 100 {
        emit log LargeDecline { cents: event.amount_cents } limit 10 per 1m
        trigger memory_dump() limit 1 per 1h
    }
}
"#;
    let p = pipeline(
        Builder::new()
            .artifact("large.dt", &artifact("large.dt", source))
            .expect("loads"),
    );
    for (secs, cents) in [(1, 50_i64), (2, 500), (3, 700)] {
        log(&p.provider, secs, |r| {
            r.set_event_name("PaymentDeclined");
            r.add_attribute("amount_cents", cents);
        });
    }
    // Derived records leave from the engine thread as soon as they are
    // made: a flush waits for them. Each stream keeps its order.
    p.provider.force_flush().expect("flushes");
    let out = p.memory.take();
    let names = |scope: &str| -> Vec<String> {
        out.iter()
            .filter(|r| r["scope"] == scope)
            .map(|r| r["event_name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names("app"), ["PaymentDeclined"; 3]);
    assert_eq!(
        names("large"),
        ["LargeDecline", "dtc.action", "LargeDecline", "dtc.action"]
    );
    let derived: Vec<&Json> = out.iter().filter(|r| r["scope"] == "large").collect();
    assert_eq!(derived[0]["attributes"], json!({"cents": 500}));
    assert_eq!(derived[1]["attributes"]["dtc.action.fired"], json!(true));
    assert_eq!(derived[1]["attributes"]["dtc.action.run"], json!(false));
    assert!(
        derived[1]["body"]
            .as_str()
            .unwrap_or("")
            .contains("does not run diagnostic actions")
    );
    assert_eq!(derived[3]["attributes"]["dtc.action.fired"], json!(false));
    let s = p.stats.stats();
    assert_eq!((s.derived_logs, s.action_reports), (4, 2));
}

#[test]
fn a_refused_artifact_refuses_the_whole_processor() {
    let good = artifact("redact.dt", REDACT);
    let mut corrupted = good.clone();
    let last = corrupted.len() - 40;
    corrupted[last] ^= 1;
    let cases: [(&[u8], &str); 3] = [
        (&corrupted, "the checksum does not match"),
        (&good[..20], "truncated"),
        (b"not an artifact", "not a dtc artifact"),
    ];
    for (bytes, expected) in cases {
        let err = Builder::new()
            .artifact("good.dtx", &good)
            .and_then(|b| b.artifact("bad.dtx", bytes))
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with("the artifact `bad.dtx` is refused: "),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
    }
    let err = Builder::new()
        .artifact_file("/nonexistent/x.dtx")
        .expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("cannot read the artifact `/nonexistent/x.dtx`"),
        "{err}"
    );
    let err = Builder::new()
        .build(SimpleLogProcessor::new(Memory::default()))
        .expect_err("refused");
    assert!(err.to_string().starts_with("no artifact to run"), "{err}");
}

#[test]
fn metrics_go_through_a_meter() {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

    /// A sum's point: metric name, attributes, value.
    type Point = (String, Vec<KeyValue>, u64);
    /// Keeps the sums it is given.
    #[derive(Clone, Default)]
    struct Sums(Arc<Mutex<Vec<Point>>>);
    impl PushMetricExporter for Sums {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            for scope in metrics.scope_metrics() {
                for metric in scope.metrics() {
                    if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                        for point in sum.data_points() {
                            let attributes = point.attributes().cloned().collect();
                            kept.push((metric.name().to_string(), attributes, point.value()));
                        }
                    }
                }
            }
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    let sums = Sums::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(sums.clone()).build())
        .build();
    let builder = Builder::new()
        .artifact("redact.dt", &artifact("redact.dt", REDACT))
        .expect("loads")
        .meter(meters.meter("dtc"));
    let p = pipeline(builder);
    sign_in(&p.provider, 1, "a@example.com", "pro");
    sign_in(&p.provider, 2, "b@example.com", "pro");
    sign_in(&p.provider, 3, "c@example.com", "free");
    // The next minute closes the first window.
    sign_in(&p.provider, 61, "d@example.com", "pro");
    p.provider.force_flush().expect("flushes");
    meters.force_flush().expect("flushes");
    let mut kept = sums.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    kept.sort_by(|a, b| format!("{:?}", a.1).cmp(&format!("{:?}", b.1)));
    assert_eq!(
        kept,
        vec![
            (
                "shop.sign_ins".to_string(),
                vec![KeyValue::new("plan", "free")],
                1
            ),
            (
                "shop.sign_ins".to_string(),
                vec![KeyValue::new("plan", "pro")],
                2
            ),
        ]
    );
    assert_eq!(p.stats.stats().metric_points, 2);
}

#[test]
fn many_threads_log_through_one_processor() {
    let p = redact_pipeline();
    let provider = &p.provider;
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            scope.spawn(move || {
                for i in 0..250 {
                    sign_in(provider, 1 + t * 1000 + i, "alice@example.com", "pro");
                }
            });
        }
    });
    let out = p.memory.take();
    assert_eq!(out.len(), 1000);
    assert!(
        out.iter()
            .all(|r| r["attributes"]["email"] == json!("e0403f0f760abdd2"))
    );
    let s = p.stats.stats();
    assert_eq!((s.records, s.passed, s.rewritten), (1000, 1000, 1000));
}

#[test]
fn a_limit_holds_across_threads_and_derived_logs_go_before_their_record() {
    // `limit` keeps state of its own, so every record asks the one engine
    // thread: the budget is the program's, not each thread's.
    let source = r#"
event UserSignedIn { email: string @pii, plan: string }
redact UserSignedIn.email with hash
limit UserSignedIn 5 per 1h
processor big {
    on UserSignedIn when event.plan == "enterprise" {
        emit log EnterpriseSignIn { plan: event.plan } limit 100 per 1h
    }
}
"#;
    let p = pipeline(
        Builder::new()
            .artifact("limited.dt", &artifact("limited.dt", source))
            .expect("loads"),
    );
    let provider = &p.provider;
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            scope.spawn(move || {
                for i in 0..10 {
                    sign_in(provider, 1 + t * 10 + i, "alice@example.com", "pro");
                }
            });
        }
    });
    assert_eq!(p.memory.take().len(), 5);
    let s = p.stats.stats();
    assert_eq!((s.records, s.passed, s.suppressed), (40, 5, 35));

    // A fresh budget an hour later; the derived log leaves first.
    sign_in(provider, 7200, "bob@example.com", "enterprise");
    let out = p.memory.take();
    let names: Vec<&str> = out
        .iter()
        .map(|r| r["event_name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["EnterpriseSignIn", "UserSignedIn"]);
    assert_eq!(out[0]["scope"], json!("limited"));
    assert_eq!(out[1]["attributes"]["email"], json!("bf826b799732812c"));
}

#[test]
fn a_mismatch_is_counted_also_for_an_event_no_rule_names() {
    // PaymentDeclined has no shaping rule: the record skips the shaping
    // engine, and is still checked against its schema.
    let source =
        "event PaymentDeclined { amount_cents: int }\nevent Other { x: int }\nsuppress Other\n";
    let p = pipeline(
        Builder::new()
            .artifact("p.dt", &artifact("p.dt", source))
            .expect("loads"),
    );
    log(&p.provider, 1, |r| {
        r.set_event_name("PaymentDeclined");
        r.add_attribute("amount_cents", "a lot");
    });
    log(&p.provider, 2, |r| {
        r.set_event_name("PaymentDeclined");
        r.add_attribute("amount_cents", 5_i64);
    });
    let out = p.memory.take();
    assert_eq!(out[0]["attributes"], json!({"amount_cents": "a lot"}));
    assert_eq!(out.len(), 2);
    let s = p.stats.stats();
    assert_eq!((s.passed, s.schema_mismatches), (2, 1));
}
