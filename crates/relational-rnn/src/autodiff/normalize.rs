//! Normalisations over the last axis: softmax (attention weights) and layer norm (the RMC's
//! three LayerNorms per block).

use ndarray::{ArrayD, Axis, Dimension, RemoveAxis};

use super::buffers::GradSlots;
use super::graph::{Graph, Var};
use super::op::{Ctx, Op};
use super::reduce;
use super::simd;
use crate::Scalar;

impl<T: Scalar> Graph<T> {
    /// Softmax over the last axis: `y_i = exp(x_i − max x) / Σ_j exp(x_j − max x)`.
    ///
    /// # Shapes
    /// `a: [..., S]` → same; every row along the last axis sums to 1.
    pub fn softmax(&mut self, a: Var) -> Var {
        let mut y = self.buffer(0, self.value(a).raw_dim());
        y.assign(self.value(a));
        let width = *y.shape().last().expect("softmax of a 0-d array");
        let flat = y.as_slice_mut().expect("standard layout");
        simd::wide(|| {
            for row in flat.chunks_exact_mut(width.max(1)) {
                softmax_row(row);
            }
        });
        self.push(y, Op::Softmax(a))
    }

    /// Layer normalisation over the last axis with learned gain and bias:
    /// `y = (x − mean) / √(var + eps) · gamma + beta`, biased variance (divide by D).
    ///
    /// # Shapes
    /// `x: [..., D]`, `gamma: [D]`, `beta: [D]` → `[..., D]`.
    #[track_caller]
    pub fn layer_norm(&mut self, x: Var, gamma: Var, beta: Var, eps: f64) -> Var {
        let xv = self.value(x);
        let d = *xv.shape().last().expect("layer_norm of a 0-d array");
        let (gv, bv) = (self.value(gamma), self.value(beta));
        assert!(
            gv.shape() == [d] && bv.shape() == [d],
            "layer_norm: x {:?} needs gamma and beta of shape [{d}], got {:?} and {:?}",
            xv.shape(),
            gv.shape(),
            bv.shape()
        );
        let eps = T::from_f64_lossy(eps);
        let n = T::from_usize(d).expect("width fits the float type");
        let dim = xv.raw_dim();
        let rows_dim = dim.remove_axis(Axis(dim.ndim() - 1));
        let mut y = self.buffer(0, dim.clone()); // [..., D]
        let mut xhat = self.saved_buffer(0, 0, dim); // [..., D]
        let mut inv_std = self.saved_buffer(0, 1, rows_dim); // [...]
        let (xv, gv, bv) = (self.value(x), self.value(gamma), self.value(beta));
        let (xs, gs, bs) = (flat(xv), flat(gv), flat(bv));
        let rows = xhat
            .as_slice_mut()
            .expect("standard layout")
            .chunks_exact_mut(d.max(1))
            .zip(
                y.as_slice_mut()
                    .expect("standard layout")
                    .chunks_exact_mut(d.max(1)),
            )
            .zip(inv_std.as_slice_mut().expect("standard layout"))
            .zip(xs.chunks_exact(d.max(1)));
        simd::wide(|| {
            for (((xh, yr), s), xr) in rows {
                let mean = reduce::sum(xr) / n;
                for (h, &v) in xh.iter_mut().zip(xr) {
                    *h = v - mean;
                }
                let var = reduce::dot(xh, xh) / n;
                *s = T::one() / (var + eps).sqrt();
                let s = *s;
                for (((h, y), &g), &b) in xh.iter_mut().zip(yr.iter_mut()).zip(gs).zip(bs) {
                    *h *= s;
                    *y = *h * g + b;
                }
            }
        });
        self.push(
            y,
            Op::LayerNorm {
                x,
                gamma,
                beta,
                xhat,
                inv_std,
            },
        )
    }
}

/// The numerically stable softmax of one row, in place: `exp(x − max x)`, normalised.
#[inline(always)]
pub(crate) fn softmax_row<T: Scalar>(row: &mut [T]) {
    let max = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    let mut sum = T::zero();
    for x in row.iter_mut() {
        *x = (*x - max).exp_act();
        sum += *x;
    }
    let inv = T::one() / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

/// The elements of a tape value (always in standard layout) as one slice.
fn flat<T>(a: &ArrayD<T>) -> &[T] {
    a.as_slice().expect("tape values are in standard layout")
}

/// dx = y ⊙ (g − Σ_j g_j y_j), row by row.
pub(crate) fn softmax_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut GradSlots<T>) {
    if !ctx.wants(a) {
        return;
    }
    let y = ctx.output();
    let width = *y.shape().last().expect("softmax of a 0-d array").max(&1);
    let (slot, fresh) = grads.slot_or_fresh(a, &y.raw_dim());
    let dx = slot.as_slice_mut().expect("standard layout");
    let gs = ctx.grad.as_slice().expect("standard layout");
    let ys = y.as_slice().expect("tape values are in standard layout");
    let rows = dx
        .chunks_exact_mut(width)
        .zip(gs.chunks_exact(width))
        .zip(ys.chunks_exact(width));
    simd::wide(|| {
        for ((d, g), y) in rows {
            let dot = reduce::dot(g, y); // Σ g_j y_j
            for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                let v = y * (g - dot);
                *d = if fresh { v } else { *d + v };
            }
        }
    });
}

/// With x̂ the normalised input and s = 1/σ:
/// dβ = Σ g, dγ = Σ g ⊙ x̂, and for each row dx = s · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) where
/// ĝ = g ⊙ γ.
pub(crate) fn layer_norm_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    x: Var,
    gamma: Var,
    beta: Var,
    xhat: &ArrayD<T>,
    inv_std: &ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    let d = *xhat
        .shape()
        .last()
        .expect("layer norm of a 0-d array")
        .max(&1);
    let gs = ctx.grad.as_slice().expect("standard layout"); // [M, D]
    let xhs = xhat.as_slice().expect("standard layout"); // [M, D]
    for (param, with_xhat) in [(beta, false), (gamma, true)] {
        if ctx.wants(param) {
            let dp = ctx.grad_slice(grads, param); // [D]
            for (g, xh) in gs.chunks_exact(d).zip(xhs.chunks_exact(d)) {
                for ((dp, &g), &xh) in dp.iter_mut().zip(g).zip(xh) {
                    *dp += if with_xhat { g * xh } else { g };
                }
            }
        }
    }
    if ctx.wants(x) {
        let gam = ctx.value(gamma).as_slice().expect("standard layout"); // [D]
        let n = T::from_usize(d).expect("width fits the float type");
        let (slot, fresh) = grads.slot_or_fresh(x, &xhat.raw_dim());
        let dx = slot.as_slice_mut().expect("standard layout");
        let rows = dx
            .chunks_exact_mut(d)
            .zip(gs.chunks_exact(d))
            .zip(xhs.chunks_exact(d))
            .zip(inv_std.iter());
        simd::wide(|| {
            for (((dx, g), xh), &s) in rows {
                // ĝ = g ⊙ γ, recomputed where used (no scratch row); mean(ĝ) and mean(ĝ ⊙ x̂).
                let (mean_g, mean_gx) = (reduce::dot(g, gam) / n, reduce::dot3(g, gam, xh) / n);
                for (((dx, &g), &gm), &xh) in dx.iter_mut().zip(g).zip(gam).zip(xh) {
                    let v = s * (g * gm - mean_g - xh * mean_gx);
                    *dx = if fresh { v } else { *dx + v };
                }
            }
        });
    }
}
