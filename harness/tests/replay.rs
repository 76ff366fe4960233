//! Replay, determinism, traces, budgets, panics, sharding.

mod common;
use common::*;
use pushrace_harness::{
    ActorError, Config, Explorer, FailureKind, Footprint, Key, Report, Schedule, Shard, Stop, World,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

fn multiset(hashes: &[u64]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for h in hashes {
        *m.entry(*h).or_insert(0) += 1;
    }
    m
}

fn check_replays(model: &dyn Fn(&mut World), r: &Report) {
    assert!(!r.failures.is_empty(), "{r}");
    let ex = Explorer::default();
    for f in &r.failures {
        // Through the printed string, as a user would.
        let s = Schedule::parse(&f.schedule.encode()).unwrap();
        let again = ex.replay(model, &s).unwrap();
        assert_eq!(again.trace.hash, f.trace.hash, "{}", f.trace.to_text());
        assert_eq!(again.failure.as_ref(), Some(&f.kind));
        if let Some(sh) = &f.shrunk {
            let again = ex
                .replay(model, &Schedule::parse(&sh.schedule.encode()).unwrap())
                .unwrap();
            assert_eq!(again.trace.hash, sh.trace.hash);
        }
        ex.check_determinism(model, &s).unwrap();
    }
}

#[test]
fn every_failure_of_every_strategy_replays_to_its_hash() {
    let model = lost_update(true);
    let many = Config {
        max_failures: 5,
        preemption_bound: None,
        reduction: false,
        ..Config::default()
    };
    check_replays(&model, &Explorer::new(many.clone()).dfs(&model));
    check_replays(
        &model,
        &Explorer::new(Config {
            reduction: true,
            ..many.clone()
        })
        .dfs(&model),
    );
    check_replays(&model, &Explorer::new(many.clone()).random(&model, 7));
    check_replays(&model, &Explorer::new(many.clone()).pct(&model, 7, 2));
    let r = Explorer::new(many).random(&model, 7);
    assert_eq!(
        r.failures.len(),
        5,
        "distinct failing executions are all reported"
    );
}

#[test]
fn mangled_schedules_are_clear_errors() {
    let model = lost_update(true); // actors: noise, a, b
    let e = Schedule::parse("s1:3:a3bz").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"schedule "s1:3:a3bz": position 8: expected an actor index below 3, found 25"#
    );
    assert!(Schedule::parse("sx:3:a").is_err());
    assert!(Schedule::parse("s1:3:a-b")
        .unwrap_err()
        .to_string()
        .contains("position 6"));

    let ex = Explorer::default();
    // a (index 1) has two steps; the third pick of it cannot apply.
    let d = ex
        .replay(&model, &Schedule::parse("s1:3:b3").unwrap())
        .unwrap_err();
    assert_eq!(d.step, 2);
    assert!(
        d.message
            .contains("schedule chose actor 1 (a) which is finished"),
        "{d}"
    );
    // A schedule for another program.
    let d = ex
        .replay(&model, &Schedule::parse("s1:2:ab").unwrap())
        .unwrap_err();
    assert!(
        d.message.contains("program of 2 actors but this one has 3"),
        "{d}"
    );
    // Too short: names what could still run.
    let d = ex
        .replay(&model, &Schedule::parse("s1:3:a3").unwrap())
        .unwrap_err();
    assert!(
        d.to_string()
            .contains("step 3: the schedule ends after 3 steps but actors can still run: a, b"),
        "{d}"
    );
    // Too long.
    let d = ex
        .replay(&model, &Schedule::parse("s1:3:a3b2c2a").unwrap())
        .unwrap_err();
    assert!(d.message.contains("1 more"), "{d}");
}

