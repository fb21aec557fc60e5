//! Reference accuracies printed beside every result: a result that does not beat them is reported
//! as "not learned".
//!
//! - **chance**: a uniform guess over the `C` classes, `1/C`;
//! - **majority**: always answering the most frequent class of the target distribution;
//! - **plateau**: the accuracy of a known shortcut that models tend to get stuck on (e.g. Nth-farthest:
//!   answer `m` when `n = K_v − 1`, otherwise guess, `2/K_v`), when the task has one;
//! - **plateau loss**: the cross-entropy of the best probabilistic prediction from the plateau's
//!   information (the level a loss curve stalls at on the plateau), where it has an exact form.

/// Chance, majority-class and known-plateau accuracy of a task at its configuration.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Baselines {
    /// Accuracy of a uniform guess over the classes.
    pub chance: f64,
    /// Accuracy of always predicting the most frequent class.
    pub majority: f64,
    /// Accuracy of the task's known shortcut, if it has one.
    pub plateau: Option<f64>,
    /// Mean cross-entropy (nats) of the plateau model, where it is derivable exactly.
    pub plateau_loss: Option<f64>,
    /// What the plateau model does, in one line (empty when there is none).
    pub plateau_meaning: &'static str,
}
