//! `pushrace triage`: from a failing CI log (and optionally the image as an OCI layout) to the
//! failure family, a scenario that reproduces it, its shrunk schedule, and the verdict of the
//! `lease-held` fix under the same neighbours.
//!
//! [`log`] reads the log, [`classify`] names the family, [`build_scenario`] writes the scenario
//! file, [`reproduce`] explores it. Output is deterministic: no wall-clock times, sorted maps.

pub mod classify;
pub mod log;
pub mod unwrap;

use crate::explore::{self, Options, Verdict};
use crate::programs::push::Variant;
use crate::scenario::{self, val, ActorDoc, CheckDoc, FileDoc, ImageDoc, Scenario};
use classify::{Classification, Family};
use pushrace_models::oci::{ImageFixture, RoleKind};
use std::path::{Path, PathBuf};

/// The most executions one exploration may take (the built-in shapes need far fewer).
pub const BUDGET: u64 = 20_000;

/// The most platforms a triaged push may list: the reproduction explores two pushes of all of
/// them (16 take seconds; each one more lengthens every execution and multiplies them).
pub const MAX_PLATFORMS: usize = 16;

/// What the user gave.
pub struct Input<'a> {
    /// The log's name for messages (a path or `-`).
    pub log_name: &'a str,
    pub log_text: &'a str,
    /// `--image DIR`: an OCI image layout.
    pub image: Option<&'a Path>,
    pub variant: Option<Variant>,
    /// Where the scenario file is written.
    pub out_dir: &'a Path,
    /// Replace an existing scenario file (never through a symlink: the link itself is replaced).
    pub force: bool,
}

/// Classification plus, for a known family, the scenario and its exploration.
pub struct Triage {
    pub log_name: String,
    pub facts: log::LogFacts,
    pub classification: Classification,
    pub scenario: Option<Built>,
    pub verdict: Option<Verdict>,
    pub lease_held: Option<Verdict>,
}

/// A scenario file written for the family.
pub struct Built {
    pub path: PathBuf,
    pub text: String,
    pub scenario: Scenario,
    pub summary: String,
}

fn extra_platform(have: &[String]) -> String {
    [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/s390x",
        "linux/ppc64le",
    ]
    .into_iter()
    .find(|p| !have.iter().any(|h| h == p))
    .unwrap_or("linux/riscv64")
    .to_string()
}

/// The race a classified failure stands for: which pushes, of what, against what.
struct Race {
    /// The image's platforms (without `--image`: the pushed ones and one more).
    image_platforms: Vec<String>,
    pushed: Vec<String>,
    fetched: Option<Vec<String>>,
    gc: &'static str,
    tags: Vec<String>,
    /// The second push's reference, when two race.
    second_ref: Option<String>,
    invariant: &'static str,
    summary: String,
    why: Vec<String>,
}

impl Race {
    fn new(c: &Classification, image: Option<&ImageFixture>) -> Race {
        let image_platforms: Vec<String> = match image {
            Some(fx) => {
                let mut seen = Vec::new();
                for p in &fx.platforms {
                    if !seen.contains(&p.platform) {
                        seen.push(p.platform.clone());
                    }
                }
                seen
            }
            None => {
                let mut p = c.platforms.clone();
                p.push(extra_platform(&c.platforms));
                p
            }
        };
        let mut pushed = c.platforms.clone();
        if image.is_some() {
            pushed.retain(|p| image_platforms.contains(p));
            if pushed.is_empty() {
                pushed.push(image_platforms[0].clone());
            }
        }
        let mut race = Race {
            image_platforms,
            pushed,
            fetched: None,
            gc: "sync-only",
            tags: Vec::new(),
            second_ref: None,
            invariant: "no-missing-digest",
            summary: String::new(),
            why: Vec::new(),
        };
        let lost_content = c.family == Family::LazyPull
            || (c.family == Family::ConvertTime && c.missing.is_some());
        match c.family {
            _ if lost_content => race.lost_content(c),
            Family::ConvertTime => race.convert_time(c),
            _ => race.tmp_reduced(c),
        }
        race
    }

