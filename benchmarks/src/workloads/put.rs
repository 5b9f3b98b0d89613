//! `put`: every request writes a random key of a 100,000-key space with a fresh random value.

use anyhow::Context as _;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::transport::Channel;

use super::closed_loop::{self, Client};
use super::kv::{padded_key, put, random_bytes};
use super::{Context, Measured, Starter};
use crate::connections;

const KEYSPACE: u64 = 100_000;

struct PutClient {
    kv: KvClient<Channel>,
    rng: SmallRng,
    key_size: usize,
    value_size: usize,
}

impl Client for PutClient {
    async fn operate(&mut self) -> anyhow::Result<()> {
        let key = padded_key("", self.rng.random_range(0..KEYSPACE), self.key_size);
        // Fresh random bytes each time: a repeated value would compress in the server's storage.
        let value = random_bytes(&mut self.rng, self.value_size);
        put(&mut self.kv, key, value).await.context("put")?;
        Ok(())
    }
}

pub async fn run(ctx: Context, starter: Starter) -> anyhow::Result<Measured> {
    let clients = (0..ctx.clients)
        .map(|i| PutClient {
            kv: KvClient::new(connections::for_client(&ctx.channels, i)),
            rng: SmallRng::from_os_rng(),
            key_size: ctx.key_size,
            value_size: ctx.value_size,
        })
        .collect();
    closed_loop::run(clients, starter.start(), ctx.errors).await
}
