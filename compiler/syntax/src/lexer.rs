//! The lexer: source text to tokens, with logos.
//!
//! It never fails. Characters that start no token, unterminated strings and
//! bad literals become [`LexError`]s with spans, and lexing carries on after
//! them, so the parser sees every good token and a file with several lexical
//! mistakes reports each one. Comments are dropped here, except doc comments
//! (`///`), which are kept in a side table keyed by the offset of the token
//! they document: the grammar stays free of comment handling, and any
//! declaration can look its documentation up by its start offset.

use std::collections::HashMap;

use logos::Logos;

/// Why a piece of input is not a token.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LexError {
    #[default]
    InvalidChar,
    UnterminatedString,
    InvalidEscape(String),
    InvalidNumber(String),
    UnterminatedComment,
}

/// A token. Keywords are reserved; the two that double as function names
/// (`max`, `sample`) are accepted as callees by the grammar, and any keyword
/// is accepted where only a field name can appear.
#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Token {
    #[regex(r"///[^\n]*", |lex| lex.slice()[3..].trim_end().to_string(), priority = 10, allow_greedy = true)]
    DocComment(String),
    #[token("/*", block_comment)]
    BlockComment,

    #[token("import")]
    Import,
    #[token("from")]
    From,
    #[token("event")]
    Event,
    #[token("probe")]
    Probe,
    #[token("query")]
    Query,
    #[token("machine")]
    Machine,
    #[token("processor")]
    Processor,
    #[token("state")]
    State,
    #[token("on")]
    On,
    #[token("in")]
    In,
    #[token("when")]
    When,
    #[token("after")]
    After,
    #[token("emit")]
    Emit,
    #[token("log")]
    Log,
    #[token("metric")]
    Metric,
    #[token("trigger")]
    Trigger,
    #[token("limit")]
    Limit,
    #[token("per")]
    Per,
    #[token("max")]
    Max,
    #[token("suppress")]
    Suppress,
    #[token("redact")]
    Redact,
    #[token("with")]
    With,
    #[token("sample")]
    Sample,
    #[token("let")]
    Let,
    #[token("var")]
    Var,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("for")]
    For,
    #[token("fn")]
    Fn,
    #[token("return")]
    Return,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("none")]
    None,
    #[token("where")]
    Where,
    #[token("extend")]
    Extend,
    #[token("project")]
    Project,
    #[token("summarize")]
    Summarize,
    #[token("by")]
    By,
    #[token("every")]
    Every,
    #[token("is")]
    Is,

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("->")]
    Arrow,
    #[token("=")]
    Assign,
    #[token("+=")]
    PlusAssign,
    #[token("-=")]
    MinusAssign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("!")]
    Bang,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("??")]
    QuestionQuestion,
    #[token("?")]
    Question,
    #[token("|")]
    Pipe,
    #[token("@")]
    At,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9][0-9_]*", int_literal)]
    Int(i64),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*", float_literal)]
    Float(f64),
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?%", percent_literal)]
    PercentLit(f64),
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[A-Za-z][A-Za-z0-9_]*", unit_literal)]
    UnitLit(UnitValue),
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, string_literal)]
    Str(String),
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, unterminated_string)]
    UnterminatedStr,
    /// Stands in for a literal the lexer reported as malformed, so the
    /// parser sees a value there and does not report the same mistake again.
    BadLiteral,
}

/// A number with a unit: a duration in nanoseconds or a size in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnitValue {
    Duration(i64),
    Size(i64),
}

fn unterminated_string(_: &mut logos::Lexer<Token>) -> Result<(), LexError> {
    Err(LexError::UnterminatedString)
}

fn block_comment(lex: &mut logos::Lexer<Token>) -> Result<(), LexError> {
    match lex.remainder().find("*/") {
        Some(end) => {
            lex.bump(end + 2);
            Ok(())
        }
        None => {
            lex.bump(lex.remainder().len());
            Err(LexError::UnterminatedComment)
        }
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| *c != '_').collect()
}

