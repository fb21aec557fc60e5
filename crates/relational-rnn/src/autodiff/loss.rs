//! Fused softmax cross-entropy with per-row weights: one op for plain classification (all
//! weights 1) and for masked sequence losses (weight 0 on steps that carry no loss).
//!
//! `loss = Σ_i w_i · (−log softmax(x_i)[t_i]) / Σ_i w_i`; fused because the gradient
//! `(softmax(x_i) − onehot(t_i)) · w_i / Σ w` is simpler and more stable than the composition.

use ndarray::{ArrayD, IxDyn};

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::layout::as_matrix;
use super::op::Op;
use super::var::Var;
use crate::Scalar;

impl<T: Scalar> Graph<T> {
    /// Mean softmax cross-entropy of `logits` against class indices `targets`, weighted per row.
    ///
    /// `weights = None` weighs every row 1. Rows with weight 0 (masked steps) contribute nothing,
    /// and their `targets` entry is ignored.
    ///
    /// # Shapes
    /// `logits: [M, C]`, `targets: [M]`, `weights: [M]` → `[]`.
    ///
    /// # Panics
    /// If the lengths disagree, a target of a weighted row is ≥ C, or all weights are zero.
    #[track_caller]
    pub fn softmax_cross_entropy(
        &mut self,
        logits: Var,
        targets: &[usize],
        weights: Option<&[f64]>,
    ) -> Var {
        let lv = self.value(logits);
        assert_eq!(
            lv.ndim(),
            2,
            "cross-entropy needs logits [M, C], got {:?}",
            lv.shape()
        );
        let (m, c) = (lv.shape()[0], lv.shape()[1]);
        assert_eq!(
            targets.len(),
            m,
            "{m} logit rows but {} targets",
            targets.len()
        );
        let w: Vec<f64> = weights.map_or_else(|| vec![1.0; m], <[f64]>::to_vec);
        assert_eq!(w.len(), m, "{m} logit rows but {} weights", w.len());
        let total: f64 = w.iter().sum();
        assert!(total > 0.0, "cross-entropy with zero total weight");
        let mut probs = self.saved_buffer(0, 0, IxDyn(&[m, c])); // [M, C]
        probs.assign(&as_matrix(self.value(logits)));
        let mut probs = probs.into_dimensionality::<ndarray::Ix2>().expect("2-d");
        let mut loss = 0.0;
        for ((mut row, &t), &wi) in probs.outer_iter_mut().zip(targets).zip(&w) {
            let max = row.fold(T::neg_infinity(), |a, &x| a.max(x));
            if wi != 0.0 {
                assert!(t < c, "target {t} out of range for {c} classes");
            }
            let shifted_target = if t < c { row[t] - max } else { T::zero() };
            row.mapv_inplace(|x| (x - max).exp());
            let sum = row.sum();
            if wi != 0.0 {
                // −log p_t = log Σ_j exp(x_j − max) − (x_t − max): no log of a tiny probability.
                loss += wi * (sum.ln() - shifted_target).to_f64_lossy();
            }
            row.mapv_inplace(|x| x / sum);
        }
        let weights: Vec<T> = w.iter().map(|&wi| T::from_f64_lossy(wi / total)).collect();
        let y = ArrayD::from_elem(IxDyn(&[]), T::from_f64_lossy(loss / total));
        self.push(
            y,
            Op::SoftmaxCrossEntropy {
                logits,
                targets: targets.to_vec(),
                weights,
                probs: probs.into_dyn(),
            },
        )
    }
}

/// d loss / d x_i = (p_i − onehot(t_i)) · w_i / Σ w, times the incoming scalar gradient.
pub(crate) fn cross_entropy_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    logits: Var,
    targets: &[usize],
    weights: &[T],
    probs: &ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    if !ctx.wants(logits) {
        return;
    }
    let upstream = *ctx.grad.iter().next().expect("scalar gradient");
    let c = *probs.shape().last().expect("probs are [M, C]").max(&1);
    let (slot, fresh) = grads.slot_or_fresh(logits, &probs.raw_dim());
    let dx = slot.as_slice_mut().expect("standard layout"); // [M, C]
    let ps = probs.as_slice().expect("standard layout");
    let rows = dx.chunks_exact_mut(c).zip(ps.chunks_exact(c));
    for (((d, p), &t), &w) in rows.zip(targets).zip(weights) {
        for (j, (d, &p)) in d.iter_mut().zip(p).enumerate() {
            let onehot = if j == t { T::one() } else { T::zero() };
            let v = if w == T::zero() {
                T::zero()
            } else {
                (p - onehot) * w * upstream
            };
            *d = if fresh { v } else { *d + v };
        }
    }
}
