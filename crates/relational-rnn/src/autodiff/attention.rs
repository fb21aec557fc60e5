//! Fused multi-head dot-product attention over Sonnet's packed `[q | k | v]` layout: the RMC's
//! relational step in two nodes instead of eleven (reshape, permute copy, three slice copies, scale,
//! batched matmul, softmax, batched matmul, permute copy, reshape), with no head-split copies and
//! no per-head matrix-product calls (an R × R attention with R = N + 1 ≈ 5 is far below the size
//! where a packed GEMM pays for its setup).
//!
//! Row r of `p` holds, for each head h, the columns `h·(2K+V) ..`: K query, K key, V value entries.
//! For every batch element and head:
//!
//! ```text
//! A = softmax_row(Q Kᵀ / √K)     [R, R]    (node 1: the attention weights)
//! O = A V                        [R, V]    (node 2: written to columns h·V .. (h+1)·V of the output)
//! ```
//!
//! Backward, with δO = ∂L/∂O and δA = ∂L/∂A (node 2's share plus any other reader of A):
//!
//! ```text
//! node 2:  δA += δO Vᵀ                      δV += Aᵀ δO
//! node 1:  δS  = A ⊙ (δA − rowsum(A ⊙ δA)) / √K
//!          δQ += δS K                       δK += δSᵀ Q
//! ```
//!
//! δQ, δK and δV accumulate straight into the matching columns of `p`'s gradient slot. The
//! composition of the unfused ops ([`crate::nn::multi_head_attention`]) is the readable reference;
//! a test checks that both agree in f64.

use std::array::from_fn;

use ndarray::IxDyn;

use super::buffers::{GradSlots, Scratch};
use super::ctx::Ctx;
use super::graph::Graph;
use super::heads::Heads;
use super::normalize::softmax_rows;
use super::op::Op;
use super::var::Var;
use crate::Scalar;
use crate::kernels::reduce::{LANES, dot, dots8};
use crate::kernels::simd;

/// `y ← 0` with inline stores, LANES elements at a time: node 2's backward zeroes a few dozen
/// elements per row and head, where a `memset` call per row cost more than the stores.
#[inline(always)]
fn zero_lanes<T: Scalar>(y: &mut [T]) {
    let mut chunks = y.chunks_exact_mut(LANES);
    for c in &mut chunks {
        c.copy_from_slice(&[T::zero(); LANES]);
    }
    for e in chunks.into_remainder() {
        *e = T::zero();
    }
}

/// Batch elements ahead whose blocks the backward kernels prefetch ([`prefetch_ahead`]).
const PREFETCH: usize = 2;

/// Prefetches batch element `b + PREFETCH`'s block of `per` elements of `a`, if there is one: a
/// tape value or gradient read long after it was written, out of L2, at strides the hardware
/// prefetchers miss (see PERFORMANCE.md, section "Design notes moved from the source").
#[inline(always)]
fn prefetch_ahead<T>(a: &[T], b: usize, per: usize) {
    if let Some(block) = a.get((b + PREFETCH) * per..(b + PREFETCH + 1) * per) {
        simd::prefetch(block);
    }
}

/// How [`axpy_rows`] starts and ends each output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accumulate {
    /// `y ← Σ_i α_i x_i` from zero (y not read): the bits of zero-filling y first.
    Fresh,
    /// `y ← y + α_0 x_0 + α_1 x_1 + …`, each term added onto y in turn.
    Add,
    /// `y ← y + (Σ_i α_i x_i)`: the sum from zero, then added to y once.
    AddSum,
}

