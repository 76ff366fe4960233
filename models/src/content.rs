//! Content: metadata/content.go (namespaced records over the shared local store) as a client sees
//! it through the gRPC content service (services/content/contentserver).
//!
//! Two layers live here. The metadata layer (`writer_open`, `writer_write`, `writer_commit`,
//! `ingest_abort`, `info`, `read`, `update_labels`, `delete`, `walk`) follows containerd's Go code
//! transaction by transaction. `write_blob` is the client's whole write (Go `content.WriteBlob` or
//! `OpenWriter` + `content.Copy`) as one atomic step, including the gRPC server's check of the
//! expected digest, which is what decides whether existing content joins the caller's lease.

use crate::clock::Duration;
use crate::digest::Digest;
use crate::errors::{Error, ErrorKind};
use crate::labels::{self, Labels};
use crate::store::{Bytes, ContentRecord, Ctx, Store};

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
            .and_then(|n| n.content.get_key_value(d))
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
            .and_then(|n| n.content.get_mut(d))
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
        rec.labels = labels::stored(&updated);
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
        n.content
            .remove(d)
            .ok_or_else(|| Error::content_not_found(d))?;
        if let Some(l) = ctx.lease.as_ref().and_then(|id| n.leases.get_mut(id)) {
            l.content.remove(d);
        }
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
    /// Content only the backend has (another namespace's): a "shared" ingest that expects it and
    /// writes no bytes. Otherwise an ingest with a backend writer; reopening a ref resumes it.
    pub fn writer_open(
        &mut self,
        ctx: &Ctx,
        r: &str,
        digest: Option<&Digest>,
        size: u64,
    ) -> Result<(), Error> {
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
                    lease.content.insert(d.to_string());
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
                lease.ingests.insert(r.to_string());
                true
            }
            None => false,
        };
        let expire_at = self.now + INGEST_EXPIRY;
        let ingests = &mut self.ns_mut(&ctx.namespace).ingests;
        let existed = ingests.contains_key(r);
        let ingest = ingests.entry(r.to_string()).or_default();
        if !leased {
            ingest.expire_at = Some(expire_at);
        }
        match shared {
            Some((d, blob_size)) => {
                ingest.expected = Some(d);
                ingest.total = blob_size;
            }
            // content/local/store.go `writer` + `resumeStatus`: an existing ingest resumes at the
            // end of its data file, keeping its total, unless both totals are set and differ; then
            // it restarts at offset 0 over the old file, which is not truncated.
            None if existed && ingest.detached => {
                ingest.detached = false;
                ingest.total = size;
            }
            None if existed && !ingest.is_shared() => {
                if size > 0 && ingest.total > 0 && size != ingest.total {
                    ingest.offset = 0;
                    ingest.total = size;
                } else {
                    ingest.offset = ingest.data.len() as u64;
                }
            }
            None => ingest.total = size,
        }
        self.scheduler.mutation();
        Ok(())
    }

    /// The writer's current offset, which a resuming client skips in its data (`content.Copy`).
    pub fn writer_offset(&self, ctx: &Ctx, r: &str) -> u64 {
        self.namespaces
            .get(&ctx.namespace)
            .and_then(|n| n.ingests.get(r))
            .map_or(0, |i| if i.is_shared() { i.total } else { i.offset })
    }

    /// Appends bytes to the ingest's backend writer. A shared ingest first copies the blob it expects
    /// (namespacedWriter.createAndCopy) and becomes an ordinary one.
    pub fn writer_write(&mut self, ctx: &Ctx, r: &str, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let blobs = &self.blobs;
        let ingest = self
            .namespaces
            .get_mut(&ctx.namespace)
            .and_then(|n| n.ingests.get_mut(r))
            .ok_or_else(|| Error::ingest_not_found(r))?;
        if let (Some(e), true) = (&ingest.expected, ingest.data.is_empty()) {
            if let Some(b) = blobs.get(e) {
                ingest
                    .data
                    .extend_from_slice(&b[..(ingest.total as usize).min(b.len())]);
                ingest.offset = ingest.data.len() as u64;
            }
        }
        // Overwrite from the writer's position, extending the file past its end.
        let at = ingest.offset as usize;
        let overlap = ingest.data.len().saturating_sub(at).min(data.len());
        ingest.data[at..at + overlap].copy_from_slice(&data[..overlap]);
        ingest.data.extend_from_slice(&data[overlap..]);
        ingest.offset += data.len() as u64;
        Ok(())
    }

    /// namespacedWriter `Commit(size, expected, WithLabels(labels))`.
    pub fn writer_commit(
        &mut self,
        ctx: &Ctx,
        r: &str,
        size: u64,
        expected: Option<&Digest>,
        labels: &Labels,
    ) -> Result<Digest, Error> {
        let ingest = self
            .namespaces
            .get(&ctx.namespace)
            .and_then(|n| n.ingests.get(r))
            .ok_or_else(|| Error::ingest_not_found(r))?
            .clone();
        labels::validate_all(labels, "info.Labels")?;
        let actual = match &ingest.expected {
            Some(d) if ingest.is_shared() => {
                if size != 0 && size != ingest.total {
                    return Err(size_mismatch(r, ingest.total, size));
                }
                if expected.is_some_and(|e| e != d) {
                    return Err(Error::wrap(
                        ErrorKind::FailedPrecondition,
                        format_args!("{r:?} unexpected digest"),
                    ));
                }
                d.clone()
            }
            _ => {
                if size != 0 && size != ingest.offset {
                    return Err(size_mismatch(r, ingest.offset, size));
                }
                // content/local/writer.go `Commit`: the data file's size must be the one asked for
                // (a restarted ingest over a longer old file fails here).
                let file_size = ingest.data.len() as u64;
                if size != 0 && size != file_size {
                    return Err(Error::wrap(
                        ErrorKind::FailedPrecondition,
                        format_args!("unexpected commit size {file_size}, expected {size}"),
                    ));
                }
                let d = Digest::of(&ingest.data);
                if let Some(e) = expected.filter(|e| **e != d) {
                    return Err(Error::wrap(
                        ErrorKind::FailedPrecondition,
                        format_args!("unexpected commit digest {d}, expected {e}"),
                    ));
                }
                // The local store renames the ingest into place (or finds the blob already there)
                // before the metadata transaction can fail: the bytes stay either way.
                self.blobs
                    .entry(d.clone())
                    .or_insert_with(|| Bytes::from(ingest.data.as_slice()));
                d
            }
        };
        let exists = self.ns_mut(&ctx.namespace).content.contains_key(&actual);
        if !exists {
            if let Err(e) = labels::check_keys(labels) {
                // The bytes are in the blob store already; the metadata transaction rolls back
                // and leaves the ingest record without its backend ingest.
                if !ingest.is_shared() {
                    if let Some(i) = self.ns_mut(&ctx.namespace).ingests.get_mut(r) {
                        i.data.clear();
                        i.offset = 0;
                        i.detached = true;
                    }
                }
                return Err(e);
            }
        }
        // Fail before changing anything if the context lease is gone (addContentLease).
        self.context_lease_mut(ctx)?;
        if !exists {
            let size = self
                .blobs
                .get(&actual)
                .map_or(ingest.total, |b| b.len() as u64);
            let n = self.ns_mut(&ctx.namespace);
            n.content.insert(
                actual.clone(),
                ContentRecord {
                    size,
                    labels: labels::stored(labels),
                },
            );
        }
        let n = self.ns_mut(&ctx.namespace);
        n.ingests.remove(r);
        if let Some(lease) = ctx.lease.as_ref().and_then(|id| n.leases.get_mut(id)) {
            lease.ingests.remove(r);
            lease.content.insert(actual.to_string());
        }
        self.scheduler.mutation();
        if exists {
            return Err(Error::content_exists(&actual));
        }
        Ok(actual)
    }

    /// `Abort(ref)`: drops the ingest and its place in the context lease.
    pub fn ingest_abort(&mut self, ctx: &Ctx, r: &str) -> Result<(), Error> {
        let n = self
            .namespaces
            .get_mut(&ctx.namespace)
            .ok_or_else(|| Error::ingest_not_found(r))?;
        n.ingests
            .remove(r)
            .ok_or_else(|| Error::ingest_not_found(r))?;
        if let Some(lease) = ctx.lease.as_ref().and_then(|id| n.leases.get_mut(id)) {
            lease.ingests.remove(r);
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
        match style {
            WriteStyle::Open => match self.writer_open(ctx, r, Some(expected), size) {
                Err(e) if e.kind == ErrorKind::AlreadyExists => return Ok(expected.clone()),
                other => other?,
            },
            WriteStyle::Commit => self.writer_open(ctx, r, None, 0)?,
        }
        // content.Copy resumes from the writer's offset.
        let offset = (self.writer_offset(ctx, r) as usize).min(data.len());
        self.writer_write(ctx, r, &data[offset..])?;
        if style == WriteStyle::Commit && self.info(ctx, expected.as_str()).is_ok() {
            // contentserver Write: the commit message carries the expected digest, which the
            // namespace has: the server aborts the ingest and answers `blob with expected digest
            // … exists`; content.Copy takes that as success. Nothing joins the lease.
            self.ingest_abort(ctx, r)?;
            return Ok(expected.clone());
        }
        match self.writer_commit(ctx, r, size, Some(expected), labels) {
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
