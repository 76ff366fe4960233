//! From the facts of a log (and optionally the image) to a failure family.
//!
//! | family                  | evidence                                                                 | upstream                |
//! |-------------------------|--------------------------------------------------------------------------|-------------------------|
//! | `tmp-reduced-collected` | the missing digest is the reduced index of the `pushing as a reduced-platform image` line (or, with `--image`, the layout's reduced index for the pushed platforms) | nerdctl #855, #3513, #4470 |
//! | `lazy-pull`             | with `--image`: the missing digest is a manifest, config or layer of one platform (content never fetched) | nerdctl #3425, #3509, containerd#8973 |
//! | `convert-time`          | the failure is inside `failed to create a tmp … image`                   | nerdctl #3415, #827     |
//! | `unknown`               | anything else; the facts are still reported                              |                         |

use super::log::{Context, Event, Fact, Level, LogFacts};
use crate::programs::push::Variant;
use pushrace_models::converter::reduced_index_of;
use pushrace_models::oci::{self, ImageFixture, Role, RoleKind};
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    TmpReducedCollected,
    LazyPull,
    ConvertTime,
    Unknown,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::TmpReducedCollected => "tmp-reduced-collected",
            Family::LazyPull => "lazy-pull",
            Family::ConvertTime => "convert-time",
            Family::Unknown => "unknown",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Family::TmpReducedCollected => {
                "tmp reduced-platform image collected during push (nerdctl #855, #3513, #4470)"
            }
            Family::LazyPull => {
                "content of a platform that was never fetched (lazy pull: nerdctl #3425, #3509, containerd#8973)"
            }
            Family::ConvertTime => {
                "failure while creating the tmp reduced-platform image (convert time: nerdctl #3415, #827)"
            }
            Family::Unknown => "unknown: no known family matches",
        }
    }
}

/// What a digest is in the image given with `--image`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Identified {
    pub digest: String,
    /// `reduced-index`, `index`, `manifest`, `config`, `layer`.
    pub kind: RoleKind,
    /// "layer 0 of linux/arm64 of example.com/app:1".
    pub what: String,
    pub platform: Option<String>,
}

/// Names `digest` within `fx`, whose pushes reduce it to `pushed`.
pub fn identify(fx: &ImageFixture, digest: &str, pushed: &[String]) -> Option<Identified> {
    if let Some(b) = fx.find(digest) {
        let platform = match &b.role {
            Role::Index => None,
            Role::Manifest { platform }
            | Role::Config { platform }
            | Role::Layer { platform, .. } => Some(platform.clone()),
        };
        return Some(Identified {
            digest: digest.to_string(),
            kind: b.role.kind(),
            what: format!("{} of {}", b.role, fx.reference),
            platform,
        });
    }
    let mut candidates = vec![pushed.to_vec()];
    candidates.extend(fx.platforms.iter().map(|p| vec![p.platform.clone()]));
    for set in candidates {
        if reduced_index_of(fx, &set).is_some_and(|r| r.as_str() == digest) {
            return Some(Identified {
                digest: digest.to_string(),
                kind: RoleKind::ReducedIndex,
                what: format!(
                    "reduced index of {} ({}) as the model's converter writes it",
                    fx.reference,
                    set.join(", ")
                ),
                platform: None,
            });
        }
    }
    None
}

/// The verdict of the classifier with everything it used.
#[derive(Clone, Debug, Serialize)]
pub struct Classification {
    pub family: Family,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
    /// The failure classified (the first fatal one).
    pub failure: Option<Event>,
    /// Other failure lines in the log.
    pub other_failures: usize,
    /// The info line paired with the failure.
    pub reduced: Option<Event>,
    pub missing: Option<String>,
    pub identified: Option<Identified>,
    pub nerdctl_version: Option<String>,
    pub variant: Variant,
    pub variant_source: String,
    pub reference: String,
    pub reference_source: String,
    pub platforms: Vec<String>,
    pub platforms_source: String,
}

/// nerdctl release -> the push variant it runs (nerdctl-push-history.md).
pub fn variant_of_version(v: &str) -> Option<Variant> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|x| x.parse::<u32>());
    let (major, minor, patch) = (
        it.next()?.ok()?,
        it.next().unwrap_or(Ok(0)).ok()?,
        it.next().unwrap_or(Ok(0)).ok()?,
    );
    Some(match (major, minor, patch) {
        (0, m, _) if m < 18 => Variant::V0_17,
        (0 | 1, _, _) => Variant::V0_18,
        (2, 0, p) if p < 5 => Variant::V2_0_4,
        _ => Variant::V2_0_5,
    })
}

