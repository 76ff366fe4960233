//! The registry as the model sees it: objects per repository ([`RepoObject`]), and what an
//! execution's registry starts with ([`seed`]), the one plan both the model's registry and a real
//! backend's private docker-registry are filled from (`session.rs` `seed_registry`).

use crate::scenario::{ProgramSpec, Scenario};
use pushrace_models::oci::{Blob, Role};
use std::collections::{BTreeMap, BTreeSet};

/// A registry object in one repository: a blob or manifest by digest (`sha256:…`), or a tag as
/// `REPO/manifests/TAG`. The registry keeps each repository's objects apart: a HEAD of
/// `/v2/app/blobs/D` answers 404 when only `base` has D (distribution 2.8 links a blob into a
/// repository by an upload or a mount, and serves it only from the repositories it is linked in).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoObject {
    pub repo: String,
    pub object: String,
}

impl RepoObject {
    pub fn new(repo: &str, object: &str) -> RepoObject {
        RepoObject {
            repo: repo.to_string(),
            object: object.to_string(),
        }
    }

    /// A tag, named as the registry proxy names it.
    pub fn tag(repo: &str, tag: &str) -> RepoObject {
        RepoObject::new(repo, &format!("{repo}/manifests/{tag}"))
    }
}

/// What the registry holds: objects per repository, and each tag's target. A manifest put by tag
/// exists by its digest too; a HEAD by tag answers 200 with the tag's digest, which the pusher
/// compares with the one it pushes (`remotes/docker/pusher.go` push: `Docker-Content-Digest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    objects: BTreeSet<RepoObject>,
    /// A tag ([`RepoObject::tag`]) -> the digest it names.
    tags: BTreeMap<RepoObject, String>,
}

impl Registry {
    /// A HEAD: the object is there (a tag: it names anything).
    pub fn has(&self, o: &RepoObject) -> bool {
        self.objects.contains(o) || self.tags.contains_key(o)
    }

    /// A HEAD by tag, as the pusher reads it: the tag names `digest`.
    pub fn tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        self.tags.get(tag).is_some_and(|d| d == digest)
    }

    pub fn put(&mut self, o: &RepoObject) {
        self.objects.insert(o.clone());
    }

    /// A cross-repository mount: `o` is put when `from` has its object; whether it was.
    /// docker-registry (distribution 2.8, `registry/handlers/blobupload.go` `mountBlob`) links the
    /// blob into the target when the source repository has it, and otherwise starts an ordinary
    /// upload.
    pub fn mount(&mut self, o: &RepoObject, from: &str) -> bool {
        let has = self.has(&RepoObject::new(from, &o.object));
        if has {
            self.put(o);
        }
        has
    }

    /// A manifest PUT by tag: the manifest `digest` is there, and the tag names it.
    pub fn put_tagged(&mut self, tag: &RepoObject, digest: &str) {
        self.put(&RepoObject::new(&tag.repo, digest));
        self.tags.insert(tag.clone(), digest.to_string());
    }

    /// Every object and tag, in order, for a state fingerprint.
    pub fn encode(&self, h: &mut pushrace_models::fingerprint::Enc) {
        h.u64(self.objects.len() as u64);
        for o in &self.objects {
            h.str(&o.repo).str(&o.object);
        }
        h.u64(self.tags.len() as u64);
        for (t, d) in &self.tags {
            h.str(&t.repo).str(&t.object).str(d);
        }
    }
}

/// `example.com/app:1` -> (`app`, `1`): the repository and tag a name reaches on the registry
/// (every host of a scenario's names is the one registry).
pub fn repo_and_tag(name: &str) -> (&str, &str) {
    let path = name.split_once('/').map_or(name, |(_, p)| p);
    path.rsplit_once(':').unwrap_or((path, "latest"))
}

/// Blobs of one image put into one repository before the actors run, the index (when among
/// them) under `tag`.
pub struct Seeded<'a> {
    pub repo: &'a str,
    pub tag: &'a str,
    pub blobs: Vec<&'a Blob>,
}

impl Seeded<'_> {
    /// The index among the blobs, which the registry holds by tag.
    pub fn index(&self) -> Option<&Blob> {
        self.blobs
            .iter()
            .copied()
            .find(|b| matches!(b.role, Role::Index))
    }
}

