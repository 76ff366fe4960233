//! Toy models shared by the integration tests. Nothing here knows containerd.
#![allow(dead_code)]

use pushrace_harness::hash::Fnv128;
use pushrace_harness::rng::SplitMix64;
use pushrace_harness::{ActorError, Footprint, Key, World};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

pub const COUNTER: Key = Key(1);

/// Lost update: actors `a` and `b` each read the counter then write it back incremented. An
/// invariant checked after every step compares the counter with the number of writes done, so
/// the failure is caught at the write that loses the other's update. With `noise`, a third
/// actor `noise` (index 0, so DFS runs it first) takes 3 steps on its own key: the first failure
/// DFS finds contains them, and shrinking must remove them.
pub fn lost_update(noise: bool) -> impl Fn(&mut World) {
    move |w: &mut World| {
        let counter = Rc::new(Cell::new(0u32));
        let writes = Rc::new(Cell::new(0u32));
        if noise {
            w.spawn("noise", |ctx| async move {
                for i in 0..3 {
                    ctx.step(format_args!("noise {i}"), Footprint::write(&[Key(99)]))
                        .await;
                }
                Ok(())
            });
        }
        for name in ["a", "b"] {
            let (c, n) = (counter.clone(), writes.clone());
            w.spawn(name, move |ctx| async move {
                ctx.step("read counter", Footprint::read(&[COUNTER])).await;
                let v = c.get();
                ctx.step(
                    format_args!("write counter := {}", v + 1),
                    Footprint::write(&[COUNTER]),
                )
                .await;
                c.set(v + 1);
                n.set(n.get() + 1);
                Ok(())
            });
        }
        let (c, n) = (counter.clone(), writes.clone());
        w.invariant("counter counts writes", move || {
            if c.get() == n.get() {
                Ok(())
            } else {
                Err(format!("counter is {} after {} writes", c.get(), n.get()))
            }
        });
    }
}

/// `k` actors, `m` steps each; actor i's steps touch `key(i, s)` with the given access.
/// Used for the independence and full-dependence counts.
pub fn grid(k: usize, m: usize, key: fn(usize, usize) -> Key, write: bool) -> impl Fn(&mut World) {
    move |w: &mut World| {
        for i in 0..k {
            w.spawn(format!("t{i}"), move |ctx| async move {
                for s in 0..m {
                    let keys = [key(i, s)];
                    let fp = if write {
                        Footprint::write(&keys)
                    } else {
                        Footprint::read(&keys)
                    };
                    ctx.step(format_args!("t{i} step {s}"), fp).await;
                }
                Ok(())
            });
        }
    }
}

/// (k·m)! / (m!)^k: the number of interleavings of k sequences of m steps.
pub fn multinomial(k: usize, m: usize) -> u64 {
    // Build it as a product of binomials to stay exact in u64.
    let mut total: u64 = 1;
    let mut placed = 0u64;
    for _ in 0..k {
        for j in 1..=m as u64 {
            placed += 1;
            total = total * placed / j; // exact: C(placed, j) prefix products are integers
        }
    }
    total
}

/// One operation of a generated program.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// acc += key
    Read(u64),
    /// key = acc * 10 + actor + 1
    Write(u64),
    /// key += 1 (read-modify-write in one step)
    Bump(u64),
    /// A collector: every key holding an odd value becomes 0. Declared as writing every key;
    /// once it ran it narrows its footprint to what it did: a read of every key (`Key::ANY`)
    /// and a write of the keys it zeroed.
    Collect,
    /// [`Op::Collect`] that narrows to a lie: it claims to have read nothing (to show that the
    /// soundness tests notice a wrong narrowing).
    CollectBlind,
}

/// A program over a few keys whose final state depends on the interleaving. `sink` collects
/// the final state of every execution, so tests can compare the sets reached with and without
/// reduction. It registers a state fingerprint (the keys and every actor's accumulator; the
/// harness adds each actor's position), so it can be explored with pruning.
pub fn program(
    actors: Vec<Vec<Op>>,
    nkeys: usize,
    sink: Rc<RefCell<BTreeSet<Vec<u64>>>>,
) -> impl Fn(&mut World) {
    checked_program(actors, nkeys, sink, None)
}

/// [`program`], and with `bad = Some(v)` an invariant that no key ever holds `v` and a final
/// check that key 0 ends even: failures that end executions early and late.
pub fn checked_program(
    actors: Vec<Vec<Op>>,
    nkeys: usize,
    sink: Rc<RefCell<BTreeSet<Vec<u64>>>>,
    bad: Option<u64>,
) -> impl Fn(&mut World) {
    recording_program(actors, nkeys, bad, move |s| {
        sink.borrow_mut().insert(s);
    })
}

