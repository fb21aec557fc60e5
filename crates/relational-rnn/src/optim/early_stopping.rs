//! Early stopping: end a run once a validation metric stops improving.
//!
//! After each evaluation with metric x, and the best value so far x*:
//!
//! ```text
//! improved  ⇔  x* unset and x not NaN,
//!              or x < x* − min_delta   (Minimize, e.g. loss)
//!              or x > x* + min_delta   (Maximize, e.g. accuracy)
//! improved  → x* ← x, remember the step, reset the count
//! otherwise → count ← count + 1;  stop when count ≥ patience
//! ```
//!
//! Why: the tasks' validation accuracy plateaus long before a fixed step budget runs out, and
//! the best step is the one whose checkpoint to keep. A NaN metric (a diverged model) never
//! counts as an improvement, so it uses up patience instead of becoming the best value. The rule
//! is Keras' and PyTorch Lightning's, so `patience` counts evaluations, not optimiser steps.

use serde::{Deserialize, Serialize};

use super::require_non_negative;
use crate::ConfigError;

/// Whether a smaller or a larger metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Smaller is better (losses). The default.
    #[default]
    Minimize,
    /// Larger is better (accuracies).
    Maximize,
}

/// Settings of [`EarlyStopping`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Evaluations without improvement after which to stop; 0 stops at the first one. Default 10.
    pub patience: u64,
    /// Smallest change that counts as an improvement, ≥ 0. Default `0.0`.
    pub min_delta: f64,
    /// Direction of improvement. Default [`Mode::Minimize`].
    pub mode: Mode,
}

impl Default for EarlyStoppingConfig {
    fn default() -> Self {
        Self {
            patience: 10,
            min_delta: 0.0,
            mode: Mode::Minimize,
        }
    }
}

impl EarlyStoppingConfig {
    /// Checks that `min_delta` is finite and non-negative.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_non_negative("min_delta", self.min_delta)
    }
}

/// What the run loop should do after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopDecision {
    /// The metric is the best so far: keep going (and keep this checkpoint).
    Improved,
    /// No improvement, but patience is not used up yet.
    Continue,
    /// `patience` evaluations in a row without improvement: stop.
    Stop,
}

impl StopDecision {
    /// Whether the run should end.
    pub fn should_stop(self) -> bool {
        self == Self::Stop
    }
}

/// Tracks the best value of a validation metric and when to give up; see the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    best: Option<(u64, f64)>,
    evals_since_best: u64,
}

impl EarlyStopping {
    /// A tracker that has seen no evaluation yet.
    pub fn new(config: EarlyStoppingConfig) -> Result<Self, ConfigError> {
        Self::restore(config, None, 0)
    }

