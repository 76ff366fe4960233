//! One test per rule of docs/containerd-semantics.md and per finding of
//! daemon/PROBES.md, named after the rule. Most go through the `pushrace apply` contract
//! (`opsfile::parse` + `run`), which is what others will exercise; the rest use the Store API.
//! containerd source references are to tag v1.6.20 unless a version is named.

mod common;
use common::{apply, dg};
use pushrace_models::clock::Duration;
use pushrace_models::labels::is_content_ref_key;
use pushrace_models::leases::Resource;
use pushrace_models::{Ctx, Op, OpKind, Semantics, Store, WriteStyle};

// ---------------------------------------------------------------------------------------------
// Objects (per namespace)
// ---------------------------------------------------------------------------------------------

/// Bytes live once in the backend; records are per namespace. Deleting the record in one
/// namespace and collecting keeps the bytes while another namespace has a record
/// (metadata/content.go garbageCollect: contentSeen is built from every namespace).
#[test]
fn content_bytes_are_shared_across_namespaces_and_kept_while_any_namespace_has_a_record() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "shared"
labels = {{ "containerd.io/gc.root" = "1" }}
namespace = "a"
[[op]]
op = "content.write"
data = "shared"
labels = {{ "containerd.io/gc.root" = "1" }}
namespace = "b"
[[op]]
op = "content.delete"
namespace = "a"
digest = "{}"
"#,
        dg("shared")
    ));
    r.all_ok();
    assert_eq!(
        r.state().blobs,
        vec![dg("shared")],
        "one blob for two records"
    );
    let mut s = r.store.clone();
    s.gc();
    assert!(
        s.blobs().contains_key(dg("shared").as_str()),
        "b's record keeps the bytes"
    );
    assert!(!s
        .namespace("a")
        .unwrap()
        .content
        .contains_key(dg("shared").as_str()));
}

/// metadata/content.go Writer: an ingest opened without a context lease gets
/// `expireat = now + 24h`; scanRoots makes it a root while `!now.After(expireat)`.
#[test]
fn ingest_without_lease_is_root_until_24h() {
    let base = r#"
[[op]]
op = "ingest.open"
ref = "r1"
data = "partial"
[[op]]
op = "gc.run"
[[op]]
op = "clock.advance"
by = "24h"
[[op]]
op = "gc.run"
"#;
    let r = apply(base);
    r.all_ok();
    assert!(
        r.ingest("default", "r1"),
        "at exactly expireat the ingest is still a root"
    );
    let r = apply(&format!(
        "{base}[[op]]\nop = \"clock.advance\"\nby = \"1s\"\n[[op]]\nop = \"gc.run\"\n"
    ));
    assert!(
        !r.ingest("default", "r1"),
        "one second past expireat it is swept"
    );
}

/// metadata/content.go Writer writes expireat only when `addIngestLease` reports no lease; an
/// ingest in a lease has no expiry of its own and goes with the lease
/// (PROBES ingest_without_lease_survives_a_gc_and_ingest_in_a_lease_goes_with_it).
#[test]
fn ingest_in_a_lease_is_no_root_of_its_own_and_goes_with_the_lease() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "ingest.open"
ref = "in-lease"
data = "x"
lease = "L"
[[op]]
op = "ingest.open"
ref = "free"
data = "y"
[[op]]
op = "gc.run"
[[op]]
op = "lease.delete"
id = "L"
sync = true
"#,
    );
    r.all_ok();
    assert!(!r.ingest("default", "in-lease"));
    assert!(r.ingest("default", "free"));
    assert!(!r.lease("default", "L"));
}

/// The image record is a name -> descriptor (media type, digest, size) plus labels, as
/// metadata/images.go writeImage stores it.
#[test]
fn image_is_name_to_target_descriptor_and_labels() {
    let r = apply(&format!(
        r#"
[[op]]
op = "image.create"
name = "example.com/a:1"
target = "{}"
media_type = "application/vnd.oci.image.index.v1+json"
size = 42
labels = {{ "k" = "v" }}
"#,
        dg("t")
    ));
    r.all_ok();
    let img = &r.store.namespace("default").unwrap().images["example.com/a:1"];
    assert_eq!(img.target.digest, dg("t"));
    assert_eq!(img.target.size, 42);
    assert_eq!(
        img.target.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(img.labels.get("k").map(String::as_str), Some("v"));
}

// ---------------------------------------------------------------------------------------------
// GC roots (scanRoots in metadata/gc.go)
// ---------------------------------------------------------------------------------------------

fn leased(extra_lease_keys: &str, advance: &str) -> common::Run {
    apply(&format!(
        r#"
[[op]]
op = "lease.create"
id = "L"
{extra_lease_keys}
[[op]]
op = "content.write"
data = "leased"
lease = "L"
[[op]]
op = "clock.advance"
by = "{advance}"
[[op]]
op = "gc.run"
"#
    ))
}

/// A lease without `containerd.io/gc.expire` is a root and so is every resource in it.
#[test]
fn lease_without_expire_is_a_root_with_its_resources() {
    let r = leased("", "1000h");
    r.all_ok();
    assert!(r.lease("default", "L"));
    assert!(r.has("default", "leased"));
}

/// scanRoots: `expThreshold.After(exp)` skips the lease; it is not marked so the sweep removes
/// the lease record too (PROBES lease_with_gc_expire_in_the_past_is_not_a_root_and_is_swept).
#[test]
fn expired_lease_is_not_a_root_and_is_swept() {
    let r = leased("expire = \"1h\"", "2h");
    r.all_ok();
    assert!(!r.lease("default", "L"), "the lease record is swept");
    assert!(
        !r.has("default", "leased"),
        "its content is no longer protected"
    );
    assert!(
        !r.blob("leased"),
        "and the sweep made the content store dirty: bytes go"
    );
}

/// `After` is strict: a lease whose expiry equals the GC's now is still a root.
#[test]
fn lease_expiring_exactly_now_is_still_a_root() {
    let r = leased("expire = \"1h\"", "1h");
    assert!(r.lease("default", "L"));
    assert!(r.has("default", "leased"));
}

/// scanRoots logs an unparsable gc.expire and keeps using the lease (PROBES: `not-a-time`).
#[test]
fn unparsable_expire_keeps_lease() {
    let r = leased(
        "labels = { \"containerd.io/gc.expire\" = \"not-a-time\" }",
        "100000h",
    );
    r.all_ok();
    assert!(r.lease("default", "L"));
    assert!(r.has("default", "leased"));
}

/// gc.expire is parsed with time.RFC3339, offsets included: 2025-01-01T01:00:00+01:00 is the
/// model's start instant, so one second later the lease has expired.
#[test]
fn lease_expire_with_numeric_offset_is_honoured() {
    let r = leased(
        "labels = { \"containerd.io/gc.expire\" = \"2025-01-01T01:00:00+01:00\" }",
        "1s",
    );
    assert!(!r.lease("default", "L"));
}

/// `containerd.io/gc.flat`: the lease's content is emitted as resourceContentFlat, whose
/// `references` sends nothing, so a leased parent keeps only itself (metadata/gc.go scanRoots +
/// references; PROBES flat_lease_does_not_follow_labels).
#[test]
fn flat_lease_does_not_follow_labels() {
    let text = |flat: &str| {
        format!(
            r#"
[[op]]
op = "lease.create"
id = "L"
{flat}
[[op]]
op = "content.write"
data = "child"
as = "child"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "containerd.io/gc.ref.content.m.0" = "@child" }}
lease = "L"
[[op]]
op = "gc.run"
"#
        )
    };
    let r = apply(&text("flat = true"));
    r.all_ok();
    assert!(r.has("default", "parent"));
    assert!(
        !r.has("default", "child"),
        "flat: the parent's labels are not followed"
    );
    let r = apply(&text(""));
    assert!(
        r.has("default", "child"),
        "not flat: the label edge keeps the child"
    );
}

/// boltutil writeMap skips empty values, so `gc.flat = ""` is never stored and the lease is not
/// flat (PROBES 4).
#[test]
fn flat_label_with_empty_value_is_not_stored_and_lease_is_not_flat() {
    let r = apply(&format!(
        r#"
[[op]]
op = "lease.create"
id = "L"
labels = {{ "containerd.io/gc.flat" = "" }}
[[op]]
op = "content.write"
data = "child"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "containerd.io/gc.ref.content" = "{}" }}
lease = "L"
[[op]]
op = "gc.run"
"#,
        dg("child")
    ));
    r.all_ok();
    assert!(r.state().namespaces["default"].leases["L"]
        .labels
        .is_empty());
    assert!(r.has("default", "child"));
}

