//! The model backend: the scenario's calls applied to one shared `Store`, with the oracle that
//! judges the store invariants (`gc-safety`, `no-dangling-reference`). The daemon backend keeps
//! one of these as its shadow, so both judge store invariants alike.

use super::footprint::{self, key, ALL, SCHED};
use super::registry::Registry;
use super::{Exec, RepoObject};
use pushrace_harness::Key;
use pushrace_models::content::ContentInfo;
use pushrace_models::fingerprint::Enc;
use pushrace_models::{Error, Op, OpKind, Outcome, Store};
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::rc::Rc;

/// Everything the actors of one execution share.
#[derive(Clone, Debug)]
pub struct Sim {
    pub store: Store,
    /// What the registry holds, per repository (pushes upload to one registry; HEAD skips
    /// what the repository has; a mount copies from another repository).
    pub registry: Registry,
    /// (namespace, digest) of every content record that ever existed: a reference to one of these
    /// that is gone was collected (or deleted), whereas a reference to any other digest is a
    /// dead edge from the start (a lazy pull's missing platform).
    pub ever: BTreeSet<(String, String)>,
    /// (namespace, digest) a client deleted on purpose with `content.delete`.
    pub deleted: BTreeSet<(String, String)>,
    /// The first GC found to remove an object that is still reachable after it (`gc-safety`).
    pub gc_violation: Option<String>,
    /// With `Some`, per actor (by index), a hash chain of every answer its steps got: a
    /// deterministic program's local state is a function of it, so it stands for that state in
    /// [`Sim::fingerprint`]. `None` (the default): not kept, which costs nothing.
    pub answers: Option<Vec<u128>>,
    /// What the request just run touched, when that is less than its declared footprint: a GC
    /// tick that collected nothing or one GC's removals (see [`Sim::checking_gc`]). Taken by
    /// [`Exec::take_effect`]; part of no state.
    pub effect: Option<(Vec<Key>, Vec<Key>)>,
}

impl Sim {
    pub fn new(store: Store) -> Sim {
        let mut ever = BTreeSet::new();
        for (ns, n) in store.namespaces() {
            for d in n.content.keys() {
                ever.insert((ns.clone(), d.to_string()));
            }
        }
        Sim {
            store,
            registry: Registry::default(),
            ever,
            deleted: BTreeSet::new(),
            gc_violation: None,
            answers: None,
            effect: None,
        }
    }

    /// Folds one answer to actor `actor` into its history (when histories are kept): a call's
    /// result or a [`super::Answer`], each field in an explicit encoding ([`answer`]).
    pub fn observe(&mut self, actor: usize, answer: &dyn Any) {
        let Some(answers) = self.answers.as_mut() else {
            return;
        };
        if answers.len() <= actor {
            answers.resize(actor + 1, 0);
        }
        let mut h = Enc::untagged();
        h.u128(answers[actor]);
        let call = answer.downcast_ref::<Result<Outcome, Error>>();
        match (call, answer.downcast_ref::<super::Answer>()) {
            (Some(r), _) => self::answer(&mut h, r),
            (None, Some(a)) => {
                h.byte(b'a');
                let _ = write!(h, "{a:?}");
            }
            (None, None) => unreachable!("observe: not an answer"),
        }
        answers[actor] = h.finish();
    }

    /// The fingerprint of everything that can change the future of an execution on this model
    /// (the harness adds each actor's position and pending step): the whole simulated daemon
    /// (store, with its GC scheduler counters and clock), the registry, the records the
    /// invariants judge by (`ever`, `deleted`, `gc_violation`) and each actor's history of
    /// answers. Every store invariant is a function of these. SHA-256 (its first 128 bits) over
    /// the store's own fingerprint and an explicit encoding of the rest: every string with its
    /// length, every set and list with its size, so two encodings are equal only for equal
    /// states.
    pub fn fingerprint(&self) -> u128 {
        let mut h = Enc::untagged();
        // Kept up to date by every mutation of the store (`Store::fingerprint`): O(1) here.
        h.u128(self.store.fingerprint().0);
        self.registry.encode(&mut h);
        for set in [&self.ever, &self.deleted] {
            h.u64(set.len() as u64);
            for (ns, d) in set {
                h.str(ns).str(d);
            }
        }
        match &self.gc_violation {
            None => h.byte(0),
            Some(v) => h.byte(1).str(v),
        };
        let answers = self.answers.as_deref().unwrap_or_default();
        h.u64(answers.len() as u64);
        for &a in answers {
            h.u128(a);
        }
        h.finish()
    }

