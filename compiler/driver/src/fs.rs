//! File access for the session, behind a trait.
//!
//! The compiler itself does no IO: the driver reads the root file and every
//! import through a [`FileSystem`]. [`RealFs`] is the disk; [`MemoryFs`]
//! holds files in memory for tests, fuzzing and the language server (whose
//! open buffers are not on disk yet). Paths are resolved lexically
//! ([`normalize`]) so that a file has the same display name however an import
//! spells the way to it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What the session needs from a file system.
pub trait FileSystem {
    /// The whole content of a file, as bytes (decoding is the session's job,
    /// so that invalid UTF-8 becomes a diagnostic rather than an IO error).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// A path that is equal for every way of naming the same file, used to
    /// read each imported file once. Fails when the file does not exist.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
}

impl<T: FileSystem + ?Sized> FileSystem for &T {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        (**self).read(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        (**self).canonicalize(path)
    }
}

impl<T: FileSystem + ?Sized> FileSystem for Box<T> {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        (**self).read(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        (**self).canonicalize(path)
    }
}

/// The real file system. Relative paths are relative to the process's
/// current directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// Files held in memory, keyed by their normalized path. A path that is a
/// prefix directory of some file reads as a directory (an error, like the
/// disk); anything else that is not a file is not found.
#[derive(Debug, Clone, Default)]
pub struct MemoryFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemoryFs {
    pub fn new() -> MemoryFs {
        MemoryFs::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: impl AsRef<Path>, content: impl Into<Vec<u8>>) {
        self.files.insert(normalize(path.as_ref()), content.into());
    }

    /// Builder form of [`MemoryFs::insert`].
    pub fn with_file(mut self, path: impl AsRef<Path>, content: impl Into<Vec<u8>>) -> MemoryFs {
        self.insert(path, content);
        self
    }

    /// Removes a file, returning its content.
    pub fn remove(&mut self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        self.files.remove(&normalize(path.as_ref()))
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|k| k != path && k.starts_with(path))
    }

    fn lookup(&self, path: &Path) -> io::Result<(&PathBuf, &Vec<u8>)> {
        let key = normalize(path);
        match self.files.get_key_value(&key) {
            Some(entry) => Ok(entry),
            None if self.is_dir(&key) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }
}

impl FileSystem for MemoryFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.lookup(path).map(|(_, content)| content.clone())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.lookup(path).map(|(key, _)| key.clone())
    }
}

/// Resolves `.` and `..` without touching the disk: `a/./b/../c.dt` is
/// `a/c.dt`. A `..` that climbs above the start of a relative path is kept
/// (`../x.dt`); one that climbs above the root is dropped, as the OS does.
/// The empty path normalizes to `.`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                Some(Component::ParentDir | Component::CurDir) | None => parts.push(component),
            },
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        let n = |s: &str| normalize(Path::new(s)).to_string_lossy().into_owned();
        assert_eq!(n("a/./b/../c.dt"), "a/c.dt");
        assert_eq!(n("./x.dt"), "x.dt");
        assert_eq!(n("../x.dt"), "../x.dt");
        assert_eq!(n("a/../../x.dt"), "../x.dt");
        assert_eq!(n("/../x.dt"), "/x.dt");
        assert_eq!(n(""), ".");
        assert_eq!(n("a/.."), ".");
    }

    #[test]
    fn memory_fs_reads_files_and_reports_dirs() {
        let fs = MemoryFs::new().with_file("dir/a.dt", "x");
        assert_eq!(
            fs.read(Path::new("./dir/b/../a.dt")).ok(),
            Some(b"x".to_vec())
        );
        assert_eq!(
            fs.canonicalize(Path::new("dir//a.dt")).ok(),
            Some(PathBuf::from("dir/a.dt"))
        );
        let kind = |p: &str| fs.read(Path::new(p)).err().map(|e| e.kind());
        assert_eq!(kind("dir"), Some(io::ErrorKind::IsADirectory));
        assert_eq!(kind("nope.dt"), Some(io::ErrorKind::NotFound));
    }
}
