//! Lease-based leader election against a real apiserver, with the
//! scheduler's own identity (its RBAC allows only the kube-scheduler Lease).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_kubeutil::{ElectionConfig, run_when_leader};
use capstan_tests::kube_cluster::Apiserver;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio_util::sync::CancellationToken;

/// Short timings so that takeovers happen within seconds.
fn quick(identity: &str) -> ElectionConfig {
    ElectionConfig {
        identity: identity.to_string(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
        ..ElectionConfig::new("kube-scheduler", "test")
    }
}

/// A candidate that records who leads while it leads.
fn candidate(
    client: kube::Client,
    identity: &'static str,
    leader: Arc<Mutex<Vec<&'static str>>>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(run_when_leader(client, quick(identity), shutdown, move |leading: CancellationToken| {
        let leader = leader.clone();
        async move {
            leader.lock().map_err(|e| e.to_string())?.push(identity);
            leading.cancelled().await;
            leader.lock().map_err(|e| e.to_string())?.retain(|l| *l != identity);
            Ok(())
        }
    }))
}

async fn wait_until(reason: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {reason}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_candidate_leads_and_another_takes_over_when_it_dies_or_steps_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No in-process scheduler: it would compete for the same Lease.
    let server = Apiserver::api_only(dir.path());
    let client = server.client_as("scheduler.kubeconfig").await;
    let leaders = Arc::new(Mutex::new(Vec::new()));
    let leading = || leaders.lock().map(|l| l.clone()).unwrap_or_default();

    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = candidate(client.clone(), "a", leaders.clone(), stop_a.clone());
    wait_until("a to lead", Duration::from_secs(20), || leading() == ["a"]).await;
    let b = candidate(client.clone(), "b", leaders.clone(), stop_b.clone());
    // b must not lead while a renews.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(leading(), ["a"]);

    // a dies without releasing: b takes over once the lease runs out.
    a.abort();
    leaders.lock().expect("lock").retain(|l| *l != "a");
    wait_until("b to take over from a dead leader", Duration::from_secs(15), || leading() == ["b"]).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get("kube-scheduler").await.expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // b steps down: it releases the lease and a new candidate wins at once.
    stop_b.cancel();
    b.await.expect("b's task").expect("b's election");
    let released = leases.get("kube-scheduler").await.expect("lease").spec.expect("spec");
    assert_eq!(released.holder_identity, None);
    let stop_c = CancellationToken::new();
    let c = candidate(client.clone(), "c", leaders.clone(), stop_c.clone());
    wait_until("c to take a released lease", Duration::from_secs(5), || leading() == ["c"]).await;
    stop_c.cancel();
    c.await.expect("c's task").expect("c's election");
    drop(stop_a);
}
