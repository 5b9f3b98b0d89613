//! The store as real processes, driven by the real etcdctl: replication,
//! leader failure, restart and snapshot catch-up, a rolling restart under
//! writes, membership changes, and data dirs that must be refused.

use std::time::Duration;

use capstan_tests::etcdctl::run;
use capstan_tests::store_cluster::Cluster;
use capstan_tests::{have, wait_for};

fn put(ep: &str, k: &str, v: &str) {
    run(ep, &["put", k, v], None).expect_ok(&format!("put {k}"));
}

fn get_value(ep: &str, k: &str, serializable: bool) -> Option<String> {
    let mut args = vec!["get", k, "--print-value-only"];
    if serializable {
        args.push("--consistency=s");
    }
    let out = run(ep, &args, None);
    if !out.ok {
        return None;
    }
    let v = out.stdout.trim_end_matches('\n').to_string();
    if v.is_empty() { None } else { Some(v) }
}

fn count(ep: &str, prefix: &str, serializable: bool) -> usize {
    let mut args = vec!["get", prefix, "--prefix", "--keys-only"];
    if serializable {
        args.push("--consistency=s");
    }
    let out = run(ep, &args, None);
    if !out.ok {
        return 0;
    }
    out.stdout.lines().filter(|l| !l.is_empty()).count()
}

fn member_id(cluster: &Cluster, i: usize) -> String {
    let out = run(&cluster.members[i].endpoint(), &["endpoint", "status", "-w", "json"], None);
    let id = out.json()[0]["Status"]["header"]["member_id"].as_u64().unwrap_or_default();
    format!("{id:x}")
}

#[test]
fn three_members_replicate_and_survive_leader_kill() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    // --- every member accepts writes; every member serves them
    for (i, m) in c.members.iter().enumerate() {
        put(&m.endpoint(), &format!("/k/{i}"), &format!("v{i}"));
    }
    for m in &c.members {
        assert_eq!(count(&m.endpoint(), "/k/", false), 3, "linearizable read on {}", m.name);
    }
    // --- kill the leader: a new one is elected, acknowledged writes survive
    let old = c.wait_leader();
    c.kill(old);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = wait_for(Duration::from_secs(30), "a new leader", || c.leader().filter(|l| *l != old));
    assert!(survivors.contains(&new));
    for i in &survivors {
        let ep = c.members[*i].endpoint();
        assert_eq!(count(&ep, "/k/", false), 3, "acknowledged writes after the leader died\n{}", c.log_tail(*i));
    }
    for i in &survivors {
        put(&c.members[*i].endpoint(), &format!("/k/after-{i}"), "x");
    }
    // --- the old leader restarts and catches up
    c.restart(old);
    let ep = c.members[old].endpoint();
    wait_for(Duration::from_secs(30), "the restarted member to catch up", || {
        (count(&ep, "/k/", true) == 5).then_some(())
    });
    assert_eq!(get_value(&ep, "/k/0", false).as_deref(), Some("v0"));
    let hashes = run(&c.endpoints(), &["endpoint", "hashkv", "-w", "json"], None).json();
    let values: Vec<u64> = hashes
        .as_array()
        .map(|a| a.iter().map(|h| h["HashKV"]["hash"].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    assert_eq!(values.len(), 3);
    assert!(values.iter().all(|h| *h == values[0]), "members disagree on HashKV: {values:?}");
}

#[test]
fn a_member_of_a_new_cluster_that_starts_late_joins_it() {
    if !have("etcdctl") {
        return;
    }
    // Two members form the cluster; the third starts while they already
    // replicate to it, so their messages may reach it before it initializes.
    let mut c = Cluster::start_some(3, 2, &[]);
    put(&c.members[0].endpoint(), "/late/k", "v");
    c.restart(2);
    let ep = c.members[2].endpoint();
    wait_for(Duration::from_secs(30), "the late member to serve the data", || {
        (get_value(&ep, "/late/k", true).as_deref() == Some("v")).then_some(())
    });
}

#[test]
fn a_member_down_past_the_purge_point_catches_up_by_snapshot() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(3, &["--snapshot-count=40", "--snapshot-catchup-entries=10"]);
    let leader = c.wait_leader();
    let down = (leader + 1) % 3;
    c.kill(down);
    let ep = c.members[leader].endpoint();
    for i in 0..200 {
        put(&ep, &format!("/s/{i:03}"), &format!("value-{i}"));
    }
    c.restart(down);
    let down_ep = c.members[down].endpoint();
    wait_for(Duration::from_secs(60), "the member to catch up by snapshot", || {
        (count(&down_ep, "/s/", true) == 200).then_some(())
    });
    let log = std::fs::read_to_string(c.dir.path().join(format!("{}.log", c.members[down].name))).unwrap_or_default();
    assert!(log.contains("installed snapshot"), "the member caught up without a snapshot:\n{}", c.log_tail(down));
    assert_eq!(get_value(&down_ep, "/s/199", true).as_deref(), Some("value-199"));
    // Its history came with the snapshot: reads at an old revision work.
    let out = run(&down_ep, &["get", "/s/000", "--rev=3", "--consistency=s", "--print-value-only"], None);
    assert!(out.ok, "read at an old revision: {}", out.stderr);
}

