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

use ndarray::IxDyn;

use super::buffers::{GradSlots, Scratch};
use super::graph::{Graph, Var};
use super::normalize::softmax_rows;
use super::op::{Ctx, Op};
use super::reduce::{LANES, dot, dots8};
use super::simd;
use crate::Scalar;

/// The geometry of one packed attention: batch, rows, heads, key and value sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heads {
    pub(crate) batch: usize,
    pub(crate) rows: usize,
    pub(crate) heads: usize,
    pub(crate) key: usize,
    pub(crate) value: usize,
}

impl Heads {
    /// Width of one packed row, H·(2K+V).
    fn width(self) -> usize {
        self.heads * self.per_head()
    }

    /// Columns per head, 2K+V.
    fn per_head(self) -> usize {
        2 * self.key + self.value
    }

    /// Offset in the flat `p` of row `r` of batch element `b`, head `h`.
    fn p_at(self, b: usize, r: usize, h: usize) -> usize {
        (b * self.rows + r) * self.width() + h * self.per_head()
    }

    /// Offset in the flat output `[B, R, H·V]` of row `r`, head `h`.
    fn out_at(self, b: usize, r: usize, h: usize) -> usize {
        ((b * self.rows + r) * self.heads + h) * self.value
    }

    /// Offset in the flat weights `[B, H, R, R]` of row `i` of head `h`.
    fn a_at(self, b: usize, h: usize, i: usize) -> usize {
        ((b * self.heads + h) * self.rows + i) * self.rows
    }

    fn scale<T: Scalar>(self) -> T {
        T::from_f64_lossy(1.0 / (self.key as f64).sqrt())
    }
}

/// `y += alpha · x`.
#[inline(always)]
fn axpy<T: Scalar>(y: &mut [T], alpha: T, x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
}

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

/// `y += alpha(i) · x(i)` for i = 0, 1, …, n − 1 in turn: the same bits as n calls of [`axpy`]
/// (each element gets the same additions in the same order), with eight elements of `y` held in
/// registers across all n instead of loaded and stored n times. With `fresh`, `y` is taken as
/// zeros (its contents are not read): the bits of zero-filling it first.
#[inline(always)]
fn axpy_many<'x, T: Scalar + 'x>(
    (y, fresh): (&mut [T], bool),
    n: usize,
    alpha: impl Fn(usize) -> T,
    x: impl Fn(usize) -> &'x [T],
) {
    let len = y.len();
    let full = len / LANES * LANES;
    if fresh {
        zero_lanes(&mut y[full..]);
    }
    for c in (0..full).step_by(LANES) {
        let mut acc = [T::zero(); LANES];
        if !fresh {
            acc.copy_from_slice(&y[c..c + LANES]);
        }
        for i in 0..n {
            let (a, xs) = (alpha(i), &x(i)[c..c + LANES]);
            for l in 0..LANES {
                acc[l] += a * xs[l];
            }
        }
        y[c..c + LANES].copy_from_slice(&acc);
    }
    for (e, y) in y.iter_mut().enumerate().skip(full) {
        for i in 0..n {
            *y += alpha(i) * x(i)[e];
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
        let s = self.shape(p);
        let ok = s.len() == 3
            && num_heads > 0
            && s[2].is_multiple_of(num_heads)
            && s[2] / num_heads > 2 * key_size;
        assert!(
            ok,
            "packed_attention: p {s:?} is not [B, R, H·(2K+V)] for H = {num_heads}, K = {key_size}"
        );
        let hd = Heads {
            batch: s[0],
            rows: s[1],
            heads: num_heads,
            key: key_size,
            value: s[2] / num_heads - 2 * key_size,
        };
        let mut a_buf = self.buffer(0, IxDyn(&[hd.batch, hd.heads, hd.rows, hd.rows])); // [B, H, R, R]
        let mut out_buf = self.buffer(1, IxDyn(&[hd.batch, hd.rows, hd.heads * hd.value])); // [B, R, H·V]
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
/// without reading `rows` when also `fresh`) for the R × R pairs of one head,
/// `x_i = xv[x_at(i)..][..len]`, `y_j = pv[y_at(j)..][..len]`: eight y's at a time through `t`
/// when they fit it, else one by one; the same bits either way.
#[inline(always)]
fn score_rows<T: Scalar>(
    t: &mut Option<Transposed<T>>,
    (xv, x_at): (&[T], impl Fn(usize) -> usize),
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
        for i in 0..r {
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
        for i in 0..r {
            let s = t.dots(&xv[x_at(i)..][..len]);
            for (out, &s) in rows[i * r + jb..][..n].iter_mut().zip(&s) {
                set(out, s);
            }
        }
    }
}

/// `A = softmax(Q Kᵀ / √K)` and `out = A V` for every batch element, head and row (`out` is
/// written, not read): all scores, then the softmax of every row in one pass (its `exp`
/// vectorised across rows), then the outputs, each summed from zero.
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
                (pv, q_at),
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
            for i in 0..r {
                let row = &a[hd.a_at(b, h, i)..][..r];
                let o = &mut out[hd.out_at(b, i, h)..][..v];
                axpy_many(
                    (o, true),
                    r,
                    |j| row[j],
                    |j| &pv[hd.p_at(b, j, h) + 2 * k..][..v],
                );
            }
        }
    }
}

