//! The fast path against the reference path (`nn::reference`): two RMC steps and two LSTM steps
//! in f64, every value the step returns and the gradient of every parameter, the input and the
//! initial state, for every gate style, attention scope, residual setting and block count.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use relational_rnn::nn::{
    AttentionScope, GateStyle, LstmCell, LstmConfig, RelationalMemory, RmcConfig, RmcStep,
    reference,
};
use relational_rnn::{Graph, ParamStore, Var};

fn randn(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || StandardNormal.sample(&mut r))
}

/// Largest absolute difference, after checking the shapes agree.
fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Values and gradients of a two-step computation built by `run` (returning the tensors to
/// compare and a scalar loss), with their names.
fn evaluate(
    store: &ParamStore<f64>,
    inputs: &[ArrayD<f64>],
    run: impl Fn(&mut Graph<f64>, &[Var]) -> (Vec<(String, Var)>, Var),
) -> Vec<(String, ArrayD<f64>)> {
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|x| g.input(x.clone())).collect();
    let (named, loss) = run(&mut g, &vars);
    g.backward(loss);
    let mut out: Vec<(String, ArrayD<f64>)> = named
        .into_iter()
        .map(|(name, v)| (name, g.value(v).clone()))
        .collect();
    for (i, &v) in vars.iter().enumerate() {
        out.push((
            format!("d input {i}"),
            g.grad(v).expect("a gradient").clone(),
        ));
    }
    for (id, grad) in g.param_grads(store).iter() {
        out.push((format!("d {}", store.name(id)), grad.clone()));
    }
    out
}

fn assert_close(fast: &[(String, ArrayD<f64>)], reference: &[(String, ArrayD<f64>)], case: &str) {
    assert_eq!(fast.len(), reference.len(), "{case}: different outputs");
    for ((name, a), (name_ref, b)) in fast.iter().zip(reference) {
        assert_eq!(name, name_ref);
        let diff = max_diff(a, b);
        assert!(diff < 1e-11, "{case}: {name} differs by {diff:e}");
    }
}

/// The tensors of one RMC step worth comparing, and a loss reading all of them with random
/// weights (so no gradient is trivially uniform).
fn rmc_named(g: &mut Graph<f64>, t: usize, step: &RmcStep, seed: u64) -> (Vec<(String, Var)>, Var) {
    let mut named = vec![
        (format!("M'{t}"), step.memory),
        (format!("M~{t}"), step.m_tilde),
        (format!("x_hat{t}"), step.x_hat),
    ];
    if let Some(gates) = step.gates {
        named.push((format!("gates{t}"), gates));
    }
    for (b, &a) in step.attention.iter().enumerate() {
        named.push((format!("A{t} block {b}"), a));
    }
    let mut loss = None;
    for (i, (_, v)) in named.iter().enumerate() {
        let w = g.constant(randn(g.shape(*v), seed + i as u64));
        let prod = g.mul(*v, w);
        let s = g.sum(prod);
        loss = Some(match loss {
            Some(l) => g.add(l, s),
            None => s,
        });
    }
    (named, loss.expect("a step has outputs"))
}

