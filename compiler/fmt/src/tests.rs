//! Formatting cases: each snapshot shows the input and the output, and every
//! case is also checked to be idempotent.

use super::*;

/// Formats `src`, checks that formatting again changes nothing, and returns
/// the input and output side by side for a snapshot.
fn check(src: &str) -> String {
    let out = match format(src) {
        Ok(out) => out,
        Err(e) => panic!("{e}: {:?}", e.diagnostics),
    };
    let again = format(&out).expect("formatted text parses");
    assert_eq!(again, out, "not idempotent");
    format!("----- INPUT\n{src}\n----- OUTPUT\n{out}")
}

#[test]
fn events_one_field_per_line() {
    insta::assert_snapshot!(check(
        "/// doc\nevent A   {x:int@pii,y : string?  @attr( \"y.z\" )}\nevent B{}\nevent C = \"c.id\" from p { m: map[string,int] }"
    ));
}

#[test]
fn comments_stay_in_place() {
    insta::assert_snapshot!(check(
        "// header\n\n\n// about A\nevent A { // trailing after brace\n  x: int, // x\n  /* before y */ y: int\n  // last\n}\n/* block\n   over lines */\nsuppress A // why\n// end of file"
    ));
}

#[test]
fn queries_break_before_each_stage() {
    insta::assert_snapshot!(check(
        "event A { x: int, f: string }\nquery q = A | where x>1&&!(x==2) | summarize n=count(), m=max(x) by ext=extension(f) max 10 every 1m | emit metric \"a.b\"\nquery r = A"
    ));
}

#[test]
fn machines_and_groups() {
    insta::assert_snapshot!(check(
        "machine m per event.thread_id max 10_000 { state Idle\nstate Busy{since:timestamp,n:int=0,}\n\n\non A in Idle->Busy{since=event.time}\non B in Busy when event.time-since>2s -> Idle { emit log Slow { took: event.time - since, very_long_field_name: event.time - since, another_long_one: 1 } limit 1 per 1h\ntrigger cpu_sample(for:30s) limit 1 per 10m }\nafter 60s in Busy->Idle\n}"
    ));
}

#[test]
fn processors_statements_and_else_if() {
    insta::assert_snapshot!(check(
        "processor p { var seen: map[string,int] = {} max 100\nfn larger(a:int,b:int)->int{ if a>b { return a } else if a==b {return -a} else { return b } }\non A when sample(1%) { if let v = event.x { seen[\"k\"] += v } for i in 0..10 { } let s = - 1 ; } }"
            .replace(" ; ", " ")
            .replace("= {} max", "max")
            .as_str()
    ));
}

#[test]
fn imports_and_shaping() {
    insta::assert_snapshot!(check(
        "import   \"a.dt\"\nimport {A,B,} from \"b.dt\"\nredact A.x   with hash\nsuppress B when event.severity<9\nsample A 10%\nlimit B 100 per 1m\nprobe p = uprobe(binary: \"/bin/x\", symbol: \"f\")"
    ));
}

#[test]
fn a_line_comment_inside_an_expression_breaks_it() {
    insta::assert_snapshot!(check(
        "fn f(a: int) -> int {\n    return a + // first\n        1 +\n    /* two */ 2\n}"
    ));
}

#[test]
fn syntax_errors_are_refused() {
    let err = format("event A { x: }").expect_err("refused");
    assert_eq!(err.diagnostics[0].code.as_str(), "E0104");
    assert!(err.to_string().contains("1 syntax error"));
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(format("").ok().as_deref(), Some(""));
    assert_eq!(format("\n\n").ok().as_deref(), Some(""));
    assert_eq!(
        format("// a\n\n\n/* b */  ").ok().as_deref(),
        Some("// a\n\n/* b */\n")
    );
}

#[test]
fn byte_order_mark_and_crlf() {
    assert_eq!(
        format("\u{FEFF}event A {\r\n  x: int\r\n}\r\n")
            .ok()
            .as_deref(),
        Some("\u{FEFF}event A {\n    x: int,\n}\n")
    );
}
