//! The explorer: configuration, reports, and the engine every strategy drives.

use crate::executor::{Chooser, End, Executor, Model, RunOutput};
use crate::failure::FailureKind;
use crate::progress::Progress;
use crate::schedule::Schedule;
use crate::shrink::Shrunk;
use crate::strategy::replay::{ReplayChooser, ReplayMode};
use crate::strategy::Strategy;
use crate::trace::Trace;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A deterministic slice `index/count` of an exploration: DFS subtrees by prefix, execution
/// (seed) ranges for random and PCT. The union of `0/N .. N-1/N` is exactly `0/1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This slice, `0..count`.
    pub index: u32,
    /// Number of slices.
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` (as `--shard K/N`), with `K < N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?}: expected K/N, e.g. 0/4"))?;
        let k = shard_part(s, "K", k)?;
        let n = shard_part(s, "N", n)?;
        if n == 0 || k >= n {
            return Err(format!("shard {s:?}: expected 0 <= K < N"));
        }
        Ok(Shard { index: k, count: n })
    }
}

/// One number of `K/N`: a number that does not fit is "too large", not "not a number".
fn shard_part(s: &str, which: &str, part: &str) -> Result<u32, String> {
    let part = part.trim();
    part.parse().map_err(|_| {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            format!("shard {s:?}: {which} is too large (at most {})", u32::MAX)
        } else {
            format!("shard {s:?}: {which} is not a number")
        }
    })
}

/// Decides whether two failures are "the same" for shrinking: equal signatures.
pub type SignatureFn = Rc<dyn Fn(&FailureKind, &[String]) -> String>;

/// Exploration settings. `Default` gives: preemption bound 2, reduction on, 10 000 steps per
/// execution, no execution or time budget for DFS (1000 executions for random/PCT), stop at the
/// first failure, shrink it, no shard, no progress line, no visited-state pruning.
#[derive(Clone)]
pub struct Config {
    /// DFS: maximum preemptions per execution (`None`: unbounded).
    pub preemption_bound: Option<usize>,
    /// DFS: partial-order reduction (source-DPOR with sleep sets) from footprints.
    pub reduction: bool,
    /// Steps per execution; reaching it is reported as a possible livelock.
    pub max_steps: usize,
    /// Executions budget (`None`: DFS runs to exhaustion; random and PCT run 1000).
    pub max_executions: Option<u64>,
    /// Wall-time budget. It may stop an exploration early; it never changes which schedules
    /// are explored or what they contain.
    pub max_time: Option<Duration>,
    /// Stop after this many distinct failures (at least 1).
    pub max_failures: usize,
    /// Shrink each failure found.
    pub shrink: bool,
    /// Maximum replays spent shrinking one failure.
    pub shrink_budget: usize,
    /// Explore only this slice.
    pub shard: Option<Shard>,
    /// Show a progress line on stderr (terminal only, runs over a second).
    pub progress: bool,
    /// Random and PCT: the seed.
    pub seed: u64,
    /// PCT: the bug depth `d`.
    pub pct_depth: usize,
    /// Replay: the schedule [`Explorer::run`] replays with `Strategy::Replay`.
    pub schedule: Option<crate::Schedule>,
    /// PCT: the step count `k` to assume (default: measured by one probe execution).
    pub pct_steps: Option<usize>,
    /// Record the trace hash of every execution in `Report::hashes` (for tests and sharding checks).
    pub collect_hashes: bool,
    /// How failures are compared when shrinking (default: [`FailureKind::signature`]).
    pub signature: Option<SignatureFn>,
    /// Record a failing execution only when its signature differs from every failure recorded
    /// so far (so `max_failures` counts kinds of failure, and duplicates are not shrunk again).
    pub distinct_failures: bool,
    /// DFS: visited-state pruning, for models that register a
    /// [`World::fingerprint`](crate::World::fingerprint) (others are explored as without it): no
    /// state is explored below twice. Sound with reduction and sleep sets
    /// ([`crate::strategy::dfs`]).
    pub prune: bool,
    /// DFS with `prune`: the visited table's memory limit in bytes (`None`: a quarter of the
    /// machine's memory). A full table stops recording new states, it never fails the run.
    pub prune_memory: Option<usize>,
    /// DFS with `prune` in [`crate::parallel::explore`]: the steps of each thread's epochs, at
    /// whose ends its states join the shared visited table ([`crate::strategy::epochs`]). Part
    /// of what the run computes (when a state reaches the other threads), so counted, not timed.
    pub prune_epoch_steps: u64,
    /// Where a shard run by [`crate::parallel::explore`] publishes its counts for the one
    /// combined progress line (set by it; `None` otherwise).
    pub tally: Option<std::sync::Arc<crate::parallel::Tally>>,
    /// DFS with `prune` in [`crate::parallel::explore`]: the visited table its threads share and
    /// this thread's index there (set by it; `None` otherwise).
    pub visited: Option<(std::sync::Arc<crate::strategy::epochs::SharedTable>, usize)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preemption_bound: Some(2),
            reduction: true,
            max_steps: 10_000,
            max_executions: None,
            max_time: None,
            max_failures: 1,
            shrink: true,
            shrink_budget: 5_000,
            shard: None,
            progress: false,
            seed: 0,
            pct_depth: 3,
            schedule: None,
            pct_steps: None,
            collect_hashes: false,
            signature: None,
            distinct_failures: false,
            prune: false,
            prune_memory: None,
            prune_epoch_steps: crate::strategy::epochs::EPOCH_STEPS,
            tally: None,
            visited: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("preemption_bound", &self.preemption_bound)
            .field("reduction", &self.reduction)
            .field("max_steps", &self.max_steps)
            .field("max_executions", &self.max_executions)
            .field("max_time", &self.max_time)
            .field("max_failures", &self.max_failures)
            .field("shrink", &self.shrink)
            .field("shard", &self.shard)
            .field("distinct_failures", &self.distinct_failures)
            .field("prune", &self.prune)
            .field("prune_memory", &self.prune_memory)
            .field("prune_epoch_steps", &self.prune_epoch_steps)
            .finish_non_exhaustive()
    }
}

