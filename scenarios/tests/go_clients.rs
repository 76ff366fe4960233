//! The Go clients (clients/go, nerdctl's push path, pull and rmi on containerd 1.6.20's own
//! library) run alone as real actors under the scheduler, through the interposer, on a private
//! containerd and registry: each variant's push of push-single's fixture passes, and its step
//! labels are printed (docs/go-clients.md records them: the input of the conformance work).
//!
//! The binary is built by `ci/build-go-clients` (run here once per test process: a no-op when the
//! sources' hash is unchanged), so `cargo test` works on a machine where `ci/run` installed Go
//! and containerd's Go library.

#![cfg(feature = "containerd")]

use pushrace_harness::Schedule;
use pushrace_scenarios::backend::commands::CommandSpec;
use pushrace_scenarios::backend::real::{replay_real, RealActor, RealOptions, RealReplay};
use pushrace_scenarios::library;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The Go client's path, built (or found up to date) by ci/build-go-clients.
fn go_client() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = root.join("ci/build-go-clients");
        let out = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); ci/run installs golang-go and golang-github-containerd-containerd-dev:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bin = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(
            std::path::Path::new(&bin).is_file(),
            "ci/build-go-clients printed {bin:?}, which is not a file"
        );
        bin
    })
}

/// One command of the Go client against the actor's socket: `pushrace-go-client --address
/// {address} ARGS…`.
fn go(args: &[&str]) -> CommandSpec {
    let mut argv = vec![go_client(), "--address", "{address}"];
    argv.extend_from_slice(args);
    CommandSpec::new(&argv)
}

/// `push --variant V --platform linux/amd64 --plain-http {ref} {registry}/app:1` (lease-held with
/// `--tmp-suffix push`, the actor's name, as the model names its tmp image).
fn push(variant: &str) -> CommandSpec {
    let mut args = vec!["push", "--variant", variant, "--platform", "linux/amd64"];
    if variant == "lease-held" {
        args.extend(["--tmp-suffix", "push"]);
    }
    args.extend(["--plain-http", "{ref}", "{registry}/app:1"]);
    go(&args)
}

/// The interposer tests run one at a time (scenarios/tests/real.rs says why: two interposers in
/// one process can stall a dial).
static ONE_INTERPOSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_interposer() -> std::sync::MutexGuard<'static, ()> {
    ONE_INTERPOSER.lock().unwrap_or_else(|e| e.into_inner())
}

/// push-single's one actor played by `commands`, all its steps in order, on a fresh private
/// containerd (the fixture set up) and `registry` (a fresh private one when `None`).
fn run_alone(commands: Vec<CommandSpec>, registry: Option<String>) -> RealReplay {
    run_scenario_alone(&library::load("push-single").unwrap(), commands, registry)
}

/// `s`'s one actor played by `commands`, alone.
fn run_scenario_alone(
    s: &pushrace_scenarios::scenario::Scenario,
    commands: Vec<CommandSpec>,
    registry: Option<String>,
) -> RealReplay {
    let actor = RealActor {
        reference: "example.com/app:1".into(),
        commands,
    };
    let o = RealOptions {
        lenient: true,
        registry,
        ..RealOptions::default()
    };
    replay_real(s, &[actor], &Schedule::parse("s1:1:a").unwrap(), &o).unwrap()
}

fn labels(r: &RealReplay) -> Vec<String> {
    match &r.execution {
        Ok(e) => e.trace.steps.iter().map(|s| s.label.clone()).collect(),
        Err(d) => panic!("the execution diverged: {d:?}"),
    }
}

