//! The canonical formatter of dt programs, used by `dtc fmt` and the
//! language server.
//!
//! Three properties hold for every file it accepts, and the tests check them
//! on every sample and ui case:
//!
//! - **It keeps every comment** (`//`, `///` and `/* */`), in the same
//!   place relative to the code.
//! - **It is idempotent:** formatting formatted text changes nothing.
//! - **It changes no meaning:** the output parses to the same tree as the
//!   input, spans aside.
//!
//! The AST has no comments, so the formatter does not print the tree: it
//! prints the file's own tokens ([`trivia`] re-reads the comments between
//! them) and uses the tree only to decide where lines break and how deep
//! they are indented ([`layout`]). Only whitespace changes, plus a trailing
//! comma at the end of a list printed one element per line (and none in a
//! list printed on one line), which the grammar treats the same. The layout
//! is fixed: one item, field, member, statement and query stage per line,
//! four spaces per level, a blank line around items that span several
//! lines, at most one blank line where the source had some. Lines are not
//! broken to fit a width, except that brace lists which may sit on one line
//! (`state S { a: int }`, `emit log L { a: 1 }`, `import { A } from ...`)
//! do so only when the line stays within [`Options::max_width`].
//!
//! A file with syntax errors is not formatted: there is no reliable tree to
//! lay it out by, and [`format`] returns the errors instead.

pub mod layout;
mod print;
pub mod trivia;

use dtc_diagnostics::{Diagnostic, FileId, Severity};

/// Formatting settings. The defaults are the canonical style; nothing in
/// the toolchain changes them.
#[derive(Debug, Clone)]
pub struct Options {
    /// The width a brace list must fit in to stay on one line.
    pub max_width: usize,
    /// Spaces per indentation level.
    pub indent: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_width: 100,
            indent: 4,
        }
    }
}

/// The file has syntax errors, so it was not formatted.
#[derive(Debug, Clone)]
pub struct SyntaxErrors {
    /// The syntax errors, in file [`FileId`]`(0)` unless the caller gave
    /// another to [`format_file`].
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for SyntaxErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.diagnostics.len();
        write!(
            f,
            "the file has {n} syntax error{}; fix {} before formatting",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        )
    }
}

impl std::error::Error for SyntaxErrors {}

/// Formats a whole file in the canonical style.
pub fn format(source: &str) -> Result<String, SyntaxErrors> {
    format_file(FileId(0), source, &Options::default())
}

/// Formats a whole file; syntax errors are reported in `file`.
pub fn format_file(file: FileId, source: &str, options: &Options) -> Result<String, SyntaxErrors> {
    // A byte order mark is kept, and is not part of the text.
    let (bom, text) = match source.strip_prefix('\u{FEFF}') {
        Some(rest) => ("\u{FEFF}", rest),
        None => ("", source),
    };
    let parsed = dtc_syntax::parse(file, text);
    let errors: Vec<Diagnostic> = parsed
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(SyntaxErrors {
            diagnostics: errors,
        });
    }
    let trivia = trivia::scan(text);
    let plan = layout::plan(&trivia.tokens, &parsed.ast);
    let mut out = print::print(&trivia, &plan, options);
    out.insert_str(0, bom);
    Ok(out)
}

#[cfg(test)]
mod tests;
