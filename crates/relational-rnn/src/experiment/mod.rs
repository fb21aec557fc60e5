//! Experiments: a task, a model and a training configuration, run end to end with one seed —
//! what the notebook cells and `rrnn train` both call.
//!
//! Seeding: the validation, test and hard sets come from `data_seed` (shared by every model and
//! seed, so all runs are scored on the same examples); parameter initialisation and training
//! batches come from `train.seed` (batch of step s: [`step_rng`](crate::train::step_rng)`(seed, s)`).
//!
//! Protocol: a run evaluates on the validation set every `eval_every` steps; early stopping and the
//! best parameters are chosen there. The test and hard sets are scored once, at the end, with the
//! validation-best parameters.
//!
//! Here: the model kinds, [`Experiment`] and what it is scored against ([`Reference`],
//! [`EvalSets`]); `run.rs`: running experiments in this process ([`run`], [`run_seeds`],
//! [`curve`], [`Summary`]); `run_files.rs`: reading the directories `rrnn train` and `rrnn sweep`
//! write ([`read_experiment`], [`read_metrics`], [`read_outcome`], [`read_sweep`]).

mod run;
mod run_files;

use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::nn::{
    ClassifierConfig, CoreConfig, LstmConfig, RmcConfig, RrnnCellConfig, SequenceClassifier,
};
pub use crate::stats::mean_std;
use crate::tasks::{Dataset, Task, TaskConfig, generate_reasoning_data};
use crate::train::TrainConfig;
use crate::{ConfigError, ParamStore};
pub use run::{Metric, RunResult, Summary, curve, eval_batches, run, run_seeds, runs_of};
pub use run_files::{
    RunOutcome, SweepRun, read_experiment, read_metric_column, read_metrics, read_outcome,
    read_sweep,
};

/// Largest batch evaluated at once (bounds memory on big test sets).
pub const EVAL_CHUNK: usize = 512;

/// The three sequence models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// The LSTM baseline.
    Lstm,
    /// The Relational Memory Core.
    Rmc,
    /// The plan's hybrid cell (not in the paper).
    RrnnCell,
}

impl ModelKind {
    /// All kinds, in the order tables list them.
    pub const ALL: [ModelKind; 3] = [ModelKind::Lstm, ModelKind::Rmc, ModelKind::RrnnCell];

    /// The CLI name: `lstm`, `rmc`, `rrnn-cell`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lstm => "lstm",
            Self::Rmc => "rmc",
            Self::RrnnCell => "rrnn-cell",
        }
    }

    /// The label used in plots and tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Lstm => "LSTM",
            Self::Rmc => "RMC",
            Self::RrnnCell => "RRNN cell",
        }
    }

    /// The project's default network for a task with `input_size` features and `num_classes`
    /// classes: LSTM with S = 128; RMC with N = 4 slots, H = 4 heads × V = 16 (D = 64); the hybrid
    /// with S = 64 and the same memory. All with a `[128, 128]` ReLU head (perf config C).
    pub fn default_config(self, input_size: usize, num_classes: usize) -> ClassifierConfig {
        let rmc = RmcConfig {
            input_size,
            ..RmcConfig::default()
        };
        let core = match self {
            Self::Lstm => CoreConfig::Lstm(LstmConfig {
                input_size,
                ..LstmConfig::default()
            }),
            Self::Rmc => CoreConfig::Rmc(rmc),
            Self::RrnnCell => CoreConfig::RrnnCell(RrnnCellConfig {
                input_size,
                hidden_size: 64,
                memory: rmc,
                ..RrnnCellConfig::default()
            }),
        };
        ClassifierConfig {
            core,
            head_hidden: vec![128, 128],
            num_classes,
        }
    }
}

impl FromStr for ModelKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                ConfigError::new(
                    "model",
                    format!("must be one of lstm, rmc, rrnn-cell; got `{s}`"),
                )
            })
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The task and its settings.
    pub task: TaskConfig,
    /// The network (its input width and class count must match the task).
    pub model: ClassifierConfig,
    /// Optimiser, schedule, budget, evaluation cadence, seed.
    pub train: TrainConfig,
    /// Size of each fixed evaluation set: validation, test and hard (real bAbI files: ignored,
    /// the sets are what the files hold).
    pub test_size: usize,
    /// Seed of the validation, test and hard sets.
    pub data_seed: u64,
}

