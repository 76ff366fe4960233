//! The client procedures: pull (client.Pull of containerd 1.6.20) and the converter's platform
//! reduction (images/converter, default.go convertIndex), checked call by call.

mod common;
use common::apply;
use pushrace_models::converter::{self, reduce_index, write_json_ref};
use pushrace_models::labels::Labels;
use pushrace_models::oci::ImageFixture;
use pushrace_models::program::Step;
use pushrace_models::pull;
use pushrace_models::{Ctx, Digest, Op, OpKind, Semantics, Store};
use std::sync::Arc;

fn platforms(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

fn fixture() -> Arc<ImageFixture> {
    Arc::new(
        ImageFixture::build(
            "example.com/app:1",
            &platforms(&["linux/amd64", "linux/arm64"]),
            2,
        )
        .unwrap(),
    )
}

/// Runs a pull and returns every call it made.
fn pulled(store: &mut Store, fetched: Option<Vec<String>>) -> Vec<Op> {
    let mut calls = Vec::new();
    pull::pull(fixture(), fetched, Ctx::default(), "pull-lease".into())
        .run(store, |op, _| calls.push(op.clone()))
        .unwrap();
    calls
}

fn labels_of(store: &Store, digest: &str) -> Labels {
    store.namespace("default").unwrap().content[digest]
        .labels
        .clone()
}

/// images.SetChildrenMappedLabels labels a parent (Update) before the handler returns its
/// children for fetching: every child's write comes after its parent's label call.
#[test]
fn pull_labels_parents_before_children() {
    let mut s = Store::new(Semantics::V1_6);
    let calls = pulled(&mut s, None);
    let pos = |pred: &dyn Fn(&OpKind) -> bool| calls.iter().position(|op| pred(&op.kind));
    let f = fixture();
    let parents = std::iter::once(&f.index).chain(f.platforms.iter().map(|p| &p.manifest));
    let mut checked = 0;
    for parent in parents {
        let label_at = pos(&|k| {
            matches!(k, OpKind::ContentLabel { digest, labels } if digest == parent.digest() && *labels == parent.child_labels)
        })
        .expect("parent labelled");
        for child in parent.child_labels.values() {
            let write_at = pos(&|k| {
                matches!(k, OpKind::ContentWrite { data, .. } if Digest::of(data).as_str() == child)
            })
            .expect("child written");
            assert!(
                label_at < write_at,
                "{child} written before its parent was labelled"
            );
            checked += 1;
        }
    }
    // 2 manifests under the index, config + 2 layers under each manifest.
    assert_eq!(checked, 2 + 2 * 3);
}

/// ChildGCLabels: manifests `m.<n>`, config `.config`, layers `l.<n>`, counted per prefix in
/// the order the children handler returns them (config first, then layers).
#[test]
fn pull_labels_config_m_and_l_keys() {
    let mut s = Store::new(Semantics::V1_6);
    pulled(&mut s, None);
    let f = fixture();
    let idx = labels_of(&s, f.index.digest());
    assert_eq!(
        idx["containerd.io/gc.ref.content.m.0"],
        f.platforms[0].manifest.digest()
    );
    assert_eq!(
        idx["containerd.io/gc.ref.content.m.1"],
        f.platforms[1].manifest.digest()
    );
    assert_eq!(idx.len(), 2);
    let p = &f.platforms[0];
    let man = labels_of(&s, p.manifest.digest());
    assert_eq!(
        man["containerd.io/gc.ref.content.config"],
        p.config.digest()
    );
    assert_eq!(
        man["containerd.io/gc.ref.content.l.0"],
        p.layers[0].digest()
    );
    assert_eq!(
        man["containerd.io/gc.ref.content.l.1"],
        p.layers[1].digest()
    );
    assert_eq!(man.len(), 3);
    // unpack's uncompressed label on layers, nothing on configs
    assert!(labels_of(&s, p.layers[0].digest()).contains_key("containerd.io/uncompressed"));
    assert!(labels_of(&s, p.config.digest()).is_empty());
}

/// client.WithLease: a 24 h lease around the pull, deleted without sync at the end; no GC ran,
/// and the image keeps the whole tree through the labels once one does.
#[test]
fn pull_runs_under_a_lease_released_without_sync() {
    let mut s = Store::new(Semantics::V1_6);
    let calls = pulled(&mut s, None);
    assert!(
        matches!(&calls[0].kind, OpKind::LeaseCreate { id, expire: Some(_), .. } if id == "pull-lease")
    );
    assert!(matches!(
        &calls.last().unwrap().kind,
        OpKind::LeaseDelete { sync: false, .. }
    ));
    for op in &calls[1..calls.len() - 1] {
        assert_eq!(op.ctx.lease.as_deref(), Some("pull-lease"), "{op}");
    }
    assert!(s.namespace("default").unwrap().leases.is_empty());
    assert_eq!(s.scheduler().collections, 0);
    let before = s.namespace("default").unwrap().content.len();
    assert_eq!(before, 1 + 2 * 4);
    s.gc();
    assert_eq!(s.namespace("default").unwrap().content.len(), before);
}

/// A lazy pull (fetched subset) labels the index with every manifest: the others are dead edges,
/// and the fetched platform survives a GC.
#[test]
fn lazy_pull_leaves_dangling_manifest_labels() {
    let mut s = Store::new(Semantics::V1_6);
    pulled(&mut s, Some(platforms(&["linux/arm64"])));
    s.gc();
    let f = fixture();
    let ns = s.namespace("default").unwrap();
    assert_eq!(labels_of(&s, f.index.digest()).len(), 2);
    assert!(!ns.content.contains_key(f.platforms[0].manifest.digest()));
    for b in [
        &f.platforms[1].manifest,
        &f.platforms[1].config,
        &f.platforms[1].layers[1],
    ] {
        assert!(ns.content.contains_key(b.digest()));
    }
    assert_eq!(ns.content.len(), 1 + 4);
}

/// client.go createNewImage: on AlreadyExists, `is.Update(ctx, img)` without fieldpaths
/// replaces the whole record, so labels the old image had are gone (model bug fixed: the model
/// used to keep them).
#[test]
fn pull_of_an_existing_name_replaces_the_image_and_its_labels() {
    let f = fixture();
    let r = apply(&format!(
        r#"
[[op]]
op = "image.create"
name = "example.com/app:1"
target = "{}"
labels = {{ "old" = "1" }}
[[op]]
op = "image.pull"
ref = "example.com/app:1"
layers = 2
"#,
        Digest::of(b"elsewhere")
    ));
    r.all_ok();
    let img = &r.store.namespace("default").unwrap().images["example.com/app:1"];
    assert_eq!(img.target.digest, f.index.digest());
    assert!(img.labels.is_empty());
}

/// createNewImage retries Create when the Update finds the image gone (deleted by someone else
/// between the two calls).
#[test]
fn pull_recreates_an_image_deleted_between_create_and_update() {
    let mut s = Store::new(Semantics::V1_6);
    let ctx = Ctx::default();
    let f = fixture();
    s.apply(&Op {
        ctx: ctx.clone(),
        kind: OpKind::ImageCreate {
            name: f.reference.clone(),
            media_type: "m".into(),
            target: Digest::of(b"x").to_string(),
            size: Some(1),
            labels: Labels::new(),
        },
    })
    .unwrap();
    let mut p = pull::pull(f.clone(), None, ctx.clone(), "L".into());
    let mut answer = None;
    let mut names = Vec::new();
    let img = loop {
        match p.resume(answer.take()) {
            Step::Done(r) => break r.unwrap(),
            Step::Call(op) => {
                if matches!(op.kind, OpKind::ImageUpdate { .. }) {
                    // another client deletes the image just before the Update lands
                    s.image_delete(&ctx, &f.reference, false).unwrap();
                }
                names.push(op.kind.name());
                answer = Some(s.apply(&op));
            }
        }
    };
    assert_eq!(img.target.digest, f.index.digest());
    let tail: Vec<_> = names.iter().rev().take(4).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "image.create",
            "image.update",
            "image.create",
            "lease.delete"
        ]
    );
}

