//! A small, deterministic input mutator for no-panic testing on stable Rust.
//!
//! cargo-fuzz needs a nightly compiler; this does the same job, less
//! cleverly, anywhere: start from real programs (the samples and ui cases),
//! apply a few random edits (byte flips, truncations, deletions, duplicated
//! ranges, splices from other programs, dt tokens dropped in at random,
//! runs of nesting) and see whether the compiler survives. The generator is
//! seeded, so a failure reproduces from its iteration number.

/// xorshift64*: tiny, fast and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero.
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`, or 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Fragments that mean something to the lexer or parser, or that have
/// broken lexers elsewhere: keywords, operators, literals at their limits,
/// unfinished strings and comments, non-ASCII text.
pub const TOKENS: &[&str] = &[
    "import",
    "from",
    "event",
    "probe",
    "query",
    "machine",
    "processor",
    "state",
    "on",
    "in",
    "when",
    "after",
    "emit",
    "log",
    "metric",
    "trigger",
    "limit",
    "per",
    "max",
    "suppress",
    "redact",
    "with",
    "sample",
    "let",
    "var",
    "if",
    "else",
    "for",
    "fn",
    "return",
    "true",
    "false",
    "none",
    "where",
    "extend",
    "project",
    "summarize",
    "by",
    "every",
    "is",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    ";",
    ".",
    "..",
    "->",
    "=",
    "+=",
    "-=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "&&",
    "||",
    "??",
    "?",
    "|",
    "@",
    "@pii",
    "@attr(\"x\")",
    "x",
    "event.time",
    "event.attrs[\"k\"]",
    "0",
    "1_000",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "1.5",
    "1.",
    ".5",
    "10%",
    "0.5%",
    "101%",
    "1.5s",
    "1.5ns",
    "10ms",
    "1d",
    "106751d",
    "9999999999d",
    "64KiB",
    "1TiB",
    "99999999TiB",
    "5parsecs",
    "\"",
    "\"s\"",
    "\"\\n\"",
    "\"\\q\"",
    "\"\\u{1F600}\"",
    "\"\\u{D800}\"",
    "\"\\u{110000}\"",
    "\"\\u{\"",
    "\"\\",
    "/*",
    "*/",
    "//",
    "///",
    "/// doc\n",
    "\n",
    "\t",
    "\r\n",
    " ",
    "\u{0}",
    "\u{FEFF}",
    "é",
    "😀",
    "\u{202E}",
    "map[string, int]",
    "int?",
    "string??",
    "import \"self.dt\"",
    "import \"../x.dt\"",
    "import \"\"",
    "import \"/\"",
    "import { A, B } from \"lib.dt\"",
    "count()",
    "f(",
    "f()",
    "f(f(f(",
    "x.y.z(",
    "(1)(2)",
    "a[b][c]",
    "state S { v: int = 1 }",
    "-> S",
    "sample(1%)",
    "max(1, 2)",
];

/// Applies between one and four random edits to `input`. `corpus` supplies
/// material for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = rng.below(256) as u8;
            }
            2 | 3 => {
                let at = rng.below(len + 1);
                let token = rng.pick(TOKENS).copied().unwrap_or("x");
                let glue = if rng.below(2) == 0 { " " } else { "" };
                let piece = format!("{glue}{token}{glue}");
                data.splice(at..at, piece.bytes());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below(16.min(len - at));
                data.drain(at..at + n);
            }
            5 => data.truncate(rng.below(len + 1)),
            6 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below(64.min(len - from));
                let piece = data[from..from + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, piece);
            }
            7 => {
                if let Some(other) = rng.pick(corpus).filter(|o| !o.is_empty()) {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below(256.min(other.len() - from));
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[from..from + n].iter().copied());
                }
            }
            8 => {
                let opener = *rng
                    .pick(&[
                        "(",
                        "{",
                        "[",
                        "-",
                        "!",
                        "if true { ",
                        "f(",
                        "a.",
                        "\"",
                        "/*",
                    ])
                    .unwrap_or(&"(");
                let piece = opener.repeat(1 + rng.below(400));
                let at = rng.below(len + 1);
                data.splice(at..at, piece.bytes());
            }
            _ => {
                // Swap two lines: moves declarations and closing braces around.
                let text = String::from_utf8_lossy(&data).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                if lines.len() > 1 {
                    let a = rng.below(lines.len());
                    let b = rng.below(lines.len());
                    lines.swap(a, b);
                    data = lines.join("\n").into_bytes();
                }
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let corpus = vec![b"event A { x: int }".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| mutate(&mut rng, &corpus[0], &corpus))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn empty_input_and_corpus_are_fine() {
        let mut rng = Rng::new(0);
        for _ in 0..1000 {
            let _ = mutate(&mut rng, b"", &[]);
        }
    }
}
