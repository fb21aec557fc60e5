//! A study's `summary.json` (written by `rrnn study summarize`) as typed data, for notebooks and
//! reports: one row per (task, variant, model, role, learning rate) with per-seed values, each
//! task's chance, plateau and heuristic baselines, and the rate validation chose. Numbers come
//! from the file only; [`compare`] adds the Welch interval the findings use.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::stats::{mean_std, welch_interval};

mod report;
pub use report::{model_color, model_label};

/// The whole summary.
#[derive(Debug, Clone, Deserialize)]
pub struct StudySummary {
    /// One row per (task, variant, model, role, rate).
    pub rows: Vec<StudyRow>,
    /// Chance, plateau and heuristics per (task, variant).
    pub tasks: Vec<TaskBaselines>,
    /// The rate validation chose per (task, variant, model).
    pub choices: Vec<RateChoice>,
}

/// Runs sharing a task, variant, model, role and learning rate; per-seed values in seed order
/// (`None` where a run has no such value).
#[derive(Debug, Clone, Deserialize)]
pub struct StudyRow {
    /// Task name, e.g. `"tracking"`.
    pub task: String,
    /// `"default"`, or a control, ablation or size (e.g. `"no-attention"`, `"4x4"`).
    pub variant: String,
    /// `"lstm"`, `"rmc"` or `"rrnn-cell"`.
    pub model: String,
    /// `"lr-selection"`, `"final"` or `"exploration"`.
    pub role: String,
    /// Learning rate.
    pub lr: f64,
    /// Trainable scalars.
    pub params: Option<usize>,
    /// Step cap of the runs.
    pub steps_cap: Option<u64>,
    /// Seeds, one per run.
    pub seeds: Vec<u64>,
    /// Run directories, relative to the repository.
    pub runs: Vec<String>,
    /// Validation accuracy of the validation-best parameters.
    pub val_accuracy: Vec<Option<f64>>,
    /// Validation loss of the validation-best parameters.
    pub val_loss: Vec<Option<f64>>,
    /// Test accuracy (evaluated once, on the validation-best parameters).
    pub test_accuracy: Vec<Option<f64>>,
    /// Test loss.
    pub test_loss: Vec<Option<f64>>,
    /// Hard-split accuracy.
    pub hard_accuracy: Vec<Option<f64>>,
    /// Step of the validation best.
    #[serde(default)]
    pub best_step: Vec<Option<f64>>,
    /// Examples per training step.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Per seed, the checkpoint the run was warm-started from (`rrnn train --init-from`); empty
    /// when no run of the row was.
    #[serde(default)]
    pub init_from: Vec<Option<String>>,
    /// Steps each run trained.
    #[serde(default)]
    pub steps: Vec<Option<f64>>,
    /// Wall-clock seconds of each run, evaluations included.
    #[serde(default)]
    pub elapsed_s: Vec<Option<f64>>,
    /// For a run that reached the step cap, its validation-accuracy gain over the last 20 % of
    /// the steps (whether the cap was long enough).
    #[serde(default)]
    pub cap_gain: Vec<Option<f64>>,
}

/// A task's reference points on its validation, test and hard sets.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskBaselines {
    /// Task name.
    pub task: String,
    /// Variant.
    pub variant: String,
    /// Uniform guessing.
    pub chance: Option<f64>,
    /// The known plateau of the task, where it has one (Nth-farthest: 2/K).
    pub plateau: Option<f64>,
    /// The loss at that plateau.
    pub plateau_loss: Option<f64>,
    /// Heuristic name → accuracy per split (`"val"`, `"test"`, `"hard"`).
    pub heuristics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The learning rate validation chose for one (task, variant, model).
#[derive(Debug, Clone, Deserialize)]
pub struct RateChoice {
    /// Task name.
    pub task: String,
    /// Variant.
    pub variant: String,
    /// Model.
    pub model: String,
    /// The chosen rate.
    pub lr: f64,
    /// How many rates were tried.
    pub candidates: usize,
}

/// A per-seed quantity of a [`StudyRow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Validation accuracy.
    ValAccuracy,
    /// Validation loss.
    ValLoss,
    /// Test accuracy.
    TestAccuracy,
    /// Test loss.
    TestLoss,
    /// Hard-split accuracy.
    HardAccuracy,
    /// Step of the validation best.
    BestStep,
    /// Steps trained.
    Steps,
    /// Wall-clock seconds, evaluations included.
    ElapsedSeconds,
    /// Validation-accuracy gain over the last 20 % of the steps (runs that reached the cap).
    CapGain,
}

impl StudySummary {
    /// Reads `summary.json`.
    pub fn read(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// The rows of one (task, variant), in file order.
    pub fn rows_of<'a>(
        &'a self,
        task: &'a str,
        variant: &'a str,
    ) -> impl Iterator<Item = &'a StudyRow> + 'a {
        self.rows
            .iter()
            .filter(move |r| r.task == task && r.variant == variant)
    }

    /// The `final` row of (task, variant, model): the seeds at the chosen rate.
    pub fn final_row(&self, task: &str, variant: &str, model: &str) -> Option<&StudyRow> {
        self.rows.iter().find(|r| {
            r.task == task && r.variant == variant && r.model == model && r.role == "final"
        })
    }

    /// The learning rate validation chose for (task, variant, model).
    pub fn chosen_lr(&self, task: &str, variant: &str, model: &str) -> Option<f64> {
        self.choices
            .iter()
            .find(|c| c.task == task && c.variant == variant && c.model == model)
            .map(|c| c.lr)
    }

