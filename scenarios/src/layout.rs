//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`, `index.json` and
//! `blobs/<alg>/<hex>`, read with oci-spec, every blob's digest and size verified, and turned into
//! an [`ImageFixture`] so a real image's structure can be a scenario fixture
//! (`[[image]] layout = "dir"`). Every problem is a [`LayoutError`] naming the file and what is
//! wrong; nothing in a layout can make the loader panic.
//!
//! [`write`] does the reverse for a fixture, so a test (or a person) can start from a directory.

use oci_spec::image::{self as oci, ImageIndex, ImageManifest, MediaType};
use pushrace_models::digest::{self, Digest};
use pushrace_models::limits::{read_regular, MAX_BLOB_BYTES, MAX_FILE_BYTES, MAX_PLATFORMS};
use pushrace_models::oci::{child_labels, Blob, ImageFixture, PlatformImage, Role};
use pushrace_models::{Bytes, Descriptor, Labels};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `path: message`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LayoutError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for LayoutError {}

/// The annotation on an `index.json` entry naming the image (image-spec annotations.md).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Index and manifest-list media types (OCI and Docker schema 2).
const INDEXES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFESTS: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const CONFIGS: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    // BuildKit attestation manifests use the OCI config type; signatures use these.
    "application/vnd.oci.empty.v1+json",
];
const LAYERS: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    // BuildKit provenance/SBOM attestations (platform unknown/unknown).
    "application/vnd.in-toto+json",
];

/// What a verified blob is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Index,
    Manifest,
    Config,
    Layer,
}

fn kind_of(media_type: &str) -> Option<Kind> {
    if INDEXES.contains(&media_type) {
        Some(Kind::Index)
    } else if MANIFESTS.contains(&media_type) {
        Some(Kind::Manifest)
    } else if CONFIGS.contains(&media_type) {
        Some(Kind::Config)
    } else if LAYERS.contains(&media_type) {
        Some(Kind::Layer)
    } else {
        None
    }
}

/// One verified blob.
#[derive(Clone, Debug)]
pub struct LayoutBlob {
    pub media_type: String,
    pub kind: Kind,
    pub data: Bytes,
    /// `blobs/sha256/<hex>`, relative to the layout directory.
    pub file: String,
}

/// A loaded, verified layout.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    /// `index.json`'s entries: (descriptor, ref name annotation).
    pub entries: Vec<(Descriptor, Option<String>)>,
    /// Every blob reachable from `index.json`, by digest.
    pub blobs: BTreeMap<String, LayoutBlob>,
}

struct Loader<'a> {
    dir: &'a Path,
    /// `dir` with every symlink resolved: no file read may resolve outside it.
    root: PathBuf,
}

impl Loader<'_> {
    fn err(&self, file: &str, message: impl Into<String>) -> LayoutError {
        LayoutError {
            file: self.dir.join(file).display().to_string(),
            message: message.into(),
        }
    }

    /// Reads `file` (at most `max` bytes, a regular file whose real path is inside the layout).
    fn read(&self, file: &str, what: &str, max: u64) -> Result<Vec<u8>, LayoutError> {
        let real = std::fs::canonicalize(self.dir.join(file)).map_err(|e| {
            self.err(
                file,
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("missing ({what})")
                } else {
                    format!("cannot read {what}: {e}")
                },
            )
        })?;
        if !real.starts_with(&self.root) {
            return Err(self.err(
                file,
                format!(
                    "a symlink out of the layout (to {}): refused",
                    real.display()
                ),
            ));
        }
        read_regular(&real, max).map_err(|e| self.err(file, format!("cannot read {what}: {e}")))
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        file: &str,
        data: &[u8],
        what: &str,
    ) -> Result<T, LayoutError> {
        serde_json::from_slice(data)
            .map_err(|e| self.err(file, format!("malformed JSON for {what}: {e}")))
    }
}

fn blob_file(d: &str) -> Option<String> {
    let (alg, hex) = d.split_once(':')?;
    Some(format!("blobs/{alg}/{hex}"))
}

