//! Shared informers: one watch plus a reflector store per kind, whose events
//! fan out to the handlers the controllers register (client-go's
//! SharedInformer). Handlers only map an object to the keys to reconcile and
//! must not block.

use std::fmt::Debug;
use std::hash::Hash;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector::store::Writer};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What happened to an object, as a handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created or updated, or listed again after the watch restarted.
    Applied,
    Deleted,
}

type Handler<K> = Box<dyn Fn(&K, Change) + Send + Sync>;

/// A watch of one kind, its cache, and who wants to hear about changes.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    writer: Writer<K>,
    handlers: Vec<Handler<K>>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    pub fn new(api: Api<K>) -> Self {
        Self::with_dyntype(api, K::DynamicType::default())
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    pub fn with_dyntype(api: Api<K>, dyntype: K::DynamicType) -> Self {
        Informer { api, writer: Writer::new(dyntype), handlers: Vec::new() }
    }

    /// A reader of the cache; it fills once `run` has listed.
    pub fn store(&self) -> Store<K> {
        self.writer.as_reader()
    }

    pub fn on_change(&mut self, handler: impl Fn(&K, Change) + Send + Sync + 'static) {
        self.handlers.push(Box::new(handler));
    }

    /// Watches until `shutdown`; watch errors are retried with backoff.
    pub async fn run(self, kind: &str, shutdown: CancellationToken) {
        let Informer { api, writer, handlers } = self;
        let reader = writer.as_reader();
        let events = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()).default_backoff());
        let mut events = std::pin::pin!(events.take_until(shutdown.cancelled_owned()));
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(object)) => handlers.iter().for_each(|h| h(&object, Change::Applied)),
                Ok(Event::Delete(object)) => handlers.iter().for_each(|h| h(&object, Change::Deleted)),
                // After a (re)list the cache holds the complete new state at
                // once; deletions missed meanwhile are caught by resyncs.
                Ok(Event::InitDone) => {
                    for object in reader.state() {
                        handlers.iter().for_each(|h| h(&object, Change::Applied));
                    }
                }
                Ok(Event::Init | Event::InitApply(_)) => {}
                Err(err) => tracing::warn!(kind, %err, "watch failed; retrying"),
            }
        }
        tracing::debug!(kind, "informer stopped");
    }
}

/// Waits for a cache's first complete list.
pub async fn wait_ready<K>(store: &Store<K>, kind: &str) -> crate::Result<()>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.wait_until_ready().await.map_err(|_| crate::Error::InformerStopped { kind: kind.to_string() })
}
