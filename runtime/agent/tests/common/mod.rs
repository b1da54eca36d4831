//! The harness of the end-to-end tests: a fake OTLP downstream (a tonic
//! server that keeps what it receives), the real `dtc-agent` binary started
//! on loopback ports chosen by the system, artifacts compiled from `.dt`
//! files through the compiler's API, and OTLP senders.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtc_engine::event::{Input, InputEvent, decode_line, otlp_proto};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
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
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value as Json, json};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "agent-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("programs")).unwrap();
    dir
}

/// Compiles a `.dt` file to `.dtx` bytes the way `dtc compile` does.
pub fn compile(source: &Path) -> Vec<u8> {
    let session = dtc_driver::Session::new(dtc_driver::RealFs);
    let out = session.check_path(source).unwrap();
    assert!(!out.has_errors(), "{source:?}: {:?}", out.diagnostics);
    out.artifact("test").unwrap().unwrap()
}

/// Puts an artifact in place atomically (written aside, then renamed).
pub fn install(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

// ------------------------------------------------------------ downstream

#[derive(Default)]
pub struct Received {
    pub logs: Vec<ResourceLogs>,
    pub metrics: Vec<opentelemetry_proto::tonic::metrics::v1::ResourceMetrics>,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap()
            .logs
            .extend(request.into_inner().resource_logs);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap()
            .metrics
            .extend(request.into_inner().resource_metrics);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A fake OTLP/gRPC collector on loopback, which can be stopped and started
/// again on the same port.
pub struct Downstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Downstream {
    pub async fn start() -> Downstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut d = Downstream {
            addr,
            received: Arc::default(),
            stop: None,
            task: None,
        };
        d.serve(listener);
        d
    }

    /// A port where nothing listens yet; `resume` starts serving on it.
    pub async fn down() -> Downstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        Downstream {
            addr,
            received: Arc::default(),
            stop: None,
            task: None,
        }
    }

    pub async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let sink = Sink(self.received.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(sink.clone()))
                .add_service(MetricsServiceServer::new(sink))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = rx.await;
                    },
                )
                .await;
        }));
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Log records received, with the resource's `service.name` and the
    /// scope name of each.
    pub fn records(&self) -> Vec<(String, String, LogRecord)> {
        let r = self.received.lock().unwrap();
        let mut out = Vec::new();
        for rl in &r.logs {
            let service = rl
                .resource
                .as_ref()
                .map(|res| otlp_proto::attributes(&res.attributes))
                .and_then(|a| {
                    a.get("service.name")
                        .and_then(|s| s.as_str().map(String::from))
                })
                .unwrap_or_default();
            for sl in &rl.scope_logs {
                let scope = sl
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for record in &sl.log_records {
                    out.push((service.clone(), scope.clone(), record.clone()));
                }
            }
        }
        out
    }

    /// The application's records as the flat JSON `dtc run` prints for
    /// egress, in the order received.
    pub fn forwarded_flat(&self) -> Vec<Json> {
        let r = self.received.lock().unwrap();
        let mut out = Vec::new();
        for rl in &r.logs {
            let resource =
                otlp_proto::attributes(rl.resource.as_ref().map_or(&[][..], |x| &x.attributes));
            if resource.get("service.name") == Some(&json!("dtc-agent")) {
                continue;
            }
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    out.push(flat(record, &resource));
                }
            }
        }
        out
    }

    /// Records that are the application's (not the agent's own).
    pub fn forwarded(&self) -> Vec<LogRecord> {
        self.records()
            .into_iter()
            .filter(|(service, _, _)| service != "dtc-agent")
            .map(|(_, _, r)| r)
            .collect()
    }

    /// The agent's records (derived logs and its own) with their scope.
    pub fn agent_records(&self) -> Vec<(String, LogRecord)> {
        self.records()
            .into_iter()
            .filter(|(service, _, _)| service == "dtc-agent")
            .map(|(_, scope, r)| (scope, r))
            .collect()
    }

    /// The first of the agent's own records with this event name.
    pub fn agent_record(&self, event_name: &str) -> Option<LogRecord> {
        self.agent_records()
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.event_name == event_name)
    }

    /// Every metric received with its scope name.
    pub fn metrics(&self) -> Vec<(String, Metric)> {
        let r = self.received.lock().unwrap();
        r.metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| {
                let scope = sm
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                sm.metrics.iter().map(move |m| (scope.clone(), m.clone()))
            })
            .collect()
    }

    /// Waits until `done` holds, up to `limit`.
    pub async fn wait(&self, limit: Duration, done: impl Fn(&Downstream) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done(self)
    }
}

