//! A user's tests, written only against pushrace's public API.

use pushrace::{check, Actor, Call, Check, Client, Config, Op, OpKind, Scenario, Strategy};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pushrace-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn panic_text(r: Result<(), Box<dyn std::any::Any + Send>>) -> String {
    let e = r.expect_err("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

fn same_ref(variant: &str) -> Scenario {
    Scenario::builder()
        .name("my-same-ref")
        .containerd("1.6")
        .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
        .push("push-a", "example.com/app:1", variant)
        .push("push-b", "example.com/app:1", variant)
        .build()
        .unwrap()
}

#[test]
fn a_corpus_file_explores_to_its_declared_verdict() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/corpus/same-ref.toml"
    );
    let s = Scenario::from_file(path).unwrap();
    assert_eq!(s.name(), "same-ref");
    assert_eq!(s.expects_holds(), Some(false));
    let r = s.explore(Config::new());
    r.assert_violation();
    assert!(!r.holds());
    assert_eq!(r.missing(), Some("reduced-index"));
    assert!(r.message().unwrap().contains(": not found"));
    let sch = r.schedule().unwrap();
    assert!(sch.starts_with("s1:"));
    let text = r.to_text();
    assert!(
        text.contains("```mermaid")
            && text.contains(&format!("pushrace replay {path} --schedule {sch}")),
        "{text}"
    );
    // assert_holds on it panics with the trace.
    let msg = panic_text(catch_unwind(|| {
        s.explore(Config::new().regressions(None)).assert_holds()
    }));
    assert!(
        msg.contains("expected the invariant to hold") && msg.contains("sequenceDiagram"),
        "{msg}"
    );
}

#[test]
fn a_fix_holds_and_assert_violation_says_so() {
    let r = same_ref("lease-held").explore(Config::new());
    r.assert_holds();
    assert!(r.exhausted() && r.executions() > 10 && r.schedule().is_none());
    let msg = panic_text(catch_unwind(AssertUnwindSafe(|| r.assert_violation())));
    assert!(
        msg.contains("expected a violation, found none") && msg.contains("HOLDS"),
        "{msg}"
    );
}

#[test]
fn config_bounds_change_what_is_explored() {
    let s = same_ref("lease-held");
    let all = s.explore(Config::new()).executions();
    let p0 = s.explore(Config::new().preemptions(0)).executions();
    let budget = s.explore(Config::new().budget(5));
    assert!(p0 < all, "{p0} < {all}");
    assert_eq!(budget.executions(), 5);
    assert!(!budget.exhausted());
    let random = s.explore(Config::new().strategy(Strategy::Random).seed(3).budget(20));
    assert_eq!(random.executions(), 20);
    assert!(random.to_text().contains("random, seed 3"));
    let s0 = s.explore(Config::new().shard(0, 2)).executions();
    let s1 = s.explore(Config::new().shard(1, 2)).executions();
    assert!(s0 + s1 >= all);
    // Threads: the shards' executions summed, one proof; the violation of a racing pair found
    // by two threads is the one one thread finds.
    let two = s.explore(Config::new().jobs(2));
    assert_eq!(two.executions(), s0 + s1);
    assert!(two.proved());
    let racing = same_ref("v0.18");
    let (a, b) = (
        racing.explore(Config::new().jobs(1)),
        racing.explore(Config::new().jobs(2)),
    );
    a.assert_violation();
    assert_eq!(a.schedule(), b.schedule());
    let without_counts = |t: String| {
        let lines = t.lines().filter(|l| !l.contains(" executions"));
        lines.collect::<Vec<_>>().join("\n")
    };
    assert_eq!(without_counts(a.to_text()), without_counts(b.to_text()));
}

