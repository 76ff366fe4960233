//! DFS: preemption bound, exact counts with and without partial-order reduction, and that
//! reduction loses no reachable final state.

mod common;
use common::*;
use pushrace_harness::{Config, Explorer, FailureKind, Key};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

fn cfg(bound: Option<usize>, reduction: bool) -> Config {
    Config {
        preemption_bound: bound,
        reduction,
        shrink: true,
        ..Config::default()
    }
}

#[test]
fn lost_update_needs_one_preemption_and_shrinks_to_four_steps() {
    // With no preemption an actor always runs to completion (each has only its own two steps),
    // so the counter can never lose an update: bound 0 must explore everything and find nothing.
    for reduction in [false, true] {
        let r = Explorer::new(cfg(Some(0), reduction)).dfs(&lost_update(true));
        assert!(r.failures.is_empty(), "{r}");
        assert!(r.exhausted);
    }
    for reduction in [false, true] {
        let r = Explorer::new(cfg(Some(1), reduction)).dfs(&lost_update(true));
        assert_eq!(r.failures.len(), 1, "{r}");
        let f = &r.failures[0];
        assert!(
            matches!(f.kind, FailureKind::Invariant { .. }),
            "{:?}",
            f.kind
        );
        assert_eq!(f.preemptions, 1);
        // DFS runs the noise actor (index 0) first, so the failure as found carries its 3 steps.
        assert_eq!(f.schedule.len(), 7, "{}", f.trace.to_text());
        let s = f.shrunk.as_ref().expect("shrunk");
        // Minimal: a lost update needs both reads before the second write (otherwise the second
        // writer saw the first write), i.e. read, read, write, write: 4 steps, and no failing
        // schedule is shorter because the invariant can only break at a second write. One
        // preemption is also the minimum (bound 0 finds nothing, above), and 4 steps with 1
        // preemption is reachable: a reads, b preempts it, b reads and writes (b finishes,
        // so switching back to a is free), a writes.
        assert_eq!(
            (s.steps_before, s.steps_after),
            (7, 4),
            "{}",
            s.trace.to_text()
        );
        assert_eq!((s.preemptions_before, s.preemptions_after), (1, 1));
        assert_eq!(s.trace.steps.iter().filter(|st| st.preemption).count(), 1);
        assert_eq!(
            s.kind.signature(&s.trace.actors),
            f.kind.signature(&f.trace.actors)
        );
        assert!(
            !s.trace.actors.is_empty() && s.trace.steps.iter().all(|st| st.actor != 0),
            "noise removed"
        );
    }
}

#[test]
fn independence_counts() {
    // Disjoint footprints: every interleaving is equivalent. Without reduction (and no bound)
    // DFS enumerates every interleaving: (k·m)!/(m!)^k. With reduction there are no races,
    // so exactly one execution.
    let disjoint: fn(usize, usize) -> Key = |i, _| Key(i as u64);
    for (k, m) in [(2, 3), (3, 2), (3, 3), (4, 2)] {
        let model = grid(k, m, disjoint, true);
        let full = Explorer::new(cfg(None, false)).dfs(&model);
        assert_eq!(full.executions, multinomial(k, m), "k={k} m={m}");
        assert!(full.exhausted);
        let reduced = Explorer::new(cfg(None, true)).dfs(&model);
        assert_eq!(reduced.executions, 1, "k={k} m={m}: {reduced}");
        assert_eq!(reduced.pruned, 0);
    }
    assert_eq!(multinomial(3, 2), 90);
    assert_eq!(multinomial(3, 3), 1680);
}

#[test]
fn full_dependence_counts() {
    // Every step writes the same key: no two interleavings are equivalent, so an optimal
    // reduction explores every one of them, once: the multinomial count, no more, no less.
    let same: fn(usize, usize) -> Key = |_, _| Key(7);
    for (k, m) in [(2, 3), (3, 2), (2, 4), (3, 3)] {
        let r = Explorer::new(cfg(None, true)).dfs(&grid(k, m, same, true));
        assert_eq!(r.executions, multinomial(k, m), "k={k} m={m}: {r}");
        assert!(r.exhausted);
    }
    // Reads of one key commute: one execution.
    let r = Explorer::new(cfg(None, true)).dfs(&grid(3, 2, same, false));
    assert_eq!(r.executions, 1);
}

