//! `pushrace interpose --listen [ACTOR=]SOCK… --upstream SOCK --log FILE`: the pass-through
//! interposer. Every call is forwarded at once to the containerd at `--upstream` and logged as one
//! JSON line (actor by socket, peer pid by `SO_PEERCRED`, method, the model's label, namespace,
//! lease, gRPC status) until SIGINT or SIGTERM; then the sockets are removed. Needs the feature
//! `containerd`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InterposeArgs {
    /// A socket to listen on: `ACTOR=PATH`, or `PATH` (the actor is then named after the file).
    /// Repeat for one socket per actor.
    #[arg(long, value_name = "[ACTOR=]SOCK", required = true)]
    pub listen: Vec<String>,
    /// The containerd socket to forward to.
    #[arg(long, value_name = "SOCK")]
    pub upstream: String,
    /// The JSON-lines log (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    pub log: String,
}

/// `ACTOR=PATH` or `PATH` → (actor, path).
fn listener(spec: &str) -> (String, std::path::PathBuf) {
    match spec.split_once('=') {
        Some((a, p)) if !a.is_empty() => (a.to_string(), p.into()),
        _ => {
            let p = std::path::PathBuf::from(spec);
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
            (name.unwrap_or_else(|| spec.to_string()), p)
        }
    }
}

pub fn run(args: InterposeArgs) -> ExitCode {
    let listen: Vec<_> = args.listen.iter().map(|s| listener(s)).collect();
    imp::run(&listen, &args.upstream, &args.log)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    use std::process::ExitCode;
    pub fn run(_: &[(String, std::path::PathBuf)], _: &str, _: &str) -> ExitCode {
        let why = crate::daemon_cmd::NEEDS_FEATURE;
        eprintln!("pushrace: interpose forwards to a real containerd: {why}");
        ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use pushrace_daemon::interpose::{self, Interposer, LogGate};
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::Arc;

    pub fn run(listen: &[(String, PathBuf)], upstream: &str, log: &str) -> ExitCode {
        if !Path::new(upstream).exists() {
            eprintln!("pushrace: --upstream {upstream}: no such socket");
            return ExitCode::from(2);
        }
        let out: Box<dyn Write + Send> = match log {
            "-" => Box::new(std::io::stdout()),
            path => match std::fs::File::create(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!("pushrace: --log {path}: {e}");
                    return ExitCode::from(2);
                }
            },
        };
        interpose::block_termination_signals();
        let gate = Arc::new(LogGate::new(out));
        let ip = match Interposer::start(listen, Path::new(upstream), gate) {
            Ok(ip) => ip,
            Err(e) => {
                eprintln!("pushrace: --listen: {e}");
                return ExitCode::from(2);
            }
        };
        interpose::wait_for_termination();
        ip.stop();
        ExitCode::SUCCESS
    }
}
