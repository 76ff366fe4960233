//! The deterministic executor: it polls exactly one actor at a time, and only at scheduling
//! points, so an execution is fully determined by the sequence of actors chosen (the schedule).
//!
//! Protocol. An actor is a future. `ctx.step(label, footprint).await` is a scheduling point:
//! on its first poll the step registers the label and footprint of the operation the actor is
//! about to perform and returns `Pending`; the actor is then *waiting*. When a strategy picks the
//! actor, the executor sets its `go` flag and polls it again: the step returns `Ready`, the actor
//! performs its operation on the shared state (synchronously) and runs on until its next
//! scheduling point (or completion). That stretch is one *step*. Since the footprint is known
//! before the step runs, strategies can compare the next steps of all actors (partial-order
//! reduction needs exactly that).
//!
//! No waker is needed: nothing outside the executor wakes anything. An actor that returns
//! `Pending` without having registered a step awaited a foreign future (a tokio timer, a
//! channel): that is reported as misuse rather than hanging.

use crate::failure::{ActorError, FailureKind};
use crate::footprint::{Footprint, Key};
use crate::hash::Fnv;
use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// At most this many actors: sets of actors are `u64` bitmasks, which keeps the explorer's
/// bookkeeping allocation-free.
pub const MAX_ACTORS: usize = 64;

type ActorFuture = Pin<Box<dyn Future<Output = Result<(), ActorError>>>>;
type Check = Box<dyn Fn() -> Result<(), String>>;
type Guard = Box<dyn Fn() -> bool>;
type FingerprintFn = Box<dyn Fn() -> u128>;

/// Per-actor mailbox between its `Sched` and the executor. Buffers are reused step to step.
#[derive(Default)]
pub(crate) struct Slot {
    /// A step is registered and awaits the scheduler.
    pending: Cell<bool>,
    /// Set by the executor just before polling the actor it picked.
    go: Cell<bool>,
    /// A second step registered while one was pending (e.g. `join!` of two steps).
    double: Cell<bool>,
    reads: RefCell<Vec<Key>>,
    writes: RefCell<Vec<Key>>,
    label_hash: Cell<u64>,
    /// Only filled when the execution records a trace.
    label: RefCell<String>,
    record: Cell<bool>,
    guard: RefCell<Option<Guard>>,
    /// Text the actor added to the label of the step it just ran (see [`Sched::complete_label`]).
    completion: RefCell<Option<String>>,
    /// What the step it just ran touched, when narrower than declared (see [`Sched::narrow`]).
    narrowed: RefCell<Option<(Vec<Key>, Vec<Key>)>>,
}

/// The handle an actor uses to reach scheduling points. Cheap to clone.
#[derive(Clone)]
pub struct Sched {
    slot: Rc<Slot>,
    index: usize,
}

impl Sched {
    /// This actor's index (its position in spawn order).
    pub fn index(&self) -> usize {
        self.index
    }

    /// A scheduling point before an operation with the given footprint. `label` names the
    /// operation; it is only formatted (into a hash, or a string when a trace is recorded), so
    /// `format_args!` labels cost no allocation during exploration.
    pub fn step<'a, L: fmt::Display>(&'a self, label: L, footprint: Footprint<'a>) -> Step<'a, L> {
        Step {
            ctx: self,
            label: Some(label),
            label_hash: None,
            footprint,
            guard: None,
            registered: false,
        }
    }