    /// A platform the pull never fetched: one push, after the pull.
    fn lost_content(&mut self, c: &Classification) {
        let v = c.variant;
        let lost = c
            .identified
            .as_ref()
            .and_then(|i| i.platform.clone())
            .unwrap_or_else(|| self.pushed.last().cloned().unwrap_or_default());
        if !self.pushed.contains(&lost) {
            self.pushed.push(lost.clone());
        }
        self.fetched = Some(
            self.image_platforms
                .iter()
                .filter(|p| **p != lost)
                .cloned()
                .collect(),
        );
        self.summary = format!(
            "a {v} push of {} after a pull that did not fetch {lost}",
            self.pushed.join(", ")
        );
        self.why = vec![
            format!("The pull fetched every platform but {lost}; the index still references {lost}'s manifest,"),
            "so reading it (convert, EnsureAllContent's check, or the push) finds no content. Variants from".into(),
            "v2.0.4 (EnsureAllContent, #3435) fetch it first: with them this scenario is expected to hold.".into(),
        ];
    }

    /// Two pushes of one ref; any failure counts.
    fn convert_time(&mut self, c: &Classification) {
        let (v, r) = (c.variant, &c.reference);
        self.second_ref = Some(r.clone());
        self.invariant = "push-succeeds";
        self.summary =
            format!("two {v} pushes of {r} sharing the tmp name; any push failure is a violation");
        self.why = vec![
            "The failure is inside the tmp image's creation: another push of the same ref deletes or".into(),
            "recreates the shared `<ref>-tmp-reduced-platform` while this one converts it.".into(),
        ];
    }

    /// The reduced index collected: two pushes, as the variant races.
    fn tmp_reduced(&mut self, c: &Classification) {
        let (v, r) = (c.variant, &c.reference);
        let lines: &[&str] = match v {
            Variant::V0_17 => {
                self.gc = "background";
                self.second_ref = Some(r.clone());
                self.summary = format!(
                    "two v0.17 pushes of {r} with the background GC scheduler (#855, before #866)"
                );
                &[
                    "v0.17 deletes the shared tmp image asynchronously; a later background GC tick collects the",
                    "reduced index while the other push still reads it.",
                ]
            }
            Variant::V0_18 | Variant::V2_0_4 => {
                self.second_ref = Some(r.clone());
                self.summary = format!("two {v} pushes of {r} sharing the tmp image (#855, #3513)");
                &[
                    "Both pushes convert into the same tmp name and the same reduced index R; the first to finish",
                    "deletes the tmp image synchronously (a full GC) while the other still reads R.",
                ]
            }
            Variant::V2_0_5 | Variant::LeaseHeld => {
                let tag = format!("{r}-ci");
                self.tags.push(tag.clone());
                self.second_ref = Some(tag);
                self.summary =
                    format!("two {v} pushes of two tags of one image (#4470, open upstream)");
                &[
                    "Each tag has its own tmp name, but both conversions write the same reduced index R with its",
                    "digest given only at commit: the second writer's R does not join its lease, and the first",
                    "push's synchronous tmp delete (a full GC) collects R before the second push reads it.",
                ]
            }
        };
        self.why = lines.iter().map(|l| l.to_string()).collect();
    }
}

/// The first 12 hex digits of the missing digest (`nodigest` without one), for names.
fn short_digest(c: &Classification) -> String {
    let d = c
        .missing
        .as_deref()
        .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect());
    d.unwrap_or_else(|| "nodigest".into())
}

