//! Issue 14 item 2 for ops files, each from its reproducer: an error names the file, the line of
//! the faulty key (not the `[[op]]` header), the key and what was expected.

use pushrace_models::opsfile;

fn err(text: &str) -> String {
    match opsfile::parse("ops.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bad_value_is_blamed_on_its_own_line_not_the_op_header() {
    let e = err("[[op]]\nop = \"content.info\"\n\ndigest = 5\n");
    assert_eq!(
        e,
        "ops.toml:4: op 0: key `digest`: expected a string, found an integer"
    );
}

#[test]
fn an_unknown_top_level_key_gets_its_line() {
    let e = err("containerd = \"1.6\"\nconatinerd = \"1.7\"\n[[op]]\nop = \"gc.run\"\n");
    assert!(
        e.starts_with("ops.toml:2: key `conatinerd`: unknown top-level key"),
        "{e}"
    );
}

#[test]
fn an_inline_op_array_reports_the_line_of_the_entry() {
    let e = err("op = [\n  { op = \"gc.run\" },\n  { op = \"gc.runn\" },\n]\n");
    assert!(
        e.starts_with("ops.toml:3: op 1: key `op`: unknown operation \"gc.runn\""),
        "{e}"
    );
    let ok = opsfile::parse(
        "ops.toml",
        "op = [\n  { op = \"gc.run\" },\n  { op = \"image.list\" },\n]\n",
    )
    .unwrap();
    assert_eq!(
        ok.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 3]
    );
}

#[test]
fn an_op_header_inside_a_multi_line_string_shifts_no_line() {
    let text = "[[op]]\nop = \"content.write\"\ndata = \"\"\"\n[[op]]\n\"\"\"\n[[op]]\nop = \"content.info\"\ndigest = 1\n";
    let e = err(text);
    assert!(e.starts_with("ops.toml:8: op 1: key `digest`"), "{e}");
    let ok = opsfile::parse("ops.toml", &text.replace("digest = 1", "digest = \"x\"")).unwrap();
    assert_eq!(
        ok.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [1, 6]
    );
}

#[test]
fn a_missing_key_is_blamed_on_its_op() {
    let e = err("[[op]]\nop = \"gc.run\"\n\n[[op]]\nop = \"image.get\"\n");
    assert_eq!(
        e,
        "ops.toml:4: op 1: key `name`: missing (a string is required)"
    );
}

#[test]
fn an_unknown_key_of_an_op_names_the_keys_it_takes() {
    let e = err("[[op]]\nop = \"image.delete\"\nname = \"a:1\"\nsnyc = true\n");
    assert_eq!(
        e,
        "ops.toml:4: op 0: key `snyc`: unknown key for image.delete; expected one of: name, sync, namespace, lease"
    );
}

#[test]
fn a_label_that_is_not_a_string_names_the_label() {
    let e = err("[[op]]\nop = \"content.write\"\ndata = \"x\"\nlabels = { a = 1 }\n");
    assert_eq!(
        e,
        "ops.toml:4: op 0: key `labels.a`: expected a string label value, found an integer"
    );
}

#[test]
fn op_as_a_string_and_wrong_types_name_the_key() {
    let e = err("op = \"gc.run\"\n");
    assert!(
        e.starts_with("ops.toml:1: key `op`: expected [[op]] tables"),
        "{e}"
    );
    let e = err("containerd = 1.6\n");
    assert!(e.starts_with("ops.toml:1: key `containerd`"), "{e}");
    let e = err("containerd = \"1.5\"\n");
    assert!(e.starts_with("ops.toml:1: key `containerd`"), "{e}");
}

/// One range of layers and one default for both formats (item 1): 16 at most, 1 by default.
#[test]
fn pull_layers_share_the_scenario_range_and_default() {
    let e = err("[[op]]\nop = \"image.pull\"\nref = \"a:1\"\nlayers = 17\n");
    assert_eq!(
        e,
        "ops.toml:4: op 0: key `layers`: 17: expected 0 to 16 layers per platform"
    );
    let ops = opsfile::parse("ops.toml", "[[op]]\nop = \"image.pull\"\nref = \"a:1\"\n").unwrap();
    let opsfile::Action::Pull { fixture, .. } = &ops.entries[0].action else {
        panic!("not a pull")
    };
    let platforms: Vec<&str> = fixture
        .platforms
        .iter()
        .map(|p| p.platform.as_str())
        .collect();
    assert_eq!(platforms, pushrace_models::oci::DEFAULT_PLATFORMS);
    assert!(fixture.platforms.iter().all(|p| p.layers.len() == 1));
}

#[test]
fn a_platform_listed_twice_names_it() {
    let e = err("[[op]]\nop = \"image.convert\"\nsrc = \"a\"\ndst = \"b\"\nplatforms = [\"linux/amd64\", \"linux/amd64\"]\n");
    assert_eq!(
        e,
        "ops.toml:5: op 0: key `platforms`: \"linux/amd64\" is listed twice"
    );
}

/// Every op of the table builds, and the operation it builds carries the table's name (the trace
/// labels' `OpKind::name` and the table cannot drift apart).
#[test]
fn every_op_of_the_table_builds_under_its_own_name() {
    let keys = [
        ("data", "\"x\""),
        ("ref", "\"r\""),
        (
            "digest",
            "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"",
        ),
        (
            "target",
            "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"",
        ),
        ("labels", "{ a = \"b\" }"),
        ("name", "\"a:1\""),
        ("id", "\"l\""),
        ("type", "\"content\""),
        ("resource", "\"r\""),
        ("by", "\"1h\""),
        ("src", "\"a:1\""),
        ("dst", "\"b:1\""),
        ("platforms", "[\"linux/amd64\"]"),
    ];
    for spec in opsfile::OPS {
        let mut text = format!("[[op]]\nop = \"{}\"\n", spec.name);
        for (k, v) in keys.iter().filter(|(k, _)| spec.keys.contains(k)) {
            text.push_str(&format!("{k} = {v}\n"));
        }
        let ops = opsfile::parse("ops.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let built = match &ops.entries[0].action {
            opsfile::Action::Op(op) => op.kind.name(),
            a => match a.program_kind() {
                Some("pull") => "image.pull",
                Some("convert") => "image.convert",
                other => panic!("{other:?}"),
            },
        };
        assert_eq!(built, spec.name);
    }
}

/// The document type writes what it reads: an ops file through `OpsDoc` and back is the same
/// list of operations.
#[test]
fn an_ops_document_round_trips() {
    let text = "containerd = \"1.6\"\nop = [\n  { op = \"content.write\", data = \"x\", as = \"g\", labels = { a = \"b\" } },\n  { op = \"image.create\", name = \"a:1\", target = \"@g\" },\n  { op = \"image.pull\", ref = \"b:1\", layers = 2 },\n]\n";
    let doc: opsfile::OpsDoc = toml::from_str(text).unwrap();
    let again = toml::to_string(&doc).unwrap();
    let (a, b) = (
        opsfile::parse("a", text).unwrap(),
        opsfile::parse("b", &again).unwrap(),
    );
    let shown = |o: &opsfile::OpsFile| {
        o.entries
            .iter()
            .map(|e| e.action.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(shown(&a), shown(&b), "{again}");
    assert_eq!(a.semantics, b.semantics);
}
