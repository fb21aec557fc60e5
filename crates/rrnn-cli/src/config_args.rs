//! The options that define a run's configuration, shared by `train` and `sweep`.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::overrides::{Sources, float_to_json, parse_set};

/// Task, model, config file, `--set` overrides and the common shortcuts.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The task: nth-farthest, sorting, tracking, pairs, babi-qa1, babi-qa2 or babi-qa3.
    #[arg(long)]
    pub task: Option<String>,
    /// The model: lstm, rmc or rrnn-cell.
    #[arg(long)]
    pub model: Option<String>,
    /// A TOML (or JSON) file with any part of the configuration (`[train]`, `[model.core]`, …).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one value by dotted path (`model.core.mem_slots=8`, `train.optimizer.lr=3e-4`,
    /// `task.num_vectors=4`) or short key (steps, batch, lr, seed, eval_every, test_size,
    /// data_seed, slots, heads, head_size, hidden); repeatable, later wins.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, Value)>,
    /// Training steps (train.steps).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size (train.batch_size).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Base learning rate (train.optimizer.lr).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seed of initialisation and training batches (train.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Train a bAbI task on the real files in DIR (`qaN_*_train.txt`; `qaN_*_test.txt` if
    /// present): sets task.data_dir to its absolute path and task.vocabulary to english unless
    /// given.
    #[arg(long, value_name = "DIR")]
    pub babi_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// The configuration sources, flags last (they win over `--set`).
    pub fn sources(&self) -> Sources<'_> {
        let mut sets = self.sets.clone();
        let flags = [
            ("steps", self.steps.map(Value::from)),
            ("batch", self.batch.map(Value::from)),
            ("lr", self.lr.map(float_to_json)),
            ("seed", self.seed.map(Value::from)),
        ];
        sets.extend(
            flags
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))),
        );
        Sources {
            file: self.config.as_deref(),
            sets,
            task: self.task.as_deref(),
            model: self.model.as_deref(),
            babi_dir: self.babi_dir.as_deref(),
        }
    }

    /// Whether any option besides `--steps` was given (not allowed with `--resume`).
    pub fn any_besides_steps(&self) -> bool {
        self.task.is_some()
            || self.model.is_some()
            || self.config.is_some()
            || !self.sets.is_empty()
            || self.batch.is_some()
            || self.lr.is_some()
            || self.seed.is_some()
            || self.babi_dir.is_some()
    }

    /// The options as command-line arguments, without `--seed` (a sweep sets it per job).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                args.extend([flag.to_owned(), v]);
            }
        };
        push("--task", self.task.clone());
        push("--model", self.model.clone());
        push(
            "--config",
            self.config.as_ref().map(|p| p.display().to_string()),
        );
        for (key, value) in &self.sets {
            let value = match value {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            push("--set", Some(format!("{key}={value}")));
        }
        push("--steps", self.steps.map(|v| v.to_string()));
        push("--batch", self.batch.map(|v| v.to_string()));
        push("--lr", self.lr.map(|v| v.to_string()));
        push(
            "--babi-dir",
            self.babi_dir.as_ref().map(|p| p.display().to_string()),
        );
        args
    }
}
