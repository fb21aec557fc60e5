//! `rrnn bench` end to end: one JSON line with the fields the PyTorch harness reports, and
//! one-line errors for models without a reference. (No timing asserts: benchmarks are benchmarks.)

use std::process::Command;

#[test]
fn bench_prints_one_json_line_with_the_reference_fields() {
    let out = Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .args([
            "bench", "--config", "B", "--model", "rmc", "--steps", "2", "--warmup", "1",
        ])
        .output()
        .expect("run rrnn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["config"], "B");
    assert_eq!(v["model"], "rmc");
    assert_eq!(v["threads"], 1);
    assert_eq!(v["split"], "batch");
    assert_eq!(v["params"], 90_632);
    assert_eq!(v["gflop"], 0.295);
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
    assert!(v["gflops"].as_f64().unwrap() > 0.0);
}

/// Both ways of using threads run and say which they used.
#[test]
fn bench_runs_both_thread_splits() {
    for split in ["batch", "gemm"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rrnn"))
            .args([
                "bench",
                "--config",
                "C",
                "--model",
                "lstm",
                "--threads",
                "2",
                "--split",
                split,
                "--steps",
                "2",
                "--warmup",
                "1",
            ])
            .output()
            .expect("run rrnn");
        assert!(
            out.status.success(),
            "{split}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (v["threads"].as_u64(), v["split"].as_str()),
            (Some(2), Some(split))
        );
    }
}

#[test]
fn bench_rejects_models_without_a_reference() {
    let out = Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .args(["bench", "--config", "C", "--model", "rrnn-cell"])
        .output()
        .expect("run rrnn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rmc or lstm"), "{stderr}");
}
