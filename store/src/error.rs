//! The store's error type and its one table to the wire: etcd's gRPC codes and
//! texts, byte for byte (clients match on the message string).

use tonic::{Code, Status};

/// Errors a request can end with. `Display` is etcd's exact text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: member ID already exist")]
    MemberIdExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: {0}")]
    InvalidRequest(String),
    /// A local storage failure: the member cannot serve and must stop.
    #[error("etcdserver: storage error: {0}")]
    Storage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The gRPC code etcd uses for this error.
    pub fn code(&self) -> Code {
        use Error::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey | RequestTooLarge
            | InvalidRequest(_) => Code::InvalidArgument,
            Compacted | FutureRevision | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExists
            | MemberIdExists
            | PeerUrlExists
            | NotLeader
            | BadLeaderTransferee
            | NotLearner
            | NotEnoughStartedMembers => Code::FailedPrecondition,
            NoLeader | LeaderChanged | Timeout | Stopped => Code::Unavailable,
            Storage(_) => Code::Internal,
        }
    }

    /// Rebuilds an error carried across members as (code, message).
    pub fn from_wire(code: i32, message: &str) -> Error {
        const ALL: [Error; 23] = [
            Error::EmptyKey,
            Error::KeyNotFound,
            Error::ValueProvided,
            Error::LeaseProvided,
            Error::TooManyOps,
            Error::DuplicateKey,
            Error::RequestTooLarge,
            Error::Compacted,
            Error::FutureRevision,
            Error::LeaseTtlTooLarge,
            Error::NoSpace,
            Error::LeaseNotFound,
            Error::MemberNotFound,
            Error::LeaseExists,
            Error::MemberIdExists,
            Error::PeerUrlExists,
            Error::NotLeader,
            Error::BadLeaderTransferee,
            Error::NotLearner,
            Error::NoLeader,
            Error::LeaderChanged,
            Error::Timeout,
            Error::Stopped,
        ];
        if let Some(e) = ALL.iter().find(|e| e.to_string() == message) {
            return e.clone();
        }
        let text = message.strip_prefix("etcdserver: ").unwrap_or(message).to_string();
        if code == Code::Internal as i32 { Error::Storage(text) } else { Error::InvalidRequest(text) }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Error {
        Error::Storage(e.to_string())
    }
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Error {
        Error::Storage(format!("corrupt record: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_texts_are_etcds() {
        let s: Status = Error::Compacted.into();
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(s.message(), "etcdserver: mvcc: required revision has been compacted");
        let s: Status = Error::LeaseNotFound.into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "etcdserver: requested lease not found");
    }

    #[test]
    fn errors_round_trip_between_members() {
        for e in [Error::DuplicateKey, Error::LeaseExists, Error::FutureRevision] {
            let s: Status = e.clone().into();
            assert_eq!(Error::from_wire(s.code() as i32, s.message()), e);
        }
    }
}
