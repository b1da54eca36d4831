//! Deterministic generators of realistic event streams for the sample
//! scenarios, for tests and benchmarks.
//!
//! Each scenario gives an endless stream of flat JSON lines (the form
//! [`crate::event::decode_line`] reads), in the schemas of the samples under
//! `samples/`. Event times start at [`START`] (2026-11-22T10:00:00Z) and
//! strictly increase, with gaps like a real service's. The same scenario and
//! seed always give the same lines, on every platform: the generator uses its
//! own integer-only PRNG (splitmix64), no floating point and no clock.
//!
//! | scenario | name | events |
//! | --- | --- | --- |
//! | [`Scenario::FileHashing`] | `file-hashing` | `LogStartingFileHash {fileName}`, then `LogEndFileHash {fileName, hashValue}` or (3%) `ErrorHashing {fileName, e}`, on 8 threads (`thread.id`); about 4% of the hashes take more than 2 s; a few errors outside any hash |
//! | [`Scenario::ChattyBanner`] | `chatty-event` | `LogWelcomeBanner` with a `time` attribute, about 60 a minute, and a rare `LogLaunch {version}` (always first) |
//! | [`Scenario::Secret`] | `secret` | `LogWelcomeBanner {secret, version}` with a `time` attribute |
//! | [`Scenario::WorkQueue`] | `work-queue` | `LogEnqueueWork {depth}` and `LogDequeueWork {depth}`: a queue that hovers around 100 to 400, bursts past 1000 and drains below 300, over and over |
//! | [`Scenario::CacheProbe`] | `cache-probe` | `LogWelcome {user}` and `CacheCount {cacheLength}` (a uprobe's reading of a growing, sometimes evicted cache) |
//!
//! An attribute named like a standard field (the banner's `time`) is written
//! under `"attributes"`, as [`crate::event::to_flat_json`] does.

use crate::event::format_time;

/// The time of the first event: 2026-11-22T10:00:00Z, in nanoseconds since
/// the Unix epoch.
pub const START: i64 = 1_795_341_600_000_000_000;

const MS: i64 = 1_000_000;

/// A sample scenario whose events [`generate`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Samples 01, 04 and 06: file hashing on several threads.
    FileHashing,
    /// Sample 02: a chatty welcome banner beside a rare launch event.
    ChattyBanner,
    /// Sample 03: a welcome banner that logs a secret.
    Secret,
    /// Sample 05: a work queue that backs up and drains.
    WorkQueue,
    /// Sample 07: welcomes and a probed cache length.
    CacheProbe,
}

impl Scenario {
    /// Every scenario, in the order of the samples.
    pub const ALL: [Scenario; 5] = [
        Scenario::FileHashing,
        Scenario::ChattyBanner,
        Scenario::Secret,
        Scenario::WorkQueue,
        Scenario::CacheProbe,
    ];

    /// The scenario's name, as [`scenario_for`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FileHashing => "file-hashing",
            Scenario::ChattyBanner => "chatty-event",
            Scenario::Secret => "secret",
            Scenario::WorkQueue => "work-queue",
            Scenario::CacheProbe => "cache-probe",
        }
    }
}

/// The scenario of a name: `file-hashing`, `chatty-event`, `secret`,
/// `work-queue` or `cache-probe`; also `errors-while-hashing` and
/// `verify-hash`, the other samples that read file hashing events.
pub fn scenario_for(name: &str) -> Option<Scenario> {
    match name {
        "errors-while-hashing" | "verify-hash" => Some(Scenario::FileHashing),
        _ => Scenario::ALL.into_iter().find(|s| s.name() == name),
    }
}

/// `events` lines of the scenario's stream for the seed: flat JSON lines,
/// one event each, in time order.
pub fn generate(scenario: Scenario, events: usize, seed: u64) -> Vec<String> {
    Generator::new(scenario, seed).take(events).collect()
}

/// The endless stream behind [`generate`], for streams too large to hold.
pub struct Generator {
    rng: Rng,
    /// The time of the last line given.
    last: i64,
    /// Lines given so far.
    count: u64,
    state: State,
}

enum State {
    FileHashing {
        threads: Vec<HashThread>,
    },
    Banner {
        version: usize,
    },
    Secret {
        version: usize,
        key: String,
    },
    WorkQueue {
        depth: i64,
        phase: QueuePhase,
        phase_left: u64,
    },
    CacheProbe {
        length: i64,
    },
}

