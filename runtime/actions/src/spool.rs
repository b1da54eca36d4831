//! The spool: the one directory actions write their files into, with a
//! budget on the disk it may use.
//!
//! The budget counts every regular file in the directory (a fresh scan at
//! each write, so files an operator removes give their space back) plus the
//! space reserved by writes in flight. A write that would pass the budget is
//! refused with the numbers, before anything is written when the size is
//! known and by deleting the finished file when an external tool (perf,
//! gcore) made it larger than its reservation.
//!
//! Files are written under a hidden `.partial-*` name and renamed when
//! complete, so a reader of the spool never sees half a file; leftovers of a
//! crash are removed when the spool is opened. Nothing here follows a
//! symbolic link: the directory is resolved once when opened, files are
//! created with `create_new` (which refuses an existing name, link or not),
//! and the scan does not follow links.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Hidden prefix of files being written.
const PARTIAL: &str = ".partial-";
/// Longest program or action part of a file name.
const MAX_NAME_PART: usize = 64;

/// A spool directory with a disk budget. Clones share the directory and
/// its reservations.
#[derive(Debug, Clone)]
pub struct Spool(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes reserved by writes in flight (not yet renamed into place).
    reserved: Mutex<u64>,
    /// Makes partial names unique within this process.
    sequence: AtomicU64,
}

/// Why the spool refused or failed a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolError {
    /// The write would pass the disk budget.
    Budget {
        needed: u64,
        used: u64,
        max_bytes: u64,
    },
    /// The file system said no.
    Io(String),
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Budget {
                needed,
                used,
                max_bytes,
            } => write!(
                f,
                "the spool's disk budget is {max_bytes} bytes, {used} are used, and this needs {needed} more; remove old files from the spool or raise its budget"
            ),
            SpoolError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SpoolError {}

/// A file now in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Space reserved for a file an external tool writes; see
/// [`Spool::reserve`].
#[derive(Debug)]
pub struct Pending {
    spool: Spool,
    /// Where the tool writes.
    pub partial: PathBuf,
    final_name: String,
    reserved: u64,
}

impl Spool {
    /// Opens (creating if needed, mode 700) a spool directory. Leftover
    /// partial files from an earlier run are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let io = |what: &str, e: std::io::Error| {
            SpoolError::Io(format!("spool `{}`: {what}: {e}", dir.display()))
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .map_err(|e| io("cannot create the directory", e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| io("cannot resolve the directory", e))?;
        if !dir.is_dir() {
            return Err(SpoolError::Io(format!(
                "spool `{}` is not a directory",
                dir.display()
            )));
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| io("cannot list it", e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(PARTIAL)
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Spool(Arc::new(Inner {
            dir,
            max_bytes,
            reserved: Mutex::new(0),
            sequence: AtomicU64::new(0),
        })))
    }

    /// The directory, resolved.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.0.max_bytes
    }