/// For each output row j < m, the terms `alpha(i, j) · x(i)` for i = 0, 1, …, n − 1 in turn,
/// into `y[y_at(j)..][..len]` as `mode` says. Every element gets the additions of row-by-row
/// `y += α x` loops in their order (so their bits), but a block of up to eight rows × eight
/// columns stays in registers across the n terms: each x(i) is loaded once per block and the
/// rows' addition chains run side by side (one row at a time, R = 5 rows per head, was bound
/// by the latency of its chain).
#[inline(always)]
fn axpy_rows<'x, T: Scalar + 'x>(
    (y, y_at, mode): (&mut [T], impl Fn(usize) -> usize, Accumulate),
    (m, len): (usize, usize),
    n: usize,
    alpha: impl Fn(usize, usize) -> T,
    x: impl Fn(usize) -> &'x [T],
) {
    let mut j0 = 0;
    while j0 < m {
        let rows = (m - j0).min(LANES);
        let alpha = |i, jj| alpha(i, j0 + jj);
        let y = &mut *y;
        let at = |jj| y_at(j0 + jj);
        match rows {
            8 => axpy_row_block::<T, 8>(y, from_fn(at), mode, len, n, alpha, &x),
            7 => axpy_row_block::<T, 7>(y, from_fn(at), mode, len, n, alpha, &x),
            6 => axpy_row_block::<T, 6>(y, from_fn(at), mode, len, n, alpha, &x),
            5 => axpy_row_block::<T, 5>(y, from_fn(at), mode, len, n, alpha, &x),
            4 => axpy_row_block::<T, 4>(y, from_fn(at), mode, len, n, alpha, &x),
            3 => axpy_row_block::<T, 3>(y, from_fn(at), mode, len, n, alpha, &x),
            2 => axpy_row_block::<T, 2>(y, from_fn(at), mode, len, n, alpha, &x),
            _ => axpy_row_block::<T, 1>(y, from_fn(at), mode, len, n, alpha, &x),
        }
        j0 += rows;
    }
}

/// [`axpy_rows`] for the J rows at offsets `at` of `y`, `alpha(i, jj)` for the jj-th of them.
/// (Each row's sums as `[T; LANES]`: with two vectors per row LLVM kept the block on the stack.)
#[inline(always)]
fn axpy_row_block<'x, T: Scalar + 'x, const J: usize>(
    y: &mut [T],
    at: [usize; J],
    mode: Accumulate,
    len: usize,
    n: usize,
    alpha: impl Fn(usize, usize) -> T,
    x: &impl Fn(usize) -> &'x [T],
) {
    let full = len / LANES * LANES;
    for c in (0..full).step_by(LANES) {
        let mut acc = [[T::zero(); LANES]; J];
        if mode == Accumulate::Add {
            for (acc, &at) in acc.iter_mut().zip(&at) {
                acc.copy_from_slice(&y[at + c..][..LANES]);
            }
        }
        for i in 0..n {
            let xs = <&[T; LANES]>::try_from(&x(i)[c..c + LANES]).expect("a whole chunk");
            for (jj, acc) in acc.iter_mut().enumerate() {
                let a = alpha(i, jj);
                for l in 0..LANES {
                    acc[l] += a * xs[l];
                }
            }
        }
        for (acc, &at) in acc.iter().zip(&at) {
            let y = &mut y[at + c..][..LANES];
            if mode == Accumulate::AddSum {
                y.iter_mut().zip(acc).for_each(|(y, &s)| *y += s);
            } else {
                y.copy_from_slice(acc);
            }
        }
    }
    for (jj, &at) in at.iter().enumerate() {
        for e in full..len {
            let mut s = if mode == Accumulate::Add {
                y[at + e]
            } else {
                T::zero()
            };
            for i in 0..n {
                s += alpha(i, jj) * x(i)[e];
            }
            y[at + e] = if mode == Accumulate::AddSum {
                y[at + e] + s
            } else {
                s
            };
        }
    }
}

impl<T: Scalar> Graph<T> {
    /// Multi-head scaled dot-product attention of the rows of `p` over each other, reading each
    /// head's queries, keys and values from its packed column block (Sonnet's layout).
    ///
    /// # Shapes
    /// `p: [B, R, H·(2K+V)]` → `(out [B, R, H·V], weights [B, H, R, R])`; out's columns are
    /// head-major (h·V + j), every row of `weights` sums to 1.
    ///
    /// # Panics
    /// If `p` is not 3-d or its width is not `num_heads · (2·key_size + V)` for some V ≥ 1.
    #[track_caller]
    pub fn packed_attention(&mut self, p: Var, num_heads: usize, key_size: usize) -> (Var, Var) {
        let rows = self.shape(p).get(1).copied().unwrap_or(0);
        self.packed_attention_rows(p, num_heads, key_size, rows)
    }

