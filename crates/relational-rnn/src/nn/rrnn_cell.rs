//! `RelationalRNNCell`: the implementation plan's LSTM + relational memory hybrid.
//! **Not in the paper** — the paper's model is the plain [`RelationalMemory`] core; this cell is
//! one honest reading of the plan's "an LSTM integrated with relational memory: gating between
//! LSTM and memory, memory read/write", kept as an extra row in every comparison.
//!
//! ```text
//! r_t       = MultiHeadRead(query = h_{t−1} W_q, keys = M_{t−1} W_k, values = M_{t−1} W_v)  [B, D]
//! h_t, c_t  = LSTM([x_t ; r_t], h_{t−1}, c_{t−1})                                            [B, S]
//! M_t       = RelationalMemory.step(h_t, M_{t−1})                                            [B, N, D]
//! g_t       = σ([h_t ; r_t] W_g + b_g)                                                       [B, S]
//! y_t       = g_t ⊙ h_t + (1 − g_t) ⊙ (r_t W_o + b_o)                                          [B, S]
//! ```
//!
//! The read uses the memory's head count H and key size K. Parameters live under
//! `<name>.read_query`, `.read_key`, `.read_value`, `.lstm`, `.rmc`, `.output_gate`, `.read_out`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::attention::multi_head_attention;
use super::{Linear, LstmCell, LstmConfig, Model, RelationalMemory, RmcConfig, Unrolled};
use crate::{ConfigError, Graph, ParamStore, Scalar, Var};

/// Configuration of a [`RelationalRNNCell`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RrnnCellConfig {
    /// Input width F.
    pub input_size: usize,
    /// LSTM hidden width S (also the width of the cell's output).
    pub hidden_size: usize,
    /// Forget-gate bias of the LSTM.
    pub forget_bias: f64,
    /// The relational memory; its `input_size` is ignored and set to `hidden_size` (the memory
    /// is written from h_t).
    pub memory: RmcConfig,
}

impl Default for RrnnCellConfig {
    /// F 40, S 128, forget bias 1, and the default [`RmcConfig`] (N 4, H 4 × V 16).
    fn default() -> Self {
        Self {
            input_size: 40,
            hidden_size: 128,
            forget_bias: 1.0,
            memory: RmcConfig::default(),
        }
    }
}

impl RrnnCellConfig {
    /// The memory's configuration with `input_size = hidden_size`.
    pub fn memory_config(&self) -> RmcConfig {
        RmcConfig {
            input_size: self.hidden_size,
            ..self.memory.clone()
        }
    }

    /// Checks the LSTM and memory parts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.lstm_config().validate()?;
        self.memory_config().validate()
    }

    fn lstm_config(&self) -> LstmConfig {
        LstmConfig {
            input_size: self.input_size + self.memory.mem_width(),
            hidden_size: self.hidden_size,
            forget_bias: self.forget_bias,
        }
    }
}

/// The hybrid cell; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalRNNCell {
    config: RrnnCellConfig,
    read_query: Linear,
    read_key: Linear,
    read_value: Linear,
    lstm: LstmCell,
    rmc: RelationalMemory,
    output_gate: Linear,
    read_out: Linear,
}

/// What one hybrid step produces.
#[derive(Debug, Clone, PartialEq)]
pub struct RrnnStep {
    /// Gated output y_t: `[B, S]`.
    pub output: Var,
    /// LSTM state `(h_t, c_t)`, `[B, S]` each.
    pub state: (Var, Var),
    /// Memory M_t: `[B, N, D]`.
    pub memory: Var,
    /// The read's attention over memory slots: `[B, H, 1, N]`.
    pub read_attention: Var,
    /// The memory write's attention per block: `[B, H, N+1, N+1]` (none without attention).
    pub write_attention: Vec<Var>,
}

