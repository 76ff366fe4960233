//! Every core: the shards of one exploration run in parallel threads of one process and merge into
//! one report that does not depend on how many threads ran it.
//!
//! `jobs` threads explore the shards `K/N` of [`Shard`] (`0/jobs .. jobs-1/jobs`, or within an
//! outer shard `K/N` the shards `K + i·N / N·jobs`, whose union is exactly `K/N`: a DFS prefix
//! hash `h` has `h mod N·jobs ≡ K (mod N)` exactly when `h mod N = K`, and a random or PCT
//! execution index likewise). Each thread builds its own model from the factory (models hold `Rc`s
//! and are not `Send`). Without pruning nothing a thread computes depends on another; with it the
//! threads share one visited table, each seeing the others' states at fixed epochs of its own
//! steps (`Config::prune_epoch_steps`, [`crate::strategy::epochs`]), so what a thread sees of
//! the others is fixed by the epochs, not by timing. Either way each shard's report is the same whatever the
//! scheduling of the threads, and the merge is a function of those reports:
//!
//! * executions, pruned, trace hashes and pruning's revisits are summed (concatenated in shard
//!   order); pruning's states are the shared table's;
//! * exhausted: every shard exhausted; stopped: by the failure budget when the merged failures
//!   reach it, else the first shard's reason;
//! * failures: the shards' failures merged in exploration order, then kept as one thread would
//!   have kept them (the first, and with `distinct_failures` the first of each new signature, up
//!   to `max_failures`). For DFS a shard explores its executions in the order the whole run
//!   `shard 0/1` does (the trunk above the first context switch keeps every choice in every
//!   shard, so the subtrees below it are explored identically), and two executions of different
//!   shards part at a trunk node, whose children are explored as `Dfs::advance` takes them: the
//!   previous step's actor first (the choice made on arriving), then by actor index. Random and
//!   PCT order by execution index. So the first failure is the one `--jobs 1` finds, and the
//!   verdict, the failure shown and its trace hash do not depend on `jobs`. With pruning, what
//!   is cut depends on which thread recorded a state first (by the epochs, so still the same on
//!   every run with the same `jobs`): the verdict does not depend on `jobs`, the counts and
//!   which failing schedule of a failure is found may.
//!
//! A DFS execution budget is split exactly over the threads (random and PCT shards already take
//! their share of the execution indices). `Failure::execution` of a DFS failure counts within its
//! shard; of a random or PCT failure it is the execution's global number.

use crate::executor::Model;
use crate::explorer::{Config, Explorer, Failure, Report, Shard, Stop};
use crate::progress::Progress;
use crate::strategy::epochs::SharedTable;
use crate::strategy::Strategy;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One shard's counts, published after each execution for the combined progress line.
#[derive(Debug, Default)]
pub struct Tally {
    executions: AtomicU64,
    failures: AtomicU64,
}

impl Tally {
    pub(crate) fn set(&self, executions: u64, failures: usize) {
        self.executions.store(executions, Atomic::Relaxed);
        self.failures.store(failures as u64, Atomic::Relaxed);
    }
}

/// The threads `jobs` asks for by default: the machine's cores (1 when unknown).
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The shards `jobs` threads explore: of the whole run (`within` None), or of the shard `within`.
pub fn shards(jobs: u32, within: Option<Shard>) -> Vec<Shard> {
    let outer = within.unwrap_or(Shard { index: 0, count: 1 });
    let count = outer.count.saturating_mul(jobs.max(1));
    (0..jobs.max(1))
        .map(|i| Shard {
            index: outer.index + i * outer.count,
            count,
        })
        .collect()
}

