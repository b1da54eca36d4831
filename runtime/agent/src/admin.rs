//! The admin endpoint (loopback only) and its client: `GET /status` gives
//! the agent's counters and programs as JSON, `POST /ripcord` disables
//! every program and answers how long it took, `POST /ripcord/release`
//! lets them run again. `dtc-agent status` and `dtc-agent ripcord` are
//! the client; it speaks plain HTTP/1.1 over a std `TcpStream`, so the
//! commands need no runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::pipeline::Control;
use crate::receiver::Work;
use crate::telemetry::{RipcordReport, Stats};

/// What the admin handlers share.
#[derive(Clone, Debug)]
pub struct Admin {
    pub stats: Arc<Stats>,
    pub ripcord: Arc<AtomicBool>,
    pub control: mpsc::Sender<Control>,
    /// Wakes an idle pipeline for the message just sent.
    pub wake: mpsc::SyncSender<Work>,
}

impl Admin {
    fn send(&self, control: Control) {
        let _ = self.control.send(control);
        // Full means busy: the pipeline reads control between batches.
        let _ = self.wake.try_send(Work::Wake);
    }

    /// Pulls the rip cord: the flag stops the pipeline at its next event,
    /// the control message makes it drop every engine and report.
    pub fn pull(&self, reply: Option<tokio::sync::oneshot::Sender<RipcordReport>>) {
        let requested = Instant::now();
        self.ripcord.store(true, Relaxed);
        self.send(Control::Ripcord { requested, reply });
    }
}

pub fn router(admin: Admin) -> axum::Router {
    axum::Router::new()
        .route("/status", get(status))
        .route("/ripcord", post(ripcord))
        .route("/ripcord/release", post(release))
        .with_state(admin)
}

async fn status(State(admin): State<Admin>) -> Json<Value> {
    Json(admin.stats.status_json())
}

async fn ripcord(State(admin): State<Admin>) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    admin.pull(Some(tx));
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(report)) => Json(json!({
            "took_ns": report.took_ns,
            "programs_disabled": report.programs_disabled,
        }))
        .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline did not confirm within 10 s (it may be shutting down); the rip cord flag is set",
        )
            .into_response(),
    }
}

async fn release(State(admin): State<Admin>) -> Json<Value> {
    admin.send(Control::Release);
    Json(json!({ "released": true }))
}

/// Sends one request to the admin endpoint and returns the status code and
/// body.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| {
        format!(
            "cannot reach the agent's admin endpoint at {addr}: {e} (is the agent running, and is `listen.admin` or --admin right?)"
        )
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(fail)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(fail)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("the admin endpoint at {addr} sent a response without headers"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("the admin endpoint at {addr} sent no status code"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