/// A failure found by an exploration.
#[derive(Clone, Debug)]
pub struct Failure {
    /// What failed.
    pub kind: FailureKind,
    /// The schedule that produced it, as found.
    pub schedule: Schedule,
    /// Its trace (replayed and hash-checked).
    pub trace: Trace,
    /// Which execution (1-based) of this exploration found it.
    pub execution: u64,
    /// Preemptions in the found schedule.
    pub preemptions: usize,
    /// The shrunk version, if shrinking ran.
    pub shrunk: Option<Shrunk>,
}

impl Failure {
    /// The schedule to show a person: the shrunk one when available.
    pub fn best_schedule(&self) -> &Schedule {
        self.shrunk
            .as_ref()
            .map(|s| &s.schedule)
            .unwrap_or(&self.schedule)
    }
    /// The trace to show a person: the shrunk one when available.
    pub fn best_trace(&self) -> &Trace {
        self.shrunk
            .as_ref()
            .map(|s| &s.trace)
            .unwrap_or(&self.trace)
    }
}

/// Why an exploration stopped before exhausting its space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A replayed schedule did not fit the model (or none was given).
    Diverged,
    /// `max_executions` reached.
    Executions,
    /// `max_time` reached.
    Time,
    /// `max_failures` reached.
    Failures,
}

/// PCT's guarantee for the run: each execution finds a given bug of depth `d` with probability
/// at least `1/(n·k^(d−1))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PctBound {
    /// Actors.
    pub n: usize,
    /// Steps (the most seen in any execution).
    pub k: usize,
    /// Depth.
    pub d: usize,
    /// `1/(n·k^(d−1))`.
    pub probability: f64,
}

impl PctBound {
    /// The bound for n actors, k steps, depth d.
    pub fn new(n: usize, k: usize, d: usize) -> Self {
        let k = k.max(1);
        let probability = 1.0 / (n.max(1) as f64 * (k as f64).powi(d.saturating_sub(1) as i32));
        PctBound {
            n,
            k,
            d,
            probability,
        }
    }
}

