//! Data splits and how they are kept apart.
//!
//! Every task has three splits: `Train` (fresh samples per step), `Test` (a fixed set drawn from the
//! same distribution) and `Hard` (held out and harder: longer sequences, more distractors or
//! near-ties, see each task).
//!
//! **Train/test disjointness.** Discrete tasks (sorting, tracking, pairs, bAbI) hash each example's
//! content with a stable FNV-1a hash `h` and keep an example in `Test` iff `h mod 5 = 0`, in `Train`
//! otherwise (rejection sampling). So no test example can ever be drawn for training, not even by
//! the fresh per-step batches. The price: in a small example space the two sides are not exact
//! samples of the i.i.d. distribution (e.g. sorting with `vocab^len = 64` shifts per-position
//! statistics by a few points); at the defaults (≥ 10^5 sequences) the effect is below sampling
//! noise. `Hard` examples differ from both in sequence length, hence are
//! disjoint by construction. Nth-farthest draws continuous vectors (a collision has probability 0),
//! so it does not partition.
//!
//! **Seeds.** [`split_rng`] derives one ChaCha8 stream per split from one seed, so a fixed test set
//! is reproducible from `(seed, Split::Test)` alone and does not depend on the train size.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which part of a task's data an example belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training distribution; fresh batches per step.
    Train,
    /// Same distribution as `Train`, disjoint from it; a fixed set.
    Test,
    /// Held-out harder variant (longer, more distractors); a fixed set.
    Hard,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Test, Split::Hard];

    /// The CLI name: `train`, `test` or `hard`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
            Split::Hard => "hard",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|split| split.name() == s)
            .ok_or_else(|| format!("unknown split `{s}`; valid splits: train, test, hard"))
    }
}

/// One test bucket out of this many: the share of the discrete example space reserved for `Test`.
pub const TEST_BUCKETS: u64 = 5;

/// The seeded generator for one split: ChaCha8 seeded with `seed`, stream = split index.
pub fn split_rng(seed: u64, split: Split) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(split as u64);
    rng
}

/// Stable 64-bit FNV-1a hash of a sequence of words (stable across platforms and Rust versions,
/// unlike `std`'s `DefaultHasher`).
pub fn content_hash(words: impl IntoIterator<Item = u64>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    words.into_iter().fold(OFFSET, |hash, word| {
        word.to_le_bytes()
            .iter()
            .fold(hash, |h, &byte| (h ^ u64::from(byte)).wrapping_mul(PRIME))
    })
}

/// Whether an example with content hash `hash` may appear in `split` (see the module doc).
pub fn admits(split: Split, hash: u64) -> bool {
    match split {
        Split::Train => !hash.is_multiple_of(TEST_BUCKETS),
        Split::Test => hash.is_multiple_of(TEST_BUCKETS),
        Split::Hard => true,
    }
}

/// Draws with `draw` until the example's content hash is admitted by `split`.
///
/// # Panics
/// If a million draws in a row are rejected: the example space is too small to be partitioned (the
/// task configs' `validate` rules out such settings).
pub(crate) fn draw_admitted<E>(
    split: Split,
    mut draw: impl FnMut() -> E,
    key: impl Fn(&E) -> u64,
) -> E {
    for _ in 0..1_000_000 {
        let example = draw();
        if admits(split, key(&example)) {
            return example;
        }
    }
    panic!("no example admitted to the {split} split after 1e6 draws: example space too small")
}
