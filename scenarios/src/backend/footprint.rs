//! What a step is to the explorer: each call's label (and its hash) and footprint, the keys of
//! the store objects it reads and writes, so partial-order reduction can tell which calls commute.
//! Every backend steps through here, so the same schedule applies and traces hash alike on all.

use pushrace_harness::{Footprint, Key, Sched};
use pushrace_models::leases::Resource;
use pushrace_models::{Digest, Labels, Op, OpKind, WriteStyle};

/// Keys of the shared objects, by kind (`content`, `blob`, `ingest`, `image`, `lease`). Hash
/// collisions only add dependencies.
///
/// Computed on every step, so it hashes eight bytes at a time without allocating (a multiply-rotate
/// mix with fixed constants: the same key on every platform and run).
pub(crate) fn key(kind: &str, ns: &str, id: &str) -> Key {
    Key(mix(mix(mix(0x243f_6a88_85a3_08d3, kind), ns), id))
}

/// Folds `bytes` into `h` eight bytes at a time (multiply-rotate with fixed constants, the length
/// last): cheap, and the same on every platform, run and toolchain.
fn mix(mut h: u64, bytes: impl AsRef<[u8]>) -> u64 {
    let bytes = bytes.as_ref();
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap()))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    // The length separates "ab"+"c" from "a"+"bc".
    h = (h ^ u64::from_le_bytes(tail))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29);
    (h ^ bytes.len() as u64).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The key of a registry blob (the footprint of `registry.head` / `registry.put`), for other backends.
pub fn registry_key(digest: &str) -> Key {
    key("registry", "", digest)
}

/// Written by a GC (it may remove anything) and read by every call.
pub const ALL: Key = Key(0x616c6c);
/// The registry as a whole, as a real client reaches it between its steps (`external::Reach`).
pub const REGISTRY: Key = Key(0x7265676973747279);
/// The virtual clock: read by calls whose effect depends on `now`.
pub const CLOCK: Key = Key(0x636c6f636b);
/// The GC scheduler's dirty counters.
pub const SCHED: Key = Key(0x7363686564);

/// A few keys without a heap allocation: a footprint is built on every step.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    buf: [Key; 6],
    len: usize,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            buf: [Key(0); 6],
            len: 0,
        }
    }

    fn push(&mut self, k: Key) {
        assert!(self.len < self.buf.len(), "a call touches at most six keys");
        self.buf[self.len] = k;
        self.len += 1;
    }

    fn extend(&mut self, ks: impl IntoIterator<Item = Key>) {
        for k in ks {
            self.push(k);
        }
    }
}

impl std::ops::Deref for Keys {
    type Target = [Key];
    fn deref(&self) -> &[Key] {
        &self.buf[..self.len]
    }
}

/// The footprint of one call: what it reads and writes.
pub fn footprint(op: &Op) -> (Keys, Keys) {
    let ns = op.ctx.namespace.as_str();
    let mut reads = Keys::new();
    reads.push(ALL);
    let mut writes = Keys::new();
    let lease = op.ctx.lease.as_deref().map(|l| key("lease", ns, l));
    match &op.kind {
        OpKind::ContentWrite {
            r, data, expected, ..
        } => {
            let own;
            let d = match expected {
                Some(d) => d.as_str(),
                None => {
                    own = Digest::of(data);
                    own.as_str()
                }
            };
            reads.push(CLOCK);
            writes.extend([
                key("content", ns, d),
                key("blob", "", d),
                key("ingest", ns, r),
            ]);
            writes.extend(lease);
        }
        OpKind::IngestOpen { r, expected, .. } => {
            reads.push(CLOCK);
            writes.push(key("ingest", ns, r));
            if let Some(d) = expected {
                writes.extend([key("content", ns, d.as_str()), key("blob", "", d.as_str())]);
            }
            writes.extend(lease);
        }
        OpKind::IngestAbort { r } => {
            writes.push(key("ingest", ns, r));
            writes.extend(lease);
        }
        OpKind::ContentInfo { digest } | OpKind::ContentRead { digest, .. } => {
            reads.push(key("content", ns, digest))
        }
        OpKind::ContentLabel { digest, .. } => writes.push(key("content", ns, digest)),
        OpKind::ContentDelete { digest } => {
            writes.extend([key("content", ns, digest), SCHED]);
            writes.extend(lease);
        }
        OpKind::ImageCreate { name, target, .. } => {
            reads.push(key("content", ns, target));
            writes.push(key("image", ns, name));
            writes.extend(lease);
        }
        OpKind::ImageUpdate { name, target, .. } => {
            if let Some(t) = target {
                reads.push(key("content", ns, t));
            }
            writes.push(key("image", ns, name));
            writes.extend(lease);
        }
        OpKind::ImageDelete { name, sync } => {
            writes.extend([key("image", ns, name), SCHED]);
            writes.extend(lease);
            if *sync {
                writes.push(ALL);
            }
        }
        OpKind::ImageGet { name } => reads.push(key("image", ns, name)),
        OpKind::LeaseCreate { id, .. } => {
            reads.push(CLOCK);
            writes.push(key("lease", ns, id));
        }
        OpKind::LeaseAdd { id, .. } => writes.push(key("lease", ns, id)),
        OpKind::LeaseRemove { id, .. } => writes.extend([key("lease", ns, id), SCHED]),
        OpKind::LeaseDelete { id, sync } => {
            writes.extend([key("lease", ns, id), SCHED]);
            if *sync {
                writes.push(ALL);
            }
        }
        OpKind::GcRun => {
            reads.push(CLOCK);
            writes.extend([ALL, SCHED]);
        }
        OpKind::ClockAdvance { .. } => writes.push(CLOCK),
        // Listings see every object of their kind: treat them as conflicting with everything.
        OpKind::ContentWalk | OpKind::ImageList | OpKind::LeaseList => writes.push(ALL),
    }
    (reads, writes)
}

