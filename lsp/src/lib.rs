//! `dtc lsp`: the language server for dt programs.
//!
//! This is the only crate that knows the Language Server Protocol. It is
//! built on `lsp-server` (the synchronous transport rust-analyzer uses) and
//! `lsp-types`, and maps the driver's results to the protocol: diagnostics
//! ([`diagnostics`]), hover ([`hover`]), completion ([`completion`]), go to
//! definition and find references (through the [`index`]), the outline and
//! semantic tokens ([`symbols`]), formatting (`dtc-fmt`) and quick fixes
//! ([`actions`]).
//!
//! The server is one loop on one thread. Edits are cheap: a change updates
//! the document's text and marks it (and the open documents that import it)
//! stale; stale documents are re-checked when the loop has no message
//! waiting, so a burst of keystrokes costs one check, or at once when a
//! request needs the document. Each check is of one document and what it
//! imports, with open buffers shadowing the disk ([`world`]).
//!
//! The server must not die on bad input: positions are clamped, requests
//! for documents that are not open get empty answers, a document closed
//! twice is closed once, parameters that do not parse get an error
//! response, and a panic in a handler, should one happen, becomes an
//! internal-error response rather than the end of the process.

pub mod actions;
pub mod completion;
pub mod diagnostics;
pub mod hover;
pub mod index;
pub mod symbols;
pub mod uri;
pub mod world;

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use dtc_driver::normalize;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    References, Request as _, SemanticTokensFullRequest,
};
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, CompletionResponse, DocumentSymbolResponse,
    GotoDefinitionResponse, HoverProviderCapability, Location, OneOf, Position,
    PublishDiagnosticsParams, Range, SemanticTokens, SemanticTokensFullOptions,
    SemanticTokensOptions, SemanticTokensResult, SemanticTokensServerCapabilities,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit,
    Uri,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::index::Target;
use crate::world::{Analyzed, Document, OverlayFs};

type BoxError = Box<dyn Error + Send + Sync>;

/// What the server can do, as announced in `initialize`.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "@".into()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: symbols::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                ..SemanticTokensOptions::default()
            },
        )),
        ..ServerCapabilities::default()
    }
}

/// Serves the protocol on stdin and stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), BoxError> {
    let (connection, io_threads) = Connection::stdio();
    run(&connection)?;
    drop(connection);
    io_threads.join()?;
    Ok(())
}

/// Serves the protocol on a connection (stdio, or in memory for tests).
pub fn run(connection: &Connection) -> Result<(), BoxError> {
    let init = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": ServerInfo {
            name: "dtc".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        },
    });
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(id, init)?;
    let mut server = Server::new(connection.sender.clone());
    let mut shutting_down = false;
    while let Ok(msg) = connection.receiver.recv() {
        match msg {
            Message::Request(req) => {
                let resp = if shutting_down {
                    Response::new_err(
                        req.id,
                        ErrorCode::InvalidRequest as i32,
                        "the server is shutting down".to_string(),
                    )
                } else if req.method == "shutdown" {
                    shutting_down = true;
                    Response::new_ok(req.id, ())
                } else {
                    let id = req.id.clone();
                    match catch_unwind(AssertUnwindSafe(|| server.request(req))) {
                        Ok(resp) => resp,
                        Err(_) => Response::new_err(
                            id,
                            ErrorCode::InternalError as i32,
                            "internal error in the dt language server".to_string(),
                        ),
                    }
                };
                connection.sender.send(resp.into())?;
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    return Ok(());
                }
                if catch_unwind(AssertUnwindSafe(|| server.notification(n))).is_err() {
                    eprintln!("dtc lsp: internal error while handling a notification");
                }
            }
            Message::Response(_) => {}
        }
        if connection.receiver.is_empty()
            && catch_unwind(AssertUnwindSafe(|| server.idle())).is_err()
        {
            eprintln!("dtc lsp: internal error while checking");
        }
    }
    Ok(())
}

