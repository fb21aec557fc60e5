//! `sweep.json`: the jobs of a sweep, written by `rrnn sweep` and read by `rrnn sweep summarize`
//! (a module of its own so that neither command imports the other).

use serde::{Deserialize, Serialize};

/// One job of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Directory relative to the sweep's.
    pub dir: String,
    /// Grid values, in grid order.
    pub params: Vec<(String, String)>,
    /// Training seed.
    pub seed: u64,
    /// `rrnn train` arguments that start it.
    pub args: Vec<String>,
}

/// `sweep.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepFile {
    /// Grid keys, in order.
    pub keys: Vec<String>,
    /// Every job.
    pub jobs: Vec<Job>,
}

impl SweepFile {
    /// This sweep with `new`'s jobs added, for a second `rrnn sweep` into the same directory (more
    /// seeds, another grid value): jobs already listed stay, in their order. Errors when the grid
    /// keys differ or a listed directory would be given other arguments, so a manifest never
    /// describes runs other than those its directories hold.
    pub fn merged(mut self, new: SweepFile) -> Result<SweepFile, String> {
        if self.keys != new.keys {
            return Err(format!(
                "sweep.json here has grid keys {:?}, this sweep {:?}; use another --out",
                self.keys, new.keys
            ));
        }
        for job in new.jobs {
            match self.jobs.iter().find(|j| j.dir == job.dir) {
                Some(old) if old.args != job.args => {
                    return Err(format!(
                        "job {} is already in sweep.json with other arguments:\n  {}\nthis sweep:\n  {}",
                        job.dir,
                        old.args.join(" "),
                        job.args.join(" ")
                    ));
                }
                Some(_) => {}
                None => self.jobs.push(job),
            }
        }
        Ok(self)
    }
}
