//! The tape itself: nodes, leaves, parameters, and the backward sweep.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};

use super::buffers::{GradSlots, Recycler};
use super::elementwise::standard;
use super::linalg::{RowSubset, WeightGrads};
use super::op::Op;
use crate::kernels::gemm::PackCache;
use crate::kernels::simd;
use crate::kernels::threads::for_chunks;
use crate::{Grads, ParamId, ParamStore, Scalar};

/// A value on the tape: an index into its [`Graph`]. Cheap to copy; only meaningful for the graph
/// that made it (and only until that graph is [`clear`](Graph::clear)ed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

impl Var {
    /// Position of the node on the tape.
    pub fn index(self) -> usize {
        self.0
    }
}

pub(crate) struct Node<T> {
    pub(crate) value: ArrayD<T>,
    pub(crate) op: Op<T>,
    /// Whether any gradient has to flow into this node (false for constants and for everything
    /// computed from constants only), so backward skips work nobody asked for.
    pub(crate) requires_grad: bool,
}

/// A reverse-mode tape over `ndarray` arrays.
///
/// Build a computation by calling op methods (`g.linear(x, w, Some(b))`, `g.tanh(h)`, …), call
/// [`backward`](Self::backward) on a scalar, then read [`grad`](Self::grad) of any node or collect
/// the parameter gradients with [`param_grads`](Self::param_grads). [`clear`](Self::clear) empties
/// the tape but keeps its arrays: the next step's ops reuse them (see `buffers`), so a training
/// loop that clears and rebuilds the same tape allocates no large arrays after its first step.
pub struct Graph<T> {
    pub(crate) nodes: Vec<Node<T>>,
    params: HashMap<(u64, ParamId), Var>,
    pub(crate) grads: GradSlots<T>,
    /// Node values of the previous tape, by node position.
    values: Recycler<T>,
    /// Arrays ops saved for backward (layer norm's row means and 1/σ, …), by `2 · position + part`.
    saved: Recycler<T>,
    /// Packed weights of this tape's matrix products (see `kernels/gemm`).
    pub(crate) packs: RefCell<PackCache>,
    /// Emptied `Vec<Var>`s of cleared op records (`concat`'s parts), for the next tape's ops.
    pub(crate) var_lists: Vec<Vec<Var>>,
    /// `linear` weight gradients waiting to be summed during backward (see `linalg.rs`).
    pub(crate) weight_grads: RefCell<WeightGrads<T>>,
    /// The row subset the `linear`s being recorded take their input's rows as (see
    /// [`with_row_subset`](Self::with_row_subset)).
    pub(crate) row_subset: Option<RowSubset>,
}