fn strip_tmp(name: &str) -> Option<&str> {
    name.strip_suffix("-tmp-reduced-platform")
        .filter(|r| !r.is_empty())
}

pub fn classify(
    facts: &LogFacts,
    image: Option<&ImageFixture>,
    variant: Option<Variant>,
) -> Classification {
    let mut reasons = Vec::new();
    let mut failures: Vec<&Event> = facts.failures().collect();
    failures.sort_by_key(|e| {
        (
            e.level != Some(Level::Fatal),
            !matches!(e.fact, Fact::MissingDigest { .. }),
            e.line,
        )
    });
    let failure = failures.first().copied().cloned();
    let other_failures = failures.len().saturating_sub(1);
    let missing = failure.as_ref().and_then(|f| match &f.fact {
        Fact::MissingDigest { digest, .. } => Some(digest.clone()),
        _ => None,
    });
    let context = failure.as_ref().and_then(|f| match &f.fact {
        Fact::MissingDigest { context, .. }
        | Fact::ImageNotFound { context, .. }
        | Fact::CreateTmpFailed { context, .. } => Some(context.clone()),
        _ => None,
    });

    // The info line: the one naming the missing digest, else the same test's last one before the
    // failure, else the last one before it.
    let infos: Vec<&Event> = facts
        .events
        .iter()
        .filter(|e| matches!(e.fact, Fact::Reduced { .. }))
        .collect();
    let reduced = failure.as_ref().and_then(|f| {
        let before = |e: &&&Event| e.line <= f.line;
        infos
            .iter()
            .find(|e| matches!(&e.fact, Fact::Reduced { digest, .. } if Some(digest) == missing.as_ref()))
            .or_else(|| infos.iter().filter(before).rfind(|e| e.test.is_some() && e.test == f.test))
            .or_else(|| infos.iter().rfind(before))
            .map(|e| (*e).clone())
    });

    // Reference and platforms.
    let same_test = |e: &&Event| {
        failure
            .as_ref()
            .is_none_or(|f| f.test.is_none() || e.test == f.test)
    };
    let command = facts
        .events
        .iter()
        .filter(|e| matches!(e.fact, Fact::PushCommand { .. }))
        .filter(same_test)
        .rfind(|e| failure.as_ref().is_none_or(|f| e.line <= f.line));
    let (mut reference, mut reference_source) = (None, String::new());
    if let Some(Context::CreateTmp { tmp, .. }) = &context {
        if let Some(r) = strip_tmp(tmp) {
            reference = Some(r.to_string());
            reference_source = "the tmp image name in the failure".into();
        }
    }
    if reference.is_none() {
        if let Some(Event {
            fact: Fact::PushCommand { reference: r, .. },
            line,
            ..
        }) = command
        {
            reference = Some(r.clone());
            reference_source = format!("the push command at line {line}");
        }
    }
    if reference.is_none() {
        if let Some(Event {
            fact: Fact::ImageNotFound { name, .. },
            ..
        }) = &failure
        {
            if let Some(r) = strip_tmp(name) {
                reference = Some(r.to_string());
                reference_source = "the tmp image name in the failure".into();
            }
        }
    }
    let reference = reference.unwrap_or_else(|| {
        reference_source = "not in the log; a placeholder".into();
        "example.com/app:1".to_string()
    });
    let (mut platforms, mut platforms_source) = (Vec::new(), String::new());
    if let Some(Context::CreateTmp {
        platforms: Some(p), ..
    }) = &context
    {
        platforms = p.clone();
        platforms_source = "the failure's (platform=…)".into();
    }
    if platforms.is_empty() {
        if let Some(Event {
            fact: Fact::PushCommand {
                platforms: Some(p), ..
            },
            line,
            ..
        }) = command
        {
            platforms = p.clone();
            platforms_source = format!("--platform of the push command at line {line}");
        }
    }
    if platforms.is_empty() {
        let host = "linux/amd64".to_string();
        platforms = match image {
            Some(fx) if fx.platform(&host).is_none() => vec![fx.platforms[0].platform.clone()],
            _ => vec![host],
        };
        platforms_source = "not in the log; nerdctl's default is the host platform, assumed".into();
    }
    platforms.retain(|p| oci::parse_platform(p).is_ok());
    // `--platform=linux/amd64,linux/amd64` pushes linux/amd64 once.
    let mut seen = std::collections::BTreeSet::new();
    platforms.retain(|p| seen.insert(p.clone()));
    if platforms.is_empty() {
        platforms.push("linux/amd64".into());
    }

    // Variant.
    let nerdctl_version = facts.version().map(str::to_string);
    let (variant, variant_source) = match (variant, nerdctl_version.as_deref().and_then(variant_of_version)) {
        (Some(v), _) => (v, "--variant".to_string()),
        (None, Some(v)) => (v, format!("nerdctl version {} in the log", nerdctl_version.as_deref().unwrap_or(""))),
        (None, None) => (Variant::V2_0_5, "no nerdctl version in the log: assumed the current release's push (v2.0.5); pass --variant to choose".to_string()),
    };

    let identified = match (image, &missing) {
        (Some(fx), Some(d)) => identify(fx, d, &platforms),
        _ => None,
    };

    let family = match (&failure, &missing) {
        (None, _) => {
            reasons.push("no push failure line found (content digest …: not found, image \"…\": not found, failed to create a tmp … image)".into());
            Family::Unknown
        }
        (Some(f), Some(d)) => {
            let info = reduced.as_ref().and_then(|r| match &r.fact {
                Fact::Reduced { media_type, digest } => {
                    Some((r.line, media_type.clone(), digest.clone()))
                }
                _ => None,
            });
            match (&info, &identified) {
                (Some((line, mt, digest)), _) if digest == d && oci::is_index(mt) => {
                    reasons.push(format!("the missing digest {d} (line {}) is the reduced index nerdctl logged at line {line} ({mt})", f.line));
                    reasons.push("the reduced index is written by the push's own conversion and referenced only by the tmp image: a GC that runs after another push deletes that tmp image collects it".into());
                    Family::TmpReducedCollected
                }
                (Some((line, mt, digest)), _) if digest == d => {
                    reasons.push(format!("the missing digest is the tmp image's target logged at line {line}, but its media type {mt} is a manifest: the image has one platform and nothing was reduced, so this is the image's own manifest going missing"));
                    Family::Unknown
                }
                (_, Some(id)) if id.kind == RoleKind::ReducedIndex => {
                    reasons.push(format!("with --image: {d} is the {}", id.what));
                    Family::TmpReducedCollected
                }
                (_, Some(id)) if id.platform.is_some() => {
                    reasons.push(format!("with --image: {d} is the {}", id.what));
                    reasons.push(format!("the source image references it, so its content was never fetched (or was removed): pushing {} needs every blob of that platform", id.platform.as_deref().unwrap_or("")));
                    Family::LazyPull
                }
                (_, Some(id)) => {
                    reasons.push(format!(
                        "with --image: {d} is the {}: the source image itself lost its index",
                        id.what
                    ));
                    Family::Unknown
                }
                (_, None) => {
                    if let Some((line, _, digest)) = &info {
                        reasons.push(format!("the missing digest is not the reduced index logged at line {line} ({digest})"));
                    }
                    if image.is_some() {
                        reasons.push(format!("with --image: {d} is not a blob of the layout nor its reduced index for {}", platforms.join(", ")));
                    }
                    if let Some(Context::CreateTmp { tmp, .. }) = &context {
                        reasons.push(format!("it failed while creating the tmp image {tmp:?}: the converter reads only the source image's index, manifests, configs and layers, so source content was missing at convert time"));
                        if image.is_none() {
                            reasons.push("pass --image to tell whether the digest belongs to a platform that was never fetched (lazy-pull family)".into());
                        }
                        Family::ConvertTime
                    } else {
                        Family::Unknown
                    }
                }
            }
        }
        (Some(f), None) => match (&f.fact, &context) {
            (_, Some(Context::CreateTmp { tmp, .. })) => {
                reasons.push(format!(
                    "line {}: creating the tmp image {tmp:?} failed: {}",
                    f.line, f.message
                ));
                if matches!(f.fact, Fact::ImageNotFound { .. }) {
                    reasons.push("the tmp image vanished while it was being converted: another push of the same ref deleted the shared tmp name".into());
                }
                Family::ConvertTime
            }
            (Fact::ImageNotFound { name, .. }, _) if strip_tmp(name).is_some() => {
                reasons.push(format!("line {}: the tmp image {name:?} was deleted before the push read it (another push sharing the tmp name; the same race as #855 with a different symptom, not a missing digest)", f.line));
                Family::Unknown
            }
            _ => {
                reasons.push(format!("line {}: {}", f.line, f.message));
                Family::Unknown
            }
        },
    };
    Classification {
        family,
        reasons,
        failure,
        other_failures,
        reduced,
        missing,
        identified,
        nerdctl_version,
        variant,
        variant_source,
        reference,
        reference_source,
        platforms,
        platforms_source,
    }
}
