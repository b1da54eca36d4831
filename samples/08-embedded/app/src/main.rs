//! `embedded-demo`: a small shop that logs through the OpenTelemetry Rust
//! SDK with the dtc processor (`dtc-otel`) in its pipeline, running the
//! redaction sample `samples/08-embedded/embedded.dt` in-process.
//!
//! ```text
//! embedded-demo [PROGRAM.dt | ARTIFACT.dtx]
//! ```
//!
//! A `.dt` program is compiled at start (check, lower, verify, encode as
//! `dtc compile` does); a `.dtx` artifact is loaded as it is. Either way the
//! processor decodes and verifies the artifact before anything runs.
//!
//! The shop logs the events of `embedded.events.jsonl` (same names, fields
//! and times: the records carry the times of the sample, so the output is
//! the same on every run). The exporter keeps what reaches it in memory and
//! the demo prints it, one JSON line per record (the shop's, then the
//! program's), then the derived metric points, then the processor's
//! counters: the banner with the API key is absent, e-mail addresses are
//! hashed, card numbers masked, client addresses gone, and a large declined
//! payment adds a derived log and a report of the action the program
//! triggered.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dtc_otel::mapping::record_json;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLoggerProvider, SimpleLogProcessor};
use serde_json::{Value as Json, json};

/// Keeps every exported record, as JSON with its scope's name.
#[derive(Debug, Clone, Default)]
struct MemoryExporter {
    records: Arc<Mutex<Vec<Json>>>,
}

impl LogExporter for MemoryExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for (record, scope) in batch.iter() {
            records.push(json!({ "scope": scope.name(), "record": record_json(record) }));
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded.dt");
    let path = std::env::args_os().nth(1).map_or(default, PathBuf::from);
    match run(&path) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the shop with the program or artifact at `path`; the lines to
/// print.
fn run(path: &Path) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let artifact = if bytes.starts_with(dtc_artifact::MAGIC) {
        bytes
    } else {
        compile(path)?
    };
    let exporter = MemoryExporter::default();
    let points = Arc::new(Mutex::new(Vec::new()));
    let sink = points.clone();
    let processor = dtc_otel::Builder::new()
        .artifact(&path.display().to_string(), &artifact)
        .map_err(|e| e.to_string())?
        .on_metric(move |point| {
            // The engine's own JSON form of a metric point, as `dtc run` prints it.
            let json = dtc_engine::Output::Metric {
                name: point.name.clone(),
                labels: point.labels.clone(),
                value: point.value.clone(),
                start: point.start,
                end: point.end,
            }
            .to_json();
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(json);
        })
        .build(SimpleLogProcessor::new(exporter.clone()))
        .map_err(|e| e.to_string())?;
    let stats = processor.stats_handle();
    let provider = SdkLoggerProvider::builder()
        .with_resource(Resource::builder_empty().with_service_name("shop").build())
        .with_log_processor(processor)
        .build();
    shop(&provider);
    provider
        .shutdown()
        .map_err(|e| format!("the logger provider did not shut down cleanly: {e}"))?;

    let mut lines: Vec<String> = Vec::new();
    let mut records = exporter
        .records
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    // The shop's records, then the program's: each in the order it left.
    // (The program's come from the processor's engine thread, so how the
    // two interleave depends on timing.)
    records.sort_by_key(|r| r["scope"] != "shop");
    lines.extend(records.iter().map(Json::to_string));
    let points = points.lock().unwrap_or_else(|p| p.into_inner());
    lines.extend(points.iter().map(Json::to_string));
    let s = stats.stats();
    lines.push(
        json!({
            "records": s.records, "passed": s.passed, "suppressed": s.suppressed,
            "rewritten": s.rewritten, "derived_logs": s.derived_logs,
            "action_reports": s.action_reports, "metric_points": s.metric_points,
            "malformed": s.malformed, "schema_mismatches": s.schema_mismatches,
        })
        .to_string(),
    );
    Ok(lines)
}

/// 2026-11-22T10:00:00Z, the start of the sample's events.
const START: u64 = 1_795_341_600;

/// The shop's logging: each call is what an application does with the
/// OpenTelemetry logs API, with the sample's times.
fn shop(provider: &SdkLoggerProvider) {
    let logger = provider.logger("shop");
    let log = |at: u64,
               name: &'static str,
               severity: Option<Severity>,
               body: Option<&'static str>,
               attributes: &[(&'static str, AnyValue)]| {
        let mut record = logger.create_log_record();
        record.set_event_name(name);
        record.set_timestamp(UNIX_EPOCH + Duration::from_secs(START + at));
        record.set_observed_timestamp(SystemTime::now());
        if let Some(severity) = severity {
            record.set_severity_number(severity);
            record.set_severity_text(severity.name());
        }
        if let Some(body) = body {
            record.set_body(AnyValue::from(body));
        }
        for (key, value) in attributes {
            record.add_attribute(*key, value.clone());
        }
        logger.emit(record);
    };
    let text = |s: &'static str| AnyValue::from(s);
    log(0, "LogLaunch", None, None, &[("version", text("2.4.0"))]);
    log(
        1,
        "LogWelcomeBanner",
        None,
        None,
        &[
            ("secret", text("sk_live_4f9a2c61d0b7e385a1c4")),
            ("version", text("2.4.0")),
            ("time", text("2026-11-22 10:00:01")),
        ],
    );
    let sign_in = |at, email, client, plan| {
        log(
            at,
            "UserSignedIn",
            Some(Severity::Info),
            None,
            &[
                ("email", text(email)),
                ("client.address", text(client)),
                ("plan", text(plan)),
            ],
        );
    };
    let declined = |at, email, card, cents: i64| {
        log(
            at,
            "PaymentDeclined",
            Some(Severity::Warn),
            Some("card declined"),
            &[
                ("email", text(email)),
                ("card", text(card)),
                ("amount_cents", AnyValue::Int(cents)),
            ],
        );
    };
    sign_in(5, "alice@example.com", "203.0.113.7", "pro");
    sign_in(12, "bob@example.com", "198.51.100.23", "free");
    declined(20, "alice@example.com", "4111111111111111", 2500);
    declined(31, "bob@example.com", "5500000000000004", 125_000);
    sign_in(47, "alice@example.com", "203.0.113.7", "pro");
    sign_in(65, "carol@example.com", "192.0.2.44", "pro");
}

/// Compiles a `.dt` program to artifact bytes, as `dtc compile` does:
/// check (with the risk report), lower, verify, encode.
fn compile(path: &Path) -> Result<Vec<u8>, String> {
    let out = dtc_driver::Session::new(dtc_driver::RealFs)
        .check_path(path)
        .map_err(|e| e.to_string())?;
    if out.has_errors() {
        let text = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, false);
        return Err(format!("`{}` has errors:\n{text}", path.display()));
    }
    match out.artifact(env!("CARGO_PKG_VERSION")) {
        Some(Ok(bytes)) => Ok(bytes),
        _ => Err(format!(
            "`{}`: the program's IR does not verify",
            path.display()
        )),
    }
}
