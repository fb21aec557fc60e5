//! Analysis helpers agree with the training code and have the documented shapes.

use relational_rnn::analysis::{
    Trace, attention_over_time, input_attention, input_attention_by_head, key_usage, mean_by_label,
    predict, slot_similarity, steps_to_threshold, trace,
};
use relational_rnn::experiment::{Experiment, ModelKind, Summary, mean_std, run};
use relational_rnn::tasks::{TaskConfig, TrackingConfig};
use relational_rnn::train::{TrainConfig, evaluate};

fn tiny(kind: ModelKind) -> Experiment {
    let train = TrainConfig {
        steps: 6,
        batch_size: 8,
        eval_every: 3,
        ..TrainConfig::default()
    };
    let mut e = Experiment::new(TaskConfig::Tracking(TrackingConfig::default()), kind, train)
        .expect("valid");
    e.test_size = 20;
    e
}

fn eval_on(
    r: &relational_rnn::experiment::RunResult,
    data: &relational_rnn::tasks::Dataset,
) -> relational_rnn::train::EvalStats {
    evaluate(
        &r.model,
        &r.store,
        &relational_rnn::experiment::eval_batches(data),
    )
}

#[test]
fn predictions_trace_and_usage_are_consistent() {
    let e = tiny(ModelKind::Rmc);
    let r = run(&e, |_| {}).expect("runs");
    let sets = e.eval_sets().expect("data");
    let best = r.history.best().expect("evaluated");
    assert_eq!(r.best_step, best.step);
    let val = eval_on(&r, &sets.val);
    assert_eq!(
        (val.accuracy, val.loss),
        (best.val_accuracy, best.val_loss),
        "kept: val-best"
    );
    let test = sets.test;
    assert_eq!(
        eval_on(&r, &test),
        r.test,
        "the run scores its kept parameters on test"
    );
    let p = predict(&r.model, &r.store, &test.batch);
    let eval = evaluate(&r.model, &r.store, std::slice::from_ref(&test.batch));
    assert!((p.accuracy() - eval.accuracy).abs() < 1e-12);
    assert_eq!(p.iter_scored().count(), 20);
    let wrong = p.iter_scored().filter(|(_, a, b)| a != b).count();
    assert_eq!(p.failures().len(), wrong, "one scored step per sequence");

    let t = trace(&r.model, &r.store, &test.batch, 3);
    let steps = test.batch.steps();
    let n = 4; // default RMC slots
    assert_eq!(t.attention.len(), steps);
    assert_eq!(t.attention[0][0].dim(), (4, n + 1, n + 1)); // [H, R, R]
    assert_eq!(t.memory[steps - 1].dim(), (n, 64)); // [N, D]
    let usage = key_usage(&t);
    assert_eq!(usage.len(), n + 1);
    assert!(
        (usage.iter().sum::<f64>() - 1.0).abs() < 1e-6,
        "attention rows are distributions"
    );
    assert!(input_attention(&t).iter().all(|a| (0.0..=1.0).contains(a)));
    let by_head = input_attention_by_head(&t);
    assert_eq!(by_head.dim(), (steps, 4)); // [T, H]
    for (step, overall) in input_attention(&t).iter().enumerate() {
        let mean = by_head.row(step).mean().expect("heads");
        assert!(
            (mean - overall).abs() < 1e-12,
            "heads average to the overall value"
        );
    }
    assert_eq!(slot_similarity(&t).len(), steps);
    let over_time = attention_over_time(&t);
    assert_eq!(over_time.dim(), (4, n + 1, steps)); // [H, N + 1, T]
    for step in 0..steps {
        for h in 0..4 {
            let col = over_time.slice(ndarray::s![h, .., step]);
            assert!(
                (col.sum() - 1.0).abs() < 1e-6,
                "each query's weights sum to 1: {col}"
            );
            assert!(
                (col[n] - by_head[[step, h]]).abs() < 1e-12,
                "last key: the input"
            );
        }
    }

    // The history's records drive convergence measures.
    assert_eq!(steps_to_threshold(&r.history, 0.0), Some(3));
    assert_eq!(steps_to_threshold(&r.history, 1.1), None);
}

#[test]
fn slot_similarity_is_one_for_copies_and_zero_for_orthogonal_slots() {
    use ndarray::array;
    let trace = Trace {
        attention: Vec::new(),
        memory: vec![
            array![[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]],
            array![[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]],
            array![[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]],
        ],
    };
    let sim = slot_similarity(&trace);
    assert!((sim[0] - 1.0).abs() < 1e-12, "{sim:?}");
    assert!(
        sim[1].abs() < 1e-12,
        "a zero slot counts as orthogonal: {sim:?}"
    );
    assert!(
        (sim[2] + 1.0 / 3.0).abs() < 1e-12,
        "pairs -1, 1, -1: {sim:?}"
    );
}

