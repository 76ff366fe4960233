//! `nerdctl push` in each historical variant (see nerdctl-push-history.md), call by call.
//!
//! Without `--all-platforms` nerdctl converts the image into a temporary reduced-platform image
//! and pushes that; the variants differ in how the temporary image is created and deleted:
//!
//! | variant      | before the push                                               | after the push            |
//! |--------------|---------------------------------------------------------------|---------------------------|
//! | `v0.17`      | convert `<ref>-tmp-reduced-platform` <- ref (own lease)        | delete tmp, async         |
//! | `v0.18`      | same (nerdctl #866)                                           | delete tmp, **sync** (GC) |
//! | `v2.0.4`     | as v0.18 (its EnsureAllContent, #3435, is on the IPFS path only) | delete tmp, sync      |
//! | `v2.0.5`     | EnsureAllContent; get ref; delete tmp sync; create tmp -> ref's target; convert tmp in place (#4062; a failed conversion leaves tmp) | delete tmp, sync |
//! | `lease-held` | one lease first; ref's target and the reduced index added to it with AddResource; EnsureAllContent under it; unique tmp name; convert under the lease | delete tmp, then release the lease |
//!
//! The push itself is containerd's `remotes.PushContent`: walk from the target (each index and
//! manifest read with Info + ReadAt to find its children, each child Info'd by the annotate
//! handler), push configs and layers (registry HEAD; if absent Info + read + upload), then the
//! manifests and the index last. No lease is held by any upstream variant.
//!
//! `lease-held` when the source image is removed mid-push: the target is added to the lease right
//! after `image.get`, then checked with Info. If the image (and its content) went before that, the
//! push stops with `source image "<ref>" was removed during push` — a FailedPrecondition, not a
//! missing digest. Once the check passes, everything reachable from the target is held.

use super::wrap;
use crate::backend::registry::repo_and_tag;
use crate::backend::{Client, RepoObject};
use pushrace_models::clock::Duration;
use pushrace_models::converter;
use pushrace_models::leases::Resource;
use pushrace_models::oci::{self, ImageFixture};
use pushrace_models::pull::distribution_source;
use pushrace_models::{Ctx, Descriptor, Error, ErrorKind, Labels, OpKind, Semantics};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Variant {
    V0_17,
    V0_18,
    V2_0_4,
    V2_0_5,
    LeaseHeld,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::V0_17,
        Variant::V0_18,
        Variant::V2_0_4,
        Variant::V2_0_5,
        Variant::LeaseHeld,
    ];

    fn sync_deferred_delete(self) -> bool {
        self >= Variant::V0_18
    }

    /// nerdctl v2.0.4 calls EnsureAllContent only on its IPFS path; v2.0.5 (PR #4062) calls it
    /// before the reduced-platform conversion (`pkg/cmd/image/push.go` at each tag).
    fn ensures_content(self) -> bool {
        self >= Variant::V2_0_5
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Variant, String> {
        Ok(match s {
            "v0.17" => Variant::V0_17,
            "v0.18" => Variant::V0_18,
            "v2.0.4" => Variant::V2_0_4,
            "v2.0.5" => Variant::V2_0_5,
            "lease-held" => Variant::LeaseHeld,
            _ => {
                return Err(format!(
                "unknown variant {s:?}; expected one of v0.17, v0.18, v2.0.4, v2.0.5, lease-held"
            ))
            }
        })
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Variant::V0_17 => "v0.17",
            Variant::V0_18 => "v0.18",
            Variant::V2_0_4 => "v2.0.4",
            Variant::V2_0_5 => "v2.0.5",
            Variant::LeaseHeld => "lease-held",
        })
    }
}

impl serde::Serialize for Variant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Everything one push needs.
#[derive(Clone, Debug)]
pub struct Push {
    /// The actor's name: makes lease ids and (for lease-held) the tmp name unique.
    pub actor: String,
    pub ctx: Ctx,
    pub reference: String,
    pub platforms: Vec<String>,
    pub all_platforms: bool,
    pub variant: Variant,
    pub semantics: Semantics,
    /// Where EnsureAllContent fetches missing blobs from (the image as the registry serves it).
    pub fixture: Option<Arc<ImageFixture>>,
}

/// nerdctl's temporary image name (shared by every push of `reference`, except lease-held's).
pub fn tmp_name(reference: &str) -> String {
    format!("{reference}-tmp-reduced-platform")
}

