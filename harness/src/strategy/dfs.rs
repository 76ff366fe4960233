//! Exhaustive depth-first exploration under a preemption bound, with partial-order reduction.
//!
//! Stateless search: every execution re-runs the model from scratch, replaying the prefix kept
//! on the node stack and extending it with new choices; after each execution the deepest node
//! with an unexplored choice is advanced.
//!
//! Without reduction every enabled actor is a choice at every node (within the preemption bound),
//! so the number of executions is the number of interleavings.
//!
//! With reduction (default) the search is source-DPOR (Abdulla, Aronis, Jonsson, Sagonas,
//! POPL 2014, Algorithm 1) with sleep sets:
//! * a node starts with one choice; when a step `x` of actor `p` is appended, each earlier step
//!   `e` of another actor that is *in a race* with `x` (dependent by footprint, and `e → x` not
//!   through any other step) adds a backtrack choice at the node before `e`: an *initial* of
//!   `v = notdep(e).p` (an actor whose first step in `v` has no happens-before predecessor in
//!   `v`) unless one is already there. Happens-before is tracked with vector clocks.
//! * sleep sets: once a choice at a node has been explored it sleeps in the siblings explored
//!   after it, and stays asleep down the tree until a dependent step runs; an execution whose
//!   enabled actors are all asleep is redundant and cut short (counted as `pruned`).
//!
//! Disabled (blocked) actors are handled as in Flanagan–Godefroid: when no initial is enabled at
//! the backtrack node, every enabled actor is added. Preemption bounding is combined with DPOR
//! the way Coons, Musuvathi and McKinley (OOPSLA 2013) suggest: when the backtrack choice would
//! exceed the bound, the same choice is also added where the current actor's run began.
//!
//! Sharding: with `shard K/N`, an execution belongs to the shard `fnv(prefix) mod N` where the
//! prefix runs up to and including its first context switch (the first step taken by an actor
//! other than the one that took step 0; an execution without a switch hashes whole). Nodes on the
//! trunk (before the first switch) keep every enabled actor as a choice, so the trunk does not
//! depend on what is found below it, and every subtree below a first switch is explored by one
//! shard only, with full reduction. The shards therefore partition exactly the executions of the
//! run `shard 0/1`. Splitting at the first switch rather than at a fixed depth balances the
//! shards: under a preemption bound most executions share their first few steps.

use crate::executor::{Chooser, End, Model, Pick, View};
use crate::explorer::{Config, Engine, Report};
use crate::footprint::{dependent, Key};
use crate::hash::Fnv;

const NONE: u8 = u8::MAX;

#[derive(Clone, Debug)]
struct Node {
    enabled: u64,
    backtrack: u64,
    done: u64,
    sleep: u64,
    chosen: u8,
    /// Actor of the previous step (NONE at the root).
    prev: u8,
    /// Preemptions in the prefix before this node's choice.
    preempts: u32,
    /// Label hash of the chosen step, to detect a model that changes under replay.
    label: u64,
}

impl Node {
    fn cost(&self, q: usize) -> usize {
        let p = self.prev;
        let preempt = p != NONE && p as usize != q && self.enabled & (1u64 << p) != 0;
        self.preempts as usize + preempt as usize
    }
}

#[derive(Clone, Copy, Debug)]
struct Event {
    actor: u8,
    /// Number of earlier steps of the same actor.
    lidx: u32,
    keys: u32,
    nreads: u32,
    nwrites: u32,
    /// Offset of this event's vector clock in `vcs` (reduction only).
    vc: u32,
}

pub(crate) struct Dfs {
    nodes: Vec<Node>,
    events: Vec<Event>,
    keys: Vec<Key>,
    vcs: Vec<u32>,
    n: usize,
    reduction: bool,
    bound: Option<usize>,
    /// (shard index, shard count)
    split: Option<(u32, u32)>,
    /// This execution has made its first context switch (its shard is decided).
    switched: bool,
    owned: bool,
    diverged: bool,
    acc: Vec<u32>,
    races: Vec<usize>,
    firsts: Vec<u32>,
}

#[inline]
fn bit(a: usize) -> u64 {
    1u64 << a
}

impl Dfs {
    pub fn new(cfg: &Config) -> Self {
        let split = cfg.shard.map(|s| (s.index, s.count));
        Dfs {
            nodes: Vec::new(),
            events: Vec::new(),
            keys: Vec::new(),
            vcs: Vec::new(),
            n: 0,
            reduction: cfg.reduction,
            bound: cfg.preemption_bound,
            split,
            switched: false,
            owned: true,
            diverged: false,
            acc: Vec::new(),
            races: Vec::new(),
            firsts: Vec::new(),
        }
    }

    fn reads(&self, e: &Event) -> &[Key] {
        &self.keys[e.keys as usize..(e.keys + e.nreads) as usize]
    }
    fn writes(&self, e: &Event) -> &[Key] {
        let s = (e.keys + e.nreads) as usize;
        &self.keys[s..s + e.nwrites as usize]
    }
    fn vc(&self, e: &Event) -> &[u32] {
        &self.vcs[e.vc as usize..e.vc as usize + self.n]
    }