/// gc.Tricolor keeps the flat bit in `seen` and strips it only when blackening: content reached
/// both flat (lease) and fully (an image) still has its labels followed.
#[test]
fn content_reached_flat_and_fully_has_its_labels_followed() {
    let r = apply(&format!(
        r#"
[[op]]
op = "lease.create"
id = "L"
flat = true
[[op]]
op = "content.write"
data = "child"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "containerd.io/gc.ref.content.l.0" = "{}" }}
lease = "L"
[[op]]
op = "image.create"
name = "img"
target = "{}"
[[op]]
op = "gc.run"
"#,
        dg("child"),
        dg("parent")
    ));
    r.all_ok();
    assert!(r.has("default", "child"));
}

/// 1.6/1.7 scanRoots emits every image's target and label refs, whatever its labels say.
#[test]
fn v1_images_are_roots_even_with_gc_expire() {
    for v in ["1.6", "1.7"] {
        let r = apply(&format!(
            r#"
containerd = "{v}"
[[op]]
op = "content.write"
data = "t"
as = "t"
[[op]]
op = "image.create"
name = "img"
target = "@t"
labels = {{ "containerd.io/gc.expire" = "2000-01-01T00:00:00Z" }}
[[op]]
op = "gc.run"
"#
        ));
        r.all_ok();
        assert!(r.image("default", "img"), "{v}");
        assert!(r.has("default", "t"), "{v}");
    }
}

/// 2.x core/metadata/gc.go: an image whose own gc.expire has passed is not a root and is swept
/// with its now unreferenced target.
#[test]
fn v2_expired_image_is_collected() {
    let text = |expire: &str| {
        format!(
            r#"
containerd = "2.0"
[[op]]
op = "content.write"
data = "t"
as = "t"
[[op]]
op = "image.create"
name = "img"
target = "@t"
labels = {{ "containerd.io/gc.expire" = "{expire}" }}
[[op]]
op = "gc.run"
"#
        )
    };
    let r = apply(&text("2024-12-31T23:59:59Z"));
    r.all_ok();
    assert!(!r.image("default", "img"));
    assert!(!r.has("default", "t"));
    let r = apply(&text("2025-01-02T00:00:00Z"));
    assert!(
        r.image("default", "img"),
        "a future expiry keeps the image a root"
    );
    assert!(r.has("default", "t"));
    let r = apply(&text("garbage"));
    assert!(
        r.image("default", "img"),
        "an unparsable expiry keeps the image"
    );
}

/// isRootRef: the label's presence is enough, whatever its value.
#[test]
fn gc_root_label_with_any_value_makes_content_a_root() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "rooted"
labels = { "containerd.io/gc.root" = "no" }
[[op]]
op = "content.write"
data = "plain"
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(r.has("default", "rooted"));
    assert!(!r.has("default", "plain"));
}

/// isRootRef has `TODO: interpret rv as a timestamp`; gc.expire on content is ignored.
#[test]
fn gc_expire_on_content_is_not_honoured() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "rooted"
labels = { "containerd.io/gc.root" = "x", "containerd.io/gc.expire" = "2000-01-01T00:00:00Z" }
[[op]]
op = "content.write"
data = "expiring"
labels = { "containerd.io/gc.expire" = "2999-01-01T00:00:00Z" }
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(
        r.has("default", "rooted"),
        "a past gc.expire does not end a gc.root"
    );
    assert!(
        !r.has("default", "expiring"),
        "a future gc.expire does not make a root"
    );
}

/// No grace period: nothing in scanRoots looks at the record's age.
#[test]
fn unreferenced_content_is_collected_at_the_very_next_gc() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "fresh"
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(!r.has("default", "fresh"));
    assert!(!r.blob("fresh"));
    assert!(r.state().namespaces.is_empty());
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/// sendLabelRefs: `gc.ref.content` exactly, or followed by `.` or `/`, is an edge.
#[test]
fn gc_ref_content_exact_dot_and_slash_keys_are_edges() {
    for key in [
        "containerd.io/gc.ref.content",
        "containerd.io/gc.ref.content.",
        "containerd.io/gc.ref.content.m.0",
        "containerd.io/gc.ref.content/anything",
    ] {
        assert!(is_content_ref_key(key), "{key}");
        let r = apply(&format!(
            r#"
[[op]]
op = "content.write"
data = "child"
as = "c"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "{key}" = "@c", "containerd.io/gc.root" = "1" }}
[[op]]
op = "gc.run"
"#
        ));
        r.all_ok();
        assert!(r.has("default", "child"), "{key} is an edge");
    }
}

/// sendLabelRefs: after the prefix the next byte must be `.` or `/`; `gc.ref.contentX` is not an
/// edge.
#[test]
fn gc_ref_content_x_suffix_is_not_an_edge() {
    for key in [
        "containerd.io/gc.ref.contentX",
        "containerd.io/gc.ref.content_1",
        "containerd.io/gc.ref.contents",
    ] {
        assert!(!is_content_ref_key(key), "{key}");
        let r = apply(&format!(
            r#"
[[op]]
op = "content.write"
data = "child"
as = "c"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "{key}" = "@c", "containerd.io/gc.root" = "1" }}
[[op]]
op = "gc.run"
"#
        ));
        r.all_ok();
        assert!(!r.has("default", "child"), "{key} is not an edge");
    }
}

/// `containerd.io/gc.ref.snapshot.<snapshotter>` points at a snapshot, never at content.
#[test]
fn gc_ref_snapshot_label_does_not_keep_content() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "child"
[[op]]
op = "content.write"
data = "parent"
labels = {{ "containerd.io/gc.ref.snapshot.overlayfs" = "{}", "containerd.io/gc.root" = "1" }}
[[op]]
op = "gc.run"
"#,
        dg("child")
    ));
    assert!(!r.has("default", "child"));
}

/// scanRoots calls sendLabelRefs on every image bucket: image labels are edges too.
#[test]
fn image_labels_are_edges() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "extra"
[[op]]
op = "image.create"
name = "img"
target = "{}"
labels = {{ "containerd.io/gc.ref.content.extra" = "{}" }}
[[op]]
op = "gc.run"
"#,
        dg("missing-target"),
        dg("extra")
    ));
    r.all_ok();
    assert!(r.has("default", "extra"));
}

/// references(ResourceContent) recurses: a chain root -> a -> b -> c keeps all of it.
#[test]
fn label_edges_are_followed_through_chains() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "c"
as = "c"
[[op]]
op = "content.write"
data = "b"
as = "b"
labels = { "containerd.io/gc.ref.content" = "@c" }
[[op]]
op = "content.write"
data = "a"
as = "a"
labels = { "containerd.io/gc.ref.content" = "@b" }
[[op]]
op = "content.write"
data = "root"
labels = { "containerd.io/gc.ref.content" = "@a", "containerd.io/gc.root" = "1" }
[[op]]
op = "content.write"
data = "unrelated"
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    for d in ["root", "a", "b", "c"] {
        assert!(r.has("default", d), "{d}");
    }
    assert!(!r.has("default", "unrelated"));
}

/// references: `bkt == nil` "Node may be created from dead edge" -> nothing; a label to a
/// missing digest (or a non-digest string) neither fails the GC nor keeps anything.
#[test]
fn dead_edge_is_ignored() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "root"
labels = {{ "containerd.io/gc.root" = "1", "containerd.io/gc.ref.content.a" = "{}", "containerd.io/gc.ref.content.b" = "not-a-digest" }}
[[op]]
op = "gc.run"
[[op]]
op = "content.write"
data = "later"
[[op]]
op = "gc.run"
"#,
        dg("later")
    ));
    r.all_ok();
    assert!(r.has("default", "root"));
    assert!(
        r.has("default", "later"),
        "the once dead edge is live once the content exists"
    );
}

/// gcnode(ResourceContent, ns, ...) carries the namespace of the referrer: a label in `a` never
/// protects `b`'s record of the same digest (PROBES label_edges_stay_inside_the_namespace).
#[test]
fn label_edges_stay_inside_the_namespace() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "child"
namespace = "b"
[[op]]
op = "content.write"
data = "parent"
namespace = "a"
labels = {{ "containerd.io/gc.root" = "1", "containerd.io/gc.ref.content" = "{}" }}
[[op]]
op = "gc.run"
"#,
        dg("child")
    ));
    r.all_ok();
    assert!(!r.has("b", "child"));
    assert!(!r.blob("child"));
}

/// GC never parses bytes: an index whose JSON names a manifest keeps nothing without labels.
#[test]
fn gc_never_parses_blob_bytes() {
    let manifest = "{\"schemaVersion\":2}";
    let index = format!(
        "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{}\",\"size\":{}}}]}}",
        dg(manifest),
        manifest.len()
    );
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = '{manifest}'
[[op]]
op = "content.write"
data = '{index}'
as = "i"
[[op]]
op = "image.create"
name = "img"
target = "@i"
media_type = "application/vnd.oci.image.index.v1+json"
[[op]]
op = "gc.run"
"#
    ));
    r.all_ok();
    assert!(r.has("default", &index));
    assert!(!r.has("default", manifest));
}

