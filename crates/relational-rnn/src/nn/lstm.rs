//! The LSTM baseline (Hochreiter & Schmidhuber, 1997), laid out like PyTorch's `nn.LSTM`.
//!
//! ```text
//! [i, f, g, o] = x W_ih + b_ih + h W_hh + b_hh        [B, 4S]   (gate order i, f, g, o)
//! c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)                       [B, S]
//! h' = σ(o) ⊙ tanh(c')                                 [B, S]
//! ```
//!
//! Both biases exist (as in PyTorch, so parameter counts match `perf/README.md`); the forget
//! part of `b_ih` starts at `forget_bias` (1.0), everything else from U(−1/√S, 1/√S).
//! Parameters: `<name>.weight_ih [F, 4S]`, `<name>.weight_hh [S, 4S]`, `<name>.bias_ih [4S]`,
//! `<name>.bias_hh [4S]`.

use ndarray::{ArrayD, IxDyn, s};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Model, Unrolled};
use crate::params::uniform;
use crate::{ConfigError, Graph, ParamId, ParamStore, Scalar, Var};

/// Configuration of an [`Lstm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmConfig {
    /// Input width F.
    pub input_size: usize,
    /// Hidden and cell width S.
    pub hidden_size: usize,
    /// Initial value of the forget-gate part of `b_ih`.
    pub forget_bias: f64,
}

impl Default for LstmConfig {
    /// The project default (perf config C): F 40, S 128, forget bias 1.
    fn default() -> Self {
        Self {
            input_size: 40,
            hidden_size: 128,
            forget_bias: 1.0,
        }
    }
}

impl LstmConfig {
    /// Checks sizes ≥ 1 and a finite forget bias.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("input_size", self.input_size, 1)?;
        ConfigError::require_size("hidden_size", self.hidden_size, 1)?;
        ConfigError::require_finite("forget_bias", self.forget_bias)
    }
}

/// One LSTM cell's parameters; used by [`Lstm`] and by the hybrid cell.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCell {
    pub(super) weight_ih: ParamId,
    pub(super) weight_hh: ParamId,
    pub(super) bias_ih: ParamId,
    pub(super) bias_hh: ParamId,
    input_size: usize,
    hidden_size: usize,
}

impl LstmCell {
    /// Validates `config` and creates `<name>.weight_ih`, `.weight_hh`, `.bias_ih`, `.bias_hh`.
    pub fn new<T: Scalar>(
        config: &LstmConfig,
        store: &mut ParamStore<T>,
        name: &str,
        rng: &mut impl Rng,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (f, s) = (config.input_size, config.hidden_size);
        let bound = 1.0 / (s as f64).sqrt();
        let weight_ih = store.add(
            format!("{name}.weight_ih"),
            uniform(&[f, 4 * s], bound, rng),
        );
        let weight_hh = store.add(
            format!("{name}.weight_hh"),
            uniform(&[s, 4 * s], bound, rng),
        );
        let mut b_ih: ArrayD<T> = ArrayD::zeros(IxDyn(&[4 * s]));
        b_ih.slice_mut(s![s..2 * s])
            .fill(T::from_f64_lossy(config.forget_bias));
        let bias_ih = store.add(format!("{name}.bias_ih"), b_ih);
        let bias_hh = store.add(format!("{name}.bias_hh"), ArrayD::zeros(IxDyn(&[4 * s])));
        Ok(Self {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            input_size: f,
            hidden_size: s,
        })
    }

    /// Hidden width S.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Input width F.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// The input part of the gates, `x W_ih + b_ih`, for any number of leading axes (so a whole
    /// sequence is projected with one matrix product).
    ///
    /// # Shapes
    /// `x: [..., F]` → `[..., 4S]`.
    pub fn project_input<T: Scalar>(&self, g: &mut Graph<T>, store: &ParamStore<T>, x: Var) -> Var {
        let w = g.param(store, self.weight_ih);
        let b = g.param(store, self.bias_ih);
        g.linear(x, w, Some(b))
    }

    /// One step from the projected input.
    ///
    /// # Shapes
    /// `x_proj: [B, 4S]`, `h: [B, S]`, `c: [B, S]` → `(h' [B, S], c' [B, S])`.
    pub fn step<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x_proj: Var,
        h: Var,
        c: Var,
    ) -> (Var, Var) {
        let w = g.param(store, self.weight_hh);
        let b = g.param(store, self.bias_hh);
        let gates = g.linear_plus(x_proj, h, w, Some(b)); // x_proj + (h W_hh + b_hh): [B, 4S]
        g.lstm_cell(gates, c) // [B, S], [B, S]
    }

    /// [`step`](Self::step) reading the projected input of step `t` from the projections of all
    /// T steps (no copy of it on the tape: [`Graph::linear_plus_block`]).
    ///
    /// # Shapes
    /// `x_proj: [T, B, 4S]`, `h: [B, S]`, `c: [B, S]` → `(h' [B, S], c' [B, S])`.
    pub fn step_at<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        (x_proj, t): (Var, usize),
        h: Var,
        c: Var,
    ) -> (Var, Var) {
        let w = g.param(store, self.weight_hh);
        let b = g.param(store, self.bias_hh);
        let gates = g.linear_plus_block(x_proj, t, h, w, Some(b)); // x_proj[t] + (h W_hh + b_hh)
        g.lstm_cell(gates, c) // [B, S], [B, S]
    }

    /// Zero initial state on the tape: `(h₀, c₀)`, both `[B, S]`.
    pub fn zero_state<T: Scalar>(&self, g: &mut Graph<T>, batch: usize) -> (Var, Var) {
        let zero = ndarray::arr0(T::zero());
        let z = zero
            .broadcast((batch, self.hidden_size))
            .expect("a scalar broadcasts");
        let h0 = g.constant_map(z.into_dyn(), |x| x);
        (h0, g.constant_map(z.into_dyn(), |x| x))
    }
}

/// The LSTM baseline: an [`LstmCell`] unrolled from a zero state; its output is h_t.
#[derive(Debug, Clone, PartialEq)]
pub struct Lstm {
    cell: LstmCell,
}

impl Lstm {
    /// Validates `config` and creates the parameters under `name` (e.g. `"lstm"`).
    pub fn new<T: Scalar>(
        config: &LstmConfig,
        store: &mut ParamStore<T>,
        name: &str,
        rng: &mut impl Rng,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            cell: LstmCell::new(config, store, name, rng)?,
        })
    }

    /// The cell.
    pub fn cell(&self) -> &LstmCell {
        &self.cell
    }
}

impl<T: Scalar> Model<T> for Lstm {
    fn name(&self) -> &'static str {
        "LSTM"
    }

    fn input_size(&self) -> usize {
        self.cell.input_size
    }

    fn output_size(&self) -> usize {
        self.cell.hidden_size
    }

    fn unroll(&self, g: &mut Graph<T>, store: &ParamStore<T>, inputs: Var) -> Unrolled {
        let (steps, batch) = (g.shape(inputs)[0], g.shape(inputs)[1]);
        let x_proj = self.cell.project_input(g, store, inputs); // [T, B, 4S]
        let (mut h, mut c) = self.cell.zero_state(g, batch);
        let mut outputs = Vec::with_capacity(steps);
        for t in 0..steps {
            (h, c) = self.cell.step_at(g, store, (x_proj, t), h, c); // x_proj[t]: [B, 4S]
            outputs.push(h);
        }
        Unrolled {
            outputs,
            ..Unrolled::default()
        }
    }
}
