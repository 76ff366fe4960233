//! pushrace as a library: check containerd image-push races from `cargo test`.
//!
//! Three verbs, in the manner of `loom::model` and `shuttle::check_random`:
//!
//! - [`Scenario`] — a scenario file ([`Scenario::from_file`]) or one built in code
//!   ([`Scenario::builder`]): fixture images, actors running the built-in programs (nerdctl push
//!   variants and their neighbours), an invariant. [`Scenario::explore`] returns a [`Report`];
//!   [`Report::assert_holds`] and [`Report::assert_violation`] panic with the readable, shrunk
//!   trace.
//! - [`check`] — your own async client code, written against the [`Client`] trait, run as two
//!   racing actors on the model; [`Check`] for several different actors, or to race your code
//!   against a scenario's actors.
//! - [`Config`] — how hard to look. `Config::default()` reads `PUSHRACE_SEED`,
//!   `PUSHRACE_PREEMPTIONS`, `PUSHRACE_BUDGET`, `PUSHRACE_SHARD=K/N`, `PUSHRACE_JOBS`,
//!   `PUSHRACE_STRATEGY` and `PUSHRACE_SCHEDULE` from the environment (as `ProptestConfig::default()` reads
//!   `PROPTEST_CASES`), so CI can widen a search without code changes; [`Config::new`] does not.
//!
//! ```
//! use pushrace::{Config, Scenario};
//!
//! // nerdctl #855: two v0.18 pushes of the same ref share the tmp image; one's synchronous
//! // delete collects the reduced index the other is still reading.
//! let two_pushes = Scenario::builder()
//!     .containerd("1.6")
//!     .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
//!     .push("push-a", "example.com/app:1", "v0.18")
//!     .push("push-b", "example.com/app:1", "v0.18")
//!     .invariant("no-missing-digest")
//!     .build()
//!     .unwrap();
//! let report = two_pushes.explore(Config::new());
//! report.assert_violation();
//! assert_eq!(report.missing(), Some("reduced-index"));
//!
//! // The proposed fix holds within the same bounds.
//! let fixed = Scenario::builder()
//!     .containerd("1.6")
//!     .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
//!     .push("push-a", "example.com/app:1", "lease-held")
//!     .push("push-b", "example.com/app:1", "lease-held")
//!     .build()
//!     .unwrap();
//! fixed.explore(Config::new()).assert_holds();
//! ```
//!
//! Failures are kept as values, not seeds: a failed [`Report::assert_holds`] writes the scenario
//! with the failing schedule in its `[check] schedule` to `pushrace-regressions/<name>.toml`
//! (replayed before exploring when loaded; copy it into `scenarios/corpus/` to make it a corpus
//! test), and a failed [`check`] appends its schedule to `pushrace-regressions/<test>.schedules`,
//! replayed first by later runs of the same test. See [`Config::regressions`].

#![warn(missing_docs)]

pub mod corpus;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

use pushrace_harness::{Explorer, Schedule, Shard, World};
use pushrace_scenarios::backend::{spawn_scenario, Driver, ModelClient, RepoObject, Stepped};
use pushrace_scenarios::explore::{self as engine, Options, Verdict};
use pushrace_scenarios::scenario::{self as file, Invariant, Source};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

/// The most threads [`Config::jobs`], `PUSHRACE_JOBS` and `--jobs` take.
pub const MAX_JOBS: u32 = 256;
/// The deepest PCT bug depth [`Config::depth`], `PUSHRACE_DEPTH`, `--depth` and a scenario's `[check] depth` take.
pub use pushrace_harness::strategy::pct::MAX_DEPTH;
pub use pushrace_harness::Strategy;
pub use pushrace_models as model;
pub use pushrace_models::oci::ImageFixture;
pub use pushrace_models::program::Call;
pub use pushrace_models::{Ctx, Error, ErrorKind, Op, OpKind, Outcome};
pub use pushrace_scenarios::backend::Client;
pub use pushrace_scenarios::scenario::ScenarioError;

// ---------------------------------------------------------------------------------------------
// Config

/// How to explore. Unset fields take the scenario's declared bounds (`[check]` in its file),
/// else the defaults: DFS with preemption bound 2 and partial-order reduction, to exhaustion.
///
/// ```
/// use pushrace::{Config, Strategy};
///
/// // `Config::default()` is `Config::from_env()`: in CI, `PUSHRACE_PREEMPTIONS=3 cargo test`
/// // widens every exploration that uses it, `PUSHRACE_SHARD=K/N` splits it over N jobs.
/// let _ci = Config::default();
/// let ci = Config::from_lookup(|var| match var {
///     "PUSHRACE_SHARD" => Some("1/4".to_string()),
///     "PUSHRACE_PREEMPTIONS" => Some("3".to_string()),
///     _ => None,
/// })
/// .unwrap();
/// assert_eq!(ci, Config::new().shard(1, 4).preemptions(3));
/// // Setters win over the environment; random sampling needs a seed and a budget.
/// let sample = Config::from_env().strategy(Strategy::Random).seed(7).budget(200);
/// # let _ = sample;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    strategy: Option<Strategy>,
    /// `Some(None)`: no bound (every interleaving).
    preemptions: Option<Option<usize>>,
    seed: Option<u64>,
    budget: Option<u64>,
    depth: Option<usize>,
    shard: Option<(u32, u32)>,
    jobs: Option<u32>,
    schedule: Option<String>,
    regressions: Option<Option<PathBuf>>,
    prune: Option<bool>,
    prune_memory: Option<usize>,
}

