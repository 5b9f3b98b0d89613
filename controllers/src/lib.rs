//! The controller-manager's controllers, built on kube-runtime and
//! following Kubernetes' pkg/controller:
//!
//! - `replicaset`: pods from a template, adoption, expectations, status;
//! - `deployment`: ReplicaSets per template revision, rolling and recreate
//!   rollouts, history cleanup, status and conditions;
//! - `gc`: cascading deletion by ownerReferences (background, foreground, orphan);
//! - `namespace`: a deleted namespace's content goes, then the namespace.
//!
//! Shared pieces: `informer` (one watch and cache per kind, with handlers),
//! `runtime` (work queue and applier), `owner` (controller refs and claims),
//! `selector`, `pods`.

mod deployment;
mod error;
mod gc;
mod informer;
mod namespace;
mod owner;
mod pods;
mod replicaset;
mod runtime;
mod selector;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;

pub use error::{Error, Result};
/// Re-exported so callers need no tokio-util dependency of their own.
pub use tokio_util::sync::CancellationToken;

/// Runs every controller until `shutdown` is cancelled, then returns.
/// The caller holds the leader lease for as long as this runs.
pub async fn run(client: Client, shutdown: CancellationToken) -> Result<()> {
    let mut pods = Informer::new(Api::<Pod>::all(client.clone()));
    let mut replica_sets = Informer::new(Api::<ReplicaSet>::all(client.clone()));
    let mut deployments = Informer::new(Api::<Deployment>::all(client.clone()));
    let replica_set_controller = ReplicaSetController::new(client.clone(), &mut replica_sets, &mut pods);
    let deployment_controller =
        DeploymentController::new(client.clone(), &mut deployments, &mut replica_sets, &mut pods);
    let garbage_collector = GarbageCollector::new(client.clone());

    let informers = async {
        tokio::join!(
            pods.run("pods", shutdown.clone()),
            replica_sets.run("replicasets", shutdown.clone()),
            deployments.run("deployments", shutdown.clone()),
        );
    };
    let controllers = async {
        let stop_all = shutdown.clone();
        let result = tokio::try_join!(
            replica_set_controller.run(shutdown.clone()),
            deployment_controller.run(shutdown.clone()),
            garbage_collector.run(shutdown.clone()),
            async {
                namespace::run(client.clone(), shutdown.clone()).await;
                Ok(())
            },
        );
        // A controller that failed takes the others down with it.
        stop_all.cancel();
        result.map(|_| ())
    };
    let ((), result) = tokio::join!(informers, controllers);
    result
}

use deployment::DeploymentController;
use gc::GarbageCollector;
use informer::Informer;
use replicaset::ReplicaSetController;