    /// Like [`step`](Self::step), with the label's hash computed by the caller, for labels whose
    /// formatting would dominate a step. The hash must tell labels apart at least as well as their
    /// text, and be the same on every run, machine and toolchain (build it with [`crate::hash::Fnv`]
    /// over an explicit encoding, not `std::hash`): it enters the trace hash and replay checks.
    pub fn step_with_hash<'a, L: fmt::Display>(
        &'a self,
        label: L,
        label_hash: u64,
        footprint: Footprint<'a>,
    ) -> Step<'a, L> {
        Step {
            label_hash: Some(label_hash),
            ..self.step(label, footprint)
        }
    }

    /// Completes the label of the step this actor is running, with what only running it told (a
    /// converter's write names its digest at commit; an external client's call its answer). Call
    /// it between a step's `await` and the next scheduling point, at most once a step. The text is
    /// appended to the step's label in the trace and enters the trace hash, so a replay whose
    /// steps complete differently does not hash alike.
    pub fn complete_label(&self, text: impl fmt::Display) {
        let mut c = self.slot.completion.borrow_mut();
        assert!(c.is_none(), "a step's label completed twice");
        *c = Some(text.to_string());
    }

    /// Tells the explorer what the step this actor just ran actually touched, when running it
    /// showed that to be less than its declared footprint (a collector declares that it may
    /// remove anything; once it ran, its writes are what it removed). Call it between a step's
    /// `await` and the next scheduling point, at most once a step. `footprint` must be exact for
    /// the step as it ran: every key whose value its effect or its answer depended on among its
    /// reads ([`Key::ANY`] for "all of them"), every key it changed among its writes. Partial-order
    /// reduction then takes the step's races with other steps from it; the declared footprint
    /// still stands for the step while it was pending.
    pub fn narrow(&self, footprint: Footprint<'_>) {
        let mut n = self.slot.narrowed.borrow_mut();
        assert!(n.is_none(), "a step's footprint narrowed twice");
        *n = Some((footprint.reads.to_vec(), footprint.writes.to_vec()));
    }

    /// Like [`step`](Self::step), but the actor is *blocked* (not schedulable) while `guard`
    /// returns false. The guard should only read keys in the footprint's reads, so partial-order
    /// reduction sees what can unblock it.
    pub fn step_when<'a, L: fmt::Display>(
        &'a self,
        label: L,
        footprint: Footprint<'a>,
        guard: impl Fn() -> bool + 'static,
    ) -> Step<'a, L> {
        Step {
            ctx: self,
            label: Some(label),
            label_hash: None,
            footprint,
            guard: Some(Box::new(guard)),
            registered: false,
        }
    }
}

/// The future returned by [`Sched::step`]: completes once the scheduler picks this actor.
pub struct Step<'a, L> {
    ctx: &'a Sched,
    label: Option<L>,
    label_hash: Option<u64>,
    footprint: Footprint<'a>,
    guard: Option<Guard>,
    registered: bool,
}

// No field is structurally pinned: the label is moved out on first poll.
impl<L> Unpin for Step<'_, L> {}

impl<L: fmt::Display> Future for Step<'_, L> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let slot = &*self.ctx.slot;
        if !self.registered {
            self.registered = true;
            if slot.pending.get() {
                slot.double.set(true);
            }
            slot.pending.set(true);
            {
                let mut r = slot.reads.borrow_mut();
                r.clear();
                r.extend_from_slice(self.footprint.reads);
                let mut w = slot.writes.borrow_mut();
                w.clear();
                w.extend_from_slice(self.footprint.writes);
            }
            let label = self.label.take().expect("label present until registered");
            let hash = self.label_hash.unwrap_or_else(|| {
                let mut h = Fnv::new();
                let _ = write!(h, "{label}");
                h.finish()
            });
            slot.label_hash.set(hash);
            if slot.record.get() {
                let mut s = slot.label.borrow_mut();
                s.clear();
                let _ = write!(s, "{label}");
            }
            *slot.guard.borrow_mut() = self.guard.take();
            return Poll::Pending;
        }
        if slot.go.get() {
            slot.go.set(false);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Where an actor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// At a scheduling point (runnable unless its guard says otherwise).
    Waiting,
    /// Completed (Ok, or failed: a failure ends the execution anyway).
    Finished,
}

struct Actor {
    name: Cow<'static, str>,
    fut: Option<ActorFuture>,
    slot: Rc<Slot>,
    status: Status,
}

