//! The packings of a tape's weights, made once and reused by its T steps' products.

use ndarray::ArrayView2;

use super::pack::pack_b;

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
    pub(super) fn get_or_pack(&mut self, key: PackKey, b: &ArrayView2<'_, f32>) -> &[f32] {
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use ndarray::Array2;
    use ndarray::linalg::general_mat_mul;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::PackCache;
    use crate::kernels::gemm::tests::random;
    use crate::kernels::gemm::{fast_path, mat_mul_f32};

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
            if fast_path(0.0) {
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
        if fast_path(0.0) {
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
}
