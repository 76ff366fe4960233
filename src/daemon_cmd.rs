//! The real-containerd side of the CLI: `pushrace apply OPS.toml --backend containerd [--address SOCK]`
//! and `pushrace diff OPS.toml` (model vs a fresh private containerd, exit 1 on any difference).
//! Both need a build with the cargo feature `containerd`; without it they exit 2 saying so.

use pushrace_models::opsfile::OpsFile;
use std::process::ExitCode;

/// Where `pushrace apply` runs the operations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, clap::ValueEnum)]
pub enum Backend {
    /// The embedded model (no daemon needed).
    #[default]
    Model,
    /// A real containerd over gRPC (a build with `--features containerd`).
    Containerd,
}

/// Options of the containerd backend.
#[derive(clap::Args, Clone, Debug)]
pub struct DaemonArgs {
    /// `model` (default) or `containerd`.
    #[arg(long, value_enum, default_value_t = Backend::Model)]
    pub backend: Backend,
    /// With --backend containerd: the socket of a running containerd (default: start a fresh private
    /// daemon, apply, dump, stop it). Its existing state shows up in the dump.
    #[arg(long, value_name = "SOCK")]
    pub address: Option<String>,
    /// With --address: that daemon's root dir, whose blob files make the dump's `blobs`.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/containerd")]
    pub root: String,
    /// Real milliseconds per virtual hour (`clock.advance` sleeps, `gc.expire` is mapped; see README).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub hour_ms: u64,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The operations file (`-` for stdin).
    pub file: String,
    /// Real milliseconds per virtual hour (`clock.advance` sleeps, `gc.expire` is mapped; see README).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub hour_ms: u64,
}

#[cfg_attr(feature = "containerd", allow(dead_code))]
pub const NEEDS_FEATURE: &str =
    "the containerd backend is not in this build: rebuild with `cargo build --features containerd` \
     (needs protoc; `ci/run` installs it and containerd)";

fn parse(file: &str) -> Result<OpsFile, ExitCode> {
    let text = crate::read_input(file)?;
    pushrace_models::opsfile::parse(file, &text).map_err(|e| {
        eprintln!("pushrace: {e}");
        ExitCode::from(2)
    })
}

/// `pushrace apply … --backend containerd`.
pub fn apply(file: &str, json: bool, d: &DaemonArgs) -> ExitCode {
    let ops = match parse(file) {
        Ok(o) => o,
        Err(c) => return c,
    };
    imp::apply(&ops, json, d)
}

/// `pushrace diff OPS.toml`.
pub fn diff(args: DiffArgs) -> ExitCode {
    let ops = match parse(&args.file) {
        Ok(o) => o,
        Err(c) => return c,
    };
    imp::diff(&ops, args.hour_ms)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    use super::*;

    pub fn apply(_: &OpsFile, _: bool, _: &DaemonArgs) -> ExitCode {
        eprintln!("pushrace: {NEEDS_FEATURE}");
        ExitCode::from(2)
    }

    pub fn diff(_: &OpsFile, _: u64) -> ExitCode {
        eprintln!("pushrace: diff runs a real containerd: {NEEDS_FEATURE}");
        ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use super::*;
    use pushrace_daemon::{run_on_fresh_daemon, DaemonBackend, DaemonClient};
    use pushrace_models::opsfile::{self, EntryResult};
    use pushrace_models::state::State;
    use pushrace_models::Semantics;
    use std::path::PathBuf;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    struct Run {
        results: Vec<EntryResult>,
        state: State,
        violations: Vec<String>,
    }

    /// Runs `ops` on `b` and dumps the state.
    async fn run_on(b: &mut DaemonBackend<'_>, ops: &OpsFile) -> Result<Run, String> {
        let results = b.run(ops).await;
        let state = b
            .state()
            .await
            .map_err(|e| format!("dumping the daemon's state: {e}"))?;
        Ok(Run {
            results,
            state,
            violations: b.clock.violations().to_vec(),
        })
    }

    /// A fresh private daemon per attempt, until the clock mapping holds (at most 16× slower).
    fn run_private(ops: &OpsFile, hour_ms: u64) -> Result<Run, String> {
        let rt = runtime();
        let run = run_on_fresh_daemon(
            &rt,
            Duration::from_millis(hour_ms.max(1)),
            |b| {
                rt.block_on(async {
                    check_version(b.client, ops).await;
                    run_on(b, ops).await
                })
            },
            |scale, violations| {
                eprintln!(
                    "pushrace: the virtual clock mapping did not hold at {} ms per virtual hour ({}); retrying slower",
                    scale.as_millis(),
                    violations.join("; ")
                )
            },
        )?;
        Ok(run.value)
    }

    async fn check_version(client: &DaemonClient, ops: &OpsFile) {
        let v = client.version().await.unwrap_or_default();
        if ops.semantics == Semantics::V2_0 || !v.starts_with("1.") {
            eprintln!(
                "pushrace: note: the ops file asks for containerd {} semantics and the daemon is {v}; \
                 rules that differ between them will show as differences",
                ops.semantics
            );
        }
    }

    fn print(ops: &OpsFile, json: bool, run: &Run) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&opsfile::to_json(&run.results, &run.state))
                    .expect("JSON")
            );
        } else {
            print!("{}", opsfile::to_text(ops, &run.results, &run.state));
        }
        for v in &run.violations {
            eprintln!("pushrace: warning: the virtual clock mapping did not hold: {v}");
        }
    }

    pub fn apply(ops: &OpsFile, json: bool, d: &DaemonArgs) -> ExitCode {
        let run = match &d.address {
            None => run_private(ops, d.hour_ms),
            Some(sock) => runtime().block_on(async {
                let client = DaemonClient::connect(sock.as_str(), Some(PathBuf::from(&d.root)))
                    .await
                    .map_err(|e| format!("{e}"))?;
                check_version(&client, ops).await;
                let mut b = DaemonBackend::new(&client, Duration::from_millis(d.hour_ms.max(1)));
                run_on(&mut b, ops).await
            }),
        };
        match run {
            Ok(run) => {
                print(ops, json, &run);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pushrace: {e}");
                ExitCode::from(2)
            }
        }
    }

    pub fn diff(ops: &OpsFile, hour_ms: u64) -> ExitCode {
        let (store, model) = ops.run();
        let run = match run_private(ops, hour_ms) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        if !run.violations.is_empty() {
            let last = hour_ms * *pushrace_daemon::RERUN_FACTORS.last().unwrap() as u64;
            eprintln!(
                "pushrace: the virtual clock mapping did not hold even at {last} ms per virtual hour: {}",
                run.violations.join("; ")
            );
            return ExitCode::from(2);
        }
        let mut lines = pushrace_daemon::diff::diff_results(&model, &run.results, |i| {
            ops.entries[i].action.to_string()
        });
        let results_differ = lines.len();
        lines.extend(pushrace_daemon::diff::diff_states(
            &store.state(),
            &run.state,
        ));
        if lines.is_empty() {
            println!(
                "no differences: {} operation(s), same results and same final state (containerd {} semantics)",
                ops.entries.len(),
                ops.semantics
            );
            return ExitCode::SUCCESS;
        }
        println!(
            "{} difference(s) between the model and containerd ({} in results, {} in the final state):",
            lines.len(),
            results_differ,
            lines.len() - results_differ
        );
        for l in lines {
            println!("  {l}");
        }
        ExitCode::from(1)
    }
}
