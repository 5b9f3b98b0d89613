//! The Raft log in its own RocksDB: entries keyed by big-endian index, plus
//! the vote, the committed id and the purge point. Votes and appends are
//! fsynced before they count: `save_vote` returns, and the append callback
//! fires, only after a synced write.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use capstan_proto::raft as pb;
use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use prost::Message;
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::codec::{entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb};
use super::{Entry, LogId, TypeConfig, Vote};
use crate::metrics::Metrics;

const LOG: &str = "log";
const META: &str = "meta";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    metrics: Metrics,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    pub fn open(path: &Path, metrics: Metrics) -> Result<Self, crate::Error> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        let cfs = [LOG, META].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(LogStore { db: Arc::new(db), metrics })
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| io_err(format!("column family {name} missing")))
    }

    fn get_meta<M: Message + Default>(&self, key: &[u8]) -> io::Result<Option<M>> {
        match self.db.get_cf(self.cf(META)?, key).map_err(io_err)? {
            Some(raw) => M::decode(raw.as_slice()).map(Some).map_err(io_err),
            None => Ok(None),
        }
    }

    /// Writes a batch and fsyncs it, off the async runtime.
    async fn write_synced(&self, batch: WriteBatch) -> io::Result<()> {
        let db = self.db.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            fail::fail_point!("raftBeforeSave", |_| Err(io_err("failpoint raftBeforeSave")));
            let started = std::time::Instant::now();
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            let result = db.write_opt(batch, &wo).map_err(io_err);
            metrics.observe_fsync(started.elapsed());
            result
        })
        .await
        .map_err(io_err)?
    }

    fn index_key(index: u64) -> [u8; 8] {
        index.to_be_bytes()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let cf = self.cf(LOG)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&Self::index_key(start), Direction::Forward)) {
            let (k, v) = item.map_err(io_err)?;
            let index = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| io_err("bad log key"))?);
            if !range.contains(&index) {
                break;
            }
            out.push(entry_from_pb(pb::Entry::decode(v.as_ref()).map_err(io_err)?)?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        match self.get_meta::<pb::Vote>(VOTE_KEY)? {
            Some(v) => Ok(Some(vote_from_pb(Some(&v))?)),
            None => Ok(None),
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let purged = self.get_meta::<pb::LogId>(PURGED_KEY)?.map(|l| log_id_from_pb(&l));
        let cf = self.cf(LOG)?;
        let last = match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, v) = item.map_err(io_err)?;
                Some(entry_from_pb(pb::Entry::decode(v.as_ref()).map_err(io_err)?)?.log_id)
            }
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(META)?, VOTE_KEY, vote_to_pb(vote).encode_to_vec());
        self.write_synced(batch).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        let cf = self.cf(META)?;
        match committed {
            Some(c) => self.db.put_cf(cf, COMMITTED_KEY, log_id_to_pb(&c).encode_to_vec()),
            None => self.db.delete_cf(cf, COMMITTED_KEY),
        }
        .map_err(io_err)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.get_meta::<pb::LogId>(COMMITTED_KEY)?.map(|l| log_id_from_pb(&l)))
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.cf(LOG)?;
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.put_cf(cf, Self::index_key(e.log_id.index), entry_to_pb(&e).encode_to_vec());
        }
        // Completed before returning, so no append is ever reported flushed
        // while its fsync is still in flight.
        let result = self.write_synced(batch).await;
        let report = result.as_ref().map(|_| ()).map_err(io_err);
        callback.io_completed(report);
        result
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        let cf = self.cf(LOG)?;
        self.db.delete_range_cf(cf, Self::index_key(from), Self::index_key(u64::MAX)).map_err(io_err)?;
        self.db.delete_cf(cf, Self::index_key(u64::MAX)).map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        // The purge point is written first, so a crash never leaves a hole
        // that the log state does not account for.
        self.db.put_cf(self.cf(META)?, PURGED_KEY, log_id_to_pb(&log_id).encode_to_vec()).map_err(io_err)?;
        let cf = self.cf(LOG)?;
        self.db.delete_range_cf(cf, Self::index_key(0), Self::index_key(log_id.index + 1)).map_err(io_err)
    }
}