    /// Runs `f` on the store; if it ran a GC, checks `gc-safety`: nothing the GC removed is
    /// reachable from a root afterwards (mark and sweep agree, expiry included), and the store is
    /// consistent. `declared` is the step's written keys: when a GC ran, the step's effect
    /// ([`Sim::effect`]) is a read of every key ([`Key::ANY`]: what a GC removes depends on the
    /// whole store) and a write of `declared` (without [`ALL`]), [`SCHED`] and every object the
    /// GC removed, so partial-order reduction no longer takes the GC to touch everything.
    fn checking_gc<R>(&mut self, declared: &[Key], f: impl FnOnce(&mut Store) -> R) -> R {
        let collections = self.store.scheduler().collections;
        let before = object_keys(&self.store);
        let content_before = self.gc_violation.is_none().then(|| self.content_keys());
        let r = f(&mut self.store);
        if self.store.scheduler().collections == collections {
            return r;
        }
        let mut writes: Vec<Key> = declared.iter().copied().filter(|&k| k != ALL).collect();
        writes.push(SCHED);
        differing(&before, &object_keys(&self.store), &mut writes);
        writes.sort_unstable();
        writes.dedup();
        self.effect = Some((vec![Key::ANY], writes));
        if let Some(before) = content_before {
            self.check_sweep(&before);
        }
        r
    }

    fn content_keys(&self) -> BTreeSet<(String, String)> {
        let mut keys = BTreeSet::new();
        for (ns, n) in self.store.namespaces() {
            keys.extend(n.content.keys().map(|d| (ns.clone(), d.to_string())));
        }
        keys
    }

    /// `gc-safety` of one GC, from the content records before it.
    fn check_sweep(&mut self, before: &BTreeSet<(String, String)>) {
        for (ns, d) in before.difference(&self.content_keys()) {
            let n = &self.store.namespaces()[ns];
            if self.store.mark(n).content.contains(d) {
                self.gc_violation = Some(format!(
                    "namespace {ns}: the GC removed {d}, which is still reachable from a root"
                ));
                return;
            }
        }
        // The store's own consistency after the sweep and the backend cleanup: every record
        // has its bytes, sizes agree, bytes hash to their digest.
        if let Err(e) = self.store.check_consistency() {
            self.gc_violation = Some(format!("store inconsistent after a GC: {e}"));
        }
    }

    /// One background GC tick: a GC if the scheduler says one is due. A tick that found none due
    /// read the scheduler's counters, which every write changes, and changed nothing: its effect
    /// is a read of every key and no write.
    /// (Asked before `checking_gc`, so a tick that collects nothing snapshots nothing.)
    pub fn gc_tick(&mut self) -> bool {
        if !self.store.scheduler().gc_due() {
            self.effect = Some((vec![Key::ANY], Vec::new()));
            return false;
        }
        self.effect = None;
        self.checking_gc(&[], |store| store.gc());
        true
    }

    pub fn apply(&mut self, op: &Op) -> Result<Outcome, Error> {
        self.effect = None; // this call's, or none: never an earlier call's left untaken
        let may_collect = matches!(
            op.kind,
            OpKind::GcRun
                | OpKind::ImageDelete { sync: true, .. }
                | OpKind::LeaseDelete { sync: true, .. }
        );
        let r = if may_collect {
            let (_, writes) = footprint::footprint(op);
            self.checking_gc(&writes, |store| store.apply(op))
        } else {
            self.store.apply(op)
        };
        match (&op.kind, &r) {
            (OpKind::ContentWrite { .. }, Ok(Outcome::Written(d))) => {
                self.ever.insert((op.ctx.namespace.clone(), d.to_string()));
            }
            (OpKind::ContentDelete { digest }, Ok(_)) => {
                self.deleted
                    .insert((op.ctx.namespace.clone(), digest.clone()));
            }
            _ => {}
        }
        r
    }

    /// `gc-safety`, checked after every step: no GC removed an object reachable after it.
    pub fn check_gc_safety(&self) -> Result<(), String> {
        self.gc_violation.clone().map_or(Ok(()), Err)
    }

