//! A run directory and its files.
//!
//! ```text
//! .lock               locked by the process that owns the run; holds its pid
//! config.json         the resolved experiment, rrnn version, git commit, threads, and the data
//!                     files a run reads (bAbI `task.data_dir`: path, size, content hash); written
//!                     last when a run starts: a directory without it is not a run
//! metrics.jsonl       one EvalRecord per evaluation
//! last.safetensors    parameters + optimiser buffers (`optim.m.<name>`, `optim.v.<name>`,
//!                     `optim.momentum.<name>`) + metadata: step, optimizer_steps, progress
//!                     (accumulators, early-stopping state), best, experiment; the last good
//!                     state: never written with a NaN or an infinity in it
//! run_state.json      step and wall time (`elapsed_s`) of that checkpoint, written just after
//!                     it: kept out of it so that identical runs write identical checkpoint bytes
//! best.safetensors    parameters at the best validation accuracy so far + step, val_accuracy,
//!                     experiment
//! result.json         written when the run finishes (completed or early-stopped): the
//!                     validation-best parameters scored once on the test and hard sets
//! ```
//!
//! One process owns a run directory at a time: a new run and a resume take an exclusive lock on
//! `.lock` before writing anything, and a second process fails at once naming the holder's pid.
//! The lock is advisory (`flock`) and may not hold on network filesystems (NFS, SMB): do not run
//! one directory from two machines. The lock file stays after the run; it does not make the
//! directory non-empty for `--out`.
//!
//! Every file except metrics.jsonl is replaced atomically (temporary file + rename); the
//! temporary files a killed writer leaves are removed when the next owner takes the lock. A start
//! killed before it wrote config.json leaves a directory that `--out` still takes as empty.
//!
//! metrics.jsonl is appended to before the checkpoint of the same step is written; resuming cuts
//! it back to the checkpoint's step, so a kill between the two never duplicates a line. A damaged
//! metrics.jsonl (a line that does not parse, steps out of order) is never cut silently: resuming
//! keeps it whole as `metrics.jsonl.damaged-<unix time>` and rebuilds it from the intact records.
//!
//! Resuming refuses a config.json whose experiment differs from the one stored in
//! last.safetensors, but for `train.steps` (a resume may raise the budget). The batch RNG has no
//! state to save: step `s` draws from `step_rng(seed, s)`, so the step number is the RNG state.

mod checkpoints;
mod config;
mod lock;
mod metrics;

use std::fs::File;
use std::path::{Path, PathBuf};

use relational_rnn::checkpoint;
use serde::Serialize;

pub use checkpoints::Best;
pub use config::RunConfig;

use checkpoints::RunState;
use lock::{LOCK_FILE, lock};
use metrics::DAMAGED;

/// The files a run writes (removed by `--force` and by clean-up after an early error).
const RUN_FILES: [&str; 6] = [
    "config.json",
    "metrics.jsonl",
    "last.safetensors",
    "run_state.json",
    "best.safetensors",
    "result.json",
];

/// A run directory, owned by this process while the value lives.
pub struct RunDir {
    path: PathBuf,
    created: bool,
    /// `.lock`, locked: closing it releases the directory.
    _lock: File,
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
    /// Prepares `path` for a new run and takes its lock: creates it, or accepts it when empty
    /// but for leftovers (see [`Self::content`]); a non-empty directory is refused unless
    /// `force`, which removes the run files in it, damaged metrics kept aside included (and
    /// nothing else).
    pub fn create(path: &Path, force: bool) -> Result<Self, String> {
        let created = !path.exists();
        if !created && !path.is_dir() {
            return Err(format!(
                "{}: Not a directory (a file is in the way)",
                path.display()
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| io_err(path, e))?;
        let lock_existed = path.join(LOCK_FILE).exists();
        let dir = Self {
            path: path.to_owned(),
            created,
            _lock: lock(path)?,
        };
        if let Some(name) = dir.content()? {
            if !force {
                // A refused start leaves the directory as it found it.
                if !lock_existed {
                    std::fs::remove_file(path.join(LOCK_FILE)).map_err(|e| io_err(path, e))?;
                }
                return Err(format!(
                    "{} is not empty (it holds {name}); resume it with --resume, or pass --force \
                     to overwrite",
                    path.display()
                ));
            }
            for name in RUN_FILES {
                let file = path.join(name);
                if file.exists() {
                    std::fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
                }
            }
            dir.remove_where(|name| name.starts_with(&format!("metrics.jsonl{DAMAGED}")))?;
        }
        // Temporary files of killed writers (none can be writing: this process holds the lock).
        dir.remove_where(checkpoint::is_temporary)?;
        Ok(dir)
    }

    /// The first entry a new run would overwrite: anything but the lock file, temporary files,
    /// and what a start killed before writing config.json leaves (an empty metrics.jsonl, the
    /// step-0 last.safetensors and run_state.json: nothing that a new start does not write
    /// again).
    fn content(&self) -> Result<Option<String>, String> {
        let started = self.file("config.json").exists();
        for entry in std::fs::read_dir(&self.path).map_err(|e| io_err(&self.path, e))? {
            let name = entry.map_err(|e| io_err(&self.path, e))?.file_name();
            let name = name.to_string_lossy();
            let leftover = name == LOCK_FILE
                || checkpoint::is_temporary(&name)
                || (!started && self.is_start_leftover(&name));
            if !leftover {
                return Ok(Some(name.into_owned()));
            }
        }
        Ok(None)
    }

    /// Whether `name` is a file a start writes before config.json, as it writes it.
    fn is_start_leftover(&self, name: &str) -> bool {
        let path = self.file(name);
        match name {
            "metrics.jsonl" => path.metadata().is_ok_and(|m| m.len() == 0),
            "last.safetensors" => checkpoint::read(&path)
                .is_ok_and(|(_, meta)| meta.get("step").is_some_and(|s| s == "0")),
            "run_state.json" => std::fs::read_to_string(&path)
                .is_ok_and(|t| serde_json::from_str::<RunState>(&t).is_ok_and(|r| r.step == 0)),
            _ => false,
        }
    }

    /// Removes the files (not directories) whose names pass `remove`.
    fn remove_where(&self, remove: impl Fn(&str) -> bool) -> Result<(), String> {
        for entry in std::fs::read_dir(&self.path).map_err(|e| io_err(&self.path, e))? {
            let entry = entry.map_err(|e| io_err(&self.path, e))?;
            let name = entry.file_name();
            if entry.file_type().is_ok_and(|t| t.is_file()) && remove(&name.to_string_lossy()) {
                let file = self.path.join(&name);
                std::fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
            }
        }
        Ok(())
    }

    /// An existing run directory (one with `config.json`), locked.
    pub fn open(path: &Path) -> Result<(Self, RunConfig), String> {
        // Not a run: refuse before putting a lock file there.
        read_dir_json::<RunConfig>(path, "config.json", "run")?;
        let dir = Self {
            path: path.to_owned(),
            created: false,
            _lock: lock(path)?,
        };
        // Temporary files of killed writers (none can be writing: this process holds the lock).
        dir.remove_where(checkpoint::is_temporary)?;
        // Read again under the lock: the previous owner may have changed it.
        let config = read_dir_json(path, "config.json", "run")?;
        Ok((dir, config))
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
}
