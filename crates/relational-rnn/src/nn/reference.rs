//! The reference path: one RMC step and one LSTM step written from plain ops, line for line as
//! their equations read (see [`RelationalMemory`] and [`LstmCell`]), on the same parameters as the
//! models.
//!
//! The models' own steps are the fast path: fused gates, packed attention, `LayerNorm(a + b)` in
//! one op, and the RMC's last block computing its memory rows only. Here every equation is one or
//! two calls of a plain op (matrix product, broadcast add, slice, sigmoid, tanh, softmax,
//! LayerNorm), the input's row is carried through every block and dropped at the end, as in
//! Sonnet. Use it to read the model, or to check a new kernel: `tests/reference.rs` holds the
//! fast path to it (values and every gradient, to rounding), for every gate style, attention
//! scope, residual setting and block count. It is slower; the models never call it.

use ndarray::{Array2, ArrayD, IxDyn};

use super::relational_memory::Block;
use super::{
    AttentionScope, LayerNorm, Linear, LstmCell, Mlp, RelationalMemory, RmcStep, masked_attention,
    merge_heads, scaled_dot_product_attention,
};
use crate::{Graph, ParamStore, Scalar, Var};

/// `x W + b` over the last axis, as a matrix product of the rows.
///
/// # Shapes
/// `x: [..., I]` → `[..., O]`.
pub fn linear<T: Scalar>(g: &mut Graph<T>, store: &ParamStore<T>, layer: &Linear, x: Var) -> Var {
    let shape = g.shape(x).to_vec();
    let (lead, width) = shape.split_at(shape.len() - 1);
    let rows = g.reshape(x, &[lead.iter().product(), width[0]]); // [R, I]
    let w = g.param(store, layer.weight); // [I, O]
    let mut y = g.matmul(rows, w, false); // [R, O]
    if let Some(bias) = layer.bias {
        let b = g.param(store, bias); // [O], broadcast over rows
        y = g.add(y, b);
    }
    let out: Vec<usize> = lead.iter().copied().chain([layer.out_features]).collect();
    g.reshape(y, &out)
}

/// `LayerNorm(x)` over the last axis, with the layer's gain and shift.
///
/// # Shapes
/// `x: [..., D]` → `[..., D]`.
pub fn layer_norm<T: Scalar>(
    g: &mut Graph<T>,
    store: &ParamStore<T>,
    ln: &LayerNorm,
    x: Var,
) -> Var {
    let (gamma, beta) = (g.param(store, ln.gamma), g.param(store, ln.beta));
    g.layer_norm(x, gamma, beta, super::LAYER_NORM_EPS)
}

/// Linear layers with ReLU between them.
///
/// # Shapes
/// `x: [..., I]` → `[..., O]`.
pub fn mlp<T: Scalar>(g: &mut Graph<T>, store: &ParamStore<T>, mlp: &Mlp, x: Var) -> Var {
    let mut h = x;
    for (l, layer) in mlp.layers.iter().enumerate() {
        if l > 0 {
            h = g.relu(h);
        }
        h = linear(g, store, layer, h);
    }
    h
}

/// One RMC step, as the equations of [`RelationalMemory`] read.
///
/// # Shapes
/// `x: [B, F]`, `memory: [B, N, D]` → see [`RmcStep`] (its attention weights cover every row of
/// every block, `[B, H, N+1, N+1]`; empty for the `none` scope).
pub fn rmc_step<T: Scalar>(
    g: &mut Graph<T>,
    store: &ParamStore<T>,
    rmc: &RelationalMemory,
    x: Var,
    memory: Var,
) -> RmcStep {
    let c = rmc.config();
    let (b, n, d) = (g.shape(x)[0], c.mem_slots, c.mem_width());
    let x_hat = linear(g, store, &rmc.input_proj, x); // x̂ = x W_in + b_in       [B, D]
    let x_row = g.reshape(x_hat, &[b, 1, d]);
    let mut z = g.concat(&[memory, x_row], 1); // Z = [M; x̂]                      [B, N+1, D]
    let mut attention = Vec::new();
    for block in &rmc.blocks {
        let o = match c.attention {
            AttentionScope::None => g.constant(ArrayD::zeros(IxDyn(&[b, n + 1, d]))), // O = 0
            scope => {
                let (o, a) = attend(g, store, rmc, block, z, scope); // [B, N+1, D]
                attention.push(a);
                o
            }
        };
        z = if c.residual {
            let zo = g.add(z, o);
            layer_norm(g, store, &block.attn_ln, zo) // Z = LayerNorm(Z + O)
        } else {
            layer_norm(g, store, &block.attn_ln, o) // Z = LayerNorm(O)
        };
        let m = mlp(g, store, &rmc.attention_mlp, z);
        z = if c.residual {
            let zm = g.add(z, m);
            layer_norm(g, store, &block.mlp_ln, zm) // Z = LayerNorm(Z + MLP(Z))
        } else {
            layer_norm(g, store, &block.mlp_ln, m) // Z = LayerNorm(MLP(Z))
        };
    }
    let m_tilde = g.slice(z, 1, 0, n); // M̃ = Z without the input's row          [B, N, D]

    let (new_memory, gates) = match (&rmc.gate_input, &rmc.gate_memory) {
        (Some(gate_input), Some(gate_memory)) => {
            let gw = c.gate_width(); // G: D (unit) or 1 (memory)
            let tanh_m = g.tanh(memory);
            let from_memory = linear(g, store, gate_memory, tanh_m); // [B, N, 2G]
            let from_input = linear(g, store, gate_input, x_hat); // [B, 2G]
            let from_input = g.reshape(from_input, &[b, 1, 2 * gw]);
            let pre = g.add(from_memory, from_input); // G = tanh(M) W_m + b_m + x̂ W_x + b_x
            let i = g.slice(pre, 2, 0, gw);
            let f = g.slice(pre, 2, gw, 2 * gw);
            let i = g.affine(i, 1.0, c.input_bias);
            let f = g.affine(f, 1.0, c.forget_bias);
            let i = g.sigmoid(i); // i = σ(G_input + input_bias)   [B, N, G]
            let f = g.sigmoid(f); // f = σ(G_forget + forget_bias) [B, N, G]
            let tanh_mt = g.tanh(m_tilde);
            let write = g.mul(i, tanh_mt);
            let keep = g.mul(f, memory);
            let new_memory = g.add(write, keep); // M' = i ⊙ tanh(M̃) + f ⊙ M
            (new_memory, Some(g.concat(&[i, f], 2)))
        }
        _ => (m_tilde, None), // gate style none: M' = M̃
    };
    RmcStep {
        output: g.reshape(new_memory, &[b, n * d]), // flatten(M')  [B, N·D]
        memory: new_memory,
        x_hat,
        attention,
        m_tilde,
        gates,
    }
}