/// The result of an exploration.
#[derive(Clone, Debug)]
pub struct Report {
    /// The strategy that produced it.
    pub strategy: Strategy,
    /// Complete executions (including failing ones).
    pub executions: u64,
    /// DFS: executions cut short because every runnable actor was in the sleep set (or only
    /// preempting choices remained beyond the bound): redundant, not counted as executions.
    pub pruned: u64,
    /// The whole space within the preemption bound was explored (DFS only: random and PCT
    /// sample it and stop on their execution budget, so they never exhaust it).
    pub exhausted: bool,
    /// Why it stopped early, if it did.
    pub stopped: Option<Stop>,
    /// Failures found.
    pub failures: Vec<Failure>,
    /// Number of actors (of the last execution).
    pub actors: usize,
    /// Most steps in any execution.
    pub max_steps_seen: usize,
    /// PCT's probability bound, for PCT.
    pub pct: Option<PctBound>,
    /// Trace hashes of all executions, if `Config::collect_hashes`.
    pub hashes: Vec<u64>,
    /// Wall time (informational only).
    pub elapsed: Duration,
    /// DFS with pruning: distinct states in the visited table (fully explored states).
    pub states: u64,
    /// DFS with pruning: executions cut at a state already fully explored (counted in `pruned`).
    pub revisits: u64,
    /// DFS with pruning: the table reached its memory limit holding this many states; the run
    /// went on without pruning below states it had not recorded.
    pub prune_full_at: Option<u64>,
    /// The process's peak resident memory at the end of the run (`VmHWM`, bytes; informational).
    pub peak_memory: Option<u64>,
}

impl Report {
    pub(crate) fn new(strategy: Strategy) -> Self {
        Report {
            strategy,
            executions: 0,
            pruned: 0,
            exhausted: false,
            stopped: None,
            failures: Vec::new(),
            actors: 0,
            max_steps_seen: 0,
            pct: None,
            hashes: Vec::new(),
            elapsed: Duration::ZERO,
            states: 0,
            revisits: 0,
            prune_full_at: None,
            peak_memory: None,
        }
    }

    /// Whether the run is a proof within its bounds: nothing failed and the whole space was
    /// explored. Never for a run stopped by a budget, nor for random or PCT sampling (which
    /// never exhaust a space); a shard proves only its own slice.
    pub fn proved(&self) -> bool {
        self.exhausted && self.failures.is_empty()
    }

    /// "pruning table full at N states; continuing without pruning below new states", when the
    /// visited table reached its memory limit.
    pub fn prune_full_message(&self) -> Option<String> {
        self.prune_full_at.map(|n| {
            format!("pruning table full at {n} states; continuing without pruning below new states")
        })
    }

    /// Executions per second of wall time.
    pub fn rate(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} executions", self.strategy, self.executions)?;
        if self.pruned > 0 {
            write!(f, " ({} pruned)", self.pruned)?;
        }
        if self.states > 0 {
            write!(f, ", {} distinct states", self.states)?;
        }
        write!(f, ", {} failures", self.failures.len())?;
        if self.exhausted {
            write!(f, ", space exhausted")?;
        } else {
            write!(f, ", NOT exhausted")?;
        }
        if let Some(s) = self.stopped {
            write!(f, ", stopped: {s:?} budget")?;
        }
        if let Some(m) = self.prune_full_message() {
            write!(f, ", {m}")?;
        }
        if let Some(p) = self.pct {
            write!(
                f,
                ", PCT bound per run >= 1/(n*k^(d-1)) = {:.3e} (n={}, k={}, d={})",
                p.probability, p.n, p.k, p.d
            )?;
        }
        Ok(())
    }
}

/// Runs executions for a strategy: budgets, progress, failure recording (replay + hash check +
/// shrink).
pub(crate) struct Engine<'a, M: Model + ?Sized> {
    pub model: &'a M,
    pub cfg: &'a Config,
    pub exec: Executor,
    pub report: Report,
    start: Instant,
    progress: Progress,
    check_clock: bool,
    /// Signatures of the failures recorded so far: a failure like one already found is counted
    /// as an execution but not recorded again (nor shrunk again).
    signatures: Vec<String>,
}

