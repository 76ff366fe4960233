//! The real-containerd backend: a scenario's schedule replayed on a real containerd, one gRPC
//! call per step (feature `containerd`).
//!
//! How: the harness executor drives the actors exactly as on the model ([`spawn_scenario`], so
//! `[check] actors` and `[check] message` apply as they do there). Each call steps through the
//! model's labels and footprints ([`Stepped`]), so the same schedule string applies and the trace
//! hashes alike, then runs synchronously on the daemon (`rt.block_on(apply(…))`) inside its step:
//! the executor polls one actor at a time, so a call cannot be overtaken by another actor. The
//! registry (HEAD/PUT) is a local set with its own steps, as on the model.
//!
//! A *shadow* model steps alongside: every call is also applied to it, which gives
//! - the background GC: containerd's own scheduler is off in the private daemon's config, so a
//!   `gc.tick` runs a synchronous GC on the daemon exactly when the shadow model's scheduler says
//!   one is due, the same GCs at the same steps as the model replay. On a daemon given with
//!   `--address`, its own scheduler also collects in the background, on its own clock;
//! - a call-by-call comparison: a call whose result (ok, or the error text) differs between the
//!   daemon and the model is recorded as a disagreement, and so are differences of final state;
//! - the store invariants (`gc-safety`, `no-dangling-reference`), which need the model's mark: they
//!   are judged on the shadow ([`Exec::oracle`]).
//!
//! Setup is the scenario's own ([`crate::scenario::ImageSpec::set_up`], as parsing does it on the
//! model), then one GC; the registry starts with the scenario's preload. On a private daemon the
//! state after setup is compared with the model's setup store.

use super::registry::Registry;
use super::{spawn_scenario, Driver, Exec, Outcomes, RepoObject, Shared};
use crate::explore::{self, initial_sim, Violation};
use crate::scenario::Scenario;
use pushrace_daemon::{apply, Daemon, DaemonClient, VirtualClockMapping, DEFAULT_SCALE};
use pushrace_harness::{Config, Divergence, Execution, Explorer, Schedule, Trace, World};
use pushrace_models::program::{now_or_never, Apply};
use pushrace_models::{Ctx, Error, Op, OpKind, Outcome};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Everything the actors of the daemon replay share.
struct Inner {
    rt: tokio::runtime::Runtime,
    client: DaemonClient,
    clock: RefCell<VirtualClockMapping>,
    registry: RefCell<Registry>,
    shadow: Shared,
    calls: Cell<usize>,
    gcs: Cell<usize>,
    disagreements: RefCell<Vec<String>>,
}

/// The daemon as an [`Exec`].
#[derive(Clone)]
struct DaemonExec(Rc<Inner>);

impl DaemonExec {
    /// One call on the daemon only, synchronously.
    fn daemon(&self, op: &Op) -> Result<Outcome, Error> {
        let sh = &self.0;
        sh.calls.set(sh.calls.get() + 1);
        let mut clock = sh.clock.borrow_mut();
        sh.rt.block_on(apply(&sh.client, op, &mut clock))
    }

    fn disagree(&self, what: String) {
        let step = self.0.calls.get();
        let line = format!("call {step} {what}");
        self.0.disagreements.borrow_mut().push(line);
    }
}

fn result_text(r: &Result<Outcome, Error>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error `{}`", e.message),
    }
}

impl Exec for DaemonExec {
    /// On the daemon (its answer is what the program sees) and on the shadow.
    fn call(&self, op: &Op) -> Result<Outcome, Error> {
        let got = self.daemon(op);
        let model = self.0.shadow.borrow_mut().apply(op);
        let differ = match (&model, &got) {
            (Ok(_), Ok(_)) => false,
            (Err(a), Err(b)) => a.message != b.message,
            _ => true,
        };
        if differ {
            let (m, d) = (result_text(&model), result_text(&got));
            self.disagree(format!("({op}): model {m}, daemon {d}"));
        }
        got
    }

    fn registry_has(&self, o: &RepoObject) -> bool {
        self.0.registry.borrow().has(o)
    }

    fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        self.0.registry.borrow().tagged(tag, digest)
    }

    fn registry_put(&self, o: &RepoObject) {
        self.0.registry.borrow_mut().put(o);
    }

    fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) {
        self.0.registry.borrow_mut().put_tagged(tag, digest);
    }

    fn registry_mount(&self, o: &RepoObject, from: &str) -> bool {
        self.0.registry.borrow_mut().mount(o, from)
    }

    /// The shadow model's scheduler decides; its GC runs there, the daemon's here.
    fn gc_tick(&self) -> bool {
        let due = self.0.shadow.borrow_mut().gc_tick();
        if due {
            self.0.gcs.set(self.0.gcs.get() + 1);
            if let Err(e) = self.daemon(&gc_op()) {
                let why = e.message;
                self.disagree(format!(
                    "(gc.tick): the model collected, the daemon's GC failed: {why}"
                ));
            }
        }
        due
    }

    fn oracle(&self) -> Shared {
        self.0.shadow.clone()
    }
}

fn gc_op() -> Op {
    Op {
        ctx: Ctx::new("default"),
        kind: OpKind::GcRun,
    }
}

/// What one replay on a real daemon found.
#[derive(Debug)]
pub struct DaemonReplay {
    /// The daemon's version, and where it ran (`private, pid N` or `at SOCK`).
    pub version: String,
    pub location: String,
    /// The replayed execution, or where the daemon's programs left the schedule.
    pub execution: Result<Execution, Divergence>,
    /// The daemon's execution in the scenario's terms (as on the model: `[check] actors` and
    /// `[check] message` apply): a violation, or another failure.
    pub violation: Option<Violation>,
    pub other_failure: Option<String>,
    /// Each actor's own result (`None`: it did not finish).
    pub results: Vec<Option<Result<(), Error>>>,
    /// The model's replay of the same schedule: its trace and judgement.
    pub model_trace: Trace,
    pub model_violation: Option<Violation>,
    /// Calls whose result differed from the shadow model's, and state differences.
    pub disagreements: Vec<String>,
    /// Where the virtual clock's mapping onto real time did not hold (results then suspect).
    pub clock_violations: Vec<String>,
    pub calls: usize,
    pub gcs: usize,
    pub started: Duration,
    pub setup: Duration,
    pub replay: Duration,
    /// Whether states were compared (private daemons only).
    pub private: bool,
}

/// Replays `schedule` of `s` on a private containerd (or the one at `address`). `Err`: the
/// schedule does not fit the scenario, or the daemon could not be started or set up.
pub fn replay(
    s: &Scenario,
    schedule: &Schedule,
    address: Option<&str>,
) -> Result<DaemonReplay, String> {
    let model = Explorer::new(Config::default())
        .replay(&explore::model(s), schedule)
        .map_err(|d| {
            format!(
                "the schedule does not fit scenario {} (on the model): {d}",
                s.name
            )
        })?;
    let t0 = Instant::now();
    let daemon = match address {
        Some(_) => None,
        None => Some(Daemon::start().map_err(|e| format!("cannot start containerd: {e}"))?),
    };
    let location = match (&daemon, address) {
        (Some(d), _) => format!("private, pid {}", d.pid()),
        (None, a) => format!("at {}", a.unwrap_or_default()),
    };
    let started = t0.elapsed();
    let run = connect_and_run(s, schedule, daemon.as_ref(), address, model);
    if let Some(d) = daemon {
        if let Err(e) = d.stop() {
            eprintln!("pushrace: warning: stopping the private containerd: {e}");
        }
    }
    let mut r = run?;
    r.location = location;
    r.started = started;
    Ok(r)
}

fn connect_and_run(
    s: &Scenario,
    schedule: &Schedule,
    daemon: Option<&Daemon>,
    address: Option<&str>,
    model: Execution,
) -> Result<DaemonReplay, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let client = rt.block_on(async {
        match (daemon, address) {
            (Some(d), _) => d.client().await,
            (None, a) => DaemonClient::connect(a.unwrap_or_default(), None).await,
        }
    });
    let client = client.map_err(|e| format!("cannot connect to containerd: {e}"))?;
    let version = rt.block_on(client.version()).unwrap_or_default();
    let exec = DaemonExec(Rc::new(Inner {
        rt,
        client,
        clock: RefCell::new(VirtualClockMapping::new(DEFAULT_SCALE)),
        registry: RefCell::new(super::registry::initial(s)),
        shadow: Rc::new(RefCell::new(initial_sim(s))),
        calls: Cell::new(0),
        gcs: Cell::new(0),
        disagreements: RefCell::new(Vec::new()),
    }));
    run(s, schedule, exec, daemon.is_some(), model).map(|r| DaemonReplay { version, ..r })
}

