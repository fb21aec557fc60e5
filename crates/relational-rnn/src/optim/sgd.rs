//! Stochastic gradient descent with momentum, PyTorch's `torch.optim.SGD` with dampening 0.
//!
//! Per element, with g the gradient, λ the weight decay, μ the momentum and b the momentum buffer:
//!
//! ```text
//! g ← g + λ p                              (L2 weight decay, when λ > 0)
//! b ← g              on the first step      (when μ > 0)
//! b ← μ b + g        afterwards
//! d ← g + μ b        Nesterov               (d ← b without Nesterov, d ← g when μ = 0)
//! p ← p − lr · d
//! ```
//!
//! Why keep it beside Adam: it is the simplest baseline for the optimiser ablation, and the
//! hand-checkable case for the run loop. Dampening is fixed at 0 (PyTorch's default). With it,
//! PyTorch's first-step rule `b ← g` is the general rule applied to a zero buffer, so the buffer
//! is allocated as zeros on the first step and one update rule serves every step.

use ndarray::Zip;
use serde::{Deserialize, Serialize};

use super::{
    Optimizer, assert_same_len, assert_same_shape, require_non_negative, require_unit_interval,
};
use crate::{ConfigError, Grads, ParamStore, Scalar};

/// Hyper-parameters of [`Sgd`]. The learning rate here is the base rate that schedules scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Base learning rate, ≥ 0. Default `1e-3` (PyTorch's).
    pub lr: f64,
    /// Momentum μ in [0, 1); 0 disables the buffer. Default `0.0` (PyTorch's).
    pub momentum: f64,
    /// Nesterov momentum (needs μ > 0). Default `false`.
    pub nesterov: bool,
    /// L2 weight decay λ ≥ 0, added to the gradient as λ p. Default `0.0`.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks the ranges: `lr ≥ 0`, `momentum ∈ [0, 1)`, `weight_decay ≥ 0` (all finite), and
    /// `nesterov` only with `momentum > 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_non_negative("lr", self.lr)?;
        require_unit_interval("momentum", self.momentum)?;
        require_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(ConfigError::new(
                "nesterov",
                "Nesterov momentum requires `momentum` > 0, got 0",
            ));
        }
        Ok(())
    }
}

/// Everything [`Sgd`] carries from one step to the next, for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SgdState<T> {
    /// Updates applied so far.
    pub steps: u64,
    /// The momentum buffer b per parameter; `None` before the first step or when μ = 0.
    pub momentum_buffer: Option<Grads<T>>,
}

/// SGD with optional momentum, Nesterov and weight decay; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Sgd<T> {
    config: SgdConfig,
    state: SgdState<T>,
}

impl<T: Scalar> Sgd<T> {
    /// A fresh optimiser; the momentum buffer is allocated on the first step.
    pub fn new(config: SgdConfig) -> Result<Self, ConfigError> {
        Self::from_state(
            config,
            SgdState {
                steps: 0,
                momentum_buffer: None,
            },
        )
    }

