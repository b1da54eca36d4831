//! Metric names: each metric a program exports comes from one query.
//!
//! `emit metric "name"` exports `name` for a summary of one aggregate and
//! `name.column` for each column of a summary of several. Two queries that
//! export the same name would send two series of different shapes (labels,
//! windows, kinds) under one name into the user's OpenTelemetry pipeline,
//! where they mix; so a clash is an error (`E0322`) at both sites.

use std::collections::HashMap;

use dtc_diagnostics::{Code, Diagnostic, Span};
use dtc_syntax::ast::{QueryDecl, StrLit};

use crate::checker::Checker;

/// One metric a query exports.
#[derive(Debug, Clone)]
pub struct EmittedMetric {
    /// The exported name.
    pub name: String,
    pub query: String,
    /// The `"name"` of the `emit metric` stage.
    pub emit: Span,
    /// For a summary of several aggregates, the column this metric is of.
    pub column: Option<(String, Span)>,
}

impl Checker<'_> {
    /// Notes the metrics `emit metric` exports, given the summary's aggregate
    /// columns (all of which checked).
    pub fn record_metrics(&mut self, q: &QueryDecl, name: &StrLit, columns: &[(String, Span)]) {
        let site = |metric: String, column: Option<(String, Span)>| EmittedMetric {
            name: metric,
            query: q.name.name.clone(),
            emit: name.span,
            column,
        };
        if let [_] = columns {
            self.metrics.push(site(name.value.clone(), None));
            return;
        }
        for (column, span) in columns {
            self.metrics.push(site(
                format!("{}.{column}", name.value),
                Some((column.clone(), *span)),
            ));
        }
    }

    /// Reports every metric name exported by a second query, against the
    /// first (in source order).
    pub fn check_metric_names(&mut self) {
        let mut metrics = std::mem::take(&mut self.metrics);
        // Queries are checked in dependency order; report in reading order.
        metrics.sort_by_key(|m| m.emit.start);
        let mut first: HashMap<&str, &EmittedMetric> = HashMap::new();
        for m in &metrics {
            let Some(prev) = first.get(m.name.as_str()) else {
                first.insert(&m.name, m);
                continue;
            };
            let mut d = Diagnostic::new(
                Code::E0322,
                format!("two queries emit the metric `{}`", m.name),
                self.label(m.emit, format!("query `{}` emits it again", m.query)),
            )
            .with_label(self.label(prev.emit, format!("query `{}` emits it first", prev.query)));
            for site in [*prev, m] {
                if let Some((column, span)) = &site.column {
                    d = d.with_label(self.label(
                        *span,
                        format!("column `{column}` is emitted as `{}`", m.name),
                    ));
                }
            }
            if m.column.is_some() || prev.column.is_some() {
                d = d.with_note(
                    "a summary of several aggregates emits one metric per column, named `name.column`",
                );
            }
            d = d.with_help(
                "rename one of the metrics: two series under one name would mix in the metrics pipeline",
            );
            self.push(d);
        }
        self.metrics = metrics;
    }
}
