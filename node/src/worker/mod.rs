//! One task per pod: every sync reads what the runtime holds for the pod,
//! decides what to change ([`compute_actions`]), applies it, and writes the
//! pod's status when it differs. The worker owns the pod's backoff, probe
//! and waiting-reason state; nothing else touches it.

mod probing;
mod start;
mod teardown;

use start::SandboxRef;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use capstan_kubeutil::{EventType, Recorder};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::actions::{KillReason, PodActions, compute_actions, dead_containers, dead_sandboxes};
use crate::backoff::Backoff;
use crate::cri::Runtime;
use crate::heartbeat::now;
use crate::pod_status::{StatusInput, Waiting, pod_status};
use crate::pod_util::{PodId, host_network, object_ref};
use crate::probe::{ProbeKind, Tracker};
use crate::snapshot::{PodSnapshot, State};

/// What every pod worker shares.
pub struct Shared {
    pub client: Client,
    pub runtime: Runtime,
    pub recorder: Recorder,
    pub node_name: String,
    pub node_ip: String,
    pub memory_capacity: i64,
    /// How often a pod is compared with the runtime without an update.
    pub sync_period: Duration,
}

/// How a worker's life ends.
enum Outcome {
    /// Keep syncing.
    Continue,
    /// The pod was deleted and its runtime state removed.
    Finished,
}

pub struct PodWorker {
    shared: Arc<Shared>,
    pod: Pod,
    id: PodId,
    backoff: Backoff,
    /// When the last pull of an image failed (ns), for its pull backoff.
    pull_failures: HashMap<String, i64>,
    waiting: HashMap<String, Waiting>,
    probes: HashMap<(String, ProbeKind), Tracker>,
    unhealthy: HashMap<String, KillReason>,
    /// (container name, finished_at) whose BackOff event was written.
    backoff_reported: HashSet<(String, i64)>,
}

impl PodWorker {
    pub fn new(shared: Arc<Shared>, pod: Pod) -> PodWorker {
        let id = PodId::of(&pod);
        PodWorker {
            shared,
            pod,
            id,
            backoff: Backoff::default(),
            pull_failures: HashMap::new(),
            waiting: HashMap::new(),
            probes: HashMap::new(),
            unhealthy: HashMap::new(),
            backoff_reported: HashSet::new(),
        }
    }

