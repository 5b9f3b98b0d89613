//! Conversions between openraft's types and their protobuf records (disk and
//! wire). Decoding validates: a record missing a required field is an error,
//! never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use capstan_proto::raft as pb;
use openraft::EntryPayload;
use openraft::raft::{AppendEntriesRequest, StreamAppendError, StreamAppendResult};
use openraft::vote::RaftLeaderId;

use super::{Entry, LogId, MemberNode, Membership, Proposal, StoredMembership, TypeConfig, Vote};

pub fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub fn log_id_to_pb(id: &LogId) -> pb::LogId {
    pb::LogId { term: id.leader_id.term, index: id.index }
}

pub fn log_id_from_pb(id: &pb::LogId) -> LogId {
    LogId::new(openraft::vote::leader_id_std::CommittedLeaderId::new(id.term), id.index)
}

pub fn opt_log_id_from_pb(id: Option<&pb::LogId>) -> Option<LogId> {
    id.map(log_id_from_pb)
}

pub fn vote_to_pb(v: &Vote) -> pb::Vote {
    pb::Vote {
        leader_id: Some(pb::LeaderId { term: v.leader_id.term, node_id: v.leader_id.voted_for }),
        committed: v.committed,
    }
}

pub fn vote_from_pb(v: Option<&pb::Vote>) -> io::Result<Vote> {
    let v = v.ok_or_else(|| invalid("vote missing"))?;
    let l = v.leader_id.as_ref().ok_or_else(|| invalid("vote without leader id"))?;
    let leader_id = openraft::impls::leader_id_std::LeaderId::new(l.term, l.node_id);
    Ok(Vote { leader_id, committed: v.committed })
}

pub fn node_to_pb(n: &MemberNode) -> pb::Node {
    pb::Node { name: n.name.clone(), peer_urls: n.peer_urls.clone(), client_urls: n.client_urls.clone() }
}

pub fn node_from_pb(n: &pb::Node) -> MemberNode {
    MemberNode { name: n.name.clone(), peer_urls: n.peer_urls.clone(), client_urls: n.client_urls.clone() }
}

pub fn membership_to_pb(m: &Membership) -> pb::Membership {
    pb::Membership {
        configs: m.get_joint_config().iter().map(|c| pb::NodeIdSet { node_ids: c.iter().copied().collect() }).collect(),
        nodes: m.nodes().map(|(id, n)| (*id, node_to_pb(n))).collect(),
    }
}

pub fn membership_from_pb(m: &pb::Membership) -> io::Result<Membership> {
    let configs: Vec<BTreeSet<u64>> = m.configs.iter().map(|c| c.node_ids.iter().copied().collect()).collect();
    let nodes: BTreeMap<u64, MemberNode> = m.nodes.iter().map(|(id, n)| (*id, node_from_pb(n))).collect();
    Membership::new(configs, nodes).map_err(|e| invalid(&format!("invalid membership: {e}")))
}

pub fn stored_membership_from_pb(
    log_id: Option<&pb::LogId>,
    m: Option<&pb::Membership>,
) -> io::Result<StoredMembership> {
    let membership = match m {
        Some(m) => membership_from_pb(m)?,
        None => Membership::default(),
    };
    Ok(StoredMembership::new(opt_log_id_from_pb(log_id), membership))
}

pub fn entry_to_pb(e: &Entry) -> pb::Entry {
    let mut out = pb::Entry { term: e.log_id.leader_id.term, index: e.log_id.index, request: None, membership: None };
    match &e.payload {
        EntryPayload::Blank => {}
        EntryPayload::Normal(p) => out.request = Some(p.0.clone()),
        EntryPayload::Membership(m) => out.membership = Some(membership_to_pb(m)),
    }
    out
}

pub fn entry_from_pb(e: pb::Entry) -> io::Result<Entry> {
    let log_id = log_id_from_pb(&pb::LogId { term: e.term, index: e.index });
    let payload = match (e.request, e.membership) {
        (None, None) => EntryPayload::Blank,
        (Some(r), None) => EntryPayload::Normal(Proposal(r)),
        (None, Some(m)) => EntryPayload::Membership(membership_from_pb(&m)?),
        (Some(_), Some(_)) => return Err(invalid("entry with both a request and a membership")),
    };
    Ok(Entry { log_id, payload })
}

pub fn append_request_to_pb(rpc: &AppendEntriesRequest<TypeConfig>) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&rpc.vote)),
        prev_log_id: rpc.prev_log_id.as_ref().map(log_id_to_pb),
        entries: rpc.entries.iter().map(entry_to_pb).collect(),
        leader_commit: rpc.leader_commit.as_ref().map(log_id_to_pb),
    }
}

