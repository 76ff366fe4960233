//! The registry under the scheduler: one HTTP/1.1 proxy port per actor in front of the private
//! docker-registry, whose requests are calls of the actor that made them, shown to the same
//! [`Gate`] as its gRPC calls (so a scheduled run holds them until the scheduler picks them).
//!
//! Why: a process that pushes talks to the registry between its containerd calls. Unseen, every
//! one of its steps had to be taken as touching the whole registry, so two pushes' steps were all
//! dependent; seen, each request is a step with the footprint the model gives registry steps.
//!
//! Rules (what each request is, [`classify`]):
//! - HEAD of a blob or manifest by digest, or of a tag: a step reading that object
//!   ([`Touch::Read`]); a GET the same (a pull's download);
//! - the PUT that completes an upload (`?digest=`), a cross-repository mount (`POST
//!   …/uploads/?mount=D&from=REPO`: the pusher mounts a blob whose distribution-source label names
//!   another repository of the same host; labelled `registry.mount D`), and a manifest PUT: a
//!   step writing the object (a manifest put by tag also writes its body's digest: it is then
//!   there by digest too); it wrote it when the registry answered 201 Created;
//! - `GET /v2/`, and upload sessions (POST without `mount=`, PATCH, status GET, cancel DELETE):
//!   pass-through, forwarded at once; they touch nothing another actor can see;
//! - anything else (a delete, catalog or tag listings, a chunked
//!   body): refused (501) as unsupported, and the execution fails as a backend failure.
//!
//! Attribution: the port a request came in on (each actor's `{registry}` is its own port).
//! Objects are named by digest (`sha256:…`) or, for a tag, `REPO/manifests/TAG`, with the
//! repository they are in (the shadow model keeps repositories apart, as the registry does; the
//! footprint keys are repository-agnostic: a coarser key only adds dependencies).

use super::{Admit, CallInfo, Class, Decoded, Ended, Gate};
use pushrace_models::digest::short;
use pushrace_models::Ctx;
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a registry request touches (its step's footprint), in repository `repo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touch {
    /// A HEAD (`head`) or GET of `object`.
    Read {
        repo: String,
        object: String,
        head: bool,
    },
    /// A PUT that makes `object` exist, and `also` (a manifest put by tag: `object` is its
    /// body's digest, `also` the tag).
    Write {
        repo: String,
        object: String,
        also: Option<String>,
    },
    /// A cross-repository mount of blob `object` from repository `from`: it exists in `repo`
    /// afterwards when the registry answered 201 Created (`from` has it); a 202 Accepted opened
    /// an upload session instead, whose PUT is a [`Touch::Write`] step of its own.
    Mount {
        repo: String,
        from: String,
        object: String,
    },
}

/// HTTP calls are numbered from here up, so their `seq` never meets a gRPC call's.
pub const HTTP_SEQ_BASE: u64 = 1 << 62;
/// The largest request head and body taken (a larger one is refused).
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 512 * 1024 * 1024;

/// One parsed request: what is forwarded and what it means.
struct Req {
    method: String,
    target: String,
    /// The head's header lines, forwarded as they came.
    headers: Vec<String>,
    body: Vec<u8>,
    close: bool,
    chunked: bool,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A request's class, what it touches, and its label (`registry.head 6111ab9896b8`).
pub fn classify(method: &str, target: &str, body: &[u8]) -> (Class, Option<Touch>, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pass = (
        Class::PassThrough,
        None,
        format!("registry {method} {path}"),
    );
    let refused = (
        Class::Unsupported,
        None,
        format!("registry {method} {path}"),
    );
    let Some(rest) = path.strip_prefix("/v2/") else {
        return match path == "/v2" {
            true => pass,
            false => refused,
        };
    };
    if rest.is_empty() {
        return pass;
    }
    let param = |name: &str| {
        let mut pairs = query.split('&').filter_map(|p| p.split_once('='));
        pairs
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.replace("%3A", ":"))
    };
    let read = |repo: &str, object: String| {
        let head = method == "HEAD";
        let verb = if head { "head" } else { "get" };
        let label = format!("registry.{verb} {}", short(&object));
        let repo = repo.to_string();
        (Class::Step, Some(Touch::Read { repo, object, head }), label)
    };
    let write = |repo: &str, object: String, also: Option<String>| {
        let label = format!("registry.put {}", short(&object));
        let repo = repo.to_string();
        (
            Class::Step,
            Some(Touch::Write { repo, object, also }),
            label,
        )
    };
    if let Some((repo, _)) = rest.split_once("/blobs/uploads") {
        return match (method, param("digest"), param("mount"), param("from")) {
            ("PUT", Some(d), _, _) => write(repo, d, None),
            // A cross-repository mount makes the blob exist here (201) or, when the source
            // lacks it, opens an upload session instead (202): a step writing the blob either way.
            ("POST", _, Some(object), Some(from)) => {
                let label = format!("registry.mount {}", short(&object));
                let repo = repo.to_string();
                let touch = Touch::Mount { repo, from, object };
                (Class::Step, Some(touch), label)
            }
            ("POST" | "PATCH" | "GET" | "DELETE", None, None, _) => pass,
            _ => refused,
        };
    }
    if let Some((repo, d)) = rest.rsplit_once("/blobs/") {
        return match method {
            "HEAD" | "GET" => read(repo, d.to_string()),
            _ => refused,
        };
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let by_digest = reference.contains(':');
        let object = match by_digest {
            true => reference.to_string(),
            false => format!("{repo}/manifests/{reference}"),
        };
        return match method {
            "HEAD" | "GET" => read(repo, object),
            "PUT" if by_digest => write(repo, object, None),
            // Named by its digest, as the model's `registry.put` of the index is.
            "PUT" => {
                let digest = format!("sha256:{:x}", Sha256::digest(body));
                write(repo, digest, Some(object))
            }
            _ => refused,
        };
    }
    refused
}

