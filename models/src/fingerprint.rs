//! A canonical 128-bit fingerprint of a [`Store`]: equal for two stores exactly when (up to a hash
//! collision) every future operation gives both the same result. Visited-state pruning compares
//! states by it, so a collision would be a false proof; see "Why 128 bits of SHA-256" below.
//!
//! # What it covers
//! Everything an operation can read: every namespace that exists (even an empty one), each content
//! record (size, labels), ingest bucket (expected digest, expiry), image (target descriptor,
//! labels) and lease (labels, content, ingests, images); the backend's blobs and ingests (total,
//! offset, data file); whether `blobs/` exists; the GC scheduler's counters as far as a future
//! reads them (`dirty > 0`, `dirty_cs`, `mutations` up to the threshold of 100, `deletions > 0`;
//! not `collections`, which a caller only compares with itself around one call); the clock; the counter behind [`Store::fresh_id`]; and the
//! semantics. A blob is hashed by its digest alone: the store keeps bytes only under their own
//! sha256 (`backend_commit`, and `Store::check_consistency` asserts it), so the digest fixes them.
//!
//! # How
//! Each entry (one record, one image, one lease, ...) is encoded canonically (a tag byte naming its
//! kind, then length-prefixed strings and fixed-width integers, its namespace and key first) and
//! hashed on its own; the entries' hashes are summed modulo 2^128. A sum does not depend on the
//! order the maps are walked in, and one entry's insert, change or removal moves it by one add and
//! one subtract, which is what lets the fingerprint be kept up to date incrementally. The scalar
//! fields and the sum are hashed together at the end.
//!
//! # Why 128 bits of SHA-256
//! Per-entry hashes are SHA-256 (already a dependency; the CPU's SHA extensions make a small entry
//! cost tens of nanoseconds) truncated to 128 bits. Two different stores differ in at least one
//! entry (keys are unique within a map and every encoding carries its kind, namespace and key, so
//! no two entries of one store encode alike), and for non-adversarial inputs the sums of
//! independent random-oracle outputs over two different sets collide with probability 2^-128. Over
//! N visited states the chance of any collision is about N^2 / 2^129: below 10^-20 for a billion
//! states. (The additive combination is weak only against an adversary who chooses entries among
//! very many candidates to solve the sum, which an explorer of a fixed model does not do.)

use crate::scheduler::MUTATION_THRESHOLD;
use crate::store::{BackendIngest, ContentRecord, Image, Ingest, Lease, Store};
use crate::Labels;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The 128-bit canonical hash of a store's state ([`Store::fingerprint`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fingerprint(pub u128);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The kind tag each entry's encoding starts with (distinct, so no two kinds encode alike).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Tag {
    Namespace = 1,
    Content = 2,
    Ingest = 3,
    Image = 4,
    LeaseLabels = 5,
    Blob = 6,
    BackendIngest = 7,
    Scalars = 8,
    LeaseResource = 9,
}

/// A canonical encoder feeding SHA-256, whose first 128 bits are the result: every
/// variable-length field is length-prefixed. Also what other state fingerprints build on (the
/// scenarios' `Sim::fingerprint`); `Debug` text goes in through `fmt::Write` after a tag byte,
/// as the last field of its part.
pub struct Enc(Sha256);