impl RelationalRNNCell {
    /// Validates `config` and creates the parameters under `name` (e.g. `"rrnn"`).
    pub fn new<T: Scalar>(
        config: &RrnnCellConfig,
        store: &mut ParamStore<T>,
        name: &str,
        rng: &mut impl Rng,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mem = config.memory_config();
        let (s, d, hk) = (
            config.hidden_size,
            mem.mem_width(),
            mem.num_heads * mem.key_size(),
        );
        Ok(Self {
            read_query: Linear::new(store, &format!("{name}.read_query"), s, hk, rng),
            read_key: Linear::new(store, &format!("{name}.read_key"), d, hk, rng),
            read_value: Linear::new(store, &format!("{name}.read_value"), d, d, rng),
            lstm: LstmCell::new(&config.lstm_config(), store, &format!("{name}.lstm"), rng)?,
            rmc: RelationalMemory::new(&mem, store, &format!("{name}.rmc"), rng)?,
            output_gate: Linear::new(store, &format!("{name}.output_gate"), s + d, s, rng),
            read_out: Linear::new(store, &format!("{name}.read_out"), d, s, rng),
            config: config.clone(),
        })
    }

    /// The configuration this cell was built with.
    pub fn config(&self) -> &RrnnCellConfig {
        &self.config
    }

    /// The relational memory inside the cell.
    pub fn memory(&self) -> &RelationalMemory {
        &self.rmc
    }

    /// One step.
    ///
    /// # Shapes
    /// `x: [B, F]`, `state: ([B, S], [B, S])`, `memory: [B, N, D]` → see [`RrnnStep`].
    pub fn step<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        state: (Var, Var),
        memory: Var,
    ) -> RrnnStep {
        let (h, c) = state;
        let b = g.shape(x)[0];
        let heads = self.rmc.config().num_heads;
        let d = self.rmc.config().mem_width();
        // Read: the previous hidden state queries the previous memory.
        let q = self.read_query.forward(g, store, h); // [B, H·K]
        let q = g.reshape(q, &[b, 1, g.shape(q)[1]]); // [B, 1, H·K]
        let k = self.read_key.forward(g, store, memory); // [B, N, H·K]
        let v = self.read_value.forward(g, store, memory); // [B, N, D]
        let (r, read_attention) = multi_head_attention(g, q, k, v, heads); // [B, 1, D], [B, H, 1, N]
        let r = g.reshape(r, &[b, d]); // [B, D]
        // LSTM on [x ; r].
        let xr = g.concat(&[x, r], 1); // [B, F + D]
        let x_proj = self.lstm.project_input(g, store, xr); // [B, 4S]
        let (h, c) = self.lstm.step(g, store, x_proj, h, c); // [B, S]
        // Write: the new hidden state is the memory's input.
        let write = self.rmc.step(g, store, h, memory);
        // Gate between the LSTM and what was read.
        let hr = g.concat(&[h, r], 1); // [B, S + D]
        let gate = self.output_gate.forward(g, store, hr);
        let gate = g.sigmoid(gate); // [B, S]
        let read = self.read_out.forward(g, store, r); // [B, S]
        let one_minus = g.affine(gate, -1.0, 1.0);
        let from_h = g.mul(gate, h);
        let from_read = g.mul(one_minus, read);
        let output = g.add(from_h, from_read); // [B, S]
        RrnnStep {
            output,
            state: (h, c),
            memory: write.memory,
            read_attention,
            write_attention: write.attention,
        }
    }
}

impl<T: Scalar> Model<T> for RelationalRNNCell {
    fn name(&self) -> &'static str {
        "RRNN cell"
    }

    fn input_size(&self) -> usize {
        self.config.input_size
    }

    fn output_size(&self) -> usize {
        self.config.hidden_size
    }

    fn unroll(&self, g: &mut Graph<T>, store: &ParamStore<T>, inputs: Var) -> Unrolled {
        let (steps, batch) = (g.shape(inputs)[0], g.shape(inputs)[1]);
        let mut state = self.lstm.zero_state(g, batch);
        let mut memory = self.rmc.initial_memory_on(g, batch); // [B, N, D]
        let mut out = Unrolled::default();
        for t in 0..steps {
            let x = g.select(inputs, 0, t); // [B, F]
            let step = self.step(g, store, x, state, memory);
            (state, memory) = (step.state, step.memory);
            out.outputs.push(step.output);
            if !step.write_attention.is_empty() {
                out.attention.push(step.write_attention);
            }
            out.memories.push(step.memory);
        }
        out
    }
}