    /// [`packed_attention`](Self::packed_attention) with outputs for the first `queries` rows of
    /// each batch element only (all rows still attend and are attended to, and `weights` has
    /// every row): the values and gradients of the full attention's first `queries` output rows
    /// when the others have a zero gradient. The RMC's last block drops its input row's output.
    ///
    /// # Shapes
    /// `p: [B, R, H·(2K+V)]` → `(out [B, queries, H·V], weights [B, H, R, R])`.
    ///
    /// # Panics
    /// As [`packed_attention`](Self::packed_attention), and if `queries > R`.
    #[track_caller]
    pub fn packed_attention_rows(
        &mut self,
        p: Var,
        num_heads: usize,
        key_size: usize,
        queries: usize,
    ) -> (Var, Var) {
        let s = self.shape(p);
        let ok = s.len() == 3
            && num_heads > 0
            && s[2].is_multiple_of(num_heads)
            && s[2] / num_heads > 2 * key_size
            && queries <= s[1];
        assert!(
            ok,
            "packed_attention: p {s:?} is not [B, R, H·(2K+V)] for H = {num_heads}, K = {key_size} \
             (with {queries} ≤ R query rows)"
        );
        let hd = Heads {
            batch: s[0],
            rows: s[1],
            queries,
            heads: num_heads,
            key: key_size,
            value: s[2] / num_heads - 2 * key_size,
        };
        let mut a_buf = self.buffer(0, IxDyn(&[hd.batch, hd.heads, hd.rows, hd.rows])); // [B, H, R, R]
        let mut out_buf = self.buffer(1, IxDyn(&[hd.batch, queries, hd.heads * hd.value])); // [B, Rq, H·V]
        let a = a_buf
            .as_slice_mut()
            .expect("buffers are in standard layout");
        let out = out_buf
            .as_slice_mut()
            .expect("buffers are in standard layout");
        let pv = self
            .value(p)
            .as_slice()
            .expect("tape values are in standard layout");
        simd::wide_kernel::<Forward, _>((hd, pv, a, out));
        let weights = self.push(a_buf, Op::AttentionWeights { p, heads: hd });
        let out = self.push(
            out_buf,
            Op::AttentionOutput {
                p,
                weights,
                heads: hd,
            },
        );
        (out, weights)
    }
}

/// Longest key or value row whose transpose fits [`Transposed`]'s stack array; longer rows take
/// the one-dot-at-a-time path (the same bits, slower).
const MAX_ROW: usize = 64;

/// Up to eight rows of a head (its keys or values), transposed to `[len][8]` for [`dots8`], on
/// the stack. Lanes past the rows copied hold stale finite values, whose dots are discarded.
struct Transposed<T> {
    t: [T; LANES * MAX_ROW],
    len: usize,
}

impl<T: Scalar> Transposed<T> {
    fn new(len: usize) -> Option<Self> {
        (len <= MAX_ROW).then(|| Self {
            t: [T::zero(); LANES * MAX_ROW],
            len,
        })
    }

    /// Copies row `j` (at most 8) of the block: `pv[at..][..len]`.
    #[inline(always)]
    fn set(&mut self, j: usize, row: &[T]) {
        for (e, &x) in row[..self.len].iter().enumerate() {
            self.t[e * LANES + j] = x;
        }
    }

    /// `dot(a, row j)` for the eight rows at once.
    #[inline(always)]
    fn dots(&self, a: &[T]) -> [T; LANES] {
        dots8(&a[..self.len], &self.t)
    }
}

