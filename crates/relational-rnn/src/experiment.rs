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

use std::str::FromStr;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::nn::{
    ClassifierConfig, CoreConfig, LstmConfig, RmcConfig, RrnnCellConfig, SequenceClassifier,
};
use crate::plot::{PlotError, Series};
pub use crate::stats::mean_std;
use crate::tasks::{Batch, Dataset, Split, Task, TaskConfig, generate_reasoning_data};
use crate::train::{Control, EvalRecord, EvalStats, History, TrainConfig, Trainer, evaluate, fit};
use crate::{ConfigError, ParamStore};

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

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// What was run.
    pub experiment: Experiment,
    /// The trained network.
    pub model: SequenceClassifier,
    /// Its parameters at the evaluation with the best validation accuracy.
    pub store: ParamStore<f32>,
    /// Evaluations (on the validation set) and why the run ended.
    pub history: History,
    /// Step of the validation-best evaluation (0 when there was none).
    pub best_step: u64,
    /// Test loss and accuracy of the validation-best parameters.
    pub test: EvalStats,
    /// Loss and accuracy of the validation-best parameters on the harder split.
    pub hard: EvalStats,
    /// Number of trainable scalars.
    pub params: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

impl RunResult {
    /// Test accuracy of the validation-best parameters (scored once, after training).
    pub fn final_accuracy(&self) -> f64 {
        self.test.accuracy
    }

    /// Validation accuracy of the best evaluation.
    pub fn best_val_accuracy(&self) -> f64 {
        self.history.best().map_or(f64::NAN, |r| r.val_accuracy)
    }
}

/// Runs `experiment` from scratch; `on_eval` sees every evaluation (to print progress). The
/// parameters of the best validation accuracy (earliest on ties) are kept and scored once on the
/// test and hard sets at the end.
pub fn run(
    experiment: &Experiment,
    mut on_eval: impl FnMut(&EvalRecord),
) -> Result<RunResult, ConfigError> {
    let task = experiment.validate()?;
    let t0 = Instant::now();
    let sets = experiment.eval_sets()?;
    let val = eval_batches(&sets.val);
    let (model, mut store) = experiment.init()?;
    let mut trainer = Trainer::new(&store, &experiment.train.optimizer)?;
    let mut best: Option<(f64, u64, ParamStore<f32>)> = None;
    let history = fit(
        &model,
        &mut store,
        &mut trainer,
        &experiment.train,
        0,
        |rng, b| task.sample(b, Split::Train, rng),
        &val,
        |r, params| {
            if best
                .as_ref()
                .is_none_or(|(acc, _, _)| r.val_accuracy > *acc)
            {
                best = Some((r.val_accuracy, r.step, params.clone()));
            }
            on_eval(r);
            Control::Continue
        },
    )?;
    let (best_step, store) = best.map_or((0, store), |(_, step, params)| (step, params));
    let test = evaluate(&model, &store, &eval_batches(&sets.test));
    let hard = evaluate(&model, &store, &eval_batches(&sets.hard));
    Ok(RunResult {
        experiment: experiment.clone(),
        params: store.num_scalars(),
        model,
        store,
        history,
        best_step,
        test,
        hard,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// Which curve of a run to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Mean training loss since the previous evaluation.
    TrainLoss,
    /// Loss on the validation set.
    ValLoss,
    /// Accuracy on the validation set.
    ValAccuracy,
    /// Mean training accuracy since the previous evaluation.
    TrainAccuracy,
}

impl Metric {
    fn of(self, r: &EvalRecord) -> f64 {
        match self {
            Self::TrainLoss => r.train_loss,
            Self::ValLoss => r.val_loss,
            Self::ValAccuracy => r.val_accuracy,
            Self::TrainAccuracy => r.train_accuracy,
        }
    }
}

/// The mean ± std curve of `metric` over several runs (seeds) of one model, against steps.
/// Runs that stopped early are cut to the shortest one.
pub fn curve(name: &str, runs: &[RunResult], metric: Metric) -> Result<Series, PlotError> {
    let len = runs
        .iter()
        .map(|r| r.history.records.len())
        .min()
        .unwrap_or(0);
    let x: Vec<f64> = runs
        .first()
        .map(|r| {
            r.history.records[..len]
                .iter()
                .map(|e| e.step as f64)
                .collect()
        })
        .unwrap_or_default();
    let ys: Vec<Vec<f64>> = runs
        .iter()
        .map(|r| {
            r.history.records[..len]
                .iter()
                .map(|e| metric.of(e))
                .collect()
        })
        .collect();
    Series::mean_std(name, x, &ys)
}

/// Splits a dataset's batch for evaluation.
pub fn eval_batches(data: &Dataset) -> Vec<Batch> {
    data.batch.chunks(EVAL_CHUNK)
}

/// Runs `experiment` once per seed in `seeds` (each seed replaces `train.seed`), printing one line
/// per finished run.
pub fn run_seeds(experiment: &Experiment, seeds: &[u64]) -> Result<Vec<RunResult>, ConfigError> {
    seeds
        .iter()
        .map(|&seed| {
            let mut e = experiment.clone();
            e.train.seed = seed;
            let r = run(&e, |_| {})?;
            println!(
                "  seed {seed}: best validation accuracy {:.3} at step {}; test {:.3}, hard split \
                 {:.3}; {} steps in {:.0} s",
                r.best_val_accuracy(),
                r.best_step,
                r.final_accuracy(),
                r.hard.accuracy,
                r.history.records.last().map_or(0, |x| x.step),
                r.wall_s
            );
            Ok(r)
        })
        .collect()
}

/// One row of a results table: a model's runs over several seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Row label (model name, ablation setting).
    pub name: String,
    /// Trainable parameters.
    pub params: usize,
    /// Number of runs (seeds).
    pub seeds: usize,
    /// Training steps of each run.
    pub steps: u64,
    /// Test accuracy of the validation-best parameters, mean and sample std over seeds.
    pub test_accuracy: (f64, f64),
    /// Accuracy of the validation-best parameters on the harder split, mean and sample std.
    pub hard_accuracy: (f64, f64),
    /// Mean wall-clock seconds per run.
    pub wall_s: f64,
}

impl Summary {
    /// Summarises `runs` (non-empty) under `name`.
    ///
    /// # Panics
    /// If `runs` is empty.
    #[track_caller]
    pub fn of(name: impl Into<String>, runs: &[RunResult]) -> Self {
        assert!(!runs.is_empty(), "a summary of no runs");
        let acc: Vec<f64> = runs.iter().map(RunResult::final_accuracy).collect();
        let hard: Vec<f64> = runs.iter().map(|r| r.hard.accuracy).collect();
        Self {
            name: name.into(),
            params: runs[0].params,
            seeds: runs.len(),
            steps: runs[0].history.records.last().map_or(0, |r| r.step),
            test_accuracy: mean_std(&acc),
            hard_accuracy: mean_std(&hard),
            wall_s: runs.iter().map(|r| r.wall_s).sum::<f64>() / runs.len() as f64,
        }
    }

    /// The header line matching [`Display`](std::fmt::Display).
    pub fn header() -> String {
        format!(
            "{:<22} {:>8} {:>5} {:>6} {:>15} {:>15} {:>7}",
            "model", "params", "seeds", "steps", "test acc", "hard acc", "s/run"
        )
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<22} {:>8} {:>5} {:>6} {:>7.3} ± {:<5.3} {:>7.3} ± {:<5.3} {:>7.0}",
            self.name,
            self.params,
            self.seeds,
            self.steps,
            self.test_accuracy.0,
            self.test_accuracy.1,
            self.hard_accuracy.0,
            self.hard_accuracy.1,
            self.wall_s
        )
    }
}

