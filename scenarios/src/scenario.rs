//! Scenario files (TOML, see docs/scenario-format.md): fixture images, actors, the invariant to check, the
//! exploration bounds and the expected verdict. Every mistake in a file is a [`ScenarioError`]
//! naming the file, the line and the key; nothing in a file can make the loader panic.

use crate::backend::commands::CommandSpec;
use crate::programs::push::Variant;
use pushrace_harness::Strategy;
use pushrace_models::converter::reduced_index_of;
use pushrace_models::oci::{self, ImageFixture, RoleKind};
use pushrace_models::opsfile::{self, Action};
use pushrace_models::program::{now_or_never, Apply, Call};
use pushrace_models::scheduler::GcMode;
use pushrace_models::{Ctx, Error, Op, OpKind, Semantics, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use toml::Spanned;

/// A loading error: `file:line: key `k`: message`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A scenario file as written: the format's one document type. The loader reads it
/// ([`read_doc`], then [`load`]); the builder, triage and persisted failures write it with
/// `toml::to_string`, so no scenario text is built by hand. Every value keeps the bytes it spans
/// in the text it was read from (a value made in code has an empty span at 0).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containerd: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub image: Vec<ImageDoc>,
    #[serde(default)]
    pub actor: Vec<ActorDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDoc>,
}

/// One `[[image]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDoc {
    #[serde(rename = "ref")]
    pub reference: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Spanned<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<Spanned<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Spanned<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Spanned<String>>,
}

/// One `[[actor]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActorDoc {
    pub name: Spanned<String>,
    /// Absent for a commands-only actor (a user's own client, on the real backend only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Spanned<String>>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Spanned<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_platforms: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<Spanned<Vec<String>>>,
    /// `nerdctl.pull`: the name pulled (`nerdctl pull REMOTE`), default `ref`; its host is the
    /// registry's (the distribution-source label's key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticks: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Spanned<String>>,
    /// The same op tables as an ops file's `[[op]]`s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Spanned<Vec<Spanned<opsfile::OpTable>>>>,
    /// The real side (`--backend real`): one command, or several run in order, and commands
    /// that run even after a failure (`backend/commands.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Spanned<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finally: Option<Spanned<Vec<Vec<String>>>>,
    /// `"go"`: the actor's program played by the Go client (clients/go) on containerd's own
    /// library, its command made from the program (`backend/commands.rs` `go_client_command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<Spanned<String>>,
}

/// `[check]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invariant: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_shrunk_steps: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Spanned<String>>,
    /// An integer, or `"none"` for no bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<Spanned<toml::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<Spanned<Vec<String>>>,
}

/// A value made in code for a document (no place in any text).
pub fn val<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

impl ImageDoc {
    /// An image with only its reference.
    pub fn new(reference: &str) -> ImageDoc {
        ImageDoc {
            reference: val(reference.to_string()),
            platforms: None,
            layers: None,
            fetched: None,
            tags: None,
            layout: None,
            namespace: None,
        }
    }
}

impl ActorDoc {
    /// An actor with only its name and program.
    pub fn new(name: &str, program: &str) -> ActorDoc {
        ActorDoc {
            name: val(name.to_string()),
            program: Some(val(program.to_string())),
            namespace: None,
            reference: None,
            platforms: None,
            all_platforms: None,
            variant: None,
            fetched: None,
            remote: None,
            src: None,
            dst: None,
            image: None,
            force: None,
            sync: None,
            ticks: None,
            by: None,
            ops: None,
            command: None,
            commands: None,
            finally: None,
            client: None,
        }
    }
}

impl FileDoc {
    /// The file's text (what [`read_doc`] reads back to the same document).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario document serializes")
    }
}

/// The invariant a scenario checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Invariant {
    /// No actor fails with `content digest …: not found`.
    NoMissingDigest,
    /// No GC removes an object that is reachable from a root after it.
    GcSafety,
    /// After every step, every object reachable from a root that once existed still exists
    /// (unless a client deleted it explicitly): no root references collected content.
    NoDanglingReference,
    /// No push (or any other actor) fails at all.
    PushSucceeds,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::NoMissingDigest => "no-missing-digest",
            Invariant::GcSafety => "gc-safety",
            Invariant::NoDanglingReference => "no-dangling-reference",
            Invariant::PushSucceeds => "push-succeeds",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    Holds,
    Violation,
}

/// A strategy to explore with, as a scenario file, a flag or the environment names it (a replay
/// is not one: it takes a schedule). The one parser of strategy names.
pub fn explore_strategy(name: &str) -> Result<Strategy, String> {
    match name.parse() {
        Ok(Strategy::Replay) | Err(_) => Err(format!("{name:?}: expected dfs, random or pct")),
        Ok(k) => Ok(k),
    }
}

/// DFS's preemption bound when neither the scenario nor the configuration sets one.
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// The largest preemption bound a scenario file declares (flags and the environment take any).
pub const MAX_FILE_PREEMPTIONS: usize = 64;

/// A preemption bound as a scenario file, a flag or the environment gives it: an integer up to
/// `max`, or `none` for no bound (`Ok(None)`: every interleaving). The one parser of bounds.
pub fn preemption_bound(text: &str, max: usize) -> Result<Option<usize>, String> {
    if text == "none" {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(n) if n <= max => Ok(Some(n)),
        _ if max == usize::MAX => Err(format!(
            "{text:?}: expected a non-negative integer or \"none\""
        )),
        _ => Err(format!("{text:?}: expected 0 to {max} or \"none\"")),
    }
}

/// How a bound reads in a verdict: `preemption bound 2`, or `all interleavings` with none.
pub fn bound_text(preemptions: Option<usize>) -> String {
    match preemptions {
        Some(n) => format!("preemption bound {n}"),
        None => "all interleavings".to_string(),
    }
}

/// What to check and how hard to look.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckSpec {
    pub invariant: Invariant,
    pub expect: Option<Expect>,
    /// The role of the missing digest an expected violation names (`reduced-index`, `index`,
    /// `manifest`, `config`, `layer`).
    pub missing: Option<RoleKind>,
    pub max_shrunk_steps: Option<usize>,
    pub strategy: Strategy,
    /// DFS's preemption bound; `None`: no bound (all interleavings).
    pub preemptions: Option<usize>,
    pub budget: Option<u64>,
    pub seed: u64,
    pub depth: usize,
    /// A schedule (as `pushrace explore` prints it) replayed before exploring: a persisted
    /// failure. When it still fails, that is the verdict; otherwise exploration proceeds.
    pub schedule: Option<String>,
    /// Only failures whose message contains this text are violations (e.g. the exact error a CI
    /// log showed); others are skipped while exploring.
    pub message: Option<String>,
    /// Whose failures count (default: every actor). Lets a scenario check the pushes under test
    /// while neighbours fail as they may (a convert of a never-fetched platform, say).
    pub actors: Option<Vec<String>>,
}

