//! Content digests in the `algorithm:hex` form containerd (go-digest) uses.
//!
//! Content the model stores is always sha256 (that is what containerd's local store computes), but
//! references (image targets, label values, lease resources) are strings a client chose, so they are
//! validated the way go-digest's `Digest.Validate` does and otherwise kept as written.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// The text length of a sha256 digest: `sha256:` and 64 hex digits.
const SHA256_TEXT: usize = 7 + 64;

/// A validated digest string such as `sha256:2cf2…`.
///
/// Every digest the store computes is sha256, and the GC and every content lookup compare them, so
/// a sha256 digest is kept inline (no allocation to clone, compared a word at a time); any other
/// algorithm keeps its text on the heap. The text, its order and its hash are those of the string
/// either way (`Borrow<str>` relies on it).
#[derive(Clone)]
pub struct Digest(Repr);

#[derive(Clone)]
enum Repr {
    /// `sha256:` followed by 64 lower-hex digits (ASCII, so always valid UTF-8).
    Sha256([u8; SHA256_TEXT]),
    /// Any other validated digest (sha384, sha512).
    Other(Box<str>),
}

impl Digest {
    /// The sha256 digest of `data`, as containerd's content store computes it on commit.
    pub fn of(data: &[u8]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let sum = Sha256::digest(data);
        let mut text = [0u8; SHA256_TEXT];
        text[..7].copy_from_slice(b"sha256:");
        for (i, b) in sum.iter().enumerate() {
            text[7 + 2 * i] = HEX[(b >> 4) as usize];
            text[8 + 2 * i] = HEX[(b & 15) as usize];
        }
        Digest(Repr::Sha256(text))
    }

    /// Parses and validates like go-digest's `Parse`: the error text is go-digest's.
    pub fn parse(s: &str) -> Result<Digest, &'static str> {
        validate(s)?;
        Ok(Digest::sha256_text(s).unwrap_or_else(|| Digest(Repr::Other(s.into()))))
    }

    /// `s` as a digest when it is a well-formed sha256 digest (the only kind the store keeps
    /// content under): the allocation-free key the store's lookups by client string use.
    pub fn sha256_text(s: &str) -> Option<Digest> {
        let enc = s.strip_prefix("sha256:")?;
        if enc.len() != 64 || !is_lower_hex(enc.as_bytes()) {
            return None;
        }
        let text: [u8; SHA256_TEXT] = s.as_bytes().try_into().ok()?;
        Some(Digest(Repr::Sha256(text)))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Sha256(text) => std::str::from_utf8(text).expect("ASCII by construction"),
            Repr::Other(s) => s,
        }
    }

    /// The text's bytes, without `as_str`'s UTF-8 check (for hashing and comparing).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Sha256(text) => text,
            Repr::Other(s) => s.as_bytes(),
        }
    }

    /// For a sha256 digest, [`lead_of_text`] of its text.
    pub fn lead(&self) -> Option<u64> {
        match &self.0 {
            Repr::Sha256(text) => Some(lead_word(text)),
            Repr::Other(_) => None,
        }
    }

    /// The encoded part after `algorithm:`.
    pub fn hex(&self) -> &str {
        let s = self.as_str();
        &s[s.find(':').map_or(0, |i| i + 1)..]
    }

    /// The first 12 hex characters, for readable traces.
    pub fn short(&self) -> &str {
        short(self.as_str())
    }
}

/// The first eight hex digits of a sha256 text as a number whose order is theirs: most pairs of
/// digests differ there, so comparing them settles most comparisons in one step.
fn lead_word(text: &[u8; SHA256_TEXT]) -> u64 {
    u64::from_be_bytes(text[7..15].try_into().expect("8 bytes"))
}

/// The first eight hex digits of a text of sha256 digest length (`sha256:` and 64 characters,
/// not checked to be hex) as a number ordered as they are. Keys sorted as digests are sorted by
/// it; two texts with different leads differ.
pub fn lead_of_text(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != SHA256_TEXT || !b.starts_with(b"sha256:") {
        return None;
    }
    Some(u64::from_be_bytes(b[7..15].try_into().expect("8 bytes")))
}

