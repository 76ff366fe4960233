//! The data of DFS's visited-state pruning (the argument is in [`super::dfs`]'s module doc):
//! footprint summaries of what was explored below a state, and the table of fully explored
//! states with the sleep set each was explored under and its summary, within a memory limit.

use crate::footprint::Key;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A pseudo key every writing step also writes (see [`Summary`]), so that a read of
/// [`Key::ANY`] meets it. A real key with this value would only add dependence.
pub(crate) const WROTE: Key = Key(0x7772_6f74_655f_5f5f);

/// One key of a summary and, per actor `a`, bit `2a` if a step of `a` read it and bit `2a + 1`
/// if one wrote it (at most 64 actors: the executor's masks are `u64`).
pub(crate) type Touch = (Key, u128);

/// Per actor, the union of the keys read and of the keys written by the steps explored below a
/// state: sorted by key, one entry per key with a non-zero mask. Keys are the footprints' own
/// (no per-run numbering), so a summary means the same in every thread and run. The union is
/// exact for the one question asked of it: whether some step of another actor below is
/// dependent with a given step (dependence is a disjunction over keys).
pub(crate) struct Summary;

impl Summary {
    fn set(sum: &mut Vec<Touch>, k: Key, bit: u32) {
        match sum.binary_search_by_key(&k, |t| t.0) {
            Ok(i) => sum[i].1 |= 1u128 << bit,
            Err(i) => sum.insert(i, (k, 1u128 << bit)),
        }
    }

    fn get(sum: &[Touch], k: Key) -> u128 {
        sum.binary_search_by_key(&k, |t| t.0)
            .map_or(0, |i| sum[i].1)
    }

    /// Adds a step of `actor` reading and writing the given keys (a write also writes
    /// [`WROTE`]).
    pub fn add(sum: &mut Vec<Touch>, actor: usize, reads: &[Key], writes: &[Key]) {
        let a = actor as u32 * 2;
        for &k in reads {
            Self::set(sum, k, a);
        }
        for &k in writes {
            Self::set(sum, k, a + 1);
        }
        if !writes.is_empty() {
            Self::set(sum, WROTE, a + 1);
        }
    }

    /// `into |= from`, both sorted; `scratch` is reused between calls.
    pub fn merge(into: &mut Vec<Touch>, from: &[Touch], scratch: &mut Vec<Touch>) {
        if from.is_empty() {
            return;
        }
        if into.is_empty() {
            into.extend_from_slice(from);
            return;
        }
        scratch.clear();
        let (mut i, mut j) = (0, 0);
        while i < into.len() && j < from.len() {
            let (a, b) = (into[i], from[j]);
            if a.0 <= b.0 {
                i += 1;
            }
            if b.0 <= a.0 {
                j += 1;
            }
            scratch.push(match a.0.cmp(&b.0) {
                std::cmp::Ordering::Less => a,
                std::cmp::Ordering::Greater => b,
                std::cmp::Ordering::Equal => (a.0, a.1 | b.1),
            });
        }
        scratch.extend_from_slice(&into[i..]);
        scratch.extend_from_slice(&from[j..]);
        std::mem::swap(into, scratch);
    }

    /// Whether a step of `actor` with these footprint keys is dependent with some step of
    /// another actor in the summary: one writes a key the other reads or writes, or reads
    /// [`Key::ANY`] while the other writes anything.
    pub fn meets_other(sum: &[Touch], actor: usize, reads: &[Key], writes: &[Key]) -> bool {
        const READS: u128 = 0x5555_5555_5555_5555_5555_5555_5555_5555;
        let others = !(3u128 << (actor * 2));
        let (read_by, written_by) = (READS & others, (READS << 1) & others);
        let touched = |k: Key, mask: u128| Self::get(sum, k) & mask != 0;
        if writes.iter().any(|&k| touched(k, read_by | written_by)) {
            return true;
        }
        if reads.iter().any(|&k| touched(k, written_by)) {
            return true;
        }
        let reads_any = reads.contains(&Key::ANY);
        (reads_any && touched(WROTE, written_by))
            || (!writes.is_empty() && touched(Key::ANY, read_by))
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
    /// In a table shared by threads, the epoch whose tables it came in with (who may see it:
    /// [`super::epochs`]); 0 in a thread's own.
    epoch: u32,
}

/// Fully explored states, by fingerprint.
pub(crate) struct Table {
    map: HashMap<u128, Entry, BuildHasherDefault<StateHasher>>,
    /// In a shared table, the entries of later epochs for a state already in `map` under a sleep
    /// set the later one does not contain (few: a state explored again under a smaller one).
    later: HashMap<u128, Vec<Entry>, BuildHasherDefault<StateHasher>>,
    later_bytes: usize,
    /// Distinct summaries (many states share one).
    sums: Vec<Box<[Touch]>>,
    sum_index: HashMap<Box<[Touch]>, u32>,
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
            later: HashMap::default(),
            later_bytes: 0,
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
    pub fn lookup(&self, state: u128, sleep: u64) -> Option<&[Touch]> {
        self.lookup_upto(state, sleep, u32::MAX)
    }

