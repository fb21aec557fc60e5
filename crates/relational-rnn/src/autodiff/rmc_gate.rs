//! The Relational Memory Core's gated memory update, fused: two nodes instead of eleven (a
//! broadcasting add, two slices, two bias shifts, two sigmoids, a tanh, two products and a sum,
//! each with its own pass over memory forward and backward).
//!
//! ```text
//! [i | f] = σ(P + p_x + [b_i | b_f])      node 1: the gates  [B, N, 2G]
//! M'      = i ⊙ tanh(M̃) + f ⊙ M           node 2: the memory [B, N, D]   (unit gates, G = D)
//! ```
//!
//! `P = tanh(M) W_m + b_m` is the memory's gate projection `[B, N, 2G]`, `p_x = x̂ W_x + b_x` the
//! input's `[B, 2G]` (broadcast over the N slots), `b_i`, `b_f` the constant input and forget
//! biases (either may be ±∞ to pin a gate). Node 1 serves both gate styles; node 2 needs G = D
//! (memory-wise gates, G = 1, broadcast through the unfused `mul` instead).
//!
//! Backward, with δ = ∂L/∂M' and t = tanh(M̃) (kept by node 2):
//!
//! ```text
//! node 2:  δi = δ ⊙ t    δf = δ ⊙ M    δM̃ = (δ ⊙ i) ⊙ (1 − t²)    δM = δ ⊙ f
//! node 1:  δP = δ[i|f] ⊙ [i|f] ⊙ (1 − [i|f])       δp_x = Σ_n δP[:, n, :]   (n = 0, 1, …)
//! ```
//!
//! Every expression is evaluated in the order the unfused ops used, and the sum over slots adds
//! into p_x's gradient in slot order (from zero when it is empty, as in the model, where p_x is a
//! fresh linear output each step), as the broadcasting add's backward did: fusing changed no bits
//! of a training run. `tests/gradcheck_ops.rs` checks the fused nodes against the unfused ops.

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::op::Op;
use super::var::Var;
use crate::Scalar;
use crate::kernels::simd;

impl<T: Scalar> Graph<T> {
    /// The RMC's input and forget gates: `σ(P + p_x + [b_i | b_f])`, `p_x` broadcast over slots.
    ///
    /// # Shapes
    /// `p: [B, N, 2G]`, `p_x: [B, 2G]` → `[B, N, 2G]` (input gates in columns `..G`, forget
    /// gates in `G..`).
    ///
    /// # Panics
    /// If the shapes do not match that pattern.
    #[track_caller]
    pub fn rmc_gates(&mut self, p: Var, p_x: Var, input_bias: f64, forget_bias: f64) -> Var {
        let (ps, xs) = (self.shape(p), self.shape(p_x));
        assert!(
            ps.len() == 3 && ps[2] % 2 == 0 && xs == [ps[0], ps[2]],
            "rmc_gates: p {ps:?} must be [B, N, 2G] and p_x {xs:?} [B, 2G]"
        );
        let g = ps[2] / 2;
        let dim = self.value(p).raw_dim();
        let mut y = self.buffer(0, dim);
        let biases = (
            T::from_f64_lossy(input_bias),
            T::from_f64_lossy(forget_bias),
        );
        let ys = y.as_slice_mut().expect("buffers are in standard layout");
        let pv = self.value(p).as_slice().expect("tape values are standard");
        let xv = self
            .value(p_x)
            .as_slice()
            .expect("tape values are standard");
        simd::wider_kernel::<GatesForward, _>((g, biases, pv, xv, ys));
        self.push(y, Op::RmcGates { p, p_x })
    }

    /// The RMC's gated memory update with unit gates: `i ⊙ tanh(M̃) + f ⊙ M`.
    ///
    /// # Shapes
    /// `gates: [B, N, 2D]` (from [`rmc_gates`](Self::rmc_gates)), `m_tilde: [B, N, D]`,
    /// `memory: [B, N, D]` → `[B, N, D]`.
    ///
    /// # Panics
    /// If the shapes do not match that pattern.
    #[track_caller]
    pub fn rmc_gated_update(&mut self, gates: Var, m_tilde: Var, memory: Var) -> Var {
        let (gs, ms, m0) = (self.shape(gates), self.shape(m_tilde), self.shape(memory));
        assert!(
            ms.len() == 3 && m0 == ms && gs == [ms[0], ms[1], 2 * ms[2]],
            "rmc_gated_update: gates {gs:?} must be [B, N, 2D] for M̃ {ms:?} and M {m0:?} = [B, N, D]"
        );
        let d = ms[2];
        let dim = self.value(memory).raw_dim();
        let mut t_buf = self.saved_buffer(0, 0, dim.clone()); // tanh(M̃): [B, N, D]
        let mut y = self.buffer(0, dim);
        let t = t_buf
            .as_slice_mut()
            .expect("buffers are in standard layout");
        let ys = y.as_slice_mut().expect("buffers are in standard layout");
        let gv = self
            .value(gates)
            .as_slice()
            .expect("tape values are standard");
        let mt = self
            .value(m_tilde)
            .as_slice()
            .expect("tape values are standard");
        let m = self
            .value(memory)
            .as_slice()
            .expect("tape values are standard");
        simd::wider_kernel::<UpdateForward, _>((d, gv, mt, m, t, ys));
        self.push(
            y,
            Op::RmcGatedUpdate {
                gates,
                m_tilde,
                memory,
                tanh_m_tilde: t_buf,
            },
        )
    }
}