    /// Bytes of the regular files in the spool (links and partial files
    /// not counted: partial files are covered by their reservations).
    pub fn used_bytes(&self) -> Result<u64, SpoolError> {
        let entries = std::fs::read_dir(self.dir()).map_err(|e| {
            SpoolError::Io(format!(
                "spool `{}`: cannot list it: {e}",
                self.dir().display()
            ))
        })?;
        let mut total = 0u64;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                continue;
            }
            // `DirEntry::metadata` does not follow symbolic links.
            if let Ok(m) = entry.metadata()
                && m.is_file()
            {
                total = total.saturating_add(m.len());
            }
        }
        Ok(total)
    }

    /// Reserves `bytes` of the budget, or says why not.
    fn take(&self, bytes: u64) -> Result<(), SpoolError> {
        let mut reserved = self.0.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let used = self.used_bytes()?.saturating_add(*reserved);
        if used.saturating_add(bytes) > self.0.max_bytes {
            return Err(SpoolError::Budget {
                needed: bytes,
                used,
                max_bytes: self.0.max_bytes,
            });
        }
        *reserved += bytes;
        Ok(())
    }

    fn give_back(&self, bytes: u64) {
        let mut reserved = self.0.reserved.lock().unwrap_or_else(|e| e.into_inner());
        *reserved = reserved.saturating_sub(bytes);
    }

    /// A file name: `TIME-PROGRAM-ACTION.EXT`, each part reduced to
    /// characters safe in a file name.
    pub fn file_name(time_ns: i64, program: &str, action: &str, ext: &str) -> String {
        let time: String = dtc_engine::event::format_time(time_ns)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        format!("{time}-{}-{}.{}", clean(program), clean(action), clean(ext))
    }

    /// Writes a file whose content is known, within the budget.
    pub fn write(&self, name: &str, content: &[u8]) -> Result<SpoolFile, SpoolError> {
        let pending = self.reserve(name, content.len() as u64)?;
        let written = (|| {
            let mut f = create_new(&pending.partial)?;
            f.write_all(content)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            return Err(SpoolError::Io(format!(
                "cannot write `{}`: {e}",
                pending.partial.display()
            )));
        }
        pending.commit()
    }

    /// Reserves `estimate` bytes for a file another program will write at
    /// [`Pending::partial`]; [`Pending::commit`] then moves it into place.
    pub fn reserve(&self, name: &str, estimate: u64) -> Result<Pending, SpoolError> {
        self.take(estimate)?;
        let n = self.0.sequence.fetch_add(1, Ordering::Relaxed);
        let partial = self
            .dir()
            .join(format!("{PARTIAL}{}-{n}-{name}", std::process::id()));
        Ok(Pending {
            spool: self.clone(),
            partial,
            final_name: name.to_string(),
            reserved: estimate,
        })
    }
}

impl Pending {
    /// Moves the finished file into place under a name not yet taken. A
    /// file larger than the budget allows is deleted and refused; a path
    /// that is not a regular file (a link, nothing at all) is an error.
    pub fn commit(self) -> Result<SpoolFile, SpoolError> {
        let partial = self.partial.clone();
        self.commit_from(&partial)
    }

    /// Like [`Pending::commit`], for a tool that chose its own file name
    /// (gcore appends the pid): `written` must be in the spool.
    pub fn commit_from(mut self, written: &Path) -> Result<SpoolFile, SpoolError> {
        let spool = self.spool.clone();
        if written.parent() != Some(spool.dir()) {
            // Not ours: never touched.
            return Err(SpoolError::Io(format!(
                "`{}` is outside the spool",
                written.display()
            )));
        }
        let meta = std::fs::symlink_metadata(written).map_err(|e| {
            SpoolError::Io(format!(
                "the output `{}` is missing: {e}",
                written.display()
            ))
        })?;
        if !meta.is_file() {
            // Never follow, never delete through, a link someone planted.
            return Err(SpoolError::Io(format!(
                "the output `{}` is not a regular file",
                written.display()
            )));
        }
        let bytes = meta.len();
        if bytes > self.reserved {
            // The tool wrote more than reserved: take the rest, or give up.
            if let Err(e) = spool.take(bytes - self.reserved) {
                let _ = std::fs::remove_file(written);
                if let SpoolError::Budget {
                    used, max_bytes, ..
                } = e
                {
                    return Err(SpoolError::Budget {
                        needed: bytes,
                        used: used.saturating_sub(self.reserved),
                        max_bytes,
                    });
                }
                return Err(e);
            }
            self.reserved = bytes;
        }
        let mut target = spool.dir().join(&self.final_name);
        let mut n = 1;
        // `rename` would replace an existing file: find a free name first.
        while std::fs::symlink_metadata(&target).is_ok() {
            n += 1;
            target = spool.dir().join(format!("{n}-{}", self.final_name));
        }
        std::fs::rename(written, &target).map_err(|e| {
            let _ = std::fs::remove_file(written);
            SpoolError::Io(format!(
                "cannot move the output into `{}`: {e}",
                target.display()
            ))
        })?;
        Ok(SpoolFile {
            path: target,
            bytes,
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Committed or not, the reservation ends here: a committed file is
        // counted by the scan from now on. An uncommitted partial file is
        // removed (it is ours, and only a regular file is removed).
        if std::fs::symlink_metadata(&self.partial).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&self.partial);
        }
        self.spool.give_back(self.reserved);
    }
}

fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// A name part made of letters, digits, `_`, `.` and `-` only (so no path
/// separator and no `..` can get in), at most [`MAX_NAME_PART`] characters.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_PART)
        .collect();
    while out.contains("..") {
        out = out.replace("..", "_");
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("dtc-actions-spool-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_within_the_budget_and_refuses_past_it() {
        let spool = Spool::open(&scratch("budget"), 100).expect("opens");
        let a = spool.write("a.txt", &[1; 60]).expect("fits");
        assert_eq!(a.bytes, 60);
        assert_eq!(std::fs::read(&a.path).expect("written").len(), 60);
        let e = spool.write("b.txt", &[1; 41]).expect_err("past the budget");
        assert_eq!(
            e,
            SpoolError::Budget {
                needed: 41,
                used: 60,
                max_bytes: 100
            }
        );
        assert!(e.to_string().contains("remove old files"), "{e}");
        spool.write("b.txt", &[1; 40]).expect("exactly fits");
        // Removing a file gives its space back.
        std::fs::remove_file(&a.path).expect("rm");
        spool.write("c.txt", &[1; 60]).expect("fits again");
    }

    #[test]
    fn a_tool_output_larger_than_the_budget_is_deleted() {
        let spool = Spool::open(&scratch("tool"), 100).expect("opens");
        let p = spool.reserve("big.data", 10).expect("reserves");
        std::fs::write(&p.partial, [0u8; 150]).expect("tool writes");
        let partial = p.partial.clone();
        assert!(matches!(
            p.commit(),
            Err(SpoolError::Budget { needed: 150, .. })
        ));
        assert!(!partial.exists(), "the oversized output is removed");
        assert_eq!(spool.used_bytes(), Ok(0));
        // The reservation was given back.
        spool
            .write("ok", &[0; 100])
            .expect("the whole budget is free");
    }

    #[test]
    fn names_never_clash_and_never_leave_the_directory() {
        let spool = Spool::open(&scratch("names"), 1000).expect("opens");
        let a = spool.write("same", b"1").expect("first");
        let b = spool.write("same", b"2").expect("second");
        assert_ne!(a.path, b.path);
        assert_eq!(std::fs::read(&a.path).expect("a"), b"1");
        let name = Spool::file_name(0, "../../etc/passwd", "x/y", "json");
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
        assert_eq!(name, "19700101T000000Z-____etc_passwd-x_y.json");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_neither_followed_nor_counted() {
        let dir = scratch("links");
        let spool = Spool::open(&dir, 100).expect("opens");
        let outside = scratch("links-outside");
        std::fs::create_dir_all(&outside).expect("dir");
        let target = outside.join("victim");
        std::fs::write(&target, [0u8; 500]).expect("victim");
        std::os::unix::fs::symlink(&target, dir.join("planted")).expect("link");
        // The 500 bytes behind the link are not counted.
        assert_eq!(spool.used_bytes(), Ok(0));
        // Writing to the link's name makes a new file beside it, and the
        // file behind the link is untouched.
        let f = spool.write("planted", b"new").expect("writes");
        assert_ne!(f.path, dir.join("planted"));
        assert_eq!(std::fs::read(&target).expect("victim").len(), 500);
        // A tool output that is a link is refused, and the link is left.
        let p = spool.reserve("tool", 10).expect("reserves");
        std::os::unix::fs::symlink(&target, &p.partial).expect("link");
        let partial = p.partial.clone();
        assert!(matches!(p.commit(), Err(SpoolError::Io(_))));
        assert_eq!(std::fs::read(&target).expect("victim").len(), 500);
        let _ = std::fs::remove_file(partial);
        // And a path outside the spool is refused.
        let p = spool.reserve("tool", 10).expect("reserves");
        assert!(matches!(p.commit_from(&target), Err(SpoolError::Io(_))));
        assert!(target.exists(), "a file outside the spool is never removed");
    }

    #[test]
    fn leftover_partial_files_are_removed_on_open() {
        let dir = scratch("leftover");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(".partial-1-0-x"), [0u8; 10]).expect("write");
        std::fs::write(dir.join("kept"), [0u8; 10]).expect("write");
        let spool = Spool::open(&dir, 100).expect("opens");
        assert!(!dir.join(".partial-1-0-x").exists());
        assert_eq!(spool.used_bytes(), Ok(10));
    }
}
