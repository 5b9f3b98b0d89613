//! Starting and stopping a member: open (or bootstrap) the data dir, start
//! Raft, serve the peer and client ports, run the background loops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_proto::etcdserverpb::cluster_server::ClusterServer;
use capstan_proto::etcdserverpb::kv_server::KvServer;
use capstan_proto::etcdserverpb::lease_server::LeaseServer;
use capstan_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use capstan_proto::etcdserverpb::watch_server::WatchServer;
use capstan_proto::raft::raft_peer_server::RaftPeerServer;
use capstan_proto::raft::{self as pb, MemberIdentity, membership_change::Change};
use openraft::errors::{InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;

use super::bootstrap::{self, BootstrapError};
use super::config::{ClusterState, Config};
use super::member::{Member, Timing};
use super::shards::{self, Shards};
use super::tls::{self, Acceptor, MemberTls, TlsError};
use crate::api::{self, MAX_RECV_BYTES};
use crate::lease::clock::LeaseClock;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::mvcc::rocks::RocksBackend;
use crate::raft::codec::node_to_pb;
use crate::raft::log_store::LogStore;
use crate::raft::network::{ChannelPool, PeerNetwork, peer_request};
use crate::raft::peer_service::PeerService;
use crate::raft::snapshot::SnapshotDir;
use crate::raft::state_machine::StateMachine;
use crate::raft::{MemberNode, Raft, RaftConfig};
use crate::watch::WatchHub;
use crate::watch::service::WatchService;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("cannot open {what} at {path}: {reason}")]
    Open { what: &'static str, path: PathBuf, reason: String },
    #[error("cannot listen on {url}: {reason}")]
    Listen { url: String, reason: String },
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start the client threads: {0}")]
    Threads(String),
}

/// A started member and its servers.
pub struct RunningMember {
    pub member: Arc<Member>,
    pub client_addrs: Vec<SocketAddr>,
    pub peer_addrs: Vec<SocketAddr>,
    tasks: JoinSet<()>,
}

impl RunningMember {
    /// Stops serving, stops Raft and waits for every task.
    pub async fn shutdown(mut self) {
        self.member.shutdown.cancel();
        if let Err(e) = self.member.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        // Connections get this long to finish: hyper's graceful shutdown can
        // wait forever on a connection that never sent its first bytes
        // (hyperium/hyper#4170), and a stopping member must stop.
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "connections still open at shutdown; closing them");
            self.tasks.shutdown().await;
        }
    }
}

/// How long a stopping member waits for open client and peer connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A member restored from a snapshot file holds its keyspace outside the
/// Raft log. Once its membership entry is applied, it takes a Raft snapshot
/// and purges the log behind it, so any member added later starts from that
/// snapshot (with the keyspace) instead of replaying a log without it.
async fn seal_restored_keyspace(member: Arc<Member>, marker: PathBuf) {
    let sealed = async {
        let applied = member
            .raft
            .wait(None)
            .metrics(|m| m.last_applied.is_some(), "the membership applied")
            .await
            .map_err(|e| e.to_string())?
            .last_applied
            .map(|id| id.index)
            .unwrap_or_default();
        member.raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
        member
            .raft
            .wait(None)
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "a snapshot")
            .await
            .map_err(|e| e.to_string())?;
        member.raft.trigger().purge_log(applied).await.map_err(|e| e.to_string())?;
        member
            .raft
            .wait(None)
            .metrics(|m| m.purged.is_some_and(|p| p.index >= applied), "the log purged")
            .await
            .map_err(|e| e.to_string())?;
        std::fs::remove_file(&marker).map_err(|e| e.to_string())?;
        Ok::<u64, String>(applied)
    };
    tokio::select! {
        result = sealed => match result {
            Ok(index) => tracing::info!(index, "the restored keyspace is in a Raft snapshot"),
            Err(e) => tracing::error!(error = %e, "could not snapshot the restored keyspace; members added now would miss it"),
        },
        _ = member.shutdown.cancelled() => {}
    }
}

/// The host:port of an http:// or https:// listen URL.
fn socket_of(url: &str) -> Result<String, StartError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or_else(|| {
        StartError::Listen { url: url.to_string(), reason: "not an http:// or https:// URL".to_string() }
    })?;
    Ok(rest.trim_end_matches('/').to_string())
}

/// The TLS acceptor for a listen URL: `Some` for https://, which `tls` must
/// have (MemberTls::load refuses https:// URLs without certificates).
fn acceptor_for(url: &str, tls: &Option<Arc<Acceptor>>) -> Result<Option<Arc<Acceptor>>, StartError> {
    if !url.starts_with("https://") {
        return Ok(None);
    }
    match tls {
        Some(acceptor) => Ok(Some(acceptor.clone())),
        None => Err(StartError::Listen { url: url.to_string(), reason: "https:// without a certificate".to_string() }),
    }
}

