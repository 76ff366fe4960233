#![cfg(feature = "containerd")]
//! Differential test: random operation sequences applied to the model and to a real containerd
//! 1.6.20 must give the same result op by op (ok, or the same error text) and the same final state.
//!
//! Answers are compared too where the daemon gives them: written digests, info, read bytes,
//! listings, images and leases (`observable`).
//!
//! Isolation: every case (and every shrink step) gets a FRESH private daemon. GC is global to a
//! daemon and the backend blob list is global too, so sharing one daemon between cases would need
//! per-case namespaces, no GC and a filtered blob list — which would leave out exactly the global
//! behaviours (a sync delete sweeping every namespace, backend cleanup) this test exists to check.
//! A daemon starts in ~0.1 s here, so the cost is acceptable (see the timing line the test prints).
//!
//! Virtual time: `clock.advance` and `lease.create expire` go through `VirtualClockMapping`
//! (daemon/src/backend.rs) at 200 ms of real time per virtual hour. When the mapping reports that a
//! run left its validity (ops between two advances took longer than half a virtual hour of real
//! time), the case is rerun on a fresh daemon at 4× the scale, then 16×; it fails if none holds.
//!
//! Generated: content writes in both styles (own or shared refs, wrong expected digests), labels
//! (gc.root, gc.ref.content edges with `.`/`/` suffixes, non-edges, removals), ingest open/abort,
//! info/read/delete, images create/update/delete (sync and async, dangling targets, label edges),
//! leases (expiry past/near/far, flat, caller labels, context leases that may not exist), lease add
//! and remove (content, ingests, images = unsupported on 1.6), lease delete (sync and async),
//! gc.run, clock.advance (at most 3 per sequence, total < 24 h: the ingest expiry is the daemon's
//! own), the pull program on a small fixture (full or lazy) and the converter's platform
//! reduction, over three namespaces.
//!
//! `PUSHRACE_DIFF_CASES` overrides the number of cases (default 200). `PUSHRACE_DIFF_SEED` picks the
//! generator's seed: a number, or `random` for a fresh one (printed, so a failure can be rerun).
//! The default is a fixed seed, so CI runs the same 200 sequences every time and stays green or
//! red for a reason; searching for new differences is done with `random` and many cases:
//! `PUSHRACE_DIFF_SEED=random PUSHRACE_DIFF_CASES=2000 cargo test -p pushrace-daemon --features
//! containerd --test differential`; `PUSHRACE_DIFF_FOCUS=ingests` (or `leases`, `images`) draws the
//! sequences mostly from the operations on ingests (or on leases, on images and their GC edges). Failures found either way are kept in
//! `differential.proptest-regressions` and rerun first.

use std::sync::{Arc, OnceLock};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use pushrace_daemon::{diff, run_on_fresh_daemon, DaemonBackend};
use pushrace_models::clock::Duration;
use pushrace_models::labels::{GC_EXPIRE, GC_FLAT, GC_REF_CONTENT, GC_ROOT};
use pushrace_models::leases::Resource;
use pushrace_models::oci::{ImageFixture, MEDIA_INDEX, MEDIA_MANIFEST};
use pushrace_models::opsfile::{self, default_write_ref, Action, EntryResult};
use pushrace_models::state::State;
use pushrace_models::{
    Bytes, ContentInfo, Ctx, Digest, Image, Labels, Op, OpKind, Outcome, Semantics, Store,
    WriteStyle,
};

const POOL: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];
const NAMESPACES: [&str; 3] = ["default", "ns-b", "ns-c"];
const LEASES: [&str; 3] = ["L1", "L2", "L3"];
const IMAGES: [&str; 2] = ["example.com/app:1", "example.com/app:2"];
const REFS: [&str; 2] = ["r1", "r2"];
const MAX_ADVANCES: usize = 3;
/// Real milliseconds per virtual hour of the first attempt (reruns: `pushrace_daemon::RERUN_FACTORS`).
const BASE_SCALE_MS: u64 = 200;

fn pool_digest(i: usize) -> String {
    Digest::of(POOL[i].as_bytes()).to_string()
}

fn fixture() -> Arc<ImageFixture> {
    static F: OnceLock<Arc<ImageFixture>> = OnceLock::new();
    F.get_or_init(|| {
        Arc::new(
            ImageFixture::build(
                IMAGES[0],
                &["linux/amd64".to_string(), "linux/arm64".to_string()],
                1,
            )
            .expect("fixture builds"),
        )
    })
    .clone()
}

