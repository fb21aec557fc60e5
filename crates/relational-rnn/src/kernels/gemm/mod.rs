//! The f32 matrix product: AVX-512, packed weights reused across a tape's steps, and the same
//! bits as matrixmultiply.
//!
//! matrixmultiply (behind ndarray's `general_mat_mul`) copies both operands into packed panels on
//! every call, so a recurrent model re-packs the same weight in each of its T products forward and
//! backward. Here a weight's packed panels are made once per tape and kept in a [`PackCache`]
//! (keyed by tape node; node values never change while a tape lives), so T products share one copy.
//! A row- or column-major A (every activation and gradient on the tape) and a row-major B of whole
//! 32-column panels that stays in L2 (at most 1 MB, rows at most 8 KB apart) are read where they
//! lie. Only strided views, the rows after the last whole block of 12, and the other right operands
//! are packed (a column-major B through 8 × 8 transposes in registers), into a reused thread-local
//! workspace (a warm step allocates nothing here). While a tile runs, the next B panel is
//! prefetched into L1, and so is the next block of an A read in place (in backward, A is often a
//! value the forward wrote long before, out of L2). The measurements behind these choices: see
//! PERFORMANCE.md, section "Design notes moved from the source".
//!
//! ```text
//! C[i, j..j+16] (+)= Σ_p A[i, p] · B[p, j..j+16]     one zmm per 16 columns of C
//! ```
//!
//! Packed B: for each `KC`-deep block of rows, `NR`-wide column panels, each `kc × NR` row-major
//! and zero-padded (B read in place: the same panels, rows a row stride apart). Packed A: for each
//! `KC` block, `MR`-row panels, each `kc × MR` (column q holds rows i..i+MR); A read in place is
//! addressed by its strides instead. The micro-tile keeps
//! `MR × NR` of C in 24 zmm registers.
//!
//! # Same bits as matrixmultiply
//! matrixmultiply's f32 kernels (AVX2+FMA and AVX-512 alike) compute each element of C as a
//! sequence of fused multiply-adds over `p` in blocks of `KC` = 256, starting from zero, and fold
//! each block into C as `C ← acc` (β = 0, first block) or `C ← acc + C`. This module keeps exactly
//! that order, whatever its own tile shape, so switching GEMMs changes no result (unit test below;
//! 200 training steps give the same parameter bytes). Other β and CPUs without AVX-512 go to
//! `general_mat_mul`; so does f64 (gradient checks), through [`Scalar::mat_mul`](crate::Scalar).
//!
//! Notation: `m × k` times `k × n`.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis, aview1};

use super::threads::{gemm_threads, with_helpers};

/// matrixmultiply's f32 `KC`: the depth of one accumulation block (see the module docs).
pub(crate) const KC: usize = 256;
/// Rows of C per micro-tile.
const MR: usize = 12;
/// Columns of C per micro-tile: two zmm vectors. 12 × 2 accumulators + 2 B rows + 1 broadcast
/// fit the 32 zmm registers.
const NR: usize = 32;
/// Rows of C per pass over B's panels: 4 micro-tiles, so the C rows a pass writes stay few.
const MC: usize = 4 * MR;

/// Packed right-hand operands of one tape's matrix products (the weights of `linear`, plain for
/// forward and transposed for backward), by (node, transposed): T steps share one copy. A weight
/// the tile can read in place (see `direct_b`: row-major, up to 1 MB) is not packed at all. Kept by
/// [`Graph`](crate::Graph), emptied by `clear()` (buffers kept). Opaque; f32 only (f64 products
/// never pack).
#[derive(Debug, Default)]
pub struct PackCache {
    entries: Vec<Packed>,
}

/// What a [`PackCache`] entry packs: (tape node, transposed).
pub type PackKey = (usize, bool);

/// One packed operand, what it packs (`None`: free for reuse) and its `[k, n]`.
#[derive(Debug, Default)]
struct Packed {
    key: Option<PackKey>,
    dim: (usize, usize),
    data: Vec<f32>,
}

impl PackCache {
    /// Forgets every packing (the tape is being cleared), keeping the buffers.
    pub(crate) fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| e.key = None);
    }

    /// The packing of `b` under `key`, made now (into a free buffer) if there is none yet.
    fn get_or_pack(&mut self, key: PackKey, b: &ArrayView2<'_, f32>) -> &[f32] {
        let i = match self.entries.iter().position(|e| e.key == Some(key)) {
            Some(i) => {
                assert_eq!(
                    self.entries[i].dim,
                    b.dim(),
                    "packed operand {key:?} reused for a matrix of another shape"
                );
                i
            }
            None => {
                let free = self.entries.iter().position(|e| e.key.is_none());
                let i = free.unwrap_or_else(|| {
                    self.entries.push(Packed::default());
                    self.entries.len() - 1
                });
                pack_b(b, &mut self.entries[i].data);
                self.entries[i].key = Some(key);
                self.entries[i].dim = b.dim();
                i
            }
        };
        &self.entries[i].data
    }
}

thread_local! {
    /// Packed A (the rows not read in place) and packed B (calls without a cache).
    static WORKSPACE: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether the packed AVX-512 path serves this call.
fn fast_path(beta: f32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (beta == 0.0 || beta == 1.0) && x86::has_avx512f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = beta;
        false
    }
}

fn check(a: &ArrayView2<'_, f32>, b: &ArrayView2<'_, f32>, c: &ArrayViewMut2<'_, f32>) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n),
        "mat_mul: {:?} · {:?} → {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
}

/// What C holds before the product is added to it.
#[derive(Clone, Copy)]
enum Init<'b> {
    /// Nothing (β = 0: C's old contents are never read).
    Zero,
    /// C's own contents (β = 1).
    Keep,
    /// A bias row, broadcast over the rows of C (read as each tile is stored; C is not read).
    Bias(&'b [f32]),
}

impl Init<'_> {
    fn from_beta(beta: f32) -> Self {
        if beta == 0.0 { Init::Zero } else { Init::Keep }
    }

    /// The same start, for the columns of C from `first` on.
    fn at_column(self, first: usize) -> Self {
        match self {
            Init::Bias(bias) => Init::Bias(&bias[first..]),
            other => other,
        }
    }
}

