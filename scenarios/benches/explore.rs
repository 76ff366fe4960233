//! The headline same-ref race under pushrace's strategies and under loom, on the same client
//! programs: executions and wall time to the first violation, executions per second, and the
//! executions needed to exhaust the lease-held fix at preemption bounds 2 and 3, with and without
//! partial-order reduction. shuttle runs the same programs too (random and PCT to the first
//! violation, random and DFS for executions per second). Run:
//! `cargo bench -p pushrace-scenarios --bench explore`.

#[path = "../tests/common/loom_client.rs"]
mod loom_client;
#[path = "../tests/common/shuttle_client.rs"]
mod shuttle_client;

use shuttle::scheduler::{DfsScheduler, PctScheduler, RandomScheduler};

use pushrace_harness::Strategy as StrategyKind;
use pushrace_scenarios::explore::{explore, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use pushrace_scenarios::scenario::Scenario;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn scenario(v: Variant) -> Scenario {
    library::builtin("same-ref")
        .unwrap()
        .unwrap()
        .with_variant(v)
}

fn opts(s: &Scenario, strategy: StrategyKind, preemptions: usize, reduction: bool) -> Options {
    let mut o = Options::for_scenario(s);
    o.strategy = strategy;
    o.preemptions = Some(preemptions);
    o.reduction = reduction;
    o
}

static LOOM_RUNS: AtomicU64 = AtomicU64::new(0);

/// The text of a panic's payload (`panic!` with a format gives a `String`, a literal a `&str`).
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Whether an anchor's failure is the violation pushrace found: its panic must carry the
/// violation's text (`content digest sha256:…: not found`), so that a deadlock, a step bound or
/// any other panic of loom's or shuttle's is not counted as finding it.
fn is_the_violation(failure: Option<&str>, violation: &str) -> bool {
    failure.is_some_and(|f| f.contains(violation))
}

/// shuttle installs a panic hook that prints every failing schedule at its first execution, once
/// per process. Run one empty execution so that it is installed, then replace it with a silent
/// hook: what a run found is judged from its panic payload, not from what was printed.
fn silence_anchor_failure_printing() {
    shuttle::check_random(|| {}, 1);
    std::panic::set_hook(Box::new(|_| {}));
}

/// The anchors' own failure printing goes here (shuttle prints each failing schedule and seed with
/// `eprintln!` whatever its configuration: about 400 lines a run of this benchmark).
const ANCHOR_LOG: &str = "pushrace-bench-anchors.log";

/// Runs `f` with stderr (fd 2) pointed at [`ANCHOR_LOG`], then restores it.
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    use std::os::fd::AsRawFd;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(ANCHOR_LOG))
        .expect("anchor log");
    // SAFETY: plain descriptor calls on fds this process owns; 2 is restored before returning.
    let saved = unsafe { libc::dup(2) };
    assert!(saved >= 0, "dup(2)");
    unsafe { libc::dup2(log.as_raw_fd(), 2) };
    let r = f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    r
}

/// loom on the same programs; returns (executions, seconds, found `violation`).
fn loom_run(s: &Scenario, bound: usize, violation: &str) -> (u64, f64, bool) {
    LOOM_RUNS.store(0, Ordering::SeqCst);
    let t = Instant::now();
    let r = quietly(|| {
        std::panic::catch_unwind(|| loom_client::check_scenario_counting(s, bound, &LOOM_RUNS))
    });
    let failure = r.err().map(|p| panic_text(&*p));
    let found = is_the_violation(failure.as_deref(), violation);
    (
        LOOM_RUNS.load(Ordering::SeqCst),
        t.elapsed().as_secs_f64(),
        found,
    )
}

