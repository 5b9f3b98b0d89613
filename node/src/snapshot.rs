//! What the runtime holds for one pod, read through the CRI and reduced to
//! plain data: its sandboxes and containers, newest first.

use capstan_proto::cri::{ContainerState, PodSandboxState};

use crate::Error;
use crate::cri::Runtime;
use crate::labels;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SandboxInfo {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    pub ip: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub restart_count: i32,
    pub hash: String,
    pub state: State,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
}

/// A pod's sandboxes and containers, each list newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodSnapshot {
    pub sandboxes: Vec<SandboxInfo>,
    pub containers: Vec<ContainerInfo>,
}

impl PodSnapshot {
    /// The newest sandbox, when it is ready (an older ready one is stale).
    pub fn ready_sandbox(&self) -> Option<&SandboxInfo> {
        self.sandboxes.first().filter(|s| s.ready)
    }

    /// The newest container of `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The newest exited container of `name` before its latest one.
    pub fn previous(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().filter(|c| c.name == name).skip(1).find(|c| c.state == State::Exited)
    }

    pub fn sort(&mut self) {
        self.sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        self.containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    }

    /// Reads the pod's sandboxes and containers from the runtime.
    pub async fn read(runtime: &Runtime, node: &str, uid: &str) -> Result<PodSnapshot, Error> {
        let selector = labels::pod_selector(node, uid);
        let mut snapshot = PodSnapshot::default();
        for sandbox in runtime.list_sandboxes(selector.clone()).await? {
            let ready = sandbox.state == PodSandboxState::SandboxReady as i32;
            let ip = if ready {
                match runtime.sandbox_status(&sandbox.id).await {
                    Ok(status) => status.network.map(|n| n.ip).unwrap_or_default(),
                    Err(Error::Runtime(status)) if status.code() == tonic::Code::NotFound => continue,
                    Err(err) => return Err(err),
                }
            } else {
                String::new()
            };
            snapshot.sandboxes.push(SandboxInfo {
                attempt: sandbox.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                id: sandbox.id,
                ready,
                created_at: sandbox.created_at,
                ip,
            });
        }
        for container in runtime.list_containers(selector).await? {
            let status = match runtime.container_status(&container.id).await {
                Ok(status) => status,
                // Removed between the list and the status call.
                Err(Error::Runtime(status)) if status.code() == tonic::Code::NotFound => continue,
                Err(err) => return Err(err),
            };
            let state = match ContainerState::try_from(status.state) {
                Ok(ContainerState::ContainerCreated) => State::Created,
                Ok(ContainerState::ContainerRunning) => State::Running,
                Ok(ContainerState::ContainerExited) => State::Exited,
                _ => State::Unknown,
            };
            snapshot.containers.push(ContainerInfo {
                id: container.id,
                name: status.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                sandbox_id: container.pod_sandbox_id,
                restart_count: labels::restart_count(&status.annotations),
                hash: status.annotations.get(labels::CONTAINER_HASH).cloned().unwrap_or_default(),
                state,
                created_at: status.created_at,
                started_at: status.started_at,
                finished_at: status.finished_at,
                exit_code: status.exit_code,
                reason: status.reason,
                message: status.message,
                image: status.image.map(|i| i.image).unwrap_or_default(),
                image_ref: status.image_ref,
            });
        }
        snapshot.sort();
        Ok(snapshot)
    }
}
