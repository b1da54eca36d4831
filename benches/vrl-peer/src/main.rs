//! Runs the VRL peer benchmark and prints one table: events per second (one
//! thread, so per core) of the dtc interpreter, the hand-written Rust
//! baseline, VRL and the dtc JIT on four workloads, and each engine's
//! speedup over VRL, measured three ways in the same run:
//!
//! - kernel: each engine on its own decoded form of the same events (dtc:
//!   batches of records, with slot rows for the JIT, from `decode_batch`;
//!   VRL: `Value`s), built before the timer; decoding excluded; dtc's
//!   egress drained lazily (a pass-through decision or shaping's edits,
//!   no JSON), as the engine benchmark and the agent do;
//! - end to end from flat JSON lines (the engine benchmark's input);
//! - end to end from OTLP/JSON log exports of the same events;
//! - end to end from OTLP protobuf: the same exports as the
//!   `ExportLogsServiceRequest` bytes the agent receives (gRPC, OTLP/HTTP
//!   protobuf), encoded before the timer; dtc through the agent's own
//!   ingress (`wire::Request::parse`, `Received`, `push_read`), VRL and
//!   the baseline through prost's decode, as Vector's `opentelemetry`
//!   source does.
//!
//! `DTC_BENCH_EVENTS` (default 200,000) sets the events per workload,
//! `DTC_BENCH_RUNS` (default 3) the runs of which the best is kept. Every
//! engine's result (errors counted, groups, slow hashes, events redacted)
//! is checked against the baseline's; a mismatch, a failed VRL event or a
//! record the agent's ingress refused makes the run exit with status 1.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use dtc_vrl_peer::dtc::{
    self, BATCH, baseline, baseline_lines, baseline_proto, decode_all, interp, needs, run_batches,
    run_lines, with_batches,
};
use dtc_vrl_peer::jit;
use dtc_vrl_peer::peer::{self, PROGRAMS, REDACT_HMAC, Vrl, parse_flat, run_otlp, run_values};
use dtc_vrl_peer::stream::{NAMES, lines, otlp_batches, otlp_requests, program};

/// Columns of the table, in order.
const ENGINES: [&str; 4] = ["interp", "baseline", "VRL", "JIT"];
const INTERP: usize = 0;
const BASELINE: usize = 1;
const VRL: usize = 2;
const JIT: usize = 3;

/// Measures, in order.
const MEASURES: [&str; 4] = [
    "kernel (dtc on decoded batches, VRL on Values, both built beforehand)",
    "end to end from flat JSON lines (decode included)",
    "end to end from OTLP/JSON exports, 100 records a line (decode included)",
    "end to end from OTLP protobuf, 100 records a request (decode included)",
];
const KERNEL: usize = 0;
const FLAT: usize = 1;
const PROTO: usize = 3;

/// Best time in seconds of `runs` runs of `run`, each on a fresh input
/// made by `prepare` outside the timing, and the last run's result.
fn best<I, R>(
    runs: usize,
    mut prepare: impl FnMut() -> I,
    mut run: impl FnMut(I) -> R,
) -> (f64, Option<R>) {
    let mut best = f64::INFINITY;
    let mut result = None;
    for _ in 0..runs {
        let input = prepare();
        let t = Instant::now();
        let r = black_box(run(black_box(input)));
        best = best.min(t.elapsed().as_secs_f64());
        result = Some(r);
    }
    (best, result)
}

/// One row of one measure: events per second per engine (`None`: not
/// measured).
struct Row {
    name: String,
    rates: [Option<f64>; 4],
}

/// What went wrong in the run, reported at the end.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Checks an engine's result against the expected one; VRL also
    /// reports its failed events.
    fn check(&mut self, what: &str, expected: u64, got: Option<(u64, u64)>) {
        match got {
            Some((r, failed)) if r != expected || failed != 0 => self.0.push(format!(
                "{what}: result {r} with {failed} failed events, expected {expected} with none"
            )),
            _ => {}
        }
    }

    /// Checks a dtc engine's result and the records it refused (from
    /// OTLP protobuf; none elsewhere); an engine that could not run (the
    /// JIT refusing a program) is a problem too.
    fn check_dtc(&mut self, what: &str, expected: u64, got: Option<Result<(u64, u64), String>>) {
        match got {
            Some(Err(e)) => self.0.push(format!("{what}: {e}")),
            got => self.check(what, expected, got.and_then(Result::ok)),
        }
    }
}

