//! `rrnn study findings DIR`: `DIR/FINDINGS.md` from `DIR/summary.json` — per task and variant, each
//! model's final row (mean ± std over seeds), its difference from the LSTM of its variant (or, for a
//! control or ablation, from the default RMC) with a 95 % Welch t interval over seeds, beside chance, plateau
//! and the best heuristic; exploration rows say how many seeds left the plateau and compare the RMC
//! with the LSTM at the same start. Every number is computed here from the summary; the verdict sentences
//! follow fixed rules, so they claim no more than the intervals do. Hand-written notes without
//! numbers (what was cut, what a number means) come from `DIR/NOTES.md`.

use std::fmt::Write;
use std::path::Path;

use relational_rnn::experiment::mean_std;
use relational_rnn::stats::welch_interval;
use relational_rnn::study::{
    Metric, PLATEAU_MARGIN, StudyRow, StudySummary, TaskBaselines, mean_pm,
};

/// Confidence level of every interval.
const LEVEL: f64 = 0.95;

/// The largest validation-accuracy gain over the last 20 % of the steps that still justifies the
/// cap (0.01, with room for the rounding of differences of counts over 1,000).
const CAP_GAIN: f64 = 0.01 + 1e-9;

/// Mean ± std of steps, rounded (how soon a model reaches its validation best).
fn mean_steps(xs: &[f64]) -> String {
    match xs.len() {
        0 => "—".into(),
        1 => format!("{:.0}", xs[0]),
        _ => {
            let (m, s) = mean_std(xs);
            format!("{m:.0} ± {s:.0}")
        }
    }
}

/// The difference `a − b` of a per-seed quantity with its interval, and a rule-based reading.
fn compare(what: (&str, &str, &str), a_name: &str, a: &[f64], b_name: &str, b: &[f64]) -> String {
    let (what, more, less) = what;
    match welch_interval(a, b, LEVEL) {
        None => format!(
            "{what}, {a_name} − {b_name}: too few seeds (or no spread) for an interval; no claim"
        ),
        Some((d, lo, hi)) => {
            let reading = if lo > 0.0 {
                format!("{a_name} {more} {b_name}")
            } else if hi < 0.0 {
                format!("{a_name} {less} {b_name}")
            } else {
                "the interval contains 0: no difference resolved".into()
            };
            let digits = if d.abs() >= 10.0 { 0 } else { 3 };
            format!(
                "{what}, {a_name} − {b_name}: {d:+.digits$}, 95 % Welch t interval \
                 [{lo:+.digits$}, {hi:+.digits$}] over seeds — {reading}"
            )
        }
    }
}

/// Training examples of DeepMind Sonnet's example recipe for Nth-farthest
/// (`rmc_nth_farthest.py`: batch 1,600 for 1,000,000 iterations), the scale to compare with.
const SONNET_EXAMPLES: f64 = 1600.0 * 1.0e6;

