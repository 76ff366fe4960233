//! A typed async client of containerd's content, images, leases and namespaces services.
//!
//! It speaks the model's vocabulary ([`pushrace_models`]): every call takes the model's [`Ctx`], blobs
//! are named by [`Digest`], records come back as the model's [`ContentInfo`] and [`Image`], and a
//! lease's resources as the dump's [`ResourceState`]. Only what the model has no word for is defined
//! here: [`CdError`], [`WriteRequest`] / [`Written`], [`IngestStatus`] and [`Lease`] (a listed lease
//! without its resources).
//!
//! Every call takes a [`Ctx`]: the namespace (sent as the `containerd-namespace` gRPC header) and an
//! optional lease (the `containerd-lease` header), the two things a Go client carries in its context.
//! Errors come back as [`CdError`] with the gRPC status message exactly as containerd sent it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::version_client::VersionClient;
use pushrace_models::leases::Resource;
use pushrace_models::state::{
    ContentState, ImageState, IngestState, LeaseState, NamespaceState, ResourceState, State,
};
use pushrace_models::{ContentInfo, Ctx, Descriptor, Digest, Image, Labels, WriteStyle};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// gRPC header carrying the namespace (containerd `namespaces/grpc.go`).
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// gRPC header carrying the context lease (containerd `leases/grpc.go`).
pub const LEASE_HEADER: &str = "containerd-lease";

/// One write is sent in chunks of this size, like Go's `content.Copy` (1 MiB buffers).
pub const WRITE_CHUNK: usize = 1 << 20;

/// An error from containerd, carrying the gRPC status message exactly as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdError {
    NotFound(String),
    AlreadyExists(String),
    FailedPrecondition(String),
    InvalidArgument(String),
    Unavailable(String),
    /// Any other gRPC code (name as `tonic::Code` prints it) and its message.
    Other {
        code: String,
        message: String,
    },
}

impl CdError {
    /// containerd's message text.
    pub fn message(&self) -> &str {
        match self {
            CdError::NotFound(m)
            | CdError::AlreadyExists(m)
            | CdError::FailedPrecondition(m)
            | CdError::InvalidArgument(m)
            | CdError::Unavailable(m) => m,
            CdError::Other { message, .. } => message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CdError::NotFound(_))
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, CdError::AlreadyExists(_))
    }

    pub fn from_status(s: &Status) -> CdError {
        let m = s.message().to_string();
        match s.code() {
            Code::NotFound => CdError::NotFound(m),
            Code::AlreadyExists => CdError::AlreadyExists(m),
            Code::FailedPrecondition => CdError::FailedPrecondition(m),
            Code::InvalidArgument => CdError::InvalidArgument(m),
            Code::Unavailable => CdError::Unavailable(m),
            c => CdError::Other {
                code: format!("{c:?}"),
                message: m,
            },
        }
    }
}

impl From<Status> for CdError {
    fn from(s: Status) -> Self {
        CdError::from_status(&s)
    }
}

impl std::fmt::Display for CdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            CdError::NotFound(_) => "NotFound",
            CdError::AlreadyExists(_) => "AlreadyExists",
            CdError::FailedPrecondition(_) => "FailedPrecondition",
            CdError::InvalidArgument(_) => "InvalidArgument",
            CdError::Unavailable(_) => "Unavailable",
            CdError::Other { code, .. } => code,
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for CdError {}

/// A blob write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteRequest {
    pub data: Vec<u8>,
    pub style: WriteStyle,
    /// Ingest ref; default `pushrace-<style>-<digest of data>`.
    pub reference: Option<String>,
    /// Labels set by the commit message.
    pub labels: Labels,
    /// The digest to declare; default: the sha256 of `data`. A different value makes the commit fail
    /// (`unexpected commit digest …: failed precondition`), returned as is.
    pub expected: Option<Digest>,
}

impl WriteRequest {
    pub fn new(data: impl Into<Vec<u8>>, style: WriteStyle) -> WriteRequest {
        WriteRequest {
            data: data.into(),
            style,
            ..Default::default()
        }
    }

    pub fn labels(mut self, labels: Labels) -> WriteRequest {
        self.labels = labels;
        self
    }

    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> WriteRequest {
        self.labels.insert(k.into(), v.into());
        self
    }

