//! A scenario's actors played by real client processes under the scheduler (feature
//! `containerd`): a private containerd set up with the scenario's fixture through the gRPC
//! backend, a private registry, one interposer socket per actor, and the schedule's order
//! enforced call by call (`interposed.rs` states the rules).

use super::commands::CommandSpec;
use super::interposed::{Budgets, Journal};
use super::session::{RealModel, Times};
use super::translate::{sides, translate, Translation};
use crate::explore::{self, Verdict, Violation};
use crate::scenario::Scenario;
use pushrace_harness::{Config, Divergence, Execution, Explorer, Schedule};
use pushrace_models::Error;
use std::time::Duration;

/// One actor's real side: its commands and what `{ref}` stands for.
#[derive(Clone, Debug)]
pub struct RealActor {
    pub reference: String,
    pub commands: Vec<CommandSpec>,
}

impl RealActor {
    /// The real side of each of `s`'s actors: its `command`/`commands`/`finally`, with `{ref}`
    /// standing for its program's reference. `Err` names an actor that has no commands.
    pub fn of_scenario(s: &Scenario) -> Result<Vec<RealActor>, String> {
        let real = |a: &crate::scenario::ActorSpec| {
            match a.commands.is_empty() {
            true => Err(format!(
                "actor {} of scenario {} has no commands: give it `command` or `commands` to run it on the real backend",
                a.name, s.name
            )),
            false => Ok(RealActor {
                reference: a.program.reference().unwrap_or_default().to_string(),
                commands: a.commands.clone(),
            }),
        }
        };
        s.actors.iter().map(real).collect()
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RealOptions {
    /// Follow the schedule leniently ([`Explorer::replay_lenient`]): an order written without
    /// counting every step. The execution carries the exact schedule that ran.
    pub lenient: bool,
    /// Where the private registry listens (`HOST:PORT`; default a free loopback port). An
    /// address in use is an error naming it: a registry that already holds blobs would make the
    /// pushes' answers depend on what ran before.
    pub registry_addr: Option<String>,
    /// A running registry's `HOST:PORT` to use instead of a private one (a test that seeds it in
    /// one execution and pulls from it in the next); what it holds is the caller's business.
    pub registry: Option<String>,
    pub budgets: Budgets,
    /// Clients reach the registry directly, not through the registry proxy, so their registry
    /// requests are not steps: a replay of a `pushrace record` log, which has none. Exploring
    /// refuses it (the registry traffic would then be out of the scheduler's sight).
    pub registry_unscheduled: bool,
    /// Replays a real exploration may spend shrinking its failure (each one a real execution).
    pub shrink_budget: usize,
}

impl Default for RealOptions {
    fn default() -> RealOptions {
        RealOptions {
            lenient: false,
            registry_addr: None,
            registry: None,
            budgets: Budgets::default(),
            registry_unscheduled: false,
            shrink_budget: DEFAULT_SHRINK_BUDGET,
        }
    }
}

/// [`RealOptions::shrink_budget`]'s default: about a minute of real executions.
pub const DEFAULT_SHRINK_BUDGET: usize = 60;

/// What one real execution found.
#[derive(Debug)]
pub struct RealReplay {
    pub execution: Result<Execution, Divergence>,
    pub violation: Option<Violation>,
    pub other_failure: Option<String>,
    pub results: Vec<Option<Result<(), Error>>>,
    pub journal: Journal,
    /// Daemon and registry start, fixture setup, the execution itself.
    pub started: Duration,
    pub setup: Duration,
    pub run: Duration,
}

/// Runs `schedule` of `s` with `actors[i]` playing the scenario's actor `i`. `Err`: bad input or
/// a setup that failed (each naming the actor or setting); nothing is left running either way.
pub fn replay_real(
    s: &Scenario,
    actors: &[RealActor],
    schedule: &Schedule,
    o: &RealOptions,
) -> Result<RealReplay, String> {
    let model = RealModel::new(s, actors, o)?;
    let explorer = Explorer::new(Config::default());
    let execution = match o.lenient {
        true => explorer.replay_lenient(&model, schedule),
        false => explorer.replay(&model, schedule),
    };
    let last = model.finish();
    if let Some(e) = last.setup_error {
        return Err(e);
    }
    let (violation, other_failure) = match &execution {
        Ok(e) => explore::judge_execution(s, e),
        Err(_) => (None, None),
    };
    Ok(RealReplay {
        execution,
        violation,
        other_failure,
        results: last.results,
        journal: last.journal,
        started: last.times.started,
        setup: last.times.setup,
        run: last.times.run,
    })
}

/// What an exploration over real processes found.
#[derive(Debug)]
pub struct RealExploration {
    /// The verdict, read as the model's is (`explore::verdict_of`), its replay command naming
    /// the real backend. A divergence (the real actors did not repeat a prefix) is its other
    /// failure, never a violation.
    pub verdict: Verdict,
    /// Every real call whose result the shadow model did not predict, by execution.
    pub disagreements: Vec<String>,
    pub times: Times,
}

/// Explores `s` with `actors` playing its actors, each execution on a fresh private daemon and
/// registry (`session.rs`), with the strategy and bounds of `opts`; a failure found is shrunk on
/// real executions too, within `o.shrink_budget` replays. `Err`: bad input, or an execution that
/// could not be set up (then there is no verdict).
pub fn explore_real(
    s: &Scenario,
    actors: &[RealActor],
    opts: &explore::Options,
    o: &RealOptions,
) -> Result<RealExploration, String> {
    if o.registry.is_some() {
        return Err("exploring needs a fresh registry per execution, not a shared one".into());
    }
    if o.registry_unscheduled {
        return Err("exploring needs the registry under the scheduler".into());
    }
    let model = RealModel::new(s, actors, o)?;
    let config = Config {
        shrink_budget: o.shrink_budget,
        ..explore::search_config(s, opts)
    };
    let report = Explorer::new(config).run(&model, opts.strategy);
    let last = model.finish();
    if let Some(e) = last.setup_error {
        return Err(e);
    }
    let mut verdict = explore::verdict_of(s, opts, report);
    verdict.ran_on = explore::RanOn::Real;
    Ok(RealExploration {
        verdict,
        disagreements: last.disagreements,
        times: last.times,
    })
}

/// Replays the model schedule `schedule` of `s` on its real actors, translated call by call
/// (`translate.rs`): the model trace, one run of the real actors one after another for their
/// calls, the translation, and its replay. A real actor that leaves the translation's plan before
/// any call of it failed is a divergence (the execution's `Err`), never a verdict.
pub fn replay_from_model(
    s: &Scenario,
    actors: &[RealActor],
    schedule: &Schedule,
    o: &RealOptions,
) -> Result<(RealReplay, Translation), String> {
    let (model, _) = explore::replay(s, schedule).map_err(|e| {
        format!(
            "the schedule does not fit the model of scenario {}: {e}",
            s.name
        )
    })?;
    let lenient = RealOptions {
        lenient: true,
        ..o.clone()
    };
    let serial = replay_real(
        s,
        actors,
        &Schedule::new(s.actors.len(), Vec::new()),
        &lenient,
    )?;
    let alone = match (&serial.execution, &serial.other_failure) {
        (Ok(e), None) => e.trace.clone(),
        (Err(d), _) => return Err(format!("the real actors, run one after another: {d}")),
        (_, Some(f)) => return Err(format!("the real actors, run one after another: {f}")),
    };
    let t = translate(&model, &alone)?;
    let r = replay_translated(s, actors, &t, o)?;
    Ok((r, t))
}

/// Replays a translation's schedule (leniently) on fresh real actors; a real actor that leaves
/// the plan before any of its calls failed makes the execution a divergence.
pub fn replay_translated(
    s: &Scenario,
    actors: &[RealActor],
    t: &Translation,
    o: &RealOptions,
) -> Result<RealReplay, String> {
    let lenient = RealOptions {
        lenient: true,
        ..o.clone()
    };
    let mut r = replay_real(s, actors, &t.schedule, &lenient)?;
    if let Ok(e) = &r.execution {
        if let Some(d) = left_the_plan(e, t, &r.journal) {
            r.execution = Err(d);
        }
    }
    Ok(r)
}

/// The first real step, before any failed call of its actor, that is not the one planned.
fn left_the_plan(e: &Execution, t: &Translation, j: &Journal) -> Option<Divergence> {
    let ran = sides(&e.trace);
    let mut count = vec![0usize; t.planned.len()];
    for (step, side) in ran.iter().enumerate() {
        let a = side.actor;
        let k = count[a];
        count[a] += 1;
        let failed_before = j
            .errors
            .iter()
            .any(|(n, at)| *n == e.trace.actors[a] && *at < k);
        if failed_before || t.planned[a].get(k) == Some(&side.key) {
            continue;
        }
        let planned = t.planned[a].get(k).map_or("its end", String::as_str);
        return Some(Divergence {
            step,
            message: format!(
                "actor {} made `{}` where the translation planned `{planned}`",
                e.trace.actors[a], side.key
            ),
        });
    }
    None
}
