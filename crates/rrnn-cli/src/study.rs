//! `rrnn study summarize DIR`: one machine-readable summary of a study, `DIR/summary.json`,
//! written from the run directories alone (never edited by hand).
//!
//! A study directory is laid out as `DIR/<task>/<variant>/<model>/<stage>/…/seed=<s>/`, each leaf a
//! run directory of `rrnn train` (usually a sweep's job), where `<stage>` is
//!
//! - `select`: one seed per learning rate, run to the step cap (role `lr-selection`);
//! - `final`: more seeds at the chosen rate (role `final`; its seed 0 is the selection run);
//! - `explore`: settings tried before a study (role `exploration`).
//!
//! The chosen rate of a (task, variant, model) is the selection run with the best validation
//! accuracy (ties: lower validation loss); a `final` stage at another rate is an error; `choices`
//! lists each choice. `cap_gain` is, per run that reached the step cap, its validation accuracy
//! there minus 20 % of the steps earlier (the cap is justified when it is at most 0.01). Task entries hold chance, plateau and the library's heuristic baselines on
//! the validation, test and hard sets of the runs' own data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use relational_rnn::experiment::{Experiment, mean_std};
use serde_json::{Value, json};

use crate::run_dir::{RunConfig, read_dir_json};

/// Arguments of `rrnn study`.
#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    #[command(subcommand)]
    action: StudyAction,
}

#[derive(Debug, clap::Subcommand)]
enum StudyAction {
    /// Write DIR/summary.json from the study's run directories and print its rows.
    Summarize {
        /// The study directory (e.g. results/study).
        dir: PathBuf,
    },
    /// Write DIR/FINDINGS.md from DIR/summary.json: per task, each model against its baseline
    /// with a 95 % interval over seeds, beside chance, plateau and the best heuristic.
    Findings {
        /// The study directory (e.g. results/study).
        dir: PathBuf,
    },
}

/// Runs `rrnn study`.
pub fn run(args: &StudyArgs) -> Result<(), String> {
    match &args.action {
        StudyAction::Summarize { dir } => summarize(dir),
        StudyAction::Findings { dir } => crate::findings::write(dir),
    }
}

/// The stages of a study and the role their rows have.
const STAGES: [(&str, &str); 3] = [
    ("select", "lr-selection"),
    ("final", "final"),
    ("explore", "exploration"),
];

/// One finished run of a study.
#[derive(Debug, Clone)]
struct Run {
    task: String,
    variant: String,
    model: String,
    stage: String,
    /// Relative to the current directory (the repository root when run from it).
    dir: PathBuf,
    experiment: Experiment,
    result: Value,
    /// The checkpoint the run was warm-started from (`--init-from`), if any.
    init_from: Option<String>,
}

impl Run {
    fn lr(&self) -> f64 {
        self.experiment.train.optimizer.lr()
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.result[key].as_f64()
    }
}

/// Every run directory (one with `config.json`) below `dir`.
fn run_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if dir.join("config.json").exists() {
        out.push(dir.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        run_dirs(&child, out)?;
    }
    Ok(())
}

/// Reads every finished run; unfinished ones are listed on stderr and left out.
fn read_runs(root: &Path) -> Result<Vec<Run>, String> {
    let mut dirs = Vec::new();
    run_dirs(root, &mut dirs)?;
    let mut runs = Vec::new();
    for dir in dirs {
        let parts: Vec<String> = dir
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.len() < 5 || !STAGES.iter().any(|(s, _)| *s == parts[3]) {
            return Err(format!(
                "{}: not <task>/<variant>/<model>/<select|final|explore>/…/seed=<s>",
                dir.display()
            ));
        }
        if !dir.join("result.json").exists() {
            eprintln!("unfinished, left out: {}", dir.display());
            continue;
        }
        let config: RunConfig = read_dir_json(&dir, "config.json", "run")?;
        let result: Value = read_dir_json(&dir, "result.json", "run")?;
        let task = config.experiment.task.kind().name().to_owned();
        if task != parts[0] {
            return Err(format!(
                "{}: the run's task is `{task}`, its directory says `{}`",
                dir.display(),
                parts[0]
            ));
        }
        runs.push(Run {
            task,
            variant: parts[1].clone(),
            model: parts[2].clone(),
            stage: parts[3].clone(),
            dir,
            experiment: config.experiment,
            result,
            init_from: config.init_from.map(|f| f.path),
        });
    }
    Ok(runs)
}

