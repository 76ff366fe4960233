//! insta snapshots of the fixture image (its JSON blobs and the labels pull puts on them) and of
//! the converter's reduced index. Each snapshot is preceded by the properties that make it right;
//! those that can be checked mechanically are asserted before the snapshot is taken, so the
//! snapshot pins only what was argued by hand (exact bytes, digests, key names).

use pushrace_models::converter::reduce_index;
use pushrace_models::labels::Labels;
use pushrace_models::oci::ImageFixture;
use pushrace_models::{opsfile, Digest};
use std::fmt::Write;

fn platforms(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

fn fixture() -> ImageFixture {
    ImageFixture::build(
        "example.com/app:1",
        &platforms(&["linux/amd64", "linux/arm64"]),
        2,
    )
    .unwrap()
}

fn render_labels(out: &mut String, l: &Labels) {
    for (k, v) in l {
        let _ = writeln!(out, "    {k} = {v}");
    }
}

/// Why the fixture is right:
/// - every blob's digest is the sha256 of its bytes and its size their length (asserted);
/// - the index lists one manifest per platform with that manifest's digest, size and platform,
///   media type application/vnd.oci.image.manifest.v1+json (asserted from the JSON);
/// - each manifest names its config (`application/vnd.oci.image.config.v1+json`) and its layers
///   (`…layer.v1.tar+gzip`) by digest and size (asserted);
/// - the labels are images.ChildGCLabels as SetChildrenMappedLabels numbers them: the index gets
///   `gc.ref.content.m.0`, `m.1` in manifest order; a manifest gets `gc.ref.content.config` for the
///   config and `l.0`, `l.1` for the layers (config first, then layers, as ChildrenHandler returns
///   them); configs and layers have no children, so no labels;
/// - the config's rootfs.diff_ids are the layers' "uncompressed" digests (what unpack records).
///
/// The snapshot then pins the exact JSON bytes (oci-spec's serialization, hence the digests).
#[test]
fn fixture_image_blobs_and_labels() {
    let f = fixture();
    let mut out = String::new();
    for b in f.blobs() {
        assert_eq!(Digest::of(&b.data).as_str(), b.digest());
        assert_eq!(b.descriptor.size as usize, b.data.len());
    }
    let index: serde_json::Value = serde_json::from_slice(&f.index.data).unwrap();
    for (i, p) in f.platforms.iter().enumerate() {
        let m = &index["manifests"][i];
        assert_eq!(m["digest"], p.manifest.digest());
        assert_eq!(m["size"], p.manifest.data.len());
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let (os, arch) = p.platform.split_once('/').unwrap();
        assert_eq!(m["platform"]["os"], os);
        assert_eq!(m["platform"]["architecture"], arch);
        assert_eq!(
            f.index.child_labels[&format!("containerd.io/gc.ref.content.m.{i}")],
            p.manifest.digest()
        );
        let man: serde_json::Value = serde_json::from_slice(&p.manifest.data).unwrap();
        assert_eq!(man["config"]["digest"], p.config.digest());
        assert_eq!(
            man["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        for (n, l) in p.layers.iter().enumerate() {
            assert_eq!(man["layers"][n]["digest"], l.digest());
            assert_eq!(
                p.manifest.child_labels[&format!("containerd.io/gc.ref.content.l.{n}")],
                l.digest()
            );
        }
        assert_eq!(
            p.manifest.child_labels["containerd.io/gc.ref.content.config"],
            p.config.digest()
        );
        assert!(p.config.child_labels.is_empty());
    }
    for b in f.blobs() {
        let _ = writeln!(out, "{} {} size={}", b.role, b.digest(), b.data.len());
        let _ = writeln!(out, "  media type {}", b.descriptor.media_type);
        let text = String::from_utf8(b.data.to_vec()).unwrap();
        let shown = if text.starts_with('{') {
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
                .unwrap()
        } else {
            text.trim_end().to_string()
        };
        for line in shown.lines() {
            let _ = writeln!(out, "  | {line}");
        }
        if !b.child_labels.is_empty() {
            let _ = writeln!(out, "  labels set by pull:");
            render_labels(&mut out, &b.child_labels);
        }
    }
    insta::assert_snapshot!("fixture_image", out);
}

/// Why the reduced indexes are right (images/converter/default.go convertIndex, v1.6.20):
/// - keeping one platform drops the other manifest's descriptor and keeps the kept descriptor
///   byte for byte (digest, size, platform) — kept manifests are not rewritten;
/// - ClearGCLabels removes every `containerd.io/gc.ref.content*` label whose value is the dropped
///   digest, so the dropped manifest's `m.<i>` label is gone;
/// - the kept manifest keeps its ORIGINAL key: convertIndex writes `labels[m.<i>]` only for a
///   manifest that was itself converted, so keeping arm64 (index 1) leaves `m.1`, not `m.0`;
/// - the reduced index's digest is the sha256 of its bytes (asserted) and differs per kept set.
#[test]
fn converter_reduced_indexes_and_labels() {
    let f = fixture();
    let mut out = String::new();
    for keep in [["linux/amd64"], ["linux/arm64"]] {
        let (json, labels) = reduce_index(&f.index.data, &f.index.child_labels, &platforms(&keep))
            .unwrap()
            .expect("one platform is dropped");
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let kept = f.platform(keep[0]).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(v["manifests"][0]["digest"], kept.manifest.digest());
        assert_eq!(labels.len(), 1);
        assert_eq!(labels.values().next().unwrap(), kept.manifest.digest());
        let _ = writeln!(
            out,
            "keep {keep:?}: {} size={}",
            Digest::of(&json),
            json.len()
        );
        for line in serde_json::to_string_pretty(&v).unwrap().lines() {
            let _ = writeln!(out, "  | {line}");
        }
        let _ = writeln!(out, "  labels:");
        render_labels(&mut out, &labels);
    }
    insta::assert_snapshot!("converter_reduced_indexes", out);
}

/// `image.convert` through `pushrace apply`: pull both platforms, convert to a reduced dst.
/// Why the final state is right:
/// - results: both entries ok;
/// - images: the source still targets the original index; the dst (Delete + Create) targets the
///   reduced index with the source's (empty) labels and the index media type;
/// - content: the 9 pulled blobs with pull's labels (index m.0/m.1, manifests config/l.0/l.1,
///   layers containerd.io/uncompressed), plus the reduced index labelled `m.0` only;
/// - leases: none — pull's and the converter's leases were deleted (without sync) on return;
/// - no GC ran, so nothing was collected; blobs = the 10 digests.
#[test]
fn convert_through_apply_final_state() {
    let ops = opsfile::parse(
        "convert.toml",
        r#"
containerd = "1.6"
[[op]]
op = "image.pull"
ref = "example.com/app:1"
layers = 2
[[op]]
op = "image.convert"
src = "example.com/app:1"
dst = "example.com/app:1-reduced"
platforms = ["linux/amd64"]
"#,
    )
    .unwrap();
    let (store, results) = ops.run();
    let json = opsfile::to_json(&results, &store.state());
    let ns = &json["state"]["namespaces"]["default"];
    assert_eq!(ns["content"].as_object().unwrap().len(), 10);
    assert!(ns["leases"].as_object().unwrap().is_empty());
    assert_eq!(json["state"]["blobs"].as_array().unwrap().len(), 10);
    assert_eq!(store.scheduler().collections, 0);
    let reduced =
        pushrace_models::converter::reduced_index_of(&fixture(), &platforms(&["linux/amd64"]))
            .unwrap();
    assert_eq!(
        ns["images"]["example.com/app:1-reduced"]["target"],
        reduced.as_str()
    );
    assert_eq!(
        ns["images"]["example.com/app:1"]["target"],
        fixture().index.digest()
    );
    insta::assert_json_snapshot!("convert_through_apply", json);
}