/// One setting of [`Config`] that the environment and the command line give as text: both are
/// read and validated by [`Config::from_settings`], the one path from text to a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `dfs`, `random` or `pct`.
    Strategy,
    /// DFS's preemption bound: an integer, or `none` for no bound.
    Preemptions,
    /// Random and PCT's seed.
    Seed,
    /// Executions, at least 1.
    Budget,
    /// PCT's bug depth, 1 to [`MAX_DEPTH`].
    Depth,
    /// `K/N`: slice K of N.
    Shard,
    /// Threads exploring the shards of one exploration, at least 1.
    Jobs,
    /// A schedule replayed first.
    Schedule,
}

/// How the settings are named in error messages: as environment variables (`PUSHRACE_DEPTH=99`)
/// or as flags (`--depth 99`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// `PUSHRACE_*`.
    Env,
    /// `--*`.
    Flags,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 8] = [
        Setting::Strategy,
        Setting::Preemptions,
        Setting::Seed,
        Setting::Budget,
        Setting::Depth,
        Setting::Shard,
        Setting::Jobs,
        Setting::Schedule,
    ];

    /// The environment variable [`Config::from_env`] reads it from.
    pub const fn env(self) -> &'static str {
        match self {
            Setting::Strategy => "PUSHRACE_STRATEGY",
            Setting::Preemptions => "PUSHRACE_PREEMPTIONS",
            Setting::Seed => "PUSHRACE_SEED",
            Setting::Budget => "PUSHRACE_BUDGET",
            Setting::Depth => "PUSHRACE_DEPTH",
            Setting::Shard => "PUSHRACE_SHARD",
            Setting::Jobs => "PUSHRACE_JOBS",
            Setting::Schedule => "PUSHRACE_SCHEDULE",
        }
    }

    /// Its command-line flag.
    pub fn flag(self) -> &'static str {
        match self {
            Setting::Strategy => "--strategy",
            Setting::Preemptions => "--preemptions",
            Setting::Seed => "--seed",
            Setting::Budget => "--budget",
            Setting::Depth => "--depth",
            Setting::Shard => "--shard",
            Setting::Jobs => "--jobs",
            Setting::Schedule => "--schedule",
        }
    }

    /// The setting as an error message names it, with its value when given.
    fn named(self, names: Names, value: Option<&str>) -> String {
        match (names, value) {
            (Names::Env, Some(v)) => format!("{}={v}", self.env()),
            (Names::Env, None) => self.env().to_string(),
            (Names::Flags, Some(v)) => format!("{} {v}", self.flag()),
            (Names::Flags, None) => self.flag().to_string(),
        }
    }
}

/// The environment variables [`Config::from_env`] reads.
pub const ENV_VARS: [&str; Setting::ALL.len()] = {
    let mut names = [""; Setting::ALL.len()];
    let mut i = 0;
    while i < Setting::ALL.len() {
        names[i] = Setting::ALL[i].env();
        i += 1;
    }
    names
};

impl Default for Config {
    /// [`Config::from_env`].
    fn default() -> Config {
        Config::from_env()
    }
}

impl Config {
    /// Nothing set: the scenario's declared bounds, else the defaults. Ignores the environment.
    pub fn new() -> Config {
        Config {
            strategy: None,
            preemptions: None,
            seed: None,
            budget: None,
            depth: None,
            shard: None,
            jobs: None,
            schedule: None,
            regressions: None,
            prune: None,
            prune_memory: None,
        }
    }

    /// [`Config::new`] with whatever the environment sets: `PUSHRACE_STRATEGY` (`dfs`, `random`,
    /// `pct`), `PUSHRACE_PREEMPTIONS`, `PUSHRACE_SEED`, `PUSHRACE_BUDGET` (executions),
    /// `PUSHRACE_DEPTH` (PCT), `PUSHRACE_SHARD=K/N`, `PUSHRACE_JOBS` (threads) and
    /// `PUSHRACE_SCHEDULE` (replayed first).
    /// Setters called afterwards win over the environment.
    ///
    /// # Panics
    /// On a malformed value, naming the variable (a CI typo should not silently explore less).
    pub fn from_env() -> Config {
        match Config::from_lookup(|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => panic!("pushrace: {e}"),
        }
    }

