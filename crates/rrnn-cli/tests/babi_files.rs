//! Real bAbI files through the CLI: `rrnn train --babi-dir` records the files it read and scores
//! the test file; `rrnn eval --babi-file` scores a checkpoint on any file of its task (the same
//! number as the run's test score on the same file, a byte-order mark changing nothing), also
//! for a model trained on generated English stories; a resumed run refuses changed data.
//! The refusals (unknown words with file:line, empty files, missing files) are rows of
//! tests/hostile.rs.

use std::path::{Path, PathBuf};
use std::process::Output;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::tasks::babi::{BabiKind, Story, generate_english_story, write_babi};
use serde_json::Value;

mod common;
use common::{ok, rrnn};

/// A tiny LSTM: batch 8, 16 hidden units, a [16] head, evaluation every 2 steps.
const TINY: [&str; 12] = [
    "--model",
    "lstm",
    "--batch",
    "8",
    "--set",
    "eval_every=2",
    "--set",
    "hidden=16",
    "--set",
    "model.head_hidden=[16]",
    "--set",
    "train.seed=0",
];

/// The one JSON line of stdout.
fn json_line(out: &Output) -> Value {
    let stdout = ok(out);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fresh, empty directory under the system temp dir.
fn temp(name: &str) -> PathBuf {
    let dir = common::fresh_dir("rrnn-cli-babi", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The hand-written qa1 file in the real format (library test data).
fn sample_qa1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../relational-rnn/tests/data/babi/qa1_single-supporting-fact_sample.txt")
}

fn english_qa1(count: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let stories: Vec<Story> = (0..count)
        .map(|_| generate_english_story(BabiKind::Qa1, 10, &mut rng))
        .collect();
    write_babi(&stories)
}

fn train(out: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--task",
        "babi-qa1",
        "--steps",
        steps,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(TINY);
    args.extend(extra);
    rrnn(&args)
}

fn eval_file(checkpoint: &Path, file: &Path) -> Value {
    json_line(&rrnn(&[
        "eval",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--babi-file",
        file.to_str().unwrap(),
    ]))
}

#[test]
fn training_on_a_babi_dir_records_the_files_and_scores_the_test_file() {
    let root = temp("dir");
    let data = root.join("en");
    std::fs::create_dir(&data).unwrap();
    let train_file = data.join("qa1_single-supporting-fact_train.txt");
    let test_file = data.join("qa1_single-supporting-fact_test.txt");
    std::fs::write(&train_file, english_qa1(60, 1)).unwrap();
    std::fs::write(&test_file, english_qa1(20, 2)).unwrap();
    let run = root.join("run");
    let result = json_line(&train(&run, "6", &["--babi-dir", data.to_str().unwrap()]));
    assert!(result["test_accuracy"].is_f64(), "{result}");
    assert!(result["hard_accuracy"].is_null(), "no hard split: {result}");

    let config = read_json(&run.join("config.json"));
    let task = &config["experiment"]["task"];
    assert_eq!(task["vocabulary"], "english");
    let dir = std::fs::canonicalize(&data).unwrap();
    assert_eq!(task["data_dir"], dir.to_str().unwrap());
    let files = config["data"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{config}");
    for (entry, (role, path)) in files
        .iter()
        .zip([("train", &train_file), ("test", &test_file)])
    {
        assert_eq!(entry["role"], role);
        assert!(
            entry["path"]
                .as_str()
                .unwrap()
                .ends_with(path.file_name().unwrap().to_str().unwrap())
        );
        assert_eq!(entry["bytes"], std::fs::metadata(path).unwrap().len());
        assert_eq!(entry["content_hash"].as_str().unwrap().len(), 16);
    }

    // The test file through `eval --babi-file` is the run's test score: same parameters, same
    // questions.
    let best = run.join("best.safetensors");
    let scored = eval_file(&best, &test_file);
    assert_eq!(scored["questions"], 100, "20 stories of 5 questions");
    assert_eq!(scored["accuracy"], result["test_accuracy"]);
    assert_eq!(scored["loss"], result["test_loss"]);
    assert_eq!(scored["task"], "babi-qa1");
    // `eval --split` reads the run's own files.
    let val = json_line(&rrnn(&[
        "eval",
        "--checkpoint",
        best.to_str().unwrap(),
        "--split",
        "val",
    ]));
    assert_eq!(val["accuracy"], result["val_accuracy"]);

    // A byte-order mark and CRLF line ends change nothing.
    let bom = root.join("bom.txt");
    let text = std::fs::read_to_string(&test_file)
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(&bom, format!("\u{feff}{text}")).unwrap();
    let with_bom = eval_file(&best, &bom);
    assert_eq!(with_bom["accuracy"], scored["accuracy"]);
    assert_eq!(with_bom["file"], bom.to_str().unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_resumed_run_refuses_changed_data() {
    let root = temp("resume");
    let data = root.join("en-10k");
    std::fs::create_dir(&data).unwrap();
    let train_file = data.join("qa1_single-supporting-fact_train.txt");
    std::fs::write(&train_file, english_qa1(60, 3)).unwrap();
    let run = root.join("run");
    let dir = data.to_str().unwrap();
    ok(&train(&run, "4", &["--babi-dir", dir, "--stop-at", "2"]));
    std::fs::write(&train_file, english_qa1(61, 3)).unwrap();
    let resume = ["train", "--resume", run.to_str().unwrap()];
    let out = rrnn(&resume);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("data files differ"), "{stderr}");
    assert!(
        stderr.contains("qa1_single-supporting-fact_train.txt"),
        "{stderr}"
    );
    std::fs::write(&train_file, english_qa1(60, 3)).unwrap();
    let result = json_line(&rrnn(&resume));
    assert!(result["test_accuracy"].is_null(), "no test file: {result}");
    assert_eq!(result["step"], 4);
    std::fs::remove_dir_all(&root).unwrap();
}

/// A model trained only on generated English stories reads a hand-written file in the real
/// format, and one trained on the generated vocabulary is told why it cannot.
#[test]
fn a_model_trained_on_generated_english_stories_scores_a_real_format_file() {
    let root = temp("generated");
    let run = root.join("run");
    ok(&train(
        &run,
        "4",
        &["--set", "task.vocabulary=english", "--set", "test_size=16"],
    ));
    let scored = eval_file(&run.join("best.safetensors"), &sample_qa1());
    assert_eq!(scored["questions"], 10);
    assert_eq!(scored["file"], sample_qa1().to_str().unwrap());
    let accuracy = scored["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{scored}");
    assert!(
        scored["heuristics"]["last_location_mentioned"].is_f64(),
        "{scored}"
    );

    let generated = root.join("generated");
    ok(&train(&generated, "2", &["--set", "test_size=16"]));
    let out = rrnn(&[
        "eval",
        "--checkpoint",
        generated.join("best.safetensors").to_str().unwrap(),
        "--babi-file",
        sample_qa1().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("qa1_single-supporting-fact_sample.txt:4: unknown word `back`")
            && stderr.contains("task.vocabulary = \"english\""),
        "{stderr}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
