//! The headline shrunk traces, as a person reads them (text) and pastes them (Mermaid), and the
//! determinism of exploration: the same scenario explored twice gives the same output and hashes.

use pushrace_scenarios::explore::{explore, replay, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;

fn headline(name: &str, variant: Variant) -> pushrace_scenarios::explore::Verdict {
    let s = library::builtin(name)
        .unwrap()
        .unwrap()
        .with_variant(variant);
    explore(&s, &Options::for_scenario(&s))
}

/// same-ref under v0.18 (#855): push-a runs to completion, including its synchronous deferred
/// delete of the shared tmp image (the GC that collects R), between push-b's `image.get` of the
/// tmp image and push-b's first read of R. The last push-b call before the failure must be that
/// read, and push-a's `image.delete … sync` must come right before it.
#[test]
fn same_ref_v0_18_shrunk_trace() {
    let v = headline("same-ref", Variant::V0_18);
    let x = v.violation.expect("v0.18 same-ref violates");
    let steps = &x.trace.steps;
    let fail = &steps[x.step];
    assert_eq!(x.actor.as_deref(), Some("push-b"));
    assert!(
        fail.label.starts_with("content.info") || fail.label.starts_with("content.read"),
        "{}",
        fail.label
    );
    let gc = steps[..x.step]
        .iter()
        .rposition(|t| t.label.contains("image.delete") && t.label.contains("sync"))
        .unwrap();
    assert_eq!(steps[gc].actor, 0, "push-a's synchronous delete is the GC");
    assert!(
        steps[gc + 1..x.step].iter().all(|t| t.actor == 1),
        "nothing of push-a's after its GC"
    );
    // The text's last line carries the trace hash. It folds in each step's label hash, which
    // `sim::label_hash` computes from the operation's fields. So it changes when an operation or
    // that encoding changes, and never from run to run (the determinism tests check that).
    insta::assert_snapshot!("same_ref_v0_18_text", x.trace.to_text());
    insta::assert_snapshot!("same_ref_v0_18_mermaid", x.trace.to_mermaid());
}

/// two-tags under v2.0.5 (#4470): push-b's converter writes R when it already exists (the
/// digest-at-commit write leases nothing), push-a's deferred synchronous delete collects R, and
/// push-b's `image.update` of its tmp image to R still succeeds before its read fails.
#[test]
fn two_tags_v2_0_5_shrunk_trace() {
    let v = headline("two-tags", Variant::V2_0_5);
    let x = v.violation.expect("v2.0.5 two-tags violates");
    let steps = &x.trace.steps;
    let labels: Vec<&str> = steps.iter().map(|t| t.label.as_str()).collect();
    let b_write = steps
        .iter()
        .position(|t| {
            t.actor == 1
                && t.label.starts_with("content.write")
                && t.label.contains("digest-at-commit")
        })
        .unwrap();
    let a_gc = steps
        .iter()
        .rposition(|t| {
            t.actor == 0 && t.label.contains("image.delete") && t.label.ends_with("sync")
        })
        .unwrap();
    let b_update = steps
        .iter()
        .position(|t| t.actor == 1 && t.label.starts_with("image.update"))
        .unwrap();
    assert!(
        b_write < a_gc && a_gc < b_update && b_update < x.step,
        "{labels:#?}"
    );
    insta::assert_snapshot!("two_tags_v2_0_5_text", x.trace.to_text());
    insta::assert_snapshot!("two_tags_v2_0_5_mermaid", x.trace.to_mermaid());
}

/// Every built-in explored twice: identical text output (minus the wall time) and, for each
/// violation, the same trace hash, which the shrunk schedule's replay reproduces.
#[test]
fn exploration_is_deterministic() {
    for name in library::names() {
        let s = library::builtin(name).unwrap().unwrap();
        let o = Options::for_scenario(&s);
        let (a, b) = (explore(&s, &o), explore(&s, &o));
        let strip = |t: String| {
            t.lines()
                .filter(|l| !l.starts_with("explored "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(a.to_text()), strip(b.to_text()), "{name}");
        assert_eq!(a.report.executions, b.report.executions, "{name}");
        if let (Some(x), Some(y)) = (&a.violation, &b.violation) {
            assert_eq!(x.trace.hash, y.trace.hash, "{name}");
            let (again, failed) = replay(&s, &x.schedule).unwrap();
            assert_eq!(
                again.hash, x.trace.hash,
                "{name}: replay of the shrunk schedule"
            );
            assert!(failed.is_some(), "{name}: the replay fails too");
        }
    }
}
