//! `pushrace apply OPS.toml [--json]`.

use pushrace_models::opsfile;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The operations file (`-` for stdin).
    pub file: String,
    /// Print one JSON object: {"results": [...], "state": {...}}.
    #[arg(long)]
    pub json: bool,
    /// `--backend containerd [--address SOCK]`: run on a real daemon instead of the model.
    #[command(flatten)]
    pub daemon: crate::daemon_cmd::DaemonArgs,
}

pub fn run(args: Args) -> ExitCode {
    if args.daemon.backend == crate::daemon_cmd::Backend::Containerd {
        return crate::daemon_cmd::apply(&args.file, args.json, &args.daemon);
    }
    let text = match crate::read_input(&args.file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let ops = match opsfile::parse(&args.file, &text) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pushrace: {e}");
            return ExitCode::from(2);
        }
    };
    let (store, results) = ops.run();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&opsfile::to_json(&results, &store.state()))
                .expect("JSON")
        );
    } else {
        print!("{}", opsfile::to_text(&ops, &results, &store.state()));
    }
    ExitCode::SUCCESS
}
