//! NodeAffinity: `spec.nodeSelector` and the required node affinity
//! (`requiredDuringSchedulingIgnoredDuringExecution`) must both match.
//! Terms are ORed; inside a term every expression and field must match, and
//! a term with neither matches nothing. An invalid requirement fails its term.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod};

use super::Rejection;
use crate::node_info::NodeInfo;

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    if matches(pod, &node.node) { Ok(()) } else { Err(vec![REASON.into()]) }
}

fn matches(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = &pod.spec else { return true };
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    let affinity_ok = match required {
        Some(selector) => selector.node_selector_terms.iter().any(|term| term_matches(term, node, labels)),
        None => true,
    };
    selector_ok && affinity_ok
}

fn term_matches(term: &NodeSelectorTerm, node: &Node, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node.metadata.name.as_deref().unwrap_or_default();
    expressions.iter().all(|r| label_requirement_matches(r, labels))
        && fields.iter().all(|r| field_requirement_matches(r, name))
}

fn label_requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let label = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => !values.is_empty() && label.is_some_and(|l| values.contains(l)),
        "NotIn" => !values.is_empty() && label.is_none_or(|l| !values.contains(l)),
        "Exists" => values.is_empty() && label.is_some(),
        "DoesNotExist" => values.is_empty() && label.is_none(),
        "Gt" | "Lt" => {
            let [bound] = values else { return false };
            let (Ok(bound), Some(Ok(actual))) = (bound.parse::<i64>(), label.map(|l| l.parse::<i64>())) else {
                return false;
            };
            if req.operator == "Gt" { actual > bound } else { actual < bound }
        }
        _ => false,
    }
}

/// Only `metadata.name` with In or NotIn and exactly one value is valid.
fn field_requirement_matches(req: &NodeSelectorRequirement, node_name: &str) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    match (req.key.as_str(), req.operator.as_str(), values) {
        ("metadata.name", "In", [value]) => node_name == value,
        ("metadata.name", "NotIn", [value]) => node_name != value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::tests::node;
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, PodSpec};
    use std::sync::Arc;

    fn labelled(name: &str, labels: &[(&str, &str)]) -> NodeInfo {
        let mut n = node(name, "1", "1Gi", "10");
        n.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        NodeInfo::new(Arc::new(n))
    }

    fn req(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(expressions: Vec<NodeSelectorRequirement>, fields: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm { match_expressions: Some(expressions), match_fields: Some(fields) }
    }

    fn pod(selector: &[(&str, &str)], terms: Option<Vec<NodeSelectorTerm>>) -> Pod {
        let affinity = terms.map(|node_selector_terms| Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms }),
                ..Default::default()
            }),
            ..Default::default()
        });
        Pod {
            spec: Some(PodSpec {
                node_selector: Some(selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                affinity,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn fits(pod: &Pod, node: &NodeInfo) -> bool {
        match filter(pod, node) {
            Ok(()) => true,
            Err(reasons) => {
                assert_eq!(reasons, vec![REASON.to_string()]);
                false
            }
        }
    }

    #[test]
    fn node_selector_needs_every_label() {
        let node = labelled("n1", &[("disk", "ssd"), ("zone", "a")]);
        assert!(fits(&pod(&[], None), &node));
        assert!(fits(&pod(&[("disk", "ssd")], None), &node));
        assert!(fits(&pod(&[("disk", "ssd"), ("zone", "a")], None), &node));
        assert!(!fits(&pod(&[("disk", "hdd")], None), &node));
        assert!(!fits(&pod(&[("disk", "ssd"), ("gpu", "yes")], None), &node));
    }

    #[test]
    fn expression_operators() {
        let node = labelled("n1", &[("zone", "a"), ("cores", "8")]);
        let one = |r| pod(&[], Some(vec![term(vec![r], vec![])]));
        assert!(fits(&one(req("zone", "In", &["a", "b"])), &node));
        assert!(!fits(&one(req("zone", "In", &["b"])), &node));
        assert!(!fits(&one(req("missing", "In", &["a"])), &node));
        assert!(fits(&one(req("zone", "NotIn", &["b"])), &node));
        assert!(fits(&one(req("missing", "NotIn", &["b"])), &node), "NotIn matches an absent label");
        assert!(!fits(&one(req("zone", "NotIn", &["a"])), &node));
        assert!(fits(&one(req("zone", "Exists", &[])), &node));
        assert!(!fits(&one(req("missing", "Exists", &[])), &node));
        assert!(fits(&one(req("missing", "DoesNotExist", &[])), &node));
        assert!(!fits(&one(req("zone", "DoesNotExist", &[])), &node));
        assert!(fits(&one(req("cores", "Gt", &["4"])), &node));
        assert!(!fits(&one(req("cores", "Gt", &["8"])), &node));
        assert!(fits(&one(req("cores", "Lt", &["16"])), &node));
        assert!(!fits(&one(req("zone", "Lt", &["16"])), &node), "a label that is no integer never matches");
        assert!(!fits(&one(req("cores", "Gt", &["4", "5"])), &node), "Gt takes one value");
        assert!(!fits(&one(req("zone", "In", &[])), &node), "In without values is invalid");
        assert!(!fits(&one(req("zone", "Exists", &["a"])), &node), "Exists with values is invalid");
        assert!(!fits(&one(req("zone", "Like", &["a"])), &node));
    }

    #[test]
    fn terms_are_ored_and_requirements_anded() {
        let node = labelled("n1", &[("zone", "a"), ("disk", "ssd")]);
        let both = term(vec![req("zone", "In", &["a"]), req("disk", "In", &["ssd"])], vec![]);
        let one_wrong = term(vec![req("zone", "In", &["a"]), req("disk", "In", &["hdd"])], vec![]);
        assert!(fits(&pod(&[], Some(vec![both.clone()])), &node));
        assert!(!fits(&pod(&[], Some(vec![one_wrong.clone()])), &node));
        assert!(fits(&pod(&[], Some(vec![one_wrong, both])), &node));
        assert!(!fits(&pod(&[], Some(vec![term(vec![], vec![])])), &node), "an empty term matches nothing");
        assert!(!fits(&pod(&[], Some(vec![])), &node), "no terms match nothing");
    }

    #[test]
    fn selector_and_affinity_must_both_match() {
        let node = labelled("n1", &[("zone", "a")]);
        let affinity = Some(vec![term(vec![req("zone", "In", &["a"])], vec![])]);
        assert!(fits(&pod(&[("zone", "a")], affinity.clone()), &node));
        assert!(!fits(&pod(&[("zone", "b")], affinity), &node));
    }

    #[test]
    fn match_fields_select_by_node_name() {
        let n1 = labelled("n1", &[]);
        let by_name = |op, values: &[&str]| pod(&[], Some(vec![term(vec![], vec![req("metadata.name", op, values)])]));
        assert!(fits(&by_name("In", &["n1"]), &n1));
        assert!(!fits(&by_name("In", &["n2"]), &n1));
        assert!(fits(&by_name("NotIn", &["n2"]), &n1));
        assert!(!fits(&by_name("NotIn", &["n1"]), &n1));
        assert!(!fits(&by_name("In", &["n1", "n2"]), &n1), "one value only");
        let other_field = pod(&[], Some(vec![term(vec![], vec![req("metadata.uid", "In", &["n1"])])]));
        assert!(!fits(&other_field, &n1));
    }
}
