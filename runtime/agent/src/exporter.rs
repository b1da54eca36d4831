//! The OTLP exporter: a bounded queue of logs and metrics, batched by size
//! or time, sent over OTLP/gRPC or OTLP/HTTP (protobuf) with retries.
//!
//! Memory stays bounded whatever the downstream does: the queue holds at
//! most `exporter.queue_size` records (log records plus metric points);
//! [`ExportQueue::push`] refuses past that and counts the records as
//! dropped (`export_queue_full`); records count until their batch is done,
//! so batches in flight are within the bound. A batch is encoded once, by
//! moving its records (never copied), and up to `exporter.in_flight`
//! batches are sent at once, each with its own retries: a retryable
//! failure (unreachable, `UNAVAILABLE`, HTTP 429/502/503/504, a
//! timeout) is retried with exponential backoff from `retry_initial` up to
//! `retry_max` per wait, for at most `retry_max_elapsed`, after which the
//! batch is dropped and counted (`export_retries_exhausted`). A permanent
//! refusal (`INVALID_ARGUMENT`, HTTP 400, ...) or records the downstream
//! reports rejected in a partial success are counted as `export_rejected`.
//! When the downstream comes back, the next attempt succeeds and export
//! resumes from the head of the queue.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use prost::Message;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::config::{Exporter as Settings, Protocol};
use crate::telemetry::{DropReason, Stats, lock};

/// One unit of export: resource logs or resource metrics, with the number
/// of records (log records or metric points) it holds.
#[derive(Debug)]
pub enum Item {
    Logs(ResourceLogs, u64),
    /// A `ResourceLogs` as bytes (its message body): received records
    /// forwarded as they came, or spliced around shaping's edits
    /// ([`crate::wire::Request::assemble`]).
    RawLogs(Bytes, u64),
    Metrics(ResourceMetrics, u64),
}

impl Item {
    /// The records (or metric points) the item carries.
    pub fn records(&self) -> u64 {
        match self {
            Item::Logs(_, n) | Item::RawLogs(_, n) | Item::Metrics(_, n) => *n,
        }
    }

    /// An item of resource logs, counting its records.
    pub fn logs(logs: ResourceLogs) -> Item {
        let n = logs
            .scope_logs
            .iter()
            .map(|s| s.log_records.len() as u64)
            .sum();
        Item::Logs(logs, n)
    }

    /// An item of resource metrics, counting its points.
    pub fn metrics(metrics: ResourceMetrics) -> Item {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let n = metrics
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            } as u64)
            .sum();
        Item::Metrics(metrics, n)
    }
}

/// The sending side of the export queue, shared by the pipeline and the
/// agent's own telemetry.
#[derive(Clone, Debug)]
pub struct ExportQueue {
    tx: mpsc::UnboundedSender<Item>,
    stats: Arc<Stats>,
    bound: u64,
}

impl ExportQueue {
    /// Queues an item, or drops it (counted) when the queue is full or the
    /// exporter has stopped. Never blocks.
    pub fn push(&self, item: Item) -> bool {
        let n = item.records();
        if n == 0 {
            return true;
        }
        let before = self.stats.export_queue.fetch_add(n, Relaxed);
        if before + n > self.bound {
            self.stats.export_queue.fetch_sub(n, Relaxed);
            self.stats.drop_records(DropReason::ExportQueueFull, n);
            return false;
        }
        if self.tx.send(item).is_err() {
            self.stats.export_queue.fetch_sub(n, Relaxed);
            self.stats.drop_records(DropReason::Shutdown, n);
            return false;
        }
        true
    }
}

