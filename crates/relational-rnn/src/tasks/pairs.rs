//! Pair match / compare: store a list of items, then answer a question about two of them.
//!
//! Items carry distinct ids from `0..max_items` (`max_items = hard_num_items`, so the input width
//! is the same in every split), a colour `~ U{0..num_colours−1}` and a value bucket (distinct per
//! sequence, from `0..num_buckets`). Feature blocks:
//! `[onehot(id) | onehot(colour) | onehot(value) | onehot(first) | onehot(second) | onehot(question)]`.
//!
//! Steps `0..num_items`: one item each (the first three blocks). Last step: the query (the last
//! three blocks), two item ids and a question type:
//! - `same colour?` → class 1 if the two items share a colour, else 0. The second item's colour is
//!   set so that the answer is yes with probability 1/2 (balanced classes);
//! - `which is larger?` → class 0 if the first item's value is larger, 1 if the second's.
//!
//! `F = 3·max_items + num_colours + num_buckets + 2`, `T = num_items + 1`, `C = 2`.
//! Baselines: chance 1/2, majority 1/2 (balanced by construction), no known plateau. Without
//! comparing the two items, a rule can still read one item's value: "the second is larger iff its
//! value is in the upper half" is right ≈ 0.77 of the time on `which is larger?` at the defaults,
//! while `same colour?` stays at 1/2 (the second colour is drawn after the answer), ≈ 0.63 in all;
//! [`Task::heuristics`] scores it and `majority` on data.
//!
//! Hard split: `hard_num_items` items and the pair at least `num_items` positions apart (more
//! items between the pair than any train sequence can have). Train/test are partitioned by content
//! hash (see [`super::split`]).

use ndarray::{Array2, Array3};
use rand::seq::index::sample;
use rand::{Rng, RngCore};

use super::heuristics::{Heuristic, majority};
use super::split::{content_hash, draw_admitted};
use super::{Baselines, Batch, Dataset, Example, Split, Task};
use crate::ConfigError;

/// Configuration of [`Pairs`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairsConfig {
    /// Items per sequence in train/test. Default 6.
    pub num_items: usize,
    /// Number of colours. Default 4.
    pub num_colours: usize,
    /// Number of value buckets (values are distinct within a sequence). Default 16.
    pub num_buckets: usize,
    /// Items per sequence in the hard split; also the number of id slots. Default 12.
    pub hard_num_items: usize,
}

impl Default for PairsConfig {
    fn default() -> Self {
        Self {
            num_items: 6,
            num_colours: 4,
            num_buckets: 16,
            hard_num_items: 12,
        }
    }
}

impl PairsConfig {
    /// `num_items ≥ 2`, `num_colours ≥ 2`, `hard_num_items ≥ num_items + 1` (room for a wider gap),
    /// `num_buckets ≥ hard_num_items` (distinct values).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("num_items", self.num_items, 2)?;
        ConfigError::require_size("num_colours", self.num_colours, 2)?;
        ConfigError::require_size("hard_num_items", self.hard_num_items, self.num_items + 1)?;
        ConfigError::require_size("num_buckets", self.num_buckets, self.hard_num_items)
    }
}

/// The question asked about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairQuestion {
    /// Do the two items share a colour? 1 = yes, 0 = no.
    SameColour,
    /// Which item has the larger value? 0 = the first, 1 = the second.
    Larger,
}

/// One item of a pairs sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PairItem {
    /// Its id (unique within the sequence).
    pub id: usize,
    /// Its colour.
    pub colour: usize,
    /// Its value bucket (unique within the sequence).
    pub value: usize,
}

/// One pairs example in readable form.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairsExample {
    /// The items in input order.
    pub items: Vec<PairItem>,
    /// Id of the first queried item.
    pub first: usize,
    /// Id of the second queried item.
    pub second: usize,
    /// The question.
    pub question: PairQuestion,
    /// The answer class.
    pub target: usize,
}

/// The pair match/compare task generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    config: PairsConfig,
}

