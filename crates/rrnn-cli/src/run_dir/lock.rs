//! The lock that makes one process the owner of a run directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::io_err;

/// The lock file: locked by the owner of the directory, holds its pid.
pub(super) const LOCK_FILE: &str = ".lock";

/// Takes the exclusive lock of `dir` and writes this process's pid into the lock file; fails at
/// once, naming the holder's pid, when another process has it.
pub(super) fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK_FILE);
    // A start that fails removes the directory it created, lock file included: a lock taken on
    // a file that is no longer at `path` guards nothing, so open it again.
    for _ in 0..3 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is in use by another process (pid {}); wait for it to end or stop it",
                    dir.display(),
                    holder(&path)
                ));
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, format!("cannot lock: {e}"))),
        }
        if !is_at(&file, &path) {
            continue;
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io_err(&path, e))?;
        return Ok(file);
    }
    Err(io_err(&path, "removed each time it was locked"))
}

/// The pid in a lock file; the holder writes it just after locking, so wait a moment for it.
fn holder(lock_file: &Path) -> String {
    for _ in 0..50 {
        let text = std::fs::read_to_string(lock_file).unwrap_or_default();
        if !text.trim().is_empty() {
            return text.trim().to_owned();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "unknown".to_owned()
}

/// Whether the open `file` is the one at `path`.
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Whether the open `file` is the one at `path` (elsewhere an open file cannot be removed).
#[cfg(not(unix))]
fn is_at(_: &File, path: &Path) -> bool {
    path.exists()
}
