//! Visited-state pruning: on generated programs it reaches the same final states and finds the
//! same failures as the search without it (with and without reduction, with and without a
//! preemption bound); on toys whose Mazurkiewicz traces are counted here by brute force, DPOR
//! without pruning runs exactly one execution per trace and with pruning fewer; a full table is
//! reported and changes no result.

mod common;
use common::*;
use pushrace_harness::{Config, Explorer, Report};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

type States = BTreeSet<Vec<u64>>;

fn cfg(bound: Option<usize>, reduction: bool, prune: bool) -> Config {
    Config {
        preemption_bound: bound,
        reduction,
        prune,
        shrink: false,
        max_failures: usize::MAX,
        distinct_failures: true,
        ..Config::default()
    }
}

/// Explores the program; its report, the final states reached and the failures' signatures.
fn run(
    progs: &[Vec<Op>],
    nkeys: usize,
    bad: Option<u64>,
    c: Config,
) -> (Report, States, BTreeSet<String>) {
    let sink = Rc::new(RefCell::new(BTreeSet::new()));
    let model = checked_program(progs.to_vec(), nkeys, sink.clone(), bad);
    let r = Explorer::new(c).dfs(&model);
    assert!(r.exhausted, "{r}");
    let failures = r
        .failures
        .iter()
        .map(|f| f.kind.signature(&f.trace.actors))
        .collect();
    let states = sink.borrow().clone();
    (r, states, failures)
}

