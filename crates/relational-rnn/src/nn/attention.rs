//! Multi-head dot-product attention (Vaswani et al., 2017), the relational operation of the RMC.
//!
//! For each head h, with queries Q_h, keys K_h and values V_h:
//!
//! ```text
//! A_h = softmax_row(Q_h K_hᵀ / √K)      [B, Sq, Sk]
//! O_h = A_h V_h                          [B, Sq, V]
//! O   = concat_h(O_h)                    [B, Sq, H·V]   (head-major columns: h·V + j)
//! ```
//!
//! Every query row is a convex combination of value rows: a slot can read from every other slot
//! (and from the input) in one step, which is what lets the RMC relate memories to each other.

use crate::{Graph, Scalar, Var};

/// Scaled dot-product attention over heads that are already split.
///
/// # Shapes
/// `q: [B, H, Sq, K]`, `k: [B, H, Sk, K]`, `v: [B, H, Sk, V]` →
/// `(out [B, H, Sq, V], weights [B, H, Sq, Sk])`; each row of `weights` sums to 1.
#[track_caller]
pub fn scaled_dot_product_attention<T: Scalar>(
    g: &mut Graph<T>,
    q: Var,
    k: Var,
    v: Var,
) -> (Var, Var) {
    attention_with_mask(g, q, k, v, None)
}

/// [`scaled_dot_product_attention`] with `mask` added to the logits before the softmax: 0 where
/// a query may read a key, −∞ where it may not, so a masked key gets a weight of exactly 0.
/// Every query needs at least one key it may read.
///
/// # Shapes
/// `q: [B, H, Sq, K]`, `k: [B, H, Sk, K]`, `v: [B, H, Sk, V]`, `mask: [Sq, Sk]` →
/// `(out [B, H, Sq, V], weights [B, H, Sq, Sk])`.
#[track_caller]
pub fn masked_attention<T: Scalar>(
    g: &mut Graph<T>,
    q: Var,
    k: Var,
    v: Var,
    mask: Var,
) -> (Var, Var) {
    attention_with_mask(g, q, k, v, Some(mask))
}

#[track_caller]
fn attention_with_mask<T: Scalar>(
    g: &mut Graph<T>,
    q: Var,
    k: Var,
    v: Var,
    mask: Option<Var>,
) -> (Var, Var) {
    let key_size = *g.shape(q).last().expect("q has a key axis");
    let q = g.affine(q, 1.0 / (key_size as f64).sqrt(), 0.0); // [B, H, Sq, K]
    let mut logits = g.matmul(q, k, true); // [B, H, Sq, Sk]
    if let Some(mask) = mask {
        logits = g.add(logits, mask); // [B, H, Sq, Sk] + [Sq, Sk]
    }
    let weights = g.softmax(logits); // [B, H, Sq, Sk]
    let out = g.matmul(weights, v, false); // [B, H, Sq, V]
    (out, weights)
}

/// Splits the last axis into `num_heads` heads: `[B, S, H·E]` → `[B, H, S, E]`.
#[track_caller]
pub fn split_heads<T: Scalar>(g: &mut Graph<T>, x: Var, num_heads: usize) -> Var {
    let s = g.shape(x).to_vec();
    assert!(
        s.len() == 3 && num_heads > 0 && s[2].is_multiple_of(num_heads),
        "split_heads: shape {s:?} cannot split into {num_heads} heads"
    );
    let x = g.reshape(x, &[s[0], s[1], num_heads, s[2] / num_heads]); // [B, S, H, E]
    g.permute(x, &[0, 2, 1, 3]) // [B, H, S, E]
}

/// Concatenates heads back: `[B, H, S, E]` → `[B, S, H·E]` (head-major columns).
#[track_caller]
pub fn merge_heads<T: Scalar>(g: &mut Graph<T>, x: Var) -> Var {
    let s = g.shape(x).to_vec();
    assert_eq!(s.len(), 4, "merge_heads needs [B, H, S, E], got {s:?}");
    let x = g.permute(x, &[0, 2, 1, 3]); // [B, S, H, E]
    g.reshape(x, &[s[0], s[2], s[1] * s[3]]) // [B, S, H·E]
}

/// Multi-head attention on already projected queries, keys and values.
///
/// # Shapes
/// `q: [B, Sq, H·K]`, `k: [B, Sk, H·K]`, `v: [B, Sk, H·V]` →
/// `(out [B, Sq, H·V], weights [B, H, Sq, Sk])`.
///
/// # Panics
/// If the widths are not divisible by `num_heads` or the shapes disagree.
#[track_caller]
pub fn multi_head_attention<T: Scalar>(
    g: &mut Graph<T>,
    q: Var,
    k: Var,
    v: Var,
    num_heads: usize,
) -> (Var, Var) {
    let qh = split_heads(g, q, num_heads); // [B, H, Sq, K]
    let kh = split_heads(g, k, num_heads); // [B, H, Sk, K]
    let vh = split_heads(g, v, num_heads); // [B, H, Sk, V]
    let (out, weights) = scaled_dot_product_attention(g, qh, kh, vh);
    (merge_heads(g, out), weights) // [B, Sq, H·V], [B, H, Sq, Sk]
}
