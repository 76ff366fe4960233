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
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use toml::Spanned;

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

/// One `[[op]]` table as written: each key and value with the bytes it spans in the text, so
/// that an error names the line of the faulty key.
pub type OpTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// An ops file as written: the one document type of the format (read by [`parse`], written by
/// `toml::to_string`; a scenario's `ops` actor holds a list of the same [`OpTable`]s).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerd: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub op: Vec<Spanned<OpTable>>,
}

/// The top-level keys of an ops file.
const TOP_KEYS: [&str; 2] = ["containerd", "op"];

/// Keys every op takes besides its own.
const COMMON_KEYS: [&str; 3] = ["op", "namespace", "lease"];

/// One operation of the vocabulary: its name, the keys it takes (besides [`COMMON_KEYS`]) and how
/// its keys become an [`Action`]. [`OPS`] is the one list of operations.
pub struct OpSpec {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    build: fn(&OpKeys) -> Result<Built, InputError>,
}

/// What an op's keys build: the action, and the digest `as = "NAME"` binds (for the ops that
/// take `as`).
struct Built {
    action: Action,
    binds: Option<Digest>,
}

fn single(k: &OpKeys, kind: OpKind) -> Built {
    Built {
        action: Action::Op(Op {
            ctx: k.ctx.clone(),
            kind,
        }),
        binds: None,
    }
}

/// Every operation an ops file (and a scenario's `ops` actor) may name, in the order the docs and
/// errors list them.
pub const OPS: &[OpSpec] = &[
    OpSpec {
        name: "content.write",
        keys: &["data", "as", "labels", "expected", "style", "ref"],
        build: build_content_write,
    },
    OpSpec {
        name: "ingest.open",
        keys: &["ref", "data", "expected", "as"],
        build: build_ingest_open,
    },
    OpSpec {
        name: "ingest.abort",
        keys: &["ref"],
        build: |k| Ok(single(k, OpKind::IngestAbort { r: k.str("ref")? })),
    },
    OpSpec {
        name: "content.info",
        keys: &["digest"],
        build: |k| {
            let digest = k.digest_arg("digest")?;
            Ok(single(k, OpKind::ContentInfo { digest }))
        },
    },
    OpSpec {
        name: "content.read",
        keys: &["digest", "offset", "length"],
        build: |k| {
            let kind = OpKind::ContentRead {
                digest: k.digest_arg("digest")?,
                offset: k.opt_int("offset", 0)?.unwrap_or(0) as u64,
                len: k.opt_int("length", 0)?.map(|l| l as u64),
            };
            Ok(single(k, kind))
        },
    },
    OpSpec {
        name: "content.label",
        keys: &["digest", "labels"],
        build: |k| {
            let digest = k.digest_arg("digest")?;
            let labels = k
                .labels("labels")?
                .ok_or_else(|| k.missing("labels", "a table of labels"))?;
            Ok(single(k, OpKind::ContentLabel { digest, labels }))
        },
    },
    OpSpec {
        name: "content.delete",
        keys: &["digest"],
        build: |k| {
            let digest = k.digest_arg("digest")?;
            Ok(single(k, OpKind::ContentDelete { digest }))
        },
    },
    OpSpec {
        name: "content.list",
        keys: &[],
        build: |k| Ok(single(k, OpKind::ContentWalk)),
    },
    OpSpec {
        name: "image.create",
        keys: &["name", "target", "media_type", "labels", "size"],
        build: build_image_create,
    },
    OpSpec {
        name: "image.update",
        keys: &["name", "target", "media_type", "labels", "size"],
        build: build_image_update,
    },
    OpSpec {
        name: "image.delete",
        keys: &["name", "sync"],
        build: |k| {
            let (name, sync) = (k.str("name")?, k.bool("sync")?);
            Ok(single(k, OpKind::ImageDelete { name, sync }))
        },
    },
    OpSpec {
        name: "image.get",
        keys: &["name"],
        build: |k| {
            Ok(single(
                k,
                OpKind::ImageGet {
                    name: k.str("name")?,
                },
            ))
        },
    },
    OpSpec {
        name: "image.list",
        keys: &[],
        build: |k| Ok(single(k, OpKind::ImageList)),
    },
    OpSpec {
        name: "lease.create",
        keys: &["id", "expire", "flat", "labels"],
        build: build_lease_create,
    },
    OpSpec {
        name: "lease.add",
        keys: &["id", "type", "resource"],
        build: |k| {
            let (id, resource) = (k.str("id")?, k.resource()?);
            Ok(single(k, OpKind::LeaseAdd { id, resource }))
        },
    },
    OpSpec {
        name: "lease.remove",
        keys: &["id", "type", "resource"],
        build: |k| {
            let (id, resource) = (k.str("id")?, k.resource()?);
            Ok(single(k, OpKind::LeaseRemove { id, resource }))
        },
    },
    OpSpec {
        name: "lease.delete",
        keys: &["id", "sync"],
        build: |k| {
            let (id, sync) = (k.str("id")?, k.bool("sync")?);
            Ok(single(k, OpKind::LeaseDelete { id, sync }))
        },
    },
    OpSpec {
        name: "lease.list",
        keys: &[],
        build: |k| Ok(single(k, OpKind::LeaseList)),
    },
    OpSpec {
        name: "gc.run",
        keys: &[],
        build: |k| Ok(single(k, OpKind::GcRun)),
    },
    OpSpec {
        name: "clock.advance",
        keys: &["by"],
        build: |k| {
            Ok(single(
                k,
                OpKind::ClockAdvance {
                    by: k.duration("by")?,
                },
            ))
        },
    },
    OpSpec {
        name: "image.pull",
        keys: &["ref", "platforms", "layers", "fetched", "as"],
        build: build_image_pull,
    },
    OpSpec {
        name: "image.convert",
        keys: &["src", "dst", "platforms"],
        build: build_image_convert,
    },
];

