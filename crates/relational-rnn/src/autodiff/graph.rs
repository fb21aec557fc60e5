//! The tape itself: its nodes, leaves and parameters, the arrays it keeps for the next tape, and
//! the parameter gradients it hands out. The backward walk is in `backward.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::buffers::{GradSlots, Recycler};
use super::layout::standard;
use super::node::Node;
use super::op::Op;
use super::var::Var;
use super::workspace::{OpWorkspace, Workspaces};
use crate::kernels::threads::for_chunks;
use crate::{Grads, ParamId, ParamStore, Scalar};

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
    /// Emptied `Vec<Var>`s of cleared op records (`concat`'s parts), for the next tape's ops.
    pub(crate) var_lists: Vec<Vec<Var>>,
    /// What ops keep beside their nodes (see `workspace`).
    pub(crate) workspaces: Workspaces<T>,
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
            var_lists: Vec::new(),
            workspaces: Workspaces::default(),
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
        self.workspaces.clear();
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

    /// The nodes so far and the workspace of type `W` (see `workspace`), made on first use: for
    /// an op that reads its operands' values while it uses its workspace.
    pub(crate) fn nodes_and_workspace<W: OpWorkspace<T> + Default>(
        &mut self,
    ) -> (&[Node<T>], &mut W) {
        (&self.nodes, self.workspaces.get_or_default())
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
