//! The garbage collector: metadata/gc.go (`scanRoots`, `references`, `scanAll`, `remove`) and
//! `DB.GarbageCollect` (mark, sweep, then the content backend cleanup).
//!
//! Every edge the GC follows stays inside one namespace, so marking runs namespace by namespace;
//! the backend cleanup is global: bytes go when no namespace has a record for them and no ingest
//! expects them, and backend ingests go when no ingest bucket names them; only after a GC that
//! found the content store dirty.

use crate::digest::{ByText, Digest};
use crate::fasthash::{map_with_capacity, set_with_capacity, FastMap, FastSet};
use crate::fingerprint::{entry, sub};
use crate::labels;
use crate::store::{backend_ref, ContentRecord, Image, Namespace, Store};
use std::collections::{BTreeMap, BTreeSet};

/// What one GC removed, for traces and for checking `gc-safety`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GcReport {
    /// (namespace, digest) of content records swept.
    pub content: Vec<(String, String)>,
    pub ingests: Vec<(String, String)>,
    pub leases: Vec<(String, String)>,
    /// 2.x: expired images swept.
    pub images: Vec<(String, String)>,
    /// Blobs the backend cleanup deleted.
    pub blobs: Vec<String>,
}

impl GcReport {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
            && self.ingests.is_empty()
            && self.leases.is_empty()
            && self.images.is_empty()
            && self.blobs.is_empty()
    }
}

/// The marked (live) objects of one namespace.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Marked {
    pub content: BTreeSet<String>,
    pub ingests: BTreeSet<String>,
    pub leases: BTreeSet<String>,
    pub images: BTreeSet<String>,
}

/// Marks borrowed from the namespace: what both `mark` and `gc` build (membership only: nothing
/// iterates the hashed sets, so hash order never reaches any output).
struct MarkedRefs<'a, C> {
    content: C,
    ingests: FastSet<&'a str>,
    leases: FastSet<&'a str>,
    images: FastSet<&'a str>,
}

/// Where marking records content.
trait ContentMarks<'a> {
    /// Marks `d` (as written: possibly dangling); `full` unless reached through a flat lease. The
    /// record, when its labels are to be followed now (its first full visit).
    fn visit(&mut self, d: Ref<'a>, full: bool) -> Option<&'a ContentRecord>;

    /// Pushes the records with `containerd.io/gc.root` (`n`'s content, which this marks).
    fn push_roots(&mut self, n: &'a Namespace, stack: &mut Vec<Node<'a>>);
}

/// A content edge: the text a label, target or lease holds, or a digest the store keeps (a
/// record's own key, an ingest's expected digest), which needs no text to be found.
#[derive(Clone, Copy)]
enum Ref<'a> {
    Text(&'a str),
    Key(&'a Digest),
}

impl<'a> Ref<'a> {
    fn as_bytes(self) -> &'a [u8] {
        match self {
            Ref::Text(s) => s.as_bytes(),
            Ref::Key(d) => d.as_bytes(),
        }
    }

    fn lead(self) -> Option<u64> {
        match self {
            Ref::Text(s) => crate::digest::lead_of_text(s),
            Ref::Key(d) => d.lead(),
        }
    }

    fn is(self, key: &Digest) -> bool {
        match self {
            Ref::Text(s) => crate::digest::is_text_of(key, s.as_bytes()),
            Ref::Key(d) => d == key,
        }
    }
}

/// Content marks by digest string, dangling ones included (what `mark` reports), and whether
/// the labels were followed (a full visit, not only a flat one): one lookup per node.
struct ByDigest<'a> {
    marks: FastMap<&'a str, bool>,
    records: &'a BTreeMap<Digest, ContentRecord>,
}