/// Explores with `strategy` in `jobs` threads (see the module doc). `build` gives each thread its
/// model and configuration (the configuration's own shard, if any, is the outer shard `within`;
/// its `progress` asks for one combined progress line).
pub fn explore<M, F>(jobs: u32, strategy: Strategy, build: F) -> Report
where
    M: Model,
    F: Fn() -> (M, Config) + Sync,
{
    let start = Instant::now();
    let (_, cfg) = build();
    let shards = shards(jobs, cfg.shard);
    let tallies: Vec<Arc<Tally>> = shards.iter().map(|_| Arc::default()).collect();
    let n = shards.len() as u64;
    // DFS: the budget split exactly (shard i takes one more while the remainder lasts).
    let budget = |i: u64| match strategy {
        Strategy::Dfs => cfg.max_executions.map(|b| b / n + u64::from(i < b % n)),
        _ => cfg.max_executions,
    };
    // DFS with pruning: one visited table, shared at deterministic epochs (`strategy::epochs`).
    let visited = (strategy == Strategy::Dfs && cfg.prune && shards.len() > 1).then(|| {
        let limit = cfg
            .prune_memory
            .unwrap_or_else(crate::strategy::visited::default_limit);
        Arc::new(SharedTable::new(shards.len(), limit))
    });
    // Each thread holds a sender; `recv` returns when the last one is gone.
    let (finished, until_finished) = std::sync::mpsc::channel::<()>();
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .zip(&tallies)
            .enumerate()
            .map(|(i, (&shard, tally))| {
                let budget = budget(i as u64);
                let build = &build;
                let tally = tally.clone();
                let visited = visited.clone().map(|v| (v, i));
                let finished = finished.clone();
                scope.spawn(move || {
                    // Dropped when the thread ends, however: the watch wakes up at once.
                    let _finished = finished;
                    let (model, mut c) = build();
                    c.shard = Some(shard);
                    c.visited = visited;
                    c.progress = false;
                    c.max_executions = budget;
                    c.tally = Some(tally);
                    Explorer::new(c).run(&model, strategy)
                })
            })
            .collect();
        drop(finished);
        watch(&cfg, start, &tallies, &until_finished);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut merged = merge(&cfg, strategy, &shards, reports);
    if let Some(v) = visited {
        // Every thread has ended and let go of it (a leaked table would be kept for good).
        let v = Arc::into_inner(v).expect("the threads hold no shared table after they end");
        (merged.states, merged.prune_full_at) = v.counts();
    }
    merged.elapsed = start.elapsed();
    merged
}

/// The one progress line over every shard, until every thread dropped its end of `finished`.
fn watch(cfg: &Config, start: Instant, tallies: &[Arc<Tally>], finished: &Receiver<()>) {
    let mut progress = Progress::new(cfg.progress, start);
    while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_millis(50)) {
        let sum = |f: fn(&Tally) -> u64| tallies.iter().map(|t| f(t)).sum::<u64>();
        let executions = sum(|t| t.executions.load(Atomic::Relaxed));
        let failures = sum(|t| t.failures.load(Atomic::Relaxed));
        progress.tick(executions, failures as usize, Instant::now());
    }
    progress.finish();
}

