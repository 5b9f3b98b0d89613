//! The garbage collector (pkg/controller/garbagecollector): deletes
//! dependents whose owners are gone, cascades foreground deletion, and
//! orphans dependents for the `orphan` finalizer.
//!
//! Every watched object is cached; any change marks the graph dirty and one
//! pass decides over a snapshot of all caches (`graph`). Before anything is
//! deleted for a missing owner, the owner is looked up live, so a lagging
//! cache never deletes a child of an object that exists.

mod graph;
mod kinds;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use self::graph::{Decision, Graph, Node};
use self::kinds::Kind;
use crate::informer::{self, Informer};
use crate::{Error, Result};

/// Changes arriving within this window are handled in one pass.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A pass runs at least this often, for deletions the watches missed.
const RESYNC: Duration = Duration::from_secs(30);

pub struct GarbageCollector {
    client: Client,
    kinds: Vec<Kind>,
    informers: Vec<Informer<DynamicObject>>,
    dirty: Arc<Notify>,
}

impl GarbageCollector {
    pub fn new(client: Client) -> Self {
        let kinds = kinds::watched();
        let dirty = Arc::new(Notify::new());
        let informers = kinds
            .iter()
            .map(|kind| {
                let api = Api::<DynamicObject>::all_with(client.clone(), &kind.resource);
                let mut informer = Informer::with_dyntype(api, kind.resource.clone());
                let dirty = dirty.clone();
                informer.on_change(move |_, _| dirty.notify_one());
                informer
            })
            .collect();
        GarbageCollector { client, kinds, informers, dirty }
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let GarbageCollector { client, kinds, informers, dirty } = self;
        let stores: Vec<Store<DynamicObject>> = informers.iter().map(Informer::store).collect();
        let names: Vec<String> = kinds.iter().map(|k| k.resource.plural.clone()).collect();
        let watches =
            join_all(informers.into_iter().zip(&names).map(|(informer, name)| informer.run(name, shutdown.clone())));
        let collector = Collector { client, kinds, stores };
        let passes = async {
            for (store, kind) in collector.stores.iter().zip(&collector.kinds) {
                informer::wait_ready(store, &kind.resource.plural).await?;
            }
            tracing::info!("garbage collector started");
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok::<(), Error>(()),
                    _ = dirty.notified() => {}
                    _ = tokio::time::sleep(RESYNC) => {}
                }
                tokio::time::sleep(DEBOUNCE).await;
                collector.pass().await;
            }
        };
        let (_, result) = tokio::join!(watches, passes);
        result
    }
}

struct Collector {
    client: Client,
    kinds: Vec<Kind>,
    stores: Vec<Store<DynamicObject>>,
}

impl Collector {
    /// One look at everything: decide, then write.
    async fn pass(&self) {
        let nodes: Vec<Node> = self
            .stores
            .iter()
            .enumerate()
            .flat_map(|(kind, store)| store.state().into_iter().filter_map(move |o| Node::from_meta(kind, &o.metadata)))
            .collect();
        let graph = Graph::new(&nodes);
        let mut gone = HashSet::new();
        for (dependent, owner) in graph.missing_owners() {
            if self.owner_is_gone(&nodes[dependent], owner).await {
                gone.insert(owner.uid.clone());
            }
        }
        for decision in graph.decide(&gone) {
            if let Err(err) = self.apply(&nodes, &decision).await {
                // Lost races and vanished objects are settled by the next pass.
                tracing::debug!(?decision, %err, "garbage collection step failed");
            }
        }
    }

    /// Asks the apiserver whether the owner exists (with that uid); a kind
    /// not watched is never judged gone.
    async fn owner_is_gone(
        &self,
        dependent: &Node,
        owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> bool {
        let Some((_, kind)) = kinds::find(&self.kinds, &owner.api_version, &owner.kind) else { return false };
        let api = self.api(kind, dependent.namespace.as_deref());
        match api.get(&owner.name).await.map_err(Error::from) {
            Ok(found) => found.metadata.uid.as_deref() != Some(owner.uid.as_str()),
            Err(err) => err.is_status(404),
        }
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            None => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    async fn apply(&self, nodes: &[Node], decision: &Decision) -> Result<()> {
        let (Decision::Delete { node, .. }
        | Decision::RemoveOwners { node, .. }
        | Decision::RemoveFinalizer { node, .. }) = decision;
        let target = &nodes[*node];
        let Some(kind) = self.kinds.get(target.kind) else { return Ok(()) };
        let api = self.api(kind, target.namespace.as_deref());
        match decision {
            Decision::Delete { propagation, .. } => {
                tracing::info!(kind = kind.resource.kind, name = target.name, propagation, "deleting dependent");
                let params = DeleteParams {
                    propagation_policy: Some(match *propagation {
                        "Foreground" => kube::api::PropagationPolicy::Foreground,
                        _ => kube::api::PropagationPolicy::Background,
                    }),
                    preconditions: Some(Preconditions { uid: Some(target.uid.clone()), resource_version: None }),
                    ..DeleteParams::default()
                };
                match api.delete(&target.name, &params).await.map_err(Error::from) {
                    Err(err) if !err.is_status(404) => return Err(err),
                    _ => {}
                }
            }
            Decision::RemoveOwners { owners, .. } => {
                tracing::info!(kind = kind.resource.kind, name = target.name, ?owners, "removing owner references");
                let remaining: Vec<_> = target.owners.iter().filter(|o| !owners.contains(&o.uid)).collect();
                let patch =
                    json!({"metadata": {"ownerReferences": remaining, "resourceVersion": target.resource_version}});
                api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            Decision::RemoveFinalizer { finalizer, .. } => {
                tracing::info!(kind = kind.resource.kind, name = target.name, finalizer, "removing finalizer");
                let remaining: Vec<&String> = target.finalizers.iter().filter(|f| f != finalizer).collect();
                let patch = json!({"metadata": {"finalizers": remaining, "resourceVersion": target.resource_version}});
                api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
        }
        Ok(())
    }
}
