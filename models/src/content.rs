//! Content: metadata/content.go (namespaced records over the shared local store) as a client sees
//! it through the gRPC content service (services/content/contentserver).
//!
//! Two layers live here. The metadata layer (`writer_open`, `writer_write`, `writer_commit`,
//! `ingest_abort`, `info`, `read`, `update_labels`, `delete`, `walk`) follows containerd's Go code
//! transaction by transaction. `write_blob` is the client's whole write (Go `content.WriteBlob` or
//! `OpenWriter` + `content.Copy`) as one atomic step, including the gRPC server's check of the
//! expected digest, which is what decides whether existing content joins the caller's lease.

use crate::clock::Duration;
use crate::digest::{ByText, Digest};
use crate::errors::{Error, ErrorKind};
use crate::fingerprint::{add, entry, sub};
use crate::labels::{self, Labels};
use crate::store::{backend_ref, BackendIngest, Bytes, ContentRecord, Ctx, Store};

/// An open writer (metadata/content.go `namespacedWriter`), alive for one client session.
#[derive(Debug)]
pub struct Writer {
    /// The ingest ref the client named.
    r: String,
    /// The local store's ref for the ingest (`backend_ref`).
    bref: String,
    /// Opened over a blob the backend already holds for another namespace, with its size: no
    /// backend writer yet (`namespacedWriter.w == nil`).
    shared: Option<(Digest, u64)>,
}

/// How a client's write meets content the namespace already has (see containerd-semantics.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum WriteStyle {
    /// Digest and size known when the writer opens (`content.WriteBlob`, pull's fetch): existing
    /// content is added to the context lease and the open answers `content …: already exists`.
    #[default]
    Open,
    /// Digest given only with the commit (`OpenWriter(WithRef)` + `content.Copy`, the converter's
    /// `writeJSON`): the server answers `blob with expected digest … exists` and leases nothing.
    Commit,
}

/// What `Info` returns.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ContentInfo {
    pub digest: Digest,
    pub size: u64,
    pub labels: Labels,
}

/// How long an ingest without a lease lives (metadata/content.go `Writer`).
pub const INGEST_EXPIRY: Duration = Duration(24 * 3600 * 1_000_000_000);

impl Store {
    fn record(&self, ctx: &Ctx, d: &str) -> Result<(&Digest, &ContentRecord), Error> {
        self.namespaces
            .get(&ctx.namespace)
            .and_then(|n| n.content.get_text(d))
            .ok_or_else(|| Error::content_not_found(d))
    }

    /// `Info`: `content digest <d>: not found` unless this namespace has a record.
    pub fn info(&self, ctx: &Ctx, d: &str) -> Result<ContentInfo, Error> {
        let (digest, rec) = self.record(ctx, d)?;
        Ok(ContentInfo {
            digest: digest.clone(),
            size: rec.size,
            labels: rec.labels.clone(),
        })
    }

    /// `ReaderAt` + read of `len` bytes at `offset` (None: to the end). A namespace without the
    /// record cannot read the bytes even when another namespace holds them.
    pub fn read(&self, ctx: &Ctx, d: &str, offset: u64, len: Option<u64>) -> Result<Bytes, Error> {
        let (digest, _) = self.record(ctx, d)?;
        let bytes = &self.blobs[digest];
        // contentserver Read: an offset past the end is OutOfRange; a size of 0 (or one reaching
        // past the end) reads to the end.
        if offset > bytes.len() as u64 {
            return Err(Error::raw(
                ErrorKind::OutOfRange,
                format!("read past object length {} bytes", bytes.len()),
            ));
        }
        let start = offset as usize;
        let end = match len {
            Some(l) if l > 0 => start.saturating_add(l as usize).min(bytes.len()),
            _ => bytes.len(),
        };
        if start == 0 && end == bytes.len() {
            return Ok(bytes.clone());
        }
        Ok(Bytes::from(&bytes[start..end]))
    }

