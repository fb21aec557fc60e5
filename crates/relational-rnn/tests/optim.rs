//! Optimisers end to end: resuming from saved state is bit-exact, state is updated in place, and
//! Adam, SGD and a schedule together actually minimise something.

use ndarray::{ArrayD, IxDyn, arr1, arr2};
use relational_rnn::optim::{
    Adam, AdamConfig, AdamState, LrSchedule, Sgd, SgdConfig, SgdState, clip_global_norm,
};
use relational_rnn::{Grads, Optimizer, ParamStore};

/// Two parameters of distinct shapes, `a: [2, 3]` and `b: [2]`.
fn store() -> ParamStore<f64> {
    let mut s = ParamStore::new();
    s.add("a", arr2(&[[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]]).into_dyn());
    s.add("b", arr1(&[3.0, -4.0]).into_dyn());
    s
}

/// The gradient of the quadratic f(p) = ½ Σ c_i p_i² with c_i = 1 + i (an ill-conditioned bowl
/// whose minimum is p = 0): g_i = c_i p_i.
fn quadratic_grad(store: &ParamStore<f64>, grads: &mut Grads<f64>) {
    for (id, _, p) in store.iter() {
        let g = grads.get_mut(id);
        for (i, (g, &p)) in g.iter_mut().zip(p.iter()).enumerate() {
            *g = (1.0 + i as f64) * p;
        }
    }
}

fn max_abs(store: &ParamStore<f64>) -> f64 {
    store
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.abs()))
        .fold(0.0, f64::max)
}

fn bits(store: &ParamStore<f64>) -> Vec<u64> {
    store
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.to_bits()))
        .collect()
}

/// Runs `steps` steps of `opt` on the quadratic with a warm-up schedule and clipping.
fn train(opt: &mut impl Optimizer<f64>, store: &mut ParamStore<f64>, steps: u64, base_lr: f64) {
    let schedule = LrSchedule::WarmupCosine {
        warmup_steps: 3,
        total_steps: 40,
        min_lr_ratio: 0.1,
    };
    let mut grads = store.zeros_like();
    for _ in 0..steps {
        quadratic_grad(store, &mut grads);
        clip_global_norm(&mut grads, 2.0);
        let lr = schedule.lr_at(opt.steps_taken(), base_lr);
        opt.step(store, &grads, lr);
    }
}

#[test]
fn adam_resumed_from_saved_state_is_bit_identical() {
    let config = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let mut uninterrupted = store();
    let mut opt = Adam::new(config.clone()).unwrap();
    train(&mut opt, &mut uninterrupted, 20, 0.05);

    let mut resumed = store();
    let mut first = Adam::new(config.clone()).unwrap();
    train(&mut first, &mut resumed, 8, 0.05);
    // What a checkpoint keeps: parameters, config, and the state arrays copied out one by one.
    let saved = first.state().unwrap();
    let mut m = resumed.zeros_like();
    let mut v = resumed.zeros_like();
    for id in resumed.ids() {
        m.get_mut(id).assign(saved.m.get(id));
        v.get_mut(id).assign(saved.v.get(id));
    }
    let state = AdamState {
        step: saved.step,
        m,
        v,
    };
    drop(first);
    let mut second = Adam::from_state(config, state).unwrap();
    assert_eq!(second.steps_taken(), 8);
    train(&mut second, &mut resumed, 12, 0.05);

    assert_eq!(second.steps_taken(), 20);
    assert_eq!(bits(&resumed), bits(&uninterrupted));
    assert_eq!(second.state(), opt.state());
}

#[test]
fn sgd_resumed_from_saved_state_is_bit_identical() {
    let config = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::default()
    };
    let mut uninterrupted = store();
    let mut opt = Sgd::new(config.clone()).unwrap();
    train(&mut opt, &mut uninterrupted, 15, 0.1);

    let mut resumed = store();
    let mut first = Sgd::new(config.clone()).unwrap();
    train(&mut first, &mut resumed, 6, 0.1);
    let SgdState {
        steps,
        momentum_buffer,
    } = first.state().clone();
    let mut second = Sgd::from_state(
        config,
        SgdState {
            steps,
            momentum_buffer,
        },
    )
    .unwrap();
    train(&mut second, &mut resumed, 9, 0.1);
    assert_eq!(bits(&resumed), bits(&uninterrupted));
}

#[test]
fn adam_minimises_a_quadratic_to_near_zero() {
    let mut s = store();
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    let mut grads = s.zeros_like();
    let schedule = LrSchedule::Exponential { gamma: 0.995 };
    for _ in 0..2000 {
        quadratic_grad(&s, &mut grads);
        opt.step(&mut s, &grads, schedule.lr_at(opt.steps_taken(), 0.1));
    }
    assert!(max_abs(&s) < 1e-3, "max |p| = {}", max_abs(&s));
}

#[test]
fn sgd_with_momentum_minimises_a_quadratic() {
    let mut s = store();
    let mut opt = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    })
    .unwrap();
    let mut grads = s.zeros_like();
    for _ in 0..500 {
        quadratic_grad(&s, &mut grads);
        opt.step(&mut s, &grads, 0.05);
    }
    assert!(max_abs(&s) < 1e-6, "max |p| = {}", max_abs(&s));
}

#[test]
fn adam_state_is_updated_in_place_after_the_first_step() {
    let mut s = store();
    s.add("c", ArrayD::zeros(IxDyn(&[4, 1, 2])));
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    let mut grads = s.zeros_like();
    quadratic_grad(&s, &mut grads);
    opt.step(&mut s, &grads, 1e-2);
    let pointers = |opt: &Adam<f64>, s: &ParamStore<f64>| -> Vec<*const f64> {
        let st = opt.state().unwrap();
        s.ids()
            .flat_map(|id| {
                [
                    st.m.get(id).as_ptr(),
                    st.v.get(id).as_ptr(),
                    s.get(id).as_ptr(),
                ]
            })
            .collect()
    };
    let before = pointers(&opt, &s);
    for _ in 0..5 {
        quadratic_grad(&s, &mut grads);
        opt.step(&mut s, &grads, 1e-2);
    }
    assert_eq!(pointers(&opt, &s), before);
    assert_eq!(
        opt.state().unwrap().m.get(s.id("c").unwrap()).shape(),
        &[4, 1, 2]
    );
}

#[test]
fn adam_runs_in_f32() {
    let mut s = store().cast::<f32>();
    let mut opt = Adam::<f32>::new(AdamConfig::default()).unwrap();
    let mut grads = s.zeros_like();
    for _ in 0..1500 {
        for (id, _, p) in s.iter() {
            grads.get_mut(id).assign(p);
        }
        opt.step(&mut s, &grads, 0.05);
    }
    let worst = s
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-2, "max |p| = {worst}");
}
