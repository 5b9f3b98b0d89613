//! The MVCC keyspace with etcd's semantics: one cluster-wide revision per
//! write, create/mod revisions, versions, tombstones, reads at any revision
//! not compacted, compaction, and the lease table that owns keys.
//!
//! Layout: an in-memory index of every key's revision history
//! (`key_history.rs`) over a storage `Backend` holding one record per revision
//! (`backend.rs`, `rocks.rs`, `memory.rs`). Reads are in `store.rs`, writes in
//! `apply.rs`; `range.rs` and `txn.rs` hold the pure request rules.

mod apply;
pub mod backend;
mod key_history;
pub mod memory;
pub mod range;
pub mod revision;
pub mod rocks;
mod store;
pub mod txn;

pub use apply::Applier;
pub(crate) use store::APPLIED_KEY;
pub use store::{LeaseInfo, MvccStore, RevisionEvents};

#[cfg(test)]
mod tests;
