//! The seam between a scenario's client programs and whatever executes their calls.
//!
//! - [`Client`]: the API every program is written against, once ([`Call`] for containerd calls,
//!   plus the registry and the GC scheduler's tick).
//! - [`Exec`]: one backend, executing one request synchronously inside its step: the model
//!   (`model.rs`), a real containerd (`daemon.rs`, feature `containerd`). A new backend is one
//!   `Exec` impl.
//! - [`Stepped`]: the one client that owns the scheduling point of every request (its label and
//!   footprint from `footprint.rs`) and then hands the request to an `Exec`, whatever it is.
//! - [`external`]: actors whose requests arrive from outside the executor (a thread, a process
//!   behind an interposer) over a [`external::Feed`], stepped and executed the same way.
//! - [`spawn_scenario`]: a scenario's actors and store invariant on any `Exec`, the one place
//!   both the explorer and every replay build an execution.
//! - `locked.rs`: the same programs under loom and shuttle (one lock per call).

pub mod external;
pub mod footprint;
pub mod locked;
pub mod model;
pub mod registry;
pub mod translate;

pub mod commands;

#[cfg(feature = "containerd")]
pub mod daemon;
#[cfg(feature = "containerd")]
pub mod interposed;
#[cfg(feature = "containerd")]
pub mod real;
#[cfg(feature = "containerd")]
pub mod record;
#[cfg(feature = "containerd")]
pub mod session;

use crate::explore::{classify, run_actor};
use crate::scenario::{Invariant, Scenario};
use pushrace_harness::{Footprint, Key, Sched, World};
use pushrace_models::digest::short;
use pushrace_models::program::Call;
use pushrace_models::WriteStyle;
use pushrace_models::{Error, Op, OpKind, Outcome};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

pub use footprint::step_for;
pub use model::{Shared, Sim};
pub use registry::RepoObject;

/// A containerd client as nerdctl uses it, plus the registry it pushes to and the daemon's GC
/// scheduler.
pub trait Client: Call {
    /// The registry's HEAD for a blob of a repository: does the repository already have it? One
    /// step.
    fn registry_has(&self, o: &RepoObject) -> impl Future<Output = bool>;

    /// The HEAD of a tag (`HEAD /v2/REPO/manifests/TAG`), as the pusher reads it: the tag names
    /// `digest`. One step.
    fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> impl Future<Output = bool>;

    /// The upload that completes a blob push: the repository has the blob from now on. One step.
    fn registry_put(&self, o: &RepoObject) -> impl Future<Output = ()>;

    /// A manifest PUT by tag: the manifest `digest` is in the tag's repository, and the tag
    /// names it. One step.
    fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) -> impl Future<Output = ()>;

    /// A cross-repository mount (`POST /v2/REPO/blobs/uploads/?mount=D&from=FROM`): the
    /// repository has the blob from now on when `from` has it (201 Created, `true`); otherwise
    /// the registry opens an upload session instead (202 Accepted, `false`), and the pusher
    /// uploads the blob. One step.
    fn registry_mount(&self, o: &RepoObject, from: &str) -> impl Future<Output = bool>;

    /// One tick of the daemon's background GC scheduler: a GC runs now if one is due
    /// (gc/scheduler: any delete since the last GC, or 100 mutations). Returns whether one ran.
    fn gc_tick(&self) -> impl Future<Output = bool>;

    /// A tick whose result the caller does not look at (the background ticker's): a history of
    /// answers records only that it happened, as [`Call::call_seen`] records only what is seen.
    fn gc_tick_unseen(&self) -> impl Future<Output = ()> {
        async {
            self.gc_tick().await;
        }
    }
}

