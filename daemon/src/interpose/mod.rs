//! A containerd gRPC interposer: listens on one unix socket per actor, forwards every call to an
//! upstream containerd over HTTP/2 (gRPC without TLS), decodes each request with containerd's
//! prost types into the model's [`pushrace_models::Op`] where one exists, and shows every call to
//! a [`Gate`] first, which may let it through at once (pass-through logging, [`LogGate`]), hold it
//! until a scheduler picks it, or refuse it.
//!
//! - `decode.rs`: method + request + headers → class, `Op`, label;
//! - `forward.rs`: the HTTP/2 forwarder (why `h2`: see there);
//! - `log.rs`: the JSON-lines log of `pushrace interpose`;
//! - `hold.rs`: the scheduled gate (held calls for the externally fed actors' feeds);
//! - `http.rs`: the registry proxy (one port per actor), whose requests reach the same gate;
//! - `record.rs`: the recording gate of `pushrace record` (calls one at a time, in arrival
//!   order, each attributed to its process).

pub mod decode;
mod forward;
pub mod hold;
pub mod http;
mod log;
pub mod record;

pub use decode::{class_of, decode, Class, Decoded, WriteTap};
pub use hold::{Event, HoldGate};
pub use http::{RegistryProxy, Touch};
pub use log::{LogGate, LogLine};
pub use record::{RecordGate, Recording};

use pushrace_models::Ctx;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The longest unix socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Everything known about a call when its first request message has arrived.
#[derive(Clone, Debug)]
pub struct CallInfo {
    /// Arrival order over all sockets of the interposer.
    pub seq: u64,
    /// The actor whose socket it came in on.
    pub actor: String,
    /// The connecting process (`SO_PEERCRED`).
    pub pid: Option<u32>,
    /// `/containerd.services.content.v1.Content/Info`.
    pub method: String,
    /// The `containerd-namespace` and `containerd-lease` headers.
    pub ctx: Ctx,
    pub decoded: Decoded,
    /// A registry request (`http.rs`): what it touches. `None` for a gRPC call.
    pub http: Option<http::Touch>,
}

/// What a gate decided for a held call.
#[derive(Debug)]
pub enum Admit {
    Forward,
    /// Answer UNIMPLEMENTED with this reason, without forwarding.
    Refuse(String),
}

/// How a call ended.
#[derive(Clone, Debug, Default)]
pub struct Ended {
    /// grpc-status (0 ok) and grpc-message, from the trailers (or a trailers-only answer).
    pub status: Option<i32>,
    pub message: String,
    /// Set when the call was reset instead of answered.
    pub reset: Option<String>,
    /// Set (to the reason) when the client reset its stream before the answer's end (a Read it
    /// stopped reading): the call ended there; the daemon's answer was not at fault.
    pub cancelled: Option<String>,
    /// A `Content.Write` stream's messages.
    pub write: Option<WriteTap>,
    /// From the first request message to the last answer frame (measurement only: never in a
    /// trace).
    pub micros: u64,
}

impl Ended {
    fn reset(why: String) -> Ended {
        Ended {
            reset: Some(why),
            ..Ended::default()
        }
    }

    /// The call's label at its end: a Write's is only known then (its digest may come at commit).
    pub fn label(&self, call: &CallInfo) -> String {
        match &self.write {
            Some(w) if w.messages > 0 => w.op(&call.ctx).to_string(),
            _ => call.decoded.label.clone(),
        }
    }
}

/// Sees every call before it is forwarded and after it ended. Called from the interposer's
/// runtime threads: implementations must not block.
pub trait Gate: Send + Sync + 'static {
    /// `None`: forward at once; `Some(rx)`: hold the call until `rx` answers.
    fn arrive(&self, call: &CallInfo) -> Option<oneshot::Receiver<Admit>>;
    /// A `Content.Write` call's outcome is being passed on to its client (the answer to its
    /// commit, or the answer's end, told before it is passed on): what the client calls from now
    /// on is not part of it.
    fn settled(&self, _call: &CallInfo) {}
    /// The call ended (answered, refused or reset).
    fn end(&self, call: &CallInfo, ended: &Ended);
    /// A client connection failed outside any call (handshake, upstream unreachable).
    fn connection_error(&self, actor: &str, pid: Option<u32>, error: &str);
}

/// A running interposer: its runtime (one worker thread) and its sockets, removed on drop.
pub struct Interposer {
    rt: Option<tokio::runtime::Runtime>,
    sockets: Vec<PathBuf>,
}

impl Interposer {
    /// Listens on each `(actor, socket)` and forwards to `upstream`. Errors name the actor whose
    /// socket cannot be made.
    pub fn start(
        listen: &[(String, PathBuf)],
        upstream: &Path,
        gate: Arc<dyn Gate>,
    ) -> Result<Interposer, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("the interposer's runtime: {e}"))?;
        let mut me = Interposer {
            rt: None,
            sockets: Vec::new(),
        };
        let seq = Arc::new(AtomicU64::new(0));
        for (actor, path) in listen {
            let listener = bind(&rt, actor, path)?;
            me.sockets.push(path.clone());
            let site = Arc::new(forward::Site {
                actor: actor.clone(),
                upstream: upstream.to_path_buf(),
                gate: gate.clone(),
                seq: seq.clone(),
            });
            rt.spawn(forward::serve(listener, site));
        }
        me.rt = Some(rt);
        Ok(me)
    }

    /// Stops forwarding (open calls are dropped) and removes the sockets.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        for s in self.sockets.drain(..) {
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for Interposer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn bind(
    rt: &tokio::runtime::Runtime,
    actor: &str,
    path: &Path,
) -> Result<tokio::net::UnixListener, String> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "actor {actor}: socket path {} is {len} bytes, more than the {MAX_SOCKET_PATH} a unix socket takes",
            path.display()
        ));
    }
    let _guard = rt.enter();
    tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("actor {actor}: listening on {}: {e}", path.display()))
}

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts from now on), so
/// that [`wait_for_termination`] can take them: call it before [`Interposer::start`].
pub fn block_termination_signals() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT or SIGTERM (blocked beforehand by [`block_termination_signals`]).
pub fn wait_for_termination() {
    // SAFETY: as above; sigwait only writes the signal number.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
}
