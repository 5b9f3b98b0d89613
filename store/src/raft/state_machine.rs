//! openraft's state machine over the MVCC store: applies committed entries in
//! batches (one atomic backend write per batch), publishes their events to
//! the watch hub, and builds and installs snapshots.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capstan_proto::raft::{self as pb, StoreResponse, store_response};
use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};

use super::codec::{log_id_to_pb, membership_to_pb, opt_log_id_from_pb, stored_membership_from_pb};
use super::snapshot::{self, SnapshotDir, SnapshotFile};
use super::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::lease::clock::LeaseClock;
use crate::mvcc::MvccStore;
use crate::watch::WatchHub;

#[derive(Clone)]
pub struct StateMachine {
    mvcc: Arc<MvccStore>,
    hub: WatchHub,
    snapshots: SnapshotDir,
    /// A lease's TTL runs from when its grant is applied.
    lease_clock: Arc<Mutex<LeaseClock>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl StateMachine {
    pub fn new(
        mvcc: Arc<MvccStore>,
        hub: WatchHub,
        snapshots: SnapshotDir,
        lease_clock: Arc<Mutex<LeaseClock>>,
    ) -> Self {
        StateMachine { mvcc, hub, snapshots, lease_clock }
    }

    fn snapshot_from_file(path: PathBuf) -> io::Result<Snapshot> {
        let meta = snapshot::read_meta(&path).map_err(io_err)?;
        Ok(Snapshot { meta: meta_from_pb(&meta)?, snapshot: SnapshotFile { path } })
    }
}

pub fn meta_from_pb(m: &pb::SnapshotMeta) -> io::Result<SnapshotMeta> {
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_pb(m.last_log_id.as_ref()),
        last_membership: stored_membership_from_pb(m.last_membership_log_id.as_ref(), m.last_membership.as_ref())?,
    })
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let applied = self.mvcc.applied_state();
        let membership =
            stored_membership_from_pb(applied.last_membership_log_id.as_ref(), applied.last_membership.as_ref())?;
        Ok((opt_log_id_from_pb(applied.last_applied.as_ref()), membership))
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        let batch: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        let mut responders = Vec::with_capacity(batch.len());
        let mut granted = Vec::new();
        let mut applier = self.mvcc.applier();
        for (entry, responder) in batch {
            let log_id = log_id_to_pb(&entry.log_id);
            let response = match &entry.payload {
                EntryPayload::Blank => StoreResponse::default(),
                EntryPayload::Normal(proposal) => {
                    let response = applier.apply(&proposal.0).map_err(io_err)?;
                    if let Some(store_response::Response::LeaseGrant(g)) = &response.response {
                        granted.push((g.id, g.ttl));
                    }
                    response
                }
                EntryPayload::Membership(m) => {
                    applier.set_membership(log_id, membership_to_pb(m));
                    StoreResponse::default()
                }
            };
            applier.set_applied(log_id);
            if let Some(r) = responder {
                responders.push((r, response));
            }
        }
        let events = applier.commit().map_err(io_err)?;
        if !granted.is_empty() {
            let now = Instant::now();
            let mut clock = self.lease_clock.lock().unwrap_or_else(|e| e.into_inner());
            for (id, ttl) in granted {
                clock.refresh(id, ttl, now);
            }
        }
        for ev in events {
            self.hub.publish(ev);
        }
        for (r, response) in responders {
            r.send(response);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotFile) -> io::Result<()> {
        fail::fail_point!("raftBeforeApplySnap", |_| Err(io_err("failpoint raftBeforeApplySnap")));
        let decoded = snapshot::read(&snapshot.path).map_err(io_err)?;
        // The file goes in place before the state is replaced. A crash in
        // between leaves a snapshot newer than the state, which openraft
        // installs again at start; the other order left a state ahead of
        // every snapshot, with the log purged behind it: a member that could
        // not start again.
        let (term, index) = meta.last_log_id.map_or((0, 0), |l| (l.leader_id.term, l.index));
        self.snapshots.promote(&snapshot.path, term, index)?;
        let backend = self.mvcc.backend().clone();
        // One atomic batch replaces everything: a crash leaves the old state or the new one.
        tokio::task::spawn_blocking(move || {
            backend.write(decoded.ops)?;
            backend.sync()
        })
        .await
        .map_err(io_err)?
        .map_err(io_err)?;
        self.mvcc.reload().map_err(io_err)?;
        // Watchers notice the jump in revisions and catch up from history.
        tracing::info!(index, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        match self.snapshots.current()? {
            Some(path) => Ok(Some(Self::snapshot_from_file(path)?)),
            None => Ok(None),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let mvcc = self.mvcc.clone();
        let snapshots = self.snapshots.clone();
        tokio::task::spawn_blocking(move || {
            let tmp = snapshots.temp_path();
            let (applied, meta) = build_to(&mvcc, &tmp)?;
            let (term, index) = applied.map_or((0, 0), |l| (l.term, l.index));
            let path = snapshots.promote(&tmp, term, index)?;
            Ok(Snapshot { meta: meta_from_pb(&meta)?, snapshot: SnapshotFile { path } })
        })
        .await
        .map_err(io_err)?
    }
}

/// Writes a consistent snapshot of the store to `path`. Everything it
/// contains is synced to the backend first, so the Raft log behind it may be
/// purged.
pub fn build_to(mvcc: &MvccStore, path: &std::path::Path) -> io::Result<(Option<pb::LogId>, pb::SnapshotMeta)> {
    let (applied, view) = mvcc.consistent_view();
    mvcc.backend().sync().map_err(io_err)?;
    let meta = pb::SnapshotMeta {
        vote: None,
        last_log_id: applied.last_applied,
        last_membership_log_id: applied.last_membership_log_id,
        last_membership: applied.last_membership,
    };
    snapshot::write(path, &meta, view.as_ref()).map_err(io_err)?;
    Ok((meta.last_log_id, meta))
}
