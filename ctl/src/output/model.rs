//! Responses shaped as etcdctl 3.4 prints them with `-w json`: Go's
//! encoding/json of the gogoproto structs (snake_case or camelCase names as
//! tagged, zero values omitted) and of clientv3's own wrappers (lease
//! responses with the header's fields inlined, watch responses with Go
//! field names).

use capstan_proto::etcdserverpb::{
    AlarmMember, AlarmResponse, DeleteRangeResponse, HashKvResponse, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseTimeToLiveResponse, Member, PutResponse, RangeResponse, ResponseHeader, StatusResponse,
    TxnResponse, WatchResponse, response_op,
};
use capstan_proto::mvccpb::{Event, KeyValue};

use super::doc::{Doc, Obj};

pub fn header(h: &ResponseHeader) -> Doc {
    Obj::new()
        .uint_nz("cluster_id", h.cluster_id)
        .uint_nz("member_id", h.member_id)
        .int_nz("revision", h.revision)
        .uint_nz("raft_term", h.raft_term)
        .build()
}

fn header_opt(h: Option<&ResponseHeader>) -> Option<Doc> {
    h.map(header)
}

pub fn kv(kv: &KeyValue) -> Doc {
    Obj::new()
        .bytes_nz("key", &kv.key)
        .int_nz("create_revision", kv.create_revision)
        .int_nz("mod_revision", kv.mod_revision)
        .int_nz("version", kv.version)
        .bytes_nz("value", &kv.value)
        .int_nz("lease", kv.lease)
        .build()
}

pub fn range(r: &RangeResponse) -> Doc {
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .list_nz("kvs", r.kvs.iter().map(kv).collect())
        .bool_nz("more", r.more)
        .int_nz("count", r.count)
        .build()
}

pub fn put(r: &PutResponse) -> Doc {
    Obj::new().some("header", header_opt(r.header.as_ref())).some("prev_kv", r.prev_kv.as_ref().map(kv)).build()
}

pub fn delete(r: &DeleteRangeResponse) -> Doc {
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .int_nz("deleted", r.deleted)
        .list_nz("prev_kvs", r.prev_kvs.iter().map(kv).collect())
        .build()
}

pub fn txn(r: &TxnResponse) -> Doc {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            // A oneof is a Go interface holding a wrapper struct named after the variant.
            let inner = match &op.response {
                Some(response_op::Response::ResponseRange(r)) => Obj::new().field("ResponseRange", range(r)).build(),
                Some(response_op::Response::ResponsePut(r)) => Obj::new().field("ResponsePut", put(r)).build(),
                Some(response_op::Response::ResponseDeleteRange(r)) => {
                    Obj::new().field("ResponseDeleteRange", delete(r)).build()
                }
                Some(response_op::Response::ResponseTxn(r)) => Obj::new().field("ResponseTxn", txn(r)).build(),
                None => Doc::Null,
            };
            Obj::new().field("Response", inner).build()
        })
        .collect();
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .bool_nz("succeeded", r.succeeded)
        .list_nz("responses", responses)
        .build()
}

