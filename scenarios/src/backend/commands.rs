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

    /// The argv with the placeholders filled in.
    pub fn substituted(&self, place: &Place) -> Vec<String> {
        let sub = |a: &String| {
            a.replace("{address}", &place.address)
                .replace("{registry}", &place.registry)
                .replace("{ref}", &place.reference)
        };
        self.argv.iter().map(sub).collect()
    }
}

/// What a command actor's placeholders stand for in one execution.
#[derive(Clone, Debug)]
pub struct Place {
    /// `{address}`: the actor's interposer socket.
    pub address: String,
    /// `{registry}`: the private registry's `HOST:PORT`.
    pub registry: String,
    /// `{ref}`: the actor's reference.
    pub reference: String,
}

impl Place {
    /// `text` with this execution's socket and registry address written as their placeholders,
    /// so that what reaches a trace is the same in every execution.
    pub fn normalise(&self, text: &str) -> String {
        let t = match self.address.is_empty() {
            true => text.to_string(),
            false => text.replace(&self.address, "{address}"),
        };
        match self.registry.is_empty() {
            true => t,
            false => t.replace(&self.registry, "{registry}"),
        }
    }
}

/// The step label of starting a command: `exec ctr images push … {registry}/app:1 example.com/app:1-tmp…`
/// with `{ref}` filled in, the socket argument (`{address}` and the flag before it) left out and
/// `{address}`, `{registry}` inside other arguments left as they are: both differ between runs,
/// and a label enters the trace hash.
pub fn exec_label(spec: &CommandSpec, reference: &str) -> String {
    let mut shown = Vec::new();
    for (i, a) in spec.argv.iter().enumerate() {
        let next_is_address = spec.argv.get(i + 1).is_some_and(|n| n == "{address}");
        if a == "{address}" || (next_is_address && a.starts_with('-')) {
            continue;
        }
        shown.push(a.replace("{ref}", reference));
    }
    format!("exec {}", shown.join(" "))
}

/// The last `max` bytes of a process's stderr, as text.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let from = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[from..]).trim().to_string()
}

/// The line of a client's stderr that says why it failed: its last non-empty line, without a
/// logrus `time="…"` field (it enters the trace hash, which must not depend on the clock).
pub fn last_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut out = Vec::new();
    let mut words = line.split(' ').peekable();
    while let Some(w) = words.next() {
        if let Some(rest) = w.strip_prefix("time=\"") {
            // Skip to the word that closes the quoted timestamp.
            let mut closed = rest.ends_with('"');
            while !closed {
                closed = words.next().map_or(true, |n| n.ends_with('"'));
            }
            continue;
        }
        out.push(w);
    }
    out.join(" ")
}

/// A failed command as the actor's error: `label` (the command as its `exec` step shows it),
/// how it ended, and the last line of its stderr; NotFound when that says `not found` (so that
/// `Error::missing_digest` reads the digest out of ctr's `content digest …: not found`).
pub fn failure(label: &str, status: &str, why: &str) -> Error {
    let kind = match why.contains("not found") {
        true => ErrorKind::NotFound,
        false => ErrorKind::Unknown,
    };
    Error::raw(kind, format!("`{label}` {status}: {why}"))
}
