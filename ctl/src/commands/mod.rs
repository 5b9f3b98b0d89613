//! The etcdctl commands: one module each (groups such as `lease` have one
//! module for their subcommands).

pub mod alarm;
pub mod compaction;
pub mod defrag;
pub mod del;
pub mod endpoint;
pub mod get;
mod key_range;
pub mod lease;
pub mod member;
pub mod move_leader;
mod paged_get;
pub mod put;
pub mod txn;
mod txn_parse;
pub mod watch;

use clap::Subcommand;

use crate::args::GlobalArgs;

/// The etcdctl 3.4 commands `capstan ctl` implements, with its names and flags.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Gets the key or a range of keys.
    Get(get::GetArgs),
    /// Puts the given key into the store (the value from stdin when omitted).
    Put(put::PutArgs),
    /// Removes the specified key or range of keys [key, range_end).
    Del(del::DelArgs),
    /// Runs compares, success and failure requests (read from stdin) in one transaction.
    Txn(txn::TxnArgs),
    /// Watches events on keys or prefixes.
    Watch(watch::WatchArgs),
    /// Compacts the event history.
    Compaction(compaction::CompactionArgs),
    /// Lease related commands.
    #[command(subcommand)]
    Lease(lease::LeaseCommand),
    /// Membership related commands.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Endpoint related commands.
    Endpoint(endpoint::EndpointArgs),
    /// Defragments the storage of the members at the given endpoints.
    Defrag(defrag::DefragArgs),
    /// Alarm related commands.
    #[command(subcommand)]
    Alarm(alarm::AlarmCommand),
    /// Transfers leadership to another member.
    MoveLeader(move_leader::MoveLeaderArgs),
}

pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Get(args) => get::run(global, args).await,
        Command::Put(args) => put::run(global, args).await,
        Command::Del(args) => del::run(global, args).await,
        Command::Txn(args) => txn::run(global, args).await,
        Command::Watch(args) => watch::run(global, args).await,
        Command::Compaction(args) => compaction::run(global, args).await,
        Command::Lease(command) => lease::run(global, command).await,
        Command::Member(command) => member::run(global, command).await,
        Command::Endpoint(args) => endpoint::run(global, args).await,
        Command::Defrag(args) => defrag::run(global, args).await,
        Command::Alarm(command) => alarm::run(global, command).await,
        Command::MoveLeader(args) => move_leader::run(global, args).await,
    }
}
