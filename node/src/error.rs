//! The crate's one error type.

/// What can stop the agent or fail one step of its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container runtime endpoint {0:?}: only unix:// endpoints are supported")]
    Endpoint(String),
    #[error("connecting to the container runtime at {endpoint}: {source}")]
    Connect { endpoint: String, source: tonic::transport::Error },
    #[error("container runtime: {0}")]
    Runtime(#[from] tonic::Status),
    #[error("container runtime returned no {0}")]
    MissingField(&'static str),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("reading machine information {path}: {source}")]
    Machine { path: String, source: std::io::Error },
}
