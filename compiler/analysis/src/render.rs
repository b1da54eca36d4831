//! Rendering a risk report: text for people, JSON for tools, and an SVG
//! radar chart of the five dimensions like the Dynamic Telemetry docs'
//! risk charts.

use std::fmt::Write as _;

use dtc_diagnostics::SourceMap;
use dtc_stdlib::risk::Dimension;
use serde_json::{Value, json};

use crate::Report;

/// `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn duration(ns: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
    ];
    for (size, unit) in UNITS {
        if ns >= size && ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{}ms", ns / 1_000_000)
}

fn location(
    map: &SourceMap,
    file: dtc_diagnostics::FileId,
    span: dtc_diagnostics::Span,
) -> (String, usize, usize) {
    let f = map.get(file);
    let lc = f.line_col(span.start);
    (f.name.clone(), lc.line, lc.column)
}

/// The report as text.
pub fn render_text(r: &Report, map: &SourceMap) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "risk of {}: {}", r.program, r.tier);
    let _ = writeln!(out);
    for d in Dimension::ALL {
        let level = r.vector.get(d);
        let bar = "■".repeat(level.score() as usize) + &"□".repeat(3 - level.score() as usize);
        let _ = writeln!(out, "  {:<12} {bar} {level}", d.as_str());
        for c in r.raised(d) {
            let (file, line, col) = location(map, c.file, c.span);
            let _ = writeln!(
                out,
                "      {:<6} {} ({file}:{line}:{col}): {}",
                c.level.as_str(),
                c.construct,
                c.reason
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "memory bound: {}", bytes(r.memory_total));
    for m in &r.memory {
        let (file, line, col) = location(map, m.file, m.span);
        let _ = writeln!(
            out,
            "  {:>10}  {} ({file}:{line}:{col}): {}",
            bytes(m.bytes),
            m.what,
            m.how
        );
    }
    if !r.handlers.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "handlers (most steps per event, effects):");
        for h in &r.handlers {
            let effects: Vec<String> = h.effects.iter().map(ToString::to_string).collect();
            let effects = if effects.is_empty() {
                "pure".to_string()
            } else {
                effects.join(", ")
            };
            let _ = writeln!(
                out,
                "  {:<10} {:<40} {:>6}  {effects}",
                h.kind, h.name, h.max_steps
            );
        }
    }
    if !r.metrics.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "metrics:");
        for m in &r.metrics {
            let series = m
                .max_series
                .map_or("unbounded".to_string(), |n| n.to_string());
            let labels = if m.labels.is_empty() {
                "no labels".to_string()
            } else {
                m.labels.join(", ")
            };
            let _ = writeln!(out, "  {} ({labels}): at most {series} series", m.name);
        }
    }
    if !r.actions.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "actions:");
        for a in &r.actions {
            let (file, line, col) = location(map, a.file, a.span);
            let _ = writeln!(
                out,
                "  {} at most {} per {}{} ({file}:{line}:{col})",
                a.name,
                a.budget.0,
                duration(a.budget.1),
                if a.defaulted { " (default budget)" } else { "" }
            );
        }
    }
    if !r.emits.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "emitted logs:");
        for a in &r.emits {
            let (file, line, col) = location(map, a.file, a.span);
            let _ = writeln!(
                out,
                "  {} at most {} per {}{} ({file}:{line}:{col})",
                a.name,
                a.budget.0,
                duration(a.budget.1),
                if a.defaulted { " (default budget)" } else { "" }
            );
        }
    }
    out
}

