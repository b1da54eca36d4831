//! Plain functions: usable in any expression.

use crate::Signature;
use crate::ty::{ConvertTo, Pattern as P, Returns as R, req};

pub static FUNCTIONS: &[Signature] = &[
    Signature {
        name: "len",
        params: &[req("value", P::Sized)],
        returns: R::Int,
        doc: "The length of a string (in bytes), of bytes, or the number of entries of a map.",
    },
    Signature {
        name: "extension",
        params: &[req("path", P::String)],
        returns: R::String,
        doc: "The extension of a file path without the dot (`\"a/b.png\"` gives `\"png\"`), or `\"\"`.",
    },
    Signature {
        name: "lower",
        params: &[req("text", P::String)],
        returns: R::String,
        doc: "The text in lower case.",
    },
    Signature {
        name: "upper",
        params: &[req("text", P::String)],
        returns: R::String,
        doc: "The text in upper case.",
    },
    Signature {
        name: "contains",
        params: &[req("text", P::String), req("part", P::String)],
        returns: R::Bool,
        doc: "Whether `part` occurs in `text`.",
    },
    Signature {
        name: "starts_with",
        params: &[req("text", P::String), req("prefix", P::String)],
        returns: R::Bool,
        doc: "Whether `text` starts with `prefix`.",
    },
    Signature {
        name: "ends_with",
        params: &[req("text", P::String), req("suffix", P::String)],
        returns: R::Bool,
        doc: "Whether `text` ends with `suffix`.",
    },
    Signature {
        name: "substring",
        params: &[
            req("text", P::String),
            req("start", P::Int),
            req("length", P::Int),
        ],
        returns: R::String,
        doc: "Up to `length` bytes of `text` from byte `start`, cut back to whole characters.",
    },
    Signature {
        name: "matches",
        params: &[req("text", P::String), req("pattern", P::String)],
        returns: R::Bool,
        doc: "Whether the regular expression `pattern` matches somewhere in `text`.",
    },
    Signature {
        name: "hash",
        params: &[req("value", P::Scalar)],
        returns: R::String,
        doc: "A keyed hash of the value, as hex: equal inputs give equal outputs, and the input cannot be recovered.",
    },
    Signature {
        name: "mask",
        params: &[req("text", P::String)],
        returns: R::String,
        doc: "The text with every character but the last four replaced by `*`.",
    },
    Signature {
        name: "to_string",
        params: &[req("value", P::Printable)],
        returns: R::Convert(ConvertTo::String),
        doc: "The value as text. Optional only for `dyn`, which may hold a value with no text form.",
    },
    Signature {
        name: "to_int",
        params: &[req("value", P::Convertible)],
        returns: R::Convert(ConvertTo::Int),
        doc: "The value as an int: floats are truncated; strings and `dyn` values give `none` when they do not hold an integer.",
    },
    Signature {
        name: "to_float",
        params: &[req("value", P::Convertible)],
        returns: R::Convert(ConvertTo::Float),
        doc: "The value as a float; strings and `dyn` values give `none` when they do not hold a number.",
    },
    Signature {
        name: "to_bool",
        params: &[req("value", P::Convertible)],
        returns: R::Convert(ConvertTo::Bool),
        doc: "The value as a bool; gives `none` unless it holds `true` or `false`.",
    },
    Signature {
        name: "abs",
        params: &[req("value", P::Numeric)],
        returns: R::SameAs(0),
        doc: "The absolute value.",
    },
    Signature {
        name: "millis",
        params: &[req("value", P::Duration)],
        returns: R::Int,
        doc: "A duration in whole milliseconds.",
    },
    Signature {
        name: "seconds",
        params: &[req("value", P::Duration)],
        returns: R::Float,
        doc: "A duration in seconds.",
    },
    Signature {
        name: "sample",
        params: &[req("rate", P::Percent)],
        returns: R::Bool,
        doc: "True for a random `rate` of the calls, e.g. `sample(1%)`.",
    },
    Signature {
        name: "file.sha256",
        params: &[req("path", P::String)],
        returns: R::String,
        doc: "The SHA-256 of a file's contents, as hex; reads the file.",
    },
    Signature {
        name: "file.exists",
        params: &[req("path", P::String)],
        returns: R::Bool,
        doc: "Whether a file exists at `path`.",
    },
    Signature {
        name: "file.size",
        params: &[req("path", P::String)],
        returns: R::OptionalInt,
        doc: "A file's size in bytes, or `none` when it cannot be read.",
    },
    Signature {
        name: "contains_key",
        params: &[req("map", P::Map), req("key", P::KeyOf(0))],
        returns: R::Bool,
        doc: "Whether the map has an entry for `key`.",
    },
    Signature {
        name: "remove",
        params: &[req("map", P::Map), req("key", P::KeyOf(0))],
        returns: R::ValueOf(0),
        doc: "Removes the entry for `key` and returns its value, or `none` if there was none.",
    },
];

/// The function with this name.
pub fn get(name: &str) -> Option<&'static Signature> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
