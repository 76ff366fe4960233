//! containerd's errors: an errdefs class plus the exact text the daemon sends over gRPC.
//!
//! The text matters: users grep CI logs for it, and the differential tests compare it with what a real
//! daemon answers. Each constructor names the containerd function that produces that text.

use crate::digest::Digest;
use std::fmt;

/// containerd's `errdefs` classes that the metadata store returns.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unavailable,
    NotImplemented,
    OutOfRange,
    Unknown,
}

impl ErrorKind {
    /// The suffix errdefs appends (`%w` of the sentinel error).
    fn suffix(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::OutOfRange => "out of range",
            ErrorKind::Unknown => "unknown",
        }
    }
}

/// An error as a containerd client sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    /// `fmt.Errorf("<context>: %w", errdefs.ErrX)`.
    pub fn wrap(kind: ErrorKind, context: impl fmt::Display) -> Error {
        Error {
            kind,
            message: format!("{context}: {}", kind.suffix()),
        }
    }

    /// An error whose full text is given (messages that are not `%w`-wrapped).
    pub fn raw(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// metadata/content.go Info, Update, Delete, ReaderAt: `content digest %v: not found`.
    pub fn content_not_found(d: &str) -> Error {
        Error::wrap(ErrorKind::NotFound, format_args!("content digest {d}"))
    }

    /// metadata/content.go Writer on content the namespace has: `content %v: already exists`.
    pub fn content_exists(d: &Digest) -> Error {
        Error::wrap(ErrorKind::AlreadyExists, format_args!("content {d}"))
    }

    /// services/content/contentserver Write, when a message carries an expected digest the
    /// namespace already has: gRPC AlreadyExists with exactly this text (no errdefs suffix).
    pub fn blob_expected_exists(d: &Digest) -> Error {
        Error::raw(
            ErrorKind::AlreadyExists,
            format!("blob with expected digest {d} exists"),
        )
    }

    /// metadata/images.go: `image %q: not found`.
    pub fn image_not_found(name: &str) -> Error {
        Error::wrap(ErrorKind::NotFound, format_args!("image {name:?}"))
    }

    pub fn image_exists(name: &str) -> Error {
        Error::wrap(ErrorKind::AlreadyExists, format_args!("image {name:?}"))
    }

    /// metadata/leases.go Create/Delete/AddResource: `lease %q: not found`.
    pub fn lease_not_found(id: &str) -> Error {
        Error::wrap(ErrorKind::NotFound, format_args!("lease {id:?}"))
    }

    pub fn lease_exists(id: &str) -> Error {
        Error::wrap(ErrorKind::AlreadyExists, format_args!("lease {id:?}"))
    }

    /// metadata/leases.go add*Lease with a context lease that is gone.
    pub fn context_lease_missing() -> Error {
        Error::wrap(ErrorKind::NotFound, "lease does not exist")
    }

    /// metadata/content.go Status/Abort: `reference %v: not found`.
    pub fn ingest_not_found(r: &str) -> Error {
        Error::wrap(ErrorKind::NotFound, format_args!("reference {r}"))
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Is this a content NotFound (as opposed to an image or lease)? The `no-missing-digest`
    /// invariant looks for exactly these.
    pub fn missing_digest(&self) -> Option<&str> {
        if self.kind != ErrorKind::NotFound {
            return None;
        }
        let rest = &self.message[self.message.find("content digest ")? + "content digest ".len()..];
        let colon = rest.find(':')?;
        let hex = rest[colon + 1..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count();
        Some(&rest[..colon + 1 + hex])
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_containerd() {
        let d = Digest::of(b"x");
        assert_eq!(
            Error::content_not_found(d.as_str()).message,
            format!("content digest {d}: not found")
        );
        assert_eq!(
            Error::image_not_found("a:1").message,
            "image \"a:1\": not found"
        );
        assert_eq!(
            Error::lease_not_found("l").message,
            "lease \"l\": not found"
        );
        assert_eq!(
            Error::context_lease_missing().message,
            "lease does not exist: not found"
        );
        assert_eq!(
            Error::content_exists(&d).message,
            format!("content {d}: already exists")
        );
        assert_eq!(
            Error::blob_expected_exists(&d).message,
            format!("blob with expected digest {d} exists")
        );
    }

    #[test]
    fn missing_digest_finds_the_digest_inside_wrapped_errors() {
        let d = Digest::of(b"x");
        let e = Error::wrap(
            ErrorKind::NotFound,
            format!("failed to copy: content digest {d}"),
        );
        assert_eq!(e.missing_digest(), Some(d.as_str()));
        assert_eq!(Error::image_not_found("a").missing_digest(), None);
    }
}
