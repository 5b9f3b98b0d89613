//! `capstan`: one binary for every part of the control plane.

mod agent_cmd;
mod agent_join;
mod apiserver_balancer;
mod apiserver_cmd;
mod certs_cmd;
mod components;
mod controller_manager_cmd;
mod ctl_cmd;
mod scheduler_cmd;
mod server_cmd;
mod server_join;
mod snapshot_cmd;
mod store_cmd;
mod supervisor_client;

use clap::{Parser, Subcommand};

/// The store allocates per request and per entry on every member; mimalloc
/// keeps that cheap and returns memory that glibc's arenas would hold on to.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "capstan", version, about = "A Kubernetes-style control plane with its own etcd-compatible store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a control-plane member: the embedded store, the Kubernetes API, the controller-manager and the scheduler.
    Server(server_cmd::ServerArgs),
    /// Run one Kubernetes API replica over a store cluster.
    Apiserver(apiserver_cmd::ApiserverArgs),
    /// Run the controllers (Deployments, ReplicaSets, garbage collection), leader-elected.
    ControllerManager(components::ElectedArgs),
    /// Run the scheduler, leader-elected.
    Scheduler(components::ElectedArgs),
    /// Run the node agent: registers this machine as a Node and runs its pods on containerd.
    Agent(agent_cmd::AgentArgs),
    /// Run one member of the etcd-compatible store (etcd's flag names).
    Store(store_cmd::StoreArgs),
    /// Create the CA and certificates for TLS (`capstan certs create`).
    Certs(certs_cmd::CertsArgs),
    /// An etcdctl-compatible client for the store (etcdctl's commands and flags).
    Ctl(ctl_cmd::CtlArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match cli.command {
        Command::Store(_) => store_cmd::runtime()?,
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
    };
    match cli.command {
        Command::Server(args) => runtime.block_on(server_cmd::run(args)),
        Command::Apiserver(args) => runtime.block_on(apiserver_cmd::run(args)),
        Command::ControllerManager(args) => runtime.block_on(controller_manager_cmd::run(args)),
        Command::Scheduler(args) => runtime.block_on(scheduler_cmd::run(args)),
        Command::Agent(args) => runtime.block_on(agent_cmd::run(args)),
        Command::Store(args) => runtime.block_on(store_cmd::run(args)),
        Command::Certs(args) => certs_cmd::run(args),
        Command::Ctl(args) => ctl_cmd::run(args, &runtime),
    }
}
