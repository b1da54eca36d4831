//! Open documents, the file system the checker sees, and the result of
//! checking each document.
//!
//! Open buffers shadow the disk ([`OverlayFs`]), so a schema file being
//! edited is imported as it is in the editor, not as it was saved. Each
//! document is checked on its own, as the root of a session (the way
//! `dtc check FILE` does it), and the result ([`Analyzed`]) is kept until
//! the document or a file it imports changes: an edit re-checks only the
//! edited document at once, and marks the documents that import it stale,
//! to be re-checked when next asked about (or when the server is idle).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use dtc_diagnostics::{FileId, SourceFile, Span};
use dtc_driver::{CheckOutput, FileSystem, RealFs, Session, normalize};
use lsp_types::{Position, Range, Uri};

use crate::index::Index;
use crate::uri;

/// An open document.
#[derive(Debug)]
pub struct Document {
    pub uri: Uri,
    pub text: String,
    pub version: i32,
    /// The path it stands for: its file on disk, or a made-up one for a
    /// buffer that is not a file.
    pub path: PathBuf,
    pub analysis: Option<Analyzed>,
}

/// One check of one document.
#[derive(Debug)]
pub struct Analyzed {
    pub out: CheckOutput,
    pub index: Index,
    /// The paths of every file the check read (the root's too), to find the
    /// documents an edit makes stale.
    pub read: Vec<PathBuf>,
}

impl Analyzed {
    pub fn root(&self) -> &SourceFile {
        self.out.sources.get(self.out.root)
    }
}

/// The open documents over the disk.
#[derive(Debug, Default)]
pub struct OverlayFs {
    /// Open documents' texts by normalized path.
    pub open: HashMap<PathBuf, String>,
}

impl FileSystem for OverlayFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let key = normalize(path);
        if let Some(text) = self.open.get(&key) {
            return Ok(text.clone().into_bytes());
        }
        if let Ok(canonical) = std::fs::canonicalize(path)
            && let Some(text) = self.open.get(&canonical)
        {
            return Ok(text.clone().into_bytes());
        }
        RealFs.read(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match RealFs.canonicalize(path) {
            Ok(p) => Ok(p),
            Err(e) => {
                let key = normalize(path);
                if self.open.contains_key(&key) {
                    Ok(key)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Checks a document's text as the root of a session.
pub fn analyze(fs: &OverlayFs, path: &Path, text: &str) -> Analyzed {
    let session = Session::new(fs);
    let out = session.check_source(&path.to_string_lossy(), text);
    let index = Index::build(&out);
    let mut read: Vec<PathBuf> = out.paths.iter().flatten().map(|p| normalize(p)).collect();
    read.push(normalize(path));
    Analyzed { out, index, read }
}

/// The LSP position of a byte offset in a file.
pub fn position(file: &SourceFile, offset: usize) -> Position {
    let lc = file.line_col(offset);
    Position::new(
        (lc.line - 1).min(u32::MAX as usize) as u32,
        lc.utf16_column.min(u32::MAX as usize) as u32,
    )
}

pub fn range(file: &SourceFile, span: Span) -> Range {
    Range::new(position(file, span.start), position(file, span.end))
}

/// The byte offset of an LSP position, clamped into the file.
pub fn offset(file: &SourceFile, pos: Position) -> usize {
    file.offset_of_utf16(pos.line as usize, pos.character as usize)
}

impl Analyzed {
    /// The URI of a file of this check: the document's own for the root,
    /// a `file:` URI for an import.
    pub fn uri_of(&self, doc_uri: &Uri, file: FileId) -> Option<Uri> {
        if file == self.out.root {
            return Some(doc_uri.clone());
        }
        let path = self.out.paths.get(file.0 as usize)?.as_ref()?;
        uri::from_path(path)
    }
}

/// Applies one change of `textDocument/didChange` to a text: a range edit,
/// or the whole text when there is no range.
pub fn apply_change(text: &mut String, range: Option<Range>, new_text: &str) {
    let Some(range) = range else {
        *text = new_text.to_string();
        return;
    };
    let file = SourceFile::new("", std::mem::take(text));
    let start = offset(&file, range.start);
    let end = offset(&file, range.end).max(start);
    let mut t = file.text;
    t.replace_range(start..end, new_text);
    *text = t;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_use_utf16_positions_and_clamp() {
        let mut text = "a😀b\nxyz\n".to_string();
        apply_change(
            &mut text,
            Some(Range::new(Position::new(0, 3), Position::new(0, 4))),
            "B",
        );
        assert_eq!(text, "a😀B\nxyz\n");
        apply_change(
            &mut text,
            Some(Range::new(Position::new(7, 0), Position::new(9, 9))),
            "!",
        );
        assert_eq!(text, "a😀B\nxyz\n!");
        apply_change(
            &mut text,
            Some(Range::new(Position::new(1, 2), Position::new(0, 0))),
            "",
        );
        assert_eq!(text, "a😀B\nxyz\n!");
        apply_change(&mut text, None, "new");
        assert_eq!(text, "new");
    }
}
