//! The printer: tokens, comments and the layout plan to text.
//!
//! Tokens are printed as written (a literal keeps its spelling: `1_000`,
//! `1.5s`, `"\u{1F600}"`); only the space between them changes. A token
//! that the plan says starts a line does; otherwise one space or none
//! separates two tokens, by a few rules on the pair. Comments stay where
//! they were relative to the tokens: a comment that ended a line still ends
//! it, a comment on its own line is still on its own line (indented like the
//! line that follows it), and a line comment in the middle of an expression
//! breaks the expression there, continuing one level deeper.

use dtc_syntax::lexer::Token;

use crate::Options;
use crate::layout::{Blank, LineStart, Plan};
use crate::trivia::{Comment, Trivia};

pub fn print(trivia: &Trivia<'_>, plan: &Plan, options: &Options) -> String {
    let mut p = Printer {
        trivia,
        plan,
        options,
        out: String::new(),
        line_indent: 0,
        just_opened: false,
        after_line_comment: false,
        vertical: vec![false; plan.groups.len()],
        open_groups: Vec::new(),
    };
    for i in 0..trivia.tokens.len() {
        p.token(i);
    }
    let end = LineStart {
        indent: 0,
        blank: Blank::Keep,
        comment_indent: 0,
        open: None,
    };
    p.comments(&trivia.leading[trivia.tokens.len()].comments, Some(end));
    if !p.out.is_empty() {
        p.out.push('\n');
    }
    p.out
}

struct Printer<'a, 's> {
    trivia: &'a Trivia<'s>,
    plan: &'a Plan,
    options: &'a Options,
    out: String,
    /// The indent of the line being printed (of its first token).
    line_indent: usize,
    /// The last thing printed is an opening brace: no blank line follows.
    just_opened: bool,
    /// The last thing printed is a line comment: a line break must follow.
    after_line_comment: bool,
    /// For each group: whether it is printed one element per line.
    vertical: Vec<bool>,
    /// The groups being printed, innermost last.
    open_groups: Vec<usize>,
}

impl Printer<'_, '_> {
    /// The line start of token `i`, if it starts one: from the plan, or
    /// from a group printed one element per line.
    fn line_start(&self, i: usize) -> Option<LineStart> {
        if let Some(ls) = self.plan.line_starts[i] {
            return Some(ls);
        }
        let &g = self.open_groups.last()?;
        if !self.vertical[g] {
            return None;
        }
        let group = &self.plan.groups[g];
        let inner = group.indent + 1;
        if group.elems.iter().any(|&(first, _)| first == i) {
            return Some(LineStart {
                indent: inner,
                blank: Blank::Keep,
                comment_indent: inner,
                open: None,
            });
        }
        (i == group.close).then_some(LineStart {
            indent: group.indent,
            blank: Blank::Never,
            comment_indent: inner,
            open: Some(group.open),
        })
    }

    /// The trailing comma of a group printed on one line, which is dropped.
    fn is_dropped_comma(&self, i: usize) -> bool {
        let Some(&g) = self.open_groups.last() else {
            return false;
        };
        let group = &self.plan.groups[g];
        !self.vertical[g] && self.trivia.tokens[i].token == Token::Comma && i + 1 == group.close
    }

    /// Whether a trailing comma goes after token `i`.
    fn comma_after(&self, i: usize) -> bool {
        if self.plan.comma_after[i] {
            return true;
        }
        let Some(&g) = self.open_groups.last() else {
            return false;
        };
        let group = &self.plan.groups[g];
        self.vertical[g]
            && group.elems.last().is_some_and(|&(_, last)| last == i)
            && self.trivia.tokens.get(i + 1).map(|t| &t.token) != Some(&Token::Comma)
    }