    /// Resumes from saved state: the next step continues exactly where the saved run stopped.
    pub fn from_state(config: SgdConfig, state: SgdState<T>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config, state })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The state to save in a checkpoint.
    pub fn state(&self) -> &SgdState<T> {
        &self.state
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    #[track_caller]
    fn step(&mut self, store: &mut ParamStore<T>, grads: &Grads<T>, lr: f64) {
        assert_same_len("gradient", store, grads);
        let lr = T::from_f64_lossy(lr);
        let mu = T::from_f64_lossy(self.config.momentum);
        let wd = T::from_f64_lossy(self.config.weight_decay);
        let decay = self.config.weight_decay != 0.0;
        let nesterov = self.config.nesterov;

        if self.config.momentum == 0.0 {
            for id in store.ids() {
                let g = grads.get(id);
                assert_same_shape("gradient", store.name(id), store.get(id), g);
                Zip::from(store.get_mut(id)).and(g).for_each(|p, &g| {
                    let g = if decay { g + wd * *p } else { g };
                    *p -= lr * g;
                });
            }
        } else {
            let bufs = self
                .state
                .momentum_buffer
                .get_or_insert_with(|| store.zeros_like());
            assert_same_len("momentum buffer", store, bufs);
            for id in store.ids() {
                let g = grads.get(id);
                let b = bufs.get_mut(id);
                assert_same_shape("gradient", store.name(id), store.get(id), g);
                assert_same_shape("momentum buffer", store.name(id), store.get(id), b);
                Zip::from(store.get_mut(id))
                    .and(g)
                    .and(b)
                    .for_each(|p, &g, b| {
                        let g = if decay { g + wd * *p } else { g };
                        *b = mu * *b + g;
                        let d = if nesterov { g + mu * *b } else { *b };
                        *p -= lr * d;
                    });
            }
        }
        self.state.steps += 1;
    }

    fn steps_taken(&self) -> u64 {
        self.state.steps
    }

    fn buffers(&self) -> Vec<(&'static str, &Grads<T>)> {
        self.state
            .momentum_buffer
            .iter()
            .map(|b| ("momentum", b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_support::{assert_close, one_param, set};
    use ndarray::ArrayD;

    fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd<f64> {
        Sgd::new(SgdConfig {
            lr: 0.0,
            momentum,
            nesterov,
            weight_decay,
        })
        .unwrap()
    }

    #[test]
    fn plain_sgd_steps_by_hand() {
        let (mut s, mut g) = one_param([1.0, -2.0]);
        let w = s.id("w").unwrap();
        let mut opt = sgd(0.0, false, 0.0);
        set(&mut g, [0.5, -1.0]);
        opt.step(&mut s, &g, 0.1);
        // p = [1 − 0.1·0.5, −2 − 0.1·(−1)] = [0.95, −1.9]
        assert_close(s.get(w), [0.95, -1.9]);
        set(&mut g, [2.0, 4.0]);
        opt.step(&mut s, &g, 0.5);
        // p = [0.95 − 1, −1.9 − 2] = [−0.05, −3.9]
        assert_close(s.get(w), [-0.05, -3.9]);
        assert_eq!(opt.steps_taken(), 2);
        assert!(opt.state().momentum_buffer.is_none());
    }

    #[test]
    fn momentum_steps_by_hand() {
        let (mut s, mut g) = one_param([1.0, 2.0]);
        let w = s.id("w").unwrap();
        let mut opt = sgd(0.9, false, 0.0);
        // Step 1: b = g = [1, −2]; p = [1 − 0.1, 2 + 0.2] = [0.9, 2.2]
        set(&mut g, [1.0, -2.0]);
        opt.step(&mut s, &g, 0.1);
        assert_close(s.get(w), [0.9, 2.2]);
        // Step 2: g = [0.5, 0.5]; b = 0.9·[1, −2] + [0.5, 0.5] = [1.4, −1.3];
        // p = [0.9 − 0.14, 2.2 + 0.13] = [0.76, 2.33]
        set(&mut g, [0.5, 0.5]);
        opt.step(&mut s, &g, 0.1);
        assert_close(s.get(w), [0.76, 2.33]);
        // Step 3: g = [0, 1]; b = 0.9·[1.4, −1.3] + [0, 1] = [1.26, −0.17];
        // p = [0.76 − 0.126, 2.33 + 0.017] = [0.634, 2.347]
        set(&mut g, [0.0, 1.0]);
        opt.step(&mut s, &g, 0.1);
        assert_close(s.get(w), [0.634, 2.347]);
        let b = opt.state().momentum_buffer.as_ref().unwrap();
        assert_close(b.get(w), [1.26, -0.17]);
    }

    #[test]
    fn nesterov_steps_by_hand() {
        let (mut s, mut g) = one_param([1.0, 2.0]);
        let w = s.id("w").unwrap();
        let mut opt = sgd(0.9, true, 0.0);
        // Step 1: b = [1, −2]; d = g + 0.9 b = [1.9, −3.8]; p = [1 − 0.19, 2 + 0.38] = [0.81, 2.38]
        set(&mut g, [1.0, -2.0]);
        opt.step(&mut s, &g, 0.1);
        assert_close(s.get(w), [0.81, 2.38]);
        // Step 2: g = [0.5, 0.5]; b = [1.4, −1.3]; d = [0.5 + 1.26, 0.5 − 1.17] = [1.76, −0.67];
        // p = [0.81 − 0.176, 2.38 + 0.067] = [0.634, 2.447]
        set(&mut g, [0.5, 0.5]);
        opt.step(&mut s, &g, 0.1);
        assert_close(s.get(w), [0.634, 2.447]);
    }

    #[test]
    fn weight_decay_is_added_to_the_gradient_before_momentum() {
        let (mut s, mut g) = one_param([1.0, -2.0]);
        let w = s.id("w").unwrap();
        let mut opt = sgd(0.5, false, 0.1);
        // Step 1: g' = [0 + 0.1, 1 − 0.2] = [0.1, 0.8]; b = g'; p = [1 − 0.1, −2 − 0.8] = [0.9, −2.8]
        set(&mut g, [0.0, 1.0]);
        opt.step(&mut s, &g, 1.0);
        assert_close(s.get(w), [0.9, -2.8]);
        // Step 2: g' = [0.09, 1 − 0.28] = [0.09, 0.72]; b = 0.5·[0.1, 0.8] + g' = [0.14, 1.12];
        // p = [0.9 − 0.14, −2.8 − 1.12] = [0.76, −3.92]
        opt.step(&mut s, &g, 1.0);
        assert_close(s.get(w), [0.76, -3.92]);
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = |c: SgdConfig| c.validate().unwrap_err().field;
        let d = SgdConfig::default();
        assert!(d.validate().is_ok());
        assert_eq!(
            bad(SgdConfig {
                lr: -0.1,
                ..d.clone()
            }),
            "lr"
        );
        assert_eq!(
            bad(SgdConfig {
                lr: f64::NAN,
                ..d.clone()
            }),
            "lr"
        );
        assert_eq!(
            bad(SgdConfig {
                lr: f64::INFINITY,
                ..d.clone()
            }),
            "lr"
        );
        assert_eq!(
            bad(SgdConfig {
                momentum: 1.0,
                ..d.clone()
            }),
            "momentum"
        );
        assert_eq!(
            bad(SgdConfig {
                momentum: -0.1,
                ..d.clone()
            }),
            "momentum"
        );
        assert_eq!(
            bad(SgdConfig {
                weight_decay: -1.0,
                ..d.clone()
            }),
            "weight_decay"
        );
        assert_eq!(
            bad(SgdConfig {
                nesterov: true,
                ..d.clone()
            }),
            "nesterov"
        );
        assert!(Sgd::<f32>::new(SgdConfig { lr: -1.0, ..d }).is_err());
    }

    #[test]
    #[should_panic(expected = "gradient of parameter `w` has shape [3]")]
    fn mismatched_gradient_shape_panics_with_both_shapes() {
        let (mut s, _) = one_param([1.0, 2.0]);
        let mut other = ParamStore::<f64>::new();
        other.add("w", ArrayD::zeros(ndarray::IxDyn(&[3])));
        sgd(0.0, false, 0.0).step(&mut s, &other.zeros_like(), 0.1);
    }
}