    pub fn reference(mut self, r: impl Into<String>) -> WriteRequest {
        self.reference = Some(r.into());
        self
    }

    pub fn expected(mut self, d: Digest) -> WriteRequest {
        self.expected = Some(d);
        self
    }
}

/// The result of a successful write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The digest declared (the expected one).
    pub digest: Digest,
    pub size: u64,
    /// Some(server message) when the server answered AlreadyExists and the write was treated as success
    /// (`content sha256:…: already exists` for Open, `blob with expected digest … exists` for Commit).
    pub already_exists: Option<String>,
}

/// An ingest (open writer) as ListStatuses / Status report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    pub reference: String,
    pub offset: i64,
    pub total: i64,
    /// As sent by the server; containerd 1.6.20 leaves it empty (see PROBES.md).
    pub expected: String,
}

/// A lease as Create and List answer it: id and labels. (The model's lease carries its resources;
/// the daemon lists those with a separate call, [`DaemonClient::list_lease_resources`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub labels: Labels,
}

// ---------------------------------------------------------------- the JSON state (issue 2, item 3)

// The dump is the model's own state type (`pushrace_models::state`), so a daemon dump and a model
// dump compare with `==` and print through the same code.

/// Conveniences on the shared state type for tests and the CLI.
pub trait StateExt {
    /// The JSON value (keys sorted).
    fn to_json(&self) -> serde_json::Value;
    fn namespace(&self, ns: &str) -> Option<&NamespaceState>;
    fn has_blob(&self, digest: &str) -> bool;
}

impl StateExt for State {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("state serialises")
    }

    fn namespace(&self, ns: &str) -> Option<&NamespaceState> {
        self.namespaces.get(ns)
    }

    fn has_blob(&self, digest: &str) -> bool {
        self.blobs.iter().any(|b| b == digest)
    }
}

/// Is a namespace dump empty (left out of the state, like the model does)?
fn namespace_is_empty(n: &NamespaceState) -> bool {
    n.content.is_empty() && n.images.is_empty() && n.leases.is_empty() && n.ingests.is_empty()
}

/// The order the model lists a lease's resources in (`Lease::resources`: content, ingests, images;
/// ids sorted within a type).
fn resource_rank(kind: &str) -> u8 {
    match kind {
        "content" => 0,
        "ingests" => 1,
        "images" => 2,
        _ => 3,
    }
}

// ---------------------------------------------------------------- helpers

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{:x}", std::process::id(), t & 0xffff_ffff)
}

fn to_labels(m: std::collections::HashMap<String, String>) -> Labels {
    m.into_iter().collect()
}

