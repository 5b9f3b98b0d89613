//! `etcd-bench`: a load generator that speaks the etcd v3 gRPC API, so the
//! same runs measure etcd and capstan's store.
//!
//! - [`args`]: the command line (`run`, `compare`).
//! - [`connections`]: the gRPC channels the clients share.
//! - [`workloads`]: the traffic, one module per workload.
//! - [`stats`]: latency percentiles; [`procstat`]: server memory and CPU from /proc.
//! - [`report`]: one run's result as text and as a JSON line.
//! - [`compare`] and [`targets`]: capstan's results against etcd's.

mod args;
mod compare;
mod connections;
mod procstat;
mod report;
mod stats;
mod targets;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;

use crate::args::{Cli, Command, RunArgs};
use crate::report::{RunReport, RunSetup};
use crate::stats::LatencySummary;
use crate::workloads::{ErrorLog, Starter};

/// Load before the measured window, to fill connections, caches and queues.
const WARMUP: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Compare(args) => compare::run(&args),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    args.validate()?;
    let conns = args.conns();
    let channels = connections::open(&args.endpoints, conns).await?;
    let ctx = workloads::Context {
        channels,
        clients: args.clients,
        key_size: args.key_size,
        value_size: args.value_size,
        rate: args.rate,
        errors: Arc::new(ErrorLog::default()),
    };
    let (starter, on_start) = Starter::new(WARMUP, Duration::from_secs(args.duration_secs));
    let workload = tokio::spawn(workloads::run(args.workload, ctx, starter));

    // The servers are sampled from the start of the load; their CPU time
    // counts over the measured window only.
    let Ok(window) = on_start.await else {
        workload.await.context("the workload task failed")??;
        anyhow::bail!("the workload ended without starting");
    };
    let sampler = procstat::Sampler::start(args.pids.clone());
    tokio::time::sleep_until(window.measure_start.into()).await;
    let cpu_from = sampler.read_cpu();
    tokio::time::sleep_until(window.end.into()).await;
    let cpu_to = sampler.read_cpu();
    let measured = workload.await.context("the workload task failed")??;
    let usage = sampler.finish(&cpu_from, &cpu_to).await;

    let setup = RunSetup {
        label: &args.label,
        workload: args.workload.name(),
        clients: args.clients,
        conns,
        duration_secs: args.duration_secs,
    };
    let ops = measured.latencies_us.len() as u64;
    let latency = LatencySummary::from_micros(measured.latencies_us);
    let mut report = RunReport::new(&setup, ops, measured.errors, latency, usage);
    if let Some(events) = measured.events {
        report.events_expected = events.expected;
        report.events_delivered = Some(events.delivered);
    }
    println!("{}", report.to_text());
    if let Some(path) = &args.json_out {
        report.append_jsonl(path)?;
    }
    Ok(())
}
