//! The data of DFS's visited-state pruning (the argument is in [`super::dfs`]'s module doc):
//! footprint summaries of what was explored below a state, and the table of fully explored
//! states with the sleep set each was explored under and its summary, within a memory limit.

use crate::footprint::Key;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Dense indices for the keys seen in footprints, so that a summary is a bitset. Two indices
/// are fixed: [`ANY`] is [`Key::ANY`]'s (read by a step that reads every key), and [`WROTE`]
/// is no key's: a step that writes anything also sets it, so a read of `ANY` meets it.
pub(crate) struct KeyIndex {
    index: HashMap<Key, u32>,
}

/// The index of [`Key::ANY`].
pub(crate) const ANY: u32 = 0;
/// The index every writing step also writes (see [`KeyIndex`]).
pub(crate) const WROTE: u32 = 1;

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            index: HashMap::from([(Key::ANY, ANY)]),
        }
    }
}

impl KeyIndex {
    /// The index of `k`, assigned on first sight (the order of first sight is the DFS order, so
    /// indices are deterministic; nothing depends on them but bit positions anyway).
    pub fn of(&mut self, k: Key) -> u32 {
        let next = self.index.len() as u32 + 1; // after ANY and WROTE
        *self.index.entry(k).or_insert(next)
    }
    /// The index of `k` if it was ever seen: a key never seen touches no summary.
    pub fn get(&self, k: Key) -> Option<u32> {
        self.index.get(&k).copied()
    }
}

/// Per actor, the union of the keys read and of the keys written by the steps explored below a
/// state: bit `(key * n + actor) * 2` for a read, `+ 1` for a write, over `n` actors. The union
/// is exact for the one question asked of it: whether some step of another actor below is
/// dependent with a given step (dependence is a disjunction over keys).
pub(crate) struct Summary;

impl Summary {
    fn set(sum: &mut Vec<u64>, bit: usize) {
        let w = bit / 64;
        if sum.len() <= w {
            sum.resize(w + 1, 0);
        }
        sum[w] |= 1u64 << (bit % 64);
    }

    fn has(sum: &[u64], bit: usize) -> bool {
        sum.get(bit / 64)
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }

    /// Adds a step of `actor` reading and writing the given key indices.
    pub fn add(sum: &mut Vec<u64>, n: usize, actor: usize, reads: &[u32], writes: &[u32]) {
        for &k in reads {
            Self::set(sum, (k as usize * n + actor) * 2);
        }
        for &k in writes {
            Self::set(sum, (k as usize * n + actor) * 2 + 1);
        }
    }

    /// `into |= from`.
    pub fn merge(into: &mut Vec<u64>, from: &[u64]) {
        if into.len() < from.len() {
            into.resize(from.len(), 0);
        }
        for (a, b) in into.iter_mut().zip(from) {
            *a |= b;
        }
    }

    /// Whether a step of `actor` with these footprint keys is dependent with some step of
    /// another actor in the summary: one writes a key the other reads or writes, or reads
    /// [`Key::ANY`] while the other writes anything. `writes` must not hold [`WROTE`].
    pub fn meets_other(
        sum: &[u64],
        n: usize,
        actor: usize,
        reads: impl Iterator<Item = u32>,
        writes: impl Iterator<Item = u32>,
    ) -> bool {
        let other = |k: u32, write: bool| {
            (0..n)
                .filter(|&a| a != actor)
                .any(|a| Self::has(sum, (k as usize * n + a) * 2 + write as usize))
        };
        let mut wrote = false;
        for k in writes {
            wrote = true;
            if other(k, true) || other(k, false) {
                return true;
            }
        }
        let mut reads_any = false;
        for k in reads {
            reads_any |= k == ANY;
            if other(k, true) {
                return true;
            }
        }
        (reads_any && other(WROTE, true)) || (wrote && other(ANY, false))
    }
}

/// Keys are already 128-bit hashes: the table hashes one of their halves, not the whole again.
#[derive(Default)]
pub(crate) struct StateHasher(u64);

impl Hasher for StateHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64 ^ (v >> 64) as u64;
    }
}

#[derive(Clone, Copy)]
struct Entry {
    /// The sleep set the state was explored under.
    sleep: u64,
    /// Index of its summary in `Table::sums`.
    sum: u32,
}

/// Fully explored states, by fingerprint.
pub(crate) struct Table {
    map: HashMap<u128, Entry, BuildHasherDefault<StateHasher>>,
    /// Distinct summaries (many states share one).
    sums: Vec<Box<[u64]>>,
    sum_index: HashMap<Box<[u64]>, u32>,
    sum_bytes: usize,
    limit: usize,
    /// The number of states held when the memory limit was reached.
    pub full_at: Option<u64>,
}

impl Table {
    /// A table that stops growing at about `limit` bytes.
    pub fn new(limit: usize) -> Table {
        Table {
            map: HashMap::default(),
            sums: Vec::new(),
            sum_index: HashMap::new(),
            sum_bytes: 0,
            limit,
            full_at: None,
        }
    }

    /// States held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The summary below `state` if it was fully explored under a sleep set contained in
    /// `sleep` (then everything a node at `state` with `sleep` must cover was covered).
    pub fn lookup(&self, state: u128, sleep: u64) -> Option<&[u64]> {
        let e = self.map.get(&state)?;
        (e.sleep & !sleep == 0).then(|| &*self.sums[e.sum as usize])
    }

