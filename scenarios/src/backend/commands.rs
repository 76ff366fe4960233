//! Command actors: an actor played by real client processes (`ctr`, a user's `nerdctl`), run in
//! order, each behind the actor's own interposer socket (feature `containerd`, `interposed.rs`).
//!
//! Rules:
//! - `{address}` becomes the actor's interposer socket, `{registry}` the registry's `HOST:PORT`,
//!   `{ref}` the actor's `ref`;
//! - the commands run one after another; after the first failure the rest are skipped except
//!   those marked `always` (nerdctl's deferred tmp-image delete runs even after a failed push);
//! - exit 0 is success; the actor's result is the first failure, with the tail of its stderr as
//!   the error's message, so the scenario's invariant judges it as it judges a model failure
//!   (`no-missing-digest` finds `content digest sha256:…: not found` in it).

use pushrace_models::{Error, ErrorKind};

/// One command of a command actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub argv: Vec<String>,
    /// Runs even after an earlier command of the actor failed.
    pub always: bool,
}

impl CommandSpec {
    pub fn new(argv: &[&str]) -> CommandSpec {
        CommandSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            always: false,
        }
    }

    pub fn always(mut self) -> CommandSpec {
        self.always = true;
        self
    }

    /// The argv with `{address}`, `{registry}` and `{ref}` substituted.
    pub fn substituted(&self, address: &str, registry: &str, reference: &str) -> Vec<String> {
        let sub = |a: &String| {
            a.replace("{address}", address)
                .replace("{registry}", registry)
                .replace("{ref}", reference)
        };
        self.argv.iter().map(sub).collect()
    }
}

/// The step label of starting a command: `exec ctr images push …` (the socket path, which
/// differs between runs, is not in it).
pub fn exec_label(spec: &CommandSpec) -> String {
    let shown: Vec<&str> = spec
        .argv
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "{address}" && *a != "--address" && *a != "-a")
        .collect();
    format!("exec {}", shown.join(" "))
}

/// The last `max` bytes of a process's stderr, as text.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let from = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[from..]).trim().to_string()
}

/// A failed command as the actor's error: NotFound when its stderr says `not found` (so that
/// `Error::missing_digest` reads the digest out of ctr's `content digest …: not found`).
pub fn failure(shown: &str, status: &str, stderr: &str) -> Error {
    let kind = match stderr.contains("not found") {
        true => ErrorKind::NotFound,
        false => ErrorKind::Unknown,
    };
    Error::raw(kind, format!("`{shown}` {status}: {stderr}"))
}