#[test]
fn pruning_reaches_every_final_state_and_failure() {
    // The reference is every interleaving within the bound (no reduction, no pruning). Pruning
    // without reduction must reach exactly its final states and failures. With reduction and no
    // bound, exactly its final states (a final state is a function of the trace). Otherwise at
    // least what the same search without pruning reaches, not always exactly: bounded DPOR (the
    // Coons-Musuvathi-McKinley rule) is not complete by itself (seed 121, bound 2: without
    // pruning it misses the final state [13, 1] that every-interleaving reaches; pruning's extra
    // backtrack choices find it), and which invariant an execution breaks first depends on which
    // interleaving of a trace DPOR runs (the `World::invariant` caveat).
    // PUSHRACE_PRUNE_SEEDS=N runs more generated programs (the default keeps the test quick).
    let seeds = std::env::var("PUSHRACE_PRUNE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(130u64);
    let mut saved = 0i64;
    let mut failures_seen = 0;
    for seed in 0..seeds {
        let (progs, nkeys) = random_program(seed);
        for bad in [None, Some(2)] {
            for bound in [None, Some(1), Some(2)] {
                let what = format!("seed {seed} bad {bad:?} bound {bound:?}: {progs:?}");
                let (_, all, fall) = run(&progs, nkeys, bad, cfg(bound, false, false));
                let (_, s, f) = run(&progs, nkeys, bad, cfg(bound, false, true));
                assert_eq!((&all, &fall), (&s, &f), "no reduction, {what}");
                let (plain, s0, f0) = run(&progs, nkeys, bad, cfg(bound, true, false));
                let (pruned, s1, f1) = run(&progs, nkeys, bad, cfg(bound, true, true));
                if bound.is_none() && bad.is_none() {
                    assert_eq!(all, s1, "reduction, final states, {what}");
                }
                assert!(s1.is_superset(&s0), "reduction, final states, {what}");
                assert!(f1.is_superset(&f0), "reduction, failures, {what}");
                assert!(pruned.states > 0, "{what}: {pruned}");
                saved += plain.executions as i64 - pruned.executions as i64;
                failures_seen += f0.len();
            }
        }
    }
    assert!(
        saved > 0,
        "pruning never saved an execution: the test would not notice a no-op"
    );
    assert!(
        failures_seen > 0,
        "no program failed: the failure comparison compared nothing"
    );
}

#[test]
fn pruning_with_narrowed_footprints_reaches_every_final_state_and_failure() {
    // Collectors that narrow their footprints once they ran (`Sched::narrow`, a read of
    // `Key::ANY`): the summaries at cuts carry the narrowed keys, and a cut must still add every
    // backtrack point the continuation below it would have. Reference: every interleaving.
    for seed in 0..80 {
        let (progs, nkeys) = random_collecting_program(seed, false);
        for bad in [None, Some(2)] {
            let what = format!("seed {seed} bad {bad:?}: {progs:?}");
            // As above: exactly every interleaving's final states with no failure; with
            // failures, at least what DPOR without pruning finds.
            let (_, all, _) = run(&progs, nkeys, bad, cfg(None, false, false));
            let (_, s0, f0) = run(&progs, nkeys, bad, cfg(None, true, false));
            let (_, s, f) = run(&progs, nkeys, bad, cfg(None, true, true));
            assert!(s.is_superset(&s0) && f.is_superset(&f0), "{what}");
            if bad.is_none() {
                assert_eq!(all, s, "{what}");
            }
        }
    }
}

#[test]
fn pruning_keeps_every_final_state_of_longer_programs() {
    // Deeper prefixes (3 actors of 4 steps over 3 keys) exercise the backtracking at cuts far
    // from the root; reference: DPOR without pruning (itself held to full enumeration above
    // and in dfs.rs).
    let mut saved = 0i64;
    for seed in 0..12u64 {
        let mut g = pushrace_harness::rng::SplitMix64::new(1000 + seed);
        let progs: Vec<Vec<Op>> = (0..3)
            .map(|_| {
                (0..4)
                    .map(|_| match (g.below(3), g.below(3)) {
                        (0, k) => Op::Read(k),
                        (1, k) => Op::Write(k),
                        (_, k) => Op::Bump(k),
                    })
                    .collect()
            })
            .collect();
        for bound in [None, Some(2)] {
            let (plain, s0, _) = run(&progs, 3, None, cfg(bound, true, false));
            let (pruned, s1, _) = run(&progs, 3, None, cfg(bound, true, true));
            match bound {
                None => assert_eq!(s0, s1, "seed {seed}: {progs:?}"),
                Some(_) => assert!(s1.is_superset(&s0), "seed {seed} bound 2: {progs:?}"),
            }
            saved += plain.executions as i64 - pruned.executions as i64;
        }
    }
    assert!(saved > 0, "pruning never saved an execution");
}

/// The number of Mazurkiewicz traces of the programs, by brute force: every interleaving is
/// mapped to its lexicographic normal form (repeatedly the lowest actor whose next step has no
/// unplaced dependent or same-actor predecessor), and the distinct forms are counted.
fn traces(progs: &[Vec<Op>]) -> usize {
    fn keys(op: Op) -> (Option<u64>, Option<u64>) {
        match op {
            Op::Read(k) => (Some(k), None),
            Op::Write(k) => (None, Some(k)),
            Op::Bump(k) => (Some(k), Some(k)),
            Op::Collect | Op::CollectBlind => unreachable!("the toys have no collector"),
        }
    }
    fn dependent(a: Op, b: Op) -> bool {
        let ((ra, wa), (rb, wb)) = (keys(a), keys(b));
        let meets = |x: Option<u64>, y: Option<u64>| x.is_some() && x == y;
        meets(wa, wb) || meets(wa, rb) || meets(ra, wb)
    }
    fn normal(seq: &[(usize, Op)]) -> Vec<usize> {
        let mut placed = vec![false; seq.len()];
        let mut out = Vec::with_capacity(seq.len());
        while out.len() < seq.len() {
            let ready = (0..seq.len()).filter(|&i| !placed[i]).filter(|&i| {
                (0..i)
                    .all(|j| placed[j] || (seq[j].0 != seq[i].0 && !dependent(seq[j].1, seq[i].1)))
            });
            let next = ready.min_by_key(|&i| seq[i].0).expect("a step is ready");
            placed[next] = true;
            out.push(seq[next].0);
        }
        out
    }
    fn all(
        progs: &[Vec<Op>],
        pos: &mut Vec<usize>,
        seq: &mut Vec<(usize, Op)>,
        out: &mut BTreeSet<Vec<usize>>,
    ) {
        let mut any = false;
        for a in 0..progs.len() {
            if pos[a] < progs[a].len() {
                any = true;
                seq.push((a, progs[a][pos[a]]));
                pos[a] += 1;
                all(progs, pos, seq, out);
                pos[a] -= 1;
                seq.pop();
            }
        }
        if !any {
            out.insert(normal(seq));
        }
    }
    let mut out = BTreeSet::new();
    all(progs, &mut vec![0; progs.len()], &mut Vec::new(), &mut out);
    out.len()
}

/// Two pushes in miniature: resolve the source index (key 0), create the shared tmp image (1),
/// write the reduced index (2), read the tmp image and the reduced index, upload to the
/// registry (its own key), read the reduced index again, delete the tmp image, and a GC's sweep
/// of the reduced index. 9 steps each: C(18, 9) = 48 620 interleavings.
fn two_push_toy() -> Vec<Vec<Op>> {
    (0..2)
        .map(|i| {
            use Op::*;
            vec![
                Read(0),
                Write(1),
                Write(2),
                Read(1),
                Read(2),
                Bump(3 + i),
                Read(2),
                Write(1),
                Bump(2),
            ]
        })
        .collect()
}

#[test]
fn dpor_runs_one_execution_per_trace_and_pruning_fewer() {
    use Op::*;
    let toys: Vec<(&str, Vec<Vec<Op>>, usize)> = vec![
        ("two-push toy", two_push_toy(), 5),
        (
            "three actors bump one key twice",
            vec![vec![Bump(0), Bump(0)]; 3],
            1,
        ),
        (
            "three actors bump two keys",
            vec![vec![Bump(0), Bump(1)]; 3],
            2,
        ),
    ];
    for (name, progs, nkeys) in toys {
        let count = traces(&progs) as u64;
        let (plain, s0, _) = run(&progs, nkeys, None, cfg(None, true, false));
        assert_eq!(plain.executions, count, "{name}: {plain}");
        let (pruned, s1, _) = run(&progs, nkeys, None, cfg(None, true, true));
        assert_eq!(s0, s1, "{name}");
        assert!(
            pruned.executions < count,
            "{name}: {count} traces, {pruned}"
        );
        assert!(pruned.revisits > 0, "{name}: {pruned}");
        println!("{name}: {count} traces; DPOR {plain}; with pruning {pruned}");
    }
    // The counter itself, on shapes whose count is known in closed form: all steps dependent
    // gives every interleaving (2 actors of 2: 4!/(2!2!) = 6); all independent gives one.
    assert_eq!(traces(&[vec![Bump(0), Bump(0)], vec![Bump(0), Bump(0)]]), 6);
    assert_eq!(traces(&[vec![Bump(0), Bump(0)], vec![Bump(1), Read(2)]]), 1);
}

#[test]
fn a_full_table_is_reported_and_changes_no_result() {
    let progs = two_push_toy();
    let (plain, s0, _) = run(&progs, 5, None, cfg(None, true, false));
    for limit in [0, 4096] {
        let c = Config {
            prune_memory: Some(limit),
            ..cfg(None, true, true)
        };
        let (r, s1, _) = run(&progs, 5, None, c);
        assert_eq!(s0, s1, "limit {limit}");
        let full = r.prune_full_at.expect("the table filled");
        assert_eq!(full, r.states, "limit {limit}: {r}");
        assert!(r.to_string().contains(&format!(
            "pruning table full at {full} states; continuing without pruning below new states"
        )));
        assert!(
            r.executions <= plain.executions + r.revisits,
            "limit {limit}"
        );
    }
}

/// `--jobs N` with pruning: the threads share one visited table, meeting every 3 steps here so
/// that states cross between threads many times in these small programs
/// (`strategy::epochs`). They reach the final states and failures the one-thread search
/// without pruning reaches (and with no bound and no failure exactly every interleaving's
/// final states); the whole report is the same on every run, however the threads were
/// scheduled; and meetings do change what is cut (against the same threads never meeting).
#[test]
fn threads_sharing_one_table_reach_every_final_state_and_repeat_exactly() {
    use pushrace_harness::{parallel, Strategy};
    use std::sync::{Arc, Mutex};
    let (mut saved, mut crossed) = (0i64, 0);
    for seed in 0..80 {
        let (progs, nkeys) = random_program(seed);
        for (bad, bound, jobs) in [(None, None, 2), (Some(2), None, 3), (None, Some(2), 2)] {
            let what = format!("seed {seed} bad {bad:?} bound {bound:?} jobs {jobs}: {progs:?}");
            let (_, all, _) = run(&progs, nkeys, bad, cfg(bound, false, false));
            let (_, s0, f0) = run(&progs, nkeys, bad, cfg(bound, true, false));
            let shared = || Config {
                prune_epoch_steps: 3,
                collect_hashes: true,
                ..cfg(bound, true, true)
            };
            let mut first = None;
            for _ in 0..4 {
                let sink = Arc::new(Mutex::new(States::new()));
                let build = || {
                    (
                        program_into(progs.clone(), nkeys, sink.clone(), bad),
                        shared(),
                    )
                };
                let r = parallel::explore(jobs, Strategy::Dfs, build);
                assert!(r.exhausted, "{what}: {r}");
                let s = sink.lock().unwrap().clone();
                let f: BTreeSet<String> = r
                    .failures
                    .iter()
                    .map(|f| f.kind.signature(&f.trace.actors))
                    .collect();
                assert!(s.is_superset(&s0) && f.is_superset(&f0), "{what}");
                if bound.is_none() && bad.is_none() {
                    assert_eq!(s, all, "{what}");
                }
                let mut hashes = r.hashes.clone();
                hashes.sort_unstable();
                let schedules: Vec<String> =
                    r.failures.iter().map(|f| f.schedule.encode()).collect();
                let key = (
                    r.executions,
                    r.pruned,
                    r.states,
                    r.revisits,
                    hashes,
                    schedules,
                );
                match &first {
                    None => first = Some(key),
                    Some(k) => assert_eq!(k, &key, "{what}: a run differed"),
                }
            }
            // The same threads never meeting (each table joins the shared one only at its end):
            // with meetings, some run must cut differently, or sharing would be untested.
            let lone = || Config {
                prune_epoch_steps: u64::MAX,
                ..shared()
            };
            let sink = Arc::new(Mutex::new(States::new()));
            let build = || {
                (
                    program_into(progs.clone(), nkeys, sink.clone(), bad),
                    lone(),
                )
            };
            let r = parallel::explore(jobs, Strategy::Dfs, build);
            let (executions, _, _, revisits, _, _) = first.expect("ran");
            saved += (r.executions + r.revisits) as i64 - (executions + revisits) as i64;
            crossed += (r.revisits != revisits) as usize;
        }
    }
    println!("sharing saved {saved} executions over threads that never meet; {crossed} runs cut differently");
    assert!(
        crossed > 0,
        "meetings never changed a cut: the test would not notice threads that share nothing"
    );
}