/// The scenario text for a classified failure (None for `unknown`): its notes as comments, then
/// the document. `expect` and `missing` are filled in after exploring, so the written file is a
/// regression that passes.
pub fn scenario_text(
    c: &Classification,
    log_name: &str,
    image: Option<(&Path, &ImageFixture)>,
    expect: Option<(&str, Option<&str>)>,
) -> Option<(String, String)> {
    if c.family == Family::Unknown {
        return None;
    }
    let race = Race::new(c, image.map(|(_, fx)| fx));
    let mut notes = vec![format!(
        "Written by `pushrace triage {log_name}`: {}.",
        c.family.title()
    )];
    notes.extend(c.reasons.iter().map(|r| format!("- {r}")));
    notes.extend(race.why.iter().cloned());
    notes.extend(match image {
        Some(_) => vec!["The image is the real one (--image, an OCI image layout): its media types and digests are the log's."],
        None => vec![
            "The image is a fixture with the same shape (platforms, one layer each), built with OCI media",
            "types: its digests differ from the log's, and a Docker manifest list in the log is an OCI index here.",
        ],
    }.into_iter().map(String::from));
    notes.push(format!("Variant {}: {}.", c.variant, c.variant_source));
    let doc = scenario_doc(c, &race, image.map(|(dir, _)| dir), expect);
    Some((
        format!("{}{}", comments(&notes), doc.to_toml()),
        race.summary,
    ))
}

/// The scenario document of a race: the image, its pushes, the check.
fn scenario_doc(
    c: &Classification,
    race: &Race,
    layout: Option<&Path>,
    expect: Option<(&str, Option<&str>)>,
) -> FileDoc {
    let r = &c.reference;
    let mut im = ImageDoc::new(r);
    match layout {
        Some(dir) => im.layout = Some(val(dir.display().to_string())),
        None => im.platforms = Some(val(race.image_platforms.clone())),
    }
    im.fetched = race.fetched.clone().map(val);
    im.tags = (!race.tags.is_empty()).then(|| val(race.tags.clone()));
    let refs: Vec<(&str, &String)> = match &race.second_ref {
        Some(r2) => vec![("push-a", r), ("push-b", r2)],
        None => vec![("push", r)],
    };
    let actor = |(name, rf): (&str, &String)| ActorDoc {
        reference: Some(val(rf.clone())),
        platforms: Some(val(race.pushed.clone())),
        variant: Some(val(c.variant.to_string())),
        ..ActorDoc::new(name, "nerdctl.push")
    };
    let mut check = CheckDoc {
        invariant: Some(val(race.invariant.to_string())),
        preemptions: Some(val(toml::Value::Integer(2))),
        budget: Some(val(BUDGET as i64)),
        ..CheckDoc::default()
    };
    if c.family == Family::ConvertTime && c.missing.is_none() {
        // Any push failure counts, but the one to reproduce is the log's: inside the tmp image's
        // creation, not the reduced index the same race also loses.
        check.message = Some(val("failed to create a tmp".to_string()));
    }
    if let Some((e, missing)) = expect {
        check.expect = Some(val(e.to_string()));
        check.missing = missing.map(|m| val(m.to_string()));
    }
    FileDoc {
        name: Some(format!("triage-{}-{}", c.family.name(), short_digest(c))),
        description: Some(format!("{}: {}", c.family.name(), race.summary)),
        containerd: Some(val("1.6".to_string())),
        gc: Some(val(race.gc.to_string())),
        registry: None,
        image: vec![im],
        actor: refs.into_iter().map(actor).collect(),
        check: Some(check),
    }
}

/// Notes as TOML comment lines, one a note: every line break and control character (which a
/// comment may not hold, or which would end it) becomes a space, so a note can quote anything
/// the log said.
fn comments(notes: &[String]) -> String {
    let mut out = String::new();
    for line in notes {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        out.push_str("# ");
        out.push_str(clean.trim_end());
        out.push('\n');
    }
    out
}

/// Explores `s` within the triage bounds.
pub fn reproduce(s: &Scenario) -> Verdict {
    let mut o = Options::for_scenario(s);
    o.budget = Some(o.budget.unwrap_or(BUDGET).min(BUDGET));
    explore::explore(s, &o)
}

