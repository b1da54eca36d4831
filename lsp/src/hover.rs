//! Hover: what is under the cursor.
//!
//! On a name the index resolves: its declaration as written, its docs, and
//! for a field its type and annotations; for a catalog entry (function,
//! aggregate, action, probe kind) its signature, its doc line, its effect
//! and risk vector from `stdlib/src/risk.rs` and why it scores so. On any
//! other expression: its type, from the checker.

use dtc_stdlib::risk::{Kind, profile};
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind};

use crate::index::{Builtin, Symbol, SymbolKind, Target};
use crate::world::{Analyzed, range};

pub fn hover(a: &Analyzed, offset: usize) -> Option<Hover> {
    let root = a.out.root;
    let file = a.root();
    if let Some(occ) = a.index.at(root, offset) {
        let text = match occ.target {
            Target::Symbol(id) => symbol(a, &a.index.symbols[id]),
            Target::Builtin(b) => builtin(b),
        };
        let ty = expression_type(a, occ.span.start, occ.span.end);
        let text = match (ty, occ.target) {
            (Some(t), Target::Symbol(id))
                if matches!(
                    a.index.symbols[id].kind,
                    SymbolKind::Variable | SymbolKind::Parameter | SymbolKind::Column
                ) && a.index.symbols[id].ty.is_none() =>
            {
                format!("{text}\n\n---\ntype: `{t}`")
            }
            _ => text,
        };
        return Some(markdown(text, Some(range(file, occ.span))));
    }
    // The innermost typed expression around the cursor.
    let (span, ty) = a
        .out
        .analysis
        .types
        .iter()
        .filter(|(f, s, _)| *f == root && s.start <= offset && offset < s.end)
        .min_by_key(|(_, s, _)| s.len())
        .map(|(_, s, t)| (*s, t))?;
    Some(markdown(
        format!("```dt\n{ty}\n```"),
        Some(range(file, span)),
    ))
}

/// The type of the expression that is exactly this span, if typed.
fn expression_type(a: &Analyzed, start: usize, end: usize) -> Option<&str> {
    a.out
        .analysis
        .types
        .iter()
        .find(|(f, s, _)| *f == a.out.root && s.start == start && s.end == end)
        .map(|(_, _, t)| t.as_str())
}

fn markdown(value: String, range: Option<lsp_types::Range>) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range,
    }
}

/// A declaration as written in its file, trimmed to its first lines for
/// long bodies.
fn source_of(a: &Analyzed, s: &Symbol) -> String {
    let text = &a.out.sources.get(s.file).text;
    let body = text.get(s.full.range()).unwrap_or("");
    let lines: Vec<&str> = body.lines().collect();
    if lines.len() > 12 {
        let mut head = lines[..10].join("\n");
        head.push_str("\n    …");
        head
    } else {
        body.to_string()
    }
}

