//! Vocabulary and the sentence-per-step encoding of bAbI questions.
//!
//! Words are lower-cased with `.`, `?`, `,` stripped. Each statement becomes one time step, a
//! bag of words (word counts) over the vocabulary `V`, and the question is the last step with a
//! flag: `F = V + 1`. Stories shorter than the batch's `T − 1` statements are **padded with zero
//! steps at the start**, so the question is always the last step and the only masked one. The
//! target is the answer's index in a separate answer vocabulary (`C` = number of answers).
//! Supporting statements are reported in time-step coordinates (after padding) so that attention
//! maps can be checked against them.

use std::collections::{BTreeSet, HashMap};

use ndarray::{Array2, Array3};

use super::{BabiQuestion, Story, StoryLine};
use crate::tasks::Batch;

/// The words of a sentence: lower-cased, punctuation `.?,` removed.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c| matches!(c, '.' | '?' | ','))
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A sorted word list with its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    words: Vec<String>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    /// The sorted, de-duplicated vocabulary of `words`.
    pub fn new(words: impl IntoIterator<Item = String>) -> Self {
        let words: Vec<String> = words
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Self { words, index }
    }

    /// Every word of every statement and question of `stories`.
    pub fn from_stories(stories: &[Story]) -> Self {
        Self::new(
            stories
                .iter()
                .flat_map(|s| &s.lines)
                .flat_map(|line| tokenize(line.text())),
        )
    }

    /// The answers of every question of `stories` (as written, not tokenised).
    pub fn answers_of(stories: &[Story]) -> Self {
        Self::new(
            stories
                .iter()
                .flat_map(|s| &s.lines)
                .filter_map(|line| match line {
                    StoryLine::Question { answer, .. } => Some(answer.clone()),
                    StoryLine::Statement { .. } => None,
                }),
        )
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The index of `word`, if known.
    pub fn id(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }

    /// The words in index order.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// A question that cannot be encoded with the given vocabularies or length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A word of a sentence is not in the vocabulary.
    #[error("word `{0}` is not in the vocabulary")]
    UnknownWord(String),
    /// The answer is not in the answer vocabulary.
    #[error("answer `{0}` is not in the answer vocabulary")]
    UnknownAnswer(String),
    /// The context has more statements than `steps − 1`.
    #[error("a context of {context} statements does not fit in {steps} steps")]
    TooLong {
        /// Statements in the context.
        context: usize,
        /// The requested `T`.
        steps: usize,
    },
}

/// The longest context plus the question: the smallest `T` that fits every question.
pub fn required_steps(questions: &[BabiQuestion]) -> usize {
    questions
        .iter()
        .map(|q| q.context.len() + 1)
        .max()
        .unwrap_or(1)
}

/// Encodes questions as a left-padded batch of `steps` steps (see the module doc), and returns
/// each question's supporting statements as time steps.
///
/// # Shapes
/// `inputs: [T, B, V + 1]`, `targets: [T, B]`, `mask: [T, B]` (true on step `T − 1` only), with
/// `T = steps`, `V = vocab.len()`.
pub fn encode_questions(
    questions: &[BabiQuestion],
    vocab: &Vocabulary,
    answers: &Vocabulary,
    steps: usize,
) -> Result<(Batch, Vec<Vec<usize>>), EncodeError> {
    let (b, v) = (questions.len(), vocab.len());
    let mut inputs = Array3::<f32>::zeros((steps, b, v + 1)); // [T, B, F]
    let mut targets = Array2::<usize>::zeros((steps, b)); // [T, B]
    let mut mask = Array2::<bool>::from_elem((steps, b), false); // [T, B]
    let mut supporting_steps = Vec::with_capacity(b);
    for (j, q) in questions.iter().enumerate() {
        let pad = (steps.checked_sub(q.context.len() + 1)).ok_or(EncodeError::TooLong {
            context: q.context.len(),
            steps,
        })?;
        let sentences = q.context.iter().chain(std::iter::once(&q.question));
        for (i, sentence) in sentences.enumerate() {
            for word in tokenize(sentence) {
                let w = vocab.id(&word).ok_or(EncodeError::UnknownWord(word))?;
                inputs[[pad + i, j, w]] += 1.0;
            }
        }
        inputs[[steps - 1, j, v]] = 1.0;
        targets[[steps - 1, j]] = answers
            .id(&q.answer)
            .ok_or_else(|| EncodeError::UnknownAnswer(q.answer.clone()))?;
        mask[[steps - 1, j]] = true;
        supporting_steps.push(
            q.supporting
                .iter()
                .filter_map(|s| q.context_ids.iter().position(|c| c == s))
                .map(|i| pad + i)
                .collect(),
        );
    }
    Ok((Batch::new(inputs, targets, mask), supporting_steps))
}
