//! What a containerd gRPC call means to the model: its class (a scheduled step, a pass-through,
//! an unsupported call), the model's [`Op`] where one exists, and the step's label (the `Op`'s
//! Display, so a real call and the model's call print alike).
//!
//! The classes, by service (the list README.md "Real clients" repeats):
//! - steps: Content (Info, Update, List, Delete, Read, Status, ListStatuses, Write, Abort), Images
//!   (all), Leases (all), Namespaces Create/Update/Delete: they read or change metadata the model
//!   keeps;
//! - pass-through: Version, Introspection (Plugins, Server), Events, Namespaces List/Get: they touch
//!   no metadata the model keeps, so their order cannot change a verdict;
//! - unsupported: every other service (Snapshots, Diff, Containers, Tasks, Transfer, Sandbox, …):
//!   mutating calls the model does not know. Scheduled runs refuse them; pass-through logs them.

use containerd_client::services::v1 as api;
use prost::Message;
use pushrace_models::leases::Resource;
use pushrace_models::{Bytes, Ctx, Digest, Labels, Op, OpKind, WriteStyle};
use std::collections::HashMap;

/// How the interposer treats a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    Step,
    PassThrough,
    Unsupported,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Step => "step",
            Class::PassThrough => "pass-through",
            Class::Unsupported => "unsupported",
        }
    }
}

/// One decoded call.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub class: Class,
    /// The model's operation, when the model has one for this call (and the request decoded).
    pub op: Option<Op>,
    /// The step's label: the `Op`'s Display, else `service.rpc ARG` of our own.
    pub label: String,
}

/// The content service's `Write` method, as it arrives on the wire (the full gRPC path: what the
/// gates and the forwarder match, in this one place).
pub const CONTENT_WRITE: &str = "/containerd.services.content.v1.Content/Write";
/// The content service's `ListStatuses`: ctr polls it for its progress display only.
pub const CONTENT_LIST_STATUSES: &str = "/containerd.services.content.v1.Content/ListStatuses";

/// Whether `method` is `Content.Write` (a stream whose step nests the calls it waits for).
pub fn is_write(method: &str) -> bool {
    method == CONTENT_WRITE
}

/// Whether a call reaches a gate's schedule: a step-class call other than `Content.ListStatuses`
/// (polled on a timer for a progress display: how often depends on time, and nothing it answers
/// reaches a verdict).
pub fn scheduled(class: Class, method: &str) -> bool {
    class == Class::Step && method != CONTENT_LIST_STATUSES
}

/// Whether one answer message of a `Content.Write` stream answers its commit (containerd echoes
/// each request's action in its `WriteContentResponse`, and returns after answering a commit:
/// `services/content/contentserver/contentserver.go` Write): from then on the client has its
/// result and what it calls next is not part of the Write.
pub fn answers_commit(message: &[u8]) -> bool {
    api::WriteContentResponse::decode(message)
        .is_ok_and(|r| r.action == api::WriteAction::Commit as i32)
}

/// `/containerd.services.content.v1.Content/Info` → (`content`, `Info`).
pub fn split_method(path: &str) -> (String, String) {
    let path = path.trim_start_matches('/');
    let (svc, rpc) = path.split_once('/').unwrap_or((path, ""));
    let short = svc.rsplit('.').next().unwrap_or(svc).to_ascii_lowercase();
    (short, rpc.to_string())
}

/// The class of a method (by its path alone).
pub fn class_of(path: &str) -> Class {
    let (svc, rpc) = split_method(path);
    match (svc.as_str(), rpc.as_str()) {
        ("content" | "images" | "leases", _) => Class::Step,
        ("namespaces", "Create" | "Update" | "Delete") => Class::Step,
        ("namespaces", _) | ("version" | "introspection" | "events", _) => Class::PassThrough,
        _ => Class::Unsupported,
    }
}

fn labels(m: HashMap<String, String>) -> Labels {
    m.into_iter().collect()
}

fn expected(s: &str) -> Option<Digest> {
    Digest::parse(s).ok()
}

