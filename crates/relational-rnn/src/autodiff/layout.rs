//! How the tape's arrays are laid out: row-major (standard layout) always, so that ops can read
//! them as flat slices, matrices or blocks along an axis.

use ndarray::{ArrayD, ArrayView2};

use crate::Scalar;

/// `a` in standard (row-major) layout, copying only when needed.
pub(crate) fn standard<T: Scalar>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// Views `a` (standard layout) as `[rows, last]`.
pub(crate) fn as_matrix<T>(a: &ArrayD<T>) -> ArrayView2<'_, T> {
    let last = *a.shape().last().expect("matrix view of a 0-d array");
    let rows = a.len() / last.max(1);
    a.view()
        .into_shape_with_order((rows, last))
        .expect("tape values are in standard layout")
}

/// A standard-layout array of `shape` seen along `axis`: `outer` blocks (the leading axes) of `n`
/// rows (`axis`) of `inner` contiguous values (the trailing axes).
pub(crate) fn axis_blocks(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}
