//! bAbI-style question answering with 1, 2 and 3 supporting facts (Weston et al. 2015, tasks 1–3).
//!
//! - [`generate`]: a small simulated world writes stories in the official format;
//! - [`write_babi`] / [`parse_babi`] / [`read_babi_file`]: the official Facebook text format, so
//!   the real `qaN_*_train.txt` files can be used too; malformed input is a [`BabiError`] naming
//!   file and line;
//! - [`encode_questions`]: one time step per sentence (bag of words), the question last with a
//!   flag, left padding, supporting facts in time-step coordinates;
//! - [`BabiTask`]: the [`Task`] over generated stories;
//! - [`BabiVocabulary`]: the generated world's words (the default, frozen) or those of the real
//!   English tasks (`task.vocabulary = "english"`);
//! - [`BabiFileTask`]: the [`Task`] over the real files of a directory (`task.data_dir`), and
//!   [`BabiFile`] to score a model on any one file.
//!
//! Generated task at the defaults: `F = V + 1` with the fixed vocabulary of the world
//! ([`generated_vocabulary`]), `T = num_sentences + 1` (every story has exactly `num_sentences`
//! statements, so no padding is needed), `C = 6` locations. Baselines: chance 1/6; majority 1/6
//! (the world treats the locations symmetrically); no known plateau; rules that read only which
//! locations a story mentions and when are scored on data by [`Task::heuristics`]. Hard split:
//! `hard_num_sentences` statements (longer stories, more distractors). Train/test are partitioned
//! by a hash of the story text (see [`crate::tasks::split`]).

mod encode;
mod files;
mod format;
pub mod generate;
mod heuristics;
mod parse;
mod story;
mod templates;

use std::fmt;

use rand::{Rng, RngCore};

pub use encode::{EncodeError, Vocabulary, encode_questions, required_steps, tokenize};
pub use files::{BabiFile, BabiFileTask, DataFile, babi_data_files, file_task_number};
pub use format::write_babi;
pub use generate::{generate_english_story, generate_story};
pub use heuristics::location_rules;
pub use parse::{BabiError, parse_babi, read_babi_file};
pub use story::{BabiQuestion, Story, StoryLine};
pub use templates::{BabiVocabulary, Templates};

use super::heuristics::majority;
use super::split::{content_hash, draw_admitted};
use super::{Baselines, Batch, Dataset, Example, Heuristic, Split, Task};
use crate::ConfigError;

/// Which bAbI task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BabiKind {
    /// qa1: single supporting fact ("Where is Mary?").
    Qa1,
    /// qa2: two supporting facts ("Where is the football?", carried by people).
    Qa2,
    /// qa3: three supporting facts ("Where was the football before the kitchen?").
    Qa3,
}

impl BabiKind {
    /// The task's number in the bAbI suite: 1, 2 or 3.
    pub fn number(self) -> usize {
        match self {
            BabiKind::Qa1 => 1,
            BabiKind::Qa2 => 2,
            BabiKind::Qa3 => 3,
        }
    }

    /// The CLI name: `babi-qa1`, `babi-qa2`, `babi-qa3`.
    pub fn name(self) -> &'static str {
        match self {
            BabiKind::Qa1 => "babi-qa1",
            BabiKind::Qa2 => "babi-qa2",
            BabiKind::Qa3 => "babi-qa3",
        }
    }
}

impl fmt::Display for BabiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Configuration of [`BabiTask`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BabiConfig {
    /// Which task.
    pub kind: BabiKind,
    /// Statements per story in train/test. Default 6 (qa1), 10 (qa2), 12 (qa3).
    pub num_sentences: usize,
    /// Statements per story in the hard split. Default twice `num_sentences`.
    pub hard_num_sentences: usize,
    /// Words and templates: `generated` (default) or `english` (the real English tasks').
    #[serde(default)]
    pub vocabulary: BabiVocabulary,
    /// Read the stories from the real bAbI files in this directory (`qaN_*_train.txt`, and
    /// `qaN_*_test.txt` when present) instead of generating them; see [`BabiFileTask`].
    #[serde(default)]
    pub data_dir: Option<String>,
}

impl BabiConfig {
    /// The defaults of `kind`.
    pub fn new(kind: BabiKind) -> Self {
        let num_sentences = match kind {
            BabiKind::Qa1 => 6,
            BabiKind::Qa2 => 10,
            BabiKind::Qa3 => 12,
        };
        Self {
            kind,
            num_sentences,
            hard_num_sentences: 2 * num_sentences,
            vocabulary: BabiVocabulary::Generated,
            data_dir: None,
        }
    }

    /// At least the statements a question needs (qa1: 2, qa2: 3, qa3: 4, so the train/test
    /// partition has members on both sides), `hard_num_sentences > num_sentences`, and a
    /// `data_dir` that is not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self
            .data_dir
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            return Err(ConfigError::new(
                "data_dir",
                "must name a directory, got an empty string",
            ));
        }
        let min = match self.kind {
            BabiKind::Qa1 => 2,
            BabiKind::Qa2 => 3,
            BabiKind::Qa3 => 4,
        };
        ConfigError::require_size("num_sentences", self.num_sentences, min)?;
        ConfigError::require_size(
            "hard_num_sentences",
            self.hard_num_sentences,
            self.num_sentences + 1,
        )
    }
}

impl Default for BabiConfig {
    /// The qa1 defaults.
    fn default() -> Self {
        Self::new(BabiKind::Qa1)
    }
}

