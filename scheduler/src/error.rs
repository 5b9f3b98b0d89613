use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A watch stream ended; watches retry on their own, so this is a bug.
    #[error("the {0} watch ended")]
    WatchEnded(&'static str),
    #[error("binding pod {pod} to node {node}: {source}")]
    Bind {
        pod: String,
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the status of pod {pod}: {source}")]
    PodStatus {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// The apiserver refused because the pod is gone or already bound:
    /// the watch will tell the queue, nothing to report.
    pub fn is_settled_elsewhere(&self) -> bool {
        match self {
            Error::Bind { source: kube::Error::Api(status), .. } => status.code == 404 || status.code == 409,
            _ => false,
        }
    }
}
