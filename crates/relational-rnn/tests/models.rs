//! Models: end-to-end gradient checks through time, shapes with distinct sizes, behaviour the
//! equations imply, and parameter counts against PyTorch's.

use ndarray::{Array3, ArrayD, Axis, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use relational_rnn::autodiff::gradcheck::{Tolerance, check};
use relational_rnn::experiment::ModelKind;
use relational_rnn::nn::{
    ClassifierConfig, CoreConfig, GateStyle, Lstm, LstmConfig, Model, RelationalMemory,
    RelationalRNNCell, RmcConfig, RrnnCellConfig, SequenceClassifier,
};
use relational_rnn::perf::PerfConfig;
use relational_rnn::tasks::Batch;
use relational_rnn::{Graph, ParamStore, Scalar};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn randn<T: Scalar>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut r = rng(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        T::from_f64_lossy(StandardNormal.sample(&mut r))
    })
}

fn small_rmc(gate_style: GateStyle, residual: bool) -> RmcConfig {
    RmcConfig {
        input_size: 3,
        mem_slots: 2,
        head_size: 3,
        num_heads: 2,
        key_size: Some(2),
        gate_style,
        residual,
        ..RmcConfig::default()
    }
}

/// Gradcheck of a whole model over T = 3 steps: every parameter and every input element.
#[track_caller]
fn gradcheck_model<M: Model<f64>>(model: &M, store: &ParamStore<f64>, batch: usize) {
    let inputs = randn::<f64>(&[3, batch, model.input_size()], 99); // [T, B, F]
    let report = check(
        |g, store, v| {
            let out = model.unroll(g, store, v[0]);
            g.stack(&out.outputs, 0) // [T, B, O]
        },
        &[inputs],
        store,
        Tolerance::default(),
    );
    assert!(report.checked > 100, "too little was checked: {report}");
    assert!(report.passed(), "{} gradcheck: {report}", model.name());
}

#[test]
fn rmc_gradcheck_through_time_every_gate_style() {
    for (gate, residual) in [
        (GateStyle::Unit, true),
        (GateStyle::Memory, true),
        (GateStyle::None, true),
        (GateStyle::Unit, false),
    ] {
        let mut store = ParamStore::new();
        let rmc = RelationalMemory::new(&small_rmc(gate, residual), &mut store, "rmc", &mut rng(1))
            .expect("valid");
        gradcheck_model(&rmc, &store, 2);
    }
}

#[test]
fn lstm_gradcheck_through_time() {
    let cfg = LstmConfig {
        input_size: 3,
        hidden_size: 4,
        forget_bias: 1.0,
    };
    let mut store = ParamStore::new();
    let lstm = Lstm::new(&cfg, &mut store, "lstm", &mut rng(2)).expect("valid");
    gradcheck_model(&lstm, &store, 2);
}

#[test]
fn hybrid_cell_gradcheck_through_time() {
    let cfg = RrnnCellConfig {
        input_size: 3,
        hidden_size: 4,
        forget_bias: 1.0,
        memory: small_rmc(GateStyle::Unit, true),
    };
    let mut store = ParamStore::new();
    let cell = RelationalRNNCell::new(&cfg, &mut store, "rrnn", &mut rng(3)).expect("valid");
    gradcheck_model(&cell, &store, 2);
}

#[test]
fn classifier_masked_loss_gradcheck() {
    // A sorting-like mask: loss on steps 2 and 3 only, one entry masked out.
    let cfg = ClassifierConfig {
        core: CoreConfig::Rmc(small_rmc(GateStyle::Unit, true)),
        head_hidden: vec![5],
        num_classes: 3,
    };
    let mut store = ParamStore::new();
    let model = SequenceClassifier::new(&cfg, &mut store, &mut rng(4)).expect("valid");
    let targets = ndarray::arr2(&[[0, 0], [0, 0], [2, 1], [1, 0]]);
    let mask = ndarray::arr2(&[[false, false], [false, false], [true, true], [true, false]]);
    let inputs = randn::<f32>(&[4, 2, 3], 5)
        .into_dimensionality()
        .expect("3-d");
    let batch = Batch::new(inputs, targets, mask);
    let report = check(
        |g, store, _| model.loss(g, store, &batch).loss,
        &[],
        &store,
        Tolerance::default(),
    );
    assert!(report.passed(), "classifier gradcheck: {report}");
}