/// The JSON blob `digest` (memoised by digest: parsing dominates exploration otherwise).
fn json(digest: &str, b: &[u8]) -> Result<std::rc::Rc<Value>, Error> {
    pushrace_models::memo::json(digest, b).map_err(|e| {
        Error::raw(
            ErrorKind::Unknown,
            format!("failed to parse blob {digest}: {e}"),
        )
    })
}

fn descriptor(v: &Value) -> Option<Descriptor> {
    Some(Descriptor {
        media_type: v.get("mediaType")?.as_str()?.to_string(),
        digest: v.get("digest")?.as_str()?.to_string(),
        size: v.get("size")?.as_i64()?,
    })
}

/// An index entry's platform as `os/arch[/variant]`.
fn platform_of(v: &Value) -> Option<String> {
    let p = v.get("platform")?;
    let (os, arch) = (p.get("os")?.as_str()?, p.get("architecture")?.as_str()?);
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(var) => format!("{os}/{arch}/{var}"),
        None => format!("{os}/{arch}"),
    })
}

/// The children of an index (filtered by platform) or a manifest (config, then layers).
fn children(desc: &Descriptor, blob: &Value, platforms: Option<&[String]>) -> Vec<Descriptor> {
    if oci::is_index(&desc.media_type) {
        blob.get("manifests")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter(|m| match (platforms, platform_of(m)) {
                        (Some(want), Some(p)) => want.iter().any(|w| oci::specifiers_match(w, &p)),
                        _ => true,
                    })
                    .filter_map(descriptor)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        let mut out: Vec<Descriptor> = blob
            .get("config")
            .and_then(descriptor)
            .into_iter()
            .collect();
        if let Some(ls) = blob.get("layers").and_then(Value::as_array) {
            out.extend(ls.iter().filter_map(descriptor));
        }
        out
    }
}

fn is_parent(d: &Descriptor) -> bool {
    oci::is_index(&d.media_type) || oci::is_manifest(&d.media_type)
}

/// Where a push pushes: its repository on the registry, the tag its root goes by, and the
/// distribution-source label key of its host, the one label whose repositories the pusher may
/// mount a blob from.
pub struct Target {
    pub repo: String,
    /// [`RepoObject::tag`] of the name pushed.
    pub tag: RepoObject,
    pub source_key: String,
}

impl Target {
    /// The target of a push of `reference`: its repository and tag as the seed and the loader
    /// read a name ([`repo_and_tag`]), and the label key of its host without the port
    /// (remotes/docker/handler.go; [`distribution_source`]).
    pub fn of(reference: &str) -> Target {
        let (repo, tag) = repo_and_tag(reference);
        Target {
            repo: repo.to_string(),
            tag: RepoObject::tag(repo, tag),
            source_key: distribution_source(reference).0,
        }
    }
}

/// remotes/docker/handler.go selectRepositoryMountCandidate (v1.6.20): of the repositories a
/// blob's distribution-source label names (comma separated), not the target itself, the last of
/// those sharing the most leading path components with the target; `None` for an empty result.
fn mount_candidate<'a>(target: &str, label: &'a str) -> Option<&'a str> {
    let components: Vec<&str> = target.split('/').collect();
    let common = |repo: &str| {
        let theirs = repo.split('/');
        components
            .iter()
            .zip(theirs)
            .take_while(|(a, b)| *a == b)
            .count()
    };
    let (mut n, mut found) = (0, "");
    for repo in label.split(',').filter(|r| *r != target) {
        let l = common(repo);
        if l >= n {
            (n, found) = (l, repo);
        }
    }
    (!found.is_empty()).then_some(found)
}

/// remotes.push for one blob (remotes/handlers.go `push`, remotes/docker/pusher.go `push`): the
/// registry HEAD in the target repository; if absent, for a config or layer whose
/// distribution-source label (`source`, read by the annotate handler's Info) names a mount
/// candidate, a cross-repository mount, done when it answers 201; otherwise the ReaderAt (Info),
/// the read and the upload. A manifest is PUT, never mounted. The root (`root`) goes by the tag:
/// containerd's `client.Push` names the pusher's object `TAG@DIGEST`, so `getManifestPath` checks
/// and puts the root's manifest by tag (present only when the tag names its digest) and every
/// other manifest by digest.
async fn push_blob<C: Client>(
    c: &C,
    ctx: &Ctx,
    d: &Descriptor,
    to: &Target,
    source: Option<&str>,
    root: bool,
) -> Result<(), Error> {
    let object = RepoObject::new(&to.repo, &d.digest);
    let there = match root {
        true => c.registry_tagged(&to.tag, &d.digest).await,
        false => c.registry_has(&object).await,
    };
    if there {
        return Ok(());
    }
    let from = source.filter(|_| !is_parent(d));
    if let Some(from) = from.and_then(|label| mount_candidate(&to.repo, label)) {
        if c.registry_mount(&object, from).await {
            return Ok(());
        }
    }
    c.info_status(ctx, &d.digest).await?;
    c.read(ctx, &d.digest)
        .await
        .map_err(|e| wrap("failed to copy", e))?;
    match root {
        true => c.registry_put_tagged(&to.tag, &d.digest).await,
        false => c.registry_put(&object).await,
    }
    Ok(())
}

