//! Leases: metadata/leases.go. A lease holds resources (content, ingests, and in 2.x images)
//! alive while it lives; `containerd.io/gc.expire` ends its life, `containerd.io/gc.flat` stops
//! the GC from following its content's labels.

use crate::clock::{Duration, Instant};
use crate::digest;
use crate::errors::{Error, ErrorKind};
use crate::fingerprint::{add, entry, sub};
use crate::labels::{Labels, GC_EXPIRE, GC_FLAT};
use crate::store::{Ctx, Lease, Store};

/// A lease resource as `AddResource` takes it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Resource {
    Content(String),
    Ingest(String),
    Image(String),
}

impl Resource {
    pub fn type_name(&self) -> &'static str {
        match self {
            Resource::Content(_) => "content",
            Resource::Ingest(_) => "ingests",
            Resource::Image(_) => "images",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Resource::Content(s) | Resource::Ingest(s) | Resource::Image(s) => s,
        }
    }
}

impl Lease {
    /// Alive at `now` unless `containerd.io/gc.expire` parses and lies strictly before `now`
    /// (an unparsable value keeps the lease alive: scanRoots only logs it).
    pub fn alive_at(&self, now: Instant) -> bool {
        match self
            .labels
            .get(GC_EXPIRE)
            .map(|v| Instant::parse_rfc3339(v))
        {
            Some(Some(exp)) => exp >= now,
            _ => true,
        }
    }

    pub fn flat(&self) -> bool {
        self.labels.contains_key(GC_FLAT)
    }

    /// Resources in ListResources order (content, ingests, then images).
    pub fn resources(&self) -> Vec<Resource> {
        let c = self.content.iter().cloned().map(Resource::Content);
        let i = self.ingests.iter().cloned().map(Resource::Ingest);
        let m = self.images.iter().cloned().map(Resource::Image);
        c.chain(i).chain(m).collect()
    }
}

/// The labels `lease.create` writes: the caller's, then `gc.expire` (now + expire) and `gc.flat`.
pub fn lease_labels(now: Instant, expire: Option<Duration>, flat: bool, extra: &Labels) -> Labels {
    let mut labels = extra.clone();
    if let Some(d) = expire {
        labels.insert(GC_EXPIRE.to_string(), (now + d).rfc3339());
    }
    if flat {
        labels.insert(GC_FLAT.to_string(), "true".to_string());
    }
    labels
}

impl Store {
    pub fn lease_create(&mut self, ctx: &Ctx, id: &str, labels: Labels) -> Result<(), Error> {
        if id.is_empty() {
            return Err(Error::raw(ErrorKind::Unknown, "lease id must be provided"));
        }
        let n = self.ns_mut(&ctx.namespace);
        if n.leases.contains_key(id) {
            return Err(Error::lease_exists(id));
        }
        crate::labels::check_keys(&labels)?;
        let lease = Lease {
            labels: crate::labels::stored(&labels),
            ..Lease::default()
        };
        let h = entry::lease(&ctx.namespace, id, &lease);
        n.leases.insert(id.to_string(), lease);
        add(&mut self.fp_sum, h);
        self.scheduler.mutation();
        Ok(())
    }

    /// `AddResource`: the lease must exist; the resource need not.
    pub fn lease_add(&mut self, ctx: &Ctx, id: &str, r: &Resource) -> Result<(), Error> {
        let lease = self.lease_resource_target(ctx, id, r)?;
        let added = match r {
            Resource::Content(d) => lease.content.insert(d.clone()),
            // bolt refuses an empty key.
            Resource::Ingest(r) if r.is_empty() => {
                return Err(Error::raw(ErrorKind::Unknown, "key required"))
            }
            Resource::Ingest(r) => lease.ingests.insert(r.clone()),
            Resource::Image(name) => lease.images.insert(name.clone()),
        };
        if added {
            let h = entry::lease_resource(&ctx.namespace, id, r.type_name(), r.id());
            add(&mut self.fp_sum, h);
        }
        self.scheduler.mutation();
        Ok(())
    }

    /// `DeleteResource`: the same checks as `AddResource`; removing what the lease does not hold
    /// (an empty ingest ref included: bolt's Delete finds no such key) is no error. It makes the
    /// database dirty (metadata/leases.go), so the default scheduler will collect.
    pub fn lease_remove(&mut self, ctx: &Ctx, id: &str, r: &Resource) -> Result<(), Error> {
        let lease = self.lease_resource_target(ctx, id, r)?;
        let removed = match r {
            Resource::Content(d) => lease.content.remove(d),
            Resource::Ingest(r) => lease.ingests.remove(r),
            Resource::Image(name) => lease.images.remove(name),
        };
        if removed {
            let h = entry::lease_resource(&ctx.namespace, id, r.type_name(), r.id());
            sub(&mut self.fp_sum, h);
        }
        self.scheduler.mark_dirty();
        self.scheduler.mutation();
        Ok(())
    }

    /// The lease a resource is added to or removed from, after `parseLeaseResource`'s checks
    /// (metadata/leases.go): the lease must exist, a content id must be a digest, and images are a
    /// resource type only where images expire (2.x).
    fn lease_resource_target(
        &mut self,
        ctx: &Ctx,
        id: &str,
        r: &Resource,
    ) -> Result<&mut Lease, Error> {
        let images_ok = self.semantics.images_expire();
        let lease = self
            .namespaces
            .get_mut(&ctx.namespace)
            .and_then(|n| n.leases.get_mut(id))
            .ok_or_else(|| Error::lease_not_found(id))?;
        match r {
            Resource::Content(d) => {
                if let Err(e) = digest::validate(d) {
                    return Err(Error::wrap(
                        ErrorKind::InvalidArgument,
                        format_args!("invalid content resource id {d}: {e}"),
                    ));
                }
            }
            Resource::Image(_) if !images_ok => {
                return Err(Error::wrap(
                    ErrorKind::NotImplemented,
                    "resource type images not supported yet",
                ));
            }
            Resource::Ingest(_) | Resource::Image(_) => {}
        }
        Ok(lease)
    }

    /// `Delete`, then with `sync` (`leases.SynchronousDelete`) a full GC before answering.
    pub fn lease_delete(&mut self, ctx: &Ctx, id: &str, sync: bool) -> Result<(), Error> {
        let lease = self
            .namespaces
            .get_mut(&ctx.namespace)
            .and_then(|n| n.leases.remove(id))
            .ok_or_else(|| Error::lease_not_found(id))?;
        sub(&mut self.fp_sum, entry::lease(&ctx.namespace, id, &lease));
        self.scheduler.mark_dirty();
        self.scheduler.mutation();
        if sync {
            self.gc();
        }
        Ok(())
    }

    pub fn lease_list(&self, ctx: &Ctx) -> Vec<(String, Lease)> {
        self.namespaces
            .get(&ctx.namespace)
            .map_or_else(Vec::new, |n| {
                n.leases
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
    }
}
