//! Reviewer signatures: ed25519 keys, their text files, adding a signature
//! to an artifact and checking an artifact's signatures against the keys a
//! deployment trusts.
//!
//! A signature approves one exact artifact. It signs a domain-separated
//! message that holds the artifact's checksum (the SHA-256 of every byte of
//! header, metadata and program, which [`crate::decode`] has checked) and the
//! reviewer's name, so neither the body nor the name can be changed without
//! breaking it, and the bytes cannot be replayed as some other kind of
//! ed25519-signed message. Each signature carries its signer's public key,
//! so a verifier matches it against the keys it trusts; an approval counts
//! once per distinct trusted key, however often that key signed.
//!
//! A signature entry in the artifact's trailing section:
//!
//! ```text
//! tag        8 bytes   SIGNATURE_TAG ("dtxsig" 0 1: ed25519, version 1)
//! public key 32 bytes  the signer's ed25519 key
//! signature  64 bytes  over SIGNATURE_DOMAIN ‖ checksum ‖ u32 LE length ‖ reviewer
//! reviewer   the rest  UTF-8, at most MAX_REVIEWER bytes
//! ```
//!
//! Key files are text (see [`PRIVATE_KEY_HEADER`]): a first line naming the
//! kind and version, then the 32 key bytes in hex. Lines starting with `#`
//! and blank lines are ignored. Reading a key file is the only IO here, in
//! [`load_public_key`] and [`load_private_key`]; parsing is separate so
//! callers that read files their own way can use it.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Artifact, Error};

/// The first line of a private key file.
pub const PRIVATE_KEY_HEADER: &str = "dtc-ed25519-private-key v1";
/// The first line of a public key file.
pub const PUBLIC_KEY_HEADER: &str = "dtc-ed25519-public-key v1";
/// The first bytes of every signature entry.
pub const SIGNATURE_TAG: &[u8; 8] = b"dtxsig\x00\x01";
/// Prefix of every signed message, so a signature over an artifact means
/// nothing in any other protocol and vice versa.
pub const SIGNATURE_DOMAIN: &[u8] = b"dtc artifact approval v1\x00";
/// Longest reviewer name, bytes.
pub const MAX_REVIEWER: usize = 256;
/// Most signatures an artifact may carry.
pub const MAX_SIGNATURES: u32 = 1024;

const ENTRY_FIXED: usize = 8 + 32 + 64;

/// A reviewer's public key: what a deployment trusts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// A reviewer's private key: what `dtc sign` signs with.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, even in a debug dump.
        write!(f, "PrivateKey(public {})", self.public().fingerprint())
    }
}

impl PublicKey {
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A key from its 32 bytes; a point that is not on the curve, or a weak
    /// (small-order) key that would accept forged signatures, is refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, String> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| "the bytes are not a valid ed25519 public key".to_string())?;
        if key.is_weak() {
            return Err("the key is a weak (small-order) ed25519 key, which anyone can forge signatures for".into());
        }
        Ok(PublicKey(key))
    }

    /// A short name for the key: `SHA256:` and the first 16 bytes, in hex,
    /// of the SHA-256 of its bytes.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("SHA256:{}", crate::hex(&digest[..16]))
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_KEY_HEADER}\n{}\n", crate::hex(self.0.as_bytes()))
    }
}

impl PrivateKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError {
            path: None,
            reason: format!("the operating system's random source failed: {e}"),
        })?;
        Ok(PrivateKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key file's text. It holds the secret: write it readable by its
    /// owner only.
    pub fn to_text(&self) -> String {
        format!("{PRIVATE_KEY_HEADER}\n{}\n", crate::hex(&self.0.to_bytes()))
    }
}

/// A key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub path: Option<PathBuf>,
    pub reason: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "key `{}`: {}", p.display(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for KeyError {}

/// Which of the two key files a text is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Private,
    Public,
}