async fn bind(url: &str) -> Result<TcpListener, StartError> {
    let addr = socket_of(url)?;
    TcpListener::bind(&addr).await.map_err(|e| StartError::Listen { url: url.to_string(), reason: e.to_string() })
}

struct Identity {
    member_id: u64,
    cluster_id: u64,
    /// The initial members to initialize Raft with (a new cluster only).
    initial: Option<BTreeMap<u64, MemberNode>>,
}

/// Reads this member's identity from its data dir, or bootstraps it.
async fn identify(cfg: &Config, member_dir: &Path, pool: &ChannelPool) -> Result<Identity, StartError> {
    let identity_path = member_dir.join("identity");
    let dir = cfg.data_dir.display().to_string();
    let initial = |members: BTreeMap<u64, (String, Vec<String>)>| -> BTreeMap<u64, MemberNode> {
        members
            .into_iter()
            .map(|(id, (name, peer_urls))| (id, MemberNode { name, peer_urls, client_urls: vec![] }))
            .collect()
    };
    if member_dir.exists() {
        let id = bootstrap::read_identity(&identity_path, &cfg.data_dir)?;
        if id.name != cfg.name {
            return Err(BootstrapError::OtherMember { dir, found: id.name, wanted: cfg.name.clone() }.into());
        }
        let mut init = None;
        if cfg.initial_cluster_state == ClusterState::New {
            let (members, cluster) = bootstrap::initial_members(cfg)?;
            if cluster != id.cluster_id {
                return Err(BootstrapError::OtherCluster { dir, found: id.cluster_id, wanted: cluster }.into());
            }
            init = Some(initial(members));
        }
        return Ok(Identity { member_id: id.member_id, cluster_id: id.cluster_id, initial: init });
    }
    let (member_id, cluster_id, init) = match cfg.initial_cluster_state {
        ClusterState::New => {
            let (members, cluster) = bootstrap::initial_members(cfg)?;
            let me = bootstrap::own_initial_id(cfg, &members)?;
            (me, cluster, Some(initial(members)))
        }
        ClusterState::Existing => {
            let (member_id, cluster_id) = join_existing(cfg, pool).await?;
            (member_id, cluster_id, None)
        }
    };
    std::fs::create_dir_all(member_dir).map_err(BootstrapError::Io)?;
    let id = MemberIdentity { cluster_id, member_id, name: cfg.name.clone() };
    bootstrap::write_identity(&identity_path, &id)?;
    Ok(Identity { member_id, cluster_id, initial: init })
}

/// Asks the peers of `--initial-cluster` for the cluster, and finds this
/// member in it by its peer URLs (it must have been added with `member add`).
async fn join_existing(cfg: &Config, pool: &ChannelPool) -> Result<(u64, u64), StartError> {
    let members = bootstrap::parse_initial_cluster(&cfg.initial_cluster)?;
    let mut errors = Vec::new();
    for (name, urls) in members.iter().filter(|(n, _)| **n != cfg.name) {
        let node = MemberNode { name: name.clone(), peer_urls: urls.clone(), client_urls: vec![] };
        let mut client = match pool.client(&node) {
            Ok(client) => client,
            Err(e) => {
                errors.push(format!("{name}: {}", e.message()));
                continue;
            }
        };
        match client.cluster_info(peer_request(0, pb::Empty {}, Duration::from_secs(3))).await {
            Ok(info) => {
                let info = info.into_inner();
                let membership = info.membership.unwrap_or_default();
                let me = membership
                    .nodes
                    .iter()
                    .find(|(_, n)| n.peer_urls.iter().any(|u| cfg.initial_advertise_peer_urls.contains(u)));
                return match me {
                    Some((id, _)) => Ok((*id, info.cluster_id)),
                    None => Err(BootstrapError::Join(format!(
                        "the cluster has no member with peer URLs {:?}; add it first with `member add`",
                        cfg.initial_advertise_peer_urls
                    ))
                    .into()),
                };
            }
            Err(e) => errors.push(format!("{name}: {}", status_reason(&e))),
        }
    }
    if errors.is_empty() {
        errors.push("no other member in --initial-cluster".to_string());
    }
    Err(BootstrapError::Join(format!("no member of --initial-cluster answered ({})", errors.join("; "))).into())
}

/// A status's message with the errors beneath it: a failed TLS handshake
/// is only named at the bottom of a transport error's chain.
fn status_reason(status: &tonic::Status) -> String {
    let mut reason = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let text = e.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        source = e.source();
    }
    reason
}

