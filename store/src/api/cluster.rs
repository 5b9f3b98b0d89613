//! The Cluster service: member list, add, remove, update, promote. Members
//! live in Raft's membership config; changes go through the leader.

use std::sync::Arc;

use capstan_proto::etcdserverpb::cluster_server::Cluster;
use capstan_proto::etcdserverpb::{
    Member as PbMember, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest,
    MemberUpdateResponse,
};
use capstan_proto::raft::{self as pb, membership_change::Change};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::raft::codec::node_to_pb;
use crate::raft::{MemberNode, Membership};
use crate::server::member::Member;

pub struct ClusterService {
    member: Arc<Member>,
}

impl ClusterService {
    pub fn new(member: Arc<Member>) -> Self {
        ClusterService { member }
    }

    /// Cluster responses carry no revision, as etcd's do.
    fn header(&self) -> Option<capstan_proto::etcdserverpb::ResponseHeader> {
        Some(self.member.header(0))
    }
}

/// etcd's member records, sorted by id.
pub fn members(m: &Membership) -> Vec<PbMember> {
    let voters: std::collections::BTreeSet<u64> = m.voter_ids().collect();
    m.nodes().map(|(id, n)| to_member(*id, n, !voters.contains(id))).collect()
}

fn to_member(id: u64, n: &MemberNode, learner: bool) -> PbMember {
    PbMember {
        id,
        name: n.name.clone(),
        peer_ur_ls: n.peer_urls.clone(),
        client_ur_ls: n.client_urls.clone(),
        is_learner: learner,
    }
}

fn check_urls(urls: &[String]) -> Result<(), Status> {
    if urls.is_empty() {
        return Err(Error::InvalidRequest("member has no peer URLs".into()).into());
    }
    for u in urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Error::InvalidRequest(format!("invalid peer URL {u:?}")).into());
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(&self, req: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        let r = req.into_inner();
        check_urls(&r.peer_ur_ls)?;
        let existing = self.member.membership();
        let id = loop {
            let id = rand::random::<u64>();
            if id != 0 && existing.get_node(&id).is_none() {
                break id;
            }
        };
        let node = MemberNode { name: String::new(), peer_urls: r.peer_ur_ls.clone(), client_urls: vec![] };
        let change = pb::MembershipChange {
            change: Some(Change::Add(pb::AddMember { id, node: Some(node_to_pb(&node)), learner: r.is_learner })),
        };
        let m = self.member.change_membership(change).await?;
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member: Some(to_member(id, &node, r.is_learner)),
            members: members(&m),
        }))
    }

    async fn member_remove(&self, req: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        let change = pb::MembershipChange { change: Some(Change::Remove(req.into_inner().id)) };
        let m = self.member.change_membership(change).await?;
        Ok(Response::new(MemberRemoveResponse { header: self.header(), members: members(&m) }))
    }

    async fn member_update(&self, req: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        let r = req.into_inner();
        check_urls(&r.peer_ur_ls)?;
        let mut node = self.member.node(r.id).ok_or(Error::MemberNotFound)?;
        node.peer_urls = r.peer_ur_ls;
        let change = pb::MembershipChange {
            change: Some(Change::Update(pb::UpdateMember { id: r.id, node: Some(node_to_pb(&node)) })),
        };
        let m = self.member.change_membership(change).await?;
        Ok(Response::new(MemberUpdateResponse { header: self.header(), members: members(&m) }))
    }

    async fn member_list(&self, req: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        if req.into_inner().linearizable {
            self.member.read_barrier().await?;
        }
        Ok(Response::new(MemberListResponse { header: self.header(), members: members(&self.member.membership()) }))
    }

    async fn member_promote(
        &self,
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let change = pb::MembershipChange { change: Some(Change::Promote(req.into_inner().id)) };
        let m = self.member.change_membership(change).await?;
        Ok(Response::new(MemberPromoteResponse { header: self.header(), members: members(&m) }))
    }
}
