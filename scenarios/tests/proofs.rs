//! The corpus as proofs: the built-in `holds` scenarios, and the lease-held fix under the
//! busy-neighbour mixes, explored with no preemption bound (every interleaving of the model, for
//! each scenario's fixture shape), with visited-state pruning. Each must exhaust its space and
//! hold. What does not fit a few seconds of a debug build here (pull-race, background-gc,
//! four-actors-lease-held) is proved in the benchmark `prune`
//! (`cargo bench -p pushrace-scenarios --bench prune`).

use pushrace_scenarios::explore::{explore, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;

/// Explores `name` (with every push switched to `variant`) with no bound and pruning; asserts it
/// holds over a space that was exhausted, and returns the executions it took.
fn proves(name: &str, variant: Option<Variant>) -> u64 {
    let mut s = library::load(name).unwrap();
    if let Some(v) = variant {
        s = s.with_variant(v);
    }
    let opts = Options {
        preemptions: None,
        prune: true,
        ..Options::for_scenario(&s)
    };
    let v = explore(&s, &opts);
    let what = format!("{name} {variant:?}");
    assert!(v.violation.is_none(), "{what}: {:?}", v.violation);
    assert!(v.other_failure.is_none(), "{what}: {:?}", v.other_failure);
    assert!(v.report.exhausted, "{what}: not exhausted: {}", v.report);
    assert_eq!(v.options.preemptions, None, "{what}: every interleaving");
    assert!(v.report.states > 0, "{what}: pruning ran");
    v.report.executions
}

#[test]
fn the_builtin_holds_scenarios_hold_for_every_interleaving() {
    // Their own variants: the lease-held fix (two pushes of one ref, two tags), nerdctl v0.17's
    // asynchronous tmp delete on a sync-only daemon, and a push with no neighbour.
    for name in [
        "same-ref-lease-held",
        "two-tags-lease-held",
        "same-ref-ctr-v017",
        "push-single",
    ] {
        proves(name, None);
    }
}

#[test]
fn the_fix_holds_for_every_interleaving_beside_a_parallel_rmi() {
    // rmi-other's neighbour is `nerdctl rmi -f` of another image, whose synchronous GC sweeps
    // every namespace in the middle of the push.
    proves("rmi-other", Some(Variant::LeaseHeld));
}

#[test]
fn a_violation_is_still_found_with_no_bound() {
    // The same search must not hold where the model fails: #855 with no bound and pruning.
    let s = library::load("same-ref").unwrap();
    let opts = Options {
        preemptions: None,
        prune: true,
        ..Options::for_scenario(&s)
    };
    let v = explore(&s, &opts);
    assert!(v.violation.is_some(), "{}", v.report);
}
