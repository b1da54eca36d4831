//! The check session: load a root file and its imports, parse them, run
//! the checker and collect every diagnostic.
//!
//! Loading is breadth-first from the root. Each `import` path is resolved
//! relative to the directory of the file that contains it, normalized
//! lexically for display, and canonicalized through the [`FileSystem`] so a
//! file reached by two spellings (or by a cycle) is read once. A file that
//! cannot be read becomes an `E0210` diagnostic on the import's path string;
//! a file that is not UTF-8 becomes an `E0001` diagnostic at its first bad
//! byte. Only the root file failing to load is an error of the call itself
//! ([`ReadError`]), because then there is nothing to report diagnostics on.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use dtc_analysis::Report;
use dtc_analysis::policy::Policy;
use dtc_diagnostics::{Code, Diagnostic, FileId, Label, Severity, SourceMap, Span};
use dtc_sema::{Analysis, Unit};
use dtc_syntax::ast::{Item, SourceFileAst};

use crate::fs::{FileSystem, normalize};

/// A compiler session over a file system. It holds no state between checks:
/// every call reads its files afresh.
#[derive(Debug, Clone, Default)]
pub struct Session<F: FileSystem> {
    fs: F,
    /// A deployment policy to check programs against: its display name and
    /// its text.
    policy: Option<(String, String)>,
}

/// The root file of a check could not be read.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub error: io::Error,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read `{}`: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Everything one check produced.
///
/// Invariant: `sources`, `paths` and `units` describe the same files in the
/// same order, so `units[i].file == FileId(i)` and `paths[i]` is where that
/// file was read from. A policy file, when given, comes after them in
/// `sources` and `paths`.
#[derive(Debug)]
pub struct CheckOutput {
    /// Every file read: the root first, then imports in the order found.
    pub sources: SourceMap,
    /// The file the check started from.
    pub root: FileId,
    /// Where each file was read from; `None` for text handed to
    /// [`Session::check_source`] or [`Session::check_bytes`].
    pub paths: Vec<Option<PathBuf>>,
    /// The parsed files with their imports resolved, as given to the checker.
    pub units: Vec<Unit>,
    /// Every diagnostic of every pass, sorted with [`dtc_diagnostics::sort`].
    pub diagnostics: Vec<Diagnostic>,
    /// The checker's other results. Its `diagnostics` are moved into
    /// [`CheckOutput::diagnostics`], so that field is empty here.
    pub analysis: Analysis,
    /// The risk report, when the program type-checks (analysis needs a
    /// well-typed program).
    pub report: Option<Report>,
    /// The policy the program was checked against, when one was given and
    /// it parsed. Its file is the last one in `sources`.
    pub policy: Option<Policy>,
}

impl CheckOutput {
    /// Lowers the checked program to the IR and verifies it. `None` when
    /// the program has errors; `Err` only if the verifier rejects what the
    /// compiler produced, which is a compiler bug.
    pub fn lower(&self) -> Option<Result<dtc_ir::Program, Vec<dtc_ir::VerifyError>>> {
        if self.has_errors() || self.units.is_empty() {
            return None;
        }
        let mut defaults = dtc_ir::Defaults::default();
        if let Some(p) = &self.policy {
            let d = &p.defaults;
            defaults.trigger_budget = (d.trigger_budget.0.max(1) as u64, d.trigger_budget.1);
            defaults.emit_budget = (d.emit_budget.0.max(1) as u64, d.emit_budget.1);
            defaults.machine_max = d.machine_max;
            defaults.map_max = d.map_max;
        }
        let mut program = dtc_ir::lower(&self.units, &self.analysis.expr_types, &defaults);
        program.name = self.sources.get(self.root).name.clone();
        Some(dtc_ir::verify(&program).map(|()| program))
    }

