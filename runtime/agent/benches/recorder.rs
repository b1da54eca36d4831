//! What the flight recorder costs the pipeline, per event, beside what the
//! engine itself costs on the same events (measured in the same run).
//!
//! A program that can write its recorder keeps every batch it sees on a
//! `Tape`: the first program in the chain shares the batch as received (a
//! reference count per batch), a later one copies the shaped events it
//! saw. Events are serialised into the recorder only when a snapshot or
//! `verbose_logs` fires. `cargo bench -p dtc-agent --bench recorder`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use dtc_actions::FlightRecorder;
use dtc_agent::actions::{Seen, Tape};
use dtc_engine::event::InputEvent;
use serde_json::json;

const BATCH: usize = 512;
const BATCHES: usize = 400;

fn events() -> Vec<Option<InputEvent>> {
    (0..BATCH)
        .map(|i| {
            let line = json!({
                "event": if i % 2 == 0 { "LogWelcomeBanner" } else { "LogLaunch" },
                "time": 1_795_341_600_000_000_000i64 + i as i64 * 1_000_000,
                "severity": 9, "body": "welcome to the service",
                "version": "2.4.0", "seq": i, "secret": "hunter2",
                "attributes": { "time": "2026-11-22 10:00:00" },
                "resource": { "service.name": "imagesvc", "process.pid": 4242 },
            });
            Some(dtc_engine::event::from_flat_json(line).unwrap())
        })
        .collect()
}

/// The best of five runs of `f`, per event.
fn per_event(mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed() / (BATCH * BATCHES) as u32
        })
        .min()
        .unwrap()
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let session = dtc_driver::Session::new(dtc_driver::RealFs);
    let out = session
        .check_path(&root.join("samples/02-chatty-event/chatty_event.dt"))
        .unwrap();
    let program = out.lower().unwrap().unwrap();
    let batch = events();

    let engine = per_event(|| {
        let mut engine = dtc_engine::Engine::new(program.clone(), Default::default());
        for _ in 0..BATCHES {
            for e in batch.iter().flatten() {
                engine.push_event(e.clone());
                std::hint::black_box(engine.drain());
            }
        }
    });
    let shared: Seen = Rc::new(batch.clone());
    let first = per_event(|| {
        let mut tape = Tape::default();
        for _ in 0..BATCHES {
            tape.push(shared.clone(), 0, 1000);
        }
        std::hint::black_box(tape.len());
    });
    let later = per_event(|| {
        let mut tape = Tape::default();
        for _ in 0..BATCHES {
            tape.push(Rc::new(batch.clone()), 0, 1000);
        }
        std::hint::black_box(tape.len());
    });
    let recorder = FlightRecorder::new(1000, 1 << 20);
    let flush = per_event(|| {
        for _ in 0..BATCHES {
            let mut tape = Tape::default();
            tape.push(shared.clone(), 0, 1000);
            tape.flush(&recorder, "p", None, 1000);
        }
    });
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / engine.as_secs_f64();
    println!("per event, best of 5 runs of {BATCHES} batches of {BATCH}:");
    println!("  engine (chatty_event, interpreter):   {engine:>10.1?}");
    println!(
        "  tape, first program (shared batch):   {first:>10.1?}  ({:.2}% of the engine)",
        pct(first)
    );
    println!(
        "  tape, later program (copied events):  {later:>10.1?}  ({:.1}% of the engine)",
        pct(later)
    );
    println!(
        "  flush into the recorder (on trigger): {flush:>10.1?}  (paid only when a snapshot or verbose_logs fires)"
    );
}