impl<'a, M: Model + ?Sized> Engine<'a, M> {
    pub fn new(model: &'a M, cfg: &'a Config, strategy: Strategy) -> Self {
        let start = Instant::now();
        Engine {
            model,
            cfg,
            exec: Executor::new(cfg.max_steps),
            report: Report::new(strategy),
            start,
            progress: Progress::new(cfg.progress, start),
            check_clock: cfg.progress || cfg.max_time.is_some(),
            signatures: Vec::new(),
        }
    }

    /// Whether another execution may start; records why not.
    pub fn may_continue(&mut self, budget: Option<u64>) -> bool {
        if let Some(t) = &self.cfg.tally {
            t.set(self.report.executions, self.report.failures.len());
        }
        if self.report.failures.len() >= self.cfg.max_failures.max(1) {
            self.report.stopped = Some(Stop::Failures);
            return false;
        }
        if let Some(max) = budget {
            if self.report.executions >= max {
                self.report.stopped = Some(Stop::Executions);
                return false;
            }
        }
        if self.check_clock {
            let now = Instant::now();
            self.progress
                .tick(self.report.executions, self.report.failures.len(), now);
            if let Some(t) = self.cfg.max_time {
                if now.duration_since(self.start) >= t {
                    self.report.stopped = Some(Stop::Time);
                    return false;
                }
            }
        }
        true
    }

    /// One execution under `chooser`. Failures are recorded; the output is returned so the
    /// strategy can inspect it.
    pub fn run(&mut self, chooser: &mut dyn Chooser) -> RunOutput {
        let out = self.exec.run(self.model, chooser, false);
        self.report.actors = out.names.len();
        if !chooser.owned() {
            self.report.pruned += 1;
            return out;
        }
        match &out.end {
            End::Aborted => {
                self.report.pruned += 1;
                return out;
            }
            End::Diverged { step, message } => {
                // A strategy replaying its own prefix found different enabled actors: the model
                // is not deterministic. Report loudly as a failure.
                let kind = FailureKind::Nondeterminism {
                    message: format!("step {step}: {message}"),
                };
                self.report.executions += 1;
                self.record_failure(kind, out.preemptions, None);
                return out;
            }
            _ => {}
        }
        self.report.executions += 1;
        self.report.max_steps_seen = self.report.max_steps_seen.max(out.steps);
        if self.cfg.collect_hashes {
            self.report.hashes.push(out.hash);
        }
        if let End::Failed(kind) = &out.end {
            let signature = match &self.cfg.signature {
                Some(f) => f(kind, &out.names),
                None => kind.signature(&out.names),
            };
            if !self.cfg.distinct_failures || !self.signatures.contains(&signature) {
                self.signatures.push(signature);
                self.record_failure(kind.clone(), out.preemptions, Some(out.hash));
            }
        }
        out
    }

    fn record_failure(&mut self, kind: FailureKind, preemptions: usize, hash: Option<u64>) {
        let schedule = Schedule::new(
            self.report.actors,
            self.exec.schedule.iter().map(|&a| a as usize).collect(),
        );
        let execution = self.report.executions;
        // Replay with recording: gives the trace, and checks determinism (same hash).
        let mut chooser = ReplayChooser::new(&schedule.steps, ReplayMode::Strict);
        let again = self.exec.run(self.model, &mut chooser, true);
        let (kind, trace_out) = match hash {
            Some(h) if again.hash != h => (
                FailureKind::Nondeterminism {
                    message: format!(
                        "schedule {} gave trace {:016x} when found and {:016x} on replay",
                        schedule.encode(),
                        h,
                        again.hash
                    ),
                },
                again,
            ),
            _ => (kind, again),
        };
        let failure_in_trace = match &trace_out.end {
            End::Failed(k) => Some(k.clone()),
            _ => Some(kind.clone()),
        };
        let trace = Trace::new(
            trace_out.names.clone(),
            trace_out.recorded,
            failure_in_trace,
            &schedule,
            trace_out.preemptions,
            trace_out.hash,
        );
        let shrunk = if self.cfg.shrink && !matches!(kind, FailureKind::Nondeterminism { .. }) {
            crate::shrink::shrink_with(
                &mut self.exec,
                self.model,
                self.cfg,
                &schedule,
                &kind,
                &trace_out.names,
            )
        } else {
            None
        };
        self.report.failures.push(Failure {
            kind,
            schedule,
            trace,
            execution,
            preemptions,
            shrunk,
        });
    }

