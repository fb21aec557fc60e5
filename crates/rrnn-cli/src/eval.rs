//! `rrnn eval`: loss and accuracy of a checkpoint on the fixed validation, test or hard split, as
//! one JSON line. The checkpoint's `experiment` metadata (written by `rrnn train`) says which network and
//! which data; the parameters are matched by name and shape.
//!
//! `--babi-file F` scores a checkpoint of a bAbI task on any file in the bAbI format instead
//! (every question of F, with the checkpoint's vocabulary; its training data need not be
//! present). A file named `qaN_…` must be of the checkpoint's task N; a word outside the
//! vocabulary or an answer outside its locations is an error naming file, line and word.
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
use relational_rnn::ParamStore;
use relational_rnn::checkpoint;
use relational_rnn::experiment::{Experiment, eval_batches};
use relational_rnn::memory::parameter_count;
use relational_rnn::nn::SequenceClassifier;
use relational_rnn::tasks::babi::{BabiConfig, BabiFile, file_task_number, location_rules};
use relational_rnn::tasks::{Split, TaskConfig};
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
    /// Score a bAbI checkpoint on every question of this file (bAbI text format) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "split")]
    babi_file: Option<PathBuf>,
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
    let mut experiment: Experiment = metadata
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
    if args.babi_file.is_some() {
        // The file replaces the checkpoint's data: its training files need not be here.
        match &mut experiment.task {
            TaskConfig::Babi(config) => config.data_dir = None,
            other => {
                return Err(format!(
                    "--babi-file needs a checkpoint of a bAbI task; {} was trained on {}",
                    path.display(),
                    other.kind()
                ));
            }
        }
    }
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
    let step: Option<u64> = metadata.get("step").and_then(|s| s.parse().ok());
    if let (Some(file), TaskConfig::Babi(config)) = (&args.babi_file, &experiment.task) {
        let scored = score_babi_file(config, &model, &store, file)?;
        let mut line = json!({
            "checkpoint": path.display().to_string(),
            "step": step,
        });
        line.as_object_mut()
            .expect("an object")
            .extend(scored.as_object().expect("an object").clone());
        println!("{line}");
        return Ok(());
    }
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

/// Scores `model` on every question of the bAbI `file`: the JSON fields `file`, `task`,
/// `questions`, `accuracy`, `loss`, `chance` and the location `heuristics`.
fn score_babi_file(
    config: &BabiConfig,
    model: &SequenceClassifier,
    store: &ParamStore<f32>,
    file: &std::path::Path,
) -> Result<serde_json::Value, String> {
    if let Some(n) = file_task_number(file)
        && n != config.kind.number()
    {
        return Err(format!(
            "{} is a file of bAbI task {n}; the checkpoint was trained on {}",
            file.display(),
            config.kind
        ));
    }
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    // The text, its parsed stories and their lines: a few times the file.
    let reading = format!("the file and its stories ({})", crate::limits::human(size));
    check_memory(
        &[(reading, size.saturating_mul(4))],
        "reading the bAbI file",
    )?;
    let babi = BabiFile::read(file, config.vocabulary).map_err(|e| e.to_string())?;
    let f = config.vocabulary.words().len() as u64 + 1;
    let set_bytes = (babi.num_questions() as u64)
        .saturating_mul(babi.steps() as u64)
        .saturating_mul(8 * f + 80);
    let encoding = format!(
        "{} questions of up to {} steps",
        babi.num_questions(),
        babi.steps()
    );
    check_memory(&[(encoding, set_bytes)], "encoding the bAbI file")?;
    let data = babi.dataset(Split::Test, config.vocabulary);
    let stats = evaluate(model, store, &eval_batches(&data));
    let answers = relational_rnn::tasks::babi::generated_answers();
    let heuristics: serde_json::Map<String, serde_json::Value> =
        location_rules(config.kind, &data, &answers)
            .into_iter()
            .map(|h| (h.name.to_owned(), json!(h.accuracy)))
            .collect();
    Ok(json!({
        "file": file.display().to_string(),
        "task": config.kind.name(),
        "questions": babi.num_questions(),
        "accuracy": stats.accuracy,
        "loss": stats.loss,
        "chance": 1.0 / answers.len() as f64,
        "heuristics": heuristics,
    }))
}