fn raft_config(cfg: &Config) -> Result<Arc<RaftConfig>, StartError> {
    let rc = RaftConfig {
        cluster_name: cfg.initial_cluster_token.clone(),
        heartbeat_interval: cfg.heartbeat_interval_ms,
        election_timeout_min: cfg.election_timeout_ms,
        election_timeout_max: cfg.election_timeout_ms * 2,
        install_snapshot_timeout: cfg.election_timeout_ms.max(1000) * 10,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snapshot_count),
        max_in_snapshot_log_to_keep: cfg.snapshot_catchup_entries,
        ..Default::default()
    };
    Ok(Arc::new(rc.validate().map_err(|e| StartError::Raft(e.to_string()))?))
}

/// Starts a member as `cfg` describes: bootstraps or reopens its data dir,
/// joins Raft and serves the peer and client URLs.
pub async fn start(cfg: Config) -> Result<RunningMember, StartError> {
    let tls = MemberTls::load(&cfg)?;
    let pool = ChannelPool::new(tls.peer_dial.clone());
    let member_dir = cfg.data_dir.join("member");
    let identity = identify(&cfg, &member_dir, &pool).await?;
    let metrics = Metrics::new();
    let open_err =
        |what: &'static str, path: &Path, reason: String| StartError::Open { what, path: path.to_path_buf(), reason };

    let log_path = member_dir.join("raft");
    let log_store =
        LogStore::open(&log_path, metrics.clone()).map_err(|e| open_err("raft log", &log_path, e.to_string()))?;
    let kv_path = member_dir.join("kv");
    let backend = RocksBackend::open(&kv_path).map_err(|e| open_err("key-value database", &kv_path, e.to_string()))?;
    let mvcc = Arc::new(
        MvccStore::open(Arc::new(backend)).map_err(|e| open_err("key-value database", &kv_path, e.to_string()))?,
    );
    let snap_path = member_dir.join("snap");
    let snapshots =
        SnapshotDir::open(snap_path.clone()).map_err(|e| open_err("snapshot dir", &snap_path, e.to_string()))?;
    let hub = WatchHub::new();
    let lease_clock = Arc::new(Mutex::new(LeaseClock::default()));
    let state_machine = StateMachine::new(mvcc.clone(), hub.clone(), snapshots.clone(), lease_clock.clone());
    let network = PeerNetwork { cluster_id: identity.cluster_id, pool: pool.clone() };
    let raft = Raft::new(identity.member_id, raft_config(&cfg)?, network, log_store, state_machine)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

    let member = Arc::new(Member {
        id: identity.member_id,
        cluster_id: identity.cluster_id,
        name: cfg.name.clone(),
        raft,
        mvcc,
        hub,
        metrics,
        pool,
        timing: Timing { election_ms: cfg.election_timeout_ms },
        lease_clock,
        shutdown: CancellationToken::new(),
        leader_reads: Arc::default(),
        follower_reads: Arc::default(),
        forwarder: Arc::default(),
        membership_changes: tokio::sync::Mutex::new(()),
    });

    let mut tasks = JoinSet::new();
    let mut peer_addrs = Vec::new();
    for url in &cfg.listen_peer_urls {
        let listener = bind(url).await?;
        peer_addrs
            .push(listener.local_addr().map_err(|e| StartError::Listen { url: url.clone(), reason: e.to_string() })?);
        let acceptor = acceptor_for(url, &tls.peer)?;
        let svc = RaftPeerServer::new(PeerService::new(member.clone(), snapshots.clone()))
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        let shutdown = member.shutdown.clone();
        tasks.spawn(async move {
            let server = tonic::transport::Server::builder().add_service(svc);
            let served = match acceptor {
                Some(acceptor) => {
                    let (incoming, accepting) = tls::incoming(listener, acceptor, shutdown.clone());
                    let serving = server.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned());
                    tokio::join!(serving, accepting).0
                }
                None => {
                    let incoming = TcpListenerStream::new(listener).map(|s| s.inspect(no_delay));
                    server.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await
                }
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "peer server stopped");
            }
        });
    }
    let mut client_addrs = Vec::new();
    let shards = Shards::start().map_err(|e| StartError::Threads(e.to_string()))?;
    let mut shard_hubs = Vec::with_capacity(shards.count());
    for shard in 0..shards.count() {
        let (hub, relaying) = member.hub.relay();
        let shutdown = member.shutdown.clone();
        tasks.spawn(shards.run(shard, async move {
            tokio::select! {
                _ = relaying => {}
                _ = shutdown.cancelled() => {}
            }
        }));
        shard_hubs.push(hub);
    }
    for url in &cfg.listen_client_urls {
        let listener = bind(url).await?;
        client_addrs
            .push(listener.local_addr().map_err(|e| StartError::Listen { url: url.clone(), reason: e.to_string() })?);
        let acceptor = acceptor_for(url, &tls.client)?;
        let mut outlets = Vec::with_capacity(shards.count());
        for (shard, hub) in shard_hubs.iter().enumerate() {
            let (outlet, handed) = tokio::sync::mpsc::unbounded_channel();
            outlets.push(outlet);
            let routes = client_routes(&member, &snapshots, hub.clone(), cfg.watch_progress_notify_interval);
            let serving = serve_clients(handed, routes, acceptor.clone(), member.shutdown.clone());
            tasks.spawn(shards.run(shard, serving));
        }
        tasks.spawn(shards::hand_out(listener, outlets, member.shutdown.clone()));
    }

    if let Some(initial) = identity.initial {
        let initialized = member.raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
        if !initialized {
            match member.raft.initialize(initial).await {
                Ok(()) => {}
                // A peer that initialized first already reached this member (it
                // voted); that peer's leader will replicate the same membership.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(reason = %e, "joined a cluster that a peer initialized first");
                }
                Err(e) => return Err(StartError::Raft(e.to_string())),
            }
        }
    }
    let restored = member_dir.join(crate::backup::RESTORED_MARKER);
    if restored.exists() {
        tasks.spawn(seal_restored_keyspace(member.clone(), restored));
    }
    tasks.spawn(member.clone().run_lease_expiry());
    tasks.spawn(member.clone().run_metrics());
    tasks.spawn(publish_self(member.clone(), cfg.advertise_client_urls.clone()));
    tracing::info!(
        name = %cfg.name,
        member_id = format!("{:x}", member.id),
        cluster_id = format!("{:x}", member.cluster_id),
        "member started"
    );
    Ok(RunningMember { member, client_addrs, peer_addrs, tasks })
}

