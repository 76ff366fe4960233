//! A scenario's real actors as a harness [`Model`]: every execution the harness builds gets its
//! own fresh private containerd (set up with the scenario's fixture), a fresh private registry and
//! one interposer socket per actor, so any strategy (replay, DFS, random, PCT, shrinking) runs
//! over real processes exactly as over the model (feature `containerd`).
//!
//! Why fresh, not reset: nothing at the API level makes a used daemon equivalent to a new one.
//! The local store names an ingest after its bucket's sequence number and the GC scheduler counts
//! deletions; both survive any cleanup made through the API, and both reach a trace.
//!
//! Life cycle: [`RealModel::build`] retires the previous execution's daemon, registry and
//! interposer (its processes were killed when the executor dropped their feeds), then starts the
//! next. [`RealModel::finish`] retires the last one and hands back its journal and results.
//! A setup that fails (a daemon that does not start, a registry address in use) makes every actor
//! of that execution fail at its first step as a backend failure, never as a verdict, and is kept
//! in [`Retired::setup_error`].

use super::commands::Place;
use super::daemon::set_up_with;
use super::external::{Feed, Next};
use super::interposed::{CommandFeed, Journal};
use super::real::{RealActor, RealOptions};
use super::{registry, spawn_scenario, Answer, Driver, Outcomes};
use crate::explore::initial_sim;
use crate::scenario::{ProgramSpec, Scenario};
use pushrace_daemon::interpose::{HoldGate, Interposer, RegistryProxy};
use pushrace_daemon::{apply, Daemon, Registry, VirtualClockMapping, DEFAULT_SCALE};
use pushrace_harness::{Model, World};
use pushrace_models::oci::{Blob, Role};
use pushrace_models::pull::distribution_source;
use pushrace_models::Error;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time spent on real executions, summed over every execution built.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    /// Daemon and registry start.
    pub started: Duration,
    /// The fixture set up on the daemon.
    pub setup: Duration,
    /// The executions themselves (from the end of setup to retirement).
    pub run: Duration,
    /// Stopping daemons and registries, removing their directories.
    pub teardown: Duration,
    /// Executions built.
    pub executions: u64,
}

/// What the last execution left, once retired.
#[derive(Debug, Default)]
pub struct Retired {
    pub journal: Journal,
    pub results: Vec<Option<Result<(), Error>>>,
    /// The first setup failure of any execution (which then made no verdict).
    pub setup_error: Option<String>,
    /// Disagreements of the real calls with the shadow model, over every execution, each
    /// prefixed with its execution's number (1-based).
    pub disagreements: Vec<String>,
    pub times: Times,
}

/// One execution's private services.
struct Live {
    daemon: Daemon,
    registry: Option<Registry>,
    /// The registry under the scheduler: each actor's `{registry}` is its own port of it.
    proxy: RegistryProxy,
    interposer: Interposer,
    gate: Arc<HoldGate>,
    journal: Rc<RefCell<Journal>>,
    outcomes: Outcomes,
    ran_from: Instant,
}

/// A scenario's real actors as a harness model (see the module doc).
pub struct RealModel {
    scenario: Rc<Scenario>,
    actors: Rc<Vec<RealActor>>,
    options: RealOptions,
    go_client: String,
    live: RefCell<Option<Live>>,
    retired: RefCell<Retired>,
}

impl RealModel {
    /// The model of `s` played by `actors` (one per scenario actor). `Err`: the counts differ, or
    /// a command names `{go_client}` and the Go client is not built.
    pub fn new(s: &Scenario, actors: &[RealActor], o: &RealOptions) -> Result<RealModel, String> {
        if actors.len() != s.actors.len() {
            let n = s.actors.len();
            let given = actors.len();
            return Err(format!(
                "scenario {} has {n} actors, {given} real ones were given",
                s.name
            ));
        }
        let names_go = |a: &RealActor| {
            let argv = a.commands.iter().flat_map(|c| c.argv.iter());
            argv.clone().any(|x| x.contains("{go_client}"))
        };
        let go_client = match actors.iter().any(names_go) {
            true => super::commands::go_client_path()?,
            false => String::new(),
        };
        Ok(RealModel {
            scenario: Rc::new(s.clone()),
            actors: Rc::new(actors.to_vec()),
            options: o.clone(),
            go_client,
            live: RefCell::new(None),
            retired: RefCell::new(Retired::default()),
        })
    }

