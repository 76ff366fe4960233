//! pushrace-harness vs loom on the same toy model: N actors each doing M lost-update-prone
//! increments (read the counter, then write it back + 1; two scheduling points per increment).
//!
//! Prints executions/s for pushrace's DFS (with and without partial-order reduction) and for
//! loom (`loom::sync::Mutex`, same actors and steps, same preemption bound), the ratio, and the
//! executions each strategy needs to find the lost update. Run: `cargo bench -p pushrace-harness`.

use pushrace_harness::{Config, Explorer, Footprint, Key, World};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const COUNTER: Key = Key(1);

fn increments(n: usize, m: usize, check: bool) -> impl Fn(&mut World) {
    move |w: &mut World| {
        let c = Rc::new(Cell::new(0usize));
        for i in 0..n {
            let c = c.clone();
            w.spawn(format!("t{i}"), move |ctx| async move {
                for _ in 0..m {
                    ctx.step("read", Footprint::read(&[COUNTER])).await;
                    let v = c.get();
                    ctx.step("write", Footprint::write(&[COUNTER])).await;
                    c.set(v + 1);
                }
                Ok(())
            });
        }
        if check {
            w.finally("no lost update", move || {
                if c.get() == n * m {
                    Ok(())
                } else {
                    Err(format!("counter {}", c.get()))
                }
            });
        }
    }
}

static LOOM_EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn loom_model(n: usize, m: usize, check: bool) {
    use loom::sync::{Arc, Mutex};
    LOOM_EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let c = Arc::new(Mutex::new(0usize));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let c = c.clone();
            loom::thread::spawn(move || {
                for _ in 0..m {
                    let v = *c.lock().unwrap();
                    *c.lock().unwrap() = v + 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    if check {
        assert_eq!(*c.lock().unwrap(), n * m, "lost update");
    }
}

fn loom_run(n: usize, m: usize, check: bool) -> (u64, f64, bool) {
    LOOM_EXECUTIONS.store(0, Ordering::Relaxed);
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    let t = Instant::now();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        b.check(move || loom_model(n, m, check))
    }))
    .is_err();
    (
        LOOM_EXECUTIONS.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64(),
        panicked,
    )
}

fn main() {
    // Loom prints each caught panic; keep the report readable.
    std::panic::set_hook(Box::new(|_| {}));
    println!("# pushrace-harness vs loom: N actors x M increments, 2 scheduling points per increment, preemption bound 2\n");
    println!(
        "{:<8} {:>22} {:>22} {:>22} {:>9}",
        "N x M", "pushrace dfs+DPOR", "pushrace dfs (no POR)", "loom", "ratio*"
    );
    for (n, m) in [(2, 1), (2, 2), (3, 1), (2, 3), (3, 2)] {
        let model = increments(n, m, false);
        let ex = |reduction| {
            Explorer::new(Config {
                reduction,
                preemption_bound: Some(2),
                ..Config::default()
            })
        };
        // Repeat small explorations so timings are not dominated by timer resolution.
        let measure = |reduction: bool| {
            let t = Instant::now();
            let mut execs = 0;
            let mut reps = 0;
            while reps == 0 || t.elapsed().as_secs_f64() < 0.5 {
                execs = ex(reduction).dfs(&model).executions;
                reps += 1;
            }
            (
                execs,
                execs as f64 * reps as f64 / t.elapsed().as_secs_f64(),
            )
        };
        let (pe, pr) = measure(true);
        let (fe, fr) = measure(false);
        let (le, lt, _) = loom_run(n, m, false);
        let lr = le as f64 / lt;
        println!(
            "{:<8} {:>10} @ {:>9.0}/s {:>10} @ {:>9.0}/s {:>10} @ {:>9.0}/s {:>8.1}x",
            format!("{n}x{m}"),
            pe,
            pr,
            fe,
            fr,
            le,
            lr,
            fr / lr
        );
    }
    println!("\n* ratio = executions/s of pushrace without POR over loom's (both enumerate comparable spaces).");
    println!("  loom counts spawn/join and each lock/unlock as scheduling points, so its space is larger.\n");

    println!("# executions to the first lost update (N=2, M=2)");
    let model = increments(2, 2, true);
    let quiet = Config {
        shrink: false,
        ..Config::default()
    };
    let dfs = Explorer::new(quiet.clone()).dfs(&model);
    println!(
        "pushrace dfs (bound 2, DPOR): {}",
        dfs.failures[0].execution
    );
    let nodpor = Explorer::new(Config {
        reduction: false,
        ..quiet.clone()
    })
    .dfs(&model);
    println!(
        "pushrace dfs (bound 2, no POR): {}",
        nodpor.failures[0].execution
    );
    let seeds = 0..100u64;
    let mean = |f: &dyn Fn(u64) -> u64| {
        seeds.clone().map(f).sum::<u64>() as f64 / seeds.clone().count() as f64
    };
    let ex = Explorer::new(Config {
        max_executions: Some(100_000),
        ..quiet.clone()
    });
    println!(
        "pushrace random (mean over 100 seeds): {:.2}",
        mean(&|s| ex.random(&model, s).failures[0].execution)
    );
    let d1 = seeds
        .clone()
        .filter(|&s| {
            !Explorer::new(Config {
                max_executions: Some(1000),
                ..quiet.clone()
            })
            .pct(&model, s, 1)
            .failures
            .is_empty()
        })
        .count();
    println!("pushrace pct d=1: found by {d1} of 100 seeds in 1000 runs (a lost update needs a preemption: depth 2)");
    let p2 = ex.pct(&model, 0, 2);
    println!(
        "pushrace pct d=2 (mean over 100 seeds): {:.2}   [{}]",
        mean(&|s| ex.pct(&model, s, 2).failures[0].execution),
        p2
    );
    let (le, _, panicked) = loom_run(2, 2, true);
    println!(
        "loom (bound 2): {le}{}",
        if panicked { "" } else { " (did not find it)" }
    );

    // Shrinking, for the record.
    let shrunk = Explorer::new(Config::default()).dfs(&model).failures[0]
        .shrunk
        .clone()
        .unwrap();
    println!(
        "\nshrunk: {} -> {} steps, {} -> {} preemptions ({} replays): {}",
        shrunk.steps_before,
        shrunk.steps_after,
        shrunk.preemptions_before,
        shrunk.preemptions_after,
        shrunk.attempts,
        shrunk.schedule
    );
}