    /// [`Config::from_env`] over any lookup, reporting a malformed value as an error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        Config::from_settings(|k| get(k.env()), Names::Env)
    }

    /// A configuration from settings given as text (the environment's, the command line's),
    /// each validated here and only here; an error names the setting as `names` says. Empty
    /// values count as unset.
    pub fn from_settings(
        get: impl Fn(Setting) -> Option<String>,
        names: Names,
    ) -> Result<Config, String> {
        let get = |k| {
            get(k)
                .map(|v: String| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let num = |k: Setting| -> Result<Option<u64>, String> {
            let Some(v) = get(k) else { return Ok(None) };
            let bad = || {
                format!(
                    "{}: expected a non-negative integer",
                    k.named(names, Some(&format!("{v:?}")))
                )
            };
            v.parse::<u64>().map(Some).map_err(|_| bad())
        };
        let mut c = Config::new();
        if let Some(s) = get(Setting::Strategy) {
            let k = pushrace_scenarios::scenario::explore_strategy(&s);
            c.strategy =
                Some(k.map_err(|e| format!("{}: {e}", Setting::Strategy.named(names, None)))?);
        }
        if let Some(v) = get(Setting::Preemptions) {
            let b = pushrace_scenarios::scenario::preemption_bound(&v, usize::MAX);
            let name = || Setting::Preemptions.named(names, None);
            c.preemptions = Some(b.map_err(|e| format!("{}: {e}", name()))?);
        }
        c.seed = num(Setting::Seed)?;
        c.budget = num(Setting::Budget)?;
        if c.budget == Some(0) {
            let name = Setting::Budget.named(names, Some("0"));
            return Err(format!("{name}: expected at least 1 execution"));
        }
        let depth = num(Setting::Depth)?;
        if let Some(d) = depth.filter(|&d| d == 0 || d > MAX_DEPTH as u64) {
            let name = Setting::Depth.named(names, Some(&d.to_string()));
            return Err(format!("{name}: expected 1 to {MAX_DEPTH}"));
        }
        c.depth = depth.map(|d| d as usize);
        if let Some(s) = get(Setting::Shard) {
            let sh = Shard::parse(&s)
                .map_err(|e| format!("{}: {e}", Setting::Shard.named(names, None)))?;
            c.shard = Some((sh.index, sh.count));
        }
        let jobs = num(Setting::Jobs)?;
        if let Some(j) = jobs.filter(|&j| j == 0 || j > MAX_JOBS as u64) {
            let name = Setting::Jobs.named(names, Some(&j.to_string()));
            return Err(format!("{name}: expected 1 to {MAX_JOBS} threads"));
        }
        c.jobs = jobs.map(|j| j as u32);
        if let Some(s) = get(Setting::Schedule) {
            Schedule::parse(&s)
                .map_err(|e| format!("{}: {e}", Setting::Schedule.named(names, None)))?;
            c.schedule = Some(s);
        }
        Ok(c)
    }

    /// Exhaustive DFS (the default), random sampling or PCT.
    pub fn strategy(mut self, s: Strategy) -> Config {
        self.strategy = Some(s);
        self
    }
    /// DFS: at most this many preemptions per execution.
    pub fn preemptions(mut self, n: usize) -> Config {
        self.preemptions = Some(Some(n));
        self
    }
    /// DFS with no preemption bound: every interleaving (`--preemptions none`,
    /// `PUSHRACE_PREEMPTIONS=none`); an exhausted run reports "all interleavings".
    ///
    /// ```
    /// use pushrace::Config;
    /// let env = Config::from_lookup(|v| (v == "PUSHRACE_PREEMPTIONS").then(|| "none".into()));
    /// assert_eq!(env, Ok(Config::new().unbounded()));
    /// ```
    pub fn unbounded(mut self) -> Config {
        self.preemptions = Some(None);
        self
    }
    /// Random and PCT: the seed.
    pub fn seed(mut self, seed: u64) -> Config {
        self.seed = Some(seed);
        self
    }
    /// At most this many executions (DFS otherwise runs to exhaustion; random and PCT run 1000).
    /// A run stopped by it is not a proof: [`Report::proved`] is false.
    ///
    /// # Panics
    /// When `executions` is 0 (exploring nothing proves nothing).
    pub fn budget(mut self, executions: u64) -> Config {
        assert!(executions > 0, "budget 0: expected at least 1 execution");
        self.budget = Some(executions);
        self
    }
    /// PCT: the bug depth.
    ///
    /// # Panics
    /// When `depth` is not 1 to [`MAX_DEPTH`].
    pub fn depth(mut self, depth: usize) -> Config {
        assert!(
            (1..=MAX_DEPTH).contains(&depth),
            "depth {depth}: expected 1 to {MAX_DEPTH}"
        );
        self.depth = Some(depth);
        self
    }
    /// Explore only slice `index` of `count` (0-based); the union of all slices is the whole.
    ///
    /// # Panics
    /// When `index >= count`.
    pub fn shard(mut self, index: u32, count: u32) -> Config {
        assert!(
            index < count,
            "shard {index}/{count}: expected index < count"
        );
        self.shard = Some((index, count));
        self
    }
    /// Explore in `threads` threads of this process, each taking its share of the shards of one
    /// exploration (within [`Config::shard`] when one is set: a shard of a shard); the merged
    /// report's verdict, failure and trace hashes are the same for every thread count (the run
    /// is the sharded one, `shard(0, 1)`, split `threads` ways). Unset: one thread, unsharded.
    /// Applies to [`Scenario::explore`]; [`check`] and [`Check::run`] run your actors in the
    /// calling thread (their closures need not be `Send`) and ignore it.
    ///
    /// # Panics
    /// When `threads` is not 1 to [`MAX_JOBS`].
    pub fn jobs(mut self, threads: u32) -> Config {
        assert!(
            (1..=MAX_JOBS).contains(&threads),
            "jobs {threads}: expected 1 to {MAX_JOBS} threads"
        );
        self.jobs = Some(threads);
        self
    }
    /// Replay this schedule (as a failure prints it) before exploring; when it still fails,
    /// that failure is the result.
    ///
    /// # Panics
    /// When the schedule does not parse.
    pub fn schedule(mut self, schedule: &str) -> Config {
        if let Err(e) = Schedule::parse(schedule) {
            panic!("pushrace: schedule {schedule:?}: {e}");
        }
        self.schedule = Some(schedule.to_string());
        self
    }
    /// DFS: visited-state pruning (off by default): a state of the model (the store, the
    /// registry, each actor's history of answers, and under a bound the preemptions used and
    /// the last actor) is explored below once; sound with partial-order reduction. The same
    /// verdict, fewer executions ([`Report::distinct_states`]).
    pub fn prune(mut self, on: bool) -> Config {
        self.prune = Some(on);
        self
    }
    /// The visited table's memory limit in bytes (default: a quarter of the machine's memory).
    /// A full table prunes less from then on ([`Report::prune_table_full_at`]); it never fails.
    pub fn prune_memory(mut self, bytes: usize) -> Config {
        self.prune_memory = Some(bytes);
        self
    }
    /// Where failed assertions persist what failed (default: `pushrace-regressions/` in the
    /// package being tested, `$CARGO_MANIFEST_DIR`, else the current directory; the environment
    /// variable `PUSHRACE_REGRESSIONS` overrides it, `PUSHRACE_REGRESSIONS=off` disables it).
    /// `None` disables persisting.
    pub fn regressions(mut self, dir: Option<&Path>) -> Config {
        self.regressions = Some(dir.map(Path::to_path_buf));
        self
    }

    fn regressions_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.regressions {
            return d.clone();
        }
        match std::env::var("PUSHRACE_REGRESSIONS") {
            Ok(v) if v == "off" || v.is_empty() => return None,
            Ok(v) => return Some(PathBuf::from(v)),
            Err(_) => {}
        }
        let base = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Some(base.join("pushrace-regressions"))
    }

    /// The exploration options for a scenario: its declared bounds, then what is set here.
    /// The exploration options for `s`: this configuration over the scenario's declared bounds.
    pub fn options(&self, s: &file::Scenario) -> Options {
        let mut o = Options::for_scenario(s);
        if let Some(x) = self.strategy {
            o.strategy = x;
        }
        if let Some(x) = self.preemptions {
            o.preemptions = x;
        }
        if let Some(x) = self.seed {
            o.seed = x;
        }
        if let Some(x) = self.budget {
            o.budget = Some(x);
        }
        if let Some(x) = self.depth {
            o.depth = x;
        }
        if let Some((index, count)) = self.shard {
            o.shard = Some(Shard { index, count });
        }
        if let Some(x) = self.prune {
            o.prune = x;
        }
        if let Some(x) = self.prune_memory {
            o.prune_memory = Some(x);
        }
        o
    }

    /// The threads [`Config::jobs`] asks for, if set.
    pub fn threads(&self) -> Option<u32> {
        self.jobs
    }

    /// Whether a shard is set (a shard may not contain an expected violation).
    pub fn is_sharded(&self) -> bool {
        self.shard.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario

/// A scenario: fixture images, actors, the invariant to check, and (from a file) the bounds and
/// the expected verdict.
#[derive(Clone, Debug)]
pub struct Scenario {
    inner: file::Scenario,
    text: String,
}

impl Scenario {
    /// Loads a scenario file (the format is in `docs/scenario-format.md`; see `scenarios/corpus/`).
    ///
    /// ```
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/corpus/same-ref.toml");
    /// let report = pushrace::Scenario::from_file(path).unwrap().explore(pushrace::Config::new());
    /// report.assert_violation();
    /// assert!(report.to_string().contains("pushrace replay"));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let max = pushrace_models::limits::MAX_FILE_BYTES;
        let text =
            pushrace_models::limits::read_regular_text(path, max).map_err(|e| ScenarioError {
                file: name.clone(),
                line: None,
                key: None,
                message: e,
            })?;
        Scenario::from_toml(&name, &text)
    }

    /// Parses scenario text; `file` names it in errors and in replay commands.
    pub fn from_toml(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        Ok(Scenario {
            inner: file::parse(file, text)?,
            text: text.to_string(),
        })
    }

    /// A built-in scenario (`pushrace list`), by name.
    pub fn builtin(name: &str) -> Option<Scenario> {
        let text = pushrace_scenarios::library::CORPUS
            .iter()
            .find(|(n, _)| *n == name)?
            .1;
        Scenario::from_toml(&format!("builtin:{name}"), text).ok()
    }

    /// A scenario built in code; see [`ScenarioBuilder`].
    pub fn builder() -> ScenarioBuilder {
        ScenarioBuilder::default()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its scenario-file text (for a built one, the TOML the builder wrote).
    pub fn to_toml(&self) -> &str {
        &self.text
    }

    /// The declared expectation: `Some(true)` holds, `Some(false)` violation.
    pub fn expects_holds(&self) -> Option<bool> {
        self.inner.check.expect.map(|e| e == file::Expect::Holds)
    }

    /// The underlying loaded scenario (fixtures, actors, setup store).
    pub fn inner(&self) -> &file::Scenario {
        &self.inner
    }

    /// Explores its interleavings under `config` over the scenario's declared bounds.
    pub fn explore(&self, config: Config) -> Report {
        let mut s = self.inner.clone();
        if let Some(sch) = &config.schedule {
            s.check.schedule = Some(sch.clone());
        }
        let opts = config.options(&s);
        let verdict = match config.jobs {
            Some(jobs) => pushrace_scenarios::parallel::explore(&s, &opts, jobs),
            None => engine::explore(&s, &opts),
        };
        Report {
            verdict,
            origin: Origin::Scenario {
                text: self.text.clone(),
                file_backed: !matches!(s.source, Source::Builder(_) | Source::Check(_)),
            },
            config,
        }
    }
}

/// Builds a [`Scenario`] in code. It writes a scenario file and loads it, so it accepts what a
/// file accepts and reports mistakes the same way; [`Scenario::to_toml`] gives the file.
///
/// ```
/// use pushrace::{Actor, Config, Scenario};
///
/// // A v0.18 push racing another test's `nerdctl rmi -f` in its own namespace.
/// let s = Scenario::builder()
///     .name("rmi-other")
///     .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
///     .image_in("test-2", "example.com/other:1", ["linux/amd64"])
///     .push("push", "example.com/app:1", "v0.18")
///     .actor(
///         Actor::new("rmi", "nerdctl.rmi")
///             .with("namespace", "test-2")
///             .with("image", "example.com/other:1")
///             .with("force", true),
///     )
///     .build()
///     .unwrap();
/// s.explore(Config::new()).assert_holds();
/// assert!(s.to_toml().contains("program = \"nerdctl.rmi\""));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScenarioBuilder {
    doc: file::FileDoc,
    /// The first table that is not an `[[image]]` or `[[actor]]` (reported by `build`).
    refused: Option<ScenarioError>,
}

/// An actor for [`ScenarioBuilder::actor`]: a name, a built-in program (`nerdctl.push`,
/// `nerdctl.pull`, `nerdctl.tag`, `nerdctl.rmi`, `nerdctl.image-convert`, `ctr.images.rm`,
/// `gc.ticker`, `clock.advance`, `ops`) and its parameters, as in a scenario file's `[[actor]]`.
#[derive(Clone, Debug)]
pub struct Actor {
    table: toml::Table,
}

impl Actor {
    /// An actor running `program`.
    pub fn new(name: &str, program: &str) -> Actor {
        let mut table = toml::Table::new();
        table.insert("name".into(), name.into());
        table.insert("program".into(), program.into());
        Actor { table }
    }
    /// A parameter (`ref`, `platforms`, `variant`, `image`, `force`, `sync`, …).
    pub fn with(mut self, key: &str, value: impl Into<toml::Value>) -> Actor {
        self.table.insert(key.into(), value.into());
        self
    }
}

/// A table given to the builder as the document section it stands for (`what` names it in the
/// error: `[[image]]`, `[[actor]] NAME`).
fn section<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    what: &str,
) -> Result<T, ScenarioError> {
    let refused = |message: String| ScenarioError {
        file: "builder".into(),
        line: None,
        key: None,
        message: format!("{what}: {message}"),
    };
    let text = toml::to_string(table).map_err(|e| refused(e.to_string()))?;
    toml::from_str(&text).map_err(|e| refused(e.message().trim().to_string()))
}

