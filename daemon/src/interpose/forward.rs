//! The HTTP/2 forwarder: one upstream HTTP/2 connection per client connection, one upstream
//! stream per client stream, headers, data and trailers copied both ways with flow control, and
//! every call shown to the [`Gate`] before it is forwarded (the gate may hold or refuse it).
//!
//! Why `h2` directly (and not hyper or tonic's transport): a forwarder needs a server and a client
//! over any socket, frame-level bodies with trailers, resets passed on with their reason, and the
//! freedom to not open the upstream stream until the gate admits the call. `h2` gives all of that
//! and is already in the build (tonic's channel runs on it); hyper's server side would need a crate
//! the lock does not have (`httpdate`) and adds nothing a gRPC-only proxy needs; tonic can only
//! serve generated services, and containerd-client is generated without server code.

use super::decode::{answers_commit, decode, is_write, WriteTap};
use super::{Admit, CallInfo, Ended, Gate};
use bytes::{Buf, Bytes, BytesMut};
use h2::{client::SendRequest, server::SendResponse, RecvStream, SendStream};
use http::HeaderMap;
use pushrace_models::Ctx;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{UnixListener, UnixStream};

/// One listening socket's side: whose calls arrive there, and where they go.
pub struct Site {
    pub actor: String,
    pub upstream: PathBuf,
    pub gate: Arc<dyn Gate>,
    /// Arrival order over all sockets of one interposer.
    pub seq: Arc<AtomicU64>,
}

/// Accepts client connections until the runtime stops.
pub async fn serve(listener: UnixListener, site: Arc<Site>) {
    while let Ok((io, _)) = listener.accept().await {
        // SO_PEERCRED: which process connected (several may share one actor's socket).
        let pid = io.peer_cred().ok().and_then(|c| c.pid()).map(|p| p as u32);
        let site = site.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(io, pid, site.clone()).await {
                site.gate.connection_error(&site.actor, pid, &e);
            }
        });
    }
}

async fn connection(io: UnixStream, pid: Option<u32>, site: Arc<Site>) -> Result<(), String> {
    let mut server = h2::server::handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake with the client: {e}"))?;
    let up = UnixStream::connect(&site.upstream)
        .await
        .map_err(|e| format!("connecting to {}: {e}", site.upstream.display()))?;
    let (sender, up_conn) = h2::client::handshake(up)
        .await
        .map_err(|e| format!("HTTP/2 handshake with containerd: {e}"))?;
    // The upstream connection makes progress only while polled.
    tokio::spawn(up_conn);
    // An error here is the client going away (a ctr process exits without a GOAWAY, which h2
    // sees as a reset connection): its calls, if any were open, report their own resets.
    while let Some(Ok((req, respond))) = server.accept().await {
        let (site, sender) = (site.clone(), sender.clone());
        tokio::spawn(async move { call(req, respond, sender, pid, site).await });
    }
    Ok(())
}

/// gRPC's length-prefixed messages, cut out of a stream of data chunks.
#[derive(Default)]
struct Frames {
    buf: BytesMut,
}

impl Frames {
    fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while self.buf.len() >= 5 {
            let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
            if self.buf.len() < 5 + len as usize {
                break;
            }
            self.buf.advance(5);
            out.push(self.buf.split_to(len as usize).freeze());
        }
        out
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string())
}

/// The call's context as containerd reads it: namespace and lease headers.
fn ctx_of(h: &HeaderMap) -> Ctx {
    Ctx {
        namespace: header(h, "containerd-namespace").unwrap_or_default(),
        lease: header(h, "containerd-lease"),
    }
}

/// The request so far: chunks read but not yet forwarded, and the messages in them.
struct Head {
    chunks: Vec<Bytes>,
    frames: Frames,
    first: Option<Bytes>,
    tap: Option<WriteTap>,
}

impl Head {
    fn take(&mut self, chunk: &Bytes) {
        for m in self.frames.push(chunk) {
            if let Some(t) = self.tap.as_mut() {
                t.request(&m);
            }
            self.first.get_or_insert(m);
        }
    }
}