/// `rows[i][j] = scale · dot(x_i, y_j)` (or `rows[i][j] += dot(x_i, y_j)` when `add`, onto zeros
/// without reading `rows` when also `fresh`) for the m × R pairs i < m, j < R of one head (rows
/// of R), `x_i = xv[x_at(i)..][..len]`, `y_j = pv[y_at(j)..][..len]`: eight y's at a time
/// through `t` when they fit it, else one by one; the same bits either way.
#[inline(always)]
fn score_rows<T: Scalar>(
    t: &mut Option<Transposed<T>>,
    (xv, x_at, m): (&[T], impl Fn(usize) -> usize, usize),
    (pv, y_at): (&[T], impl Fn(usize) -> usize),
    len: usize,
    (rows, r): (&mut [T], usize),
    (scale, add, fresh): (T, bool, bool),
) {
    let set = |x: &mut T, s: T| {
        *x = match (add, fresh) {
            (false, _) => scale * s,
            (true, false) => *x + s,
            (true, true) => T::zero() + s,
        }
    };
    let Some(t) = t else {
        for i in 0..m {
            let x = &xv[x_at(i)..][..len];
            for (j, out) in rows[i * r..][..r].iter_mut().enumerate() {
                set(out, dot(x, &pv[y_at(j)..][..len]));
            }
        }
        return;
    };
    for jb in (0..r).step_by(LANES) {
        let n = LANES.min(r - jb);
        for j in 0..n {
            t.set(j, &pv[y_at(jb + j)..][..len]);
        }
        for i in 0..m {
            let s = t.dots(&xv[x_at(i)..][..len]);
            for (out, &s) in rows[i * r + jb..][..n].iter_mut().zip(&s) {
                set(out, s);
            }
        }
    }
}

/// `A = softmax(Q Kᵀ / √K)` and `out = A V` for every batch element, head and row (`out` is
/// written, not read): all scores, then the softmax of every row in one pass (its `exp`
/// vectorised across rows), then the outputs, each summed from zero ([`axpy_rows`]).
#[inline(always)]
fn attention_forward<T: Scalar>((hd, pv, a, out): (Heads, &[T], &mut [T], &mut [T])) {
    let (r, k, v) = (hd.rows, hd.key, hd.value);
    let scale = hd.scale::<T>();
    let mut t = Transposed::new(k);
    for b in 0..hd.batch {
        for h in 0..hd.heads {
            let scores = &mut a[hd.a_at(b, h, 0)..][..r * r];
            let (q_at, k_at) = (|i| hd.p_at(b, i, h), |j| hd.p_at(b, j, h) + k);
            score_rows(
                &mut t,
                (pv, q_at, r),
                (pv, k_at),
                k,
                (scores, r),
                (scale, false, false),
            );
        }
    }
    softmax_rows(a, r);
    for b in 0..hd.batch {
        for h in 0..hd.heads {
            let a = &a[hd.a_at(b, h, 0)..][..r * r];
            axpy_rows(
                (&mut *out, |i| hd.out_at(b, i, h), Accumulate::Fresh),
                (hd.queries, v),
                r,
                |j, i| a[i * r + j],
                |j| &pv[hd.p_at(b, j, h) + 2 * k..][..v],
            ); // o_i = Σ_j A_ij v_j
        }
    }
}

/// `δA += δO Vᵀ`, head by head (onto zeros when `fresh`: `da` is not read). The rows without an
/// output (i ≥ `queries`) get +0, the dot of a zero δo_i with each v_j.
#[inline(always)]
fn attention_weights_grad<T: Scalar>((hd, d_out, pv, (da, fresh)): GradArgs<'_, T>) {
    let (r, k, v, q) = (hd.rows, hd.key, hd.value, hd.queries);
    let mut t = Transposed::new(v);
    for b in 0..hd.batch {
        prefetch_ahead(pv, b, r * hd.width());
        for h in 0..hd.heads {
            let rows = &mut da[hd.a_at(b, h, 0)..][..r * r];
            let (dout_at, v_at) = (|i| hd.out_at(b, i, h), |j| hd.p_at(b, j, h) + 2 * k);
            score_rows(
                &mut t,
                (d_out, dout_at, q),
                (pv, v_at),
                v,
                (rows, r),
                (T::one(), true, fresh),
            );
            for x in &mut rows[q * r..] {
                *x = if fresh { T::zero() } else { *x + T::zero() };
            }
        }
    }
}

