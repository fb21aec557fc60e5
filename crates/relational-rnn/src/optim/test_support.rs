//! Helpers shared by the optimisers' unit tests: one 2-element parameter, set its gradient, compare.

use ndarray::{ArrayD, arr1};

use crate::{Grads, ParamStore};

/// A store with one 2-element parameter `w = p0` and a gradient holder for it.
pub(super) fn one_param(p0: [f64; 2]) -> (ParamStore<f64>, Grads<f64>) {
    let mut s = ParamStore::new();
    s.add("w", arr1(&p0).into_dyn());
    let g = s.zeros_like();
    (s, g)
}

/// Sets the gradient of the single parameter to `v`.
pub(super) fn set(g: &mut Grads<f64>, v: [f64; 2]) {
    let id = g.iter().next().expect("one parameter").0;
    g.get_mut(id).assign(&arr1(&v).into_dyn());
}

/// Asserts `a` equals `want` to 1e-12.
#[track_caller]
pub(super) fn assert_close(a: &ArrayD<f64>, want: [f64; 2]) {
    for (x, w) in a.iter().zip(want) {
        assert!((x - w).abs() < 1e-12, "got {a}, want {want:?}");
    }
}
