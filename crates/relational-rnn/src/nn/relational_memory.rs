//! The Relational Memory Core (Santoro et al., 2018), faithful to DeepMind Sonnet v1
//! `snt.RelationalMemory`, with one addition: a `residual` switch for the ablation.
//!
//! One step, `(x [B, F], M [B, N, D]) → (output [B, N·D], M' [B, N, D])`, D = H·V:
//!
//! ```text
//! x̂  = x W_in + b_in                                   [B, D]
//! Z  = concat_rows(M, x̂)                                [B, N+1, D]     (input row last)
//! repeat num_blocks times (own QKV and LayerNorms per block, one MLP shared by all blocks):
//!     P    = LayerNorm(Z W_qkv + b_qkv)                 [B, N+1, H·(2K+V)]
//!     q, k, v per head: head h owns columns h·(2K+V) …, laid out [q_h | k_h | v_h]
//!     A    = softmax_row(q kᵀ / √K)                     [B, H, N+1, N+1]
//!     O    = concat_heads(A v)                          [B, N+1, D]
//!     Z    = LayerNorm(Z + O)          (residual off: LayerNorm(O))
//!     Z    = LayerNorm(Z + MLP(Z))     (residual off: LayerNorm(MLP(Z)))
//! M̃  = Z without its last row                            [B, N, D]
//! G  = tanh(M) W_m + b_m + x̂ W_x + b_x                  [B, N, 2·G]  (G = D unit, 1 memory)
//! i  = σ(G_input + input_bias),  f = σ(G_forget + forget_bias)
//! M' = i ⊙ tanh(M̃) + f ⊙ M           (gate style none: M' = M̃)
//! output = flatten(M')                                  [B, N·D]
//! ```
//!
//! Only M̃ is kept of the last block's rows, and every op after its attention works row by row, so
//! that block computes its memory rows alone after the attention (the attention itself still
//! reads every row): the same values and, by summing the MLP's weight gradients in the depth
//! blocks of all N + 1 rows, the same bits as computing the input's row and dropping it.
//!
//! Two controls narrow what each row attends over ([`AttentionScope`], `attention` in the config),
//! to attribute the RMC's gain to slot-to-slot attention:
//!
//! ```text
//! full            (Sonnet) every row over all N + 1 rows, as above
//! self-and-input  memory row i over rows {i, N} only (2 keys per query and head), the input row
//!                 over itself; the same projections and heads, every other logit masked to −∞:
//!                 no slot reads another slot within a step
//! none            no attention: O = 0, so a block is Z = LayerNorm(Z), Z = LayerNorm(Z + MLP(Z))
//!                 on the memory rows alone; no QKV projection or QKV LayerNorm is created
//! ```
//!
//! Without attention the input x̂ reaches the memory **only through the gates** (it enters
//! `G`, hence i and f); M̃ is a row-wise function of M, so each slot's update depends on its own
//! row, x̂ and the parameters alone. That control therefore needs gates and the residual
//! (without it M̃ = LayerNorm(MLP(LayerNorm(0))) would not depend on M), which validation checks.
//!
//! The gates see `tanh(M)` of the *previous* memory, not M̃, as in Sonnet. The initial memory is
//! the identity, `eye(N)` padded with zeros (or truncated) to D columns, and is not trained.
//! Parameter names follow `golden/README.md`: `<name>.input_proj`, `<name>.block{b}.qkv`,
//! `.qkv_ln`, `.attn_ln`, `.mlp_ln`, `<name>.attention_mlp.{l}`, `<name>.gate_input`,
//! `<name>.gate_memory`.

mod blocks;

use ndarray::Array3;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{LayerNorm, Linear, Mlp, Model, Unrolled};
use crate::{ConfigError, Graph, ParamStore, Scalar, Var};

/// How the new memory is blended with the old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GateStyle {
    /// An input and a forget gate per memory unit: gates `[B, N, D]` (Sonnet's default).
    #[default]
    Unit,
    /// One input and one forget gate per memory slot: gates `[B, N, 1]`.
    Memory,
    /// No gating: the attended memory M̃ replaces M.
    None,
}