// ------------------------------------------------------------ the agent

pub struct Agent {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dtc-agent")
}

/// `dtc-agent run --config DIR/agent.toml` for a config it must refuse
/// to start with: asserts it exits with 1 and gives its stderr.
pub fn run_refused(dir: &Path) -> String {
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(dir.join("agent.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// `dtc-agent check-config DIR/agent.toml`: success, stdout, stderr.
pub fn check_config_in(dir: &Path) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(dir.join("agent.toml"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The config every test starts from: loopback port 0 everywhere, the
/// downstream as exporter, quick reloads and batches; `extra` is appended
/// (whole sections).
pub fn config_text(downstream: SocketAddr, extra: &str) -> String {
    // Time budgets out of reach unless a test sets its own: a debug build on
    // a busy machine can be slow enough to trip the defaults.
    let budgets = if extra.contains("[budgets]") {
        ""
    } else {
        "[budgets]\ncpu_per_event = \"10s\"\ncpu_per_second = \"1s\"\n"
    };
    format!(
        r#"[listen]
grpc = "127.0.0.1:0"
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
ready_file = "ready.json"
max_request_size = "64KiB"
[exporter]
endpoint = "http://{downstream}"
batch_interval = "20ms"
retry_initial = "20ms"
retry_max = "100ms"
[artifacts]
dir = "programs"
reload_interval = "50ms"
[spool]
dir = "spool"
{budgets}{extra}"#
    )
}

impl Agent {
    /// Starts the real binary in `dir` with `config` and waits for its ready
    /// file.
    pub fn start(dir: &Path, config: &str) -> Agent {
        std::fs::write(dir.join("agent.toml"), config).unwrap();
        let _ = std::fs::remove_file(dir.join("ready.json"));
        // From the repository root, as the samples' relative paths expect.
        let child = Command::new(bin())
            .current_dir(root())
            .args(["run", "--config"])
            .arg(dir.join("agent.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        let mut agent = Agent {
            child,
            grpc: "127.0.0.1:1".parse().unwrap(),
            http: "127.0.0.1:1".parse().unwrap(),
            admin: "127.0.0.1:1".parse().unwrap(),
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(dir.join("ready.json")) {
                let ready: Json = serde_json::from_str(&text).unwrap();
                let addr = |k: &str| ready[k].as_str().unwrap().parse().unwrap();
                agent.grpc = addr("grpc");
                agent.http = addr("http");
                agent.admin = addr("admin");
                return agent;
            }
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("the agent exited with {status}: {}", agent.stderr());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the agent never became ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops the agent with SIGTERM (it flushes windows and exports) and
    /// waits for it to exit.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "{status}: {}", self.stderr());
                return self.stderr();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the agent did not stop: {}", self.stderr());
    }

    pub fn status(&self) -> Json {
        let (code, body) = dtc_agent::admin::request(self.admin, "GET", "/status").unwrap();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn grpc_client(&self) -> LogsServiceClient<tonic::transport::Channel> {
        LogsServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
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

// ------------------------------------------------------------ events

/// The events of a sample's `.events.jsonl` (malformed lines left out:
/// they are not OTLP).
pub fn sample_events(path: &Path) -> Vec<InputEvent> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .flat_map(decode_line)
        .filter_map(|i| match i {
            Input::Event(e) => Some(e),
            Input::Malformed { .. } => None,
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// An event as the OTLP record an SDK would send (the inverse of the
/// agent's decoding).
pub fn record(e: &InputEvent) -> LogRecord {
    LogRecord {
        time_unix_nano: e.time as u64,
        observed_time_unix_nano: e.observed_time as u64,
        severity_number: e.severity as i32,
        severity_text: e.severity_text.clone().unwrap_or_default(),
        body: e.body.as_ref().map(|b| AnyValue {
            value: Some(any_value::Value::StringValue(b.clone())),
        }),
        attributes: e
            .attributes
            .iter()
            .map(|(k, v)| dtc_agent::convert::key_value(k, v))
            .collect(),
        trace_id: e.trace_id.as_deref().map(hex).unwrap_or_default(),
        span_id: e.span_id.as_deref().map(hex).unwrap_or_default(),
        event_name: e.name.clone().unwrap_or_default(),
        ..LogRecord::default()
    }
}

/// Events as one request, one resource per event.
pub fn request(events: &[InputEvent]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: events
            .iter()
            .map(|e| ResourceLogs {
                resource: Some(Resource {
                    attributes: e
                        .resource
                        .iter()
                        .map(|(k, v)| dtc_agent::convert::key_value(k, v))
                        .collect(),
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record(e)],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            })
            .collect(),
    }
}

/// A received record back as the flat JSON `dtc run` prints for egress.
pub fn flat(record: &LogRecord, resource: &std::collections::BTreeMap<String, Json>) -> Json {
    dtc_engine::event::to_flat_json(&otlp_proto::decode_record(record, resource).unwrap())
}

/// The attribute of a record, as natural JSON.
pub fn attr(record: &LogRecord, key: &str) -> Option<Json> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref().map_or(Json::Null, otlp_proto::any_value))
}

pub fn kv(key: &str, value: Json) -> KeyValue {
    dtc_agent::convert::key_value(key, &value)
}

/// A metric's points as `dtc run` prints them: name, labels, value.
pub fn metric_points(m: &Metric) -> Vec<Json> {
    let labels = |attrs: &[KeyValue]| {
        Json::Object(
            attrs
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map_or(Json::Null, otlp_proto::any_value),
                    )
                })
                .collect(),
        )
    };
    let time = |ns: u64| json!(dtc_engine::event::format_time(ns as i64));
    let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| {
        let value = match p.value {
            Some(number_data_point::Value::AsInt(i)) => json!(i),
            Some(number_data_point::Value::AsDouble(f)) if m.unit == "s" => json!({ "seconds": f }),
            Some(number_data_point::Value::AsDouble(f)) => json!(f),
            None => Json::Null,
        };
        json!({ "name": m.name, "labels": labels(&p.attributes), "value": value,
                "start": time(p.start_time_unix_nano), "end": time(p.time_unix_nano) })
    };
    match &m.data {
        Some(metric::Data::Sum(s)) => s.data_points.iter().map(number).collect(),
        Some(metric::Data::Gauge(g)) => g.data_points.iter().map(number).collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                json!({ "name": m.name, "labels": labels(&p.attributes), "value": {
                    "bounds": p.explicit_bounds, "counts": p.bucket_counts, "count": p.count,
                    "sum": p.sum, "min": p.min, "max": p.max },
                    "start": time(p.start_time_unix_nano), "end": time(p.time_unix_nano) })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Posts a body to the agent's OTLP/HTTP endpoint; returns the status.
pub async fn http_post(addr: SocketAddr, body: Vec<u8>, content_type: &str, gzip: bool) -> u16 {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let (body, encoding) = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        (encoder.finish().unwrap(), "gzip")
    } else {
        (body, "identity")
    };
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = axum::http::Request::post(format!("http://{addr}/v1/logs"))
        .header("content-type", content_type)
        .header("content-encoding", encoding)
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}
