//! Label and field selectors, parsed and matched as Kubernetes does
//! (apimachinery's labels and fields packages).

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SelectorError {
    #[error("unable to parse requirement: {0}")]
    Label(String),
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        match &self.op {
            Op::Equals(v) => value == Some(v.as_str()),
            Op::NotEquals(v) => value != Some(v.as_str()),
            Op::In(vs) => value.is_some_and(|v| vs.iter().any(|x| x == v)),
            Op::NotIn(vs) => value.is_none_or(|v| !vs.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }
}

/// A parsed label selector. `nothing` is the nil selector of a
/// metav1.LabelSelector, which matches no object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// `a=b,c!=d,e in (x,y),f notin (z),g,!h`; the empty string matches all.
    pub fn parse(text: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    /// A `metav1.LabelSelector` object: null matches nothing, `{}` everything.
    pub fn from_object(selector: &Value) -> Result<LabelSelector, SelectorError> {
        if selector.is_null() {
            return Ok(LabelSelector { requirements: Vec::new(), nothing: true });
        }
        let mut requirements = Vec::new();
        if let Some(labels) = selector["matchLabels"].as_object() {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement { key: key.clone(), op: Op::Equals(value) });
            }
        }
        for expr in selector["matchExpressions"].as_array().into_iter().flatten() {
            let key = expr["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> =
                expr["values"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
            let op = match expr["operator"].as_str().unwrap_or_default() {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(SelectorError::Label(format!("{other:?} is not a valid label selector operator"))),
            };
            requirements.push(Requirement { key, op });
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    let invalid = |why: &str| SelectorError::Label(format!("{part:?}: {why}"));
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement { key: valid_key(key.trim()).map_err(|e| invalid(&e))?, op: Op::DoesNotExist });
    }
    for (token, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(token) {
            let key = valid_key(key.trim()).map_err(|e| invalid(&e))?;
            let value = valid_value(value.trim()).map_err(|e| invalid(&e))?;
            let op = if negate { Op::NotEquals(value) } else { Op::Equals(value) };
            return Ok(Requirement { key, op });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(Requirement { key: valid_key(key).map_err(|e| invalid(&e))?, op: Op::Exists }),
        [key, rest] => {
            let rest = rest.trim();
            let (negate, list) = if let Some(list) = rest.strip_prefix("notin") {
                (true, list)
            } else if let Some(list) = rest.strip_prefix("in") {
                (false, list)
            } else {
                return Err(invalid("expected one of '=', '!=', 'in', 'notin'"));
            };
            let list = list.trim();
            let inner = list
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(')'))
                .ok_or_else(|| invalid("expected a parenthesized list of values"))?;
            let values = inner
                .split(',')
                .map(|v| valid_value(v.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(&e))?;
            let key = valid_key(key).map_err(|e| invalid(&e))?;
            Ok(Requirement { key, op: if negate { Op::NotIn(values) } else { Op::In(values) } })
        }
        _ => Err(invalid("empty requirement")),
    }
}

/// A label key: an optional DNS prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn valid_key(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(prefix, name)| if prefix.is_empty() { "" } else { name });
    if name.is_empty() || name.len() > 63 || !is_label_name(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(key.to_string())
}

fn valid_value(value: &str) -> Result<String, String> {
    if value.len() > 63 || (!value.is_empty() && !is_label_name(value)) {
        return Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(value.to_string())
}

fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: u8| b.is_ascii_alphanumeric();
    bytes.first().copied().is_some_and(edge)
        && bytes.last().copied().is_some_and(edge)
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A parsed field selector: `a=b`, `a==b`, `a!=b`, comma-separated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, equal, value) = if let Some((f, v)) = split_once_unescaped(&part, "!=") {
                (f, false, v)
            } else if let Some((f, v)) = split_once_unescaped(&part, "==") {
                (f, true, v)
            } else if let Some((f, v)) = split_once_unescaped(&part, "=") {
                (f, true, v)
            } else {
                return Err(SelectorError::Field(text.to_string(), part));
            };
            terms.push((field.trim().to_string(), equal, unescape(&value)));
        }
        Ok(FieldSelector { terms })
    }

    /// Refuses fields the resource cannot be selected by.
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), SelectorError> {
        match self.terms.iter().find(|(field, _, _)| !supported(group, resource, field)) {
            Some((field, _, _)) => Err(SelectorError::UnsupportedField(field.clone())),
            None => Ok(()),
        }
    }

    pub fn matches(&self, group: &str, resource: &str, object: &Value) -> bool {
        self.terms.iter().all(|(field, equal, value)| (field_value(group, resource, object, field) == *value) == *equal)
    }
}

