use std::path::PathBuf;

use containerd_client::services::v1::version_client::VersionClient;
use tonic::transport::Channel;

/// Errors from the daemon, with containerd's message text exactly as the gRPC status carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdError {
    NotFound(String),
    AlreadyExists(String),
    FailedPrecondition(String),
    InvalidArgument(String),
    Unavailable(String),
    Other(String),
}

impl std::fmt::Display for CdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self)
    }
}
impl std::error::Error for CdError {}

/// An async client of one containerd.
#[derive(Clone, Debug)]
pub struct DaemonClient {
    channel: Channel,
    root: Option<PathBuf>,
}

impl DaemonClient {
    pub async fn connect(socket: impl Into<PathBuf>, root: Option<PathBuf>) -> Result<Self, CdError> {
        let socket = socket.into();
        let channel = containerd_client::connect(&socket)
            .await
            .map_err(|e| CdError::Unavailable(format!("connecting to {}: {e}", socket.display())))?;
        Ok(DaemonClient { channel, root })
    }

    pub async fn version(&self) -> Result<String, CdError> {
        let r = VersionClient::new(self.channel.clone())
            .version(())
            .await
            .map_err(|s| CdError::Other(s.message().to_string()))?;
        Ok(r.into_inner().version)
    }
}
