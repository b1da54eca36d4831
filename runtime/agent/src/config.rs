//! The agent's configuration file (`agent.toml`): what it listens on, where
//! it exports, which artifacts it runs under which policy and keys, the
//! budgets every program runs under, how actions run, and the secret key of
//! hash redaction.
//!
//! Parsing never stops at the first mistake: every bad value is reported
//! with its key, the value found and what is accepted, so one run of
//! `dtc-agent check-config` lists everything to fix. Unknown keys are errors
//! (`deny_unknown_fields`): a misspelt budget must not silently fall back
//! to its default. [`Config::load`] also reads the files the settings name
//! (trusted reviewer keys, the hash key) and reports each file it cannot
//! use the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dtc_artifact::PublicKey;
use serde::Deserialize;
use toml::Spanned;

/// The whole configuration, validated. Every field has a value: defaults
/// are filled in.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub exporter: Exporter,
    pub artifacts: Artifacts,
    pub spool: Spool,
    pub budgets: Budgets,
    pub actions: Actions,
    pub redaction: Redaction,
    pub telemetry: Telemetry,
    /// Whether [`Config::load_files`] has read the keys.
    files_loaded: bool,
}

#[derive(Debug, Clone)]
pub struct Listen {
    /// OTLP/gRPC; port 0 picks a free port (see `ready_file`).
    pub grpc: SocketAddr,
    /// OTLP/HTTP (`POST /v1/logs`).
    pub http: SocketAddr,
    /// The admin endpoint (`status`, `ripcord`); loopback only.
    pub admin: SocketAddr,
    /// The largest request body accepted, after decompression.
    pub max_request_size: usize,
    /// How many received requests may wait for the pipeline; past that the
    /// receivers answer "unavailable" (retryable) and count it.
    pub queue_requests: usize,
    /// Where the bound addresses are written once listening (JSON), for
    /// tools and tests that start the agent on port 0.
    pub ready_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    Http,
}

#[derive(Debug, Clone)]
pub struct Exporter {
    pub protocol: Protocol,
    /// `http://host:port`; for OTLP/HTTP the paths `/v1/logs` and
    /// `/v1/metrics` are appended.
    pub endpoint: String,
    /// Records (log records and metric points) per export request.
    pub batch_size: usize,
    /// The longest a record waits for its batch to fill.
    pub batch_interval: Duration,
    /// Records waiting for export; past that new records are dropped and
    /// counted (`export_queue_full`).
    pub queue_size: usize,
    /// Export requests sent at once (each with its own retries).
    pub in_flight: usize,
    /// Per export request.
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// A batch still failing after this long is dropped and counted
    /// (`export_retries_exhausted`).
    pub retry_max_elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct Artifacts {
    pub dir: PathBuf,
    pub reload_interval: Duration,
    /// The local policy (the `dtc check --policy` format); without one the
    /// policy format's defaults apply (any tier; approvals 0, 1, 2).
    pub policy: Option<PathBuf>,
    /// Files of the public keys of the reviewers whose signatures count.
    pub trusted_keys: Vec<PathBuf>,
    /// Those keys, read by [`Config::load`] (empty after [`Config::parse`]
    /// alone, which reads no file).
    pub keys: Vec<PublicKey>,
    /// What runs the programs.
    pub engine: EngineKind,
}

/// What runs a program: native code the JIT compiles at load (the
/// default), or the reference interpreter (the same outputs, slower; for
/// comparing, or where code generation is not wanted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EngineKind {
    #[default]
    Jit,
    Interpreter,
}

#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    pub max_disk: u64,
}

/// What each program may use; a program over any of them is disabled on
/// its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgets {
    /// CPU time per event, averaged over a batch.
    pub cpu_per_event: Duration,
    /// CPU time per second of wall time.
    pub cpu_per_second: Duration,
    /// The program's state bound (the analysis' `memory_bound`).
    pub memory: u64,
    /// Derived logs and metric points per second.
    pub emit_per_second: u64,
    /// Actions fired per minute.
    pub actions_per_minute: u64,
}

