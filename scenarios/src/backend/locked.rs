//! The model under other model checkers (loom, shuttle): each client call is one lock, apply,
//! unlock, and the lock is the only scheduling point the checker sees.

use super::model::Sim;
use super::{Client, RepoObject};
use pushrace_models::program::Call;
use pushrace_models::{Error, Op, Outcome};
use std::future::Future;

/// Exclusive access to a `Sim` behind some mutex: how other model checkers (loom, shuttle) drive
/// the same programs, each client call one lock, apply, unlock.
pub trait SimLock {
    fn with<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R;
}

/// A [`Client`] over any [`SimLock`]: the lock is the only scheduling point the checker sees.
pub struct LockedClient<L>(pub L);

impl<L: SimLock> Call for LockedClient<L> {
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>> {
        std::future::ready(self.0.with(|s| s.apply(&op)))
    }
}

impl<L: SimLock> Client for LockedClient<L> {
    async fn registry_has(&self, o: &RepoObject) -> bool {
        self.0.with(|s| s.registry.has(o))
    }

    async fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        self.0.with(|s| s.registry.tagged(tag, digest))
    }

    async fn registry_put(&self, o: &RepoObject) {
        self.0.with(|s| s.registry.put(o));
    }

    async fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) {
        self.0.with(|s| s.registry.put_tagged(tag, digest));
    }

    async fn registry_mount(&self, o: &RepoObject, from: &str) -> bool {
        self.0.with(|s| s.registry.mount(o, from))
    }

    async fn gc_tick(&self) -> bool {
        self.0.with(|s| s.gc_tick())
    }
}