/// The names of [`OPS`], comma-separated, for messages and docs.
pub fn op_names() -> String {
    OPS.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
}

fn build_content_write(k: &OpKeys) -> Result<Built, InputError> {
    let data = k.data()?.ok_or_else(|| k.missing("data", "a string"))?;
    let style = match k.opt_str("style")?.as_deref() {
        None | Some("open") => WriteStyle::Open,
        Some("commit") => WriteStyle::Commit,
        Some(s) => return Err(k.err("style", format!("{s:?}: expected \"open\" or \"commit\""))),
    };
    let own = Digest::of(&data);
    let r = k.opt_str("ref")?.unwrap_or_else(|| default_write_ref(&own));
    let kind = OpKind::ContentWrite {
        r,
        data,
        expected: k.opt_digest("expected")?,
        labels: k.labels("labels")?.unwrap_or_default(),
        style,
    };
    Ok(Built {
        binds: Some(own),
        ..single(k, kind)
    })
}

fn build_ingest_open(k: &OpKeys) -> Result<Built, InputError> {
    let data = k.data()?.unwrap_or_else(|| Bytes::from(Vec::new()));
    let own = Digest::of(&data);
    let kind = OpKind::IngestOpen {
        r: k.str("ref")?,
        data,
        expected: k.opt_digest("expected")?,
    };
    Ok(Built {
        binds: Some(own),
        ..single(k, kind)
    })
}

fn build_image_create(k: &OpKeys) -> Result<Built, InputError> {
    let kind = OpKind::ImageCreate {
        name: k.str("name")?,
        media_type: k
            .opt_str("media_type")?
            .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
        target: k.digest_arg("target")?,
        size: k.opt_int("size", i64::MIN)?,
        labels: k.labels("labels")?.unwrap_or_default(),
    };
    Ok(single(k, kind))
}

fn build_image_update(k: &OpKeys) -> Result<Built, InputError> {
    let target = match k.has("target") {
        true => Some(k.digest_arg("target")?),
        false => None,
    };
    let labels = k.labels("labels")?;
    if target.is_none() && labels.is_none() {
        return Err(k.at_op(None, "image.update needs `target`, `labels` or both"));
    }
    let kind = OpKind::ImageUpdate {
        name: k.str("name")?,
        media_type: k.opt_str("media_type")?,
        target,
        size: k.opt_int("size", i64::MIN)?,
        labels,
    };
    Ok(single(k, kind))
}

fn build_lease_create(k: &OpKeys) -> Result<Built, InputError> {
    let id = k.str("id")?;
    if id.is_empty() {
        let why = "must not be empty (containerd would pick a random id)";
        return Err(k.err("id", why));
    }
    let expire = match k.has("expire") {
        true => Some(k.duration("expire")?),
        false => None,
    };
    let kind = OpKind::LeaseCreate {
        id,
        expire,
        flat: k.bool("flat")?,
        labels: k.labels("labels")?.unwrap_or_default(),
    };
    Ok(single(k, kind))
}