/// The server's state: the open documents.
pub struct Server {
    sender: Sender<Message>,
    docs: HashMap<Uri, Document>,
    fs: OverlayFs,
    /// Documents whose analysis is out of date.
    stale: HashSet<Uri>,
    /// For each open document, the files it imports (not open themselves)
    /// that it published diagnostics for, to clear them when they go.
    import_diagnostics: HashMap<Uri, HashSet<Uri>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("docs", &self.docs.len())
            .field("stale", &self.stale.len())
            .finish()
    }
}

fn params<P: DeserializeOwned>(value: Value) -> Result<P, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid parameters: {e}"))
}

impl Server {
    pub fn new(sender: Sender<Message>) -> Server {
        Server {
            sender,
            docs: HashMap::new(),
            fs: OverlayFs::default(),
            stale: HashSet::new(),
            import_diagnostics: HashMap::new(),
        }
    }

    /// Opens a document (also used by benchmarks and tests).
    pub fn open(&mut self, uri: Uri, text: String, version: i32) {
        let path = normalize(&uri::to_path(&uri));
        self.fs.open.insert(path.clone(), text.clone());
        self.docs.insert(
            uri.clone(),
            Document {
                uri: uri.clone(),
                text,
                version,
                path: path.clone(),
                analysis: None,
            },
        );
        self.stale.insert(uri);
        self.mark_dependents(&path);
    }

    /// The up-to-date analysis of an open document, checking it if stale.
    pub fn analysis(&mut self, uri: &Uri) -> Option<&Analyzed> {
        if self.stale.contains(uri) {
            self.check(uri);
        }
        self.docs.get(uri)?.analysis.as_ref()
    }