/// metadata/images.go Create validates the digest's form only; the target need not exist. Once
/// written, the dangling target is protected (PROBES images_create_does_not_check_the_target_exists).
#[test]
fn images_create_does_not_check_target() {
    let r = apply(&format!(
        r#"
[[op]]
op = "image.create"
name = "img"
target = "{}"
[[op]]
op = "gc.run"
[[op]]
op = "content.write"
data = "later"
[[op]]
op = "gc.run"
"#,
        dg("later")
    ));
    r.all_ok();
    assert!(r.image("default", "img"));
    assert!(r.has("default", "later"));
}

/// Updating an image's target moves its root: the old target goes, the new one stays
/// (PROBES image_update_of_target_moves_the_root).
#[test]
fn image_update_of_target_moves_the_root() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "old"
as = "old"
[[op]]
op = "content.write"
data = "new"
as = "new"
[[op]]
op = "image.create"
name = "img"
target = "@old"
[[op]]
op = "image.update"
name = "img"
target = "@new"
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(!r.has("default", "old"));
    assert!(r.has("default", "new"));
}

/// references(ResourceIngest) sends `expected`, which metadata/content.go stores only for a
/// shared ingest (the namespace lacks the digest, the backend has it). An ordinary ingest
/// references nothing (PROBES ingest_expected_of_content_absent_everywhere_is_no_edge).
#[test]
fn ingest_expected_of_content_absent_everywhere_is_no_edge() {
    let r = apply(&format!(
        r#"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{}"
[[op]]
op = "content.write"
data = "later"
[[op]]
op = "gc.run"
"#,
        dg("later")
    ));
    r.all_ok();
    assert!(r.ingest("default", "r"));
    assert!(!r.has("default", "later"));
    assert!(!r.blob("later"));
}

/// A shared ingest (metadata/content.go Writer with cs.shared) keeps the backend bytes of its
/// expected digest (garbageCollect adds `expected` to contentSeen) but is invisible to
/// ListStatuses (no backend writer), so the dump omits it (PROBES 6).
#[test]
fn shared_ingest_is_invisible_and_keeps_the_backend_bytes_of_its_expected_digest() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "blob"
namespace = "other"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{d}"
[[op]]
op = "content.delete"
namespace = "other"
digest = "{d}"
[[op]]
op = "gc.run"
"#,
        d = dg("blob")
    ));
    r.all_ok();
    assert!(
        r.ingest("default", "r"),
        "the model keeps the ingest record"
    );
    assert!(
        !r.state().namespaces.contains_key("default"),
        "but a shared ingest is not listed, so the namespace looks empty"
    );
    assert!(r.blob("blob"), "its expected digest's bytes are kept");
}

// ---------------------------------------------------------------------------------------------
// Mark and sweep, backend cleanup
// ---------------------------------------------------------------------------------------------

/// metadata/content.go Delete removes the bucket and sets dirtyCS; the bytes go at the GC's
/// cleanupContent (PROBES content_delete_keeps_bytes_until_gc).
#[test]
fn content_delete_keeps_bytes_until_gc() {
    let text = format!(
        r#"
[[op]]
op = "content.write"
data = "x"
labels = {{ "containerd.io/gc.root" = "1" }}
[[op]]
op = "content.delete"
digest = "{}"
"#,
        dg("x")
    );
    let r = apply(&text);
    r.all_ok();
    assert!(!r.has("default", "x"));
    assert!(r.blob("x"), "bytes stay until a GC");
    let r = apply(&format!("{text}[[op]]\nop = \"gc.run\"\n"));
    assert!(!r.blob("x"));
}

/// metadata/content.go Delete calls removeContentLease: the digest leaves the context lease.
#[test]
fn content_delete_removes_the_digest_from_the_context_lease() {
    let r = apply(&format!(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "x"
lease = "L"
[[op]]
op = "content.delete"
digest = "{}"
lease = "L"
"#,
        dg("x")
    ));
    r.all_ok();
    assert!(r.resources("default", "L").is_empty());
}

/// DB.GarbageCollect scans every namespace: a sync delete in one namespace sweeps all.
#[test]
fn sync_delete_sweeps_every_namespace() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "garbage-b"
namespace = "b"
[[op]]
op = "content.write"
data = "t"
as = "t"
namespace = "a"
[[op]]
op = "image.create"
name = "img"
target = "@t"
namespace = "a"
[[op]]
op = "image.delete"
name = "img"
namespace = "a"
sync = true
"#,
    );
    r.all_ok();
    assert!(!r.has("a", "t"));
    assert!(
        !r.has("b", "garbage-b"),
        "namespace b was swept by a's sync delete"
    );
    assert!(!r.blob("garbage-b"));
    assert_eq!(r.store.scheduler().collections, 1);
}

/// services/leases: Delete then, with SynchronousDelete, ScheduleAndWait (PROBES
/// sync_lease_delete_runs_a_gc_and_releases_the_leased_content).
#[test]
fn sync_lease_delete_runs_a_gc_and_releases_the_leased_content() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "x"
lease = "L"
[[op]]
op = "lease.delete"
id = "L"
sync = true
"#,
    );
    r.all_ok();
    assert!(!r.has("default", "x"));
    assert!(!r.blob("x"));
}

/// Without sync nothing is collected (gc = "sync-only" in the daemon config, PROBES 1).
#[test]
fn async_deletes_run_no_gc() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "t"
as = "t"
[[op]]
op = "image.create"
name = "img"
target = "@t"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "l"
lease = "L"
[[op]]
op = "image.delete"
name = "img"
[[op]]
op = "lease.delete"
id = "L"
[[op]]
op = "content.write"
data = "d"
labels = {{ "containerd.io/gc.root" = "1" }}
[[op]]
op = "content.delete"
digest = "{}"
"#,
        dg("d")
    ));
    r.all_ok();
    assert!(r.has("default", "t"));
    assert!(r.has("default", "l"));
    assert!(r.blob("d"));
    assert_eq!(r.store.scheduler().collections, 0);
    assert!(r.store.scheduler().gc_due(), "but a background GC is due");
}

/// services/images/local.go Delete returns NotFound before ScheduleAndWait: no GC runs.
#[test]
fn sync_delete_of_a_missing_image_runs_no_gc() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "garbage"
[[op]]
op = "image.delete"
name = "nope"
sync = true
[[op]]
op = "lease.delete"
id = "nope"
sync = true
"#,
    );
    assert_eq!(r.err(1), "image \"nope\": not found");
    assert_eq!(r.err(2), "lease \"nope\": not found");
    assert!(r.has("default", "garbage"));
    assert_eq!(r.store.scheduler().collections, 0);
}

/// DB.GarbageCollect schedules cleanupContent only when dirtyCS: set by a content Delete since the
/// last GC or by the GC sweeping a content or ingest record. A GC that sweeps nothing leaves
/// unreferenced blob files alone (PROBES 7: aborted shared ingest).
#[test]
fn gc_without_a_content_sweep_leaves_unreferenced_bytes() {
    let d = dg("blob");
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "blob"
namespace = "other"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{d}"
[[op]]
op = "content.delete"
namespace = "other"
digest = "{d}"
[[op]]
op = "gc.run"
[[op]]
op = "ingest.abort"
ref = "r"
[[op]]
op = "gc.run"
"#
    ));
    r.all_ok();
    assert!(
        r.blob("blob"),
        "the abort removed no record through Delete and the GC swept none: not content-dirty"
    );
    let mut s = r.store.clone();
    let ctx = Ctx::new("default");
    s.write_blob(
        &ctx,
        "w",
        b"other",
        None,
        &Default::default(),
        WriteStyle::Open,
    )
    .unwrap();
    let report = s.gc();
    assert_eq!(report.content.len(), 1, "sweeps `other`");
    assert!(
        !s.blobs().contains_key(d.as_str()),
        "a GC that sweeps a record cleans every unreferenced blob"
    );
}

/// A GC that sweeps only an expired ingest is content-dirty (rm sets dirtyCS for
/// ResourceIngest) and so cleans the backend.
#[test]
fn sweeping_an_ingest_makes_the_gc_content_dirty() {
    let d = dg("blob");
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "blob"
namespace = "other"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{d}"
[[op]]
op = "content.delete"
namespace = "other"
digest = "{d}"
[[op]]
op = "gc.run"
[[op]]
op = "ingest.open"
ref = "doomed"
[[op]]
op = "ingest.abort"
ref = "r"
[[op]]
op = "clock.advance"
by = "25h"
[[op]]
op = "gc.run"
"#
    ));
    r.all_ok();
    assert!(!r.ingest("default", "doomed"));
    assert!(!r.blob("blob"));
}

