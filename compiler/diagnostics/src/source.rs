//! Files, byte spans and line/column lookup.
//!
//! Spans are byte offsets into a file's text: the lexer produces them, every
//! AST node carries one, and they are turned into lines and columns only when
//! a diagnostic is rendered.

use std::ops::Range;

/// A half-open byte range `start..end` into one file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    pub fn contains(self, offset: usize) -> bool {
        self.start <= offset && offset < self.end
    }
}

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A 1-based line and column. `column` counts Unicode scalar values, the
/// way editors show it; `utf16_column` is 0-based in UTF-16 code units, the
/// way the Language Server Protocol counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
    pub utf16_column: usize,
}

/// One source file: its display name and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// Line and column of a byte offset; offsets past the end (or inside a
    /// UTF-8 sequence) are clamped to the nearest valid position.
    pub fn line_col(&self, offset: usize) -> LineCol {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_text = &self.text[self.line_starts[line_idx]..offset];
        LineCol {
            line: line_idx + 1,
            column: line_text.chars().count() + 1,
            utf16_column: line_text.encode_utf16().count(),
        }
    }

    /// The byte offset of a 0-based line and UTF-16 column, clamped to the
    /// line's end (the inverse of [`SourceFile::line_col`], for editors).
    pub fn offset_of_utf16(&self, line: usize, utf16_column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let end = self
            .line_starts
            .get(line + 1)
            .map_or(self.text.len(), |&e| e - 1);
        let mut units = 0;
        for (i, ch) in self.text[start..end].char_indices() {
            if units >= utf16_column {
                return start + i;
            }
            units += ch.len_utf16();
        }
        end
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

/// Every file a session has read, addressed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile::new(name, text));
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The file with this name, if it has been read.
    pub fn find(&self, name: &str) -> Option<FileId> {
        self.files().find(|(_, f)| f.name == name).map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars_and_utf16() {
        let f = SourceFile::new("a.dt", "ab\né😀x\n");
        assert_eq!(f.line_col(0).line, 1);
        let lc = f.line_col(3 + 2 + 4); // the `x` after é and 😀
        assert_eq!((lc.line, lc.column, lc.utf16_column), (2, 3, 3));
        assert_eq!(f.offset_of_utf16(1, 3), 9);
        // Clamped, never panics.
        assert_eq!(f.line_col(1000).line, 3);
        assert_eq!(f.line_col(4).column, 1); // inside `é`: clamped back to its start
    }
}
