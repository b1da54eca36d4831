//! Completion: what may be written at the cursor.
//!
//! The context comes from the text just before the cursor (the document is
//! often mid-edit and does not parse there) and from the tree around it
//! (which machine or handler the cursor is in, from the last check):
//!
//! - after `event.`: the fields of the event in scope, and the standard
//!   fields every event has; after `Event.`: that event's fields; after
//!   `file.` or `flight_recorder.`: the catalog entries under that name;
//! - after `@`: annotations; after `with`: redaction methods; after
//!   `trigger`: actions with their signatures;
//! - after `->`, `in` or `is` inside a machine: its states;
//! - after `on`, `suppress`, `redact`, `sample`, `limit`, `log` or `query
//!   name =`: event names;
//! - after `:`: type names;
//! - anywhere else: keywords, events, functions (aggregates in `summarize`),
//!   variables of the enclosing item and the machine's states.

use dtc_syntax::ast::{Item, MachineMember, ProcessorMember};
use dtc_syntax::lexer::KEYWORDS;
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionItemLabelDetails, Documentation, MarkupContent,
    MarkupKind,
};

use crate::index::SymbolKind;
use crate::world::Analyzed;

const TYPES: &[&str] = &[
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
];

pub fn complete(a: &Analyzed, text: &str, offset: usize) -> Vec<CompletionItem> {
    let offset = floor_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let head = &before[..word_start];
    let ctx = Context::at(a, offset);
    let mut items = Vec::new();

    if let Some(base_end) = head.strip_suffix('.') {
        let base_start = base_end
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let base = &base_end[base_start..];
        if base == "event" {
            // Mid-edit, the handler may not parse: fall back to the nearest
            // `on Event` before the cursor.
            if let Some(ev) = ctx.event.clone().or_else(|| handler_event(head)) {
                fields(a, &ev, &mut items);
            }
            for f in dtc_stdlib::fields::STANDARD_FIELDS {
                let ty = dtc_stdlib::fields::ty(f.name)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                items.push(item(f.name, CompletionItemKind::FIELD, &ty, f.doc, "2"));
            }
        } else if a.index.event(base).is_some() {
            fields(a, base, &mut items);
        } else {
            let prefix = format!("{base}.");
            let in_trigger = last_word(head.trim_end_matches(|c: char| c != ' ' && c != '\t'))
                == Some("trigger");
            for sig in catalog() {
                if let Some(rest) = sig.name.strip_prefix(&prefix) {
                    if in_trigger != is_action(sig.name) && in_trigger {
                        continue;
                    }
                    items.push(item(
                        rest,
                        CompletionItemKind::FUNCTION,
                        &sig.display(),
                        sig.doc,
                        "1",
                    ));
                }
            }
        }
        return items;
    }
    if head.ends_with('@') {
        for an in dtc_stdlib::annotations::ANNOTATIONS {
            items.push(item(
                an.name,
                CompletionItemKind::PROPERTY,
                "annotation",
                an.doc,
                "1",
            ));
        }
        return items;
    }
    let prev = last_word(head);
    let trimmed = head.trim_end();
    match prev {
        Some("with") => {
            for r in dtc_stdlib::redaction::REDACTIONS {
                items.push(item(
                    r.name,
                    CompletionItemKind::ENUM_MEMBER,
                    "redaction",
                    r.doc,
                    "1",
                ));
            }
            return items;
        }
        Some("trigger") => {
            for sig in dtc_stdlib::actions::ACTIONS {
                items.push(item(
                    sig.name,
                    CompletionItemKind::FUNCTION,
                    &sig.display(),
                    sig.doc,
                    "1",
                ));
            }
            return items;
        }
        Some("in" | "is") if ctx.machine.is_some() => {
            states(a, ctx.machine.as_deref(), &mut items);
            return items;
        }
        Some("on" | "suppress" | "redact" | "sample" | "log") => {
            events(a, &mut items);
            return items;
        }
        Some("limit") if ctx.top_level => {
            events(a, &mut items);
            return items;
        }
        _ => {}
    }
    if trimmed.ends_with("->") && ctx.machine.is_some() {
        states(a, ctx.machine.as_deref(), &mut items);
        return items;
    }
    if trimmed.ends_with('=') && !trimmed.ends_with("==") && prev_is_query_head(trimmed) {
        events(a, &mut items);
        return items;
    }
    if trimmed.ends_with(':') {
        for t in TYPES {
            items.push(item(t, CompletionItemKind::TYPE_PARAMETER, "type", "", "1"));
        }
        if !ctx.top_level {
            // `name: value` in an emit or a call: values come next.
            everything(a, &ctx, trimmed, &mut items);
        }
        return items;
    }
    everything(a, &ctx, trimmed, &mut items);
    items
}

