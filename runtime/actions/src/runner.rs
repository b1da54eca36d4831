//! The action runner: checks an action against the runner's own budgets,
//! does it (at once, or on a thread for the long ones) and reports an
//! [`ActionRecord`].
//!
//! Checks run cheapest first and a refused or failed action uses no budget:
//! the program's budget (decided by the engine), the arguments, the target
//! process and tool (long actions), the bound on long actions running at
//! once, the hourly cap, then the spool's disk budget.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::tools::{check_target, find_tool, resident_bytes, run_tool};
use crate::{
    ActionRecord, ActionRequest, Arg, Budget, FlightRecorder, Outcome, Spool, SpoolError, epoch_ns,
};

/// How the runner behaves; every field has a default.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The process cpu_sample and memory_dump act on when the triggering
    /// event's resource names none.
    pub default_pid: Option<i32>,
    /// The only files `collect_config` may copy (resolved, links followed,
    /// when the action runs: a link to an unlisted file is not listed).
    pub allowed_configs: Vec<PathBuf>,
    /// The largest file `collect_config` copies.
    pub max_config_bytes: u64,
    /// Long actions (cpu_sample, memory_dump) running at once.
    pub max_concurrent: usize,
    /// Per action, how many may start per hour across all programs; an
    /// action not listed has no cap of its own.
    pub hourly_caps: BTreeMap<String, u32>,
    /// The `perf` executable (a name looked up on PATH, or a path).
    pub perf: PathBuf,
    /// The `gcore` executable (it comes with gdb).
    pub gcore: PathBuf,
    /// The longest cpu_sample; a longer `for` is shortened to it.
    pub max_sample: Duration,
    /// The longest verbose period; a longer `for` is shortened to it.
    pub max_verbose: Duration,
    /// How long a memory dump may take before gcore is stopped.
    pub dump_timeout: Duration,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        let caps = [
            ("cpu_sample", 6),
            ("memory_dump", 2),
            ("verbose_logs", 12),
            ("flight_recorder.snapshot", 60),
            ("collect_config", 60),
        ];
        RunnerConfig {
            default_pid: None,
            allowed_configs: Vec::new(),
            max_config_bytes: 1 << 20,
            max_concurrent: 2,
            hourly_caps: caps.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
            perf: "perf".into(),
            gcore: "gcore".into(),
            max_sample: Duration::from_secs(300),
            max_verbose: Duration::from_secs(3600),
            dump_timeout: Duration::from_secs(300),
        }
    }
}

/// What [`ActionRunner::run`] did with a request.
#[derive(Debug)]
pub enum Dispatch {
    /// Finished (or refused, or failed) on the caller's thread.
    Done(ActionRecord),
    /// Running on a thread of its own; its record, with this id, arrives on
    /// the runner's channel.
    Started { id: u64 },
}

/// Runs actions; cheap to share (`Clone`) between threads.
#[derive(Debug, Clone)]
pub struct ActionRunner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RunnerConfig,
    spool: Spool,
    recorder: Arc<FlightRecorder>,
    running: AtomicUsize,
    next_id: AtomicU64,
    /// Start times of each action in the last hour.
    started: Mutex<HashMap<String, VecDeque<Instant>>>,
    verbose: Mutex<HashMap<String, SystemTime>>,
    completed: Mutex<Sender<ActionRecord>>,
}

const HOUR: Duration = Duration::from_secs(3600);

/// The actions this runner knows, and whether each runs on a thread.
const CATALOG: &[(&str, bool)] = &[
    ("cpu_sample", true),
    ("memory_dump", true),
    ("verbose_logs", false),
    ("flight_recorder.snapshot", false),
    ("collect_config", false),
];

