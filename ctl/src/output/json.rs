//! Compact JSON as Go's encoding/json writes it (what `etcdctl -w json`
//! prints): bytes as base64, and `<`, `>`, `&`, U+2028 and U+2029 escaped.

use super::base64;
use super::doc::Doc;

pub fn to_string(doc: &Doc) -> String {
    let mut out = String::new();
    write(doc, &mut out);
    out
}

pub fn write(doc: &Doc, out: &mut String) {
    match doc {
        Doc::Obj(fields) => {
            out.push('{');
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(name, out);
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
        Doc::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Doc::Str(s) => write_str(s, out),
        Doc::Bytes(b) => write_str(&base64::encode(b), out),
        Doc::Int(n) => out.push_str(&n.to_string()),
        Doc::Uint(n) => out.push_str(&n.to_string()),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Null => out.push_str("null"),
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escaping_and_base64() {
        let doc = Doc::Obj(vec![
            ("s", Doc::Str("a\"<b>&\n\u{1}".into())),
            ("b", Doc::Bytes(b"foo".to_vec())),
            ("n", Doc::Uint(u64::MAX)),
            ("e", Doc::Null),
        ]);
        assert_eq!(
            to_string(&doc),
            r#"{"s":"a\"\u003cb\u003e\u0026\n\u0001","b":"Zm9v","n":18446744073709551615,"e":null}"#
        );
    }
}
