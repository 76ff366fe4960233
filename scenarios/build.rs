//! Embeds every scenario under corpus/ as a built-in, so adding a regression is adding a file.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=corpus");
    let mut names: Vec<String> = std::fs::read_dir("corpus")
        .expect("scenarios/corpus exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let mut out = String::from("/// (name, text) of every scenario under corpus/, sorted by name.\npub const CORPUS: &[(&str, &str)] = &[\n");
    for n in &names {
        let stem = n.trim_end_matches(".toml");
        let path = format!(
            "{}/corpus/{n}",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        );
        writeln!(out, "    ({stem:?}, include_str!({path:?})),").unwrap();
    }
    out.push_str("];\n");
    std::fs::write(
        format!("{}/corpus.rs", std::env::var("OUT_DIR").unwrap()),
        out,
    )
    .unwrap();
}