impl<T: Scalar> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> Graph<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            params: HashMap::new(),
            grads: GradSlots::default(),
            values: Recycler::default(),
            saved: Recycler::default(),
            packs: RefCell::default(),
            var_lists: Vec::new(),
            weight_grads: RefCell::default(),
            row_subset: None,
        }
    }

    /// Removes every node (and gradient), keeping their arrays for the next tape.
    pub fn clear(&mut self) {
        for (i, node) in self.nodes.drain(..).enumerate() {
            self.values.put(i, node.value);
            let (saved, parts) = node.op.into_buffers();
            for (part, a) in saved.into_iter().enumerate() {
                self.saved.put(2 * i + part, a);
            }
            self.var_lists.extend(parts);
        }
        self.params.clear();
        self.packs.get_mut().clear();
        self.weight_grads.get_mut().clear();
        self.grads.reset(0);
    }

    /// A constant leaf holding `f` of every element of `src`, written into an array the tape
    /// reuses from its previous step (no allocation once warm): data batches, initial states.
    ///
    /// # Shapes
    /// `src: [...]` (any layout, e.g. a broadcast view) → same.
    pub fn constant_map<S: Copy>(&mut self, src: ArrayViewD<'_, S>, f: impl Fn(S) -> T) -> Var {
        let mut a = self.buffer(0, src.raw_dim());
        a.zip_mut_with(&src, |d, &s| *d = f(s));
        self.push_leaf(a, Op::Leaf, false)
    }

    /// An array of shape `dim` for the value of the node `ahead` positions past the end of the
    /// tape (0: the next node), reused from the previous tape when it fits. Its contents are
    /// **unspecified**: the op overwrites every element.
    pub(crate) fn buffer(&mut self, ahead: usize, dim: IxDyn) -> ArrayD<T> {
        self.values.take(self.nodes.len() + ahead, &dim)
    }

    /// Like [`buffer`](Self::buffer), for part `part` (0 or 1) of what the op saves for backward.
    pub(crate) fn saved_buffer(&mut self, ahead: usize, part: usize, dim: IxDyn) -> ArrayD<T> {
        debug_assert!(part < 2);
        self.saved.take(2 * (self.nodes.len() + ahead) + part, &dim)
    }

    /// Number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tape is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Pushes a node computed from `parents`; it requires a gradient when any parent does.
    pub(crate) fn push(&mut self, value: ArrayD<T>, op: Op<T>) -> Var {
        let value = standard(value);
        let mut requires_grad = false;
        op.for_each_parent(|p| requires_grad |= self.nodes[p.0].requires_grad);
        self.nodes.push(Node {
            value,
            op,
            requires_grad,
        });
        Var(self.nodes.len() - 1)
    }

    fn push_leaf(&mut self, value: ArrayD<T>, op: Op<T>, requires_grad: bool) -> Var {
        self.nodes.push(Node {
            value: standard(value),
            op,
            requires_grad,
        });
        Var(self.nodes.len() - 1)
    }

    /// A leaf whose gradient is tracked (inputs you want `d loss / d input` of).
    pub fn input(&mut self, value: ArrayD<T>) -> Var {
        self.push_leaf(value, Op::Leaf, true)
    }

    /// A leaf with no gradient (data, fixed initial states).
    pub fn constant(&mut self, value: ArrayD<T>) -> Var {
        self.push_leaf(value, Op::Leaf, false)
    }

    /// The parameter `id` of `store` as a leaf. Asking twice for the same id returns the same
    /// [`Var`], so a weight shared across time steps gets one node and one summed gradient.
    pub fn param(&mut self, store: &ParamStore<T>, id: ParamId) -> Var {
        let key = (store.uid(), id);
        if let Some(&v) = self.params.get(&key) {
            return v;
        }
        let value = store.get(id);
        let mut copy = self.buffer(0, value.raw_dim());
        match (copy.as_slice_mut(), value.as_slice()) {
            // A large weight (16 MB for the LSTM of config A) is copied on the helper threads.
            (Some(to), Some(from)) => for_chunks(to, from, <[T]>::copy_from_slice),
            _ => copy.assign(value),
        }
        let v = self.push_leaf(copy, Op::Param, true);
        self.params.insert(key, v);
        v
    }

    /// The value computed for `v`.
    pub fn value(&self, v: Var) -> &ArrayD<T> {
        &self.nodes[v.0].value
    }

    /// The shape of `v`.
    pub fn shape(&self, v: Var) -> &[usize] {
        self.nodes[v.0].value.shape()
    }

    /// Whether a gradient flows into `v`.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// The scalar held by a one-element node (a loss), widened to f64.
    ///
    /// # Panics
    /// If `v` holds more than one element.
    #[track_caller]
    pub fn scalar(&self, v: Var) -> f64 {
        let a = self.value(v);
        assert_eq!(a.len(), 1, "expected a scalar, got shape {:?}", a.shape());
        a.iter()
            .next()
            .copied()
            .unwrap_or_else(T::zero)
            .to_f64_lossy()
    }

    /// Backpropagates from the scalar `loss` (seeded with d loss / d loss = 1) through every node
    /// that requires a gradient. Afterwards [`grad`](Self::grad) answers for any node.
    ///
    /// # Panics
    /// If `loss` holds more than one element.
    #[track_caller]
    pub fn backward(&mut self, loss: Var) {
        let shape = self.shape(loss).to_vec();
        assert_eq!(
            shape.iter().product::<usize>(),
            1,
            "backward needs a scalar loss, got shape {shape:?}"
        );
        self.backward_with(loss, ArrayD::from_elem(shape, T::one()));
    }

    /// Backpropagates a given output gradient `seed` (same shape as `out`).
    #[track_caller]
    pub fn backward_with(&mut self, out: Var, seed: ArrayD<T>) {
        assert_eq!(
            seed.shape(),
            self.shape(out),
            "seed gradient shape {:?} != output shape {:?}",
            seed.shape(),
            self.shape(out)
        );
        self.grads.reset(self.nodes.len());
        self.weight_grads.get_mut().clear();
        self.grads.set(out.0, seed);
        for i in (0..=out.0).rev() {
            if !self.nodes[i].requires_grad {
                continue;
            }
            // Every reader of node i has been visited: sum its pending `linear` weight terms.
            self.sum_weight_grad(Var(i));
            let Some(grad) = self.grads.take(i) else {
                continue;
            };
            self.nodes[i].op.backward(
                &self.nodes,
                &self.packs,
                &self.weight_grads,
                i,
                &grad,
                &mut self.grads,
            );
            self.grads.set(i, grad);
        }
        debug_assert!(self.weight_grads.get_mut().weights().next().is_none());
    }

    /// The gradient of the last backward pass with respect to `v` (`None` when nothing flowed
    /// into it).
    pub fn grad(&self, v: Var) -> Option<&ArrayD<T>> {
        self.grads.get(v)
    }

    /// Parameter gradients of `store` from the last backward pass, zero for parameters that
    /// were not used.
    pub fn param_grads(&self, store: &ParamStore<T>) -> Grads<T> {
        let mut grads = store.zeros_like();
        self.accumulate_param_grads(store, &mut grads);
        grads
    }

    /// Writes the gradients of `store`'s parameters from the last backward pass into `grads`,
    /// zero for parameters without one: the same values as zeroing `grads`, then
    /// [`accumulate_param_grads`](Self::accumulate_param_grads) (0 + g and g + 0 are the same
    /// float, −0 included), in one pass over each gradient instead of two. Returns whether every
    /// gradient element is finite (read on the way).
    pub fn write_param_grads(&self, store: &ParamStore<T>, grads: &mut Grads<T>) -> bool {
        let finite = AtomicBool::new(true);
        let copy = |to: &mut [T], from: &[T]| {
            let mut ok = true;
            for (t, &f) in to.iter_mut().zip(from) {
                *t = f + T::zero();
                ok &= f.is_finite();
            }
            if !ok {
                finite.store(false, Ordering::Relaxed);
            }
        };
        for (id, to) in grads.iter_mut() {
            let from = self
                .params
                .get(&(store.uid(), id))
                .and_then(|&v| self.grad(v));
            let Some(from) = from else {
                to.fill(T::zero());
                continue;
            };
            assert_eq!(to.shape(), from.shape(), "gradient of parameter {id:?}");
            match (to.as_slice_mut(), from.as_slice()) {
                (Some(to), Some(from)) => for_chunks(to, from, copy),
                _ => {
                    to.zip_mut_with(from, |t, &f| *t = f + T::zero());
                    if !from.iter().all(|f| f.is_finite()) {
                        finite.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
        finite.into_inner()
    }

    /// Adds the gradients of `store`'s parameters from the last backward pass into `grads`
    /// (keeps its buffers).
    pub fn accumulate_param_grads(&self, store: &ParamStore<T>, grads: &mut Grads<T>) {
        for (&(uid, id), &v) in &self.params {
            if uid != store.uid() {
                continue;
            }
            if let Some(g) = self.grad(v) {
                *grads.get_mut(id) += g;
            }
        }
    }
}

/// Adds `contribution` into the gradient slot of `v` (moves it in when the slot is empty).
pub(crate) fn accumulate<T: Scalar>(grads: &mut GradSlots<T>, v: Var, contribution: ArrayD<T>) {
    match grads.slot_mut(v) {
        Some(g) => add_into(g, &contribution.view()),
        None => grads.fill_empty(v, standard(contribution)),
    }
}

/// Adds the view `contribution` into the gradient slot of `v`, copying it into a reused array when
/// the slot is still empty (no temporary when an op passes its incoming gradient straight through).
pub(crate) fn accumulate_view<T: Scalar>(
    grads: &mut GradSlots<T>,
    v: Var,
    contribution: ArrayViewD<'_, T>,
) {
    let (g, fresh) = grads.slot_or_fresh(v, &contribution.raw_dim());
    if !fresh {
        return add_into(g, &contribution);
    }
    match (g.as_slice_mut(), contribution.as_slice()) {
        (Some(gs), Some(cs)) => gs.copy_from_slice(cs),
        _ => g.assign(&contribution),
    }
}

/// Adds `contribution` into the range `start..` along `axis` of the gradient slot of `v`, whose
/// full shape is `dim` (zeros first when the slot is empty): the backward of slicing, without a
/// zero-padded temporary per slice. An empty slot is written in one pass: zeros outside the
/// range, `0 + c` inside it (the bits of adding into zeros, −0 included).
pub(crate) fn accumulate_range<T: Scalar>(
    grads: &mut GradSlots<T>,
    v: Var,
    dim: &ndarray::IxDyn,
    axis: usize,
    start: usize,
    contribution: ArrayViewD<'_, T>,
) {
    let n = contribution.shape()[axis];
    let Some(cs) = contribution.as_slice() else {
        let g = grads.zeroed(v, dim);
        let mut part = g.slice_axis_mut(Axis(axis), Slice::from(start..start + n));
        part += &contribution;
        return;
    };
    let (g, fresh) = grads.slot_or_fresh(v, dim);
    // Rows start.. of each leading block of the slot, one contiguous run per block.
    let (outer, total, inner) = super::shape::axis_blocks(dim.slice(), axis);
    let gs = g
        .as_slice_mut()
        .expect("gradient slots are in standard layout");
    if outer * total * inner == 0 {
        return; // nothing to write (an empty slot)
    }
    for (o, block) in gs.chunks_exact_mut(total * inner).enumerate() {
        let (before, rest) = block.split_at_mut(start * inner);
        let (to, after) = rest.split_at_mut(n * inner);
        let from = &cs[o * n * inner..][..n * inner];
        if fresh {
            before.fill(T::zero());
            after.fill(T::zero());
            to.iter_mut()
                .zip(from)
                .for_each(|(t, &f)| *t = T::zero() + f);
        } else {
            to.iter_mut().zip(from).for_each(|(t, &f)| *t += f);
        }
    }
}

/// Adds `scale · c`, summed over the axes that broadcasting stretched, into the gradient slot of
/// `v` (shape `dim`, right-aligned with `c`'s shape, 1 where `c` was stretched): the backward of a
/// broadcasting op, without the temporaries of repeated `sum_axis`.
pub(crate) fn accumulate_unbroadcast<T: Scalar>(
    grads: &mut GradSlots<T>,
    v: Var,
    dim: &IxDyn,
    c: &ArrayD<T>,
    scale: T,
) {
    const MAX_AXES: usize = 8;
    let (cshape, tshape) = (c.shape(), dim.slice());
    let (n, m) = (cshape.len(), tshape.len());
    assert!(
        m <= n && n <= MAX_AXES,
        "cannot unbroadcast {cshape:?} to {tshape:?}"
    );
    let g = grads.zeroed(v, dim);
    let gs = g
        .as_slice_mut()
        .expect("gradient slots are in standard layout");
    let cs = c.as_slice().expect("gradients are in standard layout");
    if n == 0 {
        gs[0] += scale * cs[0];
        return;
    }
    // The target's stride along each of c's axes: 0 where c was stretched (or had extra axes).
    let mut stride = [0usize; MAX_AXES];
    let mut s = 1;
    for k in (0..m).rev() {
        let ck = k + n - m;
        stride[ck] = if tshape[k] == 1 && cshape[ck] != 1 {
            0
        } else {
            s
        };
        s *= tshape[k];
    }
    let last = cshape[n - 1].max(1);
    let mut index = [0usize; MAX_AXES];
    for row in cs.chunks_exact(last) {
        let at: usize = (0..n - 1).map(|k| index[k] * stride[k]).sum();
        if stride[n - 1] == 0 {
            gs[at] += scale * row.iter().fold(T::zero(), |acc, &x| acc + x);
        } else {
            for (g, &x) in gs[at..at + last].iter_mut().zip(row) {
                *g += scale * x;
            }
        }
        // Next row: advance the index over c's leading axes, last fastest.
        for k in (0..n - 1).rev() {
            index[k] += 1;
            if index[k] < cshape[k] {
                break;
            }
            index[k] = 0;
        }
    }
}

/// Writes `f(x_j, y_j)` into the gradient slot of `v` (shape `dim`, flat `x` and `y` of its
/// length), or adds it when the slot already holds a gradient: the backward of element-wise ops
/// without a temporary.
pub(crate) fn accumulate_zip<T: Scalar>(
    grads: &mut GradSlots<T>,
    v: Var,
    dim: &ndarray::IxDyn,
    x: &[T],
    y: &[T],
    f: impl Fn(T, T) -> T,
) {
    let (g, fresh) = grads.slot_or_fresh(v, dim);
    let g = g
        .as_slice_mut()
        .expect("gradient slots are in standard layout");
    debug_assert!(g.len() == x.len() && g.len() == y.len());
    simd::wide(|| {
        if fresh {
            for ((g, &x), &y) in g.iter_mut().zip(x).zip(y) {
                *g = f(x, y);
            }
        } else {
            for ((g, &x), &y) in g.iter_mut().zip(x).zip(y) {
                *g += f(x, y);
            }
        }
    });
}

/// `g += c` over flat slices when both are contiguous (the common case on the tape).
fn add_into<T: Scalar>(g: &mut ArrayD<T>, c: &ArrayViewD<'_, T>) {
    if g.shape() != c.shape() {
        *g += c; // broadcasts, or panics with both shapes
        return;
    }
    match (g.as_slice_mut(), c.as_slice()) {
        (Some(gs), Some(cs)) => {
            gs.iter_mut().zip(cs).for_each(|(g, &c)| *g += c);
        }
        _ => *g += c,
    }
}