fn run(
    s: &Scenario,
    schedule: &Schedule,
    exec: DaemonExec,
    private: bool,
    model_run: Execution,
) -> Result<DaemonReplay, String> {
    let t0 = Instant::now();
    set_up(&exec, s).map_err(|e| format!("setting up the scenario on the daemon: {e}"))?;
    if private {
        compare_state(&exec, "after setup")?;
    }
    let setup = t0.elapsed();
    exec.0.calls.set(0);
    let scenario = Rc::new(s.clone());
    let results: Rc<RefCell<Option<Outcomes>>> = Rc::default();
    let model = {
        let (exec, results) = (exec.clone(), results.clone());
        move |w: &mut World| {
            let outcomes = spawn_scenario(w, &scenario, &exec, |_| Driver::Program);
            *results.borrow_mut() = Some(outcomes);
        }
    };
    let t1 = Instant::now();
    let execution = Explorer::new(Config::default()).replay(&model, schedule);
    let replay = t1.elapsed();
    drop(model);
    if private && execution.is_ok() {
        compare_state(&exec, "final state")?;
    }
    let results = results
        .borrow()
        .as_ref()
        .map(|r| r.borrow().clone())
        .unwrap_or_default();
    let (violation, other_failure) = match &execution {
        Ok(e) => explore::judge_execution(s, e),
        Err(_) => (None, None),
    };
    let (model_violation, _) = explore::judge_execution(s, &model_run);
    let sh = &exec.0;
    Ok(DaemonReplay {
        version: String::new(),
        location: String::new(),
        execution,
        violation,
        other_failure,
        results,
        model_trace: model_run.trace,
        model_violation,
        disagreements: sh.disagreements.borrow().clone(),
        clock_violations: sh.clock.borrow().violations().to_vec(),
        calls: sh.calls.get(),
        gcs: sh.gcs.get(),
        started: Duration::ZERO,
        setup,
        replay,
        private,
    })
}

/// The scenario's setup on the daemon only: each image as parsing sets it up on the model, then
/// one GC.
fn set_up(exec: &DaemonExec, s: &Scenario) -> Result<(), String> {
    set_up_with(s, |op| exec.daemon(op))
}

/// The scenario's setup through `daemon` (one call at a time): each image as parsing sets it up on
/// the model, then one GC. The one setup of every real backend.
pub(crate) fn set_up_with(
    s: &Scenario,
    daemon: impl FnMut(&Op) -> Result<Outcome, Error>,
) -> Result<(), String> {
    let daemon = Apply(RefCell::new(daemon));
    for (i, im) in s.images.iter().enumerate() {
        now_or_never(im.set_up(i, &daemon)).map_err(|e| format!("{}: {e}", im.reference))?;
    }
    let gc = (daemon.0.borrow_mut())(&gc_op());
    gc.map_err(|e| format!("the setup GC: {}", e.message))?;
    Ok(())
}

/// Daemon state against the shadow model's (private daemon only: its root is known and it holds
/// nothing else); differences are disagreements.
fn compare_state(exec: &DaemonExec, what: &str) -> Result<(), String> {
    let sh = &exec.0;
    let mut state = sh
        .rt
        .block_on(sh.client.dump_state())
        .map_err(|e| format!("dumping the daemon's state: {e}"))?;
    sh.clock.borrow().normalize(&mut state);
    let model = sh.shadow.borrow().store.state();
    let diff = pushrace_daemon::diff::diff_states(&model, &state);
    let mut d = sh.disagreements.borrow_mut();
    d.extend(diff.into_iter().map(|l| format!("{what}: {l}")));
    Ok(())
}
