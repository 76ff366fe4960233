//! `parallel::explore`: the shards of one exploration in threads, merged into one report that does
//! not depend on the thread count. Checked on generated programs against the one-thread run of
//! the same sharded search (`shard 0/1`), whose order the merge must reproduce exactly.

use pushrace_harness::parallel;
use pushrace_harness::rng::SplitMix64;
use pushrace_harness::{Config, Explorer, Footprint, Key, Report, Shard, Strategy, World};
use std::cell::RefCell;
use std::rc::Rc;

/// One step: bump key `k` (read-modify-write) or overwrite it with the actor's number.
#[derive(Clone, Copy, Debug)]
enum Op {
    Bump(u64),
    Set(u64),
}

/// A program whose final state fails its check in some interleavings: the failure message names
/// the state, so different failures have different signatures.
fn program(actors: Vec<Vec<Op>>, nkeys: usize, modulus: u64) -> impl Fn(&mut World) {
    move |w: &mut World| {
        let state = Rc::new(RefCell::new(vec![0u64; nkeys]));
        for (i, ops) in actors.iter().cloned().enumerate() {
            let st = state.clone();
            w.spawn(format!("p{i}"), move |ctx| async move {
                for op in ops {
                    let k = match op {
                        Op::Bump(k) | Op::Set(k) => k,
                    };
                    let key = [Key(k)];
                    let fp = match op {
                        Op::Bump(_) => Footprint::new(&key, &key),
                        Op::Set(_) => Footprint::write(&key),
                    };
                    ctx.step(format_args!("{op:?}"), fp).await;
                    let mut s = st.borrow_mut();
                    match op {
                        Op::Bump(k) => s[k as usize] = s[k as usize] * 3 + 1,
                        Op::Set(k) => s[k as usize] = i as u64 + 1,
                    }
                }
                Ok(())
            });
        }
        w.finally("state", move || {
            let s = state.borrow();
            let v = s
                .iter()
                .fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(*x));
            match v % modulus {
                0 => Err(format!("state {s:?}")),
                _ => Ok(()),
            }
        });
    }
}

fn generated(seed: u64) -> (Vec<Vec<Op>>, usize, u64) {
    let mut r = SplitMix64::new(seed);
    let nkeys = 1 + r.below(3) as usize;
    let actors = (0..2 + r.below(2))
        .map(|_| {
            (0..1 + r.below(3))
                .map(|_| match r.below(2) {
                    0 => Op::Bump(r.below(nkeys as u64)),
                    _ => Op::Set(r.below(nkeys as u64)),
                })
                .collect()
        })
        .collect();
    (actors, nkeys, 2 + r.below(4))
}

/// What must not depend on the thread count.
fn outcome(r: &Report) -> Vec<(String, String, String, String)> {
    r.failures
        .iter()
        .map(|f| {
            (
                f.schedule.encode(),
                f.trace.hash.clone(),
                f.kind.describe(&f.trace.actors),
                f.best_schedule().encode(),
            )
        })
        .collect()
}

fn base(reduction: bool, bound: Option<usize>) -> Config {
    Config {
        reduction,
        preemption_bound: bound,
        collect_hashes: true,
        ..Config::default()
    }
}

