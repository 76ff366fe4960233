//! `pushrace record -- CMD…`: runs a user's command (a CI script, a `nerdctl` invocation) against
//! a private containerd (sync-only GC, as replays need) and a private registry, with every call
//! of every client going through the recording gate (`daemon/src/interpose/record.rs`: one call
//! at a time, in arrival order, each attributed to its process and the process to an actor), and
//! turns what happened into a [`RecordLog`]: each actor's processes as its commands, and the
//! interleaving as a real schedule (each process's `exec` step just before its first call).
//!
//! The command sees `CONTAINERD_ADDRESS` (`ctr` and `nerdctl` read it) and `PUSHRACE_ADDRESS` set
//! to the recording socket, `PUSHRACE_REGISTRY` to the registry's `HOST:PORT`, and
//! `PUSHRACE_GO_CLIENT` to the Go client when it is built. Actors: set `PUSHRACE_ACTOR=name` (or
//! the variable `--tag` names) in each client's environment; untagged processes are grouped by
//! process group (everything the command starts shares one unless it makes its own: `setsid`).
//!
//! A log replays on fresh real actors ([`replay_log`]): the same commands, the recorded schedule,
//! every step compared with the recorded one, so a replay that does not repeat the recorded calls
//! is a divergence, never a verdict.

use super::commands::{exec_label, CommandSpec, Place};
use super::interposed::LeaseNames;
use super::real::{replay_real, RealActor, RealOptions, RealReplay};
use super::session::set_up_fixture;
use crate::scenario::{ActorSpec, CheckSpec, ProgramSpec, Scenario, Source};
use pushrace_daemon::interpose::record::{Process, RecordedCall};
use pushrace_daemon::interpose::{Interposer, RecordGate, Recording};
use pushrace_daemon::{Daemon, Registry};
use pushrace_harness::Schedule;
use pushrace_models::scheduler::GcMode;
use pushrace_models::{Ctx, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable that names a client's actor, unless `--tag` says another.
pub const DEFAULT_TAG: &str = "PUSHRACE_ACTOR";

/// The log format's version.
pub const LOG_VERSION: u32 = 1;

/// How to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// The environment variable naming a process's actor.
    pub tag: String,
    /// A scenario whose images are set up on the daemon first (its actors are not run).
    pub fixture: Option<Scenario>,
    /// The limit for the whole command; past it, its process group is killed.
    pub timeout: Duration,
    /// The actor (by tag) of each of the first calls, in the order they are to run; empty: the
    /// order they arrive in.
    pub order: Vec<String>,
}

/// A recorded run, as written to the log file (TOML).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordLog {
    pub version: u32,
    /// The command as given.
    pub command: Vec<String>,
    /// `exited 0`, `exited 1`, `was killed (…)`.
    pub exit: String,
    /// Whether the command failed (then the log is the schedule of a failure).
    pub failed: bool,
    /// How processes were grouped into actors.
    pub grouping: String,
    /// The scenario whose images were set up first (a built-in name or a path), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture: Option<String>,
    /// The interleaving: a real schedule over the actors below.
    pub schedule: String,
    /// The trace hash of the replay that checked the log when it was written (`pushrace record`
    /// replays a failed run once on a fresh daemon); a later replay must give the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The interleaving on the model: the schedule without the `exec` steps, over the actors'
    /// `ops`. Absent when a call has no model operation (then `model_gaps` says which).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_gaps: Vec<String>,
    /// Recorded calls that were not forwarded (not modelled) and connection errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    pub actor: Vec<LogActor>,
}

/// One recorded actor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogActor {
    pub name: String,
    /// Its processes' argv, in the order they first called, with the run's socket, registry and
    /// Go client written as `{address}`, `{registry}`, `{go_client}`.
    pub commands: Vec<Vec<String>>,
    /// Its steps as the trace shows them (a Write by what it turned out to be), in order.
    pub steps: Vec<String>,
    /// Its calls as the model's operations (`[[op]]` tables of the ops format), in order: on the
    /// model the actor is an `ops` actor making them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<toml::Table>,
}

/// What a step reads as in a log: its completion when it has one (a Write), else its label.
pub fn step_text(label: &str, completion: Option<&str>) -> String {
    completion.unwrap_or(label).to_string()
}

