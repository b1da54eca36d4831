//! The agent's own work per record, in one process and one thread, with
//! no network: the wire path (`dtc_agent::wire`, what the agent does)
//! against decoding into prost's owned messages and encoding them again
//! (what it did before), measured in the same run on the same requests, so
//! the ratio holds on a busy machine where the end-to-end bench's CPU times
//! move by tens of percent.
//!
//! Steps, each on the redaction sample's stream (banners, 512 records per
//! request):
//! - pass-through: receive a request and build the export of it unchanged;
//! - ingress: the events the redaction sample reads (`LogWelcomeBanner`
//!   with its declared attributes), from the received request;
//! - egress: `secret` removed from every record, and the export built;
//! - pipeline: the agent's pipeline thread (`Pipeline::process`) on the
//!   received request, with no program and with the redaction sample
//!   loaded: ingress, the engine, egress and the export, all of that
//!   thread's work per record (no prost baseline: this is the agent);
//! - machine: the pipeline thread with the state-machine sample
//!   (`samples/01-file-hashing`) on its own stream of start and end of
//!   hash records, for its instruction count (`benches/callgrind/wire.sh
//!   machine TAG`).
//!
//! `cargo bench -p dtc-agent-bench --bench wire`. `DTC_WIRE_STEPS` (a
//! comma-separated list of `pass`, `ingress`, `egress`, `pipeline`,
//! `machine`: the state-machine sample on its stream, one run) runs
//! some of them, `DTC_WIRE_REQUESTS` (200) and `DTC_WIRE_RUNS` (5) change
//! the work. For instruction counts, build with the system allocator
//! (valgrind cannot run mimalloc) and count one step's functions:
//!
//! ```text
//! cargo bench -p dtc-agent-bench --bench wire --features system-alloc --no-run
//! DTC_WIRE_STEPS=pipeline DTC_WIRE_REQUESTS=20 DTC_WIRE_RUNS=1 valgrind --tool=callgrind \
//!     --toggle-collect='wire::step_*' target/release/deps/wire-<hash>
//! ```
//!
//! Each `step_*` function handles one request; the instructions it
//! collects divided by the records it handled (printed) is the number.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtc_agent::convert::{self, Names, Needs};
use dtc_agent::exporter::Item;
use dtc_agent::loader::Loaded;
use dtc_agent::pipeline::{Control, Pipeline};
use dtc_agent::receiver::Batch;
use dtc_agent::wire;
use dtc_engine::Edit;
use dtc_engine::event::otlp_proto;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use serde_json::Value as Json;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The best of `runs` runs of `f` over every request, per record.
fn per_record(requests: &[Bytes], runs: usize, mut f: impl FnMut(&Bytes)) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            for r in requests {
                f(r);
            }
            start.elapsed() / (BATCH * requests.len()) as u32
        })
        .min()
        .unwrap_or_default()
}

/// What the ingress and egress steps read and write: the redaction
/// sample's event, its declared keys, its one edit.
struct Redaction {
    needs: Needs,
    keys: Names,
    edits: [Edit; 1],
    none: BTreeMap<String, Json>,
}

#[inline(never)]
fn step_prost_pass(r: &Bytes) {
    let request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
    std::hint::black_box(request.encode_to_vec());
}

#[inline(never)]
fn step_wire_pass(r: &Bytes) {
    let request = wire::Request::parse(r.clone()).expect("valid");
    let mut out = Vec::with_capacity(r.len());
    request.assemble(&[], &wire::Edited::default(), &mut Vec::new(), |b, _| {
        wire::put_field(1, &b, &mut out)
    });
    std::hint::black_box(out);
}

#[inline(never)]
fn step_prost_ingress(r: &Bytes, x: &Redaction) {
    let request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
    for record in request
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
    {
        let keep = |k: &str| x.keys.contains(k);
        std::hint::black_box(otlp_proto::decode_record_only(record, &x.none, &keep).ok());
    }
}

#[inline(never)]
fn step_wire_ingress(r: &Bytes, x: &Redaction) {
    let request = wire::Request::parse(r.clone()).expect("valid");
    let mut scratch = Vec::new();
    for k in 0..request.len() {
        let event = convert::received_event(&request, k, &x.none, &x.needs, &mut scratch);
        std::hint::black_box(event.ok());
    }
}