#[test]
fn tracking_steps_are_labelled_by_event_and_averaged_by_label() {
    use relational_rnn::tasks::{Example, TaskKind, generate_reasoning_data};
    let config = TaskKind::Tracking.default_config();
    let data = generate_reasoning_data(&config, 2, 8, 0).expect("valid");
    let Example::Tracking(ex) = &data.test.examples[0] else {
        panic!("a tracking example")
    };
    let events = ex.step_events();
    assert_eq!(
        events.len(),
        data.test.batch.steps(),
        "one event per input step"
    );
    assert_eq!(&events[..ex.objects.len()], vec!["start"; ex.objects.len()]);
    assert_eq!(events.last(), Some(&"query"));
    let labels = ex.step_labels();
    assert_eq!(labels.len(), events.len());
    let printed = data.test.examples[0].to_string();
    for label in &labels[..labels.len() - 1] {
        assert!(printed.contains(label.as_str()), "`{label}` in `{printed}`");
    }
    assert!(printed.contains(&format!(
        "where is {}",
        labels[labels.len() - 1].trim_end_matches('?')
    )));
    let stays = ex.moves.iter().filter(|m| m.delta == 0).count();
    assert_eq!(events.iter().filter(|&&e| e == "stay").count(), stays);

    let values = vec![vec![1.0, 2.0, 3.0], vec![5.0, 4.0]];
    let labels = vec![vec!["a", "b", "a"], vec!["b", "c"]];
    assert_eq!(
        mean_by_label(&values, &labels),
        vec![("a", 2.0, 2), ("b", 3.5, 2), ("c", 4.0, 1)]
    );
}

#[test]
fn the_lstm_has_no_attention_and_summaries_average_seeds() {
    let r = run(&tiny(ModelKind::Lstm), |_| {}).expect("runs");
    let test = tiny(ModelKind::Lstm).eval_sets().expect("data").test;
    let t = trace(&r.model, &r.store, &test.batch, 0);
    assert!(t.attention.is_empty() && t.memory.is_empty());
    let s = Summary::of("LSTM", &[r.clone(), r.clone()]);
    assert_eq!(s.seeds, 2);
    assert_eq!(s.test_accuracy, (r.final_accuracy(), 0.0));
    assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
}

#[test]
fn every_task_example_renders_with_its_answer() {
    use relational_rnn::tasks::{Example, TaskKind, generate_reasoning_data};
    for kind in TaskKind::ALL {
        let data = generate_reasoning_data(&kind.default_config(), 3, 3, 0).expect("valid");
        for ex in &data.test.examples {
            let text = ex.to_string();
            let answer = match ex {
                Example::NthFarthest(e) => format!("answer {}", e.target),
                Example::Sorting(e) => format!("sorted [{}", e.sorted[0]),
                Example::Tracking(e) => format!("answer {}", e.target),
                Example::Pairs(e) => format!("answer {}", e.target),
                Example::Babi(e) => format!("→ {}", e.answer),
            };
            assert!(
                text.contains(&answer),
                "{kind}: `{answer}` missing from\n{text}"
            );
        }
    }
}

#[test]
fn sweep_directories_read_back() {
    use relational_rnn::experiment::{read_metrics, read_sweep};
    let root = std::env::temp_dir().join(format!("rrnn-sweep-read-{}", std::process::id()));
    let line = r#"{"step":5,"train_loss":1.5,"train_accuracy":0.25,"val_loss":1.4,"val_accuracy":0.5,"lr":0.001,"elapsed_s":0.1}"#;
    for (combo, seed) in [("heads=2", 1), ("heads=2", 0), ("heads=1", 0)] {
        let d = root.join(combo).join(format!("seed={seed}"));
        std::fs::create_dir_all(&d).expect("temp dir");
        std::fs::write(d.join("metrics.jsonl"), format!("{line}\n")).expect("write");
    }
    let result =
        r#"{"step":5,"best_step":5,"val_accuracy":0.5,"test_accuracy":0.25,"hard_accuracy":0.125}"#;
    std::fs::write(root.join("heads=2/seed=1/result.json"), result).expect("write");
    let runs = read_sweep(&root).expect("reads");
    let keys: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| (r.combination.as_str(), r.seed))
        .collect();
    assert_eq!(keys, vec![("heads=1", 0), ("heads=2", 0), ("heads=2", 1)]);
    assert_eq!(
        read_metrics(&runs[0].dir).expect("reads")[0].val_accuracy,
        0.5
    );
    assert_eq!(runs[0].outcome, None);
    let outcome = runs[2].outcome.as_ref().expect("finished");
    assert_eq!(
        (outcome.test_accuracy, outcome.best_step),
        (Some(0.25), Some(5))
    );
    std::fs::write(root.join("heads=1/seed=0/metrics.jsonl"), "{not json").expect("write");
    let err = read_metrics(root.join("heads=1/seed=0")).unwrap_err();
    assert!(err.to_string().contains("metrics.jsonl:1"), "{err}");
    std::fs::remove_dir_all(root).expect("cleanup");
}

#[test]
fn a_tracking_example_prints_its_step_labels_in_order() {
    use relational_rnn::tasks::{Example, TrackingExample, TrackingMove};
    let ex = TrackingExample {
        objects: vec![2, 0],
        starts: vec![4, 1],
        moves: vec![
            TrackingMove {
                object: 0,
                delta: 1,
            },
            TrackingMove {
                object: 2,
                delta: 0,
            },
        ],
        query: 2,
        target: 4,
    };
    assert_eq!(
        ex.step_labels(),
        ["obj2@4", "obj0@1", "obj0+1", "obj2+0", "obj2?"]
    );
    assert_eq!(
        Example::Tracking(ex).to_string(),
        "starts [obj2@4 obj0@1]; moves [obj0+1 obj2+0]; where is obj2? answer 4"
    );
}
