//! Real `ctr` processes as the actors of the built-in ctr scenarios (nerdctl v0.18's push path
//! in three commands: `same-ref-ctr`, `same-ref-ctr-v017`, `two-tags-ctr`), under the scheduler
//! through the interposer, on a private containerd and registry.

#![cfg(feature = "containerd")]

use pushrace_harness::Schedule;
use pushrace_scenarios::backend::commands::CommandSpec;
use pushrace_scenarios::backend::interposed::Budgets;
use pushrace_scenarios::backend::real::{
    explore_real, replay_from_model, replay_real, RealActor, RealExploration, RealOptions,
    RealReplay,
};
use pushrace_scenarios::explore::{self, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::programs::push::Variant;
use pushrace_scenarios::scenario::Scenario;
use std::time::Duration;

fn lenient() -> RealOptions {
    RealOptions {
        lenient: true,
        ..RealOptions::default()
    }
}

/// The built-in `name` with its own commands, replayed (leniently) under `schedule`.
fn run(name: &str, schedule: &str) -> RealReplay {
    let s = library::load(name).unwrap();
    let actors = RealActor::of_scenario(&s).unwrap();
    let schedule = Schedule::parse(schedule).unwrap();
    replay_real(&s, &actors, &schedule, &lenient()).unwrap()
}

fn show(r: &RealReplay) -> String {
    let mut out = String::new();
    if let Ok(e) = &r.execution {
        out.push_str(&e.trace.to_text());
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

/// Run `i` failed with `content digest <reduced index>: not found`, every call agreeing with the
/// shadow model; its trace hash.
fn assert_lost_reduced_index(i: usize, r: &RealReplay) -> String {
    let v = r
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("run {i}: {}", show(r)));
    assert!(v.message.contains("not found"), "run {i}: {v:?}");
    let what = v.what.clone().unwrap_or_default();
    assert!(what.contains("reduced index"), "run {i}: {v:?}");
    assert!(
        r.journal.disagreements.is_empty(),
        "{:?}",
        r.journal.disagreements
    );
    r.execution.as_ref().unwrap().trace.hash.clone()
}

/// Seen once when this file first ran in parallel: a client's dial stalled for ctr's 10 s timeout
/// while another test's interposer was running in the same process. Not reproduced since (30
/// executions of same-ref-ctr from three threads at once, three interposers in one process, none
/// slower than 1.3 s), and the cause is unknown; until it is, the tests of this file take this
/// lock and run one at a time, so CI stays deterministic. The CLI runs one interposer per process.
static ONE_INTERPOSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ONE_INTERPOSER`] for a test (a panicking test's poisoned lock is taken anyway).
fn one_interposer() -> std::sync::MutexGuard<'static, ()> {
    ONE_INTERPOSER.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many steps `actor` runs, in the serial run of `name`, before the first step whose label
/// starts with `prefix` (plus `extra`).
fn steps_before(name: &str, actor: usize, prefix: &str, extra: usize) -> usize {
    let r = run(name, "s1:2:a");
    let e = r.execution.as_ref().expect("the serial order runs");
    let mine: Vec<_> = e.trace.steps.iter().filter(|s| s.actor == actor).collect();
    let at = mine.iter().position(|st| st.label.starts_with(prefix));
    at.unwrap_or_else(|| panic!("no {prefix:?} step of actor {actor}: {}", show(&r))) + extra
}

#[test]
fn serial_v018_ctr_actors_pass() {
    let _serial = one_interposer();
    assert_passed(0, &run("same-ref-ctr", "s1:2:a"));
}

/// The bad order (A converts, and its push resolves the tmp image — ctr pushes in a process of
/// its own, which looks the image up by name, where nerdctl's push holds the converted image's
/// descriptor; B converts, pushes, removes with --sync; A pushes) fails with `content digest
/// <reduced index>: not found` 20 times out of 20, each time with the same trace hash; the serial
/// order passes 20 out of 20.
#[test]
fn bad_order_fails_and_serial_order_passes_20_of_20() {
    let _serial = one_interposer();
    let k = steps_before("same-ref-ctr", 0, "exec ctr images push", 2);
    let bad = format!("s1:2:a{k}b");
    let hashes: std::collections::BTreeSet<String> = (0..20)
        .map(|i| assert_lost_reduced_index(i, &run("same-ref-ctr", &bad)))
        .collect();
    assert_eq!(hashes.len(), 1, "the bad order ran differently: {hashes:?}");
    let t0 = std::time::Instant::now();
    let mut split = [Duration::ZERO; 3];
    for i in 0..20 {
        let r = run("same-ref-ctr", "s1:2:a");
        for (d, x) in split.iter_mut().zip([r.started, r.setup, r.run]) {
            *d += x / 20;
        }
        assert_passed(i, &r);
    }
    let per = t0.elapsed() / 20;
    eprintln!("serial real execution: {per:?} each (daemon + registry start {:?}, setup {:?}, processes and calls {:?})", split[0], split[1], split[2]);
}

/// v0.17 (`rm` without `--sync`, and this daemon's GC runs only on sync deletes): the same bad
/// order passes 20 out of 20, as the model says of v0.17.
#[test]
fn v017_in_the_bad_order_passes_20_of_20() {
    let _serial = one_interposer();
    let k = steps_before("same-ref-ctr-v017", 0, "exec ctr images push", 2);
    for i in 0..20 {
        assert_passed(i, &run("same-ref-ctr-v017", &format!("s1:2:a{k}b")));
    }
}

/// The #4470 window with unique tmp names: A converts and pushes; B converts up to and including
/// its write of the reduced index R (which exists, so the write answers AlreadyExists and R does
/// not join B's lease); A's `rm --sync` runs a full GC that collects R; B creates its tmp image
/// (no existence check) and its push dies reading R. 20 out of 20, one trace hash (the model
/// finds the same window: the corpus test of two-tags-ctr expects the violation).
#[test]
fn two_tags_window_fails_20_of_20() {
    let _serial = one_interposer();
    let a = steps_before("two-tags-ctr", 0, "exec ctr images rm", 0);
    let b = steps_before("two-tags-ctr", 1, "content.write", 1);
    let window = format!("s1:2:a{a}b{b}a");
    let hashes: std::collections::BTreeSet<String> = (0..20)
        .map(|i| assert_lost_reduced_index(i, &run("two-tags-ctr", &window)))
        .collect();
    assert_eq!(hashes.len(), 1, "the window ran differently: {hashes:?}");
}

/// The model's own shrunk schedule of same-ref-ctr, translated call by call (`--from-model`),
/// fails on the real actors the way the model says. Every call of push-a (containerd's own
/// converter and pusher, run by ctr) has its model partner, the `Info` of each `ReaderAt`
/// included (`content/proxy/content_store.go`), and so has every registry request (the registry
/// is under the scheduler), the pusher's check of the index by its tag (`HEAD
/// /v2/app/manifests/1`, `remotes/docker/pusher.go`) included; push-b's unpaired calls are its
/// serial run's after the point where this replay fails it.
#[test]
fn the_model_schedule_translated_fails_on_real_ctr() {
    let _serial = one_interposer();
    let s = library::load("same-ref-ctr").unwrap();
    let v = explore::explore(&s, &Options::for_scenario(&s))
        .violation
        .expect("the model finds the violation");
    let actors = RealActor::of_scenario(&s).unwrap();
    let (r, t) = replay_from_model(&s, &actors, &v.schedule, &lenient()).unwrap();
    assert_lost_reduced_index(0, &r);
    assert!(t.paired > 40, "{t:?}");
    assert!(t.model_only.is_empty(), "{t:?}");
    let push_a = t.real_only.iter().filter(|x| x.actor == 0);
    let push_a: Vec<_> = push_a.map(|x| x.key.as_str()).collect();
    assert!(
        push_a.is_empty(),
        "push-a's calls without a model partner: {push_a:?}"
    );
}

fn one(commands: Vec<CommandSpec>, budgets: Budgets) -> RealReplay {
    let s = library::load("same-ref-ctr").unwrap();
    let mut actors = RealActor::of_scenario(&s).unwrap();
    actors[0].commands = commands;
    let o = RealOptions {
        budgets,
        ..lenient()
    };
    let schedule = Schedule::parse("s1:2:a").unwrap();
    replay_real(&s, &actors, &schedule, &o).unwrap()
}

/// Bad clients are backend failures naming the actor, never violations, and leave nothing
/// running: a command that does not exist, one that fails before any call, a client that never
/// calls, one that goes silent between calls, one that hangs inside a call.
#[test]
fn bad_clients_are_backend_failures_naming_the_actor() {
    let _serial = one_interposer();
    let short = Budgets {
        step: Duration::from_secs(1),
        wait: Duration::from_secs(1),
        execution: Duration::from_secs(30),
    };
    let ctr = |rest: &str| {
        let mut argv = vec!["ctr", "--address", "{address}"];
        argv.extend(rest.split(' '));
        vec![CommandSpec::new(&argv)]
    };
    let sh = |script: &str| vec![CommandSpec::new(&["sh", "-c", script])];
    let cases: [(Vec<CommandSpec>, &str); 5] = [
        (
            vec![CommandSpec::new(&["/nonexistent/ctr"])],
            "cannot run `/nonexistent/ctr`",
        ),
        (
            ctr("--no-such-flag"),
            "`ctr --no-such-flag` exited 1 before making any call",
        ),
        (
            vec![CommandSpec::new(&["sleep", "30"])],
            "made no call and did not exit within 1s",
        ),
        // One call, then silence: the shell and its sleeping child are killed as one group.
        (
            sh("ctr --address {address} images ls && sleep 31"),
            "made no call and did not exit",
        ),
        // A Write stream opened and never committed (ingest waits for stdin).
        (
            sh("sleep 32 | ctr --address {address} content ingest stuck"),
            "call `content.write stuck` did not end within 1s",
        ),
    ];
    for (commands, want) in cases {
        let r = one(commands, short);
        assert!(r.violation.is_none(), "{:?}", r.violation);
        let other = r.other_failure.unwrap_or_default();
        assert!(
            other.contains("push-a"),
            "the actor is not named: {other:?}"
        );
        assert!(other.contains(want), "{want:?} not in {other:?}");
    }
    // Whole command lines only: `sleep 30` must not match someone else's `sleep 300`.
    for leftover in ["^sleep 30$", "^sleep 31$", "^sleep 32$"] {
        let left = std::process::Command::new("pgrep")
            .args(["-f", leftover])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "left running: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}

/// Explores `name` on real processes with `strategy`, at most `budget` executions, no shrinking.
/// The verdict, and the real executions built (the strategy's, plus the failure's replay).
fn explore_on_real(name: &str, strategy: &str, budget: u64) -> (explore::Verdict, u64) {
    let s = library::load(name).unwrap();
    let opts = Options {
        strategy: strategy.parse().unwrap(),
        budget: Some(budget),
        shrink: false,
        ..Options::for_scenario(&s)
    };
    let x = explore_scenario(&s, opts);
    (x.verdict, x.times.executions)
}

/// Explores `s` on real processes with `opts` (no shrinking on real replays); every real call
/// agreed with the shadow model.
fn explore_scenario(s: &Scenario, opts: Options) -> RealExploration {
    let actors = RealActor::of_scenario(s).unwrap();
    let o = RealOptions {
        shrink_budget: 0,
        ..RealOptions::default()
    };
    let x = explore_real(s, &actors, &opts, &o).unwrap();
    assert!(x.disagreements.is_empty(), "{:?}", x.disagreements);
    x
}

/// same-ref-go with both pushes at `variant`.
fn same_ref_go(variant: Variant) -> Scenario {
    library::load("same-ref-go").unwrap().with_variant(variant)
}

/// The exploration's violation: a lost reduced index (`content digest …: not found`).
fn lost_reduced_index(v: &explore::Verdict) -> &explore::Violation {
    let found = v
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("{}", v.to_text()));
    assert!(found.message.contains("content digest"), "{found:?}");
    let what = found.what.as_deref().unwrap_or_default();
    assert!(what.contains("reduced index"), "{found:?}");
    found
}

/// A schedule found on real processes, replayed 20 times on fresh daemons with strict options:
/// each replay loses the reduced index, and all of them hash to the trace it was found with.
fn replays_20_of_20(s: &Scenario, found: &explore::Violation) {
    let actors = RealActor::of_scenario(s).unwrap();
    let strict = RealOptions::default();
    let hashes: std::collections::BTreeSet<_> = (0..20)
        .map(|i| {
            let r = replay_real(s, &actors, &found.schedule, &strict).unwrap();
            assert_lost_reduced_index(i, &r)
        })
        .collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    assert_eq!(hashes.into_iter().next().unwrap(), found.trace.hash);
}

/// DFS over real ctr processes finds same-ref's lost reduced index with no model in the loop
/// (the shadow model only judges), within 30 executions: on the model DFS needs 9, and the real
/// steps keep the model's order of choices (the same labels, plus one `exec` step per command,
/// which DPOR does not branch on: it touches nothing). The schedule found replays 20/20 on fresh
/// daemons with one trace hash.
#[test]
fn dfs_on_real_ctr_finds_same_ref_and_the_schedule_replays_20_of_20() {
    let _serial = one_interposer();
    let (v, built) = explore_on_real("same-ref-ctr", "dfs", 30);
    // Each execution on its own daemon, and one more: the failure replayed for its trace.
    assert_eq!(built, v.report.executions + 1);
    let found = lost_reduced_index(&v);
    assert_eq!(v.ran_on, explore::RanOn::Real);
    assert!(v.replay_command().unwrap().ends_with("--backend real"));
    replays_20_of_20(&library::load("same-ref-ctr").unwrap(), found);
}

/// PCT over real Go clients (nerdctl v0.18's push on containerd's library) finds it too, within
/// 20 executions. PCT's guarantee for this run (n = 2, k ≈ 70, d = 3) is only 1e-4 per run, but
/// the window is wide: any priority change that lets one push's tmp delete run inside the
/// other's push. With seed 0 it took 4 executions when this was written; PCT's choices are a
/// function of the seed and the steps seen, so the count is the same every run.
#[test]
fn pct_on_real_go_clients_finds_same_ref() {
    let _serial = one_interposer();
    let (v, _) = explore_on_real("same-ref-go", "pct", 20);
    lost_reduced_index(&v);
}

/// The registry under the scheduler (`interpose/http.rs`): two v0.18 Go-client pushes one after
/// the other. Each HEAD and each completing PUT is a step of the push that made it, labelled and
/// keyed as the model's `registry.head` / `registry.put` (`footprint::registry_key` of the
/// digest); the index is put by tag, so its put also writes the tag, and its HEAD (by tag) reads
/// only the tag. No step touches the old whole-registry key, and every HEAD's answer is the
/// shadow model's: the first push finds nothing, the second finds everything and uploads nothing.
#[test]
fn registry_requests_are_steps_with_the_models_keys() {
    use pushrace_scenarios::backend::footprint::{registry_key, REGISTRY};
    let _serial = one_interposer();
    let r = run("same-ref-go", "s1:2:a");
    assert_passed(0, &r);
    let e = r.execution.as_ref().unwrap();
    let tag = registry_key("app/manifests/1").0;
    let of = |actor: usize, prefix: &str| -> Vec<&pushrace_harness::TraceStep> {
        let steps = e.trace.steps.iter().filter(|s| s.actor == actor);
        steps.filter(|s| s.label.starts_with(prefix)).collect()
    };
    for step in &e.trace.steps {
        let keys = step.reads.iter().chain(&step.writes);
        assert!(!keys.clone().any(|k| *k == REGISTRY.0), "{step:?}");
    }
    // push-a: HEAD of the config, the layer, the manifest (by digest) and the tag; a put of each.
    let heads = of(0, "registry.head ");
    assert_eq!(heads.len(), 4, "{}", show(&r));
    for h in &heads {
        let object = h.label.trim_start_matches("registry.head ");
        let key = match object {
            "app/manifests/1" => tag,
            _ => {
                let full = |s: &&pushrace_harness::TraceStep| s.label.ends_with(object);
                assert!(e.trace.steps.iter().any(|s| full(&s)));
                h.reads[0]
            }
        };
        assert_eq!(
            (h.reads.as_slice(), h.writes.as_slice()),
            (&[key][..], &[][..]),
            "{h:?}"
        );
    }
    let puts = of(0, "registry.put ");
    assert_eq!(puts.len(), 4, "{}", show(&r));
    let index_put = puts.last().unwrap();
    assert_eq!(index_put.writes.len(), 2, "{index_put:?}");
    assert_eq!(index_put.writes[1], tag, "{index_put:?}");
    // push-b finds everything there, the tag pointing at the index it pushes: HEADs only.
    assert!(of(1, "registry.put ").is_empty(), "{}", show(&r));
    assert_eq!(of(1, "registry.head ").len(), 4, "{}", show(&r));
}

/// Two lease-held Go-client pushes of the same image (same-ref-go, the fix) explored on real
/// processes by DFS to exhaustion at preemption bound 1: no violation, no disagreement.
#[test]
fn lease_held_go_pushes_hold_on_real_at_bound_1() {
    let _serial = one_interposer();
    let s = same_ref_go(Variant::LeaseHeld);
    let opts = Options {
        preemptions: Some(1),
        ..Options::for_scenario(&s)
    };
    let t0 = std::time::Instant::now();
    let x = explore_scenario(&s, opts);
    let v = &x.verdict;
    assert!(
        v.violation.is_none() && v.other_failure.is_none(),
        "{}",
        v.to_text()
    );
    assert!(v.proved(), "not exhausted: {}", v.to_text());
    let n = v.report.executions;
    eprintln!(
        "same-ref-go lease-held, bound 1: {n} real executions, {:?}",
        t0.elapsed()
    );
}

/// DFS over real Go clients at nerdctl v2.0.5 (same-ref-go) finds the lost reduced index with
/// the registry under the scheduler, and the schedule found replays 20 times out of 20 on fresh
/// daemons with its own trace hash.
#[test]
fn dfs_on_real_go_finds_same_ref_v2_0_5_and_it_replays_20_of_20() {
    let _serial = one_interposer();
    let s = same_ref_go(Variant::V2_0_5);
    let opts = Options {
        budget: Some(60),
        shrink: false,
        ..Options::for_scenario(&s)
    };
    let x = explore_scenario(&s, opts);
    let found = lost_reduced_index(&x.verdict);
    eprintln!(
        "same-ref-go v2.0.5: found in {} real executions",
        x.verdict.report.executions
    );
    replays_20_of_20(&s, found);
}

/// `nerdctl rmi -f` of the fixture's image, then a pull of it from the registry (seeded with it
/// as `base:1`, the pull's `remote`), one after the other: the rmi's synchronous delete collects every
/// blob of the image, so each of the pull's fetches downloads its blob (`GET /v2/base/...`)
/// while its Write is open. Those GETs are made inside the Write's step (the hold gate nests an actor's
/// calls in its open Write until the commit is answered), so no step waits for another: the
/// pull passes, its four Writes complete as committed `content.write`s, no `registry.get` is a
/// step of its own, every call agrees with the shadow model, and two runs give one trace hash.
/// The model runs the same scenario, and every gRPC call pairs with one of the real run's.
#[test]
fn a_pull_that_downloads_nests_its_gets_in_its_writes() {
    let _serial = one_interposer();
    let s = pushrace_scenarios::scenario::parse(
        "rmi-then-pull.toml",
        "containerd = \"1.6\"\ngc = \"sync-only\"\n[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[[actor]]\nname = \"rmi\"\nprogram = \"nerdctl.rmi\"\nimage = \"example.com/app:1\"\nforce = true\nclient = \"go\"\n[[actor]]\nname = \"pull\"\nprogram = \"nerdctl.pull\"\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\"]\nremote = \"localhost:5000/base:1\"\nclient = \"go\"\n",
    )
    .unwrap();
    let actors = RealActor::of_scenario(&s).unwrap();
    let serial = Schedule::parse("s1:2:a").unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| replay_real(&s, &actors, &serial, &lenient()).unwrap())
        .collect();
    for (i, r) in runs.iter().enumerate() {
        assert_passed(i, r);
    }
    let trace = &runs[0].execution.as_ref().unwrap().trace;
    let pulls: Vec<_> = trace.steps.iter().filter(|st| st.actor == 1).collect();
    let done = |st: &&pushrace_harness::TraceStep| st.completion.clone().unwrap_or_default();
    let written: Vec<_> = pulls
        .iter()
        .map(done)
        .filter(|c| c.starts_with("content.write "))
        .collect();
    assert_eq!(written.len(), 4, "{}", show(&runs[0]));
    let gets = pulls
        .iter()
        .filter(|st| st.label.starts_with("registry.get"));
    assert_eq!(gets.count(), 0, "{}", show(&runs[0]));
    let hash = |r: &RealReplay| r.execution.as_ref().unwrap().trace.hash.clone();
    assert_eq!(hash(&runs[0]), hash(&runs[1]));
    let explorer = pushrace_harness::Explorer::new(pushrace_harness::Config::default());
    let model = explorer
        .replay_lenient(&explore::model(&s), &serial)
        .unwrap();
    let t = pushrace_scenarios::backend::translate::translate(&model.trace, trace).unwrap();
    // The pull's resolve of its tag is the one call the model's pull has no partner for.
    let resolve = |k: &str| k == "registry.head base/manifests/1";
    let real_only: Vec<_> = t.real_only.iter().filter(|x| !resolve(&x.key)).collect();
    assert!(
        t.model_only.is_empty() && real_only.is_empty(),
        "model only {:?}, real only {real_only:?}",
        t.model_only
    );
}

/// push-pull-rmi-go (a lease-held Go push, a Go pull of the same image, `rmi -f` of another)
/// explored on real processes by DFS at preemption bound 1, its first 30 executions (the whole
/// space at bound 1 is 130 DFS executions, about 70 s here; at bound 2 it is the verdict bench's):
/// no violation, no divergence (the executions replay their prefixes label for label: a Write
/// that nested the call after it in some executions only made this fail at its 16th), no
/// disagreement with the shadow model.
#[test]
fn push_pull_rmi_go_holds_in_its_first_30_real_executions_at_bound_1() {
    let _serial = one_interposer();
    let s = library::load("push-pull-rmi-go").unwrap();
    let opts = Options {
        preemptions: Some(1),
        budget: Some(30),
        ..Options::for_scenario(&s)
    };
    let x = explore_scenario(&s, opts);
    let v = &x.verdict;
    assert!(
        v.violation.is_none() && v.other_failure.is_none(),
        "{}",
        v.to_text()
    );
    assert_eq!(v.report.executions, 30, "{}", v.to_text());
}

/// A push mounts what a pull labelled, on the model as on the real processes: push-pull-rmi-go
/// with the pull run to its end first (it labels every blob it fetched
/// `containerd.io/distribution.source.<host>=base`, `remotes/docker/handler.go`
/// AppendDistributionSourceLabel), then the push, then the rmi. The pusher checks each blob in
/// its own repository (`app`: absent, the registry keeps repositories apart), and a config or
/// layer whose label names another repository of the push's host is mounted from it (`POST
/// …/blobs/uploads/?mount=D&from=base`, 201: `remotes/docker/pusher.go` push,
/// `selectRepositoryMountCandidate`), neither read nor uploaded; the manifest is PUT (a manifest
/// is never mounted). So the model and the Go client each make two `registry.mount` steps, of
/// the amd64 config and layer, and every call pairs but the pull's resolve of its tag.
/// In the other order (the push first, before any label exists) neither mounts.
#[test]
fn a_push_mounts_what_a_pull_labelled_on_the_model_and_on_real() {
    let _serial = one_interposer();
    let s = library::load("push-pull-rmi-go").unwrap();
    let actors = RealActor::of_scenario(&s).unwrap();
    let explorer = pushrace_harness::Explorer::new(pushrace_harness::Config::default());
    let mounts = |t: &pushrace_harness::Trace| -> Vec<String> {
        let m = t
            .steps
            .iter()
            .filter(|st| st.label.starts_with("registry.mount"));
        m.map(|st| st.label.clone()).collect()
    };
    for (order, want) in [("s1:3:b", 2), ("s1:3:a", 0)] {
        let schedule = Schedule::parse(order).unwrap();
        let r = replay_real(&s, &actors, &schedule, &lenient()).unwrap();
        assert_passed(0, &r);
        let real = &r.execution.as_ref().unwrap().trace;
        let model = explorer
            .replay_lenient(&explore::model(&s), &schedule)
            .unwrap();
        assert_eq!(mounts(real).len(), want, "{order}: {}", show(&r));
        assert_eq!(mounts(&model.trace), mounts(real), "{order}");
        // What differs: the real pull resolves its tag, which the model's pull does not read.
        let t = pushrace_scenarios::backend::translate::translate(&model.trace, real).unwrap();
        let keys = |v: &[pushrace_scenarios::backend::translate::Side]| -> Vec<String> {
            let mut k: Vec<_> = v.iter().map(|x| x.key.clone()).collect();
            k.sort();
            k
        };
        assert!(t.model_only.is_empty(), "{order}: {t:?}");
        let resolve = ["registry.head base/manifests/1"];
        assert_eq!(keys(&t.real_only), resolve, "{order}: {t:?}");
    }
}
