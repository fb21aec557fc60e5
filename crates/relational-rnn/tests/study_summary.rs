//! `study::StudySummary` reads the committed `results/study/summary.json`: every final row's
//! per-seed values equal its runs' `result.json`, baselines and choices are found, and the
//! formatting never prints a ± over one seed.

use relational_rnn::experiment::read_outcome;
use relational_rnn::study::{Metric, StudySummary, compare, mean_pm};

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_committed_summary_reads_and_matches_its_runs() {
    let summary = StudySummary::read(repo().join("results/study/summary.json")).expect("readable");
    assert!(!summary.rows.is_empty());
    for row in summary.rows.iter().filter(|r| r.role == "final") {
        assert_eq!(row.runs.len(), row.seeds.len());
        for (i, dir) in row.runs.iter().enumerate() {
            let outcome = read_outcome(repo().join(dir)).expect("result.json");
            assert_eq!(row.test_accuracy[i], outcome.test_accuracy, "{dir}");
            assert_eq!(row.hard_accuracy[i], outcome.hard_accuracy, "{dir}");
        }
        assert!(summary.baselines(&row.task, &row.variant).is_some());
        if let Some(lr) = summary.chosen_lr(&row.task, &row.variant, &row.model) {
            assert_eq!(lr, row.lr, "a final row sits at the chosen rate");
        }
    }
    assert_eq!(
        summary.chosen_lr("tracking", "default", "no-such-model"),
        None
    );
    let lstm = summary
        .final_row("tracking", "default", "lstm")
        .expect("tracking LSTM");
    let rmc = summary
        .final_row("tracking", "default", "rmc")
        .expect("tracking RMC");
    assert!(lstm.values(Metric::TestAccuracy).len() >= 5);
    let (d, lo, hi) = compare(rmc, lstm, Metric::HardAccuracy).expect("two sides with spread");
    assert!(lo < d && d < hi);
    let base = summary.baselines("tracking", "default").expect("baselines");
    let (name, acc) = base.best_heuristic("test").expect("a heuristic");
    assert!(!name.is_empty() && (0.0..=1.0).contains(&acc));
    assert_eq!(summary.variants("tracking")[0], "default");
}

#[test]
fn one_seed_is_never_shown_with_a_spread() {
    assert_eq!(mean_pm(&[]), "—");
    assert_eq!(mean_pm(&[0.5]), "0.500 (1 seed)");
    assert_eq!(mean_pm(&[0.5, 0.7]), "0.600 ± 0.141 (2 seeds)");
}

/// An exploration row's seeds left the plateau exactly when their validation loss is
/// `PLATEAU_MARGIN` below the plateau loss and their validation accuracy above the best
/// heuristic; curves read from the committed runs are scaled to examples seen.
#[test]
fn left_plateau_follows_its_definition_and_curves_count_examples() {
    use relational_rnn::study::PLATEAU_MARGIN;
    let summary = StudySummary::read(repo().join("results/study/summary.json")).expect("readable");
    let row = summary
        .rows
        .iter()
        .find(|r| r.task == "nth-farthest" && r.variant == "4x1" && r.model == "rmc")
        .expect("the 4x1 RMC exploration row");
    let base = summary.baselines("nth-farthest", "4x1").expect("baselines");
    let (plateau_loss, (_, heuristic)) = (
        base.plateau_loss.expect("a plateau loss"),
        base.best_heuristic("val").expect("a heuristic"),
    );
    for i in 0..row.runs.len() {
        let (loss, acc) = (row.val_loss[i].unwrap(), row.val_accuracy[i].unwrap());
        let expected = loss <= plateau_loss - PLATEAU_MARGIN && acc > heuristic;
        assert_eq!(row.left_plateau(i, base), Some(expected), "seed index {i}");
    }
    let mut moved = row.clone();
    moved.val_loss[0] = Some(plateau_loss - PLATEAU_MARGIN / 2.0);
    assert_eq!(
        moved.left_plateau(0, base),
        Some(false),
        "loss not far enough below"
    );
    let (x, y) = row
        .curve_by_examples(repo(), 0, "val_loss")
        .expect("metrics.jsonl of the first run");
    let batch = row.batch_size.expect("a batch size") as f64;
    assert_eq!(x.len(), y.len());
    assert_eq!(x[0] % batch, 0.0);
    assert_eq!(row.start(), "fresh");
}

