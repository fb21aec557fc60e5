//! Run-time selection of wider vector instructions for the element-wise kernels.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2: four f32 lanes), so that one build
//! runs on any x86-64 CPU. [`wide`] runs a kernel compiled with AVX2 + FMA (eight lanes) when the
//! CPU has them, checked once at run time. The results are bit-identical either way: the kernels
//! are element-wise IEEE arithmetic (Rust never contracts `a * b + c` into a fused multiply-add,
//! and the reductions have a fixed order, see `reduce`); only the number of lanes changes.
//! The GEMM (`gemm`) picks its AVX-512 kernel at run time the same way.
//!
//! Large kernels (attention, layer norm, the LSTM cell) go through [`wide_kernel`] as a
//! [`Kernel`] type rather than a closure: only then is their body guaranteed to be compiled into
//! the AVX2 function (as closures they could run out of line, on SSE). Kernels over
//! long rows (the LSTM cell, the RMC's gating, Adam's update) use [`wider_kernel`]: sixteen lanes
//! on AVX-512 CPUs.
//! The switch `RRNN_NO_AVX512_KERNELS` (see [`kernels`](super)) keeps those at eight lanes (to
//! compare; the results are the same bits).
//!
//! Its only `unsafe`: calling a `#[target_feature]` function, after the feature check.
#![allow(unsafe_code)]

/// Runs `kernel`, compiled with AVX2 and FMA enabled when this CPU supports them.
///
/// The kernel's loops are inlined into a function carrying those target features, so the
/// compiler vectorises them eight f32 lanes wide.
#[inline(always)]
pub(crate) fn wide<R>(kernel: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2_fma(kernel) };
        }
    }
    kernel()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

/// A kernel for [`wide_kernel`]: a zero-sized type whose `run` is `#[inline(always)]`, so that
/// its body is compiled into the AVX2 wrapper whatever its size. A closure given to [`wide`] (or
/// a fn item, called through `FnOnce`) is inlined there only when LLVM's cost model finds it
/// small enough: the attention and layer-norm kernels were not, and ran out of line four lanes
/// wide (SSE).
pub(crate) trait Kernel<A> {
    fn run(args: A);
}

/// [`wide`] for a [`Kernel`]: runs `K::run(args)` compiled with AVX2 and FMA when the CPU has them.
/// Eight lanes, not sixteen: these kernels' rows are only 5–64 wide (see PERFORMANCE.md, section
/// "Design notes moved from the source").
#[inline(always)]
pub(crate) fn wide_kernel<K: Kernel<A>, A>(args: A) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2_fma_kernel::<K, A>(args) };
        }
    }
    K::run(args)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma_kernel<K: Kernel<A>, A>(args: A) {
    K::run(args)
}

/// [`wide_kernel`] with sixteen lanes (AVX-512) when the CPU has them: for kernels over long rows
/// (the LSTM cell's S = 128–1024 units); the attention and layer-norm kernels (rows of 5–64) stay
/// on eight (see PERFORMANCE.md, section "Design notes moved from the source").
#[inline(always)]
pub(crate) fn wider_kernel<K: Kernel<A>, A>(args: A) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the CPU supports these AVX-512 subsets, AVX2 and FMA (checked just above).
            return unsafe { avx512_kernel::<K, A>(args) };
        }
    }
    wide_kernel::<K, A>(args)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn avx512_kernel<K: Kernel<A>, A>(args: A) {
    K::run(args)
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| has_avx2_fma() && super::avx512_enabled())
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

/// Asks the CPU to bring `s`'s cache lines into L1 ahead of use: a hint, with no effect on
/// results.
#[inline(always)]
pub(crate) fn prefetch<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = s.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(s)).step_by(64) {
            // SAFETY: a prefetch never faults, and the address is inside `s`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

#[cfg(test)]
mod tests {
    use super::wide;
    use crate::Scalar;

    /// The activations and a gate-update expression give the same bits through the AVX2 path as
    /// through the baseline path.
    #[test]
    fn the_wide_path_is_bit_identical_to_the_baseline() {
        let xs: Vec<f32> = (0..100_003)
            .map(|i| ((i as f32) * 0.000_37 - 18.0) * (1.0 + (i % 7) as f32 * 0.1))
            .collect();
        let kernel = |out: &mut Vec<f32>| {
            out.clear();
            out.extend(xs.iter().map(|&x| {
                let (s, t, e) = (x.sigmoid_act(), x.tanh_act(), (x * 0.25).exp_act());
                s * t + (1.0 - s) * e - t * t * x
            }));
        };
        let (mut baseline, mut widened) = (Vec::new(), Vec::new());
        kernel(&mut baseline);
        wide(|| kernel(&mut widened));
        let same = baseline
            .iter()
            .zip(&widened)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && baseline.len() == xs.len());
    }
}