fn pulled_and_converted(dst: &str, keep: &[&str]) -> common::Run {
    apply(&format!(
        r#"
[[op]]
op = "image.pull"
ref = "example.com/app:1"
layers = 2
[[op]]
op = "image.convert"
src = "example.com/app:1"
dst = "{dst}"
platforms = {keep:?}
"#
    ))
}

/// default.go convertIndex (1.6.20): a dropped manifest's labels are cleared (ClearGCLabels
/// deletes every gc.ref.content* label whose value is its digest); a kept, unconverted manifest
/// keeps its ORIGINAL `m.<i>` key (labels[labelKey] is written only when the manifest itself was
/// converted). Keeping arm64 (index 1) leaves `m.1`, not `m.0`.
#[test]
fn converter_keeps_the_kept_manifests_original_m_key_and_clears_the_dropped() {
    let f = fixture();
    let keep = platforms(&["linux/arm64"]);
    let (json, labels) = reduce_index(&f.index.data, &f.index.child_labels, &keep)
        .unwrap()
        .unwrap();
    assert_eq!(
        labels,
        Labels::from([(
            "containerd.io/gc.ref.content.m.1".to_string(),
            f.platforms[1].manifest.digest().to_string()
        )])
    );
    let index: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], f.platforms[1].manifest.digest());
    // and the same through apply: the stored reduced index carries exactly these labels
    let r = pulled_and_converted("example.com/app:1-reduced", &["linux/arm64"]);
    r.all_ok();
    let d = Digest::of(&json).to_string();
    assert_eq!(
        r.store.namespace("default").unwrap().content[d.as_str()].labels,
        labels
    );
}