/// `C ← A B + β C` for f32. With a `cache`, `b`'s packing is taken from (or added to) it under
/// `key`: `b` must be the same matrix every time the key is given (a tape node's value, or its
/// transpose); without, `b` packs into this thread's workspace.
///
/// # Shapes
/// `a: [m, k]`, `b: [k, n]`, `c: [m, n]`; any strides (`c`'s must not alias).
pub(crate) fn mat_mul_f32(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
    cache: Option<(&RefCell<PackCache>, PackKey)>,
) {
    if !fast_path(beta) {
        return general_mat_mul(1.0, a, b, beta, c);
    }
    product(a, b, Init::from_beta(beta), c, cache);
}

/// `C ← A B + bias` (the bias row broadcast over C's rows) for f32: the same bits as filling each
/// row of C with `bias`, then [`mat_mul_f32`] with β = 1, without that pass over C (a `memcpy` call
/// per row; see PERFORMANCE.md, section "Design notes moved from the source"). The tile adds the
/// bias where it would have added C.
///
/// # Shapes
/// `a: [m, k]`, `b: [k, n]`, `bias: [n]`, `c: [m, n]`.
pub(crate) fn mat_mul_bias_f32(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    bias: &[f32],
    c: &mut ArrayViewMut2<'_, f32>,
    cache: Option<(&RefCell<PackCache>, PackKey)>,
) {
    assert_eq!(bias.len(), c.ncols(), "mat_mul_bias: bias length");
    if !fast_path(1.0) {
        c.assign(&aview1(bias)); // the bias in every row
        return general_mat_mul(1.0, a, b, 1.0, c);
    }
    product(a, b, Init::Bias(bias), c, cache);
}

/// The packed path of [`mat_mul_f32`] and [`mat_mul_bias_f32`].
fn product(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    init: Init<'_>,
    c: &mut ArrayViewMut2<'_, f32>,
    cache: Option<(&RefCell<PackCache>, PackKey)>,
) {
    check(a, b, c);
    WORKSPACE.with(|w| {
        let (wa, wb) = &mut *w.borrow_mut();
        let n = b.ncols();
        if let Some(d) = direct_b(b) {
            return packed_product(a, BPanels::InPlace(d), n, init, c, wa);
        }
        let n_pad = n.div_ceil(NR) * NR;
        match cache {
            Some((cache, key)) => {
                let mut cache = cache.borrow_mut();
                let data = cache.get_or_pack(key, b);
                packed_product(a, BPanels::Packed { data, n_pad }, n, init, c, wa);
            }
            None => {
                pack_b(b, wb);
                packed_product(a, BPanels::Packed { data: wb, n_pad }, n, init, c, wa);
            }
        }
    });
}

/// The `s`-th term `(a_s, b_s)` of a sum of products, for
/// [`Scalar::mat_mul_sum`](crate::Scalar::mat_mul_sum) (in f32 `mat_mul_sum_f32`, below).
pub type Term<'t, 'a, T> = &'t (dyn Fn(usize) -> (ArrayView2<'a, T>, ArrayView2<'a, T>) + Sync);

thread_local! {
    /// Packed B of every term, the packed last rows of every A, and where each term's start.
    static SUM_WORKSPACE: RefCell<SumWorkspace> = const {
        RefCell::new(SumWorkspace { b: Vec::new(), tails: Vec::new(), terms: Vec::new() })
    };
}

/// Packed operands of one sum of products.
struct SumWorkspace {
    /// Every term's B, packed as [`pack_panels`] lays it out, one after the other.
    b: Vec<f32>,
    /// Every term's rows of A after the last whole MR-row block, packed.
    tails: Vec<f32>,
    /// Each term's A (where it lies, or `None` when it has fewer than MR rows), depth, and where
    /// its packings start in `b` and `tails`.
    terms: Vec<SumTerm>,
}

/// One term of a sum of products, as [`sum_range`] reads it.
#[derive(Clone, Copy)]
struct SumTerm {
    a: Option<DirectA>,
    k: usize,
    /// B read in place, or packed at `b_at`.
    b: Option<DirectB>,
    b_at: usize,
    tail_at: usize,
}

/// `C ← Σ_s A_s B_s + β C` over `terms` terms, with the same bits as the calls
/// `C ← A_0 B_0 + β C`, then `C ← A_s B_s + C` for s = 1, 2, … in turn: the backward of a weight
/// shared by T steps, `δW = Σ_t x_tᵀ δy_t`. Each micro-tile of C stays in L1 across all the terms
/// instead of being loaded and stored once per term (for the LSTM of config A, a 16 MB gradient
/// per step, which made that product memory-bound).
///
/// # Shapes
/// `A_s: [m, k_s]`, `B_s: [k_s, n]`, `c: [m, n]`.
pub(crate) fn mat_mul_sum_f32(
    terms: usize,
    term: Term<'_, '_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let (mut depth, mut deepest) = (0, 0);
    let mut in_place = true;
    for s in 0..terms {
        let (a, b) = term(s);
        check(&a, &b, c);
        in_place &= a.ncols() == 0 || direct_a(&a).is_some();
        depth += a.ncols();
        deepest = deepest.max(a.ncols());
    }
    let (m, n) = c.dim();
    // Keeping C's tiles in L1 pays when C is large next to each term's B (a weight of S rows
    // times T batches of 32–128 rows); for deep terms (the RMC's 512 rows of slots × batch) the
    // packed B's of all terms would not stay in L2, and one product per term is faster.
    let pays = m >= 4 * deepest;
    if !(fast_path(beta) && in_place && pays && depth > 0 && m > 0 && n > 0) {
        for s in 0..terms {
            let (a, b) = term(s);
            mat_mul_f32(&a, &b, if s == 0 { beta } else { 1.0 }, c, None);
        }
        if terms == 0 && beta == 0.0 {
            c.fill(0.0);
        }
        return;
    }
    let full = in_place_rows(m);
    let n_pad = n.div_ceil(NR) * NR;
    SUM_WORKSPACE.with(|w| {
        let ws = &mut *w.borrow_mut();
        let SumWorkspace {
            b: bp,
            tails,
            terms: list,
        } = ws;
        // The buffers only grow; every float a term reads is written below (padding included),
        // so nothing is zeroed first (that memset was 4 MB a step for the LSTM of config A).
        list.clear();
        let (mut b_len, mut tail_len) = (0, 0);
        let split = split_packing(depth * n) && 2 * m * n * depth >= PARALLEL_FLOPS;
        for s in 0..terms {
            let (a, b) = term(s);
            let k = a.ncols();
            let direct = direct_b(&b);
            list.push(SumTerm {
                a: direct_a(&a),
                k,
                b: direct,
                b_at: b_len,
                tail_at: tail_len,
            });
            if direct.is_none() {
                let at = b_len;
                b_len += k * n_pad;
                if bp.len() < b_len {
                    bp.resize(b_len, 0.0);
                }
                if !split {
                    pack_into(&b, 0..k, NR, &mut bp[at..b_len]);
                }
            }
            if full < m {
                let at = tail_len;
                tail_len += k * MR;
                if tails.len() < tail_len {
                    tails.resize(tail_len, 0.0);
                }
                pack_into(
                    &a.slice(ndarray::s![full.., ..]).t(),
                    0..k,
                    MR,
                    &mut tails[at..tail_len],
                );
            }
        }
        if split {
            // Every term's B over the threads, in one hand-over.
            let mut rest = bp.as_mut_slice();
            let mut jobs = Vec::with_capacity(terms);
            for s in (0..terms).filter(|&s| list[s].b.is_none()) {
                let (_, b) = term(s);
                let (out, tail) = std::mem::take(&mut rest).split_at_mut(b.nrows() * n_pad);
                jobs.push((b, out));
                rest = tail;
            }
            pack_many_split(&mut jobs, gemm_threads());
        }
        let packed = Packings {
            b: bp,
            tails,
            terms: list,
            n_pad,
            full,
        };
        let panels = n_pad / NR;
        let threads = gemm_threads().min(panels);
        if threads < 2 || 2 * m * n * depth < PARALLEL_FLOPS {
            return sum_range(&packed, 0, beta, c);
        }
        let mut parts = Vec::with_capacity(threads);
        let mut rest = c.view_mut();
        let mut first = 0;
        for t in 0..threads {
            let take = (panels - first) / (threads - t);
            let cols = (take * NR).min(rest.ncols());
            let (part, tail) = rest.split_at(Axis(1), cols);
            parts.push((first, part));
            rest = tail;
            first += take;
        }
        let packed = &packed;
        with_helpers(threads, |scope| {
            let mut parts = parts.into_iter();
            let (mine_first, mut mine) = parts.next().expect("threads ≥ 2");
            for (first, mut part) in parts {
                scope.spawn(move |_| sum_range(packed, first, beta, &mut part));
            }
            sum_range(packed, mine_first, beta, &mut mine);
        });
    });
}

