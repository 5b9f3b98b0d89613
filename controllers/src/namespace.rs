//! The namespace controller: a namespace being deleted (phase Terminating,
//! the `kubernetes` finalizer in spec.finalizers) loses everything in it,
//! then the finalizer, and then the apiserver removes it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// The finalizer the apiserver puts on every namespace; ours to remove.
const FINALIZER: &str = "kubernetes";
/// How soon to look again while content is still going (graceful pod
/// deletion, finalizers of other controllers).
const RECHECK: Duration = Duration::from_secs(2);

pub async fn run(client: Client, shutdown: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, retry_later, Arc::new(client))
        .for_each(|_| async {})
        .await;
}

/// True for a namespace whose content this controller must remove.
fn is_terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        && namespace.spec.as_ref().and_then(|s| s.finalizers.as_ref()).is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

async fn reconcile(namespace: Arc<Namespace>, client: Arc<Client>) -> Result<Action, Error> {
    if !is_terminating(&namespace) {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    if remove_content(&client, &name).await? > 0 {
        return Ok(Action::requeue(RECHECK));
    }
    let mut finalized = (*namespace).clone();
    if let Some(finalizers) = finalized.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
        finalizers.retain(|f| f != FINALIZER);
    }
    let api: Api<Namespace> = Api::all((*client).clone());
    api.replace_subresource("finalize", &name, &PostParams::default(), &finalized).await?;
    tracing::info!(namespace = %name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

/// Deletes every namespaced object in `namespace` (each resource the API
/// lists that can be deleted as a collection); returns how many kinds still
/// have objects left.
async fn remove_content(client: &Client, namespace: &str) -> Result<usize, Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut remaining = 0;
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            let deletable = capabilities.supports_operation(verbs::LIST)
                && capabilities.supports_operation(verbs::DELETE_COLLECTION);
            if capabilities.scope != Scope::Namespaced || !deletable {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
            api.delete_collection(&DeleteParams::background(), &ListParams::default()).await?;
            if !api.list_metadata(&ListParams::default().limit(1)).await?.items.is_empty() {
                remaining += 1;
            }
        }
    }
    Ok(remaining)
}

fn retry_later(_: Arc<Namespace>, error: &Error, _: Arc<Client>) -> Action {
    tracing::warn!(%error, "namespace controller");
    Action::requeue(RECHECK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn namespace(deleting: bool, finalizers: &[&str]) -> Namespace {
        let mut ns = Namespace::default();
        ns.metadata.deletion_timestamp = deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        ns.spec = Some(NamespaceSpec { finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()) });
        ns
    }

    #[test]
    fn only_deleted_namespaces_holding_our_finalizer_are_emptied() {
        assert!(is_terminating(&namespace(true, &["kubernetes"])));
        assert!(!is_terminating(&namespace(false, &["kubernetes"])));
        assert!(!is_terminating(&namespace(true, &[])));
        assert!(!is_terminating(&namespace(true, &["example.com/other"])));
    }
}
