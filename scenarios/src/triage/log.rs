//! Reading nerdctl / containerd log text as CI shows it: logrus text (`time="…" level=info
//! msg="…"`), logrus on a terminal (`INFO[0000] …`, `FATA[0000] …`), JSON logs (`{"level":…,
//! "msg":…}`), behind Go test-runner prefixes (`    push_test.go:123: `, gotest.tools'
//! `Stderr:   `), GitHub Actions timestamps, ANSI colour codes, CRLF line ends, and the
//! interleaved output of parallel tests (`=== RUN` / `=== CONT` headers), and a CI viewer's layout
//! (see [`super::unwrap`]). It never fails: lines
//! it does not understand are skipped.

use serde::Serialize;

/// A logrus level, as far as the line says.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
}

/// Where a failure happened in nerdctl's push.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum Context {
    /// Inside `failed to create a tmp single-platform image "…"` /
    /// `failed to create a tmp reduced-platform image "…" (platform=[…])`.
    CreateTmp {
        tmp: String,
        /// `single-platform` or `reduced-platform`.
        form: String,
        platforms: Option<Vec<String>>,
    },
    /// Inside `failed to copy: …` (remotes.PushContent reading a blob to upload it).
    Copy,
    /// Neither: the push's own reads.
    Push,
}

/// One fact read from a line.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fact {
    /// `pushing as a reduced-platform image (<media type>, <digest>)`.
    Reduced { media_type: String, digest: String },
    /// `content digest <d>: not found`.
    MissingDigest { digest: String, context: Context },
    /// `image "<name>": not found`.
    ImageNotFound { name: String, context: Context },
    /// `failed to create a tmp … image "…": <something else>`.
    CreateTmpFailed { context: Context, cause: String },
    /// The nerdctl version, when printed.
    Version { version: String },
    /// A `nerdctl … push REF` command line.
    PushCommand {
        reference: String,
        platforms: Option<Vec<String>>,
        all_platforms: bool,
    },
}

impl Fact {
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Fact::MissingDigest { .. } | Fact::ImageNotFound { .. } | Fact::CreateTmpFailed { .. }
        )
    }
}

/// A fact with where it was found.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Event {
    /// 1-based line number in the input.
    pub line: usize,
    /// The Go test whose output this line is, when `=== RUN` / `=== CONT` headers or a
    /// test-runner prefix say so.
    pub test: Option<String>,
    pub level: Option<Level>,
    /// The log message (after prefixes and quoting are removed).
    pub message: String,
    #[serde(flatten)]
    pub fact: Fact,
}

/// Everything read from a log.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct LogFacts {
    pub lines: usize,
    /// Which line formats were seen (sorted): `logrus-text`, `logrus-tty`, `json`, `go-test`,
    /// `ansi`, `crlf`, `gha-timestamp`, `gh-run-view`, `table-wrapped`, `plain`.
    pub formats: Vec<&'static str>,
    pub events: Vec<Event>,
}

impl LogFacts {
    pub fn failures(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.fact.is_failure())
    }

    pub fn version(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match &e.fact {
            Fact::Version { version } => Some(version.as_str()),
            _ => None,
        })
    }
}

/// Removes ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL`, and two-byte escapes).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('[') => {
                for c in it.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = it.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && it.peek() == Some(&'\\') {
                        it.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `2025-08-18T07:12:33.1234567Z ` (GitHub Actions raw logs).
fn strip_gha_timestamp(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T' {
        let end = s.find(' ')?;
        if s[..end].ends_with('Z') {
            return Some(&s[end + 1..]);
        }
    }
    None
}