fn everything(a: &Analyzed, ctx: &Context, head: &str, items: &mut Vec<CompletionItem>) {
    for kw in KEYWORDS {
        items.push(item(kw, CompletionItemKind::KEYWORD, "keyword", "", "3"));
    }
    events(a, items);
    let in_summarize = head
        .rsplit('|')
        .next()
        .is_some_and(|stage| stage.trim_start().starts_with("summarize"));
    if in_summarize {
        for sig in dtc_stdlib::aggregates::AGGREGATES {
            items.push(item(
                sig.name,
                CompletionItemKind::FUNCTION,
                &sig.display(),
                sig.doc,
                "1",
            ));
        }
    }
    for sig in dtc_stdlib::functions::FUNCTIONS {
        items.push(item(
            sig.name,
            CompletionItemKind::FUNCTION,
            &sig.display(),
            sig.doc,
            "2",
        ));
    }
    for f in a.index.functions() {
        items.push(item(
            &f.name,
            CompletionItemKind::FUNCTION,
            "fn",
            f.doc.as_deref().unwrap_or(""),
            "1",
        ));
    }
    for v in &ctx.variables {
        items.push(item(&v.0, CompletionItemKind::VARIABLE, &v.1, "", "0"));
    }
    if let Some(ev) = &ctx.event
        && ctx.fields_are_names
    {
        fields(a, ev, items);
    }
    if ctx.machine.is_some() {
        states(a, ctx.machine.as_deref(), items);
    }
}

/// The source event of a query being written at the end of `head`: the
/// last `query name = Source` when no other item starts after it.
fn query_head(head: &str) -> Option<String> {
    let start = head.rfind("query ")?;
    let rest = &head[start..];
    let after_item = rest.lines().skip(1).any(|l| {
        let w = l.split_whitespace().next().unwrap_or("");
        !l.starts_with(char::is_whitespace)
            && !w.is_empty()
            && !w.starts_with('|')
            && !w.starts_with("//")
    });
    if after_item {
        return None;
    }
    let mut words = rest["query ".len()..].split_whitespace();
    let _name = words.next()?;
    if words.next()? != "=" {
        return None;
    }
    let source: String = words
        .next()?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!source.is_empty()).then_some(source)
}

/// The event of the nearest `on Event` in the text before the cursor.
fn handler_event(head: &str) -> Option<String> {
    let words: Vec<&str> = head
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .rev()
        .find(|w| w[0] == "on")
        .map(|w| w[1].to_string())
}

fn prev_is_query_head(trimmed: &str) -> bool {
    let words: Vec<&str> = trimmed.split_whitespace().rev().take(3).collect();
    words.len() == 3 && words[0] == "=" && words[2] == "query"
        || words.first().is_some_and(|w| w.ends_with('=')) && words.get(2).copied() == Some("query")
}

fn is_action(name: &str) -> bool {
    dtc_stdlib::actions::get(name).is_some()
}

fn catalog() -> impl Iterator<Item = &'static dtc_stdlib::Signature> {
    dtc_stdlib::functions::FUNCTIONS
        .iter()
        .chain(dtc_stdlib::actions::ACTIONS)
}

fn last_word(head: &str) -> Option<&str> {
    head.split_whitespace().last()
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn item(
    label: &str,
    kind: CompletionItemKind,
    detail: &str,
    doc: &str,
    rank: &str,
) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then(|| detail.to_string()),
        label_details: (!detail.is_empty() && kind == CompletionItemKind::FUNCTION).then(|| {
            CompletionItemLabelDetails {
                detail: None,
                description: Some(detail.to_string()),
            }
        }),
        documentation: (!doc.is_empty()).then(|| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: doc.to_string(),
            })
        }),
        sort_text: Some(format!("{rank}{label}")),
        ..CompletionItem::default()
    }
}

