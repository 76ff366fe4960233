//! The headline race on a real containerd 1.6.20 (feature `containerd`): the failing schedules the
//! model finds, replayed with the library's `backend::daemon::replay` (what `pushrace replay …
//! --backend containerd` prints) on a fresh private daemon per replay, fail on the daemon with the
//! model's text; the fix (`lease-held`) in the same neighbour schedules does not. Without the
//! `containerd` binary every test here fails with the install hint.
#![cfg(feature = "containerd")]

use pushrace_harness::{Config, Explorer, FailureKind, Schedule, World};
use pushrace_models::digest::short;
use pushrace_models::program::Call;
use pushrace_models::{Error, Op, Outcome};
use pushrace_scenarios::backend::daemon::{self, DaemonReplay};
use pushrace_scenarios::backend::{Client, ModelClient, RepoObject};
use pushrace_scenarios::explore::{self, classify, run_actor, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use pushrace_scenarios::scenario::Scenario;
use std::cell::{Cell, RefCell};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

const REPLAYS: usize = 20;

/// One replay on a fresh private daemon (started and stopped by the library), with its wall time.
fn replay_on_daemon(s: &Scenario, schedule: &Schedule) -> (DaemonReplay, Duration) {
    let t = Instant::now();
    let r = daemon::replay(s, schedule, None)
        .unwrap_or_else(|e| panic!("replay of {} {schedule} on containerd: {e}", s.name));
    (r, t.elapsed())
}

/// The same through the command line: what it prints of the library's replay.
fn replay_with_cli(name: &str, schedule: &Schedule) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args([
            "replay",
            name,
            "--schedule",
            &schedule.encode(),
            "--backend",
            "containerd",
        ])
        .output()
        .expect("run pushrace");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn load(name: &str) -> Scenario {
    library::load(name).unwrap_or_else(|e| panic!("built-in {name}: {e}"))
}

fn summary(what: &str, walls: &[Duration]) {
    let total: Duration = walls.iter().sum();
    let max = walls.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{what}: {} replays on fresh daemons, {:.0} ms per replay on average (max {:.0} ms; daemon start, setup, replay and stop included)",
        walls.len(),
        total.as_secs_f64() * 1000.0 / walls.len().max(1) as f64,
        max.as_secs_f64() * 1000.0
    );
}

