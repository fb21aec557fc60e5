//! Layer normalisation with learned gain and bias over the last axis.

use ndarray::{ArrayD, IxDyn};

use crate::{Graph, ParamId, ParamStore, Scalar, Var};

/// The epsilon inside √(var + eps), Sonnet's and the golden files' value.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// `y = (x − mean) / √(var + eps) · gamma + beta` per row. Parameters `<name>.gamma: [D]` (ones)
/// and `<name>.beta: [D]` (zeros).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// Gain `[D]`.
    pub gamma: ParamId,
    /// Bias `[D]`.
    pub beta: ParamId,
    /// Normalised width D.
    pub width: usize,
}

impl LayerNorm {
    /// Creates `<name>.gamma` = 1 and `<name>.beta` = 0.
    pub fn new<T: Scalar>(store: &mut ParamStore<T>, name: &str, width: usize) -> Self {
        let gamma = store.add(format!("{name}.gamma"), ArrayD::ones(IxDyn(&[width])));
        let beta = store.add(format!("{name}.beta"), ArrayD::zeros(IxDyn(&[width])));
        Self { gamma, beta, width }
    }

    /// Normalises every row of `x`.
    ///
    /// # Shapes
    /// `x: [..., D]` → `[..., D]`.
    pub fn forward<T: Scalar>(&self, g: &mut Graph<T>, store: &ParamStore<T>, x: Var) -> Var {
        let gamma = g.param(store, self.gamma);
        let beta = g.param(store, self.beta);
        g.layer_norm(x, gamma, beta, LAYER_NORM_EPS)
    }

    /// Normalises every row of `x + plus` (a residual sum) in one node
    /// ([`Graph::layer_norm_plus`]).
    ///
    /// # Shapes
    /// `x`, `plus: [..., D]` → `[..., D]`.
    pub fn forward_plus<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        plus: Var,
    ) -> Var {
        let gamma = g.param(store, self.gamma);
        let beta = g.param(store, self.beta);
        g.layer_norm_plus(x, plus, gamma, beta, LAYER_NORM_EPS)
    }
}
