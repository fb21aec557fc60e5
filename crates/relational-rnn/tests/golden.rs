//! The Relational Memory Core against PyTorch/Sonnet reference values (float64).
//!
//! Every `*.safetensors` in `tests/data/golden/` is discovered; the model is built from the
//! configuration in the file's metadata, its parameters are loaded from the file, and the forward
//! trace (x̂, attention of every block, M̃, gates, memories, outputs) and every gradient of
//! `loss = Σ final_memory ⊙ R` (parameters, inputs, initial memory) must match to 1e-9.
//! Adding a reference file needs no code change. See `tests/data/golden/README.md`.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::checkpoint::{self, Tensors};
use relational_rnn::nn::{RelationalMemory, RmcConfig};
use relational_rnn::{Graph, ParamStore, Var};

const TOL: f64 = 1e-9;

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    files
}

fn config_from_metadata(json: &str) -> RmcConfig {
    RmcConfig::from_json(json).expect("the metadata holds a valid RmcConfig")
}

/// Largest |a − b|, after checking the shapes agree.
#[track_caller]
fn max_diff(what: &str, ours: &ArrayD<f64>, reference: &ArrayD<f64>) -> f64 {
    assert_eq!(ours.shape(), reference.shape(), "{what}: shape");
    ours.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// The core of `config` with freshly initialised parameters (the caller loads the reference's).
fn build(config: &RmcConfig) -> (RelationalMemory, ParamStore<f64>) {
    let mut store = ParamStore::<f64>::new();
    let rmc = RelationalMemory::new(config, &mut store, "rmc", &mut ChaCha8Rng::seed_from_u64(0))
        .expect("valid config");
    (rmc, store)
}

struct Checker<'a> {
    file: &'a Path,
    reference: &'a Tensors,
    worst: (f64, String),
    compared: usize,
}

impl Checker<'_> {
    #[track_caller]
    fn compare(&mut self, name: &str, ours: &ArrayD<f64>) {
        let reference = self
            .reference
            .get(name)
            .unwrap_or_else(|| panic!("{}: no tensor {name}", self.file.display()));
        let d = max_diff(name, ours, reference);
        assert!(
            d <= TOL,
            "{}: {name} differs from the reference by {d:.3e} (> {TOL:e})",
            self.file.display()
        );
        self.compared += 1;
        if d >= self.worst.0 {
            self.worst = (d, name.to_owned());
        }
    }

    /// Stacks per-step values of `vars` along a new leading axis and compares with `name`.
    #[track_caller]
    fn compare_steps(&mut self, name: &str, g: &Graph<f64>, vars: &[Var]) {
        let views: Vec<_> = vars.iter().map(|&v| g.value(v).view()).collect();
        let stacked = ndarray::stack(ndarray::Axis(0), &views).expect("equal shapes");
        self.compare(name, &stacked);
    }
}

