//! Running one controller: a work queue fed by informer handlers, drained by
//! kube-runtime's `applier` (which never reconciles one key twice at once,
//! deduplicates and requeues).

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use kube::Resource;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// The sending side of a controller's work queue; cheap to clone into handlers.
pub struct Queue<K: Resource> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
}

impl<K: Resource> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Queue { tx: self.tx.clone() }
    }
}

impl<K> Queue<K>
where
    K: Resource<DynamicType = ()>,
{
    pub fn new() -> (Queue<K>, mpsc::UnboundedReceiver<ObjectRef<K>>) {
        let (tx, rx) = mpsc::unbounded();
        (Queue { tx }, rx)
    }

    pub fn add(&self, namespace: Option<&str>, name: &str) {
        let mut key = ObjectRef::new(name);
        if let Some(ns) = namespace {
            key = key.within(ns);
        }
        // Closed only while shutting down, when nothing is reconciled anyway.
        let _ = self.tx.unbounded_send(key);
    }
}

/// Reconciles what arrives on `queue` until `shutdown`, running reconciles
/// still in flight to their end.
pub async fn drive<K, Ctx, F, Fut>(
    name: &'static str,
    store: Store<K>,
    queue: mpsc::UnboundedReceiver<ObjectRef<K>>,
    context: Arc<Ctx>,
    mut reconcile: F,
    shutdown: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    Ctx: Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let queue = queue.map(Ok::<_, Infallible>).take_until(shutdown.cancelled_owned());
    let results = controller::applier(
        move |object, ctx| Box::pin(reconcile(object, ctx)),
        move |_object, err: &Error, _ctx| retry_after(name, err),
        context,
        store,
        queue,
        controller::Config::default(),
    );
    results
        .for_each(|result| async move {
            match result {
                Ok((key, _)) => tracing::trace!(controller = name, %key, "reconciled"),
                Err(controller::Error::ObjectNotFound(key)) => tracing::trace!(controller = name, %key, "gone"),
                Err(err) => tracing::debug!(controller = name, %err, "reconcile error"),
            }
        })
        .await;
}

/// The error policy: a lost race is retried at once, anything else after a pause.
fn retry_after(name: &'static str, err: &Error) -> Action {
    if err.is_status(409) {
        tracing::debug!(controller = name, %err, "conflict; retrying");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(controller = name, %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The namespace and name to queue for an object.
pub fn key_of<K: Resource>(object: &K) -> Option<(Option<&str>, &str)> {
    let meta = object.meta();
    Some((meta.namespace.as_deref(), meta.name.as_deref()?))
}