#[test]
fn members_are_added_promoted_and_removed() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    put(&c.endpoints(), "/m/before", "1");
    // --- add a voter, start it with --initial-cluster-state existing
    let i = c.add_spec();
    let peer = c.members[i].peer_url();
    let out = run(&c.endpoints(), &["member", "add", &c.members[i].name.clone(), &format!("--peer-urls={peer}")], None)
        .expect_ok("member add");
    assert!(out.contains("added to cluster"), "{out}");
    assert!(out.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), "{out}");
    c.start_joining(i);
    let ep = c.members[i].endpoint();
    wait_for(Duration::from_secs(30), "the new member to serve the data", || {
        (get_value(&ep, "/m/before", true).as_deref() == Some("1")).then_some(())
    });
    wait_for(Duration::from_secs(30), "the new member to publish its name", || {
        let list = run(&c.endpoints(), &["member", "list"], None).stdout;
        (list.lines().filter(|l| l.contains("started")).count() == 4).then_some(())
    });
    // --- remove it again
    let id = member_id(&c, i);
    run(&c.members[0].endpoint(), &["member", "remove", &id], None).expect_ok("member remove");
    let list = run(&c.members[0].endpoint(), &["member", "list"], None).expect_ok("member list");
    assert_eq!(list.lines().count(), 3, "{list}");
    c.kill(i);
    // --- a learner is added, then promoted
    let j = c.add_spec();
    let peer = c.members[j].peer_url();
    run(
        &c.endpoints(),
        &["member", "add", &c.members[j].name.clone(), &format!("--peer-urls={peer}"), "--learner"],
        None,
    )
    .expect_ok("member add --learner");
    c.start_joining(j);
    let ep = c.members[j].endpoint();
    wait_for(Duration::from_secs(30), "the learner to catch up", || {
        (get_value(&ep, "/m/before", true).as_deref() == Some("1")).then_some(())
    });
    let id = member_id(&c, j);
    run(&c.members[0].endpoint(), &["member", "promote", &id], None).expect_ok("member promote");
    let list = run(&c.members[0].endpoint(), &["member", "list", "-w", "json"], None).json();
    let learners =
        list["members"].as_array().map(|a| a.iter().filter(|m| m["isLearner"].as_bool() == Some(true)).count());
    assert_eq!(learners, Some(0));
    // --- errors as etcd words them
    let out = run(&c.members[0].endpoint(), &["member", "remove", "1234"], None);
    assert!(!out.ok && out.stderr.contains("etcdserver: member not found"), "{}", out.stderr);
    let out = run(
        &c.members[0].endpoint(),
        &["member", "add", "dup", &format!("--peer-urls={}", c.members[0].peer_url())],
        None,
    );
    assert!(!out.ok && out.stderr.contains("etcdserver: Peer URLs already exists"), "{}", out.stderr);
}

#[test]
fn leadership_moves_on_request() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(3, &[]);
    let leader = c.wait_leader();
    let target = (leader + 1) % 3;
    let id = member_id(&c, target);
    let out = run(&c.endpoints(), &["move-leader", &id], None).expect_ok("move-leader");
    assert!(out.contains("Leadership transferred"), "{out}");
    wait_for(Duration::from_secs(10), "the target to lead", || (c.leader() == Some(target)).then_some(()));
    let out = run(&c.members[target].endpoint(), &["move-leader", "abcdef"], None);
    assert!(!out.ok && out.stderr.contains("etcdserver: bad leader transferee"), "{}", out.stderr);
}

#[test]
fn data_dirs_of_other_clusters_or_corrupt_ones_are_refused() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(1, &[]);
    put(&c.members[0].endpoint(), "k", "v");
    c.kill(0);
    let dir = c.members[0].data_dir.clone();
    let err = c.start_expecting_failure(&dir, "m1", "another-token");
    assert!(err.contains("belongs to cluster"), "{err}");
    let err = c.start_expecting_failure(&dir, "someone-else", &c.token.clone());
    assert!(err.contains("belongs to member"), "{err}");
    std::fs::write(dir.join("member").join("identity"), b"\x0a\xff garbage").unwrap_or_else(|e| panic!("{e}"));
    let err = c.start_expecting_failure(&dir, "m1", &c.token.clone());
    assert!(err.contains("is corrupt"), "{err}");
    assert!(dir.join("member").join("kv").exists(), "nothing was reset");
}

