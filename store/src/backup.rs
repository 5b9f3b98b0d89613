//! Backups: what a snapshot file holds, and a restore of one into the data
//! dir of a member of a new cluster (as `etcdutl snapshot restore` does).
//!
//! A backup is the same file as a Raft snapshot (see `raft::snapshot`). A
//! restore keeps the keyspace, its revisions and leases, and drops what
//! belongs to the old cluster: its membership and Raft position. The new
//! members bootstrap from `--initial-cluster` as a fresh cluster would, and
//! their first write gets the snapshot's revision plus one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use capstan_proto::raft::{AppliedState, MemberIdentity, RevisionRecord};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::mvcc::APPLIED_KEY;
use crate::mvcc::backend::{Backend, Family, WriteOp};
use crate::mvcc::rocks::RocksBackend;
use crate::raft::snapshot::{self, Decoded, SnapshotError};
use crate::server::Config;
use crate::server::bootstrap::{self, BootstrapError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("snapshot file {0}: {1}")]
    Content(PathBuf, String),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("data dir {0} already exists; restore into a new directory")]
    DataDirExists(PathBuf),
    #[error("restore into {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// What `snapshot status` reports of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// sha256 of the file's contents (the checksum its trailer carries).
    pub hash: String,
    pub revision: i64,
    pub compact_revision: i64,
    /// Keys that exist at `revision`.
    pub total_keys: usize,
    pub total_size: u64,
    pub leases: usize,
    /// The file format's version (the last byte of its magic).
    pub version: u8,
}

/// Reads and verifies a snapshot file, then describes it.
pub fn status(path: &Path) -> Result<SnapshotStatus, BackupError> {
    let raw = fs::read(path).map_err(|e| SnapshotError::Io { path: path.to_path_buf(), source: e })?;
    let decoded = snapshot::decode(path, &raw)?;
    let applied = applied_state(path, &decoded)?;
    let mut deleted: HashMap<Vec<u8>, bool> = HashMap::new();
    let mut leases = 0;
    for op in &decoded.ops {
        match op {
            // Records come in revision order, so the last one per key wins.
            WriteOp::Put(Family::Revisions, _, value) => {
                let record = RevisionRecord::decode(value.as_slice())
                    .map_err(|e| BackupError::Content(path.to_path_buf(), format!("bad revision record: {e}")))?;
                if let Some(kv) = record.kv {
                    deleted.insert(kv.key.to_vec(), record.tombstone);
                }
            }
            WriteOp::Put(Family::Leases, ..) => leases += 1,
            _ => {}
        }
    }
    let sha = &raw[raw.len() - Sha256::output_size()..];
    Ok(SnapshotStatus {
        hash: sha.iter().map(|b| format!("{b:02x}")).collect(),
        revision: applied.revision,
        compact_revision: applied.compact_revision,
        total_keys: deleted.values().filter(|d| !**d).count(),
        total_size: raw.len() as u64,
        leases,
        version: snapshot::MAGIC[snapshot::MAGIC.len() - 1],
    })
}

fn applied_state(path: &Path, decoded: &Decoded) -> Result<AppliedState, BackupError> {
    let raw = decoded.ops.iter().find_map(|op| match op {
        WriteOp::Put(Family::Meta, key, value) if key == APPLIED_KEY => Some(value),
        _ => None,
    });
    let raw = raw.ok_or_else(|| BackupError::Content(path.to_path_buf(), "no applied state record".into()))?;
    AppliedState::decode(raw.as_slice())
        .map_err(|e| BackupError::Content(path.to_path_buf(), format!("bad applied state record: {e}")))
}

/// Where and as whom to restore: etcd's restore flags.
#[derive(Clone, Debug)]
pub struct RestoreConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub initial_cluster: String,
    pub initial_cluster_token: String,
    pub initial_advertise_peer_urls: Vec<String>,
}

/// The member a restore created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub member_id: u64,
    pub cluster_id: u64,
    pub revision: i64,
}

