//! Normalisations over the last axis: softmax (attention weights) and layer norm (the RMC's
//! three LayerNorms per block).

use ndarray::{Array1, ArrayD, Axis, Zip};

use super::graph::{Graph, Var, accumulate};
use super::linalg::as_matrix;
use super::op::{Ctx, Op};
use crate::Scalar;

impl<T: Scalar> Graph<T> {
    /// Softmax over the last axis: `y_i = exp(x_i − max x) / Σ_j exp(x_j − max x)`.
    ///
    /// # Shapes
    /// `a: [..., S]` → same; every row along the last axis sums to 1.
    pub fn softmax(&mut self, a: Var) -> Var {
        let mut y = self.value(a).as_standard_layout().into_owned();
        let width = *y.shape().last().expect("softmax of a 0-d array");
        let flat = y.as_slice_mut().expect("standard layout");
        for row in flat.chunks_exact_mut(width.max(1)) {
            let max = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
            let mut sum = T::zero();
            for x in row.iter_mut() {
                *x = (*x - max).exp_act();
                sum += *x;
            }
            let inv = T::one() / sum;
            row.iter_mut().for_each(|x| *x *= inv);
        }
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
        let x2 = as_matrix(xv); // [M, D]
        let mut xhat = x2.to_owned(); // [M, D]
        let mut inv_std = Array1::zeros(x2.nrows()); // [M]
        for (mut row, s) in xhat.outer_iter_mut().zip(inv_std.iter_mut()) {
            let mean = row.sum() / n;
            row.mapv_inplace(|v| v - mean);
            let var = row.fold(T::zero(), |acc, &v| acc + v * v) / n;
            *s = T::one() / (var + eps).sqrt();
            let s = *s;
            row.mapv_inplace(|v| v * s);
        }
        let g1 = gv
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("1-d");
        let b1 = bv
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("1-d");
        let y = &xhat * &g1 + b1; // [M, D]
        let shape = xv.raw_dim();
        let y = y.into_shape_with_order(shape.clone()).expect("same length");
        let xhat = xhat.into_shape_with_order(shape).expect("same length");
        let mut row_shape = xv.shape().to_vec();
        row_shape.pop();
        let inv_std = inv_std
            .into_shape_with_order(ndarray::IxDyn(&row_shape))
            .expect("same length");
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

/// dx = y ⊙ (g − Σ_j g_j y_j), row by row.
pub(crate) fn softmax_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    grads: &mut [Option<ArrayD<T>>],
) {
    if !ctx.wants(a) {
        return;
    }
    let y = ctx.output();
    let width = *y.shape().last().expect("softmax of a 0-d array");
    let mut dx = ctx.grad.as_standard_layout().into_owned();
    let flat = dx.as_slice_mut().expect("standard layout");
    let ys = y.as_slice().expect("tape values are in standard layout");
    for (row, yrow) in flat
        .chunks_exact_mut(width.max(1))
        .zip(ys.chunks_exact(width.max(1)))
    {
        let dot = row
            .iter()
            .zip(yrow)
            .fold(T::zero(), |s, (&g, &y)| s + g * y); // Σ g_j y_j
        row.iter_mut()
            .zip(yrow)
            .for_each(|(d, &y)| *d = y * (*d - dot));
    }
    accumulate(grads, a, dx);
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
    grads: &mut [Option<ArrayD<T>>],
) {
    let g2 = as_matrix(ctx.grad); // [M, D]
    let xh2 = as_matrix(xhat); // [M, D]
    if ctx.wants(beta) {
        accumulate(grads, beta, g2.sum_axis(Axis(0)).into_dyn());
    }
    if ctx.wants(gamma) {
        accumulate(grads, gamma, (&g2 * &xh2).sum_axis(Axis(0)).into_dyn());
    }
    if ctx.wants(x) {
        let gam = ctx
            .value(gamma)
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("1-d");
        let n = T::from_usize(gam.len()).expect("width fits the float type");
        let mut dx = &g2 * &gam; // ĝ: [M, D]
        for ((mut row, xrow), &s) in dx
            .outer_iter_mut()
            .zip(xh2.outer_iter())
            .zip(inv_std.iter())
        {
            let mean_g = row.sum() / n;
            let mean_gx = row.dot(&xrow) / n;
            Zip::from(&mut row)
                .and(&xrow)
                .for_each(|d, &xh| *d = s * (*d - mean_g - xh * mean_gx));
        }
        let dx = dx
            .into_shape_with_order(ctx.value(x).raw_dim())
            .expect("same length");
        accumulate(grads, x, dx);
    }
}
