//! `pushrace interpose` as a process: ctr calls through it reach a private containerd and land in
//! its JSON-lines log; SIGTERM ends it and removes its socket; bad settings exit 2 naming them.

#![cfg(feature = "containerd")]

mod common;

use pushrace_daemon::Daemon;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The interposer process, killed on drop (also when the test fails).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_for(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn interpose_logs_ctr_calls_and_stops_on_sigterm() {
    let daemon = Daemon::start().unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
    let tmp = TempDir(std::env::temp_dir().join(format!("pr-ipc-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let (sock, log) = (tmp.0.join("b.sock"), tmp.0.join("calls.jsonl"));
    let child = Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args(["interpose", "--listen"])
        .arg(format!("b={}", sock.display()))
        .arg("--upstream")
        .arg(daemon.socket())
        .arg("--log")
        .arg(&log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    wait_for(&sock);
    for args in [&["images", "ls"][..], &["content", "ls"], &["leases", "ls"]] {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc_kill(proc.0.id() as i32, 15) };
    let status = proc.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "the socket was left behind");
    let text = std::fs::read_to_string(&log).unwrap();
    let labels: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            format!(
                "{} {}",
                v["actor"].as_str().unwrap(),
                v["label"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(labels, ["b image.list", "b content.list", "b lease.list"]);
    daemon.stop().unwrap();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn interpose_bad_settings_exit_2_naming_them() {
    let long = format!("/tmp/{}/x.sock", "d".repeat(120));
    let o = common::pushrace(&[
        "interpose",
        "--listen",
        &format!("a={long}"),
        "--upstream",
        "/",
        "--log",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::text(&o).contains("actor a: socket path"),
        "{}",
        common::text(&o)
    );
    let o = common::pushrace(&[
        "interpose",
        "--listen",
        "a=/tmp/x.sock",
        "--upstream",
        "/nonexistent.sock",
        "--log",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::text(&o).contains("--upstream /nonexistent.sock"),
        "{}",
        common::text(&o)
    );
}
