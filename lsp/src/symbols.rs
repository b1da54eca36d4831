//! Document symbols (the outline) and semantic tokens.
//!
//! The outline is the items of the file with their members: an event's
//! fields, a machine's states, variables and transitions, a processor's
//! variables, functions and handlers, a query's stages.
//!
//! Semantic tokens come from the lexer (keywords, literals, operators), the
//! comments between tokens, and the index, which says what each identifier
//! names: an event is a type, a field a property, a state an enum member, a
//! catalog entry a default-library function, and so on.

use dtc_diagnostics::{SourceFile, Span};
use dtc_syntax::ast::*;
use dtc_syntax::lexer::Token;
use lsp_types::{
    DocumentSymbol, SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend,
    SymbolKind as LspKind,
};

use crate::index::{Builtin, SymbolKind, Target};
use crate::world::{Analyzed, range};

pub fn outline(a: &Analyzed) -> Vec<DocumentSymbol> {
    let file = a.root();
    let Some(unit) = a.out.units.iter().find(|u| u.file == a.out.root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &unit.ast.items {
        let (name, kind, detail, children) = match item {
            Item::Event(e) => (
                e.name.clone(),
                LspKind::STRUCT,
                "event".to_string(),
                e.fields
                    .iter()
                    .map(|f| {
                        sym(
                            file,
                            &f.name,
                            LspKind::FIELD,
                            crate::index::type_text(&f.ty),
                            f.span,
                            vec![],
                        )
                    })
                    .collect(),
            ),
            Item::Probe(p) => (p.name.clone(), LspKind::INTERFACE, p.kind.joined(), vec![]),
            Item::Query(q) => (
                q.name.clone(),
                LspKind::FUNCTION,
                format!("query over {}", q.source.name),
                vec![],
            ),
            Item::Machine(m) => (
                m.name.clone(),
                LspKind::CLASS,
                "machine".to_string(),
                m.members
                    .iter()
                    .filter_map(|member| match member {
                        MachineMember::State(s) => Some(sym(
                            file,
                            &s.name,
                            LspKind::ENUM_MEMBER,
                            "state".into(),
                            s.span,
                            vec![],
                        )),
                        MachineMember::Var(v) => Some(var(file, v)),
                        MachineMember::On(t) => Some(sym(
                            file,
                            &t.event,
                            LspKind::EVENT,
                            format!("-> {}", t.target.name),
                            t.span,
                            vec![],
                        )),
                        MachineMember::After(t) => Some(sym(
                            file,
                            &t.target,
                            LspKind::EVENT,
                            format!("after, in {}", t.from.name),
                            t.span,
                            vec![],
                        )),
                        MachineMember::Error(_) => None,
                    })
                    .collect(),
            ),
            Item::Processor(p) => (
                p.name.clone(),
                LspKind::CLASS,
                "processor".to_string(),
                p.members
                    .iter()
                    .filter_map(|member| match member {
                        ProcessorMember::Var(v) => Some(var(file, v)),
                        ProcessorMember::Fn(f) => Some(sym(
                            file,
                            &f.name,
                            LspKind::FUNCTION,
                            "fn".into(),
                            f.span,
                            vec![],
                        )),
                        ProcessorMember::Handler(h) => Some(sym(
                            file,
                            &h.event,
                            LspKind::EVENT,
                            "on".into(),
                            h.span,
                            vec![],
                        )),
                        ProcessorMember::Error(_) => None,
                    })
                    .collect(),
            ),
            Item::Fn(f) => (f.name.clone(), LspKind::FUNCTION, "fn".to_string(), vec![]),
            Item::Shaping(s) => {
                let (word, ident) = match &s.kind {
                    ShapingKind::Suppress { target, .. } => ("suppress", &target.event),
                    ShapingKind::Redact { target, .. } => ("redact", &target.event),
                    ShapingKind::Sample { event, .. } => ("sample", event),
                    ShapingKind::Limit { event, .. } => ("limit", event),
                };
                let text = file.text.get(s.span.range()).unwrap_or(word).to_string();
                let mut name = ident.clone();
                name.name = text.lines().next().unwrap_or(word).to_string();
                (name, LspKind::OPERATOR, word.to_string(), vec![])
            }
            Item::Import(i) => {
                let name = Ident {
                    name: format!("import {}", i.path.value),
                    span: i.path.span,
                };
                (name, LspKind::MODULE, String::new(), vec![])
            }
            Item::Error(_) => continue,
        };
        out.push(sym(file, &name, kind, detail, item.span(), children));
    }
    out
}

fn var(file: &SourceFile, v: &VarDecl) -> DocumentSymbol {
    let detail =
        v.ty.as_ref()
            .map(crate::index::type_text)
            .unwrap_or_default();
    sym(file, &v.name, LspKind::VARIABLE, detail, v.span, vec![])
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be given
fn sym(
    file: &SourceFile,
    name: &Ident,
    kind: LspKind,
    detail: String,
    full: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    // The selection must lie inside the full range.
    let full = full.to(name.span);
    DocumentSymbol {
        name: if name.name.is_empty() {
            "?".to_string()
        } else {
            name.name.clone()
        },
        detail: (!detail.is_empty()).then_some(detail),
        kind,
        tags: None,
        deprecated: None,
        range: range(file, full),
        selection_range: range(file, name.span),
        children: (!children.is_empty()).then_some(children),
    }
}

/// The token types, in legend order.
pub const TOKEN_TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::TYPE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::ENUM_MEMBER,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::DECORATOR,
    SemanticTokenType::NAMESPACE,
    SemanticTokenType::CLASS,
];

pub const TOKEN_MODIFIERS: &[SemanticTokenModifier] = &[
    SemanticTokenModifier::DECLARATION,
    SemanticTokenModifier::READONLY,
    SemanticTokenModifier::DEFAULT_LIBRARY,
    SemanticTokenModifier::DOCUMENTATION,
];

pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TOKEN_TYPES.to_vec(),
        token_modifiers: TOKEN_MODIFIERS.to_vec(),
    }
}

