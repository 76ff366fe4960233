//! No `pushrace apply` input panics: random TOML-ish text and random structured ops files go
//! through `opsfile::parse`, `OpsFile::run`, `to_json` and `to_text`. Bad input must come back as
//! an `InputError` naming the file; a bad operation as a containerd error in its result. The store
//! must stay self-consistent whatever ran.

use proptest::prelude::*;
use pushrace_models::opsfile;

const OPS: [&str; 23] = [
    "content.write",
    "ingest.open",
    "ingest.abort",
    "content.info",
    "content.read",
    "content.label",
    "content.delete",
    "content.list",
    "image.create",
    "image.update",
    "image.delete",
    "image.get",
    "image.list",
    "lease.create",
    "lease.add",
    "lease.remove",
    "lease.delete",
    "lease.list",
    "gc.run",
    "clock.advance",
    "image.pull",
    "image.convert",
    "no.such.op",
];

const KEYS: [&str; 26] = [
    "data",
    "as",
    "labels",
    "expected",
    "style",
    "ref",
    "digest",
    "offset",
    "length",
    "name",
    "target",
    "media_type",
    "size",
    "sync",
    "id",
    "expire",
    "flat",
    "type",
    "resource",
    "by",
    "platforms",
    "layers",
    "fetched",
    "src",
    "dst",
    "namespace",
];

/// Strings likely to hit edge cases: bound names, digests good and bad, durations, RFC 3339
/// instants (some with multi-byte characters where digits belong), platforms, empty strings.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("@x".to_string()),
        Just("@".to_string()),
        Just(format!("sha256:{}", "a".repeat(64))),
        Just("sha256:".to_string()),
        Just("sha256:zz".to_string()),
        Just("md5:abc".to_string()),
        Just(":".to_string()),
        Just("1h".to_string()),
        Just("-1s".to_string()),
        Just("9999999999999h".to_string()),
        Just("1.5µs".to_string()),
        Just("µ".to_string()),
        Just("0".to_string()),
        Just(".h".to_string()),
        Just("2025-01-01T00:00:00Z".to_string()),
        Just("2025-01-01T00:00:00+0é00".to_string()),
        Just("2025-01-01T00:00:00.é".to_string()),
        Just("2025-01-01T00:00:0éZ".to_string()),
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("linux/amd64".to_string()),
        Just("linux/arm64/v8".to_string()),
        Just("linux/".to_string()),
        Just("open".to_string()),
        Just("commit".to_string()),
        Just("content".to_string()),
        Just("ingests".to_string()),
        Just("images".to_string()),
        Just("containerd.io/gc.root".to_string()),
        Just("containerd.io/gc.ref.content.m.0".to_string()),
        Just("containerd.io/gc.expire".to_string()),
        Just("containerd.io/gc.flat".to_string()),
        "[a-z0-9:/@._é\\-]{0,12}",
        "\\PC{0,8}",
    ]
}

fn value(depth: u32) -> BoxedStrategy<toml::Value> {
    let leaf = prop_oneof![
        3 => tricky_string().prop_map(toml::Value::String),
        1 => any::<i64>().prop_map(toml::Value::Integer),
        1 => prop_oneof![Just(0i64), Just(1), Just(-1), Just(64), Just(65), Just(1 << 40)]
            .prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => (-1e10f64..1e10).prop_map(toml::Value::Float),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        6 => leaf,
        1 => prop::collection::vec(value(depth - 1), 0..4).prop_map(toml::Value::Array),
        1 => prop::collection::btree_map(tricky_string(), value(depth - 1), 0..4)
            .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
    ]
    .boxed()
}

/// One `[[op]]` table: an op name and a few keys from the whole vocabulary, mostly with values of
/// a plausible type.
fn op_table() -> impl Strategy<Value = toml::Table> {
    (
        prop::sample::select(OPS.to_vec()),
        prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value(2), 0..6),
    )
        .prop_map(|(op, keys)| {
            let mut t = toml::Table::new();
            t.insert("op".into(), toml::Value::String(op.into()));
            for (k, v) in keys {
                t.insert(k.to_string(), v);
            }
            t
        })
}

fn structured_file() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop_oneof![
            Just("1.6".to_string()),
            Just("1.7".to_string()),
            Just("2.0".to_string()),
            tricky_string()
        ]),
        prop::collection::vec(op_table(), 0..12),
    )
        .prop_map(|(v, ops)| {
            let mut doc = toml::Table::new();
            if let Some(v) = v {
                doc.insert("containerd".into(), toml::Value::String(v));
            }
            doc.insert(
                "op".into(),
                toml::Value::Array(ops.into_iter().map(toml::Value::Table).collect()),
            );
            toml::to_string(&doc).expect("a table serializes")
        })
}

/// Lines of TOML-ish text: headers, key/value pairs with odd values, and plain garbage.
fn toml_ish_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        3 => Just("[[op]]".to_string()),
        1 => Just("[[ op ]]".to_string()),
        1 => Just("[op]".to_string()),
        1 => Just("[[op".to_string()),
        4 => prop::sample::select(OPS.to_vec()).prop_map(|o| format!("op = \"{o}\"")),
        6 => (prop::sample::select(KEYS.to_vec()), tricky_string()).prop_map(|(k, v)| format!("{k} = {v:?}")),
        2 => (prop::sample::select(KEYS.to_vec()), "[-0-9a-z\\[\\]{}=\",. ]{0,16}").prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just("labels = { \"containerd.io/gc.expire\" = \"2025-01-01T00:00:00+0é00\" }".to_string()),
        1 => Just("containerd = \"2.0\"".to_string()),
        1 => "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..30).prop_map(|l| l.join("\n"))
}

fn exercise(text: &str) {
    match opsfile::parse("fuzz.toml", text) {
        Err(e) => {
            assert_eq!(e.file, "fuzz.toml");
            assert!(!e.to_string().is_empty());
        }
        Ok(ops) => {
            let (store, results) = ops.run();
            assert_eq!(results.len(), ops.entries.len());
            store.check_consistency().unwrap();
            let _ = opsfile::to_json(&results, &store.state());
            let _ = opsfile::to_text(&ops, &results, &store.state());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256), ..ProptestConfig::default() })]

    #[test]
    fn random_toml_ish_text_never_panics(text in toml_ish_text()) {
        exercise(&text);
    }

    #[test]
    fn random_structured_ops_never_panic(text in structured_file()) {
        exercise(&text);
    }
}

/// Regressions found by the properties above (kept explicit so they are read, not just replayed).
#[test]
fn multibyte_character_in_a_gc_expire_offset_does_not_panic() {
    // clock.rs parse_rfc3339 sliced `rest[3..4]` on a byte that was inside `é`.
    exercise(
        r#"
[[op]]
op = "lease.create"
id = "L"
labels = { "containerd.io/gc.expire" = "2025-01-01T00:00:00+0é00" }
[[op]]
op = "gc.run"
"#,
    );
}