impl ScenarioBuilder {
    /// The scenario's name (default: `scenario`).
    pub fn name(mut self, name: &str) -> Self {
        self.doc.name = Some(name.to_string());
        self
    }
    /// containerd semantics: `1.6`, `1.7` (default) or `2.0`.
    pub fn containerd(mut self, version: &str) -> Self {
        self.doc.containerd = Some(file::val(version.to_string()));
        self
    }
    /// `sync-only` (default) or `background` (a GC ticker actor joins).
    pub fn gc(mut self, mode: &str) -> Self {
        self.doc.gc = Some(file::val(mode.to_string()));
        self
    }
    /// A fixture image in namespace `default`, pulled with every platform's blobs.
    pub fn image<'a>(self, reference: &str, platforms: impl IntoIterator<Item = &'a str>) -> Self {
        self.image_in("default", reference, platforms)
    }
    /// A fixture image in another namespace.
    pub fn image_in<'a>(
        mut self,
        namespace: &str,
        reference: &str,
        platforms: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let platforms = platforms.into_iter().map(str::to_string).collect();
        self.doc.image.push(file::ImageDoc {
            platforms: Some(file::val(platforms)),
            namespace: (namespace != "default").then(|| file::val(namespace.to_string())),
            ..file::ImageDoc::new(reference)
        });
        self
    }
    /// A fixture image with any `[[image]]` keys (`ref`, `platforms`, `layers`, `fetched`,
    /// `tags`, `namespace`).
    pub fn image_table(mut self, table: toml::Table) -> Self {
        match section(&table, "[[image]]") {
            Ok(image) => self.doc.image.push(image),
            Err(e) => self.refused = self.refused.or(Some(e)),
        }
        self
    }
    /// A `nerdctl push` of `reference` (its first platform) in `variant` (`v0.17`, `v0.18`,
    /// `v2.0.4`, `v2.0.5`, `lease-held`).
    pub fn push(self, name: &str, reference: &str, variant: &str) -> Self {
        self.actor(
            Actor::new(name, "nerdctl.push")
                .with("ref", reference)
                .with("variant", variant),
        )
    }
    /// Any actor.
    pub fn actor(mut self, actor: Actor) -> Self {
        let name = actor
            .table
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        match section(&actor.table, &format!("[[actor]] {name}")) {
            Ok(a) => self.doc.actor.push(a),
            Err(e) => self.refused = self.refused.or(Some(e)),
        }
        self
    }
    /// `no-missing-digest` (default), `gc-safety`, `no-dangling-reference` or `push-succeeds`.
    pub fn invariant(mut self, invariant: &str) -> Self {
        let check = self.doc.check.get_or_insert_with(Default::default);
        check.invariant = Some(file::val(invariant.to_string()));
        self
    }
    /// The expected verdict, `holds` or `violation` (for a file written with
    /// [`Scenario::to_toml`] that becomes a corpus test).
    pub fn expect(mut self, expect: &str) -> Self {
        let check = self.doc.check.get_or_insert_with(Default::default);
        check.expect = Some(file::val(expect.to_string()));
        self
    }
    /// The TOML this builder writes.
    pub fn to_toml(&self) -> String {
        let mut doc = self.doc.clone();
        doc.name.get_or_insert_with(|| "scenario".into());
        doc.to_toml()
    }
    /// Loads the scenario, reporting mistakes as a scenario file would.
    pub fn build(&self) -> Result<Scenario, ScenarioError> {
        let name = self.doc.name.as_deref().unwrap_or("scenario");
        if let Some(e) = &self.refused {
            return Err(ScenarioError {
                file: format!("builder:{name}"),
                ..e.clone()
            });
        }
        Scenario::from_toml(&format!("builder:{name}"), &self.to_toml())
    }
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Clone, Debug)]
enum Origin {
    Scenario { text: String, file_backed: bool },
    Check { test: String },
}

