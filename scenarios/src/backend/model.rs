//! The model backend: the scenario's calls applied to one shared `Store`, with the oracle that
//! judges the store invariants (`gc-safety`, `no-dangling-reference`). The daemon backend keeps
//! one of these as its shadow, so both judge store invariants alike.

use super::Exec;
use pushrace_harness::hash::Fnv128;
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
    /// Blobs the registry holds (pushes upload to one registry; HEAD skips what it has).
    pub registry: BTreeSet<String>,
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
            registry: BTreeSet::new(),
            ever,
            deleted: BTreeSet::new(),
            gc_violation: None,
            answers: None,
        }
    }

    /// Folds one answer to actor `actor` into its history (when histories are kept): a call's
    /// result or a [`super::Answer`]. Blob bytes are hashed as bytes, everything else by its
    /// `Debug` text (over ordered maps).
    pub fn observe(&mut self, actor: usize, answer: &dyn Any) {
        let Some(answers) = self.answers.as_mut() else {
            return;
        };
        if answers.len() <= actor {
            answers.resize(actor + 1, 0);
        }
        let mut h = Fnv128::new();
        h.u128(answers[actor]);
        let call = answer.downcast_ref::<Result<Outcome, Error>>();
        match (call, answer.downcast_ref::<super::Answer>()) {
            (Some(Ok(Outcome::Data(bytes))), _) => {
                h.bytes(b"data\0");
                h.bytes(bytes);
            }
            (Some(r), _) => {
                let _ = write!(h, "{r:?}");
            }
            (None, Some(a)) => {
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
    /// answers. Every store invariant is a function of these. 128 bits of FNV-1a over the store's
    /// own fingerprint and an explicit encoding of the rest (each part's `Debug` text over
    /// ordered maps and sets, separated).
    pub fn fingerprint(&self) -> u128 {
        let mut h = Fnv128::new();
        // Kept up to date by every mutation of the store (`Store::fingerprint`): O(1) here.
        h.u128(self.store.fingerprint().0);
        let _ = write!(
            h,
            "\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}",
            self.registry, self.ever, self.deleted, self.gc_violation, self.answers
        );
        h.finish()
    }

    fn content_keys(&self) -> BTreeSet<(String, String)> {
        let mut keys = BTreeSet::new();
        for (ns, n) in self.store.namespaces() {
            keys.extend(n.content.keys().map(|d| (ns.clone(), d.to_string())));
        }
        keys
    }

    /// Runs `f` on the store; if it ran a GC, checks `gc-safety`: nothing the GC removed is
    /// reachable from a root afterwards (mark and sweep agree, expiry included), and the store is
    /// consistent.
    fn checking_gc<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        let collections = self.store.scheduler().collections;
        let before = self.content_keys();
        let r = f(&mut self.store);
        if self.store.scheduler().collections != collections && self.gc_violation.is_none() {
            let after = self.content_keys();
            for (ns, d) in before.difference(&after) {
                let n = &self.store.namespaces()[ns];
                if self.store.mark(n).content.contains(d) {
                    self.gc_violation = Some(format!(
                        "namespace {ns}: the GC removed {d}, which is still reachable from a root"
                    ));
                    break;
                }
            }
            // The store's own consistency after the sweep and the backend cleanup: every record
            // has its bytes, sizes agree, bytes hash to their digest.
            if let (None, Err(e)) = (&self.gc_violation, self.store.check_consistency()) {
                self.gc_violation = Some(format!("store inconsistent after a GC: {e}"));
            }
        }
        r
    }

    /// One background GC tick: a GC if the scheduler says one is due.
    pub fn gc_tick(&mut self) -> bool {
        self.checking_gc(|store| {
            let due = store.scheduler().gc_due();
            if due {
                store.gc();
            }
            due
        })
    }

    pub fn apply(&mut self, op: &Op) -> Result<Outcome, Error> {
        let may_collect = matches!(
            op.kind,
            OpKind::GcRun
                | OpKind::ImageDelete { sync: true, .. }
                | OpKind::LeaseDelete { sync: true, .. }
        );
        let r = if may_collect {
            self.checking_gc(|store| store.apply(op))
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

    fn registry_has(&self, digest: &str) -> bool {
        self.borrow().registry.contains(digest)
    }

    fn registry_put(&self, digest: &str) {
        self.borrow_mut().registry.insert(digest.to_string());
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
}