    fn token(&mut self, i: usize) {
        if let Some(g) = self.plan.group_at[i] {
            self.vertical[g] = self.decide_vertical(g);
        }
        let leading = &self.trivia.leading[i];
        let ls = self.line_start(i);
        if self.is_dropped_comma(i) {
            return;
        }
        let first_newline_done = self.comments(&leading.comments, ls);
        let text = self.trivia.tokens[i].text;
        match ls {
            Some(ls)
                if ls.open.is_some_and(|o| o + 1 == i)
                    && leading.comments.is_empty()
                    && !self.after_line_comment => {}
            Some(ls) => {
                if !self.out.is_empty() {
                    let blank = !self.just_opened
                        && ls.blank != Blank::Never
                        && ((!first_newline_done && ls.blank == Blank::Force)
                            || leading.newlines_before >= 2);
                    self.newline(blank, ls.indent);
                }
                self.line_indent = ls.indent;
            }
            None => {
                let after_block_comment_line = leading.comments.last().is_some_and(|c| !c.is_line)
                    && leading.newlines_before > 0;
                if self.after_line_comment || after_block_comment_line {
                    self.newline(false, self.line_indent + 1);
                } else if i > 0 {
                    let sep = self.separator(i);
                    self.out.push_str(sep);
                }
            }
        }
        self.out.push_str(text);
        self.after_line_comment = false;
        self.just_opened = self.trivia.tokens[i].token == Token::LBrace;
        if self.comma_after(i) {
            self.out.push(',');
        }
        if self.plan.group_at[i].is_some() {
            self.open_groups
                .push(self.plan.group_at[i].unwrap_or_default());
        }
        if self
            .open_groups
            .last()
            .is_some_and(|&g| self.plan.groups[g].close == i)
        {
            self.open_groups.pop();
        }
    }

    /// Prints the comments before a token. Returns whether a line break
    /// was printed (so a forced blank line has been placed).
    fn comments(&mut self, comments: &[Comment], ls: Option<LineStart>) -> bool {
        let mut newline_done = false;
        for c in comments {
            if self.out.is_empty() {
                // The start of the file: no line break, no blank line.
                newline_done = true;
            } else if c.newlines_before > 0 || self.after_line_comment {
                let forced = !newline_done && ls.is_some_and(|l| l.blank == Blank::Force);
                let blank = !self.just_opened && (c.newlines_before >= 2 || forced);
                let indent = ls.map_or(self.line_indent + 1, |l| l.comment_indent);
                self.newline(blank, indent);
                newline_done = true;
            } else {
                self.out.push(' ');
            }
            self.out.push_str(&c.text);
            self.after_line_comment = c.is_line;
            self.just_opened = false;
        }
        newline_done
    }

    fn newline(&mut self, blank: bool, indent: usize) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out.push('\n');
        if blank {
            self.out.push('\n');
        }
        for _ in 0..indent * self.options.indent {
            self.out.push(' ');
        }
    }

    /// The space between token `i - 1` and token `i` on one line.
    fn separator(&self, i: usize) -> &'static str {
        let tokens = &self.trivia.tokens;
        let (a, b) = (&tokens[i - 1].token, &tokens[i].token);
        if let Some(&g) = self.open_groups.last() {
            let group = &self.plan.groups[g];
            if !self.vertical[g] {
                // `{ a, b }`, `{}`; the previous token may be a dropped comma.
                if i == group.close {
                    return if i == group.open + 1 { "" } else { " " };
                }
                if i == group.open + 1 {
                    return " ";
                }
            }
        }
        pair_separator(a, b, self.plan.tight[i], self.plan.unary[i - 1])
    }

    /// Whether group `g` is printed one element per line: when it holds a
    /// comment, or when its line would be too long.
    fn decide_vertical(&self, g: usize) -> bool {
        let group = &self.plan.groups[g];
        let leading = &self.trivia.leading;
        if (group.open + 1..=group.close).any(|i| !leading[i].comments.is_empty()) {
            return true;
        }
        let column = self.out.len() - self.out.rfind('\n').map_or(0, |n| n + 1);
        let tokens = &self.trivia.tokens;
        // The group on one line, and whatever follows it on that line.
        let mut width = column + " {".len();
        let mut i = group.open + 1;
        while i < tokens.len() {
            if i > group.close && self.plan.line_starts[i].is_some() {
                break;
            }
            if i > group.close && !leading[i].comments.is_empty() {
                break;
            }
            let dropped = tokens[i].token == Token::Comma && i + 1 == group.close;
            if !dropped {
                let sep = if i == group.close || i == group.open + 1 {
                    " "
                } else {
                    pair_separator(
                        &tokens[i - 1].token,
                        &tokens[i].token,
                        self.plan.tight[i],
                        self.plan.unary[i - 1],
                    )
                };
                width += sep.len() + tokens[i].text.chars().count();
            }
            if width > self.options.max_width {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// The space between two tokens on one line.
fn pair_separator(a: &Token, b: &Token, b_tight: bool, a_unary: bool) -> &'static str {
    match b {
        Token::Comma
        | Token::RParen
        | Token::RBracket
        | Token::Dot
        | Token::DotDot
        | Token::Colon
        | Token::Question => return "",
        Token::LParen | Token::LBracket if b_tight => return "",
        _ => {}
    }
    match a {
        Token::LParen | Token::LBracket | Token::Dot | Token::DotDot | Token::At => "",
        _ if a_unary => "",
        _ => " ",
    }
}
