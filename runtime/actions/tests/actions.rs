//! Every action for real, against child processes the tests start: perf and
//! gcore run on this host, files land in a real spool, budgets refuse, and
//! each way an action cannot run gives a record saying why. A test whose
//! tool is absent prints the reason and returns (skips) instead of failing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, SystemTime};

use dtc_actions::{
    ActionRecord, ActionRequest, ActionRunner, Arg, Budget, Dispatch, FlightRecorder, Outcome,
    ProgramBudget, RunnerConfig, Spool,
};

/// A fresh spool directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("actions-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A process to act on, killed when the test ends.
struct Target(Child);

impl Target {
    fn start() -> Target {
        Target(
            Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("sleep starts"),
        )
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a tool is absent, saying so: the test then skips.
fn absent(tool: &str) -> bool {
    let present = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !present {
        println!("skipped: `{tool}` is not installed on this host");
    }
    !present
}

fn request(action: &str, args: Vec<(&str, Arg)>, pid: Option<i32>) -> ActionRequest {
    ActionRequest {
        action: action.into(),
        args: args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        program: "test_prog".into(),
        by: "m".into(),
        pid,
        fired: true,
        budget: ProgramBudget {
            limit: 1,
            per_ns: 3_600_000_000_000,
            default: false,
        },
        event_time: 0,
    }
}

fn runner(
    name: &str,
    disk: u64,
    config: RunnerConfig,
) -> (ActionRunner, Receiver<ActionRecord>, PathBuf) {
    let dir = scratch(name);
    let spool = Spool::open(&dir.join("spool"), disk).expect("spool opens");
    let recorder = Arc::new(FlightRecorder::new(5, 1 << 16));
    let (r, rx) = ActionRunner::new(config, spool, recorder);
    (r, rx, dir)
}

/// The record of a request, waiting for a long action to finish.
fn complete(r: &ActionRunner, rx: &Receiver<ActionRecord>, req: ActionRequest) -> ActionRecord {
    match r.run(req) {
        Dispatch::Done(record) => record,
        Dispatch::Started { id } => {
            let record = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the long action reports");
            assert_eq!(record.id, id);
            record
        }
    }
}

fn written(record: &ActionRecord) -> (PathBuf, u64) {
    match &record.outcome {
        Outcome::Written { path, bytes } => (path.clone(), *bytes),
        other => panic!("expected a file, got {other:?}: {}", record.message()),
    }
}

/// The budget, limit and reason of a refused action.
fn refused(record: &ActionRecord) -> (Budget, &str, &str) {
    match &record.outcome {
        Outcome::Refused {
            budget,
            limit,
            reason,
        } => (*budget, limit, reason),
        other => panic!("expected a refusal, got {other:?}: {}", record.message()),
    }
}

/// The reason of a failed action.
fn failed(record: &ActionRecord) -> &str {
    match &record.outcome {
        Outcome::Failed { reason } => reason,
        other => panic!("expected a failure, got {other:?}: {}", record.message()),
    }
}

const SECOND: i64 = 1_000_000_000;

#[test]
fn cpu_sample_writes_a_perf_profile_of_the_target() {
    if absent("perf") {
        return;
    }
    let target = Target::start();
    let (r, rx, dir) = runner("cpu", 64 << 20, RunnerConfig::default());
    let req = request(
        "cpu_sample",
        vec![("for", Arg::Duration(SECOND))],
        Some(target.pid()),
    );
    let dispatch = r.run(req);
    let Dispatch::Started { id } = dispatch else {
        panic!("cpu_sample runs off the caller's thread: {dispatch:?}");
    };
    assert_eq!(r.running(), 1);
    let record = rx.recv_timeout(Duration::from_secs(60)).expect("reports");
    assert_eq!(record.id, id);
    if let Outcome::Failed { reason } = &record.outcome
        && reason.contains("not permitted")
    {
        println!("skipped: perf is not permitted here: {reason}");
        return;
    }
    let (path, bytes) = written(&record);
    assert!(bytes > 0 && path.starts_with(dir.join("spool").canonicalize().expect("dir")));
    assert_eq!(std::fs::metadata(&path).expect("profile").len(), bytes);
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.contains("test_prog-cpu_sample.") && name.ends_with(".perf.data"),
        "{name}"
    );
    // perf's own reader accepts the file.
    let report = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(&path)
        .output()
        .expect("perf report runs");
    assert!(report.status.success(), "{report:?}");
    assert!(record.elapsed >= Duration::from_secs(1));
    assert_eq!(r.running(), 0);
    assert!(record.message().contains("wrote"), "{}", record.message());
}

#[test]
fn memory_dump_writes_a_core_file_of_the_target() {
    if absent("gcore") {
        return;
    }
    let target = Target::start();
    let (r, rx, _dir) = runner("core", 1 << 30, RunnerConfig::default());
    let record = complete(&r, &rx, request("memory_dump", vec![], Some(target.pid())));
    if let Outcome::Failed { reason } = &record.outcome
        && reason.contains("ptrace")
    {
        println!("skipped: ptrace is not permitted here: {reason}");
        return;
    }
    let (path, bytes) = written(&record);
    assert!(bytes > 0);
    let head = std::fs::read(&path).expect("core");
    assert_eq!(&head[..4], b"\x7fELF", "a core file is an ELF file");
    assert!(
        path.to_string_lossy()
            .ends_with(&format!("memory_dump.{}.core", target.pid()))
    );
    // The target still runs after the dump.
    assert!(Path::new(&format!("/proc/{}", target.pid())).exists());
    // No partial file is left behind.
    let leftovers = std::fs::read_dir(r.spool().dir())
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with('.'))
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn the_default_pid_is_used_when_the_event_names_none() {
    if absent("gcore") {
        return;
    }
    let target = Target::start();
    let config = RunnerConfig {
        default_pid: Some(target.pid()),
        ..RunnerConfig::default()
    };
    let (r, rx, _dir) = runner("default-pid", 1 << 30, config);
    let record = complete(&r, &rx, request("memory_dump", vec![], None));
    assert_eq!(record.pid, Some(target.pid()));
    assert!(
        matches!(record.outcome, Outcome::Written { .. }),
        "{}",
        record.message()
    );
}

#[test]
fn a_process_that_is_gone_fails_with_a_record() {
    let mut child = Command::new("true").spawn().expect("starts");
    let pid = child.id() as i32;
    child.wait().expect("exits");
    let (r, rx, _dir) = runner("gone", 1 << 30, RunnerConfig::default());
    for action in ["cpu_sample", "memory_dump"] {
        let record = complete(
            &r,
            &rx,
            request(action, vec![("for", Arg::Duration(SECOND))], Some(pid)),
        );
        let reason = failed(&record);
        assert!(reason.contains("does not exist"), "{action}: {reason}");
        assert_eq!(record.pid, Some(pid));
    }
    let record = complete(&r, &rx, request("memory_dump", vec![], None));
    assert!(failed(&record).contains("no target process"), "{record:?}");
}

#[test]
fn an_absent_tool_fails_with_a_record() {
    let target = Target::start();
    let config = RunnerConfig {
        perf: "/nonexistent/perf".into(),
        gcore: "dtc-no-such-gcore".into(),
        ..RunnerConfig::default()
    };
    let (r, rx, _dir) = runner("absent", 1 << 30, config);
    for (action, package) in [("cpu_sample", "linux-perf"), ("memory_dump", "gdb")] {
        let record = complete(
            &r,
            &rx,
            request(
                action,
                vec![("for", Arg::Duration(SECOND))],
                Some(target.pid()),
            ),
        );
        let reason = failed(&record);
        assert!(
            reason.contains("is not installed") && reason.contains(package),
            "{reason}"
        );
    }
}

#[test]
fn a_full_spool_refuses_before_running() {
    let target = Target::start();
    let (r, rx, _dir) = runner("full", 1024, RunnerConfig::default());
    for (action, tool) in [("cpu_sample", "perf"), ("memory_dump", "gcore")] {
        if absent(tool) {
            continue;
        }
        let record = complete(
            &r,
            &rx,
            request(
                action,
                vec![("for", Arg::Duration(SECOND))],
                Some(target.pid()),
            ),
        );
        let (budget, limit, reason) = refused(&record);
        assert_eq!(
            (budget, limit),
            (Budget::SpoolDisk, "1024 bytes"),
            "{action}"
        );
        assert!(reason.contains("disk budget is 1024 bytes"), "{reason}");
    }
    // Small files still fit, until they do not.
    r.recorder()
        .record("test_prog", &format!("{{\"x\":\"{}\"}}", "a".repeat(400)));
    let first = complete(&r, &rx, request("flight_recorder.snapshot", vec![], None));
    written(&first);
    let second = complete(&r, &rx, request("flight_recorder.snapshot", vec![], None));
    written(&second);
    let third = complete(&r, &rx, request("flight_recorder.snapshot", vec![], None));
    assert_eq!(refused(&third).0, Budget::SpoolDisk);
    assert!(r.spool().used_bytes().expect("scan") <= 1024);
}

#[test]
fn collect_config_copies_only_listed_files() {
    let dir = scratch("config-files");
    let listed = dir.join("app.toml");
    std::fs::write(&listed, "threads = 4\n").expect("write");
    let unlisted = dir.join("secret.toml");
    std::fs::write(&unlisted, "password = 1\n").expect("write");
    let big = dir.join("big.conf");
    std::fs::write(&big, vec![b'x'; 2000]).expect("write");
    let config = RunnerConfig {
        allowed_configs: vec![listed.clone(), big.clone(), dir.join("missing.conf")],
        max_config_bytes: 1000,
        ..RunnerConfig::default()
    };
    let (r, rx, _spool) = runner("config", 1 << 20, config);
    let path = |p: &Path| vec![("path", Arg::Str(p.to_string_lossy().into_owned()))];

    let record = complete(&r, &rx, request("collect_config", path(&listed), None));
    let (copy, bytes) = written(&record);
    assert_eq!(bytes, 12);
    assert_eq!(
        std::fs::read_to_string(&copy).expect("copy"),
        "threads = 4\n"
    );
    assert!(
        copy.to_string_lossy().ends_with("collect_config.app.toml"),
        "{copy:?}"
    );

    let denied = |p: &Path| {
        let record = complete(&r, &rx, request("collect_config", path(p), None));
        match record.outcome {
            Outcome::Denied { reason } => reason,
            other => panic!("{p:?} was not denied: {other:?}"),
        }
    };
    assert!(denied(&unlisted).contains("not in the runner's allowed configuration files"));
    // Neither `..` nor a link gets around the list.
    denied(&dir.join("x/../secret.toml"));
    #[cfg(unix)]
    {
        let link = dir.join("link.toml");
        std::os::unix::fs::symlink(&unlisted, &link).expect("link");
        denied(&link);
    }
    denied(Path::new("/etc/shadow"));
    denied(&dir.join("missing.conf"));
    // A listed path given in another spelling is the same file.
    let record = complete(
        &r,
        &rx,
        request(
            "collect_config",
            path(&dir.join(".").join("app.toml")),
            None,
        ),
    );
    written(&record);
    let record = complete(&r, &rx, request("collect_config", path(&big), None));
    assert!(failed(&record).contains("larger than the 1000 bytes"));
    // The original is untouched and nothing but the copy is in the spool.
    assert_eq!(
        std::fs::read_to_string(&listed).expect("original"),
        "threads = 4\n"
    );
    assert_eq!(
        std::fs::read_dir(r.spool().dir()).expect("list").count(),
        2,
        "two copies"
    );
}

#[test]
fn flight_recorder_snapshots_hold_the_last_events() {
    let (r, rx, _dir) = runner("recorder", 1 << 20, RunnerConfig::default());
    for i in 0..20 {
        r.recorder().record("test_prog", &format!("{{\"i\":{i}}}"));
    }
    r.recorder().record("other", "{\"other\":true}");
    let record = complete(&r, &rx, request("flight_recorder.snapshot", vec![], None));
    let (path, _) = written(&record);
    let text = std::fs::read_to_string(&path).expect("snapshot");
    // The ring holds 5 events: the last five, oldest first, JSON lines.
    assert_eq!(
        text,
        "{\"i\":15}\n{\"i\":16}\n{\"i\":17}\n{\"i\":18}\n{\"i\":19}\n"
    );
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
    }
    let record = complete(
        &r,
        &rx,
        request(
            "flight_recorder.snapshot",
            vec![("events", Arg::Int(2))],
            None,
        ),
    );
    let (path, _) = written(&record);
    assert_eq!(
        std::fs::read_to_string(&path).expect("snapshot"),
        "{\"i\":18}\n{\"i\":19}\n"
    );
    let stats = r.recorder().stats("test_prog");
    assert_eq!((stats.recorded, stats.evicted, stats.held), (20, 15, 5));
    let bad = complete(
        &r,
        &rx,
        request(
            "flight_recorder.snapshot",
            vec![("events", Arg::Int(0))],
            None,
        ),
    );
    assert!(failed(&bad).contains("positive number of events"));
}

