//! Adding a backward function's contributions into its operands' gradient slots: moved in,
//! copied, added into a range along an axis, summed over broadcast axes, or computed element by
//! element, always without a temporary when the slot is still empty.

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};

use super::buffers::GradSlots;
use super::layout::{axis_blocks, standard};
use super::var::Var;
use crate::Scalar;
use crate::kernels::simd;

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
    let (outer, total, inner) = axis_blocks(dim.slice(), axis);
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