impl Default for CheckSpec {
    fn default() -> Self {
        CheckSpec {
            invariant: Invariant::NoMissingDigest,
            expect: None,
            missing: None,
            max_shrunk_steps: None,
            strategy: Strategy::Dfs,
            preemptions: Some(DEFAULT_PREEMPTIONS),
            budget: None,
            seed: 0,
            depth: 3,
            actors: None,
            message: None,
            schedule: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub reference: String,
    pub namespace: String,
    pub fixture: Arc<ImageFixture>,
    pub fetched: Option<Vec<String>>,
    pub tags: Vec<String>,
}

/// Where a scenario came from. Its text (`Display`) is the name error messages start with:
/// `builtin:same-ref`, `builder:NAME`, `check:TEST`, or the file's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file (its path as given), or `-` for standard input.
    File(String),
    /// A built-in scenario, by name.
    Builtin(String),
    /// Built in code with `Scenario::builder()`, by name.
    Builder(String),
    /// A `pushrace::check` of the named test.
    Check(String),
}

impl Source {
    /// Reads the name `parse` was given: the one place its prefixes are decoded.
    pub fn from_label(label: &str) -> Source {
        let prefixed = [
            ("builtin:", Source::Builtin as fn(String) -> Source),
            ("builder:", Source::Builder),
            ("check:", Source::Check),
        ];
        for (prefix, make) in prefixed {
            if let Some(rest) = label.strip_prefix(prefix) {
                return make(rest.to_string());
            }
        }
        Source::File(label.to_string())
    }

    /// Whether the scenario lives in a file a person can edit (a failure is saved beside it).
    pub fn is_file(&self) -> bool {
        matches!(self, Source::File(_))
    }

    /// How `pushrace replay` names it: a built-in by its name, a file by its path.
    pub fn argument(&self) -> String {
        match self {
            Source::Builtin(n) => n.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => f.write_str(p),
            Source::Builtin(n) => write!(f, "builtin:{n}"),
            Source::Builder(n) => write!(f, "builder:{n}"),
            Source::Check(t) => write!(f, "check:{t}"),
        }
    }
}

/// Why an image's setup failed.
#[derive(Debug)]
pub enum SetupError {
    /// The pull failed.
    Pull(Error),
    /// Creating this tag failed.
    Tag(String, Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Pull(e) => write!(f, "pulling: {}", e.message),
            SetupError::Tag(t, e) => write!(f, "tagging {t}: {}", e.message),
        }
    }
}

impl ImageSpec {
    /// The image's setup, the same on every backend: the pull (image `i` under lease
    /// `setup-pull-<i>`, its `fetched` platforms only), then a create of each tag. The scenario's
    /// setup is this for every image, then one GC.
    pub async fn set_up(&self, i: usize, c: &impl Call) -> Result<(), SetupError> {
        let ctx = Ctx::new(self.namespace.clone());
        let lease = format!("setup-pull-{i}");
        let pull = pushrace_models::pull::pull(
            self.fixture.clone(),
            self.fetched.clone(),
            ctx.clone(),
            lease,
        );
        pull.drive(c).await.map_err(SetupError::Pull)?;
        for t in &self.tags {
            let d = &self.fixture.index.descriptor;
            let create = OpKind::ImageCreate {
                name: t.clone(),
                media_type: d.media_type.clone(),
                target: d.digest.clone(),
                size: Some(d.size),
                labels: Default::default(),
            };
            let r = c.exec(&ctx, create).await;
            r.map_err(|e| SetupError::Tag(t.clone(), e))?;
        }
        Ok(())
    }
}

/// One actor's program and its parameters.
#[derive(Clone, Debug)]
pub enum ProgramSpec {
    Push {
        reference: String,
        platforms: Vec<String>,
        all_platforms: bool,
        variant: Variant,
    },
    Pull {
        reference: String,
        fetched: Option<Vec<String>>,
        /// The name pulled (its image's name, its host the registry's); `reference` by default.
        remote: String,
    },
    Tag {
        src: String,
        dst: String,
    },
    Rmi {
        image: String,
        force: bool,
    },
    ImageConvert {
        src: String,
        dst: String,
        platforms: Vec<String>,
    },
    CtrRm {
        image: String,
        sync: bool,
    },
    GcTicker {
        ticks: u32,
    },
    ClockAdvance {
        by: pushrace_models::clock::Duration,
    },
    Ops {
        actions: Vec<Action>,
    },
    /// No model program: the actor is only its commands (a user's own client), so it runs on the
    /// real backend only. `reference` is what `{ref}` stands for.
    Commands {
        reference: Option<String>,
    },
}

impl ProgramSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ProgramSpec::Push { .. } => "nerdctl.push",
            ProgramSpec::Pull { .. } => "nerdctl.pull",
            ProgramSpec::Tag { .. } => "nerdctl.tag",
            ProgramSpec::Rmi { .. } => "nerdctl.rmi",
            ProgramSpec::ImageConvert { .. } => "nerdctl.image-convert",
            ProgramSpec::CtrRm { .. } => "ctr.images.rm",
            ProgramSpec::GcTicker { .. } => "gc.ticker",
            ProgramSpec::ClockAdvance { .. } => "clock.advance",
            ProgramSpec::Ops { .. } => "ops",
            ProgramSpec::Commands { .. } => "commands",
        }
    }

    /// The image reference the program is about (what a command's `{ref}` stands for).
    pub fn reference(&self) -> Option<&str> {
        match self {
            ProgramSpec::Push { reference, .. } | ProgramSpec::Pull { reference, .. } => {
                Some(reference)
            }
            ProgramSpec::Rmi { image, .. } | ProgramSpec::CtrRm { image, .. } => Some(image),
            ProgramSpec::Tag { src, .. } | ProgramSpec::ImageConvert { src, .. } => Some(src),
            ProgramSpec::Commands { reference } => reference.as_deref(),
            ProgramSpec::GcTicker { .. }
            | ProgramSpec::ClockAdvance { .. }
            | ProgramSpec::Ops { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ActorSpec {
    pub name: String,
    pub ctx: Ctx,
    pub program: ProgramSpec,
    /// The real processes that play this actor on the real backend (empty: none given).
    pub commands: Vec<CommandSpec>,
    /// `client = "go"`: `commands` is the Go client playing `program`, made anew when the
    /// program changes ([`Scenario::with_variant`]).
    pub go_client: bool,
}

/// A loaded, validated scenario with its fixture store built.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `builtin:<name>`.
    pub source: Source,
    pub semantics: Semantics,
    pub gc: GcMode,
    pub images: Vec<ImageSpec>,
    pub registry: BTreeSet<String>,
    pub actors: Vec<ActorSpec>,
    pub check: CheckSpec,
    /// The store every execution starts from (images pulled, tags created, one GC run).
    pub setup: Store,
    /// What each known digest is, for messages ("reduced index of example.com/app:1 (linux/amd64)").
    pub roles: BTreeMap<String, String>,
    /// The role kind of each known digest (`reduced-index`, `index`, `manifest`, `config`, `layer`).
    pub role_kinds: BTreeMap<String, RoleKind>,
}

type Span = std::ops::Range<usize>;

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
}

impl Loader<'_> {
    fn err(&self, span: Option<Span>, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: span.map(|s| pushrace_models::limits::line_at(self.text.as_bytes(), s.start)),
            key: (!key.is_empty()).then(|| key.to_string()),
            message: message.into(),
        }
    }

    fn platforms(&self, v: &Spanned<Vec<String>>, key: &str) -> Result<Vec<String>, ScenarioError> {
        let max = pushrace_models::limits::MAX_PLATFORMS;
        if v.get_ref().len() > max {
            let n = v.get_ref().len();
            return Err(self.err(Some(v.span()), key, format!("{n} platforms: at most {max}")));
        }
        let mut seen = BTreeSet::new();
        for p in v.get_ref() {
            oci::parse_platform(p).map_err(|e| self.err(Some(v.span()), key, e))?;
            if !seen.insert(p) {
                return Err(self.err(Some(v.span()), key, format!("{p:?} is listed twice")));
            }
        }
        Ok(v.get_ref().clone())
    }

    /// A name that must not be empty (default `default` when absent: namespaces).
    fn namespace(&self, v: &Option<Spanned<String>>) -> Result<String, ScenarioError> {
        match v {
            None => Ok("default".into()),
            Some(n) if n.get_ref().is_empty() => {
                Err(self.err(Some(n.span()), "namespace", "must not be empty"))
            }
            Some(n) => Ok(n.get_ref().clone()),
        }
    }
}

