//! Training: each model overfits a handful of examples, the run loop records, stops early and
//! refuses non-finite losses, and runs are deterministic.

use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relational_rnn::nn::{
    ClassifierConfig, CoreConfig, GateStyle, LstmConfig, RmcConfig, RrnnCellConfig,
    SequenceClassifier,
};
use relational_rnn::optim::{AdamConfig, EarlyStoppingConfig, Mode, OptimizerConfig};
use relational_rnn::tasks::Batch;
use relational_rnn::train::{
    Control, Event, History, Hooks, Progress, Snapshot, Stopped, TrainConfig, Trainer, evaluate,
    fit, fit_from,
};
use relational_rnn::{ConfigError, ParamStore, Scalar};

const F: usize = 4;
const C: usize = 4;

fn small_rmc() -> RmcConfig {
    RmcConfig {
        input_size: F,
        mem_slots: 2,
        head_size: 4,
        num_heads: 2,
        gate_style: GateStyle::Unit,
        ..RmcConfig::default()
    }
}

fn cores() -> Vec<CoreConfig> {
    vec![
        CoreConfig::Lstm(LstmConfig {
            input_size: F,
            hidden_size: 16,
            forget_bias: 1.0,
        }),
        CoreConfig::Rmc(small_rmc()),
        CoreConfig::RrnnCell(RrnnCellConfig {
            input_size: F,
            hidden_size: 16,
            forget_bias: 1.0,
            memory: small_rmc(),
        }),
    ]
}

/// `b` random sequences of length `t` with random labels on the last step.
fn random_batch(rng: &mut impl Rng, t: usize, b: usize) -> Batch {
    let inputs = Array3::from_shape_simple_fn((t, b, F), || rng.random_range(-1.0..1.0f32));
    let mut targets = Array2::zeros((t, b));
    let mut mask = Array2::from_elem((t, b), false);
    for j in 0..b {
        targets[[t - 1, j]] = rng.random_range(0..C);
        mask[[t - 1, j]] = true;
    }
    Batch::new(inputs, targets, mask)
}

fn build<T: Scalar>(core: &CoreConfig, seed: u64) -> (SequenceClassifier, ParamStore<T>) {
    let cfg = ClassifierConfig {
        core: core.clone(),
        head_hidden: vec![32],
        num_classes: C,
    };
    let mut store = ParamStore::new();
    let model = SequenceClassifier::new(&cfg, &mut store, &mut ChaCha8Rng::seed_from_u64(seed))
        .expect("valid config");
    (model, store)
}

#[test]
fn every_model_overfits_eight_examples() {
    let data = random_batch(&mut ChaCha8Rng::seed_from_u64(1), 3, 8);
    for core in cores() {
        let (model, mut store) = build::<f32>(&core, 2);
        let adam = OptimizerConfig::Adam(AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        });
        let mut trainer = Trainer::new(&store, &adam).expect("valid");
        let first = trainer.step(&model, &mut store, &data, 1e-2, None);
        let mut last = first;
        for _ in 0..300 {
            last = trainer.step(&model, &mut store, &data, 1e-2, None);
            if last.accuracy == 1.0 && last.loss < 0.05 {
                break;
            }
        }
        let eval = evaluate(&model, &store, std::slice::from_ref(&data));
        assert_eq!(eval.accuracy, 1.0, "{core:?} did not fit: {last:?}");
        assert!(
            eval.loss < first.loss / 10.0,
            "{core:?}: loss {} → {}",
            first.loss,
            eval.loss
        );
    }
}

/// `fit` on fresh random 3-step batches, with a callback that never stops the run.
fn fit_random(
    model: &SequenceClassifier,
    store: &mut ParamStore<f32>,
    trainer: &mut Trainer<f32>,
    cfg: &TrainConfig,
    start: u64,
    test: &[Batch],
) -> Result<History, ConfigError> {
    fit(
        model,
        store,
        trainer,
        cfg,
        start,
        |rng, b| random_batch(rng, 3, b),
        test,
        |_, _| Control::Continue,
    )
}

fn config(steps: u64) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 3e-3,
            ..AdamConfig::default()
        }),
        steps,
        batch_size: 8,
        eval_every: 5,
        seed: 7,
        ..TrainConfig::default()
    }
}