/// Writing content whose record was deleted but whose bytes remain is a new write: no
/// AlreadyExists, the new labels are stored (PROBES rewrite_after_delete_before_gc...).
#[test]
fn rewrite_after_delete_before_gc_recreates_the_record_from_the_kept_bytes() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "x"
labels = {{ "a" = "1" }}
[[op]]
op = "content.delete"
digest = "{}"
[[op]]
op = "content.write"
data = "x"
labels = {{ "b" = "2" }}
"#,
        dg("x")
    ));
    r.all_ok();
    let st = r.state();
    let c = &st.namespaces["default"].content[&dg("x")];
    assert_eq!(c.size, 1);
    assert_eq!(c.labels.keys().collect::<Vec<_>>(), vec!["b"]);
}

// ---------------------------------------------------------------------------------------------
// Scheduler (gc/scheduler + metadata/db.go mutation callbacks)
// ---------------------------------------------------------------------------------------------

fn counters(text: &str) -> (u32, u32, u32, bool) {
    let r = apply(text);
    let s = r.store.scheduler();
    (s.dirty, s.mutations, s.deletions, s.gc_due())
}

/// Image Delete, content Delete and lease Delete do `atomic.AddUint32(&db.dirty, 1)`; the
/// transaction's mutation callback then reports dirty, which with deletion_threshold 0 makes a
/// GC due.
#[test]
fn deletes_mark_the_database_dirty_and_make_a_gc_due() {
    let create = format!(
        r#"
[[op]]
op = "content.write"
data = "x"
[[op]]
op = "image.create"
name = "img"
target = "{}"
[[op]]
op = "lease.create"
id = "L"
"#,
        dg("x")
    );
    // content.write is two update transactions (Writer open, Commit), then create and create.
    assert_eq!(counters(&create), (0, 4, 0, false));
    for del in [
        format!("op = \"content.delete\"\ndigest = \"{}\"", dg("x")),
        "op = \"image.delete\"\nname = \"img\"".to_string(),
        "op = \"lease.delete\"\nid = \"L\"".to_string(),
    ] {
        let (dirty, mutations, deletions, due) = counters(&format!("{create}[[op]]\n{del}\n"));
        assert_eq!((dirty, mutations, deletions, due), (1, 5, 1, true), "{del}");
    }
}

/// Label updates and image target updates are mutations only: no dirty, no GC due.
#[test]
fn label_and_target_updates_are_mutations_only() {
    let (dirty, mutations, deletions, due) = counters(&format!(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
[[op]]
op = "content.label"
digest = "@x"
labels = {{ "a" = "b" }}
[[op]]
op = "image.create"
name = "img"
target = "@x"
[[op]]
op = "image.update"
name = "img"
target = "{}"
"#,
        dg("y")
    ));
    assert_eq!((dirty, deletions, due), (0, 0, false));
    // open + commit of the write, the label, create, update
    assert_eq!(mutations, 5);
}

/// A mutation after a delete counts as a deletion event (the callback passes `dirty > 0`).
#[test]
fn mutations_after_a_delete_count_as_deletions_until_the_gc() {
    let (dirty, mutations, deletions, _) = counters(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.delete"
id = "L"
[[op]]
op = "lease.create"
id = "M"
"#,
    );
    assert_eq!((dirty, mutations, deletions), (1, 3, 2));
}

/// mutation_threshold = 100: the hundredth clean mutation makes a GC due, the 99th does not.
#[test]
fn hundred_mutations_make_a_gc_due() {
    let mut s = Store::new(Semantics::V1_6);
    let ctx = Ctx::new("default");
    for i in 0..99 {
        s.lease_create(&ctx, &format!("l{i}"), Default::default())
            .unwrap();
    }
    assert!(!s.scheduler().gc_due());
    s.lease_create(&ctx, "l99", Default::default()).unwrap();
    assert_eq!(s.scheduler().mutations, 100);
    assert!(s.scheduler().gc_due());
    s.gc();
    assert!(!s.scheduler().gc_due(), "a GC resets the counters");
    assert_eq!(s.scheduler().mutations, 0);
    assert_eq!(s.scheduler().collections, 1);
}

/// DB.Update calls the mutation callbacks only when the transaction succeeded; reads use View.
#[test]
fn failed_operations_and_reads_are_not_mutations() {
    let (dirty, mutations, _, _) = counters(&format!(
        r#"
[[op]]
op = "content.delete"
digest = "{d}"
[[op]]
op = "image.update"
name = "nope"
target = "{d}"
[[op]]
op = "lease.add"
id = "nope"
type = "content"
resource = "{d}"
[[op]]
op = "content.info"
digest = "{d}"
[[op]]
op = "content.list"
[[op]]
op = "image.list"
[[op]]
op = "lease.list"
"#,
        d = dg("x")
    ));
    assert_eq!((dirty, mutations), (0, 0));
}

/// A sync delete's GC resets every counter (DB.GarbageCollect `m.dirty = 0`, scheduler resets
/// deletions and mutations).
#[test]
fn gc_resets_the_counters() {
    let (dirty, mutations, deletions, due) = counters(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.delete"
id = "L"
sync = true
"#,
    );
    assert_eq!((dirty, mutations, deletions, due), (0, 0, 0, false));
}

// ---------------------------------------------------------------------------------------------
// Leases on the client side; the two write styles
// ---------------------------------------------------------------------------------------------

/// metadata/content.go Writer with a known digest the namespace has: addContentLease, then
/// `content <d>: already exists`, which WriteBlob treats as success (PROBES 2).
#[test]
fn open_style_write_of_existing_content_joins_the_context_lease() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "x"
lease = "L"
style = "open"
labels = { "ignored" = "1" }
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert_eq!(
        r.resources("default", "L"),
        vec![format!("content:{}", dg("x"))]
    );
    assert!(r.has("default", "x"));
    assert!(
        r.state().namespaces["default"].content[&dg("x")]
            .labels
            .is_empty(),
        "the existing record's labels are untouched"
    );
}

/// contentserver Write: the commit message carries the expected digest, Info finds it, the
/// server aborts the ingest and answers `blob with expected digest … exists`; Copy takes that
/// as success and nothing joins the lease (PROBES 2).
#[test]
fn commit_style_write_of_existing_content_does_not_join_lease() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "x"
lease = "L"
style = "commit"
ref = "converter-write-json-x"
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(r.resources("default", "L").is_empty());
    assert!(
        !r.ingest("default", "converter-write-json-x"),
        "ingest aborted"
    );
    assert!(!r.has("default", "x"), "the lease did not protect it");
}

/// Under a lease, Writer adds the ingest (addIngestLease) and Commit swaps it for the content
/// (removeIngestLease + addContentLease) in one transaction, in both styles.
#[test]
fn new_content_under_a_lease_ends_as_a_content_resource_only() {
    for style in ["open", "commit"] {
        let r = apply(&format!(
            r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "x"
lease = "L"
style = "{style}"
"#
        ));
        r.all_ok();
        assert_eq!(
            r.resources("default", "L"),
            vec![format!("content:{}", dg("x"))],
            "{style}"
        );
        assert!(r.store.namespace("default").unwrap().ingests.is_empty());
    }
}

/// metadata/leases.go addIngestLease / addContentLease: a context lease that does not exist is
/// `lease does not exist: not found`, and the failed transaction creates nothing.
#[test]
fn write_under_a_missing_lease_fails_and_creates_nothing() {
    for style in ["open", "commit"] {
        let r = apply(&format!(
            r#"
[[op]]
op = "content.write"
data = "x"
lease = "ghost"
style = "{style}"
"#
        ));
        assert_eq!(r.err(0), "lease does not exist: not found", "{style}");
        assert!(r.state().namespaces.is_empty(), "{style}");
        assert_eq!(r.store.scheduler().mutations, 0);
    }
}

/// Open style on content the namespace has, under a missing lease: Writer's addContentLease
/// fails inside the transaction, wrapped as `unable to lease content: …`.
#[test]
fn open_style_existing_content_under_a_missing_lease_is_unable_to_lease() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
[[op]]
op = "content.write"
data = "x"
lease = "ghost"
"#,
    );
    assert_eq!(
        r.err(1),
        "unable to lease content: lease does not exist: not found"
    );
}