/// A backend: executes one request synchronously, inside the step the scheduler chose for it.
pub trait Exec {
    /// One containerd call.
    fn call(&self, op: &Op) -> Result<Outcome, Error>;
    /// Whether the repository holds the blob (or tag).
    fn registry_has(&self, o: &RepoObject) -> bool;
    /// Whether the tag names `digest`.
    fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool;
    /// The repository holds the blob from now on.
    fn registry_put(&self, o: &RepoObject);
    /// The manifest `digest` is in the tag's repository, and the tag names it.
    fn registry_put_tagged(&self, tag: &RepoObject, digest: &str);
    /// A cross-repository mount ([`Client::registry_mount`], [`registry::Registry::mount`]):
    /// whether the blob was put into `o.repo`.
    fn registry_mount(&self, o: &RepoObject, from: &str) -> bool;
    /// A GC if the scheduler says one is due; whether one ran.
    fn gc_tick(&self) -> bool;
    /// The model that judges the store invariants (`gc-safety`, `no-dangling-reference`), which
    /// need the model's mark: the model itself, or a real backend's shadow.
    fn oracle(&self) -> Shared;
    /// Actor `actor` got `answer` (a call's `Result<Outcome, Error>` or an [`Answer`]) from its
    /// step: the model keeps a history of these for its state fingerprint (visited-state
    /// pruning); other backends need not.
    fn observe(&self, _actor: usize, _answer: &dyn std::any::Any) {}
    /// What the request just run touched, as (reads, writes), when running it showed that to be
    /// less than its declared footprint (the model's GCs: [`Sim::effect`]); `None`: the declared
    /// footprint stands. Its client narrows its step by it ([`Sched::narrow`]).
    fn take_effect(&self) -> Option<(Vec<Key>, Vec<Key>)> {
        None
    }
}

/// One request of an actor to its backend.
#[derive(Clone, Debug)]
pub enum Request {
    /// A containerd call.
    Call(Op),
    /// The registry's HEAD for a blob (or, from a real client, a tag).
    RegistryHas(RepoObject),
    /// The pusher's HEAD of a tag: does it name this digest?
    RegistryTagged(RepoObject, String),
    /// The upload that completes a blob push.
    RegistryPut(RepoObject),
    /// A manifest PUT by tag (the tag, the manifest's digest).
    RegistryPutTagged(RepoObject, String),
    /// A cross-repository mount of a blob from the repository named.
    RegistryMount(RepoObject, String),
    /// A tick of the background GC scheduler.
    GcTick,
    /// A call of an external client that the model has no `Op` for (`content.status REF`,
    /// `namespace.create N`), or whose `Op` is known only once it ran (a `Content.Write` stream
    /// before its commit): a step with this label that touches everything and changes nothing on
    /// the model (the feed applies what it learns, see [`external::Feed::run`]).
    Opaque(String),
    /// A step of an external client that touches nothing shared: a command actor starting its
    /// next process (`exec ctr …`). Its footprint is empty, so it commutes with every other
    /// actor's step (what the process then does is in its own later steps).
    Local(String),
}

/// What a [`Request`] answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A containerd call's result.
    Call(Result<Outcome, Error>),
    /// HEAD: the registry has the blob; mount: the blob was mounted; tick: a GC ran.
    Yes(bool),
    /// The upload is done.
    Done,
}

impl std::fmt::Display for Request {
    /// The step's label: `content.info 6111ab9896b8`, `registry.put 6111ab9896b8`, `gc.tick`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Call(op) => write!(f, "{op}"),
            Request::RegistryHas(o) => write!(f, "registry.head {}", short(&o.object)),
            Request::RegistryTagged(t, _) => write!(f, "registry.head {}", t.object),
            Request::RegistryPut(o) => write!(f, "registry.put {}", short(&o.object)),
            Request::RegistryPutTagged(_, d) => write!(f, "registry.put {}", short(d)),
            Request::RegistryMount(o, _) => write!(f, "registry.mount {}", short(&o.object)),
            Request::GcTick => f.write_str("gc.tick"),
            Request::Opaque(label) | Request::Local(label) => f.write_str(label),
        }
    }
}

