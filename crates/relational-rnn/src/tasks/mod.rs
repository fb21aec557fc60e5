//! Sequential reasoning tasks: generators that produce [`Batch`]es (specification:
//! `docs/TASKS.md`).
//!
//! | task | CLI name | answers |
//! |---|---|---|
//! | [`NthFarthest`] | `nth-farthest` | label of the n-th farthest vector from vector m (the paper's) |
//! | [`Sorting`] | `sorting` | the input tokens in ascending order, after the whole input |
//! | [`Tracking`] | `tracking` | where an object is after moves given only as displacements |
//! | [`Pairs`] | `pairs` | same colour? / which is larger? for two stored items |
//! | [`BabiTask`] | `babi-qa1..3` | bAbI questions with 1–3 supporting facts |
//!
//! All implement [`Task`]; [`TaskConfig`] builds them from a validated configuration and
//! [`generate_reasoning_data`] draws fixed train/test/hard sets from one seed ([`split`] explains
//! how the splits are seeded and kept disjoint). Training draws fresh batches per step with
//! [`Task::sample`] and an explicit generator. Every task documents its chance, majority-class and
//! plateau accuracy ([`Baselines`]) and scores simple rules that ignore the relations it is about
//! on any fixed dataset ([`Task::heuristics`]).

pub mod babi;
mod baselines;
mod batch;
mod display;
pub mod heuristics;
mod nth_farthest;
mod pairs;
mod sorting;
pub mod split;
mod task;
mod tracking;

pub use babi::{BabiConfig, BabiExample, BabiKind, BabiTask};
pub use baselines::Baselines;
pub use batch::Batch;
pub use heuristics::Heuristic;
pub use nth_farthest::{NthFarthest, NthFarthestConfig, NthFarthestExample};
pub use pairs::{PairItem, PairQuestion, Pairs, PairsConfig, PairsExample};
pub use sorting::{Sorting, SortingConfig, SortingExample, position_only_accuracy};
pub use split::{Split, split_rng};
pub use task::{
    Dataset, Example, ReasoningData, Task, TaskConfig, TaskKind, generate_reasoning_data,
};
pub use tracking::{
    Tracking, TrackingConfig, TrackingExample, TrackingMove, start_memory_accuracy,
};
