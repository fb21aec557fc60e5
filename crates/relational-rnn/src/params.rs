//! Named parameters, their gradients, and Sonnet's initialiser.
//!
//! A [`ParamStore`] owns every trainable tensor under a stable dotted name
//! (`rmc.block0.qkv.weight`); layers keep only [`ParamId`]s. Names are part of the public
//! contract: checkpoints and the golden reference files use them. [`Grads`] is a separate store of
//! the same shapes, so optimisers can hold their own state (`m`, `v`) the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Scalar;

/// Index of a parameter inside its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// Position of the parameter in creation order.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Trainable tensors under stable dotted names, in creation order.
///
/// Every store (and every clone) has a unique identity, so a [`Graph`](crate::Graph) that is
/// handed two stores never confuses their parameters.
#[derive(Debug)]
pub struct ParamStore<T> {
    names: Vec<String>,
    values: Vec<ArrayD<T>>,
    index: HashMap<String, ParamId>,
    uid: u64,
}

fn next_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<T: Clone> Clone for ParamStore<T> {
    fn clone(&self) -> Self {
        Self {
            names: self.names.clone(),
            values: self.values.clone(),
            index: self.index.clone(),
            uid: next_uid(),
        }
    }
}

impl<T: PartialEq> PartialEq for ParamStore<T> {
    /// Equal names and values (the identity is ignored).
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && self.values == other.values
    }
}

impl<T: Scalar> Default for ParamStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> ParamStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            names: Vec::new(),
            values: Vec::new(),
            index: HashMap::new(),
            uid: next_uid(),
        }
    }

    /// This store's identity (unique per store and per clone).
    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// Adds a tensor under `name` and returns its id.
    ///
    /// # Panics
    /// If `name` is already taken (two layers built with the same prefix: a programmer error).
    #[track_caller]
    pub fn add(&mut self, name: impl Into<String>, value: ArrayD<T>) -> ParamId {
        let name = name.into();
        assert!(
            !self.index.contains_key(&name),
            "parameter `{name}` is already in the store"
        );
        let id = ParamId(self.values.len());
        self.index.insert(name.clone(), id);
        self.names.push(name);
        self.values.push(value);
        id
    }

    /// The id of the parameter called `name`, if any.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.index.get(name).copied()
    }

    /// The parameter's value.
    pub fn get(&self, id: ParamId) -> &ArrayD<T> {
        &self.values[id.0]
    }

    /// The parameter's value, mutably (optimisers, checkpoint loading, tests).
    pub fn get_mut(&mut self, id: ParamId) -> &mut ArrayD<T> {
        &mut self.values[id.0]
    }

    /// `(id, name, value)` for every parameter in id order, the values mutably (optimisers).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ParamId, &str, &mut ArrayD<T>)> {
        self.names
            .iter()
            .zip(&mut self.values)
            .enumerate()
            .map(|(i, (n, v))| (ParamId(i), n.as_str(), v))
    }

    /// The parameter's name.
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.0]
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the store holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Total number of scalars over all tensors (the parameter count reported beside results).
    pub fn num_scalars(&self) -> usize {
        self.values.iter().map(ArrayD::len).sum()
    }

    /// Iterates `(id, name, value)` in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &str, &ArrayD<T>)> {
        self.names
            .iter()
            .zip(&self.values)
            .enumerate()
            .map(|(i, (n, v))| (ParamId(i), n.as_str(), v))
    }

    /// All ids in creation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<T> {
        (0..self.values.len()).map(ParamId)
    }

    /// A zero gradient for every parameter.
    pub fn zeros_like(&self) -> Grads<T> {
        Grads {
            values: self
                .values
                .iter()
                .map(|v| ArrayD::zeros(v.raw_dim()))
                .collect(),
        }
    }

    /// The same names and values in another float type (e.g. f32 weights → f64 for a gradcheck).
    pub fn cast<U: Scalar>(&self) -> ParamStore<U> {
        ParamStore {
            names: self.names.clone(),
            values: self
                .values
                .iter()
                .map(|v| v.mapv(|x| U::from_f64_lossy(x.to_f64_lossy())))
                .collect(),
            index: self.index.clone(),
            uid: next_uid(),
        }
    }
}

/// Gradients (or any per-parameter state) with the shapes of a [`ParamStore`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grads<T> {
    values: Vec<ArrayD<T>>,
}

impl<T: Scalar> Grads<T> {
    /// The gradient of parameter `id`.
    pub fn get(&self, id: ParamId) -> &ArrayD<T> {
        &self.values[id.0]
    }

    /// The gradient of parameter `id`, mutably.
    pub fn get_mut(&mut self, id: ParamId) -> &mut ArrayD<T> {
        &mut self.values[id.0]
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Iterates `(id, gradient)` in parameter order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &ArrayD<T>)> {
        self.values.iter().enumerate().map(|(i, v)| (ParamId(i), v))
    }