/// The report tables and figures show the summary's own numbers: every final row once, with its
/// `mean_pm` text; one exploration line per seed; one curve per seed and the task's references.
#[test]
fn report_tables_and_figures_show_the_summary() {
    use relational_rnn::study::{model_color, model_label};
    let summary = StudySummary::read(repo().join("results/study/summary.json")).expect("readable");
    let models = ["lstm", "rmc", "rrnn-cell"];
    let table = summary.final_table("tracking", &["default"], &models);
    let lines: Vec<&str> = table.lines().collect();
    let finals: Vec<_> = models
        .iter()
        .filter_map(|m| summary.final_row("tracking", "default", m))
        .collect();
    assert_eq!(
        lines.len(),
        1 + finals.len(),
        "a header and one line per row:\n{table}"
    );
    for (line, row) in lines[1..].iter().zip(&finals) {
        assert!(line.contains(model_label(&row.model)), "{line}");
        assert!(line.contains(&row.mean_pm(Metric::TestAccuracy)), "{line}");
    }
    let reference = summary.reference_line("tracking", "default", "test");
    let (name, h) = summary
        .baselines("tracking", "default")
        .and_then(|b| b.best_heuristic("test"))
        .expect("a heuristic");
    assert!(
        reference.contains(&format!("{h:.3} ({name})")),
        "{reference}"
    );

    let compared = summary.comparison_lines("tracking", ("default", "rmc"), ("default", "lstm"));
    assert_eq!(compared.len(), 3, "test, hard, steps");
    let (d, lo, hi) = compare(finals[1], finals[0], Metric::TestAccuracy).expect("seeds");
    assert!(
        compared[0].contains(&format!("{d:+.3} [{lo:+.3}, {hi:+.3}]")),
        "{}",
        compared[0]
    );
    assert!(
        summary
            .comparison_lines("tracking", ("no-such-variant", "rmc"), ("default", "lstm"))
            .is_empty()
    );
    // Models of one variant are named as models; a control by its variant.
    assert!(compared[0].contains("RMC − LSTM"), "{}", compared[0]);
    let sized = summary.comparison_lines("pairs", ("3-items", "rmc"), ("3-items", "lstm"));
    assert!(sized[0].contains("RMC − LSTM"), "{sized:?}");
    let control = summary.comparison_lines("tracking", ("no-attention", "rmc"), ("default", "rmc"));
    assert!(
        control[0].contains("no-attention − default RMC"),
        "{control:?}"
    );

    let variants = ["4x1"];
    let explore = summary.exploration_table("nth-farthest", &variants);
    let seeds: usize = summary
        .rows
        .iter()
        .filter(|r| r.task == "nth-farthest" && r.variant == "4x1" && r.role == "exploration")
        .map(|r| r.runs.len())
        .sum();
    assert_eq!(explore.lines().count(), 1 + seeds, "{explore}");
    let (loss, acc) = summary
        .exploration_curves(repo(), "nth-farthest", &variants)
        .expect("metrics of the committed runs");
    assert_eq!((loss.series.len(), acc.series.len()), (seeds, seeds));
    let base = summary.baselines("nth-farthest", "4x1").expect("baselines");
    assert!(loss.hlines.iter().any(|l| Some(l.y) == base.plateau_loss));
    assert_ne!(model_color("lstm"), model_color("rmc"));
    // Five RMC and five LSTM seeds at 4 x 1, same start and rate: two lines with intervals.
    let lines = summary.exploration_comparison_lines("nth-farthest", "4x1");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("RMC − LSTM") && lines[0].contains("test accuracy"));
    assert!(lines.iter().all(|l| l.contains('[')), "{lines:?}");
    assert!(
        summary
            .exploration_comparison_lines("tracking", "default")
            .is_empty()
    );

    // A warm-started run continues where its source run ended.
    let stages = ["4x4-1d", "4x4"];
    let (loss, _) = summary
        .exploration_curves(repo(), "nth-farthest", &stages)
        .expect("metrics of the committed runs");
    let warm = summary
        .rows
        .iter()
        .find(|r| r.variant == "4x4" && r.model == "rmc" && !r.init_from.is_empty())
        .expect("the warm-started 4x4 RMC row");
    let source = summary
        .rows
        .iter()
        .find(|r| r.variant == "4x4-1d" && r.model == "rmc")
        .expect("its first stage");
    let (source_x, _) = source
        .curve_by_examples(repo(), 0, "val_loss")
        .expect("metrics");
    let (warm_x, _) = warm
        .curve_by_examples(repo(), 0, "val_loss")
        .expect("metrics");
    let drawn = loss
        .series
        .iter()
        .find(|s| s.name.starts_with("RMC 4x4 (warm"))
        .expect("a warm RMC curve");
    let expected = (warm_x[0] + source_x[source_x.len() - 1]) / 1e6; // millions
    assert!(
        (drawn.x[0] - expected).abs() < 1e-12,
        "{} vs {expected}",
        drawn.x[0]
    );
}

/// Every run the summary cites records an experiment that reads back and agrees with its row;
/// a `config.json` without one is an error naming the file.
#[test]
fn run_configurations_read_back_and_agree_with_their_rows() {
    use relational_rnn::experiment::read_experiment;
    let summary = StudySummary::read(repo().join("results/study/summary.json")).expect("readable");
    for row in &summary.rows {
        for dir in &row.runs {
            let experiment = read_experiment(repo().join(dir)).expect("config.json");
            assert_eq!(Some(experiment.train.batch_size), row.batch_size, "{dir}");
            assert_eq!(experiment.train.optimizer.lr(), row.lr, "{dir}");
        }
    }
    let dir = std::env::temp_dir().join(format!("rrnn-read-experiment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("config.json"), r#"{"threads": 1}"#).expect("write");
    let err = read_experiment(&dir).expect_err("no experiment");
    assert!(err.to_string().contains("config.json"), "{err}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