impl<'a> ContentMarks<'a> for ByDigest<'a> {
    fn visit(&mut self, d: Ref<'a>, full: bool) -> Option<&'a ContentRecord> {
        let d = match d {
            Ref::Text(s) => s,
            Ref::Key(k) => k.as_str(),
        };
        if !full {
            self.marks.entry(d).or_insert(false);
            return None;
        }
        if self.marks.insert(d, true) == Some(true) {
            return None;
        }
        self.records.get_text(d).map(|(_, rec)| rec)
    }

    fn push_roots(&mut self, n: &'a Namespace, stack: &mut Vec<Node<'a>>) {
        for (d, rec) in &n.content {
            if rec.gc.root {
                stack.push(Node::Content(Ref::Key(d)));
            }
        }
    }
}

/// A record's mark in [`ByPosition`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unmarked,
    /// Reached through a flat lease only: kept, its labels not followed.
    Flat,
    /// Kept, its labels followed.
    Full,
}

/// Content marks by the record's position in key order (what `gc` uses: it only asks which
/// records stay, and then reads the marks in the order it sweeps). An edge costs a look at one
/// bucket of the keys' lead words (a sha256 digest's hex digits are uniform: about one key a
/// bucket) and one comparison of the text.
struct ByPosition<'a> {
    keys: Vec<&'a Digest>,
    /// `None` when some key is not sha256 (never so for content the store computed; then `find`
    /// searches the keys themselves).
    index: Option<LeadIndex>,
    records: Vec<&'a ContentRecord>,
    marks: Vec<Mark>,
    /// The records with `containerd.io/gc.root`, found in the pass that lists the records.
    roots: Vec<Node<'a>>,
}

/// Where in the sorted keys each lead word lies: bucket `b` (the top bits of the lead's value,
/// `digest::lead_value`) holds positions `starts[b]..starts[b + 1]`.
struct LeadIndex {
    /// `Digest::lead` of each key, ascending with the keys.
    leads: Vec<u64>,
    /// `lead_value >> shift` is the bucket: about as many buckets as keys, a power of 2.
    shift: u32,
    starts: Vec<u32>,
}

impl LeadIndex {
    fn new(leads: Vec<u64>) -> LeadIndex {
        let bits = (leads.len() / 2 + 1).next_power_of_two().trailing_zeros();
        let shift = 32 - bits;
        let buckets = 1usize << bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        for (i, &l) in leads.iter().enumerate() {
            // Keys are lower hex, so their buckets ascend with them: each bucket is one run.
            let b = bucket(l, shift);
            debug_assert!(starts.len() <= b + 1, "buckets ascend with the keys");
            starts.resize(b + 1, i as u32);
        }
        starts.resize(buckets + 1, leads.len() as u32);
        LeadIndex {
            leads,
            shift,
            starts,
        }
    }

    /// The positions whose lead may be `lead`.
    fn candidates(&self, lead: u64) -> std::ops::Range<usize> {
        let b = bucket(lead, self.shift);
        self.starts[b] as usize..self.starts[b + 1] as usize
    }
}

/// The top `32 - shift` bits of the lead's value (none when `shift` is 32: one bucket).
fn bucket(lead: u64, shift: u32) -> usize {
    (u64::from(crate::digest::lead_value(lead)) >> shift) as usize
}

