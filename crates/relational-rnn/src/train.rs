//! Training: one step (forward over T steps, masked loss, backward through time, clipping,
//! optimiser update), evaluation, and a run loop that records metrics.
//!
//! Data for training step `s` comes from its own RNG stream, `ChaCha8(seed, stream = s)`
//! ([`step_rng`]), so a run is a pure function of its seed: any step's batch can be re-drawn
//! without replaying the ones before it, which makes resuming an interrupted run exact.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::kernels::threads::{beside, threads};
use crate::loss::count_correct;
use crate::nn::SequenceClassifier;
use crate::optim::{
    EarlyStopping, EarlyStoppingConfig, LrSchedule, Mode, Optimizer, OptimizerConfig, StopDecision,
    clip_global_norm,
};
use crate::tasks::Batch;
use crate::{ConfigError, Grads, Graph, ParamStore, Scalar};

/// The RNG that draws the training batch of step `step` of a run seeded with `seed`.
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step);
    rng
}

/// Loss, accuracy and gradient norm of one training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Mean masked cross-entropy of the batch.
    pub loss: f64,
    /// Fraction of masked predictions that were right.
    pub accuracy: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used for the update.
    pub lr: f64,
}

/// Mean loss and accuracy over evaluation batches (weighted by the number of scored rows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Mean masked cross-entropy.
    pub loss: f64,
    /// Fraction of masked predictions that were right.
    pub accuracy: f64,
    /// Number of scored predictions.
    pub count: usize,
}

/// Reusable buffers for training steps: the tape and the gradient store.
pub struct Trainer<T: Scalar> {
    graph: Graph<T>,
    grads: Grads<T>,
    optimizer: Box<dyn Optimizer<T> + Send>,
    /// Tapes and gradients of the extra shards of [`Trainer::step_sharded`] (empty until used).
    shards: Vec<(Graph<T>, Grads<T>)>,
}

/// What one shard's forward and backward pass reports.
struct ShardPass {
    loss: f64,
    correct: usize,
    count: usize,
    /// Σ of the shard's loss weights: its share of the batch mean.
    weight: f64,
    /// Every gradient element is known to be finite (read while the gradients were written;
    /// `false` also when unknown).
    grads_finite: bool,
}

/// Forward and backward of `model` on `batch` into `graph`, parameter gradients into `grads`.
fn shard_pass<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    graph: &mut Graph<T>,
    grads: &mut Grads<T>,
    batch: &Batch,
) -> ShardPass {
    graph.clear();
    let out = model.loss(graph, store, batch);
    let loss = graph.scalar(out.loss);
    let (correct, count) = count_correct(graph.value(out.logits), &out.targets, &out.weights);
    graph.backward(out.loss);
    let grads_finite = graph.write_param_grads(store, grads);
    ShardPass {
        loss,
        correct,
        count,
        weight: out.weights.iter().sum(),
        grads_finite,
    }
}

impl<T: Scalar> Trainer<T> {
    /// A trainer for the parameters in `store`.
    pub fn new(store: &ParamStore<T>, optimizer: &OptimizerConfig) -> Result<Self, ConfigError> {
        Ok(Self::with_optimizer(store, optimizer.build()?))
    }

