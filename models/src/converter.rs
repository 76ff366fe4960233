//! containerd's images/converter `Convert(ctx, client, dst, src, WithPlatform(m))` with the default
//! index converter and no layer conversion: the platform reduction nerdctl runs before a push
//! without `--all-platforms`. Call by call (images/converter/converter.go and default.go, 1.6.20):
//!
//! 1. `client.WithLease` (24 h lease, unless the context has one);
//! 2. `is.Get(src)`;
//! 3. convertIndex: readJSON of the index (an Info, then ReadBlob, whose ReaderAt makes its own
//!    Info: Info, Info, Read; `images/converter/default.go` readJSON, `content/helpers.go`
//!    ReadBlob); for each manifest that matches, convertManifest (readJSON of the manifest;
//!    GetDiffID per layer: Info, and a ReadBlob when the layer has no `containerd.io/uncompressed`
//!    label; convertConfig reads the config with readJSON twice); a manifest that
//!    does not match has its gc.ref.content labels cleared (ClearGCLabels) and is dropped. Kept
//!    manifests keep their original `m.<i>` label key: 1.6.20 does not renumber them.
//! 4. if anything was dropped, `writeJSON`: the new index is written with its digest given only at
//!    commit (`OpenWriter(WithRef("converter-write-json-<d>"))` + `content.Copy`), so when it already
//!    exists it does NOT join the lease;
//! 5. dst != src: `is.Delete(dst)` (async, error ignored) then `is.Create(dst)` with the source
//!    image's labels; dst == src: `is.Update`;
//! 6. the lease is deleted without sync when Convert returns (also on error).

use crate::content::WriteStyle;
use crate::errors::{Error, ErrorKind};
use crate::labels::{Labels, GC_REF_CONTENT, UNCOMPRESSED};
use crate::oci;
use crate::op::OpKind;
use crate::program::{Call, Program, Rpc};
use crate::store::{Ctx, Descriptor, Image};
use oci_spec::image::{ImageIndex, ImageManifest};
use std::fmt::Write as _;

/// The new index the converter writes when it keeps `platforms` of `index` (None: nothing dropped).
/// Pure: the same inputs give the same bytes, digest and labels.
pub fn reduce_index(
    index_json: &[u8],
    index_labels: &Labels,
    platforms: &[String],
) -> Result<Option<(Vec<u8>, Labels)>, Error> {
    let mut index: ImageIndex = parse(index_json)?;
    let mut labels = index_labels.clone();
    let mut kept = Vec::new();
    let mut modified = false;
    for m in index.manifests() {
        let matches = m
            .platform()
            .as_ref()
            .is_none_or(|p| platforms.iter().any(|want| oci::platform_matches(want, p)));
        if matches {
            kept.push(m.clone());
        } else {
            let d = m.digest().to_string();
            labels.retain(|k, v| !(*v == d && k.starts_with(GC_REF_CONTENT)));
            modified = true;
        }
    }
    if !modified {
        return Ok(None);
    }
    let none_kept = kept.is_empty();
    index.set_manifests(kept);
    let mut json = serde_json::to_vec(&index).expect("OCI index serializes");
    if none_kept {
        // images/converter/default.go appends kept entries to a nil slice, which Go's json.Marshal
        // writes as `null` (checked against `ctr images convert` in tests/ctr_convert.rs). Only the
        // key can produce this exact byte sequence: strings inside annotations are escaped.
        json = String::from_utf8(json)
            .expect("serde_json writes UTF-8")
            .replacen(r#""manifests":[]"#, r#""manifests":null"#, 1)
            .into_bytes();
    }
    Ok(Some((json, labels)))
}

/// A blob parsed as `T`, memoised by its digest (see `memo`).
fn parse_blob<T: serde::de::DeserializeOwned + 'static>(
    digest: &str,
    b: &[u8],
) -> Result<std::rc::Rc<T>, Error> {
    crate::memo::json(digest, b).map_err(|e| Error::raw(ErrorKind::Unknown, e.to_string()))
}

/// A reduced index: its bytes, the labels it is written with, and its digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reduced {
    pub json: crate::Bytes,
    pub labels: Labels,
    pub digest: crate::Digest,
}

/// `reduce_index` of the index blob `digest`, with the result's digest, memoised on all inputs
/// (see `memo`: the explorer converts the same index thousands of times).
pub fn reduce_index_of_blob(
    digest: &str,
    index_json: &[u8],
    index_labels: &Labels,
    platforms: &[String],
) -> Result<Option<Reduced>, Error> {
    // Every part length-prefixed, so no two different inputs share a key.
    let mut key = String::with_capacity(256);
    let parts = std::iter::once(digest)
        .chain(platforms.iter().map(String::as_str))
        .chain(std::iter::once("|"))
        .chain(
            index_labels
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        );
    for part in parts {
        let _ = write!(key, "{}:{part}", part.len());
    }
    let r = crate::memo::cached(&key, || {
        reduce_index(index_json, index_labels, platforms).map(|o| {
            o.map(|(json, labels)| Reduced {
                digest: crate::Digest::of(&json),
                json: json.into(),
                labels,
            })
        })
    })?;
    Ok((*r).clone())
}

fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Error> {
    oci::from_go_json(b).map_err(|e| Error::raw(ErrorKind::Unknown, e.to_string()))
}

/// The ingest ref writeJSON uses: the same for every conversion producing the same blob.
pub fn write_json_ref(digest: &str) -> String {
    format!("converter-write-json-{digest}")
}

async fn convert_manifest(rpc: &Rpc, ctx: &Ctx, digest: &str) -> Result<(), Error> {
    // readJSON: an Info, then content.ReadBlob (its ReaderAt makes its own Info).
    rpc.info_status(ctx, digest).await?;
    let manifest = parse_blob::<ImageManifest>(digest, &rpc.read_blob(ctx, digest).await?)?;
    for l in manifest.layers() {
        let mt = l.media_type().to_string();
        if !oci::is_uncompressed_layer(&mt) {
            let d = l.digest().to_string();
            if rpc.info_label(ctx, &d, UNCOMPRESSED).await?.is_none() {
                // GetDiffID (images/diffid.go) reads the layer through a ReaderAt, then stores
                // the label with an Update whose error it only logs; the Update is not modelled
                // (fixtures always carry the label; see docs/go-clients.md).
                rpc.read_blob(ctx, &d).await?;
            }
        }
    }
    let config = manifest.config().digest().to_string();
    for _ in 0..2 {
        rpc.info_status(ctx, &config).await?;
        rpc.read_blob(ctx, &config).await?;
    }
    Ok(())
}

/// The conversion as a program returning the image it created or updated.
pub fn convert(
    src: String,
    dst: String,
    platforms: Vec<String>,
    ctx: Ctx,
    lease_id: String,
) -> Program<Image> {
    Program::new(move |rpc| async move {
        let rpc = &rpc;
        rpc.with_lease(&ctx, &lease_id, |ctx| async move {
            let src_img = rpc.image_get(&ctx, &src).await?;
            let mut target = src_img.target.clone();
            if oci::is_index(&target.media_type) {
                let info = rpc.info(&ctx, &target.digest).await?;
                let index_json = rpc.read_blob(&ctx, &target.digest).await?;
                let index = parse_blob::<ImageIndex>(&target.digest, &index_json)?;
                for m in index.manifests() {
                    let keep = m
                        .platform()
                        .as_ref()
                        .is_none_or(|p| platforms.iter().any(|w| oci::platform_matches(w, p)));
                    if keep && oci::is_manifest(m.media_type().as_ref()) {
                        convert_manifest(rpc, &ctx, m.digest().as_ref()).await?;
                    }
                }
                if let Some(r) =
                    reduce_index_of_blob(&target.digest, &index_json, &info.labels, &platforms)?
                {
                    let write = OpKind::ContentWrite {
                        r: write_json_ref(r.digest.as_str()),
                        data: r.json.clone(),
                        expected: Some(r.digest.clone()),
                        labels: r.labels,
                        style: WriteStyle::Commit,
                    };
                    rpc.exec(&ctx, write).await?;
                    target = Descriptor {
                        media_type: target.media_type,
                        digest: r.digest.to_string(),
                        size: r.json.len() as i64,
                    };
                }
            } else if oci::is_manifest(&target.media_type) {
                convert_manifest(rpc, &ctx, &target.digest).await?;
            }
            if dst != src {
                let _ = rpc
                    .exec(
                        &ctx,
                        OpKind::ImageDelete {
                            name: dst.clone(),
                            sync: false,
                        },
                    )
                    .await;
                let create = OpKind::ImageCreate {
                    name: dst.clone(),
                    media_type: target.media_type.clone(),
                    target: target.digest.clone(),
                    size: Some(target.size),
                    labels: src_img.labels.clone(),
                };
                rpc.image_call(&ctx, create).await
            } else {
                let update = OpKind::ImageUpdate {
                    name: dst.clone(),
                    media_type: Some(target.media_type.clone()),
                    target: Some(target.digest.clone()),
                    size: Some(target.size),
                    labels: Some(src_img.labels.clone()),
                };
                rpc.image_call(&ctx, update).await
            }
        })
        .await
    })
}

/// The platform reduction's output for a fixture, computed without a store (for messages and
/// tests): the reduced index's digest, or None when nothing would be dropped.
pub fn reduced_index_of(
    fixture: &oci::ImageFixture,
    platforms: &[String],
) -> Option<crate::Digest> {
    reduce_index(&fixture.index.data, &fixture.index.child_labels, platforms)
        .ok()
        .flatten()
        .map(|(json, _)| crate::Digest::of(&json))
}
