//! Records the git commit the binary was built from (`RRNN_GIT_COMMIT`, empty outside a git
//! checkout) so every run's `config.json` can name it; `-dirty` is appended when the crates' sources
//! differ from that commit (the binary then contains changes no commit has).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let mut commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let changed = git(&["status", "--porcelain", "--untracked-files=no", "--", "../"]);
    if !commit.is_empty() && changed.is_some_and(|c| !c.is_empty()) {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=RRNN_GIT_COMMIT={commit}");
    // Re-run when HEAD moves: the HEAD file (branch switches) and the branch's ref (commits).
    // Only existing files: a missing one would make Cargo rebuild every time.
    let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"]
        .into_iter()
        .chain(head_ref.as_deref())
    {
        let path = git(&["rev-parse", "--path-format=absolute", "--git-path", name]);
        if let Some(p) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    // And when the sources change (Cargo scans these directories for modified files).
    for dir in [
        "src",
        "../relational-rnn/src",
        "Cargo.toml",
        "../relational-rnn/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
