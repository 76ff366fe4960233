//! The garbage collector: metadata/gc.go (`scanRoots`, `references`, `scanAll`, `remove`) and
//! `DB.GarbageCollect` (mark, sweep, then the content backend cleanup).
//!
//! Every edge the GC follows stays inside one namespace, so marking runs namespace by namespace;
//! the backend cleanup is global: bytes go when no namespace has a record for them and no ingest
//! expects them, and backend ingests go when no ingest bucket names them; only after a GC that
//! found the content store dirty.

use crate::fasthash::{map_with_capacity, set_with_capacity, FastMap, FastSet};
use crate::fingerprint::{entry, sub};
use crate::labels::{self, GC_ROOT};
use crate::store::{backend_ref, Namespace, Store};
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

/// The same marks, borrowed from the namespace and hashed: what `gc` uses, so that a GC costs
/// time linear in the store (membership only: nothing iterates these sets, so hash order never
/// reaches any output).
struct MarkedRefs<'a> {
    /// Marked content, and whether its labels were followed (a full visit, not only a flat one):
    /// one lookup per node instead of a marked set and a seen set.
    content: FastMap<&'a str, bool>,
    ingests: FastSet<&'a str>,
    leases: FastSet<&'a str>,
    images: FastSet<&'a str>,
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Content(&'a str),
    /// Content reached through a flat lease: marked, its labels not followed.
    ContentFlat(&'a str),
    Ingest(&'a str),
    Image(&'a str),
}

/// Retains the entries of `map` whose position (in key order) has `true` in `keep`, pushing the
/// removed keys to `removed`. `BTreeMap::retain` visits in ascending key order, the same order
/// `keep` was computed in.
fn retain_in_order<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    keep: Vec<bool>,
    mut removed: impl FnMut(&K, &V),
) {
    let mut it = keep.into_iter();
    map.retain(|k, v| {
        let keep = it.next().expect("one decision per entry");
        if !keep {
            removed(k, v);
        }
        keep
    });
}

impl Store {
    /// Mark: the set of objects reachable from the namespace's roots at the store's `now`.
    pub fn mark(&self, n: &Namespace) -> Marked {
        let m = self.mark_refs(n);
        let owned = |s: FastSet<&str>| s.into_iter().map(str::to_string).collect();
        Marked {
            content: m.content.into_keys().map(str::to_string).collect(),
            ingests: owned(m.ingests),
            leases: owned(m.leases),
            images: owned(m.images),
        }
    }

    fn mark_refs<'a>(&self, n: &'a Namespace) -> MarkedRefs<'a> {
        let now = self.now;
        let images_expire = self.semantics.images_expire();
        // Sized to the namespace up front: growing these sets was a third of a GC.
        let mut marked = MarkedRefs {
            content: map_with_capacity(n.content.len()),
            ingests: set_with_capacity(n.ingests.len()),
            leases: set_with_capacity(n.leases.len()),
            images: set_with_capacity(n.images.len()),
        };
        let mut stack: Vec<Node<'a>> = Vec::with_capacity(n.content.len());

        for (id, lease) in &n.leases {
            if !lease.alive_at(now) {
                continue;
            }
            marked.leases.insert(id);
            let flat = lease.flat();
            for d in &lease.content {
                stack.push(if flat {
                    Node::ContentFlat(d)
                } else {
                    Node::Content(d)
                });
            }
            stack.extend(lease.ingests.iter().map(|r| Node::Ingest(r)));
            stack.extend(lease.images.iter().map(|i| Node::Image(i)));
        }
        for (name, image) in &n.images {
            let expired = images_expire
                && image
                    .labels
                    .get(labels::GC_EXPIRE)
                    .and_then(|v| crate::clock::Instant::parse_rfc3339(v))
                    .is_some_and(|exp| now > exp);
            if !expired {
                stack.push(Node::Image(name));
            }
        }
        for (r, ingest) in &n.ingests {
            if ingest.expire_at.is_some_and(|ea| ea >= now) {
                stack.push(Node::Ingest(r));
            }
        }
        for (d, rec) in &n.content {
            if rec.labels.contains_key(GC_ROOT) {
                stack.push(Node::Content(d.as_str()));
            }
        }

        // Tricolor mark. A flat and a full visit of the same digest are different nodes (as in
        // gc.Tricolor, where the flat bit is stripped only when blackening).
        while let Some(node) = stack.pop() {
            match node {
                Node::ContentFlat(d) => {
                    marked.content.entry(d).or_insert(false);
                }
                Node::Content(d) => {
                    if marked.content.insert(d, true) == Some(true) {
                        continue;
                    }
                    if let Some(rec) = n.content.get(d) {
                        stack.extend(labels::content_refs(&rec.labels).map(Node::Content));
                    }
                }
                Node::Ingest(r) => {
                    if !marked.ingests.insert(r) {
                        continue;
                    }
                    if let Some(e) = n.ingests.get(r).and_then(|i| i.expected.as_ref()) {
                        stack.push(Node::Content(e.as_str()));
                    }
                }
                Node::Image(name) => {
                    if !marked.images.insert(name) {
                        continue;
                    }
                    if let Some(image) = n.images.get(name) {
                        stack.push(Node::Content(&image.target.digest));
                        stack.extend(labels::content_refs(&image.labels).map(Node::Content));
                    }
                }
            }
        }
        marked
    }

    /// A full, stop-the-world GC of every namespace (`DB.GarbageCollect` + content cleanup).
    ///
    /// Linear in the size of the store (hash-set membership; every map is walked once in key
    /// order, so the report lists removals in a deterministic order).
    pub fn gc(&mut self) -> GcReport {
        let mut report = GcReport::default();
        let images_collectible = self.semantics.images_expire();
        type Keep = (Vec<bool>, Vec<bool>, Vec<bool>, Vec<bool>);
        let decisions: Vec<(String, Keep)> = self
            .namespaces
            .iter()
            .map(|(name, n)| {
                let m = self.mark_refs(n);
                let keep = (
                    n.leases
                        .keys()
                        .map(|k| m.leases.contains(k.as_str()))
                        .collect(),
                    n.ingests
                        .keys()
                        .map(|k| m.ingests.contains(k.as_str()))
                        .collect(),
                    n.content
                        .keys()
                        .map(|k| m.content.contains_key(k.as_str()))
                        .collect(),
                    n.images
                        .keys()
                        .map(|k| !images_collectible || m.images.contains(k.as_str()))
                        .collect(),
                );
                (name.clone(), keep)
            })
            .collect();
        for (name, (leases, ingests, content, images)) in decisions {
            let n = self.namespaces.get_mut(&name).expect("marked above");
            let sum = &mut self.fp_sum;
            retain_in_order(&mut n.leases, leases, |id, l| {
                sub(sum, entry::lease(&name, id, l));
                report.leases.push((name.clone(), id.clone()))
            });
            retain_in_order(&mut n.ingests, ingests, |r, i| {
                sub(sum, entry::ingest(&name, r, i));
                report.ingests.push((name.clone(), r.clone()))
            });
            retain_in_order(&mut n.content, content, |d, rec| {
                sub(sum, entry::content(&name, d.as_str(), rec));
                report.content.push((name.clone(), d.to_string()))
            });
            retain_in_order(&mut n.images, images, |i, image| {
                sub(sum, entry::image(&name, i, image));
                report.images.push((name.clone(), i.clone()))
            });
        }
        if !report.content.is_empty() || !report.ingests.is_empty() {
            self.scheduler.dirty_cs = true;
        }
        if self.scheduler.dirty_cs {
            self.scheduler.dirty_cs = false;
            // Without `blobs/` (nothing ever committed) the cleanup fails before it starts.
            if self.blobs_dir {
                let records = self.namespaces.values().map(|n| n.content.len()).sum();
                let mut seen: FastSet<&str> = set_with_capacity(records);
                for n in self.namespaces.values() {
                    seen.extend(n.content.keys().map(|d| d.as_str()));
                    seen.extend(
                        n.ingests
                            .values()
                            .filter_map(|i| i.expected.as_ref().map(|d| d.as_str())),
                    );
                }
                let keep: Vec<bool> = self
                    .blobs
                    .keys()
                    .map(|d| seen.contains(d.as_str()))
                    .collect();
                let sum = &mut self.fp_sum;
                retain_in_order(&mut self.blobs, keep, |d, _| {
                    sub(sum, entry::blob(d.as_str()));
                    report.blobs.push(d.to_string())
                });
                // Backend ingests no bucket names are aborted (`WalkStatusRefs` + `Abort`).
                let named: BTreeSet<String> = self
                    .namespaces
                    .iter()
                    .flat_map(|(ns, n)| n.ingests.keys().map(move |r| backend_ref(ns, r)))
                    .collect();
                let sum = &mut self.fp_sum;
                self.backend_ingests.retain(|bref, b| {
                    let keep = named.contains(bref);
                    if !keep {
                        sub(sum, entry::backend_ingest(bref, b));
                    }
                    keep
                });
            }
        }
        self.scheduler.collected();
        report
    }
}
