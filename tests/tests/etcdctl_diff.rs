//! Differential tests: the same etcdctl command sequence against a real
//! three-member etcd 3.4 and a three-member capstan cluster. Outputs are
//! compared after normalising what legitimately differs (member, cluster
//! and lease ids, ports, durations, hashes, sizes). Any other difference is
//! a capstan bug.

use std::path::Path;

use capstan_tests::etcdctl::{Output, run, run_for};
use capstan_tests::have;
use capstan_tests::store_cluster::{Cluster, EtcdCluster};
use regex::Regex;
use serde_json::Value;

/// One step: etcdctl arguments, optional stdin, and whether to stop it after a few seconds.
struct Step {
    args: Vec<String>,
    stdin: Option<String>,
    timed: bool,
}

fn step(args: &str) -> Step {
    Step { args: split(args), stdin: None, timed: false }
}

fn with_stdin(args: &str, stdin: &str) -> Step {
    Step { args: split(args), stdin: Some(stdin.to_string()), timed: false }
}

fn timed(args: &str) -> Step {
    Step { args: split(args), stdin: None, timed: true }
}

/// Splits on spaces; `''` stands for an empty argument.
fn split(args: &str) -> Vec<String> {
    args.split(' ').map(|a| if a == "''" { String::new() } else { a.to_string() }).collect()
}

/// Keys whose values differ between any two clusters.
const VOLATILE: &[&str] = &[
    "cluster_id",
    "member_id",
    "raft_term",
    "ID",
    "leader",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSize",
    "dbSizeInUse",
    "version",
    "hash",
    "Endpoint",
];

fn normalize_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if VOLATILE.contains(&k.as_str()) || (k == "lease" && val.as_i64() != Some(0)) {
                    *val = Value::String("<volatile>".into());
                } else {
                    normalize_json(val);
                }
            }
        }
        Value::Array(items) => {
            items.iter_mut().for_each(normalize_json);
            // Members are listed by id, and ids differ between clusters.
            items.sort_by_key(|m| m["name"].as_str().map(str::to_string));
        }
        _ => {}
    }
}

fn normalize(text: &str, dir: &Path) -> String {
    let ids = Regex::new(r"\b[0-9a-f]{10,16}\b").unwrap_or_else(|e| panic!("{e}"));
    let ports = Regex::new(r"127\.0\.0\.1:\d+").unwrap_or_else(|e| panic!("{e}"));
    let took = Regex::new(r"took = [0-9.]+[µmn]?s").unwrap_or_else(|e| panic!("{e}"));
    // Seconds left depend on timing; etcd lists attached keys in map order.
    let remaining = Regex::new(r"remaining\(\d+s\)").unwrap_or_else(|e| panic!("{e}"));
    let attached = Regex::new(r"attached keys\(\[([^\]]*)\]\)").unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for line in text.lines() {
        // etcdctl's own structured log lines carry timestamps and random targets.
        if line.starts_with("{\"level\"") {
            continue;
        }
        let line = line.replace(&dir.display().to_string(), "<DIR>");
        let line = if line.starts_with('{') || line.starts_with('[') {
            match serde_json::from_str::<Value>(&line) {
                Ok(mut v) => {
                    normalize_json(&mut v);
                    v.to_string()
                }
                Err(_) => line,
            }
        } else {
            line
        };
        let line = ids.replace_all(&line, "<ID>");
        let line = ports.replace_all(&line, "127.0.0.1:<PORT>");
        let line = took.replace_all(&line, "took = <DUR>");
        let line = remaining.replace_all(&line, "remaining(<S>)");
        let line = attached.replace_all(&line, |c: &regex::Captures| {
            let mut keys: Vec<&str> = c[1].split(' ').collect();
            keys.sort_unstable();
            format!("attached keys([{}])", keys.join(" "))
        });
        out.push(line.into_owned());
    }
    // Member lists are ordered by id; ids differ between clusters.
    if out.iter().any(|l| l.contains(", started, ")) {
        out.sort();
    }
    out.join("\n")
}