/// leases.go AddResource checks the lease but not the resource; a bucket Put of the same key is
/// idempotent; a digest leased before it is written is protected once written.
#[test]
fn lease_add_does_not_check_existence_and_is_idempotent() {
    let r = apply(&format!(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.add"
id = "L"
type = "content"
resource = "{d}"
[[op]]
op = "lease.add"
id = "L"
type = "content"
resource = "{d}"
[[op]]
op = "lease.add"
id = "L"
type = "ingests"
resource = "no-such-ref"
[[op]]
op = "content.write"
data = "later"
[[op]]
op = "gc.run"
"#,
        d = dg("later")
    ));
    r.all_ok();
    assert_eq!(
        r.resources("default", "L"),
        vec![
            format!("content:{}", dg("later")),
            "ingests:no-such-ref".to_string()
        ]
    );
    assert!(r.has("default", "later"));
}

/// parseLeaseResource: `images` is not a 1.x resource type; content ids must be digests; the
/// lease must exist (`lease "<id>": not found`, not the context-lease text).
#[test]
fn lease_add_errors() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.add"
id = "L"
type = "images"
resource = "img"
[[op]]
op = "lease.add"
id = "L"
type = "content"
resource = "nope"
[[op]]
op = "lease.add"
id = "ghost"
type = "content"
resource = "nope"
"#,
    );
    assert_eq!(
        r.err(1),
        "resource type images not supported yet: not implemented"
    );
    assert_eq!(
        r.err(2),
        "invalid content resource id nope: invalid checksum digest format: invalid argument"
    );
    assert_eq!(r.err(3), "lease \"ghost\": not found");
}

/// 2.x: images are lease resources, and image Create under a context lease adds the image only
/// when it carries gc.expire (core/metadata/images.go addImageLease).
#[test]
fn v2_image_create_joins_the_context_lease_only_with_gc_expire() {
    let r = apply(&format!(
        r#"
containerd = "2.0"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "image.create"
name = "plain"
target = "{d}"
lease = "L"
[[op]]
op = "image.create"
name = "expiring"
target = "{d}"
lease = "L"
labels = {{ "containerd.io/gc.expire" = "2024-01-01T00:00:00Z" }}
[[op]]
op = "gc.run"
"#,
        d = dg("t")
    ));
    r.all_ok();
    assert_eq!(
        r.resources("default", "L"),
        vec!["images:expiring".to_string()]
    );
    assert!(
        r.image("default", "expiring"),
        "its own expiry has passed but the live lease keeps it"
    );
}

/// Reads (Info, ReaderAt, Walk, image Get/List, lease List) never add anything to a lease.
#[test]
fn reads_never_add_to_a_lease() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
[[op]]
op = "image.create"
name = "img"
target = "@x"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.info"
digest = "@x"
lease = "L"
[[op]]
op = "content.read"
digest = "@x"
lease = "L"
[[op]]
op = "content.list"
lease = "L"
[[op]]
op = "image.get"
name = "img"
lease = "L"
"#,
    );
    r.all_ok();
    assert!(r.resources("default", "L").is_empty());
}

/// An expired lease still lists and still takes writes until a GC sweeps it; afterwards a write
/// under it fails (PROBES expired_lease_still_lists_until_a_gc_and_still_takes_writes).
#[test]
fn expired_lease_still_lists_and_takes_writes_until_a_gc() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
expire = "1s"
[[op]]
op = "clock.advance"
by = "1m"
[[op]]
op = "content.write"
data = "x"
lease = "L"
[[op]]
op = "gc.run"
[[op]]
op = "content.write"
data = "y"
lease = "L"
"#,
    );
    assert!(r.ok(2));
    assert_eq!(r.err(4), "lease does not exist: not found");
    assert!(!r.has("default", "x"));
}

/// leases.WithExpiration writes `gc.expire` as RFC 3339 (whole seconds, UTC).
#[test]
fn lease_create_expire_is_written_as_rfc3339_from_the_virtual_now() {
    let r = apply(
        r#"
[[op]]
op = "clock.advance"
by = "90m"
[[op]]
op = "lease.create"
id = "L"
expire = "24h"
flat = true
"#,
    );
    let st = r.state();
    let labels = &st.namespaces["default"].leases["L"].labels;
    assert_eq!(labels["containerd.io/gc.expire"], "2025-01-02T01:30:00Z");
    assert!(labels.contains_key("containerd.io/gc.flat"));
}

// ---------------------------------------------------------------------------------------------
// Ingests (PROBES 6)
// ---------------------------------------------------------------------------------------------

/// ListStatuses never reports `expected` on 1.6.20: the dump's field is always "".
#[test]
fn ingest_expected_is_reported_empty_in_state() {
    let r = apply(&format!(
        r#"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{}"
data = "abc"
"#,
        dg("abcdef")
    ));
    r.all_ok();
    assert_eq!(r.state().namespaces["default"].ingests["r"].expected, "");
}

/// A digest mismatch at commit fails with the local store's text and leaves the ingest (with its
/// data); without a lease it stays a root (PROBES commit_mismatch_fails_and_leaves_the_ingest).
#[test]
fn commit_mismatch_fails_and_leaves_the_ingest() {
    for style in ["open", "commit"] {
        let r = apply(&format!(
            r#"
[[op]]
op = "content.write"
data = "actual"
expected = "{e}"
ref = "r"
style = "{style}"
[[op]]
op = "gc.run"
"#,
            e = dg("expected")
        ));
        assert_eq!(
            r.err(0),
            format!(
                "unexpected commit digest {}, expected {}: failed precondition",
                dg("actual"),
                dg("expected")
            ),
            "{style}"
        );
        assert!(r.ingest("default", "r"), "{style}");
        assert_eq!(r.store.backend_ingests()["default/1/r"].data, b"actual");
    }
}

/// content.Copy seeks past the writer's offset: a write to a ref holding a prefix of the data
/// resumes (PROBES write_resumes_an_ingest_that_has_data).
#[test]
fn write_resumes_an_ingest_that_has_data() {
    let r = apply(
        r#"
[[op]]
op = "ingest.open"
ref = "r"
data = "hello "
[[op]]
op = "content.write"
ref = "r"
data = "hello world"
"#,
    );
    r.all_ok();
    assert!(r.has("default", "hello world"));
    assert!(!r.ingest("default", "r"));
}

/// ingest.abort of an unknown ref: `reference <ref>: not found`.
#[test]
fn abort_of_an_unknown_ingest_is_reference_not_found() {
    let r = apply("[[op]]\nop = \"ingest.abort\"\nref = \"nope\"\n");
    assert_eq!(r.err(0), "reference nope: not found");
}

// ---------------------------------------------------------------------------------------------
// Labels (PROBES 4)
// ---------------------------------------------------------------------------------------------

/// boltutil writeMap never stores "": a commit with an empty value stores nothing for it; an
/// Update with fieldpath labels.k and "" removes k.
#[test]
fn label_update_with_empty_value_removes_and_commit_drops_empty_labels() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
labels = { "keep" = "1", "empty" = "", "drop" = "2" }
[[op]]
op = "content.label"
digest = "@x"
labels = { "drop" = "", "new" = "3" }
"#,
    );
    r.all_ok();
    let st = r.state();
    let l = &st.namespaces["default"].content[&dg("x")].labels;
    assert_eq!(l.keys().collect::<Vec<_>>(), vec!["keep", "new"]);
}

/// labels.Validate: key + value over 4096 bytes is invalid, the key cut to 10 bytes.
#[test]
fn label_over_4096_bytes_is_invalid() {
    let r = apply(&format!(
        "[[op]]\nop = \"content.write\"\ndata = \"x\"\nlabels = {{ \"abcdefghijklmnop\" = \"{}\" }}\n",
        "v".repeat(4081)
    ));
    assert_eq!(
        r.err(0),
        "info.Labels: label key and value greater than maximum size (4096 bytes), key: abcdefghij: invalid argument"
    );
    let ok = apply(&format!(
        "[[op]]\nop = \"content.write\"\ndata = \"x\"\nlabels = {{ \"abcdefghijklmnop\" = \"{}\" }}\n",
        "v".repeat(4080)
    ));
    ok.all_ok();
}

/// containerd adds no labels of its own (PROBES containerd_adds_no_labels_of_its_own).
#[test]
fn containerd_adds_no_labels_of_its_own() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
[[op]]
op = "image.create"
name = "img"
target = "@x"
[[op]]
op = "lease.create"
id = "L"
"#,
    );
    let st = r.state();
    let ns = &st.namespaces["default"];
    assert!(ns.content[&dg("x")].labels.is_empty());
    assert!(ns.images["img"].labels.is_empty());
    assert!(ns.leases["L"].labels.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Errors (exact texts, PROBES 3)
// ---------------------------------------------------------------------------------------------

#[test]
fn exact_error_texts_for_missing_content() {
    let d = dg("missing");
    let r = apply(&format!(
        r#"
[[op]]
op = "content.info"
digest = "{d}"
[[op]]
op = "content.read"
digest = "{d}"
[[op]]
op = "content.delete"
digest = "{d}"
[[op]]
op = "content.label"
digest = "{d}"
labels = {{ "a" = "b" }}
"#
    ));
    for i in 0..4 {
        assert_eq!(r.err(i), format!("content digest {d}: not found"), "op {i}");
    }
}

/// Content another namespace holds is still NotFound here (checkAccess is per namespace).
#[test]
fn content_of_another_namespace_is_not_found() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "x"
namespace = "a"
[[op]]
op = "content.read"
digest = "{d}"
namespace = "b"
"#,
        d = dg("x")
    ));
    assert_eq!(r.err(1), format!("content digest {}: not found", dg("x")));
}

