//! The runtime never panics and never loses an event: every sample runs
//! over thousands of generated events of its scenario, mixed with mutated
//! and garbage lines, and every input line is accounted for in the summary.

use dtc_driver::Session;
use dtc_engine::generate::{Scenario, generate};
use dtc_engine::{Engine, Options};
use dtc_tests::{BaseDirFs, workspace_root};

const SAMPLES: [(&str, Scenario); 8] = [
    (
        "samples/01-file-hashing/file_hashing.dt",
        Scenario::FileHashing,
    ),
    (
        "samples/02-chatty-event/chatty_event.dt",
        Scenario::ChattyBanner,
    ),
    ("samples/03-secret/drop_event.dt", Scenario::Secret),
    ("samples/03-secret/drop_field.dt", Scenario::Secret),
    (
        "samples/04-errors-while-hashing/errors_while_hashing.dt",
        Scenario::FileHashing,
    ),
    ("samples/05-work-queue/work_queue.dt", Scenario::WorkQueue),
    (
        "samples/06-verify-hash/verify_hash.dt",
        Scenario::FileHashing,
    ),
    (
        "samples/07-cache-probe/cache_probe.dt",
        Scenario::CacheProbe,
    ),
];

#[test]
fn samples_survive_generated_and_mutated_streams() {
    let root = workspace_root();
    let n: usize = std::env::var("DTC_ENGINE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    for (i, (path, scenario)) in SAMPLES.iter().enumerate() {
        let out = Session::new(BaseDirFs { base: root.clone() })
            .check_path(std::path::Path::new(path))
            .expect("readable");
        let program = out.lower().expect("checks").expect("verifies");
        let mut engine = Engine::new(
            program,
            Options {
                seed: i as u64,
                ..Options::default()
            },
        );
        let lines = generate(*scenario, n, 7 + i as u64);
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ i as u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fed = 0u64;
        for line in &lines {
            // One line in twenty is damaged: truncated, a byte flipped, or a
            // field's value replaced by something of another type.
            let damaged = match next() % 20 {
                0 => line[..(next() as usize % line.len().max(1))].to_string(),
                1 => line.replacen(':', ":\"x\",\"y\":", 1),
                2 => line.replace("\"depth\":", "\"depth\":\"deep\",\"d\":"),
                _ => line.clone(),
            };
            engine.push_line(&damaged);
            fed += 1;
            let _ = engine.drain();
        }
        engine.finish(true);
        let outputs = engine.drain();
        let c = &engine.counters;
        assert_eq!(c.lines, fed, "{path}: every line counted");
        assert_eq!(
            c.events,
            c.egressed + c.suppressed + c.sampled_out + c.rate_limited,
            "{path}: every event egresses or is shaped away by the program, none vanish: {c:?}"
        );
        assert!(c.malformed > 0, "{path}: the damaged lines are reported");
        let _ = outputs;
    }
}
