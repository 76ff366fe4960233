//! Scenario files: every kind of mistake is an error naming the file, the line and the key; no text
//! makes the loader panic.

use proptest::prelude::*;
use pushrace_scenarios::scenario::parse;

const GOOD: &str = r#"name = "ok"
containerd = "1.6"

[[image]]
ref = "example.com/app:1"

[[actor]]
name = "push"
program = "nerdctl.push"
ref = "example.com/app:1"
variant = "v0.18"
"#;

fn err(text: &str) -> String {
    parse("bad.toml", text)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn the_reference_file_loads() {
    let s = parse("ok.toml", GOOD).unwrap();
    assert_eq!(s.actors.len(), 1);
    assert_eq!(s.name, "ok");
}

#[test]
fn malformed_toml_names_the_line() {
    let e = err("name = \"x\"\n[[image]\nref = 1\n");
    assert!(e.starts_with("bad.toml:2:"), "{e}");
}

#[test]
fn unknown_top_level_key_names_line_and_key() {
    let e = err(&format!("colour = \"blue\"\n{GOOD}"));
    assert!(e.starts_with("bad.toml:1:") && e.contains("colour"), "{e}");
}

#[test]
fn unknown_actor_key_names_its_line() {
    let e = err(&GOOD.replace("variant = \"v0.18\"", "variant = \"v0.18\"\nspeed = 3"));
    assert!(e.starts_with("bad.toml:12:") && e.contains("speed"), "{e}");
}

#[test]
fn unknown_program_lists_the_programs() {
    let e = err(&GOOD.replace("nerdctl.push", "nerdctl.pussh"));
    assert!(
        e.starts_with("bad.toml:9: key `program`") && e.contains("nerdctl.pull"),
        "{e}"
    );
}

#[test]
fn unknown_variant_lists_the_variants() {
    let e = err(&GOOD.replace("v0.18", "v0.19"));
    assert!(
        e.starts_with("bad.toml:11: key `variant`") && e.contains("lease-held"),
        "{e}"
    );
}

#[test]
fn dangling_image_reference_is_rejected() {
    let e = err(&GOOD.replace(
        "ref = \"example.com/app:1\"\nvariant",
        "ref = \"example.com/nope:1\"\nvariant",
    ));
    assert!(
        e.starts_with("bad.toml:10: key `ref`") && e.contains("not an image of this scenario"),
        "{e}"
    );
}

#[test]
fn parameter_of_another_program_is_rejected() {
    let e = err(&GOOD.replace("variant = \"v0.18\"", "variant = \"v0.18\"\nticks = 2"));
    assert!(
        e.starts_with("bad.toml:12: key `ticks`") && e.contains("not a parameter of nerdctl.push"),
        "{e}"
    );
}

#[test]
fn bad_digest_in_raw_ops_is_rejected() {
    let text = format!("{GOOD}\n[[actor]]\nname = \"janitor\"\nprogram = \"ops\"\nops = [{{ op = \"content.delete\", digest = \"sha256:abc\" }}]\n");
    let e = err(&text);
    assert!(
        e.starts_with("bad.toml:16: key `ops`") && e.contains("op 0") && e.contains("digest"),
        "{e}"
    );
}

#[test]
fn platform_not_in_the_image_is_rejected() {
    let e = err(&GOOD.replace(
        "variant = \"v0.18\"",
        "variant = \"v0.18\"\nplatforms = [\"linux/s390x\"]",
    ));
    assert!(e.contains("key `platforms`") && e.contains("s390x"), "{e}");
}

#[test]
fn duplicate_actor_names_are_rejected() {
    let e = err(&format!(
        "{GOOD}\n[[actor]]\nname = \"push\"\nprogram = \"gc.ticker\"\n"
    ));
    assert!(e.contains("key `name`") && e.contains("used twice"), "{e}");
}

#[test]
fn bad_check_values_are_rejected() {
    let e = err(&format!("{GOOD}\n[check]\nexpect = \"maybe\"\n"));
    assert!(e.starts_with("bad.toml:14: key `expect`"), "{e}");
    let e = err(&format!("{GOOD}\n[check]\ninvariant = \"no-bugs\"\n"));
    assert!(e.contains("key `invariant`"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_text_panics_the_loader(text in "\\PC{0,300}") {
        let _ = parse("fuzz.toml", &text);
    }

    /// Mutations of a valid file (a line dropped, duplicated or cut) load or fail cleanly.
    #[test]
    fn no_mutation_of_a_valid_file_panics(cut in 0..GOOD.len(), line in 0..11usize, dup in any::<bool>()) {
        let _ = parse("fuzz.toml", &GOOD[..cut]);
        let mut lines: Vec<&str> = GOOD.lines().collect();
        if dup { lines.insert(line, lines[line]); } else { lines.remove(line); }
        let _ = parse("fuzz.toml", &lines.join("\n"));
    }
}

/// `[check] message`: only failures carrying the text are violations. The same-ref race loses the
/// reduced index (a content NotFound); asking for a tmp-image failure instead finds that one.
#[test]
fn check_message_selects_which_failure_is_the_violation() {
    use pushrace_scenarios::explore::{explore, Options};
    let base = GOOD.replace("variant = \"v0.18\"", "variant = \"v2.0.5\"");
    let two = format!(
        "{base}\n[[actor]]\nname = \"push-2\"\nprogram = \"nerdctl.push\"\nref = \"example.com/app:1\"\nvariant = \"v2.0.5\"\n"
    );
    let any = parse(
        "m.toml",
        &format!("{two}\n[check]\ninvariant = \"push-succeeds\"\n"),
    )
    .unwrap();
    let v = explore(&any, &Options::for_scenario(&any));
    assert!(v.violation.is_some());
    let wanted = parse(
        "m.toml",
        &format!(
            "{two}\n[check]\ninvariant = \"push-succeeds\"\nmessage = \"failed to create a tmp\"\n"
        ),
    )
    .unwrap();
    let v = explore(&wanted, &Options::for_scenario(&wanted));
    let x = v
        .violation
        .expect("a push fails inside the tmp image's creation");
    assert!(
        x.message
            .starts_with("failed to create a tmp reduced-platform image"),
        "{}",
        x.message
    );
    let e = parse("m.toml", &format!("{two}\n[check]\nmessage = \"\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("key `message`"), "{e}");
}

/// Issue 14 item 8: the names a user writes first, nerdctl's own: `pull --platform` is
/// `platforms` (what the program calls `fetched`), and `rmi` takes a `ref` like every other
/// program. Giving both spellings is an error at the second one.
#[test]
fn nerdctl_flag_names_are_accepted() {
    use pushrace_scenarios::scenario::ProgramSpec;
    let image =
        "[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";
    let actor = |body: &str| format!("{image}[[actor]]\nname = \"a\"\n{body}");
    let pull = actor(
        "program = \"nerdctl.pull\"\nref = \"example.com/app:1\"\nplatforms = [\"linux/arm64\"]\n",
    );
    let s = parse("pull.toml", &pull).unwrap();
    match &s.actors[0].program {
        ProgramSpec::Pull { fetched, .. } => {
            assert_eq!(fetched.as_deref(), Some(&["linux/arm64".to_string()][..]))
        }
        other => panic!("{other:?}"),
    }
    let rmi = actor("program = \"nerdctl.rmi\"\nref = \"example.com/app:1\"\nforce = true\n");
    let s = parse("rmi.toml", &rmi).unwrap();
    assert!(
        matches!(&s.actors[0].program, ProgramSpec::Rmi { image, force: true } if image == "example.com/app:1")
    );
    let both = actor("program = \"nerdctl.rmi\"\nimage = \"x\"\nref = \"example.com/app:1\"\n");
    let e = err(&both);
    // Line 8: three image lines, `[[actor]]`, name, program, image, then ref.
    assert!(e.contains(":8: key `ref`: the same as `image`"), "{e}");
}

/// `nerdctl.pull`'s `remote`: the name pulled (its host the registry's), `ref` by default; an
/// empty one is an error at its line.
#[test]
fn a_pull_names_what_it_pulls() {
    use pushrace_scenarios::scenario::ProgramSpec;
    let image =
        "[[image]]\nref = \"example.com/app:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";
    let actor = |body: &str| {
        format!("{image}[[actor]]\nname = \"a\"\nprogram = \"nerdctl.pull\"\nref = \"example.com/app:1\"\n{body}")
    };
    let remote = |text: &str| match parse("pull.toml", text).unwrap().actors[0].program.clone() {
        ProgramSpec::Pull { remote, .. } => remote,
        other => panic!("{other:?}"),
    };
    assert_eq!(remote(&actor("")), "example.com/app:1");
    assert_eq!(
        remote(&actor("remote = \"localhost:5000/app:1\"\n")),
        "localhost:5000/app:1"
    );
    let e = err(&actor("remote = \"\"\n"));
    // Line 8: three image lines, `[[actor]]`, name, program, ref, then remote.
    assert!(e.contains(":8: key `remote`"), "{e}");
}

/// A pull from the repository a push pushes to is refused at the pull's `remote` (or its `ref`,
/// the default remote): the push moves that repository's tag, which a real pull resolves and the
/// model's pull does not read. From another repository, even of the same image, it loads.
#[test]
fn a_pull_from_a_pushed_repository_is_refused() {
    let text = |remote: &str| {
        format!("[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"push\"\nprogram = \"nerdctl.push\"\nref = \"example.com/app:1\"\n[[actor]]\nname = \"pull\"\nprogram = \"nerdctl.pull\"\nref = \"example.com/app:1\"\n{remote}")
    };
    let e = err(&text(""));
    // Line 10: the image's two lines, the push's four, then the pull's `[[actor]]`, name, program, ref.
    assert!(e.starts_with("bad.toml:10: key `ref`"), "{e}");
    assert!(e.contains("which actor push pushes to"), "{e}");
    let e = err(&text("remote = \"localhost:5000/app:2\"\n"));
    assert!(e.starts_with("bad.toml:11: key `remote`"), "{e}");
    assert!(parse("ok.toml", &text("remote = \"example.com:5000/base:1\"\n")).is_ok());
}

#[test]
fn a_preemption_bound_is_0_to_64_or_none() {
    let with = |v: &str| format!("{GOOD}\n[check]\npreemptions = {v}\n");
    assert_eq!(
        parse("ok.toml", &with("\"none\""))
            .unwrap()
            .check
            .preemptions,
        None
    );
    assert_eq!(
        parse("ok.toml", &with("3")).unwrap().check.preemptions,
        Some(3)
    );
    assert_eq!(parse("ok.toml", GOOD).unwrap().check.preemptions, Some(2));
    for bad in ["65", "-1", "\"all\"", "true"] {
        let e = err(&with(bad));
        assert!(
            e.contains("key `preemptions`") && e.contains("0 to 64 or \"none\""),
            "{bad}: {e}"
        );
    }
}

/// Command actors: `command` (one) or `commands`, then `finally` (run after a failure too); the
/// placeholders are filled in from the actor (`{ref}` is its program's reference).
#[test]
fn command_actors_load_with_their_commands_in_order() {
    use pushrace_scenarios::backend::commands::{CommandSpec, Place};
    let text = GOOD.replace(
        "variant = \"v0.18\"",
        "variant = \"v0.18\"\ncommands = [[\"ctr\", \"-a\", \"{address}\", \"images\", \"convert\", \"{ref}\", \"{ref}-tmp\"], [\"true\"]]\nfinally = [[\"sh\", \"-c\", \"echo ${HOME} {registry}\"]]",
    );
    let s = parse("ok.toml", &text).unwrap();
    let c = &s.actors[0].commands;
    assert_eq!(c.len(), 3);
    assert_eq!(
        (c[0].always, c[1].always, c[2].always),
        (false, false, true)
    );
    assert_eq!(c[1], CommandSpec::new(&["true"]));
    let place = Place {
        address: "/run/a.sock".into(),
        registry: "127.0.0.1:5000".into(),
        reference: "example.com/app:1".into(),
        go_client: String::new(),
    };
    let argv = c[0].substituted(&place);
    assert_eq!(argv[2], "/run/a.sock");
    assert_eq!(argv[6], "example.com/app:1-tmp");
    // `${HOME}` is the shell's: braces around anything but a known lower-case name stay literal.
    assert_eq!(c[2].substituted(&place)[2], "echo ${HOME} 127.0.0.1:5000");
    let only = "[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"mine\"\nref = \"x\"\ncommand = [\"my-client\", \"{ref}\"]\n";
    let s = parse("only.toml", only).unwrap();
    assert_eq!(s.actors[0].program.name(), "commands");
    assert_eq!(s.actors[0].program.reference(), Some("x"));
}

#[test]
fn bad_commands_name_their_key_and_line() {
    let with = |extra: &str| {
        GOOD.replace(
            "variant = \"v0.18\"",
            &format!("variant = \"v0.18\"\n{extra}"),
        )
    };
    let cases = [
        (
            with("command = [\"ctr\", \"{adress}\"]"),
            ":12: key `command`: {adress} in \"{adress}\": expected {address}, {registry} or {ref}",
        ),
        (
            with("command = []"),
            ":12: key `command`: a command is a non-empty list",
        ),
        (
            with("command = [\"a\"]\ncommands = [[\"b\"]]"),
            ":13: key `commands`: give `command` (one) or `commands` (several), not both",
        ),
        (
            with("finally = [[\"rm\"]]"),
            ":12: key `finally`: `finally` runs after",
        ),
        (
            with("commands = []"),
            ":12: key `commands`: expected 1 to 16 commands",
        ),
        (with("command = [\"\"]"), "whose first is the program"),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    // A commands-only actor: no `{ref}` without a `ref`, no model program's parameters, and an
    // actor with neither `program` nor `command` is told it needs one.
    let only = |actor: &str| {
        format!("[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"mine\"\n{actor}")
    };
    let e = err(&only("command = [\"c\", \"{ref}\"]\n"));
    assert!(e.contains("this actor has no `ref` for {ref}"), "{e}");
    let e = err(&only("command = [\"c\"]\nvariant = \"v0.18\"\n"));
    assert!(
        e.contains("key `variant`") && e.contains("no `program`"),
        "{e}"
    );
    let e = err(&only(""));
    assert!(
        e.contains("needs a `program`") && e.contains("or a `command`"),
        "{e}"
    );
}

/// Every program of the table loads under its own name (`ProgramSpec::name` and the table
/// cannot drift apart), with the keys it needs.
#[test]
fn every_program_of_the_table_loads_under_its_own_name() {
    use pushrace_scenarios::scenario::PROGRAM_TABLE;
    let needs = [
        ("ref", "\"a:1\""),
        ("src", "\"a:1\""),
        ("dst", "\"b:1\""),
        ("image", "\"a:1\""),
        ("by", "\"1h\""),
        ("ops", "[{ op = \"gc.run\" }]"),
    ];
    for kind in PROGRAM_TABLE {
        let mut text = format!(
            "[[image]]\nref = \"a:1\"\n[[actor]]\nname = \"x\"\nprogram = \"{}\"\n",
            kind.name
        );
        for (k, v) in needs.iter().filter(|(k, _)| kind.keys.contains(k)) {
            if !(kind.name == "nerdctl.rmi" && *k == "ref") {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        let s = pushrace_scenarios::scenario::parse("t.toml", &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.actors[0].program.name(), kind.name);
    }
}

/// The document type writes what the loader reads: every corpus file through `FileDoc` and
/// `to_toml` loads to the same scenario (images and their blobs, actors, check).
#[test]
fn every_corpus_file_round_trips_through_the_document_type() {
    use pushrace_scenarios::scenario::{load, read_doc};
    for (name, text) in pushrace_scenarios::library::CORPUS {
        let file = format!("builtin:{name}");
        let a = pushrace_scenarios::scenario::parse(&file, text).unwrap();
        let again = read_doc(&file, text).unwrap().to_toml();
        let doc = read_doc(&file, &again).unwrap_or_else(|e| panic!("{e}\n{again}"));
        let b = load(&file, &again, &doc).unwrap_or_else(|e| panic!("{e}\n{again}"));
        assert_eq!(
            (&a.name, &a.roles, &a.registry, &a.check),
            (&b.name, &b.roles, &b.registry, &b.check),
            "{name}"
        );
        let actors = |s: &pushrace_scenarios::scenario::Scenario| {
            s.actors
                .iter()
                .map(|x| format!("{} {:?} {:?} {:?}", x.name, x.ctx, x.program, x.commands))
                .collect::<Vec<_>>()
        };
        assert_eq!(actors(&a), actors(&b), "{name}");
        let images = |s: &pushrace_scenarios::scenario::Scenario| {
            s.images
                .iter()
                .map(|i| {
                    format!(
                        "{} {} {:?} {:?}",
                        i.reference, i.namespace, i.fetched, i.tags
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(images(&a), images(&b), "{name}");
        assert_eq!(a.setup.state(), b.setup.state(), "{name}");
    }
}

/// `client = "go"` makes the Go client's command from the program; it goes with a push, a pull
/// or an rmi, and not with commands of its own.
#[test]
fn client_go_makes_the_command_from_the_program() {
    let with = |extra: &str| {
        GOOD.replace(
            "variant = \"v0.18\"",
            &format!("variant = \"v0.18\"\n{extra}"),
        )
    };
    let s = parse("ok.toml", &with("client = \"go\"")).unwrap();
    let argv = &s.actors[0].commands[0].argv;
    assert_eq!(argv[0], "{go_client}");
    let tail: Vec<&str> = argv[5..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "push",
            "--variant",
            "v0.18",
            "--platform",
            "linux/amd64",
            "--plain-http",
            "{ref}",
            "{registry}/app:1"
        ]
    );
    let e = err(&with("client = \"rust\""));
    assert!(
        e.contains(":12: key `client`: \"rust\": expected \"go\""),
        "{e}"
    );
    let e = err(&with("client = \"go\"\ncommand = [\"x\"]"));
    assert!(
        e.contains("key `command`: give `client` or `command`, not both"),
        "{e}"
    );
    let tick = "[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"t\"\nprogram = \"gc.ticker\"\nclient = \"go\"\n";
    let e = err(tick);
    assert!(
        e.contains("the Go client plays nerdctl.push, nerdctl.pull and nerdctl.rmi, not gc.ticker"),
        "{e}"
    );
    // A pull: its platforms, from `{registry}/` and its remote's path; without platforms nerdctl
    // and the model would pull different platforms, which is refused.
    let pull = |extra: &str| {
        format!("[[image]]\nref = \"example.com/app:1\"\n[[actor]]\nname = \"p\"\nprogram = \"nerdctl.pull\"\nref = \"example.com/app:1\"\nremote = \"localhost:5000/base:1\"\nclient = \"go\"\n{extra}")
    };
    let s = parse("pull.toml", &pull("platforms = [\"linux/arm64\"]\n")).unwrap();
    let argv = &s.actors[0].commands[0].argv;
    let tail: Vec<&str> = argv[5..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "pull",
            "--platform",
            "linux/arm64",
            "--plain-http",
            "{registry}/base:1"
        ]
    );
    let e = err(&pull(""));
    assert!(
        e.contains("key `client`: actor p: the Go client plays nerdctl.pull with `platforms`"),
        "{e}"
    );
}

/// `--variant` switches a Go-client actor's command with its program (the Go client plays the push
/// it is given), and leaves the lease-held tmp suffix rule to the command maker: a scenario run on
/// real processes under `--variant v2.0.5` must run v2.0.5, not the file's v0.18.
#[test]
fn with_variant_switches_a_go_client_command_too() {
    use pushrace_scenarios::programs::push::Variant;
    let s = pushrace_scenarios::library::load("same-ref-go").unwrap();
    for (v, want) in [
        (Variant::V2_0_5, "v2.0.5"),
        (Variant::LeaseHeld, "lease-held"),
    ] {
        for a in &s.with_variant(v).actors {
            let argv = &a.commands[0].argv;
            assert!(
                argv.windows(2).any(|w| w == ["--variant", want]),
                "{argv:?}"
            );
            let suffixed = argv.iter().any(|x| x == "--tmp-suffix");
            assert_eq!(suffixed, v == Variant::LeaseHeld, "{argv:?}");
        }
    }
}