/// A recording: the log, and how long the command ran (measurement only: never in the log).
#[derive(Debug)]
pub struct Recorded {
    pub log: RecordLog,
    pub ran: Duration,
}

/// Runs `argv` under recording; the log and the command's own stdout/stderr went to ours.
/// `Err`: a setup failure, or a command that cannot be started.
pub fn record(argv: &[String], o: &RecordOptions) -> Result<Recorded, String> {
    if argv.is_empty() {
        return Err("record needs a command after `--`".into());
    }
    let daemon = Daemon::start().map_err(|e| format!("cannot start containerd: {e}"))?;
    let registry = Registry::start().map_err(|e| format!("cannot start the registry: {e}"))?;
    if let Some(s) = &o.fixture {
        set_up_fixture(s, &daemon)?;
    }
    let socket = daemon.dir().join("record.sock");
    let gate = Arc::new(RecordGate::with_order(&o.tag, o.order.clone()));
    let listen = [("record".to_string(), socket.clone())];
    let ip = Interposer::start(&listen, &daemon.socket(), gate.clone())?;
    let go_client = super::commands::go_client_path().unwrap_or_default();
    let place = Place {
        address: socket.display().to_string(),
        registry: registry.addr().to_string(),
        reference: String::new(),
        go_client,
    };
    let t0 = Instant::now();
    let exit = run_command(argv, &place, o.timeout);
    let ran = t0.elapsed();
    ip.stop();
    let _ = registry.stop();
    let _ = daemon.stop();
    let (exit, failed) = exit?;
    let mut log = to_log(gate.take(), &place, &o.tag);
    log.command = argv.to_vec();
    log.exit = exit;
    log.failed = failed;
    log.fixture = o.fixture.as_ref().map(|s| s.source.argument());
    Ok(Recorded { log, ran })
}

