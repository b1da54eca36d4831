//! The formatter over every sample and ui case of the repository that has no
//! syntax error: formatting is idempotent, keeps every comment, and gives
//! text that parses to the same tree (spans aside).

use std::path::{Path, PathBuf};

use dtc_diagnostics::FileId;

fn dt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            dt_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "dt") {
            out.push(path);
        }
    }
}

/// The tree's debug form with every span removed.
fn shape(text: &str) -> String {
    let parsed = dtc_syntax::parse(FileId(0), text);
    let debug = format!("{:?}", parsed.ast);
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(at) = rest.find("Span { start: ") {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn comments(text: &str) -> Vec<String> {
    dtc_fmt::trivia::scan(text)
        .leading
        .into_iter()
        .flat_map(|l| l.comments)
        .map(|c| {
            // Block comments may be re-indented as a whole; compare their
            // lines without surrounding whitespace.
            c.text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
        })
        .collect()
}

#[test]
fn every_sample_and_ui_case_formats_idempotently_and_faithfully() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    dt_files(&root.join("samples"), &mut files);
    dt_files(&root.join("tests/ui"), &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut formatted = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // not UTF-8: a case for E0001
        };
        let Ok(once) = dtc_fmt::format(&text) else {
            continue; // syntax errors: refused, by design
        };
        formatted += 1;
        let name = path.display();
        let twice =
            dtc_fmt::format(&once).unwrap_or_else(|e| panic!("{name}: output does not parse: {e}"));
        assert_eq!(once, twice, "{name}: not idempotent");
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        let once_text = once.strip_prefix('\u{FEFF}').unwrap_or(&once);
        assert_eq!(
            comments(text),
            comments(once_text),
            "{name}: comments differ"
        );
        assert_eq!(shape(text), shape(once_text), "{name}: the tree differs");
    }
    assert!(formatted > 50, "formatted only {formatted} files");
}

/// The same properties with comments put between tokens all over each file:
/// a block comment after every sixth token, a line comment after the
/// third one after it.
#[test]
fn comments_anywhere_survive_and_stay_idempotent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    dt_files(&root.join("samples"), &mut files);
    dt_files(&root.join("tests/ui"), &mut files);
    files.sort();
    let mut checked = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if dtc_fmt::format(&text).is_err() {
            continue;
        }
        let lexed = dtc_syntax::lexer::lex(&text);
        let mut with_comments = String::new();
        let mut pos = 0;
        for (k, (_, _, end)) in lexed.tokens.iter().enumerate() {
            with_comments.push_str(&text[pos..*end]);
            pos = *end;
            match k % 6 {
                2 => with_comments.push_str(" /* c */ "),
                5 => with_comments.push_str(" // c\n"),
                _ => {}
            }
        }
        with_comments.push_str(&text[pos..]);
        let name = path.display();
        let once = dtc_fmt::format(&with_comments)
            .unwrap_or_else(|e| panic!("{name}: commented copy does not format: {e}"));
        let twice = dtc_fmt::format(&once).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(once, twice, "{name}: not idempotent:\n{once}");
        assert_eq!(
            comments(&with_comments),
            comments(&once),
            "{name}: comments differ"
        );
        assert_eq!(
            shape(&with_comments),
            shape(&once),
            "{name}: the tree differs"
        );
        checked += 1;
    }
    assert!(checked > 50);
}
