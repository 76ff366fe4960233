//! The model under shuttle: the same arrangement as `loom_client.rs` (one `shuttle::sync::Mutex`
//! around the simulated daemon, each client call a lock, apply, unlock; actors are shuttle threads
//! driving the same async programs with `shuttle::future::block_on`), explored by shuttle's own
//! schedulers. Shared by the shuttle test and the comparison benchmark.

use pushrace_scenarios::backend::locked::{LockedClient, SimLock};
use pushrace_scenarios::backend::Sim;
use pushrace_scenarios::explore::{classify, run_actor};
use pushrace_scenarios::scenario::Scenario;
use shuttle::scheduler::Scheduler;
use shuttle::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};

/// The simulated daemon behind a shuttle mutex.
pub struct ShuttleSim(pub Arc<Mutex<Sim>>);

impl SimLock for ShuttleSim {
    fn with<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

/// Runs `scenario` under `scheduler`; returns (executions run, the first violation's message).
/// Executions are counted by the test body itself, so a run stopped by a violation counts too.
#[allow(dead_code)]
pub fn check_scenario<S: Scheduler + 'static>(
    scenario: &Scenario,
    scheduler: S,
) -> (u64, Option<String>) {
    let runs = std::sync::Arc::new(AtomicU64::new(0));
    let counter = runs.clone();
    let scenario = std::sync::Arc::new(scenario.clone());
    let mut config = shuttle::Config::new();
    // The push programs nest many async frames: more stack than shuttle's default continuation.
    config.stack_size = 8 << 20;
    config.silence_warnings = true;
    let runner = shuttle::Runner::new(scheduler, config);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runner.run(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            run_all(&scenario);
        })
    }));
    let failure = outcome.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string())
    });
    (runs.load(Ordering::SeqCst), failure)
}

fn run_all(scenario: &std::sync::Arc<Scenario>) {
    let template = pushrace_scenarios::explore::initial_sim(scenario);
    let sim = Arc::new(Mutex::new(template));
    let handles: Vec<_> = (0..scenario.actors.len())
        .map(|i| {
            let (sim, scenario) = (sim.clone(), scenario.clone());
            shuttle::thread::spawn(move || {
                let client = LockedClient(ShuttleSim(sim));
                let actor = &scenario.actors[i];
                let r = shuttle::future::block_on(run_actor(&client, &scenario, actor));
                classify(scenario.check.invariant, r)
                    .map_err(|e| format!("{}: {}", actor.name, e.message))
            })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.join().unwrap() {
            panic!("violation: {e}");
        }
    }
}
