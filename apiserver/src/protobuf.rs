//! Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`),
//! decoded to JSON for the kinds kubectl's typed clients send: `auth can-i`
//! (SelfSubjectAccessReview) and the `kubectl create` generators (namespace,
//! configmap, secret, serviceaccount, deployment, service, job, cronjob, role,
//! clusterrole, rolebinding, clusterrolebinding). Other kinds get 415, and so
//! does a body that sets a field this decoder does not read: it would be lost.
//!
//! The envelope is `k8s\0` + runtime.Unknown {1: typeMeta {1: apiVersion,
//! 2: kind}, 2: raw}; `raw` is the object's message. The field numbers below
//! are the wire contract of k8s.io/api's generated.proto.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// How one field's bytes become JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    /// An int Go always writes, where 0 means unset (a Service's nodePort).
    IntOrZero,
    Bool,
    /// meta/v1 Time {1: seconds, 2: nanos}, as RFC 3339.
    Time,
    /// map<string, string>, entries {1: key, 2: value}.
    StrMap,
    /// map<string, bytes>.
    BytesMap,
    /// map<string, Quantity{1: string}>.
    QuantityMap,
    /// IntOrString {1: type, 2: intVal, 3: strVal}.
    IntOrString,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    number: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(number: u64, name: &'static str, ty: Ty) -> Field {
    Field { number, name, ty, repeated: false }
}

const fn list(number: u64, name: &'static str, ty: Ty) -> Field {
    Field { number, name, ty, repeated: true }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];
const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(11, "labels", Ty::StrMap),
    f(12, "annotations", Ty::StrMap),
    list(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Ty::Str),
];
const LABEL_SELECTOR_REQUIREMENT: &[Field] =
    &[f(1, "key", Ty::Str), f(2, "operator", Ty::Str), list(3, "values", Ty::Str)];
const LABEL_SELECTOR: &[Field] =
    &[f(1, "matchLabels", Ty::StrMap), list(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT))];
const CONTAINER_PORT: &[Field] =
    &[f(1, "name", Ty::Str), f(3, "containerPort", Ty::Int), f(4, "protocol", Ty::Str), f(5, "hostIP", Ty::Str)];
const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];
const RESOURCES: &[Field] = &[f(1, "limits", Ty::QuantityMap), f(2, "requests", Ty::QuantityMap)];
const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    list(3, "command", Ty::Str),
    list(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    list(6, "ports", Ty::Msg(CONTAINER_PORT)),
    list(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCES)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];
