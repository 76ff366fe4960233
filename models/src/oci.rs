//! OCI image fixtures: a multi-platform image whose index, manifests, configs and layers are real
//! OCI JSON (built with oci-spec) with real sha256 digests, plus the labels containerd's pull puts
//! on each parent (images.SetChildrenMappedLabels / ChildGCLabels).

use crate::digest::Digest;
use crate::labels::{Labels, GC_REF_CONTENT};
use crate::store::{Bytes, Descriptor};
use oci_spec::image as oci;
use std::str::FromStr;

/// The platforms of a fixture image whose file names none (a scenario's `[[image]]`, an ops
/// file's `image.pull`): the one default of both formats.
pub const DEFAULT_PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// Layers per platform of a fixture image whose file gives none, in both formats (the range is
/// 0 to [`crate::limits::MAX_LAYERS`]).
pub const DEFAULT_LAYERS: usize = 1;

/// [`DEFAULT_PLATFORMS`] as owned strings.
pub fn default_platforms() -> Vec<String> {
    DEFAULT_PLATFORMS.iter().map(|p| p.to_string()).collect()
}

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX || media_type == MEDIA_DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// images.GetDiffID returns an uncompressed layer's digest without reading; any other layer needs
/// Info (for the `containerd.io/uncompressed` label) and, without that label, the bytes.
pub fn is_uncompressed_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar"
    )
}

/// What a blob is within its image, for messages ("layer 0 of linux/amd64").
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Role {
    Index,
    Manifest { platform: String },
    Config { platform: String },
    Layer { platform: String, n: usize },
}

/// What kind of object a digest is, as verdicts and scenario files name it (`missing =
/// "reduced-index"`): a blob's [`Role`] without its platform, or the reduced index the converter
/// writes from a push's platforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleKind {
    ReducedIndex,
    Index,
    Manifest,
    Config,
    Layer,
}

impl RoleKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [RoleKind; 5] = [
        RoleKind::ReducedIndex,
        RoleKind::Index,
        RoleKind::Manifest,
        RoleKind::Config,
        RoleKind::Layer,
    ];

    /// The name files and reports use.
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::ReducedIndex => "reduced-index",
            RoleKind::Index => "index",
            RoleKind::Manifest => "manifest",
            RoleKind::Config => "config",
            RoleKind::Layer => "layer",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<RoleKind> {
        RoleKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for RoleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Role {
    /// The role's kind (its platform left out).
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Index => RoleKind::Index,
            Role::Manifest { .. } => RoleKind::Manifest,
            Role::Config { .. } => RoleKind::Config,
            Role::Layer { .. } => RoleKind::Layer,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Index => write!(f, "index"),
            Role::Manifest { platform } => write!(f, "manifest of {platform}"),
            Role::Config { platform } => write!(f, "config of {platform}"),
            Role::Layer { platform, n } => write!(f, "layer {n} of {platform}"),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub data: Bytes,
    pub role: Role,
    /// The labels pull puts on this blob before fetching its children (empty for leaves).
    pub child_labels: Labels,
}

impl Blob {
    pub fn digest(&self) -> &str {
        &self.descriptor.digest
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlatformImage {
    pub platform: String,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

/// A multi-platform image as a registry would serve it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ImageFixture {
    pub reference: String,
    pub index: Blob,
    pub platforms: Vec<PlatformImage>,
}

fn blob(media_type: &str, data: Vec<u8>, role: Role) -> Blob {
    let digest = Digest::of(&data);
    Blob {
        descriptor: Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: data.len() as i64,
        },
        data: Bytes::from(data),
        role,
        child_labels: Labels::new(),
    }
}

fn oci_descriptor(
    b: &Blob,
    media: oci::MediaType,
    platform: Option<oci::Platform>,
) -> Result<oci::Descriptor, String> {
    let digest = oci::Digest::from_str(b.digest()).map_err(|e| e.to_string())?;
    let mut d = oci::Descriptor::new(media, b.descriptor.size as u64, digest);
    d.set_platform(platform);
    Ok(d)
}

/// Splits `os/arch[/variant]`.
pub fn parse_platform(p: &str) -> Result<(String, String, Option<String>), String> {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => {
            Ok((os.to_string(), arch.to_string(), None))
        }
        [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
            Ok((os.to_string(), arch.to_string(), Some(v.to_string())))
        }
        _ => Err(format!(
            "invalid platform {p:?}: expected os/arch or os/arch/variant, e.g. \"linux/amd64\""
        )),
    }
}

fn oci_platform(p: &str) -> Result<oci::Platform, String> {
    let (os, arch, variant) = parse_platform(p)?;
    let mut b = oci::PlatformBuilder::default()
        .os(oci::Os::from(os.as_str()))
        .architecture(oci::Arch::from(arch.as_str()));
    if let Some(v) = variant {
        b = b.variant(v);
    }
    b.build().map_err(|e| e.to_string())
}

/// Decodes an index or manifest blob as Go's encoding/json would into containerd's types: a `null`
/// list (`"manifests": null`, `"layers": null`, which Go writes for a nil slice) is an empty list.
/// oci-spec requires those lists, so the top-level nulls are replaced before decoding.
pub fn from_go_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes).or_else(|first| {
        let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
        let Some(o) = v.as_object_mut() else {
            return Err(first);
        };
        for key in ["manifests", "layers"] {
            if o.get(key).is_some_and(|x| x.is_null()) {
                o.insert(key.to_string(), serde_json::Value::Array(Vec::new()));
            }
        }
        serde_json::from_value(v)
    })
}

