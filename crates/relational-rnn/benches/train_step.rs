//! Criterion benchmarks: one f32 training step of the perf configs (as `rrnn bench`), and the
//! main tape ops forward + backward at the shapes config C gives them.
//!
//! ```sh
//! cargo bench -p relational-rnn --bench train_step
//! cargo bench -p relational-rnn --bench train_step -- 'step/C'   # a subset
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relational_rnn::experiment::ModelKind;
use relational_rnn::nn::SequenceClassifier;
use relational_rnn::optim::{AdamConfig, OptimizerConfig};
use relational_rnn::perf::PerfConfig;
use relational_rnn::train::Trainer;
use relational_rnn::{Graph, ParamStore, Var};

fn train_steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    group.sample_size(20);
    for config in [PerfConfig::B, PerfConfig::C] {
        for kind in [ModelKind::Rmc, ModelKind::Lstm] {
            let mut store = ParamStore::<f32>::new();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let model = SequenceClassifier::new(&config.classifier(kind), &mut store, &mut rng)
                .expect("valid perf config");
            let batch = config.random_batch(0);
            let adam = OptimizerConfig::Adam(AdamConfig {
                lr: 1e-4,
                ..AdamConfig::default()
            });
            let mut trainer = Trainer::new(&store, &adam).expect("valid");
            group.bench_function(format!("{config}/{kind:?}"), |b| {
                b.iter(|| trainer.step(&model, &mut store, &batch, 1e-4, None))
            });
        }
    }
    group.finish();
}

fn uniform(shape: &[usize], rng: &mut ChaCha8Rng) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0..1.0))
}

/// Times `op` forward and backward on a reused tape, inputs `shapes` (all requiring gradients).
fn bench_op(
    c: &mut Criterion,
    name: &str,
    shapes: &[&[usize]],
    op: impl Fn(&mut Graph<f32>, &[Var]) -> Var,
) {
    bench_op_cold(c, name, 1, shapes, op);
}

/// [`bench_op`] with `copies` copies of the op on one tape, each on its own inputs, all forward
/// and then one backward through all: each copy's backward reads values written long before,
/// evicted from L2 by the others, as the T steps of a recurrent model do (one copy, as
/// `bench_op` runs, keeps everything hot). Times all copies.
fn bench_op_cold(
    c: &mut Criterion,
    name: &str,
    copies: usize,
    shapes: &[&[usize]],
    op: impl Fn(&mut Graph<f32>, &[Var]) -> Var,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let values: Vec<Vec<ArrayD<f32>>> = (0..copies)
        .map(|_| shapes.iter().map(|s| uniform(s, &mut rng)).collect())
        .collect();
    let mut g = Graph::<f32>::new();
    c.bench_function(name, |b| {
        b.iter(|| {
            g.clear();
            let sums: Vec<Var> = values
                .iter()
                .map(|copy| {
                    let inputs: Vec<Var> = copy.iter().map(|v| g.input(v.clone())).collect();
                    let out = op(&mut g, &inputs);
                    g.sum(out)
                })
                .collect();
            let loss = sums[1..].iter().fold(sums[0], |s, &x| g.add(s, x));
            g.backward(loss);
            black_box(g.scalar(loss))
        })
    });
}

/// Config C's shapes: batch 128, R = N + 1 = 5 rows, D = 64, H = 4 heads of K = V = 16, LSTM S 128.
fn ops(c: &mut Criterion) {
    let (b, r, d) = (128, 5, 64);
    bench_op(
        c,
        "op/linear [640,64]x[64,192]",
        &[&[b, r, d], &[d, 192], &[192]],
        |g, v| g.linear(v[0], v[1], Some(v[2])),
    );
    bench_op(
        c,
        "op/packed_attention [128,5,192] H4",
        &[&[b, r, 192]],
        |g, v| g.packed_attention(v[0], 4, 16).0,
    );
    bench_op_cold(
        c,
        "op/linear [640,64]x[64,192], 16 copies on one tape",
        16,
        &[&[b, r, d], &[d, 192], &[192]],
        |g, v| g.linear(v[0], v[1], Some(v[2])),
    );
    bench_op_cold(
        c,
        "op/packed_attention [128,5,192] H4, 16 copies on one tape",
        16,
        &[&[b, r, 192]],
        |g, v| g.packed_attention(v[0], 4, 16).0,
    );
    bench_op(
        c,
        "op/layer_norm [128,5,192]",
        &[&[b, r, 192], &[192], &[192]],
        |g, v| g.layer_norm(v[0], v[1], v[2], 1e-5),
    );
    bench_op(
        c,
        "op/lstm_cell [128,512]",
        &[&[128, 512], &[128, 128]],
        |g, v| g.lstm_cell(v[0], v[1]).0,
    );
    bench_op(
        c,
        "op/rmc_gates+rmc_gated_update [128,4,64]",
        &[&[b, 4, 2 * d], &[b, 2 * d], &[b, 4, d], &[b, 4, d]],
        |g, v| {
            let gates = g.rmc_gates(v[0], v[1], 0.0, 1.0);
            g.rmc_gated_update(gates, v[2], v[3])
        },
    );
    bench_op(c, "op/tanh [128,4,64]", &[&[b, 4, d]], |g, v| g.tanh(v[0]));
}

criterion_group!(benches, train_steps, ops);
criterion_main!(benches);