const POD_SPEC: &[Field] = &[
    list(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    f(4, "terminationGracePeriodSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::StrMap),
    f(8, "serviceAccountName", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(19, "schedulerName", Ty::Str),
    list(20, "initContainers", Ty::Msg(CONTAINER)),
    f(30, "enableServiceLinks", Ty::Bool),
];
const POD_TEMPLATE_SPEC: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(POD_SPEC))];
const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::IntOrZero),
    f(6, "appProtocol", Ty::Str),
];
const SERVICE_SPEC: &[Field] = &[
    list(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::StrMap),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    list(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    list(18, "clusterIPs", Ty::Str),
    f(22, "internalTrafficPolicy", Ty::Str),
];
const JOB_SPEC: &[Field] = &[
    f(1, "parallelism", Ty::Int),
    f(2, "completions", Ty::Int),
    f(3, "activeDeadlineSeconds", Ty::Int),
    f(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    f(7, "backoffLimit", Ty::Int),
    f(8, "ttlSecondsAfterFinished", Ty::Int),
    f(9, "completionMode", Ty::Str),
    f(10, "suspend", Ty::Bool),
    f(14, "podReplacementPolicy", Ty::Str),
];
const JOB_TEMPLATE_SPEC: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(JOB_SPEC))];
const CRON_JOB_SPEC: &[Field] = &[
    f(1, "schedule", Ty::Str),
    f(2, "startingDeadlineSeconds", Ty::Int),
    f(3, "concurrencyPolicy", Ty::Str),
    f(4, "suspend", Ty::Bool),
    f(5, "jobTemplate", Ty::Msg(JOB_TEMPLATE_SPEC)),
    f(6, "successfulJobsHistoryLimit", Ty::Int),
    f(7, "failedJobsHistoryLimit", Ty::Int),
    f(8, "timeZone", Ty::Str),
];
const ROLLING_UPDATE: &[Field] = &[f(1, "maxUnavailable", Ty::IntOrString), f(2, "maxSurge", Ty::IntOrString)];
const DEPLOYMENT_STRATEGY: &[Field] = &[f(1, "type", Ty::Str), f(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE))];
const DEPLOYMENT_SPEC: &[Field] = &[
    f(1, "replicas", Ty::Int),
    f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    f(4, "strategy", Ty::Msg(DEPLOYMENT_STRATEGY)),
    f(5, "minReadySeconds", Ty::Int),
    f(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    f(9, "progressDeadlineSeconds", Ty::Int),
];
const POLICY_RULE: &[Field] = &[
    list(1, "verbs", Ty::Str),
    list(2, "apiGroups", Ty::Str),
    list(3, "resources", Ty::Str),
    list(4, "resourceNames", Ty::Str),
    list(5, "nonResourceURLs", Ty::Str),
];
const SUBJECT: &[Field] =
    &[f(1, "kind", Ty::Str), f(2, "apiGroup", Ty::Str), f(3, "name", Ty::Str), f(4, "namespace", Ty::Str)];
const ROLE_REF: &[Field] = &[f(1, "apiGroup", Ty::Str), f(2, "kind", Ty::Str), f(3, "name", Ty::Str)];
const LOCAL_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];

const META: Field = f(1, "metadata", Ty::Msg(OBJECT_META));
const NAMESPACE_SPEC: &[Field] = &[list(1, "finalizers", Ty::Str)];
const NAMESPACE: &[Field] = &[META, f(2, "spec", Ty::Msg(NAMESPACE_SPEC))];
const CONFIG_MAP: &[Field] =
    &[META, f(2, "data", Ty::StrMap), f(3, "binaryData", Ty::BytesMap), f(4, "immutable", Ty::Bool)];
const SECRET: &[Field] = &[
    META,
    f(2, "data", Ty::BytesMap),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::StrMap),
    f(5, "immutable", Ty::Bool),
];
const SERVICE_ACCOUNT: &[Field] =
    &[META, f(3, "automountServiceAccountToken", Ty::Bool), list(4, "imagePullSecrets", Ty::Msg(LOCAL_REFERENCE))];
const DEPLOYMENT: &[Field] = &[META, f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC))];
const SERVICE: &[Field] = &[META, f(2, "spec", Ty::Msg(SERVICE_SPEC))];
const JOB: &[Field] = &[META, f(2, "spec", Ty::Msg(JOB_SPEC))];
const CRON_JOB: &[Field] = &[META, f(2, "spec", Ty::Msg(CRON_JOB_SPEC))];
const ROLE: &[Field] = &[META, list(2, "rules", Ty::Msg(POLICY_RULE))];
const BINDING: &[Field] = &[META, list(2, "subjects", Ty::Msg(SUBJECT)), f(3, "roleRef", Ty::Msg(ROLE_REF))];
const ACCESS_REVIEW: &[Field] = &[META, f(2, "spec", Ty::Msg(ACCESS_REVIEW_SPEC))];
const RULES_REVIEW_SPEC: &[Field] = &[f(1, "namespace", Ty::Str)];
const RULES_REVIEW: &[Field] = &[META, f(2, "spec", Ty::Msg(RULES_REVIEW_SPEC))];

/// The top-level message of each kind.
fn kind_schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        ("batch/v1", "CronJob") => CRON_JOB,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => RULES_REVIEW,
        _ => return None,
    })
}