#[test]
fn config_from_the_environment() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = Config::from_lookup(vars(&[
        ("PUSHRACE_SEED", "9"),
        ("PUSHRACE_PREEMPTIONS", "1"),
        ("PUSHRACE_BUDGET", "7"),
        ("PUSHRACE_SHARD", "1/3"),
        ("PUSHRACE_STRATEGY", "pct"),
        ("PUSHRACE_JOBS", "2"),
    ]))
    .unwrap();
    assert_eq!(
        c,
        Config::new()
            .seed(9)
            .preemptions(1)
            .budget(7)
            .shard(1, 3)
            .strategy(Strategy::Pct)
            .jobs(2)
    );
    assert_eq!(Config::from_lookup(|_| None).unwrap(), Config::new());
    let none = Config::from_lookup(vars(&[("PUSHRACE_PREEMPTIONS", "none")])).unwrap();
    assert_eq!(none, Config::new().unbounded());
    for (k, v) in [
        ("PUSHRACE_SHARD", "3/3"),
        ("PUSHRACE_SEED", "x"),
        ("PUSHRACE_BUDGET", "0"),
        ("PUSHRACE_STRATEGY", "bfs"),
        ("PUSHRACE_SCHEDULE", "nope"),
        ("PUSHRACE_PREEMPTIONS", "nonee"),
        ("PUSHRACE_PREEMPTIONS", "-1"),
        ("PUSHRACE_JOBS", "0"),
        ("PUSHRACE_JOBS", "many"),
    ] {
        let e = Config::from_lookup(|q| (q == k).then(|| v.to_string())).unwrap_err();
        assert!(e.contains(k), "{e}");
    }
}

#[test]
fn a_failed_assert_holds_is_saved_as_a_scenario_file_that_replays() {
    let dir = temp_dir("saved");
    let s = same_ref("v0.18");
    let found = s.explore(Config::new());
    let msg = panic_text(catch_unwind(|| {
        s.explore(Config::new().regressions(Some(&dir)))
            .assert_holds()
    }));
    let saved = dir.join("my-same-ref.toml");
    assert!(
        msg.contains(&format!("saved as a value to {}", saved.display())),
        "{msg}"
    );
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        text.contains(&format!("schedule = \"{}\"", found.schedule().unwrap())),
        "{text}"
    );

    // Loaded back, the file replays the schedule: one execution, the same failure.
    let again = Scenario::from_file(&saved).unwrap();
    assert_eq!(again.expects_holds(), Some(true));
    let r = again.explore(Config::new());
    assert_eq!(r.executions(), 1);
    assert_eq!(r.schedule(), found.schedule());
    assert_eq!(r.message(), found.message());
    assert!(
        r.to_text().contains("replayed the saved schedule first"),
        "{r}"
    );
    assert!(r
        .to_text()
        .contains(&format!("pushrace replay {} --schedule", saved.display())));

    // Once the fix lands (here: the variant), the same file passes.
    let fixed = text.replace("v0.18", "lease-held");
    std::fs::write(&saved, fixed).unwrap();
    let r = Scenario::from_file(&saved).unwrap().explore(Config::new());
    r.assert_holds();
    assert!(r.executions() > 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn builder_mistakes_are_reported_like_file_mistakes() {
    let e = Scenario::builder()
        .image("example.com/app:1", ["linux/amd64"])
        .actor(Actor::new("x", "nerdctl.fly"))
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown program \"nerdctl.fly\""),
        "{e}"
    );
    let e = Scenario::builder()
        .image("example.com/app:1", ["linux/amd64"])
        .push("p", "example.com/nope:1", "v0.18")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("key `ref`"), "{e}");
    // A key no `[[actor]]` has is refused naming it, as a file's would be.
    let e = Scenario::builder()
        .image("example.com/app:1", ["linux/amd64"])
        .actor(Actor::new("x", "nerdctl.push").with("refx", "example.com/app:1"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("builder:scenario: [[actor]] x: unknown field `refx`"),
        "{e}"
    );
}

/// Two actors of my own: each creates the shared `tmp` image and deletes it when done, so one
/// can find it already there.
async fn shared_tmp<C: Client>(
    c: &C,
    ctx: pushrace::Ctx,
    target: pushrace::model::Descriptor,
) -> Result<(), pushrace::Error> {
    c.call(Op {
        ctx: ctx.clone(),
        kind: OpKind::ImageCreate {
            name: "example.com/app:1-tmp".into(),
            media_type: target.media_type,
            target: target.digest,
            size: Some(target.size),
            labels: Default::default(),
        },
    })
    .await?;
    c.call(Op {
        ctx,
        kind: OpKind::ImageDelete {
            name: "example.com/app:1-tmp".into(),
            sync: true,
        },
    })
    .await?;
    Ok(())
}

