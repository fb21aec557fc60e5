//! Rough upper bounds on the memory an experiment needs, from its configuration alone (nothing is
//! allocated), so that a front end can refuse a run that cannot fit before it starts one.
//!
//! Counts are in f32 elements (4 bytes) unless said otherwise, with saturating arithmetic: an
//! absurd configuration gives `u64::MAX`, never a wrapped small number. The parts:
//!
//! ```text
//! P          trainable parameters (exact: the formulas below mirror the layers' shapes)
//! weights    4P·(6 + 2k) bytes: parameters, gradients, k optimiser buffers (Adam 2, SGD with
//!            momentum 1, plain SGD 0), a checkpoint's serialised parameters and buffers, and the
//!            tape's copies of the weights, their gradients and packed operands
//! A          floats the forward pass leaves on the tape per example and time step (per core,
//!            below), plus the head's O + 2·Σ hidden + 3C as if every step carried a loss
//! train tape 4·2A·B·T bytes (values and gradients) + the batch, B·T·(8F + 80) bytes
//! eval tape  4·A·E·T bytes, E = min(512, test_size) examples per evaluation chunk, values only
//! one set   test_size·T·(8F + 80) bytes: inputs 4F, readable examples ≤ 4F + 64, targets 8,
//!            mask 1, per example and step
//! ```
//!
//! T is the longest split's sequence length. `rrnn train` peaks at weights, train tape, eval tape
//! and three times the validation, test and hard sets together: the end of a run holds the
//! validation batches, the sets it scores and the sets its reference baselines are scored on.
//! `rrnn eval` peaks at 16P bytes (parameters, and the checkpoint's bytes and f64 values), the
//! eval tape and twice the sets.
//!
//! Activations per example and step, with R = N + 1 rows, Q = H(2K + V) projected columns, G the
//! gate width and L MLP layers (the tests measure the real peaks at 40–90 % of these):
//!
//! ```text
//! LSTM       F + 20S
//! RMC        F + D + R·D + blocks·(attention + (6 + 2L)·R·D) + 4N·G + 2G + 6N·D
//!            attention: full 2RQ + 3HR² + RD; self-and-input 6RQ + 8HR² + 2RD; none 0
//! RRNN cell  the RMC's with input S, + 2F + 4D + 2(R·HK + N·D) + 6HN + 30S
//! ```

use std::ops::{Add, Mul};

use crate::ConfigError;
use crate::experiment::{EVAL_CHUNK, Experiment};
use crate::nn::{AttentionScope, ClassifierConfig, CoreConfig, LstmConfig, RmcConfig};
use crate::optim::OptimizerConfig;
use crate::tasks::{Split, Task};

/// A count that saturates at `u64::MAX` instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Count(u64);

impl Add for Count {
    type Output = Count;
    fn add(self, other: Count) -> Count {
        Count(self.0.saturating_add(other.0))
    }
}

impl Mul for Count {
    type Output = Count;
    fn mul(self, other: Count) -> Count {
        Count(self.0.saturating_mul(other.0))
    }
}

fn c(x: usize) -> Count {
    Count(u64::try_from(x).unwrap_or(u64::MAX))
}

/// Parameters of a dense layer `I → O` (weight and bias).
fn linear(i: Count, o: Count) -> Count {
    i * o + o
}

/// Parameters of a LayerNorm over `w` (gain and bias).
fn layer_norm(w: Count) -> Count {
    c(2) * w
}

fn lstm_params(config: &LstmConfig) -> Count {
    let (f, s) = (c(config.input_size), c(config.hidden_size));
    f * c(4) * s + s * c(4) * s + c(8) * s
}

fn rmc_params(config: &RmcConfig) -> Count {
    let d = c(config.mem_width());
    let q = c(config.num_heads) * (c(2) * c(config.key_size()) + c(config.head_size));
    let attention = if config.attention == AttentionScope::None {
        Count(0)
    } else {
        linear(d, q) + layer_norm(q)
    };
    let block = attention + c(2) * layer_norm(d);
    let gates = match config.gate_width() {
        0 => Count(0),
        g => c(2) * linear(d, c(2) * c(g)),
    };
    linear(c(config.input_size), d)
        + c(config.num_blocks) * block
        + c(config.attention_mlp_layers) * linear(d, d)
        + gates
}

/// Trainable parameters of the network `config` builds, without building it (saturating at
/// `u64::MAX`). Equals [`ParamStore::num_scalars`](crate::ParamStore::num_scalars) of the built
/// network.
pub fn parameter_count(config: &ClassifierConfig) -> u64 {
    let (core, output) = match &config.core {
        CoreConfig::Lstm(l) => (lstm_params(l), c(l.hidden_size)),
        CoreConfig::Rmc(r) => (rmc_params(r), c(r.mem_slots) * c(r.mem_width())),
        CoreConfig::RrnnCell(cell) => {
            let mem = cell.memory_config();
            let (s, d) = (c(cell.hidden_size), c(mem.mem_width()));
            let hk = c(mem.num_heads) * c(mem.key_size());
            let lstm = LstmConfig {
                input_size: cell.input_size.saturating_add(mem.mem_width()),
                hidden_size: cell.hidden_size,
                forget_bias: cell.forget_bias,
            };
            let params = linear(s, hk)
                + linear(d, hk)
                + linear(d, d)
                + lstm_params(&lstm)
                + rmc_params(&mem)
                + linear(s + d, s)
                + linear(d, s);
            (params, s)
        }
    };
    let mut head = Count(0);
    let mut width = output;
    for &w in config.head_hidden.iter().chain([&config.num_classes]) {
        head = head + linear(width, c(w));
        width = c(w);
    }
    (core + head).0
}

