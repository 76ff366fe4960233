//! FNV-1a, 64 bit: the trace hash and `Key::named`; 128 bit ([`Fnv128`]): state fingerprints for
//! visited-state pruning, where a collision would be a false proof.
//!
//! Why FNV and not `std::hash`: std's `DefaultHasher`/`RandomState` is seeded per process and
//! its algorithm may change between Rust releases, while a trace hash must be equal across runs,
//! machines and toolchains so that a hash printed in CI can be compared with one computed locally.

use std::fmt;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64 hasher. It implements `fmt::Write`, so a `Display` label can be
/// hashed without first being formatted into a `String`.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(PRIME);
        }
        self.0 = h;
    }
    /// Feeds a u64 as 8 little-endian bytes (explicit so the hash is platform independent).
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

const OFFSET128: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const PRIME128: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
/// `PRIME128 = 2^88 + PRIME128_LOW`: multiplying by it is a shift, an add and a small multiply.
const PRIME128_LOW: u128 = PRIME128 - (1 << 88);

/// An incremental FNV-1a 128 hasher (the published 128-bit parameters), for state fingerprints
/// ([`World::fingerprint`](crate::World::fingerprint)). Like [`Fnv`] it implements `fmt::Write`.
#[derive(Clone, Copy, Debug)]
pub struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(OFFSET128)
    }
}

impl Fnv128 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= b as u128;
            h = (h << 88).wrapping_add(h.wrapping_mul(PRIME128_LOW));
        }
        self.0 = h;
    }
    /// Feeds a u64 as 8 little-endian bytes.
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Feeds a u128 as 16 little-endian bytes.
    #[inline]
    pub fn u128(&mut self, v: u128) {
        self.bytes(&v.to_le_bytes());
    }
    /// The hash so far.
    pub fn finish(&self) -> u128 {
        self.0
    }
}

impl fmt::Write for Fnv128 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// FNV-1a of a string.
pub fn fnv1a(s: &str) -> u64 {
    let mut h = Fnv::new();
    h.bytes(s.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_vectors() {
        // Published FNV-1a 64 test vectors: pin the algorithm so trace hashes never drift.
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn known_vectors_128() {
        // FNV-1a 128 of "" is its offset basis; of "a", the published vector.
        assert_eq!(Fnv128::new().finish(), OFFSET128);
        let mut h = Fnv128::new();
        h.bytes(b"a");
        assert_eq!(h.finish(), 0xd228cb696f1a8caf78912b704e4a8964);
        h.bytes(b"bc");
        let mut full = OFFSET128;
        for &b in b"abc" {
            full = (full ^ b as u128).wrapping_mul(PRIME128);
        }
        assert_eq!(
            h.finish(),
            full,
            "the shift-and-add multiply is the prime's"
        );
    }
}
