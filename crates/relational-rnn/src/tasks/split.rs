//! Data splits and how they are kept apart.
//!
//! Every task has four splits: `Train` (fresh samples per step), `Val` and `Test` (fixed sets drawn
//! from the same distribution: `Val` for every choice made during a study — early stopping, the
//! best checkpoint, the learning rate —, `Test` scored once at the end) and `Hard` (held out and
//! harder: longer sequences, more distractors or near-ties, see each task).
//!
//! **Disjointness.** Discrete tasks (sorting, tracking, pairs, bAbI) hash each example's content
//! with a stable FNV-1a hash `h` and put it in bucket `h mod 5`: bucket 0 is `Test`, bucket 1 is
//! `Val`, buckets 2–4 are `Train` (rejection sampling). So no validation or test example can ever
//! be drawn for training, not even by the fresh per-step batches, and the two evaluation sets never
//! share an example. The price: in a small example space the sides are not exact samples of the
//! i.i.d. distribution (e.g. sorting with `vocab^len = 64` shifts per-position statistics by a few
//! points); at the defaults (≥ 10^5 sequences) the effect is below sampling noise. `Hard` examples
//! differ from all three in sequence length, hence are disjoint by construction. Nth-farthest draws
//! continuous vectors (a collision has probability 0), so it does not partition: its splits differ
//! by their seed streams only.
//!
//! **Seeds.** [`split_rng`] derives one ChaCha8 stream per split from one seed, so a fixed set is
//! reproducible from `(seed, split)` alone and does not depend on the other sets' sizes. `Val` has
//! stream 3, after the three streams that existed before it, so test and hard sets are unchanged.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which part of a task's data an example belongs to.
/// The discriminant is the split's seed stream (see [`split_rng`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training distribution; fresh batches per step.
    Train = 0,
    /// Same distribution as `Train`, disjoint from it and from `Test`; a fixed set for choices.
    Val = 3,
    /// Same distribution as `Train`, disjoint from it; a fixed set scored once at the end.
    Test = 1,
    /// Held-out harder variant (longer, more distractors); a fixed set.
    Hard = 2,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 4] = [Split::Train, Split::Val, Split::Test, Split::Hard];

    /// The CLI name: `train`, `val`, `test` or `hard`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
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
            .ok_or_else(|| format!("unknown split `{s}`; valid splits: train, val, test, hard"))
    }
}

/// Buckets of the discrete example space: bucket 0 is `Test`, bucket 1 `Val`, the rest `Train`.
pub const BUCKETS: u64 = 5;

/// The seeded generator for one split: ChaCha8 seeded with `seed`, stream = the split's
/// discriminant.
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
    let bucket = hash % BUCKETS;
    match split {
        Split::Train => bucket >= 2,
        Split::Val => bucket == 1,
        Split::Test => bucket == 0,
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
