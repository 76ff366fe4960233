//! Strategies: each decides, at every scheduling point, which enabled actor runs next.

pub mod dfs;
pub mod pct;
pub mod random;
pub mod replay;

use crate::executor::View;

/// The canonical continuation used when a strategy has no opinion: keep running the current
/// actor if it can run (no preemption), else the lowest-numbered enabled actor.
pub(crate) fn canonical(view: &View<'_>) -> usize {
    match view.last {
        Some(l) if view.enabled & (1u64 << l) != 0 => l,
        _ => view.enabled.trailing_zeros() as usize,
    }
}
