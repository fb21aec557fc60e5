//! The fused LSTM cell: gate pre-activations and the old cell state in, new hidden and cell state
//! out, in one pass over memory instead of four slices, four nonlinearities, three products and a
//! sum (and their backward passes), each allocating its own `[B, S]` array.
//!
//! ```text
//! [i, f, g, o] = gates                  (column blocks of width S, PyTorch's order)
//! c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
//! h' = σ(o) ⊙ tanh(c')
//! ```
//!
//! It pushes two nodes, c' and then h' (which reads c'), so backward visits h' first and its
//! contribution to dc' is in place when c' is visited. Each node keeps the activations its
//! backward needs: c' keeps `[σ(i), σ(f), tanh(g)]`, h' keeps `[σ(o), tanh(c')]`.
//!
//! Backward, with δh = ∂L/∂h', δc = ∂L/∂c' (including h's share `δh ⊙ σ(o) ⊙ (1 − tanh²c')`):
//! ```text
//! ∂o_pre = δh ⊙ tanh(c') ⊙ σ(o)(1 − σ(o))
//! ∂i_pre = δc ⊙ tanh(g) ⊙ σ(i)(1 − σ(i))     ∂f_pre = δc ⊙ c ⊙ σ(f)(1 − σ(f))
//! ∂g_pre = δc ⊙ σ(i) ⊙ (1 − tanh²g)          ∂c = δc ⊙ σ(f)
//! ```

use ndarray::{ArrayD, IxDyn};

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::op::Op;
use super::var::Var;
use crate::Scalar;
use crate::kernels::simd;

impl<T: Scalar> Graph<T> {
    /// One LSTM cell update from the gate pre-activations.
    ///
    /// # Shapes
    /// `gates: [B, 4S]` (blocks i, f, g, o), `c: [B, S]` → `(h' [B, S], c' [B, S])`.
    #[track_caller]
    pub fn lstm_cell(&mut self, gates: Var, c: Var) -> (Var, Var) {
        let (gv, cv) = (self.value(gates), self.value(c));
        assert!(
            gv.ndim() == 2 && cv.ndim() == 2 && gv.shape() == [cv.shape()[0], 4 * cv.shape()[1]],
            "lstm_cell: gates {:?} must be [B, 4S] for c {:?} = [B, S]",
            gv.shape(),
            cv.shape()
        );
        let (b, s) = (cv.shape()[0], cv.shape()[1]);
        // c' is the next node (ahead 0), h' the one after (ahead 1); each saves its activations.
        let mut acts_buf = self.saved_buffer(0, 0, IxDyn(&[b, 3 * s])); // σ(i), σ(f), tanh(g)
        let mut out_buf = self.saved_buffer(1, 0, IxDyn(&[b, 2 * s])); // σ(o), tanh(c')
        let mut c_buf = self.buffer(0, IxDyn(&[b, s])); // [B, S]
        let mut h_buf = self.buffer(1, IxDyn(&[b, s])); // [B, S]
        let (acts, out) = (slice(&mut acts_buf), slice(&mut out_buf));
        let (c_new, h_new) = (slice(&mut c_buf), slice(&mut h_buf));
        let (gv, cv) = (self.value(gates), self.value(c));
        let gs = gv.as_slice().expect("tape values are in standard layout");
        let cs = cv.as_slice().expect("tape values are in standard layout");
        // Row by row, one pass per quantity over equal-length slices, so every loop vectorises.
        simd::wider_kernel::<Forward, _>((s, gs, cs, acts, out, c_new, h_new));
        let c_var = self.push(
            c_buf,
            Op::LstmCellState {
                gates,
                c,
                acts: acts_buf,
            },
        );
        let h_var = self.push(
            h_buf,
            Op::LstmCellOutput {
                gates,
                state: c_var,
                acts: out_buf,
            },
        );
        (h_var, c_var)
    }
}

/// The elements of a freshly taken buffer (standard layout) as one mutable slice.
fn slice<T>(a: &mut ArrayD<T>) -> &mut [T] {
    a.as_slice_mut().expect("buffers are in standard layout")
}

/// `dst[j] = f(src[j])`.
#[inline(always)]
fn map_into<T: Scalar>(dst: &mut [T], src: &[T], f: impl Fn(T) -> T) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = f(x);
    }
}

/// Backward of c': the i, f, g blocks of ∂gates and ∂c.
pub(crate) fn lstm_state_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    gates: Var,
    c: Var,
    acts: &ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    let dc_new = ctx.grad.as_slice().expect("standard layout"); // [B, S]
    let cv = ctx.value(c);
    let s = cv.shape()[1];
    let a = acts.as_slice().expect("standard layout"); // [B, 3S]
    if ctx.wants(gates) {
        let cs = cv.as_slice().expect("standard layout");
        let dg = ctx.grad_slice(grads, gates); // [B, 4S]
        simd::wider_kernel::<StateGatesGrad, _>((s, a, cs, dc_new, dg));
    }
    if ctx.wants(c) {
        let (slot, fresh) = grads.slot_or_fresh(c, &cv.raw_dim());
        let dc = slot.as_slice_mut().expect("standard layout"); // [B, S]
        simd::wider_kernel::<StateGrad, _>((s, a, dc_new, dc, fresh));
    }
}