/// Digests the label edges and targets point at: the pool, and the fixture's index.
fn any_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => (0..POOL.len()).prop_map(pool_digest),
        1 => Just(fixture().index.digest().to_string()),
    ]
}

fn label() -> impl Strategy<Value = (String, String)> {
    let edge_keys = prop_oneof![
        Just(GC_REF_CONTENT.to_string()),
        Just(format!("{GC_REF_CONTENT}.m.0")),
        Just(format!("{GC_REF_CONTENT}/x")),
        Just(format!("{GC_REF_CONTENT}X")), // not an edge
        Just("containerd.io/gc.ref.snapshot.overlayfs".to_string()), // not a content edge
    ];
    prop_oneof![
        3 => (edge_keys, any_digest()),
        2 => Just((GC_ROOT.to_string(), "x".to_string())),
        1 => Just(("example.com/note".to_string(), "v".to_string())),
        // an empty value: never stored on commit, removes the key on update
        1 => prop_oneof![Just(GC_ROOT.to_string()), Just(GC_REF_CONTENT.to_string())]
            .prop_map(|k| (k, String::new())),
    ]
}

/// Labels a caller may put on a lease itself: `gc.flat` with any non-empty value makes it flat (gc.go
/// `scanRoots` only checks presence), an empty value is not stored, an unparseable `gc.expire` is
/// ignored, and fixed instants far in the past or future expire (or not) on both clocks alike.
fn lease_labels() -> impl Strategy<Value = Labels> {
    let label = prop_oneof![
        Just((GC_FLAT.to_string(), "false".to_string())),
        Just((GC_FLAT.to_string(), String::new())),
        Just((GC_EXPIRE.to_string(), "not a time".to_string())),
        Just((GC_EXPIRE.to_string(), "2001-01-01T00:00:00Z".to_string())),
        Just((GC_EXPIRE.to_string(), "2199-01-01T00:00:00Z".to_string())),
        Just(("example.com/owner".to_string(), "me".to_string())),
    ];
    prop_oneof![
        3 => Just(Labels::new()),
        1 => prop::collection::vec(label, 1..3).prop_map(|v| v.into_iter().collect()),
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::vec(label(), 0..3).prop_map(|v| v.into_iter().collect())
}

fn ctx() -> impl Strategy<Value = Ctx> {
    let ns = prop_oneof![4 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)];
    let lease = prop_oneof![
        3 => Just(None),
        2 => (0..LEASES.len()).prop_map(|i| Some(LEASES[i].to_string())),
    ];
    (ns, lease).prop_map(|(n, lease)| Ctx {
        namespace: NAMESPACES[n].to_string(),
        lease,
    })
}

fn ctx_no_lease() -> impl Strategy<Value = Ctx> {
    ctx().prop_map(|c| Ctx { lease: None, ..c })
}

fn op(
    ctx: impl Strategy<Value = Ctx> + 'static,
    kind: impl Strategy<Value = OpKind> + 'static,
) -> BoxedStrategy<Action> {
    (ctx, kind)
        .prop_map(|(ctx, kind)| Action::Op(Op { ctx, kind }))
        .boxed()
}

fn content_write() -> impl Strategy<Value = OpKind> {
    (
        0..POOL.len(),
        prop_oneof![Just(WriteStyle::Open), Just(WriteStyle::Commit)],
        prop_oneof![4 => Just(None), 1 => (0..REFS.len()).prop_map(Some)],
        prop_oneof![6 => Just(None), 1 => (0..POOL.len()).prop_map(Some)],
        labels(),
    )
        .prop_map(|(i, style, r, expected, labels)| {
            // Writes to the shared refs r1/r2 in either style: reopening an ingest with another
            // declared total restarts it over its old file, which the model now follows.
            let data = Bytes::from(POOL[i].as_bytes());
            let own = Digest::of(&data);
            OpKind::ContentWrite {
                r: r.map_or_else(|| default_write_ref(&own), |j| REFS[j].to_string()),
                data,
                expected: expected.map(|j| Digest::of(POOL[j].as_bytes())),
                labels,
                style,
            }
        })
}

