//! The Raft log in its own RocksDB: entries keyed by big-endian index, plus
//! the vote, the committed id and the purge point.
//!
//! Durability: an append is reported flushed, and `save_vote` returns, only
//! after a synced write. Appends do not wait for it: they land in the
//! in-memory tail at once (so replication and apply can read them) and the
//! writer thread fsyncs whatever has queued up, many appends at a time.

mod tail;
mod writer;

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use capstan_proto::raft as pb;
use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use prost::Message;
use rocksdb::{ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode};

use self::tail::LogTail;
use self::writer::{Done, Job, LogOp, LogWriter};
use super::codec::{entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb};
use super::{Entry, LogId, TypeConfig, Vote};
use crate::metrics::Metrics;
use crate::rocks_tuning;

const LOG: &str = "log";
const META: &str = "meta";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    tail: Arc<Mutex<LogTail>>,
    writer: LogWriter,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    pub fn open(path: &Path, metrics: Metrics) -> Result<Self, crate::Error> {
        let cache = rocks_tuning::block_cache();
        // Entries live briefly (purged behind each snapshot): not worth compressing.
        let cfs = [LOG, META]
            .map(|n| ColumnFamilyDescriptor::new(n, rocks_tuning::cf_options(&cache, DBCompressionType::None)));
        let db = Arc::new(DB::open_cf_descriptors(&rocks_tuning::log_db_options(), path, cfs)?);
        let tail = Arc::new(Mutex::new(LogTail::default()));
        let writer = LogWriter::start(&db, tail.clone(), metrics)
            .map_err(|e| crate::Error::Storage(format!("starting the raft log writer: {e}")))?;
        Ok(LogStore { db, tail, writer })
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| io_err(format!("column family {name} missing")))
    }

    fn tail(&self) -> MutexGuard<'_, LogTail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Metadata `key` as the next write will leave it (a pending hint wins).
    fn get_meta<M: Message + Default>(&self, key: &[u8]) -> io::Result<Option<M>> {
        let raw = match self.writer.pending_meta(key) {
            Some(pending) => pending,
            None => self.db.get_cf(self.cf(META)?, key).map_err(io_err)?,
        };
        match raw {
            Some(raw) => M::decode(raw.as_slice()).map(Some).map_err(io_err),
            None => Ok(None),
        }
    }

    /// Entries in `[start, end)` from disk.
    fn read_disk(&self, start: u64, end: u64, out: &mut Vec<Entry>) -> io::Result<()> {
        if start >= end {
            return Ok(());
        }
        let cf = self.cf(LOG)?;
        for item in self.db.iterator_cf(cf, IteratorMode::From(&index_key(start), Direction::Forward)) {
            let (k, v) = item.map_err(io_err)?;
            let index = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| io_err("bad log key"))?);
            if index >= end {
                break;
            }
            out.push(entry_from_pb(pb::Entry::decode(v.as_ref()).map_err(io_err)?)?);
        }
        Ok(())
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
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        // The tail first: whatever leaves it meanwhile is already on disk.
        let (cached, tail_first) = {
            let tail = self.tail();
            let first = tail.first_index().unwrap_or(u64::MAX);
            (tail.range(start.max(first), end), first)
        };
        let mut out = Vec::new();
        self.read_disk(start, end.min(tail_first), &mut out)?;
        out.extend(cached);
        // A hole would make apply skip an entry: refuse, never hand it out.
        if let Some(pair) = out.windows(2).find(|w| w[1].log_id.index != w[0].log_id.index + 1) {
            return Err(io_err(format!(
                "the raft log has a hole between {} and {}",
                pair[0].log_id.index, pair[1].log_id.index
            )));
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
        if let Some(last) = self.tail().last() {
            return Ok(LogState { last_purged_log_id: purged, last_log_id: Some(last.log_id) });
        }
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
        let value = vote_to_pb(vote).encode_to_vec();
        self.writer.write_durable(vec![LogOp::PutMeta { key: VOTE_KEY, value }]).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // A hint for restarts: it rides along with the next write. A commit
        // follows every append, so a write of its own would double the
        // writer's wake-ups and syscalls.
        let op = match committed {
            Some(c) => LogOp::PutMeta { key: COMMITTED_KEY, value: log_id_to_pb(&c).encode_to_vec() },
            None => LogOp::DeleteMeta { key: COMMITTED_KEY },
        };
        self.writer.hint(op);
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.get_meta::<pb::LogId>(COMMITTED_KEY)?.map(|l| log_id_from_pb(&l)))
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let ops = entries
            .iter()
            .map(|e| LogOp::PutEntry { index: e.log_id.index, record: entry_to_pb(e).encode_to_vec() })
            .collect();
        // Readable before it is durable; reported flushed only once it is.
        self.tail().push(entries);
        self.writer.submit(Job { ops, done: Done::Appended { last, callback } })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        self.tail().truncate_after(last_log_id.map(|l| l.index));
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.writer.write_durable(vec![LogOp::DeleteEntriesFrom { from }]).await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        self.tail().purge_upto(log_id.index);
        // The purge point goes first in the same batch, so a crash never
        // leaves a hole that the log state does not account for.
        let ops = vec![
            LogOp::PutMeta { key: PURGED_KEY, value: log_id_to_pb(&log_id).encode_to_vec() },
            LogOp::DeleteEntriesUpTo { upto: log_id.index },
        ];
        self.writer.write_durable(ops).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;

    #[tokio::test]
    async fn a_hole_in_the_log_is_an_error_not_a_shorter_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open(dir.path(), Metrics::new()).expect("open");
        let cf = store.cf(LOG).expect("log column family");
        for index in [1, 2, 4] {
            let entry = Entry { log_id: log_id_from_pb(&pb::LogId { term: 1, index }), payload: EntryPayload::Blank };
            store.db.put_cf(cf, index_key(index), entry_to_pb(&entry).encode_to_vec()).expect("put");
        }
        let whole = store.try_get_log_entries(1..3).await.expect("entries 1 and 2");
        assert_eq!(whole.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![1, 2]);
        let err = store.try_get_log_entries(1..5).await.expect_err("entry 3 is missing");
        assert!(err.to_string().contains("hole between 2 and 4"), "{err}");
    }

    #[tokio::test]
    async fn the_committed_hint_goes_out_with_the_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let committed = log_id_from_pb(&pb::LogId { term: 2, index: 7 });
        {
            let mut store = LogStore::open(dir.path(), Metrics::new()).expect("open");
            store.save_committed(Some(committed)).await.expect("save committed");
            // Not written yet, but what the store reports.
            let meta = store.cf(META).expect("meta column family");
            assert_eq!(store.db.get_cf(meta, COMMITTED_KEY).expect("get"), None);
            assert_eq!(store.read_committed().await.expect("read"), Some(committed));
            // Any durable write carries it.
            store.save_vote(&Vote::new(2, 1)).await.expect("save vote");
        }
        let mut reopened = LogStore::open(dir.path(), Metrics::new()).expect("reopen");
        assert_eq!(reopened.read_committed().await.expect("read"), Some(committed));
    }
}
