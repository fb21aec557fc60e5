//! Object tracking on a line: remember where objects start, integrate moves that are only ever
//! given as displacements, answer where one object is now.
//!
//! Objects carry ids drawn without replacement from `0..max_objects` (`max_objects =
//! hard_num_objects`, so the input width is the same in every split and every id slot is trained).
//! Steps, with the feature blocks `[onehot(object) | onehot(position) | onehot(move) | query]`:
//!
//! 1. one step per object: `[onehot(id) ; onehot(start) ; 0 ; 0]` (starts uniform, may coincide);
//! 2. `num_moves` steps: `[onehot(id) ; 0 ; onehot(δ ∈ {−1, 0, +1}) ; 0]`, the moved object uniform
//!    among the present ones, the position clamped to `0..num_positions−1`. Positions are never
//!    shown again;
//! 3. a query step `[onehot(id) ; 0 ; 0 ; 1]`; target = the current position of that object.
//!
//! `F = max_objects + num_positions + 4`, `T = num_objects + num_moves + 1`, `C = num_positions`.
//!
//! Baselines: chance `1/P`; majority `1/P` exactly (the clamped lazy walk has a symmetric, hence
//! doubly stochastic, transition matrix `M`, so uniform starts stay uniform); plateau = a model that
//! remembers the starts but ignores the moves, [`start_memory_accuracy`]:
//! `Σ_k Binom(k; num_moves, 1/num_objects) · tr(M^k) / P`; plateau loss = the entropy of the end
//! given the start under that mixture. [`Task::heuristics`] scores the start-position rule and
//! `majority` on data.
//!
//! Hard split: `hard_num_objects` objects and `hard_num_moves` moves (longer, so disjoint from
//! train/test, which are partitioned by content hash, see [`super::split`]).

use ndarray::{Array2, Array3};
use rand::seq::index::sample;
use rand::{Rng, RngCore};

use super::heuristics::{Heuristic, majority};
use super::split::{content_hash, draw_admitted};
use super::{Baselines, Batch, Dataset, Example, Split, Task};
use crate::ConfigError;

/// Configuration of [`Tracking`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    /// Objects in the train/test splits. Default 3.
    pub num_objects: usize,
    /// Cells on the line (= classes). Default 5.
    pub num_positions: usize,
    /// Moves in the train/test splits. Default 6.
    pub num_moves: usize,
    /// Objects in the hard split; also the number of id slots in the input. Default 5.
    pub hard_num_objects: usize,
    /// Moves in the hard split. Default 12.
    pub hard_num_moves: usize,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            num_objects: 3,
            num_positions: 5,
            num_moves: 6,
            hard_num_objects: 5,
            hard_num_moves: 12,
        }
    }
}

impl TrackingConfig {
    /// `num_objects ≥ 1`, `num_positions ≥ 2`, `num_moves ≥ 1`, hard counts at least the
    /// train counts and the hard sequence strictly longer, and at least 64 distinct train sequences.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::require_size("num_objects", self.num_objects, 1)?;
        ConfigError::require_size("num_positions", self.num_positions, 2)?;
        ConfigError::require_size("num_moves", self.num_moves, 1)?;
        ConfigError::require_size("hard_num_objects", self.hard_num_objects, self.num_objects)?;
        ConfigError::require_size("hard_num_moves", self.hard_num_moves, self.num_moves)?;
        let (hard, train) = (
            self.hard_num_objects + self.hard_num_moves,
            self.num_objects + self.num_moves,
        );
        if hard <= train {
            return Err(ConfigError::new(
                "hard_num_moves",
                format!(
                    "hard_num_objects + hard_num_moves must be at least {}, got {hard}",
                    train + 1
                ),
            ));
        }
        // Exponents past 64 cannot bring the count below 64 (every base is at least 2).
        let space = (self.num_positions as f64).powi(self.num_objects.min(64) as i32)
            * (3.0 * self.num_objects as f64).powi(self.num_moves.min(64) as i32);
        if space < 64.0 {
            return Err(ConfigError::new(
                "num_moves",
                format!("fewer than 64 distinct sequences ({space}) cannot split train/test"),
            ));
        }
        Ok(())
    }
}

/// One move: `object` steps by `delta ∈ {−1, 0, +1}` (clamped at the ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrackingMove {
    /// The id of the moved object.
    pub object: usize,
    /// The displacement.
    pub delta: i8,
}

/// One tracking example in readable form.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrackingExample {
    /// Object ids in the order their starts are shown.
    pub objects: Vec<usize>,
    /// `starts[i]`: the start position of `objects[i]`.
    pub starts: Vec<usize>,
    /// The moves in order.
    pub moves: Vec<TrackingMove>,
    /// The id of the queried object.
    pub query: usize,
    /// Its final position.
    pub target: usize,
}