fn to_hash(l: &Labels) -> std::collections::HashMap<String, String> {
    l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

// ---------------------------------------------------------------- the client

/// An async client of one containerd (cheap to clone: one shared HTTP/2 channel).
#[derive(Clone, Debug)]
pub struct DaemonClient {
    channel: Channel,
    root: Option<PathBuf>,
}

impl DaemonClient {
    /// Connects to the gRPC socket. `root` is containerd's root dir when known (needed by
    /// [`DaemonClient::dump_state`] to list the backend's blob files).
    pub async fn connect(
        socket: impl Into<PathBuf>,
        root: Option<PathBuf>,
    ) -> Result<Self, CdError> {
        let socket = socket.into();
        let channel = containerd_client::connect(&socket).await.map_err(|e| {
            CdError::Unavailable(format!("connecting to {}: {e}", socket.display()))
        })?;
        Ok(DaemonClient { channel, root })
    }

    /// containerd's root dir, if known.
    pub fn root(&self) -> Option<&PathBuf> {
        self.root.as_ref()
    }

    fn req<T>(&self, ctx: &Ctx, msg: T) -> Result<Request<T>, CdError> {
        let mut r = Request::new(msg);
        let ns = MetadataValue::try_from(ctx.namespace.as_str()).map_err(|_| {
            CdError::InvalidArgument(format!(
                "namespace {:?} is not a valid header value",
                ctx.namespace
            ))
        })?;
        r.metadata_mut().insert(NAMESPACE_HEADER, ns);
        if let Some(l) = &ctx.lease {
            let v = MetadataValue::try_from(l.as_str()).map_err(|_| {
                CdError::InvalidArgument(format!("lease {l:?} is not a valid header value"))
            })?;
            r.metadata_mut().insert(LEASE_HEADER, v);
        }
        Ok(r)
    }

    fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }
    fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }

    /// containerd's version string (e.g. `1.6.20~ds1`).
    pub async fn version(&self) -> Result<String, CdError> {
        let r = VersionClient::new(self.channel.clone()).version(()).await?;
        Ok(r.into_inner().version)
    }

    /// The namespaces the daemon knows (every namespace a write ever touched), sorted.
    pub async fn namespaces(&self) -> Result<Vec<String>, CdError> {
        let r = NamespacesClient::new(self.channel.clone())
            .list(api::ListNamespacesRequest {
                filter: String::new(),
            })
            .await?;
        let mut v: Vec<String> = r
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect();
        v.sort();
        Ok(v)
    }

    // ------------------------------------------------------------ content

    /// Writes a blob in the given style. AlreadyExists answers are success (`already_exists` says so).
    pub async fn write_blob(&self, ctx: &Ctx, w: &WriteRequest) -> Result<Written, CdError> {
        let digest = w.expected.clone().unwrap_or_else(|| Digest::of(&w.data));
        let size = w.data.len() as i64;
        let style = match w.style {
            WriteStyle::Open => "open",
            WriteStyle::Commit => "commit",
        };
        let reference = w
            .reference
            .clone()
            .unwrap_or_else(|| format!("pushrace-{style}-{digest}"));
        let (open_total, open_expected) = match w.style {
            WriteStyle::Open => (size, digest.to_string()),
            WriteStyle::Commit => (0, String::new()),
        };
        let mut s =
            match WriteSession::open(self, ctx, &reference, open_total, &open_expected).await {
                Ok(s) => s,
                Err(e @ CdError::AlreadyExists(_)) => {
                    return Ok(Written {
                        digest,
                        size: size as u64,
                        already_exists: Some(e.message().to_string()),
                    })
                }
                Err(e) => return Err(e),
            };
        let result = async {
            // content.Copy: Status first, then resume from the ingest's offset.
            let st = s.send(stat()).await?;
            let mut offset = st.offset;
            let start = (offset.max(0) as usize).min(w.data.len());
            for chunk in w.data[start..].chunks(WRITE_CHUNK) {
                let r = s
                    .send(api::WriteContentRequest {
                        action: api::WriteAction::Write as i32,
                        offset,
                        data: chunk.to_vec(),
                        ..Default::default()
                    })
                    .await?;
                offset = r.offset;
            }
            s.send(api::WriteContentRequest {
                action: api::WriteAction::Commit as i32,
                total: size,
                offset,
                expected: digest.to_string(),
                labels: to_hash(&w.labels),
                ..Default::default()
            })
            .await?;
            Ok::<_, CdError>(())
        }
        .await;
        s.close().await;
        match result {
            Ok(()) => Ok(Written {
                digest,
                size: size as u64,
                already_exists: None,
            }),
            Err(e @ CdError::AlreadyExists(_)) => Ok(Written {
                digest,
                size: size as u64,
                already_exists: Some(e.message().to_string()),
            }),
            Err(e) => Err(e),
        }
    }

    /// Opens an ingest `reference` and leaves it uncommitted: declares `expected` (digest, size) when
    /// given, writes `data` when not empty, then closes the stream. Returns the ingest's offset.
    /// An `expected` digest the namespace already has answers AlreadyExists (returned as an error here).
    pub async fn open_ingest(
        &self,
        ctx: &Ctx,
        reference: &str,
        expected: Option<(&str, i64)>,
        data: &[u8],
    ) -> Result<i64, CdError> {
        let (total, exp) = expected
            .map(|(d, s)| (s, d.to_string()))
            .unwrap_or((0, String::new()));
        let mut s = WriteSession::open(self, ctx, reference, total, &exp).await?;
        let mut offset = s.first.offset;
        let result = async {
            for chunk in data.chunks(WRITE_CHUNK) {
                let r = s
                    .send(api::WriteContentRequest {
                        action: api::WriteAction::Write as i32,
                        offset,
                        data: chunk.to_vec(),
                        ..Default::default()
                    })
                    .await?;
                offset = r.offset;
            }
            Ok::<_, CdError>(offset)
        }
        .await;
        s.close().await;
        result
    }

    /// Aborts an ingest.
    pub async fn abort_ingest(&self, ctx: &Ctx, reference: &str) -> Result<(), CdError> {
        self.content()
            .abort(self.req(
                ctx,
                api::AbortRequest {
                    r#ref: reference.to_string(),
                },
            )?)
            .await?;
        Ok(())
    }

    /// Status of one ingest.
    pub async fn ingest_status(&self, ctx: &Ctx, reference: &str) -> Result<IngestStatus, CdError> {
        let r = self
            .content()
            .status(self.req(
                ctx,
                api::StatusRequest {
                    r#ref: reference.to_string(),
                },
            )?)
            .await?;
        let s = r.into_inner().status.unwrap_or_default();
        Ok(IngestStatus {
            reference: s.r#ref,
            offset: s.offset,
            total: s.total,
            expected: s.expected,
        })
    }

    /// Every ingest the namespace shows (ListStatuses), sorted by ref.
    pub async fn list_ingests(&self, ctx: &Ctx) -> Result<Vec<IngestStatus>, CdError> {
        let r = self
            .content()
            .list_statuses(self.req(ctx, api::ListStatusesRequest { filters: vec![] })?)
            .await?;
        let mut v: Vec<IngestStatus> = r
            .into_inner()
            .statuses
            .into_iter()
            .map(|s| IngestStatus {
                reference: s.r#ref,
                offset: s.offset,
                total: s.total,
                expected: s.expected,
            })
            .collect();
        v.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(v)
    }

    /// Content Info.
    pub async fn info(&self, ctx: &Ctx, digest: &str) -> Result<ContentInfo, CdError> {
        let r = self
            .content()
            .info(self.req(
                ctx,
                api::InfoRequest {
                    digest: digest.to_string(),
                },
            )?)
            .await?;
        info_from(r.into_inner().info.unwrap_or_default())
    }

    /// The whole blob, one Read RPC (offset 0, size 0 = to the end).
    pub async fn read(&self, ctx: &Ctx, digest: &str) -> Result<Vec<u8>, CdError> {
        self.read_at(ctx, digest, 0, 0).await
    }

    /// `size` bytes from `offset` (size 0 = to the end), one Read RPC, like a ReaderAt's ReadAt.
    pub async fn read_at(
        &self,
        ctx: &Ctx,
        digest: &str,
        offset: i64,
        size: i64,
    ) -> Result<Vec<u8>, CdError> {
        let mut stream = self
            .content()
            .read(self.req(
                ctx,
                api::ReadContentRequest {
                    digest: digest.to_string(),
                    offset,
                    size,
                },
            )?)
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream.message().await? {
            out.extend_from_slice(&m.data);
        }
        Ok(out)
    }

    /// Sets labels (fieldpaths `labels.<key>`); an empty value removes that label. Returns the new info.
    pub async fn update_labels(
        &self,
        ctx: &Ctx,
        digest: &str,
        labels: &Labels,
    ) -> Result<ContentInfo, CdError> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let info = api::Info {
            digest: digest.to_string(),
            labels: labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        };
        let r = self
            .content()
            .update(self.req(
                ctx,
                api::UpdateRequest {
                    info: Some(info),
                    update_mask: Some(prost_types::FieldMask { paths }),
                },
            )?)
            .await?;
        info_from(r.into_inner().info.unwrap_or_default())
    }

    /// Deletes the content record in this namespace (bytes stay until the next GC).
    pub async fn delete_content(&self, ctx: &Ctx, digest: &str) -> Result<(), CdError> {
        self.content()
            .delete(self.req(
                ctx,
                api::DeleteContentRequest {
                    digest: digest.to_string(),
                },
            )?)
            .await?;
        Ok(())
    }

    /// Every content record of the namespace (Walk), sorted by digest.
    pub async fn list_content(&self, ctx: &Ctx) -> Result<Vec<ContentInfo>, CdError> {
        let mut stream = self
            .content()
            .list(self.req(ctx, api::ListContentRequest { filters: vec![] })?)
            .await?
            .into_inner();
        let mut v = Vec::new();
        while let Some(m) = stream.message().await? {
            for i in m.info {
                v.push(info_from(i)?);
            }
        }
        v.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(v)
    }

    // ------------------------------------------------------------ images

    /// Creates image `name`; answers the record as the server stored it (name and image).
    pub async fn create_image(
        &self,
        ctx: &Ctx,
        name: &str,
        image: &Image,
    ) -> Result<(String, Image), CdError> {
        let r = self
            .images()
            .create(self.req(
                ctx,
                api::CreateImageRequest {
                    image: Some(image_to(name, image)),
                    source_date_epoch: None,
                },
            )?)
            .await?;
        Ok(image_from(r.into_inner().image.unwrap_or_default()))
    }

    /// Updates the named fields (`target`, `labels`, `labels.<key>`; empty = everything).
    pub async fn update_image(
        &self,
        ctx: &Ctx,
        name: &str,
        image: &Image,
        fieldpaths: &[&str],
    ) -> Result<(String, Image), CdError> {
        let mask = if fieldpaths.is_empty() {
            None
        } else {
            Some(prost_types::FieldMask {
                paths: fieldpaths.iter().map(|s| s.to_string()).collect(),
            })
        };
        let r = self
            .images()
            .update(self.req(
                ctx,
                api::UpdateImageRequest {
                    image: Some(image_to(name, image)),
                    update_mask: mask,
                    source_date_epoch: None,
                },
            )?)
            .await?;
        Ok(image_from(r.into_inner().image.unwrap_or_default()))
    }

    /// Deletes an image; with `sync` the server runs a full GC before answering.
    pub async fn delete_image(&self, ctx: &Ctx, name: &str, sync: bool) -> Result<(), CdError> {
        self.images()
            .delete(self.req(
                ctx,
                api::DeleteImageRequest {
                    name: name.to_string(),
                    sync,
                    target: None,
                },
            )?)
            .await?;
        Ok(())
    }

    pub async fn get_image(&self, ctx: &Ctx, name: &str) -> Result<(String, Image), CdError> {
        let r = self
            .images()
            .get(self.req(
                ctx,
                api::GetImageRequest {
                    name: name.to_string(),
                },
            )?)
            .await?;
        Ok(image_from(r.into_inner().image.unwrap_or_default()))
    }

    /// Every image of the namespace, sorted by name (the shape of the model's `image.list`).
    pub async fn list_images(&self, ctx: &Ctx) -> Result<Vec<(String, Image)>, CdError> {
        let r = self
            .images()
            .list(self.req(ctx, api::ListImagesRequest { filters: vec![] })?)
            .await?;
        let mut v: Vec<(String, Image)> =
            r.into_inner().images.into_iter().map(image_from).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }

    // ------------------------------------------------------------ leases

    pub async fn create_lease(
        &self,
        ctx: &Ctx,
        id: &str,
        labels: &Labels,
    ) -> Result<Lease, CdError> {
        let r = self
            .leases()
            .create(self.req(
                ctx,
                api::CreateRequest {
                    id: id.to_string(),
                    labels: to_hash(labels),
                },
            )?)
            .await?;
        let l = r.into_inner().lease.unwrap_or_default();
        Ok(Lease {
            id: l.id,
            labels: to_labels(l.labels),
        })
    }

    pub async fn add_lease_resource(
        &self,
        ctx: &Ctx,
        lease: &str,
        res: &Resource,
    ) -> Result<(), CdError> {
        self.leases()
            .add_resource(self.req(
                ctx,
                api::AddResourceRequest {
                    id: lease.to_string(),
                    resource: Some(resource_to(res)),
                },
            )?)
            .await?;
        Ok(())
    }

    pub async fn delete_lease_resource(
        &self,
        ctx: &Ctx,
        lease: &str,
        res: &Resource,
    ) -> Result<(), CdError> {
        self.leases()
            .delete_resource(self.req(
                ctx,
                api::DeleteResourceRequest {
                    id: lease.to_string(),
                    resource: Some(resource_to(res)),
                },
            )?)
            .await?;
        Ok(())
    }

    /// Deletes a lease; with `sync` the server runs a full GC before answering.
    pub async fn delete_lease(&self, ctx: &Ctx, id: &str, sync: bool) -> Result<(), CdError> {
        self.leases()
            .delete(self.req(
                ctx,
                api::DeleteRequest {
                    id: id.to_string(),
                    sync,
                },
            )?)
            .await?;
        Ok(())
    }

    /// Every lease of the namespace, sorted by id.
    pub async fn list_leases(&self, ctx: &Ctx) -> Result<Vec<Lease>, CdError> {
        let r = self
            .leases()
            .list(self.req(ctx, api::ListRequest { filters: vec![] })?)
            .await?;
        let mut v: Vec<Lease> = r
            .into_inner()
            .leases
            .into_iter()
            .map(|l| Lease {
                id: l.id,
                labels: to_labels(l.labels),
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    /// The resources of a lease, sorted by (type, id). Any type the daemon lists is kept (the model's
    /// [`Resource`] knows only content, ingests and images).
    pub async fn list_lease_resources(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Vec<ResourceState>, CdError> {
        let r = self
            .leases()
            .list_resources(self.req(ctx, api::ListResourcesRequest { id: id.to_string() })?)
            .await?;
        let mut v: Vec<ResourceState> = r
            .into_inner()
            .resources
            .into_iter()
            .map(|r| ResourceState {
                kind: r.r#type,
                id: r.id,
            })
            .collect();
        v.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
        Ok(v)
    }

    // ------------------------------------------------------------ gc

    /// A full, synchronous GC: creates a throwaway lease in `ctx.namespace` and deletes it with sync.
    /// (The lease's namespace is created if new; empty namespaces are left out of the dump.)
    pub async fn gc(&self, ctx: &Ctx) -> Result<(), CdError> {
        let ctx = Ctx::new(ctx.namespace.clone());
        let id = format!("pushrace-gc-{}", unique_suffix());
        self.create_lease(&ctx, &id, &Labels::new()).await?;
        self.delete_lease(&ctx, &id, true).await
    }

    // ------------------------------------------------------------ dump

    /// `sha256:<hex>` of every blob file in the backend (needs the root dir), sorted.
    pub fn backend_blobs(&self) -> Result<Vec<String>, CdError> {
        let root = self.root.as_ref().ok_or_else(|| CdError::Other {
            code: "Local".into(),
            message: "containerd's root dir is unknown to this client: cannot list backend blobs"
                .into(),
        })?;
        let dir = crate::launcher::content_blobs_dir(root);
        let mut v = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
            Err(e) => {
                return Err(CdError::Other {
                    code: "Local".into(),
                    message: format!("reading {}: {e}", dir.display()),
                })
            }
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                v.push(format!("sha256:{}", e.file_name().to_string_lossy()));
            }
        }
        v.sort();
        Ok(v)
    }

    /// Metadata of one namespace (content, images, leases with resources, ingests).
    pub async fn dump_namespace(&self, ns: &str) -> Result<NamespaceState, CdError> {
        let ctx = Ctx::new(ns);
        let mut out = NamespaceState::default();
        for c in self.list_content(&ctx).await? {
            out.content.insert(
                c.digest.to_string(),
                ContentState {
                    size: c.size,
                    labels: c.labels,
                },
            );
        }
        for (name, i) in self.list_images(&ctx).await? {
            out.images.insert(
                name,
                ImageState {
                    target: i.target.digest,
                    media_type: i.target.media_type,
                    labels: i.labels,
                },
            );
        }
        for l in self.list_leases(&ctx).await? {
            let mut resources = self.list_lease_resources(&ctx, &l.id).await?;
            resources.sort_by(|a, b| {
                (resource_rank(&a.kind), &a.id).cmp(&(resource_rank(&b.kind), &b.id))
            });
            out.leases.insert(
                l.id,
                LeaseState {
                    labels: l.labels,
                    resources,
                },
            );
        }
        for s in self.list_ingests(&ctx).await? {
            out.ingests.insert(
                s.reference,
                IngestState {
                    expected: s.expected,
                },
            );
        }
        Ok(out)
    }

    /// The whole state: every non-empty namespace plus the backend's blob files.
    pub async fn dump_state(&self) -> Result<State, CdError> {
        let mut st = State::default();
        for ns in self.namespaces().await? {
            let n = self.dump_namespace(&ns).await?;
            if !namespace_is_empty(&n) {
                st.namespaces.insert(ns, n);
            }
        }
        st.blobs = self.backend_blobs()?;
        Ok(st)
    }
}

fn stat() -> api::WriteContentRequest {
    api::WriteContentRequest {
        action: api::WriteAction::Stat as i32,
        ..Default::default()
    }
}

/// The model's content info; a digest go-digest would reject is an error (containerd never sends one).
fn info_from(i: api::Info) -> Result<ContentInfo, CdError> {
    let digest = Digest::parse(&i.digest).map_err(|e| CdError::Other {
        code: "Local".into(),
        message: format!("the daemon answered a malformed digest {:?}: {e}", i.digest),
    })?;
    Ok(ContentInfo {
        digest,
        size: i.size.max(0) as u64,
        labels: to_labels(i.labels),
    })
}

fn resource_to(r: &Resource) -> api::Resource {
    api::Resource {
        id: r.id().to_string(),
        r#type: r.type_name().to_string(),
    }
}

fn image_to(name: &str, i: &Image) -> api::Image {
    api::Image {
        name: name.to_string(),
        labels: to_hash(&i.labels),
        target: Some(containerd_client::types::Descriptor {
            media_type: i.target.media_type.clone(),
            digest: i.target.digest.clone(),
            size: i.target.size,
            annotations: Default::default(),
        }),
        created_at: None,
        updated_at: None,
    }
}

fn image_from(i: api::Image) -> (String, Image) {
    let t = i.target.unwrap_or_default();
    let image = Image {
        target: Descriptor {
            media_type: t.media_type,
            digest: t.digest,
            size: t.size,
        },
        labels: to_labels(i.labels),
    };
    (i.name, image)
}

/// One bidirectional Write stream, driven request/response like Go's `remoteWriter`.
struct WriteSession {
    tx: Option<tokio::sync::mpsc::Sender<api::WriteContentRequest>>,
    rx: tonic::Streaming<api::WriteContentResponse>,
    first: api::WriteContentResponse,
}

impl WriteSession {
    /// Sends the negotiating Stat (ref, total, expected) and waits for its answer.
    async fn open(
        c: &DaemonClient,
        ctx: &Ctx,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<Self, CdError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(api::WriteContentRequest {
            action: api::WriteAction::Stat as i32,
            r#ref: reference.to_string(),
            total,
            expected: expected.to_string(),
            ..Default::default()
        })
        .await
        .map_err(|_| CdError::Unavailable("write stream closed".into()))?;
        let req = c.req(ctx, tokio_stream::wrappers::ReceiverStream::new(rx))?;
        let mut stream = c.content().write(req).await?.into_inner();
        let first = match stream.message().await? {
            Some(m) => m,
            None => {
                return Err(CdError::Unavailable(
                    "write stream ended before the first answer".into(),
                ))
            }
        };
        Ok(WriteSession {
            tx: Some(tx),
            rx: stream,
            first,
        })
    }

    async fn send(
        &mut self,
        m: api::WriteContentRequest,
    ) -> Result<api::WriteContentResponse, CdError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| CdError::Unavailable("write stream closed".into()))?;
        if tx.send(m).await.is_err() {
            // The server ended the stream: its status says why.
            return match self.rx.message().await {
                Err(s) => Err(s.into()),
                Ok(_) => Err(CdError::Unavailable(
                    "write stream closed by the server".into(),
                )),
            };
        }
        match self.rx.message().await? {
            Some(r) => Ok(r),
            None => Err(CdError::Unavailable(
                "write stream ended without an answer".into(),
            )),
        }
    }

    /// CloseSend, then drain until the server ends the stream (so the ingest state is settled).
    async fn close(mut self) {
        self.tx = None;
        while let Ok(Some(_)) = self.rx.message().await {}
    }
}
