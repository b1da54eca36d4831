//! What the embedded processor costs the application per log record: the
//! same OpenTelemetry SDK pipeline (a logger provider, a
//! `SimpleLogProcessor`, an exporter that only counts) measured in one run
//! without the dtc processor (the baseline), with it running a program that
//! handles none of the records (the cost of the mapping and the trip to the
//! engine thread), and with it running the redaction sample
//! (`samples/08-embedded/embedded.dt`: hashes, masks, drops, a query, a
//! processor). The records are the sample's kinds: sign-ins, declined
//! payments, banners (suppressed). A row runs the sample's shaping rules
//! alone (no query, no processor), so nothing goes to the engine thread.
//!
//! Run with `cargo bench -p dtc-otel` (`DTC_BENCH_RECORDS` sets how many
//! records, 100,000 by default; best of 3). Absolute numbers on a shared
//! machine are noise; the ratios against the baseline are the result.
//!
//! The last row adds a second program with a `limit` rule, whose answer
//! depends on every record before: that puts the processor in asked mode,
//! where every record waits for the engine thread's verdict.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter, LogProcessor, SdkLoggerProvider, SimpleLogProcessor,
};

/// Counts what it is given, as cheaply as an exporter can.
#[derive(Debug, Clone, Default)]
struct Count(Arc<AtomicU64>);

impl LogExporter for Count {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.0
            .fetch_add(batch.iter().count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn artifact(path: &Path) -> Vec<u8> {
    let out = dtc_driver::Session::new(dtc_driver::RealFs)
        .check_path(path)
        .expect("readable");
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    out.artifact("bench").expect("checked").expect("verifies")
}

/// Logs `n` records through `provider`; returns how long it took.
fn log(provider: &SdkLoggerProvider, n: u64) -> Duration {
    let logger = provider.logger("shop");
    let start = UNIX_EPOCH + Duration::from_secs(1_795_341_600);
    let emails = ["alice@example.com", "bob@example.com", "carol@example.com"];
    let began = Instant::now();
    for i in 0..n {
        let mut r = logger.create_log_record();
        r.set_timestamp(start + Duration::from_millis(i));
        let email = emails[(i % 3) as usize];
        match i % 10 {
            0 => {
                r.set_event_name("LogWelcomeBanner");
                r.add_attribute("secret", "sk_live_4f9a2c61d0b7e385a1c4");
                r.add_attribute("version", "2.4.0");
            }
            1..=3 => {
                r.set_event_name("PaymentDeclined");
                r.set_severity_number(Severity::Warn);
                r.set_body(AnyValue::from("card declined"));
                r.add_attribute("email", email);
                r.add_attribute("card", "4111111111111111");
                r.add_attribute("amount_cents", (i % 200_000) as i64);
            }
            _ => {
                r.set_event_name("UserSignedIn");
                r.set_severity_number(Severity::Info);
                r.add_attribute("email", email);
                r.add_attribute("client.address", "203.0.113.7");
                r.add_attribute("plan", if i % 2 == 0 { "pro" } else { "free" });
            }
        }
        logger.emit(r);
    }
    began.elapsed()
}

/// Best time of three runs of `n` records through a fresh pipeline each.
fn measure<P: LogProcessor + 'static>(n: u64, make: impl Fn(Count) -> P) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut exported = 0;
    for _ in 0..3 {
        let count = Count::default();
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(make(count.clone()))
            .build();
        best = best.min(black_box(log(&provider, n)));
        let _ = provider.shutdown();
        exported = count.0.load(Ordering::Relaxed);
    }
    (best, exported)
}

fn main() {
    let n: u64 = std::env::var("DTC_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sample = artifact(&root.join("samples/08-embedded/embedded.dt"));
    let source = |name: &str, text: &str| {
        let dir = std::env::temp_dir().join(format!("dtc-otel-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        let bytes = artifact(&path);
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    };
    let unrelated = source(
        "unrelated.dt",
        "event Unrelated { x: int }\nsuppress Unrelated\n",
    );
    let shaping = source(
        "shaping.dt",
        "event LogWelcomeBanner { secret: string @secret, version: string }\n\
         event UserSignedIn { email: string @pii, client: string @pii @attr(\"client.address\"), plan: string }\n\
         event PaymentDeclined { email: string @pii, card: string @pii, amount_cents: int }\n\
         suppress LogWelcomeBanner\n\
         redact UserSignedIn.email with hash\n\
         redact UserSignedIn.client with drop\n\
         redact PaymentDeclined.email with hash\n\
         redact PaymentDeclined.card with mask\n",
    );
    let limit = source(
        "limit.dt",
        "event LogLaunch { version: string }\nlimit LogLaunch 100 per 1s\n",
    );
    let dtc = |artifacts: &[&[u8]], count: Count| {
        let mut builder = dtc_otel::Builder::new();
        for bytes in artifacts {
            builder = builder.artifact("bench", bytes).expect("loads");
        }
        builder
            .build(SimpleLogProcessor::new(count))
            .expect("builds")
    };
    let (base, base_out) = measure(n, SimpleLogProcessor::new);
    let (pass, pass_out) = measure(n, |c| dtc(&[&unrelated], c));
    if std::env::var_os("DTC_BENCH_FIRST_ONLY").is_some() {
        println!(
            "baseline {:?}, unrelated {:?}",
            base / n as u32,
            pass / n as u32
        );
        return;
    }
    let (shaped, shaped_out) = measure(n, |c| dtc(&[&shaping], c));
    let (redact, redact_out) = measure(n, |c| dtc(&[&sample], c));
    let (asked, asked_out) = measure(n, |c| dtc(&[&sample, &limit], c));
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!("{n} records, best of 3 (release build recommended)");
    println!("| pipeline | ns/record | records/s | exported | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for (name, d, out) in [
        ("SDK alone (baseline)", base, base_out),
        ("dtc, a program that handles none of them", pass, pass_out),
        ("dtc, the sample's shaping rules alone", shaped, shaped_out),
        (
            "dtc, the redaction sample (shaping, a query, a processor)",
            redact,
            redact_out,
        ),
        (
            "dtc, the sample and a `limit` program (asked mode)",
            asked,
            asked_out,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {out} | {:.1}x |",
            per(d),
            n as f64 / d.as_secs_f64(),
            per(d) / per(base)
        );
    }
}
