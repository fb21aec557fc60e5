//! `rrnn export-data`: examples of a task as JSON Lines (one readable example per line) or, for
//! bAbI, in the official text format.
//!
//! The examples are those of `generate_reasoning_data(task, .., seed)` for the chosen split: split
//! `s` is drawn from `split_rng(seed, s)`, so `--split test --n k` prints the first `k` examples of
//! the fixed test set. Output is streamed in chunks, so `--n` can be large; one chunk must fit in
//! memory (checked before the output file is created).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use relational_rnn::memory::examples_bytes;
use relational_rnn::tasks::babi::{BabiVocabulary, write_babi};
use relational_rnn::tasks::{Example, Split, TaskConfig, TaskKind, split_rng};

use crate::limits::check_memory;

/// Examples generated (and written) per chunk.
const CHUNK: usize = 256;

/// Output format of `export-data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON Lines: one example object per line.
    Json,
    /// The official Facebook bAbI text format (bAbI tasks only).
    Babi,
}

/// Arguments of `rrnn export-data`.
#[derive(Debug, Args)]
pub struct ExportDataArgs {
    /// The task: nth-farthest, sorting, tracking, pairs, babi-qa1, babi-qa2 or babi-qa3.
    #[arg(long, value_parser = parse_task)]
    task: TaskKind,
    /// Which split: train, val, test or hard.
    #[arg(long, default_value = "train", value_parser = parse_split)]
    split: Split,
    /// Number of examples.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    #[command(flatten)]
    options: TaskOptions,
}

/// Task options; each applies to some tasks only (others reject it).
#[derive(Debug, Args)]
#[command(next_help_heading = "Task options (defaults in the library docs)")]
struct TaskOptions {
    /// nth-farthest: number of vectors (= classes = steps).
    #[arg(long)]
    num_vectors: Option<usize>,
    /// nth-farthest: dimension of the vectors.
    #[arg(long)]
    dim: Option<usize>,
    /// nth-farthest: relative distance gap of the hard split's near ties.
    #[arg(long)]
    hard_gap: Option<f64>,
    /// sorting: tokens per sequence.
    #[arg(long)]
    len: Option<usize>,
    /// sorting: token vocabulary.
    #[arg(long)]
    vocab: Option<usize>,
    /// sorting: tokens per sequence in the hard split (default 2·len when --len is given).
    #[arg(long)]
    hard_len: Option<usize>,
    /// tracking: objects.
    #[arg(long)]
    num_objects: Option<usize>,
    /// tracking: cells on the line.
    #[arg(long)]
    num_positions: Option<usize>,
    /// tracking: moves.
    #[arg(long)]
    num_moves: Option<usize>,
    /// tracking: objects in the hard split.
    #[arg(long)]
    hard_num_objects: Option<usize>,
    /// tracking: moves in the hard split.
    #[arg(long)]
    hard_num_moves: Option<usize>,
    /// pairs: items per sequence.
    #[arg(long)]
    num_items: Option<usize>,
    /// pairs: colours.
    #[arg(long)]
    num_colours: Option<usize>,
    /// pairs: value buckets.
    #[arg(long)]
    num_buckets: Option<usize>,
    /// pairs: items in the hard split.
    #[arg(long)]
    hard_num_items: Option<usize>,
    /// babi-qa*: statements per story.
    #[arg(long)]
    num_sentences: Option<usize>,
    /// babi-qa*: statements per story in the hard split (default 2·num-sentences when that is given).
    #[arg(long)]
    hard_num_sentences: Option<usize>,
    /// babi-qa*: words and templates, generated (default) or english (the real English tasks').
    #[arg(long, value_parser = parse_vocabulary)]
    vocabulary: Option<BabiVocabulary>,
}

fn parse_task(s: &str) -> Result<TaskKind, String> {
    s.parse()
}

fn parse_split(s: &str) -> Result<Split, String> {
    s.parse()
}

fn parse_vocabulary(s: &str) -> Result<BabiVocabulary, String> {
    serde_json::from_value(s.into())
        .map_err(|_| format!("unknown vocabulary `{s}`; valid: generated, english"))
}

/// Sets `*field = value` when the option was given.
fn set<T: Copy>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

