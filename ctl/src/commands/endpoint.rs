//! `endpoint health|status|hashkv [--cluster]`: each endpoint on its own
//! connection; with --cluster, the client URLs from the member list.

use std::time::Instant;

use capstan_proto::etcdserverpb::{
    HashKvRequest, HashKvResponse, MemberListRequest, RangeRequest, StatusRequest, StatusResponse,
};
use clap::{Args, Subcommand};

use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::{exit, fail, silent};
use crate::output::doc::{Doc, Obj};
use crate::output::{Output, go_fmt, model, table};

#[derive(Args, Debug, Clone)]
pub struct EndpointArgs {
    /// Use all endpoints from the cluster member list.
    #[arg(long, global = true)]
    pub cluster: bool,
    #[command(subcommand)]
    pub command: EndpointCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum EndpointCommand {
    /// Checks that each endpoint can serve a linearizable read.
    Health,
    /// Prints the status of each endpoint.
    Status,
    /// Prints the KV history hash of each endpoint.
    Hashkv {
        /// Maximum revision to hash (0: all revisions).
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
}

pub async fn run(global: &GlobalArgs, args: EndpointArgs) -> anyhow::Result<()> {
    let endpoints = endpoints(global, args.cluster).await?;
    let mut out = Output::new(global.write_out, global.hex);
    let result = match args.command {
        EndpointCommand::Health => health(global, &endpoints, &mut out).await,
        EndpointCommand::Status => status(global, &endpoints, &mut out).await,
        EndpointCommand::Hashkv { rev } => hash_kv(global, &endpoints, rev, &mut out).await,
    };
    out.flush()?;
    result
}

/// The endpoints to visit: as given, or with `cluster` every member's client URLs.
pub async fn endpoints(global: &GlobalArgs, cluster: bool) -> anyhow::Result<Vec<String>> {
    if !cluster {
        return Ok(global.endpoint_list());
    }
    let conn = connect::connect(global).await?;
    let members = conn
        .call(conn.cluster().member_list(MemberListRequest { linearizable: false }))
        .await
        .map_err(|e| anyhow::anyhow!("failed to fetch endpoints from etcd cluster member list: {e}"))?;
    Ok(members.members.into_iter().flat_map(|m| m.client_ur_ls).collect())
}

struct Health {
    endpoint: String,
    took: String,
    error: Option<String>,
}

async fn health(global: &GlobalArgs, endpoints: &[String], out: &mut Output) -> anyhow::Result<()> {
    // All endpoints at once, as etcdctl does; printed in the order given.
    let mut checks = tokio::task::JoinSet::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let (global, endpoint) = (global.clone(), endpoint.clone());
        checks.spawn(async move { (i, check_health(&global, endpoint).await) });
    }
    let mut results: Vec<(usize, Health)> = checks.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<Health> = results.into_iter().map(|(_, h)| h).collect();
    match out.format {
        OutputFormat::Simple => {
            // etcdctl writes these lines to stderr.
            for h in &results {
                match &h.error {
                    None => eprintln!("{} is healthy: successfully committed proposal: took = {}", h.endpoint, h.took),
                    Some(e) => eprintln!("{} is unhealthy: failed to commit proposal: {e}", h.endpoint),
                }
            }
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|h| {
                    vec![
                        h.endpoint.clone(),
                        h.error.is_none().to_string(),
                        h.took.clone(),
                        h.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.raw(table::render(&["endpoint", "health", "took", "error"], &rows).as_bytes())?;
        }
        _ => {
            let docs = results
                .iter()
                .map(|h| {
                    Obj::new()
                        .field("endpoint", Doc::Str(h.endpoint.clone()))
                        .field("health", Doc::Bool(h.error.is_none()))
                        .field("took", Doc::Str(h.took.clone()))
                        .str_nz("error", h.error.as_deref().unwrap_or_default())
                        .build()
                })
                .collect();
            out.doc(&Doc::Arr(docs))?;
        }
    }
    if results.iter().any(|h| h.error.is_some()) {
        out.flush()?;
        return Err(fail(exit::ERROR, "unhealthy cluster"));
    }
    Ok(())
}

/// A linearizable read of key "health" (what etcdctl 3.4 checks).
async fn check_health(global: &GlobalArgs, endpoint: String) -> Health {
    let conn = match connect::dial(&endpoint, global).await {
        Ok(conn) => conn,
        Err(e) => return Health { endpoint, took: String::new(), error: Some(e.to_string()) },
    };
    let started = Instant::now();
    let read = conn.call(conn.kv().range(RangeRequest { key: b"health".to_vec().into(), ..Default::default() })).await;
    Health { endpoint, took: go_fmt::duration(started.elapsed()), error: read.err().map(|e| e.to_string()) }
}

async fn status(global: &GlobalArgs, endpoints: &[String], out: &mut Output) -> anyhow::Result<()> {
    let mut statuses: Vec<(String, StatusResponse)> = Vec::new();
    let mut failed = false;
    for endpoint in endpoints {
        let result = async {
            let conn = connect::dial(endpoint, global).await?;
            conn.call(conn.maintenance().status(StatusRequest {})).await
        }
        .await;
        match result {
            Ok(s) => statuses.push((endpoint.clone(), s)),
            Err(e) => {
                eprintln!("Failed to get the status of endpoint {endpoint} ({e})");
                failed = true;
            }
        }
    }
    let rows = || -> Vec<Vec<String>> { statuses.iter().map(|(ep, s)| status_row(ep, s)).collect() };
    match out.format {
        OutputFormat::Simple => rows().iter().try_for_each(|r| out.line(&r.join(", ")))?,
        OutputFormat::Table => {
            let headers = [
                "endpoint",
                "ID",
                "version",
                "db size",
                "is leader",
                "is learner",
                "raft term",
                "raft index",
                "raft applied index",
                "errors",
            ];
            out.raw(table::render(&headers, &rows()).as_bytes())?;
        }
        _ => {
            let docs = statuses
                .iter()
                .map(|(ep, s)| {
                    Obj::new().field("Endpoint", Doc::Str(ep.clone())).field("Status", model::status(s)).build()
                })
                .collect();
            out.doc(&Doc::Arr(docs))?;
        }
    }
    // etcdctl exits 1 without another message: each failure is on stderr.
    if failed { Err(silent(exit::ERROR)) } else { Ok(()) }
}

fn status_row(endpoint: &str, s: &StatusResponse) -> Vec<String> {
    let member_id = s.header.as_ref().map_or(0, |h| h.member_id);
    vec![
        endpoint.to_string(),
        format!("{member_id:x}"),
        s.version.clone(),
        go_fmt::humanize_bytes(u64::try_from(s.db_size).unwrap_or(0)),
        (s.leader == member_id).to_string(),
        s.is_learner.to_string(),
        s.raft_term.to_string(),
        s.raft_index.to_string(),
        s.raft_applied_index.to_string(),
        s.errors.join(", "),
    ]
}

async fn hash_kv(global: &GlobalArgs, endpoints: &[String], revision: i64, out: &mut Output) -> anyhow::Result<()> {
    let mut hashes: Vec<(String, HashKvResponse)> = Vec::new();
    let mut last_error = None;
    for endpoint in endpoints {
        let result = async {
            let conn = connect::dial(endpoint, global).await?;
            conn.call(conn.maintenance().hash_kv(HashKvRequest { revision })).await
        }
        .await;
        match result {
            Ok(h) => hashes.push((endpoint.clone(), h)),
            Err(e) => {
                eprintln!("Failed to get the hash of endpoint {endpoint} ({e})");
                last_error = Some(e);
            }
        }
    }
    let rows: Vec<Vec<String>> = hashes.iter().map(|(ep, h)| vec![ep.clone(), h.hash.to_string()]).collect();
    match out.format {
        OutputFormat::Simple => rows.iter().try_for_each(|r| out.line(&r.join(", ")))?,
        OutputFormat::Table => out.raw(table::render(&["endpoint", "hash"], &rows).as_bytes())?,
        _ => {
            let docs = hashes
                .iter()
                .map(|(ep, h)| {
                    Obj::new().field("Endpoint", Doc::Str(ep.clone())).field("HashKV", model::hash_kv(h)).build()
                })
                .collect();
            out.doc(&Doc::Arr(docs))?;
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
