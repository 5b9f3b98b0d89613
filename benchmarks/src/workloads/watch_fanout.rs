//! `watch-fanout`: `clients` watchers on `/fanout/`, and one writer putting
//! under it at a fixed rate. Each value carries the time its put was sent, so
//! every watcher can time every event from the put's sending to its own receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use capstan_proto::etcdserverpb::kv_client::KvClient;
use tokio::task::{JoinError, JoinSet};
use tokio::time::timeout;
use tonic::transport::Channel;

use super::watch::WatchStream;
use super::{Context, ErrorLog, Events, Measured, Starter, Window, kv};
use crate::connections;
use crate::stats::micros;

const PREFIX: &[u8] = b"/fanout/";
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
const PUT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long watchers keep receiving after the last put; later events count as not delivered.
const DRAIN: Duration = Duration::from_secs(2);

pub async fn run(ctx: Context, starter: Starter) -> anyhow::Result<Measured> {
    let streams = timeout(CREATE_TIMEOUT, open_all(&ctx.channels, ctx.clients))
        .await
        .with_context(|| format!("{} watchers were not all created within {CREATE_TIMEOUT:?}", ctx.clients))??;

    let window = starter.start();
    let mut watchers = JoinSet::new();
    for stream in streams {
        watchers.spawn(receive(stream, window, ctx.errors.clone()));
    }
    let writer = KvClient::new(connections::for_client(&ctx.channels, 0));
    let (puts, failed_puts) = write(writer, window, ctx.rate, ctx.value_size, &ctx.errors).await;

    let mut measured = Measured { errors: failed_puts, ..Measured::default() };
    while let Some(done) = watchers.join_next().await {
        let (latencies, failed) = done.context("a watcher task failed")?;
        measured.latencies_us.extend(latencies);
        measured.errors += failed;
    }
    let delivered = measured.latencies_us.len() as u64;
    measured.events = Some(Events { expected: Some(puts * ctx.clients as u64), delivered });
    Ok(measured)
}

/// Opens every watcher at once, watcher `i` on channel `i % conns`.
async fn open_all(channels: &[Channel], watchers: usize) -> anyhow::Result<Vec<WatchStream>> {
    let mut opening = JoinSet::new();
    for i in 0..watchers {
        opening.spawn(WatchStream::open(connections::for_client(channels, i), PREFIX));
    }
    let mut streams = Vec::with_capacity(watchers);
    while let Some(opened) = opening.join_next().await {
        streams.push(opened.context("a watch task failed")?.context("creating a watcher")?);
    }
    Ok(streams)
}

/// Puts `rate` times a second until the window ends; returns the puts sent
/// inside the measured window and the errors there. Open loop: each put is
/// sent on its tick whether or not the ones before it were answered, so a
/// slow server does not lower the rate it is offered.
async fn write(kv: KvClient<Channel>, window: Window, rate: u32, size: usize, errors: &ErrorLog) -> (u64, u64) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut in_flight = JoinSet::new();
    let mut tally = Tally::default();
    for seq in 0u64.. {
        ticks.tick().await;
        let sent = Instant::now();
        if sent >= window.end {
            break;
        }
        let key = Bytes::from(format!("/fanout/{seq}"));
        let value = stamp(sent - window.origin, size);
        let mut kv = kv.clone();
        in_flight.spawn(async move {
            let outcome = match timeout(PUT_TIMEOUT, kv::put(&mut kv, key, value)).await {
                Ok(outcome) => outcome.context("put").map(drop),
                Err(_) => Err(anyhow::anyhow!("put: no answer within {PUT_TIMEOUT:?}")),
            };
            (window.measures(sent), outcome)
        });
        while let Some(done) = in_flight.try_join_next() {
            tally.add(done, errors);
        }
    }
    while let Some(done) = in_flight.join_next().await {
        tally.add(done, errors);
    }
    (tally.puts, tally.failed)
}

/// The writer's puts in the measured window, by outcome.
#[derive(Default)]
struct Tally {
    puts: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, done: Result<(bool, anyhow::Result<()>), JoinError>, errors: &ErrorLog) {
        let (counted, outcome) = done.unwrap_or_else(|e| (true, Err(anyhow::anyhow!("a put task failed: {e}"))));
        match outcome {
            Ok(()) => self.puts += u64::from(counted),
            Err(e) => {
                self.failed += u64::from(counted);
                errors.record(&e);
            }
        }
    }
}

/// Times every event sent inside the measured window until the drain ends;
/// returns the latencies and the errors.
async fn receive(mut stream: WatchStream, window: Window, errors: Arc<ErrorLog>) -> (Vec<u32>, u64) {
    let measured = (window.measure_start - window.origin)..(window.end - window.origin);
    let until = window.end + DRAIN;
    let mut latencies = Vec::new();
    loop {
        let response = match stream.next_before(until).await {
            Ok(Some(response)) => response,
            Ok(None) => return (latencies, 0),
            Err(e) => {
                errors.record(&e.context("watch"));
                return (latencies, 1);
            }
        };
        let received = window.origin.elapsed();
        for event in response.events {
            let sent = event.kv.and_then(|kv| read_stamp(&kv.value));
            if let Some(sent) = sent.filter(|sent| measured.contains(sent)) {
                latencies.push(micros(received.saturating_sub(sent)));
            }
        }
    }
}

/// A value of `size` bytes (at least 8) that starts with `since_origin` in
/// nanoseconds, little-endian.
fn stamp(since_origin: Duration, size: usize) -> Bytes {
    let nanos = u64::try_from(since_origin.as_nanos()).unwrap_or(u64::MAX);
    let mut value = nanos.to_le_bytes().to_vec();
    value.resize(size.max(value.len()), 0);
    Bytes::from(value)
}

fn read_stamp(value: &[u8]) -> Option<Duration> {
    let nanos = value.first_chunk::<8>()?;
    Some(Duration::from_nanos(u64::from_le_bytes(*nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_whatever_the_value_size() {
        let sent = Duration::from_micros(1_234_567);
        for size in [0, 8, 256] {
            let value = stamp(sent, size);
            assert_eq!(value.len(), size.max(8));
            assert_eq!(read_stamp(&value), Some(sent));
        }
        assert_eq!(read_stamp(b"short"), None);
    }
}