    /// `Update` with fieldpaths `labels.<key>` for every key given: each key is set to its value, an
    /// empty value removes it (boltutil writeMap never stores empty values). No keys at all is an
    /// `Update` without fieldpaths, which clears every label.
    pub fn update_labels(
        &mut self,
        ctx: &Ctx,
        d: &str,
        set: &Labels,
    ) -> Result<ContentInfo, Error> {
        let rec = self
            .namespaces
            .get_mut(&ctx.namespace)
            .and_then(|n| n.content.get_text_mut(d))
            .ok_or_else(|| Error::content_not_found(d))?;
        // No keys means no fieldpaths, and containerd's `Update` without fieldpaths replaces every
        // mutable field: the labels become exactly the (empty) set sent (metadata/content.go Update:
        // `if len(fieldpaths) > 0 { … } else { updated.Labels = info.Labels }`, v1.6.20). Found by
        // the differential test against a real 1.6.20 daemon.
        let mut updated = if set.is_empty() {
            Labels::new()
        } else {
            rec.labels.clone()
        };
        for (k, v) in set {
            updated.insert(k.clone(), v.clone());
        }
        labels::validate_all(&updated, "info.Labels")?;
        labels::check_keys(&updated).map_err(|e| {
            Error::raw(
                e.kind,
                format!("writing labels for info {d}: {}", e.message),
            )
        })?;
        sub(&mut self.fp_sum, entry::content(&ctx.namespace, d, rec));
        rec.set_labels(labels::stored(&updated));
        add(&mut self.fp_sum, entry::content(&ctx.namespace, d, rec));
        let info = ContentInfo {
            digest: Digest::parse(d).unwrap(),
            size: rec.size,
            labels: rec.labels.clone(),
        };
        self.scheduler.mutation();
        Ok(info)
    }

    /// `Delete`: removes the record only (the bytes go at the next GC's backend cleanup), drops the
    /// digest from the context lease, marks the database dirty.
    pub fn delete(&mut self, ctx: &Ctx, d: &str) -> Result<(), Error> {
        let n = self
            .namespaces
            .get_mut(&ctx.namespace)
            .ok_or_else(|| Error::content_not_found(d))?;
        let rec = n
            .content
            .remove_text(d)
            .ok_or_else(|| Error::content_not_found(d))?;
        sub(&mut self.fp_sum, entry::content(&ctx.namespace, d, &rec));
        let key = Digest::parse(d).expect("a record's key is a digest");
        if let Some((id, l)) = ctx
            .lease
            .as_ref()
            .and_then(|id| Some((id, n.leases.get_mut(id)?)))
        {
            if l.content.remove(d) {
                sub(
                    &mut self.fp_sum,
                    entry::lease_resource(&ctx.namespace, id, "content", d),
                );
            }
        }
        self.cleanup_candidate(key);
        self.scheduler.mark_dirty();
        self.scheduler.dirty_cs = true;
        self.scheduler.mutation();
        Ok(())
    }

    /// `Walk` over this namespace's records, in digest order.
    pub fn walk(&self, ctx: &Ctx) -> Vec<ContentInfo> {
        self.namespaces
            .get(&ctx.namespace)
            .map_or_else(Vec::new, |n| {
                n.content
                    .iter()
                    .map(|(d, r)| ContentInfo {
                        digest: d.clone(),
                        size: r.size,
                        labels: r.labels.clone(),
                    })
                    .collect()
            })
    }

    /// metadata `Writer(WithRef(r), WithDescriptor{digest, size})`.
    ///
    /// Content the namespace has: added to the context lease, `content <d>: already exists`.
    /// Content only the backend has (another namespace's), with a matching or unknown size: a
    /// "shared" writer that records the digest in the ingest bucket and opens no backend writer.
    /// Otherwise the backend writer for the ref is created or resumed (`backend_open`).
    pub fn writer_open(
        &mut self,
        ctx: &Ctx,
        r: &str,
        digest: Option<&Digest>,
        size: u64,
    ) -> Result<Writer, Error> {
        if r.is_empty() {
            return Err(Error::wrap(
                ErrorKind::InvalidArgument,
                "ref must not be empty",
            ));
        }
        let mut shared = None;
        if let Some(d) = digest {
            if self
                .namespaces
                .get(&ctx.namespace)
                .is_some_and(|n| n.content.contains_key(d))
            {
                if let Some(lease) = self.context_lease_mut(ctx).map_err(|e| {
                    Error::raw(e.kind, format!("unable to lease content: {}", e.message))
                })? {
                    if lease.content.insert(d.to_string()) {
                        self.fp_lease_resource(ctx, "content", d.as_str(), add);
                    }
                }
                self.scheduler.mutation();
                return Err(Error::content_exists(d));
            }
            if let Some(b) = self.blobs.get(d) {
                if size == 0 || size == b.len() as u64 {
                    shared = Some((d.clone(), b.len() as u64));
                }
            }
        }
        let leased = match self.context_lease_mut(ctx)? {
            Some(lease) => {
                if lease.ingests.insert(r.to_string()) {
                    self.fp_lease_resource(ctx, "ingests", r, add);
                }
                true
            }
            None => false,
        };
        let expire_at = self.now + INGEST_EXPIRY;
        let ns = ctx.namespace.as_str();
        let ingests = &mut self.ns_mut(ns).ingests;
        let old = ingests.get(r).map_or(0, |i| entry::ingest(ns, r, i));
        let ingest = ingests.entry(r.to_string()).or_default();
        if !leased {
            ingest.expire_at = Some(expire_at);
        }
        let replaced = match &shared {
            Some((d, _)) => ingest.expected.replace(d.clone()),
            None => None,
        };
        let new = entry::ingest(ns, r, ingest);
        sub(&mut self.fp_sum, old);
        add(&mut self.fp_sum, new);
        if let Some(e) = replaced {
            self.cleanup_candidate(e);
        }
        let bref = backend_ref(ns, r);
        if shared.is_none() {
            self.backend_open(&bref, size);
        }
        self.scheduler.mutation();
        Ok(Writer {
            r: r.to_string(),
            bref,
            shared,
        })
    }

