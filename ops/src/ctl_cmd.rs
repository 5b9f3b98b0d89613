//! `capstan ctl`: the etcdctl-compatible client (crate `capstan-ctl`), with
//! the global flags before or after the command name.

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct CtlArgs {
    #[command(flatten)]
    global: capstan_ctl::GlobalArgs,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand)]
enum CtlCommand {
    #[command(flatten)]
    Etcd(capstan_ctl::Command),
    /// Backups: save a member's snapshot, check a file, restore it into a new cluster.
    #[command(subcommand)]
    Snapshot(crate::snapshot_cmd::SnapshotCommand),
}

/// Runs the command and exits with etcdctl's exit status.
pub fn run(args: CtlArgs, runtime: &tokio::runtime::Runtime) -> ! {
    let result = runtime.block_on(async {
        match args.command {
            CtlCommand::Etcd(command) => capstan_ctl::run(&args.global, command).await,
            CtlCommand::Snapshot(command) => crate::snapshot_cmd::run(&args.global, command).await,
        }
    });
    std::process::exit(i32::from(capstan_ctl::report(result)))
}