impl std::str::FromStr for GateStyle {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unit" => Ok(Self::Unit),
            "memory" => Ok(Self::Memory),
            "none" => Ok(Self::None),
            other => Err(ConfigError::new(
                "gate_style",
                format!("must be one of unit, memory, none; got `{other}`"),
            )),
        }
    }
}

/// Which rows each row attends over: Sonnet's full attention, or one of two controls that
/// attribute the RMC's gain to slot-to-slot attention (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionScope {
    /// Every row over all N + 1 rows (Sonnet).
    #[default]
    Full,
    /// Each memory row over its own row and the input row only: no slot-to-slot attention.
    SelfAndInput,
    /// No attention: the memory rows go through the MLP alone, the input only through the gates.
    None,
}

/// Configuration of a [`RelationalMemory`]; names and defaults are Sonnet's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmcConfig {
    /// Input width F.
    pub input_size: usize,
    /// Memory slots N.
    pub mem_slots: usize,
    /// Value size per head V; memory width D = H·V.
    pub head_size: usize,
    /// Attention heads H.
    pub num_heads: usize,
    /// Attend-over-memory repetitions per step.
    pub num_blocks: usize,
    /// Added before the forget sigmoid (may be +∞: keep memory exactly).
    pub forget_bias: f64,
    /// Added before the input sigmoid (may be −∞: ignore the input exactly).
    pub input_bias: f64,
    /// Gating of the memory update.
    pub gate_style: GateStyle,
    /// Linear layers L in the attention MLP.
    pub attention_mlp_layers: usize,
    /// Query/key size per head K; `None` means K = V.
    pub key_size: Option<usize>,
    /// Whether both residual connections are used (true in Sonnet; false for the ablation).
    pub residual: bool,
    /// Which rows each memory row attends over (a control of the study; Sonnet's is `Full`).
    #[serde(default)]
    pub attention: AttentionScope,
}

impl Default for RmcConfig {
    /// The project default (perf config C): F 40, N 4 slots, H 4 heads × V 16 (D 64), one block,
    /// forget bias 1, input bias 0, unit gates, a 2-layer attention MLP, K = V, residual on, full
    /// attention.
    fn default() -> Self {
        Self {
            input_size: 40,
            mem_slots: 4,
            head_size: 16,
            num_heads: 4,
            num_blocks: 1,
            forget_bias: 1.0,
            input_bias: 0.0,
            gate_style: GateStyle::Unit,
            attention_mlp_layers: 2,
            key_size: None,
            residual: true,
            attention: AttentionScope::Full,
        }
    }
}

impl RmcConfig {
    /// Memory width D = H·V.
    pub fn mem_width(&self) -> usize {
        self.num_heads * self.head_size
    }

    /// The same memory width D = H·V split into `heads` heads: `num_heads = heads`,
    /// `head_size = D / heads` (K follows V unless `key_size` is set). A sweep over H then compares
    /// ways of splitting D, not models of different sizes. Errors when `heads` is 0 or does not
    /// divide D.
    pub fn with_heads_keeping_width(self, heads: usize) -> Result<Self, ConfigError> {
        ConfigError::require_size("heads", heads, 1)?;
        let width = self.mem_width();
        if !width.is_multiple_of(heads) {
            return Err(ConfigError::new(
                "heads",
                format!(
                    "{heads} does not divide the memory width D = {width} (heads keeps D fixed; \
                     set num_heads and head_size to change D)"
                ),
            ));
        }
        Ok(Self {
            num_heads: heads,
            head_size: width / heads,
            ..self
        })
    }

    /// Key size K (defaults to V).
    pub fn key_size(&self) -> usize {
        self.key_size.unwrap_or(self.head_size)
    }

    /// Gate width per slot: D for unit gates, 1 for memory gates, 0 for none.
    pub fn gate_width(&self) -> usize {
        match self.gate_style {
            GateStyle::Unit => self.mem_width(),
            GateStyle::Memory => 1,
            GateStyle::None => 0,
        }
    }