#[test]
fn traces_in_three_formats() {
    let model = lost_update(false);
    let ex = Explorer::default();
    let run = ex
        .replay(&model, &Schedule::parse("s1:2:abba").unwrap())
        .unwrap();
    let t = &run.trace;
    assert_eq!(t.steps.len(), 4);
    let text = t.to_text();
    assert_eq!(text.lines().count(), 4 + 2, "{text}");
    assert!(
        text.lines().next().unwrap().contains("a: read counter"),
        "{text}"
    );
    assert!(
        text.contains("b: write counter := 1   [finished]"),
        "{text}"
    );
    assert!(
        text.contains("invariant counter counts writes violated: counter is 1 after 2 writes"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json["steps"].as_array().unwrap().len(), 4);
    assert_eq!(json["failure"]["type"], "invariant");
    assert_eq!(json["schedule"], "s1:2:ab2a");
    let m = t.to_mermaid();
    assert!(m.starts_with("sequenceDiagram\n    participant a0 as a\n    participant a1 as b\n    participant store\n"), "{m}");
    assert!(m.contains("a1->>store: read counter (preempts)"), "{m}");
    assert_eq!(m.matches("->>store").count(), 4);
    assert!(m.contains("Note over store: FAILED: invariant"), "{m}");
    // The hash is stable across runs, platforms and toolchains (FNV over explicit bytes): pin it.
    assert_eq!(t.hash.len(), 16);
    assert_eq!(t.hash, ex.replay(&model, &run.schedule).unwrap().trace.hash);
}

#[test]
fn same_seed_same_traces() {
    let model = lost_update(true);
    let cfg = Config {
        max_executions: Some(200),
        max_failures: usize::MAX,
        collect_hashes: true,
        shrink: false,
        ..Config::default()
    };
    let ex = Explorer::new(cfg.clone());
    for strategy in 0..2 {
        let run = |seed| {
            if strategy == 0 {
                ex.random(&model, seed)
            } else {
                ex.pct(&model, seed, 2)
            }
        };
        let (a, b, c) = (run(42), run(42), run(43));
        assert_eq!(a.hashes.len(), 200);
        assert_eq!(a.hashes, b.hashes);
        assert_ne!(a.hashes, c.hashes);
        // A wall-time budget that does not expire changes nothing.
        let timed = Explorer::new(Config {
            max_time: Some(std::time::Duration::from_secs(3600)),
            ..cfg.clone()
        });
        let t = if strategy == 0 {
            timed.random(&model, 42)
        } else {
            timed.pct(&model, 42, 2)
        };
        assert_eq!(t.hashes, a.hashes);
    }
}

#[test]
fn livelock_is_reported_not_hung() {
    // `waiter` spins on a flag only `setter` sets; run without preemption it spins forever.
    let model = |w: &mut World| {
        let flag = Rc::new(Cell::new(false));
        let f = flag.clone();
        w.spawn("waiter", move |ctx| async move {
            loop {
                ctx.step("poll flag", Footprint::read(&[Key(1)])).await;
                if f.get() {
                    return Ok(());
                }
            }
        });
        w.spawn("setter", move |ctx| async move {
            ctx.step("set flag", Footprint::write(&[Key(1)])).await;
            flag.set(true);
            Ok(())
        });
    };
    let cfg = Config {
        max_steps: 50,
        ..Config::default()
    };
    {
        // DFS tries "keep running the current actor" first: the waiter spins to the budget.
        let r = Explorer::new(cfg.clone()).dfs(&model);
        let f = r
            .failures
            .first()
            .unwrap_or_else(|| panic!("no livelock reported: {r}"));
        assert_eq!(f.kind, FailureKind::StepBudget { steps: 50 });
        assert!(f
            .kind
            .describe(&f.trace.actors)
            .contains("possible livelock"));
    }
    // An actor that never finishes, alone.
    let spin = |w: &mut World| {
        w.spawn("spinner", |ctx| async move {
            loop {
                ctx.step("spin", Footprint::NONE).await;
            }
        })
    };
    for r in [
        Explorer::new(cfg.clone()).dfs(&spin),
        Explorer::new(cfg.clone()).random(&spin, 1),
        Explorer::new(cfg).pct(&spin, 1, 3),
    ] {
        assert_eq!(
            r.failures[0].kind,
            FailureKind::StepBudget { steps: 50 },
            "{r}"
        );
    }
}

#[test]
fn panics_and_misuse_are_failures_not_crashes() {
    let model = |w: &mut World| {
        let hits = Rc::new(Cell::new(0));
        for name in ["x", "y"] {
            let h = hits.clone();
            w.spawn(name, move |ctx| async move {
                ctx.step("touch", Footprint::write(&[Key(1)])).await;
                h.set(h.get() + 1);
                if h.get() == 2 {
                    panic!("second toucher {name}");
                }
                Ok(())
            });
        }
    };
    let r = Explorer::new(Config {
        max_failures: 10,
        ..Config::default()
    })
    .dfs(&model);
    assert!(r.exhausted, "{r}");
    let msgs: Vec<String> = r
        .failures
        .iter()
        .map(|f| f.kind.describe(&f.trace.actors))
        .collect();
    assert_eq!(
        msgs,
        vec![
            "actor y panicked: second toucher y",
            "actor x panicked: second toucher x"
        ]
    );

    // Awaiting something the harness does not drive is reported, not a hang.
    let foreign = |w: &mut World| {
        w.spawn("f", |ctx| async move {
            ctx.step("first", Footprint::NONE).await;
            std::future::pending::<()>().await;
            Ok(())
        })
    };
    let r = Explorer::default().dfs(&foreign);
    assert!(
        matches!(
            r.failures[0].kind,
            FailureKind::Misuse { actor: Some(0), .. }
        ),
        "{:?}",
        r.failures[0].kind
    );

    // An actor error keeps its kind.
    let err = |w: &mut World| {
        w.spawn("e", |ctx| async move {
            ctx.step("op", Footprint::NONE).await;
            Err(ActorError::new("NotFound", "content sha256:x not found"))
        })
    };
    let r = Explorer::default().dfs(&err);
    assert_eq!(
        r.failures[0].kind.signature(&r.failures[0].trace.actors),
        "error e: NotFound"
    );
}

#[test]
fn blocking_and_deadlock() {
    // Each actor waits for the other's flag before setting its own: a deadlock in every order.
    let model = |w: &mut World| {
        let flags = Rc::new([Cell::new(false), Cell::new(false)]);
        for me in 0..2usize {
            let f = flags.clone();
            let g = flags.clone();
            w.spawn(format!("w{me}"), move |ctx| async move {
                ctx.step_when(
                    "wait other",
                    Footprint::read(&[Key(1 - me as u64)]),
                    move || g[1 - me].get(),
                )
                .await;
                ctx.step("set mine", Footprint::write(&[Key(me as u64)]))
                    .await;
                f[me].set(true);
                Ok(())
            });
        }
    };
    let r = Explorer::default().dfs(&model);
    assert_eq!(
        r.failures[0].kind,
        FailureKind::Deadlock {
            blocked: vec![0, 1]
        }
    );

    // A waiter unblocked by a setter: no failure, and the waiter never runs before the set.
    let ok = |w: &mut World| {
        let flag = Rc::new(Cell::new(false));
        let (f, g) = (flag.clone(), flag.clone());
        w.spawn("waiter", move |ctx| async move {
            ctx.step_when("wait flag", Footprint::read(&[Key(1)]), move || g.get())
                .await;
            if !f.get() {
                return Err(ActorError::msg("ran while blocked"));
            }
            Ok(())
        });
        w.spawn("setter", move |ctx| async move {
            ctx.step("set", Footprint::write(&[Key(1)])).await;
            flag.set(true);
            Ok(())
        });
    };
    for reduction in [false, true] {
        let r = Explorer::new(Config {
            reduction,
            ..Config::default()
        })
        .dfs(&ok);
        assert!(r.failures.is_empty() && r.exhausted, "{r}");
        assert_eq!(r.executions, 1);
    }
}

#[test]
fn nondeterminism_fails_loudly() {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let model = |w: &mut World| {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        w.spawn("clocky", move |ctx| async move {
            ctx.step(format_args!("run {n}"), Footprint::NONE).await;
            Ok(())
        });
    };
    let s = Schedule::parse("s1:1:a").unwrap();
    let e = Explorer::default()
        .check_determinism(&model, &s)
        .unwrap_err();
    assert!(e.contains("NONDETERMINISM"), "{e}");

    // DFS compares labels when it replays a prefix.
    let two = |w: &mut World| {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        for i in 0..2 {
            w.spawn(format!("c{i}"), move |ctx| async move {
                ctx.step(format_args!("run {n}"), Footprint::write(&[Key(0)]))
                    .await;
                ctx.step("again", Footprint::write(&[Key(0)])).await;
                Ok(())
            });
        }
    };
    let r = Explorer::default().dfs(&two);
    assert!(
        matches!(&r.failures[0].kind, FailureKind::Nondeterminism { message } if message.contains("different label")),
        "{:?}",
        r.failures
    );
}

#[test]
fn shards_partition_the_space() {
    let model = grid(3, 3, |i, s| Key(((i + s) % 2) as u64), true);
    for reduction in [false, true] {
        // With reduction, a sharded DFS keeps every choice before the first context switch (so that the
        // top of the tree does not depend on other shards' findings): the whole it partitions
        // is the run `0/1`, which can differ from the unsharded DPOR run.
        let cfg = Config {
            preemption_bound: None,
            reduction,
            collect_hashes: true,
            ..Config::default()
        };
        let whole = Explorer::new(Config {
            shard: Some(Shard { index: 0, count: 1 }),
            ..cfg.clone()
        })
        .dfs(&model);
        assert!(whole.exhausted);
        let mut union = Vec::new();
        let mut executions = 0;
        for k in 0..4 {
            let r = Explorer::new(Config {
                shard: Some(Shard { index: k, count: 4 }),
                ..cfg.clone()
            })
            .dfs(&model);
            assert!(r.executions > 0, "shard {k} empty");
            executions += r.executions;
            union.extend(r.hashes);
        }
        assert_eq!(executions, whole.executions);
        assert_eq!(
            multiset(&union),
            multiset(&whole.hashes),
            "reduction {reduction}"
        );
        if !reduction {
            assert_eq!(whole.executions, multinomial(3, 3));
        }
    }
    // Random and PCT: execution index ranges.
    let cfg = Config {
        max_executions: Some(90),
        collect_hashes: true,
        max_failures: usize::MAX,
        shrink: false,
        ..Config::default()
    };
    let model = lost_update(true);
    let whole = Explorer::new(cfg.clone()).random(&model, 3);
    let whole_pct = Explorer::new(cfg.clone()).pct(&model, 3, 2);
    let (mut u, mut up) = (Vec::new(), Vec::new());
    for k in 0..3 {
        let sc = Config {
            shard: Some(Shard::parse(&format!("{k}/3")).unwrap()),
            ..cfg.clone()
        };
        u.extend(Explorer::new(sc.clone()).random(&model, 3).hashes);
        up.extend(Explorer::new(sc).pct(&model, 3, 2).hashes);
    }
    assert_eq!(multiset(&u), multiset(&whole.hashes));
    assert_eq!(multiset(&up), multiset(&whole_pct.hashes));
    assert!(Shard::parse("3/3").is_err() && Shard::parse("x").is_err());
}

#[test]
fn budgets_stop_explorations() {
    let model = grid(3, 3, |i, _| Key(i as u64), true);
    let r = Explorer::new(Config {
        reduction: false,
        preemption_bound: None,
        max_executions: Some(10),
        ..Config::default()
    })
    .dfs(&model);
    assert_eq!(
        (r.executions, r.stopped, r.exhausted),
        (10, Some(Stop::Executions), false)
    );
    let r = Explorer::new(Config {
        reduction: false,
        preemption_bound: None,
        max_time: Some(std::time::Duration::ZERO),
        ..Config::default()
    })
    .dfs(&model);
    assert_eq!((r.executions, r.stopped), (0, Some(Stop::Time)));
}

/// A completed label (what an external client's call turned out to be, known only after it ran)
/// shows in the trace after the step's own label and enters the trace hash: two runs that differ
/// only in a completion do not hash alike, and the same completion twice hashes the same.
#[test]
fn completed_labels_show_in_the_trace_and_enter_its_hash() {
    let model_with = |suffix: &'static str| {
        move |w: &mut World| {
            w.spawn("a", move |ctx| async move {
                ctx.step("write json", Footprint::write(&[Key(1)])).await;
                ctx.complete_label(suffix);
                ctx.step("read", Footprint::read(&[Key(1)])).await;
                Ok(())
            });
        }
    };
    let schedule = Schedule::new(1, vec![0, 0]);
    let ex = Explorer::default();
    let a = ex.replay(&model_with("sha256:aa"), &schedule).unwrap();
    let again = ex.replay(&model_with("sha256:aa"), &schedule).unwrap();
    let b = ex.replay(&model_with("sha256:bb"), &schedule).unwrap();
    assert_eq!(a.trace.steps[0].label, "write json sha256:aa");
    assert_eq!(
        a.trace.steps[1].label, "read",
        "a completion belongs to one step"
    );
    assert_eq!(a.hash, again.hash);
    assert_ne!(a.hash, b.hash);
}

