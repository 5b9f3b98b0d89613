//! capstan's store: an etcd-compatible, Raft-replicated key-value store.
//!
//! - [`mvcc`]: the keyspace with etcd's MVCC semantics over a storage backend.
//! - [`raft`]: openraft's log store, state machine, snapshots and peer network.
//! - [`lease`]: lease expiry decided by the leader.
//! - [`watch`]: the event hub and the Watch service.
//! - [`api`]: etcd's v3 gRPC services and the HTTP endpoints.
//! - [`server`]: configuration, bootstrap, and one running member.
//! - [`backup`]: snapshot file status and restore into a new cluster's data dirs.
//! - `error`: the error type and its table to etcd's gRPC codes and texts.

pub mod api;
pub mod backup;
pub mod error;
pub mod lease;
pub mod metrics;
pub mod mvcc;
pub mod raft;
mod rocks_tuning;
pub mod server;
pub mod watch;

pub use error::{Error, Result};