/// Builds `cfg.data_dir` from the snapshot at `path` for member `cfg.name` of
/// the new cluster `cfg.initial_cluster`. The file is verified completely
/// first, and the data dir is assembled beside its final place and renamed
/// into it last, so a failure leaves nothing behind.
pub fn restore(path: &Path, cfg: &RestoreConfig) -> Result<Restored, BackupError> {
    let decoded = snapshot::read(path)?;
    let applied = applied_state(path, &decoded)?;
    let server_cfg = Config {
        name: cfg.name.clone(),
        data_dir: cfg.data_dir.clone(),
        initial_cluster: cfg.initial_cluster.clone(),
        initial_cluster_token: cfg.initial_cluster_token.clone(),
        initial_advertise_peer_urls: cfg.initial_advertise_peer_urls.clone(),
        ..Config::default()
    };
    let (members, cluster_id) = bootstrap::initial_members(&server_cfg)?;
    let member_id = bootstrap::own_initial_id(&server_cfg, &members)?;
    if cfg.data_dir.exists() {
        return Err(BackupError::DataDirExists(cfg.data_dir.clone()));
    }

    let staging = staging_dir(&cfg.data_dir);
    let built = build(&staging, decoded, &applied, MemberIdentity { cluster_id, member_id, name: cfg.name.clone() })
        .and_then(|()| fs::rename(&staging, &cfg.data_dir).map_err(|e| e.to_string()))
        .and_then(|()| sync_parent(&cfg.data_dir).map_err(|e| e.to_string()));
    if let Err(reason) = built {
        let _ = fs::remove_dir_all(&staging);
        return Err(BackupError::Write { path: cfg.data_dir.clone(), reason });
    }
    Ok(Restored { member_id, cluster_id, revision: applied.revision })
}

/// A sibling of the data dir (same filesystem, so the final rename is atomic).
fn staging_dir(data_dir: &Path) -> PathBuf {
    let name = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    data_dir.with_file_name(format!(".{name}.restoring-{:08x}", rand::random::<u32>()))
}

/// Writes the member dir: the keyspace without the old cluster's Raft state, and the identity.
fn build(dir: &Path, decoded: Decoded, applied: &AppliedState, identity: MemberIdentity) -> Result<(), String> {
    let member_dir = dir.join("member");
    fs::create_dir_all(&member_dir).map_err(|e| e.to_string())?;
    let fresh = AppliedState {
        revision: applied.revision,
        compact_revision: applied.compact_revision,
        // Applied index, membership and alarms belonged to the old cluster.
        ..Default::default()
    };
    let ops = decoded
        .ops
        .into_iter()
        .map(|op| match op {
            WriteOp::Put(Family::Meta, key, _) if key == APPLIED_KEY => {
                WriteOp::Put(Family::Meta, key, fresh.encode_to_vec())
            }
            other => other,
        })
        .collect();
    {
        let backend = RocksBackend::open(&member_dir.join("kv")).map_err(|e| e.to_string())?;
        backend.write(ops).map_err(|e| e.to_string())?;
        backend.sync().map_err(|e| e.to_string())?;
    }
    bootstrap::write_identity(&member_dir.join("identity"), &identity).map_err(|e| e.to_string())?;
    fs::write(member_dir.join(RESTORED_MARKER), b"the keyspace came from a snapshot file\n").map_err(|e| e.to_string())
}

