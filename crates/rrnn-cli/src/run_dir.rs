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

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use relational_rnn::checkpoint::{self, Metadata, Tensors};
use relational_rnn::experiment::Experiment;
use relational_rnn::optim::Optimizer;
use relational_rnn::tasks::TaskConfig;
use relational_rnn::tasks::babi::{DataFile, babi_data_files};
use relational_rnn::train::{EvalRecord, Progress};
use relational_rnn::{Grads, ParamStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The files a run writes (removed by `--force` and by clean-up after an early error).
const RUN_FILES: [&str; 6] = [
    "config.json",
    "metrics.jsonl",
    "last.safetensors",
    "run_state.json",
    "best.safetensors",
    "result.json",
];

/// The lock file: locked by the owner of the directory, holds its pid.
const LOCK_FILE: &str = ".lock";

/// Marks a damaged metrics file kept aside: `metrics.jsonl.damaged-<unix time>`.
const DAMAGED: &str = ".damaged-";

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
    /// The data files the run reads (none for generated data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataFile>,
}

impl RunConfig {
    /// The configuration of a run started now by this binary, with its data files read to
    /// record their sizes and content hashes.
    pub fn new(experiment: Experiment, threads: usize) -> Result<Self, String> {
        let commit = env!("RRNN_GIT_COMMIT");
        Ok(Self {
            rrnn_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: (!commit.is_empty()).then(|| commit.to_owned()),
            threads,
            data: data_files(&experiment)?,
            experiment,
        })
    }

    /// Checks that the data files are those the run started with (a resumed run must train on
    /// the same data).
    pub fn check_data(&self) -> Result<(), String> {
        let now = data_files(&self.experiment)?;
        if now == self.data {
            return Ok(());
        }
        let changed: Vec<String> = now
            .iter()
            .filter(|f| !self.data.contains(f))
            .chain(self.data.iter().filter(|f| !now.contains(f)))
            .map(|f| f.path.clone())
            .collect();
        Err(format!(
            "the data files differ from those config.json records (changed, added or removed: \
             {}); start a new run for new data",
            changed.join(", ")
        ))
    }
}

/// The data files of an experiment: those of a bAbI task read from `task.data_dir`.
fn data_files(experiment: &Experiment) -> Result<Vec<DataFile>, String> {
    match &experiment.task {
        TaskConfig::Babi(config) => babi_data_files(config).map_err(|e| e.to_string()),
        _ => Ok(Vec::new()),
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

/// `run_state.json`: what the checkpoint leaves out so that identical runs write identical bytes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RunState {
    /// Step of the checkpoint it goes with.
    step: u64,
    /// Seconds spent training up to that step, over every invocation.
    elapsed_s: f64,
}

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

/// Takes the exclusive lock of `dir` and writes this process's pid into the lock file; fails at
/// once, naming the holder's pid, when another process has it.
fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK_FILE);
    // A start that fails removes the directory it created, lock file included: a lock taken on
    // a file that is no longer at `path` guards nothing, so open it again.
    for _ in 0..3 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is in use by another process (pid {}); wait for it to end or stop it",
                    dir.display(),
                    holder(&path)
                ));
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, format!("cannot lock: {e}"))),
        }
        if !is_at(&file, &path) {
            continue;
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io_err(&path, e))?;
        return Ok(file);
    }
    Err(io_err(&path, "removed each time it was locked"))
}

