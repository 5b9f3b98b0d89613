//! Controller references and the claim rules of client-go's
//! `ControllerRefManager`: which children a controller adopts, keeps or
//! releases.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

use crate::selector;

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// The reference a controller puts on what it creates or adopts.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// What a controller does about one candidate child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching: count it.
    Keep,
    /// An orphan that matches: add our controller reference, then count it.
    Adopt,
    /// Ours but no longer matching: remove our reference.
    Release,
    /// Someone else's, or not ours to touch now.
    Ignore,
}

/// The claim decision for `child` by the controller `owner` (uid, whether
/// it is being deleted, its selector).
pub fn claim(owner: &ObjectMeta, selector: &LabelSelector, child: &ObjectMeta) -> Claim {
    let owner_deleting = owner.deletion_timestamp.is_some();
    let matching = selector::matches(selector, child.labels.as_ref());
    match controller_of(child) {
        Some(reference) if Some(&reference.uid) != owner.uid.as_ref() => Claim::Ignore,
        Some(_) if matching => Claim::Keep,
        // A controller being deleted lets go of nothing.
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matching || child.deletion_timestamp.is_some() => Claim::Ignore,
        None if owner.namespace != child.namespace => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// A merge patch that sets `child`'s owner references to `references`,
/// guarded by its resourceVersion so a concurrent change is not lost.
pub fn owner_references_patch(child: &ObjectMeta, references: &[OwnerReference]) -> Value {
    json!({"metadata": {"ownerReferences": references, "resourceVersion": child.resource_version}})
}

/// `child`'s references plus `reference` (adoption).
pub fn with_reference(child: &ObjectMeta, reference: OwnerReference) -> Vec<OwnerReference> {
    let mut references: Vec<OwnerReference> =
        child.owner_references.iter().flatten().filter(|r| r.uid != reference.uid).cloned().collect();
    references.push(reference);
    references
}

/// `child`'s references without the one to `owner_uid` (release, orphaning).
pub fn without_reference(child: &ObjectMeta, owner_uid: &str) -> Vec<OwnerReference> {
    child.owner_references.iter().flatten().filter(|r| r.uid != owner_uid).cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn meta(uid: &str, labels: &[(&str, &str)], controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            namespace: Some("default".into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: controller.map(|uid| {
                vec![OwnerReference { uid: uid.into(), controller: Some(true), ..OwnerReference::default() }]
            }),
            ..ObjectMeta::default()
        }
    }

    fn web() -> LabelSelector {
        LabelSelector { match_labels: Some(BTreeMap::from([("app".into(), "web".into())])), ..Default::default() }
    }

    #[test]
    fn claims_follow_the_controller_ref_manager() {
        let owner = meta("rs", &[], None);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "web")], Some("rs"))), Claim::Keep);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "db")], Some("rs"))), Claim::Release);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "web")], None)), Claim::Adopt);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "db")], None)), Claim::Ignore);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "web")], Some("other"))), Claim::Ignore);
    }

    #[test]
    fn deletion_stops_adoption_and_release() {
        let mut owner = meta("rs", &[], None);
        owner.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "web")], None)), Claim::Ignore);
        assert_eq!(claim(&owner, &web(), &meta("p", &[("app", "db")], Some("rs"))), Claim::Ignore);
        let owner = meta("rs", &[], None);
        let mut dying = meta("p", &[("app", "web")], None);
        dying.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(claim(&owner, &web(), &dying), Claim::Ignore);
    }

    #[test]
    fn reference_lists_add_and_remove_by_uid() {
        let child = meta("p", &[], Some("old"));
        let added = with_reference(&child, OwnerReference { uid: "new".into(), ..Default::default() });
        assert_eq!(added.iter().map(|r| r.uid.as_str()).collect::<Vec<_>>(), ["old", "new"]);
        assert!(without_reference(&child, "old").is_empty());
    }
}
