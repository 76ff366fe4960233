//! `pushrace replay --backend real` as a process: real ctr actors under a schedule, the model's
//! schedule translated with `--from-model`, and bad settings refused with exit 2 naming them,
//! nothing left running.

#![cfg(feature = "containerd")]

mod common;

use common::{pushrace, text};

/// The model's shrunk same-ref schedule (what `pushrace explore same-ref-ctr` prints), translated
/// to the real ctr actors: it fails as the model says (exit 1), and every call of push-a has its
/// partner (its registry requests and its HEAD of the index by tag included); push-b's unpaired
/// calls are its serial run's after the point where the replay fails it.
#[test]
fn from_model_reproduces_the_model_failure_on_ctr() {
    let (o, all) = from_model("same-ref-ctr");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(!all.contains("model only: push-a"), "{all}");
    assert!(!all.contains("real only:  push-a"), "{all}");
    assert!(
        all.contains("replay (real): VIOLATION of no-missing-digest"),
        "{all}"
    );
    assert!(all.contains("content digest sha256:"), "{all}");
}

/// A scenario whose actors have no commands cannot run on the real backend; one whose actor has
/// only commands cannot run on the model; bad durations and a registry address in use are refused.
/// Each exits 2 and names the actor or the flag.
#[test]
fn bad_real_settings_exit_2_naming_them() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("pr-rcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let only = dir.join("only.toml");
    std::fs::write(
        &only,
        "[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"mine\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let only = only.display().to_string();
    let real = ["--schedule", "s1:2:a", "--backend", "real"];
    let cases: [(Vec<&str>, &str); 5] = [
        (
            [&["replay", "same-ref"][..], &real].concat(),
            "actor push-a of scenario same-ref has no commands",
        ),
        (
            vec!["replay", &only, "--schedule", "s1:1:a"],
            "actor mine of scenario only has only commands",
        ),
        (
            [
                &["replay", "same-ref-ctr"][..],
                &real,
                &["--step-timeout", "0s"],
            ]
            .concat(),
            "--step-timeout: \"0s\": expected a positive duration",
        ),
        (
            [
                &["replay", "same-ref-ctr"][..],
                &real,
                &["--timeout", "soon"],
            ]
            .concat(),
            "--timeout:",
        ),
        (
            [
                &["replay", "same-ref-ctr"][..],
                &real,
                &["--registry-addr", &addr],
            ]
            .concat(),
            "is in use",
        ),
    ];
    for (args, want) in cases {
        let o = pushrace(&args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains(want), "{args:?}: {want:?} not in {all}");
        assert!(!all.contains("panicked"), "{all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(taken);
}

/// A temp dir too deep for a unix socket path: refused before anything starts, naming TMPDIR.
#[test]
fn a_socket_path_too_long_is_refused_naming_tmpdir() {
    let deep = std::env::temp_dir().join("d".repeat(100));
    std::fs::create_dir_all(&deep).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args([
            "replay",
            "same-ref-ctr",
            "--schedule",
            "s1:2:a",
            "--backend",
            "real",
        ])
        .env("TMPDIR", &deep)
        .output()
        .unwrap();
    let all = text(&o);
    let _ = std::fs::remove_dir_all(&deep);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("TMPDIR"), "{all}");
}

/// `client = "go"`: the built-in two-tags-go plays nerdctl v2.0.5's push with the Go client on
/// containerd's own library; the model's shrunk schedule, translated, loses the reduced index on
/// it (the open #4470 window) and the verdict names it. (`ci/run` builds the Go client first.)
#[test]
fn from_model_reproduces_4470_on_the_go_client() {
    let (o, all) = from_model("two-tags-go");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("replay (real): VIOLATION of no-missing-digest"),
        "{all}"
    );
    assert!(
        all.contains("level=fatal msg=\"content digest sha256:"),
        "{all}"
    );
    // push-a's calls all pair, its HEAD of the index by tag included; push-b's unpaired ones
    // are its serial run's calls after the point where this replay fails it.
    assert!(!all.contains("real only:  push-a"), "{all}");
    assert!(!all.contains("model only: push-a"), "{all}");
    assert!(!all.contains("model only: push-b: content"), "{all}");
}

/// `pushrace explore NAME --json`'s shrunk schedule, replayed with `--backend real --from-model`:
/// the output and its text.
fn from_model(name: &str) -> (std::process::Output, String) {
    let explored = pushrace(&["explore", name, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&explored.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&explored)));
    let schedule = json["violation"]["schedule"].as_str().expect("a schedule");
    let args = [
        "replay",
        name,
        "--schedule",
        schedule,
        "--backend",
        "real",
        "--from-model",
    ];
    let o = pushrace(&args);
    let all = text(&o);
    (o, all)
}

/// `explore --backend real` over the Go clients: the violation as JSON, saying where it ran, with
/// a replay command for the real backend; a scenario whose actors have no commands is refused.
#[test]
fn explore_on_real_go_clients_reports_the_violation_as_json() {
    let args = [
        "explore",
        "same-ref-go",
        "--backend",
        "real",
        "--budget",
        "30",
        "--shrink-budget",
        "0",
        "--json",
    ];
    let o = pushrace(&args);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let json: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    assert_eq!(json["backend"], "real", "{all}");
    assert_eq!(json["verdict"], "violation", "{all}");
    let replay = json["violation"]["replay"].as_str().unwrap();
    assert!(replay.ends_with("--backend real"), "{replay}");
    assert!(all.contains("real: "), "the time split: {all}");
    let o = pushrace(&["explore", "same-ref", "--backend", "real"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("has no commands"), "{all}");
    // Threads are the model's: a real exploration is split over processes instead.
    let o = pushrace(&["explore", "same-ref-go", "--backend", "real", "--jobs", "2"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--jobs 2: --backend real runs one execution at a time"),
        "{all}"
    );
}
