//! A run directory and its files.
//!
//! ```text
//! config.json         the resolved experiment, rrnn version, git commit, threads (written last
//!                     when a run starts: a directory without it is not a run)
//! metrics.jsonl       one EvalRecord per evaluation
//! last.safetensors    parameters + optimiser buffers (`optim.m.<name>`, `optim.v.<name>`,
//!                     `optim.momentum.<name>`) + metadata: step, optimizer_steps, progress
//!                     (accumulators, early-stopping state), best, experiment
//! best.safetensors    parameters at the best validation accuracy so far + step, val_accuracy,
//!                     experiment
//! result.json         written when the run finishes (completed or early-stopped): the
//!                     validation-best parameters scored once on the test and hard sets
//! ```
//!
//! Every file except metrics.jsonl is replaced atomically (temporary file + rename).
//! metrics.jsonl is appended to before the checkpoint of the same step is written; resuming cuts
//! it back to the checkpoint's step, so a kill between the two never duplicates a line. The batch
//! RNG has no state to save: step `s` draws from `step_rng(seed, s)`, so the step number is the
//! RNG state.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use relational_rnn::checkpoint::{self, Metadata, Tensors};
use relational_rnn::experiment::Experiment;
use relational_rnn::optim::Optimizer;
use relational_rnn::train::{EvalRecord, Progress};
use relational_rnn::{Grads, ParamStore};
use serde::{Deserialize, Serialize};

/// The files a run writes (removed by `--force` and by clean-up after an early error).
const RUN_FILES: [&str; 5] = [
    "config.json",
    "metrics.jsonl",
    "last.safetensors",
    "best.safetensors",
    "result.json",
];

/// Prefix of optimiser buffers in `last.safetensors`.
const OPTIM_PREFIX: &str = "optim.";

/// `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Version of `rrnn` that started the run.
    pub rrnn_version: String,
    /// Git commit it was built from (`null` outside a checkout).
    pub git_commit: Option<String>,
    /// `--threads` (large products and Adam updates; the results do not depend on it).
    pub threads: usize,
    /// The resolved experiment.
    pub experiment: Experiment,
}

impl RunConfig {
    /// The configuration of a run started now by this binary.
    pub fn new(experiment: Experiment, threads: usize) -> Self {
        let commit = env!("RRNN_GIT_COMMIT");
        Self {
            rrnn_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: (!commit.is_empty()).then(|| commit.to_owned()),
            threads,
            experiment,
        }
    }
}

/// Best validation accuracy so far and its step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Step of the evaluation.
    pub step: u64,
    /// Its validation accuracy.
    pub val_accuracy: f64,
}

/// What `last.safetensors` restores besides the parameters.
pub struct Resumed {
    /// Counters, accumulators, early-stopping state.
    pub progress: Progress,
    /// The optimiser, with its buffers.
    pub optimizer: Box<dyn Optimizer<f32> + Send>,
    /// Best evaluation so far.
    pub best: Option<Best>,
}

/// A run directory.
pub struct RunDir {
    path: PathBuf,
    created: bool,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Reads `dir/name` as JSON; when the file cannot be read, the error says `dir` is not a `kind`
/// directory (a run's `config.json`, a sweep's `sweep.json`).
pub fn read_dir_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    kind: &str,
) -> Result<T, String> {
    let file = dir.join(name);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "{} is not a {kind} directory (cannot read {name}: {e})",
            dir.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| io_err(&file, e))
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

impl RunDir {
    /// Prepares `path` for a new run: creates it, or accepts it when empty; a non-empty
    /// directory is refused unless `force`, which removes the run files in it (and nothing else).
    pub fn create(path: &Path, force: bool) -> Result<Self, String> {
        let created = !path.exists();
        if created {
            std::fs::create_dir_all(path).map_err(|e| io_err(path, e))?;
        } else {
            let mut entries = std::fs::read_dir(path).map_err(|e| io_err(path, e))?;
            if entries.next().is_some() {
                if !force {
                    return Err(format!(
                        "{} is not empty; resume it with --resume, or pass --force to overwrite",
                        path.display()
                    ));
                }
                for name in RUN_FILES {
                    let file = path.join(name);
                    if file.exists() {
                        std::fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
                    }
                }
            }
        }
        Ok(Self {
            path: path.to_owned(),
            created,
        })
    }

    /// An existing run directory (one with `config.json`).
    pub fn open(path: &Path) -> Result<(Self, RunConfig), String> {
        let config = read_dir_json(path, "config.json", "run")?;
        Ok((
            Self {
                path: path.to_owned(),
                created: false,
            },
            config,
        ))
    }

