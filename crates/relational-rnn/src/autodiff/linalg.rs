//! Matrix products: the dense layer `x W + b` and the batched product attention needs.
//!
//! Both go through [`Scalar::mat_mul`] (f32: the crate's AVX-512 GEMM, `kernels/gemm`, same bits as
//! matrixmultiply, with each weight packed once per tape; f64: ndarray's `general_mat_mul`);
//! backward accumulates with β = 1 straight into the operands' gradient slots; the first product
//! into an empty slot uses β = 0 instead of zero-filling it first.
//!
//! `linear` keeps a [`LinearWorkspace`] on the tape: the packed weights, the weight-gradient
//! terms that backward sums when it reaches each weight (see `weight_grads.rs`), and the row
//! subset of [`as_kept_rows`](Graph::as_kept_rows).

use std::cell::RefCell;

use ndarray::{ArrayD, ArrayView2, ArrayView3, ArrayViewMut3, Axis, Dimension};

use super::accumulate::{accumulate_range, accumulate_view};
use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::layout::as_matrix;
use super::node::Node;
use super::op::Op;
use super::row_subset::RowSubset;
use super::var::Var;
use super::weight_grads::WeightGrads;
use super::workspace::OpWorkspace;
use crate::Scalar;
use crate::kernels::gemm::PackCache;
use crate::kernels::simd;

/// What `linear` keeps on a tape beside its nodes.
#[derive(Default)]
pub(crate) struct LinearWorkspace<T> {
    /// Each weight packed for the GEMM once per tape, shared by every step that uses it (forward
    /// and backward).
    packs: RefCell<PackCache>,
    /// Weight-gradient terms waiting to be summed during backward.
    weight_grads: RefCell<WeightGrads<T>>,
    /// The row subset the `linear`s being recorded take their input's rows as (see
    /// [`as_kept_rows`](Graph::as_kept_rows)).
    rows: Option<RowSubset>,
}

impl<T: Scalar> OpWorkspace<T> for LinearWorkspace<T> {
    fn clear(&mut self) {
        self.packs.get_mut().clear();
        self.weight_grads.get_mut().clear();
    }

    fn start_backward(&mut self) {
        self.weight_grads.get_mut().clear();
    }

    /// Sums `v`'s pending weight-gradient terms when `v` is a weight.
    fn node_reached(&mut self, v: Var, nodes: &[Node<T>], grads: &mut GradSlots<T>) {
        self.weight_grads.get_mut().sum_pending(v, nodes, grads);
    }
}

/// `(groups, rows, cols)` of a shape with ndim ≥ 2.
fn batch_dims(s: &[usize]) -> (usize, usize, usize) {
    let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
    (s[..s.len() - 2].iter().product(), r, c)
}

/// Views `a` (standard layout, ndim ≥ 2) as `[groups, rows, cols]`.
fn as_batch<T>(a: &ArrayD<T>) -> ArrayView3<'_, T> {
    a.view()
        .into_shape_with_order(batch_dims(a.shape()))
        .expect("tape values are in standard layout")
}

/// Mutable `[groups, rows, cols]` view of a standard-layout gradient slot.
fn as_batch_mut<T>(a: &mut ArrayD<T>) -> ArrayViewMut3<'_, T> {
    let dims = batch_dims(a.shape());
    a.view_mut()
        .into_shape_with_order(dims)
        .expect("gradient slots are in standard layout")
}

