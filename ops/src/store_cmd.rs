//! `capstan store`: one store member, configured with etcd's flag names (and
//! `CAPSTAN_*` environment variables). With no flags: a single-member cluster
//! in ./capstan-data serving 127.0.0.1:2379.

use std::path::PathBuf;
use std::time::Duration;

use capstan_store::server::{self, ClusterState, Config, TlsFiles};
use clap::{Args, FromArgMatches, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum InitialState {
    New,
    Existing,
}

#[derive(Args)]
pub struct StoreArgs {
    /// Human-readable name of this member.
    #[arg(long, env = "CAPSTAN_NAME", default_value = "default")]
    name: String,
    /// Directory for the Raft log, the key-value database and snapshots.
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "capstan-data")]
    data_dir: PathBuf,
    /// URLs to serve clients on (comma-separated).
    #[arg(long, env = "CAPSTAN_LISTEN_CLIENT_URLS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    listen_client_urls: Vec<String>,
    /// Client URLs other members and clients are told about.
    #[arg(long, env = "CAPSTAN_ADVERTISE_CLIENT_URLS", value_delimiter = ',')]
    advertise_client_urls: Vec<String>,
    /// URLs to serve other members on.
    #[arg(long, env = "CAPSTAN_LISTEN_PEER_URLS", value_delimiter = ',', default_value = "http://127.0.0.1:2380")]
    listen_peer_urls: Vec<String>,
    /// Peer URLs of this member, as listed in --initial-cluster.
    #[arg(long, env = "CAPSTAN_INITIAL_ADVERTISE_PEER_URLS", value_delimiter = ',')]
    initial_advertise_peer_urls: Vec<String>,
    /// The bootstrap members: name=peer-url,name=peer-url,…
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER")]
    initial_cluster: Option<String>,
    /// `new` to bootstrap a cluster, `existing` to join one (after `member add`).
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER_STATE", value_enum, default_value = "new")]
    initial_cluster_state: InitialState,
    /// A token that keeps clusters bootstrapped from the same URLs apart.
    #[arg(long, env = "CAPSTAN_INITIAL_CLUSTER_TOKEN", default_value = "capstan-cluster")]
    initial_cluster_token: String,
    /// Heartbeat interval in milliseconds.
    #[arg(long, env = "CAPSTAN_HEARTBEAT_INTERVAL", default_value_t = 100)]
    heartbeat_interval: u64,
    /// Election timeout in milliseconds.
    #[arg(long, env = "CAPSTAN_ELECTION_TIMEOUT", default_value_t = 1000)]
    election_timeout: u64,
    /// Applied entries between two Raft snapshots.
    #[arg(long, env = "CAPSTAN_SNAPSHOT_COUNT", default_value_t = 100_000)]
    snapshot_count: u64,
    /// Entries kept behind a snapshot so slow followers can catch up from the log.
    #[arg(long, env = "CAPSTAN_SNAPSHOT_CATCHUP_ENTRIES", default_value_t = 5_000)]
    snapshot_catchup_entries: u64,
    /// Interval of watch progress notifications (e.g. 10m, 5s).
    #[arg(long = "experimental-watch-progress-notify-interval", env = "CAPSTAN_WATCH_PROGRESS_NOTIFY_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    watch_progress_notify_interval: Duration,
    /// Certificate (PEM) for https:// client URLs.
    #[arg(long, env = "CAPSTAN_CERT_FILE")]
    cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(long, env = "CAPSTAN_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// CA (PEM) that signs client certificates; setting it requires them.
    #[arg(long, env = "CAPSTAN_TRUSTED_CA_FILE")]
    trusted_ca_file: Option<PathBuf>,
    /// Require client certificates signed by --trusted-ca-file.
    #[arg(long, env = "CAPSTAN_CLIENT_CERT_AUTH")]
    client_cert_auth: bool,
    /// Certificate (PEM) for https:// peer URLs, also presented when dialing other members.
    #[arg(long, env = "CAPSTAN_PEER_CERT_FILE")]
    peer_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --peer-cert-file.
    #[arg(long, env = "CAPSTAN_PEER_KEY_FILE")]
    peer_key_file: Option<PathBuf>,
    /// CA (PEM) that signs the other members' peer certificates; setting it requires them.
    #[arg(long, env = "CAPSTAN_PEER_TRUSTED_CA_FILE")]
    peer_trusted_ca_file: Option<PathBuf>,
    /// Require peer client certificates signed by --peer-trusted-ca-file.
    #[arg(long, env = "CAPSTAN_PEER_CLIENT_CERT_AUTH")]
    peer_client_cert_auth: bool,
}

