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

/// Attention each key (slot or input) receives from the memory rows (queries 0..N, averaged),
/// per head, over time, first block: the picture of what the memory reads at every step.
///
/// # Shapes
/// Returns `[H, N + 1, T]` (keys: slots, then the input); `[0, 0, 0]` for the LSTM.
pub fn attention_over_time(trace: &Trace) -> Array3<f64> {
    let (heads, keys) = trace
        .attention
        .first()
        .map_or((0, 0), |b| (b[0].dim().0, b[0].dim().2));
    let mut out = Array3::zeros((heads, keys, trace.attention.len()));
    for (t, blocks) in trace.attention.iter().enumerate() {
        let a = &blocks[0]; // [H, R, R]
        let n = a.dim().1 - 1;
        let read = a.slice(s![.., ..n, ..]).mean_axis(Axis(1)).expect("N ≥ 1"); // [H, R]
        out.slice_mut(s![.., .., t]).assign(&read);
    }
    out
}

/// Attention of the memory rows (queries 0..N) to the input key, per step and head, first block.
///
/// # Shapes
/// Returns `[T, H]`; empty (`[0, 0]`) for the LSTM.
pub fn input_attention_by_head(trace: &Trace) -> Array2<f64> {
    let heads = trace.attention.first().map_or(0, |b| b[0].dim().0);
    let mut out = Array2::zeros((trace.attention.len(), heads));
    for (t, blocks) in trace.attention.iter().enumerate() {
        let a = &blocks[0]; // [H, R, R]
        let n = a.dim().1 - 1;
        for h in 0..heads {
            out[[t, h]] = a.slice(s![h, ..n, n]).mean().unwrap_or(f64::NAN);
        }
    }
    out
}

/// How alike the memory slots are after every step: the mean cosine similarity over pairs of
/// slots, one value per step. 1 when every slot points the same way, 0 for orthogonal slots, so a
/// value near 1 says the slots hold copies of one vector rather than different contents.
pub fn slot_similarity(trace: &Trace) -> Vec<f64> {
    trace
        .memory
        .iter()
        .map(|m| {
            let n = m.nrows();
            let norms: Vec<f64> = m.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
            let (mut total, mut pairs) = (0.0, 0.0);
            for i in 0..n {
                for j in i + 1..n {
                    let denom = (norms[i] * norms[j]).max(f64::MIN_POSITIVE);
                    total += m.row(i).dot(&m.row(j)) / denom;
                    pairs += 1.0;
                }
            }
            if pairs > 0.0 { total / pairs } else { f64::NAN }
        })
        .collect()
}

/// Means of `values[i][t]` grouped by `labels[i][t]` (e.g. a step's event, per sequence `i`), in
/// the order the labels are first seen: `(label, mean, count)`.
///
/// # Panics
/// If a sequence's values and labels differ in length.
#[track_caller]
pub fn mean_by_label(
    values: &[Vec<f64>],
    labels: &[Vec<&'static str>],
) -> Vec<(&'static str, f64, usize)> {
    let mut groups: Vec<(&'static str, f64, usize)> = Vec::new();
    for (vs, ls) in values.iter().zip(labels) {
        assert_eq!(vs.len(), ls.len(), "one label per value");
        for (&v, &l) in vs.iter().zip(ls) {
            match groups.iter_mut().find(|g| g.0 == l) {
                Some(g) => {
                    g.1 += v;
                    g.2 += 1;
                }
                None => groups.push((l, v, 1)),
            }
        }
    }
    groups
        .into_iter()
        .map(|(l, sum, n)| (l, sum / n as f64, n))
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
