//! The common interface of all tasks, the task catalogue and the entry point
//! [`generate_reasoning_data`].
//!
//! The training loop and the CLI only see a `Box<dyn Task>`: input width `F`, class count `C`,
//! sequence length `T` per split, baselines, and `sample`, which draws a fresh [`Batch`] from an
//! explicit random generator. [`TaskConfig`] holds one task's typed configuration and builds the
//! box after validating it; [`TaskKind`] parses the CLI names.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

use super::babi::{BabiConfig, BabiExample, BabiFileTask, BabiKind, BabiTask};
use super::nth_farthest::{NthFarthest, NthFarthestConfig, NthFarthestExample};
use super::pairs::{Pairs, PairsConfig, PairsExample};
use super::sorting::{Sorting, SortingConfig, SortingExample};
use super::tracking::{Tracking, TrackingConfig, TrackingExample};
use super::{Baselines, Batch, Heuristic, Split, split_rng};
use crate::ConfigError;

/// A sequential reasoning task: a generator of batches plus what a model needs to know about it.
pub trait Task: Send + Sync {
    /// The CLI name (`nth-farthest`, `sorting`, …, `babi-qa3`).
    fn name(&self) -> &str;
    /// Input width `F` (the same for every split, so one model can be evaluated on all).
    fn input_size(&self) -> usize;
    /// Number of output classes `C`.
    fn num_classes(&self) -> usize;
    /// Sequence length `T` of the batches of `split`.
    fn seq_len(&self, split: Split) -> usize;
    /// Chance, majority-class and plateau accuracy at this configuration (train/test distribution).
    fn baselines(&self) -> Baselines;
    /// Accuracy on `data` (any split) of `majority` and of the task's simple rules that ignore the
    /// relations it is about, scored on the same steps as the model (see [`super::heuristics`]).
    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic>;
    /// One paragraph: the configuration, the input layout and the hard split.
    fn describe(&self) -> String;
    /// Draws `batch` examples of `split`, returning the encoded batch and the human-readable
    /// examples (column `b` of the batch is `examples[b]`).
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets: [T, B]`, `mask: [T, B]` with `T = seq_len(split)`.
    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>);
    /// The fixed examples of `split` when the task reads its data instead of drawing it (real
    /// bAbI files: validation, test and the empty hard set), whatever size was asked for; `None`
    /// (the default) when the split is drawn with [`Task::sample_examples`].
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets: [T, B]`, `mask: [T, B]` with `T = seq_len(split)` and `B`
    /// the set's own size.
    fn fixed_examples(&self, split: Split) -> Option<(Batch, Vec<Example>)> {
        let _ = split;
        None
    }
    /// Draws a fresh batch of `split` (training uses one per step).
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets: [T, B]`, `mask: [T, B]` with `T = seq_len(split)`.
    fn sample(&self, batch: usize, split: Split, rng: &mut dyn RngCore) -> Batch {
        self.sample_examples(batch, split, rng).0
    }
}

/// One human-readable example of any task (serialises as the inner struct, no tag).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Example {
    /// See [`NthFarthestExample`].
    NthFarthest(NthFarthestExample),
    /// See [`SortingExample`].
    Sorting(SortingExample),
    /// See [`TrackingExample`].
    Tracking(TrackingExample),
    /// See [`PairsExample`].
    Pairs(PairsExample),
    /// See [`BabiExample`].
    Babi(BabiExample),
}

/// The task names the CLI accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// `nth-farthest`: the paper's relational task.
    NthFarthest,
    /// `sorting`: sort tokens after seeing them all.
    Sorting,
    /// `tracking`: object tracking on a line.
    Tracking,
    /// `pairs`: pair match / compare.
    Pairs,
    /// `babi-qa1`, `babi-qa2`, `babi-qa3`: bAbI-style QA with 1–3 supporting facts.
    Babi(BabiKind),
}

impl TaskKind {
    /// Every task, in CLI order.
    pub const ALL: [TaskKind; 7] = [
        TaskKind::NthFarthest,
        TaskKind::Sorting,
        TaskKind::Tracking,
        TaskKind::Pairs,
        TaskKind::Babi(BabiKind::Qa1),
        TaskKind::Babi(BabiKind::Qa2),
        TaskKind::Babi(BabiKind::Qa3),
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::NthFarthest => "nth-farthest",
            TaskKind::Sorting => "sorting",
            TaskKind::Tracking => "tracking",
            TaskKind::Pairs => "pairs",
            TaskKind::Babi(kind) => kind.name(),
        }
    }

    /// The task's default configuration.
    pub fn default_config(self) -> TaskConfig {
        match self {
            TaskKind::NthFarthest => TaskConfig::NthFarthest(NthFarthestConfig::default()),
            TaskKind::Sorting => TaskConfig::Sorting(SortingConfig::default()),
            TaskKind::Tracking => TaskConfig::Tracking(TrackingConfig::default()),
            TaskKind::Pairs => TaskConfig::Pairs(PairsConfig::default()),
            TaskKind::Babi(kind) => TaskConfig::Babi(BabiConfig::new(kind)),
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TaskKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown task `{s}`; valid tasks: {}", names.join(", "))
            })
    }
}

/// One task with its typed configuration. In JSON/TOML it is tagged by `task`:
/// `{"task": "nth-farthest", "num_vectors": 4, "dim": 4}`,
/// `{"task": "babi", "kind": "qa2", "num_sentences": 10, "hard_num_sentences": 20}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskConfig {
    /// See [`NthFarthestConfig`].
    NthFarthest(NthFarthestConfig),
    /// See [`SortingConfig`].
    Sorting(SortingConfig),
    /// See [`TrackingConfig`].
    Tracking(TrackingConfig),
    /// See [`PairsConfig`].
    Pairs(PairsConfig),
    /// See [`BabiConfig`].
    Babi(BabiConfig),
}

impl TaskConfig {
    /// Which task this configures.
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskConfig::NthFarthest(_) => TaskKind::NthFarthest,
            TaskConfig::Sorting(_) => TaskKind::Sorting,
            TaskConfig::Tracking(_) => TaskKind::Tracking,
            TaskConfig::Pairs(_) => TaskKind::Pairs,
            TaskConfig::Babi(config) => TaskKind::Babi(config.kind),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            TaskConfig::NthFarthest(config) => config.validate(),
            TaskConfig::Sorting(config) => config.validate(),
            TaskConfig::Tracking(config) => config.validate(),
            TaskConfig::Pairs(config) => config.validate(),
            TaskConfig::Babi(config) => config.validate(),
        }
    }

    /// Validates and builds the task.
    pub fn build(&self) -> Result<Box<dyn Task>, ConfigError> {
        Ok(match self {
            TaskConfig::NthFarthest(config) => Box::new(NthFarthest::new(config.clone())?),
            TaskConfig::Sorting(config) => Box::new(Sorting::new(config.clone())?),
            TaskConfig::Tracking(config) => Box::new(Tracking::new(config.clone())?),
            TaskConfig::Pairs(config) => Box::new(Pairs::new(config.clone())?),
            TaskConfig::Babi(config) if config.data_dir.is_some() => {
                Box::new(BabiFileTask::load(config.clone())?)
            }
            TaskConfig::Babi(config) => Box::new(BabiTask::new(config.clone())?),
        })
    }
}

