//! Fuzz targets, one per input kind (scenario, ops, schedule, log, layout): proptest mutates a
//! valid seed (byte edits, tokens that have broken parsers before: huge numbers, extreme
//! durations, long repeats, paths out, FIFOs) and runs the binary on it. The property: exit
//! status 0, 1 or 2 within the time limit, memory bounded (`ulimit -v`), and no `panicked at`
//! in stderr.
//!
//! `PUSHRACE_FUZZ_CASES` sets the cases per target (default 8, as in CI); by hand, long:
//! `PUSHRACE_FUZZ_CASES=2000 cargo test -p pushrace --release --test fuzz_inputs -- --nocapture`.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall time one run may take (runs explore with a small budget and a wall-time backstop).
const LIMIT: Duration = Duration::from_secs(60);
/// Address space one run may use, in KiB.
const MEMORY_KB: u64 = 4 << 20;

fn cases() -> u32 {
    std::env::var("PUSHRACE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pushrace-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `pushrace ARGS` under the memory limit and checks the property.
fn check(args: &[&str], input: &str) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let script = format!("ulimit -v {MEMORY_KB}; exec \"$0\" \"$@\"");
    // Stderr to a file: a pipe read only after the exit would block a long message.
    let err_path = dir("stderr").join(format!("{:?}", std::thread::current().id()));
    let err_file = std::fs::File::create(&err_path).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pushrace"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestCaseError::fail(format!(
                "{args:?} ran over {LIMIT:?} on {input:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    prop_assert!(
        matches!(status.code(), Some(0..=2)) && !err.contains("panicked at"),
        "{args:?}: {status:?}\n{err}\ninput: {input:?}"
    );
    Ok(())
}

/// Tokens that broke a parser before (issue 14) or sit at an edge.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808ns",
    "10000000000",
    "a9999999",
    "a10000000",
    "{63}",
    "\"../../../../etc\"",
    "\"/etc\"",
    "\"/dev/zero\"",
    "true",
    "[]",
    "\"\"",
    "\u{1b}[31m",
    "|",
    "\t",
    "\r\n",
    "\"linux/amd64\"",
    "sha256:",
    "null",
    "{",
    "}",
    "=",
    "\n[[actor]]\n",
];

/// A mutated seed: each edit replaces a byte range by a token, a repeat of one, or nothing.
fn mutated(seed: impl Into<String>) -> impl Strategy<Value = String> {
    let seed: String = seed.into();
    let edit = (
        any::<prop::sample::Index>(),
        0usize..16,
        0..TOKENS.len(),
        1usize..200,
    );
    prop::collection::vec(edit, 0..6).prop_map(move |edits| {
        let mut s = seed.clone().into_bytes();
        for (at, len, tok, times) in edits {
            let i = at.index(s.len() + 1);
            let j = (i + len).min(s.len());
            let t = TOKENS[tok].repeat(if times > 190 { times * 50 } else { 1 });
            s.splice(i..j, t.into_bytes());
        }
        String::from_utf8_lossy(&s).into_owned()
    })
}

fn write(d: &Path, name: &str, text: &str) -> String {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Writes the fixture's layout to `lay`; the file a layout case mutates: `index.json`, the
/// `oci-layout` marker, or the image index blob.
fn write_layout(lay: &Path, which: usize) -> PathBuf {
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    let fx = pushrace::ImageFixture::build("example.com/app:1", &platforms, 1).unwrap();
    pushrace_scenarios::layout::write(&fx, lay).unwrap();
    match which {
        0 => lay.join("index.json"),
        1 => lay.join("oci-layout"),
        _ => lay
            .join("blobs/sha256")
            .join(fx.index.digest().trim_start_matches("sha256:")),
    }
}

fn layout_seed(which: usize) -> String {
    let lay = dir("layout-seed").join(which.to_string());
    std::fs::read_to_string(write_layout(&lay, which)).unwrap()
}

const SCENARIO: &str = include_str!("../scenarios/corpus/same-ref.toml");
const OPS: &str = "[[op]]\nop = \"content.write\"\ndata = \"hello\"\nas = \"g\"\n[[op]]\nop = \"image.create\"\nname = \"a:1\"\ntarget = \"@g\"\n[[op]]\nop = \"clock.advance\"\nby = \"25h\"\n[[op]]\nop = \"image.pull\"\nref = \"b:1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nlayers = 2\n";
const LOG: &str = include_str!("../scenarios/tests/triage_logs/logrus_text_headline.log");

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_scenario(text in mutated(SCENARIO)) {
        let d = dir("scenario");
        let f = write(&d, "s.toml", &text);
        check(&["explore", &f, "--budget", "200", "--max-time", "20s"], &text)?;
    }

    #[test]
    fn fuzz_ops(text in mutated(OPS)) {
        let d = dir("ops");
        let f = write(&d, "ops.toml", &text);
        check(&["apply", &f, "--json"], &text)?;
    }

    #[test]
    fn fuzz_schedule(text in mutated("s1:2:a39b16ab2")) {
        // One argument may not exceed the kernel's 128 KiB (the file form, `[check] schedule`,
        // is fuzzed through the scenario target).
        prop_assume!(text.len() < 100_000);
        check(&["replay", "same-ref", "--schedule", &text], &text)?;
    }

    #[test]
    fn fuzz_log(text in mutated(LOG)) {
        let d = dir("log");
        let f = write(&d, "ci.log", &text);
        let out = d.join("out");
        let _ = std::fs::remove_dir_all(&out);
        check(&["triage", &f, "--out", out.to_str().unwrap()], &text)?;
    }

    #[test]
    fn fuzz_layout((which, body) in (0usize..3).prop_flat_map(|w| (Just(w), mutated(layout_seed(w))))) {
        let d = dir("layout");
        let lay = d.join("app-oci");
        let _ = std::fs::remove_dir_all(&lay);
        let target = write_layout(&lay, which);
        std::fs::write(&target, &body).unwrap();
        let log = write(&d, "ci.log", LOG);
        let out = d.join("out");
        let _ = std::fs::remove_dir_all(&out);
        check(&["triage", &log, "--image", lay.to_str().unwrap(), "--out", out.to_str().unwrap()], &body)?;
    }
}
