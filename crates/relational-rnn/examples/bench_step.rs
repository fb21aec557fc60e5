use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relational_rnn::ParamStore;
use relational_rnn::nn::*;
use relational_rnn::optim::*;
use relational_rnn::tasks::Batch;
use relational_rnn::train::Trainer;
use std::time::Instant;

fn main() {
    let which = std::env::args().nth(1).unwrap_or("rmc".into());
    let (f, t, b) = (40, 8, 128);
    let core = if which == "rmc" {
        CoreConfig::Rmc(RmcConfig {
            input_size: f,
            mem_slots: 4,
            num_heads: 4,
            head_size: 16,
            ..RmcConfig::default()
        })
    } else {
        CoreConfig::Lstm(LstmConfig {
            input_size: f,
            hidden_size: 128,
            forget_bias: 1.0,
        })
    };
    let cfg = ClassifierConfig {
        core,
        head_hidden: vec![128, 128],
        num_classes: 8,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::<f32>::new();
    let model = SequenceClassifier::new(&cfg, &mut store, &mut rng).unwrap();
    let inputs = Array3::from_shape_simple_fn((t, b, f), || rng.random_range(-1.0..1.0f32));
    let mut targets = Array2::zeros((t, b));
    let mut mask = Array2::from_elem((t, b), false);
    for j in 0..b {
        targets[[t - 1, j]] = rng.random_range(0..8);
        mask[[t - 1, j]] = true;
    }
    let batch = Batch::new(inputs, targets, mask);
    let mut trainer = Trainer::new(
        &store,
        &OptimizerConfig::Adam(AdamConfig {
            lr: 1e-4,
            ..Default::default()
        }),
    )
    .unwrap();
    for _ in 0..5 {
        trainer.step(&model, &mut store, &batch, 1e-4, None);
    }
    let mut times = vec![];
    for _ in 0..30 {
        let t0 = Instant::now();
        trainer.step(&model, &mut store, &batch, 1e-4, None);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{which}: median {:.2} ms/step, params {}",
        times[15],
        store.num_scalars()
    );
}
