//! Operations as values. A trace, a replay, `pushrace apply` and the differential tests against a
//! real daemon all speak this one language: each `Op` is one client call (one RPC, or for
//! `content.write` one whole `WriteBlob`), applied atomically by `Store::apply`.

use crate::clock::Duration;
use crate::content::{ContentInfo, WriteStyle};
use crate::digest::{short, ByText, Digest};
use crate::errors::Error;
use crate::gc::GcReport;
use crate::images::ImageUpdate;
use crate::labels::Labels;
use crate::leases::{lease_labels, Resource};
use crate::store::{Bytes, Ctx, Descriptor, Image, Lease, Store};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Op {
    pub ctx: Ctx,
    pub kind: OpKind,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OpKind {
    /// Write `data` under ingest `r` and commit it (see `Store::write_blob`).
    ContentWrite {
        r: String,
        data: Bytes,
        expected: Option<Digest>,
        labels: Labels,
        style: WriteStyle,
    },
    /// Open a writer (optionally declaring a digest), write `data`, close without committing.
    IngestOpen {
        r: String,
        data: Bytes,
        expected: Option<Digest>,
    },
    IngestAbort {
        r: String,
    },
    ContentInfo {
        digest: String,
    },
    /// One read RPC: `len` bytes at `offset` (None: to the end).
    ContentRead {
        digest: String,
        offset: u64,
        len: Option<u64>,
    },
    ContentLabel {
        digest: String,
        labels: Labels,
    },
    ContentDelete {
        digest: String,
    },
    ContentWalk,
    /// `size: None` takes the size of the namespace's record for the target digest (1 if none).
    ImageCreate {
        name: String,
        media_type: String,
        target: String,
        size: Option<i64>,
        labels: Labels,
    },
    ImageUpdate {
        name: String,
        media_type: Option<String>,
        target: Option<String>,
        size: Option<i64>,
        labels: Option<Labels>,
    },
    ImageDelete {
        name: String,
        sync: bool,
    },
    ImageGet {
        name: String,
    },
    ImageList,
    LeaseCreate {
        id: String,
        expire: Option<Duration>,
        flat: bool,
        labels: Labels,
    },
    LeaseAdd {
        id: String,
        resource: Resource,
    },
    /// leases.Manager `DeleteResource`.
    LeaseRemove {
        id: String,
        resource: Resource,
    },
    LeaseDelete {
        id: String,
        sync: bool,
    },
    LeaseList,
    GcRun,
    ClockAdvance {
        by: Duration,
    },
}

/// What a successful operation returns.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    Done,
    Written(Digest),
    Info(ContentInfo),
    Data(Bytes),
    Contents(Vec<ContentInfo>),
    Image(Image),
    Images(Vec<(String, Image)>),
    Leases(Vec<(String, Lease)>),
    Gc(GcReport),
}

impl OpKind {
    /// The `apply` vocabulary name (`content.write`, `image.delete`, …).
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::ContentWrite { .. } => "content.write",
            OpKind::IngestOpen { .. } => "ingest.open",
            OpKind::IngestAbort { .. } => "ingest.abort",
            OpKind::ContentInfo { .. } => "content.info",
            OpKind::ContentRead { .. } => "content.read",
            OpKind::ContentLabel { .. } => "content.label",
            OpKind::ContentDelete { .. } => "content.delete",
            OpKind::ContentWalk => "content.list",
            OpKind::ImageCreate { .. } => "image.create",
            OpKind::ImageUpdate { .. } => "image.update",
            OpKind::ImageDelete { .. } => "image.delete",
            OpKind::ImageGet { .. } => "image.get",
            OpKind::ImageList => "image.list",
            OpKind::LeaseCreate { .. } => "lease.create",
            OpKind::LeaseAdd { .. } => "lease.add",
            OpKind::LeaseRemove { .. } => "lease.remove",
            OpKind::LeaseDelete { .. } => "lease.delete",
            OpKind::LeaseList => "lease.list",
            OpKind::GcRun => "gc.run",
            OpKind::ClockAdvance { .. } => "clock.advance",
        }
    }
}

