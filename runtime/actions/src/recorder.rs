//! The flight recorder: for each program, the last events it saw, kept in
//! a bounded ring so `flight_recorder.snapshot()` and `verbose_logs` can
//! write what led up to a trigger.
//!
//! Memory is bounded twice per program: at most `max_events` events and at
//! most `max_bytes` bytes of their JSON text; the oldest go first. An event
//! larger than `max_bytes` on its own is not kept, and counted. The number
//! of programs is the agent's (it calls [`FlightRecorder::remove`] when it
//! unloads one), so the whole recorder holds at most
//! programs × `max_bytes` of event text.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The last events of every program.
#[derive(Debug)]
pub struct FlightRecorder {
    max_events: usize,
    max_bytes: usize,
    rings: Mutex<HashMap<String, Ring>>,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<String>,
    bytes: usize,
    stats: RecorderStats,
}

/// What a program's ring did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events recorded.
    pub recorded: u64,
    /// Events pushed out of the ring by newer ones.
    pub evicted: u64,
    /// Events larger than the ring's byte bound, not kept.
    pub oversized: u64,
    /// Events and bytes held now.
    pub held: usize,
    pub held_bytes: usize,
}

impl FlightRecorder {
    /// A recorder keeping, per program, at most `max_events` events and
    /// `max_bytes` bytes of them.
    pub fn new(max_events: usize, max_bytes: usize) -> FlightRecorder {
        FlightRecorder {
            max_events,
            max_bytes,
            rings: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_events(&self) -> usize {
        self.max_events
    }

    /// Records one event (one JSON object, on one line).
    pub fn record(&self, program: &str, event_json: &str) {
        self.record_batch(program, std::iter::once(event_json));
    }

    /// Records a batch of events under one lock.
    pub fn record_batch<'a>(&self, program: &str, events: impl IntoIterator<Item = &'a str>) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = match rings.get_mut(program) {
            Some(r) => r,
            None => rings.entry(program.to_string()).or_default(),
        };
        for event in events {
            if self.max_events == 0 || event.len() > self.max_bytes {
                ring.stats.oversized += 1;
                continue;
            }
            while ring.events.len() >= self.max_events || ring.bytes + event.len() > self.max_bytes
            {
                let Some(old) = ring.events.pop_front() else {
                    break;
                };
                ring.bytes -= old.len();
                ring.stats.evicted += 1;
            }
            // One line per event in a snapshot: a newline inside the text
            // (only possible in pretty-printed JSON) becomes a space.
            let line = if event.contains('\n') {
                event.replace(['\n', '\r'], " ")
            } else {
                event.to_string()
            };
            ring.bytes += line.len();
            ring.events.push_back(line);
            ring.stats.recorded += 1;
        }
    }

    /// A copy of the last `last` events of a program (all it holds when
    /// `None`), oldest first.
    pub fn snapshot(&self, program: &str, last: Option<usize>) -> Vec<String> {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ring) = rings.get(program) else {
            return Vec::new();
        };
        let n = last.unwrap_or(usize::MAX).min(ring.events.len());
        ring.events
            .iter()
            .skip(ring.events.len() - n)
            .cloned()
            .collect()
    }

    pub fn stats(&self, program: &str) -> RecorderStats {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings
            .get(program)
            .map_or_else(RecorderStats::default, |r| RecorderStats {
                held: r.events.len(),
                held_bytes: r.bytes,
                ..r.stats
            })
    }

    /// Forgets a program (unloaded).
    pub fn remove(&self, program: &str) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.remove(program);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_n_events() {
        let r = FlightRecorder::new(3, 1 << 20);
        for i in 0..10 {
            r.record("p", &format!("{{\"i\":{i}}}"));
        }
        assert_eq!(
            r.snapshot("p", None),
            ["{\"i\":7}", "{\"i\":8}", "{\"i\":9}"]
        );
        assert_eq!(r.snapshot("p", Some(1)), ["{\"i\":9}"]);
        assert_eq!(r.snapshot("p", Some(100)).len(), 3);
        let s = r.stats("p");
        assert_eq!((s.recorded, s.evicted, s.held), (10, 7, 3));
        // Programs do not share a ring.
        assert!(r.snapshot("q", None).is_empty());
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_too() {
        let r = FlightRecorder::new(1000, 100);
        let event = format!("\"{}\"", "x".repeat(28)); // 30 bytes
        for _ in 0..50 {
            r.record("p", &event);
        }
        let s = r.stats("p");
        assert_eq!((s.held, s.held_bytes), (3, 90));
        assert!(s.held_bytes <= 100);
        r.record("p", &"y".repeat(101));
        assert_eq!(r.stats("p").oversized, 1);
        assert_eq!(r.stats("p").held, 3, "an oversized event evicts nothing");
        r.record_batch("p", ["{\n\"a\": 1\n}"]);
        assert_eq!(r.snapshot("p", Some(1)), ["{ \"a\": 1 }"]);
        r.remove("p");
        assert_eq!(r.stats("p"), RecorderStats::default());
    }
}
