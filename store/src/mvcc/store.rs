//! The MVCC store: state recovery from the backend and every read path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use capstan_proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use capstan_proto::mvccpb::{Event, KeyValue, event::EventType};
use capstan_proto::raft::{AppliedState, LeaseRecord, RevisionRecord};
use prost::Message;

use super::apply::Applier;
use super::backend::{Backend, Family, ReadView};
use super::key_history::KeyHistory;
use super::range::{self, KeyRange};
use super::revision::Revision;
use crate::error::{Error, Result};

pub(crate) const APPLIED_KEY: &[u8] = b"applied";

/// All events of one revision, in the order they happened.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionEvents {
    pub revision: i64,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseInfo {
    pub ttl: i64,
    pub keys: Vec<Bytes>,
}

#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    pub ttl: i64,
    pub keys: BTreeSet<Bytes>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub index: BTreeMap<Bytes, KeyHistory>,
    pub leases: BTreeMap<i64, LeaseState>,
    /// The lease each live key is attached to (only keys with a lease).
    pub key_leases: HashMap<Bytes, i64>,
    /// Revision, compacted revision, last applied log id, membership, alarms.
    pub applied: AppliedState,
}

pub struct MvccStore {
    backend: Arc<dyn Backend>,
    // A std lock: held for in-memory work and one batch write, never across an
    // await. Writers (the apply path) hold it for a whole batch, so readers
    // never see half of one.
    state: RwLock<State>,
}

impl MvccStore {
    /// Opens the store, rebuilding the in-memory index from the backend.
    pub fn open(backend: Arc<dyn Backend>) -> Result<Self> {
        let state = load_state(backend.as_ref())?;
        Ok(MvccStore { backend, state: RwLock::new(state) })
    }

    /// Rebuilds every in-memory structure from the backend (after a snapshot install).
    pub fn reload(&self) -> Result<()> {
        let fresh = load_state(self.backend.as_ref())?;
        *self.write_state() = fresh;
        Ok(())
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_revision(&self) -> i64 {
        self.read_state().applied.revision
    }

    pub fn compact_revision(&self) -> i64 {
        self.read_state().applied.compact_revision
    }

    pub fn applied_state(&self) -> AppliedState {
        self.read_state().applied.clone()
    }

    /// Starts applying a batch of writes; see `Applier`.
    pub fn applier(&self) -> Applier<'_> {
        Applier::new(self, self.write_state())
    }

    /// Serves a Range request at the revision it asks for.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let keys = KeyRange::new(&req.key, &req.range_end);
        let state = self.read_state();
        let current = state.applied.revision;
        let at = read_revision(&state.applied, req.revision)?;
        let found = collect_revisions(&state.index, &keys, at);
        let view = self.backend.read_view();
        drop(state);
        let (kvs, more, count) = evaluate_range(req, found, &mut |rev| fetch_kv(view.as_ref(), rev))?;
        Ok(RangeResponse { header: Some(ResponseHeader { revision: current, ..Default::default() }), kvs, more, count })
    }

    /// The key as it was at revision `at`, if it existed and is not compacted away.
    pub fn get_at(&self, key: &[u8], at: i64) -> Result<Option<KeyValue>> {
        let state = self.read_state();
        if at < state.applied.compact_revision {
            return Ok(None);
        }
        let Some(found) = state.index.get(key).and_then(|h| h.get(at)) else { return Ok(None) };
        let view = self.backend.read_view();
        drop(state);
        fetch_kv(view.as_ref(), found.modified).map(Some)
    }

    /// Events of revisions `from ..= to`, at most `max_revisions` of them.
    /// Fails with `Compacted` when `from` is below the compacted revision.
    pub fn history(&self, from: i64, to: i64, max_revisions: usize) -> Result<Vec<RevisionEvents>> {
        let state = self.read_state();
        if from < state.applied.compact_revision {
            return Err(Error::Compacted);
        }
        let view = self.backend.read_view();
        drop(state);
        let start = Revision::new(from, 0).to_bytes();
        let end = Revision::new(to.saturating_add(1), 0).to_bytes();
        let mut out: Vec<RevisionEvents> = Vec::new();
        let mut failure = None;
        view.scan(Family::Revisions, &start, Some(&end), &mut |k, v| {
            let (Some(rev), Ok(record)) = (Revision::from_bytes(k), RevisionRecord::decode(v)) else {
                failure = Some(Error::Storage("corrupt revision record".into()));
                return false;
            };
            if out.last().is_none_or(|last| last.revision != rev.main) {
                if out.len() == max_revisions {
                    return false;
                }
                out.push(RevisionEvents { revision: rev.main, events: Vec::new() });
            }
            if let Some(last) = out.last_mut() {
                last.events.push(record_to_event(record));
            }
            true
        })?;
        failure.map_or(Ok(out), Err)
    }

    /// A hash of every key-value revision up to `rev` (0: current) that
    /// compaction kept. Equal on members with equal data.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64, i64)> {
        let state = self.read_state();
        let at = if rev <= 0 { state.applied.revision } else { rev };
        if at > state.applied.revision {
            return Err(Error::FutureRevision);
        }
        if at < state.applied.compact_revision {
            return Err(Error::Compacted);
        }
        let compacted = state.applied.compact_revision;
        let view = self.backend.read_view();
        drop(state);
        let mut hasher = crc32fast::Hasher::new();
        let end = Revision::new(at + 1, 0).to_bytes();
        view.scan(Family::Revisions, &[], Some(&end), &mut |k, v| {
            hasher.update(k);
            hasher.update(v);
            true
        })?;
        Ok((hasher.finalize(), compacted, at))
    }

    /// The applied state and a backend view that matches it exactly.
    pub fn consistent_view(&self) -> (AppliedState, Box<dyn ReadView + '_>) {
        let state = self.read_state();
        (state.applied.clone(), self.backend.read_view())
    }

    pub fn lease_ids(&self) -> Vec<i64> {
        self.read_state().leases.keys().copied().collect()
    }

    pub fn lease(&self, id: i64) -> Option<LeaseInfo> {
        let state = self.read_state();
        state.leases.get(&id).map(|l| LeaseInfo { ttl: l.ttl, keys: l.keys.iter().cloned().collect() })
    }
}

