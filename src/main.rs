//! The `pushrace` command line: parse, call, print. Exit status: 0 fine, 1 a violation or a
//! difference was found, 2 bad input or setup.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod apply;
mod daemon_cmd;
mod interpose_cmd;
mod real_cmd;
mod record_cmd;
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
    /// Forward containerd gRPC calls from one socket per actor to a containerd, logging each call as a JSON line.
    Interpose(interpose_cmd::InterposeArgs),
    /// List the built-in scenarios with their expected verdicts.
    List,
    /// Explore a scenario's interleavings; exit 1 with a shrunk, replayable trace on a violation.
    Explore(scenario_cmd::ExploreArgs),
    /// Run a command against a private containerd, recording every call in the order it ran; write the log (exit 1 if the command failed).
    Record(record_cmd::RecordArgs),
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
        Command::Interpose(args) => interpose_cmd::run(args),
        Command::List => scenario_cmd::list(),
        Command::Explore(args) => scenario_cmd::explore(args),
        Command::Record(args) => record_cmd::run(args),
        Command::Replay(args) => scenario_cmd::replay(args),
        Command::Triage(args) => triage_cmd::run(args),
    }
}

/// Reads a named input file (`-` for stdin), reporting a failure as the bad-input exit status.
/// Only a regular file (or stdin) of at most [`pushrace_models::limits::MAX_FILE_BYTES`] is read.
pub fn read_input(path: &str) -> Result<String, ExitCode> {
    let bytes = read_bytes(path, pushrace_models::limits::MAX_FILE_BYTES)?;
    pushrace_models::limits::utf8_text(bytes).map_err(|e| {
        eprintln!("pushrace: {path}: {e}");
        ExitCode::from(2)
    })
}

/// The bytes of a regular file or of stdin (`-`), at most `max`; errors name the file.
pub fn read_bytes(path: &str, max: u64) -> Result<Vec<u8>, ExitCode> {
    let read = if path == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), max + 1), &mut b)
            .map_err(|e| e.to_string())
            .and_then(|_| match b.len() as u64 > max {
                true => Err(format!("more than {max} bytes: at most {max} are read")),
                false => Ok(b),
            })
    } else {
        pushrace_models::limits::read_regular(std::path::Path::new(path), max)
    };
    read.map_err(|e| {
        eprintln!("pushrace: {path}: {e}");
        ExitCode::from(2)
    })
}
