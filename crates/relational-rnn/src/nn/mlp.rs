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
        self.forward_into(g, store, x, None)
    }

    /// `residual + forward(x)`, with the sum made by the last layer's node
    /// ([`Graph::linear_plus`]; the same bits as `add(residual, forward(x))`).
    ///
    /// # Shapes
    /// `x: [..., sizes[0]]`, `residual: [..., sizes[last]]` → `[..., sizes[last]]`.
    pub fn forward_plus<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        residual: Var,
    ) -> Var {
        self.forward_into(g, store, x, Some(residual))
    }

    fn forward_into<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        residual: Option<Var>,
    ) -> Var {
        let Some((last, hidden)) = self.layers.split_last() else {
            return match residual {
                Some(r) => g.add(r, x),
                None => x,
            };
        };
        let mut h = x;
        for layer in hidden {
            h = layer.forward(g, store, h);
            h = g.relu(h);
        }
        match residual {
            Some(r) => last.forward_plus(g, store, h, r),
            None => last.forward(g, store, h),
        }
    }
}
