//! Ending a pod: a deleted pod's containers get their grace period, its
//! sandboxes go, and the pod leaves the API; a pod that left the API
//! without that has its runtime state removed the same way.

use capstan_kubeutil::EventType;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};

use super::PodWorker;
use crate::Error;
use crate::pod_util::deletion_grace_seconds;
use crate::runtime_spec::log_directory;
use crate::snapshot::{PodSnapshot, State};

impl PodWorker {
    /// The pod has a deletionTimestamp: stop it, then delete it for good
    /// (grace 0, only this uid).
    pub(super) async fn terminate(&mut self, snapshot: &PodSnapshot) -> Result<(), Error> {
        let grace = deletion_grace_seconds(&self.pod);
        self.stop_everything(snapshot, grace).await;
        self.remove_sandboxes(snapshot).await?;
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.id.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(self.id.uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&self.id.name, &params).await {
            Ok(_) => {}
            // Gone already, or a new pod took the name: either way not ours to delete.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        tracing::info!(pod = %self.id.display(), "pod terminated and deleted");
        Ok(())
    }

    /// The pod is gone from the API: remove whatever still runs for it.
    pub(super) async fn remove_orphaned(&mut self) {
        let runtime = self.shared.runtime.clone();
        let result = async {
            let snapshot = PodSnapshot::read(&runtime, &self.shared.node_name, &self.id.uid).await?;
            self.stop_everything(&snapshot, deletion_grace_seconds(&self.pod)).await;
            self.remove_sandboxes(&snapshot).await
        };
        match result.await {
            Ok(()) => tracing::info!(pod = %self.id.display(), "removed the containers of a pod that is gone"),
            Err(err) => tracing::warn!(pod = %self.id.display(), %err, "removing a gone pod's containers failed"),
        }
    }

    /// Stops the running containers (SIGTERM, SIGKILL after `grace`
    /// seconds, all at once) and then the ready sandboxes.
    pub(super) async fn stop_everything(&self, snapshot: &PodSnapshot, grace: i64) {
        let running: Vec<_> = snapshot.containers.iter().filter(|c| c.state == State::Running).collect();
        for c in &running {
            self.event(Some(&c.name), EventType::Normal, "Killing", &format!("Stopping container {}", c.name)).await;
        }
        let stops = running.iter().map(|c| self.shared.runtime.stop_container(&c.id, grace));
        for (c, result) in running.iter().zip(futures::future::join_all(stops).await) {
            if let Err(err) = result {
                tracing::warn!(pod = %self.id.display(), container = %c.name, %err, "stopping a container failed");
            }
        }
        for s in snapshot.sandboxes.iter().filter(|s| s.ready) {
            if let Err(err) = self.shared.runtime.stop_sandbox(&s.id).await {
                tracing::warn!(pod = %self.id.display(), sandbox = %s.id, %err, "stopping a sandbox failed");
            }
        }
    }

    /// Removes every sandbox of the pod (their containers go with them) and
    /// the pod's log directory.
    async fn remove_sandboxes(&self, snapshot: &PodSnapshot) -> Result<(), Error> {
        for s in &snapshot.sandboxes {
            self.shared.runtime.stop_sandbox(&s.id).await?;
            self.shared.runtime.remove_sandbox(&s.id).await?;
        }
        let _ = tokio::fs::remove_dir_all(log_directory(&self.id)).await;
        Ok(())
    }
}
