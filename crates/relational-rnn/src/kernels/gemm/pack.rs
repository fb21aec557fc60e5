//! Packing: copying B (and the rows of A not read in place) into the zero-padded panels the
//! micro-tile reads, on one thread or, for a large B, over the helper threads.
#![allow(unsafe_code)]

use std::ops::Range;

use ndarray::ArrayView2;

use super::{KC, NR};
use crate::kernels::threads::{threads, with_helpers};

/// Where a view's elements lie, for the packing loop's fast paths.
enum Layout<'a> {
    /// Row-major: `(i, j)` at `s[i · cols + j]`.
    Rows(&'a [f32]),
    /// Column-major (a transposed row-major array): `(i, j)` at `s[j · rows + i]`.
    Cols(&'a [f32]),
    /// Anything else (read through ndarray's indexing).
    Strided,
}

fn layout<'a>(v: &ArrayView2<'a, f32>) -> Layout<'a> {
    if let Some(s) = v.to_slice() {
        Layout::Rows(s)
    } else if let Some(s) = (*v).reversed_axes().to_slice() {
        Layout::Cols(s)
    } else {
        Layout::Strided
    }
}

/// Packs rows `depth` of `src` (`k × n`, any strides) into `out`: for each `KC`-deep block of
/// those rows, `width`-column panels, each `kc × width` row-major and zero-padded, reading along
/// `src`'s contiguous axis. B packs whole with `width = NR`; a `KC`-deep block of A packs as
/// rows of `Aᵀ` with `width = MR`, which is A's panel layout (column q holds rows i..i+MR).
pub(super) fn pack_panels(
    src: &ArrayView2<'_, f32>,
    depth: Range<usize>,
    width: usize,
    out: &mut Vec<f32>,
) {
    out.resize(depth.len() * src.ncols().div_ceil(width) * width, 0.0);
    pack_into(src, depth, width, out);
}

/// Packs all of B (`k × n`) into `out` as [`pack_panels`] does, over the
/// [`with_threads`](crate::with_threads) threads when it is large.
pub(super) fn pack_b(b: &ArrayView2<'_, f32>, out: &mut Vec<f32>) {
    if split_packing(b.len()) {
        out.resize(b.nrows() * b.ncols().div_ceil(NR) * NR, 0.0);
        pack_panels_split(b, threads(), out);
    } else {
        pack_panels(b, 0..b.nrows(), NR, out);
    }
}

/// Whether a B of `len` elements is packed over several threads.
pub(super) fn split_packing(len: usize) -> bool {
    threads() >= 2 && len >= PARALLEL_PACK
}

/// [`pack_panels`] into the start of `out`, which must hold `depth.len() · ⌈n / width⌉ · width`
/// floats.
pub(super) fn pack_into(
    src: &ArrayView2<'_, f32>,
    depth: Range<usize>,
    width: usize,
    out: &mut [f32],
) {
    let panels = src.ncols().div_ceil(width);
    let mut dst = 0;
    for p0 in depth.clone().step_by(KC) {
        let kc = KC.min(depth.end - p0);
        pack_block(
            src,
            p0..p0 + kc,
            0..panels,
            width,
            &mut out[dst..dst + kc * panels * width],
        );
        dst += kc * panels * width;
    }
}

/// [`pack_into`] of a whole large B (`k × n`) over `threads` threads, each packing a block of whole
/// panels in every depth block (the same bytes as one thread); `out` must hold `k · ⌈n / NR⌉ · NR`
/// floats. Splitting pays because the copy is bound by memory latency, not bandwidth: a column
/// panel reads rows far apart (see PERFORMANCE.md, section "Design notes moved from the source").
fn pack_panels_split(src: &ArrayView2<'_, f32>, threads: usize, out: &mut [f32]) {
    pack_many_split(&mut [(src.view(), out)], threads);
}

