//! Replay: run a given schedule, step for step.
//!
//! Strict replay is how a user reproduces a failure: any mismatch between the schedule and the
//! program (an actor that is finished or blocked where the schedule picks it, a schedule that
//! ends early or runs long) is an error naming the step. Lenient replay is the shrinker's tool:
//! it skips picks that cannot apply and, once the schedule is used up, continues canonically.

use crate::executor::{Chooser, End, Executor, Model, Pick, Status, View};
use crate::explorer::{Config, Explorer, Failure, Report, Stop};
use crate::failure::FailureKind;
use crate::schedule::Schedule;
use crate::trace::Trace;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayMode {
    Strict,
    Lenient,
}

pub(crate) struct ReplayChooser<'s> {
    steps: &'s [usize],
    cursor: usize,
    mode: ReplayMode,
    /// Strict replay of a user's schedule: the number of actors it was taken from.
    pub expect_actors: Option<usize>,
}

impl<'s> ReplayChooser<'s> {
    pub fn new(steps: &'s [usize], mode: ReplayMode) -> Self {
        ReplayChooser {
            steps,
            cursor: 0,
            mode,
            expect_actors: None,
        }
    }
}

fn runnable_names(view: &View<'_>) -> String {
    let names: Vec<&str> = (0..view.actor_count())
        .filter(|&i| view.enabled & (1u64 << i) != 0)
        .map(|i| view.name(i))
        .collect();
    names.join(", ")
}

impl Chooser for ReplayChooser<'_> {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        match self.mode {
            ReplayMode::Strict => {
                if let Some(n) = self
                    .expect_actors
                    .filter(|&n| n != view.actor_count() && view.step == 0)
                {
                    return Pick::Diverged(format!(
                        "the schedule is for a program of {n} actors but this one has {}",
                        view.actor_count()
                    ));
                }
                let Some(&a) = self.steps.get(self.cursor) else {
                    return Pick::Diverged(format!(
                        "the schedule ends after {} steps but actors can still run: {}",
                        self.steps.len(),
                        runnable_names(view)
                    ));
                };
                self.cursor += 1;
                if a >= view.actor_count() {
                    return Pick::Diverged(format!(
                        "schedule chose actor {a} but the program has {} actors",
                        view.actor_count()
                    ));
                }
                if view.enabled & (1u64 << a) == 0 {
                    let why = match view.status(a) {
                        Status::Finished => "finished",
                        Status::Waiting => "blocked",
                    };
                    return Pick::Diverged(format!(
                        "schedule chose actor {a} ({}) which is {why}; runnable: {}",
                        view.name(a),
                        runnable_names(view)
                    ));
                }
                Pick::Actor(a)
            }
            ReplayMode::Lenient => {
                while let Some(&a) = self.steps.get(self.cursor) {
                    self.cursor += 1;
                    if a < view.actor_count() && view.enabled & (1u64 << a) != 0 {
                        return Pick::Actor(a);
                    }
                }
                Pick::Actor(super::canonical(view))
            }
        }
    }
}

/// A replayed execution.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The schedule actually run.
    pub schedule: Schedule,
    /// Its trace.
    pub trace: Trace,
    /// How it failed, if it did.
    pub failure: Option<FailureKind>,
    /// The trace hash.
    pub hash: u64,
    /// Preemptions.
    pub preemptions: usize,
}

/// A schedule that does not fit the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Step (0-based) where it diverged.
    pub step: usize,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay diverged at step {}: {}", self.step, self.message)
    }
}

impl std::error::Error for Divergence {}

