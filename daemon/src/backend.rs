//! The model's operation language applied to a real daemon.
//!
//! [`apply`] performs one [`pushrace_models::Op`] with the gRPC calls a Go client would make for it and
//! answers what `Store::apply` answers: the outcome, or a [`pushrace_models::Error`] whose text is the
//! daemon's own. [`DaemonBackend`] adds what a whole `pushrace apply` file needs: the `fresh_id`
//! sequence for the leases of `image.pull` / `image.convert` (`pull-1`, `convert-2`, … exactly like
//! `Store::fresh_id`, so states compare equal), the drivers of the sans-IO pull/convert programs (one
//! call per step), and the dump with mapped `gc.expire` labels turned back into virtual time.
//!
//! # Virtual time on a real daemon ([`VirtualClockMapping`])
//!
//! The model's clock starts at `clock::EPOCH` and moves only on `clock.advance`; containerd compares
//! `containerd.io/gc.expire` with its wall clock during a GC (and nowhere else: an expired lease still
//! lists and takes writes until a GC sweeps it, PROBES.md §5). The mapping:
//!
//! - `A` = the real time when the mapping is created; `k` = real time per virtual hour (the *scale*).
//!   `real(v) = A + k·(v − EPOCH)`.
//! - `lease.create expire = d` writes the label `real(now_v + d) + k/2` (RFC 3339 with nanoseconds,
//!   which Go's `time.Parse(time.RFC3339, …)` accepts). The half-hour margin puts the real expiry
//!   strictly between virtual instants, so the model's boundary rule (alive while `expire >= now`)
//!   holds on the daemon for expiries on whole virtual half-hours.
//! - `clock.advance by = d` really sleeps until `real(now_v + d)` (an absolute target, so op latencies
//!   do not accumulate).
//! - Before any call that may run a GC (`gc.run`, sync `image.delete` / `lease.delete`) the mapping
//!   also sleeps until every mapped expiry the model considers past really is past. After the call it
//!   checks that every mapped expiry the model considers alive is still in the future. If not (the
//!   calls between two advances took longer than k/2), the run has left the mapping's validity: it is
//!   recorded in [`VirtualClockMapping::violations`] and the result must not be trusted
//!   ([`crate::run_on_fresh_daemon`], used by `pushrace diff` and the differential test, then reruns
//!   on a fresh daemon at a 4× larger scale; the CLI warns when a run still broke it).
//! - Not mapped: the 24 h expiry containerd gives an ingest without lease is set by the daemon from its
//!   own clock. Advancing the virtual clock 24 h or more after an ingest was opened is recorded as a
//!   violation. Negative `clock.advance` is one too (real time does not go back).
//! - The dump ([`DaemonBackend::state`]) replaces every `gc.expire` value this mapping wrote by the
//!   model's label for the same virtual instant (`Instant::rfc3339`, whole seconds). Values given
//!   literally in `labels` are passed through untouched on both sides.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, SystemTime};

use pushrace_models::clock::{Duration as VDuration, Instant as VInstant, EPOCH, NANOS_PER_SEC};
use pushrace_models::gc::GcReport;
use pushrace_models::labels::GC_EXPIRE;
use pushrace_models::leases::lease_labels;
use pushrace_models::opsfile::{Action, EntryResult, OpsFile};
use pushrace_models::program::Call;
use pushrace_models::state::State;
use pushrace_models::{Ctx, Descriptor, Error, ErrorKind, Image, Op, OpKind, Outcome};
use std::cell::RefCell;

use crate::client::{CdError, DaemonClient, WriteRequest};

/// The scale the CLI uses by default: one virtual hour is one real second.
pub const DEFAULT_SCALE: StdDuration = StdDuration::from_secs(1);

/// How the model's virtual clock is laid onto the daemon's real clock (see the module docs).
#[derive(Debug, Clone)]
pub struct VirtualClockMapping {
    start: SystemTime,
    scale: StdDuration,
    now: VInstant,
    /// (virtual expiry, real expiry) of every `gc.expire` this mapping wrote.
    expiries: Vec<(VInstant, SystemTime)>,
    /// real label value -> the model's label value for the same virtual instant.
    labels: BTreeMap<String, String>,
    /// Virtual instants at which ingests were opened (their daemon-side 24 h expiry is not mapped).
    ingests_opened: Vec<VInstant>,
    violations: Vec<String>,
}