impl Enc {
    fn new(tag: Tag) -> Enc {
        let mut h = Sha256::new();
        h.update([tag as u8]);
        Enc(h)
    }
    /// An encoder with no entry tag, for a fingerprint of something other than a store entry.
    pub fn untagged() -> Enc {
        Enc(Sha256::new())
    }
    /// One byte: a variant's tag.
    pub fn byte(&mut self, b: u8) -> &mut Enc {
        self.0.update([b]);
        self
    }
    pub fn u128(&mut self, v: u128) -> &mut Enc {
        self.0.update(v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Enc {
        self.0.update(v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Enc {
        self.u64(v as u64)
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Enc {
        self.u64(b.len() as u64);
        self.0.update(b);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Enc {
        self.bytes(s.as_bytes())
    }
    fn opt_str(&mut self, s: Option<&str>) -> &mut Enc {
        match s {
            None => self.u64(0),
            Some(s) => self.u64(1).str(s),
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) -> &mut Enc {
        match v {
            None => self.u64(0),
            Some(v) => self.u64(1).i64(v),
        }
    }
    pub fn labels(&mut self, l: &Labels) -> &mut Enc {
        self.u64(l.len() as u64);
        for (k, v) in l {
            self.str(k).str(v);
        }
        self
    }
    pub fn finish(&mut self) -> u128 {
        let out = std::mem::take(&mut self.0).finalize();
        u128::from_le_bytes(out[..16].try_into().expect("32-byte digest"))
    }
}

impl fmt::Write for Enc {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// Adds an entry's hash to a sum.
pub(crate) fn add(sum: &mut u128, h: u128) {
    *sum = sum.wrapping_add(h);
}

/// Takes an entry's hash out of a sum.
pub(crate) fn sub(sum: &mut u128, h: u128) {
    *sum = sum.wrapping_sub(h);
}

/// The hash of each kind of entry: the one definition both the from-scratch and any incremental
/// computation use.
pub(crate) mod entry {
    use super::*;

    pub(crate) fn namespace(ns: &str) -> u128 {
        Enc::new(Tag::Namespace).str(ns).finish()
    }

    pub(crate) fn content(ns: &str, d: &str, r: &ContentRecord) -> u128 {
        let mut e = Enc::new(Tag::Content);
        e.str(ns).str(d).u64(r.size).labels(&r.labels).finish()
    }

    pub(crate) fn ingest(ns: &str, r: &str, i: &Ingest) -> u128 {
        let mut e = Enc::new(Tag::Ingest);
        e.str(ns)
            .str(r)
            .opt_str(i.expected.as_ref().map(|d| d.as_str()));
        e.opt_i64(i.expire_at.map(|t| t.0)).finish()
    }

    pub(crate) fn image(ns: &str, name: &str, i: &Image) -> u128 {
        let mut e = Enc::new(Tag::Image);
        let t = &i.target;
        e.str(ns)
            .str(name)
            .str(&t.media_type)
            .str(&t.digest)
            .i64(t.size);
        e.labels(&i.labels).finish()
    }

    /// A lease's labels; each resource it holds is an entry of its own ([`lease_resource`]), so
    /// that adding or removing one costs one hash.
    pub(crate) fn lease_labels(ns: &str, id: &str, l: &Lease) -> u128 {
        Enc::new(Tag::LeaseLabels)
            .str(ns)
            .str(id)
            .labels(&l.labels)
            .finish()
    }

    /// One resource of a lease: `kind` is [`Resource::type_name`](crate::leases::Resource).
    pub(crate) fn lease_resource(ns: &str, id: &str, kind: &str, x: &str) -> u128 {
        Enc::new(Tag::LeaseResource)
            .str(ns)
            .str(id)
            .str(kind)
            .str(x)
            .finish()
    }

    /// A lease with everything it holds.
    pub(crate) fn lease(ns: &str, id: &str, l: &Lease) -> u128 {
        let mut sum = lease_labels(ns, id, l);
        let sets = [
            ("content", &l.content),
            ("ingests", &l.ingests),
            ("images", &l.images),
        ];
        for (kind, set) in sets {
            for x in set {
                sum = sum.wrapping_add(lease_resource(ns, id, kind, x));
            }
        }
        sum
    }

    pub(crate) fn blob(d: &str) -> u128 {
        Enc::new(Tag::Blob).str(d).finish()
    }

    pub(crate) fn backend_ingest(bref: &str, b: &BackendIngest) -> u128 {
        let mut e = Enc::new(Tag::BackendIngest);
        e.str(bref)
            .u64(b.total)
            .u64(b.offset)
            .bytes(&b.data)
            .finish()
    }
}

impl Store {
    /// The sum of every entry's hash, walked from scratch.
    pub(crate) fn entry_sum(&self) -> u128 {
        let mut sum = 0u128;
        let mut add = |h: u128| sum = sum.wrapping_add(h);
        for (ns, n) in &self.namespaces {
            add(entry::namespace(ns));
            n.content
                .iter()
                .for_each(|(d, r)| add(entry::content(ns, d.as_str(), r)));
            n.ingests
                .iter()
                .for_each(|(r, i)| add(entry::ingest(ns, r, i)));
            n.images
                .iter()
                .for_each(|(k, i)| add(entry::image(ns, k, i)));
            n.leases
                .iter()
                .for_each(|(k, l)| add(entry::lease(ns, k, l)));
        }
        self.blobs.keys().for_each(|d| add(entry::blob(d.as_str())));
        for (bref, b) in &self.backend_ingests {
            add(entry::backend_ingest(bref, b));
        }
        sum
    }

    /// The scalar fields and the entries' sum, hashed together.
    fn seal(&self, sum: u128) -> Fingerprint {
        let s = &self.scheduler;
        let mut e = Enc::new(Tag::Scalars);
        e.u64(self.semantics as u64)
            .i64(self.now.0)
            .u64(self.next_id);
        // The scheduler's counters as far as they decide a future (`Scheduler::gc_due` and
        // `mutation` read only `dirty > 0`, `deletions > 0` and `mutations >= 100`; `collections`
        // is only ever compared with itself across one call), so states that differ only in how
        // many deletes or collections led to them are one state.
        e.u64(self.blobs_dir as u64)
            .u64((s.dirty > 0) as u64)
            .u64(s.dirty_cs as u64);
        e.u64(s.mutations.min(MUTATION_THRESHOLD) as u64)
            .u64((s.deletions > 0) as u64);
        e.bytes(&sum.to_le_bytes());
        Fingerprint(e.finish())
    }

    /// The canonical hash of everything in the store that can change a future operation's result
    /// (module [`crate::fingerprint`] says what and why it is collision-safe). Independent of the
    /// order operations built the state in, and of allocation. O(1): the entries' sum is kept up
    /// to date by every mutation.
    pub fn fingerprint(&self) -> Fingerprint {
        self.seal(self.fp_sum)
    }

    /// [`Store::fingerprint`] computed by walking the whole store (what the incremental value is
    /// tested against).
    pub fn fingerprint_from_scratch(&self) -> Fingerprint {
        self.seal(self.entry_sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Duration;
    use crate::leases::Resource;
    use crate::{Ctx, Digest, Semantics, WriteStyle};

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(s: &mut Store, ctx: &Ctx, r: &str, data: &str, l: &Labels) -> Digest {
        s.write_blob(ctx, r, data.as_bytes(), None, l, WriteStyle::Open)
            .unwrap()
    }

    /// A store with one of everything, in two namespaces: records with labels, an image, a lease
    /// holding content, an ingest and an image, an open ingest with bytes, a shared ingest.
    fn base() -> Store {
        let mut s = Store::new(Semantics::V2_0);
        let (a, b) = (Ctx::new("a"), Ctx::new("b"));
        s.lease_create(&a, "l", labels(&[("x", "1")])).unwrap();
        let leased = a.with_lease("l");
        let d1 = write(&mut s, &leased, "w1", "one", &labels(&[("k", "v")]));
        write(&mut s, &a, "w2", "two", &Labels::new());
        let image = Image {
            target: crate::Descriptor {
                media_type: "m".into(),
                digest: d1.to_string(),
                size: 3,
            },
            labels: labels(&[("i", "1")]),
        };
        s.image_create(&a, "img", image).unwrap();
        s.lease_add(&a, "l", &Resource::Image("img".into()))
            .unwrap();
        let mut w = s.writer_open(&leased, "open", None, 9).unwrap();
        s.writer_write(&mut w, b"abc").unwrap();
        s.writer_open(&b, "shared", Some(&d1), 0).unwrap();
        s
    }

    #[test]
    fn equal_states_built_in_different_orders_fingerprint_equal() {
        let (a, b) = (Ctx::new("a"), Ctx::new("b"));
        let l1 = labels(&[("p", "1")]);
        let mut s = Store::new(Semantics::V1_6);
        write(&mut s, &a, "r1", "x", &l1);
        write(&mut s, &b, "r2", "y", &Labels::new());
        s.lease_create(&b, "l", Labels::new()).unwrap();
        let mut t = Store::new(Semantics::V1_6);
        t.lease_create(&b, "l", Labels::new()).unwrap();
        write(&mut t, &b, "r2", "y", &Labels::new());
        write(&mut t, &a, "r1", "x", &l1);
        assert_eq!(s.state(), t.state(), "the two orders reach one state");
        assert_eq!(s.fingerprint(), t.fingerprint());
        assert_eq!(s.fingerprint(), s.fingerprint_from_scratch());
        assert_eq!(base().fingerprint(), base().clone().fingerprint());
        // A different path to the same labels: set, then overwritten to the same value.
        let d = Digest::of(b"x");
        s.update_labels(&a, d.as_str(), &labels(&[("p", "2")]))
            .unwrap();
        s.update_labels(&a, d.as_str(), &labels(&[("p", "1")]))
            .unwrap();
        t.update_labels(&a, d.as_str(), &labels(&[("p", "1")]))
            .unwrap();
        t.update_labels(&a, d.as_str(), &labels(&[("p", "1")]))
            .unwrap();
        assert_eq!(s.fingerprint(), t.fingerprint());
    }

    #[test]
    fn no_two_encodings_run_together() {
        let mut s = base();
        let mut t = base();
        let d = Digest::of(b"two");
        s.namespaces
            .get_mut("a")
            .unwrap()
            .content
            .get_mut(&d)
            .unwrap()
            .labels = labels(&[("ab", "c")]);
        t.namespaces
            .get_mut("a")
            .unwrap()
            .content
            .get_mut(&d)
            .unwrap()
            .labels = labels(&[("a", "bc")]);
        assert_ne!(s.fingerprint_from_scratch(), t.fingerprint_from_scratch());
    }

    /// One test per component: `base()` with one thing changed fingerprints differently. The
    /// change is made to the fields directly, past the incremental bookkeeping, so these compare
    /// recomputations: they test what the hash covers (the proptest in
    /// `tests/model_vs_reference.rs` holds the incremental value to the recomputation).
    macro_rules! changes_it {
        ($($name:ident: $change:expr;)*) => {$(
            #[test]
            fn $name() {
                let before = base();
                let mut after = before.clone();
                let change: fn(&mut Store) = $change;
                change(&mut after);
                assert_ne!(before.fingerprint_from_scratch(), after.fingerprint_from_scratch());
            }
        )*};
    }

    fn ns<'a>(s: &'a mut Store, n: &str) -> &'a mut crate::store::Namespace {
        s.namespaces.get_mut(n).unwrap()
    }

    fn one(s: &mut Store) -> &mut ContentRecord {
        ns(s, "a")
            .content
            .get_mut(Digest::of(b"one").as_str())
            .unwrap()
    }

    /// The scheduler's counters enter as what `Scheduler::mutation` and `gc_due` read of them:
    /// `dirty > 0`, `deletions > 0`, `mutations` capped at the threshold. Two stores that differ
    /// only beyond that behave alike in every future (the counters' next values differ, but not
    /// what decides anything), so they are one state; `collections` is never read as a value.
    #[test]
    fn scheduler_counts_beyond_what_decides_a_future_are_one_state() {
        use crate::scheduler::MUTATION_THRESHOLD;
        let with = |dirty, deletions, mutations, collections| {
            let mut s = base();
            s.scheduler.dirty = dirty;
            s.scheduler.deletions = deletions;
            s.scheduler.mutations = mutations;
            s.scheduler.collections = collections;
            s.fingerprint()
        };
        let t = MUTATION_THRESHOLD;
        assert_eq!(with(1, 1, 3, 0), with(2, 5, 3, 7), "more deletes, more GCs");
        assert_eq!(
            with(0, 0, t, 0),
            with(0, 0, t + 40, 0),
            "past the mutation threshold"
        );
        assert_ne!(
            with(0, 0, t - 1, 0),
            with(0, 0, t, 0),
            "at the threshold a GC is due"
        );
        assert_ne!(with(0, 0, 3, 0), with(1, 1, 3, 0), "dirty or not");
        assert_ne!(
            with(1, 0, 3, 0),
            with(1, 1, 3, 0),
            "a dirty mutation seen or not"
        );
    }

    changes_it! {
        an_empty_namespace: |s| { s.ns_mut("c"); };
        content_size: |s| one(s).size += 1;
        content_label_value: |s| { one(s).labels.insert("k".into(), "w".into()); };
        content_label_added: |s| { one(s).labels.insert("k2".into(), "v".into()); };
        content_record_removed: |s| { ns(s, "a").content.remove(Digest::of(b"two").as_str()); };
        content_record_in_another_namespace: |s| {
            let r = ns(s, "a").content.remove(Digest::of(b"two").as_str()).unwrap();
            ns(s, "b").content.insert(Digest::of(b"two"), r);
        };
        ingest_expected: |s| ns(s, "b").ingests.get_mut("shared").unwrap().expected = None;
        ingest_expiry: |s| ns(s, "b").ingests.get_mut("shared").unwrap().expire_at = None;
        ingest_removed: |s| { ns(s, "a").ingests.remove("open"); };
        image_media_type: |s| ns(s, "a").images.get_mut("img").unwrap().target.media_type.push('x');
        image_target_digest: |s| ns(s, "a").images.get_mut("img").unwrap().target.digest = Digest::of(b"two").to_string();
        image_target_size: |s| ns(s, "a").images.get_mut("img").unwrap().target.size = 4;
        image_labels: |s| ns(s, "a").images.get_mut("img").unwrap().labels.clear();
        image_renamed: |s| {
            let i = ns(s, "a").images.remove("img").unwrap();
            ns(s, "a").images.insert("img2".into(), i);
        };
        lease_labels: |s| { ns(s, "a").leases.get_mut("l").unwrap().labels.insert("x".into(), "2".into()); };
        lease_content: |s| ns(s, "a").leases.get_mut("l").unwrap().content.clear();
        lease_ingests: |s| ns(s, "a").leases.get_mut("l").unwrap().ingests.clear();
        lease_images: |s| ns(s, "a").leases.get_mut("l").unwrap().images.clear();
        lease_removed: |s| { ns(s, "a").leases.remove("l"); };
        blob_removed: |s| { s.blobs.remove(Digest::of(b"two").as_str()); };
        backend_ingest_data: |s| s.backend_ingests.values_mut().next().unwrap().data.push(b'd');
        backend_ingest_offset: |s| s.backend_ingests.values_mut().next().unwrap().offset = 1;
        backend_ingest_total: |s| s.backend_ingests.values_mut().next().unwrap().total = 0;
        backend_ingest_removed: |s| s.backend_ingests.clear();
        blobs_dir: |s| s.blobs_dir = false;
        scheduler_dirty: |s| s.scheduler.dirty += 1;
        scheduler_dirty_cs: |s| s.scheduler.dirty_cs = !s.scheduler.dirty_cs;
        scheduler_mutations: |s| s.scheduler.mutations += 1;
        scheduler_deletions: |s| s.scheduler.deletions += 1;
        clock: |s| s.advance_clock(Duration(1));
        fresh_id_counter: |s| { s.fresh_id("x"); };
        semantics: |s| s.semantics = Semantics::V1_7;
    }
}
