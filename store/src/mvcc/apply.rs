//! The write path: applies replicated requests to the keyspace, one batch at
//! a time. Every change of one request shares one revision (with increasing
//! sub-revisions); a request that changes nothing does not bump it.
//! Errors decided here (unknown lease, compacted revision, …) leave the
//! state untouched: every check runs before the first mutation.

use std::collections::HashMap;
use std::sync::RwLockWriteGuard;

use bytes::Bytes;
use capstan_proto::etcdserverpb::alarm_request::AlarmAction;
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::response_op::Response;
use capstan_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use capstan_proto::mvccpb::{Event, KeyValue, event::EventType};
use capstan_proto::raft::{
    ApplyError, LeaseRecord, LogId, Membership, RevisionRecord, StoreRequest, StoreResponse, store_request,
    store_response,
};
use prost::Message;

use super::backend::{Family, WriteOp};
use super::range::KeyRange;
use super::revision::Revision;
use super::store::{
    APPLIED_KEY, LeaseState, MvccStore, RevisionEvents, State, collect_revisions, evaluate_range, read_revision,
};
use super::txn::compare_holds;
use crate::error::{Error, Result};

/// Applies a batch of requests under the store's write lock, then commits
/// them in one atomic backend write.
pub struct Applier<'a> {
    store: &'a MvccStore,
    state: RwLockWriteGuard<'a, State>,
    /// Records written by this batch, readable before the commit.
    pending: HashMap<Revision, RevisionRecord>,
    ops: Vec<WriteOp>,
    events: Vec<RevisionEvents>,
}

/// The revision being written by one request and what it produced so far.
struct Change {
    main: i64,
    sub: i64,
    events: Vec<Event>,
}

impl Change {
    fn next(&mut self) -> Revision {
        let r = Revision::new(self.main, self.sub);
        self.sub += 1;
        r
    }
}

impl<'a> Applier<'a> {
    pub(crate) fn new(store: &'a MvccStore, state: RwLockWriteGuard<'a, State>) -> Self {
        Applier { store, state, pending: HashMap::new(), ops: Vec::new(), events: Vec::new() }
    }

    pub fn set_applied(&mut self, log_id: LogId) {
        self.state.applied.last_applied = Some(log_id);
    }

    pub fn set_membership(&mut self, log_id: LogId, membership: Membership) {
        self.state.applied.last_membership_log_id = Some(log_id);
        self.state.applied.last_membership = Some(membership);
    }

    /// Applies one request; an error decided here is returned in the response.
    pub fn apply(&mut self, req: &StoreRequest) -> Result<StoreResponse> {
        let mut change = Change { main: self.state.applied.revision + 1, sub: 0, events: Vec::new() };
        let outcome = match &req.request {
            Some(store_request::Request::Put(p)) => self.put_checked(&mut change, p).map(store_response::Response::Put),
            Some(store_request::Request::DeleteRange(d)) => {
                self.delete_range(&mut change, d).map(store_response::Response::DeleteRange)
            }
            Some(store_request::Request::Txn(t)) => self.txn(&mut change, t).map(store_response::Response::Txn),
            Some(store_request::Request::Compaction(c)) => self.compact(c).map(store_response::Response::Compaction),
            Some(store_request::Request::LeaseGrant(g)) => {
                self.lease_grant(g).map(store_response::Response::LeaseGrant)
            }
            Some(store_request::Request::LeaseRevoke(r)) => {
                self.lease_revoke(&mut change, r).map(store_response::Response::LeaseRevoke)
            }
            Some(store_request::Request::Alarm(a)) => Ok(store_response::Response::Alarm(self.alarm(a))),
            None => Err(Error::InvalidRequest("empty request".into())),
        };
        if change.sub > 0 {
            self.state.applied.revision = change.main;
            self.events.push(RevisionEvents { revision: change.main, events: change.events });
        }
        let revision = self.state.applied.revision;
        let response = match outcome {
            Ok(mut r) => {
                set_header_revision(&mut r, revision);
                r
            }
            Err(e @ Error::Storage(_)) => return Err(e),
            Err(e) => store_response::Response::Error(ApplyError { code: e.code() as i32, message: e.to_string() }),
        };
        Ok(StoreResponse { response: Some(response) })
    }

    /// Writes the batch and the applied state atomically; returns the events
    /// of every revision the batch created, in order.
    pub fn commit(mut self) -> Result<Vec<RevisionEvents>> {
        let applied = self.state.applied.encode_to_vec();
        self.ops.push(WriteOp::Put(Family::Meta, APPLIED_KEY.to_vec(), applied));
        let ops = std::mem::take(&mut self.ops);
        self.store.backend().write(ops)?;
        Ok(std::mem::take(&mut self.events))
    }

