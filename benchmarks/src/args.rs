//! Command-line arguments of `etcd-bench`.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Most connections opened by default: etcd's own `benchmark` tool spreads
/// clients over a limited number of connections in the same way.
const DEFAULT_MAX_CONNS: usize = 100;

#[derive(Parser)]
#[command(name = "etcd-bench", about = "Load generator for the etcd v3 API: capstan's store against etcd")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one workload against one cluster and report throughput, latency and server usage.
    Run(RunArgs),
    /// Pair the results of capstan and etcd by workload and check the targets.
    Compare(CompareArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// Client URLs of the members (host:port or http://host:port), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// What traffic to send.
    #[arg(long)]
    pub workload: Workload,
    /// Concurrent clients (watchers, for watch-fanout).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// gRPC connections the clients share, spread round-robin over the endpoints [default: min(clients, 100)].
    #[arg(long)]
    pub conns: Option<usize>,
    /// Length of the measured window, after a one-second warm-up.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Bytes per key (zero-padded key numbers).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Puts per second of the watch-fanout writer.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Server processes whose memory and CPU to sample, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Name of the system under test, carried into the results (e.g. capstan, etcd).
    #[arg(long, default_value = "bench")]
    pub label: String,
    /// Append the result as one JSON line to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

impl RunArgs {
    pub fn conns(&self) -> usize {
        self.conns.unwrap_or(self.clients.min(DEFAULT_MAX_CONNS))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.endpoints.is_empty(), "--endpoints is empty");
        anyhow::ensure!(self.clients > 0, "--clients must be at least 1");
        anyhow::ensure!(self.conns() > 0, "--conns must be at least 1");
        anyhow::ensure!(self.duration_secs > 0, "--duration-secs must be at least 1");
        anyhow::ensure!(self.rate > 0, "--rate must be at least 1");
        Ok(())
    }
}

#[derive(Args)]
pub struct CompareArgs {
    /// JSON lines written by `run --label capstan --json-out`.
    #[arg(long)]
    pub capstan: PathBuf,
    /// JSON lines written by `run --label etcd --json-out`.
    #[arg(long)]
    pub etcd: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Put,
    RangeLinearizable,
    RangeSerializable,
    TxnCas,
    WatchFanout,
    K8sMix,
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Put,
        Workload::RangeLinearizable,
        Workload::RangeSerializable,
        Workload::TxnCas,
        Workload::WatchFanout,
        Workload::K8sMix,
    ];

    /// The name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::RangeLinearizable => "range-linearizable",
            Workload::RangeSerializable => "range-serializable",
            Workload::TxnCas => "txn-cas",
            Workload::WatchFanout => "watch-fanout",
            Workload::K8sMix => "k8s-mix",
        }
    }
}

impl ValueEnum for Workload {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}
