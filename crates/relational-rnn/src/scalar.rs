//! The floating-point element type of every tensor: `f32` for training speed, `f64` for gradient
//! checks and golden tests.
//!
//! One trait bundles what the tape, the layers and the optimisers need (ndarray's `LinalgScalar`
//! for `general_mat_mul`, `num_traits::Float` for the maths, conversions from `f64` for constants),
//! so generic code writes `T: Scalar` instead of a dozen bounds.

use std::cell::RefCell;
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive, ToPrimitive};

pub use crate::kernels::gemm::{PackCache, PackKey, Term};

/// A float the crate computes in: implemented for `f32` and `f64`.
pub trait Scalar:
    Float
    + LinalgScalar
    + ScalarOperand
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Converts an `f64` constant (a hyper-parameter, an init value) to this type.
    fn from_f64_lossy(x: f64) -> Self;
    /// Widens to `f64` for reporting (losses, norms, metrics).
    fn to_f64_lossy(self) -> f64;
    /// Bytes per element (4 or 8), used when writing checkpoints.
    const BYTES: usize;
    /// The safetensors dtype name (`"F32"` or `"F64"`).
    const DTYPE: &'static str;
    /// `e^x` as the tape's ops compute it: libm for f64 (the exact path gradient checks and
    /// golden tests run on), a vectorisable polynomial within 2 ulp for f32
    /// ([`fast_math`](crate::fast_math)).
    fn exp_act(self) -> Self;
    /// `tanh(x)` as the tape's ops compute it (libm for f64, ≤ 3 ulp polynomial for f32).
    fn tanh_act(self) -> Self;
    /// The logistic sigmoid `1 / (1 + e^{−x})`, stable for both signs and exactly 0 or 1 at ∓∞
    /// (libm `exp` for f64, ≤ 4 ulp for f32).
    fn sigmoid_act(self) -> Self;
    /// `c ← a b + β c`, the tape's one matrix product. f32: the crate's AVX-512 GEMM when the
    /// CPU has it (`kernels/gemm`; the same bits as matrixmultiply), taking `b`'s packing
    /// from `cache` under `key` when given (`b` must then be the same matrix every time that key
    /// is used on that cache); f64: ndarray's `general_mat_mul` (the cache is not used).
    ///
    /// # Shapes
    /// `a: [m, k]`, `b: [k, n]`, `c: [m, n]`.
    fn mat_mul(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
        cache: Option<(&RefCell<PackCache>, PackKey)>,
    );

    /// `c ← a b + bias`, the bias row broadcast over `c`'s rows (`linear`'s forward): the same
    /// bits as filling every row of `c` with `bias`, then [`mat_mul`](Self::mat_mul) with β = 1.
    /// f32 with AVX-512 adds the bias as each tile of `c` is stored instead.
    ///
    /// # Shapes
    /// `a: [m, k]`, `b: [k, n]`, `bias: [n]`, `c: [m, n]`.
    fn mat_mul_bias(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        bias: &[Self],
        c: &mut ArrayViewMut2<'_, Self>,
        cache: Option<(&RefCell<PackCache>, PackKey)>,
    ) {
        c.assign(&ndarray::aview1(bias)); // the bias in every row
        Self::mat_mul(a, b, Self::one(), c, cache);
    }

    /// `c ← Σ_s a_s b_s + β c` over `terms` terms `(a_s, b_s) = term(s)`, with the same result
    /// as [`mat_mul`](Self::mat_mul) once per term (β for the first, then 1): the backward of a
    /// weight shared by T steps. f32 with AVX-512 keeps each tile of `c` in cache across the
    /// terms (`kernels/gemm`); otherwise one `mat_mul` per term.
    ///
    /// # Shapes
    /// `a_s: [m, k_s]`, `b_s: [k_s, n]`, `c: [m, n]`.
    fn mat_mul_sum<'a>(
        terms: usize,
        term: Term<'_, 'a, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
    ) {
        for s in 0..terms {
            let (a, b) = term(s);
            let beta = if s == 0 { beta } else { Self::one() };
            Self::mat_mul(&a, &b, beta, c, None);
        }
        if terms == 0 && beta == Self::zero() {
            c.fill(Self::zero());
        }
    }
}

/// σ(x) through libm's `exp`, stable for both signs.
fn sigmoid_libm(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Scalar for f32 {
    fn from_f64_lossy(x: f64) -> Self {
        x as f32
    }
    fn to_f64_lossy(self) -> f64 {
        f64::from(self)
    }
    const BYTES: usize = 4;
    const DTYPE: &'static str = "F32";
    #[inline(always)]
    fn exp_act(self) -> Self {
        crate::fast_math::exp_f32(self)
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        crate::fast_math::tanh_f32(self)
    }
    #[inline(always)]
    fn sigmoid_act(self) -> Self {
        crate::fast_math::sigmoid_f32(self)
    }
    fn mat_mul(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
        cache: Option<(&RefCell<PackCache>, PackKey)>,
    ) {
        crate::kernels::gemm::mat_mul_f32(a, b, beta, c, cache);
    }
    fn mat_mul_bias(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        bias: &[Self],
        c: &mut ArrayViewMut2<'_, Self>,
        cache: Option<(&RefCell<PackCache>, PackKey)>,
    ) {
        crate::kernels::gemm::mat_mul_bias_f32(a, b, bias, c, cache);
    }
    fn mat_mul_sum<'a>(
        terms: usize,
        term: Term<'_, 'a, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
    ) {
        crate::kernels::gemm::mat_mul_sum_f32(terms, term, beta, c);
    }
}

impl Scalar for f64 {
    fn from_f64_lossy(x: f64) -> Self {
        x
    }
    fn to_f64_lossy(self) -> f64 {
        self
    }
    const BYTES: usize = 8;
    const DTYPE: &'static str = "F64";
    #[inline(always)]
    fn exp_act(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn sigmoid_act(self) -> Self {
        sigmoid_libm(self)
    }
    fn mat_mul(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
        _cache: Option<(&RefCell<PackCache>, PackKey)>,
    ) {
        general_mat_mul(1.0, a, b, beta, c);
    }
}