/// Parses and validates a scenario file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let doc = read_doc(file, text)?;
    load(file, text, &doc)
}

/// The document of a scenario file: its size and its TOML (unknown keys and wrong types are
/// refused here, with their line).
pub fn read_doc(file: &str, text: &str) -> Result<FileDoc, ScenarioError> {
    let l = Loader { file, text };
    let max = pushrace_models::limits::MAX_FILE_BYTES;
    if text.len() as u64 > max {
        let n = text.len();
        let why = format!("{n} bytes: a scenario file is at most {max}");
        return Err(l.err(None, "", why));
    }
    toml::from_str(text).map_err(|e| l.err(e.span(), "", e.message().trim()))
}

/// Validates a document read from `text` (its spans index `text`) and builds the scenario:
/// each section by its own function, then the setup store.
pub fn load(file: &str, text: &str, doc: &FileDoc) -> Result<Scenario, ScenarioError> {
    let l = Loader { file, text };
    let semantics = parse_semantics(&l, doc)?;
    let gc = parse_gc(&l, doc)?;
    let images = parse_images(&l, &doc.image)?;
    let setup =
        set_up_store(semantics, &images).map_err(|(i, e)| setup_err(&l, &doc.image[i], e))?;
    let names: BTreeMap<String, Arc<ImageFixture>> = images
        .iter()
        .flat_map(|im| {
            std::iter::once(&im.reference)
                .chain(&im.tags)
                .map(|n| (n.clone(), im.fixture.clone()))
        })
        .collect();
    let (mut roles, mut role_kinds) = roles_of(&images);
    let registry = parse_registry(&l, doc, &images)?;
    let actors = parse_actors(&l, doc, gc, &names)?;
    for (r, reference, platforms) in actors.iter().filter_map(|a| reduced_index(&names, a)) {
        roles.insert(
            r.clone(),
            format!("reduced index of {reference} ({})", platforms.join(", ")),
        );
        role_kinds.insert(r, RoleKind::ReducedIndex);
    }
    let check = parse_check(&l, doc.check.as_ref())?;
    check_actors(&l, doc, &check, &actors)?;
    Ok(Scenario {
        name: doc.name.clone().unwrap_or_else(|| default_name(file)),
        description: doc.description.clone().unwrap_or_default(),
        source: Source::from_label(file),
        semantics,
        gc,
        images,
        registry,
        actors,
        check,
        setup,
        roles,
        role_kinds,
    })
}

/// A scenario's name when it gives none: its file's name.
fn default_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    base.trim_end_matches(".toml").to_string()
}

fn parse_semantics(l: &Loader, doc: &FileDoc) -> Result<Semantics, ScenarioError> {
    match &doc.containerd {
        None => Ok(Semantics::V1_7),
        Some(s) => s
            .get_ref()
            .parse()
            .map_err(|e: String| l.err(Some(s.span()), "containerd", e)),
    }
}

fn parse_gc(l: &Loader, doc: &FileDoc) -> Result<GcMode, ScenarioError> {
    match doc.gc.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("sync-only", _)) => Ok(GcMode::SyncOnly),
        Some(("background", _)) => Ok(GcMode::Background),
        Some((other, span)) => Err(l.err(
            Some(span),
            "gc",
            format!("{other:?}: expected \"sync-only\" or \"background\""),
        )),
    }
}

/// The `[[image]]`s: each validated and its fixture built (setup is [`set_up_store`]).
fn parse_images(l: &Loader, docs: &[ImageDoc]) -> Result<Vec<ImageSpec>, ScenarioError> {
    if docs.is_empty() {
        return Err(l.err(None, "image", "a scenario needs at least one [[image]]"));
    }
    let mut images: Vec<ImageSpec> = Vec::new();
    for im in docs {
        let spec = parse_image(l, im)?;
        let taken = |n: &String| {
            images
                .iter()
                .any(|o| &o.reference == n || o.tags.contains(n))
        };
        if taken(&spec.reference) {
            let why = format!("image {:?} is declared twice", spec.reference);
            return Err(l.err(Some(im.reference.span()), "ref", why));
        }
        if let Some(t) = spec.tags.iter().find(|t| taken(t)) {
            let why = format!("tag {t:?} is empty or names another image");
            return Err(l.err(im.tags.as_ref().map(|t| t.span()), "tags", why));
        }
        images.push(spec);
    }
    Ok(images)
}

