//! Semantic analysis of dt programs: name resolution and type checking.
//!
//! Input is a set of parsed files (a root and the files it imports,
//! transitively), with each `import` already resolved to a file by the
//! driver, which owns all IO. Output is every diagnostic found (several per
//! run, never stopping at the first) and the facts the language server needs
//! (the type of each expression by span).
//!
//! The work is done in two passes over the units. The first collects every
//! file's `event` schemas, so that imports can refer to them whatever the
//! order of the files. The second checks each unit on its own: its
//! declarations, then function bodies, machines, processors, shaping rules
//! and queries. Errors already reported produce [`Ty::Error`], which fits
//! everywhere, so one mistake is reported once and not again by every
//! expression that uses it.

mod checker;
mod env;
mod expr;
mod items;
mod metrics;
mod stmt;
mod suggest;

use dtc_diagnostics::{Diagnostic, FileId, Span};
pub use dtc_stdlib::Ty;
use dtc_syntax::ast::SourceFileAst;
pub use suggest::did_you_mean;

/// One parsed file handed to the checker.
#[derive(Debug)]
pub struct Unit {
    pub file: FileId,
    pub ast: SourceFileAst,
    /// For each `import` item of `ast`, in order: the file it names, or
    /// `None` when the driver could not read it (and has reported why).
    pub imports: Vec<Option<FileId>>,
}

/// The event declarations the root file (`units[0]`) can use: those of the
/// files it imports (all of a file's events, or the names listed), then its
/// own, each with the unit it is declared in. Analysis and lowering read
/// schemas through this, so they see exactly what the checker resolved.
pub fn visible_events(units: &[Unit]) -> Vec<(&Unit, &dtc_syntax::ast::EventDecl)> {
    use dtc_syntax::ast::Item;
    let Some(root) = units.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let imports = root.ast.items.iter().filter_map(|i| {
        if let Item::Import(imp) = i {
            Some(imp)
        } else {
            None
        }
    });
    for (import, target) in imports.zip(root.imports.iter()) {
        let Some(unit) = target.and_then(|t| units.iter().find(|u| u.file == t)) else {
            continue;
        };
        for item in &unit.ast.items {
            if let Item::Event(decl) = item
                && import
                    .names
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| n.name == decl.name.name))
            {
                out.push((unit, decl));
            }
        }
    }
    for item in &root.ast.items {
        if let Item::Event(decl) = item {
            out.push((root, decl));
        }
    }
    out
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
    /// The type of every checked expression, for hover.
    pub types: Vec<(FileId, Span, String)>,
    /// The type of every checked expression as a value, keyed by file and
    /// span, for lowering to the IR.
    pub expr_types: std::collections::HashMap<(FileId, Span), Ty>,
}

/// Checks every unit. Each unit sees its own declarations and the events of
/// the files it imports.
pub fn check(units: &[Unit]) -> Analysis {
    let mut events = env::collect_events(units);
    let mut analysis = Analysis::default();
    for (index, unit) in units.iter().enumerate() {
        let mut checker = checker::Checker::new(unit, index, units, &mut events);
        checker.check_unit();
        analysis.diagnostics.append(&mut checker.diags);
        analysis.types.append(&mut checker.types);
        analysis.expr_types.extend(checker.expr_types.drain());
    }
    analysis.diagnostics.extend(events.diagnostics);
    dtc_diagnostics::sort(&mut analysis.diagnostics);
    analysis
}

#[cfg(test)]
mod tests;
