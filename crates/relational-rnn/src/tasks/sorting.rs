//! Sorting with memory: read `len` tokens, then output them in ascending order.
//!
//! Input phase (steps `0..len`): `onehot(token_t)` with token `~ U{0..vocab−1}`; output phase
//! (steps `len..2·len`): a zero token and the "go" bit. Target at output step `len + j`: the `j`-th
//! smallest input token (stable sort). `F = vocab + 1`, `T = 2·len`, `C = vocab`; `mask` is true on
//! the output steps only, so the model has seen the whole input before it must answer.
//!
//! Baselines (per token): chance `1/vocab`; majority `1/vocab` (the targets are a permutation of
//! the uniform inputs); plateau = the input-blind per-position guess (answer the most likely value
//! of the `j`-th order statistic), computed exactly by [`position_only_accuracy`]:
//! `P(X_(j) ≤ v) = Σ_{i>j} C(len, i) p^i (1−p)^(len−i)` with `p = (v+1)/vocab`; plateau loss = the
//! mean entropy of `X_(j)`. [`Task::heuristics`] scores that guess and `majority` on data (copying
//! the input unsorted, another rule without comparisons, scores no better at the defaults).
//!
//! Hard split: `hard_len` tokens (longer sequences). Train/test are partitioned by content hash
//! (see [`super::split`]).

use ndarray::{Array2, Array3};
use rand::{Rng, RngCore};

use super::heuristics::{Heuristic, majority};
use super::split::{content_hash, draw_admitted};
use super::{Baselines, Batch, Dataset, Example, Split, Task};
use crate::ConfigError;

/// Configuration of [`Sorting`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SortingConfig {
    /// Tokens to sort in the train/test splits. Default 5.
    pub len: usize,
    /// Token vocabulary size (= classes). Default 10.
    pub vocab: usize,
    /// Tokens to sort in the hard split. Default 10.
    pub hard_len: usize,
}

impl Default for SortingConfig {
    fn default() -> Self {
        Self {
            len: 5,
            vocab: 10,
            hard_len: 10,
        }
    }
}

impl SortingConfig {
    /// `len ≥ 1`, `vocab ≥ 2`, `hard_len > len`, and at least 64 distinct sequences
    /// (`vocab^len ≥ 64`) so the train/test partition has members on both sides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("len", self.len, 1)?;
        ConfigError::require_size("vocab", self.vocab, 2)?;
        ConfigError::require_size("hard_len", self.hard_len, self.len + 1)?;
        let space = (0..self.len).try_fold(1usize, |acc, _| acc.checked_mul(self.vocab));
        if space.is_some_and(|s| s < 64) {
            return Err(ConfigError::new(
                "len",
                format!(
                    "vocab^len must be at least 64 to split train/test, got {}^{}",
                    self.vocab, self.len
                ),
            ));
        }
        Ok(())
    }
}

/// One sorting example in readable form.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SortingExample {
    /// The input tokens in order.
    pub tokens: Vec<usize>,
    /// The targets of the output steps: `tokens` sorted ascending.
    pub sorted: Vec<usize>,
}

/// The sorting task generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Sorting {
    config: SortingConfig,
}

/// Exact accuracy of the input-blind per-position guess: the mean over output positions `j` of
/// `max_v P(X_(j) = v)`, where `X_(j)` is the `j`-th smallest of `len` i.i.d. uniform tokens.
pub fn position_only_accuracy(len: usize, vocab: usize) -> f64 {
    let total: f64 = (0..len)
        .map(|j| {
            order_statistic_pmf(len, vocab, j)
                .into_iter()
                .fold(0.0, f64::max)
        })
        .sum();
    total / len as f64
}

/// `P(X_(j) = v)` for `v = 0..vocab`, from `P(X_(j) ≤ v) = Σ_{i>j} C(len, i) p^i (1−p)^(len−i)`
/// with `p = (v+1)/vocab` (at least `j + 1` of the tokens are `≤ v`).
fn order_statistic_pmf(len: usize, vocab: usize, j: usize) -> Vec<f64> {
    let binom =
        |n: usize, k: usize| (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64);
    let cdf = |v: usize| {
        let p = (v + 1) as f64 / vocab as f64;
        (j + 1..=len)
            .map(|i| binom(len, i) * p.powi(i as i32) * (1.0 - p).powi((len - i) as i32))
            .sum::<f64>()
    };
    (0..vocab)
        .map(|v| cdf(v) - if v == 0 { 0.0 } else { cdf(v - 1) })
        .collect()
}

