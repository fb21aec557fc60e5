//! Multi-layer perceptron: Linear layers with ReLU between them, none after the last.
//!
//! Used twice: as the RMC's attention MLP (L layers D → D) and as the classifier head
//! (hidden layers then logits).

use rand::Rng;

use super::Linear;
use crate::{Graph, ParamStore, Scalar, Var};

/// Layers `<name>.0`, `<name>.1`, …; `y = W_L(… relu(W_1 x + b_1) …) + b_L`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// The layers in order.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Builds layers of widths `sizes[0] → sizes[1] → … → sizes[last]` (at least two sizes).
    ///
    /// # Panics
    /// With fewer than two sizes (a programmer error; user configs are validated earlier).
    #[track_caller]
    pub fn new<T: Scalar>(
        store: &mut ParamStore<T>,
        name: &str,
        sizes: &[usize],
        rng: &mut impl Rng,
    ) -> Self {
        assert!(
            sizes.len() >= 2,
            "an MLP needs at least input and output sizes, got {sizes:?}"
        );
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| Linear::new(store, &format!("{name}.{l}"), w[0], w[1], rng))
            .collect();
        Self { layers }
    }

    /// Width of the output.
    pub fn out_features(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_features)
    }

    /// Applies the layers, with ReLU between them.
    ///
    /// # Shapes
    /// `x: [..., sizes[0]]` → `[..., sizes[last]]`.
    pub fn forward<T: Scalar>(&self, g: &mut Graph<T>, store: &ParamStore<T>, x: Var) -> Var {
        let mut h = x;
        for (l, layer) in self.layers.iter().enumerate() {
            h = layer.forward(g, store, h);
            if l + 1 < self.layers.len() {
                h = g.relu(h);
            }
        }
        h
    }
}
