//! Kubernetes label and field selectors: parsing, validation and matching.
//!
//! The grammar, the validation rules and the error texts follow apimachinery's `labels` and `fields` packages so
//! that clients see the same messages a Kubernetes apiserver would give them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Why a selector was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector that does not parse or whose keys or values are invalid.
    #[error("{0}")]
    Label(String),
    /// A field selector that does not parse.
    #[error("{0}")]
    Field(String),
    /// A field selector naming a field the resource cannot be filtered by.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// Joins error messages the way apimachinery's `errors.NewAggregate` prints them: one message as is, several
/// (deduplicated) inside brackets.
pub(crate) fn aggregate_errors(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for message in messages {
        if !seen.contains(&message.as_str()) {
            seen.push(message);
        }
    }
    match seen.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Equals,
    NotEquals,
    GreaterThan,
    LessThan,
    Exists,
    DoesNotExist,
}

/// One `key op values` term; a selector is the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Validates like `labels.NewRequirement`, reporting every problem at once.
    fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errors = Vec::new();
        let key_errors = label_key_errors(key);
        if !key_errors.is_empty() {
            errors.push(invalid("key", key, &key_errors.join("; ")));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errors.push(format!(
                "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                go_string_slice(&values)
            )),
            Operator::Equals | Operator::NotEquals if values.len() != 1 => errors.push(format!(
                "values: Invalid value: {}: exact-match compatibility requires one single value",
                go_string_slice(&values)
            )),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errors.push(format!(
                "values: Invalid value: {}: values set must be empty for exists and does not exist",
                go_string_slice(&values)
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(invalid(
                            &format!("values[{i}]"),
                            value,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let value_errors = label_value_errors(value);
            if !value_errors.is_empty() {
                errors.push(invalid(&format!("values[{i}][{key}]"), value, &value_errors.join("; ")));
            }
        }
        if errors.is_empty() {
            Ok(Self { key: key.to_owned(), operator, values })
        } else {
            Err(aggregate_errors(&errors))
        }
    }

    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals => value.is_some_and(listed),
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !listed(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [wanted]) = (value.and_then(|v| v.parse::<i64>().ok()), self.values.as_slice())
                else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else { return false };
                if self.operator == Operator::GreaterThan { actual > wanted } else { actual < wanted }
            }
        }
    }
}

/// Formats a field error as `field.Invalid(...).Error()` does.
fn invalid(field: &str, value: &str, detail: &str) -> String {
    format!("{field}: Invalid value: {value:?}: {detail}")
}

/// Renders a string slice the way Go's `%#v` does, as Kubernetes embeds it in requirement errors.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_EXAMPLES: &[&str] = &["MyName", "my.name", "123-abc"];
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
    characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
    or '.', and must start and end with an alphanumeric character";
const NAME_MAX_LEN: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

fn regex_error(msg: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{format}')", examples.join(" or "))
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, the name part of a label key and any non-empty label value.
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-'),
            _ => false,
        }
    })
}

/// The messages of `validation.IsQualifiedName`, which label keys must satisfy.
fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > DNS1123_SUBDOMAIN_MAX_LEN {
                    errors.push(format!("prefix part must be no more than {DNS1123_SUBDOMAIN_MAX_LEN} characters"));
                }
                if !is_dns1123_subdomain(prefix) {
                    let msg = regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, &["example.com"]);
                    errors.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            let msg = regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, QUALIFIED_NAME_EXAMPLES);
            return vec![format!(
                "a qualified name {msg} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > NAME_MAX_LEN {
        errors.push(format!("name part must be no more than {NAME_MAX_LEN} characters"));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, QUALIFIED_NAME_EXAMPLES)
        ));
    }
    errors
}

/// The messages of `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > NAME_MAX_LEN {
        errors.push(format!("must be no more than {NAME_MAX_LEN} characters"));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        let format = format!("({QUALIFIED_NAME_FMT})?");
        errors.push(regex_error(LABEL_VALUE_MSG, &format, &["MyValue", "my_value", "12345"]));
    }
    errors
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    /// What a nil `metav1.LabelSelector` converts to: nothing is selected.
    Nothing,
    /// The AND of the requirements; none selects everything.
    All(Vec<Requirement>),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    selection: Selection,
}

