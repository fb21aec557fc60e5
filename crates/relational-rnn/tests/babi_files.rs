//! Real bAbI files and the English vocabulary: stories written by hand in the real format and
//! files written by `write_babi` are read into datasets; the validation carve is disjoint,
//! deterministic and about 1 in 5; English stories have the real shape and answers an
//! independent simulation re-derives; malformed files are errors naming file, line and word.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::experiment::{Experiment, ModelKind};
use relational_rnn::tasks::babi::{
    BabiConfig, BabiFile, BabiKind, BabiTask, BabiVocabulary, Story, StoryLine,
    generate_english_story, read_babi_file, write_babi,
};
use relational_rnn::tasks::split::{admits, content_hash};
use relational_rnn::tasks::{Example, Split, Task, TaskConfig};
use relational_rnn::train::{TrainConfig, step_rng};

const KINDS: [BabiKind; 3] = [BabiKind::Qa1, BabiKind::Qa2, BabiKind::Qa3];

/// The words of the real English tasks 1–3, as the files spell them (lower-cased).
const REAL_WORDS: [&str; 35] = [
    "apple",
    "back",
    "bathroom",
    "bedroom",
    "before",
    "daniel",
    "discarded",
    "down",
    "dropped",
    "football",
    "garden",
    "got",
    "grabbed",
    "hallway",
    "is",
    "john",
    "journeyed",
    "kitchen",
    "left",
    "mary",
    "milk",
    "moved",
    "office",
    "picked",
    "put",
    "sandra",
    "the",
    "there",
    "to",
    "took",
    "travelled",
    "up",
    "was",
    "went",
    "where",
];

fn sample(kind: BabiKind) -> PathBuf {
    let name = match kind {
        BabiKind::Qa1 => "qa1_single-supporting-fact_sample.txt",
        BabiKind::Qa2 => "qa2_two-supporting-facts_sample.txt",
        BabiKind::Qa3 => "qa3_three-supporting-facts_sample.txt",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/babi")
        .join(name)
}

/// A fresh scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rrnn-babi-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn english_stories(kind: BabiKind, count: usize, len: usize, seed: u64) -> Vec<Story> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| generate_english_story(kind, len, &mut rng))
        .collect()
}

/// Re-reads the statements word by word (who is where, who holds what, the distinct places each
/// object has been) and answers every question the way it is phrased; `None` where the
/// question's premise does not hold in this reading.
fn simulate(story: &Story) -> Vec<Option<String>> {
    let mut person: HashMap<String, String> = HashMap::new();
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut trail: HashMap<String, Vec<String>> = HashMap::new();
    let visit = |trail: &mut HashMap<String, Vec<String>>, object: &str, place: &str| {
        let t = trail.entry(object.to_string()).or_default();
        if t.last().map(String::as_str) != Some(place) {
            t.push(place.to_string());
        }
    };
    let mut answers = Vec::new();
    for line in &story.lines {
        let mut words: Vec<&str> = line
            .text()
            .trim_end_matches(['.', '?'])
            .split(' ')
            .collect();
        if words.last() == Some(&"there") {
            words.pop();
        }
        let last = words.last().unwrap().to_string();
        match line {
            StoryLine::Statement { .. } => {
                let who = words[0].to_string();
                if words.contains(&"to") {
                    person.insert(who.clone(), last.clone());
                    for (object, h) in &holder {
                        if *h == who {
                            visit(&mut trail, object, &last);
                        }
                    }
                } else if ["picked", "got", "grabbed", "took"].contains(&words[1]) {
                    holder.insert(last.clone(), who.clone());
                    if let Some(place) = person.get(&who) {
                        visit(&mut trail, &last, place);
                    }
                } else {
                    assert!(
                        ["dropped", "discarded", "put", "left"].contains(&words[1]),
                        "{line:?}"
                    );
                    assert_eq!(holder.remove(&last), Some(who), "{line:?}");
                }
            }
            StoryLine::Question { .. } => answers.push(match words.len() {
                3 => person.get(words[2]).cloned(),
                4 => trail.get(words[3]).and_then(|t| t.last().cloned()),
                7 => trail.get(words[3]).and_then(|t| {
                    let at = t.iter().rposition(|p| p == words[6])?;
                    at.checked_sub(1).map(|i| t[i].clone())
                }),
                _ => panic!("unexpected question {words:?}"),
            }),
        }
    }
    answers
}

