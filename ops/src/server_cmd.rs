//! `capstan server`: a control-plane member. The embedded store member, an
//! apiserver on it, and the controller-manager and scheduler in-process
//! (each leader-elected, so several servers act as one).
//!
//! The first server starts a cluster (`--cluster-init`, the default) and
//! writes the join token; others join with `--server URL --token T`, which
//! adds their store member through the first and hands them the CA. A
//! restart needs neither: the data dir remembers.

use std::path::{Path, PathBuf};

use capstan_apiserver::join_token::JoinToken;
use capstan_apiserver::pki::Pki;
use capstan_proto::raft::{MembershipChange, membership_change::Change};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::apiserver_cmd::ServingArgs;
use crate::components::LeaderElectionArgs;

#[derive(Args)]
pub struct ServerArgs {
    /// This member's name in the store cluster.
    #[arg(long, env = "CAPSTAN_NAME", default_value = "default")]
    name: String,
    /// The store's client URL (this server's apiserver uses it).
    #[arg(long, env = "CAPSTAN_LISTEN_CLIENT_URLS", default_value = "http://127.0.0.1:2379")]
    listen_client_urls: String,
    /// The store's peer URL; with https:// the peer certificates come from the cluster CA.
    #[arg(long, env = "CAPSTAN_LISTEN_PEER_URLS", default_value = "http://127.0.0.1:2380")]
    listen_peer_urls: String,
    /// Start a new cluster (the default when neither --server nor --initial-cluster is given).
    #[arg(long, env = "CAPSTAN_CLUSTER_INIT", conflicts_with_all = ["server", "initial_cluster"])]
    cluster_init: bool,
    /// Join the cluster of this server (https://HOST:PORT), with --token.
    #[arg(long, env = "CAPSTAN_SERVER", requires = "token", conflicts_with = "initial_cluster")]
    server: Option<String>,
    /// The join token: to join, the full token from the first server's <data-dir>/token; with
    /// --cluster-init, the secret to use (a random one otherwise).
    #[arg(long, env = "CAPSTAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// On stop, remove this server's store member from the cluster.
    #[arg(long, env = "CAPSTAN_LEAVE")]
    leave: bool,
    /// Static bootstrap, as `capstan store`: every member as name=peer-url. Also the flag that
    /// starts a data dir made by `capstan ctl snapshot restore` (with the same members and token).
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER")]
    initial_cluster: Option<String>,
    /// With --initial-cluster: `new`, or `existing` for a member added with `member add`.
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER_STATE", default_value = "new", value_parser = ["new", "existing"])]
    initial_cluster_state: String,
    /// With --initial-cluster: the token every member of a new cluster shares.
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER_TOKEN", default_value = "capstan-cluster")]
    initial_cluster_token: String,
    #[command(flatten)]
    serving: ServingArgs,
    /// Do not run the controller-manager in this process.
    #[arg(long, env = "CAPSTAN_DISABLE_CONTROLLER_MANAGER")]
    disable_controller_manager: bool,
    /// Do not run the scheduler in this process.
    #[arg(long, env = "CAPSTAN_DISABLE_SCHEDULER")]
    disable_scheduler: bool,
    #[command(flatten)]
    election: LeaderElectionArgs,
}