    /// Syncs until the pod is deleted, its sender is dropped (the pod left
    /// the API: its runtime state is removed), or `shutdown` (everything is
    /// left running for the next agent to adopt).
    pub async fn run(mut self, mut updates: watch::Receiver<Arc<Pod>>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.shared.sync_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = updates.changed() => {
                    if changed.is_err() {
                        self.remove_orphaned().await;
                        return;
                    }
                    let pod = updates.borrow_and_update().clone();
                    self.offer(&pod);
                }
                _ = tick.tick() => {}
            }
            match self.sync().await {
                Ok(Outcome::Continue) => {}
                Ok(Outcome::Finished) => return,
                Err(err) => tracing::warn!(pod = %self.id.display(), %err, "pod sync failed"),
            }
        }
    }

    /// Takes `pod` unless a fresher copy is already known (a status write's
    /// response can overtake the watch).
    fn offer(&mut self, pod: &Pod) {
        let version = |p: &Pod| p.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (version(pod), version(&self.pod)) {
            (Some(new), Some(old)) if new < old => {}
            _ => self.pod = pod.clone(),
        }
    }

    async fn sync(&mut self) -> Result<Outcome, Error> {
        let runtime = self.shared.runtime.clone();
        let snapshot = PodSnapshot::read(&runtime, &self.shared.node_name, &self.id.uid).await?;
        if self.pod.metadata.deletion_timestamp.is_some() {
            self.terminate(&snapshot).await?;
            return Ok(Outcome::Finished);
        }
        let health = self.run_probes(&snapshot).await;
        let actions = compute_actions(&self.pod, &snapshot, &self.unhealthy);
        let snapshot = if actions == PodActions::default() {
            snapshot
        } else {
            self.apply(&actions, &snapshot).await;
            PodSnapshot::read(&runtime, &self.shared.node_name, &self.id.uid).await?
        };
        self.collect_dead(&snapshot).await;
        for c in snapshot.containers.iter().filter(|c| c.state == State::Running) {
            if snapshot.latest(&c.name).is_some_and(|l| l.id == c.id) {
                self.waiting.remove(&c.name);
            }
        }
        self.write_status(&snapshot, &health).await?;
        Ok(Outcome::Continue)
    }

    /// Applies one sync's actions; failures become waiting reasons and
    /// events, retried on the next sync.
    async fn apply(&mut self, actions: &PodActions, snapshot: &PodSnapshot) {
        if actions.kill_pod {
            let grace = self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
            self.stop_everything(snapshot, grace).await;
        }
        for kill in &actions.kill {
            let message = match kill.reason {
                KillReason::LivenessFailed => {
                    format!("Container {} failed liveness probe, will be restarted", kill.name)
                }
                KillReason::StartupFailed => format!("Container {} failed startup probe, will be restarted", kill.name),
                KillReason::SpecChanged => format!("Container {} definition changed, will be restarted", kill.name),
                KillReason::NotInSpec => format!("Stopping container {}", kill.name),
            };
            self.event(Some(&kill.name), EventType::Normal, "Killing", &message).await;
            if let Err(err) =
                self.shared.runtime.stop_container(&kill.id, self.kill_grace(&kill.name, kill.reason)).await
            {
                tracing::warn!(pod = %self.id.display(), container = %kill.name, %err, "stopping a container failed");
            }
            self.unhealthy.remove(&kill.id);
            self.probes.retain(|(id, _), _| id != &kill.id);
        }
        for id in &actions.remove {
            if let Err(err) = self.shared.runtime.remove_container(id).await {
                tracing::warn!(pod = %self.id.display(), %err, "removing a half-created container failed");
            }
        }
        let sandbox = match actions.create_sandbox {
            Some(attempt) => match self.create_sandbox(attempt).await {
                Some(sandbox) => Some(sandbox),
                None => return,
            },
            None => {
                snapshot.ready_sandbox().map(|s| SandboxRef { id: s.id.clone(), ip: s.ip.clone(), attempt: s.attempt })
            }
        };
        let Some(sandbox) = sandbox else { return };
        for name in &actions.start {
            self.start_container(name, snapshot, &sandbox).await;
        }
    }

    /// Grace for a container stopped while the pod lives: the probe's own
    /// terminationGracePeriodSeconds for a failed probe, else the pod's.
    fn kill_grace(&self, name: &str, reason: KillReason) -> i64 {
        let spec = self.pod.spec.as_ref();
        let pod_grace = spec.and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
        let container = spec.and_then(|s| s.containers.iter().find(|c| c.name == name));
        let probe = match reason {
            KillReason::LivenessFailed => container.and_then(|c| c.liveness_probe.as_ref()),
            KillReason::StartupFailed => container.and_then(|c| c.startup_probe.as_ref()),
            _ => None,
        };
        probe.and_then(|p| p.termination_grace_period_seconds).unwrap_or(pod_grace)
    }

    /// Removes dead containers beyond the last one, and empty old sandboxes.
    async fn collect_dead(&self, snapshot: &PodSnapshot) {
        let containers = dead_containers(snapshot);
        for id in &containers {
            if let Err(err) = self.shared.runtime.remove_container(id).await {
                tracing::debug!(%err, "removing a dead container failed");
            }
        }
        for id in dead_sandboxes(snapshot, &containers) {
            let result = async {
                self.shared.runtime.stop_sandbox(&id).await?;
                self.shared.runtime.remove_sandbox(&id).await
            };
            if let Err(err) = result.await {
                tracing::debug!(%err, "removing an old sandbox failed");
            }
        }
    }

    fn pod_ip(&self, snapshot: &PodSnapshot) -> String {
        if host_network(&self.pod) {
            self.shared.node_ip.clone()
        } else {
            snapshot.ready_sandbox().map(|s| s.ip.clone()).unwrap_or_default()
        }
    }

    /// Writes the computed status through `pods/<name>/status` when it
    /// differs from the pod's.
    async fn write_status(
        &mut self,
        snapshot: &PodSnapshot,
        health: &HashMap<String, (bool, bool)>,
    ) -> Result<(), Error> {
        let status = pod_status(&StatusInput {
            pod: &self.pod,
            snapshot,
            node_ip: &self.shared.node_ip,
            waiting: &self.waiting,
            health,
            now: now(),
        });
        if self.pod.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.id.namespace);
        // The resourceVersion makes the write conditional: a status computed
        // for a pod that has since been marked for deletion is not written.
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": self.pod.metadata.resource_version },
            "status": status,
        });
        match api.patch_status(&self.id.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(updated) => {
                self.offer(&updated);
                Ok(())
            }
            // Changed meanwhile: read it again; the next sync recomputes.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if let Some(pod) = api.get_opt(&self.id.name).await? {
                    self.offer(&pod);
                }
                Ok(())
            }
            // Deleted meanwhile: the watch will say so.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn event(&self, container: Option<&str>, kind: EventType, reason: &str, message: &str) {
        self.shared.recorder.record(&object_ref(&self.pod, container), kind, reason, message).await;
    }
}
