//! The default bAbI generator is pinned: committed experiment results depend on its exact output
//! (input width, vocabulary order, every example). Each value below was recorded from the
//! generator before the English vocabulary option existed; any change to the default data fails
//! here.

use relational_rnn::experiment::{Experiment, ModelKind};
use relational_rnn::tasks::babi::{BabiConfig, BabiKind, BabiTask, write_babi};
use relational_rnn::tasks::split::content_hash;
use relational_rnn::tasks::{Batch, Example, Split, Task, TaskConfig, generate_reasoning_data};
use relational_rnn::train::{TrainConfig, step_rng};

fn batch_hash(batch: &Batch) -> u64 {
    let inputs = batch.inputs.iter().map(|x| u64::from(x.to_bits()));
    let targets = batch.targets.iter().map(|&t| t as u64);
    let mask = batch.mask.iter().map(|&m| u64::from(m));
    let dims = [batch.steps(), batch.batch_size(), batch.input_size()].map(|d| d as u64);
    content_hash(dims.into_iter().chain(inputs).chain(targets).chain(mask))
}

fn text_hash(text: &str) -> u64 {
    content_hash(text.bytes().map(u64::from))
}

fn stories_hash(examples: &[Example]) -> u64 {
    let stories: Vec<_> = examples
        .iter()
        .map(|e| match e {
            Example::Babi(ex) => ex.story.clone(),
            _ => panic!("bAbI example"),
        })
        .collect();
    text_hash(&write_babi(&stories))
}

/// `[vocabulary, config json, train, val, test, hard, steps 0..3 of training, reference]`.
fn fingerprint(kind: BabiKind) -> Vec<u64> {
    let config = BabiConfig::new(kind);
    let task = BabiTask::new(config.clone()).unwrap();
    let task_config = TaskConfig::Babi(config);
    let mut out = vec![
        text_hash(&format!(
            "{} {:?} {:?}",
            task.input_size(),
            task.vocabulary().words(),
            task.answers().words()
        )),
        text_hash(&serde_json::to_string(&task_config).unwrap()),
    ];
    let data = generate_reasoning_data(&task_config, 64, 64, 1234).unwrap();
    for set in [&data.train, &data.val, &data.test, &data.hard] {
        out.push(batch_hash(&set.batch) ^ stories_hash(&set.examples));
    }
    for step in 0..3 {
        out.push(batch_hash(&task.sample(
            32,
            Split::Train,
            &mut step_rng(7, step),
        )));
    }
    let mut experiment =
        Experiment::new(task_config, ModelKind::Lstm, TrainConfig::default()).unwrap();
    experiment.test_size = 100;
    let reference = experiment.reference().unwrap();
    out.push(text_hash(&serde_json::to_string(&reference).unwrap()));
    out
}

/// Recorded before the English option existed (the second value: the task config's JSON, which
/// since gained `vocabulary` and `data_dir`; see [`old_configs_still_load`]).
const PINNED: [(BabiKind, [u64; 10]); 3] = [
    (
        BabiKind::Qa1,
        [
            5463163321878111882,
            7080694410805180598,
            13994056683633636102,
            5829923104544576391,
            16714234772593351537,
            8464947924445620164,
            5799501889141443234,
            98465074503864514,
            6860883832367928864,
            16486694952596560804,
        ],
    ),
    (
        BabiKind::Qa2,
        [
            5463163321878111882,
            15318141929486169443,
            9377382230624577460,
            4447905700484726807,
            8603210032444915313,
            6491570328320610784,
            16564659815787352202,
            446834640023174479,
            3405358994734559311,
            3956693387971250608,
        ],
    ),
    (
        BabiKind::Qa3,
        [
            5463163321878111882,
            15165654738834907236,
            9667647746459639739,
            5333928271930431392,
            15277868874370754035,
            16924899164292034069,
            8866272419958054191,
            12557951392087510994,
            11091132746570177004,
            12880970859814786014,
        ],
    ),
];

#[test]
fn default_generated_data_is_unchanged() {
    for (kind, pinned) in PINNED {
        let got = fingerprint(kind);
        for (i, (got, want)) in got.iter().zip(pinned).enumerate() {
            if i != 1 {
                assert_eq!(*got, want, "{kind}: value {i} of {:?}", fingerprint(kind));
            }
        }
    }
}

/// A config written before the option existed loads as the default, generated vocabulary.
#[test]
fn old_configs_still_load() {
    for (kind, num) in [(BabiKind::Qa1, 6), (BabiKind::Qa2, 10), (BabiKind::Qa3, 12)] {
        let old = format!(
            r#"{{"task":"babi","kind":"{}","num_sentences":{num},"hard_num_sentences":{}}}"#,
            &kind.name()[5..],
            2 * num
        );
        let config: TaskConfig = serde_json::from_str(&old).unwrap();
        assert_eq!(config, TaskConfig::Babi(BabiConfig::new(kind)));
    }
}
