//! Redaction methods for `redact Event.field with METHOD`.

#[derive(Debug)]
pub struct Redaction {
    pub name: &'static str,
    /// Whether it applies only to string fields.
    pub strings_only: bool,
    pub doc: &'static str,
}

pub static REDACTIONS: &[Redaction] = &[
    Redaction {
        name: "hash",
        strings_only: false,
        doc: "Replaces the value with a keyed hash: equal values stay equal, the value cannot be recovered.",
    },
    Redaction {
        name: "mask",
        strings_only: true,
        doc: "Replaces every character but the last four with `*`.",
    },
    Redaction {
        name: "drop",
        strings_only: false,
        doc: "Removes the field from the event.",
    },
];

pub fn get(name: &str) -> Option<&'static Redaction> {
    REDACTIONS.iter().find(|r| r.name == name)
}