/// Reads and verifies the layout at `dir`.
pub fn load(dir: &Path) -> Result<Layout, LayoutError> {
    let root =
        match std::fs::canonicalize(dir) {
            Ok(r) if r.is_dir() => r,
            _ => return Err(LayoutError {
                file: dir.display().to_string(),
                message:
                    "not a directory (expected an OCI image layout: oci-layout, index.json, blobs/)"
                        .into(),
            }),
        };
    let l = Loader { dir, root };
    let marker = l.read(
        "oci-layout",
        "an OCI image layout has an `oci-layout` file with {\"imageLayoutVersion\": \"1.0.0\"}",
        MAX_FILE_BYTES,
    )?;
    let marker: serde_json::Value = l.json("oci-layout", &marker, "the oci-layout marker")?;
    match marker.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(v) if v.starts_with("1.") => {}
        Some(v) => {
            return Err(l.err(
                "oci-layout",
                format!("imageLayoutVersion {v:?}: expected \"1.0.0\""),
            ))
        }
        None => {
            return Err(l.err(
                "oci-layout",
                "no string `imageLayoutVersion` (expected {\"imageLayoutVersion\": \"1.0.0\"})",
            ))
        }
    }
    let index = l.read("index.json", "the layout's entry point", MAX_FILE_BYTES)?;
    let index: ImageIndex = l.json("index.json", &index, "an OCI image index")?;
    check_count(
        &l,
        "index.json",
        "entries",
        index.manifests().len(),
        MAX_PLATFORMS,
    )?;
    let mut layout = Layout {
        dir: dir.to_path_buf(),
        entries: Vec::new(),
        blobs: BTreeMap::new(),
    };
    for (i, m) in index.manifests().iter().enumerate() {
        let d = descriptor(m);
        let name = m
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned());
        let at = format!("index.json entry {i}");
        visit(&l, &mut layout, &d, &at, 0)?;
        layout.entries.push((d, name));
    }
    if layout.entries.is_empty() {
        return Err(l.err("index.json", "no manifests: the layout holds no image"));
    }
    // Every other file under blobs/ is verified too: a corrupt unreferenced blob is still a
    // corrupt layout.
    let blobs = dir.join("blobs");
    let mut algs: Vec<_> = std::fs::read_dir(&blobs)
        .map_err(|e| l.err("blobs", format!("cannot list: {e}")))?
        .filter_map(|e| e.ok())
        .collect();
    algs.sort_by_key(|e| e.file_name());
    for alg in algs {
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        if !alg.path().is_dir() {
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(alg.path())
            .map_err(|e| l.err(&format!("blobs/{alg_name}"), format!("cannot list: {e}")))?
            .filter_map(|e| e.ok())
            .collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let hex = f.file_name().to_string_lossy().into_owned();
            let d = format!("{alg_name}:{hex}");
            if layout.blobs.contains_key(&d) {
                continue;
            }
            let file = format!("blobs/{alg_name}/{hex}");
            if let Err(e) = digest::validate(&d) {
                return Err(l.err(&file, format!("not a blob name: {d:?}: {e}")));
            }
            if alg_name != "sha256" {
                return Err(l.err(
                    &file,
                    format!("unsupported digest algorithm {alg_name:?} (only sha256 is verified)"),
                ));
            }
            let data = l.read(&file, "a blob", MAX_BLOB_BYTES)?;
            let got = Digest::of(&data);
            if got.as_str() != d {
                return Err(l.err(
                    &file,
                    format!("digest mismatch: the content hashes to {got}"),
                ));
            }
        }
    }
    Ok(layout)
}

/// The most layers one manifest of a layout may list (real images stay below overlayfs' 128).
pub const MAX_LAYOUT_LAYERS: usize = 128;

fn check_count(
    l: &Loader,
    file: &str,
    what: &str,
    n: usize,
    max: usize,
) -> Result<(), LayoutError> {
    if n > max {
        return Err(l.err(file, format!("{n} {what}: at most {max}")));
    }
    Ok(())
}