/// The outcome of an exploration.
#[derive(Debug)]
pub struct Report {
    verdict: Verdict,
    origin: Origin,
    config: Config,
}

impl Report {
    /// No violation (nor any other failure) was found within the bounds (which a budget may have
    /// cut short: see [`Report::proved`]).
    pub fn holds(&self) -> bool {
        self.verdict.holds()
    }
    /// It holds and the whole space within the bounds was explored (DFS, not stopped by a
    /// budget, not one shard): a proof within the bounds, not a sample.
    pub fn proved(&self) -> bool {
        self.verdict.proved()
    }
    /// What was explored, as the verdict line says it: `all interleavings` (DFS with no bound,
    /// [`Config::unbounded`]), `preemption bound 2`, `random sample` or `pct sample`.
    pub fn scope(&self) -> String {
        self.verdict.scope()
    }
    /// DFS's preemption bound; `None` with no bound (or for a sampler, which has none).
    pub fn preemption_bound(&self) -> Option<usize> {
        self.verdict.options.preemptions
    }
    /// Executions explored.
    pub fn executions(&self) -> u64 {
        self.verdict.report.executions
    }
    /// Whether the whole space within the bounds was explored.
    pub fn exhausted(&self) -> bool {
        self.verdict.report.exhausted
    }
    /// With pruning ([`Config::prune`]): the distinct states explored (fully, each once); 0
    /// without.
    pub fn distinct_states(&self) -> u64 {
        self.verdict.report.states
    }
    /// With pruning: executions cut at a state already explored.
    pub fn revisits(&self) -> u64 {
        self.verdict.report.revisits
    }
    /// With pruning: the number of states the visited table held when it reached its memory
    /// limit, if it did (the run went on, pruning less).
    pub fn prune_table_full_at(&self) -> Option<u64> {
        self.verdict.report.prune_full_at
    }
    /// The process's peak resident memory when the run ended (bytes, `VmHWM`; informational).
    pub fn peak_memory(&self) -> Option<u64> {
        self.verdict.report.peak_memory
    }
    /// The failing schedule (shrunk), as a string that replays it.
    pub fn schedule(&self) -> Option<String> {
        self.verdict
            .violation
            .as_ref()
            .map(|v| v.schedule.encode())
            .or_else(|| {
                self.verdict
                    .report
                    .failures
                    .first()
                    .map(|f| f.best_schedule().encode())
            })
    }
    /// What the missing digest of the violation is (`reduced-index`, `index`, `manifest`,
    /// `config`, `layer`), when the scenario knows it.
    pub fn missing(&self) -> Option<&str> {
        self.verdict.violation.as_ref()?.role.map(|r| r.name())
    }
    /// The violation's message (`content digest sha256:…: not found`) or the other failure.
    pub fn message(&self) -> Option<&str> {
        match (&self.verdict.violation, &self.verdict.other_failure) {
            (Some(v), _) => Some(&v.message),
            (None, Some(f)) => Some(f),
            _ => None,
        }
    }
    /// Steps of the shrunk failing trace.
    pub fn shrunk_steps(&self) -> Option<usize> {
        self.verdict.violation.as_ref().map(|v| v.steps_after)
    }
    /// The scenario-level verdict (trace, Mermaid diagram, harness report).
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    /// The readable report: counts, and for a failure the shrunk trace, the Mermaid diagram and
    /// how to replay it.
    pub fn to_text(&self) -> String {
        let mut text = self.verdict.to_text();
        if let Some(sch) = self.schedule() {
            let hint = match &self.origin {
                Origin::Scenario {
                    file_backed: true, ..
                } => None,
                Origin::Scenario { .. } => Some(format!(
                    "scenario.explore(Config::new().schedule({sch:?}))  (or PUSHRACE_SCHEDULE={sch})"
                )),
                Origin::Check { test } => Some(format!(
                    "pushrace::check(…, Config::new().schedule({sch:?}))  (or PUSHRACE_SCHEDULE={sch} cargo test {test})"
                )),
            };
            if let (Some(hint), Some(cmd)) = (hint, self.verdict.replay_command()) {
                text = text.replace(&cmd, &hint);
            }
            if self.verdict.violation.is_none() {
                text.push_str(&format!("\nschedule: {sch}\n"));
            }
        }
        text
    }
    /// The report as JSON (`pushrace explore --json`).
    pub fn to_json(&self) -> serde_json::Value {
        self.verdict.to_json()
    }

