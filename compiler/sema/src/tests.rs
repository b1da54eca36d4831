//! Unit tests of the checker on small programs. The full corpus of
//! diagnostics, with snapshots, is under `tests/ui/`.

use dtc_diagnostics::{Code, FileId, SourceMap};

use crate::{Unit, check};

/// The codes the checker reports for a single-file program.
fn codes(src: &str) -> Vec<Code> {
    let parsed = dtc_syntax::parse(FileId(0), src);
    assert!(
        parsed.diagnostics.is_empty(),
        "syntax errors: {:#?}",
        parsed.diagnostics
    );
    let n_imports = parsed
        .ast
        .items
        .iter()
        .filter(|i| matches!(i, dtc_syntax::ast::Item::Import(_)))
        .count();
    let unit = Unit {
        file: FileId(0),
        ast: parsed.ast,
        imports: vec![None; n_imports],
    };
    let analysis = check(&[unit]);
    analysis.diagnostics.iter().map(|d| d.code).collect()
}

fn render(src: &str) -> String {
    let mut map = SourceMap::new();
    let file = map.add("t.dt", src);
    let parsed = dtc_syntax::parse(file, src);
    let unit = Unit {
        file,
        ast: parsed.ast,
        imports: vec![],
    };
    let analysis = check(&[unit]);
    dtc_diagnostics::render_human(&analysis.diagnostics, &map, false)
}

const DESIGN: &str = r#"
/// Emitted when the service starts hashing a file.
event LogStartingFileHash { fileName: string @pii }
event LogEndFileHash { fileName: string @pii, hashValue: string }

query files_hashed =
    LogEndFileHash
    | summarize files = count() by ext = extension(fileName) every 1m
    | emit metric "imagesvc.files_hashed"

suppress LogStartingFileHash
redact LogEndFileHash.fileName with hash

machine slow_hash per event.thread_id max 10_000 {
    state Idle
    state Hashing { started: timestamp }

    on LogStartingFileHash in Idle -> Hashing { started = event.time }
    on LogEndFileHash in Hashing when event.time - started > 2s -> Idle {
        emit log SlowHash { took: event.time - started }
        trigger cpu_sample(for: 30s) limit 1 per 10m
    }
    on LogEndFileHash in Hashing -> Idle
    after 60s in Hashing -> Idle {
        trigger memory_dump() limit 1 per 1h
    }
}

processor verify_hash {
    var mismatches: int = 0
    on LogEndFileHash when sample(1%) {
        let actual = file.sha256(event.fileName)
        if actual != event.hashValue {
            mismatches += 1
            emit log ErrorInProductionHash { productHash: event.hashValue, comparisonHash: actual }
            trigger flight_recorder.snapshot() limit 1 per 1h
        }
    }
}

query slow = SlowHash | summarize n = count(), p95 = percentile(took, 95) every 5m | emit metric "imagesvc.slow"
"#;

#[test]
fn the_design_example_checks_clean() {
    assert_eq!(codes(DESIGN), vec![], "{}", render(DESIGN));
}

#[test]
fn names() {
    assert_eq!(codes("query q = Nope | emit log X"), vec![Code::E0201]);
    assert_eq!(
        codes(
            "event A { x: int }\nquery q = A | where y > 1 | summarize n = count() | emit metric \"m\""
        ),
        vec![Code::E0203]
    );
    assert_eq!(
        codes(
            "event A { x: int }\nprocessor p { on A { let v = event.y \n trigger cpu_sample(for: 1s) limit 1 per 1h } }"
        ),
        vec![Code::W0005, Code::E0202]
    );
    assert_eq!(
        codes("event A { x: int }\nevent A { y: int }"),
        vec![Code::E0208]
    );
    assert_eq!(codes("event A { time: timestamp }"), vec![Code::E0213]);
    assert_eq!(codes("event A { x: int @pi }"), vec![Code::E0209]);
    assert_eq!(codes("event A { x: strng }"), vec![Code::E0217]);
}