/// How the actions programs trigger run on this host (`dtc-actions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Actions {
    /// The process `cpu_sample` and `memory_dump` act on when the
    /// triggering event's resource has no `process.pid`.
    pub default_pid: Option<i32>,
    /// Long actions (`cpu_sample`, `memory_dump`) running at once.
    pub max_concurrent: usize,
    /// Per action, how many may start per hour across all programs
    /// (dtc-actions' defaults, overridden key by key).
    pub hourly_caps: BTreeMap<String, u32>,
    /// The only files `collect_config` may copy.
    pub allowed_configs: Vec<PathBuf>,
    /// The largest file `collect_config` copies.
    pub max_config_size: u64,
    /// Per program, the events and bytes the flight recorder keeps.
    pub flight_recorder_events: usize,
    pub flight_recorder_size: usize,
    /// The longest `cpu_sample` and `verbose_logs` periods; longer ones are
    /// shortened.
    pub max_sample: Duration,
    pub max_verbose: Duration,
    /// How long `gcore` may take.
    pub dump_timeout: Duration,
    /// The tools (a name looked up on PATH, or a path).
    pub perf: PathBuf,
    pub gcore: PathBuf,
}

/// The key of `hash` and of hash redaction.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    /// A file holding the secret key: 32 hexadecimal digits.
    pub hash_key_file: Option<PathBuf>,
    /// The key read from it by [`Config::load`]; `None` means the engine's
    /// public default key.
    pub hash_key: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
pub struct Telemetry {
    /// How often the agent's own metrics are exported; 0 turns it off.
    pub interval: Duration,
}

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `file:line:column`, or just the file.
    pub at: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<RawListen>,
    exporter: Option<RawExporter>,
    artifacts: Option<RawArtifacts>,
    spool: Option<RawSpool>,
    budgets: Option<RawBudgets>,
    actions: Option<RawActions>,
    redaction: Option<RawRedaction>,
    telemetry: Option<RawTelemetry>,
}