/// What the registry holds when an execution starts:
/// - what the scenario's `registry` says it has: each image's blobs under its own repository
///   (`example.com/app:1` -> `app`; the pushes push there, and HEAD there);
/// - for each `nerdctl.pull`, the whole image it pulls (its `ref`'s fixture) under its `remote`'s
///   repository and tag: what a real pull downloads (the model's pull reads its fixture), and
///   what a push can mount from once the pull has labelled a blob with that repository.
pub fn seed(s: &Scenario) -> Vec<Seeded<'_>> {
    let mut plan = Vec::new();
    for im in &s.images {
        let (repo, tag) = repo_and_tag(&im.reference);
        let has = |b: &&Blob| s.registry.contains(b.digest());
        let blobs = im.fixture.blobs().filter(has).collect();
        plan.push(Seeded { repo, tag, blobs });
    }
    for a in &s.actors {
        let ProgramSpec::Pull {
            reference, remote, ..
        } = &a.program
        else {
            continue;
        };
        let Some(im) = s.images.iter().find(|im| &im.reference == reference) else {
            continue;
        };
        let (repo, tag) = repo_and_tag(remote);
        let blobs = im.fixture.blobs().collect();
        plan.push(Seeded { repo, tag, blobs });
    }
    plan
}

/// The model's registry at the start of an execution of `s`: [`seed`]'s blobs and tags.
pub fn initial(s: &Scenario) -> Registry {
    let mut r = Registry::default();
    for im in seed(s) {
        im.blobs
            .iter()
            .for_each(|b| r.put(&RepoObject::new(im.repo, b.digest())));
        if let Some(index) = im.index() {
            r.put_tagged(&RepoObject::tag(im.repo, im.tag), index.digest());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Exec, Shared, Sim};
    use pushrace_models::{Semantics, Store};

    /// distribution 2.8 keeps repositories apart (a HEAD in `app` misses a blob only `base`
    /// has) and mounts a blob only from a repository that has it (`registry/handlers/
    /// blobupload.go`: 201 Created, else an upload session, 202, and nothing linked).
    #[test]
    fn repositories_are_apart_and_a_mount_needs_the_source() {
        let sim: Shared = std::rc::Rc::new(std::cell::RefCell::new(Sim::new(Store::new(
            Semantics::V1_6,
        ))));
        let d = "sha256:6111ab9896b8";
        sim.registry_put(&RepoObject::new("base", d));
        let app = RepoObject::new("app", d);
        assert!(!sim.registry_has(&app));
        assert!(!sim.registry_mount(&app, "other"));
        assert!(!sim.registry_has(&app));
        assert!(sim.registry_mount(&app, "base"));
        assert!(sim.registry_has(&app));
    }

    /// A manifest put by tag is there by its digest, and a HEAD by tag exists for the pusher only
    /// when the tag names the digest it pushes (containerd's `client.Push` pushes the root as
    /// `REF@DIGEST`, `getManifestPath` checks and puts it by tag; the others go by digest).
    #[test]
    fn a_tag_names_one_digest() {
        let mut r = Registry::default();
        let tag = RepoObject::tag("app", "1");
        assert!(!r.has(&tag) && !r.tagged(&tag, "sha256:r"));
        r.put_tagged(&tag, "sha256:r");
        assert!(r.has(&tag) && r.tagged(&tag, "sha256:r") && !r.tagged(&tag, "sha256:o"));
        assert!(r.has(&RepoObject::new("app", "sha256:r")));
        r.put_tagged(&tag, "sha256:o");
        assert!(r.tagged(&tag, "sha256:o") && !r.tagged(&tag, "sha256:r"));
        assert!(
            r.has(&RepoObject::new("app", "sha256:r")),
            "the old manifest stays"
        );
    }

    /// A pull's image is seeded whole under its `remote`'s repository, tag included; an image's
    /// own repository gets only what the scenario's `registry` lists (here nothing).
    #[test]
    fn the_seed_puts_a_pulls_image_under_its_remote() {
        let s = crate::library::load("push-pull-rmi-go").unwrap();
        let r = initial(&s);
        assert!(r.objects.iter().all(|o| o.repo == "base"), "{r:?}");
        let app = s
            .images
            .iter()
            .find(|im| im.reference == "example.com/app:1");
        let fixture = &app.unwrap().fixture;
        assert_eq!(r.objects.len(), fixture.blobs().count());
        let tag = RepoObject::tag("base", "1");
        assert!(r.tagged(&tag, fixture.index.digest()), "{r:?}");
        assert_eq!(r.tags.len(), 1);
    }
}
