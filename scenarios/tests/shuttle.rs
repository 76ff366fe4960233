//! The same client programs on shuttle: shuttle's PCT scheduler finds the v0.18 same-ref violation
//! (the missing digest is the reduced index, as pushrace and loom report), and random schedules of
//! the lease-held push path find none. Fixed seeds: the runs are the same every time.

#[path = "common/shuttle_client.rs"]
mod shuttle_client;

use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use shuttle::scheduler::{PctScheduler, RandomScheduler};

#[test]
fn shuttle_pct_finds_the_v0_18_same_ref_violation() {
    let s = library::builtin("same-ref")
        .unwrap()
        .unwrap()
        .with_variant(Variant::V0_18);
    let (_, failure) =
        shuttle_client::check_scenario(&s, PctScheduler::new_from_seed(0x5eed, 3, 2_000));
    let message = failure.expect("shuttle's PCT found the violation within 2000 schedules");
    let reduced = s.digest_with_role("reduced index").unwrap();
    assert!(
        message.contains(&format!("content digest {reduced}: not found")),
        "the missing digest is the reduced index: {message}"
    );
}

#[test]
fn shuttle_random_schedules_of_lease_held_find_no_violation() {
    let s = library::builtin("same-ref")
        .unwrap()
        .unwrap()
        .with_variant(Variant::LeaseHeld);
    let (runs, failure) =
        shuttle_client::check_scenario(&s, RandomScheduler::new_from_seed(0x5eed, 200));
    assert_eq!(failure, None);
    assert_eq!(runs, 200);
}