impl<'a> ByPosition<'a> {
    fn new(content: &'a BTreeMap<Digest, ContentRecord>) -> ByPosition<'a> {
        let mut keys = Vec::with_capacity(content.len());
        let mut records = Vec::with_capacity(content.len());
        let mut leads = Some(Vec::with_capacity(content.len()));
        let mut roots = Vec::new();
        for (k, rec) in content {
            keys.push(k);
            records.push(rec);
            if rec.gc.root {
                roots.push(Node::Content(Ref::Key(k)));
            }
            match (&mut leads, k.lead()) {
                (Some(ls), Some(l)) => ls.push(l),
                _ => leads = None,
            }
        }
        ByPosition {
            index: leads.map(LeadIndex::new),
            keys,
            records,
            marks: vec![Mark::Unmarked; content.len()],
            roots,
        }
    }

    /// The position of the record for `d`; keys are in text order, which `Digest`'s order is.
    fn find(&self, d: Ref<'_>) -> Option<usize> {
        let Some(index) = &self.index else {
            let text = d.as_bytes();
            return self.keys.binary_search_by(|k| k.as_bytes().cmp(text)).ok();
        };
        // Not a sha256 digest: no key (all sha256 here) can be it.
        let lead = d.lead()?;
        index
            .candidates(lead)
            .find(|&i| index.leads[i] == lead && d.is(self.keys[i]))
    }
}

impl<'a> ContentMarks<'a> for ByPosition<'a> {
    fn visit(&mut self, d: Ref<'a>, full: bool) -> Option<&'a ContentRecord> {
        let i = self.find(d)?;
        let mark = &mut self.marks[i];
        match (full, *mark) {
            (false, Mark::Unmarked) => *mark = Mark::Flat,
            (false, _) | (true, Mark::Full) => return None,
            (true, _) => *mark = Mark::Full,
        }
        Some(self.records[i]).filter(|_| full)
    }

    fn push_roots(&mut self, _: &'a Namespace, stack: &mut Vec<Node<'a>>) {
        stack.append(&mut self.roots);
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Content(Ref<'a>),
    /// Content reached through a flat lease: marked, its labels not followed.
    ContentFlat(Ref<'a>),
    Ingest(&'a str),
    /// An image by name, with the image itself when the root walk has it at hand.
    Image(&'a str, Option<&'a Image>),
}

/// A record's content references, to visit.
fn push_refs<'a>(stack: &mut Vec<Node<'a>>, rec: &'a ContentRecord) {
    match &rec.gc.refs {
        Some(refs) => stack.extend(refs.iter().map(|d| Node::Content(Ref::Key(d)))),
        None => {
            let refs = labels::content_refs(&rec.labels);
            stack.extend(refs.map(|d| Node::Content(Ref::Text(d))))
        }
    }
}

/// One map's unmarked entries. A GC mostly sweeps a few entries of many: their keys, removed one
/// by one without walking the rest; when it sweeps many, a decision per entry for one `retain`
/// pass, which then costs less than as many removals.
enum Sweep<K> {
    /// The keys to remove, ascending.
    Few(Vec<K>),
    /// Whether each entry stays, in key order; with how many go.
    Many(Vec<bool>, usize),
}

impl<K: Ord + Clone> Sweep<K> {
    /// From every entry's key and whether it stays, in key order (walked a second time when
    /// few go, to take their keys).
    fn of<'k>(entries: impl Iterator<Item = (&'k K, bool)> + Clone) -> Sweep<K>
    where
        K: 'k,
    {
        let keep: Vec<bool> = entries.clone().map(|(_, kept)| kept).collect();
        let gone = keep.iter().filter(|&&kept| !kept).count();
        if gone * 8 >= keep.len() {
            return Sweep::Many(keep, gone);
        }
        let keys = entries.filter(|&(_, kept)| !kept).map(|(k, _)| k.clone());
        Sweep::Few(keys.collect())
    }

    /// How many entries go.
    fn len(&self) -> usize {
        match self {
            Sweep::Few(keys) => keys.len(),
            Sweep::Many(_, gone) => *gone,
        }
    }

    /// Removes the entries from `map`, each handed to `removed` in key order (as a walk would).
    fn apply<V>(self, map: &mut BTreeMap<K, V>, mut removed: impl FnMut(&K, &V)) {
        match self {
            Sweep::Few(keys) => {
                debug_assert!(keys.windows(2).all(|w| w[0] < w[1]), "swept keys ascend");
                for k in keys {
                    let v = map.remove(&k).expect("a swept key is in the map");
                    removed(&k, &v);
                }
            }
            Sweep::Many(keep, _) => {
                let mut it = keep.into_iter();
                map.retain(|k, v| {
                    let keep = it.next().expect("one decision per entry");
                    if !keep {
                        removed(k, v);
                    }
                    keep
                });
                debug_assert!(it.next().is_none(), "one decision per entry");
            }
        }
    }
}

impl Store {
    /// Mark: the set of objects reachable from the namespace's roots at the store's `now`
    /// (content as written, dangling digests included).
    pub fn mark(&self, n: &Namespace) -> Marked {
        let content = ByDigest {
            marks: map_with_capacity(n.content.len()),
            records: &n.content,
        };
        let m = self.mark_refs(n, content);
        let owned = |s: FastSet<&str>| s.into_iter().map(str::to_string).collect();
        Marked {
            content: m.content.marks.into_keys().map(str::to_string).collect(),
            ingests: owned(m.ingests),
            leases: owned(m.leases),
            images: owned(m.images),
        }
    }

    /// The roots of `n` at the store's `now`, on a stack of nodes to visit.
    fn roots<'a, C: ContentMarks<'a>>(
        &self,
        n: &'a Namespace,
        marked: &mut MarkedRefs<'a, C>,
    ) -> Vec<Node<'a>> {
        let now = self.now;
        let mut stack: Vec<Node<'a>> = Vec::with_capacity(n.content.len());
        for (id, lease) in &n.leases {
            if !lease.alive_at(now) {
                continue;
            }
            marked.leases.insert(id);
            let flat = lease.flat();
            for d in &lease.content {
                stack.push(if flat {
                    Node::ContentFlat(Ref::Text(d))
                } else {
                    Node::Content(Ref::Text(d))
                });
            }
            stack.extend(lease.ingests.iter().map(|r| Node::Ingest(r)));
            stack.extend(lease.images.iter().map(|i| Node::Image(i, None)));
        }
        let images_expire = self.semantics.images_expire();
        for (name, image) in &n.images {
            let expired = images_expire
                && image
                    .labels
                    .get(labels::GC_EXPIRE)
                    .and_then(|v| crate::clock::Instant::parse_rfc3339(v))
                    .is_some_and(|exp| now > exp);
            if !expired {
                stack.push(Node::Image(name, Some(image)));
            }
        }
        for (r, ingest) in &n.ingests {
            if ingest.expire_at.is_some_and(|ea| ea >= now) {
                stack.push(Node::Ingest(r));
            }
        }
        marked.content.push_roots(n, &mut stack);
        stack
    }

    fn mark_refs<'a, C: ContentMarks<'a>>(
        &self,
        n: &'a Namespace,
        content: C,
    ) -> MarkedRefs<'a, C> {
        // Sized to the namespace up front: growing these sets was a third of a GC.
        let mut marked = MarkedRefs {
            content,
            ingests: set_with_capacity(n.ingests.len()),
            leases: set_with_capacity(n.leases.len()),
            images: set_with_capacity(n.images.len()),
        };
        let mut stack = self.roots(n, &mut marked);
        // Tricolor mark. A flat and a full visit of the same digest are different nodes (as in
        // gc.Tricolor, where the flat bit is stripped only when blackening).
        while let Some(node) = stack.pop() {
            match node {
                Node::ContentFlat(d) => {
                    marked.content.visit(d, false);
                }
                Node::Content(d) => {
                    if let Some(rec) = marked.content.visit(d, true) {
                        push_refs(&mut stack, rec);
                    }
                }
                Node::Ingest(r) => {
                    if !marked.ingests.insert(r) {
                        continue;
                    }
                    if let Some(e) = n.ingests.get(r).and_then(|i| i.expected.as_ref()) {
                        stack.push(Node::Content(Ref::Key(e)));
                    }
                }
                Node::Image(name, image) => {
                    if !marked.images.insert(name) {
                        continue;
                    }
                    if let Some(image) = image.or_else(|| n.images.get(name)) {
                        stack.push(Node::Content(Ref::Text(&image.target.digest)));
                        stack.extend(
                            labels::content_refs(&image.labels)
                                .map(|d| Node::Content(Ref::Text(d))),
                        );
                    }
                }
            }
        }
        marked
    }

