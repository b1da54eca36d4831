//! Shared helpers of dtc's data-driven tests.
//!
//! The tests themselves are under `tests/tests/`: `ui.rs` snapshots every
//! case in `tests/ui/`, `samples.rs` checks that every program in `samples/`
//! is clean, and `no_panic.rs` feeds mutated programs to the compiler. This
//! library holds what they share: where the files are, a file system rooted
//! at a directory (so diagnostics name files relatively and snapshots do not
//! depend on the machine), the `//@` header of a case, the text a snapshot
//! shows, and a small deterministic input mutator.

pub mod mutate;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use dtc_driver::{CheckOutput, FileSystem};

/// The workspace root (the directory above this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Every `*.dt` file under `dir`, recursively, sorted.
pub fn dt_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "dt") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The real file system with relative paths resolved against a base
/// directory instead of the process's working directory. Diagnostics then
/// show the relative names the test passed in.
#[derive(Debug, Clone)]
pub struct BaseDirFs {
    pub base: PathBuf,
}

impl FileSystem for BaseDirFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(self.base.join(path))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(self.base.join(path))
    }
}

/// What a case's `//@ expect:` header says it must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// `//@ expect: ok`: no diagnostics at all.
    Clean,
    /// `//@ expect: E0203, W0001`: exactly this set of codes.
    Codes(BTreeSet<String>),
}

/// Reads the `//@` directives of a case. Every line that starts with `//@`
/// is a directive: `expect` is required, so that a snapshot cannot silently
/// accept the wrong diagnostics; `policy` (read by [`policy_directive`])
/// names a policy file to check the case against.
pub fn expectation(source: &str) -> Result<Expectation, String> {
    let mut found = None;
    for line in source.lines() {
        let Some(directive) = line.trim_start().strip_prefix("//@") else {
            continue;
        };
        let Some((key, value)) = directive.split_once(':') else {
            return Err(format!(
                "malformed directive `{}`: write `//@ key: value`",
                line.trim()
            ));
        };
        match key.trim() {
            "expect" if found.is_some() => return Err("more than one `//@ expect:` line".into()),
            "expect" => {
                let value = value.trim();
                found = Some(if value == "ok" {
                    Expectation::Clean
                } else {
                    let codes: BTreeSet<String> =
                        value.split(',').map(|c| c.trim().to_string()).collect();
                    if let Some(bad) = codes
                        .iter()
                        .find(|c| dtc_diagnostics::Code::parse(c).is_none_or(|p| p.as_str() != *c))
                    {
                        return Err(format!("`{bad}` in `//@ expect:` is not a diagnostic code"));
                    }
                    Expectation::Codes(codes)
                });
            }
            "policy" => {}
            other => return Err(format!("unknown directive `//@ {other}:`")),
        }
    }
    found.ok_or_else(|| {
        "missing header: add `//@ expect: ok` or `//@ expect: E0203, ...`".to_string()
    })
}

/// The `//@ policy: path` directive of a case: a policy file, relative to
/// the `tests/` directory, to check the case against.
pub fn policy_directive(source: &str) -> Option<String> {
    source.lines().find_map(|line| {
        let directive = line.trim_start().strip_prefix("//@")?;
        let (key, value) = directive.split_once(':')?;
        (key.trim() == "policy").then(|| value.trim().to_string())
    })
}

/// The codes a check produced, as a set.
pub fn produced(out: &CheckOutput) -> Expectation {
    if out.diagnostics.is_empty() {
        Expectation::Clean
    } else {
        Expectation::Codes(
            out.diagnostics
                .iter()
                .map(|d| d.code.as_str().to_string())
                .collect(),
        )
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expectation::Clean => f.write_str("ok"),
            Expectation::Codes(codes) => f.write_str(
                &codes
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

/// The text of a snapshot: the sources, the diagnostics as people see them
/// (no colour), and the same diagnostics as JSON. The root file comes
/// first; imported files follow, so a reviewer sees every line a label can
/// point at.
pub fn snapshot_text(out: &CheckOutput) -> String {
    let mut text = String::new();
    for (id, file) in out.sources.files() {
        let role = if id == out.root { "" } else { " (imported)" };
        text.push_str(&format!("----- SOURCE {}{role}\n", file.name));
        text.push_str(&file.text);
        if !file.text.ends_with('\n') {
            text.push_str("\n----- (no newline at end of file)\n");
        }
    }
    text.push_str("----- DIAGNOSTICS\n");
    text.push_str(&dtc_diagnostics::render_human(
        &out.diagnostics,
        &out.sources,
        false,
    ));
    text.push_str("----- JSON\n");
    text.push_str(&dtc_diagnostics::render_json(
        &out.diagnostics,
        &out.sources,
    ));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_expectations() {
        assert_eq!(
            expectation("// about\n//@ expect: ok\n"),
            Ok(Expectation::Clean)
        );
        let codes = |c: &[&str]| Expectation::Codes(c.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            expectation("//@ expect: E0301, W0001,E0301"),
            Ok(codes(&["E0301", "W0001"]))
        );
        assert!(expectation("event A {}").is_err_and(|e| e.starts_with("missing header")));
        assert!(expectation("//@ expect: E9999").is_err());
        assert!(
            expectation("//@ expect: e0301").is_err(),
            "codes are written as printed"
        );
        assert!(
            expectation("//@ policy: ring0.toml").is_err(),
            "expect is still required"
        );
        assert!(expectation("//@ policy: ring0.toml\n//@ expect: ok").is_ok());
        assert_eq!(
            policy_directive("//@ expect: ok\n//@ policy: ui/p.toml\n").as_deref(),
            Some("ui/p.toml")
        );
        assert!(expectation("//@ expect: ok\n//@ expect: ok").is_err());
    }
}
