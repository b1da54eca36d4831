//! `dtc compile` and `dtc inspect`: write a checked, lowered and verified
//! program as a `.dtx` artifact, and print what an artifact holds, its
//! reviewer signatures checked.

use std::path::{Path, PathBuf};

use crate::check::policy_session;
use crate::{CompileArgs, Io, Outcome};

pub(crate) fn compile(args: &CompileArgs, io: &mut Io<'_>) -> Outcome {
    let session = match policy_session(args.policy.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            let _ = writeln!(io.stderr, "error: {msg}");
            return Outcome::UsageOrIo;
        }
    };
    let out = match session.check_path(&args.program) {
        Ok(out) => out,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    let color = args.color.enabled(io.color_auto);
    if !out.diagnostics.is_empty() {
        let text = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, color);
        let _ = io.stderr.write_all(text.as_bytes());
    }
    if out.has_errors() {
        let _ = writeln!(
            io.stderr,
            "error: the program has errors; no artifact was written"
        );
        return Outcome::Failed;
    }
    let (Some(report), Some(Ok(bytes))) = (&out.report, out.artifact(env!("CARGO_PKG_VERSION")))
    else {
        let _ = writeln!(
            io.stderr,
            "error: internal compiler error: the program's IR does not verify"
        );
        return Outcome::Failed;
    };
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| args.program.with_extension("dtx"));
    if let Err(e) = std::fs::write(&path, &bytes) {
        let _ = writeln!(io.stderr, "error: cannot write `{}`: {e}", path.display());
        return Outcome::UsageOrIo;
    }
    let _ = writeln!(
        io.stderr,
        "wrote {} ({} bytes, {})",
        path.display(),
        bytes.len(),
        report.tier
    );
    Outcome::Clean
}

/// Reads and verifies an artifact, or says why it is refused.
pub(crate) fn load(path: &Path) -> Result<dtc_artifact::Artifact, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    dtc_artifact::decode(&bytes).map_err(|e| format!("refusing `{}`: {e}", path.display()))
}

pub(crate) fn inspect(path: &Path, trusted_keys: &[PathBuf], io: &mut Io<'_>) -> Outcome {
    let trusted = match crate::sign::trusted_keys(trusted_keys) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    let a = match load(path) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(io.stderr, "error: {e}");
            return Outcome::Failed;
        }
    };
    let m = &a.metadata;
    let _ = writeln!(
        io.stdout,
        "artifact {} (format version {})",
        path.display(),
        a.format_version
    );
    let _ = writeln!(io.stdout, "  program          {}", m.program);
    let _ = writeln!(io.stdout, "  source hash      {}", m.source_hash);
    let _ = writeln!(io.stdout, "  compiler         dtc {}", m.compiler_version);
    let _ = writeln!(
        io.stdout,
        "  checksum         {}",
        dtc_artifact::hex(&a.checksum)
    );
    let report = dtc_artifact::verify_signatures(&a, &trusted);
    let _ = writeln!(io.stdout, "  signatures       {}", a.signatures.len());
    for s in &report.signatures {
        use dtc_artifact::Status;
        let status = match &s.status {
            // Without trusted keys given, a valid signature is just valid.
            Status::Untrusted if trusted.is_empty() => "valid".to_string(),
            Status::Untrusted => "valid, untrusted key".to_string(),
            Status::Trusted => "valid, trusted key".to_string(),
            Status::Duplicate => "valid, trusted key already counted".to_string(),
            Status::Invalid(why) => format!("INVALID: {why}"),
        };
        let reviewer = match s.reviewer.as_deref() {
            Some("") | None => String::new(),
            Some(r) => format!(" \"{}\"", r.escape_debug()),
        };
        let _ = writeln!(
            io.stdout,
            "    #{} {}{reviewer}: {status}",
            s.index + 1,
            s.fingerprint()
        );
    }
    if !trusted.is_empty() {
        let _ = writeln!(io.stdout, "  approvals        {}", report.summary());
    }
    let _ = writeln!(io.stdout, "  risk tier        {}", m.tier);
    if let Some(v) = m.risk.get("vector").and_then(|v| v.as_object()) {
        let parts: Vec<String> = v
            .iter()
            .map(|(k, l)| format!("{k} {}", l.as_str().unwrap_or("?")))
            .collect();
        let _ = writeln!(io.stdout, "  risk vector      {}", parts.join(", "));
    }
    let _ = writeln!(io.stdout, "  memory bound     {} bytes", m.memory_bound);
    let _ = writeln!(io.stdout, "  verified         yes");
    let _ = writeln!(io.stdout);
    let _ = io.stdout.write_all(dtc_ir::print(&a.program).as_bytes());
    Outcome::Clean
}
