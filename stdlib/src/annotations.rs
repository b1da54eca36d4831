//! Field annotations: what a schema can say about a field.

/// What arguments an annotation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationArgs {
    None,
    OneString,
}

#[derive(Debug)]
pub struct Annotation {
    pub name: &'static str,
    pub args: AnnotationArgs,
    pub doc: &'static str,
}

pub static ANNOTATIONS: &[Annotation] = &[
    Annotation {
        name: "pii",
        args: AnnotationArgs::None,
        doc: "The field holds personal data: values derived from it must be declassified (hash, mask, drop) before they leave the box.",
    },
    Annotation {
        name: "secret",
        args: AnnotationArgs::None,
        doc: "The field holds a secret (a key, a token, a password): like `@pii`, and never shown even hashed in diagnostics output.",
    },
    Annotation {
        name: "attr",
        args: AnnotationArgs::OneString,
        doc: "The OpenTelemetry attribute key the field is read from, when it differs from the field's name (e.g. `@attr(\"http.method\")`).",
    },
    Annotation {
        name: "unit",
        args: AnnotationArgs::OneString,
        doc: "The unit of a numeric field (e.g. `@unit(\"ms\")`), carried to metrics derived from it.",
    },
];

pub fn get(name: &str) -> Option<&'static Annotation> {
    ANNOTATIONS.iter().find(|a| a.name == name)
}
