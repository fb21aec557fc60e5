//! Heuristic baselines: simple rules that ignore the relations a task is about, scored on a fixed
//! dataset exactly as a model is (every masked step of the batch counts once, as in
//! [`crate::loss::count_correct`]). A model that does not beat the best of them has not shown the
//! reasoning the task asks for.
//!
//! Every task reports `majority`: always the most frequent class of the *training* distribution,
//! estimated from a fixed-seed sample of [`MAJORITY_SAMPLE`] training examples, never from the
//! evaluated split's own labels. The task-specific rules live with each task's
//! [`Task::heuristics`].

use super::{Batch, Dataset, Split, Task, split_rng};

/// Training examples drawn to estimate the majority class.
pub const MAJORITY_SAMPLE: usize = 10_000;

/// Seed of that sample (the stream of [`Split::Train`]).
pub const MAJORITY_SEED: u64 = 0xC0FFEE;

/// One simple rule that ignores the relations the task is about, and its accuracy on a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Heuristic {
    /// Short snake_case identifier (a JSON key), e.g. `start_position`.
    pub name: &'static str,
    /// What the rule answers, in one line.
    pub description: &'static str,
    /// Fraction of the dataset's scored steps it answers correctly.
    pub accuracy: f64,
}

impl Heuristic {
    /// The rule `name` scored on `batch`: `answers` yields, per sequence in batch order, the
    /// rule's answers at that sequence's masked steps in time order.
    ///
    /// # Shapes
    /// `batch.targets, batch.mask: [T, B]`; `answers`: `B` vectors, the `b`-th as long as column
    /// `b` has masked steps.
    ///
    /// # Panics
    /// If `answers` does not match the mask (a rule bug).
    #[track_caller]
    pub(crate) fn score(
        name: &'static str,
        description: &'static str,
        batch: &Batch,
        answers: impl IntoIterator<Item = Vec<usize>>,
    ) -> Self {
        let answers: Vec<Vec<usize>> = answers.into_iter().collect();
        assert_eq!(
            answers.len(),
            batch.batch_size(),
            "{name}: one answer list per sequence"
        );
        let (mut correct, mut count) = (0usize, 0usize);
        for (b, answers) in answers.iter().enumerate() {
            let steps: Vec<usize> = (0..batch.steps()).filter(|&t| batch.mask[[t, b]]).collect();
            assert_eq!(
                answers.len(),
                steps.len(),
                "{name}: {} answers for sequence {b}, which has {} scored steps",
                answers.len(),
                steps.len()
            );
            correct += steps
                .iter()
                .zip(answers)
                .filter(|&(&t, &a)| batch.targets[[t, b]] == a)
                .count();
            count += steps.len();
        }
        Self {
            name,
            description,
            accuracy: if count == 0 {
                0.0
            } else {
                correct as f64 / count as f64
            },
        }
    }
}

/// The most frequent target class over the masked steps of [`MAJORITY_SAMPLE`] training examples
/// drawn from `split_rng(MAJORITY_SEED, Train)` (ties go to the smaller class).
fn training_majority(task: &(impl Task + ?Sized)) -> usize {
    let mut counts = vec![0usize; task.num_classes()];
    let mut rng = split_rng(MAJORITY_SEED, Split::Train);
    // Consecutive chunks draw the same examples as one batch would, in bounded memory.
    for start in (0..MAJORITY_SAMPLE).step_by(1000) {
        let batch = task.sample(1000.min(MAJORITY_SAMPLE - start), Split::Train, &mut rng);
        for (&target, _) in batch.targets.iter().zip(&batch.mask).filter(|(_, m)| **m) {
            counts[target] += 1;
        }
    }
    (0..counts.len())
        .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
        .expect("a task has at least one class")
}

/// The `majority` heuristic of `task` on `data`.
pub(crate) fn majority(task: &(impl Task + ?Sized), data: &Dataset) -> Heuristic {
    let class = training_majority(task);
    let batch = &data.batch;
    let answers = (0..batch.batch_size()).map(|b| {
        let scored = (0..batch.steps()).filter(|&t| batch.mask[[t, b]]).count();
        vec![class; scored]
    });
    Heuristic::score(
        "majority",
        "always the most frequent class of the training distribution",
        batch,
        answers,
    )
}