#[test]
fn shapes_with_distinct_sizes() {
    // B=3, T=5, N=4, H=2, K=3, V=7, F=11: a swapped axis cannot go unnoticed.
    let (b, t, n, h, k, v, f) = (3, 5, 4, 2, 3, 7, 11);
    let cfg = RmcConfig {
        input_size: f,
        mem_slots: n,
        head_size: v,
        num_heads: h,
        key_size: Some(k),
        ..RmcConfig::default()
    };
    let mut store = ParamStore::<f32>::new();
    let rmc = RelationalMemory::new(&cfg, &mut store, "rmc", &mut rng(6)).expect("valid");
    let d = h * v;
    assert_eq!(
        store
            .get(store.id("rmc.block0.qkv.weight").expect("exists"))
            .shape(),
        &[d, h * (2 * k + v)]
    );
    let mut g = Graph::new();
    let x = g.constant(randn(&[t, b, f], 7));
    let out = rmc.unroll(&mut g, &store, x);
    assert_eq!(out.outputs.len(), t);
    assert_eq!(g.shape(out.outputs[0]), &[b, n * d]);
    assert_eq!(g.shape(out.memories[t - 1]), &[b, n, d]);
    assert_eq!(g.shape(out.attention[0][0]), &[b, h, n + 1, n + 1]);
    // Attention rows are distributions.
    for row in g.value(out.attention[2][0]).lanes(Axis(3)) {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }

    let mut store = ParamStore::<f32>::new();
    let lstm = Lstm::new(
        &LstmConfig {
            input_size: f,
            hidden_size: 6,
            forget_bias: 1.0,
        },
        &mut store,
        "lstm",
        &mut rng(8),
    )
    .expect("valid");
    let out = lstm.unroll(&mut g, &store, x);
    assert_eq!(g.shape(out.outputs[t - 1]), &[b, 6]);

    let mut store = ParamStore::<f32>::new();
    let cell_cfg = RrnnCellConfig {
        input_size: f,
        hidden_size: 6,
        forget_bias: 1.0,
        memory: cfg,
    };
    let cell = RelationalRNNCell::new(&cell_cfg, &mut store, "rrnn", &mut rng(9)).expect("valid");
    let out = cell.unroll(&mut g, &store, x);
    assert_eq!(g.shape(out.outputs[t - 1]), &[b, 6]);
    assert_eq!(g.shape(out.memories[t - 1]), &[b, n, d]);
}

#[test]
fn input_erasure_leaves_memory_unchanged() {
    // input_bias → −∞ closes the input gate, forget_bias → +∞ opens the forget gate:
    // M' = 0 ⊙ tanh(M̃) + 1 ⊙ M = M exactly, whatever the input.
    for gate_style in [GateStyle::Unit, GateStyle::Memory] {
        let cfg = RmcConfig {
            input_bias: f64::NEG_INFINITY,
            forget_bias: f64::INFINITY,
            gate_style,
            ..small_rmc(gate_style, true)
        };
        let mut store = ParamStore::<f64>::new();
        let rmc = RelationalMemory::new(&cfg, &mut store, "rmc", &mut rng(10)).expect("valid");
        let mut g = Graph::new();
        let m0 = randn::<f64>(&[2, 2, 6], 11);
        let m = g.constant(m0.clone());
        let x = g.constant(randn(&[4, 2, 3], 12).mapv(|v: f64| 10.0 * v));
        let steps = rmc.unroll_from(&mut g, &store, x, m);
        for s in &steps {
            assert_eq!(g.value(s.memory), &m0, "memory changed under erasure");
        }
    }
    // Control: with ordinary biases the same input does change the memory.
    let mut store = ParamStore::<f64>::new();
    let rmc = RelationalMemory::new(
        &small_rmc(GateStyle::Unit, true),
        &mut store,
        "rmc",
        &mut rng(10),
    )
    .expect("valid");
    let mut g = Graph::new();
    let m0 = randn::<f64>(&[2, 2, 6], 11);
    let m = g.constant(m0.clone());
    let x = g.constant(randn(&[1, 2, 3], 12));
    let steps = rmc.unroll_from(&mut g, &store, x, m);
    assert_ne!(g.value(steps[0].memory), &m0);
}

