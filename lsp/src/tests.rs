//! Tests of the server through an in-memory connection: the protocol's
//! messages in, the server's answers out. The real-client tests (pytest-lsp
//! driving `dtc lsp` over stdio) are in `lsp/tests/python`.

use std::path::Path;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use lsp_types::Uri;
use serde_json::{Value, json};

struct Client {
    conn: Connection,
    server: Option<JoinHandle<()>>,
    next_id: i32,
    /// Notifications received while waiting for responses.
    notifications: Vec<Notification>,
}

impl Client {
    fn start() -> Client {
        let (server_conn, client_conn) = Connection::memory();
        let server = std::thread::spawn(move || {
            crate::run(&server_conn).expect("server runs");
        });
        let mut c = Client {
            conn: client_conn,
            server: Some(server),
            next_id: 0,
            notifications: Vec::new(),
        };
        let init = c.request("initialize", json!({ "capabilities": {} }));
        assert!(init["capabilities"]["hoverProvider"].as_bool() == Some(true));
        c.notify("initialized", json!({}));
        c
    }

    fn recv(&mut self) -> Message {
        self.conn
            .receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the server answers")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.conn
            .sender
            .send(Request::new(id.clone(), method.to_string(), params).into())
            .expect("send");
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => {
                    return match r.response_result {
                        Ok(v) => v,
                        Err(e) => json!({ "error": e.message, "code": e.code }),
                    };
                }
                Message::Notification(n) => self.notifications.push(n),
                _ => {}
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Notification::new(method.to_string(), params).into())
            .expect("send");
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            if let Some(i) = self.notifications.iter().position(|n| {
                n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri
            }) {
                let n = self.notifications.remove(i);
                return n.params["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
            match self.recv() {
                Message::Notification(n) => self.notifications.push(n),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "dt", "version": 1, "text": text } }),
        );
    }

    fn at(&mut self, method: &str, uri: &str, line: u32, character: u32) -> Value {
        let mut params = json!({ "textDocument": { "uri": uri },
                                 "position": { "line": line, "character": character } });
        if method == "textDocument/references" {
            params["context"] = json!({ "includeDeclaration": true });
        }
        self.request(method, params)
    }

    fn stop(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        if let Some(s) = self.server.take() {
            s.join().expect("server thread ends");
        }
    }
}

fn file_uri(path: &Path) -> String {
    crate::uri::from_path(path)
        .map(|u| u.as_str().to_string())
        .expect("uri")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dtc-lsp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const PROGRAM: &str = "import \"schema.dt\"

redact LogEnd.fileName with hash

machine slow per event.thread_id max 100 {
    state Idle
    state Busy { started: timestamp }

    on LogStart in Idle -> Busy {
        started = event.time
    }
    on LogEnd in Busy when event.time - started > 2s -> Idle {
        emit log SlowHash { took: event.time - started }
        trigger cpu_sample(for: 30s)
    }
}
";

const SCHEMA: &str = "/// Hashing started.
event LogStart {
    fileName: string @pii,
}

event LogEnd {
    /// The path.
    fileName: string @pii,
    hashValue: string,
}
";

#[test]
fn diagnostics_hover_completion_definition_references() {
    let dir = scratch("features");
    std::fs::write(dir.join("schema.dt"), SCHEMA).expect("write");
    let uri = file_uri(&dir.join("main.dt"));
    let mut c = Client::start();
    c.open(&uri, PROGRAM);
    let diags = c.diagnostics(&uri);
    // LogStart's fileName is never redacted.
    assert!(diags.iter().any(|d| d["code"] == "E0603"), "{diags:#?}");

    // Hover on `LogEnd` in the redact rule: the schema and its docs.
    let h = c.at("textDocument/hover", &uri, 2, 9);
    let text = h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("event LogEnd"), "{text}");
    assert!(text.contains("schema.dt"), "{text}");
    // Hover on the field `fileName`: its type, annotation and docs.
    let h = c.at("textDocument/hover", &uri, 2, 14);
    let text = h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("fileName: string @pii"), "{text}");
    assert!(text.contains("The path."), "{text}");
    // Hover on an action: signature, effect and risk.
    let h = c.at("textDocument/hover", &uri, 13, 17);
    let text = h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("cpu_sample(for: duration)"), "{text}");
    assert!(text.contains("diagnostic action"), "{text}");
    assert!(text.contains("privacy low"), "{text}");
    // Hover on an expression: its type.
    let h = c.at("textDocument/hover", &uri, 11, 34);
    let text = h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("timestamp") || text.contains("duration"),
        "{text}"
    );

    // Definition of `LogEnd` is in the schema file.
    let d = c.at("textDocument/definition", &uri, 2, 9);
    assert!(
        d["uri"].as_str().is_some_and(|u| u.ends_with("schema.dt")),
        "{d}"
    );
    assert_eq!(d["range"]["start"]["line"], 5);
    // Definition of a state.
    let d = c.at("textDocument/definition", &uri, 8, 28);
    assert_eq!(d["range"]["start"]["line"], 6, "{d}");
    // References of `started`: declaration, two reads and a write.
    let r = c.at("textDocument/references", &uri, 6, 19);
    assert_eq!(r.as_array().map(Vec::len), Some(4), "{r}");

    // Completion after `event.` in a transition: LogEnd's fields.
    let edited = PROGRAM.replace(
        "emit log SlowHash",
        "let x = event.\n        emit log SlowHash",
    );
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 },
                "contentChanges": [ { "text": edited } ] }),
    );
    let items = c.at("textDocument/completion", &uri, 12, 22);
    let labels: Vec<&str> = items
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["label"].as_str()).collect())
        .unwrap_or_default();
    assert!(labels.contains(&"hashValue"), "{labels:?}");
    assert!(labels.contains(&"time"), "{labels:?}");
    c.stop();
}