/// The report as JSON.
pub fn render_json(r: &Report, map: &SourceMap) -> Value {
    let loc = |file, span: dtc_diagnostics::Span| {
        let (f, line, column) = location(map, file, span);
        json!({ "file": f, "line": line, "column": column, "span": { "start": span.start, "end": span.end } })
    };
    json!({
        "program": r.program,
        "tier": r.tier.key(),
        "vector": Dimension::ALL.iter().map(|d| (d.as_str().to_string(), json!(r.vector.get(*d).as_str()))).collect::<serde_json::Map<_, _>>(),
        "contributions": r.contributions.iter().map(|c| json!({
            "dimension": c.dimension.as_str(),
            "level": c.level.as_str(),
            "construct": c.construct,
            "reason": c.reason,
            "location": loc(c.file, c.span),
        })).collect::<Vec<_>>(),
        "memory": {
            "total_bytes": r.memory_total,
            "items": r.memory.iter().map(|m| json!({
                "what": m.what, "bytes": m.bytes, "how": m.how, "location": loc(m.file, m.span),
            })).collect::<Vec<_>>(),
        },
        "handlers": r.handlers.iter().map(|h| json!({
            "name": h.name, "kind": h.kind, "max_steps": h.max_steps,
            "effects": h.effects.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "location": loc(h.file, h.span),
        })).collect::<Vec<_>>(),
        "metrics": r.metrics.iter().map(|m| json!({
            "name": m.name, "labels": m.labels, "max_series": m.max_series, "location": loc(m.file, m.span),
        })).collect::<Vec<_>>(),
        "probes": r.probes.iter().map(|(k, f, s)| json!({ "kind": k, "location": loc(*f, *s) })).collect::<Vec<_>>(),
        "emits": r.emits.iter().map(|a| json!({
            "event": a.name, "limit": a.budget.0, "per_ns": a.budget.1, "default_budget": a.defaulted,
            "location": loc(a.file, a.span),
        })).collect::<Vec<_>>(),
        "actions": r.actions.iter().map(|a| json!({
            "name": a.name, "limit": a.budget.0, "per_ns": a.budget.1, "default_budget": a.defaulted,
            "location": loc(a.file, a.span),
        })).collect::<Vec<_>>(),
    })
}

/// A radar chart: one axis per dimension, a ring per level, the program's
/// vector as a filled polygon.
pub fn render_svg(r: &Report) -> String {
    // Wide enough that the side labels ("performance (medium)") fit.
    const WIDTH: f64 = 680.0;
    const HEIGHT: f64 = 440.0;
    const CX: f64 = WIDTH / 2.0;
    const CY: f64 = 210.0;
    const RADIUS: f64 = 140.0;
    let point = |axis: usize, value: f64| {
        let angle = -std::f64::consts::FRAC_PI_2 + axis as f64 * 2.0 * std::f64::consts::PI / 5.0;
        (
            CX + RADIUS * value * angle.cos(),
            CY + RADIUS * value * angle.sin(),
        )
    };
    let polygon = |value: &dyn Fn(usize) -> f64| {
        (0..5)
            .map(|i| {
                let (x, y) = point(i, value(i));
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let color = match r.tier {
        dtc_stdlib::risk::Tier::None => "#2e7d32",
        dtc_stdlib::risk::Tier::Limited => "#f9a825",
        dtc_stdlib::risk::Tier::High => "#c62828",
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r#"  <title>Risk of {}: {}</title>"#,
        xml_escape(&r.program),
        r.tier
    );
    let _ = writeln!(
        svg,
        r##"  <rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    for level in 1..=3 {
        let v = level as f64 / 3.0;
        let _ = writeln!(
            svg,
            r##"  <polygon points="{}" fill="none" stroke="#bbbbbb" stroke-width="1"/>"##,
            polygon(&|_| v)
        );
    }
    for (i, d) in Dimension::ALL.iter().enumerate() {
        let (x, y) = point(i, 1.0);
        let _ = writeln!(
            svg,
            r##"  <line x1="{CX}" y1="{CY}" x2="{x:.1}" y2="{y:.1}" stroke="#999999" stroke-width="1"/>"##
        );
        let (lx, ly) = point(i, 1.22);
        let anchor = if (lx - CX).abs() < 1.0 {
            "middle"
        } else if lx > CX {
            "start"
        } else {
            "end"
        };
        let level = r.vector.get(*d);
        let _ = writeln!(
            svg,
            r#"  <text x="{lx:.1}" y="{ly:.1}" text-anchor="{anchor}" dominant-baseline="middle">{} ({})</text>"#,
            d.as_str(),
            level
        );
    }
    let score = |i: usize| r.vector.get(Dimension::ALL[i]).score() as f64 / 3.0;
    let _ = writeln!(
        svg,
        r#"  <polygon points="{}" fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="2"/>"#,
        polygon(&score)
    );
    for i in 0..5 {
        let (x, y) = point(i, score(i));
        let _ = writeln!(
            svg,
            r#"  <circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#
        );
    }
    let _ = writeln!(
        svg,
        r#"  <text x="{CX}" y="{:.1}" text-anchor="middle" font-weight="bold">{}: {}</text>"#,
        HEIGHT - 14.0,
        xml_escape(&r.program),
        r.tier
    );
    let _ = writeln!(svg, "</svg>");
    svg
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
