//! The scheduling loop: one task owns the queue and the assume cache, feeds
//! them from the node and pod reflectors, and makes one attempt at a time
//! (kube-scheduler's `scheduleOne`).

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use capstan_kubeutil::EventType;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use crate::algorithm::{self, Failure};
use crate::assume::AssumeCache;
use crate::cluster::Cluster;
use crate::conditions::{self, pod_scheduled_patch};
use crate::error::Error;
use crate::node_view::NodeView;
use crate::pod_state;
use crate::queue::{Outcome, SchedulingQueue};
use crate::snapshot::snapshot;

/// Schedules pods whose `spec.schedulerName` is `scheduler_name` (an empty
/// one means `default-scheduler`) until `shutdown` is cancelled. Run it
/// under leader election: two schedulers would race for the same pods.
pub async fn run(client: Client, scheduler_name: &str, shutdown: CancellationToken) -> Result<(), Error> {
    let (nodes, node_writer) = reflector::store::<Node>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let node_events =
        reflector::reflector(node_writer, watcher(Api::<Node>::all(client.clone()), watcher::Config::default()))
            .default_backoff();
    let pod_events =
        reflector::reflector(pod_writer, watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()))
            .default_backoff();
    let mut node_events = pin!(node_events);
    let mut pod_events = pin!(pod_events);
    let mut scheduler = Scheduler::new(Cluster::new(client, scheduler_name), scheduler_name, nodes, pods);
    tracing::info!(scheduler = scheduler_name, "scheduler started");

    loop {
        let ready = scheduler.next_attempt(Instant::now());
        let attempt_due = async {
            match ready {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            event = node_events.next() => match event {
                Some(Ok(event)) => scheduler.on_node_event(event, Instant::now()),
                Some(Err(err)) => tracing::warn!(%err, "node watch failed; retrying"),
                None => return Err(Error::WatchEnded("node")),
            },
            event = pod_events.next() => match event {
                Some(Ok(event)) => scheduler.on_pod_event(event, Instant::now()),
                Some(Err(err)) => tracing::warn!(%err, "pod watch failed; retrying"),
                None => return Err(Error::WatchEnded("pod")),
            },
            () = attempt_due => {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = scheduler.schedule_one() => {}
                }
            }
        }
    }
    tracing::info!(scheduler = scheduler_name, "scheduler stopped");
    Ok(())
}

struct Scheduler {
    name: String,
    cluster: Cluster,
    nodes: Store<Node>,
    pods: Store<Pod>,
    queue: SchedulingQueue,
    assumed: AssumeCache,
    /// What each node looked like to the filters, to tell which updates
    /// could help unschedulable pods.
    node_views: HashMap<String, NodeView>,
    nodes_synced: bool,
    pods_synced: bool,
    rng: StdRng,
}

impl Scheduler {
    fn new(cluster: Cluster, name: &str, nodes: Store<Node>, pods: Store<Pod>) -> Scheduler {
        Scheduler {
            name: name.to_string(),
            cluster,
            nodes,
            pods,
            queue: SchedulingQueue::default(),
            assumed: AssumeCache::default(),
            node_views: HashMap::new(),
            nodes_synced: false,
            pods_synced: false,
            rng: StdRng::from_os_rng(),
        }
    }

    /// When to make the next attempt; none before both caches are filled.
    fn next_attempt(&self, now: Instant) -> Option<Instant> {
        if self.nodes_synced && self.pods_synced { self.queue.next_ready(now) } else { None }
    }

