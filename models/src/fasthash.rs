//! A fixed, unseeded hasher for the sets the model only asks "is it in?" (the GC's marks): std's
//! SipHash was 45% of the mixed benchmark's instructions, hashing 71-byte digest strings.
//!
//! Unseeded means the same on every run, but nothing iterates these sets either, so no hash order
//! can reach a result, a trace or a report (the determinism rule: see `gc.rs`).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Word-at-a-time multiply-and-fold. Not resistant to chosen collisions: the keys are the
/// model's own (digests, refs, names), and a collision costs time, never a wrong answer.
#[derive(Default, Clone, Copy)]
pub struct WordHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(K).rotate_left(23);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits and a tag from the top 7: fold both ways.
        let h = self.0.wrapping_mul(K);
        h ^ (h >> 32)
    }
}

/// A membership set over [`WordHasher`].
pub type FastSet<T> = HashSet<T, BuildHasherDefault<WordHasher>>;

/// A membership map over [`WordHasher`] (looked up, never iterated).
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// An empty [`FastMap`] with room for `n`.
pub fn map_with_capacity<K, V>(n: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(n, Default::default())
}

/// An empty [`FastSet`] with room for `n`.
pub fn set_with_capacity<T>(n: usize) -> FastSet<T> {
    FastSet::with_capacity_and_hasher(n, Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_hash_equal_and_neighbours_differ() {
        let h = |s: &str| {
            let mut x = WordHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_eq!(h("sha256:abc"), h("sha256:abc"));
        assert_ne!(h("sha256:abc"), h("sha256:abd"));
        assert_ne!(h("abcdefgh"), h("abcdefgh\0"));
        let s: FastSet<&str> = ["a", "b"].into_iter().collect();
        assert!(s.contains("a") && !s.contains("c"));
    }
}