    /// Retires the last execution and returns what it left (and the totals of all of them).
    pub fn finish(&self) -> Retired {
        self.retire();
        std::mem::take(&mut *self.retired.borrow_mut())
    }

    /// Stops the current execution's services and keeps its journal and results.
    fn retire(&self) {
        let Some(live) = self.live.borrow_mut().take() else {
            return;
        };
        let t0 = Instant::now();
        let mut r = self.retired.borrow_mut();
        r.times.run += t0.duration_since(live.ran_from);
        live.interposer.stop();
        live.proxy.stop();
        if let Some(reg) = live.registry {
            let _ = reg.stop();
        }
        let _ = live.daemon.stop();
        r.times.teardown += t0.elapsed();
        r.journal = std::mem::take(&mut *live.journal.borrow_mut());
        let n = r.times.executions;
        let found = r
            .journal
            .disagreements
            .iter()
            .map(|d| format!("execution {n}: {d}"));
        let found: Vec<_> = found.collect();
        r.disagreements.extend(found);
        r.results = live.outcomes.borrow().clone();
    }

    /// Starts a fresh daemon and registry, sets the fixture up, and listens for the actors.
    fn start(&self) -> Result<Live, String> {
        let t0 = Instant::now();
        let daemon = Daemon::start().map_err(|e| format!("cannot start containerd: {e}"))?;
        let o = &self.options;
        let registry = match (&o.registry, &o.registry_addr) {
            (Some(_), _) => None,
            (None, None) => Some(Registry::start()),
            (None, Some(addr)) => Some(Registry::start_on(addr)),
        };
        let registry = registry
            .transpose()
            .map_err(|e| format!("cannot start the registry: {e}"))?;
        let t1 = Instant::now();
        set_up_fixture(&self.scenario, &daemon)?;
        if let Some(r) = &registry {
            seed_registry(&self.scenario, r)?;
        }
        let actors = self.scenario.actors.iter().enumerate();
        let listen: Vec<_> = actors
            .map(|(i, a)| (a.name.clone(), socket(&daemon, i)))
            .collect();
        let gate = Arc::new(HoldGate::default());
        let interposer = Interposer::start(&listen, &daemon.socket(), gate.clone())?;
        let names: Vec<_> = listen.iter().map(|(a, _)| a.clone()).collect();
        let upstream = registry_addr(registry.as_ref(), &self.options);
        let proxy = RegistryProxy::start(&names, &upstream, gate.clone())?;
        let mut r = self.retired.borrow_mut();
        r.times.started += t1.duration_since(t0);
        r.times.setup += t1.elapsed();
        let live = Live {
            daemon,
            registry,
            proxy,
            interposer,
            gate,
            journal: Rc::default(),
            outcomes: Rc::default(),
            ran_from: Instant::now(),
        };
        Ok(live)
    }

    /// The feed of actor `i` in `live`.
    fn feed(&self, live: &Live, i: usize) -> Box<dyn Feed> {
        let place = Place {
            address: socket(&live.daemon, i).display().to_string(),
            registry: match self.options.registry_unscheduled {
                true => registry_addr(live.registry.as_ref(), &self.options),
                false => live
                    .proxy
                    .addr(&self.scenario.actors[i].name)
                    .unwrap_or_default()
                    .to_string(),
            },
            reference: self.actors[i].reference.clone(),
            go_client: self.go_client.clone(),
        };
        Box::new(CommandFeed::new(
            &self.scenario.actors[i].name,
            place,
            self.actors[i].commands.clone(),
            live.gate.clone(),
            self.options.budgets,
            live.journal.clone(),
        ))
    }
}

impl Model for RealModel {
    fn build(&self, w: &mut World) {
        self.retire();
        self.retired.borrow_mut().times.executions += 1;
        let shadow = Rc::new(RefCell::new(initial_sim(&self.scenario)));
        match self.start() {
            Ok(mut live) => {
                let feeds = |i: usize| Driver::External(self.feed(&live, i));
                live.outcomes = spawn_scenario(w, &self.scenario, &shadow, feeds);
                *self.live.borrow_mut() = Some(live);
            }
            Err(why) => {
                let mut r = self.retired.borrow_mut();
                r.setup_error.get_or_insert(why.clone());
                let broken = |_| Driver::External(Box::new(Broken(why.clone())) as Box<dyn Feed>);
                spawn_scenario(w, &self.scenario, &shadow, broken);
            }
        }
    }
}