/// The model's shrunk failing schedule of a built-in scenario replays on a real daemon to the same
/// failure — `content digest sha256:<reduced index>: not found` — 20 times out of 20, with the same
/// trace as the model and every call agreeing with the model.
fn headline(name: &str, variant: Variant) {
    let s = load(name);
    assert!(
        s.actors.iter().all(|a| match &a.program {
            pushrace_scenarios::scenario::ProgramSpec::Push { variant: v, .. } => *v == variant,
            _ => true,
        }),
        "{name}'s pushes are {variant:?}"
    );
    let v = explore::explore(&s, &Options::for_scenario(&s));
    let violation = v
        .violation
        .unwrap_or_else(|| panic!("the model finds no violation in {name}"));
    assert_eq!(violation.role.map(|r| r.name()), Some("reduced-index"));
    let r = violation.digest.clone().expect("a missing digest");
    let expected = format!("content digest {r}: not found");
    let model_trace = violation.trace.hash.clone();
    let mut walls = Vec::new();
    for i in 0..REPLAYS {
        let (r, wall) = replay_on_daemon(&s, &violation.schedule);
        let e = r.execution.as_ref().unwrap_or_else(|d| {
            panic!(
                "replay {i} of {name} {}: diverged on containerd: {d}",
                violation.schedule
            )
        });
        let daemon_violation = r.violation.as_ref().unwrap_or_else(|| {
            panic!(
                "replay {i} of {name} {}: no violation on containerd ({:?})",
                violation.schedule, r.other_failure
            )
        });
        assert!(
            daemon_violation.message.ends_with(&expected),
            "replay {i} of {name}: {:?} does not end with {expected:?}",
            daemon_violation.message
        );
        assert_eq!(
            e.trace.hash,
            model_trace,
            "replay {i} of {name}: the daemon's trace differs from the model's:\n{}",
            e.trace.to_text()
        );
        assert!(
            r.disagreements.is_empty(),
            "replay {i} of {name}: model and daemon disagree: {:?}",
            r.disagreements
        );
        walls.push(wall);
    }
    // The command line prints the same verdict (exit 1: the push failed).
    let (code, stdout, stderr) = replay_with_cli(name, &violation.schedule);
    assert_eq!(code, 1, "pushrace replay {name} on containerd:\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("replay (containerd): VIOLATION"))
        .unwrap_or_else(|| panic!("no daemon verdict in:\n{stderr}"));
    assert!(line.ends_with(&expected), "{line:?}");
    assert!(stdout.contains(&format!("trace {model_trace}")), "{stdout}");
    summary(
        &format!("{name} ({variant:?}) {}", violation.schedule),
        &walls,
    );
}

#[test]
fn same_ref_v0_18_shrunk_schedule_fails_on_containerd_20_of_20() {
    headline("same-ref", Variant::V0_18);
}

#[test]
fn two_tags_v2_0_5_shrunk_schedule_fails_on_containerd_20_of_20() {
    headline("two-tags", Variant::V2_0_5);
}

/// A model client that counts steps and records the steps at which a background GC tick collected.
struct Probe {
    inner: ModelClient,
    step: Rc<Cell<usize>>,
    collected: Rc<RefCell<Vec<usize>>>,
}

impl Probe {
    fn next(&self) -> usize {
        let i = self.step.get();
        self.step.set(i + 1);
        i
    }
}

impl Call for Probe {
    async fn call(&self, op: Op) -> Result<Outcome, Error> {
        let r = self.inner.call(op).await;
        self.next();
        r
    }
}

impl Client for Probe {
    async fn registry_has(&self, o: &RepoObject) -> bool {
        let r = self.inner.registry_has(o).await;
        self.next();
        r
    }
    async fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        let r = self.inner.registry_tagged(tag, digest).await;
        self.next();
        r
    }
    async fn registry_put(&self, o: &RepoObject) {
        self.inner.registry_put(o).await;
        self.next();
    }
    async fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) {
        self.inner.registry_put_tagged(tag, digest).await;
        self.next();
    }
    async fn registry_mount(&self, o: &RepoObject, from: &str) -> bool {
        let r = self.inner.registry_mount(o, from).await;
        self.next();
        r
    }
    async fn gc_tick(&self) -> bool {
        let ran = self.inner.gc_tick().await;
        let i = self.next();
        if ran {
            self.collected.borrow_mut().push(i);
        }
        ran
    }
}

/// One DFS execution: its schedule, the "actor: label" of every step, and the steps at which a
/// background GC collected.
struct Explored {
    schedule: Schedule,
    labels: Vec<String>,
    collected: Vec<usize>,
}

/// Every execution DFS explores for `s` (preemption bound `bound`, partial-order reduction on), in
/// DFS order. The scenario's model (as `explore::model` builds it, over a probing client) gets a final
/// check that always fails, so each complete execution is recorded with its schedule; the check's
/// message carries the steps at which a GC collected.
fn dfs_executions(s: &Scenario, bound: usize) -> Vec<Explored> {
    let scenario = Rc::new(s.clone());
    let template = pushrace_scenarios::explore::initial_sim(s);
    let model = move |w: &mut World| {
        let sim = Rc::new(RefCell::new(template.clone()));
        let step = Rc::new(Cell::new(0));
        let collected = Rc::new(RefCell::new(Vec::new()));
        for (i, a) in scenario.actors.iter().enumerate() {
            let (sim, scenario, step, collected) = (
                sim.clone(),
                scenario.clone(),
                step.clone(),
                collected.clone(),
            );
            w.spawn(a.name.clone(), move |sched| async move {
                let c = Probe {
                    inner: ModelClient { sched, exec: sim },
                    step,
                    collected,
                };
                classify(
                    scenario.check.invariant,
                    run_actor(&c, &scenario, &scenario.actors[i]).await,
                )
            });
        }
        w.finally("record every execution", move || {
            Err(format!("{:?}", collected.borrow()))
        });
    };
    let report = Explorer::new(Config {
        preemption_bound: Some(bound),
        max_failures: usize::MAX,
        shrink: false,
        ..Config::default()
    })
    .dfs(&model);
    assert!(
        report.exhausted,
        "DFS of {} at bound {bound} exhausted",
        s.name
    );
    report
        .failures
        .into_iter()
        .map(|f| {
            let labels = f
                .trace
                .steps
                .iter()
                .map(|t| format!("{}: {}", f.trace.actors[t.actor], t.label))
                .collect();
            let collected = match &f.kind {
                FailureKind::Final { message, .. } => message
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(", ")
                    .filter(|x| !x.is_empty())
                    .map(|x| x.parse().expect("a step index"))
                    .collect(),
                other => panic!("{}: unexpected failure {other:?}", s.name),
            };
            Explored {
                schedule: f.schedule,
                labels,
                collected,
            }
        })
        .collect()
}

