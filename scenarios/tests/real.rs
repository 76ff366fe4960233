//! Real `ctr` processes as the actors of same-ref (nerdctl v0.18's push path in three commands),
//! under the scheduler through the interposer, on a private containerd and registry.

#![cfg(feature = "containerd")]

use pushrace_harness::Schedule;
use pushrace_scenarios::backend::commands::CommandSpec;
use pushrace_scenarios::backend::interposed::Budgets;
use pushrace_scenarios::backend::real::{replay_real, RealActor, RealOptions, RealReplay};
use pushrace_scenarios::library;
use std::time::Duration;

const TMP: &str = "{ref}-tmp-reduced-platform";

fn v018() -> RealActor {
    ctr_actor(&["--sync"])
}

/// nerdctl's push path as ctr commands; `rm` gets `rm_flags` (v0.18 `--sync`, v0.17 none).
fn ctr_actor(rm_flags: &[&str]) -> RealActor {
    let a = ["ctr", "--address", "{address}"];
    let cmd = |rest: &[&str]| CommandSpec::new(&[&a[..], rest].concat());
    RealActor {
        reference: "example.com/app:1".into(),
        commands: vec![
            cmd(&[
                "images",
                "convert",
                "--platform",
                "linux/amd64",
                "{ref}",
                TMP,
            ]),
            cmd(&[
                "images",
                "push",
                "--plain-http",
                "--max-concurrent-uploaded-layers",
                "1",
                "{registry}/app:1",
                TMP,
            ]),
            cmd(&[&["images", "rm"][..], rm_flags, &[TMP]].concat()).always(),
        ],
    }
}

fn run(schedule: &str) -> RealReplay {
    run_with(schedule, v018)
}

fn run_with(schedule: &str, actor: fn() -> RealActor) -> RealReplay {
    let s = library::load("same-ref").unwrap();
    let o = RealOptions {
        lenient: true,
        ..RealOptions::default()
    };
    let schedule = Schedule::parse(schedule).unwrap();
    replay_real(&s, &[actor(), actor()], &schedule, &o).unwrap()
}

fn show(r: &RealReplay) -> String {
    let mut out = String::new();
    if let Ok(e) = &r.execution {
        for st in &e.trace.steps {
            out.push_str(&format!("{st:?}\n"));
        }
    }
    out.push_str(&format!(
        "{:#?}\n{:?} {:?}\n",
        r.journal, r.violation, r.other_failure
    ));
    out
}

/// Run `i` passed: no violation, no other failure, every call as the shadow model answered it.
fn assert_passed(i: usize, r: &RealReplay) {
    assert!(
        r.violation.is_none() && r.other_failure.is_none(),
        "run {i}: {}",
        show(r)
    );
    assert!(
        r.journal.disagreements.is_empty(),
        "{:?}",
        r.journal.disagreements
    );
}

