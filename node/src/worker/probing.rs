//! Runs the probes that are due for the pod's running containers and
//! turns their results into health (started, ready) and restarts.

use std::collections::HashMap;
use std::time::Duration;

use capstan_kubeutil::EventType;
use tokio::time::Instant;

use super::PodWorker;
use crate::actions::KillReason;
use crate::backoff::now_ns;
use crate::probe::{ProbeKind, Settings, Tracker, container_health};
use crate::prober;
use crate::snapshot::{PodSnapshot, State};

impl PodWorker {
    /// Probes what is due; (started, ready) for every running container.
    pub(super) async fn run_probes(&mut self, snapshot: &PodSnapshot) -> HashMap<String, (bool, bool)> {
        let pod_ip = self.pod_ip(snapshot);
        let containers = self.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        let mut health = HashMap::new();
        let mut running_ids = Vec::new();
        for container in &containers {
            let Some(latest) = snapshot.latest(&container.name).filter(|c| c.state == State::Running) else {
                continue;
            };
            let id = latest.id.clone();
            running_ids.push(id.clone());
            let running_for = Duration::from_nanos(now_ns().saturating_sub(latest.started_at).max(0).unsigned_abs());
            for kind in ProbeKind::ALL {
                let Some(probe) = kind.of(container) else { continue };
                let started = self.started(&id);
                let tracker =
                    self.probes.entry((id.clone(), kind)).or_insert_with(|| Tracker::new(kind, Settings::of(probe)));
                if !tracker.due(Instant::now(), running_for, started) {
                    continue;
                }
                let timeout = tracker.settings.timeout;
                let runtime = self.shared.runtime.clone();
                let (ok, output) = prober::run(&runtime, probe, container, &id, &pod_ip, timeout).await;
                let restart = self.probes.get_mut(&(id.clone(), kind)).is_some_and(|t| t.record(ok, Instant::now()));
                if !ok {
                    let message = format!("{} probe failed: {}", kind.title(), output.trim());
                    self.event(Some(&container.name), EventType::Warning, "Unhealthy", &message).await;
                }
                if restart {
                    let reason =
                        if kind == ProbeKind::Startup { KillReason::StartupFailed } else { KillReason::LivenessFailed };
                    self.unhealthy.insert(id.clone(), reason);
                }
            }
            let startup = self.probes.get(&(id.clone(), ProbeKind::Startup));
            let readiness = self.probes.get(&(id.clone(), ProbeKind::Readiness));
            // Every probe the container has got a tracker above (startup first).
            let (started, ready) = container_health(startup, readiness);
            health.insert(id, (started, ready));
        }
        // Trackers of containers that stopped running go with them.
        self.probes.retain(|(id, _), _| running_ids.contains(id));
        self.unhealthy.retain(|id, _| running_ids.contains(id));
        health
    }

    /// Whether the container's startup probe passed (or it has none).
    fn started(&self, id: &str) -> bool {
        container_health(self.probes.get(&(id.to_string(), ProbeKind::Startup)), None).0
    }
}
