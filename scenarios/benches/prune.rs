//! Visited-state pruning on the corpus: for each built-in scenario (and, for the neighbour mixes,
//! their lease-held fix), DFS with no preemption bound and at bounds 2, 3 and 6, without and with
//! pruning, each in one thread and in `PUSHRACE_BENCH_JOBS` threads (default 2; `--jobs`, the
//! shards of one exploration): the verdict, whether the space was exhausted, executions,
//! executions cut at a visited state, distinct states (in the one table the threads share), wall
//! time and the process's peak memory so far (`VmHWM`). Run:
//! `cargo bench -p pushrace-scenarios --bench prune [-- NAME...]` (names: built-ins, optionally
//! `NAME@lease-held`). Each run stops at `PUSHRACE_BENCH_MAX_SECS` (default 60) and then says
//! NOT exhausted: the goal is every built-in exhausted with no bound in 10 s.

use pushrace_scenarios::explore::Options;
use pushrace_scenarios::library;
use pushrace_scenarios::parallel::explore;
use pushrace_scenarios::programs::push::Variant;
use pushrace_scenarios::scenario::Scenario;
use std::time::Duration;

/// The neighbour mixes whose fix is measured too (`--variant lease-held`).
const MIXES: [&str; 4] = ["background-gc", "pull-race", "rmi-other", "lazy-pull"];

fn cases(args: &[String]) -> Vec<(String, Scenario)> {
    let load = |name: &str| library::builtin(name)?.ok();
    let mut out = Vec::new();
    let names: Vec<String> = match args.is_empty() {
        true => library::names().iter().map(|s| s.to_string()).collect(),
        false => args.to_vec(),
    };
    for name in names {
        let (base, fix) = match name.split_once('@') {
            Some((b, v)) => (
                b.to_string(),
                Some(v.parse::<Variant>().expect("a variant")),
            ),
            None => (name.clone(), None),
        };
        let Some(s) = load(&base) else {
            eprintln!("no built-in {base}");
            continue;
        };
        match fix {
            Some(v) => out.push((name.clone(), s.with_variant(v))),
            None => {
                if args.is_empty() && MIXES.contains(&base.as_str()) {
                    out.push((
                        format!("{base}@lease-held"),
                        s.with_variant(Variant::LeaseHeld),
                    ));
                }
                out.push((name, s));
            }
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let max = std::env::var("PUSHRACE_BENCH_MAX_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60u64);
    let jobs = std::env::var("PUSHRACE_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2u32);
    println!(
        "{:<34} {:>5} {:>5} {:>4} {:<9} {:>9} {:>9} {:>9} {:>10} {:>8}",
        "scenario",
        "bound",
        "prune",
        "jobs",
        "verdict",
        "execs",
        "cut",
        "states",
        "wall",
        "peak MiB"
    );
    let mut runs = vec![(false, 1), (false, jobs), (true, 1), (true, jobs)];
    runs.dedup(); // PUSHRACE_BENCH_JOBS=1
    for (name, s) in cases(&args) {
        for bound in [None, Some(2), Some(3), Some(6)] {
            for &(prune, jobs) in &runs {
                let mut o = Options::for_scenario(&s);
                o.preemptions = bound;
                o.prune = prune;
                o.shrink = false;
                o.max_time = Some(Duration::from_secs(max));
                let v = explore(&s, &o, jobs);
                let r = &v.report;
                let verdict = match (v.holds(), r.exhausted) {
                    (false, _) => "violation",
                    (true, true) => "holds",
                    (true, false) => "NOT exh.",
                };
                println!(
                    "{:<34} {:>5} {:>5} {:>4} {:<9} {:>9} {:>9} {:>9} {:>9.2}s {:>8.1}",
                    name,
                    bound.map_or("none".to_string(), |b| b.to_string()),
                    if prune { "on" } else { "off" },
                    jobs,
                    verdict,
                    r.executions,
                    r.revisits,
                    r.states,
                    r.elapsed.as_secs_f64(),
                    r.peak_memory.unwrap_or(0) as f64 / (1u64 << 20) as f64,
                );
                if let Some(m) = r.prune_full_message() {
                    println!("  {m}");
                }
            }
        }
    }
}
