//! Txn rules as etcd applies them: request validation (op limits, empty
//! keys, duplicate keys across branches) and compare evaluation. Pure functions.

use std::cmp::Ordering;
use std::collections::HashSet;

use capstan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use capstan_proto::etcdserverpb::request_op::Request;
use capstan_proto::etcdserverpb::{Compare, PutRequest, RequestOp, TxnRequest};
use capstan_proto::mvccpb::KeyValue;

use super::range::KeyRange;
use crate::error::{Error, Result};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// Checks a put before it is proposed.
pub fn validate_put(put: &PutRequest) -> Result<()> {
    if put.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if put.ignore_value && !put.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if put.ignore_lease && put.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// Checks a txn before it is proposed: sizes, keys and duplicate writes.
pub fn validate_txn(txn: &TxnRequest) -> Result<()> {
    validate_ops(txn)?;
    check_intervals(&txn.success)?;
    check_intervals(&txn.failure)?;
    Ok(())
}

fn validate_ops(txn: &TxnRequest) -> Result<()> {
    if txn.compare.len() > MAX_TXN_OPS || txn.success.len() > MAX_TXN_OPS || txn.failure.len() > MAX_TXN_OPS {
        return Err(Error::TooManyOps);
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) if r.key.is_empty() => return Err(Error::EmptyKey),
            Some(Request::RequestPut(p)) => validate_put(p)?,
            Some(Request::RequestDeleteRange(d)) if d.key.is_empty() => return Err(Error::EmptyKey),
            Some(Request::RequestTxn(t)) => validate_ops(t)?,
            _ => {}
        }
    }
    Ok(())
}

/// Deleted ranges of one branch (and its nested txns).
#[derive(Default)]
struct Deletes(Vec<KeyRange>);

impl Deletes {
    fn hits(&self, key: &[u8]) -> bool {
        self.0.iter().any(|r| r.contains(key))
    }
}

/// etcd's `checkIntervals`: within one branch, a key may be put once and not
/// also be deleted; the then/else branches of a nested txn exclude each other.
fn check_intervals(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Deletes)> {
    let mut dels = Deletes::default();
    for op in ops {
        if let Some(Request::RequestDeleteRange(d)) = &op.request {
            dels.0.push(KeyRange::new(&d.key, &d.range_end));
        }
    }
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.hits(k) {
                return Err(Error::DuplicateKey);
            }
        }
        puts.extend(puts_then.iter().cloned());
        for k in puts_else {
            if (puts.contains(&k) && !puts_then.contains(&k)) || dels.hits(&k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else { continue };
        let k = p.key.to_vec();
        if puts.contains(&k) || dels.hits(&k) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(k);
    }
    Ok((puts, dels))
}

/// Evaluates one compare against the key-values its key or range holds now.
/// A missing key compares as an all-zero key-value, except on VALUE, which fails.
pub fn compare_holds(cmp: &Compare, kvs: &[KeyValue]) -> bool {
    if kvs.is_empty() {
        if cmp.target() == CompareTarget::Value {
            return false;
        }
        return compare_kv(cmp, &KeyValue::default());
    }
    kvs.iter().all(|kv| compare_kv(cmp, kv))
}

fn compare_kv(cmp: &Compare, kv: &KeyValue) -> bool {
    let ord = match (cmp.target(), &cmp.target_union) {
        (CompareTarget::Value, Some(TargetUnion::Value(v))) => kv.value.as_ref().cmp(v.as_ref()),
        (CompareTarget::Version, Some(TargetUnion::Version(v))) => kv.version.cmp(v),
        (CompareTarget::Create, Some(TargetUnion::CreateRevision(v))) => kv.create_revision.cmp(v),
        (CompareTarget::Mod, Some(TargetUnion::ModRevision(v))) => kv.mod_revision.cmp(v),
        (CompareTarget::Lease, Some(TargetUnion::Lease(v))) => kv.lease.cmp(v),
        // A target without its value compares as equal, as etcd's does.
        _ => Ordering::Equal,
    };
    match cmp.result() {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use capstan_proto::etcdserverpb::DeleteRangeRequest;

    use super::*;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest { key: k.as_bytes().to_vec().into(), ..Default::default() })),
        }
    }
    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: k.as_bytes().to_vec().into(),
                range_end: end.as_bytes().to_vec().into(),
                ..Default::default()
            })),
        }
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest { compare: vec![], success, failure }
    }

    #[test]
    fn duplicate_puts_and_put_over_delete_are_rejected() {
        assert_eq!(validate_txn(&txn(vec![put("a"), put("a")], vec![])), Err(Error::DuplicateKey));
        assert_eq!(validate_txn(&txn(vec![del("a", "c"), put("b")], vec![])), Err(Error::DuplicateKey));
        assert_eq!(validate_txn(&txn(vec![put("a")], vec![put("a")])), Ok(()), "branches are separate");
        let nested = RequestOp { request: Some(Request::RequestTxn(txn(vec![put("a")], vec![put("a")]))) };
        assert_eq!(validate_txn(&txn(vec![nested.clone()], vec![])), Ok(()), "then/else exclude each other");
        assert_eq!(validate_txn(&txn(vec![nested, put("a")], vec![])), Err(Error::DuplicateKey));
    }

    #[test]
    fn op_limits_and_empty_keys() {
        assert_eq!(validate_txn(&txn((0..129).map(|i| put(&i.to_string())).collect(), vec![])), Err(Error::TooManyOps));
        assert_eq!(validate_txn(&txn(vec![put("")], vec![])), Err(Error::EmptyKey));
    }

    fn cmp(target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
        Compare {
            result: result as i32,
            target: target as i32,
            key: b"k".to_vec().into(),
            target_union: Some(u),
            range_end: Default::default(),
        }
    }

    #[test]
    fn missing_keys_compare_as_zero_except_value() {
        assert!(compare_holds(&cmp(CompareTarget::Mod, CompareResult::Equal, TargetUnion::ModRevision(0)), &[]));
        assert!(compare_holds(&cmp(CompareTarget::Version, CompareResult::Less, TargetUnion::Version(1)), &[]));
        assert!(!compare_holds(
            &cmp(CompareTarget::Value, CompareResult::Equal, TargetUnion::Value(Default::default())),
            &[]
        ));
        assert!(!compare_holds(
            &cmp(CompareTarget::Value, CompareResult::NotEqual, TargetUnion::Value(b"x".to_vec().into())),
            &[]
        ));
    }

    #[test]
    fn range_compares_must_hold_for_every_key() {
        let kv = |v: i64| KeyValue { version: v, ..Default::default() };
        let c = cmp(CompareTarget::Version, CompareResult::Greater, TargetUnion::Version(1));
        assert!(compare_holds(&c, &[kv(2), kv(3)]));
        assert!(!compare_holds(&c, &[kv(2), kv(1)]));
    }
}