fn ingest_open() -> impl Strategy<Value = OpKind> {
    (0..REFS.len(), 0..POOL.len(), 0usize..3, prop::bool::ANY).prop_map(|(r, i, cut, declare)| {
        let full = POOL[i].as_bytes();
        let data = &full[..full.len() * cut / 2];
        OpKind::IngestOpen {
            r: REFS[r].to_string(),
            data: Bytes::from(data),
            expected: declare.then(|| Digest::of(full)),
        }
    })
}

fn image_name() -> impl Strategy<Value = String> {
    (0..IMAGES.len()).prop_map(|i| IMAGES[i].to_string())
}

fn lease_id() -> impl Strategy<Value = String> {
    (0..LEASES.len()).prop_map(|i| LEASES[i].to_string())
}

fn image_create() -> impl Strategy<Value = OpKind> {
    let media = prop_oneof![
        Just(MEDIA_MANIFEST.to_string()),
        Just(MEDIA_INDEX.to_string())
    ];
    (image_name(), media, any_digest(), labels()).prop_map(|(name, media_type, target, labels)| {
        OpKind::ImageCreate {
            name,
            media_type,
            target,
            size: None,
            labels,
        }
    })
}

/// An update of the target, the labels or both (with neither, the labels are cleared).
fn image_update() -> impl Strategy<Value = OpKind> {
    (
        image_name(),
        prop::option::of(any_digest()),
        prop::option::of(labels()),
    )
        .prop_map(|(name, target, labels)| {
            let labels = if target.is_none() && labels.is_none() {
                Some(Labels::new())
            } else {
                labels
            };
            OpKind::ImageUpdate {
                name,
                media_type: None,
                target,
                size: None,
                labels,
            }
        })
}

fn image_delete() -> impl Strategy<Value = OpKind> {
    (image_name(), prop::bool::ANY).prop_map(|(name, sync)| OpKind::ImageDelete { name, sync })
}

fn lease_delete() -> impl Strategy<Value = OpKind> {
    (lease_id(), prop::bool::ANY).prop_map(|(id, sync)| OpKind::LeaseDelete { id, sync })
}

fn clock_advance() -> impl Strategy<Value = OpKind> {
    prop_oneof![Just(Duration::from_secs(1800)), Just(Duration::HOUR)]
        .prop_map(|by| OpKind::ClockAdvance { by })
}

/// The pull program on the fixture, full or lazy (only linux/amd64 fetched).
fn pull() -> BoxedStrategy<Action> {
    (ctx_no_lease(), prop::bool::ANY)
        .prop_map(|(ctx, lazy)| Action::Pull {
            ctx,
            fixture: fixture(),
            fetched: lazy.then(|| vec!["linux/amd64".to_string()]),
        })
        .boxed()
}

/// The converter's reduction of the fixture to linux/amd64, into either image name.
fn convert() -> BoxedStrategy<Action> {
    (ctx_no_lease(), image_name())
        .prop_map(|(ctx, dst)| Action::Convert {
            ctx,
            src: IMAGES[0].to_string(),
            dst,
            platforms: vec!["linux/amd64".to_string()],
        })
        .boxed()
}

fn lease_create() -> impl Strategy<Value = OpKind> {
    (
        lease_id(),
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(Duration::HOUR * -1)),
            1 => Just(Some(Duration::from_secs(1800))),
            1 => Just(Some(Duration::HOUR)),
            1 => Just(Some(Duration::HOUR * 2)),
            1 => Just(Some(Duration::HOUR * 24)),
        ],
        prop::bool::weighted(0.3),
        lease_labels(),
    )
        .prop_map(|(id, expire, flat, labels)| OpKind::LeaseCreate {
            id,
            expire,
            flat,
            labels,
        })
}

/// A lease resource: content (mostly), an ingest ref, or an image (not a resource type on 1.6).
fn lease_resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        4 => any_digest().prop_map(Resource::Content),
        1 => (0..REFS.len()).prop_map(|r| Resource::Ingest(REFS[r].to_string())),
        1 => image_name().prop_map(Resource::Image),
    ]
}

