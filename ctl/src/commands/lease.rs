//! `lease grant|revoke|timetolive|list|keep-alive`.

use std::time::Duration;

use capstan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
};
use clap::Subcommand;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::put::parse_lease_id;
use crate::args::{GlobalArgs, OutputFormat};
use crate::connect::{self, Conn};
use crate::error::{bad_args, exit, fail};
use crate::output::go_fmt::strconv_error;
use crate::output::{Output, model, refuse_table};

#[derive(Subcommand, Debug, Clone)]
pub enum LeaseCommand {
    /// Creates a lease with a TTL in seconds.
    Grant { ttl: Option<String> },
    /// Revokes a lease (and deletes its keys).
    Revoke { id: Option<String> },
    /// Gets lease information.
    Timetolive {
        id: Option<String>,
        /// Get keys attached to this lease.
        #[arg(long)]
        keys: bool,
    },
    /// Lists all active leases.
    List,
    /// Keeps a lease alive (renews it) until interrupted.
    KeepAlive {
        id: Option<String>,
        /// Renew once and exit.
        #[arg(long)]
        once: bool,
    },
}

pub async fn run(global: &GlobalArgs, command: LeaseCommand) -> anyhow::Result<()> {
    let mut out = Output::new(global.write_out, global.hex);
    match command {
        LeaseCommand::Grant { ttl } => {
            let ttl = ttl.ok_or_else(|| bad_args("lease grant command needs TTL argument"))?;
            let ttl: i64 =
                ttl.parse().map_err(|e| bad_args(format!("bad TTL ({})", strconv_error("ParseInt", &ttl, &e))))?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let response = conn
                .call(conn.lease().lease_grant(LeaseGrantRequest { ttl, id: 0 }))
                .await
                .map_err(|e| anyhow::anyhow!("failed to grant lease ({e})"))?;
            match out.format {
                OutputFormat::Simple => {
                    out.line(&format!("lease {:016x} granted with TTL({}s)", response.id, response.ttl))?
                }
                _ => out.doc(&model::lease_grant(&response))?,
            }
        }
        LeaseCommand::Revoke { id } => {
            let id = lease_id(id, "lease revoke command needs 1 argument")?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let response = conn
                .call(conn.lease().lease_revoke(LeaseRevokeRequest { id }))
                .await
                .map_err(|e| anyhow::anyhow!("failed to revoke lease ({e})"))?;
            match out.format {
                OutputFormat::Simple => out.line(&format!("lease {id:016x} revoked"))?,
                _ => out.doc(&model::header_only(response.header.as_ref()))?,
            }
        }
        LeaseCommand::Timetolive { id, keys } => {
            let id = lease_id(id, "lease timetolive command needs lease ID as argument")?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let r = conn
                .call(conn.lease().lease_time_to_live(LeaseTimeToLiveRequest { id, keys }))
                .await
                .map_err(bad_connection)?;
            match out.format {
                OutputFormat::Simple if r.granted_ttl == 0 && r.ttl == -1 => {
                    out.line(&format!("lease {:016x} already expired", r.id))?
                }
                OutputFormat::Simple => {
                    let mut text =
                        format!("lease {:016x} granted with TTL({}s), remaining({}s)", r.id, r.granted_ttl, r.ttl);
                    if keys {
                        let names: Vec<String> =
                            r.keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
                        text.push_str(&format!(", attached keys([{}])", names.join(" ")));
                    }
                    out.line(&text)?;
                }
                _ => out.doc(&model::lease_time_to_live(&r))?,
            }
        }
        LeaseCommand::List => {
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let r = conn.call(conn.lease().lease_leases(LeaseLeasesRequest {})).await.map_err(bad_connection)?;
            match out.format {
                OutputFormat::Simple => {
                    out.line(&format!("found {} leases", r.leases.len()))?;
                    for lease in &r.leases {
                        out.line(&format!("{:016x}", lease.id))?;
                    }
                }
                _ => out.doc(&model::lease_leases(&r))?,
            }
        }
        LeaseCommand::KeepAlive { id, once } => {
            let id = lease_id(id, "lease keep-alive command needs lease ID as argument")?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            keep_alive(&conn, id, once, &mut out).await?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Renews the lease every third of its TTL, printing each renewal, until it
/// is gone (or once, with --once).
async fn keep_alive(conn: &Conn, id: i64, once: bool, out: &mut Output) -> anyhow::Result<()> {
    let (requests, receiver) = mpsc::channel(1);
    requests.send(LeaseKeepAliveRequest { id }).await?;
    let mut responses =
        conn.call(conn.lease().lease_keep_alive(ReceiverStream::new(receiver))).await.map_err(bad_connection)?;
    loop {
        let response: LeaseKeepAliveResponse = match responses.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(fail(exit::BAD_CONNECTION, "the server closed the keep-alive stream")),
            Err(status) => return Err(fail(exit::BAD_CONNECTION, conn.status_error(&status).to_string())),
        };
        if response.ttl <= 0 {
            if once {
                return Err(fail(exit::BAD_CONNECTION, "etcdserver: requested lease not found"));
            }
            if out.format == OutputFormat::Simple {
                out.line(&format!("lease {id:016x} expired or revoked."))?;
            }
            return Ok(());
        }
        match out.format {
            OutputFormat::Simple => {
                out.line(&format!("lease {:016x} keepalived with TTL({})", response.id, response.ttl))?;
                out.flush()?;
            }
            _ if once => out.doc(&model::lease_keep_alive(&response))?,
            _ => out.stream_doc(&model::lease_keep_alive(&response))?,
        }
        if once {
            return Ok(());
        }
        let ttl_seconds = u64::try_from(response.ttl).unwrap_or(1);
        tokio::time::sleep(Duration::from_millis(ttl_seconds * 1000 / 3).max(Duration::from_millis(500))).await;
        requests.send(LeaseKeepAliveRequest { id }).await?;
    }
}

fn lease_id(text: Option<String>, missing: &str) -> anyhow::Result<i64> {
    let text = text.ok_or_else(|| bad_args(missing))?;
    parse_lease_id(&text).map_err(|e| {
        bad_args(format!("bad lease ID arg ({}), expecting ID in Hex", strconv_error("ParseInt", &text, &e)))
    })
}

/// etcdctl exits 2 when timetolive, list and keep-alive fail.
fn bad_connection(e: anyhow::Error) -> anyhow::Error {
    fail(exit::BAD_CONNECTION, e.to_string())
}