/// One line per exploration row: whether each seed left the plateau, judged on validation (loss
/// at least [`PLATEAU_MARGIN`] below the plateau loss, accuracy above the best heuristic), and
/// the checkpoints warm-started rows began from.
fn exploration_lines(
    task: &str,
    base: Option<&TaskBaselines>,
    rows: &[&StudyRow],
    pairs: &[(&StudyRow, &StudyRow)],
) -> String {
    let mut out = String::new();
    let explored: Vec<&StudyRow> = rows
        .iter()
        .copied()
        .filter(|r| r.role == "exploration")
        .collect();
    for r in &explored {
        let mut line = format!("- **{}**, exploration at lr {}", r.model, r.lr);
        if !r.init_from.is_empty() {
            let from: Vec<String> = r
                .init_from
                .iter()
                .flatten()
                .map(|p| format!("`{p}`"))
                .collect();
            let _ = write!(line, ", warm-started from {}", from.join(", "));
        }
        let steps = r.values(Metric::Steps);
        if let (Some(batch), false) = (r.batch_size, steps.is_empty()) {
            let examples: Vec<f64> = steps.iter().map(|s| s * batch as f64).collect();
            let (mean, _) = mean_std(&examples);
            let _ = write!(
                line,
                "; {mean:.3e} training examples per seed (batch {batch}"
            );
            if task == "nth-farthest" {
                let _ = write!(
                    line,
                    "; Sonnet's example recipe for this task: {SONNET_EXAMPLES:.1e}"
                );
            }
            line.push(')');
        }
        let wall = r.values(Metric::ElapsedSeconds);
        if !wall.is_empty() && !steps.is_empty() {
            let (hours, _) = mean_std(&wall.iter().map(|w| w / 3600.0).collect::<Vec<_>>());
            let (steps_mean, _) = mean_std(&steps);
            let _ = write!(
                line,
                "; {hours:.2} h of wall-clock per seed, {:.0} ms per step with its evaluations (two \
                 jobs sharing the CPU)",
                hours * 3.6e6 / steps_mean
            );
        }
        if let Some(base) = base
            && let (Some(limit), Some((name, h))) = (base.plateau_loss, base.best_heuristic("val"))
        {
            // The library's rule, on this row and its task's baselines.
            let verdicts: Vec<bool> = (0..r.runs.len())
                .filter_map(|i| r.left_plateau(i, base))
                .collect();
            let left = verdicts.iter().filter(|&&v| v).count();
            let _ = write!(
                line,
                ": left the plateau in {left} of {} seeds (validation loss at least \
                 {PLATEAU_MARGIN} below the plateau loss {limit:.3}, and validation accuracy \
                 above `{name}` {h:.3})",
                verdicts.len()
            );
        }
        let _ = writeln!(out, "{line}.");
    }
    // The RMC against the LSTM, per start (fresh or warm) and learning rate, where both explored it.
    for (rmc, lstm) in pairs {
        let start = rmc.start();
        let mut rates: Vec<f64> = explored
            .iter()
            .filter(|r| r.model == "lstm" && r.start() == start && r.lr != rmc.lr)
            .map(|r| r.lr)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup(); // a longer run at a rate already listed
        let other_rates: Vec<String> = rates.iter().map(f64::to_string).collect();
        let tuning = if other_rates.is_empty() {
            "tuned for neither".to_owned()
        } else {
            format!(
                "the LSTM also at lr {} (rows above), the RMC at this rate only",
                other_rates.join(", ")
            )
        };
        for (what, metric) in [
            ("test accuracy", Metric::TestAccuracy),
            ("hard-split accuracy", Metric::HardAccuracy),
        ] {
            let line = compare(
                (what, "is above", "is below"),
                "rmc",
                &rmc.values(metric),
                "lstm",
                &lstm.values(metric),
            );
            let _ = writeln!(
                out,
                "  - {line} ({start}; both at lr {}; {tuning}).",
                rmc.lr
            );
        }
    }
    out
}

/// How many seeds beat a reference accuracy.
fn above(xs: &[f64], reference: f64) -> String {
    let n = xs.iter().filter(|&&x| x > reference).count();
    format!("{n} of {} seeds above it", xs.len())
}

/// A row's role as the table shows it: warm-started rows say so.
fn role_of(row: &StudyRow) -> String {
    if row.init_from.is_empty() {
        row.role.clone()
    } else {
        format!("{}, warm start", row.role)
    }
}

/// The section of one (task, variant).
fn section(summary: &StudySummary, task: &str, variant: &str, rows: &[&StudyRow]) -> String {
    let mut out = format!("## {task} — {variant}\n\n");
    let base = summary.baselines(task, variant);
    let chance = base.and_then(|b| b.chance);
    let plateau = base.and_then(|b| b.plateau);
    let heuristic = base.and_then(|b| b.best_heuristic("test"));
    let fmt = |x: Option<f64>| x.map_or("none".into(), |x| format!("{x:.3}"));
    let _ = writeln!(
        out,
        "Reference (test set): chance {}, plateau {}, best heuristic {}.\n",
        fmt(chance),
        fmt(plateau),
        heuristic.map_or("none".into(), |(n, a)| format!("`{n}` {a:.3}"))
    );
    let _ = writeln!(
        out,
        "| model | params | lr | role | test accuracy | validation accuracy | hard accuracy | step of the validation best |\n|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.model,
            r.params.map_or("—".into(), |p| p.to_string()),
            r.lr,
            role_of(r),
            r.mean_pm(Metric::TestAccuracy),
            r.mean_pm(Metric::ValAccuracy),
            r.mean_pm(Metric::HardAccuracy),
            mean_steps(&r.values(Metric::BestStep)),
        );
    }
    out.push('\n');
    let finals: Vec<&StudyRow> = rows.iter().copied().filter(|r| r.role == "final").collect();
    // A variant with a tuned LSTM of its own (the default, or a task size) compares with it; a
    // control or ablation (RMC only) with the default RMC.
    let own_lstm = summary.final_row(task, variant, "lstm");
    let baseline = match own_lstm {
        Some(r) => Some(("LSTM", r)),
        None => summary
            .final_row(task, "default", "rmc")
            .map(|r| ("the default RMC", r)),
    };
    for r in &finals {
        let model = r.model.as_str();
        let test = r.values(Metric::TestAccuracy);
        let mut line = format!("- **{model}**: test accuracy {}", mean_pm(&test));
        if let Some((name, h)) = heuristic {
            let _ = write!(
                line,
                "; best heuristic `{name}` {h:.3}: {}",
                above(&test, h)
            );
        }
        if let Some(p) = plateau {
            let _ = write!(line, "; plateau {p:.3}: {}", above(&test, p));
        }
        let _ = writeln!(line, ".");
        if let Some((name, theirs)) = baseline
            && !(own_lstm.is_some() && model == "lstm")
        {
            for (what, metric) in [
                (
                    ("test accuracy", "is above", "is below"),
                    Metric::TestAccuracy,
                ),
                (
                    ("hard-split accuracy", "is above", "is below"),
                    Metric::HardAccuracy,
                ),
                (
                    (
                        "steps to the validation best",
                        "needs more than",
                        "needs fewer than",
                    ),
                    Metric::BestStep,
                ),
            ] {
                let diff = compare(what, model, &r.values(metric), name, &theirs.values(metric));
                let _ = writeln!(line, "  - {diff}.");
            }
        }
        out += &line;
    }
    if finals.is_empty() {
        out += "- No final rows yet (selection or exploration runs only): no claim.\n";
    }
    out += &exploration_lines(task, base, rows, &summary.exploration_pairs(task, variant));
    let gains: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.role == "lr-selection")
        .flat_map(|r| {
            let name = format!("{} at {}", r.model, r.lr);
            r.values(Metric::CapGain)
                .into_iter()
                .map(move |g| (name.clone(), g))
        })
        .collect();
    if !gains.is_empty() {
        let held = gains.iter().filter(|(_, g)| *g <= CAP_GAIN).count();
        let failed: Vec<String> = gains
            .iter()
            .filter(|(_, g)| *g > CAP_GAIN)
            .map(|(name, g)| format!("{name} ({g:+.3})"))
            .collect();
        let _ = write!(
            out,
            "- Step cap: validation accuracy gained at most 0.01 over the last 20 % of the steps \
             in {held} of {} selection runs",
            gains.len()
        );
        if failed.is_empty() {
            let _ = writeln!(out, ".");
        } else {
            let _ = writeln!(out, "; still rising: {}.", failed.join(", "));
        }
    }
    out.push('\n');
    out
}

