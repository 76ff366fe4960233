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
//! exceed the bound, the same choice is also added where the current actor's run began. That
//! rule is not complete: on the generated program of seed 121 in `tests/prune.rs`, bound 2
//! misses a final state that enumerating every interleaving within the bound reaches (with no
//! bound the search is complete, `tests/dfs.rs`).
//!
//! Narrowed footprints ([`Sched::narrow`](crate::Sched::narrow)): a step is known by its declared
//! footprint while it is pending (sleep sets, the state key) and by the footprint it narrowed to
//! once it ran for everything about the executed event (its races, its vector clock, pruning's
//! summaries), so an event's races are found after its step ran (`commit_event`). Source-DPOR
//! asks only that two executed events it takes as independent commute where they ran, which an
//! exact narrowed footprint says (the dependence of events, not of transitions, as in Nidhugg's
//! memory accesses); the sleep set of a new node is computed with the executed step's narrowed
//! footprint against the sleeping actors' declared ones, the condition for a sleeping step to
//! stay asleep. A read of [`Key::ANY`](crate::Key::ANY) meets every write: a collector's
//! decision depends on the whole state, what it removed are its writes. Tests: `tests/dfs.rs`
//! and `tests/prune.rs` run generated programs with collectors (and one whose collector narrows
//! to a lie, which DPOR must then get wrong: the test's teeth).
//!
//! Visited-state pruning (`Config::prune`, for models that register a `World::fingerprint`):
//! stateless search re-runs every trace to its end even when different traces meet in the same
//! state. With pruning, each new node gets a 128-bit key: the model's fingerprint (shared state
//! and every actor's local state), each actor's status, step count and pending step, the enabled
//! set and, under a preemption bound, the preemptions used and the last actor, so equal keys
//! have equal futures *within the bound*. When a node is popped (fully explored) its key is
//! recorded with the sleep set it was created with, `Z_m`, and a *summary* of every step
//! explored below it: per actor, the union of the keys its steps there read and wrote (and the
//! summaries of the recorded states it was cut at). A new node at a recorded key whose `Z_m` is
//! contained in its own sleep set `Z` is not explored: the execution is cut (counted in
//! `pruned` and in `revisits`), its summary is merged into the parent's, and backtrack points
//! are added conservatively (below). This is the idea of Yang, Chen, Gopalakrishnan and Kirby,
//! "Efficient stateful dynamic partial order reduction" (SPIN 2008), with a coarser summary.
//!
//! Why it stays sound (every final state and failure of the search without pruning is found):
//! * *Below the cut.* The state graph is acyclic (every step raises a waiting actor's step
//!   count or finishes it, and both are in the key), so a recorded node is never on the stack
//!   and its subtree is complete when recorded. A node `n` with the key of a recorded node `m`
//!   has the same futures, labels and footprints, so the steps, races among them and
//!   backtrack points below `n` are those below `m`; its larger sleep set only removes
//!   continuations (a sleeping step is explored from an equivalent state elsewhere: sleep sets
//!   are sound whatever is explored). So whatever the search below `n` would reach (final
//!   states, invariant and final-check failures: functions of the state) was reached below
//!   `m`. This is the standard condition for state caching with sleep sets (Godefroid's thesis,
//!   LNCS 1032, ch. 6: prune only when the stored sleep set is a subset of the current one).
//! * *Above the cut.* What is lost is the race detection of the steps below `n` against the
//!   prefix of `n`: source-DPOR would add, for each race `(e, x)` with `e` above `n` and `x`
//!   below, an initial of `notdep(e).x` to the node before `e` (and, over the bound, the same
//!   choice where the preempted run began). Any such `x` is a step of another actor dependent
//!   with `e`, and its actor and footprint are in `m`'s summary (the steps below `n` are steps
//!   below `m`). So at a cut every node before a prefix step `e` that meets another actor's
//!   keys in the summary gets a backtrack choice that is an initial of `notdep(e).x` whatever
//!   `x` is: when some prefix step after `e` does not happen after `e`, the first such step is
//!   the first step of `notdep(e).x` (prefix steps come before the continuation's), so its
//!   actor is an initial; otherwise *every* enabled actor, a superset of the initials. Under a
//!   bound, the start of the run before `e` gets the same choice and the start of the run in
//!   progress at the cut (a run below the cut may have begun above it) every enabled actor.
//!   Treating every dependent `e` as racing, not only the races, only adds choices, and more
//!   backtrack choices never lose an execution. The summary is a union per actor, which answers
//!   "is some step of another actor below dependent with `e`" exactly, since dependence is a
//!   disjunction over keys.
//! * Shards: a trunk node (before the first context switch) is never recorded nor cut, since its
//!   subtrees are split between shards; every node after the switch lies in one shard's slice.
//!   So a recorded state's subtree was explored whole by the shard that recorded it, and the
//!   threads of one exploration may share one table ([`super::epochs`]): a cut at a state
//!   another shard recorded is sound for the reasons above.
//!
//! The price of the conservative rule is extra branches above cuts; they end at recorded states
//! quickly, and on the corpus pruning wins (the benchmark `prune` prints both). The table has a
//! memory limit (`Config::prune_memory`); once full it records no new state (and the report says
//! at how many), which only prunes less. Tests: `tests/prune.rs` (generated programs reach the
//! same final states and failures with and without pruning, with and without reduction and
//! bound; toys whose Mazurkiewicz traces are counted by brute force).
//!
//! Sharding: with `shard K/N`, an execution belongs to the shard `fnv(prefix) mod N` where the
//! prefix runs up to and including its first context switch (the first step taken by an actor
//! other than the one that took step 0; an execution without a switch hashes whole). Nodes on the
//! trunk (before the first switch) keep every enabled actor as a choice, so the trunk does not
//! depend on what is found below it, and every subtree below a first switch is explored by one
//! shard only, with full reduction. The shards therefore partition exactly the executions of the
//! run `shard 0/1`. Splitting at the first switch rather than at a fixed depth balances the
//! shards: under a preemption bound most executions share their first few steps.

