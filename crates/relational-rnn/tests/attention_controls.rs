//! The RMC's attention controls (`attention: self-and-input` and `none`): gradient checks of one
//! step, that `self-and-input` really keeps slots apart and `none` drops the projections and
//! lets the input in through the gates only, that `full` is the default with unchanged bits, and
//! the configuration's validation and JSON form.

use ndarray::{ArrayD, Axis, Ix4, IxDyn, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use relational_rnn::autodiff::gradcheck::{Tolerance, check};
use relational_rnn::nn::{
    AttentionScope, ClassifierConfig, CoreConfig, GateStyle, Model, RelationalMemory,
    RelationalRNNCell, RmcConfig, RrnnCellConfig, SequenceClassifier,
};
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

/// F 3, N 3, H 2, K 2, V 3 (D 6).
fn small(attention: AttentionScope, num_blocks: usize, gate_style: GateStyle) -> RmcConfig {
    RmcConfig {
        input_size: 3,
        mem_slots: 3,
        head_size: 3,
        num_heads: 2,
        key_size: Some(2),
        num_blocks,
        gate_style,
        attention,
        ..RmcConfig::default()
    }
}

fn build(config: &RmcConfig, seed: u64) -> (RelationalMemory, ParamStore<f64>) {
    let mut store = ParamStore::new();
    let rmc = RelationalMemory::new(config, &mut store, "rmc", &mut rng(seed)).expect("valid");
    (rmc, store)
}

/// One step, f64 finite differences: every parameter, the input and the previous memory.
#[test]
fn one_step_gradcheck_of_each_control() {
    let cases = [
        (AttentionScope::SelfAndInput, 1, GateStyle::Unit),
        (AttentionScope::SelfAndInput, 2, GateStyle::Memory),
        (AttentionScope::SelfAndInput, 1, GateStyle::None),
        (AttentionScope::None, 1, GateStyle::Unit),
        (AttentionScope::None, 2, GateStyle::Memory),
    ];
    for (attention, blocks, gates) in cases {
        let (rmc, store) = build(&small(attention, blocks, gates), 1);
        let (x, m) = (randn::<f64>(&[2, 3], 2), randn::<f64>(&[2, 3, 6], 3));
        let report = check(
            |g, store, v| rmc.step(g, store, v[0], v[1]).output,
            &[x, m],
            &store,
            Tolerance::default(),
        );
        assert!(report.checked > 100, "too little was checked: {report}");
        assert!(
            report.passed(),
            "{attention:?}, {blocks} blocks, {gates:?}: {report}"
        );
    }
}

/// A model without attention trains through time like the others: a gradcheck over three steps.
#[test]
fn no_attention_gradcheck_through_time() {
    let (rmc, store) = build(&small(AttentionScope::None, 1, GateStyle::Unit), 4);
    let inputs = randn::<f64>(&[3, 2, 3], 5); // [T, B, F]
    let report = check(
        |g, store, v| {
            let out = rmc.unroll(g, store, v[0]);
            g.stack(&out.outputs, 0) // [T, B, N·D]
        },
        &[inputs],
        &store,
        Tolerance::default(),
    );
    assert!(report.passed(), "{report}");
}

/// Values of one step from `memory` (f64): M̃, M' and the attention weights of each block.
fn step_values(
    rmc: &RelationalMemory,
    store: &ParamStore<f64>,
    x: &ArrayD<f64>,
    memory: &ArrayD<f64>,
) -> (ArrayD<f64>, ArrayD<f64>, Vec<ArrayD<f64>>) {
    let mut g = Graph::new();
    let (xv, mv) = (g.constant(x.clone()), g.constant(memory.clone()));
    let step = rmc.step(&mut g, store, xv, mv);
    (
        g.value(step.m_tilde).clone(),
        g.value(step.memory).clone(),
        step.attention.iter().map(|&a| g.value(a).clone()).collect(),
    )
}

/// The memory with slot `j` replaced by other values.
fn perturbed(memory: &ArrayD<f64>, j: usize) -> ArrayD<f64> {
    let mut m = memory.clone();
    let other = randn::<f64>(m.index_axis(Axis(1), j).shape(), 77);
    m.index_axis_mut(Axis(1), j).assign(&other);
    m
}

/// Slot i's rows, bit for bit, for every i but `j`; and slot j's row did change.
#[track_caller]
fn only_slot_changed(a: &ArrayD<f64>, b: &ArrayD<f64>, j: usize, what: &str) {
    for i in 0..a.shape()[1] {
        let (ra, rb) = (a.index_axis(Axis(1), i), b.index_axis(Axis(1), i));
        if i == j {
            assert!(ra != rb, "{what}: slot {j} did not change");
        } else {
            assert!(ra == rb, "{what}: slot {i} changed with slot {j}");
        }
    }
}

/// With `self-and-input`, a memory row reads its own row and the input row only: changing slot
/// j leaves every other slot's M̃ and M' exactly as they were (over two blocks, so the input
/// row cannot carry one slot to another either), and the weights are zero off the diagonal but
/// for the input's column. With `full`, the same change reaches every slot.
#[test]
fn self_and_input_keeps_slots_apart() {
    let (x, m) = (randn::<f64>(&[2, 3], 10), randn::<f64>(&[2, 3, 6], 11));
    for j in 0..3 {
        let (rmc, store) = build(&small(AttentionScope::SelfAndInput, 2, GateStyle::Unit), 12);
        let (mt_a, m_a, att) = step_values(&rmc, &store, &x, &m);
        let (mt_b, m_b, _) = step_values(&rmc, &store, &x, &perturbed(&m, j));
        only_slot_changed(&mt_a, &mt_b, j, "M̃");
        only_slot_changed(&m_a, &m_b, j, "M'");
        for a in &att {
            assert_eq!(a.shape(), &[2, 2, 4, 4]); // [B, H, N+1, N+1]
            for ((_, _, q, k), &w) in a
                .view()
                .into_dimensionality::<Ix4>()
                .expect("4-d")
                .indexed_iter()
            {
                if q != k && k != 3 {
                    assert_eq!(w, 0.0, "query {q} reads key {k}");
                }
            }
            // The input row reads itself only.
            assert!(a.slice(s![.., .., 3, 3]).iter().all(|&w| w == 1.0));
            for row in a.lanes(Axis(3)) {
                assert!((row.sum() - 1.0).abs() < 1e-12);
            }
        }
    }
    // Control: with full attention slot 0 changes every slot.
    let (rmc, store) = build(&small(AttentionScope::Full, 2, GateStyle::Unit), 12);
    let (mt_a, _, _) = step_values(&rmc, &store, &x, &m);
    let (mt_b, _, _) = step_values(&rmc, &store, &x, &perturbed(&m, 0));
    for i in 0..3 {
        assert!(mt_a.index_axis(Axis(1), i) != mt_b.index_axis(Axis(1), i));
    }
}

/// Without attention there are no QKV projections (fewer parameters, by exactly theirs), no
/// attention weights, each slot's update depends on its own row and the input alone, and the
/// input reaches the memory only through the gates: M̃ ignores it, M' does not.
#[test]
fn no_attention_drops_the_projections_and_reads_the_input_through_the_gates() {
    for blocks in [1, 2] {
        let (_, full) = build(&small(AttentionScope::Full, blocks, GateStyle::Unit), 20);
        let (rmc, none) = build(&small(AttentionScope::None, blocks, GateStyle::Unit), 20);
        let w = 2 * (2 * 2 + 3); // H·(2K+V)
        let qkv = 6 * w + w + 2 * w; // weight, bias, LayerNorm gain and bias
        assert_eq!(full.num_scalars() - none.num_scalars(), blocks * qkv);
        assert!(none.iter().all(|(_, name, _)| !name.contains("qkv")));

        let (x, m) = (randn::<f64>(&[2, 3], 21), randn::<f64>(&[2, 3, 6], 22));
        let (mt, new_m, att) = step_values(&rmc, &none, &x, &m);
        assert!(att.is_empty());
        for j in 0..3 {
            let (mt_b, m_b, _) = step_values(&rmc, &none, &x, &perturbed(&m, j));
            only_slot_changed(&mt, &mt_b, j, "M̃");
            only_slot_changed(&new_m, &m_b, j, "M'");
        }
        let other_x = randn::<f64>(&[2, 3], 23);
        let (mt_x, m_x, _) = step_values(&rmc, &none, &other_x, &m);
        assert_eq!(mt, mt_x, "M̃ without attention must not see the input");
        for i in 0..3 {
            let (a, b) = (new_m.index_axis(Axis(1), i), m_x.index_axis(Axis(1), i));
            assert!(a != b, "the input did not reach slot {i} through the gates");
        }

        let mut g = Graph::new();
        let inputs = g.constant(randn::<f64>(&[4, 2, 3], 24));
        let out = rmc.unroll(&mut g, &none, inputs);
        assert!(out.attention.is_empty() && out.memories.len() == 4);
    }
}

/// Bits of the loss, the logits and every parameter gradient of one f32 batch.
fn loss_bits(cfg: &RmcConfig) -> Vec<Vec<u32>> {
    let cfg = ClassifierConfig {
        core: CoreConfig::Rmc(cfg.clone()),
        head_hidden: vec![16],
        num_classes: 5,
    };
    let mut store = ParamStore::<f32>::new();
    let model = SequenceClassifier::new(&cfg, &mut store, &mut rng(30)).expect("valid");
    let (t, b, f) = (4, 3, cfg.core.input_size());
    let inputs = randn::<f32>(&[t, b, f], 31)
        .into_dimensionality()
        .expect("3-d");
    let targets = ndarray::Array2::from_shape_fn((t, b), |(i, j)| (i + 2 * j) % 5);
    let batch = Batch::new(inputs, targets, ndarray::Array2::from_elem((t, b), true));
    let mut g = Graph::new();
    let out = model.loss(&mut g, &store, &batch);
    g.backward(out.loss);
    let bits = |a: &ArrayD<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut all = vec![bits(g.value(out.loss)), bits(g.value(out.logits))];
    all.extend(g.param_grads(&store).iter().map(|(_, grad)| bits(grad)));
    all
}

/// `full` is the default: an old configuration without the field, the default and an explicit
/// `"attention": "full"` give the same loss, logits and gradients bit for bit, and the controls
/// do differ from them.
#[test]
fn full_is_the_default_with_the_same_bits() {
    let old = RmcConfig::from_json(r#"{"input_size": 7, "mem_slots": 3, "num_blocks": 2}"#)
        .expect("valid");
    let explicit = RmcConfig::from_json(
        r#"{"input_size": 7, "mem_slots": 3, "num_blocks": 2, "attention": "full"}"#,
    )
    .expect("valid");
    assert_eq!(old.attention, AttentionScope::Full);
    assert_eq!(old, explicit);
    let reference = loss_bits(&old);
    assert_eq!(loss_bits(&explicit), reference);
    let defaults = RmcConfig {
        input_size: 7,
        mem_slots: 3,
        num_blocks: 2,
        ..RmcConfig::default()
    };
    assert_eq!(loss_bits(&defaults), reference);
    for attention in [AttentionScope::SelfAndInput, AttentionScope::None] {
        let control = RmcConfig {
            attention,
            ..old.clone()
        };
        assert_ne!(loss_bits(&control)[0], reference[0], "{attention:?}");
    }
}

#[test]
fn attention_scope_json_names_and_round_trip() {
    for (scope, name) in [
        (AttentionScope::Full, "full"),
        (AttentionScope::SelfAndInput, "self-and-input"),
        (AttentionScope::None, "none"),
    ] {
        assert_eq!(
            serde_json::to_value(scope).expect("serialises"),
            serde_json::json!(name)
        );
        let cfg = RmcConfig::from_json(&format!(r#"{{"attention": "{name}"}}"#)).expect("valid");
        assert_eq!(cfg.attention, scope);
        let json = serde_json::to_string(&cfg).expect("serialises");
        assert_eq!(RmcConfig::from_json(&json).expect("valid"), cfg);
    }
    let err = RmcConfig::from_json(r#"{"attention": "slots"}"#).unwrap_err();
    assert_eq!(err.field, "config");
    assert!(err.to_string().contains("self-and-input"), "{err}");
}

/// Without attention the input reaches the memory only through the gates and the memory reaches
/// M̃ only through the residual: both are required, and the errors say why.
#[test]
fn no_attention_needs_gates_and_the_residual() {
    let none = |gate_style, residual| RmcConfig {
        attention: AttentionScope::None,
        gate_style,
        residual,
        ..RmcConfig::default()
    };
    for bad in [none(GateStyle::None, true), none(GateStyle::Unit, false)] {
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "attention", "{err}");
        let mut store = ParamStore::<f32>::new();
        assert!(RelationalMemory::new(&bad, &mut store, "rmc", &mut rng(40)).is_err());
        assert!(store.is_empty());
    }
    none(GateStyle::Memory, true).validate().expect("valid");
    for attention in [AttentionScope::Full, AttentionScope::SelfAndInput] {
        for (gate_style, residual) in [(GateStyle::None, true), (GateStyle::Unit, false)] {
            let cfg = RmcConfig {
                attention,
                gate_style,
                residual,
                ..RmcConfig::default()
            };
            cfg.validate().expect("valid");
        }
    }
}

/// The hybrid cell's memory defaults to full attention and takes the controls too.
#[test]
fn hybrid_cell_memory_takes_the_controls() {
    assert_eq!(
        RrnnCellConfig::default().memory.attention,
        AttentionScope::Full
    );
    for attention in [AttentionScope::SelfAndInput, AttentionScope::None] {
        let cfg = RrnnCellConfig {
            input_size: 3,
            hidden_size: 4,
            forget_bias: 1.0,
            memory: small(attention, 1, GateStyle::Unit),
        };
        let mut store = ParamStore::<f64>::new();
        let cell = RelationalRNNCell::new(&cfg, &mut store, "rrnn", &mut rng(50)).expect("valid");
        let mut g = Graph::new();
        let inputs = g.constant(randn::<f64>(&[2, 2, 3], 51));
        let out = cell.unroll(&mut g, &store, inputs);
        assert_eq!(g.shape(out.memories[1]), &[2, 3, 6]);
        assert_eq!(
            out.attention.len(),
            if attention == AttentionScope::None {
                0
            } else {
                2
            }
        );
    }
    let bad = RrnnCellConfig {
        memory: RmcConfig {
            attention: AttentionScope::None,
            residual: false,
            ..RmcConfig::default()
        },
        ..RrnnCellConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().field, "attention");
}
