//! Nth-farthest (Santoro et al. 2018, sec. 4.1): the paper's relational reasoning task.
//!
//! `K_v` vectors `x_t ~ U(−1, 1)^dim`; vector `t` carries the label `perm[t]` of a random
//! permutation; a question `(n, m)` with `n, m ~ U{0..K_v−1}`. Input at step `t = 0..K_v`:
//!
//! ```text
//! [ x_t ; onehot(label_t) ; onehot(n) ; onehot(m) ]      F = dim + 3·K_v (paper: 16 + 24 = 40)
//! ```
//!
//! Target (last step only): the label of the vector that is the `n`-th farthest from the vector
//! labelled `m` in Euclidean distance, `n = 0` the farthest. The reference counts (distance 0, always
//! the nearest), so `n = K_v − 1` answers `m`. `C = K_v`, `T = K_v`.
//!
//! Baselines: chance `1/K_v`; majority `1/K_v` (labels are a uniform permutation); plateau `2/K_v`
//! ("`n = K_v−1` → `m`, else guess one of the other `K_v−1` labels":
//! `1/K_v · 1 + (K_v−1)/K_v · 1/(K_v−1)`), plateau loss `(K_v−1)/K_v · ln(K_v−1)` (certain of `m`
//! when `n = K_v−1`, uniform over the other `K_v−1` labels otherwise). The non-relational
//! [`NthFarthest::norm_heuristic`] ("else the vector with the `n`-th largest norm") sets a higher
//! bar (≈ 0.31 at 8 × 16); [`Task::heuristics`] scores it, the plateau rule and `majority` on data.
//!
//! **Hard split (near ties).** The input width fixes `K_v` and `dim`, so the hard split keeps them
//! and makes the comparison finer instead: `n` is drawn from `0..K_v−1` (the self-answer `n = K_v−1`
//! is never asked) and vectors are redrawn until the `n`-th farthest distance is within a relative
//! gap [`NthFarthestConfig::hard_gap`] of a neighbouring distance (the `(n−1)`-th or `(n+1)`-th,
//! the reference's 0 excluded). The plateau shortcut scores chance there.
//!
//! DeepMind's released generator (Sonnet `dataset_nth_farthest.py`) differs from the paper's text
//! (input order `[vector, id, m, n]`, the label is a distance rank); we follow the paper's wording.

use ndarray::{Array2, Array3};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use super::heuristics::{Heuristic, majority};
use super::{Baselines, Batch, Dataset, Example, Split, Task};
use crate::ConfigError;

/// Configuration of [`NthFarthest`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NthFarthestConfig {
    /// Number of vectors `K_v` (= sequence length = classes). Default 8 (the paper's).
    pub num_vectors: usize,
    /// Dimension of each vector. Default 16 (the paper's).
    pub dim: usize,
    /// Hard split: maximum relative gap `|d_n − d_neighbour| / d_n` between the answer's distance
    /// and a neighbouring one. Default 0.02.
    pub hard_gap: f64,
    /// Draw only the first `active_dims` coordinates of each vector; the rest are 0. An easier
    /// task at the same input width (a curriculum stage whose parameters carry over to the full
    /// task). Default `None`: every coordinate.
    pub active_dims: Option<usize>,
}

impl Default for NthFarthestConfig {
    fn default() -> Self {
        Self {
            num_vectors: 8,
            dim: 16,
            hard_gap: 0.02,
            active_dims: None,
        }
    }
}

impl NthFarthestConfig {
    /// `num_vectors ≥ 3` (the hard split needs two non-reference distances), `dim ≥ 1`,
    /// `hard_gap > 0`, `1 ≤ active_dims ≤ dim`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("num_vectors", self.num_vectors, 3)?;
        ConfigError::require_size("dim", self.dim, 1)?;
        if let Some(active) = self.active_dims {
            ConfigError::require_size("active_dims", active, 1)?;
            if active > self.dim {
                return Err(ConfigError::new(
                    "active_dims",
                    format!("must be at most dim = {}, got {active}", self.dim),
                ));
            }
        }
        ConfigError::require_positive("hard_gap", self.hard_gap)
    }

    /// The coordinates drawn from U(−1, 1): `active_dims`, or all `dim`.
    pub fn drawn_dims(&self) -> usize {
        self.active_dims.unwrap_or(self.dim)
    }
}

