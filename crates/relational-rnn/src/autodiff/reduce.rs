//! Float reductions that vectorise: eight partial sums instead of one running sum (a plain float
//! fold has a fixed order, so the compiler may not split it across SIMD lanes). The result can
//! differ from the sequential sum in the last bits; it is the same on every run.

use crate::Scalar;

const LANES: usize = 8;

/// Σ_i a_i b_i over the common length.
#[inline(always)]
pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); LANES];
    let (a8, b8) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in a8.zip(b8) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().fold(tail, |s, &x| s + x)
}

/// Σ_i a_i.
#[inline(always)]
pub(crate) fn sum<T: Scalar>(a: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let a8 = a.chunks_exact(LANES);
    let tail = a8.remainder().iter().fold(T::zero(), |s, &x| s + x);
    for x in a8 {
        for l in 0..LANES {
            acc[l] += x[l];
        }
    }
    acc.iter().fold(tail, |s, &x| s + x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_equal_the_plain_sums() {
        for n in [0, 1, 7, 8, 9, 31, 64, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let plain_dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let plain_sum: f64 = a.iter().sum();
            assert!((dot(&a, &b) - plain_dot).abs() < 1e-12, "{n}");
            assert!((sum(&a) - plain_sum).abs() < 1e-12, "{n}");
        }
    }
}
