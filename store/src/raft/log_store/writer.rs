//! Group commit for the Raft log: one thread owns every write to the log
//! database. Jobs queued while an fsync is in flight go out together in the
//! next write, so a burst of appends shares one fsync, and Raft keeps
//! replicating while the disk works. Hints (the committed id) wait for the
//! next write instead of waking the thread for a write of their own.

use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use openraft::storage::IOFlushed;
use rocksdb::{DB, WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use super::tail::LogTail;
use super::{LOG, META, index_key, io_err};
use crate::metrics::Metrics;
use crate::raft::{LogId, TypeConfig};

/// The most jobs folded into one write: bounds the latency of the first.
const MAX_JOBS_PER_WRITE: usize = 1024;

pub(super) enum LogOp {
    PutEntry {
        index: u64,
        record: Vec<u8>,
    },
    PutMeta {
        key: &'static [u8],
        value: Vec<u8>,
    },
    DeleteMeta {
        key: &'static [u8],
    },
    /// Entries from `from` to the end of the log.
    DeleteEntriesFrom {
        from: u64,
    },
    /// Entries up to and including `upto`.
    DeleteEntriesUpTo {
        upto: u64,
    },
}

/// Who hears of a job once its write is durable.
pub(super) enum Done {
    /// openraft, for appended entries ending at `last`.
    Appended {
        last: LogId,
        callback: IOFlushed<TypeConfig>,
    },
    Reply(oneshot::Sender<io::Result<()>>),
}

pub(super) struct Job {
    pub ops: Vec<LogOp>,
    pub done: Done,
}

#[derive(Clone)]
pub(super) struct LogWriter {
    jobs: Sender<Job>,
    /// The newest hint not yet written; the next write takes it.
    hint: Arc<Mutex<Option<LogOp>>>,
}

impl LogWriter {
    /// Starts the writer thread; it ends when every handle is dropped.
    ///
    /// The thread holds the database only while it writes: the last handle
    /// is then dropped (and the database closed) by its owner, before the
    /// process exits, never by this thread racing the exit's C++ static
    /// destructors (RocksDB aborts with "pthread lock: Invalid argument").
    pub fn start(db: &Arc<DB>, tail: Arc<Mutex<LogTail>>, metrics: Metrics) -> io::Result<LogWriter> {
        let (jobs, rx) = channel();
        let hint = Arc::new(Mutex::new(None));
        let db = Arc::downgrade(db);
        let pending_hint = hint.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run(&db, &tail, &pending_hint, &metrics, &rx))?;
        Ok(LogWriter { jobs, hint })
    }

    /// Records `op` to go out with the next write, replacing any older hint.
    /// Nothing waits for it: a hint not yet written when the process stops
    /// is lost, and a restart reads the one before.
    pub fn hint(&self, op: LogOp) {
        *self.pending_hint() = Some(op);
    }

    /// The value a hint not yet written gives metadata `key`: `Some(None)`
    /// if it deletes the key, `None` if no pending hint touches it.
    pub fn pending_meta(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match &*self.pending_hint() {
            Some(LogOp::PutMeta { key: k, value }) if *k == key => Some(Some(value.clone())),
            Some(LogOp::DeleteMeta { key: k }) if *k == key => Some(None),
            _ => None,
        }
    }

    fn pending_hint(&self) -> MutexGuard<'_, Option<LogOp>> {
        self.hint.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job; its `done` fires after the write.
    pub fn submit(&self, job: Job) -> io::Result<()> {
        self.jobs.send(job).map_err(|_| io_err("raft log writer stopped"))
    }

    /// Queues `ops` and waits until they are durable.
    pub async fn write_durable(&self, ops: Vec<LogOp>) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job { ops, done: Done::Reply(tx) })?;
        rx.await.map_err(|_| io_err("raft log writer stopped"))?
    }
}

fn run(db: &Weak<DB>, tail: &Mutex<LogTail>, hint: &Mutex<Option<LogOp>>, metrics: &Metrics, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_WRITE {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let hint = hint.lock().unwrap_or_else(|e| e.into_inner()).take();
        let result = match db.upgrade() {
            Some(db) => write(&db, hint.as_ref(), &jobs, metrics),
            None => Err(io_err("the raft log is closed")),
        };
        for job in jobs {
            let report = result.as_ref().map(|_| ()).map_err(io_err);
            match job.done {
                Done::Appended { last, callback } => {
                    if report.is_ok() {
                        tail.lock().unwrap_or_else(|e| e.into_inner()).mark_written(&last);
                    }
                    callback.io_completed(report);
                }
                Done::Reply(tx) => {
                    let _ = tx.send(report);
                }
            }
        }
    }
}

fn write(db: &DB, hint: Option<&LogOp>, jobs: &[Job], metrics: &Metrics) -> io::Result<()> {
    fail::fail_point!("raftBeforeSave", |_| Err(io_err("failpoint raftBeforeSave")));
    let log = db.cf_handle(LOG).ok_or_else(|| io_err("column family log missing"))?;
    let meta = db.cf_handle(META).ok_or_else(|| io_err("column family meta missing"))?;
    let mut batch = WriteBatch::default();
    for op in hint.into_iter().chain(jobs.iter().flat_map(|j| &j.ops)) {
        match op {
            LogOp::PutEntry { index, record } => batch.put_cf(log, index_key(*index), record),
            LogOp::PutMeta { key, value } => batch.put_cf(meta, key, value),
            LogOp::DeleteMeta { key } => batch.delete_cf(meta, key),
            LogOp::DeleteEntriesFrom { from } => {
                batch.delete_range_cf(log, index_key(*from), index_key(u64::MAX));
                batch.delete_cf(log, index_key(u64::MAX));
            }
            LogOp::DeleteEntriesUpTo { upto } => {
                batch.delete_range_cf(log, index_key(0), index_key(upto.saturating_add(1)))
            }
        }
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    let started = Instant::now();
    let result = db.write_opt(batch, &wo).map_err(io_err);
    metrics.observe_fsync(started.elapsed());
    result
}
