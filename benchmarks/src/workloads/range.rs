//! `range-linearizable` and `range-serializable`: every request reads one
//! random key of 1,000 preloaded ones.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::transport::Channel;

use super::closed_loop::{self, Client};
use super::kv::{get, padded_key, preload, random_bytes};
use super::{Context, Measured, Starter};
use crate::connections;

const PRELOADED_KEYS: u64 = 1_000;

#[derive(Clone, Copy)]
pub enum Consistency {
    /// Confirmed with the leader (etcd's default): goes through Raft's read index.
    Linearizable,
    /// Served from the member's own state, possibly stale.
    Serializable,
}

struct RangeClient {
    kv: KvClient<Channel>,
    rng: SmallRng,
    keys: Arc<Vec<Bytes>>,
    serializable: bool,
}

impl Client for RangeClient {
    async fn operate(&mut self) -> anyhow::Result<()> {
        let key = self.keys[self.rng.random_range(0..self.keys.len())].clone();
        let found = get(&mut self.kv, key.clone(), self.serializable).await.context("range")?;
        anyhow::ensure!(found.is_some(), "range: preloaded key {key:?} is missing");
        Ok(())
    }
}

pub async fn run(ctx: Context, starter: Starter, consistency: Consistency) -> anyhow::Result<Measured> {
    let keys: Vec<Bytes> = (0..PRELOADED_KEYS).map(|n| padded_key("", n, ctx.key_size)).collect();
    let mut rng = SmallRng::from_os_rng();
    let items = keys.iter().map(|key| (key.clone(), random_bytes(&mut rng, ctx.value_size))).collect();
    preload(&ctx.channels, items).await?;

    let keys = Arc::new(keys);
    let clients = (0..ctx.clients)
        .map(|i| RangeClient {
            kv: KvClient::new(connections::for_client(&ctx.channels, i)),
            rng: SmallRng::from_os_rng(),
            keys: keys.clone(),
            serializable: matches!(consistency, Consistency::Serializable),
        })
        .collect();
    closed_loop::run(clients, starter.start(), ctx.errors).await
}