impl ActionRunner {
    /// A runner writing into `spool`, snapshotting `recorder`. The receiver
    /// gets the record of every action that ran on a thread.
    pub fn new(
        config: RunnerConfig,
        spool: Spool,
        recorder: Arc<FlightRecorder>,
    ) -> (ActionRunner, Receiver<ActionRecord>) {
        let (tx, rx) = channel();
        let inner = Inner {
            config,
            spool,
            recorder,
            running: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            started: Mutex::new(HashMap::new()),
            verbose: Mutex::new(HashMap::new()),
            completed: Mutex::new(tx),
        };
        (
            ActionRunner {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    pub fn recorder(&self) -> &FlightRecorder {
        &self.inner.recorder
    }

    /// Long actions running now.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Until when `verbose_logs` made this program verbose, if it did.
    pub fn verbose_until(&self, program: &str) -> Option<SystemTime> {
        let v = self.inner.verbose.lock().unwrap_or_else(|e| e.into_inner());
        v.get(program).copied()
    }

    /// Whether the program is verbose at `now`: the agent then stops
    /// suppressing the debug-level events the program suppresses.
    pub fn is_verbose(&self, program: &str, now: SystemTime) -> bool {
        self.verbose_until(program).is_some_and(|t| now < t)
    }

    /// Runs one action. See the crate documentation for the order of checks.
    pub fn run(&self, request: ActionRequest) -> Dispatch {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let t = Timer {
            id,
            requested: SystemTime::now(),
            start: Instant::now(),
        };
        let done = |pid, outcome| Dispatch::Done(t.record(&request, pid, outcome));
        if !request.fired {
            return done(
                None,
                Outcome::Refused {
                    budget: Budget::Program,
                    limit: request.budget.to_string(),
                    reason: "the program's budget for this trigger is spent".into(),
                },
            );
        }
        let Some(&(_, long)) = CATALOG.iter().find(|(a, _)| *a == request.action) else {
            let known: Vec<&str> = CATALOG.iter().map(|(a, _)| *a).collect();
            return done(
                None,
                Outcome::Failed {
                    reason: format!(
                        "unknown action `{}`; this runner does {}",
                        request.action,
                        known.join(", ")
                    ),
                },
            );
        };
        if !long {
            let outcome = match self.admit(&request.action) {
                Err(refused) => refused,
                Ok(()) => self.run_now(&request),
            };
            return done(None, outcome);
        }
        let pid = match self.prepare_long(&request) {
            Ok(pid) => pid,
            Err((pid, outcome)) => return done(pid, outcome),
        };
        // Take a slot of the concurrency bound (given back by the thread).
        let max = self.inner.config.max_concurrent;
        if self
            .inner
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return done(
                Some(pid),
                Outcome::Refused {
                    budget: Budget::Concurrency,
                    limit: format!("{max} long actions at once"),
                    reason: format!("{max} are running"),
                },
            );
        }
        let slot = Slot {
            inner: self.inner.clone(),
        };
        if let Err(refused) = self.admit(&request.action) {
            return done(Some(pid), refused);
        }
        let runner = self.clone();
        let thread_request = request.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dtc-action-{id}"))
            .spawn(move || {
                // A bug here must still give a record, not a silent loss.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runner.run_long(&thread_request, pid)
                }))
                .unwrap_or_else(|_| Outcome::Failed {
                    reason: "internal error: the action's thread panicked; please report it".into(),
                });
                // Free the slot before reporting, so whoever gets the record
                // may start the next long action at once.
                drop(slot);
                let record = t.record(&thread_request, Some(pid), outcome);
                let tx = runner
                    .inner
                    .completed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                // A dropped receiver means nobody listens any more.
                let _ = tx.send(record);
            });
        match spawned {
            Ok(_) => Dispatch::Started { id },
            Err(e) => done(
                Some(pid),
                Outcome::Failed {
                    reason: format!("cannot start a thread for the action: {e}"),
                },
            ),
        }
    }

    /// The hourly cap: counts this start, or refuses it.
    fn admit(&self, action: &str) -> Result<(), Outcome> {
        let Some(&cap) = self.inner.config.hourly_caps.get(action) else {
            return Ok(());
        };
        let mut started = self.inner.started.lock().unwrap_or_else(|e| e.into_inner());
        let times = started.entry(action.to_string()).or_default();
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            times.pop_front();
        }
        if times.len() >= cap as usize {
            let wait = times
                .front()
                .map_or(HOUR, |t| HOUR.saturating_sub(now.duration_since(*t)));
            return Err(Outcome::Refused {
                budget: Budget::Hourly,
                limit: format!("{cap} per 1h"),
                reason: format!(
                    "{cap} {action} actions started in the last hour across all programs; the next may start in {} s",
                    wait.as_secs()
                ),
            });
        }
        times.push_back(now);
        Ok(())
    }

    /// The target and tool of a long action, checked before anything runs.
    fn prepare_long(&self, request: &ActionRequest) -> Result<i32, (Option<i32>, Outcome)> {
        let failed = |pid, reason: String| (pid, Outcome::Failed { reason });
        let Some(pid) = request.pid.or(self.inner.config.default_pid) else {
            return Err(failed(
                None,
                "no target process: the event's resource has no process.pid and the runner has no default pid".into(),
            ));
        };
        check_target(pid).map_err(|e| failed(Some(pid), e))?;
        let (tool, package) = if request.action == "cpu_sample" {
            duration_arg(request, "for").map_err(|e| failed(Some(pid), e))?;
            (&self.inner.config.perf, "linux-perf")
        } else {
            (&self.inner.config.gcore, "gdb")
        };
        if find_tool(tool).is_none() {
            return Err(failed(
                Some(pid),
                format!(
                    "`{}` is not installed on this host (not found on PATH); install the {package} package",
                    tool.display()
                ),
            ));
        }
        Ok(pid)
    }

    fn run_now(&self, request: &ActionRequest) -> Outcome {
        match request.action.as_str() {
            "flight_recorder.snapshot" => {
                let last = match request.arg("events") {
                    None => None,
                    Some(Arg::Int(n)) if *n > 0 => Some(*n as usize),
                    Some(other) => {
                        return Outcome::Failed {
                            reason: format!(
                                "`events` must be a positive number of events, not {}",
                                other.to_json()
                            ),
                        };
                    }
                };
                match self.snapshot(request, last) {
                    Ok(f) => Outcome::Written {
                        path: f.path,
                        bytes: f.bytes,
                    },
                    Err(e) => spool_outcome(e),
                }
            }
            "verbose_logs" => {
                let d = match duration_arg(request, "for") {
                    Ok(d) => d.min(self.inner.config.max_verbose),
                    Err(reason) => return Outcome::Failed { reason },
                };
                let until = SystemTime::now() + d;
                {
                    let mut v = self.inner.verbose.lock().unwrap_or_else(|e| e.into_inner());
                    let t = v.entry(request.program.clone()).or_insert(until);
                    *t = (*t).max(until);
                }
                Outcome::Verbose {
                    until: self.verbose_until(&request.program).unwrap_or(until),
                    flush: self.snapshot(request, None).map_err(|e| e.to_string()),
                }
            }
            "collect_config" => self.collect_config(request),
            _ => Outcome::Failed {
                reason: format!("`{}` is not an action that runs at once", request.action),
            },
        }
    }

    fn snapshot(
        &self,
        request: &ActionRequest,
        last: Option<usize>,
    ) -> Result<crate::SpoolFile, SpoolError> {
        let mut text = String::new();
        for line in self.inner.recorder.snapshot(&request.program, last) {
            text.push_str(&line);
            text.push('\n');
        }
        let name = Spool::file_name(
            epoch_ns(SystemTime::now()),
            &request.program,
            "flight_recorder.snapshot",
            "jsonl",
        );
        self.inner.spool.write(&name, text.as_bytes())
    }

    fn collect_config(&self, request: &ActionRequest) -> Outcome {
        let failed = |reason: String| Outcome::Failed { reason };
        let Some(Arg::Str(path)) = request.arg("path") else {
            return failed("collect_config needs a `path` string".into());
        };
        let requested = Path::new(path);
        // Both sides resolved, so neither `..` nor a link can reach a file
        // that is not itself listed.
        let resolved = requested.canonicalize();
        let allowed: Vec<PathBuf> = self
            .inner
            .config
            .allowed_configs
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        let Some(resolved) = resolved.ok().filter(|r| allowed.contains(r)) else {
            return Outcome::Denied {
                reason: format!(
                    "`{path}` is not in the runner's allowed configuration files ({} listed); add it to the agent's config to collect it",
                    self.inner.config.allowed_configs.len()
                ),
            };
        };
        let max = self.inner.config.max_config_bytes;
        let content = (|| -> Result<Vec<u8>, String> {
            let file = std::fs::File::open(&resolved)
                .map_err(|e| format!("cannot open `{}`: {e}", resolved.display()))?;
            let meta = file
                .metadata()
                .map_err(|e| format!("cannot stat `{}`: {e}", resolved.display()))?;
            if !meta.is_file() {
                return Err(format!("`{}` is not a regular file", resolved.display()));
            }
            same_file(&resolved, &meta)?;
            let mut bytes = Vec::new();
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read `{}`: {e}", resolved.display()))?;
            if bytes.len() as u64 > max {
                return Err(format!(
                    "`{}` is larger than the {max} bytes collect_config copies",
                    resolved.display()
                ));
            }
            Ok(bytes)
        })();
        let content = match content {
            Ok(c) => c,
            Err(reason) => return failed(reason),
        };
        let base = resolved
            .file_name()
            .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
        let name = Spool::file_name(
            epoch_ns(SystemTime::now()),
            &request.program,
            "collect_config",
            &base,
        );
        match self.inner.spool.write(&name, &content) {
            Ok(f) => Outcome::Written {
                path: f.path,
                bytes: f.bytes,
            },
            Err(e) => spool_outcome(e),
        }
    }

    /// cpu_sample and memory_dump, on their thread.
    fn run_long(&self, request: &ActionRequest, pid: i32) -> Outcome {
        let config = &self.inner.config;
        let now = epoch_ns(SystemTime::now());
        let action = format!("{}.{pid}", request.action);
        if request.action == "cpu_sample" {
            let d = match duration_arg(request, "for") {
                Ok(d) => d.min(config.max_sample),
                Err(reason) => return Outcome::Failed { reason },
            };
            // About 100 KiB per second at 99 Hz with call graphs, for the
            // up-front check; the file's real size is checked after.
            let estimate = 64 * 1024 + d.as_secs().max(1) * 100 * 1024;
            let name = Spool::file_name(now, &request.program, &action, "perf.data");
            let pending = match self.inner.spool.reserve(&name, estimate) {
                Ok(p) => p,
                Err(e) => return spool_outcome(e),
            };
            let mut c = Command::new(&config.perf);
            c.args(["record", "-F", "99", "-g", "-p", &pid.to_string(), "-o"])
                .arg(&pending.partial)
                .args(["--", "sleep", &format!("{:.3}", d.as_secs_f64())]);
            let run = match run_tool(c, d + Duration::from_secs(60)) {
                Ok(r) => r,
                Err(reason) => return Outcome::Failed { reason },
            };
            if !run.success {
                return Outcome::Failed {
                    reason: format!(
                        "perf record failed ({}): {}{}",
                        run.status,
                        run.stderr_tail,
                        perf_hint(&run.stderr_tail)
                    ),
                };
            }
            finish(pending.commit())
        } else {
            // A core file holds at least the resident memory.
            let estimate = resident_bytes(pid).unwrap_or(0);
            let name = Spool::file_name(now, &request.program, &action, "core");
            let pending = match self.inner.spool.reserve(&name, estimate) {
                Ok(p) => p,
                Err(e) => return spool_outcome(e),
            };
            // gcore writes PREFIX.PID.
            let mut written = pending.partial.clone().into_os_string();
            written.push(format!(".{pid}"));
            let written = PathBuf::from(written);
            let mut c = Command::new(&config.gcore);
            c.arg("-o").arg(&pending.partial).arg(pid.to_string());
            let result = run_tool(c, config.dump_timeout);
            let ok = matches!(&result, Ok(r) if r.success);
            if !ok || !written.is_file() {
                if std::fs::symlink_metadata(&written).is_ok_and(|m| m.is_file()) {
                    let _ = std::fs::remove_file(&written);
                }
                return Outcome::Failed {
                    reason: match result {
                        Err(reason) => reason,
                        Ok(r) => format!(
                            "gcore failed ({}): {}{}",
                            r.status,
                            r.stderr_tail,
                            if r.stderr_tail.contains("ptrace") {
                                " (attaching with ptrace is not permitted here: the agent needs CAP_SYS_PTRACE, or kernel.yama.ptrace_scope must allow it)"
                            } else {
                                ""
                            }
                        ),
                    },
                };
            }
            finish(pending.commit_from(&written))
        }
    }
}