impl ExportQueue {
    /// Queues the application's records, waiting while the queue is full:
    /// the exporter frees room as batches finish (a batch is dropped only
    /// once its retries are exhausted), so records the receivers accepted
    /// are not dropped for want of room. Meanwhile the pipeline queue fills
    /// and the receivers answer `UNAVAILABLE` / 503. Gives up (dropped,
    /// counted) only when the exporter has stopped, or for an item larger
    /// than the whole queue.
    pub fn push_waiting(&self, item: Item) -> bool {
        let n = item.records();
        if n > self.bound {
            self.stats.drop_records(DropReason::ExportQueueFull, n);
            return false;
        }
        let queued = &self.stats.export_queue;
        loop {
            let before = queued.load(Relaxed);
            if before + n <= self.bound
                && queued
                    .compare_exchange(before, before + n, Relaxed, Relaxed)
                    .is_ok()
            {
                break;
            }
            if self.tx.is_closed() {
                self.stats.drop_records(DropReason::Shutdown, n);
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if self.tx.send(item).is_err() {
            queued.fetch_sub(n, Relaxed);
            self.stats.drop_records(DropReason::Shutdown, n);
            return false;
        }
        true
    }
}

/// Creates the queue; the receiver goes to [`run`].
pub fn queue(
    settings: &Settings,
    stats: Arc<Stats>,
) -> (ExportQueue, mpsc::UnboundedReceiver<Item>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queue = ExportQueue {
        tx,
        stats,
        bound: settings.queue_size as u64,
    };
    (queue, rx)
}

enum Failure {
    Retryable(String),
    Permanent(String),
}

/// One batch, encoded once: the bodies are shared by reference count
/// between attempts, so a retry costs no copy.
struct Encoded {
    logs: Option<Bytes>,
    metrics: Option<Bytes>,
    n_logs: u64,
    n_metrics: u64,
}

impl Encoded {
    /// Moves the items' records into one request per signal.
    fn new(batch: Vec<Item>) -> Encoded {
        let (mut logs, mut metrics) = (Vec::new(), Vec::new());
        let (mut n_logs, mut n_metrics) = (0, 0);
        let mut any_logs = false;
        for item in batch {
            match item {
                Item::Logs(l, k) => {
                    // `resource_logs` is field 1 of the request.
                    prost::encoding::message::encode(1, &l, &mut logs);
                    n_logs += k;
                    any_logs = true;
                }
                Item::RawLogs(bytes, k) => {
                    crate::wire::put_field(1, &bytes, &mut logs);
                    n_logs += k;
                    any_logs = true;
                }
                Item::Metrics(m, k) => {
                    metrics.push(m);
                    n_metrics += k;
                }
            }
        }
        let logs = any_logs.then(|| Bytes::from(logs));
        let metrics = (!metrics.is_empty()).then(|| {
            let request = ExportMetricsServiceRequest {
                resource_metrics: metrics,
            };
            Bytes::from(request.encode_to_vec())
        });
        Encoded {
            logs,
            metrics,
            n_logs,
            n_metrics,
        }
    }

    fn records(&self) -> u64 {
        self.n_logs + self.n_metrics
    }
}

/// A gRPC codec that sends a request body encoded already and decodes the
/// answer `R`.
struct PreEncoded<R>(PhantomData<R>);

impl<R> Default for PreEncoded<R> {
    fn default() -> Self {
        PreEncoded(PhantomData)
    }
}

impl<R: Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = PreEncoded<()>;
    type Decoder = PreEncoded<R>;

    fn encoder(&mut self) -> PreEncoded<()> {
        PreEncoded::default()
    }

    fn decoder(&mut self) -> PreEncoded<R> {
        PreEncoded::default()
    }
}

impl Encoder for PreEncoded<()> {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl<R: Message + Default> Decoder for PreEncoded<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, tonic::Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("the answer does not decode: {e}")))
    }
}

#[derive(Clone)]
enum Client {
    Grpc(Channel),
    Http {
        client: Box<HttpClient<HttpConnector, Full<Bytes>>>,
        base: String,
        timeout: Duration,
    },
}

impl Client {
    fn new(settings: &Settings) -> Result<Client, String> {
        match settings.protocol {
            Protocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(settings.endpoint.clone())
                    .map_err(|e| format!("bad exporter endpoint `{}`: {e}", settings.endpoint))?
                    .connect_timeout(settings.timeout)
                    .timeout(settings.timeout)
                    .connect_lazy();
                Ok(Client::Grpc(channel))
            }
            Protocol::Http => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(settings.timeout));
                Ok(Client::Http {
                    client: Box::new(HttpClient::builder(TokioExecutor::new()).build(connector)),
                    base: settings.endpoint.clone(),
                    timeout: settings.timeout,
                })
            }
        }
    }

    /// Sends one batch; `Ok(rejected)` with the records the downstream
    /// reports it rejected (partial success).
    async fn send(&self, batch: &Encoded) -> Result<u64, Failure> {
        match self {
            Client::Grpc(channel) => {
                let mut rejected = 0;
                if let Some(body) = &batch.logs {
                    let response: ExportLogsServiceResponse = grpc_call(
                        channel,
                        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                        body,
                    )
                    .await?;
                    rejected += response
                        .partial_success
                        .map_or(0, |p| p.rejected_log_records.max(0) as u64);
                }
                if let Some(body) = &batch.metrics {
                    let response: ExportMetricsServiceResponse = grpc_call(
                        channel,
                        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                        body,
                    )
                    .await?;
                    rejected += response
                        .partial_success
                        .map_or(0, |p| p.rejected_data_points.max(0) as u64);
                }
                Ok(rejected)
            }
            Client::Http {
                client,
                base,
                timeout,
            } => {
                if let Some(body) = &batch.logs {
                    http_post(client, &format!("{base}/v1/logs"), body, *timeout).await?;
                }
                if let Some(body) = &batch.metrics {
                    http_post(client, &format!("{base}/v1/metrics"), body, *timeout).await?;
                }
                Ok(0)
            }
        }
    }
}

async fn grpc_call<R: Message + Default + Send + 'static>(
    channel: &Channel,
    path: &'static str,
    body: &Bytes,
) -> Result<R, Failure> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Failure::Retryable(format!("{path}: {e}")))?;
    let path = axum::http::uri::PathAndQuery::from_static(path);
    grpc.unary(
        tonic::Request::new(body.clone()),
        path,
        PreEncoded::<R>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
    .map_err(grpc_failure)
}