const KEYWORD: u32 = 0;
const STRING: u32 = 1;
const NUMBER: u32 = 2;
const COMMENT: u32 = 3;
const OPERATOR: u32 = 4;
const TYPE: u32 = 5;
const PROPERTY: u32 = 6;
const ENUM_MEMBER: u32 = 7;
const VARIABLE: u32 = 8;
const FUNCTION: u32 = 9;
const PARAMETER: u32 = 10;
const DECORATOR: u32 = 11;
const NAMESPACE: u32 = 12;
const CLASS: u32 = 13;

const DECLARATION: u32 = 1;
const DEFAULT_LIBRARY: u32 = 1 << 2;
const DOCUMENTATION: u32 = 1 << 3;

const BUILTIN_TYPES: &[&str] = &[
    "bool",
    "int",
    "float",
    "string",
    "bytes",
    "duration",
    "timestamp",
    "percent",
    "dyn",
    "map",
    "histogram",
];

/// Semantic tokens of the whole document, encoded as LSP wants them.
pub fn semantic_tokens(a: &Analyzed) -> Vec<SemanticToken> {
    let file = a.root();
    let text = &file.text;
    let trivia = dtc_fmt::trivia::scan(text);
    // (start, end, type, modifiers), in order.
    let mut raw: Vec<(usize, usize, u32, u32)> = Vec::new();
    let mut comments = Vec::new();
    let mut prev_end = 0;
    for tok in &trivia.tokens {
        // Comments lie in the gap before each token; find them in the text.
        comment_spans(text, prev_end, tok.start, &mut comments);
        prev_end = tok.end;
        let class = match &tok.token {
            Token::Str(_) | Token::UnterminatedStr => Some((STRING, 0)),
            Token::Int(_) | Token::Float(_) | Token::PercentLit(_) | Token::UnitLit(_) => {
                Some((NUMBER, 0))
            }
            Token::Ident(name) => Some(ident(a, tok.start, tok.end, name)),
            Token::At => Some((DECORATOR, 0)),
            Token::BadLiteral => None,
            t if t.is_keyword() => match a.index.at(a.out.root, tok.start) {
                // A keyword used as a field name (`event.state`).
                Some(o) if o.span.start == tok.start && o.span.end == tok.end => {
                    Some(ident(a, tok.start, tok.end, t.text()))
                }
                _ => Some((KEYWORD, 0)),
            },
            Token::LParen
            | Token::RParen
            | Token::LBrace
            | Token::RBrace
            | Token::LBracket
            | Token::RBracket
            | Token::Comma
            | Token::Colon
            | Token::Dot => None,
            _ => Some((OPERATOR, 0)),
        };
        if let Some((ty, mods)) = class {
            raw.push((tok.start, tok.end, ty, mods));
        }
    }
    comment_spans(text, prev_end, text.len(), &mut comments);
    raw.extend(comments);
    raw.sort_by_key(|r| r.0);
    encode(file, &raw)
}

