//! openraft's own storage test suite, run against our log store and state
//! machine on RocksDB: the contract openraft relies on, checked by its authors' tests.

use std::sync::{Arc, Mutex};

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};

use super::TypeConfig;
use super::log_store::LogStore;
use super::snapshot::SnapshotDir;
use super::state_machine::StateMachine;
use crate::lease::clock::LeaseClock;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::mvcc::rocks::RocksBackend;
use crate::watch::WatchHub;

struct RocksStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksStores {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(&dir.path().join("raft"), Metrics::new()).expect("open log");
        let backend = RocksBackend::open(&dir.path().join("kv")).expect("open kv");
        let mvcc = Arc::new(MvccStore::open(Arc::new(backend)).expect("open mvcc"));
        let snapshots = SnapshotDir::open(dir.path().join("snap")).expect("open snapshot dir");
        let clock = Arc::new(Mutex::new(LeaseClock::default()));
        let sm = StateMachine::new(mvcc, WatchHub::new(), snapshots, clock);
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(RocksStores).await.expect("openraft storage suite");
}