/// Backward of [`Graph::rmc_gates`]: δP into `p`, summed over slots into `p_x`.
pub(crate) fn gates_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    p: Var,
    p_x: Var,
    grads: &mut GradSlots<T>,
) {
    let delta = ctx.grad.as_slice().expect("standard layout"); // [B, N, 2G]
    let y = ctx.output().as_slice().expect("standard layout"); // [B, N, 2G]
    let width = ctx.value(p_x).shape()[1]; // 2G
    if ctx.wants(p) {
        let (dp, fresh) = ctx.grad_slice_or_fresh(grads, p);
        simd::wider_kernel::<GatesGrad, _>((delta, y, dp, fresh));
    }
    if ctx.wants(p_x) {
        let (dx, fresh) = ctx.grad_slice_or_fresh(grads, p_x);
        if fresh {
            dx.fill(T::zero());
        }
        simd::wider_kernel::<GatesInputGrad, _>((width, delta, y, dx));
    }
}

/// Backward of [`Graph::rmc_gated_update`]: δ[i|f], δM̃ and δM.
pub(crate) fn update_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    [gates, m_tilde, memory]: [Var; 3],
    t: &ndarray::ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    let delta = ctx.grad.as_slice().expect("standard layout"); // [B, N, D]
    let t = t.as_slice().expect("standard layout"); // tanh(M̃): [B, N, D]
    let gv = ctx.value(gates).as_slice().expect("standard layout"); // [B, N, 2D]
    let m = ctx.value(memory).as_slice().expect("standard layout"); // [B, N, D]
    let d = ctx.value(memory).shape()[2];
    if ctx.wants(gates) {
        let (dg, fresh) = ctx.grad_slice_or_fresh(grads, gates);
        simd::wider_kernel::<UpdateGatesGrad, _>((d, delta, t, m, dg, fresh));
    }
    for (target, is_memory) in [(m_tilde, false), (memory, true)] {
        if ctx.wants(target) {
            let (out, fresh) = ctx.grad_slice_or_fresh(grads, target);
            simd::wider_kernel::<UpdateStateGrad, _>((d, delta, t, gv, is_memory, out, fresh));
        }
    }
}

/// The kernels, as [`simd::Kernel`]s so that they run vectorised whatever their size: sixteen lanes
/// on AVX-512 CPUs, for rows of D = 64–256 (see PERFORMANCE.md, section "Design notes moved from
/// the source"). Each takes D (the gate width G for node 1's) first, then flat slices of B·N rows.
struct GatesForward;
struct GatesGrad;
struct GatesInputGrad;
struct UpdateForward;
struct UpdateGatesGrad;
struct UpdateStateGrad;

/// `*dst = v` when the slot was empty (`fresh`), else `*dst += v`.
#[inline(always)]
fn store<T: Scalar>(dst: &mut T, v: T, fresh: bool) {
    *dst = if fresh { v } else { *dst + v };
}

/// G, (b_i, b_f), P [B, N, 2G], p_x [B, 2G] → gates [B, N, 2G].
type GatesForwardArgs<'a, T> = (usize, (T, T), &'a [T], &'a [T], &'a mut [T]);

impl<'a, T: Scalar> simd::Kernel<GatesForwardArgs<'a, T>> for GatesForward {
    #[inline(always)]
    fn run((g, (bi, bf), p, px, y): GatesForwardArgs<'a, T>) {
        let width = 2 * g;
        let slots = p.len() / px.len().max(1); // N
        for (b, x_row) in px.chunks_exact(width).enumerate() {
            let (xi, xf) = x_row.split_at(g);
            for n in 0..slots {
                let at = (b * slots + n) * width;
                let (pi, pf) = p[at..at + width].split_at(g);
                let (yi, yf) = y[at..at + width].split_at_mut(g);
                for ((y, &p), &x) in yi.iter_mut().zip(pi).zip(xi) {
                    *y = (p + x + bi).sigmoid_act();
                }
                for ((y, &p), &x) in yf.iter_mut().zip(pf).zip(xf) {
                    *y = (p + x + bf).sigmoid_act();
                }
            }
        }
    }
}

/// δ [B, N, 2G], gates [B, N, 2G] → δP [B, N, 2G] (written when `fresh`, else added).
type GatesGradArgs<'a, T> = (&'a [T], &'a [T], &'a mut [T], bool);