    /// Panics, with the readable trace, unless the invariant held. A failure is first persisted
    /// (see [`Config::regressions`]): the scenario with the failing schedule as a file.
    #[track_caller]
    pub fn assert_holds(&self) {
        if self.holds() {
            return;
        }
        let saved = self.persist();
        let mut msg = format!(
            "pushrace: expected the invariant to hold\n{}",
            self.to_text()
        );
        match saved {
            Ok(Some(p)) => msg.push_str(&format!("\nsaved as a value to {}\n", p.display())),
            Ok(None) => {}
            Err(e) => msg.push_str(&format!("\ncould not save the failure: {e}\n")),
        }
        panic!("{msg}");
    }

    /// Panics, with the report, unless a violation of the scenario's invariant was found.
    #[track_caller]
    pub fn assert_violation(&self) {
        if self.verdict.violation.is_none() {
            panic!(
                "pushrace: expected a violation, found none\n{}",
                self.to_text()
            );
        }
    }

    /// Writes what failed, as a value, to the regressions directory: a scenario's file with
    /// `[check] expect = "holds"` and `schedule = "…"` (`<name>.toml`, loadable with
    /// [`Scenario::from_file`] and a corpus test when copied to `scenarios/corpus/`), or a
    /// [`check`]'s schedule appended to `<test>.schedules`. `Ok(None)` when nothing failed or
    /// persisting is off.
    pub fn persist(&self) -> std::io::Result<Option<PathBuf>> {
        let (Some(dir), Some(sch)) = (self.config.regressions_dir(), self.schedule()) else {
            return Ok(None);
        };
        std::fs::create_dir_all(&dir)?;
        match &self.origin {
            Origin::Scenario { text, .. } => {
                let body = with_schedule(text, &sch, self.message().unwrap_or(""))
                    .map_err(std::io::Error::other)?;
                let path = dir.join(format!("{}.toml", file_name(&self.verdict.scenario)));
                std::fs::write(&path, body)?;
                Ok(Some(path))
            }
            Origin::Check { test } => {
                let path = dir.join(format!("{}.schedules", file_name(test)));
                let old = std::fs::read_to_string(&path).unwrap_or_default();
                if old
                    .lines()
                    .any(|l| l.split('#').next().unwrap_or("").trim() == sch)
                {
                    return Ok(Some(path));
                }
                let mut body = if old.is_empty() {
                    "# pushrace: schedules that failed pushrace::check in this test, replayed before exploring.\n".to_string()
                } else {
                    old
                };
                let why = self.message().unwrap_or("").replace('\n', " ");
                body.push_str(&format!("{sch}  # {why}\n"));
                std::fs::write(&path, body)?;
                Ok(Some(path))
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A file-name-safe version of a name.
fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() {
        "scenario".into()
    } else {
        s
    }
}

/// The scenario text with `[check] expect = "holds"` and `schedule = sch`, through the scenario
/// document (so the saved file is what the loader reads).
fn with_schedule(text: &str, sch: &str, why: &str) -> Result<String, String> {
    let mut doc: file::FileDoc = toml::from_str(text).map_err(|e| e.to_string())?;
    let check = doc.check.get_or_insert_with(Default::default);
    check.expect = Some(file::val("holds".to_string()));
    check.missing = None;
    check.max_shrunk_steps = None;
    check.schedule = Some(file::val(sch.to_string()));
    let why: String = why
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Ok(format!(
        "# Saved by pushrace: this schedule broke the invariant ({why}).\n# It is replayed before exploring; the file passes once the fix lands.\n{}",
        doc.to_toml()
    ))
}

// ---------------------------------------------------------------------------------------------
// check: the caller's own client code as actors

/// One actor's client in [`check`] and [`Check`]: every call is one scheduling point on the
/// shared model store. Implements [`Client`]; also tells the actor who it is and what the
/// fixture images are.
#[derive(Clone)]
pub struct ActorClient {
    client: ModelClient,
    name: String,
    index: usize,
    scenario: Rc<file::Scenario>,
}

impl Call for ActorClient {
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>> {
        self.client.call(op)
    }
    fn call_seen(
        &self,
        op: Op,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> impl Future<Output = Result<Outcome, Error>> {
        self.client.call_seen(op, seen)
    }
}

impl Client for ActorClient {
    fn registry_has(&self, o: &RepoObject) -> impl Future<Output = bool> {
        self.client.registry_has(o)
    }
    fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> impl Future<Output = bool> {
        self.client.registry_tagged(tag, digest)
    }
    fn registry_put(&self, o: &RepoObject) -> impl Future<Output = ()> {
        self.client.registry_put(o)
    }
    fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) -> impl Future<Output = ()> {
        self.client.registry_put_tagged(tag, digest)
    }
    fn registry_mount(&self, o: &RepoObject, from: &str) -> impl Future<Output = bool> {
        self.client.registry_mount(o, from)
    }
    fn gc_tick(&self) -> impl Future<Output = bool> {
        self.client.gc_tick()
    }
}

impl ActorClient {
    /// This actor's name (`actor-0`, `actor-1` in [`check`]).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// This actor's index among the actors given to [`check`] or [`Check::actor`] (0-based).
    pub fn index(&self) -> usize {
        self.index
    }
    /// A context in namespace `default` without a lease.
    pub fn ctx(&self) -> Ctx {
        Ctx::new("default")
    }
    /// A fixture image by reference (or tag): its index, manifests, configs and layers.
    ///
    /// # Panics
    /// When the scenario has no such image.
    pub fn image(&self, reference: &str) -> &ImageFixture {
        self.scenario
            .fixture(reference)
            .unwrap_or_else(|| panic!("pushrace: no fixture image {reference:?}"))
    }
}

type ActorFn = Rc<dyn Fn(ActorClient) -> Pin<Box<dyn Future<Output = Result<(), Error>>>>>;

/// The image [`check`] and [`Check::new`] start from: `example.com/app:1` for `linux/amd64` and
/// `linux/arm64`, one layer each, pulled in namespace `default`.
pub const DEFAULT_IMAGE: &str = "example.com/app:1";

/// Several actors of your own, optionally racing a scenario's actors on its images.
///
/// ```
/// use pushrace::{Call, Check, Client, Config, Op, OpKind, Scenario};
///
/// let scenario = Scenario::builder()
///     .containerd("1.6")
///     .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
///     .push("push", "example.com/app:1", "lease-held")
///     .build()
///     .unwrap();
/// // My tool deletes an unrelated image synchronously while nerdctl pushes.
/// let report = Check::on(&scenario)
///     .actor("cleanup", |c| async move {
///         let op = Op { ctx: c.ctx(), kind: OpKind::ImageDelete { name: "example.com/gone:1".into(), sync: true } };
///         let _ = c.call(op).await; // not found is fine
///         Ok(())
///     })
///     .run(Config::new());
/// report.assert_holds();
/// assert!(report.executions() > 1);
/// ```
pub struct Check {
    scenario: file::Scenario,
    text: String,
    actors: Vec<(String, ActorFn)>,
}

impl Default for Check {
    fn default() -> Self {
        Check::new()
    }
}

impl Check {
    /// The [`DEFAULT_IMAGE`] on containerd 1.7 semantics, invariant `no-missing-digest`, no actors.
    pub fn new() -> Check {
        // The image has the default platforms (`oci::DEFAULT_PLATFORMS`); the placeholder actor
        // is there because a scenario needs one, and is dropped below.
        let text = file::FileDoc {
            name: Some("check".into()),
            image: vec![file::ImageDoc::new(DEFAULT_IMAGE)],
            actor: vec![file::ActorDoc::new("placeholder", "gc.ticker")],
            ..Default::default()
        }
        .to_toml();
        let mut scenario = file::parse("check:", &text).expect("the default check scenario loads");
        scenario.actors.clear();
        Check {
            scenario,
            text,
            actors: Vec::new(),
        }
    }

    /// A scenario's images, store, invariant and actors; yours race them.
    pub fn on(scenario: &Scenario) -> Check {
        Check {
            scenario: scenario.inner.clone(),
            text: scenario.text.clone(),
            actors: Vec::new(),
        }
    }

    /// Adds an actor running `f` with its own client. Any `Err` it returns is a failure, as is
    /// a panic; errors it expects it handles itself.
    pub fn actor<F, Fut>(mut self, name: &str, f: F) -> Check
    where
        F: Fn(ActorClient) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        let f: ActorFn = Rc::new(move |c| Box::pin(f(c)));
        self.actors.push((name.to_string(), f));
        self
    }

    /// Explores the interleavings of every actor under `config`.
    pub fn run(self, config: Config) -> Report {
        let test = test_name();
        self.run_named(config, test)
    }

    fn run_named(self, config: Config, test: String) -> Report {
        let mut scenario = self.scenario;
        if let Source::Check(_) = scenario.source {
            scenario.name = test.clone();
            scenario.source = Source::Check(test.clone());
        }
        let scenario = Rc::new(scenario);
        let opts = config.options(&scenario);
        let user_actors: Vec<String> = self.actors.iter().map(|(n, _)| n.clone()).collect();
        let actors = Rc::new(self.actors);
        let template = engine::initial_sim(&scenario);
        let model = {
            let scenario = scenario.clone();
            move |w: &mut World| {
                let sim = Rc::new(RefCell::new(template.clone()));
                spawn_scenario(w, &scenario, &sim, |_| Driver::Program);
                for (i, (name, f)) in actors.iter().enumerate() {
                    let (sim, scenario, f, name2) =
                        (sim.clone(), scenario.clone(), f.clone(), name.clone());
                    w.spawn(name.clone(), move |sched| {
                        let c = ActorClient {
                            client: Stepped { sched, exec: sim },
                            name: name2,
                            index: i,
                            scenario,
                        };
                        let fut = f(c);
                        async move { engine::classify(Invariant::PushSucceeds, fut.await) }
                    });
                }
            }
        };
        // Persisted and given schedules first: values that still replay after code changes.
        let mut first: Vec<String> = config.schedule.iter().cloned().collect();
        if let Some(dir) = config.regressions_dir() {
            let path = dir.join(format!("{}.schedules", file_name(&test)));
            if let Ok(text) = std::fs::read_to_string(path) {
                for l in text.lines() {
                    let s = l.split('#').next().unwrap_or("").trim();
                    if !s.is_empty() {
                        first.push(s.to_string());
                    }
                }
            }
        }
        let harness = opts.config();
        let report = first
            .iter()
            .filter_map(|s| Schedule::parse(s).ok())
            .find_map(|schedule| engine::replay_failure(&harness, &model, &schedule));
        let report = report.unwrap_or_else(|| Explorer::new(harness).run(&model, opts.strategy));
        let _ = &self.text;
        let mut verdict = engine::verdict_of(&scenario, &opts, report);
        if let Some(v) = &mut verdict.violation {
            if v.actor.as_ref().is_some_and(|a| user_actors.contains(a)) {
                v.invariant = "no-error (the actor returned Err)";
            }
        }
        Report {
            verdict,
            origin: Origin::Check { test },
            config,
        }
    }
}

/// The running test's name (libtest names each test's thread after it), for persisted schedules.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_string(),
        _ => "check".to_string(),
    }
}