impl KeyKind {
    fn header(self) -> &'static str {
        match self {
            KeyKind::Private => PRIVATE_KEY_HEADER,
            KeyKind::Public => PUBLIC_KEY_HEADER,
        }
    }

    fn other(self) -> KeyKind {
        match self {
            KeyKind::Private => KeyKind::Public,
            KeyKind::Public => KeyKind::Private,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::Private => "private key (NAME.key)",
            KeyKind::Public => "public key (NAME.pub)",
        }
    }
}

fn parse_key(text: &str, kind: KeyKind) -> Result<[u8; 32], String> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header = lines.next().ok_or_else(|| {
        format!(
            "the file is empty; expected a {} starting with `{}` (write one with `dtc keygen`)",
            kind.name(),
            kind.header()
        )
    })?;
    if header == kind.other().header() {
        return Err(format!(
            "this is a {}, but a {} is needed here",
            kind.other().name(),
            kind.name()
        ));
    }
    if header != kind.header() {
        let shown: String = header.chars().take(40).collect();
        return Err(format!(
            "the first line is `{shown}`, not `{}`: not a dtc key file (write one with `dtc keygen`)",
            kind.header()
        ));
    }
    let hex = lines
        .next()
        .ok_or("the key line after the header is missing")?;
    if let Some(extra) = lines.next() {
        let shown: String = extra.chars().take(40).collect();
        return Err(format!(
            "unexpected line `{shown}` after the key; a key file holds one key"
        ));
    }
    let bytes = unhex(hex).ok_or_else(|| {
        format!(
            "the key line must be 64 hexadecimal digits (32 bytes); found {} characters{}",
            hex.chars().count(),
            if hex.chars().all(|c| c.is_ascii_hexdigit()) {
                ""
            } else {
                ", not all hexadecimal"
            }
        )
    })?;
    Ok(bytes)
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Parses a public key file's text.
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let bytes =
        parse_key(text, KeyKind::Public).map_err(|reason| KeyError { path: None, reason })?;
    PublicKey::from_bytes(&bytes).map_err(|reason| KeyError { path: None, reason })
}

