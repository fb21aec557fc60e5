//! Properties every task shares: CLI names, shapes and masks per split, determinism by seed,
//! train/test disjointness, and baselines that are probabilities.

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::tasks::{Split, TaskKind, generate_reasoning_data};

#[test]
fn names_parse_and_unknown_names_list_the_valid_ones() {
    for kind in TaskKind::ALL {
        assert_eq!(kind.name().parse::<TaskKind>(), Ok(kind));
        assert_eq!(kind.default_config().kind(), kind);
    }
    let err = "nth_farthest".parse::<TaskKind>().unwrap_err();
    assert!(
        err.contains("nth-farthest") && err.contains("babi-qa3"),
        "{err}"
    );
    assert_eq!("hard".parse::<Split>(), Ok(Split::Hard));
    assert!("valid".parse::<Split>().is_err());
}

#[test]
fn shapes_masks_and_targets_are_consistent() {
    for kind in TaskKind::ALL {
        let task = kind.default_config().build().unwrap();
        let base = task.baselines();
        assert!(base.chance > 0.0 && base.chance <= base.majority && base.majority < 1.0);
        if let Some(p) = base.plateau {
            assert!(p > base.chance && p < 1.0, "{kind}: plateau {p}");
        }
        assert!(task.describe().starts_with(kind.name()));
        for split in Split::ALL {
            let (batch, examples) =
                task.sample_examples(7, split, &mut ChaCha8Rng::seed_from_u64(9));
            let t = task.seq_len(split);
            assert_eq!(
                batch.inputs.dim(),
                (t, 7, task.input_size()),
                "{kind} {split}"
            );
            assert_eq!(examples.len(), 7);
            assert_eq!(*batch.loss_steps().last().unwrap(), t - 1);
            assert!(batch.targets.iter().all(|&c| c < task.num_classes()));
        }
        assert!(
            task.seq_len(Split::Hard) > task.seq_len(Split::Train) || kind == TaskKind::NthFarthest,
            "{kind}: the hard split is longer"
        );
    }
}

fn keys(examples: &[relational_rnn::tasks::Example]) -> Vec<String> {
    examples
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

#[test]
fn same_seed_same_data_different_seed_different_data() {
    for kind in TaskKind::ALL {
        let config = kind.default_config();
        let a = generate_reasoning_data(&config, 50, 20, 7).unwrap();
        let b = generate_reasoning_data(&config, 50, 20, 7).unwrap();
        let c = generate_reasoning_data(&config, 50, 20, 8).unwrap();
        assert_eq!(a, b, "{kind}");
        assert_ne!(keys(&a.train.examples), keys(&c.train.examples), "{kind}");
        assert_ne!(keys(&a.test.examples), keys(&c.test.examples), "{kind}");
        // the test set does not depend on the train size
        let d = generate_reasoning_data(&config, 5, 20, 7).unwrap();
        assert_eq!(a.test, d.test, "{kind}");
        assert_eq!(a.val, d.val, "{kind}");
        assert_eq!(a.val.split, Split::Val);
        assert_ne!(keys(&a.val.examples), keys(&a.test.examples), "{kind}");
        assert_eq!(a.hard.split, Split::Hard);
    }
}

#[test]
fn train_val_and_test_never_share_an_example() {
    // Sorting at the default has 10^5 sequences: 20 000 train and 2 000 test draws without the
    // partition would collide ~400 times; bAbI-qa1 stories are drawn from a smaller space still.
    for (kind, train, test) in [
        (TaskKind::Sorting, 20_000, 2_000),
        (TaskKind::Tracking, 20_000, 2_000),
        (TaskKind::Pairs, 5_000, 1_000),
        (
            TaskKind::Babi(relational_rnn::tasks::BabiKind::Qa1),
            5_000,
            1_000,
        ),
    ] {
        let data = generate_reasoning_data(&kind.default_config(), train, test, 3).unwrap();
        let train: HashSet<String> = keys(&data.train.examples).into_iter().collect();
        let val: HashSet<String> = keys(&data.val.examples).into_iter().collect();
        let test: HashSet<String> = keys(&data.test.examples).into_iter().collect();
        assert_eq!(train.intersection(&test).count(), 0, "{kind}: train/test");
        assert_eq!(train.intersection(&val).count(), 0, "{kind}: train/val");
        assert_eq!(val.intersection(&test).count(), 0, "{kind}: val/test");
    }
}