/// Runs two copies of `actor`, your own client code, racing on the [`DEFAULT_IMAGE`] (each gets
/// its own [`ActorClient`]: `actor-0` and `actor-1`), and panics with the shrunk trace, the
/// Mermaid diagram and the schedule that replays it if either returns an `Err` or panics in any
/// interleaving within the bounds. The failing schedule is first appended to
/// `pushrace-regressions/<test>.schedules` and replayed before exploring on later runs. For
/// different actors, or to race a scenario's built-in programs, use [`Check`].
///
/// ```
/// use pushrace::{check, Call, Client, Config, Op, OpKind};
///
/// // Each actor writes its own marker blob, then tags the image under its own name: nothing
/// // one does can break the other.
/// check(
///     |c| async move {
///         let index = c.image("example.com/app:1").index.descriptor.clone();
///         let name = format!("example.com/app:{}", c.name());
///         c.call(Op {
///             ctx: c.ctx(),
///             kind: OpKind::ImageCreate {
///                 name,
///                 media_type: index.media_type,
///                 target: index.digest,
///                 size: Some(index.size),
///                 labels: Default::default(),
///             },
///         })
///         .await?;
///         Ok(())
///     },
///     Config::new(),
/// );
/// ```
#[track_caller]
pub fn check<F, Fut>(actor: F, config: Config)
where
    F: Fn(ActorClient) -> Fut + 'static,
    Fut: Future<Output = Result<(), Error>> + 'static,
{
    let f = Rc::new(actor);
    let (a, b) = (f.clone(), f);
    let report = Check::new()
        .actor("actor-0", move |c| a(c))
        .actor("actor-1", move |c| b(c))
        .run(config);
    if report.holds() {
        return;
    }
    let saved = report.persist();
    let mut msg = format!(
        "pushrace::check found a failing interleaving\n{}",
        report.to_text()
    );
    match saved {
        Ok(Some(p)) => msg.push_str(&format!(
            "\nthe schedule is saved in {} and replayed first from now on\n",
            p.display()
        )),
        Ok(None) => {}
        Err(e) => msg.push_str(&format!("\ncould not save the schedule: {e}\n")),
    }
    panic!("{msg}");
}
