//! The store: every namespace's metadata over one shared backend of blob bytes, a virtual clock and
//! the GC scheduler's counters. The per-concept behaviour lives in `content`, `images`, `leases`,
//! `gc` and `scheduler`, mirroring containerd's `metadata` package.

use crate::clock::{Instant, EPOCH};
use crate::digest::Digest;
use crate::labels::Labels;
use crate::scheduler::Scheduler;
use crate::semantics::Semantics;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Blob bytes, shared between the backend and readers; cloning a store does not copy them.
pub type Bytes = Arc<[u8]>;

/// What every containerd call carries in its context: the namespace (gRPC header
/// `containerd-namespace`) and, optionally, a lease (`containerd-lease`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Ctx {
    pub namespace: String,
    pub lease: Option<String>,
}

impl Ctx {
    pub fn new(namespace: impl Into<String>) -> Ctx {
        Ctx {
            namespace: namespace.into(),
            lease: None,
        }
    }

    pub fn with_lease(&self, lease: impl Into<String>) -> Ctx {
        Ctx {
            namespace: self.namespace.clone(),
            lease: Some(lease.into()),
        }
    }
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx::new("default")
    }
}

/// A committed content record (per namespace). Bytes live in `Store::blobs`.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentRecord {
    pub size: u64,
    /// Set through [`ContentRecord::new`] and [`ContentRecord::set_labels`], which keep `gc`.
    pub labels: Labels,
    /// What the GC reads of `labels`, derived once when they are set: the GC visits every record
    /// at every collection, and reading a label map there cost pointer chases and string
    /// comparisons per record. A function of `labels`, so equality is unchanged.
    pub(crate) gc: GcLabels,
}

impl ContentRecord {
    pub fn new(size: u64, labels: Labels) -> ContentRecord {
        let gc = GcLabels::of(&labels);
        ContentRecord { size, labels, gc }
    }

    pub fn set_labels(&mut self, labels: Labels) {
        self.gc = GcLabels::of(&labels);
        self.labels = labels;
    }
}

/// The output stays what it was before `gc` existed (traces print records).
impl std::fmt::Debug for ContentRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentRecord")
            .field("size", &self.size)
            .field("labels", &self.labels)
            .finish()
    }
}

/// A record's labels as the GC reads them.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct GcLabels {
    /// `containerd.io/gc.root` is set.
    pub(crate) root: bool,
    /// The content references (`labels::content_refs`) in key order, when every one is sha256
    /// text (what clients write); `None` otherwise, and the GC reads the labels themselves.
    pub(crate) refs: Option<Box<[Digest]>>,
}

impl GcLabels {
    fn of(labels: &Labels) -> GcLabels {
        GcLabels {
            root: labels.contains_key(crate::labels::GC_ROOT),
            refs: crate::labels::content_refs(labels)
                .map(Digest::sha256_text)
                .collect(),
        }
    }
}

/// An ingest's metadata bucket (metadata/content.go `Writer`): what the namespace records under
/// the ref. Its bytes, if any, are a separate `BackendIngest` at `backend_ref(ns, ref)`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Ingest {
    /// The bucket's `expected` key: set when a writer was opened for content the backend already
    /// held for another namespace ("shared" content). Never cleared while the bucket lives: it
    /// keeps that blob through the GC's backend cleanup and stops `Abort` from aborting the
    /// backend ingest.
    pub expected: Option<Digest>,
    /// Without a context lease the ingest expires 24 h after it was (re)opened.
    pub expire_at: Option<Instant>,
}

/// An ingest of the local content store (content/local/store.go): the directory
/// `ingest/<hash of bref>` with its data file. It lives apart from the metadata bucket that names
/// it: a shared commit or an `Abort` of a shared ingest leaves it behind, a bucket recreated under
/// the same ref finds it again (the bref is deterministic), and only the GC's backend cleanup
/// removes one no bucket names.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BackendIngest {
    /// Expected size declared when the backend ingest was created or restarted (0 = unknown).
    pub total: u64,
    /// The data file.
    pub data: Vec<u8>,
    /// The writer's position: where the next write lands and how many bytes its digester has
    /// seen. Equal to `data.len()` unless a reopen with a different size restarted the ingest over
    /// a longer file (content/local/store.go `writer`: no truncation).
    pub offset: u64,
}

