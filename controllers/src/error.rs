//! The crate's one error type.

/// What can stop a reconcile or the controller-manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the apiserver failed.
    #[error("apiserver request failed: {0}")]
    Kube(#[from] kube::Error),
    /// An object lacks a field every stored object has (name, uid, namespace).
    #[error("{kind} object without {field}")]
    MissingField { kind: &'static str, field: &'static str },
    /// A Deployment's new ReplicaSet name is taken by an object it does not own.
    #[error("replica set name {name} is taken: hash collision")]
    HashCollision { name: String },
    /// A watch cache never finished its first list.
    #[error("the {kind} informer stopped before its first list")]
    InformerStopped { kind: String },
}

impl Error {
    /// An apiserver answer with this HTTP status.
    pub(crate) fn is_status(&self, code: u16) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.code == code)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
