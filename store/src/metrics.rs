//! Prometheus metrics of one member, served as text on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    pub raft_term: Gauge,
    pub is_leader: Gauge,
    pub leader_changes: Counter,
    pub applied_index: Gauge,
    pub committed_index: Gauge,
    pub proposals: Counter,
    pub proposals_failed: Counter,
    pub fsync: Histogram,
    pub db_size: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub revision: Gauge,
    pub watchers: Gauge,
    pub watch_streams: Gauge,
    pub leases: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("capstan");
        let inner = Inner {
            raft_term: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            applied_index: Gauge::default(),
            committed_index: Gauge::default(),
            proposals: Counter::default(),
            proposals_failed: Counter::default(),
            fsync: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            db_size: Gauge::default(),
            revision: Gauge::default(),
            watchers: Gauge::default(),
            watch_streams: Gauge::default(),
            leases: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("raft_term", "Current Raft term", inner.raft_term.clone());
        registry.register("raft_is_leader", "1 when this member is the leader", inner.is_leader.clone());
        registry.register("raft_leader_changes", "Leader changes seen by this member", inner.leader_changes.clone());
        registry.register(
            "raft_applied_index",
            "Last Raft index applied to the state machine",
            inner.applied_index.clone(),
        );
        registry.register("raft_committed_index", "Last committed Raft index", inner.committed_index.clone());
        registry.register(
            "raft_proposals",
            "Write proposals submitted by clients of this member",
            inner.proposals.clone(),
        );
        registry.register("raft_proposals_failed", "Write proposals that failed", inner.proposals_failed.clone());
        registry.register("disk_wal_fsync_duration_seconds", "Raft log fsync latency", inner.fsync.clone());
        registry.register("mvcc_db_size_bytes", "Bytes on disk of the key-value database", inner.db_size.clone());
        registry.register("mvcc_revision", "Current store revision", inner.revision.clone());
        registry.register("watchers", "Active watchers", inner.watchers.clone());
        registry.register("watch_streams", "Open watch streams", inner.watch_streams.clone());
        registry.register("leases", "Live leases", inner.leases.clone());
        let mut inner = inner;
        inner.registry = registry;
        Metrics(Arc::new(inner))
    }

    pub fn observe_fsync(&self, d: Duration) {
        self.0.fsync.observe(d.as_secs_f64());
    }

    pub fn raft(&self, term: u64, is_leader: bool, applied: u64, committed: u64) {
        self.0.raft_term.set(term as i64);
        self.0.is_leader.set(i64::from(is_leader));
        self.0.applied_index.set(applied as i64);
        self.0.committed_index.set(committed as i64);
    }

    pub fn leader_changed(&self) {
        self.0.leader_changes.inc();
    }

    pub fn proposal(&self, ok: bool) {
        self.0.proposals.inc();
        if !ok {
            self.0.proposals_failed.inc();
        }
    }

    pub fn store(&self, db_size: u64, revision: i64, leases: usize) {
        self.0.db_size.set(db_size as i64);
        self.0.revision.set(revision);
        self.0.leases.set(leases as u64);
    }

    pub fn watchers(&self) -> &Gauge {
        &self.0.watchers
    }

    pub fn watch_streams(&self) -> &Gauge {
        &self.0.watch_streams
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }
}
