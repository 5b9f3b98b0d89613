//! The CRI v1 client over containerd's unix socket: one method per call the
//! agent makes, each a thin wrapper that unwraps the response.

use std::collections::HashMap;
use std::time::Duration;

use capstan_proto::cri::image_service_client::ImageServiceClient;
use capstan_proto::cri::runtime_service_client::RuntimeServiceClient;
use capstan_proto::cri::{
    ContainerConfig, ContainerFilter, ContainerStatus, ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest,
    ExecSyncResponse, ImageSpec, ImageStatusRequest, ListContainersRequest, ListPodSandboxRequest, PodSandbox,
    PodSandboxConfig, PodSandboxFilter, PodSandboxStatus, PodSandboxStatusRequest, PullImageRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, RuntimeCondition, StartContainerRequest,
    StatusRequest, StopContainerRequest, StopPodSandboxRequest, VersionRequest, VersionResponse,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// List responses of a busy node can exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 64 << 20;
/// Every call but ExecSync and StopContainer (which carry their own
/// timeouts) should answer well within this.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A CRI v1 runtime (containerd). Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct Runtime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Runtime {
    /// Connects to `unix:///path/to.sock` (the kubelet's
    /// `--container-runtime-endpoint` form; a bare path works too).
    pub async fn connect(endpoint: &str) -> Result<Runtime, Error> {
        let path = socket_path(endpoint)?;
        // tonic wants a URI; the connector below ignores it.
        let channel = Endpoint::from_static("http://[::]:50051")
            .timeout(CALL_TIMEOUT)
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|source| Error::Connect { endpoint: endpoint.to_string(), source })?;
        Ok(Runtime {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
        })
    }

    pub async fn version(&self) -> Result<VersionResponse, Error> {
        let request = VersionRequest { version: "v1".to_string() };
        Ok(self.runtime.clone().version(request).await?.into_inner())
    }

    /// The runtime's conditions (RuntimeReady, NetworkReady).
    pub async fn conditions(&self) -> Result<Vec<RuntimeCondition>, Error> {
        let status = self.runtime.clone().status(StatusRequest { verbose: false }).await?.into_inner();
        Ok(status.status.map(|s| s.conditions).unwrap_or_default())
    }

    pub async fn run_sandbox(&self, config: PodSandboxConfig) -> Result<String, Error> {
        let request = RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        Ok(self.runtime.clone().run_pod_sandbox(request).await?.into_inner().pod_sandbox_id)
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<(), Error> {
        let request = StopPodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.clone().stop_pod_sandbox(request).await?;
        Ok(())
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<(), Error> {
        let request = RemovePodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.clone().remove_pod_sandbox(request).await?;
        Ok(())
    }

    pub async fn sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, Error> {
        let request = PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: false };
        let response = self.runtime.clone().pod_sandbox_status(request).await?.into_inner();
        response.status.ok_or(Error::MissingField("PodSandboxStatus.status"))
    }

    /// Sandboxes carrying all of `labels`.
    pub async fn list_sandboxes(&self, labels: HashMap<String, String>) -> Result<Vec<PodSandbox>, Error> {
        let filter = PodSandboxFilter { label_selector: labels, ..Default::default() };
        let request = ListPodSandboxRequest { filter: Some(filter) };
        Ok(self.runtime.clone().list_pod_sandbox(request).await?.into_inner().items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String, Error> {
        let request = CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self.runtime.clone().create_container(request).await?.into_inner().container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), Error> {
        let request = StartContainerRequest { container_id: id.to_string() };
        self.runtime.clone().start_container(request).await?;
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace_seconds`.
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), Error> {
        let request = StopContainerRequest { container_id: id.to_string(), timeout: grace_seconds };
        let mut call = tonic::Request::new(request);
        call.set_timeout(CALL_TIMEOUT + Duration::from_secs(grace_seconds.max(0).unsigned_abs()));
        self.runtime.clone().stop_container(call).await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), Error> {
        let request = RemoveContainerRequest { container_id: id.to_string() };
        self.runtime.clone().remove_container(request).await?;
        Ok(())
    }

    /// Container ids (with their sandbox) carrying all of `labels`.
    pub async fn list_containers(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<capstan_proto::cri::Container>, Error> {
        let filter = ContainerFilter { label_selector: labels, ..Default::default() };
        let request = ListContainersRequest { filter: Some(filter) };
        Ok(self.runtime.clone().list_containers(request).await?.into_inner().containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<ContainerStatus, Error> {
        let request = ContainerStatusRequest { container_id: id.to_string(), verbose: false };
        let response = self.runtime.clone().container_status(request).await?.into_inner();
        response.status.ok_or(Error::MissingField("ContainerStatusResponse.status"))
    }

    /// Runs `cmd` in the container; a non-zero exit is a result, not an error.
    pub async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout_seconds: i64) -> Result<ExecSyncResponse, Error> {
        let request = ExecSyncRequest { container_id: id.to_string(), cmd, timeout: timeout_seconds };
        let mut call = tonic::Request::new(request);
        call.set_timeout(Duration::from_secs(timeout_seconds.max(1).unsigned_abs() + 5));
        Ok(self.runtime.clone().exec_sync(call).await?.into_inner())
    }

    /// The image's id when the runtime has it; None means it must be pulled.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        let request = ImageStatusRequest { image: Some(image_spec(image)), verbose: false };
        let response = self.images.clone().image_status(request).await?.into_inner();
        Ok(response.image.map(|i| i.id))
    }

    /// Pulls `image`; the image reference (id) it resolved to.
    pub async fn pull_image(&self, image: &str, sandbox_config: PodSandboxConfig) -> Result<String, Error> {
        let request =
            PullImageRequest { image: Some(image_spec(image)), auth: None, sandbox_config: Some(sandbox_config) };
        Ok(self.images.clone().pull_image(request).await?.into_inner().image_ref)
    }
}

pub fn image_spec(image: &str) -> ImageSpec {
    ImageSpec { image: image.to_string(), ..Default::default() }
}

/// The socket path of a `unix://` endpoint.
fn socket_path(endpoint: &str) -> Result<String, Error> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return Ok(path.to_string());
    }
    if endpoint.starts_with('/') {
        return Ok(endpoint.to_string());
    }
    Err(Error::Endpoint(endpoint.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").ok().as_deref(),
            Some("/run/containerd/containerd.sock")
        );
        assert_eq!(socket_path("/run/x.sock").ok().as_deref(), Some("/run/x.sock"));
        assert!(matches!(socket_path("tcp://127.0.0.1:1"), Err(Error::Endpoint(_))));
    }
}
