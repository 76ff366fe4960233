//! `pushrace record [--out FILE] [--tag VAR] [--scenario S] -- CMD…`: runs CMD against a private
//! containerd and registry with every call recorded in the order containerd ran it, and writes
//! the log (`pushrace_scenarios::backend::record`). When CMD fails, the log is the schedule of
//! that failure: it is replayed once on a fresh daemon to check it, and `pushrace replay
//! --from-log FILE --backend real` replays it again. Exit 0 CMD passed, 1 CMD failed (the log is
//! a schedule), 2 bad input or setup.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RecordArgs {
    /// Where to write the log.
    #[arg(long, value_name = "FILE", default_value = "pushrace-record.toml")]
    pub out: String,
    /// The environment variable that names a client's actor (else processes are grouped by
    /// process group).
    #[arg(long, value_name = "VAR", default_value = "PUSHRACE_ACTOR")]
    pub tag: String,
    /// A scenario (built-in name or file) whose images are set up on the daemon first.
    #[arg(long, value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// The limit for the whole command (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Run the first calls in this order (a schedule over the actors of --actors, one step per
    /// call), not in the order they arrive: to record a run under a known interleaving.
    #[arg(long, requires = "actors")]
    pub schedule: Option<String>,
    /// With --schedule: the actors' tags, in the schedule's actor order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub actors: Vec<String>,
    /// Do not replay a failed run to check its log.
    #[arg(long)]
    pub no_verify: bool,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: RecordArgs) -> ExitCode {
    imp::run(a)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    pub fn run(_: super::RecordArgs) -> super::ExitCode {
        eprintln!("pushrace: record: {}", crate::daemon_cmd::NEEDS_FEATURE);
        super::ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use super::*;
    use pushrace_scenarios::backend::real::RealOptions;
    use pushrace_scenarios::backend::record::{self, RecordLog, RecordOptions};

    fn options(a: &RecordArgs) -> Result<RecordOptions, String> {
        let fixture = match &a.scenario {
            Some(s) => Some(pushrace_scenarios::library::load(s).map_err(|e| e.to_string())?),
            None => None,
        };
        let t = pushrace_models::clock::Duration::parse(&a.timeout)
            .map_err(|e| format!("--timeout: {e}"))?;
        if t.0 <= 0 {
            return Err(format!(
                "--timeout {}: expected a positive duration",
                a.timeout
            ));
        }
        if a.tag.is_empty() || a.tag.contains('=') {
            return Err(format!(
                "--tag {:?}: expected an environment variable name",
                a.tag
            ));
        }
        Ok(RecordOptions {
            tag: a.tag.clone(),
            fixture,
            timeout: std::time::Duration::from_nanos(t.0 as u64),
            order: order(a)?,
        })
    }

    /// `--schedule` over `--actors`, as one actor name per call.
    fn order(a: &RecordArgs) -> Result<Vec<String>, String> {
        let Some(text) = &a.schedule else {
            return Ok(Vec::new());
        };
        let s = pushrace_harness::Schedule::parse(text).map_err(|e| format!("--schedule: {e}"))?;
        let name = |i: &usize| {
            a.actors.get(*i).cloned().ok_or_else(|| {
                let n = a.actors.len();
                format!("--schedule {text}: actor {i}, but --actors names {n}")
            })
        };
        s.steps.iter().map(name).collect()
    }

    pub fn run(a: RecordArgs) -> ExitCode {
        let log = options(&a).and_then(|o| record::record(&a.command, &o));
        let (mut log, ran) = match log {
            Ok(r) => (r.log, r.ran),
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        summarise(&log);
        eprintln!("record: the command ran for {} ms", ran.as_millis());
        if log.failed && !a.no_verify {
            verify(&mut log);
        }
        if let Err(e) = std::fs::write(&a.out, log.to_toml()) {
            eprintln!("pushrace: --out {}: {e}", a.out);
            return ExitCode::from(2);
        }
        match log.failed {
            true => {
                eprintln!("record: the command failed; the log {} is its schedule: pushrace replay --from-log {} --backend real", a.out, a.out);
                ExitCode::from(1)
            }
            false => {
                eprintln!(
                    "record: the command passed (log written to {}): no failure to replay",
                    a.out
                );
                ExitCode::SUCCESS
            }
        }
    }

    fn summarise(log: &RecordLog) {
        let calls: usize = log
            .actor
            .iter()
            .map(|a| a.steps.len() - a.commands.len())
            .sum();
        let procs: usize = log.actor.iter().map(|a| a.commands.len()).sum();
        eprintln!(
            "record: `{}` {}; {calls} calls from {procs} processes in {} actors ({})",
            log.command.join(" "),
            log.exit,
            log.actor.len(),
            log.grouping
        );
        for p in &log.problems {
            eprintln!("record: {p}");
        }
    }

    /// Replays the failed run once on a fresh daemon; on success its trace hash goes in the log.
    fn verify(log: &mut RecordLog) {
        match record::replay_log(log, &RealOptions::default()) {
            Ok(r) => {
                match (&r.execution, &r.violation, &r.other_failure) {
                    (Ok(e), Some(v), _) => {
                        eprintln!("record: the log replays on a fresh daemon and fails again: {} (trace {})", v.message, e.trace.hash);
                        log.trace = Some(e.trace.hash.clone());
                    }
                    (Ok(e), None, f) => {
                        let failed = r.results.iter().flatten().find_map(|x| x.as_ref().err());
                        let how = match (failed, f) {
                            (_, Some(f)) => format!("with another failure: {f}"),
                            (Some(err), None) => format!(
                                "and an actor fails again, not against the invariant: {}",
                                err.message
                            ),
                            (None, None) => "and no actor fails".into(),
                        };
                        eprintln!("record: the log replays (trace {}) {how}", e.trace.hash);
                        log.trace = Some(e.trace.hash.clone());
                    }
                    (Err(d), _, _) => eprintln!(
                        "record: DIVERGENCE: the replay did not repeat the recorded calls: {d}"
                    ),
                }
            }
            Err(e) => eprintln!("record: the log could not be replayed: {e}"),
        }
    }
}
