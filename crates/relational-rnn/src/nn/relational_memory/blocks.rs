//! The RMC's attend-over-memory blocks (see the equations in `relational_memory.rs`): each block
//! attends over the memory and input rows, then runs its tail row by row (the LayerNorm of the
//! residual sum, then the shared MLP and its LayerNorm). Sonnet keeps only the memory rows of the
//! last block's output, so that block computes them alone after its attention.

use ndarray::Array2;

use super::{AttentionScope, Block, RelationalMemory};
use crate::nn::{masked_attention, merge_heads};
use crate::{Graph, ParamStore, Scalar, Var};

impl RelationalMemory {
    /// Every block in turn, from the memory and the projected input: M̃ and each block's
    /// attention weights (none without attention).
    ///
    /// # Shapes
    /// `x_hat: [B, D]`, `memory: [B, N, D]` → `(M̃ [B, N, D], [B, H, N+1, N+1] per block)`.
    pub(super) fn attend_over_memory<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x_hat: Var,
        memory: Var,
    ) -> (Var, Vec<Var>) {
        match self.config.attention {
            AttentionScope::Full | AttentionScope::SelfAndInput => {
                self.blocks_with_attention(g, store, x_hat, memory)
            }
            AttentionScope::None => (self.blocks_without_attention(g, store, memory), Vec::new()),
        }
    }

    /// The blocks with attention over the memory rows and the input's row: Sonnet's full
    /// attention, or `self-and-input`, where memory row i reads rows i and N (the input) only
    /// and the input row itself only, through the same projections and heads with every other
    /// logit masked to −∞.
    ///
    /// # Shapes
    /// `x_hat: [B, D]`, `memory: [B, N, D]` → `(M̃ [B, N, D], [B, H, N+1, N+1] per block)`.
    fn blocks_with_attention<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        x_hat: Var,
        memory: Var,
    ) -> (Var, Vec<Var>) {
        let c = &self.config;
        let (b, n, d) = (g.shape(memory)[0], c.mem_slots, c.mem_width());
        let x_row = g.reshape(x_hat, &[b, 1, d]); // [B, 1, D]
        let mut z = g.concat(&[memory, x_row], 1); // [B, N+1, D]
        let mask = (c.attention == AttentionScope::SelfAndInput).then(|| {
            let readable = Array2::from_shape_fn((n + 1, n + 1), |(i, j)| i == j || j == n);
            g.constant_map(readable.view().into_dyn(), |ok| {
                if ok { T::zero() } else { T::neg_infinity() }
            })
        }); // [N+1, N+1]: 0 where row i may read row j, −∞ elsewhere
        let mut attention = Vec::with_capacity(self.blocks.len());
        for (bi, block) in self.blocks.iter().enumerate() {
            let last = bi + 1 == self.blocks.len();
            // The last block's output keeps its memory rows only: the fused attention computes
            // their outputs alone, the masked one every row's.
            let (o, a) = match mask {
                None => self.attend(g, store, block, z, if last { n } else { n + 1 }),
                Some(mask) => self.attend_masked(g, store, block, z, mask), // [B, N+1, D]
            }; // o: [B, N+1, D] or [B, N, D]; a: [B, H, N+1, N+1]
            attention.push(a);
            if !last {
                z = self.block_tail(g, store, block, z, o); // [B, N+1, D]
                continue;
            }
            let z_mem = g.slice(z, 1, 0, n); // [B, N, D]: n of every n + 1 rows of z
            z = match mask {
                // With the bits of computing the input's row too and dropping it, as Sonnet does.
                None => g.as_kept_rows(n, n + 1, |g| self.block_tail(g, store, block, z_mem, o)),
                Some(_) => {
                    let o_mem = g.slice(o, 1, 0, n); // [B, N, D]
                    self.block_tail(g, store, block, z_mem, o_mem)
                }
            }; // [B, N, D]
        }
        (z, attention)
    }

    /// The blocks without attention: the attention output is zero, so each block is
    /// `LayerNorm(Z + 0)` then the MLP's sublayer, on the memory rows alone (no row reads the
    /// input's, so it is not built: x̂ reaches the memory through the gates only).
    ///
    /// # Shapes
    /// `memory: [B, N, D]` → M̃ `[B, N, D]`.
    fn blocks_without_attention<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        memory: Var,
    ) -> Var {
        let mut z = memory; // [B, N, D]
        for block in &self.blocks {
            let attended = block.attn_ln.forward(g, store, z); // LayerNorm(z + 0)
            z = self.mlp_sublayer(g, store, block, attended); // [B, N, D]
        }
        z
    }

    /// The rest of a block after its attention: `LayerNorm(z + o)`, then `LayerNorm(z + MLP(z))`
    /// (without the residual sums when `residual` is off), row by row.
    ///
    /// # Shapes
    /// `z, o: [B, R, D]` → `[B, R, D]`.
    pub(super) fn block_tail<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        block: &Block,
        z: Var,
        o: Var,
    ) -> Var {
        let z = if self.config.residual {
            block.attn_ln.forward_plus(g, store, z, o) // LayerNorm(z + o)
        } else {
            block.attn_ln.forward(g, store, o)
        };
        self.mlp_sublayer(g, store, block, z)
    }

    /// `LayerNorm(z + MLP(z))` (without the residual sum when `residual` is off), row by row.
    ///
    /// # Shapes
    /// `z: [B, R, D]` → `[B, R, D]`.
    fn mlp_sublayer<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        block: &Block,
        z: Var,
    ) -> Var {
        let z_mlp = if self.config.residual {
            self.attention_mlp.forward_plus(g, store, z, z) // z + MLP(z)
        } else {
            self.attention_mlp.forward(g, store, z)
        };
        block.mlp_ln.forward(g, store, z_mlp)
    }

    /// Multi-head attention over the rows of `z`, with Sonnet's per-head `[q | k | v]` layout,
    /// output for the first `queries` rows.
    ///
    /// # Shapes
    /// `z: [B, R, D]` → `(O [B, queries, D], A [B, H, R, R])`.
    pub(super) fn attend<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        block: &Block,
        z: Var,
        queries: usize,
    ) -> (Var, Var) {
        let c = &self.config;
        let p = self.project(g, store, block, z); // [B, R, H·(2K+V)]
        // Per head h, columns h·(2K+V)..: [q | k | v]; fused split + attention + merge.
        g.packed_attention_rows(p, c.num_heads, c.key_size(), queries) // [B, Rq, D], [B, H, R, R]
    }

    /// Multi-head attention over the rows of `z` with `mask` added to every head's logits,
    /// through the same projection and heads as [`attend`](Self::attend), from the plain ops.
    ///
    /// # Shapes
    /// `z: [B, R, D]`, `mask: [R, R]` → `(O [B, R, D], A [B, H, R, R])`.
    fn attend_masked<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        block: &Block,
        z: Var,
        mask: Var,
    ) -> (Var, Var) {
        let c = &self.config;
        let (b, r) = (g.shape(z)[0], g.shape(z)[1]);
        let (h, k, v) = (c.num_heads, c.key_size(), c.head_size);
        let p = self.project(g, store, block, z); // [B, R, H·(2K+V)]
        let p = g.reshape(p, &[b, r, h, 2 * k + v]);
        let p = g.permute(p, &[0, 2, 1, 3]); // [B, H, R, 2K+V]
        let q = g.slice(p, 3, 0, k); // [B, H, R, K]
        let keys = g.slice(p, 3, k, 2 * k); // [B, H, R, K]
        let values = g.slice(p, 3, 2 * k, 2 * k + v); // [B, H, R, V]
        let (o, a) = masked_attention(g, q, keys, values, mask); // [B, H, R, V], [B, H, R, R]
        (merge_heads(g, o), a) // [B, R, D]
    }

    /// The block's queries, keys and values of every row, packed per head as `[q | k | v]`:
    /// `LayerNorm(z W_qkv + b_qkv)`.
    ///
    /// # Shapes
    /// `z: [B, R, D]` → `[B, R, H·(2K+V)]`.
    fn project<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        block: &Block,
        z: Var,
    ) -> Var {
        let (qkv, qkv_ln) = block.qkv.as_ref().expect("a block with attention");
        let p = qkv.forward(g, store, z); // [B, R, H·(2K+V)]
        qkv_ln.forward(g, store, p)
    }
}
