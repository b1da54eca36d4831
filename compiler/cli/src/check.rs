//! `dtc check`: find the files named on the command line, check each with
//! the driver, print the diagnostics and a summary, and decide the exit
//! code.
//!
//! Every root file is checked on its own, so a file imported by several
//! roots is loaded by each; its diagnostics are printed once (the first time
//! they are seen). A path that cannot be read is reported in one line naming
//! the path and the OS error, the other files are still checked, and the run
//! exits with 2.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use dtc_diagnostics::{Diagnostic, Severity};
use dtc_driver::{CheckOutput, RealFs, Session};

use crate::{CheckArgs, Format, Io, Outcome};

/// The display name of standard input.
const STDIN_NAME: &str = "<stdin>";

/// One program to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    Stdin,
    File(PathBuf),
}

pub(crate) fn run(args: &CheckArgs, io: &mut Io<'_>) -> Outcome {
    let (inputs, mut io_errors) = collect_inputs(&args.paths);
    for e in &io_errors {
        let _ = writeln!(io.stderr, "error: {e}");
    }
    let color = args.color.enabled(io.color_auto);
    let session = match policy_session(args.policy.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            let _ = writeln!(io.stderr, "error: {msg}");
            return Outcome::UsageOrIo;
        }
    };
    let mut seen: HashSet<(String, usize, usize, &'static str, String)> = HashSet::new();
    let mut tally = Tally::default();
    let mut json = Vec::new();
    for input in &inputs {
        let out = match input {
            Input::Stdin => {
                let mut bytes = Vec::new();
                if let Err(e) = io.stdin.read_to_end(&mut bytes) {
                    let msg = format!("cannot read standard input: {e}");
                    let _ = writeln!(io.stderr, "error: {msg}");
                    io_errors.push(msg);
                    continue;
                }
                session.check_bytes(STDIN_NAME, &bytes)
            }
            Input::File(path) => match session.check_path(path) {
                Ok(out) => out,
                Err(e) => {
                    let _ = writeln!(io.stderr, "error: {e}");
                    io_errors.push(e.to_string());
                    continue;
                }
            },
        };
        // Diagnostics of a file imported by several roots are shown once.
        let fresh: Vec<Diagnostic> = out
            .diagnostics
            .iter()
            .filter(|d| {
                let file = out.sources.get(d.primary.file).name.clone();
                seen.insert((
                    file,
                    d.primary.span.start,
                    d.primary.span.end,
                    d.code.as_str(),
                    d.message.clone(),
                ))
            })
            .cloned()
            .collect();
        tally.add(&out, &fresh);
        match args.format {
            Format::Human => {
                if !fresh.is_empty() {
                    let text = dtc_diagnostics::render_human(&fresh, &out.sources, color);
                    let _ = io.stderr.write_all(text.as_bytes());
                }
            }
            Format::Json => json.extend(
                fresh
                    .iter()
                    .map(|d| dtc_diagnostics::to_json_value(d, &out.sources)),
            ),
        }
    }
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".to_string());
            let _ = writeln!(io.stdout, "{text}");
        }
        Format::Human => {
            if !args.quiet {
                let _ = writeln!(
                    io.stderr,
                    "{}",
                    tally.summary(io_errors.len(), args.deny_warnings)
                );
            }
        }
    }
    tally.outcome(io_errors.len(), args.deny_warnings)
}

