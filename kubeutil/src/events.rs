//! core/v1 Events, aggregated the way client-go's recorder does it: the
//! same reason and message about the same object bumps `count` and
//! `lastTimestamp` on one Event instead of writing a new one, so
//! `kubectl describe` shows "x5 over 2m" for a crash loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::Mutex;

/// Events remembered for aggregation; older ones start a new Event.
const REMEMBERED: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Writes Events on behalf of one component (`default-scheduler`,
/// `kubelet`, `deployment-controller`, …). Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    source: EventSource,
    seen: Arc<Mutex<Seen>>,
}

/// The Events written so far, by what makes two of them the same.
#[derive(Default)]
struct Seen {
    by_key: HashMap<String, (String, String, i32)>,
    order: VecDeque<String>,
}

impl Recorder {
    /// `host` is the node name for node-local components (the kubelet sets it).
    pub fn new(client: Client, component: &str, host: Option<&str>) -> Recorder {
        let source = EventSource { component: Some(component.to_string()), host: host.map(str::to_string) };
        Recorder { client, source, seen: Arc::default() }
    }

    /// Records an event about `object`. Failures are logged, not returned:
    /// an event is best effort and must never stop the work it describes.
    pub async fn record(&self, object: &ObjectReference, kind: EventType, reason: &str, message: &str) {
        if let Err(err) = self.try_record(object, kind, reason, message).await {
            tracing::debug!(%err, reason, message, "event not recorded");
        }
    }

    async fn try_record(
        &self,
        object: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let key = aggregation_key(object, kind, reason, message, &self.source);
        let now = Timestamp::now();
        let mut seen = self.seen.lock().await;
        if let Some((namespace, name, count)) = seen.by_key.get(&key).cloned() {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": Time(now)});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    seen.by_key.insert(key, (namespace, name, count + 1));
                    return Ok(());
                }
                // Deleted or expired: start a new one below.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".to_string());
        let event = new_event(object, kind, reason, message, &self.source, now);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        seen.remember(key, (namespace, name, 1));
        Ok(())
    }
}

impl Seen {
    fn remember(&mut self, key: String, value: (String, String, i32)) {
        if self.by_key.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.by_key.remove(&oldest);
            }
        }
    }
}

/// What makes two events the same one (client-go's `getEventKey`).
fn aggregation_key(
    object: &ObjectReference,
    kind: EventType,
    reason: &str,
    message: &str,
    source: &EventSource,
) -> String {
    [
        source.component.as_deref().unwrap_or_default(),
        source.host.as_deref().unwrap_or_default(),
        object.kind.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default(),
        object.uid.as_deref().unwrap_or_default(),
        object.field_path.as_deref().unwrap_or_default(),
        kind.as_str(),
        reason,
        message,
    ]
    .join("\u{0}")
}

/// A new Event named like client-go's: `<object>.<nanoseconds in hex>`.
fn new_event(
    object: &ObjectReference,
    kind: EventType,
    reason: &str,
    message: &str,
    source: &EventSource,
    now: Timestamp,
) -> Event {
    let object_name = object.name.clone().unwrap_or_default();
    let nanos = now.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object_name}.{nanos:x}")),
            namespace: object.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: object.clone(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(kind.as_str().to_string()),
        source: Some(source.clone()),
        reporting_component: source.component.clone(),
        reporting_instance: source.host.clone().or_else(|| source.component.clone()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        count: Some(1),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    fn kubelet() -> EventSource {
        EventSource { component: Some("kubelet".into()), host: Some("n1".into()) }
    }

    #[test]
    fn the_same_reason_and_message_about_one_object_aggregate() {
        let a = aggregation_key(&pod("p", "u1"), EventType::Warning, "BackOff", "Back-off", &kubelet());
        let b = aggregation_key(&pod("p", "u1"), EventType::Warning, "BackOff", "Back-off", &kubelet());
        assert_eq!(a, b);
        let other_pod = aggregation_key(&pod("p", "u2"), EventType::Warning, "BackOff", "Back-off", &kubelet());
        let other_message = aggregation_key(&pod("p", "u1"), EventType::Warning, "BackOff", "other", &kubelet());
        assert_ne!(a, other_pod);
        assert_ne!(a, other_message);
    }

    #[test]
    fn a_new_event_is_named_after_its_object_and_counts_one() {
        let now = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let event = new_event(&pod("web-1", "u1"), EventType::Normal, "Pulled", "ok", &kubelet(), now);
        let name = event.metadata.name.unwrap_or_default();
        assert!(name.starts_with("web-1."), "{name}");
        assert_eq!(event.count, Some(1));
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(event.source.and_then(|s| s.host).as_deref(), Some("n1"));
    }

    #[test]
    fn the_memory_of_events_is_bounded() {
        let mut seen = Seen::default();
        for i in 0..REMEMBERED + 10 {
            seen.remember(format!("k{i}"), ("ns".into(), format!("e{i}"), 1));
        }
        assert_eq!(seen.by_key.len(), REMEMBERED);
        assert!(!seen.by_key.contains_key("k0"));
    }
}
