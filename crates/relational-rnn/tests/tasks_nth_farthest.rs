//! Nth-farthest: every target recomputed by brute force from the encoded batch, the layout of the
//! input, the hard split's near ties, and the chance / plateau / norm-heuristic baselines.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relational_rnn::tasks::{Batch, NthFarthest, NthFarthestConfig, Split, Task};

/// Reads column `b` of the batch back by scanning the one-hot blocks (independent of the crate's
/// `decode`): `(vectors, labels, n, m)`.
fn read(
    batch: &Batch,
    b: usize,
    k: usize,
    dim: usize,
) -> (Vec<Vec<f64>>, Vec<usize>, usize, usize) {
    let hot = |t: usize, from: usize| -> usize {
        let ones: Vec<usize> = (0..k)
            .filter(|&i| batch.inputs[[t, b, from + i]] != 0.0)
            .collect();
        assert_eq!(ones.len(), 1, "one-hot block at step {t} offset {from}");
        ones[0]
    };
    let vectors = (0..k)
        .map(|t| {
            (0..dim)
                .map(|d| f64::from(batch.inputs[[t, b, d]]))
                .collect()
        })
        .collect();
    let labels = (0..k).map(|t| hot(t, dim)).collect();
    for t in 0..k {
        assert_eq!(hot(t, dim + k), hot(0, dim + k), "n repeated on every step");
        assert_eq!(
            hot(t, dim + 2 * k),
            hot(0, dim + 2 * k),
            "m repeated on every step"
        );
    }
    (vectors, labels, hot(0, dim + k), hot(0, dim + 2 * k))
}

/// Plain loops: all (distance, label) pairs from the reference, sorted descending, take the n-th.
fn brute_force(vectors: &[Vec<f64>], labels: &[usize], n: usize, m: usize) -> usize {
    let r = labels.iter().position(|&l| l == m).unwrap();
    let mut d: Vec<(f64, usize)> = Vec::new();
    for (t, v) in vectors.iter().enumerate() {
        let mut s = 0.0;
        for i in 0..v.len() {
            s += (v[i] - vectors[r][i]) * (v[i] - vectors[r][i]);
        }
        d.push((s.sqrt(), labels[t]));
    }
    d.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    d[n].1
}

fn task(k: usize, dim: usize) -> NthFarthest {
    NthFarthest::new(NthFarthestConfig {
        num_vectors: k,
        dim,
        ..NthFarthestConfig::default()
    })
    .unwrap()
}

/// Binomial tolerance: 4.5 standard errors of a proportion `p` over `n` trials.
fn tol(p: f64, n: usize) -> f64 {
    4.5 * (p * (1.0 - p) / n as f64).sqrt()
}

#[test]
fn shapes_and_mask_at_the_paper_setting() {
    let t = task(8, 16);
    assert_eq!(
        (t.input_size(), t.num_classes(), t.seq_len(Split::Train)),
        (40, 8, 8)
    );
    let batch = t.sample(5, Split::Train, &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(batch.inputs.dim(), (8, 5, 40));
    assert_eq!(batch.loss_steps(), vec![7]);
    assert!(batch.mask.row(7).iter().all(|&m| m));
}

#[test]
fn every_target_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (k, dim) in [(8, 16), (4, 4), (3, 2), (5, 7)] {
        let t = task(k, dim);
        for split in Split::ALL {
            let (batch, examples) = t.sample_examples(300, split, &mut rng);
            for (b, example) in examples.iter().enumerate() {
                let (vectors, labels, n, m) = read(&batch, b, k, dim);
                let expected = brute_force(&vectors, &labels, n, m);
                assert_eq!(
                    batch.targets[[k - 1, b]],
                    expected,
                    "k={k} dim={dim} {split} b={b}"
                );
                let json = serde_json::to_value(example).unwrap();
                assert_eq!(json["target"], expected);
                assert_eq!(json["n"], n);
                assert_eq!(json["m"], m);
                assert_eq!(json["vectors"].as_array().unwrap().len(), k);
            }
        }
    }
}

