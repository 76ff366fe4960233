//! containerd's `client.Pull` of a fixture image, call by call: under a lease (client.WithLease),
//! each blob is fetched (`content.OpenWriter(WithRef(MakeRefKey), WithDescriptor)` + Copy), read
//! back by the children handler, and labelled with its children (SetChildrenMappedLabels) before
//! any child is fetched; unpack records each layer's uncompressed digest; then the image is
//! created (or, when the name exists, replaced by an Update without fieldpaths, retrying the
//! Create if it vanished meanwhile: client.go createNewImage) and the lease released without sync.
//!
//! `fetched` limits which platforms' manifests, configs and layers are fetched: the index still
//! labels every manifest, so the others are dangling references (a lazy pull, containerd#8973).
//!
//! Two programs: [`pull`] is the unpacking pull that puts a scenario's images in place (setup, an
//! ops file's `image.pull`, EnsureAllContent's fetch): its calls are unchanged from the first
//! model (and are not held to a real client). [`nerdctl_pull`] is `nerdctl pull --unpack=false`
//! as containerd 1.6.20's `client.Pull` runs it, call by call (held to the Go client,
//! clients/go/pull.go, by scenarios/tests/go_clients.rs).

use crate::clock::Duration;
use crate::content::WriteStyle;
use crate::errors::{Error, ErrorKind};
use crate::labels::{Labels, UNCOMPRESSED};
use crate::oci::{self, Blob, ImageFixture, Role};
use crate::op::OpKind;
use crate::program::{Call, Program, Rpc};
use crate::store::{Ctx, Image};
use std::sync::Arc;

/// containerd remotes.MakeRefKey: the ingest ref a fetch writes under.
pub fn ref_key(b: &Blob) -> String {
    let prefix = match b.role {
        Role::Index => "index",
        Role::Manifest { .. } => "manifest",
        Role::Config { .. } => "config",
        Role::Layer { .. } => "layer",
    };
    format!("{prefix}-{}", b.digest())
}

/// client.WithLease's default lease: 24 h expiry.
pub fn default_lease(id: &str) -> OpKind {
    OpKind::LeaseCreate {
        id: id.to_string(),
        expire: Some(Duration::HOUR * 24),
        flat: false,
        labels: Labels::new(),
    }
}

async fn fetch(rpc: &Rpc, ctx: &Ctx, b: &Blob) -> Result<(), Error> {
    rpc.exec(
        ctx,
        OpKind::ContentWrite {
            r: ref_key(b),
            data: b.data.clone(),
            // The fetch knows the descriptor: containerd's fetch opens the writer WithDescriptor.
            expected: Some(crate::Digest::parse(b.digest()).expect("fixture digests are valid")),
            labels: Labels::new(),
            style: WriteStyle::Open,
        },
    )
    .await
    .map(drop)
}

/// Fetch `b`, read it back for its children, label it with them.
async fn fetch_parent(rpc: &Rpc, ctx: &Ctx, b: &Blob) -> Result<(), Error> {
    fetch(rpc, ctx, b).await?;
    rpc.read(ctx, b.digest()).await?;
    rpc.exec(
        ctx,
        OpKind::ContentLabel {
            digest: b.digest().to_string(),
            labels: b.child_labels.clone(),
        },
    )
    .await
    .map(drop)
}

/// The pull program. `lease_id` names the lease WithLease creates when `ctx` carries none.
pub fn pull(
    fixture: Arc<ImageFixture>,
    fetched: Option<Vec<String>>,
    ctx: Ctx,
    lease_id: String,
) -> Program<Image> {
    Program::new(move |rpc| async move {
        let rpc = &rpc;
        rpc.with_lease(&ctx, &lease_id, |ctx| async move {
            fetch_parent(rpc, &ctx, &fixture.index).await?;
            let wanted = |p: &str| fetched.as_ref().is_none_or(|f| f.iter().any(|x| x == p));
            for p in fixture.platforms.iter().filter(|p| wanted(&p.platform)) {
                fetch_parent(rpc, &ctx, &p.manifest).await?;
                fetch(rpc, &ctx, &p.config).await?;
                for l in &p.layers {
                    fetch(rpc, &ctx, l).await?;
                }
            }
            for p in fixture.platforms.iter().filter(|p| wanted(&p.platform)) {
                for l in &p.layers {
                    let labels = Labels::from([(
                        UNCOMPRESSED.to_string(),
                        oci::uncompressed_digest(&l.data).to_string(),
                    )]);
                    rpc.exec(
                        &ctx,
                        OpKind::ContentLabel {
                            digest: l.digest().to_string(),
                            labels,
                        },
                    )
                    .await?;
                }
            }
            create_image(rpc, &ctx, &fixture, &fixture.reference).await
        })
        .await
    })
}