fn int_literal(lex: &mut logos::Lexer<Token>) -> Result<i64, LexError> {
    digits(lex.slice()).parse::<i64>().map_err(|_| {
        LexError::InvalidNumber(format!(
            "`{}` does not fit in a 64-bit signed integer (the largest is {})",
            lex.slice(),
            i64::MAX
        ))
    })
}

fn float_literal(lex: &mut logos::Lexer<Token>) -> Result<f64, LexError> {
    let v: f64 = digits(lex.slice())
        .parse()
        .map_err(|_| LexError::InvalidNumber(format!("`{}` is not a number", lex.slice())))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(LexError::InvalidNumber(format!(
            "`{}` is too large for a float",
            lex.slice()
        )))
    }
}

fn percent_literal(lex: &mut logos::Lexer<Token>) -> Result<f64, LexError> {
    let s = lex.slice();
    let v: f64 = digits(&s[..s.len() - 1])
        .parse()
        .map_err(|_| LexError::InvalidNumber(format!("`{s}` is not a percentage")))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(LexError::InvalidNumber(format!(
            "`{s}` is not a percentage between 0% and 100%"
        )))
    }
}

const DURATION_UNITS: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

const SIZE_UNITS: &[(&str, i64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("KiB", 1 << 10),
    ("MB", 1_000_000),
    ("MiB", 1 << 20),
    ("GB", 1_000_000_000),
    ("GiB", 1 << 30),
    ("TB", 1_000_000_000_000),
    ("TiB", 1 << 40),
];

fn unit_literal(lex: &mut logos::Lexer<Token>) -> Result<UnitValue, LexError> {
    let s = lex.slice();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let (scale, make): (i64, fn(i64) -> UnitValue) = if let Some((_, scale)) =
        DURATION_UNITS.iter().find(|(u, _)| *u == unit)
    {
        (*scale, UnitValue::Duration)
    } else if let Some((_, scale)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) {
        (*scale, UnitValue::Size)
    } else {
        return Err(LexError::InvalidNumber(format!(
            "`{unit}` is not a unit: durations take ns, us, ms, s, m, h or d; sizes take B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
        )));
    };
    // Exact decimal arithmetic: `4.1s` is 4_100_000_000 ns, which floating
    // point would miss.
    let num = digits(num);
    let (whole, frac) = num.split_once('.').unwrap_or((&num, ""));
    let too_large = || LexError::InvalidNumber(format!("`{s}` is too large"));
    let whole: i128 = whole.parse().map_err(|_| too_large())?;
    let frac_digits = frac.len() as u32;
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_large())?
    };
    let denominator = 10i128.checked_pow(frac_digits).ok_or_else(too_large)?;
    let numerator = whole
        .checked_mul(denominator)
        .and_then(|w| w.checked_add(frac))
        .and_then(|n| n.checked_mul(scale as i128))
        .ok_or_else(too_large)?;
    if numerator % denominator != 0 {
        return Err(LexError::InvalidNumber(format!(
            "`{s}` is not a whole number of {}",
            if make(0) == UnitValue::Size(0) {
                "bytes"
            } else {
                "nanoseconds"
            }
        )));
    }
    let value = i64::try_from(numerator / denominator).map_err(|_| too_large())?;
    Ok(make(value))
}

fn string_literal(lex: &mut logos::Lexer<Token>) -> Result<String, LexError> {
    let s = lex.slice();
    unescape(&s[1..s.len() - 1])
}

