//! The compiler session: the one API the command line, the language server
//! and the test harness use to check dt programs.
//!
//! The driver owns all file access, and does it through the [`FileSystem`]
//! trait so that callers choose where files come from: [`RealFs`] for the
//! disk, [`MemoryFs`] for tests and editor buffers. It reads the root file,
//! follows its `import`s, parses every file with `dtc_syntax`, hands the
//! parsed units to `dtc_sema`, and returns the files, the trees and every
//! diagnostic, sorted. It never prints and never panics on input: unreadable
//! imports and invalid UTF-8 are diagnostics like any other.
//!
//! ```
//! use dtc_driver::{MemoryFs, Session};
//!
//! let fs = MemoryFs::new().with_file("schemas/a.dt", "event A { x: int }\n");
//! let out = Session::new(fs).check_source("main.dt", "import \"schemas/a.dt\"\n");
//! assert!(!out.has_errors());
//! ```

mod fs;
mod session;

pub use fs::{FileSystem, MemoryFs, RealFs, normalize};
pub use session::{CheckOutput, ReadError, Session};
