//! Content digests in the `algorithm:hex` form containerd (go-digest) uses.
//!
//! Content the model stores is always sha256 (that is what containerd's local store computes), but
//! references (image targets, label values, lease resources) are strings a client chose, so they are
//! validated the way go-digest's `Digest.Validate` does and otherwise kept as written.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A validated digest string such as `sha256:2cf2…`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `data`, as containerd's content store computes it on commit.
    pub fn of(data: &[u8]) -> Digest {
        let sum = Sha256::digest(data);
        let mut s = String::with_capacity(7 + 64);
        s.push_str("sha256:");
        for b in sum {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap());
            s.push(char::from_digit((b & 15) as u32, 16).unwrap());
        }
        Digest(s)
    }

    /// Parses and validates like go-digest's `Parse`: the error text is go-digest's.
    pub fn parse(s: &str) -> Result<Digest, &'static str> {
        validate(s)?;
        Ok(Digest(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The encoded part after `algorithm:`.
    pub fn hex(&self) -> &str {
        &self.0[self.0.find(':').map_or(0, |i| i + 1)..]
    }

    /// The first 12 hex characters, for readable traces.
    pub fn short(&self) -> &str {
        short(self.as_str())
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
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Lets maps keyed by `Digest` be queried with the `&str` a client sent (ordering and hashing are
/// those of the underlying string, so the two agree).
impl std::borrow::Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
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
}
