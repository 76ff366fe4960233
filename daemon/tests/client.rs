#![cfg(feature = "containerd")]
//! A round trip of each client call on a fresh private daemon.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_round_trip() {
    let (d, c) = fresh().await;
    let n = ns("default");
    let big: Vec<u8> = (0..(WRITE_CHUNK + 1000)).map(|i| (i % 251) as u8).collect();
    for (data, style) in [
        (b"open".to_vec(), WriteStyle::Open),
        (b"commit".to_vec(), WriteStyle::Commit),
        (big.clone(), WriteStyle::Open),
    ] {
        let w = c
            .write_blob(&n, &WriteRequest::new(data.clone(), style).label("k", "v"))
            .await
            .unwrap();
        assert_eq!(w.digest, Digest::of(&data));
        assert_eq!(w.size, data.len() as u64);
        assert_eq!(w.already_exists, None);
        let i = c.info(&n, w.digest.as_str()).await.unwrap();
        assert_eq!(
            (i.size, i.labels),
            (data.len() as u64, labels(&[("k", "v")]))
        );
        assert_eq!(c.read(&n, w.digest.as_str()).await.unwrap(), data);
        assert!(blob_file(&d, w.digest.as_str()));
    }
    let dg = Digest::of(&big).to_string();
    assert_eq!(
        c.read_at(&n, &dg, 10, 5).await.unwrap(),
        big[10..15].to_vec()
    );
    let listed: Vec<String> = c
        .list_content(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.digest.to_string())
        .collect();
    let mut want = vec![
        Digest::of(b"open").to_string(),
        Digest::of(b"commit").to_string(),
        dg.clone(),
    ];
    want.sort();
    assert_eq!(listed, want);
    let i = c
        .update_labels(&n, &dg, &labels(&[("k", ""), ("x", "y")]))
        .await
        .unwrap();
    assert_eq!(i.labels, labels(&[("x", "y")]));
    c.delete_content(&n, &dg).await.unwrap();
    assert!(c.info(&n, &dg).await.unwrap_err().is_not_found());
    // ingests
    assert_eq!(c.open_ingest(&n, "r1", None, b"part").await.unwrap(), 4);
    assert_eq!(c.ingest_status(&n, "r1").await.unwrap().offset, 4);
    assert_eq!(c.list_ingests(&n).await.unwrap().len(), 1);
    c.abort_ingest(&n, "r1").await.unwrap();
    assert_eq!(c.list_ingests(&n).await.unwrap(), vec![]);
    // gc
    c.gc(&n).await.unwrap();
    assert_eq!(c.list_content(&n).await.unwrap(), vec![]);
    assert_eq!(c.backend_blobs().unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_round_trip() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let t1 = put(&c, &n, "t1", &[]).await;
    let t2 = put(&c, &n, "t2", &[]).await;
    let mut img = image(&t1);
    img.labels = labels(&[("a", "1")]);
    let named = ("example.com/app:1".to_string(), img.clone());
    assert_eq!(
        c.create_image(&n, "example.com/app:1", &img).await.unwrap(),
        named
    );
    assert_eq!(c.get_image(&n, "example.com/app:1").await.unwrap(), named);
    let (_, moved) = c
        .update_image(&n, "example.com/app:1", &image(&t2), &["target"])
        .await
        .unwrap();
    assert_eq!(moved.target.digest, t2);
    assert_eq!(
        moved.labels,
        labels(&[("a", "1")]),
        "target-only update keeps labels"
    );
    let mut relabel = image(&t1);
    relabel.labels = labels(&[("b", "2")]);
    let (_, r) = c
        .update_image(&n, "example.com/app:1", &relabel, &["labels"])
        .await
        .unwrap();
    assert_eq!(
        (r.target.digest.as_str(), r.labels.clone()),
        (t2.as_str(), labels(&[("b", "2")]))
    );
    c.create_image(&n, "example.com/app:2", &image(&t1))
        .await
        .unwrap();
    let names: Vec<String> = c
        .list_images(&n)
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        vec![
            "example.com/app:1".to_string(),
            "example.com/app:2".to_string()
        ]
    );
    c.delete_image(&n, "example.com/app:2", false)
        .await
        .unwrap();
    c.delete_image(&n, "example.com/app:1", true).await.unwrap();
    assert_eq!(c.list_images(&n).await.unwrap(), vec![]);
    assert_eq!(
        c.list_content(&n).await.unwrap(),
        vec![],
        "sync delete collected the targets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_round_trip() {
    let (_d, c) = fresh().await;
    let n = ns("default");
    let exp = rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    let l = c
        .create_lease(&n, "L", &labels(&[(GC_EXPIRE, &exp)]))
        .await
        .unwrap();
    assert_eq!(
        l,
        Lease {
            id: "L".into(),
            labels: labels(&[(GC_EXPIRE, &exp)])
        }
    );
    let dg = c
        .write_blob(
            &n.with_lease("L"),
            &WriteRequest::new(b"in lease".to_vec(), WriteStyle::Open),
        )
        .await
        .unwrap()
        .digest
        .to_string();
    c.add_lease_resource(&n, "L", &Resource::Ingest("r".to_string()))
        .await
        .unwrap();
    assert_eq!(c.list_leases(&n).await.unwrap(), vec![l.clone()]);
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap(),
        vec![
            listed(Resource::Content(dg.to_string())),
            listed(Resource::Ingest("r".to_string()))
        ]
    );
    c.delete_lease_resource(&n, "L", &Resource::Ingest("r".to_string()))
        .await
        .unwrap();
    assert_eq!(
        c.list_lease_resources(&n, "L").await.unwrap(),
        vec![listed(Resource::Content(dg.to_string()))]
    );
    c.delete_lease(&n, "L", false).await.unwrap();
    assert_eq!(c.list_leases(&n).await.unwrap(), vec![]);
    assert!(has(&c, &n, &dg).await, "async lease delete ran a GC");
    c.gc(&n).await.unwrap();
    assert!(!has(&c, &n, &dg).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_state_has_the_apply_json_shape() {
    let (_d, c) = fresh().await;
    let a = ns("a");
    let dg = put(&c, &a, "hello", &[(GC_ROOT, "x")]).await;
    c.create_image(&a, "img", &image(&dg)).await.unwrap();
    c.create_lease(&a, "L", &labels(&[(GC_FLAT, "1")]))
        .await
        .unwrap();
    c.add_lease_resource(&a, "L", &Resource::Content(dg.to_string()))
        .await
        .unwrap();
    c.open_ingest(&a, "ing", None, b"x").await.unwrap();
    let loose = put(&c, &ns("b"), "bye", &[]).await;
    c.delete_content(&ns("b"), &loose).await.unwrap();
    let got = c.dump_state().await.unwrap().to_json();
    let mut blobs = vec![Digest::of(b"bye").to_string(), dg.clone()];
    blobs.sort();
    let want = serde_json::json!({
        "namespaces": {
            "a": {
                "content": { (dg.clone()): { "size": 5, "labels": { "containerd.io/gc.root": "x" } } },
                "images": { "img": { "target": dg.clone(), "media_type": INDEX_MT, "labels": {} } },
                "leases": { "L": { "labels": { "containerd.io/gc.flat": "1" }, "resources": [ { "type": "content", "id": dg.clone() } ] } },
                "ingests": { "ing": { "expected": "" } }
            }
        },
        "blobs": blobs
    });
    assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    // keys come out sorted
    let text = serde_json::to_string(&c.dump_state().await.unwrap()).unwrap();
    assert!(
        text.starts_with("{\"blobs\":[") && text.contains("],\"namespaces\":{\"a\":{\"content\":"),
        "{text}"
    );
}
