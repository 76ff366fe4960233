//! `pushrace list`, `pushrace explore`, `pushrace replay`.

use pushrace::{Config, Names, Setting};
use pushrace_harness::parallel::default_jobs;
use pushrace_harness::Schedule;
use pushrace_scenarios::explore::{self, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::scenario::Scenario;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Loads a scenario and applies `--variant`; bad input is reported and becomes exit status 2.
fn load(name: &str, variant: Option<&str>) -> Result<Scenario, ExitCode> {
    let s = library::load(name).map_err(|e| {
        eprintln!("pushrace: {e}");
        ExitCode::from(2)
    })?;
    match variant.map(str::parse) {
        None => Ok(s),
        Some(Ok(v)) => Ok(s.with_variant(v)),
        Some(Err(e)) => {
            eprintln!("pushrace: --variant: {e}");
            Err(ExitCode::from(2))
        }
    }
}

pub fn list() -> ExitCode {
    for name in library::names() {
        match library::builtin(name).expect("listed") {
            Ok(s) => {
                let expect = match s.check.expect {
                    Some(pushrace_scenarios::scenario::Expect::Holds) => "holds",
                    Some(pushrace_scenarios::scenario::Expect::Violation) => "violation",
                    None => "-",
                };
                println!("{name:<22} {expect:<10} {}", s.description);
            }
            Err(e) => println!("{name:<22} BROKEN     {e}"),
        }
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub struct ExploreArgs {
    /// A built-in scenario name (see `pushrace list`) or a path to a scenario file.
    pub scenario: String,
    /// dfs (exhaustive within the preemption bound), random, or pct.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Preemption bound for dfs, or `none` for every interleaving (default: the scenario's, else 2).
    #[arg(long, value_name = "N|none")]
    pub preemptions: Option<String>,
    /// Seed for random and pct.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum executions, at least 1 (default: the scenario's, else 1000000 for dfs and 1000
    /// for random and pct). A run stopped by it says NOT exhausted.
    #[arg(long)]
    pub budget: Option<u64>,
    /// Wall-time backstop as a Go duration (default 10m): a run stopped by it says NOT
    /// exhausted. It never changes which schedules are explored.
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
    /// PCT depth, 1 to 16.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Explore only slice K of N (0-based), e.g. 0/4.
    #[arg(long)]
    pub shard: Option<String>,
    /// Threads exploring the shards of this one exploration, 1 to 256 (default: the machine's
    /// cores); the verdict and the failure shown do not depend on it. With --shard K/N they
    /// split that shard.
    #[arg(long, value_name = "N")]
    pub jobs: Option<u64>,
    /// Switch every push to this variant (v0.17, v0.18, v2.0.4, v2.0.5, lease-held).
    #[arg(long)]
    pub variant: Option<String>,
    /// Disable partial-order reduction.
    #[arg(long)]
    pub no_reduction: bool,
    /// Visited-state pruning: explore below each state of the model once (sound with
    /// partial-order reduction; same verdict, fewer executions). Off by default.
    #[arg(long, overrides_with = "no_prune")]
    pub prune: bool,
    /// No visited-state pruning (the default).
    #[arg(long, overrides_with = "prune")]
    pub no_prune: bool,
    /// The pruning table's memory limit in MiB, at least 1 (default: a quarter of the
    /// machine's memory); a full table is reported and prunes less, it never fails the run.
    #[arg(long, value_name = "MIB")]
    pub prune_memory: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// `model` (default); `real`: the actors' commands as real processes, each execution on a
    /// fresh private containerd and registry, each call held until the strategy picks it (a
    /// build with `--features containerd`).
    #[arg(long, value_enum, default_value_t = ExploreBackend::Model)]
    pub backend: ExploreBackend,
    /// With --backend real: real replays spent shrinking a failure found (each a real execution).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REAL_SHRINK_BUDGET)]
    pub shrink_budget: usize,
    #[command(flatten)]
    pub real: crate::real_cmd::RealArgs,
}

/// `--shrink-budget`'s default: about a minute of real executions.
pub const DEFAULT_REAL_SHRINK_BUDGET: usize = 60;

/// Where `pushrace explore` runs its executions.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum ExploreBackend {
    Model,
    Real,
}

pub fn explore(a: ExploreArgs) -> ExitCode {
    let s = match load(&a.scenario, a.variant.as_deref()) {
        Ok(s) => s,
        Err(c) => return c,
    };
    // The flags go through the library's one validating path, as the environment's do.
    let flag = |k: Setting| match k {
        Setting::Strategy => a.strategy.clone(),
        Setting::Preemptions => a.preemptions.clone(),
        Setting::Seed => a.seed.map(|v| v.to_string()),
        Setting::Budget => a.budget.map(|v| v.to_string()),
        Setting::Depth => a.depth.map(|v| v.to_string()),
        Setting::Shard => a.shard.clone(),
        Setting::Jobs => a.jobs.map(|v| v.to_string()),
        Setting::Schedule => None,
    };
    let (mut o, jobs) = match Config::from_settings(flag, Names::Flags) {
        Ok(c) => (c.options(&s), c.threads().unwrap_or_else(default_jobs)),
        Err(e) => {
            eprintln!("pushrace: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = cli_bounds(&a, &mut o) {
        eprintln!("pushrace: {e}");
        return ExitCode::from(2);
    }
    o.reduction = !a.no_reduction;
    if let Err(e) = prune_flags(&a, &mut o) {
        eprintln!("pushrace: {e}");
        return ExitCode::from(2);
    }
    o.progress = std::io::stderr().is_terminal() && !a.json;
    if a.backend == ExploreBackend::Real {
        if o.prune {
            // A real daemon's state cannot be fingerprinted from outside: no pruning there.
            eprintln!("pushrace: --prune: visited-state pruning needs the model's state; --backend real has none to compare");
            return ExitCode::from(2);
        }
        // One execution at a time: each owns a private daemon, registry and interposer, and
        // interposers sharing one process once stalled a client's dial (scenarios/tests/real.rs
        // `ONE_INTERPOSER`); `--shard K/N` in N processes splits a real exploration instead.
        if let Some(j) = a.jobs.filter(|&j| j > 1) {
            eprintln!("pushrace: --jobs {j}: --backend real runs one execution at a time; split it over processes with --shard K/N");
            return ExitCode::from(2);
        }
        return crate::real_cmd::explore(&s, &o, &a.real, a.shrink_budget, a.json);
    }
    let v = pushrace_scenarios::parallel::explore(&s, &o, jobs);
    print_verdict(&v, a.json)
}

/// Prints a verdict (text, or one JSON object); exit 0 it holds, 1 violated (or, on the model,
/// another failure of a program: a deadlock, a step budget), 2 on real processes a failure that
/// is no verdict on the invariant (a backend failure, a divergence).
pub fn print_verdict(v: &explore::Verdict, json: bool) -> ExitCode {
    match json {
        true => println!(
            "{}",
            serde_json::to_string_pretty(&v.to_json()).expect("JSON")
        ),
        false => print!("{}", v.to_text()),
    }
    let real = v.ran_on == explore::RanOn::Real;
    match (v.holds(), &v.violation) {
        (true, _) => ExitCode::SUCCESS,
        (false, None) if real => ExitCode::from(2),
        (false, _) => ExitCode::from(1),
    }
}

/// `--prune`, `--no-prune` (the later one wins) and `--prune-memory MIB`.
fn prune_flags(a: &ExploreArgs, o: &mut Options) -> Result<(), String> {
    o.prune = a.prune && !a.no_prune;
    if let Some(v) = &a.prune_memory {
        let mib = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&m| (1..=1 << 40).contains(&m))
            .ok_or_else(|| format!("--prune-memory {v:?}: expected MiB, 1 to {}", 1u64 << 40))?;
        o.prune_memory = Some(mib << 20);
    }
    Ok(())
}

/// DFS's execution budget when neither `--budget` nor the scenario sets one: a search that
/// would run for hours stops and says NOT exhausted (counted in executions, so a verdict does not
/// depend on the machine's speed).
pub const DEFAULT_DFS_BUDGET: u64 = 1_000_000;

/// The wall-time backstop when `--max-time` is not given.
pub const DEFAULT_MAX_TIME: &str = "10m";

/// What only the command line adds: DFS's default execution budget and the wall-time backstop.
fn cli_bounds(a: &ExploreArgs, o: &mut Options) -> Result<(), String> {
    if a.budget.is_none() && o.strategy == pushrace_harness::Strategy::Dfs {
        o.budget = Some(o.budget.unwrap_or(DEFAULT_DFS_BUDGET));
    }
    let t = a.max_time.as_deref().unwrap_or(DEFAULT_MAX_TIME);
    let d = pushrace_models::clock::Duration::parse(t).map_err(|e| format!("--max-time: {e}"))?;
    if d.0 <= 0 {
        return Err(format!("--max-time {t}: expected a positive duration"));
    }
    o.max_time = Some(std::time::Duration::from_nanos(d.0 as u64));
    Ok(())
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A built-in scenario name or a path to a scenario file.
    #[arg(required_unless_present = "from_log")]
    pub scenario: Option<String>,
    /// The schedule printed by `pushrace explore`.
    #[arg(long, required_unless_present = "from_log")]
    pub schedule: Option<String>,
    /// With --backend real: replay the log `pushrace record` wrote (its actors, commands and
    /// schedule) instead of a scenario and schedule.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "schedule", "from_model"])]
    pub from_log: Option<String>,
    /// text, json or mermaid.
    #[arg(long, default_value = "text")]
    pub trace: String,
    /// Switch every push to this variant before replaying.
    #[arg(long)]
    pub variant: Option<String>,
    /// `model` (default); `containerd`: the model's programs against a real daemon, one gRPC call
    /// per step in the schedule's order; `real`: the actors' commands as real processes, each call
    /// held until the schedule picks it (both a build with `--features containerd`).
    #[arg(long, value_enum, default_value_t = ReplayBackend::Model)]
    pub backend: ReplayBackend,
    /// With --backend containerd: the socket of a running containerd (default: a fresh private daemon).
    #[arg(long, value_name = "SOCK")]
    pub address: Option<String>,
    /// With --backend real: the schedule is the model's (as `pushrace explore` prints it for this
    /// scenario); translate it call by call to the real actors and list every call without a
    /// partner on the other side.
    #[arg(long)]
    pub from_model: bool,
    #[command(flatten)]
    pub real: crate::real_cmd::RealArgs,
}

/// Where `pushrace replay` runs a schedule.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum ReplayBackend {
    Model,
    Containerd,
    Real,
}

pub fn replay(a: ReplayArgs) -> ExitCode {
    if let Some(log) = &a.from_log {
        return match a.backend {
            ReplayBackend::Real => crate::real_cmd::replay_log(log, &a.trace, &a.real),
            ReplayBackend::Model => crate::real_cmd::replay_log_on_model(log, &a.trace),
            ReplayBackend::Containerd => {
                eprintln!("pushrace: --from-log {log}: a recorded log replays on --backend real (its processes) or model (its calls as ops actors)");
                ExitCode::from(2)
            }
        };
    }
    let (scenario, schedule) = (a.scenario.as_deref(), a.schedule.as_deref());
    let s = match load(scenario.unwrap_or_default(), a.variant.as_deref()) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let schedule = match Schedule::parse(schedule.unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("pushrace: --schedule: {e}");
            return ExitCode::from(2);
        }
    };
    if !["text", "json", "mermaid"].contains(&a.trace.as_str()) {
        eprintln!(
            "pushrace: --trace: {:?}: expected text, json or mermaid",
            a.trace
        );
        return ExitCode::from(2);
    }
    match a.backend {
        ReplayBackend::Containerd => {
            return crate::replay_daemon::replay(&s, &schedule, &a.trace, a.address.as_deref())
        }
        ReplayBackend::Real => {
            return crate::real_cmd::replay(&s, &schedule, &a.trace, &a.real, a.from_model)
        }
        ReplayBackend::Model => {}
    }
    if let Some(a) = s.actors.iter().find(|a| {
        matches!(
            a.program,
            pushrace_scenarios::scenario::ProgramSpec::Commands { .. }
        )
    }) {
        eprintln!("pushrace: actor {} of scenario {} has only commands, no model program: replay it with --backend real", a.name, s.name);
        return ExitCode::from(2);
    }
    let (trace, failed) = match explore::replay(&s, &schedule) {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "pushrace: the schedule does not fit scenario {}: {e}",
                s.name
            );
            return ExitCode::from(2);
        }
    };
    print_trace(&trace, &a.trace);
    match failed {
        Some(f) => {
            eprintln!("replay: {f}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// Prints a trace in the `--trace` format (`text`, `json` or `mermaid`; checked by the caller).
pub fn print_trace(trace: &pushrace_harness::Trace, format: &str) {
    match format {
        "json" => println!("{}", trace.to_json()),
        "mermaid" => println!("{}", trace.to_mermaid()),
        _ => print!("{}", trace.to_text()),
    }
}
