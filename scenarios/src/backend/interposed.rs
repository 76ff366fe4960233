//! Real client processes as externally fed actors: each actor's commands run behind its own
//! interposer socket, every call that is a step is held until the scheduler picks it, then
//! forwarded to a private containerd (feature `containerd`).
//!
//! When to choose: an actor is *runnable* when it has a held call (or its next command waits to
//! start, itself a step `exec …`), *finished* when its commands have all run, *busy* otherwise;
//! [`CommandFeed::next`] blocks while the actor is busy, and the executor chooses only between
//! polls, so only when no actor is busy. Exact for clients that make one call at a time. Calls one
//! client has in flight at once are offered in their arrival order, which depends on time: a
//! replay whose labels differ from the schedule's is a divergence, never a verdict.
//!
//! Labels: the model's (`Op`'s Display); lease ids a client makes up are replaced by
//! `<actor>-lease<n>` (per-actor ordinals) in labels and in what the shadow model is given, and
//! `containerd.io/gc.expire` is dropped (the real lease lives 24 h, longer than any run).
//! A `Content.Write` stream is one step labelled `content.write REF` (its footprint is everything:
//! its digest may come only with its commit) and completed after it ran with the model's
//! `content.write DIGEST …` label. The completed operation is applied to the shadow model that
//! judges the store invariants; a call whose real result (ok or error) differs from the shadow's
//! is a disagreement.
//!
//! Budgets: `step` for a released call to end, `wait` for a busy actor to make its next call or
//! exit, `execution` for everything; a process past one is killed and the execution fails as a
//! backend failure.

use super::commands::{exec_label, failure, last_line, tail, CommandSpec, Place};
use super::external::{Feed, Next, Reach};
use super::footprint::registry_key;
use super::{Answer, Exec, RepoObject, Request};
use pushrace_daemon::interpose::{Admit, CallInfo, Ended, Event, HoldGate, Touch};
use pushrace_models::digest::short;
use pushrace_models::{Digest, Error, ErrorKind, Op, OpKind, Outcome};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Time limits of a real execution.
#[derive(Clone, Copy, Debug)]
pub struct Budgets {
    pub step: Duration,
    pub wait: Duration,
    pub execution: Duration,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            step: Duration::from_secs(10),
            wait: Duration::from_secs(10),
            execution: Duration::from_secs(120),
        }
    }
}

/// What all feeds of one execution report into.
#[derive(Default, Debug)]
pub struct Journal {
    pub disagreements: Vec<String>,
    /// Each actor's commands: (actor, argv shown, exit status text, stderr tail).
    pub exits: Vec<(String, String, String, String)>,
    /// Calls the daemon answered with an error: (actor, the actor's step ordinal, 0-based).
    pub errors: Vec<(String, usize)>,
}

struct Proc {
    child: Child,
    shown: String,
    /// The command as its `exec` step shows it (what a failure names).
    label: String,
    /// Step-class calls this process made.
    calls: usize,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// One command actor's feed.
pub struct CommandFeed {
    actor: String,
    commands: Vec<CommandSpec>,
    place: Place,
    next_cmd: usize,
    failed: Option<Error>,
    proc: Option<Proc>,
    events: Receiver<Event>,
    gate: Arc<HoldGate>,
    pending: VecDeque<(CallInfo, oneshot::Sender<Admit>)>,
    current: Option<(CallInfo, oneshot::Sender<Admit>)>,
    starting: bool,
    completion: Option<String>,
    /// The digest the offered Write step was predicted to write (`predicted_write`).
    predicted: Option<Digest>,
    /// Steps of this actor run so far.
    steps: usize,
    leases: LeaseNames,
    budgets: Budgets,
    deadline: Instant,
    journal: Rc<RefCell<Journal>>,
}

impl CommandFeed {
    /// The feed of `actor`, running `commands` with the placeholders of `place`.
    pub fn new(
        actor: &str,
        place: Place,
        commands: Vec<CommandSpec>,
        gate: Arc<HoldGate>,
        budgets: Budgets,
        journal: Rc<RefCell<Journal>>,
    ) -> CommandFeed {
        CommandFeed {
            actor: actor.to_string(),
            commands,
            place,
            next_cmd: 0,
            failed: None,
            proc: None,
            events: gate.actor(actor),
            gate,
            pending: VecDeque::new(),
            current: None,
            starting: false,
            completion: None,
            predicted: None,
            steps: 0,
            leases: LeaseNames::new(actor),
            budgets,
            deadline: Instant::now() + budgets.execution,
            journal,
        }
    }