struct HashThread {
    id: u32,
    /// When this thread logs next.
    at: i64,
    /// The file being hashed, and when the hash ends.
    hashing: Option<(String, i64)>,
    /// The hash ends in an error.
    fails: bool,
}

#[derive(Clone, Copy)]
enum QueuePhase {
    Normal,
    Burst,
    Drain,
}

impl Generator {
    /// The stream of `scenario` for `seed`.
    pub fn new(scenario: Scenario, seed: u64) -> Generator {
        let mut rng = Rng(seed ^ 0x5eed_0fd7_c0ff_ee00);
        let state = match scenario {
            Scenario::FileHashing => State::FileHashing {
                threads: THREAD_IDS
                    .iter()
                    .map(|&id| HashThread {
                        id,
                        at: START + rng.range(0, 500) * MS + rng.range(0, MS),
                        hashing: None,
                        fails: false,
                    })
                    .collect(),
            },
            Scenario::ChattyBanner => State::Banner {
                version: rng.below(VERSIONS.len()),
            },
            Scenario::Secret => State::Secret {
                version: rng.below(VERSIONS.len()),
                key: api_key(&mut rng),
            },
            Scenario::WorkQueue => State::WorkQueue {
                depth: rng.range(50, 200),
                phase: QueuePhase::Normal,
                phase_left: rng.range(150, 600) as u64,
            },
            Scenario::CacheProbe => State::CacheProbe {
                length: rng.range(0, 50),
            },
        };
        Generator {
            rng,
            last: START - 1,
            count: 0,
            state,
        }
    }

    /// The next time after `last`, `gap` later (at least 1 ns).
    fn after(&mut self, gap: i64) -> i64 {
        self.last = self.last.saturating_add(gap.max(1));
        self.last
    }

    fn file_hashing(&mut self) -> String {
        let State::FileHashing { threads } = &mut self.state else {
            unreachable!("the state matches the scenario")
        };
        let rng = &mut self.rng;
        let Some(thread) = threads.iter_mut().min_by_key(|t| (t.at, t.id)) else {
            unreachable!("there are threads")
        };
        // Strictly increasing, even when two threads log at the same time.
        let time = thread.at.max(self.last + 1);
        self.last = time;
        let id = thread.id;
        let at = format_time(time);
        const RESOURCE: &str = r#""resource":{"service.name":"imagesvc"}"#;
        match thread.hashing.take() {
            None if rng.chance(5) => {
                // An error outside any hash (a file that could not be opened).
                let file = file_name(rng);
                let e = ERRORS[rng.below(ERRORS.len())];
                thread.at = time + rng.range(20, 1500) * MS + rng.range(0, MS);
                format!(
                    r#"{{"event":"ErrorHashing","time":"{at}","severity":17,"thread.id":{id},"fileName":"{file}","e":"{e}",{RESOURCE}}}"#
                )
            }
            None => {
                let file = file_name(rng);
                let took = match rng.below(1000) {
                    0..=849 => rng.range(5, 400),
                    850..=959 => rng.range(400, 2000),
                    _ => rng.range(2001, 8000),
                } * MS
                    + rng.range(0, MS);
                thread.fails = rng.chance(30);
                thread.at = time + if thread.fails { took / 2 } else { took };
                let line = format!(
                    r#"{{"event":"LogStartingFileHash","time":"{at}","severity":9,"thread.id":{id},"fileName":"{file}",{RESOURCE}}}"#
                );
                thread.hashing = Some((file, time + took));
                line
            }
            Some((file, _)) => {
                thread.at = time + rng.range(20, 1500) * MS + rng.range(0, MS);
                if thread.fails {
                    let e = ERRORS[rng.below(ERRORS.len())];
                    format!(
                        r#"{{"event":"ErrorHashing","time":"{at}","severity":17,"thread.id":{id},"fileName":"{file}","e":"{e}",{RESOURCE}}}"#
                    )
                } else {
                    let hash = rng.hex(32);
                    format!(
                        r#"{{"event":"LogEndFileHash","time":"{at}","severity":9,"thread.id":{id},"fileName":"{file}","hashValue":"{hash}",{RESOURCE}}}"#
                    )
                }
            }
        }
    }

