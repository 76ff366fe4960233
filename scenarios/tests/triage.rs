//! `pushrace triage`: real log shapes -> families (insta snapshots, each argued), the round trip
//! explore -> rendered nerdctl log -> triage -> same family and shrunk length, OCI image layouts
//! (round trip, every kind of bad layout, `layout = "dir"` in a scenario), and no panics on any
//! log text or layout contents.

use proptest::prelude::*;
use pushrace_models::oci::ImageFixture;
use pushrace_scenarios::explore::{explore, Options};
use pushrace_scenarios::layout;
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use pushrace_scenarios::triage::{self, classify::Family, log, Input};
use std::path::{Path, PathBuf};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pushrace-triage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(name: &str, text: &str, image: Option<&Path>, variant: Option<Variant>) -> triage::Triage {
    let out = tmp_dir(&format!("out-{name}"));
    let mut t = triage::triage(&Input {
        log_name: name,
        log_text: text,
        image,
        variant,
        out_dir: &out,
        force: false,
    })
    .unwrap();
    t.run_lease_held();
    t
}

/// What a snapshot records: the classification text (deterministic: no paths, no times) and the
/// reproduction's outcome.
fn summary(t: &triage::Triage) -> String {
    let mut s = t.header_text();
    if let Some(v) = &t.verdict {
        s.push_str(&format!(
            "\nreproduced: {:?}; shrunk steps: {:?}; lease-held holds: {:?}\n",
            t.reproduced(),
            v.violation.as_ref().map(|x| x.steps_after),
            t.lease_held.as_ref().map(|l| l.holds())
        ));
    }
    s
}

fn log_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/triage_logs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn snapshot(name: &str, family: Family) {
    let t = run(name, &log_file(name), None, None);
    assert_eq!(t.classification.family, family, "{}", summary(&t));
    insta::assert_snapshot!(name, summary(&t));
}

/// The headline lines (logrus text with timestamps, progress-bar noise, a shell trace of
/// the push). The fatal digest equals the digest of the info line, whose media type is a Docker
/// manifest list: the reduced index the push wrote itself went missing -> tmp-reduced-collected.
/// No version printed: v2.0.5 is assumed and the two-tags shape (#4470) reproduces it.
#[test]
fn logrus_text_headline_is_tmp_reduced_collected() {
    snapshot("logrus_text_headline.log", Family::TmpReducedCollected);
}

/// logrus on a terminal (`INFO[0000]`, `FATA[0001]`) with ANSI colours and CRLF; the error is
/// wrapped in `failed to copy:` (PushContent reading the blob to upload it). The digest is the
/// info line's reduced index -> tmp-reduced-collected; nerdctl 0.17.1 -> v0.17, the
/// background-GC shape (#855 before #866).
#[test]
fn logrus_tty_ansi_crlf_is_tmp_reduced_collected_v0_17() {
    snapshot("logrus_tty_ansi_crlf.log", Family::TmpReducedCollected);
}

/// JSON logs (`--log-format=json`), debug noise, `failed to copy:` wrapping: same digest as the
/// info line -> tmp-reduced-collected.
#[test]
fn json_failed_to_copy_is_tmp_reduced_collected() {
    snapshot("json_failed_to_copy.log", Family::TmpReducedCollected);
}

/// Two parallel subtests interleaved (=== CONT headers, `command.go:112:` prefixes, gotest.tools'
/// `Stderr:` block). The other subtest logged a different reduced index (another image); the
/// failing one's info line names the missing digest -> tmp-reduced-collected; the `nerdctl
/// version` block says v2.0.4, so the same-ref shape under v2.0.4.
#[test]
fn go_test_parallel_is_tmp_reduced_collected_v2_0_4() {
    snapshot("go_test_parallel.log", Family::TmpReducedCollected);
}

/// `FATA[0000] failed to create a tmp single-platform image "…": content digest …: not found`
/// (nerdctl 1.7.6, the form of #3248/#3415): the converter reads only the source image's
/// content, so source content was missing when the tmp image was created -> convert-time.
#[test]
fn logrus_tty_create_tmp_is_convert_time() {
    snapshot("logrus_tty_create_tmp.log", Family::ConvertTime);
}

