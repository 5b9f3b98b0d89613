//! Deletion as Kubernetes does it: immediate when nothing holds the object,
//! otherwise graceful. Finalizers (including the ones a propagation policy
//! adds) and a bound pod's grace period set `deletionTimestamp` and keep the
//! object until the holders let go.

use serde_json::{Value, json};

use super::{MAX_ATTEMPTS, Registry, store_error};
use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::storage::Written;
use crate::{admission, object};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions`, from the body or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body; query parameters fill what it leaves out.
    pub fn from_body(body: &Value) -> ApiResult<DeleteOptions> {
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
        }
        let text = |v: &Value| v.as_str().map(str::to_string);
        let mut propagation = text(&body["propagationPolicy"]);
        if propagation.is_none() && body["orphanDependents"].as_bool() == Some(true) {
            propagation = Some("Orphan".into());
        }
        if let Some(policy) = &propagation
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
        Ok(DeleteOptions {
            grace_period_seconds: body["gracePeriodSeconds"].as_i64(),
            propagation_policy: propagation,
            precondition_uid: text(&body["preconditions"]["uid"]),
            precondition_resource_version: text(&body["preconditions"]["resourceVersion"]),
            dry_run: body["dryRun"].as_array().is_some_and(|d| d.iter().any(|v| v == "All")),
        })
    }
}

/// How a delete ended.
pub enum Deleted {
    /// Gone; the last state.
    Now(Value),
    /// Marked for deletion; holders still have to let go.
    Pending(Value),
}

impl Registry {
    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        admission::admit_delete(resource, name)?;
        let key = resource.key(namespace, name);
        for _ in 0..MAX_ATTEMPTS {
            let (current, revision) = self.get_versioned(resource, namespace, name).await?;
            check_preconditions(resource, name, &current, opts)?;
            let next = mark_for_deletion(resource, &current, opts);
            let written = match &next {
                Some(marked) if marked == &current => return Ok(Deleted::Pending(current)),
                _ if opts.dry_run => {
                    return Ok(match next {
                        Some(marked) => Deleted::Pending(marked),
                        None => Deleted::Now(current),
                    });
                }
                Some(marked) => self.store.put_if(&key, super::encode_for_store(marked)?, revision).await,
                None => self.store.delete_if(&key, revision).await,
            };
            match written.map_err(store_error)? {
                Written::Done(revision) => {
                    return Ok(match next {
                        Some(mut marked) => {
                            object::set_resource_version(&mut marked, revision);
                            Deleted::Pending(marked)
                        }
                        None => {
                            if resource.plural == "services" {
                                self.release_service(&current).await;
                            }
                            Deleted::Now(current)
                        }
                    });
                }
                Written::Stale => continue,
            }
        }
        Err(ApiError::conflict(&resource.qualified(), name))
    }
}

fn check_preconditions(resource: &Resource, name: &str, current: &Value, opts: &DeleteOptions) -> ApiResult<()> {
    let failed = |what: &str, wanted: &str, found: &str| ApiError::Conflict {
        kind: resource.qualified(),
        name: name.to_string(),
        reason: format!("Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {found}"),
    };
    if let Some(uid) = &opts.precondition_uid
        && uid != object::meta_str(current, "uid")
    {
        return Err(failed("UID", uid, object::meta_str(current, "uid")));
    }
    if let Some(rv) = &opts.precondition_resource_version
        && rv != object::meta_str(current, "resourceVersion")
    {
        return Err(failed("ResourceVersion", rv, object::meta_str(current, "resourceVersion")));
    }
    Ok(())
}

/// The object marked for graceful deletion, or None to delete it now.
fn mark_for_deletion(resource: &Resource, current: &Value, opts: &DeleteOptions) -> Option<Value> {
    let mut next = current.clone();
    let mut finalizers = object::finalizers(current);
    match opts.propagation_policy.as_deref() {
        Some("Orphan") if !finalizers.iter().any(|f| f == ORPHAN) => finalizers.push(ORPHAN.into()),
        Some("Foreground") if !finalizers.iter().any(|f| f == FOREGROUND) => finalizers.push(FOREGROUND.into()),
        _ => {}
    }
    let grace = grace_period(resource, current, opts);
    let namespace_held =
        resource.plural == "namespaces" && current["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if finalizers.is_empty() && grace == 0 && !namespace_held {
        return None;
    }
    let meta = object::metadata_mut(&mut next);
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    let already = meta.get("deletionTimestamp").is_some_and(|t| !t.is_null());
    let previous_grace = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
    // A second delete may shorten a grace period, never lengthen it.
    if !already || previous_grace.is_some_and(|g| grace < g) {
        let at = std::time::SystemTime::now() + std::time::Duration::from_secs(grace.max(0) as u64);
        meta.insert("deletionTimestamp".into(), json!(object::timestamp(at)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    if resource.plural == "namespaces" {
        next["status"]["phase"] = json!("Terminating");
    }
    Some(next)
}

/// Only a pod on a node waits: its node agent stops it and then deletes it
/// with grace 0. Pods never scheduled, or already finished, go at once.
fn grace_period(resource: &Resource, current: &Value, opts: &DeleteOptions) -> i64 {
    if resource.plural != "pods" {
        return 0;
    }
    let scheduled = current["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let finished = matches!(current["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if !scheduled || finished {
        return 0;
    }
    opts.grace_period_seconds.or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    fn find(plural: &str) -> &'static Resource {
        resources::find("", "v1", plural).expect("resource")
    }

    #[test]
    fn unheld_objects_go_at_once() {
        let cm = json!({"metadata": {"name": "a"}});
        assert!(mark_for_deletion(find("configmaps"), &cm, &DeleteOptions::default()).is_none());
        let pod = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(mark_for_deletion(find("pods"), &pod, &DeleteOptions::default()).is_none());
    }

    #[test]
    fn finalizers_and_policies_hold_objects() {
        let cm = json!({"metadata": {"name": "a", "finalizers": ["x/y"]}});
        let marked = mark_for_deletion(find("configmaps"), &cm, &DeleteOptions::default()).expect("held");
        assert!(object::is_deleting(&marked));
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        let opts = DeleteOptions { propagation_policy: Some("Foreground".into()), ..Default::default() };
        let plain = json!({"metadata": {"name": "b"}});
        let marked = mark_for_deletion(find("configmaps"), &plain, &opts).expect("held");
        assert_eq!(marked["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    }

    #[test]
    fn bound_pods_get_their_grace_period() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 5}});
        let marked = mark_for_deletion(find("pods"), &pod, &DeleteOptions::default()).expect("graceful");
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 5);
        let now = DeleteOptions { grace_period_seconds: Some(0), ..Default::default() };
        assert!(mark_for_deletion(find("pods"), &pod, &now).is_none());
        let shorter = DeleteOptions { grace_period_seconds: Some(1), ..Default::default() };
        let again = mark_for_deletion(find("pods"), &marked, &shorter).expect("still graceful");
        assert_eq!(again["metadata"]["deletionGracePeriodSeconds"], 1);
    }

    #[test]
    fn namespaces_terminate() {
        let ns = json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let marked = mark_for_deletion(find("namespaces"), &ns, &DeleteOptions::default()).expect("terminating");
        assert_eq!(marked["status"]["phase"], "Terminating");
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(DeleteOptions::from_body(&json!({"propagationPolicy": "Sometimes"})).is_err());
        let opts = DeleteOptions::from_body(&json!({"orphanDependents": true, "dryRun": ["All"]})).expect("ok");
        assert_eq!(opts.propagation_policy.as_deref(), Some("Orphan"));
        assert!(opts.dry_run);
    }
}