/// The pid in a lock file; the holder writes it just after locking, so wait a moment for it.
fn holder(lock_file: &Path) -> String {
    for _ in 0..50 {
        let text = std::fs::read_to_string(lock_file).unwrap_or_default();
        if !text.trim().is_empty() {
            return text.trim().to_owned();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "unknown".to_owned()
}

/// Whether the open `file` is the one at `path`.
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Whether the open `file` is the one at `path` (elsewhere an open file cannot be removed).
#[cfg(not(unix))]
fn is_at(_: &File, path: &Path) -> bool {
    path.exists()
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

    /// Appends one record to `metrics.jsonl` (synced, so a checkpoint never gets ahead of it).
    pub fn append_metrics(&self, record: &EvalRecord) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        // One write for the line and its newline: a kill leaves no record without its newline.
        f.write_all((to_json(record) + "\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&path, e))
    }

    /// Keeps the records of `metrics.jsonl` up to `step` (creating it empty if missing). A
    /// damaged file, with a line that does not parse or a step not above the one before, is
    /// kept whole beside it (see [`Self::keep_damaged`]) and rebuilt from every record that
    /// parses, in step order, up to `step`: only damaged lines are missing from the new file.
    pub fn truncate_metrics(&self, step: u64) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut kept = String::new();
        let (mut last, mut damaged) = (None, Vec::new());
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            match serde_json::from_str::<EvalRecord>(line) {
                Ok(r) if last.is_none_or(|s| r.step > s) => {
                    last = Some(r.step);
                    if r.step <= step {
                        kept += line;
                        kept.push('\n');
                    }
                }
                _ => damaged.push((i + 1).to_string()),
            }
        }
        if !damaged.is_empty() {
            let aside = self.keep_damaged(&path)?;
            let lines = match damaged.len() {
                1 => format!("line {} is", damaged[0]),
                2..=5 => format!("lines {} are", damaged.join(", ")),
                n => format!("lines {}, … ({n} in all) are", damaged[..3].join(", ")),
            };
            eprintln!(
                "warning: {}: {lines} damaged; kept the whole file as {} and rebuilt it from the \
                 intact records up to step {step}",
                path.display(),
                aside.display()
            );
        }
        checkpoint::write_atomic(&path, kept.as_bytes()).map_err(|e| e.to_string())
    }

    /// Keeps `path` as it is under `<name>.damaged-<unix time>` beside it (a hard link, or a
    /// synced copy where links are not supported) and returns that path.
    fn keep_damaged(&self, path: &Path) -> Result<PathBuf, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut aside = self.file(&format!("{name}{DAMAGED}{now}"));
        for n in 1.. {
            if !aside.exists() {
                break;
            }
            aside = self.file(&format!("{name}{DAMAGED}{now}-{n}"));
        }
        if std::fs::hard_link(path, &aside).is_err() {
            std::fs::copy(path, &aside)
                .and_then(|_| File::open(&aside)?.sync_all())
                .map_err(|e| io_err(&aside, e))?;
        }
        Ok(aside)
    }

    /// Writes `last.safetensors` (parameters, optimiser buffers, progress, best and experiment),
    /// then `run_state.json`; a tensor that is not finite is an error and writes nothing.
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
            (
                "progress".into(),
                to_json(&Progress {
                    elapsed_s: 0.0,
                    ..progress.clone()
                }),
            ),
            ("best".into(), to_json(&best)),
            ("experiment".into(), to_json(experiment)),
        ]);
        if let Some((name, _)) = named.iter().find(|(_, v)| !all_finite(v)) {
            return Err(self.diverged(name, progress.step));
        }
        let path = self.file("last.safetensors");
        let bytes = checkpoint::encode(named.iter().map(|(n, v)| (n.as_str(), *v)), &metadata)
            .map_err(|e| io_err(&path, e))?;
        checkpoint::write_atomic(&path, &bytes).map_err(|e| e.to_string())?;
        let state = RunState {
            step: progress.step,
            elapsed_s: progress.elapsed_s,
        };
        let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())? + "\n";
        checkpoint::write_atomic(self.file("run_state.json"), text.as_bytes())
            .map_err(|e| e.to_string())
    }

    /// The error that ends a run whose parameters or optimiser state stopped being finite (the
    /// loss can stay finite for a step after an update overflows).
    fn diverged(&self, tensor: &str, step: u64) -> String {
        format!(
            "training diverged: `{tensor}` is not finite at step {step}; the last good \
             checkpoint is kept in {}",
            self.file("last.safetensors").display()
        )
    }

    /// Writes `best.safetensors`: the parameters with step, validation accuracy and experiment;
    /// parameters that are not finite are an error and write nothing.
    pub fn save_best(
        &self,
        store: &ParamStore<f32>,
        best: Best,
        experiment: &Experiment,
    ) -> Result<(), String> {
        if let Some((_, name, _)) = store.iter().find(|(_, _, v)| !all_finite(v)) {
            return Err(self.diverged(name, best.step));
        }
        let metadata = Metadata::from([
            ("step".into(), best.step.to_string()),
            ("val_accuracy".into(), to_json(&best.val_accuracy)),
            ("experiment".into(), to_json(experiment)),
        ]);
        checkpoint::save_store(self.file("best.safetensors"), store, &metadata)
            .map_err(|e| e.to_string())
    }

    /// Loads `last.safetensors` into `store` and restores the optimiser and progress, after
    /// checking that every tensor is finite and that best.safetensors loads when it records a
    /// best.
    pub fn load_last(
        &self,
        store: &mut ParamStore<f32>,
        experiment: &Experiment,
    ) -> Result<Resumed, String> {
        let path = self.file("last.safetensors");
        let (tensors, metadata) = checkpoint::read(&path).map_err(|e| e.to_string())?;
        if let Some((name, _)) = tensors
            .iter()
            .find(|(_, t)| !t.iter().all(|x| x.is_finite()))
        {
            return Err(format!(
                "{}: tensor `{name}` is not finite; this checkpoint cannot be resumed",
                path.display()
            ));
        }
        checkpoint::load_into(store, &tensors, &path).map_err(|e| e.to_string())?;
        let field = |key: &str| {
            metadata
                .get(key)
                .ok_or_else(|| format!("{}: no `{key}` in the checkpoint metadata", path.display()))
        };
        let parse_err =
            |key: &str, e: serde_json::Error| format!("{}: bad `{key}`: {e}", path.display());
        let saved: Experiment =
            serde_json::from_str(field("experiment")?).map_err(|e| parse_err("experiment", e))?;
        let mut differ = differing_keys(&to_value(&saved), &to_value(experiment));
        differ.retain(|key| key != "train.steps");
        if !differ.is_empty() {
            return Err(format!(
                "{}: config.json and last.safetensors hold different experiments (they differ \
                 in {}); restore config.json: a resume may change train.steps only",
                self.path.display(),
                differ.join(", ")
            ));
        }
        let mut progress: Progress =
            serde_json::from_str(field("progress")?).map_err(|e| parse_err("progress", e))?;
        // Checkpoints written before run_state.json existed keep the wall time in `progress`.
        if let Some(state) = self.run_state() {
            progress.elapsed_s = state.elapsed_s;
        }
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
        if let Some(best) = best {
            self.check_best(store, best, progress.step)?;
        }
        Ok(Resumed {
            progress,
            optimizer,
            best,
        })
    }

    /// `run_state.json`, if there is a readable one (it only holds wall time: a missing or
    /// damaged one is a warning, not a reason to refuse a resume).
    fn run_state(&self) -> Option<RunState> {
        let path = self.file("run_state.json");
        let text = std::fs::read_to_string(&path).ok()?;
        serde_json::from_str(&text)
            .map_err(|e| {
                eprintln!(
                    "warning: {}: {e}; ignored (it holds wall time only)",
                    path.display()
                )
            })
            .ok()
    }

    /// Checks that best.safetensors loads into a model like `store`, is finite, and holds the
    /// best that last.safetensors records, or one after its `step` (saved just before a kill;
    /// the resumed run saves it again).
    fn check_best(&self, store: &ParamStore<f32>, best: Best, step: u64) -> Result<(), String> {
        let path = self.file("best.safetensors");
        let recorded = format!("last.safetensors records a best at step {}", best.step);
        let mut scratch = store.cast::<f32>();
        let metadata = checkpoint::load_store(&path, &mut scratch)
            .map_err(|e| format!("{recorded}, but {e}"))?;
        if let Some((_, name, _)) = scratch.iter().find(|(_, _, v)| !all_finite(v)) {
            return Err(format!(
                "{recorded}, but {}: tensor `{name}` is not finite",
                path.display()
            ));
        }
        match metadata.get("step").and_then(|s| s.parse::<u64>().ok()) {
            Some(s) if s == best.step || s > step => Ok(()),
            found => Err(format!(
                "{recorded}, but {} is from step {}",
                path.display(),
                found.map_or("(none recorded)".into(), |s| s.to_string())
            )),
        }
    }
}

/// The dotted paths (`train.optimizer.lr`) at which two JSON values differ; arrays compare
/// whole.
fn differing_keys(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    let inner = match path {
                        "" => key.clone(),
                        _ => format!("{path}.{key}"),
                    };
                    let (u, v) = (x.get(key), y.get(key));
                    walk(
                        u.unwrap_or(&Value::Null),
                        v.unwrap_or(&Value::Null),
                        &inner,
                        out,
                    );
                }
            }
            _ if a != b => out.push(path.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

/// `value` as JSON.
fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("plain data serialises")
}

/// Whether every element is finite.
fn all_finite(a: &relational_rnn::ndarray::ArrayD<f32>) -> bool {
    a.iter().all(|x| x.is_finite())
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
