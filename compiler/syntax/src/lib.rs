//! The syntax of the dt language: the lexer ([`lexer`]), the AST ([`ast`])
//! and the parser ([`parse`]).
//!
//! Parsing never fails: it returns a tree and diagnostics. See
//! `docs/language.md` for the language and `ARCHITECTURE.md` for where this
//! crate sits.

pub mod ast;
pub mod lexer;
mod parser;

pub use parser::{MAX_DEPTH, MAX_SYNTAX_ERRORS, Parsed, parse};
