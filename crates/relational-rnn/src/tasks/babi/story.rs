//! The in-memory form of a bAbI file: stories of numbered lines, each a statement or a question.
//!
//! In the official Facebook format a story is a run of lines numbered from 1; a question line
//! carries its answer and the ids of the statements that support it (`\t` is a tab):
//!
//! ```text
//! 1 Mary moved to the bathroom.
//! 2 John went to the hallway.
//! 3 Where is Mary? \tbathroom\t1
//! ```

/// One numbered line of a story.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoryLine {
    /// A fact, e.g. `Mary moved to the bathroom.`
    Statement {
        /// Line id within the story (1-based).
        id: usize,
        /// The sentence, without the id.
        text: String,
    },
    /// A question with its answer and supporting statements.
    Question {
        /// Line id within the story (1-based).
        id: usize,
        /// The question, without the id, e.g. `Where is Mary?`
        text: String,
        /// The answer word(s), e.g. `bathroom`.
        answer: String,
        /// Ids of the statements needed to answer (in file order).
        supporting: Vec<usize>,
    },
}

impl StoryLine {
    /// The line id within its story.
    pub fn id(&self) -> usize {
        match self {
            StoryLine::Statement { id, .. } | StoryLine::Question { id, .. } => *id,
        }
    }

    /// The sentence or question text.
    pub fn text(&self) -> &str {
        match self {
            StoryLine::Statement { text, .. } | StoryLine::Question { text, .. } => text,
        }
    }
}

/// A story: lines numbered `1..=len` in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Story {
    /// The lines in order; `lines[i].id() == i + 1`.
    pub lines: Vec<StoryLine>,
}

/// One question with the statements that precede it in its story: the unit a model answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BabiQuestion {
    /// The statements before the question, in order.
    pub context: Vec<String>,
    /// Their line ids.
    pub context_ids: Vec<usize>,
    /// The question text.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Line ids of the supporting statements.
    pub supporting: Vec<usize>,
}

impl Story {
    /// Number of question lines.
    pub fn num_questions(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, StoryLine::Question { .. }))
            .count()
    }

    /// The story up to and including its `k`-th question (0-based): one example of a story with
    /// several questions, in the form a file with one question at the end would hold it. `None`
    /// when the story has no `k`-th question.
    pub fn up_to_question(&self, k: usize) -> Option<Story> {
        let end = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, StoryLine::Question { .. }))
            .nth(k)?
            .0;
        Some(Story {
            lines: self.lines[..=end].to_vec(),
        })
    }

    /// One [`BabiQuestion`] per question line, each with every statement before it as context.
    pub fn questions(&self) -> Vec<BabiQuestion> {
        let mut context = Vec::new();
        let mut context_ids = Vec::new();
        let mut out = Vec::new();
        for line in &self.lines {
            match line {
                StoryLine::Statement { id, text } => {
                    context.push(text.clone());
                    context_ids.push(*id);
                }
                StoryLine::Question {
                    text,
                    answer,
                    supporting,
                    ..
                } => out.push(BabiQuestion {
                    context: context.clone(),
                    context_ids: context_ids.clone(),
                    question: text.clone(),
                    answer: answer.clone(),
                    supporting: supporting.clone(),
                }),
            }
        }
        out
    }
}