    /// A trainer around an existing optimiser (e.g. one restored from a checkpoint).
    pub fn with_optimizer(store: &ParamStore<T>, optimizer: Box<dyn Optimizer<T> + Send>) -> Self {
        Self {
            graph: Graph::new(),
            grads: store.zeros_like(),
            optimizer,
            shards: Vec::new(),
        }
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &(dyn Optimizer<T> + Send) {
        self.optimizer.as_ref()
    }

    /// One training step on `batch` at learning rate `lr`, clipping the global gradient norm to
    /// `clip` when given. A non-finite loss or gradient norm skips the update (the parameters
    /// stay as they were) and is reported in the returned stats for the caller to act on.
    pub fn step(
        &mut self,
        model: &SequenceClassifier,
        store: &mut ParamStore<T>,
        batch: &Batch,
        lr: f64,
        clip: Option<f64>,
    ) -> StepStats {
        let pass = shard_pass(model, store, &mut self.graph, &mut self.grads, batch);
        self.update(store, &pass, lr, clip)
    }

    /// [`step`](Self::step) with the batch split into `shards` row blocks whose forward and
    /// backward passes run on their own threads (data parallelism; each shard has its own tape).
    /// The shards' gradients are combined with weights = their share of the batch's loss
    /// weights, so the update is the full-batch one up to float rounding (the summation order
    /// differs from [`step`](Self::step)'s, so the bits can too). `shards` ≤ 1 is
    /// [`step`](Self::step). Each step copies the shard batches and starts the shard threads
    /// (allocations), and every shard packs the weights on its own tape.
    pub fn step_sharded(
        &mut self,
        model: &SequenceClassifier,
        store: &mut ParamStore<T>,
        batch: &Batch,
        lr: f64,
        clip: Option<f64>,
        shards: usize,
    ) -> StepStats {
        let rows = batch.batch_size();
        if shards <= 1 || rows <= 1 {
            return self.step(model, store, batch, lr, clip);
        }
        let parts = batch.chunks(rows.div_ceil(shards.min(rows)));
        while self.shards.len() + 1 < parts.len() {
            self.shards.push((Graph::new(), store.zeros_like()));
        }
        let shared: &ParamStore<T> = store;
        let (first, rest) = parts.split_first().expect("at least one shard");
        let passes: Vec<ShardPass> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .shards
                .iter_mut()
                .zip(rest)
                .map(|((graph, grads), part)| {
                    scope.spawn(move || shard_pass(model, shared, graph, grads, part))
                })
                .collect();
            let mine = shard_pass(model, shared, &mut self.graph, &mut self.grads, first);
            std::iter::once(mine)
                .chain(
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a shard thread panicked")),
                )
                .collect()
        });
        let total: f64 = passes.iter().map(|p| p.weight).sum();
        let share = |p: &ShardPass| if total > 0.0 { p.weight / total } else { 0.0 };
        self.grads.scale(T::from_f64_lossy(share(&passes[0])));
        for ((_, grads), pass) in self.shards.iter().zip(&passes[1..]) {
            let w = T::from_f64_lossy(share(pass));
            for ((_, into), (_, from)) in self.grads.iter_mut().zip(grads.iter()) {
                into.scaled_add(w, from);
            }
        }
        let combined = ShardPass {
            loss: passes.iter().map(|p| p.loss * share(p)).sum(),
            correct: passes.iter().map(|p| p.correct).sum(),
            count: passes.iter().map(|p| p.count).sum(),
            weight: total,
            grads_finite: false, // not checked after combining
        };
        self.update(store, &combined, lr, clip)
    }

    /// Clipping and the optimiser update after a pass (skipped when anything is non-finite).
    fn update(
        &mut self,
        store: &mut ParamStore<T>,
        pass: &ShardPass,
        lr: f64,
        clip: Option<f64>,
    ) -> StepStats {
        // Without clipping the norm is only reported; when the loss and every gradient element
        // are finite it cannot stop the update (a finite f32's square cannot overflow the f64
        // sum), so with helper threads it is summed on one while this thread runs the update.
        let max_square = T::max_value().to_f64_lossy().powi(2);
        let side_norm = clip.is_none()
            && pass.loss.is_finite()
            && pass.grads_finite
            && max_square.is_finite()
            && threads() >= 2;
        let grad_norm = if side_norm {
            let (grads, optimizer) = (&self.grads, &mut self.optimizer);
            let mut grad_norm = f64::NAN;
            let norm = &mut grad_norm;
            beside(
                || *norm = grads.global_norm(),
                || optimizer.step(store, grads, lr),
            );
            debug_assert!(grad_norm.is_finite());
            grad_norm
        } else {
            let grad_norm = match clip {
                Some(max) => clip_global_norm(&mut self.grads, max),
                None => self.grads.global_norm(),
            };
            if pass.loss.is_finite() && grad_norm.is_finite() {
                self.optimizer.step(store, &self.grads, lr);
            }
            grad_norm
        };
        StepStats {
            loss: pass.loss,
            accuracy: pass.correct as f64 / pass.count.max(1) as f64,
            grad_norm,
            lr,
        }
    }
}

