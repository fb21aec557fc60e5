//! `last.safetensors`, `run_state.json` and `best.safetensors`: saving a run and resuming it.

use std::collections::BTreeSet;
use std::path::Path;

use relational_rnn::checkpoint::{self, Metadata, Tensors};
use relational_rnn::experiment::Experiment;
use relational_rnn::optim::Optimizer;
use relational_rnn::train::Progress;
use relational_rnn::{Grads, ParamStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{RunDir, io_err, to_json};

/// Prefix of optimiser buffers in `last.safetensors`.
const OPTIM_PREFIX: &str = "optim.";

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
pub(super) struct RunState {
    /// Step of the checkpoint it goes with.
    pub(super) step: u64,
    /// Seconds spent training up to that step, over every invocation.
    elapsed_s: f64,
}

impl RunDir {
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
