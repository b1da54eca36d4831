//! The `dtc-agent` binary: `run`, `check-config`, `status`, `ripcord`.
//!
//! Exit codes: 0 success, 1 a failure reported on stderr (bad config, agent
//! unreachable, ...), 2 a usage error (from clap).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dtc_agent::config::Config;
use dtc_agent::{admin, loader};

#[derive(Parser)]
#[command(
    name = "dtc-agent",
    version,
    about = "Runs dtc artifacts over OpenTelemetry logs received over OTLP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the agent until SIGTERM or SIGINT (SIGUSR1 pulls the rip cord).
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Checks a configuration file, its policy and keys, and says which
    /// artifacts of its folder would run and which would be refused.
    CheckConfig {
        /// The configuration file.
        config: PathBuf,
    },
    /// Prints the running agent's counters, queues and programs.
    Status {
        #[command(flatten)]
        target: Target,
        /// Prints the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disables every program of the running agent at once (events then
    /// pass through unchanged) and prints how long it took.
    Ripcord {
        #[command(flatten)]
        target: Target,
        /// Lets the programs run again (fresh state) instead.
        #[arg(long)]
        release: bool,
    },
}

/// Where the running agent's admin endpoint is.
#[derive(Args)]
struct Target {
    /// The agent's configuration file (its `listen.admin`).
    #[arg(long, short, conflicts_with = "admin")]
    config: Option<PathBuf>,
    /// The admin address, e.g. 127.0.0.1:4319.
    #[arg(long)]
    admin: Option<SocketAddr>,
}

/// Every record is decoded into owned protobuf messages and encoded again;
/// mimalloc serves those many small allocations at a fraction of glibc's
/// cost (see docs/performance.md, Agent).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Status { target, json } => status(&target, json),
        Command::Ripcord { target, release } => ripcord(&target, release),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, String> {
    Config::load(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(
            "the configuration has {} error(s):\n  {}",
            errors.len(),
            lines.join("\n  ")
        )
    })
}

fn run(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        dtc_agent::run(config, shutdown).await
    })
}

fn check_config(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let policy = loader::load_policy(config.artifacts.policy.as_deref())?;
    let keys = config.artifacts.keys.clone();
    println!("{}: the configuration is valid", path.display());
    println!(
        "  listen: grpc {}, http {}, admin {}",
        config.listen.grpc, config.listen.http, config.listen.admin
    );
    println!(
        "  export: {:?} to {}",
        config.exporter.protocol, config.exporter.endpoint
    );
    match &config.redaction.hash_key_file {
        Some(file) => println!("  hash key: secret, from {}", file.display()),
        None => println!(
            "  hash key: public default ({})",
            dtc_agent::HASH_KEY_WARNING
        ),
    }
    if keys.is_empty() {
        println!("  trusted reviewer keys: none (only tiers that need no approval can run)");
    }
    for (file, key) in config.artifacts.trusted_keys.iter().zip(&keys) {
        println!(
            "  trusted reviewer key: {} ({})",
            key.fingerprint(),
            file.display()
        );
    }
    let mut scanner =
        loader::Loader::new(config.artifacts.dir.clone(), policy, keys, config.budgets);
    if let Some(scan) = scanner.scan() {
        for p in &scan.programs {
            println!(
                "  would run: {} ({}, {} tier)",
                p.file, p.program.name, p.metadata.tier
            );
        }
        for r in &scan.refused {
            println!("  would refuse: {}: {}", r.file, r.reason);
        }
        if scan.programs.is_empty() && scan.refused.is_empty() {
            println!("  no artifacts in {}", config.artifacts.dir.display());
        }
    }
    Ok(())
}

fn admin_address(target: &Target) -> Result<SocketAddr, String> {
    match (&target.admin, &target.config) {
        (Some(addr), _) => Ok(*addr),
        (None, Some(path)) => Ok(load(path)?.listen.admin),
        (None, None) => Ok(SocketAddr::from(([127, 0, 0, 1], 4319))),
    }
}

fn status(target: &Target, json: bool) -> Result<(), String> {
    let addr = admin_address(target)?;
    let (code, body) = admin::request(addr, "GET", "/status")?;
    if code != 200 {
        return Err(format!("the agent answered {code}: {body}"));
    }
    if json {
        println!("{body}");
        return Ok(());
    }
    let s: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("the agent sent a status that is not JSON: {e}"))?;
    println!(
        "agent at {addr}, up {:.1} s",
        s["uptime_s"].as_f64().unwrap_or(0.0)
    );
    let line = |title: &str, map: &serde_json::Value| {
        let parts: Vec<String> = map
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("{title}: {}", parts.join(", "));
    };
    line("counters", &s["counters"]);
    line("requests refused", &s["requests_refused"]);
    line("dropped", &s["dropped"]);
    line("queues", &s["queues"]);
    if let Some(e) = s["last_export_error"].as_str() {
        println!("last export error: {e}");
    }
    for p in s["programs"].as_array().into_iter().flatten() {
        println!(
            "program {} ({}): {}{}, engine {}; {} events, {} µs CPU, {} logs, {} metric points, {} actions fired, {} refused, {} failed, {} faults",
            short_name(p["name"].as_str().unwrap_or("?")),
            p["file"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            p["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            p["engine"].as_str().unwrap_or("?"),
            p["events"],
            p["cpu_ns"].as_u64().unwrap_or(0) / 1000,
            p["derived_logs"],
            p["metric_points"],
            p["actions_fired"],
            p["actions_refused"],
            p["actions_failed"],
            p["faults"],
        );
    }
    for (action, c) in s["actions"].as_object().into_iter().flatten() {
        println!(
            "action {action}: {} fired, {} written, {} refused, {} failed",
            c["fired"], c["written"], c["refused"], c["failed"]
        );
    }
    for r in s["artifacts_refused"].as_array().into_iter().flatten() {
        println!(
            "refused {}: {}",
            r["file"].as_str().unwrap_or("?"),
            r["reason"].as_str().unwrap_or("?")
        );
    }
    if let Some(r) = s["ripcord"].as_object() {
        println!(
            "rip cord pulled: {} program(s) disabled in {} µs",
            r["programs_disabled"],
            r["took_ns"].as_u64().unwrap_or(0) as f64 / 1000.0
        );
    }
    Ok(())
}

fn ripcord(target: &Target, release: bool) -> Result<(), String> {
    let addr = admin_address(target)?;
    let path = if release {
        "/ripcord/release"
    } else {
        "/ripcord"
    };
    let (code, body) = admin::request(addr, "POST", path)?;
    if code != 200 {
        return Err(format!("the agent answered {code}: {body}"));
    }
    if release {
        println!("rip cord released: programs run again with fresh state");
        return Ok(());
    }
    let r: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("the agent sent an answer that is not JSON: {e}"))?;
    println!(
        "rip cord pulled: {} program(s) disabled in {} µs ({} ns)",
        r["programs_disabled"],
        r["took_ns"].as_u64().unwrap_or(0) as f64 / 1000.0,
        r["took_ns"]
    );
    Ok(())
}

/// A program's name as people know it: its source file's stem
/// (`drop_field`), not the path it was compiled from.
fn short_name(name: &str) -> &str {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_names_a_program_by_its_stem() {
        use super::short_name;
        assert_eq!(
            short_name("/work/samples/03-secret/drop_field.dt"),
            "drop_field"
        );
        assert_eq!(short_name("drop_field"), "drop_field");
        assert_eq!(short_name("C:\\progs\\x.dt"), "x");
        assert_eq!(short_name(".hidden"), ".hidden");
    }
}
