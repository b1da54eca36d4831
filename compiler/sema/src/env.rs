//! The tables the checker resolves names against: event schemas (shared by
//! all units, since imports cross files), and per-unit probes, functions and
//! machines.

use std::collections::HashMap;

use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Span};
use dtc_stdlib::{Ty, annotations, fields};
use dtc_syntax::ast::{self, EventDecl, Item, TypeExpr, TypeExprKind};

use crate::Unit;
use crate::suggest;

/// A field of an event schema.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

/// An event schema: declared, or implied by the `emit log` statements and
/// stages that produce it.
#[derive(Debug, Clone)]
pub struct EventInfo {
    pub name: String,
    pub file: FileId,
    pub span: Span,
    pub fields: Vec<FieldInfo>,
    /// Implied by an emit rather than declared.
    pub implied: bool,
    /// A declared event's durable ID and the span that gives it (the
    /// `= "..."`, or the name when that is the ID); `None` when implied.
    pub wire: Option<(String, Span)>,
}

impl EventInfo {
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Every event schema of the program, and the declarations of each unit.
#[derive(Debug, Default)]
pub struct Events {
    pub all: Vec<EventInfo>,
    /// For each unit, its own declared events by name.
    pub declared: Vec<HashMap<String, usize>>,
    pub diagnostics: Vec<Diagnostic>,
}

/// First pass: the event schemas of every unit, with their own checks
/// (field types, annotations, duplicates), reported once per file.
pub fn collect_events(units: &[Unit]) -> Events {
    let mut events = Events::default();
    for unit in units {
        let mut own: HashMap<String, usize> = HashMap::new();
        let mut wire_names: HashMap<String, Span> = HashMap::new();
        for item in &unit.ast.items {
            let Item::Event(decl) = item else { continue };
            if let Some(&prev) = own.get(&decl.name.name) {
                let prev_span = events.all[prev].span;
                events
                    .diagnostics
                    .push(duplicate(unit.file, "event", &decl.name, prev_span));
                continue;
            }
            let wire = decl.wire_name().to_string();
            let wire_span = decl.durable_id.as_ref().map_or(decl.name.span, |d| d.span);
            if wire.is_empty() {
                events
                    .diagnostics
                    .push(empty_durable_id(unit.file, decl, wire_span));
            } else if let Some(prev) = wire_names.insert(wire.clone(), wire_span) {
                events.diagnostics.push(
                    Diagnostic::new(
                        Code::E0208,
                        format!("two events have the durable ID `{wire}`"),
                        Label::new(unit.file, wire_span, "this event's ID"),
                    )
                    .with_label(Label::new(unit.file, prev, "is already used here"))
                    .with_help("each event needs its own durable ID: give one of them another with `= \"...\"`"),
                );
            }
            let info = event_info(unit.file, decl, &mut events.diagnostics);
            own.insert(decl.name.name.clone(), events.all.len());
            events.all.push(info);
        }
        events.declared.push(own);
    }
    events
}

/// The engine reads an empty `event_name` (or `event.name`) as no name at
/// all, so an event whose durable ID is empty would never match a record.
fn empty_durable_id(file: FileId, decl: &EventDecl, span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E0222,
        format!("event `{}` has an empty durable ID", decl.name.name),
        Label::new(file, span, "no record can carry this ID"),
    )
    .with_note("a record's durable ID is its `event_name` (or `event.name` attribute); an empty one counts as none")
    .with_help(format!(
        "write the name the application logs, like `= \"app.launch\"`, or remove `= \"\"` so the ID is `{}`",
        decl.name.name
    ))
}