/// Reads the evaluation records of a run directory written by `rrnn train` (its `metrics.jsonl`).
pub fn read_metrics(dir: impl AsRef<std::path::Path>) -> std::io::Result<Vec<EvalRecord>> {
    let path = dir.as_ref().join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

/// One numeric column of a run directory's `metrics.jsonl` as `(step, value)` pairs, by field name
/// (`"val_accuracy"`, `"train_loss"`, …); also reads runs written before the validation split,
/// whose evaluations were on the test set (`"test_accuracy"`).
pub fn read_metric_column(
    dir: impl AsRef<std::path::Path>,
    field: &str,
) -> std::io::Result<Vec<(u64, f64)>> {
    let path = dir.as_ref().join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let bad = |line: usize, what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}:{line}: {what}", path.display()),
        )
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|e| bad(i + 1, e.to_string()))?;
            match (v["step"].as_u64(), v[field].as_f64()) {
                (Some(step), Some(x)) => Ok((step, x)),
                _ => Err(bad(i + 1, format!("no numeric `step` and `{field}`"))),
            }
        })
        .collect()
}

/// `result.json` of a run finished by `rrnn train`: what was scored once at the end. Fields a
/// run directory may lack are `None` (older runs have no validation numbers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunOutcome {
    /// Training steps done.
    pub step: u64,
    /// Step of the validation-best checkpoint.
    #[serde(default)]
    pub best_step: Option<u64>,
    /// Validation accuracy at `best_step`.
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Validation loss at `best_step`.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Test accuracy of the scored parameters.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Test loss of the scored parameters.
    #[serde(default)]
    pub test_loss: Option<f64>,
    /// Accuracy on the harder split.
    #[serde(default)]
    pub hard_accuracy: Option<f64>,
    /// Trainable scalars.
    #[serde(default)]
    pub params: Option<usize>,
}

/// Reads a run directory's `result.json`.
pub fn read_outcome(dir: impl AsRef<std::path::Path>) -> std::io::Result<RunOutcome> {
    let path = dir.as_ref().join("result.json");
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// One run of a sweep directory written by `rrnn sweep`: `<dir>/<combination>/seed=<s>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// The grid combination, e.g. `heads=2` (nested keys joined by `/`).
    pub combination: String,
    /// The seed.
    pub seed: u64,
    /// The run directory ([`read_metrics`] reads its evaluations).
    pub dir: std::path::PathBuf,
    /// Its `result.json`, when the run has finished.
    pub outcome: Option<RunOutcome>,
}

/// Every run with a `metrics.jsonl` under a sweep directory, sorted by combination then seed.
pub fn read_sweep(dir: impl AsRef<std::path::Path>) -> std::io::Result<Vec<SweepRun>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<SweepRun>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match name.strip_prefix("seed=").and_then(|s| s.parse().ok()) {
                Some(seed) if path.join("metrics.jsonl").exists() => {
                    let combination = dir
                        .strip_prefix(root)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let outcome = if path.join("result.json").exists() {
                        Some(read_outcome(&path)?)
                    } else {
                        None
                    };
                    out.push(SweepRun {
                        combination,
                        seed,
                        dir: path,
                        outcome,
                    });
                }
                _ => walk(root, &path, out)?,
            }
        }
        Ok(())
    }
    let root = dir.as_ref();
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| (&a.combination, a.seed).cmp(&(&b.combination, b.seed)));
    Ok(out)
}
