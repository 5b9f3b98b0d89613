//! Who a member is: member and cluster ids derived from the initial cluster
//! (so every member computes the same ones), the identity file that ties a
//! data dir to its cluster, and the checks that refuse a data dir that
//! belongs elsewhere.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use capstan_proto::raft::MemberIdentity;
use prost::Message;
use sha2::{Digest, Sha256};

use super::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid --initial-cluster {0:?}: {1}")]
    InitialCluster(String, String),
    #[error("--initial-cluster has no member named {0:?} (set --name or --initial-cluster)")]
    NotInInitialCluster(String),
    #[error(
        "--initial-advertise-peer-urls {advertised:?} do not match the URLs of {name:?} in --initial-cluster {listed:?}"
    )]
    PeerUrlMismatch { name: String, advertised: Vec<String>, listed: Vec<String> },
    #[error("data dir {dir} is corrupt: {reason}; it will not be reset, move it away to start afresh")]
    Corrupt { dir: String, reason: String },
    #[error("data dir {dir} belongs to member {found:?}, not {wanted:?}")]
    OtherMember { dir: String, found: String, wanted: String },
    #[error("data dir {dir} belongs to cluster {found:x}, but the flags describe cluster {wanted:x}")]
    OtherCluster { dir: String, found: u64, wanted: u64 },
    #[error("could not join: {0}")]
    Join(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses `name=url,name=url`; a name may be listed with several URLs.
pub fn parse_initial_cluster(s: &str) -> Result<BTreeMap<String, Vec<String>>, BootstrapError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| BootstrapError::InitialCluster(s.into(), format!("{part:?} is not name=url")))?;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(BootstrapError::InitialCluster(s.into(), format!("{url:?} is not an http(s) URL")));
        }
        out.entry(name.to_string()).or_default().push(url.to_string());
    }
    if out.is_empty() {
        return Err(BootstrapError::InitialCluster(s.into(), "no members".into()));
    }
    Ok(out)
}

fn hash_u64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update(b"\n");
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b).max(1)
}

/// A member's id: from its peer URLs and the cluster token, as etcd derives it.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    hash_u64(&[urls.join(",").as_bytes(), token.as_bytes()])
}

/// The cluster id: from the initial members' ids and the token.
pub fn cluster_id(member_ids: &[u64], token: &str) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let joined: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
    hash_u64(&[&joined, token.as_bytes()])
}

/// Initial members by id: (name, peer URLs).
pub type InitialMembers = BTreeMap<u64, (String, Vec<String>)>;

/// The initial members and the cluster id, as the flags describe them.
pub fn initial_members(cfg: &Config) -> Result<(InitialMembers, u64), BootstrapError> {
    let parsed = parse_initial_cluster(&cfg.initial_cluster)?;
    let members: BTreeMap<u64, (String, Vec<String>)> =
        parsed.into_iter().map(|(name, urls)| (member_id(&urls, &cfg.initial_cluster_token), (name, urls))).collect();
    let ids: Vec<u64> = members.keys().copied().collect();
    Ok((members, cluster_id(&ids, &cfg.initial_cluster_token)))
}

/// This member's id in the initial cluster, checking that its advertised URLs agree.
pub fn own_initial_id(cfg: &Config, members: &InitialMembers) -> Result<u64, BootstrapError> {
    let (id, (_, listed)) = members
        .iter()
        .find(|(_, (name, _))| *name == cfg.name)
        .ok_or_else(|| BootstrapError::NotInInitialCluster(cfg.name.clone()))?;
    let mut a = cfg.initial_advertise_peer_urls.clone();
    let mut b = listed.clone();
    a.sort();
    b.sort();
    if a != b {
        return Err(BootstrapError::PeerUrlMismatch { name: cfg.name.clone(), advertised: a, listed: b });
    }
    Ok(*id)
}

pub fn read_identity(path: &Path, dir: &Path) -> Result<MemberIdentity, BootstrapError> {
    let corrupt = |reason: String| BootstrapError::Corrupt { dir: dir.display().to_string(), reason };
    let raw = fs::read(path).map_err(|e| corrupt(format!("cannot read {}: {e}", path.display())))?;
    let id = MemberIdentity::decode(raw.as_slice()).map_err(|e| corrupt(format!("bad identity file: {e}")))?;
    if id.member_id == 0 || id.cluster_id == 0 {
        return Err(corrupt("identity file without ids".into()));
    }
    Ok(id)
}

/// Writes the identity atomically: a temporary file, fsync, rename, fsync of the dir.
pub fn write_identity(path: &Path, id: &MemberIdentity) -> Result<(), BootstrapError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&id.encode_to_vec())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_order_free() {
        let a = member_id(&["http://a:2380".into(), "http://b:2380".into()], "t");
        let b = member_id(&["http://b:2380".into(), "http://a:2380".into()], "t");
        assert_eq!(a, b);
        assert_ne!(a, member_id(&["http://a:2380".into(), "http://b:2380".into()], "other-token"));
        assert_eq!(cluster_id(&[3, 1, 2], "t"), cluster_id(&[1, 2, 3], "t"));
    }

    #[test]
    fn initial_cluster_parsing() {
        let m = parse_initial_cluster("a=http://1:1,b=http://2:2,a=http://3:3").expect("parse");
        assert_eq!(m["a"], vec!["http://1:1".to_string(), "http://3:3".to_string()]);
        assert!(parse_initial_cluster("a:http://x").is_err());
        assert!(parse_initial_cluster("a=ftp://x").is_err());
        assert!(parse_initial_cluster("").is_err());
    }

    #[test]
    fn own_id_requires_matching_urls() {
        let cfg = Config {
            name: "b".into(),
            initial_cluster: "a=http://1:1,b=http://2:2".into(),
            initial_advertise_peer_urls: vec!["http://9:9".into()],
            ..Config::default()
        };
        let (members, _) = initial_members(&cfg).expect("members");
        assert!(matches!(own_initial_id(&cfg, &members), Err(BootstrapError::PeerUrlMismatch { .. })));
        let cfg = Config { name: "zz".into(), ..cfg };
        assert!(matches!(own_initial_id(&cfg, &members), Err(BootstrapError::NotInInitialCluster(_))));
    }

    #[test]
    fn identity_round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity");
        let id = MemberIdentity { cluster_id: 5, member_id: 7, name: "n".into() };
        write_identity(&path, &id).expect("write");
        assert_eq!(read_identity(&path, dir.path()).expect("read"), id);
        fs::write(&path, b"\xff\xff\xff").expect("write");
        assert!(matches!(read_identity(&path, dir.path()), Err(BootstrapError::Corrupt { .. })));
    }
}