/// Parses a private key file's text.
pub fn parse_private_key(text: &str) -> Result<PrivateKey, KeyError> {
    let bytes =
        parse_key(text, KeyKind::Private).map_err(|reason| KeyError { path: None, reason })?;
    Ok(PrivateKey(SigningKey::from_bytes(&bytes)))
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let at = |reason: String| KeyError {
        path: Some(path.to_path_buf()),
        reason,
    };
    // Key files are a few dozen bytes; refuse to read a large file whole.
    let meta = std::fs::metadata(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    if meta.len() > 4096 {
        return Err(at(format!(
            "the file is {} bytes, far larger than a key file: not a dtc key",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    String::from_utf8(bytes).map_err(|_| at("the file is not text: not a dtc key file".into()))
}

/// Reads a public key file (`NAME.pub`).
pub fn load_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let text = read_key_file(path)?;
    parse_public_key(&text).map_err(|e| KeyError {
        path: Some(path.to_path_buf()),
        ..e
    })
}

/// Reads a private key file (`NAME.key`).
pub fn load_private_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = read_key_file(path)?;
    parse_private_key(&text).map_err(|e| KeyError {
        path: Some(path.to_path_buf()),
        ..e
    })
}

/// One signature entry, parsed (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    pub key: PublicKey,
    pub signature: [u8; 64],
    pub reviewer: String,
}

impl SignatureEntry {
    /// The entry's bytes, as stored in the artifact.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_FIXED + self.reviewer.len());
        out.extend_from_slice(SIGNATURE_TAG);
        out.extend_from_slice(self.key.0.as_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(self.reviewer.as_bytes());
        out
    }

    /// Parses an entry; says what is wrong with a malformed one.
    pub fn parse(bytes: &[u8]) -> Result<SignatureEntry, String> {
        if bytes.len() < ENTRY_FIXED {
            return Err(format!(
                "the entry is {} bytes, shorter than the {ENTRY_FIXED} of a signature",
                bytes.len()
            ));
        }
        if &bytes[..8] != SIGNATURE_TAG {
            return Err("the entry is not a dtc ed25519 signature (unknown tag)".into());
        }
        let key: [u8; 32] = bytes[8..40].try_into().map_err(|_| "short key")?;
        let key = PublicKey::from_bytes(&key)?;
        let signature: [u8; 64] = bytes[40..104].try_into().map_err(|_| "short signature")?;
        let reviewer = &bytes[104..];
        if reviewer.len() > MAX_REVIEWER {
            return Err(format!(
                "the reviewer name is {} bytes, more than the {MAX_REVIEWER} allowed",
                reviewer.len()
            ));
        }
        let reviewer = std::str::from_utf8(reviewer)
            .map_err(|_| "the reviewer name is not UTF-8".to_string())?
            .to_string();
        Ok(SignatureEntry {
            key,
            signature,
            reviewer,
        })
    }

    /// Whether this entry signs the artifact with this checksum.
    pub fn verifies(&self, checksum: &[u8; 32]) -> bool {
        let message = signed_message(checksum, &self.reviewer);
        self.key
            .0
            .verify_strict(&message, &Signature::from_bytes(&self.signature))
            .is_ok()
    }
}

fn signed_message(checksum: &[u8; 32], reviewer: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 36 + reviewer.len());
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(checksum);
    m.extend_from_slice(&(reviewer.len() as u32).to_le_bytes());
    m.extend_from_slice(reviewer.as_bytes());
    m
}

/// Signs the artifact whose checksum is `checksum`.
pub fn sign_checksum(key: &PrivateKey, checksum: &[u8; 32], reviewer: &str) -> SignatureEntry {
    let signature = key.0.sign(&signed_message(checksum, reviewer));
    SignatureEntry {
        key: key.public(),
        signature: signature.to_bytes(),
        reviewer: reviewer.to_string(),
    }
}

/// What [`add_signature`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// The artifact's bytes with the new signature appended.
    Added(Vec<u8>),
    /// The key had already signed this artifact (validly), under this
    /// reviewer name; a second signature would not be a second approval, so
    /// nothing was added.
    AlreadySigned { reviewer: String },
}

/// Why a signature could not be added.
#[derive(Debug, Clone, PartialEq)]
pub enum SignError {
    /// The artifact itself is refused, as [`crate::decode`] would.
    Artifact(Error),
    Reviewer(String),
    TooMany,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Artifact(e) => write!(f, "{e}"),
            SignError::Reviewer(why) => write!(f, "the reviewer name {why}"),
            SignError::TooMany => write!(
                f,
                "the artifact already carries {MAX_SIGNATURES} signatures, the most allowed"
            ),
        }
    }
}

impl std::error::Error for SignError {}

/// Adds a reviewer's signature to an artifact, keeping every byte of it
/// (header, body, checksum, earlier signatures) as it was. The artifact is
/// fully decoded and verified first: nobody signs what would not load.
pub fn add_signature(bytes: &[u8], key: &PrivateKey, reviewer: &str) -> Result<Signed, SignError> {
    if reviewer.len() > MAX_REVIEWER {
        return Err(SignError::Reviewer(format!(
            "is {} bytes; at most {MAX_REVIEWER} are allowed",
            reviewer.len()
        )));
    }
    if reviewer.chars().any(char::is_control) {
        return Err(SignError::Reviewer(
            "contains control characters (newlines, escapes); give a plain name".into(),
        ));
    }
    let artifact = crate::decode(bytes).map_err(SignError::Artifact)?;
    let public = key.public();
    for raw in &artifact.signatures {
        if let Ok(entry) = SignatureEntry::parse(raw)
            && entry.key == public
            && entry.verifies(&artifact.checksum)
        {
            return Ok(Signed::AlreadySigned {
                reviewer: entry.reviewer,
            });
        }
    }
    if artifact.signatures.len() >= MAX_SIGNATURES as usize {
        return Err(SignError::TooMany);
    }
    let entry = sign_checksum(key, &artifact.checksum, reviewer);
    let mut signatures = artifact.signatures;
    signatures.push(entry.to_bytes());
    let body_end = crate::signatures_offset(bytes).map_err(SignError::Artifact)?;
    let mut out = bytes[..body_end].to_vec();
    crate::write_signatures(&mut out, &signatures);
    Ok(Signed::Added(out))
}