/// The most likely value of each output position's order statistic (ties → the smaller value).
fn order_statistic_modes(len: usize, vocab: usize) -> Vec<usize> {
    (0..len)
        .map(|j| {
            let pmf = order_statistic_pmf(len, vocab, j);
            (0..vocab)
                .reduce(|best, v| if pmf[v] > pmf[best] { v } else { best })
                .expect("vocab ≥ 2")
        })
        .collect()
}

/// Cross-entropy of the input-blind per-position prediction `P(X_(j) = ·)`: the mean over `j`
/// of the entropy of `X_(j)`.
fn position_only_loss(len: usize, vocab: usize) -> f64 {
    let entropy = |j| -> f64 {
        let pmf = order_statistic_pmf(len, vocab, j);
        pmf.iter().filter(|&&q| q > 0.0).map(|&q| -q * q.ln()).sum()
    };
    (0..len).map(entropy).sum::<f64>() / len as f64
}

impl Sorting {
    /// Validates `config` and builds the task.
    pub fn new(config: SortingConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// Tokens per sequence in `split`.
    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Hard => self.config.hard_len,
            Split::Train | Split::Val | Split::Test => self.config.len,
        }
    }

    /// Draws one example of `split`.
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> SortingExample {
        let len = self.len(split);
        let tokens = draw_admitted(
            split,
            || -> Vec<usize> {
                (0..len)
                    .map(|_| rng.random_range(0..self.config.vocab))
                    .collect()
            },
            |tokens| content_hash(tokens.iter().map(|&t| t as u64)),
        );
        let mut sorted = tokens.clone();
        sorted.sort();
        SortingExample { tokens, sorted }
    }

    /// Encodes examples of `split` as a batch.
    ///
    /// # Shapes
    /// `inputs: [2·len, B, vocab + 1]`, `targets: [2·len, B]`, `mask: [2·len, B]` (true on steps
    /// `len..2·len`), `len = self.len(split)`.
    ///
    /// # Panics
    /// If an example's length is not `self.len(split)`.
    pub fn encode(&self, split: Split, examples: &[SortingExample]) -> Batch {
        let len = self.len(split);
        let (t_len, b, vocab) = (2 * len, examples.len(), self.config.vocab);
        let mut inputs = Array3::<f32>::zeros((t_len, b, vocab + 1)); // [T, B, F]
        let mut targets = Array2::<usize>::zeros((t_len, b)); // [T, B]
        let mut mask = Array2::<bool>::from_elem((t_len, b), false); // [T, B]
        for (j, ex) in examples.iter().enumerate() {
            assert_eq!(ex.tokens.len(), len, "sorting example of the wrong length");
            for (t, &token) in ex.tokens.iter().enumerate() {
                inputs[[t, j, token]] = 1.0;
            }
            for (i, &token) in ex.sorted.iter().enumerate() {
                inputs[[len + i, j, vocab]] = 1.0;
                targets[[len + i, j]] = token;
                mask[[len + i, j]] = true;
            }
        }
        Batch::new(inputs, targets, mask)
    }
}

impl Task for Sorting {
    fn name(&self) -> &str {
        "sorting"
    }

    fn input_size(&self) -> usize {
        self.config.vocab + 1
    }

    fn num_classes(&self) -> usize {
        self.config.vocab
    }

    fn seq_len(&self, split: Split) -> usize {
        2 * self.len(split)
    }

    fn baselines(&self) -> Baselines {
        let v = self.config.vocab as f64;
        Baselines {
            chance: 1.0 / v,
            majority: 1.0 / v,
            plateau: Some(position_only_accuracy(self.config.len, self.config.vocab)),
            plateau_loss: Some(position_only_loss(self.config.len, self.config.vocab)),
            plateau_meaning: "input-blind: most likely value of the j-th order statistic",
        }
    }

    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic> {
        let modes = order_statistic_modes(self.len(data.split), self.config.vocab);
        vec![
            majority(self, data),
            Heuristic::score(
                "position_only",
                "input-blind: the most likely value of the j-th smallest token at output j",
                &data.batch,
                data.examples.iter().map(|_| modes.clone()),
            ),
        ]
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "sorting: {len} tokens from 0..{v}, then {len} go steps answering the sorted tokens \
             (F = {f}, T = {t}, C = {v}, loss on the output steps). Hard split: {h} tokens.",
            len = c.len,
            v = c.vocab,
            f = self.input_size(),
            t = 2 * c.len,
            h = c.hard_len
        )
    }

    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>) {
        let examples: Vec<_> = (0..batch).map(|_| self.generate(split, rng)).collect();
        let encoded = self.encode(split, &examples);
        (
            encoded,
            examples.into_iter().map(Example::Sorting).collect(),
        )
    }
}
