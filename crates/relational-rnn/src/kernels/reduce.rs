//! Float reductions that vectorise: eight partial sums instead of one running sum (a plain float
//! fold has a fixed order, so the compiler may not split it across SIMD lanes). The result can
//! differ from the sequential sum in the last bits; it is the same on every run.

use std::ops::AddAssign;

use num_traits::Float;

/// What a reduction needs of its element: float arithmetic (every `Scalar` is one).
pub(crate) trait Real: Float + AddAssign {}

impl<T: Float + AddAssign> Real for T {}

pub(crate) const LANES: usize = 8;

/// Σ_i a_i b_i over the common length.
#[inline(always)]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); LANES];
    let (a8, b8) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    if n < LANES {
        // No whole chunk: the fold below would add eight +0 to the tail, which changes nothing
        // (a sum from +0 is never −0 when rounding to nearest), only costs a chain of eight
        // additions (the attention's rows of R = N + 1 are this short).
        return tail;
    }
    for (x, y) in a8.zip(b8) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().fold(tail, |s, &x| s + x)
}

/// Eight dot products side by side: `out[j] = Σ_i a_i bt[i][j]` for the eight columns of `bt`
/// (`[a.len()][8]`, row-major), each bit for bit [`dot`]`(a, column j)`: the same eight partial
/// sums, now one per (lane, column) pair, and the same final fold. Where [`dot`] ends in a serial
/// fold of its eight lanes, this folds eight vectors, one lane per column: a row of attention
/// scores (up to eight keys) costs about what one score did.
#[inline(always)]
pub(crate) fn dots8<T: Real>(a: &[T], bt: &[T]) -> [T; LANES] {
    let n = a.len();
    let bt = &bt[..n * LANES];
    let full = n / LANES * LANES;
    let mut acc = [[T::zero(); LANES]; LANES]; // acc[l][j]: lane l of dot j
    for (a8, b8) in a[..full]
        .chunks_exact(LANES)
        .zip(bt[..full * LANES].chunks_exact(LANES * LANES))
    {
        for l in 0..LANES {
            let (x, row) = (a8[l], &b8[l * LANES..][..LANES]);
            for j in 0..LANES {
                acc[l][j] += x * row[j];
            }
        }
    }
    let mut out = [T::zero(); LANES]; // the tail, from zero in order
    for (&x, row) in a[full..].iter().zip(bt[full * LANES..].chunks_exact(LANES)) {
        for j in 0..LANES {
            out[j] += x * row[j];
        }
    }
    for lane in &acc {
        for j in 0..LANES {
            out[j] += lane[j];
        }
    }
    out
}

/// Σ_i (a_i b_i) c_i over the common length: the same sums, in the same order, as [`dot`] of the
/// rounded products `a ⊙ b` with `c` (so a caller need not store `a ⊙ b`). Layer norm's
/// backward computes `dot3(g, γ, x̂)` with x̂ recomputed in the loop; its tests compare with this.
#[cfg(test)]
pub(crate) fn dot3<T: Real>(a: &[T], b: &[T], c: &[T]) -> T {
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
pub(crate) fn sum<T: Real>(a: &[T]) -> T {
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

    /// Each column of `dots8` is bit for bit `dot` with that column (lengths with and without
    /// full chunks and tails).
    #[test]
    fn dots8_columns_are_dots() {
        for n in [0, 1, 5, 8, 13, 16, 32, 37] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let bt: Vec<f32> = (0..n * LANES)
                .map(|i| (i as f32 * 0.11).cos() * 2.0)
                .collect();
            let got = dots8(&a, &bt);
            for j in 0..LANES {
                let column: Vec<f32> = (0..n).map(|i| bt[i * LANES + j]).collect();
                assert_eq!(got[j].to_bits(), dot(&a, &column).to_bits(), "{n} {j}");
            }
        }
    }

    /// `dot` of rows shorter than a chunk (returned as the tail alone) is bit for bit the
    /// tail folded with the eight empty lanes, as longer rows are: −0 products, a sum that
    /// cancels to zero, a NaN. Checked to fail with the tail summed in reverse.
    #[test]
    fn short_dots_equal_the_lane_fold() {
        let rows: [&[f32]; 5] = [
            &[],
            &[-0.0, 1.5, -0.0],
            &[2.0, -2.0, 0.5, -0.5, 3.0, -3.0, -0.0],
            &[1e30, 1.0, -1e30, 0.25, 7.0],
            &[f32::NAN, 1.0],
        ];
        for a in rows {
            let b: Vec<f32> = (0..a.len())
                .map(|i| if i % 2 == 0 { 1.0 } else { -0.5 })
                .collect();
            let tail = a.iter().zip(&b).fold(0.0f32, |s, (&x, &y)| s + x * y);
            let want = [0.0f32; LANES].iter().fold(tail, |s, &x| s + x);
            assert_eq!(dot(a, &b).to_bits(), want.to_bits(), "{a:?}");
        }
    }

    /// `dot3(a, b, c)` is bit for bit `dot(a ⊙ b, c)` (layer norm backward's reference).
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