/// GitHub Actions timestamps and a Go test prefix; the tmp image vanished while converting it
/// (`image "<tmp>": not found` inside `failed to create a tmp reduced-platform image … (platform=[…])`)
/// -> convert-time; the platforms come from the failure. The scenario declares `[check] message =
/// "failed to create a tmp"`, so the reduced index the same race also loses is skipped and the
/// log's own failure is reproduced (v2.0.5: the other push's opening synchronous delete removes the
/// shared tmp image between its create and the in-place conversion's `image.get`).
#[test]
fn gha_convert_image_not_found_is_convert_time() {
    snapshot("gha_convert_image_not_found.log", Family::ConvertTime);
}

/// `image "<ref>-tmp-reduced-platform": not found` outside the conversion is not a missing
/// digest; it is reported with its facts as unknown.
#[test]
fn tmp_image_gone_at_push_is_unknown() {
    snapshot("unknown_tmp_image_gone.log", Family::Unknown);
}

/// No failure line at all -> unknown, exit status 1.
#[test]
fn no_failure_is_unknown() {
    let t = run("none", &log_file("unknown_no_failure.log"), None, None);
    assert_eq!(t.classification.family, Family::Unknown);
    assert_eq!(t.exit_code(), 1);
    assert!(t.scenario.is_none());
}

/// Explore a built-in scenario to its violation, print the failing push's log the way nerdctl
/// does (its info line with the reduced index, its fatal line with the error), triage that log:
/// the family is tmp-reduced-collected and the reproducing schedule has the same shrunk length.
#[test]
fn round_trip_explore_render_triage() {
    for (name, variant, version) in [
        ("same-ref", Variant::V0_18, "0.18.0"),
        ("two-tags", Variant::V2_0_5, "2.0.5"),
    ] {
        let s = library::builtin(name).unwrap().unwrap();
        let v = explore(&s, &Options::for_scenario(&s));
        let x = v.violation.expect("the built-in violates");
        let digest = x.digest.clone().unwrap();
        let actor = s
            .actors
            .iter()
            .find(|a| Some(&a.name) == x.actor.as_ref())
            .unwrap();
        let pushrace_scenarios::scenario::ProgramSpec::Push { reference, .. } = &actor.program
        else {
            panic!("a push fails")
        };
        // The reference nerdctl pushes is the image the scenario declares (a tag is another name).
        let image_ref = &s.images[0].reference;
        let log = format!(
            "$ nerdctl --version\nnerdctl version {version}\n$ nerdctl push {reference}\n\
             time=\"2025-01-01T00:00:01Z\" level=info msg=\"pushing as a reduced-platform image (application/vnd.oci.image.index.v1+json, {digest})\"\n\
             time=\"2025-01-01T00:00:02Z\" level=fatal msg={:?}\n",
            x.message
        );
        let t = run(name, &log, None, None);
        assert_eq!(
            t.classification.family,
            Family::TmpReducedCollected,
            "{}",
            summary(&t)
        );
        assert_eq!(t.classification.variant, variant);
        let y = t
            .verdict
            .as_ref()
            .unwrap()
            .violation
            .as_ref()
            .expect("reproduced");
        assert_eq!(t.reproduced(), Some(true));
        assert_eq!(y.steps_after, x.steps_after, "{name}: shrunk length");
        assert_eq!(y.role.map(|r| r.name()), Some("reduced-index"));
        let _ = image_ref;
    }
}

fn fixture() -> ImageFixture {
    ImageFixture::build(
        "example.com/app:1",
        &["linux/amd64".to_string(), "linux/arm64".to_string()],
        2,
    )
    .unwrap()
}

#[test]
fn layout_written_from_a_fixture_loads_back_identical() {
    let fx = fixture();
    let d = tmp_dir("layout-roundtrip");
    layout::write(&fx, &d).unwrap();
    let back = layout::load_fixture(&d, "example.com/app:1").unwrap();
    assert_eq!(back, fx);
    // By tag name too, and as the only entry under any name.
    assert_eq!(layout::load_fixture(&d, "other:9").unwrap().index, fx.index);
}

fn bad(name: &str, break_it: impl FnOnce(&Path, &ImageFixture)) -> String {
    let fx = fixture();
    let d = tmp_dir(&format!("bad-{name}"));
    layout::write(&fx, &d).unwrap();
    break_it(&d, &fx);
    layout::load(&d)
        .and_then(|l| l.image("example.com/app:1"))
        .expect_err("a bad layout is rejected")
        .to_string()
        .replace(&d.display().to_string(), "LAYOUT")
}

