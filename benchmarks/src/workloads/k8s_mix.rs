//! `k8s-mix`: what a Kubernetes apiserver asks of its store for pods, on keys
//! `/registry/pods/ns-<n % 10>/pod-<n>` with ~1 KiB values. Each client
//! loops over a weighted mix of creates, read-modify-write updates, gets,
//! paginated lists and delete-recreates, while ten watchers follow
//! `/registry/pods/`. Each logical operation counts once, however many
//! requests it takes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use capstan_proto::etcdserverpb::compare::CompareResult;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use capstan_proto::etcdserverpb::{RangeRequest, TxnRequest};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::closed_loop::{self, Client};
use super::kv::{delete_op, get, get_op, mod_revision, prefix_end, preload, put_op};
use super::watch::WatchStream;
use super::{Context, ErrorLog, Events, Measured, Starter, Window};
use crate::connections;

const PODS_PREFIX: &str = "/registry/pods/";
const NAMESPACES: u64 = 10;
const PRELOADED_PODS: u64 = 1_000;
const VALUE_BYTES: usize = 1024;
const LIST_PAGE: i64 = 100;
const LIST_MAX_PAGES: usize = 5;
const WATCHERS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    /// Txn(mod_revision == 0 → put) on a new pod.
    Create,
    /// Range the pod, then Txn(mod_revision == seen → put, else → range).
    Update,
    /// Range one pod, linearizable.
    Get,
    /// Range a namespace 100 pods at a time, up to 5 pages, at the first page's revision.
    List,
    /// Txn(exists → delete), then create the pod again.
    Recreate,
}

impl Operation {
    /// Out of 100.
    const WEIGHTS: [(Operation, u32); 5] = [
        (Operation::Create, 10),
        (Operation::Update, 40),
        (Operation::Get, 30),
        (Operation::List, 10),
        (Operation::Recreate, 10),
    ];

    /// The operation a roll in 0..100 falls on.
    fn for_roll(mut roll: u32) -> Operation {
        for (operation, weight) in Self::WEIGHTS {
            if roll < weight {
                return operation;
            }
            roll -= weight;
        }
        Operation::Get
    }
}

fn pod_key(pod: u64) -> Bytes {
    Bytes::from(format!("{PODS_PREFIX}ns-{}/pod-{pod}", pod % NAMESPACES))
}

/// A pod object, JSON as kubectl would show it, padded with random hex to ~1 KiB.
fn pod_value(rng: &mut SmallRng, pod: u64) -> Bytes {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const TAIL: &str = concat!(
        r#""}},"spec":{"containers":[{"name":"app","image":"registry.k8s.io/pause:3.10"}]},"#,
        r#""status":{"phase":"Running"}}"#
    );
    let mut json = format!(
        concat!(
            r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"pod-{pod}","namespace":"ns-{namespace}","#,
            r#""labels":{{"app":"bench"}},"annotations":{{"bench/filler":""#
        ),
        pod = pod,
        namespace = pod % NAMESPACES
    );
    while json.len() + TAIL.len() < VALUE_BYTES {
        json.push(char::from(HEX[rng.random_range(0..HEX.len())]));
    }
    json.push_str(TAIL);
    Bytes::from(json)
}

struct PodClient {
    kv: KvClient<Channel>,
    rng: SmallRng,
    /// Pods 0..next_pod have been created (some may be mid-recreate).
    next_pod: Arc<AtomicU64>,
}

impl Client for PodClient {
    async fn operate(&mut self) -> anyhow::Result<()> {
        match Operation::for_roll(self.rng.random_range(0..100)) {
            Operation::Create => {
                let pod = self.next_pod.fetch_add(1, Ordering::Relaxed);
                self.create(pod).await.context("create")
            }
            Operation::Update => {
                let pod = self.existing_pod();
                self.update(pod).await.context("update")
            }
            Operation::Get => {
                let pod = self.existing_pod();
                get(&mut self.kv, pod_key(pod), false).await.context("get").map(drop)
            }
            Operation::List => {
                let namespace = self.rng.random_range(0..NAMESPACES);
                self.list(namespace).await.context("list")
            }
            Operation::Recreate => {
                let pod = self.existing_pod();
                self.recreate(pod).await.context("delete-recreate")
            }
        }
    }
}

impl PodClient {
    fn existing_pod(&mut self) -> u64 {
        self.rng.random_range(0..self.next_pod.load(Ordering::Relaxed))
    }

    async fn create(&mut self, pod: u64) -> anyhow::Result<()> {
        let key = pod_key(pod);
        let txn = TxnRequest {
            compare: vec![mod_revision(key.clone(), CompareResult::Equal, 0)],
            success: vec![put_op(key, pod_value(&mut self.rng, pod))],
            failure: Vec::new(),
        };
        self.kv.txn(txn).await?;
        Ok(())
    }

