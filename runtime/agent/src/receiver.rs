//! The OTLP receivers: logs over gRPC (`LogsService/Export`) and over HTTP
//! (`POST /v1/logs`, protobuf or JSON, optionally gzip), both feeding one
//! bounded queue to the pipeline.
//!
//! Every refusal is counted and answered with OTLP's codes, so a client
//! knows whether to retry:
//! - malformed payload: gRPC `INVALID_ARGUMENT`, HTTP 400 (not retryable);
//! - larger than `listen.max_request_size` (after decompression): gRPC
//!   `RESOURCE_EXHAUSTED`, HTTP 413;
//! - the pipeline queue is full (`queue_full`), or the export queue is
//!   (`export_queue_full`: the downstream is slower than the senders, so
//!   they are asked to slow down rather than have records dropped): gRPC
//!   `UNAVAILABLE`, HTTP 503 with `Retry-After`, both retryable by the OTLP
//!   specification. Memory therefore stays bounded by `queue_requests`
//!   requests of at most `max_request_size` each.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use prost::Message;

use crate::telemetry::{Refusal, Stats};

/// One accepted request on its way to the pipeline.
#[derive(Debug)]
pub struct Batch {
    pub logs: Vec<ResourceLogs>,
    pub records: u64,
}

/// What wakes the pipeline thread.
#[derive(Debug)]
pub enum Work {
    Batch(Batch),
    /// A control message is waiting (the rip cord): handle it now, not at
    /// the next batch or tick.
    Wake,
}

/// The receivers' side of the pipeline queue.
#[derive(Clone, Debug)]
pub struct Intake {
    tx: SyncSender<Work>,
    stats: Arc<Stats>,
    max_request_size: usize,
    /// `exporter.queue_size`: past it, requests are refused.
    export_bound: u64,
}

impl Intake {
    pub fn new(
        tx: SyncSender<Work>,
        stats: Arc<Stats>,
        max_request_size: usize,
        export_bound: u64,
    ) -> Intake {
        Intake {
            tx,
            stats,
            max_request_size,
            export_bound,
        }
    }

    /// Hands a request's logs to the pipeline without waiting.
    fn submit(&self, logs: Vec<ResourceLogs>) -> Result<(), Refusal> {
        self.stats.requests.fetch_add(1, Relaxed);
        let records: u64 = logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum();
        if records == 0 {
            return Ok(());
        }
        // Records on their way to the export queue count as in it: once it
        // would be full, senders are asked to wait rather than fill memory.
        let waiting = self.stats.pipeline_records.load(Relaxed);
        if self.stats.export_queue.load(Relaxed) + waiting >= self.export_bound {
            self.stats.refuse(Refusal::ExportQueueFull);
            return Err(Refusal::ExportQueueFull);
        }
        self.stats.pipeline_queue.fetch_add(1, Relaxed);
        self.stats.pipeline_records.fetch_add(records, Relaxed);
        match self.tx.try_send(Work::Batch(Batch { logs, records })) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.pipeline_queue.fetch_sub(1, Relaxed);
                self.stats.pipeline_records.fetch_sub(records, Relaxed);
                self.stats.refuse(Refusal::QueueFull);
                Err(Refusal::QueueFull)
            }
        }
    }
}

/// What a refused sender is told when the agent is busy.
fn busy(why: Refusal) -> &'static str {
    match why {
        Refusal::ExportQueueFull => {
            "the agent's export queue is full (its downstream is slower than its senders); retry with backoff"
        }
        _ => "the agent's pipeline queue is full; retry with backoff",
    }
}

// ------------------------------------------------------------------ gRPC

/// The gRPC `LogsService`.
#[derive(Debug)]
pub struct GrpcLogs(pub Intake);

#[tonic::async_trait]
impl LogsService for GrpcLogs {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        match self.0.submit(request.into_inner().resource_logs) {
            Ok(()) => Ok(tonic::Response::new(ExportLogsServiceResponse::default())),
            Err(why) => Err(tonic::Status::unavailable(busy(why))),
        }
    }
}

/// Rewrites tonic's own refusals so that they follow OTLP and are counted:
/// a message over the size limit (tonic answers `OUT_OF_RANGE`) becomes
/// `RESOURCE_EXHAUSTED`, and a body that does not decode (`INTERNAL` from
/// the decoder) becomes `INVALID_ARGUMENT`. The status comes either in the
/// headers (a trailers-only response) or in the trailers, so both are
/// looked at.
pub fn grpc_refusals(
    stats: Arc<Stats>,
) -> impl Fn(axum::http::Response<tonic::body::Body>) -> axum::http::Response<tonic::body::Body> + Clone
{
    move |mut response| {
        rewrite_status(&stats, response.headers_mut());
        let stats = stats.clone();
        response.map(|body| tonic::body::Body::new(Trailers { inner: body, stats }))
    }
}

