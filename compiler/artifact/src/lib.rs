//! The `.dtx` artifact: what `dtc compile` writes and a runtime loads.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic           4 bytes   "DTX\0"
//! format version  u16       FORMAT_VERSION
//! reserved        u16       0
//! metadata length u32       then the metadata, JSON (see [`Metadata`])
//! program length  u32       then the IR program, JSON
//! checksum        32 bytes  SHA-256 of every byte before it
//! signatures      u32 count, then per signature: u32 length + bytes
//! ```
//!
//! Loading never trusts the file: [`decode`] refuses a short or truncated
//! file, a wrong magic or version, a checksum that does not match (a
//! corrupted or edited file), and a program the IR verifier rejects, each
//! with a message saying which. Signatures (added by reviewers, see
//! [`signing`]) follow the checksum and sign it; `decode` only reads them,
//! and [`verify_signatures`] checks them against the keys a deployment
//! trusts.

pub mod signing;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use signing::{
    KeyError, PrivateKey, PublicKey, SignError, SignatureInfo, SignatureReport, Signed, Status,
    add_signature, load_private_key, load_public_key, verify_signatures,
};

pub const MAGIC: &[u8; 4] = b"DTX\0";
pub const FORMAT_VERSION: u16 = 1;
/// Metadata and programs larger than this are refused before parsing.
pub const MAX_SECTION: u32 = 64 << 20;

/// What an artifact says about its program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The program's root file, as compiled.
    pub program: String,
    /// SHA-256 of the sources (each file's name and text), hex.
    pub source_hash: String,
    pub compiler_version: String,
    /// The risk tier: `none`, `limited` or `high`.
    pub tier: String,
    /// The risk report as `dtc risk --format json` prints it.
    pub risk: serde_json::Value,
    /// The program's memory upper bound, bytes.
    pub memory_bound: u64,
}

