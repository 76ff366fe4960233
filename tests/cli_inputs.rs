//! Issue 14's findings on the command line and in the library, each from its reproducer: no
//! false proof (item 3), size limits (item 4), files (item 5), small parsing edges (item 9).
//! Bad input exits 2 naming the flag or file; nothing panics.

mod common;
use common::{pushrace, text};
use std::process::Command;
use std::time::{Duration, Instant};

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pushrace-cli-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `(args, what stderr must contain)`: each must exit 2 without a panic.
fn refused(args: &[&str], says: &str) {
    let o = pushrace(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
    assert!(
        t.contains(says) && !t.contains("panicked at"),
        "{args:?}: {t}"
    );
}

#[test]
fn a_preemption_bound_is_a_number_or_none() {
    refused(
        &["explore", "rmi-other", "--preemptions", "all"],
        "--preemptions",
    );
    refused(
        &["explore", "rmi-other", "--preemptions=-2"],
        "--preemptions",
    );
    let o = pushrace(&["explore", "rmi-other", "--preemptions", "none", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "holds");
    assert_eq!(v["scope"], "all interleavings");
    assert!(v["strategy"]
        .as_str()
        .unwrap()
        .contains("all interleavings"));
}

#[test]
fn a_budget_of_0_is_bad_input() {
    refused(
        &["explore", "same-ref", "--budget", "0"],
        "--budget 0: expected at least 1",
    );
}

#[test]
fn a_run_stopped_by_its_budget_is_not_a_proof() {
    let o = pushrace(&[
        "explore",
        "two-tags",
        "--variant",
        "lease-held",
        "--budget",
        "5",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(!t.contains("HOLDS"), "{t}");
    assert!(
        t.contains("NOT PROVED: no violation in 5 executions; NOT exhausted (stopped by the execution budget)"),
        "{t}"
    );
    let o = pushrace(&[
        "explore",
        "two-tags",
        "--variant",
        "lease-held",
        "--strategy",
        "random",
        "--budget",
        "20",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&v["verdict"], &v["proved"], &v["exhausted"], &v["stopped"]),
        (
            &"not-exhausted".into(),
            &false.into(),
            &false.into(),
            &"executions".into()
        )
    );
    let o = pushrace(&["explore", "two-tags", "--variant", "lease-held", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&v["verdict"], &v["proved"]),
        (&"holds".into(), &true.into())
    );
}

#[test]
fn a_wall_time_backstop_says_not_exhausted() {
    let o = pushrace(&[
        "explore",
        "two-tags",
        "--variant",
        "lease-held",
        "--max-time",
        "1ns",
    ]);
    let t = text(&o);
    assert!(
        t.contains("NOT exhausted (stopped by the wall-time limit)"),
        "{t}"
    );
    refused(
        &["explore", "same-ref", "--max-time", "0s"],
        "expected a positive duration",
    );
    refused(
        &["explore", "same-ref", "--max-time", "soon"],
        "--max-time: invalid duration",
    );
}

#[test]
fn huge_depths_shards_and_schedules_are_bad_input() {
    for depth in ["18446744073709551615", "10000000000"] {
        let args = ["explore", "same-ref", "--strategy", "pct", "--depth", depth];
        refused(&args, &format!("--depth {depth}: expected 1 to 16"));
    }
    refused(
        &["explore", "same-ref", "--shard", "18446744073709551615/4"],
        "K is too large (at most 4294967295)",
    );
    let s = format!("s1:2:{}", "a9999999".repeat(16_000));
    refused(
        &["replay", "same-ref", "--schedule", &s],
        "longer than 1000000 steps",
    );
    let s = format!("s1:2:{}", "a10000000".repeat(40));
    refused(
        &["replay", "same-ref", "--schedule", &s],
        "longer than 1000000 steps",
    );
}

#[test]
fn an_ops_pull_with_too_many_platforms_is_bad_input() {
    let d = tmp_dir("ops-platforms");
    let plats: Vec<String> = (0..10_000).map(|i| format!("\"linux/a{i}\"")).collect();
    let f = d.join("ops.toml");
    let body = format!(
        "[[op]]\nop = \"image.pull\"\nref = \"a:1\"\nplatforms = [{}]\nlayers = 64\n",
        plats.join(", ")
    );
    std::fs::write(&f, body).unwrap();
    refused(
        &["apply", f.to_str().unwrap()],
        "10000 platforms: at most 64",
    );
}

/// FIFOs and devices as inputs are refused at once instead of hanging or reading 2 GB.
#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_at_once() {
    let d = tmp_dir("fifo");
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f = fifo.to_str().unwrap();
    let start = Instant::now();
    refused(&["explore", f], "not a regular file (a FIFO)");
    refused(&["apply", f], "not a regular file (a FIFO)");
    refused(
        &["triage", f, "--out", d.to_str().unwrap()],
        "not a regular file (a FIFO)",
    );
    refused(&["apply", "/dev/zero"], "not a regular file (a device)");
    refused(&["triage", "/dev/zero"], "not a regular file (a device)");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn triage_out_as_a_regular_file_says_so() {
    let d = tmp_dir("out-file");
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tests/triage_logs/logrus_text_headline.log"
    );
    let f = d.join("file");
    std::fs::write(&f, "x").unwrap();
    refused(
        &["triage", log, "--out", f.to_str().unwrap()],
        "not a directory (it is a file)",
    );
}

#[test]
fn the_library_refuses_budget_0_and_knows_a_proof() {
    use pushrace::{Config, Scenario};
    let r = std::panic::catch_unwind(|| Config::new().budget(0));
    assert!(r.is_err(), "budget(0) is bad input");
    assert!(std::panic::catch_unwind(|| Config::new().depth(17)).is_err());
    let env = Config::from_lookup(|k| (k == "PUSHRACE_DEPTH").then(|| "99".to_string()));
    assert!(env
        .unwrap_err()
        .contains("PUSHRACE_DEPTH=99: expected 1 to 16"));
    let s = Scenario::builtin("two-tags-lease-held").unwrap();
    let full = s.explore(Config::new());
    assert!(full.holds() && full.proved());
    let cut = s.explore(Config::new().budget(3));
    assert!(cut.holds() && !cut.proved());
    assert!(cut.to_text().contains("NOT PROVED"), "{}", cut.to_text());
}

/// Item 2: invalid UTF-8 in an ops file or a scenario names its line and byte offset, and an ops
/// file's faulty key its own line; exit 2 either way.
#[test]
fn input_errors_name_the_line_on_the_command_line() {
    let d = tmp_dir("utf8");
    let ops = d.join("ops.toml");
    std::fs::write(&ops, b"[[op]]\nop = \"content.write\"\ndata = \"\xff\"\n").unwrap();
    let ops = ops.to_str().unwrap();
    refused(
        &["apply", ops],
        &format!("{ops}: not UTF-8 text: line 3, byte offset 36: invalid byte 0xff"),
    );
    let scenario = d.join("s.toml");
    std::fs::write(&scenario, b"name = \"a\"\n\xc3(\n").unwrap();
    let scenario = scenario.to_str().unwrap();
    refused(
        &["explore", scenario],
        "not UTF-8 text: line 2, byte offset 11",
    );
    std::fs::write(
        ops,
        "[[op]]\nop = \"image.delete\"\nname = \"a:1\"\nsync = \"yes\"\n",
    )
    .unwrap();
    refused(
        &["apply", ops],
        &format!("{ops}:4: op 0: key `sync`: expected true or false"),
    );
}