fn rewrite_status(stats: &Stats, headers: &mut HeaderMap) {
    let status = headers.get("grpc-status").and_then(|s| s.to_str().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|s| s.to_str().ok())
        .unwrap_or("");
    let rewrite = match status {
        Some("11") if message.contains("too%20large") || message.contains("too large") => {
            stats.refuse(Refusal::Oversized);
            Some("8")
        }
        Some("13") if message.contains("decode") => {
            stats.refuse(Refusal::Malformed);
            Some("3")
        }
        Some("3") => {
            stats.refuse(Refusal::Malformed);
            None
        }
        _ => None,
    };
    if let Some(code) = rewrite {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static(code));
    }
}

/// A response body whose trailers go through [`rewrite_status`].
struct Trailers {
    inner: tonic::body::Body,
    stats: Arc<Stats>,
}

impl http_body::Body for Trailers {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_trailers() {
                    Ok(mut trailers) => {
                        rewrite_status(&this.stats, &mut trailers);
                        http_body::Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                };
                std::task::Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ------------------------------------------------------------------ HTTP

/// `POST /v1/logs`.
pub async fn http_logs(State(intake): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    let asked_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    match http_decode(&intake, &headers, body).await {
        Err((why, status, message)) => {
            intake.stats.refuse(why);
            http_failure(status, &message, asked_json)
        }
        Ok((logs, json)) => match intake.submit(logs) {
            Ok(()) if json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
            Ok(()) => (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportLogsServiceResponse::default().encode_to_vec(),
            )
                .into_response(),
            Err(why) => http_failure(StatusCode::SERVICE_UNAVAILABLE, busy(why), json),
        },
    }
}

/// An OTLP/HTTP failure. The specification asks for a `google.rpc.Status`
/// body (in the request's encoding; only `message` is used) and, for
/// throttling, allows `Retry-After`, which OTLP senders honour.
fn http_failure(status: StatusCode, message: &str, json: bool) -> Response {
    let mut response = if json {
        let body = serde_json::json!({ "message": message }).to_string();
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        // google.rpc.Status { string message = 2; }
        let mut body = Vec::with_capacity(message.len() + 8);
        prost::encoding::string::encode(2, &message.to_string(), &mut body);
        ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
    };
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

type Refused = (Refusal, StatusCode, String);

async fn http_decode(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<ResourceLogs>, bool), Refused> {
    let max = intake.max_request_size;
    let too_large = || {
        (
            Refusal::Oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request is larger than the agent's limit of {max} bytes (`listen.max_request_size`); send smaller batches"
            ),
        )
    };
    let malformed = |message: String| (Refusal::Malformed, StatusCode::BAD_REQUEST, message);
    let bytes: Bytes = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err(malformed(format!("cannot read the request body: {e}"))),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "identity" | "" => bytes.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&bytes[..]).take(max as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("the gzip body does not decompress: {e}")))?;
            if out.len() > max {
                return Err(too_large());
            }
            out
        }
        other => {
            return Err(malformed(format!(
                "content-encoding `{other}` is not supported; send gzip or no encoding"
            )));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => {
            ExportLogsServiceRequest::decode(&bytes[..])
                .map(|r| (r.resource_logs, false))
                .map_err(|e| {
                    malformed(format!(
                        "the body is not an OTLP ExportLogsServiceRequest: {e}"
                    ))
                })
        }
        "application/json" => serde_json::from_slice::<ExportLogsServiceRequest>(&bytes)
            .map(|r| (r.resource_logs, true))
            .map_err(|e| malformed(format!("the body is not OTLP/JSON logs: {e}"))),
        other => Err(malformed(format!(
            "content-type `{other}` is not supported; send application/x-protobuf or application/json"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal carries a `google.rpc.Status` with the message, in the
    /// request's encoding; a throttled sender is told when to come back.
    #[tokio::test]
    async fn http_failures_are_rpc_statuses() {
        let body = |r: Response| async move {
            let parts = r.into_body().collect().await.unwrap().to_bytes();
            parts.to_vec()
        };
        let r = http_failure(StatusCode::SERVICE_UNAVAILABLE, "busy", false);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/x-protobuf");
        // Field 2 (message), length-delimited: tag 0x12, length, bytes.
        assert_eq!(body(r).await, b"\x12\x04busy");
        let r = http_failure(StatusCode::BAD_REQUEST, "not OTLP", true);
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(body(r).await, br#"{"message":"not OTLP"}"#);
    }
}
