//! `rrnn sweep`: every combination of a grid × seeds as an independent `rrnn train` job in its
//! own directory, `<out>/<key>=<value>/…/seed=<s>`, run one after another, or printed one command
//! per line (`--print-commands`) for a Slurm job array or GNU parallel. `<out>/sweep.json` lists
//! the jobs; `rrnn sweep summarize <out>` reads it. A later sweep into the same `<out>` (more
//! seeds, more grid values) adds its jobs to that list, and refuses to give a listed job other
//! arguments.
//!
//! Re-running a sweep skips finished jobs (those with result.json) and resumes started ones.
//! Every job's configuration is resolved (and, unless printed, checked to fit in memory) before
//! anything runs, so a bad grid value is an error with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Subcommand};

use crate::config_args::ConfigArgs;
use crate::limits::check_training;
use crate::overrides::{parse_set, resolve};
use crate::summarize;
use crate::sweep_file::{Job, SweepFile};

/// Arguments of `rrnn sweep`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    #[command(flatten)]
    config: ConfigArgs,
    /// A grid axis `KEY=V1,V2,…` (any --set key; `heads` keeps D fixed); repeatable.
    #[arg(long = "grid", value_name = "KEY=V1,V2,...")]
    grid: Vec<String>,
    /// Seeds per combination: --seed, --seed + 1, … (--seed defaults to 0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Directory of the sweep.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Print one `rrnn train` command per job instead of running them.
    #[arg(long)]
    print_commands: bool,
    /// Passed to every job.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
}

#[derive(Debug, Subcommand)]
enum SweepAction {
    /// Aggregate a sweep's results into summary.csv (mean and std over seeds).
    Summarize {
        /// The sweep directory.
        dir: PathBuf,
    },
}

/// Parses `KEY=V1,V2,…`.
fn parse_axis(s: &str) -> Result<(String, Vec<String>), String> {
    let (key, values) = s
        .split_once('=')
        .ok_or_else(|| format!("--grid `{s}` is not KEY=V1,V2,..."))?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
    if key.is_empty() || values.iter().any(String::is_empty) {
        return Err(format!("--grid `{s}` has an empty key or value"));
    }
    Ok((key.trim().to_owned(), values))
}

/// A path component from a grid value.
fn component(key: &str, value: &str) -> String {
    let safe: String = value
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    format!("{key}={safe}")
}

/// Every job: the grid's Cartesian product (first axis outermost), seeds innermost.
fn jobs(args: &SweepArgs, out: &Path) -> Result<(Vec<String>, Vec<Job>), String> {
    let axes = args
        .grid
        .iter()
        .map(|g| parse_axis(g))
        .collect::<Result<Vec<_>, _>>()?;
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (key, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let base_seed = args.config.seed.unwrap_or(0);
    let mut jobs = Vec::new();
    for params in combos {
        for seed in base_seed..base_seed + args.seeds {
            let mut dir: Vec<String> = params.iter().map(|(k, v)| component(k, v)).collect();
            dir.push(format!("seed={seed}"));
            let dir = dir.join("/");
            let mut config = args.config.clone();
            for (k, v) in &params {
                config.sets.push(parse_set(&format!("{k}={v}"))?);
            }
            config.seed = Some(seed);
            let experiment = resolve(&config.sources()).map_err(|e| format!("job {dir}: {e}"))?;
            if !args.print_commands {
                // Printed jobs may run elsewhere; run here, each must fit here.
                check_training(&experiment).map_err(|e| format!("job {dir}: {e}"))?;
            }
            let mut train = vec!["train".to_owned()];
            train.extend(config.to_args());
            train.extend([
                "--seed".to_owned(),
                seed.to_string(),
                "--threads".to_owned(),
                args.threads.to_string(),
                "--out".to_owned(),
                out.join(&dir).display().to_string(),
            ]);
            jobs.push(Job {
                dir,
                params: params.clone(),
                seed,
                args: train,
            });
        }
    }
    Ok((axes.into_iter().map(|(k, _)| k).collect(), jobs))
}

/// Quotes `s` for a POSIX shell when needed.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=,:+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `rrnn sweep`.
pub fn run(args: &SweepArgs) -> Result<ExitCode, String> {
    if let Some(SweepAction::Summarize { dir }) = &args.action {
        return summarize::run(dir).map(|()| ExitCode::SUCCESS);
    }
    let out = args.out.as_deref().ok_or("--out is required")?;
    let (keys, jobs) = jobs(args, out)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut file = SweepFile {
        keys,
        jobs: jobs.clone(),
    };
    let manifest = out.join("sweep.json");
    if manifest.exists() {
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        let old: SweepFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a sweep manifest: {e}", manifest.display()))?;
        file = old
            .merged(file)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
    }
    let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())? + "\n";
    relational_rnn::checkpoint::write_atomic(&manifest, text.as_bytes())
        .map_err(|e| e.to_string())?;
    if args.print_commands {
        for job in &jobs {
            let line: Vec<String> = std::iter::once("rrnn".to_owned())
                .chain(job.args.iter().map(|a| shell_quote(a)))
                .collect();
            println!("{}", line.join(" "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find rrnn itself: {e}"))?;
    let mut failed = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let dir = out.join(&job.dir);
        if dir.join("result.json").exists() {
            continue;
        }
        eprintln!("[{}/{}] {}", i + 1, jobs.len(), job.dir);
        let mut cmd = Command::new(&exe);
        if dir.join("config.json").exists() {
            cmd.args(["train", "--resume", &dir.display().to_string()]);
        } else {
            cmd.args(&job.args);
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot start job {}: {e}", job.dir))?;
        if interrupted.load(Ordering::SeqCst) {
            eprintln!("sweep interrupted; run the same command again to continue");
            return Ok(ExitCode::from(130));
        }
        if !status.success() {
            failed.push(job.dir.clone());
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!(
            "{} of {} jobs failed: {}",
            failed.len(),
            jobs.len(),
            failed.join(" ")
        ))
    }
}
