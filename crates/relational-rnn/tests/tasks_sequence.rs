//! Sorting, tracking and pairs: every target recomputed by brute force from the encoded inputs
//! (so encoding and labelling are both checked), and the computed baselines against simulation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::tasks::{
    Batch, Pairs, PairsConfig, Sorting, SortingConfig, Split, Task, Tracking, TrackingConfig,
    position_only_accuracy, start_memory_accuracy,
};

/// The indices of the non-zero features of step `t`, column `b`, in `[from, to)`, shifted by `from`.
fn hot(batch: &Batch, t: usize, b: usize, from: usize, to: usize) -> Vec<usize> {
    (from..to)
        .filter(|&f| batch.inputs[[t, b, f]] != 0.0)
        .map(|f| f - from)
        .collect()
}

fn tol(p: f64, n: usize) -> f64 {
    4.5 * (p * (1.0 - p) / n as f64).sqrt()
}

#[test]
fn sorting_targets_are_the_sorted_inputs() {
    let task = Sorting::new(SortingConfig::default()).unwrap();
    let (len, vocab) = (5, 10);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (split, l) in [(Split::Train, len), (Split::Test, len), (Split::Hard, 10)] {
        let batch = task.sample(200, split, &mut rng);
        assert_eq!(batch.inputs.dim(), (2 * l, 200, vocab + 1));
        assert_eq!(batch.loss_steps(), (l..2 * l).collect::<Vec<_>>());
        for b in 0..200 {
            let mut tokens: Vec<usize> = (0..l)
                .map(|t| {
                    let h = hot(&batch, t, b, 0, vocab + 1);
                    assert_eq!(h.len(), 1);
                    h[0]
                })
                .collect();
            // insertion sort, written out
            for i in 1..tokens.len() {
                let mut j = i;
                while j > 0 && tokens[j - 1] > tokens[j] {
                    tokens.swap(j - 1, j);
                    j -= 1;
                }
            }
            for (j, &token) in tokens.iter().enumerate() {
                assert_eq!(
                    hot(&batch, l + j, b, 0, vocab + 1),
                    vec![vocab],
                    "go bit only"
                );
                assert!(batch.mask[[l + j, b]]);
                assert_eq!(batch.targets[[l + j, b]], token);
            }
            assert!((0..l).all(|t| !batch.mask[[t, b]]));
        }
    }
}

#[test]
fn sorting_position_only_baseline_matches_simulation() {
    // The train split at the default (10^5 sequences, the test bucket barely perturbs it) and the
    // unpartitioned hard split of a small vocabulary, where the formula's i.i.d. tokens hold exactly.
    let small = SortingConfig {
        len: 3,
        vocab: 4,
        hard_len: 4,
    };
    for (config, split) in [
        (SortingConfig::default(), Split::Train),
        (small, Split::Hard),
    ] {
        let task = Sorting::new(config.clone()).unwrap();
        let (len, vocab) = (task.len(split), config.vocab);
        let n = 30_000;
        let batch = task.sample(n, split, &mut ChaCha8Rng::seed_from_u64(1));
        // most frequent value per output position, then its frequency
        let mut total = 0.0;
        for j in 0..len {
            let mut counts = vec![0usize; vocab];
            for b in 0..n {
                counts[batch.targets[[len + j, b]]] += 1;
            }
            total += *counts.iter().max().unwrap() as f64 / n as f64;
        }
        let empirical = total / len as f64;
        let exact = position_only_accuracy(len, vocab);
        assert!(
            (empirical - exact).abs() < tol(exact, n) + 0.005,
            "{empirical} vs {exact}"
        );
    }
    let default = Sorting::new(SortingConfig::default()).unwrap();
    assert_eq!(
        default.baselines().plateau,
        Some(position_only_accuracy(5, 10))
    );
    // len 1: the only output is the token itself, uniform: 1/vocab.
    assert!((position_only_accuracy(1, 7) - 1.0 / 7.0).abs() < 1e-12);
}

#[test]
fn invalid_configs_are_errors() {
    let sorting = SortingConfig {
        len: 2,
        vocab: 4,
        hard_len: 3,
    };
    assert!(sorting.validate().unwrap_err().to_string().contains("len"));
    let sorting = SortingConfig {
        hard_len: 5,
        ..SortingConfig::default()
    };
    assert!(
        sorting
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hard_len")
    );
    let tracking = TrackingConfig {
        hard_num_objects: 2,
        ..TrackingConfig::default()
    };
    assert!(
        tracking
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hard_num_objects")
    );
    let pairs = PairsConfig {
        num_buckets: 5,
        ..PairsConfig::default()
    };
    assert!(
        pairs
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_buckets")
    );
    let pairs = PairsConfig {
        num_colours: 1,
        ..PairsConfig::default()
    };
    assert!(Pairs::new(pairs).is_err());
}

