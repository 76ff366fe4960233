//! gc/scheduler: when a background GC is due, and the counters that decide it.
//!
//! containerd calls the scheduler's mutation callback after every successful metadata update
//! transaction, passing whether the database is "dirty" (a delete happened since the last GC:
//! image Delete, content Delete, lease Delete, lease DeleteResource). With the default
//! `deletion_threshold = 0` any dirty mutation schedules a GC after `schedule_delay = 0`; with
//! `mutation_threshold = 100` a hundred clean mutations do too. From a client's point of view a
//! background GC therefore lands at some later instant between any two RPCs; the model exposes
//! `gc_due` and lets a ticker actor choose that instant.

/// Whether GCs happen only when someone waits for one, or also in the background.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum GcMode {
    /// Only synchronous deletes and explicit `gc.run` collect.
    #[default]
    SyncOnly,
    /// The default scheduler: a GC is due after any delete (see module docs).
    Background,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Scheduler {
    /// metadata.DB.dirty: deletes since the last GC.
    pub dirty: u32,
    /// metadata.DB.dirtyCS: a content record or ingest was removed; the next GC cleans the backend.
    pub dirty_cs: bool,
    /// Mutation events since the last GC.
    pub mutations: u32,
    /// Mutation events that saw a dirty database since the last GC.
    pub deletions: u32,
    /// GCs run so far.
    pub collections: u64,
}

/// gc/scheduler defaults in containerd 1.6–2.x.
pub const MUTATION_THRESHOLD: u32 = 100;

impl Scheduler {
    /// After a successful update transaction (`DB.Update`'s mutation callbacks).
    pub(crate) fn mutation(&mut self) {
        self.mutations += 1;
        if self.dirty > 0 {
            self.deletions += 1;
        }
    }

    /// A delete that makes the database dirty, recorded before the transaction's mutation event.
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty += 1;
    }

    /// Would the default scheduler run a GC now (deletion_threshold 0, mutation_threshold 100)?
    pub fn gc_due(&self) -> bool {
        self.deletions > 0 || self.mutations >= MUTATION_THRESHOLD
    }

    pub(crate) fn collected(&mut self) {
        self.dirty = 0;
        self.mutations = 0;
        self.deletions = 0;
        self.collections += 1;
    }
}
