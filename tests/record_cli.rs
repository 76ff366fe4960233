//! `pushrace record -- CMD…` and `pushrace replay --from-log FILE --backend real` as processes: a
//! user's script of two concurrent Go-client pushes (nerdctl v0.18's path on containerd's
//! library), recorded under an interleaving that fails, replays to the same trace hash on fresh
//! daemons; a command that passes says so and exits 0; bad input exits 2 naming it.

#![cfg(feature = "containerd")]

mod common;

use common::{pushrace, text};

/// Two pushes of the same image, each tagged as its own actor, started at once.
const TWO_PUSHES: &str = r#"
push() { PUSHRACE_ACTOR=$1 "$PUSHRACE_GO_CLIENT" --address "$PUSHRACE_ADDRESS" --namespace default push --variant v0.18 --platform linux/amd64 --plain-http example.com/app:1 "$PUSHRACE_REGISTRY/app:1"; }
push a & pa=$!
push b & pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
exit $((ra | rb))
"#;

/// A scratch directory, removed when dropped: also when the test fails.
struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("pr-record-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// The order of calls under which same-ref fails on the Go clients: the model's shrunk schedule
/// translated to them (`replay --from-model`), as the replay's trace shows it ran, less each
/// process's `exec` and the registry requests: under `record` the script starts the processes and
/// the registry is not under the gate, so there are only gRPC calls to order.
fn failing_order() -> String {
    let explored = pushrace(&["explore", "same-ref-go", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&explored.stdout).unwrap();
    let model = json["violation"]["schedule"].as_str().unwrap().to_string();
    let args = [
        "replay",
        "same-ref-go",
        "--schedule",
        &model,
        "--backend",
        "real",
        "--from-model",
    ];
    let out = text(&pushrace(&args));
    // Trace lines: `  28  push-a: registry.head 6111ab9896b8`.
    let step = |l: &str| {
        let (index, rest) = l.trim_start().split_once("  ")?;
        index.parse::<usize>().ok()?;
        let (actor, label) = rest.split_once(": ")?;
        let a = ["push-a", "push-b"].iter().position(|n| *n == actor)?;
        let call = !label.starts_with("exec ") && !label.starts_with("registry.");
        Some((a, call))
    };
    let steps: Vec<_> = out.lines().filter_map(step).collect();
    assert!(!steps.is_empty(), "{out}");
    let calls: Vec<usize> = steps.iter().filter(|s| s.1).map(|s| s.0).collect();
    pushrace_harness::Schedule::new(2, calls).encode()
}

#[test]
fn a_recorded_failing_run_of_two_go_pushes_replays_to_its_trace_hash() {
    let d = dir("two");
    let (script, log) = (d.join("two.sh"), d.join("log.toml"));
    std::fs::write(&script, TWO_PUSHES).unwrap();
    let order = failing_order();
    let (script, log) = (script.to_str().unwrap(), log.to_str().unwrap());
    let args = [
        "record",
        "--scenario",
        "same-ref-go",
        "--out",
        log,
        "--schedule",
        &order,
        "--actors",
        "a,b",
        "--",
        "sh",
        script,
    ];
    let o = pushrace(&args);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("2 processes by PUSHRACE_ACTOR"), "{all}");
    assert!(all.contains("fails again"), "{all}");
    let written = std::fs::read_to_string(log).unwrap();
    let parsed = pushrace_scenarios::backend::record::RecordLog::parse(log, &written).unwrap();
    let hash = parsed
        .trace
        .clone()
        .expect("the checking replay's trace hash");
    assert_eq!(parsed.actor.len(), 2);
    for _ in 0..3 {
        let o = pushrace(&["replay", "--from-log", log, "--backend", "real"]);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert!(
            all.contains(&format!("the trace hash is the recorded one ({hash})")),
            "{all}"
        );
        assert!(all.contains("content digest sha256:"), "{all}");
    }
    // On the model each recorded actor is an `ops` actor making its recorded calls, interleaved
    // as recorded: the model loses the same digest (the model held to the recorded run).
    let o = pushrace(&["replay", "--from-log", log]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("replay (model): actor b failed: content digest sha256:"),
        "{all}"
    );
}

/// A command that passes: exit 0, said so, and its calls still recorded as one actor (untagged
/// processes are grouped by process group: everything the command starts shares its group).
#[test]
fn a_passing_command_says_so_and_exits_0() {
    let d = dir("pass");
    let log = d.join("log.toml");
    let log = log.to_str().unwrap();
    let cmd = "ctr --address \"$PUSHRACE_ADDRESS\" images ls && ctr --address \"$PUSHRACE_ADDRESS\" content ls";
    let o = pushrace(&["record", "--out", log, "--", "sh", "-c", cmd]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("the command passed"), "{all}");
    assert!(all.contains("2 by process group (1 groups)"), "{all}");
    let parsed = pushrace_scenarios::backend::record::RecordLog::parse(
        log,
        &std::fs::read_to_string(log).unwrap(),
    )
    .unwrap();
    assert!(!parsed.failed);
    assert_eq!(parsed.actor[0].commands.len(), 2, "{parsed:?}");
}

#[test]
fn bad_record_input_exits_2_naming_it() {
    let d = dir("bad");
    let junk = d.join("junk.toml");
    std::fs::write(&junk, "name = 1\n").unwrap();
    let junk = junk.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["record", "--", "/no/such/command"],
            "cannot run `/no/such/command`",
        ),
        (
            &[
                "record",
                "--schedule",
                "s1:2:ab",
                "--actors",
                "a",
                "--",
                "true",
            ],
            "actor 1, but --actors names 1",
        ),
        (&["record", "--timeout", "0s", "--", "true"], "--timeout"),
        (
            &["replay", "--from-log", junk, "--backend", "real"],
            "not a pushrace record log",
        ),
    ];
    for (args, want) in cases {
        let o = pushrace(args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains(want), "{args:?}: {all}");
        assert!(!all.contains("panicked"), "{all}");
    }
}