/// Gives back a slot of the concurrency bound when a long action's thread
/// ends, however it ends.
struct Slot {
    inner: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy)]
struct Timer {
    id: u64,
    requested: SystemTime,
    start: Instant,
}

impl Timer {
    fn record(&self, request: &ActionRequest, pid: Option<i32>, outcome: Outcome) -> ActionRecord {
        ActionRecord {
            id: self.id,
            action: request.action.clone(),
            program: request.program.clone(),
            by: request.by.clone(),
            args: request.args.clone(),
            pid,
            outcome,
            requested: self.requested,
            elapsed: self.start.elapsed(),
            event_time: request.event_time,
        }
    }
}

fn finish(committed: Result<crate::SpoolFile, SpoolError>) -> Outcome {
    match committed {
        Ok(f) => Outcome::Written {
            path: f.path,
            bytes: f.bytes,
        },
        Err(e) => spool_outcome(e),
    }
}

fn spool_outcome(e: SpoolError) -> Outcome {
    match e {
        SpoolError::Budget { max_bytes, .. } => Outcome::Refused {
            budget: Budget::SpoolDisk,
            limit: format!("{max_bytes} bytes"),
            reason: e.to_string(),
        },
        SpoolError::Io(reason) => Outcome::Failed { reason },
    }
}

fn duration_arg(request: &ActionRequest, name: &str) -> Result<Duration, String> {
    match request.arg(name) {
        Some(Arg::Duration(ns)) if *ns > 0 => Ok(Duration::from_nanos(*ns as u64)),
        Some(other) => Err(format!(
            "`{name}` must be a positive duration, not {}",
            other.to_json()
        )),
        None => Err(format!("{} needs a `{name}` duration", request.action)),
    }
}

fn perf_hint(stderr: &str) -> &'static str {
    if stderr.contains("perf_event_paranoid") || stderr.contains("Permission denied") {
        " (perf is not permitted here: run the agent with CAP_PERFMON, or lower kernel.perf_event_paranoid)"
    } else {
        ""
    }
}

/// The open file is the one the resolved path names (not something swapped
/// in between resolving and opening).
fn same_file(path: &Path, opened: &std::fs::Metadata) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let now = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot stat `{}`: {e}", path.display()))?;
        if (now.dev(), now.ino()) != (opened.dev(), opened.ino()) {
            return Err(format!(
                "`{}` changed while it was being opened; not collected",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, opened);
    Ok(())
}
