//! Unit tests of the analysis on small programs. The adversarial suite and
//! the report snapshots of the samples are under `tests/`.

use dtc_diagnostics::{Code, FileId, SourceMap};
use dtc_sema::Unit;
use dtc_stdlib::risk::{Dimension, Effect, Kind, Level, Profile, RiskVector, Tier};

use crate::{Defaults, Report, analyze_with, policy};

fn run_with(src: &str, profiles: &[Profile]) -> (Report, Vec<Code>) {
    let parsed = dtc_syntax::parse(FileId(0), src);
    assert!(
        parsed.diagnostics.is_empty(),
        "syntax: {:#?}",
        parsed.diagnostics
    );
    let unit = Unit {
        file: FileId(0),
        ast: parsed.ast,
        imports: vec![],
    };
    let units = [unit];
    let sema = dtc_sema::check(&units);
    let errors: Vec<_> = sema.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "type errors: {errors:#?}");
    let (report, diags) = analyze_with(&units, &sema.types, &Defaults::default(), profiles);
    (report, diags.iter().map(|d| d.code).collect())
}

fn run(src: &str) -> (Report, Vec<Code>) {
    run_with(src, dtc_stdlib::risk::PROFILES)
}

const HASHING: &str = "event LogEndFileHash { fileName: string @pii, hashValue: string }\n";

#[test]
fn pii_to_an_emitted_log_is_rejected_and_hash_declassifies() {
    let leak = format!(
        "{HASHING}redact LogEndFileHash.fileName with hash\nprocessor p {{ on LogEndFileHash {{ emit log Out {{ f: event.fileName }} }} }}"
    );
    assert_eq!(run(&leak).1, vec![Code::E0601]);
    let ok = format!(
        "{HASHING}redact LogEndFileHash.fileName with hash\nprocessor p {{ on LogEndFileHash {{ emit log Out {{ f: hash(event.fileName), n: len(event.fileName) }} }} }}"
    );
    assert_eq!(run(&ok).1, vec![]);
}

#[test]
fn laundering_is_caught() {
    let redact = "redact LogEndFileHash.fileName with hash\n";
    // Through a state variable.
    let state = format!(
        "{HASHING}{redact}machine m {{ state A\n state B {{ n: string }}\n on LogEndFileHash in A -> B {{ n = event.fileName }}\n on LogEndFileHash in B -> A {{ emit log Out {{ f: n }} }} }}"
    );
    assert_eq!(run(&state).1, vec![Code::E0601]);
    // Through a processor variable assigned in one handler, read in another.
    let var = format!(
        "{HASHING}{redact}event Tick {{ n: int }}\nprocessor p {{ var last: string = \"\"\n on LogEndFileHash {{ last = event.fileName }}\n on Tick {{ emit log Out {{ f: last }} }} }}"
    );
    assert_eq!(run(&var).1, vec![Code::E0601]);
    // Through string concatenation and a function.
    let concat = format!(
        "{HASHING}{redact}fn wrap(s: string) -> string {{ return \"<\" + s + \">\" }}\nprocessor p {{ on LogEndFileHash {{ emit log Out {{ f: wrap(event.fileName) }} }} }}"
    );
    assert_eq!(run(&concat).1, vec![Code::E0601]);
    // A function that hashes its argument declassifies it.
    let hashed = format!(
        "{HASHING}{redact}fn h(s: string) -> string {{ return hash(s) }}\nprocessor p {{ on LogEndFileHash {{ emit log Out {{ f: h(event.fileName) }} }} }}"
    );
    assert_eq!(run(&hashed).1, vec![]);
    // Through an aggregate and a group key.
    let agg = format!(
        "{HASHING}{redact}query q = LogEndFileHash | summarize first = min(fileName) every 1m | emit metric \"m\""
    );
    assert_eq!(run(&agg).1, vec![Code::E0602]);
    let key = format!(
        "{HASHING}{redact}query q = LogEndFileHash | summarize n = count() by fileName every 1m | emit metric \"m\""
    );
    assert_eq!(run(&key).1, vec![Code::E0602, Code::W0006]);
    // A map key.
    let map = format!(
        "{HASHING}{redact}processor p {{ var seen: map[string, int] max 10\n on LogEndFileHash {{ seen[event.fileName] = 1\n for k, v in seen {{ emit log Out {{ f: k }} }} }} }}"
    );
    assert_eq!(run(&map).1, vec![Code::E0601]);
}