    fn record(&self, rev: Revision) -> Result<KeyValue> {
        if let Some(r) = self.pending.get(&rev) {
            return r.kv.clone().ok_or_else(|| Error::Storage("pending record without key-value".into()));
        }
        let raw = self
            .store
            .backend()
            .get(Family::Revisions, &rev.to_bytes())?
            .ok_or_else(|| Error::Storage(format!("missing record for revision {}/{}", rev.main, rev.sub)))?;
        RevisionRecord::decode(raw.as_slice())?.kv.ok_or_else(|| Error::Storage("record without key-value".into()))
    }

    fn latest(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        match self.state.index.get(key).and_then(|h| h.latest()) {
            Some(found) => self.record(found.modified).map(Some),
            None => Ok(None),
        }
    }

    fn write_record(&mut self, rev: Revision, record: RevisionRecord) {
        self.ops.push(WriteOp::Put(Family::Revisions, rev.to_bytes().to_vec(), record.encode_to_vec()));
        self.pending.insert(rev, record);
    }

    fn writes_blocked(&self) -> bool {
        self.state.applied.alarms.iter().any(|a| a.alarm == AlarmType::Nospace as i32)
    }

    /// Checks a put against the current state without changing anything.
    fn check_put(&self, p: &PutRequest) -> Result<()> {
        if self.writes_blocked() {
            return Err(Error::NoSpace);
        }
        if (p.ignore_value || p.ignore_lease) && self.state.index.get(p.key.as_ref()).and_then(|h| h.latest()).is_none()
        {
            return Err(Error::KeyNotFound);
        }
        if p.lease != 0 && !p.ignore_lease && !self.state.leases.contains_key(&p.lease) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    fn put_checked(&mut self, change: &mut Change, p: &PutRequest) -> Result<PutResponse> {
        self.check_put(p)?;
        self.put(change, p)
    }

    fn put(&mut self, change: &mut Change, p: &PutRequest) -> Result<PutResponse> {
        // The old value lives in the database: read it only when asked for it.
        let prev = if p.prev_kv || p.ignore_lease || p.ignore_value { self.latest(&p.key)? } else { None };
        let (key, history) = match self.state.index.get_key_value(p.key.as_ref()) {
            Some((key, history)) => (key.clone(), history.latest()),
            // The index's own copy of the key: one decoded from a message
            // shares its whole buffer, which the index would keep alive.
            None => (Bytes::copy_from_slice(&p.key), None),
        };
        let lease = match (&prev, p.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => p.lease,
        };
        let value = match (&prev, p.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => p.value.clone(),
        };
        let rev = change.next();
        let (create_revision, version) = match history {
            Some(found) => (found.created.main, found.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue { key: key.clone(), create_revision, mod_revision: rev.main, version, value, lease };
        self.state.index.entry(key.clone()).or_default().put(rev);
        self.attach(&key, lease);
        self.write_record(rev, RevisionRecord { kv: Some(kv.clone()), tombstone: false });
        change.events.push(Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: None });
        Ok(PutResponse { header: None, prev_kv: if p.prev_kv { prev } else { None } })
    }

    /// Moves a key to `lease` (0: no lease), detaching it from its old one.
    fn attach(&mut self, key: &Bytes, lease: i64) {
        let old = if lease == 0 {
            self.state.key_leases.remove(key)
        } else {
            self.state.key_leases.insert(key.clone(), lease)
        };
        if let Some(old) = old.filter(|o| *o != lease)
            && let Some(l) = self.state.leases.get_mut(&old)
        {
            l.keys.remove(key);
        }
        if let Some(l) = self.state.leases.get_mut(&lease) {
            l.keys.insert(key.clone());
        }
    }

    fn delete_keys(&mut self, change: &mut Change, keys: Vec<Bytes>, want_prev: bool) -> Result<Vec<KeyValue>> {
        let mut prev_kvs = Vec::new();
        for key in keys {
            if want_prev && let Some(prev) = self.latest(&key)? {
                prev_kvs.push(prev);
            }
            let rev = change.next();
            self.state.index.entry(key.clone()).or_default().tombstone(rev);
            self.attach(&key, 0);
            let kv = KeyValue { key, mod_revision: rev.main, ..Default::default() };
            self.write_record(rev, RevisionRecord { kv: Some(kv.clone()), tombstone: true });
            change.events.push(Event { r#type: EventType::Delete as i32, kv: Some(kv), prev_kv: None });
        }
        Ok(prev_kvs)
    }

    fn live_keys(&self, keys: &KeyRange) -> Vec<Bytes> {
        let at = i64::MAX;
        match keys {
            KeyRange::Single(k) => self
                .state
                .index
                .get_key_value(k.as_slice())
                .filter(|(_, h)| h.get(at).is_some())
                .map(|(k, _)| k.clone())
                .into_iter()
                .collect(),
            KeyRange::Span { .. } if keys.is_empty() => Vec::new(),
            KeyRange::Span { start, end } => {
                let upper = end.as_deref().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
                self.state
                    .index
                    .range::<[u8], _>((std::ops::Bound::Included(start.as_slice()), upper))
                    .filter(|(_, h)| h.latest().is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            }
        }
    }

    fn delete_range(&mut self, change: &mut Change, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if d.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let keys = self.live_keys(&KeyRange::new(&d.key, &d.range_end));
        let deleted = keys.len() as i64;
        let prev_kvs = self.delete_keys(change, keys, d.prev_kv)?;
        Ok(DeleteRangeResponse { header: None, deleted, prev_kvs })
    }

    /// Reads inside a write: sees the writes made so far in this batch.
    fn range_in_txn(&self, change: &Change, r: &RangeRequest) -> Result<RangeResponse> {
        let at = if r.revision > 0 { read_revision(&self.state.applied, r.revision)? } else { change.main };
        let found = collect_revisions(&self.state.index, &KeyRange::new(&r.key, &r.range_end), at);
        let (kvs, more, count) = evaluate_range(r, found, &mut |rev| self.record(rev))?;
        Ok(RangeResponse { header: None, kvs, more, count })
    }

    fn compare_kvs(&self, key: &[u8], range_end: &[u8]) -> Result<Vec<KeyValue>> {
        let found = collect_revisions(&self.state.index, &KeyRange::new(key, range_end), i64::MAX);
        found.into_iter().map(|rev| self.record(rev)).collect()
    }

    /// etcd decides every branch of a txn (nested ones too) against the state
    /// before the txn runs; the path lists those decisions in visiting order.
    fn txn_path(&self, t: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
        let mut ok = true;
        for c in &t.compare {
            if !compare_holds(c, &self.compare_kvs(&c.key, &c.range_end)?) {
                ok = false;
                break;
            }
        }
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let Some(Request::RequestTxn(inner)) = &op.request {
                self.txn_path(inner, path)?;
            }
        }
        Ok(())
    }

    /// Checks the ops on the chosen path before any of them runs.
    fn check_path(&self, t: &TxnRequest, path: &mut std::slice::Iter<'_, bool>) -> Result<()> {
        let ok = *path.next().ok_or_else(|| Error::Storage("txn path exhausted".into()))?;
        for op in if ok { &t.success } else { &t.failure } {
            match &op.request {
                Some(Request::RequestPut(p)) => self.check_put(p)?,
                Some(Request::RequestRange(r)) if r.revision > 0 => {
                    read_revision(&self.state.applied, r.revision)?;
                }
                Some(Request::RequestTxn(inner)) => self.check_path(inner, path)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn txn(&mut self, change: &mut Change, t: &TxnRequest) -> Result<TxnResponse> {
        let mut path = Vec::new();
        self.txn_path(t, &mut path)?;
        self.check_path(t, &mut path.iter())?;
        self.run_txn(change, t, &mut path.into_iter())
    }

    fn run_txn(
        &mut self,
        change: &mut Change,
        t: &TxnRequest,
        path: &mut std::vec::IntoIter<bool>,
    ) -> Result<TxnResponse> {
        let succeeded = path.next().ok_or_else(|| Error::Storage("txn path exhausted".into()))?;
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match &op.request {
                Some(Request::RequestRange(r)) => Response::ResponseRange(self.range_in_txn(change, r)?),
                Some(Request::RequestPut(p)) => Response::ResponsePut(self.put(change, p)?),
                Some(Request::RequestDeleteRange(d)) => Response::ResponseDeleteRange(self.delete_range(change, d)?),
                Some(Request::RequestTxn(inner)) => Response::ResponseTxn(self.run_txn(change, inner, path)?),
                None => return Err(Error::InvalidRequest("empty txn operation".into())),
            };
            responses.push(ResponseOp { response: Some(response) });
        }
        Ok(TxnResponse { header: None, succeeded, responses })
    }

    fn compact(&mut self, c: &CompactionRequest) -> Result<CompactionResponse> {
        let applied = &self.state.applied;
        if c.revision <= applied.compact_revision {
            return Err(Error::Compacted);
        }
        if c.revision > applied.revision {
            return Err(Error::FutureRevision);
        }
        fail::fail_point!("compactBeforeCommitBatch", |_| Err(Error::Storage(
            "failpoint compactBeforeCommitBatch".into()
        )));
        let at = c.revision;
        let mut keep = std::collections::HashSet::new();
        self.state.index.retain(|_, h| h.compact(at, &mut keep));
        let end = Revision::new(at + 1, 0).to_bytes();
        let mut doomed = Vec::new();
        self.store.backend().read_view().scan(Family::Revisions, &[], Some(&end), &mut |k, _| {
            if Revision::from_bytes(k).is_some_and(|r| !keep.contains(&r)) {
                doomed.push(k.to_vec());
            }
            true
        })?;
        let pending_doomed: Vec<Revision> =
            self.pending.keys().filter(|r| r.main <= at && !keep.contains(r)).copied().collect();
        for r in pending_doomed {
            self.pending.remove(&r);
            doomed.push(r.to_bytes().to_vec());
        }
        self.ops.extend(doomed.into_iter().map(|k| WriteOp::Delete(Family::Revisions, k)));
        self.state.applied.compact_revision = at;
        Ok(CompactionResponse { header: None })
    }

    fn lease_grant(&mut self, g: &LeaseGrantRequest) -> Result<LeaseGrantResponse> {
        if self.state.leases.contains_key(&g.id) {
            return Err(Error::LeaseExists);
        }
        self.state.leases.insert(g.id, LeaseState { ttl: g.ttl, keys: Default::default() });
        let record = LeaseRecord { id: g.id, ttl: g.ttl };
        self.ops.push(WriteOp::Put(Family::Leases, g.id.to_be_bytes().to_vec(), record.encode_to_vec()));
        Ok(LeaseGrantResponse { header: None, id: g.id, ttl: g.ttl, error: String::new() })
    }

    fn lease_revoke(&mut self, change: &mut Change, r: &LeaseRevokeRequest) -> Result<LeaseRevokeResponse> {
        let Some(lease) = self.state.leases.remove(&r.id) else { return Err(Error::LeaseNotFound) };
        self.ops.push(WriteOp::Delete(Family::Leases, r.id.to_be_bytes().to_vec()));
        self.delete_keys(change, lease.keys.into_iter().collect(), false)?;
        Ok(LeaseRevokeResponse { header: None })
    }

    fn alarm(&mut self, a: &AlarmRequest) -> AlarmResponse {
        let member = AlarmMember { member_id: a.member_id, alarm: a.alarm };
        let alarms = &mut self.state.applied.alarms;
        let affected = match a.action() {
            AlarmAction::Get => alarms.clone(),
            AlarmAction::Activate if a.alarm != AlarmType::None as i32 => {
                if !alarms.contains(&member) {
                    alarms.push(member);
                }
                vec![member]
            }
            AlarmAction::Activate => Vec::new(),
            AlarmAction::Deactivate => {
                let before = alarms.len();
                alarms.retain(|m| m != &member);
                if alarms.len() < before { vec![member] } else { Vec::new() }
            }
        };
        AlarmResponse { header: None, alarms: affected }
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader { revision, ..Default::default() })
}

/// Top-level and per-op headers carry the revision after the request;
/// a nested txn's own header stays empty, as etcd's does.
fn set_header_revision(r: &mut store_response::Response, revision: i64) {
    use store_response::Response as R;
    match r {
        R::Put(p) => p.header = header(revision),
        R::DeleteRange(d) => d.header = header(revision),
        R::Txn(t) => {
            t.header = header(revision);
            set_op_headers(&mut t.responses, revision);
        }
        R::Compaction(c) => c.header = header(revision),
        R::LeaseGrant(g) => g.header = header(revision),
        R::LeaseRevoke(l) => l.header = header(revision),
        R::Alarm(a) => a.header = header(revision),
        R::Error(_) => {}
    }
}

fn set_op_headers(ops: &mut [ResponseOp], revision: i64) {
    for op in ops {
        match &mut op.response {
            Some(Response::ResponseRange(r)) => r.header = header(revision),
            Some(Response::ResponsePut(p)) => p.header = header(revision),
            Some(Response::ResponseDeleteRange(d)) => d.header = header(revision),
            Some(Response::ResponseTxn(t)) => {
                t.header = Some(ResponseHeader::default());
                set_op_headers(&mut t.responses, revision);
            }
            None => {}
        }
    }
}