/// Nothing dropped: convertIndex returns nil, the image keeps its target and nothing is written.
#[test]
fn converter_with_nothing_dropped_keeps_the_target() {
    let f = fixture();
    assert!(reduce_index(
        &f.index.data,
        &f.index.child_labels,
        &platforms(&["linux/amd64", "linux/arm64"])
    )
    .unwrap()
    .is_none());
    let r = pulled_and_converted("example.com/app:1-copy", &["linux/amd64", "linux/arm64"]);
    r.all_ok();
    let ns = r.store.namespace("default").unwrap();
    assert_eq!(
        ns.images["example.com/app:1-copy"].target.digest,
        f.index.digest()
    );
    assert_eq!(ns.content.len(), 9);
}

/// converter.go Convert: dst != src is `is.Delete(dst)` (no sync, error ignored) then
/// `is.Create` with the source image's labels; the lease is deleted without sync.
#[test]
fn converter_dst_ne_src_deletes_then_creates_under_its_own_lease() {
    let f = fixture();
    let mut s = Store::new(Semantics::V1_6);
    pulled(&mut s, None);
    let ctx = Ctx::default();
    s.image_update(
        &ctx,
        &f.reference,
        pushrace_models::images::ImageUpdate {
            target: None,
            labels: Some(Labels::from([("src".to_string(), "label".to_string())])),
        },
    )
    .unwrap();
    let mut calls = Vec::new();
    let img = converter::convert(
        f.reference.clone(),
        "dst:1".into(),
        platforms(&["linux/amd64"]),
        ctx,
        "cv".into(),
    )
    .run(&mut s, |op, r| calls.push((op.clone(), r.is_ok())))
    .unwrap();
    let names: Vec<_> = calls.iter().map(|(op, _)| op.kind.name()).collect();
    assert_eq!(names[0], "lease.create");
    let n = names.len();
    assert_eq!(
        &names[n - 4..],
        [
            "content.write",
            "image.delete",
            "image.create",
            "lease.delete"
        ]
    );
    assert!(
        !calls[n - 3].1,
        "deleting the missing dst fails, and is ignored"
    );
    assert!(matches!(
        calls[n - 1].0.kind,
        OpKind::LeaseDelete { sync: false, .. }
    ));
    assert_eq!(img.labels["src"], "label");
    let reduced = converter::reduced_index_of(&f, &platforms(&["linux/amd64"])).unwrap();
    assert_eq!(img.target.digest, reduced.as_str());
    assert_eq!(s.scheduler().collections, 0);
    assert!(s.namespace("default").unwrap().leases.is_empty());
    // both images are roots: nothing is lost by a GC
    let before = s.namespace("default").unwrap().content.len();
    s.gc();
    assert_eq!(s.namespace("default").unwrap().content.len(), before);
}