fn descriptor(m: &oci::Descriptor) -> Descriptor {
    Descriptor {
        media_type: m.media_type().to_string(),
        digest: m.digest().to_string(),
        size: i64::try_from(m.size()).unwrap_or(i64::MAX),
    }
}

/// Reads, verifies and records `d` and (for indexes and manifests) its children.
fn visit(
    l: &Loader,
    layout: &mut Layout,
    d: &Descriptor,
    at: &str,
    depth: usize,
) -> Result<(), LayoutError> {
    if depth > 8 {
        return Err(l.err("index.json", format!("{at}: indexes nested deeper than 8")));
    }
    if let Err(e) = digest::validate(&d.digest) {
        return Err(l.err(
            "index.json",
            format!("{at}: bad digest {:?}: {e}", d.digest),
        ));
    }
    let file = blob_file(&d.digest).unwrap_or_default();
    let Some(kind) = kind_of(&d.media_type) else {
        return Err(l.err(
            &file,
            format!(
                "unknown media type {:?} ({at}); expected an OCI or Docker index, manifest, config or layer type",
                d.media_type
            ),
        ));
    };
    if let Some(b) = layout.blobs.get(&d.digest) {
        if b.media_type != d.media_type {
            return Err(l.err(
                &file,
                format!(
                    "{at} calls it {:?}, another descriptor {:?}",
                    d.media_type, b.media_type
                ),
            ));
        }
        return Ok(());
    }
    if !d.digest.starts_with("sha256:") {
        return Err(l.err(
            &file,
            format!(
                "{at}: unsupported digest algorithm in {:?} (only sha256 is verified)",
                d.digest
            ),
        ));
    }
    let max = if kind == Kind::Layer {
        MAX_BLOB_BYTES
    } else {
        MAX_FILE_BYTES
    };
    let data = l.read(&file, &format!("blob of {at}, {}", d.media_type), max)?;
    if data.len() as u64 != d.size.max(0) as u64 || d.size < 0 {
        return Err(l.err(
            &file,
            format!(
                "size mismatch: {at} says {} bytes, the file has {}",
                d.size,
                data.len()
            ),
        ));
    }
    let got = Digest::of(&data);
    if got.as_str() != d.digest {
        return Err(l.err(
            &file,
            format!(
                "digest mismatch: the content hashes to {got}, not {} ({at})",
                d.digest
            ),
        ));
    }
    let mut children = Vec::new();
    match kind {
        Kind::Index => {
            let index: ImageIndex = l.json(&file, &data, "an image index")?;
            check_count(
                l,
                &file,
                "manifests",
                index.manifests().len(),
                MAX_PLATFORMS,
            )?;
            for (i, m) in index.manifests().iter().enumerate() {
                children.push((descriptor(m), format!("manifest {i} of {}", d.digest), None));
            }
        }
        Kind::Manifest => {
            let manifest: ImageManifest = l.json(&file, &data, "an image manifest")?;
            check_count(
                l,
                &file,
                "layers",
                manifest.layers().len(),
                MAX_LAYOUT_LAYERS,
            )?;
            children.push((
                descriptor(manifest.config()),
                format!("config of {}", d.digest),
                Some(Kind::Config),
            ));
            for (i, x) in manifest.layers().iter().enumerate() {
                children.push((
                    descriptor(x),
                    format!("layer {i} of {}", d.digest),
                    Some(Kind::Layer),
                ));
            }
        }
        Kind::Config => {
            let _: serde_json::Value = l.json(&file, &data, "an image config")?;
        }
        Kind::Layer => {}
    }
    layout.blobs.insert(
        d.digest.clone(),
        LayoutBlob {
            media_type: d.media_type.clone(),
            kind,
            data: Bytes::from(data),
            file: file.clone(),
        },
    );
    for (c, cat, want) in children {
        if let (Some(want), Some(k)) = (want, kind_of(&c.media_type)) {
            if k != want {
                return Err(l.err(
                    &file,
                    format!(
                        "{cat} has media type {:?}, not a {want:?} type",
                        c.media_type
                    ),
                ));
            }
        }
        visit(l, layout, &c, &cat, depth + 1)?;
    }
    Ok(())
}

