//! Where the micro-tile reads its operands: A and B in place when their layout allows it
//! (saving the packing copy), else B's packed panels.
#![allow(unsafe_code)]

use ndarray::ArrayView2;

use super::{MR, NR};

/// Where A's elements lie when the micro-tile can read them in place: `(i, p)` at
/// `ptr + i · row + p · step`.
#[derive(Clone, Copy)]
pub(super) struct DirectA {
    pub(super) ptr: *const f32,
    pub(super) row: isize,
    pub(super) step: isize,
}

// SAFETY: a `DirectA` only reads, through a pointer taken from a view that outlives every
// thread of the product using it (scoped threads).
unsafe impl Sync for DirectA {}

/// A row-major (`step` 1) or column-major (`row` 1) A is read in place: the tile broadcasts one
/// element per row and step wherever it lies, so packing it (a transposing copy per call) buys
/// nothing (see PERFORMANCE.md, section "Design notes moved from the source"). Anything else is
/// packed.
pub(super) fn direct_a(a: &ArrayView2<'_, f32>) -> Option<DirectA> {
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
pub(super) enum BPanels<'b> {
    /// Packed by [`pack_panels`](super::pack::pack_panels): `n_pad` (padded) columns, each depth block's panels in turn.
    Packed { data: &'b [f32], n_pad: usize },
    /// Read where B lies (see [`direct_b`]).
    InPlace(DirectB),
}

impl BPanels<'_> {
    /// Where panel `panel` of the depth block `p0..p0 + kc` starts, and the distance between its
    /// rows.
    pub(super) fn panel(&self, p0: usize, kc: usize, panel: usize) -> (*const f32, usize) {
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
pub(super) struct DirectB {
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
pub(super) fn direct_b(b: &ArrayView2<'_, f32>) -> Option<DirectB> {
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
pub(super) fn in_place_rows(m: usize) -> usize {
    match m % MR {
        0 | 4 | 8 => m,
        _ => m / MR * MR,
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use ndarray::linalg::general_mat_mul;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::kernels::gemm::mat_mul_f32;
    use crate::kernels::gemm::tests::random;

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
                let ours = crate::with_threads(threads, || {
                    let mut ours = Array2::zeros((m, n));
                    mat_mul_f32(&a.view(), &b, 0.0, &mut ours.view_mut(), None);
                    ours
                });
                let same = ours
                    .iter()
                    .zip(&theirs)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}×{k}·{k}×{n} of {wide}, {threads} threads");
            }
        }
    }
}