fn answers(story: &Story) -> Vec<Option<String>> {
    story
        .lines
        .iter()
        .filter_map(|l| match l {
            StoryLine::Question { answer, .. } => Some(Some(answer.clone())),
            StoryLine::Statement { .. } => None,
        })
        .collect()
}

#[test]
fn english_vocabulary_is_the_real_tasks_words_and_generated_is_unchanged() {
    let english = BabiVocabulary::English.words();
    assert_eq!(english.words(), REAL_WORDS);
    let generated = BabiVocabulary::Generated.words();
    let missing: Vec<&str> = REAL_WORDS
        .iter()
        .copied()
        .filter(|w| generated.id(w).is_none())
        .collect();
    assert_eq!(missing, ["back", "left", "there", "took"]);
    assert_eq!(generated.len(), 31);
    let mut config = BabiConfig::new(BabiKind::Qa2);
    config.vocabulary = BabiVocabulary::English;
    let task = BabiTask::new(config).unwrap();
    assert_eq!((task.input_size(), task.num_classes()), (36, 6));
}

#[test]
fn english_stories_have_the_real_shape_and_simulated_answers() {
    let qa1 = english_stories(BabiKind::Qa1, 50, 10, 1);
    for story in &qa1 {
        // Real qa1: 15 lines, a question after every second statement.
        assert_eq!(
            story.lines.len(),
            15,
            "{}",
            write_babi(std::slice::from_ref(story))
        );
        for (i, line) in story.lines.iter().enumerate() {
            assert_eq!(
                matches!(line, StoryLine::Question { .. }),
                i % 3 == 2,
                "{i}"
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for kind in KINDS {
        let stories = english_stories(kind, 300, 12, 2);
        let questions: usize = stories.iter().map(Story::num_questions).sum();
        assert!(
            questions > stories.len(),
            "{kind}: several questions a story"
        );
        for story in &stories {
            assert_eq!(
                simulate(story),
                answers(story),
                "{kind}\n{}",
                write_babi(std::slice::from_ref(story))
            );
            seen.extend(
                story
                    .lines
                    .iter()
                    .flat_map(|l| relational_rnn::tasks::babi::tokenize(l.text())),
            );
        }
        let text = write_babi(&stories);
        assert_eq!(
            relational_rnn::tasks::babi::parse_babi(&text, "x").unwrap(),
            stories
        );
    }
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(seen, REAL_WORDS, "every real word is generated");
}

#[test]
fn hand_written_real_format_files_read_with_the_english_vocabulary() {
    for (kind, stories, questions, steps) in [
        (BabiKind::Qa1, 2, 10, 11),
        (BabiKind::Qa2, 2, 5, 17),
        (BabiKind::Qa3, 2, 4, 16),
    ] {
        let file = BabiFile::read(&sample(kind), BabiVocabulary::English).unwrap();
        assert_eq!(
            (file.num_stories(), file.num_questions(), file.steps()),
            (stories, questions, steps),
            "{kind}"
        );
        let data = file.dataset(Split::Test, BabiVocabulary::English);
        assert_eq!(data.batch.inputs.dim(), (steps, questions, 36));
        assert_eq!(data.batch.loss_steps(), vec![steps - 1]);
        for (b, example) in data.examples.iter().enumerate() {
            let Example::Babi(ex) = example else {
                panic!("a bAbI example")
            };
            let target = data.batch.targets[[steps - 1, b]];
            assert_eq!(
                relational_rnn::tasks::babi::generated_answers().words()[target],
                ex.answer
            );
            // Every supporting fact is a time step holding that statement's words.
            for &step in &ex.supporting_steps {
                assert!(data.batch.inputs.slice(ndarray::s![step, b, ..]).sum() > 0.0);
            }
        }
        // The same answers an independent reading gives (qa3: the sample's questions ask about
        // the most recent location, like ours).
        for story in read_babi_file(&sample(kind)).unwrap() {
            assert_eq!(simulate(&story), answers(&story), "{kind}");
        }
        let generated = BabiFile::read(&sample(kind), BabiVocabulary::Generated).unwrap_err();
        assert!(
            generated
                .message
                .contains("not in the generated vocabulary")
                && generated.message.contains("task.vocabulary = \"english\""),
            "{generated}"
        );
    }
    let qa1 = BabiFile::read(&sample(BabiKind::Qa1), BabiVocabulary::English).unwrap();
    let data = qa1.dataset(Split::Test, BabiVocabulary::English);
    let Example::Babi(second) = &data.examples[1] else {
        panic!("a bAbI example")
    };
    assert_eq!(second.question, "Where is Daniel?");
    assert_eq!(second.context.len(), 4);
    // T = 11: 4 statements and the question after 6 padding steps; line 4 is the third statement.
    assert_eq!(second.supporting_steps, vec![8]);
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_files_are_errors_naming_file_line_and_word() {
    let dir = scratch("malformed");
    let english = BabiVocabulary::English;
    let good = "1 Mary went back to the kitchen.\n2 Where is Mary? \tkitchen\t1\n";
    let cases: [(&str, &[u8], usize, &str); 8] = [
        ("empty.txt", b"", 1, "no story in the file"),
        ("blank.txt", b"\n \r\n\n", 1, "no story in the file"),
        (
            "word.txt",
            b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n\n1 Mary flew to the kitchen.\n2 Where is Mary? \tkitchen\t1\n",
            4,
            "unknown word `flew`",
        ),
        (
            "question.txt",
            b"1 Mary went to the kitchen.\n2 Whither is Mary? \tkitchen\t1\n",
            2,
            "unknown word `whither`",
        ),
        (
            "answer.txt",
            b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen,garden\t1\n",
            2,
            "answer `kitchen,garden` is not one of the locations",
        ),
        (
            "truncated.txt",
            b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n1 John went",
            3,
            "story ends without a question",
        ),
        ("utf8.txt", b"1 Mary went to the kitchen.\n2 \xff\n", 2, "invalid UTF-8"),
        ("bom-only.txt", b"\xef\xbb\xbf", 1, "no story in the file"),
    ];
    for (name, text, line, message) in cases {
        let path = write(&dir, name, text);
        let e = BabiFile::read(&path, english).unwrap_err();
        assert_eq!(
            (e.line, e.file.as_str()),
            (line, path.to_str().unwrap()),
            "{e}"
        );
        assert!(e.message.contains(message), "{name}: {e}");
        assert!(e.to_string().contains(&format!("{name}:{line}: ")), "{e}");
    }
    // A byte-order mark and Windows line ends are accepted and change nothing.
    let plain = BabiFile::read(&write(&dir, "plain.txt", good.as_bytes()), english).unwrap();
    let bom = format!("\u{feff}{}", good.replace('\n', "\r\n"));
    let with_bom = BabiFile::read(&write(&dir, "bom.txt", bom.as_bytes()), english).unwrap();
    assert_eq!(
        plain.dataset(Split::Test, english).batch,
        with_bom.dataset(Split::Test, english).batch
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory like the archive's: task `kind`'s training file of `train` English stories
/// (and a test file of `test`, if any), written by `write_babi`.
fn babi_dir(name: &str, kind: BabiKind, train: usize, test: Option<usize>) -> PathBuf {
    let dir = scratch(name);
    let n = kind.number();
    let text = write_babi(&english_stories(kind, train, 10, 7));
    write(&dir, &format!("qa{n}_x_train.txt"), text.as_bytes());
    if let Some(test) = test {
        let text = write_babi(&english_stories(kind, test, 10, 8));
        write(&dir, &format!("qa{n}_x_test.txt"), text.as_bytes());
    }
    write(&dir, &format!("qa{}_y_train.txt", n + 10), b"not this one");
    dir
}

fn file_config(kind: BabiKind, dir: &Path) -> TaskConfig {
    let mut config = BabiConfig::new(kind);
    config.vocabulary = BabiVocabulary::English;
    config.data_dir = Some(dir.display().to_string());
    TaskConfig::Babi(config)
}

fn stories_of(data: &[Example]) -> Vec<String> {
    data.iter()
        .map(|e| match e {
            Example::Babi(ex) => write_babi(std::slice::from_ref(&ex.story)),
            _ => panic!("a bAbI example"),
        })
        .collect()
}

#[test]
fn a_directory_gives_train_a_carved_validation_and_the_test_file() {
    for kind in KINDS {
        let dir = babi_dir(&format!("dir-{kind}"), kind, 200, Some(40));
        let config = file_config(kind, &dir);
        let task = config.build().unwrap();
        let mut experiment =
            Experiment::new(config, ModelKind::Lstm, TrainConfig::default()).unwrap();
        experiment.test_size = 7; // ignored: the sets are what the files hold
        let sets = experiment.eval_sets().unwrap();
        let train_file = read_babi_file(&dir.join(format!("qa{}_x_train.txt", kind.number())));
        let train_file = train_file.unwrap();
        let test_file = read_babi_file(&dir.join(format!("qa{}_x_test.txt", kind.number())));
        let count = |stories: &[Story]| stories.iter().map(Story::num_questions).sum::<usize>();
        assert_eq!(sets.test.batch.batch_size(), count(&test_file.unwrap()));
        assert_eq!(sets.hard.batch.batch_size(), 0, "no hard split");
        assert_eq!(sets.val.batch.input_size(), 36);
        // Validation: the whole stories in the validation bucket, every question of them in file
        // order; training draws only from the other stories.
        let hash =
            |s: &Story| content_hash(write_babi(std::slice::from_ref(s)).bytes().map(u64::from));
        let (val, train): (Vec<&Story>, Vec<&Story>) =
            train_file.iter().partition(|s| admits(Split::Val, hash(s)));
        let cuts = |stories: &[&Story]| -> Vec<String> {
            stories
                .iter()
                .flat_map(|s| {
                    (0..s.num_questions()).map(|k| write_babi(&[s.up_to_question(k).unwrap()]))
                })
                .collect()
        };
        assert_eq!(stories_of(&sets.val.examples), cuts(&val), "{kind}");
        let share = val.len() as f64 / train_file.len() as f64;
        assert!((0.1..0.3).contains(&share), "{kind}: {share}");
        let train_cuts = cuts(&train);
        for step in 0..20 {
            let (batch, examples) = task.sample_examples(16, Split::Train, &mut step_rng(3, step));
            assert_eq!(batch.steps(), task.seq_len(Split::Train));
            for story in stories_of(&examples) {
                assert!(
                    train_cuts.contains(&story),
                    "{kind}: not from a training story"
                );
            }
        }
        // Deterministic: the same sets from a second build.
        assert_eq!(experiment.eval_sets().unwrap().val, sets.val);
        let reference = experiment.reference().unwrap();
        assert!(reference.heuristics["majority"].contains_key("test"));
        assert!(!reference.heuristics["majority"].contains_key("hard"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn directories_without_the_right_files_are_config_errors() {
    let kind = BabiKind::Qa1;
    let no_test = babi_dir("no-test", kind, 50, None);
    let sets = Experiment::new(
        file_config(kind, &no_test),
        ModelKind::Lstm,
        TrainConfig::default(),
    )
    .unwrap()
    .eval_sets()
    .unwrap();
    assert_eq!(sets.test.batch.batch_size(), 0, "no test file: no test set");
    write(&no_test, "qa1_z_train.txt", b"");
    let empty = scratch("empty");
    let few = scratch("few");
    write(
        &few,
        "qa1_x_train.txt",
        b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n",
    );
    let cases = [
        (no_test.clone(), "2 files match qa1_*_train.txt"),
        (empty.clone(), "no qa1_*_train.txt in"),
        (empty.join("missing"), "cannot read directory"),
        (few.clone(), "too few to carve a validation split"),
    ];
    for (dir, message) in cases {
        let e = file_config(kind, &dir).build().err().unwrap();
        assert!(e.to_string().contains(message), "{e}");
        assert!(e.to_string().starts_with("invalid `data_dir`: "), "{e}");
    }
    let listed = file_config(kind, &no_test)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(
        listed.contains("qa1_x_train.txt, qa1_z_train.txt"),
        "{listed}"
    );
    for dir in [no_test, empty, few] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
