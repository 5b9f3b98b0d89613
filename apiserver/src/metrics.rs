//! `/metrics`: request counts and latencies by verb, resource and code,
//! and the number of open watches.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: String,
    resource: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    watches: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let watches = Gauge::<i64, AtomicI64>::default();
        registry.register("apiserver_request", "Requests by verb, resource and HTTP code", requests.clone());
        registry.register(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource (watches excluded)",
            latency.clone(),
        );
        registry.register("apiserver_registered_watchers", "Watches being served", watches.clone());
        Metrics { registry, requests, latency, watches }
    }

    pub fn observe(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let labels =
            RequestLabels { verb: verb.to_uppercase(), resource: resource.to_string(), code: code.to_string() };
        self.requests.get_or_create(&labels).inc();
        let labels = LatencyLabels { verb: verb.to_uppercase(), resource: resource.to_string() };
        self.latency.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// Counts a watch for as long as the returned guard lives.
    pub fn watch_started(&self) -> WatchGuard {
        self.watches.inc();
        WatchGuard(self.watches.clone())
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

pub struct WatchGuard(Gauge<i64, AtomicI64>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_watches_are_counted() {
        let metrics = Metrics::new();
        metrics.observe("list", "pods", 200, Duration::from_millis(3));
        let guard = metrics.watch_started();
        let text = metrics.encode();
        assert!(text.contains("apiserver_request_total{verb=\"LIST\",resource=\"pods\",code=\"200\"} 1"), "{text}");
        assert!(text.contains("apiserver_registered_watchers 1"));
        drop(guard);
        assert!(metrics.encode().contains("apiserver_registered_watchers 0"));
    }
}
