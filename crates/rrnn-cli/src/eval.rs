//! `rrnn eval`: loss and accuracy of a checkpoint on the fixed validation, test or hard split, as
//! one JSON line. The checkpoint's `experiment` metadata (written by `rrnn train`) says which network and
//! which data; the parameters are matched by name and shape.
//!
//! A checkpoint is untrusted input. Before anything is allocated for it, the file must fit in
//! memory, its metadata must be a valid experiment whose network has no more parameters than the
//! file holds, and the evaluation's estimate must fit; then every parameter must be present, of
//! the configured shape and finite, and the file may hold no other tensor (besides the
//! optimiser's buffers, `optim.*`). Tensors of the configured shapes are accepted as they are:
//! some changes of configuration keep every shape (`num_heads` with `head_size` = D / H), and
//! those cannot be told from the weights.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use relational_rnn::checkpoint;
use relational_rnn::experiment::{Experiment, eval_batches};
use relational_rnn::memory::parameter_count;
use relational_rnn::train::evaluate;
use serde_json::json;

use crate::limits::check_memory;

/// Prefix of the optimiser buffers `rrnn train` keeps in `last.safetensors`.
const OPTIM_PREFIX: &str = "optim.";

/// Which fixed evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalSplit {
    /// The validation split (same distribution as training; where choices are made).
    Val,
    /// The test split (same distribution as training; scored once at the end).
    Test,
    /// The harder held-out split.
    Hard,
}

/// Arguments of `rrnn eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint written by `rrnn train` (best.safetensors or last.safetensors).
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Which split to score.
    #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
    split: EvalSplit,
}

/// Runs `rrnn eval`.
pub fn run(args: &EvalArgs) -> Result<(), String> {
    let path = &args.checkpoint;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    // Read whole, then widened to f64: about three times the file.
    let reading = format!("its bytes and tensors ({})", crate::limits::human(size));
    check_memory(
        &[(reading, size.saturating_mul(3))],
        "reading the checkpoint",
    )?;
    let (tensors, metadata) = checkpoint::read(path).map_err(|e| e.to_string())?;
    let experiment: Experiment = metadata
        .get("experiment")
        .ok_or_else(|| {
            format!(
                "{}: no `experiment` metadata (not written by rrnn train)",
                path.display()
            )
        })
        .and_then(|s| {
            serde_json::from_str(s)
                .map_err(|e| format!("{}: bad `experiment`: {e}", path.display()))
        })?;
    let estimate = experiment
        .memory_estimate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let stored: u64 = tensors
        .iter()
        .filter(|(name, _)| !name.starts_with(OPTIM_PREFIX))
        .map(|(_, t)| t.len() as u64)
        .sum();
    let described = parameter_count(&experiment.model);
    if described > stored {
        return Err(format!(
            "{}: its `experiment` metadata describes a network of {described} parameters, the \
             file holds {stored} (not the network that was trained)",
            path.display()
        ));
    }
    check_memory(&estimate.evaluation, "evaluating this checkpoint")?;
    let (model, mut store) = experiment.init().map_err(|e| e.to_string())?;
    checkpoint::load_into(&mut store, &tensors, path).map_err(|e| e.to_string())?;
    checkpoint::check_no_extra(&store, &tensors, &[OPTIM_PREFIX], path)
        .map_err(|e| e.to_string())?;
    let sets = experiment.eval_sets().map_err(|e| e.to_string())?;
    let data = match args.split {
        EvalSplit::Val => sets.val,
        EvalSplit::Test => sets.test,
        EvalSplit::Hard => sets.hard,
    };
    let stats = evaluate(&model, &store, &eval_batches(&data));
    let task = experiment.task.build().map_err(|e| e.to_string())?;
    let baselines = task.baselines();
    let heuristics: serde_json::Map<String, serde_json::Value> = task
        .heuristics(&data)
        .into_iter()
        .map(|h| (h.name.to_owned(), json!(h.accuracy)))
        .collect();
    let step: Option<u64> = metadata.get("step").and_then(|s| s.parse().ok());
    let split = match args.split {
        EvalSplit::Val => "val",
        EvalSplit::Test => "test",
        EvalSplit::Hard => "hard",
    };
    println!(
        "{}",
        json!({
            "checkpoint": path.display().to_string(),
            "step": step,
            "split": split,
            "accuracy": stats.accuracy,
            "loss": stats.loss,
            "count": stats.count,
            "chance": baselines.chance,
            "plateau": baselines.plateau,
            "plateau_loss": baselines.plateau_loss,
            "heuristics": heuristics,
        })
    );
    Ok(())
}