fn parse_image(l: &Loader, im: &ImageDoc) -> Result<ImageSpec, ScenarioError> {
    let r = im.reference.get_ref().clone();
    if r.is_empty() {
        return Err(l.err(Some(im.reference.span()), "ref", "must not be empty"));
    }
    let namespace = l.namespace(&im.namespace)?;
    let from_layout = image_layout(l, im)?;
    let platforms = match (&from_layout, &im.platforms) {
        (Some(fx), _) => fx.platforms.iter().map(|p| p.platform.clone()).collect(),
        (None, Some(p)) => l.platforms(p, "platforms")?,
        (None, None) => oci::default_platforms(),
    };
    if platforms.is_empty() {
        let span = im.platforms.as_ref().map(|p| p.span());
        return Err(l.err(span, "platforms", "an image needs at least one platform"));
    }
    let fetched = match &im.fetched {
        None => None,
        Some(f) => {
            let list = l.platforms(f, "fetched")?;
            if let Some(p) = list.iter().find(|p| !platforms.contains(p)) {
                let why = format!("{p:?} is not one of the image's platforms {platforms:?}");
                return Err(l.err(Some(f.span()), "fetched", why));
            }
            Some(list)
        }
    };
    let fixture = match from_layout {
        Some(fx) => fx,
        None => ImageFixture::build(&r, &platforms, image_layers(l, im)?)
            .map_err(|e| l.err(Some(im.reference.span()), "image", e))?,
    };
    let tags = im
        .tags
        .as_ref()
        .map(|t| t.get_ref().clone())
        .unwrap_or_default();
    if let Some(t) = tags.iter().find(|t| t.is_empty() || **t == r) {
        let why = format!("tag {t:?} is empty or names another image");
        return Err(l.err(im.tags.as_ref().map(|t| t.span()), "tags", why));
    }
    Ok(ImageSpec {
        reference: r,
        namespace,
        fixture: Arc::new(fixture),
        fetched,
        tags,
    })
}

/// `layout = "dir"`: a real image (an OCI image layout, relative to the scenario file).
fn image_layout(l: &Loader, im: &ImageDoc) -> Result<Option<ImageFixture>, ScenarioError> {
    let Some(layout) = &im.layout else {
        return Ok(None);
    };
    let given = [
        ("platforms", im.platforms.as_ref().map(|p| p.span())),
        ("layers", im.layers.as_ref().map(|p| p.span())),
    ];
    if let Some((k, span)) = given.into_iter().find_map(|(k, s)| s.map(|s| (k, s))) {
        let why = "not allowed with `layout`: the layout's index gives the platforms and layers";
        return Err(l.err(Some(span), k, why));
    }
    crate::layout::fixture_for_scenario(l.file, layout.get_ref(), im.reference.get_ref())
        .map(Some)
        .map_err(|e| l.err(Some(layout.span()), "layout", e))
}

/// Layers per platform: [`oci::DEFAULT_LAYERS`], 0 to [`pushrace_models::limits::MAX_LAYERS`]
/// (the same range as an ops file's `image.pull`).
fn image_layers(l: &Loader, im: &ImageDoc) -> Result<usize, ScenarioError> {
    let max = pushrace_models::limits::MAX_LAYERS;
    match &im.layers {
        None => Ok(oci::DEFAULT_LAYERS),
        Some(n) if (0..=max as i64).contains(n.get_ref()) => Ok(*n.get_ref() as usize),
        Some(n) => {
            let why = format!("{}: expected 0 to {max} layers per platform", n.get_ref());
            Err(l.err(Some(n.span()), "layers", why))
        }
    }
}

/// The store every execution starts from: each image set up in order ([`ImageSpec::set_up`]),
/// then one GC. `Err` names the image whose setup failed.
pub fn set_up_store(
    semantics: Semantics,
    images: &[ImageSpec],
) -> Result<Store, (usize, SetupError)> {
    let mut store = Store::new(semantics);
    for (i, spec) in images.iter().enumerate() {
        let apply = Apply(std::cell::RefCell::new(|op: &Op| store.apply(op)));
        now_or_never(spec.set_up(i, &apply)).map_err(|e| (i, e))?;
    }
    // The images were pulled "some time ago": a GC has run since, and the scheduler is quiet.
    store.gc();
    Ok(store)
}

/// A failed setup, blamed on the key it comes from: a tag's creation on `tags`; a pull on the
/// image's `namespace` when it gives one (the fixture itself always pulls), else on `ref`.
fn setup_err(l: &Loader, im: &ImageDoc, e: SetupError) -> ScenarioError {
    match e {
        SetupError::Pull(e) => {
            let (key, span) = match &im.namespace {
                Some(n) => ("namespace", n.span()),
                None => ("ref", im.reference.span()),
            };
            l.err(
                Some(span),
                key,
                format!("setting up the image failed: {}", e.message),
            )
        }
        SetupError::Tag(_, e) => l.err(im.tags.as_ref().map(|t| t.span()), "tags", e.message),
    }
}

/// What each blob of each image is, for messages and `[check] missing`.
fn roles_of(images: &[ImageSpec]) -> (BTreeMap<String, String>, BTreeMap<String, RoleKind>) {
    let mut roles = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for im in images {
        for b in im.fixture.blobs() {
            roles.insert(
                b.digest().to_string(),
                format!("{} of {}", b.role, im.reference),
            );
            kinds.insert(b.digest().to_string(), b.role.kind());
        }
    }
    (roles, kinds)
}

/// The reduced index a push of some platforms makes, with its reference and platforms.
fn reduced_index(
    names: &BTreeMap<String, Arc<ImageFixture>>,
    a: &ActorSpec,
) -> Option<(String, String, Vec<String>)> {
    let ProgramSpec::Push {
        reference,
        platforms,
        all_platforms: false,
        ..
    } = &a.program
    else {
        return None;
    };
    let r = reduced_index_of(&names[reference], platforms)?;
    Some((r.to_string(), reference.clone(), platforms.clone()))
}

/// `registry`: which blobs of the images the registry already has.
fn parse_registry(
    l: &Loader,
    doc: &FileDoc,
    images: &[ImageSpec],
) -> Result<BTreeSet<String>, ScenarioError> {
    let mut registry = BTreeSet::new();
    let Some(reg) = &doc.registry else {
        return Ok(registry);
    };
    for what in reg.get_ref() {
        let has: fn(&oci::Role) -> bool = match what.as_str() {
            "layers" => |r| matches!(r, oci::Role::Layer { .. }),
            "configs" => |r| matches!(r, oci::Role::Config { .. }),
            "manifests" => |r| matches!(r, oci::Role::Manifest { .. }),
            "index" => |r| matches!(r, oci::Role::Index),
            other => {
                let why = format!(
                    "{other:?}: expected \"layers\", \"configs\", \"manifests\" or \"index\""
                );
                return Err(l.err(Some(reg.span()), "registry", why));
            }
        };
        let blobs = images.iter().flat_map(|im| im.fixture.blobs());
        registry.extend(
            blobs
                .filter(|b| has(&b.role))
                .map(|b| b.digest().to_string()),
        );
    }
    Ok(registry)
}

