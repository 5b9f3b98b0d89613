//! The clients' work: random gets, puts, deletes, compare-and-swaps and
//! lease-bound puts with their revocations over a small key set, each
//! recorded with its times and outcome.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{Client, Failure};
use super::history::{Input, Operation, Output};

/// Every key the workload touches starts with this.
pub const PREFIX: &str = "k/";

pub struct Workload {
    pub keys: usize,
    /// Leases outlive the run, so keys disappear only by revoke (which the
    /// checker models), never by an expiry whose time nobody knows.
    pub lease_ttl: i64,
    pub op_timeout: Duration,
}

/// What one client remembers between operations.
struct ClientState {
    id: u32,
    client: Client,
    rng: StdRng,
    seq: u64,
    /// The last value this client saw per key: what its next CAS expects.
    seen: HashMap<String, Option<String>>,
    /// A lease this client attached to one key and has not revoked yet.
    lease: Option<(i64, String)>,
    ops: Vec<Operation>,
}

impl Workload {
    /// Runs one client until `until`, returning what it did.
    pub async fn run_client(
        &self,
        id: u32,
        urls: Vec<String>,
        seed: u64,
        start: Instant,
        until: Instant,
    ) -> Vec<Operation> {
        let client = match Client::new(urls, id as usize, self.op_timeout) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("client {id}: {e}");
                return Vec::new();
            }
        };
        let mut s = ClientState {
            id,
            client,
            rng: StdRng::seed_from_u64(seed ^ (u64::from(id) << 32)),
            seq: 0,
            seen: HashMap::new(),
            lease: None,
            ops: Vec::new(),
        };
        while Instant::now() < until {
            self.step(&mut s, start).await;
        }
        s.ops
    }

    async fn step(&self, s: &mut ClientState, start: Instant) {
        let key = format!("{PREFIX}{}", s.rng.random_range(0..self.keys));
        s.seq += 1;
        let value = format!("c{}-{}", s.id, s.seq);
        let call = nanos(start);
        let roll = s.rng.random_range(0..100);
        let (key, input, result) = if roll < 35 {
            let r = s.client.get(&key).await.map(|(value, mod_revision, revision)| {
                s.seen.insert(key.clone(), value.clone());
                Output::Get { value, mod_revision, revision }
            });
            (key, Input::Get, r)
        } else if roll < 55 {
            let r = s.client.put(&key, &value, 0).await.map(|revision| Output::Put { revision });
            (key, Input::Put { value, lease: 0 }, r)
        } else if roll < 80 {
            let expected = s.seen.get(&key).cloned().flatten();
            let r = s
                .client
                .cas(&key, expected.as_deref(), &value)
                .await
                .map(|(succeeded, revision)| Output::Cas { succeeded, revision });
            (key, Input::Cas { expected, value }, r)
        } else if roll < 85 {
            let r = s.client.delete(&key).await.map(|(deleted, revision)| Output::Delete { deleted, revision });
            (key, Input::Delete, r)
        } else if let Some((lease, leased_key)) = s.lease.take() {
            let r = s.client.revoke(lease).await.map(|revision| Output::Revoke { revision });
            (leased_key, Input::Revoke { lease }, r)
        } else {
            // The grant touches no key, so it is not part of the history.
            let lease = match s.client.grant(self.lease_ttl).await {
                Ok(id) => id,
                Err(_) => {
                    s.client.rotate();
                    return;
                }
            };
            s.lease = Some((lease, key.clone()));
            let call = nanos(start);
            let r = s.client.put(&key, &value, lease).await.map(|revision| Output::Put { revision });
            return record(s, key, call, start, Input::Put { value, lease }, r);
        };
        record(s, key, call, start, input, result);
    }
}

/// Adds an operation to the client's history: a read that failed changed
/// nothing and is left out, as is a write the server definitely refused; a
/// write with no answer is recorded with an unknown outcome.
fn record(s: &mut ClientState, key: String, call: u64, start: Instant, input: Input, result: Result<Output, Failure>) {
    let (ret, output) = match result {
        Ok(output) => (Some(nanos(start)), output),
        Err(failure) => {
            s.client.rotate();
            match failure {
                Failure::Unknown(_) if input != Input::Get => {
                    // What this client saw of the key may have been overwritten.
                    s.seen.remove(&key);
                    (None, Output::Unknown)
                }
                _ => return,
            }
        }
    };
    if let (
        Input::Put { value, .. } | Input::Cas { value, .. },
        Output::Put { .. } | Output::Cas { succeeded: true, .. },
    ) = (&input, &output)
    {
        s.seen.insert(key.clone(), Some(value.clone()));
    }
    s.ops.push(Operation { client: s.id, key, call, ret, input, output });
}

fn nanos(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