    pub fn finish(mut self, exhausted: bool) -> Report {
        self.progress.finish();
        self.report.exhausted = exhausted && self.report.stopped.is_none();
        self.report.elapsed = self.start.elapsed();
        self.report.peak_memory = crate::strategy::visited::peak_memory();
        self.report
    }
}

/// The entry point: a configuration plus the strategies.
#[derive(Clone, Debug, Default)]
pub struct Explorer {
    /// The configuration used by every strategy.
    pub config: Config,
}

impl Explorer {
    /// An explorer with this configuration.
    pub fn new(config: Config) -> Self {
        Explorer { config }
    }

    /// Explores `model` with `strategy` and the configuration's parameters (seed, PCT depth,
    /// bounds). `Strategy::Replay` replays `Config::schedule`: a one-execution report whose
    /// failure, if the schedule fails, is shrunk as any other.
    pub fn run<M: Model + ?Sized>(&self, model: &M, strategy: Strategy) -> Report {
        let c = &self.config;
        match strategy {
            Strategy::Dfs => self.dfs(model),
            Strategy::Random => self.random(model, c.seed),
            Strategy::Pct => self.pct(model, c.seed, c.pct_depth),
            Strategy::Replay => crate::strategy::replay::report(model, c),
        }
    }

    /// Exhaustive depth-first exploration under the preemption bound (see [`crate::strategy::dfs`]).
    pub fn dfs<M: Model + ?Sized>(&self, model: &M) -> Report {
        crate::strategy::dfs::explore(model, &self.config)
    }

    /// Seeded uniform random exploration (see [`crate::strategy::random`]).
    pub fn random<M: Model + ?Sized>(&self, model: &M, seed: u64) -> Report {
        crate::strategy::random::explore(model, &self.config, seed)
    }

    /// PCT with bug depth `depth` (see [`crate::strategy::pct`]).
    pub fn pct<M: Model + ?Sized>(&self, model: &M, seed: u64, depth: usize) -> Report {
        crate::strategy::pct::explore(model, &self.config, seed, depth)
    }

    /// Replays a schedule exactly; errors if it does not fit the program.
    pub fn replay<M: Model + ?Sized>(
        &self,
        model: &M,
        schedule: &Schedule,
    ) -> Result<crate::strategy::replay::Execution, crate::strategy::replay::Divergence> {
        crate::strategy::replay::replay(model, &self.config, schedule)
    }

    /// Replays a schedule leniently (see [`crate::strategy::replay::replay_lenient`]).
    pub fn replay_lenient<M: Model + ?Sized>(
        &self,
        model: &M,
        schedule: &Schedule,
    ) -> Result<crate::strategy::replay::Execution, crate::strategy::replay::Divergence> {
        crate::strategy::replay::replay_lenient(model, &self.config, schedule)
    }

    /// Replays a schedule twice and fails loudly (an `Err` naming both hashes) if the traces differ.
    pub fn check_determinism<M: Model + ?Sized>(
        &self,
        model: &M,
        schedule: &Schedule,
    ) -> Result<u64, String> {
        crate::strategy::replay::check_determinism(model, &self.config, schedule)
    }

    /// Shrinks a failing schedule (fewest steps, then fewest preemptions) so that it still fails
    /// with the same signature. `None` if the schedule does not fail.
    pub fn shrink<M: Model + ?Sized>(&self, model: &M, schedule: &Schedule) -> Option<Shrunk> {
        crate::shrink::shrink(model, &self.config, schedule)
    }
}