#[test]
fn types_and_optionals() {
    let base = "event A { x: int, y: float, s: string?, d: duration }\n";
    let q = |w: &str| {
        format!("{base}query q = A | where {w} | summarize n = count() | emit metric \"m\"")
    };
    assert_eq!(codes(&q("x > 1")), vec![]);
    assert_eq!(codes(&q("x + y > 1.0")), vec![Code::E0305]);
    assert_eq!(codes(&q("len(s) > 1")), vec![Code::E0302]);
    assert_eq!(
        codes(&q("len(s ?? \"\") > 1")),
        vec![Code::E0302]
            .into_iter()
            .filter(|_| false)
            .collect::<Vec<_>>()
    );
    assert_eq!(codes(&q("x")), vec![Code::E0306]);
    assert_eq!(codes(&q("len(x) > 1")), vec![Code::E0304]);
    assert_eq!(codes(&q("len() > 1")), vec![Code::E0303]);
    assert_eq!(codes(&q("lenn(s) > 1")), vec![Code::E0204]);
    assert_eq!(codes(&q("d > 1s && s == none")), vec![]);
    assert_eq!(codes(&q("x == none")), vec![Code::E0305]);
    assert_eq!(codes(&q("count() > 1")), vec![Code::E0308]);
}

#[test]
fn compound_assignment_to_an_entry_of_a_map_of_timestamps() {
    let p = |body: &str| {
        format!(
            "event A {{ k: string }}\nprocessor p {{\n var m: map[string, timestamp] max 10\n var c: map[string, int] max 10\n var d: map[string, duration] max 10\n on A {{ {body} }}\n}}"
        )
    };
    assert_eq!(codes(&p("m[event.k] += 1s")), vec![Code::E0323]);
    assert_eq!(codes(&p("m[event.k] -= 1s")), vec![Code::E0323]);
    // Numbers and durations start from zero; a plain `=` or a stated start is fine.
    assert_eq!(codes(&p("c[event.k] += 1\n d[event.k] -= 1s")), vec![]);
    assert_eq!(
        codes(&p("m[event.k] = (m[event.k] ?? event.time) + 1s")),
        vec![]
    );
}

#[test]
fn compound_assignment_to_possibly_unset_state_variable() {
    let m = |body: &str| {
        format!(
            "event A {{ k: string }}\nmachine m {{\n state S {{ t: timestamp, n: int = 0 }}\n{body}\n}}"
        )
    };
    // Unset on the first event of an instance: refused.
    assert_eq!(codes(&m("on A in S -> S { t += 1s }")), vec![Code::E0321]);
    assert_eq!(
        codes(&m("after 5s in S -> S { t -= 1s }")),
        vec![Code::E0321]
    );
    // Set on one branch only, or only inside a loop that may not run.
    assert_eq!(
        codes(&m(
            "on A in S -> S { if event.k == \"x\" { t = event.time }\n t += 1s }"
        )),
        vec![Code::E0321]
    );
    assert_eq!(
        codes(&m(
            "on A in S -> S { for i in 0..0 { t = event.time }\n t += 1s }"
        )),
        vec![Code::E0321]
    );
    // Reported once, at the first compound assignment.
    assert_eq!(
        codes(&m("on A in S -> S { t += 1s\n t += 1s }")),
        vec![Code::E0321]
    );
    // Set first (on every path), or a variable with a default: accepted.
    assert_eq!(
        codes(&m("on A in S -> S { t = event.time\n t += 1s }")),
        vec![]
    );
    assert_eq!(
        codes(&m(
            "on A in S -> S { if event.k == \"x\" { t = event.time } else { t = event.time + 1s }\n t += 1s }"
        )),
        vec![]
    );
    assert_eq!(codes(&m("on A in S -> S { n += 1 }")), vec![]);
    // A variable of a state other than the initial one is set on entry.
    assert_eq!(
        codes(
            "event A { k: string }\nmachine m {\n state I\n state S { t: timestamp }\n on A in I -> S { t = event.time }\n on A in S -> S { t += 1s }\n}"
        ),
        vec![]
    );
}

