//! One sync of one Deployment (deployment_controller.go `syncDeployment`,
//! sync.go, rolling.go, recreate.go): the I/O around the decisions in the
//! sibling modules. Status changes collect on a working copy and are written
//! once at the end, compared with what is stored.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use capstan_kubeutil::EventType;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::hash::{self, HASH_LABEL};
use super::replicas::{self, spec_replicas};
use super::status::{self, PROGRESSING};
use super::{Context, revision, rolling, scale};
use crate::owner::{self, Claim};
use crate::{Error, Result, pods, selector};

/// Resync even without events, in case one was missed.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon Recreate looks again while old pods are still running.
const RECREATE_POLL: Duration = Duration::from_secs(2);

pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action> {
    let namespace =
        d.metadata.namespace.clone().ok_or(Error::MissingField { kind: "Deployment", field: "namespace" })?;
    let name = d.metadata.name.clone().ok_or(Error::MissingField { kind: "Deployment", field: "name" })?;
    // Conditions carry whole seconds on the wire; compare like with like.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let sync = Sync {
        sets: Api::namespaced(ctx.client.clone(), &namespace),
        deployments: Api::namespaced(ctx.client.clone(), &namespace),
        ctx: &ctx,
        stored: d.status.clone(),
        d: (*d).clone(),
        namespace,
        name,
        now,
    };
    sync.run().await
}

struct Sync<'a> {
    ctx: &'a Context,
    /// The Deployment, its status updated in memory as the sync goes.
    d: Deployment,
    stored: Option<DeploymentStatus>,
    namespace: String,
    name: String,
    now: Timestamp,
    sets: Api<ReplicaSet>,
    deployments: Api<Deployment>,
}

