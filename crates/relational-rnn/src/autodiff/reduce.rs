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

/// Σ_i (a_i b_i) c_i over the common length: the same sums, in the same order, as [`dot`] of the
/// rounded products `a ⊙ b` with `c` (so a caller need not store `a ⊙ b`).
#[inline(always)]
pub(crate) fn dot3<T: Scalar>(a: &[T], b: &[T], c: &[T]) -> T {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [T::zero(); LANES];
    let (a8, b8, c8) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    let tail = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .zip(c8.remainder())
        .fold(T::zero(), |s, ((&x, &y), &z)| s + x * y * z);
    for ((x, y), z) in a8.zip(b8).zip(c8) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l] * z[l];
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

    /// `dot3(a, b, c)` is bit for bit `dot(a ⊙ b, c)` (layer norm backward relies on it).
    #[test]
    fn dot3_is_dot_of_the_rounded_products() {
        for n in [0, 1, 7, 8, 9, 31, 64, 100] {
            let f = |k: f32| {
                (0..n)
                    .map(|i| (i as f32 * k).sin() * 3.0)
                    .collect::<Vec<f32>>()
            };
            let (a, b, c) = (f(0.37), f(0.11), f(0.53));
            let ab: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
            assert_eq!(dot3(&a, &b, &c).to_bits(), dot(&ab, &c).to_bits(), "{n}");
            assert_eq!(dot(&a, &b).to_bits(), sum(&ab).to_bits(), "{n}");
        }
    }
}
