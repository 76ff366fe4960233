//! The verdict table: every built-in scenario shape under every push variant. Each expected row is
//! argued from the upstream history (nerdctl-push-history.md) and containerd's rules; the computed
//! table must match it, and the full table (with shrunk lengths and the missing object) is an insta
//! snapshot so any change in what the explorer finds shows up in review.

use pushrace_scenarios::explore::{explore, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use std::fmt::Write;

/// (scenario, variant) -> Some(missing role) for a violation, None for holds.
fn expected(scenario: &str, v: Variant) -> Option<&'static str> {
    use Variant::*;
    match (scenario, v) {
        // A lone push: nothing else deletes anything, and its own deferred delete comes after its
        // last read. Every variant holds.
        ("push-single", _) => None,
        // Two pushes of one ref share `<ref>-tmp-reduced-platform` and the reduced index R.
        // v0.17 deletes the tmp image asynchronously and this scenario has no background GC, so no
        // GC ever runs: nothing can be collected (the 2022 failure needed the scheduler; see
        // background-gc). v0.18 (#866) and v2.0.4 delete it synchronously: push A's GC collects R
        // while push B still reads it (v2.0.4 makes v0.18's calls). v2.0.5 (#4062) opens with a synchronous delete of the
        // shared tmp name, which removes the other push's tmp image and collects R just the same.
        // lease-held: unique tmp names, R and the source index held by the push's lease.
        ("same-ref", V0_17) => None,
        ("same-ref", V0_18 | V2_0_4 | V2_0_5) => Some("reduced-index"),
        ("same-ref", LeaseHeld) => None,
        // Two tags of one image: distinct tmp names, same R. The second converter's write of R
        // answers `blob with expected digest … exists` and R does not join its lease; the first
        // push's synchronous deferred delete collects R before the second creates or updates its
        // tmp image -> R (#4470, still open). v0.17 has no synchronous delete and no scheduler here.
        // lease-held adds R to its lease with AddResource before the converter writes it.
        ("two-tags", V0_17) => None,
        ("two-tags", V0_18 | V2_0_4 | V2_0_5) => Some("reduced-index"),
        ("two-tags", LeaseHeld) => None,
        // A parallel test's `rmi -f` of another image runs a full GC mid-push, but a lone push's
        // objects are always referenced (the source image; a freshly committed R joins the
        // converter's lease, then the tmp image holds it). Every variant holds.
        ("rmi-other", _) => None,
        // With the default scheduler a GC follows any delete at some later tick: v0.17's async
        // deletes are then as fatal as v0.18's sync ones. Only lease-held holds.
        ("background-gc", LeaseHeld) => None,
        ("background-gc", _) => Some("reduced-index"),
        // Only linux/amd64 was fetched; pushing both platforms makes the converter read the arm64
        // manifest, which fails every variant, as nerdctl's source says:
        // - v0.17, v0.18 and v2.0.4 convert without ensuring content (v2.0.4's
        //   `pkg/cmd/image/push.go` calls EnsureAllContent on its IPFS path only);
        // - v2.0.5 and lease-held run EnsureAllContent, whose `read` (`pkg/cmd/image/list.go`
        //   readIndex) skips an index entry whose manifest cannot be read (`continue`), so a
        //   platform whose manifest was never fetched is never checked or fetched
        //   (`pkg/cmd/image/ensure.go`: ensureOne only for the platforms read). It fetches what is
        //   missing below a manifest that is there (layers), not a missing manifest.
        ("lazy-pull", _) => Some("manifest"),
        // A pull of the same image only writes, relabels and re-points at the same target under
        // its own lease; it deletes nothing. Every variant holds.
        ("pull-race", _) => None,
        (s, _) => panic!("no expectation written for scenario {s}"),
    }
}

const SHAPES: [&str; 7] = [
    "push-single",
    "same-ref",
    "two-tags",
    "rmi-other",
    "background-gc",
    "lazy-pull",
    "pull-race",
];

