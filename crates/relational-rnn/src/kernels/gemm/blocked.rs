//! The blocked loops of one product over a range of C's columns: depth blocks of KC, groups of MC
//! rows, NR-column panels, MR-row micro-tiles, in matrixmultiply's order of accumulation.
#![allow(unsafe_code)]

use ndarray::{ArrayView2, ArrayViewMut2};

#[cfg(target_arch = "x86_64")]
use super::microkernel;
use super::operands::{BPanels, direct_a, in_place_rows};
use super::pack::pack_panels;
use super::{Init, KC, MC, MR, NR};

/// The blocked loops over the columns of `c`, which start at panel `first` of the packed B
/// (`n_pad` padded columns in all; `init` starts at `c`'s first column).
pub(super) fn panel_range(
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
                        microkernel::tile(microkernel::Tile {
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