    /// Parses a JSON configuration with the field names above, also accepting Sonnet's
    /// `"gate_style": null` for no gating (the golden files' metadata uses it), and validates it.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let bad = |e: serde_json::Error| ConfigError::new("config", e.to_string());
        let mut v: serde_json::Value = serde_json::from_str(json).map_err(bad)?;
        if v.get("gate_style").is_some_and(serde_json::Value::is_null) {
            v["gate_style"] = "none".into();
        }
        let config: Self = serde_json::from_value(v).map_err(bad)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every size is at least 1 and no bias is NaN (±∞ biases are allowed), and that a
    /// core without attention has gates and the residual (the input reaches its memory only
    /// through the gates, and its memory reaches M̃ only through the residual).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("input_size", self.input_size, 1)?;
        ConfigError::require_size("mem_slots", self.mem_slots, 1)?;
        ConfigError::require_size("head_size", self.head_size, 1)?;
        ConfigError::require_size("num_heads", self.num_heads, 1)?;
        ConfigError::require_size("num_blocks", self.num_blocks, 1)?;
        ConfigError::require_size("attention_mlp_layers", self.attention_mlp_layers, 1)?;
        ConfigError::require_size("key_size", self.key_size(), 1)?;
        for (field, v) in [
            ("forget_bias", self.forget_bias),
            ("input_bias", self.input_bias),
        ] {
            if v.is_nan() {
                return Err(ConfigError::new(field, "must not be NaN"));
            }
        }
        if self.attention == AttentionScope::None {
            if self.gate_style == GateStyle::None {
                return Err(ConfigError::new(
                    "attention",
                    "`none` needs gates: without attention the input reaches the memory only \
                     through them; got gate_style none",
                ));
            }
            if !self.residual {
                return Err(ConfigError::new(
                    "attention",
                    "`none` needs the residual: without it M̃ = LayerNorm(MLP(LayerNorm(0))) \
                     ignores the memory; got residual false",
                ));
            }
        }
        Ok(())
    }
}

/// Per-block parameters: a QKV projection and its LayerNorm (absent without attention), and the
/// LayerNorms after the attention and after the MLP.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Block {
    pub(super) qkv: Option<(Linear, LayerNorm)>,
    pub(super) attn_ln: LayerNorm,
    pub(super) mlp_ln: LayerNorm,
}

/// Everything one RMC step computes, for the next step and for visualisation.
#[derive(Debug, Clone, PartialEq)]
pub struct RmcStep {
    /// `flatten(M')`: `[B, N·D]`.
    pub output: Var,
    /// The new memory M': `[B, N, D]`.
    pub memory: Var,
    /// Input projection x̂: `[B, D]`.
    pub x_hat: Var,
    /// Attention weights of each block: `[B, H, N+1, N+1]` (row = query, last row/column = input);
    /// with `self-and-input` zero but on the diagonal and the last column; empty with `none`.
    pub attention: Vec<Var>,
    /// Attended memory before gating M̃: `[B, N, D]`.
    pub m_tilde: Var,
    /// Input and forget gates after the sigmoid, side by side: `[B, N, 2G]`, input gates in
    /// columns `..G`, forget gates in `G..` (absent without gating).
    pub gates: Option<Var>,
}

/// The Relational Memory Core. See the module documentation for the equations.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalMemory {
    config: RmcConfig,
    pub(super) input_proj: Linear,
    pub(super) blocks: Vec<Block>,
    pub(super) attention_mlp: Mlp,
    pub(super) gate_input: Option<Linear>,
    pub(super) gate_memory: Option<Linear>,
}