/// Decodes an append; its entries must follow `prev_log_id` without a gap,
/// or the follower would store a log with a hole in it.
pub fn append_request_from_pb(r: pb::AppendEntriesRequest) -> io::Result<AppendEntriesRequest<TypeConfig>> {
    let prev_log_id = r.prev_log_id.as_ref().map(log_id_from_pb);
    let first = prev_log_id.map_or(0, |p| p.index + 1);
    for (expected, e) in (first..).zip(&r.entries) {
        if e.index != expected {
            return Err(invalid(&format!("append entries not contiguous: expected index {expected}, got {}", e.index)));
        }
    }
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(r.vote.as_ref())?,
        prev_log_id,
        entries: r.entries.into_iter().map(entry_from_pb).collect::<io::Result<_>>()?,
        leader_commit: r.leader_commit.as_ref().map(log_id_from_pb),
    })
}

/// One reply of an append stream: what matches, a conflict, or a higher vote.
pub fn stream_reply_to_pb(r: &StreamAppendResult<TypeConfig>) -> pb::AppendEntriesResponse {
    match r {
        Ok(matching) => {
            pb::AppendEntriesResponse { last_log_id: matching.as_ref().map(log_id_to_pb), ..Default::default() }
        }
        Err(StreamAppendError::Conflict(at)) => {
            pb::AppendEntriesResponse { conflict: true, last_log_id: Some(log_id_to_pb(at)), ..Default::default() }
        }
        Err(StreamAppendError::HigherVote(v)) => {
            pb::AppendEntriesResponse { rejected_by: Some(vote_to_pb(v)), ..Default::default() }
        }
    }
}

pub fn stream_reply_from_pb(r: &pb::AppendEntriesResponse) -> io::Result<StreamAppendResult<TypeConfig>> {
    if let Some(v) = &r.rejected_by {
        return Ok(Err(StreamAppendError::HigherVote(vote_from_pb(Some(v))?)));
    }
    if r.conflict {
        let at = r.last_log_id.as_ref().ok_or_else(|| invalid("conflict without its log id"))?;
        return Ok(Err(StreamAppendError::Conflict(log_id_from_pb(at))));
    }
    Ok(Ok(r.last_log_id.as_ref().map(log_id_from_pb)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let nodes = BTreeMap::from([(
            7,
            MemberNode { name: "a".into(), peer_urls: vec!["http://x".into()], client_urls: vec![] },
        )]);
        let m = Membership::new(vec![BTreeSet::from([7])], nodes).expect("membership");
        let e =
            Entry { log_id: log_id_from_pb(&pb::LogId { term: 3, index: 9 }), payload: EntryPayload::Membership(m) };
        let back = entry_from_pb(entry_to_pb(&e)).expect("decode");
        assert_eq!(back, e);
    }

    #[test]
    fn a_vote_without_leader_is_rejected() {
        assert!(vote_from_pb(Some(&pb::Vote { leader_id: None, committed: false })).is_err());
        assert!(vote_from_pb(None).is_err());
    }

    #[test]
    fn an_append_with_a_gap_is_refused() {
        let vote = Some(pb::Vote { leader_id: Some(pb::LeaderId { term: 1, node_id: 1 }), committed: true });
        let entry = |index| pb::Entry { term: 1, index, request: None, membership: None };
        let append = |prev: Option<u64>, indexes: &[u64]| pb::AppendEntriesRequest {
            vote,
            prev_log_id: prev.map(|index| pb::LogId { term: 1, index }),
            entries: indexes.iter().map(|&i| entry(i)).collect(),
            leader_commit: None,
        };
        assert!(append_request_from_pb(append(Some(4), &[5, 6])).is_ok());
        assert!(append_request_from_pb(append(None, &[0, 1])).is_ok());
        assert!(append_request_from_pb(append(Some(4), &[])).is_ok(), "a heartbeat");
        for (prev, indexes) in [(Some(4), &[6, 7][..]), (Some(4), &[5, 7]), (None, &[1]), (Some(4), &[4, 5])] {
            let err = append_request_from_pb(append(prev, indexes)).expect_err("a gap or an overlap");
            assert!(err.to_string().contains("not contiguous"), "{err}");
        }
    }

    #[test]
    fn stream_replies_round_trip() {
        let at = log_id_from_pb(&pb::LogId { term: 2, index: 40 });
        let vote =
            vote_from_pb(Some(&pb::Vote { leader_id: Some(pb::LeaderId { term: 5, node_id: 3 }), committed: true }))
                .expect("vote");
        let replies: [StreamAppendResult<TypeConfig>; 4] =
            [Ok(None), Ok(Some(at)), Err(StreamAppendError::Conflict(at)), Err(StreamAppendError::HigherVote(vote))];
        for reply in replies {
            assert_eq!(stream_reply_from_pb(&stream_reply_to_pb(&reply)).expect("decode"), reply);
        }
        let no_log_id = pb::AppendEntriesResponse { conflict: true, ..Default::default() };
        assert!(stream_reply_from_pb(&no_log_id).is_err(), "a conflict must name where");
    }
}
