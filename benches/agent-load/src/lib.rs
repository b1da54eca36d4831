//! The pieces of the agent's end-to-end throughput benchmark
//! (`cargo bench -p dtc-agent-bench`): pre-encoded OTLP log streams, a
//! load generator that sends them as raw gRPC requests (no encoding on the
//! hot path), a downstream sink that counts what the agent exported, and
//! the agent process itself, pinned to one core, with its memory and CPU
//! time read from `/proc`.
//!
//! The measured rate is what made it through: application records counted
//! at the sink, so receive, decode, run, re-encode and export are all in it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

// ------------------------------------------------------------- streams

/// 2026-11-22T10:00:00Z, the samples' day.
const BASE_NS: u64 = 1_795_341_600_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn record(name: &str, time: u64, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time + 1_000_000,
        severity_number: 9,
        severity_text: "INFO".into(),
        event_name: name.into(),
        attributes,
        ..LogRecord::default()
    }
}

/// Records in batches of `batch`, each batch one encoded
/// `ExportLogsServiceRequest` with the application's resource, as an SDK
/// sends them.
fn encode(records: Vec<LogRecord>, batch: usize) -> Vec<Bytes> {
    let resource = Resource {
        attributes: vec![
            kv("service.name", text("imagesvc")),
            kv("service.version", text("2.4.0")),
            kv("host.name", text("bench-host")),
        ],
        ..Resource::default()
    };
    records
        .chunks(batch)
        .map(|chunk| {
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        log_records: chunk.to_vec(),
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            Bytes::from(request.encode_to_vec())
        })
        .collect()
}

/// The redaction sample's stream (samples/03-secret): welcome banners that
/// log an API key, a millisecond apart.
pub fn banners(n: usize, batch: usize) -> Vec<Bytes> {
    let records = (0..n as u64)
        .map(|i| {
            record(
                "LogWelcomeBanner",
                BASE_NS + i * 1_000_000,
                vec![
                    kv(
                        "secret",
                        text(format!("sk_live_4f9a2c61d0b7e385{:04x}", i % 65_536)),
                    ),
                    kv("version", text("2.4.0")),
                    kv("time", text("2026-11-22 10:00:02")),
                    kv("seq", any_value::Value::IntValue(i as i64)),
                ],
            )
        })
        .collect();
    encode(records, batch)
}

/// The state-machine sample's stream (samples/01-file-hashing): a start and
/// an end of hash per file on 16 threads, in time order, 1 to 7 ms apart.
pub fn file_hashes(n: usize, batch: usize) -> Vec<Bytes> {
    const EXTENSIONS: [&str; 4] = ["jpg", "png", "heic", "webp"];
    let mut timed: Vec<(u64, LogRecord)> = Vec::with_capacity(n);
    for i in 0..(n as u64).div_ceil(2) {
        let start = BASE_NS + i * 2_000_000;
        let end = start + (1 + i % 7) * 1_000_000;
        let thread = any_value::Value::IntValue((i % 16) as i64);
        let file = format!(
            "/srv/imagesvc/uploads/user{}/IMG_{i:07}.{}",
            i % 97,
            EXTENSIONS[(i % 4) as usize]
        );
        timed.push((
            start,
            record(
                "LogStartingFileHash",
                start,
                vec![
                    kv("thread.id", thread.clone()),
                    kv("fileName", text(file.clone())),
                ],
            ),
        ));
        timed.push((
            end,
            record(
                "LogEndFileHash",
                end,
                vec![
                    kv("thread.id", thread),
                    kv("fileName", text(file)),
                    kv(
                        "hashValue",
                        text(format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                    ),
                ],
            ),
        ));
    }
    timed.truncate(n);
    timed.sort_by_key(|(t, _)| *t);
    encode(timed.into_iter().map(|(_, r)| r).collect(), batch)
}

/// Log records in an encoded request.
pub fn records_in(request: &[u8]) -> u64 {
    ExportLogsServiceRequest::decode(request).map_or(0, |r| application_records(&r.resource_logs))
}

/// The application's records among exported logs: the agent's own
/// (resource `service.name` = `dtc-agent`: derived logs, reports) left out.
pub fn application_records(logs: &[ResourceLogs]) -> u64 {
    logs.iter()
        .filter(|rl| {
            !rl.resource.as_ref().is_some_and(|r| {
                r.attributes.iter().any(|kv| {
                    kv.key == "service.name"
                        && kv.value.as_ref().and_then(|v| v.value.as_ref())
                            == Some(&text("dtc-agent"))
                })
            })
        })
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len() as u64)
        .sum()
}

// ----------------------------------------------------------- generator

/// A gRPC codec that sends bytes already encoded and ignores the answer's
/// body: the generator spends nothing on protobuf.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// What a load run did.
#[derive(Debug, Default)]
pub struct Sent {
    pub requests: u64,
    /// Answers "unavailable" (the agent's pipeline queue was full): the
    /// request was sent again after a short pause.
    pub retried: u64,
}