fn event_info(file: FileId, decl: &EventDecl, diags: &mut Vec<Diagnostic>) -> EventInfo {
    let mut fields: Vec<FieldInfo> = Vec::new();
    for f in &decl.fields {
        if let Some(prev) = fields.iter().find(|p| p.name == f.name.name) {
            diags.push(duplicate(file, "field", &f.name, prev.span));
            continue;
        }
        if fields::get(&f.name.name).is_some() {
            diags.push(
                Diagnostic::new(
                    Code::E0213,
                    format!("field `{}` has the name of a standard field", f.name.name),
                    Label::new(file, f.name.span, "every event already has this field"),
                )
                .with_note(format!(
                    "`event.{}` is the OpenTelemetry {}",
                    f.name.name,
                    fields::get(&f.name.name).map_or("field", |s| s.otlp)
                ))
                .with_help(format!(
                    "rename the field and read the attribute by its key: `{}Attr: ... @attr(\"{}\")`",
                    f.name.name, f.name.name
                )),
            );
        }
        let ty = resolve_type(file, &f.ty, TypePlace::Field, diags);
        for (i, a) in f.annotations.iter().enumerate() {
            if let Some(prev) = f.annotations[..i]
                .iter()
                .find(|p| p.name.name == a.name.name)
            {
                diags.push(
                    Diagnostic::new(
                        Code::E0317,
                        format!("`@{}` is given twice", a.name.name),
                        Label::new(file, a.span, "given again here"),
                    )
                    .with_label(Label::new(file, prev.span, "first given here"))
                    .with_help("remove one of them"),
                );
                continue;
            }
            check_annotation(file, a, diags);
            // A unit says what a number measures.
            if a.name.name == "unit"
                && !matches!(ty.unwrap_optional(), Ty::Int | Ty::Float | Ty::Error)
            {
                diags.push(
                    Diagnostic::new(
                        Code::E0317,
                        format!(
                            "`@unit` applies to numbers, and `{}` is `{ty}`",
                            f.name.name
                        ),
                        Label::new(file, a.span, "not a number"),
                    )
                    .with_help(
                        if matches!(ty.unwrap_optional(), Ty::Duration | Ty::Timestamp) {
                            "remove it: a duration or a timestamp carries its unit already"
                        } else {
                            "remove it: only numbers have units"
                        },
                    ),
                );
            }
        }
        fields.push(FieldInfo {
            name: f.name.name.clone(),
            ty,
            span: f.name.span,
        });
    }
    EventInfo {
        name: decl.name.name.clone(),
        file,
        span: decl.name.span,
        fields,
        implied: false,
        wire: Some((
            decl.wire_name().to_string(),
            decl.durable_id.as_ref().map_or(decl.name.span, |d| d.span),
        )),
    }
}