impl VirtualClockMapping {
    /// A mapping starting now: virtual `EPOCH` is the current real time, one virtual hour is `scale`.
    pub fn new(scale: StdDuration) -> VirtualClockMapping {
        VirtualClockMapping {
            start: SystemTime::now(),
            scale,
            now: EPOCH,
            expiries: Vec::new(),
            labels: BTreeMap::new(),
            ingests_opened: Vec::new(),
            violations: Vec::new(),
        }
    }

    pub fn scale(&self) -> StdDuration {
        self.scale
    }

    /// The model's virtual now.
    pub fn now(&self) -> VInstant {
        self.now
    }

    /// Why this run may not match the model (empty: the mapping held throughout).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// `real(v) = start + scale · (v − EPOCH)`.
    pub fn real(&self, v: VInstant) -> SystemTime {
        let dv = v.0 as i128 - EPOCH.0 as i128;
        let hour = 3600 * NANOS_PER_SEC as i128;
        let real_nanos = dv * self.scale.as_nanos() as i128 / hour;
        if real_nanos >= 0 {
            self.start + StdDuration::from_nanos(real_nanos as u64)
        } else {
            self.start - StdDuration::from_nanos((-real_nanos) as u64)
        }
    }

    /// The real `gc.expire` value for the virtual expiry `v` (recorded for the dump and the checks).
    pub fn expire_label(&mut self, v: VInstant) -> String {
        let real = self.real(v) + self.scale / 2;
        let label = VInstant::from(real).rfc3339_nanos();
        self.expiries.push((v, real));
        self.labels.insert(label.clone(), v.rfc3339());
        label
    }

    /// The model's label for a real one this mapping wrote (None: not written by the mapping).
    pub fn virtual_label(&self, real_label: &str) -> Option<&str> {
        self.labels.get(real_label).map(String::as_str)
    }

    /// `clock.advance`: the virtual clock moves, and real time is made to catch up with it.
    pub async fn advance(&mut self, by: VDuration) {
        if by.0 < 0 {
            self.violations.push(format!(
                "clock.advance {by}: virtual time went back, real time cannot"
            ));
        }
        self.now = self.now + by;
        let limit = pushrace_models::content::INGEST_EXPIRY;
        if let Some(v) = self.ingests_opened.iter().find(|v| **v + limit < self.now) {
            self.violations.push(format!(
                "an ingest opened at virtual {v} expired in the model at {} (24 h without lease); \
                 the daemon sets that expiry from its own clock, which the mapping does not move",
                self.now
            ));
        }
        sleep_until(self.real(self.now)).await;
    }

    /// An ingest was opened at the current virtual instant.
    pub fn ingest_opened(&mut self) {
        self.ingests_opened.push(self.now);
    }

    /// Before a call that may collect: every expiry the model sees as past must really be past.
    pub async fn before_gc(&mut self) {
        let now = self.now;
        if let Some(latest) = self
            .expiries
            .iter()
            .filter(|(v, _)| *v < now)
            .map(|(_, r)| *r)
            .max()
        {
            sleep_until(latest + StdDuration::from_millis(1)).await;
        }
    }

    /// After a call that may have collected: every expiry the model sees as alive must still be ahead.
    pub fn after_gc(&mut self, what: &str) {
        let real_now = SystemTime::now();
        let now = self.now;
        if let Some((v, _)) = self
            .expiries
            .iter()
            .filter(|(v, r)| *v >= now && *r <= real_now)
            .min()
        {
            self.violations.push(format!(
                "{what} at virtual {now} ran after the real expiry of a lease that expires at virtual {v}: \
                 the calls since the last clock.advance took more than half a virtual hour ({:?}) of real time",
                self.scale / 2
            ));
        }
    }

