//! Memoised parsing of content-addressed blobs.
//!
//! The explorer runs the same client programs thousands of times, and they parse the same index
//! and manifest blobs every time. A blob's bytes are fixed by its digest (the store only returns
//! bytes that hash to the digest asked for), so a parse keyed by digest can be reused without
//! changing any result: this cache is invisible to every trace and verdict, only faster. It is
//! per thread and bounded.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Entries kept before the cache is emptied and refilled (a run touches a few dozen blobs).
const CAPACITY: usize = 4096;

/// Parsed values by type, then by key.
type Cache = HashMap<TypeId, HashMap<String, Rc<dyn Any>>>;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(HashMap::new());
}

/// `compute()` for `key` of type `T`, computed once per thread. `key` must determine the value
/// (a digest, or a digest plus the other inputs).
pub fn cached<T: 'static, E>(
    key: &str,
    compute: impl FnOnce() -> Result<T, E>,
) -> Result<Rc<T>, E> {
    let ty = TypeId::of::<T>();
    // A hit looks the key up by `&str`: no allocation on the explorer's hot path.
    let hit = CACHE.with(|c| c.borrow().get(&ty).and_then(|m| m.get(key)).cloned());
    if let Some(hit) = hit {
        return Ok(hit.downcast::<T>().expect("keyed by type"));
    }
    let v = Rc::new(compute()?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let m = c.entry(ty).or_default();
        if m.len() >= CAPACITY {
            m.clear();
        }
        m.insert(key.to_string(), v.clone() as Rc<dyn Any>);
    });
    Ok(v)
}

/// The JSON blob `bytes` (whose digest is `digest`) parsed as `T` (as Go would: `oci::from_go_json`).
pub fn json<T: serde::de::DeserializeOwned + 'static>(
    digest: &str,
    bytes: &[u8],
) -> Result<Rc<T>, serde_json::Error> {
    cached(digest, || crate::oci::from_go_json(bytes))
}
