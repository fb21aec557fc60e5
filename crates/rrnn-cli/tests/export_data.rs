//! `rrnn export-data` end to end: fields and brute-force targets, determinism, the test split
//! equals the library's fixed test set, bAbI text that parses, and one-line errors.

use std::process::Output;

use relational_rnn::tasks::babi::parse_babi;
use relational_rnn::tasks::{TaskKind, generate_reasoning_data};

mod common;
use common::rrnn;

fn lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn nth_farthest_lines_have_the_fields_and_correct_targets() {
    let out = rrnn(&[
        "export-data",
        "--task",
        "nth-farthest",
        "--split",
        "test",
        "--n",
        "50",
        "--seed",
        "3",
        "--num-vectors",
        "5",
        "--dim",
        "3",
    ]);
    let rows = lines(&out);
    assert_eq!(rows.len(), 50);
    for row in rows {
        let vectors: Vec<Vec<f64>> = serde_json::from_value(row["vectors"].clone()).unwrap();
        let labels: Vec<usize> = serde_json::from_value(row["labels"].clone()).unwrap();
        let (n, m) = (
            row["n"].as_u64().unwrap() as usize,
            row["m"].as_u64().unwrap() as usize,
        );
        assert_eq!((vectors.len(), vectors[0].len(), labels.len()), (5, 3, 5));
        let r = labels.iter().position(|&l| l == m).unwrap();
        let mut by_distance: Vec<(f64, usize)> = (0..5)
            .map(|t| {
                let d: f64 = (0..3)
                    .map(|i| (vectors[t][i] - vectors[r][i]).powi(2))
                    .sum();
                (d, labels[t])
            })
            .collect();
        by_distance.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        assert_eq!(row["target"].as_u64().unwrap() as usize, by_distance[n].1);
    }
}

#[test]
fn same_seed_same_bytes_and_matches_the_library_test_set() {
    for kind in TaskKind::ALL {
        let args = [
            "export-data",
            "--task",
            kind.name(),
            "--split",
            "test",
            "--n",
            "300",
            "--seed",
            "11",
        ];
        let a = rrnn(&args);
        let b = rrnn(&args);
        assert!(a.status.success());
        assert_eq!(a.stdout, b.stdout, "{kind}");
        let mut other = args;
        other[8] = "12";
        assert_ne!(rrnn(&other).stdout, a.stdout, "{kind}");
        let data = generate_reasoning_data(&kind.default_config(), 1, 300, 11).unwrap();
        let expected: String = data
            .test
            .examples
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(String::from_utf8(a.stdout).unwrap(), expected, "{kind}");
    }
}

#[test]
fn out_file_equals_stdout_and_babi_format_parses() {
    let path = std::env::temp_dir().join(format!("rrnn-export-{}.txt", std::process::id()));
    let path_str = path.to_str().unwrap();
    for task in ["babi-qa1", "babi-qa2", "babi-qa3"] {
        let args = [
            "export-data",
            "--task",
            task,
            "--n",
            "20",
            "--format",
            "babi",
            "--split",
            "hard",
        ];
        let stdout = rrnn(&args);
        assert!(stdout.status.success());
        let mut with_out = args.to_vec();
        with_out.extend(["--out", path_str]);
        assert!(rrnn(&with_out).status.success());
        assert_eq!(std::fs::read(&path).unwrap(), stdout.stdout);
        let stories = parse_babi(&String::from_utf8(stdout.stdout).unwrap(), task).unwrap();
        assert_eq!(stories.len(), 20);
        assert!(
            stories
                .iter()
                .all(|s| s.lines.len() == 2 * (s.lines.len() / 2) + 1)
        );
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let cases: [&[&str]; 5] = [
        &["export-data", "--task", "sorting", "--dim", "4"],
        &["export-data", "--task", "sorting", "--len", "1"],
        &["export-data", "--task", "pairs", "--format", "babi"],
        &[
            "export-data",
            "--task",
            "tracking",
            "--out",
            "/nonexistent-dir/x.jsonl",
        ],
        &[
            "export-data",
            "--task",
            "nth-farthest",
            "--num-vectors",
            "2",
        ],
    ];
    for args in cases {
        let out = rrnn(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let unknown = rrnn(&["export-data", "--task", "nth_farthest"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        stderr.contains("valid tasks: nth-farthest, sorting"),
        "{stderr}"
    );
}