/// Reads the image, classifies the log, writes and explores the scenario. `Err` is bad input
/// (an unreadable or invalid layout, an unwritable output directory).
pub fn triage(input: &Input) -> Result<Triage, String> {
    let facts = log::parse(input.log_text);
    let layout = match input.image {
        Some(dir) => Some(crate::layout::load(dir).map_err(|e| e.to_string())?),
        None => None,
    };
    // The reference is needed to pick the layout's image; classify once without the image to
    // learn it, then with the image.
    let first = classify::classify(&facts, None, input.variant);
    let fixture = match &layout {
        Some(l) => Some(l.image(&first.reference).map_err(|e| e.to_string())?),
        None => None,
    };
    let classification = classify::classify(&facts, fixture.as_ref(), input.variant);
    if classification.platforms.len() > MAX_PLATFORMS {
        return Err(format!(
            "{}: the push lists {} platforms ({}): triage reproduces at most {MAX_PLATFORMS}",
            input.log_name,
            classification.platforms.len(),
            classification.platforms_source
        ));
    }
    let mut t = Triage {
        log_name: input.log_name.to_string(),
        facts,
        classification,
        scenario: None,
        verdict: None,
        lease_held: None,
    };
    let image_dir = match input.image {
        Some(d) => Some(std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?),
        None => None,
    };
    let image = image_dir.as_deref().zip(fixture.as_ref());
    let Some((text, summary)) = scenario_text(&t.classification, input.log_name, image, None)
    else {
        return Ok(t);
    };
    let short = short_digest(&t.classification);
    let path = input.out_dir.join(format!(
        "triage-{}-{short}.toml",
        t.classification.family.name()
    ));
    let file = path.display().to_string();
    check_writable(input.out_dir, &path, input.force)?;
    let s = scenario::parse(&file, &text)
        .map_err(|e| format!("the generated scenario does not load (a bug in triage): {e}"))?;
    let verdict = reproduce(&s);
    let expect = match &verdict.violation {
        Some(v) => ("violation", v.role.map(|r| r.name())),
        None => ("holds", None),
    };
    let (text, _) = scenario_text(&t.classification, input.log_name, image, Some(expect))
        .expect("same classification");
    write_new(input.out_dir, &path, &text, input.force)?;
    t.scenario = Some(Built {
        path,
        text,
        scenario: s,
        summary,
    });
    t.verdict = Some(verdict);
    Ok(t)
}

/// Whether the scenario can be written to `path` in `dir` (checked before exploring, so a
/// refusal comes before the wait): `dir` is a directory or absent, and `path` is absent or, with
/// `force`, a regular file or symlink to replace.
fn check_writable(dir: &Path, path: &Path, force: bool) -> Result<(), String> {
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            return Err(format!(
                "--out {}: not a directory (it is a file): give the directory to write the scenario in",
                dir.display()
            ));
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => Err(format!(
            "{}: a directory is in the way of the scenario file",
            path.display()
        )),
        Ok(m) if !force => Err(format!(
            "{}: {} already exists; not overwritten (--force replaces it{})",
            path.display(),
            if m.file_type().is_symlink() {
                "a symlink"
            } else {
                "the file"
            },
            if m.file_type().is_symlink() {
                ", the link itself, not its target"
            } else {
                ""
            }
        )),
        Ok(_) => Ok(()),
    }
}

/// Writes a new file at `path` without following a symlink there: with `force` an existing
/// file or link is removed first, and the file is created exclusively (`O_EXCL`).
fn write_new(dir: &Path, path: &Path, text: &str, force: bool) -> Result<(), String> {
    use std::io::Write;
    check_writable(dir, path, force)?;
    let file = path.display();
    std::fs::create_dir_all(dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
    if force && std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).map_err(|e| format!("{file}: cannot replace it: {e}"))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{file}: cannot write the scenario: {e}"))
}

impl Triage {
    /// Explores the written scenario again with every push switched to `lease-held`.
    pub fn run_lease_held(&mut self) {
        if let Some(b) = &self.scenario {
            self.lease_held = Some(reproduce(&b.scenario.with_variant(Variant::LeaseHeld)));
        }
    }