impl RelationalMemory {
    /// Validates `config` and creates the parameters under `name` (e.g. `"rmc"`), in Sonnet's
    /// creation order.
    pub fn new<T: Scalar>(
        config: &RmcConfig,
        store: &mut ParamStore<T>,
        name: &str,
        rng: &mut impl Rng,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (d, k, v, h) = (
            config.mem_width(),
            config.key_size(),
            config.head_size,
            config.num_heads,
        );
        let qkv_width = h * (2 * k + v);
        let input_proj = Linear::new(
            store,
            &format!("{name}.input_proj"),
            config.input_size,
            d,
            rng,
        );
        let blocks = (0..config.num_blocks)
            .map(|b| {
                let p = format!("{name}.block{b}");
                Block {
                    qkv: (config.attention != AttentionScope::None).then(|| {
                        (
                            Linear::new(store, &format!("{p}.qkv"), d, qkv_width, rng),
                            LayerNorm::new(store, &format!("{p}.qkv_ln"), qkv_width),
                        )
                    }),
                    attn_ln: LayerNorm::new(store, &format!("{p}.attn_ln"), d),
                    mlp_ln: LayerNorm::new(store, &format!("{p}.mlp_ln"), d),
                }
            })
            .collect();
        let attention_mlp = Mlp::new(
            store,
            &format!("{name}.attention_mlp"),
            &vec![d; config.attention_mlp_layers + 1],
            rng,
        );
        let gw = config.gate_width();
        let (gate_input, gate_memory) = if gw > 0 {
            (
                Some(Linear::new(
                    store,
                    &format!("{name}.gate_input"),
                    d,
                    2 * gw,
                    rng,
                )),
                Some(Linear::new(
                    store,
                    &format!("{name}.gate_memory"),
                    d,
                    2 * gw,
                    rng,
                )),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            config: config.clone(),
            input_proj,
            blocks,
            attention_mlp,
            gate_input,
            gate_memory,
        })
    }

    /// The configuration this core was built with.
    pub fn config(&self) -> &RmcConfig {
        &self.config
    }

    /// The initial memory: `eye(N)` padded with zeros (or truncated) to D columns, per batch
    /// element.
    ///
    /// # Shapes
    /// returns `[B, N, D]`.
    pub fn initial_memory<T: Scalar>(&self, batch: usize) -> Array3<T> {
        let (n, d) = (self.config.mem_slots, self.config.mem_width());
        Array3::from_shape_fn(
            (batch, n, d),
            |(_, i, j)| if i == j { T::one() } else { T::zero() },
        )
    }

    /// [`initial_memory`](Self::initial_memory) as a constant on the tape, in an array the tape
    /// reuses across steps.
    ///
    /// # Shapes
    /// returns `[B, N, D]`.
    pub fn initial_memory_on<T: Scalar>(&self, g: &mut Graph<T>, batch: usize) -> Var {
        let one = self.initial_memory::<T>(1); // [1, N, D]
        let (n, d) = (self.config.mem_slots, self.config.mem_width());
        let all = one.broadcast((batch, n, d)).expect("batch axis of 1");
        g.constant_map(all.into_dyn(), |x| x)
    }

