//! The same client programs on loom: loom finds the v0.18 same-ref violation, and explores the
//! lease-held push path without one. Bounds: preemption bound 1 for the violation (it needs one
//! preemption: push-a's GC slipped in before push-b's read), and 1 for the exhaustive lease-held
//! run (loom's exploration of ~120 lock acquisitions grows too fast at 2 for `cargo test`; the
//! harness explores lease-held at bound 2 and 3 in the verdict and benchmark runs).

#[path = "common/loom_client.rs"]
mod loom_client;

use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;

#[test]
fn loom_finds_the_v0_18_same_ref_violation() {
    let s = library::builtin("same-ref")
        .unwrap()
        .unwrap()
        .with_variant(Variant::V0_18);
    let r = std::panic::catch_unwind(|| loom_client::check_scenario(&s, 1));
    let message = match r {
        Ok(()) => panic!("loom explored same-ref v0.18 without finding the violation"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        message.contains("content digest sha256:"),
        "loom's failure is the missing digest: {message}"
    );
    let reduced = s.digest_with_role("reduced index").unwrap();
    assert!(
        message.contains(reduced),
        "the missing digest is the reduced index: {message}"
    );
}

#[test]
fn loom_explores_lease_held_same_ref_without_violation() {
    let s = library::builtin("same-ref")
        .unwrap()
        .unwrap()
        .with_variant(Variant::LeaseHeld);
    loom_client::check_scenario(&s, 1);
}
