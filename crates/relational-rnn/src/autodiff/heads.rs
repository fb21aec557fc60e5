//! The geometry of a packed multi-head attention (see `attention.rs`), which its nodes record.

use crate::Scalar;

/// The geometry of one packed attention: batch, rows, heads, key and value sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heads {
    pub(crate) batch: usize,
    pub(crate) rows: usize,
    /// Rows with an output: the first `queries` of each batch element's `rows` (all of them but
    /// for the RMC's last block, whose input row's output is dropped).
    pub(crate) queries: usize,
    pub(crate) heads: usize,
    pub(crate) key: usize,
    pub(crate) value: usize,
}

impl Heads {
    /// Width of one packed row, H·(2K+V).
    pub(crate) fn width(self) -> usize {
        self.heads * self.per_head()
    }

    /// Columns per head, 2K+V.
    pub(crate) fn per_head(self) -> usize {
        2 * self.key + self.value
    }

    /// Offset in the flat `p` of row `r` of batch element `b`, head `h`.
    pub(crate) fn p_at(self, b: usize, r: usize, h: usize) -> usize {
        (b * self.rows + r) * self.width() + h * self.per_head()
    }

    /// Offset in the flat output `[B, Rq, H·V]` of row `r`, head `h`.
    pub(crate) fn out_at(self, b: usize, r: usize, h: usize) -> usize {
        ((b * self.queries + r) * self.heads + h) * self.value
    }

    /// Offset in the flat weights `[B, H, R, R]` of row `i` of head `h`.
    pub(crate) fn a_at(self, b: usize, h: usize, i: usize) -> usize {
        ((b * self.heads + h) * self.rows + i) * self.rows
    }

    /// The logits' scale 1/√K.
    pub(crate) fn scale<T: Scalar>(self) -> T {
        T::from_f64_lossy(1.0 / (self.key as f64).sqrt())
    }
}
