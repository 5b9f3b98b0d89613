//! A member's configuration, with etcd's meaning for every field. The CLI
//! (in the `capstan` binary) fills it from etcd's flag names.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// Bootstrap a new cluster from `initial_cluster`.
    New,
    /// Join a cluster that already has this member in its membership.
    Existing,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client_urls: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer_urls: Vec<String>,
    pub initial_advertise_peer_urls: Vec<String>,
    /// `name=peer-url,name=peer-url,…`
    pub initial_cluster: String,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// Applied entries between two Raft snapshots (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    /// Entries kept behind a snapshot for slow followers.
    pub snapshot_catchup_entries: u64,
    pub watch_progress_notify_interval: Duration,
    /// TLS for `https://` client URLs (`--cert-file`, `--key-file`,
    /// `--trusted-ca-file`, `--client-cert-auth`).
    pub client_tls: TlsFiles,
    /// TLS for `https://` peer URLs, served and dialed (`--peer-cert-file`,
    /// `--peer-key-file`, `--peer-trusted-ca-file`, `--peer-client-cert-auth`).
    pub peer_tls: TlsFiles,
}

/// The PEM files of one kind of traffic, with etcd's meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// This member's certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The CA that signs the certificates of clients (and, for peer traffic,
    /// of the other members, whose server certificates it also verifies).
    pub trusted_ca_file: Option<PathBuf>,
    /// Require a client certificate signed by `trusted_ca_file`. As in etcd,
    /// a trusted CA file alone requires one too.
    pub client_cert_auth: bool,
}

impl Default for Config {
    /// A single-member cluster on this machine, as `capstan store` with no flags.
    fn default() -> Self {
        Config {
            name: "default".into(),
            data_dir: PathBuf::from("capstan-data"),
            listen_client_urls: vec!["http://127.0.0.1:2379".into()],
            advertise_client_urls: vec!["http://127.0.0.1:2379".into()],
            listen_peer_urls: vec!["http://127.0.0.1:2380".into()],
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
            initial_cluster: "default=http://127.0.0.1:2380".into(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "capstan-cluster".into(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_count: 100_000,
            snapshot_catchup_entries: 5_000,
            watch_progress_notify_interval: Duration::from_secs(600),
            client_tls: TlsFiles::default(),
            peer_tls: TlsFiles::default(),
        }
    }
}
