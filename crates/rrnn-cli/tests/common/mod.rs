//! Helpers shared by the CLI's integration tests: running the binary and fresh temp directories.
// Each test binary uses only some of them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `rrnn` binary with `args`.
pub fn rrnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rrnn"))
        .args(args)
        .output()
        .expect("run rrnn")
}

/// Asserts the run succeeded (printing its stderr otherwise) and returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A fresh, not yet existing directory `<prefix>-<name>-<pid>` under the system temp dir.
pub fn fresh_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