fn build_image_pull(k: &OpKeys) -> Result<Built, InputError> {
    let reference = k.str("ref")?;
    let platforms = k
        .platforms("platforms")?
        .unwrap_or_else(oci::default_platforms);
    let layers = k
        .opt_int("layers", 0)?
        .map_or(oci::DEFAULT_LAYERS, |n| n as usize);
    let max = crate::limits::MAX_LAYERS;
    if layers > max {
        return Err(k.err(
            "layers",
            format!("{layers}: expected 0 to {max} layers per platform"),
        ));
    }
    let fetched = k.platforms("fetched")?;
    if let Some(p) = fetched.iter().flatten().find(|p| !platforms.contains(p)) {
        let why = format!("{p:?} is not one of the image's platforms {platforms:?}");
        return Err(k.err("fetched", why));
    }
    let fixture = ImageFixture::build(&reference, &platforms, layers)
        .map_err(|e| k.err(k.first_of(&["platforms", "ref"]), e))?;
    let fixture = Arc::new(fixture);
    let binds = Digest::parse(fixture.index.digest()).ok();
    let action = Action::Pull {
        ctx: k.ctx.clone(),
        fixture,
        fetched,
    };
    Ok(Built { action, binds })
}

fn build_image_convert(k: &OpKeys) -> Result<Built, InputError> {
    let platforms = k
        .platforms("platforms")?
        .ok_or_else(|| k.missing("platforms", "an array of platforms"))?;
    let action = Action::Convert {
        ctx: k.ctx.clone(),
        src: k.str("src")?,
        dst: k.str("dst")?,
        platforms,
    };
    Ok(Built {
        action,
        binds: None,
    })
}