/// What a model builds for one execution: its actors and checks. The shared state lives in the
/// model's own values (typically an `Rc<RefCell<S>>` captured by actors and checks).
pub struct World {
    actors: Vec<Actor>,
    invariants: Vec<(Cow<'static, str>, Check)>,
    finals: Vec<(Cow<'static, str>, Check)>,
    fingerprint: Option<FingerprintFn>,
    record: bool,
    /// Slots from earlier executions, reused to avoid reallocating their buffers.
    spare: Vec<Rc<Slot>>,
}

impl World {
    fn new() -> Self {
        World {
            actors: Vec::new(),
            invariants: Vec::new(),
            finals: Vec::new(),
            fingerprint: None,
            record: false,
            spare: Vec::new(),
        }
    }

    /// Adds an actor. `body` receives the actor's [`Sched`] and returns its future. Code before
    /// its first `ctx.step` runs when the execution starts (in spawn order) and must not touch
    /// shared state.
    pub fn spawn<F, Fut>(&mut self, name: impl Into<Cow<'static, str>>, body: F)
    where
        F: FnOnce(Sched) -> Fut,
        Fut: Future<Output = Result<(), ActorError>> + 'static,
    {
        let slot = self.spare.pop().unwrap_or_default();
        slot.record.set(self.record);
        let ctx = Sched {
            slot: slot.clone(),
            index: self.actors.len(),
        };
        let fut: ActorFuture = Box::pin(body(ctx));
        self.actors.push(Actor {
            name: name.into(),
            fut: Some(fut),
            slot,
            status: Status::Waiting,
        });
    }

    /// A check run after every step. NOTE: partial-order reduction only explores one
    /// interleaving per equivalence class, so intermediate global states of skipped
    /// interleavings are not visited; an invariant relating several keys is only guaranteed to
    /// be checked on every reachable state with `Config::reduction = false`. Final checks and
    /// actor failures are always preserved.
    pub fn invariant(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        check: impl Fn() -> Result<(), String> + 'static,
    ) {
        self.invariants.push((name.into(), Box::new(check)));
    }

    /// A check run once all actors have finished.
    pub fn finally(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        check: impl Fn() -> Result<(), String> + 'static,
    ) {
        self.finals.push((name.into(), Box::new(check)));
    }

    /// Opts this model into visited-state pruning ([`Config::prune`](crate::Config::prune)):
    /// `state` fingerprints, at a scheduling point, everything that can change the future of the
    /// execution other than what the harness knows itself. The harness adds each actor's status,
    /// step count and pending step (label hash, footprint) and, under a preemption bound, the
    /// preemptions used and the last actor; `state` must cover the shared state and every
    /// actor's local state (for a deterministic actor, the sequence of answers its steps got).
    /// Two scheduling points with the same fingerprint must have the same futures, and every
    /// invariant and final check must be a function of that state: DFS does not explore below a
    /// state it has already explored. It must be at least as fine as the truth (a collision is a
    /// false proof: use 128 bits of a good hash, e.g. [`crate::hash::Fnv128`], over an explicit
    /// encoding) and deterministic. Called between steps, never while an actor runs.
    pub fn fingerprint(&mut self, state: impl Fn() -> u128 + 'static) {
        self.fingerprint = Some(Box::new(state));
    }

    /// Number of actors spawned so far.
    pub fn actor_count(&self) -> usize {
        self.actors.len()
    }

    fn clear(&mut self) {
        // Drop futures first: they hold clones of the slots.
        for a in self.actors.drain(..) {
            drop(a.fut);
            let slot = a.slot;
            if Rc::strong_count(&slot) == 1 {
                slot.pending.set(false);
                slot.go.set(false);
                slot.double.set(false);
                *slot.guard.borrow_mut() = None;
                *slot.completion.borrow_mut() = None;
                *slot.narrowed.borrow_mut() = None;
                self.spare.push(slot);
            }
        }
        self.invariants.clear();
        self.finals.clear();
        self.fingerprint = None;
    }
}

/// A model: builds a fresh world (state, actors, checks) for each execution. Any
/// `Fn(&mut World)` is a model. Building must be deterministic.
pub trait Model {
    /// Builds one execution's world.
    fn build(&self, world: &mut World);
}

impl<F: Fn(&mut World) + ?Sized> Model for F {
    fn build(&self, world: &mut World) {
        self(world)
    }
}

/// What a strategy sees when it must pick the next actor.
pub(crate) struct View<'a> {
    /// Steps executed so far.
    pub step: usize,
    /// Actors that can be picked.
    pub enabled: u64,
    /// Actor of the previous step.
    pub last: Option<usize>,
    actors: &'a [Actor],
    fingerprint: Option<&'a dyn Fn() -> u128>,
}

impl View<'_> {
    pub fn actor_count(&self) -> usize {
        self.actors.len()
    }
    pub fn reads(&self, i: usize) -> Ref<'_, Vec<Key>> {
        self.actors[i].slot.reads.borrow()
    }
    pub fn writes(&self, i: usize) -> Ref<'_, Vec<Key>> {
        self.actors[i].slot.writes.borrow()
    }
    /// Hash of the label of actor `i`'s pending step.
    pub fn label_hash(&self, i: usize) -> u64 {
        self.actors[i].slot.label_hash.get()
    }
    pub fn status(&self, i: usize) -> Status {
        self.actors[i].status
    }
    pub fn name(&self, i: usize) -> &str {
        &self.actors[i].name
    }
    /// The model's fingerprint of the state here ([`World::fingerprint`]); `None` when it
    /// registered none, or the fingerprint panicked (no pruning at this state then).
    pub fn model_state(&self) -> Option<u128> {
        let f = self.fingerprint?;
        quietly(f).ok()
    }
    /// Whether picking `a` now is a preemption: the previous actor could have continued.
    pub fn is_preemption(&self, a: usize) -> bool {
        matches!(self.last, Some(l) if l != a && self.enabled & (1u64 << l) != 0)
    }
}