    /// [`Table::lookup`] among the entries of epochs up to `epoch`.
    pub fn lookup_upto(&self, state: u128, sleep: u64, epoch: u32) -> Option<&[Touch]> {
        let covers = |e: &&Entry| e.epoch <= epoch && e.sleep & !sleep == 0;
        let e = self.map.get(&state)?;
        let later = || self.later.get(&state).into_iter().flatten().find(covers);
        let e = Some(e).filter(covers).or_else(later)?;
        Some(&*self.sums[e.sum as usize])
    }

    /// Records `state` as fully explored under `sleep` with summary `sum`. A state explored again
    /// (under a sleep set the first entry did not contain) keeps the entry with the smaller
    /// sleep set: either is a correct record of one full exploration. Past the memory limit no
    /// new state is added (and `full_at` says when that happened).
    pub fn insert(&mut self, state: u128, sleep: u64, sum: &[Touch]) {
        self.insert_at(state, sleep, sum, 0)
    }

    /// [`Table::insert`] with the entry's epoch. An entry of an earlier epoch is kept (a thread
    /// that sees it but not the new one must go on seeing it): the new one is added beside it,
    /// unless an entry already there prunes wherever it would.
    fn insert_at(&mut self, state: u128, sleep: u64, sum: &[Touch], epoch: u32) {
        if let Some(e) = self.map.get(&state) {
            if e.epoch < epoch {
                let later = self.later.get(&state).into_iter().flatten();
                if std::iter::once(e)
                    .chain(later)
                    .any(|o| o.sleep & !sleep == 0)
                {
                    return;
                }
                if self.full_at.is_some() || !self.fits(sum) {
                    self.full_at.get_or_insert(self.map.len() as u64);
                    return;
                }
                let sum = self.intern(sum);
                self.later_bytes += std::mem::size_of::<(u128, Entry)>() * 2;
                let e = Entry { sleep, sum, epoch };
                self.later.entry(state).or_default().push(e);
                return;
            }
            if e.sleep.count_ones() <= sleep.count_ones() {
                return;
            }
        } else if self.full_at.is_some() || !self.fits(sum) {
            self.full_at.get_or_insert(self.map.len() as u64);
            return;
        }
        let sum = self.intern(sum);
        self.map.insert(state, Entry { sleep, sum, epoch });
    }

    /// Adds every state of `other` as [`Table::insert`] would, as entries of `epoch`, in the
    /// order of their fingerprints (so what a full table keeps does not depend on `other`'s
    /// layout).
    pub fn absorb(&mut self, other: &Table, epoch: u32) {
        let mut entries: Vec<(u128, Entry)> = other.map.iter().map(|(&k, &e)| (k, e)).collect();
        entries.sort_unstable_by_key(|e| e.0);
        for (state, e) in entries {
            self.insert_at(state, e.sleep, &other.sums[e.sum as usize], epoch);
        }
    }

    /// About what the table holds, in bytes: the map at its capacity and the summaries.
    pub fn bytes(&self) -> usize {
        self.map_bytes(self.map.capacity()) + self.sum_bytes + self.later_bytes
    }

    fn map_bytes(&self, capacity: usize) -> usize {
        capacity * (std::mem::size_of::<(u128, Entry)>() + 1)
    }

    /// Whether one more state (and, if new, its summary) stays within the limit, counting the
    /// map at the capacity it would grow to.
    fn fits(&self, sum: &[Touch]) -> bool {
        let cap = self.map.capacity();
        let cap = if self.map.len() < cap {
            cap
        } else {
            (cap * 2).max(16)
        };
        self.map_bytes(cap) + self.sum_bytes + self.later_bytes + sum_bytes(sum) <= self.limit
    }