use super::epochs::SharedTable;
use super::visited::{default_limit, Summary, Table, Touch};
use crate::executor::{Chooser, End, Model, Pick, Status, View};
use crate::explorer::{Config, Engine, Report};
use crate::footprint::{dependent, Footprint, Key};
use crate::hash::{Fnv, Fnv128};
use std::sync::Arc;

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
    /// Pruning: the state's fingerprint (`None`: not recorded, e.g. on a shard's trunk).
    state: Option<u128>,
    /// The sleep set the node was created with (`sleep` grows as siblings are explored).
    sleep0: u64,
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
    /// The step picked last, until it ran and its races are known (`commit_event`).
    uncommitted: Option<Event>,
    prune: Option<Prune>,
}

/// Visited-state pruning's working data (see the module doc).
struct Prune {
    table: Table,
    /// `sums[d]`: the summary of the steps explored so far at depth >= d below node d.
    sums: Vec<Vec<Touch>>,
    /// Steps each actor has taken in this execution so far.
    steps_of: Vec<u64>,
    revisits: u64,
    /// Reused by [`Summary::merge`].
    scratch: Vec<Touch>,
    /// This thread's place at the table shared with the other threads of a parallel
    /// exploration ([`super::epochs`]); `table` is then this epoch's own, `previous` the last
    /// epoch's (deposited, but not yet seen in the shared table).
    member: Option<Member>,
    previous: Option<Arc<Table>>,
    /// This thread's epoch, the steps taken in it, and the steps an epoch has
    /// (`Config::prune_epoch_steps`).
    epoch: u32,
    epoch_steps: u64,
    epoch_len: u64,
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
            uncommitted: None,
            prune: cfg.prune.then(|| Prune {
                table: match &cfg.visited {
                    Some((shared, _)) => shared.own_table(0),
                    None => Table::new(cfg.prune_memory.unwrap_or_else(default_limit)),
                },
                member: cfg.visited.clone().map(|(shared, index)| Member {
                    shared,
                    index,
                    last: None,
                }),
                previous: None,
                epoch: 0,
                epoch_steps: 0,
                epoch_len: cfg.prune_epoch_steps.max(1),
                sums: Vec::new(),
                steps_of: Vec::new(),
                revisits: 0,
                scratch: Vec::new(),
            }),
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