    /// The checked program as an unsigned `.dtx` artifact: the verified IR
    /// with metadata from the analysis (tier, risk report, memory bound)
    /// and the hash of every source file read. What `dtc compile` writes,
    /// for every tool and test that needs an artifact. `None` when the
    /// program has errors; `Err` as for [`CheckOutput::lower`].
    pub fn artifact(
        &self,
        compiler_version: &str,
    ) -> Option<Result<Vec<u8>, Vec<dtc_ir::VerifyError>>> {
        let report = self.report.as_ref()?;
        let program = match self.lower()? {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let sources = self.units.iter().map(|u| {
            let f = self.sources.get(u.file);
            (f.name.as_str(), f.text.as_str())
        });
        let metadata = dtc_artifact::Metadata {
            program: self.sources.get(self.root).name.clone(),
            source_hash: dtc_artifact::source_hash(sources),
            compiler_version: compiler_version.to_string(),
            tier: report.tier.key().to_string(),
            risk: dtc_analysis::render_json(report, &self.sources),
            memory_bound: report.memory_total,
        };
        Some(Ok(dtc_artifact::encode(&metadata, &program, &[])))
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Whether the check fails: any error, or any warning when warnings are
    /// denied.
    pub fn fails(&self, deny_warnings: bool) -> bool {
        self.has_errors() || (deny_warnings && self.warning_count() > 0)
    }

    /// The diagnostics whose primary label is in `file`.
    pub fn diagnostics_in(&self, file: FileId) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(move |d| d.primary.file == file)
    }

    fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

impl<F: FileSystem> Session<F> {
    pub fn new(fs: F) -> Session<F> {
        Session { fs, policy: None }
    }

    /// Checks programs against this deployment policy (TOML text) too.
    pub fn with_policy(mut self, name: impl Into<String>, text: impl Into<String>) -> Session<F> {
        self.policy = Some((name.into(), text.into()));
        self
    }

    /// The file system this session reads through.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Checks the file at `path` and everything it imports. The file's
    /// display name is `path` as given (normalized), so relative paths give
    /// relative names in diagnostics.
    pub fn check_path(&self, path: &Path) -> Result<CheckOutput, ReadError> {
        let bytes = self.fs.read(path).map_err(|error| ReadError {
            path: path.to_path_buf(),
            error,
        })?;
        let name = normalize(path);
        let mut loader = Loader::new(&self.fs, self.policy.as_ref());
        let root = loader.add_file(
            name.to_string_lossy().into_owned(),
            Some(name.clone()),
            &bytes,
        );
        if let Ok(canonical) = self.fs.canonicalize(path) {
            loader.by_canonical.insert(canonical, root);
        }
        Ok(loader.finish(root))
    }

    /// Checks text that is not (necessarily) on disk, such as an editor
    /// buffer. `name` is its display name and the base for its imports,
    /// which are read through the file system.
    pub fn check_source(&self, name: &str, text: &str) -> CheckOutput {
        self.check_bytes(name, text.as_bytes())
    }

    /// Like [`Session::check_source`] for bytes that may not be UTF-8, such
    /// as standard input.
    pub fn check_bytes(&self, name: &str, bytes: &[u8]) -> CheckOutput {
        let mut loader = Loader::new(&self.fs, self.policy.as_ref());
        let root = loader.add_file(name.to_string(), None, bytes);
        if let Ok(canonical) = self.fs.canonicalize(Path::new(name)) {
            loader.by_canonical.insert(canonical, root);
        }
        loader.finish(root)
    }
}

/// One file as loaded, before its imports are resolved.
struct Loaded {
    ast: SourceFileAst,
    /// The directory its imports are relative to.
    dir: PathBuf,
}

struct Loader<'a, F: FileSystem> {
    fs: &'a F,
    policy: Option<&'a (String, String)>,
    sources: SourceMap,
    paths: Vec<Option<PathBuf>>,
    loaded: Vec<Loaded>,
    by_canonical: HashMap<PathBuf, FileId>,
    diagnostics: Vec<Diagnostic>,
    /// Files whose imports are still to be resolved, in FileId order.
    queue: VecDeque<FileId>,
}

impl<'a, F: FileSystem> Loader<'a, F> {
    fn new(fs: &'a F, policy: Option<&'a (String, String)>) -> Self {
        Loader {
            fs,
            policy,
            sources: SourceMap::new(),
            paths: Vec::new(),
            loaded: Vec::new(),
            by_canonical: HashMap::new(),
            diagnostics: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Decodes and parses one file and records it.
    fn add_file(&mut self, name: String, path: Option<PathBuf>, bytes: &[u8]) -> FileId {
        let dir = normalize(Path::new(&name).parent().unwrap_or(Path::new("")));
        // A byte order mark is not part of the text.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let (id, ast) = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let id = self.sources.add(name, text);
                let parsed = dtc_syntax::parse(id, &self.sources.get(id).text);
                self.diagnostics.extend(parsed.diagnostics);
                (id, parsed.ast)
            }
            Err(e) => {
                // The file is not parsed: the first bad byte is reported and
                // the file contributes no declarations. Up to the first bad
                // byte, the lossy text has the same offsets as the bytes.
                let at = e.valid_up_to();
                let byte = bytes.get(at).copied().unwrap_or_default();
                let id = self
                    .sources
                    .add(name, String::from_utf8_lossy(bytes).into_owned());
                let n_bad = count_invalid_sequences(bytes);
                let mut d = Diagnostic::new(
                    Code::E0001,
                    "file is not valid UTF-8",
                    Label::new(
                        id,
                        Span::new(at, at + '\u{FFFD}'.len_utf8()),
                        format!("byte 0x{byte:02X} is not valid UTF-8"),
                    ),
                )
                .with_help("save the file as UTF-8; the file was not checked any further");
                if n_bad > 1 {
                    d = d.with_note(format!(
                        "the file has {n_bad} invalid byte sequences; this is the first"
                    ));
                }
                self.diagnostics.push(d);
                (id, SourceFileAst::default())
            }
        };
        self.paths.push(path);
        self.loaded.push(Loaded { ast, dir });
        self.queue.push_back(id);
        id
    }

