//! Running an experiment in this process: one run, several seeds, their curves and summary.

use std::time::Instant;

use serde::Serialize;

use super::{EVAL_CHUNK, Experiment, ModelKind};
use crate::nn::SequenceClassifier;
use crate::plot::{PlotError, Series};
use crate::stats::mean_std;
use crate::tasks::{Batch, Dataset, Split};
use crate::train::{Control, EvalRecord, EvalStats, History, Trainer, evaluate, fit};
use crate::{ConfigError, ParamStore};

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

/// The runs of `kind` among runs grouped by model (as a notebook collects them, one
/// [`run_seeds`] per model); empty when `kind` has none.
pub fn runs_of(runs: &[(ModelKind, Vec<RunResult>)], kind: ModelKind) -> &[RunResult] {
    runs.iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, r)| r.as_slice())
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
