//! The standard fields every event has, from the OpenTelemetry log data
//! model, beside the fields its schema declares.

use crate::Ty;

#[derive(Debug)]
pub struct StandardField {
    pub name: &'static str,
    /// Where it comes from in an OTLP log record.
    pub otlp: &'static str,
    pub doc: &'static str,
}

pub static STANDARD_FIELDS: &[StandardField] = &[
    StandardField {
        name: "time",
        otlp: "time_unix_nano (observed_time_unix_nano when unset)",
        doc: "When the event happened.",
    },
    StandardField {
        name: "observed_time",
        otlp: "observed_time_unix_nano",
        doc: "When the event was observed by the collection system.",
    },
    StandardField {
        name: "severity",
        otlp: "severity_number",
        doc: "The OpenTelemetry severity number (1–24; 0 when unset).",
    },
    StandardField {
        name: "severity_text",
        otlp: "severity_text",
        doc: "The severity as the source wrote it, if it did.",
    },
    StandardField {
        name: "body",
        otlp: "body (as text)",
        doc: "The log body, if it is text.",
    },
    StandardField {
        name: "trace_id",
        otlp: "trace_id (hex)",
        doc: "The trace the event belongs to, if any.",
    },
    StandardField {
        name: "span_id",
        otlp: "span_id (hex)",
        doc: "The span the event belongs to, if any.",
    },
    StandardField {
        name: "thread_id",
        otlp: "attribute thread.id",
        doc: "The thread that emitted the event, if recorded.",
    },
    StandardField {
        name: "service",
        otlp: "resource attribute service.name",
        doc: "The service that emitted the event, if recorded.",
    },
    StandardField {
        name: "attrs",
        otlp: "attributes",
        doc: "Attributes the schema does not declare, by key: `event.attrs[\"http.method\"]` is a `dyn?`.",
    },
    StandardField {
        name: "resource",
        otlp: "resource attributes",
        doc: "Resource attributes by key: `event.resource[\"host.name\"]` is a `dyn?`.",
    },
];

/// The type of a standard field.
pub fn ty(name: &str) -> Option<Ty> {
    Some(match name {
        "time" | "observed_time" => Ty::Timestamp,
        "severity" => Ty::Int,
        "severity_text" | "body" | "trace_id" | "span_id" | "service" => Ty::optional(Ty::String),
        "thread_id" => Ty::optional(Ty::Int),
        "attrs" | "resource" => Ty::Map(Box::new(Ty::String), Box::new(Ty::Dyn)),
        _ => return None,
    })
}

pub fn get(name: &str) -> Option<&'static StandardField> {
    STANDARD_FIELDS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_standard_field_has_a_type() {
        for f in super::STANDARD_FIELDS {
            assert!(super::ty(f.name).is_some(), "{}", f.name);
        }
    }
}
