//! Learning-rate schedules: the learning rate of each step as a function of the step number.
//!
//! `s` is the number of updates already applied (the optimiser's
//! [`steps_taken`](super::Optimizer::steps_taken)), so the first update uses `s = 0`; η is the
//! base learning rate of the optimiser configuration.
//!
//! ```text
//! Constant                                      η
//! StepDecay { every: k, gamma: γ,               η · max(γ^⌊s / k⌋, r)
//!             min_lr_ratio: r }
//! Exponential { gamma: γ }                      η · γ^s
//! WarmupCosine { warmup_steps: w,               η · s / w                                   s < w
//!                total_steps: n,                η · (r + (1 − r) · ½ (1 + cos(π (s − w)/(n − w))))   w ≤ s ≤ n
//!                min_lr_ratio: r }              η · r                                       s > n
//! ```
//!
//! Why warm-up then cosine: Adam's second-moment estimate is noisy over the first few hundred
//! steps, and a small learning rate there avoids an early blow-up; the cosine tail anneals
//! smoothly to `r · η` without a step-decay cliff. As in Hugging Face's
//! `get_cosine_schedule_with_warmup`, the warm-up starts at exactly 0 (the first update is a
//! no-op) and reaches η at `s = w`. With `w = 0` the cosine starts at once.
//!
//! Schedules are read from JSON or TOML, internally tagged by `kind`:
//! `{"kind": "warmup_cosine", "warmup_steps": 500, "total_steps": 20000, "min_lr_ratio": 0.1}`.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How the learning rate changes with the step number; see the [module docs](self) for the
/// formulas.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base learning rate throughout (the default).
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` steps, down to `min_lr_ratio` times the base rate
    /// (Sonnet's Nth-farthest recipe: 0.9 every 1 % of the run, floor 8e-5 for a base of 1e-4).
    StepDecay {
        /// Steps between decays, ≥ 1.
        every: u64,
        /// Factor per decay, in (0, 1].
        gamma: f64,
        /// Floor as a fraction of the base rate, in [0, 1] (0, the default: no floor).
        #[serde(default)]
        min_lr_ratio: f64,
    },
    /// Multiply by `gamma` every step.
    Exponential {
        /// Factor per step, in (0, 1].
        gamma: f64,
    },
    /// Linear warm-up from 0 to the base rate, then a cosine down to `min_lr_ratio` times it.
    WarmupCosine {
        /// Steps of linear warm-up (0 for none).
        warmup_steps: u64,
        /// Step at which the cosine reaches its minimum; must exceed `warmup_steps`.
        total_steps: u64,
        /// Final learning rate as a fraction of the base rate, in [0, 1].
        min_lr_ratio: f64,
    },
}

impl LrSchedule {
    /// The learning rate for the update made after `step` updates, given the base rate `base_lr`.
    pub fn lr_at(&self, step: u64, base_lr: f64) -> f64 {
        let s = step as f64;
        match *self {
            Self::Constant => base_lr,
            Self::StepDecay {
                every,
                gamma,
                min_lr_ratio,
            } => base_lr * gamma.powf((step / every) as f64).max(min_lr_ratio),
            Self::Exponential { gamma } => base_lr * gamma.powf(s),
            Self::WarmupCosine {
                warmup_steps,
                total_steps,
                min_lr_ratio,
            } => {
                if step < warmup_steps {
                    base_lr * s / warmup_steps as f64
                } else if step <= total_steps {
                    let progress =
                        (step - warmup_steps) as f64 / (total_steps - warmup_steps) as f64;
                    let cosine = 0.5 * (1.0 + (PI * progress).cos());
                    base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine)
                } else {
                    base_lr * min_lr_ratio
                }
            }
        }
    }

    /// Checks the parameters: `every ≥ 1`, `gamma ∈ (0, 1]`, `total_steps > warmup_steps`,
    /// `min_lr_ratio ∈ [0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Self::Constant => Ok(()),
            Self::StepDecay {
                every,
                gamma,
                min_lr_ratio,
            } => {
                if every == 0 {
                    return Err(ConfigError::new("every", "must be at least 1, got 0"));
                }
                require_ratio(min_lr_ratio)?;
                require_gamma(gamma)
            }
            Self::Exponential { gamma } => require_gamma(gamma),
            Self::WarmupCosine {
                warmup_steps,
                total_steps,
                min_lr_ratio,
            } => {
                if total_steps <= warmup_steps {
                    return Err(ConfigError::new(
                        "total_steps",
                        format!("must exceed `warmup_steps` ({warmup_steps}), got {total_steps}"),
                    ));
                }
                require_ratio(min_lr_ratio)
            }
        }
    }
}