type S = Option<Spanned<String>>;
type N = Option<Spanned<i64>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListen {
    grpc: S,
    http: S,
    admin: S,
    max_request_size: S,
    queue_requests: N,
    ready_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExporter {
    protocol: S,
    endpoint: S,
    batch_size: N,
    batch_interval: S,
    queue_size: N,
    in_flight: N,
    timeout: S,
    retry_initial: S,
    retry_max: S,
    retry_max_elapsed: S,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    dir: Option<PathBuf>,
    reload_interval: S,
    policy: Option<PathBuf>,
    trusted_keys: Option<Vec<PathBuf>>,
    engine: S,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    dir: Option<PathBuf>,
    max_disk: S,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    cpu_per_event: S,
    cpu_per_second: S,
    memory: S,
    emit_per_second: N,
    actions_per_minute: N,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawActions {
    default_pid: N,
    max_concurrent: N,
    hourly_caps: Option<BTreeMap<String, Spanned<i64>>>,
    allowed_configs: Option<Vec<PathBuf>>,
    max_config_size: S,
    flight_recorder_events: N,
    flight_recorder_size: S,
    max_sample: S,
    max_verbose: S,
    dump_timeout: S,
    perf: Option<PathBuf>,
    gcore: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRedaction {
    hash_key_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    interval: S,
}

/// Parses `250ns`, `50us` (or `µs`), `10ms`, `5s`, `2m`, `1h` (a whole
/// number and a unit) into a duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '_')?;
    let n: u64 = text[..split].replace('_', "").parse().ok()?;
    let nanos_per: u64 = match &text[split..] {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    n.checked_mul(nanos_per).map(Duration::from_nanos)
}

/// Parses `64MiB`, `1GB`, `4096`: the sizes of policy files.
pub fn parse_size(text: &str) -> Option<u64> {
    dtc_analysis::policy::parse_size(text)
}

impl Config {
    /// Reads and validates a configuration file. Relative paths in it are
    /// taken from the file's folder, so a config can travel with its
    /// artifacts.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                at: path.display().to_string(),
                message: format!("cannot read the configuration file: {e}"),
            }]
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let name = path.display().to_string();
        let mut config = Config::parse(&text, &name, base)?;
        config.load_files(&name)?;
        Ok(config)
    }

    /// Reads the files the settings name: the trusted reviewer keys and the
    /// hash key. Every file that cannot be used is one error, naming the
    /// setting, the path and the fix.
    pub fn load_files(&mut self, name: &str) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let error = |message: String| ConfigError {
            at: name.to_string(),
            message,
        };
        match crate::loader::load_keys(&self.artifacts.trusted_keys) {
            Ok(keys) => self.artifacts.keys = keys,
            Err(e) => errors.extend(e.into_iter().map(error)),
        }
        if let Some(path) = &self.redaction.hash_key_file {
            match read_hash_key(path) {
                Ok(key) => self.redaction.hash_key = Some(key),
                Err(why) => errors.push(error(format!(
                    "`redaction.hash_key_file`: cannot use `{}`: {why}",
                    path.display()
                ))),
            }
        }
        if errors.is_empty() {
            self.files_loaded = true;
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether the files the settings name have been read.
    pub fn files_loaded(&self) -> bool {
        self.files_loaded
    }

    /// Validates a configuration's text; `name` names it in errors and
    /// `base` is the folder relative paths start from.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
        let at = |offset: usize| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{name}:{line}:{column}")
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            vec![ConfigError {
                at: e.span().map_or_else(|| name.to_string(), |s| at(s.start)),
                message: format!(
                    "{} (see runtime/agent/README.md for the configuration format)",
                    e.message().trim_end()
                ),
            }]
        })?;
        let mut errors = Vec::new();
        let mut v = Validator {
            errors: &mut errors,
            at: &at,
        };
        let listen = raw.listen.unwrap_or_default();
        let exporter = raw.exporter.unwrap_or_default();
        let artifacts = raw.artifacts.unwrap_or_default();
        let spool = raw.spool.unwrap_or_default();
        let budgets = raw.budgets.unwrap_or_default();
        let actions = raw.actions.unwrap_or_default();
        let redaction = raw.redaction.unwrap_or_default();
        let telemetry = raw.telemetry.unwrap_or_default();
        let path = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let admin = v.addr("listen.admin", listen.admin, "127.0.0.1:4319");
        if !admin.ip().is_loopback() {
            v.errors.push(ConfigError {
                at: name.to_string(),
                message: format!(
                    "`listen.admin` = \"{admin}\": the admin endpoint pulls the rip cord, so it listens on loopback only; use 127.0.0.1 or [::1]"
                ),
            });
        }
        let listen = Listen {
            grpc: v.addr("listen.grpc", listen.grpc, "127.0.0.1:4317"),
            http: v.addr("listen.http", listen.http, "127.0.0.1:4318"),
            admin,
            max_request_size: v.size(
                "listen.max_request_size",
                listen.max_request_size,
                "4MiB",
                1024,
                1 << 30,
            ) as usize,
            queue_requests: v.count(
                "listen.queue_requests",
                listen.queue_requests,
                64,
                1,
                65_536,
            ) as usize,
            ready_file: listen.ready_file.map(path),
        };
        let protocol = match &exporter.protocol {
            None => Protocol::Grpc,
            Some(p) => match p.get_ref().as_str() {
                "grpc" => Protocol::Grpc,
                "http" | "http/protobuf" => Protocol::Http,
                other => {
                    v.bad(p, format!("`exporter.protocol` = \"{other}\": expected \"grpc\" or \"http\" (OTLP/HTTP with protobuf)"));
                    Protocol::Grpc
                }
            },
        };
        let default_endpoint = match protocol {
            Protocol::Grpc => "http://127.0.0.1:14317",
            Protocol::Http => "http://127.0.0.1:14318",
        };
        let endpoint = match &exporter.endpoint {
            None => default_endpoint.to_string(),
            Some(e) => {
                let text = e.get_ref().trim_end_matches('/');
                let host = text.strip_prefix("http://");
                if host.is_some_and(|h| !h.is_empty() && !h.contains('/')) {
                    text.to_string()
                } else {
                    v.bad(e, format!("`exporter.endpoint` = \"{}\": expected `http://host:port` (TLS is not supported: run the agent beside a collector that terminates it)", e.get_ref()));
                    default_endpoint.to_string()
                }
            }
        };
        let exporter = Exporter {
            protocol,
            endpoint,
            batch_size: v.count("exporter.batch_size", exporter.batch_size, 512, 1, 100_000)
                as usize,
            batch_interval: v.duration(
                "exporter.batch_interval",
                exporter.batch_interval,
                "200ms",
                Duration::from_millis(1),
                Duration::from_secs(60),
            ),
            queue_size: v.count(
                "exporter.queue_size",
                exporter.queue_size,
                65_536,
                1,
                10_000_000,
            ) as usize,
            in_flight: v.count("exporter.in_flight", exporter.in_flight, 4, 1, 64) as usize,
            timeout: v.duration(
                "exporter.timeout",
                exporter.timeout,
                "10s",
                Duration::from_millis(10),
                Duration::from_secs(600),
            ),
            retry_initial: v.duration(
                "exporter.retry_initial",
                exporter.retry_initial,
                "100ms",
                Duration::from_millis(1),
                Duration::from_secs(60),
            ),
            retry_max: v.duration(
                "exporter.retry_max",
                exporter.retry_max,
                "5s",
                Duration::from_millis(1),
                Duration::from_secs(600),
            ),
            retry_max_elapsed: v.duration(
                "exporter.retry_max_elapsed",
                exporter.retry_max_elapsed,
                "60s",
                Duration::from_millis(1),
                Duration::from_secs(86_400),
            ),
        };
        let mut require = |key: &str, value: Option<PathBuf>| match value {
            Some(p) => path(p),
            None => {
                v.errors.push(ConfigError {
                    at: name.to_string(),
                    message: format!("`{key}` is missing: the agent needs a folder for it"),
                });
                PathBuf::new()
            }
        };
        let artifacts_dir = require("artifacts.dir", artifacts.dir);
        let spool_dir = require("spool.dir", spool.dir);
        let engine = match &artifacts.engine {
            None => EngineKind::Jit,
            Some(e) => match e.get_ref().as_str() {
                "jit" => EngineKind::Jit,
                "interpreter" => EngineKind::Interpreter,
                other => {
                    v.bad(e, format!("`artifacts.engine` = \"{other}\": expected \"jit\" (native code compiled at load) or \"interpreter\""));
                    EngineKind::Jit
                }
            },
        };
        let artifacts = Artifacts {
            dir: artifacts_dir,
            reload_interval: v.duration(
                "artifacts.reload_interval",
                artifacts.reload_interval,
                "2s",
                Duration::from_millis(10),
                Duration::from_secs(3600),
            ),
            policy: artifacts.policy.map(path),
            trusted_keys: artifacts
                .trusted_keys
                .unwrap_or_default()
                .into_iter()
                .map(path)
                .collect(),
            keys: Vec::new(),
            engine,
        };
        let spool = Spool {
            dir: spool_dir,
            max_disk: v.size("spool.max_disk", spool.max_disk, "1GiB", 0, u64::MAX),
        };
        let budgets = Budgets {
            cpu_per_event: v.duration(
                "budgets.cpu_per_event",
                budgets.cpu_per_event,
                "1ms",
                Duration::from_nanos(100),
                Duration::from_secs(10),
            ),
            cpu_per_second: v.duration(
                "budgets.cpu_per_second",
                budgets.cpu_per_second,
                "500ms",
                Duration::from_millis(1),
                Duration::from_secs(1),
            ),
            memory: v.size("budgets.memory", budgets.memory, "256MiB", 0, u64::MAX),
            emit_per_second: v.count(
                "budgets.emit_per_second",
                budgets.emit_per_second,
                100_000,
                0,
                i64::MAX,
            ),
            actions_per_minute: v.count(
                "budgets.actions_per_minute",
                budgets.actions_per_minute,
                10,
                0,
                i64::MAX,
            ),
        };
        let actions = v.actions(actions, &path);
        let redaction = Redaction {
            hash_key_file: redaction.hash_key_file.map(path),
            hash_key: None,
        };
        let telemetry = Telemetry {
            interval: v.duration(
                "telemetry.interval",
                telemetry.interval,
                "10s",
                Duration::ZERO,
                Duration::from_secs(86_400),
            ),
        };
        if errors.is_empty() {
            Ok(Config {
                listen,
                exporter,
                artifacts,
                spool,
                budgets,
                actions,
                redaction,
                telemetry,
                files_loaded: false,
            })
        } else {
            Err(errors)
        }
    }
}