/// `PUSHRACE_DIFF_FOCUS=leases`: sequences made mostly of lease life cycles around writes and
/// images: leases created with expiries, flat or with caller labels, resources added and removed,
/// writes and images under context leases, deletes (sync and async), GCs and clock advances.
fn lease_action() -> BoxedStrategy<Action> {
    prop_oneof![
        5 => op(ctx_no_lease(), lease_create()),
        4 => op(ctx_no_lease(), (lease_id(), lease_resource()).prop_map(|(id, resource)| OpKind::LeaseAdd { id, resource })),
        2 => op(ctx_no_lease(), (lease_id(), lease_resource()).prop_map(|(id, resource)| OpKind::LeaseRemove { id, resource })),
        6 => op(ctx(), content_write()),
        2 => op(ctx(), ingest_open()),
        2 => op(ctx(), image_create()),
        2 => op(ctx(), image_delete()),
        3 => op(ctx_no_lease(), lease_delete()),
        3 => op(ctx_no_lease(), Just(OpKind::GcRun)),
        2 => op(ctx_no_lease(), clock_advance()),
        1 => op(ctx_no_lease(), Just(OpKind::LeaseList)),
    ]
    .boxed()
}

/// `PUSHRACE_DIFF_FOCUS=images`: sequences made mostly of images and the GC edges around them:
/// images created and updated with targets that exist or not and label edges, deleted sync or
/// not, content with edge labels, label updates, deletes and GCs, pulls and conversions.
fn image_action() -> BoxedStrategy<Action> {
    prop_oneof![
        6 => op(ctx(), image_create()),
        4 => op(ctx(), image_update()),
        4 => op(ctx(), image_delete()),
        5 => op(ctx(), content_write()),
        3 => op(ctx(), (any_digest(), labels()).prop_map(|(digest, labels)| OpKind::ContentLabel { digest, labels })),
        2 => op(ctx(), any_digest().prop_map(|digest| OpKind::ContentDelete { digest })),
        3 => op(ctx_no_lease(), Just(OpKind::GcRun)),
        1 => op(ctx(), image_name().prop_map(|name| OpKind::ImageGet { name })),
        1 => pull(),
        1 => convert(),
    ]
    .boxed()
}

fn action() -> BoxedStrategy<Action> {
    prop_oneof![
        10 => op(ctx(), content_write()),
        2 => op(ctx(), ingest_open()),
        1 => op(ctx(), (0..REFS.len()).prop_map(|r| OpKind::IngestAbort { r: REFS[r].to_string() })),
        4 => op(ctx(), (any_digest(), labels()).prop_map(|(digest, labels)| OpKind::ContentLabel { digest, labels })),
        3 => op(ctx(), any_digest().prop_map(|digest| OpKind::ContentDelete { digest })),
        1 => op(ctx(), any_digest().prop_map(|digest| OpKind::ContentInfo { digest })),
        1 => op(ctx(), (any_digest(), 0u64..4, prop::option::of(0u64..4))
            .prop_map(|(digest, offset, len)| OpKind::ContentRead { digest, offset, len })),
        4 => op(ctx(), image_create()),
        2 => op(ctx(), image_update()),
        3 => op(ctx(), image_delete()),
        4 => op(ctx_no_lease(), lease_create()),
        3 => op(ctx_no_lease(), (lease_id(), lease_resource()).prop_map(|(id, resource)| OpKind::LeaseAdd { id, resource })),
        1 => op(ctx_no_lease(), (lease_id(), lease_resource()).prop_map(|(id, resource)| OpKind::LeaseRemove { id, resource })),
        3 => op(ctx_no_lease(), lease_delete()),
        3 => op(ctx_no_lease(), Just(OpKind::GcRun)),
        1 => op(ctx(), prop_oneof![
                Just(OpKind::ContentWalk),
                Just(OpKind::ImageList),
                Just(OpKind::LeaseList),
                image_name().prop_map(|name| OpKind::ImageGet { name }),
            ]),
        2 => op(ctx_no_lease(), clock_advance()),
        1 => pull(),
        1 => convert(),
    ]
    .boxed()
}

/// `PUSHRACE_DIFF_FOCUS=ingests`: sequences made mostly of what touches ingests (writes under the
/// shared refs, open, abort, shared blobs from other namespaces, deletes and GCs that clean the
/// backend, leases holding ingests), where the model's backend-ingest rules live.
fn ingest_action() -> BoxedStrategy<Action> {
    // Every write under one of the shared refs (content_write() mostly uses its own ref).
    let shared_ref_write = (content_write(), 0..REFS.len()).prop_map(|(k, j)| match k {
        OpKind::ContentWrite {
            data,
            expected,
            labels,
            style,
            ..
        } => OpKind::ContentWrite {
            r: REFS[j].to_string(),
            data,
            expected,
            labels,
            style,
        },
        k => k,
    });
    prop_oneof![
        6 => op(ctx(), shared_ref_write),
        2 => op(ctx(), content_write()),
        6 => op(ctx(), ingest_open()),
        3 => op(ctx(), (0..REFS.len()).prop_map(|r| OpKind::IngestAbort { r: REFS[r].to_string() })),
        2 => op(ctx(), any_digest().prop_map(|digest| OpKind::ContentDelete { digest })),
        2 => op(ctx_no_lease(), Just(OpKind::GcRun)),
        1 => op(ctx_no_lease(), lease_id().prop_map(|id| OpKind::LeaseCreate { id, expire: None, flat: false, labels: Labels::new() })),
        1 => op(ctx_no_lease(), lease_delete()),
        1 => op(ctx_no_lease(), Just(OpKind::ContentWalk)),
    ]
    .boxed()
}

