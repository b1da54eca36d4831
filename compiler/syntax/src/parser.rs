//! Parsing: tokens to an AST, with error recovery.
//!
//! [`parse`] never fails. It returns the tree it could build (with `Error`
//! nodes where it skipped input) and every lexical and syntax diagnostic.
//! Node construction goes through [`Ctx`], which bounds the height of
//! expression and block trees: a file of ten thousand nested parentheses or
//! a million-term sum is reported as too deeply nested rather than building a
//! tree whose traversal (or drop) would overflow the stack.

use std::collections::HashMap;

use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Span};
use lalrpop_util::{ErrorRecovery, ParseError};

use crate::ast::*;
use crate::lexer::{self, LexError, Token};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_qualifications, dead_code)]
    grammar
);

/// The parser's user error type: the grammar raises none of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Never {}

impl std::fmt::Display for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

/// How deep expressions and blocks may nest. Real programs stay far below;
/// the bound keeps every recursive pass within a small, fixed stack.
pub const MAX_DEPTH: u32 = 128;

/// Marks a subtree that was cut off for depth, so that only the innermost
/// cut is reported.
const POISONED: u32 = u32::MAX;

/// Parser state shared with the grammar's actions.
#[derive(Debug)]
pub struct Ctx {
    pub(crate) recovered: Vec<ErrorRecovery<usize, Token, Never>>,
    docs: HashMap<usize, String>,
    depth_errors: Vec<Span>,
    call_errors: Vec<Span>,
    errors_not_kept: usize,
}

/// Recovered syntax errors kept per file (more than are ever shown, so that
/// the cascade filter still has what it needs).
const MAX_KEPT_ERRORS: usize = 4 * MAX_SYNTAX_ERRORS;

impl Ctx {
    /// Keeps a recovered error, up to a bound: a file of garbage would
    /// otherwise hold every skipped token of every error in memory.
    pub(crate) fn recover(&mut self, e: ErrorRecovery<usize, Token, Never>) {
        if self.recovered.len() < MAX_KEPT_ERRORS {
            self.recovered.push(e);
        } else {
            self.errors_not_kept += 1;
        }
    }

    /// Records `=` written where a condition wanted `==`; the grammar reads
    /// it as `==`. It is reported like any unexpected token (E0104, with the
    /// "use `==`" help) and takes part in the cascade filter like one.
    pub(crate) fn assign_for_eq(&mut self, start: usize, end: usize) {
        self.recover(ErrorRecovery {
            error: ParseError::UnrecognizedToken {
                token: (start, Token::Assign, end),
                expected: vec!["\"==\"".to_string()],
            },
            dropped_tokens: Vec::new(),
        });
    }

    pub(crate) fn doc(&mut self, start: usize) -> Option<String> {
        self.docs.remove(&start)
    }

    pub(crate) fn expr(&mut self, kind: ExprKind, span: Span) -> Expr {
        let children = child_depth(&kind);
        if children == POISONED {
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: POISONED,
            };
        }
        if children >= MAX_DEPTH {
            self.depth_errors.push(span);
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: POISONED,
            };
        }
        Expr {
            kind,
            span,
            depth: children + 1,
        }
    }

    pub(crate) fn binary(&mut self, op: BinaryOp, a: Expr, b: Expr, span: Span) -> Expr {
        self.expr(ExprKind::Binary(op, Box::new(a), Box::new(b)), span)
    }

    pub(crate) fn call(&mut self, callee: Expr, args: Vec<Arg>, span: Span) -> Expr {
        if callee.depth == POISONED {
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: POISONED,
            };
        }
        match callee.as_path() {
            Some(path) => self.expr(ExprKind::Call { callee: path, args }, span),
            None => {
                self.call_errors.push(callee.span);
                Expr {
                    kind: ExprKind::Error,
                    span,
                    depth: 1,
                }
            }
        }
    }

    pub(crate) fn block(&mut self, stmts: Vec<Stmt>, span: Span) -> Block {
        let inner = stmts.iter().map(stmt_depth).max().unwrap_or(0);
        if inner == POISONED {
            return Block {
                stmts: vec![],
                span,
                depth: POISONED,
            };
        }
        if inner >= MAX_DEPTH {
            self.depth_errors.push(span);
            return Block {
                stmts: vec![],
                span,
                depth: POISONED,
            };
        }
        Block {
            stmts,
            span,
            depth: inner + 1,
        }
    }
}

