//! `rrnn bench`: times one full training step (forward over T steps, cross-entropy on the final
//! logits, backward, Adam at lr 1e-4, f32) of a performance configuration (`perf/README.md`) and
//! prints one JSON line, with the same fields as PyTorch's `bench_torch.py` so the two can be
//! compared line by line (`ms_step` there is `ms_per_step` here, also reported as `ms_step`).
//!
//! Threads (`--threads N`), two ways to use them (`--split`):
//! - `batch` (default): data parallelism. The batch is cut into N row blocks whose forward and
//!   backward passes run on N threads, each on its own tape ([`Trainer::step_sharded`]); the
//!   gradients are combined before one Adam update — the full-batch update up to float rounding
//!   (the gradient sums in a different order).
//! - `gemm`: one tape; each large matrix product (≥ 64 MFLOP) is split by columns over N threads
//!   ([`with_threads`]), and with it the packing, copies and Adam update of parameters over a
//!   million elements; the step does not clip, so the reported gradient norm is summed on a helper
//!   while Adam runs. Same bits as one thread. Pays off for the big LSTM of config A, whose weight
//!   is too large to stream twice.

use std::time::Instant;

use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::experiment::ModelKind;
use relational_rnn::nn::SequenceClassifier;
use relational_rnn::optim::{AdamConfig, OptimizerConfig};
use relational_rnn::perf::PerfConfig;
use relational_rnn::train::Trainer;
use relational_rnn::{ParamStore, with_threads};

/// Adam's learning rate, as in `bench_torch.py`.
const LR: f64 = 1e-4;

/// Arguments of `rrnn bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Performance configuration: A (paper), B (small) or C (project default).
    #[arg(long, value_parser = parse_config)]
    config: PerfConfig,
    /// Model: rmc or lstm.
    #[arg(long, value_parser = parse_model)]
    model: ModelKind,
    /// Threads (1 to 4).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4))]
    threads: u32,
    /// How the threads share a step: `batch` (a block of batch rows per thread) or `gemm` (the
    /// columns of each large matrix product).
    #[arg(long, value_enum, default_value_t = Split::Batch)]
    split: Split,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Seed of the parameters, inputs and labels.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// How `--threads` are used (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// One block of batch rows per thread.
    Batch,
    /// The columns of each large matrix product.
    Gemm,
}

fn parse_config(s: &str) -> Result<PerfConfig, String> {
    s.parse()
        .map_err(|e: relational_rnn::ConfigError| e.to_string())
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    match s.parse() {
        Ok(k @ (ModelKind::Rmc | ModelKind::Lstm)) => Ok(k),
        Ok(other) => Err(format!(
            "no PyTorch reference for `{other}`; use rmc or lstm"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    let threads = args.threads as usize;
    match args.split {
        Split::Batch => measure(args, threads),
        Split::Gemm => with_threads(threads, || measure(args, 1)),
    }
}

/// Times `args.steps` training steps of the configured model, each split into `shards` shards,
/// and prints the JSON line.
fn measure(args: &BenchArgs, shards: usize) -> Result<(), String> {
    let cfg = args.config;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut store = ParamStore::<f32>::new();
    let model = SequenceClassifier::new(&cfg.classifier(args.model), &mut store, &mut rng)
        .map_err(|e| e.to_string())?;
    let batch = cfg.random_batch(args.seed);
    let optimizer = OptimizerConfig::Adam(AdamConfig {
        lr: LR,
        ..AdamConfig::default()
    });
    let mut trainer = Trainer::new(&store, &optimizer).map_err(|e| e.to_string())?;
    for _ in 0..args.warmup {
        trainer.step_sharded(&model, &mut store, &batch, LR, None, shards);
    }
    let mut times: Vec<f64> = (0..args.steps)
        .map(|_| {
            let t0 = Instant::now();
            trainer.step_sharded(&model, &mut store, &batch, LR, None, shards);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = median(&times);
    let gflop = cfg
        .gflop_per_step(args.model)
        .expect("rmc and lstm are timed");
    let line = serde_json::json!({
        "config": cfg.to_string(),
        "batch": cfg.batch_size(),
        "model": args.model.name(),
        "threads": args.threads,
        "split": args.split.to_possible_value().expect("no skipped variants").get_name(),
        "ms_per_step": round3(ms),
        "ms_step": round3(ms),
        "ms_p10": round3(quantile(0.1)),
        "ms_p90": round3(quantile(0.9)),
        "steps": args.steps,
        "gflop": (gflop * 1e4).round() / 1e4,
        "gflops": (gflop / ms * 1e4).round() / 10.0,
        "params": store.num_scalars(),
    });
    println!("{line}");
    Ok(())
}

/// Median of sorted, non-empty `times`.
fn median(times: &[f64]) -> f64 {
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