    /// Records `state` as fully explored under `sleep` with summary `sum`. A state explored again
    /// (under a sleep set the first entry did not contain) keeps the entry with the smaller
    /// sleep set: either is a correct record of one full exploration. Past the memory limit no
    /// new state is added (and `full_at` says when that happened).
    pub fn insert(&mut self, state: u128, sleep: u64, sum: &[u64]) {
        if let Some(e) = self.map.get(&state) {
            if e.sleep.count_ones() <= sleep.count_ones() {
                return;
            }
        } else if self.full_at.is_some() || !self.fits(sum) {
            self.full_at.get_or_insert(self.map.len() as u64);
            return;
        }
        let sum = self.intern(sum);
        self.map.insert(state, Entry { sleep, sum });
    }

    /// Whether one more state (and, if new, its summary) stays within the limit, counting the
    /// map at the capacity it would grow to.
    fn fits(&self, sum: &[u64]) -> bool {
        let slot = std::mem::size_of::<(u128, Entry)>() + 1;
        let cap = self.map.capacity();
        let cap = if self.map.len() < cap {
            cap
        } else {
            (cap * 2).max(16)
        };
        let new_sum = sum.len() * 16 + 64;
        cap * slot + self.sum_bytes + new_sum <= self.limit
    }

    fn intern(&mut self, sum: &[u64]) -> u32 {
        let end = sum.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        let sum = &sum[..end];
        if let Some(&i) = self.sum_index.get(sum) {
            return i;
        }
        let i = self.sums.len() as u32;
        let boxed: Box<[u64]> = sum.into();
        self.sum_bytes += sum.len() * 16 + 64;
        self.sums.push(boxed.clone());
        self.sum_index.insert(boxed, i);
        i
    }
}

/// A default memory limit for the table: a quarter of the machine's memory (`MemTotal` in
/// `/proc/meminfo`), or 1 GiB where that cannot be read.
pub(crate) fn default_limit() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    total.map_or(1 << 30, |t| t / 4)
}

/// The process's peak resident set (`VmHWM` in `/proc/self/status`), in bytes.
pub(crate) fn peak_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_answers_dependence_with_other_actors_only() {
        let mut s = Vec::new();
        // Actor 1 reads key 3 and writes key 4 (3 actors).
        Summary::add(&mut s, 3, 1, &[3], &[4, WROTE]);
        let meets = |actor, r: &[u32], w: &[u32]| {
            Summary::meets_other(&s, 3, actor, r.iter().copied(), w.iter().copied())
        };
        assert!(meets(0, &[], &[3]), "a write of what another reads");
        assert!(meets(0, &[4], &[]), "a read of what another writes");
        assert!(!meets(0, &[3], &[]), "two reads commute");
        assert!(!meets(1, &[4], &[3]), "an actor does not race itself");
        assert!(
            !meets(2, &[5], &[7]),
            "keys beyond the summary's words meet nothing"
        );
        assert!(meets(0, &[ANY], &[]), "a read of every key meets any write");
    }

    #[test]
    fn a_read_of_any_below_meets_every_write_above_and_no_read() {
        let mut s = Vec::new();
        // Actor 1 collected: read every key, removed key 4.
        Summary::add(&mut s, 2, 1, &[ANY], &[4, WROTE]);
        let meets = |r: &[u32], w: &[u32]| {
            Summary::meets_other(&s, 2, 0, r.iter().copied(), w.iter().copied())
        };
        assert!(meets(&[], &[9]), "a write of a key it did not remove");
        assert!(meets(&[4], &[]), "a read of what it removed");
        assert!(!meets(&[9], &[]), "a read of a key it kept");
        assert!(
            meets(&[ANY], &[]),
            "another collection reads what it removed"
        );
        let mut quiet = Vec::new();
        Summary::add(&mut quiet, 2, 1, &[ANY], &[]);
        let any = [ANY];
        assert!(
            !Summary::meets_other(&quiet, 2, 0, any.iter().copied(), [].into_iter()),
            "two collections that removed nothing commute"
        );
    }

    #[test]
    fn lookup_needs_the_stored_sleep_set_inside_the_current_one() {
        let mut t = Table::new(1 << 20);
        t.insert(7, 0b010, &[1]);
        assert!(t.lookup(7, 0b011).is_some());
        assert!(t.lookup(7, 0b010).is_some());
        assert!(
            t.lookup(7, 0b001).is_none(),
            "explored with 1 asleep, now it is awake"
        );
        assert!(t.lookup(8, 0b111).is_none());
        // A later exploration under a smaller sleep set replaces the entry.
        t.insert(7, 0, &[3]);
        assert_eq!(t.lookup(7, 0), Some(&[3u64][..]));
    }

    #[test]
    fn a_full_table_keeps_what_it_has_and_says_when_it_filled() {
        let mut t = Table::new(2048);
        let mut n = 0u128;
        while t.full_at.is_none() {
            t.insert(n, 0, &[1]);
            n += 1;
            assert!(n < 10_000, "a 2 KiB table never filled");
        }
        let held = t.len() as u64;
        assert_eq!(t.full_at, Some(held));
        t.insert(n + 1, 0, &[1]);
        assert_eq!(t.len() as u64, held, "no state added once full");
        assert!(t.lookup(0, 0).is_some(), "what it holds still prunes");
    }
}
