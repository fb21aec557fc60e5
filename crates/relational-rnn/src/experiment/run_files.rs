//! Reading what `rrnn train` and `rrnn sweep` wrote: configurations, metrics, results, sweeps.

use serde::Deserialize;

use crate::train::EvalRecord;

/// Reads the evaluation records of a run directory written by `rrnn train` (its `metrics.jsonl`).
pub fn read_metrics(dir: impl AsRef<std::path::Path>) -> std::io::Result<Vec<EvalRecord>> {
    let path = dir.as_ref().join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

/// One numeric column of a run directory's `metrics.jsonl` as `(step, value)` pairs, by field name
/// (`"val_accuracy"`, `"train_loss"`, …); also reads runs written before the validation split,
/// whose evaluations were on the test set (`"test_accuracy"`).
pub fn read_metric_column(
    dir: impl AsRef<std::path::Path>,
    field: &str,
) -> std::io::Result<Vec<(u64, f64)>> {
    let path = dir.as_ref().join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let bad = |line: usize, what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}:{line}: {what}", path.display()),
        )
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|e| bad(i + 1, e.to_string()))?;
            match (v["step"].as_u64(), v[field].as_f64()) {
                (Some(step), Some(x)) => Ok((step, x)),
                _ => Err(bad(i + 1, format!("no numeric `step` and `{field}`"))),
            }
        })
        .collect()
}

/// The experiment of a run directory written by `rrnn train` (the `experiment` field of its
/// `config.json`): what a run that never finished still records about itself.
pub fn read_experiment(dir: impl AsRef<std::path::Path>) -> std::io::Result<super::Experiment> {
    let path = dir.as_ref().join("config.json");
    let text = std::fs::read_to_string(&path)?;
    let bad = |what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let experiment = config
        .get_mut("experiment")
        .map(serde_json::Value::take)
        .ok_or_else(|| bad("no `experiment` field".into()))?;
    serde_json::from_value(experiment).map_err(|e| bad(e.to_string()))
}

/// `result.json` of a run finished by `rrnn train`: what was scored once at the end. Fields a
/// run directory may lack are `None` (older runs have no validation numbers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunOutcome {
    /// Training steps done.
    pub step: u64,
    /// Step of the validation-best checkpoint.
    #[serde(default)]
    pub best_step: Option<u64>,
    /// Validation accuracy at `best_step`.
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Validation loss at `best_step`.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Test accuracy of the scored parameters.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Test loss of the scored parameters.
    #[serde(default)]
    pub test_loss: Option<f64>,
    /// Accuracy on the harder split.
    #[serde(default)]
    pub hard_accuracy: Option<f64>,
    /// Trainable scalars.
    #[serde(default)]
    pub params: Option<usize>,
}

/// Reads a run directory's `result.json`.
pub fn read_outcome(dir: impl AsRef<std::path::Path>) -> std::io::Result<RunOutcome> {
    let path = dir.as_ref().join("result.json");
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// One run of a sweep directory written by `rrnn sweep`: `<dir>/<combination>/seed=<s>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// The grid combination, e.g. `heads=2` (nested keys joined by `/`).
    pub combination: String,
    /// The seed.
    pub seed: u64,
    /// The run directory ([`read_metrics`] reads its evaluations).
    pub dir: std::path::PathBuf,
    /// Its `result.json`, when the run has finished.
    pub outcome: Option<RunOutcome>,
}

/// Every run with a `metrics.jsonl` under a sweep directory, sorted by combination then seed.
pub fn read_sweep(dir: impl AsRef<std::path::Path>) -> std::io::Result<Vec<SweepRun>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<SweepRun>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match name.strip_prefix("seed=").and_then(|s| s.parse().ok()) {
                Some(seed) if path.join("metrics.jsonl").exists() => {
                    let combination = dir
                        .strip_prefix(root)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let outcome = if path.join("result.json").exists() {
                        Some(read_outcome(&path)?)
                    } else {
                        None
                    };
                    out.push(SweepRun {
                        combination,
                        seed,
                        dir: path,
                        outcome,
                    });
                }
                _ => walk(root, &path, out)?,
            }
        }
        Ok(())
    }
    let root = dir.as_ref();
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| (&a.combination, a.seed).cmp(&(&b.combination, b.seed)));
    Ok(out)
}