#[test]
fn exact_error_texts_for_images_and_leases() {
    let r = apply(&format!(
        r#"
[[op]]
op = "image.get"
name = "a:1"
[[op]]
op = "image.delete"
name = "a:1"
[[op]]
op = "image.update"
name = "a:1"
target = "{d}"
[[op]]
op = "image.create"
name = "a:1"
target = "{d}"
[[op]]
op = "image.create"
name = "a:1"
target = "{d}"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "lease.delete"
id = "M"
[[op]]
op = "image.create"
name = "b:1"
target = "{d}"
media_type = ""
"#,
        d = dg("t")
    ));
    assert_eq!(r.err(0), "image \"a:1\": not found");
    assert_eq!(r.err(1), "image \"a:1\": not found");
    assert_eq!(r.err(2), "image \"a:1\": not found");
    assert!(r.ok(3));
    assert_eq!(r.err(4), "image \"a:1\": already exists");
    assert_eq!(r.err(6), "lease \"L\": already exists");
    assert_eq!(r.err(7), "lease \"M\": not found");
    assert_eq!(r.err(8), "Target.MediaType must be set: invalid argument");
}

/// validateTarget: a bad digest, through the Store API (the ops file rejects it as bad input).
#[test]
fn image_create_with_a_bad_target_digest_is_invalid_argument() {
    let mut s = Store::new(Semantics::V1_6);
    let op = Op {
        ctx: Ctx::default(),
        kind: OpKind::ImageCreate {
            name: "img".into(),
            media_type: "m".into(),
            target: "sha256:zz".into(),
            size: Some(1),
            labels: Default::default(),
        },
    };
    assert_eq!(
        s.apply(&op).unwrap_err().message,
        "Target.Digest \"sha256:zz\" invalid: invalid checksum digest length: invalid argument"
    );
    let op = Op {
        ctx: Ctx::default(),
        kind: OpKind::ImageCreate {
            name: "img".into(),
            media_type: "m".into(),
            target: dg("x"),
            size: Some(0),
            labels: Default::default(),
        },
    };
    assert_eq!(
        s.apply(&op).unwrap_err().message,
        "Target.Size must be greater than zero: invalid argument"
    );
}

/// An empty ref is refused by the gRPC content server before the metadata store sees it (`first
/// message must have a reference`, what a client gets; metadata/content.go Writer's own text is
/// `ref must not be empty`); with a digest the namespace has, the metadata open answers `content
/// <d>: already exists` (ingest.open exposes the raw open).
#[test]
fn exact_error_texts_for_writers() {
    let mut s = Store::new(Semantics::V1_6);
    let ctx = Ctx::default();
    let e = s
        .apply(&Op {
            ctx: ctx.clone(),
            kind: OpKind::IngestOpen {
                r: String::new(),
                data: b"x".to_vec().into(),
                expected: None,
            },
        })
        .unwrap_err();
    assert_eq!(e.message, "first message must have a reference");
    let e = s.writer_open(&ctx, "", None, 0).unwrap_err();
    assert_eq!(e.message, "ref must not be empty: invalid argument");
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
[[op]]
op = "ingest.open"
ref = "r"
expected = "@x"
"#,
    );
    assert_eq!(r.err(1), format!("content {}: already exists", dg("x")));
    assert!(!r.ingest("default", "r"));
}

// ---------------------------------------------------------------------------------------------
// Namespaces and the dump (PROBES 8)
// ---------------------------------------------------------------------------------------------

/// Namespaces whose content, images, leases and visible ingests are empty are left out of the
/// dump; the blob list is sorted.
#[test]
fn namespaces_without_objects_are_omitted_from_the_state() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
namespace = "gone"
[[op]]
op = "lease.delete"
id = "L"
namespace = "gone"
[[op]]
op = "content.write"
data = "b"
labels = { "containerd.io/gc.root" = "1" }
namespace = "kept"
[[op]]
op = "content.write"
data = "a"
labels = { "containerd.io/gc.root" = "1" }
namespace = "kept"
"#,
    );
    r.all_ok();
    let st = r.state();
    assert_eq!(st.namespaces.keys().collect::<Vec<_>>(), vec!["kept"]);
    let mut sorted = st.blobs.clone();
    sorted.sort();
    assert_eq!(st.blobs, sorted);
    assert_eq!(st.blobs.len(), 2);
}

/// A failing operation does not stop the list.
#[test]
fn a_failing_operation_does_not_stop_the_list() {
    let r = apply(
        r#"
[[op]]
op = "image.get"
name = "nope"
[[op]]
op = "content.write"
data = "x"
labels = { "containerd.io/gc.root" = "1" }
"#,
    );
    assert!(!r.ok(0));
    assert!(r.ok(1));
    assert!(r.has("default", "x"));
}

/// The virtual clock never reads the wall clock: the same file gives the same lease label.
#[test]
fn virtual_clock_starts_at_a_fixed_instant() {
    let r = apply("[[op]]\nop = \"lease.create\"\nid = \"L\"\nexpire = \"0s\"\n");
    assert_eq!(
        r.state().namespaces["default"].leases["L"].labels["containerd.io/gc.expire"],
        "2025-01-01T00:00:00Z"
    );
    assert_eq!(
        (r.store.now() + Duration::HOUR).rfc3339(),
        "2025-01-01T01:00:00Z"
    );
}

/// `Resource` is usable from outside (lease.add through the Store API).
#[test]
fn lease_add_through_the_store_api() {
    let mut s = Store::new(Semantics::V1_6);
    let ctx = Ctx::default();
    s.lease_create(&ctx, "L", Default::default()).unwrap();
    s.lease_add(&ctx, "L", &Resource::Ingest("r".into()))
        .unwrap();
    assert_eq!(s.lease_list(&ctx)[0].1.ingests.len(), 1);
}

/// metadata/content.go Update: with fieldpaths `labels.<k>` only those keys change; with no
/// fieldpaths at all (`content.label` with an empty table) `updated.Labels = info.Labels`
/// replaces every label, here with nothing.
#[test]
fn label_update_without_keys_clears_every_label() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "x"
as = "x"
labels = { "a" = "1", "containerd.io/gc.root" = "1" }
[[op]]
op = "content.label"
digest = "@x"
labels = { "b" = "2" }
[[op]]
op = "content.label"
digest = "@x"
labels = {}
[[op]]
op = "gc.run"
"#,
    );
    r.all_ok();
    assert!(!r.has("default", "x"), "gc.root went with the other labels");
}

/// content/local/store.go `writer` + `resumeStatus` (v1.6.20): reopening an existing ingest whose
/// recorded total differs from the newly declared one cannot resume; the ingest restarts at offset
/// 0 with a fresh digester but the data file is opened without O_TRUNC. When the old data was
/// longer, the local writer's Commit sees the file size and fails; when the new data covers it,
/// the commit succeeds. (Seen on a real daemon by the differential test.)
#[test]
fn reopened_ingest_with_another_size_restarts_over_the_old_file() {
    let zero = format!("sha256:{}", "0".repeat(64));
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
ref = "r"
data = "hello world"
expected = "{zero}"
[[op]]
op = "content.write"
ref = "r"
data = "hi"
[[op]]
op = "content.write"
ref = "r2"
data = "ab"
expected = "{zero}"
[[op]]
op = "content.write"
ref = "r2"
data = "abcdef"
"#
    ));
    assert!(
        r.err(0).starts_with("unexpected commit digest"),
        "{}",
        r.err(0)
    );
    // "hi" overwrote the first two bytes of the 11-byte file: the commit checks the file size.
    assert_eq!(
        r.err(1),
        "unexpected commit size 11, expected 2: failed precondition"
    );
    assert!(
        r.ingest("default", "r"),
        "the failed commit leaves the ingest"
    );
    // "abcdef" covers the old 2 bytes entirely: a clean commit of the new data.
    assert!(r.ok(3));
    assert!(r.has("default", "abcdef"));
    assert!(!r.ingest("default", "r2"));
}