/// A session that also checks against the policy at `path`, if any.
pub(crate) fn policy_session(path: Option<&Path>) -> Result<Session<RealFs>, String> {
    let session = Session::new(RealFs);
    let Some(path) = path else { return Ok(session) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read policy `{}`: {e}", path.display()))?;
    Ok(session.with_policy(path.display().to_string(), text))
}

/// Counts over the whole run.
#[derive(Debug, Default)]
struct Tally {
    errors: usize,
    warnings: usize,
    /// Every file read: roots and imports, by display name.
    files: BTreeSet<String>,
    /// The files that have at least one diagnostic.
    files_with_diagnostics: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, out: &CheckOutput, fresh: &[Diagnostic]) {
        self.files.extend(
            out.units
                .iter()
                .map(|u| out.sources.get(u.file).name.clone()),
        );
        for d in fresh {
            match d.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
            }
            self.files_with_diagnostics
                .insert(out.sources.get(d.primary.file).name.clone());
        }
    }

    /// I/O errors win over diagnostics: the run did not check everything.
    fn outcome(&self, n_unreadable: usize, deny_warnings: bool) -> Outcome {
        if n_unreadable > 0 {
            Outcome::UsageOrIo
        } else if self.fails(deny_warnings) {
            Outcome::Failed
        } else {
            Outcome::Clean
        }
    }

    fn fails(&self, deny_warnings: bool) -> bool {
        self.errors > 0 || (deny_warnings && self.warnings > 0)
    }

    /// The last line of human output, e.g. `ok: 3 files checked` or
    /// `error: 2 errors, 1 warning in 1 of 3 files`.
    fn summary(&self, n_unreadable: usize, deny_warnings: bool) -> String {
        let n_files = self.files.len();
        let checked = plural(n_files, "file");
        let mut counts = Vec::new();
        if self.errors > 0 {
            counts.push(plural(self.errors, "error"));
        }
        if self.warnings > 0 {
            counts.push(plural(self.warnings, "warning"));
        }
        let counts = counts.join(", ");
        let unreadable = match n_unreadable {
            0 => String::new(),
            n => format!("; {} could not be read", plural(n, "path")),
        };
        if self.fails(deny_warnings) {
            let denied = if self.errors == 0 {
                " (warnings are denied)"
            } else {
                ""
            };
            let place = match n_files {
                1 => "1 file".to_string(),
                n => format!("{} of {n} files", self.files_with_diagnostics.len()),
            };
            format!("error: {counts} in {place}{denied}{unreadable}")
        } else if n_unreadable > 0 {
            let found = if counts.is_empty() {
                String::new()
            } else {
                format!(", {counts}")
            };
            format!("error: {checked} checked{found}{unreadable}")
        } else if self.warnings > 0 {
            format!("ok: {checked} checked, {counts}")
        } else {
            format!("ok: {checked} checked")
        }
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Expands the command line's paths into programs to check, in order:
/// files as given, directories as their `*.dt` files (recursively, sorted).
/// Returns the inputs and one message per path that cannot be used.
pub(crate) fn collect_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut stdin_seen = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_seen {
                errors.push("`-` (standard input) is given more than once".to_string());
            } else {
                stdin_seen = true;
                inputs.push(Input::Stdin);
            }
            continue;
        }
        match std::fs::metadata(path) {
            Err(e) => errors.push(format!("cannot read `{}`: {e}", path.display())),
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                walk(path, &mut found, &mut errors);
                found.sort();
                if found.is_empty() {
                    errors.push(format!("no `.dt` files in directory `{}`", path.display()));
                }
                inputs.extend(found.into_iter().map(Input::File));
            }
            Ok(_) => inputs.push(Input::File(path.clone())),
        }
    }
    (inputs, errors)
}

/// Collects the `*.dt` files under `dir`. Hidden directories are skipped and
/// symbolic links to directories are not followed, so the walk terminates.
fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(format!("cannot read directory `{}`: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(format!("cannot read directory `{}`: {e}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if kind.is_dir() {
            if !hidden {
                walk(&path, found, errors);
            }
        } else if path.extension().is_some_and(|ext| ext == "dt")
            && (kind.is_file() || path.is_file())
        {
            found.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(errors: usize, warnings: usize, files: &[&str], with: &[&str]) -> Tally {
        Tally {
            errors,
            warnings,
            files: files.iter().map(|s| s.to_string()).collect(),
            files_with_diagnostics: with.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(tally(0, 0, &["a"], &[]).outcome(0, true), Outcome::Clean);
        assert_eq!(
            tally(0, 3, &["a"], &["a"]).outcome(0, false),
            Outcome::Clean
        );
        assert_eq!(
            tally(0, 3, &["a"], &["a"]).outcome(0, true),
            Outcome::Failed
        );
        assert_eq!(
            tally(1, 0, &["a"], &["a"]).outcome(0, false),
            Outcome::Failed
        );
        assert_eq!(
            tally(1, 0, &["a"], &["a"]).outcome(1, false),
            Outcome::UsageOrIo
        );
    }

    #[test]
    fn summary_lines() {
        assert_eq!(
            tally(0, 0, &["a", "b", "c"], &[]).summary(0, false),
            "ok: 3 files checked"
        );
        assert_eq!(
            tally(0, 0, &["a"], &[]).summary(0, false),
            "ok: 1 file checked"
        );
        assert_eq!(
            tally(2, 1, &["a", "b", "c"], &["a"]).summary(0, false),
            "error: 2 errors, 1 warning in 1 of 3 files"
        );
        assert_eq!(
            tally(0, 2, &["a", "b"], &["b"]).summary(0, false),
            "ok: 2 files checked, 2 warnings"
        );
        assert_eq!(
            tally(0, 1, &["a", "b"], &["b"]).summary(0, true),
            "error: 1 warning in 1 of 2 files (warnings are denied)"
        );
        assert_eq!(
            tally(0, 0, &["a"], &[]).summary(2, false),
            "error: 1 file checked; 2 paths could not be read"
        );
        assert_eq!(
            tally(1, 0, &["a"], &["a"]).summary(1, false),
            "error: 1 error in 1 file; 1 path could not be read"
        );
    }
}