fn check_annotation(file: FileId, a: &ast::Annotation, diags: &mut Vec<Diagnostic>) {
    let Some(def) = annotations::get(&a.name.name) else {
        let mut d = Diagnostic::new(
            Code::E0209,
            format!("unknown annotation `@{}`", a.name.name),
            Label::new(file, a.span, "not a field annotation"),
        );
        d = match suggest::did_you_mean(
            &a.name.name,
            annotations::ANNOTATIONS.iter().map(|a| a.name),
        ) {
            Some(s) => d.with_help(format!("did you mean `@{s}`?")),
            None => d.with_help(format!(
                "the annotations are {}",
                annotations::ANNOTATIONS
                    .iter()
                    .map(|a| format!("`@{}`", a.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        diags.push(d);
        return;
    };
    let ok = match def.args {
        annotations::AnnotationArgs::None => a.args.is_empty(),
        annotations::AnnotationArgs::OneString => {
            a.args.len() == 1 && matches!(&a.args[0].kind, ast::ExprKind::Str(s) if !s.is_empty())
        }
    };
    if !ok {
        let (label, help) = match def.args {
            annotations::AnnotationArgs::None => (
                format!("`@{}` takes no arguments", def.name),
                format!("write just `@{}`", def.name),
            ),
            annotations::AnnotationArgs::OneString => (
                format!("`@{}` takes one non-empty string", def.name),
                match def.name {
                    "unit" => "write the unit, like `@unit(\"ms\")`".to_string(),
                    _ => format!(
                        "write the attribute's key, like `@{}(\"http.method\")`",
                        def.name
                    ),
                },
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::E0317,
                format!("wrong arguments for `@{}`", def.name),
                Label::new(file, a.span, label),
            )
            .with_help(help),
        );
    }
}

/// Where a type is written: maps are only allowed as variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypePlace {
    Field,
    Variable,
    Other,
}

/// Resolves a written type; unknown names are reported and give `Ty::Error`.
pub fn resolve_type(
    file: FileId,
    t: &TypeExpr,
    place: TypePlace,
    diags: &mut Vec<Diagnostic>,
) -> Ty {
    match &t.kind {
        TypeExprKind::Error => Ty::Error,
        TypeExprKind::Optional(inner) => {
            let inner_ty = resolve_type(file, inner, place, diags);
            if inner_ty.is_optional() {
                diags.push(
                    Diagnostic::new(
                        Code::E0217,
                        "a type can be optional only once",
                        Label::new(file, t.span, "`??` is not a type"),
                    )
                    .with_help("write a single `?`"),
                );
            }
            if matches!(inner_ty, Ty::Map(..)) {
                diags.push(
                    Diagnostic::new(
                        Code::E0217,
                        "a map cannot be optional",
                        Label::new(file, t.span, "an empty map stands for no entries"),
                    )
                    .with_help("remove the `?`"),
                );
                return inner_ty;
            }
            Ty::optional(inner_ty)
        }
        TypeExprKind::Named { name, args } => {
            if name.name == "map" {
                if args.len() != 2 {
                    diags.push(
                        Diagnostic::new(
                            Code::E0217,
                            format!("`map` takes two type arguments, found {}", args.len()),
                            Label::new(file, t.span, "expected `map[KeyType, ValueType]`"),
                        )
                        .with_help("write, for example, `map[string, int]`"),
                    );
                    return Ty::Error;
                }
                if place != TypePlace::Variable {
                    diags.push(
                        Diagnostic::new(
                            Code::E0219,
                            "a map is only allowed as a `var` of a processor or machine",
                            Label::new(file, t.span, "not allowed here"),
                        )
                        .with_help(
                            "keep maps in `var name: map[K, V] max N` so their size is bounded",
                        ),
                    );
                    return Ty::Error;
                }
                let k = resolve_type(file, &args[0], TypePlace::Other, diags);
                let v = resolve_type(file, &args[1], TypePlace::Other, diags);
                if !k.is_key() {
                    diags.push(
                        Diagnostic::new(
                            Code::E0316,
                            format!("`{k}` cannot be a map key"),
                            Label::new(file, args[0].span, "map keys are string, int or bool"),
                        )
                        .with_help("key the map by a string, an int or a bool"),
                    );
                }
                if matches!(v, Ty::Histogram) {
                    return Ty::Error;
                }
                return Ty::Map(Box::new(k), Box::new(v));
            }
            if !args.is_empty() {
                diags.push(Diagnostic::new(
                    Code::E0217,
                    format!("`{}` takes no type arguments", name.name),
                    Label::new(file, t.span, "remove the `[...]`"),
                ));
            }
            match Ty::from_name(&name.name) {
                Some(ty) => ty,
                None => {
                    let mut d = Diagnostic::new(
                        Code::E0217,
                        format!("unknown type `{}`", name.name),
                        Label::new(file, name.span, "not a type"),
                    );
                    let suggestion = type_alias(&name.name).or_else(|| {
                        suggest::did_you_mean(
                            &name.name,
                            dtc_stdlib::ty::TYPE_NAMES.iter().copied(),
                        )
                    });
                    d = match suggestion {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!(
                            "the types are {}",
                            dtc_stdlib::ty::TYPE_NAMES.join(", ")
                        )),
                    };
                    diags.push(d);
                    Ty::Error
                }
            }
        }
    }
}

/// The dt type for a name other languages use (`integer`, `double`,
/// `str`), or for a longer spelling of a type name (`integr`).
fn type_alias(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "long" | "short"
        | "number" => "int",
        "f32" | "f64" | "double" | "real" | "decimal" => "float",
        "str" | "text" | "char" => "string",
        "boolean" => "bool",
        "datetime" | "date" | "time" | "instant" => "timestamp",
        "interval" | "timespan" | "timedelta" => "duration",
        "any" | "object" | "json" => "dyn",
        _ => {
            return [
                "int",
                "bool",
                "string",
                "float",
                "duration",
                "timestamp",
                "percent",
            ]
            .into_iter()
            .find(|t| lower.len() > t.len() && lower.starts_with(t));
        }
    })
}

pub fn duplicate(file: FileId, what: &str, name: &ast::Ident, prev: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E0208,
        format!("{what} `{}` is declared twice", name.name),
        Label::new(file, name.span, "declared again here"),
    )
    .with_label(Label::new(file, prev, "first declared here"))
    .with_help(format!("rename one of them, or remove the second {what}"))
}