/// What the summarised runs cost, per task: runs, training examples and hours of wall-clock
/// (two jobs sharing the CPU), each run counted once (a final row repeats its selection run).
fn compute_table(summary: &StudySummary) -> String {
    let mut tasks: Vec<&str> = Vec::new();
    for r in &summary.rows {
        if !tasks.contains(&r.task.as_str()) {
            tasks.push(&r.task);
        }
    }
    let mut out = String::from(
        "## Compute\n\nEvery summarised run once, per task (wall-clock of training and its \
         evaluations, two jobs sharing the CPU).\n\n| task | runs | training examples | wall-clock |\n\
         |---|---|---|---|\n",
    );
    for task in tasks {
        let mut seen: Vec<&str> = Vec::new();
        let (mut examples, mut seconds) = (0.0, 0.0);
        for r in summary.rows.iter().filter(|r| r.task == task) {
            for (i, run) in r.runs.iter().enumerate() {
                if seen.contains(&run.as_str()) {
                    continue;
                }
                seen.push(run);
                let batch = r.batch_size.unwrap_or(0) as f64;
                examples += r.steps.get(i).copied().flatten().map_or(0.0, |s| s * batch);
                seconds += r.elapsed_s.get(i).copied().flatten().unwrap_or(0.0);
            }
        }
        let _ = writeln!(
            out,
            "| {task} | {} | {examples:.3e} | {:.1} h |",
            seen.len(),
            seconds / 3600.0
        );
    }
    out.push('\n');
    out
}

/// Writes `DIR/FINDINGS.md` from `DIR/summary.json` (and `DIR/NOTES.md` when present).
pub fn write(dir: &Path) -> Result<(), String> {
    let path = dir.join("summary.json");
    let summary = StudySummary::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in &summary.rows {
        let key = (r.task.as_str(), r.variant.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut out = String::from(
        "# Findings\n\nWritten by `rrnn study findings results/study` from `summary.json` (itself \
         written by `rrnn study summarize`); do not edit by hand. Accuracies are the \
         validation-best parameters of each run scored once on the test and hard sets; `final` \
         rows hold every seed at the learning rate chosen on validation (`select` runs only when no \
         final row exists). Intervals are 95 % Welch t intervals of the difference of means over \
         seeds. A verdict says \"above\" or \"below\" only when its interval excludes 0.\n\n",
    );
    for &(task, variant) in &keys {
        let members: Vec<&StudyRow> = summary.rows_of(task, variant).collect();
        out += &section(&summary, task, variant, &members);
    }
    out += &compute_table(&summary);
    if let Ok(notes) = std::fs::read_to_string(dir.join("NOTES.md")) {
        out += "## Notes\n\n";
        out += &notes;
    }
    let target = dir.join("FINDINGS.md");
    relational_rnn::checkpoint::write_atomic(&target, out.as_bytes()).map_err(|e| e.to_string())?;
    eprintln!("wrote {}", target.display());
    Ok(())
}
