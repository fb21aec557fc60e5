//! Optimisation: turning gradients into parameter updates, and deciding when to stop.
//!
//! One training step of the run loop is
//!
//! ```text
//! grads      = backward(loss)                       // Grads<T>, shapes of the ParamStore
//! norm       = clip_global_norm(&mut grads, max)    // rescale if ‖g‖₂ > max
//! lr         = schedule.lr_at(opt.steps_taken(), base_lr)
//! opt.step(&mut store, &grads, lr)                  // p ← p − lr · update(g, state)
//! ```
//!
//! and every evaluation feeds [`EarlyStopping::update`].
//!
//! | file | what | formula (per element, g the gradient) |
//! |---|---|---|
//! | [`sgd`] | [`Sgd`]: SGD with momentum, Nesterov, weight decay | b ← μ b + g; p ← p − lr · b (Nesterov: g + μ b) |
//! | [`adam`] | [`Adam`]: bias-corrected Adam | m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − lr · m̂ / (√v̂ + ε) |
//! | [`clip`] | [`clip_global_norm`] | g ← g · max / (‖g‖₂ + 10⁻⁶) when ‖g‖₂ > max |
//! | [`schedule`] | [`LrSchedule`]: constant, step, exponential, warm-up + cosine | see the file |
//! | [`early_stopping`] | [`EarlyStopping`] on a validation metric | stop after `patience` evaluations without a `min_delta` improvement |
//!
//! The semantics are PyTorch's (`torch.optim.SGD`, `torch.optim.Adam`,
//! `torch.nn.utils.clip_grad_norm_`), operation for operation, because the reference numbers we
//! compare against come from PyTorch.
//!
//! Optimiser state (momentum buffers, Adam's `m` and `v`) is kept as [`Grads`]: one
//! array per parameter, same shapes, same order. Checkpoints save it under the parameter names and
//! restore it with `from_state`, so a resumed run is bit-identical to an uninterrupted one. The
//! state is allocated on the first step; later steps update it in place and allocate nothing.
//!
//! Hyper-parameters arrive from users (JSON or TOML), so every configuration has a documented
//! [`Default`] and a `validate()` that returns a [`ConfigError`] instead of panicking.

pub mod adam;
pub mod clip;
pub mod early_stopping;
pub mod schedule;
pub mod sgd;
#[cfg(test)]
mod test_support;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::{ConfigError, Grads, ParamStore, Scalar};

pub use adam::{Adam, AdamConfig, AdamState};
pub use clip::clip_global_norm;
pub use early_stopping::{EarlyStopping, EarlyStoppingConfig, Mode, StopDecision};
pub use schedule::LrSchedule;
pub use sgd::{Sgd, SgdConfig, SgdState};

/// Something that updates parameters in place from their gradients.
///
/// The learning rate is an argument rather than part of the optimiser so that a schedule can
/// choose it each step (`schedule.lr_at(opt.steps_taken(), base_lr)`).
pub trait Optimizer<T: Scalar> {
    /// Applies one update to every parameter of `store` using `grads` at learning rate `lr`.
    ///
    /// # Shapes
    /// `grads` must have the shapes of `store` (as made by [`ParamStore::zeros_like`]), and so
    /// must any state the optimiser was restored with.
    ///
    /// # Panics
    /// When the shapes disagree (a programmer error), naming the parameter and both shapes.
    fn step(&mut self, store: &mut ParamStore<T>, grads: &Grads<T>, lr: f64);

    /// Number of updates applied so far (including those before a restore).
    fn steps_taken(&self) -> u64;

    /// The per-parameter state to checkpoint, by buffer name (`m` and `v` for Adam, `momentum`
    /// for SGD); empty while there is none. [`OptimizerConfig::restore`] takes them back.
    fn buffers(&self) -> Vec<(&'static str, &Grads<T>)>;
}

/// Which optimiser to train with, as written in a JSON or TOML configuration.
///
/// Internally tagged by `kind`: `{"kind": "adam", "lr": 1e-4}` or, in TOML,
/// `[optimizer]` / `kind = "sgd"` / `momentum = 0.9`. Omitted fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent, see [`SgdConfig`].
    Sgd(SgdConfig),
    /// Adam, see [`AdamConfig`].
    Adam(AdamConfig),
}