/// The packed operands [`sum_range`] reads.
struct Packings<'w> {
    b: &'w [f32],
    tails: &'w [f32],
    terms: &'w [SumTerm],
    n_pad: usize,
    /// Rows of C in whole MR-row blocks (A read in place); the rest read `tails`.
    full: usize,
}

/// The sum of products for the columns of `c`, which start at panel `first` of the packed B's.
fn sum_range(w: &Packings<'_>, first: usize, beta: f32, c: &mut ArrayViewMut2<'_, f32>) {
    let (m, n) = c.dim();
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    let c0 = c.as_mut_ptr();
    for (local, j0) in (0..n).step_by(NR).enumerate() {
        let panel = first + local;
        let cols = NR.min(n - j0);
        for i0 in (0..m).step_by(MR) {
            let rows = MR.min(m - i0);
            // SAFETY (of the offset): (i0, j0) is inside C.
            let c_tile = unsafe { c0.offset(i0 as isize * rsc + j0 as isize * csc) };
            // The tile of C stays in L1 across the terms: each term's tiles add to it in turn.
            let mut add = beta == 1.0;
            for &SumTerm {
                a,
                k,
                b,
                b_at,
                tail_at,
            } in w.terms
            {
                let bp = match b {
                    Some(d) => BPanels::InPlace(d),
                    None => BPanels::Packed {
                        data: &w.b[b_at..],
                        n_pad: w.n_pad,
                    },
                };
                for p0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - p0);
                    let (b_panel, b_row) = bp.panel(p0, kc, panel);
                    let (a_ptr, a_row, a_step, a_rows) = match a {
                        Some(d) if i0 < w.full => {
                            let at = i0 as isize * d.row + p0 as isize * d.step;
                            // SAFETY (of the offset): row i0 < m and depth p0 < k of A_s.
                            (unsafe { d.ptr.offset(at) }, d.row, d.step, rows)
                        }
                        _ => (
                            w.tails[tail_at + p0 * MR..][..kc * MR].as_ptr(),
                            1,
                            MR as isize,
                            MR,
                        ),
                    };
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX-512F was checked by `fast_path`; A's block (in place or
                    // packed) and the B panel hold `kc` steps of MR and NR floats; (i0.., j0..)
                    // for `rows × cols` is inside C, whose pointer and strides come from the
                    // live mutable view.
                    unsafe {
                        x86::tile(x86::Tile {
                            kc,
                            a: a_ptr,
                            a_row,
                            a_step,
                            a_rows,
                            b: b_panel,
                            b_row,
                            next_b: b_panel,
                            next_a: std::ptr::null(),
                            c: c_tile,
                            rsc,
                            csc,
                            rows,
                            cols,
                            add,
                            bias: std::ptr::null(),
                        });
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = (a_ptr, a_row, a_step, a_rows, b_panel, b_row, c_tile, cols);
                    add = true;
                }
            }
            // This path needs Σ k_s > 0, so some term wrote the tile.
            debug_assert!(add);
        }
    }
}

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
fn pack_panels(src: &ArrayView2<'_, f32>, depth: Range<usize>, width: usize, out: &mut Vec<f32>) {
    out.resize(depth.len() * src.ncols().div_ceil(width) * width, 0.0);
    pack_into(src, depth, width, out);
}

/// Packs all of B (`k × n`) into `out` as [`pack_panels`] does, over the
/// [`set_gemm_threads`](crate::set_gemm_threads) threads when it is large.
fn pack_b(b: &ArrayView2<'_, f32>, out: &mut Vec<f32>) {
    if split_packing(b.len()) {
        out.resize(b.nrows() * b.ncols().div_ceil(NR) * NR, 0.0);
        pack_panels_split(b, gemm_threads(), out);
    } else {
        pack_panels(b, 0..b.nrows(), NR, out);
    }
}

/// Whether a B of `len` elements is packed over several threads.
fn split_packing(len: usize) -> bool {
    gemm_threads() >= 2 && len >= PARALLEL_PACK
}