    /// Kills the actor's process and everything it started (its own process group).
    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            // SAFETY: kill(2) on the process group the child leads (spawned with process_group(0)).
            unsafe { libc::kill(-(p.child.id() as i32), libc::SIGKILL) };
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Kills the actor's process and names what went wrong.
    fn fail(&mut self, why: String) -> String {
        // The harness names the actor; the label, not the argv, keeps the socket path (which
        // differs between runs) out of the trace.
        let label = self.proc.as_ref().map(|p| p.label.clone());
        self.kill();
        match label {
            Some(l) => format!("`{l}`: {why}"),
            None => why,
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let spec = &self.commands[self.next_cmd];
        self.next_cmd += 1;
        let argv = spec.substituted(&self.place);
        let shown = argv.join(" ");
        let label = exec_label(spec, &self.place.reference)["exec ".len()..].to_string();
        use std::os::unix::process::CommandExt;
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = child.map_err(|e| format!("cannot run `{}` (`{label}`): {e}", argv[0]))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("piped"), stderr.clone());
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = pipe.read_to_end(&mut b);
            *sink.lock().unwrap_or_else(|p| p.into_inner()) = b;
        });
        self.proc = Some(Proc {
            child,
            shown,
            label,
            calls: 0,
            stderr,
        });
        Ok(())
    }

    /// The process exited: record it; a failure becomes the actor's result, except a failure
    /// before any call, which never reached containerd and so says nothing about the schedule: that
    /// is a backend failure (a wrong flag, a missing file, a client that cannot connect).
    fn exited(&mut self, status: std::process::ExitStatus) -> Result<(), String> {
        let p = self.proc.take().expect("a process");
        // The stderr reader ends with the process; give it a moment to hand over.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&p.stderr) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let err = tail(&p.stderr.lock().unwrap_or_else(|e| e.into_inner()), 2000);
        let text = match status.code() {
            Some(c) => format!("exited {c}"),
            None => format!("was killed ({status})"),
        };
        let entry = (
            self.actor.clone(),
            self.place.normalise(&p.shown),
            text.clone(),
            err.clone(),
        );
        self.journal.borrow_mut().exits.push(entry);
        let why = self.place.normalise(&last_line(&err));
        if !status.success() && p.calls == 0 {
            let why = format!("`{}` {text} before making any call: {why}", p.label);
            return Err(why);
        }
        if !status.success() && self.failed.is_none() {
            self.failed = Some(failure(&p.label, &text, &why));
        }
        Ok(())
    }

    /// Moves to the next command to start (after a failure only those marked always); whether
    /// there is one.
    fn next_command(&mut self) -> bool {
        while let Some(spec) = self.commands.get(self.next_cmd) {
            if self.failed.is_none() || spec.always {
                return true;
            }
            self.next_cmd += 1;
        }
        false
    }

    fn handle(&mut self, e: Event) -> Result<(), String> {
        match e {
            Event::Held { call, admit } => {
                if let Some(p) = self.proc.as_mut() {
                    p.calls += 1;
                }
                self.pending.push_back((call, admit))
            }
            Event::Refused(call) => {
                let why = format!(
                    "unsupported call {} (the model does not know it)",
                    call.method
                );
                return Err(self.fail(why));
            }
            Event::ConnectionError(e) => return Err(self.fail(format!("connection: {e}"))),
            Event::Inner(_) | Event::Ended(..) => {}
        }
        Ok(())
    }
}