/// With every failure recorded (no early stop), the merged list is the one-thread run's list in
/// the same order: the merge's order is the search's. With the default budget of one failure, and
/// with distinct failures, the first failures agree, shrunk included.
#[test]
fn the_merge_is_the_one_thread_run_for_every_thread_count() {
    let mut failing = 0;
    for seed in 0..12 {
        let (actors, nkeys, modulus) = generated(seed);
        for (reduction, bound) in [(true, None), (true, Some(1)), (false, Some(2))] {
            for (max_failures, distinct, shrink) in [
                (usize::MAX, false, false),
                (1, false, true),
                (3, true, false),
            ] {
                // Built in each thread: a `Config` holds an `Rc` and is not `Sync`.
                let cfg = move || Config {
                    max_failures,
                    distinct_failures: distinct,
                    shrink,
                    ..base(reduction, bound)
                };
                let m = program(actors.clone(), nkeys, modulus);
                let one = Explorer::new(Config {
                    shard: Some(Shard { index: 0, count: 1 }),
                    ..cfg()
                })
                .dfs(&m);
                failing += !one.failures.is_empty() as usize;
                for jobs in [1, 2, 3] {
                    let build = || (program(actors.clone(), nkeys, modulus), cfg());
                    let r = parallel::explore(jobs, Strategy::Dfs, build);
                    let what = format!("seed {seed} reduction {reduction} bound {bound:?} jobs {jobs} max {max_failures}");
                    assert_eq!(outcome(&r), outcome(&one), "{what}");
                    assert_eq!(r.exhausted, one.exhausted, "{what}");
                    assert_eq!(r.stopped, one.stopped, "{what}");
                    if max_failures == usize::MAX {
                        assert_eq!(r.executions, one.executions, "{what}");
                        let (mut a, mut b) = (r.hashes.clone(), one.hashes.clone());
                        a.sort_unstable();
                        b.sort_unstable();
                        assert_eq!(a, b, "{what}");
                    }
                }
            }
        }
    }
    assert!(
        failing > 12,
        "the generated programs fail often enough to test the order ({failing})"
    );
}

/// The threads' executions add up to the shards run one by one, and a shard split in threads is
/// that shard.
#[test]
fn executions_sum_to_the_sharded_total_and_a_shard_splits_exactly() {
    let (actors, nkeys) = (
        vec![
            vec![Op::Bump(0), Op::Set(1)],
            vec![Op::Bump(1), Op::Bump(0)],
            vec![Op::Set(0)],
        ],
        2,
    );
    let cfg = || Config {
        max_failures: usize::MAX,
        shrink: false,
        ..base(true, None)
    };
    let build = || (program(actors.clone(), nkeys, 1 << 40), cfg());
    let separately: u64 = (0..2)
        .map(|k| {
            let c = Config {
                shard: Some(Shard { index: k, count: 2 }),
                ..cfg()
            };
            Explorer::new(c).dfs(&build().0).executions
        })
        .sum();
    let r = parallel::explore(2, Strategy::Dfs, build);
    assert_eq!(r.executions, separately);
    assert!(r.exhausted && r.failures.is_empty());
    let outer = || Config {
        shard: Some(Shard { index: 1, count: 2 }),
        ..cfg()
    };
    let alone = Explorer::new(outer()).dfs(&build().0);
    let split = parallel::explore(3, Strategy::Dfs, || (build().0, outer()));
    assert_eq!(split.executions, alone.executions);
    let sorted = |r: &Report| {
        let mut h = r.hashes.clone();
        h.sort_unstable();
        h
    };
    assert_eq!(sorted(&split), sorted(&alone));
}

/// Random and PCT: the merged failures are the one-thread run's, numbered as it numbers them.
#[test]
fn random_and_pct_merge_by_execution_index() {
    let (actors, nkeys, modulus) = generated(7);
    let cfg = || Config {
        max_executions: Some(60),
        max_failures: usize::MAX,
        shrink: false,
        seed: 5,
        ..base(true, None)
    };
    for strategy in [Strategy::Random, Strategy::Pct] {
        let one = Explorer::new(cfg()).run(&program(actors.clone(), nkeys, modulus), strategy);
        assert!(!one.failures.is_empty());
        let r = parallel::explore(3, strategy, || {
            (program(actors.clone(), nkeys, modulus), cfg())
        });
        assert_eq!(outcome(&r), outcome(&one), "{strategy:?}");
        let numbers = |r: &Report| r.failures.iter().map(|f| f.execution).collect::<Vec<_>>();
        assert_eq!(numbers(&r), numbers(&one), "{strategy:?}");
        assert_eq!(r.executions, one.executions);
    }
}
