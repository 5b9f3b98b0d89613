//! The pod-template-hash: names a Deployment's ReplicaSet after its template
//! (`controller.ComputeHash`), and template equality that ignores it.

use k8s_openapi::api::core::v1::PodTemplateSpec;

pub const HASH_LABEL: &str = "pod-template-hash";

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels (no words), no
/// characters that look alike.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable hash of `template` and the collision count, as a label value.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash = Fnv32a::default();
    // k8s-openapi serializes fields in a fixed order and maps sorted, so the
    // JSON of equal templates is byte-for-byte equal.
    hash.write(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(count) = collision_count {
        hash.write(&(count as u32).to_le_bytes());
    }
    safe_encode(&hash.0.to_string())
}

/// `rand.SafeEncodeString`: each byte mapped into the alphabet.
fn safe_encode(text: &str) -> String {
    text.bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

/// 32-bit FNV-1a, the hash Kubernetes uses here.
struct Fnv32a(u32);

impl Default for Fnv32a {
    fn default() -> Self {
        Fnv32a(0x811c_9dc5)
    }
}

impl Fnv32a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// Whether two templates are equal once the hash label is dropped from both
/// (`EqualIgnoreHash`); an emptied label map equals an absent one.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// `template` without the hash label.
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(HASH_LABEL);
        }
        if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
            meta.labels = None;
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    pub fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Container::default() }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        let mut h = Fnv32a::default();
        h.write(b"");
        assert_eq!(h.0, 0x811c_9dc5);
        let mut h = Fnv32a::default();
        h.write(b"a");
        assert_eq!(h.0, 0xe40c_292c);
        let mut h = Fnv32a::default();
        h.write(b"foobar");
        assert_eq!(h.0, 0xbf9c_f968);
    }

    #[test]
    fn the_hash_is_stable_safe_and_changes_with_template_and_collisions() {
        let a = template_hash(&template("nginx:1"), None);
        assert_eq!(a, template_hash(&template("nginx:1"), None));
        assert!(a.bytes().all(|b| ALPHANUMS.contains(&b)), "{a}");
        assert!(!a.is_empty() && a.len() <= 10);
        assert_ne!(a, template_hash(&template("nginx:2"), None));
        assert_ne!(a, template_hash(&template("nginx:1"), Some(1)));
        assert_ne!(template_hash(&template("nginx:1"), Some(1)), template_hash(&template("nginx:1"), Some(2)));
    }

    #[test]
    fn safe_encoding_maps_each_digit() {
        // '0' is byte 48; 48 % 27 = 21 -> '4'.
        assert_eq!(safe_encode("0"), "4");
        assert_eq!(safe_encode("10").len(), 2);
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let plain = template("nginx:1");
        let mut hashed = plain.clone();
        if let Some(labels) = hashed.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(HASH_LABEL.into(), "abc".into());
        }
        assert!(equal_ignoring_hash(&plain, &hashed));
        assert!(!equal_ignoring_hash(&template("nginx:2"), &hashed));

        let mut only_hash = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([(HASH_LABEL.into(), "x".into())])),
                ..ObjectMeta::default()
            }),
            spec: None,
        };
        let no_labels = PodTemplateSpec { metadata: Some(ObjectMeta::default()), spec: None };
        assert!(equal_ignoring_hash(&only_hash, &no_labels));
        only_hash.metadata = None;
        assert!(!equal_ignoring_hash(&only_hash, &no_labels));
    }
}
