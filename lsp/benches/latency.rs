//! Latency of the language server on a generated 10,000-line document:
//! the check after opening and after a one-character edit, and hover,
//! completion, go to definition, semantic tokens and the outline on the
//! checked document.
//!
//! Run with `cargo bench -p dtc-lsp`. Requests go through the same
//! dispatch as over stdio (JSON parameters in, JSON results out), minus the
//! transport. The program is generated deterministically; `DTC_BENCH_LINES`
//! sets its size (default 10000) and `DTC_BENCH_RUNS` the number of timed
//! requests of each kind (default 200). Each line of the report gives the
//! median, the 95th percentile and the maximum.

use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use lsp_server::{Notification, Request, RequestId};
use lsp_types::Uri;
use serde_json::json;

/// One block of the generated program: about 50 lines, every kind of item.
fn block(i: usize) -> String {
    format!(
        r#"/// Block {i}: the service finished hashing a file.
event FileHashed{i} = "imagesvc.file_hashed.{i}" {{
    fileName: string @pii,
    bytes: int,
    took: duration,
}}

/// Block {i}: the service started hashing a file.
event HashStarted{i} {{
    fileName: string @pii,
}}

redact FileHashed{i}.fileName with hash
redact HashStarted{i}.fileName with hash

query slow_hashes_{i} =
    FileHashed{i}
    | where took > 2s && bytes > 1_000
    | summarize n = count(), slowest = max(took) every 1m
    | emit metric "imagesvc.slow_hashes_{i}"

machine hashing_{i} per event.thread_id max 1_000 {{
    state Idle
    state Hashing {{ started: timestamp }}

    on HashStarted{i} in Idle -> Hashing {{
        started = event.time
    }}
    on FileHashed{i} in Hashing when event.time - started > 5s -> Idle {{
        emit log SlowHash{i} {{ took: event.time - started }}
    }}
    on FileHashed{i} in Hashing -> Idle
    after 60s in Hashing -> Idle
}}

processor verify_{i} {{
    var slow: int = 0

    fn is_big(bytes: int) -> bool {{
        return bytes > 64MiB
    }}

    on FileHashed{i} when sample(1%) {{
        let size = event.bytes
        if is_big(size) && event.took > 1s {{
            slow += 1
            emit log BigAndSlow{i} {{ bytes: size, took: event.took }} limit 10 per 1m
        }}
    }}
}}

"#
    )
}

fn program(lines: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.lines().count() < lines {
        text.push_str(&block(i));
        i += 1;
    }
    text
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats(Vec<Duration>);

impl Stats {
    fn report(mut self, what: &str) {
        self.0.sort();
        let n = self.0.len().max(1);
        let at = |q: f64| {
            self.0
                .get(((n - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{what:<34} median {:>9.3} ms   p95 {:>9.3} ms   max {:>9.3} ms   ({} runs)",
            at(0.5).as_secs_f64() * 1e3,
            at(0.95).as_secs_f64() * 1e3,
            self.0.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            self.0.len()
        );
    }
}

fn main() {
    let lines = env("DTC_BENCH_LINES", 10_000);
    let runs = env("DTC_BENCH_RUNS", 200);
    let text = program(lines);
    let n_lines = text.lines().count();
    let (sender, _receiver) = crossbeam_channel::unbounded();
    let mut server = dtc_lsp::Server::new(sender);
    let uri = Uri::from_str("file:///bench/generated.dt").expect("uri");
    println!("dtc-lsp latency on a generated document of {n_lines} lines");

    // Opening: the first check of the whole document.
    let mut open = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        server.open(uri.clone(), text.clone(), 1);
        black_box(server.analysis(&uri).is_some());
        open.push(t.elapsed());
    }
    Stats(open).report("open + check");

    // Positions to ask about, spread over the file.
    let all: Vec<(usize, &str)> = text.lines().enumerate().collect();
    let pick = |needle: &str| -> Vec<(u32, u32)> {
        let hits: Vec<(u32, u32)> = all
            .iter()
            .filter_map(|(n, l)| l.find(needle).map(|c| (*n as u32, c as u32)))
            .collect();
        (0..runs).map(|k| hits[(k * 7919) % hits.len()]).collect()
    };
    let mut id = 0;
    let mut request = |server: &mut dtc_lsp::Server, method: &str, params: serde_json::Value| {
        id += 1;
        let t = Instant::now();
        let resp = server.request(Request::new(
            RequestId::from(id),
            method.to_string(),
            params,
        ));
        let took = t.elapsed();
        assert!(resp.response_result.is_ok(), "{method}: {resp:?}");
        black_box(resp);
        took
    };
    let at = |line: u32, character: u32| json!({ "textDocument": { "uri": uri.as_str() }, "position": { "line": line, "character": character } });

    let hover_field: Vec<Duration> = pick("event.bytes")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/hover", at(l, c + 8)))
        .collect();
    Stats(hover_field).report("hover: field (event.bytes)");
    let hover_event: Vec<Duration> = pick("redact FileHashed")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/hover", at(l, c + 9)))
        .collect();
    Stats(hover_event).report("hover: event name");
    let hover_expr: Vec<Duration> = pick("event.time - started >")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/hover", at(l, c + 11)))
        .collect();
    Stats(hover_expr).report("hover: expression type");
    let complete_field: Vec<Duration> = pick("let size = event.")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/completion", at(l, c + 17)))
        .collect();
    Stats(complete_field).report("completion: after `event.`");
    let complete_any: Vec<Duration> = pick("slow += 1")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/completion", at(l, c)))
        .collect();
    Stats(complete_any).report("completion: statement start");
    let definition: Vec<Duration> = pick("on FileHashed")
        .into_iter()
        .map(|(l, c)| request(&mut server, "textDocument/definition", at(l, c + 4)))
        .collect();
    Stats(definition).report("definition: event");

    let doc = json!({ "textDocument": { "uri": uri.as_str() } });
    let tokens: Vec<Duration> = (0..10)
        .map(|_| request(&mut server, "textDocument/semanticTokens/full", doc.clone()))
        .collect();
    Stats(tokens).report("semantic tokens (whole file)");
    let outline: Vec<Duration> = (0..10)
        .map(|_| request(&mut server, "textDocument/documentSymbol", doc.clone()))
        .collect();
    Stats(outline).report("document symbols (whole file)");

    // An edit, then a hover: the hover pays for the re-check.
    let mut edits = Vec::new();
    for k in 0..10u32 {
        let (line, col) = pick("var slow: int = 0")[k as usize];
        let change = json!({
            "textDocument": { "uri": uri.as_str(), "version": 2 + k },
            "contentChanges": [ { "range": {
                "start": { "line": line, "character": col + 16 },
                "end": { "line": line, "character": col + 17 } }, "text": "1" } ]
        });
        let t = Instant::now();
        server.notification(Notification::new(
            "textDocument/didChange".to_string(),
            change,
        ));
        black_box(server.analysis(&uri).is_some());
        edits.push(t.elapsed());
    }
    Stats(edits).report("edit + re-check");
}