/// A strategy's answer.
pub(crate) enum Pick {
    Actor(usize),
    /// Stop this execution without a verdict (e.g. every enabled actor is in the sleep set).
    Abort,
    /// The strategy cannot continue (replay schedule does not match the program).
    Diverged(String),
}

pub(crate) trait Chooser {
    fn choose(&mut self, view: &View<'_>) -> Pick;
    /// Whether the execution just run belongs to this strategy's slice (sharding); an
    /// execution it does not own is not counted.
    fn owned(&self) -> bool {
        true
    }
    /// Called after the step the last `choose` picked ran, with its footprint when the actor
    /// narrowed it ([`Sched::narrow`]); `None`: the declared one stands.
    fn ran(&mut self, _narrowed: Option<Footprint<'_>>) {}
    /// Called when an execution ends (not aborted), with its number of steps.
    fn finished(&mut self, _steps: usize) {}
}

/// How an execution ended.
#[derive(Clone, Debug)]
pub(crate) enum End {
    Complete,
    Failed(FailureKind),
    Aborted,
    Diverged { step: usize, message: String },
}

/// One recorded step of a trace.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceStep {
    /// Position in the execution (0-based).
    pub index: usize,
    /// Actor index.
    pub actor: usize,
    /// The label of the scheduling point this step started at.
    pub label: String,
    /// Keys read.
    pub reads: Vec<u64>,
    /// Keys written.
    pub writes: Vec<u64>,
    /// Whether picking this actor was a preemption.
    pub preemption: bool,
    /// "finished" when the actor completed in this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What running the step added to its label ([`Sched::complete_label`]); `label` ends with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
}

pub(crate) struct RunOutput {
    pub end: End,
    pub steps: usize,
    pub preemptions: usize,
    pub hash: u64,
    pub names: Vec<String>,
    pub recorded: Vec<TraceStep>,
}

/// Runs executions. Reused across executions so buffers are allocated once.
pub(crate) struct Executor {
    world: World,
    pub schedule: Vec<u8>,
    max_steps: usize,
}

fn noop_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: every vtable function ignores the (null) data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

thread_local! {
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once, process-wide) a panic hook that stays silent for panics the harness catches
/// on this thread and defers to the previous hook otherwise. Without it, exploring a model
/// whose actors panic would print thousands of backtraces.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, catching a panic as its message.
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    let was = QUIET_PANICS.with(|q| q.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was));
    r.map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        }
    })
}

enum Polled {
    Waiting,
    Done,
    Failed(FailureKind),
}

impl Executor {
    pub fn new(max_steps: usize) -> Self {
        Executor {
            world: World::new(),
            schedule: Vec::new(),
            max_steps,
        }
    }

