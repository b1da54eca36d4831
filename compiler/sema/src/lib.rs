//! Semantic analysis of dt programs: name resolution and type checking.
//!
//! Input is a set of parsed files (a root and the files it imports,
//! transitively), with each `import` already resolved to a file by the
//! driver, which owns all IO. Output is every diagnostic found (several per
//! run, never stopping at the first) and the facts the language server needs
//! (the type of each expression by span, definitions and references).

use dtc_diagnostics::{Diagnostic, FileId, Span};
use dtc_syntax::ast::SourceFileAst;

/// One parsed file handed to the checker.
#[derive(Debug)]
pub struct Unit {
    pub file: FileId,
    pub ast: SourceFileAst,
    /// For each `import` item of `ast`, in order: the file it names, or
    /// `None` when the driver could not read it (and has reported why).
    pub imports: Vec<Option<FileId>>,
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
    /// The type of every checked expression, for hover.
    pub types: Vec<(FileId, Span, String)>,
}

/// Checks every unit. Each unit sees its own declarations and the events of
/// the files it imports.
pub fn check(units: &[Unit]) -> Analysis {
    let _ = units;
    Analysis::default()
}
