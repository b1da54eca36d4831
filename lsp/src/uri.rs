//! `file:` URIs to paths and back.
//!
//! lsp-types carries URIs as text; the driver wants paths. Only `file:`
//! URIs name files; any other scheme (an unsaved buffer, `untitled:`) is
//! given a path of its own that is on no disk, so its imports resolve from
//! the current directory and nothing else is affected.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::Uri;

/// The path a document URI stands for.
pub fn to_path(uri: &Uri) -> PathBuf {
    let s = uri.as_str();
    match s.strip_prefix("file://") {
        Some(rest) => {
            // `file:///a/b` (empty authority) or `file://host/a/b`.
            let path = match rest.find('/') {
                Some(i) => &rest[i..],
                None => rest,
            };
            PathBuf::from(decode(path))
        }
        None => PathBuf::from(decode(s)),
    }
}

/// A `file:` URI for an absolute (or made absolute) path.
pub fn from_path(path: &Path) -> Option<Uri> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut s = String::from("file://");
    for b in absolute.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&s).ok()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let uri = from_path(Path::new("/tmp/a b/ü.dt")).expect("uri");
        assert_eq!(uri.as_str(), "file:///tmp/a%20b/%C3%BC.dt");
        assert_eq!(to_path(&uri), PathBuf::from("/tmp/a b/ü.dt"));
        let odd = Uri::from_str("untitled:Untitled-1").expect("uri");
        assert_eq!(to_path(&odd), PathBuf::from("untitled:Untitled-1"));
        // A bad escape is kept as it is.
        let bad = Uri::from_str("file:///x%2").map(|u| to_path(&u));
        assert!(bad.is_err() || bad.is_ok_and(|p| p.to_string_lossy().ends_with("%2")));
    }
}
