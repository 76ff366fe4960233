#![allow(dead_code, unused_imports)]
//! Shared helpers for the daemon tests. Every test starts its own daemon: GC is global to a daemon,
//! so no two cases may share one. Without the `containerd` binary the start fails with the install hint.

pub use pushrace_daemon::{
    CdError, Daemon, DaemonClient, IngestStatus, Lease, StateExt, WriteRequest, WRITE_CHUNK,
};
pub use pushrace_models::clock::Instant;
pub use pushrace_models::labels::{GC_EXPIRE, GC_FLAT, GC_ROOT};
pub use pushrace_models::leases::Resource;
pub use pushrace_models::state::{ResourceState, State};
pub use pushrace_models::{Ctx, Descriptor, Digest, Image, Labels, WriteStyle};

/// A fresh private daemon and a client. Panics (never skips) when containerd cannot start.
pub async fn fresh() -> (Daemon, DaemonClient) {
    let d = Daemon::start().unwrap_or_else(|e| panic!("cannot start a private containerd: {e}"));
    let c = d
        .client()
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {e}"));
    (d, c)
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn ns(n: &str) -> Ctx {
    Ctx::new(n)
}

/// Writes `data` (open style, no lease) with `labels`; returns its digest.
pub async fn put(c: &DaemonClient, ctx: &Ctx, data: &str, l: &[(&str, &str)]) -> String {
    let w = c
        .write_blob(
            ctx,
            &WriteRequest::new(data.as_bytes().to_vec(), WriteStyle::Open).labels(labels(l)),
        )
        .await
        .unwrap_or_else(|e| panic!("write {data:?}: {e}"));
    w.digest.to_string()
}

pub async fn has(c: &DaemonClient, ctx: &Ctx, digest: &str) -> bool {
    match c.info(ctx, digest).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("info {digest}: {e}"),
    }
}

pub fn blob_file(d: &Daemon, digest: &str) -> bool {
    d.blobs_dir()
        .join(digest.trim_start_matches("sha256:"))
        .exists()
}

pub const INDEX_MT: &str = "application/vnd.oci.image.index.v1+json";

/// An image record pointing at `target` (an index); the name goes with the call.
pub fn image(target: &str) -> Image {
    Image {
        target: Descriptor {
            media_type: INDEX_MT.to_string(),
            digest: target.to_string(),
            size: 1,
        },
        labels: Labels::new(),
    }
}

/// A lease resource as the dump and `list_lease_resources` show it.
pub fn listed(r: Resource) -> ResourceState {
    ResourceState::from(&r)
}

/// The `containerd.io/gc.expire` value for a real time (whole seconds).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    Instant::from(t).rfc3339()
}