impl Request {
    /// Awaits the request's scheduling point: its label, label hash and footprint, with `also`
    /// written too ([`external::Reach`]). A registry step touches its blob's key (one key per
    /// digest, whatever the repository: coarser than the registry, so it only adds
    /// dependencies; a mount reads and writes it); a GC tick may collect anything, so it reads
    /// and writes all.
    pub async fn step(&self, sched: &Sched, also: Option<Key>) {
        use footprint::{registry_key, ALL, CLOCK, SCHED};
        let extra = also.as_slice();
        match self {
            Request::Call(op) => step_for(sched, op, also).await,
            Request::RegistryHas(o) | Request::RegistryTagged(o, _) => {
                let reads = [registry_key(&o.object)];
                sched.step(self, Footprint::new(&reads, extra)).await
            }
            // Writes the manifest's key and the tag's, as the registry proxy's PUT by tag does.
            Request::RegistryPutTagged(t, d) => {
                let writes = [&[registry_key(d), registry_key(&t.object)][..], extra].concat();
                sched.step(self, Footprint::write(&writes)).await
            }
            Request::RegistryPut(o) | Request::RegistryMount(o, _) => {
                let writes = [&[registry_key(&o.object)][..], extra].concat();
                sched.step(self, Footprint::write(&writes)).await
            }
            Request::GcTick => {
                let footprint = Footprint::new(&[ALL, CLOCK, SCHED], &[ALL, SCHED]);
                sched.step(self, footprint).await
            }
            Request::Opaque(_) => sched.step(self, Footprint::write(&[ALL])).await,
            Request::Local(_) => sched.step(self, Footprint::write(extra)).await,
        }
    }

    /// Executes the request on `exec` (inside its step).
    pub fn run(&self, exec: &(impl Exec + ?Sized)) -> Answer {
        match self {
            Request::Call(op) => Answer::Call(exec.call(op)),
            Request::RegistryHas(o) => Answer::Yes(exec.registry_has(o)),
            Request::RegistryTagged(t, d) => Answer::Yes(exec.registry_tagged(t, d)),
            Request::RegistryPut(o) => {
                exec.registry_put(o);
                Answer::Done
            }
            Request::RegistryPutTagged(t, d) => {
                exec.registry_put_tagged(t, d);
                Answer::Done
            }
            Request::RegistryMount(o, from) => Answer::Yes(exec.registry_mount(o, from)),
            Request::GcTick => Answer::Yes(exec.gc_tick()),
            Request::Opaque(_) | Request::Local(_) => Answer::Done,
        }
    }
}

/// One actor's client over a backend: every request first awaits its scheduling point, then runs
/// on the backend, atomically with respect to the other actors.
#[derive(Clone)]
pub struct Stepped<E> {
    pub sched: Sched,
    pub exec: E,
}

/// The model backend's client.
pub type ModelClient = Stepped<Shared>;

impl<E: Exec> Stepped<E> {
    /// One call's step, then the call on the backend.
    async fn step_and_run(&self, op: &Op) -> Result<Outcome, Error> {
        step_for(&self.sched, op, None).await;
        if let Some(open) = refused_open(op, &self.exec) {
            self.sched.complete_label(open);
        }
        self.exec.call(op)
    }

    async fn request(&self, r: Request) -> Answer {
        r.step(&self.sched, None).await;
        let answer = r.run(&self.exec);
        self.ran(&answer);
        answer
    }

    /// After a step ran: the model learns the answer, and the step's footprint is narrowed to
    /// what it touched when the backend knows that better than the declaration.
    fn ran(&self, answer: &dyn std::any::Any) {
        self.exec.observe(self.sched.index(), answer);
        if let Some((reads, writes)) = self.exec.take_effect() {
            self.sched.narrow(Footprint::new(&reads, &writes));
        }
    }
}

impl<E: Exec> Call for Stepped<E> {
    /// `request(Request::Call(op))` without wrapping the call and its answer: this is the
    /// explorer's hot path, and the wrapped future's extra moves cost 5% of an execution.
    async fn call(&self, op: Op) -> Result<Outcome, Error> {
        let answer = self.step_and_run(&op).await;
        self.ran(&answer);
        answer
    }