/// dst == src: `is.Update(ctx, dstImg)` replaces the target; the old index loses its root.
#[test]
fn converter_dst_eq_src_updates_and_the_old_index_is_collectable() {
    let f = fixture();
    let r = apply(
        r#"
[[op]]
op = "image.pull"
ref = "example.com/app:1"
layers = 2
[[op]]
op = "image.convert"
src = "example.com/app:1"
dst = "example.com/app:1"
platforms = ["linux/amd64"]
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    let ns = r.store.namespace("default").unwrap();
    assert_eq!(ns.images.len(), 1);
    assert!(!ns.content.contains_key(f.index.digest()));
    assert!(
        !ns.content.contains_key(f.platforms[1].manifest.digest()),
        "arm64 dropped"
    );
    assert!(ns.content.contains_key(f.platforms[0].layers[1].digest()));
}

/// writeJSON opens with WithRef only and gives the digest to content.Copy: when the reduced
/// index already exists, the server answers `blob with expected digest … exists` and the
/// converter's lease does NOT get it. Step through a second conversion and look at its lease
/// right after the write.
#[test]
fn converter_rewrite_of_an_existing_reduced_index_does_not_lease_it() {
    let f = fixture();
    let keep = platforms(&["linux/amd64"]);
    let reduced = converter::reduced_index_of(&f, &keep).unwrap();
    let mut s = Store::new(Semantics::V1_6);
    pulled(&mut s, None);
    let ctx = Ctx::default();
    converter::convert(
        f.reference.clone(),
        "tmp".into(),
        keep.clone(),
        ctx.clone(),
        "c1".into(),
    )
    .run(&mut s, |_, _| {})
    .unwrap();
    let mut p = converter::convert(f.reference.clone(), "tmp".into(), keep, ctx, "c2".into());
    let mut answer = None;
    loop {
        match p.resume(answer.take()) {
            Step::Done(r) => {
                r.unwrap();
                break;
            }
            Step::Call(op) => {
                let is_write = matches!(&op.kind, OpKind::ContentWrite { r, .. } if *r == write_json_ref(reduced.as_str()));
                answer = Some(s.apply(&op));
                if is_write {
                    assert!(
                        answer.as_ref().unwrap().is_ok(),
                        "AlreadyExists is success for Copy"
                    );
                    let lease = &s.namespace("default").unwrap().leases["c2"];
                    assert!(!lease.content.contains(reduced.as_str()), "not leased");
                    assert!(lease.ingests.is_empty(), "the ingest was aborted");
                }
            }
        }
    }
}

/// `nerdctl pull --unpack=false` (pull::nerdctl_pull), call by call as containerd 1.6.20's
/// client.Pull makes them for one platform on an empty store: per blob the fetch's write, for
/// an index or manifest its read-back (content.ReadBlob: Info, Read) and children label
/// (images/handlers.go SetChildrenMappedLabels), then the distribution source (remotes/docker/
/// handler.go AppendDistributionSourceLabel: Info, Update of `containerd.io/distribution.source.
/// <host without port>` = the repository); no `containerd.io/uncompressed` label without unpack
/// (pull.go installs the unpacker only `if pullCtx.Unpack`); then the image under the pulled name.
#[test]
fn nerdctl_pull_labels_the_distribution_source_and_not_the_uncompressed_digest() {
    let mut s = Store::new(Semantics::V1_6);
    let f = fixture();
    let mut calls = Vec::new();
    pull::nerdctl_pull(
        f.clone(),
        Some(platforms(&["linux/amd64"])),
        Ctx::default(),
        "pull-lease".into(),
        "localhost:5000/team/app:1".into(),
    )
    .run(&mut s, |op, _| calls.push(op.kind.name()))
    .unwrap();
    let p = &f.platforms[0];
    let parent = [
        "content.write",
        "content.info",
        "content.read",
        "content.label",
    ];
    let source = ["content.info", "content.label"];
    let mut want = vec!["lease.create"];
    for _ in [&f.index, &p.manifest] {
        want.extend(parent);
        want.extend(source);
    }
    for _ in std::iter::once(&p.config).chain(&p.layers) {
        want.push("content.write");
        want.extend(source);
    }
    want.extend(["image.create", "lease.delete"]);
    assert_eq!(calls, want);
    let key = "containerd.io/distribution.source.localhost";
    let blobs = [&f.index, &p.manifest, &p.config]
        .into_iter()
        .chain(&p.layers);
    for b in blobs {
        let l = labels_of(&s, b.digest());
        assert_eq!(
            l.get(key).map(String::as_str),
            Some("team/app"),
            "{:?}",
            b.role
        );
        assert!(
            !l.contains_key(pushrace_models::labels::UNCOMPRESSED),
            "{l:?}"
        );
    }
    let img = s
        .namespace("default")
        .unwrap()
        .images
        .get("localhost:5000/team/app:1");
    assert!(img.is_some(), "the image is named as pulled");
}

/// remotes/docker/handler.go: the key is `url.Hostname()` of `dummy://<locator>` (no port), the
/// value the sorted set of repositories, the pulled one added.
#[test]
fn distribution_source_key_and_value() {
    assert_eq!(
        pull::distribution_source("127.0.0.1:43123/app:1"),
        (
            "containerd.io/distribution.source.127.0.0.1".into(),
            "app".into()
        )
    );
    assert_eq!(
        pull::distribution_source("example.com/team/app@sha256:abcd"),
        (
            "containerd.io/distribution.source.example.com".into(),
            "team/app".into()
        )
    );
    assert_eq!(pull::append_distribution_source("", "app"), "app");
    assert_eq!(pull::append_distribution_source("b,x", "app"), "app,b,x");
    assert_eq!(pull::append_distribution_source("app,b", "app"), "app,b");
}