/// A fixed set of examples of one split: the encoded batch and its human-readable form.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Which split the examples were drawn from.
    pub split: Split,
    /// All examples as one batch: `inputs [T, B, F]`, `targets [T, B]`, `mask [T, B]`.
    pub batch: Batch,
    /// `examples[b]` is column `b` of `batch`, for printing examples and failure cases.
    pub examples: Vec<Example>,
}

/// The fixed data of a task for one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasoningData {
    /// Training examples (training may instead draw fresh batches with [`split_rng`]).
    pub train: Dataset,
    /// Validation examples: same distribution, disjoint from training and test (see
    /// [`super::split`]); every choice during training is made on these.
    pub val: Dataset,
    /// Test examples: same distribution, disjoint from training and validation; scored once.
    pub test: Dataset,
    /// Held-out harder examples, as many as `test`.
    pub hard: Dataset,
}

/// Generates `train_size` training examples and `test_size` each of validation, test and hard
/// examples of `task` (a task that reads its sets from files gives those instead, see
/// [`Task::fixed_examples`]).
///
/// Split `s` is drawn from [`split_rng`]`(seed, s)`, so each set depends only on the seed, the
/// configuration and its own size: `rrnn export-data --split test --seed s --n k` prints the first
/// `k` examples of `test`.
///
/// # Shapes
/// Each dataset's batch: `inputs [T, B, F]`, `targets [T, B]`, `mask [T, B]` with `B` its size and
/// `T = task.seq_len(split)`.
pub fn generate_reasoning_data(
    task: &TaskConfig,
    train_size: usize,
    test_size: usize,
    seed: u64,
) -> Result<ReasoningData, ConfigError> {
    let task = task.build()?;
    let draw = |split: Split, size: usize| {
        let (batch, examples) = task
            .fixed_examples(split)
            .unwrap_or_else(|| task.sample_examples(size, split, &mut split_rng(seed, split)));
        Dataset {
            split,
            batch,
            examples,
        }
    };
    Ok(ReasoningData {
        train: draw(Split::Train, train_size),
        val: draw(Split::Val, test_size),
        test: draw(Split::Test, test_size),
        hard: draw(Split::Hard, test_size),
    })
}