/// One Nth-farthest example in readable form.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NthFarthestExample {
    /// The vectors in input order: `[K_v][dim]`.
    pub vectors: Vec<Vec<f32>>,
    /// `labels[t]`: the label carried by vector `t` (a permutation of `0..K_v`).
    pub labels: Vec<usize>,
    /// Which farthest (0 = the farthest).
    pub n: usize,
    /// The label of the reference vector.
    pub m: usize,
    /// The label of the `n`-th farthest vector from the one labelled `m`.
    pub target: usize,
}

/// The Nth-farthest task generator.
#[derive(Debug, Clone, PartialEq)]
pub struct NthFarthest {
    config: NthFarthestConfig,
}

/// Euclidean distances from vector `reference` to every vector, in `f64`.
fn distances(vectors: &[Vec<f32>], reference: usize) -> Vec<f64> {
    vectors
        .iter()
        .map(|v| {
            v.iter()
                .zip(&vectors[reference])
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// Vector indices sorted farthest first from `reference`, with their distances.
fn farthest_first(vectors: &[Vec<f32>], reference: usize) -> (Vec<usize>, Vec<f64>) {
    let dist = distances(vectors, reference);
    let mut order: Vec<usize> = (0..vectors.len()).collect();
    order.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]));
    (order, dist)
}

impl NthFarthest {
    /// Validates `config` and builds the task.
    pub fn new(config: NthFarthestConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &NthFarthestConfig {
        &self.config
    }

    /// Draws one example of `split` (see the module doc for the hard split).
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> NthFarthestExample {
        let (k, dim) = (self.config.num_vectors, self.config.dim);
        let drawn = self.config.drawn_dims();
        loop {
            let vectors: Vec<Vec<f32>> = (0..k)
                .map(|_| {
                    let mut v: Vec<f32> = (0..drawn).map(|_| rng.random_range(-1.0..1.0)).collect();
                    v.resize(dim, 0.0);
                    v
                })
                .collect();
            let mut labels: Vec<usize> = (0..k).collect();
            labels.shuffle(rng);
            let n = match split {
                Split::Hard => rng.random_range(0..k - 1),
                Split::Train | Split::Val | Split::Test => rng.random_range(0..k),
            };
            let m = rng.random_range(0..k);
            let reference = labels
                .iter()
                .position(|&l| l == m)
                .expect("labels are 0..K");
            let (order, dist) = farthest_first(&vectors, reference);
            if split == Split::Hard && !self.near_tie(&order, &dist, n) {
                continue;
            }
            let target = labels[order[n]];
            return NthFarthestExample {
                vectors,
                labels,
                n,
                m,
                target,
            };
        }
    }

    /// Whether the `n`-th farthest distance is within `hard_gap` (relative) of a neighbouring
    /// non-reference distance; `order` is farthest first, so the reference is `order[K_v − 1]`.
    fn near_tie(&self, order: &[usize], dist: &[f64], n: usize) -> bool {
        let d_n = dist[order[n]];
        let close = |j: usize| (d_n - dist[order[j]]).abs() < self.config.hard_gap * d_n;
        (n > 0 && close(n - 1)) || (n + 2 < order.len() && close(n + 1))
    }

    /// Encodes examples as a batch; the target sits on the last step, the only masked one.
    ///
    /// # Shapes
    /// `inputs: [K_v, B, dim + 3·K_v]`, `targets: [K_v, B]`, `mask: [K_v, B]`.
    pub fn encode(&self, examples: &[NthFarthestExample]) -> Batch {
        let (k, dim) = (self.config.num_vectors, self.config.dim);
        let b = examples.len();
        let mut inputs = Array3::<f32>::zeros((k, b, self.input_size())); // [T, B, F]
        let mut targets = Array2::<usize>::zeros((k, b)); // [T, B]
        let mut mask = Array2::<bool>::from_elem((k, b), false); // [T, B]
        for (j, ex) in examples.iter().enumerate() {
            for t in 0..k {
                for (d, &x) in ex.vectors[t].iter().enumerate() {
                    inputs[[t, j, d]] = x;
                }
                inputs[[t, j, dim + ex.labels[t]]] = 1.0;
                inputs[[t, j, dim + k + ex.n]] = 1.0;
                inputs[[t, j, dim + 2 * k + ex.m]] = 1.0;
            }
            targets[[k - 1, j]] = ex.target;
            mask[[k - 1, j]] = true;
        }
        Batch::new(inputs, targets, mask)
    }

    /// Decodes column `b` of an encoded batch back into `(vectors, labels, n, m)`.
    ///
    /// # Shapes
    /// `batch.inputs: [K_v, B, dim + 3·K_v]`.
    pub fn decode(&self, batch: &Batch, b: usize) -> (Vec<Vec<f32>>, Vec<usize>, usize, usize) {
        let (k, dim) = (self.config.num_vectors, self.config.dim);
        let argmax = |t: usize, offset: usize| {
            (0..k)
                .find(|&i| batch.inputs[[t, b, offset + i]] == 1.0)
                .expect("a one-hot block in an Nth-farthest batch")
        };
        let vectors = (0..k)
            .map(|t| (0..dim).map(|d| batch.inputs[[t, b, d]]).collect())
            .collect();
        let labels = (0..k).map(|t| argmax(t, dim)).collect();
        (
            vectors,
            labels,
            argmax(k - 1, dim + k),
            argmax(k - 1, dim + 2 * k),
        )
    }

    /// The non-relational "norm heuristic" of `reference/nth_farthest.py`, one prediction per
    /// sequence: `n = K_v − 1` → `m`; otherwise the label of the vector with the `n`-th largest
    /// norm among the vectors other than the reference. It never compares two vectors, yet scores
    /// ≈ 0.31 at 8 × 16 (above the paper's LSTM), so a model at that level has not shown
    /// relational reasoning.
    ///
    /// # Shapes
    /// `batch.inputs: [K_v, B, dim + 3·K_v]`; returns `[B]`.
    pub fn norm_heuristic(&self, batch: &Batch) -> Vec<usize> {
        let k = self.config.num_vectors;
        (0..batch.batch_size())
            .map(|b| {
                let (vectors, labels, n, m) = self.decode(batch, b);
                if n == k - 1 {
                    return m;
                }
                let norm = |v: &Vec<f32>| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
                let mut others: Vec<usize> = (0..k).filter(|&t| labels[t] != m).collect();
                others.sort_by(|&a, &c| norm(&vectors[c]).total_cmp(&norm(&vectors[a])));
                labels[others[n]]
            })
            .collect()
    }
}

impl Task for NthFarthest {
    fn name(&self) -> &str {
        "nth-farthest"
    }

