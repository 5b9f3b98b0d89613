//! HTTP/1 endpoints on the client port, beside gRPC: `/health` (a
//! linearizable read must succeed), `/metrics` (Prometheus text) and
//! `/version`, as etcd serves them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ETCD_CLUSTER_VERSION, ETCD_VERSION};
use crate::server::member::Member;

pub fn router(member: Arc<Member>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/version", get(version))
        .with_state(member)
}

async fn health(State(member): State<Arc<Member>>) -> impl IntoResponse {
    let (status, body) = match member.read_barrier().await {
        Ok(()) => (StatusCode::OK, r#"{"health":"true","reason":""}"#.to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!(r#"{{"health":"false","reason":"{e}"}}"#)),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(State(member): State<Arc<Member>>) -> impl IntoResponse {
    let mut body = member.metrics.render();
    body.push_str(&process_metrics());
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn version() -> impl IntoResponse {
    let body = format!(r#"{{"etcdserver":"{ETCD_VERSION}","etcdcluster":"{ETCD_CLUSTER_VERSION}"}}"#);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body)
}

/// The resident set size, under the name etcd tools read.
fn process_metrics() -> String {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    format!(
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
        pages * 4096
    )
}
