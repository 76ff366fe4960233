//! One scenario exploration over several threads (`pushrace explore --jobs N`, the library's
//! `Config::jobs`): the shards of [`pushrace_harness::parallel`], each thread with its own model,
//! merged into one report and read as one [`Verdict`], which does not depend on the thread count.

use crate::explore::{self, Options, Verdict};
use crate::scenario::Scenario;

/// [`explore::explore`] in `jobs` threads: a declared `[check] schedule` is replayed first, as
/// there; `opts.shard`, when set, is the slice the threads split between them.
pub fn explore(s: &Scenario, opts: &Options, jobs: u32) -> Verdict {
    if let Some(v) = explore::replay_declared(s, opts) {
        return v;
    }
    let build = || {
        (
            explore::model_for(s, opts.prune),
            explore::search_config(s, opts),
        )
    };
    let report = pushrace_harness::parallel::explore(jobs, opts.strategy, build);
    explore::verdict_of(s, opts, report)
}