/// The scheduling point before a call: the operation's label (and its hash) and footprint, plus
/// `also` written (`external::Reach::AlsoRegistry`). Every backend that replays a schedule steps
/// through here, so their traces hash alike.
pub async fn step_for(sched: &Sched, op: &Op, also: Option<Key>) {
    let (reads, mut writes) = footprint(op);
    writes.extend(also);
    sched
        .step_with_hash(op, label_hash(op), Footprint::new(&reads, &writes))
        .await;
}

/// The step label's hash, from the operation's fields rather than its text: formatting every
/// operation into the hash was a tenth of an execution. Every field takes part (the text shows only
/// short digests), each folded in with its length by `mix`, each option tagged, list lengths
/// first: the same value on every run, machine and toolchain.
fn label_hash(op: &Op) -> u64 {
    struct H(u64);
    impl H {
        fn u64(&mut self, v: u64) {
            self.0 = mix(self.0, v.to_le_bytes());
        }
        fn str(&mut self, s: &str) {
            self.0 = mix(self.0, s);
        }
        fn bytes(&mut self, b: &[u8]) {
            self.0 = mix(self.0, b);
        }
        fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut H, T)) {
            match v {
                None => self.u64(0),
                Some(v) => {
                    self.u64(1);
                    f(self, v);
                }
            }
        }
        fn labels(&mut self, l: &Labels) {
            self.u64(l.len() as u64);
            for (k, v) in l {
                self.str(k);
                self.str(v);
            }
        }
        fn resource(&mut self, r: &Resource) {
            self.str(r.type_name());
            self.str(r.id());
        }
    }
    let mut h = H(0x1319_8a2e_0370_7344);
    h.str(op.kind.name());
    h.str(&op.ctx.namespace);
    h.opt(op.ctx.lease.as_deref(), H::str);
    match &op.kind {
        OpKind::ContentWrite {
            r,
            data,
            expected,
            labels,
            style,
        } => {
            h.str(r);
            match expected {
                Some(d) => h.str(d.as_str()),
                None => h.bytes(data),
            }
            h.labels(labels);
            h.u64(match style {
                WriteStyle::Open => 0,
                WriteStyle::Commit => 1,
            });
        }
        OpKind::IngestOpen { r, data, expected } => {
            h.str(r);
            h.bytes(data);
            h.opt(expected.as_ref(), |h, d| h.str(d.as_str()));
        }
        OpKind::IngestAbort { r } => h.str(r),
        OpKind::ContentInfo { digest } | OpKind::ContentDelete { digest } => h.str(digest),
        OpKind::ContentRead {
            digest,
            offset,
            len,
        } => {
            h.str(digest);
            h.u64(*offset);
            h.opt(*len, H::u64);
        }
        OpKind::ContentLabel { digest, labels } => {
            h.str(digest);
            h.labels(labels);
        }
        OpKind::ImageCreate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            h.str(name);
            h.str(media_type);
            h.str(target);
            h.opt(*size, |h, s| h.u64(s as u64));
            h.labels(labels);
        }
        OpKind::ImageUpdate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            h.str(name);
            h.opt(media_type.as_deref(), H::str);
            h.opt(target.as_deref(), H::str);
            h.opt(*size, |h, s| h.u64(s as u64));
            h.opt(labels.as_ref(), H::labels);
        }
        OpKind::ImageDelete { name, sync } => {
            h.str(name);
            h.u64(*sync as u64);
        }
        OpKind::ImageGet { name } => h.str(name),
        OpKind::LeaseCreate {
            id,
            expire,
            flat,
            labels,
        } => {
            h.str(id);
            h.opt(*expire, |h, d| h.u64(d.0 as u64));
            h.u64(*flat as u64);
            h.labels(labels);
        }
        OpKind::LeaseAdd { id, resource } | OpKind::LeaseRemove { id, resource } => {
            h.str(id);
            h.resource(resource);
        }
        OpKind::LeaseDelete { id, sync } => {
            h.str(id);
            h.u64(*sync as u64);
        }
        OpKind::ClockAdvance { by } => h.u64(by.0 as u64),
        OpKind::ContentWalk | OpKind::ImageList | OpKind::LeaseList | OpKind::GcRun => {}
    }
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushrace_models::{Bytes, Ctx};

    fn write(data: &str, labels: &[(&str, &str)], lease: Option<&str>) -> Op {
        Op {
            ctx: Ctx {
                namespace: "default".into(),
                lease: lease.map(str::to_string),
            },
            kind: OpKind::ContentWrite {
                r: "r".into(),
                data: Bytes::from(data.as_bytes()),
                expected: None,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                style: WriteStyle::Open,
            },
        }
    }

    /// The label hash sees every field, including what the label's text leaves out (the data
    /// behind a digest, the labels), and is a function of the operation alone.
    #[test]
    fn label_hash_tells_apart_what_the_text_does_not() {
        let a = write("alpha", &[], None);
        assert_eq!(label_hash(&a), label_hash(&a.clone()));
        assert_eq!(
            a.to_string(),
            write("alpha", &[("k", "v")], None).to_string()
        );
        assert_ne!(
            label_hash(&a),
            label_hash(&write("alpha", &[("k", "v")], None))
        );
        assert_ne!(label_hash(&a), label_hash(&write("alpha", &[], Some("L"))));
        assert_ne!(label_hash(&a), label_hash(&write("alphb", &[], None)));
        // Each string is folded with its length: moving a byte from a label's key to its value
        // changes the hash.
        assert_ne!(
            label_hash(&write("x", &[("ab", "c")], None)),
            label_hash(&write("x", &[("a", "bc")], None))
        );
    }
}