/// The `[[actor]]`s, plus the GC ticker that `gc = "background"` implies when none is given.
fn parse_actors(
    l: &Loader,
    doc: &FileDoc,
    gc: GcMode,
    names: &BTreeMap<String, Arc<ImageFixture>>,
) -> Result<Vec<ActorSpec>, ScenarioError> {
    let mut actors: Vec<ActorSpec> = Vec::new();
    for a in &doc.actor {
        let name = a.name.get_ref().clone();
        if name.is_empty() || actors.iter().any(|o| o.name == name) {
            let why = format!("actor name {name:?} is empty or used twice");
            return Err(l.err(Some(a.name.span()), "name", why));
        }
        let program = parse_program(l, a, names)?;
        let ctx = Ctx::new(l.namespace(&a.namespace)?);
        let commands = match &a.client {
            None => parse_commands(l, a, program.reference().is_some())?,
            Some(c) => client_commands(l, a, c, &name, &ctx, &program)?,
        };
        actors.push(ActorSpec {
            name,
            ctx,
            program,
            commands,
            go_client: a.client.is_some(),
        });
    }
    if actors.is_empty() {
        return Err(l.err(None, "actor", "a scenario needs at least one [[actor]]"));
    }
    refuse_pulls_from_pushed_repositories(l, doc, &actors)?;
    let ticker = |a: &ActorSpec| matches!(a.program, ProgramSpec::GcTicker { .. });
    if gc == GcMode::Background && !actors.iter().any(ticker) {
        actors.push(ActorSpec {
            name: "gc".into(),
            ctx: Ctx::default(),
            program: ProgramSpec::GcTicker {
                ticks: DEFAULT_TICKS,
            },
            commands: Vec::new(),
            go_client: false,
        });
    }
    let max = pushrace_harness::MAX_ACTORS;
    if actors.len() > max {
        return Err(l.err(None, "actor", format!("at most {max} actors")));
    }
    Ok(actors)
}

/// A `nerdctl.pull` from the repository a `nerdctl.push` of the scenario pushes to is refused:
/// the push moves that repository's tag (its PUT of the reduced index by tag), and a real pull
/// resolves the tag (`HEAD /v2/REPO/manifests/TAG`) and pulls what it names then, where the
/// model's pull pulls its fixture and reads no tag. `actors` are `doc.actor`'s, in order.
fn refuse_pulls_from_pushed_repositories(
    l: &Loader,
    doc: &FileDoc,
    actors: &[ActorSpec],
) -> Result<(), ScenarioError> {
    use crate::backend::registry::repo_and_tag;
    let pushed = |repo: &str| {
        actors.iter().find(|a| match &a.program {
            ProgramSpec::Push { reference, .. } => repo_and_tag(reference).0 == repo,
            _ => false,
        })
    };
    for (a, raw) in actors.iter().zip(&doc.actor) {
        let ProgramSpec::Pull { remote, .. } = &a.program else {
            continue;
        };
        let repo = repo_and_tag(remote).0;
        let Some(push) = pushed(repo) else { continue };
        let (key, span) = match &raw.remote {
            Some(r) => ("remote", r.span()),
            None => (
                "ref",
                raw.reference.as_ref().map_or(raw.name.span(), |r| r.span()),
            ),
        };
        let why = format!("actor {} pulls {remote} from the repository {repo}, which actor {} pushes to: the push moves its tag, which a real pull resolves and the model's pull does not read (it pulls its fixture); pull another repository, e.g. `remote = \"example.com:5000/base:1\"`", a.name, push.name);
        return Err(l.err(Some(span), key, why));
    }
    Ok(())
}

/// `[check] actors` names actors of the scenario.
fn check_actors(
    l: &Loader,
    doc: &FileDoc,
    check: &CheckSpec,
    actors: &[ActorSpec],
) -> Result<(), ScenarioError> {
    let span = doc
        .check
        .as_ref()
        .and_then(|c| c.actors.as_ref())
        .map(|a| a.span());
    let missing = check
        .actors
        .iter()
        .flatten()
        .find(|n| !actors.iter().any(|a| &a.name == *n));
    match missing {
        None => Ok(()),
        Some(m) => Err(l.err(
            span,
            "actors",
            format!("{m:?} is not an actor of this scenario"),
        )),
    }
}

/// A `gc.ticker`'s ticks when it gives none.
pub const DEFAULT_TICKS: u32 = 2;

/// A built-in program: its name, the keys it takes (besides `name`, `program`, `namespace` and
/// the command keys) and how its keys become a [`ProgramSpec`]. [`PROGRAM_TABLE`] is the one
/// list of programs.
pub struct ProgramKind {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    build: fn(&Params) -> Result<ProgramSpec, ScenarioError>,
}

/// Every program an `[[actor]]` may name. nerdctl's own flag names are accepted too:
/// `pull --platform` is `platforms` (the platforms fetched), `rmi` takes a `ref` like every
/// other program.
pub const PROGRAM_TABLE: &[ProgramKind] = &[
    ProgramKind {
        name: "nerdctl.push",
        keys: &["ref", "platforms", "all_platforms", "variant"],
        build: |p| p.push(),
    },
    ProgramKind {
        name: "nerdctl.pull",
        keys: &["ref", "fetched", "platforms", "remote"],
        build: |p| p.pull(),
    },
    ProgramKind {
        name: "nerdctl.tag",
        keys: &["src", "dst"],
        build: |p| p.tag(),
    },
    ProgramKind {
        name: "nerdctl.rmi",
        keys: &["image", "ref", "force"],
        build: |p| p.rmi(),
    },
    ProgramKind {
        name: "nerdctl.image-convert",
        keys: &["src", "dst", "platforms"],
        build: |p| p.convert(),
    },
    ProgramKind {
        name: "ctr.images.rm",
        keys: &["image", "sync"],
        build: |p| p.ctr_rm(),
    },
    ProgramKind {
        name: "gc.ticker",
        keys: &["ticks"],
        build: |p| p.gc_ticker(),
    },
    ProgramKind {
        name: "clock.advance",
        keys: &["by"],
        build: |p| p.clock_advance(),
    },
    ProgramKind {
        name: "ops",
        keys: &["ops"],
        build: |p| p.ops(),
    },
];

