//! The summary as a reader sees it: aligned text tables, comparison lines and figures, every number
//! read from `summary.json` (and, for curves, from the runs' `metrics.jsonl`), so a notebook cell
//! only chooses what to show.

use std::path::Path;

use super::{Metric, StudyRow, StudySummary, compare};
use crate::plot::{Bar, BarChart, LineChart, PlotError, RefLine, Series};

/// A model's name as tables and legends print it.
pub fn model_label(model: &str) -> &'static str {
    match model {
        "lstm" => "LSTM",
        "rmc" => "RMC",
        "rrnn-cell" => "hybrid cell",
        _ => "other",
    }
}

/// A model's palette index, the same in every figure.
pub fn model_color(model: &str) -> usize {
    match model {
        "lstm" => 0,
        "rmc" => 1,
        _ => 2,
    }
}

/// `0.123`, or `—` for no value.
fn fmt3(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.3}"))
}

impl StudySummary {
    /// `test: chance 0.200, plateau 0.462, best heuristic 0.459 (start_position)` for (task,
    /// variant) on `split`.
    pub fn reference_line(&self, task: &str, variant: &str, split: &str) -> String {
        let Some(b) = self.baselines(task, variant) else {
            return format!("{split}: no baselines");
        };
        let h = b
            .best_heuristic(split)
            .map_or("none".to_string(), |(n, a)| format!("{a:.3} ({n})"));
        format!(
            "{split}: chance {}, plateau {}, best heuristic {h}",
            fmt3(b.chance),
            fmt3(b.plateau)
        )
    }

