//! What each node remembers about how it was made, and the dispatch to its backward function.
//! The backward functions live next to their forwards in the op files.

use std::cell::RefCell;

use ndarray::ArrayD;

use super::attention::{self, Heads};
use super::buffers::GradSlots;
use super::graph::{Node, Var};
use super::linalg::{RowSubset, WeightGrads};
use super::{elementwise, linalg, loss, lstm_cell, normalize, rmc_gate, shape};
use crate::Scalar;
use crate::kernels::gemm::PackCache;

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

    /// Adds this node's contribution to its parents' gradients, given `grad` = d loss / d output.
    pub(crate) fn backward(
        &self,
        nodes: &[Node<T>],
        packs: &RefCell<PackCache>,
        weight_grads: &RefCell<WeightGrads<T>>,
        out: usize,
        grad: &ArrayD<T>,
        grads: &mut GradSlots<T>,
    ) {
        let ctx = Ctx {
            nodes,
            packs,
            weight_grads,
            out,
            grad,
        };
        match self {
            Op::Leaf | Op::Param => {}
            Op::Linear {
                x,
                w,
                b,
                addend,
                zero_x,
                rows,
            } => linalg::linear_backward(&ctx, (*x, *zero_x, *rows), *w, *b, *addend, grads),
            Op::MatMul { a, b, transpose_b } => {
                linalg::matmul_backward(&ctx, *a, *b, *transpose_b, grads)
            }
            Op::Add(a, b) => elementwise::add_backward(&ctx, *a, *b, T::one(), grads),
            Op::Sub(a, b) => elementwise::add_backward(&ctx, *a, *b, -T::one(), grads),
            Op::Mul(a, b) => elementwise::mul_backward(&ctx, *a, *b, grads),
            Op::Affine { a, scale } => elementwise::affine_backward(&ctx, *a, *scale, grads),
            Op::Tanh(a) => elementwise::tanh_backward(&ctx, *a, grads),
            Op::Sigmoid(a) => elementwise::sigmoid_backward(&ctx, *a, grads),
            Op::Relu(a) => elementwise::relu_backward(&ctx, *a, grads),
            Op::Softmax(a) => normalize::softmax_backward(&ctx, *a, grads),
            Op::LayerNorm {
                x,
                plus,
                gamma,
                beta,
                mean,
                inv_std,
            } => normalize::layer_norm_backward(
                &ctx,
                [*x, *gamma, *beta],
                *plus,
                mean,
                inv_std,
                grads,
            ),
            Op::Concat { parts, axis } => shape::concat_backward(&ctx, parts, *axis, grads),
            Op::Slice { a, axis, start } => shape::slice_backward(&ctx, *a, *axis, *start, grads),
            Op::Select { a, axis, index } => shape::select_backward(&ctx, *a, *axis, *index, grads),
            Op::Reshape(a) => shape::reshape_backward(&ctx, *a, grads),
            Op::Permute { a, axes } => shape::permute_backward(&ctx, *a, axes, grads),
            Op::Sum(a) => shape::sum_backward(&ctx, *a, grads),
            Op::LstmCellState { gates, c, acts } => {
                lstm_cell::lstm_state_backward(&ctx, *gates, *c, acts, grads)
            }
            Op::LstmCellOutput { gates, state, acts } => {
                lstm_cell::lstm_output_backward(&ctx, *gates, *state, acts, grads)
            }
            Op::AttentionWeights { p, heads } => {
                attention::attention_weights_backward(&ctx, *p, *heads, grads)
            }
            Op::AttentionOutput { p, weights, heads } => {
                attention::attention_output_backward(&ctx, *p, *weights, *heads, grads)
            }
            Op::RmcGates { p, p_x } => rmc_gate::gates_backward(&ctx, *p, *p_x, grads),
            Op::RmcGatedUpdate {
                gates,
                m_tilde,
                memory,
                tanh_m_tilde,
            } => rmc_gate::update_backward(&ctx, [*gates, *m_tilde, *memory], tanh_m_tilde, grads),
            Op::SoftmaxCrossEntropy {
                logits,
                targets,
                weights,
                probs,
            } => loss::cross_entropy_backward(&ctx, *logits, targets, weights, probs, grads),
        }
    }
}

/// What a backward function may read: the tape, its own output index and the incoming gradient.
pub(crate) struct Ctx<'a, T> {
    pub(crate) nodes: &'a [Node<T>],
    /// The tape's packed weights (for the backward products of `linear`).
    pub(crate) packs: &'a RefCell<PackCache>,
    /// `linear`'s weight gradients, summed when the weight's node is reached (see `linalg.rs`).
    pub(crate) weight_grads: &'a RefCell<WeightGrads<T>>,
    pub(crate) out: usize,
    pub(crate) grad: &'a ArrayD<T>,
}

impl<T: Scalar> Ctx<'_, T> {
    pub(crate) fn value(&self, v: Var) -> &ArrayD<T> {
        &self.nodes[v.0].value
    }

    pub(crate) fn output(&self) -> &ArrayD<T> {
        &self.nodes[self.out].value
    }

    pub(crate) fn wants(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// The gradient slot of `v`, zero-filled with `v`'s shape when still empty: backward products
    /// and sums accumulate straight into it (matrix products with β = 1, `+=` loops).
    pub(crate) fn grad_slot<'g>(&self, grads: &'g mut GradSlots<T>, v: Var) -> &'g mut ArrayD<T> {
        let dim = self.value(v).raw_dim();
        let g = grads.zeroed(v, &dim);
        debug_assert!(g.is_standard_layout() && g.raw_dim() == dim);
        g
    }

    /// The gradient slot of `v` and the β a matrix product accumulating into it should use: 1
    /// when the slot already holds a gradient, 0 when it was empty (its contents are then
    /// unspecified and the product overwrites them, so no zero fill is needed).
    pub(crate) fn grad_slot_beta<'g>(
        &self,
        grads: &'g mut GradSlots<T>,
        v: Var,
    ) -> (&'g mut ArrayD<T>, T) {
        let dim = self.value(v).raw_dim();
        let (g, fresh) = grads.slot_or_fresh(v, &dim);
        debug_assert!(g.is_standard_layout() && g.raw_dim() == dim);
        (g, if fresh { T::zero() } else { T::one() })
    }

    /// [`grad_slot`](Self::grad_slot) as one flat slice.
    pub(crate) fn grad_slice<'g>(&self, grads: &'g mut GradSlots<T>, v: Var) -> &'g mut [T] {
        self.grad_slot(grads, v)
            .as_slice_mut()
            .expect("gradient slots are in standard layout")
    }

    /// The gradient slot of `v` as one flat slice, and whether it was empty (`fresh`): its
    /// contents are then unspecified, and the kernel writes every element without reading it.
    pub(crate) fn grad_slice_or_fresh<'g>(
        &self,
        grads: &'g mut GradSlots<T>,
        v: Var,
    ) -> (&'g mut [T], bool) {
        let (g, fresh) = grads.slot_or_fresh(v, &self.value(v).raw_dim());
        let g = g
            .as_slice_mut()
            .expect("gradient slots are in standard layout");
        (g, fresh)
    }
}