/// The value of the eight hex digits a lead word ([`Digest::lead`], [`lead_of_text`]) holds,
/// word-parallel: for lower-hex digits (every key the store holds) it is monotone in the lead and,
/// over sha256 digests, uniform, which is what a bucket index by its top bits needs. Other bytes
/// give some value: it only ever says where to compare, never decides equality.
pub fn lead_value(lead: u64) -> u32 {
    // `0`-`9` are 0x30-0x39 (bit 6 clear), `a`-`f` 0x61-0x66 (bit 6 set, low nibble 1-6).
    let v = (lead & 0x0f0f_0f0f_0f0f_0f0f) + 9 * ((lead >> 6) & 0x0101_0101_0101_0101);
    // Eight nibbles, one per byte, most significant first: packed pairwise.
    let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    (v | (v >> 16)) as u32
}

/// The 64 hex digits of a sha256 text (or of any text of that length: the words of `sha256:`
/// and 64 characters) as eight big-endian words, ordered as the digits are: compared inline,
/// where a slice comparison would call `memcmp` for 71 bytes.
fn hex_words(text: &[u8]) -> [u64; 8] {
    std::array::from_fn(|i| {
        let at = 7 + 8 * i;
        u64::from_be_bytes(text[at..at + 8].try_into().expect("8 bytes"))
    })
}

/// Whether `text` (any length) is the sha256 text `digest`.
pub fn is_text_of(digest: &Digest, text: &[u8]) -> bool {
    match &digest.0 {
        Repr::Sha256(d) if text.len() == SHA256_TEXT && text.starts_with(b"sha256:") => {
            words_equal(d, text)
        }
        _ => digest.as_bytes() == text,
    }
}