/// The same reopen with an undeclared total on either side resumes (resumeStatus only compares
/// totals when both are set): the client skips the bytes already written and the metadata layer
/// checks the offset.
#[test]
fn reopened_ingest_without_a_recorded_total_resumes() {
    let r = apply(
        r#"
[[op]]
op = "ingest.open"
ref = "r"
data = "12345"
[[op]]
op = "content.write"
ref = "r"
data = "1"
[[op]]
op = "ingest.open"
ref = "s"
data = "xyz"
[[op]]
op = "content.write"
ref = "s"
data = "xyzw"
"#,
    );
    assert_eq!(
        r.err(1),
        "\"r\" failed size validation: 5 != 1: failed precondition"
    );
    assert!(r.ok(3), "resumed after xyz, wrote w");
    assert!(r.has("default", "xyzw"));
}

/// namespaces/context.go NamespaceRequired + identifiers/validate.go: every metadata call
/// validates the namespace name (alphanumeric runs joined by single `.`, `_` or `-`, at most 76
/// characters) before anything else. Texts as a 1.6.20 daemon answers them (checked with
/// `pushrace diff`).
#[test]
fn invalid_namespace_names_fail_every_metadata_call() {
    let long = "a".repeat(77);
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "x"
namespace = "bad/ns"
[[op]]
op = "lease.create"
id = "l"
namespace = "a..b"
[[op]]
op = "image.get"
name = "x"
namespace = "{long}"
[[op]]
op = "lease.create"
id = "l"
namespace = "ok.name_1-x"
"#
    ));
    assert_eq!(
        r.err(0),
        "namespace validation: identifier \"bad/ns\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument"
    );
    assert!(
        r.err(1).contains("identifier \"a..b\" must match"),
        "{}",
        r.err(1)
    );
    assert!(
        r.err(2)
            .contains("greater than maximum length (76 characters)"),
        "{}",
        r.err(2)
    );
    assert!(r.ok(3));
    assert!(r.state().blobs.is_empty(), "nothing was written");
}

/// metadata/boltutil writeMap: bolt refuses an empty label key (`key required`), wrapped by the
/// caller (content Update: `writing labels for info <d>`, images: `writing labels for image <n>`,
/// commit and lease create: bare). A commit that fails this way has already moved the bytes into
/// the blob store. An empty key with an empty value is dropped like any empty value. (Texts and
/// states as a 1.6.20 daemon gives them, checked with `pushrace diff`.)
#[test]
fn empty_label_keys_are_refused_by_the_store() {
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "xy"
labels = {{ "" = "v" }}
[[op]]
op = "lease.create"
id = "l"
labels = {{ "" = "v" }}
[[op]]
op = "content.write"
data = "zz"
labels = {{ "" = "", "a" = "b" }}
[[op]]
op = "content.label"
digest = "{zz}"
labels = {{ "" = "q" }}
[[op]]
op = "image.create"
name = "i"
target = "{zz}"
labels = {{ "" = "v" }}
"#,
        zz = dg("zz")
    ));
    assert_eq!(r.err(0), "failed to set label \"\"=\"v\": key required");
    assert!(
        r.blob("xy") && !r.has("default", "xy"),
        "bytes committed, no record"
    );
    assert!(
        r.state().namespaces["default"].ingests.is_empty(),
        "the ingest has no backend writer left"
    );
    assert_eq!(r.err(1), "failed to set label \"\"=\"v\": key required");
    assert!(!r.lease("default", "l"));
    assert!(r.ok(2) && r.has("default", "zz"));
    assert_eq!(
        r.err(3),
        format!(
            "writing labels for info {}: failed to set label \"\"=\"q\": key required",
            dg("zz")
        )
    );
    assert_eq!(
        r.err(4),
        "writing labels for image i: failed to set label \"\"=\"v\": key required"
    );
}

/// services/content/contentserver Read: an offset past the object is OutOfRange (`read past
/// object length N bytes`); a size of 0, or one reaching past the end, reads to the end.
#[test]
fn reads_past_the_end_are_out_of_range_and_size_zero_reads_to_the_end() {
    let h = dg("hello");
    let r = apply(&format!(
        r#"
[[op]]
op = "content.write"
data = "hello"
[[op]]
op = "content.read"
digest = "{h}"
offset = 6
[[op]]
op = "content.read"
digest = "{h}"
offset = 5
"#
    ));
    assert_eq!(r.err(1), "read past object length 5 bytes");
    assert!(r.ok(2), "reading at the very end is allowed (and empty)");
    let mut s = pushrace_models::Store::new(Semantics::V1_6);
    let ctx = Ctx::default();
    s.write_blob(
        &ctx,
        "r",
        b"hello",
        None,
        &Default::default(),
        WriteStyle::Open,
    )
    .unwrap();
    assert_eq!(&*s.read(&ctx, &h, 1, Some(0)).unwrap(), b"ello");
    assert_eq!(&*s.read(&ctx, &h, 1, Some(2)).unwrap(), b"el");
    assert_eq!(&*s.read(&ctx, &h, 3, Some(100)).unwrap(), b"lo");
}

// ------------------------------------------------------------ backend ingests (local store)

/// Ref `r` gets backend bytes ("al"), then a write under `r` of a blob another namespace has.
const SHARED_WRITE_OVER_BYTES: &str = r#"
[[op]]
op = "ingest.open"
ref = "r"
data = "al"
[[op]]
op = "content.write"
data = "charlie"
namespace = "other"
[[op]]
op = "content.write"
ref = "r"
data = "charlie"
"#;

/// metadata/content.go `Writer`: a digest the backend holds for another namespace makes a shared
/// writer (`w == nil`) even when the ref's bucket already has a backend ingest with bytes;
/// `namespacedWriter.Status` then reports the blob's size as written, so content.Copy sends
/// nothing and `commit` takes the shared branch. The old bytes ("al") play no part.
/// (Found by the differential test against containerd 1.6.20.)
#[test]
fn shared_write_over_an_ingest_with_bytes_commits_the_shared_blob() {
    let r = apply(SHARED_WRITE_OVER_BYTES);
    r.all_ok();
    assert!(r.has("default", "charlie"));
    assert!(!r.ingest("default", "r"), "the commit deletes the bucket");
    // The backend ingest is no bucket's any more, but it is still on disk (below).
    assert_eq!(r.store.backend_ingests()["default/1/r"].data, b"al");
}

/// metadata/content.go `Writer` names the backend ingest `createKey(NextSequence(), ns, ref)`,
/// and a fresh bucket's first sequence is 1: a bucket recreated under the same ref opens the old
/// backend ingest (content/local/store.go `writer` resumes it), so content.Copy skips the two
/// bytes already there and the commit hashes "al" + "zzy".
#[test]
fn a_recreated_bucket_resumes_the_backend_ingest_its_ref_left() {
    let r = apply(&format!(
        "{SHARED_WRITE_OVER_BYTES}[[op]]\nop = \"content.write\"\nref = \"r\"\ndata = \"xyzzy\"\n"
    ));
    assert_eq!(
        r.err(3),
        format!(
            "unexpected commit digest {}, expected {}: failed precondition",
            dg("alzzy"),
            dg("xyzzy")
        )
    );
}

/// metadata/content.go `Abort`: the backend ingest is aborted only when the bucket has no
/// `expected` key. A bucket that once expected shared content keeps it, so the abort leaves the
/// bytes; the next dirty GC's backend cleanup (`garbageCollect`: `WalkStatusRefs`, abort refs no
/// bucket names) removes them, and the same ref then starts empty.
#[test]
fn abort_of_a_shared_ingest_keeps_its_backend_ingest_until_a_dirty_gc() {
    let prefix = r#"
[[op]]
op = "content.write"
data = "charlie"
namespace = "other"
labels = { "containerd.io/gc.root" = "x" }
[[op]]
op = "ingest.open"
ref = "r"
data = "al"
[[op]]
op = "ingest.open"
ref = "r"
expected = "sha256:b9dd960c1753459a78115d3cb845a57d924b6877e805b08bd01086ccdf34433c"
[[op]]
op = "ingest.abort"
ref = "r"
"#;
    assert_eq!(
        dg("charlie"),
        "sha256:b9dd960c1753459a78115d3cb845a57d924b6877e805b08bd01086ccdf34433c"
    );
    let kept = apply(&format!(
        "{prefix}[[op]]\nop = \"content.write\"\nref = \"r\"\ndata = \"xyzzy\"\n"
    ));
    assert!(kept
        .err(4)
        .starts_with(&format!("unexpected commit digest {}", dg("alzzy"))));
    // A GC that removes content makes the store dirty; its cleanup aborts the orphan.
    let cleaned = apply(&format!(
        "{prefix}[[op]]\nop = \"content.write\"\ndata = \"tmp\"\n[[op]]\nop = \"gc.run\"\n\
         [[op]]\nop = \"content.write\"\nref = \"r\"\ndata = \"xyzzy\"\n"
    ));
    cleaned.all_ok();
    assert!(cleaned.store.backend_ingests().is_empty());
    // A GC that removes nothing leaves it (the content store is not dirty).
    let clean_gc = apply(&format!("{prefix}[[op]]\nop = \"gc.run\"\n"));
    assert!(clean_gc.store.backend_ingests().contains_key("default/1/r"));
}