    /// One step from the raw input.
    ///
    /// # Shapes
    /// `x: [B, F]`, `memory: [B, N, D]` → see [`RmcStep`].
    pub fn step<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x: Var,
        memory: Var,
    ) -> RmcStep {
        let x_hat = self.input_proj.forward(g, store, x); // [B, D]
        self.step_projected(g, store, x_hat, memory)
    }

    /// One step from an already projected input x̂ (lets [`Model::unroll`] project all T inputs
    /// with one matrix product).
    ///
    /// # Shapes
    /// `x_hat: [B, D]`, `memory: [B, N, D]` → see [`RmcStep`].
    #[track_caller]
    pub fn step_projected<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x_hat: Var,
        memory: Var,
    ) -> RmcStep {
        let c = &self.config;
        let (n, d) = (c.mem_slots, c.mem_width());
        let b = g.shape(x_hat)[0];
        assert_eq!(
            g.shape(memory),
            [b, n, d],
            "RMC step: memory must be [B, N, D] = [{b}, {n}, {d}]"
        );
        // The blocks (`relational_memory/blocks.rs`): M̃ [B, N, D], [B, H, N+1, N+1] per block.
        let (m_tilde, attention) = self.attend_over_memory(g, store, x_hat, memory);
        let (new_memory, gates) = match (&self.gate_input, &self.gate_memory) {
            (Some(gate_input), Some(gate_memory)) => {
                let gw = c.gate_width();
                let tanh_m = g.tanh(memory); // [B, N, D]
                let from_memory = gate_memory.forward(g, store, tanh_m); // [B, N, 2G]
                let from_input = gate_input.forward(g, store, x_hat); // [B, 2G]
                // σ(from_memory + from_input + [input_bias | forget_bias]): [B, N, 2G]
                let gates = g.rmc_gates(from_memory, from_input, c.input_bias, c.forget_bias);
                let new_memory = if gw == d {
                    g.rmc_gated_update(gates, m_tilde, memory) // i ⊙ tanh(M̃) + f ⊙ M
                } else {
                    let i = g.slice(gates, 2, 0, gw); // [B, N, G]
                    let f = g.slice(gates, 2, gw, 2 * gw); // [B, N, G]
                    let tanh_mt = g.tanh(m_tilde); // [B, N, D]
                    let write = g.mul(i, tanh_mt); // [B, N, D]
                    let keep = g.mul(f, memory); // [B, N, D]
                    g.add(write, keep)
                };
                (new_memory, Some(gates))
            }
            _ => (m_tilde, None),
        };
        let output = g.reshape(new_memory, &[b, n * d]); // [B, N·D]
        RmcStep {
            output,
            memory: new_memory,
            x_hat,
            attention,
            m_tilde,
            gates,
        }
    }

    /// Unrolls over `inputs` from a given initial memory (a constant, or an input whose gradient
    /// you want), returning every step.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `memory: [B, N, D]` → T [`RmcStep`]s.
    pub fn unroll_from<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        inputs: Var,
        memory: Var,
    ) -> Vec<RmcStep> {
        let steps = g.shape(inputs)[0];
        let x_hat_all = self.input_proj.forward(g, store, inputs); // [T, B, D]
        let mut memory = memory;
        (0..steps)
            .map(|t| {
                let x_hat = g.select(x_hat_all, 0, t); // [B, D]
                let step = self.step_projected(g, store, x_hat, memory);
                memory = step.memory;
                step
            })
            .collect()
    }
}

