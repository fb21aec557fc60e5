//! What each node remembers about how it was made: the op and its inputs, and whatever its
//! backward function needs beyond the values on the tape (row statistics, activations, geometry).
//! The forward and backward functions live in the op files; `backward.rs` dispatches to them.

use ndarray::ArrayD;

use super::heads::Heads;
use super::row_subset::RowSubset;
use super::var::Var;
use crate::Scalar;

/// How a node was made.
pub(crate) enum Op<T> {
    Leaf,
    Param,
    Linear {
        x: Var,
        w: Var,
        b: Option<Var>,
        /// Added to the product (`linear_plus`): the node, and the block of it when it is a stack
        /// of addends (`linear_plus_block`).
        addend: Option<(Var, usize)>,
        /// `x` is a constant of zeros (an LSTM's initial state): the product was not computed,
        /// and its term of w's gradient is zero.
        zero_x: bool,
        /// x's rows are a subset of a taller matrix's, whose depth blocks w's gradient keeps.
        rows: Option<RowSubset>,
    },
    MatMul {
        a: Var,
        b: Var,
        transpose_b: bool,
    },
    Add(Var, Var),
    Sub(Var, Var),
    Mul(Var, Var),
    Affine {
        a: Var,
        scale: T,
    },
    Tanh(Var),
    Sigmoid(Var),
    Relu(Var),
    Softmax(Var),
    LayerNorm {
        x: Var,
        /// Added to x before normalising (`layer_norm_plus`).
        plus: Option<Var>,
        gamma: Var,
        beta: Var,
        /// Each row's mean (of x + plus with `plus`), kept for backward to recompute the
        /// normalised input (x − mean) / σ: x's shape with the last axis removed.
        mean: ArrayD<T>,
        /// 1 / σ per row: x's shape with the last axis removed.
        inv_std: ArrayD<T>,
    },
    Concat {
        parts: Vec<Var>,
        axis: usize,
    },
    Slice {
        a: Var,
        axis: usize,
        start: usize,
    },
    Select {
        a: Var,
        axis: usize,
        index: usize,
    },
    Reshape(Var),
    Permute {
        a: Var,
        axes: Vec<usize>,
    },
    Sum(Var),
    /// c' of the fused LSTM cell; `acts` = `[σ(i), σ(f), tanh(g)]`: `[B, 3S]`.
    LstmCellState {
        gates: Var,
        c: Var,
        acts: ArrayD<T>,
    },
    /// h' of the fused LSTM cell (reads c' = `state`); `acts` = `[σ(o), tanh(c')]`: `[B, 2S]`.
    LstmCellOutput {
        gates: Var,
        state: Var,
        acts: ArrayD<T>,
    },
    /// Attention weights of the fused packed attention, `[B, H, R, R]`, read from `p`.
    AttentionWeights {
        p: Var,
        heads: Heads,
    },
    /// Output `A V` of the fused packed attention, `[B, R, H·V]`.
    AttentionOutput {
        p: Var,
        weights: Var,
        heads: Heads,
    },
    /// The RMC's input and forget gates σ(P + p_x + biases), `[B, N, 2G]`.
    RmcGates {
        p: Var,
        p_x: Var,
    },
    /// The RMC's gated memory update; keeps tanh(M̃): `[B, N, D]`.
    RmcGatedUpdate {
        gates: Var,
        m_tilde: Var,
        memory: Var,
        tanh_m_tilde: ArrayD<T>,
    },
    SoftmaxCrossEntropy {
        logits: Var,
        targets: Vec<usize>,
        /// Per-row weight divided by the total weight (zero for masked rows).
        weights: Vec<T>,
        /// Softmax of the logits: `[rows, C]`.
        probs: ArrayD<T>,
    },
}

impl<T: Scalar> Op<T> {
    /// The arrays saved for backward (at most two) and `concat`'s list of parts, given back for
    /// reuse when the tape is cleared.
    pub(crate) fn into_buffers(self) -> (impl IntoIterator<Item = ArrayD<T>>, Option<Vec<Var>>) {
        let (a, b, parts) = match self {
            Op::LayerNorm { mean, inv_std, .. } => (Some(mean), Some(inv_std), None),
            Op::LstmCellState { acts, .. } | Op::LstmCellOutput { acts, .. } => {
                (Some(acts), None, None)
            }
            Op::SoftmaxCrossEntropy { probs, .. } => (Some(probs), None, None),
            Op::RmcGatedUpdate { tanh_m_tilde, .. } => (Some(tanh_m_tilde), None, None),
            Op::Concat { parts, .. } => (None, None, Some(parts)),
            _ => (None, None, None),
        };
        (a.into_iter().chain(b), parts)
    }

    /// Calls `f` on each node this one was computed from.
    pub(crate) fn for_each_parent(&self, mut f: impl FnMut(Var)) {
        match self {
            Op::Leaf | Op::Param => {}
            Op::Linear {
                x, w, b, addend, ..
            } => {
                f(*x);
                f(*w);
                b.iter()
                    .chain(addend.as_ref().map(|(a, _)| a))
                    .for_each(|&v| f(v));
            }
            Op::MatMul { a, b, .. }
            | Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::LstmCellState { gates: a, c: b, .. }
            | Op::LstmCellOutput {
                gates: a, state: b, ..
            }
            | Op::AttentionOutput {
                p: a, weights: b, ..
            }
            | Op::RmcGates { p: a, p_x: b } => {
                f(*a);
                f(*b);
            }
            Op::Affine { a, .. }
            | Op::Tanh(a)
            | Op::Sigmoid(a)
            | Op::Relu(a)
            | Op::Softmax(a)
            | Op::Slice { a, .. }
            | Op::Select { a, .. }
            | Op::Reshape(a)
            | Op::Permute { a, .. }
            | Op::Sum(a)
            | Op::AttentionWeights { p: a, .. }
            | Op::SoftmaxCrossEntropy { logits: a, .. } => f(*a),
            Op::LayerNorm {
                x,
                plus,
                gamma,
                beta,
                ..
            } => [*x, *gamma, *beta].iter().chain(plus).for_each(|&v| f(v)),
            Op::Concat { parts, .. } => parts.iter().copied().for_each(f),
            Op::RmcGatedUpdate {
                gates,
                m_tilde,
                memory,
                ..
            } => [*gates, *m_tilde, *memory].into_iter().for_each(f),
        }
    }
}
