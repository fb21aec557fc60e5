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
