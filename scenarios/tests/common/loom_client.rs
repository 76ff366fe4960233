//! The model under loom: one `loom::sync::Mutex` around the simulated daemon, each client call a
//! lock, apply, unlock; actors are loom threads driving the same async programs with
//! `loom::future::block_on`. Shared by the loom test and the comparison benchmark.

use loom::sync::{Arc, Mutex};
use pushrace_scenarios::backend::locked::{LockedClient, SimLock};
use pushrace_scenarios::backend::Sim;
use pushrace_scenarios::explore::{classify, run_actor};
use pushrace_scenarios::scenario::Scenario;

/// The simulated daemon behind a loom mutex.
pub struct LoomSim(pub Arc<Mutex<Sim>>);

impl SimLock for LoomSim {
    fn with<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

/// Runs every actor of `scenario` as a loom thread; panics (loom's way of reporting) when an
/// actor breaks the scenario's invariant.
#[allow(dead_code)]
pub fn check_scenario(scenario: &Scenario, preemption_bound: usize) {
    let scenario = std::sync::Arc::new(scenario.clone());
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.max_branches = 100_000;
    builder.check(move || run_all(&scenario));
}

/// `check_scenario`, counting loom's executions in `runs`.
#[allow(dead_code)]
pub fn check_scenario_counting(
    scenario: &Scenario,
    preemption_bound: usize,
    runs: &'static std::sync::atomic::AtomicU64,
) {
    let scenario = std::sync::Arc::new(scenario.clone());
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.max_branches = 100_000;
    builder.check(move || {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        run_all(&scenario);
    });
}

fn run_all(scenario: &std::sync::Arc<Scenario>) {
    let template = pushrace_scenarios::explore::initial_sim(scenario);
    let sim = Arc::new(Mutex::new(template));
    let handles: Vec<_> = (0..scenario.actors.len())
        .map(|i| {
            let (sim, scenario) = (sim.clone(), scenario.clone());
            // The push programs nest many async frames: unoptimised builds need more stack than
            // loom's default.
            loom::thread::Builder::new()
                .stack_size(8 << 20)
                .spawn(move || {
                    let client = LockedClient(LoomSim(sim));
                    let actor = &scenario.actors[i];
                    let r = loom::future::block_on(run_actor(&client, &scenario, actor));
                    classify(scenario.check.invariant, r)
                        .map_err(|e| format!("{}: {}", actor.name, e.message))
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        if let Err(e) = h.join().unwrap() {
            panic!("violation: {e}");
        }
    }
}