/// The revision a read is served at: ≤ 0 means current.
pub(crate) fn read_revision(applied: &AppliedState, requested: i64) -> Result<i64> {
    if requested <= 0 {
        return Ok(applied.revision);
    }
    if requested > applied.revision {
        return Err(Error::FutureRevision);
    }
    if requested < applied.compact_revision {
        return Err(Error::Compacted);
    }
    Ok(requested)
}

/// The live keys of a range at revision `at`, in key order, with the revision holding each.
pub(crate) fn collect_revisions(index: &BTreeMap<Bytes, KeyHistory>, keys: &KeyRange, at: i64) -> Vec<Revision> {
    match keys {
        KeyRange::Single(k) => {
            index.get(k.as_slice()).and_then(|h| h.get(at)).map(|f| f.modified).into_iter().collect()
        }
        KeyRange::Span { .. } if keys.is_empty() => Vec::new(),
        KeyRange::Span { start, end } => {
            let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            index
                .range::<[u8], _>((Bound::Included(start.as_slice()), upper))
                .filter_map(|(_, h)| h.get(at).map(|f| f.modified))
                .collect()
        }
    }
}

/// Turns the revisions found for a range into its response fields
/// (kvs, more, count), fetching only the records it needs.
pub(crate) fn evaluate_range(
    req: &RangeRequest,
    found: Vec<Revision>,
    fetch: &mut dyn FnMut(Revision) -> Result<KeyValue>,
) -> Result<(Vec<KeyValue>, bool, i64)> {
    let count = found.len() as i64;
    if req.count_only && !range::needs_all_keys(req) {
        return Ok((Vec::new(), false, count));
    }
    let wanted = if range::needs_all_keys(req) || req.limit <= 0 {
        found.len()
    } else {
        found.len().min(req.limit as usize + 1)
    };
    let mut kvs = Vec::with_capacity(wanted);
    for rev in found.into_iter().take(wanted) {
        kvs.push(fetch(rev)?);
    }
    let (mut kvs, more) = range::finish(req, kvs);
    if req.count_only {
        return Ok((Vec::new(), more, count));
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    Ok((kvs, more, count))
}

pub(crate) fn fetch_kv(view: &dyn ReadView, rev: Revision) -> Result<KeyValue> {
    let raw = view
        .get(Family::Revisions, &rev.to_bytes())?
        .ok_or_else(|| Error::Storage(format!("missing record for revision {}/{}", rev.main, rev.sub)))?;
    RevisionRecord::decode(raw.as_slice())?.kv.ok_or_else(|| Error::Storage("revision record without key-value".into()))
}

pub(crate) fn record_to_event(record: RevisionRecord) -> Event {
    let kind = if record.tombstone { EventType::Delete } else { EventType::Put };
    Event { r#type: kind as i32, kv: record.kv, prev_kv: None }
}

fn load_state(backend: &dyn Backend) -> Result<State> {
    let view = backend.read_view();
    let applied = match view.get(Family::Meta, APPLIED_KEY)? {
        Some(raw) => AppliedState::decode(raw.as_slice())?,
        // A fresh store is at revision 1: the first write gets 2.
        None => AppliedState { revision: 1, ..Default::default() },
    };
    let mut state = State { applied, ..Default::default() };
    let mut latest_lease: HashMap<Bytes, i64> = HashMap::new();
    let mut failure = None;
    view.scan(Family::Revisions, &[], None, &mut |k, v| {
        let (Some(rev), Ok(record)) = (Revision::from_bytes(k), RevisionRecord::decode(v)) else {
            failure = Some(Error::Storage("corrupt revision record".into()));
            return false;
        };
        let Some(kv) = record.kv else {
            failure = Some(Error::Storage("revision record without key-value".into()));
            return false;
        };
        let history = state.index.entry(kv.key.clone()).or_default();
        if record.tombstone {
            history.tombstone(rev);
            latest_lease.remove(&kv.key);
        } else {
            history.put(rev);
            latest_lease.insert(kv.key.clone(), kv.lease);
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    view.scan(Family::Leases, &[], None, &mut |_, v| {
        match LeaseRecord::decode(v) {
            Ok(l) => {
                state.leases.insert(l.id, LeaseState { ttl: l.ttl, keys: BTreeSet::new() });
            }
            Err(e) => failure = Some(e.into()),
        }
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    for (key, lease) in latest_lease {
        if let Some(l) = state.leases.get_mut(&lease) {
            l.keys.insert(key.clone());
            state.key_leases.insert(key, lease);
        }
    }
    Ok(state)
}
