//! Real bAbI files: one file as a dataset ([`BabiFile`]), a directory of them as a task
//! ([`BabiFileTask`], set by `task.data_dir`).
//!
//! A directory is read as the Facebook archive lays it out (`tasks_1-20_v1-2/en/`, `en-10k/`):
//! task N's training file is the one `qaN_*_train.txt` (exactly one, else an error listing what
//! is there), its test file the one `qaN_*_test.txt` if there is one. The validation split is
//! carved from the training file story by story: a story whose content hash falls in the
//! validation bucket (1 in 5, as for generated data, see [`crate::tasks::split`]) is validation,
//! every other story training. So the two never share a story, and the carve is the same on every
//! machine. There is no hard split (its set is empty); without a test file, no test set either.
//!
//! Each question is one example: every statement of its story before it, then the question. Every
//! word must be in the task's vocabulary and every answer one of its location classes; a file
//! that breaks this, or the format (see [`super::parse_babi`]), is an error naming file and line.

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3};
use rand::{Rng, RngCore};

use super::heuristics::location_rules;
use super::parse::read_numbered;
use super::{
    BabiConfig, BabiError, BabiVocabulary, Story, StoryLine, Vocabulary, encode_stories,
    generated_answers, story_hash, tokenize,
};
use crate::ConfigError;
use crate::tasks::heuristics::majority;
use crate::tasks::split::{admits, content_hash};
use crate::tasks::{Baselines, Batch, Dataset, Example, Heuristic, Split, Task};

/// One file a run read, recorded so that the run says what it trained on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFile {
    /// `train` or `test`.
    pub role: String,
    /// The file's path.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// [`content_hash`] of its bytes in hex: tells whether the file changed (not cryptographic).
    pub content_hash: String,
}

impl DataFile {
    /// Reads `path` to record its size and content hash.
    pub fn read(role: &str, path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            role: role.to_owned(),
            path: path.display().to_string(),
            bytes: bytes.len() as u64,
            content_hash: format!("{:016x}", content_hash(bytes.iter().map(|&b| u64::from(b)))),
        })
    }
}

/// The number N of a file named like the archive's `qaN_…` (`None` for other names).
pub fn file_task_number(path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_str()?;
    let (number, _) = name.strip_prefix("qa")?.split_once('_')?;
    number.parse().ok()
}

/// Task `number`'s training file and its test file (if any) in `dir`.
fn task_files(dir: &Path, number: usize) -> Result<(PathBuf, Option<PathBuf>), String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let matching = |role: &str| -> Vec<&String> {
        let (prefix, suffix) = (format!("qa{number}_"), format!("_{role}.txt"));
        let found = names
            .iter()
            .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix));
        found.collect()
    };
    let several = |role: &str, found: &[&String]| {
        let list: Vec<&str> = found.iter().map(|s| s.as_str()).collect();
        format!(
            "{} files match qa{number}_*_{role}.txt in {}: {}; keep one",
            found.len(),
            dir.display(),
            list.join(", ")
        )
    };
    let train = match matching("train")[..] {
        [one] => dir.join(one),
        [] => {
            let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
            let more = if names.len() > 20 { ", …" } else { "" };
            let found = if names.is_empty() {
                "nothing".to_owned()
            } else {
                format!("{}{more}", shown.join(", "))
            };
            return Err(format!(
                "no qa{number}_*_train.txt in {} (found: {found})",
                dir.display()
            ));
        }
        ref found => return Err(several("train", found)),
    };
    let test = match matching("test")[..] {
        [] => None,
        [one] => Some(dir.join(one)),
        ref found => return Err(several("test", found)),
    };
    Ok((train, test))
}

/// The files `config.data_dir` names for its task, with sizes and content hashes (empty when
/// the stories are generated).
pub fn babi_data_files(config: &BabiConfig) -> Result<Vec<DataFile>, ConfigError> {
    let Some(dir) = &config.data_dir else {
        return Ok(Vec::new());
    };
    let error = |message: String| ConfigError::new("data_dir", message);
    let (train, test) = task_files(Path::new(dir), config.kind.number()).map_err(error)?;
    let mut files = vec![DataFile::read("train", &train).map_err(error)?];
    if let Some(test) = test {
        files.push(DataFile::read("test", &test).map_err(error)?);
    }
    Ok(files)
}

/// The questions of one bAbI file, checked against a vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct BabiFile {
    /// The file, as named in messages.
    pub path: String,
    stories: Vec<Story>,
    /// Per question, in file order: its story and its rank among the story's questions.
    questions: Vec<(usize, usize)>,
    /// The longest context plus the question: the `T` that fits every question.
    steps: usize,
}

