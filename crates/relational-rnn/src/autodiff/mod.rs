//! A small reverse-mode tape: enough automatic differentiation to train recurrent models by
//! backpropagation through time, and no more.
//!
//! [`Graph`] is an arena of nodes; a [`Var`] is an index into it. Every op pushes one node holding
//! its output value and how it was made (an `Op`). Nodes are pushed in execution order, so walking
//! the arena backwards is a valid reverse topological order: [`Graph::backward`] needs no sort.
//!
//! The ops are coarse (a whole linear layer, a whole layer norm, a fused softmax cross-entropy),
//! each written as a forward method on [`Graph`] with its backward function next to it, in one file
//! per family:
//!
//! | file | ops |
//! |---|---|
//! | [`linalg`](self) | `linear` (x W + b), `linear_plus` (a + x W + b), `linear_plus_block` (a\[t\] + x W + b), `matmul` (batched, optional transpose); `as_kept_rows` |
//! | [`elementwise`](self) | `add`, `sub`, `mul` (NumPy broadcasting), `affine`, `tanh`, `sigmoid`, `relu` |
//! | [`normalize`](self) | `softmax`, `layer_norm` and `layer_norm_plus` (of a sum) over the last axis |
//! | [`shape`](self) | `concat`, `slice`, `reshape`, `permute`, `sum` |
//! | [`loss`](self) | `softmax_cross_entropy` with per-row weights (masking) |
//! | [`lstm_cell`](self) | `lstm_cell`: the fused LSTM update (gates, c) → (h', c') |
//! | [`attention`](self) | `packed_attention`: multi-head attention over the RMC's packed `[q \| k \| v]` rows |
//! | [`rmc_gate`](self) | `rmc_gates`, `rmc_gated_update`: the RMC's fused memory gating |
//!
//! The files stand in layers, bottom first; each imports only from its own row and the rows above:
//!
//! | files | what they hold |
//! |---|---|
//! | `var`, `layout`, `heads`, `row_subset` | the [`Var`] handle; how tape arrays are laid out; small data that op records hold (attention geometry, `linear`'s kept rows) |
//! | `op`, `node` | what a node remembers about how it was made (`Op`: which op, its inputs, what backward needs), and the node |
//! | `buffers`, `accumulate` | arrays handed from one step to the next; adding contributions into gradient slots |
//! | `workspace` | state an op keeps on the tape beside its nodes, and the three hooks that keep it in step with the tape |
//! | `graph`, `ctx` | the tape: nodes, leaves, parameters and their gradients; what a backward function reads |
//! | `weight_grads` | `linear`'s weight gradients, summed over the steps that share a weight |
//! | the op files above | forward and backward of each op, side by side |
//! | `backward` | the backward walk down the tape and the dispatch of each node to its op's backward |
//!
//! The tape core (`graph`, `ctx`, `workspace`) knows no op: an op that shares work between its
//! nodes keeps it in its own workspace (`linear`: its packed weights and pending weight
//! gradients), which the tape only clears and notifies.
//!
//! Every op is checked against central finite differences in f64 by [`gradcheck`].
//!
//! Every op computes on plain slices and views; how fast is the business of the
//! `kernels` layer below (`src/kernels/`), and none of it changes a result:
//!
//! | helper | where | what it does for the ops |
//! |---|---|---|
//! | `buffers` | here | hands each node's arrays from one step to the next (a warm step allocates no arrays) |
//! | `gemm` | `kernels` | the f32 matrix product behind [`Scalar::mat_mul`](crate::Scalar::mat_mul) (AVX-512; each weight packed once per tape, kept in `linear`'s workspace; the bias added as tiles are stored; a shared weight's gradient summed over its T steps in one pass; the same bits as matrixmultiply, which f64 and other CPUs keep using) |
//! | `simd` | `kernels` | runs the element-wise kernels as AVX2 (or, for long rows, AVX-512) code when the CPU has it, bit-identical to the baseline build |
//! | `reduce` | `kernels` | sums in eight lanes in a fixed order, so that float reductions vectorise |
//! | `threads` | `kernels` | inside [`with_threads`](crate::with_threads)`(n, …)`, splits large products, the packing of large weights and the copies of large parameters and gradients (and Adam's update) over the caller and n − 1 helper threads, with the same bits |

mod accumulate;
mod attention;
mod backward;
mod buffers;
mod ctx;
mod elementwise;
mod graph;
mod heads;
mod layout;
mod linalg;
mod loss;
mod lstm_cell;
mod node;
mod normalize;
mod op;
mod rmc_gate;
mod row_subset;
mod shape;
#[cfg(test)]
pub(crate) mod test_values;
mod var;
mod weight_grads;
mod workspace;

pub mod gradcheck;

pub use graph::Graph;
pub use var::Var;