/// remotes.PushContent from `target`, sequentialised depth-first in descriptor order. Each child
/// of an index or manifest carries what annotateDistributionSourceHandler's Info read of its
/// distribution-source label for the push's host (the only label the pusher reads of it).
pub async fn push_content<C: Client>(
    c: &C,
    ctx: &Ctx,
    target: &Descriptor,
    platforms: Option<&[String]>,
    semantics: Semantics,
    to: &Target,
) -> Result<(), Error> {
    let mut manifests: Vec<Descriptor> = Vec::new();
    let mut queue = vec![(target.clone(), None)];
    while let Some((desc, source)) = queue.pop() {
        if !is_parent(&desc) {
            // A config or layer: by digest, even as the root (only manifests go by tag).
            push_blob(c, ctx, &desc, to, source.as_deref(), false).await?;
            continue;
        }
        let blob = json(&desc.digest, &c.read_blob(ctx, &desc.digest).await?)?;
        let kids = children(&desc, &blob, platforms);
        let mut annotated = Vec::with_capacity(kids.len());
        for k in kids {
            let source = match c.info_label(ctx, &k.digest, &to.source_key).await {
                Ok(source) => source,
                Err(e) if e.is_not_found() && semantics.push_ignores_missing_child_info() => None,
                Err(e) => return Err(e),
            };
            annotated.push((k, source));
        }
        manifests.push(desc);
        queue.extend(annotated.into_iter().rev());
    }
    for (i, m) in manifests.iter().enumerate().rev() {
        push_blob(c, ctx, m, to, None, i == 0).await?;
    }
    Ok(())
}

/// nerdctl's EnsureAllContent (`pkg/cmd/image/ensure.go`, v2.0.5): the image by name; nerdctl's
/// `read` of it ([`read_platforms`]); then for each platform read whose config's platform is
/// wanted, `images.Check` with that platform ([`check_missing`]) and a fetch of the platform when
/// anything is missing. (nerdctl keeps the platforms read in a map, so with several wanted
/// platforms Go's map order decides; here it is the index order.)
async fn ensure_all_content<C: Client>(
    c: &C,
    p: &Push,
    ctx: &Ctx,
    lease_seq: &mut u32,
) -> Result<(), Error> {
    let img = c.image_get(ctx, &p.reference).await?;
    let target = img.target;
    for platform in read_platforms(c, ctx, &target).await {
        let wanted = p.all_platforms
            || p.platforms
                .iter()
                .any(|w| oci::specifiers_match(w, &platform));
        if !wanted || !check_missing(c, ctx, &target, &platform).await? {
            continue;
        }
        let fixture = p.fixture.clone().ok_or_else(|| {
            let why = format!(
                "cannot fetch {platform} of {}: no registry copy",
                p.reference
            );
            Error::raw(ErrorKind::NotFound, why)
        })?;
        *lease_seq += 1;
        let id = format!("{}-fetch-{}", p.actor, lease_seq);
        (pushrace_models::pull::pull(fixture, Some(vec![platform.clone()]), ctx.clone(), id))
            .drive(c)
            .await?;
    }
    Ok(())
}

/// nerdctl's `read` (`pkg/cmd/image/list.go` readIndex/readManifest): ReadBlob of the index, then
/// of each entry's manifest and its config, in index order, through nerdctl's process-wide cache
/// by digest (`pkg/containerdutil/helpers.go`: a blob read once is not read again); an entry whose
/// manifest or config cannot be read is skipped (so a platform pulled lazily, manifest absent, is
/// not ensured). The platforms are the configs' own (`os/architecture[/variant]`).
async fn read_platforms<C: Client>(c: &C, ctx: &Ctx, target: &Descriptor) -> Vec<String> {
    let mut cache: BTreeMap<String, std::rc::Rc<Value>> = BTreeMap::new();
    let mut out = Vec::new();
    if !oci::is_index(&target.media_type) {
        return out;
    }
    let Ok(index) = read_cached(c, ctx, &mut cache, &target.digest).await else {
        return out;
    };
    for m in children(target, &index, None) {
        let Ok(manifest) = read_cached(c, ctx, &mut cache, &m.digest).await else {
            continue;
        };
        let Some(config) = manifest.get("config").and_then(descriptor) else {
            continue;
        };
        if let Ok(cfg) = read_cached(c, ctx, &mut cache, &config.digest).await {
            out.extend(config_platform(&cfg));
        }
    }
    out
}

