//! Making a sandbox, and starting one container in it: restart backoff,
//! the image (pulled when missing), create and start, with the kubelet's
//! events and waiting reasons for each failure.

use std::time::Instant;

use capstan_kubeutil::EventType;
use capstan_proto::cri::PodSandboxConfig;
use k8s_openapi::api::core::v1::Container;

use super::PodWorker;
use crate::backoff::{go_duration, now_ns};
use crate::pod_status::Waiting;
use crate::runtime_spec::{EnvContext, container_config, sandbox_config};
use crate::snapshot::{PodSnapshot, State};

/// The sandbox containers are started in.
pub(super) struct SandboxRef {
    pub id: String,
    pub ip: String,
    pub attempt: u32,
}

impl PodWorker {
    /// Runs a new sandbox; its id and IP, or None after a failure (logged
    /// as an event; the next sync tries again).
    pub(super) async fn create_sandbox(&mut self, attempt: u32) -> Option<SandboxRef> {
        let config = sandbox_config(&self.pod, &self.shared.node_name, attempt);
        let runtime = self.shared.runtime.clone();
        let id = match runtime.run_sandbox(config).await {
            Ok(id) => id,
            Err(err) => {
                let message = format!("Failed to create pod sandbox: {err}");
                self.event(None, EventType::Warning, "FailedCreatePodSandBox", &message).await;
                return None;
            }
        };
        tracing::info!(pod = %self.id.display(), sandbox = %id, attempt, "sandbox running");
        let ip = match runtime.sandbox_status(&id).await {
            Ok(status) => status.network.map(|n| n.ip).unwrap_or_default(),
            Err(err) => {
                tracing::warn!(pod = %self.id.display(), %err, "reading the new sandbox failed");
                String::new()
            }
        };
        Some(SandboxRef { id, ip, attempt })
    }

    /// Starts the next attempt of container `name`, unless it is in backoff.
    pub(super) async fn start_container(&mut self, name: &str, snapshot: &PodSnapshot, sandbox: &SandboxRef) {
        let Some(container) =
            self.pod.spec.as_ref().and_then(|s| s.containers.iter().find(|c| c.name == name)).cloned()
        else {
            return;
        };
        let latest = snapshot.latest(name);
        if let Some(dead) = latest.filter(|c| c.state == State::Exited) {
            let key = format!("{}/{name}", self.id.uid);
            let now = now_ns();
            if let Some(delay) = self.backoff.in_backoff_since(&key, dead.finished_at, now) {
                let message = format!(
                    "back-off {} restarting failed container={name} pod={}",
                    go_duration(delay),
                    self.id.display()
                );
                self.waiting.insert(name.to_string(), Waiting { reason: "CrashLoopBackOff".into(), message });
                if self.backoff_reported.insert((name.to_string(), dead.finished_at)) {
                    let text = format!("Back-off restarting failed container {name} in pod {}", self.id.display());
                    self.event(Some(name), EventType::Warning, "BackOff", &text).await;
                }
                return;
            }
            self.backoff.next(&key, dead.finished_at, now);
        }
        let restart_count = latest.map(|c| c.restart_count + 1).unwrap_or(0);
        let sandbox_config = sandbox_config(&self.pod, &self.shared.node_name, sandbox.attempt);
        if !self.ensure_image(&container, &sandbox_config).await {
            return;
        }
        let env = EnvContext {
            node_name: self.shared.node_name.clone(),
            pod_ip: if crate::pod_util::host_network(&self.pod) {
                self.shared.node_ip.clone()
            } else {
                sandbox.ip.clone()
            },
            host_ip: self.shared.node_ip.clone(),
        };
        let config = match container_config(
            &self.pod,
            &container,
            &self.shared.node_name,
            restart_count,
            &env,
            self.shared.memory_capacity,
        ) {
            Ok(config) => config,
            Err(message) => {
                self.fail(name, "CreateContainerConfigError", &message).await;
                return;
            }
        };
        let runtime = self.shared.runtime.clone();
        let id = match runtime.create_container(&sandbox.id, config, sandbox_config).await {
            Ok(id) => id,
            Err(err) => {
                self.fail(name, "CreateContainerError", &err.to_string()).await;
                return;
            }
        };
        self.event(Some(name), EventType::Normal, "Created", &format!("Created container: {name}")).await;
        if let Err(err) = runtime.start_container(&id).await {
            self.fail(name, "RunContainerError", &err.to_string()).await;
            return;
        }
        self.waiting.remove(name);
        self.event(Some(name), EventType::Normal, "Started", &format!("Started container {name}")).await;
    }

    async fn fail(&mut self, name: &str, reason: &str, message: &str) {
        self.waiting.insert(name.to_string(), Waiting { reason: reason.to_string(), message: message.to_string() });
        self.event(Some(name), EventType::Warning, "Failed", &format!("Error: {message}")).await;
    }

    /// Makes sure the container's image is present, by its pull policy.
    /// False (with a waiting reason set) when it is not.
    async fn ensure_image(&mut self, container: &Container, sandbox_config: &PodSandboxConfig) -> bool {
        let name = container.name.as_str();
        let image = container.image.clone().unwrap_or_default();
        let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        let runtime = self.shared.runtime.clone();
        let present = match runtime.image_id(&image).await {
            Ok(id) => id.is_some(),
            Err(err) => {
                self.fail(name, "ErrImageInspect", &format!("Failed to inspect image \"{image}\": {err}")).await;
                return false;
            }
        };
        if present && policy != "Always" {
            let message = format!("Container image \"{image}\" already present on machine");
            self.event(Some(name), EventType::Normal, "Pulled", &message).await;
            return true;
        }
        if policy == "Never" {
            let message = format!("Container image \"{image}\" is not present with pull policy of Never");
            self.waiting
                .insert(name.to_string(), Waiting { reason: "ErrImageNeverPull".into(), message: message.clone() });
            self.event(Some(name), EventType::Warning, "ErrImageNeverPull", &message).await;
            return false;
        }
        let key = format!("{}/image/{image}", self.id.uid);
        let now = now_ns();
        if let Some(failed_at) = self.pull_failures.get(&image).copied()
            && self.backoff.in_backoff_since(&key, failed_at, now).is_some()
        {
            let message = format!("Back-off pulling image \"{image}\"");
            self.waiting
                .insert(name.to_string(), Waiting { reason: "ImagePullBackOff".into(), message: message.clone() });
            self.event(Some(name), EventType::Normal, "BackOff", &message).await;
            return false;
        }
        self.event(Some(name), EventType::Normal, "Pulling", &format!("Pulling image \"{image}\"")).await;
        let started = Instant::now();
        match runtime.pull_image(&image, sandbox_config.clone()).await {
            Ok(_) => {
                self.pull_failures.remove(&image);
                let message =
                    format!("Successfully pulled image \"{image}\" in {:.3}s", started.elapsed().as_secs_f64());
                self.event(Some(name), EventType::Normal, "Pulled", &message).await;
                true
            }
            Err(err) => {
                self.backoff.next(&key, now, now);
                self.pull_failures.insert(image.clone(), now);
                let message = format!("Failed to pull image \"{image}\": {err}");
                self.waiting
                    .insert(name.to_string(), Waiting { reason: "ErrImagePull".into(), message: message.clone() });
                self.event(Some(name), EventType::Warning, "Failed", &message).await;
                self.event(Some(name), EventType::Warning, "Failed", "Error: ErrImagePull").await;
                false
            }
        }
    }
}