pub fn symbol(a: &Analyzed, s: &Symbol) -> String {
    let mut out = String::new();
    let file_name = &a.out.sources.get(s.file).name;
    match s.kind {
        SymbolKind::Event if s.implied => {
            out.push_str(&format!(
                "```dt\nemit log {}\n```\nA log this program emits; no `event` declares it.",
                s.name
            ));
            let fields = a.index.fields_of(&s.name);
            if !fields.is_empty() {
                out.push_str("\n\nFields:");
                for f in fields {
                    out.push_str(&format!(
                        "\n- `{}: {}`",
                        f.name,
                        f.ty.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
        SymbolKind::Event
        | SymbolKind::Probe
        | SymbolKind::State
        | SymbolKind::Field
        | SymbolKind::Variable
        | SymbolKind::Parameter
        | SymbolKind::Column => {
            let source = match s.kind {
                SymbolKind::Field | SymbolKind::Variable | SymbolKind::Parameter
                    if s.ty.is_some() =>
                {
                    // The declaration line, with the normalized type.
                    let written = source_of(a, s);
                    let annotations: Vec<&str> = written
                        .split_whitespace()
                        .filter(|w| w.starts_with('@'))
                        .collect();
                    let prefix = match s.kind {
                        SymbolKind::Field => String::new(),
                        SymbolKind::Parameter => "param ".to_string(),
                        _ => "var ".to_string(),
                    };
                    let mut line =
                        format!("{prefix}{}: {}", s.name, s.ty.as_deref().unwrap_or("?"));
                    for an in annotations {
                        line.push(' ');
                        line.push_str(an.trim_end_matches(','));
                    }
                    line
                }
                SymbolKind::Column => format!("{} = …", s.name),
                SymbolKind::Variable | SymbolKind::Parameter => s.name.clone(),
                _ => source_of(a, s),
            };
            out.push_str(&format!("```dt\n{source}\n```"));
            if let Some(c) = &s.container {
                let what = match s.kind {
                    SymbolKind::Field => "field of event",
                    SymbolKind::State => "state of machine",
                    _ => "in",
                };
                out.push_str(&format!("\n{what} `{c}`"));
            } else {
                out.push_str(&format!("\n{}", s.kind.describe()));
            }
            if s.kind == SymbolKind::Field {
                let written = source_of(a, s);
                for an in written.split_whitespace().filter(|w| w.starts_with('@')) {
                    let name = an
                        .trim_start_matches('@')
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or("");
                    if let Some(known) = dtc_stdlib::annotations::get(name) {
                        out.push_str(&format!("\n\n`@{}`: {}", known.name, known.doc));
                    }
                }
            }
        }
        SymbolKind::Query | SymbolKind::Machine | SymbolKind::Processor => {
            out.push_str(&format!("```dt\n{} {}\n```", s.kind.describe(), s.name));
            if let Some(p) = profile(s.kind.describe(), Kind::Processor) {
                out.push_str(&format!(
                    "\n\nA {}: {}. Base risk: {}.",
                    s.kind.describe(),
                    p.reason,
                    p.risk
                ));
            }
            if let Some(report) = &a.out.report
                && s.file == a.out.root
            {
                out.push_str(&format!(
                    "\n\nProgram risk: **{}** ({}).",
                    report.tier, report.vector
                ));
            }
        }
        SymbolKind::Function => {
            let text = source_of(a, s);
            let signature = text.split('{').next().unwrap_or(&text).trim_end();
            out.push_str(&format!("```dt\n{signature}\n```\nfunction"));
        }
    }
    if let Some(doc) = &s.doc {
        out.push_str(&format!("\n\n---\n{doc}"));
    }
    if s.file != a.out.root {
        out.push_str(&format!("\n\n_declared in `{file_name}`_"));
    }
    out
}

pub fn builtin(b: Builtin) -> String {
    let (sig, kind, what) = match b {
        Builtin::Function(n) => (dtc_stdlib::functions::get(n), Kind::Function, "function"),
        Builtin::Aggregate(n) => (dtc_stdlib::aggregates::get(n), Kind::Aggregate, "aggregate"),
        Builtin::Action(n) => (dtc_stdlib::actions::get(n), Kind::Action, "action"),
        Builtin::Probe(n) => (dtc_stdlib::probes::get(n), Kind::Probe, "probe kind"),
        Builtin::Annotation(n) => {
            return dtc_stdlib::annotations::get(n)
                .map(|a| format!("```dt\n@{}\n```\nannotation\n\n---\n{}", a.name, a.doc))
                .unwrap_or_default();
        }
        Builtin::Redaction(n) => {
            return dtc_stdlib::redaction::get(n)
                .map(|r| {
                    format!(
                        "```dt\nwith {}\n```\nredaction method\n\n---\n{}",
                        r.name, r.doc
                    )
                })
                .unwrap_or_default();
        }
        Builtin::StandardField(n) => {
            return dtc_stdlib::fields::get(n)
                .map(|f| {
                    let ty = dtc_stdlib::fields::ty(f.name)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    format!(
                        "```dt\n{}: {ty}\n```\nstandard field of every event (OTLP `{}`)\n\n---\n{}",
                        f.name, f.otlp, f.doc
                    )
                })
                .unwrap_or_default();
        }
    };
    let Some(sig) = sig else {
        return String::new();
    };
    let mut out = format!(
        "```dt\n{}\n```\nstandard library {what}\n\n---\n{}",
        sig.display(),
        sig.doc
    );
    if let Some(p) = profile(sig.name, kind) {
        out.push_str(&format!(
            "\n\n**Effect:** {}  \n**Risk:** {} (tier: {})  \n_{}_",
            p.effect,
            p.risk,
            p.risk.tier(),
            p.reason
        ));
        if p.declassifies {
            out.push_str(
                "\n\nDeclassifies: its result carries none of its arguments' personal data.",
            );
        }
    }
    out
}