/// The names of [`PROGRAM_TABLE`], comma-separated, for messages.
pub fn program_names() -> String {
    PROGRAM_TABLE
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The model programs' keys an actor gives, with their spans.
fn given_keys(a: &ActorDoc) -> [(&'static str, Option<Span>); 14] {
    fn at<T>(v: &Option<Spanned<T>>) -> Option<Span> {
        v.as_ref().map(|v| v.span())
    }
    [
        ("ref", at(&a.reference)),
        ("platforms", at(&a.platforms)),
        ("all_platforms", at(&a.all_platforms)),
        ("variant", at(&a.variant)),
        ("fetched", at(&a.fetched)),
        ("remote", at(&a.remote)),
        ("src", at(&a.src)),
        ("dst", at(&a.dst)),
        ("image", at(&a.image)),
        ("force", at(&a.force)),
        ("sync", at(&a.sync)),
        ("ticks", at(&a.ticks)),
        ("by", at(&a.by)),
        ("ops", at(&a.ops)),
    ]
}

fn parse_program(
    l: &Loader,
    a: &ActorDoc,
    names: &BTreeMap<String, Arc<ImageFixture>>,
) -> Result<ProgramSpec, ScenarioError> {
    let Some(program) = &a.program else {
        return commands_only(l, a);
    };
    let pspan = Some(program.span());
    let prog = program.get_ref().as_str();
    let kind = PROGRAM_TABLE
        .iter()
        .find(|k| k.name == prog)
        .ok_or_else(|| {
            let why = format!(
                "unknown program {prog:?}; expected one of: {}",
                program_names()
            );
            l.err(pspan.clone(), "program", why)
        })?;
    // Any key the program does not take is an error.
    let other = given_keys(a)
        .into_iter()
        .find(|(k, span)| span.is_some() && !kind.keys.contains(k));
    if let Some((k, span)) = other {
        let why = format!(
            "not a parameter of {prog} (it takes: {})",
            kind.keys.join(", ")
        );
        return Err(l.err(span, k, why));
    }
    (kind.build)(&Params {
        l,
        a,
        names,
        prog,
        pspan,
    })
}

/// One actor's keys, read for its program: each error at its key's line (at `program` when a
/// key is missing).
struct Params<'a> {
    l: &'a Loader<'a>,
    a: &'a ActorDoc,
    names: &'a BTreeMap<String, Arc<ImageFixture>>,
    prog: &'a str,
    pspan: Option<Span>,
}

impl Params<'_> {
    fn needs(&self, key: &str) -> ScenarioError {
        self.l.err(
            self.pspan.clone(),
            key,
            format!("{} needs `{key}`", self.prog),
        )
    }

    /// An image of the scenario, by its reference or a tag.
    fn image_ref(&self, v: &Option<Spanned<String>>, key: &str) -> Result<String, ScenarioError> {
        let v = v.as_ref().ok_or_else(|| self.needs(key))?;
        if !self.names.contains_key(v.get_ref()) {
            let known: Vec<&String> = self.names.keys().collect();
            let why = format!(
                "{:?} is not an image of this scenario (images: {known:?})",
                v.get_ref()
            );
            return Err(self.l.err(Some(v.span()), key, why));
        }
        Ok(v.get_ref().clone())
    }

    /// Any non-empty image name (it need not exist).
    fn any_name(&self, v: &Option<Spanned<String>>, key: &str) -> Result<String, ScenarioError> {
        match v {
            Some(s) if !s.get_ref().is_empty() => Ok(s.get_ref().clone()),
            Some(s) => Err(self.l.err(Some(s.span()), key, "must not be empty")),
            None => Err(self.needs(key)),
        }
    }

    /// Platforms of `reference` (default: its first).
    fn platforms_of(
        &self,
        reference: &str,
        v: &Option<Spanned<Vec<String>>>,
        key: &str,
    ) -> Result<Vec<String>, ScenarioError> {
        let fx = &self.names[reference];
        let Some(p) = v else {
            return Ok(vec![fx.platforms[0].platform.clone()]);
        };
        let list = self.l.platforms(p, key)?;
        if list.is_empty() {
            return Err(self
                .l
                .err(Some(p.span()), key, "needs at least one platform"));
        }
        if let Some(x) = list.iter().find(|x| fx.platform(x).is_none()) {
            let why = format!("{x:?} is not a platform of {reference}");
            return Err(self.l.err(Some(p.span()), key, why));
        }
        Ok(list)
    }

    fn flag(v: &Option<Spanned<bool>>) -> bool {
        v.as_ref().is_some_and(|b| *b.get_ref())
    }

    fn push(&self) -> Result<ProgramSpec, ScenarioError> {
        let a = self.a;
        let reference = self.image_ref(&a.reference, "ref")?;
        let variant = match &a.variant {
            None => Variant::V2_0_5,
            Some(v) => v
                .get_ref()
                .parse()
                .map_err(|e: String| self.l.err(Some(v.span()), "variant", e))?,
        };
        Ok(ProgramSpec::Push {
            platforms: self.platforms_of(&reference, &a.platforms, "platforms")?,
            all_platforms: Self::flag(&a.all_platforms),
            variant,
            reference,
        })
    }

    fn pull(&self) -> Result<ProgramSpec, ScenarioError> {
        let a = self.a;
        let reference = self.image_ref(&a.reference, "ref")?;
        let fetched = match (&a.fetched, &a.platforms) {
            (Some(_), Some(p)) => {
                let why = "the same as `fetched` (nerdctl's --platform): give one of them";
                return Err(self.l.err(Some(p.span()), "platforms", why));
            }
            (Some(_), None) => Some(self.platforms_of(&reference, &a.fetched, "fetched")?),
            (None, Some(_)) => Some(self.platforms_of(&reference, &a.platforms, "platforms")?),
            (None, None) => None,
        };
        let remote = match &a.remote {
            None => reference.clone(),
            Some(r)
                if r.get_ref().trim().is_empty() || r.get_ref().contains(char::is_whitespace) =>
            {
                let why = "a reference (`HOST[:PORT]/REPO:TAG`), not empty, no spaces";
                return Err(self.l.err(Some(r.span()), "remote", why));
            }
            Some(r) => r.get_ref().clone(),
        };
        Ok(ProgramSpec::Pull {
            reference,
            fetched,
            remote,
        })
    }

    fn tag(&self) -> Result<ProgramSpec, ScenarioError> {
        Ok(ProgramSpec::Tag {
            src: self.any_name(&self.a.src, "src")?,
            dst: self.any_name(&self.a.dst, "dst")?,
        })
    }

    fn rmi(&self) -> Result<ProgramSpec, ScenarioError> {
        let a = self.a;
        let image = match (&a.image, &a.reference) {
            (Some(_), Some(r)) => {
                let why = "the same as `image`: give one of them";
                return Err(self.l.err(Some(r.span()), "ref", why));
            }
            (None, Some(_)) => self.any_name(&a.reference, "ref")?,
            _ => self.any_name(&a.image, "image")?,
        };
        Ok(ProgramSpec::Rmi {
            image,
            force: Self::flag(&a.force),
        })
    }

    fn convert(&self) -> Result<ProgramSpec, ScenarioError> {
        let src = self.image_ref(&self.a.src, "src")?;
        let platforms = self.platforms_of(&src, &self.a.platforms, "platforms")?;
        let dst = self.any_name(&self.a.dst, "dst")?;
        Ok(ProgramSpec::ImageConvert {
            dst,
            src,
            platforms,
        })
    }

    fn ctr_rm(&self) -> Result<ProgramSpec, ScenarioError> {
        Ok(ProgramSpec::CtrRm {
            image: self.any_name(&self.a.image, "image")?,
            sync: Self::flag(&self.a.sync),
        })
    }

    fn gc_ticker(&self) -> Result<ProgramSpec, ScenarioError> {
        let ticks = match &self.a.ticks {
            None => DEFAULT_TICKS,
            Some(t) if (1..=16).contains(t.get_ref()) => *t.get_ref() as u32,
            Some(t) => {
                let why = format!("{}: expected 1 to 16", t.get_ref());
                return Err(self.l.err(Some(t.span()), "ticks", why));
            }
        };
        Ok(ProgramSpec::GcTicker { ticks })
    }

    fn clock_advance(&self) -> Result<ProgramSpec, ScenarioError> {
        let by = self.a.by.as_ref().ok_or_else(|| {
            let why = "clock.advance needs `by` (a duration such as \"25h\")";
            self.l.err(self.pspan.clone(), "by", why)
        })?;
        let by = pushrace_models::clock::Duration::parse(by.get_ref())
            .map_err(|e| self.l.err(Some(by.span()), "by", e))?;
        Ok(ProgramSpec::ClockAdvance { by })
    }

    fn ops(&self) -> Result<ProgramSpec, ScenarioError> {
        let ops = self.a.ops.as_ref().ok_or_else(|| {
            let why = "ops needs `ops = [ { op = \"…\", … }, … ]`";
            self.l.err(self.pspan.clone(), "ops", why)
        })?;
        let src = opsfile::Source {
            file: self.l.file,
            text: self.l.text,
        };
        let parsed = opsfile::entries(src, ops.get_ref(), opsfile::Digests::Strict)
            .map_err(|e| ops_err(self.l, ops.span(), e))?;
        let actions = parsed.into_iter().map(|e| e.action).collect();
        Ok(ProgramSpec::Ops { actions })
    }
}