fn grpc_failure(status: tonic::Status) -> Failure {
    use tonic::Code::*;
    let text = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Unavailable | ResourceExhausted | Aborted | DeadlineExceeded | Cancelled | OutOfRange
        | DataLoss | Unknown => Failure::Retryable(text),
        _ => Failure::Permanent(text),
    }
}

async fn http_post(
    client: &HttpClient<HttpConnector, Full<Bytes>>,
    url: &str,
    body: &Bytes,
    timeout: Duration,
) -> Result<(), Failure> {
    let request = axum::http::Request::post(url)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(body.clone()))
        .map_err(|e| Failure::Permanent(format!("cannot build the request to {url}: {e}")))?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .map_err(|_| Failure::Retryable(format!("{url}: no answer within {timeout:?}")))?
        .map_err(|e| Failure::Retryable(format!("{url}: {e}")))?;
    let status = response.status();
    // Read the body so the connection can be reused.
    let _ = tokio::time::timeout(timeout, response.into_body().collect()).await;
    match status.as_u16() {
        200..=299 => Ok(()),
        429 | 502 | 503 | 504 => Err(Failure::Retryable(format!("{url}: HTTP {status}"))),
        _ => Err(Failure::Permanent(format!("{url}: HTTP {status}"))),
    }
}

/// Runs the exporter until every sender is gone, then flushes what is left
/// (one attempt per batch) and returns. Once `stopping` turns true, a
/// failing batch is no longer retried.
pub async fn run(
    settings: Settings,
    stats: Arc<Stats>,
    mut rx: mpsc::UnboundedReceiver<Item>,
    stopping: watch::Receiver<bool>,
) {
    let client = match Client::new(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dtc-agent: exporter: {e}");
            *lock(&stats.last_export_error) = Some(e);
            while let Some(item) = rx.recv().await {
                let n = item.records();
                stats.export_queue.fetch_sub(n, Relaxed);
                stats.drop_records(DropReason::ExportRejected, n);
            }
            return;
        }
    };
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.in_flight.max(1)));
    let mut sending = JoinSet::new();
    let mut closed = false;
    while !closed {
        let Some(first) = rx.recv().await else { break };
        let mut n = first.records();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + settings.batch_interval;
        while n < settings.batch_size as u64 {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => { n += item.records(); batch.push(item); }
                    None => { closed = true; break; }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let encoded = Encoded::new(batch);
        let (client, settings, stats, stopping) = (
            client.clone(),
            settings.clone(),
            stats.clone(),
            stopping.clone(),
        );
        sending.spawn(async move {
            export(&client, &settings, &stats, encoded, stopping).await;
            drop(slot);
        });
        while sending.try_join_next().is_some() {}
    }
    // Everything still queued at shutdown gets one attempt.
    let mut rest = Vec::new();
    while let Ok(item) = rx.try_recv() {
        rest.push(item);
    }
    if !rest.is_empty() {
        let encoded = Encoded::new(rest);
        export(&client, &settings, &stats, encoded, stopping.clone()).await;
    }
    while sending.join_next().await.is_some() {}
}

async fn export(
    client: &Client,
    settings: &Settings,
    stats: &Stats,
    batch: Encoded,
    mut stopping: watch::Receiver<bool>,
) {
    let n = batch.records();
    let started = Instant::now();
    let mut wait = settings.retry_initial;
    let outcome = loop {
        match client.send(&batch).await {
            Ok(rejected) => break Ok(rejected),
            Err(Failure::Permanent(e)) => break Err((DropReason::ExportRejected, e)),
            Err(Failure::Retryable(e)) => {
                stats.export_failures.fetch_add(1, Relaxed);
                *lock(&stats.last_export_error) = Some(e.clone());
                if *stopping.borrow() {
                    break Err((DropReason::Shutdown, e));
                }
                if started.elapsed() + wait > settings.retry_max_elapsed {
                    break Err((DropReason::ExportRetriesExhausted, e));
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopping.wait_for(|s| *s) => {}
                }
                wait = (wait * 2).min(settings.retry_max);
            }
        }
    };
    stats.export_queue.fetch_sub(n, Relaxed);
    match outcome {
        Ok(rejected) => {
            stats.exported_logs.fetch_add(batch.n_logs, Relaxed);
            stats.exported_metrics.fetch_add(batch.n_metrics, Relaxed);
            if rejected > 0 {
                stats.drop_records(DropReason::ExportRejected, rejected);
            }
        }
        Err((reason, e)) => {
            stats.export_failures.fetch_add(1, Relaxed);
            eprintln!(
                "dtc-agent: exporter: dropped {n} records ({}): {e}",
                reason.as_str()
            );
            *lock(&stats.last_export_error) = Some(e);
            stats.drop_records(reason, n);
        }
    }
}
