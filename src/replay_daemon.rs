//! `pushrace replay SCENARIO --schedule S --backend containerd [--address SOCK]`: the scenario's client
//! programs run against a real containerd in exactly the schedule's order, one gRPC call per step.
//!
//! How: the harness executor itself drives the actors, exactly as on the model. Each client call first
//! awaits `sim::step_for(&sched, &op)` — the model's labels and footprints, so the same schedule
//! string applies and the trace has the same labels — then performs the call synchronously, blocking
//! on a tokio runtime (`rt.block_on(apply(…))`). The executor polls one actor at a time, so a call
//! that blocks inside its step cannot be overtaken by another actor: the schedule alone decides the
//! order. The registry (HEAD/PUT) is a local set with its own steps, as on the model.
//!
//! A *shadow* model (`Sim`) steps alongside: every call is also applied to it, which gives
//! - the background GC: containerd's own scheduler is off in the private daemon's config, so a
//!   `gc.tick` runs a synchronous GC on the daemon exactly when the shadow model's scheduler says one
//!   is due (the model's rule: any delete since the last GC, or 100 mutations) — the same GCs at the
//!   same steps as the model replay. On a daemon given with `--address`, its own scheduler also
//!   collects in the background, on its own clock;
//! - a call-by-call comparison: a call whose result (ok, or the error text) differs between the
//!   daemon and the model is printed as a disagreement, and so are differences in the final state;
//! - the store invariants (`gc-safety`, `no-dangling-reference`), which need the model's mark and are
//!   not observable on the daemon step by step: they are evaluated on the shadow (and say so).
//!
//! Setup mirrors the scenario's: each image is pulled with the same pull program and lease id
//! (`setup-pull-<i>`) into its namespace, its tags are created, then one GC runs; the registry starts
//! with the scenario's preload. On a private daemon the state after setup is compared with the
//! model's setup store.

use pushrace_harness::Schedule;
use pushrace_scenarios::scenario::Scenario;
use std::process::ExitCode;

/// Replays `schedule` of `s` on a real containerd and prints the trace (`text`, `json` or `mermaid`)
/// and both verdicts. Exit 0: the invariant held, 1: an actor failed it, 2: setup failed, or the
/// daemon's programs left the schedule (diverged).
pub fn replay(s: &Scenario, schedule: &Schedule, format: &str, address: Option<&str>) -> ExitCode {
    imp::replay(s, schedule, format, address)
}

#[cfg(not(feature = "containerd"))]
mod imp {
    use super::*;

    pub fn replay(_: &Scenario, _: &Schedule, _: &str, _: Option<&str>) -> ExitCode {
        eprintln!(
            "pushrace: replay --backend containerd: {}",
            crate::daemon_cmd::NEEDS_FEATURE
        );
        ExitCode::from(2)
    }
}

#[cfg(feature = "containerd")]
mod imp {
    use super::*;
    use pushrace_daemon::{apply, Daemon, DaemonClient, VirtualClockMapping, DEFAULT_SCALE};
    use pushrace_harness::{Config, Ctx as Sched, Explorer, Footprint, Trace, World};
    use pushrace_models::program::{Program, Step};
    use pushrace_models::{Ctx, Error, Op, OpKind, Outcome};
    use pushrace_scenarios::client::Client;
    use pushrace_scenarios::explore::{classify, run_actor};
    use pushrace_scenarios::scenario::Invariant;
    use pushrace_scenarios::sim::{registry_key, short, step_for, Sim, ALL, CLOCK, SCHED};
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    /// Everything the actors of the daemon replay share.
    struct Shared {
        rt: tokio::runtime::Runtime,
        client: DaemonClient,
        clock: RefCell<VirtualClockMapping>,
        registry: RefCell<BTreeSet<String>>,
        shadow: RefCell<Sim>,
        /// Index of the harness step being run (for messages).
        step: Cell<usize>,
        calls: Cell<usize>,
        gcs: Cell<usize>,
        disagreements: RefCell<Vec<String>>,
    }

    impl Shared {
        /// One call on the daemon, synchronously.
        fn daemon(&self, op: &Op) -> Result<Outcome, Error> {
            self.calls.set(self.calls.get() + 1);
            let mut clock = self.clock.borrow_mut();
            self.rt.block_on(apply(&self.client, op, &mut clock))
        }

