//! Keys and footprints: what a step reads and writes, as opaque keys.
//!
//! The explorer only needs to know whether two steps *commute*; it never interprets a key.
//! Two steps of different actors are dependent when one writes a key the other reads or writes.
//! Over-approximating a footprint is always safe (it only costs reduction); under-approximating
//! it makes partial-order reduction skip interleavings that matter.

use crate::hash::fnv1a;
use serde::{Deserialize, Serialize};

/// An opaque object identity. A `u64` keeps footprint comparison to integer compares;
/// [`Key::named`] hashes a name (a hash collision only adds a spurious dependency, never hides one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key(pub u64);

impl Key {
    /// The key for a name, by FNV-1a: stable across runs and platforms.
    pub fn named(name: &str) -> Key {
        Key(fnv1a(name))
    }
}

impl From<u64> for Key {
    fn from(v: u64) -> Key {
        Key(v)
    }
}

/// The keys a step reads and writes. Borrowed so that building one per step allocates
/// nothing: the executor copies the keys into buffers it reuses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Footprint<'a> {
    /// Keys read.
    pub reads: &'a [Key],
    /// Keys written (a write implies a read for dependence purposes).
    pub writes: &'a [Key],
}

impl<'a> Footprint<'a> {
    /// A step touching no shared object: it commutes with everything.
    pub const NONE: Footprint<'static> = Footprint {
        reads: &[],
        writes: &[],
    };
    /// Reads and writes.
    pub fn new(reads: &'a [Key], writes: &'a [Key]) -> Self {
        Footprint { reads, writes }
    }
    /// Reads only.
    pub fn read(reads: &'a [Key]) -> Self {
        Footprint { reads, writes: &[] }
    }
    /// Writes only.
    pub fn write(writes: &'a [Key]) -> Self {
        Footprint { reads: &[], writes }
    }
}

fn meets(a: &[Key], b: &[Key]) -> bool {
    // Footprints are a handful of keys: a nested scan beats hashing or sorting.
    a.iter().any(|k| b.contains(k))
}

/// Whether steps with footprints (r1, w1) and (r2, w2) may fail to commute.
#[inline]
pub fn dependent(r1: &[Key], w1: &[Key], r2: &[Key], w2: &[Key]) -> bool {
    meets(w1, w2) || meets(w1, r2) || meets(r1, w2)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn dependence_is_read_write_conflict() {
        let a = [Key(1)];
        let b = [Key(2)];
        assert!(!dependent(&a, &[], &a, &[]), "two reads commute");
        assert!(dependent(&a, &[], &[], &a), "read/write conflict");
        assert!(dependent(&[], &a, &[], &a), "write/write conflict");
        assert!(!dependent(&[], &a, &[], &b), "disjoint writes commute");
    }
}
