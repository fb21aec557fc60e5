//! The AVX-512 micro-kernel: one MR × NR tile of C in 24 zmm registers, fused multiply-adds in
//! increasing depth from zero, then stored over, added to, or added to a bias into C.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{MR, NR};

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
