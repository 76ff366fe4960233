//! `pushrace list / explore / replay` end to end: exit status 0 (holds), 1 (violation, printed with
//! its trace, Mermaid diagram and replay command), 2 (bad input, naming file:line and key).

mod common;
use common::{pushrace, text};
use std::process::Output;

#[test]
fn explore_of_the_headline_race_exits_1_with_trace_diagram_and_a_replay_that_fails_the_same_way() {
    let o = pushrace(&["explore", "same-ref"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("VIOLATION of no-missing-digest"), "{out}");
    assert!(
        out.contains("is the reduced index of example.com/app:1"),
        "{out}"
    );
    assert!(out.contains("```mermaid\nsequenceDiagram"), "{out}");
    let replay = out
        .lines()
        .skip_while(|l| *l != "replay:")
        .nth(1)
        .expect("a replay command")
        .trim();
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    assert_eq!(args[..2], ["replay", "same-ref"]);
    let r = pushrace(&args);
    let rout = text(&r);
    assert_eq!(r.status.code(), Some(1), "{rout}");
    assert!(
        rout.contains("actor push-b failed: content digest sha256:"),
        "{rout}"
    );
}

#[test]
fn explore_of_the_fix_exits_0_and_says_what_was_explored() {
    let o = pushrace(&["explore", "two-tags", "--variant", "lease-held", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "holds");
    assert_eq!(v["exhausted"], true);
    assert!(v["executions"].as_u64().unwrap() > 1);
    assert!(v["strategy"]
        .as_str()
        .unwrap()
        .contains("preemption bound 2"));
}

#[test]
fn json_output_is_identical_across_runs() {
    let strip = |o: Output| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("elapsed");
        v
    };
    let a = strip(pushrace(&["explore", "two-tags", "--json"]));
    let b = strip(pushrace(&["explore", "two-tags", "--json"]));
    assert_eq!(a, b);
    assert_eq!(a["violation"]["role"], "reduced-index");
}

#[test]
fn bad_inputs_exit_2_naming_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("pushrace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[image]]\nref = \"a:1\"\n[[actor]]\nname = \"x\"\nprogram = \"nerdctl.pusher\"\n",
    )
    .unwrap();
    let o = pushrace(&["explore", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o);
    assert!(
        e.contains("bad.toml:5: key `program`: unknown program \"nerdctl.pusher\""),
        "{e}"
    );

    let o = pushrace(&["explore", "no-such-scenario"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a built-in scenario"), "{}", text(&o));

    let o = pushrace(&["replay", "same-ref", "--schedule", "s1:2:zz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--schedule"), "{}", text(&o));

    let o = pushrace(&["explore", "same-ref", "--strategy", "bfs"]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_names_every_builtin_with_its_expectation() {
    let o = pushrace(&["list"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0));
    for name in [
        "same-ref",
        "two-tags",
        "lazy-pull",
        "background-gc",
        "rmi-other",
        "pull-race",
        "push-single",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{out}"
        );
    }
    assert!(!out.contains("BROKEN"), "{out}");
}

/// `--jobs`: the shards of one exploration in threads, one merged report. The verdict, the
/// violation (schedule, trace and its hash) and everything else but the execution count and the
/// time are the same for 1 and 2 threads; a proof's executions are the shards' run one by one.
#[test]
fn jobs_do_not_change_the_verdict_or_the_failure() {
    let json = |args: &[&str]| -> serde_json::Value {
        let o = pushrace(args);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("elapsed");
        v
    };
    for s in [
        "same-ref",
        "two-tags",
        "background-gc",
        "rmi-other",
        "pull-race",
    ] {
        let mut one = json(&["explore", s, "--json", "--jobs", "1"]);
        let mut two = json(&["explore", s, "--json", "--jobs", "2"]);
        if one["verdict"] == "holds" {
            let shard = |k: &str| json(&["explore", s, "--json", "--jobs", "1", "--shard", k]);
            let sum = |v: &serde_json::Value| v["executions"].as_u64().unwrap();
            assert_eq!(sum(&two), sum(&shard("0/2")) + sum(&shard("1/2")), "{s}");
            assert_eq!(two["proved"], true, "{s}: the merged shards are a proof");
        } else {
            assert!(one["violation"]["trace"]["hash"].is_string(), "{s}: {one}");
        }
        for v in [&mut one, &mut two] {
            v.as_object_mut().unwrap().remove("executions");
        }
        assert_eq!(one, two, "{s}");
    }
    // Threads within a shard split exactly that shard.
    let split = json(&[
        "explore",
        "pull-race",
        "--json",
        "--jobs",
        "2",
        "--shard",
        "1/2",
    ]);
    let alone = json(&[
        "explore",
        "pull-race",
        "--json",
        "--jobs",
        "1",
        "--shard",
        "1/2",
    ]);
    assert_eq!(split, alone);
    assert_eq!(
        split["verdict"], "not-exhausted",
        "one shard is not a proof"
    );
}

#[test]
fn jobs_out_of_range_is_bad_input_naming_the_flag() {
    for bad in ["0", "257"] {
        let o = pushrace(&["explore", "same-ref", "--jobs", bad]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("--jobs {bad}: expected 1 to 256 threads")),
            "{err}"
        );
    }
}
