//! Code actions: the fixes the checker suggests, as edits.
//!
//! - A diagnostic whose help is "did you mean `x`?" replaces the name under
//!   its primary label with `x`.
//! - `E0603` (a `@pii` or `@secret` field leaves the host) adds the shaping
//!   rule its help names, `redact Event.field with hash` (or `with drop` for
//!   a secret), at the end of the file.
//! - A `trigger` without a budget gets `limit 1 per 1h`, so it is bounded by
//!   what the program says rather than the policy's default.

use std::collections::HashMap;

use dtc_diagnostics::{Code, Diagnostic, Span};
use dtc_syntax::ast::*;
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, Uri, WorkspaceEdit,
};

use crate::world::{Analyzed, position, range};

pub fn actions(a: &Analyzed, uri: &Uri, start: usize, end: usize) -> Vec<CodeActionOrCommand> {
    let file = a.root();
    let mut out = Vec::new();
    let touches = |s: Span| s.start <= end && start <= s.end;
    let lsp_diags = crate::diagnostics::for_document(a, uri);
    let root_diags: Vec<&Diagnostic> = a.out.diagnostics_in(a.out.root).collect();
    for (d, lsp) in root_diags.iter().zip(&lsp_diags) {
        if !touches(d.primary.span) {
            continue;
        }
        if let Some(fix) = did_you_mean(d) {
            let written = file.text.get(d.primary.span.range()).unwrap_or("");
            let fix = if written.starts_with('@') || !fix.starts_with('@') {
                fix
            } else {
                fix.trim_start_matches('@')
            };
            let plain = !written.is_empty()
                && written
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.@".contains(c));
            if plain && written != fix {
                out.push(action(
                    format!("Replace `{written}` with `{fix}`"),
                    uri,
                    vec![TextEdit::new(range(file, d.primary.span), fix.to_string())],
                    Some(lsp.clone()),
                ));
            }
        }
        if d.code == Code::E0603
            && let Some(rule) = d.help.as_deref().and_then(|h| backticked(h, "redact "))
        {
            let at = position(file, file.text.len());
            let prefix = if file.text.is_empty() || file.text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            out.push(action(
                format!("Add `{rule}`"),
                uri,
                vec![TextEdit::new(
                    Range::new(at, at),
                    format!("{prefix}{rule}\n"),
                )],
                Some(lsp.clone()),
            ));
        }
    }
    if let Some(unit) = a.out.units.iter().find(|u| u.file == a.out.root) {
        let mut triggers = Vec::new();
        for item in &unit.ast.items {
            if touches(item.span()) {
                unbudgeted_in_item(item, &mut triggers);
            }
        }
        for (span, name) in triggers.into_iter().filter(|(s, _)| touches(*s)) {
            let at = position(file, span.end);
            out.push(action(
                format!("Add a budget to `trigger {name}`: `limit 1 per 1h`"),
                uri,
                vec![TextEdit::new(
                    Range::new(at, at),
                    " limit 1 per 1h".to_string(),
                )],
                None,
            ));
        }
    }
    out
}

// `WorkspaceEdit::changes` is keyed by `Uri`, whose parsed form clippy
// counts as interior mutability; the key is never mutated.
#[allow(clippy::mutable_key_type)]
fn action(
    title: String,
    uri: &Uri,
    edits: Vec<TextEdit>,
    diagnostic: Option<lsp_types::Diagnostic>,
) -> CodeActionOrCommand {
    let mut changes = HashMap::new();
    changes.insert(uri.clone(), edits);
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        is_preferred: Some(diagnostic.is_some()),
        diagnostics: diagnostic.map(|d| vec![d]),
        edit: Some(WorkspaceEdit {
            changes: Some(changes),
            ..WorkspaceEdit::default()
        }),
        ..CodeAction::default()
    })
}

/// The `x` of a help line "did you mean `x`?".
fn did_you_mean(d: &Diagnostic) -> Option<&str> {
    let help = d.help.as_deref()?;
    let rest = help.strip_prefix("did you mean `")?;
    rest.strip_suffix("`?")
}

/// The first backticked text in `s` that starts with `prefix`.
fn backticked<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .find(|part| part.starts_with(prefix))
}

/// Every `trigger` without a budget: its span and action name.
fn unbudgeted_in_item(item: &Item, out: &mut Vec<(Span, String)>) {
    match item {
        Item::Machine(m) => {
            for member in &m.members {
                match member {
                    MachineMember::On(t) => {
                        if let Some(b) = &t.body {
                            unbudgeted(b, out);
                        }
                    }
                    MachineMember::After(t) => {
                        if let Some(b) = &t.body {
                            unbudgeted(b, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        Item::Processor(p) => {
            for member in &p.members {
                match member {
                    ProcessorMember::Handler(h) => unbudgeted(&h.body, out),
                    ProcessorMember::Fn(f) => unbudgeted(&f.body, out),
                    _ => {}
                }
            }
        }
        Item::Fn(f) => unbudgeted(&f.body, out),
        _ => {}
    }
}

fn unbudgeted(block: &Block, out: &mut Vec<(Span, String)>) {
    for s in &block.stmts {
        match &s.kind {
            StmtKind::Trigger {
                action,
                budget: None,
                ..
            } => out.push((s.span, action.joined())),
            StmtKind::If {
                then, otherwise, ..
            }
            | StmtKind::IfLet {
                then, otherwise, ..
            } => {
                unbudgeted(then, out);
                if let Some(o) = otherwise {
                    unbudgeted(o, out);
                }
            }
            StmtKind::For { body, .. } => unbudgeted(body, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backticked_text() {
        assert_eq!(
            super::backticked("add `redact A.b with hash`, or `suppress A`", "redact "),
            Some("redact A.b with hash")
        );
        assert_eq!(super::backticked("nothing here", "redact "), None);
    }
}