impl Layout {
    fn err(&self, file: &str, message: impl Into<String>) -> LayoutError {
        LayoutError {
            file: self.dir.join(file).display().to_string(),
            message: message.into(),
        }
    }

    /// The multi-platform image of the layout called `reference`: the `index.json` entry whose
    /// ref name is the reference (or its tag), else the only entry.
    pub fn image(&self, reference: &str) -> Result<ImageFixture, LayoutError> {
        let tag = reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        let named: Vec<&(Descriptor, Option<String>)> = self
            .entries
            .iter()
            .filter(|(_, n)| {
                n.as_deref() == Some(reference) || (tag.is_some() && n.as_deref() == tag)
            })
            .collect();
        let entry = match (named.as_slice(), self.entries.as_slice()) {
            ([e], _) => *e,
            ([], [e]) => e,
            _ => {
                let names: Vec<String> = self
                    .entries
                    .iter()
                    .map(|(d, n)| n.clone().unwrap_or_else(|| d.digest.clone()))
                    .collect();
                return Err(self.err("index.json", format!("{} entries and none (or several) named {reference:?} by {REF_NAME}: {names:?}", self.entries.len())));
            }
        };
        let d = &entry.0;
        let lb = &self.blobs[&d.digest];
        if lb.kind != Kind::Index {
            return Err(self.err(&lb.file, format!("the image is a single {} ({}), not a multi-platform index: nerdctl pushes it without a reduced index, so it cannot be a push-race fixture", d.media_type, d.digest)));
        }
        let index: ImageIndex = serde_json::from_slice(&lb.data)
            .map_err(|e| self.err(&lb.file, format!("malformed JSON: {e}")))?;
        let mut platforms = Vec::new();
        for (i, m) in index.manifests().iter().enumerate() {
            let md = descriptor(m);
            let mb = &self.blobs[&md.digest];
            if mb.kind != Kind::Manifest {
                return Err(self.err(&mb.file, format!("manifest {i} of the index is a {} : nested indexes are not supported as fixtures", md.media_type)));
            }
            let platform = match m.platform() {
                Some(p) => pushrace_models::oci::platform_string(p),
                None => {
                    return Err(self.err(
                        &lb.file,
                        format!("manifest {i} ({}) has no platform", md.digest),
                    ))
                }
            };
            if pushrace_models::oci::parse_platform(&platform).is_err() {
                return Err(self.err(
                    &lb.file,
                    format!("manifest {i}: invalid platform {platform:?}"),
                ));
            }
            // BuildKit writes one attestation manifest per platform, each `unknown/unknown`: those
            // may repeat (no push selects them by platform); every real platform must be distinct.
            let attestation = platform == "unknown/unknown";
            if let Some(j) = platforms
                .iter()
                .position(|p: &PlatformImage| p.platform == platform && !attestation)
            {
                return Err(self.err(
                    &lb.file,
                    format!("manifests {j} and {i} are both {platform:?}: a fixture's platforms must be distinct (as in a scenario file)"),
                ));
            }
            let manifest: ImageManifest = serde_json::from_slice(&mb.data)
                .map_err(|e| self.err(&mb.file, format!("malformed JSON: {e}")))?;
            let cd = descriptor(manifest.config());
            let config = self.blob(
                &cd,
                Role::Config {
                    platform: platform.clone(),
                },
            );
            let layers: Vec<Blob> = manifest
                .layers()
                .iter()
                .enumerate()
                .map(|(n, x)| {
                    self.blob(
                        &descriptor(x),
                        Role::Layer {
                            platform: platform.clone(),
                            n,
                        },
                    )
                })
                .collect();
            let mut manifest = self.blob(
                &md,
                Role::Manifest {
                    platform: platform.clone(),
                },
            );
            manifest.child_labels = child_labels(std::iter::once(&config).chain(&layers));
            platforms.push(PlatformImage {
                platform,
                manifest,
                config,
                layers,
            });
        }
        if platforms.is_empty() {
            return Err(self.err(&lb.file, "the index lists no manifests"));
        }
        let mut index = self.blob(d, Role::Index);
        index.child_labels = child_labels(platforms.iter().map(|p| &p.manifest));
        Ok(ImageFixture {
            reference: reference.to_string(),
            index,
            platforms,
        })
    }

