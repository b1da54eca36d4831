//! Events per second of the reference interpreter and of the JIT on four
//! workloads, against a hand-written Rust baseline of the same logic
//! measured in the same run: (1) a where + count, (2) a summarize by a
//! string key, (3) the file-hashing state machine keyed per thread, (4)
//! redaction of three fields. Each is measured twice:
//!
//! - the kernel: each engine on its own decoded form, built before the
//!   timed region (dtc: batches of records from `decode_batch`, with slot
//!   rows for the JIT; the baseline: a typed struct per event), run with
//!   `push_batch`; egress is left lazy (`drain_lazy`: a pass-through
//!   decision or the shaping edits, no JSON written), the baseline writes
//!   its redacted fields into an output struct;
//! - end to end: from the same JSON lines, decoding included, in batches
//!   of [`BATCH`] (`push_lines`), egress again lazy.
//!
//! Engines are built (and the JIT compiles) before each timed run: the
//! JIT's compile time per sample and the memory of a machine instance
//! are `cargo bench -p dtc-jit` (it counts allocations, which needs
//! `unsafe`, allowed only in that crate).
//!
//! Run with `cargo bench -p dtc-engine` (`DTC_BENCH_EVENTS` sets the stream
//! size, `DTC_BENCH_RUNS` the best-of count on a busy machine;
//! `DTC_BENCH_PROFILE=0..3` runs only one workload's JIT kernel, for
//! `perf record`, or its end to end with `DTC_BENCH_E2E=1`). Absolute numbers on a shared machine are noise; the ratios are the
//! result. The VRL peer is a separate crate (`benches/vrl-peer`).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Batch, Engine, Options, Produced};
use dtc_jit::JitEngine;
use serde_json::Value as Json;

const START: i64 = 1_795_341_600_000_000_000;

/// Events per batch handed to the JIT.
const BATCH: usize = 1024;

fn program(src: &str) -> dtc_ir::Program {
    let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
    let out = session.check_source("bench.dt", src);
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    out.lower().expect("checks").expect("verifies")
}

/// A deterministic stream of `n` JSON lines for a workload.
fn lines(workload: usize, n: usize) -> Vec<String> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let t = START + i as i64 * 1_000_000;
            match workload {
                0 | 1 => format!(
                    r#"{{"event":"Request","time":{t},"status":{},"path":"/api/v1/items/{}"}}"#,
                    [200, 200, 200, 404, 500, 503][(rnd() % 6) as usize],
                    rnd() % 200
                ),
                2 => {
                    let thread = rnd() % 64;
                    let name = if rnd() % 2 == 0 { "LogStartingFileHash" } else { "LogEndFileHash" };
                    format!(r#"{{"event":"{name}","time":{t},"fileName":"/data/f{}.png","hashValue":"ab","thread.id":{thread}}}"#, rnd() % 1000)
                }
                _ => format!(
                    r#"{{"event":"Login","time":{t},"user":"user{}","email":"u{}@example.com","ip":"10.0.{}.{}","ok":true}}"#,
                    rnd() % 1000,
                    rnd() % 1000,
                    rnd() % 256,
                    rnd() % 256
                ),
            }
        })
        .collect()
}

const SOURCES: [&str; 4] = [
    "event Request { status: int, path: string }\n\
     query errors = Request | where status >= 500 | summarize n = count() every 1m | emit metric \"errors\"",
    "event Request { status: int, path: string }\n\
     query by_path = Request | summarize n = count() by path max 1000 every 1m | emit metric \"by_path\"",
    "event LogStartingFileHash { fileName: string }\nevent LogEndFileHash { fileName: string, hashValue: string }\n\
     machine hashing per event.thread_id max 10_000 {\n state Unknown\n state HashingFile { started: timestamp }\n\
     on LogStartingFileHash in Unknown -> HashingFile { started = event.time }\n\
     on LogEndFileHash in HashingFile when event.time - started > 2s -> Unknown { emit log Slow { took: event.time - started } }\n\
     on LogEndFileHash in HashingFile -> Unknown\n}",
    "event Login { user: string @pii, email: string @pii, ip: string @pii, ok: bool }\n\
     redact Login.user with hash\nredact Login.email with mask\nredact Login.ip with drop",
];