/// What one signature entry turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A valid signature by a trusted key, counted as an approval.
    Trusted,
    /// A valid signature by a key nobody here trusts: not an approval.
    Untrusted,
    /// A valid signature by a trusted key that an earlier entry already
    /// counted.
    Duplicate,
    /// Malformed, or it does not sign this artifact.
    Invalid(String),
}

/// One signature entry of an artifact, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// Its position in the artifact's signature section.
    pub index: usize,
    /// The signer, when the entry could be parsed.
    pub key: Option<PublicKey>,
    pub reviewer: Option<String>,
    pub status: Status,
}

impl SignatureInfo {
    /// `SHA256:...` of the signer's key, or `-` for an unreadable entry.
    pub fn fingerprint(&self) -> String {
        self.key.map_or_else(|| "-".into(), |k| k.fingerprint())
    }
}

/// An artifact's signatures against a set of trusted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureReport {
    /// Distinct trusted keys that validly signed: the approvals.
    pub trusted_valid: u32,
    /// Valid signatures by keys that are not trusted.
    pub untrusted: u32,
    /// Valid signatures by a trusted key already counted.
    pub duplicates: u32,
    /// Entries that are malformed or do not sign this artifact.
    pub invalid: u32,
    /// Every entry, in the artifact's order.
    pub signatures: Vec<SignatureInfo>,
}

impl SignatureReport {
    /// One line: `2 approvals (trusted keys), 1 untrusted, 0 invalid`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} approval{} by trusted keys, {} by untrusted keys, {} invalid",
            self.trusted_valid,
            if self.trusted_valid == 1 { "" } else { "s" },
            self.untrusted,
            self.invalid
        );
        if self.duplicates > 0 {
            s.push_str(&format!(", {} repeated", self.duplicates));
        }
        s
    }
}