    fn intern(&mut self, sum: &[Touch]) -> u32 {
        if let Some(&i) = self.sum_index.get(sum) {
            return i;
        }
        let i = self.sums.len() as u32;
        let boxed: Box<[Touch]> = sum.into();
        self.sum_bytes += sum_bytes(sum);
        self.sums.push(boxed.clone());
        self.sum_index.insert(boxed, i);
        i
    }
}

/// What a summary costs the table: held twice (the list and the interning map's key) and
/// the two allocations' overhead.
fn sum_bytes(sum: &[Touch]) -> usize {
    std::mem::size_of_val(sum) * 2 + 64
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

    const fn k(n: u64) -> Key {
        Key(n)
    }

    #[test]
    fn summary_answers_dependence_with_other_actors_only() {
        let mut s = Vec::new();
        // Actor 1 reads key 3 and writes key 4.
        Summary::add(&mut s, 1, &[k(3)], &[k(4)]);
        let meets = |actor, r: &[Key], w: &[Key]| Summary::meets_other(&s, actor, r, w);
        assert!(meets(0, &[], &[k(3)]), "a write of what another reads");
        assert!(meets(0, &[k(4)], &[]), "a read of what another writes");
        assert!(!meets(0, &[k(3)], &[]), "two reads commute");
        assert!(!meets(1, &[k(4)], &[k(3)]), "an actor does not race itself");
        assert!(
            !meets(2, &[k(5)], &[k(7)]),
            "keys it never touched meet nothing"
        );
        assert!(
            meets(0, &[Key::ANY], &[]),
            "a read of every key meets any write"
        );
    }

    #[test]
    fn a_read_of_any_below_meets_every_write_above_and_no_read() {
        let mut s = Vec::new();
        // Actor 1 collected: read every key, removed key 4.
        Summary::add(&mut s, 1, &[Key::ANY], &[k(4)]);
        let meets = |r: &[Key], w: &[Key]| Summary::meets_other(&s, 0, r, w);
        assert!(meets(&[], &[k(9)]), "a write of a key it did not remove");
        assert!(meets(&[k(4)], &[]), "a read of what it removed");
        assert!(!meets(&[k(9)], &[]), "a read of a key it kept");
        assert!(
            meets(&[Key::ANY], &[]),
            "another collection reads what it removed"
        );
        let mut quiet = Vec::new();
        Summary::add(&mut quiet, 1, &[Key::ANY], &[]);
        assert!(
            !Summary::meets_other(&quiet, 0, &[Key::ANY], &[]),
            "two collections that removed nothing commute"
        );
    }

    /// Merging is the union per key, whatever the order the keys came in, and actors up to the
    /// 64th keep their own bits.
    #[test]
    fn merge_is_the_union_per_key_and_actor() {
        let (mut a, mut b, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        Summary::add(&mut a, 0, &[k(5), k(1)], &[]);
        Summary::add(&mut b, 63, &[], &[k(5)]);
        Summary::add(&mut b, 2, &[k(9)], &[]);
        Summary::merge(&mut a, &b, &mut scratch);
        let keys: Vec<Key> = a.iter().map(|t| t.0).collect();
        let mut want = vec![k(1), k(5), k(9), WROTE];
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(Summary::get(&a, k(5)), 1 | 1u128 << 127);
        assert!(
            Summary::meets_other(&a, 0, &[k(5)], &[]),
            "actor 63 wrote key 5"
        );
        assert!(
            !Summary::meets_other(&a, 63, &[k(5)], &[]),
            "only actor 0 read it"
        );
    }

    #[test]
    fn lookup_needs_the_stored_sleep_set_inside_the_current_one() {
        let mut t = Table::new(1 << 20);
        let (one, three) = ([(k(1), 1)], [(k(3), 1)]);
        t.insert(7, 0b010, &one);
        assert!(t.lookup(7, 0b011).is_some());
        assert!(t.lookup(7, 0b010).is_some());
        assert!(
            t.lookup(7, 0b001).is_none(),
            "explored with 1 asleep, now it is awake"
        );
        assert!(t.lookup(8, 0b111).is_none());
        // A later exploration under a smaller sleep set replaces the entry.
        t.insert(7, 0, &three);
        assert_eq!(t.lookup(7, 0), Some(&three[..]));
    }

    #[test]
    fn a_full_table_keeps_what_it_has_and_says_when_it_filled() {
        let mut t = Table::new(2048);
        let sum = [(k(1), 1)];
        let mut n = 0u128;
        while t.full_at.is_none() {
            t.insert(n, 0, &sum);
            n += 1;
            assert!(n < 10_000, "a 2 KiB table never filled");
        }
        let held = t.len() as u64;
        assert_eq!(t.full_at, Some(held));
        t.insert(n + 1, 0, &sum);
        assert_eq!(t.len() as u64, held, "no state added once full");
        assert!(t.lookup(0, 0).is_some(), "what it holds still prunes");
    }
}
