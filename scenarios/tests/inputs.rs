//! Regressions for issue 14's input findings (items 4, 5, 7, 9), each from its reproducer:
//! layouts (size and count limits, duplicate platforms, symlinks and FIFOs, paths out of the
//! scenario's directory), triage's `--out` (no overwrite without force, no symlink followed),
//! logs pasted from a CI viewer's table or `gh run view --log`, and size limits in files.

use pushrace_models::oci::ImageFixture;
use pushrace_scenarios::layout;
use pushrace_scenarios::triage::{self, log, Input};
use std::path::{Path, PathBuf};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pushrace-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture() -> ImageFixture {
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    ImageFixture::build("example.com/app:1", &platforms, 1).unwrap()
}

fn blob_path(d: &Path, digest: &str) -> PathBuf {
    d.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// A layout of `fixture()` whose index blob is edited by `edit` (and re-addressed).
fn layout_with_index(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let fx = fixture();
    let d = tmp_dir(name);
    layout::write(&fx, &d).unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(&fx.index.data).unwrap();
    edit(&mut index);
    let data = serde_json::to_vec(&index).unwrap();
    let digest = pushrace_models::Digest::of(&data).to_string();
    std::fs::write(blob_path(&d, &digest), &data).unwrap();
    std::fs::remove_file(blob_path(&d, fx.index.digest())).unwrap();
    let ip = d.join("index.json");
    let mut top: serde_json::Value = serde_json::from_slice(&std::fs::read(&ip).unwrap()).unwrap();
    top["manifests"][0]["digest"] = digest.into();
    top["manifests"][0]["size"] = data.len().into();
    std::fs::write(ip, serde_json::to_vec(&top).unwrap()).unwrap();
    d
}

fn load_err(d: &Path) -> String {
    layout::load(d)
        .and_then(|l| l.image("example.com/app:1"))
        .expect_err("refused")
        .to_string()
}

/// Item 9: duplicate platforms in a layout's index are refused, as in a scenario file.
#[test]
fn layout_index_with_a_duplicate_platform_is_refused() {
    let d = layout_with_index("dup", |i| {
        let m = i["manifests"][0].clone();
        i["manifests"].as_array_mut().unwrap().push(m);
    });
    let e = load_err(&d);
    assert!(
        e.contains("manifests 0 and 2 are both \"linux/amd64\""),
        "{e}"
    );
}

/// BuildKit's attestation manifests (one per platform, each `unknown/unknown`) may repeat: real
/// multi-platform images carry them, and no push selects them by platform.
#[test]
fn layout_index_with_several_attestation_manifests_loads() {
    let d = layout_with_index("attest", |i| {
        let mut m = i["manifests"][0].clone();
        m["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
        let list = i["manifests"].as_array_mut().unwrap();
        list.push(m.clone());
        list.push(m);
    });
    let fx = layout::load(&d)
        .and_then(|l| l.image("example.com/app:1"))
        .expect("loads");
    let unknown = fx
        .platforms
        .iter()
        .filter(|p| p.platform == "unknown/unknown");
    assert_eq!(unknown.count(), 2);
}

/// Item 4: an index listing one manifest many times (200,000 in the report) is refused by count.
#[test]
fn layout_index_listing_a_manifest_many_times_is_refused() {
    let d = layout_with_index("many", |i| {
        let m = i["manifests"][0].clone();
        i["manifests"] = serde_json::Value::Array(vec![m; 65]);
    });
    let e = load_err(&d);
    assert!(e.contains("65 manifests: at most 64"), "{e}");
}

/// Item 5: a blob symlinked out of the layout (to /etc/passwd) is not read.
#[cfg(unix)]
#[test]
fn a_blob_symlinked_out_of_the_layout_is_refused() {
    let fx = fixture();
    let d = tmp_dir("symlink-blob");
    layout::write(&fx, &d).unwrap();
    let p = blob_path(&d, fx.platforms[0].layers[0].digest());
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("a symlink out of the layout (to /etc/passwd)"),
        "{e}"
    );
}

/// Item 5: a FIFO as `oci-layout`, `index.json` or a blob is refused instead of hanging.
#[cfg(unix)]
#[test]
fn fifos_in_a_layout_are_refused() {
    let fx = fixture();
    let targets = [
        ("oci-layout", PathBuf::from("oci-layout")),
        ("index", PathBuf::from("index.json")),
        (
            "blob",
            blob_path(Path::new(""), fx.platforms[0].config.digest()),
        ),
    ];
    for (name, rel) in targets {
        let d = tmp_dir(&format!("fifo-{name}"));
        layout::write(&fx, &d).unwrap();
        let p = d.join(rel);
        std::fs::remove_file(&p).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        assert!(made.is_ok_and(|s| s.success()));
        let e = load_err(&d);
        assert!(e.contains("not a regular file (a FIFO)"), "{name}: {e}");
    }
}

/// Item 5: `layout = "../../../../etc"` may not climb out of the scenario's directory, and an
/// absolute path must be its own real path (no symlink, no `..`).
#[cfg(unix)]
#[test]
fn scenario_layout_paths_stay_in_the_scenario_directory() {
    let d = tmp_dir("layout-paths");
    layout::write(&fixture(), &d.join("app-oci")).unwrap();
    let scenario = |layout: &str| {
        format!("[[image]]\nref = \"example.com/app:1\"\nlayout = {layout:?}\n[[actor]]\nname = \"p\"\nprogram = \"nerdctl.push\"\nref = \"example.com/app:1\"\n")
    };
    let file = d.join("s.toml").display().to_string();
    let parse = |l: &str| pushrace_scenarios::scenario::parse(&file, &scenario(l));
    assert!(parse("app-oci").is_ok());
    let e = parse("../../../../etc").unwrap_err().to_string();
    assert!(
        e.contains("key `layout`") && e.contains("leads out of the scenario's directory"),
        "{e}"
    );
    std::os::unix::fs::symlink(d.join("app-oci"), d.join("link")).unwrap();
    let e = parse(&d.join("link").display().to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be written out"), "{e}");
    let real = std::fs::canonicalize(d.join("app-oci")).unwrap();
    assert!(parse(&real.display().to_string()).is_ok());
}

/// Item 4: an image with more platforms than the limit (10,000 ran until killed) is refused.
#[test]
fn too_many_platforms_in_a_scenario_are_refused() {
    let plats: Vec<String> = (0..65).map(|i| format!("\"linux/a{i}\"")).collect();
    let text = format!(
        "[[image]]\nref = \"a:1\"\nplatforms = [{}]\n[[actor]]\nname = \"p\"\nprogram = \"nerdctl.push\"\nref = \"a:1\"\nall_platforms = true\n",
        plats.join(", ")
    );
    let e = pushrace_scenarios::scenario::parse("s.toml", &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.toml:3: key `platforms`: 65 platforms: at most 64"
    );
}

/// Item 4: an ops actor with more operations than the limit (20,000 ran until killed).
#[test]
fn too_many_ops_in_an_actor_are_refused() {
    let ops: Vec<String> = (0..1001)
        .map(|i| format!("{{ op = \"content.write\", data = \"d{i}\" }}"))
        .collect();
    let text = format!(
        "[[image]]\nref = \"a:1\"\n[[actor]]\nname = \"w\"\nprogram = \"ops\"\nops = [{}]\n",
        ops.join(", ")
    );
    let e = pushrace_scenarios::scenario::parse("s.toml", &text).unwrap_err();
    assert!(
        e.to_string()
            .contains("key `ops`: key `op`: 1001 operations: at most 1000"),
        "{e}"
    );
}

/// Item 4: `[check] schedule` has the same total cap as `--schedule`.
#[test]
fn a_huge_check_schedule_is_refused() {
    let text = format!(
        "[[image]]\nref = \"a:1\"\n[[actor]]\nname = \"p\"\nprogram = \"nerdctl.push\"\nref = \"a:1\"\n[check]\nschedule = \"s1:1:{}\"\n",
        "a10000000".repeat(40)
    );
    let e = pushrace_scenarios::scenario::parse("s.toml", &text).unwrap_err();
    assert!(
        e.to_string().contains("key `schedule`")
            && e.to_string().contains("longer than 1000000 steps"),
        "{e}"
    );
}

const WRAPPED: &str = "time=\"2025-08-19T10:01:02Z\" level=fatal msg=\"content digest sha256:0123456789abcdef0123456789abcdef0123 |\nTue, 19 Aug 2025 10:01:02 GMT         |         | 456789abcdef0123456789abcdef: not found\"                    |\n";

/// Item 7: the table-wrapped log gives its fact, and says which layout it was.
#[test]
fn a_log_pasted_from_a_viewer_table_is_unwrapped() {
    let f = log::parse(WRAPPED);
    assert!(f.formats.contains(&"table-wrapped"), "{:?}", f.formats);
    let digests: Vec<_> = f.failures().map(|e| (e.line, e.fact.clone())).collect();
    assert_eq!(digests.len(), 1, "{f:?}");
    assert_eq!(digests[0].0, 1);
    let want = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(matches!(&digests[0].1, log::Fact::MissingDigest { digest, .. } if digest == want));
}

/// Item 7: `gh run view --log` output (job, step and timestamp before each line).
#[test]
fn gh_run_view_log_is_read() {
    let d = "sha256:83bf22e8705adaaaf38634266c57a41fb2fb9867f61bf942e13b8432b2d7cda4";
    let text = format!(
        "build\tRun tests\t2025-08-19T10:01:01.1000000Z time=\"2025-08-19T10:01:01Z\" level=info msg=\"pushing as a reduced-platform image (application/vnd.oci.image.index.v1+json, {d})\"\nbuild\tRun tests\t2025-08-19T10:01:02.1000000Z time=\"2025-08-19T10:01:02Z\" level=fatal msg=\"content digest {d}: not found\"\n"
    );
    let f = log::parse(&text);
    assert!(f.formats.contains(&"gh-run-view"), "{:?}", f.formats);
    assert_eq!(f.failures().count(), 1);
    assert_eq!(f.events.len(), 2);
}

fn triage_into(out: &Path, force: bool) -> Result<triage::Triage, String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/triage_logs/logrus_text_headline.log"
    ))
    .unwrap();
    triage::triage(&Input {
        log_name: "ci.log",
        log_text: &text,
        image: None,
        variant: None,
        out_dir: out,
        force,
    })
}

