//! Backups end to end: `capstan ctl snapshot save` from a live member of a
//! three-member cluster, `snapshot status`, and `snapshot restore` into the
//! data dirs of a new three-member cluster that serves every key at the
//! snapshot's revision and continues from it. Damaged files and unreachable
//! members leave nothing behind.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use capstan_tests::store_cluster::Cluster;
use capstan_tests::{capstan_bin, etcdctl, have, wait_for};

fn ctl(args: &[&str]) -> Output {
    Command::new(capstan_bin()).arg("ctl").args(args).output().unwrap_or_else(|e| panic!("capstan ctl: {e}"))
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn failed(out: Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The revision a member has applied (its own state, as `endpoint status` reports it).
fn applied_revision(endpoint: &str) -> Option<i64> {
    let out = etcdctl::run(endpoint, &["endpoint", "status", "-w", "json"], None);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    status[0]["Status"]["header"]["revision"].as_i64()
}

/// The cluster's revision after every acknowledged write (a linearizable read).
fn cluster_revision(endpoints: &str) -> i64 {
    let got = etcdctl::run(endpoints, &["get", "any", "-w", "json"], None).json();
    got["header"]["revision"].as_i64().unwrap_or_else(|| panic!("no revision in {got}"))
}

fn dir_is_empty_but(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_snapshot_of_a_live_member_restores_into_a_new_cluster() {
    if !have("etcdctl") {
        return;
    }
    let source = Cluster::start(3, &[]);
    let eps = source.endpoints();
    for i in 0..40 {
        etcdctl::run(&eps, &["put", &format!("/registry/pods/p{i:02}"), &format!("{{\"n\":{i}}}")], None)
            .expect_ok("put");
    }
    etcdctl::run(&eps, &["put", "/registry/pods/p00", "rewritten"], None).expect_ok("put");
    etcdctl::run(&eps, &["del", "/registry/pods/p39"], None).expect_ok("del");
    let lease = etcdctl::run(&eps, &["lease", "grant", "600"], None).expect_ok("lease grant");
    let lease_id = lease.split_whitespace().nth(1).unwrap_or_else(|| panic!("no lease id in {lease}")).to_string();
    etcdctl::run(&eps, &["put", "leased", "v", "--lease", &lease_id], None).expect_ok("leased put");
    let at = cluster_revision(&eps);
    let before = etcdctl::run(&eps, &["get", "", "--from-key", "-w", "json"], None).json();

    let backups = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = backups.path().join("backup.snap");
    let file_arg = file.to_string_lossy().into_owned();
    // A snapshot holds what its member has applied; a follower may trail the
    // leader by the last write for a moment.
    let one = source.members[1].endpoint();
    wait_for(Duration::from_secs(10), "member 2 to apply the last write", || {
        (applied_revision(&one) == Some(at)).then_some(())
    });
    let saved = ok(ctl(&["--endpoints", &one, "snapshot", "save", &file_arg]), "snapshot save");
    assert_eq!(saved.trim(), format!("Snapshot saved at {file_arg}"));
    let refused = failed(ctl(&["--endpoints", &eps, "snapshot", "save", &file_arg]), "save from several endpoints");
    assert!(refused.contains("one selected node"), "{refused}");

    let status = ok(ctl(&["snapshot", "status", &file_arg, "-w", "json"]), "snapshot status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    assert_eq!(status["revision"], at);
    assert_eq!(status["totalKey"], 40, "39 pods and the leased key");
    assert_eq!(status["totalSize"], std::fs::metadata(&file).map(|m| m.len()).unwrap_or_default());
    let table = ok(ctl(&["snapshot", "status", &file_arg, "-w", "table"]), "snapshot status table");
    assert!(table.contains(" HASH ") && table.contains(&format!(" {at} |")), "{table}");

    // A new cluster, on new ports, from the file.
    let mut target = Cluster::prepare(3, &[]);
    for i in 0..3 {
        let m = &target.members[i];
        let restored = ok(
            ctl(&[
                "snapshot",
                "restore",
                &file_arg,
                "--data-dir",
                &m.data_dir.to_string_lossy(),
                "--name",
                &m.name,
                "--initial-cluster",
                &target.initial_cluster(),
                "--initial-cluster-token",
                &target.token,
                "--initial-advertise-peer-urls",
                &m.peer_url(),
            ]),
            "snapshot restore",
        );
        assert!(restored.contains(&format!("at revision {at}")), "{restored}");
    }
    for i in 0..3 {
        target.restart(i);
    }
    target.wait_leader();
    let eps2 = target.endpoints();
    let after = etcdctl::run(&eps2, &["get", "", "--from-key", "-w", "json"], None).json();
    assert_eq!(after["kvs"], before["kvs"], "every key, with its revisions and lease, as at the snapshot");
    assert_eq!(after["header"]["revision"], at);
    let members = etcdctl::run(&eps2, &["member", "list"], None).expect_ok("member list");
    assert_eq!(members.lines().count(), 3);
    assert!(!members.contains(&source.members[0].peer_url()), "the old cluster's members are gone: {members}");
    let ttl = etcdctl::run(&eps2, &["lease", "timetolive", &lease_id, "--keys"], None).expect_ok("timetolive");
    assert!(ttl.contains("attached keys([leased])"), "{ttl}");
    etcdctl::run(&eps2, &["put", "next", "write"], None).expect_ok("put after restore");
    assert_eq!(cluster_revision(&eps2), at + 1, "the restored cluster continues from the snapshot's revision");
}

#[test]
fn damaged_files_and_unreachable_members_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("backup.snap");
    let file_arg = file.to_string_lossy().into_owned();
    let unreachable = failed(ctl(&["--endpoints", "127.0.0.1:1", "snapshot", "save", &file_arg]), "save");
    assert!(unreachable.contains("127.0.0.1:1"), "{unreachable}");
    assert_eq!(dir_is_empty_but(dir.path(), &[]), Vec::<String>::new());

    let c = Cluster::start(1, &[]);
    etcdctl::run(&c.endpoints(), &["put", "k", "v"], None).expect_ok("put");
    ok(ctl(&["--endpoints", &c.endpoints(), "snapshot", "save", &file_arg]), "save");
    let raw = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
    let damaged = dir.path().join("damaged.snap");
    let mut flipped = raw.clone();
    flipped[100] ^= 0x40;
    std::fs::write(&damaged, &flipped).unwrap_or_else(|e| panic!("{e}"));
    let truncated = dir.path().join("truncated.snap");
    std::fs::write(&truncated, &raw[..raw.len() / 2]).unwrap_or_else(|e| panic!("{e}"));

    for (bad, why) in [(&damaged, "checksum mismatch"), (&truncated, "truncated")] {
        let bad = bad.to_string_lossy().into_owned();
        let status = failed(ctl(&["snapshot", "status", &bad]), "status of a damaged file");
        assert!(status.contains(why), "{status}");
        let data_dir = dir.path().join("restored");
        let restore = failed(
            ctl(&["snapshot", "restore", &bad, "--data-dir", &data_dir.to_string_lossy()]),
            "restore of a damaged file",
        );
        assert!(restore.contains(why), "{restore}");
        assert!(!data_dir.exists(), "nothing written for a damaged file");
    }
    let leftovers = dir_is_empty_but(dir.path(), &["backup.snap", "damaged.snap", "truncated.snap"]);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_save_interrupted_mid_way_leaves_nothing_behind() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(1, &[]);
    let endpoint = c.endpoints();
    let megabyte = "x".repeat(1 << 20);
    for i in 0..40 {
        etcdctl::run(&endpoint, &["put", &format!("big/{i:02}")], Some(&megabyte)).expect_ok("put 1 MiB");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("backup.snap");
    let save = Command::new(capstan_bin())
        .args(["ctl", "--endpoints", &endpoint, "snapshot", "save"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("capstan ctl: {e}"));
    // Once the partial file exists, freeze the member so the stream stalls
    // half way, then interrupt the save as Ctrl-C would.
    let part = dir.path().join("backup.snap.part");
    let member = c.pid(0).unwrap_or_else(|| panic!("the member is not running"));
    capstan_tests::wait_for(std::time::Duration::from_secs(20), "the partial file", || part.exists().then_some(()));
    let signal = |sig: &str, pid: u32| Command::new("kill").args([sig, &pid.to_string()]).status();
    signal("-STOP", member).unwrap_or_else(|e| panic!("kill: {e}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal("-INT", save.id()).unwrap_or_else(|e| panic!("kill: {e}"));
    let out = save.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    signal("-CONT", member).unwrap_or_else(|e| panic!("kill: {e}"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the interrupted save succeeded: {said}");
    assert!(said.contains("interrupted"), "{said}");
    assert_eq!(dir_is_empty_but(dir.path(), &[]), Vec::<String>::new(), "neither the file nor a partial one");
}

/// The disaster restore of the HA servers: one member restored from the
/// file, the others added afresh. They must get the restored keyspace, which
/// no Raft log entry carries.
#[test]
fn members_added_to_a_restored_member_get_the_restored_keys() {
    if !have("etcdctl") {
        return;
    }
    let source = Cluster::start(1, &[]);
    let one = source.members[0].endpoint();
    for i in 0..20 {
        etcdctl::run(&one, &["put", &format!("/restored/k{i:02}"), "v"], None).expect_ok("put");
    }
    let backups = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = backups.path().join("backup.snap").to_string_lossy().into_owned();
    ok(ctl(&["--endpoints", &one, "snapshot", "save", &file]), "snapshot save");

    let mut target = Cluster::prepare(1, &[]);
    let m = &target.members[0];
    let restore = [
        "snapshot",
        "restore",
        &file,
        "--data-dir",
        &m.data_dir.to_string_lossy(),
        "--name",
        &m.name,
        "--initial-cluster",
        &target.initial_cluster(),
        "--initial-cluster-token",
        &target.token,
        "--initial-advertise-peer-urls",
        &m.peer_url(),
    ];
    ok(ctl(&restore), "snapshot restore");
    target.restart(0);
    target.wait_leader();
    let first = target.members[0].endpoint();
    etcdctl::run(&first, &["put", "/restored/after", "v"], None).expect_ok("put after the restore");

    // As `capstan server --server` joins: a learner that catches up, then a voter.
    for _ in 0..2 {
        let i = target.add_spec();
        let (name, peer) = (target.members[i].name.clone(), target.members[i].peer_url());
        let added =
            etcdctl::run(&first, &["member", "add", &name, "--learner", "--peer-urls", &peer, "-w", "json"], None);
        let id = added.json()["member"]["ID"].as_u64().unwrap_or_else(|| panic!("no member id in {}", added.stdout));
        target.start_joining(i);
        let endpoint = target.members[i].endpoint();
        capstan_tests::wait_for(std::time::Duration::from_secs(30), "the added member to hold every key", || {
            let out =
                etcdctl::run(&endpoint, &["get", "/restored/", "--prefix", "--keys-only", "--consistency=s"], None);
            (out.ok && out.stdout.lines().filter(|l| !l.is_empty()).count() == 21).then_some(())
        });
        etcdctl::run(&first, &["member", "promote", &format!("{id:x}")], None).expect_ok("member promote");
    }
    let members = etcdctl::run(&first, &["member", "list"], None).expect_ok("member list");
    assert_eq!(members.lines().filter(|l| l.ends_with(", false")).count(), 3, "three voters: {members}");
}
