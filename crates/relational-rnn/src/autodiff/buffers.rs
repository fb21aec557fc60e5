//! Buffer reuse across training steps.
//!
//! A training step builds the same tape every time: node `i` has the same op and the same shape
//! as node `i` of the previous step. So when [`Graph::clear`](super::Graph::clear) empties the
//! tape it keeps every node's arrays (value, gradient, the activations an op saved for backward)
//! in a [`Recycler`] under the node's position, and the op that next creates node `i` takes them
//! back when the shape matches. After the first step, the ops allocate no large arrays: no
//! `malloc` of a fresh `[B, …]` array per op, no page faults to map it, no `memset` of zeros that
//! are about to be overwritten. A shape that differs (a new batch size, a different model) simply
//! allocates afresh, so correctness never depends on the reuse.

use ndarray::{ArrayD, IxDyn};

use super::var::Var;
use crate::Scalar;

/// Arrays kept from the previous step, by slot (a node position, or a node position and a part).
pub(crate) struct Recycler<T> {
    spare: Vec<Option<ArrayD<T>>>,
}

impl<T> Default for Recycler<T> {
    fn default() -> Self {
        Self { spare: Vec::new() }
    }
}

impl<T: Scalar> Recycler<T> {
    /// The array kept under `slot`, if it has shape `dim` (and standard layout).
    fn reuse(&mut self, slot: usize, dim: &IxDyn) -> Option<ArrayD<T>> {
        self.spare
            .get_mut(slot)
            .and_then(Option::take)
            .filter(|a| a.raw_dim() == *dim && a.is_standard_layout())
    }

    /// An array of shape `dim` whose contents are **unspecified** (the previous step's values
    /// when recycled): the caller overwrites every element.
    pub(crate) fn take(&mut self, slot: usize, dim: &IxDyn) -> ArrayD<T> {
        self.reuse(slot, dim)
            .unwrap_or_else(|| ArrayD::zeros(dim.clone()))
    }

    /// A zero-filled array of shape `dim`.
    pub(crate) fn take_zeroed(&mut self, slot: usize, dim: &IxDyn) -> ArrayD<T> {
        match self.reuse(slot, dim) {
            Some(mut a) => {
                // Over the flat slice (a `memset`): ndarray's `fill` stores 16 bytes at a time.
                a.as_slice_mut()
                    .expect("reused arrays are in standard layout")
                    .fill(T::zero());
                a
            }
            None => ArrayD::zeros(dim.clone()),
        }
    }

    /// Keeps `a` for the next request of `slot`.
    pub(crate) fn put(&mut self, slot: usize, a: ArrayD<T>) {
        if slot >= self.spare.len() {
            self.spare.resize_with(slot + 1, || None);
        }
        self.spare[slot] = Some(a);
    }
}

/// The gradient of every node during and after a backward pass (`None`: nothing flowed in), with
/// the previous pass's arrays kept for reuse.
pub(crate) struct GradSlots<T> {
    live: Vec<Option<ArrayD<T>>>,
    spare: Recycler<T>,
}

impl<T> Default for GradSlots<T> {
    fn default() -> Self {
        Self {
            live: Vec::new(),
            spare: Recycler::default(),
        }
    }
}

impl<T: Scalar> GradSlots<T> {
    /// Empties every slot for a tape of `len` nodes, keeping the arrays for reuse.
    pub(crate) fn reset(&mut self, len: usize) {
        for (i, slot) in self.live.iter_mut().enumerate() {
            if let Some(a) = slot.take() {
                self.spare.put(i, a);
            }
        }
        self.live.clear();
        self.live.resize_with(len, || None);
    }

    /// The gradient of `v`, if any flowed into it.
    pub(crate) fn get(&self, v: Var) -> Option<&ArrayD<T>> {
        self.live.get(v.0).and_then(Option::as_ref)
    }

    /// Removes and returns the gradient of node `i` (to read it while others are written).
    pub(crate) fn take(&mut self, i: usize) -> Option<ArrayD<T>> {
        self.live[i].take()
    }

    /// Sets the gradient of node `i`.
    pub(crate) fn set(&mut self, i: usize, a: ArrayD<T>) {
        self.live[i] = Some(a);
    }

    /// The gradient slot of `v`, zero-filled with shape `dim` when still empty.
    pub(crate) fn zeroed(&mut self, v: Var, dim: &IxDyn) -> &mut ArrayD<T> {
        let Self { live, spare } = self;
        live[v.0].get_or_insert_with(|| spare.take_zeroed(v.0, dim))
    }

    /// The gradient slot of `v` when it already holds a gradient, or else a fresh array of shape
    /// `dim` with **unspecified** contents, which the caller must overwrite entirely; `true` in
    /// the second case.
    pub(crate) fn slot_or_fresh(&mut self, v: Var, dim: &IxDyn) -> (&mut ArrayD<T>, bool) {
        let Self { live, spare } = self;
        let fresh = live[v.0].is_none();
        let slot = live[v.0].get_or_insert_with(|| spare.take(v.0, dim));
        (slot, fresh)
    }

    /// Removes the gradient slot of `v` (to write it while other slots are read): its array, or
    /// else a fresh one of shape `dim` with **unspecified** contents, and `true` in that case.
    pub(crate) fn take_or_fresh(&mut self, v: Var, dim: &IxDyn) -> (ArrayD<T>, bool) {
        match self.live[v.0].take() {
            Some(a) => (a, false),
            None => (self.spare.take(v.0, dim), true),
        }
    }

    /// An array of shape `dim` with **unspecified** contents from `v`'s spare (the array its
    /// gradient had in the previous pass), for a gradient built elsewhere and then put into the
    /// empty slot with [`fill_empty`](Self::fill_empty).
    pub(crate) fn take_spare(&mut self, v: Var, dim: &IxDyn) -> ArrayD<T> {
        self.spare.take(v.0, dim)
    }

    /// The current gradient of `v`, if any.
    pub(crate) fn slot_mut(&mut self, v: Var) -> Option<&mut ArrayD<T>> {
        self.live[v.0].as_mut()
    }

    /// Fills the empty slot of `v` with `a`.
    pub(crate) fn fill_empty(&mut self, v: Var, a: ArrayD<T>) {
        debug_assert!(self.live[v.0].is_none());
        self.live[v.0] = Some(a);
    }
}

/// A short scratch row for a backward kernel: on the stack up to 256 elements (a key of up to 256
/// entries, one head's R × R attention block up to 15 memory slots: every size the models use),
/// on the heap beyond, so a warm step does not allocate for it.
pub(crate) struct Scratch<T> {
    stack: [T; 256],
    heap: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    pub(crate) fn new() -> Self {
        Self {
            stack: [T::zero(); 256],
            heap: Vec::new(),
        }
    }

    /// `n` zeros.
    pub(crate) fn zeros(&mut self, n: usize) -> &mut [T] {
        if n <= self.stack.len() {
            let row = &mut self.stack[..n];
            row.fill(T::zero());
            row
        } else {
            self.heap.clear();
            self.heap.resize(n, T::zero());
            &mut self.heap
        }
    }
}