#[test]
fn handled_events_must_not_leave_with_pii() {
    let q = format!(
        "{HASHING}query q = LogEndFileHash | summarize n = count() every 1m | emit metric \"m\""
    );
    assert_eq!(run(&q).1, vec![Code::E0603]);
    assert_eq!(run(&format!("{q}\nsuppress LogEndFileHash")).1, vec![]);
    assert_eq!(
        run(&format!("{q}\nredact LogEndFileHash.fileName with drop")).1,
        vec![]
    );
    let secret = "event Banner { key: string @secret }\nredact Banner.key with mask\nquery q = Banner | summarize n = count() every 1m | emit metric \"m\"";
    assert_eq!(run(secret).1, vec![Code::E0604]);
}

#[test]
fn recursion_is_rejected() {
    let src = "fn a(n: int) -> int { return b(n) }\nfn b(n: int) -> int { if n > 0 { return a(n - 1) } else { return 0 } }";
    assert_eq!(run(src).1, vec![Code::E0501]);
    assert_eq!(
        run("fn f(n: int) -> int { return f(n) }").1,
        vec![Code::E0501]
    );
}

#[test]
fn mutating_catalog_entries_break_the_read_only_rule() {
    let mut profiles: Vec<Profile> = dtc_stdlib::risk::PROFILES
        .iter()
        .map(|p| Profile {
            name: p.name,
            kind: p.kind,
            effect: p.effect,
            risk: p.risk,
            reason: p.reason,
            declassifies: p.declassifies,
        })
        .collect();
    let cpu = profiles
        .iter_mut()
        .find(|p| p.name == "cpu_sample" && p.kind == Kind::Action)
        .unwrap();
    cpu.effect = Effect::Mutating;
    let src =
        "event E { n: int }\nprocessor p { on E { trigger cpu_sample(for: 1s) limit 1 per 1h } }";
    assert_eq!(run_with(src, &profiles).1, vec![Code::E0401]);
    profiles.retain(|p| p.name != "cpu_sample");
    assert_eq!(run_with(src, &profiles).1, vec![Code::E0402]);
}

#[test]
fn risk_vector_tier_and_bounds() {
    let src = "probe up = uprobe(binary: \"/bin/x\", symbol: \"f\")\nevent C from up { n: int }\n\
               processor p { var counts: map[int, int] max 100\n on C { for i in 0..10 { counts[i] = event.n } \n trigger memory_dump() } }";
    let (r, codes) = run(src);
    assert_eq!(codes, vec![]);
    assert_eq!(r.tier, Tier::High);
    assert_eq!(r.vector.privacy, Level::High);
    // The unbudgeted memory dump raises cost to high.
    assert!(
        r.raised(Dimension::Cost)
            .iter()
            .any(|c| c.level == Level::High && c.construct.contains("memory_dump"))
    );
    assert_eq!(r.actions[0].budget, Defaults::default().trigger_budget);
    assert!(r.actions[0].defaulted);
    let p = r.handlers.iter().find(|h| h.kind == "handler").unwrap();
    assert_eq!(p.max_steps, 1 + 1 + 10 + 1);
    assert!(p.effects.contains(&Effect::Diagnostic));
    assert!(r.memory_total >= 100 * (8 + 8 + 32));
}

#[test]
fn metric_cardinality() {
    let src = "event E { ok: bool, name: string }\n\
               query a = E | summarize n = count() by ok, severity every 1m | emit metric \"a\"\n\
               query b = E | summarize n = count() by name every 1m | emit metric \"b\"";
    let (r, codes) = run(src);
    assert_eq!(codes, vec![Code::W0006]);
    assert_eq!(r.metrics[0].max_series, Some(50));
    assert_eq!(r.metrics[1].max_series, None);
    assert_eq!(r.vector.cost, Level::High);
}

#[test]
fn policies() {
    let text = "ring = \"production\"\nmax_tier = \"limited\"\nmax_memory = \"1KiB\"\n[caps]\nprivacy = \"low\"\n[actions]\ndeny = [\"memory_dump\"]\n[probes]\nallow = [\"otel.logs\"]\n";
    let p = policy::parse(FileId(1), text).expect("valid policy");
    let src = "probe up = uprobe(binary: \"/bin/x\", symbol: \"f\")\nevent C from up { n: int }\n\
               processor p { var counts: map[int, int] max 100\n on C { trigger memory_dump() limit 1 per 1h } }";
    let (r, _) = run(src);
    let codes: Vec<Code> = policy::check(&r, &p).iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::E0801,
            Code::E0802,
            Code::E0803,
            Code::E0804,
            Code::E0805
        ]
    );
    let bad = policy::parse(
        FileId(1),
        "max_tier = \"medium\"\n[caps]\ncost = \"lots\"\n",
    )
    .unwrap_err();
    assert_eq!(bad.len(), 2);
    assert!(policy::parse(FileId(1), "colour = 1").is_err());
    assert_eq!(policy::parse_size("64MiB"), Some(64 << 20));
    assert_eq!(policy::parse_duration("1h"), Some(3_600_000_000_000));
    let _ = (RiskVector::default(), SourceMap::new());
}