/// An ops actor's error: at the line of the faulty key (of `ops` when it has none), as key `ops`
/// with the op and its own key in the message.
fn ops_err(l: &Loader, ops: Span, e: pushrace_models::opsfile::InputError) -> ScenarioError {
    let at = e.op.map_or(String::new(), |i| format!("op {i}: "));
    let key = e.key.map_or(String::new(), |k| format!("key `{k}`: "));
    ScenarioError {
        line: e.line.or_else(|| l.err(Some(ops), "", "").line),
        ..l.err(None, "ops", format!("{at}{key}{}", e.message))
    }
}

/// An actor with no `program`: only its commands, and a `ref` for `{ref}` if it wants one.
fn commands_only(l: &Loader, a: &ActorDoc) -> Result<ProgramSpec, ScenarioError> {
    let name_span = Some(a.name.span());
    if a.command.is_none() && a.commands.is_none() {
        let why = format!(
            "an actor needs a `program` (one of: {}) or a `command`",
            program_names()
        );
        return Err(l.err(name_span, "program", why));
    }
    // Every model program's key but `ref`.
    let others = given_keys(a).map(|(k, span)| (k, k != "ref" && span.is_some()));
    if let Some((k, _)) = others.iter().find(|(_, given)| *given) {
        let why = "a parameter of a model program, and this actor has no `program` (a commands-only actor takes `ref`)";
        return Err(l.err(name_span, k, why));
    }
    let reference = match &a.reference {
        Some(r) if r.get_ref().is_empty() => {
            return Err(l.err(Some(r.span()), "ref", "must not be empty"))
        }
        r => r.as_ref().map(|r| r.get_ref().clone()),
    };
    Ok(ProgramSpec::Commands { reference })
}

/// The actor's real side: `command` (one) or `commands` (in order), then `finally` (run even
/// after a failure). Placeholders other than `{address}`, `{registry}` and `{ref}` (the last only
/// when the actor has a reference) are refused, so nothing reaches a process unsubstituted.
/// `client = "go"`: the Go client's command for the actor's program (a push or an rmi).
fn client_commands(
    l: &Loader,
    a: &ActorDoc,
    client: &Spanned<String>,
    name: &str,
    ctx: &Ctx,
    program: &ProgramSpec,
) -> Result<Vec<CommandSpec>, ScenarioError> {
    let given = [
        ("command", a.command.as_ref().map(|c| c.span())),
        ("commands", a.commands.as_ref().map(|c| c.span())),
        ("finally", a.finally.as_ref().map(|c| c.span())),
    ];
    if let Some((key, span)) = given.into_iter().find(|(_, s)| s.is_some()) {
        let why = format!("give `client` or `{key}`, not both");
        return Err(l.err(span, key, why));
    }
    if client.get_ref() != "go" {
        let why = format!(
            "{:?}: expected \"go\" (the Go client, clients/go)",
            client.get_ref()
        );
        return Err(l.err(Some(client.span()), "client", why));
    }
    crate::backend::commands::go_client_command(name, &ctx.namespace, program)
        .map(|c| vec![c])
        .map_err(|why| l.err(Some(client.span()), "client", why))
}

fn parse_commands(
    l: &Loader,
    a: &ActorDoc,
    has_ref: bool,
) -> Result<Vec<CommandSpec>, ScenarioError> {
    use pushrace_models::limits::{MAX_ARG_BYTES, MAX_COMMANDS, MAX_COMMAND_ARGS};
    if let (Some(_), Some(c)) = (&a.command, &a.commands) {
        let why = "give `command` (one) or `commands` (several), not both";
        return Err(l.err(Some(c.span()), "commands", why));
    }
    let one = a
        .command
        .as_ref()
        .map(|c| (c.span(), vec![c.get_ref().clone()], false, "command"));
    let many = a
        .commands
        .as_ref()
        .map(|c| (c.span(), c.get_ref().clone(), false, "commands"));
    let main = one.or(many);
    let last = a
        .finally
        .as_ref()
        .map(|c| (c.span(), c.get_ref().clone(), true, "finally"));
    if let (None, Some((span, ..))) = (&main, &last) {
        let why = "`finally` runs after an actor's `command` or `commands`; give one of those";
        return Err(l.err(Some(span.clone()), "finally", why));
    }
    let mut out = Vec::new();
    for (span, list, always, key) in main.into_iter().chain(last) {
        let err = |why: String| l.err(Some(span.clone()), key, why);
        if list.is_empty() || out.len() + list.len() > MAX_COMMANDS {
            return Err(err(format!("expected 1 to {MAX_COMMANDS} commands in all")));
        }
        for argv in list {
            if argv.is_empty() || argv[0].is_empty() || argv.len() > MAX_COMMAND_ARGS {
                let why = format!("a command is a non-empty list of at most {MAX_COMMAND_ARGS} arguments whose first is the program");
                return Err(err(why));
            }
            for arg in &argv {
                if arg.len() > MAX_ARG_BYTES || arg.contains('\0') {
                    return Err(err(format!(
                        "an argument is at most {MAX_ARG_BYTES} bytes, without NUL"
                    )));
                }
                if let Some(bad) = unknown_placeholder(arg, has_ref) {
                    let known = match has_ref {
                        true => "{address}, {registry} or {ref}",
                        false => "{address} or {registry} (this actor has no `ref` for {ref})",
                    };
                    return Err(err(format!("{bad} in {arg:?}: expected {known}")));
                }
            }
            let spec = CommandSpec { argv, always };
            out.push(spec);
        }
    }
    Ok(out)
}