impl<T: Scalar> Graph<T> {
    /// Dense layer `y = x W + b` applied to the last axis of `x`.
    ///
    /// When `x` is a constant (no gradient) of zeros, such as an LSTM's initial state, the
    /// product is not computed: `x W` is +0 everywhere, as the product gives for finite weights
    /// (with an infinite or NaN weight it would be NaN), and its term of W's gradient is +0.
    ///
    /// # Shapes
    /// `x: [..., I]`, `w: [I, O]`, `b: [O]` → `[..., O]`.
    #[track_caller]
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        self.linear_into(x, w, b, None)
    }

    /// `addend + (x W + b)`: the same values, bit for bit, as `add(addend, linear(x, w, b))`,
    /// in one node (no `[.., O]` temporary, no copy of the gradient into it): an LSTM's gates,
    /// the step's projected input plus the recurrent product.
    ///
    /// # Shapes
    /// `x: [M, I]`, `w: [I, O]`, `b: [O]`, `addend: [M, O]` → `[M, O]`.
    #[track_caller]
    pub fn linear_plus(&mut self, addend: Var, x: Var, w: Var, b: Option<Var>) -> Var {
        self.linear_into(x, w, b, Some((addend, 0)))
    }

    /// `addend[block] + (x W + b)`: [`linear_plus`](Self::linear_plus) with the addend read from
    /// block `block` of a stack of them, the same bits as `linear_plus(select(addend, 0, block),
    /// x, w, b)` without the selected copy (forward) or its gradient's (backward): an LSTM step's
    /// gates from the projections of all T inputs.
    ///
    /// # Shapes
    /// `x: [M, I]`, `w: [I, O]`, `b: [O]`, `addend: [N, M, O]` with `block < N` → `[M, O]`.
    #[track_caller]
    pub fn linear_plus_block(
        &mut self,
        addend: Var,
        block: usize,
        x: Var,
        w: Var,
        b: Option<Var>,
    ) -> Var {
        let s = self.shape(addend);
        assert!(
            !s.is_empty() && block < s[0],
            "linear_plus_block: block {block} of an addend of shape {s:?}"
        );
        self.linear_into(x, w, b, Some((addend, block)))
    }

    #[track_caller]
    fn linear_into(&mut self, x: Var, w: Var, b: Option<Var>, addend: Option<(Var, usize)>) -> Var {
        let (xv, wv) = (self.value(x), self.value(w));
        let in_dim = *xv.shape().last().unwrap_or(&0);
        assert!(
            wv.ndim() == 2 && wv.shape()[0] == in_dim,
            "linear: x {:?} cannot multiply w {:?}",
            xv.shape(),
            wv.shape()
        );
        let out_dim = wv.shape()[1];
        if let Some(b) = b {
            let bs = self.value(b).shape();
            assert!(
                bs == [out_dim],
                "linear: bias {bs:?} does not match output width {out_dim}"
            );
        }
        let mut dim = self.value(x).raw_dim();
        let last = dim.ndim() - 1;
        dim[last] = out_dim;
        let mut y = self.buffer(0, dim); // [..., O]
        let (nodes, ws) = self.nodes_and_workspace::<LinearWorkspace<T>>();
        let value = |v: Var| &nodes[v.0].value;
        let (xv, wv) = (value(x), value(w));
        let x2 = as_matrix(xv); // [M, I]
        let w2 = wv.view().into_dimensionality().expect("checked 2-d");
        let mut y2 = y
            .view_mut()
            .into_shape_with_order((x2.nrows(), out_dim))
            .expect("buffers are in standard layout"); // [M, O]
        // A constant x of zeros (an LSTM's zero initial state) makes x W a matrix of +0 (every
        // product ±0, summed from +0): written as such, without the product.
        let zero_x = !nodes[x.0].requires_grad && xv.iter().all(|&v| v == T::zero());
        let cache = Some((&ws.packs, (w.0, false)));
        let bias = b.map(|b| value(b).as_slice().expect("tape values are standard"));
        match (bias, zero_x) {
            (Some(bias), true) => {
                for mut row in y2.rows_mut() {
                    row.iter_mut()
                        .zip(bias)
                        .for_each(|(y, &b)| *y = T::zero() + b); // bias + (+0)
                }
            }
            (None, true) => y2.fill(T::zero()),
            (Some(bias), false) => T::mat_mul_bias(&x2, &w2, bias, &mut y2, cache), // bias + x W
            (None, false) => T::mat_mul(&x2, &w2, T::zero(), &mut y2, cache), // β = 0: y is not read
        }
        if let Some((addend, block)) = addend {
            let av = value(addend);
            let whole = av.shape() == y.shape();
            assert!(
                (whole && block == 0) || av.shape()[1..] == *y.shape(),
                "linear_plus: addend {:?} is neither the output's shape {:?} nor a stack of it",
                av.shape(),
                y.shape()
            );
            let per = y.len();
            let (ys, adds) = (
                y.as_slice_mut().expect("buffers are in standard layout"),
                &av.as_slice().expect("tape values are in standard layout")[block * per..][..per],
            );
            // a + y, the operand order of `add(addend, ·)`.
            simd::wide(|| ys.iter_mut().zip(adds).for_each(|(y, &a)| *y = a + *y));
        }
        let rows = ws.rows;
        if let Some(rows) = rows {
            let m = x2.nrows();
            assert!(
                m.is_multiple_of(rows.kept),
                "linear: {m} rows are not whole groups of {} kept rows",
                rows.kept
            );
        }
        self.push(
            y,
            Op::Linear {
                x,
                w,
                b,
                addend,
                zero_x,
                rows,
            },
        )
    }

    /// Runs `f` on rows that are the first `kept` of every `period` rows of a taller matrix whose
    /// other rows were dropped (the RMC's memory rows without the input's): its values, and with
    /// `f` row by row its gradients, have the bits of running `f` on the taller matrix and dropping
    /// the other rows afterwards (whose gradient is then zero). Only `linear` needs to know: it
    /// sums its weight gradient over the depth blocks of the taller matrix.
    pub(crate) fn as_kept_rows<R>(
        &mut self,
        kept: usize,
        period: usize,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        assert!(
            0 < kept && kept <= period,
            "{kept} kept rows of every {period}"
        );
        let subset = RowSubset { kept, period };
        let (_, ws) = self.nodes_and_workspace::<LinearWorkspace<T>>();
        let outer = ws.rows.replace(subset);
        let r = f(self);
        let (_, ws) = self.nodes_and_workspace::<LinearWorkspace<T>>();
        ws.rows = outer;
        r
    }

    /// Batched matrix product over the leading axes: `a @ b`, or `a @ bᵀ` with `transpose_b`.
    ///
    /// # Shapes
    /// `a: [G..., M, K]`, `b: [G..., K, Nc]` (or `[G..., Nc, K]` transposed) → `[G..., M, Nc]`.
    #[track_caller]
    pub fn matmul(&mut self, a: Var, b: Var, transpose_b: bool) -> Var {
        let (av, bv) = (self.value(a), self.value(b));
        let n = av.ndim();
        let ok = n >= 2
            && bv.ndim() == n
            && av.shape()[..n - 2] == bv.shape()[..n - 2]
            && av.shape()[n - 1] == bv.shape()[if transpose_b { n - 1 } else { n - 2 }];
        assert!(
            ok,
            "matmul: a {:?} cannot multiply b {:?} (transpose_b = {transpose_b})",
            av.shape(),
            bv.shape()
        );
        let cols = if transpose_b {
            bv.shape()[n - 2]
        } else {
            bv.shape()[n - 1]
        };
        let mut dim = av.raw_dim();
        dim[n - 1] = cols;
        let mut c = self.buffer(0, dim); // [G..., M, Nc]
        let (a3, b3) = (as_batch(self.value(a)), as_batch(self.value(b)));
        let mut c3 = as_batch_mut(&mut c); // [G, M, Nc]
        for ((ag, bg), mut cg) in a3
            .outer_iter()
            .zip(b3.outer_iter())
            .zip(c3.outer_iter_mut())
        {
            let bg = if transpose_b { bg.reversed_axes() } else { bg };
            T::mat_mul(&ag, &bg, T::zero(), &mut cg, None);
        }
        self.push(c, Op::MatMul { a, b, transpose_b })
    }
}

