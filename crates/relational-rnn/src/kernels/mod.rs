//! CPU machinery below the tape: fast ways to compute what the ops define, never new maths.
//!
//! | module | what |
//! |---|---|
//! | [`gemm`](self) | the f32 matrix product: AVX-512 micro-tiles, weights packed once per tape ([`PackCache`](crate::scalar::PackCache)), large products split over threads; the same bits as matrixmultiply |
//! | [`simd`](self) | run-time choice of AVX2 or AVX-512 for the element-wise kernels (the same bits as the baseline build) |
//! | [`reduce`](self) | sums and dot products in eight lanes, in a fixed order, so that they vectorise |
//! | [`threads`](self) | the thread count ([`set_gemm_threads`](crate::set_gemm_threads)) and the pool of helper threads that large products, packings, copies and Adam's update are split over |
//!
//! Who may import it: `autodiff`, whose ops are the kernels' one intended user; `nn` and the
//! layers above name no kernel. The imports that break this today (`Scalar` dispatching f32
//! products to the GEMM, the gradient norm, the optimisers' and the training step's use of the
//! helper threads) are listed, each with its reason, in `tests/layers.rs`. The layer itself
//! imports only `scalar`. The polynomial `exp`, `tanh` and σ stay in [`fast_math`](crate::fast_math):
//! a leaf with no imports that `Scalar`, below this layer, calls.

pub(crate) mod gemm;
pub(crate) mod reduce;
pub(crate) mod simd;
pub(crate) mod threads;