#[test]
fn fit_records_every_evaluation_and_is_deterministic() {
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 16)];
    let run = || {
        let (model, mut store) = build::<f32>(&cores()[1], 4);
        let cfg = config(12);
        let mut trainer = Trainer::new(&store, &cfg.optimizer).expect("valid");
        let h = fit_random(&model, &mut store, &mut trainer, &cfg, 0, &test).expect("valid config");
        (h, store)
    };
    let (h1, s1) = run();
    let (h2, s2) = run();
    assert_eq!(h1.stopped, Stopped::Completed);
    // Evaluations at 5, 10 and the final step 12.
    assert_eq!(
        h1.records.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![5, 10, 12]
    );
    assert!(
        h1.records
            .iter()
            .all(|r| r.val_loss.is_finite() && (0.0..=1.0).contains(&r.val_accuracy))
    );
    // Same seed: identical parameters, bit for bit (timings aside).
    assert_eq!(s1, s2);
    let strip = |h: &relational_rnn::train::History| {
        h.records
            .iter()
            .map(|r| (r.step, r.train_loss.to_bits(), r.val_loss.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&h1), strip(&h2));
}

#[test]
fn resuming_from_a_step_gives_the_uninterrupted_result() {
    // Batches come from per-step RNG streams, so stopping at step 6 and continuing with the same
    // parameters and optimiser reaches the same final parameters as a straight run.
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 8)];
    let (model, mut straight) = build::<f32>(&cores()[0], 5);
    let cfg = config(10);
    let mut trainer = Trainer::new(&straight, &cfg.optimizer).expect("valid");
    fit_random(&model, &mut straight, &mut trainer, &cfg, 0, &test).expect("ok");

    let (model, mut resumed) = build::<f32>(&cores()[0], 5);
    let mut trainer = Trainer::new(&resumed, &cfg.optimizer).expect("valid");
    let h = fit_random(&model, &mut resumed, &mut trainer, &config(6), 0, &test).expect("ok");
    assert_eq!(h.records.last().map(|r| r.step), Some(6));
    fit_random(&model, &mut resumed, &mut trainer, &cfg, 6, &test).expect("ok");
    assert_eq!(straight, resumed);
}

#[test]
fn early_stopping_and_callbacks_end_the_run() {
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 8)];
    let (model, mut store) = build::<f32>(&cores()[0], 6);
    // A learning rate of zero never improves anything: patience 2 stops after the third eval.
    let cfg = TrainConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 0.0,
            ..AdamConfig::default()
        }),
        early_stopping: Some(EarlyStoppingConfig {
            patience: 2,
            min_delta: 0.0,
            mode: Mode::Maximize,
        }),
        ..config(100)
    };
    let mut trainer = Trainer::new(&store, &cfg.optimizer).expect("valid");
    let h = fit_random(&model, &mut store, &mut trainer, &cfg, 0, &test).expect("ok");
    assert_eq!(h.stopped, Stopped::EarlyStopped { best_step: 5 });
    assert_eq!(h.records.len(), 3);

    let mut seen = 0;
    let h = fit(
        &model,
        &mut store,
        &mut trainer,
        &config(100),
        0,
        |r, b| random_batch(r, 3, b),
        &test,
        |_, _| {
            seen += 1;
            if seen == 2 {
                Control::Stop
            } else {
                Control::Continue
            }
        },
    )
    .expect("ok");
    assert_eq!(h.stopped, Stopped::Interrupted);
    assert_eq!(h.records.len(), 2);
}

