//! Where the generator's choices come from: the bytes of a fuzzer's input,
//! or a seeded generator for tests.
//!
//! Every decision the generator makes is one call here, and each call reads
//! the next byte (or four, for wide ranges), so a mutation of the input
//! changes one decision and leaves the others mostly in place: libFuzzer's
//! mutations stay meaningful. When the bytes run out every choice is 0,
//! and the generator arranges its alternatives so that 0 is always the
//! simplest one ("stop adding", "the first kind"), so any input, even an
//! empty one, gives a small complete program.

/// A source of choices.
#[derive(Debug, Clone)]
pub struct Entropy<'a> {
    src: Source<'a>,
}

#[derive(Debug, Clone)]
enum Source<'a> {
    Bytes { data: &'a [u8], pos: usize },
    Rng { state: u64 },
}

impl<'a> Entropy<'a> {
    /// Choices read from `data`, then all zero.
    pub fn from_bytes(data: &'a [u8]) -> Entropy<'a> {
        Entropy {
            src: Source::Bytes { data, pos: 0 },
        }
    }

    /// Choices from a seeded generator (splitmix64): never runs out.
    pub fn seeded(seed: u64) -> Entropy<'static> {
        Entropy {
            src: Source::Rng { state: seed },
        }
    }

    /// Whether a byte source has run out (a seeded one never does).
    pub fn exhausted(&self) -> bool {
        match &self.src {
            Source::Bytes { data, pos } => *pos >= data.len(),
            Source::Rng { .. } => false,
        }
    }

    fn byte(&mut self) -> u8 {
        match &mut self.src {
            Source::Bytes { data, pos } => {
                let b = data.get(*pos).copied().unwrap_or(0);
                *pos += 1;
                b
            }
            Source::Rng { state } => (splitmix(state) >> 56) as u8,
        }
    }

    fn word(&mut self) -> u32 {
        match &mut self.src {
            Source::Rng { state } => (splitmix(state) >> 32) as u32,
            Source::Bytes { .. } => {
                u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
            }
        }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => {
                // Still consume, so the decisions after it do not shift
                // when a list grows from one element to two.
                self.byte();
                0
            }
            2..=256 => self.byte() as usize % n,
            _ => self.word() as usize % n,
        }
    }

    /// True with probability `num / den` (false once the bytes run out).
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        let b = self.byte() as u32;
        // `b < 256 * num / den`, so a zero byte is always false.
        b * den >= 256 * (den - num.min(den)) && b != 0
    }

    /// One of `items` (the first once the bytes run out).
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }

    /// An index by weight: `weights[i]` relative to the others; index 0
    /// once the bytes run out. Zero weights are never picked unless all
    /// are zero.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        if total == 0 {
            return 0;
        }
        let mut r = self.below(total as usize) as u32;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        0
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.below(span.min(usize::MAX as u64) as usize) as i64)
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_bytes_choose_the_first_alternative() {
        let mut e = Entropy::from_bytes(&[]);
        assert_eq!(e.below(10), 0);
        assert!(!e.chance(99, 100));
        assert_eq!(e.weighted(&[1, 5, 9]), 0);
        assert_eq!(*e.pick(&["a", "b"]), "a");
        assert!(e.exhausted());
    }

    #[test]
    fn bytes_drive_choices() {
        let mut e = Entropy::from_bytes(&[3, 255, 1]);
        assert_eq!(e.below(10), 3);
        assert!(e.chance(1, 2));
        assert!(!e.chance(1, 2));
    }

    #[test]
    fn chance_follows_its_probability() {
        let mut e = Entropy::seeded(1);
        let hits = (0..10_000).filter(|_| e.chance(1, 4)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
        let never = (0..1_000).filter(|_| e.chance(0, 4)).count();
        assert_eq!(never, 0);
    }

    #[test]
    fn seeded_is_deterministic() {
        let a: Vec<usize> = {
            let mut e = Entropy::seeded(9);
            (0..20).map(|_| e.below(1000)).collect()
        };
        let mut e = Entropy::seeded(9);
        let b: Vec<usize> = (0..20).map(|_| e.below(1000)).collect();
        assert_eq!(a, b);
    }
}