/// Where an input stands, for its errors: the file's name and text (spans index the text).
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        crate::limits::line_at(self.text.as_bytes(), span.start)
    }

    fn top_err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: Option<&str>,
        message: String,
    ) -> InputError {
        InputError {
            file: self.file.to_string(),
            line: span.map(|s| self.line(s)),
            op: None,
            key: key.map(str::to_string),
            message,
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

/// Reads the keys of one op: each error names the line of its key (or of the op's table when the
/// key is missing).
pub struct OpKeys<'a> {
    t: &'a Spanned<OpTable>,
    src: Source<'a>,
    op: usize,
    ctx: Ctx,
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

impl OpKeys<'_> {
    fn at_op(&self, key: Option<&str>, message: impl Into<String>) -> InputError {
        let span = key
            .and_then(|k| self.t.get_ref().get_key_value(k))
            .map_or(self.t.span(), |(k, _)| k.span());
        InputError {
            file: self.src.file.to_string(),
            line: Some(self.src.line(span)),
            op: Some(self.op),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    fn err(&self, key: &str, message: impl Into<String>) -> InputError {
        self.at_op(Some(key), message)
    }

    fn missing(&self, key: &str, what: &str) -> InputError {
        self.err(key, format!("missing ({what} is required)"))
    }

    fn get(&self, k: &str) -> Option<&toml::Value> {
        self.t.get_ref().get(k).map(|v| v.get_ref())
    }

    fn has(&self, k: &str) -> bool {
        self.t.get_ref().contains_key(k)
    }

    /// The first of `keys` the op gives (to blame a value built from several), else the first.
    fn first_of<'k>(&self, keys: &[&'k str]) -> &'k str {
        keys.iter()
            .copied()
            .find(|k| self.has(k))
            .unwrap_or(keys[0])
    }

    fn opt_str(&self, k: &str) -> Result<Option<String>, InputError> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(k, format!("expected a string, found {}", type_name(v)))),
        }
    }

    fn str(&self, k: &str) -> Result<String, InputError> {
        self.opt_str(k)?.ok_or_else(|| self.missing(k, "a string"))
    }

    fn data(&self) -> Result<Option<Bytes>, InputError> {
        Ok(self.opt_str("data")?.map(|s| Bytes::from(s.into_bytes())))
    }

    fn bool(&self, k: &str) -> Result<bool, InputError> {
        match self.get(k) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.err(k, format!("expected true or false, found {}", type_name(v)))),
        }
    }

    fn opt_int(&self, k: &str, min: i64) -> Result<Option<i64>, InputError> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= min => Ok(Some(*i)),
            Some(v) => Err(self.err(k, format!("expected an integer >= {min}, found {v}"))),
        }
    }

    fn labels(&self, k: &str) -> Result<Option<Labels>, InputError> {
        let t = match self.get(k) {
            None => return Ok(None),
            Some(toml::Value::Table(t)) => t,
            Some(v) => {
                let why = format!("expected a table of labels, found {}", type_name(v));
                return Err(self.err(k, why));
            }
        };
        let mut out = Labels::new();
        for (lk, lv) in t {
            let toml::Value::String(s) = lv else {
                let why = format!("expected a string label value, found {}", type_name(lv));
                return Err(self.at_op(Some(k), why).with_key(format!("{k}.{lk}")));
            };
            out.insert(lk.clone(), self.subst(k, s)?);
        }
        Ok(Some(out))
    }

    fn str_list(&self, k: &str) -> Result<Option<Vec<String>>, InputError> {
        let expected = |v: &toml::Value| {
            self.err(
                k,
                format!("expected an array of strings, found {}", type_name(v)),
            )
        };
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| expected(v)))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(expected(v)),
        }
    }

    /// Replaces a leading `@NAME` by the digest `as = "NAME"` bound.
    fn subst(&self, k: &str, s: &str) -> Result<String, InputError> {
        let Some(name) = s.strip_prefix('@') else {
            return Ok(s.to_string());
        };
        self.names.get(name).map(|d| d.to_string()).ok_or_else(|| {
            self.err(
                k,
                format!("@{name} is not bound: no earlier op has `as = \"{name}\"`"),
            )
        })
    }

    /// A digest (after `@NAME` substitution), validated by go-digest's rules.
    fn digest(&self, k: &str) -> Result<String, InputError> {
        let s = self.subst(k, &self.str(k)?)?;
        digest::validate(&s).map_err(|e| {
            let why = format!("{s:?} is not a digest ({e}); expected sha256:<64 hex> or @NAME");
            self.err(k, why)
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
        if !self.has(k) {
            return Ok(None);
        }
        let s = self.digest(k)?;
        Digest::parse(&s)
            .map(Some)
            .map_err(|e| self.err(k, e.to_string()))
    }

    fn duration(&self, k: &str) -> Result<Duration, InputError> {
        Duration::parse(&self.str(k)?).map_err(|e| self.err(k, e))
    }

    fn resource(&self) -> Result<Resource, InputError> {
        let ty = self.str("type")?;
        let resource = self.subst("resource", &self.str("resource")?)?;
        Ok(match ty.as_str() {
            "content" => Resource::Content(resource),
            "ingests" => Resource::Ingest(resource),
            "images" => Resource::Image(resource),
            _ => {
                let why = format!("{ty:?}: expected \"content\", \"ingests\" or \"images\"");
                return Err(self.err("type", why));
            }
        })
    }

    /// Platforms: at most [`crate::limits::MAX_PLATFORMS`], each valid, none twice.
    fn platforms(&self, k: &str) -> Result<Option<Vec<String>>, InputError> {
        let Some(list) = self.str_list(k)? else {
            return Ok(None);
        };
        let max = crate::limits::MAX_PLATFORMS;
        if list.len() > max {
            return Err(self.err(k, format!("{} platforms: at most {max}", list.len())));
        }
        let mut seen = BTreeSet::new();
        for x in &list {
            oci::parse_platform(x).map_err(|e| self.err(k, e))?;
            if !seen.insert(x) {
                return Err(self.err(k, format!("{x:?} is listed twice")));
            }
        }
        Ok(Some(list))
    }
}

impl InputError {
    fn with_key(mut self, key: String) -> InputError {
        self.key = Some(key);
        self
    }
}

/// Parses an operations file. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<OpsFile, InputError> {
    parse_with(file, text, Digests::AsSent)
}

/// [`parse`], choosing what a malformed digest is.
pub fn parse_with(file: &str, text: &str, digests: Digests) -> Result<OpsFile, InputError> {
    let src = Source { file, text };
    let doc = read_doc(src)?;
    let semantics = match &doc.containerd {
        None => Semantics::default(),
        Some(s) => s
            .get_ref()
            .parse()
            .map_err(|e| src.top_err(Some(s.span()), Some("containerd"), e))?,
    };
    let entries = entries(src, &doc.op, digests)?;
    Ok(OpsFile { semantics, entries })
}

