//! Hostile input, one table: every row runs `rrnn` with arguments (after an optional setup in a
//! scratch directory) and expects an exit status and a substring of its error. A clean refusal
//! is status 1 and exactly one `error: ` line; a usage error caught by the argument parser is
//! status 2 with the parser's usual `error: ` first line. No row may panic or abort (status 101 or
//! 134, `panicked at`, `memory allocation of`), and a refused row leaves the scratch directory
//! exactly as its setup made it: no run directory, no output file, nothing half-written.
//!
//! Every row runs under a 6 GiB address-space limit, so a regression that tries to allocate what
//! the checks should have refused fails fast instead of exhausting the machine; the memory check
//! sees that limit too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relational_rnn::checkpoint::{self, Metadata, Tensors};
use serde_json::Value;

/// Address-space limit of every row, in KiB (6 GiB).
const ADDRESS_SPACE_KIB: &str = "6291456";

/// A tiny RMC run: 2 slots, 2 heads, a [32] head, 8 examples per set.
const TINY: [&str; 16] = [
    "--task",
    "nth-farthest",
    "--model",
    "rmc",
    "--set",
    "batch=4",
    "--set",
    "eval_every=1",
    "--set",
    "test_size=8",
    "--set",
    "slots=2",
    "--set",
    "heads=2",
    "--set",
    "model.head_hidden=[32]",
];

fn rrnn_limited(args: &[String]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_rrnn"))
        .args(args)
        .output()
        .expect("run rrnn")
}

/// Every path under `dir`, relative to it, with file sizes.
fn listing(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            // A run directory's lock file belongs to the run (it stays, holding the last pid).
            if path.file_name().is_some_and(|n| n == ".lock") {
                continue;
            }
            let size = if meta.is_file() { meta.len() } else { 0 };
            out.insert((path.strip_prefix(dir).unwrap().to_owned(), size));
        }
    }
    out
}

/// A checkpoint of `src` with its tensors and metadata edited, written to `dst`.
fn rewrite(src: &Path, dst: &Path, edit: impl FnOnce(&mut Tensors, &mut Metadata)) {
    let (mut tensors, mut metadata) = checkpoint::read(src).unwrap();
    edit(&mut tensors, &mut metadata);
    let bytes =
        checkpoint::encode(tensors.iter().map(|(n, a)| (n.as_str(), a)), &metadata).unwrap();
    std::fs::write(dst, bytes).unwrap();
}

/// `src` with `pointer` of its `experiment` metadata set to `value`.
fn with_experiment(src: &Path, dst: &Path, pointer: &str, value: Value) {
    rewrite(src, dst, |_, metadata| {
        let mut experiment: Value = serde_json::from_str(&metadata["experiment"]).unwrap();
        *experiment.pointer_mut(pointer).unwrap() = value;
        metadata.insert("experiment".into(), experiment.to_string());
    });
}

/// A setup: prepares files in the row's scratch directory.
type Setup = Box<dyn Fn(&Path)>;

struct Row {
    /// Arguments, split at spaces: `{s}` stands for the scratch directory, `{huge}` for 2⁶⁴ − 1,
    /// `''` for an empty argument.
    args: String,
    setup: Option<Setup>,
    /// Expected exit status.
    code: i32,
    /// A substring of the (first) stderr line.
    stderr: &'static str,
}

impl Row {
    fn setup(mut self, setup: impl Fn(&Path) + 'static) -> Self {
        self.setup = Some(Box::new(setup));
        self
    }

    fn args(&self, scratch: &Path) -> Vec<String> {
        self.args
            .split(' ')
            .map(|a| match a {
                "''" => String::new(),
                a => a
                    .replace("{s}", &scratch.display().to_string())
                    .replace("{huge}", "18446744073709551615"),
            })
            .collect()
    }
}

fn row(args: &str, code: i32, stderr: &'static str) -> Row {
    Row {
        args: args.to_owned(),
        setup: None,
        code,
        stderr,
    }
}