/// Decodes a protobuf body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let bad = |what: &str| ApiError::bad_request(format!("the protobuf body cannot be decoded: {what}"));
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| bad("it does not start with the k8s magic bytes"))?;
    let unknown = fields(envelope).map_err(&bad)?;
    let type_meta = unknown.iter().find(|(n, _)| *n == 1).and_then(|(_, v)| v.bytes());
    let raw = unknown.iter().find(|(n, _)| *n == 2).and_then(|(_, v)| v.bytes()).unwrap_or_default();
    let type_fields = fields(type_meta.unwrap_or_default()).map_err(&bad)?;
    let text = |n: u64| {
        type_fields
            .iter()
            .find(|(f, _)| *f == n)
            .and_then(|(_, v)| v.bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let (api_version, kind) = (text(1).unwrap_or_default(), text(2).unwrap_or_default());
    let schema = kind_schema(&api_version, &kind).ok_or_else(|| ApiError::UnsupportedMediaType {
        accepted: format!(
            "application/json, application/yaml (protobuf is read only for the kinds kubectl's generators send, not {kind})"
        ),
    })?;
    let mut object = message(raw, schema).map_err(|e| match e {
        Unreadable::Malformed(what) => bad(what),
        Unreadable::Unread(number, path) => ApiError::UnsupportedMediaType {
            accepted: format!(
                "application/json, application/yaml (this {kind} sets protobuf field {number} of {}, which this server does not read from protobuf)",
                if path.is_empty() { kind.clone() } else { path.join(".") }
            ),
        },
    })?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

/// One field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Wire<'a> {
    fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

fn varint(data: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*at).ok_or("a truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint longer than 10 bytes")
}

/// The (field number, value) pairs of one message, in wire order.
fn fields(data: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, &'static str> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let key = varint(data, &mut at)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(data, &mut at)?),
            2 => {
                let len = usize::try_from(varint(data, &mut at)?).map_err(|_| "a length too large")?;
                let end = at.checked_add(len).filter(|end| *end <= data.len()).ok_or("a truncated field")?;
                let bytes = &data[at..end];
                at = end;
                Wire::Bytes(bytes)
            }
            1 => {
                at += 8;
                Wire::Fixed
            }
            5 => {
                at += 4;
                Wire::Fixed
            }
            _ => return Err("an unsupported wire type"),
        };
        if at > data.len() {
            return Err("a truncated field");
        }
        out.push((key >> 3, value));
    }
    Ok(out)
}