    /// Whether the exploration reproduced the log's failure (the same kind of missing object).
    pub fn reproduced(&self) -> Option<bool> {
        let v = self.verdict.as_ref()?;
        let Some(viol) = &v.violation else {
            return Some(false);
        };
        let c = &self.classification;
        Some(match c.family {
            Family::TmpReducedCollected => viol.role == Some(RoleKind::ReducedIndex),
            Family::LazyPull => is_platform_blob(viol.role),
            Family::ConvertTime if c.missing.is_some() => is_platform_blob(viol.role),
            Family::ConvertTime => viol.message.contains("failed to create a tmp"),
            Family::Unknown => false,
        })
    }

    /// 0 classified into a known family, 1 unknown.
    pub fn exit_code(&self) -> u8 {
        if self.classification.family == Family::Unknown {
            1
        } else {
            0
        }
    }

    /// The classification and the facts (no exploration).
    pub fn header_text(&self) -> String {
        let c = &self.classification;
        let f = &self.facts;
        let mut o = format!("triage of {}\n", self.log_name);
        o.push_str(&format!(
            "log: {} lines, {} facts; formats: {}\n",
            f.lines,
            f.events.len(),
            if f.formats.is_empty() {
                "-".into()
            } else {
                f.formats.join(", ")
            }
        ));
        o.push_str(&format!(
            "nerdctl version: {}\n",
            c.nerdctl_version.as_deref().unwrap_or("not printed")
        ));
        if let Some(r) = &c.reduced {
            if let log::Fact::Reduced { media_type, digest } = &r.fact {
                o.push_str(&format!(
                    "reduced-platform info line {}: {media_type}, {digest}\n",
                    at(r)
                ));
            }
        }
        match &c.failure {
            Some(e) => o.push_str(&format!("failure {}: {}\n", at(e), e.message)),
            None => o.push_str("failure: none found\n"),
        }
        if c.other_failures > 0 {
            o.push_str(&format!(
                "  ({} more failure lines in the log)\n",
                c.other_failures
            ));
        }
        if let Some(d) = &c.missing {
            o.push_str(&format!("missing digest: {d}\n"));
        }
        if let Some(id) = &c.identified {
            o.push_str(&format!("  in the image (--image): the {}\n", id.what));
        }
        o.push_str(&format!(
            "\nfamily: {} — {}\n",
            c.family.name(),
            c.family.title()
        ));
        for r in &c.reasons {
            o.push_str(&format!("  - {r}\n"));
        }
        if c.family != Family::Unknown {
            o.push_str(&format!(
                "image: {} ({}); pushed platforms: {} ({})\n",
                c.reference,
                c.reference_source,
                c.platforms.join(", "),
                c.platforms_source
            ));
            o.push_str(&format!("variant: {} ({})\n", c.variant, c.variant_source));
        }
        o
    }

    /// The scenario and the reproduction (schedule, trace, Mermaid, replay command).
    pub fn reproduction_text(&self) -> String {
        let (Some(b), Some(v)) = (&self.scenario, &self.verdict) else {
            return String::new();
        };
        let mut o = format!("\nscenario: {}\n  {}\n", b.path.display(), b.summary);
        o.push_str(&format!(
            "  commit it as a regression: cp {} scenarios/corpus/\n",
            b.path.display()
        ));
        o.push_str(&format!(
            "explored {} executions ({}){}\n",
            v.report.executions,
            bounds(v),
            match v.not_exhausted_why() {
                None => "; the space within these bounds is exhausted".to_string(),
                Some(why) => format!("; the space was NOT exhausted ({why})"),
            }
        ));
        if let Some(f) = &v.other_failure {
            o.push_str(&format!("FAILURE (not the scenario's invariant): {f}\n"));
        }
        match &v.violation {
            None if v.proved() => o.push_str(&format!(
                "NOT REPRODUCED: {} holds under {}\n",
                b.scenario.check.invariant.name(),
                self.classification.variant
            )),
            None => o.push_str(&format!(
                "NOT REPRODUCED under {}: {}\n",
                self.classification.variant,
                v.no_violation_line()
            )),
            Some(viol) => {
                let same = self.reproduced() == Some(true);
                o.push_str(if same {
                    "REPRODUCED\n"
                } else {
                    "A DIFFERENT VIOLATION (not the log's failure):\n"
                });
                if let Some(a) = &viol.actor {
                    o.push_str(&format!(
                        "  {a} failed at step {}: {}\n",
                        viol.step, viol.message
                    ));
                }
                if let (Some(d), Some(w)) = (&viol.digest, &viol.what) {
                    o.push_str(&format!("  {d} is the {w}\n"));
                }
                o.push_str(&format!(
                    "  shrunk schedule: {} ({} steps, {} preemptions; shrunk from {} steps)\n\ntrace:\n",
                    viol.schedule.encode(), viol.steps_after, viol.preemptions_after, viol.steps_before
                ));
                for line in viol.trace.to_text().lines() {
                    o.push_str(&format!("  {line}\n"));
                }
                o.push_str("\nmermaid:\n```mermaid\n");
                o.push_str(&viol.trace.to_mermaid());
                if !o.ends_with('\n') {
                    o.push('\n');
                }
                o.push_str("```\n\nreplay:\n  ");
                o.push_str(&v.replay_command().unwrap_or_default());
                o.push('\n');
            }
        }
        o
    }