/// The local store's ref for a namespace's ingest `r`: metadata/content.go `Writer` names it
/// `createKey(bkt.NextSequence(), ns, ref)` when it creates the bucket, and a fresh bucket's
/// first sequence number is always 1.
pub fn backend_ref(ns: &str, r: &str) -> String {
    format!("{ns}/1/{r}")
}

/// An OCI descriptor as images store it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Descriptor {
    pub media_type: String,
    /// As the client wrote it (validated by go-digest rules on create/update).
    pub digest: String,
    pub size: i64,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Image {
    pub target: Descriptor,
    pub labels: Labels,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Lease {
    pub labels: Labels,
    /// Digest strings (validated by `parseLeaseResource`, not checked for existence).
    pub content: BTreeSet<String>,
    pub ingests: BTreeSet<String>,
    /// 2.x only.
    pub images: BTreeSet<String>,
}

/// One namespace's metadata buckets.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Namespace {
    pub content: BTreeMap<Digest, ContentRecord>,
    pub ingests: BTreeMap<String, Ingest>,
    pub images: BTreeMap<String, Image>,
    pub leases: BTreeMap<String, Lease>,
}

impl Namespace {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
            && self.ingests.is_empty()
            && self.images.is_empty()
            && self.leases.is_empty()
    }
}

/// containerd's metadata database plus its content backend, for one daemon.
#[derive(Clone)]
pub struct Store {
    pub(crate) semantics: Semantics,
    pub(crate) now: Instant,
    pub(crate) namespaces: BTreeMap<String, Namespace>,
    /// The local content store: bytes by digest, shared by every namespace.
    pub(crate) blobs: BTreeMap<Digest, Bytes>,
    /// The local content store's ingests, by backend ref (`backend_ref`).
    pub(crate) backend_ingests: BTreeMap<String, BackendIngest>,
    /// content/local creates its `blobs/` directory at the first commit (`MkdirAll` in
    /// writer.go `Commit`) and never removes it. Until then the GC's backend cleanup fails at its
    /// first step (`Walk` of `blobs/`: `lstat …: no such file or directory`, logged as "content
    /// garbage collection failed") and so aborts no orphaned ingest.
    pub(crate) blobs_dir: bool,
    pub(crate) scheduler: Scheduler,
    /// Source of deterministic ids for leases the store's own client procedures create
    /// (containerd's `WithRandomID`).
    pub(crate) next_id: u64,
    /// The sum of every entry's fingerprint hash, kept up to date by each mutation
    /// (`crate::fingerprint`).
    pub(crate) fp_sum: u128,
    /// Where the GC's backend cleanup looks (`Store::backend_cleanup`), kept so that it need not
    /// walk every blob against every namespace's records: the digests of blobs created, records
    /// removed and ingest buckets that stopped expecting a blob since the last cleanup, unsorted,
    /// possibly repeated. Invariant (`Store::check_gc_bookkeeping`): a blob not listed here has a
    /// record in some namespace or an ingest bucket expecting it. Not state: it decides only how
    /// much the cleanup looks at, never what it finds, so neither the fingerprint nor `Debug`
    /// shows it.
    pub(crate) cleanup_candidates: Vec<Digest>,
}

/// The derived output as it was before `cleanup_candidates` existed (traces may print a store).
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("semantics", &self.semantics)
            .field("now", &self.now)
            .field("namespaces", &self.namespaces)
            .field("blobs", &self.blobs)
            .field("backend_ingests", &self.backend_ingests)
            .field("blobs_dir", &self.blobs_dir)
            .field("scheduler", &self.scheduler)
            .field("next_id", &self.next_id)
            .field("fp_sum", &self.fp_sum)
            .finish()
    }
}

impl Store {
    pub fn new(semantics: Semantics) -> Store {
        Store {
            semantics,
            now: EPOCH,
            namespaces: BTreeMap::new(),
            blobs: BTreeMap::new(),
            backend_ingests: BTreeMap::new(),
            blobs_dir: false,
            scheduler: Scheduler::default(),
            next_id: 1,
            fp_sum: 0,
            cleanup_candidates: Vec::new(),
        }
    }

    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn advance_clock(&mut self, by: crate::clock::Duration) {
        self.now = self.now + by;
    }

