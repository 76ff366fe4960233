//! Strategies: each decides, at every scheduling point, which enabled actor runs next.

pub mod dfs;
pub mod epochs;
pub mod pct;
pub mod random;
pub mod replay;
pub(crate) mod visited;

use crate::executor::View;
use std::fmt;
use std::str::FromStr;

/// How an exploration chooses schedules. The parameters of each (seed, PCT depth, bound) live in
/// [`Config`](crate::Config), so one value names the strategy in files, flags, the environment
/// and reports alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Exhaustive depth-first search under the preemption bound, with source-DPOR ([`dfs`]).
    Dfs,
    /// Seeded uniform random choices ([`random`]).
    Random,
    /// Probabilistic concurrency testing, seeded, with a bug depth ([`pct`]).
    Pct,
    /// One given schedule, replayed ([`replay`]); reports of a persisted failure say this.
    Replay,
}

impl Strategy {
    /// The names [`FromStr`] takes, for error messages.
    pub const NAMES: &'static str = "dfs, random, pct or replay";

    /// The name as files and flags spell it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Dfs => "dfs",
            Strategy::Random => "random",
            Strategy::Pct => "pct",
            Strategy::Replay => "replay",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Strategy, String> {
        [
            Strategy::Dfs,
            Strategy::Random,
            Strategy::Pct,
            Strategy::Replay,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| format!("unknown strategy `{s}` (expected {})", Strategy::NAMES))
    }
}

/// The canonical continuation used when a strategy has no opinion: keep running the current
/// actor if it can run (no preemption), else the lowest-numbered enabled actor.
pub(crate) fn canonical(view: &View<'_>) -> usize {
    match view.last {
        Some(l) if view.enabled & (1u64 << l) != 0 => l,
        _ => view.enabled.trailing_zeros() as usize,
    }
}