#[test]
fn summarize_keys_are_optional_after_max() {
    let q = |stages: &str| {
        format!(
            "event A {{ n: int, s: string }}\nquery q = A | summarize c = count() by n, s {stages}\n | emit log L"
        )
    };
    // Without `max` every row has its key values.
    assert_eq!(codes(&q("| extend m = n + 1, t = len(s)")), vec![]);
    // Past `max`, the overflow series has none: keys are `int?`, `string?`.
    assert_eq!(codes(&q("max 2 | extend m = n + 1")), vec![Code::E0302]);
    assert_eq!(codes(&q("max 2 | extend t = len(s)")), vec![Code::E0302]);
    assert_eq!(
        codes(&q("max 2 | extend m = (n ?? 0) + 1, t = len(s ?? \"\")")),
        vec![]
    );
}

#[test]
fn machines() {
    let m = |body: &str| {
        format!(
            "event A {{ k: string }}\nevent B {{ k: string }}\nmachine m per event.k {{\n{body}\n}}"
        )
    };
    assert_eq!(
        codes(&m(
            "state S\n state T { t: timestamp }\n on A in S -> T { t = event.time }\n on B in T -> S"
        )),
        vec![]
    );
    assert_eq!(
        codes(&m(
            "state S\n state T { t: timestamp }\n on A in S -> T\n on B in T -> S"
        )),
        vec![Code::E0310]
    );
    assert_eq!(codes(&m("state S\n on A in X -> S")), vec![Code::E0207]);
    assert_eq!(codes(&m("state S\n state U")), vec![Code::W0001]);
    assert_eq!(
        codes(&m(
            "state S\n state T\n on A in S -> T\n on A in S when event.k == \"\" -> S\n on B -> S"
        )),
        vec![Code::W0002]
    );
    assert_eq!(
        codes("event A { x: int }\nmachine m per event.k { state S\n on A -> S }"),
        vec![Code::E0313]
    );
    assert_eq!(codes("machine m { }"), vec![Code::E0220]);
    assert_eq!(
        codes(&m(
            "state S { n: int = 0 }\n on A in S -> S { n += 1 }\n after 1m in S -> S { trigger memory_dump() limit 1 per 1h }"
        )),
        vec![]
    );
}

#[test]
fn functions_and_statements() {
    assert_eq!(
        codes("fn f(x: int) -> int { if x > 1 { return 1 } }"),
        vec![Code::E0311]
    );
    assert_eq!(
        codes("fn f(x: int) -> int { if x > 1 { return 1 } else { return 2 } }"),
        vec![]
    );
    assert_eq!(
        codes("fn f(x: int) -> int { return event.x }"),
        vec![Code::E0218]
    );
    assert_eq!(
        codes("fn f(x: int) -> string { return x }"),
        vec![Code::E0312]
    );
    assert_eq!(
        codes(
            "event A { x: int? }\nprocessor p { var m: map[string, int] max 10\n on A { if let v = event.x { m[\"a\"] = v } \n for i in 0..3 { m[\"b\"] += i } \n for k, v in m { trigger memory_dump() limit 1 per 1h } } }"
        ),
        vec![]
    );
    assert_eq!(
        codes(
            "event A { x: int }\nprocessor p { on A { let y = 1 \n y = 2 \n emit log B { y: y } } }"
        ),
        vec![Code::E0307]
    );
    assert_eq!(
        codes("event A { x: int }\nprocessor p { on A { event.x = 2 } }"),
        vec![Code::E0307]
    );
    assert_eq!(
        codes("event A { x: int }\nprocessor p { on A { trigger core_dump() } }"),
        vec![Code::E0205]
    );
    assert_eq!(
        codes(
            "event A { x: int }\nprocessor p { on A { trigger cpu_sample(fr: 1s) limit 1 per 1h } }"
        ),
        vec![Code::E0215]
    );
    assert_eq!(
        codes("event A { x: int }\nprocessor p { on A { for i in 0..event.x { } } }"),
        vec![Code::E0319]
    );
}