    fn banner(&mut self) -> String {
        let gap = self.rng.range(20, 2000) * MS + self.rng.range(0, MS);
        let time = self.after(gap);
        let at = format_time(time);
        let shown = shown_at(time);
        let launch = self.count == 0 || self.rng.chance(2);
        let State::Banner { version } = &mut self.state else {
            unreachable!("the state matches the scenario")
        };
        if launch {
            if self.count != 0 {
                *version = (*version + 1) % VERSIONS.len();
            }
            let v = VERSIONS[*version];
            format!(
                r#"{{"event":"LogLaunch","time":"{at}","severity":9,"version":"{v}","resource":{{"service.name":"webapp"}}}}"#
            )
        } else {
            format!(
                r#"{{"event":"LogWelcomeBanner","time":"{at}","severity":9,"attributes":{{"time":"{shown}"}},"resource":{{"service.name":"webapp"}}}}"#
            )
        }
    }

    fn secret(&mut self) -> String {
        let gap = self.rng.range(20, 2000) * MS + self.rng.range(0, MS);
        let time = self.after(gap);
        let at = format_time(time);
        let shown = shown_at(time);
        let State::Secret { version, key } = &mut self.state else {
            unreachable!("the state matches the scenario")
        };
        // Now and then the service restarts: a new version, a new key.
        if self.count != 0 && self.rng.chance(2) {
            *version = (*version + 1) % VERSIONS.len();
            *key = api_key(&mut self.rng);
        }
        let v = VERSIONS[*version];
        format!(
            r#"{{"event":"LogWelcomeBanner","time":"{at}","severity":9,"secret":"{key}","version":"{v}","attributes":{{"time":"{shown}"}},"resource":{{"service.name":"webapp"}}}}"#
        )
    }

    fn work_queue(&mut self) -> String {
        let gap = self.rng.range(5, 400) * MS + self.rng.range(0, MS);
        let time = self.after(gap);
        let at = format_time(time);
        let rng = &mut self.rng;
        let State::WorkQueue {
            depth,
            phase,
            phase_left,
        } = &mut self.state
        else {
            unreachable!("the state matches the scenario")
        };
        // The chance of an enqueue, per mille, and the largest step.
        let (enqueue_chance, step) = match phase {
            QueuePhase::Normal if *depth < 100 => (650, 6),
            QueuePhase::Normal if *depth > 400 => (350, 6),
            QueuePhase::Normal => (500, 6),
            QueuePhase::Burst => (850, 25),
            QueuePhase::Drain => (150, 20),
        };
        let enqueue = rng.chance(enqueue_chance);
        let change = rng.range(1, step + 1);
        if enqueue {
            *depth += change;
        } else {
            *depth = (*depth - change).max(0);
        }
        *phase_left = phase_left.saturating_sub(1);
        *phase = match *phase {
            QueuePhase::Normal if *phase_left == 0 => QueuePhase::Burst,
            QueuePhase::Burst if *depth > 1000 && rng.chance(20) => QueuePhase::Drain,
            QueuePhase::Drain if *depth < 300 => {
                *phase_left = rng.range(300, 1500) as u64;
                QueuePhase::Normal
            }
            same => same,
        };
        let d = *depth;
        let event = if enqueue {
            "LogEnqueueWork"
        } else {
            "LogDequeueWork"
        };
        format!(
            r#"{{"event":"{event}","time":"{at}","severity":5,"depth":{d},"resource":{{"service.name":"workqueue"}}}}"#
        )
    }

    fn cache_probe(&mut self) -> String {
        let gap = self.rng.range(30, 1500) * MS + self.rng.range(0, MS);
        let time = self.after(gap);
        let at = format_time(time);
        let rng = &mut self.rng;
        let State::CacheProbe { length } = &mut self.state else {
            unreachable!("the state matches the scenario")
        };
        if rng.chance(400) {
            if rng.chance(8) {
                // An eviction.
                *length = *length * rng.range(40, 80) / 100;
            } else {
                *length = (*length + rng.range(0, 4)).min(10_000);
            }
            let n = *length;
            format!(r#"{{"event":"CacheCount","time":"{at}","cacheLength":{n}}}"#)
        } else {
            let user = USERS[rng.below(USERS.len())];
            let n = rng.range(1, 100);
            format!(
                r#"{{"event":"LogWelcome","time":"{at}","severity":9,"user":"{user}{n}","resource":{{"service.name":"webapp"}}}}"#
            )
        }
    }
}

impl Iterator for Generator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let line = match self.state {
            State::FileHashing { .. } => self.file_hashing(),
            State::Banner { .. } => self.banner(),
            State::Secret { .. } => self.secret(),
            State::WorkQueue { .. } => self.work_queue(),
            State::CacheProbe { .. } => self.cache_probe(),
        };
        self.count += 1;
        Some(line)
    }
}

const THREAD_IDS: [u32; 8] = [3, 7, 12, 14, 21, 22, 25, 31];