/// A Go test-runner prefix `name.go:123: ` (after indentation), repeated for nested helpers.
fn strip_go_prefix(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let colon = t.find(".go:")?;
    let file = &t[..colon];
    if file.is_empty() || file.contains(char::is_whitespace) {
        return None;
    }
    let rest = &t[colon + 4..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !rest[digits..].starts_with(':') {
        return None;
    }
    Some(rest[digits + 1..].trim_start())
}

/// Parses a Go-quoted string starting at `s[0] == '"'`; returns the value and the rest.
fn go_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices();
    if it.next()?.1 != '"' {
        return None;
    }
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match it.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'u' => {
                    let (start, _) = it.next()?;
                    let hex = s.get(start..start + 4)?;
                    for _ in 0..3 {
                        it.next()?;
                    }
                    out.push(
                        char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}'),
                    );
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    // Unterminated: take what there is.
    Some((out, ""))
}

/// logrus text: `key=value` pairs, values bare or Go-quoted.
fn logfmt(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        if !rest.starts_with('=') {
            continue;
        }
        rest = &rest[1..];
        let value = if rest.starts_with('"') {
            match go_quoted(rest) {
                Some((v, r)) => {
                    rest = r;
                    v
                }
                None => break,
            }
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = rest[..end].to_string();
            rest = &rest[end..];
            v
        };
        pairs.push((key.to_string(), value));
    }
    pairs
}

fn level_of(s: &str) -> Option<Level> {
    Some(match s.to_ascii_lowercase().as_str() {
        "debug" | "debu" | "trace" | "trac" => Level::Debug,
        "info" => Level::Info,
        "warning" | "warn" => Level::Warning,
        "error" | "erro" => Level::Error,
        "fatal" | "fata" | "panic" | "pani" => Level::Fatal,
        _ => return None,
    })
}