#[test]
fn verbose_logs_marks_the_program_verbose_and_flushes() {
    let (r, rx, _dir) = runner("verbose", 1 << 20, RunnerConfig::default());
    r.recorder().record("test_prog", "{\"event\":\"A\"}");
    assert!(!r.is_verbose("test_prog", SystemTime::now()));
    let record = complete(
        &r,
        &rx,
        request(
            "verbose_logs",
            vec![("for", Arg::Duration(60 * SECOND))],
            None,
        ),
    );
    let Outcome::Verbose { until, flush } = &record.outcome else {
        panic!("{record:?}");
    };
    let now = SystemTime::now();
    assert!(r.is_verbose("test_prog", now));
    assert!(!r.is_verbose("other_prog", now));
    assert!(!r.is_verbose("test_prog", *until + Duration::from_secs(1)));
    let f = flush.as_ref().expect("flushed");
    assert_eq!(
        std::fs::read_to_string(&f.path).expect("flush"),
        "{\"event\":\"A\"}\n"
    );
    assert!(
        record.message().contains("verbose until"),
        "{}",
        record.message()
    );
    // A longer period than the runner allows is shortened to its maximum.
    let config = RunnerConfig {
        max_verbose: Duration::from_secs(10),
        ..RunnerConfig::default()
    };
    let (r, rx, _dir) = runner("verbose-max", 1 << 20, config);
    complete(
        &r,
        &rx,
        request(
            "verbose_logs",
            vec![("for", Arg::Duration(3600 * SECOND))],
            None,
        ),
    );
    let until = r.verbose_until("test_prog").expect("verbose");
    assert!(until <= SystemTime::now() + Duration::from_secs(10));
}