/// client.go createNewImage: Create; on AlreadyExists an Update with no fieldpaths, which replaces
/// the whole record (labels included: the pulled image has none); if the image vanished in
/// between (NotFound), Create again.
async fn create_image(
    rpc: &Rpc,
    ctx: &Ctx,
    fixture: &ImageFixture,
    name: &str,
) -> Result<Image, Error> {
    let t = &fixture.index.descriptor;
    loop {
        let create = OpKind::ImageCreate {
            name: name.to_string(),
            media_type: t.media_type.clone(),
            target: t.digest.clone(),
            size: Some(t.size),
            labels: Labels::new(),
        };
        match rpc.image_call(ctx, create).await {
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                let update = OpKind::ImageUpdate {
                    name: name.to_string(),
                    media_type: Some(t.media_type.clone()),
                    target: Some(t.digest.clone()),
                    size: Some(t.size),
                    labels: Some(Labels::new()),
                };
                match rpc.image_call(ctx, update).await {
                    Err(e) if e.kind == ErrorKind::NotFound => continue,
                    other => return other,
                }
            }
            other => return other,
        }
    }
}

/// `containerd.io/distribution.source` (remotes/docker/handler.go `labelDistributionSource`).
pub const DISTRIBUTION_SOURCE: &str = "containerd.io/distribution.source";

/// The distribution-source label's key and the repository appended to its value for a pull of
/// `name` (remotes/docker/handler.go AppendDistributionSourceLabel, v1.6.20): `reference.Parse`'s
/// locator (the name without its tag or digest) read as the URL `dummy://<locator>`, whose
/// `Hostname()` (the host **without its port**) names the key, `containerd.io/distribution.source.
/// <host>`, and whose path without its leading `/` is the repository. `127.0.0.1:5000/app:1`:
/// key `containerd.io/distribution.source.127.0.0.1`, repository `app`.
pub fn distribution_source(name: &str) -> (String, String) {
    let locator = name.split_once('@').map_or(name, |(l, _)| l);
    let locator = match locator.rfind(':') {
        Some(i) if !locator[i..].contains('/') => &locator[..i],
        _ => locator,
    };
    let (host_port, repo) = locator.split_once('/').unwrap_or((locator, ""));
    let host = match host_port.strip_prefix('[') {
        // An IPv6 literal: url.Hostname drops the brackets and the port.
        Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
        None => host_port.split_once(':').map_or(host_port, |(h, _)| h),
    };
    (format!("{DISTRIBUTION_SOURCE}.{host}"), repo.to_string())
}

/// remotes/docker/handler.go appendDistributionSourceLabel: the label's repositories (comma
/// separated) with `repo` added, sorted, each once.
pub fn append_distribution_source(origin: &str, repo: &str) -> String {
    let mut repos: Vec<&str> = origin.split(',').filter(|r| !r.is_empty()).collect();
    repos.push(repo);
    repos.sort_unstable();
    repos.dedup();
    repos.join(",")
}

