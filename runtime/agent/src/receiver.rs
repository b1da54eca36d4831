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
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;

use crate::telemetry::{Refusal, Stats};
use crate::wire;

/// One accepted request on its way to the pipeline: its bytes, checked
/// and indexed.
#[derive(Debug)]
pub struct Batch {
    pub request: wire::Request,
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
    fn submit(&self, request: wire::Request) -> Result<(), Refusal> {
        self.stats.requests.fetch_add(1, Relaxed);
        let records = request.len() as u64;
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
        match self.tx.try_send(Work::Batch(Batch { request, records })) {
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

/// The gRPC `LogsService` (`/opentelemetry.proto.collector.logs.v1.LogsService/Export`).
///
/// Written out rather than generated (`LogsServiceServer`) for one reason:
/// its codec hands the request over as the bytes that came (tonic splits
/// them off its buffer without a copy), to be checked and indexed by
/// [`wire::Request::parse`] instead of decoded into owned messages. Size
/// limit and gzip as the generated server had them.
#[derive(Clone, Debug)]
pub struct GrpcLogs {
    intake: Intake,
}

/// The gRPC path of the one method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

impl GrpcLogs {
    pub fn new(intake: Intake) -> GrpcLogs {
        GrpcLogs { intake }
    }
}

impl tonic::server::NamedService for GrpcLogs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

impl<B> tonic::codegen::Service<axum::http::Request<B>> for GrpcLogs
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async move {
                let mut response = axum::http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
                Ok(response)
            });
        }
        let export = Export(self.intake.clone());
        let max = self.intake.max_request_size;
        Box::pin(async move {
            let mut gzip = tonic::codec::EnabledCompressionEncodings::default();
            gzip.enable(tonic::codec::CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(RawRequest)
                .apply_compression_config(gzip, Default::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(export, request).await)
        })
    }
}

/// The one method: check, index and hand on.
struct Export(Intake);

impl tonic::server::UnaryService<Bytes> for Export {
    type Response = ExportLogsServiceResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let intake = self.0.clone();
        Box::pin(async move {
            let request = wire::Request::parse(request.into_inner()).map_err(|e| {
                tonic::Status::invalid_argument(format!(
                    "the body is not an OTLP ExportLogsServiceRequest: {e}"
                ))
            })?;
            match intake.submit(request) {
                Ok(()) => Ok(tonic::Response::new(ExportLogsServiceResponse::default())),
                Err(why) => Err(tonic::Status::unavailable(busy(why))),
            }
        })
    }
}

/// A server codec that decodes a request into its bytes (no copy) and
/// encodes the answer with prost.
#[derive(Clone, Copy, Debug, Default)]
struct RawRequest;

impl tonic::codec::Codec for RawRequest {
    type Encode = ExportLogsServiceResponse;
    type Decode = Bytes;
    type Encoder = RawRequest;
    type Decoder = RawRequest;

    fn encoder(&mut self) -> RawRequest {
        RawRequest
    }

    fn decoder(&mut self) -> RawRequest {
        RawRequest
    }
}

impl tonic::codec::Encoder for RawRequest {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: ExportLogsServiceResponse,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the answer: {e}")))
    }
}

impl tonic::codec::Decoder for RawRequest {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
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
        Ok((request, json)) => match intake.submit(request) {
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
) -> Result<(wire::Request, bool), Refused> {
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
        "identity" | "" => bytes,
        "gzip" => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&bytes[..]).take(max as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("the gzip body does not decompress: {e}")))?;
            if out.len() > max {
                return Err(too_large());
            }
            Bytes::from(out)
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
        "application/x-protobuf" | "application/protobuf" => wire::Request::parse(bytes)
            .map(|r| (r, false))
            .map_err(|e| {
                malformed(format!(
                    "the body is not an OTLP ExportLogsServiceRequest: {e}"
                ))
            }),
        // JSON is read into messages and goes on as protobuf, so the
        // pipeline has one form of request.
        "application/json" => serde_json::from_slice::<ExportLogsServiceRequest>(&bytes)
            .map_err(|e| malformed(format!("the body is not OTLP/JSON logs: {e}")))
            .and_then(|r| {
                wire::Request::parse(Bytes::from(r.encode_to_vec()))
                    .map(|r| (r, true))
                    .map_err(|e| malformed(format!("the body is not OTLP/JSON logs: {e}")))
            }),
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
