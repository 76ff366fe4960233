//! `pushrace apply --backend containerd` and `pushrace diff` end to end. With the `containerd`
//! feature these start real private daemons (and fail, with the install hint, when containerd is
//! missing); without it they check the "rebuild with --features containerd" error.

use std::process::Command;

fn pushrace(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args(args)
        .output()
        .expect("run pushrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_ops(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pushrace-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ops.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Everything the backend maps: both write styles, label edges, a dangling image target, a sync
/// image delete, an expiring lease past its expiry after clock.advance, a pull and a convert.
const OPS: &str = r#"
containerd = "1.6"
[[op]]
op = "content.write"
data = "child"
as = "child"
[[op]]
op = "content.write"
data = "parent"
style = "commit"
labels = { "containerd.io/gc.ref.content.m.0" = "@child", "containerd.io/gc.root" = "x" }
[[op]]
op = "lease.create"
id = "short"
expire = "1h"
[[op]]
op = "content.write"
data = "leased"
lease = "short"
[[op]]
op = "lease.create"
id = "long"
expire = "24h"
flat = true
[[op]]
op = "content.write"
data = "kept"
lease = "long"
[[op]]
op = "image.create"
name = "example.com/dangling:1"
target = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
[[op]]
op = "image.pull"
ref = "example.com/app:1"
layers = 1
[[op]]
op = "image.convert"
src = "example.com/app:1"
dst = "example.com/app:1-amd64"
platforms = ["linux/amd64"]
[[op]]
op = "clock.advance"
by = "2h"
[[op]]
op = "image.delete"
name = "missing"
sync = true
[[op]]
op = "image.delete"
name = "example.com/dangling:1"
sync = true
[[op]]
op = "content.info"
digest = "@child"
"#;

#[cfg(not(feature = "containerd"))]
#[test]
fn containerd_backend_needs_the_feature() {
    let p = write_ops("nofeature", OPS);
    let p = p.to_str().unwrap();
    let (code, _, err) = pushrace(&["apply", p, "--backend", "containerd"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--features containerd"), "{err}");
    let (code, _, err) = pushrace(&["diff", p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--features containerd"), "{err}");
}

#[cfg(feature = "containerd")]
mod real {
    use super::*;

    #[test]
    fn apply_on_containerd_prints_the_same_json_and_text_as_the_model() {
        let p = write_ops("same", OPS);
        let p = p.to_str().unwrap();
        // --hour-ms 200: the 2 h advance sleeps 0.4 s.
        let (mc, model, _) = pushrace(&["apply", p, "--json"]);
        let (dc, daemon, err) = pushrace(&[
            "apply",
            p,
            "--json",
            "--backend",
            "containerd",
            "--hour-ms",
            "200",
        ]);
        assert_eq!((mc, dc), (0, 0), "{err}");
        assert_eq!(model, daemon, "stderr: {err}");
        // the run is not trivial: the short lease and its content went at the sync delete
        let v: serde_json::Value = serde_json::from_str(&daemon).unwrap();
        let leases = &v["state"]["namespaces"]["default"]["leases"];
        assert!(
            leases.get("short").is_none() && leases.get("long").is_some(),
            "{v}"
        );
        assert_eq!(
            leases["long"]["labels"]["containerd.io/gc.expire"],
            "2025-01-02T00:00:00Z"
        );
        let (mc, model, _) = pushrace(&["apply", p]);
        let (dc, daemon, err) =
            pushrace(&["apply", p, "--backend", "containerd", "--hour-ms", "200"]);
        assert_eq!((mc, dc), (0, 0), "{err}");
        assert_eq!(model, daemon);
    }

    #[test]
    fn diff_exits_0_when_model_and_daemon_agree() {
        let p = write_ops("agree", OPS);
        let (code, out, err) = pushrace(&["diff", p.to_str().unwrap(), "--hour-ms", "200"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("no differences"), "{out}");
    }

    /// 2.0 semantics collect an image whose gc.expire passed; a 1.6 daemon keeps it: a real
    /// difference, which diff must report with exit 1.
    #[test]
    fn diff_exits_1_and_names_each_difference() {
        let p = write_ops(
            "differ",
            r#"
containerd = "2.0"
[[op]]
op = "content.write"
data = "x"
as = "x"
[[op]]
op = "image.create"
name = "example.com/expired:1"
target = "@x"
labels = { "containerd.io/gc.expire" = "2000-01-01T00:00:00Z" }
[[op]]
op = "gc.run"
"#,
        );
        let (code, out, err) = pushrace(&["diff", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains("state.namespaces.default: model absent, daemon {"),
            "{out}"
        );
        assert!(out.contains("only in the daemon"), "{out}");
    }

    #[test]
    fn diff_exits_2_on_bad_input() {
        let p = write_ops("bad", "[[op]]\nop = \"content.bogus\"\n");
        let (code, _, err) = pushrace(&["diff", p.to_str().unwrap()]);
        assert_eq!(code, 2);
        assert!(err.contains("unknown operation"), "{err}");
    }
}
