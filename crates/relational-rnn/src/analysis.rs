//! Looking inside trained models: predictions, failure cases, attention and memory traces,
//! convergence speed.
//!
//! Everything here runs a forward pass on the tape and reads values back as plain `ndarray`
//! arrays (f64), ready for [`plot`](crate::plot).

use ndarray::{Array2, Array3, ArrayD, Axis, s};

use crate::experiment::RunResult;
use crate::loss::argmax_rows;
use crate::nn::SequenceClassifier;
use crate::tasks::Batch;
use crate::train::History;
use crate::{Graph, ParamStore, Scalar};

/// What a model predicted for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Predicted class per scored row (step-major: row `j·B + b` is loss step `j`, sequence `b`).
    pub predicted: Vec<usize>,
    /// Target per scored row.
    pub targets: Vec<usize>,
    /// Whether the row carries a loss.
    pub scored: Vec<bool>,
    /// Batch size B, to map a row back to its sequence (`row % B`).
    pub batch_size: usize,
}

impl Predictions {
    /// Fraction of scored rows predicted right.
    pub fn accuracy(&self) -> f64 {
        let (c, n) = self
            .iter_scored()
            .fold((0, 0), |(c, n), (_, p, t)| (c + usize::from(p == t), n + 1));
        c as f64 / n.max(1) as f64
    }

    /// `(sequence index, predicted, target)` of every scored row.
    pub fn iter_scored(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.predicted.len())
            .filter(|&i| self.scored[i])
            .map(|i| (i % self.batch_size, self.predicted[i], self.targets[i]))
    }

    /// Sequences with at least one wrong scored prediction, in order.
    pub fn failures(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .iter_scored()
            .filter(|(_, p, t)| p != t)
            .map(|(b, _, _)| b)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The model's predictions on `batch`.
pub fn predict<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    batch: &Batch,
) -> Predictions {
    let mut g = Graph::new();
    let out = model.loss(&mut g, store, batch);
    Predictions {
        predicted: argmax_rows(g.value(out.logits)),
        targets: out.targets,
        scored: out.weights.iter().map(|&w| w != 0.0).collect(),
        batch_size: batch.batch_size(),
    }
}

/// Attention weights and memories of one sequence, step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// `attention[t][block]`: `[H, R, R]` with R = N + 1 (rows query, columns key; the last row
    /// and column are the input). Empty for the LSTM.
    pub attention: Vec<Vec<Array3<f64>>>,
    /// `memory[t]`: `[N, D]` after step t. Empty for the LSTM.
    pub memory: Vec<Array2<f64>>,
}

fn sequence_slice<T: Scalar>(a: &ArrayD<T>, b: usize) -> ArrayD<f64> {
    a.index_axis(Axis(0), b).mapv(|x| x.to_f64_lossy())
}

/// Runs the model on `batch` and returns the attention and memory of sequence `b`.
///
/// For the hybrid cell the attention is that of its memory write (the relational memory inside).
///
/// # Panics
/// If `b` is not a sequence of the batch.
#[track_caller]
pub fn trace<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    batch: &Batch,
    b: usize,
) -> Trace {
    assert!(
        b < batch.batch_size(),
        "sequence {b} of a batch of {}",
        batch.batch_size()
    );
    traces_of(model, store, batch, b..b + 1)
        .pop()
        .expect("one trace")
}

/// [`trace`] of every sequence of `batch`, from a single forward pass.
pub fn traces<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    batch: &Batch,
) -> Vec<Trace> {
    traces_of(model, store, batch, 0..batch.batch_size())
}

fn traces_of<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    batch: &Batch,
    sequences: std::ops::Range<usize>,
) -> Vec<Trace> {
    let mut g = Graph::new();
    let u = model.loss(&mut g, store, batch).unrolled;
    sequences
        .map(|b| Trace {
            attention: u
                .attention
                .iter()
                .map(|blocks| {
                    blocks
                        .iter()
                        .map(|&a| {
                            sequence_slice(g.value(a), b)
                                .into_dimensionality()
                                .expect("[H, R, R]")
                        })
                        .collect()
                })
                .collect(),
            memory: u
                .memories
                .iter()
                .map(|&m| {
                    sequence_slice(g.value(m), b)
                        .into_dimensionality()
                        .expect("[N, D]")
                })
                .collect(),
        })
        .collect()
}

/// How much attention each memory slot receives, averaged over heads, query rows and steps:
/// `[N + 1]` (last entry: the input row). Uniform attention gives 1/(N+1) everywhere.
pub fn key_usage(trace: &Trace) -> Vec<f64> {
    let mut total: Option<ndarray::Array1<f64>> = None;
    let mut count = 0.0;
    for a in trace.attention.iter().flatten() {
        // a: [H, R, R] → mean over heads and queries → [R]
        let per_key = a
            .mean_axis(Axis(0))
            .expect("H ≥ 1")
            .mean_axis(Axis(0))
            .expect("R ≥ 1");
        total = Some(match total {
            Some(t) => t + &per_key,
            None => per_key,
        });
        count += 1.0;
    }
    total.map(|t| (t / count).to_vec()).unwrap_or_default()
}

/// How strongly the memory reads the input at every step: attention of the memory rows (queries
/// 0..N) to the input key (column N), averaged over heads and slots, first block. One value per
/// step — for bAbI, the steps of supporting facts can be compared with the distractors.
pub fn input_attention(trace: &Trace) -> Vec<f64> {
    trace
        .attention
        .iter()
        .map(|blocks| {
            let a = &blocks[0]; // [H, R, R]
            let n = a.dim().1 - 1;
            a.slice(s![.., ..n, n]).mean().unwrap_or(f64::NAN)
        })
        .collect()
}

/// The first evaluation step at which the validation accuracy reached `threshold`, if it did.
pub fn steps_to_threshold(history: &History, threshold: f64) -> Option<u64> {
    history
        .records
        .iter()
        .find(|r| r.val_accuracy >= threshold)
        .map(|r| r.step)
}

/// Mean ± std over runs of [`steps_to_threshold`], counting only runs that got there, and how many
/// did.
pub fn convergence(runs: &[RunResult], threshold: f64) -> (Option<(f64, f64)>, usize) {
    let steps: Vec<f64> = runs
        .iter()
        .filter_map(|r| steps_to_threshold(&r.history, threshold))
        .map(|s| s as f64)
        .collect();
    let reached = steps.len();
    (
        (reached > 0).then(|| crate::experiment::mean_std(&steps)),
        reached,
    )
}