#[test]
fn code_actions_fix_what_the_checker_suggests() {
    let dir = scratch("actions");
    let uri = file_uri(&dir.join("a.dt"));
    let text = "event A {\n    x: string @pii,\n    count: int,\n}\n\nprocessor p {\n    on A {\n        trigger memory_dump()\n        emit log B { n: event.cuont }\n    }\n}\n";
    let mut c = Client::start();
    c.open(&uri, text);
    let diags = c.diagnostics(&uri);
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri },
                "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 11, "character": 0 } },
                "context": { "diagnostics": [] } }),
    );
    let titles: Vec<&str> = actions
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["title"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        titles.iter().any(|t| t.contains("limit 1 per 1h")),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("with `count`")),
        "{titles:?} {diags:#?}"
    );
    // A well-typed program gets the privacy analysis, and E0603 its fix.
    let uri2 = file_uri(&dir.join("b.dt"));
    c.open(
        &uri2,
        "event A {\n    x: string @pii,\n}\n\nquery q =\n    A\n    | summarize n = count() every 1m\n    | emit metric \"a.n\"",
    );
    let diags = c.diagnostics(&uri2);
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri2 },
                "range": { "start": { "line": 5, "character": 4 }, "end": { "line": 5, "character": 5 } },
                "context": { "diagnostics": [] } }),
    );
    let fix = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|i| i["title"] == "Add `redact A.x with hash`")
        })
        .unwrap_or_else(|| panic!("{actions:#} {diags:#?}"));
    let edit = &fix["edit"]["changes"][uri2.as_str()][0];
    assert_eq!(edit["newText"], "\nredact A.x with hash\n");
    assert_eq!(edit["range"]["start"]["line"], 7);
    c.stop();
}