/// Reads a hash key file: 32 hexadecimal digits (16 random bytes), e.g.
/// from `openssl rand -hex 16`. Blank lines and `#` comments are ignored.
/// The file must not be readable by group or others: the key is what
/// keeps hashed values from being guessed.
pub fn read_hash_key(path: &Path) -> Result<(u64, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if meta.len() > 4096 {
        return Err(format!(
            "the file is {} bytes, far larger than a key file (32 hexadecimal digits)",
            meta.len()
        ));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "the file is readable by others (mode {:o}); the key is a secret: `chmod 600` it",
                mode & 0o777
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let hex = lines.next().unwrap_or_default();
    let ok = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok || lines.next().is_some() {
        return Err("expected one line of 32 hexadecimal digits (16 bytes; make one with `openssl rand -hex 16`)".into());
    }
    let half = |s: &str| u64::from_str_radix(s, 16).map_err(|e| e.to_string());
    let key = (half(&hex[..16])?, half(&hex[16..])?);
    if key == dtc_engine::Options::default().hash_key {
        return Err("this is the engine's public default key, which anyone can use to test guesses; make a secret one with `openssl rand -hex 16`".into());
    }
    Ok(key)
}

struct Validator<'a> {
    errors: &'a mut Vec<ConfigError>,
    at: &'a dyn Fn(usize) -> String,
}

