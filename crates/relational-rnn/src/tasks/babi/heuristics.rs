//! Heuristic baselines of the bAbI tasks: rules that read which locations a story mentions and
//! when, but never who or what a sentence is about (tying a location to the queried person or
//! object is the task itself).
//!
//! - `last_location_mentioned`: the location of the last statement that names one;
//! - `most_frequent_location`: the location named most often (ties → the latest mentioned);
//! - qa3 only, where the question names a location L ("before the kitchen", never the answer):
//!   `most_frequent_other_location`, the second rule without L, and `before_question_location`,
//!   the last location named before L's last mention (recency, whoever moved).
//!
//! A story that names no such location gets class 0; generated stories always name one.

use super::{BabiExample, BabiKind, Vocabulary, tokenize};
use crate::tasks::{Batch, Dataset, Example, Heuristic};

/// The answer classes of the location words of `sentences`, in story order.
fn mentions<'a>(
    sentences: impl IntoIterator<Item = &'a String>,
    answers: &Vocabulary,
) -> Vec<usize> {
    sentences
        .into_iter()
        .flat_map(|s| tokenize(s))
        .filter_map(|w| answers.id(&w))
        .collect()
}

/// The latest of `mentions` other than `except`.
fn last(mentions: &[usize], except: Option<usize>) -> usize {
    let found = mentions.iter().rev().find(|&&l| Some(l) != except);
    found.copied().unwrap_or(0)
}

/// The most frequent of `mentions` other than `except`, ties to the latest mentioned.
fn most_frequent(mentions: &[usize], except: Option<usize>) -> usize {
    let kept = mentions
        .iter()
        .enumerate()
        .filter(|&(_, &l)| Some(l) != except);
    let key = |&(i, &l): &(usize, &usize)| (mentions.iter().filter(|&&m| m == l).count(), i);
    kept.max_by_key(key).map_or(0, |(_, &l)| l)
}

/// The rules of `kind` (every rule above; no `majority`, which needs the training distribution)
/// scored on a bAbI dataset, e.g. one read from a file.
///
/// # Panics
/// If `data` holds examples of another task (a programmer error).
pub fn location_rules(kind: BabiKind, data: &Dataset, answers: &Vocabulary) -> Vec<Heuristic> {
    let examples: Vec<&BabiExample> = data
        .examples
        .iter()
        .map(|example| match example {
            Example::Babi(ex) => ex,
            _ => panic!("a bAbI dataset holds bAbI examples"),
        })
        .collect();
    rules(kind, &examples, answers, &data.batch)
}

/// The rules of `kind` scored on `batch`, whose column `b` is `examples[b]`.
///
/// # Shapes
/// `batch.targets, batch.mask: [T, B]`, `examples`: `B`.
fn rules(
    kind: BabiKind,
    examples: &[&BabiExample],
    answers: &Vocabulary,
    batch: &Batch,
) -> Vec<Heuristic> {
    // Per story: the locations its statements name, and the one its question names (qa3).
    let stories: Vec<(Vec<usize>, Option<usize>)> = examples
        .iter()
        .map(|ex| {
            let asked = mentions([&ex.question], answers).first().copied();
            (mentions(&ex.context, answers), asked)
        })
        .collect();
    let score = |name, description, rule: fn(&[usize], Option<usize>) -> usize| {
        let answers = stories.iter().map(|(m, asked)| vec![rule(m, *asked)]);
        Heuristic::score(name, description, batch, answers)
    };
    let mut rules = vec![
        score(
            "last_location_mentioned",
            "the last location named in the story",
            |m, _| last(m, None),
        ),
        score(
            "most_frequent_location",
            "the location named most often in the story (ties: the latest)",
            |m, _| most_frequent(m, None),
        ),
    ];
    if kind == BabiKind::Qa3 {
        rules.push(score(
            "most_frequent_other_location",
            "the location named most often other than the question's (ties: the latest)",
            most_frequent,
        ));
        rules.push(score(
            "before_question_location",
            "the last location named before the last mention of the question's location",
            |m, asked| {
                let at = m.iter().rposition(|&l| Some(l) == asked);
                last(&m[..at.unwrap_or(0)], asked)
            },
        ));
    }
    rules
}