/// Loss and accuracy of `model` on `batches` (forward only).
pub fn evaluate<T: Scalar>(
    model: &SequenceClassifier,
    store: &ParamStore<T>,
    batches: &[Batch],
) -> EvalStats {
    let mut g = Graph::new();
    let (mut loss_sum, mut correct, mut count) = (0.0, 0, 0);
    for batch in batches {
        g.clear();
        let out = model.loss(&mut g, store, batch);
        let (c, n) = count_correct(g.value(out.logits), &out.targets, &out.weights);
        loss_sum += g.scalar(out.loss) * n as f64;
        correct += c;
        count += n;
    }
    EvalStats {
        loss: loss_sum / count.max(1) as f64,
        accuracy: correct as f64 / count.max(1) as f64,
        count,
    }
}

/// How to train: optimiser, schedule, budget and evaluation cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser and base learning rate.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule applied to the base rate.
    pub schedule: LrSchedule,
    /// Training steps (one batch each).
    pub steps: u64,
    /// Sequences per training batch.
    pub batch_size: usize,
    /// Evaluate every this many steps (and after the last).
    pub eval_every: u64,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// Stop early when the monitored validation metric stops improving (`None`: never): the
    /// validation accuracy with `mode = Maximize`, the validation loss with `mode = Minimize`.
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Seed of the training batches (see [`step_rng`]).
    pub seed: u64,
}

impl Default for TrainConfig {
    /// Adam at 1e-3, constant rate, 2,000 steps of batch 64, evaluation every 100 steps, clipping
    /// at norm 5, no early stopping, seed 0.
    fn default() -> Self {
        Self {
            optimizer: OptimizerConfig::default(),
            schedule: LrSchedule::Constant,
            steps: 2_000,
            batch_size: 64,
            eval_every: 100,
            clip_norm: Some(5.0),
            early_stopping: None,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.optimizer.validate()?;
        self.schedule.validate()?;
        ConfigError::require_size("batch_size", self.batch_size, 1)?;
        if self.steps == 0 {
            return Err(ConfigError::new("steps", "must be at least 1, got 0"));
        }
        if self.eval_every == 0 {
            return Err(ConfigError::new("eval_every", "must be at least 1, got 0"));
        }
        if let Some(c) = self.clip_norm {
            ConfigError::require_positive("clip_norm", c)?;
        }
        if let Some(e) = &self.early_stopping {
            e.validate()?;
        }
        Ok(())
    }
}

/// One evaluation point of a run: the fields of a `metrics.jsonl` line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Training steps done.
    pub step: u64,
    /// Mean training loss since the previous record.
    pub train_loss: f64,
    /// Mean training accuracy since the previous record.
    pub train_accuracy: f64,
    /// Loss on the validation set.
    pub val_loss: f64,
    /// Accuracy on the validation set.
    pub val_accuracy: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
}

/// What a callback tells the run loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this evaluation.
    Stop,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Stopped {
    /// All steps were done.
    Completed,
    /// Early stopping: the monitored metric did not improve for `patience` evaluations.
    EarlyStopped {
        /// Step of the best evaluation.
        best_step: u64,
    },
    /// The callback asked to stop.
    Interrupted,
    /// The loss or gradient norm became NaN or infinite at `step`; the update was skipped.
    NonFinite {
        /// The step whose loss or gradient was not finite.
        step: u64,
    },
}

/// The outcome of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Every evaluation, in order.
    pub records: Vec<EvalRecord>,
    /// Why the run ended.
    pub stopped: Stopped,
}

impl History {
    /// The record with the best validation accuracy (earliest on ties).
    pub fn best(&self) -> Option<&EvalRecord> {
        self.records
            .iter()
            .fold(None, |best: Option<&EvalRecord>, r| match best {
                Some(b) if b.val_accuracy >= r.val_accuracy => Some(b),
                _ => Some(r),
            })
    }
}