/// At most `MAX_ADVANCES` clock advances (each ≤ 1 h): the virtual clock stays < 24 h past start,
/// where the daemon's own ingest expiry would begin to differ.
fn sequence() -> impl Strategy<Value = Vec<Action>> {
    let focus = std::env::var("PUSHRACE_DIFF_FOCUS").ok();
    let action = match focus.as_deref() {
        None => action(),
        Some("ingests") => ingest_action(),
        Some("leases") => lease_action(),
        Some("images") => image_action(),
        Some(other) => {
            panic!("PUSHRACE_DIFF_FOCUS={other:?}: expected `ingests`, `leases`, `images` or unset")
        }
    };
    prop::collection::vec(action, 1..30).prop_map(|v| {
        let mut advances = 0;
        v.into_iter()
            .filter(|a| {
                let adv = matches!(
                    a,
                    Action::Op(Op {
                        kind: OpKind::ClockAdvance { .. },
                        ..
                    })
                );
                advances += adv as usize;
                !adv || advances <= MAX_ADVANCES
            })
            .collect()
    })
}

fn describe(a: &Action) -> String {
    match a {
        Action::Op(op) => op.to_string(),
        Action::Pull { ctx, fetched, .. } => {
            format!(
                "image.pull {} ns={} fetched={fetched:?}",
                IMAGES[0], ctx.namespace
            )
        }
        Action::Convert {
            ctx,
            src,
            dst,
            platforms,
        } => {
            format!(
                "image.convert {src} -> {dst} {platforms:?} ns={}",
                ctx.namespace
            )
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

#[derive(Default)]
struct Stats {
    cases: u64,
    daemon_runs: u64,
    reruns: u64,
    ops: u64,
    wall: StdDuration,
}

fn run_case(actions: &[Action], stats: &mut Stats) -> Result<(), TestCaseError> {
    let started = StdInstant::now();
    let mut store = Store::new(Semantics::V1_6);
    let mut model_values = Vec::new();
    let model: Vec<EntryResult> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let result = match a {
                Action::Op(op) => store
                    .apply(op)
                    .map(|o| model_values.push((i, observable(&o)))),
                a => opsfile::run_action(&mut store, a),
            };
            EntryResult {
                op: i,
                name: String::new(),
                result,
            }
        })
        .collect();
    let model_state = store.state();
    let mut reruns = 0;
    let run = run_on_fresh_daemon(
        runtime(),
        StdDuration::from_millis(BASE_SCALE_MS),
        |b| Ok(runtime().block_on(run_on_daemon(b, actions))),
        |_, _| reruns += 1,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    stats.daemon_runs += 1 + reruns;
    stats.reruns += reruns;
    if !run.violations.is_empty() {
        panic!(
            "the virtual clock mapping did not hold even at {} ms per virtual hour: {:?}",
            run.scale.as_millis(),
            run.violations
        )
    }
    let (results, values, state) = run.value;
    stats.cases += 1;
    stats.ops += actions.len() as u64;
    stats.wall += started.elapsed();
    let mut diffs = diff::diff_results(&model, &results, |i| describe(&actions[i]));
    diffs.extend(diff_values(&model_values, &values));
    diffs.extend(diff::diff_states(&model_state, &state));
    if diffs.is_empty() {
        return Ok(());
    }
    let listing: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let r = match &model[i].result {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error `{}`", e.message),
            };
            format!("  {i:>2}: {}  => model {r}", describe(a))
        })
        .collect();
    Err(TestCaseError::fail(format!(
        "model and daemon differ:\n{}\nsequence:\n{}",
        diffs.join("\n"),
        listing.join("\n")
    )))
}

