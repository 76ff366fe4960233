//! containerd's `client.Pull` of a fixture image, call by call: under a lease (client.WithLease),
//! each blob is fetched (`content.OpenWriter(WithRef(MakeRefKey), WithDescriptor)` + Copy), read
//! back by the children handler, and labelled with its children (SetChildrenMappedLabels) before
//! any child is fetched; unpack records each layer's uncompressed digest; then the image is
//! created (or, when the name exists, replaced by an Update without fieldpaths, retrying the
//! Create if it vanished meanwhile: client.go createNewImage) and the lease released without sync.
//!
//! `fetched` limits which platforms' manifests, configs and layers are fetched: the index still
//! labels every manifest, so the others are dangling references (a lazy pull, containerd#8973).

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
            let t = &fixture.index.descriptor;
            // client.go createNewImage: Create; on AlreadyExists an Update with no fieldpaths,
            // which replaces the whole record (labels included: the pulled image has none); if
            // the image vanished in between (NotFound), Create again.
            loop {
                let create = OpKind::ImageCreate {
                    name: fixture.reference.clone(),
                    media_type: t.media_type.clone(),
                    target: t.digest.clone(),
                    size: Some(t.size),
                    labels: Labels::new(),
                };
                match rpc.image_call(&ctx, create).await {
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {
                        let update = OpKind::ImageUpdate {
                            name: fixture.reference.clone(),
                            media_type: Some(t.media_type.clone()),
                            target: Some(t.digest.clone()),
                            size: Some(t.size),
                            labels: Some(Labels::new()),
                        };
                        match rpc.image_call(&ctx, update).await {
                            Err(e) if e.kind == ErrorKind::NotFound => continue,
                            other => return other,
                        }
                    }
                    other => return other,
                }
            }
        })
        .await
    })
}
