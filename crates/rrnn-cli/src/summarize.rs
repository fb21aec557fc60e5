//! `rrnn sweep summarize <dir>`: one CSV row per grid point with the mean and sample standard
//! deviation over seeds of each job's result.json, written to `<dir>/summary.csv` and stdout;
//! the task's chance, plateau and heuristic baselines (from result.json) go to stderr.

use std::collections::BTreeMap;
use std::path::Path;

use relational_rnn::experiment::mean_std;

use crate::run_dir::read_dir_json;
use crate::sweep_file::SweepFile;

/// Result fields aggregated, in column order.
const METRICS: [&str; 6] = [
    "val_accuracy",
    "test_accuracy",
    "hard_accuracy",
    "val_loss",
    "test_loss",
    "step",
];

/// Runs the summary.
pub fn run(dir: &Path) -> Result<(), String> {
    let sweep: SweepFile = read_dir_json(dir, "sweep.json", "sweep")?;
    // Grid points in job order, each with the results of its finished seeds.
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut results: BTreeMap<Vec<String>, (usize, Vec<serde_json::Value>)> = BTreeMap::new();
    for job in &sweep.jobs {
        let point: Vec<String> = job.params.iter().map(|(_, v)| v.clone()).collect();
        if !results.contains_key(&point) {
            order.push(point.clone());
        }
        let entry = results.entry(point).or_default();
        entry.0 += 1;
        let path = dir.join(&job.dir).join("result.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            entry.1.push(value);
        }
    }
    let mut header: Vec<String> = sweep.keys.clone();
    header.extend(["seeds_done".into(), "seeds".into()]);
    for m in METRICS {
        header.extend([format!("{m}_mean"), format!("{m}_std")]);
    }
    let mut csv = header.join(",") + "\n";
    for point in order {
        let (total, done) = &results[&point];
        let mut row = point.clone();
        row.extend([done.len().to_string(), total.to_string()]);
        for m in METRICS {
            let values: Vec<f64> = done.iter().filter_map(|r| r[m].as_f64()).collect();
            if values.is_empty() {
                row.extend([String::new(), String::new()]);
            } else {
                let (mean, std) = mean_std(&values);
                row.extend([mean.to_string(), std.to_string()]);
            }
        }
        csv += &(row.join(",") + "\n");
    }
    if let Some(reference) = results
        .values()
        .flat_map(|(_, done)| done)
        .find_map(|r| r.get("reference"))
    {
        eprintln!("{}", describe_reference(reference));
    }
    let out = dir.join("summary.csv");
    relational_rnn::checkpoint::write_atomic(&out, csv.as_bytes()).map_err(|e| e.to_string())?;
    print!("{csv}");
    Ok(())
}

/// One line for stderr: chance, plateau and each heuristic on test (the CSV stays on stdout).
fn describe_reference(reference: &serde_json::Value) -> String {
    let number = |v: &serde_json::Value| v.as_f64().map_or("none".into(), |x| format!("{x:.3}"));
    let mut line = format!(
        "reference on test: chance {}, plateau {}",
        number(&reference["chance"]),
        number(&reference["plateau"])
    );
    if let Some(heuristics) = reference["heuristics"].as_object() {
        for (name, by_split) in heuristics {
            line += &format!(", {name} {}", number(&by_split["test"]));
        }
    }
    line
}