    /// Loads every import, transitively, then runs the checker.
    fn finish(mut self, root: FileId) -> CheckOutput {
        let mut imports: Vec<Vec<Option<FileId>>> = Vec::new();
        // Files are queued as they are added, in FileId order, so `imports`
        // is filled in FileId order too.
        while let Some(file) = self.queue.pop_front() {
            let idx = file.0 as usize;
            let dir = self.loaded[idx].dir.clone();
            let requests: Vec<(String, Span)> = self.loaded[idx]
                .ast
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Import(i) => Some((i.path.value.clone(), i.path.span)),
                    _ => None,
                })
                .collect();
            let mut resolved = Vec::with_capacity(requests.len());
            for (target, span) in requests {
                resolved.push(self.resolve_import(file, &dir, &target, span));
            }
            imports.push(resolved);
        }
        let units: Vec<Unit> = self
            .loaded
            .into_iter()
            .zip(imports)
            .enumerate()
            .map(|(i, (loaded, imports))| Unit {
                file: FileId(i as u32),
                ast: loaded.ast,
                imports,
            })
            .collect();
        let mut analysis = dtc_sema::check(&units);
        let mut diagnostics = self.diagnostics;
        diagnostics.append(&mut analysis.diagnostics);
        let mut sources = self.sources;
        let mut paths = self.paths;
        // The policy file goes last, after every program file, so that
        // `units[i].file == FileId(i)` still holds.
        let policy = self.policy.and_then(|(name, text)| {
            let id = sources.add(name.clone(), text.clone());
            paths.push(Some(PathBuf::from(name)));
            match dtc_analysis::policy::parse(id, text) {
                Ok(p) => Some(p),
                Err(errors) => {
                    diagnostics.extend(errors);
                    None
                }
            }
        });
        let well_typed = !diagnostics.iter().any(|d| d.is_error());
        let report = if well_typed && units.iter().any(|u| u.file == root) {
            let defaults = policy
                .as_ref()
                .map(|p| p.defaults.clone())
                .unwrap_or_default();
            let (mut report, findings) = dtc_analysis::analyze(&units, &analysis.types, &defaults);
            report.program = sources.get(root).name.clone();
            diagnostics.extend(findings);
            if let Some(p) = &policy {
                diagnostics.extend(dtc_analysis::policy::check(&report, p));
            }
            Some(report)
        } else {
            None
        };
        dtc_diagnostics::sort(&mut diagnostics);
        CheckOutput {
            sources,
            root,
            paths,
            units,
            diagnostics,
            analysis,
            report,
            policy,
        }
    }

    /// Finds (reading it if new) the file an import names, or reports why
    /// it cannot.
    fn resolve_import(
        &mut self,
        from: FileId,
        dir: &Path,
        target: &str,
        span: Span,
    ) -> Option<FileId> {
        let path = normalize(&dir.join(target));
        let fail = |this: &mut Self, why: String| {
            let place = if dir == Path::new(".") {
                "the current directory".to_string()
            } else {
                format!("`{}`", dir.display())
            };
            this.diagnostics.push(
                Diagnostic::new(
                    Code::E0210,
                    format!("cannot read imported file `{}`", path.display()),
                    Label::new(from, span, why),
                )
                .with_help(format!(
                    "import paths are relative to the directory of the importing file, here {place}"
                )),
            );
            None
        };
        if target.trim().is_empty() {
            return fail(self, "the import path is empty".to_string());
        }
        let canonical = match self.fs.canonicalize(&path) {
            Ok(c) => c,
            Err(e) => return fail(self, describe(&e)),
        };
        if let Some(&id) = self.by_canonical.get(&canonical) {
            return Some(id);
        }
        match self.fs.read(&path) {
            Ok(bytes) => {
                let id = self.add_file(path.to_string_lossy().into_owned(), Some(path), &bytes);
                self.by_canonical.insert(canonical, id);
                Some(id)
            }
            Err(e) => fail(self, describe(&e)),
        }
    }
}