    /// content/local/store.go `writer`: an existing backend ingest resumes at the end of its data
    /// file, keeping its total, unless both totals are set and differ (`resumeStatus` fails); then
    /// it restarts at offset 0 over the old file, which is not truncated. A missing one is created.
    fn backend_open(&mut self, bref: &str, total: u64) {
        let Some(b) = self.backend_ingests.get_mut(bref) else {
            let new = BackendIngest {
                total,
                ..BackendIngest::default()
            };
            add(&mut self.fp_sum, entry::backend_ingest(bref, &new));
            self.backend_ingests.insert(bref.to_string(), new);
            return;
        };
        sub(&mut self.fp_sum, entry::backend_ingest(bref, b));
        if total > 0 && b.total > 0 && total != b.total {
            b.offset = 0;
            b.total = total;
        } else {
            b.offset = b.data.len() as u64;
        }
        add(&mut self.fp_sum, entry::backend_ingest(bref, b));
    }

    /// Adds (`add`) or takes out (`sub`) the hash of the context lease's resource `x` of `kind`.
    fn fp_lease_resource(&mut self, ctx: &Ctx, kind: &str, x: &str, op: fn(&mut u128, u128)) {
        if let Some(id) = &ctx.lease {
            op(
                &mut self.fp_sum,
                entry::lease_resource(&ctx.namespace, id, kind, x),
            );
        }
    }

    /// The writer's status offset, from which a resuming client (`content.Copy`) sends its data.
    /// A shared writer reports the whole blob as written.
    pub fn writer_offset(&self, w: &Writer) -> u64 {
        match &w.shared {
            Some((_, size)) => *size,
            None => self.backend_ingests.get(&w.bref).map_or(0, |b| b.offset),
        }
    }

    /// namespacedWriter `Write`: appends at the backend writer's position. A shared writer first
    /// opens its backend writer and copies the blob it expects into it (`createAndCopy`).
    pub fn writer_write(&mut self, w: &mut Writer, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        if let Some((d, size)) = w.shared.take() {
            self.backend_open(&w.bref, size);
            let blob = self
                .blobs
                .get(&d)
                .cloned()
                .ok_or_else(|| Error::content_not_found(d.as_str()))?;
            // content.CopyReaderAt reads the blob from the backend writer's offset: a backend
            // ingest the ref left with bytes gets only the blob's tail, and the copy comes up
            // short. The writer stays shared (createAndCopy does not keep the backend writer).
            let offset = (self.backend_ingests[&w.bref].offset as usize).min(blob.len());
            self.backend_write(&w.bref, &blob[offset..]);
            if ((blob.len() - offset) as u64) < size {
                w.shared = Some((d, size));
                return Err(Error::raw(
                    ErrorKind::Unknown,
                    "failed to read expected number of bytes: unexpected EOF",
                ));
            }
        }
        self.backend_write(&w.bref, data);
        Ok(())
    }

    /// content/local/writer.go `Write`: overwrites from the position, extending the file.
    fn backend_write(&mut self, bref: &str, data: &[u8]) {
        let b = self
            .backend_ingests
            .get_mut(bref)
            .expect("a non-shared writer has its backend ingest (backend_open)");
        sub(&mut self.fp_sum, entry::backend_ingest(bref, b));
        let at = b.offset as usize;
        let overlap = b.data.len().saturating_sub(at).min(data.len());
        b.data[at..at + overlap].copy_from_slice(&data[..overlap]);
        b.data.extend_from_slice(&data[overlap..]);
        b.offset += data.len() as u64;
        add(&mut self.fp_sum, entry::backend_ingest(bref, b));
    }

