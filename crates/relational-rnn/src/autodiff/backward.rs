//! The backward pass: the walk down the tape, and the dispatch of each node to its op's backward
//! function (which lives beside the op's forward, in the op files).

use ndarray::ArrayD;

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::op::Op;
use super::var::Var;
use super::{attention, elementwise, linalg, loss, lstm_cell, normalize, rmc_gate, shape};
use crate::Scalar;

impl<T: Scalar> Graph<T> {
    /// Backpropagates from the scalar `loss` (seeded with d loss / d loss = 1) through every node
    /// that requires a gradient. Afterwards [`grad`](Self::grad) answers for any node.
    ///
    /// # Panics
    /// If `loss` holds more than one element.
    #[track_caller]
    pub fn backward(&mut self, loss: Var) {
        let shape = self.shape(loss).to_vec();
        assert_eq!(
            shape.iter().product::<usize>(),
            1,
            "backward needs a scalar loss, got shape {shape:?}"
        );
        self.backward_with(loss, ArrayD::from_elem(shape, T::one()));
    }

    /// Backpropagates a given output gradient `seed` (same shape as `out`).
    #[track_caller]
    pub fn backward_with(&mut self, out: Var, seed: ArrayD<T>) {
        assert_eq!(
            seed.shape(),
            self.shape(out),
            "seed gradient shape {:?} != output shape {:?}",
            seed.shape(),
            self.shape(out)
        );
        self.grads.reset(self.nodes.len());
        self.workspaces.start_backward();
        self.grads.set(out.0, seed);
        for i in (0..=out.0).rev() {
            if !self.nodes[i].requires_grad {
                continue;
            }
            // Every reader of node i has been visited: the gradient terms ops held back for it
            // (a shared weight's, in `linear`) are added now.
            self.workspaces
                .node_reached(Var(i), &self.nodes, &mut self.grads);
            let Some(grad) = self.grads.take(i) else {
                continue;
            };
            let ctx = Ctx {
                nodes: &self.nodes,
                workspaces: &self.workspaces,
                out: i,
                grad: &grad,
            };
            backward_node(&self.nodes[i].op, &ctx, &mut self.grads);
            self.grads.set(i, grad);
        }
    }
}

/// Adds the contribution of the node that `op` made to its parents' gradients, given `ctx.grad`
/// = d loss / d output.
fn backward_node<T: Scalar>(op: &Op<T>, ctx: &Ctx<'_, T>, grads: &mut GradSlots<T>) {
    match op {
        Op::Leaf | Op::Param => {}
        Op::Linear {
            x,
            w,
            b,
            addend,
            zero_x,
            rows,
        } => linalg::linear_backward(ctx, (*x, *zero_x, *rows), *w, *b, *addend, grads),
        Op::MatMul { a, b, transpose_b } => {
            linalg::matmul_backward(ctx, *a, *b, *transpose_b, grads)
        }
        Op::Add(a, b) => elementwise::add_backward(ctx, *a, *b, T::one(), grads),
        Op::Sub(a, b) => elementwise::add_backward(ctx, *a, *b, -T::one(), grads),
        Op::Mul(a, b) => elementwise::mul_backward(ctx, *a, *b, grads),
        Op::Affine { a, scale } => elementwise::affine_backward(ctx, *a, *scale, grads),
        Op::Tanh(a) => elementwise::tanh_backward(ctx, *a, grads),
        Op::Sigmoid(a) => elementwise::sigmoid_backward(ctx, *a, grads),
        Op::Relu(a) => elementwise::relu_backward(ctx, *a, grads),
        Op::Softmax(a) => normalize::softmax_backward(ctx, *a, grads),
        Op::LayerNorm {
            x,
            plus,
            gamma,
            beta,
            mean,
            inv_std,
        } => normalize::layer_norm_backward(ctx, [*x, *gamma, *beta], *plus, mean, inv_std, grads),
        Op::Concat { parts, axis } => shape::concat_backward(ctx, parts, *axis, grads),
        Op::Slice { a, axis, start } => shape::slice_backward(ctx, *a, *axis, *start, grads),
        Op::Select { a, axis, index } => shape::select_backward(ctx, *a, *axis, *index, grads),
        Op::Reshape(a) => shape::reshape_backward(ctx, *a, grads),
        Op::Permute { a, axes } => shape::permute_backward(ctx, *a, axes, grads),
        Op::Sum(a) => shape::sum_backward(ctx, *a, grads),
        Op::LstmCellState { gates, c, acts } => {
            lstm_cell::lstm_state_backward(ctx, *gates, *c, acts, grads)
        }
        Op::LstmCellOutput { gates, state, acts } => {
            lstm_cell::lstm_output_backward(ctx, *gates, *state, acts, grads)
        }
        Op::AttentionWeights { p, heads } => {
            attention::attention_weights_backward(ctx, *p, *heads, grads)
        }
        Op::AttentionOutput { p, weights, heads } => {
            attention::attention_output_backward(ctx, *p, *weights, *heads, grads)
        }
        Op::RmcGates { p, p_x } => rmc_gate::gates_backward(ctx, *p, *p_x, grads),
        Op::RmcGatedUpdate {
            gates,
            m_tilde,
            memory,
            tanh_m_tilde,
        } => rmc_gate::update_backward(ctx, [*gates, *m_tilde, *memory], tanh_m_tilde, grads),
        Op::SoftmaxCrossEntropy {
            logits,
            targets,
            weights,
            probs,
        } => loss::cross_entropy_backward(ctx, *logits, targets, weights, probs, grads),
    }
}
