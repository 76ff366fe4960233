#![cfg(feature = "containerd")]
//! Probes: the semantics reference's trickiest rules, pinned on a real containerd 1.6.20.
//! Each test starts its own daemon (GC is global) and is named after the rule it pins.
//! PROBES.md explains every finding and the containerd source behind it.

mod common;
use common::*;
use std::time::Duration;

const PAST: &str = "2000-01-01T00:00:00Z";
const FUTURE: &str = "2100-01-01T00:00:00Z";

// ------------------------------------------------------------------ write styles and leases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_style_write_of_existing_content_joins_the_context_lease() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "index", &[]).await;
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    let w = c
        .write_blob(
            &n.with_lease("L"),
            &WriteRequest::new(b"index".to_vec(), WriteStyle::Open),
        )
        .await
        .unwrap();
    assert_eq!(
        w.already_exists.as_deref(),
        Some(format!("content {dg}: already exists").as_str())
    );
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap(),
        vec![listed(Resource::Content(dg.to_string()))]
    );
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &dg).await, "leased content was collected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_style_write_of_existing_content_does_not_join_the_lease() {
    let (d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "index", &[]).await;
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    let w = c
        .write_blob(
            &n.with_lease("L"),
            &WriteRequest::new(b"index".to_vec(), WriteStyle::Commit),
        )
        .await
        .unwrap();
    assert_eq!(
        w.already_exists.as_deref(),
        Some(format!("blob with expected digest {dg} exists").as_str())
    );
    assert_eq!(c.list_lease_resources(&n, "L").await.unwrap(), vec![]);
    // The aborted ingest leaves nothing behind, in the namespace or the lease.
    assert_eq!(c.list_ingests(&n).await.unwrap(), vec![]);
    c.gc(&n).await.unwrap();
    assert!(!has(&c, &n, &dg).await, "unleased content survived the GC");
    assert!(!blob_file(&d, &dg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_content_written_under_a_lease_is_added_to_it_and_the_ingest_is_removed() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    for style in [WriteStyle::Open, WriteStyle::Commit] {
        let data = format!("{style:?}").into_bytes();
        let w = c
            .write_blob(&n.with_lease("L"), &WriteRequest::new(data, style))
            .await
            .unwrap();
        assert_eq!(w.already_exists, None);
    }
    let res = c.list_lease_resources(&n, "L").await.unwrap();
    assert_eq!(res.len(), 2);
    assert!(res.iter().all(|r| r.kind == "content"), "{res:?}");
    c.gc(&n).await.unwrap();
    assert_eq!(c.list_content(&n).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_under_a_missing_lease_fails_and_creates_nothing() {
    let (d, c) = fresh().await;
    let n = ns("default");
    let e = c
        .write_blob(
            &n.with_lease("nope"),
            &WriteRequest::new(b"x".to_vec(), WriteStyle::Open),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        CdError::NotFound("lease does not exist: not found".into())
    );
    let e = c
        .write_blob(
            &n.with_lease("nope"),
            &WriteRequest::new(b"x".to_vec(), WriteStyle::Commit),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        CdError::NotFound("lease does not exist: not found".into())
    );
    assert_eq!(c.namespaces().await.unwrap(), Vec::<String>::new());
    assert!(!blob_file(&d, Digest::of(b"x").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_add_resource_does_not_check_existence_but_checks_the_type_and_digest_form() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    let ghost = Digest::of(b"ghost").to_string();
    c.add_lease_resource(&n, "L", &Resource::Content(ghost.to_string()))
        .await
        .unwrap();
    c.add_lease_resource(&n, "L", &Resource::Content(ghost.to_string()))
        .await
        .unwrap(); // twice: no error, one entry
    c.add_lease_resource(&n, "L", &Resource::Ingest("any-ref".to_string()))
        .await
        .unwrap();
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap(),
        vec![
            listed(Resource::Content(ghost.to_string())),
            listed(Resource::Ingest("any-ref".to_string()))
        ]
    );
    let e = c
        .add_lease_resource(&n, "L", &Resource::Image("img".to_string()))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        CdError::Other {
            code: "Unimplemented".into(),
            message: "resource type images not supported yet: not implemented".into()
        }
    );
    let e = c
        .add_lease_resource(&n, "L", &Resource::Content("nodigest".to_string()))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        CdError::InvalidArgument("invalid content resource id nodigest: invalid checksum digest format: invalid argument".into())
    );
    // A leased digest committed later is protected.
    put(&c, &n, "ghost", &[]).await;
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &ghost).await);
}