fn child_depth(kind: &ExprKind) -> u32 {
    let d = |e: &Expr| e.depth;
    match kind {
        ExprKind::Field(base, _) => d(base),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => d(a).max(d(b)),
        ExprKind::Unary(_, e) => d(e),
        ExprKind::Call { args, .. } => args.iter().map(|a| d(&a.value)).max().unwrap_or(0),
        _ => 0,
    }
}

fn stmt_depth(stmt: &Stmt) -> u32 {
    match &stmt.kind {
        StmtKind::If {
            then, otherwise, ..
        }
        | StmtKind::IfLet {
            then, otherwise, ..
        } => then.depth.max(otherwise.as_ref().map_or(0, |b| b.depth)),
        StmtKind::For { body, .. } => body.depth,
        _ => 0,
    }
}

/// Syntax errors past this many in one file are summarised in one
/// diagnostic: after that many, the rest are mostly cascades.
pub const MAX_SYNTAX_ERRORS: usize = 100;

/// A parsed file and what went wrong while parsing it.
#[derive(Debug)]
pub struct Parsed {
    pub ast: SourceFileAst,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses a file. Spans in the result are byte offsets into `source`.
pub fn parse(file: FileId, source: &str) -> Parsed {
    let lexed = lexer::lex(source);
    let mut diagnostics: Vec<Diagnostic> = lexed
        .errors
        .iter()
        .map(|e| lex_diagnostic(file, e))
        .collect();
    let mut ctx = Ctx {
        recovered: Vec::new(),
        docs: lexed.docs,
        depth_errors: Vec::new(),
        call_errors: Vec::new(),
        errors_not_kept: 0,
    };
    let token_starts: Vec<usize> = lexed.tokens.iter().map(|(start, _, _)| *start).collect();
    let parser = grammar::FileParser::new();
    let declared = declared_in_tokens(&lexed.tokens);
    let result = parser.parse(&mut ctx, lexed.tokens);
    let mut ast = match result {
        Ok(ast) => ast,
        Err(e) => {
            diagnostics.push(parse_diagnostic(file, source, &e));
            SourceFileAst::default()
        }
    };
    // After an error the parser resynchronises by dropping tokens; errors
    // right after that are usually the same mistake seen again. Like yacc,
    // report a new error only once a few tokens have parsed cleanly.
    // An `=` read as `==` is recorded when its condition is reduced, after
    // any error inside the condition's right side: restore source order.
    ctx.recovered
        .sort_by_key(|rec| error_token_index(&token_starts, &rec.error));
    let mut resumes_at: Option<usize> = None;
    for rec in &ctx.recovered {
        let at = error_token_index(&token_starts, &rec.error);
        if let (Some(at), Some(resume)) = (at, resumes_at)
            && at < resume + CLEAN_TOKENS_BEFORE_NEXT_ERROR
        {
            resumes_at = Some(resume.max(at + rec.dropped_tokens.len()));
            continue;
        }
        diagnostics.push(parse_diagnostic(file, source, &rec.error));
        resumes_at = at.map(|a| a + rec.dropped_tokens.len());
    }
    for span in ctx.depth_errors {
        diagnostics.push(
            Diagnostic::new(
                Code::E0107,
                "expression or block nested too deeply",
                Label::new(file, span, format!("more than {MAX_DEPTH} levels deep")),
            )
            .with_help("split it up with `let` bindings or helper functions"),
        );
    }
    for span in ctx.call_errors {
        diagnostics.push(
            Diagnostic::new(
                Code::E0110,
                "only a named function can be called",
                Label::new(file, span, "this is not a function name"),
            )
            .with_help("call a function by name, like `len(x)` or `file.sha256(path)`"),
        );
    }
    if !diagnostics.is_empty() {
        ast.unparsed_names = declared;
    }
    dtc_diagnostics::sort(&mut diagnostics);
    if diagnostics.len() > MAX_SYNTAX_ERRORS {
        let last_span = diagnostics[MAX_SYNTAX_ERRORS].primary.span;
        let dropped = diagnostics.len() - MAX_SYNTAX_ERRORS + ctx.errors_not_kept;
        diagnostics.truncate(MAX_SYNTAX_ERRORS);
        diagnostics.push(
            Diagnostic::new(
                Code::E0108,
                format!("{dropped} more syntax errors not shown"),
                Label::new(file, last_span, "stopped reporting here"),
            )
            .with_help(
                "fix the errors above first; many of the rest are likely consequences of them",
            ),
        );
    }
    Parsed { ast, diagnostics }
}

/// How many tokens must parse after a syntax error before another is reported.
const CLEAN_TOKENS_BEFORE_NEXT_ERROR: usize = 3;

/// The index of the token a parse error is at (the token count at end of file).
fn error_token_index(token_starts: &[usize], e: &ParseError<usize, Token, Never>) -> Option<usize> {
    let offset = match e {
        ParseError::UnrecognizedToken {
            token: (l, _, _), ..
        }
        | ParseError::ExtraToken { token: (l, _, _) } => *l,
        ParseError::UnrecognizedEof { .. } => return Some(token_starts.len()),
        ParseError::InvalidToken { location } => *location,
        ParseError::User { .. } => return None,
    };
    Some(token_starts.partition_point(|&s| s < offset))
}

fn lex_diagnostic(file: FileId, e: &lexer::SpannedLexError) -> Diagnostic {
    let span = Span::new(e.start, e.end);
    match &e.error {
        LexError::InvalidChar => Diagnostic::new(
            Code::E0101,
            "invalid character",
            Label::new(file, span, "not part of any token"),
        )
        .with_help("identifiers are ASCII letters, digits and `_`; text belongs in a \"string\""),
        LexError::UnterminatedString => Diagnostic::new(
            Code::E0102,
            "unterminated string",
            Label::new(file, span, "this string has no closing `\"`"),
        )
        .with_help("close the string with `\"` on the same line; write a newline as `\\n`"),
        LexError::InvalidEscape(msg) => Diagnostic::new(
            Code::E0103,
            "invalid escape sequence",
            Label::new(file, span, "in this string"),
        )
        .with_help(msg.clone()),
        LexError::InvalidNumber(msg) => Diagnostic::new(
            Code::E0106,
            "invalid number literal",
            Label::new(file, span, msg.clone()),
        ),
        LexError::UnterminatedComment => Diagnostic::new(
            Code::E0109,
            "unterminated block comment",
            Label::new(
                file,
                Span::new(e.start, e.start + 2),
                "this comment never ends",
            ),
        )
        .with_help("close it with `*/`"),
    }
}

/// Tokens that can start an expression: when the parser expects an
/// expression, listing them all is noise.
const EXPRESSION_STARTS: &[&str] = &[
    "Ident",
    "Int",
    "Float",
    "PercentLit",
    "UnitLit",
    "Str",
    "\"true\"",
    "\"false\"",
    "\"none\"",
    "\"event\"",
    "\"max\"",
    "\"sample\"",
    "\"(\"",
    "\"-\"",
    "\"!\"",
];

/// Turns lalrpop's names for expected terminals into what a person reads.
fn expected_list(expected: &[String]) -> String {
    let wants_expression = expected.iter().any(|e| e == "Int");
    let mut names: Vec<String> = expected
        .iter()
        .filter(|e| e.as_str() != "BadLiteral")
        .filter(|e| !(wants_expression && EXPRESSION_STARTS.contains(&e.as_str())))
        .map(|e| match e.as_str() {
            "Ident" => "an identifier".to_string(),
            "Int" => "an integer".to_string(),
            "Float" => "a float".to_string(),
            "PercentLit" => "a percentage".to_string(),
            "UnitLit" => "a duration or size".to_string(),
            "Str" => "a string".to_string(),
            quoted => format!("`{}`", quoted.trim_matches('"')),
        })
        .collect();
    names.dedup();
    if names.len() > 8 {
        names.truncate(8);
        names.push("…".to_string());
    }
    if wants_expression {
        names.insert(0, "an expression".to_string());
    }
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        _ => {
            let last = names.pop().unwrap_or_default();
            format!("{} or {}", names.join(", "), last)
        }
    }
}

