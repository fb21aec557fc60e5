//! Heuristic baselines: every rule on a hand-made dataset with a known answer, the majority rule's
//! independence from the evaluated labels, the rules against the closed-form baselines on large
//! generated sets, and the plateau losses against their derivation and simulation.
//!
//! `cargo test -p relational-rnn --test heuristics -- --nocapture` prints every rule's accuracy on
//! the default configurations' test sets (1,000 examples, seed 1234).

use std::collections::{HashMap, HashSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::tasks::babi::{BabiConfig, BabiKind, BabiTask, Story, StoryLine};
use relational_rnn::tasks::{
    Dataset, Example, Heuristic, NthFarthest, NthFarthestConfig, NthFarthestExample, PairItem,
    PairQuestion, Pairs, PairsConfig, PairsExample, Sorting, SortingConfig, SortingExample, Split,
    Task, TaskConfig, TaskKind, Tracking, TrackingConfig, TrackingExample, TrackingMove,
    generate_reasoning_data, start_memory_accuracy,
};

/// The accuracy of the rule called `name`.
#[track_caller]
fn accuracy(heuristics: &[Heuristic], name: &str) -> f64 {
    let found = heuristics.iter().find(|h| h.name == name);
    found
        .unwrap_or_else(|| panic!("no rule `{name}` in {heuristics:?}"))
        .accuracy
}

fn tol(p: f64, n: usize) -> f64 {
    4.5 * (p * (1.0 - p) / n as f64).sqrt()
}

fn names(heuristics: &[Heuristic]) -> Vec<&str> {
    heuristics.iter().map(|h| h.name).collect()
}

#[test]
fn default_test_sets_name_and_score_every_rule() {
    for kind in TaskKind::ALL {
        let config = kind.default_config();
        let task = config.build().unwrap();
        let data = generate_reasoning_data(&config, 0, 1000, 1234).unwrap();
        let heuristics = task.heuristics(&data.test);
        println!("{kind} (test, 1000 examples, seed 1234)");
        for h in &heuristics {
            println!("  {:<30} {:.3}  {}", h.name, h.accuracy, h.description);
        }
        assert_eq!(heuristics[0].name, "majority", "{kind}");
        let unique: HashSet<&str> = names(&heuristics).into_iter().collect();
        assert_eq!(
            unique.len(),
            heuristics.len(),
            "{kind}: names are JSON keys"
        );
        for h in &heuristics {
            assert!(
                h.name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
                "{kind}: `{}` is not snake_case",
                h.name
            );
            assert!((0.0..=1.0).contains(&h.accuracy), "{kind}: {h:?}");
        }
        let best = heuristics.iter().map(|h| h.accuracy).fold(0.0, f64::max);
        assert!(
            best > heuristics[0].accuracy + 0.05,
            "{kind}: some rule beats majority"
        );
        assert_eq!(
            task.heuristics(&data.test),
            heuristics,
            "{kind}: deterministic"
        );
        assert_eq!(names(&task.heuristics(&data.hard)), names(&heuristics));
    }
}

#[test]
fn majority_answers_the_training_majority_whatever_the_evaluated_labels() {
    // Relabel every scored step of a dataset with one class c: a rule that counted the evaluated
    // labels would score 1 for every c; the training majority scores 1 for exactly one c.
    for kind in TaskKind::ALL {
        let config = kind.default_config();
        let task = config.build().unwrap();
        let data = generate_reasoning_data(&config, 0, 20, 5).unwrap();
        let mut perfect = Vec::new();
        for class in 0..task.num_classes() {
            let mut relabelled = data.test.clone();
            let batch = &mut relabelled.batch;
            for (target, &mask) in batch.targets.iter_mut().zip(&batch.mask) {
                if mask {
                    *target = class;
                }
            }
            let majority = accuracy(&task.heuristics(&relabelled), "majority");
            assert!(majority == 0.0 || majority == 1.0, "{kind}: {majority}");
            if majority == 1.0 {
                perfect.push(class);
            }
        }
        assert_eq!(
            perfect.len(),
            1,
            "{kind}: one constant answer, got {perfect:?}"
        );
    }
}

/// The label of the `n`-th farthest vector from the one labelled `m`, by brute force.
fn nth_farthest_target(vectors: &[Vec<f32>], labels: &[usize], n: usize, m: usize) -> usize {
    let reference = &vectors[labels.iter().position(|&l| l == m).unwrap()];
    let mut by_distance: Vec<(f32, usize)> = vectors
        .iter()
        .zip(labels)
        .map(|(v, &l)| ((v[0] - reference[0]).abs(), l))
        .collect();
    by_distance.sort_by(|a, b| b.0.total_cmp(&a.0));
    by_distance[n].1
}

#[test]
fn nth_farthest_rules_on_a_hand_made_set() {
    let task = NthFarthest::new(NthFarthestConfig {
        num_vectors: 3,
        dim: 1,
        hard_gap: 0.02,
        active_dims: None,
    })
    .unwrap();
    // Vector 0 at 0.8 carries label 2, vector 1 at 0.9 label 0, vector 2 at −0.3 label 1: the
    // largest norm (0.9) is the nearest to 0.8, so ranking by norm fails where distances matter.
    let vectors = vec![vec![0.8], vec![0.9], vec![-0.3]];
    let labels = vec![2, 0, 1];
    // (n, m) | target | plateau rule (n = 2 → m, else smallest label ≠ m) | norm
    // (2, 1) |   1    | 1 ✓                                              | 1 ✓
    // (0, 0) |   1    | 1 ✓                                              | 2 (norm 0.64 > 0.09) ✗
    // (1, 0) |   2    | 1 ✗                                              | 1 ✗
    // (0, 2) |   1    | 0 ✗                                              | 0 (norm 0.81) ✗
    let examples: Vec<NthFarthestExample> = [(2, 1), (0, 0), (1, 0), (0, 2)]
        .into_iter()
        .map(|(n, m)| NthFarthestExample {
            target: nth_farthest_target(&vectors, &labels, n, m),
            vectors: vectors.clone(),
            labels: labels.clone(),
            n,
            m,
        })
        .collect();
    let targets: Vec<usize> = examples.iter().map(|ex| ex.target).collect();
    assert_eq!(targets, [1, 1, 2, 1], "the table above");
    let data = Dataset {
        split: Split::Test,
        batch: task.encode(&examples),
        examples: examples.into_iter().map(Example::NthFarthest).collect(),
    };
    let heuristics = task.heuristics(&data);
    assert_eq!(names(&heuristics), ["majority", "plateau_rule", "norm"]);
    assert_eq!(accuracy(&heuristics, "plateau_rule"), 0.5);
    assert_eq!(accuracy(&heuristics, "norm"), 0.25);
}

#[test]
fn norm_rule_is_the_norm_heuristic_and_keeps_its_reference_value() {
    // reference/nth_farthest.py: 0.307 at K = 8, dim 16 (200k samples).
    let config = TaskConfig::NthFarthest(NthFarthestConfig::default());
    let n = 20_000;
    let data = generate_reasoning_data(&config, 0, n, 11).unwrap();
    let task = NthFarthest::new(NthFarthestConfig::default()).unwrap();
    let predictions = task.norm_heuristic(&data.test.batch);
    let direct = (0..n)
        .filter(|&b| predictions[b] == data.test.batch.targets[[7, b]])
        .count() as f64
        / n as f64;
    let heuristics = task.heuristics(&data.test);
    assert_eq!(accuracy(&heuristics, "norm"), direct);
    assert!((direct - 0.307).abs() < tol(0.307, n) + 0.005, "{direct}");
    let plateau = task.baselines().plateau.unwrap();
    let rule = accuracy(&heuristics, "plateau_rule");
    assert!(
        (rule - plateau).abs() < tol(plateau, n),
        "{rule} vs {plateau}"
    );
}

fn tracking_example(
    objects: [usize; 3],
    starts: [usize; 3],
    moves: [(usize, i8); 6],
    query: usize,
    target: usize,
) -> TrackingExample {
    TrackingExample {
        objects: objects.to_vec(),
        starts: starts.to_vec(),
        moves: moves
            .iter()
            .map(|&(object, delta)| TrackingMove { object, delta })
            .collect(),
        query,
        target,
    }
}

#[test]
fn tracking_start_position_on_a_hand_made_set() {
    let task = Tracking::new(TrackingConfig::default()).unwrap();
    let examples = vec![
        // object 3 starts at 4, steps −1 then +1: back at its start ✓
        tracking_example(
            [0, 3, 1],
            [2, 4, 0],
            [(3, -1), (0, 1), (1, 1), (3, 1), (0, 0), (1, 1)],
            3,
            4,
        ),
        // object 1 starts at 0, moves +1 twice: at 2, not 0 ✗
        tracking_example(
            [0, 3, 1],
            [2, 4, 0],
            [(3, -1), (0, 1), (1, 1), (3, 1), (0, 0), (1, 1)],
            1,
            2,
        ),
        // object 2 starts at 0, clamped by −1: still at 0 ✓
        tracking_example(
            [2, 4, 0],
            [0, 1, 1],
            [(2, -1), (4, 1), (4, 1), (0, 0), (0, 1), (4, -1)],
            2,
            0,
        ),
    ];
    let data = Dataset {
        split: Split::Test,
        batch: task.encode(Split::Test, &examples),
        examples: examples.into_iter().map(Example::Tracking).collect(),
    };
    let heuristics = task.heuristics(&data);
    assert_eq!(names(&heuristics), ["majority", "start_position"]);
    assert_eq!(accuracy(&heuristics, "start_position"), 2.0 / 3.0);
}

#[test]
fn tracking_start_position_matches_start_memory_accuracy() {
    let config = TrackingConfig::default();
    let n = 20_000;
    let data = generate_reasoning_data(&TaskConfig::Tracking(config.clone()), 0, n, 2).unwrap();
    let task = Tracking::new(config.clone()).unwrap();
    let rule = accuracy(&task.heuristics(&data.test), "start_position");
    let exact = start_memory_accuracy(config.num_objects, config.num_positions, config.num_moves);
    assert!((rule - exact).abs() < tol(exact, n), "{rule} vs {exact}");
    let hard = accuracy(&task.heuristics(&data.hard), "start_position");
    let exact_hard = start_memory_accuracy(
        config.hard_num_objects,
        config.num_positions,
        config.hard_num_moves,
    );
    assert!(
        (hard - exact_hard).abs() < tol(exact_hard, n),
        "{hard} vs {exact_hard}"
    );
}

#[test]
fn sorting_position_only_scores_every_output_position() {
    // 6 binary tokens: the j-th smallest is most likely 0 for j < 3 (P(≥ j+1 zeros) ≥ 42/64) and
    // 1 for j ≥ 3 (P(≥ 4 zeros) = 22/64), so the rule answers 0 0 0 1 1 1.
    let task = Sorting::new(SortingConfig {
        len: 6,
        vocab: 2,
        hard_len: 7,
    })
    .unwrap();
    let example = |tokens: [usize; 6]| {
        let mut sorted = tokens.to_vec();
        sorted.sort();
        SortingExample {
            tokens: tokens.to_vec(),
            sorted,
        }
    };
    // all ones: 3 of 6 right; three of each: 6 of 6; one zero: 0 1 1 1 1 1 vs 0 0 0 1 1 1, 4 of 6
    let examples = vec![
        example([1, 1, 1, 1, 1, 1]),
        example([1, 0, 1, 0, 0, 1]),
        example([1, 1, 0, 1, 1, 1]),
    ];
    let data = Dataset {
        split: Split::Test,
        batch: task.encode(Split::Test, &examples),
        examples: examples.into_iter().map(Example::Sorting).collect(),
    };
    let heuristics = task.heuristics(&data);
    assert_eq!(names(&heuristics), ["majority", "position_only"]);
    assert_eq!(accuracy(&heuristics, "position_only"), 13.0 / 18.0);
}

#[test]
fn sorting_position_only_matches_its_closed_form() {
    let config = SortingConfig::default();
    let n = 20_000;
    let data = generate_reasoning_data(&TaskConfig::Sorting(config.clone()), 0, n, 6).unwrap();
    let task = Sorting::new(config).unwrap();
    let rule = accuracy(&task.heuristics(&data.test), "position_only");
    let exact = task.baselines().plateau.unwrap();
    // n sequences of 5 correlated positions: at most 5x the variance of n independent tokens.
    assert!(
        (rule - exact).abs() < 5f64.sqrt() * tol(exact, n),
        "{rule} vs {exact}"
    );
}

#[test]
fn pairs_one_item_value_on_a_hand_made_set() {
    let task = Pairs::new(PairsConfig::default()).unwrap();
    let item = |id, colour, value| PairItem { id, colour, value };
    let items = vec![
        item(4, 0, 3),
        item(7, 1, 12),
        item(1, 0, 9),
        item(0, 2, 14),
        item(9, 0, 2),
        item(3, 1, 5),
    ];
    let example = |first, second, question, target| PairsExample {
        items: items.clone(),
        first,
        second,
        question,
        target,
    };
    // same colour? → always "yes"; larger? → the second iff its value ≥ 8 (of 16 buckets)
    let examples = vec![
        example(4, 1, PairQuestion::SameColour, 1), // colours 0, 0: yes ✓
        example(4, 7, PairQuestion::SameColour, 0), // colours 0, 1: no ✗
        example(4, 7, PairQuestion::Larger, 1),     // 3 < 12, 12 ≥ 8 → second ✓
        example(0, 1, PairQuestion::Larger, 0),     // 14 > 9, 9 ≥ 8 → second ✗
        example(3, 9, PairQuestion::Larger, 0),     // 5 > 2, 2 < 8 → first ✓
    ];
    let data = Dataset {
        split: Split::Test,
        batch: task.encode(Split::Test, &examples),
        examples: examples.into_iter().map(Example::Pairs).collect(),
    };
    let heuristics = task.heuristics(&data);
    assert_eq!(names(&heuristics), ["majority", "one_item_value"]);
    assert_eq!(accuracy(&heuristics, "one_item_value"), 0.6);
}

/// A story of `statements` and one question with its answer (supporting ids are not read by the
/// rules).
fn story(statements: &[&str], question: &str, answer: &str) -> Story {
    let mut lines: Vec<StoryLine> = statements
        .iter()
        .enumerate()
        .map(|(i, text)| StoryLine::Statement {
            id: i + 1,
            text: text.to_string(),
        })
        .collect();
    lines.push(StoryLine::Question {
        id: statements.len() + 1,
        text: question.to_string(),
        answer: answer.to_string(),
        supporting: vec![1],
    });
    Story { lines }
}

fn babi_heuristics(kind: BabiKind, stories: Vec<Story>) -> Vec<Heuristic> {
    let task = BabiTask::new(BabiConfig::new(kind)).unwrap();
    let (batch, examples) = task.encode(Split::Test, stories);
    task.heuristics(&Dataset {
        split: Split::Test,
        batch,
        examples: examples.into_iter().map(Example::Babi).collect(),
    })
}

#[test]
fn babi_qa1_rules_on_a_hand_made_set() {
    let heuristics = babi_heuristics(
        BabiKind::Qa1,
        vec![
            // last: hallway ✗; most frequent: a tie, the latest (hallway) ✗
            story(
                &["Mary moved to the bathroom.", "John went to the hallway."],
                "Where is Mary?",
                "bathroom",
            ),
            // last: office ✓; most frequent: bathroom ✗
            story(
                &[
                    "Mary moved to the bathroom.",
                    "John went to the bathroom.",
                    "Daniel journeyed to the office.",
                ],
                "Where is Daniel?",
                "office",
            ),
            // both: garden ✓
            story(
                &["John went to the garden.", "Mary moved to the garden."],
                "Where is Mary?",
                "garden",
            ),
        ],
    );
    assert_eq!(
        names(&heuristics),
        [
            "majority",
            "last_location_mentioned",
            "most_frequent_location"
        ]
    );
    assert_eq!(accuracy(&heuristics, "last_location_mentioned"), 2.0 / 3.0);
    assert_eq!(accuracy(&heuristics, "most_frequent_location"), 1.0 / 3.0);
}

#[test]
fn babi_qa2_most_frequent_location_on_a_hand_made_set() {
    let heuristics = babi_heuristics(
        BabiKind::Qa2,
        vec![
            // locations: kitchen, kitchen, garden → most frequent kitchen ✓, last garden ✗
            story(
                &[
                    "Mary went to the kitchen.",
                    "Mary got the milk.",
                    "John went to the kitchen.",
                    "Mary dropped the milk.",
                    "Sandra went to the garden.",
                ],
                "Where is the milk?",
                "kitchen",
            ),
            // locations: office, hallway, hallway → hallway ✗ for both
            story(
                &[
                    "John went to the office.",
                    "John grabbed the apple.",
                    "Daniel went to the hallway.",
                    "Sandra went to the hallway.",
                ],
                "Where is the apple?",
                "office",
            ),
        ],
    );
    assert_eq!(
        names(&heuristics),
        [
            "majority",
            "last_location_mentioned",
            "most_frequent_location"
        ]
    );
    assert_eq!(accuracy(&heuristics, "most_frequent_location"), 0.5);
    assert_eq!(accuracy(&heuristics, "last_location_mentioned"), 0.0);
}

#[test]
fn babi_qa3_rules_on_a_hand_made_set() {
    let heuristics = babi_heuristics(
        BabiKind::Qa3,
        vec![
            // locations: office, kitchen, garden, bathroom, garden; asked: garden.
            // last: garden ✗; most frequent: garden ✗; most frequent other: a three-way tie, the
            // latest (bathroom) ✗; before the last garden: bathroom ✗
            story(
                &[
                    "John went to the office.",
                    "John grabbed the football.",
                    "Mary went to the kitchen.",
                    "John moved to the garden.",
                    "Sandra went to the bathroom.",
                    "Mary went to the garden.",
                ],
                "Where was the football before the garden?",
                "office",
            ),
            // locations: kitchen, office; asked: office. last ✗; most frequent: a tie, office ✗;
            // most frequent other: kitchen ✓; before office: kitchen ✓
            story(
                &[
                    "Mary went to the kitchen.",
                    "Mary got the milk.",
                    "Mary travelled to the office.",
                ],
                "Where was the milk before the office?",
                "kitchen",
            ),
            // locations: hallway, hallway, bedroom, office; asked: office. last ✗; most frequent:
            // hallway ✗; most frequent other: hallway ✗; before office: bedroom ✓
            story(
                &[
                    "Daniel went to the hallway.",
                    "Sandra went to the hallway.",
                    "John went to the bedroom.",
                    "John picked up the apple.",
                    "John went to the office.",
                ],
                "Where was the apple before the office?",
                "bedroom",
            ),
        ],
    );
    assert_eq!(
        names(&heuristics),
        [
            "majority",
            "last_location_mentioned",
            "most_frequent_location",
            "most_frequent_other_location",
            "before_question_location"
        ]
    );
    assert_eq!(accuracy(&heuristics, "last_location_mentioned"), 0.0);
    assert_eq!(accuracy(&heuristics, "most_frequent_location"), 0.0);
    assert_eq!(
        accuracy(&heuristics, "most_frequent_other_location"),
        1.0 / 3.0
    );
    assert_eq!(accuracy(&heuristics, "before_question_location"), 2.0 / 3.0);
}

#[test]
fn babi_qa1_last_location_is_a_shortcut_not_a_solution() {
    let config = TaskConfig::Babi(BabiConfig::new(BabiKind::Qa1));
    let data = generate_reasoning_data(&config, 0, 2000, 8).unwrap();
    let task = config.build().unwrap();
    let last = accuracy(&task.heuristics(&data.test), "last_location_mentioned");
    let chance = task.baselines().chance;
    assert!(last > chance + 0.1 && last < 0.75, "{last}");
}

#[test]
fn nth_farthest_plateau_loss_is_its_derivation() {
    // certain of m when n = K−1 (loss 0), uniform over the other K−1 labels otherwise
    for (k, expected) in [(8, 7.0 / 8.0 * 7f64.ln()), (4, 0.75 * 3f64.ln())] {
        let task = NthFarthest::new(NthFarthestConfig {
            num_vectors: k,
            ..NthFarthestConfig::default()
        })
        .unwrap();
        let loss = task.baselines().plateau_loss.unwrap();
        assert!((loss - expected).abs() < 1e-12, "K={k}: {loss}");
    }
}

/// Plug-in estimate of `H(Y | X)` in nats from `(x, y)` draws.
fn conditional_entropy(pairs: &[(usize, usize)]) -> f64 {
    let mut joint: HashMap<(usize, usize), f64> = HashMap::new();
    let mut marginal: HashMap<usize, f64> = HashMap::new();
    for &(x, y) in pairs {
        *joint.entry((x, y)).or_default() += 1.0;
        *marginal.entry(x).or_default() += 1.0;
    }
    let n = pairs.len() as f64;
    joint
        .iter()
        .map(|(&(x, _), &c)| -c / n * (c / marginal[&x]).ln())
        .sum()
}

#[test]
fn tracking_and_sorting_plateau_losses_match_simulation() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let n = 40_000;
    let tracking = Tracking::new(TrackingConfig::default()).unwrap();
    let pairs: Vec<(usize, usize)> = (0..n)
        .map(|_| {
            let ex = tracking.generate(Split::Train, &mut rng);
            let i = ex.objects.iter().position(|&o| o == ex.query).unwrap();
            (ex.starts[i], ex.target)
        })
        .collect();
    let simulated = conditional_entropy(&pairs);
    let loss = tracking.baselines().plateau_loss.unwrap();
    assert!((simulated - loss).abs() < 0.02, "{simulated} vs {loss}");

    // The position-only prediction knows only the output position j: H(X_(j) | j).
    let sorting = Sorting::new(SortingConfig::default()).unwrap();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|_| {
            sorting
                .generate(Split::Train, &mut rng)
                .sorted
                .into_iter()
                .enumerate()
        })
        .collect();
    let simulated = conditional_entropy(&pairs);
    let loss = sorting.baselines().plateau_loss.unwrap();
    assert!((simulated - loss).abs() < 0.02, "{simulated} vs {loss}");
    assert!(loss < (10f64).ln());
}