fn blob_path(d: &Path, digest: &str) -> PathBuf {
    d.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn bad_layouts_are_rejected_naming_the_file_and_the_problem() {
    let m = bad("missing-blob", |d, fx| {
        std::fs::remove_file(blob_path(d, fx.platforms[1].layers[0].digest())).unwrap()
    });
    assert!(
        m.starts_with("LAYOUT/blobs/sha256/") && m.contains(": missing (blob of layer 0 of"),
        "{m}"
    );

    let m = bad("mismatch", |d, fx| {
        let p = blob_path(d, fx.platforms[0].config.digest());
        let mut b = std::fs::read(&p).unwrap();
        b[0] ^= 1;
        std::fs::write(&p, b).unwrap()
    });
    assert!(
        m.contains("blobs/sha256/") && m.contains("digest mismatch: the content hashes to sha256:"),
        "{m}"
    );

    let m = bad("size", |d, fx| {
        let p = blob_path(d, fx.platforms[0].layers[1].digest());
        std::fs::write(&p, b"short").unwrap()
    });
    assert!(m.contains("size mismatch"), "{m}");

    let m = bad("media-type", |d, fx| {
        let p = d.join("index.json");
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            t.replace(&fx.index.descriptor.media_type, "application/x-unknown"),
        )
        .unwrap()
    });
    assert!(
        m.contains("unknown media type \"application/x-unknown\""),
        "{m}"
    );

    let m = bad("json-index", |d, _| {
        std::fs::write(d.join("index.json"), b"{\"manifests\": [").unwrap()
    });
    assert!(m.starts_with("LAYOUT/index.json: malformed JSON"), "{m}");

    // A manifest blob that is not JSON but has the digest its descriptor names: rewrite the
    // index to point at it.
    let m = bad("json-manifest", |d, fx| {
        let junk = b"not json".to_vec();
        let digest = pushrace_models::Digest::of(&junk).to_string();
        std::fs::write(blob_path(d, &digest), &junk).unwrap();
        let p = blob_path(d, fx.index.digest());
        std::fs::remove_file(&p).unwrap();
        let t = String::from_utf8(fx.index.data.to_vec())
            .unwrap()
            .replace(fx.platforms[0].manifest.digest(), &digest)
            .replacen(
                &format!("\"size\":{}", fx.platforms[0].manifest.descriptor.size),
                &format!("\"size\":{}", junk.len()),
                1,
            );
        let nd = pushrace_models::Digest::of(t.as_bytes()).to_string();
        std::fs::write(blob_path(d, &nd), &t).unwrap();
        let ip = d.join("index.json");
        let it = std::fs::read_to_string(&ip)
            .unwrap()
            .replace(fx.index.digest(), &nd)
            .replace(
                &format!("\"size\":{}", fx.index.descriptor.size),
                &format!("\"size\":{}", t.len()),
            );
        std::fs::write(ip, it).unwrap();
    });
    assert!(m.contains("malformed JSON for an image manifest"), "{m}");

    let m = bad("no-oci-layout", |d, _| {
        std::fs::remove_file(d.join("oci-layout")).unwrap()
    });
    assert!(m.starts_with("LAYOUT/oci-layout: missing"), "{m}");

    let m = bad("bad-oci-layout", |d, _| {
        std::fs::write(d.join("oci-layout"), b"{\"imageLayoutVersion\": 2}").unwrap()
    });
    assert!(
        m.starts_with("LAYOUT/oci-layout: no string `imageLayoutVersion`"),
        "{m}"
    );

    let m = bad("stray-blob", |d, _| {
        std::fs::write(blob_path(d, &format!("sha256:{}", "0".repeat(64))), b"x").unwrap()
    });
    assert!(m.contains("digest mismatch"), "{m}");
}