/// Decodes the escapes of a string literal's body.
pub fn unescape(body: &str) -> Result<String, LexError> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('u') => {
                let rest: String = chars.clone().take_while(|c| *c != '}').collect();
                let ok = rest.starts_with('{')
                    && u32::from_str_radix(&rest[1..], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map(|ch| out.push(ch))
                        .is_some();
                if !ok {
                    return Err(LexError::InvalidEscape(
                        "`\\u` must be followed by a code point in braces, like `\\u{1F600}`"
                            .into(),
                    ));
                }
                for _ in 0..rest.chars().count() + 1 {
                    chars.next();
                }
            }
            Some(other) => {
                return Err(LexError::InvalidEscape(format!(
                    "`\\{other}` is not an escape: use \\n, \\t, \\r, \\0, \\\\, \\\" or \\u{{...}}"
                )));
            }
            None => {
                return Err(LexError::InvalidEscape(
                    "a string cannot end with `\\`".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// A lexical error with its byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct SpannedLexError {
    pub error: LexError,
    pub start: usize,
    pub end: usize,
}

/// The result of lexing a file.
#[derive(Debug, Default)]
pub struct Lexed {
    /// Tokens in `(start, token, end)` form, as lalrpop wants them.
    pub tokens: Vec<(usize, Token, usize)>,
    pub errors: Vec<SpannedLexError>,
    /// Doc comment text keyed by the start offset of the token that follows.
    pub docs: HashMap<usize, String>,
}

/// Lexes a whole file. Runs of invalid characters are reported once.
pub fn lex(source: &str) -> Lexed {
    let mut out = Lexed::default();
    let mut pending_doc: Vec<String> = Vec::new();
    let mut lexer = Token::lexer(source);
    while let Some(result) = lexer.next() {
        let span = lexer.span();
        match result {
            Ok(Token::DocComment(text)) => {
                pending_doc.push(text.strip_prefix(' ').unwrap_or(&text).to_string())
            }
            Ok(Token::BlockComment) => {}
            Ok(token) => {
                if !pending_doc.is_empty() {
                    out.docs.insert(span.start, pending_doc.join("\n"));
                    pending_doc.clear();
                }
                out.tokens.push((span.start, token, span.end));
            }
            Err(error) => {
                if matches!(
                    error,
                    LexError::InvalidNumber(_)
                        | LexError::InvalidEscape(_)
                        | LexError::UnterminatedString
                ) {
                    out.tokens.push((span.start, Token::BadLiteral, span.end));
                }
                if let (LexError::InvalidChar, Some(last)) = (&error, out.errors.last_mut())
                    && last.error == LexError::InvalidChar
                    && last.end == span.start
                {
                    last.end = span.end;
                    continue;
                }
                out.errors.push(SpannedLexError {
                    error,
                    start: span.start,
                    end: span.end,
                });
            }
        }
    }
    out
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Token::DocComment(_) => "doc comment",
            Token::BlockComment => "comment",
            Token::Ident(name) => return write!(f, "identifier `{name}`"),
            Token::Int(_) => "integer",
            Token::Float(_) => "float",
            Token::PercentLit(_) => "percentage",
            Token::UnitLit(UnitValue::Duration(_)) => "duration",
            Token::UnitLit(UnitValue::Size(_)) => "size",
            Token::Str(_) => "string",
            Token::UnterminatedStr => "unterminated string",
            Token::BadLiteral => "malformed literal",
            other => return write!(f, "`{}`", other.text()),
        };
        f.write_str(s)
    }
}

impl Token {
    /// The source text of a keyword or punctuation token.
    pub fn text(&self) -> &'static str {
        match self {
            Token::Import => "import",
            Token::From => "from",
            Token::Event => "event",
            Token::Probe => "probe",
            Token::Query => "query",
            Token::Machine => "machine",
            Token::Processor => "processor",
            Token::State => "state",
            Token::On => "on",
            Token::In => "in",
            Token::When => "when",
            Token::After => "after",
            Token::Emit => "emit",
            Token::Log => "log",
            Token::Metric => "metric",
            Token::Trigger => "trigger",
            Token::Limit => "limit",
            Token::Per => "per",
            Token::Max => "max",
            Token::Suppress => "suppress",
            Token::Redact => "redact",
            Token::With => "with",
            Token::Sample => "sample",
            Token::Let => "let",
            Token::Var => "var",
            Token::If => "if",
            Token::Else => "else",
            Token::For => "for",
            Token::Fn => "fn",
            Token::Return => "return",
            Token::True => "true",
            Token::False => "false",
            Token::None => "none",
            Token::Where => "where",
            Token::Extend => "extend",
            Token::Project => "project",
            Token::Summarize => "summarize",
            Token::By => "by",
            Token::Every => "every",
            Token::Is => "is",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Semi => ";",
            Token::Dot => ".",
            Token::DotDot => "..",
            Token::Arrow => "->",
            Token::Assign => "=",
            Token::PlusAssign => "+=",
            Token::MinusAssign => "-=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Bang => "!",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::QuestionQuestion => "??",
            Token::Question => "?",
            Token::Pipe => "|",
            Token::At => "@",
            _ => "",
        }
    }

    /// Whether the token is a reserved word.
    pub fn is_keyword(&self) -> bool {
        let t = self.text();
        !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic())
    }
}

