//! Gradient clipping by global norm, PyTorch's `torch.nn.utils.clip_grad_norm_`.
//!
//! With ‖g‖₂ = √(Σ g²) over every entry of every parameter's gradient:
//!
//! ```text
//! c = max_norm / (‖g‖₂ + 10⁻⁶)
//! g ← c · g            when c < 1   (i.e. ‖g‖₂ exceeds max_norm)
//! ```
//!
//! Why global rather than per tensor: scaling all gradients by one factor keeps the update's
//! direction and only shortens it, which is what tames the occasional exploding gradient of
//! backpropagation through long sequences. The 10⁻⁶ keeps the division finite and makes the
//! clipped norm land just under `max_norm`.

use crate::{Grads, Scalar};

/// Rescales `grads` in place so that their global L2 norm is at most `max_norm`, and returns the
/// norm **before** clipping (worth logging: it shows how often and how hard clipping bites).
///
/// Scaling happens, by `max_norm / (norm + 1e-6)`, only when that factor is below 1, exactly as
/// in PyTorch; gradients already within the limit are left bit-for-bit untouched.
///
/// A non-finite norm (a NaN or infinite gradient somewhere) is returned as is and the gradients
/// are **not** scaled: scaling cannot repair them, and the caller decides whether to skip the
/// step or abort the run.
///
/// # Shapes
/// `grads`: any, as made by [`ParamStore::zeros_like`](crate::ParamStore::zeros_like).
///
/// # Panics
/// If `max_norm` is not a positive finite number; training configurations validate it
/// beforehand (with [`ConfigError::require_positive`](crate::ConfigError::require_positive)).
#[track_caller]
pub fn clip_global_norm<T: Scalar>(grads: &mut Grads<T>, max_norm: f64) -> f64 {
    assert!(
        max_norm > 0.0 && max_norm.is_finite(),
        "max_norm must be a positive finite number, got {max_norm}"
    );
    let norm = grads.global_norm();
    if norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            grads.scale(T::from_f64_lossy(coef));
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamStore;
    use ndarray::{ArrayD, IxDyn, arr1};

    /// Gradients [3, 0] and [4]: global norm 5.
    fn norm_five<T: Scalar>() -> Grads<T> {
        let mut s = ParamStore::<T>::new();
        let a = s.add("a", ArrayD::zeros(IxDyn(&[2])));
        let b = s.add("b", ArrayD::zeros(IxDyn(&[1])));
        let mut g = s.zeros_like();
        g.get_mut(a)
            .assign(&arr1(&[T::from_f64_lossy(3.0), T::zero()]).into_dyn());
        g.get_mut(b).fill(T::from_f64_lossy(4.0));
        g
    }

    #[test]
    fn norm_five_clipped_to_one() {
        let mut g = norm_five::<f64>();
        let before = clip_global_norm(&mut g, 1.0);
        assert!((before - 5.0).abs() < 1e-12);
        assert!((g.global_norm() - 1.0).abs() < 1e-6, "{}", g.global_norm());
        // Direction is kept: each entry scaled by 1 / (5 + 1e-6).
        let c = 1.0 / (5.0 + 1e-6);
        let entries: Vec<f64> = g.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        assert_eq!(entries, vec![3.0 * c, 0.0, 4.0 * c]);
    }

    #[test]
    fn norm_five_clipped_in_f32() {
        let mut g = norm_five::<f32>();
        assert!((clip_global_norm(&mut g, 2.0) - 5.0).abs() < 1e-6);
        assert!((g.global_norm() - 2.0).abs() < 1e-5);
    }

    #[test]
    fn below_threshold_is_untouched() {
        for max_norm in [5.1, 10.0, 1e9] {
            let mut g = norm_five::<f64>();
            let before = g.clone();
            assert_eq!(clip_global_norm(&mut g, max_norm), 5.0);
            assert_eq!(g, before);
        }
    }

    #[test]
    fn at_the_threshold_scales_like_pytorch() {
        // max_norm = ‖g‖ = 5: the factor 5 / (5 + 1e-6) is just below 1, so PyTorch scales.
        let mut g = norm_five::<f64>();
        clip_global_norm(&mut g, 5.0);
        let c = 5.0 / (5.0 + 1e-6);
        let entries: Vec<f64> = g.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        assert_eq!(entries, vec![3.0 * c, 0.0, 4.0 * c]);
    }

    #[test]
    fn non_finite_norm_is_reported_and_nothing_is_scaled() {
        let mut g = norm_five::<f64>();
        let id = g.iter().next().unwrap().0;
        g.get_mut(id)[[1]] = f64::NAN;
        let before = g.clone();
        assert!(clip_global_norm(&mut g, 1.0).is_nan());
        let same = g
            .iter()
            .zip(before.iter())
            .all(|((_, a), (_, b))| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(same);

        g.get_mut(id)[[1]] = f64::INFINITY;
        assert_eq!(clip_global_norm(&mut g, 1.0), f64::INFINITY);
        assert_eq!(g.get(id)[[0]], 3.0);
    }

    #[test]
    #[should_panic(expected = "max_norm must be a positive finite number, got 0")]
    fn zero_max_norm_panics() {
        clip_global_norm(&mut norm_five::<f64>(), 0.0);
    }
}