// ------------------------------------------------------------------ GC timing and scope

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_delete_keeps_bytes_until_gc() {
    let (d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "bytes", &[(GC_ROOT, "x")]).await;
    c.delete_content(&n, &dg).await.unwrap();
    assert!(!has(&c, &n, &dg).await);
    assert!(blob_file(&d, &dg), "bytes gone before any GC");
    assert_eq!(c.dump_state().await.unwrap().blobs, vec![dg.clone()]);
    c.gc(&n).await.unwrap();
    assert!(!blob_file(&d, &dg), "bytes still there after a sync GC");
    assert_eq!(c.dump_state().await.unwrap().blobs, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_deletes_run_no_gc_and_a_sync_delete_does() {
    let (d, c) = fresh().await;
    let n = ns("default");
    let loose = put(&c, &n, "unreferenced", &[]).await;
    let doomed = put(&c, &n, "deleted", &[]).await;
    c.create_image(&n, "img", &image(&doomed)).await.unwrap();
    c.delete_content(&n, &doomed).await.unwrap();
    c.delete_image(&n, "img", false).await.unwrap();
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    c.delete_lease(&n, "L", false).await.unwrap();
    for i in 0..150 {
        put(&c, &n, &format!("mutation {i}"), &[(GC_ROOT, "x")]).await; // > mutation_threshold's default of 100
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(has(&c, &n, &loose).await, "a background GC ran");
    assert!(
        blob_file(&d, &doomed),
        "a background GC cleaned the backend"
    );
    c.delete_image(&n, "nothing-here", true).await.unwrap_err(); // NotFound: no GC either
    assert!(has(&c, &n, &loose).await, "a failed sync delete ran a GC");
    c.create_image(&n, "img2", &image(&loose)).await.unwrap();
    c.delete_image(&n, "img2", true).await.unwrap();
    assert!(
        !has(&c, &n, &loose).await,
        "sync image delete did not collect"
    );
    assert!(!blob_file(&d, &doomed) && !blob_file(&d, &loose));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_image_delete_sweeps_every_namespace() {
    let (d, c) = fresh().await;
    let (a, b) = (ns("a"), ns("b"));
    let loose_a = put(&c, &a, "loose in a", &[]).await;
    let kept_a = put(&c, &a, "root in a", &[(GC_ROOT, "1")]).await;
    let t = put(&c, &b, "target in b", &[]).await;
    c.create_image(&b, "img", &image(&t)).await.unwrap();
    c.delete_image(&b, "img", true).await.unwrap();
    assert!(!has(&c, &a, &loose_a).await);
    assert!(!has(&c, &b, &t).await);
    assert!(has(&c, &a, &kept_a).await);
    assert!(!blob_file(&d, &loose_a) && !blob_file(&d, &t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lease_delete_runs_a_gc_and_releases_the_leased_content() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    let dg = c
        .write_blob(
            &n.with_lease("L"),
            &WriteRequest::new(b"leased".to_vec(), WriteStyle::Open),
        )
        .await
        .unwrap()
        .digest
        .to_string();
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &dg).await);
    c.delete_lease(&n, "L", true).await.unwrap();
    assert!(!has(&c, &n, &dg).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_content_is_collected_at_the_very_next_gc() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "fresh", &[]).await;
    c.gc(&n).await.unwrap();
    assert!(!has(&c, &n, &dg).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_shared_across_namespaces_and_kept_while_any_namespace_has_a_record() {
    let (d, c) = fresh().await;
    let (a, b) = (ns("a"), ns("b"));
    let dg = put(&c, &a, "shared", &[(GC_ROOT, "1")]).await;
    // b writes the same bytes: a fresh record in b (b never had it), the blob file is the same one.
    let w = c
        .write_blob(
            &b,
            &WriteRequest::new(b"shared".to_vec(), WriteStyle::Open)
                .labels(labels(&[(GC_ROOT, "1")])),
        )
        .await
        .unwrap();
    assert_eq!(w.already_exists, None);
    c.delete_content(&b, &dg).await.unwrap();
    c.gc(&a).await.unwrap();
    assert!(has(&c, &a, &dg).await && !has(&c, &b, &dg).await);
    assert!(blob_file(&d, &dg));
    assert_eq!(c.read(&a, &dg).await.unwrap(), b"shared");
    assert!(c.read(&b, &dg).await.unwrap_err().is_not_found());
}

// ------------------------------------------------------------------ roots

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_with_gc_expire_in_the_past_is_not_a_root_and_is_swept() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    for (id, exp) in [
        ("past", PAST),
        ("future", FUTURE),
        ("garbage", "not-a-time"),
    ] {
        c.create_lease(&n, id, &labels(&[(GC_EXPIRE, exp)]))
            .await
            .unwrap();
        let dg = c
            .write_blob(
                &n.with_lease(id),
                &WriteRequest::new(id.as_bytes().to_vec(), WriteStyle::Open),
            )
            .await
            .unwrap()
            .digest
            .to_string();
        assert_eq!(
            c.list_lease_resources(&n, id).await.unwrap(),
            vec![listed(Resource::Content(dg.to_string()))]
        );
    }
    c.gc(&n).await.unwrap();
    assert!(
        !has(&c, &n, Digest::of(b"past").as_str()).await,
        "expired lease kept its content"
    );
    assert!(has(&c, &n, Digest::of(b"future").as_str()).await);
    assert!(
        has(&c, &n, Digest::of(b"garbage").as_str()).await,
        "unparsable gc.expire must keep the lease alive"
    );
    let ids: Vec<String> = c
        .list_leases(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(
        ids,
        vec!["future".to_string(), "garbage".to_string()],
        "the expired lease record is swept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_still_lists_until_a_gc_and_still_takes_writes() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    c.create_lease(&n, "old", &labels(&[(GC_EXPIRE, PAST)]))
        .await
        .unwrap();
    assert_eq!(c.list_leases(&n).await.unwrap().len(), 1);
    c.write_blob(
        &n.with_lease("old"),
        &WriteRequest::new(b"w".to_vec(), WriteStyle::Open),
    )
    .await
    .unwrap();
    c.gc(&n).await.unwrap();
    assert_eq!(c.list_leases(&n).await.unwrap(), vec![]);
    let e = c
        .write_blob(
            &n.with_lease("old"),
            &WriteRequest::new(b"w2".to_vec(), WriteStyle::Open),
        )
        .await
        .unwrap_err();
    assert_eq!(e.message(), "lease does not exist: not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_lease_does_not_follow_labels() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let child_flat = put(&c, &n, "child of flat", &[]).await;
    let child_deep = put(&c, &n, "child of deep", &[]).await;
    let child_empty = put(&c, &n, "child of empty-flat", &[]).await;
    let p_flat = put(
        &c,
        &n,
        "parent flat",
        &[("containerd.io/gc.ref.content.l.0", &child_flat)],
    )
    .await;
    let p_deep = put(
        &c,
        &n,
        "parent deep",
        &[("containerd.io/gc.ref.content.l.0", &child_deep)],
    )
    .await;
    let p_empty = put(
        &c,
        &n,
        "parent empty-flat",
        &[("containerd.io/gc.ref.content.l.0", &child_empty)],
    )
    .await;
    c.create_lease(&n, "flat", &labels(&[(GC_FLAT, "true")]))
        .await
        .unwrap();
    c.create_lease(&n, "deep", &Labels::new()).await.unwrap();
    // An empty label value is not stored, so this lease is NOT flat.
    let l = c
        .create_lease(&n, "empty-flat", &labels(&[(GC_FLAT, "")]))
        .await
        .unwrap();
    assert_eq!(l.labels, Labels::new());
    c.add_lease_resource(&n, "flat", &Resource::Content(p_flat.to_string()))
        .await
        .unwrap();
    c.add_lease_resource(&n, "deep", &Resource::Content(p_deep.to_string()))
        .await
        .unwrap();
    c.add_lease_resource(&n, "empty-flat", &Resource::Content(p_empty.to_string()))
        .await
        .unwrap();
    c.gc(&n).await.unwrap();
    assert!(
        has(&c, &n, &p_flat).await && has(&c, &n, &p_deep).await && has(&c, &n, &p_empty).await
    );
    assert!(
        !has(&c, &n, &child_flat).await,
        "flat lease followed a label"
    );
    assert!(has(&c, &n, &child_deep).await);
    assert!(
        has(&c, &n, &child_empty).await,
        "gc.flat with an empty value made the lease flat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_ref_content_x_suffix_is_not_an_edge_but_dot_and_slash_suffixes_are() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let kids: Vec<String> = ["X", "dot", "slash", "bare", "other"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut d = Vec::new();
    for k in &kids {
        d.push(put(&c, &n, &format!("kid {k}"), &[]).await);
    }
    put(
        &c,
        &n,
        "parent",
        &[
            (GC_ROOT, "1"),
            ("containerd.io/gc.ref.contentX", &d[0]),
            ("containerd.io/gc.ref.content.x", &d[1]),
            ("containerd.io/gc.ref.content/x", &d[2]),
            ("containerd.io/gc.ref.content", &d[3]),
            ("containerd.io/gc.ref.snapshot.x", &d[4]),
        ],
    )
    .await;
    c.gc(&n).await.unwrap();
    assert!(!has(&c, &n, &d[0]).await, "gc.ref.contentX was followed");
    assert!(has(&c, &n, &d[1]).await, "gc.ref.content.x not followed");
    assert!(has(&c, &n, &d[2]).await, "gc.ref.content/x not followed");
    assert!(has(&c, &n, &d[3]).await, "gc.ref.content not followed");
    assert!(!has(&c, &n, &d[4]).await, "a snapshot ref kept content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_with_gc_root_label_survives_and_gc_expire_on_content_is_not_honoured() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let root = put(&c, &n, "root", &[(GC_ROOT, "anything")]).await;
    let fut = put(&c, &n, "expire future", &[(GC_EXPIRE, FUTURE)]).await;
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &root).await);
    assert!(
        !has(&c, &n, &fut).await,
        "gc.expire on content kept it alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_edges_follow_through_chains_and_dead_edges_are_ignored() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let ghost = Digest::of(b"never written").to_string();
    let layer = put(&c, &n, "layer", &[]).await;
    let manifest = put(
        &c,
        &n,
        "manifest",
        &[
            ("containerd.io/gc.ref.content.l.0", &layer),
            ("containerd.io/gc.ref.content.l.1", &ghost),
        ],
    )
    .await;
    let index = put(
        &c,
        &n,
        "index",
        &[("containerd.io/gc.ref.content.m.0", &manifest)],
    )
    .await;
    c.create_image(&n, "img", &image(&index)).await.unwrap();
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &index).await && has(&c, &n, &manifest).await && has(&c, &n, &layer).await);
    // image labels are edges too
    let other = put(&c, &n, "labelled from image", &[]).await;
    let mut img = image(&index);
    img.labels = labels(&[("containerd.io/gc.ref.content.extra", &other)]);
    c.update_image(&n, "img", &img, &["labels"]).await.unwrap();
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &other).await, "image label edge not followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_edges_stay_inside_the_namespace() {
    let (_d, c) = fresh().await;
    let (a, b) = (ns("a"), ns("b"));
    let child = put(&c, &b, "child in b", &[]).await;
    put(
        &c,
        &a,
        "parent in a",
        &[(GC_ROOT, "1"), ("containerd.io/gc.ref.content.0", &child)],
    )
    .await;
    c.gc(&a).await.unwrap();
    assert!(!has(&c, &b, &child).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_create_does_not_check_the_target_exists() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let ghost = Digest::of(b"ghost target").to_string();
    let (_, img) = c
        .create_image(&n, "example.com/a:1", &image(&ghost))
        .await
        .unwrap();
    assert_eq!(img.target.digest, ghost);
    c.gc(&n).await.unwrap();
    assert_eq!(
        c.get_image(&n, "example.com/a:1")
            .await
            .unwrap()
            .1
            .target
            .digest,
        ghost
    );
    // A later write of that digest is protected by the image.
    put(&c, &n, "ghost target", &[]).await;
    c.gc(&n).await.unwrap();
    assert!(has(&c, &n, &ghost).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_update_of_target_moves_the_root() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let old = put(&c, &n, "old", &[]).await;
    let new = put(&c, &n, "new", &[]).await;
    c.create_image(&n, "img", &image(&old)).await.unwrap();
    c.update_image(&n, "img", &image(&new), &["target"])
        .await
        .unwrap();
    c.gc(&n).await.unwrap();
    assert!(!has(&c, &n, &old).await && has(&c, &n, &new).await);
}

// ------------------------------------------------------------------ ingests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_without_lease_survives_a_gc_and_ingest_in_a_lease_goes_with_it() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    c.open_ingest(&n, "loose", None, b"partial").await.unwrap();
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    c.open_ingest(&n.with_lease("L"), "leased", None, b"partial too")
        .await
        .unwrap();
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap(),
        vec![listed(Resource::Ingest("leased".to_string()))]
    );
    c.gc(&n).await.unwrap();
    let refs: Vec<String> = c
        .list_ingests(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, vec!["leased".to_string(), "loose".to_string()]);
    c.delete_lease(&n, "L", true).await.unwrap();
    let refs: Vec<String> = c
        .list_ingests(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, vec!["loose".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_expected_digest_is_not_reported_by_list_statuses() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = Digest::of(b"to come").to_string();
    assert_eq!(
        c.open_ingest(&n, "with-expected", Some((&dg, 7)), b"")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        c.open_ingest(&n, "with-data", None, b"abc").await.unwrap(),
        3
    );
    let st = c.list_ingests(&n).await.unwrap();
    assert_eq!(
        st,
        vec![
            IngestStatus {
                reference: "with-data".into(),
                offset: 3,
                total: 0,
                expected: String::new()
            },
            IngestStatus {
                reference: "with-expected".into(),
                offset: 0,
                total: 7,
                expected: String::new()
            },
        ]
    );
    assert_eq!(
        c.ingest_status(&n, "with-expected").await.unwrap().expected,
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_expected_of_content_absent_everywhere_is_no_edge() {
    let (_d, c) = fresh().await;
    let (a, b) = (ns("a"), ns("b"));
    let dg = Digest::of(b"later").to_string();
    c.open_ingest(&a, "waiting", Some((&dg, 5)), b"")
        .await
        .unwrap();
    put(&c, &b, "later", &[]).await;
    put(&c, &a, "later", &[]).await; // even in the ingest's own namespace
    c.gc(&a).await.unwrap();
    assert!(!has(&c, &a, &dg).await && !has(&c, &b, &dg).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_ingest_is_invisible_and_keeps_the_backend_bytes_of_its_expected_digest() {
    let (d, c) = fresh().await;
    let (a, b) = (ns("a"), ns("b"));
    let dg = put(&c, &a, "shared bytes", &[]).await;
    // b does not have the content, but the backend does: the ingest is "shared" (no backend writer).
    c.open_ingest(&b, "sharing", Some((&dg, 12)), b"")
        .await
        .unwrap();
    assert_eq!(
        c.list_ingests(&b).await.unwrap(),
        vec![],
        "a shared ingest shows in ListStatuses"
    );
    let e = c.ingest_status(&b, "sharing").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    c.gc(&a).await.unwrap();
    assert!(!has(&c, &a, &dg).await, "the ingest kept a's record");
    assert!(
        blob_file(&d, &dg),
        "the shared ingest did not keep the backend bytes"
    );
    // Abort it. The abort removes no record the GC sweeps, so the next GC does not clean the backend
    // (dirtyCS stays false): the bytes outlive it, with no namespace referencing them ...
    c.abort_ingest(&b, "sharing").await.unwrap();
    c.gc(&a).await.unwrap();
    assert!(
        blob_file(&d, &dg),
        "backend cleaned although the GC removed no content record"
    );
    // ... until a GC that does remove a content record (or follows a content Delete).
    put(&c, &a, "anything", &[]).await;
    c.gc(&a).await.unwrap();
    assert!(!blob_file(&d, &dg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_mismatch_fails_and_leaves_the_ingest() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let wrong = Digest::of(b"other");
    for style in [WriteStyle::Open, WriteStyle::Commit] {
        let e = c
            .write_blob(
                &n,
                &WriteRequest::new(b"data".to_vec(), style)
                    .expected(wrong.clone())
                    .reference(format!("r-{style:?}")),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e,
            CdError::FailedPrecondition(format!(
                "unexpected commit digest {}, expected {wrong}: failed precondition",
                Digest::of(b"data")
            ))
        );
    }
    let refs: Vec<String> = c
        .list_ingests(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, vec!["r-Commit".to_string(), "r-Open".to_string()]);
    assert!(!has(&c, &n, wrong.as_str()).await && !has(&c, &n, Digest::of(b"data").as_str()).await);
    c.gc(&n).await.unwrap();
    assert_eq!(
        c.list_ingests(&n).await.unwrap().len(),
        2,
        "ingests without lease are roots"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_resumes_an_ingest_that_has_data() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    assert_eq!(c.open_ingest(&n, "resume", None, b"hel").await.unwrap(), 3);
    let w = c
        .write_blob(
            &n,
            &WriteRequest::new(b"hello".to_vec(), WriteStyle::Open).reference("resume"),
        )
        .await
        .unwrap();
    assert_eq!(w.already_exists, None);
    assert_eq!(
        c.read(&n, Digest::of(b"hello").as_str()).await.unwrap(),
        b"hello"
    );
    assert_eq!(c.list_ingests(&n).await.unwrap(), vec![]);
}

// ------------------------------------------------------------------ errors and labels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_error_texts_for_missing_content_image_lease_and_ingest() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = Digest::of(b"missing").to_string();
    let nf = |m: &str| CdError::NotFound(m.to_string());
    let content = format!("content digest {dg}: not found");
    assert_eq!(c.info(&n, &dg).await.unwrap_err(), nf(&content));
    assert_eq!(c.read(&n, &dg).await.unwrap_err(), nf(&content));
    assert_eq!(c.delete_content(&n, &dg).await.unwrap_err(), nf(&content));
    assert_eq!(
        c.update_labels(&n, &dg, &labels(&[("a", "b")]))
            .await
            .unwrap_err(),
        nf(&content)
    );
    let img = "image \"example.com/x:1\": not found";
    assert_eq!(
        c.get_image(&n, "example.com/x:1").await.unwrap_err(),
        nf(img)
    );
    assert_eq!(
        c.delete_image(&n, "example.com/x:1", false)
            .await
            .unwrap_err(),
        nf(img)
    );
    assert_eq!(
        c.delete_image(&n, "example.com/x:1", true)
            .await
            .unwrap_err(),
        nf(img)
    );
    assert_eq!(
        c.update_image(&n, "example.com/x:1", &image(&dg), &["target"])
            .await
            .unwrap_err(),
        nf(img)
    );
    let lease = "lease \"L\": not found";
    assert_eq!(c.delete_lease(&n, "L", false).await.unwrap_err(), nf(lease));
    assert_eq!(c.delete_lease(&n, "L", true).await.unwrap_err(), nf(lease));
    assert_eq!(
        c.add_lease_resource(&n, "L", &Resource::Content(dg.to_string()))
            .await
            .unwrap_err(),
        nf(lease)
    );
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap_err(),
        nf(lease)
    );
    assert_eq!(
        c.abort_ingest(&n, "r").await.unwrap_err(),
        nf("reference r: not found")
    );
    assert_eq!(
        c.ingest_status(&n, "r").await.unwrap_err(),
        nf("could not get status for ref \"r\": reference r: not found")
    );
    // duplicates
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    assert_eq!(
        c.create_lease(&n, "L", &Labels::new()).await.unwrap_err(),
        CdError::AlreadyExists("lease \"L\": already exists".into())
    );
    c.create_image(&n, "i", &image(&dg)).await.unwrap();
    assert_eq!(
        c.create_image(&n, "i", &image(&dg)).await.unwrap_err(),
        CdError::AlreadyExists("image \"i\": already exists".into())
    );
    // validation
    let mut bad = image("nodigest");
    assert_eq!(
        c.create_image(&n, "j", &bad).await.unwrap_err(),
        CdError::InvalidArgument(
            "Target.Digest \"nodigest\" invalid: invalid checksum digest format: invalid argument"
                .into()
        )
    );
    bad.target.digest = dg.clone();
    bad.target.media_type.clear();
    assert_eq!(
        c.create_image(&n, "j", &bad).await.unwrap_err(),
        CdError::InvalidArgument("Target.MediaType must be set: invalid argument".into())
    );
    // the other namespace does not see them
    assert!(c
        .get_image(&ns("other"), "i")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_update_with_empty_value_removes_and_commit_drops_empty_labels() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "labelled", &[("a", "1"), ("b", "2"), ("empty", "")]).await;
    assert_eq!(
        c.info(&n, &dg).await.unwrap().labels,
        labels(&[("a", "1"), ("b", "2")])
    );
    let i = c
        .update_labels(&n, &dg, &labels(&[("a", ""), ("c", "3")]))
        .await
        .unwrap();
    assert_eq!(i.labels, labels(&[("b", "2"), ("c", "3")]));
    assert_eq!(
        c.info(&n, &dg).await.unwrap().labels,
        labels(&[("b", "2"), ("c", "3")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_adds_no_labels_of_its_own() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let dg = put(&c, &n, "plain", &[]).await;
    c.create_lease(&n, "L", &Labels::new()).await.unwrap();
    c.create_image(&n, "img", &image(&dg)).await.unwrap();
    let s = c.dump_state().await.unwrap();
    let d = s.namespace("default").unwrap();
    assert!(d.content[&dg].labels.is_empty());
    assert!(d.images["img"].labels.is_empty());
    assert!(d.leases["L"].labels.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_create_without_id_gets_a_generated_id() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let l = c.create_lease(&n, "", &Labels::new()).await.unwrap();
    assert!(!l.id.is_empty());
    assert_eq!(c.list_leases(&n).await.unwrap()[0].id, l.id);
}

// ------------------------------------------------------------------ namespaces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_appear_on_first_successful_write_and_never_go() {
    let (_d, c) = fresh().await;
    assert_eq!(c.namespaces().await.unwrap(), Vec::<String>::new());
    // reads and failed writes create nothing
    let _ = c.info(&ns("r"), Digest::of(b"x").as_str()).await;
    let _ = c.delete_image(&ns("r"), "x", true).await;
    assert_eq!(c.namespaces().await.unwrap(), Vec::<String>::new());
    let dg = put(&c, &ns("w"), "x", &[]).await;
    c.gc(&ns("g")).await.unwrap(); // the throwaway lease creates "g"
    assert_eq!(
        c.namespaces().await.unwrap(),
        vec!["g".to_string(), "w".to_string()]
    );
    assert!(!has(&c, &ns("w"), &dg).await);
    assert_eq!(
        c.namespaces().await.unwrap(),
        vec!["g".to_string(), "w".to_string()],
        "GC removes namespaces"
    );
    // the dump leaves empty namespaces out
    assert_eq!(c.dump_state().await.unwrap(), State::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_after_delete_before_gc_recreates_the_record_from_the_kept_bytes() {
    let (d, c) = fresh().await;
    let n = ns("default");
    for (i, style) in [WriteStyle::Open, WriteStyle::Commit]
        .into_iter()
        .enumerate()
    {
        let data = format!("again {i}").into_bytes();
        let dg = c
            .write_blob(&n, &WriteRequest::new(data.clone(), style))
            .await
            .unwrap()
            .digest
            .to_string();
        c.delete_content(&n, &dg).await.unwrap();
        assert!(blob_file(&d, &dg));
        let w = c
            .write_blob(&n, &WriteRequest::new(data.clone(), style).label("v", "2"))
            .await
            .unwrap();
        assert_eq!(
            w.already_exists, None,
            "{style:?}: a deleted record is not 'existing content'"
        );
        assert_eq!(c.info(&n, &dg).await.unwrap().labels, labels(&[("v", "2")]));
        assert_eq!(c.read(&n, &dg).await.unwrap(), data);
    }
    assert_eq!(c.list_ingests(&n).await.unwrap(), vec![]);
}