/// Left in a restored member dir until the member has snapshotted its
/// keyspace into Raft (server/run.rs): until then the keyspace is in no Raft
/// log entry, and a member added later would replay the log without it.
pub const RESTORED_MARKER: &str = "restored";

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => fs::File::open(parent)?.sync_all(),
        None => fs::File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use capstan_proto::etcdserverpb::{DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest};
    use capstan_proto::raft::{LogId, Membership, SnapshotMeta, StoreRequest, store_request::Request};

    use super::*;
    use crate::mvcc::MvccStore;
    use crate::mvcc::memory::MemoryBackend;

    fn apply(store: &MvccStore, request: Request) {
        let mut a = store.applier();
        a.apply(&StoreRequest { request: Some(request) }).expect("apply");
        a.commit().expect("commit");
    }

    fn put(key: &str, value: &str, lease: i64) -> Request {
        Request::Put(PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            lease,
            ..Default::default()
        })
    }

    /// A snapshot of a store at revision 5 with keys a (two versions), c
    /// (leased) and b deleted; its applied state names an old cluster.
    fn backup(dir: &Path) -> PathBuf {
        let backend = Arc::new(MemoryBackend::default());
        let store = MvccStore::open(backend.clone()).expect("open");
        apply(&store, Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 }));
        apply(&store, put("a", "1", 0));
        apply(&store, put("b", "2", 0));
        apply(&store, put("a", "3", 0));
        apply(&store, Request::DeleteRange(DeleteRangeRequest { key: b"b".to_vec().into(), ..Default::default() }));
        apply(&store, put("c", "4", 7));
        let mut old = store.applied_state();
        old.last_applied = Some(LogId { term: 3, index: 99 });
        old.last_membership = Some(Membership::default());
        backend.write(vec![WriteOp::Put(Family::Meta, APPLIED_KEY.to_vec(), old.encode_to_vec())]).expect("write");
        let path = dir.join("backup.snap");
        snapshot::write(&path, &SnapshotMeta::default(), backend.read_view().as_ref()).expect("snapshot");
        path
    }

    fn config(dir: &Path) -> RestoreConfig {
        RestoreConfig {
            name: "m1".into(),
            data_dir: dir.join("m1"),
            initial_cluster: "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381".into(),
            initial_cluster_token: "restored".into(),
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
        }
    }

    #[test]
    fn status_counts_live_keys_at_the_snapshot_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = backup(dir.path());
        let s = status(&path).expect("status");
        assert_eq!((s.revision, s.total_keys, s.leases, s.version), (6, 2, 1, 1));
        assert_eq!(s.total_size, fs::metadata(&path).expect("stat").len());
        assert_eq!(s.hash.len(), 64);
    }

    #[test]
    fn restore_keeps_the_keyspace_and_drops_the_old_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = backup(dir.path());
        let cfg = config(dir.path());
        let restored = restore(&path, &cfg).expect("restore");
        assert_eq!(restored.revision, 6);

        let identity =
            bootstrap::read_identity(&cfg.data_dir.join("member/identity"), &cfg.data_dir).expect("identity");
        assert_eq!((identity.member_id, identity.cluster_id), (restored.member_id, restored.cluster_id));
        let backend = RocksBackend::open(&cfg.data_dir.join("member/kv")).expect("open kv");
        let store = MvccStore::open(Arc::new(backend)).expect("open store");
        let applied = store.applied_state();
        assert_eq!((applied.revision, applied.last_applied, applied.last_membership), (6, None, None));
        let all = store.range(&RangeRequest {
            key: b"\0".to_vec().into(),
            range_end: b"\0".to_vec().into(),
            ..Default::default()
        });
        let kvs = all.expect("range").kvs;
        let pairs: Vec<(&[u8], &[u8], i64)> = kvs.iter().map(|kv| (&kv.key[..], &kv.value[..], kv.lease)).collect();
        assert_eq!(pairs, vec![(&b"a"[..], &b"3"[..], 0), (&b"c"[..], &b"4"[..], 7)]);
        let old = store.range(&RangeRequest { key: b"a".to_vec().into(), revision: 2, ..Default::default() });
        assert_eq!(old.expect("old revision").kvs[0].value, b"1".to_vec());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), 2, "only the backup and the data dir: {leftovers:?}");
    }

    #[test]
    fn a_damaged_file_or_an_existing_data_dir_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = backup(dir.path());
        let cfg = config(dir.path());
        let mut raw = fs::read(&path).expect("read");
        raw[40] ^= 0x01;
        let damaged = dir.path().join("damaged.snap");
        fs::write(&damaged, &raw).expect("write");
        let truncated = dir.path().join("truncated.snap");
        fs::write(&truncated, &raw[..raw.len() / 2]).expect("write");
        for bad in [&damaged, &truncated] {
            let err = restore(bad, &cfg).expect_err("a damaged file is refused");
            assert!(err.to_string().contains("snapshot file"), "{err}");
            assert!(!cfg.data_dir.exists());
            assert!(status(bad).is_err());
        }
        fs::create_dir(&cfg.data_dir).expect("mkdir");
        let err = restore(&path, &cfg).expect_err("an existing data dir is refused");
        assert!(matches!(err, BackupError::DataDirExists(_)), "{err}");
        let wrong_name = RestoreConfig { name: "m9".into(), data_dir: dir.path().join("m9"), ..cfg };
        assert!(matches!(restore(&path, &wrong_name), Err(BackupError::Bootstrap(_))));
    }
}