/// The upgrade procedure of ops/README.md: each member stopped with SIGTERM
/// and started again in turn, the leader last, while a client keeps writing
/// through every endpoint. Every write that was acknowledged is there after.
#[test]
fn a_rolling_restart_under_writes_loses_no_acknowledged_write() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    let eps = c.endpoints();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (eps, stop) = (eps.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!("/rolling/{n:05}");
                if run(&eps, &["put", &key, "v", "--command-timeout=3s"], None).ok {
                    acknowledged.push(key);
                }
            }
            (acknowledged, n)
        })
    };
    let leader = c.wait_leader();
    let order: Vec<usize> = (0..3).filter(|i| *i != leader).chain([leader]).collect();
    for i in order {
        c.stop(i);
        std::thread::sleep(Duration::from_secs(1));
        c.restart(i);
        let ep = c.members[i].endpoint();
        wait_for(Duration::from_secs(30), "the restarted member to be healthy", || {
            run(&ep, &["endpoint", "health"], None).ok.then_some(())
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, attempted) = writer.join().unwrap_or_else(|_| panic!("the writer panicked"));
    assert!(acknowledged.len() > 20, "too few writes got through: {} of {attempted}", acknowledged.len());
    for i in 0..3 {
        let ep = c.members[i].endpoint();
        let present = run(&ep, &["get", "/rolling/", "--prefix", "--keys-only"], None).expect_ok("get");
        let present: std::collections::HashSet<&str> = present.lines().filter(|l| !l.is_empty()).collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|k| !present.contains(k.as_str())).collect();
        assert!(lost.is_empty(), "{} lost {} acknowledged writes: {lost:?}", c.members[i].name, lost.len());
    }
}

/// A peer that has connected but not yet spoken (a leader's channel
/// reconnecting at that moment) must not keep a member from stopping.
#[test]
fn a_member_stops_promptly_with_a_silent_connection_open() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(1, &[]);
    put(&c.members[0].endpoint(), "k", "v");
    let peer = format!("{}:{}", c.members[0].host, c.members[0].peer_port);
    let _silent = std::net::TcpStream::connect(&peer).unwrap_or_else(|e| panic!("connect {peer}: {e}"));
    let started = std::time::Instant::now();
    c.stop(0);
    assert!(started.elapsed() < Duration::from_secs(10), "stopping took {:?}", started.elapsed());
    c.restart(0);
    let value = wait_for(Duration::from_secs(30), "the value after the restart", || {
        get_value(&c.members[0].endpoint(), "k", false)
    });
    assert_eq!(value, "v");
}

#[test]
fn the_append_stream_refuses_other_clusters_and_malformed_requests() {
    use capstan_proto::raft as pb;
    use capstan_proto::raft::raft_peer_client::RaftPeerClient;

    let c = Cluster::start(1, &[]);
    let peer = format!("http://{}:{}", c.members[0].host, c.members[0].peer_port);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut client = RaftPeerClient::connect(peer.clone()).await.unwrap_or_else(|e| panic!("connect {peer}: {e}"));
        let info = client.cluster_info(pb::Empty {}).await.expect("cluster info").into_inner();
        let stream_of = |cluster_id: u64, requests: Vec<pb::AppendEntriesRequest>| {
            let mut req = tonic::Request::new(tokio_stream::iter(requests));
            req.metadata_mut().insert("capstan-cluster-id", cluster_id.to_string().parse().expect("header value"));
            req
        };

        let refused = client.append_entries_stream(stream_of(info.cluster_id + 1, vec![])).await;
        let refused = refused.expect_err("a stream from another cluster");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");

        // A request without a vote: the stream ends with an error that says so.
        let malformed = vec![pb::AppendEntriesRequest::default()];
        let opened = client.append_entries_stream(stream_of(info.cluster_id, malformed)).await;
        let mut replies = opened.expect("a stream from this cluster opens").into_inner();
        let error = replies.message().await.expect_err("a malformed request");
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error}");
        assert!(error.message().contains("vote missing"), "{error}");
    });
    // The member is unharmed.
    if have("etcdctl") {
        put(&c.members[0].endpoint(), "after", "ok");
        assert_eq!(get_value(&c.members[0].endpoint(), "after", false).as_deref(), Some("ok"));
    }
}
