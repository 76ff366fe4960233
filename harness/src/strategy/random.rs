//! Seeded uniform random exploration: at each scheduling point, every enabled actor is equally
//! likely. Execution `i` draws from a generator seeded by `(seed, i)` alone, so any execution can
//! be regenerated without the ones before it, and `shard K/N` takes executions `i ≡ K (mod N)`:
//! the union of the shards is exactly the unsharded run.

use crate::executor::{Chooser, Model, Pick, View};
use crate::explorer::{Config, Engine, Report};
use crate::rng::SplitMix64;

/// Default number of executions when `Config::max_executions` is unset.
pub const DEFAULT_EXECUTIONS: u64 = 1000;

/// The `k`-th (0-based) set bit of `mask`.
pub(crate) fn nth_bit(mut mask: u64, k: u32) -> usize {
    for _ in 0..k {
        mask &= mask - 1;
    }
    mask.trailing_zeros() as usize
}

struct RandomChooser {
    rng: SplitMix64,
}

impl Chooser for RandomChooser {
    fn choose(&mut self, view: &View<'_>) -> Pick {
        let n = view.enabled.count_ones();
        Pick::Actor(nth_bit(view.enabled, self.rng.below(n as u64) as u32))
    }
}

/// Runs the exploration; execution indices `0..max_executions` (or this shard's share).
pub fn explore<M: Model + ?Sized>(model: &M, cfg: &Config, seed: u64) -> Report {
    let total = cfg.max_executions.unwrap_or(DEFAULT_EXECUTIONS);
    let mut engine = Engine::new(model, cfg, super::Strategy::Random);
    let (k, n) = cfg
        .shard
        .map(|s| (s.index as u64, s.count as u64))
        .unwrap_or((0, 1));
    let mut i = k;
    while i < total {
        if !engine.may_continue(None) {
            break;
        }
        let mut chooser = RandomChooser {
            rng: SplitMix64::for_execution(seed, i),
        };
        engine.run(&mut chooser);
        i += n;
    }
    if i >= total {
        // A sample, however large, is not the space: the budget stopped it.
        engine.report.stopped = Some(crate::explorer::Stop::Executions);
    }
    engine.finish(false)
}