/// `δA += δO Vᵀ`, head by head (onto zeros when `fresh`: `da` is not read).
#[inline(always)]
fn attention_weights_grad<T: Scalar>((hd, d_out, pv, (da, fresh)): GradArgs<'_, T>) {
    let (r, k, v) = (hd.rows, hd.key, hd.value);
    let mut t = Transposed::new(v);
    for b in 0..hd.batch {
        for h in 0..hd.heads {
            let rows = &mut da[hd.a_at(b, h, 0)..][..r * r];
            let (dout_at, v_at) = (|i| hd.out_at(b, i, h), |j| hd.p_at(b, j, h) + 2 * k);
            score_rows(
                &mut t,
                (d_out, dout_at),
                (pv, v_at),
                v,
                (rows, r),
                (T::one(), true, fresh),
            );
        }
    }
}

/// `δV += Aᵀ δO` into the value columns of `dp`, each value row in registers across the rows.
/// When `fresh` (`dp` holds no gradient yet), δV is written onto zeros and the query and key
/// columns are zeroed for node 1's backward, in the same pass (no separate fill of `dp`).
#[inline(always)]
fn attention_values_grad<T: Scalar>((hd, d_out, av, (dp, fresh)): GradArgs<'_, T>) {
    let (r, k, v) = (hd.rows, hd.key, hd.value);
    for b in 0..hd.batch {
        for h in 0..hd.heads {
            // Value j gathers A_ij δO_i over the rows i in order (as row-by-row axpys would).
            for j in 0..r {
                let (qk, dv) = dp[hd.p_at(b, j, h)..][..2 * k + v].split_at_mut(2 * k);
                if fresh {
                    zero_lanes(qk);
                }
                let (a_ij, dout_i) = (
                    |i| av[hd.a_at(b, h, i) + j],
                    |i| &d_out[hd.out_at(b, i, h)..][..v],
                );
                axpy_many((dv, fresh), r, a_ij, dout_i);
            }
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

/// δA, A, p, δp, one head's δS (R × R) and a δq.
type ScoresArgs<'a, T> = (
    Heads,
    &'a [T],
    &'a [T],
    &'a [T],
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
);

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
    let d_out = ctx.grad.as_slice().expect("standard layout"); // [B, R, H·V]
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
    let (mut ds_rows, mut dq_row) = (Scratch::new(), Scratch::new());
    let ds = ds_rows.zeros(hd.rows * hd.rows); // one head's δS
    let dq = dq_row.zeros(hd.key); // δq_i
    simd::wide_kernel::<ScoresGrad, _>((hd, da, av, pv, dp, ds, dq));
}

/// `δS = A ⊙ (δA − rowsum(A ⊙ δA)) / √K`, then `δQ += δS K` and `δK += δSᵀ Q` into `dp`, head
/// by head: all of a head's δS (`ds`, R × R), then each δq_i (summed in `dq`, then added) and
/// each δk_j (in registers across i), with the additions of the row-by-row loops in their order.
#[inline(always)]
fn attention_scores_grad<T: Scalar>((hd, da, av, pv, dp, ds, dq): ScoresArgs<'_, T>) {
    let (r, k) = (hd.rows, hd.key);
    let scale = hd.scale::<T>();
    for b in 0..hd.batch {
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
            for i in 0..r {
                axpy_many(
                    (&mut *dq, true),
                    r,
                    |j| ds[i * r + j],
                    |j| &pv[hd.p_at(b, j, h) + k..][..k],
                ); // δq_i = Σ_j δS_ij k_j
                axpy(&mut dp[hd.p_at(b, i, h)..][..k], T::one(), dq);
            }
            for j in 0..r {
                let dk = &mut dp[hd.p_at(b, j, h) + k..][..k];
                axpy_many(
                    (dk, false),
                    r,
                    |i| ds[i * r + j],
                    |i| &pv[hd.p_at(b, i, h)..][..k],
                ); // δk_j += Σ_i δS_ij q_i
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Transposed, axpy, axpy_many, score_rows};

    /// `axpy_many` is bit for bit n `axpy` calls in order (lengths below, at and above a chunk
    /// of eight). Checked to fail with the terms added in reverse.
    #[test]
    fn axpy_many_equals_axpys_in_order() {
        for len in [5, 16, 21] {
            let xs: Vec<Vec<f32>> = (0..7)
                .map(|i| {
                    (0..len)
                        .map(|e| ((i * 31 + e) as f32 * 0.37).sin() * 4.0)
                        .collect()
                })
                .collect();
            let alpha = |i: usize| (i as f32 * 1.3).cos() * 3.0;
            let y0: Vec<f32> = (0..len).map(|e| (e as f32 * 0.91).cos()).collect();
            let mut one_by_one = y0.clone();
            for (i, x) in xs.iter().enumerate() {
                axpy(&mut one_by_one, alpha(i), x);
            }
            let mut many = y0;
            axpy_many((&mut many, false), xs.len(), alpha, |i| &xs[i][..]);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&many), bits(&one_by_one), "length {len}");
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
                    (&xv[..], x_at),
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