impl Sync<'_> {
    async fn run(mut self) -> Result<Action> {
        let Some(spec) = self.d.spec.clone() else { return Ok(Action::await_change()) };
        if selector::is_empty(&spec.selector) {
            let message = "This deployment is selecting all pods. A non-empty selector is required.";
            self.event(EventType::Warning, "SelectingAll", message).await;
            return Ok(Action::await_change());
        }
        let sets = self.claim_replica_sets().await?;
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.new_and_old(sets, false).await?;
            return self.write_plain_status(new.as_ref(), &old).await;
        }
        if let Some(status) = status::paused_transition(&self.d, self.now) {
            self.d.status = Some(status);
        }
        let (new, old) = self.new_and_old(sets, false).await?;
        let paused = spec.paused.unwrap_or(false);
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        if paused || scale::is_scaling_event(&self.d, &all) {
            return self.sync_scale(new, old, paused).await;
        }
        if rolling::is_rolling(&self.d) {
            self.rollout_rolling(new, old).await
        } else {
            self.rollout_recreate(new, old).await
        }
    }

    /// The ReplicaSets this Deployment controls, after adopting matching
    /// orphans and releasing those that stopped matching.
    async fn claim_replica_sets(&self) -> Result<Vec<ReplicaSet>> {
        let Some(spec) = self.d.spec.as_ref() else { return Ok(Vec::new()) };
        let ns = Some(self.namespace.as_str());
        let candidates = self.ctx.replica_sets.state_filter(|rs| rs.metadata.namespace.as_deref() == ns);
        let mut owned = Vec::new();
        for rs in candidates {
            let rs_name = replicas::name(&rs);
            match owner::claim(&self.d.metadata, &spec.selector, &rs.metadata) {
                Claim::Keep => owned.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Adopt => {
                    let Some(reference) = owner::controller_ref(&self.d) else { continue };
                    let references = owner::with_reference(&rs.metadata, reference);
                    let patch = owner::owner_references_patch(&rs.metadata, &references);
                    owned.push(self.sets.patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch)).await?);
                }
                Claim::Release => {
                    let uid = self.d.metadata.uid.as_deref().unwrap_or_default();
                    let patch =
                        owner::owner_references_patch(&rs.metadata, &owner::without_reference(&rs.metadata, uid));
                    self.sets.patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
            }
        }
        Ok(owned)
    }

    /// The new ReplicaSet (template equal to the Deployment's, hash label
    /// aside) and the old ones; the new one is moved to the next revision,
    /// or created when `create` (`getAllReplicaSetsAndSyncRevision`).
    async fn new_and_old(
        &mut self,
        mut sets: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let template = self.d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        sets.sort_by(replicas::by_creation);
        let position = sets.iter().position(|rs| {
            rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| hash::equal_ignoring_hash(t, &template))
        });
        let new = position.map(|i| sets.remove(i));
        let old = sets;
        let new_revision = replicas::max_revision(&old.iter().collect::<Vec<_>>()) + 1;
        let new = match new {
            Some(rs) => Some(self.sync_existing_new(rs, new_revision).await?),
            None if create => Some(self.create_new(&old, new_revision).await?),
            None => None,
        };
        Ok((new, old))
    }

    async fn sync_existing_new(&mut self, mut rs: ReplicaSet, new_revision: i64) -> Result<ReplicaSet> {
        let annotations = revision::new_rs_annotations(&self.d, &rs, new_revision, true, rolling::max_surge(&self.d));
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let min_ready_differs = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0) != min_ready;
        if annotations.is_some() || min_ready_differs {
            let mut patch = json!({
                "metadata": {"resourceVersion": rs.metadata.resource_version},
                "spec": {"minReadySeconds": min_ready},
            });
            // A null would clear every annotation in a merge patch.
            if let Some(annotations) = annotations {
                patch["metadata"]["annotations"] = json!(annotations);
            }
            rs = self.sets.patch(replicas::name(&rs), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        self.sync_revision_annotation(replicas::revision(&rs)).await?;
        let has_progressing = self.d.status.as_ref().and_then(|s| status::condition(s, PROGRESSING)).is_some();
        if status::has_progress_deadline(&self.d) && !has_progressing {
            let message = format!("Found new replica set \"{}\"", replicas::name(&rs));
            let condition = status::new_condition(PROGRESSING, "True", status::FOUND_NEW_RS, message, self.now);
            status::set_condition(self.d.status.get_or_insert_default(), condition);
        }
        Ok(rs)
    }

    async fn create_new(&mut self, old: &[ReplicaSet], new_revision: i64) -> Result<ReplicaSet> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let pod_hash = hash::template_hash(&spec.template, collision_count);
        let rs_name = format!("{}-{pod_hash}", self.name);
        let mut template = spec.template.clone();
        let labels = template.metadata.get_or_insert_default().labels.get_or_insert_default();
        labels.insert(HASH_LABEL.into(), pod_hash.clone());
        let labels = labels.clone();
        let mut rs_selector = spec.selector.clone();
        rs_selector.match_labels.get_or_insert_default().insert(HASH_LABEL.into(), pod_hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                owner_references: owner::controller_ref(&self.d).map(|r| vec![r]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector: rs_selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain([&rs]).collect();
        let size = rolling::new_rs_replicas(&self.d, &all, &rs);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(size);
        }
        rs.metadata.annotations =
            revision::new_rs_annotations(&self.d, &rs, new_revision, false, rolling::max_surge(&self.d));

        let created = match self.sets.create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(err) => {
                let err = Error::from(err);
                if err.is_status(409) {
                    return self.adopt_existing_or_collide(&rs_name).await;
                }
                if status::has_progress_deadline(&self.d) {
                    let message = format!("Failed to create new replica set \"{rs_name}\": {err}");
                    let condition = status::new_condition(PROGRESSING, "False", "FailedRSCreate", message, self.now);
                    status::set_condition(self.d.status.get_or_insert_default(), condition);
                    self.write_status(self.d.status.clone().unwrap_or_default()).await?;
                }
                self.event(
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Failed to create new replica set \"{rs_name}\": {err}"),
                )
                .await;
                return Err(err);
            }
        };
        if size > 0 {
            self.event(
                EventType::Normal,
                "ScalingReplicaSet",
                &format!("Scaled up replica set {rs_name} from 0 to {size}"),
            )
            .await;
        }
        if status::has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{rs_name}\"");
            let condition = status::new_condition(PROGRESSING, "True", status::NEW_RS_CREATED, message, self.now);
            status::set_condition(self.d.status.get_or_insert_default(), condition);
        }
        self.sync_revision_annotation(new_revision).await?;
        Ok(created)
    }

    /// The name is taken: ours with an equal template is the new set (a
    /// stale cache); anything else is a hash collision, and the next sync
    /// hashes with a higher collision count.
    async fn adopt_existing_or_collide(&mut self, rs_name: &str) -> Result<ReplicaSet> {
        let existing = self.sets.get(rs_name).await?;
        let ours = owner::controller_of(&existing.metadata).map(|r| &r.uid) == self.d.metadata.uid.as_ref();
        let template = self.d.spec.as_ref().map(|s| &s.template);
        let same = existing.spec.as_ref().and_then(|s| s.template.as_ref()).zip(template);
        if ours && same.is_some_and(|(a, b)| hash::equal_ignoring_hash(a, b)) {
            return Ok(existing);
        }
        let count = self.d.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0) + 1;
        let patch = json!({"status": {"collisionCount": count}});
        self.deployments.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Err(Error::HashCollision { name: rs_name.to_string() })
    }

    /// Keeps the Deployment's revision annotation at its new set's revision.
    async fn sync_revision_annotation(&self, revision: i64) -> Result<()> {
        let current = self.d.metadata.annotations.as_ref().and_then(|a| a.get(replicas::REVISION));
        if current.map(String::as_str) == Some(revision.to_string().as_str()) || revision == 0 {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {replicas::REVISION: revision.to_string()}}});
        self.deployments.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Resizes `rs` and refreshes its replica annotations (`scaleReplicaSet`);
    /// whether the size changed.
    async fn scale(&self, rs: &mut ReplicaSet, size: i32, operation: &str) -> Result<bool> {
        let desired = replicas::desired(&self.d);
        let max = desired + rolling::max_surge(&self.d);
        let from = spec_replicas(rs);
        if from == size && !revision::replica_annotations_differ(rs, desired, max) {
            return Ok(false);
        }
        let annotations = BTreeMap::from([
            (replicas::DESIRED_REPLICAS, desired.to_string()),
            (replicas::MAX_REPLICAS, max.to_string()),
        ]);
        let patch = json!({
            "metadata": {"annotations": annotations, "resourceVersion": rs.metadata.resource_version},
            "spec": {"replicas": size},
        });
        *rs = self.sets.patch(replicas::name(rs), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        if from != size {
            let message = format!("Scaled {operation} replica set {} from {from} to {size}", replicas::name(rs));
            self.event(EventType::Normal, "ScalingReplicaSet", &message).await;
        }
        Ok(from != size)
    }

    /// `scaleReplicaSetAndRecordEvent`: only when the size changes.
    async fn resize(&self, rs: &mut ReplicaSet, size: i32) -> Result<bool> {
        let from = spec_replicas(rs);
        if from == size {
            return Ok(false);
        }
        self.scale(rs, size, if size > from { "up" } else { "down" }).await
    }

    async fn rollout_rolling(mut self, new: Option<ReplicaSet>, old: Vec<ReplicaSet>) -> Result<Action> {
        let (new, mut old) = match new {
            Some(new) => (new, old),
            None => {
                let (new, old) = self.new_and_old(old, true).await?;
                (new.ok_or(Error::MissingField { kind: "ReplicaSet", field: "name" })?, old)
            }
        };
        let mut new = new;
        // Grow the new set (`reconcileNewReplicaSet`).
        let desired = replicas::desired(&self.d);
        let target = if spec_replicas(&new) > desired {
            desired
        } else {
            let all: Vec<&ReplicaSet> = old.iter().chain([&new]).collect();
            rolling::new_rs_replicas(&self.d, &all, &new)
        };
        if self.resize(&mut new, target).await? {
            return self.finish_rollout(Some(&new), &old).await;
        }
        // Shrink the old ones (`reconcileOldReplicaSets`).
        let mut active: Vec<&mut ReplicaSet> = old.iter_mut().filter(|rs| replicas::is_active(rs)).collect();
        let plan = {
            let view: Vec<&ReplicaSet> = active.iter().map(|rs| &**rs).collect();
            rolling::old_scale_down(&self.d, &view, &new)
        };
        let mut scaled = false;
        for (i, size) in plan {
            if let Some(rs) = active.get_mut(i) {
                scaled |= self.resize(rs, size).await?;
            }
        }
        if scaled {
            return self.finish_rollout(Some(&new), &old).await;
        }
        if status::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        self.finish_rollout(Some(&new), &old).await
    }

    async fn rollout_recreate(mut self, new: Option<ReplicaSet>, mut old: Vec<ReplicaSet>) -> Result<Action> {
        let mut scaled = false;
        for rs in old.iter_mut().filter(|rs| replicas::is_active(rs)) {
            scaled |= self.resize(rs, 0).await?;
        }
        if scaled || self.old_pods_running(&old) {
            let (status, _) =
                status::rollout(&self.d, &old.iter().chain(new.as_ref()).collect::<Vec<_>>(), new.as_ref(), self.now);
            self.write_status(status).await?;
            return Ok(Action::requeue(RECREATE_POLL));
        }
        let (new, old) = match new {
            Some(new) => (new, old),
            None => {
                let (new, old) = self.new_and_old(old, true).await?;
                (new.ok_or(Error::MissingField { kind: "ReplicaSet", field: "name" })?, old)
            }
        };
        let mut new = new;
        self.resize(&mut new, replicas::desired(&self.d)).await?;
        if status::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        self.finish_rollout(Some(&new), &old).await
    }

    /// Old pods still count until they are gone (`oldPodsRunning`).
    fn old_pods_running(&self, old: &[ReplicaSet]) -> bool {
        if old.iter().map(replicas::status_replicas).sum::<i32>() > 0 {
            return true;
        }
        let uids: HashSet<&str> = old.iter().filter_map(|rs| rs.metadata.uid.as_deref()).collect();
        let ns = Some(self.namespace.as_str());
        !self
            .ctx
            .pods
            .state_filter(|p| {
                p.metadata.namespace.as_deref() == ns
                    && owner::controller_of(&p.metadata).is_some_and(|r| uids.contains(r.uid.as_str()))
                    && !matches!(pods::phase(p), "Succeeded" | "Failed")
            })
            .is_empty()
    }

    /// Scaling without a rollout step: paused, or replicas changed (`sync`).
    async fn sync_scale(self, new: Option<ReplicaSet>, old: Vec<ReplicaSet>, paused: bool) -> Result<Action> {
        let mut sets: Vec<ReplicaSet> = old;
        let new_index = new.map(|rs| {
            sets.push(rs);
            sets.len() - 1
        });
        let plan = scale::plan(&self.d, &sets.iter().collect::<Vec<_>>(), new_index);
        for resize in plan {
            if let Some(rs) = sets.get_mut(resize.index) {
                self.scale(rs, resize.size, resize.operation).await?;
            }
        }
        let new = new_index.and_then(|i| sets.get(i)).cloned();
        if let Some(i) = new_index {
            sets.remove(i);
        }
        if paused {
            self.cleanup(&sets).await?;
        }
        self.write_plain_status(new.as_ref(), &sets).await
    }

    /// Deletes old ReplicaSets beyond the revision history limit.
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<()> {
        for rs in revision::history_to_delete(&self.d, &old.iter().collect::<Vec<_>>()) {
            tracing::info!(replicaset = replicas::name(rs), deployment = self.name, "deleting old replica set");
            match self.sets.delete(replicas::name(rs), &DeleteParams::default()).await.map_err(Error::from) {
                Ok(_) => {}
                Err(err) if err.is_status(404) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Status with the rollout conditions (`syncRolloutStatus`).
    async fn finish_rollout(self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<Action> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let (status, requeue) = status::rollout(&self.d, &all, new, self.now);
        self.write_status(status).await?;
        Ok(Action::requeue(requeue.unwrap_or(RESYNC)))
    }

    /// Status without judging progress (`syncDeploymentStatus`).
    async fn write_plain_status(self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<Action> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        self.write_status(status::calculate(&self.d, &all, new, self.now)).await?;
        Ok(Action::requeue(RESYNC))
    }

    async fn write_status(&self, status: DeploymentStatus) -> Result<()> {
        if status::normalized(Some(&status)) == status::normalized(self.stored.as_ref()) {
            return Ok(());
        }
        let mut body = json!({"status": status});
        if status.conditions.is_none() {
            body["status"]["conditions"] = serde_json::Value::Null;
        }
        self.deployments.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body)).await?;
        Ok(())
    }

    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        let reference = self.d.object_ref(&());
        tracing::debug!(deployment = self.d.name_any(), reason, message, "event");
        self.ctx.recorder.record(&reference, kind, reason, message).await;
    }
}