    /// The `final` rows of `task` for every variant × model that has one, as an aligned table:
    /// parameters, rate, validation, test and hard accuracy (mean ± std over seeds) and the mean
    /// step of the validation best.
    pub fn final_table(&self, task: &str, variants: &[&str], models: &[&str]) -> String {
        let mut out = format!(
            "{:<20} {:<11} {:>7} {:>6}  {:<24} {:<24} {:<24} {:>9}\n",
            "variant",
            "model",
            "params",
            "lr",
            "validation acc.",
            "test acc.",
            "hard acc.",
            "best step"
        );
        for variant in variants {
            for model in models {
                let Some(r) = self.final_row(task, variant, model) else {
                    continue;
                };
                let steps = r.values(Metric::BestStep);
                let best = if steps.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.0}", steps.iter().sum::<f64>() / steps.len() as f64)
                };
                out += &format!(
                    "{:<20} {:<11} {:>7} {:>6}  {:<24} {:<24} {:<24} {:>9}\n",
                    variant,
                    model_label(model),
                    r.params.map_or("—".into(), |p| p.to_string()),
                    format!("{:.0e}", r.lr),
                    r.mean_pm(Metric::ValAccuracy),
                    r.mean_pm(Metric::TestAccuracy),
                    r.mean_pm(Metric::HardAccuracy),
                    best
                );
            }
        }
        out
    }

    /// (task, variant, model) against (task, base variant, base model), one line per test
    /// accuracy, hard accuracy and step of the validation best: the mean difference over seeds
    /// with its 95 % Welch t interval, as the findings compute it. Empty when a row is missing.
    pub fn comparison_lines(
        &self,
        task: &str,
        (variant, model): (&str, &str),
        (base_variant, base_model): (&str, &str),
    ) -> Vec<String> {
        let (Some(a), Some(b)) = (
            self.final_row(task, variant, model),
            self.final_row(task, base_variant, base_model),
        ) else {
            return Vec::new();
        };
        // Within one variant the models are named; a control or ablation by its variant.
        let mine = if variant == base_variant {
            model_label(model).to_string()
        } else {
            variant.to_string()
        };
        let theirs = if base_variant == "default" && base_model == "rmc" {
            "default RMC"
        } else {
            model_label(base_model)
        };
        let whats = [
            ("test accuracy", Metric::TestAccuracy),
            ("hard accuracy", Metric::HardAccuracy),
            ("steps to best", Metric::BestStep),
        ];
        difference_lines(task, &format!("{mine} − {theirs}"), (a, b), &whats)
    }

    /// The RMC against the LSTM on the `exploration` rows of (task, variant), per start (fresh or
    /// warm) at the RMC's learning rate: test and hard accuracy, as [`Self::comparison_lines`].
    /// Empty where the two did not explore the same start and rate.
    pub fn exploration_comparison_lines(&self, task: &str, variant: &str) -> Vec<String> {
        let whats = [
            ("test accuracy", Metric::TestAccuracy),
            ("hard accuracy", Metric::HardAccuracy),
        ];
        let mut out = Vec::new();
        for (rmc, lstm) in self.exploration_pairs(task, variant) {
            let label = format!("{variant} {}: RMC − LSTM", rmc.start());
            out.extend(difference_lines(task, &label, (rmc, lstm), &whats));
        }
        out
    }

    /// Bars of `metric` for `(label, task, variant)` groups, the `final` rows of `models` side by
    /// side with every seed as a point, and each group's chance, plateau and best heuristic on
    /// `split` as reference lines.
    ///
    /// # Errors
    /// As [`Bar::seeds`].
    pub fn accuracy_bars(
        &self,
        title: &str,
        (metric, split): (Metric, &str),
        groups: &[(&str, &str, &str)],
        models: &[&str],
    ) -> Result<BarChart, PlotError> {
        let mut chart = BarChart::new(title, "accuracy");
        for &(name, task, variant) in groups {
            let mut bars = Vec::new();
            for &model in models {
                let Some(r) = self.final_row(task, variant, model) else {
                    continue;
                };
                let v = r.values(metric);
                if !v.is_empty() {
                    bars.push(Bar::seeds(model_label(model), &v)?.with_color(model_color(model)));
                }
            }
            let mut lines = Vec::new();
            if let Some(b) = self.baselines(task, variant) {
                lines.extend(b.chance.map(|c| RefLine::new("chance", c)));
                lines.extend(b.plateau.map(|p| RefLine::new("plateau", p)));
                lines.extend(
                    b.best_heuristic(split)
                        .map(|(_, h)| RefLine::new("best heuristic", h)),
                );
            }
            if !bars.is_empty() {
                chart = chart.with_group_lines(name, bars, lines);
            }
        }
        chart.y_range = Some((0.0, 1.05));
        Ok(chart)
    }

    /// Every seed of the `exploration` rows of `task` in `variants`, one line each: variant,
    /// model, fresh or warm start, learning rate, step cap, seed, validation loss, whether it left
    /// the plateau ([`StudyRow::left_plateau`](super::StudyRow::left_plateau)), test and hard
    /// accuracy.
    pub fn exploration_table(&self, task: &str, variants: &[&str]) -> String {
        let mut out = format!(
            "{:<7} {:<5} {:<10} {:>5} {:>7} {:>4} {:>9} {:>12} {:>9} {:>9}\n",
            "size",
            "model",
            "start",
            "lr",
            "steps",
            "seed",
            "val loss",
            "left plateau",
            "test acc.",
            "hard acc."
        );
        for r in self.rows.iter().filter(|r| {
            r.task == task && r.role == "exploration" && variants.contains(&r.variant.as_str())
        }) {
            let base = self.baselines(task, &r.variant);
            for k in 0..r.runs.len() {
                let left = base
                    .and_then(|b| r.left_plateau(k, b))
                    .map_or("—", |l| if l { "yes" } else { "no" });
                out += &format!(
                    "{:<7} {:<5} {:<10} {:>5} {:>7} {:>4} {:>9} {:>12} {:>9} {:>9}\n",
                    r.variant,
                    model_label(&r.model),
                    r.start(),
                    format!("{:.0e}", r.lr),
                    r.steps_cap.map_or("—".to_string(), |c| c.to_string()),
                    r.seeds[k],
                    fmt3(r.val_loss[k]),
                    left,
                    fmt3(r.test_accuracy[k]),
                    fmt3(r.hard_accuracy[k])
                );
            }
        }
        out
    }

    /// Validation loss and validation accuracy of every seed of the `exploration` rows of `task`
    /// in `variants`, against training examples seen (millions), one colour and legend entry per
    /// model and stage (fresh, warm start, a `-1d` first stage; the rates it covers counted); the
    /// plateau loss, the plateau and the best heuristic on validation of the last variant as
    /// reference lines. A warm-started run's
    /// curve continues from the examples its source run had seen by its end, so the x axis counts
    /// the whole procedure. `root` is where the run paths start (the repository).
    ///
    /// # Errors
    /// When a run's `metrics.jsonl` cannot be read.
    pub fn exploration_curves(
        &self,
        root: impl AsRef<Path>,
        task: &str,
        variants: &[&str],
    ) -> std::io::Result<(LineChart, LineChart)> {
        let title = variants.join(", then ");
        let x_label = "training examples seen (millions)";
        let mut loss = LineChart::new(
            format!("{task} {title}: validation loss"),
            x_label,
            "cross-entropy",
        );
        let mut acc = LineChart::new(
            format!("{task} {title}: validation accuracy"),
            x_label,
            "accuracy",
        );
        let millions = |x: Vec<f64>| x.into_iter().map(|e| e / 1e6).collect::<Vec<_>>();
        let rows: Vec<&StudyRow> = self
            .rows
            .iter()
            .filter(|r| {
                r.task == task && r.role == "exploration" && variants.contains(&r.variant.as_str())
            })
            .collect();
        // One legend entry per (model, variant, start), naming how many rates it covers.
        let key = |r: &StudyRow| (r.model.clone(), r.variant.clone(), r.start());
        let mut named = Vec::new();
        for r in rows.iter().copied() {
            let stage = if r.variant.ends_with("-1d") {
                2
            } else if r.init_from.is_empty() {
                0
            } else {
                1
            };
            let color = model_color(&r.model) + 3 * stage;
            let rates = rows.iter().filter(|o| key(o) == key(r)).count();
            let mut first = !named.contains(&key(r));
            named.push(key(r));
            for k in 0..r.runs.len() {
                let name = if std::mem::take(&mut first) {
                    let rates = if rates > 1 {
                        format!(", {rates} rates")
                    } else {
                        String::new()
                    };
                    format!(
                        "{} {} ({}{rates})",
                        model_label(&r.model),
                        r.variant,
                        r.start()
                    )
                } else {
                    String::new()
                };
                let offset = match r.init_from.get(k).cloned().flatten() {
                    Some(source) => self.examples_seen_by(root.as_ref(), &source)?,
                    None => 0.0,
                };
                let shift = |x: Vec<f64>| x.into_iter().map(|e| e + offset).collect::<Vec<_>>();
                let (x, l) = r.curve_by_examples(root.as_ref(), k, "val_loss")?;
                let (x2, a) = r.curve_by_examples(root.as_ref(), k, "val_accuracy")?;
                let (x, x2) = (shift(x), shift(x2));
                loss =
                    loss.with_series(Series::new(name.clone(), millions(x), l).with_color(color));
                acc = acc.with_series(Series::new(name, millions(x2), a).with_color(color));
            }
        }
        if let Some(b) = variants.last().and_then(|v| self.baselines(task, v)) {
            if let Some(l) = b.plateau_loss {
                loss = loss.with_hline("plateau loss", l);
            }
            if let Some(p) = b.plateau {
                acc = acc.with_hline("plateau", p);
            }
            if let Some((name, h)) = b.best_heuristic("val") {
                acc = acc.with_hline(format!("{name} heuristic"), h);
            }
        }
        Ok((loss, acc))
    }

    /// Training examples the run holding checkpoint `file` (a path as the summary records it) had
    /// seen at its last evaluation; 0 when no row of the summary lists that run.
    fn examples_seen_by(&self, root: &Path, file: &str) -> std::io::Result<f64> {
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        for r in &self.rows {
            if let Some(k) = r.runs.iter().position(|run| Path::new(run) == dir) {
                let (x, _) = r.curve_by_examples(root, k, "val_loss")?;
                return Ok(x.last().copied().unwrap_or(0.0));
            }
        }
        Ok(0.0)
    }
}

/// One line per metric: `a − b` over seeds with its 95 % Welch t interval, and whether the
/// interval excludes 0.
fn difference_lines(
    task: &str,
    label: &str,
    (a, b): (&StudyRow, &StudyRow),
    whats: &[(&str, Metric)],
) -> Vec<String> {
    whats
        .iter()
        .map(|&(what, metric)| {
            let digits = if metric == Metric::BestStep { 0 } else { 3 };
            let verdict = match compare(a, b, metric) {
                Some((d, lo, hi)) => format!(
                    "{d:+.digits$} [{lo:+.digits$}, {hi:+.digits$}]  {}",
                    if lo > 0.0 || hi < 0.0 {
                        "interval excludes 0"
                    } else {
                        "no difference shown"
                    }
                ),
                None => "too few seeds or no spread on either side".to_string(),
            };
            format!("{task:<9} {label:<32} {what:<14} {verdict}")
        })
        .collect()
}