/// [`pack_panels_split`] of several B's at once (one hand-over to the helper threads).
pub(super) fn pack_many_split(jobs: &mut [(ArrayView2<'_, f32>, &mut [f32])], threads: usize) {
    // Panels [starts[t], starts[t + 1]) of every depth block of every B go to thread t.
    type Part<'p, 'v> = Vec<(
        &'p ArrayView2<'v, f32>,
        Range<usize>,
        Range<usize>,
        &'p mut [f32],
    )>;
    let mut parts: Vec<Part<'_, '_>> = (0..threads).map(|_| Vec::new()).collect();
    for (src, out) in jobs.iter_mut() {
        let (k, n) = src.dim();
        let panels = n.div_ceil(NR);
        let mut rest = &mut out[..k * panels * NR];
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            for (t, part) in parts.iter_mut().enumerate() {
                let own = t * panels / threads..(t + 1) * panels / threads;
                let (mine, tail) = std::mem::take(&mut rest).split_at_mut(own.len() * kc * NR);
                part.push((&*src, p0..p0 + kc, own, mine));
                rest = tail;
            }
        }
    }
    let pack = |part: Part<'_, '_>| {
        for (src, depth, panels, out) in part {
            pack_block(src, depth, panels, NR, out);
        }
    };
    with_helpers(threads, |scope| {
        let mut parts = parts.into_iter();
        let mine = parts.next().expect("threads ≥ 2");
        for part in parts {
            scope.spawn(move |_| pack(part));
        }
        pack(mine);
    });
}

/// Packs column panels `panels` (of `width` columns) of rows `depth` (at most `KC`) of `src`
/// into `out` (`panels.len() · depth.len() · width` floats): each panel `kc × width` row-major
/// and zero-padded, reading along `src`'s contiguous axis.
fn pack_block(
    src: &ArrayView2<'_, f32>,
    depth: Range<usize>,
    panels: Range<usize>,
    width: usize,
    out: &mut [f32],
) {
    let (k, n) = src.dim();
    let (p0, kc) = (depth.start, depth.len());
    let layout = layout(src);
    for (panel, j0) in out
        .chunks_exact_mut(kc * width)
        .zip(panels.map(|j| j * width))
    {
        let cols = width.min(n - j0);
        if cols < width {
            panel.fill(0.0); // the padding columns
        }
        match layout {
            Layout::Rows(s) => {
                for (q, row) in panel.chunks_exact_mut(width).enumerate() {
                    let from = (p0 + q) * n + j0;
                    copy_short(&mut row[..cols], &s[from..from + cols]);
                }
            }
            Layout::Cols(s) => {
                // Eight source rows (columns of B) at a time through an 8 × 8 transpose in
                // registers; the rest (a partial panel, the last kc % 8 steps) one by one.
                #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
                let mut done = 0;
                #[cfg(target_arch = "x86_64")]
                if cols == width && width.is_multiple_of(8) && super::has_avx512f() {
                    let from = &s[j0 * k..(j0 + cols - 1) * k + p0 + kc];
                    // SAFETY: AVX-512F (and with it AVX2) is present; `from` holds the `cols`
                    // source rows of `k` floats from column j0 of B, the panel `kc × width`.
                    done = unsafe { x86::transpose_block(from, k, p0, kc, panel, width) };
                }
                for jj in 0..cols {
                    let from = (j0 + jj) * k + p0;
                    for (row, &x) in panel
                        .chunks_exact_mut(width)
                        .zip(&s[from..from + kc])
                        .skip(done)
                    {
                        row[jj] = x;
                    }
                }
            }
            Layout::Strided => {
                for (q, row) in panel.chunks_exact_mut(width).enumerate() {
                    let from = src.row(p0 + q);
                    match from.as_slice() {
                        // Contiguous rows with a gap between them (a column block of a
                        // row-major array: the last rows of a transposed A).
                        Some(from) => copy_short(&mut row[..cols], &from[j0..j0 + cols]),
                        None => {
                            for (d, &x) in row[..cols].iter_mut().zip(from.iter().skip(j0)) {
                                *d = x;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst ← src` for one packed row (at most NR = 32 floats): a whole panel row as a fixed-size copy,
/// shorter ones by element, so that neither is a `memcpy` call per row of every panel (see
/// PERFORMANCE.md, section "Design notes moved from the source").
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    match (
        <&mut [f32; NR]>::try_from(&mut *dst),
        <&[f32; NR]>::try_from(src),
    ) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
    }
}

/// A B (a cached weight, an operand packed for one product, or all terms of a sum together) of at
/// least this many elements is packed over the [`with_threads`](crate::with_threads)
/// threads (the LSTM of config A: 4.2 M for `W_hh`).
pub(super) const PARALLEL_PACK: usize = 1 << 20;

/// The transposing copy of a column-major B (AVX registers).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Packs the first `kc / 8 · 8` steps of a column-major B's panel: `panel[q · width + jj] =
    /// from[jj · k + p0 + q]` for every `jj < width`, by 8 × 8 transposes in AVX registers.
    /// Returns how many steps it packed (the caller copies the rest).
    ///
    /// # Safety
    /// AVX-512F; `width` is a multiple of 8; `from` holds `width` rows of `k` floats (the last
    /// one at least to `p0 + kc`); `panel` holds `kc · width` floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose_block(
        from: &[f32],
        k: usize,
        p0: usize,
        kc: usize,
        panel: &mut [f32],
        width: usize,
    ) -> usize {
        let steps = kc / 8 * 8;
        assert!(width.is_multiple_of(8) && (width - 1) * k + p0 + kc <= from.len());
        assert!(kc * width <= panel.len());
        let out = panel.as_mut_ptr();
        for jb in (0..width).step_by(8) {
            for qb in (0..steps).step_by(8) {
                // SAFETY: rows jb..jb + 8 of `from`, steps p0 + qb..+8, are inside it, and panel
                // rows qb..qb + 8, columns jb..jb + 8, inside the panel (asserted above).
                unsafe {
                    let src = |r: usize| _mm256_loadu_ps(from.as_ptr().add((jb + r) * k + p0 + qb));
                    let (r0, r1, r2, r3) = (src(0), src(1), src(2), src(3));
                    let (r4, r5, r6, r7) = (src(4), src(5), src(6), src(7));
                    let t0 = _mm256_unpacklo_ps(r0, r1);
                    let t1 = _mm256_unpackhi_ps(r0, r1);
                    let t2 = _mm256_unpacklo_ps(r2, r3);
                    let t3 = _mm256_unpackhi_ps(r2, r3);
                    let t4 = _mm256_unpacklo_ps(r4, r5);
                    let t5 = _mm256_unpackhi_ps(r4, r5);
                    let t6 = _mm256_unpacklo_ps(r6, r7);
                    let t7 = _mm256_unpackhi_ps(r6, r7);
                    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                    let dst = |q: usize| out.add((qb + q) * width + jb);
                    _mm256_storeu_ps(dst(0), _mm256_permute2f128_ps::<0x20>(u0, u4));
                    _mm256_storeu_ps(dst(1), _mm256_permute2f128_ps::<0x20>(u1, u5));
                    _mm256_storeu_ps(dst(2), _mm256_permute2f128_ps::<0x20>(u2, u6));
                    _mm256_storeu_ps(dst(3), _mm256_permute2f128_ps::<0x20>(u3, u7));
                    _mm256_storeu_ps(dst(4), _mm256_permute2f128_ps::<0x31>(u0, u4));
                    _mm256_storeu_ps(dst(5), _mm256_permute2f128_ps::<0x31>(u1, u5));
                    _mm256_storeu_ps(dst(6), _mm256_permute2f128_ps::<0x31>(u2, u6));
                    _mm256_storeu_ps(dst(7), _mm256_permute2f128_ps::<0x31>(u3, u7));
                }
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::kernels::gemm::tests::random;

    /// Packing B over threads writes the same bytes as one thread, padding included: row-major,
    /// column-major (a transposed weight) and strided views, a last partial panel, several depth
    /// blocks. Every float is first set to NaN, so a panel no thread wrote would show.
    #[test]
    fn split_packing_writes_the_same_bytes() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let w = random((600, 1000), false, &mut rng);
        let views = [
            w.view(),
            w.t(),
            w.slice(ndarray::s![.., 3..]),
            w.slice(ndarray::s![..;2, ..;3]),
        ];
        for v in views {
            let mut one = Vec::new();
            super::pack_panels(&v, 0..v.nrows(), super::NR, &mut one);
            for threads in [2, 3] {
                let mut many = vec![f32::NAN; one.len()];
                super::pack_panels_split(&v, threads, &mut many);
                let same = one
                    .iter()
                    .zip(&many)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{:?} with strides {:?}, {threads} threads",
                    v.dim(),
                    v.strides()
                );
            }
        }
    }
}