/// Whether an index entry's platform matches a user's platform specifier the way containerd 1.6
/// matches them for the converter (`platforms.Parse` + `NewMatcher`, platforms/platforms.go): both
/// sides are normalised first, so `linux/arm64/v8` matches an entry `linux/arm64`, `linux/arm`
/// matches `linux/arm/v7`, `linux/x86_64` matches `linux/amd64`.
pub fn platform_matches(specifier: &str, p: &oci::Platform) -> bool {
    let Ok((os, arch, variant)) = parse_platform(specifier) else {
        return false;
    };
    let want = normalize(&os, &arch, variant.as_deref().unwrap_or(""));
    let have = normalize(
        &p.os().to_string(),
        &p.architecture().to_string(),
        p.variant().as_deref().unwrap_or(""),
    );
    want == have
}

/// Whether two platform specifiers name the same platform after `platforms.Normalize`
/// (`linux/arm64/v8` = `linux/arm64`); an unparsable one matches nothing.
pub fn specifiers_match(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        parse_platform(s)
            .ok()
            .map(|(os, arch, v)| normalize(&os, &arch, v.as_deref().unwrap_or("")))
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

/// platforms.Normalize (platforms/database.go `normalizeOS`, `normalizeArch`).
fn normalize(os: &str, arch: &str, variant: &str) -> (String, String, String) {
    let os = match os.to_lowercase().as_str() {
        "" => "linux".to_string(), // runtime.GOOS of the daemon's client
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    };
    let (arch, variant) = (arch.to_lowercase(), variant.to_lowercase());
    let (arch, variant) = match arch.as_str() {
        "i386" => ("386".to_string(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".to_string(), v)
        }
        "aarch64" | "arm64" => {
            let v = if variant == "8" || variant == "v8" {
                String::new()
            } else {
                variant
            };
            ("arm64".to_string(), v)
        }
        "armhf" => ("arm".to_string(), "v7".to_string()),
        "armel" => ("arm".to_string(), "v6".to_string()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".to_string(), v)
        }
        _ => (arch, variant),
    };
    (os, arch, variant)
}

/// The platform string of an index entry, as `parse_platform` would accept it.
pub fn platform_string(p: &oci::Platform) -> String {
    match p.variant() {
        Some(v) => format!("{}/{}/{}", p.os(), p.architecture(), v),
        None => format!("{}/{}", p.os(), p.architecture()),
    }
}

fn to_json<T: serde::Serialize>(x: &T) -> Vec<u8> {
    serde_json::to_vec(x).expect("OCI types serialize")
}

impl ImageFixture {
    /// Builds the image deterministically from its reference: the same arguments always give the
    /// same bytes and digests, and different references never share a layer.
    pub fn build(
        reference: &str,
        platforms: &[String],
        layers: usize,
    ) -> Result<ImageFixture, String> {
        if platforms.is_empty() {
            return Err("an image needs at least one platform".into());
        }
        if platforms.len() > crate::limits::MAX_PLATFORMS {
            return Err(format!(
                "{} platforms: an image has at most {}",
                platforms.len(),
                crate::limits::MAX_PLATFORMS
            ));
        }
        if layers > crate::limits::MAX_LAYERS {
            return Err(format!(
                "{layers} layers: at most {} per platform",
                crate::limits::MAX_LAYERS
            ));
        }
        let mut per_platform = Vec::new();
        for p in platforms {
            let (os, arch, _) = parse_platform(p)?;
            let layer_blobs: Vec<Blob> = (0..layers)
                .map(|n| {
                    let data =
                        format!("pushrace fixture layer {n} of {reference} for {p}\n").into_bytes();
                    blob(
                        MEDIA_LAYER_GZIP,
                        data,
                        Role::Layer {
                            platform: p.clone(),
                            n,
                        },
                    )
                })
                .collect();
            let diff_ids: Vec<String> = layer_blobs
                .iter()
                .map(|l| uncompressed_digest(&l.data).to_string())
                .collect();
            let rootfs = oci::RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .map_err(|e| e.to_string())?;
            let config = oci::ImageConfigurationBuilder::default()
                .os(oci::Os::from(os.as_str()))
                .architecture(oci::Arch::from(arch.as_str()))
                .rootfs(rootfs)
                .build()
                .map_err(|e| e.to_string())?;
            let config = blob(
                MEDIA_CONFIG,
                to_json(&config),
                Role::Config {
                    platform: p.clone(),
                },
            );
            let layer_descs = layer_blobs
                .iter()
                .map(|l| oci_descriptor(l, oci::MediaType::ImageLayerGzip, None))
                .collect::<Result<Vec<_>, _>>()?;
            let manifest = oci::ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(oci::MediaType::ImageManifest)
                .config(oci_descriptor(&config, oci::MediaType::ImageConfig, None)?)
                .layers(layer_descs)
                .build()
                .map_err(|e| e.to_string())?;
            let mut manifest = blob(
                MEDIA_MANIFEST,
                to_json(&manifest),
                Role::Manifest {
                    platform: p.clone(),
                },
            );
            manifest.child_labels = child_labels(std::iter::once(&config).chain(&layer_blobs));
            per_platform.push(PlatformImage {
                platform: p.clone(),
                manifest,
                config,
                layers: layer_blobs,
            });
        }
        let manifests = per_platform
            .iter()
            .map(|pi| {
                oci_descriptor(
                    &pi.manifest,
                    oci::MediaType::ImageManifest,
                    Some(oci_platform(&pi.platform)?),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index = oci::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(oci::MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|e| e.to_string())?;
        let mut index = blob(MEDIA_INDEX, to_json(&index), Role::Index);
        index.child_labels = child_labels(per_platform.iter().map(|p| &p.manifest));
        Ok(ImageFixture {
            reference: reference.to_string(),
            index,
            platforms: per_platform,
        })
    }

    /// Every blob, parents before children (the order pull writes them).
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.index).chain(self.platforms.iter().flat_map(|p| {
            std::iter::once(&p.manifest)
                .chain(std::iter::once(&p.config))
                .chain(&p.layers)
        }))
    }

    pub fn find(&self, digest: &str) -> Option<&Blob> {
        self.blobs().find(|b| b.digest() == digest)
    }

    pub fn platform(&self, p: &str) -> Option<&PlatformImage> {
        self.platforms.iter().find(|x| x.platform == p)
    }
}

/// What unpack records as a layer's uncompressed digest. The fixture's layers are not real gzip,
/// so the "uncompressed" form is defined as the bytes with a prefix: deterministic and distinct.
pub fn uncompressed_digest(layer: &[u8]) -> Digest {
    let mut v = b"uncompressed:".to_vec();
    v.extend_from_slice(layer);
    Digest::of(&v)
}

/// images.ChildGCLabels: config -> `.config`, manifests -> `.m.<n>`, layers -> `.l.<n>`, others
/// -> `.<n>`, with `<n>` counted per prefix.
pub fn child_labels<'a>(children: impl Iterator<Item = &'a Blob>) -> Labels {
    let (mut m, mut l, mut o) = (0, 0, 0);
    let mut labels = Labels::new();
    for c in children {
        let key = match &c.role {
            Role::Config { .. } => format!("{GC_REF_CONTENT}.config"),
            Role::Manifest { .. } => {
                m += 1;
                format!("{GC_REF_CONTENT}.m.{}", m - 1)
            }
            // images/mediatypes.go ChildGCLabels: an index is neither config, manifest nor
            // layer, so it gets the generic `containerd.io/gc.ref.content.` prefix.
            Role::Index => {
                o += 1;
                format!("{GC_REF_CONTENT}.{}", o - 1)
            }
            Role::Layer { .. } => {
                l += 1;
                format!("{GC_REF_CONTENT}.l.{}", l - 1)
            }
        };
        labels.insert(key, c.digest().to_string());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str) -> oci::Platform {
        oci_platform(p).unwrap()
    }

    /// platforms/database.go `normalizeArch` on both sides of the converter's match.
    #[test]
    fn platform_specifiers_match_after_containerd_normalisation() {
        assert!(platform_matches("linux/arm64/v8", &entry("linux/arm64")));
        assert!(platform_matches("linux/arm64", &entry("linux/arm64/v8")));
        assert!(platform_matches("linux/arm", &entry("linux/arm/v7")));
        assert!(platform_matches("linux/armhf", &entry("linux/arm/v7")));
        assert!(platform_matches("linux/x86_64", &entry("linux/amd64")));
        assert!(platform_matches("Linux/AMD64", &entry("linux/amd64")));
        assert!(!platform_matches("linux/arm", &entry("linux/arm/v6")));
        assert!(!platform_matches("linux/arm64", &entry("linux/arm/v8")));
        assert!(!platform_matches("linux/amd64", &entry("windows/amd64")));
        assert!(!platform_matches("not a platform", &entry("linux/amd64")));
    }

    /// Go's json.Marshal writes a nil slice as `null`; decoding it back is an empty list.
    #[test]
    fn null_manifest_list_decodes_as_empty() {
        let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#;
        let index: oci::ImageIndex = from_go_json(json).unwrap();
        assert!(index.manifests().is_empty());
        assert!(from_go_json::<oci::ImageIndex>(b"[]").is_err());
    }
}