/// `δV += Aᵀ δO` into the value columns of `dp` by [`axpy_rows`]. When `fresh` (`dp` holds no
/// gradient yet), δV is written as if onto zeros and the query and key columns are zeroed for
/// node 1's backward, in the same pass over each head (no separate fill of `dp`).
#[inline(always)]
fn attention_values_grad<T: Scalar>((hd, d_out, av, (dp, fresh)): GradArgs<'_, T>) {
    let (r, k, v) = (hd.rows, hd.key, hd.value);
    let mode = if fresh {
        Accumulate::Fresh
    } else {
        Accumulate::Add
    };
    for b in 0..hd.batch {
        prefetch_ahead(av, b, hd.heads * r * r);
        prefetch_ahead(dp, b, r * hd.width());
        for h in 0..hd.heads {
            if fresh {
                for j in 0..r {
                    zero_lanes(&mut dp[hd.p_at(b, j, h)..][..2 * k]);
                }
            }
            let a = &av[hd.a_at(b, h, 0)..][..r * r];
            axpy_rows(
                (&mut *dp, |j| hd.p_at(b, j, h) + 2 * k, mode),
                (r, v),
                hd.queries,
                |i, j| a[i * r + j],
                |i| &d_out[hd.out_at(b, i, h)..][..v],
            ); // δv_j (+)= Σ_i A_ij δo_i, i < queries
        }
    }
}

/// The kernels as [`simd::Kernel`]s (run wide whatever their size).
struct Forward;
struct WeightsGrad;
struct ValuesGrad;
struct ScoresGrad;

impl<T: Scalar> simd::Kernel<(Heads, &[T], &mut [T], &mut [T])> for Forward {
    #[inline(always)]
    fn run(args: (Heads, &[T], &mut [T], &mut [T])) {
        attention_forward(args);
    }
}

/// Node 2's backward kernels: the geometry, δO, p or A, and the gradient slot written, with
/// whether it is empty (`fresh`: its contents are not read).
type GradArgs<'a, T> = (Heads, &'a [T], &'a [T], (&'a mut [T], bool));

impl<'a, T: Scalar> simd::Kernel<GradArgs<'a, T>> for WeightsGrad {
    #[inline(always)]
    fn run(args: GradArgs<'a, T>) {
        attention_weights_grad(args);
    }
}

impl<'a, T: Scalar> simd::Kernel<GradArgs<'a, T>> for ValuesGrad {
    #[inline(always)]
    fn run(args: GradArgs<'a, T>) {
        attention_values_grad(args);
    }
}

/// δA, A, p, δp and one head's δS (R × R).
type ScoresArgs<'a, T> = (Heads, &'a [T], &'a [T], &'a [T], &'a mut [T], &'a mut [T]);

impl<'a, T: Scalar> simd::Kernel<ScoresArgs<'a, T>> for ScoresGrad {
    #[inline(always)]
    fn run(args: ScoresArgs<'a, T>) {
        attention_scores_grad(args);
    }
}

/// Backward of `out = A V`: δA into the weights' slot, δV into the value columns of `p`'s slot.
pub(crate) fn attention_output_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    p: Var,
    weights: Var,
    hd: Heads,
    grads: &mut GradSlots<T>,
) {
    let d_out = ctx.grad.as_slice().expect("standard layout"); // [B, Rq, H·V]
    let pv = ctx.value(p).as_slice().expect("standard layout"); // [B, R, H·(2K+V)]
    let av = ctx.value(weights).as_slice().expect("standard layout"); // [B, H, R, R]
    // Each slot is written without a zero fill first when it is empty (`fresh`).
    if ctx.wants(weights) {
        let slot = ctx.grad_slice_or_fresh(grads, weights);
        simd::wide_kernel::<WeightsGrad, _>((hd, d_out, pv, slot));
    }
    if ctx.wants(p) {
        let slot = ctx.grad_slice_or_fresh(grads, p);
        simd::wide_kernel::<ValuesGrad, _>((hd, d_out, av, slot));
    }
}

