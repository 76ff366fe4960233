//! A private registry: Debian's `docker-registry` (distribution 2.8) on a loopback port with its
//! own storage under a fresh temp dir, stopped and removed like the daemon ([`crate::Daemon`]).
//! Scheduled runs put it behind the registry proxy (`interpose/http.rs`), one port per actor;
//! `pushrace record` lets clients reach it directly.

use crate::launcher::{find_on_path, make_dir, remove_dir_all_retry, tail, terminate};
use crate::LaunchError;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "docker-registry";
pub const REGISTRY_HINT: &str = "the `docker-registry` binary is not on PATH: install it (`apt-get install docker-registry`), or run ci/run, which installs it";

/// How many ports `start` tries when the one it picked was taken meanwhile.
const PORT_TRIES: usize = 5;

/// A running private registry.
pub struct Registry {
    child: Option<Child>,
    dir: PathBuf,
    addr: String,
}

impl Registry {
    /// Starts a registry on a free loopback port (retrying another when it is taken).
    pub fn start() -> Result<Registry, LaunchError> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let port = free_port().map_err(|e| LaunchError::Io("finding a free port".into(), e))?;
            match Registry::start_on(&format!("127.0.0.1:{port}")) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("PORT_TRIES > 0"))
    }

    /// Starts a registry on `addr` (`HOST:PORT`); an address in use is an error naming it.
    pub fn start_on(addr: &str) -> Result<Registry, LaunchError> {
        let bin = find_on_path(REGISTRY_BIN)
            .ok_or_else(|| LaunchError::BinaryMissing(REGISTRY_HINT.to_string()))?;
        if TcpStream::connect(addr).is_ok() {
            return Err(LaunchError::Io(
                format!("registry address {addr} is in use"),
                std::io::Error::from(std::io::ErrorKind::AddrInUse),
            ));
        }
        let dir = make_dir()?;
        let mut r = Registry {
            child: None,
            dir,
            addr: addr.to_string(),
        };
        let config = format!(
            "version: 0.1\nlog: {{ level: error }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp: {{ addr: {addr} }}\n",
            r.dir.join("data").display()
        );
        let cfg = r.dir.join("config.yml");
        std::fs::write(&cfg, config)
            .map_err(|e| LaunchError::Io("writing config.yml".into(), e))?;
        let log = std::fs::File::create(r.log_path())
            .map_err(|e| LaunchError::Io("creating registry.log".into(), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| LaunchError::Io("log".into(), e))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| LaunchError::Io("spawning docker-registry".into(), e))?;
        r.child = Some(child);
        r.wait_ready(Duration::from_secs(10))?;
        Ok(r)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), LaunchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = tail(&self.log_path(), 2048);
                return Err(LaunchError::Io(
                    format!(
                        "docker-registry on {} exited with {status}: {log}",
                        self.addr
                    ),
                    std::io::Error::other("exited"),
                ));
            }
            if v2_ok(&self.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = tail(&self.log_path(), 2048);
                return Err(LaunchError::Io(
                    format!(
                        "docker-registry on {} did not answer /v2/: {log}",
                        self.addr
                    ),
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the registry and removes its storage.
    pub fn stop(mut self) -> Result<(), LaunchError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LaunchError> {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c).map_err(|e| LaunchError::Io("stopping docker-registry".into(), e))?;
        }
        if self.dir.exists() {
            remove_dir_all_retry(&self.dir)
                .map_err(|e| LaunchError::Io(format!("removing {}", self.dir.display()), e))?;
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("pushrace-daemon: registry cleanup failed: {e}");
        }
    }
}

impl Registry {
    /// Uploads one blob into `repo` (an upload session, then the PUT that completes it with the
    /// blob as its body). `Err` names the blob and the registry's answer.
    pub fn put_blob(&self, repo: &str, digest: &str, data: &[u8]) -> Result<(), String> {
        let (status, head) = request(
            &self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            &[],
        )?;
        let location = header_of(&head, "location").filter(|_| status == 202);
        let location =
            location.ok_or_else(|| format!("starting the upload of {digest}: HTTP {status}"))?;
        // The Location may be absolute (`http://HOST:PORT/v2/...`) or a path.
        let path = match location.find("/v2/") {
            Some(at) => &location[at..],
            None => return Err(format!("the upload of {digest}: Location {location:?}")),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = format!("{path}{sep}digest={digest}");
        let ty = [("Content-Type", "application/octet-stream")];
        match request(&self.addr, "PUT", &put, &ty, data)? {
            (201, _) => Ok(()),
            (s, _) => Err(format!("uploading {digest} into {repo}: HTTP {s}")),
        }
    }

    /// Puts one manifest or index into `repo` under `reference` (its digest or a tag).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<(), String> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        match request(
            &self.addr,
            "PUT",
            &path,
            &[("Content-Type", media_type)],
            data,
        )? {
            (201, _) => Ok(()),
            (s, _) => Err(format!("putting manifest {repo}:{reference}: HTTP {s}")),
        }
    }
}

/// One HTTP/1.0 request to `addr` (the connection closes after it): the status and the
/// response's head.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let what = |e: std::io::Error| format!("{method} {path} on the registry {addr}: {e}");
    let mut s = TcpStream::connect(addr).map_err(what)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(what)?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    headers
        .iter()
        .for_each(|(k, v)| req.push_str(&format!("{k}: {v}\r\n")));
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(what)?;
    s.write_all(body).map_err(what)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(what)?;
    let text = String::from_utf8_lossy(&answer);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let status = head.get(9..12).and_then(|c| c.parse().ok());
    let status = status.ok_or_else(|| {
        format!("{method} {path} on the registry {addr}: no HTTP status in {head:?}")
    })?;
    Ok((status, head))
}

/// A header's value in a response head (names compared without case).
fn header_of(head: &str, name: &str) -> Option<String> {
    let line = head.lines().find(|l| {
        l.split(':')
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })?;
    line.split_once(':').map(|(_, v)| v.trim().to_string())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET /v2/` answers 200.
fn v2_ok(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut buf = [0u8; 16];
    s.write_all(req.as_bytes()).is_ok()
        && s.read(&mut buf).is_ok_and(|n| {
            buf[..n].starts_with(b"HTTP/1.") && buf[..n].get(8..13) == Some(b" 200 ")
        })
}