/// Backward of h': the o block of ∂gates and h's share of ∂c'.
pub(crate) fn lstm_output_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    gates: Var,
    state: Var,
    acts: &ArrayD<T>,
    grads: &mut GradSlots<T>,
) {
    let dh = ctx.grad.as_slice().expect("standard layout"); // [B, S]
    let sv = ctx.value(state);
    let s = sv.shape()[1];
    let a = acts.as_slice().expect("standard layout"); // [B, 2S]: σ(o), tanh(c')
    if ctx.wants(gates) {
        let dg = ctx.grad_slice(grads, gates); // [B, 4S]
        simd::wider_kernel::<OutputGateGrad, _>((s, a, dh, dg));
    }
    if ctx.wants(state) {
        let (slot, fresh) = grads.slot_or_fresh(state, &sv.raw_dim());
        let dc = slot.as_slice_mut().expect("standard layout"); // [B, S]
        simd::wider_kernel::<OutputStateGrad, _>((s, a, dh, dc, fresh));
    }
}

/// The kernels, as [`simd::Kernel`]s so that they run eight lanes wide whatever their size. Each
/// takes S first, then its slices of B rows.
struct Forward;
struct StateGatesGrad;
struct StateGrad;
struct OutputGateGrad;
struct OutputStateGrad;

/// S, gates [B, 4S], c [B, S] → acts [B, 3S], out [B, 2S], c' [B, S], h' [B, S].
type ForwardArgs<'a, T> = (
    usize,
    &'a [T],
    &'a [T],
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
);

impl<'a, T: Scalar> simd::Kernel<ForwardArgs<'a, T>> for Forward {
    #[inline(always)]
    fn run((s, gs, cs, acts, out, c_new, h_new): ForwardArgs<'a, T>) {
        for r in 0..cs.len() / s.max(1) {
            let g = &gs[r * 4 * s..(r + 1) * 4 * s];
            let (gi, rest) = g.split_at(s);
            let (gf, rest) = rest.split_at(s);
            let (gg, go) = rest.split_at(s);
            let a = &mut acts[r * 3 * s..(r + 1) * 3 * s];
            let (ai, rest) = a.split_at_mut(s);
            let (af, ag) = rest.split_at_mut(s);
            let (oo, otc) = out[r * 2 * s..(r + 1) * 2 * s].split_at_mut(s);
            let c_row = &cs[r * s..(r + 1) * s];
            let cn = &mut c_new[r * s..(r + 1) * s];
            let hn = &mut h_new[r * s..(r + 1) * s];
            map_into(ai, gi, T::sigmoid_act);
            map_into(af, gf, T::sigmoid_act);
            map_into(ag, gg, T::tanh_act);
            map_into(oo, go, T::sigmoid_act);
            for ((((cn, &f), &c), &i), &gt) in
                cn.iter_mut().zip(&*af).zip(c_row).zip(&*ai).zip(&*ag)
            {
                *cn = f * c + i * gt;
            }
            map_into(otc, cn, T::tanh_act);
            for ((hn, &o), &tc) in hn.iter_mut().zip(&*oo).zip(&*otc) {
                *hn = o * tc;
            }
        }
    }
}

/// S, acts [B, 3S], c [B, S], δc' [B, S] → the i, f, g blocks of δgates [B, 4S].
type StateGatesArgs<'a, T> = (usize, &'a [T], &'a [T], &'a [T], &'a mut [T]);

impl<'a, T: Scalar> simd::Kernel<StateGatesArgs<'a, T>> for StateGatesGrad {
    #[inline(always)]
    fn run((s, a, cs, dc_new, dg): StateGatesArgs<'a, T>) {
        for r in 0..cs.len() / s.max(1) {
            let (ai, af, ag) = (
                &a[r * 3 * s..r * 3 * s + s],
                &a[r * 3 * s + s..r * 3 * s + 2 * s],
                &a[r * 3 * s + 2 * s..(r + 1) * 3 * s],
            );
            let (c_row, d_row) = (&cs[r * s..(r + 1) * s], &dc_new[r * s..(r + 1) * s]);
            let row = &mut dg[r * 4 * s..r * 4 * s + 3 * s];
            let (di, rest) = row.split_at_mut(s);
            let (df, dgg) = rest.split_at_mut(s);
            for (((di, &d), &i), &gt) in di.iter_mut().zip(d_row).zip(ai).zip(ag) {
                *di += d * gt * i * (T::one() - i);
            }
            for (((df, &d), &f), &c) in df.iter_mut().zip(d_row).zip(af).zip(c_row) {
                *df += d * c * f * (T::one() - f);
            }
            for (((dgg, &d), &i), &gt) in dgg.iter_mut().zip(d_row).zip(ai).zip(ag) {
                *dgg += d * i * (T::one() - gt * gt);
            }
        }
    }
}