/// The level and message of one cleaned line, and the format it was in.
fn message(line: &str) -> (Option<Level>, String, &'static str) {
    let t = line.trim();
    if t.starts_with('{') {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(t) {
            let level = o.get("level").and_then(|v| v.as_str()).and_then(level_of);
            let msg = o
                .get("msg")
                .or_else(|| o.get("message"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let mut m = msg.to_string();
            if let Some(e) = o.get("error").and_then(|v| v.as_str()) {
                m = if m.is_empty() {
                    e.to_string()
                } else {
                    format!("{m}: {e}")
                };
            }
            return (level, m, "json");
        }
    }
    // `FATA[0000] message`, `INFO[0001] message`.
    if t.len() > 6 && t.as_bytes()[4] == b'[' {
        if let (Some(level), Some(close)) = (level_of(&t[..4]), t.find(']')) {
            if t[5..close].bytes().all(|b| b.is_ascii_digit()) {
                return (Some(level), t[close + 1..].trim().to_string(), "logrus-tty");
            }
        }
    }
    // `time="…" level=fatal msg="…"` anywhere in the line (test runners wrap it).
    if let Some(at) = t.find("level=") {
        let start = t[..at].rfind("time=").unwrap_or(at);
        let pairs = logfmt(&t[start..]);
        let level = pairs
            .iter()
            .find(|(k, _)| k == "level")
            .and_then(|(_, v)| level_of(v));
        if let Some((_, msg)) = pairs.iter().find(|(k, _)| k == "msg") {
            let mut m = msg.clone();
            if let Some((_, e)) = pairs.iter().find(|(k, _)| k == "error") {
                m = format!("{m}: {e}");
            }
            return (level, m, "logrus-text");
        }
    }
    (None, t.to_string(), "plain")
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `sha256:<64 hex>` at the start of `s`.
fn digest_at(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?.get(..64)?;
    is_hex64(hex).then(|| format!("sha256:{hex}"))
}

/// `[linux/amd64 linux/arm64]` (Go's %v of a []string) or `linux/amd64,linux/arm64`.
fn platform_list(s: &str) -> Vec<String> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `failed to create a tmp … image "X"( (platform=[…]))?: ` at the start of `m`: the context
/// and the rest.
fn create_tmp(m: &str) -> Option<(Context, &str)> {
    for form in ["single-platform", "reduced-platform"] {
        let head = format!("failed to create a tmp {form} image ");
        if let Some(rest) = m.strip_prefix(head.as_str()) {
            let (tmp, mut rest) = go_quoted(rest)?;
            let mut platforms = None;
            if let Some(r) = rest.strip_prefix(" (platform=") {
                let close = r.find(')')?;
                platforms = Some(platform_list(&r[..close]));
                rest = &r[close + 1..];
            }
            let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
            return Some((
                Context::CreateTmp {
                    tmp,
                    form: form.to_string(),
                    platforms,
                },
                rest,
            ));
        }
    }
    None
}

/// The facts in one log message.
fn facts_of(m: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    if let Some(i) = m.find("pushing as a reduced-platform image (") {
        let rest = &m[i + "pushing as a reduced-platform image (".len()..];
        if let Some((mt, d)) = rest.split_once(", ") {
            if let Some(digest) = digest_at(d.trim_start()) {
                out.push(Fact::Reduced {
                    media_type: mt.trim().to_string(),
                    digest,
                });
            }
        }
    }
    // Errors: find the wrapping prefix, then the cause.
    let mut context = Context::Push;
    let mut rest = m;
    if let Some(i) = m.find("failed to create a tmp ") {
        if let Some((c, r)) = create_tmp(&m[i..]) {
            context = c;
            rest = r;
        }
    } else if let Some(i) = m.find("failed to copy: ") {
        context = Context::Copy;
        rest = &m[i + "failed to copy: ".len()..];
    }
    let mut failure = None;
    if let Some(i) = rest.find("content digest ") {
        let after = &rest[i + "content digest ".len()..];
        if let Some(digest) = digest_at(after) {
            if after[digest.len()..].starts_with(": not found") {
                failure = Some(Fact::MissingDigest {
                    digest,
                    context: context.clone(),
                });
            }
        }
    }
    if failure.is_none() {
        if let Some(i) = rest.find("image \"") {
            if let Some((name, after)) = go_quoted(&rest[i + "image ".len()..]) {
                if after.starts_with(": not found") {
                    failure = Some(Fact::ImageNotFound {
                        name,
                        context: context.clone(),
                    });
                }
            }
        }
    }
    if failure.is_none() && matches!(context, Context::CreateTmp { .. }) {
        failure = Some(Fact::CreateTmpFailed {
            context,
            cause: rest.to_string(),
        });
    }
    out.extend(failure);
    if let Some(v) = version_in(m) {
        out.push(Fact::Version { version: v });
    }
    if let Some(p) = push_command(m) {
        out.push(p);
    }
    out
}

fn version_in(m: &str) -> Option<String> {
    let i = m.find("nerdctl version ")?;
    let v = m[i + "nerdctl version ".len()..]
        .split_whitespace()
        .next()?;
    let v = v.trim_matches(|c: char| c == '"' || c == ',');
    v.trim_start_matches('v')
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_string())
}

/// `… nerdctl [global flags] push [flags] REF` (a shell trace, gotest.tools' `Command:` line,
/// nerdctl's test harness echo).
fn push_command(m: &str) -> Option<Fact> {
    let words: Vec<&str> = m.split_whitespace().collect();
    let n = words
        .iter()
        .position(|w| w.rsplit('/').next() == Some("nerdctl"))?;
    let p = n + 1 + words[n + 1..].iter().position(|w| *w == "push")?;
    let mut platforms: Option<Vec<String>> = None;
    let mut all_platforms = false;
    let mut reference = None;
    let mut i = p + 1;
    while i < words.len() {
        let w = words[i].trim_matches(|c| c == '"' || c == '\'');
        if let Some(v) = w.strip_prefix("--platform=") {
            platforms
                .get_or_insert_with(Vec::new)
                .extend(platform_list(v));
        } else if w == "--platform" {
            if let Some(v) = words.get(i + 1) {
                platforms
                    .get_or_insert_with(Vec::new)
                    .extend(platform_list(v));
            }
            i += 1;
        } else if w == "--all-platforms" || w == "--all-platforms=true" {
            all_platforms = true;
        } else if w.starts_with('-') {
        } else if reference.is_none() && !w.is_empty() {
            reference = Some(w.to_string());
            break;
        }
        i += 1;
    }
    Some(Fact::PushCommand {
        reference: reference?,
        platforms,
        all_platforms,
    })
}

/// `=== RUN   TestPush/foo`, `=== CONT  TestPush/foo`, `--- FAIL: TestPush/foo (1.2s)`.
fn test_header(t: &str) -> Option<String> {
    for h in [
        "=== RUN",
        "=== CONT",
        "=== PAUSE",
        "=== NAME",
        "--- FAIL:",
        "--- PASS:",
    ] {
        if let Some(r) = t.strip_prefix(h) {
            return r.split_whitespace().next().map(str::to_string);
        }
    }
    None
}

/// Reads a whole log. A CI log viewer's layout (a wrapped table, `gh run view --log`) is undone
/// first and named in `formats`.
pub fn parse(text: &str) -> LogFacts {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader::default();
    match super::unwrap::unwrap_table(text) {
        Some(lines) => {
            r.formats.insert("table-wrapped");
            for (n, l) in &lines {
                r.line(*n, l);
            }
        }
        None => {
            for (i, l) in text.split('\n').enumerate() {
                r.line(i + 1, l);
            }
        }
    }
    r.facts.lines = text.lines().count();
    r.facts.formats = r.formats.into_iter().collect();
    r.facts
}

/// The state of reading a log line by line.
#[derive(Default)]
struct Reader {
    facts: LogFacts,
    formats: std::collections::BTreeSet<&'static str>,
    test: Option<String>,
    after_client_header: bool,
}

impl Reader {
    /// One log line, numbered `n` (1-based).
    fn line(&mut self, n: usize, raw: &str) {
        let mut line = raw;
        if let Some(l) = line.strip_suffix('\r') {
            self.formats.insert("crlf");
            line = l;
        }
        let cleaned;
        if line.contains('\u{1b}') {
            self.formats.insert("ansi");
            cleaned = strip_ansi(line);
            line = &cleaned;
        }
        if let Some(l) = super::unwrap::strip_gh_run_view(line) {
            self.formats.insert("gh-run-view");
            line = l;
        }
        if let Some(l) = strip_gha_timestamp(line) {
            self.formats.insert("gha-timestamp");
            line = l;
        }
        if let Some(name) = test_header(line.trim()) {
            self.formats.insert("go-test");
            self.test = Some(name);
            return;
        }
        let mut prefixed = false;
        while let Some(l) = strip_go_prefix(line) {
            line = l;
            prefixed = true;
        }
        if prefixed {
            self.formats.insert("go-test");
        }
        // gotest.tools' icmd result: `Stderr:   <first line>`.
        for p in ["Stderr:", "Stdout:", "Error:"] {
            if let Some(l) = line.trim_start().strip_prefix(p) {
                line = l;
            }
        }
        if line.trim().is_empty() || self.version_block(n, line.trim()) {
            return;
        }
        let (level, msg, format) = message(line);
        let found = facts_of(&msg);
        if !found.is_empty() {
            self.formats.insert(format);
        }
        for fact in found {
            self.push(n, level, msg.clone(), fact);
        }
    }

    /// `nerdctl version` output: the Version under `Client:`. True when the line was used.
    fn version_block(&mut self, n: usize, t: &str) -> bool {
        if t == "Client:" {
            self.after_client_header = true;
            return false;
        }
        if !self.after_client_header {
            return false;
        }
        let Some(v) = t.strip_prefix("Version:") else {
            return false;
        };
        self.after_client_header = false;
        let v = v.trim();
        if !v.is_empty() {
            let fact = Fact::Version {
                version: v.to_string(),
            };
            self.push(n, None, t.to_string(), fact);
        }
        true
    }

    fn push(&mut self, line: usize, level: Option<Level>, message: String, fact: Fact) {
        self.facts.events.push(Event {
            line,
            test: self.test.clone(),
            level,
            message,
            fact,
        });
    }
}