    fn within_bound(&self, node: &Node, q: usize) -> bool {
        self.bound.map_or(true, |b| node.cost(q) <= b)
    }

    fn push_event(&mut self, view: &View<'_>, p: usize) {
        let i = self.events.len();
        let keys = self.keys.len() as u32;
        let (nreads, nwrites) = {
            let r = view.reads(p);
            let w = view.writes(p);
            self.keys.extend_from_slice(&r);
            self.keys.extend_from_slice(&w);
            (r.len() as u32, w.len() as u32)
        };
        let vc_at = self.vcs.len() as u32;
        let mut ev = Event {
            actor: p as u8,
            lidx: 0,
            keys,
            nreads,
            nwrites,
            vc: vc_at,
        };
        let n = self.n;
        let mut acc = std::mem::take(&mut self.acc);
        acc.clear();
        acc.resize(n, 0);
        let last_p = self.events.iter().rposition(|e| e.actor as usize == p);
        if !self.reduction {
            ev.lidx = last_p.map(|k| self.events[k].lidx + 1).unwrap_or(0);
            self.events.push(ev);
            self.acc = acc;
            return;
        }
        if let Some(k) = last_p {
            let e = self.events[k];
            acc.copy_from_slice(self.vc(&e));
            ev.lidx = e.lidx + 1;
        }
        self.races.clear();
        let (xr, xw) = (ev.keys as usize, (ev.keys + ev.nreads) as usize);
        for j in (0..i).rev() {
            let ej = self.events[j];
            if ej.actor as usize == p {
                continue;
            }
            let dep = dependent(
                self.reads(&ej),
                self.writes(&ej),
                &self.keys[xr..xw],
                &self.keys[xw..xw + ev.nwrites as usize],
            );
            if !dep {
                continue;
            }
            if acc[ej.actor as usize] <= ej.lidx {
                // Not already ordered before x through a later step: an immediate race.
                self.races.push(j);
            }
            let vcj = ej.vc as usize;
            for (a, v) in acc.iter_mut().zip(&self.vcs[vcj..vcj + n]) {
                *a = (*a).max(*v);
            }
        }
        acc[p] = ev.lidx + 1;
        self.vcs.extend_from_slice(&acc);
        self.events.push(ev);
        self.acc = acc;
        let races = std::mem::take(&mut self.races);
        for &j in &races {
            self.handle_race(j, i, p);
        }
        self.races = races;
    }

    /// `events[j]` races with the new `events[i]` (actor p): make sure the node before j will
    /// also try an initial of `v = notdep(j).p`.
    fn handle_race(&mut self, j: usize, i: usize, p: usize) {
        let n = self.n;
        let ej = self.events[j];
        let (aj, lj) = (ej.actor as usize, ej.lidx);
        let mut firsts = std::mem::take(&mut self.firsts);
        firsts.clear();
        firsts.resize(n, u32::MAX);
        let mut seen = 0u64;
        for k in j + 1..i {
            let ek = self.events[k];
            let a = ek.actor as usize;
            if seen & bit(a) != 0 {
                continue;
            }
            seen |= bit(a);
            if self.vc(&ek)[aj] <= lj {
                firsts[a] = k as u32; // first step of a in v
            }
        }
        let mut initials = 0u64;
        let is_initial = |vc_u: &[u32], a: usize, before: u32| -> bool {
            (0..n).all(|r| {
                let f = firsts[r];
                r == a || f == u32::MAX || f >= before || vc_u[r] <= self.events[f as usize].lidx
            })
        };
        for (a, &u) in firsts.iter().enumerate() {
            if u != u32::MAX && is_initial(self.vc(&self.events[u as usize]), a, u) {
                initials |= bit(a);
            }
        }
        if firsts[p] == u32::MAX && is_initial(self.vc(&self.events[i]), p, i as u32) {
            initials |= bit(p);
        }
        self.firsts = firsts;

        let node = &self.nodes[j];
        if initials & node.backtrack != 0 {
            return;
        }
        let en = node.enabled;
        let q = if initials & en & bit(p) != 0 {
            Some(p)
        } else if initials & en != 0 {
            Some((initials & en).trailing_zeros() as usize)
        } else {
            None
        };
        let over_bound = match q {
            Some(q) => !self.within_bound(node, q),
            None => false,
        };
        let node = &mut self.nodes[j];
        match q {
            Some(q) => node.backtrack |= bit(q),
            None => node.backtrack |= en,
        }
        if over_bound && j > 0 {
            let q = q.unwrap_or(p);
            let a = self.nodes[j - 1].chosen;
            let mut s = j - 1;
            while s > 0 && self.nodes[s - 1].chosen == a {
                s -= 1;
            }
            let ns = &mut self.nodes[s];
            if ns.enabled & bit(q) != 0 {
                ns.backtrack |= bit(q);
            }
        }
    }