impl TaskOptions {
    /// The options that were given, as `(flag, applies to the task)`.
    fn given(&self, kind: TaskKind) -> Vec<(&'static str, bool)> {
        let nth = kind == TaskKind::NthFarthest;
        let sort = kind == TaskKind::Sorting;
        let track = kind == TaskKind::Tracking;
        let pairs = kind == TaskKind::Pairs;
        let babi = matches!(kind, TaskKind::Babi(_));
        [
            ("--num-vectors", self.num_vectors.is_some(), nth),
            ("--dim", self.dim.is_some(), nth),
            ("--hard-gap", self.hard_gap.is_some(), nth),
            ("--len", self.len.is_some(), sort),
            ("--vocab", self.vocab.is_some(), sort),
            ("--hard-len", self.hard_len.is_some(), sort),
            ("--num-objects", self.num_objects.is_some(), track),
            ("--num-positions", self.num_positions.is_some(), track),
            ("--num-moves", self.num_moves.is_some(), track),
            ("--hard-num-objects", self.hard_num_objects.is_some(), track),
            ("--hard-num-moves", self.hard_num_moves.is_some(), track),
            ("--num-items", self.num_items.is_some(), pairs),
            ("--num-colours", self.num_colours.is_some(), pairs),
            ("--num-buckets", self.num_buckets.is_some(), pairs),
            ("--hard-num-items", self.hard_num_items.is_some(), pairs),
            ("--num-sentences", self.num_sentences.is_some(), babi),
            (
                "--hard-num-sentences",
                self.hard_num_sentences.is_some(),
                babi,
            ),
            ("--vocabulary", self.vocabulary.is_some(), babi),
        ]
        .into_iter()
        .filter(|&(_, given, _)| given)
        .map(|(flag, _, applies)| (flag, applies))
        .collect()
    }

    /// The task's default configuration with the given options applied.
    fn config(&self, kind: TaskKind) -> Result<TaskConfig, String> {
        if let Some((flag, _)) = self.given(kind).into_iter().find(|&(_, ok)| !ok) {
            return Err(format!("option {flag} does not apply to task {kind}"));
        }
        let mut config = kind.default_config();
        match &mut config {
            TaskConfig::NthFarthest(c) => {
                set(&mut c.num_vectors, self.num_vectors);
                set(&mut c.dim, self.dim);
                set(&mut c.hard_gap, self.hard_gap);
            }
            TaskConfig::Sorting(c) => {
                set(&mut c.len, self.len);
                set(&mut c.hard_len, self.len.map(|l| l.saturating_mul(2)));
                set(&mut c.vocab, self.vocab);
                set(&mut c.hard_len, self.hard_len);
            }
            TaskConfig::Tracking(c) => {
                set(&mut c.num_objects, self.num_objects);
                set(&mut c.num_positions, self.num_positions);
                set(&mut c.num_moves, self.num_moves);
                set(&mut c.hard_num_objects, self.hard_num_objects);
                set(&mut c.hard_num_moves, self.hard_num_moves);
            }
            TaskConfig::Pairs(c) => {
                set(&mut c.num_items, self.num_items);
                set(&mut c.num_colours, self.num_colours);
                set(&mut c.num_buckets, self.num_buckets);
                set(&mut c.hard_num_items, self.hard_num_items);
            }
            TaskConfig::Babi(c) => {
                set(&mut c.num_sentences, self.num_sentences);
                set(
                    &mut c.hard_num_sentences,
                    self.num_sentences.map(|n| n.saturating_mul(2)),
                );
                set(&mut c.hard_num_sentences, self.hard_num_sentences);
                set(&mut c.vocabulary, self.vocabulary);
            }
        }
        Ok(config)
    }
}

/// Runs `export-data`; the error is a one-line message.
pub fn run(args: &ExportDataArgs) -> Result<(), String> {
    let config = args.options.config(args.task)?;
    if args.format == Format::Babi && !matches!(args.task, TaskKind::Babi(_)) {
        return Err(format!(
            "--format babi needs a bAbI task (babi-qa1..3), got {}",
            args.task
        ));
    }
    let task = config.build().map_err(|e| e.to_string())?;
    let chunk = args.n.min(CHUNK);
    let bytes = examples_bytes(task.as_ref(), args.split, chunk);
    let part = format!(
        "one chunk of {chunk} examples × {} steps",
        task.seq_len(args.split)
    );
    check_memory(&[(part, bytes)], "exporting")?;
    let (mut out, target): (Box<dyn Write>, String) = match &args.out {
        Some(path) => (
            Box::new(BufWriter::new(
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            )),
            path.display().to_string(),
        ),
        None => (
            Box::new(BufWriter::new(io::stdout().lock())),
            "stdout".into(),
        ),
    };
    let mut rng = split_rng(args.seed, args.split);
    let mut remaining = args.n;
    let mut write_all = || -> io::Result<()> {
        while remaining > 0 {
            let chunk = remaining.min(CHUNK);
            remaining -= chunk;
            let (_, examples) = task.sample_examples(chunk, args.split, &mut rng);
            for example in &examples {
                match (args.format, example) {
                    (Format::Babi, Example::Babi(ex)) => {
                        out.write_all(write_babi(std::slice::from_ref(&ex.story)).as_bytes())?;
                    }
                    _ => {
                        serde_json::to_writer(&mut out, example)?;
                        out.write_all(b"\n")?;
                    }
                }
            }
        }
        out.flush()
    };
    match write_all() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to {target}: {e}")),
    }
}
