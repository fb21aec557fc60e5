//! Which words and sentence templates a bAbI story uses: the generated world's own, or those of
//! the real English bAbI tasks 1–3 (Facebook archive `tasks_1-20_v1-2`, `en/` and `en-10k/`).
//!
//! `generated` is what every committed result was produced with, and is frozen: the same 31
//! words (`F = 32`), the same word order, the same stories for a seed. `english` says what the
//! real files say besides — "went back to", "took", "left", an optional "there" after picking up
//! or dropping ("Mary got the football there.") — 35 words, `F = 36`; its stories also have the
//! real files' shape, several questions per story (see [`super::generate`]).

use super::{Vocabulary, tokenize};

/// The people of the generated world.
pub const PEOPLE: [&str; 4] = ["Mary", "John", "Daniel", "Sandra"];
/// The locations (the answer classes).
pub const LOCATIONS: [&str; 6] = [
    "bathroom", "bedroom", "garden", "hallway", "kitchen", "office",
];
/// The objects (qa2, qa3).
pub const OBJECTS: [&str; 3] = ["football", "apple", "milk"];
/// Verbs of a move.
pub const MOVE_VERBS: [&str; 4] = ["moved to", "went to", "journeyed to", "travelled to"];
/// Verbs of a pick-up.
pub const GRAB_VERBS: [&str; 3] = ["picked up", "got", "grabbed"];
/// Verbs of a drop.
pub const DROP_VERBS: [&str; 3] = ["dropped", "discarded", "put down"];
/// The other words of the templates: statements and the three question forms.
pub const TEMPLATE_WORDS: [&str; 5] = ["the", "where", "is", "was", "before"];

/// The words and templates of a bAbI task.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BabiVocabulary {
    /// The generated world as first written (the default; fixed so results stay comparable).
    #[default]
    Generated,
    /// The real English bAbI tasks 1–3: their words and story shape.
    English,
}

/// The verb phrases and other words a story may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Templates {
    /// Verbs of a move ("Mary went back to the kitchen.").
    pub move_verbs: &'static [&'static str],
    /// Verbs of a pick-up ("Mary took the apple.").
    pub grab_verbs: &'static [&'static str],
    /// Verbs of a drop ("Mary left the apple.").
    pub drop_verbs: &'static [&'static str],
    /// Whether a pick-up or drop may end in "there" (half of them do).
    pub there: bool,
    /// The remaining words: articles, question words, "there".
    pub other_words: &'static [&'static str],
    /// Several questions per story, one after every second statement (the real files' shape),
    /// instead of one at the end.
    pub interleaved_questions: bool,
}

/// The generated world's templates.
const GENERATED: Templates = Templates {
    move_verbs: &MOVE_VERBS,
    grab_verbs: &GRAB_VERBS,
    drop_verbs: &DROP_VERBS,
    there: false,
    other_words: &TEMPLATE_WORDS,
    interleaved_questions: false,
};

/// The real English tasks' templates.
const ENGLISH: Templates = Templates {
    move_verbs: &[
        "moved to",
        "went to",
        "journeyed to",
        "travelled to",
        "went back to",
    ],
    grab_verbs: &["picked up", "got", "grabbed", "took"],
    drop_verbs: &["dropped", "discarded", "put down", "left"],
    there: true,
    other_words: &["the", "where", "is", "was", "before", "there"],
    interleaved_questions: true,
};

impl BabiVocabulary {
    /// The config name: `generated` or `english`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::English => "english",
        }
    }

    /// The templates of this vocabulary.
    pub fn templates(self) -> &'static Templates {
        match self {
            Self::Generated => &GENERATED,
            Self::English => &ENGLISH,
        }
    }

    /// Every word any template can produce, sorted (`V`; the input width is `V + 1`).
    pub fn words(self) -> Vocabulary {
        let t = self.templates();
        let phrases = [
            &PEOPLE[..],
            &LOCATIONS,
            &OBJECTS,
            t.move_verbs,
            t.grab_verbs,
            t.drop_verbs,
            t.other_words,
        ];
        Vocabulary::new(phrases.into_iter().flatten().flat_map(|p| tokenize(p)))
    }
}