    /// A full, stop-the-world GC of every namespace (`DB.GarbageCollect` + content cleanup).
    ///
    /// Linear in the size of the store, up to a log factor per edge (every map is walked once in
    /// key order, so the report lists removals in a deterministic order).
    pub fn gc(&mut self) -> GcReport {
        let mut report = GcReport::default();
        let decisions: Vec<Swept> = self.namespaces.values().map(|n| self.swept(n)).collect();
        // Each swept record or ingest may leave a blob held by nothing. When those, with the
        // candidates already listed, are many, the backend cleanup walks every blob instead of
        // looking at candidates, and they need not be listed.
        let may_free: usize = decisions
            .iter()
            .map(|d| d.content.len() + d.ingests.len())
            .sum();
        let walk = (self.cleanup_candidates.len() + may_free) * 8 >= self.blobs.len();
        self.sweep(decisions, !walk, &mut report);
        let mut cleaned = false;
        if !report.content.is_empty() || !report.ingests.is_empty() {
            self.scheduler.dirty_cs = true;
        }
        if self.scheduler.dirty_cs {
            self.scheduler.dirty_cs = false;
            // Without `blobs/` (nothing ever committed) the cleanup fails before it starts.
            if self.blobs_dir {
                self.backend_cleanup(&mut report, walk);
                cleaned = true;
            }
        }
        if walk && !cleaned && may_free > 0 {
            // Never so (a sweep that may free a blob makes the content store dirty, and a store
            // with records or expecting ingests has `blobs/`), but the candidates must cover
            // whatever the sweep did not list.
            let unheld = self.unheld_blobs().into_iter().cloned().collect();
            self.cleanup_candidates = unheld;
        }
        self.scheduler.collected();
        report
    }