/// `[[image]] layout = "dir"` (relative to the scenario file) gives the same scenario as the
/// fixture it was written from: same-ref with the layout still violates, with the same digest.
#[test]
fn scenario_with_a_layout_fixture() {
    let d = tmp_dir("scenario-layout");
    layout::write(&fixture(), &d.join("app-oci")).unwrap();
    let builtin = library::builtin("same-ref").unwrap().unwrap();
    let text = std::fs::read_to_string(format!(
        "{}/corpus/same-ref.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace(
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[[actor]]",
        "layout = \"app-oci\"\n\n[[actor]]",
    );
    assert!(text.contains("layout = \"app-oci\""));
    let path = d.join("same-ref-layout.toml");
    std::fs::write(&path, &text).unwrap();
    let s = library::load(path.to_str().unwrap()).unwrap();
    // Same structure (layers differ: the corpus file uses the default of one layer per platform).
    assert_eq!(s.images[0].fixture.platforms.len(), 2);
    let v = explore(&s, &Options::for_scenario(&s))
        .violation
        .expect("violates");
    assert_eq!(v.role.map(|r| r.name()), Some("reduced-index"));
    let _ = builtin;
    // A missing layout names the key and the directory.
    let e = pushrace_scenarios::scenario::parse(
        path.to_str().unwrap(),
        &text.replace("app-oci", "nope"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("key `layout`") && e.to_string().contains("nope: not a directory"),
        "{e}"
    );
}

/// With `--image`, a missing manifest of a platform is named exactly and the family is
/// lazy-pull; the scenario is built from the layout (its real digests), with that platform not
/// fetched, and reproduces under v0.18.
#[test]
fn image_names_the_object_and_gives_lazy_pull() {
    let fx = fixture();
    let d = tmp_dir("lazy-image");
    layout::write(&fx, &d).unwrap();
    let m = fx.platforms[1].manifest.digest();
    let log = format!("nerdctl version 1.7.6\nFATA[0000] failed to create a tmp reduced-platform image \"example.com/app:1-tmp-reduced-platform\" (platform=[linux/amd64 linux/arm64]): content digest {m}: not found\n");
    let t = run("lazy", &log, Some(&d), None);
    assert_eq!(t.classification.family, Family::LazyPull, "{}", summary(&t));
    let id = t.classification.identified.as_ref().unwrap();
    assert_eq!(id.what, "manifest of linux/arm64 of example.com/app:1");
    let v = t
        .verdict
        .as_ref()
        .unwrap()
        .violation
        .as_ref()
        .expect("reproduced");
    assert_eq!(
        v.digest.as_deref(),
        Some(m),
        "the real digest, from the layout"
    );
    assert_eq!(t.reproduced(), Some(true));
}

/// Docker media types in the info line are indexes too; a manifest type there (a single-platform
/// image) is not the reduced-index family.
#[test]
fn docker_and_oci_media_types() {
    let d = format!("sha256:{}", "ab".repeat(32));
    for (mt, family) in [
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            Family::TmpReducedCollected,
        ),
        (
            "application/vnd.oci.image.index.v1+json",
            Family::TmpReducedCollected,
        ),
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            Family::Unknown,
        ),
    ] {
        let text = format!("INFO[0000] pushing as a reduced-platform image ({mt}, {d})\nFATA[0000] content digest {d}: not found\n");
        let c = triage::classify::classify(&log::parse(&text), None, None);
        assert_eq!(c.family, family, "{mt}");
    }
}