/// nerdctl's `containerdutil.ReadBlob`: content.ReadBlob (Info + Read) unless read before.
async fn read_cached<C: Client>(
    c: &C,
    ctx: &Ctx,
    cache: &mut BTreeMap<String, std::rc::Rc<Value>>,
    digest: &str,
) -> Result<std::rc::Rc<Value>, Error> {
    if let Some(v) = cache.get(digest) {
        return Ok(v.clone());
    }
    let v = json(digest, &c.read_blob(ctx, digest).await?)?;
    cache.insert(digest.to_string(), v.clone());
    Ok(v)
}

/// An image config's platform as `os/architecture[/variant]`.
fn config_platform(cfg: &Value) -> Option<String> {
    let (os, arch) = (cfg.get("os")?.as_str()?, cfg.get("architecture")?.as_str()?);
    Some(match cfg.get("variant").and_then(Value::as_str) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

/// images.Check of `target` for one platform (images/image.go, 1.6.20): ReadBlob of the index and
/// of the platform's manifest, then a ReaderAt (an Info) of its config and each layer; whether
/// anything is missing.
async fn check_missing<C: Client>(
    c: &C,
    ctx: &Ctx,
    target: &Descriptor,
    platform: &str,
) -> Result<bool, Error> {
    let index = json(&target.digest, &c.read_blob(ctx, &target.digest).await?)?;
    let want = [platform.to_string()];
    let mut missing = false;
    for m in children(target, &index, Some(&want)) {
        match c.read_blob(ctx, &m.digest).await {
            Err(e) if e.is_not_found() => missing = true,
            Err(e) => return Err(e),
            Ok(b) => {
                for k in children(&m, &*json(&m.digest, &b)?, None) {
                    let info = c.info_status(ctx, &k.digest).await;
                    missing |= info.is_err_and(|e| e.is_not_found());
                }
            }
        }
    }
    Ok(missing)
}

async fn convert<C: Client>(
    c: &C,
    p: &Push,
    ctx: &Ctx,
    dst: &str,
    src: &str,
    seq: &mut u32,
) -> Result<pushrace_models::Image, Error> {
    *seq += 1;
    let lease = format!("{}-convert-{}", p.actor, seq);
    (converter::convert(
        src.to_string(),
        dst.to_string(),
        p.platforms.clone(),
        ctx.clone(),
        lease,
    ))
    .drive(c)
    .await
    .map_err(|e| {
        wrap(
            format_args!(
                // nerdctl formats the platforms with Go's %v: `[linux/amd64 linux/arm64]`.
                "failed to create a tmp reduced-platform image {dst:?} (platform=[{}])",
                p.platforms.join(" ")
            ),
            e,
        )
    })
}

/// `nerdctl push` of `p.reference`.
pub async fn push<C: Client>(c: &C, p: &Push) -> Result<(), Error> {
    let mut seq = 0u32;
    if p.variant == Variant::LeaseHeld {
        return push_lease_held(c, p, &mut seq).await;
    }
    let ctx = &p.ctx;
    if p.variant.ensures_content() {
        ensure_all_content(c, p, ctx, &mut seq).await?;
    }
    let mut push_ref = p.reference.clone();
    let mut tmp = None;
    if !p.all_platforms {
        let name = tmp_name(&p.reference);
        if p.variant == Variant::V2_0_5 {
            let src = c.image_get(ctx, &p.reference).await?;
            let _ = c
                .exec(
                    ctx,
                    OpKind::ImageDelete {
                        name: name.clone(),
                        sync: true,
                    },
                )
                .await;
            let create = OpKind::ImageCreate {
                name: name.clone(),
                media_type: src.target.media_type.clone(),
                target: src.target.digest.clone(),
                size: Some(src.target.size),
                labels: src.labels.clone(),
            };
            c.exec(ctx, create).await?;
            // nerdctl registers the deferred delete only after the conversion succeeded: a failed
            // one returns with the tmp image left in place (`pkg/cmd/image/push.go` v2.0.5).
            convert(c, p, ctx, &name, &name, &mut seq).await?;
            tmp = Some(name.clone());
        } else {
            convert(c, p, ctx, &name, &p.reference, &mut seq).await?;
            tmp = Some(name.clone());
        }
        push_ref = name;
    }
    let result = async {
        let img = c.image_get(ctx, &push_ref).await?;
        let platforms = (!p.all_platforms).then_some(p.platforms.as_slice());
        let to = Target::of(&p.reference);
        push_content(c, ctx, &img.target, platforms, p.semantics, &to).await
    }
    .await;
    if let Some(name) = tmp {
        let _ = c
            .exec(
                ctx,
                OpKind::ImageDelete {
                    name,
                    sync: p.variant.sync_deferred_delete(),
                },
            )
            .await;
    }
    result
}

/// The fix proposed here: hold one lease from before anything is read until after the tmp image
/// is gone, with the source target and the reduced index added to it explicitly.
async fn push_lease_held<C: Client>(c: &C, p: &Push, seq: &mut u32) -> Result<(), Error> {
    let lease = format!("{}-push", p.actor);
    let create = OpKind::LeaseCreate {
        id: lease.clone(),
        expire: Some(Duration::HOUR * 24),
        flat: false,
        labels: Labels::new(),
    };
    c.exec(&p.ctx, create).await?;
    let ctx = p.ctx.with_lease(lease.clone());
    let mut tmp = None;
    let result = async {
        let src = c.image_get(&ctx, &p.reference).await?;
        c.exec(
            &ctx,
            OpKind::LeaseAdd {
                id: lease.clone(),
                resource: Resource::Content(src.target.digest.clone()),
            },
        )
        .await?;
        if let Err(e) = c.info_status(&ctx, &src.target.digest).await {
            if e.is_not_found() {
                return Err(Error::wrap(
                    ErrorKind::FailedPrecondition,
                    format_args!("source image {:?} was removed during push", p.reference),
                ));
            }
            return Err(e);
        }
        ensure_all_content(c, p, &ctx, seq).await?;
        let mut target = src.target.clone();
        if !p.all_platforms {
            if oci::is_index(&src.target.media_type) {
                let i = c.info(&ctx, &src.target.digest).await?;
                // As the Go client (clients/go) does it: an Info for the labels, then ReadBlob.
                let data = c.read_blob(&ctx, &src.target.digest).await?;
                if let Some(reduced) = converter::reduce_index_of_blob(
                    &src.target.digest,
                    &data,
                    &i.labels,
                    &p.platforms,
                )? {
                    let r = reduced.digest.to_string();
                    c.exec(
                        &ctx,
                        OpKind::LeaseAdd {
                            id: lease.clone(),
                            resource: Resource::Content(r),
                        },
                    )
                    .await?;
                }
            }
            let name = format!("{}-{}", tmp_name(&p.reference), p.actor);
            tmp = Some(name.clone());
            target = convert(c, p, &ctx, &name, &p.reference, seq).await?.target;
        }
        let platforms = (!p.all_platforms).then_some(p.platforms.as_slice());
        let to = Target::of(&p.reference);
        push_content(c, &ctx, &target, platforms, p.semantics, &to).await
    }
    .await;
    if let Some(name) = tmp {
        let _ = c
            .exec(&ctx, OpKind::ImageDelete { name, sync: false })
            .await;
    }
    let _ = c
        .exec(
            &p.ctx,
            OpKind::LeaseDelete {
                id: lease,
                sync: false,
            },
        )
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// remotes/docker/handler.go selectRepositoryMountCandidate (v1.6.20): the target itself is
    /// never a candidate; of the others, the one sharing the most leading path components with
    /// the target wins, a later one on a tie (`l >= n`); an empty label or a label naming only the
    /// target gives none.
    #[test]
    fn mount_candidates_follow_containerds_selection() {
        let cases = [
            ("app", "base", Some("base")),
            ("app", "app", None),
            ("app", "", None),
            ("app", "app,base", Some("base")),
            ("app", "a,b", Some("b")),
            ("team/app", "other/x,team/base,zz", Some("team/base")),
            ("team/app", "team/base,team/other", Some("team/other")),
            ("team/app", "team/app", None),
        ];
        for (target, label, want) in cases {
            assert_eq!(mount_candidate(target, label), want, "{target} {label:?}");
        }
    }

    /// A push's target: the repository and the label key of its host, without the port.
    #[test]
    fn a_target_is_the_repository_and_the_hosts_label() {
        let t = Target::of("example.com:5000/team/app:1");
        assert_eq!(t.repo, "team/app");
        assert_eq!(t.tag, RepoObject::tag("team/app", "1"));
        assert_eq!(
            t.source_key,
            "containerd.io/distribution.source.example.com"
        );
    }
}
