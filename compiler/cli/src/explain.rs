//! `dtc explain`: what a diagnostic code means.
//!
//! The title and severity come from the code registry
//! (`dtc_diagnostics::Code`); the explanation is the code's section of
//! `docs/diagnostics.md`, embedded at build time, so the command works
//! wherever the binary is copied, without the documentation files. A test
//! keeps the page and the registry in step: every code has a section.

use dtc_diagnostics::Code;

use crate::{Io, Outcome};

pub(crate) fn run(code: Option<&str>, io: &mut Io<'_>) -> Outcome {
    let Some(text) = code else {
        for code in Code::ALL {
            let _ = writeln!(
                io.stdout,
                "{code}  {:<7}  {}",
                code.default_severity().as_str(),
                code.title()
            );
        }
        return Outcome::Clean;
    };
    match Code::parse(text) {
        Some(code) => {
            let _ = writeln!(io.stdout, "{}", explain(code));
            Outcome::Clean
        }
        None => {
            let _ = writeln!(
                io.stderr,
                "error: `{text}` is not a dtc diagnostic code; run `dtc explain` to list them all"
            );
            Outcome::UsageOrIo
        }
    }
}

/// `docs/diagnostics.md`, whose `### E0305: title` sections explain each
/// code.
const REFERENCE: &str = include_str!("../../../docs/diagnostics.md");

/// The body of a code's section in the reference, without its heading.
fn section(code: Code) -> Option<&'static str> {
    let heading = format!("### {code}");
    let start = REFERENCE
        .match_indices(&heading)
        .map(|(i, _)| i)
        .find(|&i| {
            (i == 0 || REFERENCE[..i].ends_with('\n'))
                && !REFERENCE[i + heading.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        })?;
    let body_start = start + REFERENCE[start..].find('\n')? + 1;
    let body = &REFERENCE[body_start..];
    let end = body
        .match_indices("\n#")
        .map(|(i, _)| i)
        .find(|&i| body[i + 1..].starts_with("## ") || body[i + 1..].starts_with("### "))
        .unwrap_or(body.len());
    Some(body[..end].trim())
}

/// The text `dtc explain CODE` prints.
fn explain(code: Code) -> String {
    let head = format!(
        "{code}: {} ({})",
        code.title(),
        code.default_severity().as_str()
    );
    match section(code) {
        Some(body) => format!("{head}\n\n{body}"),
        None => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_to_string(code: Option<&str>) -> (Outcome, String, String) {
        let (mut stdin, mut out, mut err) = (std::io::empty(), Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut stdin,
            stdout: &mut out,
            stderr: &mut err,
            color_auto: false,
        };
        let outcome = run(code, &mut io);
        (
            outcome,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn explains_known_codes_case_insensitively() {
        let (outcome, out, _) = run_to_string(Some("e0203"));
        assert_eq!(outcome, Outcome::Clean);
        assert!(out.starts_with("E0203: unknown name (error)\n\n"), "{out}");
    }

    #[test]
    fn every_code_has_a_section_in_the_reference() {
        let missing: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| section(**c).is_none_or(str::is_empty))
            .map(|c| c.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "docs/diagnostics.md has no section for {missing:?}"
        );
        // A section stops at the next heading.
        let body = section(Code::E0001).unwrap_or_default();
        assert!(
            !body.contains("\n### ") && !body.contains("\n## "),
            "{body}"
        );
    }

    #[test]
    fn unknown_code_is_a_usage_error() {
        let (outcome, out, err) = run_to_string(Some("E9999"));
        assert_eq!(outcome, Outcome::UsageOrIo);
        assert!(out.is_empty());
        assert!(
            err.contains("`E9999` is not a dtc diagnostic code"),
            "{err}"
        );
    }

    #[test]
    fn lists_every_code() {
        let (_, out, _) = run_to_string(None);
        assert_eq!(out.lines().count(), Code::ALL.len());
        assert!(out.contains("W0001  warning  unreachable state"), "{out}");
    }
}
