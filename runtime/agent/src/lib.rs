//! The dtc agent: receives OpenTelemetry logs over OTLP (gRPC and HTTP),
//! runs the verified artifacts of a folder over them, and exports the
//! shaped logs and the programs' derived logs and metrics over OTLP.
//!
//! Threads and queues (see ARCHITECTURE.md, "The agent"):
//!
//! ```text
//! gRPC :4317 ─┐                        ┌──────────── pipeline thread ───────────┐
//!             ├─ Intake ─(bounded: listen.queue_requests)─> engines (chain) ─┐   │
//! HTTP :4318 ─┘   full → UNAVAILABLE/503 └───────────────────────────────────┼───┘
//!                                                                            v
//! loader thread ──Control::Programs──> pipeline      ExportQueue (bounded: exporter.queue_size)
//! admin :4319, SIGUSR1 ──rip cord flag + Control──>         │ full → dropped, counted
//! telemetry task ──self metrics──────────────────────────>  v
//!                                                  exporter task ──OTLP──> collector
//! ```
//!
//! The tokio runtime runs the servers, the exporter and the telemetry task;
//! the engines run on the pipeline thread only (they are not `Send`).

pub mod actions;
pub mod admin;
pub mod config;
pub mod convert;
pub mod exporter;
pub mod loader;
pub mod pipeline;
pub mod received;
pub mod receiver;
pub mod telemetry;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::exporter::Item;
use crate::pipeline::{Control, Pipeline};
use crate::receiver::{GrpcLogs, Intake};
use crate::telemetry::{Stats, lock};

/// Said at start-up and by `check-config` when no secret hash key is set.
pub const HASH_KEY_WARNING: &str = "hashed values (`hash`, `redact ... with hash`) use the engine's public default key, so anyone can confirm a guess of a hashed value; set `redaction.hash_key_file` to a secret key";