#[inline(never)]
fn step_prost_egress(r: &Bytes, x: &Redaction) {
    let mut request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
    for record in request
        .resource_logs
        .iter_mut()
        .flat_map(|rl| &mut rl.scope_logs)
        .flat_map(|sl| &mut sl.log_records)
    {
        convert::apply_edits(record, &x.edits);
    }
    std::hint::black_box(request.encode_to_vec());
}

#[inline(never)]
fn step_wire_egress(r: &Bytes, x: &Redaction) {
    let request = wire::Request::parse(r.clone()).expect("valid");
    let mut edited = wire::Edited::default();
    for k in 0..request.len() {
        let _ = convert::splice_received(&request, k, &x.edits, &mut edited);
    }
    let mut out = Vec::with_capacity(r.len());
    request.assemble(&[], &edited, &mut Vec::new(), |b, _| {
        wire::put_field(1, &b, &mut out)
    });
    std::hint::black_box(out);
}

/// The pipeline thread's work on one received request (parsed before,
/// as the receivers parse it on tokio's threads), and what it queued for
/// export taken away.
#[inline(never)]
fn step_pipeline(agent: &mut Agent, request: wire::Request) {
    let records = request.len() as u64;
    agent.pipeline.process(Batch { request, records });
    agent.take_exported();
}

/// A pipeline as the agent runs it, with `programs` loaded, and the far
/// end of its export queue.
struct Agent {
    pipeline: Pipeline,
    exported: tokio::sync::mpsc::UnboundedReceiver<Item>,
    stats: Arc<dtc_agent::telemetry::Stats>,
}

impl Agent {
    /// Takes what the pipeline queued, as the exporter would once it is
    /// sent (the pipeline waits while the queue is full).
    fn take_exported(&mut self) {
        while let Ok(item) = self.exported.try_recv() {
            let n = item.records();
            self.stats.export_queue.fetch_sub(n, Relaxed);
            std::hint::black_box(item);
        }
    }

    fn new(dir: &Path, programs: Vec<Arc<Loaded>>) -> Agent {
        let config = config(dir);
        let stats = Arc::new(dtc_agent::telemetry::Stats::default());
        let (export, exported) = dtc_agent::exporter::queue(&config.exporter, stats.clone());
        let actions = dtc_agent::actions::Actions::new(&config.spool, &config.actions)
            .expect("a spool folder");
        // No budget trips during the bench: it measures the work.
        let mut budgets = config.budgets.clone();
        budgets.cpu_per_event = Duration::from_secs(1);
        budgets.cpu_per_second = Duration::from_secs(3600);
        let mut pipeline = Pipeline::new(
            budgets,
            stats.clone(),
            export,
            Arc::new(AtomicBool::new(false)),
            actions,
            None,
        );
        if !programs.is_empty() {
            pipeline.control(Control::Programs(programs));
        }
        let mut agent = Agent {
            pipeline,
            exported,
            stats,
        };
        // What loading announced.
        agent.take_exported();
        agent
    }
}

/// The agent's default configuration, with its folders in `dir`.
fn config(dir: &Path) -> dtc_agent::config::Config {
    std::fs::create_dir_all(dir).expect("a scratch folder");
    let text = "[artifacts]\ndir = \"programs\"\n[spool]\ndir = \"spool\"\n";
    dtc_agent::config::Config::parse(text, "bench.toml", dir).expect("a valid config")
}

/// The redaction sample, compiled and verified as the agent loads it.
fn redaction_sample(dir: &Path) -> Arc<Loaded> {
    sample(dir, "03-secret/drop_field.dt")
}

/// `samples/<path>`, compiled and verified as the agent loads it.
fn sample(dir: &Path, path: &str) -> Arc<Loaded> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(path);
    let session = dtc_driver::Session::new(dtc_driver::RealFs);
    let out = session.check_path(&source).expect("the sample reads");
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    let bytes = out
        .artifact("bench")
        .expect("no errors")
        .expect("the sample lowers");
    let policy = dtc_agent::loader::load_policy(None).expect("the default policy");
    let (artifact, actions) = dtc_agent::loader::verify(&bytes, &policy, &[], &config(dir).budgets)
        .expect("the sample verifies");
    Arc::new(Loaded {
        file: format!("{path}.dtx"),
        digest: [0; 32],
        metadata: artifact.metadata,
        program: artifact.program,
        actions,
    })
}

