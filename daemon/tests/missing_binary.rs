//! Without the containerd binary the launcher fails, and says what to install. (Own test binary:
//! it empties PATH for the whole process.)

#[test]
fn start_without_containerd_on_path_fails_with_install_hint() {
    std::env::set_var("PATH", "/nonexistent");
    let e = pushrace_daemon::Daemon::start().unwrap_err();
    assert!(
        matches!(e, pushrace_daemon::LaunchError::BinaryMissing(_)),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("apt-get install containerd") && m.contains("ci/run"),
        "{m}"
    );
}