const ERRORS: [&str; 4] = [
    "IOException",
    "FileNotFoundException",
    "UnauthorizedAccessException",
    "PathTooLongException",
];

const VERSIONS: [&str; 4] = ["2.3.0", "2.3.1", "2.4.0", "2.4.1-rc.1"];

/// Users' names: file paths and welcomes carry them, which is why the
/// samples treat them as personal data.
const USERS: [&str; 8] = [
    "alice", "bob", "chen.wei", "dmitri", "esther", "farid", "grace", "hiro",
];

const STEMS: [&str; 8] = [
    "IMG_",
    "scan-",
    "avatar",
    "holiday",
    "invoice-",
    "export",
    "photo",
    "screenshot ",
];

/// Extensions, some more common than others; "" is a file without one.
const EXTENSIONS: [&str; 16] = [
    "jpg", "jpg", "jpg", "jpg", "png", "png", "png", "jpeg", "JPG", "gif", "webp", "heic", "tiff",
    "pdf", "tar.gz", "",
];

fn file_name(rng: &mut Rng) -> String {
    let user = USERS[rng.below(USERS.len())];
    let stem = STEMS[rng.below(STEMS.len())];
    let n = rng.range(1, 10_000);
    match EXTENSIONS[rng.below(EXTENSIONS.len())] {
        "" => format!("/srv/imagesvc/uploads/{user}/{stem}{n}"),
        ext => format!("/srv/imagesvc/uploads/{user}/{stem}{n}.{ext}"),
    }
}

fn api_key(rng: &mut Rng) -> String {
    format!("sk_live_{}", rng.hex(12))
}