    /// The step actor `p` is about to take, with its declared footprint; its races are found
    /// once it ran ([`Self::commit_event`]), from the footprint it ran with.
    fn push_event(&mut self, view: &View<'_>, p: usize) {
        let keys = self.keys.len() as u32;
        let (r, w) = (view.reads(p), view.writes(p));
        self.keys.extend_from_slice(&r);
        self.keys.extend_from_slice(&w);
        self.uncommitted = Some(Event {
            actor: p as u8,
            lidx: 0,
            keys,
            nreads: r.len() as u32,
            nwrites: w.len() as u32,
            vc: self.vcs.len() as u32,
        });
    }

    /// The step pushed last ran, touching `narrowed` if the actor said so ([`Sched::narrow`]):
    /// summarise it, give it its vector clock and add the backtrack points of its races.
    ///
    /// [`Sched::narrow`]: crate::Sched::narrow
    fn commit_event(&mut self, narrowed: Option<Footprint<'_>>) {
        let Some(mut ev) = self.uncommitted.take() else {
            return; // a replayed prefix step: committed in an earlier execution
        };
        if let Some(f) = narrowed {
            self.keys.truncate(ev.keys as usize);
            self.keys.extend_from_slice(f.reads);
            self.keys.extend_from_slice(f.writes);
            (ev.nreads, ev.nwrites) = (f.reads.len() as u32, f.writes.len() as u32);
        }
        let (i, p) = (self.events.len(), ev.actor as usize);
        self.summarise(
            i,
            p,
            ev.keys as usize,
            ev.nreads as usize,
            ev.nwrites as usize,
        );
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
            let start = self.run_start(j - 1);
            let ns = &mut self.nodes[start];
            if ns.enabled & bit(q) != 0 {
                ns.backtrack |= bit(q);
            }
        }
    }

    /// A node for step `d`, beyond the stack: its sleep set (the parent's, minus what the
    /// parent's step woke, plus the parent's explored siblings), a cut at a visited state, its
    /// first choice (no preemption). `None`: the execution stops here.
    fn new_node(&mut self, view: &View<'_>, d: usize) -> Option<usize> {
        let (sleep, preempts) = match d.checked_sub(1).map(|k| (&self.nodes[k], &self.events[k])) {
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
            return None;
        }
        let state = self.state_key(view, preempts);
        if let Some(state) = state {
            if self.cut_at_visited(d, state, sleep) {
                return None;
            }
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
            state,
            sleep0: sleep,
        };
        if !self.within_bound(&node, pick) {
            return None;
        }
        let full = !self.reduction || (self.split.is_some() && !self.switched);
        let backtrack = if full { view.enabled } else { bit(pick) };
        self.nodes.push(Node { backtrack, ..node });
        Some(pick)
    }

    /// Where the run of consecutive steps of `nodes[k]`'s actor that contains step `k` began.
    fn run_start(&self, k: usize) -> usize {
        let a = self.nodes[k].chosen;
        let mut s = k;
        while s > 0 && self.nodes[s - 1].chosen == a {
            s -= 1;
        }
        s
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
            let node = self.nodes.pop().expect("not empty");
            self.finish_node(d, &node);
        }
        false
    }

    fn truncate_events(&mut self, d: usize) {
        self.uncommitted = None;
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

/// Visited-state pruning (see the module doc for why each rule is there).
impl Dfs {
    /// Adds event `i` (actor `p`, its keys at `keys[at..]`) to the summary of its node.
    fn summarise(&mut self, i: usize, p: usize, at: usize, nreads: usize, nwrites: usize) {
        let Some(pr) = self.prune.as_mut() else {
            return;
        };
        let (reads, writes) = self.keys[at..at + nreads + nwrites].split_at(nreads);
        if pr.sums.len() <= i {
            pr.sums.resize_with(i + 1, Vec::new);
        }
        Summary::add(&mut pr.sums[i], p, reads, writes);
    }

    /// Node `d` is fully explored: record its state, and pass its summary up to its parent.
    fn finish_node(&mut self, d: usize, node: &Node) {
        let Some(pr) = self.prune.as_mut() else {
            return;
        };
        if pr.sums.len() <= d {
            return;
        }
        if let Some(state) = node.state {
            pr.table.insert(state, node.sleep0, &pr.sums[d]);
        }
        let (above, below) = pr.sums.split_at_mut(d);
        if let Some(parent) = above.last_mut() {
            Summary::merge(parent, &below[0], &mut pr.scratch);
        }
        below[0].clear();
    }

    /// The fingerprint of the state at a new node: the model's, the actors' statuses, step
    /// counts and pending steps, the enabled set and, under a bound, the preemptions used and the
    /// last actor. `None` when not pruning here: no fingerprint, or a shard's trunk (whose
    /// subtrees this shard does not all own).
    fn state_key(&self, view: &View<'_>, preempts: u32) -> Option<u128> {
        let pr = self.prune.as_ref()?;
        if self.split.is_some() && !self.switched {
            return None;
        }
        let mut h = Fnv128::new();
        h.u128(view.model_state()?);
        h.u64(view.enabled);
        for i in 0..self.n {
            if view.status(i) == Status::Finished {
                h.bytes(&[0]);
                continue;
            }
            h.bytes(&[1]);
            h.u64(pr.steps_of[i]);
            h.u64(view.label_hash(i));
            for k in view.reads(i).iter() {
                h.u64(k.0);
            }
            h.bytes(&[2]);
            for k in view.writes(i).iter() {
                h.u64(k.0);
            }
        }
        if self.bound.is_some() {
            h.u64(preempts as u64);
            h.u64(view.last.map_or(u64::MAX, |l| l as u64));
        }
        Some(h.finish())
    }

    /// A new node at depth `d` would be at `state` with sleep set `sleep`: when that state was
    /// fully explored under a sleep set inside `sleep`, cut the execution here, after adding the
    /// backtrack points the continuation below it could have added above it.
    fn cut_at_visited(&mut self, d: usize, state: u128, sleep: u64) -> bool {
        let Some(pr) = self.prune.as_mut() else {
            return false;
        };
        let own = pr.table.lookup(state, sleep);
        let own = own.or_else(|| pr.previous.as_ref()?.lookup(state, sleep));
        let sum = match own {
            Some(sum) => sum.to_vec(),
            None => match pr
                .member
                .as_ref()
                .and_then(|m| m.shared.lookup(state, sleep, pr.epoch))
            {
                Some(sum) => sum,
                None => return false,
            },
        };
        self.backtrack_for_summary(d, &sum);
        let pr = self.prune.as_mut().expect("pruning");
        if let Some(parent) = d.checked_sub(1).and_then(|k| pr.sums.get_mut(k)) {
            Summary::merge(parent, &sum, &mut pr.scratch);
        }
        pr.revisits += 1;
        true
    }

    /// The conservative race detection of a cut at depth `d` against the summary `sum` of what
    /// lies below: every earlier step `e` dependent with a step `x` of another actor in `sum`
    /// may race with it. Source-DPOR would give the node before `e` an initial of
    /// `v = notdep(e).x`; without `x`'s place that is known only when some later prefix step
    /// does not happen after `e`: the first such step is the first of `v`, so its actor is an
    /// initial. Otherwise the node gets every enabled actor (a superset of the initials). Under
    /// a bound, the start of the run before `e` gets the same choice, and the start of the run
    /// in progress at the cut (a run below the cut may have begun above it) every enabled actor
    /// (the Coons-Musuvathi-McKinley rule, for races above and below the cut).
    fn backtrack_for_summary(&mut self, d: usize, sum: &[Touch]) {
        if !self.reduction {
            return; // every enabled actor is already a choice everywhere
        }
        // (node, the initial to add, or None: every enabled actor)
        let mut marks: Vec<(usize, Option<usize>)> = Vec::new();
        for j in 0..d {
            let e = &self.events[j];
            if Summary::meets_other(sum, e.actor as usize, self.reads(e), self.writes(e)) {
                let q = self.first_not_after(j, d);
                marks.push((j, q));
                if self.bound.is_some() && j > 0 {
                    marks.push((self.run_start(j - 1), q));
                }
            }
        }
        if self.bound.is_some() && d > 0 {
            marks.push((self.run_start(d - 1), None));
        }
        for (j, q) in marks {
            let node = &mut self.nodes[j];
            match q {
                Some(q) if node.enabled & bit(q) != 0 => node.backtrack |= bit(q),
                _ => node.backtrack |= node.enabled,
            }
        }
    }

    /// The actor of the first step after `events[j]` (before `d`) that does not happen after it.
    fn first_not_after(&self, j: usize, d: usize) -> Option<usize> {
        let e = &self.events[j];
        self.events[j + 1..d]
            .iter()
            .find(|k| self.vc(k)[e.actor as usize] <= e.lidx)
            .map(|k| k.actor as usize)
    }
}

impl Chooser for Dfs {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        let d = view.step;
        if d == 0 {
            self.n = view.actor_count();
            self.owned = true;
            self.switched = false;
            if let Some(pr) = self.prune.as_mut() {
                pr.steps_of.clear();
                pr.steps_of.resize(self.n, 0);
            }
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
            match self.new_node(view, d) {
                Some(pick) => pick,
                None => return Pick::Abort,
            }
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
        if let Some(pr) = self.prune.as_mut() {
            pr.steps_of[a] += 1;
            pr.epoch_steps += 1;
        }
        Pick::Actor(a)
    }

    fn ran(&mut self, narrowed: Option<Footprint<'_>>) {
        self.commit_event(narrowed);
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
        dfs.end_epoch_if_due();
    }
    if let Some(pr) = dfs.prune.as_mut() {
        engine.report.revisits = pr.revisits;
        let table = std::mem::replace(&mut pr.table, Table::new(0));
        match pr.member.take() {
            // The shared table's counts are the run's: `parallel::explore` reports them.
            Some(m) => m.leave(Some(Arc::new(table))),
            None => {
                engine.report.states = table.len() as u64;
                engine.report.prune_full_at = table.full_at;
            }
        }
    }
    engine.finish(exhausted)
}

/// A thread's place at the shared table: it leaves when the exploration ends, and
/// also when it unwinds, so the other threads never wait for it.
struct Member {
    shared: Arc<SharedTable>,
    index: usize,
    /// The last table it deposits (taken when it leaves).
    last: Option<Arc<Table>>,
}

impl Member {
    /// Leaves with its last epoch's table (deposited by the drop).
    fn leave(mut self, table: Option<Arc<Table>>) {
        self.last = table;
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shared.leave(self.index, self.last.take());
    }
}

impl Dfs {
    /// At an execution boundary: after an epoch's steps, deposits this epoch's table and starts
    /// the next with an empty one ([`super::epochs`]).
    fn end_epoch_if_due(&mut self) {
        let Some(pr) = self.prune.as_mut() else {
            return;
        };
        let Some(m) = &pr.member else {
            return;
        };
        if pr.epoch_steps < pr.epoch_len {
            return;
        }
        let own = Arc::new(std::mem::replace(&mut pr.table, Table::new(0)));
        m.shared.deposit(m.index, pr.epoch, own.clone());
        pr.previous = Some(own);
        pr.epoch += 1;
        pr.table = m.shared.own_table(pr.epoch);
        pr.epoch_steps = 0;
    }
}