#[test]
fn the_rmc_step_equals_the_reference_step() {
    let cases = [
        (AttentionScope::Full, 1, GateStyle::Unit, true, None),
        (AttentionScope::Full, 2, GateStyle::Unit, true, Some(2)),
        (AttentionScope::Full, 2, GateStyle::Memory, true, None),
        (AttentionScope::Full, 1, GateStyle::None, true, None),
        (AttentionScope::Full, 2, GateStyle::Unit, false, None),
        (AttentionScope::SelfAndInput, 2, GateStyle::Unit, true, None),
        (
            AttentionScope::SelfAndInput,
            1,
            GateStyle::Memory,
            false,
            Some(2),
        ),
        (AttentionScope::None, 2, GateStyle::Unit, true, None),
        (AttentionScope::None, 1, GateStyle::Memory, true, None),
    ];
    let (b, f) = (3, 5);
    for (attention, num_blocks, gate_style, residual, key_size) in cases {
        let config = RmcConfig {
            input_size: f,
            mem_slots: 3,
            head_size: 4,
            num_heads: 2,
            key_size,
            num_blocks,
            gate_style,
            residual,
            attention,
            forget_bias: 1.0,
            input_bias: -0.5,
            ..RmcConfig::default()
        };
        let case = format!("{config:?}");
        let mut store = ParamStore::new();
        let rmc = RelationalMemory::new(
            &config,
            &mut store,
            "rmc",
            &mut ChaCha8Rng::seed_from_u64(7),
        )
        .expect("a valid configuration");
        // Biases away from zero, so a bias wired to the wrong place shows.
        let ids: Vec<_> = store.ids().collect();
        for (i, id) in ids.into_iter().enumerate() {
            let shape = store.get(id).shape().to_vec();
            let noise = randn(&shape, 100 + i as u64).mapv(|x| 0.1 * x);
            *store.get_mut(id) += &noise;
        }
        let (n, d) = (config.mem_slots, config.mem_width());
        let inputs = [
            randn(&[b, f], 1),
            randn(&[b, f], 2),
            randn(&[b, n, d], 3), // the initial memory
        ];
        let run = |fast: bool| {
            evaluate(&store, &inputs, |g, v| {
                let step = |g: &mut Graph<f64>, x, m| {
                    if fast {
                        rmc.step(g, &store, x, m)
                    } else {
                        reference::rmc_step(g, &store, &rmc, x, m)
                    }
                };
                let s1 = step(g, v[0], v[2]);
                let s2 = step(g, v[1], s1.memory);
                let (mut named, l1) = rmc_named(g, 1, &s1, 10);
                let (named2, l2) = rmc_named(g, 2, &s2, 20);
                named.extend(named2);
                (named, g.add(l1, l2))
            })
        };
        assert_close(&run(true), &run(false), &case);
    }
}

#[test]
fn the_lstm_step_equals_the_reference_step() {
    let (b, f, s) = (3, 4, 5);
    let config = LstmConfig {
        input_size: f,
        hidden_size: s,
        forget_bias: 1.0,
    };
    let mut store = ParamStore::new();
    let cell = LstmCell::new(
        &config,
        &mut store,
        "lstm",
        &mut ChaCha8Rng::seed_from_u64(3),
    )
    .expect("a valid configuration");
    let inputs = [
        randn(&[b, f], 1),
        randn(&[b, f], 2),
        randn(&[b, s], 3), // h0
        randn(&[b, s], 4), // c0
    ];
    let run = |fast: bool| {
        evaluate(&store, &inputs, |g, v| {
            let step = |g: &mut Graph<f64>, x, h, c| {
                if fast {
                    let x_proj = cell.project_input(g, &store, x);
                    cell.step(g, &store, x_proj, h, c)
                } else {
                    reference::lstm_step(g, &store, &cell, x, h, c)
                }
            };
            let (h1, c1) = step(g, v[0], v[2], v[3]);
            let (h2, c2) = step(g, v[1], h1, c1);
            let all = g.concat(&[h1, c1, h2, c2], 1);
            let w = g.constant(randn(&[b, 4 * s], 9));
            let prod = g.mul(all, w);
            let loss = g.sum(prod);
            (vec![("h, c".to_owned(), all)], loss)
        })
    };
    assert_close(&run(true), &run(false), "LSTM");
}

/// The comparison can fail: a reference with the forget bias moved onto the input gate differs.
#[test]
fn a_changed_parameter_makes_the_paths_differ() {
    let config = RmcConfig {
        input_size: 3,
        mem_slots: 2,
        head_size: 2,
        num_heads: 2,
        ..RmcConfig::default()
    };
    let mut store = ParamStore::new();
    let rmc = RelationalMemory::new(
        &config,
        &mut store,
        "rmc",
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .expect("valid");
    let mut shifted = config.clone();
    shifted.forget_bias += 1e-6;
    let mut store2 = ParamStore::new();
    let rmc2 = RelationalMemory::new(
        &shifted,
        &mut store2,
        "rmc",
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .expect("valid");
    let mut g = Graph::new();
    let x = g.input(randn(&[2, 3], 1));
    let m = g.input(randn(&[2, 2, 4], 2));
    let fast = rmc.step(&mut g, &store, x, m).memory;
    let slow = reference::rmc_step(&mut g, &store2, &rmc2, x, m).memory;
    let diff = max_diff(g.value(fast), g.value(slow));
    assert!(
        diff > 1e-9,
        "a forget-bias shift of 1e-6 went unseen ({diff:e})"
    );
}