#[test]
fn budgets_refuse_and_refusals_use_none() {
    let mut config = RunnerConfig::default();
    config
        .hourly_caps
        .insert("flight_recorder.snapshot".into(), 2);
    let (r, rx, _dir) = runner("budgets", 1 << 20, config);
    // The program's own budget, decided by the engine.
    let mut spent = request("flight_recorder.snapshot", vec![], None);
    spent.fired = false;
    let record = complete(&r, &rx, spent);
    let (budget, limit, _) = refused(&record);
    assert_eq!((budget, limit), (Budget::Program, "1 per 1h"));
    // The hourly cap across programs: two start, the third is refused.
    for _ in 0..2 {
        written(&complete(
            &r,
            &rx,
            request("flight_recorder.snapshot", vec![], None),
        ));
    }
    let record = complete(&r, &rx, request("flight_recorder.snapshot", vec![], None));
    let (budget, limit, reason) = refused(&record);
    assert_eq!((budget, limit), (Budget::Hourly, "2 per 1h"));
    assert!(reason.contains("last hour"), "{reason}");
    // Unknown actions and bad arguments fail with a reason.
    let record = complete(&r, &rx, request("reboot", vec![], None));
    assert!(failed(&record).contains("unknown action `reboot`"));
    let record = complete(
        &r,
        &rx,
        request("verbose_logs", vec![("for", Arg::Int(5))], None),
    );
    assert!(failed(&record).contains("positive duration"));
}

