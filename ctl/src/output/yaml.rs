//! YAML for `-w yaml`: the same document as `-w json`, but keys and values
//! readable: a value that holds a JSON object or array becomes nested YAML,
//! other UTF-8 values are strings, anything else `!!binary` base64.
//!
//! Block style only; strings are written plain when YAML would read them
//! back as the same string, double-quoted otherwise.

use super::base64;
use super::doc::Doc;
use super::json_value::JsonValue;

enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    /// A scalar already in YAML syntax.
    Scalar(String),
}

/// One YAML document, ending with a newline.
pub fn to_string(doc: &Doc) -> String {
    let node = from_doc(doc);
    let mut out = match inline(&node) {
        Some(scalar) => scalar,
        None => block(&node).join("\n"),
    };
    out.push('\n');
    out
}

/// A mapping entry `name: value` as lines, for output written piece by piece.
pub fn entry_lines(name: &str, value: &Doc) -> Vec<String> {
    block(&Node::Map(vec![(name.to_string(), from_doc(value))]))
}

/// A sequence item `- value` as lines.
pub fn item_lines(value: &Doc) -> Vec<String> {
    block(&Node::Seq(vec![from_doc(value)]))
}

fn from_doc(doc: &Doc) -> Node {
    match doc {
        Doc::Obj(fields) => Node::Map(fields.iter().map(|(k, v)| (k.to_string(), from_doc(v))).collect()),
        Doc::Arr(items) => Node::Seq(items.iter().map(from_doc).collect()),
        Doc::Str(s) => Node::Scalar(string(s)),
        Doc::Bytes(bytes) => {
            if let Some(value) = JsonValue::parse_structured(bytes) {
                from_json(&value)
            } else if let Ok(text) = std::str::from_utf8(bytes) {
                Node::Scalar(string(text))
            } else {
                Node::Scalar(format!("!!binary {}", base64::encode(bytes)))
            }
        }
        Doc::Int(n) => Node::Scalar(n.to_string()),
        Doc::Uint(n) => Node::Scalar(n.to_string()),
        Doc::Bool(b) => Node::Scalar(b.to_string()),
        Doc::Null => Node::Scalar("null".to_string()),
    }
}

fn from_json(value: &JsonValue) -> Node {
    match value {
        JsonValue::Null => Node::Scalar("null".to_string()),
        JsonValue::Bool(b) => Node::Scalar(b.to_string()),
        JsonValue::Number(n) => Node::Scalar(n.to_string()),
        JsonValue::String(s) => Node::Scalar(string(s)),
        JsonValue::Array(items) => Node::Seq(items.iter().map(from_json).collect()),
        JsonValue::Object(fields) => Node::Map(fields.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// The node on one line, if it fits there: scalars and empty collections.
fn inline(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(s) => Some(s.clone()),
        Node::Map(fields) if fields.is_empty() => Some("{}".to_string()),
        Node::Seq(items) if items.is_empty() => Some("[]".to_string()),
        _ => None,
    }
}

/// A non-empty collection as block lines (sequences under a key are not
/// indented, as kubectl writes them).
fn block(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    match node {
        Node::Map(fields) => {
            for (key, value) in fields {
                let key = string(key);
                match inline(value) {
                    Some(scalar) => out.push(format!("{key}: {scalar}")),
                    None => {
                        out.push(format!("{key}:"));
                        let indent = if matches!(value, Node::Seq(_)) { "" } else { "  " };
                        out.extend(block(value).into_iter().map(|l| format!("{indent}{l}")));
                    }
                }
            }
        }
        Node::Seq(items) => {
            for item in items {
                match inline(item) {
                    Some(scalar) => out.push(format!("- {scalar}")),
                    None => {
                        for (i, line) in block(item).into_iter().enumerate() {
                            out.push(if i == 0 { format!("- {line}") } else { format!("  {line}") });
                        }
                    }
                }
            }
        }
        Node::Scalar(s) => out.push(s.clone()),
    }
    out
}

/// A string scalar: plain when that reads back as the same string.
fn string(s: &str) -> String {
    if is_plain_safe(s) { s.to_string() } else { double_quoted(s) }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    // Words that YAML 1.1 or 1.2 readers take for booleans or null.
    const RESERVED: &[&str] = &["null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", "=", "<<"];
    if RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Indicators, and anything a reader might take for a number or date.
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_ascii_digit() || first == '+' || first == '.' {
        return false;
    }
    if s.trim() != s || s.ends_with(':') || s.contains(": ") || s.contains(" #") {
        return false;
    }
    s.chars().all(|c| !c.is_control() && !matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}') => {
                let code = u32::from(c);
                out.push_str(&if code < 0x100 { format!("\\x{code:02X}") } else { format!("\\u{code:04X}") });
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_only_when_needed() {
        for plain in
            ["foo", "foo bar", "/registry/pods/default/x", "http://127.0.0.1:2379", "a-b", "ünïcode", r#"q"b\"#]
        {
            assert_eq!(string(plain), plain);
        }
        let quoted = [
            ("", r#""""#),
            ("yes", r#""yes""#),
            ("Null", r#""Null""#),
            ("123", r#""123""#),
            ("3.5.21", r#""3.5.21""#),
            ("-x", r#""-x""#),
            ("a: b", r#""a: b""#),
            ("a #b", r#""a #b""#),
            ("key:", r#""key:""#),
            (" lead", r#"" lead""#),
            ("line\nbreak", r#""line\nbreak""#),
            ("\"q\" b\\", r#""\"q\" b\\""#),
            ("bell\u{7}", r#""bell\x07""#),
            ("*alias", r#""*alias""#),
        ];
        for (input, expected) in quoted {
            assert_eq!(string(input), expected, "{input:?}");
        }
    }

    #[test]
    fn json_values_become_nested_yaml() {
        let value = br#"{"kind":"Pod","metadata":{"name":"web","labels":{}},"spec":{"containers":[{"name":"c","ports":[80,443]}],"x":[[1,2],[]]},"note":"yes","n":null}"#;
        let doc = Doc::Obj(vec![
            (
                "kvs",
                Doc::Arr(vec![Doc::Obj(vec![
                    ("key", Doc::Bytes(b"/registry/pods/default/web".to_vec())),
                    ("value", Doc::Bytes(value.to_vec())),
                ])]),
            ),
            ("count", Doc::Int(1)),
        ]);
        let expected = "\
kvs:
- key: /registry/pods/default/web
  value:
    kind: Pod
    metadata:
      name: web
      labels: {}
    spec:
      containers:
      - name: c
        ports:
        - 80
        - 443
      x:
      - - 1
        - 2
      - []
    note: \"yes\"
    \"n\": null
count: 1
";
        assert_eq!(to_string(&doc), expected);
    }

    #[test]
    fn text_and_binary_values() {
        let doc = Doc::Obj(vec![("a", Doc::Bytes(b"plain text".to_vec())), ("b", Doc::Bytes(vec![0xff, 0x00]))]);
        assert_eq!(to_string(&doc), "a: plain text\nb: !!binary /wA=\n");
        assert_eq!(to_string(&Doc::Obj(vec![])), "{}\n");
    }
}