/// Names that declarations in the file spell out (`event Name`, `state
/// Name`, ...), read from the tokens. When a declaration fails to parse, the
/// checker uses this to avoid reporting every use of its name as unknown.
fn declared_in_tokens(tokens: &[(usize, Token, usize)]) -> Vec<String> {
    tokens
        .windows(2)
        .filter_map(|w| match (&w[0].1, &w[1].1) {
            (
                Token::Event
                | Token::Probe
                | Token::Query
                | Token::Machine
                | Token::Processor
                | Token::Fn
                | Token::State,
                Token::Ident(name),
            ) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn parse_diagnostic(file: FileId, source: &str, e: &ParseError<usize, Token, Never>) -> Diagnostic {
    match e {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let exp = expected_list(expected);
            let mut d = Diagnostic::new(
                Code::E0104,
                format!("unexpected {tok}"),
                Label::new(
                    file,
                    Span::new(*l, *r),
                    if exp.is_empty() {
                        "not expected here".to_string()
                    } else {
                        format!("expected {exp}")
                    },
                ),
            );
            if let Some(help) = token_help(tok, expected) {
                d = d.with_help(help);
            }
            d
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let exp = expected_list(expected);
            let at = (*location).min(source.len());
            Diagnostic::new(
                Code::E0105,
                "unexpected end of file",
                Label::new(
                    file,
                    Span::new(at, at),
                    if exp.is_empty() {
                        "the file ends here".to_string()
                    } else {
                        format!("expected {exp}")
                    },
                ),
            )
            .with_help("the last item is not finished: look for a missing `}` or `)`")
        }
        ParseError::ExtraToken { token: (l, tok, r) } => Diagnostic::new(
            Code::E0104,
            format!("unexpected {tok}"),
            Label::new(file, Span::new(*l, *r), "not expected here"),
        ),
        ParseError::InvalidToken { location } => Diagnostic::new(
            Code::E0101,
            "invalid character",
            Label::new(
                file,
                Span::new(*location, *location + 1),
                "not part of any token",
            ),
        ),
        ParseError::User { error } => match *error {},
    }
}

fn token_help(tok: &Token, expected: &[String]) -> Option<String> {
    let expects = |s: &str| expected.iter().any(|e| e.trim_matches('"') == s);
    if tok.is_keyword() && expects("Ident") {
        return Some(format!(
            "`{}` is a reserved word; pick another name (a field can still read the attribute `{}` with `@attr(\"{}\")`)",
            tok.text(),
            tok.text(),
            tok.text()
        ));
    }
    match tok {
        Token::Assign if expects("==") => Some("to compare, use `==`".into()),
        Token::Semi => Some("statements need no `;`: put each on its own line".into()),
        _ if expects(",") && expects("}") => Some("separate fields with `,`".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> SourceFileAst {
        let p = parse(FileId(0), src);
        assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
        p.ast
    }

    fn codes(src: &str) -> Vec<Code> {
        parse(FileId(0), src)
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn parses_the_design_example() {
        let ast = parse_ok(
            r#"
/// Emitted when hashing starts.
event LogStartingFileHash { fileName: string @pii, }
event LogEndFileHash = "Contoso.LogEndFileHash" { fileName: string @pii, hashValue: string }
query files_hashed = LogEndFileHash
    | where len(fileName) > 0
    | summarize files = count() by ext = extension(fileName) every 1m
    | emit metric "imagesvc.files_hashed"
suppress LogStartingFileHash
redact LogEndFileHash.fileName with hash
machine slow_hash per event.thread_id max 10_000 {
    state Idle
    state Hashing { started: timestamp }
    on LogStartingFileHash in Idle -> Hashing { started = event.time }
    on LogEndFileHash in Hashing when event.time - started > 2s -> Idle {
        emit log SlowHash { took: event.time - started }
        trigger cpu_sample(for: 30s) limit 1 per 10m
    }
    on LogEndFileHash in Hashing -> Idle
    after 60s in Hashing -> Idle { trigger memory_dump() limit 1 per 1h }
}
processor verify_hash {
    var mismatches: int = 0
    on LogEndFileHash when sample(1%) {
        let actual = file.sha256(event.fileName)
        if actual != event.hashValue {
            mismatches += 1
            emit log ErrorInProductionHash { productHash: event.hashValue, comparisonHash: actual }
            trigger flight_recorder.snapshot() limit 1 per 1h
        } else if let x = event.size { } else { }
        for i in 0..10 { }
    }
}
"#,
        );
        assert_eq!(ast.items.len(), 7);
        let Item::Event(e) = &ast.items[0] else {
            panic!()
        };
        assert_eq!(e.doc.as_deref(), Some("Emitted when hashing starts."));
        assert_eq!(
            ast.items[1].name().map(|n| n.name.as_str()),
            Some("LogEndFileHash")
        );
    }

    #[test]
    fn precedence() {
        let ast = parse_ok("fn f() -> bool { return a ?? 1 + 2 > 3 || !b && c }");
        let Item::Fn(f) = &ast.items[0] else { panic!() };
        let StmtKind::Return(Some(e)) = &f.body.stmts[0].kind else {
            panic!()
        };
        let ExprKind::Binary(BinaryOp::Or, lhs, _) = &e.kind else {
            panic!("{e:?}")
        };
        let ExprKind::Binary(BinaryOp::Gt, co, _) = &lhs.kind else {
            panic!("{lhs:?}")
        };
        let ExprKind::Binary(BinaryOp::Coalesce, _, sum) = &co.kind else {
            panic!()
        };
        assert!(matches!(sum.kind, ExprKind::Binary(BinaryOp::Add, _, _)));
    }

    #[test]
    fn recovers_and_reports_each_error() {
        let src = "event A { x: }\nevent B { y: int }\nquery q = B | where y > | emit metric \"m\"\nmachine m { state S on X in S -> }\n";
        let c = codes(src);
        assert_eq!(c.len(), 3, "{c:?}");
        let p = parse(FileId(0), src);
        assert!(
            p.ast
                .items
                .iter()
                .any(|i| i.name().is_some_and(|n| n.name == "B"))
        );
    }

    #[test]
    fn assign_in_a_condition_is_one_error_read_as_eq() {
        let src = "query q = R\n    | where status = 500\n    | emit log E\n";
        let p = parse(FileId(0), src);
        let c: Vec<Code> = p.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(c, vec![Code::E0104]);
        let d = &p.diagnostics[0];
        assert_eq!(d.help.as_deref(), Some("to compare, use `==`"));
        assert_eq!(&src[d.primary.span.start..d.primary.span.end], "=");
        let Item::Query(q) = &p.ast.items[0] else {
            panic!("{:?}", p.ast.items)
        };
        assert_eq!(q.stages.len(), 2, "the query goes on after the slip");
        let StageKind::Where(e) = &q.stages[0].kind else {
            panic!("{:?}", q.stages[0])
        };
        assert!(matches!(e.kind, ExprKind::Binary(BinaryOp::Eq, _, _)));
        assert!(matches!(q.stages[1].kind, StageKind::EmitLog(_)));

        // Every condition position recovers the same way.
        for src in [
            "fn f(x: int) -> int { if x = 1 { return 1 } return 0 }",
            "machine m { state A state B on E in A when event.x = 1 -> B }",
            "processor p { on E when event.x = 1 { } }",
            "suppress E when event.x = 1",
        ] {
            assert_eq!(codes(src), vec![Code::E0104], "{src}");
        }
        // Assignments and named columns keep their `=`.
        parse_ok("fn f() -> int { var x = 1\n x = 2\n return x }");
        parse_ok("query q = R | extend a = 1 | summarize n = count() | emit metric \"m\"");
        // A second mistake right after the slip is a cascade of it.
        assert_eq!(
            codes("query q = R | where a = = 1 | emit log E"),
            vec![Code::E0104]
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!(
            "fn f() -> int {{ return {}1{} }}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(codes(&src).is_empty(), "parentheses add no depth");
        let src = format!("fn f() -> int {{ return {}1{} }}", "-".repeat(10_000), "");
        assert_eq!(codes(&src), vec![Code::E0107]);
        let src = format!("fn f() -> int {{ return 1{} }}", " + 1".repeat(100_000));
        assert_eq!(codes(&src), vec![Code::E0107]);
        let src = format!(
            "fn f() -> int {{ {} }}",
            "if true { ".repeat(5_000) + &"}".repeat(5_000)
        );
        assert_eq!(codes(&src), vec![Code::E0107]);
        let src = format!(
            "fn f() -> int {{ return {}1{} }}",
            "f(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert_eq!(codes(&src), vec![Code::E0107]);
    }

    #[test]
    fn garbage_and_empty_input() {
        assert!(codes("").is_empty());
        assert!(codes("// only a comment").is_empty());
        assert!(!codes("\u{0}\u{1}}}}{{{)(*&^%$#@!").is_empty());
        assert!(codes(&"}".repeat(10_000)).len() <= MAX_SYNTAX_ERRORS + 1);
    }
}
