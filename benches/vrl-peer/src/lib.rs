//! The VRL peer benchmark: dtc's interpreter, its JIT and a hand-written
//! Rust baseline against the Vector Remap Language (the `vrl` crate) on the
//! four workloads of the engine's own benchmark, on the same events.
//!
//! This crate is its own workspace, excluded from the root one, so that CI
//! and normal builds never compile `vrl`. Run it with
//! `cd benches/vrl-peer && cargo run --release` (see `src/main.rs`).
//!
//! [`stream`] holds the workloads and their event streams, [`dtc`] the
//! interpreter and baseline runs, [`peer`] the VRL programs and the host
//! around them, [`jit`] the JIT column, [`profile`] what the profiling
//! examples share.

pub mod dtc;
pub mod jit;
pub mod peer;
pub mod profile;
pub mod stream;
