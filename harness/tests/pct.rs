//! PCT finds the depth-1 and depth-2 bugs of the PCT paper within the runs its bound predicts.

use pushrace_harness::{ActorError, Config, Explorer, Footprint, Key, World};
use std::cell::Cell;
use std::rc::Rc;

const T: Key = Key(1);

/// Ordering violation (depth 1, PCT paper fig. 1 left): `user` dereferences `t` assuming
/// `creator` initialised it first. One ordering constraint (use before init) exposes it.
fn ordering_violation(w: &mut World) {
    let t = Rc::new(Cell::new(false));
    let t1 = t.clone();
    w.spawn("creator", move |ctx| async move {
        for i in 0..3 {
            ctx.step(format_args!("creator local {i}"), Footprint::NONE)
                .await;
        }
        ctx.step("t = new T()", Footprint::write(&[T])).await;
        t1.set(true);
        Ok(())
    });
    w.spawn("user", move |ctx| async move {
        for i in 0..2 {
            ctx.step(format_args!("user local {i}"), Footprint::NONE)
                .await;
        }
        ctx.step("t->state", Footprint::read(&[T])).await;
        if !t.get() {
            return Err(ActorError::new(
                "null-deref",
                "t used before initialisation",
            ));
        }
        Ok(())
    });
}

/// Atomicity violation (depth 2, PCT paper fig. 1 right): `checker` tests `x != null` then
/// uses x; `nuller` sets x to null. The bug needs check < null < use: two constraints.
fn atomicity_violation(w: &mut World) {
    let x = Rc::new(Cell::new(true));
    let x1 = x.clone();
    w.spawn("checker", move |ctx| async move {
        for i in 0..2 {
            ctx.step(format_args!("checker local {i}"), Footprint::NONE)
                .await;
        }
        ctx.step("if (x != null)", Footprint::read(&[T])).await;
        if !x1.get() {
            return Ok(());
        }
        ctx.step("x->use()", Footprint::read(&[T])).await;
        if !x1.get() {
            return Err(ActorError::new(
                "null-deref",
                "x became null between check and use",
            ));
        }
        ctx.step("checker done", Footprint::NONE).await;
        Ok(())
    });
    w.spawn("nuller", move |ctx| async move {
        for i in 0..2 {
            ctx.step(format_args!("nuller local {i}"), Footprint::NONE)
                .await;
        }
        ctx.step("x = null", Footprint::write(&[T])).await;
        x.set(false);
        ctx.step("nuller done", Footprint::NONE).await;
        Ok(())
    });
}

/// Runs PCT with each of `seeds`; returns the execution (1-based) that first found a failure,
/// or None, and the bound reported.
fn first_hits(
    model: &dyn Fn(&mut World),
    depth: usize,
    budget: u64,
    seeds: std::ops::Range<u64>,
) -> (Vec<Option<u64>>, f64) {
    let ex = Explorer::new(Config {
        max_executions: Some(budget),
        shrink: false,
        ..Config::default()
    });
    let mut p = 0.0;
    let hits = seeds
        .map(|seed| {
            let r = ex.pct(model, seed, depth);
            let b = r.pct.expect("pct reports its bound");
            p = b.probability;
            r.failures.first().map(|f| f.execution)
        })
        .collect();
    (hits, p)
}

/// Runs needed so that a per-run success probability >= p misses with probability <= 1/1000:
/// (1-p)^r <= e^{-pr} <= 1e-3  <=>  r >= ln(1000)/p.
fn runs_for(p: f64) -> u64 {
    (1000f64.ln() / p).ceil() as u64
}

#[test]
fn depth_one_ordering_violation() {
    let (hits, p) = first_hits(&ordering_violation, 1, 200, 0..30);
    // n = 2 actors, d = 1: bound 1/n = 1/2 per run.
    assert_eq!(p, 0.5);
    let budget = runs_for(p);
    for (seed, h) in hits.iter().enumerate() {
        let h = h.unwrap_or_else(|| panic!("seed {seed}: not found"));
        assert!(h <= budget, "seed {seed}: found only at run {h} > {budget}");
    }
    let mean = hits.iter().map(|h| h.unwrap() as f64).sum::<f64>() / hits.len() as f64;
    eprintln!(
        "runs to first hit per seed: {hits:?}, mean {mean:.1}, 1/p = {:.0}",
        1.0 / p
    );
    // The expected number of runs to the first hit is at most 1/p; allow sampling noise.
    assert!(mean <= 2.0 / p, "mean runs to first hit {mean}");
}

#[test]
fn depth_two_atomicity_violation() {
    // Depth 1 never preempts: each actor runs to completion in priority order, so the
    // check-null-use interleaving is impossible. This shows the depth parameter matters.
    let (hits, _) = first_hits(&atomicity_violation, 1, 300, 0..3);
    assert!(hits.iter().all(Option::is_none));

    let (hits, p) = first_hits(&atomicity_violation, 2, 2000, 0..30);
    // n = 2, k = 9 steps (checker 5, nuller 4 when the check passes) at most, d = 2: 1/(2*9).
    assert!((p - 1.0 / 18.0).abs() < 1e-12, "bound {p}");
    let budget = runs_for(p);
    for (seed, h) in hits.iter().enumerate() {
        let h = h.unwrap_or_else(|| panic!("seed {seed}: not found"));
        assert!(h <= budget, "seed {seed}: found only at run {h} > {budget}");
    }
    let mean = hits.iter().map(|h| h.unwrap() as f64).sum::<f64>() / hits.len() as f64;
    eprintln!(
        "runs to first hit per seed: {hits:?}, mean {mean:.1}, 1/p = {:.0}",
        1.0 / p
    );
    assert!(mean <= 2.0 / p, "mean runs to first hit {mean}");
}