impl Experiment {
    /// An experiment with `kind`'s default network for `task` and the given training settings;
    /// 1,000 validation, test and hard examples each from data seed 1234.
    pub fn new(task: TaskConfig, kind: ModelKind, train: TrainConfig) -> Result<Self, ConfigError> {
        let built = task.build()?;
        Ok(Self {
            model: kind.default_config(built.input_size(), built.num_classes()),
            task,
            train,
            test_size: 1_000,
            data_seed: 1234,
        })
    }

    /// Checks every part and that the network fits the task.
    pub fn validate(&self) -> Result<Box<dyn Task>, ConfigError> {
        let task = self.task.build()?;
        self.model.validate()?;
        self.train.validate()?;
        ConfigError::require_size("test_size", self.test_size, 1)?;
        if self.model.core.input_size() != task.input_size() {
            return Err(ConfigError::new(
                "model.core.input_size",
                format!(
                    "must equal the task's input width {}, got {}",
                    task.input_size(),
                    self.model.core.input_size()
                ),
            ));
        }
        if self.model.num_classes != task.num_classes() {
            return Err(ConfigError::new(
                "model.num_classes",
                format!(
                    "must equal the task's class count {}, got {}",
                    task.num_classes(),
                    self.model.num_classes
                ),
            ));
        }
        Ok(task)
    }

    /// The fixed validation, test and hard sets.
    pub fn eval_sets(&self) -> Result<EvalSets, ConfigError> {
        let data = generate_reasoning_data(&self.task, 0, self.test_size, self.data_seed)?;
        Ok(EvalSets {
            val: data.val,
            test: data.test,
            hard: data.hard,
        })
    }

    /// Chance, plateau and the heuristic baselines on this experiment's evaluation sets (a set
    /// without examples, such as the hard split of real bAbI files, has none).
    pub fn reference(&self) -> Result<Reference, ConfigError> {
        let task = self.task.build()?;
        let sets = self.eval_sets()?;
        let baselines = task.baselines();
        let mut heuristics = std::collections::BTreeMap::new();
        for (split, set) in [
            ("val", &sets.val),
            ("test", &sets.test),
            ("hard", &sets.hard),
        ] {
            if set.batch.batch_size() == 0 {
                continue;
            }
            for h in task.heuristics(set) {
                heuristics
                    .entry(h.name)
                    .or_insert_with(std::collections::BTreeMap::new)
                    .insert(split, h.accuracy);
            }
        }
        Ok(Reference {
            chance: baselines.chance,
            plateau: baselines.plateau,
            plateau_loss: baselines.plateau_loss,
            heuristics,
        })
    }

    /// A freshly initialised network and its parameters.
    pub fn init(&self) -> Result<(SequenceClassifier, ParamStore<f32>), ConfigError> {
        let mut store = ParamStore::new();
        let mut rng = ChaCha8Rng::seed_from_u64(self.train.seed);
        rng.set_stream(u64::MAX); // batches use streams 0.., initialisation its own
        let model = SequenceClassifier::new(&self.model, &mut store, &mut rng)?;
        Ok((model, store))
    }
}

/// What every accuracy of a task is read against: chance, the plateau (with its loss) and each
/// heuristic baseline on the validation, test and hard sets (`heuristics[name][split]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    /// Accuracy of a uniform guess.
    pub chance: f64,
    /// Accuracy of the task's known plateau, if it has one.
    pub plateau: Option<f64>,
    /// Cross-entropy of the plateau model, where it has a closed form.
    pub plateau_loss: Option<f64>,
    /// Each heuristic's accuracy by split name (`val`, `test`, `hard`).
    pub heuristics:
        std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, f64>>,
}

impl Reference {
    /// The best heuristic on `split` and its accuracy.
    pub fn best_heuristic(&self, split: &str) -> Option<(&'static str, f64)> {
        self.heuristics
            .iter()
            .filter_map(|(name, by)| by.get(split).map(|&a| (*name, a)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The fixed evaluation sets of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSets {
    /// Validation: every choice during a run (early stopping, best parameters) is made here.
    pub val: Dataset,
    /// Test: scored once, at the end.
    pub test: Dataset,
    /// The harder held-out split: scored once, at the end.
    pub hard: Dataset,
}