#[test]
fn queries_and_shaping() {
    let base = "event A { x: int, s: string, n: int }\n";
    assert_eq!(
        codes(&format!(
            "{base}query q = A | where x > 1 | emit metric \"m\""
        )),
        vec![Code::E0309]
    );
    assert_eq!(
        codes(&format!("{base}query q = A | where x > 1")),
        vec![Code::W0003]
    );
    assert_eq!(
        codes(&format!(
            "{base}query q = A | summarize x + 1 | emit metric \"m\""
        )),
        vec![Code::E0308]
    );
    assert_eq!(
        codes(&format!("{base}query q = A | extend x + 1 | emit log B")),
        vec![Code::E0221]
    );
    assert_eq!(
        codes(&format!("{base}redact A.n with mask")),
        vec![Code::E0318]
    );
    assert_eq!(
        codes(&format!("{base}redact A.s with blur")),
        vec![Code::E0214]
    );
    assert_eq!(
        codes(&format!("{base}suppress A\nsuppress A.s")),
        vec![Code::W0004]
    );
    assert_eq!(codes(&format!("{base}suppress A.nope")), vec![Code::E0202]);
    assert_eq!(
        codes(&format!(
            "{base}query q = A | extend e = s + \"x\" | emit log B\nquery r = B | summarize c = count() by e | emit metric \"r\""
        )),
        vec![]
    );
}

#[test]
fn durable_ids_are_non_empty_and_unique() {
    assert_eq!(codes("event A = \"\" { x: int }"), vec![Code::E0222]);
    // Two empty IDs are two mistakes, not also a clash.
    assert_eq!(
        codes("event A = \"\" { x: int }\nevent B = \"\" { x: int }"),
        vec![Code::E0222, Code::E0222]
    );
    assert_eq!(
        codes("event A { x: int }\nevent B = \"A\" { x: int }"),
        vec![Code::E0208]
    );
    // IDs match exactly, and a blank is a name a record can carry.
    assert_eq!(codes("event A = \" \" { x: int }"), vec![]);
}

#[test]
fn metric_names_come_from_one_query() {
    let base = "event A { x: int }\n";
    let q = |name: &str, aggs: &str, metric: &str| {
        format!("query {name} = A | summarize {aggs} every 1m | emit metric \"{metric}\"\n")
    };
    let two = |a: String, b: String| codes(&format!("{base}{a}{b}"));
    assert_eq!(
        two(q("a", "n = count()", "m"), q("b", "n = count()", "m")),
        vec![Code::E0322]
    );
    // `name.column` of a summary of several aggregates, either way round.
    assert_eq!(
        two(
            q("a", "n = count(), s = sum(x)", "m"),
            q("b", "c = count()", "m.s")
        ),
        vec![Code::E0322]
    );
    assert_eq!(
        two(
            q("a", "c = count()", "m.n"),
            q("b", "n = count(), s = sum(x)", "m")
        ),
        vec![Code::E0322]
    );
    // Distinct exported names are fine, whatever the columns are called.
    assert_eq!(
        two(
            q("a", "n = count(), s = sum(x)", "m"),
            q("b", "n = count()", "m.c")
        ),
        vec![]
    );
    assert_eq!(
        two(
            q("a", "n = count()", "m"),
            q("b", "n = count(), s = sum(x)", "k")
        ),
        vec![]
    );
    // Three queries, one name: each later one is reported once.
    assert_eq!(
        codes(&format!(
            "{base}{}{}{}",
            q("a", "n = count()", "m"),
            q("b", "n = count()", "m"),
            q("c", "n = count()", "m")
        )),
        vec![Code::E0322, Code::E0322]
    );
    // A metric name already refused is not also a clash.
    assert_eq!(
        two(q("a", "n = count()", "m m"), q("b", "n = count()", "m m")),
        vec![Code::E0320, Code::E0320]
    );
}