/// The handlers client.fetch runs on each descriptor (pull.go, v1.6.20: `remotes.FetchHandler`,
/// the convertible check, `images.SetChildrenMappedLabels(images.ChildrenHandler)` and
/// `docker.AppendDistributionSourceLabel`, in that order, through `images.Handlers`):
/// - the fetch (remotes/handlers.go `fetch`): `content.OpenWriter(WithRef(MakeRefKey),
///   WithDescriptor)`, one Write stream; a blob the namespace has answers AlreadyExists at the
///   open, which `fetch` takes as done (the step's label is then completed as the `ingest.open` the
///   interposer sees); otherwise the data is copied and committed;
/// - the children (images/image.go `Children`): an index or manifest is read with
///   `content.ReadBlob` (its ReaderAt's Info, then the Read) and, having children, labelled with
///   them (images/handlers.go SetChildrenMappedLabels: one Update with a fieldpath per child
///   label, *all* children: the platform filter wraps it); a config or layer is childless, read
///   nothing;
/// - the distribution source (remotes/docker/handler.go): an Info, then an Update of the one
///   label `containerd.io/distribution.source.<host>` (fieldpath `labels.<key>`) with the
///   repository appended to what the Info showed. A value that would fail label validation is
///   skipped with a warning (no Update).
async fn handle(rpc: &Rpc, ctx: &Ctx, b: &Blob, source: &(String, String)) -> Result<(), Error> {
    fetch(rpc, ctx, b).await?;
    if matches!(b.role, Role::Index | Role::Manifest { .. }) {
        rpc.read_blob(ctx, b.digest()).await?;
        if !b.child_labels.is_empty() {
            let kind = OpKind::ContentLabel {
                digest: b.digest().to_string(),
                labels: b.child_labels.clone(),
            };
            rpc.exec(ctx, kind).await?;
        }
    }
    let (key, repo) = source;
    let info = rpc.info(ctx, b.digest()).await?;
    let origin = info.labels.get(key).map_or("", String::as_str);
    let value = append_distribution_source(origin, repo);
    if crate::labels::validate(key, &value).is_err() {
        return Ok(());
    }
    let kind = OpKind::ContentLabel {
        digest: b.digest().to_string(),
        labels: Labels::from([(key.clone(), value)]),
    };
    rpc.exec(ctx, kind).await.map(drop)
}

/// `nerdctl pull --unpack=false REMOTE` of `fixture` (its blobs as the registry serves them, the
/// image named `remote`): nerdctl's lease (client.WithLease, `lease_id` when `ctx` carries none,
/// released without sync), then client.Pull (pull.go, v1.6.20) without unpack — so no
/// `containerd.io/uncompressed` label and no Snapshots or Diff call: the unpacker is the only
/// writer of that label (unpacker.go), and Pull installs it only `if pullCtx.Unpack`.
///
/// The walk is images.Dispatch with WithMaxConcurrentDownloads(1) (images/handlers.go: the
/// semaphore is taken before each child's goroutine starts, in order): the index, then the
/// platform's manifest (images.FilterPlatforms and LimitManifests keep the wanted ones), then its
/// config and layers in manifest order; each blob through [`handle`]. With one platform this is
/// the order every run shows; with several (`fetched` absent: every platform, which client.Fetch
/// does), the library's goroutines would interleave the platforms' walks (the semaphore's FIFO
/// order decides), and the model keeps one platform after another.
///
/// Then createNewImage (Create, or Update when the name exists) under the lease; the Resolve and
/// the blob downloads are registry HTTP, not gRPC calls, and not steps.
pub fn nerdctl_pull(
    fixture: Arc<ImageFixture>,
    fetched: Option<Vec<String>>,
    ctx: Ctx,
    lease_id: String,
    remote: String,
) -> Program<Image> {
    Program::new(move |rpc| async move {
        let rpc = &rpc;
        let source = distribution_source(&remote);
        rpc.with_lease(&ctx, &lease_id, |ctx| async move {
            handle(rpc, &ctx, &fixture.index, &source).await?;
            let wanted = |p: &str| fetched.as_ref().is_none_or(|f| f.iter().any(|x| x == p));
            for p in fixture.platforms.iter().filter(|p| wanted(&p.platform)) {
                handle(rpc, &ctx, &p.manifest, &source).await?;
                handle(rpc, &ctx, &p.config, &source).await?;
                for l in &p.layers {
                    handle(rpc, &ctx, l, &source).await?;
                }
            }
            create_image(rpc, &ctx, &fixture, &remote).await
        })
        .await
    })
}