/// How the store member starts.
struct StoreStart {
    initial_cluster: String,
    state: &'static str,
    cluster_token: String,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.serving.data_dir().to_path_buf();
    let store_dir = data_dir.join("store");
    let token_path = data_dir.join("token");
    let peer_urls = vec![args.listen_peer_urls.clone()];
    let mut token = match &args.token {
        Some(text) => Some(JoinToken::parse(text).map_err(|e| anyhow::anyhow!("--token: {e}"))?),
        None => None,
    };
    if store_dir.join(LEFT_MARKER).exists() {
        anyhow::bail!(
            "this server left the cluster (--leave); remove {} to join again as a new member",
            store_dir.display()
        );
    }
    let already_member = store_dir.join("member").exists();
    let start = if let Some(initial_cluster) = &args.initial_cluster {
        // Static bootstrap, also over a data dir from `capstan ctl snapshot
        // restore`: a new cluster's member is initialized from these flags.
        StoreStart {
            initial_cluster: initial_cluster.clone(),
            state: if args.initial_cluster_state == "existing" { "existing" } else { "new" },
            cluster_token: args.initial_cluster_token.clone(),
        }
    } else if already_member {
        // The data dir knows its cluster; peers come from Raft's membership.
        StoreStart {
            initial_cluster: format!("{}={}", args.name, args.listen_peer_urls),
            state: "existing",
            cluster_token: args.initial_cluster_token.clone(),
        }
    } else if let Some(server) = &args.server {
        let join_token = token.as_ref().ok_or_else(|| anyhow::anyhow!("--server needs --token"))?;
        tracing::info!(%server, "joining the cluster");
        let joined = crate::server_join::join(server, join_token, &args.name, &peer_urls).await?;
        Pki::install_ca(&args.serving.pki_dir(), &joined.ca_cert, &joined.ca_key)?;
        StoreStart {
            initial_cluster: joined.initial_cluster,
            state: "existing",
            cluster_token: args.initial_cluster_token.clone(),
        }
    } else {
        StoreStart {
            initial_cluster: format!("{}={}", args.name, args.listen_peer_urls),
            state: "new",
            cluster_token: args.initial_cluster_token.clone(),
        }
    };

    let config = args.serving.config(vec![args.listen_client_urls.clone()], None);
    let pki = capstan_apiserver::ensure_pki(&config)?;
    let secret = join_secret(&token_path, &pki, token.take())?;
    let (store_config, store_tls) = store_config(&args, &start, &store_dir, &pki)?;
    let running =
        capstan_store::server::start(store_config).await.map_err(|e| anyhow::anyhow!("starting the store: {e}"))?;
    let shutdown = CancellationToken::new();
    // Also after a restart: a joiner may have stopped before its promotion.
    tokio::spawn(promote_when_ready(running.member.clone(), shutdown.clone()));

    let config = capstan_apiserver::Config { join_secret: Some(secret), store_tls, ..config };
    let result = crate::apiserver_cmd::serve_with_components(
        config,
        &data_dir,
        !args.disable_controller_manager,
        !args.disable_scheduler,
        &args.election,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    if args.leave && leave(&running.member).await {
        write_private(&store_dir.join(LEFT_MARKER), b"this member was removed from its cluster\n")?;
    }
    running.shutdown().await;
    result
}

/// The secret of `<data-dir>/token`, written at first start (the full token,
/// pinning this cluster's CA) from `--token` or a random secret.
fn join_secret(path: &Path, pki: &Pki, given: Option<JoinToken>) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let stored = JoinToken::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(stored.secret);
    }
    let secret = given.map(|t| t.secret).unwrap_or_else(JoinToken::random_secret);
    let (ca, _) = pki.ca_pems()?;
    let token = JoinToken::for_ca(ca.as_bytes(), &secret);
    write_private(path, format!("{token}\n").as_bytes())?;
    Ok(secret)
}