impl Validator<'_> {
    fn bad<T>(&mut self, value: &Spanned<T>, message: String) {
        self.errors.push(ConfigError {
            at: (self.at)(value.span().start),
            message,
        });
    }

    fn addr(&mut self, key: &str, value: S, default: &str) -> SocketAddr {
        let fallback = default.parse().expect("defaults are valid addresses");
        let Some(value) = value else { return fallback };
        match value.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.bad(&value, format!("`{key}` = \"{}\": expected an IP address and a port, like \"{default}\" or \"[::1]:0\" (port 0 picks a free port)", value.get_ref()));
                fallback
            }
        }
    }

    fn duration(
        &mut self,
        key: &str,
        value: S,
        default: &str,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let fallback = parse_duration(default).expect("defaults are valid durations");
        let Some(value) = value else { return fallback };
        match parse_duration(value.get_ref()) {
            Some(d) if d >= min && d <= max => d,
            _ => {
                self.bad(&value, format!(
                    "`{key}` = \"{}\": expected a duration from {} to {}, a whole number with a unit (ns, us, ms, s, m, h), like \"{default}\"",
                    value.get_ref(), show(min), show(max)
                ));
                fallback
            }
        }
    }

    fn size(&mut self, key: &str, value: S, default: &str, min: u64, max: u64) -> u64 {
        let fallback = parse_size(default).expect("defaults are valid sizes");
        let Some(value) = value else { return fallback };
        match parse_size(value.get_ref()) {
            Some(n) if n >= min && n <= max => n,
            _ => {
                let range = if max == u64::MAX {
                    format!("of at least {min} bytes")
                } else {
                    format!("from {min} to {max} bytes")
                };
                self.bad(&value, format!(
                    "`{key}` = \"{}\": expected a size {range}, a whole number with an optional unit (B, KB, KiB, MB, MiB, GB, GiB), like \"{default}\"",
                    value.get_ref()
                ));
                fallback
            }
        }
    }

    fn actions(&mut self, raw: RawActions, path: &dyn Fn(PathBuf) -> PathBuf) -> Actions {
        let defaults = dtc_actions::RunnerConfig::default();
        let mut hourly_caps = defaults.hourly_caps.clone();
        for (action, cap) in raw.hourly_caps.unwrap_or_default() {
            if !hourly_caps.contains_key(&action) {
                let known: Vec<&str> = hourly_caps.keys().map(String::as_str).collect();
                self.bad(
                    &cap,
                    format!(
                        "`actions.hourly_caps.{action}`: not an action; the actions are {}",
                        known.join(", ")
                    ),
                );
                continue;
            }
            let n = self.count(
                &format!("actions.hourly_caps.{action}"),
                Some(cap),
                0,
                0,
                i64::from(u32::MAX),
            );
            hourly_caps.insert(action, n as u32);
        }
        let default_pid = raw.default_pid.map(|pid| {
            self.count("actions.default_pid", Some(pid), 0, 1, i64::from(i32::MAX)) as i32
        });
        Actions {
            default_pid,
            max_concurrent: self.count(
                "actions.max_concurrent",
                raw.max_concurrent,
                defaults.max_concurrent as u64,
                0,
                64,
            ) as usize,
            hourly_caps,
            allowed_configs: raw
                .allowed_configs
                .unwrap_or_default()
                .into_iter()
                .map(path)
                .collect(),
            max_config_size: self.size(
                "actions.max_config_size",
                raw.max_config_size,
                "1MiB",
                0,
                1 << 30,
            ),
            flight_recorder_events: self.count(
                "actions.flight_recorder_events",
                raw.flight_recorder_events,
                1000,
                0,
                1_000_000,
            ) as usize,
            flight_recorder_size: self.size(
                "actions.flight_recorder_size",
                raw.flight_recorder_size,
                "1MiB",
                0,
                1 << 30,
            ) as usize,
            max_sample: self.duration(
                "actions.max_sample",
                raw.max_sample,
                "5m",
                Duration::from_secs(1),
                Duration::from_secs(3600),
            ),
            max_verbose: self.duration(
                "actions.max_verbose",
                raw.max_verbose,
                "1h",
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            ),
            dump_timeout: self.duration(
                "actions.dump_timeout",
                raw.dump_timeout,
                "5m",
                Duration::from_secs(1),
                Duration::from_secs(3600),
            ),
            perf: raw.perf.unwrap_or(defaults.perf),
            gcore: raw.gcore.unwrap_or(defaults.gcore),
        }
    }

    fn count(&mut self, key: &str, value: N, default: u64, min: i64, max: i64) -> u64 {
        let Some(value) = value else { return default };
        let n = *value.get_ref();
        if n < min || n > max {
            self.bad(
                &value,
                format!("`{key}` = {n}: expected a whole number from {min} to {max}"),
            );
            return default;
        }
        n as u64
    }
}

