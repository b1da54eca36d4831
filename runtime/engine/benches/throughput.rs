//! Events per second of the reference interpreter and of the JIT on four
//! workloads, against a hand-written Rust baseline of the same logic
//! measured in the same run: (1) a where + count, (2) a summarize by a
//! string key, (3) the file-hashing state machine keyed per thread, (4)
//! redaction of three fields. Each is measured twice: the kernel (events
//! already decoded, each engine's records against the baseline's structs)
//! and end to end (from the same JSON lines, decoding included). The JIT is
//! fed in batches of [`BATCH`] (`push_events`, `push_lines`), so queries
//! with event-only `where` stages run their compiled batch filter.
//!
//! The JIT's compile time per sample and the memory of a machine instance
//! are `cargo bench -p dtc-jit` (it counts allocations, which needs
//! `unsafe`, allowed only in that crate).
//!
//! Run with `cargo bench -p dtc-engine` (`DTC_BENCH_EVENTS` sets the stream
//! size). Absolute numbers on a shared machine are noise; the ratios are the
//! result. The VRL peer is a separate crate (`benches/vrl-peer`).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Engine, Options};
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

/// The same logic by hand, on decoded events.
fn baseline(workload: usize, events: &[InputEvent]) -> u64 {
    let mut out = 0u64;
    match workload {
        0 => {
            let mut counts: HashMap<i64, u64> = HashMap::new();
            for e in events {
                if e.name.as_deref() == Some("Request")
                    && let Some(Json::Number(s)) = e.attributes.get("status")
                    && s.as_i64().is_some_and(|s| s >= 500)
                {
                    *counts.entry(e.time.div_euclid(60_000_000_000)).or_default() += 1;
                }
            }
            out += counts.values().sum::<u64>();
        }
        1 => {
            let mut counts: HashMap<(i64, String), u64> = HashMap::new();
            for e in events {
                if let Some(Json::String(p)) = e.attributes.get("path") {
                    *counts
                        .entry((e.time.div_euclid(60_000_000_000), p.clone()))
                        .or_default() += 1;
                }
            }
            out += counts.len() as u64;
        }
        2 => {
            let mut started: HashMap<i64, i64> = HashMap::new();
            for e in events {
                let Some(Json::Number(t)) = e.attributes.get("thread.id") else {
                    continue;
                };
                let Some(thread) = t.as_i64() else { continue };
                match e.name.as_deref() {
                    Some("LogStartingFileHash") => {
                        started.entry(thread).or_insert(e.time);
                    }
                    Some("LogEndFileHash") => {
                        if let Some(s) = started.remove(&thread)
                            && e.time - s > 2_000_000_000
                        {
                            out += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {
            for e in events {
                let mut j = dtc_engine::event::to_flat_json(e);
                if let Some(obj) = j.as_object_mut() {
                    if let Some(Json::String(u)) = obj.get("user") {
                        let h = dtc_engine::interp::keyed_hash(
                            (1, 2),
                            &dtc_engine::value::Value::str(u),
                        );
                        obj.insert("user".into(), Json::String(h));
                    }
                    if let Some(Json::String(m)) = obj.get("email") {
                        let masked = dtc_engine::interp::mask(m);
                        obj.insert("email".into(), Json::String(masked));
                    }
                    obj.remove("ip");
                }
                out += black_box(j).is_object() as u64;
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
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: usize = std::env::var("DTC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runs = 3;
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
        let interp_kernel = time(runs, || {
            let mut e = Engine::new(prog.clone(), Options::default());
            for ev in &events {
                e.push_event(ev.clone());
                black_box(e.drain());
            }
            e.finish(true);
            black_box(e.drain());
        });
        let jit_kernel = time(runs, || {
            let mut e = JitEngine::new(prog.clone(), Options::default()).expect("compiles");
            for chunk in events.chunks(BATCH) {
                e.push_events(chunk.iter().cloned());
                black_box(e.drain());
            }
            e.finish(true);
            black_box(e.drain());
        });
        let base_kernel = time(runs, || {
            black_box(baseline(w, black_box(&events)));
        });
        let interp_e2e = time(runs, || {
            let mut e = Engine::new(prog.clone(), Options::default());
            for l in &input {
                e.push_line(l);
                black_box(e.drain());
            }
            e.finish(true);
            black_box(e.drain());
        });
        let jit_e2e = time(runs, || {
            let mut e = JitEngine::new(prog.clone(), Options::default()).expect("compiles");
            for chunk in input.chunks(BATCH) {
                e.push_lines(chunk.iter().map(String::as_str));
                black_box(e.drain());
            }
            e.finish(true);
            black_box(e.drain());
        });
        let base_e2e = time(runs, || {
            let evs = decode_all(black_box(&input));
            black_box(baseline(w, &evs));
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