    fn poll_actor(&mut self, i: usize, waker: &Waker) -> Polled {
        let actor = &mut self.world.actors[i];
        let Some(fut) = actor.fut.as_mut() else {
            return Polled::Done;
        };
        let mut cx = Context::from_waker(waker);
        let slot = actor.slot.clone();
        match quietly(|| fut.as_mut().poll(&mut cx)) {
            Ok(Poll::Ready(r)) => {
                actor.fut = None;
                actor.status = Status::Finished;
                slot.pending.set(false);
                match r {
                    Ok(()) => Polled::Done,
                    Err(error) => Polled::Failed(FailureKind::ActorError { actor: i, error }),
                }
            }
            Ok(Poll::Pending) => {
                if slot.double.get() {
                    return Polled::Failed(FailureKind::Misuse {
                        actor: Some(i),
                        message: "awaited two scheduling points at once".into(),
                    });
                }
                if !slot.pending.get() {
                    return Polled::Failed(FailureKind::Misuse {
                        actor: Some(i),
                        message: "returned Pending outside a scheduling point (awaited a future the harness does not drive)".into(),
                    });
                }
                Polled::Waiting
            }
            Err(message) => {
                actor.fut = None;
                actor.status = Status::Finished;
                Polled::Failed(FailureKind::Panic { actor: i, message })
            }
        }
    }

    fn enabled(&self) -> Result<u64, FailureKind> {
        let mut mask = 0u64;
        for (i, a) in self.world.actors.iter().enumerate() {
            if a.status != Status::Waiting {
                continue;
            }
            let guard = a.slot.guard.borrow();
            let ok = match guard.as_ref() {
                None => true,
                Some(g) => {
                    quietly(g).map_err(|message| FailureKind::Panic { actor: i, message })?
                }
            };
            if ok {
                mask |= 1 << i;
            }
        }
        Ok(mask)
    }

