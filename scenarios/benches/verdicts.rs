//! The verdict table, model against real (feature `containerd`): for each built-in whose actors
//! are Go clients (nerdctl's push path on containerd 1.6.20's library) and each push variant, the
//! model's verdict, and the real one:
//! - where the model finds a violation, its shrunk schedule translated call by call to the Go
//!   clients and replayed on a fresh daemon (`replay_from_model`): real agrees when it fails the
//!   invariant;
//! - where the model holds, a DFS over the real processes at preemption bound
//!   `PUSHRACE_REAL_BOUND` (default 1: at bound 2 one real cell takes more than 10 minutes, see
//!   the docs): real agrees when it is exhausted with no violation.
//!
//! Then `PUSHRACE_LEASE_BOUND` (default 2; `0` skips it): the lease-held variant of both
//! built-ins, and push-pull-rmi-go (a lease-held push, a pull, an rmi), explored on real
//! processes to exhaustion at that bound (each cell stopped after
//! `PUSHRACE_REAL_MINUTES`, default 60: push-pull-rmi-go takes about 40, and then said NOT exhausted); `PUSHRACE_VERDICT_TABLE=0`
//! skips the table and runs only those cells. Figures only: nothing here
//! passes or fails. Run: `cargo bench -p pushrace-scenarios --features containerd --bench verdicts`.

use pushrace_scenarios::backend::real::{explore_real, replay_from_model, RealActor, RealOptions};
use pushrace_scenarios::explore::{self, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use std::time::Instant;

const SCENARIOS: [&str; 2] = ["same-ref-go", "two-tags-go"];
/// Built-ins whose push is lease-held already, with other Go-client actors racing it (a pull, an
/// rmi): explored as they are in the lease-held cells.
const LEASE_HELD_MIXES: [&str; 1] = ["push-pull-rmi-go"];

fn bound_or(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The real verdict of a cell whose model verdict holds: a DFS at `bound` over real processes.
fn real_holds(s: &pushrace_scenarios::scenario::Scenario, bound: usize) -> (String, bool) {
    let actors = RealActor::of_scenario(s).expect("Go-client actors");
    // A wall-time backstop (`PUSHRACE_REAL_MINUTES`, default 60): a cell past it says NOT
    // exhausted rather than running on.
    let minutes = bound_or("PUSHRACE_REAL_MINUTES", 60) as u64;
    let opts = Options {
        preemptions: Some(bound),
        max_time: Some(std::time::Duration::from_secs(60 * minutes)),
        ..Options::for_scenario(s)
    };
    let t = Instant::now();
    let x = explore_real(s, &actors, &opts, &RealOptions::default()).expect("runs");
    let v = &x.verdict;
    let text = match (&v.violation, &v.other_failure) {
        (Some(f), _) => format!("VIOLATION: {}", f.message),
        (None, Some(f)) => format!("no verdict: {f}"),
        (None, None) => v.no_violation_line(),
    };
    let n = v.report.executions;
    let text = format!(
        "{text} ({n} real executions, {:.0} s, {} disagreements)",
        t.elapsed().as_secs_f64(),
        x.disagreements.len()
    );
    (text, v.proved())
}

/// The real verdict of a cell whose model verdict is a violation: its schedule on real clients.
fn real_violates(
    s: &pushrace_scenarios::scenario::Scenario,
    v: &explore::Verdict,
) -> (String, bool) {
    let actors = RealActor::of_scenario(s).expect("Go-client actors");
    let schedule = &v.violation.as_ref().expect("a violation").schedule;
    match replay_from_model(s, &actors, schedule, &RealOptions::default()) {
        Ok((r, _)) => match (&r.execution, &r.violation) {
            (Ok(e), Some(f)) => (
                format!("VIOLATION: {} (trace {})", f.message, e.trace.hash),
                true,
            ),
            (Ok(_), None) => (
                format!("held under the model's schedule ({:?})", r.other_failure),
                false,
            ),
            (Err(d), _) => (format!("divergence: {d}"), false),
        },
        Err(e) => (format!("error: {e}"), false),
    }
}

fn main() {
    if bound_or("PUSHRACE_VERDICT_TABLE", 1) != 0 {
        table();
    }
    lease_held_cells();
}

/// Every Go-client built-in and variant, model against real.
fn table() {
    let real_bound = bound_or("PUSHRACE_REAL_BOUND", 1);
    let (mut cells, mut agree) = (0, 0);
    println!("scenario      variant     model                                      real");
    for name in SCENARIOS {
        for variant in Variant::ALL {
            let s = library::load(name).expect("built-in").with_variant(variant);
            let mv = explore::explore(&s, &Options::for_scenario(&s));
            let model = match &mv.violation {
                Some(_) => "violation".to_string(),
                None => format!("holds at bound 2 ({} executions)", mv.report.executions),
            };
            let (real, same) = match mv.violation.is_some() {
                true => real_violates(&s, &mv),
                false => real_holds(&s, real_bound),
            };
            cells += 1;
            agree += same as u32;
            let mark = if same { "agree" } else { "DISAGREE" };
            println!("{name:<13} {variant:<11} {model:<42} {real} [{mark}]");
        }
    }
    println!(
        "{agree} of {cells} cells agree (holds checked on real at preemption bound {real_bound})"
    );
}

/// The lease-held variant of both built-ins, and the lease-held mixes, on real processes at
/// `PUSHRACE_LEASE_BOUND`.
fn lease_held_cells() {
    let lease = bound_or("PUSHRACE_LEASE_BOUND", 2);
    if lease == 0 {
        return;
    }
    let pushes = SCENARIOS.iter().map(|name| {
        let s = library::load(name).expect("built-in");
        (name, s.with_variant(Variant::LeaseHeld))
    });
    let mixes = LEASE_HELD_MIXES
        .iter()
        .map(|name| (name, library::load(name).expect("built-in")));
    for (name, s) in pushes.chain(mixes) {
        let (text, proved) = real_holds(&s, lease);
        println!(
            "{name} lease-held on real at preemption bound {lease}: {text} [{}]",
            if proved {
                "exhausted, no violation"
            } else {
                "NOT proved"
            }
        );
    }
}
