//! The labels containerd's GC reads, and label validation.

use crate::errors::{Error, ErrorKind};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

pub const GC_ROOT: &str = "containerd.io/gc.root";
pub const GC_REF_CONTENT: &str = "containerd.io/gc.ref.content";
pub const GC_EXPIRE: &str = "containerd.io/gc.expire";
pub const GC_FLAT: &str = "containerd.io/gc.flat";
/// Set by unpack on a compressed layer; the converter reads it instead of decompressing.
pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// metadata/gc.go `sendLabelRefs`: a key is a content edge when it is exactly
/// `containerd.io/gc.ref.content` or that prefix followed by `.` or `/` (names after it are ignored).
pub fn is_content_ref_key(key: &str) -> bool {
    match key.strip_prefix(GC_REF_CONTENT) {
        Some("") => true,
        Some(rest) => rest.starts_with('.') || rest.starts_with('/'),
        None => false,
    }
}

/// The content digests (as written, possibly dangling or malformed) a label set points to.
pub fn content_refs(labels: &Labels) -> impl Iterator<Item = &str> {
    labels
        .range::<str, _>((
            std::ops::Bound::Included(GC_REF_CONTENT),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(k, _)| k.starts_with(GC_REF_CONTENT))
        .filter(|(k, _)| is_content_ref_key(k))
        .map(|(_, v)| v.as_str())
}

/// labels/validate.go `Validate`: key and value together at most 4096 bytes.
pub fn validate(k: &str, v: &str) -> Result<(), Error> {
    const MAX: usize = 4096;
    if k.len() + v.len() > MAX {
        let short = if k.len() > 10 {
            &k[..floor_char_boundary(k, 10)]
        } else {
            k
        };
        return Err(Error::wrap(
            ErrorKind::InvalidArgument,
            format_args!(
                "label key and value greater than maximum size ({MAX} bytes), key: {short}"
            ),
        ));
    }
    Ok(())
}

pub fn validate_all(labels: &Labels, context: &str) -> Result<(), Error> {
    for (k, v) in labels {
        validate(k, v).map_err(|e| Error::raw(e.kind, format!("{context}: {}", e.message)))?;
    }
    Ok(())
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// boltutil `writeMap`: stored labels never carry empty values (an empty value removes the key).
pub fn stored(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// boltutil `writeMap`: bolt refuses an empty key (`key required`); an empty key with an empty
/// value is dropped before it is written, like any empty value.
pub fn check_keys(labels: &Labels) -> Result<(), Error> {
    match labels.get("") {
        Some(v) if !v.is_empty() => Err(Error::raw(
            ErrorKind::Unknown,
            format!("failed to set label \"\"={v:?}: key required"),
        )),
        _ => Ok(()),
    }
}
