//! pushrace-models: containerd's metadata store (content, images, leases, GC) as plain data and
//! functions, following containerd 1.6/1.7/2.x source rule by rule.
//!
//! Start at [`Store`] and [`Store::apply`]; each concept has its own module, as in containerd's
//! `metadata` package: [`content`], [`images`], [`leases`], [`gc`], [`scheduler`]. Multi-call client
//! procedures (pull, the converter's platform reduction) are sans-IO [`program`]s.

pub mod clock;
pub mod content;
pub mod converter;
pub mod digest;
pub mod errors;
pub mod fasthash;
pub mod fingerprint;
pub mod gc;
pub mod images;
pub mod labels;
pub mod leases;
pub mod limits;
pub mod memo;
pub mod oci;
pub mod op;
pub mod opsfile;
pub mod program;
pub mod pull;
pub mod scheduler;
pub mod semantics;
pub mod state;
pub mod store;

pub use content::{ContentInfo, WriteStyle};
pub use digest::Digest;
pub use errors::{Error, ErrorKind};
pub use fingerprint::Fingerprint;
pub use labels::Labels;
pub use op::{Op, OpKind, Outcome};
pub use semantics::Semantics;
pub use store::{Bytes, Ctx, Descriptor, Image, Store};