/// Passed: the actor succeeded (every command exit 0), no violation, no other failure.
/// Disagreements of the shadow model are printed, not judged (that is conformance work).
fn assert_passed(what: &str, r: &RealReplay) {
    let shown = labels(r);
    println!("--- {what}: {} steps", shown.len());
    for (i, l) in shown.iter().enumerate() {
        println!("{i:3} {l}");
    }
    for d in &r.journal.disagreements {
        println!("    shadow disagrees: {d:?}");
    }
    assert!(
        r.violation.is_none() && r.other_failure.is_none(),
        "{what}: violation {:?}, other failure {:?}",
        r.violation,
        r.other_failure
    );
    assert!(
        matches!(r.results.as_slice(), [Some(Ok(()))]),
        "{what}: {:?}",
        r.results
    );
    assert!(
        shown.iter().any(|l| l.starts_with("exec ")),
        "{what}: no command ran: {shown:?}"
    );
}

/// A push: converts (a content write of the reduced index, except when nothing is dropped), reads
/// and pushes, and removes its tmp image.
fn assert_pushed(variant: &str, r: &RealReplay) {
    assert_passed(variant, r);
    let shown = labels(r);
    for want in ["content.write", "image.delete"] {
        assert!(
            shown.iter().any(|l| l.starts_with(want)),
            "{variant}: no {want} step: {shown:?}"
        );
    }
    if variant == "lease-held" {
        assert!(
            shown.iter().filter(|l| l.starts_with("lease.add")).count() == 2,
            "lease-held: want two lease.add steps: {shown:?}"
        );
    }
}

fn push_passes(variant: &str) {
    let _serial = one_interposer();
    let r = run_alone(vec![push(variant)], None);
    assert_pushed(variant, &r);
}

#[test]
fn go_v0_17_push_passes_alone() {
    push_passes("v0.17");
}

#[test]
fn go_v0_18_push_passes_alone() {
    push_passes("v0.18");
}

#[test]
fn go_v2_0_4_push_passes_alone() {
    push_passes("v2.0.4");
}

#[test]
fn go_v2_0_5_push_passes_alone() {
    push_passes("v2.0.5");
}

#[test]
fn go_lease_held_push_passes_alone() {
    push_passes("lease-held");
}

/// The registry is seeded with the whole fixture (`push --all-platforms`, its own execution),
/// then a fresh daemon pulls one platform of it (no unpack) and removes it with `rmi -f`; a last
/// execution removes the fixture's own image.
#[test]
fn go_pull_and_rmi_pass_alone() {
    let _serial = one_interposer();
    let (registry, addr) = seeded_registry();
    let pulled = run_alone(
        vec![
            go(&[
                "pull",
                "--platform",
                "linux/amd64",
                "--plain-http",
                "{registry}/app:1",
            ]),
            go(&["rmi", "-f", "{registry}/app:1"]),
        ],
        Some(addr),
    );
    registry.stop().expect("the registry stops");
    assert_passed("pull, then rmi -f of the pulled image", &pulled);
    let shown = labels(&pulled);
    assert!(
        shown.iter().any(|l| l.starts_with("image.create")),
        "the pull creates its image: {shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("image.delete") && l.contains("sync")),
        "rmi deletes synchronously: {shown:?}"
    );
    let removed = run_alone(vec![go(&["rmi", "-f", "{ref}"])], None);
    assert_passed("rmi -f of the fixture's image", &removed);
}