#[test]
fn one_step_is_equivariant_to_slot_permutation() {
    // Attention, MLP, LayerNorm and gates treat memory rows alike and carry no slot position:
    // permuting the memory rows in permutes them out.
    let cfg = RmcConfig {
        input_size: 5,
        mem_slots: 4,
        head_size: 3,
        num_heads: 2,
        num_blocks: 2,
        ..RmcConfig::default()
    };
    let mut store = ParamStore::<f64>::new();
    let rmc = RelationalMemory::new(&cfg, &mut store, "rmc", &mut rng(13)).expect("valid");
    let perm = [2, 0, 3, 1];
    let m = randn::<f64>(&[3, 4, 6], 14);
    let x = randn::<f64>(&[3, 5], 15);
    let permuted = m.select(Axis(1), &perm);
    let mut g = Graph::new();
    let (xv, mv, pv) = (g.constant(x), g.constant(m), g.constant(permuted));
    let a = rmc.step(&mut g, &store, xv, mv);
    let b = rmc.step(&mut g, &store, xv, pv);
    let expected = g.value(a.memory).select(Axis(1), &perm);
    let max = expected
        .iter()
        .zip(g.value(b.memory))
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(max < 1e-12, "not equivariant: max diff {max:e}");
    // And the step is not trivially permutation-invariant: the output order did change.
    assert!(g.value(a.memory) != g.value(b.memory));
}

#[test]
fn loss_at_init_is_close_to_ln_c() {
    // With small logits z (std σ) a second-order expansion gives
    // E[CE] ≈ ln C + σ²(1 − 1/C)/2; we measure σ² from the logits themselves, so the check is
    // ln C plus a computed correction, with 0.05 for sampling noise over 256 rows.
    for core in [
        CoreConfig::Lstm(LstmConfig {
            input_size: 8,
            hidden_size: 16,
            forget_bias: 1.0,
        }),
        CoreConfig::Rmc(RmcConfig {
            input_size: 8,
            ..RmcConfig::default()
        }),
    ] {
        let c = 8;
        let cfg = ClassifierConfig {
            core,
            head_hidden: vec![32],
            num_classes: c,
        };
        let mut store = ParamStore::<f64>::new();
        let model = SequenceClassifier::new(&cfg, &mut store, &mut rng(16)).expect("valid");
        let (t, b) = (4, 256);
        let inputs: Array3<f32> = randn::<f32>(&[t, b, 8], 17)
            .into_dimensionality()
            .expect("3-d");
        let mut targets = ndarray::Array2::zeros((t, b));
        let mut mask = ndarray::Array2::from_elem((t, b), false);
        for j in 0..b {
            targets[[t - 1, j]] = j % c;
            mask[[t - 1, j]] = true;
        }
        let batch = Batch::new(inputs, targets, mask);
        let mut g = Graph::new();
        let out = model.loss(&mut g, &store, &batch);
        let logits = g.value(out.logits);
        let mean = logits.mean().expect("non-empty");
        let var = logits
            .mapv(|z| (z - mean).powi(2))
            .mean()
            .expect("non-empty");
        let cf = c as f64;
        let expected = cf.ln() + var * (1.0 - 1.0 / cf) / 2.0;
        let loss = g.scalar(out.loss);
        assert!(var < 0.5, "logits at init are not small (var {var})");
        assert!(
            (loss - expected).abs() < 0.05,
            "loss {loss} vs ln C + σ²/2 correction {expected}"
        );
    }
}

/// Parameter counts of the three performance configurations, as PyTorch counts them
/// (`perf/README.md`): an independent check that layer shapes, biases and the head match.
#[test]
fn parameter_counts_match_pytorch() {
    let rmc = |f, n, h, v, hidden: Vec<usize>| ClassifierConfig {
        core: CoreConfig::Rmc(RmcConfig {
            input_size: f,
            mem_slots: n,
            num_heads: h,
            head_size: v,
            ..RmcConfig::default()
        }),
        head_hidden: hidden,
        num_classes: 8,
    };
    let lstm = |f, s, hidden: Vec<usize>| ClassifierConfig {
        core: CoreConfig::Lstm(LstmConfig {
            input_size: f,
            hidden_size: s,
            forget_bias: 1.0,
        }),
        head_hidden: hidden,
        num_classes: 8,
    };
    let cases = [
        ("A RMC", rmc(40, 8, 8, 32, vec![256; 4]), 1_329_160),
        ("A LSTM", lstm(40, 1024, vec![256; 4]), 4_828_168),
        ("B RMC", rmc(32, 4, 2, 32, vec![128, 128]), 90_632),
        ("B LSTM", lstm(32, 256, vec![128, 128]), 347_400),
        ("C RMC", rmc(40, 4, 4, 16, vec![128, 128]), 91_144),
        ("C LSTM", lstm(40, 128, vec![128, 128]), 121_096),
    ];
    for (name, cfg, expected) in cases {
        let mut store = ParamStore::<f32>::new();
        SequenceClassifier::new(&cfg, &mut store, &mut rng(18)).expect("valid");
        assert_eq!(store.num_scalars(), expected, "{name}");
    }
    // The presets `rrnn bench` times are the same networks.
    let presets = [
        (PerfConfig::A, ModelKind::Rmc, 1_329_160),
        (PerfConfig::A, ModelKind::Lstm, 4_828_168),
        (PerfConfig::B, ModelKind::Rmc, 90_632),
        (PerfConfig::B, ModelKind::Lstm, 347_400),
        (PerfConfig::C, ModelKind::Rmc, 91_144),
        (PerfConfig::C, ModelKind::Lstm, 121_096),
    ];
    for (config, kind, expected) in presets {
        let mut store = ParamStore::<f32>::new();
        SequenceClassifier::new(&config.classifier(kind), &mut store, &mut rng(18)).expect("valid");
        assert_eq!(store.num_scalars(), expected, "preset {config} {kind}");
    }
}