pub(crate) fn linear_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    (x, zero_x, rows): (Var, bool, Option<RowSubset>),
    w: Var,
    b: Option<Var>,
    addend: Option<(Var, usize)>,
    grads: &mut GradSlots<T>,
) {
    if let Some((a, block)) = addend.filter(|&(a, _)| ctx.wants(a)) {
        // First, as `add`'s backward ran before `linear`'s when they were two nodes.
        let dim = ctx.value(a).raw_dim();
        if dim.slice() == ctx.grad.shape() {
            accumulate_view(grads, a, ctx.grad.view());
        } else {
            // Into block `block` of the stack, as `select`'s backward did.
            let g = ctx.grad.view().insert_axis(Axis(0));
            accumulate_range(grads, a, &dim, 0, block, g);
        }
    }
    let ws = ctx.workspace::<LinearWorkspace<T>>();
    let dy = as_matrix(ctx.grad); // [M, O]
    let w2: ArrayView2<'_, T> = ctx.value(w).view().into_dimensionality().expect("2-d");
    if ctx.wants(x) {
        let (slot, beta) = ctx.grad_slot_beta(grads, x);
        let mut dx = slot
            .view_mut()
            .into_shape_with_order((dy.nrows(), w2.nrows()))
            .expect("standard layout"); // [M, I]
        T::mat_mul(&dy, &w2.t(), beta, &mut dx, Some((&ws.packs, (w.0, true))));
    }
    if ctx.wants(w) {
        // δW += xᵀ δy, summed with the other steps' terms (now or when w's node is reached).
        ws.weight_grads
            .borrow_mut()
            .record(ctx, w, (x, zero_x, rows), grads);
    }
    if let Some(b) = b.filter(|&b| ctx.wants(b)) {
        let db = ctx.grad_slice(grads, b); // [O]
        let dys = ctx
            .grad
            .as_slice()
            .expect("gradients are in standard layout"); // [M, O]
        // Row after row (the summation order), each row across all of O at once.
        simd::wide(|| {
            for row in dys.chunks_exact(db.len().max(1)) {
                db.iter_mut().zip(row).for_each(|(d, &g)| *d += g);
            }
        });
    }
}

