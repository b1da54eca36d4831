//! Loading artifacts from the artifact folder, verifying each before it may
//! run, and noticing when the folder changes.
//!
//! Each `*.dtx` file is verified on its own, and a refused one never stops
//! the others:
//! 1. `dtc_artifact::decode`: format, version, checksum, IR verifier.
//! 2. Read-only re-check: every action the IR triggers must be in the
//!    standard catalog (all of whose actions only observe); the artifact's
//!    own risk report is not trusted for this.
//! 3. The local policy against the metadata: tier, dimension caps, actions
//!    (from the IR) and probes allowed or denied, the memory bound against
//!    the policy's `max_memory` and the agent's memory budget.
//! 4. Reviewer signatures: at least `policy.required_approvals(tier)` valid
//!    signatures by distinct trusted keys ([`trusted_signatures`], the one
//!    place that counts them, through `dtc_artifact::verify_signatures`).
//!
//! The folder is polled (`artifacts.reload_interval`); a scan that finds a
//! file added, removed or changed (name, size, modification time) reloads.
//! When a changed file is refused and an earlier version of it was running,
//! the earlier version keeps running ("last known good") and the refusal is
//! reported; write new artifacts under another name and rename them into
//! place so a half-written file is never seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use dtc_analysis::policy::{self, Policy};
use dtc_artifact::{Artifact, Metadata, PublicKey, SignatureReport};
use dtc_stdlib::risk::{Level, Tier};
use serde_json::Value as Json;

use crate::config::Budgets;
use crate::telemetry::ArtifactRefusal;

/// A verified artifact, ready to run.
#[derive(Debug)]
pub struct Loaded {
    /// The file name in the artifact folder; programs run in this order.
    pub file: String,
    /// SHA-256 of the file: the same file is the same program.
    pub digest: [u8; 32],
    pub metadata: Metadata,
    pub program: dtc_ir::Program,
    /// The actions its IR can trigger.
    pub actions: Vec<String>,
}

/// Reads the local policy, or explains what is wrong with it.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, String> {
    let Some(path) = path else {
        return policy::parse(dtc_diagnostics::FileId::default(), "")
            .map_err(|_| "the default policy does not parse".to_string());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the policy `{}`: {e}", path.display()))?;
    policy::parse(dtc_diagnostics::FileId::default(), &text).map_err(|diagnostics| {
        let reasons: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let (line, column) = line_col(&text, d.primary.span.start);
                format!(
                    "{}:{line}:{column}: {}: {}",
                    path.display(),
                    d.message,
                    d.primary.message
                )
            })
            .collect();
        format!("the policy is invalid:\n  {}", reasons.join("\n  "))
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    (
        line,
        before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
    )
}

/// Reads the trusted reviewer keys (`dtc keygen`'s `NAME.pub` files).
/// Every file is read, and each one that cannot be used gives its own
/// error naming its place in `artifacts.trusted_keys`, its path and why.
pub fn load_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, Vec<String>> {
    let mut keys = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match dtc_artifact::load_public_key(path) {
            Ok(key) => keys.push(key),
            Err(e) => errors.push(format!(
                "`artifacts.trusted_keys[{i}]`: cannot use the trusted reviewer key `{}`: {} (list the reviewer's NAME.pub, written by `dtc keygen`)",
                path.display(),
                e.reason
            )),
        }
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(errors)
    }
}

/// The artifact's signatures checked against the trusted keys: how many
/// distinct trusted keys validly signed it (the approvals), and how many
/// signatures are by untrusted keys, repeated or invalid. The only place
/// the agent counts signatures.
pub fn trusted_signatures(artifact: &Artifact, trusted_keys: &[PublicKey]) -> SignatureReport {
    dtc_artifact::verify_signatures(artifact, trusted_keys)
}