    // The sets of `Uri`s: lsp-types' `Uri` hashes by its text, though
    // clippy counts its parsed form as interior mutability.
    #[allow(clippy::mutable_key_type)]
    fn check(&mut self, uri: &Uri) {
        self.stale.remove(uri);
        let Some(doc) = self.docs.get_mut(uri) else {
            return;
        };
        let analyzed = world::analyze(&self.fs, &doc.path, &doc.text);
        let diagnostics = diagnostics::for_document(&analyzed, uri);
        let version = doc.version;
        // Imported files that are not open: their diagnostics from this check.
        let mut imports = Vec::new();
        for (i, path) in analyzed.out.paths.iter().enumerate().skip(1) {
            let file = dtc_diagnostics::FileId(i as u32);
            let Some(path) = path else { continue };
            if i >= analyzed.out.units.len() || self.fs.open.contains_key(&normalize(path)) {
                continue;
            }
            if let Some(import_uri) = analyzed.uri_of(uri, file) {
                imports.push((import_uri, diagnostics::for_file(&analyzed, uri, file)));
            }
        }
        doc.analysis = Some(analyzed);
        self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
            uri: uri.clone(),
            diagnostics,
            version: Some(version),
        });
        let before = self.import_diagnostics.remove(uri).unwrap_or_default();
        let mut now = HashSet::new();
        for (import_uri, diags) in imports {
            if diags.is_empty() && !before.contains(&import_uri) {
                continue;
            }
            if !diags.is_empty() {
                now.insert(import_uri.clone());
            }
            self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                uri: import_uri,
                diagnostics: diags,
                version: None,
            });
        }
        for gone in before.difference(&now) {
            if !self.docs.contains_key(gone) {
                self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                    uri: gone.clone(),
                    diagnostics: Vec::new(),
                    version: None,
                });
            }
        }
        self.import_diagnostics.insert(uri.clone(), now);
    }

    /// Marks stale every open document whose last check read `path`.
    fn mark_dependents(&mut self, path: &PathBuf) {
        for (uri, doc) in &self.docs {
            if &doc.path != path
                && doc
                    .analysis
                    .as_ref()
                    .is_some_and(|a| a.read.iter().any(|p| p == path))
            {
                self.stale.insert(uri.clone());
            }
        }
    }

    /// Re-checks stale documents (when no message is waiting).
    pub fn idle(&mut self) {
        let stale: Vec<Uri> = self.stale.iter().cloned().collect();
        for uri in stale {
            self.check(&uri);
        }
    }

    fn notify<N: lsp_types::notification::Notification>(&self, params: N::Params) {
        let _ = self
            .sender
            .send(Notification::new(N::METHOD.to_string(), params).into());
    }

    /// Handles one notification (document open, change, close).
    pub fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = params::<lsp_types::DidOpenTextDocumentParams>(n.params) {
                    let d = p.text_document;
                    self.open(d.uri, d.text, d.version);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = params::<lsp_types::DidChangeTextDocumentParams>(n.params) {
                    let uri = p.text_document.uri;
                    let Some(doc) = self.docs.get_mut(&uri) else {
                        eprintln!("dtc lsp: change to a document that is not open");
                        return;
                    };
                    for change in p.content_changes {
                        world::apply_change(&mut doc.text, change.range, &change.text);
                    }
                    doc.version = p.text_document.version;
                    let path = doc.path.clone();
                    self.fs.open.insert(path.clone(), doc.text.clone());
                    self.stale.insert(uri);
                    self.mark_dependents(&path);
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = params::<lsp_types::DidCloseTextDocumentParams>(n.params) {
                    let uri = p.text_document.uri;
                    if let Some(doc) = self.docs.remove(&uri) {
                        self.fs.open.remove(&doc.path);
                        self.stale.remove(&uri);
                        for import in self.import_diagnostics.remove(&uri).unwrap_or_default() {
                            if !self.docs.contains_key(&import) {
                                self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                                    uri: import,
                                    diagnostics: Vec::new(),
                                    version: None,
                                });
                            }
                        }
                        self.mark_dependents(&doc.path);
                        self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                            uri,
                            diagnostics: Vec::new(),
                            version: None,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// Answers one request.
    pub fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        match self.dispatch(req) {
            Ok(value) => Response {
                id,
                response_result: Ok(value),
            },
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    fn dispatch(&mut self, req: Request) -> Result<Value, (ErrorCode, String)> {
        let invalid = |e: String| (ErrorCode::InvalidParams, e);
        let json = |v: Result<Value, serde_json::Error>| {
            v.map_err(|e| (ErrorCode::InternalError, e.to_string()))
        };
        match req.method.as_str() {
            HoverRequest::METHOD => {
                let p: lsp_types::HoverParams = params(req.params).map_err(invalid)?;
                let tdp = p.text_document_position_params;
                let Some(a) = self.analysis(&tdp.text_document.uri) else {
                    return Ok(Value::Null);
                };
                let offset = world::offset(a.root(), tdp.position);
                json(serde_json::to_value(hover::hover(a, offset)))
            }
            Completion::METHOD => {
                let p: lsp_types::CompletionParams = params(req.params).map_err(invalid)?;
                let tdp = p.text_document_position;
                let Some(a) = self.analysis(&tdp.text_document.uri) else {
                    return Ok(Value::Null);
                };
                let offset = world::offset(a.root(), tdp.position);
                let items = completion::complete(a, &a.root().text, offset);
                json(serde_json::to_value(CompletionResponse::Array(items)))
            }
            GotoDefinition::METHOD => {
                let p: lsp_types::GotoDefinitionParams = params(req.params).map_err(invalid)?;
                let tdp = p.text_document_position_params;
                let uri = tdp.text_document.uri;
                let Some(a) = self.analysis(&uri) else {
                    return Ok(Value::Null);
                };
                let offset = world::offset(a.root(), tdp.position);
                let Some(occ) = a.index.at(a.out.root, offset) else {
                    return Ok(Value::Null);
                };
                let Target::Symbol(id) = occ.target else {
                    return Ok(Value::Null);
                };
                let s = &a.index.symbols[id];
                let Some(target) = a.uri_of(&uri, s.file) else {
                    return Ok(Value::Null);
                };
                let range = world::range(a.out.sources.get(s.file), s.span);
                json(serde_json::to_value(GotoDefinitionResponse::Scalar(
                    Location::new(target, range),
                )))
            }
            References::METHOD => {
                let p: lsp_types::ReferenceParams = params(req.params).map_err(invalid)?;
                let tdp = p.text_document_position;
                let locations = self.references(
                    &tdp.text_document.uri,
                    tdp.position,
                    p.context.include_declaration,
                );
                json(serde_json::to_value(locations))
            }
            DocumentSymbolRequest::METHOD => {
                let p: lsp_types::DocumentSymbolParams = params(req.params).map_err(invalid)?;
                let Some(a) = self.analysis(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                json(serde_json::to_value(DocumentSymbolResponse::Nested(
                    symbols::outline(a),
                )))
            }
            SemanticTokensFullRequest::METHOD => {
                let p: lsp_types::SemanticTokensParams = params(req.params).map_err(invalid)?;
                let Some(a) = self.analysis(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                json(serde_json::to_value(SemanticTokensResult::Tokens(
                    SemanticTokens {
                        result_id: None,
                        data: symbols::semantic_tokens(a),
                    },
                )))
            }
            Formatting::METHOD => {
                let p: lsp_types::DocumentFormattingParams = params(req.params).map_err(invalid)?;
                let Some(doc) = self.docs.get(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                json(serde_json::to_value(format_edits(&doc.text)))
            }
            CodeActionRequest::METHOD => {
                let p: lsp_types::CodeActionParams = params(req.params).map_err(invalid)?;
                let uri = p.text_document.uri;
                let Some(a) = self.analysis(&uri) else {
                    return Ok(Value::Null);
                };
                let start = world::offset(a.root(), p.range.start);
                let end = world::offset(a.root(), p.range.end).max(start);
                json(serde_json::to_value(actions::actions(a, &uri, start, end)))
            }
            other => Err((
                ErrorCode::MethodNotFound,
                format!("the dt language server does not handle `{other}`"),
            )),
        }
    }

    /// Every place the symbol at a position is named, in this document's
    /// check and in the other open documents' (which may import the same
    /// schema file).
    fn references(&mut self, uri: &Uri, pos: Position, include_declaration: bool) -> Vec<Location> {
        let Some(doc_path) = self.docs.get(uri).map(|d| d.path.clone()) else {
            return Vec::new();
        };
        let Some(a) = self.analysis(uri) else {
            return Vec::new();
        };
        let offset = world::offset(a.root(), pos);
        let Some(occ) = a.index.at(a.out.root, offset) else {
            return Vec::new();
        };
        let Target::Symbol(id) = occ.target else {
            return Vec::new();
        };
        let s = &a.index.symbols[id];
        let key = (file_path(a, &doc_path, s.file), s.span, s.name.clone());
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (doc_uri, doc) in &self.docs {
            let Some(a) = &doc.analysis else { continue };
            let Some(id) = a
                .index
                .symbols
                .iter()
                .position(|t| (file_path(a, &doc.path, t.file), t.span, t.name.clone()) == key)
            else {
                continue;
            };
            for o in a.index.references(Target::Symbol(id)) {
                if o.def && !include_declaration {
                    continue;
                }
                let Some(u) = a.uri_of(doc_uri, o.file) else {
                    continue;
                };
                let path = file_path(a, &doc.path, o.file);
                if seen.insert((path, o.span)) {
                    let range = world::range(a.out.sources.get(o.file), o.span);
                    out.push(Location::new(u, range));
                }
            }
        }
        out
    }
}

/// The path of a file of a check: the document's own for the root.
fn file_path(a: &Analyzed, doc_path: &Path, file: dtc_diagnostics::FileId) -> Option<PathBuf> {
    if file == a.out.root {
        return Some(doc_path.to_path_buf());
    }
    a.out
        .paths
        .get(file.0 as usize)
        .cloned()
        .flatten()
        .map(|p| normalize(&p))
}

/// The edits that format a document: one that replaces the whole text, or
/// none when it is formatted already or has syntax errors.
pub fn format_edits(text: &str) -> Vec<TextEdit> {
    match dtc_fmt::format(text) {
        Ok(formatted) if formatted != text => {
            let file = dtc_diagnostics::SourceFile::new("", text);
            let end = world::position(&file, text.len());
            vec![TextEdit::new(
                Range::new(Position::new(0, 0), end),
                formatted,
            )]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
