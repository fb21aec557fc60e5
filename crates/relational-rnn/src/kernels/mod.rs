//! CPU machinery below the tape: fast ways to compute what the ops define, never new maths.
//!
//! | module | what |
//! |---|---|
//! | [`gemm`](self) | the f32 matrix product: AVX-512 micro-tiles, weights packed once per tape ([`PackCache`](crate::scalar::PackCache)), large products split over threads; the same bits as matrixmultiply |
//! | [`simd`](self) | run-time choice of AVX2 or AVX-512 for the element-wise kernels (the same bits as the baseline build) |
//! | [`reduce`](self) | sums and dot products in eight lanes, in a fixed order, so that they vectorise |
//! | [`threads`](self) | the thread count of the running code ([`with_threads`](crate::with_threads)), [`beside`](crate::beside) and the pool of helper threads that large products, packings, copies and Adam's update are split over |
//!
//! Who may import it: `autodiff`, whose ops are the kernels' one intended user; `nn` and the
//! layers above name no kernel. The imports that break this today (`Scalar` dispatching f32
//! products to the GEMM, the gradient norm, the optimisers' and the training step's use of the
//! helper threads) are listed, each with its reason, in `tests/layers.rs`. The layer itself
//! imports only `scalar`. The polynomial `exp`, `tanh` and σ stay in [`fast_math`](crate::fast_math):
//! a leaf with no imports that `Scalar`, below this layer, calls.
//!
//! **One switch for every AVX-512 path.** With the environment variable `RRNN_NO_AVX512_KERNELS`
//! set, neither the GEMM nor the element-wise kernels use AVX-512 (the GEMM falls back to
//! matrixmultiply, the kernels to eight lanes), so a test run on an AVX-512 machine exercises the
//! portable paths too; results then agree to rounding, not to the bit.

pub(crate) mod gemm;
pub(crate) mod reduce;
pub(crate) mod simd;
pub(crate) mod threads;

/// Whether the AVX-512 paths may run: the CPU has AVX-512 F, VL, BW and DQ, and
/// `RRNN_NO_AVX512_KERNELS` is not set (read once).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512_enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("RRNN_NO_AVX512_KERNELS").is_none()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
    })
}
