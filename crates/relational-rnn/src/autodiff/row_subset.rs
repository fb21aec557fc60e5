//! Which rows of a taller matrix a `linear`'s input holds, when the others were dropped (see
//! [`Graph::as_kept_rows`](super::Graph::as_kept_rows)); `linear` nodes record it.

use crate::kernels::gemm::KC;

/// The rows of a `linear`'s input as the first `kept` of every `period` rows of a taller matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowSubset {
    pub(crate) kept: usize,
    pub(crate) period: usize,
}

impl RowSubset {
    /// How many of the taller matrix's first `v` rows are kept.
    fn kept_before(self, v: usize) -> usize {
        v / self.period * self.kept + (v % self.period).min(self.kept)
    }

    /// The row ranges of `m` kept rows that lie in each `KC`-row depth block of the taller
    /// matrix, in order (empty ones left out).
    pub(crate) fn depth_blocks(self, m: usize) -> impl Iterator<Item = (usize, usize)> {
        let tall = m / self.kept * self.period;
        (0..tall.div_ceil(KC))
            .map(move |j| {
                (
                    self.kept_before(j * KC),
                    self.kept_before(((j + 1) * KC).min(tall)),
                )
            })
            .filter(|(a, b)| a < b)
    }
}

#[cfg(test)]
mod tests {
    use super::RowSubset;

    /// The depth blocks of 4 kept rows in every 5: the taller matrix's 640 rows break at 256 and
    /// 512, which are kept rows 205 (row 255 is the first of a group) and 410.
    #[test]
    fn depth_blocks_follow_the_taller_matrix() {
        let rows = RowSubset { kept: 4, period: 5 };
        let blocks: Vec<_> = rows.depth_blocks(512).collect();
        assert_eq!(blocks, [(0, 205), (205, 410), (410, 512)]);
        let all = RowSubset { kept: 3, period: 3 };
        assert_eq!(
            all.depth_blocks(600).collect::<Vec<_>>(),
            [(0, 256), (256, 512), (512, 600)]
        );
    }
}