impl<T: Scalar> Model<T> for RelationalMemory {
    fn name(&self) -> &'static str {
        "RMC"
    }

    fn input_size(&self) -> usize {
        self.config.input_size
    }

    fn output_size(&self) -> usize {
        self.config.mem_slots * self.config.mem_width()
    }

    fn unroll(&self, g: &mut Graph<T>, store: &ParamStore<T>, inputs: Var) -> Unrolled {
        let batch = g.shape(inputs)[1];
        let m0 = self.initial_memory_on(g, batch); // [B, N, D]
        let steps = self.unroll_from(g, store, inputs, m0);
        let mut unrolled = Unrolled {
            outputs: Vec::with_capacity(steps.len()),
            attention: Vec::with_capacity(steps.len()),
            memories: Vec::with_capacity(steps.len()),
        };
        for step in steps {
            unrolled.outputs.push(step.output);
            unrolled.memories.push(step.memory);
            if !step.attention.is_empty() {
                unrolled.attention.push(step.attention); // moved, not cloned
            }
        }
        unrolled
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ArrayD;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::{GateStyle, RelationalMemory, RmcConfig};
    use crate::autodiff::test_values::values;
    use crate::{Graph, ParamStore, Var};

    /// M̃ as the RMC computed it before its last block kept the memory rows only: every block on
    /// all N + 1 rows, the input's row dropped after the last.
    fn m_tilde_with_the_input_row(
        rmc: &RelationalMemory,
        g: &mut Graph<f32>,
        store: &ParamStore<f32>,
        x_hat: Var,
        memory: Var,
    ) -> Var {
        let (b, n, d) = (
            g.shape(memory)[0],
            rmc.config.mem_slots,
            rmc.config.mem_width(),
        );
        let x_row = g.reshape(x_hat, &[b, 1, d]);
        let mut z = g.concat(&[memory, x_row], 1); // [B, N+1, D]
        for block in &rmc.blocks {
            let (o, _) = rmc.attend(g, store, block, z, n + 1);
            z = rmc.block_tail(g, store, block, z, o);
        }
        g.slice(z, 1, 0, n)
    }

    /// The step computes its last block on the memory rows only (attention outputs, layer
    /// norms and MLP); M̃ and every gradient from it (each parameter, x̂, the memory) have the
    /// bits of computing the input's row too and dropping it after the block, as Sonnet does:
    /// one and two blocks, unit and memory gates, residual on and off, 64 batch elements of 5
    /// rows (320, past the GEMM's first depth block of 256). Checked to fail with the MLP's
    /// weight gradient summed over the memory rows in depth blocks of their own.
    #[test]
    fn last_block_on_the_memory_rows_has_the_bits_of_dropping_the_input_row() {
        let (b, n) = (64, 4);
        let cases = [
            (1, GateStyle::Unit, true),
            (2, GateStyle::Memory, true),
            (1, GateStyle::Unit, false),
        ];
        for (num_blocks, gate_style, residual) in cases {
            let config = RmcConfig {
                num_blocks,
                gate_style,
                residual,
                ..RmcConfig::default()
            };
            let d = config.mem_width();
            let mut store = ParamStore::<f32>::new();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let rmc = RelationalMemory::new(&config, &mut store, "rmc", &mut rng).unwrap();
            let run = |cut: bool| {
                let mut g = Graph::<f32>::new();
                let x_hat = g.input(values(&[b, d], 1));
                let memory = g.input(values(&[b, n, d], 2));
                let m_tilde = if cut {
                    rmc.step_projected(&mut g, &store, x_hat, memory).m_tilde
                } else {
                    m_tilde_with_the_input_row(&rmc, &mut g, &store, x_hat, memory)
                };
                let weights = g.constant(values(&[b, n, d], 4));
                let loss = g.mul(m_tilde, weights);
                let loss = g.sum(loss);
                g.backward(loss);
                let bits = |a: &ArrayD<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let mut all = vec![
                    ("M̃".to_string(), bits(g.value(m_tilde))),
                    ("δx̂".to_string(), bits(g.grad(x_hat).unwrap())),
                    ("δM".to_string(), bits(g.grad(memory).unwrap())),
                ];
                let grads = g.param_grads(&store);
                for ((id, name, _), (_, grad)) in store.iter().zip(grads.iter()) {
                    all.push((format!("δ{name} ({id:?})"), bits(grad)));
                }
                all
            };
            let (cut, full) = (run(true), run(false));
            for ((name, c), (_, f)) in cut.iter().zip(&full) {
                let differ = c.iter().zip(f).filter(|(c, f)| c != f).count();
                assert!(
                    c.len() == f.len() && differ == 0,
                    "{num_blocks} blocks, {gate_style:?}, residual {residual}: {name}: {differ} \
                     of {} differ",
                    c.len()
                );
            }
        }
    }

    /// `heads` re-splits D = H·V and keeps every other field; a count that does not divide D,
    /// or 0, is an error naming `heads`.
    #[test]
    fn heads_keeping_width_re_splits_d() {
        let config = RmcConfig {
            num_heads: 4,
            head_size: 16,
            key_size: Some(5),
            mem_slots: 3,
            ..RmcConfig::default()
        };
        let two = config.clone().with_heads_keeping_width(2).unwrap();
        assert_eq!((two.num_heads, two.head_size, two.mem_width()), (2, 32, 64));
        let back = RmcConfig {
            num_heads: 4,
            head_size: 16,
            ..two.clone()
        };
        assert_eq!(back, config);
        assert_eq!(
            config
                .clone()
                .with_heads_keeping_width(64)
                .unwrap()
                .head_size,
            1
        );
        let err = config.clone().with_heads_keeping_width(3).unwrap_err();
        assert_eq!(err.field, "heads");
        assert_eq!(
            err.to_string(),
            "invalid `heads`: 3 does not divide the memory width D = 64 (heads keeps D fixed; \
             set num_heads and head_size to change D)"
        );
        assert_eq!(
            config.with_heads_keeping_width(0).unwrap_err().field,
            "heads"
        );
    }
}