/// KNOWN BUG (to fix; found when this file first ran in parallel): two interposers in one process
/// interfere — a client's dial can stall for ctr's 10 s timeout while another test's interposer is
/// running. The CLI runs one interposer per process, so it is not affected; until the bug is found,
/// the tests of this file take this lock and run one at a time, so CI stays deterministic.
static ONE_INTERPOSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ONE_INTERPOSER`] for a test (a panicking test's poisoned lock is taken anyway).
fn one_interposer() -> std::sync::MutexGuard<'static, ()> {
    ONE_INTERPOSER.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn serial_v018_ctr_actors_pass() {
    let _serial = one_interposer();
    let r = run("s1:2:a");
    assert!(
        r.violation.is_none() && r.other_failure.is_none(),
        "{}",
        show(&r)
    );
}

/// Steps of push-a up to and including its push's first call (`image.get` of the tmp image: ctr
/// runs the push in a process of its own, which looks the image up by name, where nerdctl's
/// push holds the converted image's descriptor), read off the serial run.
fn convert_steps() -> usize {
    let r = run("s1:2:a");
    let e = r.execution.as_ref().expect("the serial order runs");
    e.trace
        .steps
        .iter()
        .position(|st| st.label.starts_with("exec ctr images push"))
        .expect("push-a pushes")
        + 2
}

/// The bad order (A converts and resolves its tmp image; B converts, pushes, removes with --sync;
/// A pushes) fails with
/// `content digest <reduced index>: not found` 20 times out of 20, each time the same schedule;
/// the serial order passes 20 out of 20.
#[test]
fn bad_order_fails_and_serial_order_passes_20_of_20() {
    let _serial = one_interposer();
    let k = convert_steps();
    let bad = format!("s1:2:a{k}b");
    let mut schedules = std::collections::BTreeSet::new();
    for i in 0..20 {
        let r = run(&bad);
        let v = r
            .violation
            .as_ref()
            .unwrap_or_else(|| panic!("run {i}: {}", show(&r)));
        assert!(v.message.contains("not found"), "run {i}: {v:?}");
        let what = v.what.clone().unwrap_or_default();
        assert!(what.contains("reduced index"), "run {i}: {v:?}");
        assert!(
            r.journal.disagreements.is_empty(),
            "{:?}",
            r.journal.disagreements
        );
        schedules.insert(r.execution.unwrap().schedule.encode());
    }
    assert_eq!(
        schedules.len(),
        1,
        "the bad order ran differently: {schedules:?}"
    );
    let t0 = std::time::Instant::now();
    let mut split = [std::time::Duration::ZERO; 3];
    for i in 0..20 {
        let r = run("s1:2:a");
        for (d, x) in split.iter_mut().zip([r.started, r.setup, r.run]) {
            *d += x / 20;
        }
        assert_passed(i, &r);
    }
    let per = t0.elapsed() / 20;
    eprintln!("serial real execution: {per:?} each (daemon + registry start {:?}, setup {:?}, processes and calls {:?})", split[0], split[1], split[2]);
}

fn one(commands: Vec<CommandSpec>, budgets: Budgets) -> RealReplay {
    let s = library::load("same-ref").unwrap();
    let actor = |commands| RealActor {
        reference: "example.com/app:1".into(),
        commands,
    };
    let o = RealOptions {
        lenient: true,
        budgets,
        ..RealOptions::default()
    };
    let schedule = Schedule::parse("s1:2:a").unwrap();
    replay_real(&s, &[actor(commands), v018()], &schedule, &o).unwrap()
}

/// Bad clients are backend failures naming the actor, never violations, and leave nothing
/// running: a command that does not exist, a client that never calls, one that hangs mid-call.
#[test]
fn bad_clients_are_backend_failures_naming_the_actor() {
    let _serial = one_interposer();
    let short = Budgets {
        step: Duration::from_secs(1),
        wait: Duration::from_secs(1),
        execution: Duration::from_secs(30),
    };
    let cases: [(Vec<CommandSpec>, &str); 3] = [
        (
            vec![CommandSpec::new(&["/nonexistent/ctr"])],
            "actor push-a: cannot run `/nonexistent/ctr`",
        ),
        (
            vec![CommandSpec::new(&["sleep", "30"])],
            "made no call and did not exit within 1s",
        ),
        // One call, then silence: the shell and its sleeping child are killed as one group.
        (
            vec![CommandSpec::new(&[
                "sh",
                "-c",
                "ctr --address {address} images ls && sleep 31",
            ])],
            "made no call and did not exit",
        ),
    ];
    for (commands, want) in cases {
        let r = one(commands, short);
        assert!(r.violation.is_none(), "{:?}", r.violation);
        let other = r.other_failure.unwrap_or_default();
        assert!(other.contains(want), "{want:?} not in {other:?}");
    }
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 31"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// v0.17 (`rm` without `--sync`, and this daemon's GC runs only on sync deletes): the same bad
/// order passes 20 out of 20, as the model says of v0.17.
#[test]
fn v017_in_the_bad_order_passes_20_of_20() {
    let _serial = one_interposer();
    let k = convert_steps();
    let v017 = || ctr_actor(&[]);
    for i in 0..20 {
        let r = run_with(&format!("s1:2:a{k}b"), v017);
        assert_passed(i, &r);
    }
}