impl LabelSelector {
    /// Parses the string form used in `?labelSelector=`, e.g. `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser { items: lex(s), position: 0 }.parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { selection: Selection::All(requirements) })
    }

    /// Converts a `metav1.LabelSelector` object as `metav1.LabelSelectorAsSelector` does: null selects nothing,
    /// an object without requirements selects everything.
    pub fn from_object(selector: &Value) -> Result<Self, SelectorError> {
        let object = match selector {
            Value::Null => return Ok(Self { selection: Selection::Nothing }),
            Value::Object(object) => object,
            _ => return Err(SelectorError::Label("a label selector must be an object".to_owned())),
        };
        let no_map = Map::new();
        let match_labels = match object.get("matchLabels") {
            None | Some(Value::Null) => &no_map,
            Some(Value::Object(map)) => map,
            Some(_) => return Err(SelectorError::Label("matchLabels must be an object".to_owned())),
        };
        let match_expressions: &[Value] = match object.get("matchExpressions") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(expressions)) => expressions,
            Some(_) => return Err(SelectorError::Label("matchExpressions must be an array".to_owned())),
        };
        let mut requirements = Vec::with_capacity(match_labels.len() + match_expressions.len());
        for (key, value) in match_labels {
            let Some(value) = value.as_str() else {
                return Err(SelectorError::Label(format!("matchLabels[{key}] must be a string")));
            };
            requirements
                .push(Requirement::new(key, Operator::Equals, vec![value.to_owned()]).map_err(SelectorError::Label)?);
        }
        for expression in match_expressions {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or_default();
            let operator = match expression.get("operator").and_then(Value::as_str).unwrap_or_default() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Label(format!("{other:?} is not a valid label selector operator")));
                }
            };
            let values = match expression.get("values") {
                Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            };
            requirements.push(Requirement::new(key, operator, values).map_err(SelectorError::Label)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { selection: Selection::All(requirements) })
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        match &self.selection {
            Selection::Nothing => false,
            Selection::All(requirements) => requirements.iter().all(|r| r.matches(labels)),
        }
    }

    /// True when the selector does not restrict anything (a nothing-selector is not empty, as in Kubernetes).
    pub fn is_empty(&self) -> bool {
        matches!(&self.selection, Selection::All(requirements) if requirements.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    token: Token,
    literal: &'a str,
}

const END: Item<'static> = Item { token: Token::EndOfString, literal: "" };

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a label selector into tokens; every special character is a token of its own except `!=` and `==`.
fn lex(s: &str) -> Vec<Item<'_>> {
    let bytes = s.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        while bytes.get(pos).copied().is_some_and(is_whitespace) {
            pos += 1;
        }
        let Some(&first) = bytes.get(pos) else {
            items.push(END);
            return items;
        };
        let start = pos;
        if is_special(first) {
            let pair = s.get(start..start + 2).and_then(keyword);
            pos += if pair.is_some() { 2 } else { 1 };
        } else {
            while bytes.get(pos).is_some_and(|&b| !is_special(b) && !is_whitespace(b)) {
                pos += 1;
            }
        }
        let literal = &s[start..pos];
        items.push(Item { token: keyword(literal).unwrap_or(Token::Identifier), literal });
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain identifiers (anywhere a key or value may stand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// The recursive-descent parser of `labels.Parse`, kept step for step so that errors come out alike.
struct Parser<'a> {
    items: Vec<Item<'a>>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let item = self.items.get(self.position).copied().unwrap_or(END);
        let token = match item.token {
            Token::In | Token::NotIn if context == Context::Values => Token::Identifier,
            token => token,
        };
        (token, item.literal)
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let next = self.lookahead(context);
        self.position += 1;
        next
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements
                        .push(self.parse_requirement().map_err(|e| format!("unable to parse requirement: {e}"))?);
                    match self.consume(Context::Values) {
                        (Token::EndOfString, _) => return Ok(requirements),
                        (Token::Comma, _) => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!("found '{literal}', expected: identifier after ','"));
                            }
                        }
                        (_, literal) => return Err(format!("found '{literal}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => return Err(format!("found '{literal}', expected: !, identifier, or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Requirement::new(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    /// Reads `[!]key`; a key followed by nothing (or `,`) means Exists, and `!key` always means DoesNotExist.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let mut operator = None;
        let mut item = self.consume(Context::Values);
        if item.0 == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            item = self.consume(Context::Values);
        }
        let (token, literal) = item;
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let errors = label_key_errors(literal);
        if !errors.is_empty() {
            return Err(invalid("<nil>", literal, &errors.join("; ")));
        }
        if matches!(self.lookahead(Context::Values).0, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        Ok(match self.consume(Context::KeyAndOperator) {
            (Token::In, _) => Operator::In,
            (Token::Equals | Token::DoubleEquals, _) => Operator::Equals,
            (Token::GreaterThan, _) => Operator::GreaterThan,
            (Token::LessThan, _) => Operator::LessThan,
            (Token::NotIn, _) => Operator::NotIn,
            (Token::NotEquals, _) => Operator::NotEquals,
            (_, literal) => return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// Reads `(v1,v2,...)`; values form a set, and empty entries such as `(,a)` or `()` stand for "".
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            match self.consume(Context::Values) {
                (Token::Identifier, literal) => {
                    values.insert(literal.to_owned());
                    match self.lookahead(Context::Values) {
                        (Token::Comma, _) => {}
                        (Token::ClosedPar, _) => return Ok(values),
                        (_, next) => return Err(format!("found '{next}', expected: ',' or ')'")),
                    }
                }
                (Token::Comma, _) => {
                    if values.is_empty() || matches!(self.lookahead(Context::Values).0, Token::ClosedPar | Token::Comma)
                    {
                        values.insert(String::new());
                    }
                    if self.lookahead(Context::Values).0 == Token::ClosedPar {
                        return Ok(values);
                    }
                }
                (_, literal) => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(self.lookahead(Context::Values).0, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(BTreeSet::from([literal.to_owned()])),
            (_, literal) => Err(format!("found '{literal}', expected: identifier")),
        }
    }
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector (`?fieldSelector=`): the AND of its terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The field labels a resource can be selected by, from Kubernetes' field label conversion functions. Resources
/// without one accept the object-meta fields only; nodes and namespaces, being cluster-scoped with their own
/// conversion, do not accept `metadata.namespace`.
fn supported_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            // Older v1 clients send spec.host; Kubernetes converts it to spec.nodeName.
            "spec.host",
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
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "secrets") => &["type", "metadata.namespace", "metadata.name"],
        ("", "namespaces") => &["status.phase", "metadata.name"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        ("", "services") => &["metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"],
        _ => META_FIELDS,
    }
}

fn lookup<'v>(object: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

fn string_at(object: &Value, path: &[&str]) -> String {
    lookup(object, path).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn bool_at(object: &Value, path: &[&str]) -> String {
    lookup(object, path).and_then(Value::as_bool).unwrap_or(false).to_string()
}

fn int_at(object: &Value, path: &[&str]) -> String {
    lookup(object, path).and_then(Value::as_i64).unwrap_or(0).to_string()
}

/// The value of a field label as the resource's `GetAttrs` renders it: absent strings are "", absent booleans
/// "false" and absent counters "0", because Kubernetes reads them from typed structs.
fn field_value(group: &str, resource: &str, object: &Value, field: &str) -> String {
    match (group, resource, field) {
        ("", "pods", "spec.host") => string_at(object, &["spec", "nodeName"]),
        ("", "pods", "spec.hostNetwork") => bool_at(object, &["spec", "hostNetwork"]),
        // Kubernetes reads the primary address from status.podIPs[0], which v1 mirrors into status.podIP.
        ("", "pods", "status.podIP") => object
            .pointer("/status/podIPs/0/ip")
            .or_else(|| object.pointer("/status/podIP"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        // Accepted by the conversion but absent from the pod's field set, so it always reads as "".
        ("", "pods", "status.podIPs") => String::new(),
        ("", "nodes", "spec.unschedulable") => bool_at(object, &["spec", "unschedulable"]),
        ("", "replicationcontrollers", "status.replicas") | ("apps", "replicasets", "status.replicas") => {
            int_at(object, &["status", "replicas"])
        }
        ("batch", "jobs", "status.successful") => int_at(object, &["status", "succeeded"]),
        ("", "events", "source") => {
            let component = string_at(object, &["source", "component"]);
            if component.is_empty() { string_at(object, &["reportingComponent"]) } else { component }
        }
        _ => {
            let path: Vec<&str> = field.split('.').collect();
            string_at(object, &path)
        }
    }
}

/// Splits on commas that are not escaped with a backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    if selector.is_empty() {
        return terms;
    }
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator; `!=` and `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        ["!=", "==", "="].into_iter().find(|op| rest.starts_with(op)).map(|op| (&term[..i], op, &rest[op.len()..]))
    })
}

/// Undoes `fields.EscapeValue`: `\\`, `\,` and `\=` are the only escapes, and bare `,` or `=` are errors.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Field(format!("invalid field selector: invalid escape sequence: \\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go prints the rune with %v, i.e. as its code point number.
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                )));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field("invalid field selector: invalid escape sequence: \\".to_owned()));
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses `a=b`, `a==b` and `a!=b` terms separated by commas; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, op, value)) = split_term(part) else {
                return Err(SelectorError::Field(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            terms.push(FieldTerm { field: field.to_owned(), value: unescape_value(value)?, negated: op == "!=" });
        }
        Ok(Self { terms })
    }

    /// Checks the fields against what a resource supports, so that unsupported ones are refused with
    /// Kubernetes' message instead of silently matching "".
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), SelectorError> {
        let supported = supported_fields(group, resource);
        match self.terms.iter().find(|t| !supported.contains(&t.field.as_str())) {
            Some(term) => Err(SelectorError::UnsupportedField(term.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether the object (as stored JSON) satisfies every term.
    pub fn matches(&self, group: &str, resource: &str, object: &Value) -> bool {
        self.terms.iter().all(|t| (field_value(group, resource, object, &t.field) == t.value) != t.negated)
    }

    /// The exact value required for a field (`metadata.name=x`), so a list can be narrowed to one key.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|t| !t.negated && t.field == field).map(|t| t.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn label_error(s: &str) -> String {
        match LabelSelector::parse(s) {
            Err(e) => e.to_string(),
            Ok(selector) => format!("unexpectedly parsed into {selector:?}"),
        }
    }

    fn field_error(s: &str) -> String {
        match FieldSelector::parse(s) {
            Err(e) => e.to_string(),
            Ok(selector) => format!("unexpectedly parsed into {selector:?}"),
        }
    }

    #[test]
    fn parses_every_operator() -> Result<(), SelectorError> {
        let selector = LabelSelector::parse("a=b,c!=d,e in (x,y),f notin (z),g,!h,i==j,k>5,l<3")?;
        let all = labels(json!({"a": "b", "c": "x", "e": "y", "f": "q", "g": "", "i": "j", "k": "6", "l": "2"}));
        assert!(selector.matches(&all));
        for (key, value) in [("a", "c"), ("c", "d"), ("e", "z"), ("f", "z"), ("i", "x"), ("k", "5"), ("l", "3")] {
            let mut changed = all.clone();
            changed.insert(key.to_owned(), json!(value));
            assert!(!selector.matches(&changed), "{key}={value} should not match");
        }
        let mut with_h = all.clone();
        with_h.insert("h".to_owned(), json!("1"));
        assert!(!selector.matches(&with_h));
        let mut without_g = all;
        without_g.remove("g");
        assert!(!selector.matches(&without_g));
        Ok(())
    }

    #[test]
    fn tolerates_whitespace_and_keywords_as_values() -> Result<(), SelectorError> {
        let selector = LabelSelector::parse("  env  in ( in , notin ) ,  tier = web ")?;
        assert!(selector.matches(&labels(json!({"env": "notin", "tier": "web"}))));
        assert!(LabelSelector::parse("in=in")?.matches(&labels(json!({"in": "in"}))));
        assert!(
            LabelSelector::parse("app.kubernetes.io/name=x")?.matches(&labels(json!({"app.kubernetes.io/name": "x"})))
        );
        Ok(())
    }

    #[test]
    fn empty_values_in_sets() -> Result<(), SelectorError> {
        let selector = LabelSelector::parse("x in (foo,,baz),y,z notin ()")?;
        assert!(selector.matches(&labels(json!({"x": "", "y": "1"}))));
        assert!(!selector.matches(&labels(json!({"x": "", "y": "1", "z": ""}))));
        assert!(LabelSelector::parse("a=")?.matches(&labels(json!({"a": ""}))));
        Ok(())
    }

    #[test]
    fn missing_labels() -> Result<(), SelectorError> {
        let none = Map::new();
        assert!(LabelSelector::parse("a notin (x)")?.matches(&none));
        assert!(LabelSelector::parse("a!=x")?.matches(&none));
        assert!(LabelSelector::parse("!a")?.matches(&none));
        assert!(!LabelSelector::parse("a in (x)")?.matches(&none));
        assert!(!LabelSelector::parse("a=x")?.matches(&none));
        assert!(!LabelSelector::parse("a")?.matches(&none));
        assert!(!LabelSelector::parse("a>1")?.matches(&none));
        assert!(!LabelSelector::parse("a>1")?.matches(&labels(json!({"a": "many"}))));
        Ok(())
    }

    #[test]
    fn empty_string_selects_everything() -> Result<(), SelectorError> {
        let selector = LabelSelector::parse("")?;
        assert!(selector.is_empty());
        assert!(selector.matches(&Map::new()));
        assert!(!LabelSelector::parse("a")?.is_empty());
        Ok(())
    }

    #[test]
    fn syntax_errors_read_like_kubernetes() {
        assert_eq!(label_error("a in (b"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(label_error("a in b"), "unable to parse requirement: found 'b' expected: '('");
        assert_eq!(
            label_error("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(label_error("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(label_error("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(label_error(",a"), "found ',', expected: !, identifier, or 'end of string'");
        assert_eq!(label_error("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(label_error("a=(b)"), "unable to parse requirement: found '(', expected: identifier");
    }

    #[test]
    fn validation_errors_read_like_kubernetes() {
        assert_eq!(
            label_error("a@b=c"),
            "unable to parse requirement: <nil>: Invalid value: \"a@b\": name part must consist of alphanumeric \
             characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
             'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            label_error("a=b@"),
            "unable to parse requirement: values[0][a]: Invalid value: \"b@\": a valid label must be an empty \
             string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            label_error("a>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must \
             be an integer"
        );
        assert!(label_error("Example.com/a=b").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 \
             subdomain"
        ));
        assert!(label_error(&format!("a={}", "v".repeat(64))).contains("must be no more than 63 characters"));
    }

    #[test]
    fn from_object_nil_selects_nothing_and_empty_everything() -> Result<(), SelectorError> {
        let nothing = LabelSelector::from_object(&Value::Null)?;
        assert!(!nothing.matches(&Map::new()));
        assert!(!nothing.is_empty());
        let everything = LabelSelector::from_object(&json!({}))?;
        assert!(everything.matches(&Map::new()));
        assert!(everything.is_empty());
        assert!(LabelSelector::from_object(&json!({"matchLabels": {}, "matchExpressions": []}))?.is_empty());
        Ok(())
    }

    #[test]
    fn from_object_combines_labels_and_expressions() -> Result<(), SelectorError> {
        let selector = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
                {"key": "team", "operator": "Exists"}
            ]
        }))?;
        assert!(selector.matches(&labels(json!({"app": "web", "tier": "edge", "team": "x"}))));
        assert!(!selector.matches(&labels(json!({"app": "web", "tier": "edge", "team": "x", "canary": "1"}))));
        assert!(!selector.matches(&labels(json!({"app": "web", "tier": "edge", "team": "x", "zone": "a"}))));
        assert!(!selector.matches(&labels(json!({"app": "web", "tier": "back", "team": "x"}))));
        Ok(())
    }

    #[test]
    fn from_object_rejects_bad_requirements() {
        let error = |v: Value| match LabelSelector::from_object(&v) {
            Err(e) => e.to_string(),
            Ok(s) => format!("unexpectedly converted into {s:?}"),
        };
        assert_eq!(
            error(json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})),
            "\"Equals\" is not a valid label selector operator"
        );
        assert_eq!(
            error(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            error(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]})),
            "values: Invalid value: []string{\"b\"}: values set must be empty for exists and does not exist"
        );
        assert!(error(json!({"matchLabels": {"bad key": "x"}})).starts_with("key: Invalid value: \"bad key\""));
    }

    #[test]
    fn field_selector_operators_and_escapes() -> Result<(), SelectorError> {
        let selector = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,status.phase!=Failed,spec.nodeName==n1")?;
        let pod = json!({"metadata": {"name": r"a,b=c\d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(selector.matches("", "pods", &pod));
        assert_eq!(selector.exact("metadata.name"), Some(r"a,b=c\d"));
        assert_eq!(selector.exact("spec.nodeName"), Some("n1"));
        assert_eq!(selector.exact("status.phase"), None);
        let failed =
            json!({"metadata": {"name": r"a,b=c\d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Failed"}});
        assert!(!selector.matches("", "pods", &failed));
        assert!(FieldSelector::parse("")?.matches("", "pods", &pod));
        assert!(FieldSelector::parse(",,")?.matches("", "pods", &pod));
        Ok(())
    }

    #[test]
    fn field_selector_errors_read_like_kubernetes() {
        assert_eq!(field_error("metadata.name"), "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
        assert_eq!(field_error("a=b=c"), "invalid field selector: unescaped character in value: 61");
        assert_eq!(field_error(r"a=b\x"), r"invalid field selector: invalid escape sequence: \x");
        assert_eq!(field_error(r"a=b\"), r"invalid field selector: invalid escape sequence: \");
    }

    #[test]
    fn field_support_per_resource() -> Result<(), SelectorError> {
        let check = |s: &str, group: &str, resource: &str| FieldSelector::parse(s)?.check_supported(group, resource);
        check("spec.nodeName=n,status.phase=Running,spec.hostNetwork=true,metadata.namespace=x", "", "pods")?;
        check("involvedObject.name=p,reason=Failed,source=kubelet,type=Warning", "", "events")?;
        check("type=kubernetes.io/tls", "", "secrets")?;
        check("status.phase=Active,metadata.name=x", "", "namespaces")?;
        check("spec.unschedulable=true", "", "nodes")?;
        check("status.replicas=0", "apps", "replicasets")?;
        check("status.successful=1", "batch", "jobs")?;
        check("spec.clusterIP=None,spec.type=ClusterIP", "", "services")?;
        check("metadata.name=x,metadata.namespace=y", "", "configmaps")?;
        assert_eq!(
            check("spec.foo=bar", "", "pods").map_err(|e| e.to_string()),
            Err("field label not supported: spec.foo".to_owned())
        );
        assert_eq!(
            check("metadata.namespace=x", "", "nodes"),
            Err(SelectorError::UnsupportedField("metadata.namespace".to_owned()))
        );
        assert!(check("status.replicas=1", "apps", "deployments").is_err());
        Ok(())
    }

    #[test]
    fn missing_fields_compare_as_their_zero_value() -> Result<(), SelectorError> {
        let unscheduled = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {}});
        let scheduled = json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"nodeName": "n1"}});
        let selector = FieldSelector::parse("spec.nodeName=")?;
        assert!(selector.matches("", "pods", &unscheduled));
        assert!(!selector.matches("", "pods", &scheduled));
        assert!(FieldSelector::parse("spec.host=n1")?.matches("", "pods", &scheduled));
        assert!(FieldSelector::parse("spec.hostNetwork=false")?.matches("", "pods", &unscheduled));
        assert!(FieldSelector::parse("spec.unschedulable=false")?.matches("", "nodes", &json!({"spec": {}})));
        assert!(FieldSelector::parse("spec.unschedulable=true")?.matches(
            "",
            "nodes",
            &json!({"spec": {"unschedulable": true}})
        ));
        assert!(FieldSelector::parse("status.replicas=0")?.matches("apps", "replicasets", &json!({})));
        assert!(FieldSelector::parse("status.successful=2")?.matches(
            "batch",
            "jobs",
            &json!({"status": {"succeeded": 2}})
        ));
        Ok(())
    }

    #[test]
    fn pod_ip_and_event_source() -> Result<(), SelectorError> {
        let pod = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        assert!(FieldSelector::parse("status.podIP=10.0.0.1")?.matches("", "pods", &pod));
        assert!(FieldSelector::parse("status.podIP=10.0.0.2")?.matches(
            "",
            "pods",
            &json!({"status": {"podIP": "10.0.0.2"}})
        ));
        let event = json!({"reportingComponent": "scheduler", "involvedObject": {"kind": "Pod", "name": "p"}});
        assert!(
            FieldSelector::parse("source=scheduler,involvedObject.kind=Pod,involvedObject.name=p")?
                .matches("", "events", &event)
        );
        let kubelet = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
        assert!(FieldSelector::parse("source=kubelet,reportingComponent=x")?.matches("", "events", &kubelet));
        Ok(())
    }
}
