//! Fuzz target: the whole check (decoding, imports, parsing, checking,
//! analysis) and both renderers never panic.
//!
//! The input is handed to the driver as raw bytes, so invalid UTF-8 takes
//! the E0001 path, and imports resolve against a small in-memory file
//! system holding one schema file.

#![no_main]

use dtc_driver::{MemoryFs, Session};
use libfuzzer_sys::fuzz_target;

const SCHEMA: &str = "event LogEndFileHash { fileName: string @pii, hashValue: string }\n";

fuzz_target!(|data: &[u8]| {
    let fs = MemoryFs::new().with_file("schemas/imagesvc.dt", SCHEMA);
    let out = Session::new(fs).check_bytes("fuzz.dt", data);
    let _ = dtc_diagnostics::render_human(&out.diagnostics, &out.sources, true);
    let _ = dtc_diagnostics::render_json(&out.diagnostics, &out.sources);
});
