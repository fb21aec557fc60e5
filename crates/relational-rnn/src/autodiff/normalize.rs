//! Normalisations over the last axis: softmax (attention weights) and layer norm (the RMC's
//! three LayerNorms per block).

use ndarray::{ArrayD, Axis, Dimension, RemoveAxis};

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::op::Op;
use super::var::Var;
use crate::Scalar;
use crate::kernels::reduce::{self, LANES};
use crate::kernels::simd;

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
        simd::wide(|| softmax_rows(flat, width));
        self.push(y, Op::Softmax(a))
    }

    /// Layer normalisation over the last axis with learned gain and bias:
    /// `y = (x − mean) / √(var + eps) · gamma + beta`, biased variance (divide by D).
    ///
    /// # Shapes
    /// `x: [..., D]`, `gamma: [D]`, `beta: [D]` → `[..., D]`.
    #[track_caller]
    pub fn layer_norm(&mut self, x: Var, gamma: Var, beta: Var, eps: f64) -> Var {
        self.layer_norm_into(x, None, gamma, beta, eps)
    }

    /// `layer_norm(add(x, plus), gamma, beta, eps)` in one node, the same bits: a residual
    /// connection and the LayerNorm after it (the RMC's attention block), with no `[..., D]`
    /// temporary for the sum and no copy of its gradient.
    ///
    /// # Shapes
    /// `x`, `plus: [..., D]`, `gamma: [D]`, `beta: [D]` → `[..., D]`.
    #[track_caller]
    pub fn layer_norm_plus(&mut self, x: Var, plus: Var, gamma: Var, beta: Var, eps: f64) -> Var {
        assert!(
            self.shape(x) == self.shape(plus),
            "layer_norm_plus: x {:?} and plus {:?} differ in shape",
            self.shape(x),
            self.shape(plus)
        );
        self.layer_norm_into(x, Some(plus), gamma, beta, eps)
    }

    #[track_caller]
    fn layer_norm_into(
        &mut self,
        x: Var,
        plus: Option<Var>,
        gamma: Var,
        beta: Var,
        eps: f64,
    ) -> Var {
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
        let dim = xv.raw_dim();
        let rows_dim = dim.remove_axis(Axis(dim.ndim() - 1));
        let mut y = self.buffer(0, dim); // [..., D]
        let mut mean = self.saved_buffer(0, 0, rows_dim.clone()); // [...]
        let mut inv_std = self.saved_buffer(0, 1, rows_dim); // [...]
        let (xv, gv, bv) = (self.value(x), self.value(gamma), self.value(beta));
        let rows = LayerNormRows {
            x: flat(xv),
            plus: plus.map(|p| flat(self.value(p))),
            y: y.as_slice_mut().expect("standard layout"),
            mean: mean.as_slice_mut().expect("standard layout"),
            inv_std: inv_std.as_slice_mut().expect("standard layout"),
            gamma: flat(gv),
            beta: flat(bv),
            eps: T::from_f64_lossy(eps),
        };
        simd::wide_kernel::<LayerNormRowsKernel, _>(rows);
        self.push(
            y,
            Op::LayerNorm {
                x,
                plus,
                gamma,
                beta,
                mean,
                inv_std,
            },
        )
    }
}

/// What [`layer_norm_rows`] reads and writes: rows of width D = `gamma.len()`.
struct LayerNormRows<'a, T> {
    x: &'a [T],
    /// Added to `x` first (the same sums as `add`).
    plus: Option<&'a [T]>,
    y: &'a mut [T],
    mean: &'a mut [T],
    inv_std: &'a mut [T],
    gamma: &'a [T],
    beta: &'a [T],
    eps: T,
}

/// Layer norm forward, each row on its own: `x̂ = (x − mean) · s` with `s = 1/√(var + eps)`,
/// then `y = x̂ ⊙ γ + β`; the mean and s are kept for backward, x̂ is not (backward recomputes
/// it, [`Normalised`]); computed in blocks of rows ([`layer_norm_block`]).
struct LayerNormRowsKernel;

