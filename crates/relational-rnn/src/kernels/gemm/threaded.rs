//! One product with B's panels ready, on this thread or, when large, with C's columns split over
//! the helper threads: whole NR-column panels per thread, each running the same blocked loops,
//! so every element of C is one thread's sum.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, aview1};

use super::blocked::panel_range;
use super::operands::BPanels;
use super::{Init, NR, WORKSPACE};
use crate::kernels::threads::{threads, with_helpers};

/// Products of at least this many FLOPs are split over the
/// [`with_threads`](crate::with_threads) threads (a split hands parts to parked helper
/// threads and waits for them; the LSTM of config A multiplies 268 MFLOP at a time, config C's
/// products are under 20 MFLOP and stay on one thread).
pub(super) const PARALLEL_FLOPS: usize = 64_000_000;

/// `C ← A B + init` with B already packed (`k = a.ncols()`, `n` columns).
pub(super) fn packed_product(
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
    let threads = threads().min(panels);
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

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::kernels::gemm::mat_mul_f32;
    use crate::kernels::gemm::tests::random;

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
            let many = crate::with_threads(threads, || {
                let mut many = Array2::zeros((70, 1000));
                mat_mul_f32(&a.view(), &b.view(), 0.0, &mut many.view_mut(), None);
                many
            });
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
    }
}