impl BabiFile {
    /// Reads `path`, checking every word against `vocabulary` and every answer against the
    /// location classes; errors name file, line and the word.
    pub fn read(path: &Path, vocabulary: BabiVocabulary) -> Result<Self, BabiError> {
        let file = path.display().to_string();
        let (vocab, answers) = (vocabulary.words(), generated_answers());
        let numbered = read_numbered(path)?;
        for (story, numbers) in &numbered {
            for (line, &number) in story.lines.iter().zip(numbers) {
                let fail = |message: String| BabiError {
                    file: file.clone(),
                    line: number,
                    message,
                };
                if let Some(word) = tokenize(line.text())
                    .into_iter()
                    .find(|w| vocab.id(w).is_none())
                {
                    let hint = match vocabulary {
                        BabiVocabulary::Generated => {
                            " (task.vocabulary = \"english\" has the real English tasks' words)"
                        }
                        BabiVocabulary::English => "",
                    };
                    return Err(fail(format!(
                        "unknown word `{word}`: not in the {} vocabulary{hint}",
                        vocabulary.name()
                    )));
                }
                if let StoryLine::Question { answer, .. } = line
                    && answers.id(answer).is_none()
                {
                    return Err(fail(format!(
                        "answer `{answer}` is not one of the locations ({})",
                        answers.words().join(", ")
                    )));
                }
            }
        }
        Ok(Self::new(
            file,
            numbered.into_iter().map(|(s, _)| s).collect(),
        ))
    }

    fn new(path: String, stories: Vec<Story>) -> Self {
        let mut questions = Vec::new();
        let mut steps = 1;
        for (s, story) in stories.iter().enumerate() {
            let (mut statements, mut k) = (0, 0);
            for line in &story.lines {
                match line {
                    StoryLine::Statement { .. } => statements += 1,
                    StoryLine::Question { .. } => {
                        questions.push((s, k));
                        k += 1;
                        steps = steps.max(statements + 1);
                    }
                }
            }
        }
        Self {
            path,
            stories,
            questions,
            steps,
        }
    }

    /// Number of questions (examples).
    pub fn num_questions(&self) -> usize {
        self.questions.len()
    }

    /// Number of stories.
    pub fn num_stories(&self) -> usize {
        self.stories.len()
    }

    /// The smallest `T` that fits every question: the longest context plus the question.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Splits the file story by story into (training, validation): validation takes the stories
    /// whose content hash is in the validation bucket.
    pub fn carve_validation(self) -> (BabiFile, BabiFile) {
        let (val, train): (Vec<Story>, Vec<Story>) = self
            .stories
            .into_iter()
            .partition(|story| admits(Split::Val, story_hash(story)));
        (
            Self::new(self.path.clone(), train),
            Self::new(self.path, val),
        )
    }

    /// The example of question `i`: its story cut after it.
    fn example(&self, i: usize) -> Story {
        let (s, k) = self.questions[i];
        self.stories[s]
            .up_to_question(k)
            .expect("indexed questions exist")
    }

    /// Questions `picks` as a batch of `steps` steps (at least [`Self::steps`]) and examples.
    ///
    /// # Shapes
    /// `inputs: [T, B, V + 1]`, `targets: [T, B]`, `mask: [T, B]` with `T = steps`,
    /// `B = picks.len()`.
    fn encode(
        &self,
        picks: impl IntoIterator<Item = usize>,
        vocabulary: BabiVocabulary,
        steps: usize,
    ) -> (Batch, Vec<Example>) {
        let stories = picks.into_iter().map(|i| self.example(i)).collect();
        let (batch, examples) = encode_stories(
            stories,
            &vocabulary.words(),
            &generated_answers(),
            steps.max(self.steps),
        )
        .expect("words, answers and lengths were checked when the file was read");
        (batch, examples.into_iter().map(Example::Babi).collect())
    }

    /// Every question, in file order, as one dataset labelled `split`.
    ///
    /// # Shapes
    /// `batch.inputs: [T, B, V + 1]` with `T = self.steps()`, `B = self.num_questions()`.
    pub fn dataset(&self, split: Split, vocabulary: BabiVocabulary) -> Dataset {
        let (batch, examples) = self.encode(0..self.num_questions(), vocabulary, self.steps);
        Dataset {
            split,
            batch,
            examples,
        }
    }
}

/// The bAbI task over the real files of a directory (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct BabiFileTask {
    config: BabiConfig,
    answers: Vocabulary,
    vocab_len: usize,
    train: BabiFile,
    val: BabiFile,
    test: Option<BabiFile>,
}