fn env(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| format!("{name}={v:?}: expected a positive whole number")),
    }
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Measures everything and prints the table; `Ok(false)` when an engine
/// disagreed or VRL failed on events.
fn run() -> Result<bool, String> {
    let n = env("DTC_BENCH_EVENTS", 200_000)?;
    let runs = env("DTC_BENCH_RUNS", 3)?;
    let mut tables: [Vec<Row>; 4] = Default::default();
    let mut problems = Problems::default();
    let mut reports = Vec::new();
    // The redaction workload runs a second time with VRL's HMAC variant.
    let cases: Vec<(usize, &str, &str)> = (0..4)
        .map(|w| (w, NAMES[w], PROGRAMS[w]))
        .chain([(3, "redact, VRL with hmac", REDACT_HMAC)])
        .collect();
    for (w, name, vrl_source) in cases {
        eprintln!("measuring {name} ...");
        // The HMAC row measures VRL only; dtc's engines ran the same
        // redaction in the row before.
        let vrl_only = vrl_source == REDACT_HMAC;
        let prog = program(w)?;
        let mut vrl = Vrl::compile(vrl_source)?;
        let input = lines(w, n);
        let otlp = otlp_batches(&input)?;
        let proto = otlp_requests(&input)?;
        let needs = needs(&prog);
        let (events, malformed) = decode_all(&input);
        if malformed != 0 {
            return Err(format!(
                "{malformed} generated lines of {name} do not decode"
            ));
        }
        let values = input
            .iter()
            .map(|l| parse_flat(l))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = baseline(w, &events);
        if !vrl_only {
            match jit::report(&prog) {
                Ok(r) => reports.push(format!("{name}:\n{r}")),
                Err(e) => problems.0.push(format!("{name}: {e}")),
            }
        }

        for (m, table) in tables.iter_mut().enumerate() {
            let mut row = Row {
                name: name.to_string(),
                rates: [None; 4],
            };
            if vrl_only && let Some(previous) = table.last() {
                row.rates = previous.rates;
            }
            let mut rate = |col: usize, secs: f64| row.rates[col] = Some(n as f64 / secs);
            let what = |engine: &str| format!("{name}, {}, {engine}", MEASURES[m]);
            let form = if m == FLAT { &input } else { &otlp };
            if !vrl_only {
                let t = match m {
                    // The batches are handed back, so they are freed
                    // after the timer (see `run_values`).
                    KERNEL => {
                        let (secs, r) = best(
                            runs,
                            || with_batches(interp(&prog), &events),
                            |(mut i, b)| (run_batches(w, &mut i, &b), b),
                        );
                        (secs, r.map(|(n, _batches)| (n, 0)))
                    }
                    PROTO => best(
                        runs,
                        || interp(&prog),
                        |mut i| dtc::run_proto(w, &mut i, &proto, &needs),
                    ),
                    _ => {
                        let (secs, r) =
                            best(runs, || interp(&prog), |mut i| run_lines(w, &mut i, form));
                        (secs, r.map(|n| (n, 0)))
                    }
                };
                problems.check_dtc(&what("interp"), expected, t.1.map(Ok));
                rate(INTERP, t.0);
                let t = match m {
                    KERNEL => best(runs, || (), |()| baseline(w, &events)),
                    PROTO => best(runs, || (), |()| baseline_proto(w, &proto)),
                    _ => best(runs, || (), |()| baseline_lines(w, form)),
                };
                problems.check_dtc(&what("baseline"), expected, t.1.map(|r| Ok((r, 0))));
                rate(BASELINE, t.0);
                let t = match m {
                    KERNEL => {
                        let (secs, r) = best(
                            runs,
                            || jit::compile(&prog).map(|j| with_batches(j, &events)),
                            |j| j.map(|(mut j, b)| (run_batches(w, &mut j, &b), b)),
                        );
                        (secs, r.map(|r| r.map(|(n, _batches)| (n, 0))))
                    }
                    PROTO => best(
                        runs,
                        || jit::compile(&prog),
                        |j| j.map(|mut j| dtc::run_proto(w, &mut j, &proto, &needs)),
                    ),
                    _ => {
                        let (secs, r) = best(
                            runs,
                            || jit::compile(&prog),
                            |j| j.map(|mut j| run_lines(w, &mut j, form)),
                        );
                        (secs, r.map(|r| r.map(|n| (n, 0))))
                    }
                };
                if matches!(t.1, Some(Ok(_))) {
                    rate(JIT, t.0);
                }
                problems.check_dtc(&what("JIT"), expected, t.1);
            }
            let t = match m {
                KERNEL => {
                    let (secs, r) = best(runs, || values.clone(), |v| run_values(w, &mut vrl, v));
                    (secs, r.map(|(counts, _events)| counts))
                }
                FLAT => best(runs, || (), |()| peer::run_lines(w, &mut vrl, form)),
                PROTO => best(runs, || (), |()| peer::run_proto(w, &mut vrl, &proto)),
                _ => best(runs, || (), |()| run_otlp(w, &mut vrl, form)),
            };
            problems.check(&what("VRL"), expected, t.1);
            rate(VRL, t.0);
            table.push(row);
        }
    }
    print_tables(n, runs, &tables);
    println!("\nwhat the JIT compiled, per workload (dtc-jit's report):");
    for r in &reports {
        print!("{r}");
    }
    if problems.0.is_empty() {
        println!("\nall engines agreed on every result");
        Ok(true)
    } else {
        println!("\nPROBLEMS (the numbers above do not compare equal work):");
        for p in &problems.0 {
            println!("  {p}");
        }
        Ok(false)
    }
}

