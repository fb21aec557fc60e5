//! # relational-rnn
//!
//! Relational recurrent neural networks (Santoro et al., *Relational recurrent neural networks*,
//! NeurIPS 2018) implemented from scratch, NumPy-style, on [`ndarray`]: explicit arrays, explicit
//! maths, and a small reverse-mode tape so that training is real backpropagation through time.
//!
//! What is here:
//! - [`autodiff`]: the tape ([`Graph`], [`Var`]), its ops with forward and backward side by side,
//!   and a finite-difference gradient checker; below it, the crate's private `kernels` (the f32
//!   GEMM, SIMD, reductions, helper threads), whose public knobs are [`with_threads`] (the
//!   thread count of the code it runs) and [`beside`];
//! - [`params`]: named parameters ([`ParamStore`]), gradients ([`Grads`]) and Sonnet's initialiser;
//! - [`nn`]: linear, layer norm, MLP, multi-head attention, the LSTM baseline, the Relational
//!   Memory Core (faithful to DeepMind's Sonnet) and the hybrid `RelationalRNNCell`, with the
//!   RMC and LSTM steps also written from plain ops in [`nn::reference`];
//! - [`optim`]: SGD and Adam (PyTorch semantics), global-norm clipping, learning-rate schedules,
//!   early stopping;
//! - [`train`]: one training step, evaluation, and a run loop that records metrics;
//! - [`loss`]: masked sequence targets and accuracy; [`checkpoint`]: safetensors files;
//! - [`memory`]: a rough upper bound on an experiment's memory, from its configuration alone;
//! - [`study`]: a study's `summary.json` as typed rows, with the Welch comparison of seeds;
//! - [`tasks`]: the batch format every sequential reasoning task produces.
//!
//! ## Notation
//!
//! Used in code, docs, notebooks and plots alike.
//!
//! | symbol | meaning | symbol | meaning |
//! |---|---|---|---|
//! | B | batch size | N | memory slots |
//! | T | time steps | H | attention heads |
//! | F | input features per step | K | key size per head |
//! | C | classes (logits) | V | value size per head |
//! | D | memory width = H·V | L | MLP layers inside the RMC |
//! | S | hidden size of an LSTM | R | attended rows = N + 1 |
//!
//! Every public function documents its shapes in a `# Shapes` section, time-major:
//! `inputs: [T, B, F]`, `memory: [B, N, D]`.

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod analysis;
pub mod autodiff;
pub mod checkpoint;
pub mod error;
pub mod experiment;
pub mod fast_math;
mod kernels;
pub mod loss;
pub mod memory;
pub mod nn;
pub mod optim;
pub mod params;
pub mod perf;
pub mod plot;
pub mod scalar;
pub mod stats;
pub mod study;
pub mod tasks;
pub mod train;

pub use autodiff::{Graph, Var};
pub use error::ConfigError;
pub use kernels::threads::{beside, with_threads};
pub use ndarray;
pub use optim::Optimizer;
pub use params::{Grads, ParamId, ParamStore};
pub use plot::{PlotError, Png};
pub use rand;
pub use rand_chacha;
pub use scalar::Scalar;