fn check_file(file: &Path) -> (f64, String, usize) {
    let (reference, meta) = checkpoint::read(file).expect("golden file reads");
    let config = config_from_metadata(&meta["config"]);
    assert_eq!(
        meta["layer_norm_eps"], "1e-5",
        "the crate's LayerNorm eps is 1e-5"
    );

    let (rmc, mut store) = build(&config);
    // The file must hold exactly our parameters: no more (a tensor we never build) and no less.
    let file_params: Vec<&String> = reference.keys().filter(|k| k.starts_with("rmc.")).collect();
    let ours: Vec<&str> = store.iter().map(|(_, n, _)| n).collect();
    assert_eq!(
        file_params.len(),
        ours.len(),
        "{}: parameter sets differ: {file_params:?} vs {ours:?}",
        file.display()
    );
    checkpoint::load_into(&mut store, &reference, file).expect("every parameter present");

    let mut g = Graph::<f64>::new();
    let inputs = g.input(reference["inputs"].clone()); // [T, B, F]
    let m0 = g.input(reference["initial_memory"].clone()); // [B, N, D]
    let mut c = Checker {
        file,
        reference: &reference,
        worst: (0.0, String::new()),
        compared: 0,
    };
    c.compare(
        "initial_memory",
        &rmc.initial_memory::<f64>(reference["inputs"].shape()[1])
            .into_dyn(),
    );

    let steps = rmc.unroll_from(&mut g, &store, inputs, m0);
    let r = g.constant(reference["R"].clone());
    let final_memory = steps.last().expect("T ≥ 1").memory;
    let weighted = g.mul(final_memory, r);
    let loss = g.sum(weighted);
    g.backward(loss);

    // Forward, in the order of the computation.
    let x_hats: Vec<Var> = steps.iter().map(|s| s.x_hat).collect();
    c.compare_steps("trace.x_hat", &g, &x_hats);
    for b in 0..config.num_blocks {
        let att: Vec<Var> = steps.iter().map(|s| s.attention[b]).collect();
        c.compare_steps(&format!("trace.block{b}.attention"), &g, &att);
    }
    let m_tilde: Vec<Var> = steps.iter().map(|s| s.m_tilde).collect();
    c.compare_steps("trace.m_tilde", &g, &m_tilde);
    if reference.contains_key("trace.input_gate") {
        let gw = config.gate_width();
        let (i, f): (Vec<Var>, Vec<Var>) = steps
            .iter()
            .map(|s| {
                let gates = s.gates.expect("gated"); // [B, N, 2G]
                (g.slice(gates, 2, 0, gw), g.slice(gates, 2, gw, 2 * gw))
            })
            .unzip();
        c.compare_steps("trace.input_gate", &g, &i);
        c.compare_steps("trace.forget_gate", &g, &f);
    } else {
        assert!(
            steps.iter().all(|s| s.gates.is_none()),
            "ungated reference, gated model"
        );
    }
    let memories: Vec<Var> = steps.iter().map(|s| s.memory).collect();
    c.compare_steps("memories", &g, &memories);
    let outputs: Vec<Var> = steps.iter().map(|s| s.output).collect();
    c.compare_steps("outputs", &g, &outputs);
    c.compare("final_memory", g.value(final_memory));
    c.compare(
        "loss",
        &ArrayD::from_elem(ndarray::IxDyn(&[1]), g.scalar(loss)),
    );

    // Backward through all T steps.
    let grads = g.param_grads(&store);
    for (id, name, _) in store.iter() {
        c.compare(&format!("grad.{name}"), grads.get(id));
    }
    c.compare(
        "grad.inputs",
        g.grad(inputs).expect("inputs get a gradient"),
    );
    c.compare(
        "grad.initial_memory",
        g.grad(m0).expect("memory gets a gradient"),
    );
    (c.worst.0, c.worst.1, c.compared)
}

#[test]
fn every_golden_file_matches_forward_and_gradients() {
    let files = golden_files();
    assert!(
        files.len() >= 5,
        "expected the 5 reference files, found {files:?}"
    );
    for file in &files {
        let (worst, name, compared) = check_file(file);
        println!(
            "{}: {compared} tensors within {TOL:e}; largest deviation {worst:.2e} ({name})",
            file.file_name().expect("file name").to_string_lossy()
        );
    }
}

#[test]
fn a_perturbed_parameter_is_detected() {
    // The comparison must be able to fail: nudge one weight by 1e-6 and the forward moves.
    let file = &golden_files()[0];
    let (mut reference, meta) = checkpoint::read(file).expect("reads");
    let config = config_from_metadata(&meta["config"]);
    let w = reference.get_mut("rmc.block0.qkv.weight").expect("present");
    w[[0, 0]] += 1e-6;
    let (rmc, mut store) = build(&config);
    checkpoint::load_into(&mut store, &reference, file).expect("loads");
    let mut g = Graph::<f64>::new();
    let inputs = g.constant(reference["inputs"].clone());
    let m0 = g.constant(reference["initial_memory"].clone());
    let steps = rmc.unroll_from(&mut g, &store, inputs, m0);
    let d = max_diff(
        "final_memory",
        g.value(steps.last().expect("T ≥ 1").memory),
        &reference["final_memory"],
    );
    assert!(
        d > TOL,
        "a 1e-6 weight change went unnoticed (max diff {d:.3e})"
    );
}