/// The registry's `HOST:PORT`: the execution's own, or the shared one of the options.
fn registry_addr(own: Option<&Registry>, o: &RealOptions) -> String {
    match (own, &o.registry) {
        (Some(r), _) => r.addr().to_string(),
        (None, a) => a.clone().unwrap_or_default(),
    }
}

/// Actor `i`'s interposer socket, in the daemon's own directory (removed with it).
fn socket(daemon: &Daemon, i: usize) -> std::path::PathBuf {
    daemon.dir().join(format!("a{i}.sock"))
}

/// The feed of an actor whose execution could not be set up: it fails at once.
struct Broken(String);

impl Feed for Broken {
    fn next(&mut self, _: Duration) -> Result<Next, String> {
        Err(format!("the execution could not be set up: {}", self.0))
    }
    fn answer(&mut self, _: Answer) -> Option<String> {
        None
    }
}

/// Sets `s`'s images up on `daemon` through the gRPC backend, then one GC (as the model's setup).
pub fn set_up_fixture(s: &Scenario, daemon: &Daemon) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let client = rt
        .block_on(daemon.client())
        .map_err(|e| format!("connecting: {e}"))?;
    let mut clock = VirtualClockMapping::new(DEFAULT_SCALE);
    set_up_with(s, |op| rt.block_on(apply(&client, op, &mut clock)))
        .map_err(|e| format!("setting up the scenario on the daemon: {e}"))
}

/// Puts into the execution's own registry, before any actor runs, what the model's registry
/// starts with ([`registry::seed`], which the shadow model's registry starts with too, tags
/// included: the pushers' and pullers' HEADs by tag are compared with it): each image's blobs,
/// configs and layers first, then manifests by digest, then the index by its tag.
///
/// Refused (the model would not say what the real processes do; a pull from a repository a push
/// pushes to is refused by the loader already): a pull whose `remote` names another host than a
/// push's `ref`. On real processes every name reaches the one registry (`{registry}`), so the
/// push mounts what the pull labelled, where the model's push mounts only from its own host's
/// label (`remotes/docker/handler.go` selectRepositoryMountCandidate reads the label of the
/// push's host).
///
/// The registry refuses a manifest whose blobs it lacks (an index seeded without its manifests):
/// a setup failure naming it.
pub fn seed_registry(s: &Scenario, registry: &Registry) -> Result<(), String> {
    refuse_pulls_from_other_hosts(s)?;
    for im in registry::seed(s) {
        put_image(registry, &im)?;
    }
    Ok(())
}

/// See [`seed_registry`].
fn refuse_pulls_from_other_hosts(s: &Scenario) -> Result<(), String> {
    let pushes: Vec<_> = s
        .actors
        .iter()
        .filter_map(|a| match &a.program {
            ProgramSpec::Push { reference, .. } => Some(reference.as_str()),
            _ => None,
        })
        .collect();
    for a in &s.actors {
        let ProgramSpec::Pull { remote, .. } = &a.program else {
            continue;
        };
        let key = distribution_source(remote).0;
        for push in &pushes {
            if distribution_source(push).0 != key {
                return Err(format!("actor {} pulls {remote} and a push pushes {push}: on real processes both reach the one registry, where the push mounts what the pull labelled; on the model the hosts differ, so it would not (name the pull's host as the push's, e.g. `remote = \"example.com:5000/base:1\"`)", a.name));
            }
        }
    }
    Ok(())
}

/// Puts one image's seeded blobs into its repository, children first; the index under its tag.
fn put_image(registry: &Registry, im: &registry::Seeded) -> Result<(), String> {
    let leaf = |b: &&&Blob| matches!(b.role, Role::Config { .. } | Role::Layer { .. });
    for b in im.blobs.iter().filter(leaf) {
        registry.put_blob(im.repo, b.digest(), &b.data)?;
    }
    let manifests = im
        .blobs
        .iter()
        .filter(|b| matches!(b.role, Role::Manifest { .. }));
    for b in manifests {
        registry.put_manifest(im.repo, b.digest(), &b.descriptor.media_type, &b.data)?;
    }
    match im.index() {
        Some(b) => registry.put_manifest(im.repo, im.tag, &b.descriptor.media_type, &b.data),
        None => Ok(()),
    }
}
