//! Exploring a scenario: its actors become harness actors over the model backend, its invariant
//! becomes failures the harness can find, shrink and replay; the result is a [`Verdict`].

use crate::backend::{external, spawn_scenario, Client, Driver, Sim};
use crate::programs::{neighbours, push};
use crate::scenario::{ActorSpec, Invariant, ProgramSpec, Scenario};
use pushrace_harness::{
    ActorError, Config, Execution, Explorer, FailureKind, Report, Schedule, Shard, Strategy, Trace,
    World,
};
use pushrace_models::{Error, OpKind};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// How to explore.
#[derive(Clone, Debug)]
pub struct Options {
    pub strategy: Strategy,
    /// DFS's preemption bound; `None`: no bound, every interleaving.
    pub preemptions: Option<usize>,
    pub seed: u64,
    /// Executions (default: DFS to exhaustion, 1000 for random and PCT).
    pub budget: Option<u64>,
    pub depth: usize,
    pub shard: Option<Shard>,
    pub max_time: Option<Duration>,
    pub progress: bool,
    pub reduction: bool,
    /// Shrink the failure found (on by default; the benchmark turns it off to time the search).
    pub shrink: bool,
    /// DFS: visited-state pruning over the model's state fingerprint ([`model_for`]).
    pub prune: bool,
    /// The visited table's memory limit in bytes (`None`: a quarter of the machine's memory).
    pub prune_memory: Option<usize>,
}

impl Options {
    /// The bounds a scenario file declares.
    pub fn for_scenario(s: &Scenario) -> Options {
        Options {
            strategy: s.check.strategy,
            preemptions: s.check.preemptions,
            seed: s.check.seed,
            budget: s.check.budget,
            depth: s.check.depth,
            shard: None,
            max_time: None,
            progress: false,
            reduction: true,
            shrink: true,
            prune: false,
            prune_memory: None,
        }
    }

    pub fn config(&self) -> Config {
        Config {
            preemption_bound: self.preemptions,
            reduction: self.reduction,
            max_executions: self.budget,
            max_time: self.max_time,
            shard: self.shard,
            progress: self.progress,
            shrink: self.shrink,
            seed: self.seed,
            pct_depth: self.depth,
            prune: self.prune,
            prune_memory: self.prune_memory,
            ..Config::default()
        }
    }
}

/// Runs one actor's program to completion on any backend.
pub async fn run_actor<C: Client>(c: &C, s: &Scenario, a: &ActorSpec) -> Result<(), Error> {
    let ctx = &a.ctx;
    match &a.program {
        ProgramSpec::Push {
            reference,
            platforms,
            all_platforms,
            variant,
        } => {
            let p = push::Push {
                actor: a.name.clone(),
                ctx: ctx.clone(),
                reference: reference.clone(),
                platforms: platforms.clone(),
                all_platforms: *all_platforms,
                variant: *variant,
                semantics: s.semantics,
                fixture: s.fixture(reference).cloned(),
            };
            push::push(c, &p).await
        }
        ProgramSpec::Pull {
            reference,
            fetched,
            remote,
        } => {
            let fixture = s
                .fixture(reference)
                .cloned()
                .expect("validated: pull names a scenario image");
            neighbours::pull(c, &a.name, ctx, fixture, fetched.clone(), remote).await
        }
        ProgramSpec::Tag { src, dst } => neighbours::tag(c, ctx, src, dst).await,
        ProgramSpec::Rmi { image, force } => neighbours::rmi(c, ctx, image, *force).await,
        ProgramSpec::ImageConvert {
            src,
            dst,
            platforms,
        } => neighbours::image_convert(c, &a.name, ctx, src, dst, platforms).await,
        ProgramSpec::CtrRm { image, sync } => neighbours::ctr_rm(c, ctx, image, *sync).await,
        ProgramSpec::GcTicker { ticks } => {
            for _ in 0..*ticks {
                c.gc_tick_unseen().await;
            }
            Ok(())
        }
        ProgramSpec::ClockAdvance { by } => c
            .call(pushrace_models::Op {
                ctx: ctx.clone(),
                kind: OpKind::ClockAdvance { by: *by },
            })
            .await
            .map(|_| ()),
        ProgramSpec::Ops { actions } => neighbours::ops(c, &a.name, actions).await,
        ProgramSpec::Commands { .. } => Err(Error::raw(
            pushrace_models::ErrorKind::NotImplemented,
            format!(
                "actor {} has only commands, no model program: it runs on the real backend only",
                a.name
            ),
        )),
    }
}