/// [`pack_panels`] into the start of `out`, which must hold `depth.len() · ⌈n / width⌉ · width`
/// floats.
fn pack_into(src: &ArrayView2<'_, f32>, depth: Range<usize>, width: usize, out: &mut [f32]) {
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
fn pack_many_split(jobs: &mut [(ArrayView2<'_, f32>, &mut [f32])], threads: usize) {
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
                if cols == width && width.is_multiple_of(8) && x86::has_avx512f() {
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

/// Products of at least this many FLOPs are split over the
/// [`set_gemm_threads`](crate::set_gemm_threads) threads (a split hands parts to parked helper
/// threads and waits for them; the LSTM of config A multiplies 268 MFLOP at a time, config C's
/// products are under 20 MFLOP and stay on one thread).
const PARALLEL_FLOPS: usize = 64_000_000;

/// A B (a cached weight, an operand packed for one product, or all terms of a sum together) of at
/// least this many elements is packed over the [`set_gemm_threads`](crate::set_gemm_threads)
/// threads (the LSTM of config A: 4.2 M for `W_hh`).
const PARALLEL_PACK: usize = 1 << 20;

/// `C ← A B + init` with B already packed (`k = a.ncols()`, `n` columns).
fn packed_product(
    a: &ArrayView2<'_, f32>,
    bp: BPanels<'_>,
    n: usize,
    init: Init<'_>,
    c: &mut ArrayViewMut2<'_, f32>,
    wa: &mut Vec<f32>,
) {
    let (m, k) = a.dim();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        match init {
            Init::Zero => c.fill(0.0),
            Init::Keep => {}
            Init::Bias(bias) => c.assign(&aview1(bias)),
        }
        return;
    }
    let n_pad = n.div_ceil(NR) * NR;
    let panels = n_pad / NR;
    let threads = gemm_threads().min(panels);
    if threads < 2 || 2 * m * n * k < PARALLEL_FLOPS {
        return panel_range(a, bp, 0, init, c, wa);
    }
    // Column blocks of whole panels, one per thread; this thread takes the first.
    let mut parts = Vec::with_capacity(threads);
    let mut rest = c.view_mut();
    let mut first = 0;
    for t in 0..threads {
        let take = (panels - first) / (threads - t);
        let cols = (take * NR).min(rest.ncols());
        let (part, tail) = rest.split_at(Axis(1), cols);
        parts.push((first, part));
        rest = tail;
        first += take;
    }
    with_helpers(threads, |scope| {
        let mut parts = parts.into_iter();
        let (mine_first, mut mine) = parts.next().expect("threads ≥ 2");
        for (first, mut part) in parts {
            let init = init.at_column(first * NR);
            scope.spawn(move |_| {
                WORKSPACE.with(|w| {
                    let wa = &mut w.borrow_mut().0;
                    panel_range(a, bp, first, init, &mut part, wa);
                });
            });
        }
        panel_range(a, bp, mine_first, init, &mut mine, wa);
    });
}

/// Where A's elements lie when the micro-tile can read them in place: `(i, p)` at
/// `ptr + i · row + p · step`.
#[derive(Clone, Copy)]
struct DirectA {
    ptr: *const f32,
    row: isize,
    step: isize,
}

// SAFETY: a `DirectA` only reads, through a pointer taken from a view that outlives every
// thread of the product using it (scoped threads).
unsafe impl Sync for DirectA {}

/// A row-major (`step` 1) or column-major (`row` 1) A is read in place: the tile broadcasts one
/// element per row and step wherever it lies, so packing it (a transposing copy per call) buys
/// nothing (see PERFORMANCE.md, section "Design notes moved from the source"). Anything else is
/// packed.
fn direct_a(a: &ArrayView2<'_, f32>) -> Option<DirectA> {
    let (m, k) = a.dim();
    let (row, step) = (a.strides()[0], a.strides()[1]);
    let ptr = a.as_ptr();
    if m == 0 || k == 0 {
        None
    } else if step == 1 || k == 1 {
        (row > 0).then_some(DirectA { ptr, row, step: 1 })
    } else if row == 1 {
        (step > 0).then_some(DirectA { ptr, row: 1, step })
    } else {
        None
    }
}

/// Where the micro-tile finds B's `NR`-column panels.
#[derive(Clone, Copy)]
enum BPanels<'b> {
    /// Packed by [`pack_panels`]: `n_pad` (padded) columns, each depth block's panels in turn.
    Packed { data: &'b [f32], n_pad: usize },
    /// Read where B lies (see [`direct_b`]).
    InPlace(DirectB),
}

impl BPanels<'_> {
    /// Where panel `panel` of the depth block `p0..p0 + kc` starts, and the distance between its
    /// rows.
    fn panel(&self, p0: usize, kc: usize, panel: usize) -> (*const f32, usize) {
        match *self {
            BPanels::Packed { data, n_pad } => {
                (data[p0 * n_pad + panel * kc * NR..][..kc * NR].as_ptr(), NR)
            }
            BPanels::InPlace(d) => {
                assert!(
                    p0 + kc <= d.k && (panel + 1) * NR <= d.n,
                    "B panel out of range"
                );
                // SAFETY (of the offset): row p0 < k and column panel · NR < n of B.
                (unsafe { d.ptr.add(p0 * d.row + panel * NR) }, d.row)
            }
        }
    }
}

/// A row-major B read in place: `(p, j)` at `ptr + p · row + j`, `k × n`.
#[derive(Clone, Copy)]
struct DirectB {
    ptr: *const f32,
    row: usize,
    k: usize,
    n: usize,
}

// SAFETY: a `DirectB` only reads, through a pointer taken from a view that outlives every
// thread of the product using it (scoped threads).
unsafe impl Sync for DirectB {}
unsafe impl Send for DirectB {}

/// Largest B read in place: it must stay in L2 (2 MB here), which the tile reads it from.
const IN_PLACE_B_BYTES: usize = 1 << 20;

/// Widest row stride (floats) of a B read in place. A panel's rows lie a stride apart, so they
/// share few L1 sets: rows far apart are packed instead (the bound lies between the strides of
/// configs B and A; see PERFORMANCE.md, section "Design notes moved from the source").
const IN_PLACE_B_ROW: usize = 2048;

/// A row-major B with whole panels (`n` a multiple of `NR`), small enough to stay in L2 and with
/// rows close enough, is read in place instead of being packed (a weight is then not cached
/// either), which saves the packing copy (see PERFORMANCE.md, section "Design notes moved from the
/// source").
fn direct_b(b: &ArrayView2<'_, f32>) -> Option<DirectB> {
    let (k, n) = b.dim();
    let (row, step) = (b.strides()[0], b.strides()[1]);
    let fits = k * n * std::mem::size_of::<f32>() <= IN_PLACE_B_BYTES;
    let near = row >= n as isize && row as usize <= IN_PLACE_B_ROW;
    (k > 0 && n > 0 && n.is_multiple_of(NR) && (step == 1 || n == 1) && near && fits).then(|| {
        DirectB {
            ptr: b.as_ptr(),
            row: row as usize,
            k,
            n,
        }
    })
}

/// How many of A's `m` rows the tile reads in place (when A allows it at all): blocks of 12, and
/// a last block of 4 or 8 rows, which the tile also reads exactly (every width in the models is
/// a multiple of 4); other remainders are packed, zero-padded to 12.
fn in_place_rows(m: usize) -> usize {
    match m % MR {
        0 | 4 | 8 => m,
        _ => m / MR * MR,
    }
}

/// The blocked loops over the columns of `c`, which start at panel `first` of the packed B
/// (`n_pad` padded columns in all; `init` starts at `c`'s first column).
fn panel_range(
    a: &ArrayView2<'_, f32>,
    bp: BPanels<'_>,
    first: usize,
    init: Init<'_>,
    c: &mut ArrayViewMut2<'_, f32>,
    wa: &mut Vec<f32>,
) {
    let (m, k) = a.dim();
    let n = c.ncols();
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    let c0 = c.as_mut_ptr();
    // Whole MR-row blocks of a row- or column-major A are read where they lie; the rest of A
    // (all of it when strided, else the last partial block) is packed for each depth block.
    let direct = direct_a(a);
    let full = if direct.is_some() {
        in_place_rows(m)
    } else {
        0
    };
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        if full < m {
            let rest = a.slice(ndarray::s![full.., ..]);
            pack_panels(&rest.t(), p0..p0 + kc, MR, wa);
        }
        // The first depth block starts from `init`, the others add to C.
        let (add, bias) = match init {
            Init::Bias(bias) if p0 == 0 => (false, Some(bias)),
            Init::Zero if p0 == 0 => (false, None),
            _ => (true, None),
        };
        for g0 in (0..m).step_by(MC) {
            let group = MC.min(m - g0);
            for (local, j0) in (0..n).step_by(NR).enumerate() {
                let panel = first + local;
                let cols = NR.min(n - j0);
                let (b_panel, b_row) = bp.panel(p0, kc, panel);
                let next_panel = if j0 + NR < n {
                    bp.panel(p0, kc, panel + 1).0
                } else {
                    b_panel
                };
                for i0 in (g0..g0 + group).step_by(MR) {
                    let rows = MR.min(m - i0);
                    // The next tile's A in place: the next block of the group, or after the
                    // group's last panel the next group's first (the other panels read it hot).
                    let next_i = if i0 + MR < g0 + group {
                        Some(i0 + MR)
                    } else if j0 + NR >= n && g0 + MC < full {
                        Some(g0 + MC)
                    } else {
                        None
                    };
                    let next_a = match (direct.as_ref(), next_i) {
                        (Some(d), Some(i)) if i < full && (local == 0 || i == g0 + MC) => {
                            // SAFETY (of the offset): row i < full ≤ m and depth p0 < k of A.
                            unsafe { d.ptr.offset(i as isize * d.row + p0 as isize * d.step) }
                        }
                        _ => std::ptr::null(),
                    };
                    let (a_ptr, a_row, a_step, a_rows) = match direct {
                        // SAFETY (of the offset): row i0 < full ≤ m and depth p0 < k of A.
                        Some(d) if i0 < full => (
                            unsafe { d.ptr.offset(i0 as isize * d.row + p0 as isize * d.step) },
                            d.row,
                            d.step,
                            rows, // 12, or a last block of 4 or 8 (`in_place_rows`)
                        ),
                        _ => (
                            wa[(i0 - full) * kc..][..MR * kc].as_ptr(),
                            1,
                            MR as isize,
                            MR,
                        ),
                    };
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX-512F was checked by `fast_path`; A (packed, or a whole block
                    // of MR rows read in place) and the B panel hold `kc` steps of MR and NR
                    // floats; (i0.., j0..) for `rows × cols` is inside C, whose pointer and
                    // strides come from the live mutable view.
                    unsafe {
                        x86::tile(x86::Tile {
                            kc,
                            a: a_ptr,
                            a_row,
                            a_step,
                            a_rows,
                            b: b_panel,
                            b_row,
                            next_b: next_panel,
                            next_a,
                            c: c0.offset(i0 as isize * rsc + j0 as isize * csc),
                            rsc,
                            csc,
                            rows,
                            cols,
                            add,
                            bias: bias.map_or(std::ptr::null(), |b| b[j0..].as_ptr()),
                        });
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = (
                        a_ptr, a_row, a_step, a_rows, b_panel, b_row, next_panel, next_a, rows,
                        cols, add, bias, c0, rsc, csc,
                    );
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    pub(super) fn has_avx512f() -> bool {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
    }

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

    /// One micro-tile: packed panels of depth `kc`, and `rows × cols` of C at `c`.
    pub(super) struct Tile {
        pub kc: usize,
        /// A's element (row r, step q) is at `a + r · a_row + q · a_step`: packed panels have
        /// `(1, MR)`, a row-major A `(lda, 1)`, a column-major one `(1, lda)`.
        pub a: *const f32,
        pub a_row: isize,
        pub a_step: isize,
        /// Rows of A readable: MR, or 4 or 8 for the last block of an A read in place.
        pub a_rows: usize,
        /// B's row q of the panel (`NR` floats) is at `b + q · b_row`: `NR` when packed, B's row
        /// stride when read in place.
        pub b: *const f32,
        pub b_row: usize,
        /// The B panel the next tiles will read (prefetched while this one runs), laid out as `b`.
        pub next_b: *const f32,
        /// The A block (read in place, laid out as `a`) the next tile will read, prefetched while
        /// this one runs; null when there is none to fetch.
        pub next_a: *const f32,
        pub c: *mut f32,
        pub rsc: isize,
        pub csc: isize,
        pub rows: usize,
        pub cols: usize,
        /// `C ← acc + C`; else `C ← acc + bias` when `bias` is not null (its `cols` floats), else
        /// `C ← acc`.
        pub add: bool,
        pub bias: *const f32,
    }

    /// The micro-kernel: `MR × 2` zmm accumulators, one fused multiply-add per element and
    /// depth step, in increasing `p` from zero (matrixmultiply's order); then `C ← acc (+ C or bias)`
    /// for the live rows and columns.
    ///
    /// # Safety
    /// AVX-512F; A's `MR` rows and `kc` steps (see [`Tile`]) and `b`'s `kc · NR` floats are
    /// readable; the live part of C is valid.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(t: Tile) {
        // Copies of the loop for each stride pattern (so that the stride walked in the inner row
        // loop is a constant) and each number of A rows (12, or an exact last block of 8 or 4).
        // SAFETY: the caller's contract.
        unsafe {
            match (t.a_row == 1, t.a_rows) {
                (true, 4) => run::<true, 4>(&t),
                (true, 8) => run::<true, 8>(&t),
                (true, _) => run::<true, MR>(&t),
                (false, 4) => run::<false, 4>(&t),
                (false, 8) => run::<false, 8>(&t),
                (false, _) => run::<false, MR>(&t),
            }
        }
    }

    /// [`accumulate`] then [`store`], for `R` rows of A.
    ///
    /// # Safety
    /// As [`tile`], with `R` = `t.a_rows`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const UNIT_ROW: bool, const R: usize>(t: &Tile) {
        // SAFETY: the caller's contract.
        unsafe {
            let acc = accumulate::<UNIT_ROW, R>(t);
            store::<R>(t, &acc);
        }
    }

    /// The depth loop: `acc[r] = Σ_q A[r, q] · B[q, ..]` by fused multiply-adds in increasing
    /// `q` from zero, for `R` rows. `UNIT_ROW`: A's rows are adjacent (`a_row` = 1), else its
    /// steps are.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn accumulate<const UNIT_ROW: bool, const R: usize>(t: &Tile) -> [[__m512; 2]; R] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for q in 0..t.kc {
            // SAFETY: step q of both panels is inside them.
            unsafe {
                let bq = t.b.add(q * t.b_row);
                let b0 = _mm512_loadu_ps(bq);
                let b1 = _mm512_loadu_ps(bq.add(16));
                let ahead = t.next_b.add(q * t.b_row);
                _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                _mm_prefetch::<_MM_HINT_T0>(ahead.add(16).cast());
                if !t.next_a.is_null() && (UNIT_ROW || q / R * 16 < t.kc) {
                    // One cache line of the next block per step: for a column-major A its step
                    // q (MR adjacent floats), for a row-major one line (q / R) · 16 of row q % R.
                    let line = if UNIT_ROW {
                        t.next_a.wrapping_offset(q as isize * t.a_step)
                    } else {
                        t.next_a
                            .wrapping_offset((q % R) as isize * t.a_row + (q / R * 16) as isize)
                    };
                    _mm_prefetch::<_MM_HINT_T0>(line.cast());
                }
                let aq = if UNIT_ROW {
                    t.a.offset(q as isize * t.a_step)
                } else {
                    t.a.add(q)
                };
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = if UNIT_ROW {
                        *aq.add(r)
                    } else {
                        *aq.offset(r as isize * t.a_row)
                    };
                    let ar = _mm512_set1_ps(x);
                    acc[0] = _mm512_fmadd_ps(ar, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(ar, b1, acc[1]);
                }
            }
        }
        acc
    }

    /// `C ← acc (+ C or bias)` for the tile's live rows and columns. Always inlined into [`run`] (no
    /// target feature of its own, so that it may be): out of line, the accumulators went
    /// through memory.
    ///
    /// # Safety
    /// As [`tile`]; called only from AVX-512F code.
    #[inline(always)]
    unsafe fn store<const R: usize>(t: &Tile, acc: &[[__m512; 2]; R]) {
        if t.csc == 1 && t.cols == NR && t.rows == R {
            // A full tile (the common case): constant indices only, so `acc` stays in registers,
            // and plain loads and stores.
            for (r, acc) in acc.iter().enumerate() {
                // SAFETY: row r's 32 columns are inside C (and the bias holds 32 from here).
                unsafe {
                    let cp = t.c.offset(r as isize * t.rsc);
                    let (c0, c1) = if t.add {
                        (
                            _mm512_add_ps(acc[0], _mm512_loadu_ps(cp)),
                            _mm512_add_ps(acc[1], _mm512_loadu_ps(cp.add(16))),
                        )
                    } else if !t.bias.is_null() {
                        (
                            _mm512_add_ps(acc[0], _mm512_loadu_ps(t.bias)),
                            _mm512_add_ps(acc[1], _mm512_loadu_ps(t.bias.add(16))),
                        )
                    } else {
                        (acc[0], acc[1])
                    };
                    _mm512_storeu_ps(cp, c0);
                    _mm512_storeu_ps(cp.add(16), c1);
                }
            }
            return;
        }
        // An edge tile or strided C: through memory, one element at a time.
        let mut spill = [0.0f32; MR * NR];
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: `spill` holds MR ≥ R rows of NR = 32 floats.
            unsafe {
                _mm512_storeu_ps(spill.as_mut_ptr().add(r * NR), acc[0]);
                _mm512_storeu_ps(spill.as_mut_ptr().add(r * NR + 16), acc[1]);
            }
        }
        for r in 0..t.rows {
            for j in 0..t.cols {
                let x = spill[r * NR + j];
                // SAFETY: (r, j) is inside C, and j < cols inside the bias.
                unsafe {
                    let cp = t.c.offset(r as isize * t.rsc + j as isize * t.csc);
                    *cp = if t.add {
                        x + *cp
                    } else if !t.bias.is_null() {
                        x + *t.bias.add(j)
                    } else {
                        x
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::{PackCache, mat_mul_f32};
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array2, ShapeBuilder};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(shape: (usize, usize), column_major: bool, rng: &mut ChaCha8Rng) -> Array2<f32> {
        let data: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Array2::from_shape_vec(shape.set_f(column_major), data).expect("sized")
    }

    /// Every layout of A, B and C (row- or column-major), tile remainders, depths across several
    /// 256-blocks and both β give the same bits as matrixmultiply. (On a CPU without AVX-512 both
    /// sides are matrixmultiply and the test checks nothing.)
    #[test]
    fn bit_identical_to_matrixmultiply() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // 32, 64 and 96 columns: B read in place (`direct_b`) when row-major.
        let sizes = [
            1, 3, 4, 8, 12, 16, 17, 20, 31, 32, 33, 50, 64, 96, 255, 257, 600,
        ];
        let mut checked = 0;
        for (case, &m) in sizes.iter().enumerate() {
            for &n in &sizes[case % 3..] {
                let k = sizes[(case * 5 + n) % sizes.len()];
                for layout in 0..8 {
                    let (fa, fb, fc) = (layout & 1 == 1, layout & 2 == 2, layout & 4 == 4);
                    let a = random((m, k), fa, &mut rng);
                    let b = random((k, n), fb, &mut rng);
                    for beta in [0.0f32, 1.0] {
                        let c0 = random((m, n), fc, &mut rng);
                        let (mut ours, mut theirs) = (c0.clone(), c0.clone());
                        mat_mul_f32(&a.view(), &b.view(), beta, &mut ours.view_mut(), None);
                        general_mat_mul(1.0, &a, &b, beta, &mut theirs);
                        let same = ours
                            .iter()
                            .zip(&theirs)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{m}×{k}·{k}×{n}, layout {layout:03b}, β {beta}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 500);
    }

    /// `C ← A B + bias` is bit for bit "fill C's rows with the bias, then C ← A B + C": full and
    /// edge tiles, row- and column-major C, depths of one and two 256-blocks, k = 0, and a
    /// product large enough to be split over two threads (each part reading its own columns of
    /// the bias). Checked to fail with the second thread's part reading the bias from column 0,
    /// and with edge tiles skipping the bias.
    #[test]
    fn bias_is_added_where_c_would_be() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let cases = [
            (4, 3, 32),
            (12, 64, 64),
            (20, 300, 17),
            (8, 1, 100),
            (33, 0, 40),
            (600, 300, 257),
        ];
        for &(m, k, n) in &cases {
            for column_major in [false, true] {
                for threads in [1, 2] {
                    let a = random((m, k), false, &mut rng);
                    let b = random((k, n), false, &mut rng);
                    let bias = random((1, n), false, &mut rng);
                    let bias = bias.as_slice().expect("standard");
                    let mut ours = random((m, n), column_major, &mut rng);
                    let mut theirs = ours.clone();
                    crate::set_gemm_threads(threads);
                    super::mat_mul_bias_f32(&a.view(), &b.view(), bias, &mut ours.view_mut(), None);
                    crate::set_gemm_threads(1);
                    for mut row in theirs.rows_mut() {
                        row.iter_mut().zip(bias).for_each(|(c, &b)| *c = b);
                    }
                    general_mat_mul(1.0, &a, &b, 1.0, &mut theirs);
                    let same = ours
                        .iter()
                        .zip(&theirs)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{m}×{k}·{k}×{n}, column-major C {column_major}, {threads} threads"
                    );
                }
            }
        }
    }

    /// Views with strides that are neither row- nor column-major (a slice with a step), blocks of
    /// wider arrays, a reversed view, and k = 0.
    #[test]
    fn strided_views_and_empty_depth() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let a = random((40, 90), false, &mut rng);
        let b = random((90, 70), true, &mut rng);
        let (av, bv) = (
            a.slice(ndarray::s![..;2, ..;3]),
            b.slice(ndarray::s![..;3, ..;2]),
        );
        let mut ours = Array2::<f32>::zeros((20, 35));
        let mut theirs = ours.clone();
        mat_mul_f32(&av, &bv, 0.0, &mut ours.view_mut(), None);
        general_mat_mul(1.0, &av, &bv, 0.0, &mut theirs);
        assert!(
            ours.iter()
                .zip(&theirs)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );

        // Row- and column-major blocks of a wider array (read in place with a leading dimension
        // larger than the block), and a reversed view (packed).
        let wide = random((50, 120), false, &mut rng);
        let tall = random((120, 50), true, &mut rng);
        let rhs = random((40, 33), false, &mut rng);
        let blocks = [
            wide.slice(ndarray::s![1..50, 7..47]),
            tall.slice(ndarray::s![3..40, 5..45]),
            wide.slice(ndarray::s![..;-1, 0..40]),
        ];
        for (case, block) in blocks.iter().enumerate() {
            let mut ours = Array2::<f32>::zeros((block.nrows(), 33));
            let mut theirs = ours.clone();
            mat_mul_f32(block, &rhs.view(), 0.0, &mut ours.view_mut(), None);
            general_mat_mul(1.0, block, &rhs, 0.0, &mut theirs);
            assert!(
                ours.iter()
                    .zip(&theirs)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "block {case}"
            );
        }

        let empty_a = Array2::<f32>::zeros((4, 0));
        let empty_b = Array2::<f32>::zeros((0, 5));
        let mut c = Array2::<f32>::from_elem((4, 5), 3.0);
        mat_mul_f32(
            &empty_a.view(),
            &empty_b.view(),
            1.0,
            &mut c.view_mut(),
            None,
        );
        assert!(c.iter().all(|&x| x == 3.0));
        mat_mul_f32(
            &empty_a.view(),
            &empty_b.view(),
            0.0,
            &mut c.view_mut(),
            None,
        );
        assert!(c.iter().all(|&x| x == 0.0));
    }

    /// A cached packing is reused for its key (a weight and its transpose are two keys), gives the
    /// same bits as the uncached product, and is forgotten by `clear`.
    #[test]
    fn cached_packings_are_reused_per_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let w = random((70, 45), false, &mut rng);
        let cache = RefCell::new(PackCache::default());
        for step in 0..3 {
            let x = random((13, 70), false, &mut rng);
            let dy = random((13, 45), false, &mut rng);
            let (mut y, mut y_ref) = (Array2::zeros((13, 45)), Array2::zeros((13, 45)));
            mat_mul_f32(
                &x.view(),
                &w.view(),
                0.0,
                &mut y.view_mut(),
                Some((&cache, (4, false))),
            );
            general_mat_mul(1.0, &x, &w, 0.0, &mut y_ref);
            let (mut dx, mut dx_ref) = (Array2::zeros((13, 70)), Array2::zeros((13, 70)));
            mat_mul_f32(
                &dy.view(),
                &w.t(),
                1.0,
                &mut dx.view_mut(),
                Some((&cache, (4, true))),
            );
            general_mat_mul(1.0, &dy, &w.t(), 1.0, &mut dx_ref);
            let bits = |a: &Array2<f32>, b: &Array2<f32>| {
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            };
            assert!(bits(&y, &y_ref) && bits(&dx, &dx_ref), "step {step}");
            if super::fast_path(0.0) {
                assert_eq!(cache.borrow().entries.len(), 2); // (nothing is cached without AVX-512)
            }
        }
        cache.borrow_mut().clear();
        assert!(cache.borrow().entries.iter().all(|e| e.key.is_none()));
    }

    /// A key given again for a matrix of another shape is a caller bug, caught (where packings
    /// are cached: with AVX-512).
    #[test]
    fn a_key_reused_for_another_shape_panics() {
        let misuse = std::panic::catch_unwind(|| {
            let cache = RefCell::new(PackCache::default());
            let x = Array2::<f32>::ones((2, 3));
            let (w1, w2) = (Array2::ones((3, 4)), Array2::ones((3, 5)));
            let mut y = Array2::zeros((2, 4));
            mat_mul_f32(
                &x.view(),
                &w1.view(),
                0.0,
                &mut y.view_mut(),
                Some((&cache, (1, false))),
            );
            let mut y = Array2::zeros((2, 5));
            mat_mul_f32(
                &x.view(),
                &w2.view(),
                0.0,
                &mut y.view_mut(),
                Some((&cache, (1, false))),
            );
        });
        if super::fast_path(0.0) {
            let message = misuse.expect_err("the second shape was accepted");
            let text = message
                .downcast_ref::<String>()
                .expect("a formatted message");
            assert!(
                text.contains("reused for a matrix of another shape"),
                "{text}"
            );
        }
    }

    /// A sum of products gives the same bits as one β = 1 call per term (the first with the given
    /// β): terms of different depths (empty, across several 256-blocks), A column-major (xᵀ, the
    /// backward of a weight) or row-major, rows that fill no whole 12-row block, one and two
    /// threads.
    #[test]
    fn sums_of_products_match_one_call_per_term() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut checked = 0;
        // Each C has m ≥ 4 × its deepest term, so the tiles-in-L1 path serves it (not one call
        // per term); (300, 1000): 2·m·n·Σk ≥ PARALLEL_FLOPS, so two threads split it; (1200,
        // 1200) with all four terms: Σk·n ≥ PARALLEL_PACK as well, so the threads pack B too.
        let cases: [(usize, usize, [usize; 4]); 6] = [
            (1100, 40, [32, 0, 270, 5]),
            (7, 33, [1, 0, 1, 1]),
            (96, 64, [24, 0, 17, 5]),
            (16, 1, [4, 0, 2, 1]),
            (300, 1000, [64, 0, 70, 64]),
            (1200, 1200, [300, 0, 300, 300]),
        ];
        const { assert!(900 * 1200 >= super::PARALLEL_PACK) };
        for (m, n, depths) in cases {
            assert!(m >= 4 * depths.iter().max().unwrap());
            let a: Vec<Array2<f32>> = depths
                .iter()
                .enumerate()
                .map(|(s, &k)| random((m, k), s % 2 == 0, &mut rng))
                .collect();
            let b: Vec<Array2<f32>> = depths
                .iter()
                .map(|&k| random((k, n), false, &mut rng))
                .collect();
            let term = |s: usize| (a[s].view(), b[s].view());
            for terms in [1, 2, 4] {
                for beta in [0.0f32, 1.0] {
                    for threads in [1, 2] {
                        let c0 = random((m, n), false, &mut rng);
                        let (mut ours, mut theirs) = (c0.clone(), c0.clone());
                        crate::set_gemm_threads(threads);
                        super::mat_mul_sum_f32(terms, &term, beta, &mut ours.view_mut());
                        crate::set_gemm_threads(1);
                        for s in 0..terms {
                            let beta = if s == 0 { beta } else { 1.0 };
                            general_mat_mul(1.0, &a[s], &b[s], beta, &mut theirs);
                        }
                        let same = ours
                            .iter()
                            .zip(&theirs)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{m}×{n}, {terms} terms, β {beta}, {threads} threads");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 72);
    }

    /// A row-major B whose width is a multiple of NR is read in place, also as a column block
    /// of a wider array (row stride above n), across depth blocks, on two threads; rows wider
    /// than `IN_PLACE_B_ROW` are packed. The same bits as matrixmultiply either way.
    #[test]
    fn b_read_in_place_gives_the_same_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        for (m, k, n, wide) in [
            (50, 40, 64, 64),
            (50, 300, 96, 160),
            (13, 7, 32, super::IN_PLACE_B_ROW),
            (13, 5, 32, super::IN_PLACE_B_ROW + 1),
            (400, 600, 256, 300),
        ] {
            let a = random((m, k), false, &mut rng);
            let wider = random((k, wide), false, &mut rng);
            let b = wider.slice(ndarray::s![.., ..n]);
            let in_place = super::direct_b(&b).is_some();
            assert_eq!(in_place, wide <= super::IN_PLACE_B_ROW, "{k}×{n} of {wide}");
            let mut theirs = Array2::zeros((m, n));
            general_mat_mul(1.0, &a, &b, 0.0, &mut theirs);
            for threads in [1, 2] {
                crate::set_gemm_threads(threads);
                let mut ours = Array2::zeros((m, n));
                mat_mul_f32(&a.view(), &b, 0.0, &mut ours.view_mut(), None);
                crate::set_gemm_threads(1);
                let same = ours
                    .iter()
                    .zip(&theirs)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}×{k}·{k}×{n} of {wide}, {threads} threads");
            }
        }
    }

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

    /// A product split over threads by column blocks gives the same bits as on one thread.
    #[test]
    fn threaded_products_are_bit_identical() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let (a, b) = (
            random((70, 600), false, &mut rng),
            random((600, 1000), false, &mut rng),
        );
        const { assert!(2 * 70 * 600 * 1000 >= super::PARALLEL_FLOPS) };
        let mut one = Array2::zeros((70, 1000));
        mat_mul_f32(&a.view(), &b.view(), 0.0, &mut one.view_mut(), None);
        for threads in [2, 3] {
            crate::set_gemm_threads(threads);
            let mut many = Array2::zeros((70, 1000));
            mat_mul_f32(&a.view(), &b.view(), 0.0, &mut many.view_mut(), None);
            crate::set_gemm_threads(1);
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
    }
}
