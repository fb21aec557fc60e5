//! `exp`, `tanh` and the logistic sigmoid for `f32`, branch-free so that loops over a tensor
//! vectorise, and within a few ulp of the correctly rounded result.
//!
//! Why: libm (`expf`, `tanhf` → `expm1f`) is one call per element, no SIMD, and the transcendental
//! functions are a large share of a training step (see PERFORMANCE.md, section "Design notes moved
//! from the source"). f64 keeps libm (see [`Scalar`](crate::Scalar)), so gradient checks and golden
//! tests are untouched.
//!
//! The polynomials are Cephes' `expf` and `tanhf` (S. L. Moshier), written as straight-line code:
//! every branch of the scalar original is computed and the right value selected.
//!
//! ```text
//! exp(x)  = 2ⁿ · e^r,  n = round(x / ln 2),  r = x − n ln 2 ∈ [−ln2/2, ln2/2],  e^r ≈ degree-7 poly
//! tanh(x) = x + x³ P(x²)                       for |x| < 0.625
//!         = sign(x) · (1 − 2 / (e^{2|x|} + 1))  otherwise
//! σ(x)    = 1 / (1 + e^{−|x|})  for x ≥ 0,  e^{−|x|} / (1 + e^{−|x|})  for x < 0
//! ```

/// Below this `exp` is 0 in f32 (rounded), above the upper bound it is +∞.
const EXP_LO: f32 = -103.972_08;
const EXP_HI: f32 = 88.722_84;

/// `e^x` for f32: relative error ≤ 2 ulp on normal results; exactly 0 at −∞ and for very
/// negative inputs, +∞ at +∞ and above ~88.72, NaN for NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part with few mantissa bits (n · C1 is exact) and the rest.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Round to nearest by adding and removing 1.5 · 2²³ (exact for |v| < 2²²): `f32::round` is a
    // libm call on baseline x86-64 and would stop the loop from vectorising.
    const ROUNDER: f32 = 12_582_912.0;
    let xc = x.clamp(EXP_LO, EXP_HI);
    let t = xc * LOG2E + ROUNDER; // 1.5 · 2²³ + n: n sits in the low mantissa bits
    let n = t - ROUNDER;
    let r = xc - n * C1 - n * C2; // [−ln2/2, ln2/2]
    let r2 = r * r;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r2 + r + 1.0; // e^r
    // 2ⁿ as two powers of two (each exponent within the normal range) so n down to −150 and up
    // to 128 scale correctly, including results in the subnormal range. n is read from the bits
    // of t (an `as i32` conversion would not vectorise: it saturates and maps NaN to 0).
    let n = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let n1 = n >> 1;
    let n2 = n - n1;
    let y = er * pow2(n1) * pow2(n2);
    if x > EXP_HI {
        f32::INFINITY
    } else if x < EXP_LO {
        0.0
    } else {
        y
    }
}

/// 2ⁿ for n in [−126, 127], built from its bits.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// `tanh(x)` for f32: absolute error ≤ 2 ulp of 1 near ±1 and relative error ≤ 3 ulp near 0;
/// exactly ±1 at ±∞, NaN for NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: odd polynomial, no cancellation.
    let z = x * x;
    let p = -5.704_988_7e-3_f32;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    // Large |x|: through exp; e^{2|x|} = ∞ gives exactly 1.
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// The logistic sigmoid `1 / (1 + e^{−x})` for f32, without overflow; exactly 0 at −∞ and 1 at
/// +∞.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_f32(-x.abs()); // (0, 1]
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 97th f32 bit pattern in [−lim, lim] (about 10⁷ values), plus special points.
    fn samples(lim: f32) -> impl Iterator<Item = f32> {
        let top = lim.to_bits();
        (0..top)
            .step_by(97)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .chain([0.0, -0.0, 0.625, -0.625, lim, -lim])
    }

    /// Error in units of the f32 spacing at the exact result (ulps).
    fn ulps(got: f32, exact: f64) -> f64 {
        let e = exact as f32;
        let spacing = f64::from(f32::from_bits(e.abs().to_bits() + 1) - e.abs()).max(1e-45);
        (f64::from(got) - exact).abs() / spacing
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0.0f64;
        for x in samples(88.0) {
            let exact = f64::from(x).exp();
            if exact < f64::from(f32::MIN_POSITIVE) {
                assert!((f64::from(exp_f32(x)) - exact).abs() <= 2e-45, "exp({x})");
                continue;
            }
            worst = worst.max(ulps(exp_f32(x), exact));
        }
        assert!(worst <= 2.0, "worst exp error {worst} ulp");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn tanh_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        for x in samples(20.0) {
            let exact = f64::from(x).tanh();
            // Near ±1 what matters is the absolute error against the spacing of 1.
            let err = if exact.abs() > 0.5 {
                (f64::from(tanh_f32(x)) - exact).abs() / f64::from(f32::EPSILON / 2.0)
            } else {
                ulps(tanh_f32(x), exact)
            };
            worst = worst.max(err);
        }
        assert!(worst <= 3.0, "worst tanh error {worst} ulp");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(100.0), 1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_accurate_and_exact_at_the_ends() {
        let mut worst = 0.0f64;
        for x in samples(80.0) {
            let exact = 1.0 / (1.0 + (-f64::from(x)).exp());
            if exact < f64::from(f32::MIN_POSITIVE) {
                continue;
            }
            worst = worst.max(ulps(sigmoid_f32(x), exact));
        }
        assert!(worst <= 4.0, "worst sigmoid error {worst} ulp");
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(0.0), 0.5);
    }
}
