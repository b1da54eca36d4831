//! `dtc risk`: check one program and print its risk report (text or JSON),
//! optionally as an SVG radar chart, and against a deployment policy.

use crate::check::policy_session;
use crate::{Format, Io, Outcome, RiskArgs};

pub(crate) fn run(args: &RiskArgs, io: &mut Io<'_>) -> Outcome {
    let session = match policy_session(args.policy.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            let _ = writeln!(io.stderr, "error: {msg}");
            return Outcome::UsageOrIo;
        }
    };
    let out = if args.path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = io.stdin.read_to_end(&mut bytes) {
            let _ = writeln!(io.stderr, "error: cannot read standard input: {e}");
            return Outcome::UsageOrIo;
        }
        session.check_bytes("<stdin>", &bytes)
    } else {
        match session.check_path(&args.path) {
            Ok(out) => out,
            Err(e) => {
                let _ = writeln!(io.stderr, "error: {e}");
                return Outcome::UsageOrIo;
            }
        }
    };
    let color = args.color.enabled(io.color_auto);
    if !out.diagnostics.is_empty() {
        let text = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, color);
        let _ = io.stderr.write_all(text.as_bytes());
    }
    let Some(report) = &out.report else {
        let _ = writeln!(
            io.stderr,
            "error: the program does not type-check, so its risk cannot be computed"
        );
        return Outcome::Failed;
    };
    match args.format {
        Format::Human => {
            let _ = io
                .stdout
                .write_all(dtc_analysis::render_text(report, &out.sources).as_bytes());
            if let Some(p) = &out.policy {
                let ring = p.ring.as_deref().unwrap_or("the policy");
                let _ = writeln!(
                    io.stdout,
                    "\n{ring}: a {} program needs {} reviewer approval(s)",
                    report.tier,
                    p.required_approvals(report.tier)
                );
            }
        }
        Format::Json => {
            let mut value = dtc_analysis::render_json(report, &out.sources);
            if let Some(p) = &out.policy {
                value["policy"] = serde_json::json!({
                    "ring": p.ring,
                    "required_approvals": p.required_approvals(report.tier),
                });
            }
            value["diagnostics"] = out
                .diagnostics
                .iter()
                .map(|d| dtc_diagnostics::to_json_value(d, &out.sources))
                .collect();
            let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
            let _ = writeln!(io.stdout, "{text}");
        }
    }
    if let Some(path) = &args.svg
        && let Err(e) = std::fs::write(path, dtc_analysis::render_svg(report))
    {
        let _ = writeln!(io.stderr, "error: cannot write `{}`: {e}", path.display());
        return Outcome::UsageOrIo;
    }
    if out.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Clean
    }
}