    /// Removes what `decisions` (one per namespace, in order) sweep, into the report; listing
    /// the blobs that may be left held by nothing as cleanup candidates when `list`.
    fn sweep(&mut self, decisions: Vec<Swept>, list: bool, report: &mut GcReport) {
        let sum = &mut self.fp_sum;
        let candidates = &mut self.cleanup_candidates;
        for ((name, n), swept) in self.namespaces.iter_mut().zip(decisions) {
            swept.leases.apply(&mut n.leases, |id, l| {
                sub(sum, entry::lease(name, id, l));
                report.leases.push((name.clone(), id.clone()))
            });
            swept.ingests.apply(&mut n.ingests, |r, i| {
                sub(sum, entry::ingest(name, r, i));
                if list {
                    candidates.extend(i.expected.clone());
                }
                report.ingests.push((name.clone(), r.clone()))
            });
            swept.content.apply(&mut n.content, |d, rec| {
                sub(sum, entry::content(name, d.as_str(), rec));
                if list {
                    candidates.push(d.clone());
                }
                report.content.push((name.clone(), d.to_string()));
            });
            swept.images.apply(&mut n.images, |i, image| {
                sub(sum, entry::image(name, i, image));
                report.images.push((name.clone(), i.clone()))
            });
        }
    }

    /// What goes of one namespace: its unmarked entries.
    fn swept(&self, n: &Namespace) -> Swept {
        let m = self.mark_refs(n, ByPosition::new(&n.content));
        let content = (m.content.keys.iter().zip(&m.content.marks))
            .map(|(&k, &mark)| (k, mark != Mark::Unmarked));
        let images_collectible = self.semantics.images_expire();
        Swept {
            leases: unmarked_in(&n.leases, &m.leases),
            ingests: unmarked_in(&n.ingests, &m.ingests),
            content: Sweep::of(content),
            images: match images_collectible {
                true => unmarked_in(&n.images, &m.images),
                false => Sweep::Few(Vec::new()),
            },
        }
    }