impl TrackingExample {
    /// What each input step shows, for reading a model step by step: `"start"` (an object and
    /// its start), `"move"` (a displacement of ±1), `"stay"` (a displacement of 0) or `"query"`.
    pub fn step_events(&self) -> Vec<&'static str> {
        let moves = self
            .moves
            .iter()
            .map(|m| if m.delta == 0 { "stay" } else { "move" });
        std::iter::repeat_n("start", self.objects.len())
            .chain(moves)
            .chain(std::iter::once("query"))
            .collect()
    }

    /// A short label per input step, as the example prints: `obj2@5` (start), `obj1+1` (move),
    /// `obj2?` (query).
    pub fn step_labels(&self) -> Vec<String> {
        let starts = self
            .objects
            .iter()
            .zip(&self.starts)
            .map(|(o, s)| format!("obj{o}@{s}"));
        let moves = self
            .moves
            .iter()
            .map(|m| format!("obj{}{:+}", m.object, m.delta));
        starts
            .chain(moves)
            .chain(std::iter::once(format!("obj{}?", self.query)))
            .collect()
    }
}

/// The object-tracking task generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    config: TrackingConfig,
}

/// Accuracy of answering the queried object's start position, ignoring the moves (exact).
///
/// The queried object is moved `k ~ Binom(num_moves, 1/num_objects)` times; each move is the clamped
/// lazy walk `M` (`±1` or stay, each 1/3); with a uniform start, `P(end = start | k) = tr(M^k)/P`.
pub fn start_memory_accuracy(num_objects: usize, num_positions: usize, num_moves: usize) -> f64 {
    let end = end_given_start(num_objects, num_positions, num_moves);
    end.diag().sum() / num_positions as f64
}

/// `Q[s, e] = P(end = e | start = s) = Σ_k Binom(k; num_moves, 1/num_objects) · M^k[s, e]` for the
/// queried object when the moves are not seen (see [`start_memory_accuracy`]).
///
/// # Shapes
/// returns `[P, P]`, rows sum to 1.
fn end_given_start(num_objects: usize, num_positions: usize, num_moves: usize) -> Array2<f64> {
    let p = num_positions;
    let mut walk = Array2::<f64>::zeros((p, p)); // [P, P] one move
    for i in 0..p {
        for delta in [-1i64, 0, 1] {
            let j = (i as i64 + delta).clamp(0, p as i64 - 1) as usize;
            walk[[i, j]] += 1.0 / 3.0;
        }
    }
    let q = 1.0 / num_objects as f64;
    let mut power = Array2::<f64>::eye(p); // [P, P] M^k
    let mut binom = 1.0;
    let mut total = Array2::<f64>::zeros((p, p)); // [P, P]
    for k in 0..=num_moves {
        if k > 0 {
            power = power.dot(&walk);
            binom *= (num_moves - k + 1) as f64 / k as f64;
        }
        let prob_k = binom * q.powi(k as i32) * (1.0 - q).powi((num_moves - k) as i32);
        total.scaled_add(prob_k, &power);
    }
    total
}

/// Cross-entropy of the best prediction from the start alone, `Q[start, ·]`: the conditional
/// entropy `−Σ_{s,e} Q[s, e] ln Q[s, e] / P` (starts uniform).
fn start_memory_loss(num_objects: usize, num_positions: usize, num_moves: usize) -> f64 {
    let end = end_given_start(num_objects, num_positions, num_moves);
    let entropy: f64 = end.iter().filter(|&&q| q > 0.0).map(|&q| -q * q.ln()).sum();
    entropy / num_positions as f64
}