const NAMES: [&str; 4] = [
    "where + count",
    "summarize by string key",
    "file-hashing machine",
    "redact three fields",
];

/// The baseline's own decoded form: one typed struct per event, decoded
/// from the same events before the kernel is timed (as dtc's records and
/// VRL's `Value`s are).
enum Typed {
    Request {
        time: i64,
        status: Option<i64>,
        path: Option<String>,
    },
    StartHash {
        time: i64,
        thread: Option<i64>,
    },
    EndHash {
        time: i64,
        thread: Option<i64>,
    },
    Login {
        user: Option<String>,
        email: Option<String>,
        ip: Option<String>,
    },
    Other,
}

fn typed(events: &[InputEvent]) -> Vec<Typed> {
    let int = |e: &InputEvent, k: &str| match e.attributes.get(k) {
        Some(Json::Number(n)) => n.as_i64(),
        _ => None,
    };
    let string = |e: &InputEvent, k: &str| match e.attributes.get(k) {
        Some(Json::String(s)) => Some(s.clone()),
        _ => None,
    };
    events
        .iter()
        .map(|e| match e.name.as_deref() {
            Some("Request") => Typed::Request {
                time: e.time,
                status: int(e, "status"),
                path: string(e, "path"),
            },
            Some("LogStartingFileHash") => Typed::StartHash {
                time: e.time,
                thread: int(e, "thread.id"),
            },
            Some("LogEndFileHash") => Typed::EndHash {
                time: e.time,
                thread: int(e, "thread.id"),
            },
            Some("Login") => Typed::Login {
                user: string(e, "user"),
                email: string(e, "email"),
                ip: string(e, "ip"),
            },
            _ => Typed::Other,
        })
        .collect()
}

/// A fast map, as a hand-written pipeline would use (the same hasher as
/// the runtime's group and instance maps: rustc-hash's Fx).
type Fast<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

const MINUTE: i64 = 60_000_000_000;