/// Item 5: `--out` never overwrites without force, never follows a symlink, and a regular file
/// as `--out` says what is wrong.
#[cfg(unix)]
#[test]
fn triage_out_never_overwrites_nor_follows_a_symlink() {
    let d = tmp_dir("triage-out");
    let first = triage_into(&d, false).unwrap();
    let path = first.scenario.as_ref().unwrap().path.clone();
    let e = triage_into(&d, false).err().unwrap();
    assert!(
        e.contains("already exists; not overwritten (--force replaces it"),
        "{e}"
    );
    // A symlink there: refused, and with --force the link is replaced, not its target.
    let target = d.join("target.txt");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let e = triage_into(&d, false).err().unwrap();
    assert!(e.contains("a symlink already exists"), "{e}");
    triage_into(&d, true).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(!std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    // --out naming a regular file.
    let e = triage_into(&target, false).err().unwrap();
    assert!(e.contains("not a directory (it is a file)"), "{e}");
}

/// Item 4: a push listing more platforms than triage reproduces (24 never finished) is refused.
#[test]
fn triage_of_a_push_with_too_many_platforms_is_refused() {
    let plats: Vec<String> = (0..17).map(|i| format!("linux/a{i}")).collect();
    let d = "sha256:83bf22e8705adaaaf38634266c57a41fb2fb9867f61bf942e13b8432b2d7cda4";
    let text = format!(
        "+ nerdctl push --platform={} example.com/app:1\ntime=\"x\" level=info msg=\"pushing as a reduced-platform image (application/vnd.oci.image.index.v1+json, {d})\"\ntime=\"x\" level=fatal msg=\"content digest {d}: not found\"\n",
        plats.join(",")
    );
    let out = tmp_dir("triage-platforms");
    let e = triage::triage(&Input {
        log_name: "ci.log",
        log_text: &text,
        image: None,
        variant: None,
        out_dir: &out,
        force: false,
    })
    .err()
    .unwrap();
    assert!(
        e.contains("the push lists 17 platforms") && e.contains("at most 16"),
        "{e}"
    );
}

// Item 2 for scenario files: each error at the line of its own key.

fn scenario_err(text: &str) -> String {
    match pushrace_scenarios::scenario::parse("s.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const PUSH: &str = "[[actor]]\nname = \"p\"\nprogram = \"nerdctl.push\"\nref = \"a:1\"\n";

/// `namespace = ""` on an image was blamed on `ref` ("setting up the image failed").
#[test]
fn an_empty_image_namespace_is_blamed_on_its_own_key() {
    let e = scenario_err(&format!(
        "[[image]]\nref = \"a:1\"\nnamespace = \"\"\n{PUSH}"
    ));
    assert_eq!(e, "s.toml:3: key `namespace`: must not be empty");
    let e = scenario_err(&format!(
        "[[image]]\nref = \"a:1\"\nnamespace = \"no spaces\"\n{PUSH}"
    ));
    assert!(
        e.starts_with("s.toml:3: key `namespace`: setting up the image failed"),
        "{e}"
    );
}

/// An ops actor's error names the line of the faulty op key, not of `ops`.
#[test]
fn an_ops_actor_error_names_the_line_of_the_faulty_key() {
    let text = "[[image]]\nref = \"a:1\"\n[[actor]]\nname = \"j\"\nprogram = \"ops\"\nops = [\n  { op = \"gc.run\" },\n  { op = \"image.delete\",\n    nmae = \"a:1\" },\n]\n";
    let e = scenario_err(text);
    assert!(
        e.starts_with("s.toml:9: key `ops`: op 1: key `nmae`: unknown key for image.delete"),
        "{e}"
    );
}

/// One range of layers for both formats (item 1).
#[test]
fn image_layers_share_the_ops_file_range() {
    let e = scenario_err(&format!("[[image]]\nref = \"a:1\"\nlayers = 17\n{PUSH}"));
    assert_eq!(
        e,
        "s.toml:3: key `layers`: 17: expected 0 to 16 layers per platform"
    );
}
