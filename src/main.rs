//! The `pushrace` command line: parse, call, print. Exit status: 0 fine, 1 a violation or a
//! difference was found, 2 bad input or setup.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod apply;
mod daemon_cmd;
mod replay_daemon;
mod scenario_cmd;
mod triage_cmd;

#[derive(Parser)]
#[command(
    name = "pushrace",
    version,
    about = "Deterministic reproduction of containerd image-push races"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply a TOML list of operations to a fresh model store; print each result and the final state.
    Apply(apply::Args),
    /// Run an ops file on the model and on a fresh private containerd; print the differences (exit 1 if any).
    Diff(daemon_cmd::DiffArgs),
    /// List the built-in scenarios with their expected verdicts.
    List,
    /// Explore a scenario's interleavings; exit 1 with a shrunk, replayable trace on a violation.
    Explore(scenario_cmd::ExploreArgs),
    /// Replay one schedule of a scenario and print its trace.
    Replay(scenario_cmd::ReplayArgs),
    /// Classify a failing push's log, build and explore a reproducing scenario (exit 0 known family, 1 unknown).
    Triage(triage_cmd::TriageArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Apply(args) => apply::run(args),
        Command::Diff(args) => daemon_cmd::diff(args),
        Command::List => scenario_cmd::list(),
        Command::Explore(args) => scenario_cmd::explore(args),
        Command::Replay(args) => scenario_cmd::replay(args),
        Command::Triage(args) => triage_cmd::run(args),
    }
}

/// Reads a named input file (`-` for stdin), reporting a failure as the bad-input exit status.
pub fn read_input(path: &str) -> Result<String, ExitCode> {
    let read = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| {
        eprintln!("pushrace: {path}: {e}");
        ExitCode::from(2)
    })
}