/// The document of an ops file: its size, its TOML, its top-level keys (each error with its line).
fn read_doc(src: Source) -> Result<OpsDoc, InputError> {
    let max = crate::limits::MAX_FILE_BYTES;
    if src.text.len() as u64 > max {
        let n = src.text.len();
        return Err(src.top_err(None, None, format!("{n} bytes: at most {max}")));
    }
    let invalid = |e: toml::de::Error| {
        let why = format!("invalid TOML: {}", e.message().trim());
        src.top_err(e.span(), None, why)
    };
    let root = toml::de::DeTable::parse(src.text).map_err(invalid)?;
    let mut keys: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for (k, _) in root.get_ref().iter() {
        if !TOP_KEYS.contains(&k.get_ref().as_ref()) {
            let why = "unknown top-level key; expected `containerd` or `[[op]]` entries";
            return Err(src.top_err(Some(k.span()), Some(k.get_ref()), why.into()));
        }
        keys.push((k.get_ref().to_string(), k.span()));
    }
    keys.sort_by_key(|(_, s)| s.start);
    OpsDoc::deserialize(toml::de::Deserializer::from(root)).map_err(|e| {
        // The key whose value holds the error: the last one before it.
        let at = e.span().map_or(0, |s| s.start);
        let key = keys
            .iter()
            .rev()
            .find(|(_, s)| s.start <= at)
            .map(|(k, _)| k.as_str());
        let why = match key {
            Some("op") => format!("expected [[op]] tables: {}", e.message().trim()),
            _ => e.message().trim().to_string(),
        };
        src.top_err(e.span(), key, why)
    })
}