/// Every action an IR program can trigger, read from the IR itself.
fn triggered_actions(program: &dtc_ir::Program) -> Vec<String> {
    fn walk(value: &Json, out: &mut Vec<String>) {
        match value {
            Json::Object(map) => {
                if let Some(Json::String(action)) = map
                    .get("Trigger")
                    .and_then(|t| t.get("action"))
                    .filter(|_| map.len() == 1)
                    && !out.contains(action)
                {
                    out.push(action.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Json::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    // Serialising a verified program cannot fail; an empty tree would only
    // hide actions, so treat failure as "unknown action" below.
    match serde_json::to_value(program) {
        Ok(tree) => walk(&tree, &mut out),
        Err(_) => out.push("<the program could not be inspected>".into()),
    }
    out
}

/// Verifies one artifact's bytes against the policy, keys and budgets;
/// gives it with the actions its IR can trigger.
pub fn verify(
    bytes: &[u8],
    policy: &Policy,
    trusted_keys: &[PublicKey],
    budgets: &Budgets,
) -> Result<(Artifact, Vec<String>), String> {
    let artifact = dtc_artifact::decode(bytes).map_err(|e| e.to_string())?;
    let m = &artifact.metadata;
    let ring = policy.ring.as_deref().unwrap_or("the local policy");
    let tier = Tier::parse_key(&m.tier).ok_or_else(|| {
        format!(
            "the artifact's tier `{}` is not one of none, limited, high",
            m.tier
        )
    })?;
    let actions = triggered_actions(&artifact.program);
    for action in &actions {
        if !dtc_stdlib::actions::ACTIONS
            .iter()
            .any(|a| a.name == action)
        {
            return Err(format!(
                "the program triggers `{action}`, which is not an action of the standard catalog; only catalog actions (which only observe) may run"
            ));
        }
    }
    if let Some(max) = &policy.max_tier
        && tier > max.value
    {
        return Err(format!(
            "the program is {tier}, and {ring} accepts at most {}",
            max.value
        ));
    }
    for (dimension, cap) in &policy.caps {
        let level = m.risk["vector"][dimension.as_str()]
            .as_str()
            .and_then(Level::parse)
            .ok_or_else(|| format!("the artifact's risk report has no level for {dimension}"))?;
        if level > cap.value {
            return Err(format!(
                "{dimension} risk is {level}, above the {} that {ring} allows",
                cap.value
            ));
        }
    }
    let listed =
        |name: &str, allow: &Option<policy::At<Vec<String>>>, deny: &[policy::At<String>]| {
            deny.iter().any(|d| d.value == name)
                || allow
                    .as_ref()
                    .is_some_and(|a| !a.value.iter().any(|x| x == name))
        };
    for action in &actions {
        if listed(action, &policy.allow_actions, &policy.deny_actions) {
            return Err(format!(
                "the program triggers `{action}`, which {ring} does not allow"
            ));
        }
    }
    let probes = m.risk["probes"].as_array().cloned().unwrap_or_default();
    for probe in probes.iter().filter_map(|p| p["kind"].as_str()) {
        if listed(probe, &policy.allow_probes, &policy.deny_probes) {
            return Err(format!(
                "the program reads the probe `{probe}`, which {ring} does not allow"
            ));
        }
    }
    if let Some(max) = &policy.max_memory
        && m.memory_bound > max.value
    {
        return Err(format!(
            "the program may hold up to {} bytes of state, above the {} bytes {ring} allows",
            m.memory_bound, max.value
        ));
    }
    if m.memory_bound > budgets.memory {
        return Err(format!(
            "the program may hold up to {} bytes of state, above the agent's memory budget of {} bytes (`budgets.memory`)",
            m.memory_bound, budgets.memory
        ));
    }
    let required = policy.required_approvals(tier);
    let report = trusted_signatures(&artifact, trusted_keys);
    if report.trusted_valid < required {
        return Err(format!(
            "the program is {tier}; {ring} requires {required} reviewer signature(s) by trusted keys for that tier; found {} valid by trusted keys, {} by untrusted keys, {} invalid{} ({} signature(s) in all; sign it with `dtc sign`, and list each reviewer's key in `artifacts.trusted_keys`)",
            report.trusted_valid,
            report.untrusted,
            report.invalid,
            if report.duplicates > 0 {
                format!(", {} repeated by a key already counted", report.duplicates)
            } else {
                String::new()
            },
            artifact.signatures.len()
        ));
    }
    Ok((artifact, actions))
}

/// What a scan found.
#[derive(Debug)]
pub struct Scan {
    /// The programs to run, in file-name order.
    pub programs: Vec<Arc<Loaded>>,
    pub refused: Vec<ArtifactRefusal>,
}

/// Watches the artifact folder.
pub struct Loader {
    dir: PathBuf,
    policy: Policy,
    keys: Vec<PublicKey>,
    budgets: Budgets,
    /// What the last scan saw: name → (size, modification time).
    seen: BTreeMap<String, (u64, Option<SystemTime>)>,
    /// The running version of each file.
    good: BTreeMap<String, Arc<Loaded>>,
    /// The latest refusal of each file (kept while the file stays as it is).
    refused: BTreeMap<String, String>,
    first: bool,
}

impl Loader {
    pub fn new(dir: PathBuf, policy: Policy, keys: Vec<PublicKey>, budgets: Budgets) -> Loader {
        Loader {
            dir,
            policy,
            keys,
            budgets,
            seen: BTreeMap::new(),
            good: BTreeMap::new(),
            refused: BTreeMap::new(),
            first: true,
        }
    }

    /// Scans the folder; `Some` when anything changed since the last scan
    /// (always on the first).
    pub fn scan(&mut self) -> Option<Scan> {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "dtx"))
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    meta.is_file().then(|| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            (meta.len(), meta.modified().ok()),
                        )
                    })
                })
                .collect::<BTreeMap<_, _>>(),
            Err(e) => {
                let reason = format!(
                    "cannot read the artifact folder `{}`: {e}",
                    self.dir.display()
                );
                if self.refused.get("") == Some(&reason) && !self.first {
                    return None;
                }
                self.first = false;
                self.refused.insert(String::new(), reason);
                return Some(self.report());
            }
        };
        self.refused.remove("");
        if listing == self.seen && !self.first {
            return None;
        }
        self.first = false;
        self.good.retain(|name, _| listing.contains_key(name));
        self.refused.retain(|name, _| listing.contains_key(name));
        for (name, stamp) in &listing {
            if self.seen.get(name) == Some(stamp) {
                continue;
            }
            let path = self.dir.join(name);
            let verified = std::fs::read(&path)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|bytes| {
                    let digest: [u8; 32] = sha256(&bytes);
                    if self.good.get(name).is_some_and(|g| g.digest == digest) {
                        return Ok(None);
                    }
                    verify(&bytes, &self.policy, &self.keys, &self.budgets)
                        .map(|a| Some((a, digest)))
                });
            match verified {
                Ok(None) => {
                    self.refused.remove(name);
                }
                Ok(Some(((artifact, actions), digest))) => {
                    self.refused.remove(name);
                    self.good.insert(
                        name.clone(),
                        Arc::new(Loaded {
                            file: name.clone(),
                            digest,
                            metadata: artifact.metadata,
                            program: artifact.program,
                            actions,
                        }),
                    );
                }
                Err(reason) => {
                    let reason = if self.good.contains_key(name) {
                        format!("{reason} (the previous version keeps running)")
                    } else {
                        reason
                    };
                    self.refused.insert(name.clone(), reason);
                }
            }
        }
        self.seen = listing;
        Some(self.report())
    }

    fn report(&self) -> Scan {
        Scan {
            programs: self.good.values().cloned().collect(),
            refused: self
                .refused
                .iter()
                .map(|(file, reason)| ArtifactRefusal {
                    file: if file.is_empty() {
                        self.dir.display().to_string()
                    } else {
                        file.clone()
                    },
                    reason: reason.clone(),
                })
                .collect(),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