impl<'a, T: Scalar> simd::Kernel<GatesGradArgs<'a, T>> for GatesGrad {
    #[inline(always)]
    fn run((delta, y, dp, fresh): GatesGradArgs<'a, T>) {
        for ((dp, &d), &y) in dp.iter_mut().zip(delta).zip(y) {
            store(dp, d * y * (T::one() - y), fresh);
        }
    }
}

/// 2G, δ [B, N, 2G], gates [B, N, 2G] → δp_x [B, 2G] += Σ_n δP, in slot order.
type GatesInputGradArgs<'a, T> = (usize, &'a [T], &'a [T], &'a mut [T]);

impl<'a, T: Scalar> simd::Kernel<GatesInputGradArgs<'a, T>> for GatesInputGrad {
    #[inline(always)]
    fn run((width, delta, y, dx): GatesInputGradArgs<'a, T>) {
        let per_batch = delta.len() / (dx.len() / width).max(1); // N · 2G
        for (b, dx_row) in dx.chunks_exact_mut(width).enumerate() {
            let rows = delta[b * per_batch..(b + 1) * per_batch].chunks_exact(width);
            let ys = y[b * per_batch..(b + 1) * per_batch].chunks_exact(width);
            for (d_row, y_row) in rows.zip(ys) {
                for ((dx, &d), &y) in dx_row.iter_mut().zip(d_row).zip(y_row) {
                    *dx += d * y * (T::one() - y);
                }
            }
        }
    }
}

/// D, gates [B, N, 2D], M̃ [B, N, D], M [B, N, D] → t = tanh(M̃) [B, N, D], M' [B, N, D].
type UpdateForwardArgs<'a, T> = (usize, &'a [T], &'a [T], &'a [T], &'a mut [T], &'a mut [T]);

impl<'a, T: Scalar> simd::Kernel<UpdateForwardArgs<'a, T>> for UpdateForward {
    #[inline(always)]
    fn run((d, gates, mt, m, t, y): UpdateForwardArgs<'a, T>) {
        for (r, g_row) in gates.chunks_exact(2 * d).enumerate() {
            let (i, f) = g_row.split_at(d);
            let rows = r * d..(r + 1) * d;
            let t = &mut t[rows.clone()];
            for (t, &x) in t.iter_mut().zip(&mt[rows.clone()]) {
                *t = x.tanh_act();
            }
            let (m, y) = (&m[rows.clone()], &mut y[rows]);
            for ((((y, &i), &t), &f), &m) in y.iter_mut().zip(i).zip(&*t).zip(f).zip(m) {
                *y = i * t + f * m;
            }
        }
    }
}

/// D, δ [B, N, D], t [B, N, D], M [B, N, D] → δ[i|f] [B, N, 2D] = [δ ⊙ t | δ ⊙ M].
type UpdateGatesGradArgs<'a, T> = (usize, &'a [T], &'a [T], &'a [T], &'a mut [T], bool);

impl<'a, T: Scalar> simd::Kernel<UpdateGatesGradArgs<'a, T>> for UpdateGatesGrad {
    #[inline(always)]
    fn run((d, delta, t, m, dg, fresh): UpdateGatesGradArgs<'a, T>) {
        for (r, dg_row) in dg.chunks_exact_mut(2 * d).enumerate() {
            let (di, df) = dg_row.split_at_mut(d);
            let rows = r * d..(r + 1) * d;
            let delta = &delta[rows.clone()];
            for ((di, &x), &t) in di.iter_mut().zip(delta).zip(&t[rows.clone()]) {
                store(di, x * t, fresh);
            }
            for ((df, &x), &m) in df.iter_mut().zip(delta).zip(&m[rows]) {
                store(df, x * m, fresh);
            }
        }
    }
}

/// D, δ [B, N, D], t [B, N, D], gates [B, N, 2D], which → δM̃ = (δ ⊙ i) ⊙ (1 − t²) (`which`
/// false) or δM = δ ⊙ f (true), [B, N, D].
type UpdateStateGradArgs<'a, T> = (usize, &'a [T], &'a [T], &'a [T], bool, &'a mut [T], bool);

impl<'a, T: Scalar> simd::Kernel<UpdateStateGradArgs<'a, T>> for UpdateStateGrad {
    #[inline(always)]
    fn run((d, delta, t, gates, is_memory, out, fresh): UpdateStateGradArgs<'a, T>) {
        for (r, g_row) in gates.chunks_exact(2 * d).enumerate() {
            let (i, f) = g_row.split_at(d);
            let rows = r * d..(r + 1) * d;
            let (delta, out) = (&delta[rows.clone()], &mut out[rows.clone()]);
            if is_memory {
                for ((o, &x), &f) in out.iter_mut().zip(delta).zip(f) {
                    store(o, x * f, fresh);
                }
            } else {
                for (((o, &x), &i), &t) in out.iter_mut().zip(delta).zip(i).zip(&t[rows]) {
                    store(o, x * i * (T::one() - t * t), fresh);
                }
            }
        }
    }
}