/// Equality of two sha256-length texts whose `sha256:` prefixes are known equal, without a
/// branch per word.
fn words_equal(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (hex_words(a), hex_words(b));
    a.iter().zip(&b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl PartialEq for Digest {
    fn eq(&self, other: &Digest) -> bool {
        match (&self.0, &other.0) {
            (Repr::Sha256(a), Repr::Sha256(b)) => lead_word(a) == lead_word(b) && words_equal(a, b),
            // An `Other` is never sha256 text, so it equals only another `Other`.
            (Repr::Other(a), Repr::Other(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Digest {}

impl Ord for Digest {
    /// The order of the texts (`Borrow<str>` needs the two to agree). Inlined for the common
    /// case, two sha256 digests whose first eight hex digits differ (every step of a map search
    /// but the last); the rest is out of line.
    #[inline]
    fn cmp(&self, other: &Digest) -> std::cmp::Ordering {
        if let (Repr::Sha256(a), Repr::Sha256(b)) = (&self.0, &other.0) {
            let (a, b) = (lead_word(a), lead_word(b));
            if a != b {
                return a.cmp(&b);
            }
        }
        self.cmp_beyond_lead(other)
    }
}

impl Digest {
    #[inline(never)]
    fn cmp_beyond_lead(&self, other: &Digest) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Sha256(a), Repr::Sha256(b)) => hex_words(a).cmp(&hex_words(b)),
            _ => self.as_bytes().cmp(other.as_bytes()),
        }
    }
}

impl PartialOrd for Digest {
    #[inline]
    fn partial_cmp(&self, other: &Digest) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for Digest {
    /// The string's hash (`Borrow<str>` needs the two to agree).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

/// Lookups in a map keyed by `Digest` with the text a client sent: by an inline key when the text
/// is sha256 (compared a word at a time, not as strings), by the string otherwise. The same entry
/// either way: the two orders agree.
pub trait ByText<V> {
    fn get_text(&self, d: &str) -> Option<(&Digest, &V)>;
    fn get_text_mut(&mut self, d: &str) -> Option<&mut V>;
    fn remove_text(&mut self, d: &str) -> Option<V>;
}

impl<V> ByText<V> for std::collections::BTreeMap<Digest, V> {
    fn get_text(&self, d: &str) -> Option<(&Digest, &V)> {
        match Digest::sha256_text(d) {
            Some(key) => self.get_key_value(&key),
            None => self.get_key_value(d),
        }
    }

    fn get_text_mut(&mut self, d: &str) -> Option<&mut V> {
        match Digest::sha256_text(d) {
            Some(key) => self.get_mut(&key),
            None => self.get_mut(d),
        }
    }

    fn remove_text(&mut self, d: &str) -> Option<V> {
        match Digest::sha256_text(d) {
            Some(key) => self.remove(&key),
            None => self.remove(d),
        }
    }
}

/// The first 12 hex digits of a digest string, as traces and labels show it (`6111ab9896b8`); a
/// string without an algorithm prefix is shown whole. The one place digests are shortened.
pub fn short(d: &str) -> &str {
    match d.find(':') {
        Some(i) => &d[i + 1..(i + 13).min(d.len())],
        None => d,
    }
}

/// go-digest `Digest.Validate`: format `alg:encoded`, a known algorithm, the right length, lower hex.
pub fn validate(s: &str) -> Result<(), &'static str> {
    const FORMAT: &str = "invalid checksum digest format";
    // The case every program produces, checked first: it runs on every content call.
    if let Some(enc) = s.strip_prefix("sha256:") {
        if enc.len() == 64 && is_lower_hex(enc.as_bytes()) {
            return Ok(());
        }
    }
    let i = match s.find(':') {
        Some(i) if i > 0 && i + 1 < s.len() => i,
        _ => return Err(FORMAT),
    };
    let (alg, enc) = (&s[..i], &s[i + 1..]);
    let size = match alg {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => {
            // go-digest: an unknown algorithm that is still well formed is "unsupported".
            let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            let enc_ok = enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
            return Err(if alg_ok && enc_ok {
                "unsupported digest algorithm"
            } else {
                FORMAT
            });
        }
    };
    if enc.len() != size * 2 {
        return Err("invalid checksum digest length");
    }
    if !enc
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(FORMAT);
    }
    Ok(())
}

/// Every byte in `0-9a-f`. No early exit, so the loop vectorises.
fn is_lower_hex(enc: &[u8]) -> bool {
    enc.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6))
    })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.as_str())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Lets maps keyed by `Digest` be queried with the `&str` a client sent (ordering and hashing are
/// those of the underlying string, so the two agree).
impl std::borrow::Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_hello_matches_the_well_known_value() {
        // `printf hello | sha256sum`
        assert_eq!(
            Digest::of(b"hello").as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn go_digest_validation_errors() {
        assert_eq!(validate("foo"), Err("invalid checksum digest format"));
        assert_eq!(
            validate("sha256:abc"),
            Err("invalid checksum digest length")
        );
        assert_eq!(validate("md5:abc"), Err("unsupported digest algorithm"));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert_eq!(validate(&upper), Err("invalid checksum digest format"));
        assert!(validate(&format!("sha512:{}", "0".repeat(128))).is_ok());
    }

    /// The inline form compares, hashes and prints exactly as the text does, across algorithms.
    #[test]
    fn order_equality_and_output_are_the_texts() {
        use std::hash::{Hash, Hasher};
        let texts = [
            format!("sha256:{}", "0".repeat(64)),
            format!("sha256:{}1", "0".repeat(63)),
            format!("sha256:1{}", "0".repeat(63)),
            format!("sha256:{}", "f".repeat(64)),
            format!("sha384:{}", "a".repeat(96)),
            format!("sha512:{}", "0".repeat(128)),
            Digest::of(b"hello").to_string(),
        ];
        let hash = |h: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            let mut s = std::collections::hash_map::DefaultHasher::new();
            h(&mut s);
            s.finish()
        };
        for a in &texts {
            let da = Digest::parse(a).unwrap();
            assert_eq!(da.as_str(), a);
            assert_eq!(format!("{da:?}"), format!("Digest({a})"));
            assert_eq!(hash(&|s| da.hash(s)), hash(&|s| a.as_str().hash(s)));
            for b in &texts {
                let db = Digest::parse(b).unwrap();
                assert_eq!(da.cmp(&db), a.cmp(b), "{a} vs {b}");
                assert_eq!(da == db, a == b);
            }
        }
        let value = |t: &str| lead_value(lead_of_text(t).unwrap());
        assert_eq!(value(&texts[0]), 0);
        assert_eq!(value(&texts[2]), 0x1000_0000);
        assert_eq!(value(&texts[3]), u32::MAX);
        assert_eq!(value(&texts[6]), 0x2cf2_4dba);
        assert_eq!(Digest::sha256_text(&texts[4]), None);
        assert_eq!(Digest::sha256_text("sha256:abc"), None);
        assert_eq!(Digest::sha256_text(&texts[6]).unwrap().as_str(), texts[6]);
    }
}
