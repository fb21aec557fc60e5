//! One entry of the tape.

use ndarray::ArrayD;

use super::op::Op;

/// A value on the tape and how it was made.
pub(crate) struct Node<T> {
    pub(crate) value: ArrayD<T>,
    pub(crate) op: Op<T>,
    /// Whether any gradient has to flow into this node (false for constants and for everything
    /// computed from constants only), so backward skips work nobody asked for.
    pub(crate) requires_grad: bool,
}