    /// `no-dangling-reference`: every object reachable from a root that once existed still exists,
    /// unless a client deleted it explicitly. A failure means the store holds a root's reference to
    /// content the GC collected (e.g. `image.update(tmp -> R)` after R went, nerdctl #4470): the
    /// next reader of that reference gets `content digest …: not found`.
    pub fn check_no_dangling(&self) -> Result<(), String> {
        for (ns, n) in self.store.namespaces() {
            let marked = self.store.mark(n);
            for d in &marked.content {
                let key = (ns.clone(), d.clone());
                if !n.content.contains_key(d.as_str())
                    && self.ever.contains(&key)
                    && !self.deleted.contains(&key)
                {
                    return Err(format!(
                        "namespace {ns}: {d} is reachable from a root but was collected"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The model's state of one execution, shared by its actors.
pub type Shared = Rc<RefCell<Sim>>;

impl Exec for Shared {
    fn call(&self, op: &Op) -> Result<Outcome, Error> {
        self.borrow_mut().apply(op)
    }

    fn registry_has(&self, o: &RepoObject) -> bool {
        self.borrow().registry.has(o)
    }

    fn registry_tagged(&self, tag: &RepoObject, digest: &str) -> bool {
        self.borrow().registry.tagged(tag, digest)
    }

    fn registry_put(&self, o: &RepoObject) {
        self.borrow_mut().registry.put(o);
    }

    fn registry_put_tagged(&self, tag: &RepoObject, digest: &str) {
        self.borrow_mut().registry.put_tagged(tag, digest);
    }

    fn registry_mount(&self, o: &RepoObject, from: &str) -> bool {
        self.borrow_mut().registry.mount(o, from)
    }

    fn gc_tick(&self) -> bool {
        self.borrow_mut().gc_tick()
    }

    fn oracle(&self) -> Shared {
        self.clone()
    }

    fn observe(&self, actor: usize, answer: &dyn Any) {
        self.borrow_mut().observe(actor, answer)
    }

    fn take_effect(&self) -> Option<(Vec<Key>, Vec<Key>)> {
        self.borrow_mut().effect.take()
    }
}

/// The encoding of one call's answer in an actor's history: a tag per variant, then its fields
/// (the common answers field by field; listings and GC reports by their `Debug` text, which
/// prints every field over ordered maps).
fn answer(h: &mut Enc, r: &Result<Outcome, Error>) {
    let info = |h: &mut Enc, i: &ContentInfo| {
        h.str(i.digest.as_str()).u64(i.size);
        h.labels(&i.labels);
    };
    match r {
        Err(e) => {
            h.byte(b'e');
            let _ = write!(h, "{:?}", e.kind);
            h.str(&e.message);
        }
        Ok(Outcome::Done) => {
            h.byte(b'd');
        }
        Ok(Outcome::Written(d)) => {
            h.byte(b'w').str(d.as_str());
        }
        Ok(Outcome::Info(i)) => info(h.byte(b'i'), i),
        // A read names its digest, offset and length, and a record's bytes hash to its digest
        // (`check_consistency`): a successful read of a given request has one possible answer,
        // so its length tells it apart as well as its bytes would.
        Ok(Outcome::Data(bytes)) => {
            h.byte(b'b').u64(bytes.len() as u64);
        }
        Ok(Outcome::Image(image)) => {
            let t = &image.target;
            h.byte(b'm')
                .str(&t.media_type)
                .str(&t.digest)
                .u64(t.size as u64);
            h.labels(&image.labels);
        }
        Ok(other) => {
            h.byte(b'o');
            let _ = write!(h, "{other:?}");
        }
    }
}

/// The footprint key of every object in the store, sorted: what a GC can remove (it never
/// changes an object it keeps, gc.rs `Store::gc`), so comparing these before and after a step
/// that collected tells which objects it removed.
fn object_keys(store: &Store) -> Vec<Key> {
    let mut keys = Vec::new();
    for (ns, n) in store.namespaces() {
        keys.extend(n.content.keys().map(|d| key("content", ns, d.as_str())));
        keys.extend(n.images.keys().map(|i| key("image", ns, i)));
        keys.extend(n.ingests.keys().map(|r| key("ingest", ns, r)));
        keys.extend(n.leases.keys().map(|l| key("lease", ns, l)));
    }
    keys.extend(store.blobs().keys().map(|d| key("blob", "", d.as_str())));
    for r in store.backend_ingests().keys() {
        // `backend_ref(ns, r)` is `{ns}/1/{r}`: the namespace's ingest `r`. Every way of reading
        // it so gives a key (more keys only add dependencies); none, and it touches everything.
        let splits: Vec<usize> = (0..r.len())
            .filter(|&i| r.get(i..).is_some_and(|t| t.starts_with("/1/")))
            .collect();
        keys.extend(splits.iter().map(|&i| key("ingest", &r[..i], &r[i + 3..])));
        if splits.is_empty() {
            keys.push(ALL);
        }
    }
    keys.sort_unstable();
    keys
}

/// Adds to `out` every key in exactly one of the sorted `a` and `b`.
fn differing(a: &[Key], b: &[Key], out: &mut Vec<Key>) {
    let only = |x: &[Key], y: &[Key]| -> Vec<Key> {
        x.iter()
            .copied()
            .filter(|k| y.binary_search(k).is_err())
            .collect()
    };
    out.extend(only(a, b));
    out.extend(only(b, a));
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushrace_models::{Ctx, Labels, Semantics, WriteStyle};

    fn write(sim: &mut Sim, r: &str, data: &[u8], labels: Labels) -> String {
        let op = Op {
            ctx: Ctx::default(),
            kind: OpKind::ContentWrite {
                r: r.into(),
                data: data.into(),
                expected: None,
                labels,
                style: WriteStyle::Open,
            },
        };
        match sim.apply(&op) {
            Ok(Outcome::Written(d)) => d.to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// A GC's effect is a read of every key and a write of the scheduler's counters and of each
    /// object it removed (the unrooted content record and its blob), nothing it kept; a tick
    /// that found no GC due (writes are not deletes, gc/scheduler) reads every key and writes
    /// nothing; a call that ran no GC has no effect.
    #[test]
    fn a_gcs_effect_is_what_it_removed() {
        let mut sim = Sim::new(Store::new(Semantics::V1_6));
        let root = Labels::from([("containerd.io/gc.root".to_string(), "x".to_string())]);
        let kept = write(&mut sim, "k", b"kept", root);
        assert_eq!(sim.effect, None, "a write collects nothing");
        let gone = write(&mut sim, "g", b"gone", Labels::new());
        assert!(!sim.gc_tick(), "writes delete nothing: no GC is due");
        assert_eq!(sim.effect.take(), Some((vec![Key::ANY], vec![])));
        let gc = Op {
            ctx: Ctx::default(),
            kind: OpKind::GcRun,
        };
        sim.apply(&gc).unwrap();
        let (reads, writes) = sim.effect.take().expect("a GC ran");
        assert_eq!(reads, vec![Key::ANY]);
        let ns = Ctx::default().namespace;
        assert!(writes.contains(&key("content", &ns, &gone)), "{writes:?}");
        assert!(writes.contains(&key("blob", "", &gone)));
        assert!(writes.contains(&SCHED));
        assert!(!writes.contains(&key("content", &ns, &kept)));
        assert!(!writes.contains(&ALL));
        sim.apply(&gc).unwrap();
        let (_, writes) = sim.effect.take().expect("a GC ran");
        assert_eq!(writes, vec![SCHED], "a second GC removes nothing");
        sim.apply(&Op {
            ctx: Ctx::default(),
            kind: OpKind::ContentInfo { digest: kept },
        })
        .unwrap();
        assert_eq!(sim.effect, None, "a call that ran no GC narrows nothing");
    }

    /// An answer enters an actor's history only as far as its program sees it
    /// ([`Call::call_seen`]). One actor labels a record (L); another reads its Info twice (I1,
    /// I2), each dependent with L, so DPOR runs L I1 I2, I1 L I2 and I1 I2 L. States are
    /// fingerprinted where an actor still has a step: the start, after L, after I1, after L I1,
    /// after I1 L, after I1 I2. A reader whose I1 gets the record (`info`) is in a different
    /// state after L I1 than after I1 L (it saw the label or not): 6 states, 3 executions. A
    /// reader whose I1 sees only that the record exists (`info_status`, as ReadBlob's ReaderAt
    /// does) is in the same state after both: I1 L is cut there, so 5 states, 2 executions and
    /// 1 revisit.
    #[test]
    fn a_history_keeps_only_what_the_program_saw() {
        use crate::backend::Stepped;
        use pushrace_harness::executor::World;
        use pushrace_harness::explorer::{Config, Explorer};
        use pushrace_models::program::Call;
        let run = |status_only: bool| {
            let mut template = Sim::new(Store::new(Semantics::V1_6));
            let d = write(&mut template, "r", b"blob", Labels::new());
            template.answers = Some(vec![0; 2]);
            let model = move |w: &mut World| {
                let sim: Shared = Rc::new(RefCell::new(template.clone()));
                let (labeller, reader, d2) = (sim.clone(), sim.clone(), d.clone());
                let label = Op {
                    ctx: Ctx::default(),
                    kind: OpKind::ContentLabel {
                        digest: d.clone(),
                        labels: Labels::from([("k".to_string(), "v".to_string())]),
                    },
                };
                w.spawn("label", move |sched| async move {
                    let c = Stepped {
                        sched,
                        exec: labeller,
                    };
                    c.call(label).await.expect("label");
                    Ok(())
                });
                w.spawn("reader", move |sched| async move {
                    let c = Stepped {
                        sched,
                        exec: reader,
                    };
                    let ctx = Ctx::default();
                    match status_only {
                        true => c.info_status(&ctx, &d2).await.expect("info"),
                        false => drop(c.info(&ctx, &d2).await.expect("info")),
                    }
                    c.info_status(&ctx, &d2).await.expect("info");
                    Ok(())
                });
                w.fingerprint(move || sim.borrow().fingerprint());
            };
            let cfg = Config {
                preemption_bound: None,
                prune: true,
                ..Config::default()
            };
            let r = Explorer::new(cfg).dfs(&model);
            assert!(r.exhausted, "{r}");
            (r.executions, r.states, r.revisits)
        };
        assert_eq!(run(false), (3, 6, 0), "the label seen splits the states");
        assert_eq!(run(true), (2, 5, 1), "what is not seen does not");
    }
}
