//! How etcdctl turns `KEY [RANGE_END]`, `--prefix` and `--from-key` into a
//! key and range end (clientv3's WithPrefix / WithFromKey / WithRange).

use crate::error::bad_args;

pub struct KeyRange {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// The range end that covers every key starting with `prefix`: the prefix
/// with its last byte below 0xff incremented, or `\0` (all keys from
/// `prefix` on) when there is no such byte.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|b| *b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// The key range of get and del, with etcdctl's argument errors (`what` is
/// the usage line etcdctl prints when the key is missing).
pub fn from_args(
    key: Option<&str>,
    range_end: Option<&str>,
    prefix: bool,
    from_key: bool,
    what: &str,
) -> anyhow::Result<KeyRange> {
    let Some(key) = key else { return Err(bad_args(what)) };
    if prefix && from_key {
        return Err(bad_args("`--prefix` and `--from-key` cannot be set at the same time, choose one"));
    }
    if range_end.is_some() && (prefix || from_key) {
        return Err(bad_args("too many arguments, only accept one argument when `--prefix` or `--from-key` is set"));
    }
    Ok(resolve(key.as_bytes(), range_end.map(str::as_bytes), prefix, from_key))
}

/// The range without argument checks (watch has its own messages).
pub fn resolve(key: &[u8], range_end: Option<&[u8]>, prefix: bool, from_key: bool) -> KeyRange {
    // An empty key with --prefix or --from-key means every key.
    if (prefix || from_key) && key.is_empty() {
        return KeyRange { key: vec![0], range_end: vec![0] };
    }
    let range_end = if prefix {
        prefix_end(key)
    } else if from_key {
        vec![0]
    } else {
        range_end.map(<[u8]>::to_vec).unwrap_or_default()
    };
    KeyRange { key: key.to_vec(), range_end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"abc"), b"abd".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn ranges_as_etcdctl_sends_them() {
        let all = resolve(b"", None, true, false);
        assert_eq!((all.key, all.range_end), (vec![0], vec![0]));
        let from = resolve(b"k", None, false, true);
        assert_eq!((from.key, from.range_end), (b"k".to_vec(), vec![0]));
        let explicit = resolve(b"a", Some(b"c"), false, false);
        assert_eq!((explicit.key, explicit.range_end), (b"a".to_vec(), b"c".to_vec()));
        assert!(from_args(Some("a"), Some("b"), true, false, "usage").is_err());
        assert!(from_args(None, None, false, false, "usage").is_err());
        assert!(from_args(Some("a"), None, true, true, "usage").is_err());
    }
}