#[test]
fn bad_configs_are_errors_not_panics() {
    let mut store = ParamStore::<f32>::new();
    let bad = RmcConfig {
        num_heads: 0,
        ..RmcConfig::default()
    };
    let err = RelationalMemory::new(&bad, &mut store, "rmc", &mut rng(19)).unwrap_err();
    assert_eq!(err.field, "num_heads");
    assert!(err.to_string().contains("got 0"), "{err}");
    let bad = RmcConfig {
        forget_bias: f64::NAN,
        ..RmcConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().field, "forget_bias");
    let bad = ClassifierConfig {
        core: CoreConfig::Lstm(LstmConfig::default()),
        head_hidden: vec![0],
        num_classes: 8,
    };
    assert_eq!(bad.validate().unwrap_err().field, "head_hidden");
    let bad = ClassifierConfig {
        core: CoreConfig::Lstm(LstmConfig::default()),
        head_hidden: vec![],
        num_classes: 1,
    };
    assert_eq!(bad.validate().unwrap_err().field, "num_classes");
    assert!("diagonal".parse::<GateStyle>().is_err());
    assert!(
        store.is_empty(),
        "a failed build must not leave parameters behind"
    );
}

#[test]
fn rmc_config_from_json_accepts_sonnet_null_gate_and_rejects_bad_input() {
    let c = RmcConfig::from_json(
        r#"{"input_size": 5, "mem_slots": 3, "head_size": 4, "gate_style": null}"#,
    )
    .expect("valid");
    assert_eq!(
        (c.gate_style, c.mem_slots, c.num_heads),
        (GateStyle::None, 3, 4)
    );
    assert_eq!(
        RmcConfig::from_json(r#"{"mem_slots": 0}"#)
            .unwrap_err()
            .field,
        "mem_slots"
    );
    assert_eq!(
        RmcConfig::from_json(r#"{"slots": 3}"#).unwrap_err().field,
        "config"
    );
    assert_eq!(
        RmcConfig::from_json("not json").unwrap_err().field,
        "config"
    );
}

/// Loss and every parameter gradient of one batch, on a given tape.
fn loss_and_grads(
    g: &mut Graph<f32>,
    model: &SequenceClassifier,
    store: &ParamStore<f32>,
    batch: &Batch,
) -> (f64, Vec<Vec<f32>>) {
    g.clear();
    let out = model.loss(g, store, batch);
    g.backward(out.loss);
    let grads = g.param_grads(store);
    let flat = store
        .ids()
        .map(|id| grads.get(id).iter().copied().collect())
        .collect();
    (g.scalar(out.loss), flat)
}

#[test]
fn a_reused_tape_gives_bit_identical_results_also_when_shapes_change() {
    // The tape keeps its arrays across `clear` and hands them to the next step's ops; stale
    // contents must never leak into a result, whether or not the shapes match.
    for kind in [ModelKind::Rmc, ModelKind::Lstm, ModelKind::RrnnCell] {
        let config = PerfConfig::B;
        let mut store = ParamStore::<f32>::new();
        let model = SequenceClassifier::new(&config.classifier(kind), &mut store, &mut rng(3))
            .expect("valid");
        let (big, small) = (config.random_batch(1), config.random_batch(2));
        let small = Batch {
            inputs: small.inputs.slice_axis(Axis(1), (0..5).into()).to_owned(),
            targets: small.targets.slice_axis(Axis(1), (0..5).into()).to_owned(),
            mask: small.mask.slice_axis(Axis(1), (0..5).into()).to_owned(),
        };
        let mut reused = Graph::new();
        for batch in [&big, &big, &small, &big, &small, &small] {
            let fresh = loss_and_grads(&mut Graph::new(), &model, &store, batch);
            let again = loss_and_grads(&mut reused, &model, &store, batch);
            assert_eq!(fresh, again, "{kind:?}");
        }
    }
}