/// A loaded artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub format_version: u16,
    pub metadata: Metadata,
    pub program: dtc_ir::Program,
    pub checksum: [u8; 32],
    pub signatures: Vec<Vec<u8>>,
}

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    Truncated { needed: usize, found: usize },
    NotAnArtifact,
    TooManySignatures(u32),
    Version(u16),
    TooLarge(u32),
    Checksum,
    Malformed(String),
    Unverified(Vec<dtc_ir::VerifyError>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, found } => {
                write!(f, "the artifact is truncated: it needs at least {needed} bytes here and has {found}")
            }
            Error::NotAnArtifact => f.write_str("not a dtc artifact (the file does not start with the DTX magic)"),
            Error::TooManySignatures(n) => write!(
                f,
                "the artifact claims {n} signatures; at most {} are allowed",
                signing::MAX_SIGNATURES
            ),
            Error::Version(v) => write!(
                f,
                "artifact format version {v} is not supported (this dtc reads version {FORMAT_VERSION}); recompile it with this dtc"
            ),
            Error::TooLarge(n) => write!(f, "a section of {n} bytes is larger than the {MAX_SECTION} allowed"),
            Error::Checksum => f.write_str("the checksum does not match: the artifact is corrupted or was edited after compiling"),
            Error::Malformed(e) => write!(f, "the artifact's contents are malformed: {e}"),
            Error::Unverified(errors) => {
                write!(f, "the program in the artifact does not verify:")?;
                for e in errors.iter().take(10) {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// SHA-256 of a program's sources, in the order given.
pub fn source_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes an artifact.
pub fn encode(metadata: &Metadata, program: &dtc_ir::Program, signatures: &[Vec<u8>]) -> Vec<u8> {
    let meta = serde_json::to_vec(metadata).unwrap_or_default();
    let prog = serde_json::to_vec(program).unwrap_or_default();
    let mut out = Vec::with_capacity(meta.len() + prog.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(prog.len() as u32).to_le_bytes());
    out.extend_from_slice(&prog);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    write_signatures(&mut out, signatures);
    out
}

/// Appends the signature section: the count, then each entry with its length.
fn write_signatures(out: &mut Vec<u8>, signatures: &[Vec<u8>]) {
    out.extend_from_slice(&(signatures.len() as u32).to_le_bytes());
    for s in signatures {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
}

/// Where the signature section starts: just after the checksum. Only the
/// framing is read here; callers decode the artifact to trust it.
fn signatures_offset(bytes: &[u8]) -> Result<usize, Error> {
    let mut r = Reader { bytes, at: 0 };
    r.take(4 + 2 + 2)?;
    r.section()?;
    r.section()?;
    r.take(32)?;
    Ok(r.at)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(Error::Truncated {
                needed: n,
                found: self.bytes.len().saturating_sub(self.at),
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn section(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()?;
        if n > MAX_SECTION {
            return Err(Error::TooLarge(n));
        }
        self.take(n as usize)
    }
}

/// Reads and verifies an artifact.
pub fn decode(bytes: &[u8]) -> Result<Artifact, Error> {
    let mut r = Reader { bytes, at: 0 };
    let magic = r.take(4).map_err(|_| Error::NotAnArtifact)?;
    if magic != MAGIC {
        return Err(Error::NotAnArtifact);
    }
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(Error::Version(version));
    }
    let _reserved = r.u16()?;
    let meta = r.section()?;
    let prog = r.section()?;
    let body_end = r.at;
    let checksum: [u8; 32] = r.take(32)?.try_into().map_err(|_| Error::Checksum)?;
    if Sha256::digest(&bytes[..body_end]).as_slice() != checksum {
        return Err(Error::Checksum);
    }
    let n_signatures = r.u32()?;
    if n_signatures > signing::MAX_SIGNATURES {
        return Err(Error::TooManySignatures(n_signatures));
    }
    let mut signatures = Vec::new();
    for _ in 0..n_signatures {
        signatures.push(r.section()?.to_vec());
    }
    if r.at != bytes.len() {
        return Err(Error::Malformed(format!(
            "{} bytes after the last signature",
            bytes.len() - r.at
        )));
    }
    let metadata: Metadata =
        serde_json::from_slice(meta).map_err(|e| Error::Malformed(format!("metadata: {e}")))?;
    let program: dtc_ir::Program =
        serde_json::from_slice(prog).map_err(|e| Error::Malformed(format!("program: {e}")))?;
    dtc_ir::verify(&program).map_err(Error::Unverified)?;
    Ok(Artifact {
        format_version: version,
        metadata,
        program,
        checksum,
        signatures,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> (Metadata, dtc_ir::Program) {
        let program = dtc_ir::Program {
            name: "p.dt".into(),
            ..dtc_ir::Program::default()
        };
        let metadata = Metadata {
            program: "p.dt".into(),
            source_hash: source_hash([("p.dt", "")]),
            compiler_version: "0.1.0".into(),
            tier: "none".into(),
            risk: serde_json::json!({}),
            memory_bound: 0,
        };
        (metadata, program)
    }

    #[test]
    fn round_trips() {
        let (m, p) = sample();
        let bytes = encode(&m, &p, &[b"sig".to_vec()]);
        let a = decode(&bytes).expect("decodes");
        assert_eq!(a.metadata, m);
        assert_eq!(a.program, p);
        assert_eq!(a.signatures, vec![b"sig".to_vec()]);
    }

    #[test]
    fn refuses_bad_artifacts() {
        let (m, p) = sample();
        let bytes = encode(&m, &p, &[]);
        // Every truncation is refused, none panics.
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "truncated at {n} accepted");
        }
        assert_eq!(decode(b"PK\x03\x04 a zip file"), Err(Error::NotAnArtifact));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(decode(&v2), Err(Error::Version(2)));
        // A flipped byte anywhere before the checksum is caught.
        for i in 8..bytes.len() - 36 {
            let mut c = bytes.clone();
            c[i] ^= 0x20;
            assert!(decode(&c).is_err(), "corruption at {i} accepted");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(decode(&extra), Err(Error::Malformed(_))));
    }

    #[test]
    fn a_tampered_program_with_a_fixed_checksum_fails_verification() {
        let (m, mut p) = sample();
        p.functions.push(dtc_ir::Function {
            name: "loop".into(),
            params: vec![],
            ret: dtc_ir::Type::Int,
            n_locals: 1,
            body: vec![dtc_ir::Stmt::ForRange {
                local: 0,
                from: 0,
                to: i64::MAX,
                body: vec![],
            }],
        });
        let bytes = encode(&m, &p, &[]);
        assert!(matches!(decode(&bytes), Err(Error::Unverified(_))));
    }
}