fn log_line() -> impl Strategy<Value = String> {
    let d = "sha256:83bf22e8705adaaaf38634266c57a41fb2fb9867f61bf942e13b8432b2d7cda4";
    prop_oneof![
        any::<String>(),
        "[ -~\u{1b}\r\t\"\\\\{}=\\[\\]]{0,80}",
        Just(format!("level=info msg=\"pushing as a reduced-platform image (application/vnd.oci.image.index.v1+json, {d})\"")),
        Just(format!("FATA[0000] failed to create a tmp reduced-platform image \"x-tmp-reduced-platform\" (platform=[linux/amd64]): content digest {d}: not found")),
        Just("    push_test.go:12: nerdctl push --platform".to_string()),
        Just("{\"level\":\"fatal\",\"msg\":\"image \\\"".to_string()),
        Just("failed to create a tmp single-platform image \"".to_string()),
        Just("=== CONT  ".to_string()),
        Just("Client:\n Version:".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No log text panics the parser or the classifier (and a classified one builds a scenario
    /// that loads: triage returns Err only for bad layouts or an unwritable directory).
    #[test]
    fn no_log_text_panics(lines in proptest::collection::vec(log_line(), 0..8), cut in 0usize..400) {
        let text = lines.join("\n");
        let mut end = cut.min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        for t in [&text[..], &text[..end]] {
            let facts = log::parse(t);
            let c = triage::classify::classify(&facts, None, None);
            if c.family != Family::Unknown {
                let (s, _) = triage::scenario_text(&c, "log", None, None).unwrap();
                prop_assert!(pushrace_scenarios::scenario::parse("gen.toml", &s).is_ok(), "{}", s);
            }
        }
    }

    /// No layout contents panic the loader: any bytes in index.json, oci-layout or a blob.
    #[test]
    fn no_layout_contents_panic(which in 0usize..4, bytes in proptest::collection::vec(any::<u8>(), 0..200), json in "[\\[\\]{}\":,a-z0-9 ]{0,120}") {
        let fx = fixture();
        let d = tmp_dir("prop-layout");
        layout::write(&fx, &d).unwrap();
        let data = if which % 2 == 0 { bytes } else { json.into_bytes() };
        let target = match which {
            0 | 1 => d.join("index.json"),
            2 => d.join("oci-layout"),
            _ => blob_path(&d, fx.index.digest()),
        };
        std::fs::write(target, data).unwrap();
        let _ = layout::load(&d).and_then(|l| l.image("example.com/app:1"));
    }
}

// Issue 14 item 6: triage writes what its loader reads. Each log below made triage write a
// scenario its own loader refused (or, for the file name, a different valid scenario); the file
// written must load from disk and mean what the log said.

/// Triage of `log` named `name`; the scenario file it wrote, loaded back from disk.
fn written(
    name: &str,
    log: &str,
) -> (
    triage::Triage,
    pushrace_scenarios::scenario::Scenario,
    String,
) {
    let out = tmp_dir(&format!("item6-{}", name.len()));
    let t = triage::triage(&Input {
        log_name: name,
        log_text: log,
        image: None,
        variant: None,
        out_dir: &out,
        force: false,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let built = t
        .scenario
        .as_ref()
        .expect("a known family writes a scenario");
    let text = std::fs::read_to_string(&built.path).unwrap();
    let s = pushrace_scenarios::scenario::parse(&built.path.display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    (t, s, text)
}

fn pushes(s: &pushrace_scenarios::scenario::Scenario) -> Vec<(String, Vec<String>)> {
    use pushrace_scenarios::scenario::ProgramSpec;
    s.actors
        .iter()
        .filter_map(|a| match &a.program {
            ProgramSpec::Push {
                reference,
                platforms,
                ..
            } => Some((reference.clone(), platforms.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_platform_given_twice_is_pushed_once() {
    let log = log_file("logrus_text_headline.log").replace(
        " push 127.0.0.1",
        " push --platform=linux/amd64,linux/amd64 127.0.0.1",
    );
    let (t, s, _) = written("dup.log", &log);
    assert_eq!(t.classification.platforms, ["linux/amd64"]);
    for (_, platforms) in pushes(&s) {
        assert_eq!(platforms, ["linux/amd64"]);
    }
}

#[test]
fn a_del_in_the_ref_is_kept_in_the_scenario() {
    let odd = "127.0.0.1:5000/test\u{7f}push:1";
    let log = log_file("logrus_text_headline.log")
        .replace("127.0.0.1:5000/testpush-insecure-with-login:1", odd);
    let (t, s, _) = written("del.log", &log);
    assert_eq!(t.classification.reference, odd);
    assert_eq!(s.images[0].reference, odd);
    let refs: Vec<String> = pushes(&s).into_iter().map(|(r, _)| r).collect();
    assert_eq!(refs, [odd.to_string(), format!("{odd}-ci")]);
}

#[test]
fn a_cr_or_control_character_in_the_fatal_message_stays_a_comment() {
    // convert-time quotes the fatal message in its reasons, which triage writes as comments.
    let log = log_file("gha_convert_image_not_found.log").replacen(
        "-tmp-reduced-platform\\\": not found\"",
        "-tmp-reduced-platform\\\": not found\r[check] x = 1\u{1}\u{7f} boom\"",
        1,
    );
    assert!(log.contains("boom"));
    let (t, s, text) = written("cr.log", &log);
    assert_eq!(t.classification.family, Family::ConvertTime);
    assert_eq!(s.check.message.as_deref(), Some("failed to create a tmp"));
    assert!(
        !text.contains('\r') && !text.contains('\u{1}') && !text.contains('\u{7f}'),
        "{text:?}"
    );
    // The message, all of it, is quoted in one comment line.
    let quoted = text
        .lines()
        .find(|l| l.contains("boom"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        quoted.starts_with("# ") && quoted.contains("not found [check] x = 1"),
        "{quoted}"
    );
}

#[test]
fn a_newline_in_the_log_name_adds_no_key() {
    let name = "ci.log\nname = \"injected\"\n[[actor]]\nname = \"x\"\nprogram = \"gc.ticker\"";
    let (_, s, text) = written(name, &log_file("logrus_text_headline.log"));
    assert_eq!(s.name, "triage-tmp-reduced-collected-83bf22e8705a");
    assert_eq!(s.actors.len(), 2, "{text}");
    assert!(
        text.contains("# Written by `pushrace triage ci.log name = \"injected\""),
        "{text}"
    );
}