/// Multi-head attention over the rows of `z` with Sonnet's per-head `[q | k | v]` columns; the
/// `self-and-input` scope masks every logit but a row's own and the input's.
///
/// # Shapes
/// `z: [B, R, D]` → `(O [B, R, D], A [B, H, R, R])`.
fn attend<T: Scalar>(
    g: &mut Graph<T>,
    store: &ParamStore<T>,
    rmc: &RelationalMemory,
    block: &Block,
    z: Var,
    scope: AttentionScope,
) -> (Var, Var) {
    let c = rmc.config();
    let (b, r) = (g.shape(z)[0], g.shape(z)[1]);
    let (h, k, v) = (c.num_heads, c.key_size(), c.head_size);
    let (qkv, qkv_ln) = block.qkv.as_ref().expect("a block with attention");
    let p = linear(g, store, qkv, z);
    let p = layer_norm(g, store, qkv_ln, p); // P = LayerNorm(Z W_qkv + b_qkv)  [B, R, H·(2K+V)]
    let p = g.reshape(p, &[b, r, h, 2 * k + v]);
    let p = g.permute(p, &[0, 2, 1, 3]); // [B, H, R, 2K+V]
    let q = g.slice(p, 3, 0, k); // [B, H, R, K]
    let keys = g.slice(p, 3, k, 2 * k); // [B, H, R, K]
    let values = g.slice(p, 3, 2 * k, 2 * k + v); // [B, H, R, V]
    let (o, a) = if scope == AttentionScope::SelfAndInput {
        let readable = Array2::from_shape_fn((r, r), |(i, j)| i == j || j == r - 1);
        let mask = g.constant(
            readable
                .mapv(|ok| if ok { T::zero() } else { T::neg_infinity() })
                .into_dyn(),
        );
        masked_attention(g, q, keys, values, mask)
    } else {
        scaled_dot_product_attention(g, q, keys, values) // A = softmax(q kᵀ / √K)
    };
    (merge_heads(g, o), a) // O = concat_heads(A v)  [B, R, D]
}

/// One LSTM step, as the equations of [`LstmCell`] read.
///
/// # Shapes
/// `x: [B, F]`, `h, c: [B, S]` → `(h' [B, S], c' [B, S])`.
pub fn lstm_step<T: Scalar>(
    g: &mut Graph<T>,
    store: &ParamStore<T>,
    cell: &LstmCell,
    x: Var,
    h: Var,
    c: Var,
) -> (Var, Var) {
    let s = cell.hidden_size();
    let (w_ih, b_ih) = (g.param(store, cell.weight_ih), g.param(store, cell.bias_ih));
    let (w_hh, b_hh) = (g.param(store, cell.weight_hh), g.param(store, cell.bias_hh));
    let from_x = g.matmul(x, w_ih, false);
    let from_x = g.add(from_x, b_ih);
    let from_h = g.matmul(h, w_hh, false);
    let from_h = g.add(from_h, b_hh);
    let z = g.add(from_x, from_h); // [i, f, g, o] = x W_ih + b_ih + h W_hh + b_hh  [B, 4S]
    let [i, f, gg, o] = [0, 1, 2, 3].map(|q| g.slice(z, 1, q * s, (q + 1) * s));
    let (i, f, gg, o) = (g.sigmoid(i), g.sigmoid(f), g.tanh(gg), g.sigmoid(o));
    let keep = g.mul(f, c);
    let write = g.mul(i, gg);
    let c_next = g.add(keep, write); // c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
    let tanh_c = g.tanh(c_next);
    let h_next = g.mul(o, tanh_c); // h' = σ(o) ⊙ tanh(c')
    (h_next, c_next)
}