    pub fn lease_held_text(&self) -> String {
        let Some(v) = &self.lease_held else {
            return String::new();
        };
        let mut o = String::from("\nlease-held under the same neighbours: ");
        match &v.violation {
            None if v.other_failure.is_none() && v.proved() => o.push_str(&format!(
                "HOLDS ({} executions, {}, exhausted)\n",
                v.report.executions,
                bounds(v),
            )),
            None if v.other_failure.is_none() => {
                o.push_str(&format!("{} ({})\n", v.no_violation_line(), bounds(v),))
            }
            None => o.push_str(&format!(
                "FAILURE {}\n",
                v.other_failure.as_deref().unwrap_or("")
            )),
            Some(viol) => {
                o.push_str(&format!(
                "VIOLATION: {} ({} steps; pushrace replay {} --variant lease-held --schedule {})\n",
                viol.message,
                viol.steps_after,
                self.scenario.as_ref().map(|b| b.path.display().to_string()).unwrap_or_default(),
                viol.schedule.encode()
            ))
            }
        }
        o
    }

    pub fn to_text(&self) -> String {
        format!(
            "{}{}{}",
            self.header_text(),
            self.reproduction_text(),
            self.lease_held_text()
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.classification;
        let verdict = |v: &Verdict| {
            let mut j = v.to_json();
            // No wall-clock times in the output.
            if let Some(o) = j.as_object_mut() {
                o.remove("elapsed");
            }
            j
        };
        serde_json::json!({
            "log": self.log_name,
            "lines": self.facts.lines,
            "formats": self.facts.formats,
            "facts": self.facts.events,
            "family": c.family.name(),
            "title": c.family.title(),
            "reasons": c.reasons,
            "classification": c,
            "scenario": self.scenario.as_ref().map(|b| serde_json::json!({
                "path": b.path.display().to_string(),
                "summary": b.summary,
                "text": b.text,
            })),
            "reproduced": self.reproduced(),
            "verdict": self.verdict.as_ref().map(verdict),
            "lease_held": self.lease_held.as_ref().map(verdict),
        })
    }
}

fn at(e: &log::Event) -> String {
    let mut s = format!("(line {}", e.line);
    if let Some(t) = &e.test {
        s.push_str(&format!(", {t}"));
    }
    if let Some(l) = e.level {
        s.push_str(&format!(
            ", {}",
            serde_json::to_value(l)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    s.push(')');
    s
}

fn bounds(v: &Verdict) -> String {
    let bound = crate::scenario::bound_text(v.options.preemptions);
    format!("dfs, {bound}")
}

/// A platform's own blob (its manifest, config or a layer), as a lazy pull leaves missing.
fn is_platform_blob(role: Option<RoleKind>) -> bool {
    matches!(
        role,
        Some(RoleKind::Manifest | RoleKind::Config | RoleKind::Layer)
    )
}
