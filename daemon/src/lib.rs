//! pushrace-daemon: a private containerd 1.6 daemon ([`Daemon`]) and a typed gRPC client
//! ([`DaemonClient`]) for its content, image and lease stores, with a JSON dump of the whole
//! metadata state in the shape `pushrace apply --json` prints (see PROBES.md for what the real
//! daemon shows and how it differs from the semantics reference).
//!
//! The crate speaks the model's types (`pushrace_models::{Ctx, Digest, ContentInfo, Image, …}` and
//! the `state` dump); what it defines itself is only what the model has no word for.

mod backend;
mod client;
pub mod diff;
mod fresh;
pub mod interpose;
mod launcher;
mod registry;

// The model's operations on a daemon, and the virtual clock laid onto the real one.
pub use backend::{apply, DaemonBackend, VirtualClockMapping, DEFAULT_SCALE};
// The gRPC client and the daemon-only values it answers.
pub use client::{
    CdError, DaemonClient, IngestStatus, Lease, StateExt, WriteRequest, Written, WRITE_CHUNK,
};
// One run on fresh daemons, rerun at coarser clock scales until the mapping holds.
pub use fresh::{run_on_fresh_daemon, FreshRun, RERUN_FACTORS};
// The private daemon.
pub use launcher::{Daemon, LaunchError};
// The private registry real clients push to.
pub use registry::{Registry, REGISTRY_BIN};