#[test]
fn preemption_bound_counts() {
    // Two actors of 2 steps, no reduction; the 6 interleavings and their preemptions (switching
    // away from an actor that could continue; leaving a finished actor is free):
    // aabb 0, bbaa 0, abba 1, baab 1, abab 2, baba 2. So bounds 0, 1, 2 give 2, 4, 6.
    let model = grid(2, 2, |i, _| Key(i as u64), true);
    let counts: Vec<u64> = (0..3)
        .map(|b| Explorer::new(cfg(Some(b), false)).dfs(&model).executions)
        .collect();
    assert_eq!(counts, vec![2, 4, 6]);
}

#[test]
fn reduction_reaches_every_final_state() {
    // Soundness check of the DPOR: on generated programs whose final state depends on the
    // order of conflicting steps, the set of final states reached with reduction must equal the
    // set reached by enumerating every interleaving, while exploring no more executions.
    let mut saved = 0;
    for seed in 0..40 {
        let (progs, nkeys) = random_program(seed);
        let full_states = Rc::new(RefCell::new(BTreeSet::new()));
        let red_states = Rc::new(RefCell::new(BTreeSet::new()));
        let full = Explorer::new(cfg(None, false)).dfs(&program(
            progs.clone(),
            nkeys,
            full_states.clone(),
        ));
        let red =
            Explorer::new(cfg(None, true)).dfs(&program(progs.clone(), nkeys, red_states.clone()));
        assert_eq!(
            *full_states.borrow(),
            *red_states.borrow(),
            "seed {seed}: {progs:?}"
        );
        assert!(red.executions <= full.executions);
        assert!(red.executions >= red_states.borrow().len() as u64);
        saved += full.executions - red.executions;
    }
    assert!(
        saved > 0,
        "reduction never pruned anything: the test would not notice a no-op DPOR"
    );
}

#[test]
fn narrowed_footprints_reach_every_final_state() {
    // `Sched::narrow`: a collector declares that it writes every key, and once it ran says what
    // it did (read every key through `Key::ANY`, wrote what it zeroed); DPOR takes its races
    // from that. On generated programs with collectors, reduction must still reach every final
    // state that enumerating every interleaving reaches; and a collector that narrows to a lie
    // (read nothing) must make it miss some, or this test could not notice a wrong narrowing.
    let mut missed_by_the_lie = 0;
    for seed in 0..60 {
        for blind in [false, true] {
            let (progs, nkeys) = random_collecting_program(seed, blind);
            let full_states = Rc::new(RefCell::new(BTreeSet::new()));
            let red_states = Rc::new(RefCell::new(BTreeSet::new()));
            let full = program(progs.clone(), nkeys, full_states.clone());
            Explorer::new(cfg(None, false)).dfs(&full);
            let red = program(progs.clone(), nkeys, red_states.clone());
            let r = Explorer::new(cfg(None, true)).dfs(&red);
            assert!(r.exhausted);
            if blind {
                missed_by_the_lie += (*full_states.borrow() != *red_states.borrow()) as u32;
            } else {
                assert_eq!(
                    *full_states.borrow(),
                    *red_states.borrow(),
                    "seed {seed}: {progs:?}"
                );
            }
        }
    }
    assert!(
        missed_by_the_lie > 0,
        "a blind collector never misled DPOR: the test has no teeth"
    );
}

#[test]
fn reduction_with_a_bound_keeps_the_lost_update() {
    // DPOR under a preemption bound must still find what the unreduced bounded search finds.
    for bound in [1, 2] {
        let r = Explorer::new(Config {
            preemption_bound: Some(bound),
            shrink: false,
            ..Config::default()
        })
        .dfs(&lost_update(false));
        assert_eq!(r.failures.len(), 1);
    }
}
