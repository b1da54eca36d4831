//! The JIT's own costs: compile time of every sample (goal: under 5 ms
//! each) and heap bytes per machine instance under both engines, counted by
//! a global allocator (so this bench lives in the one crate allowed
//! `unsafe`). Throughput is `cargo bench -p dtc-engine`.
//!
//! Run with `cargo bench -p dtc-jit`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use dtc_engine::event::{Input, InputEvent, decode_line};
use dtc_engine::{Engine, Options};
use dtc_jit::JitEngine;

const START: i64 = 1_795_341_600_000_000_000;

/// The file-hashing machine of the throughput bench.
const MACHINE: &str = "event LogStartingFileHash { fileName: string }\n\
     event LogEndFileHash { fileName: string, hashValue: string }\n\
     machine hashing per event.thread_id max 10_000 {\n state Unknown\n state HashingFile { started: timestamp }\n\
     on LogStartingFileHash in Unknown -> HashingFile { started = event.time }\n\
     on LogEndFileHash in HashingFile when event.time - started > 2s -> Unknown { emit log Slow { took: event.time - started } }\n\
     on LogEndFileHash in HashingFile -> Unknown\n}";

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only
// keeps a count beside.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn program_of(src: &str) -> dtc_ir::Program {
    let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
    let out = session.check_source("bench.dt", src);
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    out.lower().expect("checks").expect("verifies")
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
    compile_times();
    instance_memory();
}

/// The JIT's compile time of every sample, best of 5.
fn compile_times() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root");
    let mut programs = Vec::new();
    let mut stack = vec![root.join("samples")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dt")
                && p.with_extension("events.jsonl").exists()
            {
                programs.push(p);
            }
        }
    }
    programs.sort();
    println!("JIT compile time per sample (best of 5; goal < 5 ms)");
    let mut worst = 0.0f64;
    for p in programs {
        let out = dtc_driver::Session::new(dtc_driver::RealFs)
            .check_path(&p)
            .expect("readable");
        let name = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
        let Some(Ok(prog)) = out.lower() else {
            println!("  {name}: does not lower");
            continue;
        };
        let mut report = None;
        let secs = time(5, || {
            let e = JitEngine::new(prog.clone(), Options::default()).expect("compiles");
            report = Some(e.report().clone());
        });
        worst = worst.max(secs);
        let Some(r) = report else { continue };
        println!(
            "  {name:<48} {:>7.3} ms  ({} functions; IR nodes: {} native, {} helper, {} interpreted)",
            secs * 1e3,
            r.functions,
            r.nodes.native,
            r.nodes.helper,
            r.nodes.interpreted
        );
    }
    println!("  worst: {:.3} ms", worst * 1e3);
}

/// Heap bytes per live instance of the file-hashing machine (one per
/// thread id, each in `HashingFile` with its timestamp slot), under both
/// engines: the instance, its key, its slots, its deadline-free map entry,
/// and the runtime's map growth, divided by the number of instances.
fn instance_memory() {
    let prog = program_of(MACHINE);
    let k = 10_000;
    let events: Vec<InputEvent> = (0..k)
        .flat_map(|i| {
            decode_line(&format!(
                r#"{{"event":"LogStartingFileHash","time":{},"fileName":"/f","thread.id":{i}}}"#,
                START + i as i64
            ))
        })
        .filter_map(|i| match i {
            Input::Event(e) => Some(e),
            Input::Malformed { .. } => None,
        })
        .collect();
    println!("\nmemory per machine instance ({k} instances of the file-hashing machine)");
    for jit in [false, true] {
        let mut engine = if jit {
            JitEngine::new(prog.clone(), Options::default())
                .expect("compiles")
                .into_engine()
        } else {
            Engine::new(prog.clone(), Options::default())
        };
        let before = LIVE.load(Ordering::Relaxed);
        for ev in &events {
            engine.push_event(ev.clone());
            drop(engine.drain());
        }
        let after = LIVE.load(Ordering::Relaxed);
        black_box(&engine);
        println!(
            "  {:<7} {:>6.0} bytes per instance (live heap)",
            if jit { "jit" } else { "interp" },
            (after - before) as f64 / k as f64
        );
    }
}
