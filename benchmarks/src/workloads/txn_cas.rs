//! `txn-cas`: every client owns one key and updates it by compare-and-swap:
//! Txn(mod_revision(key) == last seen → put, else → range), as an apiserver
//! updates an object.

use anyhow::Context as _;
use bytes::Bytes;
use capstan_proto::etcdserverpb::compare::CompareResult;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::response_op::Response;
use capstan_proto::etcdserverpb::{TxnRequest, TxnResponse};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use tonic::transport::Channel;

use super::closed_loop::{self, Client};
use super::kv::{get_op, mod_revision, padded_key, preload, put_op, random_bytes, revision};
use super::{Context, Measured, Starter};
use crate::connections;

struct CasClient {
    kv: KvClient<Channel>,
    rng: SmallRng,
    key: Bytes,
    value_size: usize,
    /// The key's mod_revision as this client last saw it.
    last_revision: i64,
}

impl Client for CasClient {
    async fn operate(&mut self) -> anyhow::Result<()> {
        let txn = TxnRequest {
            compare: vec![mod_revision(self.key.clone(), CompareResult::Equal, self.last_revision)],
            success: vec![put_op(self.key.clone(), random_bytes(&mut self.rng, self.value_size))],
            failure: vec![get_op(self.key.clone())],
        };
        let response = self.kv.txn(txn).await.context("txn")?.into_inner();
        self.last_revision = current_revision(response)?;
        Ok(())
    }
}

/// The key's mod_revision after the txn: the txn's own revision if its put
/// ran, else what the failure branch read.
fn current_revision(response: TxnResponse) -> anyhow::Result<i64> {
    if response.succeeded {
        return revision(response.header);
    }
    let read = response.responses.into_iter().next().and_then(|op| match op.response {
        Some(Response::ResponseRange(range)) => Some(range.kvs.into_iter().next().map_or(0, |kv| kv.mod_revision)),
        _ => None,
    });
    read.context("txn: the failure branch returned no range response")
}

pub async fn run(ctx: Context, starter: Starter) -> anyhow::Result<Measured> {
    let keys: Vec<Bytes> = (0..ctx.clients as u64).map(|n| padded_key("cas-", n, ctx.key_size)).collect();
    let mut rng = SmallRng::from_os_rng();
    let items = keys.iter().map(|key| (key.clone(), random_bytes(&mut rng, ctx.value_size))).collect();
    let revisions = preload(&ctx.channels, items).await?;

    let clients = keys
        .into_iter()
        .zip(revisions)
        .enumerate()
        .map(|(i, (key, last_revision))| CasClient {
            kv: KvClient::new(connections::for_client(&ctx.channels, i)),
            rng: SmallRng::from_os_rng(),
            key,
            value_size: ctx.value_size,
            last_revision,
        })
        .collect();
    closed_loop::run(clients, starter.start(), ctx.errors).await
}
