//! The three performance configurations of `perf/README.md` (A: the paper's Nth-farthest network,
//! B: small, C: the project default), the analytic FLOP count PyTorch's `bench_torch.py` reports,
//! and a random batch to time one training step on.
//!
//! One **train step** = forward over T steps, softmax cross-entropy on the final logits, backward,
//! Adam update, f32. GFLOP/step = 3 × forward matmul FLOPs (forward, plus two products of the same
//! size in backward), exactly `bench_torch.py`'s formula, so GFLOP/s are comparable.

use std::str::FromStr;

use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ConfigError;
use crate::experiment::ModelKind;
use crate::nn::{ClassifierConfig, CoreConfig, LstmConfig, RmcConfig};
use crate::tasks::Batch;

/// Classes of every configuration's head.
const CLASSES: usize = 8;

/// A performance configuration of `perf/README.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PerfConfig {
    /// Paper: 8 slots, 8 heads × 32 (D 256), F 40, T 8, head 4 × 256, batch 32; LSTM S 1024.
    A,
    /// Small: 4 slots, 2 heads × 32 (D 64), F 32, T 10, head [128, 128], batch 32; LSTM S 256.
    B,
    /// Project default: 4 slots, 4 heads × 16 (D 64), F 40, T 8, head [128, 128], batch 128;
    /// LSTM S 128.
    C,
}

impl FromStr for PerfConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A" | "a" => Ok(Self::A),
            "B" | "b" => Ok(Self::B),
            "C" | "c" => Ok(Self::C),
            other => Err(ConfigError::new(
                "config",
                format!("must be one of A, B, C; got `{other}`"),
            )),
        }
    }
}

impl std::fmt::Display for PerfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
        })
    }
}

impl PerfConfig {
    /// All three, in order.
    pub const ALL: [PerfConfig; 3] = [PerfConfig::A, PerfConfig::B, PerfConfig::C];

    /// `(mem_slots N, num_heads H, head_size V)` of the RMC.
    fn rmc_sizes(self) -> (usize, usize, usize) {
        match self {
            Self::A => (8, 8, 32),
            Self::B => (4, 2, 32),
            Self::C => (4, 4, 16),
        }
    }

    /// Input width F.
    pub fn input_size(self) -> usize {
        match self {
            Self::B => 32,
            Self::A | Self::C => 40,
        }
    }

    /// Time steps T.
    pub fn steps(self) -> usize {
        match self {
            Self::B => 10,
            Self::A | Self::C => 8,
        }
    }

    /// Batch size B.
    pub fn batch_size(self) -> usize {
        match self {
            Self::A | Self::B => 32,
            Self::C => 128,
        }
    }

    /// Hidden widths of the head MLP.
    pub fn head_hidden(self) -> Vec<usize> {
        match self {
            Self::A => vec![256; 4],
            Self::B | Self::C => vec![128, 128],
        }
    }

    /// Hidden size S of the LSTM baseline.
    pub fn lstm_hidden(self) -> usize {
        match self {
            Self::A => 1024,
            Self::B => 256,
            Self::C => 128,
        }
    }

    /// The network of `kind` (LSTM or RMC; the hybrid cell has no PyTorch counterpart and gets
    /// the RMC's memory with a hidden size equal to D).
    pub fn classifier(self, kind: ModelKind) -> ClassifierConfig {
        let (n, h, v) = self.rmc_sizes();
        let f = self.input_size();
        let rmc = RmcConfig {
            input_size: f,
            mem_slots: n,
            num_heads: h,
            head_size: v,
            ..RmcConfig::default()
        };
        let core = match kind {
            ModelKind::Lstm => CoreConfig::Lstm(LstmConfig {
                input_size: f,
                hidden_size: self.lstm_hidden(),
                forget_bias: 1.0,
            }),
            ModelKind::Rmc => CoreConfig::Rmc(rmc),
            ModelKind::RrnnCell => {
                let CoreConfig::RrnnCell(c) = ModelKind::RrnnCell.default_config(f, CLASSES).core
                else {
                    unreachable!("default_config of RrnnCell is an RrnnCell")
                };
                CoreConfig::RrnnCell(crate::nn::RrnnCellConfig {
                    hidden_size: h * v,
                    memory: rmc,
                    ..c
                })
            }
        };
        ClassifierConfig {
            core,
            head_hidden: self.head_hidden(),
            num_classes: CLASSES,
        }
    }