    fn on_node_event(&mut self, event: watcher::Event<Node>, now: Instant) {
        match event {
            watcher::Event::Apply(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                let view = NodeView::of(&node);
                if self.node_views.insert(name, view.clone()).as_ref() != Some(&view) {
                    self.queue.move_all_unschedulable(now);
                }
            }
            watcher::Event::Delete(node) => {
                self.node_views.remove(node.metadata.name.as_deref().unwrap_or_default());
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
            watcher::Event::InitDone => {
                self.nodes_synced = true;
                self.node_views = self
                    .nodes
                    .state()
                    .iter()
                    .map(|node| (node.metadata.name.clone().unwrap_or_default(), NodeView::of(node)))
                    .collect();
                self.queue.move_all_unschedulable(now);
            }
        }
    }

    fn on_pod_event(&mut self, event: watcher::Event<Pod>, now: Instant) {
        match event {
            watcher::Event::Apply(pod) => self.pod_changed(pod, now),
            watcher::Event::Delete(pod) => {
                self.queue.remove(&pod_state::key(&pod));
                self.assumed.forget(pod_state::uid(&pod));
                if pod_state::occupied_node(&pod).is_some() {
                    self.queue.move_all_unschedulable(now);
                }
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
            watcher::Event::InitDone => {
                self.pods_synced = true;
                let pods = self.pods.state();
                let pending: HashSet<String> = pods
                    .iter()
                    .filter(|p| pod_state::needs_scheduling(p, &self.name))
                    .map(|p| pod_state::key(p))
                    .collect();
                self.queue.retain(|key| pending.contains(key));
                for pod in pods.iter().filter(|p| pod_state::needs_scheduling(p, &self.name)) {
                    self.queue.add_or_update(pod.clone(), now);
                }
                self.assumed.reconcile(&pods);
                self.queue.move_all_unschedulable(now);
            }
        }
    }

    fn pod_changed(&mut self, pod: Pod, now: Instant) {
        if pod_state::needs_scheduling(&pod, &self.name) {
            self.queue.add_or_update(Arc::new(pod), now);
            return;
        }
        self.queue.remove(&pod_state::key(&pod));
        if pod_state::is_terminal(&pod) && pod_state::node_name(&pod).is_some() {
            // A finished pod frees its node's resources and ports.
            self.queue.move_all_unschedulable(now);
        }
    }

    async fn schedule_one(&mut self) {
        let Some(pod) = self.queue.pop(Instant::now()) else { return };
        let key = pod_state::key(&pod);
        if self.assumed.is_assumed(pod_state::uid(&pod)) {
            // Bound already; the watch is behind.
            self.queue.remove(&key);
            return;
        }
        let pods = self.pods.state();
        self.assumed.reconcile(&pods);
        let nodes = snapshot(&self.nodes.state(), &pods, &self.assumed);
        match algorithm::schedule(&pod, &nodes, &mut self.rng) {
            Ok(node) => self.bind(&pod, &key, &node).await,
            Err(failure) => self.unschedulable(&pod, &key, &failure).await,
        }
    }

    async fn bind(&mut self, pod: &Pod, key: &str, node: &str) {
        self.assumed.assume(pod, node);
        match self.cluster.bind(pod, node).await {
            Ok(()) => {
                self.queue.remove(key);
                tracing::info!(pod = key, node, "pod bound");
                let message = format!("Successfully assigned {key} to {node}");
                self.cluster.event(pod, EventType::Normal, "Scheduled", &message).await;
            }
            Err(err) => {
                self.assumed.forget(pod_state::uid(pod));
                self.queue.done(key, Outcome::Error, Instant::now());
                if err.is_settled_elsewhere() {
                    tracing::debug!(%err, "binding refused; the pod changed meanwhile");
                    return;
                }
                tracing::warn!(%err, "binding failed");
                let message = format!("Binding rejected: {err}");
                self.report(pod, conditions::SCHEDULER_ERROR, &message).await;
            }
        }
    }

    async fn unschedulable(&mut self, pod: &Pod, key: &str, failure: &Failure) {
        self.queue.done(key, Outcome::Unschedulable, Instant::now());
        let message = failure.message();
        tracing::info!(pod = key, reason = %message, "pod unschedulable");
        self.report(pod, conditions::UNSCHEDULABLE, &message).await;
    }

    /// A FailedScheduling event and PodScheduled=False with `reason`.
    async fn report(&self, pod: &Pod, reason: &str, message: &str) {
        self.cluster.event(pod, EventType::Warning, "FailedScheduling", message).await;
        if let Some(patch) = pod_scheduled_patch(pod, "False", Some(reason), Some(message), Timestamp::now())
            && let Err(err) = self.cluster.patch_status(pod, &patch).await
        {
            tracing::warn!(%err, "PodScheduled=False not written");
        }
    }
}
