//! Dense layer `y = x W + b`, Sonnet's initialisation.

use rand::Rng;

use crate::params::truncated_normal;
use crate::{Graph, ParamId, ParamStore, Scalar, Var};

/// A dense layer. Parameters `<name>.weight: [I, O]` (stored input-major, so `y = x W + b` with
/// no transpose) and `<name>.bias: [O]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `[I, O]`.
    pub weight: ParamId,
    /// `[O]`, absent for a bias-free layer.
    pub bias: Option<ParamId>,
    /// Input width I.
    pub in_features: usize,
    /// Output width O.
    pub out_features: usize,
}

impl Linear {
    /// Creates `<name>.weight` (truncated normal, std 1/√I, cut at ±2 std: Sonnet's default) and
    /// `<name>.bias` (zeros) in `store`.
    pub fn new<T: Scalar>(
        store: &mut ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let std = 1.0 / (in_features.max(1) as f64).sqrt();
        let weight = store.add(
            format!("{name}.weight"),
            truncated_normal(&[in_features, out_features], std, rng),
        );
        let bias = store.add(
            format!("{name}.bias"),
            ndarray::ArrayD::zeros(ndarray::IxDyn(&[out_features])),
        );
        Self {
            weight,
            bias: Some(bias),
            in_features,
            out_features,
        }
    }

    /// Applies the layer to the last axis of `x`.
    ///
    /// # Shapes
    /// `x: [..., I]` → `[..., O]`.
    pub fn forward<T: Scalar>(&self, g: &mut Graph<T>, store: &ParamStore<T>, x: Var) -> Var {
        let w = g.param(store, self.weight);
        let b = self.bias.map(|b| g.param(store, b));
        g.linear(x, w, b)
    }

    /// `addend + forward(x)` in one node ([`Graph::linear_plus`]).
    ///
    /// # Shapes
    /// `x: [..., I]`, `addend: [..., O]` → `[..., O]`.
    pub fn forward_plus<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        addend: Var,
    ) -> Var {
        let w = g.param(store, self.weight);
        let b = self.bias.map(|b| g.param(store, b));
        g.linear_plus(addend, x, w, b)
    }
}