#[test]
fn bad_input_never_crashes() {
    let mut c = Client::start();
    let uri = "file:///nowhere/garbage.dt";
    c.open(
        uri,
        "}}} event event ### \u{0} \"unterminated\n@@@ 99999999999999999999999 /*",
    );
    let diags = c.diagnostics(uri);
    assert!(!diags.is_empty());
    for method in [
        "textDocument/hover",
        "textDocument/completion",
        "textDocument/definition",
        "textDocument/references",
    ] {
        let v = c.at(method, uri, 10_000, 10_000);
        assert!(v.get("error").is_none(), "{method}: {v}");
        let v = c.at(method, "file:///not/open.dt", 0, 0);
        assert!(v.get("error").is_none(), "{method}: {v}");
    }
    for method in [
        "textDocument/semanticTokens/full",
        "textDocument/documentSymbol",
        "textDocument/formatting",
    ] {
        let v = c.request(method, json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 4, "insertSpaces": true } }));
        assert!(v.get("error").is_none(), "{method}: {v}");
    }
    // Parameters that do not parse: an error, not a crash.
    let v = c.request("textDocument/hover", json!({ "nonsense": true }));
    assert!(v.get("error").is_some());
    let v = c.request("no/such/method", json!({}));
    assert!(v.get("error").is_some());
    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    );
    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    );
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 9 }, "contentChanges": [ { "text": "x" } ] }),
    );
    let v = c.at("textDocument/hover", uri, 0, 0);
    assert_eq!(v, Value::Null);
    c.stop();
}

#[test]
fn formatting_replaces_the_whole_text() {
    let edits = crate::format_edits("event A{x:int}");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].new_text, "event A {\n    x: int,\n}\n");
    assert!(crate::format_edits("event A {\n    x: int,\n}\n").is_empty());
    assert!(crate::format_edits("event A {").is_empty());
    let _ = Uri::from_str("file:///x.dt");
}

fn dt_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            dt_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "dt") {
            out.push(path);
        }
    }
}

/// Every request at positions all over every sample and ui case (those with
/// errors too), and over truncated copies that end mid-construct: the
/// server answers each without an error and without panicking.
#[test]
fn every_request_everywhere_in_every_case_answers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    dt_files(&root.join("samples"), &mut files);
    dt_files(&root.join("tests/ui"), &mut files);
    files.sort();
    assert!(files.len() > 50);
    let (sender, receiver) = crossbeam_channel::unbounded();
    let mut server = crate::Server::new(sender);
    let mut id = 0;
    let mut n_requests = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let cut = text.len() * 2 / 3;
        let cut = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        for (k, variant) in [text.clone(), text[..cut].to_string()]
            .into_iter()
            .enumerate()
        {
            let uri = crate::uri::from_path(&path.with_extension(format!("{k}.dt"))).expect("uri");
            server.open(uri.clone(), variant.clone(), 1);
            let doc = json!({ "textDocument": { "uri": uri.as_str() } });
            let mut positions = Vec::new();
            for (line, l) in variant.lines().enumerate() {
                let n = l.encode_utf16().count() as u32;
                positions.extend([(line as u32, n / 2), (line as u32, n + 3)]);
            }
            positions.push((u32::MAX, u32::MAX));
            for (line, character) in positions {
                let pos = json!({ "line": line, "character": character });
                let at = json!({ "textDocument": { "uri": uri.as_str() }, "position": pos,
                                 "context": { "includeDeclaration": true } });
                let range = json!({ "textDocument": { "uri": uri.as_str() },
                                    "range": { "start": pos, "end": pos },
                                    "context": { "diagnostics": [] } });
                for (method, params) in [
                    ("textDocument/hover", &at),
                    ("textDocument/completion", &doc.clone()),
                    ("textDocument/definition", &at),
                    ("textDocument/references", &at),
                    ("textDocument/codeAction", &range),
                ] {
                    let params = if method == "textDocument/completion" {
                        let mut p = at.clone();
                        p["context"] = json!({ "triggerKind": 1 });
                        p
                    } else {
                        params.clone()
                    };
                    id += 1;
                    n_requests += 1;
                    let resp = server.request(Request::new(
                        RequestId::from(id),
                        method.to_string(),
                        params,
                    ));
                    assert!(
                        resp.response_result.is_ok(),
                        "{}: {method} at {line}:{character}: {resp:?}",
                        path.display()
                    );
                }
            }
            for method in [
                "textDocument/semanticTokens/full",
                "textDocument/documentSymbol",
                "textDocument/formatting",
            ] {
                let mut params = doc.clone();
                params["options"] = json!({ "tabSize": 4, "insertSpaces": true });
                id += 1;
                let resp = server.request(Request::new(
                    RequestId::from(id),
                    method.to_string(),
                    params,
                ));
                assert!(
                    resp.response_result.is_ok(),
                    "{}: {method}: {resp:?}",
                    path.display()
                );
            }
            server.notification(Notification::new(
                "textDocument/didClose".to_string(),
                json!({ "textDocument": { "uri": uri.as_str() } }),
            ));
            while receiver.try_recv().is_ok() {}
        }
    }
    assert!(n_requests > 10_000, "{n_requests}");
}

