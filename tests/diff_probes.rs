//! Hand-written operation files that probe containerd 1.6.20's edge cases (error texts of empty and
//! invalid names, empty label keys, read ranges, ingest reopening, shared ingests, expired leases,
//! pull and convert across namespaces). Each must run identically on the model and on a fresh
//! private daemon: `pushrace diff FILE` exits 0. Every one of them once found a difference that
//! was then fixed in the model (see the unit tests in models/tests/rules.rs that cite the source).

#[cfg(feature = "containerd")]
#[test]
fn every_probe_file_runs_the_same_on_the_model_and_on_containerd() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_probes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the probe files are there");
    let mut failures = Vec::new();
    for f in &files {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushrace"))
            .args(["diff", f.to_str().unwrap(), "--hour-ms", "200"])
            .output()
            .expect("the binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{}: exit {:?}\n{text}",
                f.display(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without the daemon feature the probe files still have to be valid inputs for the model.
#[test]
fn every_probe_file_applies_on_the_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_probes");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let ops = pushrace_models::opsfile::parse(&p.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{e}"));
        let (store, results) = ops.run();
        assert_eq!(results.len(), ops.entries.len());
        store.check_consistency().unwrap();
    }
}