/// One verb for every strategy: `Explorer::run` with the parameters in `Config`, and the report
/// names the strategy as files and flags spell it.
#[test]
fn explorer_run_takes_the_strategy_as_a_value() {
    use pushrace_harness::Strategy;
    for name in ["dfs", "random", "pct", "replay"] {
        let s: Strategy = name.parse().unwrap();
        assert_eq!(s.to_string(), name);
    }
    assert!("bfs"
        .parse::<Strategy>()
        .unwrap_err()
        .contains("dfs, random, pct or replay"));
    let model = lost_update(false);
    let found = Explorer::new(Config::default()).run(&model, Strategy::Dfs);
    assert_eq!(found.strategy, Strategy::Dfs);
    let failing = found.failures[0].schedule.clone();
    let cfg = Config {
        schedule: Some(failing.clone()),
        ..Config::default()
    };
    let replayed = Explorer::new(cfg).run(&model, Strategy::Replay);
    assert_eq!(replayed.strategy, Strategy::Replay);
    assert_eq!(replayed.executions, 1);
    assert_eq!(
        replayed.failures[0].trace.hash,
        found.failures[0].trace.hash
    );
    // A schedule that does not fit: no execution, and the report says why it stopped.
    let cfg = Config {
        schedule: Some(Schedule::new(5, vec![4])),
        ..Config::default()
    };
    let diverged = Explorer::new(cfg).run(&model, Strategy::Replay);
    assert_eq!(
        (diverged.executions, diverged.stopped),
        (0, Some(Stop::Diverged))
    );
}