/// Reads the request until its first message is complete (or it ends).
async fn read_head(body: &mut RecvStream, write: bool) -> Result<Head, String> {
    let mut head = Head {
        chunks: Vec::new(),
        frames: Frames::default(),
        first: None,
        tap: write.then(WriteTap::default),
    };
    while head.first.is_none() {
        match body.data().await {
            None => break,
            Some(Err(e)) => return Err(format!("reading the request: {e}")),
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                head.take(&chunk);
                head.chunks.push(chunk);
            }
        }
    }
    Ok(head)
}

/// One call: read its head, let the gate admit it, forward it, copy the answer back, report.
async fn call(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    up: SendRequest<Bytes>,
    pid: Option<u32>,
    site: Arc<Site>,
) {
    let t0 = Instant::now();
    let (parts, mut body) = req.into_parts();
    let method = parts.uri.path().to_string();
    let ctx = ctx_of(&parts.headers);
    let write = is_write(&method);
    let seq = site.seq.fetch_add(1, Ordering::SeqCst);
    let head = read_head(&mut body, write).await;
    let first = head.as_ref().ok().and_then(|h| h.first.clone());
    let info = CallInfo {
        seq,
        actor: site.actor.clone(),
        pid,
        decoded: decode(&method, &ctx, first.as_deref()),
        method,
        ctx,
        http: None,
    };
    let mut head = match head {
        Ok(h) => h,
        Err(e) => {
            respond.send_reset(h2::Reason::CANCEL);
            return site.gate.end(&info, &Ended::reset(e));
        }
    };
    let admit = match site.gate.arrive(&info) {
        None => Admit::Forward,
        Some(rx) => rx
            .await
            .unwrap_or(Admit::Refuse("the scheduler is gone".into())),
    };
    // A Write's answer is watched for the point its client learns the outcome (the answer to
    // its commit, or the answer's end: an open refused with AlreadyExists ends at once), told to
    // the gate before it is passed on: the client's next call can only come after it.
    let mut answers = Frames::default();
    let gate = site.gate.clone();
    let mut on_answer = |chunk: Option<&Bytes>| {
        let settled = chunk.is_none_or(|c| answers.push(c).iter().any(|m| answers_commit(m)));
        if write && settled {
            gate.settled(&info);
        }
    };
    let mut ended = match admit {
        Admit::Forward => forward(parts, body, &mut head, respond, up, &mut on_answer).await,
        Admit::Refuse(why) => refuse(&mut respond, &why),
    };
    ended.write = head.tap.take();
    ended.micros = t0.elapsed().as_micros() as u64;
    site.gate.end(&info, &ended);
}

/// Answers a refused call without forwarding it: gRPC UNIMPLEMENTED with the reason.
fn refuse(respond: &mut SendResponse<Bytes>, why: &str) -> Ended {
    let mut resp = http::Response::new(());
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", http::HeaderValue::from_static("12"));
    let msg = why.replace(['\r', '\n'], " ");
    if let Ok(v) = http::HeaderValue::from_str(&msg) {
        h.insert("grpc-message", v);
    }
    let _ = respond.send_response(resp, true);
    Ended {
        status: Some(12),
        message: why.to_string(),
        ..Ended::default()
    }
}