fn exec(s: &Step, endpoints: &str, dir: &Path) -> (bool, String, String) {
    let args: Vec<String> = s.args.iter().map(|a| a.replace("{dir}", &dir.display().to_string())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdin = s.stdin.as_deref();
    let out: Output = if s.timed { run_for(3, endpoints, &args, stdin) } else { run(endpoints, &args, stdin) };
    (out.ok, normalize(&out.stdout, dir), normalize(&out.stderr, dir))
}

fn script() -> Vec<Step> {
    vec![
        // --- put and get
        step("put foo bar"),
        step("put foo baz --prev-kv"),
        step("put a 1"),
        step("put b 2"),
        step("put c 3"),
        step("put d 4"),
        step("put foo qux --prev-kv -w json"),
        step("get foo -w json"),
        step("get '' --prefix"),
        step("get a --prefix"),
        step("get a --from-key"),
        step("get a d"),
        step("get a --from-key --keys-only"),
        step("get a --from-key --limit=2 -w json"),
        step("get '' --prefix --sort-by=MODIFY --order=DESCEND"),
        step("get '' --prefix --sort-by=VERSION"),
        step("get '' --prefix --sort-by=CREATE --order=ASCEND"),
        step("get '' --prefix --sort-by=VALUE --order=DESCEND"),
        step("get '' --prefix --sort-by=KEY --order=DESCEND --limit=3"),
        step("get foo --rev=2"),
        step("get foo --rev=3 -w json"),
        step("get foo --rev=100"),
        step("get '' --prefix --print-value-only"),
        step("get nothing-here"),
        step("get nothing-here -w json"),
        step("get ''"),
        step("get foo --consistency=s"),
        // --- delete
        step("del b --prev-kv"),
        step("del nothing-here"),
        step("del a --prefix"),
        step("put c2 x"),
        step("del c --from-key --prev-kv -w json"),
        // --- txn
        with_stdin("txn", "value(\"foo\") = \"qux\"\n\nput foo t1\nget foo\n\nput foo t2\n\n"),
        with_stdin("txn", "version(\"foo\") > \"10\"\n\nput foo never\n\nget foo\ndel nothing\n\n"),
        with_stdin("txn", "create(\"missing\") = \"0\"\n\nput missing now\n\n\n"),
        with_stdin("txn -w json", "mod(\"missing\") > \"0\"\n\nget missing\n\n\n"),
        with_stdin("txn", "value(\"absent\") != \"x\"\n\nput never x\n\nput else y\n\n"),
        with_stdin("txn", "\nput dup 1\nput dup 2\n\n\n"),
        // --- watch replays history from a revision
        timed("watch foo --rev=1"),
        timed("watch --prefix '' --rev=5 --prev-kv"),
        timed("watch c2 --rev=2 -w json"),
        // --- bad input
        with_stdin("put big", &"x".repeat(1_600_000)),
        with_stdin("put big", &"x".repeat(2_200_000)),
        step("put '' empty-key"),
        step("put k v --ignore-value"),
        step("put nothing-here --ignore-value"),
        step("put nothing-here --ignore-lease"),
        // --- leases
        step("lease grant 9000000001"),
        step("put leased v --lease=1234abcd"),
        step("lease revoke 1234abcd"),
        step("lease timetolive 1234abcd"),
        step("lease keep-alive --once 1234abcd"),
        // --- compaction
        step("compaction 5"),
        step("compaction 4"),
        step("compaction 1000"),
        step("get foo --rev=4"),
        step("get foo --rev=5"),
        timed("watch foo --rev=2"),
        // --- maintenance
        step("alarm list"),
        step("defrag"),
        step("endpoint health"),
        step("endpoint status -w json"),
        step("endpoint hashkv -w json"),
        step("endpoint health --cluster"),
        step("endpoint status --cluster -w json"),
        step("endpoint hashkv --cluster -w json"),
        step("member list -w json"),
        step("member list"),
        step("snapshot save {dir}/backup.db"),
    ]
}

/// A lease's lifecycle; the lease id comes from the grant and differs per cluster.
fn lease_script(endpoints: &str, dir: &Path) -> Vec<(String, bool, String, String)> {
    let grant = run(endpoints, &["lease", "grant", "100"], None);
    let id = grant.stdout.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut results =
        vec![("lease grant 100".to_string(), grant.ok, normalize(&grant.stdout, dir), normalize(&grant.stderr, dir))];
    for args in [
        format!("put lk1 v --lease={id}"),
        format!("put lk2 v --lease={id}"),
        format!("lease timetolive {id} --keys"),
        format!("lease keep-alive --once {id}"),
        "lease list".to_string(),
        "get lk --prefix".to_string(),
        format!("lease revoke {id}"),
        "get lk --prefix".to_string(),
        format!("lease revoke {id}"),
        format!("lease timetolive {id}"),
    ] {
        let s = step(&args);
        let (ok, out, err) = exec(&s, endpoints, dir);
        results.push((args, ok, out, err));
    }
    results
}

#[test]
fn etcdctl_outputs_match_etcd() {
    if !have("etcdctl") || !have("etcd") {
        return;
    }
    let etcd = EtcdCluster::start(3);
    let capstan = Cluster::start(3, &[]);
    let mut mismatches = Vec::new();
    for s in script() {
        let want = exec(&s, &etcd.endpoints(), etcd.dir.path());
        let got = exec(&s, &capstan.endpoints(), capstan.dir.path());
        if want != got {
            mismatches.push(format!(
                "etcdctl {}\n  etcd:    ok={} stdout={:?} stderr={:?}\n  capstan: ok={} stdout={:?} stderr={:?}",
                s.args.join(" "),
                want.0,
                want.1,
                want.2,
                got.0,
                got.1,
                got.2
            ));
        }
    }
    let want = lease_script(&etcd.endpoints(), etcd.dir.path());
    let got = lease_script(&capstan.endpoints(), capstan.dir.path());
    for (w, g) in want.iter().zip(&got) {
        // The arguments hold each cluster's own lease id; compare what came back.
        if (w.1, &w.2, &w.3) != (g.1, &g.2, &g.3) {
            mismatches.push(format!(
                "etcdctl {}\n  etcd:    {:?}\n  capstan: {:?}",
                w.0,
                (w.1, &w.2, &w.3),
                (g.1, &g.2, &g.3)
            ));
        }
    }
    // Last: a lease this short would expire (or not) during the steps above.
    let short = step("lease grant 1");
    let want = exec(&short, &etcd.endpoints(), etcd.dir.path());
    let got = exec(&short, &capstan.endpoints(), capstan.dir.path());
    if want != got {
        mismatches.push(format!("etcdctl lease grant 1\n  etcd:    {want:?}\n  capstan: {got:?}"));
    }
    assert!(
        mismatches.is_empty(),
        "{} etcdctl commands differ from etcd:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}