pub(crate) fn run_recorded<M: Model + ?Sized>(
    exec: &mut Executor,
    model: &M,
    steps: &[usize],
    mode: ReplayMode,
    expect_actors: Option<usize>,
) -> Result<Execution, Divergence> {
    let mut chooser = ReplayChooser::new(steps, mode);
    chooser.expect_actors = expect_actors;
    let out = exec.run(model, &mut chooser, true);
    let failure = match out.end {
        End::Complete => None,
        End::Failed(k) => Some(k),
        End::Aborted => unreachable!("replay never aborts"),
        End::Diverged { step, message } => return Err(Divergence { step, message }),
    };
    if mode == ReplayMode::Strict && chooser.cursor < steps.len() {
        return Err(Divergence {
            step: out.steps,
            message: format!(
                "the execution ended after {} steps but the schedule has {} more",
                out.steps,
                steps.len() - chooser.cursor
            ),
        });
    }
    let schedule = Schedule::new(
        out.names.len(),
        exec.schedule.iter().map(|&a| a as usize).collect(),
    );
    let trace = Trace::new(
        out.names,
        out.recorded,
        failure.clone(),
        &schedule,
        out.preemptions,
        out.hash,
    );
    Ok(Execution {
        schedule,
        trace,
        failure,
        hash: out.hash,
        preemptions: out.preemptions,
    })
}

/// Replays `schedule` strictly.
pub fn replay<M: Model + ?Sized>(
    model: &M,
    cfg: &Config,
    schedule: &Schedule,
) -> Result<Execution, Divergence> {
    let mut exec = Executor::new(cfg.max_steps);
    run_recorded(
        &mut exec,
        model,
        &schedule.steps,
        ReplayMode::Strict,
        Some(schedule.actors),
    )
}

/// Lenient replay: picks of the schedule that cannot apply are skipped, and once it is used up the
/// execution continues canonically (the last actor while it can run, else the lowest runnable).
/// `s1:2:a` runs actor 0 to its end, then actor 1; `s1:2:a5b` gives actor 0 five steps, then
/// actor 1 all of its own. For programs whose step counts are not known in advance (real client
/// processes), this writes an order without counting every step; the execution returned carries
/// the exact schedule that ran.
pub fn replay_lenient<M: Model + ?Sized>(
    model: &M,
    cfg: &Config,
    schedule: &Schedule,
) -> Result<Execution, Divergence> {
    let mut exec = Executor::new(cfg.max_steps);
    run_recorded(&mut exec, model, &schedule.steps, ReplayMode::Lenient, None)
}

/// [`Explorer::run`] with `Strategy::Replay`: one strict replay of `cfg.schedule`, its failure
/// (if it fails) shrunk like an explored one. A schedule that is missing or does not fit the
/// model gives a report of no execution that stopped with [`Stop::Diverged`].
pub(crate) fn report<M: Model + ?Sized>(model: &M, cfg: &Config) -> Report {
    let start = std::time::Instant::now();
    let mut report = Report::new(super::Strategy::Replay);
    let replayed = cfg.schedule.as_ref().map(|s| replay(model, cfg, s));
    let Some(Ok(e)) = replayed else {
        report.stopped = Some(Stop::Diverged);
        return report;
    };
    report.executions = 1;
    report.actors = e.trace.actors.len();
    report.max_steps_seen = e.trace.steps.len();
    if let Some(kind) = e.failure {
        let shrunk = if cfg.shrink {
            Explorer::new(cfg.clone()).shrink(model, &e.schedule)
        } else {
            None
        };
        report.failures.push(Failure {
            kind,
            schedule: e.schedule,
            trace: e.trace,
            execution: 1,
            preemptions: e.preemptions,
            shrunk,
        });
        report.stopped = Some(Stop::Failures);
    }
    report.elapsed = start.elapsed();
    report
}

/// Replays twice; `Err` if the trace hashes differ.
pub fn check_determinism<M: Model + ?Sized>(
    model: &M,
    cfg: &Config,
    schedule: &Schedule,
) -> Result<u64, String> {
    let a = replay(model, cfg, schedule).map_err(|d| d.to_string())?;
    let b = replay(model, cfg, schedule).map_err(|d| d.to_string())?;
    if a.hash != b.hash {
        return Err(format!(
            "NONDETERMINISM: schedule {} replayed to trace {:016x} then {:016x}; first difference at step {}",
            schedule,
            a.hash,
            b.hash,
            a.trace.steps.iter().zip(&b.trace.steps).position(|(x, y)| x != y).unwrap_or(a.trace.steps.len().min(b.trace.steps.len()))
        ));
    }
    Ok(a.hash)
}