    /// Matrix-product FLOPs of one forward pass (T steps and the head), `bench_torch.py`'s
    /// formula: RMC with 1 block, 2 attention-MLP layers and unit gates; LSTM `x W_ih + h W_hh`.
    /// `None` for the hybrid cell, which the reference does not time.
    pub fn forward_flops(self, kind: ModelKind) -> Option<f64> {
        let (b, t, f) = (self.batch_size(), self.steps(), self.input_size());
        let head = |n_in: usize| {
            let mut sizes = vec![n_in];
            sizes.extend(self.head_hidden());
            sizes.push(CLASSES);
            sizes.windows(2).map(|w| 2 * b * w[0] * w[1]).sum::<usize>()
        };
        let flops = match kind {
            ModelKind::Rmc => {
                let (n, h, v) = self.rmc_sizes();
                let (k, d, r, l) = (v, h * v, n + 1, 2);
                let step = 2 * b * f * d // input projection
                    + 2 * b * r * d * h * (2 * k + v) // qkv
                    + 2 * b * h * r * r * (k + v) // q kᵀ and A v
                    + l * 2 * b * r * d * d // attention MLP
                    + 2 * b * (n + 1) * d * 2 * d; // gates on tanh(M) (N rows) and x̂ (1 row)
                t * step + head(n * d)
            }
            ModelKind::Lstm => {
                let s = self.lstm_hidden();
                t * 2 * b * (f + s) * 4 * s + head(s)
            }
            ModelKind::RrnnCell => return None,
        };
        Some(flops as f64)
    }

    /// GFLOP per training step: 3 × forward ([`forward_flops`](Self::forward_flops)) / 1e9.
    pub fn gflop_per_step(self, kind: ModelKind) -> Option<f64> {
        self.forward_flops(kind).map(|f| 3.0 * f / 1e9)
    }

    /// A random batch of this configuration: inputs U(−1, 1), a random class on the last step
    /// only (the loss is on the final logits), from `seed`.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets`, `mask: [T, B]`.
    pub fn random_batch(self, seed: u64) -> Batch {
        let (t, b, f) = (self.steps(), self.batch_size(), self.input_size());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = Array3::from_shape_simple_fn((t, b, f), || rng.random_range(-1.0..1.0f32));
        let mut targets = Array2::zeros((t, b));
        let mut mask = Array2::from_elem((t, b), false);
        for j in 0..b {
            targets[[t - 1, j]] = rng.random_range(0..CLASSES);
            mask[[t - 1, j]] = true;
        }
        Batch::new(inputs, targets, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `perf/README.md`'s GFLOP/step column (rounded as there).
    #[test]
    fn gflop_matches_the_reference_table() {
        let cases = [
            (PerfConfig::A, ModelKind::Rmc, 6.56),
            (PerfConfig::A, ModelKind::Lstm, 6.78),
            (PerfConfig::B, ModelKind::Rmc, 0.295),
            (PerfConfig::B, ModelKind::Lstm, 0.576),
            (PerfConfig::C, ModelKind::Rmc, 0.955),
            (PerfConfig::C, ModelKind::Lstm, 0.554),
        ];
        for (c, k, expected) in cases {
            let got = c.gflop_per_step(k).expect("timed model");
            assert!(
                (got - expected).abs() / expected < 0.005,
                "{c} {k}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn random_batch_has_the_configured_shape_and_one_loss_step() {
        let batch = PerfConfig::B.random_batch(3);
        assert_eq!(batch.inputs.dim(), (10, 32, 32));
        assert_eq!(batch.mask.iter().filter(|&&m| m).count(), 32);
        assert_eq!(batch, PerfConfig::B.random_batch(3));
    }
}
