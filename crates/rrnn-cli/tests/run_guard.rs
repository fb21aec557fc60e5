//! What keeps a run directory whole over long runs: one owner at a time (the lock), clean stops
//! on SIGTERM and SIGHUP, the same result after SIGKILLs at any moment, stale temporary files
//! removed, damaged metrics kept aside, only finite checkpoints, resume refusing a checkpoint of
//! another experiment, and reproducible bytes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relational_rnn::checkpoint;

mod common;
use common::{ok, rrnn};

/// A tiny RMC on Nth-farthest evaluated every 5 steps (as in tests/train.rs).
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

/// A budget no test reaches: runs given it end by a signal or `--stop-at`.
const ENDLESS: &str = "1000000";

/// The one line of a failed command's stderr.
fn error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// A fresh, not yet existing directory under the system temp dir.
fn temp(name: &str) -> PathBuf {
    common::fresh_dir("rrnn-guard", name)
}

fn train_args<'a>(steps: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--steps", steps, "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    args
}

fn train(steps: &str, out: &Path, extra: &[&str]) -> Output {
    rrnn(&train_args(steps, out, extra))
}

fn resume(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--resume", dir.to_str().unwrap()];
    args.extend(extra);
    rrnn(&args)
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// An endless run, killed if the test fails before stopping it.
struct Running(Child);

impl Running {
    /// Starts an endless run in `dir` and returns once it has evaluated (and so checkpointed).
    fn start(dir: &Path) -> Self {
        let run = Self(spawn(&train_args(ENDLESS, dir, &[])));
        let t0 = Instant::now();
        while !std::fs::read_to_string(dir.join("metrics.jsonl")).is_ok_and(|m| !m.is_empty()) {
            assert!(t0.elapsed() < Duration::from_secs(60), "no evaluation yet");
            std::thread::sleep(Duration::from_millis(5));
        }
        run
    }

    /// Sends `signal` (`INT`, `TERM`, …) and returns the exit code.
    fn stop(mut self, signal: &str) -> Option<i32> {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.0.wait().unwrap().code()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// Tensors of a checkpoint as raw bits, by name.
fn tensor_bits(path: &Path) -> Vec<(String, Vec<u64>)> {
    let (tensors, _) = checkpoint::read(path).unwrap();
    tensors
        .into_iter()
        .map(|(n, a)| (n, a.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// Same metrics (but wall time) and same checkpoint tensors, bit for bit.
fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(metrics(a), metrics(b));
    for file in ["last.safetensors", "best.safetensors"] {
        let bits = |d: &Path| tensor_bits(&d.join(file));
        assert!(bits(a) == bits(b), "{file} differs");
    }
}

/// The step of a run's last checkpoint.
fn checkpoint_step(dir: &Path) -> u64 {
    let (_, meta) = checkpoint::read(dir.join("last.safetensors")).unwrap();
    meta["step"].parse().unwrap()
}

/// The steps of metrics.jsonl, in file order.
fn metric_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn two_processes_started_on_one_fresh_directory_never_both_run() {
    let dir = temp("race");
    for trial in 0..20 {
        let _ = std::fs::remove_dir_all(&dir);
        let args = train_args("10", &dir, &[]);
        let pair = [spawn(&args), spawn(&args)];
        let outs: Vec<Output> = pair.map(|c| c.wait_with_output().unwrap()).into();
        let winners = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(winners, 1, "trial {trial}: {outs:?}");
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        let stderr = error_line(loser);
        // Refused while the other runs, or (when it started late) because the run is there.
        assert!(
            stderr.contains("is in use by another process (pid ") || stderr.contains("not empty"),
            "trial {trial}: {stderr}"
        );
        assert_eq!(metric_steps(&dir), [5, 10], "trial {trial}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_resumes_of_one_run_never_both_run() {
    let (straight, dir) = (temp("resume-race-straight"), temp("resume-race"));
    ok(&train("40", &straight, &[]));
    for trial in 0..5 {
        let _ = std::fs::remove_dir_all(&dir);
        ok(&train("40", &dir, &["--stop-at", "7"]));
        let args = ["train", "--resume", dir.to_str().unwrap()];
        let pair = [spawn(&args), spawn(&args)];
        let outs: Vec<Output> = pair.map(|c| c.wait_with_output().unwrap()).into();
        // A resume that starts after the other has finished only says so.
        let ran = |o: &&Output| {
            o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("already finished")
        };
        assert_eq!(
            outs.iter().filter(ran).count(),
            1,
            "trial {trial}: {outs:?}"
        );
        assert_eq!(metric_steps(&dir), metric_steps(&straight), "trial {trial}");
    }
    for d in [straight, dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_busy_directory_is_refused_naming_it_and_the_holder_pid() {
    let dir = temp("busy");
    let d = dir.to_str().unwrap();
    let holder = Running::start(&dir);
    let expected = format!("{d} is in use by another process (pid {})", holder.0.id());
    // Short budgets: should the lock not hold, these end instead of running on.
    for out in [
        resume(&dir, &["--steps", "20"]),
        train("20", &dir, &["--force"]),
        train("20", &dir, &[]),
    ] {
        let stderr = error_line(&out);
        assert!(stderr.contains(&expected), "{stderr}");
    }
    // `--force` did not get to remove anything.
    assert!(dir.join("config.json").exists() && dir.join("last.safetensors").exists());
    assert_eq!(holder.stop("INT"), Some(130));
    // Once the holder has gone, the directory resumes, and a later --out --force starts over.
    ok(&resume(&dir, &["--stop-at", "12"]));
    ok(&train("5", &dir, &["--force"]));
    assert_eq!(metric_steps(&dir), [5]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_directory_holding_only_the_lock_file_is_empty_for_out() {
    let dir = temp("lock-only");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".lock"), "12345\n").unwrap();
    ok(&train("5", &dir, &[]));
    assert_eq!(metric_steps(&dir), [5]);
    // The lock file outlives the run and does not count as content either.
    assert!(dir.join(".lock").exists());
    let mut again = train("5", &dir, &[]);
    assert!(error_line(&again).contains("not empty"));
    again = train("5", &dir, &["--force"]);
    ok(&again);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Plants temporary files as killed writers leave them; returns their paths.
fn plant_temporaries(dir: &Path) -> Vec<PathBuf> {
    let names = [".last.safetensors.tmp-4242", ".metrics.jsonl.tmp-7"];
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    for p in &paths {
        std::fs::write(p, b"half a checkpoint").unwrap();
    }
    paths
}

#[test]
fn stale_temporary_files_go_on_start_resume_and_force() {
    let dir = temp("temporaries");
    // A directory with only temporaries, a lock file and an empty metrics file is empty.
    std::fs::create_dir_all(&dir).unwrap();
    let mut planted = plant_temporaries(&dir);
    std::fs::write(dir.join(".lock"), b"").unwrap();
    std::fs::write(dir.join("metrics.jsonl"), b"").unwrap();
    ok(&train("20", &dir, &["--stop-at", "7"]));
    assert!(planted.iter().all(|p| !p.exists()));

    planted = plant_temporaries(&dir);
    // Not the temporary file of an atomic write: kept.
    std::fs::write(dir.join("notes.tmp-1"), b"mine").unwrap();
    ok(&resume(&dir, &["--stop-at", "9"]));
    assert!(planted.iter().all(|p| !p.exists()));
    assert!(dir.join("notes.tmp-1").exists());

    planted = plant_temporaries(&dir);
    ok(&train("5", &dir, &["--force"]));
    assert!(planted.iter().all(|p| !p.exists()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_start_killed_before_config_json_leaves_a_directory_out_takes() {
    let dir = temp("half-start");
    // A diverging run keeps its step-0 checkpoint; without config.json, what is left is what a
    // start killed just before writing config.json leaves.
    assert_eq!(train("20", &dir, &["--lr", "1e30"]).status.code(), Some(1));
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let refused = resume(&dir, &[]);
    assert!(error_line(&refused).contains("is not a run directory"));
    ok(&train("5", &dir, &[]));
    assert_eq!(metric_steps(&dir), [5]);

    // A later checkpoint without config.json is not a start's leftover: refused, kept.
    let other = temp("half-start-other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(dir.join("last.safetensors"), other.join("last.safetensors")).unwrap();
    let out = train("5", &other, &[]);
    assert!(error_line(&out).contains("not empty (it holds last.safetensors)"));
    assert!(other.join("last.safetensors").exists());
    for d in [dir, other] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn sigterm_and_sighup_save_a_checkpoint_like_ctrl_c_and_resume_matches() {
    let (straight, killed) = (temp("term-straight"), temp("term-killed"));
    let run = Running::start(&killed);
    assert_eq!(run.stop("TERM"), Some(143));
    let step = checkpoint_step(&killed);
    assert!(step >= 5, "{step}");
    assert!(!killed.join("result.json").exists());
    // Resume a few steps past the signal, against a run stopped there without one.
    let stop = (step + 7).to_string();
    ok(&resume(&killed, &["--stop-at", &stop]));
    ok(&train(ENDLESS, &straight, &["--stop-at", &stop]));
    assert_same_run(&straight, &killed);

    let hung_up = temp("hup");
    let run = Running::start(&hung_up);
    assert_eq!(run.stop("HUP"), Some(129));
    assert!(checkpoint_step(&hung_up) >= 5);
    for d in [straight, killed, hung_up] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Every `metrics.jsonl.damaged-*` file of `dir`.
fn damaged_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("metrics.jsonl.damaged-")
        })
        .collect()
}

/// Stops a run at step 17 (metrics at 5, 10, 15), damages its metrics.jsonl with `damage`,
/// resumes it to 20 and checks the damaged file was kept byte for byte and named in a warning.
/// Returns the run directory.
fn resume_damaged(name: &str, damage: impl FnOnce(&str) -> String) -> PathBuf {
    let dir = temp(name);
    ok(&train("20", &dir, &["--stop-at", "17"]));
    let path = dir.join("metrics.jsonl");
    let damaged = damage(&std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &damaged).unwrap();
    let out = resume(&dir, &[]);
    ok(&out);
    let kept = damaged_files(&dir);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), damaged);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warning = stderr.lines().find(|l| l.starts_with("warning: ")).unwrap();
    assert!(
        warning.contains(&kept[0].display().to_string()),
        "{warning}"
    );
    dir
}

#[test]
fn a_corrupt_middle_metrics_line_is_kept_aside_and_later_records_survive() {
    let straight = temp("metrics-straight");
    ok(&train("20", &straight, &[]));
    let dir = resume_damaged("metrics-corrupt", |text| {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        format!("{}\n{{\"step\":10,\"tra#garbage\n{}\n", lines[0], lines[2])
    });
    // Only the corrupt record (step 10) is missing; 15 was after it and is still there.
    let mut expected = metrics(&straight);
    expected.remove(1);
    assert_eq!(metrics(&dir), expected);
    assert_eq!(metric_steps(&dir), [5, 15, 20]);
    for d in [straight, dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_metrics_file_cut_mid_line_is_kept_aside_and_rebuilt() {
    let straight = temp("metrics-cut-straight");
    ok(&train("20", &straight, &[]));
    // Cut inside the last record (step 15), as a full disk or a crash mid-append leaves it.
    let dir = resume_damaged("metrics-cut", |text| {
        let cut = text.trim_end().len() - 20;
        text[..cut].to_owned()
    });
    let mut expected = metrics(&straight);
    expected.remove(2);
    assert_eq!(metrics(&dir), expected);
    assert_eq!(metric_steps(&dir), [5, 10, 20]);

    // --force starts the directory over, damaged metrics included.
    ok(&train("5", &dir, &["--force"]));
    assert!(damaged_files(&dir).is_empty());
    for d in [straight, dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn non_finite_parameters_are_never_checkpointed() {
    let dir = temp("overflow");
    // lr 1e39 overflows every weight in the first update while its loss was finite; the
    // evaluation after it must not overwrite the step-0 checkpoint nor write a best.
    let out = train("5", &dir, &["--lr", "1e39", "--set", "eval_every=1"]);
    let stderr = error_line(&out);
    assert!(
        stderr.contains("training diverged: `") && stderr.contains("is not finite at step 1"),
        "{stderr}"
    );
    assert_eq!(checkpoint_step(&dir), 0);
    let (tensors, _) = checkpoint::read(dir.join("last.safetensors")).unwrap();
    assert!(tensors.values().all(|t| t.iter().all(|x| x.is_finite())));
    assert!(!dir.join("best.safetensors").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_refuses_a_non_finite_checkpoint_and_a_missing_or_broken_best() {
    let dir = temp("bad-checkpoints");
    ok(&train("20", &dir, &["--stop-at", "7"]));
    let last = dir.join("last.safetensors");
    let good_last = std::fs::read(&last).unwrap();
    let (tensors, meta) = checkpoint::read(&last).unwrap();
    let mut f32s: Vec<(String, relational_rnn::ndarray::ArrayD<f32>)> = tensors
        .into_iter()
        .map(|(n, a)| (n, a.mapv(|x| x as f32)))
        .collect();
    let poisoned = f32s
        .iter()
        .position(|(n, _)| n.starts_with("optim.v."))
        .unwrap();
    *f32s[poisoned].1.iter_mut().next().unwrap() = f32::NAN;
    let bytes = checkpoint::encode(f32s.iter().map(|(n, a)| (n.as_str(), a)), &meta).unwrap();
    std::fs::write(&last, bytes).unwrap();
    let stderr = error_line(&resume(&dir, &[]));
    let name = &f32s[poisoned].0;
    assert!(
        stderr.contains(&format!("tensor `{name}` is not finite")),
        "{stderr}"
    );
    std::fs::write(&last, good_last).unwrap();

    // The checkpoint records the best of step 5: best.safetensors must be there and load.
    let best = dir.join("best.safetensors");
    let good_best = std::fs::read(&best).unwrap();
    std::fs::remove_file(&best).unwrap();
    let stderr = error_line(&resume(&dir, &[]));
    assert!(
        stderr.contains("records a best at step 5") && stderr.contains("best.safetensors"),
        "{stderr}"
    );
    std::fs::write(&best, &good_best[..good_best.len() / 2]).unwrap();
    let stderr = error_line(&resume(&dir, &[]));
    assert!(stderr.contains("not a valid checkpoint"), "{stderr}");
    std::fs::write(&best, good_best).unwrap();
    ok(&resume(&dir, &[]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_refuses_a_config_edited_since_the_checkpoint_but_for_steps() {
    let dir = temp("edited-config");
    ok(&train("20", &dir, &["--stop-at", "7"]));
    let path = dir.join("config.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut config: serde_json::Value = serde_json::from_str(&original).unwrap();
        change(&mut config["experiment"]);
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    };
    edit(&|e| {
        e["train"]["seed"] = 3.into();
        e["train"]["optimizer"]["lr"] = 0.5.into();
        e["train"]["steps"] = 30.into();
    });
    let stderr = error_line(&resume(&dir, &[]));
    assert!(
        stderr.contains("differ in train.optimizer.lr, train.seed);"),
        "{stderr}"
    );
    // A larger budget alone is what --resume --steps writes: accepted.
    edit(&|e| e["train"]["steps"] = 30.into());
    ok(&resume(&dir, &[]));
    assert_eq!(*metric_steps(&dir).last().unwrap(), 30);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn identical_runs_write_identical_checkpoint_bytes() {
    let (a, b, split) = (temp("bytes-a"), temp("bytes-b"), temp("bytes-split"));
    ok(&train("12", &a, &[]));
    ok(&train("12", &b, &[]));
    // Stopped and resumed: the same bytes too, wall time being in run_state.json.
    ok(&train("12", &split, &["--stop-at", "7"]));
    let state = split.join("run_state.json");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["step"], 7);
    assert!(saved["elapsed_s"].as_f64().unwrap() > 0.0);
    std::fs::write(&state, r#"{"step": 7, "elapsed_s": 1000.0}"#).unwrap();
    ok(&resume(&split, &[]));
    for file in ["last.safetensors", "best.safetensors"] {
        let bytes = |d: &Path| std::fs::read(d.join(file)).unwrap();
        assert!(
            bytes(&a) == bytes(&b),
            "{file} differs between identical runs"
        );
        assert!(bytes(&a) == bytes(&split), "{file} differs after a resume");
    }
    // The wall time went on from run_state.json's.
    let text = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["elapsed_s"].as_f64().unwrap() > 1000.0, "{last}");
    for d in [a, b, split] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// The number of records in `dir`'s metrics.jsonl (0 when it does not exist yet).
fn records(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl")).map_or(0, |m| m.lines().count())
}

/// SIGKILL (no chance to save) up to [`KILLS`] times, each a seeded random 0–40 ms after the run
/// has written a new metrics record, so kills land inside checkpoint and metrics writes as well
/// as between them; a resume follows each kill, then a last resume runs to the end. The run must
/// end exactly as an uninterrupted run, bit for bit, with no temporary file left.
#[test]
fn runs_killed_at_random_moments_finish_as_if_never_killed() {
    const STEPS: &str = "80";
    const KILLS: usize = 25;
    let (straight, killed) = (temp("kill9-straight"), temp("kill9-killed"));
    ok(&train(STEPS, &straight, &[]));
    let mut state = 0x2545_f491_4f6c_dd1d_u64; // xorshift64: the same schedule every run
    let mut next_delay = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_micros(state % 40_000)
    };
    let mut kills = 0;
    while !killed.join("result.json").exists() {
        let args: Vec<String> = if killed.join("config.json").exists() {
            vec![
                "train".into(),
                "--resume".into(),
                killed.display().to_string(),
            ]
        } else {
            train_args(STEPS, &killed, &[])
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let before = records(&killed);
        let mut child = Running(spawn(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        if kills < KILLS {
            // Wait for progress (a new record, or the end), then a random moment.
            let t0 = Instant::now();
            while records(&killed) <= before && child.0.try_wait().unwrap().is_none() {
                assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(next_delay());
            if child.0.try_wait().unwrap().is_none() {
                child.0.kill().unwrap(); // SIGKILL
                child.0.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let status = child.0.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{stderr}");
    }
    assert!(
        kills >= 5,
        "only {kills} kills: the schedule no longer interrupts the run"
    );
    assert_same_run(&straight, &killed);
    let outcome = |d: &Path| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("result.json")).unwrap()).unwrap();
        (
            v["best_step"].clone(),
            v["test_accuracy"].clone(),
            v["hard_accuracy"].clone(),
        )
    };
    assert_eq!(outcome(&straight), outcome(&killed));
    let litter: Vec<PathBuf> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
    println!("survived {kills} SIGKILLs, each after new progress");
    for d in [straight, killed] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