    /// The baselines of (task, variant).
    pub fn baselines(&self, task: &str, variant: &str) -> Option<&TaskBaselines> {
        self.tasks
            .iter()
            .find(|t| t.task == task && t.variant == variant)
    }

    /// The `exploration` rows of (task, variant) paired for comparison: each RMC row with the
    /// LSTM row of the same start and learning rate, fresh starts first.
    pub fn exploration_pairs(&self, task: &str, variant: &str) -> Vec<(&StudyRow, &StudyRow)> {
        let explored: Vec<&StudyRow> = self
            .rows
            .iter()
            .filter(|r| r.task == task && r.variant == variant && r.role == "exploration")
            .collect();
        let mut pairs = Vec::new();
        for start in ["fresh", "warm start"] {
            for rmc in explored
                .iter()
                .filter(|r| r.model == "rmc" && r.start() == start)
            {
                let lstm = explored
                    .iter()
                    .find(|r| r.model == "lstm" && r.start() == start && r.lr == rmc.lr);
                if let Some(lstm) = lstm {
                    pairs.push((*rmc, *lstm));
                }
            }
        }
        pairs
    }

    /// The variants of `task` that have a `final` row, `"default"` first.
    pub fn variants(&self, task: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.task == task && r.role == "final")
        {
            if !out.contains(&r.variant.as_str()) {
                out.push(&r.variant);
            }
        }
        out.sort_by_key(|v| *v != "default");
        out
    }
}

impl StudyRow {
    /// The finite per-seed values of `metric`.
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        let column = match metric {
            Metric::ValAccuracy => &self.val_accuracy,
            Metric::ValLoss => &self.val_loss,
            Metric::TestAccuracy => &self.test_accuracy,
            Metric::TestLoss => &self.test_loss,
            Metric::HardAccuracy => &self.hard_accuracy,
            Metric::BestStep => &self.best_step,
            Metric::Steps => &self.steps,
            Metric::ElapsedSeconds => &self.elapsed_s,
            Metric::CapGain => &self.cap_gain,
        };
        column
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect()
    }

    /// `"0.998 ± 0.001 (5 seeds)"`, `"1.000 (1 seed)"` or `"—"`: never a ± over one value.
    pub fn mean_pm(&self, metric: Metric) -> String {
        mean_pm(&self.values(metric))
    }

    /// Whether the run of seed index `i` left the plateau, judged on validation as the study does:
    /// a validation loss at least [`PLATEAU_MARGIN`] below the plateau loss and a validation
    /// accuracy above the best heuristic. `None` without those references or values.
    pub fn left_plateau(&self, i: usize, baselines: &TaskBaselines) -> Option<bool> {
        let plateau_loss = baselines.plateau_loss?;
        let (_, heuristic) = baselines.best_heuristic("val")?;
        let (loss, accuracy) = ((*self.val_loss.get(i)?)?, (*self.val_accuracy.get(i)?)?);
        Some(loss <= plateau_loss - PLATEAU_MARGIN && accuracy > heuristic)
    }

    /// A column of run `i`'s `metrics.jsonl` (e.g. `"val_loss"`) against training examples seen
    /// (step × batch size); `root` is the directory the summary's run paths start from (the
    /// repository root).
    pub fn curve_by_examples(
        &self,
        root: impl AsRef<Path>,
        i: usize,
        column: &str,
    ) -> std::io::Result<(Vec<f64>, Vec<f64>)> {
        let batch = self.batch_size.unwrap_or(1) as f64;
        let run = root.as_ref().join(&self.runs[i]);
        let points = crate::experiment::read_metric_column(run, column)?;
        Ok(points
            .iter()
            .map(|&(step, v)| (step as f64 * batch, v))
            .unzip())
    }

    /// `"warm start"` for a row of runs started from another run's parameters, else `"fresh"`.
    pub fn start(&self) -> &'static str {
        if self.init_from.is_empty() {
            "fresh"
        } else {
            "warm start"
        }
    }
}

/// How far below the plateau loss a validation loss must be for a run to have left the plateau.
pub const PLATEAU_MARGIN: f64 = 0.05;

/// `"0.998 ± 0.001 (5 seeds)"`, `"1.000 (1 seed)"` or `"—"` for no values.
pub fn mean_pm(values: &[f64]) -> String {
    match values.len() {
        0 => "—".into(),
        1 => format!("{:.3} (1 seed)", values[0]),
        n => {
            let (m, s) = mean_std(values);
            format!("{m:.3} ± {s:.3} ({n} seeds)")
        }
    }
}

impl TaskBaselines {
    /// The strongest heuristic on `split` (`"val"`, `"test"` or `"hard"`) and its accuracy.
    pub fn best_heuristic(&self, split: &str) -> Option<(&str, f64)> {
        self.heuristics
            .iter()
            .filter_map(|(name, by_split)| by_split.get(split).map(|&a| (name.as_str(), a)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// `mean(a) − mean(b)` of `metric` over seeds with its 95 % Welch t interval, as the findings
/// report it; `None` with fewer than two seeds on a side or no spread on both.
pub fn compare(a: &StudyRow, b: &StudyRow, metric: Metric) -> Option<(f64, f64, f64)> {
    welch_interval(&a.values(metric), &b.values(metric), 0.95)
}
