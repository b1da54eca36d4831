//! `dtc explain`: what a diagnostic code means.
//!
//! Everything printed comes from the code registry compiled into the binary
//! (`dtc_diagnostics::Code`), so the command works wherever the binary is
//! copied, without the documentation files.

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

/// The text `dtc explain CODE` prints.
fn explain(code: Code) -> String {
    format!(
        "{code}: {title}\n\nseverity: {severity}\nreference: docs/diagnostics.md, section {code}",
        title = code.title(),
        severity = code.default_severity().as_str(),
    )
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
        assert!(out.starts_with("E0203: unknown name\n"), "{out}");
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
