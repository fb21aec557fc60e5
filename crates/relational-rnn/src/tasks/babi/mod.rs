//! bAbI-style question answering with 1, 2 and 3 supporting facts (Weston et al. 2015, tasks 1–3).
//!
//! - [`generate`]: a small simulated world writes stories in the official format;
//! - [`write_babi`] / [`parse_babi`] / [`read_babi_file`]: the official Facebook text format, so
//!   the real `qaN_*_train.txt` files can be used too; malformed input is a [`BabiError`] naming
//!   file and line;
//! - [`encode_questions`]: one time step per sentence (bag of words), the question last with a
//!   flag, left padding, supporting facts in time-step coordinates;
//! - [`BabiTask`]: the [`Task`] over generated stories.
//!
//! Generated task at the defaults: `F = V + 1` with the fixed vocabulary of the world
//! ([`generated_vocabulary`]), `T = num_sentences + 1` (every story has exactly `num_sentences`
//! statements, so no padding is needed), `C = 6` locations. Baselines: chance 1/6; majority 1/6
//! (the world treats the locations symmetrically); no known plateau; rules that read only which
//! locations a story mentions and when are scored on data by [`Task::heuristics`]. Hard split:
//! `hard_num_sentences` statements (longer stories, more distractors). Train/test are partitioned
//! by a hash of the story text (see [`crate::tasks::split`]).

mod encode;
mod format;
pub mod generate;
mod heuristics;
mod parse;
mod story;

use std::fmt;

use rand::{Rng, RngCore};

pub use encode::{EncodeError, Vocabulary, encode_questions, required_steps, tokenize};
pub use format::write_babi;
pub use generate::generate_story;
pub use parse::{BabiError, parse_babi, read_babi_file};
pub use story::{BabiQuestion, Story, StoryLine};

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
        }
    }

    /// At least the statements a question needs (qa1: 2, qa2: 3, qa3: 4, so the train/test
    /// partition has members on both sides) and `hard_num_sentences > num_sentences`.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
    use generate::{
        DROP_VERBS, GRAB_VERBS, LOCATIONS, MOVE_VERBS, OBJECTS, PEOPLE, TEMPLATE_WORDS,
    };
    let phrases = [
        &PEOPLE[..],
        &LOCATIONS,
        &OBJECTS,
        &MOVE_VERBS,
        &GRAB_VERBS,
        &DROP_VERBS,
        &TEMPLATE_WORDS,
    ];
    Vocabulary::new(phrases.into_iter().flatten().flat_map(|p| tokenize(p)))
}

/// The answer classes of the generated world: the locations.
pub fn generated_answers() -> Vocabulary {
    Vocabulary::new(generate::LOCATIONS.iter().map(|l| l.to_string()))
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
            config,
            vocab: generated_vocabulary(),
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

    /// Draws one story of `split` (one question at the end).
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> Story {
        let len = self.num_sentences(split);
        draw_admitted(
            split,
            || generate_story(self.config.kind, len, rng),
            |story| {
                content_hash(
                    write_babi(std::slice::from_ref(story))
                        .bytes()
                        .map(u64::from),
                )
            },
        )
    }

    /// Encodes stories of `split` and pairs each with its readable form.
    ///
    /// # Shapes
    /// `inputs: [T, B, V + 1]`, `targets: [T, B]`, `mask: [T, B]`, `T = num_sentences(split) + 1`.
    pub fn encode(&self, split: Split, stories: Vec<Story>) -> (Batch, Vec<BabiExample>) {
        let questions: Vec<BabiQuestion> = stories.iter().flat_map(Story::questions).collect();
        let (batch, steps) =
            encode_questions(&questions, &self.vocab, &self.answers, self.seq_len(split))
                .expect("generated stories use the generated vocabulary and length");
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
        (batch, examples)
    }
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
        let examples: Vec<&BabiExample> = data
            .examples
            .iter()
            .map(|example| match example {
                Example::Babi(ex) => ex,
                _ => panic!("a bAbI dataset holds bAbI examples"),
            })
            .collect();
        let mut all = vec![majority(self, data)];
        all.extend(heuristics::rules(
            self.config.kind,
            &examples,
            &self.answers,
            &data.batch,
        ));
        all
    }

    fn describe(&self) -> String {
        format!(
            "{name}: stories of {n} statements then one question; one step per sentence (bag of \
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