        /// One client call: on the daemon (its answer is what the program sees) and on the shadow.
        fn call(&self, op: &Op) -> Result<Outcome, Error> {
            let got = self.daemon(op);
            let model = self.shadow.borrow_mut().apply(op);
            let text = |r: &Result<Outcome, Error>| match r {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("error `{}`", e.message),
            };
            let differ = match (&model, &got) {
                (Ok(_), Ok(_)) => false,
                (Err(a), Err(b)) => a.message != b.message,
                _ => true,
            };
            if differ {
                self.disagreements.borrow_mut().push(format!(
                    "step {} ({op}): model {}, daemon {}",
                    self.step.get(),
                    text(&model),
                    text(&got)
                ));
            }
            got
        }
    }

    /// One actor's view of the daemon: each call waits for the scheduler, then runs on the daemon.
    struct DaemonActor {
        sched: Sched,
        shared: Rc<Shared>,
    }

    impl DaemonActor {
        fn stepped(&self) {
            self.shared.step.set(self.shared.step.get() + 1);
        }
    }

    impl Client for DaemonActor {
        async fn call(&self, op: Op) -> Result<Outcome, Error> {
            step_for(&self.sched, &op).await;
            let r = self.shared.call(&op);
            self.stepped();
            r
        }

        async fn registry_has(&self, digest: &str) -> bool {
            let k = [registry_key(digest)];
            self.sched
                .step(
                    format_args!("registry.head {}", short(digest)),
                    Footprint::read(&k),
                )
                .await;
            self.stepped();
            self.shared.registry.borrow().contains(digest)
        }

        async fn registry_put(&self, digest: &str) {
            let k = [registry_key(digest)];
            self.sched
                .step(
                    format_args!("registry.put {}", short(digest)),
                    Footprint::write(&k),
                )
                .await;
            self.stepped();
            self.shared.registry.borrow_mut().insert(digest.to_string());
        }

        async fn gc_tick(&self) -> bool {
            self.sched
                .step(
                    "gc.tick",
                    Footprint::new(&[ALL, CLOCK, SCHED], &[ALL, SCHED]),
                )
                .await;
            // The shadow model's scheduler decides; its GC runs there, the daemon's here.
            let due = self.shared.shadow.borrow_mut().gc_tick();
            if due {
                self.shared.gcs.set(self.shared.gcs.get() + 1);
                let gc = Op {
                    ctx: Ctx::new("default"),
                    kind: OpKind::GcRun,
                };
                if let Err(e) = self.shared.daemon(&gc) {
                    self.shared.disagreements.borrow_mut().push(format!(
                        "step {} (gc.tick): the model collected, the daemon's GC failed: {}",
                        self.shared.step.get(),
                        e.message
                    ));
                }
            }
            self.stepped();
            due
        }
    }

