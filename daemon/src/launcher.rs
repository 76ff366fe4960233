//! A private containerd: its own root, state and sockets under a fresh temp dir, a GC that runs only
//! when a client asks for one synchronously, stopped by PID and cleaned up on `stop()` or `Drop`.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary the launcher runs (looked up on PATH).
pub const CONTAINERD_BIN: &str = "containerd";

/// What to tell a person whose machine has no containerd.
pub const INSTALL_HINT: &str =
    "the `containerd` binary is not on PATH: install it (`apt-get install containerd`, Debian's 1.6.20), or run ci/run, which installs it";

/// How long `start` waits for the socket to answer a Version RPC.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long `stop` waits after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// Errors from starting or stopping the daemon.
#[derive(Debug)]
pub enum LaunchError {
    /// `containerd` is not installed / not on PATH. The message says what to install.
    BinaryMissing(String),
    /// A file-system or process error, with what was being done.
    Io(String, io::Error),
    /// The daemon did not answer in time or exited; carries the tail of its log.
    NotReady { reason: String, log_tail: String },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::BinaryMissing(m) => write!(f, "{m}"),
            LaunchError::Io(what, e) => write!(f, "{what}: {e}"),
            LaunchError::NotReady { reason, log_tail } => {
                write!(
                    f,
                    "containerd did not become ready: {reason}\n--- log tail ---\n{log_tail}"
                )
            }
        }
    }
}

impl std::error::Error for LaunchError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LaunchError {
    let what = what.into();
    move |e| LaunchError::Io(what, e)
}

/// The GC scheduler settings written into the config. See PROBES.md ("GC scheduler") for why these
/// values mean "a GC runs only when a sync delete asks for one" in containerd 1.6's gc/scheduler.
pub const GC_SCHEDULER_TOML: &str = r#"[plugins."io.containerd.gc.v1.scheduler"]
  # interval after a GC = avg_gc_time * (1/pause_threshold - 1): with 1e-9 that is days, so the
  # periodic tick that would collect after async deletes never comes.
  pause_threshold = 1e-9
  # > 0 and unreachable: deletions never schedule a GC (0 would schedule one on the first delete).
  deletion_threshold = 1000000000
  # 0: mutations never force a GC.
  mutation_threshold = 0
  # a sync delete's GC is scheduled this far ahead: run it at once.
  schedule_delay = "0s"
  # 0: no initial GC after startup (nothing is scheduled until a sync delete).
  startup_delay = "0s"
"#;

/// Plugins disabled in the private daemon: CRI (needs a CNI setup and runs its own loops) and the
/// snapshotters that cannot work unprivileged or on this file system. Nothing pushrace uses needs them.
pub const DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running private containerd.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    dir: PathBuf,
    stopped: bool,
}