#[test]
fn check_finds_a_race_in_my_own_code_and_keeps_its_schedule() {
    let dir = temp_dir("check");
    let run = || {
        catch_unwind(|| {
            check(
                |c| async move {
                    let index = c.image("example.com/app:1").index.descriptor.clone();
                    shared_tmp(&c, c.ctx(), index).await
                },
                Config::new().regressions(Some(&dir)),
            )
        })
    };
    let msg = panic_text(run());
    assert!(
        msg.contains("pushrace::check found a failing interleaving"),
        "{msg}"
    );
    assert!(
        msg.contains("already exists") && msg.contains("```mermaid"),
        "{msg}"
    );
    let saved = dir.join("check_finds_a_race_in_my_own_code_and_keeps_its_schedule.schedules");
    assert!(msg.contains(&saved.display().to_string()), "{msg}");
    let line = std::fs::read_to_string(&saved).unwrap();
    let sch = line
        .lines()
        .find(|l| l.starts_with("s1:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&format!("Config::new().schedule(\"{sch}\")")),
        "{msg}"
    );

    // The next run replays the saved schedule first: one execution, the same schedule.
    let msg = panic_text(run());
    assert!(
        msg.contains("replayed the saved schedule first and it still fails: 1 execution")
            && msg.contains(&sch),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), line, "saved once");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_holds_when_the_actors_do_not_interfere() {
    check(
        |c| async move {
            let index = c.image("example.com/app:1").index.descriptor.clone();
            c.call(Op {
                ctx: c.ctx(),
                kind: OpKind::ImageCreate {
                    name: format!("example.com/mine:{}", c.index()),
                    media_type: index.media_type,
                    target: index.digest,
                    size: Some(index.size),
                    labels: Default::default(),
                },
            })
            .await?;
            Ok(())
        },
        Config::new().regressions(None),
    );
    // Different actors, counted.
    let r = Check::new()
        .actor("reader", |c| async move {
            c.call(Op {
                ctx: c.ctx(),
                kind: OpKind::ImageGet {
                    name: "example.com/app:1".into(),
                },
            })
            .await?;
            Ok(())
        })
        .actor("gc", |c| async move {
            c.call(Op {
                ctx: c.ctx(),
                kind: OpKind::GcRun,
            })
            .await?;
            Ok(())
        })
        .run(Config::new());
    r.assert_holds();
    // The GC removes nothing (everything hangs off the image), so once it ran its footprint is
    // a read of every key and a write of the scheduler's counters only: the reader's image get
    // commutes with it, and one execution covers both orders.
    assert_eq!(r.executions(), 1);
}

#[test]
fn my_code_against_a_built_in_push() {
    let s = Scenario::builder()
        .containerd("1.6")
        .image("example.com/app:1", ["linux/amd64", "linux/arm64"])
        .push("push", "example.com/app:1", "v0.18")
        .build()
        .unwrap();
    // A cleanup job that removes nerdctl's tmp image synchronously races the push.
    let r = Check::on(&s)
        .actor("cleanup", |c| async move {
            let _ = c
                .call(Op {
                    ctx: c.ctx(),
                    kind: OpKind::ImageDelete {
                        name: "example.com/app:1-tmp-reduced-platform".into(),
                        sync: true,
                    },
                })
                .await;
            Ok(())
        })
        .run(Config::new());
    r.assert_violation();
    assert_eq!(r.missing(), Some("reduced-index"));
    assert!(
        r.to_text().contains("push failed at step"),
        "{}",
        r.to_text()
    );
}

/// With no preemption bound a small built-in (`rmi-other`: a push beside an `rmi -f` of another
/// image) is explored to exhaustion, and the report says it covered every interleaving.
#[test]
fn an_unbounded_exploration_exhausts_and_says_all_interleavings() {
    let s = Scenario::builtin("rmi-other").unwrap();
    let r = s.explore(Config::new().unbounded());
    assert!(r.proved(), "{r}");
    assert_eq!(r.preemption_bound(), None);
    assert_eq!(r.scope(), "all interleavings");
    let text = r.to_text();
    assert!(text.contains("dfs, all interleavings"), "{text}");
    assert!(
        text.contains("HOLDS: no violation found (all interleavings)"),
        "{text}"
    );
    assert_eq!(r.to_json()["scope"], "all interleavings");
    assert_eq!(r.to_json()["preemption_bound"], serde_json::Value::Null);
    // No bound explores at least what the declared bound 2 does.
    let bounded = s.explore(Config::new());
    assert_eq!(bounded.scope(), "preemption bound 2");
    assert!(r.executions() >= bounded.executions());
}
