//! End-to-end tests of the `dtc` binary: real processes, real files, real
//! exit codes.
//!
//! They live in the CLI crate because only here does Cargo build the binary
//! for the tests and name it in `CARGO_BIN_EXE_dtc`. Each test works in its
//! own directory under Cargo's per-target scratch directory. Besides the
//! expected output, every run is checked for the absence of a panic: no
//! input may crash the compiler.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of `dtc` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn dtc_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtc"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtc starts");
    // Written from its own thread while this one reads the outputs: a
    // large input and output would otherwise fill both pipes and wait on
    // each other.
    let out = std::thread::scope(|s| {
        if let Some(mut pipe) = child.stdin.take() {
            s.spawn(move || {
                // dtc may exit before reading everything; a broken pipe is fine.
                let _ = pipe.write_all(stdin);
            });
        }
        child.wait_with_output().expect("dtc runs")
    });
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
        "dtc panicked: {run:#?}"
    );
    run
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent dir");
    }
    std::fs::write(path, content).expect("write file");
}

const CLEAN: &str = "/// A file was hashed.\nevent Hashed { fileName: string @pii, bytes: int }\n";
const BROKEN: &str = "event A { x: }\nevent B { y: int }\n";

#[test]
fn clean_file_exits_0_with_summary() {
    let dir = scratch("clean");
    write(&dir, "ok.dt", CLEAN);
    let run = dtc_in(&dir, &["check", "ok.dt"], b"");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stderr, "ok: 1 file checked\n");
    assert_eq!(run.stdout, "");
    let quiet = dtc_in(&dir, &["check", "--quiet", "ok.dt"], b"");
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));
}

