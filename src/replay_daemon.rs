//! `pushrace replay SCENARIO --schedule S --backend containerd [--address SOCK]`: prints what
//! [`pushrace_scenarios::backend::daemon::replay`] found (the library does the work).

use pushrace_harness::Schedule;
use pushrace_scenarios::scenario::Scenario;
use std::process::ExitCode;

/// Replays `schedule` of `s` on a real containerd and prints the trace (`text`, `json` or
/// `mermaid`) and both verdicts. Exit 0: the invariant held, 1: it was violated, 2: setup failed,
/// or the daemon's programs left the schedule (diverged).
pub fn replay(s: &Scenario, schedule: &Schedule, format: &str, address: Option<&str>) -> ExitCode {
    imp::replay(s, schedule, format, address)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    use super::*;

    pub fn replay(_: &Scenario, _: &Schedule, _: &str, _: Option<&str>) -> ExitCode {
        eprintln!(
            "pushrace: replay --backend containerd: {}",
            crate::daemon_cmd::NEEDS_FEATURE
        );
        ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use super::*;
    use pushrace_scenarios::backend::daemon::{self, DaemonReplay};
    use pushrace_scenarios::explore::Violation;
    use std::time::Duration;

    fn ms(d: Duration) -> String {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }

    fn judgement(v: &Option<Violation>, other: &Option<String>) -> String {
        match (v, other) {
            (Some(v), _) => format!("VIOLATION of {}: {}", v.invariant, v.message),
            (None, Some(f)) => format!("FAILURE (not the scenario's invariant): {f}"),
            (None, None) => "the invariant held".to_string(),
        }
    }

    fn print_actors(s: &Scenario, r: &DaemonReplay) {
        for (a, res) in s.actors.iter().zip(&r.results) {
            match res {
                Some(Ok(())) => eprintln!("daemon: actor {}: ok", a.name),
                Some(Err(err)) => eprintln!("daemon: actor {}: error: {}", a.name, err.message),
                None => eprintln!("daemon: actor {}: did not finish", a.name),
            }
        }
    }

    pub fn replay(
        s: &Scenario,
        schedule: &Schedule,
        format: &str,
        address: Option<&str>,
    ) -> ExitCode {
        let r = match daemon::replay(s, schedule, address) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        let model = judgement(&r.model_violation, &None);
        let code = match &r.execution {
            Ok(e) => {
                crate::scenario_cmd::print_trace(&e.trace, format);
                eprintln!(
                    "daemon: containerd {} ({}): started in {}, setup {}, replay of {} steps ({} calls, {} background GCs) in {}",
                    r.version, r.location, ms(r.started), ms(r.setup), e.trace.steps.len(), r.calls, r.gcs, ms(r.replay)
                );
                print_actors(s, &r);
                eprintln!(
                    "replay (containerd): {}",
                    judgement(&r.violation, &r.other_failure)
                );
                eprintln!("replay (model):      {model}");
                if e.trace.hash == r.model_trace.hash {
                    eprintln!(
                        "agreement: same {} steps and verdict as the model (trace {})",
                        e.trace.steps.len(),
                        e.trace.hash
                    );
                } else {
                    eprintln!(
                        "DISAGREEMENT: the daemon's trace {} differs from the model's {}",
                        e.trace.hash, r.model_trace.hash
                    );
                }
                // A violation or another failure (a deadlock, say): the replay did not pass.
                ExitCode::from(u8::from(r.violation.is_some() || r.other_failure.is_some()))
            }
            Err(d) => {
                eprintln!(
                    "DISAGREEMENT: on containerd {} the programs left the schedule: {d} (the model ran it: {model})",
                    r.version
                );
                ExitCode::from(2)
            }
        };
        if r.disagreements.is_empty() {
            let states = match r.private {
                true => "; same state after setup and at the end",
                false => " (states not compared on a shared daemon)",
            };
            eprintln!("agreement: every call gave the model's result (ok, or the same error text){states}");
        }
        for d in &r.disagreements {
            eprintln!("DISAGREEMENT: {d}");
        }
        for v in &r.clock_violations {
            eprintln!("pushrace: warning: the virtual clock mapping did not hold: {v}");
        }
        code
    }
}
