//! Sequence losses with a mask, and accuracy.
//!
//! The fused softmax cross-entropy op itself lives on the tape
//! ([`Graph::softmax_cross_entropy`](crate::Graph::softmax_cross_entropy)); this module turns a
//! [`Batch`]'s `[T, B]` targets and mask into the rows that op scores, and counts correct
//! predictions.

use ndarray::ArrayD;

use crate::Scalar;
use crate::tasks::Batch;

/// The steps that carry a loss, and per logit row (step-major: row `j·B + b` is step
/// `steps[j]`, sequence `b`) its target and weight (1 where the mask is set, 0 elsewhere).
///
/// # Shapes
/// returns `(steps [k], targets [k·B], weights [k·B])`.
pub fn loss_targets(batch: &Batch) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    let steps = batch.loss_steps();
    let mut targets = Vec::with_capacity(steps.len() * batch.batch_size());
    let mut weights = Vec::with_capacity(targets.capacity());
    for &t in &steps {
        for (&y, &m) in batch.targets.row(t).iter().zip(batch.mask.row(t)) {
            targets.push(if m { y } else { 0 });
            weights.push(if m { 1.0 } else { 0.0 });
        }
    }
    (steps, targets, weights)
}

/// The predicted class of every row: the index of the largest logit (first on ties).
///
/// # Shapes
/// `logits: [M, C]` → `[M]`.
pub fn argmax_rows<T: Scalar>(logits: &ArrayD<T>) -> Vec<usize> {
    let c = logits.shape()[logits.ndim() - 1];
    logits
        .as_slice()
        .expect("tape values are in standard layout")
        .chunks(c)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, T::neg_infinity()), |best, (i, &x)| {
                    if x > best.1 { (i, x) } else { best }
                })
                .0
        })
        .collect()
}

/// Correct predictions and counted rows among the rows with non-zero weight.
///
/// # Shapes
/// `logits: [M, C]`, `targets: [M]`, `weights: [M]` → `(correct, counted)`.
pub fn count_correct<T: Scalar>(
    logits: &ArrayD<T>,
    targets: &[usize],
    weights: &[f64],
) -> (usize, usize) {
    argmax_rows(logits)
        .into_iter()
        .zip(targets)
        .zip(weights)
        .filter(|(_, w)| **w != 0.0)
        .fold((0, 0), |(c, n), ((p, &t), _)| {
            (c + usize::from(p == t), n + 1)
        })
}
