//! Layers and models.
//!
//! | file | what |
//! |---|---|
//! | `linear`, `layer_norm`, `mlp` | building blocks with Sonnet's initialisation |
//! | `attention` | multi-head dot-product attention, returning per-head weights |
//! | `lstm` | the LSTM baseline (PyTorch layout, forget bias 1) |
//! | `relational_memory` | the Relational Memory Core, faithful to Sonnet; its attend-over-memory blocks in `relational_memory/blocks.rs` |
//! | `rrnn_cell` | the plan's LSTM + memory hybrid (not in the paper) |
//! | `model` | the [`Model`] trait the three cores implement |
//! | `classifier` | a core plus an MLP head, with the masked sequence loss |
//! | `reference` | the RMC and LSTM steps from plain ops, as their equations read (for reading and tests) |

mod attention;
mod classifier;
mod layer_norm;
mod linear;
mod lstm;
mod mlp;
mod model;
pub mod reference;
mod relational_memory;
mod rrnn_cell;

pub use attention::{
    masked_attention, merge_heads, multi_head_attention, scaled_dot_product_attention, split_heads,
};
pub use classifier::{BatchLoss, ClassifierConfig, Core, CoreConfig, SequenceClassifier};
pub use layer_norm::{LAYER_NORM_EPS, LayerNorm};
pub use linear::Linear;
pub use lstm::{Lstm, LstmCell, LstmConfig};
pub use mlp::Mlp;
pub use model::{Model, Unrolled};
pub use relational_memory::{AttentionScope, GateStyle, RelationalMemory, RmcConfig, RmcStep};
pub use rrnn_cell::{RelationalRNNCell, RrnnCellConfig, RrnnStep};
