#![allow(dead_code)]
//! Shared helpers for the daemon tests. Every test starts its own daemon: GC is global to a daemon,
//! so no two cases may share one. Without the `containerd` binary the start fails with the install hint.

pub use pushrace_daemon::*;

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
    Ctx::ns(n)
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
    w.digest
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

pub fn image(name: &str, target: &str) -> Image {
    Image {
        name: name.to_string(),
        target: Descriptor {
            media_type: INDEX_MT.to_string(),
            digest: target.to_string(),
            size: 1,
        },
        labels: Labels::new(),
    }
}
