//! End-to-end OTLP throughput of the real `dtc-agent` (release build) on
//! one core: log records per second through receive, decode, run and
//! export, with no program (pass-through), with the redaction sample
//! (03-secret/drop_field) and with the state-machine sample
//! (01-file-hashing), each program beside a pass-through run over the same
//! stream in the same process, and the agent's resident memory at idle and
//! under load.
//!
//! The agent runs under `taskset -c 0`; this process (the load generator,
//! sending pre-encoded batches of 512 records over gRPC, and the sink that
//! counts what the agent exports) is pinned to core 1. Rounds alternate the
//! scenarios and the median is reported.
//!
//! `DTC_AGENT_BENCH_RECORDS` (default 300,000 per run) and
//! `DTC_AGENT_BENCH_ROUNDS` (default 3) change the size;
//! `DTC_AGENT_BENCH_ONLY` keeps the runs whose "scenario stream batch_size"
//! contains it (e.g. `redaction` or `8192`: to profile one with `perf`);
//! `DTC_AGENT_BENCH_BIN_DIR` names a folder holding `dtc-agent` and `dtc`
//! built already (by default the bench builds them with `cargo build
//! --release`). `DTC_AGENT_BENCH_POLL_MS` (default 2) is how often the
//! agent's status is asked whether a run is through: under callgrind
//! (`benches/callgrind/agent.sh`), rarely, so that asking costs the agent
//! little beside the records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtc_agent_bench::{
    Agent, Sink, banners, config, file_hashes, root, rss_of, send_all, target_dir,
};

const BATCH: usize = 512;
const IN_FLIGHT: usize = 8;
/// The agent's exporter batch sizes measured: its default, and larger
/// batches (its exporter has one batch in flight at a time).
const EXPORT_BATCHES: [usize; 2] = [512, 8192];

struct Scenario {
    name: &'static str,
    stream: &'static str,
    program: Option<&'static str>,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "pass-through",
        stream: "banners",
        program: None,
    },
    Scenario {
        name: "redaction (03-secret/drop_field)",
        stream: "banners",
        program: Some("samples/03-secret/drop_field.dt"),
    },
    Scenario {
        name: "pass-through",
        stream: "file hashes",
        program: None,
    },
    Scenario {
        name: "state machine (01-file-hashing)",
        stream: "file hashes",
        program: Some("samples/01-file-hashing/file_hashing.dt"),
    },
];

#[derive(Clone, Copy, Default)]
struct Measure {
    /// Application records that reached the sink, per second.
    rate: f64,
    /// Records received per second (delivered or dropped).
    accepted: f64,
    /// Records the agent dropped (and counted), all reasons.
    dropped: u64,
    cpu_ns_per_record: f64,
    cpu_share: f64,
    idle_rss: u64,
    peak_rss: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn env_number(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={v}: expected a whole number")),
    }
}

fn run() -> Result<(), String> {
    let records = env_number("DTC_AGENT_BENCH_RECORDS", 300_000)?;
    let rounds = env_number("DTC_AGENT_BENCH_ROUNDS", 3)?.max(1);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        return Err("this benchmark needs two cores: one for the agent, one for the load".into());
    }
    let bin = match std::env::var_os("DTC_AGENT_BENCH_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            build()?;
            target_dir().join("release")
        }
    };
    // Every thread of this process, and those it starts, on core 1 (after
    // the build, which should have both).
    let pinned = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset (util-linux): {e}"))?;
    if !pinned.success() {
        return Err("taskset could not pin the load generator to core 1".into());
    }

    let work = target_dir().join("agent-bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    eprintln!("encoding {records} records per stream in batches of {BATCH}...");
    let streams: [(&str, Arc<Vec<Bytes>>); 2] = [
        ("banners", Arc::new(banners(records, BATCH))),
        ("file hashes", Arc::new(file_hashes(records, BATCH))),
    ];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sink = Sink::default();
    let sink_addr = runtime.block_on(sink.start())?;

    // Every (exporter batch, scenario) pair, rounds interleaved.
    let only = std::env::var("DTC_AGENT_BENCH_ONLY").unwrap_or_default();
    let runs: Vec<(usize, &Scenario)> = EXPORT_BATCHES
        .iter()
        .flat_map(|b| SCENARIOS.iter().map(move |s| (*b, s)))
        .filter(|(b, s)| format!("{} {} {b}", s.name, s.stream).contains(&only))
        .collect();
    let mut results: Vec<Vec<Measure>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for (i, (export_batch, scenario)) in runs.iter().enumerate() {
            let stream = &streams
                .iter()
                .find(|(name, _)| *name == scenario.stream)
                .expect("every scenario names a stream")
                .1;
            let dir = work.join(format!("run-{round}-{i}"));
            let m = measure(
                &runtime,
                &sink,
                sink_addr,
                &bin,
                &dir,
                (scenario, *export_batch),
                stream,
                records,
            )?;
            eprintln!(
                "round {round}: {} on {} (export batches of {export_batch}): {:.0} records/s delivered, {} dropped",
                scenario.name, scenario.stream, m.rate, m.dropped
            );
            results[i].push(m);
        }
    }

    let median = |ms: &[Measure]| {
        let mut sorted = ms.to_vec();
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        sorted[sorted.len() / 2]
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "dtc-agent end to end on one core (taskset -c 0), release build; {records} records per run \
         sent in gRPC batches of {BATCH}, {IN_FLIGHT} in flight; median of {rounds} round(s)"
    );
    println!(
        "| exporter batch_size | scenario | stream | delivered records/s | vs pass-through | received records/s | dropped | agent CPU per record | vs pass-through | agent CPU use | RSS idle | RSS peak |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // A program's run against the last pass-through run on its stream.
    let mut baseline = Measure::default();
    for ((export_batch, scenario), ms) in runs.iter().zip(&results) {
        let m = median(ms);
        if scenario.program.is_none() {
            baseline = m;
        }
        println!(
            "| {export_batch} | {} | {} | {:.0} | {:.2} | {:.0} | {} | {:.0} ns | {:.1}x | {:.0}% | {:.1} MiB | {:.1} MiB |",
            scenario.name,
            scenario.stream,
            m.rate,
            m.rate / baseline.rate,
            m.accepted,
            m.dropped,
            m.cpu_ns_per_record,
            m.cpu_ns_per_record / baseline.cpu_ns_per_record,
            m.cpu_share * 100.0,
            mib(m.idle_rss),
            mib(m.peak_rss),
        );
    }
    Ok(())
}

