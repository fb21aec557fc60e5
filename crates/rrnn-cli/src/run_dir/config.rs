//! `config.json`: what a run is, and the data files it reads.

use relational_rnn::experiment::Experiment;
use relational_rnn::tasks::TaskConfig;
use relational_rnn::tasks::babi::{DataFile, babi_data_files};
use serde::{Deserialize, Serialize};

/// `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Version of `rrnn` that started the run.
    pub rrnn_version: String,
    /// Git commit it was built from (`null` outside a checkout).
    pub git_commit: Option<String>,
    /// `--threads` (large products and Adam updates; the results do not depend on it).
    pub threads: usize,
    /// The resolved experiment.
    pub experiment: Experiment,
    /// The data files the run reads (none for generated data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataFile>,
    /// The checkpoint whose parameters the run started from (`--init-from`; role `init`), if
    /// any: a warm start, e.g. the next stage of a curriculum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<DataFile>,
}

impl RunConfig {
    /// The configuration of a run started now by this binary, with its data files read to
    /// record their sizes and content hashes.
    pub fn new(experiment: Experiment, threads: usize) -> Result<Self, String> {
        let commit = env!("RRNN_GIT_COMMIT");
        Ok(Self {
            rrnn_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: (!commit.is_empty()).then(|| commit.to_owned()),
            threads,
            data: data_files(&experiment)?,
            init_from: None,
            experiment,
        })
    }

    /// Checks that the data files are those the run started with (a resumed run must train on
    /// the same data).
    pub fn check_data(&self) -> Result<(), String> {
        let now = data_files(&self.experiment)?;
        if now == self.data {
            return Ok(());
        }
        let changed: Vec<String> = now
            .iter()
            .filter(|f| !self.data.contains(f))
            .chain(self.data.iter().filter(|f| !now.contains(f)))
            .map(|f| f.path.clone())
            .collect();
        Err(format!(
            "the data files differ from those config.json records (changed, added or removed: \
             {}); start a new run for new data",
            changed.join(", ")
        ))
    }
}

/// The data files of an experiment: those of a bAbI task read from `task.data_dir`.
fn data_files(experiment: &Experiment) -> Result<Vec<DataFile>, String> {
    match &experiment.task {
        TaskConfig::Babi(config) => babi_data_files(config).map_err(|e| e.to_string()),
        _ => Ok(Vec::new()),
    }
}