    /// A guaranteed update as the apiserver does it; a conflict with another
    /// client is an answer too, and counts like one.
    async fn update(&mut self, pod: u64) -> anyhow::Result<()> {
        let key = pod_key(pod);
        let Some(seen) = get(&mut self.kv, key.clone(), false).await? else {
            return Ok(()); // deleted meanwhile: the apiserver's 404
        };
        let txn = TxnRequest {
            compare: vec![mod_revision(key.clone(), CompareResult::Equal, seen.mod_revision)],
            success: vec![put_op(key.clone(), pod_value(&mut self.rng, pod))],
            failure: vec![get_op(key)],
        };
        self.kv.txn(txn).await?;
        Ok(())
    }

    async fn list(&mut self, namespace: u64) -> anyhow::Result<()> {
        let prefix = format!("{PODS_PREFIX}ns-{namespace}/");
        let mut request = RangeRequest {
            key: Bytes::from(prefix.clone()),
            range_end: prefix_end(prefix.as_bytes()),
            limit: LIST_PAGE,
            ..Default::default()
        };
        for _ in 0..LIST_MAX_PAGES {
            let page = self.kv.range(request.clone()).await?.into_inner();
            let Some(last) = page.kvs.last().filter(|_| page.more) else {
                break;
            };
            // The next page starts just after the last key, at the first page's revision.
            let mut next = last.key.to_vec();
            next.push(0);
            request.key = Bytes::from(next);
            if request.revision == 0 {
                request.revision = page.header.map_or(0, |h| h.revision);
            }
        }
        Ok(())
    }

    async fn recreate(&mut self, pod: u64) -> anyhow::Result<()> {
        let key = pod_key(pod);
        let delete = TxnRequest {
            compare: vec![mod_revision(key.clone(), CompareResult::Greater, 0)],
            success: vec![delete_op(key)],
            failure: Vec::new(),
        };
        self.kv.txn(delete).await?;
        self.create(pod).await
    }
}

pub async fn run(ctx: Context, starter: Starter) -> anyhow::Result<Measured> {
    let mut rng = SmallRng::from_os_rng();
    let pods = (0..PRELOADED_PODS).map(|pod| (pod_key(pod), pod_value(&mut rng, pod))).collect();
    preload(&ctx.channels, pods).await?;
    let mut streams = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let channel = connections::for_client(&ctx.channels, i);
        streams.push(WatchStream::open(channel, PODS_PREFIX.as_bytes()).await.context("creating a watcher")?);
    }

    let next_pod = Arc::new(AtomicU64::new(PRELOADED_PODS));
    let clients = (0..ctx.clients)
        .map(|i| PodClient {
            kv: KvClient::new(connections::for_client(&ctx.channels, i)),
            rng: SmallRng::from_os_rng(),
            next_pod: next_pod.clone(),
        })
        .collect();
    let window = starter.start();
    let mut watchers = JoinSet::new();
    for stream in streams {
        watchers.spawn(count_events(stream, window, ctx.errors.clone()));
    }
    let mut measured = closed_loop::run(clients, window, ctx.errors).await?;
    let mut delivered = 0;
    while let Some(done) = watchers.join_next().await {
        let (events, failed) = done.context("a watcher task failed")?;
        delivered += events;
        measured.errors += failed;
    }
    measured.events = Some(Events { expected: None, delivered });
    Ok(measured)
}

/// Counts the events received in the measured window; returns them and the errors.
async fn count_events(mut stream: WatchStream, window: Window, errors: Arc<ErrorLog>) -> (u64, u64) {
    let mut events = 0;
    loop {
        match stream.next_before(window.end).await {
            Ok(Some(response)) => {
                if window.measures(Instant::now()) {
                    events += response.events.len() as u64;
                }
            }
            Ok(None) => return (events, 0),
            Err(e) => {
                errors.record(&e.context("watch"));
                return (events, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_fall_on_operations_by_weight() {
        for (operation, weight) in Operation::WEIGHTS {
            let rolls = (0..100).filter(|&roll| Operation::for_roll(roll) == operation).count();
            assert_eq!(rolls, weight as usize, "{operation:?}");
        }
    }

    #[test]
    fn pods_are_spread_over_namespaces_with_values_of_about_a_kib() {
        assert_eq!(pod_key(23), Bytes::from_static(b"/registry/pods/ns-3/pod-23"));
        let value = pod_value(&mut SmallRng::seed_from_u64(1), 23);
        assert_eq!(value.len(), VALUE_BYTES);
        let json = std::str::from_utf8(&value).expect("pod values are text");
        assert!(json.starts_with(r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"pod-23","namespace":"ns-3","#));
        assert!(json.ends_with(r#""status":{"phase":"Running"}}"#), "{json}");
        serde_json::from_str::<serde_json::Value>(json).expect("pod values are JSON");
    }
}