/// The selection run with the best validation accuracy (ties: lower validation loss).
fn chosen<'a>(select: &[&'a Run]) -> Option<&'a Run> {
    select.iter().copied().max_by(|a, b| {
        let key = |r: &Run| {
            (
                r.number("val_accuracy").unwrap_or(f64::NEG_INFINITY),
                -r.number("val_loss").unwrap_or(f64::INFINITY),
            )
        };
        key(a)
            .partial_cmp(&key(b))
            .expect("finite or infinite keys")
    })
}

/// The step cap of a row: the largest of its runs'. A run with a smaller cap belongs only if it
/// stopped early (schedules are in absolute steps, so it would have stopped at the same step
/// under the larger cap).
fn row_cap(runs: &[&Run]) -> Result<u64, String> {
    let cap = runs
        .iter()
        .map(|r| r.experiment.train.steps)
        .max()
        .expect("a row has runs");
    for r in runs {
        let early = r.result["stopped"]["reason"] == "early_stopped";
        if r.experiment.train.steps < cap && !early {
            return Err(format!(
                "{}: ran to a cap of {} steps, below the {cap} of the other runs at its rate; \
                 continue it with `rrnn train --resume <dir> --steps {cap}`",
                r.dir.display(),
                r.experiment.train.steps
            ));
        }
    }
    Ok(cap)
}

/// One row: the runs of one (task, variant, model, role, lr), sorted by seed.
fn row(role: &str, runs: &[&Run]) -> Result<Value, String> {
    let mut runs = runs.to_vec();
    runs.sort_by_key(|r| r.experiment.train.seed);
    let steps_cap = row_cap(&runs)?;
    let first = runs[0];
    let per_seed = |key: &str| -> Vec<Option<f64>> { runs.iter().map(|r| r.number(key)).collect() };
    let mut row = json!({
        "task": first.task,
        "variant": first.variant,
        "model": first.model,
        "role": role,
        "lr": first.lr(),
        "schedule": first.experiment.train.schedule,
        "steps_cap": steps_cap,
        "batch_size": first.experiment.train.batch_size,
        "early_stopping": first.experiment.train.early_stopping,
        "params": first.result["params"],
        "seeds": runs.iter().map(|r| r.experiment.train.seed).collect::<Vec<_>>(),
        "runs": runs.iter().map(|r| r.dir.display().to_string()).collect::<Vec<_>>(),
        "steps": runs.iter().map(|r| r.result["step"].clone()).collect::<Vec<_>>(),
        "best_step": runs.iter().map(|r| r.result["best_step"].clone()).collect::<Vec<_>>(),
        "val_accuracy": per_seed("val_accuracy"),
        "val_loss": per_seed("val_loss"),
        "test_accuracy": per_seed("test_accuracy"),
        "test_loss": per_seed("test_loss"),
        "hard_accuracy": per_seed("hard_accuracy"),
        "cap_gain": runs.iter().map(|r| cap_gain(r)).collect::<Vec<_>>(),
        "elapsed_s": per_seed("elapsed_s"),
    });
    if runs.iter().any(|r| r.init_from.is_some()) {
        let from: Vec<Option<&str>> = runs.iter().map(|r| r.init_from.as_deref()).collect();
        row["init_from"] = json!(from);
    }
    Ok(row)
}

/// Validation accuracy at the step cap minus its value 20 % of the steps earlier (the last
/// evaluation at or before 0.8 × cap), for a run that reached the cap; `None` otherwise. The
/// study's rule for a justified cap: at most 0.01.
fn cap_gain(run: &Run) -> Option<f64> {
    let cap = run.experiment.train.steps;
    let column = relational_rnn::experiment::read_metric_column(&run.dir, "val_accuracy").ok()?;
    let &(last_step, last) = column.last()?;
    if last_step != cap {
        return None;
    }
    let earlier = column
        .iter()
        .rev()
        .find(|(step, _)| *step as f64 <= 0.8 * cap as f64)?
        .1;
    Some(last - earlier)
}

/// Runs grouped by learning rate, in increasing order of its bits (= of the rate).
fn by_lr(runs: Vec<&Run>) -> Vec<Vec<&Run>> {
    let mut groups: BTreeMap<u64, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        groups.entry(r.lr().to_bits()).or_default().push(r);
    }
    groups.into_values().collect()
}

