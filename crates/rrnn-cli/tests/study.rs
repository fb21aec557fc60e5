//! `rrnn study summarize` on a tiny study trained here: rows per rate and role, the final row
//! joining the chosen selection run, per-seed numbers equal to each run's result.json, task
//! entries with the heuristics, and the errors that protect the protocol.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rrnn(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run rrnn")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A tiny tracking LSTM run into `root/rel` (6 steps; a later `--set steps=N` in `extra` wins).
fn train(root: &Path, rel: &str, lr: &str, seed: &str, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--task",
        "tracking",
        "--model",
        "lstm",
        "--set",
        "steps=6",
        "--batch",
        "4",
        "--lr",
        lr,
        "--seed",
        seed,
        "--set",
        "eval_every=3",
        "--set",
        "test_size=24",
        "--set",
        "hidden=8",
        "--out",
        rel,
    ];
    args.extend(extra);
    ok(&rrnn(root, &args));
}

fn read(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_study_summarizes_from_its_runs_and_refuses_a_final_rate_not_chosen_on_validation() {
    let root = std::env::temp_dir().join(format!("rrnn-study-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let study = "study/tracking/default/lstm";
    // lr 0 cannot move away from the initialisation; 0.01 moves. Selection on validation decides.
    for lr in ["0", "0.01"] {
        train(
            &root,
            &format!("{study}/select/lr={lr}/seed=0"),
            lr,
            "0",
            &[],
        );
    }
    let val = |lr: &str| {
        let r = read(root.join(format!("{study}/select/lr={lr}/seed=0/result.json")));
        (
            r["val_accuracy"].as_f64().unwrap(),
            -r["val_loss"].as_f64().unwrap(),
        )
    };
    let (chosen, other) = if val("0.01") >= val("0") {
        ("0.01", "0")
    } else {
        ("0", "0.01")
    };
    train(
        &root,
        &format!("{study}/final/lr={chosen}/seed=1"),
        chosen,
        "1",
        &[],
    );
    ok(&rrnn(&root, &["study", "summarize", "study"]));
    let summary = read(root.join("study/summary.json"));
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "two selection rows and one final row");
    let final_row = rows.iter().find(|r| r["role"] == "final").unwrap();
    assert_eq!(final_row["seeds"], serde_json::json!([0, 1]));
    assert_eq!(final_row["lr"].as_f64(), chosen.parse::<f64>().ok());
    for (i, run) in final_row["runs"].as_array().unwrap().iter().enumerate() {
        let result = read(root.join(run.as_str().unwrap()).join("result.json"));
        for key in [
            "val_accuracy",
            "test_accuracy",
            "test_loss",
            "hard_accuracy",
        ] {
            assert_eq!(final_row[key][i], result[key], "{key} of {run}");
        }
    }
    assert_eq!(
        summary["choices"][0]["lr"].as_f64(),
        chosen.parse::<f64>().ok()
    );
    let tasks = summary["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["task"], "tracking");
    assert_eq!(tasks[0]["chance"], 0.2);
    for split in ["val", "test", "hard"] {
        assert!(
            tasks[0]["heuristics"]["start_position"][split].is_f64(),
            "{split}"
        );
    }

    ok(&rrnn(&root, &["study", "findings", "study"]));
    let findings = std::fs::read_to_string(root.join("study/FINDINGS.md")).unwrap();
    assert!(findings.contains("## tracking — default"), "{findings}");
    assert!(findings.contains("(2 seeds)"), "{findings}");
    assert!(
        findings.contains("best heuristic `start_position`"),
        "{findings}"
    );
    assert!(
        findings.contains("| tracking | 3 | "),
        "three runs' compute: {findings}"
    );

    // Seeds at a rate validation did not choose are refused.
    train(
        &root,
        &format!("{study}/final/lr={other}/seed=2"),
        other,
        "2",
        &[],
    );
    let out = rrnn(&root, &["study", "summarize", "study"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not at the rate chosen on validation"),
        "{stderr}"
    );
    std::fs::remove_dir_all(root.join(format!("{study}/final/lr={other}"))).unwrap();

    // A final seed run to a smaller cap is refused; one that stopped early below it belongs, and
    // the row's cap is the larger one.
    let short = format!("{study}/final/lr={chosen}/seed=2");
    train(&root, &short, chosen, "2", &["--set", "steps=3"]);
    let out = rrnn(&root, &["study", "summarize", "study"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ran to a cap of 3 steps"), "{stderr}");
    std::fs::remove_dir_all(root.join(&short)).unwrap();
    let early = [
        "--set",
        "steps=5",
        "--set",
        "eval_every=1",
        "--set",
        "train.early_stopping.patience=1",
        "--set",
        "train.early_stopping.mode=maximize",
    ];
    train(&root, &short, chosen, "2", &early);
    assert_eq!(
        read(root.join(&short).join("result.json"))["stopped"]["reason"],
        "early_stopped"
    );
    ok(&rrnn(&root, &["study", "summarize", "study"]));
    let summary = read(root.join("study/summary.json"));
    let rows = summary["rows"].as_array().unwrap();
    let final_row = rows.iter().find(|r| r["role"] == "final").unwrap();
    assert_eq!(final_row["seeds"], serde_json::json!([0, 1, 2]));
    assert_eq!(final_row["steps_cap"], 6);
    std::fs::remove_dir_all(root.join(&short)).unwrap();

    // A run whose task is not the one its directory names is refused.
    train(
        &root,
        "study/babi-qa1/default/lstm/select/lr=0/seed=0",
        "0",
        "0",
        &[],
    );
    let out = rrnn(&root, &["study", "summarize", "study"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("its directory says `babi-qa1`"));
    std::fs::remove_dir_all(root).unwrap();
}

/// Exploration runs of one experiment form one row per start: a warm-started run (`--init-from`)
/// is its own row, listing the checkpoint it started from, and FINDINGS says for each row in how
/// many seeds validation left the plateau.
#[test]
fn warm_started_exploration_runs_are_their_own_row() {
    let root = std::env::temp_dir().join(format!("rrnn-study-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let explore = "study/tracking/default/lstm/explore";
    for seed in ["0", "1"] {
        train(
            &root,
            &format!("{explore}/cold/seed={seed}"),
            "0.01",
            seed,
            &[],
        );
    }
    let from = format!("{explore}/cold/seed=0/best.safetensors");
    train(
        &root,
        &format!("{explore}/warm/seed=0"),
        "0.01",
        "0",
        &["--init-from", &from],
    );
    ok(&rrnn(&root, &["study", "summarize", "study"]));
    let summary = read(root.join("study/summary.json"));
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (cold, warm): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r["init_from"].is_null());
    assert_eq!(cold[0]["seeds"], serde_json::json!([0, 1]));
    assert_eq!(warm[0]["seeds"], serde_json::json!([0]));
    assert_eq!(warm[0]["init_from"], serde_json::json!([from]));
    ok(&rrnn(&root, &["study", "findings", "study"]));
    let findings = std::fs::read_to_string(root.join("study/FINDINGS.md")).unwrap();
    assert!(
        findings.contains(&format!("warm-started from `{from}`")),
        "{findings}"
    );
    assert!(findings.contains("left the plateau in"), "{findings}");
    std::fs::remove_dir_all(root).unwrap();
}

/// Copies the JSON files of a study tree (configs, metrics, results; no checkpoints).
fn copy_json_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_json_tree(&path, &target);
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonl")
            || path.file_name().is_some_and(|n| n == "NOTES.md")
        {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn the_committed_study_summary_and_findings_are_what_the_commands_write() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let committed = repo.join("results/study");
    if !committed.join("summary.json").exists() {
        return; // no study committed yet
    }
    let root = std::env::temp_dir().join(format!("rrnn-study-committed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_json_tree(&committed, &root.join("results/study"));
    std::fs::remove_file(root.join("results/study/summary.json")).unwrap();
    ok(&rrnn(&root, &["study", "summarize", "results/study"]));
    ok(&rrnn(&root, &["study", "findings", "results/study"]));
    let (written, kept) = (
        read(root.join("results/study/summary.json")),
        read(committed.join("summary.json")),
    );
    if written != kept {
        // Name the first row that differs rather than printing two whole summaries.
        let rows = |v: &serde_json::Value| v["rows"].as_array().cloned().unwrap_or_default();
        let (w, k) = (rows(&written), rows(&kept));
        let first = w.iter().zip(&k).position(|(a, b)| a != b);
        panic!(
            "results/study/summary.json differs from what `rrnn study summarize` writes \
             ({} rows written, {} committed; first differing row: {:?}; run directories \
             without result.json, or uncommitted runs, change it)",
            w.len(),
            k.len(),
            first.map(|i| (&w[i]["runs"], &k[i]["runs"]))
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("results/study/FINDINGS.md")).unwrap(),
        std::fs::read_to_string(committed.join("FINDINGS.md")).unwrap(),
        "results/study/FINDINGS.md differs from what `rrnn study findings` writes"
    );
    std::fs::remove_dir_all(root).unwrap();
}