/// One mistake gives one diagnostic: the cases of `tests/ui/recovery/` and
/// the cascades they once showed.
#[test]
fn one_mistake_one_error() {
    let base = "event A { x: int }\n";
    // Uses of the unknown event's fields.
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ on B {{ emit log C {{ x: event.x }} }} }}"
        )),
        vec![Code::E0201]
    );
    // The variables of an unknown target state, and reachability.
    assert_eq!(
        codes(&format!(
            "{base}machine m {{ state S\n state T {{ t: timestamp }}\n on A in S -> U {{ t = event.time }} }}"
        )),
        vec![Code::E0207]
    );
    // A second function of the same name is checked with its own signature.
    assert_eq!(
        codes("fn f(x: int) -> int { return x }\nfn f(y: bool) -> bool { return y }"),
        vec![Code::E0208]
    );
    // A repeated parameter still counts for the calls.
    assert_eq!(
        codes("fn f(x: int, x: int) -> int { return x }\nfn g() -> int { return f(1, 2) }"),
        vec![Code::E0208]
    );
    // A map variable with an initial value.
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ var m: map[string, int] = 0 max 10\n on A {{ }} }}"
        )),
        vec![Code::E0219]
    );
    // A renamed field in an emit of a declared event.
    assert_eq!(
        codes(&format!(
            "{base}event B {{ x: int }}\nprocessor p {{ on A {{ emit log B {{ y: 1 }} }} }}"
        )),
        vec![Code::E0314]
    );
    // An attribute defaulted to an int, then compared.
    assert_eq!(
        codes(&format!(
            "{base}query q = A | where attrs[\"k\"] ?? 0 > 1 | emit log B"
        )),
        vec![Code::E0301]
    );
    assert_eq!(
        codes(&format!(
            "{base}query q = A | where to_int(attrs[\"k\"]) ?? 0 > 1 | emit log B"
        )),
        vec![]
    );
}

/// Programs the checker once accepted.
#[test]
fn rejected_programs() {
    let base = "event A { x: int }\n";
    // A handler fed by its own output.
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ on A {{ emit log A {{ x: 1 }} }} }}"
        )),
        vec![Code::E0219]
    );
    // An emitted field named like a standard field.
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ on A {{ emit log B {{ time: event.time }} }} }}"
        )),
        vec![Code::E0213]
    );
    // A percentile rank out of range, or computed per row.
    assert_eq!(
        codes(&format!(
            "{base}query q = A | summarize p = percentile(x, 150), r = percentile(x, x) every 1m | emit metric \"m\""
        )),
        vec![Code::E0320, Code::E0319]
    );
    // A machine variable named like a state variable.
    assert_eq!(
        codes(&format!(
            "{base}machine m {{ var t: int = 0\n state S\n state T {{ t: timestamp }}\n on A in S -> T {{ t = event.time }} }}"
        )),
        vec![Code::E0208]
    );
    // Logs that feed back into the events that produce them.
    assert_eq!(
        codes(&format!(
            "{base}query q = A | emit log B\nquery r = B | emit log C\nquery s = C | emit log B"
        )),
        vec![Code::E0219]
    );
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ on A {{ emit log B {{ x: 1 }} }}\n on B {{ emit log A {{ x: 2 }} }} }}"
        )),
        vec![Code::E0219]
    );
    // Units on what is not a number, and repeated annotations.
    assert_eq!(
        codes("event A { s: string @unit(\"ms\"), n: int @pii @pii }"),
        vec![Code::E0317, Code::E0317]
    );
    // A timeout that a shorter one in the same state always pre-empts.
    assert_eq!(
        codes(&format!(
            "{base}machine m {{ state S\n state T\n on A in S -> T\n after 1m in T -> S\n after 5m in T -> S }}"
        )),
        vec![Code::W0002]
    );
    // An action running for a negative time.
    assert_eq!(
        codes(&format!(
            "{base}processor p {{ on A {{ trigger cpu_sample(for: -5s) limit 1 per 1h }} }}"
        )),
        vec![Code::E0320]
    );
}