/// Replays the encoded tracking sequence with explicit clamping.
fn replay_tracking(batch: &Batch, b: usize, ids: usize, positions: usize) -> (usize, usize) {
    let steps = batch.steps();
    let mut where_is = vec![None; ids];
    let (pos, mv, flag) = (ids, ids + positions, ids + positions + 3);
    for t in 0..steps - 1 {
        let obj = hot(batch, t, b, 0, ids);
        assert_eq!(obj.len(), 1);
        let p = hot(batch, t, b, pos, pos + positions);
        let m = hot(batch, t, b, mv, mv + 3);
        assert_eq!(p.len() + m.len(), 1, "a step is a start or a move");
        if let [start] = p[..] {
            assert!(
                where_is[obj[0]].is_none(),
                "starts come first, once per object"
            );
            where_is[obj[0]] = Some(start as i64);
        } else {
            let x = where_is[obj[0]].expect("moved objects were placed");
            let next = x + m[0] as i64 - 1;
            where_is[obj[0]] = Some(next.max(0).min(positions as i64 - 1));
        }
        assert_eq!(batch.inputs[[t, b, flag]], 0.0);
    }
    let q = hot(batch, steps - 1, b, 0, ids);
    assert_eq!(batch.inputs[[steps - 1, b, flag]], 1.0);
    (where_is[q[0]].unwrap() as usize, q[0])
}

#[test]
fn tracking_targets_match_a_replay() {
    let config = TrackingConfig::default();
    let task = Tracking::new(config.clone()).unwrap();
    let ids = config.hard_num_objects;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for split in Split::ALL {
        let batch = task.sample(300, split, &mut rng);
        let t = task.seq_len(split);
        assert_eq!(batch.inputs.dim(), (t, 300, task.input_size()));
        assert_eq!(batch.loss_steps(), vec![t - 1]);
        for b in 0..300 {
            let (expected, _) = replay_tracking(&batch, b, ids, config.num_positions);
            assert_eq!(batch.targets[[t - 1, b]], expected, "{split} b={b}");
        }
    }
    assert_eq!(task.seq_len(Split::Train), 3 + 6 + 1);
    assert_eq!(task.seq_len(Split::Hard), 5 + 12 + 1);
}

#[test]
fn tracking_baselines_match_simulation() {
    let config = TrackingConfig::default();
    let task = Tracking::new(config.clone()).unwrap();
    let n = 30_000;
    let batch = task.sample(n, Split::Train, &mut ChaCha8Rng::seed_from_u64(3));
    let t = task.seq_len(Split::Train);
    let (mut same_as_start, mut counts) = (0usize, vec![0usize; config.num_positions]);
    for b in 0..n {
        let target = batch.targets[[t - 1, b]];
        counts[target] += 1;
        let (_, query) = replay_tracking(&batch, b, config.hard_num_objects, config.num_positions);
        let start_step = (0..config.num_objects)
            .find(|&s| batch.inputs[[s, b, query]] == 1.0)
            .unwrap();
        let start = hot(
            &batch,
            start_step,
            b,
            config.hard_num_objects,
            config.hard_num_objects + 5,
        );
        same_as_start += usize::from(start[0] == target);
    }
    let base = task.baselines();
    let plateau = base.plateau.unwrap();
    let rate = same_as_start as f64 / n as f64;
    assert!(
        (rate - plateau).abs() < tol(plateau, n),
        "{rate} vs {plateau}"
    );
    let majority = *counts.iter().max().unwrap() as f64 / n as f64;
    assert!((majority - base.majority).abs() < tol(base.majority, n) + 0.01);
    // with no moves the start is always right; with one object and one move it is right with 5/15+...
    assert!((start_memory_accuracy(3, 5, 0) - 1.0).abs() < 1e-12);
    // one move of a lone object on 2 cells: stays unless it steps inward: 2/3
    assert!((start_memory_accuracy(1, 2, 1) - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn pairs_targets_match_the_stored_attributes() {
    let c = PairsConfig::default();
    let task = Pairs::new(c.clone()).unwrap();
    let h = c.hard_num_items;
    let (colour, value) = (h, h + c.num_colours);
    let (first, second) = (value + c.num_buckets, value + c.num_buckets + h);
    let question = second + h;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for split in Split::ALL {
        let n = 2000;
        let batch = task.sample(n, split, &mut rng);
        let t = task.seq_len(split);
        assert_eq!(batch.inputs.dim(), (t, n, task.input_size()));
        let mut ones = 0;
        for b in 0..n {
            let items: Vec<(usize, usize, usize)> = (0..t - 1)
                .map(|s| {
                    (
                        hot(&batch, s, b, 0, h)[0],
                        hot(&batch, s, b, colour, value)[0],
                        hot(&batch, s, b, value, first)[0],
                    )
                })
                .collect();
            let a = hot(&batch, t - 1, b, first, second)[0];
            let z = hot(&batch, t - 1, b, second, question)[0];
            let ia = items.iter().position(|it| it.0 == a).unwrap();
            let iz = items.iter().position(|it| it.0 == z).unwrap();
            assert_ne!(ia, iz);
            if split == Split::Hard {
                assert!(ia.abs_diff(iz) >= c.num_items, "hard pairs are far apart");
            }
            let expected = match hot(&batch, t - 1, b, question, question + 2)[..] {
                [0] => usize::from(items[ia].1 == items[iz].1),
                [1] => usize::from(items[iz].2 > items[ia].2),
                ref other => panic!("question block {other:?}"),
            };
            assert_eq!(batch.targets[[t - 1, b]], expected);
            ones += expected;
        }
        let rate = ones as f64 / n as f64;
        assert!((rate - 0.5).abs() < tol(0.5, n), "balanced classes: {rate}");
    }
}