/// Backward of `A = softmax(Q Kᵀ / √K)`: δQ and δK into the query and key columns of `p`'s slot.
pub(crate) fn attention_weights_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    p: Var,
    hd: Heads,
    grads: &mut GradSlots<T>,
) {
    if !ctx.wants(p) {
        return;
    }
    let da = ctx.grad.as_slice().expect("standard layout"); // [B, H, R, R]
    let av = ctx.output().as_slice().expect("standard layout");
    let pv = ctx.value(p).as_slice().expect("standard layout");
    let dp = ctx.grad_slice(grads, p);
    let mut ds_rows = Scratch::new();
    let ds = ds_rows.zeros(hd.rows * hd.rows); // one head's δS
    simd::wide_kernel::<ScoresGrad, _>((hd, da, av, pv, dp, ds));
}

/// `δS = A ⊙ (δA − rowsum(A ⊙ δA)) / √K`, then `δQ += δS K` and `δK += δSᵀ Q` into `dp`, head
/// by head: all of a head's δS (`ds`, R × R), then each δq_i (summed from zero, then added) and
/// each δk_j (added onto its slot term by term), by [`axpy_rows`], the additions of row-by-row
/// loops in their order.
#[inline(always)]
fn attention_scores_grad<T: Scalar>((hd, da, av, pv, dp, ds): ScoresArgs<'_, T>) {
    let (r, k) = (hd.rows, hd.key);
    let scale = hd.scale::<T>();
    let (p_block, a_block) = (r * hd.width(), hd.heads * r * r); // per batch element
    for b in 0..hd.batch {
        prefetch_ahead(pv, b, p_block);
        prefetch_ahead(dp, b, p_block);
        prefetch_ahead(av, b, a_block);
        prefetch_ahead(da, b, a_block);
        for h in 0..hd.heads {
            for (i, ds_row) in ds.chunks_exact_mut(r).enumerate() {
                let at = hd.a_at(b, h, i);
                let (a_row, da_row) = (&av[at..][..r], &da[at..][..r]);
                let centre = dot(a_row, da_row);
                for ((d, &a), &g) in ds_row.iter_mut().zip(a_row).zip(da_row) {
                    *d = scale * a * (g - centre);
                }
            }
            let ds = &*ds;
            let (q_at, k_at) = (|i| hd.p_at(b, i, h), |j| hd.p_at(b, j, h) + k);
            axpy_rows(
                (&mut *dp, q_at, Accumulate::AddSum),
                (r, k),
                r,
                |j, i| ds[i * r + j],
                |j| &pv[k_at(j)..][..k],
            ); // δq_i += (Σ_j δS_ij k_j)
            axpy_rows(
                (&mut *dp, k_at, Accumulate::Add),
                (r, k),
                r,
                |i, j| ds[i * r + j],
                |i| &pv[q_at(i)..][..k],
            ); // δk_j += Σ_i δS_ij q_i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Accumulate, Transposed, axpy_rows, score_rows};

    /// `y += alpha · x`, the row-by-row reference.
    fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
    }

    /// `axpy_rows` is bit for bit, in each mode, row-by-row `axpy` loops over the terms in order
    /// (from zero with `Fresh`, whose rows are NaN-filled here and must not be read; into a
    /// sum then added once with `AddSum`), and leaves the elements between rows alone: rows
    /// 1–11 (blocks of eight and a rest), widths below, at and above a chunk of eight, terms
    /// with −0 products. Checked to fail with the terms added in reverse, with a block's rows
    /// given the next row's coefficients, and with `AddSum` adding term by term or not at all.
    #[test]
    fn axpy_rows_equals_row_by_row_axpys() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (m, len, n) in [(1, 5, 3), (5, 16, 5), (8, 21, 7), (11, 8, 4), (9, 40, 2)] {
            let stride = len + 3; // gaps between the rows of y
            let xs: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    let x = |e: usize| ((i * 31 + e) as f32 * 0.37).sin() * 4.0;
                    (0..len)
                        .map(|e| if e % 5 == 2 { -0.0 } else { x(e) })
                        .collect()
                })
                .collect();
            let alpha = |i: usize, j: usize| ((i * 7 + j) as f32 * 1.3).cos() * 3.0;
            for mode in [Accumulate::Fresh, Accumulate::Add, Accumulate::AddSum] {
                let start: Vec<f32> = (0..m * stride)
                    .map(|e| match mode {
                        Accumulate::Fresh if e % stride < len => f32::NAN,
                        _ => (e as f32 * 0.91).cos(),
                    })
                    .collect();
                let mut want = start.clone();
                for j in 0..m {
                    let y = &mut want[j * stride..][..len];
                    let mut sum = vec![0.0f32; len];
                    let acc = match mode {
                        Accumulate::Fresh => {
                            y.fill(0.0);
                            y
                        }
                        Accumulate::Add => y,
                        Accumulate::AddSum => &mut sum[..],
                    };
                    for (i, x) in xs.iter().enumerate() {
                        axpy(acc, alpha(i, j), x);
                    }
                    if mode == Accumulate::AddSum {
                        axpy(&mut want[j * stride..][..len], 1.0, &sum);
                    }
                }
                let mut got = start;
                axpy_rows((&mut got, |j| j * stride, mode), (m, len), n, alpha, |i| {
                    &xs[i][..]
                });
                assert_eq!(bits(&got), bits(&want), "m {m} len {len} n {n} {mode:?}");
            }
        }
    }

    /// Node 2's backward into empty slots (`fresh`: NaN-filled here, never read) has the bits of
    /// the same kernels adding into zero-filled slots: δA, and δp's value columns with its query
    /// and key columns zeroed (B = 3, R = 5, H = 2, K = 8, V = 12: a value row with a tail). Checked
    /// to fail with the query and key columns left unzeroed, with a fresh value row's tail left
    /// unzeroed, and with a fresh slot read.
    #[test]
    fn fresh_slots_equal_zero_filled_ones() {
        let hd = super::Heads {
            batch: 3,
            rows: 5,
            queries: 5,
            heads: 2,
            key: 8,
            value: 12,
        };
        let val = |n: usize, f: f32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        -0.0
                    } else {
                        ((i as f32) * f).sin() * 2.0
                    }
                })
                .collect()
        };
        let (np, na, no) = (
            hd.batch * hd.rows * hd.width(),
            hd.batch * hd.heads * hd.rows * hd.rows,
            hd.batch * hd.rows * hd.heads * hd.value,
        );
        let (pv, av, d_out) = (val(np, 0.37), val(na, 0.91), val(no, 0.53));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (mut da0, mut da1) = (vec![0.0f32; na], vec![f32::NAN; na]);
        super::attention_weights_grad((hd, &d_out[..], &pv[..], (&mut da0[..], false)));
        super::attention_weights_grad((hd, &d_out[..], &pv[..], (&mut da1[..], true)));
        assert_eq!(bits(&da1), bits(&da0), "δA");
        let (mut dp0, mut dp1) = (vec![0.0f32; np], vec![f32::NAN; np]);
        super::attention_values_grad((hd, &d_out[..], &av[..], (&mut dp0[..], false)));
        super::attention_values_grad((hd, &d_out[..], &av[..], (&mut dp1[..], true)));
        assert_eq!(bits(&dp1), bits(&dp0), "δp");
    }

    /// Scores eight at a time (two blocks of keys, with rows of full 8-chunks and a tail) are bit
    /// for bit the scores one at a time, when set and when added.
    #[test]
    fn transposed_scores_equal_one_by_one() {
        let (r, len, stride) = (11, 21, 29);
        let pv: Vec<f32> = (0..r * stride + len)
            .map(|i| ((i as f32) * 0.613).sin() * 2.5)
            .collect();
        let xv: Vec<f32> = (0..r * stride + len)
            .map(|i| ((i as f32) * 0.271).cos() * 1.5)
            .collect();
        for mode in [(0.25f32, false, false), (1.0, true, false)] {
            let run = |fast: bool| {
                let mut t = if fast { Transposed::new(len) } else { None };
                let mut rows: Vec<f32> = (0..r * r).map(|i| i as f32 * 0.01).collect();
                let (x_at, y_at) = (|i| i * stride + 3, |j| j * stride);
                score_rows(
                    &mut t,
                    (&xv[..], x_at, r),
                    (&pv[..], y_at),
                    len,
                    (&mut rows, r),
                    mode,
                );
                rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(run(true), run(false), "{mode:?}");
        }
    }
}