    fn blob(&self, d: &Descriptor, role: Role) -> Blob {
        Blob {
            descriptor: d.clone(),
            data: self.blobs[&d.digest].data.clone(),
            role,
            child_labels: Labels::new(),
        }
    }

    /// The file a digest is stored in, when the layout has it.
    pub fn file_of(&self, digest: &str) -> Option<PathBuf> {
        self.blobs.get(digest).map(|b| self.dir.join(&b.file))
    }
}

/// Loads `dir` and returns its image called `reference`.
pub fn load_fixture(dir: &Path, reference: &str) -> Result<ImageFixture, LayoutError> {
    load(dir)?.image(reference)
}

/// Writes `fixture` as an OCI image layout in `dir` (created if needed): `oci-layout`,
/// `index.json` with one entry named by the fixture's reference, and one file per blob.
pub fn write(fixture: &ImageFixture, dir: &Path) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| io(&blobs, e))?;
    for b in fixture.blobs() {
        let hex = b.digest().trim_start_matches("sha256:");
        let p = blobs.join(hex);
        std::fs::write(&p, &b.data[..]).map_err(|e| io(&p, e))?;
    }
    let d = &fixture.index.descriptor;
    let mut entry = oci::Descriptor::new(
        MediaType::from(d.media_type.as_str()),
        d.size.max(0) as u64,
        oci::Digest::from_str(&d.digest).map_err(|e| e.to_string())?,
    );
    entry.set_annotations(Some(
        [(REF_NAME.to_string(), fixture.reference.clone())]
            .into_iter()
            .collect(),
    ));
    let index = oci::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(|e| e.to_string())?;
    let p = dir.join("index.json");
    std::fs::write(&p, serde_json::to_vec(&index).map_err(|e| e.to_string())?)
        .map_err(|e| io(&p, e))?;
    let p = dir.join("oci-layout");
    std::fs::write(&p, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| io(&p, e))?;
    Ok(())
}

/// `[[image]] layout = "dir"` in the scenario file `file`: `dir` relative to the file's directory
/// (to the current directory for a built-in or stdin), loaded as the image `reference`.
pub fn fixture_for_scenario(
    file: &str,
    dir: &str,
    reference: &str,
) -> Result<ImageFixture, String> {
    if dir.is_empty() {
        return Err("must not be empty".into());
    }
    let base = if !crate::scenario::Source::from_label(file).is_file() || file == "-" {
        PathBuf::from(".")
    } else {
        Path::new(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let path = contained_layout_path(&base, dir)?;
    load_fixture(&path, reference).map_err(|e| e.to_string())
}

/// Where `layout = dir` points: an absolute `dir` only as written out (its own real path: no
/// `..`, no symlink), a relative one only inside `base` (the scenario file's directory) once
/// symlinks are resolved.
fn contained_layout_path(base: &Path, dir: &str) -> Result<PathBuf, String> {
    let given = Path::new(dir);
    let path = base.join(given);
    // A path that does not resolve is left to `load`, which says it is not a layout.
    let Ok(real) = std::fs::canonicalize(&path) else {
        return Ok(path);
    };
    if given.is_absolute() {
        if real != given {
            return Err(format!(
                "{dir:?}: an absolute layout path must be written out (its real path is {})",
                real.display()
            ));
        }
        return Ok(real);
    }
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = std::fs::canonicalize(base).map_err(|e| format!("{}: {e}", base.display()))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "{dir:?} leads out of the scenario's directory {} (to {}); write an absolute path to use a layout elsewhere",
            base.display(),
            real.display()
        ));
    }
    Ok(path)
}