fn main() {
    let n_requests = env_number("DTC_WIRE_REQUESTS", 200);
    let runs = env_number("DTC_WIRE_RUNS", 5);
    let steps = std::env::var("DTC_WIRE_STEPS").unwrap_or_default();
    let wanted = |step: &str| steps.is_empty() || steps.split(',').any(|s| s.trim() == step);
    let requests = dtc_agent_bench::banners(BATCH * n_requests, BATCH);
    let needs = Needs {
        events: Names::from_iter(["LogWelcomeBanner".to_string()]),
        keys: Names::from_iter(["secret", "time", "version"].map(String::from)),
        ..Needs::default()
    };
    let x = Redaction {
        keys: needs.keys.clone(),
        needs,
        edits: [Edit::RemoveAttr(Rc::from("secret"))],
        none: BTreeMap::new(),
    };

    let ratio = |old: Duration, new: Duration| old.as_secs_f64() / new.as_secs_f64();
    println!(
        "per record, best of {runs} runs over {n_requests} requests of {BATCH} banners (no network), {} records per run:",
        BATCH * n_requests
    );
    println!("| step | prost messages | wire ranges | faster |");
    println!("|---|---:|---:|---:|");
    let row = |step: &str, old: Duration, new: Duration| {
        println!(
            "| {step} | {} ns | {} ns | {:.1}x |",
            old.as_nanos(),
            new.as_nanos(),
            ratio(old, new)
        );
    };
    if wanted("pass") {
        let old = per_record(&requests, runs, step_prost_pass);
        let new = per_record(&requests, runs, step_wire_pass);
        row("pass-through: receive, export unchanged", old, new);
    }
    if wanted("ingress") {
        let old = per_record(&requests, runs, |r| step_prost_ingress(r, &x));
        let new = per_record(&requests, runs, |r| step_wire_ingress(r, &x));
        row("ingress: receive, the redaction's events", old, new);
    }
    if wanted("egress") {
        let old = per_record(&requests, runs, |r| step_prost_egress(r, &x));
        let new = per_record(&requests, runs, |r| step_wire_egress(r, &x));
        row("egress: receive, drop `secret`, export", old, new);
    }
    if wanted("pipeline") {
        let parsed: Vec<wire::Request> = requests
            .iter()
            .map(|r| wire::Request::parse(r.clone()).expect("valid"))
            .collect();
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wire-bench-{}", std::process::id()));
        let time = |programs: Vec<Arc<Loaded>>| {
            let mut agent = Agent::new(&scratch, programs);
            // A fresh engine per run would measure loading; one engine sees
            // the stream again, its times going back, which this program
            // (no windows) does not mind.
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    for r in &parsed {
                        step_pipeline(&mut agent, r.clone());
                    }
                    start.elapsed() / (BATCH * parsed.len()) as u32
                })
                .min()
                .unwrap_or_default()
        };
        let none = time(Vec::new());
        let redaction = time(vec![redaction_sample(&scratch)]);
        println!();
        println!(
            "| pipeline thread, per record (received request in, export out) | ns | vs no program |"
        );
        println!("|---|---:|---:|");
        println!("| no program | {} ns | 1.0x |", none.as_nanos());
        println!(
            "| redaction (03-secret/drop_field.dt) | {} ns | {:.1}x |",
            redaction.as_nanos(),
            ratio(redaction, none)
        );
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if wanted("machine") {
        // The state-machine sample on its own stream (machine instances
        // per thread, a slow hash logged), one run: its timeouts and
        // windows would see time go back on a second.
        let parsed: Vec<wire::Request> = dtc_agent_bench::file_hashes(BATCH * n_requests, BATCH)
            .iter()
            .map(|r| wire::Request::parse(r.clone()).expect("valid"))
            .collect();
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wire-bench-machine-{}", std::process::id()));
        let program = sample(&scratch, "01-file-hashing/file_hashing.dt");
        let mut agent = Agent::new(&scratch, vec![program]);
        let start = Instant::now();
        for r in &parsed {
            step_pipeline(&mut agent, r.clone());
        }
        let machine = start.elapsed() / (BATCH * parsed.len()) as u32;
        println!();
        println!(
            "| pipeline thread, per record, state machine (01-file-hashing) | {} ns |",
            machine.as_nanos()
        );
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