impl fmt::Display for Op {
    /// One short line for traces: `image.delete example.com/a:1 sync` (namespace and lease shown
    /// only when they are not the defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match &self.kind {
            OpKind::ContentWrite {
                data,
                style,
                expected,
                ..
            } => {
                // A label is formatted on every step: avoid hashing the data when the digest is known.
                match expected {
                    Some(d) => write!(f, " {}", short(d.as_str()))?,
                    None => write!(f, " {}", short(Digest::of(data).as_str()))?,
                }
                if *style == WriteStyle::Commit {
                    f.write_str(" digest-at-commit")?;
                }
            }
            OpKind::IngestOpen { r, .. } | OpKind::IngestAbort { r } => write!(f, " {r}")?,
            OpKind::ContentInfo { digest }
            | OpKind::ContentDelete { digest }
            | OpKind::ContentLabel { digest, .. } => write!(f, " {}", short(digest))?,
            OpKind::ContentRead {
                digest,
                offset,
                len,
            } => {
                write!(f, " {}", short(digest))?;
                if *offset != 0 || len.is_some() {
                    write!(
                        f,
                        " @{offset}+{}",
                        len.map_or("end".to_string(), |l| l.to_string())
                    )?;
                }
            }
            OpKind::ImageCreate { name, target, .. } => write!(f, " {name} -> {}", short(target))?,
            OpKind::ImageUpdate { name, target, .. } => {
                write!(f, " {name}")?;
                if let Some(t) = target {
                    write!(f, " -> {}", short(t))?;
                }
            }
            OpKind::ImageDelete { name, sync } => {
                write!(f, " {name}{}", if *sync { " sync" } else { "" })?
            }
            OpKind::ImageGet { name } => write!(f, " {name}")?,
            OpKind::LeaseCreate { id, .. } => write!(f, " {id}")?,
            OpKind::LeaseAdd { id, resource } | OpKind::LeaseRemove { id, resource } => {
                write!(f, " {id} {} {}", resource.type_name(), short(resource.id()))?
            }
            OpKind::LeaseDelete { id, sync } => {
                write!(f, " {id}{}", if *sync { " sync" } else { "" })?
            }
            OpKind::ClockAdvance { by } => write!(f, " {by}")?,
            OpKind::ContentWalk | OpKind::ImageList | OpKind::LeaseList | OpKind::GcRun => {}
        }
        if self.ctx.namespace != "default" {
            write!(f, " ns={}", self.ctx.namespace)?;
        }
        if let Some(l) = &self.ctx.lease {
            write!(f, " lease={l}")?;
        }
        Ok(())
    }
}

