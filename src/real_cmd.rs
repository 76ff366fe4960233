//! The real backend's commands: `pushrace replay SCENARIO --schedule S --backend real
//! [--from-model]` and `pushrace explore SCENARIO --backend real`: the scenario's actors played by
//! their commands (real `ctr`, the Go clients, a user's client) under the schedule or the
//! strategy, through the interposer, each execution on a private containerd and registry; prints
//! what [`pushrace_scenarios::backend::real`] found (the library does the work).

use pushrace_harness::Schedule;
use pushrace_scenarios::explore::Options;
use pushrace_scenarios::scenario::Scenario;
use std::process::ExitCode;

/// The real backend's settings.
#[derive(clap::Args, Clone, Debug)]
pub struct RealArgs {
    /// With --backend real: the private registry's address (default: a free loopback port).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry_addr: Option<String>,
    /// With --backend real: how long a released call may take (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub step_timeout: String,
    /// With --backend real: how long a busy actor may take to make its next call or exit.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub call_timeout: String,
    /// With --backend real: the whole execution's limit.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub timeout: String,
}

pub fn replay(
    s: &Scenario,
    schedule: &Schedule,
    format: &str,
    a: &RealArgs,
    from_model: bool,
) -> ExitCode {
    imp::replay(s, schedule, format, a, from_model)
}

/// `replay --from-log FILE --backend real`.
pub fn replay_log(file: &str, format: &str, a: &RealArgs) -> ExitCode {
    imp::replay_log(file, format, a)
}

/// `replay --from-log FILE` (on the model): the recorded calls as `ops` actors, interleaved as
/// recorded.
pub fn replay_log_on_model(file: &str, format: &str) -> ExitCode {
    imp::replay_log_on_model(file, format)
}

