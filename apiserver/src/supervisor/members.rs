//! The store's membership, through etcd's Cluster API: what a server join
//! changes.

use capstan_proto::etcdserverpb::cluster_client::ClusterClient;
use capstan_proto::etcdserverpb::{Member, MemberAddRequest, MemberListRequest, MemberRemoveRequest};

use crate::storage::{Store, StoreError};

pub async fn list(store: &Store) -> Result<Vec<Member>, StoreError> {
    let reply = store
        .with_channel(|channel| async move {
            ClusterClient::new(channel).member_list(MemberListRequest { linearizable: true }).await
        })
        .await?;
    Ok(reply.into_inner().members)
}

/// Adds a learner: it counts towards no quorum until it has caught up and
/// promoted itself, so a join that never finishes cannot stall the cluster.
pub async fn add_learner(store: &Store, peer_urls: &[String]) -> Result<Member, StoreError> {
    let request = MemberAddRequest { peer_ur_ls: peer_urls.to_vec(), is_learner: true };
    let reply = store
        .with_channel(|channel| {
            let request = request.clone();
            async move { ClusterClient::new(channel).member_add(request).await }
        })
        .await?;
    reply.into_inner().member.ok_or_else(|| StoreError::Other("member add answered without the member".into()))
}

pub async fn remove(store: &Store, id: u64) -> Result<(), StoreError> {
    store
        .with_channel(
            |channel| async move { ClusterClient::new(channel).member_remove(MemberRemoveRequest { id }).await },
        )
        .await?;
    Ok(())
}

/// The members a replaced server leaves behind: the ones with its name or
/// any of its peer URLs (a wiped data dir joining again, or a new machine
/// taking the name).
pub fn replaced_by<'a>(members: &'a [Member], name: &str, peer_urls: &[String]) -> Vec<&'a Member> {
    members
        .iter()
        .filter(|m| (!m.name.is_empty() && m.name == name) || m.peer_ur_ls.iter().any(|u| peer_urls.contains(u)))
        .collect()
}

/// `name=url,…` of the members that have started (named), plus the joiner:
/// the `--initial-cluster` a joining store member asks for the cluster.
pub fn initial_cluster(members: &[Member], name: &str, peer_urls: &[String]) -> String {
    let mut parts: Vec<String> = members
        .iter()
        .filter(|m| !m.name.is_empty() && m.name != name)
        .flat_map(|m| m.peer_ur_ls.iter().map(move |u| format!("{}={u}", m.name)))
        .collect();
    parts.extend(peer_urls.iter().map(|u| format!("{name}={u}")));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, url: &str) -> Member {
        Member { id, name: name.into(), peer_ur_ls: vec![url.into()], ..Default::default() }
    }

    #[test]
    fn a_server_replaces_members_with_its_name_or_its_urls() {
        let members =
            [member(1, "s1", "https://a:2380"), member(2, "s2", "https://b:2380"), member(3, "", "https://c:2380")];
        let ids = |v: Vec<&Member>| v.iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(replaced_by(&members, "s2", &["https://new:2380".into()])), vec![2]);
        assert_eq!(ids(replaced_by(&members, "s3", &["https://c:2380".into()])), vec![3]);
        assert!(replaced_by(&members, "s4", &["https://d:2380".into()]).is_empty());
        assert!(
            replaced_by(&members, "", &["https://d:2380".into()]).is_empty(),
            "an unnamed member is no match by name"
        );
    }

    #[test]
    fn the_initial_cluster_names_started_members_and_the_joiner() {
        let members = [member(1, "s1", "https://a:2380"), member(3, "", "https://c:2380")];
        assert_eq!(initial_cluster(&members, "s2", &["https://b:2380".into()]), "s1=https://a:2380,s2=https://b:2380");
    }
}
