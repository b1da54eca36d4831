//! The diagnostic model shared by every pass, the registry of stable codes,
//! and the two renderers (ariadne for people, JSON for tools).
//!
//! Passes never print: they return [`Diagnostic`]s, and only this crate turns
//! them into text. A diagnostic is plain data (a code, a severity, a message,
//! a primary label on the narrowest span that shows the problem, secondary
//! labels, notes and a help line saying how to fix it) so the CLI, the tests
//! and the language server all see exactly the same thing.

mod codes;
mod render;
mod source;

pub use codes::Code;
pub use render::{render_human, render_json, to_json_value};
pub use source::{FileId, LineCol, SourceFile, SourceMap, Span};

/// How bad a diagnostic is. Errors make `dtc check` fail; warnings are
/// reported but only fail the run under `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span in a file with a message attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
}

impl Label {
    pub fn new(file: FileId, span: Span, message: impl Into<String>) -> Label {
        Label {
            file,
            span,
            message: message.into(),
        }
    }
}

/// One finding of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic whose severity is the code's default.
    pub fn new(code: Code, message: impl Into<String>, primary: Label) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.default_severity(),
            message: message.into(),
            primary,
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, label: Label) -> Diagnostic {
        self.secondary.push(label);
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics into the order people read them in: by file, then by
/// position, errors before warnings at the same place. Stable, so passes that
/// report at the same span keep their order.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.primary.file, d.primary.span.start, d.severity));
}
