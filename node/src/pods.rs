//! Watches the pods bound to this node and keeps one worker per pod; after
//! each full list, removes sandboxes of pods the API no longer has.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::labels;
use crate::worker::{PodWorker, Shared};

/// How often sandboxes of pods unknown to the API are looked for, besides
/// after every full list.
const ORPHAN_SWEEP: Duration = Duration::from_secs(30);

struct Handle {
    updates: watch::Sender<Arc<Pod>>,
    done: CancellationToken,
}

/// Runs pod workers until `shutdown`; then waits for them to stop.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.node_name));
    let mut events = std::pin::pin!(watcher(api, config));
    let tracker = TaskTracker::new();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let mut listing: HashSet<String> = HashSet::new();
    let mut listed_once = false;
    let mut sweep = tokio::time::interval(ORPHAN_SWEEP);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sweep.tick(), if listed_once => sweep_orphans(&shared, &workers).await,
            event = events.next() => match event {
                None => break,
                Some(Ok(watcher::Event::Init)) => listing.clear(),
                Some(Ok(watcher::Event::InitApply(pod))) => {
                    listing.insert(pod.metadata.uid.clone().unwrap_or_default());
                    dispatch(&shared, &tracker, &shutdown, &mut workers, pod);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    // Pods deleted while the watch was down: their workers clean up.
                    workers.retain(|uid, _| listing.contains(uid));
                    listed_once = true;
                    sweep_orphans(&shared, &workers).await;
                }
                Some(Ok(watcher::Event::Apply(pod))) => dispatch(&shared, &tracker, &shutdown, &mut workers, pod),
                Some(Ok(watcher::Event::Delete(pod))) => {
                    // Dropping the sender tells the worker the pod is gone.
                    workers.remove(&pod.metadata.uid.clone().unwrap_or_default());
                }
                Some(Err(err)) => {
                    tracing::warn!(%err, "pod watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Hands `pod` to its worker, starting one for a new pod.
fn dispatch(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    workers: &mut HashMap<String, Handle>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else { return };
    if let Some(handle) = workers.get(&uid) {
        if !handle.done.is_cancelled() {
            handle.updates.send_replace(Arc::new(pod));
            return;
        }
        // The worker deleted this pod; later events about it need no new one.
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
    }
    let (updates, receiver) = watch::channel(Arc::new(pod.clone()));
    let done = CancellationToken::new();
    let worker = PodWorker::new(shared.clone(), pod);
    let finished = done.clone();
    let stop = shutdown.child_token();
    tracker.spawn(async move {
        worker.run(receiver, stop).await;
        finished.cancel();
    });
    workers.insert(uid, Handle { updates, done });
}

/// Stops and removes this node's sandboxes whose pod has no worker: pods
/// deleted while no agent ran.
async fn sweep_orphans(shared: &Shared, workers: &HashMap<String, Handle>) {
    let runtime = &shared.runtime;
    let sandboxes = match runtime.list_sandboxes(labels::node_selector(&shared.node_name)).await {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "listing sandboxes failed");
            return;
        }
    };
    for sandbox in sandboxes {
        let uid = sandbox.labels.get(labels::POD_UID).cloned().unwrap_or_default();
        if workers.contains_key(&uid) {
            continue;
        }
        let result = async {
            runtime.stop_sandbox(&sandbox.id).await?;
            runtime.remove_sandbox(&sandbox.id).await
        };
        match result.await {
            Ok(()) => {
                tracing::info!(sandbox = %sandbox.id, pod_uid = %uid, "removed the sandbox of a pod that is gone")
            }
            Err(err) => tracing::warn!(sandbox = %sandbox.id, %err, "removing an orphaned sandbox failed"),
        }
    }
}