pub fn event(e: &Event) -> Doc {
    Obj::new()
        .int_nz("type", i64::from(e.r#type))
        .some("kv", e.kv.as_ref().map(kv))
        .some("prev_kv", e.prev_kv.as_ref().map(kv))
        .build()
}

/// clientv3's WatchResponse: Go field names, header by value, events null when none.
pub fn watch(r: &WatchResponse) -> Doc {
    let events = if r.events.is_empty() { Doc::Null } else { Doc::Arr(r.events.iter().map(event).collect()) };
    Obj::new()
        .field("Header", r.header.as_ref().map_or_else(|| Obj::new().build(), header))
        .field("Events", events)
        .field("CompactRevision", Doc::Int(r.compact_revision))
        .field("Canceled", Doc::Bool(r.canceled))
        .field("Created", Doc::Bool(r.created))
        .build()
}

pub fn lease_grant(r: &LeaseGrantResponse) -> Doc {
    Obj::new()
        .embed(header_opt(r.header.as_ref()))
        .field("ID", Doc::Int(r.id))
        .field("TTL", Doc::Int(r.ttl))
        .field("Error", Doc::Str(r.error.clone()))
        .build()
}

pub fn lease_keep_alive(r: &LeaseKeepAliveResponse) -> Doc {
    Obj::new().embed(header_opt(r.header.as_ref())).field("ID", Doc::Int(r.id)).field("TTL", Doc::Int(r.ttl)).build()
}

pub fn lease_time_to_live(r: &LeaseTimeToLiveResponse) -> Doc {
    let keys =
        if r.keys.is_empty() { Doc::Null } else { Doc::Arr(r.keys.iter().map(|k| Doc::Bytes(k.to_vec())).collect()) };
    Obj::new()
        .embed(header_opt(r.header.as_ref()))
        .field("id", Doc::Int(r.id))
        .field("ttl", Doc::Int(r.ttl))
        .field("granted-ttl", Doc::Int(r.granted_ttl))
        .field("keys", keys)
        .build()
}

pub fn lease_leases(r: &LeaseLeasesResponse) -> Doc {
    let leases = r.leases.iter().map(|l| Obj::new().field("id", Doc::Int(l.id)).build()).collect();
    Obj::new().embed(header_opt(r.header.as_ref())).field("leases", Doc::Arr(leases)).build()
}

/// Responses that carry only a header (revoke, defragment, move-leader, compaction).
pub fn header_only(h: Option<&ResponseHeader>) -> Doc {
    Obj::new().some("header", header_opt(h)).build()
}

pub fn member(m: &Member) -> Doc {
    let urls = |list: &[String]| list.iter().map(|u| Doc::Str(u.clone())).collect::<Vec<_>>();
    Obj::new()
        .uint_nz("ID", m.id)
        .str_nz("name", &m.name)
        .list_nz("peerURLs", urls(&m.peer_ur_ls))
        .list_nz("clientURLs", urls(&m.client_ur_ls))
        .bool_nz("isLearner", m.is_learner)
        .build()
}

/// Member list, remove, update and promote responses.
pub fn members(h: Option<&ResponseHeader>, members: &[Member]) -> Doc {
    Obj::new().some("header", header_opt(h)).list_nz("members", members.iter().map(member).collect()).build()
}

pub fn member_add(h: Option<&ResponseHeader>, added: Option<&Member>, all: &[Member]) -> Doc {
    Obj::new()
        .some("header", header_opt(h))
        .some("member", added.map(member))
        .list_nz("members", all.iter().map(member).collect())
        .build()
}

/// StatusResponse as etcd 3.4 defines it (later fields are not printed).
pub fn status(r: &StatusResponse) -> Doc {
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .str_nz("version", &r.version)
        .int_nz("dbSize", r.db_size)
        .uint_nz("leader", r.leader)
        .uint_nz("raftIndex", r.raft_index)
        .uint_nz("raftTerm", r.raft_term)
        .uint_nz("raftAppliedIndex", r.raft_applied_index)
        .list_nz("errors", r.errors.iter().map(|e| Doc::Str(e.clone())).collect())
        .int_nz("dbSizeInUse", r.db_size_in_use)
        .bool_nz("isLearner", r.is_learner)
        .build()
}

/// HashKVResponse as etcd 3.4 defines it.
pub fn hash_kv(r: &HashKvResponse) -> Doc {
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .uint_nz("hash", u64::from(r.hash))
        .int_nz("compact_revision", r.compact_revision)
        .build()
}

pub fn alarm_member(a: &AlarmMember) -> Doc {
    Obj::new().uint_nz("memberID", a.member_id).int_nz("alarm", i64::from(a.alarm)).build()
}

pub fn alarms(r: &AlarmResponse) -> Doc {
    Obj::new()
        .some("header", header_opt(r.header.as_ref()))
        .list_nz("alarms", r.alarms.iter().map(alarm_member).collect())
        .build()
}
