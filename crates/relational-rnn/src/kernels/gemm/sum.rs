//! A sum of products `C ← Σ_s A_s B_s + β C` (a shared weight's gradient over its T steps), each
//! micro-tile of C kept in L1 across the terms.
#![allow(unsafe_code)]

use std::cell::RefCell;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

#[cfg(target_arch = "x86_64")]
use super::microkernel;
use super::operands::{BPanels, DirectA, DirectB, direct_a, direct_b, in_place_rows};
use super::pack::{pack_into, pack_many_split, split_packing};
use super::threaded::PARALLEL_FLOPS;
use super::{KC, MR, NR, check, fast_path, mat_mul_f32};
use crate::kernels::threads::{threads, with_helpers};

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
    /// Every term's B, packed as [`pack_panels`](super::pack::pack_panels) lays it out, one after the other.
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
            pack_many_split(&mut jobs, threads());
        }
        let packed = Packings {
            b: bp,
            tails,
            terms: list,
            n_pad,
            full,
        };
        let panels = n_pad / NR;
        let threads = threads().min(panels);
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
                        microkernel::tile(microkernel::Tile {
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

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use ndarray::linalg::general_mat_mul;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::kernels::gemm::pack::PARALLEL_PACK;
    use crate::kernels::gemm::tests::random;

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
        const { assert!(900 * 1200 >= PARALLEL_PACK) };
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
                        crate::with_threads(threads, || {
                            super::mat_mul_sum_f32(terms, &term, beta, &mut ours.view_mut());
                        });
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
}