/// The addresses the agent listens on, once bound (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs the agent until `shutdown` completes, then stops taking requests,
/// drains the pipeline (flushing every program's windows) and gives the
/// exporter one last attempt. Errors are start-up failures (a policy that
/// does not parse, a port in use, ...), each saying what to fix.
pub async fn run(
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    if !config.files_loaded() {
        config.load_files("the configuration").map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        })?;
    }
    let policy = loader::load_policy(config.artifacts.policy.as_deref())?;
    let keys = config.artifacts.keys.clone();
    if config.redaction.hash_key.is_none() {
        eprintln!("dtc-agent: {}", HASH_KEY_WARNING);
    }
    if !config.artifacts.dir.is_dir() {
        return Err(format!(
            "the artifact folder `{}` does not exist (`artifacts.dir`); create it, even empty",
            config.artifacts.dir.display()
        ));
    }
    let bind = |addr: SocketAddr, key: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} (`{key}`): {e}"))
    };
    let grpc_listener = bind(config.listen.grpc, "listen.grpc").await?;
    let http_listener = bind(config.listen.http, "listen.http").await?;
    let admin_listener = bind(config.listen.admin, "listen.admin").await?;
    let local = |l: &TcpListener| l.local_addr().map_err(|e| format!("no local address: {e}"));
    let bound = Bound {
        grpc: local(&grpc_listener)?,
        http: local(&http_listener)?,
        admin: local(&admin_listener)?,
    };

    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (export, export_rx) = exporter::queue(&config.exporter, stats.clone());
    let exporter_task = tokio::spawn(exporter::run(
        config.exporter.clone(),
        stats.clone(),
        export_rx,
        stop_rx.clone(),
    ));

    // The pipeline thread.
    let (batch_tx, batch_rx) = std::sync::mpsc::sync_channel(config.listen.queue_requests);
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let ripcord = Arc::new(AtomicBool::new(false));
    let pipeline_thread = {
        let (hash_key, engine) = (config.redaction.hash_key, config.artifacts.engine);
        let (budgets, stats, export, ripcord) = (
            config.budgets.clone(),
            stats.clone(),
            export.clone(),
            ripcord.clone(),
        );
        let actions = actions::Actions::new(&config.spool, &config.actions)?;
        // Engines are not `Send`: the pipeline is built on its own thread.
        std::thread::Builder::new()
            .name("dtc-pipeline".into())
            .spawn(move || {
                Pipeline::new(budgets, stats, export, ripcord, actions, hash_key)
                    .with_engine(engine)
                    .run(batch_rx, control_rx)
            })
    }
    .map_err(|e| format!("cannot start the pipeline thread: {e}"))?;

    // The loader: a first scan now, then a thread that polls.
    let mut loader = loader::Loader::new(
        config.artifacts.dir.clone(),
        policy,
        keys,
        config.budgets.clone(),
    );
    let publish_scan = {
        let stats = stats.clone();
        let control = control_tx.clone();
        move |scan: loader::Scan| {
            for r in &scan.refused {
                eprintln!("dtc-agent: artifact {} refused: {}", r.file, r.reason);
            }
            let names: Vec<&str> = scan.programs.iter().map(|p| p.file.as_str()).collect();
            eprintln!("dtc-agent: programs: [{}]", names.join(", "));
            *lock(&stats.artifacts_refused) = scan.refused;
            let _ = control.send(Control::Programs(scan.programs));
        }
    };
    if let Some(scan) = loader.scan() {
        publish_scan(scan);
    }
    let interval = config.artifacts.reload_interval;
    let loader_stop = stop_rx.clone();
    let loader_thread = std::thread::Builder::new()
        .name("dtc-loader".into())
        .spawn(move || {
            while !*loader_stop.borrow() {
                std::thread::sleep(interval);
                if let Some(scan) = loader.scan() {
                    publish_scan(scan);
                }
            }
        })
        .map_err(|e| format!("cannot start the loader thread: {e}"))?;

    // Servers.
    let wake = batch_tx.clone();
    let intake = Intake::new(
        batch_tx,
        stats.clone(),
        config.listen.max_request_size,
        config.exporter.queue_size as u64,
    );
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let grpc_service = GrpcLogs::new(intake.clone());
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(tower::util::MapResponseLayer::new(receiver::grpc_refusals(
                stats.clone(),
            )))
            .add_service(grpc_service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                stopped(stop_rx.clone()),
            ),
    );
    let http_router = axum::Router::new()
        .route("/v1/logs", axum::routing::post(receiver::http_logs))
        .with_state(intake);
    let http = tokio::spawn(
        axum::serve(http_listener, http_router)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let admin_state = admin::Admin {
        stats: stats.clone(),
        ripcord: ripcord.clone(),
        control: control_tx.clone(),
        wake,
    };
    let admin_server = tokio::spawn(
        axum::serve(admin_listener, admin::router(admin_state.clone()))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );

    // Self-telemetry.
    let telemetry_task = {
        let stats = stats.clone();
        let export = export.clone();
        let every = config.telemetry.interval;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            if every.is_zero() {
                return;
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => { export.push(Item::metrics(stats.to_metrics())); }
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        })
    };

    // SIGUSR1 pulls the rip cord.
    let signal_task = {
        let admin_state = admin_state.clone();
        let mut stop = stop_rx.clone();
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = usr1.recv() => admin_state.pull(None),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        })
    };

    announce(&config, bound)?;
    shutdown.await;
    eprintln!("dtc-agent: stopping");
    let _ = stop_tx.send(true);
    finish("gRPC", grpc).await;
    finish("HTTP", http).await;
    finish("admin", admin_server).await;
    let _ = telemetry_task.await;
    let _ = signal_task.await;
    drop(admin_state);
    drop(control_tx);
    // The receivers are gone, so the pipeline drains its queue and ends.
    let joined = tokio::task::spawn_blocking(move || {
        let _ = pipeline_thread.join();
        let _ = loader_thread.join();
    });
    let _ = joined.await;
    export.push(Item::metrics(stats.to_metrics()));
    drop(export);
    let deadline = config.exporter.timeout + Duration::from_secs(1);
    let started = Instant::now();
    if tokio::time::timeout(deadline, exporter_task).await.is_err() {
        let left = stats.export_queue.load(Relaxed);
        stats.drop_records(telemetry::DropReason::Shutdown, left);
        eprintln!(
            "dtc-agent: the exporter did not finish within {:?}; {left} records dropped",
            started.elapsed()
        );
    }
    eprintln!(
        "dtc-agent: stopped: {}",
        serde_json::to_string(&stats.status_json()["counters"]).unwrap_or_default()
    );
    Ok(())
}

/// Prints the bound addresses and writes the ready file.
fn announce(config: &Config, bound: Bound) -> Result<(), String> {
    let line = format!(
        "dtc-agent: listening grpc={} http={} admin={}",
        bound.grpc, bound.http, bound.admin
    );
    println!("{line}");
    if let Some(path) = &config.listen.ready_file {
        let json = serde_json::json!({
            "grpc": bound.grpc.to_string(),
            "http": bound.http.to_string(),
            "admin": bound.admin.to_string(),
            "pid": std::process::id(),
        });
        // Written whole under a temporary name, then renamed, so a reader
        // never sees half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                format!(
                    "cannot write the ready file `{}` (`listen.ready_file`): {e}",
                    path.display()
                )
            })?;
    }
    Ok(())
}

/// Waits for a server task and reports how it failed, if it did.
async fn finish<E: std::fmt::Display>(what: &str, task: tokio::task::JoinHandle<Result<(), E>>) {
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("dtc-agent: the {what} server failed: {e}"),
        Err(e) => eprintln!("dtc-agent: the {what} server panicked: {e}"),
    }
}