impl Default for OptimizerConfig {
    /// Adam with [`AdamConfig::default`], the optimiser of the paper.
    fn default() -> Self {
        Self::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// The base learning rate that schedules scale.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(c) => c.lr,
            Self::Adam(c) => c.lr,
        }
    }

    /// Checks every hyper-parameter of the chosen optimiser.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Sgd(c) => c.validate(),
            Self::Adam(c) => c.validate(),
        }
    }

    /// A fresh optimiser of this kind.
    pub fn build<T: Scalar>(&self) -> Result<Box<dyn Optimizer<T> + Send>, ConfigError> {
        self.restore(0, |_| None)
    }

    /// The optimiser after `steps` updates, with the buffers a checkpoint saved from
    /// [`Optimizer::buffers`] (`buffer(name)` returns the one called `name`, if saved). With
    /// `steps = 0` no buffer is needed; Adam after a step needs both `m` and `v`.
    pub fn restore<T: Scalar>(
        &self,
        steps: u64,
        mut buffer: impl FnMut(&str) -> Option<Grads<T>>,
    ) -> Result<Box<dyn Optimizer<T> + Send>, ConfigError> {
        Ok(match self {
            Self::Adam(c) if steps == 0 => Box::new(Adam::new(c.clone())?),
            Self::Adam(c) => {
                let missing = |name| {
                    ConfigError::new(
                        "optimizer",
                        format!("Adam after {steps} steps needs its saved `{name}` buffer"),
                    )
                };
                let m = buffer("m").ok_or_else(|| missing("m"))?;
                let v = buffer("v").ok_or_else(|| missing("v"))?;
                Box::new(Adam::from_state(
                    c.clone(),
                    AdamState { step: steps, m, v },
                )?)
            }
            Self::Sgd(c) => Box::new(Sgd::from_state(
                c.clone(),
                SgdState {
                    steps,
                    momentum_buffer: buffer("momentum"),
                },
            )?),
        })
    }
}

/// `Ok(())` when `0 ≤ value < 1`, the valid range of decay rates (`beta1`, `beta2`, `momentum`).
fn require_unit_interval(field: &str, value: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

/// `Ok(())` when `value ≥ 0` and finite (`lr`, `weight_decay`, `min_delta`).
fn require_non_negative(field: &str, value: f64) -> Result<(), ConfigError> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be a non-negative finite number, got {value}"),
        ))
    }
}

/// Panics unless optimiser state or a gradient has the shape of its parameter.
#[track_caller]
fn assert_same_shape<T>(what: &str, name: &str, param: &ArrayD<T>, other: &ArrayD<T>) {
    assert!(
        param.shape() == other.shape(),
        "{what} of parameter `{name}` has shape {:?}, the parameter has {:?}",
        other.shape(),
        param.shape()
    );
}

/// Panics unless `grads` holds one array per parameter of `store`.
#[track_caller]
fn assert_same_len<T: Scalar>(what: &str, store: &ParamStore<T>, grads: &Grads<T>) {
    assert!(
        store.len() == grads.len(),
        "{what} holds {} tensors, the parameter store {}",
        grads.len(),
        store.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_config_round_trips_through_json_with_defaults() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"kind": "adam", "lr": 0.0001}"#).unwrap();
        let OptimizerConfig::Adam(a) = &c else {
            panic!("expected adam, got {c:?}")
        };
        assert_eq!(a.lr, 1e-4);
        assert_eq!(a.beta2, 0.999);
        assert_eq!(c.lr(), 1e-4);
        let back: OptimizerConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);

        let s: OptimizerConfig =
            serde_json::from_str(r#"{"kind": "sgd", "momentum": 0.9, "nesterov": true}"#).unwrap();
        assert_eq!(
            s,
            OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.9,
                nesterov: true,
                ..SgdConfig::default()
            })
        );
        assert!(s.validate().is_ok());
        assert!(OptimizerConfig::default().validate().is_ok());
    }

    #[test]
    fn optimizer_config_rejects_typos_and_unknown_kinds() {
        assert!(
            serde_json::from_str::<OptimizerConfig>(r#"{"kind": "adam", "beta_1": 0.5}"#).is_err()
        );
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "rmsprop"}"#).is_err());
    }

    #[test]
    fn optimizer_config_validate_dispatches() {
        let bad = OptimizerConfig::Sgd(SgdConfig {
            lr: -1.0,
            ..SgdConfig::default()
        });
        assert_eq!(bad.validate().unwrap_err().field, "lr");
        let bad = OptimizerConfig::Adam(AdamConfig {
            eps: 0.0,
            ..AdamConfig::default()
        });
        assert_eq!(bad.validate().unwrap_err().field, "eps");
    }
}
