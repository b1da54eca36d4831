//! The standard library catalog: every function, aggregate, action, probe
//! kind, field annotation, redaction method and standard event field the dt
//! language knows, with its signature and documentation.
//!
//! This is the one place a reviewer reads to see what a program can call.
//! The checker takes signatures from here; later passes extend each entry
//! with its effect and risk vector. Entries are plain `static` tables so that
//! the catalog reads as data, not code.

pub mod actions;
pub mod aggregates;
pub mod annotations;
pub mod fields;
pub mod functions;
pub mod probes;
pub mod redaction;
pub mod risk;
pub mod ty;

pub use ty::{Param, Pattern, Returns, Ty};

/// A callable entry (function, aggregate or action) as the checker sees it.
#[derive(Debug)]
pub struct Signature {
    /// The name as written in programs, e.g. `file.sha256`.
    pub name: &'static str,
    pub params: &'static [Param],
    pub returns: Returns,
    /// One or two sentences for hover and the reference.
    pub doc: &'static str,
}

impl Signature {
    /// `name(a: string, b: int = …) -> string`, for hover and diagnostics.
    pub fn display(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let mut s = format!("{}: {}", p.name, p.pattern.describe());
                if p.optional {
                    s.push_str(" = …");
                }
                s
            })
            .collect();
        format!(
            "{}({}){}",
            self.name,
            params.join(", "),
            self.returns.describe_suffix()
        )
    }

    /// How many arguments must be given.
    pub fn required(&self) -> usize {
        self.params.iter().filter(|p| !p.optional).count()
    }
}