fn client_routes(
    member: &Arc<Member>,
    snapshots: &SnapshotDir,
    hub: WatchHub,
    progress_every: Duration,
) -> tonic::service::Routes {
    tonic::service::Routes::from(api::http::router(member.clone()))
        .add_service(KvServer::new(api::kv::KvService::new(member.clone())).max_decoding_message_size(MAX_RECV_BYTES))
        .add_service(
            WatchServer::new(WatchService::new(member.clone(), hub, progress_every))
                .max_decoding_message_size(MAX_RECV_BYTES),
        )
        .add_service(
            LeaseServer::new(api::lease::LeaseService::new(member.clone())).max_decoding_message_size(MAX_RECV_BYTES),
        )
        .add_service(
            ClusterServer::new(api::cluster::ClusterService::new(member.clone()))
                .max_decoding_message_size(MAX_RECV_BYTES),
        )
        .add_service(
            MaintenanceServer::new(api::maintenance::MaintenanceService::new(member.clone(), snapshots.clone()))
                .max_decoding_message_size(MAX_RECV_BYTES),
        )
}

/// Serves the client connections handed to one shard until `shutdown`.
async fn serve_clients(
    handed: tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>,
    routes: tonic::service::Routes,
    acceptor: Option<Arc<Acceptor>>,
    shutdown: CancellationToken,
) {
    let server = tonic::transport::Server::builder().accept_http1(true).add_routes(routes);
    // etcd clients may send a scheme inside :authority; see
    // api/authority.rs. The shim reads HTTP/2 frames, so TLS ends first.
    let served = match acceptor {
        Some(acceptor) => {
            let (incoming, accepting) = tls::incoming_handed(handed, acceptor, shutdown.clone());
            let incoming = incoming.map(|s| s.map(api::authority::new));
            let serving = server.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned());
            tokio::join!(serving, accepting).0
        }
        None => {
            let incoming = UnboundedReceiverStream::new(handed)
                .map(|tcp| tokio::net::TcpStream::from_std(tcp).map(api::authority::new));
            server.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "client server stopped");
    }
}

/// Records this member's name and client URLs in the membership once it is
/// running (a member added with `member add` has neither), as etcd publishes
/// its attributes.
async fn publish_self(member: Arc<Member>, client_urls: Vec<String>) {
    loop {
        if let Some(node) = member.node(member.id) {
            if node.name == member.name && node.client_urls == client_urls {
                return;
            }
            if member.leader().is_some() {
                let wanted = MemberNode {
                    name: member.name.clone(),
                    peer_urls: node.peer_urls.clone(),
                    client_urls: client_urls.clone(),
                };
                let change = pb::MembershipChange {
                    change: Some(Change::Update(pb::UpdateMember { id: member.id, node: Some(node_to_pb(&wanted)) })),
                };
                match member.change_membership(change).await {
                    Ok(_) => continue,
                    Err(e) => tracing::debug!(error = %e, "publishing member attributes"),
                }
            }
        }
        tokio::select! {
            _ = member.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Small replies go out at once, not after the peer's delayed ACK (about
/// 40 ms). tonic's `tcp_nodelay` covers only listeners tonic binds itself.
fn no_delay(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
    }
}