pub(crate) fn matmul_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    b: Var,
    transpose_b: bool,
    grads: &mut GradSlots<T>,
) {
    let dc = as_batch(ctx.grad); // [G, M, Nc]
    let (av, bv) = (ctx.value(a), ctx.value(b));
    let (a3, b3) = (as_batch(av), as_batch(bv));
    if ctx.wants(a) {
        let (slot, beta) = ctx.grad_slot_beta(grads, a);
        let mut da = as_batch_mut(slot); // [G, M, K]
        for ((dcg, bg), mut dag) in dc
            .outer_iter()
            .zip(b3.outer_iter())
            .zip(da.outer_iter_mut())
        {
            // c = a b → da = dc bᵀ;  c = a bᵀ → da = dc b.
            let bg = if transpose_b { bg } else { bg.reversed_axes() };
            T::mat_mul(&dcg, &bg, beta, &mut dag, None);
        }
    }
    if ctx.wants(b) {
        let (slot, beta) = ctx.grad_slot_beta(grads, b);
        let mut db = as_batch_mut(slot); // [G, K, Nc] (or [G, Nc, K])
        for ((dcg, ag), mut dbg) in dc
            .outer_iter()
            .zip(a3.outer_iter())
            .zip(db.outer_iter_mut())
        {
            if transpose_b {
                // c = a bᵀ → db = dcᵀ a.
                T::mat_mul(&dcg.t(), &ag, beta, &mut dbg, None);
            } else {
                // c = a b → db = aᵀ dc.
                T::mat_mul(&ag.t(), &dcg, beta, &mut dbg, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array2, ArrayD, Ix2, IxDyn};

    use crate::autodiff::Graph;
    use crate::autodiff::test_values::values;

    /// A recurrence from a zero state, as an LSTM's: the product with the constant zero state is
    /// skipped (and its term of W's gradient), and every value and gradient has the bits of the
    /// computed product (the zero state as a leaf with a gradient, which is multiplied). With a
    /// −0 in the bias; with and without the bias and the addend. Checked to fail with the skipped
    /// output written as +0 instead of 0 + b.
    #[test]
    fn product_with_a_zero_state_is_skipped_with_the_same_bits() {
        let (m, i) = (13, 40); // W is [I, I]: the state feeds itself
        for (with_bias, with_addend) in [(true, true), (true, false), (false, false)] {
            let run = |skip: bool| {
                let mut g = Graph::<f32>::new();
                let w = g.input(values(&[i, i], 1));
                let mut bias = values(&[i], 2);
                bias[[3]] = -0.0;
                let b = with_bias.then(|| g.input(bias));
                let addend = g.input(values(&[2, m, i], 3));
                let zeros = ArrayD::zeros(IxDyn(&[m, i]));
                let h0 = if skip {
                    g.constant(zeros)
                } else {
                    g.input(zeros)
                };
                let mut h = h0;
                for t in 0..2 {
                    let y = if with_addend {
                        g.linear_plus_block(addend, t, h, w, b)
                    } else {
                        g.linear(h, w, b)
                    };
                    h = g.tanh(y);
                }
                let loss = g.sum(h);
                g.backward(loss);
                let mut bits: Vec<u32> = g.value(h).iter().map(|x| x.to_bits()).collect();
                for v in [Some(w), b, with_addend.then_some(addend)]
                    .into_iter()
                    .flatten()
                {
                    bits.extend(g.grad(v).expect("a gradient").iter().map(|x| x.to_bits()));
                }
                bits
            };
            assert_eq!(
                run(true),
                run(false),
                "bias {with_bias}, addend {with_addend}"
            );
        }
    }

    /// A weight shared by T `linear`s gets `δW = Σ_t x_tᵀ δy_t` with the bits of one β = 1 product
    /// per term in the order backward visits them (t = T − 1 first), whether its terms are
    /// multiplied as they come (deep: 2 I ≤ M) or at the weight's node (shallow); with a zero
    /// state (a constant of zeros) in the middle, multiplied like any other, and last, added as
    /// +0 (a column of x · δy underflowing to −0 shows it); and with another op reading the
    /// weight too, whose gradient comes first. Checked to fail with the trailing +0 left out,
    /// with the other op's gradient dropped when the terms were eager, and against a reference
    /// summed from the first step.
    #[test]
    fn shared_weight_gradients_sum_the_terms_in_backward_order() {
        let o = 24;
        // (rows M, width I): deep terms are eager, shallow ones wait for the weight's node.
        for (m, i) in [(40, 8), (64, 64), (6, 40)] {
            for (zeros_at, other_reader) in [
                (None, false),
                (Some(1), false),
                (Some(0), false),
                (Some(0), true),
                (None, true),
            ] {
                let mut g = Graph::<f32>::new();
                let w = g.input(values(&[i, o], 1));
                let xs: Vec<ArrayD<f32>> = (0..4)
                    .map(|t| {
                        let mut x = values(&[m, i], 10 + t);
                        x.index_axis_mut(ndarray::Axis(1), 0).fill(1e-30);
                        if zeros_at == Some(t as usize) {
                            x.fill(0.0);
                        }
                        x
                    })
                    .collect();
                let ys: Vec<_> = xs
                    .iter()
                    .map(|x| {
                        let x = g.constant(x.clone());
                        g.linear(x, w, None)
                    })
                    .collect();
                let mut total = ys[0];
                for &y in &ys[1..] {
                    total = g.add(total, y);
                }
                // δy: the seed through tanh, column 0 tiny and negative, so that x's column 0
                // (1e-30) times it underflows to −0.
                let tanh = g.tanh(total);
                let mut seed = values(&[m, o], 3);
                seed.index_axis_mut(ndarray::Axis(1), 0).fill(-1e-30);
                if other_reader {
                    // [W flattened | tanh flattened], seeded with 0.5 on W's part.
                    let rows = g.reshape(w, &[1, i * o]);
                    let flat = g.reshape(tanh, &[1, m * o]);
                    let both = g.concat(&[rows, flat], 1);
                    let mut s = ArrayD::from_elem(IxDyn(&[1, i * o + m * o]), 0.5f32);
                    s.as_slice_mut().unwrap()[i * o..].copy_from_slice(seed.as_slice().unwrap());
                    g.backward_with(both, s);
                } else {
                    g.backward_with(tanh, seed);
                }
                // The reference: the other reader's gradient (0.5 each), then the terms from the
                // last step back, each a product with β = 1 (β = 0 for the first into nothing),
                // the zero state last as + 0.
                let mut want = Array2::<f32>::from_elem((i, o), 0.5);
                let mut started = other_reader;
                for t in (0..4).rev() {
                    let dy = g
                        .grad(ys[t])
                        .unwrap()
                        .view()
                        .into_dimensionality::<Ix2>()
                        .unwrap();
                    let x = xs[t].view().into_dimensionality::<Ix2>().unwrap();
                    if zeros_at == Some(t) && t == 0 {
                        want.mapv_inplace(|v| v + 0.0);
                        continue;
                    }
                    let beta = if started { 1.0 } else { 0.0 };
                    general_mat_mul(1.0, &x.t(), &dy, beta, &mut want);
                    started = true;
                }
                let got = g.grad(w).unwrap();
                let bits = |a: &[f32]| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(got.as_slice().unwrap()),
                    bits(want.as_slice().unwrap()),
                    "M {m}, I {i}, zeros at {zeros_at:?}, other reader {other_reader}"
                );
                // The −0 that makes a dropped trailing +0 visible comes from the AVX-512 products;
                // without AVX-512 the products (matrixmultiply's) give +0 there, and the
                // bit-for-bit comparison above is the whole check.
                #[cfg(target_arch = "x86_64")]
                let minus_zero = crate::kernels::avx512_enabled();
                #[cfg(not(target_arch = "x86_64"))]
                let minus_zero = false;
                if zeros_at.is_none() && !other_reader && minus_zero {
                    assert!(
                        got[[0, 0]].to_bits() == (-0.0f32).to_bits(),
                        "column 0 underflows to −0"
                    );
                }
            }
        }
    }

    /// A `linear` over the kept rows of a taller matrix (4 of every 5, 640 rows, two steps sharing
    /// the weight) under `as_kept_rows` has the weight and bias gradients, bit for bit, of the
    /// linear over all rows whose dropped rows have a zero output gradient (+0 and −0), and the
    /// same outputs and input gradients for the kept rows. Checked to fail without the subset
    /// (the 512 rows summed in depth blocks of their own).
    #[test]
    fn linear_on_kept_rows_sums_weight_gradients_in_the_taller_blocks() {
        let (b, n, i, o) = (128, 4, 24, 40);
        let xs: Vec<ArrayD<f32>> = (0..2).map(|t| values(&[b, n + 1, i], 20 + t)).collect();
        let seeds: Vec<ArrayD<f32>> = (0..2).map(|t| values(&[b, n + 1, o], 30 + t)).collect();
        let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let kept = |a: &ArrayD<f32>| a.slice(ndarray::s![.., ..n, ..]).to_owned().into_dyn();
        let run = |cut: bool| {
            let mut g = Graph::<f32>::new();
            let w = g.input(values(&[i, o], 1));
            let bias = g.input(values(&[o], 2));
            let mut ys = Vec::new();
            for (x, seed) in xs.iter().zip(&seeds) {
                let (x, mut seed) = if cut {
                    (kept(x), kept(seed))
                } else {
                    let mut seed = seed.clone();
                    seed.slice_mut(ndarray::s![.., n, ..]).fill(-0.0);
                    seed[[3, n, 5]] = 0.0;
                    (x.clone(), seed)
                };
                let x = g.input(x);
                let y = if cut {
                    g.as_kept_rows(n, n + 1, |g| g.linear(x, w, Some(bias)))
                } else {
                    g.linear(x, w, Some(bias))
                };
                seed.mapv_inplace(|v| v * 0.5);
                ys.push((x, y, seed));
            }
            // Both steps' outputs, seeded through one sum of products with the seeds.
            let mut loss = None;
            for (_, y, seed) in &ys {
                let s = g.constant(seed.clone());
                let p = g.mul(*y, s);
                let p = g.sum(p);
                loss = Some(loss.map_or(p, |l| g.add(l, p)));
            }
            g.backward(loss.unwrap());
            let mut out = vec![bits(g.grad(w).unwrap()), bits(g.grad(bias).unwrap())];
            for (x, y, _) in &ys {
                let (xg, yv) = (g.grad(*x).unwrap(), g.value(*y));
                out.push(bits(&if cut { xg.clone() } else { kept(xg) }));
                out.push(bits(&if cut { yv.clone() } else { kept(yv) }));
            }
            out
        };
        let (cut, full) = (run(true), run(false));
        let names = [
            "weight gradient",
            "bias gradient",
            "δx 0",
            "y 0",
            "δx 1",
            "y 1",
        ];
        for ((c, f), name) in cut.iter().zip(&full).zip(names) {
            let differ = c.iter().zip(f).filter(|(c, f)| c != f).count();
            assert!(
                c.len() == f.len() && differ == 0,
                "{name}: {differ} of {} differ",
                c.len()
            );
        }
    }
}