    /// Replaces every mapped `gc.expire` in a daemon state by the model's value.
    pub fn normalize(&self, state: &mut State) {
        for ns in state.namespaces.values_mut() {
            for l in ns.leases.values_mut() {
                if let Some(v) = l.labels.get_mut(GC_EXPIRE) {
                    if let Some(m) = self.virtual_label(v) {
                        *v = m.to_string();
                    }
                }
            }
        }
    }
}

async fn sleep_until(t: SystemTime) {
    if let Ok(d) = t.duration_since(SystemTime::now()) {
        tokio::time::sleep(d).await;
    }
}

/// The daemon's error as the model's error value (same class, containerd's text).
pub fn to_model_error(e: CdError) -> Error {
    let kind = match &e {
        CdError::NotFound(_) => ErrorKind::NotFound,
        CdError::AlreadyExists(_) => ErrorKind::AlreadyExists,
        CdError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
        CdError::InvalidArgument(_) => ErrorKind::InvalidArgument,
        CdError::Unavailable(_) => ErrorKind::Unavailable,
        CdError::Other { code, .. } if code == "Unimplemented" => ErrorKind::NotImplemented,
        CdError::Other { .. } => ErrorKind::Unknown,
    };
    Error::raw(kind, e.message().to_string())
}

/// `Store::default_target_size` on the daemon: the size of the namespace's record, else 1.
async fn default_target_size(client: &DaemonClient, ctx: &Ctx, digest: &str) -> i64 {
    match client.info(ctx, digest).await {
        Ok(i) => i.size as i64,
        Err(_) => 1,
    }
}

/// Applies one model operation to the daemon; answers what `Store::apply` answers.
///
/// Outcomes that only the model can fill exactly: `gc.run` answers an empty `GcReport` (the daemon
/// does not say what it swept) and `lease.list` answers labels without resources (one RPC).
pub async fn apply(
    client: &DaemonClient,
    op: &Op,
    clock: &mut VirtualClockMapping,
) -> Result<Outcome, Error> {
    let r = apply_inner(client, &op.ctx, &op.kind, clock).await;
    r.map_err(to_model_error)
}