fn actor_of(label: &str) -> &str {
    label.split(':').next().unwrap_or("")
}

/// The short digests (as labels print them) of the scenario's reduced indexes.
fn reduced_indexes(s: &Scenario) -> Vec<String> {
    s.role_kinds
        .iter()
        .filter(|(_, k)| **k == pushrace_models::oci::RoleKind::ReducedIndex)
        .map(|(d, _)| short(d).to_string())
        .collect()
}

/// Whether step `i` runs strictly inside another push's window on the reduced index R — from its
/// first step that names R to its last (its convert writes or holds R, then the push reads and
/// uploads it): the window in which the v0.18 / v2.0.5 pushes lost R.
fn inside_another_push_r_window(labels: &[String], i: usize, rs: &[String]) -> bool {
    let me = actor_of(&labels[i]);
    let names_r = |l: &String| rs.iter().any(|r| l.contains(r.as_str()));
    let mut pushes: Vec<&str> = labels
        .iter()
        .map(|l| actor_of(l))
        .filter(|a| a.starts_with("push") && *a != me)
        .collect();
    pushes.sort();
    pushes.dedup();
    pushes.iter().any(|p| {
        let mine = |l: &&String| actor_of(l) == *p && names_r(l);
        let first = labels.iter().position(|l| mine(&l));
        let last = labels.iter().rposition(|l| mine(&l));
        matches!((first, last), (Some(f), Some(l)) if f < i && i < l)
    })
}

/// The bad order, for lease-held: one push's cleanup — releasing its lease, the step that replaces
/// the upstream variants' synchronous tmp-image delete — lands inside the other push's R window.
fn cleanup_inside_the_other_push(e: &Explored, rs: &[String]) -> bool {
    (0..e.labels.len()).any(|i| {
        let l = &e.labels[i];
        l.contains(": lease.delete ") && inside_another_push_r_window(&e.labels, i, rs)
    })
}

/// A background GC that collected lands inside a push's R window.
fn gc_inside_a_push(e: &Explored, rs: &[String]) -> bool {
    e.collected
        .iter()
        .any(|&i| inside_another_push_r_window(&e.labels, i, rs))
}

/// Replays `picks` of `name --variant lease-held` on the model (must hold) and on fresh daemons (must
/// hold, same trace, no disagreement); returns the wall times and the background GCs the daemon ran
/// in each replay.
fn lease_held_replays(
    name: &str,
    s: &Scenario,
    picks: &[&Schedule],
) -> (Vec<Duration>, Vec<usize>) {
    let mut walls = Vec::new();
    let mut gcs = Vec::new();
    for sch in picks {
        let (trace, failed) = explore::replay(s, sch).expect("the schedule fits the model");
        assert_eq!(failed, None, "{name} lease-held {sch} fails on the model");
        let (r, wall) = replay_on_daemon(s, sch);
        let e = r
            .execution
            .as_ref()
            .unwrap_or_else(|d| panic!("{name} lease-held {sch}: diverged: {d}"));
        assert!(
            r.violation.is_none() && r.other_failure.is_none(),
            "{name} --variant lease-held {sch} on containerd: expected every push to succeed: {:?} {:?}",
            r.violation.as_ref().map(|v| &v.message),
            r.other_failure
        );
        assert!(
            e.trace.hash == trace.hash && r.disagreements.is_empty(),
            "{name} lease-held {sch}: not the model's run: {:?}\n{}",
            r.disagreements,
            e.trace.to_text()
        );
        for (a, res) in s.actors.iter().zip(&r.results) {
            if a.name.starts_with("push") {
                assert!(
                    matches!(res, Some(Ok(()))),
                    "{name} lease-held {sch}: {} gave {res:?}",
                    a.name
                );
            }
        }
        let n = r.gcs;
        gcs.push(n);
        walls.push(wall);
    }
    (walls, gcs)
}