    /// The history of answers gets only what the program sees.
    async fn call_seen(
        &self,
        op: Op,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> Result<Outcome, Error> {
        let answer = self.step_and_run(&op).await.map(seen);
        self.ran(&answer);
        answer
    }
}

/// A write that declares its digest at the open (`content.OpenWriter(WithDescriptor)`: a pull's
/// fetch) of a blob the namespace already has: containerd refuses the stream's first message with
/// AlreadyExists (metadata/content.go Writer), so the call was only the open, and the interposer
/// completes a real client's step as `ingest.open REF` (decode.rs `WriteTap::op`: an uncommitted
/// stream). The model's step is completed the same way, so both sides' steps read alike; the
/// oracle (the model, or a real backend's shadow) is asked before the call runs.
fn refused_open<E: Exec>(op: &Op, exec: &E) -> Option<Op> {
    let OpKind::ContentWrite {
        r,
        expected: Some(d),
        style: WriteStyle::Open,
        ..
    } = &op.kind
    else {
        return None;
    };
    let exists = exec
        .oracle()
        .borrow()
        .store
        .info(&op.ctx, d.as_str())
        .is_ok();
    exists.then(|| Op {
        ctx: op.ctx.clone(),
        kind: OpKind::IngestOpen {
            r: r.clone(),
            data: Default::default(),
            expected: Some(d.clone()),
        },
    })
}

impl<E: Exec> Client for Stepped<E> {
    async fn registry_has(&self, o: &RepoObject) -> bool {
        let r = self.request(Request::RegistryHas(o.clone()));
        matches!(r.await, Answer::Yes(true))
    }

    async fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        let r = self.request(Request::RegistryTagged(tag.clone(), digest.to_string()));
        matches!(r.await, Answer::Yes(true))
    }

    async fn registry_put(&self, o: &RepoObject) {
        self.request(Request::RegistryPut(o.clone())).await;
    }

    async fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) {
        let r = Request::RegistryPutTagged(tag.clone(), digest.to_string());
        self.request(r).await;
    }

    async fn registry_mount(&self, o: &RepoObject, from: &str) -> bool {
        let r = self.request(Request::RegistryMount(o.clone(), from.to_string()));
        matches!(r.await, Answer::Yes(true))
    }

    async fn gc_tick(&self) -> bool {
        matches!(self.request(Request::GcTick).await, Answer::Yes(true))
    }

    async fn gc_tick_unseen(&self) {
        let r = Request::GcTick;
        r.step(&self.sched, None).await;
        r.run(&self.exec);
        self.ran(&Answer::Done);
    }
}

/// Where an actor's requests come from.
pub enum Driver {
    /// The scenario's own program, run in process over a [`Stepped`] client.
    Program,
    /// A client outside the executor.
    External(Box<dyn external::Feed>),
}

/// Each actor's own result in one execution, by actor index (`None`: it did not finish).
pub type Outcomes = Rc<RefCell<Vec<Option<Result<(), Error>>>>>;

/// Adds a scenario's actors (each driven as `driver(i)` says, over `exec`) and its store
/// invariant to one execution's world, and returns where each actor's own result will be. Only
/// the actors `[check] actors` names count toward the invariant; what an actor's result means is
/// [`classify`]'s rule on every backend.
pub fn spawn_scenario<E: Exec + Clone + 'static>(
    w: &mut World,
    scenario: &Rc<Scenario>,
    exec: &E,
    mut driver: impl FnMut(usize) -> Driver,
) -> Outcomes {
    let outcomes: Outcomes = Rc::new(RefCell::new(vec![None; scenario.actors.len()]));
    for (i, a) in scenario.actors.iter().enumerate() {
        let (exec, scenario, outcomes) = (exec.clone(), scenario.clone(), outcomes.clone());
        let counts = scenario
            .check
            .actors
            .as_ref()
            .is_none_or(|only| only.contains(&a.name));
        let invariant = scenario.check.invariant;
        let judge = move |r: Result<(), Error>| {
            outcomes.borrow_mut()[i] = Some(r.clone());
            match counts {
                true => classify(invariant, r),
                false => Ok(()),
            }
        };
        match driver(i) {
            Driver::Program => w.spawn(a.name.clone(), move |sched| async move {
                let client = Stepped { sched, exec };
                judge(run_actor(&client, &scenario, &scenario.actors[i]).await)
            }),
            Driver::External(feed) => w.spawn(a.name.clone(), move |sched| async move {
                external::run(&sched, &exec, feed).await.and_then(judge)
            }),
        }
    }
    let oracle = exec.oracle();
    match scenario.check.invariant {
        Invariant::GcSafety => w.invariant("gc-safety", move || oracle.borrow().check_gc_safety()),
        Invariant::NoDanglingReference => w.invariant("no-dangling-reference", move || {
            oracle.borrow().check_no_dangling()
        }),
        _ => {}
    }
    outcomes
}