/// The entries of a list of op tables (an ops file's `[[op]]`s, a scenario actor's `ops`), in
/// order; `src` is the text the tables' spans index.
pub fn entries(
    src: Source,
    ops: &[Spanned<OpTable>],
    digests: Digests,
) -> Result<Vec<Entry>, InputError> {
    let max = crate::limits::MAX_OPS;
    if ops.len() > max {
        let why = format!("{} operations: at most {max}", ops.len());
        return Err(src.top_err(Some(ops[max].span()), Some("op"), why));
    }
    let mut names: BTreeMap<String, Digest> = BTreeMap::new();
    let mut entries = Vec::new();
    for (i, t) in ops.iter().enumerate() {
        let (entry, bind) = entry(src, i, t, &names, digests)?;
        if let Some((name, d)) = bind {
            names.insert(name, d);
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One op table: its name from [`OPS`], its keys checked against the spec, its action built.
/// Returns the entry and the name it binds with `as`.
fn entry(
    src: Source,
    op: usize,
    t: &Spanned<OpTable>,
    names: &BTreeMap<String, Digest>,
    digests: Digests,
) -> Result<(Entry, Option<(String, Digest)>), InputError> {
    let mut k = OpKeys {
        t,
        src,
        op,
        ctx: Ctx::default(),
        names,
        digests,
    };
    let name = k.str("op")?;
    let spec = OPS.iter().find(|s| s.name == name).ok_or_else(|| {
        k.err(
            "op",
            format!(
                "unknown operation {name:?}; expected one of: {}",
                op_names()
            ),
        )
    })?;
    if let Some(key) = t.get_ref().keys().find(|key| {
        !COMMON_KEYS.contains(&key.get_ref().as_str())
            && !spec.keys.contains(&key.get_ref().as_str())
    }) {
        let expected: Vec<&str> = spec.keys.iter().chain(&COMMON_KEYS[1..]).copied().collect();
        let why = format!(
            "unknown key for {name}; expected one of: {}",
            expected.join(", ")
        );
        return Err(k.err(key.get_ref(), why));
    }
    let namespace = k
        .opt_str("namespace")?
        .unwrap_or_else(|| "default".to_string());
    if namespace.is_empty() {
        return Err(k.err("namespace", "must not be empty"));
    }
    k.ctx = Ctx {
        namespace,
        lease: k.opt_str("lease")?,
    };
    let built = (spec.build)(&k)?;
    let bind = match (k.opt_str("as")?, built.binds) {
        (Some(a), Some(d)) => Some((a, d)),
        _ => None,
    };
    let entry = Entry {
        line: src.line(t.span()),
        name,
        action: built.action,
    };
    Ok((entry, bind))
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

/// An operation as an `[[op]]` table of this format: the inverse of its builder in [`OPS`], so
/// `pushrace record` can write the calls it saw in the vocabulary a scenario's `ops` actor reads.
/// `Err` for what the format cannot hold: written data that is not UTF-8 text.
pub fn op_table(op: &Op) -> Result<toml::Table, String> {
    let mut t = Table(toml::Table::new());
    t.str("op", op.kind.name());
    if op.ctx.namespace != Ctx::default().namespace {
        t.str("namespace", &op.ctx.namespace);
    }
    if let Some(l) = &op.ctx.lease {
        t.str("lease", l);
    }
    let data = |d: &Bytes| {
        std::str::from_utf8(d).map(str::to_string).map_err(|_| {
            format!(
                "{op}: {} bytes of binary data (an ops table holds text)",
                d.len()
            )
        })
    };
    match &op.kind {
        OpKind::ContentWrite {
            r,
            data: d,
            expected,
            labels,
            style,
        } => {
            t.str("ref", r);
            t.str("data", &data(d)?);
            t.opt_str("expected", expected.as_ref().map(Digest::as_str));
            t.labels("labels", Some(labels));
            let style = match style {
                WriteStyle::Open => "open",
                WriteStyle::Commit => "commit",
            };
            t.str("style", style);
        }
        OpKind::IngestOpen {
            r,
            data: d,
            expected,
        } => {
            t.str("ref", r);
            t.str("data", &data(d)?);
            t.opt_str("expected", expected.as_ref().map(Digest::as_str));
        }
        kind => kind_keys(&mut t, kind),
    }
    Ok(t.0)
}

/// The keys of every operation but the two that carry data.
fn kind_keys(t: &mut Table, kind: &OpKind) {
    match kind {
        OpKind::IngestAbort { r } => t.str("ref", r),
        OpKind::ContentInfo { digest } | OpKind::ContentDelete { digest } => {
            t.str("digest", digest)
        }
        OpKind::ContentRead {
            digest,
            offset,
            len,
        } => {
            t.str("digest", digest);
            t.int("offset", Some(*offset as i64));
            t.int("length", len.map(|n| n as i64));
        }
        OpKind::ContentLabel { digest, labels } => {
            t.str("digest", digest);
            t.0.insert("labels".into(), label_table(labels));
        }
        OpKind::ImageCreate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            t.str("name", name);
            t.str("media_type", media_type);
            t.str("target", target);
            t.int("size", *size);
            t.labels("labels", Some(labels));
        }
        OpKind::ImageUpdate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            t.str("name", name);
            t.opt_str("media_type", media_type.as_deref());
            t.opt_str("target", target.as_deref());
            t.int("size", *size);
            if let Some(l) = labels {
                t.0.insert("labels".into(), label_table(l));
            }
        }
        OpKind::ImageDelete { name, sync } => {
            t.str("name", name);
            t.bool("sync", *sync);
        }
        OpKind::ImageGet { name } => t.str("name", name),
        kind => lease_keys(t, kind),
    }
}

fn lease_keys(t: &mut Table, kind: &OpKind) {
    match kind {
        OpKind::LeaseCreate {
            id,
            expire,
            flat,
            labels,
        } => {
            t.str("id", id);
            t.opt_str("expire", expire.map(|e| e.to_string()).as_deref());
            t.bool("flat", *flat);
            t.labels("labels", Some(labels));
        }
        OpKind::LeaseAdd { id, resource } | OpKind::LeaseRemove { id, resource } => {
            t.str("id", id);
            let (ty, r) = match resource {
                Resource::Content(r) => ("content", r),
                Resource::Ingest(r) => ("ingests", r),
                Resource::Image(r) => ("images", r),
            };
            t.str("type", ty);
            t.str("resource", r);
        }
        OpKind::LeaseDelete { id, sync } => {
            t.str("id", id);
            t.bool("sync", *sync);
        }
        OpKind::ClockAdvance { by } => t.str("by", &by.to_string()),
        _ => {}
    }
}

/// An `[[op]]` table being written.
struct Table(toml::Table);

impl Table {
    fn str(&mut self, k: &str, v: &str) {
        self.0.insert(k.into(), toml::Value::String(v.into()));
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }
    fn int(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.0.insert(k.into(), toml::Value::Integer(v));
        }
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.0.insert(k.into(), toml::Value::Boolean(v));
    }
    /// Non-empty labels (an empty table is what the builder assumes when the key is absent).
    fn labels(&mut self, k: &str, v: Option<&Labels>) {
        if let Some(l) = v.filter(|l| !l.is_empty()) {
            self.0.insert(k.into(), label_table(l));
        }
    }
}

fn label_table(l: &Labels) -> toml::Value {
    let t = l
        .iter()
        .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())));
    toml::Value::Table(t.collect())
}