    /// The content backend's cleanup: blobs no namespace has a record for and no ingest expects
    /// are deleted, and backend ingests no bucket names are aborted (`WalkStatusRefs` + `Abort`).
    ///
    /// Only the cleanup candidates can be such blobs (the invariant of `cleanup_candidates`), so
    /// unless told to `walk` every blob (the caller's choice when they are many, then not all
    /// listed) only they are looked at; either way the same blobs go, in digest order.
    fn backend_cleanup(&mut self, report: &mut GcReport, walk: bool) {
        let mut candidates = std::mem::take(&mut self.cleanup_candidates);
        let gone = if walk {
            let held = self.held_blobs();
            Sweep::of(self.blobs.keys().zip(held))
        } else {
            candidates.sort_unstable();
            candidates.dedup();
            self.unheld_candidates(&mut candidates);
            Sweep::Few(std::mem::take(&mut candidates))
        };
        let sum = &mut self.fp_sum;
        gone.apply(&mut self.blobs, |d, _| {
            sub(sum, entry::blob(d.as_str()));
            report.blobs.push(d.to_string())
        });
        // Every blob left is held by a record or an ingest: none is a candidate any more.
        candidates.clear();
        self.cleanup_candidates = candidates;
        let namespaces = &self.namespaces;
        self.backend_ingests.retain(|bref, b| {
            let keep = named_by_a_bucket(namespaces, bref);
            if !keep {
                sub(sum, entry::backend_ingest(bref, b));
            }
            keep
        });
    }

    /// Keeps of the (sorted) `candidates` the blobs nothing holds.
    fn unheld_candidates(&self, candidates: &mut Vec<Digest>) {
        let expected = self.expected_blobs();
        candidates.retain(|d| {
            self.blobs.contains_key(d)
                && !self.namespaces.values().any(|n| n.content.contains_key(d))
                && expected.binary_search(&d).is_err()
        });
    }

    /// Every digest some ingest bucket expects, sorted (repeats kept).
    fn expected_blobs(&self) -> Vec<&Digest> {
        let mut expected: Vec<&Digest> = self
            .namespaces
            .values()
            .flat_map(|n| n.ingests.values().filter_map(|i| i.expected.as_ref()))
            .collect();
        expected.sort_unstable();
        expected
    }

    /// Notes that the blob `d` may have lost its last reference (or was created without one): the
    /// next backend cleanup looks at it. Repeats are collapsed now and then, and digests without
    /// a blob dropped, so the list stays within about twice the blobs.
    pub(crate) fn cleanup_candidate(&mut self, d: Digest) {
        let c = &mut self.cleanup_candidates;
        c.push(d);
        if c.len() >= 2 * self.blobs.len() + 64 {
            c.sort_unstable();
            c.dedup();
            c.retain(|d| self.blobs.contains_key(d));
        }
    }

    /// Whether each blob (in digest order) has a record in some namespace or an ingest that
    /// expects it, found by walking every blob: blobs and every namespace's records are in the
    /// same (digest) order, so one merge of the sorted key sequences decides every blob.
    fn held_blobs(&self) -> Vec<bool> {
        let expected = self.expected_blobs();
        let mut records: Vec<_> = self
            .namespaces
            .values()
            .map(|n| n.content.keys().peekable())
            .collect();
        self.blobs
            .keys()
            .map(|d| {
                let mut recorded = false;
                for keys in &mut records {
                    while keys.next_if(|k| *k < d).is_some() {}
                    recorded |= keys.peek() == Some(&d);
                }
                recorded || expected.binary_search(&d).is_ok()
            })
            .collect()
    }

    /// The blobs nothing holds (`held_blobs`): what the cleanup candidates stand for.
    fn unheld_blobs(&self) -> Vec<&Digest> {
        let held = self.held_blobs();
        (self.blobs.keys().zip(held))
            .filter(|&(_, held)| !held)
            .map(|(d, _)| d)
            .collect()
    }

    /// Checks the GC's incremental bookkeeping against a walk of the whole store: every blob no
    /// record or ingest holds is a cleanup candidate. Returns the first violation found.
    pub fn check_gc_bookkeeping(&self) -> Result<(), String> {
        match self
            .unheld_blobs()
            .into_iter()
            .find(|d| !self.cleanup_candidates.contains(d))
        {
            Some(d) => Err(format!(
                "blob {d} is held by nothing but is no cleanup candidate"
            )),
            None => Ok(()),
        }
    }
}