/// A run that stopped early stays stopped when resumed with a larger step cap: no step is taken,
/// so extending a study's cap leaves its early-stopped runs as they were.
#[test]
fn resuming_an_early_stopped_run_with_a_larger_cap_takes_no_step() {
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 8)];
    let (model, mut store) = build::<f32>(&cores()[0], 6);
    let stopping = Some(EarlyStoppingConfig {
        patience: 2,
        min_delta: 0.0,
        mode: Mode::Maximize,
    });
    let frozen = TrainConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 0.0,
            ..AdamConfig::default()
        }),
        early_stopping: stopping.clone(),
        ..config(100)
    };
    let mut trainer = Trainer::new(&store, &frozen.optimizer).expect("valid");
    let h = fit_random(&model, &mut store, &mut trainer, &frozen, 0, &test).expect("ok");
    assert_eq!(h.stopped, Stopped::EarlyStopped { best_step: 5 });
    let stopped_at = Progress {
        step: 15,
        early_best: Some((5, h.records[0].val_accuracy)),
        early_evals_since_best: 2,
        ..Progress::at(15)
    };
    // A learning rate that would move the parameters if any step were taken.
    let extended = TrainConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        }),
        early_stopping: stopping,
        ..config(1_000)
    };
    let before = store.clone();
    let mut trainer = Trainer::new(&store, &extended.optimizer).expect("valid");
    let mut hooks = StopAt {
        stop_after: u64::MAX,
        saved: None,
        records: Vec::new(),
    };
    let sample = |rng: &mut ChaCha8Rng, b| random_batch(rng, 3, b);
    let h = fit_from(
        &model,
        &mut store,
        &mut trainer,
        &extended,
        stopped_at,
        sample,
        &test,
        &mut hooks,
    )
    .expect("ok");
    assert_eq!(h.stopped, Stopped::EarlyStopped { best_step: 5 });
    assert!(h.records.is_empty() && hooks.records.is_empty());
    assert_eq!(store, before);

    // One evaluation short of the patience: the run goes on.
    let patient = Progress {
        early_evals_since_best: 1,
        ..Progress::at(15)
    };
    let h = fit_from(
        &model,
        &mut store,
        &mut trainer,
        &extended,
        patient,
        sample,
        &test,
        &mut hooks,
    )
    .expect("ok");
    assert!(!h.records.is_empty());
    assert_ne!(store, before);
}

#[test]
fn a_non_finite_loss_stops_the_run_without_touching_the_parameters() {
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 8)];
    let (model, mut store) = build::<f32>(&cores()[0], 8);
    let before = store.clone();
    let cfg = config(10);
    let mut trainer = Trainer::new(&store, &cfg.optimizer).expect("valid");
    let poisoned = |rng: &mut ChaCha8Rng, b| {
        let mut batch = random_batch(rng, 3, b);
        batch.inputs[[0, 0, 0]] = f32::NAN;
        batch
    };
    let h = fit(
        &model,
        &mut store,
        &mut trainer,
        &cfg,
        0,
        poisoned,
        &test,
        |_, _| Control::Continue,
    )
    .expect("ok");
    assert_eq!(h.stopped, Stopped::NonFinite { step: 0 });
    assert_eq!(store, before);
}

#[test]
fn invalid_training_configs_are_errors() {
    let (model, mut store) = build::<f32>(&cores()[0], 9);
    let mut trainer = Trainer::new(&store, &OptimizerConfig::default()).expect("valid");
    for (cfg, field) in [
        (
            TrainConfig {
                batch_size: 0,
                ..config(5)
            },
            "batch_size",
        ),
        (
            TrainConfig {
                eval_every: 0,
                ..config(5)
            },
            "eval_every",
        ),
        (
            TrainConfig {
                clip_norm: Some(-1.0),
                ..config(5)
            },
            "clip_norm",
        ),
        (
            TrainConfig {
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: -1.0,
                    ..AdamConfig::default()
                }),
                ..config(5)
            },
            "lr",
        ),
    ] {
        let err = fit(
            &model,
            &mut store,
            &mut trainer,
            &cfg,
            0,
            |r, b| random_batch(r, 3, b),
            &[],
            |_, _| Control::Continue,
        )
        .unwrap_err();
        assert_eq!(err.field, field);
    }
}

/// What a checkpoint keeps: parameters, optimiser steps and buffers, progress.
type Saved = (
    ParamStore<f32>,
    u64,
    Vec<(String, relational_rnn::Grads<f32>)>,
    Progress,
);

/// Hooks that interrupt after step `stop_after` and keep the snapshot taken then.
struct StopAt {
    stop_after: u64,
    saved: Option<Saved>,
    records: Vec<relational_rnn::train::EvalRecord>,
}

