//! Conversions between openraft's types and their protobuf records (disk and
//! wire). Decoding validates: a record missing a required field is an error,
//! never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use capstan_proto::raft as pb;
use openraft::EntryPayload;
use openraft::vote::RaftLeaderId;

use super::{Entry, LogId, MemberNode, Membership, Proposal, StoredMembership, Vote};

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
}