/// Forward activations per example and time step of an RMC (see the module doc).
fn rmc_activations(config: &RmcConfig) -> Count {
    let (n, d, h) = (
        c(config.mem_slots),
        c(config.mem_width()),
        c(config.num_heads),
    );
    let r = n + c(1);
    let q = h * (c(2) * c(config.key_size()) + c(config.head_size));
    let scores = h * r * r;
    let attention = match config.attention {
        AttentionScope::Full => c(2) * r * q + c(3) * scores + r * d,
        AttentionScope::SelfAndInput => c(6) * r * q + c(8) * scores + c(2) * r * d,
        AttentionScope::None => Count(0),
    };
    let tail = (c(6) + c(2) * c(config.attention_mlp_layers)) * r * d;
    let g = c(config.gate_width());
    c(config.input_size)
        + d
        + r * d
        + c(config.num_blocks) * (attention + tail)
        + c(4) * n * g
        + c(2) * g
        + c(6) * n * d
}

/// Forward activations per example and time step of the network, the head counted at every
/// step (see the module doc).
fn activations(config: &ClassifierConfig) -> Count {
    let (core, output) = match &config.core {
        CoreConfig::Lstm(l) => (c(l.input_size) + c(20) * c(l.hidden_size), c(l.hidden_size)),
        CoreConfig::Rmc(r) => (rmc_activations(r), c(r.mem_slots) * c(r.mem_width())),
        CoreConfig::RrnnCell(cell) => {
            let mem = cell.memory_config();
            let (f, s, d) = (c(cell.input_size), c(cell.hidden_size), c(mem.mem_width()));
            let (n, h) = (c(mem.mem_slots), c(mem.num_heads));
            let hk = h * c(mem.key_size());
            let read = c(2) * ((n + c(1)) * hk + n * d) + c(6) * h * n;
            (
                rmc_activations(&mem) + c(2) * f + c(4) * d + read + c(30) * s,
                s,
            )
        }
    };
    let hidden = config
        .head_hidden
        .iter()
        .fold(Count(0), |sum, &w| sum + c(w));
    core + output + c(2) * hidden + c(3) * c(config.num_classes)
}

/// Bytes of `count` examples of `split` as a batch plus their readable form (see the module doc).
pub fn examples_bytes(task: &dyn Task, split: Split, count: usize) -> u64 {
    (c(count) * c(task.seq_len(split)) * (c(8) * c(task.input_size()) + c(80))).0
}

/// What a run holds at its peak, by part, as `(description, bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Trainable parameters P.
    pub params: u64,
    /// The parts of `rrnn train`'s peak.
    pub training: Vec<(String, u64)>,
    /// The parts of `rrnn eval`'s peak.
    pub evaluation: Vec<(String, u64)>,
}

fn total(parts: &[(String, u64)]) -> u64 {
    parts
        .iter()
        .fold(Count(0), |sum, &(_, bytes)| sum + Count(bytes))
        .0
}

impl MemoryEstimate {
    /// Bytes `rrnn train` needs at its peak (an upper bound, see the module doc).
    pub fn training_bytes(&self) -> u64 {
        total(&self.training)
    }

    /// Bytes `rrnn eval` needs at its peak (an upper bound, see the module doc).
    pub fn evaluation_bytes(&self) -> u64 {
        total(&self.evaluation)
    }
}

impl Experiment {
    /// A rough upper bound on the memory this experiment needs to train and to evaluate, from
    /// its configuration alone (see [`crate::memory`]); an error when the configuration is
    /// invalid.
    pub fn memory_estimate(&self) -> Result<MemoryEstimate, ConfigError> {
        let task = self.validate()?;
        let params = Count(parameter_count(&self.model));
        let buffers = match &self.train.optimizer {
            OptimizerConfig::Adam(_) => 2,
            OptimizerConfig::Sgd(s) if s.momentum > 0.0 => 1,
            OptimizerConfig::Sgd(_) => 0,
        };
        let steps = [Split::Train, Split::Val, Split::Test, Split::Hard]
            .map(|s| task.seq_len(s))
            .into_iter()
            .max()
            .unwrap_or(1);
        let a = activations(&self.model);
        let (b, t) = (c(self.train.batch_size), c(task.seq_len(Split::Train)));
        let chunk = self.test_size.min(EVAL_CHUNK);
        let set = |split| Count(examples_bytes(task.as_ref(), split, self.test_size));
        let sets = set(Split::Val) + set(Split::Test) + set(Split::Hard);
        let train_batch = Count(examples_bytes(
            task.as_ref(),
            Split::Train,
            self.train.batch_size,
        ));
        let eval_tape = c(4) * a * c(chunk) * c(steps);
        let eval_tape_part = (
            format!("evaluation activations ({chunk} examples × {steps} steps)"),
            eval_tape.0,
        );
        let sets_part = |copies: u64| {
            (
                format!("evaluation sets (test_size {} × 3 splits)", self.test_size),
                (Count(copies) * sets).0,
            )
        };
        Ok(MemoryEstimate {
            params: params.0,
            training: vec![
                (
                    format!("parameters and optimiser state ({} parameters)", params.0),
                    (c(4) * params * Count(6 + 2 * buffers)).0,
                ),
                (
                    format!(
                        "training activations (batch_size {} × {} steps)",
                        self.train.batch_size,
                        task.seq_len(Split::Train)
                    ),
                    (c(8) * a * b * t + train_batch).0,
                ),
                eval_tape_part.clone(),
                sets_part(3),
            ],
            evaluation: vec![
                (
                    format!("parameters ({} parameters)", params.0),
                    (c(16) * params).0,
                ),
                eval_tape_part,
                sets_part(2),
            ],
        })
    }
}
