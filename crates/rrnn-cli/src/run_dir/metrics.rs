//! `metrics.jsonl`: one evaluation record per line, appended, cut back on resume.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use relational_rnn::checkpoint;
use relational_rnn::train::EvalRecord;

use super::{RunDir, io_err, to_json};

/// Marks a damaged metrics file kept aside: `metrics.jsonl.damaged-<unix time>`.
pub(super) const DAMAGED: &str = ".damaged-";

impl RunDir {
    /// Appends one record to `metrics.jsonl` (synced, so a checkpoint never gets ahead of it).
    pub fn append_metrics(&self, record: &EvalRecord) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        // One write for the line and its newline: a kill leaves no record without its newline.
        f.write_all((to_json(record) + "\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&path, e))
    }

    /// Keeps the records of `metrics.jsonl` up to `step` (creating it empty if missing). A
    /// damaged file, with a line that does not parse or a step not above the one before, is
    /// kept whole beside it (see [`Self::keep_damaged`]) and rebuilt from every record that
    /// parses, in step order, up to `step`: only damaged lines are missing from the new file.
    pub fn truncate_metrics(&self, step: u64) -> Result<(), String> {
        let path = self.file("metrics.jsonl");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut kept = String::new();
        let (mut last, mut damaged) = (None, Vec::new());
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            match serde_json::from_str::<EvalRecord>(line) {
                Ok(r) if last.is_none_or(|s| r.step > s) => {
                    last = Some(r.step);
                    if r.step <= step {
                        kept += line;
                        kept.push('\n');
                    }
                }
                _ => damaged.push((i + 1).to_string()),
            }
        }
        if !damaged.is_empty() {
            let aside = self.keep_damaged(&path)?;
            let lines = match damaged.len() {
                1 => format!("line {} is", damaged[0]),
                2..=5 => format!("lines {} are", damaged.join(", ")),
                n => format!("lines {}, … ({n} in all) are", damaged[..3].join(", ")),
            };
            eprintln!(
                "warning: {}: {lines} damaged; kept the whole file as {} and rebuilt it from the \
                 intact records up to step {step}",
                path.display(),
                aside.display()
            );
        }
        checkpoint::write_atomic(&path, kept.as_bytes()).map_err(|e| e.to_string())
    }

    /// Keeps `path` as it is under `<name>.damaged-<unix time>` beside it (a hard link, or a
    /// synced copy where links are not supported) and returns that path.
    fn keep_damaged(&self, path: &Path) -> Result<PathBuf, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut aside = self.file(&format!("{name}{DAMAGED}{now}"));
        for n in 1.. {
            if !aside.exists() {
                break;
            }
            aside = self.file(&format!("{name}{DAMAGED}{now}-{n}"));
        }
        if std::fs::hard_link(path, &aside).is_err() {
            std::fs::copy(path, &aside)
                .and_then(|_| File::open(&aside)?.sync_all())
                .map_err(|e| io_err(&aside, e))?;
        }
        Ok(aside)
    }
}