impl Store {
    /// Applies one operation atomically: the outcome, or containerd's error for it.
    pub fn apply(&mut self, op: &Op) -> Result<Outcome, Error> {
        let ctx = &op.ctx;
        // The content service validates the digest it is given before anything else.
        content_digest_check(&op.kind)?;
        // Every metadata call starts with namespaces.NamespaceRequired, which validates the name.
        if !matches!(op.kind, OpKind::ClockAdvance { .. } | OpKind::GcRun) {
            crate::store::validate_namespace(&ctx.namespace)?;
        }
        // contentserver Write checks the first message's ref before the metadata store sees it.
        if let OpKind::ContentWrite { r, .. } | OpKind::IngestOpen { r, .. } = &op.kind {
            if r.is_empty() {
                return Err(Error::raw(
                    crate::ErrorKind::InvalidArgument,
                    "first message must have a reference",
                ));
            }
        }
        match &op.kind {
            OpKind::ContentWrite {
                r,
                data,
                expected,
                labels,
                style,
            } => self
                .write_blob(ctx, r, data, expected.as_ref(), labels, *style)
                .map(Outcome::Written),
            OpKind::IngestOpen { r, data, expected } => {
                let mut w = self.writer_open(ctx, r, expected.as_ref(), 0)?;
                self.writer_write(&mut w, data)?;
                Ok(Outcome::Done)
            }
            OpKind::IngestAbort { r } => self.ingest_abort(ctx, r).map(|_| Outcome::Done),
            OpKind::ContentInfo { digest } => self.info(ctx, digest).map(Outcome::Info),
            OpKind::ContentRead {
                digest,
                offset,
                len,
            } => self.read(ctx, digest, *offset, *len).map(Outcome::Data),
            OpKind::ContentLabel { digest, labels } => {
                self.update_labels(ctx, digest, labels).map(Outcome::Info)
            }
            OpKind::ContentDelete { digest } => self.delete(ctx, digest).map(|_| Outcome::Done),
            OpKind::ContentWalk => Ok(Outcome::Contents(self.walk(ctx))),
            OpKind::ImageCreate {
                name,
                media_type,
                target,
                size,
                labels,
            } => {
                let size = size.unwrap_or_else(|| self.default_target_size(ctx, target));
                let target = Descriptor {
                    media_type: media_type.clone(),
                    digest: target.clone(),
                    size,
                };
                self.image_create(
                    ctx,
                    name,
                    Image {
                        target,
                        labels: labels.clone(),
                    },
                )
                .map(Outcome::Image)
            }
            OpKind::ImageUpdate {
                name,
                media_type,
                target,
                size,
                labels,
            } => {
                let target = match target {
                    None => None,
                    Some(t) => {
                        let current = self.image_get(ctx, name)?.target;
                        Some(Descriptor {
                            media_type: media_type.clone().unwrap_or(current.media_type),
                            digest: t.clone(),
                            size: size.unwrap_or_else(|| self.default_target_size(ctx, t)),
                        })
                    }
                };
                self.image_update(
                    ctx,
                    name,
                    ImageUpdate {
                        target,
                        labels: labels.clone(),
                    },
                )
                .map(Outcome::Image)
            }
            OpKind::ImageDelete { name, sync } => {
                self.image_delete(ctx, name, *sync).map(|_| Outcome::Done)
            }
            OpKind::ImageGet { name } => self.image_get(ctx, name).map(Outcome::Image),
            OpKind::ImageList => Ok(Outcome::Images(self.image_list(ctx))),
            OpKind::LeaseCreate {
                id,
                expire,
                flat,
                labels,
            } => {
                let labels = lease_labels(self.now, *expire, *flat, labels);
                self.lease_create(ctx, id, labels).map(|_| Outcome::Done)
            }
            OpKind::LeaseAdd { id, resource } => {
                self.lease_add(ctx, id, resource).map(|_| Outcome::Done)
            }
            OpKind::LeaseRemove { id, resource } => {
                self.lease_remove(ctx, id, resource).map(|_| Outcome::Done)
            }
            OpKind::LeaseDelete { id, sync } => {
                self.lease_delete(ctx, id, *sync).map(|_| Outcome::Done)
            }
            OpKind::LeaseList => Ok(Outcome::Leases(self.lease_list(ctx))),
            OpKind::GcRun => Ok(Outcome::Gc(self.gc())),
            OpKind::ClockAdvance { by } => {
                self.advance_clock(*by);
                Ok(Outcome::Done)
            }
        }
    }

    /// A client creating an image from a digest sends the size it knows; `apply` takes it from the
    /// namespace's record (and 1 for a dangling target, which containerd accepts).
    fn default_target_size(&self, ctx: &Ctx, digest: &str) -> i64 {
        self.namespaces
            .get(&ctx.namespace)
            .and_then(|n| n.content.get_text(digest))
            .map_or(1, |(_, r)| r.size as i64)
    }
}

/// services/content/contentserver (1.6.20): Info, Update, Delete and Read refuse a malformed digest
/// (go-digest `Validate`) with InvalidArgument and these exact messages, before the store is asked.
fn content_digest_check(kind: &OpKind) -> Result<(), Error> {
    let (d, message): (&str, fn(&str, &str) -> String) = match kind {
        OpKind::ContentInfo { digest } | OpKind::ContentLabel { digest, .. } => {
            (digest, |d, _| format!("{d:?} failed validation"))
        }
        OpKind::ContentDelete { digest } => (digest, |_, e| e.to_string()),
        OpKind::ContentRead { digest, .. } => (digest, |d, e| format!("{d}: {e}")),
        _ => return Ok(()),
    };
    match crate::digest::validate(d) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::raw(crate::ErrorKind::InvalidArgument, message(d, e))),
    }
}
