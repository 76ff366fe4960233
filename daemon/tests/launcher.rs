#![cfg(feature = "containerd")]
use pushrace_daemon::Daemon;

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn launcher_stop_leaves_no_process_and_no_dir() {
    let d = Daemon::start().unwrap_or_else(|e| panic!("{e}"));
    let (pid, dir) = (d.pid(), d.dir().to_path_buf());
    assert!(pid_alive(pid));
    assert!(d.socket().exists());
    d.stop().unwrap();
    assert!(
        !pid_alive(pid),
        "containerd pid {pid} still alive after stop"
    );
    assert!(!dir.exists(), "{} still exists after stop", dir.display());
}

#[test]
fn launcher_drop_leaves_no_process_and_no_dir() {
    let d = Daemon::start().unwrap_or_else(|e| panic!("{e}"));
    let (pid, dir) = (d.pid(), d.dir().to_path_buf());
    assert!(pid_alive(pid));
    drop(d);
    assert!(
        !pid_alive(pid),
        "containerd pid {pid} still alive after drop"
    );
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
}

#[test]
fn launcher_drop_on_panic_cleans_up() {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let d = Daemon::start().unwrap_or_else(|e| panic!("{e}"));
        tx.send((d.pid(), d.dir().to_path_buf())).unwrap();
        panic!("test failure while the daemon runs");
    })
    .join();
    assert!(r.is_err());
    let (pid, dir) = rx.recv().unwrap();
    assert!(!pid_alive(pid));
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launcher_answers_version_1_6_20() {
    let d = Daemon::start().unwrap_or_else(|e| panic!("{e}"));
    let c = d.client().await.unwrap();
    let v = c.version().await.unwrap();
    assert!(v.contains("1.6.20"), "version {v}");
}