/// The daemon side of a case: every action's result, the answers of the operations that
/// succeeded (`observable`) and the final state.
async fn run_on_daemon(
    b: &mut DaemonBackend<'_>,
    actions: &[Action],
) -> (Vec<EntryResult>, Vec<(usize, Option<String>)>, State) {
    let mut results = Vec::new();
    let mut values = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let result = match a {
            Action::Op(op) => b.apply(op).await.map(|o| values.push((i, observable(&o)))),
            a => b.run_action(a).await,
        };
        results.push(EntryResult {
            op: i,
            name: String::new(),
            result,
        });
    }
    let state = b
        .state()
        .await
        .unwrap_or_else(|e| panic!("dumping the daemon's state: {e}"));
    (results, values, state)
}

/// What a successful operation answered, where the daemon's answer can be compared: the written
/// digest, info (size, labels), read bytes, listings, images, lease ids with labels (mapped back to
/// virtual time by the backend). `None` for answers with nothing to compare (done, GC reports).
fn observable(o: &Outcome) -> Option<String> {
    let info = |i: &ContentInfo| format!("{} size={} labels={:?}", i.digest, i.size, i.labels);
    let image = |i: &Image| {
        format!(
            "{} {} size={} labels={:?}",
            i.target.digest, i.target.media_type, i.target.size, i.labels
        )
    };
    Some(match o {
        Outcome::Done | Outcome::Gc(_) => return None,
        Outcome::Written(d) => d.to_string(),
        Outcome::Info(i) => info(i),
        Outcome::Data(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Outcome::Contents(v) => {
            let mut v: Vec<String> = v.iter().map(info).collect();
            v.sort();
            v.join("; ")
        }
        Outcome::Image(i) => image(i),
        Outcome::Images(v) => {
            let mut v: Vec<String> = v
                .iter()
                .map(|(n, i)| format!("{n}: {}", image(i)))
                .collect();
            v.sort();
            v.join("; ")
        }
        Outcome::Leases(v) => {
            let mut v: Vec<String> = v
                .iter()
                .map(|(id, l)| format!("{id} {:?}", l.labels))
                .collect();
            v.sort();
            v.join("; ")
        }
    })
}

/// One line per successful operation whose answer differs.
fn diff_values(
    model: &[(usize, Option<String>)],
    daemon: &[(usize, Option<String>)],
) -> Vec<String> {
    let daemon: std::collections::BTreeMap<usize, &Option<String>> =
        daemon.iter().map(|(i, v)| (*i, v)).collect();
    model
        .iter()
        .filter_map(|(i, m)| {
            let d = daemon.get(i)?;
            (*d != m).then(|| format!("op {i} answered: model {m:?}, daemon {d:?}"))
        })
        .collect()
}

/// The seed CI uses: any fixed number would do; this one spells "pushrace" in ASCII.
const DEFAULT_SEED: u64 = 0x7075_7368_7261_6365;

/// Bits for `PUSHRACE_DIFF_SEED=random`, from the OS-seeded hasher of the standard library.
fn random_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[test]
fn model_and_real_containerd_agree_on_random_sequences() {
    let cases: u32 = std::env::var("PUSHRACE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = match std::env::var("PUSHRACE_DIFF_SEED").as_deref() {
        Err(_) => DEFAULT_SEED,
        Ok("random") => random_bits(),
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PUSHRACE_DIFF_SEED={v:?}: expected a number or `random`")),
    };
    println!("differential: seed {seed} (PUSHRACE_DIFF_SEED={seed} reruns these sequences)");
    let config = Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        max_shrink_iters: 300,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let stats = std::cell::RefCell::new(Stats::default());
    let began = StdInstant::now();
    let result = runner.run(&sequence(), |actions| {
        run_case(&actions, &mut stats.borrow_mut())
    });
    let s = stats.borrow();
    let total = began.elapsed();
    println!(
        "differential: {} passing case(s) in {:.1} s ({} daemon runs, {} reruns for the clock mapping, \
         {} ops): {:.0} ms per case, {:.0} sequences/minute",
        s.cases,
        total.as_secs_f64(),
        s.daemon_runs,
        s.reruns,
        s.ops,
        s.wall.as_secs_f64() * 1000.0 / s.cases.max(1) as f64,
        s.cases as f64 * 60.0 / total.as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(s.cases >= cases as u64, "only {} cases ran", s.cases);
}