    fn input_size(&self) -> usize {
        self.config.dim + 3 * self.config.num_vectors
    }

    fn num_classes(&self) -> usize {
        self.config.num_vectors
    }

    fn seq_len(&self, _split: Split) -> usize {
        self.config.num_vectors
    }

    fn baselines(&self) -> Baselines {
        let k = self.config.num_vectors as f64;
        Baselines {
            chance: 1.0 / k,
            majority: 1.0 / k,
            plateau: Some(2.0 / k),
            plateau_loss: Some((k - 1.0) / k * (k - 1.0).ln()),
            plateau_meaning: "n = K_v-1 -> m, otherwise guess one of the other labels",
        }
    }

    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic> {
        let k = self.config.num_vectors;
        let plateau = data.examples.iter().map(|example| {
            let Example::NthFarthest(ex) = example else {
                panic!("an nth-farthest dataset holds nth-farthest examples")
            };
            // Any fixed label other than m is right 1/(K_v−1) of the time: labels are a permutation.
            vec![if ex.n == k - 1 {
                ex.m
            } else {
                usize::from(ex.m == 0)
            }]
        });
        let norm = self
            .norm_heuristic(&data.batch)
            .into_iter()
            .map(|a| vec![a]);
        vec![
            majority(self, data),
            Heuristic::score(
                "plateau_rule",
                "n = K_v-1 -> m, otherwise the smallest label other than m",
                &data.batch,
                plateau,
            ),
            Heuristic::score(
                "norm",
                "n = K_v-1 -> m, otherwise the label with the n-th largest norm among the others",
                &data.batch,
                norm,
            ),
        ]
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "nth-farthest: {k} vectors in U(-1,1)^{d}{active}; step t = [x_t; onehot(label_t); onehot(n); \
             onehot(m)] (F = {f}), T = {k}, C = {k}; target = label of the n-th farthest (n = 0 \
             farthest) from the vector labelled m, reference included. Hard split: near ties \
             (relative gap < {g}), n < K_v-1.",
            k = c.num_vectors,
            d = c.dim,
            active = c.active_dims.map_or(String::new(), |a| format!(
                " (the first {a} coordinates drawn, the rest 0)"
            )),
            f = self.input_size(),
            g = c.hard_gap
        )
    }

    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>) {
        let examples: Vec<_> = (0..batch).map(|_| self.generate(split, rng)).collect();
        let encoded = self.encode(&examples);
        (
            encoded,
            examples.into_iter().map(Example::NthFarthest).collect(),
        )
    }
}