fn main() {
    silence_anchor_failure_printing();
    let bad = scenario(Variant::V0_18);
    // What loom and shuttle must report to count as finding it: the message pushrace found.
    let mut first = opts(&bad, StrategyKind::Dfs, 2, true);
    first.shrink = false;
    let violation = explore(&bad, &first)
        .violation
        .expect("same-ref v0.18 fails")
        .message;
    println!("same-ref v0.18 (#855): first violation");
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>14}",
        "strategy", "executions", "ms to find", "ms+shrink", "executions/s"
    );
    for (name, strategy, seeds) in [
        ("dfs (bound 2, DPOR)", StrategyKind::Dfs, 1u64),
        ("random (mean of 20 seeds)", StrategyKind::Random, 20),
        ("pct d=3 (mean of 20 seeds)", StrategyKind::Pct, 20),
    ] {
        let (mut execs, mut ms, mut ms_found) = (0u64, 0f64, 0f64);
        for seed in 0..seeds {
            let mut o = opts(&bad, strategy, 2, true);
            o.seed = seed;
            o.budget = Some(100_000);
            let t = Instant::now();
            let v = explore(&bad, &o);
            ms += t.elapsed().as_secs_f64() * 1e3;
            assert!(
                v.violation.is_some(),
                "{name} seed {seed} found no violation"
            );
            // Executions until the failure: the report stops at the first failure.
            execs += v.report.executions;
            o.shrink = false;
            let t = Instant::now();
            assert!(explore(&bad, &o).violation.is_some());
            ms_found += t.elapsed().as_secs_f64() * 1e3;
        }
        let n = seeds as f64;
        let (e, m, f) = (execs as f64 / n, ms / n, ms_found / n);
        println!(
            "{name:<28} {e:>12.1} {f:>12.2} {m:>12.2} {:>14.0}",
            e / (f / 1e3)
        );
    }
    let (e, secs, found) = loom_run(&bad, 1, &violation);
    println!(
        "{:<28} {:>12} {:>12.2} {:>12} {:>14.0}   (found: {found})",
        "loom (bound 1)",
        e,
        secs * 1e3,
        "-",
        e as f64 / secs
    );
    for (name, pct) in [
        ("shuttle random (20 seeds)", false),
        ("shuttle pct d=3 (20 seeds)", true),
    ] {
        let (mut execs, mut ms, mut found) = (0u64, 0f64, 0);
        for seed in 0..20u64 {
            let t = Instant::now();
            let (e, failure) = quietly(|| match pct {
                true => shuttle_client::check_scenario(
                    &bad,
                    PctScheduler::new_from_seed(seed, 3, 100_000),
                ),
                false => shuttle_client::check_scenario(
                    &bad,
                    RandomScheduler::new_from_seed(seed, 100_000),
                ),
            });
            ms += t.elapsed().as_secs_f64() * 1e3;
            execs += e;
            found += is_the_violation(failure.as_deref(), &violation) as u32;
        }
        let (e, m) = (execs as f64 / 20.0, ms / 20.0);
        println!(
            "{name:<28} {e:>12.1} {m:>12.2} {:>12} {:>14.0}   (found: {found}/20)",
            "-",
            e / (m / 1e3)
        );
    }

    println!("\nlease-held (the fix): executions to exhaust the bounded space");
    println!(
        "{:<34} {:>12} {:>12} {:>14}",
        "explorer", "executions", "wall ms", "executions/s"
    );
    let good = scenario(Variant::LeaseHeld);
    let mut rates = Vec::new();
    for (bound, reduction) in [(1, true), (1, false), (2, true), (2, false), (3, true)] {
        let o = opts(&good, StrategyKind::Dfs, bound, reduction);
        let t = Instant::now();
        let v = explore(&good, &o);
        let secs = t.elapsed().as_secs_f64();
        assert!(v.holds() && v.report.exhausted);
        let rate = v.report.executions as f64 / secs;
        if bound == 1 && !reduction {
            rates.push(rate);
        }
        let label = format!(
            "pushrace dfs bound {bound} {}",
            if reduction { "DPOR" } else { "no reduction" }
        );
        println!(
            "{label:<34} {:>12} {:>12.1} {:>14.0}",
            v.report.executions,
            secs * 1e3,
            rate
        );
    }
    let (e, secs, found) = loom_run(&good, 1, &violation);
    assert!(!found);
    let loom_rate = e as f64 / secs;
    println!(
        "{:<34} {:>12} {:>12.1} {:>14.0}",
        "loom bound 1",
        e,
        secs * 1e3,
        loom_rate
    );
    let mut shuttle_rates = Vec::new();
    for (name, dfs) in [("shuttle random", false), ("shuttle dfs (no bound)", true)] {
        let t = Instant::now();
        let (e, failure) = quietly(|| match dfs {
            true => shuttle_client::check_scenario(&good, DfsScheduler::new(Some(5_000), false)),
            false => {
                shuttle_client::check_scenario(&good, RandomScheduler::new_from_seed(1, 5_000))
            }
        });
        let secs = t.elapsed().as_secs_f64();
        assert!(failure.is_none(), "{name}: {failure:?}");
        shuttle_rates.push(e as f64 / secs);
        println!(
            "{:<34} {:>12} {:>12.1} {:>14.0}",
            format!("{name}, {e} schedules"),
            e,
            secs * 1e3,
            e as f64 / secs
        );
    }
    println!(
        "\n(loom's and shuttle's own failure output: {})",
        std::env::temp_dir().join(ANCHOR_LOG).display()
    );
    println!(
        "executions/s, pushrace dfs (no reduction) / loom, bound 1: {:.1}x",
        rates[0] / loom_rate
    );
    println!(
        "executions/s, pushrace dfs (no reduction) / shuttle random: {:.1}x, / shuttle dfs: {:.1}x",
        rates[0] / shuttle_rates[0],
        rates[0] / shuttle_rates[1]
    );
    if std::env::var_os("PUSHRACE_BENCH_LOOM2").is_some() {
        // Opt-in: loom at bound 2 on the same programs takes minutes.
        let (e, secs, _) = loom_run(&good, 2, &violation);
        println!(
            "{:<34} {:>12} {:>12.1} {:>14.0}",
            "loom bound 2",
            e,
            secs * 1e3,
            e as f64 / secs
        );
    }
}
