//! The MVCC rules against etcd's observed behaviour, on the in-memory backend.

use std::sync::Arc;

use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::response_op::Response;
use capstan_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use capstan_proto::mvccpb::event::EventType;
use capstan_proto::raft::{
    StoreRequest, StoreResponse, store_request::Request as Req, store_response::Response as Resp,
};

use super::MvccStore;
use super::memory::MemoryBackend;
use crate::error::Error;

fn store() -> MvccStore {
    MvccStore::open(Arc::new(MemoryBackend::default())).expect("open")
}

fn apply(s: &MvccStore, r: Req) -> StoreResponse {
    let mut a = s.applier();
    let resp = a.apply(&StoreRequest { request: Some(r) }).expect("apply");
    a.commit().expect("commit");
    resp
}

fn put(s: &MvccStore, k: &str, v: &str) -> i64 {
    let resp = apply(s, Req::Put(PutRequest { key: b(k), value: b(v), ..Default::default() }));
    match resp.response {
        Some(Resp::Put(p)) => p.header.map(|h| h.revision).unwrap_or_default(),
        other => panic!("put failed: {other:?}"),
    }
}

fn b(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

fn get(s: &MvccStore, k: &str, rev: i64) -> Result<Vec<(String, i64, i64, i64)>, Error> {
    let r = s.range(&RangeRequest { key: b(k), revision: rev, ..Default::default() })?;
    Ok(r.kvs
        .iter()
        .map(|kv| (String::from_utf8_lossy(&kv.value).into_owned(), kv.create_revision, kv.mod_revision, kv.version))
        .collect())
}

fn apply_error(resp: &StoreResponse) -> Option<String> {
    match &resp.response {
        Some(Resp::Error(e)) => Some(e.message.clone()),
        _ => None,
    }
}

#[test]
fn revisions_start_at_one_and_each_write_adds_one() {
    let s = store();
    assert_eq!(s.current_revision(), 1);
    assert_eq!(put(&s, "a", "1"), 2);
    assert_eq!(put(&s, "a", "2"), 3);
    assert_eq!(get(&s, "a", 0).expect("get"), vec![("2".into(), 2, 3, 2)]);
    assert_eq!(get(&s, "a", 2).expect("get"), vec![("1".into(), 2, 2, 1)]);
}

#[test]
fn delete_of_nothing_does_not_bump_the_revision() {
    let s = store();
    put(&s, "a", "1");
    let r = apply(&s, Req::DeleteRange(DeleteRangeRequest { key: b("zz"), ..Default::default() }));
    assert!(matches!(r.response, Some(Resp::DeleteRange(ref d)) if d.deleted == 0));
    assert_eq!(s.current_revision(), 2);
}

#[test]
fn delete_then_recreate_resets_version_and_create_revision() {
    let s = store();
    put(&s, "a", "1");
    put(&s, "a", "2");
    apply(&s, Req::DeleteRange(DeleteRangeRequest { key: b("a"), ..Default::default() }));
    assert_eq!(get(&s, "a", 0).expect("get"), vec![]);
    put(&s, "a", "3");
    assert_eq!(get(&s, "a", 0).expect("get"), vec![("3".into(), 5, 5, 1)]);
    let history = s.history(2, 5, 100).expect("history");
    let kinds: Vec<_> = history.iter().map(|r| (r.revision, r.events[0].r#type)).collect();
    assert_eq!(kinds, vec![(2, 0), (3, 0), (4, EventType::Delete as i32), (5, 0)]);
}

#[test]
fn reads_in_the_future_or_before_compaction_fail() {
    let s = store();
    for i in 0..5 {
        put(&s, "k", &i.to_string());
    }
    assert_eq!(get(&s, "k", 7), Err(Error::FutureRevision));
    apply(&s, Req::Compaction(CompactionRequest { revision: 4, physical: false }));
    assert_eq!(get(&s, "k", 3), Err(Error::Compacted));
    assert_eq!(get(&s, "k", 4).expect("the compacted revision itself is readable"), vec![("2".into(), 2, 4, 3)]);
    let again = apply(&s, Req::Compaction(CompactionRequest { revision: 4, physical: false }));
    assert_eq!(apply_error(&again).as_deref(), Some("etcdserver: mvcc: required revision has been compacted"));
    let future = apply(&s, Req::Compaction(CompactionRequest { revision: 99, physical: false }));
    assert_eq!(apply_error(&future).as_deref(), Some("etcdserver: mvcc: required revision is a future revision"));
    assert_eq!(s.history(3, 10, 10), Err(Error::Compacted));
}

#[test]
fn compaction_removes_deleted_keys_and_old_revisions() {
    let s = store();
    put(&s, "a", "1");
    put(&s, "b", "1");
    apply(&s, Req::DeleteRange(DeleteRangeRequest { key: b("a"), ..Default::default() }));
    put(&s, "b", "2");
    let before = s.hash_kv(0).expect("hash");
    apply(&s, Req::Compaction(CompactionRequest { revision: 5, physical: true }));
    let history = s.history(5, 5, 10).expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(get(&s, "b", 0).expect("get"), vec![("2".into(), 3, 5, 2)]);
    assert_ne!(s.hash_kv(0).expect("hash").0, before.0, "compacted records are gone");
    // Recovery from the backend gives the same state.
    let reopened = MvccStore::open(s.backend().clone()).expect("reopen");
    assert_eq!(reopened.current_revision(), 5);
    assert_eq!(reopened.compact_revision(), 5);
    assert_eq!(get(&reopened, "b", 0).expect("get"), vec![("2".into(), 3, 5, 2)]);
}

fn cmp(key: &str, target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b(key),
        target_union: Some(u),
        range_end: Default::default(),
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestPut(PutRequest { key: b(k), value: b(v), ..Default::default() })) }
}

#[test]
fn txn_create_if_absent_and_reads_see_earlier_writes() {
    let s = store();
    let create = |v: &str| TxnRequest {
        compare: vec![cmp("k", CompareTarget::Mod, CompareResult::Equal, TargetUnion::ModRevision(0))],
        success: vec![
            op_put("k", v),
            RequestOp { request: Some(Request::RequestRange(RangeRequest { key: b("k"), ..Default::default() })) },
        ],
        failure: vec![RequestOp {
            request: Some(Request::RequestRange(RangeRequest { key: b("k"), ..Default::default() })),
        }],
    };
    let r = apply(&s, Req::Txn(create("first")));
    let Some(Resp::Txn(t)) = r.response else { panic!("txn failed") };
    assert!(t.succeeded);
    let Some(Response::ResponseRange(range)) = &t.responses[1].response else { panic!("no range") };
    assert_eq!(range.kvs[0].value.as_ref(), b"first", "a txn reads its own writes");
    assert_eq!(t.header.map(|h| h.revision), Some(2));

    let r = apply(&s, Req::Txn(create("second")));
    let Some(Resp::Txn(t)) = r.response else { panic!("txn failed") };
    assert!(!t.succeeded);
    assert_eq!(s.current_revision(), 2, "a read-only branch does not bump the revision");
}

#[test]
fn txn_value_compare_on_missing_key_is_false() {
    let s = store();
    let t = TxnRequest {
        compare: vec![cmp("nope", CompareTarget::Value, CompareResult::NotEqual, TargetUnion::Value(b("x")))],
        success: vec![op_put("a", "1")],
        failure: vec![],
    };
    let Some(Resp::Txn(t)) = apply(&s, Req::Txn(t)).response else { panic!("txn failed") };
    assert!(!t.succeeded);
}

#[test]
fn txn_with_unknown_lease_changes_nothing() {
    let s = store();
    let t = TxnRequest {
        compare: vec![],
        success: vec![
            op_put("a", "1"),
            RequestOp {
                request: Some(Request::RequestPut(PutRequest { key: b("b"), lease: 77, ..Default::default() })),
            },
        ],
        failure: vec![],
    };
    let r = apply(&s, Req::Txn(t));
    assert_eq!(apply_error(&r).as_deref(), Some("etcdserver: requested lease not found"));
    assert_eq!(s.current_revision(), 1);
    assert_eq!(get(&s, "a", 0).expect("get"), vec![]);
}

#[test]
fn ignore_value_needs_an_existing_key() {
    let s = store();
    let r = apply(&s, Req::Put(PutRequest { key: b("a"), ignore_value: true, ..Default::default() }));
    assert_eq!(apply_error(&r).as_deref(), Some("etcdserver: key not found"));
    put(&s, "a", "kept");
    apply(&s, Req::Put(PutRequest { key: b("a"), ignore_value: true, ..Default::default() }));
    assert_eq!(get(&s, "a", 0).expect("get"), vec![("kept".into(), 2, 3, 2)]);
}

#[test]
fn lease_revoke_deletes_attached_keys_in_one_revision() {
    let s = store();
    apply(&s, Req::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 5 }));
    for k in ["a", "b"] {
        apply(&s, Req::Put(PutRequest { key: b(k), value: b("v"), lease: 5, ..Default::default() }));
    }
    put(&s, "c", "no lease");
    assert_eq!(s.lease(5).map(|l| l.keys.len()), Some(2));
    let dup = apply(&s, Req::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 5 }));
    assert_eq!(apply_error(&dup).as_deref(), Some("etcdserver: lease already exists"));
    // Moving a key to no lease detaches it.
    put(&s, "b", "detached");
    assert_eq!(s.lease(5).map(|l| l.keys.len()), Some(1));
    let rev = s.current_revision();
    apply(&s, Req::LeaseRevoke(LeaseRevokeRequest { id: 5 }));
    assert_eq!(s.current_revision(), rev + 1);
    assert_eq!(get(&s, "a", 0).expect("get"), vec![]);
    assert_eq!(get(&s, "b", 0).expect("get").len(), 1);
    assert_eq!(s.lease(5), None);
    let again = apply(&s, Req::LeaseRevoke(LeaseRevokeRequest { id: 5 }));
    assert_eq!(apply_error(&again).as_deref(), Some("etcdserver: requested lease not found"));
}

#[test]
fn range_count_is_before_limit_and_more_is_set() {
    let s = store();
    for k in ["a", "b", "c", "d"] {
        put(&s, k, k);
    }
    let r = s.range(&RangeRequest { key: b("a"), range_end: b("d"), limit: 2, ..Default::default() }).expect("range");
    assert_eq!(r.kvs.len(), 2);
    assert!(r.more);
    assert_eq!(r.count, 3);
    let all = s
        .range(&RangeRequest { key: b("\0"), range_end: b("\0"), count_only: true, ..Default::default() })
        .expect("range");
    assert_eq!((all.count, all.kvs.len()), (4, 0));
    assert_eq!(s.range(&RangeRequest::default()), Err(Error::EmptyKey));
}