/// Rows of one (task, variant, model): selection rows per rate, the final row, exploration rows.
fn model_rows(runs: &[&Run]) -> Result<Vec<Value>, String> {
    let stage =
        |name: &str| -> Vec<&Run> { runs.iter().copied().filter(|r| r.stage == name).collect() };
    let mut rows = Vec::new();
    let select = stage("select");
    for group in by_lr(select.clone()) {
        rows.push(row("lr-selection", &group)?);
    }
    let finals = stage("final");
    if !finals.is_empty() {
        let lrs: Vec<u64> = by_lr(finals.clone())
            .iter()
            .map(|g| g[0].lr().to_bits())
            .collect();
        let mut members = finals.clone();
        if let Some(pick) = chosen(&select) {
            if lrs != [pick.lr().to_bits()] {
                return Err(format!(
                    "{}: the final seeds are not at the rate chosen on validation ({})",
                    finals[0].dir.display(),
                    pick.lr()
                ));
            }
            members.push(pick);
        } else if lrs.len() != 1 {
            return Err(format!(
                "{}: final seeds at more than one rate",
                finals[0].dir.display()
            ));
        }
        rows.push(row("final", &members)?);
    }
    for group in by_lr(stage("explore")) {
        let mut configs: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
        for r in group {
            let mut e = r.experiment.clone();
            e.train.seed = 0;
            // A warm-started run is another setting than a cold one of the same experiment.
            let key = serde_json::to_string(&e).expect("plain data");
            let warm = if r.init_from.is_some() {
                "warm"
            } else {
                "cold"
            };
            configs.entry(format!("{key} {warm}")).or_default().push(r);
        }
        for g in configs.values() {
            rows.push(row("exploration", g)?);
        }
    }
    Ok(rows)
}

/// Chance, plateau and heuristics of one (task, variant), on the evaluation sets of `run`.
fn task_entry(run: &Run) -> Result<Value, String> {
    let reference = run.experiment.reference().map_err(|e| e.to_string())?;
    let mut entry = json!({ "task": run.task, "variant": run.variant });
    let fields = serde_json::to_value(reference).map_err(|e| e.to_string())?;
    if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), fields) {
        entry.extend(fields);
    }
    Ok(entry)
}

/// Mean ± std of the non-null values of a row's `key`, for the printed table.
fn cell(row: &Value, key: &str) -> String {
    let xs: Vec<f64> = row[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    match xs.len() {
        0 => "—".into(),
        1 => format!("{:.3}", xs[0]),
        _ => {
            let (m, s) = mean_std(&xs);
            format!("{m:.3} ± {s:.3}")
        }
    }
}

/// Runs `rrnn study summarize DIR`.
fn summarize(root: &Path) -> Result<(), String> {
    let runs = read_runs(root)?;
    let mut groups: BTreeMap<(String, String, String), Vec<&Run>> = BTreeMap::new();
    for r in &runs {
        groups
            .entry((r.task.clone(), r.variant.clone(), r.model.clone()))
            .or_default()
            .push(r);
    }
    let mut rows = Vec::new();
    let mut choices = Vec::new();
    for members in groups.values() {
        rows.extend(model_rows(members)?);
        let select: Vec<&Run> = members
            .iter()
            .copied()
            .filter(|r| r.stage == "select")
            .collect();
        if let Some(pick) = chosen(&select) {
            choices.push(json!({
                "task": pick.task,
                "variant": pick.variant,
                "model": pick.model,
                "lr": pick.lr(),
                "val_accuracy": pick.result["val_accuracy"],
                "val_loss": pick.result["val_loss"],
                "candidates": select.len(),
            }));
        }
    }
    let mut tasks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in &runs {
        if seen.insert((r.task.clone(), r.variant.clone())) {
            tasks.push(task_entry(r)?);
        }
    }
    println!(
        "{:<13} {:<18} {:<10} {:<12} {:>7} {:>5} {:>15} {:>15} {:>15}",
        "task", "variant", "model", "role", "lr", "seeds", "val acc", "test acc", "hard acc"
    );
    for r in &rows {
        println!(
            "{:<13} {:<18} {:<10} {:<12} {:>7} {:>5} {:>15} {:>15} {:>15}",
            r["task"].as_str().unwrap_or(""),
            r["variant"].as_str().unwrap_or(""),
            r["model"].as_str().unwrap_or(""),
            r["role"].as_str().unwrap_or(""),
            r["lr"],
            r["seeds"].as_array().map_or(0, Vec::len),
            cell(r, "val_accuracy"),
            cell(r, "test_accuracy"),
            cell(r, "hard_accuracy"),
        );
    }
    let summary = json!({ "rows": rows, "tasks": tasks, "choices": choices });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n";
    let out = root.join("summary.json");
    relational_rnn::checkpoint::write_atomic(&out, text.as_bytes()).map_err(|e| e.to_string())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
