//! Rendering diagnostics: ariadne for terminals, JSON for tools.
//!
//! This is the only place that formats a diagnostic. The JSON form is the
//! contract for editors and scripts; its field names are documented in
//! `docs/diagnostics.md` and must stay stable.

use std::collections::HashSet;

use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};
use serde_json::{Value, json};

use crate::{Diagnostic, FileId, Severity, SourceMap};

type ASpan = (String, std::ops::Range<usize>);

/// Renders diagnostics as human-readable text, one report after another.
pub fn render_human(diagnostics: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let used: HashSet<FileId> = diagnostics
        .iter()
        .flat_map(|d| std::iter::once(d.primary.file).chain(d.secondary.iter().map(|l| l.file)))
        .collect();
    let mut cache = ariadne::sources(
        sources
            .files()
            .filter(|(id, _)| used.contains(id))
            .map(|(_, f)| (f.name.clone(), f.text.as_str()))
            .collect::<Vec<_>>(),
    );
    let mut out = Vec::new();
    for d in diagnostics {
        let report = build_report(d, sources, color);
        // Writing to a Vec cannot fail; a missing file would be a bug in the
        // caller, and the message still says what went wrong.
        if let Err(e) = report.write(&mut cache, &mut out) {
            out.extend_from_slice(
                format!("{}[{}]: {} ({e})\n", d.severity.as_str(), d.code, d.message).as_bytes(),
            );
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn clamp(d_span: crate::Span, text: &str) -> std::ops::Range<usize> {
    let end = d_span.end.min(text.len());
    let start = d_span.start.min(end);
    start..end
}

fn build_report<'a>(d: &Diagnostic, sources: &SourceMap, color: bool) -> Report<'a, ASpan> {
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let primary_file = sources.get(d.primary.file);
    let span: ASpan = (
        primary_file.name.clone(),
        clamp(d.primary.span, &primary_file.text),
    );
    let primary_color = match d.severity {
        Severity::Error => Color::Red,
        Severity::Warning => Color::Yellow,
    };
    let mut builder = Report::build(kind, span.clone())
        .with_code(d.code)
        .with_message(&d.message)
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        );
    // ariadne starts a new snippet whenever a label lies above the one
    // before it, repeating the file header; ordering the labels by file and
    // position keeps each file's labels in one snippet.
    let mut labels: Vec<(FileId, crate::Span, &str, Color)> = vec![(
        d.primary.file,
        d.primary.span,
        &d.primary.message,
        primary_color,
    )];
    labels.extend(
        d.secondary
            .iter()
            .map(|l| (l.file, l.span, l.message.as_str(), Color::Blue)),
    );
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| {
        (
            labels[i].0 != d.primary.file,
            labels[i].0,
            labels[i].1.start,
        )
    });
    for (rank, &i) in order.iter().enumerate() {
        let (file, lspan, message, color) = labels[i];
        let f = sources.get(file);
        builder = builder.with_label(
            ALabel::new((f.name.clone(), clamp(lspan, &f.text)))
                .with_message(message)
                .with_color(color)
                .with_order(rank as i32),
        );
    }
    for n in &d.notes {
        builder = builder.with_note(n);
    }
    if let Some(h) = &d.help {
        builder = builder.with_help(h);
    }
    builder.finish()
}

/// One diagnostic as a JSON object (the `--format json` schema).
pub fn to_json_value(d: &Diagnostic, sources: &SourceMap) -> Value {
    let label = |l: &crate::Label| {
        let f = sources.get(l.file);
        let start = f.line_col(l.span.start);
        let end = f.line_col(l.span.end);
        json!({
            "file": f.name,
            "line": start.line,
            "column": start.column,
            "end_line": end.line,
            "end_column": end.column,
            "span": { "start": l.span.start, "end": l.span.end },
            "message": l.message,
        })
    };
    let primary = label(&d.primary);
    json!({
        "code": d.code.as_str(),
        "severity": d.severity.as_str(),
        "message": d.message,
        "file": primary["file"],
        "line": primary["line"],
        "column": primary["column"],
        "span": primary["span"],
        "labels": std::iter::once(primary.clone())
            .chain(d.secondary.iter().map(label))
            .collect::<Vec<_>>(),
        "notes": d.notes,
        "help": d.help,
    })
}

/// All diagnostics as a JSON array, pretty-printed.
pub fn render_json(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let values: Vec<Value> = diagnostics
        .iter()
        .map(|d| to_json_value(d, sources))
        .collect();
    serde_json::to_string_pretty(&values).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Code, Label, Span};

    #[test]
    fn renders_code_labels_and_help() {
        let mut map = SourceMap::new();
        let f = map.add("a.dt", "query q = Nope | emit metric \"x\"\n");
        let d = Diagnostic::new(
            Code::E0201,
            "unknown event `Nope`",
            Label::new(f, Span::new(10, 14), "not declared"),
        )
        .with_help("declare it with `event Nope { ... }`");
        let text = render_human(std::slice::from_ref(&d), &map, false);
        assert!(
            text.contains("[E0201] Error: unknown event `Nope`"),
            "{text}"
        );
        assert!(text.contains("not declared"), "{text}");
        assert!(text.contains("Help: declare it"), "{text}");
        let json = to_json_value(&d, &map);
        assert_eq!(json["code"], "E0201");
        assert_eq!(json["line"], 1);
        assert_eq!(json["column"], 11);
        assert_eq!(json["span"]["start"], 10);
    }

    #[test]
    fn out_of_range_spans_do_not_panic() {
        let mut map = SourceMap::new();
        let f = map.add("a.dt", "");
        let d = Diagnostic::new(
            Code::E0105,
            "unexpected end of file",
            Label::new(f, Span::new(5, 9), "here"),
        );
        let _ = render_human(std::slice::from_ref(&d), &map, true);
        let _ = to_json_value(&d, &map);
    }
}