/// `n` schedules spread evenly over the DFS executions of `s` at `bound` that satisfy `pick`.
fn spread(
    s: &Scenario,
    bound: usize,
    n: usize,
    pick: fn(&Explored, &[String]) -> bool,
) -> Vec<Schedule> {
    let rs = reduced_indexes(s);
    assert!(!rs.is_empty(), "{}: no reduced index", s.name);
    let all = dfs_executions(s, bound);
    let chosen: Vec<&Explored> = all.iter().filter(|e| pick(e, &rs)).collect();
    assert!(
        chosen.len() >= n,
        "{}: only {} of {} DFS executions at bound {bound} have the order wanted",
        s.name,
        chosen.len(),
        all.len()
    );
    eprintln!(
        "{} lease-held: {} DFS executions at bound {bound}, {} in the racing order; replaying {n}",
        s.name,
        all.len(),
        chosen.len()
    );
    (0..n)
        .map(|k| chosen[k * chosen.len() / n].schedule.clone())
        .collect()
}

/// `lease-held` in the neighbour schedules of the headline race passes on containerd 20 times out of
/// 20. The schedules: the DFS executions (preemption bound 2, reduction on) of `same-ref` and
/// `two-tags` with every push switched to `--variant lease-held` in which one push's cleanup (its
/// lease release, where v0.18 / v2.0.5 ran the synchronous tmp-image delete) lands inside the other
/// push's window on the reduced index R (after its first step naming R, before its last) — the bad
/// order of the headline failures — 10 of each scenario, spread evenly over the DFS order. Each holds on the model first (checked), then on a fresh daemon with the model's
/// trace. (lease-held's cleanup is asynchronous, so no GC runs here: the next test adds one.)
#[test]
fn lease_held_in_the_race_schedules_passes_on_containerd_20_of_20() {
    let mut walls = Vec::new();
    for name in ["same-ref", "two-tags"] {
        let s = load(name).with_variant(Variant::LeaseHeld);
        let picks = spread(&s, 2, REPLAYS / 2, cleanup_inside_the_other_push);
        let picks: Vec<&Schedule> = picks.iter().collect();
        walls.extend(lease_held_replays(name, &s, &picks).0);
    }
    assert_eq!(walls.len(), REPLAYS);
    summary("lease-held (same-ref, two-tags)", &walls);
}

/// The fix under a real GC: `background-gc` (two pushes of one ref and the background GC scheduler)
/// with `--variant lease-held`: 20 DFS executions at preemption bound 2 in which a GC tick that
/// collects (on the model: the scheduler said one was due) lands inside a push's window on the
/// reduced index R, spread evenly over the DFS order. On the daemon each such tick is a synchronous
/// GC (the replay's shadow model decides when one is due, as on the model); the pushes succeed 20 of
/// 20, and the daemon ran at least one GC in every replay. (Bound 2: since a GC's footprint is
/// what it removed, reduction leaves only 10 executions in that order at bound 1.)
#[test]
fn lease_held_under_background_gc_passes_on_containerd_20_of_20() {
    let s = load("background-gc").with_variant(Variant::LeaseHeld);
    let picks = spread(&s, 2, REPLAYS, gc_inside_a_push);
    let picks: Vec<&Schedule> = picks.iter().collect();
    let (walls, gcs) = lease_held_replays("background-gc", &s, &picks);
    assert!(
        gcs.iter().all(|&n| n >= 1),
        "a replay ran no GC on the daemon: {gcs:?}"
    );
    let gcs: usize = gcs.iter().sum();
    assert_eq!(walls.len(), REPLAYS);
    eprintln!("background-gc lease-held: {gcs} GCs on the daemon in {REPLAYS} replays");
    summary("lease-held (background-gc)", &walls);
}