/// Checks every signature of an artifact (as [`crate::decode`] returned it,
/// so its checksum matches its body) against the trusted keys.
pub fn verify_signatures(artifact: &Artifact, trusted: &[PublicKey]) -> SignatureReport {
    let trusted: HashSet<PublicKey> = trusted.iter().copied().collect();
    let mut counted: HashSet<PublicKey> = HashSet::new();
    let mut report = SignatureReport::default();
    for (index, raw) in artifact.signatures.iter().enumerate() {
        let info = match SignatureEntry::parse(raw) {
            Err(why) => {
                report.invalid += 1;
                SignatureInfo {
                    index,
                    key: None,
                    reviewer: None,
                    status: Status::Invalid(why),
                }
            }
            Ok(entry) => {
                let status = if !entry.verifies(&artifact.checksum) {
                    report.invalid += 1;
                    Status::Invalid("the signature does not match this artifact".into())
                } else if !trusted.contains(&entry.key) {
                    report.untrusted += 1;
                    Status::Untrusted
                } else if !counted.insert(entry.key) {
                    report.duplicates += 1;
                    Status::Duplicate
                } else {
                    report.trusted_valid += 1;
                    Status::Trusted
                };
                SignatureInfo {
                    index,
                    key: Some(entry.key),
                    reviewer: Some(entry.reviewer),
                    status,
                }
            }
        };
        report.signatures.push(info);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey(SigningKey::from_bytes(&[seed; 32]))
    }

    fn artifact_bytes() -> Vec<u8> {
        let (m, p) = sample();
        crate::encode(&m, &p, &[])
    }

    fn signed(bytes: &[u8], k: &PrivateKey, reviewer: &str) -> Vec<u8> {
        match add_signature(bytes, k, reviewer) {
            Ok(Signed::Added(b)) => b,
            other => panic!("signing failed: {other:?}"),
        }
    }

    #[test]
    fn a_signature_by_a_trusted_key_is_an_approval() {
        let bytes = artifact_bytes();
        let alice = key(1);
        let out = signed(&bytes, &alice, "alice");
        // The body and checksum are untouched: only the section grew.
        let body = crate::signatures_offset(&bytes).expect("offset");
        assert_eq!(&out[..body], &bytes[..body]);
        let a = crate::decode(&out).expect("still decodes");
        let r = verify_signatures(&a, &[alice.public()]);
        assert_eq!((r.trusted_valid, r.untrusted, r.invalid), (1, 0, 0));
        assert_eq!(r.signatures[0].reviewer.as_deref(), Some("alice"));
        assert_eq!(r.signatures[0].status, Status::Trusted);
    }

    #[test]
    fn a_signature_by_an_untrusted_key_is_not_an_approval() {
        let out = signed(&artifact_bytes(), &key(2), "mallory");
        let a = crate::decode(&out).expect("decodes");
        let r = verify_signatures(&a, &[key(1).public()]);
        assert_eq!((r.trusted_valid, r.untrusted, r.invalid), (0, 1, 0));
        assert_eq!(r.signatures[0].status, Status::Untrusted);
    }

    #[test]
    fn a_body_changed_after_signing_invalidates_the_signature() {
        let alice = key(1);
        let out = signed(&artifact_bytes(), &alice, "alice");
        let a = crate::decode(&out).expect("decodes");
        // Flipping a body byte breaks the checksum: refused before
        // signatures are even looked at.
        let mut flipped = out.clone();
        flipped[20] ^= 1;
        assert!(crate::decode(&flipped).is_err());
        // Someone who edits the body and recomputes the checksum keeps the
        // old signature entries, which no longer match.
        let (mut m, p) = sample();
        m.tier = "none, trust me".into();
        let forged = crate::encode(&m, &p, &a.signatures);
        let f = crate::decode(&forged).expect("a consistent checksum decodes");
        let r = verify_signatures(&f, &[alice.public()]);
        assert_eq!((r.trusted_valid, r.invalid), (0, 1), "{r:?}");
        assert!(matches!(r.signatures[0].status, Status::Invalid(_)));
    }

    #[test]
    fn a_changed_reviewer_name_invalidates_the_signature() {
        let alice = key(1);
        let out = signed(&artifact_bytes(), &alice, "alice");
        let a = crate::decode(&out).expect("decodes");
        let mut entry = SignatureEntry::parse(&a.signatures[0]).expect("parses");
        entry.reviewer = "bob".into();
        let mut b = a.clone();
        b.signatures = vec![entry.to_bytes()];
        let r = verify_signatures(&b, &[alice.public()]);
        assert_eq!((r.trusted_valid, r.invalid), (0, 1));
    }

    #[test]
    fn signing_twice_with_one_key_is_one_approval() {
        let alice = key(1);
        let once = signed(&artifact_bytes(), &alice, "alice");
        assert_eq!(
            add_signature(&once, &alice, "alice again"),
            Ok(Signed::AlreadySigned {
                reviewer: "alice".into()
            })
        );
        // An artifact with the same key's signature twice (assembled by
        // hand) still counts it once.
        let a = crate::decode(&once).expect("decodes");
        let mut twice = a.clone();
        twice.signatures.push(a.signatures[0].clone());
        let r = verify_signatures(&twice, &[alice.public(), alice.public()]);
        assert_eq!((r.trusted_valid, r.duplicates), (1, 1));
        // Two distinct keys are two approvals.
        let both = signed(&once, &key(2), "bob");
        let b = crate::decode(&both).expect("decodes");
        let r = verify_signatures(&b, &[alice.public(), key(2).public()]);
        assert_eq!(r.trusted_valid, 2);
        assert_eq!(b.signatures.len(), 2);
    }

    #[test]
    fn a_truncated_signature_section_is_refused() {
        let out = signed(&artifact_bytes(), &key(1), "alice");
        let body = crate::signatures_offset(&out).expect("offset");
        for n in body..out.len() {
            assert!(
                matches!(crate::decode(&out[..n]), Err(Error::Truncated { .. })),
                "truncated at {n} of {} accepted",
                out.len()
            );
        }
    }

    #[test]
    fn malformed_entries_are_invalid_not_fatal() {
        let (m, p) = sample();
        let alice = key(1);
        let good = signed(&crate::encode(&m, &p, &[]), &alice, "alice");
        let a = crate::decode(&good).expect("decodes");
        let mut entries = vec![
            b"short".to_vec(),
            [b"othertag".as_slice(), &[0; 96]].concat(),
            [SIGNATURE_TAG.as_slice(), &[0; 96]].concat(), // the identity point: weak key
        ];
        let mut bad_utf8 = a.signatures[0].clone();
        bad_utf8.push(0xff);
        entries.push(bad_utf8);
        entries.push(a.signatures[0].clone());
        let mixed = crate::decode(&crate::encode(&m, &p, &entries)).expect("decodes");
        let r = verify_signatures(&mixed, &[alice.public()]);
        assert_eq!((r.trusted_valid, r.invalid), (1, 4), "{r:#?}");
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_say_why() {
        let k = key(7);
        let private = parse_private_key(&k.to_text()).expect("private parses");
        assert_eq!(private.public(), k.public());
        let public = parse_public_key(&k.public().to_text()).expect("public parses");
        assert_eq!(public, k.public());
        let commented = format!("# alice's key\n\n{}", k.public().to_text());
        assert!(parse_public_key(&commented).is_ok());
        for (text, why) in [
            ("", "empty"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\n",
                "not a dtc key file",
            ),
            (&k.to_text(), "this is a private key"),
            (&format!("{PUBLIC_KEY_HEADER}\n"), "missing"),
            (
                &format!("{PUBLIC_KEY_HEADER}\nabc\n"),
                "64 hexadecimal digits",
            ),
            (
                &format!("{PUBLIC_KEY_HEADER}\n{}\n", "zz".repeat(32)),
                "not all hexadecimal",
            ),
            (
                &format!("{}extra\n", k.public().to_text()),
                "unexpected line",
            ),
            (
                &format!("{PUBLIC_KEY_HEADER}\n{}\n", "00".repeat(32)),
                "weak",
            ),
        ] {
            let e = parse_public_key(text).expect_err(text);
            assert!(e.reason.contains(why), "{text:?}: {e}");
        }
        let e = parse_private_key(&k.public().to_text()).expect_err("public as private");
        assert!(e.reason.contains("this is a public key"), "{e}");
        // Debug output never shows the secret.
        let secret = crate::hex(&k.0.to_bytes());
        assert!(!format!("{k:?}").contains(&secret));
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        let a = PrivateKey::generate().expect("random");
        let b = PrivateKey::generate().expect("random");
        assert_ne!(a.public(), b.public());
        let entry = sign_checksum(&a, &[3; 32], "a");
        assert!(entry.verifies(&[3; 32]));
        assert!(!entry.verifies(&[4; 32]));
    }

    #[test]
    fn reviewer_names_are_bounded_and_plain() {
        let bytes = artifact_bytes();
        let long = "x".repeat(MAX_REVIEWER + 1);
        assert!(matches!(
            add_signature(&bytes, &key(1), &long),
            Err(SignError::Reviewer(_))
        ));
        assert!(matches!(
            add_signature(&bytes, &key(1), "a\nb"),
            Err(SignError::Reviewer(_))
        ));
        assert!(matches!(
            add_signature(b"nope", &key(1), "a"),
            Err(SignError::Artifact(Error::NotAnArtifact))
        ));
    }
}
