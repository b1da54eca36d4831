//! Fuzz target: the lexer and parser never panic, and every diagnostic's
//! span lies inside the text on character boundaries.
//!
//! Arbitrary bytes are decoded lossily, so every input reaches the parser.

#![no_main]

use dtc_diagnostics::FileId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = dtc_syntax::parse(FileId(0), &text);
    for d in &parsed.diagnostics {
        let span = d.primary.span;
        assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
        assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{d:?}");
    }
});