/// metadata ListStatuses lists a bucket only when the local store has its backend ingest: an
/// ingest that expects shared content is listed when an earlier writer under its ref left bytes.
#[test]
fn a_shared_ingest_is_listed_when_its_ref_has_a_backend_ingest() {
    let r = apply(
        r#"
[[op]]
op = "content.write"
data = "charlie"
namespace = "other"
[[op]]
op = "ingest.open"
ref = "fresh"
expected = "sha256:b9dd960c1753459a78115d3cb845a57d924b6877e805b08bd01086ccdf34433c"
[[op]]
op = "ingest.open"
ref = "r"
data = "al"
[[op]]
op = "ingest.open"
ref = "r"
expected = "sha256:b9dd960c1753459a78115d3cb845a57d924b6877e805b08bd01086ccdf34433c"
"#,
    );
    r.all_ok();
    let listed = &r.state().namespaces["default"].ingests;
    assert!(r.ingest("default", "fresh") && !listed.contains_key("fresh"));
    assert!(listed.contains_key("r"));
}

/// metadata/content.go `createAndCopy` copies the shared blob with content.CopyReaderAt, which
/// reads from the backend writer's offset: when the ref's backend ingest already holds "al", only
/// "ho" of "echo" is copied and the write fails with CopyReaderAt's short-read error. The bytes
/// that were copied stay in the backend ingest.
#[test]
fn first_write_to_a_shared_ingest_over_old_bytes_copies_the_blob_tail_and_fails() {
    let r = apply(&format!(
        r#"
[[op]]
op = "ingest.open"
ref = "r"
data = "al"
[[op]]
op = "content.write"
data = "echo"
namespace = "other"
[[op]]
op = "ingest.open"
ref = "r"
expected = "{e}"
data = "ec"
[[op]]
op = "ingest.open"
ref = "fresh"
expected = "{e}"
data = "ec"
"#,
        e = dg("echo")
    ));
    assert_eq!(
        r.err(2),
        "failed to read expected number of bytes: unexpected EOF"
    );
    assert_eq!(r.store.backend_ingests()["default/1/r"].data, b"alho");
    // Over no old bytes the whole blob is copied first, then the data follows.
    assert!(r.ok(3));
    assert_eq!(r.store.backend_ingests()["default/1/fresh"].data, b"echoec");
}

// ------------------------------------------------------------ lease DeleteResource

/// metadata/leases.go `DeleteResource`: the resource leaves the lease, so content held only by
/// it is collected by the next GC, while what the lease still holds stays. Removing a resource the
/// lease does not hold is no error; the lease must exist and the resource parse as for
/// `AddResource` (tests/diff_probes/lease_remove.toml runs the same on containerd 1.6.20).
#[test]
fn lease_remove_drops_the_resource_so_gc_collects_it() {
    let r = apply(
        r#"
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "content.write"
data = "kept"
lease = "L"
[[op]]
op = "content.write"
data = "dropped"
as = "d"
lease = "L"
[[op]]
op = "lease.remove"
id = "L"
type = "content"
resource = "@d"
[[op]]
op = "lease.remove"
id = "L"
type = "content"
resource = "@d"
[[op]]
op = "lease.remove"
id = "nope"
type = "content"
resource = "@d"
[[op]]
op = "gc.run"
"#,
    );
    assert!(r.ok(3) && r.ok(4), "removing twice is fine");
    assert_eq!(r.err(5), "lease \"nope\": not found");
    assert!(r.has("default", "kept"));
    assert!(!r.has("default", "dropped"));
    assert_eq!(
        r.resources("default", "L"),
        vec![format!("content:{}", dg("kept"))]
    );
}

/// metadata/leases.go `DeleteResource` raises `db.dirty`: with the default scheduler
/// (deletion_threshold 0) the next mutation makes a background GC due, as after any delete.
#[test]
fn lease_remove_marks_the_store_dirty() {
    let mut s = Store::new(Semantics::V1_6);
    let ctx = Ctx::default();
    let run = |s: &mut Store, kind: OpKind| {
        s.apply(&Op {
            ctx: ctx.clone(),
            kind,
        })
    };
    run(
        &mut s,
        OpKind::LeaseCreate {
            id: "L".into(),
            expire: None,
            flat: false,
            labels: Default::default(),
        },
    )
    .unwrap();
    assert!(!s.scheduler().gc_due());
    run(
        &mut s,
        OpKind::LeaseRemove {
            id: "L".into(),
            resource: Resource::Ingest("absent".into()),
        },
    )
    .unwrap();
    assert_eq!(s.scheduler().dirty, 1);
    assert!(s.scheduler().gc_due());
}

/// services/content/contentserver (1.6.20) validates the digest of Info, Update, Delete and Read
/// before the store (so before the namespace) and answers InvalidArgument with three different
/// texts; the image store refuses a malformed target (metadata/images.go `validateImage`). Agreed
/// with the daemon by tests/diff_probes/malformed_digests.toml.
#[test]
fn malformed_digests_are_refused_with_containerds_texts() {
    let r = apply(
        r#"
[[op]]
op = "content.info"
digest = "garbage"
[[op]]
op = "content.read"
digest = "sha256:abc"
[[op]]
op = "content.delete"
digest = "md5:abc"
[[op]]
op = "content.label"
digest = "x"
labels = { "a" = "b" }
[[op]]
op = "content.info"
digest = "garbage"
namespace = "bad ns"
[[op]]
op = "image.create"
name = "i"
target = "sha256:abc"
"#,
    );
    assert_eq!(r.err(0), "\"garbage\" failed validation");
    assert_eq!(r.err(1), "sha256:abc: invalid checksum digest length");
    assert_eq!(r.err(2), "unsupported digest algorithm");
    assert_eq!(r.err(3), "\"x\" failed validation");
    assert_eq!(r.err(4), "\"garbage\" failed validation");
    assert_eq!(
        r.err(5),
        "Target.Digest \"sha256:abc\" invalid: invalid checksum digest length: invalid argument"
    );
}

/// identifiers/validate.go's pattern `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, case by case.
#[test]
fn namespace_names_follow_the_identifier_pattern() {
    use pushrace_models::store::validate_namespace;
    for ok in [
        "a",
        "default",
        "A1",
        "a.b",
        "a_b-c.d",
        "k8s.io",
        &"x".repeat(76),
    ] {
        assert!(validate_namespace(ok).is_ok(), "{ok}");
    }
    for bad in [
        "-a",
        "a-",
        ".",
        "a..b",
        "a._b",
        "a b",
        "é",
        "a/b",
        &"x".repeat(77),
    ] {
        assert!(validate_namespace(bad).is_err(), "{bad}");
    }
}

/// metadata/content.go `garbageCollect` starts with the local store's `Walk` of `blobs/`, a
/// directory content/local creates at its first commit. On a daemon that never committed
/// anything the walk fails (`lstat …/blobs: no such file or directory`, logged as "content
/// garbage collection failed") and the cleanup stops there: an ingest whose bucket the GC removed
/// keeps its bytes, and the next writer under its ref resumes them. After one commit the same
/// sequence cleans the orphan. (Found by the ingest-focused differential run; probe file
/// tests/diff_probes/backend_cleanup_needs_blobs_dir.toml.)
#[test]
fn backend_cleanup_does_nothing_before_the_first_commit() {
    let sequence = |first_commit: &str| {
        apply(&format!(
            r#"{first_commit}
[[op]]
op = "lease.create"
id = "L"
[[op]]
op = "ingest.open"
ref = "r"
data = "bravo"
lease = "L"
[[op]]
op = "lease.delete"
id = "L"
sync = true
[[op]]
op = "content.write"
ref = "r"
data = "alpha"
"#
        ))
    };
    let never = sequence("");
    assert_eq!(
        never.err(3),
        format!(
            "unexpected commit digest {}, expected {}: failed precondition",
            dg("bravo"),
            dg("alpha")
        )
    );
    let committed = sequence(
        "[[op]]\nop = \"content.write\"\ndata = \"x\"\nlabels = { \"containerd.io/gc.root\" = \"1\" }",
    );
    committed.all_ok();
    assert!(committed.has("default", "alpha"));
}