/// An IO error in words that do not depend on the platform.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "this is a directory, not a file".to_string(),
        _ => e.to_string(),
    }
}

fn count_invalid_sequences(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => return n,
            Err(e) => {
                n += 1;
                match e.error_len() {
                    Some(len) => bytes = &bytes[e.valid_up_to() + len..],
                    None => return n,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemoryFs;

    fn codes(out: &CheckOutput) -> Vec<&'static str> {
        out.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    fn check(fs: MemoryFs, root: &str) -> CheckOutput {
        match Session::new(fs).check_path(Path::new(root)) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    const SCHEMA: &str = "event A { x: int }\n";

    #[test]
    fn import_is_found_and_read_once() {
        // A diamond: both imports reach `schemas/a.dt`, spelled differently.
        let fs = MemoryFs::new()
            .with_file(
                "app/main.dt",
                "import \"schemas/a.dt\"\nimport \"other/b.dt\"\nquery q = A | emit log C\n",
            )
            .with_file("app/schemas/a.dt", SCHEMA)
            .with_file(
                "app/other/b.dt",
                "import \"./../schemas/a.dt\"\nevent B { y: int }\n",
            );
        let out = check(fs, "app/main.dt");
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.units.len(), 3);
        assert_eq!(out.units[0].imports, vec![Some(FileId(1)), Some(FileId(2))]);
        assert_eq!(out.units[2].imports, vec![Some(FileId(1))]);
        assert_eq!(out.sources.get(FileId(1)).name, "app/schemas/a.dt");
        assert_eq!(out.paths[2].as_deref(), Some(Path::new("app/other/b.dt")));
        assert!(
            out.units
                .iter()
                .enumerate()
                .all(|(i, u)| u.file == FileId(i as u32))
        );
    }

    #[test]
    fn missing_import_is_a_diagnostic_on_the_path() {
        let src = "import \"nope.dt\"\nimport \"\"\nevent B { y: int }\n";
        let out = check(MemoryFs::new().with_file("dir/main.dt", src), "dir/main.dt");
        assert_eq!(codes(&out), vec!["E0210", "E0210"]);
        let d = &out.diagnostics[0];
        assert_eq!(&src[d.primary.span.range()], "\"nope.dt\"");
        assert_eq!(d.message, "cannot read imported file `dir/nope.dt`");
        assert_eq!(d.primary.message, "no such file");
        assert!(
            d.help.as_deref().is_some_and(|h| h.contains("`dir`")),
            "{d:?}"
        );
        assert_eq!(out.units[0].imports, vec![None, None]);
        assert!(out.has_errors());
        assert_eq!((out.error_count(), out.warning_count()), (2, 0));
    }

    #[test]
    fn importing_a_directory_is_a_diagnostic() {
        let fs = MemoryFs::new()
            .with_file("main.dt", "import \"lib\"\n")
            .with_file("lib/a.dt", SCHEMA);
        let out = check(fs, "main.dt");
        assert_eq!(codes(&out), vec!["E0210"]);
        assert_eq!(
            out.diagnostics[0].primary.message,
            "this is a directory, not a file"
        );
    }

    #[test]
    fn import_cycles_terminate() {
        let fs = MemoryFs::new()
            .with_file("a.dt", "import \"b.dt\"\nevent A { x: int }\n")
            .with_file("b.dt", "import \"a.dt\"\nevent B { x: int }\n")
            .with_file("c.dt", "import \"c.dt\"\nevent C { x: int }\n");
        let out = check(fs.clone(), "a.dt");
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.units.len(), 2);
        assert_eq!(out.units[0].imports, vec![Some(FileId(1))]);
        assert_eq!(out.units[1].imports, vec![Some(FileId(0))]);
        // A file may import itself.
        let out = check(fs, "c.dt");
        assert_eq!(out.units.len(), 1);
        assert_eq!(out.units[0].imports, vec![Some(FileId(0))]);
    }

    #[test]
    fn imported_files_report_their_own_syntax_errors() {
        let fs = MemoryFs::new()
            .with_file("a.dt", "import \"b.dt\"\nevent A { x: }\n")
            .with_file("b.dt", "event B { y: int \n");
        let out = check(fs, "a.dt");
        let files: Vec<(FileId, &str)> = out
            .diagnostics
            .iter()
            .map(|d| (d.primary.file, d.code.as_str()))
            .collect();
        assert_eq!(files, vec![(FileId(0), "E0104"), (FileId(1), "E0105")]);
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let mut bytes = b"event A { x: int }\n// caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n', 0xFF, 0xFE]);
        let out = check(MemoryFs::new().with_file("bad.dt", bytes), "bad.dt");
        assert_eq!(codes(&out), vec!["E0001"]);
        let d = &out.diagnostics[0];
        let at = out.sources.get(FileId(0)).line_col(d.primary.span.start);
        assert_eq!((at.line, at.column), (2, 7));
        assert_eq!(d.primary.message, "byte 0xE9 is not valid UTF-8");
        assert_eq!(
            d.notes,
            vec!["the file has 3 invalid byte sequences; this is the first".to_string()]
        );
        assert!(out.units[0].ast.items.is_empty());
        // Renderers accept the span.
        let _ = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, false);
        let _ = dtc_diagnostics::to_json_value(d, &out.sources);
    }

    #[test]
    fn invalid_utf8_in_an_import_is_reported_in_that_file() {
        let fs = MemoryFs::new()
            .with_file("a.dt", "import \"b.dt\"\n")
            .with_file("b.dt", vec![b'x', 0xC3]);
        let out = check(fs, "a.dt");
        assert_eq!(codes(&out), vec!["E0001"]);
        assert_eq!(out.diagnostics[0].primary.file, FileId(1));
        assert_eq!(out.diagnostics[0].primary.span.start, 1);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let out = check(
            MemoryFs::new().with_file("a.dt", "\u{FEFF}event A { x: int }\n"),
            "a.dt",
        );
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    }

    #[test]
    fn missing_root_is_a_read_error() {
        let err = Session::new(MemoryFs::new())
            .check_path(Path::new("gone.dt"))
            .err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("cannot read `gone.dt`: no such file".to_string())
        );
    }

    #[test]
    fn check_source_resolves_imports_through_the_fs() {
        let session = Session::new(MemoryFs::new().with_file("lib/a.dt", SCHEMA));
        let out = session.check_source(
            "lib/buffer.dt",
            "import \"a.dt\"\nquery q = A | emit log C\n",
        );
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.paths, vec![None, Some(PathBuf::from("lib/a.dt"))]);
        let out = session.check_bytes("<stdin>", &[0xFF]);
        assert_eq!(codes(&out), vec!["E0001"]);
        assert!(out.fails(false));
    }

    #[test]
    fn empty_and_comment_only_files_are_clean() {
        let session = Session::new(MemoryFs::new());
        assert!(session.check_source("e.dt", "").diagnostics.is_empty());
        assert!(
            session
                .check_source("c.dt", "// nothing here\n/* or here */")
                .diagnostics
                .is_empty()
        );
    }
}
