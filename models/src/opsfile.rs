//! The `pushrace apply` contract: a TOML list of operations, run in order against a fresh store.
//!
//! ```toml
//! containerd = "1.6"
//! [[op]]
//! op = "content.write"
//! data = "hello"
//! as = "greeting"                # "@greeting" elsewhere stands for this digest
//! [[op]]
//! op = "image.create"
//! name = "example.com/a:1"
//! target = "@greeting"
//! ```
//!
//! Bad input is an [`InputError`] naming the file, the line, the operation and the key. A failing
//! operation does not stop the list: its containerd error is its result.

use crate::clock::Duration;
use crate::content::WriteStyle;
use crate::converter;
use crate::digest::{self, Digest};
use crate::errors::Error;
use crate::labels::Labels;
use crate::leases::Resource;
use crate::oci::{self, ImageFixture};
use crate::op::{Op, OpKind};
use crate::pull;
use crate::semantics::Semantics;
use crate::state::State;
use crate::store::{Bytes, Ctx, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Default platforms and layers of a fixture image named by `image.pull`.
pub const DEFAULT_PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];
pub const DEFAULT_LAYERS: usize = 2;
/// Media type `image.create` uses when none is given.
pub const DEFAULT_MEDIA_TYPE: &str = oci::MEDIA_MANIFEST;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub op: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(i) = self.op {
            write!(f, ": op {i}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// One `[[op]]` entry after parsing.
#[derive(Clone, Debug)]
pub enum Action {
    Op(Op),
    /// `image.pull`: the pull program on a fixture image.
    Pull {
        ctx: Ctx,
        fixture: Arc<ImageFixture>,
        fetched: Option<Vec<String>>,
    },
    /// `image.convert`: the converter's platform reduction.
    Convert {
        ctx: Ctx,
        src: String,
        dst: String,
        platforms: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub line: usize,
    pub name: String,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub struct OpsFile {
    pub semantics: Semantics,
    pub entries: Vec<Entry>,
}

/// The outcome of one entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EntryResult {
    pub op: usize,
    pub name: String,
    pub result: Result<(), Error>,
}

type Table = toml::Table;

/// Where in the ops file an op stands, for its errors.
struct Where<'a> {
    file: &'a str,
    line: usize,
    op: usize,
}

impl Where<'_> {
    fn err(&self, key: Option<&str>, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.to_string(),
            line: Some(self.line),
            op: Some(self.op),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Reads the keys of one op, tracking which were used so leftovers can be reported.
struct OpKeys<'a> {
    t: &'a Table,
    c: &'a Where<'a>,
    names: &'a BTreeMap<String, Digest>,
    digests: Digests,
}

/// What a malformed `digest` or `target` value is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Digests {
    /// An argument like any other: containerd (and the model) refuse it with their own error.
    /// `pushrace apply` files, which stand for the calls a client makes.
    AsSent,
    /// Bad input (exit 2): scenario files, where it can only be a typo.
    Strict,
}

impl<'a> OpKeys<'a> {
    fn opt_str(&self, k: &str) -> Result<Option<String>, InputError> {
        match self.t.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.c.err(
                Some(k),
                format!("expected a string, found {}", type_name(v)),
            )),
        }
    }

    fn str(&self, k: &str) -> Result<String, InputError> {
        self.opt_str(k)?
            .ok_or_else(|| self.c.err(Some(k), "missing (a string is required)"))
    }

    fn bool(&self, k: &str) -> Result<bool, InputError> {
        match self.t.get(k) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.c.err(
                Some(k),
                format!("expected true or false, found {}", type_name(v)),
            )),
        }
    }

    fn opt_int(&self, k: &str, min: i64) -> Result<Option<i64>, InputError> {
        match self.t.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= min => Ok(Some(*i)),
            Some(v) => Err(self
                .c
                .err(Some(k), format!("expected an integer >= {min}, found {v}"))),
        }
    }

    fn labels(&self, k: &str) -> Result<Option<Labels>, InputError> {
        match self.t.get(k) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => {
                let mut out = Labels::new();
                for (lk, lv) in t {
                    match lv {
                        toml::Value::String(s) => {
                            out.insert(lk.clone(), self.subst(k, s)?);
                        }
                        v => {
                            return Err(self.c.err(
                                Some(&format!("{k}.{lk}")),
                                format!("expected a string label value, found {}", type_name(v)),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.c.err(
                Some(k),
                format!("expected a table of labels, found {}", type_name(v)),
            )),
        }
    }

    fn str_list(&self, k: &str) -> Result<Option<Vec<String>>, InputError> {
        match self.t.get(k) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    v => Err(self.c.err(
                        Some(k),
                        format!("expected an array of strings, found {}", type_name(v)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.c.err(
                Some(k),
                format!("expected an array of strings, found {}", type_name(v)),
            )),
        }
    }

    /// Replaces a leading `@NAME` by the digest `as = "NAME"` bound.
    fn subst(&self, k: &str, s: &str) -> Result<String, InputError> {
        match s.strip_prefix('@') {
            None => Ok(s.to_string()),
            Some(name) => self.names.get(name).map(|d| d.to_string()).ok_or_else(|| {
                self.c.err(
                    Some(k),
                    format!("@{name} is not bound: no earlier op has `as = \"{name}\"`"),
                )
            }),
        }
    }

    /// A digest (after `@NAME` substitution), validated by go-digest's rules.
    fn digest(&self, k: &str) -> Result<String, InputError> {
        let s = self.subst(k, &self.str(k)?)?;
        digest::validate(&s).map_err(|e| {
            self.c.err(
                Some(k),
                format!("{s:?} is not a digest ({e}); expected sha256:<64 hex> or @NAME"),
            )
        })?;
        Ok(s)
    }

    /// A digest the operation sends as it is: `@NAME` is substituted, anything else is left for
    /// containerd (and the model) to refuse with their own error.
    fn digest_arg(&self, k: &str) -> Result<String, InputError> {
        match self.digests {
            Digests::AsSent => self.subst(k, &self.str(k)?),
            Digests::Strict => self.digest(k),
        }
    }

    fn opt_digest(&self, k: &str) -> Result<Option<Digest>, InputError> {
        if !self.t.contains_key(k) {
            return Ok(None);
        }
        let s = self.digest(k)?;
        Ok(Some(Digest::parse(&s).expect("validated")))
    }

    fn duration(&self, k: &str) -> Result<Duration, InputError> {
        let s = self.str(k)?;
        Duration::parse(&s).map_err(|e| self.c.err(Some(k), e))
    }

    fn platforms(&self, k: &str) -> Result<Option<Vec<String>>, InputError> {
        let p = self.str_list(k)?;
        if let Some(list) = &p {
            if list.len() > crate::limits::MAX_PLATFORMS {
                return Err(self.c.err(
                    Some(k),
                    format!(
                        "{} platforms: at most {}",
                        list.len(),
                        crate::limits::MAX_PLATFORMS
                    ),
                ));
            }
            for x in list {
                oci::parse_platform(x).map_err(|e| self.c.err(Some(k), e))?;
            }
        }
        Ok(p)
    }
}

/// The keys each op accepts besides `op`, `namespace` and `lease`.
fn allowed_keys(op: &str) -> Option<&'static [&'static str]> {
    Some(match op {
        "content.write" => &["data", "as", "labels", "expected", "style", "ref"],
        "ingest.open" => &["ref", "data", "expected", "as"],
        "ingest.abort" => &["ref"],
        "content.info" | "content.delete" => &["digest"],
        "content.read" => &["digest", "offset", "length"],
        "content.label" => &["digest", "labels"],
        "content.list" | "image.list" | "lease.list" | "gc.run" => &[],
        "image.create" | "image.update" => &["name", "target", "media_type", "labels", "size"],
        "image.delete" => &["name", "sync"],
        "image.get" => &["name"],
        "lease.create" => &["id", "expire", "flat", "labels"],
        "lease.add" | "lease.remove" => &["id", "type", "resource"],
        "lease.delete" => &["id", "sync"],
        "clock.advance" => &["by"],
        "image.pull" => &["ref", "platforms", "layers", "fetched", "as"],
        "image.convert" => &["src", "dst", "platforms"],
        _ => return None,
    })
}

pub const OP_NAMES: &str = "content.write, ingest.open, ingest.abort, content.info, content.read, content.label, \
content.delete, content.list, image.create, image.update, image.delete, image.get, image.list, lease.create, \
lease.add, lease.remove, lease.delete, lease.list, gc.run, clock.advance, image.pull, image.convert";

/// Line numbers of the `[[op]]` headers, in order.
fn op_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            t.starts_with("[[") && t[2..].trim_start().starts_with("op") && {
                let rest = t[2..].trim_start()[2..].trim_start();
                rest.starts_with("]]")
            }
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Parses an operations file. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<OpsFile, InputError> {
    parse_with(file, text, Digests::AsSent)
}

/// [`parse`], choosing what a malformed digest is.
pub fn parse_with(file: &str, text: &str, digests: Digests) -> Result<OpsFile, InputError> {
    let top_err = |line: Option<usize>, key: Option<&str>, message: String| InputError {
        file: file.to_string(),
        line,
        op: None,
        key: key.map(str::to_string),
        message,
    };
    let max = crate::limits::MAX_FILE_BYTES;
    if text.len() as u64 > max {
        let n = text.len();
        return Err(top_err(None, None, format!("{n} bytes: at most {max}")));
    }
    let doc: Table = text.parse::<Table>().map_err(|e| {
        let line = e.span().map(|s| {
            // Count newlines in bytes: a span need not fall on a char boundary.
            let end = s.start.min(text.len());
            text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        top_err(line, None, format!("invalid TOML: {}", e.message()))
    })?;
    for k in doc.keys() {
        if k != "containerd" && k != "op" {
            return Err(top_err(
                None,
                Some(k),
                "unknown top-level key; expected `containerd` or `[[op]]` entries".into(),
            ));
        }
    }
    let semantics = match doc.get("containerd") {
        None => Semantics::default(),
        Some(toml::Value::String(s)) => s
            .parse()
            .map_err(|e| top_err(None, Some("containerd"), e))?,
        Some(v) => {
            return Err(top_err(
                None,
                Some("containerd"),
                format!("expected a string, found {}", type_name(v)),
            ))
        }
    };
    let ops = match doc.get("op") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a.clone(),
        Some(v) => {
            return Err(top_err(
                None,
                Some("op"),
                format!("expected [[op]] tables, found {}", type_name(v)),
            ))
        }
    };
    if ops.len() > crate::limits::MAX_OPS {
        return Err(top_err(
            None,
            Some("op"),
            format!(
                "{} operations: at most {}",
                ops.len(),
                crate::limits::MAX_OPS
            ),
        ));
    }
    let lines = op_lines(text);
    let mut names: BTreeMap<String, Digest> = BTreeMap::new();
    let mut fixtures: BTreeMap<String, Arc<ImageFixture>> = BTreeMap::new();
    let mut entries = Vec::new();
    for (i, v) in ops.iter().enumerate() {
        let c = Where {
            file,
            line: lines.get(i).copied().unwrap_or(0),
            op: i,
        };
        let t = match v {
            toml::Value::Table(t) => t,
            v => return Err(c.err(None, format!("expected a table, found {}", type_name(v)))),
        };
        let k = OpKeys {
            t,
            c: &c,
            names: &names,
            digests,
        };
        let name = k.str("op")?;
        let allowed = allowed_keys(&name).ok_or_else(|| {
            c.err(
                Some("op"),
                format!("unknown operation {name:?}; expected one of: {OP_NAMES}"),
            )
        })?;
        for key in t.keys() {
            if key != "op"
                && key != "namespace"
                && key != "lease"
                && !allowed.contains(&key.as_str())
            {
                let mut expected: Vec<&str> = allowed.to_vec();
                expected.extend(["namespace", "lease"]);
                return Err(c.err(
                    Some(key),
                    format!(
                        "unknown key for {name}; expected one of: {}",
                        expected.join(", ")
                    ),
                ));
            }
        }
        let namespace = k
            .opt_str("namespace")?
            .unwrap_or_else(|| "default".to_string());
        if namespace.is_empty() {
            return Err(c.err(Some("namespace"), "must not be empty"));
        }
        let ctx = Ctx {
            namespace,
            lease: k.opt_str("lease")?,
        };
        let data = |k: &OpKeys| -> Result<Option<Bytes>, InputError> {
            Ok(k.opt_str("data")?.map(|s| Bytes::from(s.into_bytes())))
        };
        let mut bind: Option<Digest> = None;
        let kind = match name.as_str() {
            "content.write" => {
                let data = data(&k)?
                    .ok_or_else(|| c.err(Some("data"), "missing (a string is required)"))?;
                let style = match k.opt_str("style")?.as_deref() {
                    None | Some("open") => WriteStyle::Open,
                    Some("commit") => WriteStyle::Commit,
                    Some(s) => {
                        return Err(c.err(
                            Some("style"),
                            format!("{s:?}: expected \"open\" or \"commit\""),
                        ))
                    }
                };
                let own = Digest::of(&data);
                let r = k.opt_str("ref")?.unwrap_or_else(|| default_write_ref(&own));
                bind = Some(own);
                OpKind::ContentWrite {
                    r,
                    data,
                    expected: k.opt_digest("expected")?,
                    labels: k.labels("labels")?.unwrap_or_default(),
                    style,
                }
            }
            "ingest.open" => {
                let data = data(&k)?.unwrap_or_else(|| Bytes::from(Vec::new()));
                bind = Some(Digest::of(&data));
                OpKind::IngestOpen {
                    r: k.str("ref")?,
                    data,
                    expected: k.opt_digest("expected")?,
                }
            }
            "ingest.abort" => OpKind::IngestAbort { r: k.str("ref")? },
            "content.info" => OpKind::ContentInfo {
                digest: k.digest_arg("digest")?,
            },
            "content.delete" => OpKind::ContentDelete {
                digest: k.digest_arg("digest")?,
            },
            "content.read" => OpKind::ContentRead {
                digest: k.digest_arg("digest")?,
                offset: k.opt_int("offset", 0)?.unwrap_or(0) as u64,
                len: k.opt_int("length", 0)?.map(|l| l as u64),
            },
            "content.label" => OpKind::ContentLabel {
                digest: k.digest_arg("digest")?,
                labels: k.labels("labels")?.ok_or_else(|| {
                    c.err(Some("labels"), "missing (a table of labels is required)")
                })?,
            },
            "content.list" => OpKind::ContentWalk,
            "image.list" => OpKind::ImageList,
            "lease.list" => OpKind::LeaseList,
            "gc.run" => OpKind::GcRun,
            "image.create" => OpKind::ImageCreate {
                name: k.str("name")?,
                media_type: k
                    .opt_str("media_type")?
                    .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
                target: k.digest_arg("target")?,
                size: k.opt_int("size", i64::MIN)?,
                labels: k.labels("labels")?.unwrap_or_default(),
            },
            "image.update" => {
                let target = if t.contains_key("target") {
                    Some(k.digest_arg("target")?)
                } else {
                    None
                };
                let labels = k.labels("labels")?;
                if target.is_none() && labels.is_none() {
                    return Err(c.err(None, "image.update needs `target`, `labels` or both"));
                }
                OpKind::ImageUpdate {
                    name: k.str("name")?,
                    media_type: k.opt_str("media_type")?,
                    target,
                    size: k.opt_int("size", i64::MIN)?,
                    labels,
                }
            }
            "image.delete" => OpKind::ImageDelete {
                name: k.str("name")?,
                sync: k.bool("sync")?,
            },
            "image.get" => OpKind::ImageGet {
                name: k.str("name")?,
            },
            "lease.create" => {
                let id = k.str("id")?;
                if id.is_empty() {
                    return Err(c.err(
                        Some("id"),
                        "must not be empty (containerd would pick a random id)",
                    ));
                }
                let expire = if t.contains_key("expire") {
                    Some(k.duration("expire")?)
                } else {
                    None
                };
                OpKind::LeaseCreate {
                    id,
                    expire,
                    flat: k.bool("flat")?,
                    labels: k.labels("labels")?.unwrap_or_default(),
                }
            }
            "lease.add" | "lease.remove" => {
                let ty = k.str("type")?;
                let resource = k.subst("resource", &k.str("resource")?)?;
                let resource = match ty.as_str() {
                    "content" => Resource::Content(resource),
                    "ingests" => Resource::Ingest(resource),
                    "images" => Resource::Image(resource),
                    _ => {
                        return Err(c.err(
                            Some("type"),
                            format!("{ty:?}: expected \"content\", \"ingests\" or \"images\""),
                        ))
                    }
                };
                let id = k.str("id")?;
                if name == "lease.add" {
                    OpKind::LeaseAdd { id, resource }
                } else {
                    OpKind::LeaseRemove { id, resource }
                }
            }
            "lease.delete" => OpKind::LeaseDelete {
                id: k.str("id")?,
                sync: k.bool("sync")?,
            },
            "clock.advance" => OpKind::ClockAdvance {
                by: k.duration("by")?,
            },
            "image.pull" => {
                let reference = k.str("ref")?;
                let platforms = k
                    .platforms("platforms")?
                    .unwrap_or_else(|| DEFAULT_PLATFORMS.iter().map(|s| s.to_string()).collect());
                let layers = k.opt_int("layers", 0)?.unwrap_or(DEFAULT_LAYERS as i64) as usize;
                if layers > crate::limits::MAX_LAYERS {
                    return Err(c.err(
                        Some("layers"),
                        format!("at most {} layers per platform", crate::limits::MAX_LAYERS),
                    ));
                }
                let fetched = k.platforms("fetched")?;
                if let Some(f) = &fetched {
                    for p in f {
                        if !platforms.contains(p) {
                            return Err(c.err(
                                Some("fetched"),
                                format!("{p:?} is not one of the image's platforms {platforms:?}"),
                            ));
                        }
                    }
                }
                let dup: BTreeSet<&String> = platforms.iter().collect();
                if dup.len() != platforms.len() {
                    return Err(c.err(Some("platforms"), "lists a platform twice"));
                }
                let fixture = Arc::new(
                    ImageFixture::build(&reference, &platforms, layers)
                        .map_err(|e| c.err(Some("platforms"), e))?,
                );
                fixtures.insert(reference.clone(), fixture.clone());
                if let Some(a) = k.opt_str("as")? {
                    names.insert(a, Digest::parse(fixture.index.digest()).unwrap());
                }
                entries.push(Entry {
                    line: c.line,
                    name,
                    action: Action::Pull {
                        ctx,
                        fixture,
                        fetched,
                    },
                });
                continue;
            }
            "image.convert" => {
                let platforms = k.platforms("platforms")?.ok_or_else(|| {
                    c.err(
                        Some("platforms"),
                        "missing (an array of platforms is required)",
                    )
                })?;
                entries.push(Entry {
                    line: c.line,
                    name,
                    action: Action::Convert {
                        ctx,
                        src: k.str("src")?,
                        dst: k.str("dst")?,
                        platforms,
                    },
                });
                continue;
            }
            _ => unreachable!("allowed_keys knows every op"),
        };
        if let (Some(a), Some(d)) = (k.opt_str("as")?, bind) {
            names.insert(a, d);
        }
        entries.push(Entry {
            line: c.line,
            name,
            action: Action::Op(Op { ctx, kind }),
        });
    }
    let _ = fixtures;
    Ok(OpsFile { semantics, entries })
}

/// The ingest ref `content.write` uses when none is given.
pub fn default_write_ref(d: &Digest) -> String {
    format!("write-{}", d.hex())
}

impl OpsFile {
    /// Runs every entry in order on a fresh store.
    pub fn run(&self) -> (Store, Vec<EntryResult>) {
        let mut store = Store::new(self.semantics);
        let mut results = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let result = run_action(&mut store, &e.action);
            results.push(EntryResult {
                op: i,
                name: e.name.clone(),
                result,
            });
        }
        (store, results)
    }
}

/// Applies one entry; composite entries run their program to completion.
pub fn run_action(store: &mut Store, action: &Action) -> Result<(), Error> {
    match action {
        Action::Op(op) => store.apply(op).map(|_| ()),
        a => {
            let id = store.fresh_id(a.program_kind().expect("not an operation"));
            a.program(id)
                .expect("not an operation")
                .run(store, |_, _| {})
                .map(|_| ())
        }
    }
}

impl Action {
    /// `pull` or `convert` for the entries that run a client procedure (the prefix of the lease it
    /// creates), `None` for a single operation.
    pub fn program_kind(&self) -> Option<&'static str> {
        match self {
            Action::Op(_) => None,
            Action::Pull { .. } => Some("pull"),
            Action::Convert { .. } => Some("convert"),
        }
    }

    /// The client procedure of a pull or convert entry, creating its lease as `lease_id` (when its
    /// context has none). `None` for a single operation.
    pub fn program(&self, lease_id: String) -> Option<crate::program::Program<crate::Image>> {
        match self {
            Action::Op(_) => None,
            Action::Pull {
                ctx,
                fixture,
                fetched,
            } => Some(pull::pull(
                fixture.clone(),
                fetched.clone(),
                ctx.clone(),
                lease_id,
            )),
            Action::Convert {
                ctx,
                src,
                dst,
                platforms,
            } => Some(converter::convert(
                src.clone(),
                dst.clone(),
                platforms.clone(),
                ctx.clone(),
                lease_id,
            )),
        }
    }
}

/// `{"results": [...], "state": {...}}` with sorted keys. Takes a state, not a store, so the
/// real-daemon backend prints through the same function.
pub fn to_json(results: &[EntryResult], state: &State) -> serde_json::Value {
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|r| match &r.result {
            Ok(()) => serde_json::json!({"op": r.op, "ok": true}),
            Err(e) => serde_json::json!({"op": r.op, "error": e.message}),
        })
        .collect();
    serde_json::json!({"results": results, "state": serde_json::to_value(state).expect("state serializes")})
}

/// Readable text: one line per operation, then the state.
pub fn to_text(ops: &OpsFile, results: &[EntryResult], state: &State) -> String {
    let mut out = format!("containerd {} semantics\n", ops.semantics);
    for (r, e) in results.iter().zip(&ops.entries) {
        let what = &e.action;
        match &r.result {
            Ok(()) => out.push_str(&format!("op {:>3}  ok     {what}\n", r.op)),
            Err(err) => out.push_str(&format!("op {:>3}  error  {what}: {}\n", r.op, err.message)),
        }
    }
    out.push('\n');
    out.push_str(&state.to_text());
    out
}

/// An entry as the text output and diffs name it.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Op(op) => write!(f, "{op}"),
            Action::Pull { fixture, .. } => write!(f, "image.pull {}", fixture.reference),
            Action::Convert {
                src,
                dst,
                platforms,
                ..
            } => {
                write!(f, "image.convert {src} -> {dst} {platforms:?}")
            }
        }
    }
}
