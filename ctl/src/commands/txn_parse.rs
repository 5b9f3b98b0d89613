//! etcdctl's txn grammar: compare lines such as `mod("k") > "0"` and
//! `value("k") = "v"`, and request lines `get …`, `put …`, `del …` with the
//! same flags as the commands.

use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::{Compare, RequestOp, request_op};
use clap::Parser;

use super::del::{DelArgs, delete_request};
use super::get::{GetArgs, range_request};
use super::put::{PutArgs, parse_lease_id, put_request};

/// One request line, parsed with the commands' own flags.
#[derive(Parser, Debug)]
#[command(no_binary_name = true, disable_help_subcommand = true)]
enum TxnOp {
    Get(GetArgs),
    Put(PutArgs),
    Del(DelArgs),
}

/// A compare line: `TARGET("key") OP "value"`, TARGET one of ver|version,
/// c|create, m|mod, val|value, lease; OP one of = != > <.
pub fn parse_compare(line: &str) -> Result<Compare, String> {
    let malformed = || format!("malformed comparison: {line}");
    let (target, rest) = line.split_once('(').ok_or_else(malformed)?;
    let (key, rest) = take_quoted(rest.trim_start()).ok_or_else(malformed)?;
    let rest = rest.trim_start().strip_prefix(')').ok_or_else(malformed)?.trim_start();
    let op_len = rest.find(char::is_whitespace).ok_or_else(malformed)?;
    let (op, rest) = rest.split_at(op_len);
    let (value, rest) = take_quoted(rest.trim_start()).ok_or_else(malformed)?;
    if !rest.trim().is_empty() {
        return Err(malformed());
    }
    let result = match op {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        ">" => CompareResult::Greater,
        "<" => CompareResult::Less,
        _ => return Err(format!("malformed comparison: {line} (unknown operator {op})")),
    };
    let invalid = || format!("invalid txn compare request: {line}");
    let number = || value.parse::<i64>().map_err(|_| invalid());
    let (target, union) = match target.trim() {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(number()?)),
        "c" | "create" => (CompareTarget::Create, TargetUnion::CreateRevision(number()?)),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(number()?)),
        "val" | "value" => (CompareTarget::Value, TargetUnion::Value(value.clone().into_bytes().into())),
        // Lease IDs are hexadecimal everywhere else in etcdctl.
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(parse_lease_id(&value).map_err(|_| invalid())?)),
        other => return Err(format!("malformed comparison: {line} (unknown target {other})")),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key: key.into_bytes().into(),
        target_union: Some(union),
        ..Default::default()
    })
}

/// A request line: `get …`, `put …` or `del …`.
pub fn parse_request(line: &str) -> Result<RequestOp, String> {
    let invalid = || format!("invalid txn request: {line}");
    let args = argify(line).ok_or_else(invalid)?;
    if args.len() < 2 {
        return Err(format!("invalid txn compare request: {line}"));
    }
    let op = TxnOp::try_parse_from(&args).map_err(|_| invalid())?;
    let request = match op {
        TxnOp::Get(a) => request_op::Request::RequestRange(range_request(&a).map_err(|_| invalid())?),
        TxnOp::Put(a) => request_op::Request::RequestPut(put_request(&a, None).map_err(|_| invalid())?),
        TxnOp::Del(a) => request_op::Request::RequestDeleteRange(delete_request(&a).map_err(|_| invalid())?),
    };
    Ok(RequestOp { request: Some(request) })
}

/// Splits a line into arguments: `"double quoted"` (Go escapes),
/// `'single quoted'` (verbatim) or bare words.
fn argify(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (arg, tail) = match rest.chars().next() {
            Some('"') => take_quoted(rest)?,
            Some('\'') => {
                let end = rest[1..].find('\'')? + 1;
                (rest[1..end].to_string(), &rest[end + 1..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (rest[..end].to_string(), &rest[end..])
            }
        };
        args.push(arg);
        rest = tail.trim_start();
    }
    Some(args)
}

/// A Go quoted string at the start of `s` (`"…"` with escapes, or
/// `` `…` `` raw), and what follows it.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    if let Some(raw) = s.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw[..end].to_string(), &raw[end + 1..]));
    }
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' | '"' | '\'' => out.push(e),
                    'x' | 'u' | 'U' => {
                        let digits = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..digits).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares() {
        let c = parse_compare(r#"mod("k") > "0""#).expect("valid");
        assert_eq!(
            (c.target, c.result, c.key.to_vec()),
            (CompareTarget::Mod as i32, CompareResult::Greater as i32, b"k".to_vec())
        );
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(0)));
        let c = parse_compare(r#"value("key 1") != "a \"b\"""#).expect("valid");
        assert_eq!(c.target_union, Some(TargetUnion::Value(b"a \"b\"".to_vec().into())));
        assert_eq!(c.key.to_vec(), b"key 1".to_vec());
        assert!(parse_compare(r#"ver("k") = "x""#).is_err());
        assert!(parse_compare(r#"bogus("k") = "1""#).is_err());
        assert!(parse_compare("mod(k) > 0").is_err());
        assert!(parse_compare(r#"c("k") ~ "1""#).is_err());
    }

    #[test]
    fn requests() {
        let op = parse_request(r#"put k "hello world" --prev-kv"#).expect("valid");
        let Some(request_op::Request::RequestPut(p)) = op.request else { panic!("not a put: {op:?}") };
        assert_eq!((p.key.to_vec(), p.value.to_vec(), p.prev_kv), (b"k".to_vec(), b"hello world".to_vec(), true));
        let op = parse_request("get a --prefix").expect("valid");
        let Some(request_op::Request::RequestRange(r)) = op.request else { panic!("not a get: {op:?}") };
        assert_eq!(r.range_end.to_vec(), b"b".to_vec());
        assert!(parse_request("put k").is_err(), "a put without a value");
        assert!(parse_request("get").is_err());
        assert!(parse_request("frob k").is_err());
    }

    #[test]
    fn arguments() {
        assert_eq!(argify(r#"put 'a b' "c\td" e"#), Some(vec!["put".into(), "a b".into(), "c\td".into(), "e".into()]));
    }
}