/// Issue 14 item 3: only an exhausted DFS with no failure proves anything; a budget, a sample
/// or a zero budget never reads as a proof.
#[test]
fn only_an_exhausted_space_is_proved() {
    let model = grid(2, 2, |_, _| Key(0), true);
    let full = Explorer::new(Config::default()).dfs(&model);
    assert!(full.exhausted && full.proved(), "{full}");
    let cut = Explorer::new(Config {
        max_executions: Some(1),
        ..Config::default()
    })
    .dfs(&model);
    assert!(
        !cut.proved() && cut.to_string().contains("NOT exhausted"),
        "{cut}"
    );
    let none = Explorer::new(Config {
        max_executions: Some(0),
        ..Config::default()
    })
    .dfs(&model);
    assert_eq!((none.executions, none.proved()), (0, false));
    for r in [
        Explorer::default().random(&model, 1),
        Explorer::default().pct(&model, 1, 2),
    ] {
        assert_eq!(
            (r.exhausted, r.stopped),
            (false, Some(Stop::Executions)),
            "{r}"
        );
        assert!(!r.proved());
    }
}

/// Issue 14 item 9: a shard number that does not fit says so, not "not a number".
#[test]
fn shard_numbers_too_large_say_so() {
    let e = Shard::parse("18446744073709551615/4").unwrap_err();
    assert!(e.contains("K is too large (at most 4294967295)"), "{e}");
    let e = Shard::parse("0/99999999999").unwrap_err();
    assert!(e.contains("N is too large"), "{e}");
    assert!(Shard::parse("x/4")
        .unwrap_err()
        .contains("K is not a number"));
}

/// Issue 14 item 4: a huge PCT depth is clamped instead of allocating depth-1 change points.
#[test]
fn a_huge_pct_depth_does_not_allocate() {
    let model = grid(2, 2, |i, _| Key(i as u64), true);
    let r = Explorer::new(Config {
        max_executions: Some(3),
        ..Config::default()
    })
    .pct(&model, 1, usize::MAX);
    assert_eq!(r.executions, 3);
    assert_eq!(
        r.pct.map(|p| p.d),
        Some(pushrace_harness::strategy::pct::MAX_DEPTH)
    );
}