    fn check_invariants(&self) -> Option<FailureKind> {
        for (name, check) in &self.world.invariants {
            match quietly(check) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    return Some(FailureKind::Invariant {
                        name: name.to_string(),
                        message,
                    })
                }
                Err(p) => {
                    return Some(FailureKind::Invariant {
                        name: name.to_string(),
                        message: format!("panicked: {p}"),
                    })
                }
            }
        }
        None
    }

    fn check_finals(&self) -> Option<FailureKind> {
        for (name, check) in &self.world.finals {
            match quietly(check) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    return Some(FailureKind::Final {
                        name: name.to_string(),
                        message,
                    })
                }
                Err(p) => {
                    return Some(FailureKind::Final {
                        name: name.to_string(),
                        message: format!("panicked: {p}"),
                    })
                }
            }
        }
        None
    }

    /// Runs one execution of `model`, asking `chooser` at every scheduling point.
    /// `record` materialises labels and returns the trace steps.
    pub fn run<M: Model + ?Sized>(
        &mut self,
        model: &M,
        chooser: &mut dyn Chooser,
        record: bool,
    ) -> RunOutput {
        self.world.clear();
        self.world.record = record;
        self.schedule.clear();
        let mut out = RunOutput {
            end: End::Complete,
            steps: 0,
            preemptions: 0,
            hash: 0,
            names: Vec::new(),
            recorded: Vec::new(),
        };
        let mut hash = Fnv::new();
        let end = self.run_inner(model, chooser, record, &mut hash, &mut out);
        if !matches!(end, End::Aborted | End::Diverged { .. }) {
            chooser.finished(out.steps);
        }
        if let End::Failed(kind) = &end {
            // The verdict is part of the trace: a model that fails differently under the same
            // schedule must not hash the same.
            let names: Vec<String> = self
                .world
                .actors
                .iter()
                .map(|a| a.name.to_string())
                .collect();
            let _ = write!(hash, "\u{0}{}", kind.signature(&names));
        }
        out.end = end;
        out.hash = hash.finish();
        out.names = self
            .world
            .actors
            .iter()
            .map(|a| a.name.to_string())
            .collect();
        // Drop this execution's futures now so their state is released before the next one.
        self.world.clear();
        out
    }

    fn run_inner<M: Model + ?Sized>(
        &mut self,
        model: &M,
        chooser: &mut dyn Chooser,
        record: bool,
        hash: &mut Fnv,
        out: &mut RunOutput,
    ) -> End {
        if let Err(message) = quietly(|| model.build(&mut self.world)) {
            return End::Failed(FailureKind::Misuse {
                actor: None,
                message: format!("model panicked while building: {message}"),
            });
        }
        let n = self.world.actors.len();
        if n > MAX_ACTORS {
            return End::Failed(FailureKind::Misuse {
                actor: None,
                message: format!("{n} actors; at most {MAX_ACTORS} are supported"),
            });
        }
        let waker = noop_waker();
        for i in 0..n {
            if let Polled::Failed(k) = self.poll_actor(i, &waker) {
                return End::Failed(k);
            }
        }
        let mut last: Option<usize> = None;
        loop {
            let enabled = match self.enabled() {
                Ok(e) => e,
                Err(k) => return End::Failed(k),
            };
            if enabled == 0 {
                let blocked: Vec<usize> = (0..n)
                    .filter(|&i| self.world.actors[i].status == Status::Waiting)
                    .collect();
                if !blocked.is_empty() {
                    return End::Failed(FailureKind::Deadlock { blocked });
                }
                return match self.check_finals() {
                    Some(k) => End::Failed(k),
                    None => End::Complete,
                };
            }
            if out.steps >= self.max_steps {
                return End::Failed(FailureKind::StepBudget {
                    steps: self.max_steps,
                });
            }
            let view = View {
                step: out.steps,
                enabled,
                last,
                actors: &self.world.actors,
                fingerprint: self.world.fingerprint.as_deref(),
            };
            let pick = chooser.choose(&view);
            let a = match pick {
                Pick::Actor(a) => a,
                Pick::Abort => return End::Aborted,
                Pick::Diverged(message) => {
                    return End::Diverged {
                        step: out.steps,
                        message,
                    }
                }
            };
            if a >= n || enabled & (1 << a) == 0 {
                return End::Diverged {
                    step: out.steps,
                    message: format!("strategy picked actor {a}, which is not enabled"),
                };
            }
            let preemption = view.is_preemption(a);
            if preemption {
                out.preemptions += 1;
            }
            let slot = self.world.actors[a].slot.clone();
            hash.u64(a as u64);
            hash.u64(slot.label_hash.get());
            if record {
                out.recorded.push(TraceStep {
                    index: out.steps,
                    actor: a,
                    label: slot.label.borrow().clone(),
                    reads: slot.reads.borrow().iter().map(|k| k.0).collect(),
                    writes: slot.writes.borrow().iter().map(|k| k.0).collect(),
                    preemption,
                    note: None,
                    completion: None,
                });
            }
            self.schedule.push(a as u8);
            out.steps += 1;
            last = Some(a);
            slot.pending.set(false);
            slot.go.set(true);
            *slot.guard.borrow_mut() = None;
            let polled = self.poll_actor(a, &waker);
            if let Some(text) = slot.completion.borrow_mut().take() {
                let mut h = Fnv::new();
                let _ = write!(h, "{text}");
                hash.u64(h.finish());
                if let Some(s) = out.recorded.last_mut() {
                    s.label.push(' ');
                    s.label.push_str(&text);
                    s.completion = Some(text);
                }
            }
            let narrowed = slot.narrowed.borrow_mut().take();
            let narrowed = narrowed.as_ref().map(|(r, w)| Footprint::new(r, w));
            if let (Some(f), Some(s)) = (narrowed, out.recorded.last_mut()) {
                s.reads = f.reads.iter().map(|k| k.0).collect();
                s.writes = f.writes.iter().map(|k| k.0).collect();
            }
            chooser.ran(narrowed);
            match polled {
                Polled::Waiting => {}
                Polled::Done => {
                    if let Some(s) = out.recorded.last_mut() {
                        s.note = Some("finished".into());
                    }
                }
                Polled::Failed(k) => return End::Failed(k),
            }
            if let Some(k) = self.check_invariants() {
                return End::Failed(k);
            }
        }
    }
}