    /// Drives a sans-IO program on the daemon only (setup).
    fn drive_on_daemon<T: 'static>(sh: &Shared, mut p: Program<T>) -> Result<T, Error> {
        let mut answer = None;
        loop {
            match p.resume(answer.take()) {
                Step::Done(r) => return r,
                Step::Call(op) => answer = Some(sh.daemon(&op)),
            }
        }
    }

    /// The scenario's setup, on the daemon: the same pulls, tags and GC as `scenario::parse`.
    fn setup(sh: &Shared, s: &Scenario) -> Result<(), String> {
        for (i, im) in s.images.iter().enumerate() {
            let ctx = Ctx::new(im.namespace.clone());
            let p = pushrace_models::pull::pull(
                im.fixture.clone(),
                im.fetched.clone(),
                ctx.clone(),
                format!("setup-pull-{i}"),
            );
            drive_on_daemon(sh, p)
                .map_err(|e| format!("pulling {}: {}", im.reference, e.message))?;
            for t in &im.tags {
                let d = &im.fixture.index.descriptor;
                let op = Op {
                    ctx: ctx.clone(),
                    kind: OpKind::ImageCreate {
                        name: t.clone(),
                        media_type: d.media_type.clone(),
                        target: d.digest.clone(),
                        size: Some(d.size),
                        labels: Default::default(),
                    },
                };
                sh.daemon(&op)
                    .map_err(|e| format!("tagging {t}: {}", e.message))?;
            }
        }
        sh.daemon(&Op {
            ctx: Ctx::new("default"),
            kind: OpKind::GcRun,
        })
        .map_err(|e| format!("the setup GC: {}", e.message))?;
        Ok(())
    }

    /// Daemon state vs the shadow model's (private daemon only: its root is known and it holds
    /// nothing else).
    fn compare_state(sh: &Shared, what: &str) -> Result<Vec<String>, String> {
        let mut state = sh
            .rt
            .block_on(sh.client.dump_state())
            .map_err(|e| format!("dumping the daemon's state: {e}"))?;
        sh.clock.borrow().normalize(&mut state);
        let model = sh.shadow.borrow().store.state();
        Ok(pushrace_daemon::diff::diff_states(&model, &state)
            .into_iter()
            .map(|l| format!("{what}: {l}"))
            .collect())
    }

    /// An actor's own result (None: it did not finish).
    type ActorResult = Option<Result<(), Error>>;

    /// What one daemon replay found.
    struct Run {
        version: String,
        execution: Result<pushrace_harness::Execution, pushrace_harness::Divergence>,
        results: Vec<ActorResult>,
        disagreements: Vec<String>,
        clock_violations: Vec<String>,
        calls: usize,
        gcs: usize,
        setup: Duration,
        replay: Duration,
    }

    fn run(
        s: &Scenario,
        schedule: &Schedule,
        client: DaemonClient,
        rt: tokio::runtime::Runtime,
        private: bool,
    ) -> Result<Run, String> {
        let version = rt.block_on(client.version()).unwrap_or_default();
        let mut shadow = Sim::new(s.setup.clone());
        shadow.registry = s.registry.clone();
        let sh = Rc::new(Shared {
            rt,
            client,
            clock: RefCell::new(VirtualClockMapping::new(DEFAULT_SCALE)),
            registry: RefCell::new(s.registry.clone()),
            shadow: RefCell::new(shadow),
            step: Cell::new(0),
            calls: Cell::new(0),
            gcs: Cell::new(0),
            disagreements: RefCell::new(Vec::new()),
        });
        let t0 = Instant::now();
        setup(&sh, s).map_err(|e| format!("setting up the scenario on the daemon: {e}"))?;
        if private {
            let d = compare_state(&sh, "after setup")?;
            sh.disagreements.borrow_mut().extend(d);
        }
        let setup_time = t0.elapsed();
        sh.calls.set(0);

        let results: Rc<RefCell<Vec<ActorResult>>> =
            Rc::new(RefCell::new(vec![None; s.actors.len()]));
        let scenario = Rc::new(s.clone());
        let model = {
            let (sh, results) = (sh.clone(), results.clone());
            move |w: &mut World| {
                for (i, a) in scenario.actors.iter().enumerate() {
                    let (sh, scenario, results) = (sh.clone(), scenario.clone(), results.clone());
                    w.spawn(a.name.clone(), move |sched| async move {
                        let client = DaemonActor { sched, shared: sh };
                        let r = run_actor(&client, &scenario, &scenario.actors[i]).await;
                        results.borrow_mut()[i] = Some(r.clone());
                        classify(scenario.check.invariant, r)
                    });
                }
                // Store invariants need the model's mark: evaluated on the shadow model.
                match scenario.check.invariant {
                    Invariant::GcSafety => {
                        let sh = sh.clone();
                        w.invariant("gc-safety", move || sh.shadow.borrow().check_gc_safety());
                    }
                    Invariant::NoDanglingReference => {
                        let sh = sh.clone();
                        w.invariant("no-dangling-reference", move || {
                            sh.shadow.borrow().check_no_dangling()
                        });
                    }
                    _ => {}
                }
            }
        };
        let t1 = Instant::now();
        let execution = Explorer::new(Config::default()).replay(&model, schedule);
        let replay_time = t1.elapsed();
        drop(model);
        if private && execution.is_ok() {
            let d = compare_state(&sh, "final state")?;
            sh.disagreements.borrow_mut().extend(d);
        }
        let results = results.borrow().clone();
        let disagreements = sh.disagreements.borrow().clone();
        let clock_violations = sh.clock.borrow().violations().to_vec();
        Ok(Run {
            version,
            execution,
            results,
            disagreements,
            clock_violations,
            calls: sh.calls.get(),
            gcs: sh.gcs.get(),
            setup: setup_time,
            replay: replay_time,
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    fn print_trace(trace: &Trace, format: &str) {
        match format {
            "json" => println!("{}", trace.to_json()),
            "mermaid" => println!("{}", trace.to_mermaid()),
            _ => print!("{}", trace.to_text()),
        }
    }

    fn ms(d: Duration) -> String {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }

    pub fn replay(
        s: &Scenario,
        schedule: &Schedule,
        format: &str,
        address: Option<&str>,
    ) -> ExitCode {
        // The model's verdict on the same schedule, for comparison.
        let model = pushrace_scenarios::explore::replay(s, schedule);
        if let Err(e) = &model {
            eprintln!(
                "pushrace: the schedule does not fit scenario {} (on the model): {e}",
                s.name
            );
            return ExitCode::from(2);
        }
        let t0 = Instant::now();
        let (daemon, where_) = match address {
            Some(a) => (None, format!("at {a}")),
            None => match Daemon::start() {
                Ok(d) => {
                    let w = format!("private, pid {}", d.pid());
                    (Some(d), w)
                }
                Err(e) => {
                    eprintln!("pushrace: cannot start containerd: {e}");
                    return ExitCode::from(2);
                }
            },
        };
        let start = t0.elapsed();
        let rt = runtime();
        let client = rt.block_on(async {
            match (&daemon, address) {
                (Some(d), _) => d.client().await,
                (None, Some(a)) => DaemonClient::connect(a, None).await,
                (None, None) => unreachable!(),
            }
        });
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pushrace: cannot connect to containerd: {e}");
                return ExitCode::from(2);
            }
        };
        let run = run(s, schedule, client, rt, daemon.is_some());
        if let Some(d) = daemon {
            if let Err(e) = d.stop() {
                eprintln!("pushrace: warning: stopping the private containerd: {e}");
            }
        }
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushrace: {e}");
                return ExitCode::from(2);
            }
        };
        let (model_trace, model_failed) = model.expect("checked");
        let code = match &run.execution {
            Ok(e) => {
                print_trace(&e.trace, format);
                eprintln!(
                    "daemon: containerd {} ({where_}): started in {}, setup {}, replay of {} steps ({} calls, {} background GCs) in {}",
                    run.version,
                    ms(start),
                    ms(run.setup),
                    e.trace.steps.len(),
                    run.calls,
                    run.gcs,
                    ms(run.replay)
                );
                for (a, r) in s.actors.iter().zip(&run.results) {
                    match r {
                        Some(Ok(())) => eprintln!("daemon: actor {}: ok", a.name),
                        Some(Err(err)) => {
                            eprintln!("daemon: actor {}: error: {}", a.name, err.message)
                        }
                        None => eprintln!("daemon: actor {}: did not finish", a.name),
                    }
                }
                let daemon_failed = e.failure.as_ref().map(|k| k.describe(&e.trace.actors));
                eprintln!(
                    "replay (containerd): {}",
                    daemon_failed.as_deref().unwrap_or("the invariant held")
                );
                eprintln!(
                    "replay (model):      {}",
                    model_failed.as_deref().unwrap_or("the invariant held")
                );
                if e.trace.hash == model_trace.hash {
                    eprintln!(
                        "agreement: same {} steps and verdict as the model (trace {})",
                        e.trace.steps.len(),
                        e.trace.hash
                    );
                } else {
                    eprintln!(
                        "DISAGREEMENT: the daemon's trace {} differs from the model's {}",
                        e.trace.hash, model_trace.hash
                    );
                }
                if daemon_failed.is_some() {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(d) => {
                eprintln!(
                    "DISAGREEMENT: on containerd {} the programs left the schedule: {d} (the model ran it: {})",
                    run.version,
                    model_failed.as_deref().unwrap_or("the invariant held")
                );
                ExitCode::from(2)
            }
        };
        if run.disagreements.is_empty() {
            eprintln!(
                "agreement: every call gave the model's result (ok, or the same error text){}",
                if address.is_none() {
                    "; same state after setup and at the end"
                } else {
                    " (states not compared on a shared daemon)"
                }
            );
        } else {
            for d in &run.disagreements {
                eprintln!("DISAGREEMENT: {d}");
            }
        }
        for v in &run.clock_violations {
            eprintln!("pushrace: warning: the virtual clock mapping did not hold: {v}");
        }
        code
    }
}