    /// Removes what this run wrote after an error before it became valid: the directory itself
    /// when this run created it, otherwise only the run files.
    pub fn discard(self) {
        if self.created {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            for name in RUN_FILES {
                let _ = std::fs::remove_file(self.path.join(name));
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.json` atomically.
    pub fn write_config(&self, config: &RunConfig) -> Result<(), String> {
        let text = serde_json::to_string_pretty(config).map_err(|e| e.to_string())? + "\n";
        checkpoint::write_atomic(self.file("config.json"), text.as_bytes())
            .map_err(|e| e.to_string())
    }

    /// Writes `result.json` atomically.
    pub fn write_result(&self, result: &serde_json::Value) -> Result<(), String> {
        let text = serde_json::to_string_pretty(result).map_err(|e| e.to_string())? + "\n";
        checkpoint::write_atomic(self.file("result.json"), text.as_bytes())
            .map_err(|e| e.to_string())
    }

    /// Appends one record to `metrics.jsonl` (synced, so a checkpoint never gets ahead of it).
    pub fn append_metrics(&self, record: &EvalRecord) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        writeln!(f, "{}", to_json(record))
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&path, e))
    }

    /// Keeps the records of `metrics.jsonl` up to `step` (creating it empty if missing).
    pub fn truncate_metrics(&self, step: u64) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let mut kept = String::new();
        if path.exists() {
            let f = File::open(&path).map_err(|e| io_err(&path, e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| io_err(&path, e))?;
                match serde_json::from_str::<EvalRecord>(&line) {
                    Ok(r) if r.step <= step => kept += &(line + "\n"),
                    _ => break,
                }
            }
        }
        checkpoint::write_atomic(&path, kept.as_bytes()).map_err(|e| e.to_string())
    }

    /// Writes `last.safetensors`: parameters, optimiser buffers, progress, best and experiment.
    pub fn save_last(
        &self,
        store: &ParamStore<f32>,
        optimizer: &(dyn Optimizer<f32> + Send),
        progress: &Progress,
        best: Option<Best>,
        experiment: &Experiment,
    ) -> Result<(), String> {
        let buffers = optimizer.buffers();
        let mut named: Vec<(String, &relational_rnn::ndarray::ArrayD<f32>)> = store
            .iter()
            .map(|(_, name, value)| (name.to_owned(), value))
            .collect();
        for (buffer, grads) in &buffers {
            for (id, name, _) in store.iter() {
                named.push((format!("{OPTIM_PREFIX}{buffer}.{name}"), grads.get(id)));
            }
        }
        let metadata = Metadata::from([
            ("format".into(), "rrnn-run-v1".into()),
            ("step".into(), progress.step.to_string()),
            (
                "optimizer_steps".into(),
                optimizer.steps_taken().to_string(),
            ),
            ("progress".into(), to_json(progress)),
            ("best".into(), to_json(&best)),
            ("experiment".into(), to_json(experiment)),
        ]);
        let path = self.file("last.safetensors");
        let bytes = checkpoint::encode(named.iter().map(|(n, v)| (n.as_str(), *v)), &metadata)
            .map_err(|e| io_err(&path, e))?;
        checkpoint::write_atomic(&path, &bytes).map_err(|e| e.to_string())
    }

    /// Writes `best.safetensors`: the parameters with step, validation accuracy and experiment.
    pub fn save_best(
        &self,
        store: &ParamStore<f32>,
        best: Best,
        experiment: &Experiment,
    ) -> Result<(), String> {
        let metadata = Metadata::from([
            ("step".into(), best.step.to_string()),
            ("val_accuracy".into(), to_json(&best.val_accuracy)),
            ("experiment".into(), to_json(experiment)),
        ]);
        checkpoint::save_store(self.file("best.safetensors"), store, &metadata)
            .map_err(|e| e.to_string())
    }

    /// Loads `last.safetensors` into `store` and restores the optimiser and progress.
    pub fn load_last(
        &self,
        store: &mut ParamStore<f32>,
        experiment: &Experiment,
    ) -> Result<Resumed, String> {
        let path = self.file("last.safetensors");
        let (tensors, metadata) = checkpoint::read(&path).map_err(|e| e.to_string())?;
        checkpoint::load_into(store, &tensors, &path).map_err(|e| e.to_string())?;
        let field = |key: &str| {
            metadata
                .get(key)
                .ok_or_else(|| format!("{}: no `{key}` in the checkpoint metadata", path.display()))
        };
        let parse_err =
            |key: &str, e: serde_json::Error| format!("{}: bad `{key}`: {e}", path.display());
        let progress: Progress =
            serde_json::from_str(field("progress")?).map_err(|e| parse_err("progress", e))?;
        let best: Option<Best> =
            serde_json::from_str(field("best")?).map_err(|e| parse_err("best", e))?;
        let steps: u64 = field("optimizer_steps")?
            .parse()
            .map_err(|e| format!("{}: bad `optimizer_steps`: {e}", path.display()))?;
        let mut failure = None;
        let optimizer = experiment.train.optimizer.restore(steps, |buffer| {
            load_buffer(store, &tensors, buffer, &path).unwrap_or_else(|e| {
                failure = Some(e);
                None
            })
        });
        // A buffer that failed to load (bad shape, non-finite value) is the error to report, not
        // the optimiser's complaint that it is missing.
        if let Some(e) = failure {
            return Err(e);
        }
        let optimizer = optimizer.map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Resumed {
            progress,
            optimizer,
            best,
        })
    }
}

fn load_buffer(
    store: &ParamStore<f32>,
    tensors: &Tensors,
    buffer: &str,
    path: &Path,
) -> Result<Option<Grads<f32>>, String> {
    checkpoint::load_grads(store, tensors, &format!("{OPTIM_PREFIX}{buffer}."), path)
        .map_err(|e| e.to_string())
}