/// One generated bAbI question in readable form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BabiExample {
    /// The statements, line ids `1..=len`.
    pub context: Vec<String>,
    /// The question (line id `len + 1`).
    pub question: String,
    /// The answer word.
    pub answer: String,
    /// Line ids of the supporting statements.
    pub supporting: Vec<usize>,
    /// The supporting statements as time steps of the encoded sequence.
    pub supporting_steps: Vec<usize>,
    /// The whole story, for writing in bAbI format.
    #[serde(skip)]
    pub story: Story,
}

/// The vocabulary of the generated world: every word any template can produce.
pub fn generated_vocabulary() -> Vocabulary {
    BabiVocabulary::Generated.words()
}

/// The answer classes of the generated world: the locations.
pub fn generated_answers() -> Vocabulary {
    Vocabulary::new(templates::LOCATIONS.iter().map(|l| l.to_string()))
}

/// The bAbI task over generated stories.
#[derive(Debug, Clone, PartialEq)]
pub struct BabiTask {
    config: BabiConfig,
    vocab: Vocabulary,
    answers: Vocabulary,
}

impl BabiTask {
    /// Validates `config` and builds the task.
    pub fn new(config: BabiConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            vocab: config.vocabulary.words(),
            config,
            answers: generated_answers(),
        })
    }

    /// The word vocabulary (`V`).
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The answer classes (`C`), in class order.
    pub fn answers(&self) -> &Vocabulary {
        &self.answers
    }

    /// Statements per story in `split`.
    pub fn num_sentences(&self, split: Split) -> usize {
        match split {
            Split::Hard => self.config.hard_num_sentences,
            Split::Train | Split::Val | Split::Test => self.config.num_sentences,
        }
    }

    /// Draws one example story of `split`: the generated world's story with its question at the
    /// end; with the English templates, a story with several questions cut after a random one of
    /// them, so that an example is one question and its context, as in the real files. The cut
    /// story is what is hashed into the split, so no question can be on both sides.
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> Story {
        let (kind, len) = (self.config.kind, self.num_sentences(split));
        let key = |story: &Story| story_hash(story);
        match self.config.vocabulary {
            BabiVocabulary::Generated => {
                draw_admitted(split, || generate_story(kind, len, rng), key)
            }
            BabiVocabulary::English => draw_admitted(
                split,
                || {
                    let story = generate_english_story(kind, len, rng);
                    let k = rng.random_range(0..story.num_questions());
                    story.up_to_question(k).expect("k < num_questions")
                },
                key,
            ),
        }
    }

    /// Encodes stories of `split` (each one example: its last question) and pairs each with its
    /// readable form.
    ///
    /// # Shapes
    /// `inputs: [T, B, V + 1]`, `targets: [T, B]`, `mask: [T, B]`, `T = num_sentences(split) + 1`.
    pub fn encode(&self, split: Split, stories: Vec<Story>) -> (Batch, Vec<BabiExample>) {
        encode_stories(stories, &self.vocab, &self.answers, self.seq_len(split))
            .expect("generated stories use the task's vocabulary and length")
    }
}

/// The split hash of a story: [`content_hash`] of its bAbI text.
pub(crate) fn story_hash(story: &Story) -> u64 {
    content_hash(
        write_babi(std::slice::from_ref(story))
            .bytes()
            .map(u64::from),
    )
}

/// Encodes stories as examples, each its **last** question with every statement before it, and
/// pairs each with its readable form (see [`encode_questions`]). Stories without a question are
/// skipped.
///
/// # Shapes
/// `inputs: [T, B, V + 1]`, `targets: [T, B]`, `mask: [T, B]`, `T = steps`.
pub fn encode_stories(
    stories: Vec<Story>,
    vocab: &Vocabulary,
    answers: &Vocabulary,
    steps: usize,
) -> Result<(Batch, Vec<BabiExample>), EncodeError> {
    let (questions, stories): (Vec<BabiQuestion>, Vec<Story>) = stories
        .into_iter()
        .filter_map(|story| Some((story.questions().pop()?, story)))
        .unzip();
    let (batch, steps) = encode_questions(&questions, vocab, answers, steps)?;
    let examples = questions
        .into_iter()
        .zip(steps)
        .zip(stories)
        .map(|((q, supporting_steps), story)| BabiExample {
            context: q.context,
            question: q.question,
            answer: q.answer,
            supporting: q.supporting,
            supporting_steps,
            story,
        })
        .collect();
    Ok((batch, examples))
}

impl Task for BabiTask {
    fn name(&self) -> &str {
        self.config.kind.name()
    }

    fn input_size(&self) -> usize {
        self.vocab.len() + 1
    }

    fn num_classes(&self) -> usize {
        self.answers.len()
    }

    fn seq_len(&self, split: Split) -> usize {
        self.num_sentences(split) + 1
    }

    fn baselines(&self) -> Baselines {
        let c = 1.0 / self.answers.len() as f64;
        Baselines {
            chance: c,
            majority: c,
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
        let shape = match self.config.vocabulary {
            BabiVocabulary::Generated => "then one question",
            BabiVocabulary::English => {
                "in the real English words, a question after every second one (one example per \
                 question)"
            }
        };
        format!(
            "{name}: stories of {n} statements {shape}; one step per sentence (bag of \
             {v} words + question flag, F = {f}), T = {t}, C = {c} locations. Hard split: {h} \
             statements.",
            name = self.name(),
            n = self.config.num_sentences,
            v = self.vocab.len(),
            f = self.input_size(),
            t = self.seq_len(Split::Train),
            c = self.answers.len(),
            h = self.config.hard_num_sentences
        )
    }

    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>) {
        let stories = (0..batch).map(|_| self.generate(split, rng)).collect();
        let (encoded, examples) = self.encode(split, stories);
        (encoded, examples.into_iter().map(Example::Babi).collect())
    }
}