/// What of `map` goes: the entries whose keys are not in `marks`.
fn unmarked_in<V>(map: &BTreeMap<String, V>, marks: &FastSet<&str>) -> Sweep<String> {
    Sweep::of(map.keys().map(|k| (k, marks.contains(k.as_str()))))
}

/// One namespace's unmarked entries.
struct Swept {
    leases: Sweep<String>,
    ingests: Sweep<String>,
    content: Sweep<Digest>,
    /// None unless images are collected (2.x).
    images: Sweep<String>,
}

/// Whether some namespace's ingest bucket has `bref` as its backend ref (`backend_ref(ns, r)`,
/// `{ns}/1/{r}`): each `/1/` in it (overlapping ones too) is tried as the split, without
/// formatting every bucket's ref.
fn named_by_a_bucket(namespaces: &BTreeMap<String, Namespace>, bref: &str) -> bool {
    const SEP: &str = "/1/";
    (0..bref.len())
        .filter(|&i| bref.as_bytes()[i..].starts_with(SEP.as_bytes()))
        .any(|i| {
            // `/` is ASCII: both ends are character boundaries.
            let (ns, r) = (&bref[..i], &bref[i + SEP.len()..]);
            debug_assert!(backend_ref(ns, r) == bref);
            namespaces
                .get(ns)
                .is_some_and(|n| n.ingests.contains_key(r))
        })
}

#[cfg(test)]
mod tests {
    use crate::labels::GC_ROOT;
    use crate::{Ctx, Digest, Labels, Semantics, Store, WriteStyle};

    fn write(s: &mut Store, r: &str, data: &[u8], labels: &[(&str, &str)]) -> Digest {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.write_blob(&Ctx::default(), r, data, None, &labels, WriteStyle::Open)
            .unwrap()
    }

    /// A root's references are followed whether or not every one is a digest (the cached sha256
    /// edges, or the labels read as text), and the sweep keeps exactly what `mark` marks.
    #[test]
    fn sweep_follows_every_form_of_reference_and_agrees_with_mark() {
        for other in ["not a digest", "sha256:ABC", "sha512:00"] {
            let mut s = Store::new(Semantics::V1_6);
            let child = write(&mut s, "c", b"child", &[]);
            let orphan = write(&mut s, "o", b"orphan", &[]);
            let (a, b) = (child.to_string(), other.to_string());
            let refs = [
                (GC_ROOT, "1"),
                ("containerd.io/gc.ref.content.a", a.as_str()),
                ("containerd.io/gc.ref.content.b", b.as_str()),
            ];
            let parent = write(&mut s, "p", b"parent", &refs);
            let marked = s.mark(&s.namespaces()["default"]);
            let report = s.gc();
            assert_eq!(
                report.content,
                [("default".to_string(), orphan.to_string())]
            );
            assert_eq!(report.blobs, [orphan.to_string()]);
            let kept: Vec<&Digest> = s.namespaces()["default"].content.keys().collect();
            let mut want = vec![&parent, &child];
            want.sort();
            assert_eq!(kept, want);
            assert!(kept.iter().all(|d| marked.content.contains(d.as_str())));
            assert!(marked.content.contains(other));
        }
    }

