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
    /// In a step's *reads* only: the step reads every key, so it is dependent with every step
    /// of another actor that writes any key (and with nothing that only reads). A collector
    /// that decides what to remove from the whole state reads this; what it removed are its
    /// writes. (A step that may change anything instead writes a key every step reads.)
    pub const ANY: Key = Key(0x616e_795f_7265_6164);

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

/// Whether a step writing `w` is dependent with one reading `r`: a common key, or `r` reads
/// [`Key::ANY`] and `w` writes something.
fn writes_read(w: &[Key], r: &[Key]) -> bool {
    !w.is_empty() && (meets(w, r) || r.contains(&Key::ANY))
}

/// Whether steps with footprints (r1, w1) and (r2, w2) may fail to commute.
#[inline]
pub fn dependent(r1: &[Key], w1: &[Key], r2: &[Key], w2: &[Key]) -> bool {
    debug_assert!(
        !w1.contains(&Key::ANY) && !w2.contains(&Key::ANY),
        "Key::ANY is read only"
    );
    meets(w1, w2) || writes_read(w1, r2) || writes_read(w2, r1)
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

    #[test]
    fn a_read_of_any_meets_every_write_and_no_read() {
        let any = [Key::ANY];
        assert!(dependent(&any, &[], &[], &[Key(7)]), "any write");
        assert!(dependent(&[], &[Key(7)], &any, &[]), "either side");
        assert!(!dependent(&any, &[], &[Key(7)], &[]), "a read commutes");
        assert!(
            !dependent(&any, &[], &any, &[]),
            "two collectors that remove nothing commute"
        );
        assert!(
            !dependent(&any, &[], &[], &[]),
            "a step touching nothing commutes"
        );
    }
}
