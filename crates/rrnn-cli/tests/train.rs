//! `rrnn train`, `eval` and `sweep` end to end on tiny runs: exact resume (after `--stop-at` and
//! after a real SIGINT), the NaN guard, one-line errors that leave nothing behind, config files,
//! eval, sweeps, and a committed run's metrics reproduced.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use relational_rnn::checkpoint;

mod common;
use common::{ok, rrnn};

/// A tiny RMC on Nth-farthest; the fixture in tests/data/nth-farthest-rmc-20 used these.
const TINY: [&str; 18] = [
    "--task",
    "nth-farthest",
    "--model",
    "rmc",
    "--batch",
    "8",
    "--set",
    "eval_every=5",
    "--set",
    "test_size=32",
    "--set",
    "slots=2",
    "--set",
    "heads=2",
    "--set",
    "model.head_hidden=[32]",
    "--set",
    "train.seed=0",
];

/// A fresh, not yet existing directory under the system temp dir.
fn temp(name: &str) -> PathBuf {
    common::fresh_dir("rrnn-cli", name)
}

fn train(steps: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--steps", steps, "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    rrnn(&args)
}

/// metrics.jsonl without `elapsed_s`.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("elapsed_s");
            v
        })
        .collect()
}

/// Tensors of a checkpoint as raw f32 bits, by name.
fn tensor_bits(path: &Path) -> Vec<(String, Vec<u64>)> {
    let (tensors, _) = checkpoint::read(path).unwrap();
    tensors
        .into_iter()
        .map(|(n, a)| (n, a.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(metrics(a), metrics(b));
    for file in ["last.safetensors", "best.safetensors"] {
        assert_eq!(
            tensor_bits(&a.join(file)),
            tensor_bits(&b.join(file)),
            "{file}"
        );
    }
}

/// `--threads 2` splits the large products (an LSTM with 1024 hidden units: 2·64·1024·4096 FLOP
/// per recurrent product, above the 64 MFLOP threshold) and Adam's update of its 4 M-element
/// weight, and trains to the same bits as one thread.
#[test]
fn threads_do_not_change_a_run() {
    let runs = [temp("threads-1"), temp("threads-2")];
    for (threads, dir) in ["1", "2"].into_iter().zip(&runs) {
        let args = [
            "train",
            "--task",
            "tracking",
            "--model",
            "lstm",
            "--batch",
            "64",
            "--set",
            "hidden=1024",
            "--set",
            "eval_every=2",
            "--set",
            "test_size=16",
            "--steps",
            "2",
            "--threads",
            threads,
            "--out",
        ];
        let mut args = args.to_vec();
        args.push(dir.to_str().unwrap());
        ok(&rrnn(&args));
    }
    assert_same_run(&runs[0], &runs[1]);
    for d in runs {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn stop_and_resume_is_bit_identical_to_a_straight_run() {
    let (straight, split) = (temp("straight"), temp("split"));
    ok(&train("20", &straight, &[]));
    // Stop mid-interval (step 7: two steps after the evaluation at 5), then resume to 20.
    let out = train("20", &split, &["--stop-at", "7"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    assert!(!split.join("result.json").exists());
    let (_, meta) = checkpoint::read(split.join("last.safetensors")).unwrap();
    assert_eq!(meta["step"], "7");
    ok(&rrnn(&["train", "--resume", split.to_str().unwrap()]));
    assert_same_run(&straight, &split);
    let last = tensor_bits(&split.join("last.safetensors"));
    assert!(last.iter().any(|(n, _)| n.starts_with("optim.m.")));
    assert!(last.iter().any(|(n, _)| n.starts_with("optim.v.")));

    // A budget of 10 extended to 20 by `--resume --steps 20` also matches (10 is an eval step).
    let extended = temp("extended");
    ok(&train("10", &extended, &[]));
    assert!(extended.join("result.json").exists());
    ok(&rrnn(&[
        "train",
        "--resume",
        extended.to_str().unwrap(),
        "--steps",
        "20",
    ]));
    assert_same_run(&straight, &extended);
    for d in [straight, split, extended] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn sigint_saves_a_checkpoint_and_resume_matches() {
    let (straight, killed) = (temp("sig-straight"), temp("sig-killed"));
    let mut args = vec![
        "train".to_owned(),
        "--steps".into(),
        "150".into(),
        "--out".into(),
        killed.to_str().unwrap().into(),
    ];
    args.extend(TINY.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !std::fs::read_to_string(killed.join("metrics.jsonl")).is_ok_and(|m| !m.is_empty()) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no evaluation yet");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(130) {
        let (_, meta) = checkpoint::read(killed.join("last.safetensors")).unwrap();
        let step: u64 = meta["step"].parse().unwrap();
        assert!(step < 150, "{step}");
        ok(&rrnn(&["train", "--resume", killed.to_str().unwrap()]));
    } else {
        // The run finished before the signal arrived: still a valid, complete run.
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok(&train("150", &straight, &[]));
    assert_same_run(&straight, &killed);
    for d in [straight, killed] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn rerunning_the_committed_tiny_run_gives_its_metrics() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nth-farthest-rmc-20");
    let dir = temp("fixture");
    ok(&train("20", &dir, &[]));
    assert_eq!(metrics(&dir), metrics(&fixture));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint() {
    let dir = temp("nan");
    let out = train("20", &dir, &["--lr", "1e30"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("non-finite loss"), "{stderr}");
    let (_, meta) = checkpoint::read(dir.join("last.safetensors")).unwrap();
    assert_eq!(meta["step"], "0");
    assert!(dir.join("config.json").exists() && !dir.join("result.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_is_one_error_line_and_leaves_no_directory() {
    let dir = temp("bad");
    let d = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (
            &["--task", "nope", "--model", "rmc"],
            "valid tasks: nth-farthest",
        ),
        (
            &["--task", "sorting", "--model", "gru"],
            "lstm, rmc, rrnn-cell",
        ),
        (
            &["--task", "sorting", "--model", "rmc", "--set", "foo=1"],
            "one of: steps",
        ),
        (
            &[
                "--task",
                "sorting",
                "--model",
                "rmc",
                "--set",
                "model.core.nope=1",
            ],
            "valid keys of `model.core`: ",
        ),
        (
            &["--task", "sorting", "--model", "rmc", "--set", "heads=3"],
            "does not divide",
        ),
        (
            &["--task", "sorting", "--model", "rmc", "--set", "slots=0"],
            "mem_slots",
        ),
        (
            &["--task", "sorting", "--model", "rmc", "--lr", "-1"],
            "invalid `lr`",
        ),
        (
            &["--task", "sorting", "--model", "lstm", "--set", "heads=2"],
            "does not apply",
        ),
        (&["--model", "rmc"], "no task"),
        (
            &[
                "--task",
                "sorting",
                "--model",
                "rmc",
                "--config",
                "/nonexistent.toml",
            ],
            "cannot read config",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["train", "--out", d];
        all.extend(args);
        let out = rrnn(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(!dir.exists(), "{args:?} left {d}");
    }
    for args in [
        &["train", "--resume", "/nonexistent-run"][..],
        &["eval", "--checkpoint", "/nonexistent.safetensors"],
        &["eval", "--checkpoint", "Cargo.toml"],
    ] {
        let out = rrnn(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    }
}

#[test]
fn existing_directories_are_refused_without_force_and_mismatched_checkpoints_rejected() {
    let (a, b) = (temp("exists-a"), temp("exists-b"));
    ok(&train("5", &a, &[]));
    let out = train("5", &a, &[]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("not empty"));
    ok(&train("5", &a, &["--force"]));
    // A directory of someone else's files is refused and left exactly as it was: no lock file.
    let foreign = temp("exists-foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let out = train("5", &foreign, &[]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("not empty"));
    let left: Vec<_> = std::fs::read_dir(&foreign)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["notes.txt"], "a refused start left files behind");
    std::fs::remove_dir_all(&foreign).unwrap();
    // A checkpoint of another network: a one-line error naming the tensor and both shapes.
    ok(&train("5", &b, &["--set", "model.head_hidden=[16]"]));
    std::fs::copy(b.join("last.safetensors"), a.join("last.safetensors")).unwrap();
    std::fs::remove_file(a.join("result.json")).unwrap();
    let out = rrnn(&["train", "--resume", a.to_str().unwrap(), "--steps", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has shape"), "{stderr}");
    for d in [a, b] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// `--init-from` starts a run from another run's parameters: the checkpoint written at step 0
/// holds them bit for bit, the optimiser starts fresh, and config.json records the file with its
/// content hash. Another network's checkpoint, a missing file and `--resume` are refused with one
/// error line, leaving no directory.
#[test]
fn init_from_warm_starts_and_refuses_other_networks() {
    let (a, b, c) = (temp("init-a"), temp("init-b"), temp("init-c"));
    ok(&train("10", &a, &[]));
    let from = a.join("best.safetensors");
    ok(&train(
        "5",
        &b,
        &["--init-from", from.to_str().unwrap(), "--stop-at", "0"],
    ));
    let params = |path: &Path| -> Vec<(String, Vec<u64>)> {
        let mut t = tensor_bits(path);
        t.retain(|(name, _)| !name.starts_with("optim."));
        t
    };
    assert_eq!(params(&b.join("last.safetensors")), params(&from));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
    let init = &config["init_from"];
    assert_eq!(init["role"], "init");
    assert_eq!(init["path"], from.to_str().unwrap());
    assert_eq!(init["content_hash"].as_str().unwrap().len(), 16);
    // The run goes on from there like any other (resume after the stop).
    ok(&rrnn(&["train", "--resume", b.to_str().unwrap()]));
    let refused = [
        (
            vec!["--set", "model.head_hidden=[16]"],
            from.clone(),
            "has shape",
        ),
        (vec![], a.join("no-such.safetensors"), "no-such.safetensors"),
    ];
    for (extra, path, expected) in refused {
        let mut args = extra;
        args.extend(["--init-from", path.to_str().unwrap()]);
        let out = train("5", &c, &args);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--init-from") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!c.exists(), "a refused start left {}", c.display());
    }
    let out = rrnn(&[
        "train",
        "--resume",
        b.to_str().unwrap(),
        "--init-from",
        from.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    for d in [a, b] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn config_file_early_stopping_schedule_and_eval() {
    let dir = temp("toml");
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("run.toml");
    std::fs::write(
        &toml,
        "[train]\nsteps = 30\neval_every = 5\n[train.early_stopping]\npatience = 1\nmode = \"maximize\"\n\
         [train.schedule]\nkind = \"step_decay\"\nevery = 10\ngamma = 0.5\n",
    )
    .unwrap();
    let out_dir = dir.join("run");
    let mut args = vec!["train", "--out", out_dir.to_str().unwrap()];
    args.extend(TINY);
    args.extend(["--config", toml.to_str().unwrap(), "--lr", "0"]);
    let result: serde_json::Value = serde_json::from_str(&ok(&rrnn(&args))).unwrap();
    // lr 0 never improves: the first evaluation is the best, patience 1 stops at the second.
    assert_eq!(result["stopped"]["reason"], "early_stopped");
    assert_eq!(result["step"], 10);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["experiment"]["train"]["schedule"]["gamma"], 0.5);
    assert_eq!(config["experiment"]["model"]["core"]["head_size"], 32);
    assert_eq!(config["experiment"]["model"]["num_classes"], 8);
    assert!(config["rrnn_version"].is_string());

    let best = out_dir.join("best.safetensors");
    let eval = |split: &str| -> serde_json::Value {
        let args = [
            "eval",
            "--checkpoint",
            best.to_str().unwrap(),
            "--split",
            split,
        ];
        serde_json::from_str(&ok(&rrnn(&args))).unwrap()
    };
    // best.safetensors holds the first (validation-best) evaluation's parameters; result.json
    // scores exactly those on test and hard.
    let (val, test, hard) = (eval("val"), eval("test"), eval("hard"));
    let first = &metrics(&out_dir)[0];
    assert_eq!(val["accuracy"], first["val_accuracy"]);
    assert_eq!(val["loss"], first["val_loss"]);
    assert_eq!(val["count"], 32);
    assert_eq!(result["best_step"], 5);
    assert_eq!(result["val_accuracy"], first["val_accuracy"]);
    assert_eq!(test["accuracy"], result["test_accuracy"]);
    assert_eq!(test["loss"], result["test_loss"]);
    assert_eq!(hard["accuracy"], result["hard_accuracy"]);
    assert!(
        first.get("test_accuracy").is_none(),
        "no per-evaluation test numbers"
    );

    // A larger cap does not restart a run that stopped early: no step, the same result.
    let before = metrics(&out_dir);
    let args = [
        "train",
        "--resume",
        out_dir.to_str().unwrap(),
        "--steps",
        "60",
    ];
    let resumed: serde_json::Value = serde_json::from_str(&ok(&rrnn(&args))).unwrap();
    assert_eq!(metrics(&out_dir), before);
    for key in [
        "step",
        "best_step",
        "stopped",
        "test_accuracy",
        "hard_accuracy",
    ] {
        assert_eq!(resumed[key], result[key], "{key}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["experiment"]["train"]["steps"], 60);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sweep_prints_runs_and_summarizes() {
    let dir = temp("sweep");
    let d = dir.to_str().unwrap();
    let mut base = vec![
        "sweep",
        "--grid",
        "heads=1,2",
        "--seeds",
        "2",
        "--steps",
        "5",
        "--out",
        d,
    ];
    base.extend(TINY);
    let mut print = base.clone();
    print.push("--print-commands");
    let commands = ok(&rrnn(&print));
    let lines: Vec<&str> = commands.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("rrnn train ") && lines[0].contains("--set heads=1"));
    assert!(
        lines[3].contains(&format!("--out {d}/heads=2/seed=1")),
        "{}",
        lines[3]
    );

    let bad = rrnn(&[&base[..], &["--grid", "slots=1,0"]].concat());
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8(bad.stderr).unwrap().contains("mem_slots"));

    ok(&rrnn(&base));
    let csv = ok(&rrnn(&["sweep", "summarize", d]));
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with(
        "heads,seeds_done,seeds,val_accuracy_mean,val_accuracy_std,test_accuracy_mean"
    ));
    assert!(
        rows[1].starts_with("1,2,2,") && rows[2].starts_with("2,2,2,"),
        "{csv}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.csv")).unwrap(),
        csv
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_second_sweep_adds_its_jobs_to_the_manifest() {
    let dir = temp("sweep-merge");
    let d = dir.to_str().unwrap();
    let sweep = |extra: &[&str]| {
        let mut args = vec!["sweep", "--out", d];
        args.extend(TINY);
        args.extend(extra);
        args.push("--print-commands");
        rrnn(&args)
    };
    let dirs = || -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let jobs = file["jobs"].as_array().unwrap();
        jobs.iter()
            .map(|j| j["dir"].as_str().unwrap().to_owned())
            .collect()
    };
    let grid = ["--grid", "heads=1,2", "--steps", "5"];
    ok(&sweep(&[&grid[..], &["--seeds", "2"]].concat()));
    ok(&sweep(
        &[&grid[..], &["--seed", "2", "--seeds", "1"]].concat(),
    ));
    ok(&sweep(&[&grid[..], &["--seeds", "1"]].concat())); // already listed: nothing added
    let want = [
        "heads=1/seed=0",
        "heads=1/seed=1",
        "heads=2/seed=0",
        "heads=2/seed=1",
    ]
    .into_iter()
    .chain(["heads=1/seed=2", "heads=2/seed=2"]);
    assert_eq!(dirs(), want.map(String::from).collect::<Vec<_>>());

    let before = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
    for (extra, message) in [
        (
            ["--grid", "heads=1", "--steps", "6"],
            "with other arguments",
        ),
        (["--grid", "slots=1", "--steps", "5"], "grid keys"),
    ] {
        let out = sweep(&extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
    let after = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
    assert_eq!(before, after, "a refused sweep leaves the manifest alone");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_task_name_trains_including_babi_kinds() {
    // Regression: `--task babi-qa2` must become `task = "babi", kind = "qa2"` in the config.
    for task in ["babi-qa1", "babi-qa3", "tracking", "pairs", "sorting"] {
        let dir = temp(&format!("task-{task}"));
        let out = rrnn(&[
            "train",
            "--task",
            task,
            "--model",
            "lstm",
            "--steps",
            "2",
            "--batch",
            "4",
            "--set",
            "test_size=8",
            "--set",
            "eval_every=2",
            "--out",
            dir.to_str().unwrap(),
        ]);
        ok(&out);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let t = &config["experiment"]["task"];
        if let Some(kind) = task.strip_prefix("babi-") {
            assert_eq!(
                (t["task"].as_str(), t["kind"].as_str()),
                (Some("babi"), Some(kind)),
                "{config}"
            );
        } else {
            assert_eq!(t["task"].as_str(), Some(task), "{config}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