/// Labels offered at the end of `before`, in a document that is `before`
/// followed by `after`.
fn completions(before: &str, after: &str) -> Vec<String> {
    let text = format!("{before}{after}");
    let (sender, _receiver) = crossbeam_channel::unbounded();
    let mut server = crate::Server::new(sender);
    let uri = Uri::from_str("file:///completion/test.dt").expect("uri");
    server.open(uri.clone(), text, 1);
    let line = before.matches('\n').count() as u32;
    let character = before
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .encode_utf16()
        .count() as u32;
    let resp = server.request(Request::new(
        RequestId::from(1),
        "textDocument/completion".to_string(),
        json!({ "textDocument": { "uri": uri.as_str() },
                "position": { "line": line, "character": character } }),
    ));
    let value = resp.response_result.expect("completion answers");
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["label"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn completion_follows_the_context() {
    let schema = "event A {\n    x: int,\n    name: string @pii,\n}\n\n";
    let machine =
        format!("{schema}machine m {{\n    state Idle\n    state Busy\n    on A in Idle -> ");
    let got = completions(&machine, "Busy\n}\n");
    assert!(
        got.contains(&"Busy".to_string()) && got.contains(&"Idle".to_string()),
        "{got:?}"
    );
    assert!(!got.contains(&"if".to_string()), "{got:?}");

    let got = completions(&format!("{schema}event B {{\n    y: int @"), "\n}\n");
    assert!(
        got.contains(&"pii".to_string()) && got.contains(&"attr".to_string()),
        "{got:?}"
    );

    let got = completions(&format!("{schema}redact A.name with "), "\n");
    assert_eq!(got, ["hash", "mask", "drop"]);

    let got = completions(&format!("{schema}query q =\n    A\n    | where "), "\n");
    assert!(
        got.contains(&"x".to_string()),
        "bare fields in a query: {got:?}"
    );
    assert!(got.contains(&"len".to_string()), "{got:?}");

    let got = completions(
        &format!("{schema}query q =\n    A\n    | summarize n = "),
        "\n",
    );
    assert!(
        got.contains(&"count".to_string()),
        "aggregates in summarize: {got:?}"
    );

    let got = completions(
        &format!("{schema}processor p {{\n    on A {{\n        let v = file."),
        "\n    }\n}\n",
    );
    assert!(
        got.contains(&"sha256".to_string()) && got.contains(&"exists".to_string()),
        "{got:?}"
    );

    let got = completions(&format!("{schema}suppress "), "\n");
    assert_eq!(got, ["A"]);

    let got = completions(
        &format!("{schema}processor p {{\n    on A {{\n        let v = A."),
        "\n    }\n}\n",
    );
    assert!(got.contains(&"name".to_string()), "{got:?}");
}

#[test]
fn completion_after_a_finished_item_is_top_level() {
    let src = "event A {\n    x: int,\n}\nmachine m {\n    state Idle\n}\nlimit ";
    let got = completions(src, "\n");
    assert_eq!(got, ["A"], "{got:?}");
}

#[test]
fn errors_in_an_imported_file_are_published_for_it() {
    let dir = scratch("imports");
    std::fs::write(dir.join("schema.dt"), "event A {\n    x: \n}\n").expect("write");
    let uri = file_uri(&dir.join("main.dt"));
    let schema = file_uri(&dir.join("schema.dt"));
    let mut c = Client::start();
    c.open(&uri, "import \"schema.dt\"\n");
    let own = c.diagnostics(&uri);
    assert!(own.is_empty(), "{own:#?}");
    let theirs = c.diagnostics(&schema);
    assert_eq!(theirs.len(), 1, "{theirs:#?}");
    assert_eq!(theirs[0]["code"], "E0104");
    // Closing the importing document clears them.
    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    );
    let _ = c.diagnostics(&uri);
    assert!(c.diagnostics(&schema).is_empty());
    c.stop();
}
