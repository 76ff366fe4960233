//! Images: metadata/images.go. An image is a name pointing at a target descriptor, plus labels.
//! Nothing checks that the target exists: a dangling target is a dead GC edge.

use crate::digest;
use crate::errors::{Error, ErrorKind};
use crate::fingerprint::{add, entry, sub};
use crate::labels::{self, Labels, GC_EXPIRE};
use crate::store::{Ctx, Descriptor, Image, Store};

/// Which fields an `Update` replaces (containerd's fieldpaths `target` and `labels`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ImageUpdate {
    pub target: Option<Descriptor>,
    pub labels: Option<Labels>,
}

/// metadata/images.go `validateImage`.
fn validate(name: &str, image: &Image) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::wrap(
            ErrorKind::InvalidArgument,
            "image name must not be empty",
        ));
    }
    labels::validate_all(&image.labels, "image.Labels")?;
    let t = &image.target;
    if let Err(e) = digest::validate(&t.digest) {
        return Err(Error::wrap(
            ErrorKind::InvalidArgument,
            format_args!("Target.Digest {:?} invalid: {e}", t.digest),
        ));
    }
    if t.size <= 0 {
        return Err(Error::wrap(
            ErrorKind::InvalidArgument,
            "Target.Size must be greater than zero",
        ));
    }
    if t.media_type.is_empty() {
        return Err(Error::wrap(
            ErrorKind::InvalidArgument,
            "Target.MediaType must be set",
        ));
    }
    Ok(())
}

/// metadata/images.go writeImage: `writing labels for image <name>: …` when bolt refuses a label.
fn write_check(name: &str, labels: &Labels) -> Result<(), Error> {
    labels::check_keys(labels).map_err(|e| {
        Error::raw(
            e.kind,
            format!("writing labels for image {name}: {}", e.message),
        )
    })
}

impl Store {
    pub fn image_get(&self, ctx: &Ctx, name: &str) -> Result<Image, Error> {
        self.namespaces
            .get(&ctx.namespace)
            .and_then(|n| n.images.get(name))
            .cloned()
            .ok_or_else(|| Error::image_not_found(name))
    }

    pub fn image_list(&self, ctx: &Ctx) -> Vec<(String, Image)> {
        self.namespaces
            .get(&ctx.namespace)
            .map_or_else(Vec::new, |n| {
                n.images
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
    }

    /// 2.x `addImageLease`: an image carrying `containerd.io/gc.expire` joins the context lease.
    fn lease_image(&mut self, ctx: &Ctx, name: &str, labels: &Labels) -> Result<(), Error> {
        if self.semantics.images_expire() && labels.contains_key(GC_EXPIRE) {
            if let Some(lease) = self.context_lease_mut(ctx)? {
                if lease.images.insert(name.to_string()) {
                    let id = ctx.lease.as_deref().expect("a context lease");
                    let h = entry::lease_resource(&ctx.namespace, id, "images", name);
                    add(&mut self.fp_sum, h);
                }
            }
        }
        Ok(())
    }

    pub fn image_create(&mut self, ctx: &Ctx, name: &str, image: Image) -> Result<Image, Error> {
        validate(name, &image)?;
        write_check(name, &image.labels)?;
        // 2.x leases the image before creating its bucket; the transaction rolls both back if the
        // name is taken, so check the lease first and attach only once the create will succeed.
        if self.semantics.images_expire() && image.labels.contains_key(GC_EXPIRE) {
            self.context_lease_mut(ctx)?;
        }
        if self
            .namespaces
            .get(&ctx.namespace)
            .is_some_and(|n| n.images.contains_key(name))
        {
            return Err(Error::image_exists(name));
        }
        self.lease_image(ctx, name, &image.labels)?;
        let n = self.ns_mut(&ctx.namespace);
        let stored = Image {
            target: image.target,
            labels: labels::stored(&image.labels),
        };
        n.images.insert(name.to_string(), stored.clone());
        add(
            &mut self.fp_sum,
            entry::image(&ctx.namespace, name, &stored),
        );
        self.scheduler.mutation();
        Ok(stored)
    }

    pub fn image_update(
        &mut self,
        ctx: &Ctx,
        name: &str,
        update: ImageUpdate,
    ) -> Result<Image, Error> {
        if name.is_empty() {
            return Err(Error::wrap(
                ErrorKind::InvalidArgument,
                "image name is required for update",
            ));
        }
        let mut updated = self.image_get(ctx, name)?;
        if let Some(t) = update.target {
            updated.target = t;
        }
        if let Some(l) = update.labels {
            updated.labels = l;
        }
        validate(name, &updated)?;
        write_check(name, &updated.labels)?;
        self.lease_image(ctx, name, &updated.labels)?;
        updated.labels = labels::stored(&updated.labels);
        let old = self
            .ns_mut(&ctx.namespace)
            .images
            .insert(name.to_string(), updated.clone())
            .expect("image_get found it");
        sub(&mut self.fp_sum, entry::image(&ctx.namespace, name, &old));
        add(
            &mut self.fp_sum,
            entry::image(&ctx.namespace, name, &updated),
        );
        self.scheduler.mutation();
        Ok(updated)
    }

    /// `Delete`, then (with `sync`, `images.SynchronousDelete()`) a full GC before answering.
    pub fn image_delete(&mut self, ctx: &Ctx, name: &str, sync: bool) -> Result<(), Error> {
        let n = self
            .namespaces
            .get_mut(&ctx.namespace)
            .ok_or_else(|| Error::image_not_found(name))?;
        let old = n
            .images
            .remove(name)
            .ok_or_else(|| Error::image_not_found(name))?;
        let ns = ctx.namespace.as_str();
        sub(&mut self.fp_sum, entry::image(ns, name, &old));
        if self.semantics.images_expire() {
            if let Some((id, l)) = ctx
                .lease
                .as_ref()
                .and_then(|id| Some((id, n.leases.get_mut(id)?)))
            {
                if l.images.remove(name) {
                    sub(
                        &mut self.fp_sum,
                        entry::lease_resource(ns, id, "images", name),
                    );
                }
            }
        }
        self.scheduler.mark_dirty();
        self.scheduler.mutation();
        if sync {
            self.gc();
        }
        Ok(())
    }
}
