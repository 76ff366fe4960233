//! PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
//! ASPLOS 2010).
//!
//! Each execution gives the n actors distinct random priorities d..d+n-1 and picks d−1 random
//! change points among the k steps; it always runs the highest-priority enabled actor, and when
//! the step count reaches the i-th change point the running actor's priority drops to i (below
//! every initial priority). A bug of depth d (d ordering constraints) is then hit with
//! probability at least 1/(n·k^(d−1)) per execution, whatever the program.
//!
//! k must be known before the execution: it is `Config::pct_steps` or measured by one probe
//! execution in canonical order. It is fixed for the whole exploration so that execution `i`
//! depends only on `(seed, i)`, which makes sharding by execution index exact.

use crate::executor::{Chooser, Model, Pick, View};
use crate::explorer::{Config, Engine, PctBound, Report};
use crate::rng::SplitMix64;
use crate::strategy::random::DEFAULT_EXECUTIONS;

struct PctChooser {
    rng: SplitMix64,
    depth: usize,
    k: usize,
    prio: Vec<usize>,
    change: Vec<usize>,
}

impl PctChooser {
    fn init(&mut self, n: usize) {
        // Random permutation of d..d+n-1 (Fisher-Yates).
        self.prio = (0..n).map(|i| self.depth + i).collect();
        for i in (1..n).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            self.prio.swap(i, j);
        }
        self.change = (0..self.depth.saturating_sub(1))
            .map(|_| 1 + self.rng.below(self.k as u64) as usize)
            .collect();
    }

    fn highest(&self, enabled: u64) -> usize {
        let mut best = usize::MAX;
        let mut best_p = 0;
        let mut m = enabled;
        while m != 0 {
            let a = m.trailing_zeros() as usize;
            m &= m - 1;
            if best == usize::MAX || self.prio[a] > best_p {
                best = a;
                best_p = self.prio[a];
            }
        }
        best
    }
}

impl Chooser for PctChooser {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        if self.prio.len() != view.actor_count() {
            self.init(view.actor_count());
        }
        let step = view.step + 1; // change points are 1-based step numbers
        for i in 0..self.change.len() {
            if self.change[i] == step {
                let t = self.highest(view.enabled);
                self.prio[t] = i + 1;
            }
        }
        Pick::Actor(self.highest(view.enabled))
    }
}

struct Canonical;
impl Chooser for Canonical {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        Pick::Actor(super::canonical(view))
    }
}

/// The deepest bug depth PCT takes: each execution draws `depth - 1` change points, and beyond
/// a few the probability bound `1/(n·k^(d−1))` is nil anyway. Front ends refuse more; here a
/// larger depth is clamped so that no input can make the chooser allocate without bound.
pub const MAX_DEPTH: usize = 16;

/// Runs the exploration with bug depth `depth` (1..=[`MAX_DEPTH`], clamped).
pub fn explore<M: Model + ?Sized>(model: &M, cfg: &Config, seed: u64, depth: usize) -> Report {
    let depth = depth.clamp(1, MAX_DEPTH);
    let total = cfg.max_executions.unwrap_or(DEFAULT_EXECUTIONS);
    let mut engine = Engine::new(model, cfg, super::Strategy::Pct);
    let k = match cfg.pct_steps {
        Some(k) => k.max(1),
        None => engine.exec.run(model, &mut Canonical, false).steps.max(1),
    };
    let (first, stride) = cfg
        .shard
        .map(|s| (s.index as u64, s.count as u64))
        .unwrap_or((0, 1));
    let mut i = first;
    let mut n_seen = 0;
    while i < total {
        if !engine.may_continue(None) {
            break;
        }
        let mut chooser = PctChooser {
            rng: SplitMix64::for_execution(seed, i),
            depth,
            k,
            prio: Vec::new(),
            change: Vec::new(),
        };
        let out = engine.run(&mut chooser);
        n_seen = n_seen.max(out.names.len());
        i += stride;
    }
    let k_seen = engine.report.max_steps_seen.max(k);
    engine.report.pct = Some(PctBound::new(n_seen, k_seen, depth));
    if i >= total {
        // A sample, however large, is not the space: the budget stopped it.
        engine.report.stopped = Some(crate::explorer::Stop::Executions);
    }
    engine.finish(false)
}