    /// namespacedWriter `Commit(size, expected, WithLabels(labels))`: one metadata transaction
    /// around the backend's commit, which renames the data file into the blob store first and
    /// cannot be rolled back when the transaction then fails.
    pub fn writer_commit(
        &mut self,
        ctx: &Ctx,
        w: Writer,
        size: u64,
        expected: Option<&Digest>,
        labels: &Labels,
    ) -> Result<Digest, Error> {
        let r = w.r.as_str();
        labels::validate_all(labels, "info.Labels")?;
        let (actual, size) = match &w.shared {
            Some((d, total)) => {
                if size != 0 && size != *total {
                    return Err(size_mismatch(r, *total, size));
                }
                if expected.is_some_and(|e| e != d) {
                    return Err(Error::wrap(
                        ErrorKind::FailedPrecondition,
                        format_args!("{r:?} unexpected digest"),
                    ));
                }
                (d.clone(), *total)
            }
            None => {
                let offset = self.writer_offset(&w);
                if size != 0 && size != offset {
                    return Err(size_mismatch(r, offset, size));
                }
                (self.backend_commit(&w.bref, offset, expected)?, offset)
            }
        };
        let exists = self.ns_mut(&ctx.namespace).content.contains_key(&actual);
        if !exists {
            // bolt refuses an empty label key; the transaction rolls back, the bucket stays.
            labels::check_keys(labels)?;
        }
        // addContentLease fails the transaction when the context lease is gone.
        self.context_lease_mut(ctx)?;
        let ns = ctx.namespace.as_str();
        let n = self.ns_mut(ns);
        let mut delta = 0u128;
        if !exists {
            let rec = ContentRecord::new(size, labels::stored(labels));
            add(&mut delta, entry::content(ns, actual.as_str(), &rec));
            n.content.insert(actual.clone(), rec);
        }
        let removed = n.ingests.remove(r);
        if let Some(i) = &removed {
            sub(&mut delta, entry::ingest(ns, r, i));
        }
        if let Some((id, lease)) = ctx
            .lease
            .as_ref()
            .and_then(|id| Some((id, n.leases.get_mut(id)?)))
        {
            if lease.ingests.remove(r) {
                sub(&mut delta, entry::lease_resource(ns, id, "ingests", r));
            }
            if lease.content.insert(actual.to_string()) {
                add(
                    &mut delta,
                    entry::lease_resource(ns, id, "content", actual.as_str()),
                );
            }
        }
        add(&mut self.fp_sum, delta);
        // The blob `backend_commit` may just have listed is held by the record now: a candidate
        // fewer for the next cleanup to look at (any listing of a held blob may go).
        if self.cleanup_candidates.last() == Some(&actual) {
            self.cleanup_candidates.pop();
        }
        if let Some(e) = removed.and_then(|i| i.expected) {
            self.cleanup_candidate(e);
        }
        self.scheduler.mutation();
        if exists {
            return Err(Error::content_exists(&actual));
        }
        Ok(actual)
    }

    /// content/local/writer.go `Commit(size, expected)`: the data file must have the size asked
    /// for and the digester (which has seen `data[..offset]`) the digest. On success the file
    /// becomes the blob, or is dropped when the blob is already there; the ingest is gone either
    /// way. On failure the ingest stays as it was.
    fn backend_commit(
        &mut self,
        bref: &str,
        size: u64,
        expected: Option<&Digest>,
    ) -> Result<Digest, Error> {
        let b = &self.backend_ingests[bref];
        let file_size = b.data.len() as u64;
        if size != 0 && size != file_size {
            return Err(Error::wrap(
                ErrorKind::FailedPrecondition,
                format_args!("unexpected commit size {file_size}, expected {size}"),
            ));
        }
        let d = Digest::of(&b.data[..b.offset as usize]);
        if let Some(e) = expected.filter(|e| **e != d) {
            return Err(Error::wrap(
                ErrorKind::FailedPrecondition,
                format_args!("unexpected commit digest {d}, expected {e}"),
            ));
        }
        self.blobs_dir = true;
        let b = self.backend_ingests.remove(bref).expect("looked up above");
        sub(&mut self.fp_sum, entry::backend_ingest(bref, &b));
        if !self.blobs.contains_key(&d) {
            add(&mut self.fp_sum, entry::blob(d.as_str()));
            self.blobs.insert(d.clone(), Bytes::from(b.data));
            // Held by nothing until the metadata transaction records it, which may fail.
            self.cleanup_candidate(d.clone());
        }
        Ok(d)
    }

