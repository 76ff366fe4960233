//! The store's observable state in the `pushrace apply --json` shape, shared with the real-daemon
//! dump so the two compare with `==`. Namespaces without any object are left out (containerd keeps
//! an empty namespace bucket around after its last object goes; that is not store content).

use crate::leases::Resource;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub blobs: Vec<String>,
    pub namespaces: BTreeMap<String, NamespaceState>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct NamespaceState {
    pub content: BTreeMap<String, ContentState>,
    pub images: BTreeMap<String, ImageState>,
    pub ingests: BTreeMap<String, IngestState>,
    pub leases: BTreeMap<String, LeaseState>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ContentState {
    pub labels: BTreeMap<String, String>,
    pub size: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ImageState {
    pub labels: BTreeMap<String, String>,
    pub media_type: String,
    pub target: String,
}

/// An ingest as `ListStatuses` shows it. containerd 1.6.20 reports `expected` as "" for every
/// ingest (the backend writer is opened without the digest), and an ingest with no backend ingest
/// (a shared one that wrote nothing, or one whose backend commit went through before its metadata
/// transaction failed) is not listed at all (daemon/PROBES.md). The dump shows what a client can
/// observe.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct IngestState {
    pub expected: String,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct LeaseState {
    pub labels: BTreeMap<String, String>,
    pub resources: Vec<ResourceState>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ResourceState {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A lease resource as the dump lists it (also what the real daemon's `ListResources` answers).
impl From<&Resource> for ResourceState {
    fn from(r: &Resource) -> ResourceState {
        ResourceState {
            id: r.id().to_string(),
            kind: r.type_name().to_string(),
        }
    }
}

impl Store {
    pub fn state(&self) -> State {
        let mut namespaces = BTreeMap::new();
        for (name, n) in &self.namespaces {
            if n.is_empty() {
                continue;
            }
            let ns = NamespaceState {
                content: n
                    .content
                    .iter()
                    .map(|(d, r)| {
                        (
                            d.to_string(),
                            ContentState {
                                labels: r.labels.clone(),
                                size: r.size,
                            },
                        )
                    })
                    .collect(),
                images: n
                    .images
                    .iter()
                    .map(|(k, i)| {
                        let s = ImageState {
                            labels: i.labels.clone(),
                            media_type: i.target.media_type.clone(),
                            target: i.target.digest.clone(),
                        };
                        (k.clone(), s)
                    })
                    .collect(),
                ingests: n
                    .ingests
                    .iter()
                    // metadata ListStatuses skips a ref whose backend ingest is missing.
                    .filter(|(r, _)| {
                        self.backend_ingests
                            .contains_key(&crate::store::backend_ref(name, r))
                    })
                    .map(|(r, _)| {
                        (
                            r.clone(),
                            IngestState {
                                expected: String::new(),
                            },
                        )
                    })
                    .collect(),
                leases: n
                    .leases
                    .iter()
                    .map(|(id, l)| {
                        let resources = l.resources().iter().map(ResourceState::from).collect();
                        (
                            id.clone(),
                            LeaseState {
                                labels: l.labels.clone(),
                                resources,
                            },
                        )
                    })
                    .collect(),
            };
            // PROBES.md 8: a namespace whose content, images, leases and *visible* ingests are
            // all empty is omitted; a namespace holding only shared ingests (invisible to
            // ListStatuses) looks empty to a client.
            if ns.content.is_empty()
                && ns.images.is_empty()
                && ns.ingests.is_empty()
                && ns.leases.is_empty()
            {
                continue;
            }
            namespaces.insert(name.clone(), ns);
        }
        State {
            blobs: self.blobs.keys().map(|d| d.to_string()).collect(),
            namespaces,
        }
    }
}

impl State {
    /// Readable text: one line per object, namespaces in order.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let labels = |l: &BTreeMap<String, String>| {
            if l.is_empty() {
                String::new()
            } else {
                format!(
                    " {}",
                    l.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        };
        for (name, n) in &self.namespaces {
            let _ = writeln!(out, "namespace {name}");
            for (d, c) in &n.content {
                let _ = writeln!(out, "  content {d} size={}{}", c.size, labels(&c.labels));
            }
            for (k, i) in &n.images {
                let _ = writeln!(
                    out,
                    "  image {k} -> {} ({}){}",
                    i.target,
                    i.media_type,
                    labels(&i.labels)
                );
            }
            for r in n.ingests.keys() {
                let _ = writeln!(out, "  ingest {r}");
            }
            for (id, l) in &n.leases {
                let res: Vec<String> = l
                    .resources
                    .iter()
                    .map(|r| format!("{}:{}", r.kind, r.id))
                    .collect();
                let _ = writeln!(
                    out,
                    "  lease {id}{} resources=[{}]",
                    labels(&l.labels),
                    res.join(", ")
                );
            }
        }
        let _ = writeln!(out, "blobs ({}):", self.blobs.len());
        for b in &self.blobs {
            let _ = writeln!(out, "  {b}");
        }
        out
    }
}