/// The fields each resource can be selected by (its GetAttrs in Kubernetes).
fn supported(group: &str, resource: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    let fields: &[&str] = match (group, resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    };
    fields.contains(&field)
}

/// A field's value as a selector compares it: missing is "", booleans and
/// numbers as text.
fn field_value(group: &str, resource: &str, object: &Value, field: &str) -> String {
    let path = match (group, resource, field) {
        ("", "events", "source") => "source.component",
        ("", "pods", "status.podIPs") => "status.podIP",
        _ => field,
    };
    let value = path.split('.').try_fold(object, |v, part| v.get(part));
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        // Kubernetes reports an unset boolean field as false.
        None if matches!(field, "spec.unschedulable" | "spec.hostNetwork") => "false".to_string(),
        _ => String::new(),
    }
}

fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\\' if !escaped => {
                escaped = true;
                parts.last_mut().map(|p| p.push(c)).unwrap_or_default();
                continue;
            }
            c if c == separator && !escaped => parts.push(String::new()),
            c => parts.last_mut().map(|p| p.push(c)).unwrap_or_default(),
        }
        escaped = false;
    }
    parts
}

fn split_once_unescaped(text: &str, operator: &str) -> Option<(String, String)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if !escaped && text[i..].starts_with(operator) {
            return Some((text[..i].to_string(), text[i + operator.len()..].to_string()));
        }
        escaped = c == '\\' && !escaped;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        out.push(c);
        escaped = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_selectors_parse_every_operator() {
        let s = LabelSelector::parse("app=web,tier!=db,env in (prod, staging),zone notin (a),canary,!legacy")
            .expect("parsed");
        assert!(s.matches(&labels(json!({"app": "web", "env": "prod", "canary": ""}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "dev", "canary": ""}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod", "canary": "", "legacy": "1"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod"}))), "canary must exist");
        assert!(LabelSelector::parse("").expect("empty").matches(&labels(json!({}))));
        assert!(LabelSelector::parse("a==b").expect("double equals").matches(&labels(json!({"a": "b"}))));
        assert!(LabelSelector::parse("x notin (y)").expect("notin").matches(&labels(json!({}))));
    }

    #[test]
    fn bad_label_selectors_are_errors() {
        for bad in ["a in b", "a in (b", "-a=b", "a=b c", "a=-b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selector_objects_distinguish_nil_and_empty() {
        assert!(!LabelSelector::from_object(&Value::Null).expect("nil").matches(&labels(json!({}))));
        assert!(LabelSelector::from_object(&json!({})).expect("empty").matches(&labels(json!({"a": "b"}))));
        let s = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}))
        .expect("object");
        assert!(s.matches(&labels(json!({"app": "web", "tier": "fe"}))));
        assert!(!s.matches(&labels(json!({"app": "web"}))));
        assert!(LabelSelector::from_object(&json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})).is_err());
    }

    #[test]
    fn field_selectors_compare_missing_fields_as_empty() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {}, "status": {"phase": "Running"}});
        let unscheduled = FieldSelector::parse("spec.nodeName=").expect("parsed");
        assert!(unscheduled.matches("", "pods", &pod));
        let running = FieldSelector::parse("status.phase!=Succeeded,status.phase!=Failed").expect("parsed");
        assert!(running.matches("", "pods", &pod));
        assert!(FieldSelector::parse("metadata.name==p").expect("parsed").matches("", "pods", &pod));
        let node = json!({"spec": {}});
        assert!(FieldSelector::parse("spec.unschedulable=false").expect("parsed").matches("", "nodes", &node));
    }

    #[test]
    fn unsupported_fields_are_named() {
        let s = FieldSelector::parse("spec.replicas=3").expect("parsed");
        assert_eq!(
            s.check_supported("apps", "deployments").err().map(|e| e.to_string()),
            Some("field label not supported: spec.replicas".to_string())
        );
        assert!(FieldSelector::parse("involvedObject.uid=x").expect("parsed").check_supported("", "events").is_ok());
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn field_values_may_escape_separators() {
        let s = FieldSelector::parse(r"metadata.name=a\,b").expect("parsed");
        assert!(s.matches("", "configmaps", &json!({"metadata": {"name": "a,b"}})));
    }
}