impl Drop for CommandFeed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A registry request (`interpose/http.rs`) as the step the scheduler sees, with the model's
/// footprints: a HEAD is the model's `registry.head` (reads the object), a PUT its `registry.put`
/// (writes it; a manifest put by tag is named by its digest, and also writes the tag), a GET reads the object (the model's pull
/// has no step for its downloads).
fn registry_request(touch: &Touch) -> (Request, Reach) {
    match touch {
        Touch::Read {
            repo,
            object,
            head: true,
        } => (
            Request::RegistryHas(RepoObject::new(repo, object)),
            Reach::Request,
        ),
        Touch::Read { object, .. } => {
            let label = format!("registry.get {}", short(object));
            let reads = vec![registry_key(object)];
            (
                Request::Opaque(label),
                Reach::Keys {
                    reads,
                    writes: Vec::new(),
                },
            )
        }
        Touch::Write {
            repo,
            object,
            also: None,
        } => (
            Request::RegistryPut(RepoObject::new(repo, object)),
            Reach::Request,
        ),
        Touch::Write {
            repo,
            object,
            also: Some(tag),
        } => {
            let put = Request::RegistryPutTagged(RepoObject::new(repo, tag), object.clone());
            (put, Reach::Request)
        }
        Touch::Mount { repo, from, object } => {
            let request = Request::RegistryMount(RepoObject::new(repo, object), from.clone());
            (request, Reach::Request)
        }
    }
}

/// The digest a `Content.Write` stream will commit, known from its first message: the one its
/// ref names (`remotes.MakeRefKey` names a fetch's ref `KIND-<digest>` and declares that digest;
/// containerd's converter names its `writeJSON` ref `converter-write-json-<digest>` and commits
/// with that digest), and with it the step's footprint: the model's `content.write` of that
/// digest, and the registry's object of it (a pull downloads it inside the step). `None`: the
/// ref names no digest, and the step touches everything. The feed checks after the step that
/// the stream wrote that digest ([`CommandFeed::check_predicted`]).
fn predicted_write(
    call: &CallInfo,
    request: &Request,
    leases: &mut LeaseNames,
) -> Option<(Digest, Reach)> {
    // A Write's label names its ref (`decode.rs`); the model has no operation for it yet.
    let r = call.decoded.label.strip_prefix("content.write ")?;
    let r = r.split(' ').next()?;
    if !matches!(request, Request::Opaque(_)) || call.decoded.op.is_some() {
        return None;
    }
    let at = r.rfind("sha256:")?;
    let d = Digest::parse(&r[at..]).ok()?;
    let op = leases.normalise(Op {
        ctx: call.ctx.clone(),
        kind: OpKind::ContentWrite {
            r: r.to_string(),
            data: Default::default(),
            expected: Some(d.clone()),
            labels: Default::default(),
            style: pushrace_models::WriteStyle::Open,
        },
    });
    let (reads, writes) = super::footprint::footprint(&op);
    let mut writes = writes.to_vec();
    writes.push(registry_key(d.as_str()));
    let reads = reads.to_vec();
    Some((d, Reach::Keys { reads, writes }))
}

/// `op` with the actor's registry address (its own port of the registry proxy, new in every
/// execution) written `{registry}` in image names and in label keys and values: a pull names its
/// image `HOST:PORT/app:1` and labels each blob `containerd.io/distribution.source.HOST:PORT`.
/// The step's label and footprint are then the same in every execution (a footprint naming the
/// port would make a step of one execution independent of its twin in the next), and the shadow
/// model sees one registry, as the model does: the same registry is behind every actor's port.
/// (Two actors pulling the same name would make two images in containerd and one in the shadow:
/// a disagreement, reported as such.)
fn rehost(mut op: Op, addr: &str) -> Op {
    if addr.is_empty() {
        return op;
    }
    let fix = |s: &mut String| {
        if s.contains(addr) {
            *s = s.replace(addr, "{registry}");
        }
    };
    let relabel = |l: &mut pushrace_models::Labels| {
        let fixed = std::mem::take(l).into_iter().map(|(mut k, mut v)| {
            fix(&mut k);
            fix(&mut v);
            (k, v)
        });
        *l = fixed.collect();
    };
    match &mut op.kind {
        OpKind::ImageCreate { name, labels, .. } => {
            fix(name);
            relabel(labels);
        }
        OpKind::ImageUpdate { name, labels, .. } => {
            fix(name);
            labels.iter_mut().for_each(relabel);
        }
        OpKind::ImageDelete { name, .. } | OpKind::ImageGet { name } => fix(name),
        OpKind::ContentLabel { labels, .. } | OpKind::ContentWrite { labels, .. } => {
            relabel(labels)
        }
        _ => {}
    }
    op
}