/// Turns an actor's result into what the harness sees under the scenario's invariant: only
/// results that break the invariant are failures; other errors are the program's business
/// (`image "…": not found` is a failed push but not a missing digest).
pub fn classify(invariant: Invariant, r: Result<(), Error>) -> Result<(), ActorError> {
    match (invariant, r) {
        (_, Ok(())) => Ok(()),
        (Invariant::NoMissingDigest | Invariant::PushSucceeds, Err(e))
            if e.missing_digest().is_some() =>
        {
            Err(ActorError::new(
                format!("missing {}", e.missing_digest().unwrap()),
                e.message,
            ))
        }
        (Invariant::PushSucceeds, Err(e)) => {
            Err(ActorError::new(format!("{:?}", e.kind), e.message))
        }
        _ => Ok(()),
    }
}

/// The shared state an execution of `s` starts from.
pub fn initial_sim(s: &Scenario) -> Sim {
    let mut sim = Sim::new(s.setup.clone());
    sim.registry = crate::backend::registry::initial(s);
    sim
}

/// A scenario as a harness model.
pub fn model(s: &Scenario) -> impl Fn(&mut World) + 'static {
    model_for(s, false)
}

/// A scenario as a harness model; with `fingerprint`, one that keeps each actor's history of
/// answers and registers the state fingerprint ([`Sim::fingerprint`]) that visited-state
/// pruning needs. The scenario's actors are its own programs, deterministic functions of their
/// answers, so the fingerprint covers their local state.
pub fn model_for(s: &Scenario, fingerprint: bool) -> impl Fn(&mut World) + 'static {
    let scenario = Rc::new(s.clone());
    let mut template = initial_sim(s);
    if fingerprint {
        template.answers = Some(vec![0; s.actors.len()]);
    }
    move |w: &mut World| {
        let sim = Rc::new(RefCell::new(template.clone()));
        spawn_scenario(w, &scenario, &sim, |_| Driver::Program);
        if fingerprint {
            w.fingerprint(move || sim.borrow().fingerprint());
        }
    }
}

/// A violation, in the scenario's terms.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: &'static str,
    /// The failing actor (None for a store invariant).
    pub actor: Option<String>,
    /// 0-based index of the failing step in the (shrunk) trace.
    pub step: usize,
    pub message: String,
    pub digest: Option<String>,
    /// What the digest is ("reduced index of example.com/app:1 (linux/amd64)").
    pub what: Option<String>,
    /// Its role kind (`reduced-index`, `layer`, …).
    pub role: Option<pushrace_models::oci::RoleKind>,
    pub schedule: Schedule,
    pub trace: Trace,
    pub steps_before: usize,
    pub steps_after: usize,
    pub preemptions_before: usize,
    pub preemptions_after: usize,
}

/// The outcome of exploring a scenario.
#[derive(Debug)]
pub struct Verdict {
    pub scenario: String,
    pub source: crate::scenario::Source,
    pub options: Options,
    pub report: Report,
    pub violation: Option<Violation>,
    /// A failure that is not the scenario's invariant (deadlock, step budget, panic): a bug in a
    /// program or the tool, reported as such.
    pub other_failure: Option<String>,
    /// Where the executions ran.
    pub ran_on: RanOn,
}