/// Decodes a call from its path, context and first request message (`None`: the request had no
/// message). A message that does not decode leaves `op` empty and says so in the label.
pub fn decode(path: &str, ctx: &Ctx, msg: Option<&[u8]>) -> Decoded {
    let class = class_of(path);
    let (svc, rpc) = split_method(path);
    let msg = msg.unwrap_or_default();
    let kind = match class {
        Class::Step => op_kind(&svc, &rpc, msg),
        _ => Ok(None),
    };
    let (op, label) = match kind {
        Ok(Some(kind)) => {
            let op = Op {
                ctx: ctx.clone(),
                kind,
            };
            let label = op.to_string();
            (Some(op), label)
        }
        Ok(None) => (None, own_label(&svc, &rpc, msg, ctx)),
        Err(e) => (None, format!("{svc}.{rpc} (undecodable: {e})")),
    };
    Decoded { class, op, label }
}

/// The model's operation for a call, if it has one.
fn op_kind(svc: &str, rpc: &str, m: &[u8]) -> Result<Option<OpKind>, prost::DecodeError> {
    Ok(Some(match (svc, rpc) {
        ("content", "Info") => OpKind::ContentInfo {
            digest: api::InfoRequest::decode(m)?.digest,
        },
        ("content", "Delete") => OpKind::ContentDelete {
            digest: api::DeleteContentRequest::decode(m)?.digest,
        },
        ("content", "Update") => {
            let info = api::UpdateRequest::decode(m)?.info.unwrap_or_default();
            OpKind::ContentLabel {
                digest: info.digest,
                labels: labels(info.labels),
            }
        }
        ("content", "List") => OpKind::ContentWalk,
        ("content", "Read") => {
            let r = api::ReadContentRequest::decode(m)?;
            OpKind::ContentRead {
                digest: r.digest,
                offset: r.offset.max(0) as u64,
                len: (r.size > 0).then_some(r.size as u64),
            }
        }
        ("content", "Abort") => OpKind::IngestAbort {
            r: api::AbortRequest::decode(m)?.r#ref,
        },
        ("images", _) => return image_kind(rpc, m),
        ("leases", _) => return lease_kind(rpc, m),
        _ => return Ok(None),
    }))
}

fn image_kind(rpc: &str, m: &[u8]) -> Result<Option<OpKind>, prost::DecodeError> {
    let target = |im: &api::Image| im.target.clone().unwrap_or_default();
    Ok(Some(match rpc {
        "Get" => OpKind::ImageGet {
            name: api::GetImageRequest::decode(m)?.name,
        },
        "List" => OpKind::ImageList,
        "Delete" => {
            let r = api::DeleteImageRequest::decode(m)?;
            OpKind::ImageDelete {
                name: r.name,
                sync: r.sync,
            }
        }
        "Create" => {
            let im = api::CreateImageRequest::decode(m)?
                .image
                .unwrap_or_default();
            let t = target(&im);
            OpKind::ImageCreate {
                name: im.name,
                media_type: t.media_type,
                target: t.digest,
                size: Some(t.size),
                labels: labels(im.labels),
            }
        }
        "Update" => {
            let im = api::UpdateImageRequest::decode(m)?
                .image
                .unwrap_or_default();
            let t = im.target.clone();
            OpKind::ImageUpdate {
                name: im.name,
                media_type: t.as_ref().map(|t| t.media_type.clone()),
                target: t.as_ref().map(|t| t.digest.clone()),
                size: t.as_ref().map(|t| t.size),
                labels: Some(labels(im.labels)),
            }
        }
        _ => return Ok(None),
    }))
}

fn resource(r: Option<api::Resource>) -> Resource {
    let r = r.unwrap_or_default();
    match r.r#type.as_str() {
        "content" => Resource::Content(r.id),
        "ingests" => Resource::Ingest(r.id),
        _ => Resource::Image(r.id),
    }
}

fn lease_kind(rpc: &str, m: &[u8]) -> Result<Option<OpKind>, prost::DecodeError> {
    Ok(Some(match rpc {
        "Create" => {
            let r = api::CreateRequest::decode(m)?;
            let labels = labels(r.labels);
            OpKind::LeaseCreate {
                id: r.id,
                // The instant is real time; the model's virtual expiry is not recoverable from it.
                expire: None,
                flat: labels.contains_key("containerd.io/gc.flat"),
                labels,
            }
        }
        "Delete" => {
            let r = api::DeleteRequest::decode(m)?;
            OpKind::LeaseDelete {
                id: r.id,
                sync: r.sync,
            }
        }
        "List" => OpKind::LeaseList,
        "AddResource" => {
            let r = api::AddResourceRequest::decode(m)?;
            OpKind::LeaseAdd {
                id: r.id,
                resource: resource(r.resource),
            }
        }
        "DeleteResource" => {
            let r = api::DeleteResourceRequest::decode(m)?;
            OpKind::LeaseRemove {
                id: r.id,
                resource: resource(r.resource),
            }
        }
        _ => return Ok(None),
    }))
}