/// A real status as the model's result type.
fn real_result(e: &Ended) -> Result<Outcome, Error> {
    if e.cancelled.is_some() {
        return Ok(Outcome::Done);
    }
    let kind = match e.status {
        Some(0) => return Ok(Outcome::Done),
        Some(5) => ErrorKind::NotFound,
        Some(6) => ErrorKind::AlreadyExists,
        Some(3) => ErrorKind::InvalidArgument,
        Some(9) => ErrorKind::FailedPrecondition,
        Some(12) => ErrorKind::NotImplemented,
        Some(14) => ErrorKind::Unavailable,
        _ => ErrorKind::Unknown,
    };
    let why = e.reset.clone().unwrap_or_else(|| e.message.clone());
    Err(Error::raw(kind, why))
}

/// Lease ids a client made up, as per-actor ordinals (`<actor>-lease<n>`), so labels and what the
/// shadow model is given do not depend on the client's random ids; `containerd.io/gc.expire` is
/// dropped (the real lease lives 24 h, longer than any run). `pushrace record` names leases the
/// same way, so a recorded call reads as its replay does.
#[derive(Debug, Default)]
pub struct LeaseNames {
    actor: String,
    names: HashMap<String, String>,
}

impl LeaseNames {
    pub fn new(actor: &str) -> LeaseNames {
        LeaseNames {
            actor: actor.to_string(),
            names: HashMap::new(),
        }
    }

    fn name(&mut self, raw: &str, create: bool) -> String {
        if create && !self.names.contains_key(raw) {
            let name = format!("{}-lease{}", self.actor, self.names.len() + 1);
            self.names.insert(raw.to_string(), name);
        }
        self.names
            .get(raw)
            .cloned()
            .unwrap_or_else(|| raw.to_string())
    }

    /// `op` with its lease ids named.
    pub fn normalise(&mut self, mut op: Op) -> Op {
        if let Some(l) = op.ctx.lease.take() {
            op.ctx.lease = Some(self.name(&l, false));
        }
        match &mut op.kind {
            OpKind::LeaseCreate { id, labels, .. } => {
                *id = self.name(id, true);
                labels.remove(pushrace_models::labels::GC_EXPIRE);
            }
            OpKind::LeaseDelete { id, .. }
            | OpKind::LeaseAdd { id, .. }
            | OpKind::LeaseRemove { id, .. } => *id = self.name(id, false),
            _ => {}
        }
        op
    }

    /// A held call as the step the scheduler sees.
    pub fn request_of(&mut self, call: &CallInfo) -> Request {
        match call.decoded.op.clone() {
            Some(op) => Request::Call(self.normalise(op)),
            None => {
                let mut label = call.decoded.label.clone();
                if let Some(raw) = &call.ctx.lease {
                    label = label.replace(raw.as_str(), &self.name(raw, false));
                }
                Request::Opaque(label)
            }
        }
    }

    /// What a call that ended turned out to be: a Write's whole operation (known at its end), else
    /// the request's own.
    pub fn ran(&mut self, call: &CallInfo, ended: &Ended, request: &Request) -> Option<Op> {
        match &ended.write {
            Some(w) if w.messages > 0 => Some(self.normalise(w.op(&call.ctx))),
            _ => match request {
                Request::Call(op) => Some(op.clone()),
                _ => None,
            },
        }
    }
}