/// Where a verdict's executions ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RanOn {
    /// The model (the scenario's programs over the simulated daemon).
    #[default]
    Model,
    /// The actors' commands as real processes on fresh private daemons (`backend/real.rs`).
    Real,
}

pub fn explore(s: &Scenario, opts: &Options) -> Verdict {
    if let Some(v) = replay_declared(s, opts) {
        return v;
    }
    let report =
        Explorer::new(search_config(s, opts)).run(&model_for(s, opts.prune), opts.strategy);
    verdict_of(s, opts, report)
}

/// The harness configuration of an exploration of `s` on any backend: `opts`, and the scenario's
/// `[check] message`.
pub fn search_config(s: &Scenario, opts: &Options) -> Config {
    let mut config = opts.config();
    if let Some(want) = s.check.message.clone() {
        // `[check] message`: failures that do not carry the wanted text share one signature, so
        // they count once toward the failure budget, and shrinking keeps the wanted failure.
        config.signature = Some(Rc::new(move |k: &FailureKind, names: &[String]| {
            if failure_message(k).is_some_and(|m| m.contains(&want)) {
                k.signature(names)
            } else {
                "not the wanted failure".to_string()
            }
        }));
        config.distinct_failures = true;
        config.max_failures = 2;
    }
    config
}

/// The scenario's declared `[check] schedule` (a persisted failure), replayed: when it fails,
/// the verdict of one execution (the failure shrunk); `None` when there is no schedule, it no
/// longer fits the scenario, or it no longer fails (then the caller explores as usual).
pub fn replay_declared(s: &Scenario, opts: &Options) -> Option<Verdict> {
    let schedule = Schedule::parse(s.check.schedule.as_deref()?).ok()?;
    let m = model(s);
    let report = replay_failure(&opts.config(), &m, &schedule)?;
    Some(verdict_of(s, opts, report))
}

/// A persisted failing schedule, replayed on `model` with `config`: when it still fails, the
/// one-execution report of that failure (shrunk); `None` when it no longer fits the model or no
/// longer fails.
pub fn replay_failure<M: pushrace_harness::Model + ?Sized>(
    config: &Config,
    model: &M,
    schedule: &Schedule,
) -> Option<Report> {
    let config = Config {
        schedule: Some(schedule.clone()),
        ..config.clone()
    };
    let report = Explorer::new(config).run(model, Strategy::Replay);
    (!report.failures.is_empty()).then_some(report)
}

/// A harness report on a model built from `s` (its actors, or others against its store) read in
/// the scenario's terms: its first failure interpreted as a [`Violation`] or another failure.
pub fn verdict_of(s: &Scenario, opts: &Options, report: Report) -> Verdict {
    let (violation, other_failure) = match report.failures.iter().find(|f| wanted(s, f)) {
        None => (None, None),
        Some(f) => interpret(s, f),
    };
    Verdict {
        scenario: s.name.clone(),
        source: s.source.clone(),
        options: opts.clone(),
        report,
        violation,
        other_failure,
        ran_on: RanOn::Model,
    }
}

/// `[check] message`: whether a failure is the one the scenario looks for.
fn wanted(s: &Scenario, f: &pushrace_harness::Failure) -> bool {
    match &s.check.message {
        None => true,
        Some(want) => failure_message(f.shrunk.as_ref().map_or(&f.kind, |x| &x.kind))
            .is_some_and(|m| m.contains(want.as_str())),
    }
}

/// One replayed execution (on any backend) read in the scenario's terms, as [`verdict_of`]
/// reads an exploration's failure: the violation, or another failure (a deadlock, a backend
/// failure), or neither.
pub fn judge_execution(s: &Scenario, e: &Execution) -> (Option<Violation>, Option<String>) {
    let Some(kind) = &e.failure else {
        return (None, None);
    };
    let f = pushrace_harness::Failure {
        kind: kind.clone(),
        schedule: e.schedule.clone(),
        trace: e.trace.clone(),
        execution: 1,
        preemptions: e.preemptions,
        shrunk: None,
    };
    match wanted(s, &f) {
        true => interpret(s, &f),
        false => (None, None),
    }
}