/// One actor's port.
struct Site {
    actor: String,
    upstream: String,
    gate: Arc<dyn Gate>,
    seq: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

/// The running proxy: one listening port per actor, stopped (every connection shut) by
/// [`RegistryProxy::stop`] or on drop.
pub struct RegistryProxy {
    addrs: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Vec<JoinHandle<()>>,
}

impl RegistryProxy {
    /// Listens on a free loopback port for each of `actors` and forwards to `upstream`
    /// (`HOST:PORT`), showing every request to `gate` first.
    pub fn start(
        actors: &[String],
        upstream: &str,
        gate: Arc<dyn Gate>,
    ) -> Result<RegistryProxy, String> {
        let mut me = RegistryProxy {
            addrs: Vec::new(),
            stop: Arc::default(),
            conns: Arc::default(),
            accept: Vec::new(),
        };
        let seq = Arc::new(AtomicU64::new(HTTP_SEQ_BASE));
        for actor in actors {
            let listener = TcpListener::bind("127.0.0.1:0")
                .map_err(|e| format!("actor {actor}: the registry proxy's port: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            me.addrs.push((actor.clone(), addr.to_string()));
            let site = Arc::new(Site {
                actor: actor.clone(),
                upstream: upstream.to_string(),
                gate: gate.clone(),
                seq: seq.clone(),
                stop: me.stop.clone(),
                conns: me.conns.clone(),
            });
            me.accept
                .push(std::thread::spawn(move || accept(listener, site)));
        }
        Ok(me)
    }

    /// Actor `actor`'s `HOST:PORT`.
    pub fn addr(&self, actor: &str) -> Option<&str> {
        let found = self.addrs.iter().find(|(a, _)| a == actor);
        found.map(|(_, addr)| addr.as_str())
    }

    /// Stops accepting, shuts every connection, and waits for the listeners to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, addr) in &self.addrs {
            // Wakes the blocking accept so that it sees the flag.
            let _ = TcpStream::connect(addr);
        }
        for c in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = c.shutdown(Shutdown::Both);
        }
        for t in self.accept.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RegistryProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept(listener: TcpListener, site: Arc<Site>) {
    for conn in listener.incoming() {
        if site.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let _ = conn.set_nodelay(true);
        if let Ok(c) = conn.try_clone() {
            site.conns.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
        let site = site.clone();
        std::thread::spawn(move || serve(conn, &site));
    }
}

/// Serves one client connection: its requests one after another (HTTP/1.1 keep-alive).
fn serve(client: TcpStream, site: &Site) {
    let Ok(mut out) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(client);
    let mut upstream: Option<TcpStream> = None;
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return site.gate.connection_error(&site.actor, None, &e),
        };
        let info = call_info(site, &req);
        let admit = match site.gate.arrive(&info) {
            None => Admit::Forward,
            Some(rx) => rx
                .blocking_recv()
                .unwrap_or(Admit::Refuse("the scheduler is gone".into())),
        };
        let t0 = Instant::now();
        let mut ended = match admit {
            Admit::Forward => forward(&mut upstream, &site.upstream, &req, &mut out),
            Admit::Refuse(why) => refuse(&mut out, &why),
        };
        ended.micros = t0.elapsed().as_micros() as u64;
        let done = ended.reset.is_some() || req.close;
        site.gate.end(&info, &ended);
        if done || site.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn call_info(site: &Site, req: &Req) -> CallInfo {
    let (mut class, touch, label) = classify(&req.method, &req.target, &req.body);
    if req.chunked {
        // A body of unknown length: not one of the pushes' requests (they give its size).
        class = Class::Unsupported;
    }
    CallInfo {
        seq: site.seq.fetch_add(1, Ordering::SeqCst),
        actor: site.actor.clone(),
        pid: None,
        method: format!(
            "HTTP {} {}",
            req.method,
            req.target.split('?').next().unwrap_or("")
        ),
        ctx: Ctx {
            namespace: String::new(),
            lease: None,
        },
        decoded: Decoded {
            class,
            op: None,
            label,
        },
        http: touch,
    }
}

/// Reads one request (head and body); `None` when the client ended the connection, also inside
/// a request: a client abandons its upload when reading the blob from the store failed (the
/// pusher closes its pipe with the error), and a request never completed never reached the
/// registry, so that is the client's own failure, not the backend's. `Err`: a malformed request.
fn read_request(r: &mut BufReader<TcpStream>) -> Result<Option<Req>, String> {
    match read_whole(r) {
        Err(Bad::Ended) => Ok(None),
        Err(Bad::Malformed(why)) => Err(why),
        Ok(req) => Ok(Some(req)),
    }
}

enum Bad {
    Ended,
    Malformed(String),
}

impl From<std::io::Error> for Bad {
    fn from(_: std::io::Error) -> Bad {
        Bad::Ended
    }
}

fn read_whole(r: &mut BufReader<TcpStream>) -> Result<Req, Bad> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(Bad::Ended);
        }
        size += n;
        if size > MAX_HEAD {
            let why = format!("a request head longer than {MAX_HEAD} bytes");
            return Err(Bad::Malformed(why));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let mut req = parse_head(lines);
    let len: usize = match req.header("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| Bad::Malformed(format!("bad Content-Length {v:?}")))?,
        None => 0,
    };
    if len > MAX_BODY {
        let why = format!("a request body of {len} bytes (at most {MAX_BODY})");
        return Err(Bad::Malformed(why));
    }
    req.body = vec![0; len];
    r.read_exact(&mut req.body)?;
    Ok(req)
}

/// The request line and headers (`lines`, not empty) as a request without its body.
fn parse_head(mut lines: Vec<String>) -> Req {
    let first = lines.remove(0);
    let mut words = first.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let mut req = Req {
        method: method.to_string(),
        target: target.to_string(),
        headers: lines,
        body: Vec::new(),
        close: false,
        chunked: false,
    };
    req.close = req
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    req.chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    req
}

/// Answers 501 with `why`, without forwarding.
fn refuse(out: &mut TcpStream, why: &str) -> Ended {
    let text = format!(
        "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{why}",
        why.len()
    );
    let _ = out.write_all(text.as_bytes());
    Ended {
        status: Some(501),
        message: why.to_string(),
        ..Ended::default()
    }
}

/// Forwards `req` upstream (over the connection kept for this client, made again when the
/// registry closed it) and relays the answer; its status code, or a reset.
fn forward(up: &mut Option<TcpStream>, addr: &str, req: &Req, out: &mut TcpStream) -> Ended {
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for h in &req.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    let fresh = up.is_none();
    let conn = match send(up, addr, &bytes) {
        Ok(c) => c,
        Err(_) if !fresh => match send(up, addr, &bytes) {
            Ok(c) => c,
            Err(e) => return Ended::reset(e),
        },
        Err(e) => return Ended::reset(e),
    };
    match relay(conn, req.method == "HEAD", out) {
        Ok((status, keep)) => {
            if !keep {
                *up = None;
            }
            Ended {
                status: Some(status as i32),
                ..Ended::default()
            }
        }
        Err(e) => {
            *up = None;
            Ended::reset(e)
        }
    }
}

/// Writes `bytes` on the kept connection, or a new one.
fn send<'a>(
    up: &'a mut Option<TcpStream>,
    addr: &str,
    bytes: &[u8],
) -> Result<&'a mut TcpStream, String> {
    if up.is_none() {
        let c = TcpStream::connect(addr).map_err(|e| format!("the registry {addr}: {e}"))?;
        let _ = c.set_nodelay(true);
        let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
        *up = Some(c);
    }
    let c = up.as_mut().expect("set above");
    if let Err(e) = c.write_all(bytes) {
        *up = None;
        return Err(format!("writing to the registry: {e}"));
    }
    Ok(up.as_mut().expect("kept"))
}

