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
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the products [`mat_mul_f32`] and [`mat_mul_bias_f32`]: checks, and the choice between the packed path and `general_mat_mul` |
//! | `pack_cache.rs` | [`PackCache`]: a tape's packed weights |
//! | `pack.rs` | packing B (and A's last rows) into panels, over the helper threads when B is large |
//! | `operands.rs` | A and B read in place, and where the tile finds B's panels |
//! | `threaded.rs` | one product's column panels split over the helper threads |
//! | `blocked.rs` | the blocked loops over one range of C's columns |
//! | `sum.rs` | [`mat_mul_sum_f32`]: a sum of products with each tile of C kept in L1 |
//! | `microkernel.rs` | the AVX-512 micro-tile (x86-64 only) |

mod blocked;
#[cfg(target_arch = "x86_64")]
mod microkernel;
mod operands;
mod pack;
mod pack_cache;
mod sum;
mod threaded;

use std::cell::RefCell;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, aview1};

use operands::{BPanels, direct_b};
use pack::pack_b;
pub use pack_cache::{PackCache, PackKey};
pub use sum::Term;
pub(crate) use sum::mat_mul_sum_f32;
use threaded::packed_product;

/// matrixmultiply's f32 `KC`: the depth of one accumulation block (see the module docs).
pub(crate) const KC: usize = 256;
/// Rows of C per micro-tile.
const MR: usize = 12;
/// Columns of C per micro-tile: two zmm vectors. 12 × 2 accumulators + 2 B rows + 1 broadcast
/// fit the 32 zmm registers.
const NR: usize = 32;
/// Rows of C per pass over B's panels: 4 micro-tiles, so the C rows a pass writes stay few.
const MC: usize = 4 * MR;

thread_local! {
    /// Packed A (the rows not read in place) and packed B (calls without a cache).
    static WORKSPACE: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether the AVX-512 tile may run (see [`super::avx512_enabled`]).
#[cfg(target_arch = "x86_64")]
fn has_avx512f() -> bool {
    super::avx512_enabled()
}

/// Whether the packed AVX-512 path serves this call.
fn fast_path(beta: f32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (beta == 0.0 || beta == 1.0) && has_avx512f()
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

#[cfg(test)]
mod tests {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array2, ShapeBuilder};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::mat_mul_f32;

    pub(super) fn random(
        shape: (usize, usize),
        column_major: bool,
        rng: &mut ChaCha8Rng,
    ) -> Array2<f32> {
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
                    crate::with_threads(threads, || {
                        super::mat_mul_bias_f32(
                            &a.view(),
                            &b.view(),
                            bias,
                            &mut ours.view_mut(),
                            None,
                        );
                    });
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
}