/// The shards' reports as one (see the module doc); `shards[i]` produced `reports[i]`.
pub fn merge(cfg: &Config, strategy: Strategy, shards: &[Shard], reports: Vec<Report>) -> Report {
    let mut out = Report::new(strategy);
    out.exhausted = !reports.is_empty() && reports.iter().all(|r| r.exhausted);
    let mut lists = Vec::new();
    for (r, shard) in reports.into_iter().zip(shards) {
        out.executions += r.executions;
        out.pruned += r.pruned;
        out.actors = out.actors.max(r.actors);
        out.max_steps_seen = out.max_steps_seen.max(r.max_steps_seen);
        out.pct = out.pct.or(r.pct);
        out.hashes.extend(r.hashes);
        // With one thread per shard pruning alone (a `Report` from elsewhere), states are summed
        // (a state two reached counts twice) and the first table to fill is reported; a shared
        // table's counts replace these (`explore`). Memory is the process's.
        out.states += r.states;
        out.revisits += r.revisits;
        out.prune_full_at = match (out.prune_full_at, r.prune_full_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.peak_memory = out.peak_memory.max(r.peak_memory);
        out.stopped = out.stopped.or(r.stopped.filter(|s| *s != Stop::Failures));
        let mut failures = r.failures;
        if strategy != Strategy::Dfs {
            // The e-th execution of shard K/N is the execution K + (e-1)·N of the whole run.
            for f in &mut failures {
                f.execution = shard.index as u64 + (f.execution - 1) * shard.count as u64 + 1;
            }
        }
        lists.push(failures);
    }
    out.failures = keep_as_one_thread(cfg, merge_in_order(strategy, lists));
    if out.failures.len() >= cfg.max_failures.max(1) {
        out.stopped = Some(Stop::Failures);
    }
    if out.stopped.is_some() {
        out.exhausted = false;
    }
    out
}

/// Each list is in exploration order; their merge, in exploration order.
fn merge_in_order(strategy: Strategy, mut lists: Vec<Vec<Failure>>) -> Vec<Failure> {
    let mut heads: Vec<std::vec::IntoIter<Failure>> = lists.drain(..).map(Vec::into_iter).collect();
    let mut next: Vec<Option<Failure>> = heads.iter_mut().map(Iterator::next).collect();
    let mut out = Vec::new();
    loop {
        let first = (0..next.len())
            .filter(|&i| next[i].is_some())
            .min_by(|&a, &b| {
                let (fa, fb) = (next[a].as_ref().unwrap(), next[b].as_ref().unwrap());
                explored_before(strategy, fa, fb).then(a.cmp(&b))
            });
        let Some(i) = first else { return out };
        out.push(next[i].take().expect("chosen among the present"));
        next[i] = heads[i].next();
    }
}

/// Exploration order of two failures found by different shards (see the module doc).
pub fn explored_before(strategy: Strategy, a: &Failure, b: &Failure) -> Ordering {
    if strategy != Strategy::Dfs {
        return a.execution.cmp(&b.execution);
    }
    dfs_order(&a.schedule.steps, &b.schedule.steps)
}

/// DFS order of two schedules of different shards: at the step where they part, the previous
/// step's actor first, then by actor index.
pub fn dfs_order(a: &[usize], b: &[usize]) -> Ordering {
    let Some(d) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    let prev = d.checked_sub(1).map(|p| a[p]);
    let key = |c: usize| (Some(c) != prev, c);
    key(a[d]).cmp(&key(b[d]))
}

/// The failures one thread exploring in this order would have recorded: with
/// `distinct_failures` only the first of each signature, and at most `max_failures`.
fn keep_as_one_thread(cfg: &Config, failures: Vec<Failure>) -> Vec<Failure> {
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for f in failures {
        if kept.len() >= cfg.max_failures.max(1) {
            break;
        }
        let names = &f.trace.actors;
        let signature = match &cfg.signature {
            Some(s) => s(&f.kind, names),
            None => f.kind.signature(names),
        };
        if cfg.distinct_failures && seen.contains(&signature) {
            continue;
        }
        seen.push(signature);
        kept.push(f);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_shards_partition_the_outer_shard() {
        let within = Shard { index: 1, count: 3 };
        let s = shards(4, Some(within));
        assert_eq!(s.iter().map(|x| x.index).collect::<Vec<_>>(), [1, 4, 7, 10]);
        assert!(s.iter().all(|x| x.count == 12));
        // Every residue mod 12 that is 1 mod 3 is taken once: the union is exactly 1/3.
        for h in 0..120u32 {
            let owners = s.iter().filter(|x| h % x.count == x.index).count();
            assert_eq!(owners, (h % 3 == 1) as usize, "h = {h}");
        }
        assert_eq!(
            shards(2, None),
            [Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 }]
        );
    }

    #[test]
    fn dfs_order_takes_the_running_actor_first_then_by_index() {
        // Parting at step 2 after actor 1: 1 (no switch) comes first, then 0, then 2.
        assert_eq!(dfs_order(&[0, 1, 1], &[0, 1, 0]), Ordering::Less);
        assert_eq!(dfs_order(&[0, 1, 0], &[0, 1, 2]), Ordering::Less);
        assert_eq!(dfs_order(&[0, 1, 2], &[0, 1, 1]), Ordering::Greater);
        // At the root there is no previous actor: by index.
        assert_eq!(dfs_order(&[1, 0], &[0, 1]), Ordering::Greater);
    }
}