impl<T: Scalar> simd::Kernel<LayerNormRows<'_, T>> for LayerNormRowsKernel {
    #[inline(always)]
    fn run(k: LayerNormRows<'_, T>) {
        layer_norm_rows(k);
    }
}

#[inline(always)]
fn layer_norm_rows<T: Scalar>(k: LayerNormRows<'_, T>) {
    let d = k.gamma.len().max(1);
    let n = T::from_usize(k.gamma.len()).expect("width fits the float type");
    let rows = (BLOCK_ELEMENTS / d).max(1); // per block
    let blocks = (k.y.chunks_mut(rows * d))
        .zip(k.mean.chunks_mut(rows))
        .zip(k.inv_std.chunks_mut(rows))
        .zip(k.x.chunks(rows * d));
    for (i, (((y, mean), s), x)) in blocks.enumerate() {
        let plus = k.plus.map(|p| &p[i * rows * d..][..x.len()]);
        layer_norm_block(x, plus, y, mean, s, (k.gamma, k.beta, k.eps, n));
    }
}

/// Elements per block of [`layer_norm_rows`] (whole rows, at least one): a block's x and y
/// (2 × 8 KB in f32) stay in L1 across its passes.
const BLOCK_ELEMENTS: usize = 2048;

/// Layer norm of a block of rows, pass by pass, in `y` (x̂ is never stored: it is the centred
/// row times s on its way to y): the means, the centring, the sums of squares, then the scaling.
/// Each pass's chain of dependent additions per row is short, so the CPU overlaps the rows (one
/// row at a time through all passes was bound by the chains' latency).
#[inline(always)]
fn layer_norm_block<T: Scalar>(
    x: &[T],
    plus: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    inv_std: &mut [T],
    (gamma, beta, eps, n): (&[T], &[T], T, T),
) {
    let d = gamma.len().max(1);
    if let Some(plus) = plus {
        for ((h, &v), &w) in y.iter_mut().zip(x).zip(plus) {
            *h = v + w;
        }
        for (m, yr) in mean.iter_mut().zip(y.chunks_exact(d)) {
            *m = reduce::sum(yr) / n;
        }
        for (yr, &m) in y.chunks_exact_mut(d).zip(mean.iter()) {
            yr.iter_mut().for_each(|h| *h -= m);
        }
    } else {
        for (m, xr) in mean.iter_mut().zip(x.chunks_exact(d)) {
            *m = reduce::sum(xr) / n;
        }
        let rows = y.chunks_exact_mut(d).zip(x.chunks_exact(d));
        for ((yr, xr), &m) in rows.zip(mean.iter()) {
            for (h, &v) in yr.iter_mut().zip(xr) {
                *h = v - m;
            }
        }
    }
    for (s, yr) in inv_std.iter_mut().zip(y.chunks_exact(d)) {
        let var = reduce::dot(yr, yr) / n;
        *s = T::one() / (var + eps).sqrt();
    }
    for (yr, &s) in y.chunks_exact_mut(d).zip(inv_std.iter()) {
        for ((h, &g), &b) in yr.iter_mut().zip(gamma).zip(beta) {
            *h = *h * s * g + b; // x̂ = h · s, then y = x̂ γ + β
        }
    }
}

/// What backward recomputes x̂ from, row by row: `x̂ = ((x [+ plus]) − mean) · s`, the forward's
/// operations in its order, so the bits of the x̂ the forward used. Keeping each row's mean
/// instead of the `[M, D]` x̂ spares the forward a store per element (it was bound by its
/// stores) for two subtractions and a multiplication per element read in backward.
#[derive(Clone, Copy)]
struct Normalised<'a, T> {
    x: &'a [T],
    /// `layer_norm_plus`'s added input; `x` again, never read, without one (`PLUS = false`).
    plus: &'a [T],
    mean: &'a [T],
    inv_std: &'a [T],
}

/// x̂ of one element from its row's mean and s (see [`Normalised`]).
#[inline(always)]
fn xhat<T: Scalar, const PLUS: bool>(x: T, plus: T, mean: T, s: T) -> T {
    let v = if PLUS { x + plus } else { x };
    (v - mean) * s
}