/// `explore --backend real`; `shrink_budget`: real replays spent shrinking a failure.
pub fn explore(
    s: &Scenario,
    o: &Options,
    a: &RealArgs,
    shrink_budget: usize,
    json: bool,
) -> ExitCode {
    imp::explore(s, o, a, shrink_budget, json)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    use super::*;

    fn unavailable(what: &str) -> ExitCode {
        eprintln!(
            "pushrace: {what} --backend real: {}",
            crate::daemon_cmd::NEEDS_FEATURE
        );
        ExitCode::from(2)
    }

    pub fn replay(_: &Scenario, _: &Schedule, _: &str, _: &RealArgs, _: bool) -> ExitCode {
        unavailable("replay")
    }

    pub fn explore(_: &Scenario, _: &Options, _: &RealArgs, _: usize, _: bool) -> ExitCode {
        unavailable("explore")
    }

    pub fn replay_log(_: &str, _: &str, _: &RealArgs) -> ExitCode {
        unavailable("replay --from-log")
    }

    pub fn replay_log_on_model(_: &str, _: &str) -> ExitCode {
        eprintln!(
            "pushrace: replay --from-log: reading a record log: {}",
            crate::daemon_cmd::NEEDS_FEATURE
        );
        ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use super::*;
    use pushrace_scenarios::backend::interposed::Budgets;
    use pushrace_scenarios::backend::real::{self, RealActor, RealOptions, RealReplay};
    use std::time::Duration;

    fn duration(flag: &str, text: &str) -> Result<Duration, String> {
        let d =
            pushrace_models::clock::Duration::parse(text).map_err(|e| format!("--{flag}: {e}"))?;
        match d.0 > 0 {
            true => Ok(Duration::from_nanos(d.0 as u64)),
            false => Err(format!("--{flag}: {text:?}: expected a positive duration")),
        }
    }

    fn options(a: &RealArgs) -> Result<RealOptions, String> {
        Ok(RealOptions {
            lenient: true,
            registry_addr: a.registry_addr.clone(),
            budgets: Budgets {
                step: duration("step-timeout", &a.step_timeout)?,
                wait: duration("call-timeout", &a.call_timeout)?,
                execution: duration("timeout", &a.timeout)?,
            },
            ..RealOptions::default()
        })
    }

    fn ms(d: Duration) -> String {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }

    /// The real options and actors of `s`, or exit 2 naming what is wrong.
    fn prepare(s: &Scenario, a: &RealArgs) -> Result<(RealOptions, Vec<RealActor>), ExitCode> {
        let prepared = options(a).and_then(|o| Ok((o, RealActor::of_scenario(s)?)));
        prepared.map_err(|e| {
            eprintln!("pushrace: {e}");
            ExitCode::from(2)
        })
    }

    fn read_log(file: &str) -> Result<pushrace_scenarios::backend::record::RecordLog, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("--from-log {file}: {e}"))?;
        pushrace_scenarios::backend::record::RecordLog::parse(file, &text)
    }

    pub fn replay_log_on_model(file: &str, format: &str) -> ExitCode {
        use pushrace_scenarios::backend::record::model_scenario;
        let prepared = read_log(file).and_then(|l| model_scenario(&l, file));
        let replayed = prepared.and_then(|(s, schedule)| {
            let r = pushrace_scenarios::explore::replay(&s, &schedule);
            r.map_err(|e| format!("{file}: the recorded calls do not fit the model: {e}"))
        });
        match replayed {
            Ok((trace, failed)) => {
                crate::scenario_cmd::print_trace(&trace, format);
                match failed {
                    Some(f) => {
                        eprintln!("replay (model): {f}");
                        ExitCode::from(1)
                    }
                    None => {
                        eprintln!("replay (model): the recorded calls keep the invariant on the model (trace {})", trace.hash);
                        ExitCode::SUCCESS
                    }
                }
            }
            Err(e) => {
                eprintln!("pushrace: {e}");
                ExitCode::from(2)
            }
        }
    }

    pub fn replay_log(file: &str, format: &str, a: &RealArgs) -> ExitCode {
        use pushrace_scenarios::backend::record::{self, log_scenario};
        let prepared = read_log(file).and_then(|l| Ok((options(a)?, log_scenario(&l)?.0, l)));
        let (o, s, log) = match prepared {
            Ok(x) => x,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        let r = match record::replay_log(&log, &o) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        let hash = r.execution.as_ref().ok().map(|e| e.trace.hash.clone());
        if let (Some(want), Some(got)) = (&log.trace, &hash) {
            match want == got {
                true => eprintln!("from-log: the trace hash is the recorded one ({got})"),
                false => eprintln!("from-log: trace {got}, the log was checked at {want}"),
            }
        }
        report(&s, &r, format)
    }

    pub fn explore(
        s: &Scenario,
        opts: &Options,
        a: &RealArgs,
        shrink: usize,
        json: bool,
    ) -> ExitCode {
        let (mut o, actors) = match prepare(s, a) {
            Ok(x) => x,
            Err(c) => return c,
        };
        o.shrink_budget = shrink;
        let x = match real::explore_real(s, &actors, opts, &o) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        let t = &x.times;
        let per = |d: Duration| ms(d / t.executions.max(1) as u32);
        eprintln!(
            "real: {} executions; each: daemon and registry {}, setup {}, processes and calls {}, teardown {}",
            t.executions, per(t.started), per(t.setup), per(t.run), per(t.teardown)
        );
        for d in &x.disagreements {
            eprintln!("DISAGREEMENT: {d}");
        }
        crate::scenario_cmd::print_verdict(&x.verdict, json)
    }

    pub fn replay(
        s: &Scenario,
        schedule: &Schedule,
        format: &str,
        a: &RealArgs,
        from_model: bool,
    ) -> ExitCode {
        let (o, actors) = match prepare(s, a) {
            Ok(x) => x,
            Err(c) => return c,
        };
        let r = match from_model {
            true => real::replay_from_model(s, &actors, schedule, &o).map(|(r, t)| {
                let names: Vec<String> = s.actors.iter().map(|a| a.name.clone()).collect();
                for line in t.report(&names) {
                    eprintln!("from-model: {line}");
                }
                eprintln!("from-model: translated schedule {}", t.schedule.encode());
                r
            }),
            false => real::replay_real(s, &actors, schedule, &o),
        };
        match r {
            Ok(r) => report(s, &r, format),
            Err(e) => {
                eprintln!("pushrace: {e}");
                ExitCode::from(2)
            }
        }
    }

    /// Prints the trace, each command's exit, the verdict and any disagreement or divergence.
    /// Exit 0 the invariant held, 1 violated, 2 a backend failure or a divergence (no verdict).
    fn report(s: &Scenario, r: &RealReplay, format: &str) -> ExitCode {
        if let Ok(e) = &r.execution {
            crate::scenario_cmd::print_trace(&e.trace, format);
        }
        for (actor, shown, status, stderr) in &r.journal.exits {
            let tail = match stderr.is_empty() {
                true => String::new(),
                false => format!(": {}", stderr.lines().last().unwrap_or_default()),
            };
            eprintln!("real: actor {actor}: `{shown}` {status}{tail}");
        }
        eprintln!(
            "real: daemon and registry started in {}, setup {}, processes and calls {}",
            ms(r.started),
            ms(r.setup),
            ms(r.run)
        );
        for d in &r.journal.disagreements {
            eprintln!("DISAGREEMENT: {d}");
        }
        let e = match &r.execution {
            Ok(e) => e,
            Err(d) => {
                eprintln!("DIVERGENCE: the real actors left the schedule: {d} (no verdict)");
                return ExitCode::from(2);
            }
        };
        match (&r.violation, &r.other_failure) {
            (Some(v), _) => {
                eprintln!("replay (real): VIOLATION of {}: {}", v.invariant, v.message);
                eprintln!("schedule: {} (trace {})", e.schedule.encode(), e.trace.hash);
                ExitCode::from(1)
            }
            (None, Some(f)) => {
                eprintln!("replay (real): NO VERDICT, a backend failure: {f}");
                ExitCode::from(2)
            }
            (None, None) => {
                eprintln!(
                    "replay (real): the invariant held ({} steps, scenario {}, trace {})",
                    e.trace.steps.len(),
                    s.name,
                    e.trace.hash
                );
                ExitCode::SUCCESS
            }
        }
    }
}
