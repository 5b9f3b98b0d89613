//! Everything openraft: the type configuration, the log store, the state
//! machine, snapshots and the peer network. No other module names openraft
//! types, so an upgrade of the pinned alpha touches this directory only.

pub mod codec;
pub mod log_store;
pub mod network;
pub mod peer_service;
pub mod snapshot;
pub mod state_machine;
#[cfg(test)]
mod storage_suite;

use std::fmt;

use capstan_proto::raft::{StoreRequest, StoreResponse};

/// A replicated write, as carried in the Raft log.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal(pub StoreRequest);

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use capstan_proto::raft::store_request::Request;
        let kind = match &self.0.request {
            Some(Request::Put(_)) => "put",
            Some(Request::DeleteRange(_)) => "delete_range",
            Some(Request::Txn(_)) => "txn",
            Some(Request::Compaction(_)) => "compaction",
            Some(Request::LeaseGrant(_)) => "lease_grant",
            Some(Request::LeaseRevoke(_)) => "lease_revoke",
            Some(Request::Alarm(_)) => "alarm",
            None => "empty",
        };
        f.write_str(kind)
    }
}

/// A store member as the Raft membership config carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberNode {
    /// Empty until the member has started and published itself.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

impl fmt::Display for MemberNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.peer_urls.join(","))
    }
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Proposal,
        R = StoreResponse,
        NodeId = u64,
        Node = MemberNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

pub type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type Membership = openraft::membership::Membership<u64, MemberNode>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, snapshot::SnapshotFile>;
pub type ChangeMembers = openraft::ChangeMembers<u64, MemberNode>;
pub use openraft::{Config as RaftConfig, ReadPolicy, ServerState};