/// `Ok(())` when `0 < gamma ≤ 1`: a decay factor that neither zeroes nor grows the rate.
fn require_ratio(min_lr_ratio: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&min_lr_ratio) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "min_lr_ratio",
            format!("must be in [0, 1], got {min_lr_ratio}"),
        ))
    }
}

fn require_gamma(gamma: f64) -> Result<(), ConfigError> {
    if gamma > 0.0 && gamma <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            "gamma",
            format!("must be in (0, 1], got {gamma}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "got {a}, want {b}");
    }

    #[test]
    fn constant_is_constant() {
        let s = LrSchedule::Constant;
        for step in [0, 1, 17, u64::MAX] {
            assert_eq!(s.lr_at(step, 3e-4), 3e-4);
        }
    }

    #[test]
    fn step_decay_at_chosen_steps() {
        let s = LrSchedule::StepDecay {
            every: 10,
            gamma: 0.5,
            min_lr_ratio: 0.0,
        };
        close(s.lr_at(0, 0.1), 0.1);
        close(s.lr_at(9, 0.1), 0.1);
        close(s.lr_at(10, 0.1), 0.05);
        close(s.lr_at(19, 0.1), 0.05);
        close(s.lr_at(20, 0.1), 0.025);
        close(s.lr_at(35, 0.1), 0.0125);
        // Sonnet's Nth-farthest schedule: 1e-4, × 0.9 per 1 % of the run, floor 8e-5.
        let sonnet = LrSchedule::StepDecay {
            every: 1_000,
            gamma: 0.9,
            min_lr_ratio: 0.8,
        };
        close(sonnet.lr_at(999, 1e-4), 1e-4);
        close(sonnet.lr_at(1_000, 1e-4), 9e-5);
        close(sonnet.lr_at(2_000, 1e-4), 8.1e-5);
        close(sonnet.lr_at(3_000, 1e-4), 8e-5);
        close(sonnet.lr_at(90_000, 1e-4), 8e-5);
    }

    #[test]
    fn exponential_at_chosen_steps() {
        let s = LrSchedule::Exponential { gamma: 0.9 };
        close(s.lr_at(0, 2.0), 2.0);
        close(s.lr_at(1, 2.0), 1.8);
        close(s.lr_at(2, 2.0), 1.62);
        close(s.lr_at(10, 2.0), 2.0 * 0.348_678_440_1);
    }

    #[test]
    fn warmup_cosine_boundaries_and_closed_form() {
        let s = LrSchedule::WarmupCosine {
            warmup_steps: 4,
            total_steps: 12,
            min_lr_ratio: 0.1,
        };
        let base = 0.2;
        // Warm-up: 0, ¼, ½, ¾ of base, then base exactly at s = w.
        close(s.lr_at(0, base), 0.0);
        close(s.lr_at(1, base), 0.05);
        close(s.lr_at(3, base), 0.15);
        close(s.lr_at(4, base), 0.2);
        // Cosine over 8 steps: at s = 6 progress ¼ → cos(π/4) = √2/2.
        let c = 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        close(s.lr_at(6, base), base * (0.1 + 0.9 * c));
        // Half-way (s = 8): halfway between base and the floor.
        close(s.lr_at(8, base), base * (0.1 + 0.9 * 0.5));
        // End and beyond: the floor.
        close(s.lr_at(12, base), 0.02);
        close(s.lr_at(13, base), 0.02);
        close(s.lr_at(1_000_000, base), 0.02);
        // Monotone non-increasing after the warm-up.
        let lrs: Vec<f64> = (4..=13).map(|t| s.lr_at(t, base)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]), "{lrs:?}");
    }

    #[test]
    fn warmup_cosine_without_warmup_starts_at_base() {
        let s = LrSchedule::WarmupCosine {
            warmup_steps: 0,
            total_steps: 2,
            min_lr_ratio: 0.0,
        };
        close(s.lr_at(0, 1.0), 1.0);
        close(s.lr_at(1, 1.0), 0.5);
        close(s.lr_at(2, 1.0), 0.0);
        close(s.lr_at(3, 1.0), 0.0);
    }

    #[test]
    fn validation_rejects_bad_values() {
        let field = |s: LrSchedule| s.validate().unwrap_err().field;
        assert!(LrSchedule::Constant.validate().is_ok());
        assert!(LrSchedule::Exponential { gamma: 1.0 }.validate().is_ok());
        assert_eq!(field(LrSchedule::Exponential { gamma: 0.0 }), "gamma");
        assert_eq!(field(LrSchedule::Exponential { gamma: 1.5 }), "gamma");
        assert_eq!(field(LrSchedule::Exponential { gamma: f64::NAN }), "gamma");
        assert_eq!(
            field(LrSchedule::StepDecay {
                every: 0,
                gamma: 0.5,
                min_lr_ratio: 0.0
            }),
            "every"
        );
        assert_eq!(
            field(LrSchedule::StepDecay {
                every: 3,
                gamma: -0.5,
                min_lr_ratio: 0.0
            }),
            "gamma"
        );
        assert_eq!(
            field(LrSchedule::StepDecay {
                every: 3,
                gamma: 0.5,
                min_lr_ratio: 1.5
            }),
            "min_lr_ratio"
        );
        let wc = |w, n, r| LrSchedule::WarmupCosine {
            warmup_steps: w,
            total_steps: n,
            min_lr_ratio: r,
        };
        assert!(wc(0, 1, 0.0).validate().is_ok());
        assert!(wc(10, 11, 1.0).validate().is_ok());
        assert_eq!(field(wc(10, 10, 0.1)), "total_steps");
        assert_eq!(field(wc(10, 5, 0.1)), "total_steps");
        assert_eq!(field(wc(0, 10, -0.1)), "min_lr_ratio");
        assert_eq!(field(wc(0, 10, 1.1)), "min_lr_ratio");
        assert_eq!(field(wc(0, 10, f64::NAN)), "min_lr_ratio");
    }

    #[test]
    fn reads_from_json_tagged_by_kind() {
        let s: LrSchedule = serde_json::from_str(
            r#"{"kind": "warmup_cosine", "warmup_steps": 5, "total_steps": 50, "min_lr_ratio": 0.1}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            LrSchedule::WarmupCosine {
                warmup_steps: 5,
                total_steps: 50,
                min_lr_ratio: 0.1
            }
        );
        let c: LrSchedule = serde_json::from_str(r#"{"kind": "constant"}"#).unwrap();
        assert_eq!(c, LrSchedule::Constant);
        let e = LrSchedule::StepDecay {
            every: 3,
            gamma: 0.5,
            min_lr_ratio: 0.0,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"step_decay","every":3,"gamma":0.5,"min_lr_ratio":0.0}"#
        );
        let old: LrSchedule =
            serde_json::from_str(r#"{"kind":"step_decay","every":3,"gamma":0.5}"#).unwrap();
        assert_eq!(old, e, "configs from before the floor read as no floor");
        assert!(
            serde_json::from_str::<LrSchedule>(
                r#"{"kind": "exponential", "gamma": 0.5, "every": 3}"#
            )
            .is_err()
        );
    }
}