/// Relays one answer from `up` to `out`: its status, and whether the connection stays open.
fn relay(up: &mut TcpStream, head_only: bool, out: &mut TcpStream) -> Result<(u16, bool), String> {
    let mut r = BufReader::new(up);
    let mut head = Vec::new();
    let (mut status, mut len, mut chunked, mut keep) = (0u16, None, false, true);
    loop {
        let start = head.len();
        let n = r.read_until(b'\n', &mut head).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the registry closed the connection before answering".into());
        }
        let line = String::from_utf8_lossy(&head[start..])
            .trim_end()
            .to_string();
        if start == 0 {
            status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            continue;
        }
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" => keep = !v.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    out.write_all(&head).map_err(|e| e.to_string())?;
    let none = head_only || status < 200 || status == 204 || status == 304;
    match (none, chunked, len) {
        (true, _, _) => {}
        (false, true, _) => relay_chunked(&mut r, out)?,
        (false, false, Some(n)) => copy_exact(&mut r, out, n)?,
        (false, false, None) => {
            std::io::copy(&mut r, out).map_err(|e| e.to_string())?;
            keep = false;
        }
    }
    Ok((status, keep))
}

fn copy_exact(r: &mut impl Read, out: &mut TcpStream, n: usize) -> Result<(), String> {
    let copied = std::io::copy(&mut r.take(n as u64), out).map_err(|e| e.to_string())?;
    match copied as usize == n {
        true => Ok(()),
        false => Err(format!(
            "the registry's answer ended after {copied} of {n} bytes"
        )),
    }
}

