//! `capstan ctl`: an etcdctl-compatible client for the capstan store.
//!
//! The etcdctl 3.4 commands and flags over etcd's v3 gRPC API, printing what
//! etcdctl prints with `-w simple|json|table`, plus `-w yaml` (JSON values
//! shown as nested YAML) and paged reads of large ranges.
//!
//! The binary parses [`GlobalArgs`] and a [`Command`], calls [`run`], and
//! turns the result into an exit status with [`report`].

mod args;
mod commands;
mod connect;
mod error;
pub mod output;

pub use args::{GlobalArgs, OutputFormat, parse_go_duration};
pub use commands::Command;
pub use connect::{Conn, connect, dial};
pub use error::{CtlError, exit, exit_code, fail, report};

/// Runs one command. Errors carry etcdctl's exit code ([`exit_code`]);
/// [`report`] prints them as etcdctl does.
pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<()> {
    commands::run(global, command).await
}