impl CommandFeed {
    /// Waits for the actor's next held call, its next command, or its end.
    fn wait(&mut self, timeout: Duration) -> Result<Next, String> {
        let until = Instant::now() + timeout;
        loop {
            if let Some((call, admit)) = self.pending.pop_front() {
                self.predicted = None;
                let (request, reach) = match &call.http {
                    Some(touch) => registry_request(touch),
                    None => {
                        let request = match self.leases.request_of(&call) {
                            Request::Call(op) => Request::Call(rehost(op, &self.place.registry)),
                            r => r,
                        };
                        let predicted = predicted_write(&call, &request, &mut self.leases);
                        let (d, reach) = predicted.unzip();
                        self.predicted = d;
                        (request, reach.unwrap_or(Reach::Request))
                    }
                };
                self.current = Some((call, admit));
                return Ok(Next::Request { request, reach });
            }
            if self.proc.is_none() {
                if !self.next_command() {
                    return Ok(Next::Finished(self.failed.take().map_or(Ok(()), Err)));
                }
                self.starting = true;
                let spec = &self.commands[self.next_cmd];
                let label = exec_label(spec, &self.place.reference);
                let (request, reach) = (Request::Local(label), Reach::Request);
                return Ok(Next::Request { request, reach });
            }
            match self.events.recv_timeout(Duration::from_millis(2)) {
                Ok(e) => self.handle(e)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail("the interposer is gone".into()))
                }
            }
            let exited = self
                .proc
                .as_mut()
                .and_then(|p| p.child.try_wait().ok().flatten());
            if let Some(status) = exited {
                while let Ok(e) = self.events.try_recv() {
                    self.handle(e)?;
                }
                self.exited(status)?;
                continue;
            }
            if Instant::now() > until.min(self.deadline) {
                let what = match Instant::now() > self.deadline {
                    true => format!(
                        "the execution took longer than {:?}",
                        self.budgets.execution
                    ),
                    false => format!("made no call and did not exit within {timeout:?}"),
                };
                return Err(self.fail(what));
            }
        }
    }

    /// Whether a call made inside the step of `request` is covered by that step's footprint:
    /// only a Write's step nests calls; its footprint is everything unless its digest D was
    /// predicted, and then it covers only a registry request of D (a pull's download).
    fn covers(&self, request: &Request, inner: &CallInfo) -> bool {
        let download = |d: &Digest| matches!(&inner.http, Some(Touch::Read { object, .. }) if object == d.as_str());
        match &self.predicted {
            Some(d) => download(d),
            None => inner.http.is_none() || matches!(request, Request::Opaque(_)),
        }
    }

    /// A predicted Write (`predicted_write`) that wrote another digest than predicted ran outside
    /// the footprint it was given: the execution fails as a backend failure.
    fn check_predicted(&mut self, op: &Op) -> Result<(), String> {
        let Some(want) = self.predicted.take() else {
            return Ok(());
        };
        let wrote = match &op.kind {
            OpKind::ContentWrite { expected, data, .. } => {
                Some(expected.clone().unwrap_or_else(|| Digest::of(data)))
            }
            OpKind::IngestOpen { expected, .. } => expected.clone(),
            _ => None,
        };
        match wrote {
            Some(d) if d != want => Err(self.fail(format!(
                "`{op}`: a Write whose ref names {want} wrote {d}, outside the footprint it was given"
            ))),
            _ => Ok(()),
        }
    }

    /// Releases the held call and waits until it and the calls made inside its step ended,
    /// each inside call covered by the step's footprint ([`CommandFeed::covers`]).
    fn release(
        &mut self,
        call: &CallInfo,
        admit: oneshot::Sender<Admit>,
        request: &Request,
    ) -> Result<Ended, String> {
        self.gate.open(&self.actor, call);
        let _ = admit.send(Admit::Forward);
        let until = Instant::now() + self.budgets.step;
        let (mut own, mut inner) = (None, BTreeSet::new());
        while own.is_none() || !inner.is_empty() {
            let left = until
                .min(self.deadline)
                .saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Ended(c, e)) if c.seq == call.seq => own = Some(*e),
                Ok(Event::Ended(c, _)) => {
                    inner.remove(&c.seq);
                }
                Ok(Event::Inner(c)) => {
                    if !self.covers(request, &c) {
                        self.gate.close(&self.actor);
                        let why = format!(
                            "call `{}` inside the step `{request}`, whose footprint does not cover it",
                            c.decoded.label
                        );
                        return Err(self.fail(why));
                    }
                    inner.insert(c.seq);
                }
                Ok(e) => self.handle(e)?,
                Err(_) => {
                    self.gate.close(&self.actor);
                    let why = format!(
                        "call `{}` did not end within {:?}",
                        call.decoded.label, self.budgets.step
                    );
                    return Err(self.fail(why));
                }
            }
        }
        self.gate.close(&self.actor);
        Ok(own.expect("the loop ends with it"))
    }

    /// The real call's result against the shadow model's: a disagreement when one is ok and the
    /// other an error.
    fn compare(&self, op: &Op, model: &Result<Outcome, Error>, real: &Result<Outcome, Error>) {
        let text = |r: &Result<Outcome, Error>| match r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error `{}`", e.message),
        };
        // The model's `content.write` is the client helper's whole write (`content.WriteBlob`,
        // `content.Copy`), which takes the server's AlreadyExists at commit as success.
        let exists = matches!(real, Err(e) if e.kind == ErrorKind::AlreadyExists);
        let real_ok = real.is_ok() || (exists && matches!(op.kind, OpKind::ContentWrite { .. }));
        if model.is_ok() != real_ok {
            let line = format!(
                "actor {} ({op}): model {}, daemon {}",
                self.actor,
                text(model),
                text(real)
            );
            self.journal.borrow_mut().disagreements.push(line);
        }
    }
}

