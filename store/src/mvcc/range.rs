//! Range semantics as etcd evaluates them: key ranges, filters, sorting and
//! limits over the key-values found at one revision. Pure functions.

use capstan_proto::etcdserverpb::RangeRequest;
use capstan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use capstan_proto::mvccpb::KeyValue;

/// The keys a request names: one key, or `[start, end)` where `end` None is unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    Single(Vec<u8>),
    Span { start: Vec<u8>, end: Option<Vec<u8>> },
}

impl KeyRange {
    /// etcd's encoding: empty `range_end` = one key; `"\0"` = every key ≥ `key`.
    pub fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::Span { start: key.to_vec(), end: None },
            end => KeyRange::Span { start: key.to_vec(), end: Some(end.to_vec()) },
        }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            KeyRange::Single(key) => key == k,
            KeyRange::Span { start, end } => k >= start.as_slice() && end.as_ref().is_none_or(|e| k < e.as_slice()),
        }
    }

    /// A span whose end is not after its start selects nothing.
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyRange::Span { start, end: Some(end) } if end <= start)
    }
}

/// True when every key in the range must be read (sorting or filtering),
/// false when reading `limit + 1` keys in key order is enough.
pub fn needs_all_keys(req: &RangeRequest) -> bool {
    let sorted = req.sort_order() != SortOrder::None || req.sort_target() != SortTarget::Key;
    sorted
        || req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0
}

/// Applies filters, sorting and limit to the key-values of the range (given
/// in key order). Returns the kvs to send and whether more remain.
pub fn finish(req: &RangeRequest, mut kvs: Vec<KeyValue>) -> (Vec<KeyValue>, bool) {
    kvs.retain(|kv| {
        (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
    });
    let mut order = req.sort_order();
    if order == SortOrder::None && req.sort_target() != SortTarget::Key {
        order = SortOrder::Ascend;
    }
    if order != SortOrder::None {
        // A stable sort keeps key order among equal targets, as etcd does.
        match req.sort_target() {
            SortTarget::Key => {}
            SortTarget::Version => kvs.sort_by_key(|kv| kv.version),
            SortTarget::Create => kvs.sort_by_key(|kv| kv.create_revision),
            SortTarget::Mod => kvs.sort_by_key(|kv| kv.mod_revision),
            SortTarget::Value => kvs.sort_by(|a, b| a.value.cmp(&b.value)),
        }
        if order == SortOrder::Descend {
            kvs.reverse();
        }
    }
    let mut more = false;
    if req.limit > 0 && kvs.len() as i64 > req.limit {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    (kvs, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: i64, modr: i64, version: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec().into(),
            create_revision: create,
            mod_revision: modr,
            version,
            value: key.as_bytes().to_vec().into(),
            lease: 0,
        }
    }

    #[test]
    fn key_range_encodings() {
        assert_eq!(KeyRange::new(b"a", b""), KeyRange::Single(b"a".to_vec()));
        let all = KeyRange::new(b"\0", b"\0");
        assert!(all.contains(b"\0") && all.contains(b"zzz"));
        let span = KeyRange::new(b"a", b"c");
        assert!(span.contains(b"a") && span.contains(b"bz") && !span.contains(b"c"));
        assert!(KeyRange::new(b"c", b"a").is_empty());
    }

    #[test]
    fn sort_target_without_order_means_ascend() {
        let req = RangeRequest { sort_target: SortTarget::Mod as i32, ..Default::default() };
        assert!(needs_all_keys(&req));
        let (kvs, more) = finish(&req, vec![kv("a", 2, 9, 1), kv("b", 3, 4, 1)]);
        assert_eq!(kvs.iter().map(|k| k.mod_revision).collect::<Vec<_>>(), vec![4, 9]);
        assert!(!more);
    }

    #[test]
    fn filters_then_limit() {
        let req = RangeRequest { min_mod_revision: 3, limit: 1, ..Default::default() };
        let (kvs, more) = finish(&req, vec![kv("a", 2, 2, 1), kv("b", 3, 3, 1), kv("c", 4, 4, 1)]);
        assert_eq!(kvs, vec![kv("b", 3, 3, 1)]);
        assert!(more);
    }

    #[test]
    fn descending_by_key() {
        let req = RangeRequest { sort_order: SortOrder::Descend as i32, ..Default::default() };
        let (kvs, _) = finish(&req, vec![kv("a", 2, 2, 1), kv("b", 3, 3, 1)]);
        assert_eq!(kvs[0].key.as_ref(), b"b");
    }
}