/// The banner's own rendering of the time it was shown:
/// `2026-11-22 10:00:01.234`.
fn shown_at(time: i64) -> String {
    let text = format_time(time - time % MS);
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..hi` (`lo` < `hi`).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }

    /// True with a chance of `per_mille` in 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    /// `bytes` random bytes in lowercase hex.
    fn hex(&mut self, bytes: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes * 2 + 16);
        while out.len() < bytes * 2 {
            let word = self.next();
            for nibble in 0..16 {
                let n = (word >> (nibble * 4)) & 0xf;
                out.push(char::from(DIGITS[n as usize]));
            }
        }
        out.truncate(bytes * 2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Input, InputEvent, decode_line, to_flat_json};
    use std::collections::BTreeMap;

    fn decoded(lines: &[String]) -> Vec<InputEvent> {
        lines
            .iter()
            .map(|line| match decode_line(line).as_slice() {
                [Input::Event(e)] => e.clone(),
                other => panic!("{line} decodes to {other:?}"),
            })
            .collect()
    }

    fn int(e: &InputEvent, key: &str) -> i64 {
        e.attributes[key].as_i64().expect(key)
    }

    fn text<'a>(e: &'a InputEvent, key: &str) -> &'a str {
        e.attributes[key].as_str().expect(key)
    }

    #[test]
    fn names() {
        for s in Scenario::ALL {
            assert_eq!(scenario_for(s.name()), Some(s));
        }
        assert_eq!(scenario_for("verify-hash"), Some(Scenario::FileHashing));
        assert_eq!(scenario_for("nope"), None);
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        for s in Scenario::ALL {
            let a = generate(s, 500, 1);
            assert_eq!(a.len(), 500);
            assert_eq!(a, generate(s, 500, 1));
            assert_ne!(a, generate(s, 500, 2));
            // A shorter stream is a prefix of a longer one.
            assert_eq!(generate(s, 10, 1), a[..10]);
        }
        assert_eq!(generate(Scenario::FileHashing, 0, 1), Vec::<String>::new());
    }

    #[test]
    fn pinned_output() {
        // A change to this line changes every generated benchmark input.
        assert_eq!(
            generate(Scenario::WorkQueue, 1, 0)[0],
            r#"{"event":"LogEnqueueWork","time":"2026-11-22T10:00:00.02515566Z","severity":5,"depth":110,"resource":{"service.name":"workqueue"}}"#
        );
    }

    #[test]
    fn every_line_decodes_round_trips_and_time_increases() {
        for s in Scenario::ALL {
            let lines = generate(s, 1000, 9);
            let events = decoded(&lines);
            assert_eq!(events[0].time, events[0].time.max(START));
            for pair in events.windows(2) {
                assert!(pair[0].time < pair[1].time, "{s:?}: {pair:?}");
            }
            for e in &events {
                assert!(e.name.is_some());
                let flat = to_flat_json(e).to_string();
                assert_eq!(&decoded(&[flat])[0], e);
            }
        }
    }

    #[test]
    fn file_hashing_is_realistic() {
        let events = decoded(&generate(Scenario::FileHashing, 8000, 3));
        let mut hashing: BTreeMap<i64, (String, i64)> = BTreeMap::new();
        let (mut hashes, mut slow, mut errors_in, mut errors_out) = (0, 0, 0, 0);
        let mut extensions = std::collections::BTreeSet::new();
        for e in &events {
            let thread = int(e, "thread.id");
            let file = text(e, "fileName").to_string();
            extensions.insert(file.rsplit_once('.').map(|(_, x)| x.to_string()));
            match e.name.as_deref() {
                Some("LogStartingFileHash") => {
                    assert!(hashing.insert(thread, (file, e.time)).is_none());
                }
                Some("LogEndFileHash") => {
                    let (started_file, started) = hashing.remove(&thread).expect("a start");
                    assert_eq!(started_file, file);
                    assert_eq!(text(e, "hashValue").len(), 64);
                    hashes += 1;
                    if e.time - started > 2_000 * MS {
                        slow += 1;
                    }
                }
                Some("ErrorHashing") => {
                    assert!(!text(e, "e").is_empty());
                    match hashing.remove(&thread) {
                        Some((started_file, _)) => {
                            assert_eq!(started_file, file);
                            errors_in += 1;
                        }
                        None => errors_out += 1,
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(hashes > 3000, "{hashes}");
        assert!(
            slow * 100 > hashes * 2 && slow * 100 < hashes * 8,
            "{slow} of {hashes}"
        );
        assert!(errors_in > 20 && errors_out > 2, "{errors_in} {errors_out}");
        assert!(extensions.len() >= 10, "{extensions:?}");
        let minutes = (events.last().unwrap().time - START) / (60_000 * MS);
        assert!((5..600).contains(&minutes), "{minutes}");
    }

    #[test]
    fn banners_are_chatty_and_launches_rare() {
        let events = decoded(&generate(Scenario::ChattyBanner, 5000, 4));
        assert_eq!(events[0].name.as_deref(), Some("LogLaunch"));
        let launches = events
            .iter()
            .filter(|e| e.name.as_deref() == Some("LogLaunch"));
        let launches = launches.count();
        assert!((2..40).contains(&launches), "{launches}");
        let minutes = (events.last().unwrap().time - START) / (60_000 * MS);
        let per_minute = events.len() as i64 / minutes.max(1);
        assert!(per_minute >= 30, "{per_minute}");
        let banner = events
            .iter()
            .find(|e| e.name.as_deref() == Some("LogWelcomeBanner"));
        let shown = text(banner.unwrap(), "time");
        assert!(shown.starts_with("2026-11-22 10:0"), "{shown}");
    }

    #[test]
    fn secrets_are_logged() {
        for e in decoded(&generate(Scenario::Secret, 200, 5)) {
            assert!(text(&e, "secret").starts_with("sk_live_"));
            assert!(!text(&e, "version").is_empty());
            assert!(!text(&e, "time").is_empty());
        }
    }

    #[test]
    fn the_queue_bursts_and_drains() {
        let events = decoded(&generate(Scenario::WorkQueue, 8000, 6));
        let (mut bursts, mut backlogged) = (0, false);
        for e in &events {
            let depth = int(e, "depth");
            assert!(depth >= 0);
            match e.name.as_deref() {
                Some("LogEnqueueWork") if !backlogged && depth > 1000 => backlogged = true,
                Some("LogDequeueWork") if backlogged && depth < 500 => {
                    backlogged = false;
                    bursts += 1;
                }
                _ => {}
            }
        }
        assert!(bursts >= 3, "{bursts}");
        // The first burst comes early.
        let first = events.iter().position(|e| int(e, "depth") > 1000).unwrap();
        assert!(first < 2000, "{first}");
    }

    #[test]
    fn cache_probe_counts_grow() {
        let events = decoded(&generate(Scenario::CacheProbe, 5000, 7));
        let counts: Vec<i64> = events
            .iter()
            .filter(|e| e.name.as_deref() == Some("CacheCount"))
            .map(|e| int(e, "cacheLength"))
            .collect();
        assert!(counts.len() > 1000);
        assert!(counts.last() > counts.first());
        let welcomes = events
            .iter()
            .filter(|e| e.name.as_deref() == Some("LogWelcome"));
        assert!(welcomes.count() > 2000);
    }
}