    /// A tracker resumed from a checkpoint: `best` is `(step, value)` of the best evaluation so
    /// far, `evals_since_best` the evaluations since it.
    pub fn restore(
        config: EarlyStoppingConfig,
        best: Option<(u64, f64)>,
        evals_since_best: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            best,
            evals_since_best,
        })
    }

    /// Records the metric of the evaluation made at optimiser step `step`.
    pub fn update(&mut self, step: u64, metric: f64) -> StopDecision {
        let improved = !metric.is_nan()
            && match self.best {
                None => true,
                Some((_, best)) => match self.config.mode {
                    Mode::Minimize => metric < best - self.config.min_delta,
                    Mode::Maximize => metric > best + self.config.min_delta,
                },
            };
        if improved {
            self.best = Some((step, metric));
            self.evals_since_best = 0;
            StopDecision::Improved
        } else {
            self.evals_since_best += 1;
            if self.exhausted() {
                StopDecision::Stop
            } else {
                StopDecision::Continue
            }
        }
    }

    /// Whether patience is already used up (a tracker restored from a run that stopped early):
    /// a resumed run must not train further, whatever its new step cap.
    pub fn exhausted(&self) -> bool {
        self.evals_since_best >= self.config.patience
    }

    /// `(step, value)` of the best evaluation so far, if any.
    pub fn best(&self) -> Option<(u64, f64)> {
        self.best
    }

    /// Evaluations since the best one (or since the start, if none improved yet).
    pub fn evals_since_best(&self) -> u64 {
        self.evals_since_best
    }

    /// The settings.
    pub fn config(&self) -> &EarlyStoppingConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StopDecision::{Continue, Improved, Stop};

    fn tracker(patience: u64, min_delta: f64, mode: Mode) -> EarlyStopping {
        EarlyStopping::new(EarlyStoppingConfig {
            patience,
            min_delta,
            mode,
        })
        .unwrap()
    }

    /// Feeds `metrics` at steps 100, 200, … and returns the decisions.
    fn run(es: &mut EarlyStopping, metrics: &[f64]) -> Vec<StopDecision> {
        (1..)
            .zip(metrics)
            .map(|(i, &m)| es.update(100 * i, m))
            .collect()
    }

    #[test]
    fn minimize_with_patience() {
        let mut es = tracker(2, 0.0, Mode::Minimize);
        let d = run(&mut es, &[1.0, 0.8, 0.9, 0.7, 0.7, 0.75]);
        assert_eq!(d, [Improved, Improved, Continue, Improved, Continue, Stop]);
        assert_eq!(es.best(), Some((400, 0.7)));
        assert_eq!(es.evals_since_best(), 2);
    }

    #[test]
    fn maximize_with_min_delta() {
        let mut es = tracker(3, 0.01, Mode::Maximize);
        // 0.505 is not > 0.5 + 0.01; 0.52 is; 0.525 is not > 0.53; then three misses.
        let d = run(&mut es, &[0.5, 0.505, 0.52, 0.525, 0.2, 0.529]);
        assert_eq!(d, [Improved, Continue, Improved, Continue, Continue, Stop]);
        assert_eq!(es.best(), Some((300, 0.52)));
    }

    #[test]
    fn min_delta_resets_only_on_a_real_improvement() {
        let mut es = tracker(2, 0.1, Mode::Minimize);
        // Creeping down by 0.05 never beats best − 0.1 until the drop to 0.8.
        let d = run(&mut es, &[1.0, 0.95, 0.8, 0.75, 0.72]);
        assert_eq!(d, [Improved, Continue, Improved, Continue, Stop]);
        assert_eq!(es.best(), Some((300, 0.8)));
    }

    #[test]
    fn nan_never_improves() {
        let mut es = tracker(2, 0.0, Mode::Minimize);
        assert_eq!(run(&mut es, &[f64::NAN]), [Continue]);
        assert_eq!(es.best(), None);
        assert_eq!(es.update(200, 3.0), Improved);
        assert_eq!(es.update(300, f64::NAN), Continue);
        assert_eq!(es.update(400, f64::NAN), Stop);
        assert_eq!(es.best(), Some((200, 3.0)));

        let mut es = tracker(5, 0.0, Mode::Maximize);
        assert_eq!(
            run(&mut es, &[0.5, f64::NAN, 0.6]),
            [Improved, Continue, Improved]
        );
    }

    #[test]
    fn zero_patience_stops_at_the_first_miss() {
        let mut es = tracker(0, 0.0, Mode::Maximize);
        assert_eq!(run(&mut es, &[0.1, 0.2, 0.2]), [Improved, Improved, Stop]);
        assert!(Stop.should_stop() && !Continue.should_stop() && !Improved.should_stop());
    }

    #[test]
    fn restore_continues_the_count() {
        let cfg = EarlyStoppingConfig {
            patience: 3,
            ..EarlyStoppingConfig::default()
        };
        let mut es = EarlyStopping::restore(cfg, Some((50, 0.4)), 2).unwrap();
        assert_eq!(es.update(60, 0.45), Stop);
    }

    #[test]
    fn validation_rejects_bad_min_delta() {
        let bad = |min_delta| {
            EarlyStopping::new(EarlyStoppingConfig {
                min_delta,
                ..EarlyStoppingConfig::default()
            })
            .unwrap_err()
            .field
        };
        assert_eq!(bad(-0.1), "min_delta");
        assert_eq!(bad(f64::NAN), "min_delta");
        assert_eq!(bad(f64::INFINITY), "min_delta");
        assert!(EarlyStoppingConfig::default().validate().is_ok());
        let c: EarlyStoppingConfig =
            serde_json::from_str(r#"{"patience": 4, "mode": "maximize"}"#).unwrap();
        assert_eq!((c.patience, c.mode, c.min_delta), (4, Mode::Maximize, 0.0));
    }
}
