//! One watch on a key prefix, over its own gRPC stream.

use std::time::Instant;

use bytes::Bytes;
use capstan_proto::etcdserverpb::watch_client::WatchClient;
use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use tokio::sync::mpsc;
use tokio::time::{Instant as TokioInstant, timeout_at};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::kv::prefix_end;

pub struct WatchStream {
    /// Kept open: closing the request side could end the stream.
    _requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

impl WatchStream {
    /// Creates a watch on every key under `prefix`, from now on, and waits until the server confirms it.
    pub async fn open(channel: Channel, prefix: &[u8]) -> anyhow::Result<WatchStream> {
        let (requests, outgoing) = mpsc::channel(1);
        let create = WatchCreateRequest {
            key: Bytes::copy_from_slice(prefix),
            range_end: prefix_end(prefix),
            ..Default::default()
        };
        requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) }).await?;
        let responses = WatchClient::new(channel).watch(ReceiverStream::new(outgoing)).await?.into_inner();
        let mut stream = WatchStream { _requests: requests, responses };
        match stream.next().await? {
            Some(response) if response.created => Ok(stream),
            Some(response) => anyhow::bail!("the first watch response is not a creation: {response:?}"),
            None => anyhow::bail!("the watch stream ended before the watch was created"),
        }
    }

    /// The next response, or `None` once `deadline` passes first. The stream
    /// ending or the watch being canceled is an error.
    pub async fn next_before(&mut self, deadline: Instant) -> anyhow::Result<Option<WatchResponse>> {
        match timeout_at(TokioInstant::from_std(deadline), self.next()).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(response))) => Ok(Some(response)),
            Ok(Ok(None)) => anyhow::bail!("the server ended the watch stream"),
            Ok(Err(e)) => Err(e),
        }
    }

    /// The next response; `None` when the server ended the stream. A cancel is an error.
    async fn next(&mut self) -> anyhow::Result<Option<WatchResponse>> {
        let response = self.responses.message().await?;
        if let Some(canceled) = response.as_ref().filter(|r| r.canceled) {
            anyhow::bail!("watch canceled: {:?}", canceled.cancel_reason);
        }
        Ok(response)
    }
}