async fn apply_inner(
    client: &DaemonClient,
    ctx: &Ctx,
    kind: &OpKind,
    clock: &mut VirtualClockMapping,
) -> Result<Outcome, CdError> {
    Ok(match kind {
        OpKind::ContentWrite {
            r,
            data,
            expected,
            labels,
            style,
        } => {
            let mut w = WriteRequest::new(data.to_vec(), *style)
                .labels(labels.clone())
                .reference(r.clone());
            if let Some(e) = expected {
                w = w.expected(e.clone());
            }
            let written = client.write_blob(ctx, &w).await;
            if written.is_err() {
                // A failed write may leave its ingest behind, with a daemon-side 24 h expiry.
                clock.ingest_opened();
            }
            let written = written?;
            Outcome::Written(written.digest)
        }
        OpKind::IngestOpen { r, data, expected } => {
            let exp = expected.as_ref().map(|d| (d.as_str(), 0i64));
            client.open_ingest(ctx, r, exp, data).await?;
            clock.ingest_opened();
            Outcome::Done
        }
        OpKind::IngestAbort { r } => {
            client.abort_ingest(ctx, r).await?;
            Outcome::Done
        }
        OpKind::ContentInfo { digest } => Outcome::Info(client.info(ctx, digest).await?),
        OpKind::ContentRead {
            digest,
            offset,
            len,
        } => {
            // Size 0 (or none given) reads to the end, as on the wire (contentserver Read).
            let data = client
                .read_at(ctx, digest, *offset as i64, len.unwrap_or(0) as i64)
                .await?;
            Outcome::Data(data.into())
        }
        OpKind::ContentLabel { digest, labels } => {
            Outcome::Info(client.update_labels(ctx, digest, labels).await?)
        }
        OpKind::ContentDelete { digest } => {
            client.delete_content(ctx, digest).await?;
            Outcome::Done
        }
        OpKind::ContentWalk => Outcome::Contents(client.list_content(ctx).await?),
        OpKind::ImageCreate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            let size = match size {
                Some(s) => *s,
                None => default_target_size(client, ctx, target).await,
            };
            let image = Image {
                target: Descriptor {
                    media_type: media_type.clone(),
                    digest: target.clone(),
                    size,
                },
                labels: labels.clone(),
            };
            Outcome::Image(client.create_image(ctx, name, &image).await?.1)
        }
        OpKind::ImageUpdate {
            name,
            media_type,
            target,
            size,
            labels,
        } => {
            let mut paths = Vec::new();
            // Only the fields named in `paths` are read by the server; the others go empty.
            let mut image = Image {
                target: Descriptor {
                    media_type: String::new(),
                    digest: String::new(),
                    size: 0,
                },
                labels: Default::default(),
            };
            if let Some(t) = target {
                // Like the model: the current target's media type unless one is given.
                let (_, current) = client.get_image(ctx, name).await?;
                let size = match size {
                    Some(s) => *s,
                    None => default_target_size(client, ctx, t).await,
                };
                image.target = Descriptor {
                    media_type: media_type.clone().unwrap_or(current.target.media_type),
                    digest: t.clone(),
                    size,
                };
                paths.push("target");
            }
            if let Some(l) = labels {
                image.labels = l.clone();
                paths.push("labels");
            }
            Outcome::Image(client.update_image(ctx, name, &image, &paths).await?.1)
        }
        OpKind::ImageDelete { name, sync } => {
            if *sync {
                clock.before_gc().await;
            }
            client.delete_image(ctx, name, *sync).await?;
            if *sync {
                clock.after_gc("image.delete sync");
            }
            Outcome::Done
        }
        OpKind::ImageGet { name } => Outcome::Image(client.get_image(ctx, name).await?.1),
        OpKind::ImageList => Outcome::Images(client.list_images(ctx).await?),
        OpKind::LeaseCreate {
            id,
            expire,
            flat,
            labels,
        } => {
            let mut l = lease_labels(clock.now(), *expire, *flat, labels);
            if let Some(d) = expire {
                let label = clock.expire_label(clock.now() + *d);
                l.insert(GC_EXPIRE.to_string(), label);
            }
            client.create_lease(ctx, id, &l).await?;
            Outcome::Done
        }
        OpKind::LeaseAdd { id, resource } | OpKind::LeaseRemove { id, resource } => {
            if matches!(kind, OpKind::LeaseAdd { .. }) {
                client.add_lease_resource(ctx, id, resource).await?;
            } else {
                client.delete_lease_resource(ctx, id, resource).await?;
            }
            Outcome::Done
        }
        OpKind::LeaseDelete { id, sync } => {
            if *sync {
                clock.before_gc().await;
            }
            client.delete_lease(ctx, id, *sync).await?;
            if *sync {
                clock.after_gc("lease.delete sync");
            }
            Outcome::Done
        }
        OpKind::LeaseList => Outcome::Leases(
            client
                .list_leases(ctx)
                .await?
                .into_iter()
                .map(|l| {
                    let mut labels = l.labels;
                    if let Some(v) = labels.get_mut(GC_EXPIRE) {
                        if let Some(m) = clock.virtual_label(v) {
                            *v = m.to_string();
                        }
                    }
                    (
                        l.id,
                        pushrace_models::store::Lease {
                            labels,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        ),
        OpKind::GcRun => {
            clock.before_gc().await;
            client.gc(ctx).await?;
            clock.after_gc("gc.run");
            Outcome::Gc(GcReport::default())
        }
        OpKind::ClockAdvance { by } => {
            clock.advance(*by).await;
            Outcome::Done
        }
    })
}

/// The daemon as the answerer of a sans-IO program's calls (`Program::drive`), one call per step.
struct Calls<'b, 'a>(RefCell<&'b mut DaemonBackend<'a>>);

impl Call for Calls<'_, '_> {
    // A program makes one call at a time and awaits it, so the borrow is never contended.
    #[allow(clippy::await_holding_refcell_ref)]
    async fn call(&self, op: Op) -> Result<Outcome, Error> {
        self.0.borrow_mut().apply(&op).await
    }
}

/// A whole `pushrace apply` run against one daemon.
pub struct DaemonBackend<'a> {
    pub client: &'a DaemonClient,
    pub clock: VirtualClockMapping,
    /// `Store::fresh_id`'s counter: lease ids of pull and convert.
    next_id: u64,
}

impl<'a> DaemonBackend<'a> {
    pub fn new(client: &'a DaemonClient, scale: StdDuration) -> DaemonBackend<'a> {
        DaemonBackend {
            client,
            clock: VirtualClockMapping::new(scale),
            next_id: 1,
        }
    }

    /// The same sequence as `Store::fresh_id`.
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.next_id);
        self.next_id += 1;
        id
    }

    pub async fn apply(&mut self, op: &Op) -> Result<Outcome, Error> {
        apply(self.client, op, &mut self.clock).await
    }

    /// `opsfile::run_action` on the daemon.
    pub async fn run_action(&mut self, action: &Action) -> Result<(), Error> {
        match action {
            Action::Op(op) => self.apply(op).await.map(|_| ()),
            a => {
                let id = self.fresh_id(a.program_kind().expect("not an operation"));
                let p = a.program(id).expect("not an operation");
                p.drive(&Calls(RefCell::new(self))).await.map(|_| ())
            }
        }
    }

    /// Every entry in order (a failing one does not stop the list), like `OpsFile::run`.
    pub async fn run(&mut self, ops: &OpsFile) -> Vec<EntryResult> {
        let mut results = Vec::new();
        for (i, e) in ops.entries.iter().enumerate() {
            let result = self.run_action(&e.action).await;
            results.push(EntryResult {
                op: i,
                name: e.name.clone(),
                result,
            });
        }
        results
    }

    /// The daemon's state with mapped `gc.expire` values in virtual time.
    pub async fn state(&self) -> Result<State, CdError> {
        let mut s = self.client.dump_state().await?;
        self.clock.normalize(&mut s);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_linear_with_a_half_hour_margin_and_labels_map_back() {
        let mut m = VirtualClockMapping::new(StdDuration::from_millis(200));
        let start = m.real(EPOCH);
        assert_eq!(
            m.real(EPOCH + VDuration::HOUR * 3),
            start + StdDuration::from_millis(600)
        );
        assert_eq!(
            m.real(EPOCH + VDuration::HOUR * -1),
            start - StdDuration::from_millis(200)
        );
        let v = EPOCH + VDuration::HOUR;
        let label = m.expire_label(v);
        assert_eq!(
            label,
            VInstant::from(start + StdDuration::from_millis(300)).rfc3339_nanos()
        );
        assert_eq!(m.virtual_label(&label), Some("2025-01-01T01:00:00Z"));
    }

    #[tokio::test]
    async fn an_expiry_the_model_keeps_alive_that_really_passed_is_a_violation() {
        let mut m = VirtualClockMapping::new(StdDuration::from_millis(20));
        m.expire_label(EPOCH); // expires at virtual now: alive for the model, really +10 ms
        m.after_gc("gc.run");
        assert!(m.violations().is_empty(), "{:?}", m.violations());
        tokio::time::sleep(StdDuration::from_millis(15)).await;
        m.after_gc("gc.run");
        assert_eq!(m.violations().len(), 1, "{:?}", m.violations());
    }

    #[tokio::test]
    async fn before_gc_waits_until_expiries_the_model_sees_as_past_really_passed() {
        let mut m = VirtualClockMapping::new(StdDuration::from_millis(40));
        m.expire_label(EPOCH); // really start + 20 ms
        m.advance(VDuration::from_secs(60)).await; // virtual past it; real target only +0.67 ms
        m.before_gc().await;
        assert!(SystemTime::now() > m.real(EPOCH) + StdDuration::from_millis(20));
        m.ingest_opened();
        m.advance(VDuration::HOUR * 25).await;
        assert_eq!(m.violations().len(), 1, "{:?}", m.violations());
    }
}