/// Relays a chunked body as it came, to its last chunk and trailers.
fn relay_chunked(r: &mut BufReader<&mut TcpStream>, out: &mut TcpStream) -> Result<(), String> {
    loop {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        out.write_all(&line).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&line);
        let size = text.trim().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        if n == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = Vec::new();
                r.read_until(b'\n', &mut t).map_err(|e| e.to_string())?;
                out.write_all(&t).map_err(|e| e.to_string())?;
                if t.iter().all(|b| b.is_ascii_whitespace()) {
                    return Ok(());
                }
            }
        }
        copy_exact(r, out, n + 2)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:6111ab9896b8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// Each kind of request the docker pusher and puller make, as the rules say.
    #[test]
    fn requests_classify_as_the_rules_say() {
        let read = |repo: &str, o: &str, head| {
            Some(Touch::Read {
                repo: repo.into(),
                object: o.into(),
                head,
            })
        };
        let cases = [
            ("GET", "/v2/".to_string(), Class::PassThrough, None),
            (
                "HEAD",
                format!("/v2/app/blobs/{D}"),
                Class::Step,
                read("app", D, true),
            ),
            (
                "GET",
                format!("/v2/team/app/blobs/{D}"),
                Class::Step,
                read("team/app", D, false),
            ),
            (
                "POST",
                "/v2/app/blobs/uploads/".into(),
                Class::PassThrough,
                None,
            ),
            (
                "PATCH",
                "/v2/app/blobs/uploads/u1?_state=x".into(),
                Class::PassThrough,
                None,
            ),
            (
                "PUT",
                format!(
                    "/v2/app/blobs/uploads/u1?_state=x&digest={}",
                    D.replace(':', "%3A")
                ),
                Class::Step,
                Some(Touch::Write {
                    repo: "app".into(),
                    object: D.into(),
                    also: None,
                }),
            ),
            (
                "POST",
                format!(
                    "/v2/app/blobs/uploads/?mount={}&from=b",
                    D.replace(':', "%3A")
                ),
                Class::Step,
                Some(Touch::Mount {
                    repo: "app".into(),
                    from: "b".into(),
                    object: D.into(),
                }),
            ),
            (
                "HEAD",
                "/v2/app/manifests/1".into(),
                Class::Step,
                read("app", "app/manifests/1", true),
            ),
            (
                "HEAD",
                format!("/v2/app/manifests/{D}"),
                Class::Step,
                read("app", D, true),
            ),
            (
                "DELETE",
                format!("/v2/app/manifests/{D}"),
                Class::Unsupported,
                None,
            ),
            ("GET", "/v2/_catalog".into(), Class::Unsupported, None),
        ];
        for (m, t, class, touch) in cases {
            let (c, got, _) = classify(m, &t, b"");
            assert_eq!((c, got), (class, touch), "{m} {t}");
        }
        // A manifest put by tag writes its body's digest (its label's) and the tag.
        let (_, touch, label) = classify("PUT", "/v2/app/manifests/1", b"{}");
        let object = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let also = Some("app/manifests/1".to_string());
        let want = Touch::Write {
            repo: "app".into(),
            object: object.into(),
            also,
        };
        assert_eq!(touch, Some(want));
        assert_eq!(label, "registry.put 44136fa355b3");
    }
}
