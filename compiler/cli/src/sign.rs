//! `dtc keygen` and `dtc sign`: reviewer keys and approvals.
//!
//! Keys are written with the operating system's randomness; the private key
//! file is created readable by its owner only and never overwrites a file.
//! Signing checks the artifact fully first and appends the signature, keeping
//! every other byte; signing again with the same key changes nothing, since
//! a second signature by one reviewer is not a second approval.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use dtc_artifact::signing::{self, PrivateKey, PublicKey, Signed};

use crate::{Io, KeygenArgs, Outcome, SignArgs};

pub(crate) fn keygen(args: &KeygenArgs, io: &mut Io<'_>) -> Outcome {
    let base = args.output.as_os_str().to_os_string();
    let with = |ext: &str| {
        let mut p = base.clone();
        p.push(ext);
        PathBuf::from(p)
    };
    let (private_path, public_path) = (with(".key"), with(".pub"));
    for p in [&private_path, &public_path] {
        if p.symlink_metadata().is_ok() {
            let _ = writeln!(
                io.stderr,
                "error: `{}` already exists; refusing to overwrite a key (choose another name with -o, or remove it)",
                p.display()
            );
            return Outcome::UsageOrIo;
        }
    }
    let key = match PrivateKey::generate() {
        Ok(k) => k,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    if let Err(e) = write_new(&private_path, key.to_text().as_bytes(), 0o600) {
        let _ = writeln!(
            io.stderr,
            "error: cannot write `{}`: {e}",
            private_path.display()
        );
        return Outcome::UsageOrIo;
    }
    if let Err(e) = write_new(&public_path, key.public().to_text().as_bytes(), 0o644) {
        let _ = writeln!(
            io.stderr,
            "error: cannot write `{}`: {e} (the private key `{}` was written; remove it and retry)",
            public_path.display(),
            private_path.display()
        );
        return Outcome::UsageOrIo;
    }
    let _ = writeln!(
        io.stderr,
        "wrote {} (private, mode 600) and {} (public)\nkey {}",
        private_path.display(),
        public_path.display(),
        key.public().fingerprint()
    );
    Outcome::Clean
}

/// Creates a file that must not exist yet, with these permissions from the
/// start (never a moment readable by others).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub(crate) fn sign(args: &SignArgs, io: &mut Io<'_>) -> Outcome {
    let key = match dtc_artifact::load_private_key(&args.key) {
        Ok(k) => k,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&args.key)
            && m.permissions().mode() & 0o077 != 0
        {
            let _ = writeln!(
                io.stderr,
                "warning: the private key `{}` is readable by other users (mode {:o}); `chmod 600` it",
                args.key.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
    let bytes = match std::fs::read(&args.artifact) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(
                io.stderr,
                "error: cannot read `{}`: {e}",
                args.artifact.display()
            );
            return Outcome::UsageOrIo;
        }
    };
    let reviewer = args.reviewer.as_deref().unwrap_or("");
    let out_path = args.output.as_ref().unwrap_or(&args.artifact);
    let fingerprint = key.public().fingerprint();
    let out = match signing::add_signature(&bytes, &key, reviewer) {
        Ok(Signed::Added(out)) => out,
        Ok(Signed::AlreadySigned { reviewer }) => {
            let _ = writeln!(
                io.stderr,
                "`{}` is already signed by key {fingerprint}{}; one key is one approval, so nothing was added",
                args.artifact.display(),
                reviewer_suffix(&reviewer)
            );
            // With -o, the output still holds the (unchanged) artifact.
            if args.output.is_some() && !write_replacing(out_path, &bytes, io) {
                return Outcome::UsageOrIo;
            }
            return Outcome::Clean;
        }
        Err(e) => {
            let _ = writeln!(
                io.stderr,
                "error: cannot sign `{}`: {e}",
                args.artifact.display()
            );
            return Outcome::Failed;
        }
    };
    if !write_replacing(out_path, &out, io) {
        return Outcome::UsageOrIo;
    }
    let _ = writeln!(
        io.stderr,
        "signed {} with key {fingerprint}{}",
        out_path.display(),
        reviewer_suffix(reviewer)
    );
    Outcome::Clean
}

fn reviewer_suffix(reviewer: &str) -> String {
    if reviewer.is_empty() {
        String::new()
    } else {
        format!(" (reviewer \"{reviewer}\")")
    }
}

/// Writes through a temporary file and a rename, so a reader (an agent
/// watching its directory) sees the old artifact or the new one, never half.
fn write_replacing(path: &Path, bytes: &[u8], io: &mut Io<'_>) -> bool {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".signing");
    let tmp = PathBuf::from(tmp);
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        let _ = writeln!(io.stderr, "error: cannot write `{}`: {e}", path.display());
        return false;
    }
    true
}

/// Reads the trusted public keys named on the command line.
pub(crate) fn trusted_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, String> {
    paths
        .iter()
        .map(|p| dtc_artifact::load_public_key(p).map_err(|e| e.to_string()))
        .collect()
}