impl Tracking {
    /// Validates `config` and builds the task.
    pub fn new(config: TrackingConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// `(objects, moves)` in `split`.
    pub fn sizes(&self, split: Split) -> (usize, usize) {
        match split {
            Split::Hard => (self.config.hard_num_objects, self.config.hard_num_moves),
            Split::Train | Split::Val | Split::Test => {
                (self.config.num_objects, self.config.num_moves)
            }
        }
    }

    /// Draws one example of `split`.
    pub fn generate<R: Rng + ?Sized>(&self, split: Split, rng: &mut R) -> TrackingExample {
        let (num_objects, num_moves) = self.sizes(split);
        let positions = self.config.num_positions;
        let max_objects = self.config.hard_num_objects;
        let draw = || {
            let objects = sample(rng, max_objects, num_objects).into_vec();
            let mut current: Vec<usize> = (0..num_objects)
                .map(|_| rng.random_range(0..positions))
                .collect();
            let starts = current.clone();
            let moves = (0..num_moves)
                .map(|_| {
                    let i = rng.random_range(0..num_objects);
                    let delta = rng.random_range(-1i8..=1);
                    current[i] = current[i]
                        .saturating_add_signed(isize::from(delta))
                        .min(positions - 1);
                    TrackingMove {
                        object: objects[i],
                        delta,
                    }
                })
                .collect();
            let q = rng.random_range(0..num_objects);
            TrackingExample {
                query: objects[q],
                target: current[q],
                objects,
                starts,
                moves,
            }
        };
        draw_admitted(split, draw, |ex| {
            content_hash(
                ex.objects
                    .iter()
                    .chain(&ex.starts)
                    .map(|&x| x as u64)
                    .chain(
                        ex.moves
                            .iter()
                            .flat_map(|mv| [mv.object as u64, (mv.delta + 1) as u64]),
                    )
                    .chain([ex.query as u64]),
            )
        })
    }

    /// Encodes examples of `split` as a batch; the target sits on the last (query) step.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]`, `targets: [T, B]`, `mask: [T, B]` with `T = seq_len(split)`,
    /// `F = max_objects + num_positions + 4`.
    ///
    /// # Panics
    /// If an example does not have the sizes of `split`.
    pub fn encode(&self, split: Split, examples: &[TrackingExample]) -> Batch {
        let (num_objects, num_moves) = self.sizes(split);
        let t_len = self.seq_len(split);
        let pos_off = self.config.hard_num_objects;
        let move_off = pos_off + self.config.num_positions;
        let query_flag = move_off + 3;
        let b = examples.len();
        let mut inputs = Array3::<f32>::zeros((t_len, b, self.input_size())); // [T, B, F]
        let mut targets = Array2::<usize>::zeros((t_len, b)); // [T, B]
        let mut mask = Array2::<bool>::from_elem((t_len, b), false); // [T, B]
        for (j, ex) in examples.iter().enumerate() {
            assert!(
                ex.objects.len() == num_objects && ex.moves.len() == num_moves,
                "tracking example does not have the {split} sizes"
            );
            for (t, (&id, &start)) in ex.objects.iter().zip(&ex.starts).enumerate() {
                inputs[[t, j, id]] = 1.0;
                inputs[[t, j, pos_off + start]] = 1.0;
            }
            for (i, mv) in ex.moves.iter().enumerate() {
                let t = num_objects + i;
                inputs[[t, j, mv.object]] = 1.0;
                inputs[[t, j, move_off + (mv.delta + 1) as usize]] = 1.0;
            }
            inputs[[t_len - 1, j, ex.query]] = 1.0;
            inputs[[t_len - 1, j, query_flag]] = 1.0;
            targets[[t_len - 1, j]] = ex.target;
            mask[[t_len - 1, j]] = true;
        }
        Batch::new(inputs, targets, mask)
    }
}

impl Task for Tracking {
    fn name(&self) -> &str {
        "tracking"
    }

    fn input_size(&self) -> usize {
        self.config.hard_num_objects + self.config.num_positions + 4
    }

    fn num_classes(&self) -> usize {
        self.config.num_positions
    }

    fn seq_len(&self, split: Split) -> usize {
        let (objects, moves) = self.sizes(split);
        objects + moves + 1
    }

    fn baselines(&self) -> Baselines {
        let c = &self.config;
        Baselines {
            chance: 1.0 / c.num_positions as f64,
            majority: 1.0 / c.num_positions as f64,
            plateau: Some(start_memory_accuracy(
                c.num_objects,
                c.num_positions,
                c.num_moves,
            )),
            plateau_loss: Some(start_memory_loss(
                c.num_objects,
                c.num_positions,
                c.num_moves,
            )),
            plateau_meaning: "remember the start positions, ignore the moves",
        }
    }

    fn heuristics(&self, data: &Dataset) -> Vec<Heuristic> {
        let examples = data.examples.iter().map(|example| match example {
            Example::Tracking(ex) => ex,
            _ => panic!("a tracking dataset holds tracking examples"),
        });
        let start = |ex: &TrackingExample| {
            let i = ex.objects.iter().position(|&o| o == ex.query);
            ex.starts[i.expect("the queried object is present")]
        };
        vec![
            majority(self, data),
            Heuristic::score(
                "start_position",
                "the queried object's start position (the plateau: ignore the moves)",
                &data.batch,
                examples.map(|ex| vec![start(ex)]),
            ),
        ]
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "tracking: {o} objects (ids from {h} slots) on {p} cells, {o} start steps, {mv} move \
             steps [onehot(id); onehot(-1/0/+1)], one query step; target = final position \
             (F = {f}, T = {t}, C = {p}). Hard split: {h} objects, {hm} moves.",
            o = c.num_objects,
            h = c.hard_num_objects,
            p = c.num_positions,
            mv = c.num_moves,
            hm = c.hard_num_moves,
            f = self.input_size(),
            t = self.seq_len(Split::Train)
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
        (
            encoded,
            examples.into_iter().map(Example::Tracking).collect(),
        )
    }
}