/// Writes through a temporary file and a rename, readable by the owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// The store member's configuration, with `capstan store`'s defaults, and
/// how this server's apiserver reaches it. An https:// peer or client URL
/// gets a certificate issued by the cluster CA at each start, and the other
/// side must present one too: peers, and the apiserver with the same
/// certificate as a client.
fn store_config(
    args: &ServerArgs,
    start: &StoreStart,
    store_dir: &Path,
    pki: &Pki,
) -> anyhow::Result<(capstan_store::server::Config, Option<capstan_apiserver::StoreTls>)> {
    let mut flags = vec![
        "store".to_string(),
        format!("--name={}", args.name),
        format!("--listen-client-urls={}", args.listen_client_urls),
        format!("--listen-peer-urls={}", args.listen_peer_urls),
        format!("--initial-cluster={}", start.initial_cluster),
        format!("--initial-cluster-state={}", start.state),
        format!("--initial-cluster-token={}", start.cluster_token),
    ];
    if args.listen_peer_urls.starts_with("https://") {
        let (cert, key) = member_certificate(pki, &store_dir.join("peer-tls"), &args.name, &args.listen_peer_urls)?;
        flags.extend(mutual_tls_flags("peer-", &cert, &key, &pki.ca_cert()));
    }
    let mut store_tls = None;
    if args.listen_client_urls.starts_with("https://") {
        let (cert, key) = member_certificate(pki, &store_dir.join("client-tls"), &args.name, &args.listen_client_urls)?;
        flags.extend(mutual_tls_flags("", &cert, &key, &pki.ca_cert()));
        store_tls = Some(capstan_apiserver::StoreTls { ca_file: pki.ca_cert(), client: Some((cert, key)) });
    }
    let config = crate::store_cmd::config_from_flags(&flags, store_dir.to_path_buf())?;
    Ok((config, store_tls))
}

/// etcd's flags for TLS that checks the other side's certificate too, on
/// client (`prefix` "") or peer ("peer-") traffic.
fn mutual_tls_flags(prefix: &str, cert: &Path, key: &Path, ca: &Path) -> [String; 4] {
    [
        format!("--{prefix}cert-file={}", cert.display()),
        format!("--{prefix}key-file={}", key.display()),
        format!("--{prefix}trusted-ca-file={}", ca.display()),
        format!("--{prefix}client-cert-auth"),
    ]
}

/// A certificate for the member's `url` (server and client use), issued by
/// the cluster CA into `dir`; its certificate and key files.
fn member_certificate(pki: &Pki, dir: &Path, name: &str, url: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (cert, key) = pki.issue_peer_certificate(name, &[url_host(url)])?;
    let (cert_file, key_file) = (dir.join("member.crt"), dir.join("member.key"));
    write_private(&cert_file, cert.as_bytes())?;
    write_private(&key_file, key.as_bytes())?;
    Ok((cert_file, key_file))
}

/// The host of `scheme://host:port`, without brackets.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// A joined learner asks to become a voter until it is one (the leader
/// refuses while it lags).
async fn promote_when_ready(
    member: std::sync::Arc<capstan_store::server::member::Member>,
    shutdown: CancellationToken,
) {
    let promote = MembershipChange { change: Some(Change::Promote(member.id)) };
    loop {
        if member.membership().voter_ids().any(|id| id == member.id) {
            tracing::info!("this server's store member is a voter");
            return;
        }
        match member.change_membership(promote.clone()).await {
            Ok(_) => {}
            Err(e) => tracing::info!(reason = %e, "store member not promoted yet; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// `--leave`: removes this member from the store cluster, unless it is the
/// last voter (the cluster would be gone). True when it left.
async fn leave(member: &capstan_store::server::member::Member) -> bool {
    let voters = member.membership().voter_ids().count();
    if voters <= 1 && member.membership().voter_ids().any(|id| id == member.id) {
        tracing::warn!("--leave: this is the only voter; staying, or the cluster would be gone");
        return false;
    }
    let remove = MembershipChange { change: Some(Change::Remove(member.id)) };
    match member.change_membership(remove).await {
        Ok(_) => {
            tracing::info!("left the store cluster");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "--leave: could not remove this member; remove it with `capstan ctl member remove`");
            false
        }
    }
}

/// Left in the store dir of a server that left, so it does not start as a
/// member that is no longer one.
const LEFT_MARKER: &str = "left-cluster";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_lose_scheme_port_and_brackets() {
        assert_eq!(url_host("https://127.0.0.21:2380"), "127.0.0.21");
        assert_eq!(url_host("https://[::1]:2380"), "::1");
        assert_eq!(url_host("https://cp-1.example"), "cp-1.example");
    }
}
