//! What the LSTM, the Relational Memory Core and the hybrid cell have in common: they turn a
//! sequence of inputs into a sequence of outputs, one recurrent step at a time.

use crate::{Graph, ParamStore, Scalar, Var};

/// The result of unrolling a model over a sequence: per-step outputs plus what the notebook
/// visualises (attention weights and memories, where the model has them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unrolled {
    /// Output of every step: T vars of shape `[B, output_size]`.
    pub outputs: Vec<Var>,
    /// Attention weights of every step and block: `attention[t][b]` is `[B, H, R, R]`
    /// (empty for the LSTM and for a memory without attention).
    pub attention: Vec<Vec<Var>>,
    /// Memory after every step: T vars of shape `[B, N, D]` (empty for the LSTM).
    pub memories: Vec<Var>,
}

/// A recurrent sequence model. All weights are shared across time steps.
pub trait Model<T: Scalar> {
    /// Short name for tables and legends (`"LSTM"`, `"RMC"`, `"RRNN cell"`).
    fn name(&self) -> &'static str;
    /// Input width F.
    fn input_size(&self) -> usize;
    /// Width of each step's output (S for the LSTM, N·D for the RMC).
    fn output_size(&self) -> usize;
    /// Runs the model over `inputs` from its initial state.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]` → T outputs `[B, output_size]`.
    fn unroll(&self, g: &mut Graph<T>, store: &ParamStore<T>, inputs: Var) -> Unrolled;
}