/// Parses `10m`, `5s`, `250ms`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration unit in {s:?} (use ms, s, m or h)")),
    }
}

impl StoreArgs {
    fn with_data_dir(mut self, data_dir: PathBuf) -> Self {
        self.data_dir = data_dir;
        self
    }

    fn into_config(self) -> Config {
        let peer_urls = if self.initial_advertise_peer_urls.is_empty() {
            self.listen_peer_urls.clone()
        } else {
            self.initial_advertise_peer_urls
        };
        let client_urls = if self.advertise_client_urls.is_empty() {
            self.listen_client_urls.clone()
        } else {
            self.advertise_client_urls
        };
        let initial_cluster = self
            .initial_cluster
            .unwrap_or_else(|| peer_urls.iter().map(|u| format!("{}={u}", self.name)).collect::<Vec<_>>().join(","));
        Config {
            name: self.name,
            data_dir: self.data_dir,
            listen_client_urls: self.listen_client_urls,
            advertise_client_urls: client_urls,
            listen_peer_urls: self.listen_peer_urls,
            initial_advertise_peer_urls: peer_urls,
            initial_cluster,
            initial_cluster_state: match self.initial_cluster_state {
                InitialState::New => ClusterState::New,
                InitialState::Existing => ClusterState::Existing,
            },
            initial_cluster_token: self.initial_cluster_token,
            heartbeat_interval_ms: self.heartbeat_interval,
            election_timeout_ms: self.election_timeout,
            snapshot_count: self.snapshot_count,
            snapshot_catchup_entries: self.snapshot_catchup_entries,
            watch_progress_notify_interval: self.watch_progress_notify_interval,
            client_tls: TlsFiles {
                cert_file: self.cert_file,
                key_file: self.key_file,
                trusted_ca_file: self.trusted_ca_file,
                client_cert_auth: self.client_cert_auth,
            },
            peer_tls: TlsFiles {
                cert_file: self.peer_cert_file,
                key_file: self.peer_key_file,
                trusted_ca_file: self.peer_trusted_ca_file,
                client_cert_auth: self.peer_client_cert_auth,
            },
        }
    }
}

/// The runtime for Raft and the peer traffic, on one worker thread. Client
/// connections have a thread per core of their own (the store's shards);
/// what is left here (the Raft core, replication, apply, peer calls) is a
/// chain of tasks handing work to each other, and with a second worker each
/// hand-off also wakes a thread (measurements in store/README.md).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
}

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let cfg = args.into_config();
    // One line: the reason names the flag or file at fault.
    let running = server::start(cfg).await.map_err(|e| anyhow::anyhow!("starting the store member: {e}"))?;
    for addr in &running.client_addrs {
        tracing::info!(%addr, "serving clients");
    }
    terminated().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// A store member's configuration from `capstan store` flags (the first
/// is the command name), in `data_dir`, with the store's defaults elsewhere.
pub fn config_from_flags(flags: &[String], data_dir: PathBuf) -> anyhow::Result<Config> {
    let matches = StoreArgs::augment_args(clap::Command::new("store")).try_get_matches_from(flags)?;
    Ok(StoreArgs::from_arg_matches(&matches)?.with_data_dir(data_dir).into_config())
}
