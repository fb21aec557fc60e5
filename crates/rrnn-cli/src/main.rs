//! `rrnn`: the command-line front end of `relational-rnn`.
//!
//! Subcommands (more to come: `train`, `eval`, `sweep`, `bench`):
//! - `export-data`: print examples of a reasoning task as JSON Lines or bAbI text.
//!
//! Errors are one line on stderr and a non-zero exit status.

mod bench;
mod export_data;

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
    /// Write examples of a sequential reasoning task, one per line.
    ExportData(export_data::ExportDataArgs),
    /// Time one training step of a performance configuration; one JSON line.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ExportData(args) => export_data::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