    /// metadata `Abort(ref)`: drops the ingest bucket and its place in the context lease. The
    /// backend ingest goes too unless the bucket expected shared content: then it stays until the
    /// GC's backend cleanup (or a writer for the same ref finds it again).
    pub fn ingest_abort(&mut self, ctx: &Ctx, r: &str) -> Result<(), Error> {
        let n = self
            .namespaces
            .get_mut(&ctx.namespace)
            .ok_or_else(|| Error::ingest_not_found(r))?;
        let ingest = n
            .ingests
            .remove(r)
            .ok_or_else(|| Error::ingest_not_found(r))?;
        let ns = ctx.namespace.as_str();
        sub(&mut self.fp_sum, entry::ingest(ns, r, &ingest));
        if let Some((id, lease)) = ctx
            .lease
            .as_ref()
            .and_then(|id| Some((id, n.leases.get_mut(id)?)))
        {
            if lease.ingests.remove(r) {
                sub(
                    &mut self.fp_sum,
                    entry::lease_resource(ns, id, "ingests", r),
                );
            }
        }
        match ingest.expected {
            Some(e) => self.cleanup_candidate(e),
            None => {
                let bref = backend_ref(ns, r);
                if let Some(b) = self.backend_ingests.remove(&bref) {
                    sub(&mut self.fp_sum, entry::backend_ingest(&bref, &b));
                }
            }
        }
        self.scheduler.mutation();
        Ok(())
    }

    /// A client's whole write of `data` under ingest ref `r`, as one step.
    ///
    /// `expected` defaults to the data's own digest. Both styles treat "already exists" answers as
    /// success, as `content.WriteBlob` and `content.Copy` do; they differ in what joins the lease.
    pub fn write_blob(
        &mut self,
        ctx: &Ctx,
        r: &str,
        data: &[u8],
        expected: Option<&Digest>,
        labels: &Labels,
        style: WriteStyle,
    ) -> Result<Digest, Error> {
        let own;
        let expected = match expected {
            Some(e) => e,
            None => {
                own = Digest::of(data);
                &own
            }
        };
        let size = data.len() as u64;
        let mut w = match style {
            WriteStyle::Open => match self.writer_open(ctx, r, Some(expected), size) {
                Err(e) if e.kind == ErrorKind::AlreadyExists => return Ok(expected.clone()),
                other => other?,
            },
            WriteStyle::Commit => self.writer_open(ctx, r, None, 0)?,
        };
        // content.Copy resumes from the writer's offset.
        let offset = (self.writer_offset(&w) as usize).min(data.len());
        self.writer_write(&mut w, &data[offset..])?;
        if style == WriteStyle::Commit && self.record(ctx, expected.as_str()).is_ok() {
            // contentserver Write: the commit message carries the expected digest, which the
            // namespace has: the server aborts the ingest and answers `blob with expected digest
            // … exists`; content.Copy takes that as success. Nothing joins the lease.
            self.ingest_abort(ctx, r)?;
            return Ok(expected.clone());
        }
        match self.writer_commit(ctx, w, size, Some(expected), labels) {
            Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(expected.clone()),
            other => other,
        }
    }
}

fn size_mismatch(r: &str, have: u64, want: u64) -> Error {
    Error::wrap(
        ErrorKind::FailedPrecondition,
        format_args!("{r:?} failed size validation: {have} != {want}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// metadata/content.go Update: without fieldpaths the labels are replaced by the ones sent.
    #[test]
    fn label_update_without_keys_clears_every_label() {
        let mut s = Store::new(crate::Semantics::V1_6);
        let ctx = Ctx::default();
        let l = Labels::from([("a".to_string(), "1".to_string())]);
        let d = s
            .write_blob(&ctx, "r", b"x", None, &l, WriteStyle::Open)
            .unwrap();
        let keep = Labels::from([("b".to_string(), "2".to_string())]);
        assert_eq!(
            s.update_labels(&ctx, d.as_str(), &keep)
                .unwrap()
                .labels
                .len(),
            2
        );
        assert!(s
            .update_labels(&ctx, d.as_str(), &Labels::new())
            .unwrap()
            .labels
            .is_empty());
        assert!(s.info(&ctx, d.as_str()).unwrap().labels.is_empty());
    }
}