/// The message of an actor's error or of a broken invariant.
fn failure_message(k: &FailureKind) -> Option<&str> {
    match k {
        FailureKind::ActorError { error, .. } => Some(&error.message),
        FailureKind::Invariant { message, .. } | FailureKind::Final { message, .. } => {
            Some(message)
        }
        FailureKind::Panic { message, .. } => Some(message),
        _ => None,
    }
}

fn interpret(s: &Scenario, f: &pushrace_harness::Failure) -> (Option<Violation>, Option<String>) {
    let trace = f.best_trace().clone();
    let names = trace.actors.clone();
    let (actor, message, step) = match &f.shrunk.as_ref().map_or(&f.kind, |x| &x.kind) {
        FailureKind::ActorError { error, .. } if error.kind == external::BACKEND_FAILURE => {
            return (None, Some(f.kind.describe(&names)));
        }
        FailureKind::ActorError { actor, error } => {
            // The failing call is the actor's last step that names the missing digest (a push
            // still runs its deferred delete after the failed read); otherwise its last step.
            let mine = |t: &&pushrace_harness::TraceStep| t.actor == *actor;
            let short = Error::raw(pushrace_models::ErrorKind::NotFound, error.message.clone())
                .missing_digest()
                .map(|d| pushrace_models::digest::short(d).to_string());
            let step = short
                .and_then(|sd| {
                    trace
                        .steps
                        .iter()
                        .rfind(|t| mine(t) && t.label.contains(&sd))
                        .map(|t| t.index)
                })
                .or_else(|| trace.steps.iter().rfind(mine).map(|t| t.index))
                .unwrap_or(0);
            (Some(names[*actor].clone()), error.message.clone(), step)
        }
        FailureKind::Invariant { name, message } if name == s.check.invariant.name() => {
            (None, message.clone(), trace.steps.len().saturating_sub(1))
        }
        other => return (None, Some(other.describe(&names))),
    };
    let digest = Error::raw(pushrace_models::ErrorKind::NotFound, message.clone())
        .missing_digest()
        .map(str::to_string)
        .or_else(|| {
            message
                .split_whitespace()
                .find(|w| w.starts_with("sha256:"))
                .map(|w| w.trim_end_matches(':').to_string())
        });
    let what = digest
        .as_deref()
        .and_then(|d| s.describe(d))
        .map(str::to_string);
    let role = digest.as_deref().and_then(|d| s.role_kinds.get(d)).cloned();
    let (sb, sa, pb, pa) = match &f.shrunk {
        Some(x) => (
            x.steps_before,
            x.steps_after,
            x.preemptions_before,
            x.preemptions_after,
        ),
        None => (
            f.trace.steps.len(),
            f.trace.steps.len(),
            f.preemptions,
            f.preemptions,
        ),
    };
    let v = Violation {
        invariant: s.check.invariant.name(),
        actor,
        step,
        message,
        digest,
        what,
        role,
        schedule: f.best_schedule().clone(),
        trace,
        steps_before: sb,
        steps_after: sa,
        preemptions_before: pb,
        preemptions_after: pa,
    };
    (Some(v), None)
}

/// Replays a schedule on the scenario; the execution's trace and whether it broke the invariant.
pub fn replay(s: &Scenario, schedule: &Schedule) -> Result<(Trace, Option<String>), String> {
    let m = model(s);
    let e = Explorer::new(Config::default())
        .replay(&m, schedule)
        .map_err(|d| d.to_string())?;
    let failed = e.failure.as_ref().map(|k| k.describe(&e.trace.actors));
    Ok((e.trace, failed))
}