/// Runs the command in its own process group with the environment of `p` (`PUSHRACE_ADDRESS`,
/// `CONTAINERD_ADDRESS`, `PUSHRACE_REGISTRY`, `PUSHRACE_GO_CLIENT`); its exit text and whether it
/// failed.
pub fn run_command(
    argv: &[String],
    p: &Place,
    timeout: Duration,
) -> Result<(String, bool), String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).process_group(0).stdin(Stdio::null());
    cmd.env("CONTAINERD_ADDRESS", &p.address)
        .env("PUSHRACE_ADDRESS", &p.address)
        .env("PUSHRACE_REGISTRY", &p.registry);
    if !p.go_client.is_empty() {
        cmd.env("PUSHRACE_GO_CLIENT", &p.go_client);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", argv[0]))?;
    let until = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            let text = match status.code() {
                Some(c) => format!("exited {c}"),
                None => format!("was killed ({status})"),
            };
            // Whatever it left behind in its group goes too.
            // SAFETY: kill(2) on the process group the child led (spawned with process_group(0)).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            return Ok((text, !status.success()));
        }
        if Instant::now() > until {
            // SAFETY: as above.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!(
                "`{}` took longer than {timeout:?} and was killed",
                argv.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The actor of each process: its tag, else its process group (`group1`, `group2`, … in the order
/// they first called); and how the grouping was made.
fn actors_of(r: &Recording, tag: &str) -> (BTreeMap<u32, String>, String) {
    let mut groups: BTreeMap<Option<u32>, String> = BTreeMap::new();
    let mut of = BTreeMap::new();
    let (mut tagged, mut grouped) = (0, 0);
    for pid in &r.first_seen {
        let p: &Process = &r.processes[pid];
        let name = match &p.tag {
            Some(t) => {
                tagged += 1;
                t.clone()
            }
            None => {
                grouped += 1;
                let n = groups.len() + 1;
                groups
                    .entry(p.pgid)
                    .or_insert_with(|| format!("group{n}"))
                    .clone()
            }
        };
        of.insert(*pid, name);
    }
    let how = format!(
        "{tagged} processes by {tag}, {grouped} by process group ({} groups)",
        groups.len()
    );
    (of, how)
}

/// A process's argv with the run's socket, registry and Go client as placeholders.
fn placeholders(argv: &[String], p: &Place) -> Vec<String> {
    let mut out: Vec<String> = argv.iter().map(|a| p.normalise(a)).collect();
    if !p.go_client.is_empty() && out.first() == Some(&p.go_client) {
        out[0] = "{go_client}".to_string();
    }
    out
}

/// The log of a recording: actors in the order they first called, each process a command, and
/// the schedule with each process's `exec` step before its first call.
fn to_log(r: Recording, p: &Place, tag: &str) -> RecordLog {
    let (actor_of, grouping) = actors_of(&r, tag);
    let mut names: Vec<String> = Vec::new();
    for pid in &r.first_seen {
        if !names.contains(&actor_of[pid]) {
            names.push(actor_of[pid].clone());
        }
    }
    let index = |name: &str| names.iter().position(|n| n == name).expect("named above");
    let mut actors: Vec<LogActor> = names
        .iter()
        .map(|n| LogActor {
            name: n.clone(),
            commands: Vec::new(),
            steps: Vec::new(),
            ops: Vec::new(),
        })
        .collect();
    let mut leases: Vec<LeaseNames> = names.iter().map(|n| LeaseNames::new(n)).collect();
    let (mut started, mut steps) = (Vec::new(), Vec::new());
    let (mut model_steps, mut gaps) = (Vec::new(), Vec::new());
    for RecordedCall { call, ended } in &r.calls {
        let Some(pid) = call.pid.filter(|p| actor_of.contains_key(p)) else {
            continue;
        };
        let a = index(&actor_of[&pid]);
        if !started.contains(&pid) {
            started.push(pid);
            let argv = placeholders(&r.processes[&pid].argv, p);
            let spec = CommandSpec {
                argv: argv.clone(),
                always: true,
            };
            actors[a].steps.push(exec_label(&spec, ""));
            actors[a].commands.push(argv);
            steps.push(a);
        }
        let request = leases[a].request_of(call);
        let ran = leases[a].ran(call, ended, &request);
        let completion = match (&request, &ran) {
            (super::Request::Opaque(_), Some(op)) => Some(op.to_string()),
            _ => None,
        };
        let text = step_text(&request.to_string(), completion.as_deref());
        match ran.as_ref().map(pushrace_models::opsfile::op_table) {
            Some(Ok(t)) => actors[a].ops.push(t),
            Some(Err(why)) => gaps.push(format!("{}: {why}", names[a])),
            None => gaps.push(format!("{}: `{text}` has no model operation", names[a])),
        }
        actors[a].steps.push(text);
        steps.push(a);
        model_steps.push(a);
    }
    let model_schedule = Schedule::new(names.len().max(1), model_steps).encode();
    RecordLog {
        version: LOG_VERSION,
        command: Vec::new(),
        exit: String::new(),
        failed: false,
        grouping,
        fixture: None,
        schedule: Schedule::new(names.len().max(1), steps).encode(),
        trace: None,
        model_schedule: gaps.is_empty().then_some(model_schedule),
        model_gaps: gaps,
        problems: r.problems,
        actor: actors,
    }
}

/// A log's actors on an empty fixture, or on its fixture scenario's images: a scenario whose
/// actors are only their commands (each run even after an earlier one failed, as the recorded
/// script ran them), and their real sides.
pub fn log_scenario(log: &RecordLog) -> Result<(Scenario, Vec<RealActor>), String> {
    let mut s = match &log.fixture {
        Some(f) => crate::library::load(f).map_err(|e| format!("the log's fixture: {e}"))?,
        None => empty_scenario(),
    };
    s.name = "recorded".into();
    s.check = CheckSpec {
        actors: None,
        ..s.check.clone()
    };
    s.actors = log
        .actor
        .iter()
        .map(|a| ActorSpec {
            name: a.name.clone(),
            ctx: Ctx::default(),
            program: ProgramSpec::Commands { reference: None },
            commands: a.commands.iter().map(|c| always(c)).collect(),
            go_client: false,
        })
        .collect();
    let actors = RealActor::of_scenario(&s)?;
    Ok((s, actors))
}

fn always(argv: &[String]) -> CommandSpec {
    CommandSpec {
        argv: argv.to_vec(),
        always: true,
    }
}

/// A scenario with no images: the daemon starts empty, as `pushrace record` without a fixture.
fn empty_scenario() -> Scenario {
    // The daemon is containerd 1.6.20, and nothing of the corpus (written for 1.7) is in it.
    let semantics = pushrace_models::Semantics::V1_6;
    Scenario {
        name: "recorded".into(),
        description: "a run recorded by pushrace record".into(),
        source: Source::Builder("recorded".into()),
        semantics,
        gc: GcMode::SyncOnly,
        images: Vec::new(),
        registry: Default::default(),
        actors: Vec::new(),
        check: CheckSpec::default(),
        setup: Store::new(semantics),
        roles: BTreeMap::new(),
        role_kinds: BTreeMap::new(),
    }
}

/// Replays `log` on fresh real actors (a fresh daemon and registry) under its schedule, exactly.
/// A step that differs from the recorded one makes the execution a divergence (its `Err`).
pub fn replay_log(log: &RecordLog, o: &RealOptions) -> Result<RealReplay, String> {
    if log.version != LOG_VERSION {
        return Err(format!(
            "log version {}: this pushrace reads version {LOG_VERSION}",
            log.version
        ));
    }
    let (s, actors) = log_scenario(log)?;
    let schedule =
        Schedule::parse(&log.schedule).map_err(|e| format!("the log's schedule: {e}"))?;
    // `record` does not gate the registry, so its log has no registry steps: the replay's
    // clients reach the registry directly too.
    let strict = RealOptions {
        lenient: false,
        registry_unscheduled: true,
        ..o.clone()
    };
    let mut r = replay_real(&s, &actors, &schedule, &strict)?;
    if let Ok(e) = &r.execution {
        if let Some(d) = first_difference(log, e) {
            r.execution = Err(d);
        }
    }
    Ok(r)
}

/// The first step of the replay that is not the recorded one.
fn first_difference(
    log: &RecordLog,
    e: &pushrace_harness::Execution,
) -> Option<pushrace_harness::Divergence> {
    let mut k = vec![0usize; log.actor.len()];
    for (i, st) in e.trace.steps.iter().enumerate() {
        let got = step_text(&st.label, st.completion.as_deref());
        let a = st.actor;
        let want = log.actor[a].steps.get(k[a]);
        k[a] += 1;
        if want != Some(&got) {
            let want = want.map_or("its end".to_string(), |w| format!("`{w}`"));
            let message = format!(
                "actor {} made `{got}` where the log has {want}",
                log.actor[a].name
            );
            return Some(pushrace_harness::Divergence { step: i, message });
        }
    }
    None
}

impl RecordLog {
    /// Reads a log; errors name the file and what is wrong.
    pub fn parse(file: &str, text: &str) -> Result<RecordLog, String> {
        toml::from_str(text).map_err(|e| format!("{file}: not a pushrace record log: {e}"))
    }

    pub fn to_toml(&self) -> String {
        let head = "# written by `pushrace record`; replay: pushrace replay --from-log FILE --backend real\n";
        format!("{head}{}", toml::to_string(self).expect("a log serialises"))
    }
}

/// A log on the model: each recorded actor an `ops` actor making its recorded calls, and the
/// recorded interleaving of those calls. `Err` when the log has calls the model cannot take (its
/// `model_gaps`) or its ops do not read back.
pub fn model_scenario(log: &RecordLog, file: &str) -> Result<(Scenario, Schedule), String> {
    let Some(schedule) = &log.model_schedule else {
        let gaps = log.model_gaps.join("; ");
        return Err(format!(
            "{file}: the log has calls the model cannot make: {gaps}"
        ));
    };
    let schedule = Schedule::parse(schedule).map_err(|e| format!("{file}: model_schedule: {e}"))?;
    let (mut s, _) = log_scenario(log)?;
    for (spec, a) in s.actors.iter_mut().zip(&log.actor) {
        let mut doc = toml::Table::new();
        let ops = a.ops.iter().cloned().map(toml::Value::Table).collect();
        doc.insert("op".into(), toml::Value::Array(ops));
        let text = toml::to_string(&doc).map_err(|e| format!("{file}: actor {}: {e}", a.name))?;
        let parsed = pushrace_models::opsfile::parse_with(
            file,
            &text,
            pushrace_models::opsfile::Digests::AsSent,
        );
        let parsed = parsed.map_err(|e| format!("{file}: actor {}'s ops: {e}", a.name))?;
        let actions = parsed.entries.into_iter().map(|e| e.action).collect();
        spec.program = ProgramSpec::Ops { actions };
    }
    Ok((s, schedule))
}
