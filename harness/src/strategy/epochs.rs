//! One visited table for the threads of one pruned exploration ([`crate::parallel::explore`]),
//! shared without letting thread timing reach a result.
//!
//! Each thread's exploration is cut into *epochs*: an epoch ends at the first execution boundary
//! after `Config::prune_epoch_steps` more steps (default [`EPOCH_STEPS`]). A thread records the
//! states it fully explored in a table of its own, and at the end of its epoch `e` deposits that
//! table. When every thread has deposited its epoch `e` (or left), the deposits join the shared
//! table in thread order, each sorted by state, as entries of epoch `e`.
//!
//! During its epoch `f` a thread looks a state up in its own tables of epochs `f` and `f - 1`,
//! then among the shared entries of epochs up to `f - 2`, and it starts epoch `f` only once those
//! have joined (so it waits only for a thread more than one epoch behind). Entries are never
//! replaced by a later epoch's, so what a thread sees is a function of the shards, the epoch
//! length and the model, never of which thread ran faster: a run repeats exactly. Results do
//! depend on the thread count: a state another thread recorded cuts executions.
//!
//! Why a cut at a state another thread recorded is sound: a state is recorded only when its node
//! is fully explored, and only below its execution's first context switch, where every
//! execution through the node belongs to the recording thread's shard ([`super::dfs`]'s
//! module doc); so that thread explored the whole subtree, and found whatever failure it holds.
//! The summary stored with it is in the footprints' own keys ([`super::visited::Summary`]), the
//! same in every thread.

use super::visited::{Table, Touch};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

/// The default steps of an epoch: long enough that deposits cost little, short enough that
/// states cross between threads soon (the threads explore mostly the same states).
pub const EPOCH_STEPS: u64 = 2_000;

/// The shared table and the deposits not yet in it (see the module doc).
pub struct SharedTable {
    table: RwLock<Table>,
    ledger: Mutex<Ledger>,
    /// Signalled when an epoch joined.
    epoch_joined: Condvar,
    limit: usize,
    threads: usize,
}

struct Ledger {
    /// Per thread, its deposited tables of epochs `joined..`, oldest first.
    deposits: Vec<VecDeque<Arc<Table>>>,
    /// Per thread, whether it left (it deposits nothing more).
    left: Vec<bool>,
    /// Epochs whose deposits joined the table.
    joined: u32,
    /// The table's size after each epoch joined, in bytes.
    bytes_after: Vec<usize>,
}

impl SharedTable {
    /// A table for `threads` threads within about `limit` bytes in all.
    pub fn new(threads: usize, limit: usize) -> SharedTable {
        SharedTable {
            table: RwLock::new(Table::new(limit)),
            ledger: Mutex::new(Ledger {
                deposits: (0..threads).map(|_| VecDeque::new()).collect(),
                left: vec![false; threads],
                joined: 0,
                bytes_after: Vec::new(),
            }),
            epoch_joined: Condvar::new(),
            limit,
            threads,
        }
    }

    /// A thread's own table for its epoch `epoch`: an equal part of what the shared table left
    /// as of the last epoch it may see.
    pub(crate) fn own_table(&self, epoch: u32) -> Table {
        let used = match epoch.checked_sub(2) {
            Some(e) => self.lock().bytes_after[e as usize],
            None => 0,
        };
        Table::new(self.limit.saturating_sub(used) / (2 * self.threads.max(1)))
    }

    /// The summary below `state`, as [`Table::lookup`], among what a thread in epoch `epoch`
    /// sees of the shared table (epochs up to `epoch - 2`).
    pub(crate) fn lookup(&self, state: u128, sleep: u64, epoch: u32) -> Option<Vec<Touch>> {
        let seen = epoch.checked_sub(2)?;
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.lookup_upto(state, sleep, seen).map(<[Touch]>::to_vec)
    }

    /// Thread `i` ends its epoch `epoch` with `own`: deposits it, and returns once the thread
    /// may start epoch `epoch + 1` (every epoch up to `epoch - 1` joined).
    pub(crate) fn deposit(&self, i: usize, epoch: u32, own: Arc<Table>) {
        let mut l = self.lock();
        let queued = l.joined + l.deposits[i].len() as u32;
        assert_eq!(queued, epoch, "thread {i} deposits its epochs in order");
        l.deposits[i].push_back(own);
        self.join_ready(&mut l);
        while l.joined < epoch {
            l = self.epoch_joined.wait(l).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Thread `i` ends (with its last epoch's table, if it has one): no one waits for it.
    pub(crate) fn leave(&self, i: usize, own: Option<Arc<Table>>) {
        let mut l = self.lock();
        l.deposits[i].extend(own);
        l.left[i] = true;
        self.join_ready(&mut l);
    }

    /// Joins every epoch all threads have deposited (or left before), in epoch order.
    fn join_ready(&self, l: &mut Ledger) {
        let n = self.threads;
        loop {
            let ready = (0..n).all(|i| !l.deposits[i].is_empty() || l.left[i]);
            let any = l.deposits.iter().any(|d| !d.is_empty());
            if !ready || !any {
                return;
            }
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            for i in 0..n {
                let Some(own) = l.deposits[i].pop_front() else {
                    continue;
                };
                table.absorb(&own, l.joined);
                if own.full_at.is_some() {
                    // A thread's share of the limit ran out: it did not record all it explored.
                    let held = table.len() as u64;
                    table.full_at.get_or_insert(held);
                }
            }
            l.bytes_after.push(table.bytes());
            l.joined += 1;
            self.epoch_joined.notify_all();
        }
    }

    /// States held, and how many when the memory limit was reached.
    pub(crate) fn counts(&self) -> (u64, Option<u64>) {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        (t.len() as u64, t.full_at)
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}
