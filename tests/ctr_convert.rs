//! The model's converter against containerd's own: the same image is pulled into the model and into
//! a fresh private containerd 1.6.20, then reduced to platforms by the model's `image.convert` and by
//! `ctr images convert --platform …`, which runs containerd's Go converter (images/converter,
//! platforms.Ordered matching) in-process. The two final states must be identical: the new index
//! blobs byte for byte (so their digests), their `gc.ref.content.m.<i>` labels, the images and what
//! the converters' leases left behind.
//!
//! `pushrace diff` cannot check this: there the daemon side runs the model's own converter program
//! over gRPC. Here nothing of ours runs on the daemon side except the pull and the state dump.

#![cfg(feature = "containerd")]

use pushrace_daemon::Daemon;
use std::process::Command;

const SRC: &str = "a.io/x:1";
const PULL: &str = r#"
[[op]]
op = "image.pull"
ref = "a.io/x:1"
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
layers = 2
"#;

/// (src, dst, platform specifiers): canonical names, and names containerd normalises
/// (platforms/database.go: arm64/v8 is arm64, arm alone is arm/v7, x86_64 is amd64). The last one
/// converts in place (dst == src: an image Update instead of Delete + Create). Keeping nothing makes
/// an index whose `manifests` is JSON `null`, which converting again must read.
const CONVERSIONS: &[(&str, &str, &[&str])] = &[
    (SRC, "a.io/x:1-amd", &["linux/amd64"]),
    (SRC, "a.io/x:1-arm64v8", &["linux/arm64/v8"]),
    (SRC, "a.io/x:1-two", &["linux/arm/v7", "linux/arm64"]),
    (SRC, "a.io/x:1-arm", &["linux/arm"]),
    (SRC, "a.io/x:1-x86", &["linux/x86_64"]),
    (SRC, "a.io/x:1-none", &["linux/s390x"]),
    ("a.io/x:1-none", "a.io/x:1-none-again", &["linux/amd64"]),
    (SRC, SRC, &["linux/arm64", "linux/amd64"]),
];

fn pushrace(args: &[&str], ops: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args(args)
        .arg("--json")
        .arg(ops)
        .output()
        .expect("run pushrace");
    assert!(
        out.status.success(),
        "pushrace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["ok"], true, "pushrace {args:?}: {r}");
    }
    v
}

#[test]
fn model_converter_matches_ctr_images_convert() {
    let dir = std::env::temp_dir().join(format!("pushrace-ctr-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pull = dir.join("pull.toml");
    std::fs::write(&pull, format!("containerd = \"1.6\"\n{PULL}")).unwrap();
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "containerd = \"1.6\"\n").unwrap();
    let mut model_ops = format!("containerd = \"1.6\"\n{PULL}");
    for (src, dst, platforms) in CONVERSIONS {
        model_ops.push_str(&format!(
            "[[op]]\nop = \"image.convert\"\nsrc = \"{src}\"\ndst = \"{dst}\"\nplatforms = {platforms:?}\n"
        ));
    }
    let model_file = dir.join("model.toml");
    std::fs::write(&model_file, &model_ops).unwrap();

    let daemon = Daemon::start().expect("containerd starts (ci/run installs it)");
    let sock = daemon.socket().display().to_string();
    let root = daemon.root().display().to_string();
    let remote = [
        "apply",
        "--backend",
        "containerd",
        "--address",
        &sock,
        "--root",
        &root,
    ];
    pushrace(&remote, &pull);
    for (src, dst, platforms) in CONVERSIONS {
        let mut ctr = Command::new("ctr");
        ctr.args([
            "--address",
            &sock,
            "--namespace",
            "default",
            "images",
            "convert",
        ]);
        for p in *platforms {
            ctr.args(["--platform", p]);
        }
        let out = ctr.args([src, dst]).output().unwrap_or_else(|e| {
            panic!("cannot run ctr ({e}): it ships with containerd, which ci/run installs")
        });
        assert!(
            out.status.success(),
            "ctr images convert {platforms:?} {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let on_daemon = pushrace(&remote, &empty)["state"].clone();
    let on_model = pushrace(&["apply"], &model_file)["state"].clone();
    assert_eq!(
        serde_json::to_string_pretty(&on_model).unwrap(),
        serde_json::to_string_pretty(&on_daemon).unwrap(),
        "model (left) and ctr images convert (right) differ"
    );
    // The comparison is not vacuous. Reasoned from containerd's matching, not read off the output:
    // x86_64 normalises to amd64, so both reduce to the same index; arm64/v8, arm (= arm/v7), the
    // pair and the platform nobody has each keep a different set, so each is a different index.
    let target = |name: &str| on_daemon["namespaces"]["default"]["images"][name]["target"].clone();
    assert_eq!(target("a.io/x:1-x86"), target("a.io/x:1-amd"));
    let distinct = [
        "a.io/x:1-amd",
        "a.io/x:1-arm64v8",
        "a.io/x:1-two",
        "a.io/x:1-arm",
        "a.io/x:1-none",
    ];
    let targets: std::collections::BTreeSet<String> =
        distinct.iter().map(|n| target(n).to_string()).collect();
    assert_eq!(targets.len(), distinct.len(), "{targets:?}");
    std::fs::remove_dir_all(&dir).ok();
}
