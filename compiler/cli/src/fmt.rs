//! `dtc fmt`: format programs in the canonical style (`dtc_fmt`).
//!
//! Files are rewritten in place, and only when their text changes. With
//! `--check` nothing is written: the files that would change are listed on
//! stdout and the run fails. `-` formats standard input to standard output.
//! A file with syntax errors is left alone and its errors are printed, like
//! `dtc check` prints them; the other files are still formatted.

use std::path::Path;

use dtc_diagnostics::{FileId, SourceMap};

use crate::check::{Input, collect_inputs};
use crate::{FmtArgs, Io, Outcome};

/// What happened to one input.
enum Done {
    Unchanged,
    Changed,
    /// Syntax errors or not UTF-8: reported, not formatted.
    Refused,
    Unreadable,
}

pub(crate) fn run(args: &FmtArgs, io: &mut Io<'_>) -> Outcome {
    let (inputs, io_errors) = collect_inputs(&args.paths);
    for e in &io_errors {
        let _ = writeln!(io.stderr, "error: {e}");
    }
    let color = args.color.enabled(io.color_auto);
    let (mut refused, mut unreadable, mut would_change) = (0, io_errors.len(), 0);
    for input in &inputs {
        let done = match input {
            Input::Stdin => stdin(io, color),
            Input::File(path) => file(path, args.check, io, color),
        };
        match done {
            Done::Unchanged => {}
            Done::Changed => would_change += 1,
            Done::Refused => refused += 1,
            Done::Unreadable => unreadable += 1,
        }
    }
    if unreadable > 0 {
        Outcome::UsageOrIo
    } else if refused > 0 || (args.check && would_change > 0) {
        Outcome::Failed
    } else {
        Outcome::Clean
    }
}

fn stdin(io: &mut Io<'_>, color: bool) -> Done {
    let mut bytes = Vec::new();
    if let Err(e) = io.stdin.read_to_end(&mut bytes) {
        let _ = writeln!(io.stderr, "error: cannot read standard input: {e}");
        return Done::Unreadable;
    }
    match format_bytes("<stdin>", &bytes, io, color) {
        Some(out) => {
            let _ = io.stdout.write_all(out.as_bytes());
            Done::Unchanged
        }
        None => Done::Refused,
    }
}

fn file(path: &Path, check: bool, io: &mut Io<'_>, color: bool) -> Done {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: cannot read `{}`: {e}", path.display());
            return Done::Unreadable;
        }
    };
    let Some(out) = format_bytes(&path.display().to_string(), &bytes, io, color) else {
        return Done::Refused;
    };
    if out.as_bytes() == bytes {
        return Done::Unchanged;
    }
    if check {
        let _ = writeln!(io.stdout, "{}", path.display());
        return Done::Changed;
    }
    match std::fs::write(path, out) {
        Ok(()) => Done::Changed,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: cannot write `{}`: {e}", path.display());
            Done::Unreadable
        }
    }
}

/// The formatted text, or `None` after printing why there is none.
fn format_bytes(name: &str, bytes: &[u8], io: &mut Io<'_>, color: bool) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let _ = writeln!(
            io.stderr,
            "error: `{name}` is not valid UTF-8; not formatted (`dtc check` shows where)"
        );
        return None;
    };
    match dtc_fmt::format(text) {
        Ok(out) => Some(out),
        Err(errors) => {
            // Spans are relative to the text after a byte order mark.
            let body = text.strip_prefix('\u{FEFF}').unwrap_or(text);
            let mut sources = SourceMap::new();
            let id = sources.add(name, body);
            debug_assert_eq!(id, FileId(0));
            let rendered = dtc_diagnostics::render_human(&errors.diagnostics, &sources, color);
            let _ = io.stderr.write_all(rendered.as_bytes());
            let _ = writeln!(io.stderr, "error: `{name}` not formatted: {errors}");
            None
        }
    }
}