/// The label of a call the model has no `Op` for: `service.rpc` in the model's lower-case style,
/// with its one identifying argument (and namespace and lease as `Op` prints them).
fn own_label(svc: &str, rpc: &str, m: &[u8], ctx: &Ctx) -> String {
    let arg = match (svc, rpc) {
        ("content", "Status") => api::StatusRequest::decode(m).ok().map(|r| r.r#ref),
        ("content", "Write") => write_ref(m),
        ("leases", "ListResources") => api::ListResourcesRequest::decode(m).ok().map(|r| r.id),
        ("namespaces", "Create") => api::CreateNamespaceRequest::decode(m)
            .ok()
            .and_then(|r| r.namespace.map(|n| n.name)),
        _ => None,
    };
    let name = match (svc, rpc) {
        ("content", "ListStatuses") => "content.list-statuses".to_string(),
        ("leases", "ListResources") => "lease.list-resources".to_string(),
        _ => format!("{}.{}", model_service(svc), rpc.to_ascii_lowercase()),
    };
    let mut label = match arg {
        Some(a) => format!("{name} {a}"),
        None => name,
    };
    if svc != "namespaces" && ctx.namespace != "default" {
        label.push_str(&format!(" ns={}", ctx.namespace));
    }
    if let Some(l) = &ctx.lease {
        label.push_str(&format!(" lease={l}"));
    }
    label
}

/// The model's service word: `image.`, `lease.`, `namespace.` (singular, as `Op` names them).
fn model_service(svc: &str) -> &str {
    match svc {
        "images" => "image",
        "leases" => "lease",
        "namespaces" => "namespace",
        s => s,
    }
}

fn write_ref(m: &[u8]) -> Option<String> {
    api::WriteContentRequest::decode(m).ok().map(|r| r.r#ref)
}

/// A `Content.Write` stream seen whole: what its messages said, so that its label and its
/// [`OpKind::ContentWrite`] are known at its end (a converter's write names its digest only at
/// commit).
#[derive(Clone, Debug, Default)]
pub struct WriteTap {
    pub r: String,
    /// The digest the first message declared (`content.WriteBlob`: [`WriteStyle::Open`]).
    pub declared: Option<Digest>,
    /// The digest the commit message gave.
    pub at_commit: Option<Digest>,
    pub committed: bool,
    pub labels: Labels,
    pub data: Vec<u8>,
    pub messages: usize,
}

impl WriteTap {
    /// Takes in one request message of the stream.
    pub fn request(&mut self, m: &[u8]) {
        let Ok(w) = api::WriteContentRequest::decode(m) else {
            return;
        };
        if self.messages == 0 {
            self.r = w.r#ref.clone();
            self.declared = expected(&w.expected);
        }
        self.messages += 1;
        self.data.extend_from_slice(&w.data);
        if w.action == api::WriteAction::Commit as i32 {
            self.committed = true;
            self.at_commit = expected(&w.expected);
            self.labels = labels(w.labels);
        }
    }

    /// The model's operation for the stream: a committed write is `content.write`, an uncommitted
    /// one `ingest.open` (a writer opened, written to and left).
    pub fn op(&self, ctx: &Ctx) -> Op {
        let data: Bytes = self.data.as_slice().into();
        let kind = match self.committed {
            true => OpKind::ContentWrite {
                r: self.r.clone(),
                data,
                expected: self.declared.clone().or_else(|| self.at_commit.clone()),
                labels: self.labels.clone(),
                style: match self.declared {
                    Some(_) => WriteStyle::Open,
                    None => WriteStyle::Commit,
                },
            },
            false => OpKind::IngestOpen {
                r: self.r.clone(),
                data,
                expected: self.declared.clone(),
            },
        };
        Op {
            ctx: ctx.clone(),
            kind,
        }
    }
}
