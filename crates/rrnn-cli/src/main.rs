//! `rrnn`: the command-line front end of `relational-rnn`.
//!
//! Subcommands:
//! - `train`: one run in its own directory, with checkpoints, exact resume and a NaN guard;
//! - `eval`: score a checkpoint on the validation, test or hard split;
//! - `sweep`: a grid × seeds of independent `train` jobs, and `sweep summarize`;
//! - `study summarize` / `study findings`: a study's `summary.json` from its run directories,
//!   and `FINDINGS.md` from that;
//! - `export-data`: print examples of a reasoning task as JSON Lines or bAbI text;
//! - `bench`: time one training step of a performance configuration (one JSON line).
//!
//! Errors are one line on stderr and a non-zero exit status.

mod bench;
mod config_args;
mod eval;
mod export_data;
mod findings;
mod limits;
mod overrides;
mod run_dir;
mod study;
mod summarize;
mod sweep;
mod sweep_file;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Relational recurrent neural networks (Santoro et al., 2018) from scratch.
#[derive(Debug, Parser)]
#[command(name = "rrnn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between argument structs costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model on a task, checkpointing into a run directory.
    Train(train::TrainArgs),
    /// Print a checkpoint's loss and accuracy on the validation, test or hard split as JSON.
    Eval(eval::EvalArgs),
    /// Run (or print) a grid of training jobs; `sweep summarize DIR` aggregates them.
    Sweep(sweep::SweepArgs),
    /// Summarise a study: `study summarize DIR` (summary.json), `study findings DIR` (FINDINGS.md).
    Study(study::StudyArgs),
    /// Write examples of a sequential reasoning task, one per line.
    ExportData(export_data::ExportDataArgs),
    /// Time one training step of a performance configuration; one JSON line.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Sweep(args) => sweep::run(&args),
        Command::Study(args) => study::run(&args).map(|()| ExitCode::SUCCESS),
        Command::ExportData(args) => export_data::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