fn ident(a: &Analyzed, start: usize, end: usize, name: &str) -> (u32, u32) {
    let occ = a
        .index
        .at(a.out.root, start)
        .filter(|o| o.span.start == start && o.span.end == end);
    let Some(occ) = occ else {
        if BUILTIN_TYPES.contains(&name) {
            return (TYPE, DEFAULT_LIBRARY);
        }
        return (VARIABLE, 0);
    };
    let decl = if occ.def { DECLARATION } else { 0 };
    match occ.target {
        Target::Symbol(id) => {
            let ty = match a.index.symbols[id].kind {
                SymbolKind::Event => TYPE,
                SymbolKind::Field => PROPERTY,
                SymbolKind::State => ENUM_MEMBER,
                SymbolKind::Probe => NAMESPACE,
                SymbolKind::Query | SymbolKind::Machine | SymbolKind::Processor => CLASS,
                SymbolKind::Function => FUNCTION,
                SymbolKind::Parameter => PARAMETER,
                SymbolKind::Variable | SymbolKind::Column => VARIABLE,
            };
            (ty, decl)
        }
        Target::Builtin(b) => match b {
            Builtin::Function(_) | Builtin::Aggregate(_) | Builtin::Action(_) => {
                (FUNCTION, DEFAULT_LIBRARY)
            }
            Builtin::Probe(_) => (NAMESPACE, DEFAULT_LIBRARY),
            Builtin::Annotation(_) => (DECORATOR, DEFAULT_LIBRARY),
            Builtin::Redaction(_) => (ENUM_MEMBER, DEFAULT_LIBRARY),
            Builtin::StandardField(_) => (PROPERTY, DEFAULT_LIBRARY),
        },
    }
}

/// The comments in `text[from..to]` (a gap between tokens).
fn comment_spans(text: &str, from: usize, to: usize, out: &mut Vec<(usize, usize, u32, u32)>) {
    let Some(gap) = text.get(from..to) else {
        return;
    };
    let mut i = 0;
    while i < gap.len() {
        let rest = &gap[i..];
        if rest.starts_with("//") {
            let len = rest.find('\n').unwrap_or(rest.len());
            let doc = rest.starts_with("///");
            out.push((
                from + i,
                from + i + len,
                COMMENT,
                if doc { DOCUMENTATION } else { 0 },
            ));
            i += len;
        } else if let Some(body) = rest.strip_prefix("/*") {
            let len = body.find("*/").map_or(rest.len(), |e| e + 4);
            out.push((from + i, from + i + len, COMMENT, 0));
            i += len;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// Relative encoding; a token over several lines (a block comment) is cut
/// into one token per line.
fn encode(file: &SourceFile, raw: &[(usize, usize, u32, u32)]) -> Vec<SemanticToken> {
    let mut out = Vec::with_capacity(raw.len());
    let (mut last_line, mut last_col) = (0u32, 0u32);
    let mut push = |start: usize, end: usize, ty: u32, mods: u32| {
        let s = crate::world::position(file, start);
        let e = crate::world::position(file, end);
        if e.line != s.line || e.character <= s.character {
            return;
        }
        let delta_line = s.line - last_line;
        let delta_start = if delta_line == 0 {
            s.character - last_col
        } else {
            s.character
        };
        out.push(SemanticToken {
            delta_line,
            delta_start,
            length: e.character - s.character,
            token_type: ty,
            token_modifiers_bitset: mods,
        });
        last_line = s.line;
        last_col = s.character;
    };
    for &(start, end, ty, mods) in raw {
        let piece = file.text.get(start..end).unwrap_or("");
        if piece.contains('\n') {
            let mut at = start;
            for raw_line in piece.split('\n') {
                let line = raw_line.trim_end_matches('\r');
                push(at, at + line.len(), ty, mods);
                at += raw_line.len() + 1;
            }
        } else {
            push(start, end, ty, mods);
        }
    }
    out
}