impl Pairs {
    /// Validates `config` and builds the task.
    pub fn new(config: PairsConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// Items per sequence in `split`.
    pub fn num_items(&self, split: Split) -> usize {
        match split {
            Split::Hard => self.config.hard_num_items,
            Split::Train | Split::Val | Split::Test => self.config.num_items,
        }
    }

    /// Draws one example of `split`.
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> PairsExample {
        let c = &self.config;
        let len = self.num_items(split);
        let min_gap = if split == Split::Hard { c.num_items } else { 1 };
        let draw = || {
            let ids = sample(rng, c.hard_num_items, len).into_vec();
            let values = sample(rng, c.num_buckets, len).into_vec();
            let mut items: Vec<PairItem> = ids
                .into_iter()
                .zip(values)
                .map(|(id, value)| PairItem {
                    id,
                    colour: rng.random_range(0..c.num_colours),
                    value,
                })
                .collect();
            let (i, j) = loop {
                let (i, j) = (rng.random_range(0..len), rng.random_range(0..len));
                if i.abs_diff(j) >= min_gap {
                    break (i, j);
                }
            };
            let question = if rng.random_bool(0.5) {
                PairQuestion::SameColour
            } else {
                PairQuestion::Larger
            };
            let target = match question {
                PairQuestion::SameColour => {
                    let same = rng.random_bool(0.5);
                    items[j].colour = if same {
                        items[i].colour
                    } else {
                        (items[i].colour + rng.random_range(1..c.num_colours)) % c.num_colours
                    };
                    usize::from(same)
                }
                PairQuestion::Larger => usize::from(items[j].value > items[i].value),
            };
            PairsExample {
                first: items[i].id,
                second: items[j].id,
                items,
                question,
                target,
            }
        };
        draw_admitted(split, draw, |ex| {
            content_hash(
                ex.items
                    .iter()
                    .flat_map(|it| [it.id as u64, it.colour as u64, it.value as u64])
                    .chain([ex.first as u64, ex.second as u64, ex.question as u64]),
            )
        })
    }

    /// Encodes examples of `split` as a batch; the target sits on the last (query) step.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets: [T, B]`, `mask: [T, B]` with `T = num_items(split) + 1`,
    /// `F = 3·max_items + num_colours + num_buckets + 2`.
    ///
    /// # Panics
    /// If an example does not have `num_items(split)` items.
    pub fn encode(&self, split: Split, examples: &[PairsExample]) -> Batch {
        let c = &self.config;
        let t_len = self.seq_len(split);
        let colour_off = c.hard_num_items;
        let value_off = colour_off + c.num_colours;
        let first_off = value_off + c.num_buckets;
        let second_off = first_off + c.hard_num_items;
        let question_off = second_off + c.hard_num_items;
        let b = examples.len();
        let mut inputs = Array3::<f32>::zeros((t_len, b, self.input_size())); // [T, B, F]
        let mut targets = Array2::<usize>::zeros((t_len, b)); // [T, B]
        let mut mask = Array2::<bool>::from_elem((t_len, b), false); // [T, B]
        for (j, ex) in examples.iter().enumerate() {
            assert_eq!(
                ex.items.len(),
                t_len - 1,
                "pairs example of the wrong length"
            );
            for (t, item) in ex.items.iter().enumerate() {
                inputs[[t, j, item.id]] = 1.0;
                inputs[[t, j, colour_off + item.colour]] = 1.0;
                inputs[[t, j, value_off + item.value]] = 1.0;
            }
            let q = t_len - 1;
            inputs[[q, j, first_off + ex.first]] = 1.0;
            inputs[[q, j, second_off + ex.second]] = 1.0;
            inputs[[q, j, question_off + ex.question as usize]] = 1.0;
            targets[[q, j]] = ex.target;
            mask[[q, j]] = true;
        }
        Batch::new(inputs, targets, mask)
    }
}

impl Task for Pairs {
    fn name(&self) -> &str {
        "pairs"
    }

    fn input_size(&self) -> usize {
        let c = &self.config;
        3 * c.hard_num_items + c.num_colours + c.num_buckets + 2
    }

    fn num_classes(&self) -> usize {
        2
    }

    fn seq_len(&self, split: Split) -> usize {
        self.num_items(split) + 1
    }

    fn baselines(&self) -> Baselines {
        Baselines {
            chance: 0.5,
            majority: 0.5,
            plateau: None,
            plateau_loss: None,
            plateau_meaning: "",
        }
    }

    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic> {
        let upper_half = |ex: &PairsExample| {
            let second = ex.items.iter().find(|it| it.id == ex.second);
            let value = second.expect("the queried item is present").value;
            usize::from(2 * value >= self.config.num_buckets)
        };
        let one_item = data.examples.iter().map(|example| match example {
            Example::Pairs(ex) => vec![match ex.question {
                PairQuestion::SameColour => 1,
                PairQuestion::Larger => upper_half(ex),
            }],
            _ => panic!("a pairs dataset holds pairs examples"),
        });
        vec![
            majority(self, data),
            Heuristic::score(
                "one_item_value",
                "same colour? -> yes; larger? -> the second iff its value is in the upper half",
                &data.batch,
                one_item,
            ),
        ]
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "pairs: {n} items [onehot(id); onehot(colour of {k}); onehot(value of {v})], then a \
             query [first id; second id; same colour? | which is larger?] (F = {f}, T = {t}, \
             C = 2). Hard split: {h} items, the pair at least {n} apart.",
            n = c.num_items,
            k = c.num_colours,
            v = c.num_buckets,
            f = self.input_size(),
            t = self.seq_len(Split::Train),
            h = c.hard_num_items
        )
    }

    fn sample_examples(
        &self,
        batch: usize,
        split: Split,
        rng: &mut dyn RngCore,
    ) -> (Batch, Vec<Example>) {
        let examples: Vec<_> = (0..batch).map(|_| self.generate(split, rng)).collect();
        let encoded = self.encode(split, &examples);
        (encoded, examples.into_iter().map(Example::Pairs).collect())
    }
}