fn show(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos >= per && nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[artifacts]\ndir = \"programs\"\n[spool]\ndir = \"spool\"\n";

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, "agent.toml", Path::new("/etc/dtc")) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    /// One bad setting on top of a minimal config gives exactly one error,
    /// naming the key, the value and what is accepted.
    fn check_one(section: &str, line: &str, expected: &str) {
        let header = format!("[{section}]\n");
        let text = if MINIMAL.contains(&header) {
            MINIMAL.replacen(&header, &format!("{header}{line}\n"), 1)
        } else {
            format!("{MINIMAL}{header}{line}\n")
        };
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{text}\n{found:#?}");
        assert!(
            found[0].contains(expected),
            "{}\nlacks {expected}",
            found[0]
        );
    }

    #[test]
    fn defaults_and_relative_paths() {
        let config = Config::parse(MINIMAL, "agent.toml", Path::new("/etc/dtc")).unwrap();
        assert_eq!(config.listen.grpc.to_string(), "127.0.0.1:4317");
        assert_eq!(config.listen.http.to_string(), "127.0.0.1:4318");
        assert_eq!(config.listen.admin.to_string(), "127.0.0.1:4319");
        assert_eq!(config.listen.max_request_size, 4 << 20);
        assert_eq!(config.artifacts.dir, Path::new("/etc/dtc/programs"));
        assert_eq!(config.spool.dir, Path::new("/etc/dtc/spool"));
        assert_eq!(config.exporter.protocol, Protocol::Grpc);
        assert_eq!(config.artifacts.engine, EngineKind::Jit);
        assert_eq!(config.exporter.batch_size, 512);
        assert_eq!(config.budgets.cpu_per_event, Duration::from_millis(1));
    }

    #[test]
    fn a_full_config() {
        let text = r#"
[listen]
grpc = "127.0.0.1:0"
http = "[::1]:0"
admin = "127.0.0.1:0"
max_request_size = "1MiB"
queue_requests = 8
ready_file = "/tmp/ready.json"
[exporter]
protocol = "http"
endpoint = "http://collector:4318/"
batch_size = 100
batch_interval = "50ms"
queue_size = 1000
timeout = "2s"
retry_initial = "10ms"
retry_max = "1s"
retry_max_elapsed = "30s"
[artifacts]
dir = "/var/lib/dtc"
reload_interval = "500ms"
engine = "interpreter"
policy = "ring.toml"
trusted_keys = ["alice.pub", "/keys/bob.pub"]
[spool]
dir = "/var/spool/dtc"
max_disk = "10GiB"
[budgets]
cpu_per_event = "50us"
cpu_per_second = "100ms"
memory = "16MiB"
emit_per_second = 500
actions_per_minute = 2
[telemetry]
interval = "0s"
"#;
        let c = Config::parse(text, "agent.toml", Path::new("/etc/dtc")).unwrap();
        assert_eq!(c.exporter.protocol, Protocol::Http);
        assert_eq!(c.artifacts.engine, EngineKind::Interpreter);
        assert_eq!(c.exporter.endpoint, "http://collector:4318");
        assert_eq!(c.listen.http.to_string(), "[::1]:0");
        assert_eq!(
            c.artifacts.policy.as_deref(),
            Some(Path::new("/etc/dtc/ring.toml"))
        );
        assert_eq!(
            c.artifacts.trusted_keys,
            [
                PathBuf::from("/etc/dtc/alice.pub"),
                PathBuf::from("/keys/bob.pub")
            ]
        );
        assert_eq!(c.budgets.cpu_per_event, Duration::from_micros(50));
        assert_eq!(c.budgets.memory, 16 << 20);
        assert_eq!(c.spool.max_disk, 10 << 30);
        assert_eq!(c.telemetry.interval, Duration::ZERO);
    }

    #[test]
    fn every_bad_value_names_key_value_and_what_is_accepted() {
        let cases = [
            (
                "listen",
                "grpc = \"localhost\"",
                "agent.toml:6:8: `listen.grpc` = \"localhost\": expected an IP address and a port",
            ),
            (
                "listen",
                "http = \"127.0.0.1:99999\"",
                "`listen.http` = \"127.0.0.1:99999\": expected an IP address and a port",
            ),
            (
                "listen",
                "admin = \"0.0.0.0:4319\"",
                "`listen.admin` = \"0.0.0.0:4319\": the admin endpoint pulls the rip cord, so it listens on loopback only",
            ),
            (
                "listen",
                "admin = \"nowhere\"",
                "`listen.admin` = \"nowhere\": expected an IP address",
            ),
            (
                "listen",
                "max_request_size = \"4 parsecs\"",
                "`listen.max_request_size` = \"4 parsecs\": expected a size from 1024 to 1073741824 bytes",
            ),
            (
                "listen",
                "max_request_size = \"10\"",
                "`listen.max_request_size` = \"10\": expected a size from 1024",
            ),
            (
                "listen",
                "queue_requests = 0",
                "`listen.queue_requests` = 0: expected a whole number from 1 to 65536",
            ),
            (
                "exporter",
                "protocol = \"zipkin\"",
                "`exporter.protocol` = \"zipkin\": expected \"grpc\" or \"http\"",
            ),
            (
                "exporter",
                "endpoint = \"https://x:4317\"",
                "`exporter.endpoint` = \"https://x:4317\": expected `http://host:port` (TLS is not supported",
            ),
            (
                "exporter",
                "endpoint = \"http://x:4317/v1/logs\"",
                "expected `http://host:port`",
            ),
            (
                "exporter",
                "batch_size = 0",
                "`exporter.batch_size` = 0: expected a whole number from 1 to 100000",
            ),
            (
                "exporter",
                "batch_interval = \"soon\"",
                "`exporter.batch_interval` = \"soon\": expected a duration from 1ms to 1m",
            ),
            (
                "exporter",
                "queue_size = -5",
                "`exporter.queue_size` = -5: expected a whole number from 1",
            ),
            (
                "exporter",
                "timeout = \"0s\"",
                "`exporter.timeout` = \"0s\": expected a duration from 10ms to 10m",
            ),
            (
                "exporter",
                "retry_initial = \"1.5s\"",
                "`exporter.retry_initial` = \"1.5s\": expected a duration",
            ),
            (
                "exporter",
                "retry_max = \"5 s\"",
                "`exporter.retry_max` = \"5 s\": expected a duration",
            ),
            (
                "exporter",
                "retry_max_elapsed = \"2d\"",
                "`exporter.retry_max_elapsed` = \"2d\": expected a duration from 1ms to 24h",
            ),
            (
                "artifacts",
                "reload_interval = \"1ns\"",
                "`artifacts.reload_interval` = \"1ns\": expected a duration from 10ms to 1h",
            ),
            (
                "artifacts",
                "engine = \"cranelift\"",
                "`artifacts.engine` = \"cranelift\": expected \"jit\" (native code compiled at load) or \"interpreter\"",
            ),
            (
                "spool",
                "max_disk = \"lots\"",
                "`spool.max_disk` = \"lots\": expected a size of at least 0 bytes",
            ),
            (
                "budgets",
                "cpu_per_event = \"1ns\"",
                "`budgets.cpu_per_event` = \"1ns\": expected a duration from 100ns to 10s",
            ),
            (
                "budgets",
                "cpu_per_second = \"2s\"",
                "`budgets.cpu_per_second` = \"2s\": expected a duration from 1ms to 1s",
            ),
            (
                "budgets",
                "memory = \"-1\"",
                "`budgets.memory` = \"-1\": expected a size",
            ),
            (
                "budgets",
                "emit_per_second = -1",
                "`budgets.emit_per_second` = -1: expected a whole number from 0",
            ),
            (
                "budgets",
                "actions_per_minute = -2",
                "`budgets.actions_per_minute` = -2: expected a whole number from 0",
            ),
            (
                "telemetry",
                "interval = \"often\"",
                "`telemetry.interval` = \"often\": expected a duration from 0ns to 24h",
            ),
            (
                "budgets",
                "cpu_per_evnt = \"1ms\"",
                "unknown field `cpu_per_evnt`, expected one of",
            ),
            (
                "budgets",
                "emit_per_second = \"5\"",
                "invalid type: string \"5\", expected i64",
            ),
            (
                "exporter",
                "batch_size = 1.5",
                "invalid type: floating point `1.5`, expected i64",
            ),
        ];
        for (section, line, expected) in cases {
            check_one(section, line, expected);
        }
    }

    #[test]
    fn missing_folders_and_unknown_sections() {
        assert_eq!(
            errors(""),
            [
                "agent.toml: `artifacts.dir` is missing: the agent needs a folder for it",
                "agent.toml: `spool.dir` is missing: the agent needs a folder for it",
            ]
        );
        let found = errors(&format!("{MINIMAL}[recievers]\n"));
        assert!(
            found[0].starts_with("agent.toml:5:2: unknown field `recievers`"),
            "{found:?}"
        );
        let found = errors("listen = 3");
        assert!(found[0].contains("invalid type: integer `3`"), "{found:?}");
        assert!(errors("[listen\n")[0].starts_with("agent.toml:1:"));
    }

    #[test]
    fn several_errors_at_once() {
        let text = format!(
            "{MINIMAL}[budgets]\ncpu_per_event = \"x\"\nmemory = \"y\"\n[exporter]\nbatch_size = 0\n"
        );
        assert_eq!(errors(&text).len(), 3);
    }

    #[test]
    fn hash_key_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dtc-agent-hash-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let good = write(
            "good.key",
            "# made by openssl rand -hex 16\n00112233445566778899aabbccddeeff\n",
            0o600,
        );
        assert_eq!(
            read_hash_key(&good),
            Ok((0x0011_2233_4455_6677, 0x8899_aabb_ccdd_eeff))
        );
        let cases = [
            (
                "open.key",
                "00112233445566778899aabbccddeeff",
                0o644,
                "readable by others (mode 644)",
            ),
            (
                "short.key",
                "0011",
                0o600,
                "expected one line of 32 hexadecimal digits",
            ),
            (
                "two.key",
                "00112233445566778899aabbccddeeff\n00",
                0o600,
                "expected one line",
            ),
            (
                "text.key",
                "not a key at all, just some words!",
                0o600,
                "expected one line",
            ),
            (
                "default.key",
                "64746320686173686b65792030303031",
                0o600,
                "the engine's public default key",
            ),
        ];
        for (name, text, mode, expected) in cases {
            let err = read_hash_key(&write(name, text, mode)).unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
        let err = read_hash_key(&dir.join("absent.key")).unwrap_err();
        assert!(err.starts_with("cannot read it"), "{err}");
        // Through the configuration: the setting is named.
        let mut config = Config::parse(
            &format!("{MINIMAL}[redaction]\nhash_key_file = \"open.key\"\n"),
            "agent.toml",
            &dir,
        )
        .unwrap();
        let errors = config.load_files("agent.toml").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .starts_with("agent.toml: `redaction.hash_key_file`: cannot use `"),
            "{}",
            errors[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50us"), Some(Duration::from_micros(50)));
        assert_eq!(parse_duration("50µs"), Some(Duration::from_micros(50)));
        assert_eq!(parse_duration("1_000ms"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "5", "ms", "-5s", "5 s", "1.5s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }
}