impl Daemon {
    /// Makes a fresh temp dir, writes the config, starts `containerd --config …` and waits until its
    /// socket answers a Version RPC. Safe to call from sync code and from inside a tokio runtime.
    pub fn start() -> Result<Daemon, LaunchError> {
        let bin = find_on_path(CONTAINERD_BIN)
            .ok_or_else(|| LaunchError::BinaryMissing(INSTALL_HINT.to_string()))?;

        let dir = make_dir()?;
        let mut daemon = Daemon {
            child: None,
            pid: 0,
            dir,
            stopped: false,
        };
        // From here on, an early return drops `daemon`, which removes the dir (and kills the child).
        fs::write(daemon.config_path(), config_toml(&daemon.dir))
            .map_err(io_err("writing config.toml"))?;
        let log = fs::File::create(daemon.log_path()).map_err(io_err("creating containerd.log"))?;
        let log2 = log.try_clone().map_err(io_err("cloning log handle"))?;
        let child = Command::new(&bin)
            .arg("--config")
            .arg(daemon.config_path())
            .arg("--log-level")
            .arg("debug")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(io_err(format!("spawning {}", bin.display())))?;
        daemon.pid = child.id();
        daemon.child = Some(child);
        daemon.wait_ready(READY_TIMEOUT)?;
        Ok(daemon)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The temp dir holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The gRPC unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// containerd's root dir (`root` in the config).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The shared content backend's blob dir: one file per digest hex, whatever the namespaces say.
    pub fn blobs_dir(&self) -> PathBuf {
        content_blobs_dir(&self.root())
    }

    /// stdout+stderr of the daemon (debug level).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The last `max` bytes of the daemon's log.
    pub fn log_tail(&self, max: u64) -> String {
        tail(&self.log_path(), max)
    }

    /// Connects a client to this daemon (the client knows the root, so `dump_state` can list blobs).
    pub async fn client(&self) -> Result<crate::DaemonClient, crate::CdError> {
        crate::DaemonClient::connect(self.socket(), Some(self.root())).await
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after `TERM_GRACE`), reaps it and removes the dir.
    pub fn stop(mut self) -> Result<(), LaunchError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LaunchError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut first_err = None;
        if let Some(mut child) = self.child.take() {
            if let Err(e) = terminate(&mut child) {
                first_err.get_or_insert(LaunchError::Io(
                    format!("stopping containerd pid {}", self.pid),
                    e,
                ));
            }
        }
        if self.dir.exists() {
            if let Err(e) = remove_dir_all_retry(&self.dir) {
                first_err.get_or_insert(LaunchError::Io(
                    format!("removing {}", self.dir.display()),
                    e,
                ));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), LaunchError> {
        let socket = self.socket();
        let deadline = Instant::now() + timeout;
        let mut last = String::from("socket not created yet");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(LaunchError::NotReady {
                        reason: format!("containerd exited with {status} before answering"),
                        log_tail: self.log_tail(4096),
                    });
                }
            }
            if socket.exists() {
                match probe_version(&socket) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::NotReady {
                    reason: format!(
                        "no answer on {} within {:?} (last: {last})",
                        socket.display(),
                        timeout
                    ),
                    log_tail: self.log_tail(4096),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("pushrace-daemon: cleanup failed: {e}");
        }
    }
}

/// `<root>/io.containerd.content.v1.content/blobs/sha256`.
pub fn content_blobs_dir(root: &Path) -> PathBuf {
    root.join("io.containerd.content.v1.content")
        .join("blobs")
        .join("sha256")
}

/// The config.toml for a daemon living in `dir`.
pub fn config_toml(dir: &Path) -> String {
    let d = dir.display();
    let disabled: Vec<String> = DISABLED_PLUGINS.iter().map(|p| format!("{p:?}")).collect();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
plugin_dir = "{d}/plugins"
disabled_plugins = [{disabled}]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/t.sock"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

{gc}"#,
        disabled = disabled.join(", "),
        gc = GC_SCHEDULER_TOML,
    )
}

/// Asks the daemon at `socket` for its version, on a private runtime in a scoped thread (so this
/// works whether or not the caller is inside a tokio runtime).
fn probe_version(socket: &Path) -> Result<String, String> {
    let socket = socket.to_path_buf();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let fut = async {
                    let channel = containerd_client::connect(&socket)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut v = containerd_client::services::v1::version_client::VersionClient::new(
                        channel,
                    );
                    let r = v.version(()).await.map_err(|e| e.message().to_string())?;
                    Ok::<_, String>(r.into_inner().version)
                };
                tokio::time::timeout(Duration::from_secs(2), fut)
                    .await
                    .map_err(|_| "Version RPC timed out".to_string())?
            })
        })
        .join()
        .map_err(|_| "version probe thread panicked".to_string())?
    })
}

pub(crate) fn make_dir() -> Result<PathBuf, LaunchError> {
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Short on purpose: unix socket paths are limited to ~108 bytes.
        let dir = base.join(format!(
            "pr-cd-{}-{}-{:x}",
            std::process::id(),
            n,
            nanos & 0xfffff
        ));
        match fs::create_dir(&dir) {
            Ok(()) => {
                let sock_len = dir.join("c.sock").as_os_str().len();
                if sock_len > 100 {
                    let _ = fs::remove_dir(&dir);
                    return Err(LaunchError::Io(
                        format!("socket path under {} is {sock_len} bytes (max ~100): set TMPDIR shorter", base.display()),
                        io::Error::from(io::ErrorKind::InvalidInput),
                    ));
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(LaunchError::Io(
                    format!("creating a dir under {}", base.display()),
                    e,
                ))
            }
        }
    }
}

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// SIGTERM, wait up to TERM_GRACE, SIGKILL, reap.
pub(crate) fn terminate(child: &mut Child) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet (so it cannot be recycled).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(())
}

pub(crate) fn remove_dir_all_retry(dir: &Path) -> io::Result<()> {
    let mut last = None;
    for _ in 0..5 {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last.unwrap())
}

pub(crate) fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