/// Forwards an admitted call and copies the answer back; the call ends when the answer's
/// trailers are sent (the request side is dropped then: nothing the client still sends matters).
async fn forward(
    parts: http::request::Parts,
    mut body: RecvStream,
    head: &mut Head,
    mut respond: SendResponse<Bytes>,
    up: SendRequest<Bytes>,
    on_answer: &mut (dyn FnMut(Option<&Bytes>) + Send),
) -> Ended {
    let ended_already = body.is_end_stream();
    let req = http::Request::from_parts(parts, ());
    let sent = match up.ready().await {
        Ok(mut up) => up.send_request(req, false).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (resp, mut up_send) = match sent {
        Ok(s) => s,
        Err(e) => {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            return Ended::reset(format!("forwarding to containerd: {e}"));
        }
    };
    // The call's outcome is the answer's. A request side that fails (the client reset its
    // stream, or containerd already answered and closed the stream, so that the client's
    // half-close finds it inactive) resets the upstream stream, which is a no-op in the second
    // case, and the answer decides: a complete answer is a complete call.
    let request = async {
        let sent = async {
            for c in std::mem::take(&mut head.chunks) {
                send(&mut up_send, c).await?;
            }
            if !ended_already {
                copy(&mut body, &mut up_send, |c| head.take(c)).await?;
            }
            up_send
                .send_data(Bytes::new(), true)
                .map_err(|e| e.to_string())
        }
        .await;
        if sent.is_err() {
            up_send.send_reset(h2::Reason::CANCEL);
        }
        sent
    };
    let r = {
        let response = answer(resp, &mut respond, on_answer);
        tokio::pin!(request, response);
        let (mut request_done, mut request_error) = (false, None);
        loop {
            tokio::select! {
                r = &mut request, if !request_done => {
                    request_done = true;
                    request_error = r.err();
                }
                r = &mut response => break r.map_err(|e| match &request_error {
                    Some(q) => format!("{e} (request: {q})"),
                    None => e,
                }),
            }
        }
    };
    r.unwrap_or_else(|e| {
        respond.send_reset(h2::Reason::CANCEL);
        Ended::reset(e)
    })
}

/// The upstream answer copied back to the client: headers, data, trailers; each data chunk is
/// shown to `on_answer` before it is passed on, and the end (`None`) before the trailers (or a
/// trailers-only answer) are.
async fn answer(
    resp: h2::client::ResponseFuture,
    respond: &mut SendResponse<Bytes>,
    on_answer: &mut (dyn FnMut(Option<&Bytes>) + Send),
) -> Result<Ended, String> {
    let resp = resp.await.map_err(|e| format!("containerd: {e}"))?;
    let (parts, mut body) = resp.into_parts();
    let status_of = |h: &HeaderMap| {
        let code = header(h, "grpc-status").and_then(|s| s.parse().ok());
        (code, header(h, "grpc-message").unwrap_or_default())
    };
    let (mut status, mut message) = status_of(&parts.headers);
    let end = body.is_end_stream();
    if end {
        on_answer(None);
    }
    let mut down = respond
        .send_response(http::Response::from_parts(parts, ()), end)
        .map_err(|e| format!("answering the client: {e}"))?;
    if !end {
        let copied = match copy(&mut body, &mut down, |c| on_answer(Some(c))).await {
            Ok(()) => body
                .trailers()
                .await
                .map_err(|e| format!("containerd trailers: {e}")),
            Err(e) => return cancelled(&mut down, e).await,
        };
        on_answer(None);
        let sent = match copied? {
            Some(t) => {
                (status, message) = status_of(&t);
                down.send_trailers(t)
            }
            None => down.send_data(Bytes::new(), true),
        };
        if let Err(e) = sent {
            return cancelled(&mut down, e.to_string()).await;
        }
    }
    Ok(Ended {
        status,
        message: percent_decode(&message),
        ..Ended::default()
    })
}

/// The client reset its stream before the answer's end: a Read the client stopped reading (ctr's
/// `ReaderAt` cancels once it has its bytes) ends there, as a cancelled call, not an error.
async fn cancelled(down: &mut SendStream<Bytes>, error: String) -> Result<Ended, String> {
    let reset = std::future::poll_fn(|cx| match down.poll_reset(cx) {
        std::task::Poll::Ready(r) => std::task::Poll::Ready(r.ok()),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    });
    match reset.await {
        Some(reason) => Ok(Ended {
            cancelled: Some(format!("{reason:?}")),
            ..Ended::default()
        }),
        None => Err(error),
    }
}

/// gRPC's grpc-message is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Copies data chunks from one stream to another, releasing receive capacity as they go out.
async fn copy(
    from: &mut RecvStream,
    to: &mut SendStream<Bytes>,
    mut tap: impl FnMut(&Bytes),
) -> Result<(), String> {
    while let Some(chunk) = from.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let n = chunk.len();
        tap(&chunk);
        send(to, chunk).await?;
        let _ = from.flow_control().release_capacity(n);
    }
    Ok(())
}

/// Sends one chunk within the peer's flow-control window (waiting for capacity as needed).
async fn send(to: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), String> {
    while !data.is_empty() {
        to.reserve_capacity(data.len());
        match std::future::poll_fn(|cx| to.poll_capacity(cx)).await {
            None => return Err("the stream closed".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(n)) => {
                let part = data.split_to(n.min(data.len()));
                to.send_data(part, false).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}