#[test]
fn verdict_table_matches_upstream_history() {
    let mut table = String::new();
    let mut mismatches = Vec::new();
    for shape in SHAPES {
        let base = library::builtin(shape)
            .expect("built-in exists")
            .expect("built-in parses");
        for v in Variant::ALL {
            let s = base.with_variant(v);
            let verdict = explore(&s, &Options::for_scenario(&s));
            assert!(
                verdict.other_failure.is_none(),
                "{shape} {v}: {:?}",
                verdict.other_failure
            );
            let got = verdict
                .violation
                .as_ref()
                .map(|x| x.role.map_or("?", |r| r.name()));
            let row = match &verdict.violation {
                None => format!(
                    "{shape:<14} {v:<10} holds      exhausted={}",
                    verdict.report.exhausted
                ),
                Some(x) => format!(
                    "{shape:<14} {v:<10} violation  missing={:<13} actor={} shrunk={}->{} steps",
                    got.unwrap_or("?"),
                    x.actor.as_deref().unwrap_or("-"),
                    x.steps_before,
                    x.steps_after
                ),
            };
            writeln!(table, "{row}").unwrap();
            if got != expected(shape, v) {
                mismatches.push(format!(
                    "{shape} {v}: expected {:?}, got {:?}\n{}",
                    expected(shape, v),
                    got,
                    verdict.to_text()
                ));
            }
            if verdict.violation.is_none() {
                // A "holds" verdict is only worth something when the bounded space was exhausted.
                assert!(
                    verdict.report.exhausted,
                    "{shape} {v}: holds but the space was not exhausted"
                );
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    insta::assert_snapshot!(table);
}

/// Partial-order reduction must not change a verdict: every built-in shape under every variant
/// gives the same verdict (and, for a violation, the same missing object) with reduction off,
/// where every interleaving within the preemption bound is run.
#[test]
fn reduction_never_changes_a_verdict() {
    for shape in SHAPES {
        let base = library::builtin(shape).unwrap().unwrap();
        for v in Variant::ALL {
            let s = base.with_variant(v);
            let mut o = Options::for_scenario(&s);
            let reduced = explore(&s, &o);
            o.reduction = false;
            let full = explore(&s, &o);
            let role =
                |x: &pushrace_scenarios::explore::Verdict| x.violation.as_ref().map(|v| v.role);
            assert_eq!(role(&reduced), role(&full), "{shape} {v}");
            if full.holds() {
                assert!(
                    full.report.exhausted && reduced.report.exhausted,
                    "{shape} {v}"
                );
                assert!(
                    reduced.report.executions <= full.report.executions,
                    "{shape} {v}"
                );
            }
        }
    }
}

/// Visited-state pruning must not change a verdict either: every built-in shape under every
/// variant, at its declared bound, gives the same verdict and missing object with pruning on
/// (the state fingerprint includes the preemptions used and the last actor under a bound).
#[test]
fn pruning_never_changes_a_verdict() {
    for shape in SHAPES {
        let base = library::builtin(shape).unwrap().unwrap();
        for v in Variant::ALL {
            let s = base.with_variant(v);
            let mut o = Options::for_scenario(&s);
            let plain = explore(&s, &o);
            o.prune = true;
            let pruned = explore(&s, &o);
            let role =
                |x: &pushrace_scenarios::explore::Verdict| x.violation.as_ref().map(|v| v.role);
            assert_eq!(role(&plain), role(&pruned), "{shape} {v}");
            assert_eq!(
                plain.report.exhausted, pruned.report.exhausted,
                "{shape} {v}"
            );
            if pruned.holds() {
                // An exhausted space popped every node: each recorded its state.
                assert!(
                    pruned.report.states > 0,
                    "{shape} {v}: pruning recorded no state"
                );
            }
        }
    }
}

/// The corpus as proofs: with no preemption bound and pruning on, every built-in shape under
/// every variant gets its expected verdict, and a `holds` is a proof for every interleaving of
/// the model (for this fixture shape). pull-race is here since an actor's history keeps only
/// what its program sees (a few thousand states under each variant, where the full answers made
/// 465 137 under v2.0.5). Left to the benchmark `prune` (25 383 states, over a few seconds in a
/// debug build): background-gc under lease-held.
#[test]
fn every_interleaving_gives_the_expected_verdict() {
    for shape in SHAPES {
        let base = library::builtin(shape).unwrap().unwrap();
        for v in Variant::ALL {
            if shape == "background-gc" && v == Variant::LeaseHeld {
                continue;
            }
            let s = base.with_variant(v);
            let mut o = Options::for_scenario(&s);
            o.preemptions = None;
            o.prune = true;
            let verdict = explore(&s, &o);
            let got = verdict
                .violation
                .as_ref()
                .map(|x| x.role.map_or("?", |r| r.name()));
            assert_eq!(
                got,
                expected(shape, v),
                "{shape} {v}\n{}",
                verdict.to_text()
            );
            if got.is_none() {
                assert!(verdict.proved(), "{shape} {v}: {}", verdict.to_text());
                assert_eq!(verdict.scope(), "all interleavings", "{shape} {v}");
            }
        }
    }
}

/// The one built-in `holds` file that is not a shape above under some variant: same-ref played by
/// the ctr programs with nerdctl v0.17's asynchronous tmp delete, on a sync-only daemon. It holds
/// for every interleaving of the model too.
#[test]
fn same_ref_ctr_v017_holds_for_every_interleaving() {
    let s = library::builtin("same-ref-ctr-v017").unwrap().unwrap();
    let mut o = Options::for_scenario(&s);
    o.preemptions = None;
    o.prune = true;
    let verdict = explore(&s, &o);
    assert!(verdict.violation.is_none(), "{}", verdict.to_text());
    assert!(verdict.proved(), "{}", verdict.to_text());
    assert_eq!(verdict.scope(), "all interleavings");
}

/// `--jobs 2 --prune`: the threads share one visited table (the harness's `strategy::epochs`),
/// so a proof in two threads is a proof, the same on every run whatever the scheduling of the
/// threads, and a violation is the one a thread finds. pull-race under lease-held with no bound
/// (about 40 000 steps: some 10 epochs a thread, so states cross between them), and same-ref
/// under v0.18.
#[test]
fn a_pruned_search_in_two_threads_repeats_exactly() {
    use pushrace_scenarios::parallel;
    let held = library::builtin("pull-race").unwrap().unwrap();
    let held = held.with_variant(Variant::LeaseHeld);
    let mut o = Options::for_scenario(&held);
    o.preemptions = None;
    o.prune = true;
    let runs: Vec<_> = (0..3).map(|_| parallel::explore(&held, &o, 2)).collect();
    let counts = |v: &pushrace_scenarios::explore::Verdict| {
        let r = &v.report;
        (r.executions, r.pruned, r.states, r.revisits)
    };
    for v in &runs {
        assert!(v.proved(), "{}", v.to_text());
        assert_eq!(v.scope(), "all interleavings");
        assert_eq!(counts(v), counts(&runs[0]), "a run differed");
    }
    let alone = explore(&held, &o);
    assert!(alone.proved());
    // One table of distinct states: about the one thread's, not the sum of two.
    let (one, two) = (alone.report.states, runs[0].report.states);
    assert!(
        two < one + one / 4,
        "{two} states in two threads, {one} in one"
    );

    let bad = library::builtin("same-ref").unwrap().unwrap();
    let mut o = Options::for_scenario(&bad);
    o.preemptions = None;
    o.prune = true;
    let role = |v: &pushrace_scenarios::explore::Verdict| v.violation.as_ref().map(|x| x.role);
    let (one, two) = (explore(&bad, &o), parallel::explore(&bad, &o, 2));
    assert!(role(&one).is_some(), "{}", one.to_text());
    assert_eq!(role(&two), role(&one), "{}", two.to_text());
}