fn fields(a: &Analyzed, event: &str, items: &mut Vec<CompletionItem>) {
    for f in a.index.fields_of(event) {
        items.push(item(
            &f.name,
            CompletionItemKind::FIELD,
            f.ty.as_deref().unwrap_or(""),
            f.doc.as_deref().unwrap_or(""),
            "0",
        ));
    }
}

fn events(a: &Analyzed, items: &mut Vec<CompletionItem>) {
    for e in a.index.events() {
        let detail = if e.implied { "emitted log" } else { "event" };
        items.push(item(
            &e.name,
            CompletionItemKind::STRUCT,
            detail,
            e.doc.as_deref().unwrap_or(""),
            "1",
        ));
    }
}

fn states(a: &Analyzed, machine: Option<&str>, items: &mut Vec<CompletionItem>) {
    let Some(m) = machine else { return };
    for s in a.index.states_of(m) {
        items.push(item(
            &s.name,
            CompletionItemKind::ENUM_MEMBER,
            "state",
            s.doc.as_deref().unwrap_or(""),
            "0",
        ));
    }
}

/// Where the cursor is in the tree of the last check.
#[derive(Debug, Default)]
struct Context {
    /// The event `event` stands for.
    event: Option<String>,
    /// Whether bare names are that event's fields (queries, shaping).
    fields_are_names: bool,
    machine: Option<String>,
    /// Not inside any item.
    top_level: bool,
    /// Variables declared before the cursor in the enclosing item, with
    /// their types.
    variables: Vec<(String, String)>,
}

impl Context {
    fn at(a: &Analyzed, offset: usize) -> Context {
        let mut ctx = Context {
            top_level: true,
            ..Context::default()
        };
        let Some(unit) = a.out.units.iter().find(|u| u.file == a.out.root) else {
            return ctx;
        };
        // The cursor may sit just past an item that ends at it.
        let inside = |s: dtc_diagnostics::Span| s.start < offset && offset <= s.end;
        // Mid-edit, the item being written may have been cut short by a
        // syntax error: the cursor belongs to the last item before it.
        let Some(item) = unit.ast.items.iter().rfind(|i| i.span().start < offset) else {
            return ctx;
        };
        let text = &a.root().text;
        let gap = text.get(item.span().end..offset).unwrap_or("");
        let written = text.get(item.span().start..offset).unwrap_or("");
        let unclosed = written.matches('{').count() > written.matches('}').count();
        let new_item = gap
            .split('\n')
            .skip(1)
            .any(|l| l.starts_with(|c: char| !c.is_whitespace()))
            || gap.contains("\n\n");
        if !inside(item.span()) && !unclosed && (new_item || gap.trim().is_empty()) {
            // After a finished item.
            if let Some(q) = query_head(text.get(..offset).unwrap_or("")) {
                ctx.top_level = false;
                ctx.event = Some(q);
                ctx.fields_are_names = true;
            }
            return ctx;
        }
        ctx.top_level = false;
        match item {
            Item::Query(q) => {
                ctx.event = Some(q.source.name.clone());
                ctx.fields_are_names = true;
            }
            Item::Shaping(_) => {}
            Item::Error(_) => {
                if let Some(q) = query_head(text.get(..offset).unwrap_or("")) {
                    ctx.event = Some(q);
                    ctx.fields_are_names = true;
                }
            }
            Item::Machine(m) => {
                ctx.machine = Some(m.name.name.clone());
                for member in &m.members {
                    match member {
                        MachineMember::On(t) if inside(t.span) => {
                            ctx.event = Some(t.event.name.clone());
                        }
                        _ => {}
                    }
                }
            }
            Item::Processor(p) => {
                for member in &p.members {
                    if let ProcessorMember::Handler(h) = member
                        && inside(h.span)
                    {
                        ctx.event = Some(h.event.name.clone());
                    }
                }
            }
            _ => {}
        }
        let span = item.span();
        for s in &a.index.symbols {
            if s.file == a.out.root
                && matches!(
                    s.kind,
                    SymbolKind::Variable | SymbolKind::Parameter | SymbolKind::Column
                )
                && span.start <= s.span.start
                && s.span.end <= offset
            {
                ctx.variables
                    .push((s.name.clone(), s.ty.clone().unwrap_or_default()));
            }
        }
        ctx
    }
}