/// Sends every batch once (retrying those the agent turns away as
/// unavailable) over `in_flight` concurrent requests on one HTTP/2
/// connection.
pub async fn send_all(
    addr: SocketAddr,
    batches: Arc<Vec<Bytes>>,
    in_flight: usize,
) -> Result<Sent, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot connect to the agent at {addr}: {e}"))?;
    let next = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (channel, batches, next, retried) = (
            channel.clone(),
            batches.clone(),
            next.clone(),
            retried.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            let path = http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            );
            loop {
                let i = next.fetch_add(1, Relaxed);
                let Some(batch) = batches.get(i) else {
                    return Ok::<(), String>(());
                };
                loop {
                    grpc.ready()
                        .await
                        .map_err(|e| format!("connection lost: {e}"))?;
                    match grpc
                        .unary(tonic::Request::new(batch.clone()), path.clone(), Raw)
                        .await
                    {
                        Ok(_) => break,
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            retried.fetch_add(1, Relaxed);
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                        Err(s) => return Err(format!("the agent refused a batch: {s}")),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(Sent {
        requests: batches.len() as u64,
        retried: retried.load(Relaxed),
    })
}

// ---------------------------------------------------------------- sink

/// The downstream collector: counts the application's log records and the
/// metric requests the agent exports.
#[derive(Debug, Default, Clone)]
pub struct Sink {
    pub records: Arc<AtomicU64>,
    pub metric_requests: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n = application_records(&request.into_inner().resource_logs);
        self.records.fetch_add(n, Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metric_requests.fetch_add(1, Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Sink {
    /// Serves on a loopback port the system picks; returns it.
    pub async fn start(&self) -> Result<SocketAddr, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let router = tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(self.clone()).max_decoding_message_size(64 << 20))
            .add_service(MetricsServiceServer::new(self.clone()));
        tokio::spawn(
            router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok(addr)
    }
}

// --------------------------------------------------------------- agent

/// The real `dtc-agent` binary, run under `taskset` on one core.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
}

/// The agent's configuration for a run: defaults except loopback ports,
/// the sink as exporter with `export_batch` records per request, the
/// bench's policy (`ring.toml`), no self-telemetry and budgets out of reach
/// (a benchmark must not trip them).
pub fn config(sink: SocketAddr, export_batch: usize) -> String {
    format!(
        r#"[listen]
grpc = "127.0.0.1:0"
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
ready_file = "ready.json"
max_request_size = "16MiB"
[exporter]
endpoint = "http://{sink}"
batch_size = {export_batch}
[artifacts]
dir = "programs"
reload_interval = "1s"
policy = "ring.toml"
[spool]
dir = "spool"
[telemetry]
interval = "0s"
[budgets]
cpu_per_event = "1s"
cpu_per_second = "1s"
emit_per_second = 1000000000
"#
    )
}

impl Agent {
    /// Starts `binary` in `dir` (which holds `agent.toml`) pinned to `cpu`,
    /// and waits for its ready file.
    pub fn start(binary: &Path, dir: &Path, cpu: usize) -> Result<Agent, String> {
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(binary)
            .args(["run", "--config"])
            .arg(dir.join("agent.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start taskset {}: {e}", binary.display()))?;
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let json: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                let addr = |k: &str| {
                    json[k]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .ok_or_else(|| format!("the ready file has no {k}: {text}"))
                };
                return Ok(Agent {
                    grpc: addr("grpc")?,
                    admin: addr("admin")?,
                    child,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
                return Err(format!("the agent exited with {status}: {stderr}"));
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err("the agent never wrote its ready file".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /status` on the admin endpoint, parsed.
    pub fn status(&self) -> Result<serde_json::Value, String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.admin).map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.admin
        )
        .map_err(|e| e.to_string())?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).map_err(|e| e.to_string())?;
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).map_err(|e| format!("status is not JSON ({e}): {raw}"))
    }

    /// Resident memory, bytes.
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.pid())
    }

    /// CPU time used by every thread so far (user + system), from
    /// `/proc/PID/stat` in clock ticks of 10 ms.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// SIGTERM, then waits for the agent to exit.
    pub fn stop(mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err("the agent did not stop within 30 s of SIGTERM; killed".into())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's resident memory, bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The workspace's target folder (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_hold_what_was_asked_in_time_order() {
        let banners = banners(1000, 300);
        assert_eq!(banners.len(), 4);
        assert_eq!(banners.iter().map(|b| records_in(b)).sum::<u64>(), 1000);
        let hashes = file_hashes(1001, 512);
        assert_eq!(hashes.iter().map(|b| records_in(b)).sum::<u64>(), 1001);
        let times: Vec<u64> = hashes
            .iter()
            .flat_map(|b| {
                let r = ExportLogsServiceRequest::decode(&b[..]).unwrap();
                r.resource_logs[0].scope_logs[0]
                    .log_records
                    .iter()
                    .map(|r| r.time_unix_nano)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_agents_own_records_are_not_counted() {
        let own = ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", text("dtc-agent"))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 3],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        };
        let app = ExportLogsServiceRequest::decode(&banners(5, 10)[0][..]).unwrap();
        let mut logs = app.resource_logs;
        logs.push(own);
        assert_eq!(application_records(&logs), 5);
    }
}