/// The first placeholder (`{` lower-case letters or `_` `}`) in `arg` that this actor cannot fill;
/// other braces (`${HOME}` in a shell command) are literal.
fn unknown_placeholder(arg: &str, has_ref: bool) -> Option<String> {
    let mut rest = arg;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i + 1..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let closed = name_len > 0 && tail[name_len..].starts_with('}');
        let name = &tail[..name_len];
        let known = ["address", "registry", "go_client"].contains(&name);
        if closed && !(known || (name == "ref" && has_ref)) {
            return Some(format!("{{{name}}}"));
        }
        rest = tail;
    }
    None
}

fn parse_check(l: &Loader, c: Option<&CheckDoc>) -> Result<CheckSpec, ScenarioError> {
    let mut spec = CheckSpec::default();
    let Some(c) = c else { return Ok(spec) };
    check_verdict(l, c, &mut spec)?;
    check_bounds(l, c, &mut spec)?;
    Ok(spec)
}

/// `invariant`, `expect` and `missing`: what is checked and what verdict is expected.
fn check_verdict(l: &Loader, c: &CheckDoc, spec: &mut CheckSpec) -> Result<(), ScenarioError> {
    if let Some(i) = &c.invariant {
        spec.invariant = match i.get_ref().as_str() {
            "no-missing-digest" => Invariant::NoMissingDigest,
            "gc-safety" => Invariant::GcSafety,
            "no-dangling-reference" => Invariant::NoDanglingReference,
            "push-succeeds" => Invariant::PushSucceeds,
            other => {
                return Err(l.err(
                    Some(i.span()),
                    "invariant",
                    format!(
                    "{other:?}: expected \"no-missing-digest\", \"gc-safety\", \"no-dangling-reference\" or \"push-succeeds\""
                ),
                ))
            }
        };
    }
    if let Some(e) = &c.expect {
        spec.expect = Some(match e.get_ref().as_str() {
            "holds" => Expect::Holds,
            "violation" => Expect::Violation,
            other => {
                return Err(l.err(
                    Some(e.span()),
                    "expect",
                    format!("{other:?}: expected \"holds\" or \"violation\""),
                ))
            }
        });
    }
    if let Some(m) = &c.missing {
        let kind = RoleKind::parse(m.get_ref()).ok_or_else(|| {
            let kinds = RoleKind::ALL.map(RoleKind::name);
            let why = format!("{:?}: expected one of {kinds:?}", m.get_ref());
            l.err(Some(m.span()), "missing", why)
        })?;
        spec.missing = Some(kind);
    }
    Ok(())
}

/// The exploration's bounds and filters: `max_shrunk_steps`, `preemptions`, `budget`, `seed`,
/// `depth`, `actors`, `message`, `schedule`, `strategy`.
fn check_bounds(l: &Loader, c: &CheckDoc, spec: &mut CheckSpec) -> Result<(), ScenarioError> {
    let int = |v: &Option<Spanned<i64>>,
               key: &str,
               min: i64,
               max: i64|
     -> Result<Option<i64>, ScenarioError> {
        match v {
            None => Ok(None),
            Some(x) if (min..=max).contains(x.get_ref()) => Ok(Some(*x.get_ref())),
            Some(x) => Err(l.err(
                Some(x.span()),
                key,
                format!("{}: expected {min} to {max}", x.get_ref()),
            )),
        }
    };
    spec.max_shrunk_steps =
        int(&c.max_shrunk_steps, "max_shrunk_steps", 1, 1_000_000)?.map(|v| v as usize);
    if let Some(p) = &c.preemptions {
        spec.preemptions = match p.get_ref() {
            toml::Value::String(t) => preemption_bound(t, MAX_FILE_PREEMPTIONS),
            toml::Value::Integer(n) => preemption_bound(&n.to_string(), MAX_FILE_PREEMPTIONS),
            other => Err(format!(
                "{other}: expected 0 to {MAX_FILE_PREEMPTIONS} or \"none\""
            )),
        }
        .map_err(|e| l.err(Some(p.span()), "preemptions", e))?;
    }
    spec.budget = int(&c.budget, "budget", 1, i64::MAX)?.map(|v| v as u64);
    if let Some(s) = int(&c.seed, "seed", 0, i64::MAX)? {
        spec.seed = s as u64;
    }
    if let Some(d) = int(
        &c.depth,
        "depth",
        1,
        pushrace_harness::strategy::pct::MAX_DEPTH as i64,
    )? {
        spec.depth = d as usize;
    }
    spec.actors = c.actors.as_ref().map(|a| a.get_ref().clone());
    if let Some(m) = &c.message {
        if m.get_ref().is_empty() {
            return Err(l.err(Some(m.span()), "message", "must not be empty"));
        }
        spec.message = Some(m.get_ref().clone());
    }
    if let Some(s) = &c.schedule {
        pushrace_harness::Schedule::parse(s.get_ref())
            .map_err(|e| l.err(Some(s.span()), "schedule", e.to_string()))?;
        spec.schedule = Some(s.get_ref().clone());
    }
    if let Some(s) = &c.strategy {
        spec.strategy =
            explore_strategy(s.get_ref()).map_err(|e| l.err(Some(s.span()), "strategy", e))?;
    }
    Ok(())
}

impl Scenario {
    /// The same scenario with every push actor switched to `variant` (a Go-client actor's
    /// command too: it plays the push it is given).
    pub fn with_variant(&self, variant: Variant) -> Scenario {
        let mut s = self.clone();
        for a in &mut s.actors {
            if let ProgramSpec::Push { variant: v, .. } = &mut a.program {
                *v = variant;
                if a.go_client {
                    let c = crate::backend::commands::go_client_command(
                        &a.name,
                        &a.ctx.namespace,
                        &a.program,
                    );
                    a.commands = vec![c.expect("a push the Go client played before")];
                }
            }
        }
        s
    }

    /// What a digest is, when the scenario knows it.
    pub fn describe(&self, digest: &str) -> Option<&str> {
        self.roles.get(digest).map(String::as_str)
    }

    /// The first digest (in digest order) whose role starts with `role`, e.g. "reduced index".
    pub fn digest_with_role(&self, role: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|(_, r)| r.starts_with(role))
            .map(|(d, _)| d.as_str())
    }

    pub fn fixture(&self, reference: &str) -> Option<&Arc<ImageFixture>> {
        self.images
            .iter()
            .find(|i| i.reference == reference || i.tags.iter().any(|t| t == reference))
            .map(|i| &i.fixture)
    }
}