/// `rrnn train` of the tiny run into `{s}/run` (one step), then `extra`.
fn train(extra: &str, code: i32, stderr: &'static str) -> Row {
    let tiny = TINY.join(" ");
    let args = format!("train --set steps=1 --out {{s}}/run {tiny} {extra}");
    row(args.trim_end(), code, stderr)
}

/// `rrnn eval` of `{s}/x.safetensors`, which `setup` writes.
fn eval(stderr: &'static str, setup: impl Fn(&Path) + 'static) -> Row {
    row("eval --checkpoint {s}/x.safetensors", 1, stderr).setup(setup)
}

/// A finished tiny run, whose checkpoints the eval rows mutate.
fn fixture(dir: &Path) -> PathBuf {
    let run = dir.join("fixture");
    let mut args: Vec<String> = ["train", "--steps", "2", "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(run.display().to_string());
    args.extend(TINY.iter().map(|s| s.to_string()));
    let out = rrnn_limited(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// A finished tiny run on generated bAbI qa1 stories in the English vocabulary, whose checkpoint
/// the `--babi-file` rows read.
fn babi_fixture(dir: &Path) -> PathBuf {
    let run = dir.join("babi-fixture");
    let args = format!(
        "train --steps 2 --out {} --task babi-qa1 --model lstm --set task.vocabulary=english \
         --set batch=4 --set eval_every=1 --set test_size=8 --set hidden=8 --set \
         model.head_hidden=[8]",
        run.display()
    );
    let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    let out = rrnn_limited(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// Writes `files` into `{s}/d`, a directory of bAbI files.
fn babi_files(files: &'static [(&'static str, &'static [u8])]) -> impl Fn(&Path) + 'static {
    move |s: &Path| {
        std::fs::create_dir(s.join("d")).unwrap();
        for (name, contents) in files {
            std::fs::write(s.join("d").join(name), contents).unwrap();
        }
    }
}

/// A qa1 story that every vocabulary reads.
const STORY: &[u8] = b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n";

/// Writes `contents` to `name` in the scratch directory.
fn file(name: &'static str, contents: &'static [u8]) -> impl Fn(&Path) + 'static {
    move |s: &Path| std::fs::write(s.join(name), contents).unwrap()
}

/// `{s}/x.safetensors`: `src` with `edit` applied.
fn edited(
    src: &Path,
    edit: impl Fn(&mut Tensors, &mut Metadata) + 'static,
) -> impl Fn(&Path) + 'static {
    let src = src.to_owned();
    move |s: &Path| rewrite(&src, &s.join("x.safetensors"), &edit)
}

/// `{s}/x.safetensors`: `src` with `pointer` of its `experiment` metadata set to `value`.
fn forged(src: &Path, pointer: &'static str, value: Value) -> impl Fn(&Path) + 'static {
    let src = src.to_owned();
    move |s: &Path| with_experiment(&src, &s.join("x.safetensors"), pointer, value.clone())
}

/// `{s}/x.safetensors`: the first `keep(len)` bytes of `src`.
fn truncated(src: &Path, keep: fn(usize) -> usize) -> impl Fn(&Path) + 'static {
    let src = src.to_owned();
    move |s: &Path| {
        let bytes = std::fs::read(&src).unwrap();
        std::fs::write(s.join("x.safetensors"), &bytes[..keep(bytes.len())]).unwrap();
    }
}

/// `{s}/old`: the run directory `run` (its config.json, edited by `edit`, and last.safetensors,
/// edited by `poison`).
fn old_run(
    run: &Path,
    edit: impl Fn(&mut Value) + 'static,
    poison: impl Fn(&mut Tensors) + 'static,
) -> impl Fn(&Path) + 'static {
    let run = run.to_owned();
    move |s: &Path| {
        let old = s.join("old");
        std::fs::create_dir(&old).unwrap();
        let text = std::fs::read_to_string(run.join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        edit(&mut config);
        std::fs::write(old.join("config.json"), config.to_string()).unwrap();
        rewrite(
            &run.join("last.safetensors"),
            &old.join("last.safetensors"),
            |t, _| poison(t),
        );
    }
}

/// Sets element 3 of `name` to `value`.
fn poison(name: &'static str, value: f64) -> impl Fn(&mut Tensors) + 'static {
    move |tensors: &mut Tensors| tensors.get_mut(name).unwrap().as_slice_mut().unwrap()[3] = value
}

#[rustfmt::skip]
fn rows(run: &Path, babi_run: &Path) -> Vec<Row> {
    let (best, last) = (run.join("best.safetensors"), run.join("last.safetensors"));
    let babi_dir = "train --set steps=1 --out {s}/run --task babi-qa1 --model lstm --babi-dir {s}/d";
    let babi_eval = format!("eval --checkpoint {} --babi-file", babi_run.join("best.safetensors").display());
    let huge = || Value::from(u64::MAX);
    let nth_lstm = "train --set steps=1 --out {s}/run --task nth-farthest --model lstm";
    let sort_rmc = "train --set steps=1 --out {s}/run --task sorting --model rmc";
    let babi = "train --set steps=1 --out {s}/run --task babi-qa1 --model lstm";
    vec![
        // Sizes that overflowed an allocation or an integer (were panics, status 101).
        train("--set slots={huge}", 1, "invalid `mem_slots`: must be at most 4294967295"),
        train("--set test_size={huge}", 1, "invalid `test_size`: must be at most"),
        row(&format!("{nth_lstm} --set hidden={{huge}}"), 1, "invalid `hidden_size`: must be at most"),
        row(&format!("{sort_rmc} --set task.len={{huge}}"), 1, "invalid `len`: must be at most"),
        row(&format!("{sort_rmc} --set task.vocab={{huge}}"), 1, "invalid `vocab`: must be at most"),
        row(&format!("{sort_rmc} --set task.vocab=18446744073709551616"), 1, "invalid `task.vocab`: must be a non-negative integer"),
        row("export-data --task nth-farthest --num-vectors {huge} --out {s}/x.jsonl", 1, "invalid `num_vectors`: must be at most"),
        row("export-data --task nth-farthest --dim {huge} --out {s}/x.jsonl", 1, "invalid `dim`: must be at most"),
        row("export-data --task sorting --len {huge} --out {s}/x.jsonl", 1, "invalid `len`: must be at most"),
        row("export-data --task sorting --hard-len {huge}", 1, "invalid `hard_len`: must be at most"),
        row("export-data --task babi-qa1 --num-sentences 10000000000", 1, "invalid `num_sentences`: must be at most"),
        row("export-data --task tracking --num-objects 4294967295 --num-moves 4294967295", 1, "hard_num_objects"),
        // Sizes that fit in an integer but not in memory (were aborts, status 134, or OOM).
        train("--batch 1000000000000", 1, "invalid `batch_size`: must be at most"),
        train("--batch 10000000", 1, "this run needs about "),
        train("--set slots=1000000000", 1, "this run needs more than 16 EiB of memory"),
        train("--set test_size=300000000", 1, " available; the largest part is evaluation sets"),
        row(&format!("{nth_lstm} --set hidden=10000000000"), 1, "invalid `hidden_size`: must be at most"),
        row(&format!("{nth_lstm} --set hidden=1000000"), 1, "the largest part is parameters and optimiser state"),
        row(&format!("{babi} --set task.num_sentences=10000000000 --set task.hard_num_sentences=20000000000"), 1, "invalid `num_sentences`: must be at most"),
        row(&format!("{babi} --set task.num_sentences=100000000 --set task.hard_num_sentences=200000000"), 1, "this run needs about "),
        row("export-data --task nth-farthest --num-vectors 100000 --out {s}/x.jsonl", 1, "exporting needs about "),
        row("sweep --task nth-farthest --model rmc --grid batch=4,10000000 --out {s}/sweep", 1, "job batch=10000000/seed=0: this run needs about"),
        row("sweep --task nth-farthest --model rmc --grid slots=2,{huge} --out {s}/sweep --print-commands", 1, "invalid `mem_slots`"),
        // Non-finite floats, wrong types, negative numbers: errors naming the key.
        train("--lr nan", 1, "invalid `train.optimizer.lr`: must be a finite number, got NaN"),
        train("--lr inf", 1, "invalid `train.optimizer.lr`: must be a finite number, got inf"),
        train("--lr=-inf", 1, "invalid `train.optimizer.lr`: must be a finite number, got -inf"),
        train("--lr=-1", 1, "invalid `lr`: must be a non-negative finite number"),
        train("--set lr=nan", 1, "invalid `train.optimizer.lr`: must be a finite number, got nan"),
        train("--set lr=1e999", 1, "invalid `train.optimizer.lr`: must be a finite number, got 1e999"),
        train("--set train.clip_norm=-inf", 1, "invalid `train.clip_norm`: must be a finite number"),
        train("--set model.core.forget_bias=nan", 1, "invalid `model.core.forget_bias`"),
        row("export-data --task nth-farthest --hard-gap nan", 1, "invalid `hard_gap`: must be a positive finite number"),
        train("--set slots=-1", 1, "invalid `model.core.mem_slots`: must be a non-negative integer, got -1"),
        train("--set slots=1.5", 1, "invalid `model.core.mem_slots`: must be a non-negative integer, got 1.5"),
        train("--set slots=two", 1, "invalid `model.core.mem_slots`: must be a non-negative integer, got two"),
        train("--set slots=", 1, "invalid `model.core.mem_slots`: must be a non-negative integer, got "),
        train("--set seed=-1", 1, "invalid `train.seed`: must be a non-negative integer"),
        train("--set model.head_hidden=[-1]", 1, "invalid `model.head_hidden[0]`"),
        train("--set model.head_hidden=\"x\"", 1, "invalid `model.head_hidden`: must be a list"),
        train("--set model.head_hidden=[0]", 1, "every hidden width must be at least 1"),
        train("--set model.core.residual=1", 1, "invalid `model.core.residual`: must be true or false"),
        train("--set model.core.gate_style=sometimes", 1, "invalid `model.core.gate_style`: unknown variant"),
        train("--set model.core.key_size=-1", 1, "invalid `model.core.key_size`"),
        train("--set model.core=5", 1, "cannot set `model.core.kind`: `model.core` was set to a value that is not a table"),
        train("--set train.optimizer=[]", 1, "invalid `train.optimizer`: must be a table, got []"),
        train("--set eval_every=0", 1, "invalid `eval_every`: must be at least 1"),
        train("--set heads=0", 1, "invalid `heads`"),
        train("--set heads={huge}", 1, "invalid `heads`: must be at most"),
        train("--steps 0", 1, "invalid `steps`: must be at least 1, got 0"),
        // Unknown keys, empty strings, conflicting sources.
        train("--set bogus=1", 1, "unknown key `bogus`"),
        train("--set task.bogus=1", 1, "unknown key `task.bogus`"),
        train("--set a.b.c=1", 1, "unknown key `a`"),
        train("--set task..dim=1", 1, "unknown key `task.`"),
        row("train --out {s}/run --task '' --model rmc", 1, "unknown task ``"),
        row("train --out {s}/run --task sorting --model ''", 1, "must be one of lstm, rmc, rrnn-cell; got ``"),
        row("train --out {s}/run --model rmc", 1, "no task"),
        row("train --out {s}/run --task sorting --model rmc --set task.task=nth-farthest", 1, "--task sorting conflicts with task.task = nth-farthest"),
        row("train --out {s}/run --task babi-qa2 --model rmc --set task.kind=qa1", 1, "--task babi-qa2 conflicts with task.kind = qa1"),
        row("train --out {s}/run --task sorting --model rmc --set model.core.kind=lstm", 1, "--model rmc conflicts with model.core.kind = lstm"),
        row("train --out {s}/run --task sorting --model lstm --set slots=2", 1, "does not apply to model lstm"),
        // Usage errors the argument parser catches (status 2).
        row("train --out {s}/run --task sorting --model rmc --steps=-1", 2, "invalid value '-1' for '--steps"),
        row("train --out {s}/run --task sorting --model rmc --batch=-5", 2, "invalid value '-5' for '--batch"),
        row("train --out {s}/run --task sorting --model rmc --seed 18446744073709551616", 2, "--seed"),
        row("train --out {s}/run --task sorting --model rmc --lr fast", 2, "--lr"),
        row("train --out {s}/run --task sorting --model rmc --threads 0", 2, "must be at least 1"),
        row("train --out {s}/run --task sorting --model rmc --threads=-2", 2, "not a thread count"),
        row("train --out {s}/run --task sorting --model rmc --set slots", 2, "is not key=value"),
        row("train --out {s}/run --task sorting --model rmc --set =3", 2, "has an empty key"),
        row("train --out '' --task sorting --model rmc", 2, "--out"),
        row("eval --checkpoint {s}/x --split train", 2, "--split"),
        row("export-data --task sorting --n=-1", 2, "invalid value '-1' for '--n"),
        row("bench --config B --threads 100000", 2, "--threads"),
        // Paths that are files, directories, missing or unreadable.
        train("", 1, "run: Not a directory").setup(file("run", b"")),
        row(&format!("train --set steps=1 --out {{s}}/f/run {}", TINY.join(" ")), 1, "Not a directory").setup(file("f", b"x")),
        train("--config {s}", 1, "cannot read config"),
        train("--config {s}/none.toml", 1, "cannot read config"),
        train("--config {s}/c.toml", 1, "cannot read config").setup(file("c.toml", b"\xff\xfe[train]")),
        train("--config {s}/c.toml", 1, "c.toml: ").setup(file("c.toml", b"[train\nsteps = ")),
        train("--config {s}/c.toml", 1, "invalid `train.optimizer.lr`: must be a finite number, got NaN").setup(file("c.toml", b"[train.optimizer]\nlr = nan\n")),
        train("--config {s}/c.json", 1, "the config must be a table").setup(file("c.json", b"[1, 2]")),
        train("--config {s}/c.json", 1, "c.json: ").setup(file("c.json", b"{\"train\": {\"steps\": NaN}}")),
        row("train --resume {s}/f", 1, "is not a run directory").setup(file("f", b"")),
        row("train --resume {s}/old", 1, "invalid `test_size`: must be at most").setup(old_run(run, |c| c["experiment"]["test_size"] = u64::MAX.into(), |_| {})),
        row("train --resume {s}/old", 1, "this run needs more than").setup(old_run(run, |c| c["experiment"]["model"]["core"]["mem_slots"] = 1_000_000_000u64.into(), |_| {})),
        row("train --resume {s}/old", 1, "config.json: ").setup(old_run(run, |c| c["experiment"] = "nope".into(), |_| {})),
        row("train --resume {s}/old", 1, "tensor `optim.m.rmc.input_proj.weight` is not finite").setup(old_run(run, |_| {}, poison("optim.m.rmc.input_proj.weight", f64::NAN))),
        row("export-data --task sorting --out {s}", 1, "cannot create"),
        row("export-data --task sorting --out {s}/no/x.jsonl", 1, "cannot create"),
        row("sweep --task sorting --model rmc --out {s}/f/sweep", 1, "Not a directory").setup(file("f", b"")),
        row("sweep summarize {s}/f", 1, "is not a sweep directory").setup(file("f", b"")),
        row("study summarize {s}/f", 1, "Not a directory").setup(file("f", b"")),
        // Checkpoints: not one, truncated, forged metadata, poisoned weights.
        row("eval --checkpoint {s}", 1, "Is a directory"),
        row("eval --checkpoint {s}/none.safetensors", 1, "No such file"),
        eval("not a valid checkpoint", file("x.safetensors", b"")),
        eval("not a valid checkpoint", file("x.safetensors", b"\xff\xff\xff\xff\xff\xff\xff\xff{}")),
        eval("not a valid checkpoint", truncated(&best, |n| n / 2)),
        eval("not a valid checkpoint", truncated(&best, |n| n - 1)),
        eval("no `experiment` metadata", edited(&best, |_, m| { m.remove("experiment"); })),
        eval("bad `experiment`", edited(&best, |_, m| { m.insert("experiment".into(), "{".into()); })),
        eval("invalid `test_size`: must be at most", forged(&best, "/test_size", huge())),
        eval("invalid `mem_slots`: must be at most", forged(&best, "/model/core/mem_slots", huge())),
        eval("evaluating this checkpoint needs about", forged(&best, "/test_size", 300_000_000.into())),
        eval("describes a network of", forged(&best, "/model/core/num_blocks", 3.into())),
        eval("describes a network of", forged(&best, "/model/core", serde_json::json!({"kind": "lstm", "input_size": 40, "hidden_size": 100_000, "forget_bias": 1.0}))),
        eval("has shape", forged(&best, "/model/core/head_size", 16.into())),
        eval("is not a parameter of this network", forged(&best, "/model/core/attention_mlp_layers", 1.into())),
        eval("`rmc.input_proj.weight` holds a non-finite value (NaN at element 3)", edited(&last, |t, _| poison("rmc.input_proj.weight", f64::NAN)(t))),
        eval("`head.0.bias` holds a non-finite value (-inf at element 3)", edited(&last, |t, _| poison("head.0.bias", f64::NEG_INFINITY)(t))),
        // Real bAbI files: missing, ambiguous, empty, malformed, or with words the vocabulary lacks.
        row(babi_dir, 1, "/d: No such file"),
        row(babi_dir, 1, "/d (found: qa10_x_train.txt, qa1_x_test.txt)").setup(babi_files(&[("qa10_x_train.txt", STORY), ("qa1_x_test.txt", STORY)])),
        row(babi_dir, 1, "(found: nothing)").setup(babi_files(&[])),
        row(babi_dir, 1, "/d: qa1_a_train.txt, qa1_b_train.txt; keep one").setup(babi_files(&[("qa1_a_train.txt", STORY), ("qa1_b_train.txt", STORY)])),
        row(babi_dir, 1, "qa1_x_train.txt:1: no story in the file").setup(babi_files(&[("qa1_x_train.txt", b"")])),
        row(babi_dir, 1, "qa1_x_train.txt:1: no story in the file").setup(babi_files(&[("qa1_x_train.txt", b"\xef\xbb\xbf\n\n")])),
        row(babi_dir, 1, "qa1_x_train.txt:4: unknown word `flew`: not in the english vocabulary").setup(babi_files(&[("qa1_x_train.txt", b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n\n1 Mary flew to the office.\n2 Where is Mary? \toffice\t1\n")])),
        row(babi_dir, 1, "qa1_x_train.txt:2: answer `moon` is not one of the locations").setup(babi_files(&[("qa1_x_train.txt", b"\xef\xbb\xbf1 Mary went to the kitchen.\n2 Where is Mary? \tmoon\t1\n")])),
        row(babi_dir, 1, "qa1_x_train.txt:2: story ends without a question").setup(babi_files(&[("qa1_x_train.txt", b"1 Mary went to the kitchen.\n2 Where is Mary? kitchen 1\n")])),
        row(babi_dir, 1, "qa1_x_train.txt:2: invalid UTF-8").setup(babi_files(&[("qa1_x_train.txt", b"1 Mary went to the kitchen.\n2 Where \xff\n")])),
        row(babi_dir, 1, "too few to carve a validation split").setup(babi_files(&[("qa1_x_train.txt", STORY)])),
        row(&format!("{babi_dir} --set task.vocabulary=generated"), 1, "unknown word `back`: not in the generated vocabulary (task.vocabulary = \"english\"").setup(babi_files(&[("qa1_x_train.txt", b"1 Mary went back to the kitchen.\n2 Where is Mary? \tkitchen\t1\n")])),
        row("train --set steps=1 --out {s}/run --task sorting --model lstm --babi-dir {s}", 1, "--babi-dir needs a bAbI task"),
        row(&format!("{babi_eval} {{s}}/qa1_x_test.txt"), 1, "qa1_x_test.txt: No such file"),
        row(&format!("{babi_eval} {{s}}"), 1, "cannot read file"),
        row(&format!("{babi_eval} {{s}}/qa1_x_test.txt"), 1, "qa1_x_test.txt:1: no story in the file").setup(file("qa1_x_test.txt", b"")),
        row(&format!("{babi_eval} {{s}}/f.txt"), 1, "f.txt:3: unknown word `flew`").setup(file("f.txt", b"\xef\xbb\xbf1 Mary went back to the kitchen.\r\n2 Where is Mary? \tkitchen\t1\r\n1 Mary flew to the kitchen.\r\n2 Where is Mary? \tkitchen\t1\r\n")),
        row(&format!("{babi_eval} {{s}}/f.txt"), 1, "f.txt:2: supporting id 3 is not an earlier line").setup(file("f.txt", b"1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t3\n")),
        row(&format!("{babi_eval} {{s}}/qa2_x_test.txt"), 1, "is a file of bAbI task 2; the checkpoint was trained on babi-qa1").setup(file("qa2_x_test.txt", STORY)),
        row(&format!("eval --checkpoint {} --babi-file {{s}}/f.txt", best.display()), 1, "--babi-file needs a checkpoint of a bAbI task").setup(file("f.txt", STORY)),
        row(&format!("{babi_eval} {{s}}/f.txt --split val"), 2, "cannot be used with"),
    ]
}

#[test]
fn hostile_input_is_refused_cleanly_and_leaves_nothing_behind() {
    let root = std::env::temp_dir().join(format!("rrnn-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let run = fixture(&root);
    let babi_run = babi_fixture(&root);
    let mut failures = Vec::new();
    let table = rows(&run, &babi_run);
    let tried = table.len();
    for (i, row) in table.into_iter().enumerate() {
        let scratch = root.join(format!("row{i}"));
        std::fs::create_dir(&scratch).unwrap();
        if let Some(setup) = &row.setup {
            setup(&scratch);
        }
        let before = listing(&scratch);
        let args = row.args(&scratch);
        let out = rrnn_limited(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let first = stderr.lines().next().unwrap_or("");
        let mut problems = Vec::new();
        if out.status.code() != Some(row.code) {
            problems.push(format!(
                "status {:?}, expected {}",
                out.status.code(),
                row.code
            ));
        }
        if ["panicked at", "memory allocation of"]
            .iter()
            .any(|p| stderr.contains(p))
        {
            problems.push("panicked or aborted".into());
        }
        if row.code == 1 && (stderr.lines().count() != 1 || !first.starts_with("error: ")) {
            problems.push("not exactly one `error: ` line".into());
        }
        if !first.contains(row.stderr) {
            problems.push(format!("no `{}` in the first line", row.stderr));
        }
        if listing(&scratch) != before {
            problems.push("the scratch directory changed".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{args:?}: {}\n    {stderr}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{tried} hostile inputs tried, every one refused cleanly");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn too_many_threads_are_lowered_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("rrnn-hostile-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args: Vec<String> = ["train", "--steps", "1", "--threads", "100000", "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(dir.display().to_string());
    args.extend(TINY.iter().map(|s| s.to_string()));
    let out = rrnn_limited(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning: --threads 100000 is more than the "),
        "{stderr}"
    );
    let cpus = std::thread::available_parallelism().unwrap().get();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["threads"], cpus);
    std::fs::remove_dir_all(dir).unwrap();
}