#[test]
fn hard_split_asks_only_near_ties() {
    let (k, dim) = (8, 16);
    let t = task(k, dim);
    let gap = t.config().hard_gap;
    let batch = t.sample(300, Split::Hard, &mut ChaCha8Rng::seed_from_u64(2));
    for b in 0..300 {
        let (vectors, labels, n, m) = read(&batch, b, k, dim);
        assert!(
            n < k - 1,
            "the hard split never asks for the reference itself"
        );
        let r = labels.iter().position(|&l| l == m).unwrap();
        let dist = |t: usize| -> f64 {
            (0..dim)
                .map(|i| (vectors[t][i] - vectors[r][i]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let target = labels
            .iter()
            .position(|&l| l == batch.targets[[k - 1, b]])
            .unwrap();
        let d = dist(target);
        let near = (0..k).any(|t| t != r && t != target && (dist(t) - d).abs() < gap * d);
        assert!(near, "b={b}: no other distance within {gap} of {d}");
    }
}

#[test]
fn chance_and_plateau_agree_with_simulation() {
    let (k, dim, n_samples) = (8, 16, 40_000);
    let t = task(k, dim);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let batch = t.sample(n_samples, Split::Train, &mut rng);
    let (mut chance, mut plateau) = (0usize, 0usize);
    let mut counts = vec![0usize; k];
    for b in 0..n_samples {
        let target = batch.targets[[k - 1, b]];
        let (_, _, n, m) = read(&batch, b, k, dim);
        counts[target] += 1;
        chance += usize::from(rng.random_range(0..k) == target);
        let guess = if n == k - 1 {
            m
        } else {
            (m + rng.random_range(1..k)) % k
        };
        plateau += usize::from(guess == target);
    }
    let base = t.baselines();
    let rate = |c: usize| c as f64 / n_samples as f64;
    assert!((rate(chance) - base.chance).abs() < tol(base.chance, n_samples));
    let p = base.plateau.unwrap();
    assert!((p - 2.0 / k as f64).abs() < 1e-12);
    assert!(
        (rate(plateau) - p).abs() < tol(p, n_samples),
        "plateau {}",
        rate(plateau)
    );
    let majority = rate(*counts.iter().max().unwrap());
    assert!(majority - base.majority < tol(base.majority, n_samples) + 0.01);
}

#[test]
fn norm_heuristic_matches_the_reference_numbers() {
    // reference/nth_farthest.py: 0.307 at K=8, D=16 and 0.59 at K=4, D=4 (200k samples, so the
    // reference's own error is ~0.001; we allow our binomial error plus 0.005 for its rounding).
    for (k, dim, expected) in [(8, 16, 0.307), (4, 4, 0.59)] {
        let t = task(k, dim);
        let n_samples = 20_000;
        let batch = t.sample(n_samples, Split::Train, &mut ChaCha8Rng::seed_from_u64(4));
        let predictions = t.norm_heuristic(&batch);
        let correct = (0..n_samples)
            .filter(|&b| predictions[b] == batch.targets[[k - 1, b]])
            .count();
        let acc = correct as f64 / n_samples as f64;
        assert!(
            (acc - expected).abs() < tol(expected, n_samples) + 0.005,
            "K={k} D={dim}: heuristic {acc}, reference {expected}"
        );
    }
}

#[test]
fn invalid_configs_are_errors() {
    for (k, dim, gap) in [(2, 16, 0.02), (8, 0, 0.02), (8, 16, 0.0), (8, 16, f64::NAN)] {
        let config = NthFarthestConfig {
            num_vectors: k,
            dim,
            hard_gap: gap,
            active_dims: None,
        };
        assert!(config.validate().is_err(), "{config:?}");
        assert!(NthFarthest::new(config).is_err());
    }
}

/// `active_dims` draws the first coordinates only and zeroes the rest, at the full input width;
/// targets still match brute force on every split; `active_dims = dim` is the default task, bit
/// for bit; 0 and more than `dim` are refused by name.
#[test]
fn active_dims_zero_the_other_coordinates() {
    let (k, dim) = (4, 4);
    let with = |active: Option<usize>| {
        NthFarthest::new(NthFarthestConfig {
            num_vectors: k,
            dim,
            active_dims: active,
            ..NthFarthestConfig::default()
        })
    };
    let one = with(Some(1)).unwrap();
    assert_eq!(one.input_size(), task(k, dim).input_size());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for split in Split::ALL {
        let batch = one.sample(200, split, &mut rng);
        for b in 0..200 {
            let (vectors, labels, n, m) = read(&batch, b, k, dim);
            assert!(vectors.iter().all(|v| v[1..].iter().all(|&x| x == 0.0)));
            assert!(vectors.iter().any(|v| v[0] != 0.0));
            assert_eq!(
                batch.targets[[k - 1, b]],
                brute_force(&vectors, &labels, n, m)
            );
        }
    }
    let sample = |t: &NthFarthest| t.sample(50, Split::Hard, &mut ChaCha8Rng::seed_from_u64(6));
    assert_eq!(
        sample(&with(Some(dim)).unwrap()),
        sample(&with(None).unwrap())
    );
    for bad in [0, dim + 1] {
        let e = with(Some(bad)).unwrap_err();
        assert_eq!(e.field, "active_dims", "{e}");
    }
}
