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

use crate::scenario::ProgramSpec;
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
                .replace("{go_client}", &place.go_client)
        };
        self.argv.iter().map(sub).collect()
    }
}

/// The Go client's command (clients/go, `docs/go-clients.md`) playing `program`: a push in its
/// variant (its platforms, or all; lease-held's tmp name suffixed with the actor's name, as the
/// model names it), a pull of its `remote` from `{registry}` (its platforms, which must be
/// given), or an rmi. `{go_client}` is the binary ([`go_client_path`]).
pub fn go_client_command(
    actor: &str,
    namespace: &str,
    program: &ProgramSpec,
) -> Result<CommandSpec, String> {
    let mut argv: Vec<String> = [
        "{go_client}",
        "--address",
        "{address}",
        "--namespace",
        namespace,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut add = |xs: &[&str]| argv.extend(xs.iter().map(|s| s.to_string()));
    match program {
        ProgramSpec::Push {
            reference,
            platforms,
            all_platforms,
            variant,
        } => {
            add(&["push", "--variant", &variant.to_string()]);
            match all_platforms {
                true => add(&["--all-platforms"]),
                false => platforms.iter().for_each(|p| add(&["--platform", p])),
            }
            if *variant == crate::programs::push::Variant::LeaseHeld {
                add(&["--tmp-suffix", actor]);
            }
            let path = without_host(reference);
            add(&["--plain-http", "{ref}", &format!("{{registry}}/{path}")]);
        }
        ProgramSpec::Pull {
            fetched, remote, ..
        } => {
            // nerdctl pulls the host's platform unless told; the model fetches every platform
            // then, which the Go client does only with each named (client.Fetch, whose
            // goroutines interleave the platforms' walks).
            let Some(fetched) = fetched else {
                return Err(format!(
                    "actor {actor}: the Go client plays nerdctl.pull with `platforms` (nerdctl's --platform) given"
                ));
            };
            add(&["pull"]);
            fetched.iter().for_each(|p| add(&["--platform", p]));
            add(&[
                "--plain-http",
                &format!("{{registry}}/{}", without_host(remote)),
            ]);
        }
        ProgramSpec::Rmi { force, .. } => {
            add(&["rmi"]);
            if *force {
                add(&["-f"]);
            }
            add(&["{ref}"]);
        }
        other => {
            return Err(format!(
                "the Go client plays nerdctl.push, nerdctl.pull and nerdctl.rmi, not {}",
                other.name()
            ))
        }
    }
    Ok(CommandSpec {
        argv,
        always: false,
    })
}

/// `example.com/app:1` -> `app:1`: a name's path, pushed to or pulled from `{registry}/PATH`.
fn without_host(name: &str) -> &str {
    name.split_once('/').map_or(name, |(_, p)| p)
}

/// Where the Go client is: `PUSHRACE_GO_CLIENT`, else `../go/pushrace-go-client` beside the
/// running executable's directory (`target/debug/pushrace` -> `target/go/…`, where
/// `ci/build-go-clients` puts it; a test binary in `target/debug/deps` looks one level up too),
/// else `target/go/pushrace-go-client` under the current directory.
pub fn go_client_path() -> Result<String, String> {
    if let Ok(p) = std::env::var("PUSHRACE_GO_CLIENT") {
        return Ok(p);
    }
    let exe = std::env::current_exe().ok();
    let dirs = exe.iter().flat_map(|e| e.ancestors().skip(1).take(3));
    let candidates = dirs
        .map(|d| d.join("go/pushrace-go-client"))
        .chain([std::path::PathBuf::from("target/go/pushrace-go-client")]);
    for c in candidates {
        if c.is_file() {
            return Ok(c.display().to_string());
        }
    }
    Err("the Go client is not built: run ci/build-go-clients (it puts it in target/go), or set PUSHRACE_GO_CLIENT".into())
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
    /// `{go_client}`: the Go client's path (empty when no command names it).
    pub go_client: String,
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
/// with `{ref}` filled in, the program by its file name, the socket argument (`{address}` and the flag before it) left out and
/// `{address}`, `{registry}` inside other arguments left as they are: both differ between runs,
/// and a label enters the trace hash.
pub fn exec_label(spec: &CommandSpec, reference: &str) -> String {
    let mut shown = Vec::new();
    for (i, a) in spec.argv.iter().enumerate() {
        let next_is_address = spec.argv.get(i + 1).is_some_and(|n| n == "{address}");
        if a == "{address}" || (next_is_address && a.starts_with('-')) {
            continue;
        }
        // The program by its file name: where it is installed differs between machines.
        let a = match i {
            0 => a.rsplit('/').next().unwrap_or(a),
            _ => a,
        };
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