    /// Prepares the next execution: `false` when the space is exhausted.
    fn advance(&mut self) -> bool {
        while !self.nodes.is_empty() {
            let d = self.nodes.len() - 1;
            let node = &mut self.nodes[d];
            node.done |= bit(node.chosen as usize);
            if self.reduction {
                node.sleep |= bit(node.chosen as usize);
            }
            let mut cand = node.backtrack & !node.done & !node.sleep;
            let node = &self.nodes[d];
            while cand != 0 {
                let q = cand.trailing_zeros() as usize;
                cand &= cand - 1;
                if self.within_bound(node, q) {
                    self.nodes[d].chosen = q as u8;
                    self.truncate_events(d);
                    return true;
                }
            }
            self.nodes.pop();
        }
        false
    }

    fn truncate_events(&mut self, d: usize) {
        if let Some(e) = self.events.get(d) {
            self.keys.truncate(e.keys as usize);
            if self.reduction {
                self.vcs.truncate(e.vc as usize);
            }
        }
        self.events.truncate(d);
    }

    fn prefix_owner(&self, l: usize, count: u32) -> u32 {
        let mut h = Fnv::new();
        for node in &self.nodes[..l.min(self.nodes.len())] {
            h.bytes(&[node.chosen]);
        }
        // FNV's low bits vary little between prefixes that differ only in length: mix before
        // taking the remainder so neighbouring subtrees spread over the shards.
        let mut x = h.finish();
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x % count as u64) as u32
    }
}

impl Chooser for Dfs {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        let d = view.step;
        if d == 0 {
            self.n = view.actor_count();
            self.owned = true;
            self.switched = false;
        }
        let a = if d < self.nodes.len() {
            let node = &self.nodes[d];
            if node.enabled != view.enabled {
                self.diverged = true;
                return Pick::Diverged(format!(
                    "replaying the same prefix, the runnable actors were {:#b} and are now {:#b}",
                    node.enabled, view.enabled
                ));
            }
            let a = node.chosen as usize;
            if d + 1 < self.nodes.len() && node.label != view.label_hash(a) {
                self.diverged = true;
                return Pick::Diverged(format!(
                    "replaying the same prefix, actor {a} ({}) reached a scheduling point with a different label",
                    view.name(a)
                ));
            }
            self.nodes[d].label = view.label_hash(a);
            a
        } else {
            let (sleep, preempts) =
                match d.checked_sub(1).map(|k| (&self.nodes[k], &self.events[k])) {
                    None => (0, 0),
                    Some((parent, ev)) => {
                        let mut sleep = 0u64;
                        if self.reduction {
                            let mut m = parent.sleep & !bit(parent.chosen as usize);
                            while m != 0 {
                                let q = m.trailing_zeros() as usize;
                                m &= m - 1;
                                if !dependent(
                                    &view.reads(q),
                                    &view.writes(q),
                                    self.reads(ev),
                                    self.writes(ev),
                                ) {
                                    sleep |= bit(q);
                                }
                            }
                        }
                        (sleep, parent.cost(parent.chosen as usize) as u32)
                    }
                };
            let cand = view.enabled & !sleep;
            if cand == 0 {
                return Pick::Abort;
            }
            let pick = match view.last {
                Some(l) if cand & bit(l) != 0 => l,
                _ => cand.trailing_zeros() as usize,
            };
            let node = Node {
                enabled: view.enabled,
                backtrack: 0,
                done: 0,
                sleep,
                chosen: pick as u8,
                prev: view.last.map(|l| l as u8).unwrap_or(NONE),
                preempts,
                label: view.label_hash(pick),
            };
            if !self.within_bound(&node, pick) {
                return Pick::Abort;
            }
            let full = !self.reduction || (self.split.is_some() && !self.switched);
            let backtrack = if full { view.enabled } else { bit(pick) };
            self.nodes.push(Node { backtrack, ..node });
            pick
        };
        if let Some((k, count)) = self.split {
            if !self.switched && d > 0 && a != self.nodes[0].chosen as usize {
                self.switched = true;
                self.owned = self.prefix_owner(d + 1, count) == k;
                if !self.owned {
                    return Pick::Abort;
                }
            }
        }
        if self.events.len() == d {
            self.push_event(view, a);
        }
        Pick::Actor(a)
    }

    fn owned(&self) -> bool {
        self.owned
    }

    fn finished(&mut self, steps: usize) {
        // An execution without a context switch never met the ownership test in `choose`: it
        // belongs to the shard its whole schedule hashes to.
        if let Some((k, count)) = self.split {
            if !self.switched {
                self.owned = self.prefix_owner(steps, count) == k;
            }
        }
    }
}

/// Runs the exploration.
pub fn explore<M: Model + ?Sized>(model: &M, cfg: &Config) -> Report {
    let mut engine = Engine::new(model, cfg, super::Strategy::Dfs);
    let mut dfs = Dfs::new(cfg);
    let mut exhausted = false;
    loop {
        if !engine.may_continue(cfg.max_executions) {
            break;
        }
        let out = engine.run(&mut dfs);
        if dfs.diverged || matches!(out.end, End::Diverged { .. }) {
            break;
        }
        if !dfs.advance() {
            exhausted = true;
            break;
        }
    }
    engine.finish(exhausted)
}