/// [`checked_program`] for a model built in each thread of `parallel::explore`: the final
/// states of every thread's executions are collected in one `sink`.
pub fn program_into(
    actors: Vec<Vec<Op>>,
    nkeys: usize,
    sink: std::sync::Arc<std::sync::Mutex<BTreeSet<Vec<u64>>>>,
    bad: Option<u64>,
) -> impl Fn(&mut World) {
    recording_program(actors, nkeys, bad, move |s| {
        sink.lock().unwrap().insert(s);
    })
}

/// [`checked_program`], handing each execution's final state to `record`.
fn recording_program(
    actors: Vec<Vec<Op>>,
    nkeys: usize,
    bad: Option<u64>,
    record: impl Fn(Vec<u64>) + Clone + 'static,
) -> impl Fn(&mut World) {
    move |w: &mut World| {
        let state = Rc::new(RefCell::new(vec![0u64; nkeys]));
        let accs = Rc::new(RefCell::new(vec![0u64; actors.len()]));
        for (i, ops) in actors.iter().cloned().enumerate() {
            let (st, accs) = (state.clone(), accs.clone());
            w.spawn(format!("p{i}"), move |ctx| async move {
                for op in ops {
                    match op {
                        Op::Read(k) => {
                            ctx.step(format_args!("read {k}"), Footprint::read(&[Key(k)]))
                                .await;
                            accs.borrow_mut()[i] += st.borrow()[k as usize];
                        }
                        Op::Write(k) => {
                            ctx.step(format_args!("write {k}"), Footprint::write(&[Key(k)]))
                                .await;
                            let acc = accs.borrow()[i];
                            st.borrow_mut()[k as usize] = acc * 10 + i as u64 + 1;
                        }
                        Op::Bump(k) => {
                            ctx.step(
                                format_args!("bump {k}"),
                                Footprint::new(&[Key(k)], &[Key(k)]),
                            )
                            .await;
                            st.borrow_mut()[k as usize] += 1;
                        }
                        Op::Collect | Op::CollectBlind => {
                            let every: Vec<Key> = (0..nkeys as u64).map(Key).collect();
                            ctx.step("collect", Footprint::write(&every)).await;
                            let mut zeroed = Vec::new();
                            for (k, v) in st.borrow_mut().iter_mut().enumerate() {
                                if *v % 2 == 1 {
                                    *v = 0;
                                    zeroed.push(Key(k as u64));
                                }
                            }
                            let reads: &[Key] = match op {
                                Op::Collect => &[Key::ANY],
                                _ => &[],
                            };
                            ctx.narrow(Footprint::new(reads, &zeroed));
                        }
                    }
                }
                Ok::<(), ActorError>(())
            });
        }
        let (st, a) = (state.clone(), accs.clone());
        w.fingerprint(move || {
            let mut h = Fnv128::new();
            for v in st.borrow().iter().chain(a.borrow().iter()) {
                h.u64(*v);
            }
            h.finish()
        });
        if let Some(bad) = bad {
            let st = state.clone();
            w.invariant("no key holds the bad value", move || {
                match st.borrow().iter().position(|&v| v == bad) {
                    Some(k) => Err(format!("key {k} holds {bad}")),
                    None => Ok(()),
                }
            });
        }
        let (st, record) = (state.clone(), record.clone());
        w.finally("record", move || {
            let s = st.borrow().clone();
            let odd = bad.is_some() && s[0] % 2 == 1;
            record(s.clone());
            match odd {
                true => Err(format!("key 0 ends odd: {s:?}")),
                false => Ok(()),
            }
        });
    }
}

/// [`random_program`] where about one operation in four is `collect` (`blind`: the collector
/// that narrows to a lie).
pub fn random_collecting_program(seed: u64, blind: bool) -> (Vec<Vec<Op>>, usize) {
    let (mut progs, nkeys) = random_program(seed);
    let mut g = SplitMix64::new(seed ^ 0xc011_ec7);
    for op in progs.iter_mut().flatten() {
        if g.below(4) == 0 {
            *op = if blind { Op::CollectBlind } else { Op::Collect };
        }
    }
    (progs, nkeys)
}

/// A generated program: 2-3 actors of 2-3 operations over 2-3 keys.
pub fn random_program(seed: u64) -> (Vec<Vec<Op>>, usize) {
    let mut g = SplitMix64::new(seed);
    let nkeys = 2 + g.below(2) as usize;
    let actors = 2 + g.below(2) as usize;
    let progs = (0..actors)
        .map(|_| {
            (0..2 + g.below(2))
                .map(|_| {
                    let k = g.below(nkeys as u64);
                    match g.below(3) {
                        0 => Op::Read(k),
                        1 => Op::Write(k),
                        _ => Op::Bump(k),
                    }
                })
                .collect()
        })
        .collect();
    (progs, nkeys)
}
