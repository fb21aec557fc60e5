//! Deterministic values for unit tests: a linear congruential sequence, the same on every platform
//! and independent of any RNG crate's version.

use ndarray::{ArrayD, IxDyn};

/// An array of `shape` filled from the sequence started at `seed`, uniform in [−2, 2).
pub(crate) fn values(shape: &[usize], seed: u32) -> ArrayD<f32> {
    let mut i = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (i >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
    })
}