impl Hooks<f32> for StopAt {
    fn on_step(&mut self, progress: &Progress, _: &relational_rnn::train::StepStats) -> Control {
        if progress.step == self.stop_after {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn on_event(&mut self, event: Event<'_>, snap: Snapshot<'_, f32>) -> Control {
        match event {
            Event::Evaluated(r) => self.records.push(*r),
            Event::Interrupted => {
                let buffers = snap
                    .optimizer
                    .buffers()
                    .into_iter()
                    .map(|(n, g)| (n.to_owned(), g.clone()))
                    .collect();
                self.saved = Some((
                    snap.store.clone(),
                    snap.optimizer.steps_taken(),
                    buffers,
                    snap.progress.clone(),
                ));
            }
        }
        Control::Continue
    }
}

#[test]
fn fit_from_a_mid_interval_snapshot_reproduces_records_and_parameters() {
    let test = vec![random_batch(&mut ChaCha8Rng::seed_from_u64(3), 3, 8)];
    let sample = |rng: &mut ChaCha8Rng, b| random_batch(rng, 3, b);
    let cfg = TrainConfig {
        early_stopping: Some(EarlyStoppingConfig {
            patience: 50,
            min_delta: 0.0,
            mode: Mode::Maximize,
        }),
        ..config(12)
    };
    for core in cores() {
        let run =
            |stop_after: u64, store: &mut ParamStore<f32>, trainer: &mut Trainer<f32>, progress| {
                let mut hooks = StopAt {
                    stop_after,
                    saved: None,
                    records: Vec::new(),
                };
                let (model, _) = build::<f32>(&core, 5);
                let h = fit_from(
                    &model, store, trainer, &cfg, progress, sample, &test, &mut hooks,
                )
                .expect("ok");
                (h, hooks)
            };
        let (_, mut straight) = build::<f32>(&core, 5);
        let mut trainer = Trainer::new(&straight, &cfg.optimizer).expect("valid");
        let (h, full) = run(u64::MAX, &mut straight, &mut trainer, Progress::at(0));
        assert_eq!(h.stopped, Stopped::Completed);

        let (_, mut first) = build::<f32>(&core, 5);
        let mut trainer = Trainer::new(&first, &cfg.optimizer).expect("valid");
        let (h, part) = run(7, &mut first, &mut trainer, Progress::at(0));
        assert_eq!(h.stopped, Stopped::Interrupted);
        let (mut store, steps, buffers, progress) = part.saved.expect("snapshot");
        assert_eq!((progress.step, progress.since_eval), (7, 2));
        let optimizer = cfg
            .optimizer
            .restore(steps, |name| {
                buffers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, g)| g.clone())
            })
            .expect("valid");
        let mut trainer = Trainer::with_optimizer(&store, optimizer);
        let (h, rest) = run(u64::MAX, &mut store, &mut trainer, progress);
        assert_eq!(h.stopped, Stopped::Completed);
        assert_eq!(store, straight);
        let strip = |r: &[relational_rnn::train::EvalRecord]| {
            r.iter()
                .map(|r| {
                    (
                        r.step,
                        r.train_loss.to_bits(),
                        r.train_accuracy.to_bits(),
                        r.val_loss.to_bits(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut resumed = part.records.clone();
        resumed.extend(rest.records);
        assert_eq!(strip(&resumed), strip(&full.records));
    }
}

/// Data-parallel steps (the batch cut into 2 or 3 shards, each on its own thread and tape) make
/// the same update as one full-batch step, up to float rounding, for every core — also when the
/// shards are unequal (7 rows in 3 shards) and when some rows carry no loss (masked out).
#[test]
fn sharded_steps_match_the_full_batch_step() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for core in cores() {
        for (rows, shards) in [(6, 2), (7, 3)] {
            let mut batch = random_batch(&mut rng, 5, rows);
            batch.mask[[4, 1]] = false; // shard 0 carries less loss weight
            let (model, store) = build::<f64>(&core, 3);
            let opt = OptimizerConfig::Adam(AdamConfig::default());
            let (mut whole, mut split) = (store.clone(), store.clone());
            let mut t1 = Trainer::new(&whole, &opt).expect("valid");
            let mut t2 = Trainer::new(&split, &opt).expect("valid");
            for _ in 0..3 {
                let a = t1.step(&model, &mut whole, &batch, 1e-2, Some(1.0));
                let b = t2.step_sharded(&model, &mut split, &batch, 1e-2, Some(1.0), shards);
                assert!((a.loss - b.loss).abs() < 1e-12, "{} vs {}", a.loss, b.loss);
                assert!((a.grad_norm - b.grad_norm).abs() < 1e-10);
                assert_eq!(a.accuracy, b.accuracy);
            }
            let worst = whole
                .iter()
                .zip(split.iter())
                .flat_map(|((_, _, x), (_, _, y))| x.iter().zip(y).map(|(x, y)| (x - y).abs()))
                .fold(0.0, f64::max);
            assert!(worst < 1e-10, "{core:?}: parameters differ by {worst}");
        }
    }
}

/// `Graph::write_param_grads` (what a training step uses) gives the same bits as zeroing the
/// gradients and then `accumulate_param_grads`: a parameter large enough to be written on two
/// threads, a small one whose gradient holds −0 (0 + −0 is +0: a plain copy would differ), and
/// one the tape never used (zeroed, whatever it held).
#[test]
fn written_param_grads_equal_zeroed_then_accumulated() {
    use ndarray::{ArrayD, IxDyn};
    use relational_rnn::Graph;
    use relational_rnn::with_threads;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut store = ParamStore::<f32>::new();
    let big = store.add(
        "big",
        ArrayD::from_shape_simple_fn(IxDyn(&[1100, 1000]), || rng.random_range(-1.0..1.0)),
    );
    let small = store.add(
        "small",
        ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, -0.0, 2.0]).expect("3 values"),
    );
    store.add("unused", ArrayD::from_elem(IxDyn(&[4]), 1.0));
    for threads in [1, 2] {
        let (g, written) = with_threads(threads, || {
            let mut g = Graph::new();
            let (b, s) = (g.param(&store, big), g.param(&store, small));
            let (bb, ss) = (g.mul(b, b), g.mul(s, s));
            let (bb, ss) = (g.sum(bb), g.sum(ss));
            let loss = g.add(bb, ss);
            g.backward(loss);
            let mut written = store.zeros_like();
            written.iter_mut().for_each(|(_, x)| x.fill(7.0));
            g.write_param_grads(&store, &mut written);
            (g, written)
        });
        let reference = g.param_grads(&store);
        assert_eq!(reference.get(small)[1].to_bits(), 0.0f32.to_bits());
        for ((id, x), (_, y)) in written.iter().zip(reference.iter()) {
            let same = x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "parameter {id:?}, {threads} threads");
        }
    }
}

/// With helper threads and no clipping, a step sums the gradient norm on a helper beside the
/// update: the same parameters and reported norms, bit for bit, as one thread, for every model;
/// a NaN input (non-finite gradients, whether or not the loss is) still leaves the parameters
/// untouched. Checked to fail with the update
/// skipped on that path.
#[test]
fn the_norm_summed_beside_the_update_changes_nothing() {
    use relational_rnn::with_threads;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let batches: Vec<Batch> = (0..4).map(|_| random_batch(&mut rng, 3, 8)).collect();
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    });
    for core in cores() {
        let mut runs = Vec::new();
        for threads in [1, 2] {
            let (model, mut store) = build::<f32>(&core, 5);
            let mut trainer = Trainer::new(&store, &adam).expect("valid");
            let (norms, before, s) = with_threads(threads, || {
                let norms: Vec<u64> = batches
                    .iter()
                    .map(|b| {
                        let s = trainer.step(&model, &mut store, b, 1e-2, None);
                        s.grad_norm.to_bits()
                    })
                    .collect();
                let mut poisoned = batches[0].clone();
                poisoned.inputs[[0, 0, 0]] = f32::NAN;
                let before = store.clone();
                let s = trainer.step(&model, &mut store, &poisoned, 1e-2, None);
                (norms, before, s)
            });
            assert!(
                !(s.loss.is_finite() && s.grad_norm.is_finite()),
                "{core:?}: {s:?}"
            );
            assert_eq!(store, before, "{core:?}: a NaN step changed the parameters");
            runs.push((norms, store));
        }
        assert_eq!(runs[0].0, runs[1].0, "{core:?}: gradient norms");
        assert_eq!(runs[0].1, runs[1].1, "{core:?}: parameters");
    }
}