impl BabiFileTask {
    /// Validates `config`, finds its files in `config.data_dir` and reads them.
    pub fn load(config: BabiConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let error = |message: String| ConfigError::new("data_dir", message);
        let dir = config
            .data_dir
            .as_deref()
            .ok_or_else(|| error("the stories are generated: no directory to read".into()))?;
        let (train_path, test_path) =
            task_files(Path::new(dir), config.kind.number()).map_err(error)?;
        let read = |path: &Path| BabiFile::read(path, config.vocabulary);
        let file = read(&train_path).map_err(|e| error(e.to_string()))?;
        let stories = file.num_stories();
        let (train, val) = file.carve_validation();
        if train.num_questions() == 0 || val.num_questions() == 0 {
            return Err(error(format!(
                "{}: {stories} stories are too few to carve a validation split from (1 story in \
                 5, by content hash): {} training and {} validation questions",
                train.path,
                train.num_questions(),
                val.num_questions()
            )));
        }
        let test = test_path
            .map(|p| read(&p))
            .transpose()
            .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            answers: generated_answers(),
            vocab_len: config.vocabulary.words().len(),
            config,
            train,
            val,
            test,
        })
    }

    /// The file behind `split` (`None`: the split has no questions).
    fn file(&self, split: Split) -> Option<&BabiFile> {
        match split {
            Split::Train => Some(&self.train),
            Split::Val => Some(&self.val),
            Split::Test => self.test.as_ref(),
            Split::Hard => None,
        }
    }

    /// A set of no questions (the hard split; the test split without a test file).
    fn empty(&self, split: Split) -> (Batch, Vec<Example>) {
        let t = self.seq_len(split);
        let batch = Batch::new(
            Array3::zeros((t, 0, self.input_size())), // [T, 0, F]
            Array2::zeros((t, 0)),                    // [T, 0]
            Array2::from_elem((t, 0), false),         // [T, 0]
        );
        (batch, Vec::new())
    }
}

impl Task for BabiFileTask {
    fn name(&self) -> &str {
        self.config.kind.name()
    }

    fn input_size(&self) -> usize {
        self.vocab_len + 1
    }

    fn num_classes(&self) -> usize {
        self.answers.len()
    }

    fn seq_len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train.steps(),
            Split::Val => self.val.steps(),
            Split::Test | Split::Hard => self.test.as_ref().map_or(1, BabiFile::steps),
        }
    }

    fn baselines(&self) -> Baselines {
        let mut counts = vec![0usize; self.answers.len()];
        for line in self.train.stories.iter().flat_map(|s| &s.lines) {
            if let StoryLine::Question { answer, .. } = line {
                counts[self.answers.id(answer).unwrap_or(0)] += 1;
            }
        }
        let total = counts.iter().sum::<usize>().max(1) as f64;
        Baselines {
            chance: 1.0 / self.answers.len() as f64,
            majority: counts.into_iter().max().unwrap_or(0) as f64 / total,
            plateau: None,
            plateau_loss: None,
            plateau_meaning: "",
        }
    }

    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic> {
        let mut all = vec![majority(self, data)];
        all.extend(location_rules(self.config.kind, data, &self.answers));
        all
    }

    fn describe(&self) -> String {
        let test = self.test.as_ref().map_or("no test file".to_owned(), |t| {
            format!("{} ({} questions)", t.path, t.num_questions())
        });
        format!(
            "{name} from {train}: {tq} training and {vq} validation questions (validation: 1 \
             story in 5 by content hash); test: {test}. One step per sentence (bag of {v} words \
             + question flag, F = {f}), T up to {t}, C = {c} locations. No hard split.",
            name = self.name(),
            train = self.train.path,
            tq = self.train.num_questions(),
            vq = self.val.num_questions(),
            v = self.vocab_len,
            f = self.input_size(),
            t = self.seq_len(Split::Train),
            c = self.answers.len(),
        )
    }

    /// Draws `batch` questions of `split` uniformly with replacement; a split without questions
    /// (hard; test without a test file) gives an empty batch.
    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>) {
        match self.file(split).filter(|f| f.num_questions() > 0) {
            Some(file) => {
                let picks: Vec<usize> = (0..batch)
                    .map(|_| rng.random_range(0..file.num_questions()))
                    .collect();
                file.encode(picks, self.config.vocabulary, self.seq_len(split))
            }
            None => self.empty(split),
        }
    }

    fn fixed_examples(&self, split: Split) -> Option<(Batch, Vec<Example>)> {
        match (split, self.file(split)) {
            (Split::Train, _) => None,
            (_, Some(file)) => {
                let data = file.dataset(split, self.config.vocabulary);
                Some((data.batch, data.examples))
            }
            (_, None) => Some(self.empty(split)),
        }
    }
}