/// S, acts [B, 3S], δc' [B, S] → δc [B, S] += δc' ⊙ σ(f).
type StateArgs<'a, T> = (usize, &'a [T], &'a [T], &'a mut [T]);

/// [`StateArgs`] and whether the gradient slot is empty (written, not added to).
type StateFreshArgs<'a, T> = (usize, &'a [T], &'a [T], &'a mut [T], bool);

impl<'a, T: Scalar> simd::Kernel<StateFreshArgs<'a, T>> for StateGrad {
    #[inline(always)]
    fn run((s, a, dc_new, dc, fresh): StateFreshArgs<'a, T>) {
        for r in 0..dc.len() / s.max(1) {
            let af = &a[r * 3 * s + s..r * 3 * s + 2 * s];
            let (dc, d_row) = (&mut dc[r * s..(r + 1) * s], &dc_new[r * s..(r + 1) * s]);
            for ((dc, &d), &f) in dc.iter_mut().zip(d_row).zip(af) {
                *dc = if fresh { d * f } else { *dc + d * f };
            }
        }
    }
}

impl<'a, T: Scalar> simd::Kernel<StateArgs<'a, T>> for OutputGateGrad {
    /// S, acts [B, 2S] (σ(o), tanh c'), δh [B, S] → the o block of δgates [B, 4S].
    #[inline(always)]
    fn run((s, a, dh, dg): StateArgs<'a, T>) {
        for r in 0..dh.len() / s.max(1) {
            let (o, tc) = a[r * 2 * s..(r + 1) * 2 * s].split_at(s);
            let d_o = &mut dg[r * 4 * s + 3 * s..(r + 1) * 4 * s];
            let d_row = &dh[r * s..(r + 1) * s];
            for (((d_o, &d), &o), &tc) in d_o.iter_mut().zip(d_row).zip(o).zip(tc) {
                *d_o += d * tc * o * (T::one() - o);
            }
        }
    }
}

impl<'a, T: Scalar> simd::Kernel<StateFreshArgs<'a, T>> for OutputStateGrad {
    /// S, acts [B, 2S], δh [B, S] → δc' [B, S] += δh ⊙ σ(o) ⊙ (1 − tanh² c').
    #[inline(always)]
    fn run((s, a, dh, dc, fresh): StateFreshArgs<'a, T>) {
        for r in 0..dh.len() / s.max(1) {
            let (o, tc) = a[r * 2 * s..(r + 1) * 2 * s].split_at(s);
            let (dc, d_row) = (&mut dc[r * s..(r + 1) * s], &dh[r * s..(r + 1) * s]);
            for (((dc, &d), &o), &tc) in dc.iter_mut().zip(d_row).zip(o).zip(tc) {
                let v = d * o * (T::one() - tc * tc);
                *dc = if fresh { v } else { *dc + v };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Forward, StateGatesGrad};
    use crate::kernels::simd::{Kernel, wider_kernel};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32)
            .map(|x| x / (1u32 << 24) as f32 * 16.0 - 8.0)
            .collect()
    }

    /// The cell's kernels give the same bits through the widest wrapper this CPU has (AVX-512 or
    /// AVX2) as compiled for the baseline target (S = 37: vector bodies and scalar tails).
    #[test]
    fn kernels_are_bit_identical_wide_and_baseline() {
        let (b, s) = (5, 37);
        let (gates, c) = (values(b * 4 * s, 1), values(b * s, 2));
        let run = |wide: bool| {
            let (mut acts, mut out) = (vec![0.0f32; b * 3 * s], vec![0.0f32; b * 2 * s]);
            let (mut c_new, mut h_new) = (vec![0.0f32; b * s], vec![0.0f32; b * s]);
            let args = (
                s,
                &gates[..],
                &c[..],
                &mut acts[..],
                &mut out[..],
                &mut c_new[..],
                &mut h_new[..],
            );
            if wide {
                wider_kernel::<Forward, _>(args);
            } else {
                <Forward as Kernel<_>>::run(args);
            }
            let mut dg = values(b * 4 * s, 3);
            let args = (s, &acts[..], &c[..], &h_new[..], &mut dg[..]);
            if wide {
                wider_kernel::<StateGatesGrad, _>(args);
            } else {
                <StateGatesGrad as Kernel<_>>::run(args);
            }
            [acts, out, c_new, h_new, dg].concat()
        };
        let (wide, baseline) = (run(true), run(false));
        assert!(
            wide.iter()
                .zip(&baseline)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        assert!(wide.iter().all(|x| x.is_finite()) && wide.len() == baseline.len());
    }
}
