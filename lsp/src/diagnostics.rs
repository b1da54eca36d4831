//! The checker's diagnostics as LSP diagnostics.
//!
//! The first line of the message is exactly what `dtc check` prints, and
//! the code is the same stable code; notes and the help line follow, as in
//! the terminal. The primary label's text and every secondary label become
//! related information, each at its own place (secondary labels may be in an
//! imported file). The diagnostics of an imported file that is not open are
//! published for that file too, as `dtc check` prints them; an open file's
//! own check speaks for it.

use dtc_diagnostics::{Diagnostic, FileId, Severity};
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Uri};

use crate::world::{Analyzed, range};

/// The diagnostics of a document's own file.
pub fn for_document(analyzed: &Analyzed, uri: &Uri) -> Vec<lsp_types::Diagnostic> {
    for_file(analyzed, uri, analyzed.out.root)
}

/// The diagnostics whose primary label is in one file of the check (the
/// document's, or one it imports); `uri` is the document's.
pub fn for_file(analyzed: &Analyzed, uri: &Uri, file: FileId) -> Vec<lsp_types::Diagnostic> {
    analyzed
        .out
        .diagnostics_in(file)
        .map(|d| convert(analyzed, uri, d))
        .collect()
}

fn convert(analyzed: &Analyzed, uri: &Uri, d: &Diagnostic) -> lsp_types::Diagnostic {
    let sources = &analyzed.out.sources;
    let file = sources.get(d.primary.file);
    let mut message = d.message.clone();
    for note in &d.notes {
        message.push_str(&format!("\nnote: {note}"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let mut related = Vec::new();
    for label in std::iter::once(&d.primary).chain(&d.secondary) {
        if label.message.is_empty() || (label.file.0 as usize) >= analyzed.out.paths.len() {
            continue;
        }
        let Some(label_uri) = analyzed.uri_of(uri, label.file) else {
            continue;
        };
        let label_file = sources.get(label.file);
        related.push(DiagnosticRelatedInformation {
            location: Location::new(label_uri, range(label_file, label.span)),
            message: label.message.clone(),
        });
    }
    lsp_types::Diagnostic {
        range: range(file, d.primary.span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description: None,
        source: Some("dtc".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}