    /// Iterates `(id, gradient)` mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ParamId, &mut ArrayD<T>)> {
        self.values
            .iter_mut()
            .enumerate()
            .map(|(i, v)| (ParamId(i), v))
    }

    /// Sets every entry to zero, keeping the allocations.
    pub fn zero(&mut self) {
        for v in &mut self.values {
            v.fill(T::zero());
        }
    }

    /// Multiplies every entry by `factor` (used by clipping).
    pub fn scale(&mut self, factor: T) {
        for v in &mut self.values {
            v.mapv_inplace(|x| x * factor);
        }
    }

    /// The global L2 norm √(Σ g²) over all tensors, accumulated in f64.
    ///
    /// The squares go into 32 partial sums (element i of each tensor's chunks of 32 into sum i,
    /// the elements past the last full chunk into a sum of their own), which are added up at the
    /// end: one running sum is a chain of dependent additions as long as the model (347 400 for
    /// config B's LSTM), where these chains run side by side in vector registers. The order is
    /// fixed, so the result is the same on every run and thread count; it differs from the one
    /// running sum in the last bits of the f64 (far below f32 resolution).
    pub fn global_norm(&self) -> f64 {
        crate::kernels::simd::wide(|| {
            let mut parts = [0.0f64; NORM_PARTS];
            let mut rest = 0.0f64;
            let square = |x: &T| {
                let x = x.to_f64_lossy();
                x * x
            };
            for v in &self.values {
                let Some(xs) = v.as_slice() else {
                    rest = v.iter().fold(rest, |s, x| s + square(x));
                    continue;
                };
                let chunks = xs.chunks_exact(NORM_PARTS);
                rest = chunks.remainder().iter().fold(rest, |s, x| s + square(x));
                for chunk in chunks {
                    for (p, x) in parts.iter_mut().zip(chunk) {
                        *p += square(x);
                    }
                }
            }
            parts.iter().fold(rest, |s, &p| s + p).sqrt()
        })
    }
}

/// Partial sums of [`Grads::global_norm`]: 32 f64s fill eight AVX2 registers, enough to hide the
/// latency of their additions.
const NORM_PARTS: usize = 32;

/// A tensor of `shape` drawn uniformly from (−bound, bound): PyTorch's `nn.LSTM` initialiser with
/// `bound = 1/√hidden`.
pub fn uniform<T: Scalar>(shape: &[usize], bound: f64, rng: &mut impl Rng) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        T::from_f64_lossy(rng.random_range(-bound..bound))
    })
}

/// A tensor of `shape` drawn from a normal distribution with standard deviation `std`, truncated
/// at two standard deviations by resampling — TensorFlow's `truncated_normal_initializer`, which
/// Sonnet's `Linear` uses with `std = 1/√fan_in`.
pub fn truncated_normal<T: Scalar>(shape: &[usize], std: f64, rng: &mut impl Rng) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let z = loop {
            let z: f64 = StandardNormal.sample(rng);
            if z.abs() <= 2.0 {
                break z;
            }
        };
        T::from_f64_lossy(z * std)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn names_are_stable_and_unique() {
        let mut s = ParamStore::<f64>::new();
        let a = s.add("a.weight", ArrayD::zeros(IxDyn(&[2, 3])));
        let b = s.add("a.bias", ArrayD::zeros(IxDyn(&[3])));
        assert_eq!(s.id("a.bias"), Some(b));
        assert_eq!(s.name(a), "a.weight");
        assert_eq!(s.num_scalars(), 9);
        assert_eq!(s.zeros_like().get(a).shape(), &[2, 3]);
    }

    #[test]
    #[should_panic(expected = "already in the store")]
    fn duplicate_name_panics() {
        let mut s = ParamStore::<f32>::new();
        s.add("x", ArrayD::zeros(IxDyn(&[1])));
        s.add("x", ArrayD::zeros(IxDyn(&[1])));
    }

    #[test]
    fn truncated_normal_is_truncated_and_scaled() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let std = 0.25;
        let w: ArrayD<f64> = truncated_normal(&[200, 100], std, &mut rng);
        assert!(w.iter().all(|x| x.abs() <= 2.0 * std));
        // A normal truncated at ±2σ has standard deviation 0.8796σ.
        let sd = (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
        assert!((sd / std - 0.8796).abs() < 0.01, "sd ratio {}", sd / std);
    }

    /// The 32 partial sums cover every element once: tensors shorter than, equal to and longer
    /// than a chunk, with and without a rest, agree with one running sum to f64 rounding (a
    /// skipped or doubled element is off by over 1e-4 here). Checked to fail with the rest or the
    /// last chunk left out.
    #[test]
    fn global_norm_in_partial_sums_covers_every_element() {
        let mut s = ParamStore::<f32>::new();
        let lens = [0, 1, 31, 32, 33, 100, 1000];
        let ids: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(t, &n)| s.add(format!("p{t}"), ArrayD::zeros(IxDyn(&[n]))))
            .collect();
        let mut g = s.zeros_like();
        let mut running = 0.0f64;
        for (t, (&id, &n)) in ids.iter().zip(&lens).enumerate() {
            let v = ndarray::Array1::from_shape_fn(n, |i| ((t * 1000 + i) as f32 * 0.77).sin());
            running += v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
            g.get_mut(id).assign(&v.into_dyn());
        }
        let norm = g.global_norm();
        assert!(
            (norm - running.sqrt()).abs() <= 1e-12 * norm,
            "{norm} vs {}",
            running.sqrt()
        );
    }

    #[test]
    fn global_norm_matches_hand_computation() {
        let mut s = ParamStore::<f32>::new();
        let a = s.add("a", ArrayD::zeros(IxDyn(&[2])));
        let b = s.add("b", ArrayD::zeros(IxDyn(&[1])));
        let mut g = s.zeros_like();
        g.get_mut(a)
            .assign(&ndarray::arr1(&[3.0f32, 0.0]).into_dyn());
        g.get_mut(b).fill(4.0);
        assert!((g.global_norm() - 5.0).abs() < 1e-12);
    }
}
