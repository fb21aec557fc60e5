//! `rrnn train`: one run in its own directory (see [`crate::run_dir`]), with a progress bar,
//! evaluation-time checkpoints, clean Ctrl-C and SIGTERM, a NaN guard and exact resume.
//!
//! Resume is exact: the checkpoint holds the parameters, the optimiser's buffers and step count,
//! the loss/accuracy accumulated since the last evaluation and the early-stopping state; batches
//! come from per-step RNG streams. Final parameters and every metrics.jsonl field except
//! `elapsed_s` equal those of an uninterrupted run, bit for bit.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use relational_rnn::experiment::{Experiment, eval_batches};
use relational_rnn::tasks::babi::DataFile;
use relational_rnn::tasks::{Batch, Split};
use relational_rnn::train::{
    Control, EvalRecord, Event, Hooks, Progress, Snapshot, StepStats, Stopped, Trainer, evaluate,
    fit_from,
};
use relational_rnn::{ParamStore, checkpoint, with_threads};
use serde_json::json;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use crate::config_args::ConfigArgs;
use crate::overrides::resolve;
use crate::run_dir::{Best, RunConfig, RunDir};

/// Signals that stop a run cleanly: SIGINT (Ctrl-C), SIGTERM (`kill`, batch schedulers) and
/// SIGHUP (a closed terminal). The exit status is 128 + the signal, as shells report it.
#[cfg(unix)]
const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, signal_hook::consts::SIGHUP];
#[cfg(not(unix))]
const STOP_SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Arguments of `rrnn train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Directory of the run (created; must be empty unless --force).
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (--steps may raise the budget;
    /// a run that stopped early stays stopped).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Overwrite the run files in a non-empty --out.
    #[arg(long)]
    force: bool,
    /// Threads for the large matrix products and Adam updates of big models (products of ≥ 64
    /// MFLOP split by columns; the same results, bit for bit, for any count; small models do not
    /// gain; more than the CPUs available is lowered to their count). Recorded in config.json.
    #[arg(long, default_value_t = 1, value_parser = crate::limits::parse_threads)]
    threads: u64,
    /// Stop cleanly after this step, as Ctrl-C would (for time-sliced jobs and tests); 0 stops
    /// a new run before its first step, with its step-0 checkpoint written.
    #[arg(long, value_name = "STEP")]
    stop_at: Option<u64>,
    /// Start from the parameters of this checkpoint (a run's best.safetensors or
    /// last.safetensors, of the same model) instead of a fresh initialisation; the optimiser
    /// starts fresh. Recorded in config.json with the file's size and content hash.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
}

/// Everything a run needs in memory.
struct Session {
    dir: RunDir,
    config: RunConfig,
    model: relational_rnn::nn::SequenceClassifier,
    store: relational_rnn::ParamStore<f32>,
    trainer: Trainer<f32>,
    progress: Progress,
    best: Option<Best>,
    /// The validation batches (every evaluation during the run).
    val: Vec<Batch>,
}

/// Resolves, validates and builds everything, then creates the directory; a failure after
/// creating it removes what was written.
fn start(args: &TrainArgs, out: &Path) -> Result<Session, String> {
    let experiment = resolve(&args.config.sources())?;
    crate::limits::check_training(&experiment)?;
    let val = val_batches(&experiment)?;
    let (model, mut store) = experiment.init().map_err(|e| e.to_string())?;
    let init_from = match &args.init_from {
        Some(path) => Some(warm_start(&mut store, path)?),
        None => None,
    };
    let trainer = Trainer::new(&store, &experiment.train.optimizer).map_err(|e| e.to_string())?;
    let config = RunConfig {
        init_from,
        ..RunConfig::new(experiment, args.threads as usize)?
    };
    let dir = RunDir::create(out, args.force)?;
    let progress = Progress::at(0);
    let written = dir
        .truncate_metrics(0)
        .and_then(|()| {
            dir.save_last(
                &store,
                trainer.optimizer(),
                &progress,
                None,
                &config.experiment,
            )
        })
        .and_then(|()| dir.write_config(&config));
    if let Err(e) = written {
        dir.discard();
        return Err(e);
    }
    Ok(Session {
        dir,
        config,
        model,
        store,
        trainer,
        progress,
        best: None,
        val,
    })
}

/// Loads the parameters of the checkpoint at `path` into `store` (every parameter, by name and
/// shape; finite; nothing else but optimiser buffers) and returns its record for config.json.
fn warm_start(store: &mut ParamStore<f32>, path: &Path) -> Result<DataFile, String> {
    let fail = |e: &dyn std::fmt::Display| format!("--init-from {}: {e}", path.display());
    let (tensors, _) = checkpoint::read(path).map_err(|e| fail(&e))?;
    checkpoint::load_into(store, &tensors, path).map_err(|e| fail(&e))?;
    checkpoint::check_no_extra(store, &tensors, &["optim."], path).map_err(|e| fail(&e))?;
    DataFile::read("init", path).map_err(|e| fail(&e))
}

/// Opens a run directory at its last checkpoint; `None` when it already finished.
fn resume(args: &TrainArgs, path: &Path) -> Result<Option<Session>, String> {
    if args.config.any_besides_steps() || args.force {
        return Err("--resume takes the configuration from the run; only --steps, --threads and --stop-at may be given".into());
    }
    let (dir, mut config) = RunDir::open(path)?;
    let extended = args
        .config
        .steps
        .is_some_and(|s| s != config.experiment.train.steps);
    if let Some(steps) = args.config.steps {
        config.experiment.train.steps = steps;
    }
    if dir.file("result.json").exists() && !extended {
        return Ok(None);
    }
    config.experiment.validate().map_err(|e| e.to_string())?;
    crate::limits::check_training(&config.experiment)?;
    config.check_data()?;
    let val = val_batches(&config.experiment)?;
    let (model, mut store) = config.experiment.init().map_err(|e| e.to_string())?;
    let resumed = dir.load_last(&mut store, &config.experiment)?;
    dir.truncate_metrics(resumed.progress.step)?;
    if extended {
        dir.write_config(&config)?;
        let _ = std::fs::remove_file(dir.file("result.json"));
    }
    Ok(Some(Session {
        dir,
        model,
        trainer: Trainer::with_optimizer(&store, resumed.optimizer),
        store,
        progress: resumed.progress,
        best: resumed.best,
        config,
        val,
    }))
}

/// Hooks of a CLI run: progress bar, metrics, checkpoints, stop requests.
struct Recorder<'a> {
    dir: &'a RunDir,
    experiment: &'a Experiment,
    best: Option<Best>,
    bar: ProgressBar,
    interrupted: &'a AtomicBool,
    stop_at: Option<u64>,
    last_val_accuracy: Option<f64>,
    saved_step: u64,
    error: Option<String>,
}

impl Recorder<'_> {
    fn record(&mut self, event: Event<'_>, snap: &Snapshot<'_, f32>) -> Result<(), String> {
        if let Event::Evaluated(r) = event {
            self.dir.append_metrics(r)?;
            self.last_val_accuracy = Some(r.val_accuracy);
            if self.best.is_none_or(|b| r.val_accuracy > b.val_accuracy) {
                let best = Best {
                    step: r.step,
                    val_accuracy: r.val_accuracy,
                };
                self.dir.save_best(snap.store, best, self.experiment)?;
                self.best = Some(best);
            }
        }
        self.dir.save_last(
            snap.store,
            snap.optimizer,
            snap.progress,
            self.best,
            self.experiment,
        )?;
        self.saved_step = snap.progress.step;
        Ok(())
    }
}

impl Hooks<f32> for Recorder<'_> {
    fn on_step(&mut self, progress: &Progress, _: &StepStats) -> Control {
        self.bar.set_position(progress.step);
        if !self.bar.is_hidden() && progress.since_eval > 0 {
            let n = progress.since_eval as f64;
            let val = self
                .last_val_accuracy
                .map_or(String::new(), |a| format!(" | val acc {a:.3}"));
            self.bar.set_message(format!(
                "loss {:.4} acc {:.3}{val}",
                progress.loss_sum / n,
                progress.accuracy_sum / n
            ));
        }
        if self.interrupted.load(Ordering::SeqCst) || self.stop_at == Some(progress.step) {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn on_event(&mut self, event: Event<'_>, snap: Snapshot<'_, f32>) -> Control {
        match self.record(event, &snap) {
            Ok(()) => Control::Continue,
            Err(e) => {
                self.error = Some(e);
                Control::Stop
            }
        }
    }
}

fn progress_bar(total: u64, position: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} {msg} {per_sec} ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_position(position);
    bar
}

/// Reads every record of metrics.jsonl.
fn read_metrics(dir: &RunDir) -> Result<Vec<EvalRecord>, String> {
    let path = dir.file("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// The validation batches of an experiment.
fn val_batches(experiment: &Experiment) -> Result<Vec<Batch>, String> {
    let sets = experiment.eval_sets().map_err(|e| e.to_string())?;
    Ok(eval_batches(&sets.val))
}

/// Writes result.json for a finished run and returns it: the validation-best parameters
/// (`best.safetensors`) scored once on the test and hard sets.
fn finish(s: &Session, stopped: &Stopped) -> Result<serde_json::Value, String> {
    let records = read_metrics(&s.dir)?;
    let last = records.last();
    let best_record = s
        .best
        .and_then(|b| records.iter().find(|r| r.step == b.step));
    let mut scored = s.store.clone();
    if s.best.is_some() {
        let path = s.dir.file("best.safetensors");
        let (tensors, _) = checkpoint::read(&path).map_err(|e| e.to_string())?;
        checkpoint::load_into(&mut scored, &tensors, &path).map_err(|e| e.to_string())?;
    }
    let sets = s.config.experiment.eval_sets().map_err(|e| e.to_string())?;
    let test = evaluate(&s.model, &scored, &eval_batches(&sets.test));
    let hard = evaluate(&s.model, &scored, &eval_batches(&sets.hard));
    // A set of no examples (real bAbI files: no hard split, or no test file) has no accuracy.
    let scored_only = |x: f64, count: usize| (count > 0).then_some(x);
    let result = json!({
        "stopped": stopped,
        "step": s.progress.step.max(last.map_or(0, |r| r.step)),
        "best_step": s.best.map(|b| b.step),
        "val_accuracy": best_record.map(|r| r.val_accuracy),
        "val_loss": best_record.map(|r| r.val_loss),
        "test_accuracy": scored_only(test.accuracy, test.count),
        "test_loss": scored_only(test.loss, test.count),
        "hard_accuracy": scored_only(hard.accuracy, hard.count),
        "hard_loss": scored_only(hard.loss, hard.count),
        "params": s.store.num_scalars(),
        "elapsed_s": last.map(|r| r.elapsed_s),
        "reference": s.config.experiment.reference().map_err(|e| e.to_string())?,
    });
    s.dir.write_result(&result)?;
    Ok(result)
}

/// On the first stop signal, records it in `signal` and sets `interrupted` (the run then saves
/// a checkpoint and ends); on a second, exits at once: checkpoints are atomic, so nothing is
/// left corrupt.
fn on_stop_signals(interrupted: &Arc<AtomicBool>, signal: &Arc<AtomicUsize>) -> Result<(), String> {
    for sig in STOP_SIGNALS {
        // Actions run in the order registered: the exit first, armed only by an earlier signal.
        flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(interrupted))
            .and_then(|_| flag::register_usize(sig, Arc::clone(signal), sig as usize))
            .and_then(|_| flag::register(sig, Arc::clone(interrupted)))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(())
}

/// Runs `rrnn train`.
pub fn run(args: &TrainArgs) -> Result<ExitCode, String> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(AtomicUsize::new(0));
    on_stop_signals(&interrupted, &signal)?;

    let mut s = match (&args.resume, &args.out) {
        (Some(dir), _) => match resume(args, dir)? {
            Some(s) => s,
            None => {
                eprintln!("{} has already finished", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
        },
        (None, Some(out)) => start(args, out)?,
        (None, None) => return Err("give --out DIR or --resume DIR".into()),
    };
    if args.stop_at == Some(s.progress.step) {
        eprintln!(
            "stopped at step {}; checkpoint saved; continue with: rrnn train --resume {}",
            s.progress.step,
            s.dir.path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let experiment = s.config.experiment.clone();
    let task = experiment.task.build().map_err(|e| e.to_string())?;
    let mut recorder = Recorder {
        dir: &s.dir,
        experiment: &experiment,
        best: s.best,
        bar: progress_bar(experiment.train.steps, s.progress.step),
        interrupted: &interrupted,
        stop_at: args.stop_at,
        last_val_accuracy: None,
        saved_step: s.progress.step,
        error: None,
    };
    // Bit-identical whatever the count (see `with_threads`), so a resumed run may change it.
    let history = with_threads(args.threads as usize, || {
        fit_from(
            &s.model,
            &mut s.store,
            &mut s.trainer,
            &experiment.train,
            s.progress.clone(),
            |rng, b| task.sample(b, Split::Train, rng),
            &s.val,
            &mut recorder,
        )
    })
    .map_err(|e| e.to_string())?;
    recorder.bar.finish_and_clear();
    let (best, saved_step, error) = (recorder.best, recorder.saved_step, recorder.error);
    if let Some(e) = error {
        return Err(e);
    }
    let dir = s.dir.path().display().to_string();
    match history.stopped {
        Stopped::NonFinite { step } => Err(format!(
            "training diverged: non-finite loss or gradient at step {step}; the last good \
             checkpoint (step {saved_step}) is kept in {dir}/last.safetensors"
        )),
        Stopped::Interrupted => {
            eprintln!(
                "stopped at step {saved_step}; checkpoint saved; continue with: rrnn train --resume {dir}"
            );
            Ok(if interrupted.load(Ordering::SeqCst) {
                ExitCode::from(128 + signal.load(Ordering::SeqCst) as u8)
            } else {
                ExitCode::SUCCESS
            })
        }
        stopped => {
            s.best = best;
            s.progress.step = s.progress.step.max(saved_step);
            let result = finish(&s, &stopped)?;
            println!("{result}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
