//! Tokens with the comments and line breaks between them.
//!
//! The lexer of `dtc-syntax` drops comments (it keeps only doc comment text,
//! keyed by the token each documents), and the AST has none. The formatter
//! needs them all, in place, so it re-reads the gaps between the lexer's
//! tokens: in a file without lexical errors a gap holds only whitespace and
//! comments (`//`, `///` and `/* */`), which a few lines of scanning can
//! tell apart. Nothing here changes the lexer.

use dtc_syntax::lexer::Token;

/// A token with its source text.
#[derive(Debug, Clone)]
pub struct Tok<'s> {
    pub token: Token,
    pub start: usize,
    pub end: usize,
    pub text: &'s str,
}

/// A comment, as written (trailing whitespace removed, line breaks as
/// `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
    /// A `//` or `///` comment, which runs to the end of its line.
    pub is_line: bool,
    /// Line breaks between the previous token or comment and this comment.
    pub newlines_before: usize,
}

/// What comes before one token (or the end of the file).
#[derive(Debug, Clone, Default)]
pub struct Leading {
    pub comments: Vec<Comment>,
    /// Line breaks between the last comment (or the previous token) and the
    /// token.
    pub newlines_before: usize,
}

/// The tokens of a file and the trivia before each. `leading` has one entry
/// more than `tokens`: the last is what follows the last token.
#[derive(Debug)]
pub struct Trivia<'s> {
    pub tokens: Vec<Tok<'s>>,
    pub leading: Vec<Leading>,
}

/// Splits `source` (free of lexical errors) into tokens and trivia.
pub fn scan(source: &str) -> Trivia<'_> {
    let lexed = dtc_syntax::lexer::lex(source);
    let mut tokens = Vec::with_capacity(lexed.tokens.len());
    let mut leading = Vec::with_capacity(lexed.tokens.len() + 1);
    let mut pos = 0;
    for (start, token, end) in lexed.tokens {
        leading.push(gap(&source[pos.min(start)..start]));
        tokens.push(Tok {
            token,
            start,
            end,
            text: &source[start..end],
        });
        pos = end;
    }
    leading.push(gap(&source[pos.min(source.len())..]));
    Trivia { tokens, leading }
}

/// Reads the comments out of the text between two tokens.
fn gap(text: &str) -> Leading {
    let mut out = Leading::default();
    let mut newlines = 0;
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('\n') {
            newlines += 1;
            rest = after;
        } else if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.comments.push(Comment {
                text: rest[..end].trim_end().to_string(),
                is_line: true,
                newlines_before: newlines,
            });
            newlines = 0;
            rest = &rest[end..];
        } else if rest.starts_with("/*") {
            let end = rest[2..].find("*/").map_or(rest.len(), |i| i + 4);
            let body = rest[..end].replace("\r\n", "\n");
            let body: Vec<&str> = body.split('\n').map(str::trim_end).collect();
            out.comments.push(Comment {
                text: body.join("\n"),
                is_line: false,
                newlines_before: newlines,
            });
            newlines = 0;
            rest = &rest[end..];
        } else {
            // Whitespace other than a line break; anything else cannot be in
            // a gap of a file without lexical errors, and is skipped too.
            let len = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[len..];
        }
    }
    out.newlines_before = newlines;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_of_every_kind_are_found() {
        let t = scan("// a\n/// b\nx /* c\n  d */ y // e\n\n/* f */");
        assert_eq!(t.tokens.len(), 2);
        let texts: Vec<&str> = t.leading[0]
            .comments
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        assert_eq!(texts, ["// a", "/// b"]);
        assert_eq!(t.leading[0].newlines_before, 1);
        assert_eq!(t.leading[1].comments[0].text, "/* c\n  d */");
        assert_eq!(t.leading[1].comments[0].newlines_before, 0);
        assert_eq!(t.leading[2].comments[0].text, "// e");
        assert_eq!(t.leading[2].comments[1].newlines_before, 2);
    }
}
