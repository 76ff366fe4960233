//! Running the `pushrace` binary from the CLI tests.

use std::process::{Command, Output};

/// `pushrace ARGS`, its output collected.
pub fn pushrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushrace"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
