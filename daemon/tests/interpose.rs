//! The pass-through interposer in front of a private containerd: real `ctr` processes talk to it,
//! every call reaches the daemon (unary calls, the bidirectional Write stream, the server-streaming
//! Read and List, with blobs larger than HTTP/2's flow-control windows), and the log shows each
//! call in order with the model's label, its namespace and the connecting pid.

#![cfg(feature = "containerd")]

mod common;

use common::*;
use pushrace_daemon::interpose::{Interposer, LogGate};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        let mut v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v.sort_by_key(|l| l["seq"].as_u64());
        v
    }
}

/// A temp dir removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("pr-ip-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `ctr --address sock ARGS` with `stdin`, killed after 30 s (a hung proxy fails the test
/// instead of hanging it).
fn ctr(sock: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("ctr")
        .arg("--address")
        .arg(sock)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ctr");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    // Drained while it runs: a full pipe would block ctr, not the interposer.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ctr {args:?} hung behind the interposer");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    feeder.join().unwrap();
    let out = Output {
        status: child.wait().unwrap(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        out.status.success(),
        "ctr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// KNOWN BUG (to fix; found when this file first ran in parallel): two interposers in one process
/// interfere — a client's dial can stall for ctr's 10 s timeout while another test's interposer is
/// running. The CLI runs one interposer per process, so it is not affected; until the bug is found,
/// the tests of this file take this lock and run one at a time, so CI stays deterministic.
static ONE_INTERPOSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ONE_INTERPOSER`] for a test (a panicking test's poisoned lock is taken anyway).
fn one_interposer() -> std::sync::MutexGuard<'static, ()> {
    ONE_INTERPOSER.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn ctr_through_the_pass_through_interposer_is_logged_with_model_labels() {
    let _serial = one_interposer();
    let daemon = Daemon::start().unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
    let tmp = TempDir::new();
    let sock = tmp.0.join("a.sock");
    let sink = Sink::default();
    let gate = Arc::new(LogGate::new(Box::new(sink.clone())));
    let ip = Interposer::start(&[("a".into(), sock.clone())], &daemon.socket(), gate).unwrap();
    // 3 MiB: more than the 64 KiB initial windows and than ctr's 1 MiB write chunks.
    let big: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let d = digest_of(&big);
    let size = big.len().to_string();
    ctr(&sock, &["version"], b"");
    let ingest = [
        "content",
        "ingest",
        "--expected-digest",
        &d,
        "--expected-size",
        &size,
        "r1",
    ];
    ctr(&sock, &ingest, &big);
    let listed = ctr(&sock, &["content", "ls", "-q"], b"");
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), d);
    let got = ctr(&sock, &["content", "get", &d], b"");
    assert!(
        got.stdout == big,
        "Read through the interposer returned other bytes"
    );
    ctr(
        &sock,
        &["-n", "other", "leases", "create", "--id", "L1"],
        b"",
    );
    ctr(&sock, &["-n", "other", "leases", "rm", "--sync", "L1"], b"");
    ctr(&sock, &["images", "ls"], b"");
    ip.stop();
    let lines = sink.lines();
    let errors: Vec<_> = lines.iter().filter(|l| l.get("label").is_none()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let labels: Vec<&str> = lines.iter().map(|l| l["label"].as_str().unwrap()).collect();
    let short = &d[7..19];
    for want in [
        "version.version".to_string(),
        format!("content.write {short}"),
        "content.list".to_string(),
        format!("content.info {short}"),
        "lease.create L1 ns=other".to_string(),
        "lease.delete L1 sync ns=other".to_string(),
        "image.list".to_string(),
    ] {
        assert!(
            labels.contains(&want.as_str()),
            "no {want:?} in {labels:#?}"
        );
    }
    assert!(labels
        .iter()
        .any(|l| l.starts_with(&format!("content.read {short}"))));
    for l in &lines {
        let line: &serde_json::Value = l;
        assert_eq!(line["actor"], "a");
        assert!(line["pid"].as_u64().unwrap_or(0) > 0, "no peer pid: {line}");
        // A Read stream may also end by the client's cancel (RST_STREAM CANCEL, no trailers):
        // ctr's `content get` reads through a ReaderAt in 32 KiB chunks and sometimes cancels
        // the stream of a chunk it has what it needs of. Every other call ends with status 0.
        let cancelled_read = line["cancelled"] == "CANCEL"
            && line["method"] == "/containerd.services.content.v1.Content/Read";
        assert!(line["status"] == 0 || cancelled_read, "{line}");
    }
    daemon.stop().unwrap();
}

/// A registry address in use is an error naming it, and nothing is started; a free one serves
/// `/v2/` and is gone (process and storage) after `stop`.
#[test]
fn registry_port_in_use_is_named_and_a_free_one_is_cleaned_up() {
    let _serial = one_interposer();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let e = pushrace_daemon::Registry::start_on(&addr)
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .contains(&format!("registry address {addr} is in use")),
        "{e}"
    );
    let r = pushrace_daemon::Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = r.dir().to_path_buf();
    assert!(std::net::TcpStream::connect(r.addr()).is_ok());
    r.stop().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
}
