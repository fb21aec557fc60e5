//! `Experiment::memory_estimate` against the allocator: the parameter count is exact, and the
//! training and evaluation estimates bound the measured peak heap of what `rrnn train` and
//! `rrnn eval` do (from above, within 3×) on default and deliberately lopsided configurations.
//! Absurd sizes give a saturated estimate, never a wrapped one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use relational_rnn::checkpoint;
use relational_rnn::experiment::{Experiment, ModelKind, eval_batches};
use relational_rnn::memory::parameter_count;
use relational_rnn::tasks::{Split, TaskKind};
use relational_rnn::train::{TrainConfig, Trainer, evaluate, step_rng};
use serde_json::{Value, json};

/// Tracks live heap bytes and their peak (this test binary only).
struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One test at a time: the counters are process-wide, so another test's allocations would count.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// Peak heap growth while `work` runs.
fn peak_of(work: impl FnOnce()) -> u64 {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    work();
    (PEAK.load(Ordering::Relaxed) - base) as u64
}

/// What `rrnn train` holds: network, optimiser, validation batches, training steps, evaluations,
/// and at the end the scored sets, a copy of the parameters and the reference baselines.
fn train_like(e: &Experiment) {
    let task = e.validate().unwrap();
    let (model, mut store) = e.init().unwrap();
    let mut trainer = Trainer::new(&store, &e.train.optimizer).unwrap();
    let val = eval_batches(&e.eval_sets().unwrap().val);
    for step in 0..2 {
        let batch = task.sample(e.train.batch_size, Split::Train, &mut step_rng(0, step));
        trainer.step(&model, &mut store, &batch, 1e-3, Some(5.0));
    }
    evaluate(&model, &store, &val);
    let sets = e.eval_sets().unwrap();
    let scored = store.clone();
    evaluate(&model, &scored, &eval_batches(&sets.test));
    evaluate(&model, &scored, &eval_batches(&sets.hard));
    e.reference().unwrap();
}

/// What `rrnn eval` holds: the checkpoint's bytes and tensors, the network, one split scored.
fn eval_like(e: &Experiment, bytes: &[u8]) {
    let (tensors, _) = checkpoint::decode(bytes, "m.safetensors".as_ref()).unwrap();
    let (model, mut store) = e.init().unwrap();
    checkpoint::load_into(&mut store, &tensors, "m.safetensors".as_ref()).unwrap();
    let sets = e.eval_sets().unwrap();
    evaluate(&model, &store, &eval_batches(&sets.hard));
    e.task.build().unwrap().heuristics(&sets.hard);
}

fn experiment(task: TaskKind, kind: ModelKind, changes: Value) -> Experiment {
    let e = Experiment::new(task.default_config(), kind, TrainConfig::default()).unwrap();
    let mut json = serde_json::to_value(e).unwrap();
    json["test_size"] = 100.into();
    for (path, value) in changes.as_object().unwrap() {
        *json.pointer_mut(path).unwrap() = value.clone();
    }
    serde_json::from_value(json).unwrap()
}

fn check(name: &str, e: &Experiment) {
    let estimate = e.memory_estimate().unwrap();
    let (_, store) = e.init().unwrap();
    assert_eq!(estimate.params, store.num_scalars() as u64, "{name}");
    assert_eq!(parameter_count(&e.model), estimate.params, "{name}");
    let bytes =
        checkpoint::encode(store.iter().map(|(_, n, v)| (n, v)), &Default::default()).unwrap();
    for (what, measured, estimated) in [
        (
            "train",
            peak_of(|| train_like(e)),
            estimate.training_bytes(),
        ),
        (
            "eval",
            peak_of(|| eval_like(e, &bytes)),
            estimate.evaluation_bytes(),
        ),
    ] {
        let ratio = estimated as f64 / measured as f64;
        assert!(
            (1.0..=3.0).contains(&ratio),
            "{name} {what}: estimate {estimated} B, measured peak {measured} B (×{ratio:.2})"
        );
    }
}

#[test]
fn the_estimates_bound_the_measured_peaks_of_default_networks() {
    let _serial = serial();
    for task in [
        TaskKind::NthFarthest,
        TaskKind::Sorting,
        "babi-qa2".parse().unwrap(),
    ] {
        for kind in ModelKind::ALL {
            check(
                &format!("{task} {kind}"),
                &experiment(task, kind, json!({})),
            );
        }
    }
}

#[test]
fn the_estimates_bound_the_measured_peaks_of_lopsided_networks() {
    let _serial = serial();
    let cases = [
        (
            ModelKind::Rmc,
            json!({"/model/core/mem_slots": 16, "/model/core/num_heads": 1}),
        ),
        (
            ModelKind::Rmc,
            json!({"/model/core/attention_mlp_layers": 4, "/model/core/num_blocks": 3}),
        ),
        (
            ModelKind::Rmc,
            json!({"/model/core/key_size": 3, "/model/core/gate_style": "memory"}),
        ),
        (
            ModelKind::Rmc,
            json!({"/model/core/attention": "self-and-input", "/model/core/mem_slots": 16}),
        ),
        (
            ModelKind::Rmc,
            json!({"/model/core/attention": "none", "/model/core/residual": true}),
        ),
        (
            ModelKind::Rmc,
            json!({"/train/batch_size": 256, "/model/head_hidden": []}),
        ),
        (
            ModelKind::Rmc,
            json!({"/train/optimizer": {"kind": "sgd", "lr": 0.1}, "/train/batch_size": 1}),
        ),
        (ModelKind::Lstm, json!({"/model/core/hidden_size": 512})),
        (
            ModelKind::RrnnCell,
            json!({"/model/core/hidden_size": 4, "/model/core/memory/head_size": 64}),
        ),
        (
            ModelKind::RrnnCell,
            json!({"/model/core/memory/attention": "self-and-input", "/model/core/memory/mem_slots": 16}),
        ),
    ];
    for (kind, changes) in cases {
        let name = format!("{kind} {changes}");
        check(&name, &experiment(TaskKind::Sorting, kind, changes));
    }
}

#[test]
fn absurd_sizes_saturate_instead_of_wrapping() {
    let _serial = serial();
    let mut e = experiment(TaskKind::NthFarthest, ModelKind::Rmc, json!({}));
    e.train.batch_size = relational_rnn::error::MAX_SIZE;
    e.test_size = relational_rnn::error::MAX_SIZE;
    let estimate = e.memory_estimate().unwrap();
    assert!(estimate.training_bytes() > 1 << 50);
    assert!(estimate.evaluation_bytes() > 1 << 40);
    let mut e = experiment(TaskKind::NthFarthest, ModelKind::Lstm, json!({}));
    let relational_rnn::nn::CoreConfig::Lstm(lstm) = &mut e.model.core else {
        unreachable!()
    };
    lstm.hidden_size = relational_rnn::error::MAX_SIZE;
    assert_eq!(e.memory_estimate().unwrap().training_bytes(), u64::MAX);
    e.test_size = relational_rnn::error::MAX_SIZE + 1;
    assert!(
        e.memory_estimate()
            .unwrap_err()
            .to_string()
            .contains("test_size")
    );
}
