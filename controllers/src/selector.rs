//! Label selectors (metav1.LabelSelector) evaluated against labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `selector`. An empty selector matches
/// everything, as `metav1.LabelSelectorAsSelector` makes it.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector.match_expressions.iter().flatten().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let value = labels.get(&req.key);
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // Validation refuses other operators; never match on one.
                _ => false,
            }
        })
}

/// A selector that matches nothing: Kubernetes refuses to act on it.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions_must_all_hold() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                requirement("tier", "In", &["a", "b"]),
                requirement("canary", "DoesNotExist", &[]),
                requirement("zone", "NotIn", &["x"]),
            ]),
        };
        assert!(matches(&selector, Some(&labels(&[("app", "web"), ("tier", "a")]))));
        assert!(!matches(&selector, Some(&labels(&[("app", "web"), ("tier", "c")]))));
        assert!(!matches(&selector, Some(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")]))));
        assert!(!matches(&selector, Some(&labels(&[("app", "web"), ("tier", "a"), ("zone", "x")]))));
        assert!(!matches(&selector, Some(&labels(&[("app", "db"), ("tier", "a")]))));
        assert!(!matches(&selector, None));
    }

    #[test]
    fn an_empty_selector_matches_everything() {
        let selector = LabelSelector::default();
        assert!(is_empty(&selector));
        assert!(matches(&selector, None));
    }
}