/// The Go client logs as nerdctl does, so `pushrace triage` reads it: a passing push's `pushing as
/// a reduced-platform image (<media type>, <reduced index>)` line, and a failing push's
/// `level=fatal msg="failed to create a tmp reduced-platform image … image \"…\": not found"`.
#[test]
fn triage_reads_the_go_clients_log() {
    use pushrace_scenarios::triage::log::{parse, Context, Fact, Level};
    let _serial = one_interposer();
    let dir = std::env::temp_dir().join(format!("pushrace-go-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("push.log");
    // stderr copied to the log and still the command's stderr (the actor's error is its tail); a
    // shell around the client, `{…}` substituted inside the script too, the client's exit status
    // kept by pipefail.
    let logged = |args: &str| {
        let script = format!(
            "set -o pipefail; {} --address {{address}} push --plain-http {args} 2>&1 >/dev/null | tee -a {} >&2",
            go_client(),
            log.display()
        );
        CommandSpec::new(&["bash", "-c", &script])
    };
    let r = run_alone(
        vec![
            logged("--variant v0.18 --platform linux/amd64 {ref} {registry}/app:1"),
            // A source image that does not exist: the conversion fails (exit 1, the fatal line).
            logged("--variant v0.18 --platform linux/amd64 example.com/nope:1 {registry}/nope:1")
                .always(),
        ],
        None,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!("{text}");
    assert!(r.violation.is_none(), "{:?}", r.violation);
    let err = match r.results.as_slice() {
        [Some(Err(e))] => e.to_string(),
        other => panic!("the second push must fail: {other:?}"),
    };
    // The tail of its stderr, logrus-quoted.
    assert!(
        err.contains(r#"level=fatal msg="failed to create a tmp reduced-platform image"#)
            && err.contains(r#"image \"example.com/nope:1\": not found"#),
        "{err}"
    );
    let facts = parse(&text);
    let reduced: Vec<_> = facts
        .events
        .iter()
        .filter_map(|e| match &e.fact {
            Fact::Reduced { media_type, digest } => Some((media_type.clone(), digest.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reduced.len(), 1, "{facts:#?}");
    assert!(reduced[0].0.contains("image.index"), "{reduced:?}");
    let steps = labels(&r);
    let written = steps
        .iter()
        .find_map(|l| {
            l.rsplit("content.write ")
                .next()
                .filter(|_| l.contains("digest-at-commit"))
        })
        .map(|w| w.split(' ').next().unwrap_or_default().to_string())
        .expect("the converter writes the reduced index");
    assert!(
        reduced[0].1.starts_with(&format!("sha256:{written}")),
        "info line {:?}, written {written}",
        reduced[0].1
    );
    let fatal = facts
        .failures()
        .find(|e| e.level == Some(Level::Fatal))
        .unwrap_or_else(|| panic!("no fatal failure read: {facts:#?}"));
    match &fatal.fact {
        Fact::ImageNotFound {
            name,
            context: Context::CreateTmp { tmp, platforms, .. },
        } => {
            assert_eq!(name, "example.com/nope:1");
            assert_eq!(tmp, "example.com/nope:1-tmp-reduced-platform");
            assert_eq!(platforms.as_deref(), Some(&["linux/amd64".to_string()][..]));
        }
        f => panic!("want an image-not-found while creating the tmp image, got {f:?}"),
    }
}

/// The model's program for `s`'s one actor, run alone: its trace.
fn model_alone(s: &pushrace_scenarios::scenario::Scenario) -> pushrace_harness::Trace {
    let explorer = pushrace_harness::Explorer::new(pushrace_harness::Config::default());
    let model = pushrace_scenarios::explore::model(s);
    let e = explorer
        .replay_lenient(&model, &Schedule::new(1, Vec::new()))
        .expect("the model runs alone");
    e.trace
}

/// Call by call: the Go client's calls against the model program's steps for the same scenario,
/// matched as `--from-model` matches them (label keys in order, lease ordinals included). What
/// may differ, each from the sources: the model's `registry.*` steps (HTTP, not gRPC).
fn conformance(variant: &str) -> Vec<String> {
    let s = library::load("push-single")
        .unwrap()
        .with_variant(variant.parse().unwrap());
    conformance_of(variant, &s, vec![push(variant)])
}

/// `s`'s one actor as the model runs it and as `commands` run it: every call without a partner.
fn conformance_of(
    variant: &str,
    s: &pushrace_scenarios::scenario::Scenario,
    commands: Vec<CommandSpec>,
) -> Vec<String> {
    conformance_with(variant, s, commands, None)
}

/// [`conformance_of`] against `registry` (a fresh private one when `None`).
fn conformance_with(
    variant: &str,
    s: &pushrace_scenarios::scenario::Scenario,
    commands: Vec<CommandSpec>,
    registry: Option<String>,
) -> Vec<String> {
    let model = model_alone(s);
    let r = run_scenario_alone(s, commands, registry);
    assert_passed(variant, &r);
    let real = match &r.execution {
        Ok(e) => e.trace.clone(),
        Err(d) => panic!("{variant}: diverged: {d}"),
    };
    let t = pushrace_scenarios::backend::translate::translate(&model, &real).unwrap();
    let mut out = Vec::new();
    for m in &t.model_only {
        out.push(format!("{variant}: model only: {}", m.key));
    }
    // The puller resolves its tag (`HEAD /v2/REPO/manifests/TAG`, `remotes/docker`), which the
    // model's pull reads no registry for: the one real call allowed to stand alone. (The
    // pusher's HEAD of its root by tag pairs with the model's.)
    let resolve =
        |k: &str| variant == "pull" && k.starts_with("registry.head ") && k.contains("/manifests/");
    for x in t.real_only.iter().filter(|x| !resolve(&x.key)) {
        out.push(format!("{variant}: real only: {}", x.key));
    }
    if t.beyond > 0 {
        out.push(format!(
            "{variant}: {} real calls after the model's last",
            t.beyond
        ));
    }
    if !out.is_empty() {
        println!("--- {variant}: the model's steps");
        for (i, st) in model.steps.iter().enumerate() {
            let done = st.completion.as_deref().unwrap_or("");
            println!("{i:3} {} {done}", st.label);
        }
    }
    out
}

#[test]
fn conformance_of_every_push_variant_and_rmi() {
    let _serial = one_interposer();
    let mut all = Vec::new();
    for v in ["v0.17", "v0.18", "v2.0.4", "v2.0.5", "lease-held"] {
        all.extend(conformance(v));
    }
    // nerdctl rmi -f of an image: list, RootFS reads, synchronous delete.
    let rmi = pushrace_scenarios::scenario::parse(
        "rmi.toml",
        "containerd = \"1.6\"\ngc = \"sync-only\"\n[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[[actor]]\nname = \"rmi\"\nprogram = \"nerdctl.rmi\"\nimage = \"example.com/app:1\"\nforce = true\n",
    )
    .unwrap();
    all.extend(conformance_of(
        "rmi -f",
        &rmi,
        vec![go(&["rmi", "-f", "{ref}"])],
    ));
    all.extend(pull_conformance());
    assert_no_differences(&all);
}

/// `nerdctl pull --unpack=false --platform linux/amd64` as go_pull_and_rmi_pass_alone runs it: the
/// registry holds the whole fixture (seeded by `push --all-platforms`, its own execution; the
/// model's `registry` key says the same), and the pulling daemon has the fixture's blobs and its
/// image `example.com/app:1` locally but not the pulled name, so every fetch's open answers
/// AlreadyExists (`ingest.open`) and the image is created. The model pulls the fixed name
/// `localhost:5000/app:1` (`remote`), the Go client `{registry}/app:1`; the translation writes
/// both registries as `{registry}`.
fn pull_conformance() -> Vec<String> {
    let pull = pushrace_scenarios::scenario::parse(
        "pull.toml",
        "containerd = \"1.6\"\ngc = \"sync-only\"\nregistry = [\"index\", \"manifests\", \"configs\", \"layers\"]\n[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[[actor]]\nname = \"pull\"\nprogram = \"nerdctl.pull\"\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\"]\nremote = \"localhost:5000/app:1\"\n",
    )
    .unwrap();
    let (registry, addr) = seeded_registry();
    let pulled = go(&[
        "pull",
        "--platform",
        "linux/amd64",
        "--plain-http",
        "{registry}/app:1",
    ]);
    let out = conformance_with("pull", &pull, vec![pulled], Some(addr));
    registry.stop().expect("the registry stops");
    out
}

/// Each actor of `s` (all pushes) played by the Go client in `variant`: `push --variant V
/// --platform P… --plain-http {ref} {registry}/<ref without its host>`.
fn go_pushes(s: &pushrace_scenarios::scenario::Scenario, variant: &str) -> Vec<RealActor> {
    use pushrace_scenarios::scenario::ProgramSpec;
    let actor = |a: &pushrace_scenarios::scenario::ActorSpec| {
        let ProgramSpec::Push {
            reference,
            platforms,
            ..
        } = &a.program
        else {
            panic!("actor {} is not a push", a.name)
        };
        let remote = format!("{{registry}}/{}", reference.split_once('/').unwrap().1);
        let mut args = vec!["push", "--variant", variant];
        for p in platforms {
            args.extend(["--platform", p.as_str()]);
        }
        if variant == "lease-held" {
            args.extend(["--tmp-suffix", a.name.as_str()]);
        }
        args.extend(["--plain-http", "{ref}", remote.as_str()]);
        RealActor {
            reference: reference.clone(),
            commands: vec![go(&args)],
        }
    };
    s.actors.iter().map(actor).collect()
}

/// The model's own shrunk schedules, translated call by call, fail on the Go clients (real
/// library code) the way the model says, 20 times out of 20 with one trace hash each: same-ref
/// (v0.18, nerdctl #855) and two-tags (v2.0.5, the open #4470 window); the calls that do not pair
/// up are only the model's registry steps.
#[test]
fn model_schedules_fail_on_the_go_clients_20_of_20() {
    use pushrace_scenarios::backend::real::{replay_from_model, replay_translated};
    use pushrace_scenarios::explore::{explore, Options};
    let _serial = one_interposer();
    for (name, variant) in [("same-ref", "v0.18"), ("two-tags", "v2.0.5")] {
        let s = library::load(name)
            .unwrap()
            .with_variant(variant.parse().unwrap());
        let v = explore(&s, &Options::for_scenario(&s))
            .violation
            .unwrap_or_else(|| panic!("{name}: the model finds the violation"));
        let actors = go_pushes(&s, variant);
        let o = RealOptions {
            lenient: true,
            ..RealOptions::default()
        };
        let (first, t) = replay_from_model(&s, &actors, &v.schedule, &o).unwrap();
        assert!(t.model_only.is_empty(), "{name}: {:?}", t.model_only);
        let mut hashes = std::collections::BTreeSet::new();
        let mut first = Some(first);
        let mut last_failing_stderr = None;
        for i in 0..20 {
            let r = match first.take() {
                Some(r) => r,
                None => replay_translated(&s, &actors, &t, &o).unwrap(),
            };
            let lost = r.violation.as_ref().unwrap_or_else(|| {
                panic!(
                    "{name} run {i}: no violation: {:?} {:#?}",
                    r.other_failure, r.journal
                )
            });
            assert!(
                lost.message.contains("not found"),
                "{name} run {i}: {lost:?}"
            );
            let what = lost.what.clone().unwrap_or_default();
            assert!(what.contains("reduced index"), "{name} run {i}: {lost:?}");
            assert!(
                r.journal.disagreements.is_empty(),
                "{:?}",
                r.journal.disagreements
            );
            hashes.insert(r.execution.as_ref().unwrap().trace.hash.clone());
            let failed = r.journal.exits.iter().find(|e| e.2 != "exited 0");
            last_failing_stderr = failed.map(|e| e.3.clone());
        }
        assert_eq!(
            hashes.len(),
            1,
            "{name}: the replays ran differently: {hashes:?}"
        );
        triage_reproduces(name, &last_failing_stderr.expect("a failing push's stderr"));
        println!(
            "{name} ({variant}) on the Go clients: 20/20 lost the reduced index; schedule {}",
            t.schedule.encode()
        );
    }
}

/// `pushrace triage` on the failing Go client's own stderr (nerdctl's lines: the info line of
/// the reduced index, `level=fatal msg="content digest …: not found"`) names the family and
/// reproduces it on the model.
fn triage_reproduces(name: &str, stderr: &str) {
    use pushrace_scenarios::triage::{triage, Input};
    let dir =
        std::env::temp_dir().join(format!("pushrace-go-triage-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = Input {
        log_name: "go-client.log",
        log_text: stderr,
        image: None,
        variant: None,
        out_dir: &dir,
        force: true,
    };
    let t = triage(&input);
    let _ = std::fs::remove_dir_all(&dir);
    let t = t.unwrap_or_else(|e| panic!("{name}: triage: {e}\n{stderr}"));
    assert_eq!(
        t.classification.family.name(),
        "tmp-reduced-collected",
        "{name}: {stderr}"
    );
    let v = t.verdict.expect("a known family is explored");
    assert!(
        v.violation.is_some(),
        "{name}: triage did not reproduce it from:\n{stderr}"
    );
}

/// The same, on the other fixture shapes the built-ins and triage use: an image of two layers
/// (v0.18 and v2.0.5 pushes), and a push of all platforms (no conversion: the index itself).
#[test]
fn conformance_on_other_fixture_shapes() {
    let _serial = one_interposer();
    let scenario = |layers: usize, all: bool, variant: &str| {
        let text = format!(
            "containerd = \"1.6\"\ngc = \"sync-only\"\n[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nlayers = {layers}\n[[actor]]\nname = \"push\"\nprogram = \"nerdctl.push\"\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\"]\nall_platforms = {all}\nvariant = \"{variant}\"\n"
        );
        pushrace_scenarios::scenario::parse("shape.toml", &text).unwrap()
    };
    let mut all = Vec::new();
    for variant in ["v0.18", "v2.0.5"] {
        let s = scenario(2, false, variant);
        all.extend(conformance_of(
            &format!("{variant}, 2 layers"),
            &s,
            vec![push(variant)],
        ));
    }
    // All platforms: the pusher's Dispatch starts a goroutine per child and, with the limiter
    // at 1, the goroutine that takes it next is the Go scheduler's choice, not the library's
    // contract: the configs and layers of the two platforms are pushed interleaved (amd64
    // config, arm64 config, amd64 layer, arm64 layer in every run so far) where the model walks
    // depth-first. So this shape is compared as a partial order: the same calls.
    let s = scenario(1, true, "v0.18");
    let every = go(&[
        "push",
        "--all-platforms",
        "--plain-http",
        "{ref}",
        "{registry}/app:1",
    ]);
    all.extend(same_calls("all platforms", &s, vec![every]));
    assert_no_differences(&all);
}

/// `s`'s one actor on the model and as `commands`: the same calls (keys as the translation makes
/// them, registry and exec steps aside) as multisets; the differences.
fn same_calls(
    what: &str,
    s: &pushrace_scenarios::scenario::Scenario,
    commands: Vec<CommandSpec>,
) -> Vec<String> {
    use pushrace_scenarios::backend::translate::sides;
    let keys = |t: &pushrace_harness::Trace| {
        let mut k: Vec<String> = sides(t)
            .into_iter()
            .map(|s| s.key)
            .filter(|k| !k.starts_with("registry.") && !k.starts_with("exec "))
            .collect();
        k.sort();
        k
    };
    let model = keys(&model_alone(s));
    let r = run_scenario_alone(s, commands, None);
    let real = keys(&r.execution.as_ref().expect("runs").trace);
    match model == real {
        true => Vec::new(),
        false => vec![format!(
            "{what}: model calls {model:?}, real calls {real:?}"
        )],
    }
}

/// Prints the differences and fails when there is one.
fn assert_no_differences(all: &[String]) {
    for d in all {
        println!("{d}");
    }
    assert!(
        all.is_empty(),
        "{} differences:\n{}",
        all.len(),
        all.join("\n")
    );
}

/// A private registry holding push-single's whole image (`push --all-platforms`, its own
/// execution), and its address.
fn seeded_registry() -> (pushrace_daemon::Registry, String) {
    let registry = pushrace_daemon::Registry::start().expect("a private registry");
    let addr = registry.addr().to_string();
    let all = go(&[
        "push",
        "--all-platforms",
        "--plain-http",
        "{ref}",
        "{registry}/app:1",
    ]);
    let seed = run_alone(vec![all], Some(addr.clone()));
    assert_passed("seed: push --all-platforms", &seed);
    (registry, addr)
}
