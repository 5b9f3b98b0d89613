//! `cp_chaos`: the control plane under faults. Three `capstan server`s and
//! two agents on containerd run Deployments while a client keeps scaling
//! them, changing their templates and writing ConfigMaps; the store leader,
//! the controller-manager and scheduler leaders and a random server are
//! killed and restarted, and a server is paused, in turn. After each fault
//! every Deployment must converge. At the end: no acknowledged write lost,
//! no pod bound to two nodes, no acknowledged version missed by a resumed
//! watch, every leadership moved within its bound. The last line is the
//! summary; the exit status is non-zero on any violation.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use capstan_tests::components::CONTAINERD_SOCKET;
use capstan_tests::cp_chaos::checks::{lost_writes, wait_converged, watch_gaps};
use capstan_tests::cp_chaos::clients::Clients;
use capstan_tests::cp_chaos::cluster::ControlPlane;
use capstan_tests::cp_chaos::faults::{ROTATION, inject};
use capstan_tests::cp_chaos::observers::{Seen, watch_configmaps, watch_pods};
use capstan_tests::cp_chaos::workload::{Ledger, create_deployments, mutate_deployment, write_configmaps};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Kill and pause the servers of a capstan control plane under load, then check what clients saw")]
struct Args {
    /// Seconds of faults (each fault then waits for convergence).
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Longest a Deployment may take to converge after a fault, in seconds.
    #[arg(long, default_value_t = 120)]
    converge_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !std::path::Path::new(CONTAINERD_SOCKET).exists() {
        println!("containerd absent at {CONTAINERD_SOCKET}: skipped (run ops/deploy/containerd-setup.sh as root)");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cp_chaos: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cp_chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn clients_of(plane: &ControlPlane) -> Result<Clients> {
    let mut clients = Vec::new();
    for i in 0..plane.servers.len() {
        let kubeconfig = kube::config::Kubeconfig::read_from(plane.kubeconfig(i))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        clients.push(kube::Client::try_from(config)?);
    }
    Ok(Clients::new(clients))
}

async fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let mut plane = tokio::task::block_in_place(|| ControlPlane::start(dir.path()))?;
    let clients = clients_of(&plane).await?;
    println!("[{:6.1}s] three servers and two agents up", started.elapsed().as_secs_f64());

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    // The watchers stop after the writers, once they have caught up.
    let stop_watching = CancellationToken::new();
    let watchers = [
        tokio::spawn(watch_configmaps(clients.clone(), seen.clone(), stop_watching.clone())),
        tokio::spawn(watch_pods(clients.clone(), seen.clone(), stop_watching.clone())),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().map(|s| s.watching).unwrap_or(0) < 2 {
        anyhow::ensure!(Instant::now() < deadline, "the watchers could not list in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let writer = tokio::spawn(write_configmaps(clients.clone(), ledger.clone(), stop.clone()));
    create_deployments(&clients, &ledger).await.context("creating the Deployments")?;
    let converge_timeout = Duration::from_secs(args.converge_timeout);
    let mut violations = Vec::new();
    let mut converged_all = true;
    match wait_converged(&clients, converge_timeout).await {
        Ok(took) => {
            println!("[{:6.1}s] Deployments running ({:.1}s)", started.elapsed().as_secs_f64(), took.as_secs_f64())
        }
        Err(why) => {
            converged_all = false;
            violations.push(format!("the Deployments never converged: {why}"));
        }
    }

    let mut faults = 0usize;
    let mut max_move = Duration::ZERO;
    let mut step = 0u64;
    let faults_until = Instant::now() + Duration::from_secs(args.duration);
    while converged_all && Instant::now() < faults_until {
        let fault = ROTATION[faults % ROTATION.len()];
        // Changes go on while the fault happens, then stop so that
        // convergence has a fixed target.
        let mutating = CancellationToken::new();
        let mutator = {
            let (clients, ledger, mutating) = (clients.clone(), ledger.clone(), mutating.clone());
            let first = step;
            tokio::spawn(async move {
                let mut n = first;
                while !mutating.is_cancelled() {
                    n += 1;
                    mutate_deployment(&clients, &ledger, n).await;
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                n
            })
        };
        let injected = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(inject(&mut plane, &clients, fault, faults))
        });
        mutating.cancel();
        step = mutator.await.unwrap_or(step);
        let injected = match injected {
            Ok(injected) => injected,
            Err(e) => {
                violations.push(format!("{fault:?}: {e:#}"));
                break;
            }
        };
        faults += 1;
        let mut line =
            format!("[{:6.1}s] {:?} on {}", started.elapsed().as_secs_f64(), injected.fault, injected.server);
        if let (Some(moved), Some(bound)) = (injected.moved_in, injected.bound) {
            max_move = max_move.max(moved);
            line.push_str(&format!(", leadership moved in {} ms (bound {} ms)", moved.as_millis(), bound.as_millis()));
            if moved > bound {
                violations.push(format!("{fault:?}: leadership took {moved:?}, over {bound:?}"));
            }
        }
        match wait_converged(&clients, converge_timeout).await {
            Ok(took) => println!("{line}; converged in {:.1}s", took.as_secs_f64()),
            Err(why) => {
                println!("{line}; did not converge: {why}");
                violations.push(format!("{fault:?}: no convergence in {converge_timeout:?}: {why}"));
                converged_all = false;
            }
        }
    }

    stop.cancel();
    let _ = writer.await;
    // The events of the last acknowledged writes may still be on their way;
    // one the watch skipped never comes, and stays a gap.
    let gaps_left = || {
        let ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        !watch_gaps(&ledger, &seen).is_empty()
    };
    let caught_up_by = Instant::now() + Duration::from_secs(15);
    while Instant::now() < caught_up_by && gaps_left() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_watching.cancel();
    for watcher in watchers {
        let _ = watcher.await;
    }
    // Every task that wrote to them has ended.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(|e| e.into_inner()));
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let lost = lost_writes(&clients, &ledger).await?;
    let gaps = watch_gaps(&ledger, &seen);
    for l in &lost {
        violations.push(format!("lost: {l}"));
    }
    if !gaps.is_empty() {
        violations.push(format!(
            "the ConfigMap watch missed {} acknowledged versions: {:?} (the last write acknowledged: {:?}; the last event seen: {:?})",
            gaps.len(),
            &gaps[..gaps.len().min(10)],
            ledger.versions.last(),
            seen.configmap_versions.last()
        ));
    }
    for (pod, first, second) in &seen.double_bound {
        violations.push(format!("pod {pod} bound to {first}, then to {second}"));
    }
    if seen.relists > 0 {
        violations.push(format!("a watch could not resume on any server {} times", seen.relists));
    }
    cleanup(&clients).await;
    for v in &violations {
        println!("VIOLATION: {v}");
    }
    if !violations.is_empty() {
        println!("{}", plane.log_tails());
    }
    println!(
        "faults={faults} converged={} lost={} double_bound={} watch_gaps={} relists={} max_failover_ms={} writes={} write_errors={} watch_resumes={} pods_seen={} violations={}",
        if converged_all { "yes" } else { "no" },
        lost.len(),
        seen.double_bound.len(),
        gaps.len(),
        seen.relists,
        max_move.as_millis(),
        ledger.writes,
        ledger.errors,
        seen.resumes,
        seen.bindings.len(),
        violations.len()
    );
    Ok(violations.is_empty())
}

/// Deletes the Deployments and waits for their pods to go, so no container
/// outlives the run.
async fn cleanup(clients: &Clients) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, ListParams};
    for name in capstan_tests::cp_chaos::workload::DEPLOYMENTS {
        let _ = clients
            .call(|c| async move {
                Api::<Deployment>::namespaced(c, "default").delete(name, &DeleteParams::background()).await.map(|_| ())
            })
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let pods = clients
            .call(|c| async move { Api::<Pod>::namespaced(c, "default").list(&ListParams::default()).await })
            .await;
        if pods.is_ok_and(|p| p.items.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("pods still there after 60 s of cleanup");
}