/// Why a body cannot be read.
enum Unreadable {
    Malformed(&'static str),
    /// A field this decoder does not know holds a value: its number, and
    /// the path of the message it is in.
    Unread(u64, Vec<&'static str>),
}

impl From<&'static str> for Unreadable {
    fn from(what: &'static str) -> Self {
        Unreadable::Malformed(what)
    }
}

fn message(data: &[u8], schema: &[Field]) -> Result<Value, Unreadable> {
    let mut object = Map::new();
    for (number, wire) in fields(data)? {
        let Some(field) = schema.iter().find(|f| f.number == number) else {
            // gogo-protobuf writes every non-pointer field, set or not: only
            // zero values of unknown fields may be passed over.
            if is_zero(&wire, 0) {
                continue;
            }
            return Err(Unreadable::Unread(number, Vec::new()));
        };
        let value = scalar(field.ty, &wire).map_err(|e| match e {
            Unreadable::Unread(number, mut path) => {
                path.insert(0, field.name);
                Unreadable::Unread(number, path)
            }
            malformed => malformed,
        })?;
        // Go writes empty strings that JSON would omit; they mean "unset".
        if !field.repeated && (value == "" || (matches!(field.ty, Ty::IntOrZero) && value == 0)) {
            continue;
        }
        match field.ty {
            Ty::StrMap | Ty::BytesMap | Ty::QuantityMap => {
                let entry = object.entry(field.name).or_insert_with(|| json!({}));
                if let (Value::Object(map), Value::Object(pair)) = (entry, value) {
                    map.extend(pair);
                }
            }
            _ if field.repeated => {
                let entry = object.entry(field.name).or_insert_with(|| json!([]));
                if let Value::Array(items) = entry {
                    items.push(value);
                }
            }
            _ => {
                object.insert(field.name.to_string(), value);
            }
        }
    }
    Ok(Value::Object(object))
}

/// Whether a field holds nothing but Go's zero values: 0, an empty string
/// or message, or a message of such fields (nested at most 32 deep).
fn is_zero(wire: &Wire<'_>, depth: usize) -> bool {
    match wire {
        Wire::Varint(v) => *v == 0,
        Wire::Fixed => false,
        Wire::Bytes(b) => {
            b.is_empty()
                || (depth < 32 && fields(b).is_ok_and(|parts| parts.iter().all(|(_, w)| is_zero(w, depth + 1))))
        }
    }
}

fn scalar(ty: Ty, wire: &Wire<'_>) -> Result<Value, Unreadable> {
    let bytes = || wire.bytes().ok_or("a field of the wrong wire type");
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "a string that is not UTF-8");
    Ok(match ty {
        Ty::Str => json!(text(bytes()?)?),
        // int32 fields carry negatives as 64-bit two's complement.
        Ty::Int | Ty::IntOrZero => match wire {
            Wire::Varint(v) => json!(*v as i64),
            _ => return Err("an integer of the wrong wire type".into()),
        },
        Ty::Bool => match wire {
            Wire::Varint(v) => json!(*v != 0),
            _ => return Err("a boolean of the wrong wire type".into()),
        },
        Ty::Time => {
            let parts = fields(bytes()?)?;
            let seconds = parts.iter().find_map(|(n, w)| match (n, w) {
                (1, Wire::Varint(v)) => Some(*v),
                _ => None,
            });
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.unwrap_or(0));
            json!(crate::object::timestamp(at))
        }
        Ty::StrMap | Ty::BytesMap | Ty::QuantityMap => {
            let parts = fields(bytes()?)?;
            let key = parts.iter().find(|(n, _)| *n == 1).and_then(|(_, w)| w.bytes()).unwrap_or_default();
            let value = parts.iter().find(|(n, _)| *n == 2).and_then(|(_, w)| w.bytes()).unwrap_or_default();
            let value = match ty {
                Ty::StrMap => json!(text(value)?),
                Ty::BytesMap => json!(STANDARD.encode(value)),
                _ => {
                    let quantity = fields(value)?;
                    let q = quantity.iter().find(|(n, _)| *n == 1).and_then(|(_, w)| w.bytes()).unwrap_or_default();
                    json!(text(q)?)
                }
            };
            let mut pair = Map::new();
            pair.insert(text(key)?, value);
            Value::Object(pair)
        }
        Ty::IntOrString => {
            let parts = fields(bytes()?)?;
            let is_string = parts.iter().any(|(n, w)| *n == 1 && matches!(w, Wire::Varint(1)));
            if is_string {
                let s = parts.iter().find(|(n, _)| *n == 3).and_then(|(_, w)| w.bytes()).unwrap_or_default();
                json!(text(s)?)
            } else {
                let v = parts.iter().find_map(|(n, w)| match (n, w) {
                    (2, Wire::Varint(v)) => Some(*v as i64),
                    _ => None,
                });
                json!(v.unwrap_or(0))
            }
        }
        Ty::Msg(schema) => message(bytes()?, schema)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(number: u64, wire: u64) -> Vec<u8> {
        encode_varint((number << 3) | wire)
    }

    fn encode_varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, data: &[u8]) -> Vec<u8> {
        let mut out = tag(number, 2);
        out.extend(encode_varint(data.len() as u64));
        out.extend_from_slice(data);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes_field(1, api_version.as_bytes()), bytes_field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), bytes_field(1, &type_meta), bytes_field(2, raw)].concat()
    }

    #[test]
    fn a_configmap_from_kubectl_create() {
        let meta = [bytes_field(1, b"demo"), bytes_field(3, b"default")].concat();
        let entry = [bytes_field(1, b"a"), bytes_field(2, b"1")].concat();
        let raw = [bytes_field(1, &meta), bytes_field(2, &entry)].concat();
        let object = decode(&envelope("v1", "ConfigMap", &raw)).expect("decoded");
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "demo", "namespace": "default"}, "data": {"a": "1"}})
        );
    }

    #[test]
    fn an_access_review_from_auth_can_i() {
        let attrs = [
            bytes_field(1, b"default"),
            bytes_field(2, b"create"),
            bytes_field(3, b"apps"),
            bytes_field(5, b"deployments"),
        ]
        .concat();
        let spec = bytes_field(1, &attrs);
        let raw = bytes_field(2, &spec);
        let object = decode(&envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &raw)).expect("decoded");
        assert_eq!(object["spec"]["resourceAttributes"]["verb"], "create");
        assert_eq!(object["spec"]["resourceAttributes"]["resource"], "deployments");
    }

    #[test]
    fn deployments_keep_replicas_and_containers() {
        let container = [bytes_field(1, b"nginx"), bytes_field(2, b"nginx:1.25")].concat();
        let pod_spec = bytes_field(2, &container);
        let template = bytes_field(2, &pod_spec);
        let mut spec = [tag(1, 0), encode_varint(3)].concat();
        spec.extend(bytes_field(3, &template));
        let raw = bytes_field(2, &spec);
        let object = decode(&envelope("apps/v1", "Deployment", &raw)).expect("decoded");
        assert_eq!(object["spec"]["replicas"], 3);
        assert_eq!(object["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    }

    fn varint_field(number: u64, value: u64) -> Vec<u8> {
        [tag(number, 0), encode_varint(value)].concat()
    }

    #[test]
    fn services_from_kubectl_create_service() {
        let target = [varint_field(1, 0), varint_field(2, 8080)].concat();
        let port = [
            bytes_field(1, b"80-8080"),
            bytes_field(2, b"TCP"),
            varint_field(3, 80),
            bytes_field(4, &target),
            varint_field(5, 0),
        ]
        .concat();
        let selector = [bytes_field(1, b"app"), bytes_field(2, b"web")].concat();
        // Go also writes fields the decoder does not know, with zero values.
        let unset = [varint_field(12, 0), bytes_field(14, &[]), bytes_field(1000, &varint_field(1, 0))].concat();
        let spec = [bytes_field(1, &port), bytes_field(2, &selector), bytes_field(4, b"ClusterIP"), unset].concat();
        let raw = [bytes_field(1, &bytes_field(1, b"web")), bytes_field(2, &spec)].concat();
        let object = decode(&envelope("v1", "Service", &raw)).expect("decoded");
        assert_eq!(
            object["spec"],
            json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "web"}, "type": "ClusterIP"})
        );
    }

    #[test]
    fn a_set_field_the_decoder_does_not_read_is_refused() {
        // A CronJob whose pod spec sets hostPID (field 12), which would be lost.
        let pod_spec = [bytes_field(2, &bytes_field(1, b"c")), varint_field(12, 1)].concat();
        let job_spec = bytes_field(6, &bytes_field(2, &pod_spec));
        let spec = [bytes_field(1, b"*/5 * * * *"), bytes_field(5, &bytes_field(2, &job_spec))].concat();
        let Err(ApiError::UnsupportedMediaType { accepted }) =
            decode(&envelope("batch/v1", "CronJob", &bytes_field(2, &spec)))
        else {
            panic!("a set field was dropped")
        };
        assert!(accepted.contains("protobuf field 12 of spec.jobTemplate.spec.template.spec"), "{accepted}");
    }

    #[test]
    fn garbage_and_unknown_kinds_are_refused() {
        assert!(matches!(decode(b"{}"), Err(ApiError::BadRequest(_))));
        assert!(matches!(decode(&envelope("v1", "Pod", b"")), Err(ApiError::UnsupportedMediaType { .. })));
        let truncated = [MAGIC.to_vec(), vec![0x0a, 0x40, 0x01]].concat();
        assert!(matches!(decode(&truncated), Err(ApiError::BadRequest(_))));
    }
}
