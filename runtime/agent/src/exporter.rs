//! The OTLP exporter: a bounded queue of logs and metrics, batched by size
//! or time, sent over OTLP/gRPC or OTLP/HTTP (protobuf) with retries.
//!
//! Memory stays bounded whatever the downstream does: the queue holds at
//! most `exporter.queue_size` records (log records plus metric points);
//! [`ExportQueue::push`] refuses past that and counts the records as
//! dropped (`export_queue_full`). One batch is in flight at a time; a
//! retryable failure (unreachable, `UNAVAILABLE`, HTTP 429/502/503/504, a
//! timeout) is retried with exponential backoff from `retry_initial` up to
//! `retry_max` per wait, for at most `retry_max_elapsed`, after which the
//! batch is dropped and counted (`export_retries_exhausted`). A permanent
//! refusal (`INVALID_ARGUMENT`, HTTP 400, ...) or records the downstream
//! reports rejected in a partial success are counted as `export_rejected`.
//! When the downstream comes back, the next attempt succeeds and export
//! resumes from the head of the queue.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use crate::config::{Exporter as Settings, Protocol};
use crate::telemetry::{DropReason, Stats, lock};

/// One unit of export: resource logs or resource metrics, with the number
/// of records (log records or metric points) it holds.
#[derive(Debug)]
pub enum Item {
    Logs(ResourceLogs, u64),
    Metrics(ResourceMetrics, u64),
}

impl Item {
    fn records(&self) -> u64 {
        match self {
            Item::Logs(_, n) | Item::Metrics(_, n) => *n,
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

enum Client {
    Grpc {
        logs: LogsServiceClient<Channel>,
        metrics: MetricsServiceClient<Channel>,
    },
    Http {
        client: HttpClient<HttpConnector, Full<Bytes>>,
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
                Ok(Client::Grpc {
                    logs: LogsServiceClient::new(channel.clone()),
                    metrics: MetricsServiceClient::new(channel),
                })
            }
            Protocol::Http => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(settings.timeout));
                Ok(Client::Http {
                    client: HttpClient::builder(TokioExecutor::new()).build(connector),
                    base: settings.endpoint.clone(),
                    timeout: settings.timeout,
                })
            }
        }
    }

    /// Sends one batch; `Ok(rejected)` with the records the downstream
    /// reports it rejected (partial success).
    async fn send(
        &mut self,
        logs: &[ResourceLogs],
        metrics: &[ResourceMetrics],
    ) -> Result<u64, Failure> {
        match self {
            Client::Grpc {
                logs: lc,
                metrics: mc,
            } => {
                let mut rejected = 0;
                if !logs.is_empty() {
                    let request = ExportLogsServiceRequest {
                        resource_logs: logs.to_vec(),
                    };
                    let response = lc.export(request).await.map_err(grpc_failure)?;
                    rejected += response
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_log_records.max(0) as u64);
                }
                if !metrics.is_empty() {
                    let request = ExportMetricsServiceRequest {
                        resource_metrics: metrics.to_vec(),
                    };
                    let response = mc.export(request).await.map_err(grpc_failure)?;
                    rejected += response
                        .into_inner()
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
                if !logs.is_empty() {
                    let body = ExportLogsServiceRequest {
                        resource_logs: logs.to_vec(),
                    }
                    .encode_to_vec();
                    http_post(client, &format!("{base}/v1/logs"), body, *timeout).await?;
                }
                if !metrics.is_empty() {
                    let body = ExportMetricsServiceRequest {
                        resource_metrics: metrics.to_vec(),
                    }
                    .encode_to_vec();
                    http_post(client, &format!("{base}/v1/metrics"), body, *timeout).await?;
                }
                Ok(0)
            }
        }
    }
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
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), Failure> {
    let request = axum::http::Request::post(url)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
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
    let mut client = match Client::new(&settings) {
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
    let mut closed = false;
    while !closed {
        let Some(first) = rx.recv().await else { break };
        let mut batch = vec![first];
        let mut n = batch[0].records();
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
        export(&mut client, &settings, &stats, batch, n, stopping.clone()).await;
    }
    // Everything still queued at shutdown gets one attempt.
    let mut rest = Vec::new();
    while let Ok(item) = rx.try_recv() {
        rest.push(item);
    }
    if !rest.is_empty() {
        let n = rest.iter().map(Item::records).sum();
        export(&mut client, &settings, &stats, rest, n, stopping.clone()).await;
    }
}

async fn export(
    client: &mut Client,
    settings: &Settings,
    stats: &Stats,
    batch: Vec<Item>,
    n: u64,
    mut stopping: watch::Receiver<bool>,
) {
    let (mut logs, mut metrics) = (Vec::new(), Vec::new());
    let (mut n_logs, mut n_metrics) = (0, 0);
    for item in batch {
        match item {
            Item::Logs(l, k) => {
                logs.push(l);
                n_logs += k;
            }
            Item::Metrics(m, k) => {
                metrics.push(m);
                n_metrics += k;
            }
        }
    }
    let started = Instant::now();
    let mut wait = settings.retry_initial;
    let outcome = loop {
        match client.send(&logs, &metrics).await {
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
            stats.exported_logs.fetch_add(n_logs, Relaxed);
            stats.exported_metrics.fetch_add(n_metrics, Relaxed);
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