    pub fn namespaces(&self) -> &BTreeMap<String, Namespace> {
        &self.namespaces
    }

    pub fn namespace(&self, ns: &str) -> Option<&Namespace> {
        self.namespaces.get(ns)
    }

    pub fn blobs(&self) -> &BTreeMap<Digest, Bytes> {
        &self.blobs
    }

    pub fn backend_ingests(&self) -> &BTreeMap<String, BackendIngest> {
        &self.backend_ingests
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub(crate) fn ns_mut(&mut self, ns: &str) -> &mut Namespace {
        if !self.namespaces.contains_key(ns) {
            self.namespaces.insert(ns.to_string(), Namespace::default());
            crate::fingerprint::add(&mut self.fp_sum, crate::fingerprint::entry::namespace(ns));
        }
        self.namespaces.get_mut(ns).unwrap()
    }

    /// A fresh deterministic id with the given prefix (stands for containerd's random lease ids).
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.next_id);
        self.next_id += 1;
        id
    }

    /// The context lease, which must exist when an operation wants to attach something to it
    /// (metadata/leases.go `add*Lease`: `lease does not exist: not found`).
    pub(crate) fn context_lease_mut(
        &mut self,
        ctx: &Ctx,
    ) -> Result<Option<&mut Lease>, crate::Error> {
        match &ctx.lease {
            None => Ok(None),
            Some(id) => match self
                .namespaces
                .get_mut(&ctx.namespace)
                .and_then(|n| n.leases.get_mut(id))
            {
                Some(l) => Ok(Some(l)),
                None => Err(crate::Error::context_lease_missing()),
            },
        }
    }

    /// Checks the store's own consistency: every record has its bytes in the backend (or, for shared
    /// ingests, the blob they expect), sizes agree. Returns the first violation found.
    pub fn check_consistency(&self) -> Result<(), String> {
        for (ns, n) in &self.namespaces {
            for (d, rec) in &n.content {
                match self.blobs.get(d) {
                    None => {
                        return Err(format!(
                            "namespace {ns}: content {d} has a record but no bytes"
                        ))
                    }
                    Some(b) if b.len() as u64 != rec.size => {
                        return Err(format!(
                            "namespace {ns}: content {d} size {} != {} bytes",
                            rec.size,
                            b.len()
                        ))
                    }
                    _ => {}
                }
                if *d != Digest::of(&self.blobs[d]) {
                    return Err(format!(
                        "namespace {ns}: content {d} bytes do not hash to it"
                    ));
                }
            }
            for (r, ing) in &n.ingests {
                if let Some(e) = &ing.expected {
                    if !self.blobs.contains_key(e) {
                        return Err(format!(
                            "namespace {ns}: ingest {r} expects {e} which has no bytes"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// namespaces.NamespaceRequired (namespaces/context.go) with identifiers.Validate: a name of
/// alphanumeric runs joined by single `.`, `_` or `-`, at most 76 characters.
pub fn validate_namespace(ns: &str) -> Result<(), crate::Error> {
    use crate::errors::ErrorKind;
    if ns.is_empty() {
        return Err(crate::Error::wrap(
            ErrorKind::FailedPrecondition,
            "namespace is required",
        ));
    }
    let invalid = |why: String| {
        Err(crate::Error::wrap(
            ErrorKind::InvalidArgument,
            format_args!("namespace validation: {why}"),
        ))
    };
    if ns.len() > 76 {
        return invalid(format!(
            "identifier {ns:?} greater than maximum length (76 characters)"
        ));
    }
    // Alphanumeric runs joined by single separators, in one pass (it runs on every call).
    let mut after_separator = true;
    let mut well_formed = true;
    for b in ns.bytes() {
        if b.is_ascii_alphanumeric() {
            after_separator = false;
        } else if matches!(b, b'.' | b'_' | b'-') && !after_separator {
            after_separator = true;
        } else {
            well_formed = false;
            break;
        }
    }
    let well_formed = well_formed && !after_separator;
    if !well_formed {
        return invalid(format!(
            "identifier {ns:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
        ));
    }
    Ok(())
}