#[test]
fn syntax_error_exits_1_with_rendered_diagnostic() {
    let dir = scratch("broken");
    write(&dir, "bad.dt", BROKEN);
    write(&dir, "ok.dt", CLEAN);
    let run = dtc_in(&dir, &["check", "--color", "never", "ok.dt", "bad.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("[E0104] Error: unexpected `}`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bad.dt:1:14"), "{}", run.stderr);
    assert!(
        run.stderr.ends_with("error: 1 error in 1 of 2 files\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn missing_file_exits_2_naming_path_and_os_error() {
    let dir = scratch("missing");
    write(&dir, "ok.dt", CLEAN);
    let run = dtc_in(&dir, &["check", "nope.dt", "ok.dt"], b"");
    assert_eq!(run.code, 2, "{run:#?}");
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: cannot read `nope.dt`: "),
        "{first}"
    );
    assert!(first.contains("os error"), "{first}");
    // The other file is still checked.
    assert!(
        run.stderr
            .contains("1 file checked; 1 path could not be read"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch("usage");
    assert_eq!(dtc_in(&dir, &["check"], b"").code, 2);
    assert_eq!(
        dtc_in(&dir, &["check", "--format", "xml", "a.dt"], b"").code,
        2
    );
    assert_eq!(dtc_in(&dir, &["frobnicate"], b"").code, 2);
    let run = dtc_in(&dir, &["check", "-", "-"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("more than once"), "{}", run.stderr);
}

#[test]
fn stdin_is_checked_as_a_program() {
    let dir = scratch("stdin");
    let run = dtc_in(&dir, &["check", "--color", "never", "-"], BROKEN.as_bytes());
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("<stdin>:1:14"), "{}", run.stderr);
    let run = dtc_in(&dir, &["check", "-"], CLEAN.as_bytes());
    assert_eq!(run.code, 0, "{run:#?}");
}

#[test]
fn directories_are_searched_recursively_in_order() {
    let dir = scratch("directory");
    write(&dir, "progs/b.dt", CLEAN);
    write(&dir, "progs/a/deep/x.dt", BROKEN);
    write(&dir, "progs/a/y.dt", CLEAN);
    write(&dir, "progs/notes.txt", "not a program {{{");
    write(&dir, "progs/.hidden/z.dt", BROKEN);
    let run = dtc_in(&dir, &["check", "--format", "json", "progs"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let files: Vec<&str> = json
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["file"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(files, vec!["progs/a/deep/x.dt"]);
    let run = dtc_in(&dir, &["check", "progs/a/y.dt", "progs/b.dt"], b"");
    assert_eq!(run.stderr, "ok: 2 files checked\n");
    let run = dtc_in(&dir, &["check", "--color", "never", "progs"], b"");
    assert!(
        run.stderr.ends_with("error: 1 error in 1 of 3 files\n"),
        "{}",
        run.stderr
    );
    // A directory with no programs is a usage error, not a silent success.
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    let run = dtc_in(&dir, &["check", "empty"], b"");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("no `.dt` files in directory `empty`"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_is_one_array_with_the_documented_fields() {
    let dir = scratch("json");
    write(&dir, "a.dt", BROKEN);
    write(&dir, "b.dt", "query q = A | where \"unterminated\n");
    let run = dtc_in(&dir, &["check", "--format", "json", "a.dt", "b.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.stderr, "", "json mode prints nothing else");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let all = json.as_array().expect("an array");
    assert!(all.len() >= 2, "{all:#?}");
    for d in all {
        for field in [
            "code", "severity", "message", "file", "line", "column", "span", "labels", "notes",
            "help",
        ] {
            assert!(d.get(field).is_some(), "missing `{field}` in {d}");
        }
        assert!(
            d["span"]["start"].is_u64() && d["span"]["end"].is_u64(),
            "{d}"
        );
        assert!(d["labels"].as_array().is_some_and(|l| !l.is_empty()), "{d}");
    }
    assert_eq!(all[0]["code"], "E0104");
    assert_eq!(all[0]["file"], "a.dt");
    assert_eq!(
        (all[0]["line"].as_u64(), all[0]["column"].as_u64()),
        (Some(1), Some(14))
    );
    assert!(
        all.iter()
            .any(|d| d["file"] == "b.dt" && d["code"] == "E0102"),
        "{all:#?}"
    );
    // A clean run is an empty array.
    write(&dir, "ok.dt", CLEAN);
    let run = dtc_in(&dir, &["check", "--format", "json", "ok.dt"], b"");
    assert_eq!((run.code, run.stdout.trim()), (0, "[]"));
}

#[test]
fn color_never_has_no_escape_codes_and_always_has_them() {
    let dir = scratch("color");
    write(&dir, "bad.dt", BROKEN);
    let never = dtc_in(&dir, &["check", "--color", "never", "bad.dt"], b"");
    assert!(!never.stderr.contains('\x1b'), "{}", never.stderr);
    let auto = dtc_in(&dir, &["check", "bad.dt"], b"");
    assert!(
        !auto.stderr.contains('\x1b'),
        "stderr is a pipe, so auto means no colour"
    );
    let always = dtc_in(&dir, &["check", "--color", "always", "bad.dt"], b"");
    assert!(always.stderr.contains('\x1b'), "{}", always.stderr);
}

#[test]
fn invalid_utf8_exits_1_with_e0001() {
    let dir = scratch("utf8");
    write(&dir, "latin1.dt", b"event Caf\xe9 { x: int }\n");
    let run = dtc_in(&dir, &["check", "--color", "never", "latin1.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("[E0001] Error: file is not valid UTF-8"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("latin1.dt:1:10"), "{}", run.stderr);
    assert!(
        run.stderr.contains("byte 0xE9 is not valid UTF-8"),
        "{}",
        run.stderr
    );
}

/// A tiny deterministic generator (xorshift64*), so the garbage is the same
/// on every run.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_diagnosed_not_crashed_on() {
    let dir = scratch("garbage");
    write(&dir, "random.dt", garbage(64 * 1024, 0x9E37_79B9_7F4A_7C15));
    let run = dtc_in(&dir, &["check", "random.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("E0001"), "{}", run.stderr);
    // ASCII garbage gets through decoding and exercises the lexer and parser.
    let ascii: Vec<u8> = garbage(64 * 1024, 7)
        .into_iter()
        .map(|b| b % 95 + 32)
        .collect();
    write(&dir, "ascii.dt", ascii);
    let run = dtc_in(&dir, &["check", "--format", "json", "ascii.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(json.as_array().is_some_and(|a| !a.is_empty()));
    // Random bytes on stdin as well.
    let run = dtc_in(&dir, &["check", "-"], &garbage(4096, 42));
    assert_eq!(run.code, 1, "{run:#?}");
}

#[test]
fn empty_and_comment_only_files_are_clean() {
    let dir = scratch("empty");
    write(&dir, "empty.dt", "");
    write(&dir, "comment.dt", "// nothing to see here");
    write(
        &dir,
        "block.dt",
        "/* nor here */\n/// a doc comment documenting nothing\n",
    );
    let run = dtc_in(&dir, &["check", "empty.dt", "comment.dt", "block.dt"], b"");
    assert_eq!(run.code, 0, "{run:#?}");
    let run = dtc_in(&dir, &["check", "-"], b"");
    assert_eq!(run.code, 0, "{run:#?}");
}

#[test]
fn deep_nesting_does_not_crash() {
    let dir = scratch("deep");
    let parens = format!(
        "fn f() -> int {{ return {}1{} }}\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    write(&dir, "parens.dt", parens);
    let run = dtc_in(&dir, &["check", "parens.dt"], b"");
    assert!(run.code == 0 || run.code == 1, "{run:#?}");
    let negs = format!("fn f() -> int {{ return {}1 }}\n", "-".repeat(10_000));
    write(&dir, "negs.dt", negs);
    let run = dtc_in(&dir, &["check", "--color", "never", "negs.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("E0107"), "{}", run.stderr);
    let unclosed = "(".repeat(10_000);
    write(
        &dir,
        "unclosed.dt",
        format!("fn f() -> int {{ return {unclosed}"),
    );
    let run = dtc_in(&dir, &["check", "unclosed.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
}

#[test]
fn ten_megabyte_file_is_checked() {
    let dir = scratch("large");
    // Mostly schema, with a query every 500 events: a large file of the
    // shape real ones have (many shared event declarations, few programs).
    let mut text = String::with_capacity(10 * 1024 * 1024 + 1024);
    let mut i = 0;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!(
            "/// Event number {i}.\nevent E{i} = \"svc.e{i}\" {{ path: string @pii, bytes: int, took: duration? }}\n"
        ));
        if i % 500 == 0 {
            text.push_str(&format!(
                "query q{i} = E{i} | where bytes > {i} | summarize n = count() every 1m | emit metric \"m.{i}\"\n"
            ));
        }
        i += 1;
    }
    write(&dir, "big.dt", &text);
    let run = dtc_in(&dir, &["check", "--quiet", "big.dt"], b"");
    assert!(run.code == 0 || run.code == 1, "{run:#?}");
    // The same size of nonsense: reported, and capped.
    let junk = "} ) ] @ ; query = | ".repeat(10 * 1024 * 1024 / 20);
    write(&dir, "junk.dt", junk);
    let run = dtc_in(&dir, &["check", "--format", "json", "junk.dt"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let n = json.as_array().map_or(0, Vec::len);
    assert!((1..=101).contains(&n), "{n} diagnostics");
}

#[test]
fn imports_resolve_relative_to_the_importing_file() {
    let dir = scratch("imports");
    write(
        &dir,
        "app/schemas/files.dt",
        "event Hashed { fileName: string, bytes: int }\n",
    );
    write(
        &dir,
        "app/main.dt",
        "import \"schemas/files.dt\"\nimport \"schemas/missing.dt\"\n",
    );
    write(&dir, "app/other.dt", "import \"schemas/missing.dt\"\n");
    let run = dtc_in(&dir, &["check", "--color", "never", "app/main.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("[E0210] Error: cannot read imported file `app/schemas/missing.dt`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "import paths are relative to the directory of the importing file, here `app`"
        ),
        "{}",
        run.stderr
    );
    // Run from inside the directory: names are relative to where dtc runs.
    let run = dtc_in(
        &dir.join("app"),
        &["check", "--format", "json", "main.dt"],
        b"",
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        json[0]["message"],
        "cannot read imported file `schemas/missing.dt`"
    );
    // A schema imported by several roots is read by each, reported once.
    write(&dir, "shared/bad.dt", BROKEN);
    write(&dir, "shared/a.dt", "import \"bad.dt\"\n");
    write(&dir, "shared/b.dt", "import \"bad.dt\"\n");
    let run = dtc_in(&dir, &["check", "--format", "json", "shared"], b"");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json:#}");
}

#[test]
fn version_help_and_explain() {
    let dir = scratch("meta");
    let run = dtc_in(&dir, &["--version"], b"");
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("dtc "), "{}", run.stdout);
    let run = dtc_in(&dir, &["--help"], b"");
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("Examples:") && run.stdout.contains("dtc check samples/"),
        "{}",
        run.stdout
    );
    let run = dtc_in(&dir, &["check", "--help"], b"");
    assert!(
        run.stdout.contains("--deny-warnings") && run.stdout.contains("Exit status"),
        "{}",
        run.stdout
    );
    let run = dtc_in(&dir, &["explain", "E0203"], b"");
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("E0203: unknown name"),
        "{}",
        run.stdout
    );
    let run = dtc_in(&dir, &["explain", "E9999"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("E9999"), "{}", run.stderr);
    let run = dtc_in(&dir, &["explain"], b"");
    assert!(run.stdout.lines().count() > 40, "{}", run.stdout);
}

#[test]
fn fmt_rewrites_in_place_and_check_lists_what_would_change() {
    let dir = scratch("fmt");
    write(&dir, "messy.dt", "// kept\nevent A{x:int}\n");
    write(&dir, "clean.dt", "event B {\n    y: int,\n}\n");
    let run = dtc_in(&dir, &["fmt", "--check", "messy.dt", "clean.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.stdout, "messy.dt\n");
    let untouched = std::fs::read_to_string(dir.join("messy.dt")).expect("read");
    assert_eq!(untouched, "// kept\nevent A{x:int}\n");

    let run = dtc_in(&dir, &["fmt", "."], b"");
    assert_eq!(run.code, 0, "{run:#?}");
    let formatted = std::fs::read_to_string(dir.join("messy.dt")).expect("read");
    assert_eq!(formatted, "// kept\nevent A {\n    x: int,\n}\n");
    let run = dtc_in(&dir, &["fmt", "--check", "."], b"");
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:#?}");
}

#[test]
fn fmt_of_stdin_goes_to_stdout() {
    let dir = scratch("fmt-stdin");
    let run = dtc_in(&dir, &["fmt", "-"], b"suppress   A\n");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "suppress A\n"),
        "{run:#?}"
    );
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let dir = scratch("fmt-syntax");
    write(&dir, "bad.dt", "event A { x: }\n");
    write(&dir, "good.dt", "event B{}\n");
    let run = dtc_in(&dir, &["fmt", "--color", "never", "bad.dt", "good.dt"], b"");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("E0104"), "{run:#?}");
    assert!(run.stderr.contains("`bad.dt` not formatted"), "{run:#?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("bad.dt")).expect("read"),
        "event A { x: }\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("good.dt")).expect("read"),
        "event B {}\n"
    );
    let run = dtc_in(&dir, &["fmt", "missing.dt"], b"");
    assert_eq!(run.code, 2, "{run:#?}");
}

/// The workspace root, where the samples are.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn run_prints_outputs_and_a_json_summary() {
    let root = workspace();
    let r = dtc_in(
        &root,
        &[
            "run",
            "samples/05-work-queue/work_queue.dt",
            "--events",
            "samples/05-work-queue/work_queue.events.jsonl",
            "--until-end",
            "--format",
            "json",
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(
        lines.last().and_then(|l| l["kind"].as_str()),
        Some("summary")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "action" && l["action"] == "memory_dump" && l["fired"] == true)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "action" && l["fired"] == false),
        "the second dump is refused by its budget"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "metric" && l["name"] == "workqueue.depth.deepest")
    );
}

#[test]
fn run_reads_standard_input_and_counts_malformed_lines() {
    let dir = scratch("run-stdin");
    write(
        &dir,
        "p.dt",
        "event LogLaunch { version: string }\nsuppress LogLaunch when version == \"0\"\n",
    );
    let input = b"{\"event\":\"LogLaunch\",\"time\":\"2026-11-22T10:00:00Z\",\"version\":\"1\"}\nnot json\n{\"event\":\"LogLaunch\",\"time\":\"2026-11-22T10:00:01Z\",\"version\":\"0\"}\n";
    let r = dtc_in(&dir, &["run", "p.dt"], input);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("egress"), "{r:#?}");
    assert!(r.stdout.contains("malformed"), "{r:#?}");
    assert!(
        r.stderr.contains("1 suppressed") && r.stderr.contains("1 malformed"),
        "{r:#?}"
    );
}

/// A file is run in batches of lines, standard input line by line: the
/// outputs are the same, line for line, under both engines, across batch
/// boundaries, with malformed lines, counted windows and events no layout
/// matches among them.
#[test]
fn run_gives_the_same_outputs_from_a_file_as_from_standard_input() {
    let dir = scratch("run-batches");
    write(
        &dir,
        "p.dt",
        "event Request { status: int, path: string }\n\
         query errors = Request | where status >= 500 | summarize n = count() every 1m | emit metric \"errors\"\n\
         query by_path = Request | summarize n = count() by path every 1m | emit metric \"by_path\"\n",
    );
    let mut input = String::new();
    for k in 0..3000u64 {
        let t = 1_795_341_600_000_000_000 + k * 97_000_000;
        input.push_str(&match k % 50 {
            7 => "not json\n".to_string(),
            8 => format!("{{\"event\":\"Other\",\"time\":{t}}}\n"),
            _ => format!(
                "{{\"event\":\"Request\",\"time\":{t},\"status\":{},\"path\":\"/p{}\"}}\n",
                [200, 500, 404][(k % 3) as usize],
                k % 7
            ),
        });
    }
    write(&dir, "events.jsonl", &input);
    for engine in ["jit", "interp"] {
        let args = [
            "run",
            "p.dt",
            "--until-end",
            "--format",
            "json",
            "--engine",
            engine,
        ];
        let from_file = dtc_in(
            &dir,
            &[&args[..], &["--events", "events.jsonl"]].concat(),
            b"",
        );
        let from_stdin = dtc_in(&dir, &args, input.as_bytes());
        assert_eq!(from_file.code, 0, "{from_file:#?}");
        assert_eq!(from_file.stdout, from_stdin.stdout, "{engine}");
        let summary = from_file.stdout.lines().last().unwrap_or_default();
        assert!(summary.contains("\"malformed\":60"), "{summary}");
        assert!(from_file.stdout.contains("by_path"), "{engine}");
    }
}

#[test]
fn run_refuses_programs_with_errors_and_a_jit_report_without_the_jit() {
    let dir = scratch("run-errors");
    write(&dir, "bad.dt", BROKEN);
    let r = dtc_in(&dir, &["run", "bad.dt", "--engine", "jit"], b"");
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("nothing was run"), "{r:#?}");
    write(&dir, "ok.dt", CLEAN);
    let r = dtc_in(&dir, &["run", "ok.dt", "--jit-report"], b"");
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("--engine jit"), "{r:#?}");
}

/// `dtc run --engine jit` prints exactly what the interpreter prints, on
/// every sample, from source and from a compiled artifact; `dtc test
/// --engine jit` passes the samples' tests.
#[test]
fn jit_runs_every_sample_like_the_interpreter() {
    let root = workspace();
    let dir = scratch("jit-samples");
    let mut n = 0;
    let mut stack = vec![root.join("samples")];
    let mut programs = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("samples").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dt")
                && p.with_extension("events.jsonl").exists()
            {
                programs.push(p);
            }
        }
    }
    programs.sort();
    for p in programs {
        let prog = p.to_string_lossy().into_owned();
        let events = p
            .with_extension("events.jsonl")
            .to_string_lossy()
            .into_owned();
        let args = |engine: &'static str| {
            vec![
                "run".to_string(),
                prog.clone(),
                "--events".into(),
                events.clone(),
                "--format".into(),
                "json".into(),
                "--until-end".into(),
                "--engine".into(),
                engine.into(),
            ]
        };
        let run = |a: Vec<String>| {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            dtc_in(&root, &a, b"")
        };
        let interp = run(args("interp"));
        let jit = run(args("jit"));
        assert_eq!(interp.code, 0, "{interp:#?}");
        assert_eq!(jit.code, 0, "{jit:#?}");
        assert_eq!(interp.stdout, jit.stdout, "{prog}: the engines differ");
        // The same program as an artifact, verified and then compiled.
        let dtx = dir.join(format!("p{n}.dtx"));
        let dtx_s = dtx.to_string_lossy().into_owned();
        let c = dtc_in(&root, &["compile", &prog, "-o", &dtx_s], b"");
        assert_eq!(c.code, 0, "{c:#?}");
        let mut a = args("jit");
        a[1] = dtx_s;
        a.push("--jit-report".into());
        let from_artifact = run(a);
        assert_eq!(from_artifact.code, 0, "{from_artifact:#?}");
        assert_eq!(
            interp.stdout, from_artifact.stdout,
            "{prog}: the artifact differs"
        );
        assert!(
            from_artifact.stderr.contains("jit: IR nodes:"),
            "{from_artifact:#?}"
        );
        n += 1;
    }
    assert!(n >= 7, "only {n} samples");
    let r = dtc_in(
        &root,
        &["test", "samples/", "tests/run/", "--engine", "jit"],
        b"",
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains(" 0 failed, 0 errors"), "{r:#?}");
}

#[test]
fn samples_pass_their_program_tests() {
    // Every program with events beside it is a test; count them so a new
    // sample cannot go untested.
    let programs = std::fs::read_dir(workspace().join("samples"))
        .expect("samples/")
        .flat_map(|d| {
            std::fs::read_dir(d.expect("entry").path())
                .into_iter()
                .flatten()
        })
        .filter(|e| {
            let path = e.as_ref().expect("entry").path();
            path.extension().is_some_and(|x| x == "dt")
                && path.with_extension("events.jsonl").exists()
        })
        .count();
    assert!(programs >= 9, "{programs} sample programs with events");
    let r = dtc_in(&workspace(), &["test", "samples/"], b"");
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stderr.contains(&format!("{programs} passed, 0 failed")),
        "{r:#?}"
    );
}

#[test]
fn artifacts_compile_inspect_run_and_refuse_damage() {
    let root = workspace();
    let dir = scratch("artifacts");
    let dtx = dir.join("wq.dtx");
    let dtx = dtx.to_str().expect("utf-8 path");
    let r = dtc_in(
        &root,
        &["compile", "samples/05-work-queue/work_queue.dt", "-o", dtx],
        b"",
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let r = dtc_in(&root, &["inspect", dtx], b"");
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("format version 1") && r.stdout.contains("risk tier        high"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("machine m0 backlog"),
        "the IR is printed: {r:#?}"
    );
    let events = "samples/05-work-queue/work_queue.events.jsonl";
    let from_source = dtc_in(
        &root,
        &[
            "run",
            "samples/05-work-queue/work_queue.dt",
            "--events",
            events,
            "--until-end",
        ],
        b"",
    );
    let from_artifact = dtc_in(&root, &["run", dtx, "--events", events, "--until-end"], b"");
    assert_eq!(from_artifact.code, 0, "{from_artifact:#?}");
    assert_eq!(
        from_source.stdout, from_artifact.stdout,
        "the artifact runs like its source"
    );
    let bytes = std::fs::read(dtx).expect("artifact written");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    write(&dir, "flipped.dtx", &flipped);
    write(&dir, "short.dtx", &bytes[..bytes.len() / 3]);
    write(&dir, "foreign.dtx", b"PK\x03\x04 not an artifact");
    for (name, why) in [
        ("flipped.dtx", "checksum"),
        ("short.dtx", "truncated"),
        ("foreign.dtx", "not a dtc artifact"),
    ] {
        let r = dtc_in(&dir, &["run", name], b"");
        assert_eq!(r.code, 1, "{name}: {r:#?}");
        assert!(r.stderr.contains(why), "{name}: {r:#?}");
        assert!(r.stdout.is_empty(), "{name} must not run: {r:#?}");
    }
}

#[test]
fn generate_gives_a_reproducible_stream() {
    let dir = scratch("generate");
    let a = dtc_in(
        &dir,
        &["generate", "work-queue", "--events", "50", "--seed", "3"],
        b"",
    );
    let b = dtc_in(
        &dir,
        &["generate", "work-queue", "--events", "50", "--seed", "3"],
        b"",
    );
    assert_eq!(a.code, 0);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout.lines().count(), 50);
    let r = dtc_in(&dir, &["generate", "nope"], b"");
    assert_eq!(r.code, 2, "{r:#?}");
}

#[test]
fn keygen_sign_inspect_and_run_with_approvals() {
    let root = workspace();
    let dir = scratch("signing");
    let d = |args: &[&str]| dtc_in(&dir, args, b"");
    let program = root.join("samples/05-work-queue/work_queue.dt");
    let events = root.join("samples/05-work-queue/work_queue.events.jsonl");
    let (program, events) = (
        program.to_str().expect("utf-8"),
        events.to_str().expect("utf-8"),
    );
    let dev = root.join("samples/policies/dev.toml");
    let canary = root.join("samples/policies/canary.toml");
    let (dev, canary) = (
        dev.to_str().expect("utf-8"),
        canary.to_str().expect("utf-8"),
    );
    assert_eq!(d(&["compile", program, "-o", "wq.dtx"]).code, 0);

    // Key pairs: the private file is the owner's only; nothing is overwritten.
    for name in ["alice", "bob", "mallory"] {
        let r = d(&["keygen", "-o", name]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert!(r.stderr.contains("key SHA256:"), "{r:#?}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("alice.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let private = std::fs::read_to_string(dir.join("alice.key")).expect("key");
    assert!(
        private.starts_with("dtc-ed25519-private-key v1\n"),
        "{private}"
    );
    let public = std::fs::read_to_string(dir.join("alice.pub")).expect("key");
    assert!(
        public.starts_with("dtc-ed25519-public-key v1\n"),
        "{public}"
    );
    let r = d(&["keygen", "-o", "alice"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("refusing to overwrite"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("alice.key")).expect("key"),
        private
    );

    // The high-risk sample needs one approval in dev, two in canary.
    let run = |keys: &[&str], policy: &str| {
        let mut args = vec![
            "run",
            "wq.dtx",
            "--events",
            events,
            "--until-end",
            "--policy",
            policy,
        ];
        for k in keys {
            args.extend(["--trusted-key", k]);
        }
        d(&args)
    };
    let r = run(&["alice.pub"], dev);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr
            .contains("its tier (high risk) needs 1 reviewer approval under policy")
            && r.stderr.contains("(ring dev), and it has 0"),
        "{r:#?}"
    );
    assert!(
        r.stdout.is_empty(),
        "a refused artifact must not run: {r:#?}"
    );

    let r = d(&[
        "sign",
        "--key",
        "alice.key",
        "wq.dtx",
        "--reviewer",
        "Alice Martin",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let r = run(&["alice.pub"], dev);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stderr.contains("approved: tier high risk needs 1"),
        "{r:#?}"
    );
    assert!(!r.stdout.is_empty(), "the approved artifact runs: {r:#?}");

    // Signing again with the same key is not a second approval.
    let before = std::fs::read(dir.join("wq.dtx")).expect("artifact");
    let r = d(&["sign", "--key", "alice.key", "wq.dtx"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("already signed"), "{r:#?}");
    assert_eq!(std::fs::read(dir.join("wq.dtx")).expect("artifact"), before);
    let r = run(&["alice.pub", "bob.pub"], canary);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.contains("needs 2 reviewer approvals") && r.stderr.contains("it has 1"),
        "{r:#?}"
    );

    // A signature by a key nobody trusts does not count either.
    let r = d(&["sign", "--key", "mallory.key", "wq.dtx", "-o", "wq-m.dtx"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let r = d(&[
        "run",
        "wq-m.dtx",
        "--events",
        events,
        "--policy",
        canary,
        "--trusted-key",
        "alice.pub",
        "--trusted-key",
        "bob.pub",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("1 by untrusted keys"), "{r:#?}");

    let r = d(&["sign", "--key", "bob.key", "wq.dtx", "--reviewer", "Bob"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let r = run(&["alice.pub", "bob.pub"], canary);
    assert_eq!(r.code, 0, "{r:#?}");

    // inspect lists each signature: fingerprint, reviewer, validity.
    let r = d(&["inspect", "wq.dtx", "--trusted-key", "alice.pub"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("signatures       2"), "{r:#?}");
    assert!(
        r.stdout.contains("\"Alice Martin\": valid, trusted key"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("\"Bob\": valid, untrusted key"), "{r:#?}");
    assert!(r.stdout.contains("1 approval by trusted keys"), "{r:#?}");

    // A body edited after signing is refused, signatures or not.
    let mut flipped = std::fs::read(dir.join("wq.dtx")).expect("artifact");
    flipped[100] ^= 1;
    write(&dir, "flipped.dtx", &flipped);
    let r = d(&["sign", "--key", "alice.key", "flipped.dtx"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("checksum"), "{r:#?}");

    // Bad keys: each says what is wrong with which file.
    write(&dir, "empty.pub", "");
    write(&dir, "garbage.pub", "ssh-ed25519 AAAAC3Nza... alice@host\n");
    for (args, why) in [
        (
            vec!["sign", "--key", "missing.key", "wq.dtx"],
            "key `missing.key`: cannot read it",
        ),
        (
            vec!["sign", "--key", "alice.pub", "wq.dtx"],
            "this is a public key",
        ),
        (
            vec!["inspect", "wq.dtx", "--trusted-key", "alice.key"],
            "this is a private key",
        ),
        (
            vec!["inspect", "wq.dtx", "--trusted-key", "empty.pub"],
            "the file is empty",
        ),
        (
            vec!["inspect", "wq.dtx", "--trusted-key", "garbage.pub"],
            "not a dtc key file",
        ),
    ] {
        let r = d(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.contains(why), "{args:?}: {r:#?}");
    }
    // Signatures are checked on artifacts, not sources.
    let r = d(&[
        "run",
        program,
        "--events",
        events,
        "--trusted-key",
        "alice.pub",
    ]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("compile it"), "{r:#?}");
}