    /// At every store size (one bucket of lead words, a few, many) the sweep keeps exactly what
    /// `mark` marks and the cleanup deletes exactly the swept records' blobs, whether a third of
    /// the store goes (swept in one pass, every blob walked) or one record in `rare` (removed one
    /// by one, only candidates looked at). Roots have an edge to the record written after them,
    /// which is not one of the unrooted ones (it dangles after the last root).
    #[test]
    fn sweep_agrees_with_mark_at_every_size() {
        for (size, rare) in (0..70u32).flat_map(|size| [(size, 3), (size, 40)]) {
            let mut s = Store::new(Semantics::V1_6);
            let unrooted = |i: u32| i % rare == rare - 1;
            for i in 0..size {
                let next = if unrooted(i + 1) { i + 2 } else { i + 1 };
                let edge = Digest::of(format!("r{next}").as_bytes()).to_string();
                let l = [(GC_ROOT, "1"), ("containerd.io/gc.ref.content.c", &edge)];
                let l = if unrooted(i) { &[] } else { &l[..] };
                write(&mut s, &format!("w{i}"), format!("r{i}").as_bytes(), l);
            }
            let marked = s.namespaces().get("default").map(|n| s.mark(n).content);
            let marked = marked.unwrap_or_default();
            let report = s.gc();
            let kept: Vec<&Digest> = s
                .namespaces()
                .values()
                .flat_map(|n| n.content.keys())
                .collect();
            assert_eq!(kept.len() + report.content.len(), size as usize);
            let gone = (0..size).filter(|&i| unrooted(i)).count();
            assert_eq!(report.content.len(), gone, "size {size}, rare {rare}");
            assert!(kept.iter().all(|d| marked.contains(d.as_str())));
            assert!(report.content.iter().all(|(_, d)| !marked.contains(d)));
            let swept: Vec<&String> = report.content.iter().map(|(_, d)| d).collect();
            assert_eq!(report.blobs.iter().collect::<Vec<_>>(), swept);
            assert_eq!(s.check_gc_bookkeeping(), Ok(()));
        }
    }

    /// A backend ingest whose ref splits at `/1/` more than one way is kept when any split names
    /// a bucket (namespaces given to the store's methods directly are not validated).
    #[test]
    fn backend_cleanup_tries_every_split_of_a_backend_ref() {
        let mut s = Store::new(Semantics::V1_6);
        let gone = write(&mut s, "w", b"gone", &[]);
        let ctx = Ctx::new("a/1");
        let mut w = s.writer_open(&ctx, "1/r", None, 0).unwrap();
        s.writer_write(&mut w, b"x").unwrap();
        s.delete(&Ctx::default(), gone.as_str()).unwrap();
        let report = s.gc();
        assert_eq!(report.blobs, [gone.to_string()]);
        assert!(s.backend_ingests().contains_key("a/1/1/1/r"));
    }

    /// Candidates listed over and over without a cleanup are collapsed, and what they cover
    /// stays covered: a shared ingest opened and aborted again and again lists its blob each time.
    #[test]
    fn cleanup_candidates_stay_bounded_and_covering() {
        let mut s = Store::new(Semantics::V1_6);
        let d = write(&mut s, "w", b"shared", &[(GC_ROOT, "1")]);
        let other = write(&mut s, "o", b"other", &[]);
        let b = Ctx::new("b");
        for _ in 0..200 {
            s.writer_open(&b, "r", Some(&d), 0).unwrap();
            s.ingest_abort(&b, "r").unwrap();
            assert_eq!(s.check_gc_bookkeeping(), Ok(()));
        }
        assert!(s.cleanup_candidates.len() <= 2 * s.blobs().len() + 64);
        s.delete(&Ctx::default(), other.as_str()).unwrap();
        assert_eq!(s.gc().blobs, [other.to_string()]);
        assert!(s.cleanup_candidates.is_empty());
    }

    /// A store prints as it did before the cleanup candidates existed: they are not state.
    #[test]
    fn a_store_prints_without_its_cleanup_candidates() {
        let mut s = Store::new(Semantics::V1_6);
        let d = write(&mut s, "w", b"x", &[]);
        s.delete(&Ctx::default(), d.as_str()).unwrap();
        assert!(!s.cleanup_candidates.is_empty());
        let text = format!("{s:?}");
        assert!(text.starts_with("Store { semantics: V1_6, now: "), "{text}");
        assert!(
            text.ends_with(&format!("next_id: 1, fp_sum: {} }}", s.fp_sum)),
            "{text}"
        );
        assert!(!text.contains("cleanup"));
    }

    /// Traces print records as they did before the GC's cache existed.
    #[test]
    fn a_record_prints_its_size_and_labels_only() {
        let rec = crate::store::ContentRecord::new(5, Labels::new());
        assert_eq!(format!("{rec:?}"), "ContentRecord { size: 5, labels: {} }");
    }
}