impl CommandFeed {
    /// A registry request's answer, applied to the shadow model's registry: a HEAD's answer
    /// against the shadow's (a disagreement when they differ), a PUT that succeeded makes its
    /// objects exist there. A request the registry did not answer is a backend failure.
    fn registry_ran(
        &mut self,
        call: &CallInfo,
        touch: &Touch,
        ended: &Ended,
        exec: &dyn Exec,
    ) -> Result<Answer, String> {
        let status = match (&ended.reset, ended.status) {
            (None, Some(s)) => s,
            (why, _) => {
                let why = why.clone().unwrap_or_default();
                let what = format!("registry request `{}`: {why}", call.decoded.label);
                return Err(self.fail(what));
            }
        };
        let ok = (200..300).contains(&status);
        match touch {
            Touch::Read {
                repo,
                object,
                head: true,
            } => {
                let model = exec.registry_has(&RepoObject::new(repo, object));
                self.compare_registry(call, model, ok, status);
                Ok(Answer::Yes(ok))
            }
            Touch::Read { .. } => Ok(Answer::Done),
            // 201 Created is a blob or manifest there.
            Touch::Write { repo, object, also } => {
                if status == 201 {
                    match also {
                        None => exec.registry_put(&RepoObject::new(repo, object)),
                        Some(tag) => exec.registry_put_tagged(&RepoObject::new(repo, tag), object),
                    }
                }
                Ok(Answer::Done)
            }
            // A mount answered 201 made the blob exist here; 202 opened an upload session
            // instead (the blob comes with the session's PUT, a step of its own). The shadow
            // mounts when its `from` has the blob: it must agree with the registry.
            Touch::Mount { repo, from, object } => {
                let mounted = status == 201;
                let model = exec.registry_mount(&RepoObject::new(repo, object), from);
                self.compare_registry(call, model, mounted, status);
                Ok(Answer::Yes(mounted))
            }
        }
    }

    /// A registry answer that differs from the shadow model's registry is a disagreement.
    fn compare_registry(&self, call: &CallInfo, model: bool, real: bool, status: i32) {
        if model == real {
            return;
        }
        let line = format!(
            "actor {} ({}): model {}, registry {status}",
            self.actor,
            call.decoded.label,
            if model { "has it" } else { "has it not" }
        );
        self.journal.borrow_mut().disagreements.push(line);
    }
}

impl Feed for CommandFeed {
    fn next(&mut self, timeout: Duration) -> Result<Next, String> {
        self.wait(timeout)
    }

    fn run(&mut self, request: &Request, exec: &dyn Exec) -> Result<Answer, String> {
        self.steps += 1;
        if std::mem::take(&mut self.starting) {
            self.spawn()?;
            return Ok(Answer::Done);
        }
        let (call, admit) = self.current.take().expect("a held call was offered");
        let ended = self.release(&call, admit, request)?;
        if let Some(touch) = &call.http {
            return self.registry_ran(&call, touch, &ended, exec);
        }
        let real = real_result(&ended);
        if real.is_err() {
            let at = (self.actor.clone(), self.steps - 1);
            self.journal.borrow_mut().errors.push(at);
        }
        let ran = self.leases.ran(&call, &ended, request);
        if let Some(op) = ran.map(|op| rehost(op, &self.place.registry)) {
            self.check_predicted(&op)?;
            let model = exec.call(&op);
            self.compare(&op, &model, &real);
            if matches!(request, Request::Opaque(_)) {
                self.completion = Some(op.to_string());
            }
        }
        Ok(Answer::Call(real))
    }

    fn answer(&mut self, _: Answer) -> Option<String> {
        self.completion.take()
    }

    fn timeout(&self) -> Duration {
        self.budgets.wait
    }

    /// The calls ran on a real containerd; the shadow's GC is not evidence of what its GC removed.
    fn narrows(&self) -> bool {
        false
    }
}