fn print_tables(n: usize, runs: usize, tables: &[Vec<Row>; 4]) {
    println!(
        "VRL peer: events per second on one thread (= per core), best of {runs} runs over {n} events per workload"
    );
    println!(
        "machine: {} ({} cores visible)",
        cpu(),
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    println!(
        "ratios: an engine's rate over VRL's (speedup over VRL); dtc engines take {BATCH} events or lines a batch"
    );
    // Three significant digits at every scale: 2.26M, 512k, 13.4k.
    let show = |r: Option<f64>| match r {
        None => "-".to_string(),
        Some(r) if r >= 1e6 => format!("{:.2}M", r / 1e6),
        Some(r) if r >= 1e5 => format!("{:.0}k", r / 1e3),
        Some(r) => format!("{:.1}k", r / 1e3),
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}x", a / b),
        _ => "-".to_string(),
    };
    for (m, rows) in tables.iter().enumerate() {
        println!("\n{}", MEASURES[m]);
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>9} | {:>8} {:>10} {:>12}",
            "workload",
            ENGINES[0],
            ENGINES[1],
            ENGINES[2],
            ENGINES[3],
            "JIT/VRL",
            "interp/VRL",
            "baseline/VRL"
        );
        for row in rows {
            let r = row.rates;
            println!(
                "{:<24} {:>9} {:>9} {:>9} {:>9} | {:>8} {:>10} {:>12}",
                row.name,
                show(r[INTERP]),
                show(r[BASELINE]),
                show(r[VRL]),
                show(r[JIT]),
                ratio(r[JIT], r[VRL]),
                ratio(r[INTERP], r[VRL]),
                ratio(r[BASELINE], r[VRL]),
            );
        }
    }
    println!(
        "\ngoals (issue #4): JIT >= 100x VRL on the kernel for where + count, >= 20x for summarize and redact, >= 10x end to end"
    );
    println!(
        "VRL does the per-event part (predicate, group key, transition kind, redaction); a minimal Rust host does the\n\
         windows, per-key counts and per-thread state, as another Vector transform (aggregate, reduce) would.\n\
         VRL's keyed hash is seahash of a secret prefix (VRL has no SipHash); the hmac row uses HMAC-SHA-256."
    );
}