/// One run: a fresh agent with the scenario's program, the whole stream
/// sent, timed until the sink has counted every record.
#[allow(clippy::too_many_arguments)]
fn measure(
    runtime: &tokio::runtime::Runtime,
    sink: &Sink,
    sink_addr: std::net::SocketAddr,
    bin: &Path,
    dir: &Path,
    (scenario, export_batch): (&Scenario, usize),
    stream: &Arc<Vec<Bytes>>,
    records: usize,
) -> Result<Measure, String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("programs")).map_err(io)?;
    std::fs::write(dir.join("agent.toml"), config(sink_addr, export_batch)).map_err(io)?;
    // The bench's ring: any tier runs without reviewers' approvals.
    std::fs::write(
        dir.join("ring.toml"),
        "ring = \"bench\"\nmax_tier = \"high\"\n[approvals]\nnone = 0\nlimited = 0\nhigh = 0\n",
    )
    .map_err(io)?;
    if let Some(program) = scenario.program {
        compile(bin, &root().join(program), &dir.join("programs/a.dtx"))?;
    }
    let agent = Agent::start(&bin.join("dtc-agent"), dir, 0)?;
    let expected = usize::from(scenario.program.is_some());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = agent.status()?;
        let programs = status["programs"].as_array().map_or(0, Vec::len);
        if programs == expected {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the program never ran: {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Idle: loaded, listening, nothing received yet.
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = agent.rss().unwrap_or(0);

    sink.records.store(0, Relaxed);
    let peak = Arc::new(AtomicU64::new(idle_rss));
    let done = Arc::new(AtomicBool::new(false));
    let pid = agent.pid();
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Relaxed) {
                if let Some(rss) = rss_of(pid) {
                    peak.fetch_max(rss, Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let cpu_before = agent.cpu_time().unwrap_or_default();
    let started = Instant::now();
    runtime.block_on(send_all(agent.grpc, stream.clone(), IN_FLIGHT))?;
    let total = records as u64;
    // Done when every record went through the pipeline (forwarded or
    // suppressed) and the export queue is empty: the exporter counts a
    // batch out of the queue only once the sink has answered (or the batch
    // was dropped, and counted).
    let poll = Duration::from_millis(env_number("DTC_AGENT_BENCH_POLL_MS", 2)? as u64);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let status = agent.status()?;
        let counter = |k: &str| status["counters"][k].as_u64().unwrap_or(0);
        let through = counter("records_out") + counter("records_suppressed");
        if through == total && status["queues"]["export_records"] == 0 {
            break status;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the agent did not finish the run within 300 s: {status}"
            ));
        }
        std::thread::sleep(poll);
    };
    let elapsed = started.elapsed();
    let cpu = agent
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    done.store(true, Relaxed);
    let _ = sampler.join();
    let delivered = sink.records.load(Relaxed);
    let dropped: u64 = status["dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    if delivered + dropped < total || status["counters"]["records_in"].as_u64() != Some(total) {
        return Err(format!(
            "records unaccounted for: {delivered} delivered, {dropped} dropped of {total}: {status}"
        ));
    }
    for p in status["programs"].as_array().into_iter().flatten() {
        if p["state"] != "running" {
            return Err(format!("a program stopped running: {p}"));
        }
    }
    agent.stop()?;
    Ok(Measure {
        rate: delivered as f64 / elapsed.as_secs_f64(),
        dropped,
        cpu_ns_per_record: cpu.as_nanos() as f64 / total as f64,
        accepted: total as f64 / elapsed.as_secs_f64(),
        cpu_share: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        idle_rss,
        peak_rss: peak.load(Relaxed),
    })
}

/// The real binaries, in release, so that the agent measured is the one a
/// user builds.
fn build() -> Result<(), String> {
    eprintln!("building dtc-agent and dtc (release)...");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "dtc-agent",
            "-p",
            "dtc-cli",
        ])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if built.success() {
        Ok(())
    } else {
        Err("cargo build --release -p dtc-agent -p dtc-cli failed".into())
    }
}

/// `dtc compile` with the release binary.
fn compile(bin: &Path, source: &Path, out: &Path) -> Result<(), String> {
    let output = Command::new(bin.join("dtc"))
        .arg("compile")
        .arg(source)
        .arg("-o")
        .arg(out)
        .args(["--color", "never"])
        .output()
        .map_err(|e| format!("cannot run dtc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "dtc compile {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
