//! What a backward function is given: read access to the tape, and helpers to write into its
//! operands' gradient slots.

use ndarray::ArrayD;

use super::buffers::GradSlots;
use super::node::Node;
use super::var::Var;
use super::workspace::{OpWorkspace, Workspaces};
use crate::Scalar;

/// What a backward function may read: the tape, its own output index and the incoming gradient.
pub(crate) struct Ctx<'a, T> {
    pub(crate) nodes: &'a [Node<T>],
    /// What ops keep on this tape beside its nodes (see [`OpWorkspace`]).
    pub(crate) workspaces: &'a Workspaces<T>,
    pub(crate) out: usize,
    pub(crate) grad: &'a ArrayD<T>,
}

impl<T: Scalar> Ctx<'_, T> {
    /// The value of `v`.
    pub(crate) fn value(&self, v: Var) -> &ArrayD<T> {
        &self.nodes[v.0].value
    }

    /// The value of the node being visited.
    pub(crate) fn output(&self) -> &ArrayD<T> {
        &self.nodes[self.out].value
    }

    /// Whether a gradient flows into `v` (the backward function skips the operands without).
    pub(crate) fn wants(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// The workspace of type `W`, made by the forward of the op that keeps it.
    pub(crate) fn workspace<W: OpWorkspace<T>>(&self) -> &W {
        self.workspaces
            .get()
            .expect("an op's workspace is made by its forward")
    }

    /// The gradient slot of `v`, zero-filled with `v`'s shape when still empty: backward products
    /// and sums accumulate straight into it (matrix products with β = 1, `+=` loops).
    pub(crate) fn grad_slot<'g>(&self, grads: &'g mut GradSlots<T>, v: Var) -> &'g mut ArrayD<T> {
        let dim = self.value(v).raw_dim();
        let g = grads.zeroed(v, &dim);
        debug_assert!(g.is_standard_layout() && g.raw_dim() == dim);
        g
    }

    /// The gradient slot of `v` and the β a matrix product accumulating into it should use: 1
    /// when the slot already holds a gradient, 0 when it was empty (its contents are then
    /// unspecified and the product overwrites them, so no zero fill is needed).
    pub(crate) fn grad_slot_beta<'g>(
        &self,
        grads: &'g mut GradSlots<T>,
        v: Var,
    ) -> (&'g mut ArrayD<T>, T) {
        let dim = self.value(v).raw_dim();
        let (g, fresh) = grads.slot_or_fresh(v, &dim);
        debug_assert!(g.is_standard_layout() && g.raw_dim() == dim);
        (g, if fresh { T::zero() } else { T::one() })
    }

    /// [`grad_slot`](Self::grad_slot) as one flat slice.
    pub(crate) fn grad_slice<'g>(&self, grads: &'g mut GradSlots<T>, v: Var) -> &'g mut [T] {
        self.grad_slot(grads, v)
            .as_slice_mut()
            .expect("gradient slots are in standard layout")
    }

    /// The gradient slot of `v` as one flat slice, and whether it was empty (`fresh`): its
    /// contents are then unspecified, and the kernel writes every element without reading it.
    pub(crate) fn grad_slice_or_fresh<'g>(
        &self,
        grads: &'g mut GradSlots<T>,
        v: Var,
    ) -> (&'g mut [T], bool) {
        let (g, fresh) = grads.slot_or_fresh(v, &self.value(v).raw_dim());
        let g = g
            .as_slice_mut()
            .expect("gradient slots are in standard layout");
        (g, fresh)
    }
}