/// Where a run stands: everything besides the parameters and the optimiser that [`fit_from`]
/// needs to continue it exactly. The batch RNG needs no state of its own: step `s` always draws
/// from [`step_rng`]`(seed, s)`, so "RNG state" is just `step`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Training steps done.
    pub step: u64,
    /// Sum of the training losses since the last evaluation.
    pub loss_sum: f64,
    /// Sum of the training accuracies since the last evaluation.
    pub accuracy_sum: f64,
    /// Training steps since the last evaluation.
    pub since_eval: u64,
    /// Early stopping: `(step, value)` of the best evaluation so far.
    pub early_best: Option<(u64, f64)>,
    /// Early stopping: evaluations since the best one.
    pub early_evals_since_best: u64,
    /// Seconds spent training before this invocation (added to `elapsed_s`).
    pub elapsed_s: f64,
}

impl Progress {
    /// A run about to do step `step` with nothing accumulated (a new run: `step = 0`).
    pub fn at(step: u64) -> Self {
        Self {
            step,
            ..Self::default()
        }
    }
}

/// Why [`Hooks::on_event`] is called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// An evaluation was made (after the early-stopping update, so [`Progress`] is complete).
    Evaluated(&'a EvalRecord),
    /// [`Hooks::on_step`] asked to stop; nothing else happens after this call.
    Interrupted,
}

/// A consistent snapshot of a run for a callback: checkpointing all three fields and restarting
/// [`fit_from`] with them reproduces the uninterrupted run bit for bit.
pub struct Snapshot<'a, T: Scalar> {
    /// The parameters.
    pub store: &'a ParamStore<T>,
    /// The optimiser (its [`buffers`](Optimizer::buffers) and step count).
    pub optimizer: &'a (dyn Optimizer<T> + Send),
    /// Counters and accumulators.
    pub progress: &'a Progress,
}

/// Callbacks of [`fit_from`].
pub trait Hooks<T: Scalar> {
    /// After every finite training step (after its evaluation, if one was due); returning
    /// [`Control::Stop`] interrupts the run cleanly (Ctrl-C, a time limit).
    fn on_step(&mut self, _progress: &Progress, _stats: &StepStats) -> Control {
        Control::Continue
    }

    /// At every evaluation and on interruption, with a snapshot to print or checkpoint; after an
    /// evaluation, returning [`Control::Stop`] ends the run.
    fn on_event(&mut self, event: Event<'_>, snapshot: Snapshot<'_, T>) -> Control;
}

/// Trains `model` for `config.steps` steps from step `start` (0 for a new run), drawing the batch
/// of step `s` with `sample(&mut step_rng(config.seed, s), config.batch_size)`, evaluating on
/// the validation batches `val` every `config.eval_every` steps and after the last. `on_eval` sees every record and the
/// current parameters (to print, plot or checkpoint) and may stop the run.
///
/// A convenience form of [`fit_from`] with fresh accumulators and early-stopping state.
#[allow(clippy::too_many_arguments)]
pub fn fit<T: Scalar>(
    model: &SequenceClassifier,
    store: &mut ParamStore<T>,
    trainer: &mut Trainer<T>,
    config: &TrainConfig,
    start: u64,
    sample: impl FnMut(&mut ChaCha8Rng, usize) -> Batch,
    val: &[Batch],
    on_eval: impl FnMut(&EvalRecord, &ParamStore<T>) -> Control,
) -> Result<History, ConfigError> {
    struct OnEval<F>(F);
    impl<T: Scalar, F: FnMut(&EvalRecord, &ParamStore<T>) -> Control> Hooks<T> for OnEval<F> {
        fn on_event(&mut self, event: Event<'_>, snapshot: Snapshot<'_, T>) -> Control {
            match event {
                Event::Evaluated(r) => (self.0)(r, snapshot.store),
                Event::Interrupted => Control::Stop,
            }
        }
    }
    fit_from(
        model,
        store,
        trainer,
        config,
        Progress::at(start),
        sample,
        val,
        &mut OnEval(on_eval),
    )
}