/// The same logic by hand, on the typed events: per-window counts with the
/// current window cached, string keys borrowed from the events, redaction
/// into an output struct (what egresses), no JSON written.
fn baseline(workload: usize, events: &[Typed]) -> u64 {
    let mut out = 0u64;
    match workload {
        0 => {
            let mut counts: Fast<i64, u64> = Fast::default();
            let (mut current, mut n) = (i64::MIN, 0u64);
            for e in events {
                if let Typed::Request {
                    time,
                    status: Some(s),
                    ..
                } = e
                    && *s >= 500
                {
                    let start = time.div_euclid(MINUTE) * MINUTE;
                    if start != current {
                        *counts.entry(current).or_default() += n;
                        (current, n) = (start, 0);
                    }
                    n += 1;
                }
            }
            *counts.entry(current).or_default() += n;
            out += counts.values().sum::<u64>();
        }
        1 => {
            let mut counts: Fast<(i64, &str), u64> = Fast::default();
            for e in events {
                if let Typed::Request {
                    time,
                    path: Some(p),
                    ..
                } = e
                {
                    let start = time.div_euclid(MINUTE) * MINUTE;
                    *counts.entry((start, p.as_str())).or_default() += 1;
                }
            }
            out += counts.len() as u64;
        }
        2 => {
            let mut started: Fast<i64, i64> = Fast::default();
            for e in events {
                match e {
                    Typed::StartHash {
                        time,
                        thread: Some(t),
                    } => {
                        started.entry(*t).or_insert(*time);
                    }
                    Typed::EndHash {
                        time,
                        thread: Some(t),
                    } => {
                        if let Some(s) = started.remove(t)
                            && time - s > 2_000_000_000
                        {
                            out += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {
            /// What egresses: the redacted fields (`ip` dropped).
            struct Redacted {
                user: Option<String>,
                email: Option<String>,
            }
            let key = Options::default().hash_key;
            for e in events {
                if let Typed::Login { user, email, ip } = e {
                    let r = Redacted {
                        user: user.as_deref().map(|u| {
                            dtc_engine::interp::keyed_hash(key, &dtc_engine::value::Value::str(u))
                        }),
                        email: email.as_deref().map(dtc_engine::interp::mask),
                    };
                    black_box(ip);
                    let r = black_box(r);
                    out += u64::from(r.user.is_some()) + u64::from(r.email.is_some());
                }
            }
        }
    }
    out
}

fn decode_all(lines: &[String]) -> Vec<InputEvent> {
    lines
        .iter()
        .flat_map(|l| decode_line(l))
        .filter_map(|i| {
            if let Input::Event(e) = i {
                Some(e)
            } else {
                None
            }
        })
        .collect()
}

/// Best of `runs` timings of `f`, in seconds.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    time_with(runs, || (), |()| f())
}

/// Best of `runs` timings of `f` on a fresh `setup()` each, in seconds;
/// the setup (building an engine, compiling a program) is not timed.
fn time_with<S>(runs: usize, mut setup: impl FnMut() -> S, mut f: impl FnMut(S)) -> f64 {
    (0..runs)
        .map(|_| {
            let s = setup();
            let t = Instant::now();
            f(s);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// What the bench asks of an engine, the interpreter's or the JIT's (the
/// two have the same methods but no common trait).
trait Runs {
    fn decode_batch(&self, events: &[InputEvent]) -> Batch;
    fn push_batch(&mut self, batch: &Batch);
    fn push_lines(&mut self, lines: &[String]);
    fn finish(&mut self, until_end: bool);
    fn drain_lazy(&mut self) -> Vec<Produced>;
}

impl Runs for Engine {
    fn decode_batch(&self, events: &[InputEvent]) -> Batch {
        Engine::decode_batch(self, events.iter().cloned())
    }
    fn push_batch(&mut self, batch: &Batch) {
        Engine::push_batch(self, batch)
    }
    fn push_lines(&mut self, lines: &[String]) {
        Engine::push_lines(self, lines.iter().map(String::as_str))
    }
    fn finish(&mut self, until_end: bool) {
        Engine::finish(self, until_end)
    }
    fn drain_lazy(&mut self) -> Vec<Produced> {
        Engine::drain_lazy(self)
    }
}

impl Runs for JitEngine {
    fn decode_batch(&self, events: &[InputEvent]) -> Batch {
        JitEngine::decode_batch(self, events.iter().cloned())
    }
    fn push_batch(&mut self, batch: &Batch) {
        JitEngine::push_batch(self, batch)
    }
    fn push_lines(&mut self, lines: &[String]) {
        JitEngine::push_lines(self, lines.iter().map(String::as_str))
    }
    fn finish(&mut self, until_end: bool) {
        JitEngine::finish(self, until_end)
    }
    fn drain_lazy(&mut self) -> Vec<Produced> {
        JitEngine::drain_lazy(self)
    }
}

fn interp_engine(prog: &dtc_ir::Program) -> Engine {
    Engine::new(prog.clone(), Options::default())
}

fn jit_engine(prog: &dtc_ir::Program) -> JitEngine {
    JitEngine::new(prog.clone(), Options::default()).expect("compiles")
}

/// An engine's own decoded form of the events, in batches of [`BATCH`]:
/// records (and, for the JIT, their slot rows).
fn batches(e: &impl Runs, events: &[InputEvent]) -> Vec<Batch> {
    events.chunks(BATCH).map(|c| e.decode_batch(c)).collect()
}

/// The kernel: decoded batches through an engine, egress left lazy.
fn kernel(mut e: impl Runs, batches: &[Batch]) {
    for b in batches {
        e.push_batch(b);
        black_box(e.drain_lazy());
    }
    e.finish(true);
    black_box(e.drain_lazy());
}

/// End to end: the lines through an engine in batches of [`BATCH`],
/// decoding included, egress left lazy.
fn end_to_end(mut e: impl Runs, input: &[String]) {
    for chunk in input.chunks(BATCH) {
        e.push_lines(chunk);
        black_box(e.drain_lazy());
    }
    e.finish(true);
    black_box(e.drain_lazy());
}

/// `DTC_BENCH_PROFILE=<workload 0-3>`: only the JIT kernel of one
/// workload, over and over for about five seconds, for `perf record`.
fn profile(w: usize, n: usize) {
    let prog = program(SOURCES[w]);
    let events = decode_all(&lines(w, n));
    let e2e = std::env::var_os("DTC_BENCH_E2E").is_some();
    let input = lines(w, n);
    let batches = batches(&jit_engine(&prog), &events);
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed().as_secs() < 5 {
        if e2e {
            end_to_end(jit_engine(&prog), &input);
        } else {
            kernel(jit_engine(&prog), &batches);
        }
        rounds += 1;
    }
    let rate = (rounds * n as u64) as f64 / started.elapsed().as_secs_f64();
    let what = if e2e { "end to end" } else { "kernel" };
    // The rounds, so that an instruction count over the run (callgrind)
    // divides into a count per event.
    println!(
        "{}: jit {what} {rate:.0} events/s ({rounds} rounds of {n} events)",
        NAMES[w]
    );
}

fn main() {
    let n: usize = std::env::var("DTC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runs: usize = std::env::var("DTC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    if let Some(w) = std::env::var("DTC_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        profile(w.min(3), n);
        return;
    }
    println!("events per second, best of {runs} runs over {n} events (higher is better)\n");
    println!(
        "{:<26} {:>12} {:>12} {:>12} {:>7} {:>7}   {:>12} {:>12} {:>12} {:>7} {:>7}",
        "workload",
        "interp",
        "jit",
        "baseline",
        "interp",
        "jit",
        "interp e2e",
        "jit e2e",
        "base e2e",
        "interp",
        "jit"
    );
    for w in 0..4 {
        let prog = program(SOURCES[w]);
        let input = lines(w, n);
        let events = decode_all(&input);
        let typed_events = typed(&events);
        // Each engine's own decoded form, built before the timed region.
        let interp_batches = batches(&interp_engine(&prog), &events);
        let jit_batches = batches(&jit_engine(&prog), &events);
        let interp_kernel = time_with(
            runs,
            || interp_engine(&prog),
            |e| kernel(e, &interp_batches),
        );
        let jit_kernel = time_with(runs, || jit_engine(&prog), |e| kernel(e, &jit_batches));
        let base_kernel = time(runs, || {
            black_box(baseline(w, black_box(&typed_events)));
        });
        let interp_e2e = time_with(runs, || interp_engine(&prog), |e| end_to_end(e, &input));
        let jit_e2e = time_with(runs, || jit_engine(&prog), |e| end_to_end(e, &input));
        let base_e2e = time(runs, || {
            let evs = decode_all(black_box(&input));
            black_box(baseline(w, &typed(&evs)));
        });
        let rate = |s: f64| n as f64 / s;
        println!(
            "{:<26} {:>12.0} {:>12.0} {:>12.0} {:>6.1}x {:>6.1}x   {:>12.0} {:>12.0} {:>12.0} {:>6.1}x {:>6.1}x",
            NAMES[w],
            rate(interp_kernel),
            rate(jit_kernel),
            rate(base_kernel),
            interp_kernel / base_kernel,
            jit_kernel / base_kernel,
            rate(interp_e2e),
            rate(jit_e2e),
            rate(base_e2e),
            interp_e2e / base_e2e,
            jit_e2e / base_e2e,
        );
    }
    println!(
        "\nratio = engine time / baseline time (how many times slower than hand-written Rust)"
    );
    println!("compile times and memory per machine instance: `cargo bench -p dtc-jit`");
}
