//! Watch responses: a chunked stream of `{"type":…,"object":…}` lines fed
//! from the resource's watch cache. An object leaving a watcher's
//! selectors is a DELETED to that watcher, entering them an ADDED.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::respond::{Body, Format, IncludeObject, table_object};
use crate::error::ApiError;
use crate::metrics::WatchGuard;
use crate::registry::{ListOptions, Registry};
use crate::resources::Resource;
use crate::watch_cache::{CacheEvent, EventKind, WatchCache};

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// Encoded events waiting for a slow client.
const OUTBOX: usize = 256;

pub struct WatchRequest {
    pub namespace: String,
    pub options: ListOptions,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    pub format: Format,
    pub include: IncludeObject,
    /// Counts this watch in /metrics while it runs.
    pub _guard: WatchGuard,
}

/// Starts a watch; errors before the stream starts are plain responses.
pub async fn serve(
    registry: &Registry,
    resource: &'static Resource,
    request: WatchRequest,
) -> Result<Response<Body>, ApiError> {
    let cache = registry.cache(resource)?.clone();
    let start = match request.options.resource_version.as_str() {
        // "Start at most recent": the current objects, consistently read.
        "" => {
            let revision = registry.store().revision().await.map_err(crate::registry::store_error)?;
            cache.wait_for(revision).await?;
            cache.watch_from(None)
        }
        "0" => cache.watch_from(None),
        text => {
            let revision = crate::registry::parse_resource_version(text)?.unwrap_or(0);
            cache.wait_for(revision).await?;
            if request.send_initial_events { cache.watch_from(None) } else { cache.watch_from(Some(revision)) }
        }
    };
    let (outbox, frames) = mpsc::channel::<Bytes>(OUTBOX);
    match start {
        Ok(start) => {
            tokio::spawn(pump(cache, resource, request, start, outbox));
        }
        // Kubernetes answers a too-old watch with 200 and one ERROR event.
        Err(error) => {
            let line = event_line("ERROR", &error.to_status());
            let _ = outbox.send(line).await;
        }
    }
    let body = StreamBody::new(ReceiverStream::new(frames).map(|b| Ok(Frame::data(b)))).boxed();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn pump(
    cache: Arc<WatchCache>,
    resource: &'static Resource,
    request: WatchRequest,
    start: crate::watch_cache::WatchStart,
    outbox: mpsc::Sender<Bytes>,
) {
    let prefix = resource.key_prefix((!request.namespace.is_empty()).then_some(request.namespace.as_str()));
    let mut live = start.live;
    let mut first = true;
    let mut sent_revision = start.revision;
    for event in start.backlog {
        if let Some(line) = encode(resource, &request, &prefix, &event, &mut first)
            && outbox.send(line).await.is_err()
        {
            return;
        }
        sent_revision = sent_revision.max(event.revision);
    }
    if request.send_initial_events && request.bookmarks {
        let line = bookmark(resource, start.revision, true);
        if outbox.send(line).await.is_err() {
            return;
        }
    }
    let deadline = request.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    loop {
        let until_deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = live.recv() => match received {
                // The live feed starts where the backlog ends: no repeats.
                Ok(event) => {
                    sent_revision = sent_revision.max(event.revision);
                    if let Some(line) = encode(resource, &request, &prefix, &event, &mut first)
                        && outbox.send(line).await.is_err()
                    {
                        return;
                    }
                }
                // Cut off: the client watches again from its last resourceVersion.
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick(), if request.bookmarks => {
                // Safe only when caught up: every event up to `revision` is delivered.
                let revision = cache.revision();
                if live.is_empty() && revision >= sent_revision {
                    sent_revision = revision;
                    if outbox.send(bookmark(resource, revision, false)).await.is_err() {
                        return;
                    }
                }
            },
            () = until_deadline => return,
            () = outbox.closed() => return,
        }
    }
}

/// The line for one event as this watcher sees it, if it sees it at all.
fn encode(
    resource: &Resource,
    request: &WatchRequest,
    prefix: &str,
    event: &CacheEvent,
    first: &mut bool,
) -> Option<Bytes> {
    if !event.key.starts_with(prefix) {
        return None;
    }
    let now = event.kind != EventKind::Deleted && request.options.matches(resource, &event.object);
    let before = event.prev.as_ref().is_some_and(|p| request.options.matches(resource, p));
    let kind = match (event.kind, before, now) {
        (EventKind::Deleted, true, _) => "DELETED",
        (EventKind::Deleted, false, _) => return None,
        (_, false, true) => "ADDED",
        (EventKind::Added, _, true) | (EventKind::Modified, true, true) => {
            if event.kind == EventKind::Added {
                "ADDED"
            } else {
                "MODIFIED"
            }
        }
        (_, true, false) => "DELETED",
        (_, false, false) => return None,
    };
    let object = if request.format == Format::Table {
        let mut table = table_object(resource, std::slice::from_ref(&event.object), request.include, None, None);
        if !*first && let Some(map) = table.as_object_mut() {
            map.insert("columnDefinitions".into(), Value::Null);
        }
        table
    } else {
        (*event.object).clone()
    };
    *first = false;
    Some(event_line(kind, &object))
}

fn bookmark(resource: &Resource, revision: i64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata});
    event_line("BOOKMARK", &object)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::LabelSelector;

    fn request(selector: &str) -> WatchRequest {
        WatchRequest {
            namespace: String::new(),
            options: ListOptions {
                labels: Some(LabelSelector::parse(selector).expect("selector")),
                ..Default::default()
            },
            bookmarks: false,
            send_initial_events: false,
            timeout: None,
            format: Format::Json,
            include: IncludeObject::Metadata,
            _guard: crate::metrics::Metrics::new().watch_started(),
        }
    }

    fn event(kind: EventKind, now: &str, prev: Option<&str>) -> CacheEvent {
        let object = |app: &str| Arc::new(json!({"metadata": {"name": "a", "labels": {"app": app}}}));
        CacheEvent {
            kind,
            key: "/registry/configmaps/default/a".into(),
            object: object(now),
            prev: prev.map(object),
            revision: 5,
        }
    }

    fn kind_of(line: Option<Bytes>) -> Option<String> {
        let value: Value = serde_json::from_slice(&line?).ok()?;
        value["type"].as_str().map(str::to_string)
    }

    #[test]
    fn selectors_turn_changes_into_adds_and_deletes() {
        let cm = crate::resources::find("", "v1", "configmaps").expect("configmaps");
        let req = request("app=web");
        let mut first = true;
        let prefix = "/registry/configmaps/";
        let seen = |e: CacheEvent, first: &mut bool| kind_of(encode(cm, &req, prefix, &e, first));
        assert_eq!(seen(event(EventKind::Modified, "web", Some("db")), &mut first).as_deref(), Some("ADDED"));
        assert_eq!(seen(event(EventKind::Modified, "db", Some("web")), &mut first).as_deref(), Some("DELETED"));
        assert_eq!(seen(event(EventKind::Modified, "web", Some("web")), &mut first).as_deref(), Some("MODIFIED"));
        assert_eq!(seen(event(EventKind::Modified, "db", Some("db")), &mut first), None);
        assert_eq!(seen(event(EventKind::Added, "web", None), &mut first).as_deref(), Some("ADDED"));
        assert_eq!(seen(event(EventKind::Deleted, "web", Some("web")), &mut first).as_deref(), Some("DELETED"));
        let other_namespace = "/registry/configmaps/kube-system/";
        assert_eq!(kind_of(encode(cm, &req, other_namespace, &event(EventKind::Added, "web", None), &mut first)), None);
    }
}