/// [`fit`] continuing from `progress` (a checkpoint's, or [`Progress::at`]`(0)`), with
/// [`Hooks`] that see every step and evaluation. The returned history holds the records of this
/// call only.
///
/// Order within step `s`: draw the batch, update, accumulate; if an evaluation is due:
/// evaluate, update early stopping, [`Hooks::on_event`]; then [`Hooks::on_step`]. A non-finite
/// loss or gradient norm skips the update and ends the run with [`Stopped::NonFinite`] before
/// any hook sees that step.
#[allow(clippy::too_many_arguments)]
pub fn fit_from<T: Scalar>(
    model: &SequenceClassifier,
    store: &mut ParamStore<T>,
    trainer: &mut Trainer<T>,
    config: &TrainConfig,
    mut progress: Progress,
    mut sample: impl FnMut(&mut ChaCha8Rng, usize) -> Batch,
    val: &[Batch],
    hooks: &mut impl Hooks<T>,
) -> Result<History, ConfigError> {
    config.validate()?;
    let base_lr = config.optimizer.lr();
    let mut early = config
        .early_stopping
        .clone()
        .map(|c| EarlyStopping::restore(c, progress.early_best, progress.early_evals_since_best))
        .transpose()?;
    let history = |records, stopped| Ok(History { records, stopped });
    if let Some(e) = early.as_ref().filter(|e| e.exhausted()) {
        let best_step = e.best().map_or(progress.step, |(s, _)| s);
        return history(Vec::new(), Stopped::EarlyStopped { best_step });
    }
    let t0 = Instant::now();
    let elapsed_before = progress.elapsed_s;
    let mut records = Vec::new();
    for step in progress.step..config.steps {
        let batch = sample(&mut step_rng(config.seed, step), config.batch_size);
        let lr = config.schedule.lr_at(step, base_lr);
        let stats = trainer.step(model, store, &batch, lr, config.clip_norm);
        if !(stats.loss.is_finite() && stats.grad_norm.is_finite()) {
            return history(records, Stopped::NonFinite { step });
        }
        let done = step + 1;
        progress.step = done;
        progress.loss_sum += stats.loss;
        progress.accuracy_sum += stats.accuracy;
        progress.since_eval += 1;
        progress.elapsed_s = elapsed_before + t0.elapsed().as_secs_f64();
        if done % config.eval_every == 0 || done == config.steps {
            let eval = evaluate(model, store, val);
            let n = progress.since_eval as f64;
            let record = EvalRecord {
                step: done,
                train_loss: progress.loss_sum / n,
                train_accuracy: progress.accuracy_sum / n,
                val_loss: eval.loss,
                val_accuracy: eval.accuracy,
                lr,
                elapsed_s: elapsed_before + t0.elapsed().as_secs_f64(),
            };
            (
                progress.loss_sum,
                progress.accuracy_sum,
                progress.since_eval,
            ) = (0.0, 0.0, 0);
            progress.elapsed_s = record.elapsed_s;
            records.push(record);
            let decision = early.as_mut().map(|e| {
                let metric = match e.config().mode {
                    Mode::Maximize => record.val_accuracy,
                    Mode::Minimize => record.val_loss,
                };
                let decision = e.update(done, metric);
                progress.early_best = e.best();
                progress.early_evals_since_best = e.evals_since_best();
                (decision, e.best().map_or(done, |(s, _)| s))
            });
            let snapshot = Snapshot {
                store,
                optimizer: trainer.optimizer(),
                progress: &progress,
            };
            if hooks.on_event(Event::Evaluated(&record), snapshot) == Control::Stop {
                return history(records, Stopped::Interrupted);
            }
            if let Some((StopDecision::Stop, best_step)) = decision {
                return history(records, Stopped::EarlyStopped { best_step });
            }
        }
        if hooks.on_step(&progress, &stats) == Control::Stop {
            let snapshot = Snapshot {
                store,
                optimizer: trainer.optimizer(),
                progress: &progress,
            };
            hooks.on_event(Event::Interrupted, snapshot);
            return history(records, Stopped::Interrupted);
        }
    }
    history(records, Stopped::Completed)
}