/// Every reserved word, for editors and for "did you mean" on keywords.
pub const KEYWORDS: &[&str] = &[
    "import",
    "from",
    "event",
    "probe",
    "query",
    "machine",
    "processor",
    "state",
    "on",
    "in",
    "when",
    "after",
    "emit",
    "log",
    "metric",
    "trigger",
    "limit",
    "per",
    "max",
    "suppress",
    "redact",
    "with",
    "sample",
    "let",
    "var",
    "if",
    "else",
    "for",
    "fn",
    "return",
    "true",
    "false",
    "none",
    "where",
    "extend",
    "project",
    "summarize",
    "by",
    "every",
    "is",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Token> {
        lex(src).tokens.into_iter().map(|(_, t, _)| t).collect()
    }

    #[test]
    fn literals_with_units() {
        assert_eq!(
            kinds("10ms 1.5s 64KiB 1% 0..10 1_000"),
            vec![
                Token::UnitLit(UnitValue::Duration(10_000_000)),
                Token::UnitLit(UnitValue::Duration(1_500_000_000)),
                Token::UnitLit(UnitValue::Size(65536)),
                Token::PercentLit(1.0),
                Token::Int(0),
                Token::DotDot,
                Token::Int(10),
                Token::Int(1000),
            ]
        );
    }

    #[test]
    fn errors_are_reported_and_lexing_goes_on() {
        let lexed = lex("a ### b \"open\n 10xs 99999999999999999999 \"bad\\q\" c");
        let errs: Vec<_> = lexed.errors.iter().map(|e| &e.error).collect();
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert_eq!(errs[0], &LexError::InvalidChar);
        assert_eq!(errs[1], &LexError::UnterminatedString);
        assert!(matches!(errs[2], LexError::InvalidNumber(_)));
        assert!(matches!(errs[3], LexError::InvalidNumber(_)));
        assert!(matches!(errs[4], LexError::InvalidEscape(_)));
        assert_eq!(
            kinds("a ### b"),
            vec![Token::Ident("a".into()), Token::Ident("b".into())]
        );
    }

    #[test]
    fn doc_comments_attach_to_the_next_token() {
        let lexed = lex("/// Hello\n/// world\nevent A {} // not a doc\n/* block */ x");
        assert_eq!(
            lexed.docs.get(&20).map(String::as_str),
            Some("Hello\nworld")
        );
        assert_eq!(lexed.tokens.len(), 5);
    }

    #[test]
    fn fractional_units_are_exact() {
        assert_eq!(
            kinds("4.1s 1.1m 8.2ms 2.2h 1.5KiB"),
            vec![
                Token::UnitLit(UnitValue::Duration(4_100_000_000)),
                Token::UnitLit(UnitValue::Duration(66_000_000_000)),
                Token::UnitLit(UnitValue::Duration(8_200_000)),
                Token::UnitLit(UnitValue::Duration(7_920_000_000_000)),
                Token::UnitLit(UnitValue::Size(1536)),
            ]
        );
        assert_eq!(
            lex("1.5B 0.0000000001s 99999999999999999999d").errors.len(),
            3
        );
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(unescape(r"a\u{1F600}b\n").unwrap(), "a😀b\n");
        assert!(unescape(r"\u{zz}").is_err());
        assert!(unescape(r"\u{110000}").is_err());
    }
}