#[test]
fn long_actions_are_bounded_in_number() {
    if absent("perf") {
        return;
    }
    let target = Target::start();
    let config = RunnerConfig {
        max_concurrent: 1,
        ..RunnerConfig::default()
    };
    let (r, rx, _dir) = runner("concurrency", 64 << 20, config);
    let sample = || {
        request(
            "cpu_sample",
            vec![("for", Arg::Duration(2 * SECOND))],
            Some(target.pid()),
        )
    };
    assert!(matches!(r.run(sample()), Dispatch::Started { .. }));
    match r.run(sample()) {
        Dispatch::Done(record) => assert_eq!(refused(&record).0, Budget::Concurrency),
        other => panic!("a second long action started: {other:?}"),
    }
    let first = rx.recv_timeout(Duration::from_secs(60)).expect("reports");
    assert_eq!(first.action, "cpu_sample");
    // The slot is free again once the first is done.
    assert_eq!(r.running(), 0);
}

#[test]
fn records_come_from_engine_outputs() {
    let src = "event Slow { took: duration }\n\
               processor watch {\n\
                   on Slow when event.took > 2s {\n\
                       trigger flight_recorder.snapshot() limit 1 per 1h\n\
                   }\n\
               }\n";
    let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
    let out = session.check_source("p.dt", src);
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    let program = out.lower().expect("checks").expect("verifies");
    let mut engine = dtc_engine::Engine::new(program, dtc_engine::Options::default());
    let (r, rx, _dir) = runner("engine", 1 << 20, RunnerConfig::default());
    let mut records = Vec::new();
    for (i, took) in ["3s", "5s"].iter().enumerate() {
        let line = format!(
            "{{\"event\": \"Slow\", \"time\": \"2026-11-22T10:00:0{i}Z\", \"took\": \"{took}\"}}"
        );
        r.recorder().record("p", &line);
        engine.push_line(&line);
        for output in engine.drain() {
            if let Some(req) = ActionRequest::from_output(&output, "p", None) {
                records.push(complete(&r, &rx, req));
            }
        }
    }
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0].by, "processor watch on Slow");
    let (path, _) = written(&records[0]);
    assert_eq!(
        std::fs::read_to_string(path)
            .expect("snapshot")
            .lines()
            .count(),
        1
    );
    // The second trigger is past `limit 1 per 1h`: refused by the program.
    let (budget, limit, _) = refused(&records[1]);
    assert_eq!((budget, limit), (Budget::Program, "1 per 1h"));
    let json = records[1].to_json();
    assert_eq!(json["status"], "refused");
    assert_eq!(json["budget"], "program");
    assert!(
        ActionRequest::from_output(
            &dtc_engine::Output::Egress {
                event: serde_json::json!({})
            },
            "p",
            None
        )
        .is_none()
    );
}