/// [`softmax_row`] of every row of width `width` of `a`, with the same bits, in three passes: each
/// row less its maximum, one `exp` pass over all of `a` (which vectorises whatever the width:
/// the attention's rows are R = N + 1 ≈ 5 wide, too short for a vector per row), then each row
/// over its sum (summed in row order, as `softmax_row` does).
#[inline(always)]
pub(crate) fn softmax_rows<T: Scalar>(a: &mut [T], width: usize) {
    let width = width.max(1);
    for row in a.chunks_exact_mut(width) {
        let max = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
        row.iter_mut().for_each(|x| *x -= max);
    }
    a.iter_mut().for_each(|x| *x = x.exp_act());
    for row in a.chunks_exact_mut(width) {
        let sum = row.iter().fold(T::zero(), |s, &x| s + x);
        let inv = T::one() / sum;
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The numerically stable softmax of one row, in place: `exp(x − max x)`, normalised (the
/// reference for [`softmax_rows`]).
#[cfg(test)]
fn softmax_row<T: Scalar>(row: &mut [T]) {
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
    let (dx, fresh) = ctx.grad_slice_or_fresh(grads, a);
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

/// With x̂ the normalised input (recomputed, [`Normalised`]) and s = 1/σ:
/// dβ = Σ g, dγ = Σ g ⊙ x̂, and for each row dx = s · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) where
/// ĝ = g ⊙ γ.
pub(crate) fn layer_norm_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    [x, gamma, beta]: [Var; 3],
    plus: Option<Var>,
    mean: &ArrayD<T>,
    inv_std: &ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    let gs = ctx.grad.as_slice().expect("standard layout"); // [M, D]
    let xs = flat(ctx.value(x)); // [M, D]
    let src = Normalised {
        x: xs,
        plus: plus.map_or(xs, |p| flat(ctx.value(p))), // [M, D]
        mean: flat(mean),                              // [M]
        inv_std: flat(inv_std),                        // [M]
    };
    let with_plus = plus.is_some();
    if ctx.wants(beta) || ctx.wants(gamma) {
        // γ's slot (zero-filled first if empty) is taken out while β's is borrowed, then put back.
        let mut dg = ctx.wants(gamma).then(|| {
            let dim = ctx.grad_slot(grads, gamma).raw_dim();
            grads.take_or_fresh(gamma, &dim).0
        });
        let db = ctx.wants(beta).then(|| ctx.grad_slice(grads, beta)); // [D]
        let dgs = dg
            .as_mut()
            .map(|a| a.as_slice_mut().expect("standard layout")); // [D]
        let args = (db, dgs, gs, src);
        if with_plus {
            simd::wider_kernel::<LayerNormParamGrad<true>, _>(args);
        } else {
            simd::wider_kernel::<LayerNormParamGrad<false>, _>(args);
        }
        if let Some(dg) = dg {
            grads.set(gamma.0, dg);
        }
    }
    // The gradient v of the (summed) input goes to x and to plus, each adding v to its slot or
    // taking it as its first gradient: the steps `add`'s backward takes after layer norm's.
    let dim = ctx.value(x).raw_dim();
    let gamma_v = flat(ctx.value(gamma)); // [D]
    let dx_into = |dx: &mut [T], fresh: bool| {
        let rows = LayerNormGradRows {
            dx,
            g: gs,
            src,
            gamma: gamma_v,
            fresh,
        };
        if with_plus {
            simd::wide_kernel::<LayerNormGradKernel<true>, _>(rows);
        } else {
            simd::wide_kernel::<LayerNormGradKernel<false>, _>(rows);
        }
    };
    let wanted = |v: Option<Var>| v.filter(|&v| ctx.wants(v));
    match (wanted(Some(x)), wanted(plus)) {
        (None, None) => {}
        (Some(t), None) | (None, Some(t)) => {
            let (dx, fresh) = ctx.grad_slice_or_fresh(grads, t);
            dx_into(dx, fresh);
        }
        (Some(a), Some(b)) => {
            // v is written once, into an empty slot when there is one, and added from there.
            let (mut ga, fresh_a) = grads.take_or_fresh(a, &dim);
            let (mut gb, fresh_b) = if a == b {
                (ArrayD::zeros(dim.clone()), true) // x + x: v is needed twice (rare)
            } else {
                grads.take_or_fresh(b, &dim)
            };
            let (sa, sb) = (slice_of(&mut ga), slice_of(&mut gb));
            if fresh_b {
                dx_into(sb, true);
                take_or_add(sa, sb, fresh_a);
            } else if fresh_a {
                dx_into(sa, true);
                take_or_add(sb, sa, false);
            } else {
                let mut v = ArrayD::zeros(dim.clone()); // neither slot empty (rare)
                dx_into(slice_of(&mut v), true);
                take_or_add(sa, slice_of(&mut v), false);
                take_or_add(sb, slice_of(&mut v), false);
            }
            if a == b {
                take_or_add(slice_of(&mut ga), slice_of(&mut gb), false);
            } else {
                grads.set(b.0, gb);
            }
            grads.set(a.0, ga);
        }
    }
}

/// The elements of a gradient array as one slice.
fn slice_of<T>(a: &mut ArrayD<T>) -> &mut [T] {
    a.as_slice_mut()
        .expect("gradient slots are in standard layout")
}

/// `dst ← v` (an empty slot) or `dst ← dst + v`.
fn take_or_add<T: Scalar>(dst: &mut [T], v: &[T], fresh: bool) {
    if fresh {
        dst.copy_from_slice(v);
    } else {
        simd::wide(|| dst.iter_mut().zip(v).for_each(|(d, &x)| *d += x));
    }
}

/// `dβ += Σ_rows g` and `dγ += Σ_rows g ⊙ x̂` (either may be absent), rows added in order, in
/// one pass over g and x̂'s sources; `PLUS`: `layer_norm_plus`'s added input is read.
struct LayerNormParamGrad<const PLUS: bool>;

/// The arguments of [`LayerNormParamGrad`]: `dβ`, `dγ` (each `[D]`), `g` (`[M, D]`) and what x̂
/// is recomputed from.
type ParamGradArgs<'a, T> = (
    Option<&'a mut [T]>,
    Option<&'a mut [T]>,
    &'a [T],
    Normalised<'a, T>,
);

impl<'a, T: Scalar, const PLUS: bool> simd::Kernel<ParamGradArgs<'a, T>>
    for LayerNormParamGrad<PLUS>
{
    #[inline(always)]
    fn run(args: ParamGradArgs<'a, T>) {
        layer_norm_param_grad::<T, PLUS>(args);
    }
}

/// Columns of [`layer_norm_param_grad`]'s register block: 4 zmm of f32 per parameter.
const PARAM_BLOCK: usize = 64;

/// Each column's sums run over the rows in order, starting from the slot's value (the same bits as
/// adding row after row into the slot); a block of 64 columns keeps its 2 × 64 sums in registers
/// across all rows instead of adding each row into the slots in memory (two passes with a load and
/// a store per element; see PERFORMANCE.md, section "Design notes moved from the source").
#[inline(always)]
fn layer_norm_param_grad<T: Scalar, const PLUS: bool>(
    (mut db, mut dg, g, src): ParamGradArgs<'_, T>,
) {
    let Some(d) = db.as_deref().or(dg.as_deref()).map(<[T]>::len) else {
        return;
    };
    let d1 = d.max(1);
    for c0 in (0..d).step_by(PARAM_BLOCK) {
        let w = PARAM_BLOCK.min(d - c0);
        let rows = || {
            (g.chunks_exact(d1).map(move |r| &r[c0..c0 + w]))
                .zip(src.x.chunks_exact(d1).map(move |r| &r[c0..c0 + w]))
                .zip(src.plus.chunks_exact(d1).map(move |r| &r[c0..c0 + w]))
                .zip(src.mean.iter().zip(src.inv_std))
        };
        if w == PARAM_BLOCK {
            let mut sb = [T::zero(); PARAM_BLOCK];
            let mut sg = [T::zero(); PARAM_BLOCK];
            if let Some(db) = db.as_deref() {
                sb.copy_from_slice(&db[c0..c0 + w]);
            }
            if let Some(dg) = dg.as_deref() {
                sg.copy_from_slice(&dg[c0..c0 + w]);
            }
            for (((g, x), p), (&m, &s)) in rows() {
                let (g, x, p) = (whole_block(g), whole_block(x), whole_block(p));
                for j in 0..PARAM_BLOCK {
                    sb[j] += g[j];
                    sg[j] += g[j] * xhat::<T, PLUS>(x[j], p[j], m, s);
                }
            }
            if let Some(db) = db.as_deref_mut() {
                db[c0..c0 + w].copy_from_slice(&sb);
            }
            if let Some(dg) = dg.as_deref_mut() {
                dg[c0..c0 + w].copy_from_slice(&sg);
            }
        } else {
            for (((g, x), p), (&m, &s)) in rows() {
                if let Some(db) = db.as_deref_mut() {
                    for (d, &g) in db[c0..c0 + w].iter_mut().zip(g) {
                        *d += g;
                    }
                }
                if let Some(dg) = dg.as_deref_mut() {
                    let cols = dg[c0..c0 + w].iter_mut().zip(g).zip(x).zip(p);
                    for (((d, &g), &x), &p) in cols {
                        *d += g * xhat::<T, PLUS>(x, p, m, s);
                    }
                }
            }
        }
    }
}

/// A full block of [`layer_norm_param_grad`]'s columns as an array (its loop then has a
/// constant trip count and no bounds checks).
#[inline(always)]
fn whole_block<T>(r: &[T]) -> &[T; PARAM_BLOCK] {
    r.try_into().expect("a whole block")
}

/// What [`layer_norm_dx_rows`] reads and writes: rows of width D = `gamma.len()`.
struct LayerNormGradRows<'a, T> {
    dx: &'a mut [T],
    g: &'a [T],
    src: Normalised<'a, T>,
    gamma: &'a [T],
    /// `dx` holds no gradient yet: write instead of adding.
    fresh: bool,
}

/// `dx = s · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))` row by row, with ĝ = g ⊙ γ and x̂ recomputed
/// where used (no scratch row); `PLUS`: `layer_norm_plus`'s added input is read.
struct LayerNormGradKernel<const PLUS: bool>;

impl<T: Scalar, const PLUS: bool> simd::Kernel<LayerNormGradRows<'_, T>>
    for LayerNormGradKernel<PLUS>
{
    #[inline(always)]
    fn run(k: LayerNormGradRows<'_, T>) {
        layer_norm_dx_rows::<T, PLUS>(k);
    }
}

#[inline(always)]
fn layer_norm_dx_rows<T: Scalar, const PLUS: bool>(k: LayerNormGradRows<'_, T>) {
    let d = k.gamma.len().max(1);
    let n = T::from_usize(k.gamma.len()).expect("width fits the float type");
    let src = k.src;
    let rows = (k.dx.chunks_exact_mut(d).zip(k.g.chunks_exact(d)))
        .zip(src.x.chunks_exact(d).zip(src.plus.chunks_exact(d)))
        .zip(src.mean.iter().zip(src.inv_std));
    for (((dx, g), (x, p)), (&m, &s)) in rows {
        let (mean_g, mean_gx) = (
            reduce::dot(g, k.gamma) / n,
            dot_g_gamma_xhat::<T, PLUS>(g, k.gamma, (x, p, m, s)) / n,
        );
        let cols = dx.iter_mut().zip(g).zip(k.gamma).zip(x.iter().zip(p));
        for (((dx, &g), &gm), (&x, &p)) in cols {
            let v = s * (g * gm - mean_g - xhat::<T, PLUS>(x, p, m, s) * mean_gx);
            *dx = if k.fresh { v } else { *dx + v };
        }
    }
}

/// `Σ_j g_j γ_j x̂_j` over one row with x̂ recomputed from `(x, plus, mean, s)`: the bits of
/// `reduce::dot3(g, γ, x̂)` (its eight lanes, its tail, its fold) with x̂ stored.
#[inline(always)]
fn dot_g_gamma_xhat<T: Scalar, const PLUS: bool>(
    g: &[T],
    gamma: &[T],
    (x, p, m, s): (&[T], &[T], T, T),
) -> T {
    let (g8, gm8) = (g.chunks_exact(LANES), gamma.chunks_exact(LANES));
    let (x8, p8) = (x.chunks_exact(LANES), p.chunks_exact(LANES));
    let tail = (g8.remainder().iter().zip(gm8.remainder()))
        .zip(x8.remainder().iter().zip(p8.remainder()))
        .fold(T::zero(), |acc, ((&g, &gm), (&x, &p))| {
            acc + g * gm * xhat::<T, PLUS>(x, p, m, s)
        });
    let mut acc = [T::zero(); LANES];
    for ((g, gm), (x, p)) in g8.zip(gm8).zip(x8.zip(p8)) {
        for l in 0..LANES {
            acc[l] += g[l] * gm[l] * xhat::<T, PLUS>(x[l], p[l], m, s);
        }
    }
    acc.iter().fold(tail, |t, &a| t + a)
}

#[cfg(test)]
mod tests {
    use super::{LayerNormGradKernel, LayerNormGradRows, LayerNormParamGrad, LayerNormRows};
    use super::{LayerNormRowsKernel, Normalised, reduce, softmax_row, softmax_rows};
    use crate::kernels::simd::{self, Kernel, wide_kernel};

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The forward kernel over rows of width `gamma.len()`, through the AVX2 wrapper when `wide`,
    /// else as compiled for the baseline target: `(y, mean, 1/σ)`.
    fn forward(
        x: &[f32],
        plus: Option<&[f32]>,
        (gamma, beta, eps): (&[f32], &[f32], f32),
        wide: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let m = x.len() / gamma.len();
        let (mut y, mut mean, mut inv_std) = (vec![0.0; x.len()], vec![0.0; m], vec![0.0; m]);
        let rows = LayerNormRows {
            x,
            plus,
            y: &mut y,
            mean: &mut mean,
            inv_std: &mut inv_std,
            gamma,
            beta,
            eps,
        };
        if wide {
            wide_kernel::<LayerNormRowsKernel, _>(rows);
        } else {
            <LayerNormRowsKernel as Kernel<_>>::run(rows);
        }
        (y, mean, inv_std)
    }

    /// Rows of width `d` for the backward tests, from the forward kernel: (x, plus, mean,
    /// 1/σ) and the x̂ the forward had (the reference's stored x̂, recomputed here the way
    /// [`blocked_forward_equals_row_by_row`] checks the forward computes it).
    struct Rows {
        x: Vec<f32>,
        plus: Vec<f32>,
        mean: Vec<f32>,
        inv_std: Vec<f32>,
        xhat: Vec<f32>,
    }

    impl Rows {
        fn new(m: usize, d: usize, with_plus: bool) -> Self {
            let (x, plus, gamma, beta) = (
                values(m * d, 11),
                values(m * d, 12),
                values(d, 13),
                values(d, 14),
            );
            let added = with_plus.then_some(&plus[..]);
            let (_, mean, inv_std) = forward(&x, added, (&gamma, &beta, 1e-5), true);
            let xhat = (0..m * d)
                .map(|e| {
                    let v = if with_plus { x[e] + plus[e] } else { x[e] };
                    (v - mean[e / d]) * inv_std[e / d]
                })
                .collect();
            Self {
                x,
                plus,
                mean,
                inv_std,
                xhat,
            }
        }

        fn src(&self, with_plus: bool) -> Normalised<'_, f32> {
            Normalised {
                x: &self.x,
                plus: if with_plus { &self.plus } else { &self.x },
                mean: &self.mean,
                inv_std: &self.inv_std,
            }
        }
    }

    /// dβ and dγ summed in 64-column register blocks, x̂ recomputed, have the bits of adding
    /// row after row of g and the stored x̂ into the slots (which start non-zero, as when T
    /// steps share the parameters): D = 133 (two blocks and a rest), either slot alone or
    /// both, with and without the added input, through the AVX-512 wrapper and plain. Checked
    /// to fail with the block's rows summed in reverse and with x̂ recomputed as (x − mean)·s
    /// only (the added input left out).
    #[test]
    fn param_grads_in_register_blocks_equal_row_by_row_sums() {
        let (m, d) = (37, 133);
        let val = |i: usize, f: f32| ((i as f32) * f).sin() * 3.0;
        let g: Vec<f32> = (0..m * d).map(|i| val(i, 0.731)).collect();
        let (b0, g0): (Vec<f32>, Vec<f32>) = (0..d).map(|j| (val(j, 0.3), val(j, 0.9))).unzip();
        for with_plus in [false, true] {
            let rows = Rows::new(m, d, with_plus);
            let (mut db, mut dg) = (b0.clone(), g0.clone());
            for (gr, xr) in g.chunks_exact(d).zip(rows.xhat.chunks_exact(d)) {
                for j in 0..d {
                    db[j] += gr[j];
                    dg[j] += gr[j] * xr[j];
                }
            }
            for (want_b, want_g) in [(true, true), (true, false), (false, true)] {
                for wide in [true, false] {
                    let (mut ob, mut og) = (b0.clone(), g0.clone());
                    let args = (
                        want_b.then_some(&mut ob[..]),
                        want_g.then_some(&mut og[..]),
                        &g[..],
                        rows.src(with_plus),
                    );
                    match (wide, with_plus) {
                        (true, true) => simd::wider_kernel::<LayerNormParamGrad<true>, _>(args),
                        (true, false) => simd::wider_kernel::<LayerNormParamGrad<false>, _>(args),
                        (false, true) => <LayerNormParamGrad<true> as Kernel<_>>::run(args),
                        (false, false) => <LayerNormParamGrad<false> as Kernel<_>>::run(args),
                    }
                    let case = format!("{want_b} {want_g} wide {wide} plus {with_plus}");
                    assert_eq!(bits(&ob), bits(if want_b { &db } else { &b0 }), "dβ {case}");
                    assert_eq!(bits(&og), bits(if want_g { &dg } else { &g0 }), "dγ {case}");
                }
            }
        }
    }

    /// dx with x̂ recomputed where used has the bits of the formula over the stored x̂ with
    /// `dot(g, γ)` and `dot3(g, γ, x̂)`: D = 45 and 64 (vector bodies with and without the
    /// reductions' tails), with and without the added input, written into an empty
    /// (NaN-filled) slot and added onto a filled one, through the AVX2 wrapper and plain.
    /// Checked to fail with the recomputed dot's lanes folded in reverse and with the added
    /// input left out of x̂.
    #[test]
    fn dx_from_recomputed_xhat_equals_dx_from_stored_xhat() {
        let m = 19;
        for d in [45, 64] {
            let (g, gamma) = (values(m * d, 15), values(d, 16));
            let n = d as f32;
            for with_plus in [false, true] {
                let rows = Rows::new(m, d, with_plus);
                for fresh in [true, false] {
                    let start = if fresh {
                        vec![f32::NAN; m * d]
                    } else {
                        values(m * d, 17)
                    };
                    let mut want = start.clone();
                    for r in 0..m {
                        let (gr, xh) = (&g[r * d..][..d], &rows.xhat[r * d..][..d]);
                        let mean_g = reduce::dot(gr, &gamma) / n;
                        let mean_gx = reduce::dot3(gr, &gamma, xh) / n;
                        for j in 0..d {
                            let v = rows.inv_std[r] * (gr[j] * gamma[j] - mean_g - xh[j] * mean_gx);
                            let w = &mut want[r * d + j];
                            *w = if fresh { v } else { *w + v };
                        }
                    }
                    for wide in [true, false] {
                        let mut dx = start.clone();
                        let k = LayerNormGradRows {
                            dx: &mut dx,
                            g: &g,
                            src: rows.src(with_plus),
                            gamma: &gamma,
                            fresh,
                        };
                        match (wide, with_plus) {
                            (true, true) => wide_kernel::<LayerNormGradKernel<true>, _>(k),
                            (true, false) => wide_kernel::<LayerNormGradKernel<false>, _>(k),
                            (false, true) => <LayerNormGradKernel<true> as Kernel<_>>::run(k),
                            (false, false) => <LayerNormGradKernel<false> as Kernel<_>>::run(k),
                        }
                        let case = format!("D {d} plus {with_plus} fresh {fresh} wide {wide}");
                        assert_eq!(bits(&dx), bits(&want), "{case}");
                    }
                }
            }
        }
    }

    /// `softmax_rows` is bit for bit `softmax_row` on each row, through the AVX2 wrapper as the
    /// attention runs it (widths below, at and above a vector; rows with large and equal
    /// entries). Checked to fail with the row sums taken in reverse.
    #[test]
    fn softmax_rows_equal_softmax_row_by_row() {
        for width in [1, 5, 8, 13] {
            let mut a: Vec<f32> = (0..width * 37)
                .map(|i| ((i as f32) * 0.731).sin() * 30.0)
                .collect();
            a[..width].fill(2.5);
            let mut rows = a.clone();
            simd::wide(|| softmax_rows(&mut rows, width));
            a.chunks_exact_mut(width).for_each(softmax_row);
            let same = a.iter().zip(&rows).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "width {width}");
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32)
            .map(|x| x / (1u32 << 24) as f32 * 6.0 - 3.0)
            .collect()
    }

    /// The forward pass in blocks of rows, pass by pass, has the bits of one row at a time
    /// through all steps (the reference below, as the kernel was): D = 133 gives blocks of 15
    /// rows, so 37 rows end in a short block; with and without the added input; the kept mean
    /// and 1/σ are the reference's. Checked to fail with the added input's block offset dropped.
    #[test]
    fn blocked_forward_equals_row_by_row() {
        let (m, d, eps) = (37, 133, 1e-5f32);
        let (x, plus, gamma, beta) = (
            values(m * d, 1),
            values(m * d, 6),
            values(d, 2),
            values(d, 3),
        );
        for with_plus in [false, true] {
            let added = with_plus.then_some(&plus[..]);
            let (y, mean, inv_std) = forward(&x, added, (&gamma, &beta, eps), true);
            let n = d as f32;
            for r in 0..m {
                let at = |e: usize| r * d + e;
                let xr: Vec<f32> = (0..d)
                    .map(|e| {
                        if with_plus {
                            x[at(e)] + plus[at(e)]
                        } else {
                            x[at(e)]
                        }
                    })
                    .collect();
                let mu = reduce::sum(&xr) / n;
                let mut h: Vec<f32> = xr.iter().map(|&v| v - mu).collect();
                let s = 1.0 / (reduce::dot(&h, &h) / n + eps).sqrt();
                h.iter_mut().for_each(|h| *h *= s);
                let yr: Vec<f32> = (0..d).map(|e| h[e] * gamma[e] + beta[e]).collect();
                let case = format!("row {r} plus {with_plus}");
                assert_eq!(bits(&y[r * d..][..d]), bits(&yr), "y {case}");
                assert_eq!(mean[r].to_bits(), mu.to_bits(), "mean {case}");
                assert_eq!(inv_std[r].to_bits(), s.to_bits(), "s {case}");
            }
        }
    }

    /// Layer norm's forward gives the same bits through the AVX2 wrapper as compiled for the
    /// baseline target (D = 45: vector bodies, the reductions' tails); the backward kernels are
    /// compared both ways in the tests above.
    #[test]
    fn forward_is_bit_identical_wide_and_baseline() {
        let (m, d) = (7, 45);
        let (x, gamma, beta, plus) = (
            values(m * d, 1),
            values(d, 2),
            values(d, 3),
            values(m * d, 4),
        );
        let run = |wide: bool| {
            let (y, mean, inv_std) = forward(&x, Some(&plus), (&gamma, &beta, 1e-6), wide);
            [y, mean, inv_std].concat()
        };
        let (wide, baseline) = (run(true), run(false));
        assert_eq!(bits(&wide), bits(&baseline));
        assert!(wide.iter().all(|x| x.is_finite()));
    }
}
