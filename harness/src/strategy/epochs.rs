//! One visited table for the threads of one pruned exploration ([`crate::parallel::explore`]),
//! shared without letting thread timing reach a result.
//!
//! Each thread explores its shard with its own table of the states it fully explored in the
//! current *epoch*, and looks states up in its own table, then in the shared one. An epoch of a
//! thread ends at the first execution boundary after `Config::prune_epoch_steps` more steps
//! (default [`EPOCH_STEPS`]); there the
//! threads meet: when every thread still running has arrived, the tables deposited (in shard
//! order, each sorted by state) are added to the shared table, and every thread starts the next
//! epoch with an empty table of its own. A thread that ends deposits its table and leaves; what
//! it deposited joins at the next meeting (or at the end). So what a thread sees during epoch `e`
//! is the shared table as of meeting `e - 1` plus its own states: a function of the shards, the
//! epoch length and the model, never of which thread ran faster. Results do depend on the thread
//! count (as the per-thread tables did): a state another thread recorded cuts executions.
//!
//! Why a cut at a state another thread recorded is sound: a state is recorded only when its node
//! is fully explored, and only below its execution's first context switch, where every
//! execution through the node belongs to the recording thread's shard ([`super::dfs`]'s
//! module doc); so that thread explored the whole subtree, and found whatever failure it holds.
//! The summary stored with it is in the footprints' own keys ([`super::visited::Summary`]), the
//! same in every thread.

use super::visited::{Table, Touch};
use std::sync::{Condvar, Mutex, RwLock};

/// The default steps a thread explores between two meetings: long enough that the threads' speeds even out
/// within an epoch (a meeting waits for the slowest), short enough that states cross soon.
pub const EPOCH_STEPS: u64 = 10_000;

/// The shared table and the meeting point (see the module doc).
pub struct SharedTable {
    table: RwLock<Table>,
    meeting: Mutex<Meeting>,
    turn: Condvar,
    limit: usize,
    threads: usize,
}

struct Meeting {
    /// The own tables deposited since the last meeting, by thread.
    deposits: Vec<Option<Table>>,
    /// Threads not yet left.
    running: usize,
    /// Of those, the ones waiting at the meeting.
    waiting: usize,
    /// Meetings held.
    held: u64,
}

impl SharedTable {
    /// A table for `threads` threads within about `limit` bytes in all.
    pub fn new(threads: usize, limit: usize) -> SharedTable {
        SharedTable {
            table: RwLock::new(Table::new(limit)),
            meeting: Mutex::new(Meeting {
                deposits: (0..threads).map(|_| None).collect(),
                running: threads,
                waiting: 0,
                held: 0,
            }),
            turn: Condvar::new(),
            limit,
            threads,
        }
    }

    /// A thread's own table for its next epoch: an equal part of what the shared table left.
    pub(crate) fn own_table(&self) -> Table {
        let used = self.read().bytes();
        Table::new(self.limit.saturating_sub(used) / self.threads.max(1))
    }

    /// The summary below `state`, as [`Table::lookup`], in the shared table.
    pub(crate) fn lookup(&self, state: u128, sleep: u64) -> Option<Vec<Touch>> {
        self.read().lookup(state, sleep).map(<[Touch]>::to_vec)
    }

    /// Thread `i` ends its epoch with `own`: waits until every running thread has.
    pub(crate) fn meet(&self, i: usize, own: Table) {
        let mut m = self.meeting.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            m.deposits[i].is_none(),
            "thread {i} deposits once per epoch"
        );
        m.deposits[i] = Some(own);
        m.waiting += 1;
        let held = m.held;
        if m.waiting == m.running {
            self.hold(&mut m);
            return;
        }
        while m.held == held {
            m = self.turn.wait(m).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Thread `i` ends (its last table `own`, if it has one): the others no longer wait for it.
    pub(crate) fn leave(&self, i: usize, own: Option<Table>) {
        let mut m = self.meeting.lock().unwrap_or_else(|p| p.into_inner());
        m.deposits[i] = own;
        m.running -= 1;
        if m.waiting == m.running {
            self.hold(&mut m);
        }
    }

    /// The meeting: the deposits join the shared table in thread order, and the waiting threads go on.
    fn hold(&self, m: &mut Meeting) {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        for own in m.deposits.iter_mut().filter_map(Option::take) {
            let own_full = own.full_at.is_some();
            table.absorb(own);
            if own_full {
                // A thread's share of the limit ran out: it did not record all it explored.
                let held = table.len() as u64;
                table.full_at.get_or_insert(held);
            }
        }
        m.waiting = 0;
        m.held += 1;
        self.turn.notify_all();
    }

    /// States held, and how many when the memory limit was reached.
    pub(crate) fn counts(&self) -> (u64, Option<u64>) {
        let t = self.read();
        (t.len() as u64, t.full_at)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }
}
